//! A guard for PostgreSQL's length-prefixed backend messages: the
//! protocol library reserves a message's whole announced length before it
//! reads it, so a hostile server announcing 1 GiB would make the probe
//! allocate 1 GiB. The guard follows the message framing as bytes pass
//! and refuses any message longer than the probe could need.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The longest backend message a probe accepts: far above any answer its
/// queries get, far below what would hurt a 512 MiB task.
pub const MAX_MESSAGE: u32 = 64 << 20;

/// Where the guard is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The one-byte answer to an SSLRequest comes first.
    SslAnswer,
    /// Collecting a message header (tag and 4-byte length).
    Header { have: usize },
    /// Inside a message body: this many bytes still to pass.
    Body(u64),
    /// TLS records follow: the guard above TLS takes over.
    Off,
}

/// A stream that fails reads when a backend message is too long.
#[derive(Debug)]
pub struct Frames<S> {
    inner: S,
    state: State,
    header: [u8; 5],
}

impl<S> Frames<S> {
    /// A stream of backend messages from its first byte.
    pub fn messages(inner: S) -> Self {
        Frames {
            inner,
            state: State::Header { have: 0 },
            header: [0; 5],
        }
    }

    /// A stream whose first byte answers an SSLRequest: after `S` TLS
    /// records follow (not guarded here), after `N` messages do.
    pub fn after_ssl_request(inner: S) -> Self {
        Frames {
            state: State::SslAnswer,
            ..Frames::messages(inner)
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Follow the framing over `fresh`; an error names the bad length.
    fn follow(&mut self, fresh: &[u8]) -> io::Result<()> {
        let mut rest = fresh;
        while !rest.is_empty() {
            match self.state {
                State::Off => return Ok(()),
                State::SslAnswer => {
                    self.state = if rest[0] == b'S' {
                        State::Off
                    } else {
                        State::Header { have: 0 }
                    };
                    rest = &rest[1..];
                }
                State::Body(left) => {
                    let passed = left.min(rest.len() as u64);
                    rest = &rest[passed as usize..];
                    self.state = match left - passed {
                        0 => State::Header { have: 0 },
                        more => State::Body(more),
                    };
                }
                State::Header { have } => {
                    self.header[have] = rest[0];
                    rest = &rest[1..];
                    self.state = match have + 1 {
                        5 => self.body()?,
                        have => State::Header { have },
                    };
                }
            }
        }
        Ok(())
    }

    fn body(&self) -> io::Result<State> {
        let length = u32::from_be_bytes([
            self.header[1],
            self.header[2],
            self.header[3],
            self.header[4],
        ]);
        if !(4..=MAX_MESSAGE).contains(&length) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the server announced a {length}-byte message (type {:?}); a probe accepts at most {MAX_MESSAGE}",
                    char::from(self.header[0])
                ),
            ));
        }
        Ok(match length - 4 {
            0 => State::Header { have: 0 },
            body => State::Body(u64::from(body)),
        })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Frames<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh = buf.filled()[before..].to_vec();
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(self.follow(&fresh)),
            other => other,
        }
    }
}

super::wire::write_through!(Frames);

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, length: u32) -> Vec<u8> {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0, length.saturating_sub(4) as usize));
        bytes
    }

    #[test]
    fn ordinary_messages_pass_in_any_split() {
        let mut stream = message(b'R', 8);
        stream.extend(message(b'Z', 5));
        for split in 1..stream.len() {
            let mut frames = Frames::messages(());
            frames.follow(&stream[..split]).unwrap();
            frames.follow(&stream[split..]).unwrap();
            assert_eq!(frames.state, State::Header { have: 0 });
        }
    }

    #[test]
    fn a_gigabyte_announcement_is_refused_before_anything_is_reserved() {
        let mut frames = Frames::messages(());
        let mut header = vec![b'R'];
        header.extend_from_slice(&(1u32 << 30).to_be_bytes());
        let err = frames.follow(&header).unwrap_err();
        assert!(err.to_string().contains("1073741824-byte message"), "{err}");
    }

    #[test]
    fn after_s_the_tls_records_are_not_framed_here() {
        let mut frames = Frames::after_ssl_request(());
        frames
            .follow(&[b'S', 0x16, 0xff, 0xff, 0xff, 0xff])
            .unwrap();
        assert_eq!(frames.state, State::Off);
        let mut plain = Frames::after_ssl_request(());
        let mut after_n = vec![b'N'];
        after_n.extend_from_slice(&[b'E', 0x7f, 0xff, 0xff, 0xff]);
        assert!(plain.follow(&after_n).is_err());
    }
}
