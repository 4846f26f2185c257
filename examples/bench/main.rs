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
//! 4. `copy_bytes = "16MiB"` through HAProxy and PgBouncer, against
//!    `psql \copy` of the same bytes in and out on the same path.
//! 5. `concurrency = 100` against `pgbench -C -c 100 -t 1` (a new
//!    connection per client, one `SELECT 1` each) on the same PgBouncer.
//! 6. Peak memory of a 1,000-check one-shot run and of each kind alone
//!    (memory.rs); `scripts/bench memory` runs only this one.
//! 7. Held idle sessions in `serve`: CPU while idle, memory per session
//!    (idle.rs); `scripts/bench idle` runs only this one.

mod idle;
mod memory;
#[path = "../../tests/rig/mod.rs"]
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
    match std::env::args().nth(1).as_deref() {
        Some("memory") => return memory::run(rig, &binary),
        Some("idle") => return idle::run(rig, &binary),
        Some("copy") => {
            println!("| what | runs | median | min | max | note |\n|---|---|---|---|---|---|");
            return copy_against_psql(rig, &binary);
        }
        _ => {}
    }
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
    println!("| what | runs | median | min | max | note |\n|---|---|---|---|---|---|");
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
    copy_against_psql(rig, &binary);
    concurrency_against_pgbench(rig, &binary);
    println!();
    memory::run(rig, &binary);
    println!();
    idle::run(rig, &binary);
}

/// Bytes each COPY benchmark moves in, and again out.
const COPY_BYTES: usize = 16 * 1024 * 1024;
/// Runs of the slower, heavier benchmarks.
const HEAVY_RUNS: usize = 10;

/// `vpc-probe check` of one check, which must pass; wall times.
fn probe_runs(rig: &rig::Rig, binary: &str, name: &str, check: &str) -> Vec<f64> {
    let suite = rig.suite(name, check);
    command_runs(|| {
        let mut probe = Command::new(binary);
        probe
            .args(["check", "--format", "json", "--suite"])
            .arg(&suite);
        probe
    })
}

