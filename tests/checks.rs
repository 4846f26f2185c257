//! Every check kind against real servers: a healthy run through HAProxy and
//! PgBouncer with names from the rig's DNS server, and every failure reason
//! the loopback rig can produce, each named exactly.

mod rig;

use rig::probe::check_json;
use rig::suites;
use rig::*;
use std::time::Duration;

fn healthy_checks(rig: &Rig) -> String {
    format!(
        r#"
[[check]]
name = "haproxy-dns"
kind = "dns"
host = "{HAPROXY_NAME}"
expect_cidrs = ["127.0.0.0/8"]
expect_addresses = ["127.0.0.1"]

[[check]]
name = "haproxy-tcp"
kind = "tcp"
host = "{HAPROXY_NAME}"
port = {haproxy}

{patroni_direct}
{postgres_haproxy}
[[check]]
name = "postgres-direct"
kind = "postgres"
url = "postgres://{PG_USER}@127.0.0.1:{postgres}/app?sslmode=disable"
password = "{PG_PASSWORD}"
cycles = 2

[[check]]
name = "postgres-tls-require"
kind = "postgres"
url = "postgres://{PG_USER}@127.0.0.1:{postgres}/app?sslmode=require"
password = "{PG_PASSWORD}"

[[check]]
name = "postgres-tls-verify-full"
kind = "postgres"
url = "postgres://{PG_USER}@127.0.0.1:{postgres}/app?sslmode=verify-full"
password = "{PG_PASSWORD}"
ca_file = "{ca_file}"

{redis_check}
[[check]]
name = "valkey"
kind = "redis"
url = "redis://127.0.0.1:{valkey}"
password = "{VALKEY_PASSWORD}"
expect_role = "master"

[[check]]
name = "redis-acl"
kind = "redis"
url = "redis://{REDIS_NAME}:{redis}/0"
username = "{REDIS_ACL_USER}"
password = "{REDIS_ACL_PASSWORD}"

[[check]]
name = "anisette-client-info"
kind = "http"
url = "http://{ANISETTE_NAME}:{anisette}/v3/client_info"
expect_status = [200]
expect_json_keys = ["client_info", "user_agent"]

[[check]]
name = "anisette-headers"
kind = "http"
url = "http://{ANISETTE_NAME}:{anisette}/"
expect_headers = ["X-Apple-I-MD", "X-Apple-I-MD-M"]
expect_json_keys = ["X-Apple-I-MD", "X-Apple-I-MD-M", "X-Apple-I-MD-RINFO"]
"#,
        haproxy = rig.haproxy,
        patroni_direct = suites::closed_tcp(rig, "patroni-direct"),
        postgres_haproxy = suites::postgres_haproxy(
            rig,
            "postgres-haproxy",
            "cycles = 3\nquery = \"SELECT now()\"\nexpect_role = \"primary\"\nexpect_extensions = [\"postgis\"]\nmax_duration = \"2s\"",
        ),
        redis_check = suites::redis(rig, "redis", "expect_role = \"master\""),
        postgres = rig.postgres,
        redis = rig.redis,
        valkey = rig.valkey,
        anisette = rig.anisette,
        ca_file = rig.pg_certificate().display(),
    )
}

