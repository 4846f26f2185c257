//! A throw-away network namespace of a test's own: loopback only, no
//! default route, so nothing sent inside can leave it. iptables rules and
//! conntrack sysctls set inside change only it. Needs root (CI runs as root).

use super::probe::{binary, Run};
use super::process::{self, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop (and at exit, should a test panic
/// past its drop).
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// A fresh namespace with loopback up; `None` (a skip) when not root,
    /// which fails instead under `CI=true`.
    pub fn create(tag: &str) -> Option<Namespace> {
        if unsafe { libc::geteuid() } != 0 && process::may_skip("network namespaces need root") {
            return None;
        }
        let name = format!("vpcp-{tag}-{}", std::process::id());
        // A namespace left by an earlier run of this pid goes first.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success(),
            "ip netns add"
        );
        // Usually deleted on drop already; quiet when it is.
        let delete = format!("ip netns del {name} 2>/dev/null; true");
        process::at_exit(&["sh", "-c", &delete]);
        let ns = Namespace { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// `program` to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Run `args` inside the namespace; it must succeed.
    pub fn exec(&self, args: &[&str]) {
        let (program, rest) = args.split_first().expect("a program");
        let status = self.command(program).args(rest).status().unwrap();
        assert!(status.success(), "in namespace {}: {args:?}", self.name);
    }

    /// `vpc-probe check --format json` inside the namespace, to the end
    /// (bounded at 60 s).
    pub fn probe(&self, suite: &Path) -> Run {
        let started = Instant::now();
        let child = self.spawn_probe(suite);
        finish(child, started)
    }

    /// The same, started now and left running: the test changes the
    /// network under it, then [`finish`]es it.
    pub fn spawn_probe(&self, suite: &Path) -> Child {
        self.command("timeout")
            .args(["60", binary(), "check", "--format", "json", "--suite"])
            .arg(suite)
            .env_remove("VPC_PROBE_SUITE")
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vpc-probe in a namespace")
    }

    /// redis-server (no password) on `port` inside the namespace, its
    /// state in `dir`; ready when PING answers from inside.
    pub fn redis(&self, dir: &Path, port: u16) -> Result<Daemon, String> {
        let mut command = self.command("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir);
        let daemon = Daemon::spawn("redis-server", command, &dir.join("redis.log"))?;
        daemon.wait_ready(
            "redis-server in a namespace",
            Duration::from_secs(20),
            || {
                self.command("redis-cli")
                    .args(["-p", &port.to_string(), "ping"])
                    .output()
                    .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
            },
        )?;
        Ok(daemon)
    }

    /// Run `work` on a thread that entered this namespace; threads it
    /// spawns (a fixture's accept loop) stay in it.
    pub fn inside<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
            // SAFETY: setns on this thread only, with a namespace file it holds open.
            let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                entered,
                0,
                "setns {path}: {}",
                std::io::Error::last_os_error()
            );
            work()
        })
        .join()
        .expect("the namespace thread")
    }

    /// A scratch directory for this namespace's servers.
    pub fn scratch(&self) -> PathBuf {
        process::scratch_dir(&self.name).expect("scratch dir")
    }
}

/// Wait for a probe started with [`Namespace::spawn_probe`].
pub fn finish(child: Child, started: Instant) -> Run {
    let output = child.wait_with_output().expect("vpc-probe in a namespace");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
