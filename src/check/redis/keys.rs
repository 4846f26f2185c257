//! The suite keys of `kind = "redis"` and the rules that build a
//! [`RedisSpec`] from them.

use super::iam::IamAuth;
use super::{RedisRole, RedisSpec};
use crate::check::crowd::MAX_CONCURRENCY;
use crate::check::idle;
use crate::check::keys::{self as shared, Problem};
use crate::expand::Env;
use crate::net::url_parts::percent_decode;
use crate::secret::{Scrubber, Secret};
use serde::Deserialize;
use std::path::PathBuf;

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
    tls_server_name: Option<Env<String>>,
    #[serde(default)]
    expect_auth_required: bool,
    concurrency: Option<u32>,
    idle: Option<idle::Steps>,
    tcp_keepalive: Option<Env<humantime::Duration>>,
    auth: Option<Env<String>>,
    user: Option<Env<String>>,
    cache_name: Option<Env<String>>,
    #[serde(default)]
    serverless: bool,
}

impl Keys {
    /// The keys that say where and how to connect, the rest at their
    /// defaults: the Redis failover drill's endpoint is built by these rules.
    pub fn endpoint(
        url: Env<url::Url>,
        password: Option<Secret>,
        password_file: Option<Env<PathBuf>>,
        ca_file: Option<Env<PathBuf>>,
        tls_server_name: Option<Env<String>>,
    ) -> Keys {
        Keys {
            url,
            username: None,
            password,
            password_file,
            expect_role: None,
            ca_file,
            tls_skip_verify: false,
            tls_server_name,
            expect_auth_required: false,
            concurrency: None,
            idle: None,
            tcp_keepalive: None,
            auth: None,
            user: None,
            cache_name: None,
            serverless: false,
        }
    }

    pub fn build(self, scrubber: &mut Scrubber) -> Result<RedisSpec, Problem> {
        let Env(url) = &self.url;
        let scheme = shared::scheme(url, &["redis", "rediss"])?;
        let (host, port) = shared::host_and_port(url, 6379)?;
        let password = shared::password(url, self.password, self.password_file, scrubber)?;
        let from_url = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
        if from_url.is_some() && self.username.is_some() {
            return Err(Problem::at(
                "username",
                "give the user once: in the URL or `username`",
            ));
        }
        if self.username.is_some() && self.user.is_some() {
            return Err(Problem::at(
                "user",
                "give the user once: `user` or `username`",
            ));
        }
        let username = from_url.or(self.username.or(self.user).map(|Env(u)| u));
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            path => path
                .parse()
                .map_err(|_| Problem::at("url", "the path must be a database number, e.g. /0"))?,
        };
        let tls = shared::tls_setup(
            scheme == "rediss",
            shared::verify(self.tls_skip_verify),
            self.ca_file.as_ref(),
            self.tls_server_name,
        )?;
        if self.serverless && tls.is_none() {
            return Err(Problem::at(
                "serverless",
                "ElastiCache Serverless speaks only TLS: use rediss://",
            ));
        }
        let iam = iam_auth(
            self.auth,
            self.cache_name,
            self.serverless,
            &username,
            tls.is_some(),
            password.is_some(),
        )?;
        if self.expect_auth_required && password.is_none() && iam.is_none() {
            return Err(Problem::at(
                "expect_auth_required",
                "needs a password (or password_file) to authenticate after proving AUTH is enforced",
            ));
        }
        let expect_role = match self.expect_role.as_ref().map(|Env(r)| r.as_str()) {
            None => None,
            Some("master" | "primary") => Some(RedisRole::Master),
            Some("replica" | "slave") => Some(RedisRole::Replica),
            Some(_) => return Err(Problem::at("expect_role", "must be master or replica")),
        };
        let idle = idle::build(self.idle, self.tcp_keepalive)?;
        idle::refuse(&idle, "concurrency", self.concurrency.is_some())?;
        Ok(RedisSpec {
            host,
            port,
            tls,
            username,
            password,
            db,
            expect_role,
            expect_auth_required: self.expect_auth_required,
            concurrency: shared::concurrency(self.concurrency, MAX_CONCURRENCY)?,
            idle,
            iam,
            serverless: self.serverless,
        })
    }
}

/// `auth = "iam"` and its keys: a user and a cache name, over TLS, with no
/// password (the token is the password); the IAM keys need `auth = "iam"`.
fn iam_auth(
    auth: Option<Env<String>>,
    cache_name: Option<Env<String>>,
    serverless: bool,
    username: &Option<String>,
    tls: bool,
    password: bool,
) -> Result<Option<IamAuth>, Problem> {
    match auth.as_ref().map(|Env(a)| a.as_str()) {
        None | Some("password") => {
            if cache_name.is_some() {
                return Err(Problem::at("cache_name", "applies with `auth = \"iam\"`"));
            }
            return Ok(None);
        }
        Some("iam") => {}
        Some(_) => return Err(Problem::at("auth", "must be password or iam")),
    }
    if !tls {
        return Err(Problem::at(
            "auth",
            "IAM authentication needs TLS: use rediss:// (ElastiCache takes IAM tokens only with in-transit encryption)",
        ));
    }
    if password {
        return Err(Problem::at(
            "password",
            "with `auth = \"iam\"` the token is the password: remove it",
        ));
    }
    let user = username
        .clone()
        .ok_or_else(|| Problem::at("auth", "IAM authentication needs `user`"))?;
    let Env(cache_name) = cache_name.ok_or_else(|| {
        Problem::at(
            "auth",
            "IAM authentication needs `cache_name` (the replication group or Serverless cache)",
        )
    })?;
    Ok(Some(IamAuth {
        user,
        cache_name,
        serverless,
        region: None,
    }))
}
