//! Every drill ends, whatever its counterpart does: a server that accepts
//! and never answers, a proxy that freezes mid-drill with every socket
//! left open, and the drill itself stopped by SIGTERM while its trigger
//! runs. Both kinds, against the rig's real PostgreSQL and redis-server
//! (through a relay of the test's own where it must freeze). The bound is
//! the one docs/drills.md states: baseline + wait_for_change + settle +
//! 8 × attempt_timeout.

mod rig;

use rig::probe::{binary, run_with};
use rig::*;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The timing every drill here uses: 2 s baseline, 4 s to wait for a
/// change, 1 s settle, 500 ms attempts.
const TIMING: &str = "interval = \"100ms\"\nattempt_timeout = \"500ms\"\nbaseline = \"2s\"\n\
                      wait_for_change = \"4s\"\nsettle = \"1s\"\n";

/// baseline + wait_for_change + settle + 8 × attempt_timeout, from TIMING.
const LONGEST: Duration = Duration::from_secs(11);

/// What process start, the runtime's shutdown and a busy 2-core machine
/// may add to the bound.
const MARGIN: Duration = Duration::from_secs(3);

/// The drill's `url` and `password` lines for `kind` on `port`.
fn endpoint(kind: &str, port: u16) -> String {
    match kind {
        "postgres-failover" => format!(
            "url = \"postgres://{PG_USER}@127.0.0.1:{port}/app?sslmode=disable\"\n\
             password = \"{PG_PASSWORD}\"\n"
        ),
        _ => format!("url = \"redis://127.0.0.1:{port}\"\npassword = \"{REDIS_PASSWORD}\"\n"),
    }
}

/// A one-drill suite in a scratch directory of its own.
fn suite(name: &str, kind: &str, port: u16, extra: &str) -> PathBuf {
    let dir = rig::process::scratch_dir(&format!("vpc-probe-drill-{name}")).unwrap();
    rig::process::remove_at_exit(&dir);
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[[drill]]\nname = \"{name}\"\nkind = \"{kind}\"\n{}{TIMING}{extra}",
        endpoint(kind, port)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Run the drill to its end (or kill it past two minutes).
fn drill(path: &std::path::Path, name: &str) -> (rig::probe::Run, Value) {
    let args = [
        "drill",
        "--suite",
        path.to_str().unwrap(),
        "--drill",
        name,
        "--format",
        "json",
    ];
    let run = run_with(&args, &[], Duration::from_secs(120));
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", run.stdout, run.stderr));
    (run, report)
}

fn a_silent_server_ends_the_drill_in_setup(kind: &str) {
    let rig = rig();
    let name = format!("{}-silent", &kind[..5]);
    let (run, report) = drill(&suite(&name, kind, rig.silent, ""), &name);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no answer within")
            || error.contains("timed out")
            || error.contains("timeout"),
        "{report}"
    );
    // setup is bounded by 2 × attempt_timeout; nothing else runs.
    assert!(
        run.elapsed < Duration::from_secs(1) + MARGIN,
        "{:?}: {report}",
        run.elapsed
    );
}

#[test]
fn postgres_drill_against_a_silent_server_ends_in_setup() {
    a_silent_server_ends_the_drill_in_setup("postgres-failover");
}

#[test]
fn redis_drill_against_a_silent_server_ends_in_setup() {
    a_silent_server_ends_the_drill_in_setup("redis-failover");
}

fn a_freezing_proxy_ends_the_drill_within_its_bound(kind: &str, upstream: u16) {
    let (port, frozen) = rig::fixture::spawn_freezing_relay(upstream).unwrap();
    let name = format!("{}-frozen", &kind[..5]);
    let path = suite(&name, kind, port, "");
    let freezer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        frozen.store(true, Ordering::SeqCst);
    });
    let (run, report) = drill(&path, &name);
    freezer.join().unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        report["error"].is_null(),
        "setup came before the freeze: {report}"
    );
    assert!(report["writes"]["ok"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["writes"]["failed"].as_u64().unwrap()
            + report["writes"]["uncertain"].as_u64().unwrap()
            > 0,
        "{report}"
    );
    assert!(
        run.elapsed <= LONGEST + MARGIN,
        "{kind} took {:?}, more than {LONGEST:?} + {MARGIN:?}: {}",
        run.elapsed,
        run.stderr
    );
}

#[test]
fn postgres_drill_through_a_freezing_proxy_ends_within_its_bound() {
    a_freezing_proxy_ends_the_drill_within_its_bound("postgres-failover", rig().postgres);
}

#[test]
fn redis_drill_through_a_freezing_proxy_ends_within_its_bound() {
    a_freezing_proxy_ends_the_drill_within_its_bound("redis-failover", rig().redis);
}

/// Whether process `pid` still runs (a zombie no longer does: it may
/// wait for a reaper that a container never runs).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn sigterm_mid_drill_reports_and_ends_the_trigger(kind: &str, port: u16) {
    let name = format!("{}-stopped", &kind[..5]);
    let dir_path = suite(&name, kind, port, "");
    let pid_file = dir_path.with_file_name("trigger.pid");
    let trigger = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let mut text = std::fs::read_to_string(&dir_path).unwrap();
    text = text.replace("wait_for_change = \"4s\"", "wait_for_change = \"60s\"");
    text += &format!("trigger = [\"sh\", \"-c\", {trigger:?}]\n");
    std::fs::write(&dir_path, text).unwrap();
    let mut child = Command::new(binary())
        .args([
            "drill",
            "--suite",
            dir_path.to_str().unwrap(),
            "--drill",
            &name,
            "--format",
            "json",
        ])
        .env_remove("VPC_PROBE_SUITE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The baseline is 2 s: at 4 s the trigger is running.
    std::thread::sleep(Duration::from_secs(4));
    let sleeper: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("the trigger had not started by 4 s"));
    let signalled = Instant::now();
    // SAFETY: sends SIGTERM to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the drill outlived SIGTERM by 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "exit {took:?} after SIGTERM: {stderr}"
    );
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}\n{stderr}"));
    assert_eq!(report["interrupted"], true, "{report}");
    assert_eq!(report["success"], false);
    assert!(
        report["writes"]["ok"].as_u64().unwrap() > 5,
        "the baseline's writes are kept: {report}"
    );
    let output = report["trigger"]["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("interrupted (SIGTERM): the drill ended its process group"),
        "{report}"
    );
    let mut gone = false;
    for _ in 0..100 {
        if !alive(sleeper) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "the trigger's child {sleeper} was orphaned");
}

#[test]
fn postgres_drill_stopped_by_sigterm_reports_what_it_measured() {
    sigterm_mid_drill_reports_and_ends_the_trigger("postgres-failover", rig().postgres);
}

#[test]
fn redis_drill_stopped_by_sigterm_reports_what_it_measured() {
    sigterm_mid_drill_reports_and_ends_the_trigger("redis-failover", rig().redis);
}
