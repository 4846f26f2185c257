//! Turns a parsed `[[check]]` table into a [`CheckSpec`] of its kind,
//! checking the rules serde cannot express (required keys, URL shapes,
//! secrets from one source only).

use super::expand::Env;
use super::{checked_timeout, Check, Problem, RawCheck, Scrubber, Secret};
use crate::check::dns::DnsSpec;
use crate::check::http::HttpSpec;
use crate::check::postgres::{PostgresSpec, Role, SslMode};
use crate::check::redis::{RedisRole, RedisSpec};
use crate::check::tcp::TcpSpec;
use crate::check::{CheckSpec, Kind};
use crate::net::tls::{self, Verify};
use crate::net::url_parts::{self, percent_decode};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Longest run of PostgreSQL cycles one check may ask for.
const MAX_CYCLES: u32 = 1000;

pub(super) fn check(
    raw: RawCheck,
    name: String,
    default_timeout: Duration,
    scrubber: &mut Scrubber,
) -> Result<Check, Problem> {
    check_name(&name)?;
    let timeout = match &raw.timeout {
        Some(Env(timeout)) => {
            checked_timeout((*timeout).into()).map_err(|msg| Problem::at("timeout", msg))?
        }
        None => default_timeout,
    };
    let max_duration = raw
        .max_duration
        .as_ref()
        .map(|Env(budget)| budget_within((*budget).into(), timeout))
        .transpose()?;
    let spec = match raw.kind {
        Kind::Dns => CheckSpec::Dns(dns(raw)?),
        Kind::Tcp => CheckSpec::Tcp(tcp(raw)?),
        Kind::Postgres => CheckSpec::Postgres(postgres(raw, scrubber)?),
        Kind::Redis => CheckSpec::Redis(redis(raw, scrubber)?),
        Kind::Http => CheckSpec::Http(http(raw, scrubber)?),
    };
    if let (CheckSpec::Tcp(tcp), Some(_)) = (&spec, max_duration) {
        if tcp.expect == crate::check::tcp::Expect::Unreachable {
            return Err(Problem::at(
                "max_duration",
                "a path that must stay closed has no latency budget",
            ));
        }
    }
    Ok(Check {
        name,
        timeout,
        max_duration,
        spec,
    })
}

/// A latency budget must be positive and shorter than the deadline.
fn budget_within(budget: Duration, timeout: Duration) -> Result<Duration, Problem> {
    if budget.is_zero() || budget >= timeout {
        return Err(Problem::at(
            "max_duration",
            format!(
                "must be more than zero and less than the timeout ({})",
                humantime::format_duration(timeout)
            ),
        ));
    }
    Ok(budget)
}

/// Names become metric labels and file names in reports: keep them plain.
fn check_name(name: &str) -> Result<(), Problem> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if name.is_empty() || name.len() > 128 || !plain {
        return Err(Problem::at(
            "name",
            "use 1-128 characters from A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}

fn required<T>(value: Option<T>, key: &'static str, kind: Kind) -> Result<T, Problem> {
    value.ok_or_else(|| Problem::check(format!("kind `{}` needs key `{key}`", kind.as_str())))
}

fn strings(list: Option<Vec<Env<String>>>) -> Vec<String> {
    list.unwrap_or_default()
        .into_iter()
        .map(|Env(s)| s)
        .collect()
}

fn dns(raw: RawCheck) -> Result<DnsSpec, Problem> {
    let Env(host) = required(raw.host, "host", Kind::Dns)?;
    if host.parse::<std::net::IpAddr>().is_ok() || host.is_empty() {
        return Err(Problem::at(
            "host",
            "a dns check needs a name to resolve, not an address",
        ));
    }
    Ok(DnsSpec {
        host,
        expect_cidrs: raw
            .expect_cidrs
            .unwrap_or_default()
            .into_iter()
            .map(|Env(n)| n)
            .collect(),
        expect_addresses: raw
            .expect_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|Env(a)| a)
            .collect(),
        allow_public: raw.allow_public.unwrap_or(false),
    })
}

fn tcp(raw: RawCheck) -> Result<TcpSpec, Problem> {
    let Env(host) = required(raw.host, "host", Kind::Tcp)?;
    let super::expand::Port(port) = required(raw.port, "port", Kind::Tcp)?;
    if host.is_empty() {
        return Err(Problem::at("host", "must not be empty"));
    }
    Ok(TcpSpec {
        host,
        port,
        expect: raw.expect.unwrap_or_default(),
    })
}

/// Host and port of a URL, the port defaulting per scheme.
fn host_and_port(url: &Url, default_port: u16) -> Result<(String, u16), Problem> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Problem::at("url", "has no host"))?;
    let port = url.port().unwrap_or(default_port);
    if port == 0 {
        return Err(Problem::at("url", "port must not be zero"));
    }
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}

