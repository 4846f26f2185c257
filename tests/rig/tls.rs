//! TLS everywhere, as production has it, on loopback: a test CA (rcgen),
//! redis-server with TLS only (ElastiCache's in-transit encryption) plus an
//! AUTH token and ACL users, a plain redis-server with no password, HAProxy
//! terminating TLS in front of the anisette stand-in (with a good, an
//! expired and an untrusted certificate), and HAProxy in front of a
//! PgBouncer that only accepts TLS clients. Started on first use, after the
//! main rig (whose DNS server holds the ElastiCache name and its alias).

use super::process::{self, free_port, wait_for, Daemon};
use super::{rig, ANISETTE_NAME, ELASTICACHE_NAME, HAPROXY_NAME};
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// ElastiCache's AUTH token for the default user.
pub const REDIS_TOKEN: &str = "elasticache-Token-4721";
/// ACL users of the TLS Redis, as an ElastiCache RBAC user group holds them.
pub const ACL_PASSWORD: &str = "rbac-Secret-4722";
/// May AUTH and PING, nothing else.
pub const PING_ONLY_USER: &str = "pinger";
/// May AUTH, but not PING.
pub const NO_PING_USER: &str = "noping";
/// Exists, with the right password, but is switched off.
pub const DISABLED_USER: &str = "retired";

/// How many days from today the rig's good leaf certificates stay valid.
pub const LEAF_DAYS: i64 = 5;

pub struct TlsRig {
    pub root: PathBuf,
    /// The CA every good certificate chains to; a check's `ca_file`.
    pub ca_file: PathBuf,
    /// redis-server, TLS only (`port 0`), certificate for [`ELASTICACHE_NAME`].
    pub redis_tls: u16,
    /// redis-server, plain, no password configured.
    pub redis_open: u16,
    /// HAProxy TLS in front of anisette, certificate for [`ANISETTE_NAME`].
    pub anisette_https: u16,
    /// The same, with a certificate that expired.
    pub expired_https: u16,
    /// The same, with a self-signed certificate no CA vouches for.
    pub untrusted_https: u16,
    /// HAProxy (tcp) in front of a PgBouncer that requires TLS, with a
    /// certificate for [`HAPROXY_NAME`].
    pub pg_tls: u16,
    /// HTTPS in front of anisette whose certificate ([`TlsRig::swap_cert`],
    /// valid 30 days) can be replaced at run time through HAProxy's
    /// runtime API ([`TlsRig::swap_certificate`]), keeping its session
    /// cache and ticket keys: a resumed handshake would not notice.
    pub swap_https: u16,
    /// The path HAProxy knows the swappable certificate by.
    pub swap_cert: PathBuf,
    /// A leaf for the same name, valid 2 days: what the swap puts in.
    pub swap_soon: PathBuf,
    /// HAProxy's admin socket.
    pub admin_socket: PathBuf,
    daemons: Vec<Daemon>,
}

static TLS_RIG: OnceLock<TlsRig> = OnceLock::new();

/// The shared TLS rig, started on first use.
pub fn tls_rig() -> &'static TlsRig {
    TLS_RIG
        .get_or_init(|| TlsRig::start().unwrap_or_else(|err| panic!("starting the TLS rig: {err}")))
}

impl TlsRig {
    fn start() -> Result<TlsRig, String> {
        let main = rig();
        let root = main.root.join("tls");
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let certs = Certificates::write(&root)?;
        let mut daemons = Vec::new();
        let redis_tls = start_redis_tls(&root, &certs, &mut daemons)?;
        let redis_open = start_redis_open(&root, &mut daemons)?;
        let pgbouncer = super::start_pgbouncer(
            &root,
            main.postgres,
            "pgbouncer-tls",
            &format!(
                "client_tls_sslmode = require\nclient_tls_key_file = {}\nclient_tls_cert_file = {}\n",
                certs.pg_key.display(),
                certs.pg_cert.display()
            ),
            &mut daemons,
        )?;
        let ports = start_haproxy(&root, &certs, main.anisette, pgbouncer, &mut daemons)?;
        let admin_socket = root.join("haproxy-tls.sock");
        Ok(TlsRig {
            swap_https: ports[4],
            swap_cert: certs.swap.clone(),
            swap_soon: certs.swap_soon.clone(),
            admin_socket,
            ca_file: certs.ca.clone(),
            root,
            redis_tls,
            redis_open,
            anisette_https: ports[0],
            expired_https: ports[1],
            untrusted_https: ports[2],
            pg_tls: ports[3],
            daemons,
        })
    }
}

/// The PEM files of the rig, all under its root.
struct Certificates {
    ca: PathBuf,
    redis_cert: PathBuf,
    redis_key: PathBuf,
    pg_cert: PathBuf,
    pg_key: PathBuf,
    /// HAProxy wants certificate and key in one file.
    anisette: PathBuf,
    expired: PathBuf,
    untrusted: PathBuf,
    /// Swappable at run time: valid 30 days, then the 2-day one.
    swap: PathBuf,
    swap_soon: PathBuf,
}

