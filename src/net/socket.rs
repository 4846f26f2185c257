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
    Ok(Duration::from_millis(u64::from(info.tcpi_last_ack_recv)))
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
}