fn scheme<'a>(url: &Url, allowed: &[&'a str]) -> Result<&'a str, Problem> {
    allowed
        .iter()
        .find(|s| **s == url.scheme())
        .copied()
        .ok_or_else(|| {
            Problem::at(
                "url",
                format!("scheme must be one of {}", allowed.join(", ")),
            )
        })
}

/// The password from exactly one of: the URL, `password`, `password_file`.
fn password(
    url: &Url,
    raw_password: Option<Secret>,
    file: Option<Env<PathBuf>>,
) -> Result<Option<Secret>, Problem> {
    let in_url = url.password().map(|pw| {
        let decoded = percent_decode(pw);
        Secret::new(decoded)
    });
    let from_file = match file {
        Some(Env(path)) => Some(read_secret(&path)?),
        None => None,
    };
    let sources = [in_url, raw_password, from_file];
    let count = sources.iter().filter(|s| s.is_some()).count();
    if count > 1 {
        return Err(Problem::at(
            "password",
            "give the password once: in the URL, `password` or `password_file`",
        ));
    }
    Ok(sources.into_iter().flatten().next())
}

fn read_secret(path: &std::path::Path) -> Result<Secret, Problem> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Problem::at(
            "password_file",
            format!("cannot read {}: {err}", path.display()),
        )
    })?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(Problem::at(
            "password_file",
            format!("{} is empty", path.display()),
        ));
    }
    Ok(Secret::new(value))
}

fn tls_config(
    verify: Verify,
    ca_file: Option<&Env<PathBuf>>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, Problem> {
    tls::client_config(verify, ca_file.map(|Env(p)| p.as_path()))
        .map_err(|msg| Problem::at("ca_file", msg))
}

fn postgres(raw: RawCheck, scrubber: &mut Scrubber) -> Result<PostgresSpec, Problem> {
    let Env(url) = required(raw.url, "url", Kind::Postgres)?;
    scheme(&url, &["postgres", "postgresql"])?;
    let (host, port) = host_and_port(&url, 5432)?;
    let user = percent_decode(url.username());
    if user.is_empty() {
        return Err(Problem::at(
            "url",
            "needs a user, e.g. postgres://probe@host:5432/app",
        ));
    }
    let password = password(&url, raw.password, raw.password_file)?;
    if let Some(secret) = &password {
        scrubber.add(secret);
    }
    let dbname = match url.path().trim_start_matches('/') {
        "" => user.clone(),
        path => percent_decode(path),
    };
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
    let tls = match sslmode {
        SslMode::Disable => None,
        SslMode::VerifyFull => Some(tls_config(Verify::Full, raw.ca_file.as_ref())?),
        // libpq: without a root certificate, require and prefer only encrypt.
        SslMode::Prefer | SslMode::Require if raw.ca_file.is_some() => {
            Some(tls_config(Verify::Full, raw.ca_file.as_ref())?)
        }
        SslMode::Prefer | SslMode::Require => Some(tls_config(Verify::Nothing, None)?),
    };
    let cycles = raw.cycles.unwrap_or(1);
    if cycles == 0 || cycles > MAX_CYCLES {
        return Err(Problem::at(
            "cycles",
            format!("must be between 1 and {MAX_CYCLES}"),
        ));
    }
    let expect_role = match raw.expect_role.as_ref().map(|Env(r)| r.as_str()) {
        None | Some("any") => Role::Any,
        Some("primary") => Role::Primary,
        Some("replica") => Role::Replica,
        Some(_) => {
            return Err(Problem::at(
                "expect_role",
                "must be primary, replica or any",
            ))
        }
    };
    let query = raw
        .query
        .map(|Env(q)| q)
        .unwrap_or_else(|| "SELECT 1".into());
    if query.trim().is_empty() {
        return Err(Problem::at("query", "must not be empty"));
    }
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
        expect_role,
        expect_extensions: strings(raw.expect_extensions),
    })
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

