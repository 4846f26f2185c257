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
        if self.external_id.is_some() && self.peer_role_arn.is_none() {
            let message = "an external_id needs a peer_role_arn to assume".to_string();
            return Err(at.key_error(None, "external_id", message));
        }
        Ok(Settings {
            region: self.region.map(|Env(r)| r),
            endpoint_url: self.endpoint_url.map(|Env(u)| u.to_string()),
            peer_role_arn: self.peer_role_arn.map(|Env(a)| a),
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

/// IAM tokens are signed in the suite's `[aws] region` unless the
/// environment says otherwise at run time.
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
mod tests {
    use super::*;

    fn error(text: &str) -> ConfigError {
        parse(text, "s.toml", "s").expect_err("the suite must be refused")
    }

    /// Each suite text is refused at (line, key) with words in its message.
    fn refused_at(cases: &[(String, usize, &str, &str)]) {
        for (text, line, key, words) in cases {
            let err = error(text);
            assert_eq!(
                (err.line, err.key.as_deref()),
                (Some(*line), Some(*key)),
                "{err}"
            );
            assert!(err.message.contains(words), "{err}");
        }
    }

    const TCP: &str = "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n";

    #[test]
    fn errors_name_the_line_and_key() {
        let cases = [
            (format!("{TCP}prot = 2\n"), 6, "prot", "unknown key; kind `tcp` takes"),
            (format!("{TCP}cycles = 3\n"), 6, "cycles", "does not apply to kind `tcp`"),
            ("[[check]]\nname = \"a\"\nkind = \"dns\"\nhost = \"h\"\nexpect_cidrs = [\"10.0.0/16\"]\n".into(), 5, "expect_cidrs", "invalid"),
            ("[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 70000\n".into(), 5, "port", "70000"),
            ("[[check]]\nname = \"a\"\nkind = \"ftp\"\n".into(), 3, "kind", "unknown variant"),
            ("[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"mysql://u@h/db\"\n".into(), 4, "url", "scheme must be one of postgres"),
            (format!("{TCP}timeout = \"1s\"\nmax_duration = \"2s\"\n"), 7, "max_duration", "less than the timeout"),
            (format!("{TCP}[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 2\n"), 7, "name", "duplicate check name"),
            (format!("{TCP}addresses = \"some\"\n"), 6, "addresses", "must be \"first\" or \"all\""),
            (format!("{TCP}timeout = \"5s\"\ninterval = \"2s\"\n"), 7, "interval", "at least the check's timeout (5s)"),
            ("[[check]]\nname = \"a\"\nkind = \"dns\"\nhost = \"h\"\naddresses = \"all\"\n".into(), 5, "addresses", "does not apply to kind `dns`"),
            (format!("{TCP}concurrency = 5\n"), 6, "concurrency", "does not apply to kind `tcp`"),
            ("[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\ncopy_bytes = \"lots\"\n".into(), 5, "copy_bytes", "not a size"),
            ("[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\nconcurrency = 0\n".into(), 5, "concurrency", "between 1 and 1000"),
        ];
        refused_at(&cases);
    }

    #[test]
    fn a_missing_required_key_names_the_kind() {
        let err = error("[[check]]\nname = \"a\"\nkind = \"postgres\"\n");
        assert_eq!(err.message, "kind `postgres` needs key `url`");
        assert_eq!(err.line, Some(1));
        let err = error("[[check]]\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n");
        assert_eq!(err.message, "every check needs key `name`");
    }

    #[test]
    fn a_one_character_password_is_refused_and_never_echoed() {
        let text =
            "[[check]]\nname = \"a\"\nkind = \"redis\"\nurl = \"redis://h\"\npassword = \"Q\"\n";
        let err = error(text);
        assert_eq!((err.line, err.key.as_deref()), (Some(5), Some("password")));
        assert!(!err.to_string().contains('Q'), "{err}");
        let in_url = error("[[check]]\nname = \"a\"\nkind = \"redis\"\nurl = \"redis://:Q@h\"\n");
        assert_eq!(in_url.key.as_deref(), Some("url"));
    }

    #[test]
    fn every_kind_keys_list_is_its_keys_struct() {
        use crate::check::Kind;
        assert_eq!(
            check::kind_keys(Kind::Tcp),
            ["host", "port", "expect", "idle", "tcp_keepalive"]
        );
        assert!(check::kind_keys(Kind::Postgres).contains(&"cycles"));
        assert!(check::kind_keys(Kind::Redis).contains(&"username"));
    }

    const DRILL: &str = "[[drill]]\nname = \"pg-switchover\"\nkind = \"postgres-failover\"\n\
        url = \"postgres://probe@haproxy:5000/app\"\npassword = \"drill-secret\"\n";

    #[test]
    fn drills_load_beside_checks_and_their_keys_are_checked() {
        let suite = parse(
            &format!("{TCP}{DRILL}interval = \"50ms\"\nexpect = \"no-change\"\n"),
            "s.toml",
            "s",
        )
        .unwrap();
        let drill = &suite.drills[0];
        assert_eq!(
            (suite.checks.len(), drill.name.as_str()),
            (1, "pg-switchover")
        );
        assert_eq!(drill.interval, std::time::Duration::from_millis(50));
        assert_eq!(
            drill.target.kind(),
            crate::drill::target::DrillKind::PostgresFailover
        );
        assert!(format!("{:?}", drill.target).contains("table: \"vpc_probe_drill\""));
        let cases = [
            (
                format!("{DRILL}intervall = \"1s\"\n"),
                6,
                "intervall",
                "unknown key; a drill takes",
            ),
            (
                format!("{DRILL}table = \"x; DROP TABLE y\"\n"),
                6,
                "table",
                "SQL identifier",
            ),
            (
                format!("{DRILL}expect = \"sideways\"\n"),
                6,
                "expect",
                "unknown variant",
            ),
            (
                format!("{DRILL}ro_url = \"mysql://x/y\"\n"),
                6,
                "ro_url",
                "scheme",
            ),
            (format!("{DRILL}{DRILL}"), 7, "name", "duplicate drill name"),
        ];
        refused_at(&cases);
        let only = parse(DRILL, "s.toml", "s").unwrap();
        assert!(only.checks.is_empty() && only.drills.len() == 1);
    }

    const REDIS_DRILL: &str = "[[drill]]\nname = \"cache-failover\"\nkind = \"redis-failover\"\n\
        url = \"rediss://primary.cache.internal:6379\"\npassword = \"drill-secret\"\n";

    #[test]
    fn a_redis_drill_takes_the_redis_rules_and_refuses_postgres_keys() {
        let suite = parse(REDIS_DRILL, "s.toml", "s").unwrap();
        let drill = &suite.drills[0];
        assert_eq!(
            drill.target.kind(),
            crate::drill::target::DrillKind::RedisFailover
        );
        assert_eq!(drill.target.name(), "primary.cache.internal");
        assert_eq!(drill.target(), "rediss://primary.cache.internal:6379/0");
        let cases = [
            (
                format!("{REDIS_DRILL}table = \"t\"\n"),
                6,
                "table",
                "applies to kind `postgres-failover` only",
            ),
            (
                format!("{REDIS_DRILL}ro_url = \"redis://r\"\n"),
                6,
                "ro_url",
                "applies to kind `postgres-failover` only",
            ),
            (
                REDIS_DRILL.replace("rediss://", "postgres://"),
                4,
                "url",
                "scheme must be one of redis, rediss",
            ),
            (
                format!("{REDIS_DRILL}expect = \"no-change\"\nopen_session = \"cut\"\n"),
                7,
                "open_session",
                "needs the open session to survive",
            ),
        ];
        refused_at(&cases);
    }

    #[test]
    fn redis_iam_keys_are_checked_where_they_stand() {
        let iam = |url: &str, more: &str| {
            format!("[[check]]\nname = \"c\"\nkind = \"redis\"\nurl = \"{url}\"\nauth = \"iam\"\n{more}")
        };
        let keys = "user = \"app\"\ncache_name = \"glimpse\"\n";
        let cases = [
            (iam("redis://h", keys), 5, "auth", "IAM authentication needs TLS"),
            (
                iam("rediss://h", &format!("{keys}password = \"token-x\"\n")),
                8,
                "password",
                "the token is the password",
            ),
            (iam("rediss://h", "user = \"app\"\n"), 5, "auth", "needs `cache_name`"),
            (
                "[[check]]\nname = \"c\"\nkind = \"redis\"\nurl = \"redis://h\"\nserverless = true\n".into(),
                5,
                "serverless",
                "speaks only TLS",
            ),
            (
                "[[check]]\nname = \"c\"\nkind = \"redis\"\nurl = \"rediss://h\"\ncache_name = \"x\"\n".into(),
                5,
                "cache_name",
                "applies with `auth = \"iam\"`",
            ),
        ];
        refused_at(&cases);
        let rds = |query: &str| {
            format!("[[check]]\nname = \"c\"\nkind = \"postgres\"\nurl = \"postgres://app@db:5432/app{query}\"\nauth = \"iam\"\n")
        };
        refused_at(&[
            (rds("?sslmode=require"), 5, "auth", "only over verified TLS"),
            (
                rds("?sslmode=verify-full") + "password = \"x-token\"\n",
                6,
                "password",
                "the token is the password",
            ),
        ]);
        assert!(parse(&rds("?sslmode=verify-full"), "s.toml", "s").is_ok());
        let suite = parse(
            &format!(
                "[aws]\nregion = \"eu-west-1\"\n\n{}",
                iam("rediss://h", keys)
            ),
            "s.toml",
            "s",
        )
        .unwrap();
        let CheckSpec::Redis(spec) = &suite.checks[0].spec else {
            panic!("a redis check");
        };
        let auth = spec.iam.as_ref().expect("IAM");
        assert_eq!(
            (auth.user.as_str(), auth.region.as_deref()),
            ("app", Some("eu-west-1"))
        );
    }

    #[test]
    fn aws_table_errors_name_the_line_and_key() {
        let aws = |line: &str| format!("[aws]\nregion = \"eu-west-1\"\n{line}\n{TCP}");
        let cases = [
            (aws("regoin = \"x\""), 3, "regoin", "unknown field"),
            (
                aws("peer_role_arn = \"arn:aws:iam::2222:role/x\""),
                3,
                "peer_role_arn",
                "not an IAM role ARN",
            ),
            (
                aws("explain = \"sometimes\""),
                3,
                "explain",
                "unknown variant",
            ),
            (aws("source = \"sg-0abc\""), 3, "source", "an ENI id"),
            (
                aws("external_id = \"x\""),
                3,
                "external_id",
                "needs a peer_role_arn",
            ),
            (aws("explain_timeout = \"soon\""), 3, "explain_timeout", ""),
        ];
        refused_at(&cases);
        let err = error(&aws("explain = \"sometimes\""));
        assert_eq!(err.column, Some(11), "{err}");
    }

    #[test]
    fn an_aws_table_defaults_to_explaining_failures() {
        let suite = parse(&format!("[aws]\n{TCP}"), "s.toml", "s").unwrap();
        let aws = suite.aws.expect("the table");
        assert_eq!(aws.explain, crate::aws::settings::Explain::OnFailure);
        assert_eq!(aws.explain_timeout, DEFAULT_EXPLAIN_TIMEOUT);
        assert!(parse(TCP, "s.toml", "s").unwrap().aws.is_none());
    }

    #[test]
    fn min_cert_validity_comes_from_the_check_then_the_suite_then_14_days() {
        let days = |suite: &Suite, i: usize| suite.checks[i].min_cert_validity.as_secs() / 86_400;
        let plain = parse(TCP, "s.toml", "s").unwrap();
        assert_eq!(days(&plain, 0), 14);
        let text = format!("[suite]\nmin_cert_validity = \"30days\"\n{TCP}[[check]]\nname = \"b\"\nkind = \"tcp\"\nhost = \"h\"\nport = 2\nmin_cert_validity = \"3days\"\n");
        let suite = parse(&text, "s.toml", "s").unwrap();
        assert_eq!((days(&suite, 0), days(&suite, 1)), (30, 3));
    }

    #[test]
    fn a_valid_suite_loads() {
        let suite = parse(&format!("[suite]\nname = \"x\"\n{TCP}"), "s.toml", "s").unwrap();
        assert_eq!((suite.name.as_str(), suite.checks.len()), ("x", 1));
    }
}
