//! The production path is TLS: ElastiCache-style Redis (TLS only, an AUTH
//! token, ACL users), HTTPS in front of anisette, and PostgreSQL
//! `verify-full` through HAProxy and a TLS-only PgBouncer. Every row runs
//! the real binary against real servers and names the exact reason, the
//! words the detail must carry, and what the hint must name.

mod rig;

use rig::probe::check_json;
use rig::tls::*;
use rig::*;

/// One check, what it must come out as, and what its detail / hint say.
struct Row {
    name: &'static str,
    body: String,
    reason: Option<&'static str>,
    detail: &'static [&'static str],
    hint: &'static str,
}

fn row(name: &'static str, body: String, reason: Option<&'static str>) -> Row {
    Row {
        name,
        body,
        reason,
        detail: &[],
        hint: "",
    }
}

impl Row {
    fn says(mut self, detail: &'static [&'static str]) -> Row {
        self.detail = detail;
        self
    }

    fn hints(mut self, hint: &'static str) -> Row {
        self.hint = hint;
        self
    }
}

/// Secrets of the TLS rig that must never be printed.
const SECRETS: [&str; 3] = [REDIS_TOKEN, ACL_PASSWORD, PG_PASSWORD];

/// Run every row as one suite and check each check's result.
fn run_rows(suite_name: &str, rows: &[Row]) {
    let rig = rig();
    let checks: String = rows
        .iter()
        .map(|row| format!("[[check]]\nname = \"{}\"\n{}\n\n", row.name, row.body))
        .collect();
    let suite = rig.suite(suite_name, &checks);
    let run = check_json(&suite, &[]);
    for secret in SECRETS {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret reached the output"
        );
    }
    let mut wrong = Vec::new();
    for row in rows {
        let check = run.check(row.name);
        let reason = check["reason"].as_str();
        let detail = check["detail"].as_str().unwrap_or_default();
        let hint = check["hint"].as_str().unwrap_or_default();
        let detail_ok = row.detail.iter().all(|words| detail.contains(words));
        if reason != row.reason || !detail_ok || !hint.contains(row.hint) {
            wrong.push(format!(
                "{}: expected {:?} {:?} {:?}, got {check}",
                row.name, row.reason, row.detail, row.hint
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn redis(url: String, extra: &str) -> String {
    format!("kind = \"redis\"\nurl = \"{url}\"\n{extra}")
}

#[test]
fn elasticache_style_redis_rows() {
    let tls = tls_rig();
    let ca = tls.ca_file.display();
    let port = tls.redis_tls;
    let open = tls.redis_open;
    let token = format!("password = \"{REDIS_TOKEN}\"\nca_file = \"{ca}\"");
    let acl = |user: &str| {
        format!("username = \"{user}\"\npassword = \"{ACL_PASSWORD}\"\nca_file = \"{ca}\"")
    };
    let rows = [
        row(
            "rediss-token",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &format!("{token}\nexpect_role = \"master\"\nexpect_auth_required = true"),
            ),
            None,
        ),
        row(
            "rediss-alias-without-server-name",
            redis(format!("rediss://{REDIS_ALIAS_NAME}:{port}"), &token),
            Some("tls_error"),
        )
        .says(&["name mismatch", ELASTICACHE_NAME, REDIS_ALIAS_NAME])
        .hints("tls_server_name"),
        row(
            "rediss-alias-with-server-name",
            redis(
                format!("rediss://{REDIS_ALIAS_NAME}:{port}"),
                &format!("{token}\ntls_server_name = \"{ELASTICACHE_NAME}\""),
            ),
            None,
        ),
        row(
            "rediss-wrong-token",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &format!("password = \"not-the-token\"\nca_file = \"{ca}\""),
            ),
            Some("auth_failed"),
        )
        .says(&["WRONGPASS"])
        .hints("AUTH token"),
        row(
            "rediss-no-token",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &format!("ca_file = \"{ca}\""),
            ),
            Some("auth_failed"),
        )
        .says(&["NOAUTH"])
        .hints("AUTH token"),
        row(
            "rediss-user-without-ping",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &acl(NO_PING_USER),
            ),
            Some("permission_denied"),
        )
        .says(&["NOPERM"])
        .hints("access string"),
        row(
            "rediss-ping-only-user",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &acl(PING_ONLY_USER),
            ),
            None,
        ),
        row(
            "rediss-disabled-user",
            redis(
                format!("rediss://{ELASTICACHE_NAME}:{port}"),
                &acl(DISABLED_USER),
            ),
            Some("auth_failed"),
        )
        .says(&["WRONGPASS", "disabled"]),
        row(
            "plain-redis-to-tls-port",
            redis(
                format!("redis://{ELASTICACHE_NAME}:{port}"),
                &format!("password = \"{REDIS_TOKEN}\""),
            ),
            Some("tls_required"),
        )
        .says(&["ServerHello"])
        .hints("rediss://"),
        row(
            "token-sent-to-open-server",
            redis(
                format!("redis://127.0.0.1:{open}"),
                &format!("password = \"{REDIS_TOKEN}\""),
            ),
            Some("auth_failed"),
        )
        .says(&["no password"]),
        row(
            "auth-not-enforced",
            redis(
                format!("redis://127.0.0.1:{open}"),
                &format!("password = \"{REDIS_TOKEN}\"\nexpect_auth_required = true"),
            ),
            Some("unexpected_response"),
        )
        .says(&["AUTH is not enforced"]),
        row(
            "rediss-to-plain-port",
            redis(
                format!("rediss://127.0.0.1:{open}"),
                "tls_skip_verify = true\ntimeout = \"1s\"",
            ),
            Some("timeout"),
        )
        .says(&["TLS ClientHello", "may not speak TLS"]),
    ];
    run_rows("elasticache", &rows);
}