impl Certificates {
    fn write(root: &Path) -> Result<Certificates, String> {
        let err = |e: rcgen::Error| e.to_string();
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "vpc-probe test CA");
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let write = |name: &str, text: String| -> Result<PathBuf, String> {
            let path = root.join(name);
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            Ok(path)
        };
        let ca = write("ca.pem", ca_cert.pem())?;
        // Midnight UTC `days` from today, as rcgen takes it.
        let day = |days: i64| {
            use chrono::Datelike;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs() as i64;
            let date = chrono::DateTime::from_timestamp(now + days * 86_400, 0)
                .expect("a date")
                .date_naive();
            rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
        };
        let leaf_for = |name: &str, from: i64, to: i64| -> Result<String, String> {
            let key = KeyPair::generate().map_err(err)?;
            let mut params = CertificateParams::new(vec![name.to_string()]).map_err(err)?;
            params.subject_alt_names = vec![SanType::DnsName(name.try_into().map_err(err)?)];
            params.not_before = day(from);
            params.not_after = day(to);
            let cert = params.signed_by(&key, &issuer).map_err(err)?;
            Ok(cert.pem() + &key.serialize_pem())
        };
        let swap = leaf_for(ANISETTE_NAME, -1, 30)?;
        let swap_soon = leaf_for(ANISETTE_NAME, -1, 2)?;
        let leaf = |name: &str, expired: bool| -> Result<(String, String), String> {
            let key = KeyPair::generate().map_err(err)?;
            let mut params = CertificateParams::new(vec![name.to_string()]).map_err(err)?;
            params.subject_alt_names = vec![SanType::DnsName(name.try_into().map_err(err)?)];
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            } else {
                // Valid for 5 more days: under the default min_cert_validity
                // (14 days), so every good TLS check passes with a warning.
                params.not_before = day(-1);
                params.not_after = day(LEAF_DAYS);
            }
            let cert = params.signed_by(&key, &issuer).map_err(err)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (redis_cert, redis_key) = leaf(ELASTICACHE_NAME, false)?;
        let (pg_cert, pg_key) = leaf(HAPROXY_NAME, false)?;
        let (anisette_cert, anisette_key) = leaf(ANISETTE_NAME, false)?;
        let (expired_cert, expired_key) = leaf(ANISETTE_NAME, true)?;
        let own_key = KeyPair::generate().map_err(err)?;
        let own = CertificateParams::new(vec![ANISETTE_NAME.to_string()])
            .map_err(err)?
            .self_signed(&own_key)
            .map_err(err)?;
        let certificates = Certificates {
            ca,
            redis_cert: write("redis.crt", redis_cert)?,
            redis_key: write("redis.key", redis_key)?,
            pg_cert: write("pgbouncer.crt", pg_cert)?,
            pg_key: write("pgbouncer.key", pg_key)?,
            anisette: write("anisette.pem", anisette_cert + &anisette_key)?,
            expired: write("expired.pem", expired_cert + &expired_key)?,
            untrusted: write("untrusted.pem", own.pem() + &own_key.serialize_pem())?,
            swap: write("swap.pem", swap)?,
            swap_soon: write("swap-soon.pem", swap_soon)?,
        };
        // PgBouncer runs as postgres and reads its key from here.
        process::give_to_postgres(root)?;
        Ok(certificates)
    }
}

fn start_redis_tls(
    root: &Path,
    certs: &Certificates,
    daemons: &mut Vec<Daemon>,
) -> Result<u16, String> {
    let port = free_port()?;
    let config = format!(
        "port 0\ntls-port {port}\nbind 127.0.0.1\ntls-cert-file {cert}\ntls-key-file {key}\n\
         tls-ca-cert-file {ca}\ntls-auth-clients no\nsave \"\"\nappendonly no\ndir {dir}\n\
         requirepass {REDIS_TOKEN}\n\
         user {PING_ONLY_USER} on >{ACL_PASSWORD} ~* -@all +ping\n\
         user {NO_PING_USER} on >{ACL_PASSWORD} ~* -@all +role\n\
         user {DISABLED_USER} off >{ACL_PASSWORD} ~* +@all\n",
        cert = certs.redis_cert.display(),
        key = certs.redis_key.display(),
        ca = certs.ca.display(),
        dir = root.display()
    );
    super::spawn_redis(root, "redis-tls", &config, port, daemons)
}

fn start_redis_open(root: &Path, daemons: &mut Vec<Daemon>) -> Result<u16, String> {
    let port = free_port()?;
    let config = format!(
        "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n",
        root.display()
    );
    super::spawn_redis(root, "redis-open", &config, port, daemons)
}

