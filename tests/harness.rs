//! The test rig's own promises: a daemon that is not ready says why, in
//! its own log's words; and daemons that run as another user never depend
//! on entering the clone, which CI proves by running the suite from a clone
//! that user cannot enter.

mod rig;

use rig::process::{self, Daemon};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Under CI=true, scripts/test makes the clone unenterable for `postgres`
/// (as a clone under a mode-700 home is): if this guard ever stops holding,
/// the rig could again depend on the clone's location without anyone seeing.
#[test]
fn under_ci_the_postgres_user_cannot_enter_the_clone() {
    let clone = Path::new(env!("CARGO_MANIFEST_DIR"));
    if process::postgres_ids().is_none() && process::may_skip("needs root and a postgres user") {
        return;
    }
    let entered = Command::new("setpriv")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg("test")
        .arg("-x")
        .arg(clone)
        .status()
        .expect("setpriv");
    if entered.success() {
        // Outside CI the clone may simply be open to everyone; under
        // CI=true scripts/test shuts it, so entering it is the failure.
        process::may_skip(&format!("postgres entered {}", clone.display()));
    }
}

/// A scratch directory and a config file in it, for one broken daemon.
fn scratch_with(name: &str, file: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = process::scratch_dir(&format!("vpc-probe-harness-{name}")).expect("scratch dir");
    let path = dir.join(file);
    std::fs::write(&path, text).expect("config");
    (dir, path)
}

#[test]
fn a_daemon_that_exits_before_it_is_ready_quotes_its_log() {
    let (dir, config) = scratch_with(
        "haproxy",
        "haproxy.cfg",
        "defaults\n  mode tcp\n  no-such-keyword-here 1\n",
    );
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&config);
    let port = process::free_port().expect("port");
    let err = process::serve_on(
        "haproxy",
        command,
        &dir.join("haproxy.log"),
        port,
        &mut vec![],
    )
    .expect_err("a broken config must not come up");
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(err.contains("no-such-keyword-here"), "{err}");
    assert!(err.contains("haproxy.log"), "names the log: {err}");
}

#[test]
fn a_daemon_that_never_gets_ready_quotes_the_end_of_its_log() {
    let (dir, _) = scratch_with("silent", "unused", "");
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "for i in $(seq 1 40); do echo \"line $i\"; done; echo 'listening nowhere'; sleep 30",
    ]);
    let daemon = Daemon::spawn("silent", command, &dir.join("silent.log")).expect("spawn");
    let err = daemon
        .wait_ready("silent", Duration::from_secs(1), || false)
        .expect_err("never ready");
    assert!(err.contains("was not ready within 1s"), "{err}");
    assert!(err.contains("listening nowhere"), "{err}");
    assert!(err.contains("line 40"), "{err}");
    assert!(!err.contains("line 3\n"), "only the end of the log: {err}");
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(daemon.pid as libc::pid_t, libc::SIGKILL) };
}

/// What issue 18 met: Patroni, run as `postgres`, that cannot start says so
/// in its own words instead of a bare timeout.
#[test]
fn patroni_with_a_broken_config_says_why() {
    let (dir, config) = scratch_with(
        "patroni",
        "patroni.yml",
        "scope: broken\nname: node1\nrestapi: [unclosed\n",
    );
    process::give_to_postgres(&dir).expect("chown");
    let mut command = process::as_postgres(Command::new("patroni"), &dir);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg(&config);
    let daemon = Daemon::spawn("patroni", command, &dir.join("patroni.log")).expect("spawn");
    let err = daemon
        .wait_ready("a Patroni node", Duration::from_secs(30), || false)
        .expect_err("a broken config must not come up");
    eprintln!("{err}");
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(
        err.to_lowercase().contains("yaml") || err.contains("unclosed"),
        "{err}"
    );
}
