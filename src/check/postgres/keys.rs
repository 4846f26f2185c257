//! The suite keys of `kind = "postgres"` and the rules that build a
//! [`PostgresSpec`] from them (also the failover drill's endpoints).

use super::{copy, PostgresSpec, RdsIam, Role, SslMode};
use crate::check::crowd::MAX_CONCURRENCY;
use crate::check::idle;
use crate::check::keys::{self as shared, Problem};
use crate::expand::Env;
use crate::net::tls::Verify;
use crate::net::url_parts::percent_decode;
use crate::secret::{Scrubber, Secret};
use serde::Deserialize;
use std::path::PathBuf;

/// Longest run of cycles one check may ask for.
const MAX_CYCLES: u32 = 1000;

/// The suite keys of `kind = "postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    url: Env<url::Url>,
    password: Option<Secret>,
    password_file: Option<Env<PathBuf>>,
    cycles: Option<u32>,
    query: Option<Env<String>>,
    expect_role: Option<Env<String>>,
    expect_extensions: Option<Vec<Env<String>>>,
    ca_file: Option<Env<PathBuf>>,
    tls_server_name: Option<Env<String>>,
    copy_bytes: Option<Env<String>>,
    #[serde(default)]
    prepared_statements: bool,
    concurrency: Option<u32>,
    idle: Option<idle::Steps>,
    tcp_keepalive: Option<Env<humantime::Duration>>,
    auth: Option<Env<String>>,
}

impl Keys {
    /// The keys that say where and how to connect, with the rest at their
    /// defaults: the failover drill's endpoints are built by these rules.
    pub fn endpoint(
        url: Env<url::Url>,
        password: Option<Secret>,
        password_file: Option<Env<PathBuf>>,
        ca_file: Option<Env<PathBuf>>,
        tls_server_name: Option<Env<String>>,
    ) -> Keys {
        Keys {
            url,
            password,
            password_file,
            cycles: None,
            query: None,
            expect_role: None,
            expect_extensions: None,
            ca_file,
            tls_server_name,
            copy_bytes: None,
            prepared_statements: false,
            concurrency: None,
            idle: None,
            tcp_keepalive: None,
            auth: None,
        }
    }

    pub fn build(self, scrubber: &mut Scrubber) -> Result<PostgresSpec, Problem> {
        let Env(url) = &self.url;
        shared::scheme(url, &["postgres", "postgresql"])?;
        let (host, port) = shared::host_and_port(url, 5432)?;
        let user = percent_decode(url.username());
        if user.is_empty() {
            return Err(Problem::at(
                "url",
                "needs a user, e.g. postgres://probe@host:5432/app",
            ));
        }
        let password = shared::password(url, self.password, self.password_file, scrubber)?;
        let dbname = match url.path().trim_start_matches('/') {
            "" => user.clone(),
            path => percent_decode(path),
        };
        let (sslmode, application_name) = url_parameters(url)?;
        let verify = match sslmode {
            // libpq: without a root certificate, require and prefer only encrypt.
            SslMode::Prefer | SslMode::Require if self.ca_file.is_none() => Verify::Nothing,
            _ => Verify::Full,
        };
        let tls = shared::tls_setup(
            sslmode != SslMode::Disable,
            verify,
            self.ca_file.as_ref(),
            self.tls_server_name,
        )?;
        let cycles = self.cycles.unwrap_or(1);
        if cycles == 0 || cycles > MAX_CYCLES {
            return Err(Problem::at(
                "cycles",
                format!("must be between 1 and {MAX_CYCLES}"),
            ));
        }
        let query = self.query.map_or_else(|| "SELECT 1".into(), |Env(q)| q);
        if query.trim().is_empty() {
            return Err(Problem::at("query", "must not be empty"));
        }
        let iam = rds_iam(self.auth, sslmode, password.is_some())?;
        let idle = idle::build(self.idle, self.tcp_keepalive)?;
        idle::refuse(&idle, "cycles", self.cycles.is_some())?;
        idle::refuse(&idle, "copy_bytes", self.copy_bytes.is_some())?;
        idle::refuse(&idle, "prepared_statements", self.prepared_statements)?;
        idle::refuse(&idle, "concurrency", self.concurrency.is_some())?;
        Ok(PostgresSpec {
            host,
            port,
            user,
            password,
            dbname,
            application_name,
            sslmode,
            tls,
            cycles,
            query,
            expect_role: role(self.expect_role)?,
            expect_extensions: shared::strings(self.expect_extensions),
            copy_bytes: shared::byte_size(self.copy_bytes, "copy_bytes", copy::MAX_COPY_BYTES)?,
            prepared_statements: self.prepared_statements,
            concurrency: shared::concurrency(self.concurrency, MAX_CONCURRENCY)?,
            idle,
            iam,
        })
    }
}

/// `sslmode` and `application_name` from the URL's query.
fn url_parameters(url: &url::Url) -> Result<(SslMode, String), Problem> {
    let mut sslmode = SslMode::Prefer;
    let mut application_name = "vpc-probe".to_string();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => sslmode = parse_sslmode(&value)?,
            "application_name" => application_name = value.into_owned(),
            other => {
                return Err(Problem::at(
                    "url",
                    format!("unsupported URL parameter `{other}` (sslmode, application_name)"),
                ))
            }
        }
    }
    Ok((sslmode, application_name))
}

fn parse_sslmode(value: &str) -> Result<SslMode, Problem> {
    match value {
        "disable" => Ok(SslMode::Disable),
        "allow" | "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-ca" | "verify-full" => Ok(SslMode::VerifyFull),
        _ => Err(Problem::at(
            "url",
            "sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
        )),
    }
}

fn role(expect_role: Option<Env<String>>) -> Result<Role, Problem> {
    match expect_role.as_ref().map(|Env(r)| r.as_str()) {
        None | Some("any") => Ok(Role::Any),
        Some("primary") => Ok(Role::Primary),
        Some("replica") => Ok(Role::Replica),
        Some(_) => Err(Problem::at(
            "expect_role",
            "must be primary, replica or any",
        )),
    }
}

/// `auth = "iam"` (RDS, Aurora): the token is the password, so none is
/// given, and it goes only over TLS that checks the server
/// (`sslmode=verify-full` or `verify-ca`, the RDS CA bundle as `ca_file`).
fn rds_iam(
    auth: Option<Env<String>>,
    sslmode: SslMode,
    password: bool,
) -> Result<Option<RdsIam>, Problem> {
    match auth.as_ref().map(|Env(a)| a.as_str()) {
        None | Some("password") => return Ok(None),
        Some("iam") => {}
        Some(_) => return Err(Problem::at("auth", "must be password or iam")),
    }
    if sslmode != SslMode::VerifyFull {
        return Err(Problem::at(
            "auth",
            "IAM authentication sends its token only over verified TLS: add ?sslmode=verify-full and the RDS CA bundle as ca_file",
        ));
    }
    if password {
        return Err(Problem::at(
            "password",
            "with `auth = \"iam\"` the token is the password: remove it",
        ));
    }
    Ok(Some(RdsIam { region: None }))
}
