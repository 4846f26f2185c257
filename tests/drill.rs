//! The failover drill against a real Patroni cluster behind HAProxy: each
//! test makes a change happen (switchover, a killed or frozen primary, lost
//! replication) and checks the drill's figures against an independent
//! record: the table's rows, Patroni's history, the cluster's REST API.

mod rig;

use rig::patroni::{Cluster, Options, TTL};
use rig::probe::{drill_json, keep_acknowledged_seqs};
use rig::{PG_PASSWORD, PG_USER};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A cluster for one test; a failure shows the daemons' own log lines as
/// they are, not escaped.
fn start(options: Options) -> Cluster {
    Cluster::start(options).unwrap_or_else(|err| panic!("a Patroni cluster: {err}"))
}

/// Run `vpc-probe drill` on a one-drill suite; (exit code, JSON report).
fn drill(cluster: &Cluster, name: &str, keys: &str) -> (i32, Value, String) {
    let suite = cluster.dir.path().join(format!("{name}.toml"));
    let text = format!(
        "[[drill]]\nname = \"{name}\"\nkind = \"postgres-failover\"\n\
         url = \"postgres://{PG_USER}@127.0.0.1:{rw}/app?sslmode=disable\"\n\
         ro_url = \"postgres://{PG_USER}@127.0.0.1:{ro}/app?sslmode=disable\"\n\
         password = \"{PG_PASSWORD}\"\ninterval = \"50ms\"\nattempt_timeout = \"1s\"\nbaseline = \"1500ms\"\n{keys}\n",
        rw = cluster.rw,
        ro = cluster.ro,
    );
    std::fs::write(&suite, text).unwrap();
    let html = cluster.dir.path().join(format!("{name}.html"));
    let html_arg = ["--html", html.to_str().unwrap()];
    let (run, mut report) = drill_json(&suite, name, &html_arg, Duration::from_secs(240));
    println!("{}", text_of(&run.stdout));
    // Failure messages show the figures; the per-attempt rows stay out.
    report["reads"] = Value::Null;
    keep_acknowledged_seqs(&mut report);
    assert!(!run.stdout.contains(PG_PASSWORD) && !run.stderr.contains(PG_PASSWORD));
    (run.code, report, run.stderr)
}

fn toml_list(command: &[String]) -> String {
    let quoted: Vec<String> = command.iter().map(|part| format!("{part:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn budget<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no budget {name}: {report}"))
}

/// The run's rows as the table has them, counted independently of the drill.
fn rows_in_table(cluster: &Cluster, run_id: &str) -> u64 {
    let sql = format!("SELECT count(DISTINCT seq) FROM vpc_probe_drill WHERE run_id = '{run_id}'");
    cluster.query(cluster.rw, &sql).unwrap().parse().unwrap()
}

fn acknowledged_seqs(report: &Value) -> Vec<u64> {
    let seqs = report["acknowledged_seqs"].as_array().unwrap();
    seqs.iter().map(|seq| seq.as_u64().unwrap()).collect()
}

fn missing_from_table(cluster: &Cluster, run_id: &str, seqs: &[u64]) -> u64 {
    let list: Vec<String> = seqs.iter().map(u64::to_string).collect();
    let sql = format!(
        "SELECT count(*) FROM unnest(ARRAY[{}]::bigint[]) s WHERE NOT EXISTS \
         (SELECT 1 FROM vpc_probe_drill WHERE run_id = '{run_id}' AND seq = s)",
        list.join(",")
    );
    cluster.query(cluster.rw, &sql).unwrap().parse().unwrap()
}

