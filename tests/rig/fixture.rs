//! Small servers that stand in where nothing installable fits: anisette-v3
//! (its documented responses), an HTTP service answering 503, a server that
//! accepts and never answers, and a UDP port that swallows DNS queries.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// What a fixture server does with a connection.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// anisette-v3-server: `GET /v3/client_info` and `GET /`.
    Anisette,
    /// Every request answers 503.
    Unavailable,
    /// Accepts, reads nothing, says nothing.
    Silent,
    /// Accepts, says nothing, and closes each connection (FIN) after one
    /// idle second: a server with an idle timeout of its own.
    ClosesIdle,
    /// Speaks first, like SSH on a port the check thought was HTTP.
    SshBanner,
    /// The ECS task metadata endpoint v4: `GET /task` answers AWS's
    /// documented Fargate example.
    TaskMetadata,
    /// A PostgreSQL server (no TLS, no password) that answers every query
    /// with one row of zero columns, as no real server would.
    PgZeroColumns,
}

/// Connections a silent server holds at most; older ones are closed.
const SILENT_HOLD: usize = 256;

/// A fixture on a free loopback port.
pub fn spawn(mode: Mode) -> Result<u16, String> {
    Ok(spawn_at(mode, SocketAddr::from(([127, 0, 0, 1], 0)))?.port())
}

/// A fixture on `addr`, bound by the calling thread (so a caller inside a
/// network namespace serves there).
pub fn spawn_at(mode: Mode, addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|err| format!("{addr}: {err}"))?;
    let bound = listener.local_addr().map_err(|err| err.to_string())?;
    std::thread::spawn(move || {
        let mut held = std::collections::VecDeque::new();
        for stream in listener.incoming().flatten() {
            match mode {
                Mode::Silent => {
                    held.push_back(stream);
                    if held.len() > SILENT_HOLD {
                        held.pop_front();
                    }
                }
                Mode::SshBanner => {
                    let mut stream = stream;
                    let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
                    held.push_back(stream);
                    if held.len() > SILENT_HOLD {
                        held.pop_front();
                    }
                }
                Mode::Anisette | Mode::Unavailable | Mode::TaskMetadata => {
                    std::thread::spawn(move || serve(stream, mode));
                }
                Mode::ClosesIdle => {
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(1));
                        drop(stream);
                    });
                }
                Mode::PgZeroColumns => {
                    std::thread::spawn(move || pg_zero_columns(stream));
                }
            }
        }
    });
    Ok(bound)
}

pub fn spawn_udp_black_hole() -> Result<SocketAddr, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
    let addr = socket.local_addr().map_err(|err| err.to_string())?;
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while socket.recv_from(&mut buffer).is_ok() {}
    });
    Ok(addr)
}

const TASK_METADATA: &str = include_str!("../data/ecs-task-metadata-v4.json");

const CLIENT_INFO: &str = r#"{"client_info":"<MacBookPro13,2> <macOS;13.1;22C65> <com.apple.AuthKit/1 (com.apple.dt.Xcode/3594.4.19)>","user_agent":"akd/1.0 CFNetwork/808.1.4"}"#;

const HEADERS: &str = r#"{"X-Apple-I-Client-Time":"2026-11-21T10:00:00Z","X-Apple-I-MD":"AAAABQAAABBmZmZmZmZmZmZmZmZmZmZm","X-Apple-I-MD-LU":"5B4A1F0C3D2E","X-Apple-I-MD-M":"dGVzdC1tYWNoaW5lLWlk","X-Apple-I-MD-RINFO":"17106176","X-Apple-I-SRL-NO":"0","X-Apple-I-TimeZone":"UTC","X-Apple-Locale":"en_US","X-MMe-Client-Info":"<MacBookPro13,2> <macOS;13.1;22C65> <com.apple.AuthKit/1 (com.apple.dt.Xcode/3594.4.19)>","X-Mme-Device-Id":"B1A2C3D4-0000-4000-8000-000000000001"}"#;