#[test]
fn every_kind_passes_through_haproxy_and_pgbouncer() {
    let rig = rig();
    let run = check_json(&rig.suite("healthy", &healthy_checks(rig)), &[]);
    let report = run.json();
    let failures: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["success"] != true)
        .map(|c| format!("{}: {} {}", c["name"], c["reason"], c["detail"]))
        .collect();
    assert!(
        failures.is_empty(),
        "failures: {failures:#?}\nstderr: {}",
        run.stderr
    );
    assert_eq!(run.code, 0);
    assert_eq!(report["success"], true);

    let pg = run.check("postgres-haproxy");
    assert_eq!(pg["cycles"]["ok"], 3);
    assert_eq!(pg["cycles"]["failed"], 0);
    assert_eq!(pg["observed"]["role"], "primary");
    // Through HAProxy and PgBouncer, the server is the PostgreSQL behind them.
    assert_eq!(
        pg["observed"]["server"],
        format!("127.0.0.1:{}", rig.postgres)
    );
    assert_eq!(pg["observed"]["timeline"], "00000001");
    for phase in ["resolve", "connect", "auth", "query", "close"] {
        assert!(
            pg["phases"][phase].as_f64().unwrap() > 0.0,
            "phase {phase} not timed: {pg}"
        );
    }
    assert_eq!(
        run.check("haproxy-dns")["observed"]["addresses"],
        "127.0.0.1"
    );
    assert_eq!(
        run.check("patroni-direct")["observed"]["blocked_by"],
        "connect_refused"
    );
    assert_eq!(run.check("redis")["observed"]["role"], "master");
    assert_eq!(run.check("valkey")["observed"]["role"], "master");
    assert_eq!(
        run.check("anisette-client-info")["observed"]["status"],
        "200"
    );
}

#[test]
fn postgres_cycles_leave_no_server_session_behind() {
    let rig = rig();
    // An application name no other test uses: tests run in parallel.
    let body = format!(
        "[[check]]\nname = \"leak\"\nkind = \"postgres\"\n\
         url = \"postgres://{PG_USER}@127.0.0.1:{}/app?sslmode=disable&application_name=leakcheck\"\n\
         password = \"{PG_PASSWORD}\"\ncycles = 5\n",
        rig.postgres
    );
    let run = check_json(&rig.suite("leak", &body), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.check("leak")["cycles"]["ok"], 5);
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'leakcheck'";
    assert_eq!(rig.psql("postgres", sql).unwrap(), "0");
}

