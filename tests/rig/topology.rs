//! The two-VPC topology of `scripts/topology` with real servers inside: a
//! Patroni cluster (etcd, two PostgreSQL nodes, HAProxy checking Patroni's
//! REST API, read-write port 5432 and read-only 5433, runtime API), Redis,
//! an anisette stand-in, dnsmasq as the VPC resolver, and an idle delaying
//! proxy in the router for latency faults. Built once per test process,
//! torn down at exit. Every packet stays inside namespaces with no default
//! route; the host namespace never talks to these addresses (readiness is
//! checked over Unix sockets or from inside a namespace).

use super::fixture;
use super::patroni::{Cluster, Options, Placement, Site};
use super::process::{self, Daemon};
use super::{REDIS_PASSWORD, SLOW_PATH_DELAY};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub const HAPROXY: &str = "10.0.1.12";
/// HAProxy's second address (the other AZ of a pair); not in the healthy zone.
pub const HAPROXY_B: &str = "10.0.1.13";
pub const PATRONI_PRIMARY: &str = "10.0.1.21";
pub const PATRONI_REPLICA: &str = "10.0.1.22";
pub const REDIS: &str = "10.0.2.10";
pub const ANISETTE: &str = "10.0.3.10";
pub const RESOLVER: &str = "10.20.0.2";
pub const REDIS_HOST: &str = "master.cache.glimpse.internal";
pub const ANISETTE_HOST: &str = "anisette-v3.glimpse.internal";
/// Where the router's delaying proxy listens; a REDIRECT rule sends HAProxy
/// traffic through it.
pub const SLOW_PROXY_PORT: u16 = 15432;

/// A subnet of the ECS VPC where the probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subnet {
    A,
    B,
}

impl Subnet {
    pub fn namespace_suffix(self) -> &'static str {
        match self {
            Subnet::A => "a",
            Subnet::B => "b",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Subnet::A => "subnet-a (10.20.1.0/24)",
            Subnet::B => "subnet-b (10.20.2.0/24)",
        }
    }

    pub fn cidr(self) -> &'static str {
        match self {
            Subnet::A => "10.20.1.0/24",
            Subnet::B => "10.20.2.0/24",
        }
    }
}

pub struct Topology {
    pub prefix: String,
    pub root: PathBuf,
    haproxy_socket: PathBuf,
    hosts_file: PathBuf,
    dnsmasq: Option<Daemon>,
    cluster: Cluster,
}

static TOPOLOGY: OnceLock<Option<Result<Topology, String>>> = OnceLock::new();

/// Versions of the private zone, so a reload can be seen to have happened.
static ZONE_VERSION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The shared topology, built on first use; `None` when not root.
pub fn topology() -> Option<&'static Topology> {
    let built = TOPOLOGY.get_or_init(|| {
        if unsafe { libc::geteuid() } != 0 && process::may_skip("the topology needs root") {
            return None;
        }
        // Kept, not panicked on here: each row that asks fails with the
        // same cause, instead of building the topology again.
        Some(Topology::build())
    });
    match built {
        None => None,
        Some(Ok(topology)) => Some(topology),
        Some(Err(err)) => panic!("building the topology: {err}"),
    }
}

/// The Patroni cluster in the database VPC (namespace `database`): etcd,
/// two nodes on the Patroni addresses and HAProxy on the HAProxy pair.
fn start_patroni(database: String, stats_socket: PathBuf) -> Result<Cluster, String> {
    Cluster::start(Options {
        nodes: 2,
        shutdown_sessions: true,
        site: Site::Namespace(Placement {
            namespace: database,
            nodes: vec![PATRONI_PRIMARY, PATRONI_REPLICA],
            haproxy: vec![HAPROXY, HAPROXY_B],
            network: "10.0.0.0/8",
            stats_socket,
        }),
    })
}

/// The name scripts/topology gives namespace `suffix` of topology `prefix`.
fn namespace_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{suffix}")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/topology")
}