#[test]
fn https_rows() {
    let tls = tls_rig();
    let rig = rig();
    let ca = tls.ca_file.display();
    let http = |scheme: &str, port: u16, extra: &str| {
        format!(
            "kind = \"http\"\nurl = \"{scheme}://{ANISETTE_NAME}:{port}/v3/client_info\"\nexpect_json_keys = [\"client_info\"]\n{extra}"
        )
    };
    let with_ca = format!("ca_file = \"{ca}\"");
    let rows = [
        row("https", http("https", tls.anisette_https, &with_ca), None),
        row(
            "https-by-ip-with-server-name",
            format!(
                "kind = \"http\"\nurl = \"https://127.0.0.1:{}/v3/client_info\"\n{with_ca}\ntls_server_name = \"{ANISETTE_NAME}\"",
                tls.anisette_https
            ),
            None,
        ),
        row(
            "http-to-https-port",
            http("http", tls.anisette_https, ""),
            Some("tls_required"),
        )
        .says(&["ServerHello"])
        .hints("https://"),
        row(
            "https-to-plain-port",
            http("https", rig.anisette, &with_ca),
            Some("tls_error"),
        )
        .says(&["plain text", "HTTP/1.1 400"]),
        row(
            "https-expired",
            http("https", tls.expired_https, &with_ca),
            Some("tls_error"),
        )
        .says(&["expired", "2021-01-01"]),
        row(
            "https-untrusted",
            http("https", tls.untrusted_https, &with_ca),
            Some("tls_error"),
        )
        .says(&["not trusted"])
        .hints("ca_file"),
    ];
    run_rows("https", &rows);
}

