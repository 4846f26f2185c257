//! Opening a session (startup, TLS, authentication, each timed) and
//! closing it: terminated and awaited, so no server session is left behind.

use super::classify::{classify, Step};
use super::tls::{timed_tls, TlsState};
use super::{PostgresSpec, Session, SslMode};
use crate::check::Probe;
use crate::net::ending::End;
use crate::net::frames::Frames;
use crate::net::wire::{Heard, Wire};
use crate::outcome::{Failure, Fault, Phase, Reason};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

impl PostgresSpec {
    /// Startup, TLS and authentication; TLS time is split out of auth.
    pub(super) async fn open(
        &self,
        probe: &mut Probe<'_>,
        stream: TcpStream,
    ) -> Result<Session, Failure> {
        let (wire, heard) = Wire::with_limit(stream, self.read_limit());
        let tls_state = Arc::new(Mutex::new(TlsState::default()));
        let opened = probe
            .phase(Phase::Auth, self.startup(wire, &heard, &tls_state))
            .await;
        let state = *tls_state.lock().expect("tls state lock");
        match state.spent {
            Some(spent) => {
                probe.move_time(Phase::Auth, Phase::Tls, spent);
                match state.version {
                    Some(version) if !state.failed => {
                        probe.handshake(version, state.cipher.map(str::to_string))
                    }
                    _ => probe.observe("tls", "failed"),
                }
            }
            None => probe.observe("tls", "off"),
        }
        let (client, driver) = opened?;
        Ok(Session {
            client,
            driver,
            heard,
        })
    }

    pub(super) async fn startup(
        &self,
        wire: Wire<TcpStream>,
        heard: &Arc<Heard>,
        tls_state: &Arc<Mutex<TlsState>>,
    ) -> Result<(Client, Driver), Fault> {
        let mut config = self.config();
        if let Some(iam) = &self.iam {
            let token = iam.token(&self.host, self.port, &self.user).await?;
            config.password(token.expose());
        }
        let opened = match &self.tls {
            Some(tls) => {
                let name = tls.name(&self.host);
                let connect = timed_tls(&tls.config, name, tls_state.clone())?;
                let opened = config
                    .connect_raw(Frames::after_ssl_request(wire), connect)
                    .await;
                opened.map(|(client, connection)| (client, drive(connection, heard)))
            }
            None => {
                let opened = config.connect_raw(Frames::messages(wire), NoTls).await;
                opened.map(|(client, connection)| (client, drive(connection, heard)))
            }
        };
        let tls_failed = tls_state.lock().expect("tls state lock").failed;
        let tls_failed = tls_failed.then(|| {
            self.tls
                .as_ref()
                .map_or(self.host.as_str(), |t| t.name(&self.host))
        });
        opened.map_err(|err| {
            let fault = classify(&err, heard, self.sslmode, Step::Startup, tls_failed);
            match &self.iam {
                Some(iam) => iam.rejected(fault, &self.host, self.port, &self.user),
                None => fault,
            }
        })
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .host(&self.host)
            .port(self.port)
            .application_name(&self.application_name)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        config
    }
}

/// Terminate the session and wait until the server has closed it, so a
/// probe never leaves server sessions behind.
pub(super) async fn close(session: Session) -> Result<(), Fault> {
    drop(session.client);
    match session.driver.await {
        Ok(_) => Ok(()),
        Err(err) => Err(Fault::new(
            Reason::ProtocolError,
            format!("connection task failed: {err}"),
        )),
    }
}

/// The task that drives a session's connection until the server closes it.
pub(super) type Driver = JoinHandle<Result<(), tokio_postgres::Error>>;

/// Spawn the connection's task. A server that closes with an error
/// message (PgBouncer's `client_idle_timeout`) ends the task before the
/// socket's FIN is read, so its words are the connection's end.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>, heard: &Arc<Heard>) -> Driver
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let heard = heard.clone();
    tokio::spawn(async move {
        let ended = connection.await;
        if let Err(err) = &ended {
            if let Some(db) = err.as_db_error() {
                let said = format!("{} {}", db.severity(), db.message());
                heard.ending().record_said(End::Fin, said);
            }
        }
        ended
    })
}