/// One HAProxy: three TLS frontends to anisette (good, expired and
/// untrusted certificates) and one tcp frontend to the TLS PgBouncer.
fn start_haproxy(
    root: &Path,
    certs: &Certificates,
    anisette: u16,
    pgbouncer: u16,
    daemons: &mut Vec<Daemon>,
) -> Result<[u16; 5], String> {
    let ports = [
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
    ];
    let mut config = format!(
        "global\n  maxconn 200\n  stats socket {} level admin\n\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\n",
        root.join("haproxy-tls.sock").display()
    );
    config += &format!(
        "frontend https_swap\n  bind 127.0.0.1:{} ssl crt {}\n  default_backend anisette\n\n",
        ports[4],
        certs.swap.display()
    );
    for (index, crt) in [&certs.anisette, &certs.expired, &certs.untrusted]
        .into_iter()
        .enumerate()
    {
        config += &format!(
            "frontend https{index}\n  bind 127.0.0.1:{} ssl crt {}\n  default_backend anisette\n\n",
            ports[index],
            crt.display()
        );
    }
    config += &format!(
        "backend anisette\n  server fixture 127.0.0.1:{anisette}\n\n\
         frontend postgres_tls\n  bind 127.0.0.1:{}\n  default_backend pgbouncer_tls\n\n\
         backend pgbouncer_tls\n  server bouncer 127.0.0.1:{pgbouncer}\n",
        ports[3]
    );
    let path = root.join("haproxy-tls.cfg");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&path);
    let daemon = Daemon::spawn("haproxy-tls", command, &root.join("haproxy-tls.log"))?;
    let ready = daemon.wait_ready("haproxy-tls", Duration::from_secs(30), || {
        ports.iter().all(|port| process::accepts(*port))
    });
    daemons.push(daemon);
    ready?;
    Ok(ports)
}

impl TlsRig {
    /// Replace the swappable frontend's certificate with the 2-day leaf
    /// through HAProxy's runtime API (`set ssl cert` + `commit ssl cert`):
    /// new handshakes present it; session state and ticket keys stay.
    pub fn swap_certificate(&self) -> Result<(), String> {
        let pem = std::fs::read_to_string(&self.swap_soon).map_err(|e| e.to_string())?;
        let cert = self.swap_cert.display();
        let set = self.admin(&format!("set ssl cert {cert} <<\n{pem}\n"))?;
        if !set.contains("Transaction created") && !set.contains("Transaction updated") {
            return Err(format!("set ssl cert: {set}"));
        }
        let commit = self.admin(&format!("commit ssl cert {cert}\n"))?;
        if !commit.contains("Success") {
            return Err(format!("commit ssl cert: {commit}"));
        }
        Ok(())
    }

    /// One command on HAProxy's admin socket, and its answer.
    fn admin(&self, command: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let mut socket = std::os::unix::net::UnixStream::connect(&self.admin_socket)
            .map_err(|e| format!("{}: {e}", self.admin_socket.display()))?;
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        socket
            .write_all(command.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer);
        Ok(answer)
    }
}

/// A Redis Cluster of three masters on loopback (what ElastiCache calls
/// cluster mode enabled), made with `redis-cli --cluster create`.
pub struct Cluster {
    pub ports: [u16; 3],
    daemons: Vec<Daemon>,
}

impl Cluster {
    /// Three fresh nodes in `root/cluster-N`, joined, with every slot covered.
    pub fn start(root: &Path) -> Result<Cluster, String> {
        let ports = [
            process::free_cluster_port()?,
            process::free_cluster_port()?,
            process::free_cluster_port()?,
        ];
        let mut daemons = Vec::new();
        for port in ports {
            let dir = root.join(format!("cluster-{port}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let config = format!(
                "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n\
                 cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 500\n",
                dir.display()
            );
            super::spawn_redis(&dir, "redis-cluster-node", &config, port, &mut daemons)?;
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        create.args(ports.map(|port| format!("127.0.0.1:{port}")));
        create.arg("--cluster-yes");
        process::run(&mut create, "redis-cli --cluster create")?;
        let cluster = Cluster { ports, daemons };
        cluster.wait_state(ports[0], "ok")?;
        Ok(cluster)
    }

    /// Wait, bounded, until the node on `port` reports `cluster_state:state`.
    pub fn wait_state(&self, port: u16, state: &str) -> Result<(), String> {
        let wanted = format!("cluster_state:{state}");
        wait_for(&wanted, Duration::from_secs(30), || {
            let mut info = Command::new("redis-cli");
            info.args(["-p", &port.to_string(), "cluster", "info"]);
            process::run(&mut info, "cluster info").is_ok_and(|text| text.contains(&wanted))
        })
    }

    /// Stop the node on `ports[index]`: its slots are then uncovered.
    pub fn kill(&self, index: usize) {
        let pid = self.daemons[index].pid as libc::pid_t;
        // SAFETY: kill(2) on a child this rig started; no memory is shared.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
