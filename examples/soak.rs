//! The soak benchmark (`scripts/soak`, not a CI test): `vpc-probe serve`
//! with 300 checks at a 1 s interval against the rig's real servers for
//! SOAK_MINUTES (default 10), with faults toggled during the run (a Redis
//! killed and restarted, DNS answers changed, a server that goes silent),
//! and blackbox_exporter probing the tcp / http / dns share of the same
//! targets at the same rate (a Prometheus scraping it every second), side
//! by side. Every 10 s it samples both processes' RSS, open file
//! descriptors and threads, and the server-side sessions (PostgreSQL's
//! pg_stat_activity, Redis CLIENT LIST). Writes target/soak/samples.csv,
//! target/soak/soak.svg and prints the figures for BENCHMARKS.md.

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const FLAPPING: &str = "flapping.soak.glimpse.internal";
const SOAK_REDIS_PASSWORD: &str = "soak-Redis-4741";

fn main() {
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let out = PathBuf::from("target/soak");
    std::fs::create_dir_all(&out).expect("target/soak");
    let rig = rig::rig();
    let work = rig.root.join("soak");
    std::fs::create_dir_all(&work).expect("soak dir");
    let silent = Arc::new(AtomicBool::new(false));
    let toggle = toggle_server(silent.clone());
    let redis = FlakyRedis::start(&work);
    let dns = Zone::start(&work);
    let suite = work.join("soak.toml");
    std::fs::write(&suite, soak_suite(rig, dns.port, toggle, redis.port)).expect("suite");
    let probe_port = rig::process::free_port().expect("port");
    let mut probe = spawn_probe(&suite, probe_port, &work);
    let blackbox = Blackbox::start(&work, rig, dns.port, toggle);
    println!(
        "soak: {minutes} min; vpc-probe pid {}, blackbox_exporter pid {}",
        probe.id(),
        blackbox.exporter.id()
    );

    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(minutes * 60) {
        let t = start.elapsed().as_secs();
        // Faults, each on a one-minute cycle.
        redis.set_running(!(20..30).contains(&(t % 60)));
        silent.store((40..50).contains(&(t % 60)), Ordering::SeqCst);
        dns.set_public((t / 30) % 2 == 1);
        if start.elapsed() >= next_sample {
            let sample = Sample::take(t, probe.id(), blackbox.exporter.id(), rig, redis.port);
            println!("{}", sample.csv());
            samples.push(sample);
            next_sample += SAMPLE_EVERY;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = probe.kill();
    let _ = probe.wait();
    drop(blackbox);
    drop(dns);
    redis.set_running(false);
    write_outputs(&out, &samples);
}

/// One sample of both processes and the servers.
struct Sample {
    t: u64,
    probe: Usage,
    blackbox: Usage,
    pg_sessions: u64,
    redis_clients: u64,
}

/// What one process holds.
#[derive(Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: u64,
    threads: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        Usage {
            rss_kib: field("VmRSS:"),
            fds,
            threads: field("Threads:"),
        }
    }
}

impl Sample {
    fn take(t: u64, probe: u32, blackbox: u32, rig: &rig::Rig, _redis: u16) -> Sample {
        let pg_sessions = rig
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let clients = Command::new("redis-cli")
            .args([
                "-p",
                &rig.redis.to_string(),
                "--no-auth-warning",
                "-a",
                rig::REDIS_PASSWORD,
                "client",
                "list",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count() as u64)
            .unwrap_or(0);
        Sample {
            t,
            probe: Usage::of(probe),
            blackbox: Usage::of(blackbox),
            pg_sessions,
            redis_clients: clients,
        }
    }

    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.t,
            self.probe.rss_kib,
            self.probe.fds,
            self.probe.threads,
            self.blackbox.rss_kib,
            self.blackbox.fds,
            self.blackbox.threads,
            self.pg_sessions,
            self.redis_clients
        )
    }
}

