//! The TLS adaptor tokio-postgres runs inside its startup: it times the
//! handshake and guards the messages above it.

use crate::net::frames::Frames;
use crate::outcome::{Fault, Reason};
use futures_util::future::BoxFuture;
use rustls::ClientConfig;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TlsState {
    pub(super) spent: Option<Duration>,
    pub(super) failed: bool,
}

/// A TLS connector that records how long the handshake took and whether it
/// failed: tokio-postgres runs it inside its startup, out of our sight.
pub(super) struct TimedTls<T> {
    inner: T,
    state: Arc<Mutex<TlsState>>,
}

pub(super) fn timed_tls<S>(
    config: &Arc<ClientConfig>,
    host: &str,
    state: Arc<Mutex<TlsState>>,
) -> Result<TimedTls<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>, Fault>
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    let mut make = MakeRustlsConnect::new(ClientConfig::clone(config));
    let inner = MakeTlsConnect::<S>::make_tls_connect(&mut make, host)
        .map_err(|err| Fault::new(Reason::TlsError, format!("{host}: {}", err.into())))?;
    Ok(TimedTls { inner, state })
}

impl<S, T> TlsConnect<S> for TimedTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send,
    T::Error: Send,
{
    type Stream = Frames<T::Stream>;
    type Error = T::Error;
    type Future = BoxFuture<'static, Result<Frames<T::Stream>, T::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        let start = Instant::now();
        let handshake = self.inner.connect(stream);
        let state = self.state;
        Box::pin(async move {
            let result = handshake.await;
            let mut state = state.lock().expect("tls state lock");
            state.spent = Some(start.elapsed());
            state.failed = result.is_err();
            // Above TLS, the messages are guarded again.
            result.map(Frames::messages)
        })
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for Frames<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.get_ref().channel_binding()
    }
}
