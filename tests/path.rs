//! The proxy path under real use (issue 12's options), against the rig's
//! real servers: a COPY round trip through HAProxy → PgBouncer and through
//! middleboxes that corrupt or cut it; named prepared statements across
//! transactions directly, through session pooling and through transaction
//! pooling; many sessions at once against PostgreSQL's, PgBouncer's and
//! Redis's connection limits, each configured low. Every test ends by
//! proving it left no session and no table behind.

mod rig;

use rig::middlebox::{self, Tamper};
use rig::probe::check_json;
use rig::*;

/// A user whose sessions PostgreSQL limits (CONNECTION LIMIT 3).
const LIMITED_USER: &str = "limited";

/// `url`'s check with `keys`, run alone; (reason or "pass", check JSON).
fn one(rig: &Rig, name: &str, kind: &str, url: &str, keys: &str) -> (String, serde_json::Value) {
    let checks = format!(
        "[[check]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\ntimeout = \"20s\"\n{keys}\n"
    );
    let run = check_json(&rig.suite(name, &checks), &[]);
    assert!(!run.stdout.contains(PG_PASSWORD) && !run.stderr.contains(PG_PASSWORD));
    let check = run.check(name);
    let got = if check["success"] == true {
        "pass".to_string()
    } else {
        check["reason"].as_str().unwrap_or("?").to_string()
    };
    println!("{name}: {got} {} {}", check["detail"], check["observed"]);
    (got, check)
}

fn postgres_url(port: u16, user: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{port}/app?sslmode=disable")
}

/// No session of the probe is left on the server, and no drill or COPY
/// table exists outside a session (temporary tables die with theirs).
fn nothing_left_behind(rig: &Rig) {
    let sessions = || {
        rig.psql(
            "app",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vpc-probe'",
        )
        .unwrap()
    };
    // PgBouncer keeps its server connections idle: those are its, not
    // ours. A session left working or inside a transaction (the prepared
    // check's helper holds one) is ours.
    let busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vpc-probe' \
                AND state <> 'idle'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rig.psql("app", busy).unwrap() != "0" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(rig.psql("app", busy).unwrap(), "0", "{}", sessions());
    let tables = "SELECT count(*) FROM pg_class WHERE relname = 'vpc_probe_copy'";
    assert_eq!(rig.psql("app", tables).unwrap(), "0");
}

#[test]
fn copy_round_trips_through_haproxy_and_pgbouncer_and_names_what_a_middlebox_did() {
    let rig = rig();
    let through = postgres_url(rig.haproxy, PG_USER);
    let keys = format!("password = \"{PG_PASSWORD}\"\ncopy_bytes = \"4MiB\"");
    let (got, check) = one(rig, "copy-through-path", "postgres", &through, &keys);
    assert_eq!(got, "pass", "{check}");
    let copy = check["observed"]["copy"].as_str().unwrap();
    assert!(copy.starts_with("4.0 MiB in and back out"), "{copy}");

    // Each middlebox tampers once 1 MiB has come back from the server.
    let tampering = [
        (
            "copy-corrupted",
            Tamper::Corrupt { after: 1 << 20 },
            ["came back as", "where"],
        ),
        (
            "copy-cut",
            Tamper::Cut { after: 1 << 20 },
            ["closed mid-COPY", "came back"],
        ),
    ];
    for (name, tamper, words) in tampering {
        let middlebox = middlebox::spawn(rig.haproxy, tamper).unwrap();
        let url = postgres_url(middlebox, PG_USER);
        let (got, check) = one(rig, name, "postgres", &url, &keys);
        assert_eq!(got, "data_mismatch", "{check}");
        let detail = check["detail"].as_str().unwrap();
        assert!(words.iter().all(|w| detail.contains(w)), "{detail}");
    }
    nothing_left_behind(rig);
}