/// The suite: 60 checks of each kind, some pointed at the faults.
fn soak_suite(rig: &rig::Rig, dns: u16, toggle: u16, redis: u16) -> String {
    let mut text = format!(
        "[suite]\nname = \"soak\"\nresolver = \"127.0.0.1:{dns}\"\ntimeout = \"800ms\"\n\n"
    );
    for i in 0..60 {
        let host = if i < 10 { FLAPPING } else { rig::HAPROXY_NAME };
        let _ = write!(
            text,
            "[[check]]\nname = \"dns-{i}\"\nkind = \"dns\"\nhost = \"{host}\"\n\n"
        );
        let port = if i < 10 { toggle } else { rig.haproxy };
        let _ = write!(text, "[[check]]\nname = \"tcp-{i}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n\n");
        let _ = write!(
            text,
            "[[check]]\nname = \"postgres-{i}\"\nkind = \"postgres\"\nurl = \"postgres://{}@{}:{}/app\"\npassword = \"{}\"\n\n",
            rig::PG_USER,
            rig::HAPROXY_NAME,
            rig.haproxy,
            rig::PG_PASSWORD
        );
        let (port, password) = if i < 10 {
            (redis, SOAK_REDIS_PASSWORD)
        } else {
            (rig.redis, rig::REDIS_PASSWORD)
        };
        let _ = write!(
            text,
            "[[check]]\nname = \"redis-{i}\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\npassword = \"{password}\"\n\n"
        );
        let port = if i < 10 { toggle } else { rig.anisette };
        let _ = write!(text, "[[check]]\nname = \"http-{i}\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/v3/client_info\"\n\n");
    }
    text
}

fn spawn_probe(suite: &Path, port: u16, work: &Path) -> Child {
    let binary =
        std::env::var("VPC_PROBE_BIN").unwrap_or_else(|_| "target/release/vpc-probe".into());
    Command::new(binary)
        .args([
            "serve",
            "--interval",
            "1s",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--suite",
        ])
        .arg(suite)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("probe.log")).expect("log"))
        .spawn()
        .expect("start vpc-probe serve")
}

/// An HTTP server that answers 200, or goes silent while `silent` is set.
fn toggle_server(silent: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let silent = silent.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request);
                if silent.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(2));
                    return;
                }
                let body = "{\"client_info\":\"soak\"}";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// A redis-server the soak kills and restarts on the same port.
struct FlakyRedis {
    port: u16,
    config: PathBuf,
    child: std::sync::Mutex<Option<Child>>,
}

impl FlakyRedis {
    fn start(work: &Path) -> FlakyRedis {
        let port = rig::process::free_port().expect("port");
        let config = work.join("flaky-redis.conf");
        std::fs::write(
            &config,
            format!("port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nrequirepass {SOAK_REDIS_PASSWORD}\n", work.display()),
        )
        .expect("redis config");
        let redis = FlakyRedis {
            port,
            config,
            child: std::sync::Mutex::new(None),
        };
        redis.set_running(true);
        redis
    }

    fn set_running(&self, running: bool) {
        let mut child = self.child.lock().expect("redis child");
        match (running, child.is_some()) {
            (true, false) => {
                *child = Command::new("redis-server")
                    .arg(&self.config)
                    .stdout(Stdio::null())
                    .spawn()
                    .ok();
            }
            (false, true) => {
                if let Some(mut old) = child.take() {
                    let _ = old.kill();
                    let _ = old.wait();
                }
            }
            _ => {}
        }
    }
}

/// A dnsmasq whose answers the soak changes (private, then public).
struct Zone {
    port: u16,
    hosts: PathBuf,
    pid: u32,
    public: AtomicBool,
    child: Option<Child>,
}

