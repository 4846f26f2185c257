//! Suite files: TOML with `[suite]` and `[[check]]` tables. Everything is
//! validated before anything runs; every error names the file, the line and
//! the key, and never echoes a value (it may be a secret).

mod check;
mod fields;
mod locate;

use crate::aws::settings::{Explain, RoleArn, Settings, Source, DEFAULT_EXPLAIN_TIMEOUT};
use crate::check::CheckSpec;
use crate::expand::Env;
use crate::secret::Scrubber;
use crate::suite::{Check, Suite, DEFAULT_MIN_CERT_VALIDITY, DEFAULT_TIMEOUT};
use locate::Locator;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// Longest deadline a check may have: a probe that waits longer tells nothing more.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// A suite that cannot run, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", location(*line, *column), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    suite: RawSuite,
    /// Each check's table, read by [`check::parse`] once its kind is known.
    #[serde(default)]
    check: Vec<Spanned<toml::Table>>,
    /// Failover drills, run only by `vpc-probe drill`.
    #[serde(default)]
    drill: Vec<Spanned<toml::Table>>,
    /// Describe-only AWS reads that explain failures; none without the table.
    aws: Option<RawAws>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    region: Option<Env<String>>,
    endpoint_url: Option<Env<url::Url>>,
    peer_role_arn: Option<Env<RoleArn>>,
    network_role_arn: Option<Env<RoleArn>>,
    external_id: Option<Env<String>>,
    #[serde(default)]
    explain: Explain,
    source: Option<Env<Source>>,
    explain_timeout: Option<Env<humantime::Duration>>,
}

impl RawAws {
    fn settings(self, at: &Locator<'_>) -> Result<Settings, ConfigError> {
        let explain_timeout = match self.explain_timeout {
            Some(Env(timeout)) => check::checked_timeout(timeout.into())
                .map_err(|msg| at.key_error(None, "explain_timeout", msg))?,
            None => DEFAULT_EXPLAIN_TIMEOUT,
        };
        let roles = self.peer_role_arn.is_some() || self.network_role_arn.is_some();
        if self.external_id.is_some() && !roles {
            let message =
                "an external_id needs a peer_role_arn or network_role_arn to assume".to_string();
            return Err(at.key_error(None, "external_id", message));
        }
        Ok(Settings {
            region: self.region.map(|Env(r)| r),
            endpoint_url: self.endpoint_url.map(|Env(u)| u.to_string()),
            peer_role_arn: self.peer_role_arn.map(|Env(a)| a),
            network_role_arn: self.network_role_arn.map(|Env(a)| a),
            external_id: self.external_id.map(|Env(e)| e),
            explain: self.explain,
            source: self.source.map(|Env(s)| s),
            explain_timeout,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Option<Env<String>>,
    timeout: Option<Env<humantime::Duration>>,
    resolver: Option<Env<ResolverAddr>>,
    min_cert_validity: Option<Env<humantime::Duration>>,
}

/// `host:port` or a bare host (port 53) naming a DNS server.
#[derive(Debug, Clone, Copy)]
struct ResolverAddr(SocketAddr);

impl FromStr for ResolverAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ResolverAddr(addr));
        }
        crate::net::url_parts::bare_host(text)
            .parse::<std::net::IpAddr>()
            .map(|ip| ResolverAddr(SocketAddr::new(ip, 53)))
            .map_err(|_| "expected an IP address with optional port, e.g. 10.0.0.2:53".to_string())
    }
}

/// Read and validate a suite file.
pub fn load(path: &Path) -> Result<Suite, ConfigError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|err| ConfigError {
        file: file.clone(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read suite: {err}"),
    })?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    parse(&source, &file, stem.as_deref().unwrap_or("suite"))
}

/// Validate a suite's text; `file` names it in errors.
pub fn parse(source: &str, file: &str, default_name: &str) -> Result<Suite, ConfigError> {
    let at = Locator { source, file };
    let raw: RawFile = toml::from_str(source).map_err(|err| at.toml_error(&err))?;
    let default_timeout = match raw.suite.timeout {
        Some(Env(timeout)) => check::checked_timeout(timeout.into())
            .map_err(|msg| at.key_error(None, "timeout", msg))?,
        None => DEFAULT_TIMEOUT,
    };
    let default_validity = raw
        .suite
        .min_cert_validity
        .as_ref()
        .map_or(DEFAULT_MIN_CERT_VALIDITY, |Env(v)| (*v).into());
    if raw.check.is_empty() && raw.drill.is_empty() {
        return Err(at.error(None, None, "the suite has no [[check]]".into()));
    }
    let mut scrubber = Scrubber::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut checks = Vec::with_capacity(raw.check.len());
    for spanned in raw.check {
        let span = spanned.span();
        let defaults = (default_timeout, default_validity);
        let parsed = check::parse(spanned.into_inner(), defaults, &mut scrubber)
            .map_err(|problem| at.problem(&span, problem))?;
        let name_span = at.find_key(&span, "name").unwrap_or(span.clone());
        let line = at.line(name_span.start);
        if let Some(first) = seen.insert(parsed.name.clone(), line) {
            let name = parsed.name;
            let message = format!("duplicate check name `{name}` (first defined on line {first})");
            return Err(at.error(Some(name_span), Some("name"), message));
        }
        checks.push(parsed.check.map_err(|problem| at.problem(&span, problem))?);
    }
    let mut drills: Vec<crate::drill::DrillSpec> = Vec::with_capacity(raw.drill.len());
    for spanned in raw.drill {
        let span = spanned.span();
        let drill = check::parse_drill(spanned.into_inner(), &mut scrubber)
            .map_err(|problem| at.problem(&span, problem))?;
        if drills.iter().any(|known| known.name == drill.name) {
            let name_span = at.find_key(&span, "name").unwrap_or(span.clone());
            let message = format!("duplicate drill name `{}`", drill.name);
            return Err(at.error(Some(name_span), Some("name"), message));
        }
        drills.push(drill);
    }
    let aws = raw.aws.map(|aws| aws.settings(&at)).transpose()?;
    let mut checks = checks;
    if let Some(region) = aws.as_ref().and_then(|aws| aws.region.as_ref()) {
        sign_in(&mut checks, region);
    }
    let name = raw
        .suite
        .name
        .map(|Env(name)| name)
        .unwrap_or_else(|| default_name.to_string());
    Ok(Suite {
        name,
        path: PathBuf::from(file),
        resolver: raw.suite.resolver.map(|Env(ResolverAddr(addr))| addr),
        checks,
        drills,
        aws,
        scrubber,
    })
}

/// IAM tokens are signed in the suite's `[aws] region` when it has one;
/// without it, the environment's at run time (`aws::settings::region`,
/// the one rule for both).
fn sign_in(checks: &mut [Check], region: &str) {
    for check in checks {
        let signed = match &mut check.spec {
            CheckSpec::Redis(spec) => spec.iam.as_mut().map(|iam| &mut iam.region),
            CheckSpec::Postgres(spec) => spec.iam.as_mut().map(|iam| &mut iam.region),
            CheckSpec::Dns(_) | CheckSpec::Tcp(_) | CheckSpec::Http(_) => None,
        };
        if let Some(signed) = signed {
            signed.get_or_insert_with(|| region.to_string());
        }
    }
}

#[cfg(test)]
mod tests;
