//! The observing side of the rig: a running `vpc-probe serve`, a real
//! Prometheus Pushgateway and Prometheus server, and a blocking HTTP client
//! to read them (loopback only).

use super::process::{self, free_port, scratch_dir, wait_for, Daemon};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `GET http://127.0.0.1:{port}{path}`: status and body; `None` if nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// `vpc-probe serve` as a child process, killed when dropped.
pub struct Served {
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Served {
    /// Start `serve` on a free loopback port with `envs`, waiting until it answers /healthz.
    pub fn start(suite: &Path, interval: &str, envs: &[(&str, &str)]) -> Served {
        let port = free_port().expect("free port");
        let log = std::env::temp_dir().join(format!("vpc-probe-serve-{port}.log"));
        let child = Command::new(super::probe::binary())
            .args(["serve", "--suite", suite.to_str().expect("utf-8 path")])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--interval",
                interval,
            ])
            .args(["--log-level", "info"])
            .env_remove("VPC_PROBE_SUITE")
            .env_remove(ECS_METADATA)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            )
            .spawn()
            .expect("start vpc-probe serve");
        let served = Served { port, child, log };
        wait_for("vpc-probe serve", Duration::from_secs(10), || {
            get(port, "/healthz").is_some_and(|(status, _)| status == 200)
        })
        .unwrap_or_else(|err| panic!("{err}\n{}", served.log()));
        served
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(self.port, path)
            .unwrap_or_else(|| panic!("serve did not answer {path}\n{}", self.log()))
    }

    /// Wait (at most `limit`) until /readyz says ready.
    pub fn wait_ready(&self, limit: Duration) {
        wait_for("serve /readyz", limit, || self.get("/readyz").0 == 200)
            .unwrap_or_else(|err| panic!("{err}\n{}", self.log()));
    }

    /// Poll /metrics until `holds` is true of it, at most `limit`.
    pub fn metrics_until(&self, limit: Duration, holds: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let (_, body) = self.get("/metrics");
            if holds(&body) {
                return body;
            }
            if Instant::now() > deadline {
                panic!(
                    "metrics never matched within {limit:?}:\n{body}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Wait for the process to exit, at most `limit`: its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The variable that points the probe at ECS task metadata.
pub const ECS_METADATA: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// A real Prometheus Pushgateway on a free loopback port.
pub fn start_pushgateway() -> u16 {
    let root = scratch_dir("vpc-probe-pushgateway").expect("scratch dir");
    let port = free_port().expect("free port");
    let mut command = Command::new("prometheus-pushgateway");
    // Debian's build persists to /var/lib/prometheus by default: this
    // gateway keeps its state in its own scratch dir, fresh every run.
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--persistence.file={}",
            root.join("pushgateway.data").display()
        ));
    let daemon =
        Daemon::spawn("pushgateway", command, &root.join("pushgateway.log")).expect("pushgateway");
    daemon
        .wait_ready("pushgateway", Duration::from_secs(15), || {
            process::accepts(port)
        })
        .unwrap_or_else(|err| panic!("{err}"));
    port
}

/// A real Prometheus server scraping `target` (host:port) every second.
pub fn start_prometheus(target: &str) -> u16 {
    start_prometheus_with(&[target.to_string()], None)
}

/// A real Prometheus scraping every one of `targets` as job vpc-probe
/// every second, evaluating `rules` (a rule file) every second.
pub fn start_prometheus_with(targets: &[String], rules: Option<&Path>) -> u16 {
    let root = scratch_dir(&format!(
        "vpc-probe-prometheus-{}",
        targets.join("-").replace(':', "-")
    ))
    .expect("scratch dir");
    let port = free_port().expect("free port");
    let config = root.join("prometheus.yml");
    let listed: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let rule_files = rules.map_or(String::new(), |r| {
        format!("rule_files:\n  - '{}'\n", r.display())
    });
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}\
             scrape_configs:\n  - job_name: vpc-probe\n    static_configs:\n      - targets: [{}]\n",
            listed.join(", ")
        ),
    )
    .expect("prometheus config");
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            root.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let daemon =
        Daemon::spawn("prometheus", command, &root.join("prometheus.log")).expect("prometheus");
    daemon
        .wait_ready("prometheus", Duration::from_secs(30), || {
            get(port, "/-/ready").is_some_and(|(status, _)| status == 200)
        })
        .unwrap_or_else(|err| panic!("{err}"));
    port
}