#[test]
fn prepared_statements_pass_without_a_pooler_or_in_session_pooling_and_fail_in_transaction_pooling()
{
    let rig = rig();
    let keys = format!("password = \"{PG_PASSWORD}\"\nprepared_statements = true");
    let direct = postgres_url(rig.postgres, PG_USER);
    let (got, check) = one(rig, "prepared-direct", "postgres", &direct, &keys);
    assert_eq!(got, "pass", "{check}");
    assert!(check["observed"]["prepared_statements"]
        .as_str()
        .unwrap()
        .contains("on the server that prepared it"));

    let session_pooling = rig
        .extra_pgbouncer("pgbouncer-session", "pool_mode = session")
        .unwrap();
    let url = postgres_url(session_pooling, PG_USER);
    let (got, check) = one(rig, "prepared-session-pooling", "postgres", &url, &keys);
    assert_eq!(got, "pass", "{check}");

    // HAProxy → PgBouncer 1.18 in transaction pooling, as production.
    let url = postgres_url(rig.haproxy, PG_USER);
    let (got, check) = one(rig, "prepared-transaction-pooling", "postgres", &url, &keys);
    assert_eq!(got, "pooler_incompatible", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("does not exist") && detail.contains("26000"),
        "{detail}"
    );
    let hint = check["hint"].as_str().unwrap();
    assert!(hint.contains("max_prepared_statements") && hint.contains("prepareThreshold"));
    nothing_left_behind(rig);
}

#[test]
fn concurrency_fills_the_path_and_names_each_limit() {
    let rig = rig();
    let password = format!("password = \"{PG_PASSWORD}\"");
    let keys = format!("{password}\nconcurrency = 40");
    let through = postgres_url(rig.haproxy, PG_USER);
    let (got, check) = one(rig, "crowd-through-path", "postgres", &through, &keys);
    assert_eq!(got, "pass", "{check}");
    let seen = check["observed"]["concurrency"].as_str().unwrap();
    assert!(seen.starts_with("40/40 sessions at once ok"), "{seen}");

    // PostgreSQL's own limit, 53300 (a role's CONNECTION LIMIT: the same
    // SQLSTATE as max_connections, without starving the other tests).
    rig.psql(
        "postgres",
        &format!("CREATE ROLE {LIMITED_USER} LOGIN PASSWORD '{PG_PASSWORD}' CONNECTION LIMIT 3"),
    )
    .unwrap();
    let direct = postgres_url(rig.postgres, LIMITED_USER);
    let keys = format!("{password}\nconcurrency = 6");
    let (got, check) = one(rig, "crowd-max-connections", "postgres", &direct, &keys);
    assert_eq!(got, "too_many_connections", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("of 6 sessions") && detail.contains("53300"),
        "{detail}"
    );

    // PgBouncer's max_client_conn.
    let small = rig
        .extra_pgbouncer("pgbouncer-small", "max_client_conn = 5")
        .unwrap();
    let url = postgres_url(small, PG_USER);
    let keys = format!("{password}\nconcurrency = 8");
    let (got, check) = one(rig, "crowd-max-client-conn", "postgres", &url, &keys);
    assert_eq!(got, "too_many_connections", "{check}");
    assert!(check["detail"]
        .as_str()
        .unwrap()
        .contains("no more connections allowed"));

    // HAProxy's maxconn queues instead of refusing: the sessions past it
    // are accepted and never answered, so the check ends as a timeout
    // that says what a queue looks like.
    let queueing = rig
        .extra_haproxy("haproxy-maxconn", rig.pgbouncer, "maxconn 2")
        .unwrap();
    let url = postgres_url(queueing, PG_USER);
    let checks = format!(
        "[[check]]\nname = \"crowd-queued\"\nkind = \"postgres\"\nurl = \"{url}\"\ntimeout = \"4s\"\n{password}\nconcurrency = 5\n"
    );
    let run = check_json(&rig.suite("crowd-queued", &checks), &[]);
    let check = run.check("crowd-queued");
    assert_eq!(check["reason"], "timeout", "{check}");
    let detail = check["detail"].as_str().unwrap();
    println!("crowd-queued: timeout: {detail}");
    assert!(
        detail.contains("of 5 sessions")
            && detail.contains("2 opened")
            && detail.contains("HAProxy maxconn"),
        "{detail}"
    );
    let keys = format!("{password}\nconcurrency = 2");
    let (got, check) = one(rig, "crowd-within-maxconn", "postgres", &url, &keys);
    assert_eq!(got, "pass", "{check}");

    // Redis's maxclients.
    let redis = rig.extra_redis("redis-small", "maxclients 5").unwrap();
    let url = format!("redis://127.0.0.1:{redis}");
    let keys = format!("password = \"{REDIS_PASSWORD}\"\nconcurrency = 8");
    let (got, check) = one(rig, "crowd-maxclients", "redis", &url, &keys);
    assert_eq!(got, "too_many_connections", "{check}");
    assert!(check["detail"]
        .as_str()
        .unwrap()
        .contains("max number of clients"));
    let keys = format!("password = \"{REDIS_PASSWORD}\"\nconcurrency = 4");
    let (got, check) = one(rig, "crowd-under-maxclients", "redis", &url, &keys);
    assert_eq!(got, "pass", "{check}");
    nothing_left_behind(rig);
}