#[test]
fn planned_switchover_and_a_change_that_never_comes() {
    let cluster = start(Options::default());
    let before = cluster.primary().expect("a primary").name.clone();

    // No change within wait_for_change: exit 1, and the expect budget says why.
    let (code, report, _) = drill(
        &cluster,
        "no-change-came",
        "trigger = [\"true\"]\nwait_for_change = \"2s\"\nsettle = \"1s\"",
    );
    assert_eq!(code, 1, "{report}");
    assert_eq!(budget(&report, "expect")["pass"], false);
    assert_eq!(budget(&report, "expect")["value"], "no-change");

    // A switchover can hand a write to a node still (or again) in recovery
    // before HAProxy's checks catch up (seen in about one run in five,
    // 25006): counted and allowed a few here, checked against its own
    // count below; production sets its own budget.
    let keys = format!(
        "trigger = {}\nwait_for_change = \"60s\"\nsettle = \"3s\"\nmax_write_gap = \"15s\"\nopen_session = \"cut\"\nmax_misrouted_writes = 5",
        toml_list(&cluster.switchover_command())
    );
    let (code, report, stderr) = drill(&cluster, "switchover", &keys);
    assert_eq!(code, 0, "{}\n{stderr}", verdict(&report));
    assert_eq!(
        report["failures_by_reason"]["read_only_transaction"]
            .as_u64()
            .unwrap_or(0),
        report["misrouted_writes"].as_u64().unwrap()
    );
    let after = cluster.primary().expect("a primary after").name.clone();
    assert_ne!(before, after, "Patroni's REST API names another primary");
    let history = cluster.history().unwrap();
    let last = history.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(&after),
        "patronictl history records the new leader: {history}"
    );
    let (was, now) = (&report["primary_before"], &report["primary_after"]);
    assert_ne!(was["server"], now["server"]);
    assert!(
        now["timeline"].as_str() > was["timeline"].as_str(),
        "the timeline grows: {report}"
    );
    assert!(report["write_gap_seconds"].as_f64().unwrap() < 15.0);
    assert_eq!(report["data"]["lost"], 0);
    assert_eq!(report["open_session"]["fate"], "cut", "{report}");
    let run_id = report["run_id"].as_str().unwrap();
    let acked = acknowledged_seqs(&report);
    assert_eq!(missing_from_table(&cluster, run_id, &acked), 0);
    assert_eq!(
        report["data"]["present"].as_u64().unwrap(),
        acked.len() as u64
    );
    assert!(rows_in_table(&cluster, run_id) >= acked.len() as u64);
    assert!(report["read_only"]["ok"].as_u64().unwrap() > 0);

    // The page: self-contained, and it renders in headless Chromium.
    let html = cluster.dir.path().join("switchover.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains(" src=") && !page.contains(" href="),
        "no fetches"
    );
    assert!(
        page.contains("<svg") && page.contains("write gap"),
        "the timeline is drawn"
    );
    let png = cluster.dir.path().join("switchover.png");
    rig::chromium::screenshot(&html, &png).expect("headless Chromium renders the page");
    // At normal widths nothing sticks out of the page: the summary wraps,
    // the timeline scales, tables scroll inside their own box.
    for width in [1280, 1024, 800] {
        let sticking_out = rig::chromium::overflow(&html, width).expect("measured in Chromium");
        assert!(sticking_out.is_empty(), "at {width}px: {sticking_out:?}");
    }
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drill-switchover.png");
    std::fs::copy(&png, keep).unwrap();
}

