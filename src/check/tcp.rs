//! `kind = "tcp"`: a TCP handshake to host:port, or, with
//! `expect = "unreachable"`, proof that the path stays closed. With
//! `idle`, the connection is held and then proved alive without a byte of
//! payload: a keepalive probe must be acknowledged.

use super::idle::{self, Idle, IdleSession};
use super::keys::Problem;
use super::Probe;
use crate::expand::{Env, Port};
use crate::net::ending::End;
use crate::net::socket::TcpState;
use crate::net::url_parts::host_port;
use crate::net::wire::Wire;
use crate::outcome::{Failure, Fault, Phase, Reason};
use serde::Deserialize;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The suite keys of `kind = "tcp"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    host: Env<String>,
    port: Port,
    #[serde(default)]
    expect: Reach,
    idle: Option<idle::Steps>,
    tcp_keepalive: Option<Env<humantime::Duration>>,
}

impl Keys {
    pub fn build(self) -> Result<TcpSpec, Problem> {
        let (Env(host), Port(port)) = (self.host, self.port);
        if host.is_empty() {
            return Err(Problem::at("host", "must not be empty"));
        }
        let idle = idle::build(self.idle, self.tcp_keepalive)?;
        if self.expect == Reach::Unreachable && idle.is_some() {
            return Err(Problem::at(
                "idle",
                "a path that must stay closed has no session to hold",
            ));
        }
        Ok(TcpSpec {
            host,
            port,
            expect: self.expect,
            idle,
        })
    }
}

/// Whether the path must work or must stay closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    #[default]
    Reachable,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    pub host: String,
    pub port: u16,
    pub expect: Reach,
    /// Connections held idle, then proved alive (`idle`).
    pub idle: Option<Idle>,
}

impl TcpSpec {
    /// What is probed, for the report.
    pub fn target(&self) -> String {
        host_port(&self.host, self.port)
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        if let Some(idle) = &self.idle {
            return Box::pin(self.run_idle(probe, idle)).await;
        }
        let addrs = probe.resolve(&self.host).await?;
        let connected = probe.connect(&addrs, self.port).await;
        match (self.expect, connected) {
            (Reach::Reachable, connected) => connected.map(drop),
            (Reach::Unreachable, Ok(stream)) => {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                Err(Failure::new(
                    Phase::Connect,
                    Fault::new(
                        Reason::UnexpectedlyReachable,
                        format!("connected to {peer}: this path must stay closed"),
                    ),
                ))
            }
            (Reach::Unreachable, Err(failure)) if blocks_path(failure.reason) => {
                probe.observe("blocked_by", failure.reason.as_str());
                Ok(())
            }
            (Reach::Unreachable, Err(failure)) => Err(failure),
        }
    }
}

impl TcpSpec {
    /// Connections held idle for each step, then proved alive.
    async fn run_idle<'p>(&self, probe: &mut Probe<'p>, idle: &Idle) -> Result<(), Failure> {
        let open = |mut sibling: Probe<'p>| async move {
            let opened = self.hold(&mut sibling).await;
            (sibling, opened)
        };
        let use_it = |mut sibling: Probe<'p>, held: Quiet| async move {
            let answered = sibling.phase(Phase::Idle, held.acknowledged()).await;
            (sibling, answered)
        };
        idle::run(probe, idle, open, use_it).await
    }

    /// Resolve and connect; a reader task notes how the connection ends.
    async fn hold(&self, probe: &mut Probe<'_>) -> Result<IdleSession<Quiet>, Failure> {
        let addrs = probe.resolve(&self.host).await?;
        let stream = probe.connect(&addrs, self.port).await?;
        let (read, write) = stream.into_split();
        let (mut wire, heard) = Wire::new(read);
        let reader = tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            while matches!(wire.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        Ok(IdleSession {
            session: Quiet {
                write,
                reader,
                heard: heard.clone(),
            },
            heard,
        })
    }
}

/// A TCP connection held without payload either way.
struct Quiet {
    write: OwnedWriteHalf,
    reader: JoinHandle<()>,
    heard: std::sync::Arc<crate::net::wire::Heard>,
}

/// How often the keepalive answer is looked for.
const ACK_POLL: Duration = Duration::from_millis(100);

impl Quiet {
    /// Alive when the peer acknowledges a keepalive probe sent now; the
    /// caller's deadline ends the wait (silence).
    async fn acknowledged(self) -> Result<(), Fault> {
        let socket: &TcpStream = self.write.as_ref();
        let failed = |err: std::io::Error| Fault::new(Reason::ProtocolError, err.to_string());
        crate::net::socket::keep_alive(socket, Duration::from_secs(1)).map_err(failed)?;
        let asked = Instant::now();
        loop {
            self.closed_by_state(socket).map_err(failed)?;
            if let Some((_, end)) = self.heard.ending().get() {
                let detail = format!("the connection ended ({end:?}) when probed");
                return Err(Fault::new(Reason::ClosedByPeer, detail));
            }
            if crate::net::socket::last_ack_age(socket).map_err(failed)? < asked.elapsed() {
                return Ok(());
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }
}

impl Quiet {
    /// A peer that closed leaves the connection in CLOSE_WAIT, and a
    /// half-closed peer still acknowledges keepalives: the kernel's state
    /// is the witness, recorded as the FIN it stands for if the reader has
    /// not seen it yet.
    fn closed_by_state(&self, socket: &TcpStream) -> std::io::Result<()> {
        if crate::net::socket::tcp_state(socket)? == TcpState::PeerClosed {
            self.heard.ending().record(End::Fin);
        }
        Ok(())
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Connect failures that prove a path is closed; anything else (a DNS
/// failure, say) leaves the question open and fails the check.
fn blocks_path(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::ConnectRefused | Reason::ConnectTimeout | Reason::ConnectUnreachable
    )
}
