//! The fault matrix with real packets: the two-VPC topology of
//! `scripts/topology` (ECS subnets A and B, a router playing the VPC router,
//! resolver and peering connection, a database VPC with a real Patroni
//! cluster behind HAProxy, Redis and anisette). Each fault is a test of
//! its own (`fault::<id>`): applied to the healthy topology, the probe runs
//! from the subnets, the fault is removed and both subnets must be healthy
//! again before the next row. Prints the table: fault, expected, got. A switchover drill runs from
//! subnet A through the same path. Needs root; fails under CI=true without.

mod rig;

use rig::topology::{
    self, Subnet, Topology, HAPROXY, HAPROXY_B, PATRONI_PRIMARY, PATRONI_REPLICA, RESOLVER,
};
use rig::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The fault matrix and the drill share one topology: one at a time.
static TURN: Mutex<()> = Mutex::new(());

const PG_PASSWORD_VAR: &str = "TOPO_PG_PASSWORD";

/// The production checks, pointed at the topology's addresses.
fn suite(topology: &Topology) -> PathBuf {
    let text = format!(
        r#"[suite]
name = "topology"
resolver = "{RESOLVER}"
timeout = "2s"

[[check]]
name = "haproxy-dns"
kind = "dns"
host = "{HAPROXY_NAME}"
expect_cidrs = ["10.0.0.0/16"]
expect_addresses = ["{HAPROXY}"]

[[check]]
name = "haproxy-tcp"
kind = "tcp"
host = "{HAPROXY_NAME}"
port = 5432

[[check]]
name = "haproxy-tcp-all"
kind = "tcp"
host = "{HAPROXY_NAME}"
port = 5432
addresses = "all"

[[check]]
name = "postgres-rw"
kind = "postgres"
url = "postgres://{PG_USER}@{HAPROXY_NAME}:5432/app"
password = "${{{PG_PASSWORD_VAR}}}"
expect_role = "primary"
max_duration = "600ms"

[[check]]
name = "postgres-large-result"
kind = "postgres"
url = "postgres://{PG_USER}@{HAPROXY_NAME}:5432/app"
password = "${{{PG_PASSWORD_VAR}}}"
query = "SELECT repeat('x', 65536)"
timeout = "8s"

[[check]]
name = "postgres-copy"
kind = "postgres"
url = "postgres://{PG_USER}@{HAPROXY_NAME}:5432/app"
password = "${{{PG_PASSWORD_VAR}}}"
copy_bytes = "1MiB"
timeout = "8s"

[[check]]
name = "postgres-ro"
kind = "postgres"
url = "postgres://{PG_USER}@{HAPROXY_NAME}:5433/app"
password = "${{{PG_PASSWORD_VAR}}}"
expect_role = "replica"

[[check]]
name = "redis"
kind = "redis"
url = "redis://{redis}:6379"
password = "{REDIS_PASSWORD}"

[[check]]
name = "anisette"
kind = "http"
url = "http://{anisette}:6969/v3/client_info"
expect_json_keys = ["client_info", "user_agent"]

[[check]]
name = "patroni-1-direct"
kind = "tcp"
host = "{PATRONI_PRIMARY}"
port = 5432
expect = "unreachable"
timeout = "1s"

[[check]]
name = "patroni-2-rest-api-direct"
kind = "tcp"
host = "{PATRONI_REPLICA}"
port = 8008
expect = "unreachable"
timeout = "1s"
"#,
        redis = topology::REDIS_HOST,
        anisette = topology::ANISETTE_HOST,
    );
    let path = topology.root.join("topology.toml");
    std::fs::write(&path, text).expect("write suite");
    path
}