impl Topology {
    fn build() -> Result<Topology, String> {
        let prefix = format!("vt{}", std::process::id() % 100_000);
        let root = process::scratch_dir("vpc-probe-topology")?;
        process::at_exit(&[script().to_str().unwrap_or_default(), "down", &prefix]);
        let mut up = Command::new(script());
        process::run(up.args(["up", &prefix]), "scripts/topology up")?;
        let haproxy_socket = root.join("haproxy.sock");
        let cluster = start_patroni(namespace_name(&prefix, "d"), haproxy_socket.clone())?;
        // The topology lives to the end of the process, where statics are
        // not dropped: its cluster's directories go with the scratch dirs.
        process::remove_at_exit(cluster.dir.path());
        process::remove_at_exit(cluster.etcd_dir.path());
        let mut topology = Topology {
            haproxy_socket,
            hosts_file: root.join("hosts"),
            prefix,
            root,
            dnsmasq: None,
            cluster,
        };
        topology.start_redis()?;
        topology.start_dnsmasq()?;
        topology.start_in_namespaces()?;
        Ok(topology)
    }

    /// The full name of namespace `suffix` (a, b, r, d).
    pub fn namespace(&self, suffix: &str) -> String {
        namespace_name(&self.prefix, suffix)
    }

    /// `command` run inside namespace `suffix`.
    pub fn command(&self, suffix: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(suffix)])
            .arg(program);
        command
    }

    /// Run `args` inside namespace `suffix`; an error names what failed.
    pub fn exec(&self, suffix: &str, args: &[&str]) -> Result<(), String> {
        let (program, rest) = args.split_first().ok_or("empty command")?;
        let mut command = self.command(suffix, program);
        process::run(command.args(rest), &format!("in {suffix}: {args:?}")).map(drop)
    }

    /// Start `program` inside namespace `suffix`, logging to `log` in the root.
    fn daemon(
        &self,
        name: &'static str,
        log: &str,
        suffix: &str,
        program: &str,
        args: &[&str],
    ) -> Result<Daemon, String> {
        let mut command = self.command(suffix, program);
        command.args(args);
        Daemon::spawn(name, command, &self.root.join(log))
    }

    /// The Patroni cluster behind HAProxy.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The names of the nodes Patroni's REST API calls (primary, replica) now.
    pub fn roles(&self) -> Result<(String, String), String> {
        let cluster = self.cluster();
        let primary = cluster.primary().ok_or("no primary")?;
        let replica = cluster
            .nodes
            .iter()
            .find(|node| node.name != primary.name)
            .ok_or("no replica")?;
        Ok((primary.name.clone(), replica.name.clone()))
    }

    /// A command on HAProxy's runtime API (e.g. `set server rw/node1 state maint`).
    pub fn haproxy(&self, command: &str) -> Result<String, String> {
        let mut socket = UnixStream::connect(&self.haproxy_socket).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        socket
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        socket
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        Ok(answer)
    }

    fn start_redis(&self) -> Result<(), String> {
        let dir = self.root.join("redis");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = format!(
            "port 6379\nbind {REDIS}\nsave \"\"\nappendonly no\ndir {dir}\ndaemonize no\nrequirepass {REDIS_PASSWORD}\n",
            dir = dir.display()
        );
        let path = dir.join("redis.conf");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let daemon = self.daemon(
            "redis-server",
            "redis.log",
            "d",
            "redis-server",
            &[path.to_str().unwrap_or_default()],
        )?;
        let address: SocketAddr = format!("{REDIS}:6379").parse().map_err(|_| "address")?;
        daemon.wait_ready("redis-server", Duration::from_secs(30), || {
            self.in_namespace("d", move || {
                std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
            })
            .unwrap_or(false)
        })
    }

    /// The private hosted zone as the healthy topology has it.
    pub fn healthy_zone() -> String {
        format!(
            "{HAPROXY} {}\n{REDIS} {REDIS_HOST}\n{ANISETTE} {ANISETTE_HOST}\n",
            super::HAPROXY_NAME
        )
    }

    fn start_dnsmasq(&mut self) -> Result<(), String> {
        std::fs::write(&self.hosts_file, Self::healthy_zone()).map_err(|e| e.to_string())?;
        let hosts = format!("--addn-hosts={}", self.hosts_file.display());
        let listen = format!("--listen-address={RESOLVER}");
        let mut command = self.command("r", "dnsmasq");
        command.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--pid-file=",
            "--user=root",
            "--cache-size=0",
            "--local=/glimpse.internal/",
            &listen,
            &hosts,
        ]);
        let daemon = Daemon::spawn("dnsmasq", command, &self.root.join("dnsmasq.log"))?;
        // Not by SIGHUP (set_zone's way): before dnsmasq installs its
        // handler, a SIGHUP would end it.
        let resolver: SocketAddr = format!("{RESOLVER}:53").parse().map_err(|_| "address")?;
        let ready = daemon.wait_ready("dnsmasq", Duration::from_secs(30), || {
            self.in_namespace("r", move || process::dns_answers(resolver))
                .unwrap_or(false)
        });
        self.dnsmasq = Some(daemon);
        ready
    }

    /// Replace the private zone's records (`/etc/hosts` lines) and have the
    /// resolver re-read them.
    pub fn set_zone(&self, records: &str) -> Result<(), String> {
        // A marker name unique to this version of the zone: once the
        // resolver answers it, it has read the new records.
        let version = ZONE_VERSION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let marker = format!("zone-{version}.vpc-probe.glimpse.internal");
        let text = format!("{records}\n127.0.0.1 {marker}\n");
        std::fs::write(&self.hosts_file, text).map_err(|e| e.to_string())?;
        let dnsmasq = self.dnsmasq.as_ref().ok_or("dnsmasq is not running")?;
        // SAFETY: kill(2) on the resolver this topology started.
        unsafe { libc::kill(dnsmasq.pid as libc::pid_t, libc::SIGHUP) };
        let resolver: SocketAddr = format!("{RESOLVER}:53").parse().map_err(|_| "address")?;
        dnsmasq.wait_ready(
            "the resolver to read the new zone",
            Duration::from_secs(10),
            || {
                self.in_namespace("r", {
                    let marker = marker.clone();
                    move || process::dns_answer_count(resolver, &marker)
                })
                .ok()
                .flatten()
                    == Some(1)
            },
        )
    }

    /// Servers that are threads of this process: anisette in the database
    /// VPC, the delaying proxy in the router (idle until a REDIRECT rule).
    fn start_in_namespaces(&self) -> Result<(), String> {
        let anisette: SocketAddr = format!("{ANISETTE}:6969").parse().map_err(|_| "address")?;
        self.in_namespace("d", move || {
            fixture::spawn_at(fixture::Mode::Anisette, anisette)
        })??;
        let listen = SocketAddr::from(([0, 0, 0, 0], SLOW_PROXY_PORT));
        let upstream: SocketAddr = format!("{HAPROXY}:5432").parse().map_err(|_| "address")?;
        self.in_namespace("r", move || {
            fixture::spawn_delay_proxy(listen, upstream, SLOW_PATH_DELAY)
        })??;
        Ok(())
    }

    /// Run `work` on a thread that entered namespace `suffix`; threads it
    /// spawns stay in that namespace.
    fn in_namespace<T: Send + 'static>(
        &self,
        suffix: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let path = format!("/run/netns/{}", self.namespace(suffix));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|err| format!("{path}: {err}"))?;
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            Ok(work())
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())?
    }

    /// `vpc-probe check --format json` from `subnet`, with `envs`.
    pub fn probe(&self, subnet: Subnet, suite: &Path, envs: &[(&str, &str)]) -> super::probe::Run {
        let started = std::time::Instant::now();
        let output = self
            .command(subnet.namespace_suffix(), "timeout")
            .args([
                "60",
                super::probe::binary(),
                "check",
                "--format",
                "json",
                "--suite",
            ])
            .arg(suite)
            .env_remove("VPC_PROBE_SUITE")
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .envs(envs.iter().copied())
            .output()
            .expect("run vpc-probe in a namespace");
        super::probe::Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}
