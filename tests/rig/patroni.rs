//! A real Patroni cluster on loopback, as production runs it behind HAProxy:
//! etcd 3.4 (data on tmpfs), two or three PostgreSQL 15 nodes under Debian's
//! Patroni 3.0 running as `postgres` with a clean environment, and HAProxy
//! steering the read-write and read-only ports by Patroni's REST API the way
//! Patroni's sample configuration does (`option httpchk`, `/primary` and
//! `/replica`, `http-check expect status 200`, optionally
//! `on-marked-down shutdown-sessions`). A cluster runs on the host's
//! loopback (the drill tests) or inside a network namespace on the database
//! VPC's addresses (the topology); every command that talks to it runs where
//! it lives. Each cluster keeps its state in its own temp dir and is stopped
//! when dropped (the topology's, which lives to the end, by its namespace's
//! teardown); every wait is bounded.

use super::process::{self, free_port, wait_for, Daemon};
use super::{PG_PASSWORD, PG_USER};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SUPERUSER_PASSWORD: &str = "patroni-Super-4731";
const REPLICATION_PASSWORD: &str = "patroni-Repl-4732";
/// The ttl of the leader key: an unplanned failover takes about this long.
pub const TTL: Duration = Duration::from_secs(20);

/// How a cluster is built.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    /// HAProxy's `on-marked-down shutdown-sessions` on the read-write port.
    pub shutdown_sessions: bool,
    pub site: Site,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 2,
            shutdown_sessions: true,
            site: Site::Loopback,
        }
    }
}

/// Where a cluster's processes run and which addresses they take.
#[derive(Debug, Clone)]
pub enum Site {
    /// The host's loopback with free ports.
    Loopback,
    /// Inside a network namespace on fixed addresses, ports as production
    /// has them (5432, REST 8008; HAProxy 5432 read-write, 5433 read-only).
    Namespace(Placement),
}

/// A cluster's place inside a network namespace.
#[derive(Debug, Clone)]
pub struct Placement {
    pub namespace: String,
    /// One address per node, in node order.
    pub nodes: Vec<&'static str>,
    /// The addresses HAProxy binds (a pair across AZs); the first is the
    /// one the cluster's own clients use.
    pub haproxy: Vec<&'static str>,
    /// Where clients and replicas connect from, for pg_hba.
    pub network: &'static str,
    /// HAProxy's admin socket, for runtime commands.
    pub stats_socket: PathBuf,
}

impl Site {
    /// `program` run where the cluster lives.
    pub fn command(&self, program: &str) -> Command {
        match self {
            Site::Loopback => Command::new(program),
            Site::Namespace(place) => {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", &place.namespace])
                    .arg(program);
                command
            }
        }
    }

    /// `program` run where the cluster lives, as the `postgres` user, in
    /// `workdir` (a directory of its own it can enter).
    fn as_postgres(&self, program: &str, workdir: &Path) -> Command {
        match self {
            Site::Loopback => process::as_postgres(Command::new(program), workdir),
            Site::Namespace(_) => {
                // `ip netns exec` needs root: drop to postgres after it.
                let mut command = self.command("setpriv");
                command.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--clear-groups",
                    "--",
                    program,
                ]);
                // `ip netns exec` and setpriv keep the working directory.
                command.current_dir(workdir);
                command
            }
        }
    }

    /// The same as a shell prefix, for scripts a trigger runs.
    fn shell_prefix(&self) -> String {
        match self {
            Site::Loopback => String::new(),
            Site::Namespace(place) => format!("ip netns exec {} ", place.namespace),
        }
    }

    /// Node `index`'s (address, PostgreSQL port, REST port); 1-based.
    fn node_address(&self, index: usize) -> Result<(String, u16, u16), String> {
        match self {
            Site::Loopback => Ok(("127.0.0.1".into(), free_port()?, free_port()?)),
            Site::Namespace(place) => {
                let address = place
                    .nodes
                    .get(index - 1)
                    .ok_or("more nodes than addresses")?;
                Ok((address.to_string(), 5432, 8008))
            }
        }
    }

    /// HAProxy's (address, read-write port, read-only port).
    fn haproxy_address(&self) -> Result<(String, u16, u16), String> {
        match self {
            Site::Loopback => Ok(("127.0.0.1".into(), free_port()?, free_port()?)),
            Site::Namespace(place) => {
                let first = place.haproxy.first().ok_or("HAProxy needs an address")?;
                Ok((first.to_string(), 5432, 5433))
            }
        }
    }

    fn client_network(&self) -> &'static str {
        match self {
            Site::Loopback => "127.0.0.1/32",
            Site::Namespace(place) => place.network,
        }
    }
}