impl Drop for Zone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Zone {
    fn start(work: &Path) -> Zone {
        let port = rig::process::free_udp_port().expect("port");
        let hosts = work.join("soak-hosts");
        let mut zone = Zone {
            port,
            hosts,
            pid: 0,
            public: AtomicBool::new(true),
            child: None,
        };
        zone.write(false);
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=root",
                "--local=/glimpse.internal/",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", zone.hosts.display()))
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq");
        zone.pid = child.id();
        zone.public = AtomicBool::new(false);
        zone.child = Some(child);
        zone
    }

    fn write(&self, public: bool) {
        let flapping = if public {
            rig::PUBLIC_ADDRESS
        } else {
            "127.0.0.1"
        };
        let text = format!("127.0.0.1 {}\n{flapping} {FLAPPING}\n", rig::HAPROXY_NAME);
        std::fs::write(&self.hosts, text).expect("hosts");
    }

    fn set_public(&self, public: bool) {
        if self.public.swap(public, Ordering::SeqCst) != public {
            self.write(public);
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGHUP) };
        }
    }
}

/// blackbox_exporter and a Prometheus that scrapes it for the tcp, http
/// and dns share of the soak's targets every second.
struct Blackbox {
    exporter: Child,
    prometheus: Child,
}

impl Blackbox {
    fn start(work: &Path, rig: &rig::Rig, dns: u16, toggle: u16) -> Blackbox {
        let port = rig::process::free_port().expect("port");
        let modules = work.join("blackbox.yml");
        std::fs::write(
            &modules,
            format!(
                "modules:\n  tcp:\n    prober: tcp\n    timeout: 800ms\n  http:\n    prober: http\n    timeout: 800ms\n\
                 \x20 dns:\n    prober: dns\n    timeout: 800ms\n    dns:\n      query_name: {}\n      query_type: A\n\
                 \x20 dns_flapping:\n    prober: dns\n    timeout: 800ms\n    dns:\n      query_name: {FLAPPING}\n      query_type: A\n",
                rig::HAPROXY_NAME
            ),
        )
        .expect("blackbox config");
        let exporter = Command::new("prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", modules.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("blackbox_exporter");
        let mut jobs = String::new();
        // One static config per probe, told apart by a label, so that
        // identical targets are still probed once each per second.
        let mut job = |name: &str, module: &str, targets: Vec<String>| {
            let configs: String = targets
                .iter()
                .enumerate()
                .map(|(i, t)| format!("      - targets: ['{t}']\n        labels: {{n: '{i}'}}\n"))
                .collect();
            let _ = write!(
                jobs,
                "  - job_name: {name}\n    metrics_path: /probe\n    params:\n      module: [{module}]\n    static_configs:\n{configs}\
                 \x20   relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n\
                 \x20     - target_label: __address__\n        replacement: 127.0.0.1:{port}\n"
            );
        };
        let each = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
        job(
            "tcp",
            "tcp",
            each(60, &|i| {
                format!("127.0.0.1:{}", if i < 10 { toggle } else { rig.haproxy })
            }),
        );
        job(
            "http",
            "http",
            each(60, &|i| {
                format!(
                    "http://127.0.0.1:{}/v3/client_info",
                    if i < 10 { toggle } else { rig.anisette }
                )
            }),
        );
        job("dns", "dns", each(50, &|_| format!("127.0.0.1:{dns}")));
        job(
            "dns_flapping",
            "dns_flapping",
            each(10, &|_| format!("127.0.0.1:{dns}")),
        );
        let config = work.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n{jobs}"
            ),
        )
        .expect("prom config");
        let prom_port = rig::process::free_port().expect("port");
        let prometheus = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus");
        Blackbox {
            exporter,
            prometheus,
        }
    }
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.prometheus.kill();
        let _ = self.exporter.kill();
    }
}

/// A figure of the summary table: its name and how to read it off a sample.
type Row<'a> = (&'a str, &'a dyn Fn(&Sample) -> u64);

