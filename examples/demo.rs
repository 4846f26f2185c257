//! The main job on an embedded stack: starts the test rig's real servers on
//! loopback, runs `vpc-probe check --suite checks/local.toml` against them
//! healthy, then again with faults injected through the suite's variables,
//! then as the long-running service Prometheus scrapes (`serve`), then
//! what applications do beyond `SELECT 1` (COPY, prepared statements, many
//! sessions at once) through HAProxy and PgBouncer, and finally a failover
//! drill: a Patroni switchover behind HAProxy, measured; and last, which
//! AWS object blocks a path, from describe calls against an offline AWS
//! (moto) with the production shape's two accounts, over the peering and
//! over a network account's transit gateway; then the gate in every
//! subnet, through an ECS stand-in that runs the real tasks.
//! Run it with `scripts/demo`.

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let rig = rig::rig();
    let healthy = rig.local_env();
    banner("1. Healthy stack: dnsmasq, HAProxy -> PgBouncer -> PostgreSQL 15 + PostGIS, Redis, anisette");
    let first = probe(&healthy, &[]);

    banner("2. Injected faults");
    println!("   - the HAProxy name answers a public IP (peering DNS resolution off)");
    println!("   - HAProxy's only backend is down");
    println!("   - the 'Patroni node' is reachable directly (security group too wide)");
    println!("   - the Redis password is wrong");
    println!("   - anisette answers 503\n");
    let faults = [
        ("LOCAL_HAPROXY_NAME", rig::PUBLIC_NAME.to_string()),
        ("LOCAL_HAPROXY_PORT", rig.haproxy_dead.to_string()),
        ("LOCAL_PATRONI_PORT", rig.postgres.to_string()),
        ("LOCAL_REDIS_PASSWORD", "not-the-password".to_string()),
        ("LOCAL_ANISETTE_PORT", rig.unhealthy_http.to_string()),
    ];
    let second = probe(&healthy, &faults);
    println!("\nexit codes: healthy run {first}, faulty run {second} (0 = all passed, 1 = a check failed)");

    banner("3. As an ECS service: `vpc-probe serve`, the same faults, scraped from /metrics");
    let served = serve(rig, &healthy, &faults);

    banner("4. Beyond SELECT 1: COPY, prepared statements and 60 sessions at once through HAProxy -> PgBouncer");
    println!(
        "   PgBouncer 1.18 in transaction pooling (max_client_conn 50), as production runs it:"
    );
    println!("   the prepared statements of pgx / asyncpg / JDBC break there, and 60 sessions exceed it.\n");
    let path = proxy_path(rig);

    banner("5. Failover drill: `patronictl switchover` on a 2-node Patroni cluster behind HAProxy");
    let drilled = drill();

    banner("6. Which AWS object blocks the path: `vpc-probe paths` against an offline AWS (moto, two accounts)");
    println!(
        "   The database account's HAProxy security group lost its rule for 5432 from the ECS VPC."
    );
    println!("   The same command against real AWS: drop endpoint_url, give the task role deploy/iam/.\n");
    let explained = aws_paths("sg_drops_haproxy");
    println!("\n   The same two accounts joined by a network account's transit gateway (shared through RAM)");
    println!("   instead of the peering; the database attachment's TGW route table lost its route back to");
    println!("   the ECS VPC. network_role_arn lets the probe read the gateway's tables in its owner's account.\n");
    let crossed = aws_paths("tgw_return_route_missing");
    println!("\n   HAProxy offered through PrivateLink instead: an interface endpoint in the ECS VPC to the");
    println!(
        "   database account's endpoint service (an NLB in front of HAProxy), not yet accepted.\n"
    );
    let linked = aws_paths("vpce_pending_acceptance");

    banner(
        "7. The gate in every subnet, through ECS: `vpc-probe gate` over two subnets, one blocked",
    );
    println!("   An ECS + CloudWatch Logs stand-in runs one task per subnet (the real binary, one-shot check),");
    println!("   each task's report read back from its log stream. Subnet B's tasks find nothing where HAProxy");
    println!("   should answer (on this one host, a closed port stands in for a route table or NACL of B's own;");
    println!(
        "   tests/gate.rs removes B's route for real, in the two-VPC topology's namespaces).\n"
    );
    let gated = gate(rig, &healthy);
    if first == 0
        && second == 1
        && served
        && path == 1
        && drilled
        && explained == 1
        && crossed == 1
        && linked == 1
        && gated == 1
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The proxy-path options against the rig's HAProxy -> PgBouncer: the
/// text report, exit 1 (two of the three are meant to fail).
fn proxy_path(rig: &rig::Rig) -> i32 {
    let url = format!(
        "postgres://{}@{}:{}/app",
        rig::PG_USER,
        rig::HAPROXY_NAME,
        rig.haproxy
    );
    let check = |name: &str, keys: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\nkind = \"postgres\"\nurl = \"{url}\"\npassword = \"{}\"\ntimeout = \"20s\"\n{keys}\n",
            rig::PG_PASSWORD
        )
    };
    let checks = [
        check("copy-4mib", "copy_bytes = \"4MiB\""),
        check("prepared-statements", "prepared_statements = true"),
        check("sessions-60", "concurrency = 60"),
    ]
    .join("\n");
    let suite = rig.suite("proxy-path", &checks);
    let binary = std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/debug/vpc-probe".into());
    let status = Command::new(binary)
        .args(["check", "--suite"])
        .arg(&suite)
        .status()
        .expect("run vpc-probe");
    status.code().unwrap_or(-1)
}