/// One Patroni member.
pub struct Node {
    pub name: String,
    pub address: String,
    pub pg_port: u16,
    pub api_port: u16,
    pub data: PathBuf,
    pub config: PathBuf,
    patroni: Daemon,
}

/// One cluster at a time: failover timings on a 2-core machine mean
/// something only when clusters do not compete for it. A flag and a condvar
/// rather than a held MutexGuard, so a cluster can live in a static.
static BUSY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

/// This process's turn to run a cluster, until dropped.
struct Turn;

impl Turn {
    fn take() -> Turn {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = FREED.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(|p| p.into_inner()) = false;
        FREED.notify_one();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// etcd's data, on tmpfs.
    pub etcd_dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub site: Site,
    /// HAProxy's address, read-write (primary) and read-only (replica) ports.
    pub haproxy: String,
    pub rw: u16,
    pub ro: u16,
    daemons: Vec<Daemon>,
    _turn: Turn,
}

impl Cluster {
    /// Start etcd, the nodes and HAProxy; return once the read-write port
    /// reaches the primary and the read-only port a streaming replica.
    pub fn start(options: Options) -> Result<Cluster, String> {
        let turn = Turn::take();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let etcd_dir = tempfile::tempdir_in("/dev/shm").map_err(|e| e.to_string())?;
        let site = &options.site;
        let mut daemons = Vec::new();
        let etcd = start_etcd(site, dir.path(), etcd_dir.path(), &mut daemons)?;
        let bootstrap = post_bootstrap(dir.path())?;
        let mut nodes = Vec::new();
        for index in 1..=options.nodes {
            nodes.push(start_node(site, dir.path(), index, etcd, &bootstrap)?);
            if index == 1 {
                // The first node bootstraps; the others clone from it.
                let first = &nodes[0];
                first.patroni.wait_ready(
                    "the first Patroni node",
                    Duration::from_secs(60),
                    || api_status(site, first, "/primary") == Some(200),
                )?;
            }
        }
        let (haproxy, rw, ro) = start_haproxy(dir.path(), &nodes, &options, &mut daemons)?;
        let cluster = Cluster {
            dir,
            etcd_dir,
            nodes,
            site: options.site.clone(),
            haproxy,
            rw,
            ro,
            daemons,
            _turn: turn,
        };
        cluster.wait_settled(Duration::from_secs(90))?;
        Ok(cluster)
    }

    /// Wait until the rw port answers from a primary and the ro port from a
    /// replica, three times in a row each.
    pub fn wait_settled(&self, limit: Duration) -> Result<(), String> {
        let mut streak = 0;
        let mut seen = (Ok(String::new()), Ok(String::new()));
        wait_for("the cluster behind HAProxy", limit, || {
            seen = (
                self.query(self.rw, "SELECT pg_is_in_recovery()"),
                self.query(self.ro, "SELECT pg_is_in_recovery()"),
            );
            let settled = seen.0.as_deref() == Ok("f") && seen.1.as_deref() == Ok("t");
            streak = if settled { streak + 1 } else { 0 };
            streak >= 3
        })
        .map_err(|err| {
            format!(
                "{err}: rw answered {:?}, ro {:?}\n{}",
                seen.0,
                seen.1,
                self.logs()
            )
        })
    }

    /// The end of every node's Patroni log and of HAProxy's, for a failure
    /// message.
    fn logs(&self) -> String {
        let haproxy = self
            .daemons
            .iter()
            .filter(|daemon| daemon.name == "haproxy")
            .map(|daemon| daemon.failure("--- haproxy"));
        self.nodes
            .iter()
            .map(|node| {
                let log = std::fs::read_to_string(node.data.with_file_name("patroni.log"))
                    .unwrap_or_default();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|line| !line.contains("no action.") && !line.contains("Lock owner"))
                    .collect();
                format!(
                    "--- {}:\n{}",
                    node.name,
                    lines[lines.len().saturating_sub(15)..].join("\n")
                )
            })
            .chain(haproxy)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One value, as the probe's role, through HAProxy's `port`.
    pub fn query(&self, port: u16, sql: &str) -> Result<String, String> {
        let mut psql = self.site.command("/usr/lib/postgresql/15/bin/psql");
        psql.env("PGPASSWORD", PG_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "2")
            .args(["-X", "-q", "-A", "-t", "-U", PG_USER, "-d", "app"])
            .args(["-h", &self.haproxy, "-p", &port.to_string(), "-c", sql]);
        process::run(&mut psql, "psql")
    }

    /// The node the Patroni REST API says is the primary now.
    pub fn primary(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|node| api_status(&self.site, node, "/primary") == Some(200))
    }