fn serve(mut stream: TcpStream, mode: Mode) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, headers, body) = match (mode, method, path) {
        (Mode::Silent | Mode::SshBanner | Mode::PgZeroColumns, _, _) => return,
        (Mode::Unavailable, _, _) => (
            "503 Service Unavailable",
            "",
            r#"{"error":"no anisette data"}"#,
        ),
        (Mode::TaskMetadata, "GET", path) if path.ends_with("/task") => {
            ("200 OK", "", TASK_METADATA)
        }
        (Mode::TaskMetadata, _, _) => ("404 Not Found", "", "{}"),
        (_, "GET", "/v3/client_info") => ("200 OK", "", CLIENT_INFO),
        (_, "GET", "/") => (
            "200 OK",
            "X-Apple-I-MD: AAAABQ\r\nX-Apple-I-MD-M: dGVzdA\r\n",
            HEADERS,
        ),
        (_, "GET", _) => ("404 Not Found", "", r#"{"error":"not found"}"#),
        _ => ("400 Bad Request", "", "bad request"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// One PostgreSQL backend message: type byte, length, payload.
fn pg_message(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(payload);
    message
}

/// Read one length-prefixed frontend message body (after `skip` type bytes).
fn pg_read(stream: &mut TcpStream, skip: usize) -> Option<Vec<u8>> {
    let mut head = vec![0u8; skip + 4];
    stream.read_exact(&mut head).ok()?;
    let length = u32::from_be_bytes(head[skip..].try_into().ok()?) as usize;
    let mut body = vec![0u8; length.checked_sub(4)?.min(1 << 16)];
    stream.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

fn pg_zero_columns(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(mut startup) = pg_read(&mut stream, 0) else {
        return;
    };
    if startup.get(4..8) == Some(&[0x04, 0xd2, 0x16, 0x2f]) {
        // SSLRequest: no TLS here; the startup message follows.
        let _ = stream.write_all(b"N");
        let Some(next) = pg_read(&mut stream, 0) else {
            return;
        };
        startup = next;
    }
    drop(startup);
    let mut hello = pg_message(b'R', &0u32.to_be_bytes());
    hello.extend(pg_message(b'Z', b"I"));
    let _ = stream.write_all(&hello);
    while let Some(message) = pg_read(&mut stream, 1) {
        if message[0] != b'Q' {
            return; // Terminate, or anything else: hang up.
        }
        let mut answer = pg_message(b'T', &0u16.to_be_bytes());
        answer.extend(pg_message(b'D', &0u16.to_be_bytes()));
        answer.extend(pg_message(b'C', b"SELECT 1\0"));
        answer.extend(pg_message(b'Z', b"I"));
        let _ = stream.write_all(&answer);
    }
}

/// Read until the end of the request head, at most 16 KiB; a request that
/// is not HTTP (a PostgreSQL startup packet, say) yields what arrived.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while head.len() < 16 * 1024 {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || !head.starts_with(b"G") {
            break;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A TCP proxy to `upstream` that holds every chunk for `delay` in each
/// direction: added latency on a path, since this kernel has no netem.
/// The listener is bound by the calling thread and connections are made by
/// threads it spawns, so a caller inside a network namespace proxies there.
pub fn spawn_delay_proxy(
    listen: SocketAddr,
    upstream: SocketAddr,
    delay: Duration,
) -> Result<SocketAddr, String> {
    spawn_relay(
        listen,
        upstream,
        move |client, server| pump(client, server, delay),
        move |server, client| pump(server, client, delay),
    )
}

/// A TCP relay on `listen` to `upstream`: per connection, `up` carries
/// client to server and `down` server to client, each on its own thread.
pub fn spawn_relay(
    listen: SocketAddr,
    upstream: SocketAddr,
    up: impl Fn(TcpStream, TcpStream) + Clone + Send + 'static,
    down: impl Fn(TcpStream, TcpStream) + Clone + Send + 'static,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(listen).map_err(|err| format!("{listen}: {err}"))?;
    let bound = listener.local_addr().map_err(|err| err.to_string())?;
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
                continue;
            };
            let (Ok(client_rx), Ok(server_rx)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            let (up, down) = (up.clone(), down.clone());
            std::thread::spawn(move || up(client_rx, server));
            std::thread::spawn(move || down(server_rx, client));
        }
    });
    Ok(bound)
}

/// Copy `from` to `to`, each chunk late by `delay`, until either side ends
/// (or a minute of silence).
pub fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer) {
        if read == 0 {
            break;
        }
        std::thread::sleep(delay);
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The task role's credentials the container credentials fixture serves.
pub const TASK_ACCESS_KEY: &str = "ASIAVPCPROBETASK";
pub const TASK_SECRET_KEY: &str = "task-role-secret";
pub const TASK_TOKEN: &str = "task-role-token";

/// Serves the ECS container credentials document (as the task's agent at
/// 169.254.170.2 does) once per request, on loopback; counts the requests.
pub fn container_credentials() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/v2/credentials/task",
        listener.local_addr().unwrap()
    );
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = format!(
                r#"{{"RoleArn":"arn:aws:iam::123456789012:role/vpc-probe-task","AccessKeyId":"{TASK_ACCESS_KEY}","SecretAccessKey":"{TASK_SECRET_KEY}","Token":"{TASK_TOKEN}","Expiration":"2099-01-01T00:00:00Z"}}"#
            );
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = (&stream).write_all(answer.as_bytes());
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (url, served)
}

/// A relay to `upstream` on a free loopback port that forwards until its
/// switch is set, then freezes: nothing more passes either way, every
/// socket (and every new connection) is held open, as a hung proxy does.
/// A frozen connection is let go after two minutes.
pub fn spawn_freezing_relay(
    upstream: u16,
) -> Result<(u16, std::sync::Arc<std::sync::atomic::AtomicBool>), String> {
    let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (up, down) = (frozen.clone(), frozen.clone());
    let bound = spawn_relay(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], upstream)),
        move |client, server| pump_until_frozen(client, server, &up),
        move |server, client| pump_until_frozen(server, client, &down),
    )?;
    Ok((bound.port(), frozen))
}

/// Copy `from` to `to` in small steps until `frozen`, then hold both.
fn pump_until_frozen(
    mut from: TcpStream,
    mut to: TcpStream,
    frozen: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buffer = [0u8; 16 * 1024];
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if frozen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) if !frozen.load(Ordering::SeqCst) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The ECS task metadata endpoint of a task in availability zone `zone`
/// and subnet `cidr` (AWS's documented example, those fields and the
/// task's id changed); its base URL, as ECS_CONTAINER_METADATA_URI_V4.
pub fn task_metadata_in(zone: &str, cidr: &str, task: &str) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
    let port = listener.local_addr().map_err(|err| err.to_string())?.port();
    let document = TASK_METADATA
        .replace("us-west-2a", zone)
        .replace("\"192.0.2.0/24\"", &format!("\"{cidr}\""))
        .replace("e9028f8d5d8e4f258373e7b93ce9a3c3", task);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Some(head) = read_head(&mut stream) else {
                continue;
            };
            let task = head.lines().next().is_some_and(|l| l.contains("/task "));
            let (status, body) = if task {
                ("200 OK", document.as_str())
            } else {
                ("404 Not Found", "{}")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Ok(format!("http://127.0.0.1:{port}/v4/{task}"))
}
