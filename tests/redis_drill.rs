//! The Redis failover drill (`kind = "redis-failover"`) against a real
//! primary and replica (redis-server, AUTH) on two loopback addresses, one
//! port, behind a name served by a dnsmasq of the test's own, as an
//! ElastiCache primary endpoint is. The trigger does what ElastiCache's
//! failover does: writes paused on the primary, the replica promoted, the
//! old primary demoted, then the name flipped to the new primary. In one
//! case the old primary answers READONLY; in the other it closes its
//! clients' connections and goes away. Each acknowledged write is looked
//! for on the new primary independently of the drill. Then a cluster-mode
//! cache (three masters, three replicas): every replica takes over, the
//! run's slot gets a new owner, and the writes follow MOVED to it.

mod rig;

use rig::probe::{drill_json, keep_acknowledged_seqs};
use rig::process::{self, free_cluster_port, free_port, free_udp_port, scratch_dir, Daemon};
use rig::REDIS_PASSWORD;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const NAME: &str = "primary.cache.drill.internal";
const OLD: &str = "127.0.0.2";
const NEW: &str = "127.0.0.3";

/// A primary on OLD and its replica on NEW, one port, and a dnsmasq
/// answering NAME from a hosts file the trigger rewrites.
struct Cache {
    dir: PathBuf,
    port: u16,
    dns: u16,
    hosts: PathBuf,
    dnsmasq: Daemon,
    _servers: Vec<Daemon>,
}