/// `command` `HEAVY_RUNS` times, each required to succeed; wall times.
fn command_runs(mut command: impl FnMut() -> Command) -> Vec<f64> {
    (0..HEAVY_RUNS)
        .map(|_| {
            let started = Instant::now();
            let output = command().output().expect("run the benchmarked command");
            let seconds = started.elapsed().as_secs_f64();
            assert!(
                output.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            seconds
        })
        .collect()
}

fn copy_against_psql(rig: &rig::Rig, binary: &str) {
    let check = format!(
        "[[check]]\nname = \"copy\"\nkind = \"postgres\"\ntimeout = \"60s\"\n\
         url = \"postgres://{}@127.0.0.1:{}/app?sslmode=disable\"\npassword = \"{}\"\ncopy_bytes = \"16MiB\"\n",
        rig::PG_USER,
        rig.haproxy,
        rig::PG_PASSWORD
    );
    let mut ours = probe_runs(rig, binary, "bench-copy", &check);
    // The same check without COPY: what the check pays before its COPY
    // session opens (process start, lookup, its SELECT 1 cycle).
    let select_one = check.replace("copy_bytes = \"16MiB\"\n", "");
    let mut fixed = probe_runs(rig, binary, "bench-copy-fixed", &select_one);
    // 100-byte lines like the probe's (99 characters and a newline).
    let line = format!("{}\n", &"0123456789abcdef".repeat(7)[..99]);
    assert_eq!(line.len(), 100);
    let data = rig.root.join("bench-copy.txt");
    std::fs::write(&data, line.repeat(COPY_BYTES / line.len())).expect("write COPY data");
    let psql_copy = |port: u16| {
        command_runs(|| {
            let mut psql = Command::new("/usr/lib/postgresql/15/bin/psql");
            psql.env("PGPASSWORD", rig::PG_PASSWORD)
                .env("PGSSLMODE", "disable")
                .args([
                    "-X",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    rig::PG_USER,
                    "-d",
                    "app",
                ])
                .args(["-p", &port.to_string(), "-v", "ON_ERROR_STOP=1"])
                .args([
                    "-c",
                    "BEGIN; CREATE TEMP TABLE t (line text) ON COMMIT DROP",
                ])
                .arg("-c")
                .arg(format!("\\copy t from '{}'", data.display()))
                .args(["-c", "\\copy t to '/dev/null'", "-c", "COMMIT"]);
            psql
        })
    };
    let mut theirs = psql_copy(rig.haproxy);
    let mut direct = psql_copy(rig.postgres);
    let mib = COPY_BYTES as f64 / (1024.0 * 1024.0);
    let rate = |samples: &mut [f64]| {
        samples.sort_by(f64::total_cmp);
        2.0 * mib / samples[samples.len() / 2]
    };
    let (our_rate, their_rate, direct_rate) =
        (rate(&mut ours), rate(&mut theirs), rate(&mut direct));
    row_with(
        "`copy_bytes = \"16MiB\"` in and out through HAProxy and PgBouncer (whole `vpc-probe check`)",
        &mut ours,
        &format!("{our_rate:.1} MiB/s"),
    );
    row_with(
        "the same check without `copy_bytes` (process start, lookup, one SELECT 1 cycle)",
        &mut fixed,
        "",
    );
    row_with(
        "`psql \\copy` of the same 16 MiB in and out on the same path (whole psql run)",
        &mut theirs,
        &format!("{their_rate:.1} MiB/s"),
    );
    row_with(
        "`psql \\copy` of the same 16 MiB straight to PostgreSQL, no proxies (whole psql run)",
        &mut direct,
        &format!("{direct_rate:.1} MiB/s"),
    );
}

fn concurrency_against_pgbench(rig: &rig::Rig, binary: &str) {
    let pooler = rig
        .extra_pgbouncer(
            "pgbouncer-bench",
            "max_client_conn = 300\ndefault_pool_size = 20",
        )
        .expect("a PgBouncer sized for 100 clients");
    let check = format!(
        "[[check]]\nname = \"crowd\"\nkind = \"postgres\"\ntimeout = \"60s\"\n\
         url = \"postgres://{}@127.0.0.1:{pooler}/app?sslmode=disable\"\npassword = \"{}\"\nconcurrency = 100\n",
        rig::PG_USER,
        rig::PG_PASSWORD
    );
    let mut ours = probe_runs(rig, binary, "bench-crowd", &check);
    let script = rig.root.join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").expect("write pgbench script");
    let mut theirs = command_runs(|| {
        let mut pgbench = Command::new("/usr/lib/postgresql/15/bin/pgbench");
        pgbench
            .env("PGPASSWORD", rig::PG_PASSWORD)
            .args([
                "-n",
                "-C",
                "-c",
                "100",
                "-j",
                "2",
                "-t",
                "1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &pooler.to_string(), "-U", rig::PG_USER, "-f"])
            .arg(&script)
            .arg("app");
        pgbench
    });
    row_with(
        "`concurrency = 100` through PgBouncer (whole `vpc-probe check`, sessions held open together)",
        &mut ours,
        "",
    );
    row_with(
        "`pgbench -C -c 100 -j 2 -t 1` (SELECT 1) on the same PgBouncer (whole run)",
        &mut theirs,
        "",
    );
}

/// Print a table row: median, min and max of `samples` (seconds).
fn row(what: &str, samples: &mut [f64]) {
    row_with(what, samples, "");
}

/// A table row with a note after the figures (a throughput).
fn row_with(what: &str, samples: &mut [f64], note: &str) {
    samples.sort_by(f64::total_cmp);
    let show = |seconds: f64| format!("{:.3} ms", seconds * 1000.0);
    println!(
        "| {what} | {} | {} | {} | {} | {note} |",
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
        let kind = vpc_probe::outcome::Kind::Postgres;
        let outcome = Outcome {
            duration: Duration::from_millis(15),
            phases,
            ..Outcome::empty(name, kind, "production-haproxy:5432/app".into())
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
