//! `kind = "redis"`: Redis / Valkey / ElastiCache: TLS (`rediss://`), AUTH
//! (password or ACL user), PING, and optionally the replication role.

mod classify;
pub mod iam;
mod keys;

pub use keys::Keys;

use super::crowd;
use super::idle::{self, Idle, IdleSession};
use super::{InFlight, OpenedFacts, Probe};
use crate::net::tls::TlsSetup;
use crate::net::url_parts::host_port;
use crate::net::BoxedStream;
use crate::net::Net;
use crate::outcome::{Failure, Fault, Phase, Reason};
use crate::secret::Secret;
use classify::{classify, server_error};
use redis::aio::MultiplexedConnection;
use redis::{ProtocolVersion, RedisConnectionInfo, RedisError, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

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
    pub tls: Option<TlsSetup>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: i64,
    pub expect_role: Option<RedisRole>,
    /// PING before AUTH must answer NOAUTH: an open default user accepts
    /// any token, so a passing AUTH alone does not prove AUTH is enforced.
    pub expect_auth_required: bool,
    /// Sessions to hold open at once, when asked.
    pub concurrency: Option<u32>,
    /// Sessions held idle, then used (`idle`).
    pub idle: Option<Idle>,
    /// `auth = "iam"`: a fresh ElastiCache IAM token per connection.
    pub iam: Option<iam::IamAuth>,
    /// An ElastiCache Serverless cache: on its reader port, READONLY
    /// comes before any read.
    pub serverless: bool,
}

/// ElastiCache Serverless's reader endpoint port (the primary is 6379).
pub const SERVERLESS_READER_PORT: u16 = 6380;

/// An authenticated connection and the facts its failures are judged by.
pub struct Session {
    pub connection: MultiplexedConnection,
    driver: JoinHandle<()>,
    pub facts: OpenedFacts,
}

impl Session {
    /// Classify an error a command on this session raised, as a check would.
    pub fn fault(&self, err: &RedisError) -> Fault {
        classify(err, &self.facts)
    }

    /// Send `cmd` and read its reply; an error classified as a check would.
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, Fault> {
        let reply = cmd.query_async(&mut self.connection).await;
        reply.map_err(|err| classify(&err, &self.facts))
    }

