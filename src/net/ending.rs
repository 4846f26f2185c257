//! How and when a connection ended, as the client's socket saw it: the
//! peer's FIN (a read of zero bytes), a reset, or another socket error
//! (a keepalive that went unanswered). A held session learns of it the
//! moment its reader does, without polling.

use std::io;
use std::sync::OnceLock;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The way a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed its side: a read returned zero bytes.
    Fin,
    /// The peer, or something on the path, sent a reset.
    Reset,
    /// The kernel gave up: keepalive probes or retransmissions went
    /// unanswered (`ETIMEDOUT`).
    TimedOut,
    /// Another socket error.
    Failed,
}

impl End {
    /// The end an I/O error stands for, from its kind.
    pub fn of_error(err: &io::Error) -> End {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => End::Reset,
            io::ErrorKind::TimedOut => End::TimedOut,
            _ => End::Failed,
        }
    }
}

/// The first end a connection came to, and a signal for whoever waits on it.
#[derive(Debug, Default)]
pub struct Ending {
    first: OnceLock<(Instant, End)>,
    /// What the server said as it closed (PgBouncer's FATAL
    /// `client_idle_timeout`), when it said anything.
    said: OnceLock<String>,
    noticed: Notify,
}

impl Ending {
    /// When and how the connection ended, if it has.
    pub fn get(&self) -> Option<(Instant, End)> {
        self.first.get().copied()
    }

    /// Note an end; only the first counts (a FIN is often followed by a
    /// reset when the client writes into the closed socket).
    pub fn record(&self, end: End) {
        if self.first.set((Instant::now(), end)).is_ok() {
            self.noticed.notify_waiters();
        }
    }

    /// Note the server's last words, then the end they announced.
    pub fn record_said(&self, end: End, said: String) {
        let _ = self.said.set(said);
        self.record(end);
    }

    /// The server's last words, if it said any as it closed.
    pub fn said(&self) -> Option<&str> {
        self.said.get().map(String::as_str)
    }

    /// Wait until the connection has ended.
    pub async fn wait(&self) -> (Instant, End) {
        loop {
            let noticed = self.noticed.notified();
            if let Some(end) = self.get() {
                return end;
            }
            noticed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn errors_map_to_ends() {
        let of = |kind| End::of_error(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionReset), End::Reset);
        assert_eq!(of(io::ErrorKind::BrokenPipe), End::Reset);
        assert_eq!(of(io::ErrorKind::TimedOut), End::TimedOut);
        assert_eq!(of(io::ErrorKind::InvalidData), End::Failed);
    }

    #[tokio::test]
    async fn the_first_end_wakes_a_waiter_and_stays() {
        let ending = std::sync::Arc::new(Ending::default());
        let waiter = tokio::spawn({
            let ending = ending.clone();
            async move { ending.wait().await.1 }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        ending.record(End::Fin);
        ending.record(End::Reset);
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(woke.expect("woken").expect("joined"), End::Fin);
        assert_eq!(ending.get().map(|(_, end)| end), Some(End::Fin));
    }
}
