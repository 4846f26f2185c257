//! Suite files: TOML with `[suite]` and `[[check]]` tables. Everything is
//! validated before anything runs; every error names the file, the line and
//! the key, and never echoes a value (it may be a secret).

mod build;
pub mod expand;
mod secret;

pub use secret::{Scrubber, Secret};

use crate::check::{CheckSpec, Kind};
use expand::Env;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// Deadline of a check when neither the suite nor the check sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest deadline a check may have: a probe that waits longer tells nothing more.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// A validated suite, ready to run.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    /// DNS server for every name in the suite; `None` is the system's.
    pub resolver: Option<SocketAddr>,
    pub checks: Vec<Check>,
    /// Removes this suite's secrets from any text before it is shown.
    pub scrubber: Scrubber,
}

impl Suite {
    /// The longest check deadline: no run lasts longer.
    pub fn longest_timeout(&self) -> Duration {
        self.checks
            .iter()
            .map(|c| c.timeout)
            .max()
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub timeout: Duration,
    /// A latency budget: a run that passes but takes longer is `too_slow`.
    pub max_duration: Option<Duration>,
    pub spec: CheckSpec,
}

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
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Option<Env<String>>,
    timeout: Option<Env<humantime::Duration>>,
    resolver: Option<Env<ResolverAddr>>,
}

/// Every key any kind accepts; [`Kind::keys`] says which apply to which.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<Env<String>>,
    kind: Kind,
    timeout: Option<Env<humantime::Duration>>,
    max_duration: Option<Env<humantime::Duration>>,
    host: Option<Env<String>>,
    port: Option<expand::Port>,
    expect: Option<crate::check::tcp::Expect>,
    expect_cidrs: Option<Vec<Env<ipnet::IpNet>>>,
    expect_addresses: Option<Vec<Env<std::net::IpAddr>>>,
    allow_public: Option<bool>,
    url: Option<Env<url::Url>>,
    username: Option<Env<String>>,
    password: Option<Secret>,
    password_file: Option<Env<PathBuf>>,
    cycles: Option<u32>,
    query: Option<Env<String>>,
    expect_role: Option<Env<String>>,
    expect_extensions: Option<Vec<Env<String>>>,
    ca_file: Option<Env<PathBuf>>,
    tls_skip_verify: Option<bool>,
    expect_status: Option<Vec<u16>>,
    expect_json_keys: Option<Vec<Env<String>>>,
    expect_headers: Option<Vec<Env<String>>>,
    expect_body: Option<Env<String>>,
}

/// Only the key names of each check, to refuse keys of another kind.
#[derive(Deserialize)]
struct KeyNames {
    #[serde(default)]
    check: Vec<toml::Table>,
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
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>()
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
    let names: KeyNames = toml::from_str(source).map_err(|err| at.toml_error(&err))?;
    let default_timeout = match raw.suite.timeout {
        Some(Env(timeout)) => {
            checked_timeout(timeout.into()).map_err(|msg| at.key_error(None, "timeout", msg))?
        }
        None => DEFAULT_TIMEOUT,
    };
    if raw.check.is_empty() {
        return Err(at.error(None, None, "the suite has no [[check]]".into()));
    }
    let mut scrubber = Scrubber::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut checks = Vec::with_capacity(raw.check.len());
    for (spanned, keys) in raw.check.into_iter().zip(names.check) {
        let span = spanned.span();
        let raw_check = spanned.into_inner();
        let name_span = raw_check.name.span();
        let name = raw_check.name.get_ref().0.clone();
        let line = at.line(name_span.start);
        if let Some(first) = seen.insert(name.clone(), line) {
            let message = format!("duplicate check name `{name}` (first defined on line {first})");
            return Err(at.error(Some(name_span), Some("name"), message));
        }
        let check = build::check(raw_check, name, default_timeout, &mut scrubber)
            .map_err(|problem| at.problem(&span, problem))?;
        if let Some(key) = keys.keys().find(|key| !applies(check.spec.kind(), key)) {
            let message = format!("does not apply to kind `{}`", check.spec.kind().as_str());
            return Err(at.key_error(Some(&span), key, message));
        }
        checks.push(check);
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
        scrubber,
    })
}

fn applies(kind: Kind, key: &str) -> bool {
    matches!(key, "name" | "kind" | "timeout" | "max_duration") || kind.keys().contains(&key)
}

/// A deadline must be positive and bounded.
fn checked_timeout(timeout: Duration) -> Result<Duration, String> {
    if timeout.is_zero() {
        Err("must be more than zero".into())
    } else if timeout > MAX_TIMEOUT {
        Err(format!(
            "must be at most {}",
            humantime::format_duration(MAX_TIMEOUT)
        ))
    } else {
        Ok(timeout)
    }
}

/// A validation problem found after parsing, naming the key it concerns.
#[derive(Debug)]
pub(crate) struct Problem {
    key: Option<&'static str>,
    message: String,
}

impl Problem {
    pub(crate) fn at(key: &'static str, message: impl Into<String>) -> Self {
        Problem {
            key: Some(key),
            message: message.into(),
        }
    }

    pub(crate) fn check(message: impl Into<String>) -> Self {
        Problem {
            key: None,
            message: message.into(),
        }
    }
}

/// Turns byte offsets into `file:line:column` and finds keys by line.
struct Locator<'a> {
    source: &'a str,
    file: &'a str,
}

impl Locator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error(&self, span: Option<Range<usize>>, key: Option<&str>, message: String) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = self.line_column(span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.map(str::to_string),
            message,
        }
    }

    /// The parser's own error, with the key read off the line it points at;
    /// its message is kept, its snippet (which may show a secret) dropped.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let key = err.span().and_then(|span| self.key_on_line(span.start));
        self.error(err.span(), key.as_deref(), err.message().trim().to_string())
    }

    /// An error about `key` inside `within` (a check's span), or the suite.
    fn key_error(&self, within: Option<&Range<usize>>, key: &str, message: String) -> ConfigError {
        let region = within.cloned().unwrap_or(0..self.source.len());
        let span = self.find_key(&region, key).or(within.cloned());
        self.error(span, Some(key), message)
    }

    fn problem(&self, check: &Range<usize>, problem: Problem) -> ConfigError {
        match problem.key {
            Some(key) => self.key_error(Some(check), key, problem.message),
            None => self.error(Some(check.clone()), None, problem.message),
        }
    }

    /// The span of the line that assigns `key` inside `region`.
    fn find_key(&self, region: &Range<usize>, key: &str) -> Option<Range<usize>> {
        let text = self.source.get(region.clone())?;
        let mut offset = region.start;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if assigned_key(trimmed) == Some(key) {
                let start = offset + (line.len() - trimmed.len());
                return Some(start..start + key.len());
            }
            offset += line.len();
        }
        None
    }

    fn key_on_line(&self, offset: usize) -> Option<String> {
        let start = self.source[..offset.min(self.source.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = self.source[start..].lines().next()?;
        assigned_key(line.trim_start()).map(str::to_string)
    }
}

/// The bare key a `key = value` line assigns.
fn assigned_key(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    (!key.is_empty() && rest.trim_start().starts_with('=')).then_some(key)
}