/// (check name, expected reason, the check's TOML body)
fn fault_checks(rig: &Rig) -> Vec<(&'static str, &'static str, String)> {
    let pg = |port: u16, user: &str, password: &str, extra: &str| {
        format!("kind = \"postgres\"\nurl = \"postgres://{user}@127.0.0.1:{port}/app{extra}\"\npassword = \"{password}\"")
    };
    let redis = |port: u16, auth: &str| {
        format!("kind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n{auth}")
    };
    let http =
        |port: u16, path: &str| format!("kind = \"http\"\nurl = \"http://127.0.0.1:{port}{path}\"");
    let dns = |host: &str| format!("kind = \"dns\"\nhost = \"{host}\"");
    let right = format!("password = \"{REDIS_PASSWORD}\"");
    vec![
        ("dns-nxdomain", "dns_nxdomain", dns(MISSING_NAME)),
        (
            "postgres-too-slow",
            "too_slow",
            pg(rig.slow_haproxy, PG_USER, PG_PASSWORD, "") + "\nmax_duration = \"150ms\"",
        ),
        ("dns-public", "dns_public_address", dns(PUBLIC_NAME)),
        ("dns-servfail", "dns_servfail", dns(SERVFAIL_NAME)),
        (
            "dns-unexpected",
            "dns_unexpected_address",
            dns(OTHER_NAME) + "\nexpect_addresses = [\"127.0.0.1\"]",
        ),
        (
            "tcp-refused",
            "connect_refused",
            format!(
                "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}",
                rig.closed
            ),
        ),
        (
            "tcp-too-wide",
            "unexpectedly_reachable",
            format!(
                "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nexpect = \"unreachable\"",
                rig.postgres
            ),
        ),
        (
            "pg-wrong-password",
            "auth_failed",
            pg(rig.postgres, PG_USER, "wrong", ""),
        ),
        (
            "pg-wrong-password-pgbouncer",
            "auth_failed",
            pg(rig.haproxy, PG_USER, "wrong", ""),
        ),
        (
            "pg-hba-reject",
            "auth_failed",
            pg(rig.postgres, PG_REJECTED_USER, PG_PASSWORD, ""),
        ),
        (
            "pg-replica-expected",
            "wrong_role",
            pg(rig.postgres, PG_USER, PG_PASSWORD, "") + "\nexpect_role = \"replica\"",
        ),
        (
            "pg-timescaledb",
            "missing_extension",
            pg(rig.postgres, PG_USER, PG_PASSWORD, "")
                + "\nexpect_extensions = [\"timescaledb\", \"postgis\"]",
        ),
        (
            "pg-no-backend",
            "closed_by_peer",
            pg(rig.haproxy_dead, PG_USER, PG_PASSWORD, ""),
        ),
        (
            "pg-http-on-port",
            "protocol_error",
            pg(rig.anisette, PG_USER, PG_PASSWORD, ""),
        ),
        (
            "pg-silent",
            "timeout",
            pg(rig.silent, PG_USER, PG_PASSWORD, "") + "\ntimeout = \"1s\"",
        ),
        (
            "pg-tls-not-offered",
            "tls_error",
            pg(rig.pgbouncer, PG_USER, PG_PASSWORD, "?sslmode=require"),
        ),
        (
            "pg-tls-unverified",
            "tls_error",
            pg(rig.postgres, PG_USER, PG_PASSWORD, "?sslmode=verify-full"),
        ),
        (
            "redis-wrong-password",
            "auth_failed",
            redis(rig.redis, "password = \"wrong\""),
        ),
        ("redis-no-auth", "auth_failed", redis(rig.redis, "")),
        (
            "valkey-wrong-password",
            "auth_failed",
            redis(rig.valkey, "password = \"not-the-valkey-password\""),
        ),
        (
            "redis-acl-wrong",
            "auth_failed",
            redis(
                rig.redis,
                &format!("username = \"{REDIS_ACL_USER}\"\npassword = \"{REDIS_PASSWORD}\""),
            ),
        ),
        (
            "redis-replica-expected",
            "wrong_role",
            redis(rig.redis, &right) + "\nexpect_role = \"replica\"",
        ),
        (
            "redis-no-backend",
            "closed_by_peer",
            redis(rig.haproxy_dead, &right),
        ),
        (
            "redis-http-on-port",
            "protocol_error",
            redis(rig.anisette, &right),
        ),
        (
            "redis-silent",
            "timeout",
            redis(rig.silent, &right) + "\ntimeout = \"1s\"",
        ),
        (
            "http-503",
            "unexpected_response",
            http(rig.unhealthy_http, "/v3/client_info"),
        ),
        (
            "http-missing-keys",
            "unexpected_response",
            http(rig.anisette, "/") + "\nexpect_json_keys = [\"client_info\"]",
        ),
        (
            "http-no-backend",
            "closed_by_peer",
            http(rig.haproxy_dead, "/"),
        ),
        ("http-on-ssh-port", "protocol_error", http(rig.ssh, "/")),
        (
            "pg-on-ssh-port",
            "protocol_error",
            pg(rig.ssh, PG_USER, PG_PASSWORD, ""),
        ),
        (
            "http-silent",
            "timeout",
            http(rig.silent, "/v3/client_info") + "\ntimeout = \"1s\"",
        ),
    ]
}

