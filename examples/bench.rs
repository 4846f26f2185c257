//! Benchmarks, run by `scripts/bench` (release build), figures appended to
//! BENCHMARKS.md. Not timed tests: a shared 2-core machine gives spread, so
//! each figure is a median over repeated runs with its min and max.
//!
//! 1. A whole `vpc-probe check` of checks/local.toml against the real-server
//!    rig (process start, DNS, TCP, 3 PostgreSQL cycles through HAProxy and
//!    PgBouncer, Redis, HTTP, a negative check).
//! 2. One PostgreSQL open/auth/query/close cycle through HAProxy and
//!    PgBouncer, as the probe reports it.
//! 3. Rendering /metrics for 10, 100 and 1000 checks.

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use vpc_probe::outcome::{Outcome, Phase};
use vpc_probe::publish::ledger::Ledger;
use vpc_probe::publish::metrics::{render, Exposition};

const RUNS: usize = 20;

fn main() {
    let rig = rig::rig();
    let binary =
        std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/release/vpc-probe".into());
    let mut wall = Vec::new();
    let mut cycles = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let output = Command::new(&binary)
            .args(["check", "--suite", "checks/local.toml", "--format", "json"])
            .envs(rig.local_env())
            .output()
            .expect("run vpc-probe");
        wall.push(started.elapsed().as_secs_f64());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("JSON report");
        let postgres = report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == "postgres-rw"))
            .expect("postgres-rw");
        for seconds in postgres["cycles"]["seconds"].as_array().expect("cycles") {
            cycles.push(seconds.as_f64().unwrap_or_default());
        }
    }
    println!("| what | runs | median | min | max |\n|---|---|---|---|---|");
    row(
        "`vpc-probe check` of checks/local.toml (6 checks) against the rig",
        &mut wall,
    );
    row(
        "one PostgreSQL cycle through HAProxy and PgBouncer",
        &mut cycles,
    );
    for checks in [10, 100, 1000] {
        let mut renders = render_times(checks);
        row(
            &format!("render /metrics for {checks} checks"),
            &mut renders,
        );
    }
}

/// Print a table row: median, min and max of `samples` (seconds).
fn row(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let show = |seconds: f64| format!("{:.3} ms", seconds * 1000.0);
    println!(
        "| {what} | {} | {} | {} | {} |",
        samples.len(),
        show(samples[samples.len() / 2]),
        show(samples[0]),
        show(samples[samples.len() - 1])
    );
}

/// Seconds per render of an exposition holding `checks` postgres outcomes.
fn render_times(checks: usize) -> Vec<f64> {
    let names: Vec<String> = (0..checks).map(|i| format!("check-{i}")).collect();
    let mut ledger = Ledger::new(names.clone());
    for name in names {
        let phases = BTreeMap::from([
            (Phase::Resolve, Duration::from_micros(800)),
            (Phase::Connect, Duration::from_micros(400)),
            (Phase::Auth, Duration::from_millis(12)),
            (Phase::Query, Duration::from_millis(1)),
        ]);
        let outcome = Outcome {
            name,
            kind: vpc_probe::outcome::Kind::Postgres,
            target: "production-haproxy:5432/app".into(),
            result: Ok(()),
            duration: Duration::from_millis(15),
            phases,
            observed: BTreeMap::new(),
            cycles: None,
        };
        ledger.record(outcome, SystemTime::now());
    }
    let exposition = Exposition {
        suite: "bench",
        ledger: &ledger,
        identity: None,
        reload: None,
    };
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let text = render(&exposition).expect("render");
            assert!(text.contains("probe_success"));
            started.elapsed().as_secs_f64()
        })
        .collect()
}