#[test]
fn postgres_tls_rows() {
    let tls = tls_rig();
    let rig = rig();
    let ca = tls.ca_file.display();
    let pg = |user: &str, host: &str, port: u16, query: &str, extra: &str| {
        format!(
            "kind = \"postgres\"\nurl = \"postgres://{user}@{host}:{port}/app{query}\"\npassword = \"{PG_PASSWORD}\"\n{extra}"
        )
    };
    let rows = [
        row(
            "verify-full-through-haproxy-and-pgbouncer",
            pg(
                PG_USER,
                HAPROXY_NAME,
                tls.pg_tls,
                "?sslmode=verify-full",
                &format!("ca_file = \"{ca}\"\ncycles = 2"),
            ),
            None,
        ),
        row(
            "verify-full-by-ip-with-server-name",
            pg(
                PG_USER,
                "127.0.0.1",
                tls.pg_tls,
                "?sslmode=verify-full",
                &format!("ca_file = \"{ca}\"\ntls_server_name = \"{HAPROXY_NAME}\""),
            ),
            None,
        ),
        row(
            "verify-full-by-ip-without-server-name",
            pg(
                PG_USER,
                "127.0.0.1",
                tls.pg_tls,
                "?sslmode=verify-full",
                &format!("ca_file = \"{ca}\""),
            ),
            Some("tls_error"),
        )
        .says(&["name mismatch", HAPROXY_NAME]),
        row(
            "plain-through-tls-only-pgbouncer",
            pg(PG_USER, HAPROXY_NAME, tls.pg_tls, "?sslmode=disable", ""),
            Some("tls_required"),
        )
        .hints("sslmode=require"),
        row(
            "plain-to-hostssl-only-role",
            pg(
                PG_TLS_ONLY_USER,
                "127.0.0.1",
                rig.postgres,
                "?sslmode=disable",
                "",
            ),
            Some("tls_required"),
        )
        .says(&["no encryption"]),
        row(
            "query-without-grant",
            pg(
                PG_USER,
                "127.0.0.1",
                rig.postgres,
                "?sslmode=disable",
                &format!("query = \"SELECT count(*) FROM {PG_RESTRICTED_TABLE}\""),
            ),
            Some("permission_denied"),
        )
        .says(&["42501"])
        .hints("GRANT"),
    ];
    run_rows("postgres-tls", &rows);
}

/// Cluster mode: the state is reported and judged, a role is not (a
/// configuration endpoint reaches any node), and a cluster whose slots are
/// not all served fails with the state in the detail.
#[test]
fn redis_cluster_mode() {
    let rig = rig();
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start(dir.path()).unwrap_or_else(|err| panic!("a Redis Cluster: {err}"));
    let body = |port: u16| {
        redis(
            format!("redis://127.0.0.1:{port}"),
            "expect_role = \"master\"",
        )
    };
    let suite = rig.suite(
        "cluster",
        &format!(
            "[[check]]\nname = \"cluster\"\n{}\n",
            body(cluster.ports[0])
        ),
    );
    let healthy = check_json(&suite, &[]).check("cluster");
    assert_eq!(healthy["success"], true, "{healthy}");
    assert_eq!(healthy["observed"]["cluster_state"], "ok", "{healthy}");
    assert_eq!(
        healthy["observed"]["expect_role"], "not judged in cluster mode",
        "{healthy}"
    );
    cluster.kill(2);
    cluster
        .wait_state(cluster.ports[0], "fail")
        .expect("the cluster notices");
    let broken = check_json(&suite, &[]).check("cluster");
    assert_eq!(broken["reason"], "unexpected_response", "{broken}");
    assert!(
        broken["detail"]
            .as_str()
            .unwrap()
            .contains("cluster_state:fail"),
        "{broken}"
    );
}

/// Midnight UTC `days` from today, in epoch seconds (how the rig dates its leaves).
fn midnight_in(days: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 + days) * 86_400
}

/// The rig's TLS checks of every kind, and one whose certificate expired.
fn chain_checks() -> String {
    let tls = tls_rig();
    let ca = tls.ca_file.display();
    format!(
        "[[check]]\nname = \"redis-tls\"\nkind = \"redis\"\nurl = \"rediss://{ELASTICACHE_NAME}:{}\"\npassword = \"{REDIS_TOKEN}\"\nca_file = \"{ca}\"\n\n\
         [[check]]\nname = \"https\"\nkind = \"http\"\nurl = \"https://{ANISETTE_NAME}:{}/v3/client_info\"\nca_file = \"{ca}\"\n\n\
         [[check]]\nname = \"postgres-tls\"\nkind = \"postgres\"\nurl = \"postgres://{PG_USER}@{HAPROXY_NAME}:{}/app?sslmode=verify-full\"\npassword = \"{PG_PASSWORD}\"\nca_file = \"{ca}\"\n\n",
        tls.redis_tls, tls.anisette_https, tls.pg_tls
    )
}

