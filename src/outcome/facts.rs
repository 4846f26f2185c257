//! What a run learned about the path as typed facts, for the modules that
//! read them back (metrics, the report, the AWS evidence): the addresses
//! the name resolved to, the peer connected to, the TLS handshake. The
//! `observed` strings beside them are for display only.

use std::net::{IpAddr, SocketAddr};

/// The facts of one run, each set where it was learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// What the name resolved to, in the resolver's order.
    pub resolved: Vec<IpAddr>,
    /// The address and port the connection reached.
    pub peer: Option<SocketAddr>,
    /// The TLS handshake, when one completed.
    pub tls: Option<Handshake>,
}

/// A completed TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// `TLSv1_3`, `TLSv1_2`, as rustls names them.
    pub version: String,
    pub cipher: Option<String>,
}

impl Facts {
    /// Take what `other` knows that these facts do not: siblings of one
    /// check (each address, each idle step) reach the same path.
    pub fn absorb(&mut self, other: Facts) {
        if self.resolved.is_empty() {
            self.resolved = other.resolved;
        }
        self.peer = self.peer.or(other.peer);
        if self.tls.is_none() {
            self.tls = other.tls;
        }
    }

    /// The address the check connected to, else the first its name
    /// resolved to.
    pub fn address(&self) -> Option<IpAddr> {
        self.peer
            .map(|peer| peer.ip())
            .or_else(|| self.resolved.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_comes_before_the_first_resolved_address() {
        let mut facts = Facts {
            resolved: vec!["10.0.1.12".parse().unwrap(), "10.0.2.12".parse().unwrap()],
            ..Facts::default()
        };
        assert_eq!(facts.address(), Some("10.0.1.12".parse().unwrap()));
        facts.peer = Some("10.0.2.12:5432".parse().unwrap());
        assert_eq!(facts.address(), Some("10.0.2.12".parse().unwrap()));
    }

    #[test]
    fn absorbing_keeps_what_is_known_and_fills_the_rest() {
        let handshake = Handshake {
            version: "TLSv1_3".into(),
            cipher: None,
        };
        let mut first = Facts {
            peer: Some("10.0.1.12:6379".parse().unwrap()),
            ..Facts::default()
        };
        first.absorb(Facts {
            peer: Some("10.0.2.12:6379".parse().unwrap()),
            tls: Some(handshake.clone()),
            ..Facts::default()
        });
        assert_eq!(first.peer, Some("10.0.1.12:6379".parse().unwrap()));
        assert_eq!(first.tls, Some(handshake));
    }
}