    /// Drop the connection and stop its driver: the server sees it close.
    pub fn close(self) {
        close(self.connection, self.driver);
    }
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
        if let Some(idle) = &self.idle {
            return Box::pin(self.run_idle(probe, idle)).await;
        }
        let mut session = self.open(probe, false).await?;
        let connect = probe.phases.get(&Phase::Connect).copied();
        let queried = probe
            .phase(
                Phase::Query,
                self.query(&mut session.connection, &session.facts),
            )
            .await;
        close(session.connection, session.driver);
        let (observed, ping) = queried?;
        probe.observe_hops(connect.unwrap_or_default(), ping);
        for (key, value) in observed {
            probe.observe(key, value);
        }
        match self.concurrency {
            Some(sessions) => self.crowd(probe, sessions).await,
            None => Ok(()),
        }
    }

    /// Connect, TLS when asked, AUTH and SELECT; `listen_first`: see [`unasked`].
    async fn open(&self, probe: &mut Probe<'_>, listen_first: bool) -> Result<Session, Failure> {
        let opened = probe.open(&self.host, self.port, self.tls.as_ref()).await?;
        let (mut stream, facts) = opened.split();
        if listen_first {
            let refused = probe
                .phase(Phase::Auth, async { Ok(unasked(&mut stream).await) })
                .await?;
            if let Some(fault) = refused {
                return Err(Failure::new(Phase::Auth, fault));
            }
        }
        // No credentials for redis-rs: it would replace the server's AUTH
        // error with a fixed text. The probe sends AUTH itself.
        let info = RedisConnectionInfo {
            db: 0,
            username: None,
            password: None,
            protocol: ProtocolVersion::RESP2,
        };
        let authed = probe
            .phase(Phase::Auth, async {
                let opened = MultiplexedConnection::new(&info, stream).await;
                let (mut connection, driver) = opened.map_err(|err| classify(&err, &facts))?;
                let driver = tokio::spawn(driver);
                match self.authenticate(&mut connection, &facts).await {
                    Ok(()) => Ok((connection, driver)),
                    Err(fault) => {
                        close(connection, driver);
                        Err(fault)
                    }
                }
            })
            .await;
        match authed {
            Ok((connection, driver)) => Ok(Session {
                connection,
                driver,
                facts,
            }),
            Err(failure) => Err(probe.tls_required(failure, &facts, &self.host).await),
        }
    }

    /// Resolve, connect, TLS and AUTH within `limit`, for callers that
    /// keep their own clock (the failover drill).
    pub async fn session(&self, net: &Net, limit: Duration) -> Result<Session, Fault> {
        let mut probe = Probe::new(net, limit, InFlight::default());
        self.open(&mut probe, false)
            .await
            .map_err(|failure| Fault::new(failure.reason, failure.detail))
    }

    /// Authenticated sessions held idle for each step, then asked what the
    /// check always asks (PING, cluster state, ROLE).
    async fn run_idle<'p>(&self, probe: &mut Probe<'p>, idle: &Idle) -> Result<(), Failure> {
        let open = |mut sibling: Probe<'p>| async move {
            let opened = self
                .open(&mut sibling, false)
                .await
                .map(|session| IdleSession {
                    heard: session.facts.raw.clone(),
                    session,
                });
            (sibling, opened)
        };
        let use_it = |mut sibling: Probe<'p>, mut session: Session| async move {
            let queried = sibling
                .phase(
                    Phase::Query,
                    self.query(&mut session.connection, &session.facts),
                )
                .await;
            close(session.connection, session.driver);
            let queried = queried.map(|(observed, _)| {
                for (key, value) in observed {
                    sibling.observe(key, value);
                }
            });
            (sibling, queried)
        };
        idle::run(probe, idle, open, use_it).await
    }

    /// `sessions` connections held open at once, each answering PING.
    async fn crowd<'p>(&self, probe: &mut Probe<'p>, sessions: u32) -> Result<(), Failure> {
        let open = |mut sibling: Probe<'p>| async move {
            let opened = self.open(&mut sibling, true).await;
            (sibling, opened)
        };
        let finish = |mut sibling: Probe<'p>, mut session: Session| async move {
            let pinged = sibling
                .phase(Phase::Query, async {
                    let pong: Result<Value, RedisError> = redis::cmd("PING")
                        .query_async(&mut session.connection)
                        .await;
                    pong.map(drop).map_err(|err| classify(&err, &session.facts))
                })
                .await;
            close(session.connection, session.driver);
            pinged
        };
        crowd::run(probe, sessions, open, finish).await
    }

    /// Prove AUTH is enforced when asked, then AUTH and SELECT.
    async fn authenticate(
        &self,
        connection: &mut MultiplexedConnection,
        facts: &OpenedFacts,
    ) -> Result<(), Fault> {
        if self.expect_auth_required {
            let before: Result<Value, RedisError> =
                redis::cmd("PING").query_async(connection).await;
            match before {
                Err(err) if err.code() == Some("NOAUTH") => {}
                Err(err) => return Err(classify(&err, facts)),
                Ok(reply) => {
                    return Err(Fault::new(
                        Reason::UnexpectedResponse,
                        format!("AUTH is not enforced: PING before AUTH answered {reply:?}; the default user is open, so any token is accepted"),
                    ))
                }
            }
        }
        if let Some(iam) = &self.iam {
            let token = iam.token().await?;
            let _: Value = redis::cmd("AUTH")
                .arg(&iam.user)
                .arg(token.expose())
                .query_async(connection)
                .await
                .map_err(|err| iam.rejected(classify(&err, facts), &self.host))?;
        }
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.username {
                auth.arg(user);
            }
            auth.arg(password.expose());
            let _: Value = auth
                .query_async(connection)
                .await
                .map_err(|err| classify(&err, facts))?;
        }
        if self.serverless && self.port == SERVERLESS_READER_PORT {
            let _: Value = redis::cmd("READONLY")
                .query_async(connection)
                .await
                .map_err(|err| classify(&err, facts))?;
        }
        if self.db != 0 {
            let _: Value = redis::cmd("SELECT")
                .arg(self.db)
                .query_async(connection)
                .await
                .map_err(|err| classify(&err, facts))?;
        }
        Ok(())
    }

    /// PING, cluster state, and ROLE when a role is expected; returns what
    /// was observed and PING's round trip.
    async fn query(
        &self,
        connection: &mut MultiplexedConnection,
        facts: &OpenedFacts,
    ) -> Result<(Vec<(&'static str, String)>, Duration), Fault> {
        let pinging = Instant::now();
        let pong: Value = redis::cmd("PING")
            .query_async(connection)
            .await
            .map_err(|err| classify(&err, facts))?;
        let ping = pinging.elapsed();
        if !matches!(&pong, Value::SimpleString(s) if s == "PONG") {
            return Err(Fault::new(
                Reason::UnexpectedResponse,
                format!("PING answered {pong:?}"),
            ));
        }
        let mut observed = Vec::new();
        let cluster = cluster_state(connection, facts).await?;
        if let Some(state) = &cluster {
            observed.push(("cluster_state", state.clone()));
            if state != "ok" {
                return Err(Fault::new(
                    Reason::UnexpectedResponse,
                    format!("cluster mode: CLUSTER INFO says cluster_state:{state} (slots uncovered or a node failed)"),
                ));
            }
        }
        let Some(expected) = self.expect_role else {
            return Ok((observed, ping));
        };
        if cluster.is_some() {
            // A configuration endpoint reaches any node: a role says nothing.
            observed.push(("expect_role", "not judged in cluster mode".to_string()));
            return Ok((observed, ping));
        }
        let reply: Value = redis::cmd("ROLE")
            .query_async(connection)
            .await
            .map_err(|err| classify(&err, facts))?;
        let role = first_text(&reply).unwrap_or_default();
        if role != expected.as_str() {
            let detail = format!("expected role {}, ROLE answered {role}", expected.as_str());
            return Err(Fault::new(Reason::WrongRole, detail));
        }
        observed.push(("role", role));
        Ok((observed, ping))
    }
}

