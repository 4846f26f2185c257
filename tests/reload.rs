//! `expect = "no-change"`: the PostgreSQL drill around the proxy events
//! that must change nothing, on the rig's loopback stack (HAProxy →
//! PgBouncer → PostgreSQL). A graceful HAProxy reload (`-sf`) and a
//! PgBouncer RELOAD (SIGHUP) pass: every write lands and the session
//! opened before survives. An HAProxy restart that terminates the old
//! process (`-st`) and a PgBouncer stopped and started again fail, with
//! the cut session and the failed writes counted.

mod rig;

use rig::probe::drill_json;
use rig::process::{self, free_port, scratch_dir, wait_for};
use rig::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An HAProxy of this test's own in front of `backend`, run as a daemon
/// with a pid file, so a trigger can reload or restart it.
struct Proxy {
    config: PathBuf,
    pidfile: PathBuf,
    port: u16,
}

impl Proxy {
    fn start(dir: &Path, backend: u16) -> Proxy {
        let port = free_port().unwrap();
        let config = dir.join("haproxy.cfg");
        let pidfile = dir.join("haproxy.pid");
        std::fs::write(
            &config,
            format!(
                "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\n\
                 listen postgres\n  bind 127.0.0.1:{port}\n  server bouncer 127.0.0.1:{backend}\n"
            ),
        )
        .unwrap();
        let proxy = Proxy {
            config,
            pidfile,
            port,
        };
        let kill = format!("kill $(cat {}) 2>/dev/null", proxy.pidfile.display());
        process::at_exit(&["sh", "-c", &kill]);
        let started = Command::new("sh").args(["-c", &proxy.again("")]).status();
        assert!(started.unwrap().success(), "haproxy -D");
        wait_for("haproxy", Duration::from_secs(10), || {
            process::accepts(port)
        })
        .unwrap();
        proxy
    }

    /// The shell command that starts it anew, handing over with `handover`
    /// (`-sf` finishes the old process's sessions, `-st` terminates them).
    fn again(&self, handover: &str) -> String {
        let (config, pidfile) = (self.config.display(), self.pidfile.display());
        match handover {
            "" => format!("haproxy -D -f {config} -p {pidfile}"),
            flag => format!("haproxy -D -f {config} -p {pidfile} {flag} $(cat {pidfile})"),
        }
    }
}

/// The drill's suite: writes every 50 ms through `port`, `trigger` after a
/// one-second baseline, then two seconds of settling.
fn no_change_drill(dir: &Path, name: &str, port: u16, trigger: &str) -> (i32, Value) {
    let suite = dir.join(format!("{name}.toml"));
    let text = format!(
        "[[drill]]\nname = \"{name}\"\nkind = \"postgres-failover\"\n\
         url = \"postgres://{PG_USER}@127.0.0.1:{port}/app?sslmode=disable\"\n\
         password = \"{PG_PASSWORD}\"\ninterval = \"50ms\"\nattempt_timeout = \"1s\"\n\
         baseline = \"1s\"\nsettle = \"2s\"\nwait_for_change = \"20s\"\n\
         trigger = [\"sh\", \"-c\", {trigger:?}]\nexpect = \"no-change\"\n"
    );
    std::fs::write(&suite, text).unwrap();
    let (run, mut report) = drill_json(&suite, name, &[], Duration::from_secs(90));
    println!(
        "{name}: writes {} gap {} s session {} failures {}",
        report["writes"],
        report["write_gap_seconds"],
        report["open_session"],
        report["failures_by_reason"]
    );
    report["attempts"] = Value::Null;
    report["reads"] = Value::Null;
    assert!(!run.stdout.contains(PG_PASSWORD) && !run.stderr.contains(PG_PASSWORD));
    (run.code, report)
}

