//! A TCP middlebox in front of a PostgreSQL port that misbehaves on large
//! transfers, as inspection appliances and broken proxies do: it alters
//! one byte inside a data message, or cuts the connection, once a given
//! volume has passed from the server. It reads the server's messages by
//! their framing, so clients must connect with `sslmode=disable`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// What the middlebox does once `after` bytes came from the server.
#[derive(Debug, Clone, Copy)]
pub enum Tamper {
    /// Alter one character inside the next CopyData ('d') message.
    Corrupt { after: usize },
    /// Close both sides of the connection.
    Cut { after: usize },
}

/// Listen on a free loopback port and relay each connection to `upstream`.
pub fn spawn(upstream: u16, tamper: Tamper) -> Result<u16, String> {
    let bound = super::fixture::spawn_relay(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], upstream)),
        |client, server| super::fixture::pump(client, server, Duration::ZERO),
        move |server, client| tamper_relay(server, client, tamper),
    )?;
    Ok(bound.port())
}

/// Server to client, message by message, tampering once.
fn tamper_relay(mut from: TcpStream, mut to: TcpStream, tamper: Tamper) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(60)));
    let (mut passed, mut done) = (0usize, false);
    loop {
        let mut head = [0u8; 5];
        if from.read_exact(&mut head).is_err() {
            break;
        }
        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        if from.read_exact(&mut body).is_err() {
            break;
        }
        match tamper {
            Tamper::Cut { after } if passed >= after => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            Tamper::Corrupt { after } if !done && passed >= after && head[0] == b'd' => {
                // Past the line's sequence number: one hex character.
                if let Some(byte) = body.get_mut(20) {
                    *byte = if *byte == b'0' { b'1' } else { b'0' };
                    done = true;
                }
            }
            _ => {}
        }
        passed += head.len() + body.len();
        // One write per message: two would meet Nagle and delayed ACKs.
        let message = [&head[..], &body[..]].concat();
        if to.write_all(&message).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
