//! The main job on an embedded stack: starts the test rig's real servers on
//! loopback, runs `vpc-probe check --suite checks/local.toml` against them
//! healthy, then again with faults injected through the suite's variables,
//! then as the long-running service Prometheus scrapes (`serve`).
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
    if first == 0 && second == 1 && served {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
