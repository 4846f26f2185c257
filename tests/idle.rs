//! Idle survival (`idle`, `tcp_keepalive`) against real idle killers: an
//! HAProxy with `timeout client 3s`, a PgBouncer with
//! `client_idle_timeout = 3`, a redis-server with `timeout 3` (all FIN);
//! inside a namespace of the test's own, an iptables DROP added mid-idle
//! (silence), a REJECT with a reset (reset on the next packet, as an NLB
//! does), and connection tracking that forgets idle flows after 3 s,
//! which keepalives every second defeat. Then `serve`: an idle check runs
//! on its own loop, and readiness does not wait for it.

mod rig;

use rig::namespace::{self, Namespace};
use rig::observe::Served;
use rig::probe::{check_json, run_with};
use rig::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How an idle check ended: "pass", or its reason; and its JSON.
fn verdict(check: &Value) -> String {
    if check["success"] == true {
        "pass".to_string()
    } else {
        check["reason"].as_str().unwrap_or("?").to_string()
    }
}

/// One check with `keys`, run alone against the rig.
fn one(rig: &Rig, name: &str, keys: &str) -> Value {
    let checks = format!("[[check]]\nname = \"{name}\"\n{keys}\n");
    let run = check_json(&rig.suite(name, &checks), &[]);
    for secret in [PG_PASSWORD, REDIS_PASSWORD] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    let check = run.check(name);
    println!("{name}: {} {}", check["detail"], check["idle"]);
    check
}

/// The idle step of `check` at `index`: its fate (or "survived") and when.
fn step(check: &Value, index: usize) -> (String, f64) {
    let step = &check["idle"][index];
    let fate = match step["survived"].as_bool() {
        Some(true) => "survived".to_string(),
        _ => step["fate"].as_str().unwrap_or("?").to_string(),
    };
    (fate, step["after_seconds"].as_f64().unwrap_or(0.0))
}

/// A FIN from an idle killer set to 3 s: the check fails with
/// `idle_timeout` in `idle`, the fate is fin, and it came near 3 s.
fn ended_by_fin_near_three_seconds(check: &Value) {
    assert_eq!(verdict(check), "idle_timeout", "{check}");
    assert_eq!(check["phase"], "idle");
    let (fate, after) = step(check, 0);
    assert_eq!(fate, "fin", "{check}");
    assert!((2.0..6.0).contains(&after), "the FIN came after {after} s");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("closed by the peer (FIN)"), "{detail}");
}

fn redis_url(port: u16) -> String {
    format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}")
}

fn postgres_keys(port: u16) -> String {
    format!(
        "kind = \"postgres\"\nurl = \"postgres://{PG_USER}@127.0.0.1:{port}/app?sslmode=disable\"\npassword = \"{PG_PASSWORD}\""
    )
}

#[test]
fn haproxy_timeout_client_ends_held_redis_and_postgres_sessions_with_fin() {
    let rig = rig();
    let lines = "  timeout client 3s";
    let to_redis = rig
        .extra_haproxy_with("haproxy-idle-redis", rig.redis, "", lines)
        .unwrap();
    let to_postgres = rig
        .extra_haproxy_with("haproxy-idle-pg", rig.pgbouncer, "", lines)
        .unwrap();
    let redis = format!(
        "kind = \"redis\"\nurl = \"{}\"\nidle = \"6s\"",
        redis_url(to_redis)
    );
    ended_by_fin_near_three_seconds(&one(rig, "haproxy-idle-redis", &redis));
    let postgres = format!("{}\nidle = \"6s\"", postgres_keys(to_postgres));
    ended_by_fin_near_three_seconds(&one(rig, "haproxy-idle-pg", &postgres));
}

#[test]
fn pgbouncer_client_idle_timeout_ends_a_held_session_with_fin() {
    let rig = rig();
    let bouncer = rig
        .extra_pgbouncer("pgbouncer-idle", "client_idle_timeout = 3")
        .unwrap();
    let keys = format!("{}\nidle = \"6s\"", postgres_keys(bouncer));
    let check = one(rig, "pgbouncer-idle", &keys);
    ended_by_fin_near_three_seconds(&check);
    // PgBouncer says why before it closes; the report keeps its words.
    assert_eq!(check["idle"][0]["server_said"], "FATAL client_idle_timeout");
}

#[test]
fn redis_timeout_is_bracketed_by_a_staircase() {
    let rig = rig();
    let redis = rig.extra_redis("redis-idle", "timeout 3").unwrap();
    let keys = format!(
        "kind = \"redis\"\nurl = \"{}\"\nidle = [\"6s\", \"1s\"]",
        redis_url(redis)
    );
    let check = one(rig, "redis-idle", &keys);
    assert_eq!(verdict(&check), "idle_timeout", "{check}");
    assert_eq!(step(&check, 0).0, "survived");
    assert_eq!(check["idle"][0]["idle_seconds"], 1.0);
    let (fate, after) = step(&check, 1);
    assert_eq!(fate, "fin");
    assert!((2.0..6.0).contains(&after), "the FIN came after {after} s");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("1s survived, so the limit lies between 1s and 6s"),
        "{detail}"
    );
    assert!(detail.contains("Redis `timeout`"), "{detail}");
    assert!(check["hint"]
        .as_str()
        .unwrap_or_default()
        .contains("ElastiCache"));
}

