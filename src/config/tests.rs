//! The loader against suite texts: what it refuses, where, and in which
//! words; what it keeps.

use super::*;

fn error(text: &str) -> ConfigError {
    parse(text, "s.toml", "s").expect_err("the suite must be refused")
}

/// The suite text is refused at (line, key) with `words` in its message.
fn refused_at(text: String, (line, key, words): (usize, &str, &str)) {
    let err = error(&text);
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(line), Some(key)),
        "{err}"
    );
    assert!(err.message.contains(words), "{err}");
}

const TCP: &str = "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n";

crate::cases!(refused_at {
    refused_unknown_key: format!("{TCP}prot = 2\n") => (6, "prot", "unknown key; kind `tcp` takes");
    refused_key_of_another_kind: format!("{TCP}cycles = 3\n") => (6, "cycles", "does not apply to kind `tcp`");
    refused_bad_cidr: "[[check]]\nname = \"a\"\nkind = \"dns\"\nhost = \"h\"\nexpect_cidrs = [\"10.0.0/16\"]\n".to_string() => (5, "expect_cidrs", "invalid");
    refused_port_out_of_range: "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 70000\n".to_string() => (5, "port", "70000");
    refused_unknown_kind: "[[check]]\nname = \"a\"\nkind = \"ftp\"\n".to_string() => (3, "kind", "unknown variant");
    refused_wrong_url_scheme: "[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"mysql://u@h/db\"\n".to_string() => (4, "url", "scheme must be one of postgres");
    refused_budget_above_timeout: format!("{TCP}timeout = \"1s\"\nmax_duration = \"2s\"\n") => (7, "max_duration", "less than the timeout");
    refused_duplicate_name: format!("{TCP}[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 2\n") => (7, "name", "duplicate check name");
    refused_bad_addresses: format!("{TCP}addresses = \"some\"\n") => (6, "addresses", "must be \"first\" or \"all\"");
    refused_interval_below_timeout: format!("{TCP}timeout = \"5s\"\ninterval = \"2s\"\n") => (7, "interval", "at least the check's timeout (5s)");
    refused_addresses_on_dns: "[[check]]\nname = \"a\"\nkind = \"dns\"\nhost = \"h\"\naddresses = \"all\"\n".to_string() => (5, "addresses", "does not apply to kind `dns`");
    refused_concurrency_on_tcp: format!("{TCP}concurrency = 5\n") => (6, "concurrency", "does not apply to kind `tcp`");
    refused_bad_copy_bytes: "[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\ncopy_bytes = \"lots\"\n".to_string() => (5, "copy_bytes", "not a size");
    refused_zero_concurrency: "[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\nconcurrency = 0\n".to_string() => (5, "concurrency", "between 1 and 1000");
});

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
    let text = "[[check]]\nname = \"a\"\nkind = \"redis\"\nurl = \"redis://h\"\npassword = \"Q\"\n";
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
fn drills_load_beside_checks() {
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
    let only = parse(DRILL, "s.toml", "s").unwrap();
    assert!(only.checks.is_empty() && only.drills.len() == 1);
}

const REDIS_DRILL: &str = "[[drill]]\nname = \"cache-failover\"\nkind = \"redis-failover\"\n\
    url = \"rediss://primary.cache.internal:6379\"\npassword = \"drill-secret\"\n";

#[test]
fn a_redis_drill_takes_the_redis_rules() {
    let suite = parse(REDIS_DRILL, "s.toml", "s").unwrap();
    let drill = &suite.drills[0];
    assert_eq!(
        drill.target.kind(),
        crate::drill::target::DrillKind::RedisFailover
    );
    assert_eq!(drill.target.name(), "primary.cache.internal");
    assert_eq!(drill.target(), "rediss://primary.cache.internal:6379/0");
}

