//! Servers that misbehave on purpose, each a thread on a loopback port:
//! they drip, flood, announce absurd lengths, reset, half-close, stall in
//! TLS, or truncate DNS. Every loop is bounded (by `LIFE` or by the peer
//! going away), so a test that ends leaves no busy thread behind.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// No hostile connection lives longer than this.
const LIFE: Duration = Duration::from_secs(40);

/// What a hostile server does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Once the client spoke, one byte of `text` per second, cycling.
    Drip(&'static [u8]),
    /// `prefix` once, then `filler` without end (until the peer leaves).
    Flood { prefix: &'static [u8], filler: u8 },
    /// Waits for the client to speak, then answers `bytes` and holds.
    Answer(&'static [u8]),
    /// Accepts and resets at once (SO_LINGER 0).
    Reset,
    /// Accepts, shuts its sending side, and keeps reading.
    HalfClose,
}

/// A hostile TCP server on a free loopback port.
pub fn spawn(behaviour: Behaviour) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a hostile server");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, behaviour));
        }
    });
    port
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let born = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    match behaviour {
        Behaviour::Drip(text) => {
            read_something(&mut stream);
            for byte in text.iter().cycle() {
                if born.elapsed() > LIFE || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Behaviour::Flood { prefix, filler } => {
            read_something(&mut stream);
            let chunk = [filler; 64 * 1024];
            if stream.write_all(prefix).is_err() {
                return;
            }
            while born.elapsed() < LIFE && stream.write_all(&chunk).is_ok() {}
        }
        Behaviour::Answer(bytes) => {
            read_something(&mut stream);
            let _ = stream.write_all(bytes);
            hold(&mut stream, born);
        }
        Behaviour::Reset => {
            let _ = socket2_linger_zero(&stream);
        }
        Behaviour::HalfClose => {
            let _ = stream.shutdown(Shutdown::Write);
            hold(&mut stream, born);
        }
    }
}

/// Wait (bounded) for the client's first bytes.
fn read_something(stream: &mut TcpStream) {
    let mut buffer = [0u8; 4096];
    for _ in 0..25 {
        match stream.read(&mut buffer) {
            Ok(read) if read > 0 => return,
            Ok(_) => return,
            Err(_) => continue,
        }
    }
}

/// Keep the connection open, reading and discarding, until the peer
/// leaves or `LIFE` passes.
fn hold(stream: &mut TcpStream, born: Instant) {
    let mut buffer = [0u8; 4096];
    while born.elapsed() < LIFE {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            _ => continue,
        }
    }
}

/// Close with an RST: SO_LINGER on with a zero timeout, then drop.
fn socket2_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this thread owns, with a valid struct.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A DNS server on one port: over UDP it answers every query with the TC
/// bit set and no records; over TCP it sends a length prefix and then
/// bytes without end. Returns the address for `[suite] resolver`.
pub fn spawn_dns_truncating() -> SocketAddr {
    let (udp, port) = loop {
        let tcp_probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp_probe.local_addr().expect("address").port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            std::thread::spawn(move || {
                for stream in tcp_probe.incoming().flatten() {
                    std::thread::spawn(move || endless_dns_answer(stream));
                }
            });
            break (udp, port);
        }
    };
    std::thread::spawn(move || {
        let mut query = [0u8; 512];
        while let Ok((read, from)) = udp.recv_from(&mut query) {
            if read < 12 {
                continue;
            }
            let mut answer = query[..read].to_vec();
            answer[2] = 0x80 | 0x02 | (query[2] & 0x01); // QR, TC, RD copied
            answer[3] = 0x80; // RA, NOERROR
            let _ = udp.send_to(&answer, from);
        }
    });
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn endless_dns_answer(mut stream: TcpStream) {
    let born = Instant::now();
    read_something(&mut stream);
    let _ = stream.write_all(&[0xff, 0xff]);
    let chunk = [0x41u8; 16 * 1024];
    while born.elapsed() < LIFE && stream.write_all(&chunk).is_ok() {}
}

/// A DNS server (UDP, on the calling thread's namespace's loopback) that
/// answers every query NXDOMAIN, as a VPC's resolver does for a private
/// name whose zone does not answer there. Bounded by `LIFE` per query
/// gap: the thread ends when no query came for that long.
pub fn spawn_dns_nxdomain() -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a DNS port");
    let address = udp.local_addr().expect("address");
    let _ = udp.set_read_timeout(Some(LIFE));
    std::thread::spawn(move || {
        let mut query = [0u8; 512];
        while let Ok((read, from)) = udp.recv_from(&mut query) {
            if read < 12 {
                continue;
            }
            let mut answer = query[..read].to_vec();
            answer[2] = 0x80 | (query[2] & 0x01); // QR, RD copied
            answer[3] = 0x80 | 0x03; // RA, NXDOMAIN
            let _ = udp.send_to(&answer, from);
        }
    });
    address
}