/// Run `serve` with the faults and ECS task metadata, print the lines a
/// Prometheus user looks at first, then stop it with SIGTERM.
fn serve(rig: &rig::Rig, base: &[(&str, String)], overrides: &[(&str, String)]) -> bool {
    let metadata = rig.task_metadata_url();
    let mut envs: Vec<(&str, &str)> = base
        .iter()
        .chain(overrides)
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    envs.push((rig::observe::ECS_METADATA, &metadata));
    let suite = std::path::Path::new("checks/local.toml");
    let mut served = rig::observe::Served::start(suite, "5s", &envs);
    served.wait_ready(std::time::Duration::from_secs(30));
    let (_, metrics) = served.get("/metrics");
    println!("GET http://127.0.0.1:{}/metrics (excerpt)\n", served.port);
    let shown = [
        "probe_success{",
        "vpc_probe_failure_reason{",
        "vpc_probe_task_info{",
    ];
    for line in metrics
        .lines()
        .filter(|l| shown.iter().any(|s| l.starts_with(s)))
    {
        println!("  {line}");
    }
    served.signal(libc::SIGTERM);
    let code = served.wait_exit(std::time::Duration::from_secs(5));
    println!("\nSIGTERM: serve exited with {code:?}");
    code == Some(0)
}

/// Start a Patroni cluster, run `vpc-probe drill` around a switchover and
/// print its summary; the HTML page goes to target/drill-demo.html.
fn drill() -> bool {
    let cluster = match rig::patroni::Cluster::start(Default::default()) {
        Ok(cluster) => cluster,
        Err(err) => {
            println!("could not start the Patroni cluster: {err}");
            return false;
        }
    };
    let trigger: Vec<String> = cluster
        .switchover_command()
        .iter()
        .map(|p| format!("{p:?}"))
        .collect();
    let suite = cluster.dir.path().join("drill.toml");
    let text = format!(
        "[[drill]]\nname = \"pg-switchover\"\nkind = \"postgres-failover\"\n\
         url = \"postgres://{user}@127.0.0.1:{rw}/app?sslmode=disable\"\n\
         ro_url = \"postgres://{user}@127.0.0.1:{ro}/app?sslmode=disable\"\n\
         password = \"${{DEMO_PG_PASSWORD}}\"\ninterval = \"50ms\"\nbaseline = \"2s\"\n\
         wait_for_change = \"60s\"\nsettle = \"3s\"\ntrigger = [{trigger}]\n\
         max_write_gap = \"15s\"\nmax_ro_gap = \"10s\"\nopen_session = \"cut\"\n\
         max_misrouted_writes = 5\n",
        user = rig::PG_USER,
        rw = cluster.rw,
        ro = cluster.ro,
        trigger = trigger.join(", "),
    );
    std::fs::write(&suite, text).expect("write the drill suite");
    let binary = std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/debug/vpc-probe".into());
    let status = Command::new(binary)
        .args([
            "drill",
            "--drill",
            "pg-switchover",
            "--html",
            "target/drill-demo.html",
            "--suite",
        ])
        .arg(&suite)
        .env("DEMO_PG_PASSWORD", rig::PG_PASSWORD)
        .status()
        .expect("run vpc-probe drill");
    println!(
        "\nthe timeline: target/drill-demo.html (exit {:?})",
        status.code()
    );
    status.success()
}

