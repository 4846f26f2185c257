//! Peak memory of one-shot runs (`vpc-probe check --format json`): the
//! 1,000-check mix (600 tcp, 200 dns, 100 http, 50 postgres through HAProxy
//! and PgBouncer, 50 redis against a server that never answers) and each
//! part alone, so the cost of one check of each kind shows. Peak RSS is the
//! kernel's own figure (wait4's `ru_maxrss`, what GNU time prints), best of
//! three, since a shared machine only ever adds to it.

use super::rig;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// Runs per figure; the smallest peak counts.
const RUNS: usize = 3;
/// The suite's deadline: the silent redis checks take all of it.
const DEADLINE: &str = "2s";

/// One kind of check in the benchmark suites.
#[derive(Clone, Copy)]
enum Part {
    /// tcp to an IP literal: no DNS at all.
    TcpByAddress,
    /// tcp to the HAProxy name, through the rig's dnsmasq.
    TcpByName,
    Dns,
    Http,
    /// A full PostgreSQL cycle through HAProxy and PgBouncer.
    Postgres,
    /// redis against a server that accepts and never answers.
    Silent,
}

impl Part {
    fn label(self) -> &'static str {
        match self {
            Part::TcpByAddress => "tcp by address",
            Part::TcpByName => "tcp by name",
            Part::Dns => "dns",
            Part::Http => "http",
            Part::Postgres => "postgres",
            Part::Silent => "redis, silent server",
        }
    }

    /// Check number `index` of this part, as suite TOML.
    fn check(self, rig: &rig::Rig, targets: &Targets, index: usize) -> String {
        let port = targets.tcp[index % targets.tcp.len()];
        let name = format!("{}-{index}", self.label().replace([' ', ','], "-"));
        let body = match self {
            Part::TcpByAddress => format!("kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}"),
            Part::TcpByName => format!(
                "kind = \"tcp\"\nhost = \"{}\"\nport = {port}",
                rig::HAPROXY_NAME
            ),
            Part::Dns => format!(
                "kind = \"dns\"\nhost = \"{}\"\nexpect_cidrs = [\"127.0.0.0/8\"]",
                rig::HAPROXY_NAME
            ),
            Part::Http => format!(
                "kind = \"http\"\nurl = \"http://{}:{}/v3/client_info\"\nexpect_status = [200]",
                rig::ANISETTE_NAME,
                rig.anisette
            ),
            Part::Postgres => format!(
                "kind = \"postgres\"\nurl = \"postgres://{}@{}:{}/app\"\npassword = \"{}\"",
                rig::PG_USER,
                rig::HAPROXY_NAME,
                targets.postgres,
                rig::PG_PASSWORD
            ),
            Part::Silent => format!(
                "kind = \"redis\"\nurl = \"redis://127.0.0.1:{}\"",
                rig.silent
            ),
        };
        format!("[[check]]\nname = \"{name}\"\n{body}\n")
    }
}

/// Where the benchmark's checks connect.
struct Targets {
    /// Listeners for tcp checks: several, so no one backlog fills, and none
    /// in front of a PgBouncer (each connect would be one of its clients).
    tcp: Vec<u16>,
    /// HAProxy in front of a PgBouncer of its own whose max_client_conn
    /// (200) leaves room for all the postgres checks at once.
    postgres: u16,
}

impl Targets {
    fn new(rig: &rig::Rig) -> Targets {
        let bouncer = rig
            .extra_pgbouncer("bench-pgbouncer", "max_client_conn = 200\n")
            .expect("PgBouncer for the memory bench");
        let postgres = rig
            .extra_haproxy("bench-haproxy", bouncer, "")
            .expect("HAProxy for the memory bench");
        Targets {
            tcp: vec![
                rig.redis,
                rig.valkey,
                rig.anisette,
                rig.unhealthy_http,
                rig.ssh,
            ],
            postgres,
        }
    }
}

/// The issue-18 mix: 1,000 checks.
const MIX: [(Part, usize); 6] = [
    (Part::TcpByAddress, 300),
    (Part::TcpByName, 300),
    (Part::Dns, 200),
    (Part::Http, 100),
    (Part::Postgres, 50),
    (Part::Silent, 50),
];

