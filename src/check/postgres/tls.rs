//! The TLS connector tokio-postgres runs inside its startup: a rustls
//! handshake (tokio-rustls, the same `ClientConfig` every check uses) that
//! records how long it took, whether it failed, and the protocol version
//! and cipher it agreed, then guards the messages above it. Written here
//! rather than taken from tokio-postgres-rustls because that crate hides
//! its stream type, so nothing could ask the session what was negotiated.

use crate::net::frames::Frames;
use crate::outcome::{Fault, Reason};
use futures_util::future::BoxFuture;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect};

/// What the handshake inside a startup did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TlsState {
    pub(super) spent: Option<Duration>,
    pub(super) failed: bool,
    /// e.g. `TLSv1_3`, once a handshake completed.
    pub(super) version: Option<&'static str>,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub(super) cipher: Option<&'static str>,
}

/// A TLS connector that records what the handshake did: tokio-postgres
/// runs it inside its startup, out of our sight.
pub(super) struct TimedTls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    state: Arc<Mutex<TlsState>>,
}

pub(super) fn timed_tls(
    config: &Arc<ClientConfig>,
    host: &str,
    state: Arc<Mutex<TlsState>>,
) -> Result<TimedTls, Fault> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|err| Fault::new(Reason::TlsError, format!("{host}: {err}")))?;
    Ok(TimedTls {
        config: config.clone(),
        name,
        state,
    })
}

impl<S> TlsConnect<S> for TimedTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Frames<PgTls<S>>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Frames<PgTls<S>>>>;

    fn connect(self, stream: S) -> Self::Future {
        let start = Instant::now();
        let connector = tokio_rustls::TlsConnector::from(self.config);
        let handshake = connector.connect(self.name, stream);
        let state = self.state;
        Box::pin(async move {
            let result = handshake.await;
            let mut state = state.lock().expect("tls state lock");
            state.spent = Some(start.elapsed());
            state.failed = result.is_err();
            if let Ok(tls) = &result {
                let (_, connection) = tls.get_ref();
                state.version = connection.protocol_version().and_then(|v| v.as_str());
                state.cipher = connection
                    .negotiated_cipher_suite()
                    .and_then(|suite| suite.suite().as_str());
            }
            // Above TLS, the messages are guarded again.
            result.map(|tls| Frames::messages(PgTls(tls)))
        })
    }
}

/// A TLS session under tokio-postgres.
pub(super) struct PgTls<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PgTls<S> {
    /// No channel binding, so SCRAM-SHA-256 (never -PLUS) is offered, as
    /// before: tokio-postgres-rustls 0.13 parsed the certificate as a
    /// TbsCertificate, which never succeeds, and so offered none either.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for Frames<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.get_ref().channel_binding()
    }
}
