//! `kind = "tcp"`: a TCP handshake to host:port, or, with
//! `expect = "unreachable"`, proof that the path stays closed.

use super::keys::Problem;
use super::Probe;
use crate::expand::{Env, Port};
use crate::net::url_parts::host_port;
use crate::outcome::{Failure, Fault, Phase, Reason};
use serde::Deserialize;

/// The suite keys of `kind = "tcp"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    host: Env<String>,
    port: Port,
    #[serde(default)]
    expect: Expect,
}

impl Keys {
    pub fn build(self) -> Result<TcpSpec, Problem> {
        let (Env(host), Port(port)) = (self.host, self.port);
        if host.is_empty() {
            return Err(Problem::at("host", "must not be empty"));
        }
        Ok(TcpSpec {
            host,
            port,
            expect: self.expect,
        })
    }
}

/// Whether the path must work or must stay closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    #[default]
    Reachable,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    pub host: String,
    pub port: u16,
    pub expect: Expect,
}

impl TcpSpec {
    /// What is probed, for the report.
    pub fn target(&self) -> String {
        host_port(&self.host, self.port)
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        let addrs = probe.resolve(&self.host).await?;
        let connected = probe.connect(&addrs, self.port).await;
        match (self.expect, connected) {
            (Expect::Reachable, connected) => connected.map(drop),
            (Expect::Unreachable, Ok(stream)) => {
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
            (Expect::Unreachable, Err(failure)) if blocks_path(failure.reason) => {
                probe.observe("blocked_by", failure.reason.as_str());
                Ok(())
            }
            (Expect::Unreachable, Err(failure)) => Err(failure),
        }
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