/// One `check --format json --junit` run of the chain suite, shared by the
/// rows below (a TLS rig run costs seconds): the run, its JUnit path and
/// the suite.
fn chain_run() -> &'static (rig::probe::Run, std::path::PathBuf, std::path::PathBuf) {
    type Shared = (rig::probe::Run, std::path::PathBuf, std::path::PathBuf);
    static RUN: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let tls = tls_rig();
        let ca = tls.ca_file.display();
        let expired_check = format!(
            "[[check]]\nname = \"https-expired\"\nkind = \"http\"\nurl = \"https://{ANISETTE_NAME}:{}/v3/client_info\"\nca_file = \"{ca}\"\n",
            tls.expired_https
        );
        let suite = rig().suite("tls-chains", &(chain_checks() + &expired_check));
        let junit = rig().root.join("tls-chains.xml");
        let run = check_json(&suite, &["--junit", junit.to_str().unwrap()]);
        (run, junit, suite)
    })
}

/// When a row's leaf certificate expires.
#[derive(Clone, Copy, PartialEq)]
enum Expiry {
    /// In `LEAF_DAYS`: the check passes with a warning.
    Soon,
    /// On 2021-01-01: the handshake fails.
    Expired,
}

/// One TLS kind's row: the presented chain in the JSON tls block (its
/// SAN, issuer and not-after), the session's version and cipher when one
/// completed, and the warning of a chain that expires soon.
fn chain_row(name: &str, (san, expiry, session): (&str, Expiry, bool)) {
    let (run, _, _) = chain_run();
    let not_after = match expiry {
        Expiry::Soon => midnight_in(LEAF_DAYS),
        Expiry::Expired => 1_609_459_200_i64,
    };
    let check = run.check(name);
    let block = &check["tls"];
    assert_eq!(block["chain"]["sans"][0], san, "{name}: {check:#}");
    assert_eq!(block["chain"]["issuer"], "CN=vpc-probe test CA", "{name}");
    assert_eq!(block["chain"]["not_after"], not_after, "{name}: {check:#}");
    assert_eq!(block["chain"]["earliest_not_after"], not_after, "{name}");
    if session {
        let version = block["version"].as_str().unwrap_or_default();
        assert!(version.starts_with("TLSv1_"), "{name}: {check:#}");
        let cipher = block["cipher"].as_str().unwrap_or_default();
        assert!(cipher.starts_with("TLS"), "{name}: {check:#}");
    }
    if expiry == Expiry::Soon {
        assert_eq!(
            check["success"], true,
            "{name}: a warning passes: {check:#}"
        );
        assert_eq!(
            check["warning"]["reason"], "cert_expiring",
            "{name}: {check:#}"
        );
        let days = check["warning"]["days_left"].as_f64().unwrap();
        assert!(days > 3.0 && days <= 5.0, "{name}: {days} days left");
    }
}

/// Every TLS kind reports the chain the server presented, also when the
/// handshake failed because it expired; a chain valid for 5 more days
/// makes a passing check warn. One test per kind.
mod presented_chain {
    use super::*;

    fn row(name: &str, expected: (&str, Expiry, bool)) {
        chain_row(name, expected)
    }

    #[test]
    fn redis() {
        row("redis-tls", (ELASTICACHE_NAME, Expiry::Soon, true));
    }

    #[test]
    fn https() {
        row("https", (ANISETTE_NAME, Expiry::Soon, true));
    }

    #[test]
    fn postgres() {
        row("postgres-tls", (HAPROXY_NAME, Expiry::Soon, true));
    }

    #[test]
    fn https_expired() {
        row("https-expired", (ANISETTE_NAME, Expiry::Expired, false));
    }
}