impl Cache {
    fn start(tag: &str) -> Cache {
        let dir = scratch_dir(&format!("vpc-probe-redis-drill-{tag}")).unwrap();
        let port = free_port().unwrap();
        let primary = redis_server(&dir, OLD, port, "");
        let replicaof = format!("replicaof {OLD} {port}\nmasterauth {REDIS_PASSWORD}\n");
        let replica = redis_server(&dir, NEW, port, &replicaof);
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, format!("{OLD} {NAME}\n")).unwrap();
        let (dns, dnsmasq) = dnsmasq(&dir, &hosts);
        let cache = Cache {
            dir,
            port,
            dns,
            hosts,
            dnsmasq,
            _servers: vec![primary, replica],
        };
        process::wait_for("the replica in sync", Duration::from_secs(20), || {
            cache
                .cli(NEW, &["INFO", "replication"])
                .contains("master_link_status:up")
        })
        .unwrap();
        cache
    }

    /// redis-cli against `host`, its output.
    fn cli(&self, host: &str, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args([
                "-h",
                host,
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
            ])
            .env("REDISCLI_AUTH", REDIS_PASSWORD)
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The trigger: ElastiCache's failover, with `old_primary` saying what
    /// becomes of the old primary between its demotion and the DNS flip.
    fn failover(&self, old_primary: &str) -> String {
        let cli = format!("redis-cli -p {} --no-auth-warning", self.port);
        format!(
            "export REDISCLI_AUTH='{REDIS_PASSWORD}'; \
             {cli} -h {OLD} CLIENT PAUSE 5000 WRITE >/dev/null; sleep 0.3; \
             {cli} -h {NEW} REPLICAOF NO ONE >/dev/null; \
             {old_primary}; sleep 0.5; \
             printf '{NEW} {NAME}\\n' > {hosts}; date +%s.%N > {flipped}; kill -HUP {pid}",
            hosts = self.hosts.display(),
            flipped = self.dir.join("flipped").display(),
            pid = self.dnsmasq.pid,
        )
    }

    /// The drill's suite: the cache's resolver, a write every 100 ms.
    fn drill(&self, name: &str, trigger: &str, budgets: &str) -> Value {
        let suite = self.dir.join(format!("{name}.toml"));
        let text = format!(
            "[suite]\nresolver = \"127.0.0.1:{dns}\"\n\n\
             [[drill]]\nname = \"{name}\"\nkind = \"redis-failover\"\n\
             url = \"redis://{NAME}:{port}\"\npassword = \"{REDIS_PASSWORD}\"\n\
             interval = \"100ms\"\nattempt_timeout = \"1s\"\nbaseline = \"1s\"\nsettle = \"2s\"\n\
             wait_for_change = \"20s\"\ntrigger = [\"sh\", \"-c\", {trigger:?}]\n{budgets}\n",
            dns = self.dns,
            port = self.port,
        );
        std::fs::write(&suite, text).unwrap();
        let html = self.dir.join(format!("{name}.html"));
        let extra = ["--html", html.to_str().unwrap()];
        let (run, mut report) = drill_json(&suite, name, &extra, Duration::from_secs(90));
        let page = std::fs::read_to_string(&html).unwrap();
        for (what, text) in [
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("page", &page),
        ] {
            no_secret(what, text);
        }
        println!(
            "{name}: writes {} misrouted {} gap {} s session {} dns {} failures {} data {} before {} after {}",
            report["writes"],
            report["misrouted_writes"],
            report["write_gap_seconds"],
            report["open_session"],
            report["dns"],
            report["failures_by_reason"],
            report["data"],
            report["primary_before"],
            report["primary_after"]
        );
        keep_acknowledged_seqs(&mut report);
        report["code"] = run.code.into();
        report
    }

    /// Acknowledged writes missing from the new primary, looked up there.
    fn missing_on_new_primary(&self, report: &Value) -> usize {
        let run_id = report["run_id"].as_str().unwrap();
        let acknowledged = report["acknowledged_seqs"].as_array().unwrap();
        acknowledged
            .iter()
            .filter(|seq| {
                let key = format!("vpc-probe:drill:{{{run_id}}}:{seq}");
                self.cli(NEW, &["EXISTS", &key]).trim() != "1"
            })
            .count()
    }

    /// Seconds from the trigger's start to the real DNS flip.
    fn real_flip(&self, report: &Value) -> f64 {
        let flipped: f64 = std::fs::read_to_string(self.dir.join("flipped"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let started = humantime::parse_rfc3339(report["started"].as_str().unwrap()).unwrap();
        let started = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let trigger = report["trigger"]["started_after_seconds"].as_f64().unwrap();
        flipped - started - trigger
    }
}

/// The password appears nowhere; a leak is shown with the secret masked.
fn no_secret(what: &str, text: &str) {
    if let Some(at) = text.find(REDIS_PASSWORD) {
        let around = &text[at.saturating_sub(120)..(at + 40).min(text.len())];
        panic!(
            "{what} leaks the password: {}",
            around.replace(REDIS_PASSWORD, "<PASSWORD>")
        );
    }
}

fn redis_server(dir: &Path, host: &str, port: u16, extra: &str) -> Daemon {
    let data = dir.join(host);
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("redis.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind {host}\nsave \"\"\nappendonly no\ndir {}\ndaemonize no\n\
             requirepass {REDIS_PASSWORD}\n{extra}",
            data.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("redis-server");
    command.arg(&config);
    let daemon = Daemon::spawn("redis-server", command, &data.join("redis.log")).unwrap();
    let ping = || {
        Command::new("redis-cli")
            .args(["-h", host, "-p", &port.to_string(), "--no-auth-warning"])
            .env("REDISCLI_AUTH", REDIS_PASSWORD)
            .arg("PING")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
    };
    daemon
        .wait_ready("redis-server", Duration::from_secs(20), ping)
        .unwrap();
    daemon
}

fn dnsmasq(dir: &Path, hosts: &Path) -> (u16, Daemon) {
    let port = free_udp_port().unwrap();
    let mut command = Command::new("dnsmasq");
    command
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
        ])
        .args([
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
        ])
        .args(["--pid-file=", "--user=root", "--local=/drill.internal/"])
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg(format!("--port={port}"));
    let daemon = Daemon::spawn("dnsmasq", command, &dir.join("dnsmasq.log")).unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    daemon
        .wait_ready("dnsmasq", Duration::from_secs(20), || {
            process::dns_answer_count(addr, NAME).is_some_and(|n| n > 0)
        })
        .unwrap();
    (port, daemon)
}

/// What both cases share: the name moved from OLD to NEW within one
/// interval of the real flip, the primary changed (address and replid),
/// and no acknowledged write is missing, by the drill's count or on the
/// new primary itself.
fn failed_over(cache: &Cache, report: &Value) {
    assert_eq!(report["kind"], "redis-failover");
    let port = cache.port;
    assert_eq!(report["primary_before"]["server"], format!("{OLD}:{port}"));
    assert_eq!(report["primary_after"]["server"], format!("{NEW}:{port}"));
    assert_ne!(
        report["primary_before"]["timeline"],
        report["primary_after"]["timeline"]
    );
    assert_eq!(report["dns"]["before"], serde_json::json!([OLD]));
    assert_eq!(report["dns"]["after"], serde_json::json!([NEW]));
    let seen = report["dns"]["changed_after_seconds"].as_f64().unwrap();
    let real = cache.real_flip(report);
    assert!(
        (-0.05..=0.1 + 0.25).contains(&(seen - real)),
        "the flip came {real:.3} s after the trigger, the drill saw it at {seen:.3} s"
    );
    assert_eq!(report["data"]["lost"], 0, "{report:#}");
    assert_eq!(cache.missing_on_new_primary(report), 0);
    assert!(report["writes"]["ok"].as_u64().unwrap() >= 10, "{report:#}");
}

#[test]
fn a_demoted_primary_answers_readonly_until_the_name_moves() {
    let cache = Cache::start("readonly");
    let cli = format!("redis-cli -p {} --no-auth-warning", cache.port);
    let demote = format!(
        "{cli} -h {OLD} REPLICAOF {NEW} {} >/dev/null; {cli} -h {OLD} CLIENT UNPAUSE >/dev/null",
        cache.port
    );
    let budgets = "max_misrouted_writes = 1000\nmax_write_gap = \"30s\"";
    let report = cache.drill("readonly", &cache.failover(&demote), budgets);
    failed_over(&cache, &report);
    assert_eq!(report["code"], 0, "{report:#}");
    let misrouted = report["misrouted_writes"].as_u64().unwrap();
    assert!(misrouted >= 1, "{report:#}");
    assert_eq!(report["failures_by_reason"]["readonly"], misrouted);
    assert_eq!(report["open_session"]["fate"], "cut");
    assert_eq!(report["open_session"]["how"], "readonly");
    page_shows_the_failover(&cache, "readonly");
}

/// The drill's page, as for the PostgreSQL drill: self-contained, the
/// timeline drawn with the name's move on it, rendered by headless
/// Chromium, nothing sticking out at normal widths.
fn page_shows_the_failover(cache: &Cache, name: &str) {
    let html = cache.dir.join(format!("{name}.html"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains(" src=") && !page.contains(" href="),
        "no fetches"
    );
    assert!(page.contains("<svg") && page.contains("write gap"));
    assert!(
        page.contains(&format!("{NAME} now answers {NEW}")),
        "the DNS move is on the page"
    );
    let png = cache.dir.join(format!("{name}.png"));
    rig::chromium::screenshot(&html, &png).expect("headless Chromium renders the page");
    for width in [1280, 1024, 800] {
        let sticking_out = rig::chromium::overflow(&html, width).expect("measured in Chromium");
        assert!(sticking_out.is_empty(), "at {width}px: {sticking_out:?}");
    }
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-drill-{name}.png"));
    std::fs::copy(&png, keep).unwrap();
}

#[test]
fn an_old_primary_that_closes_connections_is_counted_and_fails_the_budget() {
    let cache = Cache::start("closes");
    let cli = format!("redis-cli -p {} --no-auth-warning", cache.port);
    let close = format!(
        "{cli} -h {OLD} CLIENT KILL TYPE normal >/dev/null; {cli} -h {OLD} SHUTDOWN NOSAVE >/dev/null 2>&1; true"
    );
    let report = cache.drill(
        "closes",
        &cache.failover(&close),
        "max_write_gap = \"300ms\"",
    );
    failed_over(&cache, &report);
    assert_eq!(report["code"], 1, "{report:#}");
    assert_eq!(report["misrouted_writes"], 0);
    assert_eq!(report["open_session"]["fate"], "cut");
    assert_eq!(report["open_session"]["how"], "closed_by_peer");
    let refused = report["failures_by_reason"]["connect_refused"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused >= 1, "{report:#}");
    let gap = report["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "max_write_gap")
        .unwrap();
    assert_eq!(gap["pass"], false);
}

/// A cluster-mode cache: three masters with a replica each (AUTH), on
/// loopback ports; `create`d by redis-cli, ready when every node says
/// `cluster_state:ok`.
struct Cluster {
    dir: PathBuf,
    ports: Vec<u16>,
    _nodes: Vec<Daemon>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = scratch_dir("vpc-probe-redis-cluster").unwrap();
        let ports: Vec<u16> = (0..6).map(|_| free_cluster_port().unwrap()).collect();
        let nodes = ports
            .iter()
            .map(|port| {
                let node_dir = dir.join(port.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                let extra = format!(
                    "cluster-enabled yes\ncluster-config-file {}\ncluster-node-timeout 2000\nmasterauth {REDIS_PASSWORD}\n",
                    node_dir.join("nodes.conf").display()
                );
                redis_server(&node_dir, "127.0.0.1", *port, &extra)
            })
            .collect();
        let cluster = Cluster {
            dir,
            ports,
            _nodes: nodes,
        };
        let mut create = Command::new("redis-cli");
        create
            .args(["--no-auth-warning", "--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .env("REDISCLI_AUTH", REDIS_PASSWORD);
        process::run(&mut create, "redis-cli --cluster create").unwrap();
        process::wait_for("cluster_state:ok", Duration::from_secs(30), || {
            cluster.ports.iter().all(|port| {
                cluster
                    .cli(*port, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
            })
        })
        .unwrap();
        cluster
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--no-auth-warning"])
            .env("REDISCLI_AUTH", REDIS_PASSWORD)
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

#[test]
fn a_cluster_failover_moves_the_slot_and_writes_follow_moved() {
    let cluster = Cluster::start();
    // Every replica takes over its master (a manual CLUSTER FAILOVER:
    // coordinated, nothing acknowledged is lost), whichever owns the slot.
    let ports: Vec<String> = cluster.ports.iter().map(u16::to_string).collect();
    let trigger = format!(
        "export REDISCLI_AUTH='{REDIS_PASSWORD}'; for p in {}; do \
         if redis-cli --no-auth-warning -p $p ROLE | head -1 | grep -q slave; then \
         redis-cli --no-auth-warning -p $p CLUSTER FAILOVER >/dev/null; fi; done; sleep 2",
        ports.join(" ")
    );
    let suite = cluster.dir.join("cluster.toml");
    let text = format!(
        "[[drill]]\nname = \"cluster\"\nkind = \"redis-failover\"\n\
         url = \"redis://127.0.0.1:{}\"\npassword = \"{REDIS_PASSWORD}\"\n\
         interval = \"100ms\"\nattempt_timeout = \"6s\"\nbaseline = \"1s\"\nsettle = \"2s\"\n\
         wait_for_change = \"30s\"\ntrigger = [\"sh\", \"-c\", {trigger:?}]\n\
         max_misrouted_writes = 1000\nmax_write_gap = \"30s\"\n",
        cluster.ports[0]
    );
    std::fs::write(&suite, text).unwrap();
    let (run, mut report) = drill_json(&suite, "cluster", &[], Duration::from_secs(120));
    no_secret("stdout", &run.stdout);
    keep_acknowledged_seqs(&mut report);
    println!(
        "cluster: writes {} gap {} s misrouted {} failures {} session {} before {} after {} data {}",
        report["writes"],
        report["write_gap_seconds"],
        report["misrouted_writes"],
        report["failures_by_reason"],
        report["open_session"],
        report["primary_before"],
        report["primary_after"],
        report["data"]
    );
    assert_eq!(run.code, 0, "{report:#}");
    let (before, after) = (&report["primary_before"], &report["primary_after"]);
    assert_ne!(
        before["server"], after["server"],
        "the slot has a new owner"
    );
    assert_eq!(before["timeline"], after["timeline"], "the same slot");
    assert!(report["change_seen_after_seconds"].as_f64().is_some());
    assert!(
        report.get("dns").is_none_or(Value::is_null),
        "an address is not watched"
    );
    assert_eq!(report["data"]["lost"], 0, "{report:#}");
    assert!(report["writes"]["ok"].as_u64().unwrap() >= 10);
    // The held session sat on the old owner: the new one sends it away.
    assert_eq!(report["open_session"]["how"], "moved", "{report:#}");
}

#[test]
fn a_reload_of_nothing_over_tls_and_auth_changes_nothing() {
    let rig = rig::rig();
    let tls = rig::tls::tls_rig();
    let dir = scratch_dir("vpc-probe-redis-drill-tls").unwrap();
    let suite = dir.join("tls.toml");
    let text = format!(
        "[suite]\nresolver = \"{}\"\n\n[[drill]]\nname = \"tls\"\nkind = \"redis-failover\"\n\
         url = \"rediss://{}:{}\"\npassword = \"{}\"\nca_file = \"{}\"\n\
         interval = \"100ms\"\nbaseline = \"1s\"\nsettle = \"1s\"\nexpect = \"no-change\"\n",
        rig.dns,
        rig::ELASTICACHE_NAME,
        tls.redis_tls,
        rig::tls::REDIS_TOKEN,
        tls.ca_file.display()
    );
    std::fs::write(&suite, text).unwrap();
    let (run, report) = drill_json(&suite, "tls", &[], Duration::from_secs(60));
    assert!(!run.stdout.contains(rig::tls::REDIS_TOKEN));
    assert_eq!(run.code, 0, "{report:#}");
    assert_eq!(report["writes"]["failed"], 0);
    assert_eq!(report["open_session"]["fate"], "survived");
    assert_eq!(report["dns"]["changed_after_seconds"], Value::Null);
    assert_eq!(report["primary_before"], report["primary_after"]);
    assert_eq!(report["data"]["lost"], 0);
}