/// A change to the healthy topology.
#[derive(Clone)]
enum Change {
    /// Run a command inside a namespace (a, b, r, d).
    Exec(&'static str, Vec<String>),
    /// A command on HAProxy's runtime API; `{primary}` and `{replica}`
    /// stand for the nodes Patroni calls so when it is applied.
    HaProxy(&'static str),
    /// The private zone's records.
    Zone(String),
    /// An environment variable of the probe (a secret that changed).
    Env(&'static str, &'static str),
}

/// The ECS subnets' attachment table drops what goes to the database VPC:
/// no route there and a blackhole route look alike on the wire.
fn ecs_attachment_drops() -> Vec<Change> {
    vec![
        exec("r", "ip rule add iif @ra lookup 200 pref 100"),
        exec("r", "ip rule add iif @rb lookup 200 pref 101"),
        exec("r", "ip route add blackhole 10.0.0.0/16 table 200"),
    ]
}

/// The router's per-attachment rules `prefs` and table `table` gone again.
fn tgw_tables_back(prefs: &[&str], table: &str) -> Vec<Change> {
    let rules = prefs
        .iter()
        .map(|pref| exec("r", &format!("ip rule del pref {pref}")));
    rules
        .chain([exec("r", &format!("ip route flush table {table}"))])
        .collect()
}

fn exec(namespace: &'static str, command: &str) -> Change {
    Change::Exec(
        namespace,
        command.split_whitespace().map(str::to_string).collect(),
    )
}

struct Fault {
    /// Its test's name (see `fault_rows!`).
    id: &'static str,
    name: &'static str,
    apply: Vec<Change>,
    revert: Vec<Change>,
    /// (subnet, check, expected reason or "pass")
    expect: Vec<(Subnet, &'static str, &'static str)>,
    /// Also check that `vpc-probe compare` of the two subnets' reports
    /// names `(check, the only failing subnet)`.
    compare: Option<(&'static str, Subnet)>,
    /// Words the detail of `(check)` from subnet A must hold.
    names: Option<(&'static str, &'static str)>,
    /// A check from subnet A whose per-hop latency must show the delay
    /// behind the first hop: a quick connect, a slow first request.
    hops: Option<&'static str>,
}

fn faults() -> Vec<Fault> {
    let healthy_zone = Topology::healthy_zone();
    let sg_haproxy = "INPUT -s 10.20.0.0/16 -d 10.0.1.12 -p tcp --dport 5432";
    let resolver_a = "INPUT -s 10.20.1.0/24 -d 10.20.0.2 -p udp --dport 53 -j DROP";
    let nacl_a = "FORWARD -d 10.20.1.0/24 -p tcp --dport 1024:65535 -j DROP";
    let patroni_sg = "INPUT -s 10.20.0.0/16 -d 10.0.1.21 -p tcp --dport 5432 -j DROP";
    let patroni_api_sg = "INPUT -s 10.20.0.0/16 -d 10.0.1.22 -p tcp --dport 8008 -j DROP";
    let slow = format!(
        "PREROUTING -d {HAPROXY} -p tcp --dport 5432 -j REDIRECT --to-ports {}",
        topology::SLOW_PROXY_PORT
    );
    let redis_sg = "INPUT -d 10.0.2.10 -p tcp --dport 6379 -j DROP";
    let pair_zone = healthy_zone.replace(
        &format!("{HAPROXY} {HAPROXY_NAME}\n"),
        &format!("{HAPROXY} {HAPROXY_NAME}\n{HAPROXY_B} {HAPROXY_NAME}\n"),
    );
    let az_b_from_a = format!("FORWARD -s 10.20.1.0/24 -d {HAPROXY_B} -j DROP");
    let no_frag_needed = "OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP";
    // Path MTUs the hosts learned from earlier rows would hide the hole.
    let forget_path_mtus = || {
        vec![
            exec("d", "ip route flush cache"),
            exec("a", "ip route flush cache"),
        ]
    };
    use Subnet::{A, B};
    vec![
        Fault {
            id: "dns_public_ip",
            name: "DNS answers a public IP for the HAProxy name (peering DNS resolution off)",
            apply: vec![Change::Zone(healthy_zone.replace(
                &format!("{HAPROXY} {HAPROXY_NAME}"),
                &format!("{PUBLIC_ADDRESS} {HAPROXY_NAME}"),
            ))],
            revert: vec![Change::Zone(healthy_zone.clone())],
            expect: vec![(A, "haproxy-dns", "dns_public_address")],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "zone_missing_the_name",
            name: "private hosted zone missing the name",
            apply: vec![Change::Zone(
                healthy_zone.replace(&format!("{HAPROXY} {HAPROXY_NAME}\n"), ""),
            )],
            revert: vec![Change::Zone(healthy_zone.clone())],
            expect: vec![(A, "haproxy-dns", "dns_nxdomain"), (A, "redis", "pass")],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "resolver_unreachable_from_a",
            name: "resolver unreachable from subnet A (NACL drops port 53)",
            apply: vec![exec("r", &format!("iptables -I {resolver_a}"))],
            revert: vec![exec("r", &format!("iptables -D {resolver_a}"))],
            expect: vec![
                (A, "haproxy-dns", "dns_timeout"),
                (B, "haproxy-dns", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "route_missing_from_b",
            name: "peering route missing from subnet B's route table only",
            apply: vec![exec("b", "ip route del 10.0.0.0/16")],
            revert: vec![exec("b", "ip route add 10.0.0.0/16 via 10.20.2.1")],
            expect: vec![
                (A, "haproxy-tcp", "pass"),
                (B, "haproxy-tcp", "connect_unreachable"),
            ],
            compare: Some(("haproxy-tcp", B)),
            names: None,
            hops: None,
        },
        Fault {
            id: "sg_drops_haproxy",
            name: "security group drops 5432 to HAProxy (DROP)",
            apply: vec![exec("d", &format!("iptables -I {sg_haproxy} -j DROP"))],
            revert: vec![exec("d", &format!("iptables -D {sg_haproxy} -j DROP"))],
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (A, "postgres-rw", "connect_timeout"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "haproxy_stopped",
            name: "HAProxy stopped (REJECT with reset)",
            apply: vec![exec(
                "d",
                &format!("iptables -I {sg_haproxy} -j REJECT --reject-with tcp-reset"),
            )],
            revert: vec![exec(
                "d",
                &format!("iptables -D {sg_haproxy} -j REJECT --reject-with tcp-reset"),
            )],
            expect: vec![(A, "haproxy-tcp", "connect_refused")],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "haproxy_without_backends",
            name: "HAProxy up, every read-write backend down",
            apply: vec![Change::HaProxy("set server primary/{primary} state maint")],
            revert: vec![Change::HaProxy("set server primary/{primary} state ready")],
            expect: vec![
                (A, "haproxy-tcp", "pass"),
                (A, "postgres-rw", "closed_by_peer"),
                (A, "postgres-ro", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "sg_too_wide_patroni_node",
            name: "security group too wide: a Patroni node reachable directly",
            apply: vec![exec("d", &format!("iptables -D {patroni_sg}"))],
            revert: vec![exec("d", &format!("iptables -A {patroni_sg}"))],
            expect: vec![
                (A, "patroni-1-direct", "unexpectedly_reachable"),
                (B, "patroni-1-direct", "unexpectedly_reachable"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "sg_too_wide_patroni_api",
            name: "security group too wide: a Patroni REST API reachable directly",
            apply: vec![exec("d", &format!("iptables -D {patroni_api_sg}"))],
            revert: vec![exec("d", &format!("iptables -A {patroni_api_sg}"))],
            expect: vec![(A, "patroni-2-rest-api-direct", "unexpectedly_reachable")],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            // HAProxy's /primary check keeps the replica out of the
            // read-write port; a wrong check does not (here: none at all).
            id: "rw_port_on_the_replica",
            name: "read-write port routed to the replica (its health check off)",
            apply: vec![
                Change::HaProxy("disable health primary/{replica}"),
                Change::HaProxy("set server primary/{replica} health up"),
                Change::HaProxy("set server primary/{primary} state maint"),
            ],
            revert: vec![
                Change::HaProxy("enable health primary/{replica}"),
                Change::HaProxy("set server primary/{primary} state ready"),
            ],
            expect: vec![(A, "postgres-rw", "wrong_role")],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "wrong_password",
            name: "wrong password (the secret in Secrets Manager is stale)",
            apply: vec![Change::Env(PG_PASSWORD_VAR, "stale-Secret-1")],
            revert: vec![],
            expect: vec![
                (A, "postgres-rw", "auth_failed"),
                (A, "postgres-ro", "auth_failed"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "slow_path",
            name: "path 200 ms slower than the latency budget (delaying proxy on the peering)",
            apply: vec![exec("r", &format!("iptables -t nat -A {slow}"))],
            revert: vec![exec("r", &format!("iptables -t nat -D {slow}"))],
            expect: vec![(A, "postgres-rw", "too_slow"), (A, "postgres-ro", "pass")],
            compare: None,
            names: None,
            hops: Some("postgres-rw"),
        },
        Fault {
            id: "nacl_drops_returns",
            name: "network ACL of subnet A drops return traffic (ephemeral ports)",
            apply: vec![exec("r", &format!("iptables -I {nacl_a}"))],
            revert: vec![exec("r", &format!("iptables -D {nacl_a}"))],
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (B, "haproxy-tcp", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "peering_deleted",
            name: "peering connection deleted (its route is a blackhole in the VPC route table)",
            apply: vec![exec("r", "ip route replace blackhole 10.0.0.0/16")],
            revert: vec![exec("r", "ip route replace 10.0.0.0/16 via 10.0.0.10 mtu 1500")],
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (B, "haproxy-tcp", "connect_timeout"),
                (A, "haproxy-dns", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        // The router as a transit gateway: one TGW route table per
        // attachment, as `ip rule` by the link a packet came in on. A TGW
        // drops what its table has no route for, as a blackhole does.
        Fault {
            id: "tgw_no_route",
            name: "transit gateway: the ECS attachment's route table has no route to the database VPC",
            apply: ecs_attachment_drops(),
            revert: tgw_tables_back(&["100", "101"], "200"),
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (B, "haproxy-tcp", "connect_timeout"),
                (A, "haproxy-dns", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "tgw_blackhole",
            name: "transit gateway: the route to the database VPC is a blackhole (its attachment is gone)",
            apply: ecs_attachment_drops(),
            revert: tgw_tables_back(&["100", "101"], "200"),
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (B, "haproxy-tcp", "connect_timeout"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "tgw_return_route_missing",
            name: "transit gateway: the database attachment's route table has no route back to the ECS VPC",
            apply: vec![
                exec("r", "ip rule add iif @rd lookup 201 pref 102"),
                exec("r", "ip route add blackhole 10.20.0.0/16 table 201"),
            ],
            revert: tgw_tables_back(&["102"], "201"),
            expect: vec![
                (A, "haproxy-tcp", "connect_timeout"),
                (B, "haproxy-tcp", "connect_timeout"),
                (A, "haproxy-dns", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "haproxy_pair_one_unreachable",
            name: "HAProxy pair: the name answers two addresses, one unreachable from subnet A",
            apply: vec![
                Change::Zone(pair_zone),
                exec("r", &format!("iptables -I {az_b_from_a}")),
            ],
            revert: vec![
                exec("r", &format!("iptables -D {az_b_from_a}")),
                Change::Zone(healthy_zone.clone()),
            ],
            expect: vec![
                (A, "haproxy-tcp", "pass"),
                (A, "haproxy-tcp-all", "connect_timeout"),
                (B, "haproxy-tcp-all", "pass"),
            ],
            compare: None,
            names: Some(("haproxy-tcp-all", "1 of 2 addresses failed: 10.0.1.13")),
            hops: None,
        },
        Fault {
            id: "mtu_discovery_works",
            name: "MTU 9001 subnets, 1500 peering, ICMP fragmentation-needed allowed (path MTU discovery works)",
            apply: forget_path_mtus(),
            revert: vec![],
            expect: vec![
                (A, "postgres-large-result", "pass"),
                (A, "postgres-copy", "pass"),
            ],
            compare: None,
            names: None,
            hops: None,
        },
        Fault {
            id: "mtu_black_hole",
            name: "MTU 9001 subnets, 1500 peering, a NACL drops ICMP fragmentation-needed",
            apply: [
                vec![exec("r", &format!("iptables -I {no_frag_needed}"))],
                forget_path_mtus(),
            ]
            .concat(),
            revert: vec![exec("r", &format!("iptables -D {no_frag_needed}"))],
            expect: vec![
                (A, "postgres-rw", "pass"),
                (A, "postgres-large-result", "path_mtu"),
                (A, "postgres-copy", "path_mtu"),
            ],
            compare: None,
            names: Some(("postgres-large-result", "a 6000-byte one not within")),
            hops: None,
        },
        Fault {
            id: "redis_sg_missing",
            name: "Redis security group missing 6379",
            apply: vec![exec("d", &format!("iptables -I {redis_sg}"))],
            revert: vec![exec("d", &format!("iptables -D {redis_sg}"))],
            expect: vec![(A, "redis", "connect_timeout"), (A, "postgres-rw", "pass")],
            compare: None,
            names: None,
            hops: None,
        },
    ]
}

/// Apply `changes`, collecting environment overrides for the probe.
fn apply(topology: &Topology, changes: &[Change], envs: &mut Vec<(&'static str, &'static str)>) {
    for change in changes {
        let done = match change {
            Change::Exec(namespace, args) => {
                // "@rd" names the router's link to the database VPC.
                let args: Vec<String> = args
                    .iter()
                    .map(|a| a.replace('@', &format!("{}-", topology.prefix)))
                    .collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                topology.exec(namespace, &args)
            }
            Change::HaProxy(command) => topology.roles().and_then(|(primary, replica)| {
                let command = command
                    .replace("{primary}", &primary)
                    .replace("{replica}", &replica);
                // Runtime commands answer nothing when they worked.
                match topology.haproxy(&command) {
                    Ok(answer) if answer.trim().is_empty() => Ok(()),
                    Ok(answer) => Err(format!("{command}: {}", answer.trim())),
                    Err(err) => Err(err),
                }
            }),
            Change::Zone(records) => topology.set_zone(records),
            Change::Env(key, value) => {
                envs.push((key, value));
                Ok(())
            }
        };
        done.unwrap_or_else(|err| panic!("changing the topology: {err}"));
    }
}

/// The reason of `check` in a JSON run, or "pass".
fn got(run: &rig::probe::Run, check: &str) -> String {
    let outcome = run.check(check);
    match outcome["success"].as_bool() {
        Some(true) => "pass".to_string(),
        _ => outcome["reason"].as_str().unwrap_or("?").to_string(),
    }
}

/// Probe both subnets until every check passes, at most `limit`: a fault
/// that outlives its revert shows up here, not in the next row.
fn wait_healthy(
    topology: &Topology,
    suite: &std::path::Path,
    limit: Duration,
) -> Result<(), String> {
    let envs = [(PG_PASSWORD_VAR, PG_PASSWORD)];
    let deadline = Instant::now() + limit;
    loop {
        let runs = [Subnet::A, Subnet::B].map(|subnet| topology.probe(subnet, suite, &envs));
        if runs.iter().all(|run| run.code == 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let failing: Vec<String> = runs.iter().map(|run| run.stdout.clone()).collect();
            return Err(failing.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_healthy_topology_passes_from_both_subnets() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(topology) = topology::topology() else {
        return;
    };
    let suite = suite(topology);
    wait_healthy(topology, &suite, Duration::from_secs(30))
        .unwrap_or_else(|runs| panic!("the healthy topology is not healthy:\n{runs}"));
    let healthy = topology.probe(Subnet::A, &suite, &[(PG_PASSWORD_VAR, PG_PASSWORD)]);
    for check in ["postgres-rw", "postgres-ro", "haproxy-tcp"] {
        let seconds = healthy.check(check)["duration_seconds"]
            .as_f64()
            .unwrap_or_default();
        println!("healthy {check} from subnet A: {seconds:.3} s");
    }
}

/// One fault of [`faults`]: applied to the healthy topology, probed from
/// both subnets, removed; the topology must be healthy again after it.
fn fault_row(id: &str) {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(topology) = topology::topology() else {
        return;
    };
    let fault = faults()
        .into_iter()
        .find(|fault| fault.id == id)
        .unwrap_or_else(|| panic!("no fault row {id}"));
    let suite = suite(topology);
    wait_healthy(topology, &suite, Duration::from_secs(30))
        .unwrap_or_else(|runs| panic!("the topology is not healthy before {id}:\n{runs}"));
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    let mut envs = vec![(PG_PASSWORD_VAR, PG_PASSWORD)];
    apply(topology, &fault.apply, &mut envs);
    let runs = [Subnet::A, Subnet::B].map(|subnet| topology.probe(subnet, &suite, &envs));
    for (subnet, check, expected) in &fault.expect {
        let run = &runs[usize::from(*subnet == Subnet::B)];
        let got = got(run, check);
        if got != *expected {
            mismatches.push(format!(
                "{}: {check} from {}: expected {expected}, got {got}\n{}",
                fault.name,
                subnet.label(),
                run.stdout
            ));
        }
        let seconds = run.check(check)["duration_seconds"]
            .as_f64()
            .unwrap_or_default();
        rows.push(Row {
            fault: fault.name,
            check: format!("{check} from {}", subnet.label()),
            expected: expected.to_string(),
            got,
            seconds,
        });
    }
    mismatches.extend(also_seen(topology, &fault, &runs));
    if let Some(cause) = rig::causes::cause(id) {
        mismatches.extend(describes_agree(topology, cause, &envs).err());
    }
    apply(topology, &fault.revert, &mut Vec::new());
    if let Err(runs) = wait_healthy(topology, &suite, Duration::from_secs(15)) {
        mismatches.push(format!(
            "{}: not healthy after the fault was removed:\n{runs}",
            fault.name
        ));
    }
    record_rows(id, rows);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// What a row asks beyond each check's reason: words in a detail, the
/// delay behind the first hop, `compare` naming the failing subnet.
fn also_seen(topology: &Topology, fault: &Fault, runs: &[rig::probe::Run; 2]) -> Vec<String> {
    let mut mismatches = Vec::new();
    if let Some((check, words)) = fault.names {
        let detail = runs[0].check(check)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !detail.contains(words) {
            mismatches.push(format!(
                "{}: {check}'s detail lacks {words:?}: {detail}",
                fault.name
            ));
        }
    }
    if let Some(check) = fault.hops {
        if let Err(message) = delay_behind_first_hop(&runs[0], check) {
            mismatches.push(format!("{}: {message}", fault.name));
        }
    }
    if let Some((check, subnet)) = fault.compare {
        if let Err(message) = compare_names(topology, runs, check, subnet) {
            mismatches.push(format!("{}: {message}", fault.name));
        }
    }
    mismatches
}

/// The same fault made in the moto world, served inside the subnet's own
/// namespace (its loopback): the probe runs the failing check there with an
/// `[aws]` table, and the finding must be the cause tests/rig/causes.rs
/// names, beside the wire's own reason.
fn describes_agree(
    topology: &Topology,
    cause: &rig::causes::Cause,
    envs: &[(&str, &str)],
) -> Result<(), String> {
    let namespace = format!("{}-{}", topology.prefix, cause.subnet);
    let inside = ["ip", "netns", "exec", namespace.as_str()];
    let moto = rig::moto::Moto::start(cause.fault, &inside)?;
    // A gateway world reads what moto cannot hold through the gaps fixture,
    // the gateway's tables through the network account's role.
    let gaps = match cause.fault.starts_with("tgw_") {
        true => Some(moto.with_gaps(&inside)?),
        false => None,
    };
    let (endpoint, extra) = match &gaps {
        Some((endpoint, _)) => {
            let role = format!("network_role_arn = \"{}\"\n", moto.id("network_role"));
            (endpoint.clone(), role)
        }
        None => (moto.endpoint.clone(), String::new()),
    };
    let subnet = if cause.subnet == "a" {
        Subnet::A
    } else {
        Subnet::B
    };
    let source = subnet.cidr().replace(".0/24", ".10");
    let whole = std::fs::read_to_string(suite(topology)).map_err(|err| err.to_string())?;
    let block = whole
        .split("[[check]]")
        .find(|b| b.contains(&format!("name = \"{}\"", cause.check)))
        .ok_or(format!("no check {} in the topology suite", cause.check))?;
    let head = whole.split("[[check]]").next().unwrap_or_default();
    let path = topology.root.join(format!("aws-{}.toml", cause.fault));
    let text = format!(
        "{head}{}\n[[check]]{block}",
        moto.table_at(&endpoint, &source, &extra)
    );
    std::fs::write(&path, text).map_err(|err| err.to_string())?;
    let mut all: Vec<(&str, &str)> = envs.to_vec();
    all.extend(rig::moto::CREDENTIALS);
    let run = topology.probe(subnet, &path, &all);
    let check = run.check(cause.check);
    let codes: Vec<String> = check["evidence"]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    match codes.iter().any(|c| c == cause.code) {
        true => Ok(()),
        false => Err(format!(
            "{}: the wire said {} and the describes {codes:?}, not {}\n{check:#}",
            cause.fault, check["reason"], cause.code
        )),
    }
}

fault_rows!(
    dns_public_ip,
    zone_missing_the_name,
    resolver_unreachable_from_a,
    route_missing_from_b,
    sg_drops_haproxy,
    haproxy_stopped,
    haproxy_without_backends,
    sg_too_wide_patroni_node,
    sg_too_wide_patroni_api,
    rw_port_on_the_replica,
    wrong_password,
    slow_path,
    nacl_drops_returns,
    peering_deleted,
    tgw_no_route,
    tgw_blackhole,
    tgw_return_route_missing,
    haproxy_pair_one_unreachable,
    mtu_discovery_works,
    mtu_black_hole,
    redis_sg_missing,
);

#[test]
fn every_fault_row_has_a_test_of_its_own() {
    let rows: Vec<&str> = faults().iter().map(|fault| fault.id).collect();
    assert_eq!(rows, FAULT_ROWS, "add the new row to fault_rows!");
}

/// A planned switchover seen from subnet A through the HAProxy name, as the
/// probe would see it from ECS: the trigger runs patronictl inside the
/// database VPC, the drill never talks to a Patroni node. Its figures are
/// checked against Patroni's REST API and the table's rows.
#[test]
fn a_switchover_drill_from_subnet_a_through_haproxy() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(topology) = topology::topology() else {
        return;
    };
    let cluster = topology.cluster();
    let before = cluster.primary().expect("a primary").address.clone();
    let trigger: Vec<String> = cluster
        .switchover_command()
        .iter()
        .map(|part| format!("{part:?}"))
        .collect();
    let suite = topology.root.join("drill.toml");
    let text = format!(
        "[suite]\nname = \"topology-drill\"\nresolver = \"{RESOLVER}\"\n\n\
         [[drill]]\nname = \"switchover\"\nkind = \"postgres-failover\"\n\
         url = \"postgres://{PG_USER}@{HAPROXY_NAME}:5432/app\"\n\
         ro_url = \"postgres://{PG_USER}@{HAPROXY_NAME}:5433/app\"\n\
         password = \"${{{PG_PASSWORD_VAR}}}\"\ninterval = \"50ms\"\nattempt_timeout = \"1s\"\n\
         baseline = \"1500ms\"\nwait_for_change = \"60s\"\nsettle = \"3s\"\n\
         trigger = [{}]\nmax_write_gap = \"15s\"\nopen_session = \"cut\"\nmax_misrouted_writes = 5\n",
        trigger.join(", ")
    );
    std::fs::write(&suite, text).unwrap();
    let output = topology
        .command(Subnet::A.namespace_suffix(), "timeout")
        .args(["180", rig::probe::binary(), "drill", "--format", "json"])
        .args(["--drill", "switchover", "--suite"])
        .arg(&suite)
        .env(PG_PASSWORD_VAR, PG_PASSWORD)
        .output()
        .expect("run vpc-probe drill in subnet A");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(!stdout.contains(PG_PASSWORD) && !stderr.contains(PG_PASSWORD));
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}\n{stderr}"));
    let figures = format!(
        "primary {} -> {}, write gap {} s, writes {}, lost {}, session {}, misrouted {}",
        report["primary_before"]["server"],
        report["primary_after"]["server"],
        report["write_gap_seconds"],
        report["writes"],
        report["data"]["lost"],
        report["open_session"]["fate"],
        report["misrouted_writes"],
    );
    println!("drill from {}: {figures}", Subnet::A.label());
    assert_eq!(output.status.code(), Some(0), "{figures}\n{stderr}");
    let after = cluster.primary().expect("a primary after").address.clone();
    assert_ne!(before, after, "Patroni's REST API names another primary");
    assert_eq!(report["primary_before"]["server"], format!("{before}:5432"));
    assert_eq!(report["primary_after"]["server"], format!("{after}:5432"));
    assert_eq!(report["data"]["lost"], 0);
    assert_eq!(report["open_session"]["fate"], "cut");
    let run_id = report["run_id"].as_str().unwrap();
    let sql = format!("SELECT count(DISTINCT seq) FROM vpc_probe_drill WHERE run_id = '{run_id}'");
    let rows: u64 = cluster.query(cluster.rw, &sql).unwrap().parse().unwrap();
    assert!(
        rows >= report["writes"]["ok"].as_u64().unwrap(),
        "{rows} rows: {figures}"
    );
}

/// The delaying proxy sits in the router and answers the TCP handshake
/// itself, then holds each chunk SLOW_PATH_DELAY each way: the report's
/// per-hop latency must show a quick connect and a first request of at
/// least two delays.
fn delay_behind_first_hop(run: &rig::probe::Run, check: &str) -> Result<(), String> {
    let latency = run.check(check)["observed"]["latency"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let numbers: Vec<f64> = latency
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let delay = SLOW_PATH_DELAY.as_secs_f64() * 1000.0;
    match numbers[..] {
        [connect, request] if connect < delay / 2.0 && request >= 2.0 * delay => {
            println!("per-hop latency through the delaying proxy: {latency}");
            Ok(())
        }
        _ => Err(format!(
            "{check}'s latency does not show the delay behind the first hop: {latency:?}"
        )),
    }
}

/// One line of the printed matrix.
struct Row {
    fault: &'static str,
    check: String,
    expected: String,
    got: String,
    seconds: f64,
}

/// The rows seen so far, by fault id, kept in the order of [`faults`].
static TABLE: Mutex<Vec<(&'static str, Vec<Row>)>> = Mutex::new(Vec::new());

/// Add a fault's rows to the table, print it and keep it in
/// target/tmp/fault-matrix.md, which scripts/test shows after the tests
/// (cargo captures test output).
fn record_rows(id: &str, rows: Vec<Row>) {
    let order: Vec<&'static str> = faults().iter().map(|fault| fault.id).collect();
    let mut seen = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(id) = order.iter().find(|known| **known == id) else {
        return;
    };
    seen.push((id, rows));
    seen.sort_by_key(|(id, _)| order.iter().position(|known| known == id));
    let mut table =
        String::from("| fault | check, from | expected | got | time |\n|---|---|---|---|---|\n");
    for row in seen.iter().flat_map(|(_, rows)| rows) {
        let mark = if row.expected == row.got { "" } else { " ✗" };
        table.push_str(&format!(
            "| {} | {} | `{}` | `{}`{mark} | {:.3} s |\n",
            row.fault, row.check, row.expected, row.got, row.seconds
        ));
    }
    println!("\n{table}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-matrix.md");
    std::fs::write(&path, table).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

/// Run `vpc-probe compare` on the two subnets' reports: it must say that
/// `check` fails from `subnet` only, with the subnet hint.
fn compare_names(
    topology: &Topology,
    runs: &[rig::probe::Run; 2],
    check: &str,
    subnet: Subnet,
) -> Result<(), String> {
    let mut arguments = vec!["compare".to_string()];
    for (run, place) in runs.iter().zip([Subnet::A, Subnet::B]) {
        let path = topology
            .root
            .join(format!("report-{}.json", place.namespace_suffix()));
        std::fs::write(&path, &run.stdout).map_err(|e| e.to_string())?;
        arguments.push(format!("{}={}", place.cidr(), path.display()));
    }
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let compared = rig::probe::run_with(&arguments, &[], Duration::from_secs(30));
    println!(
        "\n$ vpc-probe compare {} ...\n{}",
        subnet.cidr(),
        compared.stdout
    );
    let said = format!("{check}: fails from {} (", subnet.cidr());
    if compared.code == 1
        && compared.stdout.contains(&said)
        && compared.stdout.contains("route table")
    {
        Ok(())
    } else {
        Err(format!(
            "compare did not name {check} failing from {} only:\n{}",
            subnet.cidr(),
            compared.stdout
        ))
    }
}