/// `Some(cluster_state)` when the server runs in cluster mode (`INFO
/// cluster`, then `CLUSTER INFO`); `None` otherwise, or when the user may
/// not run INFO (a PING-only ACL user is still a passing check).
async fn cluster_state(
    connection: &mut MultiplexedConnection,
    facts: &OpenedFacts,
) -> Result<Option<String>, Fault> {
    let info: Result<String, RedisError> = redis::cmd("INFO")
        .arg("cluster")
        .query_async(connection)
        .await;
    let info = match info {
        Ok(info) => info,
        Err(err) if err.code() == Some("NOPERM") => return Ok(None),
        Err(err) => return Err(classify(&err, facts)),
    };
    if field(&info, "cluster_enabled") != Some("1") {
        return Ok(None);
    }
    let cluster: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(connection)
        .await
        .map_err(|err| classify(&err, facts))?;
    Ok(Some(
        field(&cluster, "cluster_state")
            .unwrap_or("unknown")
            .to_string(),
    ))
}

/// The value of `name:value` in an INFO-style text.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.trim_end().strip_prefix(name)?.strip_prefix(':'))
}

/// The first element of an array reply, as text.
pub fn first_text(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(items) => text(items.first()?),
        _ => None,
    }
}

/// A bulk or simple string reply, as text.
pub fn text(reply: &Value) -> Option<String> {
    match reply {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// How long a session of a crowd listens before its first command.
const LISTEN_FIRST: Duration = Duration::from_millis(100);

/// A server at `maxclients` writes its refusal on accept and closes, and a
/// client's first command races it: redis-rs drops the reply nobody asked
/// for, or the reset that answers the command discards it. So in a crowd,
/// where the limit is the question, each session listens briefly first.
async fn unasked(stream: &mut BoxedStream) -> Option<Fault> {
    let mut said = [0u8; 256];
    let read = tokio::time::timeout(LISTEN_FIRST, stream.read(&mut said))
        .await
        .ok()?
        .ok()?;
    if read == 0 {
        let detail = "the server closed the connection before any command";
        return Some(Fault::new(Reason::ClosedByPeer, detail));
    }
    let text = String::from_utf8_lossy(&said[..read]);
    let Some(line) = text
        .strip_prefix('-')
        .and_then(|rest| rest.split("\r\n").next())
    else {
        let detail = format!("the server spoke before any command: {text:?}");
        return Some(Fault::new(Reason::ProtocolError, detail));
    };
    let (code, words) = line.split_once(' ').unwrap_or((line, ""));
    Some(server_error(code, line, words))
}

/// Drop the connection and stop its driver; the server sees the socket close.
fn close(connection: MultiplexedConnection, driver: JoinHandle<()>) {
    drop(connection);
    driver.abort();
}
