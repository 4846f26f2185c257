//! Starting and stopping the rig's server processes, with bounded waits.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// Processes and directories to clean up when the test process exits.
static RUNNING: Mutex<Vec<(u32, libc::c_int)>> = Mutex::new(Vec::new());
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CLEANUP: Once = Once::new();
/// Commands run at exit after the processes are stopped (namespace removal).
static AT_EXIT: Mutex<Vec<Vec<String>>> = Mutex::new(Vec::new());

extern "C" fn cleanup() {
    let pids: Vec<(u32, libc::c_int)> = RUNNING.lock().map(|list| list.clone()).unwrap_or_default();
    for (pid, signal) in &pids {
        unsafe { libc::kill(*pid as libc::pid_t, *signal) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (pid, _) in &pids {
        while Instant::now() < deadline {
            let mut status = 0;
            let reaped = unsafe { libc::waitpid(*pid as libc::pid_t, &mut status, libc::WNOHANG) };
            if reaped != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
    for command in AT_EXIT.lock().map(|list| list.clone()).unwrap_or_default() {
        if let Some((program, args)) = command.split_first() {
            let _ = Command::new(program).args(args).status();
        }
    }
    for dir in SCRATCH.lock().map(|list| list.clone()).unwrap_or_default() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn register_cleanup() {
    CLEANUP.call_once(|| unsafe {
        libc::atexit(cleanup);
    });
}

/// Run `command` to completion: its trimmed stdout, or an error naming
/// `what` with the command's stderr.
pub fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command.output().map_err(|err| format!("{what}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Run `command` when the test process exits, after its servers stopped.
pub fn at_exit(command: &[&str]) {
    register_cleanup();
    let command = command.iter().map(|part| part.to_string()).collect();
    AT_EXIT.lock().expect("exit list").push(command);
}

/// A fresh directory, removed when the process exits; readable by the
/// `postgres` user, who runs PostgreSQL and PgBouncer.
pub fn scratch_dir(prefix: &str) -> Result<PathBuf, String> {
    register_cleanup();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let _ = Command::new("chmod").arg("755").arg(&dir).status();
    SCRATCH.lock().expect("scratch list").push(dir.clone());
    Ok(dir)
}

/// A long-running server process, stopped at exit with its own signal.
pub struct Daemon {
    pub name: &'static str,
    pub pid: u32,
    /// Where its stdout and stderr go: quoted when it is not ready in time.
    pub log: PathBuf,
}

/// How many lines of a daemon's log a readiness failure quotes.
const LOG_TAIL_LINES: usize = 25;

impl Daemon {
    pub fn spawn(name: &'static str, mut command: Command, log: &Path) -> Result<Daemon, String> {
        register_cleanup();
        let out = File::create(log).map_err(|err| format!("{}: {err}", log.display()))?;
        let err = out.try_clone().map_err(|err| err.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|err| format!("starting {name}: {err} (is it installed? run scripts/test)"))?;
        // PostgreSQL's fast shutdown is SIGINT; SIGTERM would wait for clients.
        let signal = if name == "postgres" {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        RUNNING
            .lock()
            .expect("process list")
            .push((child.id(), signal));
        Ok(Daemon {
            name,
            pid: child.id(),
            log: log.to_path_buf(),
        })
    }

    /// Poll `ready` until it holds or `limit` passes; a failure (the limit
    /// passed, or the daemon exited first) quotes the end of its own log,
    /// so a readiness timeout never comes without its cause.
    pub fn wait_ready(
        &self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        // wait_for's bounded poll, ended early once the daemon is gone.
        let mut exited = false;
        let waited = wait_for(what, limit, || {
            if ready() {
                return true;
            }
            exited = !self.alive();
            exited
        });
        match waited {
            Ok(()) if !exited => Ok(()),
            Ok(()) => {
                Err(self.failure(&format!("{what}: {} exited before it was ready", self.name)))
            }
            Err(timeout) => Err(self.failure(&timeout)),
        }
    }

    /// `headline`, then the last lines of this daemon's log.
    pub fn failure(&self, headline: &str) -> String {
        format!(
            "{headline}\n--- the last lines of {} ({}):\n{}",
            self.name,
            self.log.display(),
            log_tail(&self.log, LOG_TAIL_LINES)
        )
    }

    /// Whether the process still runs (an exited child stays a zombie
    /// until the exit cleanup reaps it, so its pid is never reused before).
    fn alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        // The state follows the parenthesised command name: `pid (comm) S ...`.
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(
            state.and_then(|rest| rest.chars().next()),
            Some('Z' | 'X') | None
        )
    }
}

/// The last `lines` lines of the file at `path`, or why it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            if all.is_empty() {
                return "(the log is empty)".into();
            }
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read it: {err})"),
    }
}

/// Start a server logging to `log` and wait, bounded, until it accepts on
/// `port` of 127.0.0.1.
pub fn serve_on(
    name: &'static str,
    command: Command,
    log: &Path,
    port: u16,
    daemons: &mut Vec<Daemon>,
) -> Result<u16, String> {
    let daemon = Daemon::spawn(name, command, log)?;
    let waited = daemon.wait_ready(name, Duration::from_secs(30), || accepts(port));
    daemons.push(daemon);
    waited.map(|()| port)
}

/// Run as the `postgres` user when we are root (initdb and PgBouncer refuse
/// root), in `workdir`: a directory of its own it can enter, never the
/// inherited working directory (the clone, which may sit under a mode-700
/// home that `postgres` cannot enter).
pub fn as_postgres(mut command: Command, workdir: &Path) -> Command {
    command.current_dir(workdir);
    if let Some((uid, gid)) = postgres_ids() {
        command.uid(uid).gid(gid);
        command.env("HOME", "/var/lib/postgresql");
    }
    command
}

pub fn postgres_ids() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        return None;
    }
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

/// Hand a directory to the `postgres` user when we are root.
pub fn give_to_postgres(dir: &Path) -> Result<(), String> {
    if postgres_ids().is_none() {
        return Ok(());
    }
    let status = Command::new("chown")
        .arg("-R")
        .arg("postgres:postgres")
        .arg(dir)
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!("chown postgres {}", dir.display())),
    }
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    claim_port(|port| TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// A loopback UDP port nobody listens on, claimed as [`free_port`] does.
/// A free port whose Redis cluster bus port (10000 higher) is free too: a
/// cluster node on a port above 55535 refuses to start.
pub fn free_cluster_port() -> Result<u16, String> {
    for _ in 0..200 {
        let port = free_port()?;
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok(port);
        }
    }
    Err("no port with a free cluster bus port in 200 tries".into())
}

pub fn free_udp_port() -> Result<u16, String> {
    claim_port(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok())
}

/// Ports the tests give to servers: below the kernel's ephemeral range
/// (32768-60999 here), so no outgoing connection can take one as its source
/// port between the claim and the server's bind.
const CLAIMABLE: std::ops::Range<u16> = 20000..32000;

/// Locks held for the life of the process: one per claimed port.
static CLAIMED: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A port that binds now and that no other test process can claim: each
/// claim holds an flock on /tmp/vpc-probe-ports/PORT until this process
/// exits (the kernel drops it even on a crash), so parallel test binaries
/// never hand out the same port.
fn claim_port(binds: impl Fn(u16) -> bool) -> Result<u16, String> {
    let dir = Path::new("/tmp/vpc-probe-ports");
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for _ in 0..500 {
        let port = fastrand::u16(CLAIMABLE);
        let Ok(lock) = File::create(dir.join(port.to_string())) else {
            continue;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: flock(2) on a file descriptor this function owns.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked && binds(port) {
            CLAIMED.lock().map_err(|_| "port claims")?.push(lock);
            return Ok(port);
        }
    }
    Err("no free port to claim in 500 tries".into())
}

pub fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// True once a DNS server answers a query for the HAProxy name.
pub fn dns_answers(addr: SocketAddr) -> bool {
    dns_answer_count(addr, super::HAPROXY_NAME).is_some()
}

/// How many A records a DNS server answers for `name`; `None` when it
/// does not answer within 300 ms.
pub fn dns_answer_count(addr: SocketAddr, name: &str) -> Option<u16> {
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut answer = [0u8; 512];
    socket.send_to(&query, addr).ok()?;
    let (read, _) = socket.recv_from(&mut answer).ok()?;
    (read >= 12).then(|| u16::from_be_bytes([answer[6], answer[7]]))
}

/// Remove `dir` when the process exits, after its servers stopped.
pub fn remove_at_exit(dir: &Path) {
    register_cleanup();
    SCRATCH
        .lock()
        .expect("scratch list")
        .push(dir.to_path_buf());
}

/// Whether a test whose real part cannot run here may skip: never under
/// `CI=true`, where it must fail instead of passing silently. A skip is
/// said on stderr and written to [`skipped_list`], which scripts/test counts
/// and prints at the end of the run (the test harness hides stderr).
pub fn may_skip(why: &str) -> bool {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{why}: under CI=true this test must run, not skip");
    }
    eprintln!("skipping: {why}");
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let binary = std::env::args().next().unwrap_or_default();
    let binary = binary
        .rsplit('/')
        .next()
        .unwrap_or("?")
        .split('-')
        .next()
        .unwrap_or("?");
    let line = format!("{binary}::{test}: {why}\n");
    let list = skipped_list();
    if let Some(dir) = list.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list);
    if let Ok(mut file) = opened {
        use std::io::Write;
        let _ = file.write_all(line.as_bytes());
    }
    true
}

/// Where skips are listed, one line each: `binary::test: why` (target/tmp,
/// where scripts/test reads it).
pub fn skipped_list() -> std::path::PathBuf {
    let tmp = option_env!("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp"));
    tmp.join("skipped-tests.txt")
}

/// Poll `ready` until it holds or `limit` passes.
pub fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} was not ready within {limit:?}"))
}