/// The expired chain fails with tls_error and no warning; the JUnit report
/// carries the warning; `serve` exports the chain series, the version and
/// the warning for every TLS kind.
#[test]
fn every_tls_kind_reports_the_presented_chain_and_warns_before_it_expires() {
    let (run, junit, suite) = chain_run();
    let soon = midnight_in(LEAF_DAYS);
    let failed = run.check("https-expired");
    assert_eq!(
        (failed["reason"].as_str(), failed.get("warning")),
        (Some("tls_error"), None)
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains("<system-out>warning cert_expiring: the certificate chain"),
        "{xml}"
    );
    // Every check's first run must be in: postgres takes longest.
    let series = [
        "probe_ssl_earliest_cert_expiry{check=\"https-expired\",kind=\"http\"} 1609459200".to_string(),
        "probe_ssl_last_chain_expiry_timestamp_seconds{check=\"https-expired\",kind=\"http\"} 1609459200".to_string(),
        format!("probe_ssl_earliest_cert_expiry{{check=\"postgres-tls\",kind=\"postgres\"}} {soon}"),
        "probe_tls_version_info{check=\"redis-tls\",kind=\"redis\",version=\"TLSv1_3\"} 1".to_string(),
        "vpc_probe_warning{check=\"https\",reason=\"cert_expiring\"} 1".to_string(),
        "vpc_probe_warning{check=\"https-expired\",reason=\"cert_expiring\"} 0".to_string(),
    ];
    let served = rig::observe::Served::start(suite, "2s", &[]);
    served.metrics_until(std::time::Duration::from_secs(30), |body| {
        series.iter().all(|one| body.contains(one.as_str()))
    });
}

