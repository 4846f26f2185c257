//! A transparent stream wrapper that remembers what the server said first,
//! so "closed before the server spoke" and "another protocol answered" can
//! be told apart from the bytes themselves, and how the connection ended
//! ([`Ending`]), so a held session can say how it died.

use super::ending::{End, Ending};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many leading bytes of the server's answer are kept.
const PREFIX: usize = 16;

/// What came back over a connection, shared with the code that classifies.
#[derive(Debug, Default)]
pub struct Heard {
    bytes: AtomicU64,
    prefix: Mutex<Vec<u8>>,
    ending: Ending,
}

impl Heard {
    /// Total bytes received from the server.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The first byte the server sent, if it sent anything.
    pub fn first_byte(&self) -> Option<u8> {
        self.prefix().first().copied()
    }

    /// Up to the first 16 bytes the server sent.
    pub fn prefix(&self) -> Vec<u8> {
        self.prefix.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The first bytes as printable text, e.g. `"-ERR unknown co"`, for a
    /// detail (never a secret: these are the server's words).
    pub fn shown(&self) -> String {
        let text: String = self
            .prefix()
            .iter()
            .flat_map(|byte| std::ascii::escape_default(*byte))
            .map(char::from)
            .collect();
        format!("\"{text}\"")
    }

    /// What the bytes say about who answered, for a protocol whose replies
    /// may start with one of `first_bytes`.
    pub fn spoke(&self, first_bytes: &[u8]) -> Spoke {
        match self.first_byte() {
            None => Spoke::Nothing,
            Some(byte) if first_bytes.contains(&byte) => Spoke::Protocol,
            Some(byte) => Spoke::Other(byte),
        }
    }

    /// What was heard after the first `n` bytes, e.g. the TLS records
    /// after PostgreSQL's one-byte answer to SSLRequest.
    pub fn skip(&self, n: usize) -> Heard {
        let prefix = self.prefix();
        Heard {
            bytes: AtomicU64::new(self.bytes().saturating_sub(n as u64)),
            prefix: Mutex::new(prefix.get(n..).unwrap_or_default().to_vec()),
            ending: Ending::default(),
        }
    }

    /// How and when the connection ended, as reads and writes saw it.
    pub fn ending(&self) -> &Ending {
        &self.ending
    }

    /// What a server that sent `bytes` left behind, as a classifier's
    /// test gives it.
    pub fn of(bytes: &[u8]) -> Heard {
        let heard = Heard::default();
        heard.record(bytes);
        heard
    }

    fn record(&self, fresh: &[u8]) {
        if let Ok(mut prefix) = self.prefix.lock() {
            let room = PREFIX.saturating_sub(prefix.len());
            prefix.extend_from_slice(&fresh[..room.min(fresh.len())]);
        }
        self.bytes.fetch_add(fresh.len() as u64, Ordering::Relaxed);
    }
}

/// Who answered, from the first byte heard above TLS: the evidence every
/// kind consults after the protocol's own typed errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoke {
    /// Not a byte: the server hung up or stayed silent.
    Nothing,
    /// A byte this protocol's replies start with.
    Protocol,
    /// Another protocol answered (an SSH banner, a TLS record, HTML...).
    Other(u8),
}

/// The most a server may send on one probe connection unless a kind says
/// otherwise: a probe reads health answers, not downloads, and a hostile
/// server that streams without end must not grow the probe's memory.
pub const MAX_ANSWER: u64 = 16 << 20;

/// A stream that records in [`Heard`] what it reads, and refuses to read
/// more than its limit.
#[derive(Debug)]
pub struct Wire<S> {
    inner: S,
    heard: Arc<Heard>,
    limit: u64,
}

impl<S> Wire<S> {
    /// A wire capped at [`MAX_ANSWER`]: every connection's reads are
    /// bounded unless its kind asks for more with [`Wire::with_limit`].
    pub fn new(inner: S) -> (Self, Arc<Heard>) {
        Self::with_limit(inner, MAX_ANSWER)
    }

    /// A wire that fails reads once the server has sent more than `limit` bytes.
    pub fn with_limit(inner: S, limit: u64) -> (Self, Arc<Heard>) {
        let heard = Arc::new(Heard::default());
        (
            Wire {
                inner,
                heard: heard.clone(),
                limit,
            },
            heard,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.heard.bytes() > self.limit {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the server sent more than {} bytes: not an answer a probe expects",
                    self.limit
                ),
            )));
        }
        let (before, room) = (buf.filled().len(), buf.remaining());
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh = &buf.filled()[before..];
        if !fresh.is_empty() {
            self.heard.record(fresh);
        }
        match &polled {
            Poll::Ready(Ok(())) if fresh.is_empty() && room > 0 => {
                self.heard.ending.record(End::Fin)
            }
            Poll::Ready(Err(err)) => self.heard.ending.record(End::of_error(err)),
            _ => {}
        }
        polled
    }
}

/// Writes pass through; a failed write is an end too (a reset met by the
/// first write after a long silence).
impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.noted(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Wire<S> {
    /// Note a failed write as the connection's end.
    fn noted<T>(&self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(err)) = &polled {
            self.heard.ending.record(End::of_error(err));
        }
        polled
    }
}

/// Writes pass straight through to `inner`: a read-side wrapper (`Frames`)
/// only watches what the server sends.
macro_rules! write_through {
    ($wrapper:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<S> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_stop_at_the_limit() {
        let (client, mut server) = tokio::io::duplex(64);
        let (mut wire, _) = Wire::with_limit(client, 100);
        tokio::spawn(async move { while server.write_all(&[b'x'; 64]).await.is_ok() {} });
        let mut sink = Vec::new();
        let err = wire.read_to_end(&mut sink).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(sink.len() <= 164, "{}", sink.len());
    }

    /// ARCHITECTURE.md: "Reads are bounded": a wire made the plain way is
    /// capped, so no caller can forget the cap.
    #[tokio::test]
    async fn a_plain_wire_is_capped_at_max_answer() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let (mut wire, heard) = Wire::new(client);
        tokio::spawn(async move { while server.write_all(&[b'x'; 64 * 1024]).await.is_ok() {} });
        let mut sink = Vec::new();
        let err = wire.read_to_end(&mut sink).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(heard.bytes() <= MAX_ANSWER + 64 * 1024, "{}", heard.bytes());
    }

    #[tokio::test]
    async fn a_zero_byte_read_is_the_peers_fin() {
        let (client, server) = tokio::io::duplex(64);
        let (mut wire, heard) = Wire::new(client);
        assert_eq!(heard.ending().get(), None);
        drop(server);
        let mut sink = Vec::new();
        wire.read_to_end(&mut sink).await.unwrap();
        assert_eq!(heard.ending().get().map(|(_, end)| end), Some(End::Fin));
    }

    #[tokio::test]
    async fn records_first_byte_and_count() {
        let (client, mut server) = tokio::io::duplex(64);
        let (mut wire, heard) = Wire::new(client);
        assert_eq!(heard.first_byte(), None);
        server.write_all(b"HTTP/1.1 200").await.unwrap();
        drop(server);
        let mut all = Vec::new();
        wire.read_to_end(&mut all).await.unwrap();
        assert_eq!(heard.first_byte(), Some(b'H'));
        assert_eq!(heard.bytes(), 12);
        assert_eq!(heard.prefix(), b"HTTP/1.1 200");
        assert_eq!(heard.skip(5).prefix(), b"1.1 200");
        assert_eq!(heard.shown(), "\"HTTP/1.1 200\"");
    }
}
