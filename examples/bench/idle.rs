//! What held idle sessions cost in `serve` (`scripts/bench idle`): N checks
//! with `idle = "90s"` (tcp, redis with AUTH, postgres through a PgBouncer
//! of its own), measured once every session is open and the process has
//! spent no CPU for two seconds: CPU time the process
//! spends over a 30 s window of pure idling (utime + stime from
//! /proc/PID/stat), and resident memory (VmRSS) above a one-session run,
//! per held session.

use super::rig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long each session is held: longer than the wait for all to open
/// plus the window, so none is used (or closed) while measured.
const IDLE: &str = "90s";
/// The window CPU time is counted over.
const WINDOW: Duration = Duration::from_secs(30);

/// One kind of held session.
#[derive(Clone, Copy)]
enum Held {
    Tcp,
    Redis,
    Postgres,
}

impl Held {
    fn label(self) -> &'static str {
        match self {
            Held::Tcp => "tcp",
            Held::Redis => "redis (AUTH)",
            Held::Postgres => "postgres (PgBouncer, SCRAM)",
        }
    }

    /// Check number `index`, as suite TOML.
    fn check(self, rig: &rig::Rig, bouncer: u16, index: usize) -> String {
        let body = match self {
            Held::Tcp => format!("kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}", rig.redis),
            Held::Redis => format!(
                "kind = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\npassword = \"{}\"",
                rig.redis,
                rig::REDIS_PASSWORD
            ),
            Held::Postgres => format!(
                "kind = \"postgres\"\nurl = \"postgres://{}@127.0.0.1:{bouncer}/app?sslmode=disable\"\npassword = \"{}\"",
                rig::PG_USER,
                rig::PG_PASSWORD
            ),
        };
        format!("[[check]]\nname = \"held-{index}\"\n{body}\nidle = \"{IDLE}\"\n")
    }
}

/// Print the table: each kind at one session and at many.
pub fn run(rig: &rig::Rig, binary: &str) {
    let bouncer = rig
        .extra_pgbouncer("bench-idle-pgbouncer", "max_client_conn = 300\n")
        .expect("PgBouncer for the idle bench");
    println!(
        "| held sessions | CPU over {} s of idling (ms) | RSS (MiB) | KiB per session above one |",
        WINDOW.as_secs()
    );
    println!("|---|---|---|---|");
    for (kind, many) in [
        (Held::Tcp, 1000),
        (Held::Redis, 1000),
        (Held::Postgres, 200),
    ] {
        let one = measure(rig, binary, kind, bouncer, 1);
        let all = measure(rig, binary, kind, bouncer, many);
        let per = all.rss_kib.saturating_sub(one.rss_kib) as f64 / (many - 1) as f64;
        for (count, measured) in [(1, &one), (many, &all)] {
            println!(
                "| {count} {} | {} | {:.1} | {} |",
                kind.label(),
                measured.cpu_ms,
                measured.rss_kib as f64 / 1024.0,
                if count == 1 {
                    "-".to_string()
                } else {
                    format!("{per:.1}")
                }
            );
        }
    }
}

struct Measured {
    cpu_ms: u64,
    rss_kib: u64,
}

/// `serve` with `count` held sessions of `kind`, measured once all are open.
fn measure(rig: &rig::Rig, binary: &str, kind: Held, bouncer: u16, count: usize) -> Measured {
    let checks: String = (0..count).map(|i| kind.check(rig, bouncer, i)).collect();
    let suite = rig.suite_with(
        &format!(
            "idle-bench-{}-{count}",
            kind.label().split(' ').next().unwrap_or("x")
        ),
        "timeout = \"20s\"",
        &checks,
    );
    let port = rig::process::free_port().expect("port");
    let mut child = Command::new(binary)
        .args(["serve", "--suite", suite.to_str().expect("utf-8")])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let opened = wait_for_sockets(&child, count) && settled(&child);
    let before = cpu_ticks(&child);
    std::thread::sleep(WINDOW);
    let after = cpu_ticks(&child);
    let rss_kib = rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(opened, "{count} {} sessions never all opened", kind.label());
    // CLK_TCK is 100 on Linux: a tick is 10 ms.
    Measured {
        cpu_ms: after.saturating_sub(before) * 10,
        rss_kib,
    }
}

/// Wait (at most 60 s) until the process holds `count` sockets besides
/// its listener.
fn wait_for_sockets(child: &Child, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let sockets = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .map(|dir| {
                dir.flatten()
                    .filter(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0);
        if sockets > count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Wait (at most 60 s) until the process spends no CPU for two seconds:
/// the sessions' handshakes (SCRAM's key derivation above all) are done.
fn settled(child: &Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = cpu_ticks(child);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let now = cpu_ticks(child);
        if now == last {
            return true;
        }
        last = now;
    }
    false
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(child: &Child) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// The process's resident set, in KiB.
fn rss_kib(child: &Child) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