#[test]
fn every_report_shows_the_first_hop_next_to_the_whole_path() {
    let rig = rig();
    let keys = format!("password = \"{PG_PASSWORD}\"");
    for port in [rig.haproxy, rig.slow_haproxy] {
        let url = postgres_url(port, PG_USER);
        let (got, check) = one(rig, "hops", "postgres", &url, &keys);
        assert_eq!(got, "pass", "{check}");
        let latency = check["observed"]["latency"].as_str().unwrap().to_string();
        let numbers: Vec<f64> = latency
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        let [connect, request] = numbers[..] else {
            panic!("{latency}");
        };
        if port == rig.slow_haproxy {
            // The delaying proxy answers the connect itself; each chunk
            // through it waits SLOW_PATH_DELAY each way.
            let delay = SLOW_PATH_DELAY.as_secs_f64() * 1000.0;
            assert!(connect < delay / 2.0, "{latency}");
            assert!(request >= 2.0 * delay, "{latency}");
        }
    }
}

#[test]
fn every_address_behind_a_name_is_proven_and_the_failing_one_named() {
    let rig = rig();
    let checks = format!(
        "[[check]]\nname = \"pair-first\"\nkind = \"tcp\"\nhost = \"{PAIR_NAME}\"\nport = {haproxy}\n\n\
         [[check]]\nname = \"pair-all\"\nkind = \"postgres\"\naddresses = \"all\"\n\
         url = \"postgres://{PG_USER}@{PAIR_NAME}:{haproxy}/app?sslmode=disable\"\npassword = \"{PG_PASSWORD}\"\n\n\
         [[check]]\nname = \"single-all\"\nkind = \"tcp\"\naddresses = \"all\"\nhost = \"{HAPROXY_NAME}\"\nport = {haproxy}\n",
        haproxy = rig.haproxy
    );
    let suite = rig.suite("pair", &checks);
    let run = check_json(&suite, &[]);
    assert_eq!(run.check("pair-first")["success"], true, "{}", run.stdout);
    let all = run.check("pair-all");
    assert_eq!(all["reason"], "connect_refused", "{all}");
    let detail = all["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 of 2 addresses failed: 127.0.0.3: connect_refused"),
        "{detail}"
    );
    let each = all["addresses"].as_array().unwrap();
    assert_eq!(each.len(), 2, "{all}");
    let by_address = |address: &str| {
        each.iter()
            .find(|a| a["address"] == address)
            .unwrap()
            .clone()
    };
    assert_eq!(by_address("127.0.0.1")["success"], true);
    assert_eq!(by_address("127.0.0.3")["reason"], "connect_refused");
    // The passing address still did the whole check: its findings are there.
    assert_eq!(all["observed"]["role"], "primary", "{all}");
    let single = run.check("single-all");
    assert_eq!(single["success"], true);
    assert_eq!(single["addresses"].as_array().unwrap().len(), 1);

    let text = rig::probe::run_with(
        &["check", "--suite", suite.to_str().unwrap()],
        &[],
        std::time::Duration::from_secs(60),
    );
    assert!(
        text.stdout.contains("pair-all: each address"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("FAIL connect_refused"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_slow_query_stays_a_timeout_not_a_path_mtu_problem() {
    let rig = rig();
    // Large answers arrive on loopback: the stall is the server's.
    let keys = format!("password = \"{PG_PASSWORD}\"\nquery = \"SELECT pg_sleep(30)\"");
    // Its own application_name: the other tests look for the probe's
    // sessions while this one still sleeps on the server.
    let url = format!(
        "{}&application_name=vpc-probe-sleepy",
        postgres_url(rig.haproxy, PG_USER)
    );
    let checks = format!(
        "[[check]]\nname = \"sleepy\"\nkind = \"postgres\"\nurl = \"{url}\"\ntimeout = \"6s\"\n{keys}\n"
    );
    let run = check_json(&rig.suite("sleepy", &checks), &[]);
    let check = run.check("sleepy");
    assert_eq!(check["reason"], "timeout", "{check}");
    assert_eq!(check["phase"], "query", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("less the time kept to find out why"),
        "{detail}"
    );
    // The check hung up; the server's backend would sleep on: end it.
    rig.psql(
        "app",
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'vpc-probe-sleepy'",
    )
    .unwrap();
}