    /// `patronictl ARGS` as a command line that runs where the cluster lives.
    pub fn patronictl(&self, args: &[&str]) -> Vec<String> {
        let mut line: Vec<String> = match &self.site {
            Site::Loopback => vec![],
            Site::Namespace(place) => ["ip", "netns", "exec", &place.namespace]
                .map(String::from)
                .to_vec(),
        };
        line.extend(["patronictl", "-c"].map(String::from));
        line.push(self.nodes[0].config.display().to_string());
        line.extend(args.iter().map(|arg| arg.to_string()));
        line
    }

    /// `patronictl switchover --force`, as the drill's trigger.
    pub fn switchover_command(&self) -> Vec<String> {
        self.patronictl(&["switchover", "--force"])
    }

    /// A script that sends `signal` to the current primary's Patroni and
    /// every PostgreSQL process of that node: KILL is a node dying, STOP a
    /// node frozen (the network to it gone, as far as anyone can tell).
    pub fn primary_signal_script(&self, signal: &str) -> Result<PathBuf, String> {
        let mut script = String::from("#!/bin/sh\nset -e\n");
        for node in &self.nodes {
            script += &format!(
                "if {inside}curl -s -o /dev/null -w '%{{http_code}}' http://{address}:{api}/primary | grep -q 200; then\n\
                 \x20 pm=$(head -1 {data}/postmaster.pid)\n\
                 \x20 kill -{signal} {patroni} $pm $(pgrep -P $pm) 2>/dev/null || true\n\
                 \x20 echo \"{signal} sent to {name}\"; exit 0\nfi\n",
                inside = self.site.shell_prefix(),
                address = node.address,
                api = node.api_port,
                data = node.data.display(),
                patroni = node.patroni.pid,
                name = node.name,
            );
        }
        script += "echo 'no primary found' >&2; exit 1\n";
        let path = self.dir.path().join(format!("primary-{signal}.sh"));
        std::fs::write(&path, script).map_err(|e| e.to_string())?;
        make_executable(&path)?;
        Ok(path)
    }

    /// A shell line that freezes the current primary's WAL senders: what it
    /// acknowledges from then on reaches no replica (the replication
    /// traffic is gone, the primary does not know). Killing the node later
    /// kills them too.
    pub fn pause_replication_line(&self) -> Result<String, String> {
        let primary = self.primary().ok_or("no primary")?;
        Ok(format!(
            "pgrep -P $(head -1 {}/postmaster.pid) -f walsender | xargs -r kill -STOP",
            primary.data.display()
        ))
    }

    /// Patroni's own record of leader changes (`patronictl history`).
    pub fn history(&self) -> Result<String, String> {
        let line = self.patronictl(&["history", "-f", "tsv"]);
        let mut history = Command::new(&line[0]);
        history
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(&line[1..]);
        process::run(&mut history, "patronictl history")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Patroni first, so it cannot restart PostgreSQL; then each node's
        // postmaster and its children by pid. SIGKILL reaches processes a
        // test froze with SIGSTOP too: killing only the postmaster would
        // leave stopped backends behind, orphaned for good.
        for node in &self.nodes {
            // SAFETY: kill(2) on processes this rig started.
            unsafe { libc::kill(node.patroni.pid as libc::pid_t, libc::SIGKILL) };
        }
        for node in &self.nodes {
            let Ok(pid) = std::fs::read_to_string(node.data.join("postmaster.pid")) else {
                continue;
            };
            let postmaster = pid.lines().next().unwrap_or_default().trim().to_string();
            if postmaster.is_empty() {
                continue;
            }
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &postmaster])
                .status();
            let _ = Command::new("kill").args(["-KILL", &postmaster]).status();
        }
        for daemon in &self.daemons {
            unsafe { libc::kill(daemon.pid as libc::pid_t, libc::SIGTERM) };
        }
    }
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())
}

/// The status code of a GET on `node`'s REST API, bounded to 2 s.
pub fn api_status(site: &Site, node: &Node, path: &str) -> Option<u16> {
    http_status(
        site,
        &format!("http://{}:{}{path}", node.address, node.api_port),
    )
}