fn redis(raw: RawCheck, scrubber: &mut Scrubber) -> Result<RedisSpec, Problem> {
    let Env(url) = required(raw.url, "url", Kind::Redis)?;
    let scheme = scheme(&url, &["redis", "rediss"])?;
    let (host, port) = host_and_port(&url, 6379)?;
    let password = password(&url, raw.password, raw.password_file)?;
    if let Some(secret) = &password {
        scrubber.add(secret);
    }
    let from_url = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
    if from_url.is_some() && raw.username.is_some() {
        return Err(Problem::at(
            "username",
            "give the user once: in the URL or `username`",
        ));
    }
    let username = from_url.or(raw.username.map(|Env(u)| u));
    let db = match url.path().trim_start_matches('/') {
        "" => 0,
        path => path
            .parse()
            .map_err(|_| Problem::at("url", "the path must be a database number, e.g. /0"))?,
    };
    let verify = if raw.tls_skip_verify.unwrap_or(false) {
        Verify::Nothing
    } else {
        Verify::Full
    };
    let tls = match scheme {
        "rediss" => Some(tls_config(verify, raw.ca_file.as_ref())?),
        _ => None,
    };
    let expect_role = match raw.expect_role.as_ref().map(|Env(r)| r.as_str()) {
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

fn http(raw: RawCheck, scrubber: &mut Scrubber) -> Result<HttpSpec, Problem> {
    let Env(url) = required(raw.url, "url", Kind::Http)?;
    let scheme = scheme(&url, &["http", "https"])?;
    let (host, port) = host_and_port(&url, if scheme == "https" { 443 } else { 80 })?;
    let authorization = url_parts::basic_authorization(&url).map(|(header, password)| {
        let header = Secret::new(header);
        if !password.is_empty() {
            scrubber.add(&Secret::new(password));
        }
        scrubber.add(&header);
        header
    });
    let path = url_parts::path_and_query(&url).to_string();
    let expect_status = raw.expect_status.unwrap_or_default();
    if expect_status.iter().any(|s| !(100..=599).contains(s)) {
        return Err(Problem::at("expect_status", "status codes are 100 to 599"));
    }
    let verify = if raw.tls_skip_verify.unwrap_or(false) {
        Verify::Nothing
    } else {
        Verify::Full
    };
    let tls = match scheme {
        "https" => Some(tls_config(verify, raw.ca_file.as_ref())?),
        _ => None,
    };
    let expect_headers = strings(raw.expect_headers);
    if let Some(bad) = expect_headers
        .iter()
        .find(|h| http::HeaderName::try_from(h.as_str()).is_err())
    {
        return Err(Problem::at(
            "expect_headers",
            format!("`{bad}` is not a header name"),
        ));
    }
    Ok(HttpSpec {
        host,
        port,
        path,
        tls,
        authorization,
        expect_status,
        expect_headers,
        expect_json_keys: strings(raw.expect_json_keys),
        expect_body: raw.expect_body.map(|Env(b)| b),
    })
}