/// Warnings pass the gate unless `--fail-on-warning`; a shorter
/// `min_cert_validity` (per check here; `[suite]` takes it too) silences them.
#[test]
fn a_warning_fails_the_gate_only_when_asked() {
    let suite = rig().suite("tls-warnings", &chain_checks());
    let run = check_json(&suite, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(check_json(&suite, &["--fail-on-warning"]).code, 1);
    let checks = chain_checks().replace("ca_file = ", "min_cert_validity = \"2days\"\nca_file = ");
    let relaxed = rig().suite("tls-relaxed", &checks);
    let run = check_json(&relaxed, &["--fail-on-warning"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.check("https").get("warning").is_none());
}

/// How many runs `serve` has counted for `check` in a /metrics body.
fn runs_of(body: &str, check: &str) -> u64 {
    let prefix = format!("vpc_probe_check_runs_total{{check=\"{check}\",");
    body.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The value of the series `line_start` (its name and labels) in a body.
fn series(body: &str, line_start: &str) -> Option<String> {
    body.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit_once(' '))
        .map(|(_, value)| value.to_string())
}

/// Poll `serve` until every check in `checks` has run at least `runs` times.
fn after_runs(served: &rig::observe::Served, checks: &[&str], runs: u64) -> String {
    served.metrics_until(std::time::Duration::from_secs(60), |body| {
        checks.iter().all(|check| runs_of(body, check) >= runs)
    })
}

/// `serve` makes a full handshake on every run (no session resumption):
/// from the third run on, every TLS kind, passing or failing, still has
/// its chain's expiry series, and the passing ones their version and the
/// certificate warning. With rustls's default resumption, runs after the
/// first resumed, presented no certificate, and lost all of it.
#[test]
fn serve_reports_every_tls_kinds_chain_on_every_run() {
    let tls = tls_rig();
    let ca = tls.ca_file.display();
    let wrong = "tls_server_name = \"wrong.glimpse.internal\"\n";
    let failing = format!(
        "[[check]]\nname = \"redis-wrong-name\"\nkind = \"redis\"\nurl = \"rediss://{ELASTICACHE_NAME}:{}\"\npassword = \"{REDIS_TOKEN}\"\nca_file = \"{ca}\"\n{wrong}\n\
         [[check]]\nname = \"https-expired\"\nkind = \"http\"\nurl = \"https://{ANISETTE_NAME}:{}/v3/client_info\"\nca_file = \"{ca}\"\n\n\
         [[check]]\nname = \"postgres-wrong-name\"\nkind = \"postgres\"\nurl = \"postgres://{PG_USER}@{HAPROXY_NAME}:{}/app?sslmode=verify-full\"\npassword = \"{PG_PASSWORD}\"\nca_file = \"{ca}\"\n{wrong}\n",
        tls.redis_tls, tls.expired_https, tls.pg_tls
    );
    let suite = rig().suite("tls-serve-every-run", &(chain_checks() + &failing));
    let served = rig::observe::Served::start(&suite, "1s", &[]);
    let passing = [
        ("redis-tls", "redis"),
        ("https", "http"),
        ("postgres-tls", "postgres"),
    ];
    let failed = [
        ("redis-wrong-name", "redis"),
        ("https-expired", "http"),
        ("postgres-wrong-name", "postgres"),
    ];
    let names: Vec<&str> = passing
        .iter()
        .chain(&failed)
        .map(|(name, _)| *name)
        .collect();
    let body = after_runs(&served, &names, 3);
    let mut missing = Vec::new();
    for (name, kind) in passing.iter().chain(&failed) {
        let labels = format!("{{check=\"{name}\",kind=\"{kind}\"}}");
        for family in [
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
        ] {
            if series(&body, &format!("{family}{labels} ")).is_none() {
                missing.push(format!("{family}{labels}"));
            }
        }
    }
    for (name, kind) in passing {
        let version =
            format!("probe_tls_version_info{{check=\"{name}\",kind=\"{kind}\",version=\"TLSv1_");
        if series(&body, &version).as_deref() != Some("1") {
            missing.push(format!("{version}…\"}} 1"));
        }
        let warning = format!("vpc_probe_warning{{check=\"{name}\",reason=\"cert_expiring\"}} ");
        if series(&body, &warning).as_deref() != Some("1") {
            missing.push(format!("{warning}1"));
        }
    }
    for (name, _) in failed {
        let warning = format!("vpc_probe_warning{{check=\"{name}\",reason=\"cert_expiring\"}} ");
        if series(&body, &warning).as_deref() != Some("0") {
            missing.push(format!("{warning}0"));
        }
    }
    assert!(
        missing.is_empty(),
        "missing after 3 runs: {missing:#?}\n{body}"
    );
}

/// A server that swaps its certificate while keeping its session state
/// (HAProxy's `set ssl cert` + `commit ssl cert` keeps the session cache
/// and ticket keys) is seen on the next run of the same `serve`: the new
/// chain's expiry and its warning. The test first proves that the server
/// really would resume a session across the swap (openssl s_client).
#[test]
fn serve_sees_a_certificate_swapped_behind_kept_session_state() {
    let tls = tls_rig();
    let ca = tls.ca_file.display();
    let check = format!(
        "[[check]]\nname = \"https-swap\"\nkind = \"http\"\nurl = \"https://{ANISETTE_NAME}:{}/v3/client_info\"\nca_file = \"{ca}\"\n",
        tls.swap_https
    );
    let suite = rig().suite("tls-swap", &check);
    let served = rig::observe::Served::start(&suite, "1s", &[]);
    let labels = "{check=\"https-swap\",kind=\"http\"}";
    let expiry = format!("probe_ssl_earliest_cert_expiry{labels} ");
    let warning = "vpc_probe_warning{check=\"https-swap\",reason=\"cert_expiring\"} ";
    let body = after_runs(&served, &["https-swap"], 2);
    let before = midnight_in(30).to_string();
    assert_eq!(
        series(&body, &expiry).as_deref(),
        Some(before.as_str()),
        "{body}"
    );
    assert_eq!(series(&body, warning).as_deref(), Some("0"), "{body}");

    let session = rig().root.join("tls-swap.session");
    let resumed = s_client(tls.swap_https, &session, false);
    assert!(resumed.contains("New,"), "a first handshake: {resumed}");
    tls.swap_certificate().unwrap();
    let again = s_client(tls.swap_https, &session, true);
    assert!(
        again.contains("Reused,"),
        "the server resumes across the swap: {again}"
    );

    let swapped = runs_of(&body, "https-swap");
    let after = midnight_in(2).to_string();
    let body = served.metrics_until(std::time::Duration::from_secs(30), |body| {
        runs_of(body, "https-swap") >= swapped + 2
    });
    assert_eq!(
        series(&body, &expiry).as_deref(),
        Some(after.as_str()),
        "the new chain: {body}"
    );
    assert_eq!(series(&body, warning).as_deref(), Some("1"), "{body}");
}

/// One `openssl s_client` handshake with TLS 1.2 and a session file
/// (written, or read to resume); its output.
fn s_client(port: u16, session: &std::path::Path, resume: bool) -> String {
    let mut command = std::process::Command::new("openssl");
    command.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-tls1_2",
    ]);
    command.args(["-servername", ANISETTE_NAME]);
    let flag = if resume { "-sess_in" } else { "-sess_out" };
    command.arg(flag).arg(session);
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
