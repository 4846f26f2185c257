//! `kind = "redis"`: Redis / Valkey / ElastiCache: TLS (`rediss://`), AUTH
//! (password or ACL user), PING, and optionally the replication role.

use super::keys::{self, Problem};
use super::Probe;
use crate::expand::Env;
use crate::net::url_parts::{host_port, percent_decode};
use crate::net::wire::Heard;
use crate::outcome::{Failure, Fault, Phase, Reason};
use crate::secret::{Scrubber, Secret};
use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, ProtocolVersion, RedisConnectionInfo, RedisError, Value};
use rustls::ClientConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The suite keys of `kind = "redis"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    url: Env<url::Url>,
    username: Option<Env<String>>,
    password: Option<Secret>,
    password_file: Option<Env<PathBuf>>,
    expect_role: Option<Env<String>>,
    ca_file: Option<Env<PathBuf>>,
    #[serde(default)]
    tls_skip_verify: bool,
}

impl Keys {
    pub fn build(self, scrubber: &mut Scrubber) -> Result<RedisSpec, Problem> {
        let Env(url) = &self.url;
        let scheme = keys::scheme(url, &["redis", "rediss"])?;
        let (host, port) = keys::host_and_port(url, 6379)?;
        let password = keys::password(url, self.password, self.password_file, scrubber)?;
        let from_url = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
        if from_url.is_some() && self.username.is_some() {
            return Err(Problem::at(
                "username",
                "give the user once: in the URL or `username`",
            ));
        }
        let username = from_url.or(self.username.map(|Env(u)| u));
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            path => path
                .parse()
                .map_err(|_| Problem::at("url", "the path must be a database number, e.g. /0"))?,
        };
        let tls = match scheme {
            "rediss" => Some(keys::tls_config(
                keys::verify(self.tls_skip_verify),
                self.ca_file.as_ref(),
            )?),
            _ => None,
        };
        let expect_role = match self.expect_role.as_ref().map(|Env(r)| r.as_str()) {
            None => None,
            Some("master" | "primary") => Some(RedisRole::Master),
            Some("replica" | "slave") => Some(RedisRole::Replica),
            Some(_) => return Err(Problem::at("expect_role", "must be master or replica")),
        };
        Ok(RedisSpec {
            host,
            port,
            tls,
            username,
            password,
            db,
            expect_role,
        })
    }
}

/// The replication role the server must report (`ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisRole {
    Master,
    Replica,
}

impl RedisRole {
    fn as_str(self) -> &'static str {
        match self {
            RedisRole::Master => "master",
            RedisRole::Replica => "slave",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RedisSpec {
    pub host: String,
    pub port: u16,
    /// Present for `rediss://`.
    pub tls: Option<Arc<ClientConfig>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: i64,
    pub expect_role: Option<RedisRole>,
}

impl RedisSpec {
    pub fn target(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!(
            "{scheme}://{}/{}",
            host_port(&self.host, self.port),
            self.db
        )
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        let (stream, heard) = probe.open(&self.host, self.port, self.tls.as_ref()).await?;
        let info = RedisConnectionInfo {
            db: self.db,
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_string()),
            protocol: ProtocolVersion::RESP2,
        };
        let (mut connection, driver) = probe
            .phase(Phase::Auth, async {
                let opened = MultiplexedConnection::new(&info, stream).await;
                let (connection, driver) = opened.map_err(|err| classify(&err, &heard))?;
                Ok((connection, tokio::spawn(driver)))
            })
            .await?;
        let queried = probe
            .phase(Phase::Query, self.query(&mut connection, &heard))
            .await;
        close(connection, driver);
        let role = queried?;
        if let Some(role) = role {
            probe.observe("role", role);
        }
        Ok(())
    }

    /// PING, then ROLE when a role is expected; returns the role seen.
    async fn query(
        &self,
        connection: &mut MultiplexedConnection,
        heard: &Heard,
    ) -> Result<Option<String>, Fault> {
        let pong: Value = redis::cmd("PING")
            .query_async(connection)
            .await
            .map_err(|err| classify(&err, heard))?;
        if !matches!(&pong, Value::SimpleString(s) if s == "PONG") {
            return Err(Fault::new(
                Reason::UnexpectedResponse,
                format!("PING answered {pong:?}"),
            ));
        }
        let Some(expected) = self.expect_role else {
            return Ok(None);
        };
        let reply: Value = redis::cmd("ROLE")
            .query_async(connection)
            .await
            .map_err(|err| classify(&err, heard))?;
        let role = first_text(&reply).unwrap_or_default();
        if role != expected.as_str() {
            let detail = format!("expected role {}, ROLE answered {role}", expected.as_str());
            return Err(Fault::new(Reason::WrongRole, detail));
        }
        Ok(Some(role))
    }
}

/// The first element of an array reply, as text.
fn first_text(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(items) => match items.first()? {
            Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Value::SimpleString(text) => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Drop the connection and stop its driver; the server sees the socket close.
fn close(connection: MultiplexedConnection, driver: JoinHandle<()>) {
    drop(connection);
    driver.abort();
}

/// Bytes a RESP2/RESP3 reply may start with.
const RESP_TYPES: &[u8] = b"+-:$*_,#!=(|~>%";

/// Classify a Redis error from its kind and server error code, or from
/// what the wire showed when the server never answered in RESP.
fn classify(err: &RedisError, heard: &Heard) -> Fault {
    let detail = err.to_string();
    let reason = match heard.first_byte() {
        Some(byte) if !RESP_TYPES.contains(&byte) => Reason::ProtocolError,
        _ if err.kind() == ErrorKind::AuthenticationFailed => Reason::AuthFailed,
        _ if matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM")) => Reason::AuthFailed,
        None if err.is_io_error() || err.is_connection_dropped() => Reason::ClosedByPeer,
        _ if err.is_connection_dropped() => Reason::ClosedByPeer,
        _ => Reason::UnexpectedResponse,
    };
    Fault::new(reason, detail)
}