#[test]
fn redis_iam_keys_load_with_the_suites_region() {
    assert!(parse(&rds_iam("?sslmode=verify-full"), "s.toml", "s").is_ok());
    let suite = parse(
        &format!(
            "[aws]\nregion = \"eu-west-1\"\n\n{}",
            redis_iam("rediss://h", IAM_KEYS)
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
fn an_aws_table_error_names_its_column() {
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

const IAM_KEYS: &str = "user = \"app\"\ncache_name = \"glimpse\"\n";

fn redis_iam(url: &str, more: &str) -> String {
    format!("[[check]]\nname = \"c\"\nkind = \"redis\"\nurl = \"{url}\"\nauth = \"iam\"\n{more}")
}

fn rds_iam(query: &str) -> String {
    format!("[[check]]\nname = \"c\"\nkind = \"postgres\"\nurl = \"postgres://app@db:5432/app{query}\"\nauth = \"iam\"\n")
}

fn aws(line: &str) -> String {
    format!("[aws]\nregion = \"eu-west-1\"\n{line}\n{TCP}")
}

const REDIS_PLAIN: &str = "[[check]]\nname = \"c\"\nkind = \"redis\"\n";

crate::cases!(refused_at {
    drill_unknown_key: format!("{DRILL}intervall = \"1s\"\n") => (6, "intervall", "unknown key; a drill takes");
    drill_table_not_an_identifier: format!("{DRILL}table = \"x; DROP TABLE y\"\n") => (6, "table", "SQL identifier");
    drill_unknown_expect: format!("{DRILL}expect = \"sideways\"\n") => (6, "expect", "unknown variant");
    drill_ro_url_scheme: format!("{DRILL}ro_url = \"mysql://x/y\"\n") => (6, "ro_url", "scheme");
    drill_duplicate_name: format!("{DRILL}{DRILL}") => (7, "name", "duplicate drill name");
    redis_drill_refuses_table: format!("{REDIS_DRILL}table = \"t\"\n") => (6, "table", "applies to kind `postgres-failover` only");
    redis_drill_refuses_ro_url: format!("{REDIS_DRILL}ro_url = \"redis://r\"\n") => (6, "ro_url", "applies to kind `postgres-failover` only");
    redis_drill_refuses_max_ro_gap: format!("{REDIS_DRILL}max_ro_gap = \"2s\"\n") => (6, "max_ro_gap", "applies to kind `postgres-failover` only");
    redis_drill_unknown_key: format!("{REDIS_DRILL}tabel = \"t\"\n") => (6, "tabel", "unknown key; a drill takes name, kind, url");
    redis_drill_url_scheme: REDIS_DRILL.replace("rediss://", "postgres://") => (4, "url", "scheme must be one of redis, rediss");
    redis_drill_no_change_cut: format!("{REDIS_DRILL}expect = \"no-change\"\nopen_session = \"cut\"\n") => (7, "open_session", "needs the open session to survive");
    redis_iam_needs_tls: redis_iam("redis://h", IAM_KEYS) => (5, "auth", "IAM authentication needs TLS");
    redis_iam_refuses_a_password: redis_iam("rediss://h", &format!("{IAM_KEYS}password = \"token-x\"\n")) => (8, "password", "the token is the password");
    redis_iam_needs_cache_name: redis_iam("rediss://h", "user = \"app\"\n") => (5, "auth", "needs `cache_name`");
    redis_serverless_needs_tls: format!("{REDIS_PLAIN}url = \"redis://h\"\nserverless = true\n") => (5, "serverless", "speaks only TLS");
    redis_cache_name_without_iam: format!("{REDIS_PLAIN}url = \"rediss://h\"\ncache_name = \"x\"\n") => (5, "cache_name", "applies with `auth = \"iam\"`");
    rds_iam_needs_verified_tls: rds_iam("?sslmode=require") => (5, "auth", "only over verified TLS");
    rds_iam_refuses_a_password: rds_iam("?sslmode=verify-full") + "password = \"x-token\"\n" => (6, "password", "the token is the password");
    aws_unknown_field: aws("regoin = \"x\"") => (3, "regoin", "unknown field");
    aws_peer_role_not_a_role_arn: aws("peer_role_arn = \"arn:aws:iam::2222:role/x\"") => (3, "peer_role_arn", "not an IAM role ARN");
    aws_unknown_explain: aws("explain = \"sometimes\"") => (3, "explain", "unknown variant");
    aws_source_not_an_eni: aws("source = \"sg-0abc\"") => (3, "source", "an ENI id");
    aws_external_id_without_role: aws("external_id = \"x\"") => (3, "external_id", "needs a peer_role_arn or network_role_arn");
    aws_explain_timeout_not_a_duration: aws("explain_timeout = \"soon\"") => (3, "explain_timeout", "");
});