/// Print the table: the mix, then each part alone against a one-check run.
pub fn run(rig: &rig::Rig, binary: &str) {
    let targets = Targets::new(rig);
    let measure = |name: &str, parts: &[(Part, usize)]| measure(rig, &targets, binary, name, parts);
    let baseline = measure("one", &[(Part::TcpByAddress, 1)]);
    println!(
        "| run | checks | peak RSS (MiB, best of {RUNS}) | KiB per check above one check | \
         failures other than the silent server's (all {RUNS} runs) |"
    );
    println!("|---|---|---|---|---|");
    let line = |what: &str, checks: usize, measured: &Measured| {
        let per = measured.peak_kib.saturating_sub(baseline.peak_kib) as f64 / checks as f64;
        println!(
            "| {what} | {checks} | {:.1} | {per:.1} | {} |",
            measured.peak_kib as f64 / 1024.0,
            measured.unexpected()
        );
    };
    line("one tcp check (baseline)", 1, &baseline);
    line(
        "the mix: 600 tcp (half by name), 200 dns, 100 http, 50 postgres, 50 silent redis",
        1000,
        &measure("mix", &MIX),
    );
    // Each part alone, tcp at its whole share of the mix.
    let tcp = [(Part::TcpByAddress, 600), (Part::TcpByName, 600)];
    for (part, count) in tcp.into_iter().chain(MIX[2..].iter().copied()) {
        let measured = measure(part.label(), &[(part, count)]);
        line(&format!("{} alone", part.label()), count, &measured);
    }
}

/// The runs of one suite: the smallest peak (a shared machine only ever
/// adds to it), and every failure the suite did not plan, by reason.
struct Measured {
    peak_kib: u64,
    unplanned: BTreeMap<String, usize>,
}

impl Measured {
    fn unexpected(&self) -> String {
        if self.unplanned.is_empty() {
            return "none".into();
        }
        let counts: Vec<String> = self
            .unplanned
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        counts.join(", ")
    }
}

/// `RUNS` runs of a suite made of `parts`.
fn measure(
    rig: &rig::Rig,
    targets: &Targets,
    binary: &str,
    name: &str,
    parts: &[(Part, usize)],
) -> Measured {
    let mut checks = String::new();
    let mut index = 0;
    for (part, count) in parts {
        for _ in 0..*count {
            checks += &part.check(rig, targets, index);
            index += 1;
        }
    }
    let file = format!("memory-{}", name.replace([' ', ','], "-"));
    let suite = rig.suite_with(
        &file,
        &format!("resolver = \"{}\"\ntimeout = \"{DEADLINE}\"", rig.dns),
        &checks,
    );
    let mut measured = Measured {
        peak_kib: u64::MAX,
        unplanned: BTreeMap::new(),
    };
    for _ in 0..RUNS {
        let peak = one_run(binary, &suite, index, rig, &mut measured.unplanned);
        measured.peak_kib = measured.peak_kib.min(peak);
    }
    measured
}

/// One run of `suite` (`total` checks): its peak RSS in KiB; failures of
/// checks other than the silent server's are counted into `unplanned`.
fn one_run(
    binary: &str,
    suite: &std::path::Path,
    total: usize,
    rig: &rig::Rig,
    unplanned: &mut BTreeMap<String, usize>,
) -> u64 {
    let out = rig.root.join("memory-report.json");
    // Reaped by wait4 below, which also gives the peak RSS that
    // `Child::wait` would throw away.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(binary)
        .args(["check", "--format", "json", "--suite"])
        .arg(suite)
        .stdout(std::fs::File::create(&out).expect("report file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run vpc-probe");
    let peak = wait_peak_kib(child.id());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("JSON report");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), total, "every check reported");
    for check in checks {
        let silent = check["target"]
            .as_str()
            .is_some_and(|target| target.contains(&format!(":{}/", rig.silent)));
        match (check["success"].as_bool(), silent) {
            (Some(true), false) => {}
            (Some(false), true) => {}
            _ => {
                let reason = check["reason"]
                    .as_str()
                    .unwrap_or("passed (expected to fail)");
                *unplanned.entry(reason.to_string()).or_default() += 1;
            }
        }
    }
    peak
}

/// Reap `pid` and return its peak resident set (KiB), as GNU time does.
fn wait_peak_kib(pid: u32) -> u64 {
    let mut status = 0;
    // SAFETY: wait4(2) on a child of this process, into locals it owns.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid as libc::pid_t, "wait4");
    usage.ru_maxrss as u64
}