#[test]
fn unplanned_failover_when_the_primary_node_dies() {
    let cluster = start(Options::default());
    let kill = cluster.primary_signal_script("KILL").unwrap();
    // Patroni's /primary can answer 200 a moment before PostgreSQL has left
    // recovery, so HAProxy may hand the new primary a write or two it still
    // refuses as read-only (seen here in about one run in five): counted,
    // allowed a few. A write acknowledged just before the kill may not have
    // been streamed yet (asynchronous replication): also counted, and
    // checked against the table below.
    let keys = format!(
        "trigger = [{:?}]\nwait_for_change = \"60s\"\nsettle = \"3s\"\nmax_write_gap = \"40s\"\nopen_session = \"cut\"\nmax_misrouted_writes = 5\nmax_lost_writes = 5",
        kill.display().to_string()
    );
    let (code, report, stderr) = drill(&cluster, "node-killed", &keys);
    let lost = report["data"]["lost"].as_u64().unwrap();
    let misrouted = report["misrouted_writes"].as_u64().unwrap();
    assert_eq!(
        report["failures_by_reason"]["read_only_transaction"]
            .as_u64()
            .unwrap_or(0),
        misrouted
    );
    assert_eq!(code, 0, "{}\n{stderr}", verdict(&report));
    let seen = report["change_seen_after_seconds"].as_f64().unwrap();
    // Within the leader key's ttl plus HAProxy's checks (inter 300ms x fall 2) and slack.
    assert!(seen <= TTL.as_secs_f64() + 10.0, "{seen}");
    assert!(
        report["write_gap_seconds"].as_f64().unwrap() >= 1.0,
        "{report}"
    );
    let run_id = report["run_id"].as_str().unwrap();
    assert_eq!(
        missing_from_table(&cluster, run_id, &acknowledged_seqs(&report)),
        lost
    );
}

#[test]
fn a_frozen_primary_leaves_sessions_hanging_without_shutdown_sessions() {
    let options = Options {
        shutdown_sessions: false,
        ..Options::default()
    };
    let cluster = start(options);
    let freeze = cluster.primary_signal_script("STOP").unwrap();
    let keys = format!(
        "trigger = [{:?}]\nwait_for_change = \"60s\"\nsettle = \"2s\"\nmax_write_gap = \"40s\"\nopen_session = \"cut\"",
        freeze.display().to_string()
    );
    let (code, report, _) = drill(&cluster, "frozen", &keys);
    // The session to the frozen node is neither cut nor answered: it hangs,
    // and the budget asking for "cut" fails with exactly that.
    assert_eq!(report["open_session"]["fate"], "hung", "{report}");
    assert_eq!(budget(&report, "open_session")["pass"], false);
    assert_eq!(code, 1);
    assert_eq!(
        budget(&report, "expect")["pass"],
        true,
        "the primary still changed: {report}"
    );
}

#[test]
fn acknowledged_writes_lost_on_purpose_are_counted() {
    let cluster = start(Options::default());
    // Replication frozen on the primary, then the primary killed: what it
    // acknowledged since exists nowhere else. With a large
    // maximum_lag_on_failover, Patroni promotes the replica anyway.
    let kill = cluster.primary_signal_script("KILL").unwrap();
    let pause = cluster.pause_replication_line().unwrap();
    let script = cluster.dir.path().join("lose-writes.sh");
    let text = format!("#!/bin/sh\n{pause}\nsleep 1\n{}\n", kill.display());
    std::fs::write(&script, text).unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    let keys = format!(
        "trigger = [{:?}]\nwait_for_change = \"60s\"\nsettle = \"2s\"\nmax_write_gap = \"60s\"\nmax_lost_writes = 0",
        script.display().to_string()
    );
    let (code, report, _) = drill(&cluster, "lost", &keys);
    assert_eq!(code, 1, "{report}");
    let lost = report["data"]["lost"].as_u64().unwrap();
    assert!(lost > 0, "{report}");
    assert_eq!(budget(&report, "max_lost_writes")["pass"], false);
    let run_id = report["run_id"].as_str().unwrap();
    assert_eq!(
        missing_from_table(&cluster, run_id, &acknowledged_seqs(&report)),
        lost
    );
}

/// The drill's text summary rebuilt from its JSON, for the test log.
fn text_of(json: &str) -> String {
    let report: vpc_probe::drill::report::DrillReport = serde_json::from_str(json).unwrap();
    report.text()
}

/// What a failed run's message should show: the verdict and its causes.
fn verdict(report: &Value) -> String {
    let keep = [
        "budgets",
        "failure_examples",
        "open_session",
        "data",
        "error",
        "timeline",
    ];
    let shown: serde_json::Map<String, Value> = keep
        .iter()
        .map(|key| (key.to_string(), report[*key].clone()))
        .collect();
    Value::Object(shown).to_string()
}
