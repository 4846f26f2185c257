//! The TCP socket facts and options a held session needs: keepalives
//! (`tcp_keepalive`), and how long ago the peer last acknowledged
//! anything, which proves a quiet connection alive without sending a byte
//! of payload.

use socket2::{SockRef, TcpKeepalive};
use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Keepalive probes after `every` of silence, then every `every`; the
/// kernel's probe count (9 on Linux) before it gives up.
pub fn keep_alive(socket: &impl AsFd, every: Duration) -> io::Result<()> {
    let every = every.max(Duration::from_secs(1));
    let params = TcpKeepalive::new().with_time(every).with_interval(every);
    SockRef::from(socket).set_tcp_keepalive(&params)
}

/// How long ago the peer's last acknowledgement arrived (`tcpi_last_ack_recv`).
/// A keepalive probe's answer is such an acknowledgement, so after
/// [`keep_alive`] this age falls back to zero on a live path.
pub fn last_ack_age(socket: &impl AsRawFd) -> io::Result<Duration> {
    let info = tcp_info(socket)?;
    Ok(Duration::from_millis(u64::from(info.tcpi_last_ack_recv)))
}

/// What the kernel's TCP state machine says of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    /// The peer sent its FIN (CLOSE_WAIT, LAST_ACK, CLOSING) or the
    /// connection is gone (CLOSE): a held session that can no longer work.
    PeerClosed,
    /// Any other state (FIN_WAIT, TIME_WAIT, SYN_*): not one a held
    /// session is in.
    Other,
}

/// The connection's state (`tcpi_state`): a quiet connection whose peer
/// closed still acknowledges keepalives, but its state says CLOSE_WAIT.
pub fn tcp_state(socket: &impl AsRawFd) -> io::Result<TcpState> {
    let info = tcp_info(socket)?;
    Ok(match i32::from(info.tcpi_state) {
        1 => TcpState::Established,
        7..=9 | 11 => TcpState::PeerClosed,
        _ => TcpState::Other,
    })
}

/// One `getsockopt(TCP_INFO)`: the one unsafe call of the crate's own.
fn tcp_info(socket: &impl AsRawFd) -> io::Result<libc::tcp_info> {
    // SAFETY: `tcp_info` is plain old data, zeroed is a valid value, and
    // the kernel writes at most `len` bytes into it; the descriptor is
    // borrowed from a live socket for the length of the call.
    let (info, result) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let result = libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (info, result)
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn a_fresh_connection_was_acknowledged_just_now() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let _server = listener.accept().await.unwrap();
        keep_alive(&client, Duration::from_secs(30)).unwrap();
        let age = last_ack_age(&client).unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
    }

    #[tokio::test]
    async fn keepalive_answers_refresh_the_acknowledgement() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let _server = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(last_ack_age(&client).unwrap() >= Duration::from_secs(1));
        keep_alive(&client, Duration::from_secs(1)).unwrap();
        let mut fresh = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if last_ack_age(&client).unwrap() < Duration::from_millis(500) {
                fresh = true;
                break;
            }
        }
        assert!(fresh, "no keepalive answer within 4 s");
    }

    #[tokio::test]
    async fn a_peer_that_closed_shows_in_the_state() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(tcp_state(&client).unwrap(), TcpState::Established);
        drop(server);
        let mut closed = false;
        for _ in 0..50 {
            if tcp_state(&client).unwrap() == TcpState::PeerClosed {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "CLOSE_WAIT within 1 s of the peer's close");
    }
}