/// The status code of a GET from where the cluster lives, bounded to 2 s.
fn http_status(site: &Site, url: &str) -> Option<u16> {
    let out = site
        .command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "2",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// etcd on the loopback of where the cluster lives.
fn start_etcd(
    site: &Site,
    dir: &Path,
    data: &Path,
    daemons: &mut Vec<Daemon>,
) -> Result<u16, String> {
    let (client, peer) = (free_port()?, free_port()?);
    let mut etcd = site.command("etcd");
    etcd.env_clear()
        .args(["--name", "etcd0", "--data-dir"])
        .arg(data)
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=etcd0=http://127.0.0.1:{peer}"));
    let daemon = Daemon::spawn("etcd", etcd, &dir.join("etcd.log"))?;
    let health = format!("http://127.0.0.1:{client}/health");
    let ready = daemon.wait_ready("etcd", Duration::from_secs(30), || {
        http_status(site, &health) == Some(200)
    });
    daemons.push(daemon);
    ready.map(|()| client)
}

/// Patroni's `post_bootstrap`: the probe's role and its database.
fn post_bootstrap(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join("post_bootstrap.sh");
    let script = format!(
        "#!/bin/sh\nset -e\n/usr/lib/postgresql/15/bin/psql \"$1\" -v ON_ERROR_STOP=1 \
         -c \"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'\" -c \"CREATE DATABASE app OWNER {PG_USER}\"\n"
    );
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    make_executable(&path)?;
    Ok(path)
}

fn start_node(
    site: &Site,
    dir: &Path,
    index: usize,
    etcd: u16,
    bootstrap: &Path,
) -> Result<Node, String> {
    let name = format!("node{index}");
    let home = dir.join(&name);
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let (address, pg_port, api_port) = site.node_address(index)?;
    let network = site.client_network();
    let data = home.join("data");
    let config = home.join("patroni.yml");
    let yaml = format!(
        r#"scope: vpc-probe-drill
name: {name}
restapi:
  listen: {address}:{api_port}
  connect_address: {address}:{api_port}
etcd3:
  hosts: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: {ttl}
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1073741824
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_retrieve_retry_interval: 500ms
        wal_log_hints: "on"
        fsync: "off"
        # Segments in the data directory: a node a test kills leaves no
        # /dev/shm/PostgreSQL.* behind.
        dynamic_shared_memory_type: mmap
  initdb:
    - encoding: UTF8
  pg_hba:
    - local all all trust
    - host replication replicator {network} scram-sha-256
    - host all all {network} scram-sha-256
  post_bootstrap: {bootstrap}
postgresql:
  listen: {address}:{pg_port}
  connect_address: {address}:{pg_port}
  data_dir: {data}
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: {home}/pgpass
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: postgres
      password: {SUPERUSER_PASSWORD}
    replication:
      username: replicator
      password: {REPLICATION_PASSWORD}
    rewind:
      username: postgres
      password: {SUPERUSER_PASSWORD}
  parameters:
    unix_socket_directories: {home}
"#,
        ttl = TTL.as_secs(),
        bootstrap = bootstrap.display(),
        data = data.display(),
        home = home.display(),
    );
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    process::give_to_postgres(dir)?;
    let mut patroni = site.as_postgres("patroni", &home);
    // Patroni reads PATRONI_* variables as configuration: a clean environment.
    patroni
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .arg(&config);
    let log = home.join("patroni.log");
    let patroni = Daemon::spawn("patroni", patroni, &log)?;
    Ok(Node {
        name,
        address,
        pg_port,
        api_port,
        data,
        config,
        patroni,
    })
}

fn start_haproxy(
    dir: &Path,
    nodes: &[Node],
    options: &Options,
    daemons: &mut Vec<Daemon>,
) -> Result<(String, u16, u16), String> {
    let (address, rw, ro) = options.site.haproxy_address()?;
    let binds: Vec<String> = match &options.site {
        Site::Loopback => vec![address.clone()],
        Site::Namespace(place) => place.haproxy.iter().map(|a| a.to_string()).collect(),
    };
    let bind = |port: u16| -> String {
        binds
            .iter()
            .map(|a| format!("  bind {a}:{port}\n"))
            .collect()
    };
    let (bind_rw, bind_ro) = (bind(rw), bind(ro));
    let stats = match &options.site {
        Site::Loopback => String::new(),
        Site::Namespace(place) => format!(
            "  stats socket {} mode 600 level admin\n",
            place.stats_socket.display()
        ),
    };
    let shutdown = if options.shutdown_sessions {
        " on-marked-down shutdown-sessions"
    } else {
        ""
    };
    let servers: String = nodes
        .iter()
        .map(|n| {
            format!(
                "  server {} {}:{} maxconn 100 check port {}\n",
                n.name, n.address, n.pg_port, n.api_port
            )
        })
        .collect();
    let config = format!(
        "global\n  maxconn 300\n{stats}\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30m\n  timeout server 30m\n  timeout check 1s\n\n\
         listen primary\n{bind_rw}  option httpchk OPTIONS /primary\n  http-check expect status 200\n\
         \x20 default-server inter 300ms fall 2 rise 1{shutdown}\n{servers}\n\
         listen replicas\n{bind_ro}  option httpchk OPTIONS /replica\n  http-check expect status 200\n\
         \x20 default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut haproxy = options.site.command("haproxy");
    haproxy.arg("-db").arg("-f").arg(&path);
    daemons.push(Daemon::spawn("haproxy", haproxy, &dir.join("haproxy.log"))?);
    Ok((address, rw, ro))
}