/// One fault row of [`fault_checks`], run as a suite of its own: the check
/// fails with exactly its reason and carries a hint.
fn fault_row(name: &str) {
    let rig = rig();
    let (_, expected, toml) = fault_checks(rig)
        .into_iter()
        .find(|(row, _, _)| *row == name)
        .unwrap_or_else(|| panic!("no fault row {name}"));
    let body = format!("[[check]]\nname = \"{name}\"\n{toml}\n");
    let run = check_json(&rig.suite(&format!("fault-{name}"), &body), &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let check = run.check(name);
    assert_eq!(check["success"], false, "{name}: {check}");
    assert_eq!(check["reason"], expected, "{name}: {}", check["detail"]);
    assert!(
        check["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{name} has no hint"
    );
}

/// One `#[test]` per fault row, named after it (`-` as `_`), so a failing
/// row never hides the rest and `cargo test -- --list` shows the matrix.
macro_rules! fault_rows {
    ($($row:ident),* $(,)?) => {
        mod fault {
            $(
                #[test]
                fn $row() {
                    super::fault_row(&stringify!($row).replace('_', "-"));
                }
            )*
        }

        /// The rows that have a test of their own.
        const FAULT_ROWS: &[&str] = &[$(stringify!($row)),*];
    };
}

fault_rows!(
    dns_nxdomain,
    postgres_too_slow,
    dns_public,
    dns_servfail,
    dns_unexpected,
    tcp_refused,
    tcp_too_wide,
    pg_wrong_password,
    pg_wrong_password_pgbouncer,
    pg_hba_reject,
    pg_replica_expected,
    pg_timescaledb,
    pg_no_backend,
    pg_http_on_port,
    pg_silent,
    pg_tls_not_offered,
    pg_tls_unverified,
    redis_wrong_password,
    redis_no_auth,
    valkey_wrong_password,
    redis_acl_wrong,
    redis_replica_expected,
    redis_no_backend,
    redis_http_on_port,
    redis_silent,
    http_503,
    http_missing_keys,
    http_no_backend,
    http_on_ssh_port,
    pg_on_ssh_port,
    http_silent,
);

#[test]
fn every_fault_row_has_a_test_of_its_own() {
    let rows: Vec<String> = fault_checks(rig())
        .iter()
        .map(|(name, _, _)| name.replace('-', "_"))
        .collect();
    let tested: Vec<String> = FAULT_ROWS.iter().map(|row| row.to_string()).collect();
    assert_eq!(rows, tested, "add the new row to fault_rows!");
}

/// Checks that resolve one name in one run share its lookups
/// (net::lookups): 100 dns and 100 tcp checks of a name nothing else asks
/// for reach the resolver as a handful of queries, not 400 (A and AAAA
/// for each), which a VPC resolver's packet limit would feel.
#[test]
fn checks_of_one_name_in_one_run_share_its_lookups() {
    let rig = rig();
    let dns = format!("kind = \"dns\"\nhost = \"{SHARED_NAME}\"\nexpect_cidrs = [\"127.0.0.0/8\"]");
    let tcp = format!(
        "kind = \"tcp\"\nhost = \"{SHARED_NAME}\"\nport = {}",
        rig.redis
    );
    let body: String = (0..100)
        .map(|i| {
            format!(
                "[[check]]\nname = \"dns-{i}\"\n{dns}\n\n[[check]]\nname = \"tcp-{i}\"\n{tcp}\n\n"
            )
        })
        .collect();
    let before = rig.dns_queries_for(SHARED_NAME);
    let run = check_json(&rig.suite("shared-lookups", &body), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // dnsmasq writes its log as it answers; give the last lines a moment.
    let mut asked = 0;
    for _ in 0..20 {
        asked = rig.dns_queries_for(SHARED_NAME) - before;
        if asked >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("200 checks of {SHARED_NAME}: {asked} queries");
    assert!(
        (2..=8).contains(&asked),
        "200 checks of one name sent {asked} queries to the resolver"
    );
}

#[test]
fn a_silent_resolver_is_a_dns_timeout_within_the_deadline() {
    let rig = rig();
    let suite = rig.suite_with(
        "dns-timeout",
        &format!("resolver = \"{}\"\ntimeout = \"1s\"", rig.dns_black_hole),
        &format!("[[check]]\nname = \"haproxy-dns\"\nkind = \"dns\"\nhost = \"{HAPROXY_NAME}\""),
    );
    let run = check_json(&suite, &[]);
    assert_eq!(run.check("haproxy-dns")["reason"], "dns_timeout");
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn twenty_black_holed_checks_take_one_deadline_not_twenty() {
    let rig = rig();
    let body: String = (0..20)
        .map(|i| {
            format!(
                "[[check]]\nname = \"hole-{i}\"\nkind = \"postgres\"\nurl = \"postgres://probe@127.0.0.1:{}/app\"\ntimeout = \"2s\"\n\n",
                rig.silent
            )
        })
        .collect();
    let run = check_json(&rig.suite("black-holes", &body), &[]);
    assert_eq!(run.code, 1);
    for i in 0..20 {
        assert_eq!(run.check(&format!("hole-{i}"))["reason"], "timeout");
    }
    // 20 sequential deadlines would be 40 s; concurrency makes it about 2 s.
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}",
        run.elapsed
    );
}