#[test]
fn sessions_that_outlive_their_idle_pass_and_the_wall_time_is_said_up_front() {
    let rig = rig();
    let checks = format!(
        "[[check]]\nname = \"redis-held\"\nkind = \"redis\"\nurl = \"{}\"\nidle = \"2s\"\n\n\
         [[check]]\nname = \"postgres-held\"\n{}\nidle = \"2s\"\ntcp_keepalive = \"1s\"\n\n\
         [[check]]\nname = \"tcp-held\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nidle = \"2s\"\n",
        redis_url(rig.redis),
        postgres_keys(rig.haproxy),
        rig.haproxy
    );
    let suite = rig.suite("idle-pass", &checks);
    let run = check_json(&suite, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for name in ["redis-held", "postgres-held", "tcp-held"] {
        let check = run.check(name);
        assert_eq!(step(&check, 0).0, "survived", "{check}");
        let idle = check["phases"]["idle"].as_f64().unwrap_or_default();
        assert!(idle >= 2.0, "{name} idled {idle} s");
    }
    let text = run_with(
        &["check", "--suite", suite.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    let first = text.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "holding sessions idle: this run takes up to 5s (redis-held: idle 2s + timeout 3s)"
    );
    assert!(text
        .stdout
        .contains("redis-held: sessions held idle\n  2s: survived"));
}

/// A suite of a redis and a tcp check on the namespace's redis-server,
/// each with `keys`.
fn namespace_suite(ns: &Namespace, port: u16, keys: &str) -> std::path::PathBuf {
    let path = ns.scratch().join("suite.toml");
    let body = format!(
        "[suite]\nname = \"idle\"\ntimeout = \"3s\"\n\n\
         [[check]]\nname = \"redis\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n{keys}\n\n\
         [[check]]\nname = \"tcp\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n{keys}\n"
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// Hold both checks' sessions 4 s; `rule` goes into the namespace's INPUT
/// chain 1.5 s in; each ends with `fate`.
fn killed_mid_idle(tag: &str, rule: &[&str], fate: &str) {
    let Some(ns) = Namespace::create(tag) else {
        return;
    };
    let port = 6379;
    let _redis = ns.redis(&ns.scratch(), port).unwrap();
    let suite = namespace_suite(&ns, port, "idle = \"4s\"");
    let started = Instant::now();
    let probe = ns.spawn_probe(&suite);
    std::thread::sleep(Duration::from_millis(1500));
    let dport = port.to_string();
    let mut args = vec!["iptables", "-I", "INPUT", "-p", "tcp", "--dport", &dport];
    args.extend_from_slice(rule);
    ns.exec(&args);
    let run = namespace::finish(probe, started);
    for name in ["redis", "tcp"] {
        let check = run.check(name);
        println!("{name}: {}", check["detail"]);
        assert_eq!(verdict(&check), "idle_timeout", "{check}");
        assert_eq!(step(&check, 0).0, fate, "{check}");
    }
}

#[test]
fn a_silent_drop_mid_idle_is_silence_until_the_deadline() {
    killed_mid_idle("idle-drop", &["-j", "DROP"], "silence");
}

#[test]
fn a_reset_answering_the_next_packet_is_reset() {
    let rule = ["-j", "REJECT", "--reject-with", "tcp-reset"];
    killed_mid_idle("idle-reset", &rule, "reset");
}

#[test]
fn keepalives_save_sessions_from_connection_tracking_that_forgets_idle_flows() {
    let Some(ns) = Namespace::create("idle-track") else {
        return;
    };
    let port = 6379;
    let _redis = ns.redis(&ns.scratch(), port).unwrap();
    // As a security group's connection tracking: established flows are
    // forgotten after 3 s idle, and a packet of a forgotten flow is
    // dropped without a word (no loose pickup mid-stream).
    ns.exec(&[
        "sysctl",
        "-qw",
        "net.netfilter.nf_conntrack_tcp_timeout_established=3",
        "net.netfilter.nf_conntrack_tcp_loose=0",
    ]);
    let dport = port.to_string();
    let chain = |extra: &[&str]| {
        let mut args = vec!["iptables", "-A", "INPUT", "-p", "tcp", "--dport", &dport];
        args.extend_from_slice(extra);
        ns.exec(&args);
    };
    chain(&[
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED",
        "-j",
        "ACCEPT",
    ]);
    chain(&[
        "--syn",
        "-m",
        "conntrack",
        "--ctstate",
        "NEW",
        "-j",
        "ACCEPT",
    ]);
    chain(&["-j", "DROP"]);
    let bare = ns.probe(&namespace_suite(&ns, port, "idle = \"6s\""));
    for name in ["redis", "tcp"] {
        let check = bare.check(name);
        assert_eq!(verdict(&check), "idle_timeout", "{check}");
        assert_eq!(step(&check, 0).0, "silence", "{check}");
    }
    let kept = ns.probe(&namespace_suite(
        &ns,
        port,
        "idle = \"6s\"\ntcp_keepalive = \"1s\"",
    ));
    assert_eq!(kept.code, 0, "{}\n{}", kept.stdout, kept.stderr);
    for name in ["redis", "tcp"] {
        assert_eq!(step(&kept.check(name), 0).0, "survived");
    }
}

#[test]
fn serve_runs_an_idle_check_on_its_own_loop_and_is_ready_without_it() {
    let rig = rig();
    let checks = format!(
        "[[check]]\nname = \"held\"\nkind = \"redis\"\nurl = \"{}\"\nidle = \"8s\"\n\n\
         [[check]]\nname = \"quick\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\ninterval = \"1s\"\n",
        redis_url(rig.redis),
        rig.haproxy
    );
    let suite = rig.suite_with("idle-serve", "timeout = \"1s\"", &checks);
    let served = Served::start(&suite, "30s", &[]);
    let started = Instant::now();
    served.wait_ready(Duration::from_secs(5));
    // The quick check keeps its one-second pace while the other holds
    // its session, and the held one has no result yet.
    let quick_runs =
        "vpc_probe_check_runs_total{check=\"quick\",kind=\"tcp\",result=\"success\"} 3";
    let body = served.metrics_until(Duration::from_secs(6), |body| body.contains(quick_runs));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!body.contains("check=\"held\",kind=\"redis\"}"), "{body}");
    let held = "vpc_probe_idle_survived_seconds{check=\"held\",kind=\"redis\"} 8";
    served.metrics_until(Duration::from_secs(20), |body| body.contains(held));
}

/// A tcp check holds its connection without payload, so only the far
/// side's FIN tells it the connection died: HAProxy (`mode tcp`, client
/// and server timeouts 3 s) in front of a server that never closes, and a
/// server that closes idle connections itself after 1 s, both fail it
/// with `idle_timeout`, fate fin.
#[test]
fn a_tcp_check_held_idle_sees_the_far_side_close() {
    let rig = rig();
    let lines = "  timeout client 3s\n  timeout server 3s";
    let front = rig
        .extra_haproxy_with("haproxy-idle-tcp", rig.silent, "", lines)
        .unwrap();
    let through_haproxy = one(
        rig,
        "tcp-through-haproxy",
        &format!(
            "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {front}\nidle = \"6s\"\ntimeout = \"3s\""
        ),
    );
    ended_by_fin_near_three_seconds(&through_haproxy);
    let closer = rig::fixture::spawn(rig::fixture::Mode::ClosesIdle).unwrap();
    let direct = one(
        rig,
        "tcp-closing-server",
        &format!("kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {closer}\nidle = \"4s\"\ntimeout = \"3s\""),
    );
    assert_eq!(verdict(&direct), "idle_timeout", "{direct}");
    let (fate, after) = step(&direct, 0);
    assert_eq!(fate, "fin", "{direct}");
    assert!((0.5..3.0).contains(&after), "the FIN came after {after} s");
}

/// Two servers on one port behind a name with two addresses: 127.0.0.1
/// never closes, 127.0.0.3 closes idle connections after 1 s.
fn pair_of_servers() -> u16 {
    use rig::fixture::{spawn_at, Mode};
    for _ in 0..20 {
        let Ok(closing) = spawn_at(Mode::ClosesIdle, "127.0.0.3:0".parse().unwrap()) else {
            continue;
        };
        let port = closing.port();
        if spawn_at(
            Mode::Silent,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .is_ok()
        {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.3");
}

/// `addresses = "all"` with `idle`: each address is held and judged, and
/// reports its own steps; the check's steps show the address that died.
#[test]
fn every_address_is_held_idle_and_judged() {
    let rig = rig();
    let port = pair_of_servers();
    let check = one(
        rig,
        "tcp-pair-idle",
        &format!(
            "kind = \"tcp\"\nhost = \"{PAIR_NAME}\"\nport = {port}\naddresses = \"all\"\nidle = \"3s\"\ntimeout = \"3s\""
        ),
    );
    assert_eq!(verdict(&check), "idle_timeout", "{check}");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("1 of 2 addresses failed: 127.0.0.3: idle_timeout"),
        "{detail}"
    );
    assert_eq!(
        step(&check, 0).0,
        "fin",
        "the check's step is the one that died: {check}"
    );
    let addresses = check["addresses"].as_array().expect("addresses");
    let fate_of = |address: &str| {
        let one = addresses
            .iter()
            .find(|a| a["address"] == address)
            .unwrap_or_else(|| panic!("{address}: {check}"));
        let step = &one["idle"][0];
        match step["survived"].as_bool() {
            Some(true) => "survived".to_string(),
            _ => step["fate"]
                .as_str()
                .unwrap_or("no idle result")
                .to_string(),
        }
    };
    assert_eq!(fate_of("127.0.0.1"), "survived", "{check}");
    assert_eq!(fate_of("127.0.0.3"), "fin", "{check}");
}