/// `vpc-probe paths` on the moto world with `fault` applied (a `tgw_…` or
/// `vpce_…` world through the gaps fixture, a gateway with the network
/// account's role):
/// exit 1, the finding names the object, its account and the fix.
fn aws_paths(fault: &str) -> i32 {
    let moto = match rig::moto::Moto::start(fault, &[]) {
        Ok(moto) => moto,
        Err(err) => {
            println!("could not start the offline AWS: {err}");
            return -1;
        }
    };
    let gaps = fault.starts_with("tgw_") || fault.starts_with("vpce_");
    let fixture = match gaps {
        true => match moto.with_gaps(&[]) {
            Ok(gateway) => Some(gateway),
            Err(err) => {
                println!("could not start the fixture for moto's gaps: {err}");
                return -1;
            }
        },
        false => None,
    };
    let (endpoint, extra) = match &fixture {
        Some((endpoint, _)) if fault.starts_with("tgw_") => (
            endpoint.clone(),
            format!("network_role_arn = \"{}\"\n", moto.id("network_role")),
        ),
        Some((endpoint, _)) => (endpoint.clone(), String::new()),
        None => (moto.endpoint.clone(), String::new()),
    };
    let table = moto.table_at(&endpoint, "10.20.1.10", &extra);
    let endpoint_check =
        "[[check]]\nname = \"haproxy-vpce\"\nkind = \"tcp\"\nhost = \"10.20.1.50\"\nport = 5432\n";
    let checks = if fault.starts_with("vpce_") {
        endpoint_check
    } else {
        "[[check]]\nname = \"haproxy-rw\"\nkind = \"tcp\"\nhost = \"production-haproxy.timescale.glimpse.internal\"\nport = 5432\n\n\
        [[check]]\nname = \"patroni-direct\"\nkind = \"tcp\"\nhost = \"10.0.1.21\"\nport = 5432\nexpect = \"unreachable\"\n\n\
        [[check]]\nname = \"redis\"\nkind = \"tcp\"\nhost = \"10.0.2.10\"\nport = 6379\n"
    };
    let dir = std::env::temp_dir().join(format!("vpc-probe-demo-{fault}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let suite = dir.join("production-aws.toml");
    let text = format!(
        "[suite]\nname = \"production\"\nresolver = \"127.0.0.1:{}\"\n{table}\n{checks}",
        rig::process::free_udp_port().expect("a free UDP port"),
    );
    std::fs::write(&suite, &text).expect("write the demo suite");
    println!("{}\n", table.trim_end());
    let binary = std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/debug/vpc-probe".into());
    let status = Command::new(binary)
        .args(["paths", "--suite"])
        .arg(&suite)
        .envs(rig::moto::CREDENTIALS)
        .status()
        .expect("run vpc-probe paths");
    let _ = std::fs::remove_dir_all(&dir);
    status.code().unwrap_or(-1)
}

/// `vpc-probe gate` over subnets A and B of the stand-in, B's tasks given
/// a HAProxy port where nothing listens: the matrix and the diagnosis.
fn gate(rig: &rig::Rig, healthy: &[(&str, String)]) -> i32 {
    let binary = std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/debug/vpc-probe".into());
    let absolute = std::fs::canonicalize(&binary).unwrap_or_else(|_| binary.clone().into());
    let env_a: serde_json::Map<String, serde_json::Value> = healthy
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into()))
        .collect();
    let mut env_b = env_a.clone();
    env_b.insert("LOCAL_HAPROXY_PORT".into(), rig.closed.to_string().into());
    let config = serde_json::json!({
        "binary": absolute,
        "region": "eu-west-1",
        "subnets": {
            "subnet-0aaa1111": {"az": "eu-west-1a", "namespace": null, "env": env_a},
            "subnet-0bbb2222": {"az": "eu-west-1b", "namespace": null, "env": env_b},
        },
    });
    let ecs = match rig::ecs::Ecs::start("demo", &config) {
        Ok(ecs) => ecs,
        Err(err) => {
            println!("could not start the ECS stand-in: {err}");
            return -1;
        }
    };
    if let Err(err) = ecs.register(|_| {}) {
        println!("could not register the task definition: {err}");
        return -1;
    }
    let suite = std::fs::canonicalize("checks/local.toml").expect("checks/local.toml");
    let status = Command::new(binary)
        .args([
            "gate",
            "--cluster",
            "glimpse",
            "--task-definition",
            "vpc-probe",
        ])
        .args([
            "--subnets",
            "subnet-0aaa1111,subnet-0bbb2222",
            "--security-groups",
            "sg-0probe",
        ])
        .arg("--task-suite")
        .arg(&suite)
        .args(["--region", "eu-west-1", "--endpoint-url", &ecs.endpoint])
        .envs(rig::moto::CREDENTIALS)
        .status()
        .expect("run vpc-probe gate");
    status.code().unwrap_or(-1)
}

fn banner(title: &str) {
    println!("\n=== {title}\n");
}

/// Run the probe binary on checks/local.toml with `base` then `overrides` set.
fn probe(base: &[(&str, String)], overrides: &[(&str, String)]) -> i32 {
    let binary = std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/debug/vpc-probe".into());
    let mut command = Command::new(binary);
    command.args(["check", "--suite", "checks/local.toml"]);
    for (key, value) in base.iter().chain(overrides) {
        command.env(key, value);
    }
    let status = command
        .status()
        .expect("run vpc-probe (build it first: scripts/demo does)");
    status.code().unwrap_or(-1)
}