/// CSV, an SVG plot of RSS over time, and the figures for BENCHMARKS.md.
fn write_outputs(out: &Path, samples: &[Sample]) {
    let mut csv = String::from("t_seconds,probe_rss_kib,probe_fds,probe_threads,blackbox_rss_kib,blackbox_fds,blackbox_threads,pg_sessions,redis_clients\n");
    for sample in samples {
        csv += &sample.csv();
        csv.push('\n');
    }
    std::fs::write(out.join("samples.csv"), csv).expect("csv");
    std::fs::write(out.join("soak.svg"), plot(samples)).expect("svg");
    let warm = samples
        .iter()
        .filter(|s| (120..=240).contains(&s.t))
        .collect::<Vec<_>>();
    let tail_from = samples.last().map_or(0, |s| s.t.saturating_sub(120));
    let tail = samples
        .iter()
        .filter(|s| s.t >= tail_from)
        .collect::<Vec<_>>();
    let mean = |set: &[&Sample], f: &dyn Fn(&Sample) -> u64| {
        set.iter().map(|s| f(s) as f64).sum::<f64>() / set.len().max(1) as f64
    };
    println!("\n| figure | minutes 2-4 (mean) | last 2 minutes (mean) | max |");
    println!("|---|---|---|---|");
    let rows: [Row; 8] = [
        ("vpc-probe RSS (MiB)", &|s| s.probe.rss_kib),
        ("vpc-probe open fds", &|s| s.probe.fds),
        ("vpc-probe threads", &|s| s.probe.threads),
        ("blackbox_exporter RSS (MiB)", &|s| s.blackbox.rss_kib),
        ("blackbox_exporter open fds", &|s| s.blackbox.fds),
        ("blackbox_exporter threads", &|s| s.blackbox.threads),
        ("PostgreSQL client sessions", &|s| s.pg_sessions),
        ("Redis clients", &|s| s.redis_clients),
    ];
    for (name, f) in rows {
        let scale = if name.contains("MiB") { 1024.0 } else { 1.0 };
        let max = samples.iter().map(f).max().unwrap_or(0) as f64 / scale;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            mean(&warm, f) / scale,
            mean(&tail, f) / scale,
            max
        );
    }
}

/// RSS of both processes over time, as a self-contained SVG.
fn plot(samples: &[Sample]) -> String {
    let (width, height, left, bottom) = (800.0, 360.0, 60.0, 40.0);
    let end = samples.last().map_or(1, |s| s.t.max(1)) as f64;
    let top = samples
        .iter()
        .map(|s| s.probe.rss_kib.max(s.blackbox.rss_kib))
        .max()
        .unwrap_or(1) as f64
        / 1024.0
        * 1.2;
    let x = |t: u64| left + (width - left - 20.0) * t as f64 / end;
    let y = |kib: u64| height - bottom - (height - bottom - 20.0) * (kib as f64 / 1024.0) / top;
    let line = |f: &dyn Fn(&Sample) -> u64| {
        samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.t), y(f(s))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{left}\" y=\"14\">RSS (MiB) over the soak: vpc-probe serve, 300 checks at 1 s (blue); blackbox_exporter, 180 probes at 1 s (orange)</text>\
         <line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#888\"/><line x1=\"{left}\" y1=\"20\" x2=\"{left}\" y2=\"{0}\" stroke=\"#888\"/>",
        height - bottom,
        width - 20.0
    );
    for step in 0..=4 {
        let mib = top * step as f64 / 4.0;
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{mib:.0}</text>",
            y((mib * 1024.0) as u64) + 4.0
        );
    }
    for minute in 0..=(end as u64 / 60) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\">{minute} min</text>",
            x(minute * 60) - 10.0,
            height - 15.0
        );
    }
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"{}\"/>",
        line(&|s| s.probe.rss_kib)
    );
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#ef6c00\" stroke-width=\"2\" points=\"{}\"/>",
        line(&|s| s.blackbox.rss_kib)
    );
    svg + "</svg>\n"
}