fn budget(report: &Value, name: &str) -> (bool, String) {
    let budgets = report["budgets"].as_array().unwrap();
    let found = budgets
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no budget {name}: {report}"));
    (
        found["pass"] == true,
        found["value"].as_str().unwrap_or_default().to_string(),
    )
}

/// A pass: exit 0, no write failed, the session survived, the primary stayed.
fn nothing_changed(code: i32, report: &Value) {
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(budget(report, "failed_writes"), (true, "0".into()));
    assert_eq!(budget(report, "open_session"), (true, "survived".into()));
    assert_eq!(budget(report, "expect"), (true, "no-change".into()));
    assert_eq!(report["trigger"]["exit_code"], 0, "{report:#}");
    assert_eq!(report["data"]["lost"], 0);
    assert!(report["writes"]["ok"].as_u64().unwrap() >= 20, "{report:#}");
}

#[test]
fn a_graceful_haproxy_reload_changes_nothing() {
    let rig = rig();
    let dir = scratch_dir("vpc-probe-reload-sf").unwrap();
    let proxy = Proxy::start(&dir, rig.pgbouncer);
    let (code, report) = no_change_drill(&dir, "haproxy-sf", proxy.port, &proxy.again("-sf"));
    nothing_changed(code, &report);
}

#[test]
fn an_haproxy_restart_that_terminates_sessions_is_caught() {
    let rig = rig();
    let dir = scratch_dir("vpc-probe-reload-st").unwrap();
    let proxy = Proxy::start(&dir, rig.pgbouncer);
    let (code, report) = no_change_drill(&dir, "haproxy-st", proxy.port, &proxy.again("-st"));
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["open_session"]["fate"], "cut", "{report:#}");
    let (pass, _) = budget(&report, "open_session");
    assert!(!pass);
    assert_eq!(report["success"], false);
}

/// A PgBouncer of the test's own with a pid file, in front of the rig's
/// PostgreSQL: (port, pid file, its ini).
fn bouncer(rig: &Rig, name: &'static str) -> (u16, PathBuf, PathBuf) {
    let dir = rig.root.join(name);
    let pidfile = dir.join("pgbouncer.pid");
    let extra = format!("pidfile = {}\n", pidfile.display());
    let port = rig.extra_pgbouncer(name, &extra).unwrap();
    (port, pidfile, dir.join("pgbouncer.ini"))
}

#[test]
fn a_pgbouncer_reload_changes_nothing() {
    let rig = rig();
    let (port, pidfile, _) = bouncer(rig, "pgbouncer-reload");
    let dir = scratch_dir("vpc-probe-reload-hup").unwrap();
    let reload = format!("kill -HUP $(cat {})", pidfile.display());
    let (code, report) = no_change_drill(&dir, "pgbouncer-reload", port, &reload);
    nothing_changed(code, &report);
}

#[test]
fn a_pgbouncer_stopped_and_started_is_caught() {
    let rig = rig();
    let (port, pidfile, ini) = bouncer(rig, "pgbouncer-restart");
    let dir = scratch_dir("vpc-probe-reload-restart").unwrap();
    // SIGINT is PgBouncer's safe shutdown... of a server: every client is
    // closed. Then it starts again as a daemon, as the postgres user.
    let restart = format!(
        "kill -INT $(cat {pid}); while [ -e {pid} ]; do sleep 0.05; done; sleep 0.3; \
         pgbouncer -d -u postgres {ini}",
        pid = pidfile.display(),
        ini = ini.display()
    );
    let kill = format!("kill $(cat {}) 2>/dev/null", pidfile.display());
    process::at_exit(&["sh", "-c", &kill]);
    let (code, report) = no_change_drill(&dir, "pgbouncer-restart", port, &restart);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["open_session"]["fate"], "cut", "{report:#}");
    let (pass, failed) = budget(&report, "failed_writes");
    assert!(!pass, "{report:#}");
    assert!(failed.parse::<u64>().unwrap() >= 1);
    assert_eq!(report["data"]["lost"], 0);
}
