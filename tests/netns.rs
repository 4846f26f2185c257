//! Reasons that need the network itself to misbehave, produced inside a
//! network namespace this test creates: no interface but loopback, no
//! default route, so nothing can leave it. Needs root (CI runs as root).

mod rig;

use std::process::Command;
use std::time::Duration;

/// A throw-away network namespace, deleted on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create(tag: &str) -> Option<Namespace> {
        if unsafe { libc::geteuid() } != 0 && rig::process::may_skip("network namespaces need root")
        {
            return None;
        }
        let name = format!("vpcp-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success(),
            "ip netns add"
        );
        let ns = Namespace { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    fn exec(&self, args: &[&str]) {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "in namespace {}: {args:?}", self.name);
    }

    /// Run `vpc-probe check` inside the namespace.
    fn probe(&self, suite: &std::path::Path) -> rig::probe::Run {
        let binary = rig::probe::binary();
        let args = [
            "netns",
            "exec",
            &self.name,
            binary,
            "check",
            "--format",
            "json",
            "--suite",
            suite.to_str().unwrap(),
        ];
        run_with_program("ip", &args)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_with_program(program: &str, args: &[&str]) -> rig::probe::Run {
    let output = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    rig::probe::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: Duration::ZERO,
    }
}

fn suite(name: &str, body: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("vpcp-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, format!("[suite]\ntimeout = \"1s\"\n\n{body}")).unwrap();
    path
}

#[test]
fn dropped_syn_is_a_connect_timeout_and_closes_the_negative_check() {
    let Some(ns) = Namespace::create("drop") else {
        return;
    };
    // A security group that silently drops 5432 inside the namespace.
    ns.exec(&[
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5432", "-j", "DROP",
    ]);
    let suite = suite(
        "drop",
        "[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5432\n\n\
         [[check]]\nname = \"patroni-direct\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5432\nexpect = \"unreachable\"\n",
    );
    let run = ns.probe(&suite);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.check("haproxy-tcp")["reason"], "connect_timeout");
    assert_eq!(run.check("haproxy-tcp")["phase"], "connect");
    assert_eq!(run.check("patroni-direct")["success"], true);
    assert_eq!(
        run.check("patroni-direct")["observed"]["blocked_by"],
        "connect_timeout"
    );
}

#[test]
fn no_route_is_connect_unreachable() {
    let Some(ns) = Namespace::create("noroute") else {
        return;
    };
    // TEST-NET-1 inside a namespace with no route: the kernel refuses at once.
    let suite = suite(
        "noroute",
        "[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"192.0.2.10\"\nport = 5432\n\n\
         [[check]]\nname = \"patroni-direct\"\nkind = \"tcp\"\nhost = \"192.0.2.11\"\nport = 5432\nexpect = \"unreachable\"\n",
    );
    let run = ns.probe(&suite);
    assert_eq!(
        run.check("haproxy-tcp")["reason"],
        "connect_unreachable",
        "{}",
        run.stdout
    );
    assert_eq!(
        run.check("patroni-direct")["observed"]["blocked_by"],
        "connect_unreachable"
    );
}
