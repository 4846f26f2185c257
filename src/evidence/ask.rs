//! What to ask the AWS describes about one check: the path to an address
//! and port, or why a private name has no private answer.

use crate::outcome::{Outcome, Phase, Reason};
use crate::suite::Check;
use std::net::{IpAddr, Ipv4Addr};

/// The question one check's result raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Walk TCP to `address:port`; `closed`: the path must stay closed.
    Path {
        address: Ipv4Addr,
        port: u16,
        closed: bool,
    },
    /// Why `host` has no (private) answer.
    Name { host: String },
    /// Nothing the describes can say, and why.
    Nothing(String),
}

/// The question for `check` after its run gave `outcome`.
pub fn after_run(check: &Check, outcome: &Outcome) -> Ask {
    let spec = &check.spec;
    let dns_failure = outcome
        .failure()
        .is_some_and(|f| f.phase == Phase::Resolve && names_a_dns_cause(f.reason));
    let host = match spec.host() {
        Some(host) => host.to_string(),
        None => {
            return Ask::Name {
                host: spec.target(),
            }
        }
    };
    if dns_failure {
        return Ask::Name { host };
    }
    let Some(port) = spec.port() else {
        return Ask::Nothing("no port to walk".into());
    };
    let address = host
        .parse::<IpAddr>()
        .ok()
        .or_else(|| seen_address(outcome));
    match address {
        Some(IpAddr::V4(address)) => Ask::Path {
            address,
            port,
            closed: spec.must_stay_closed(),
        },
        Some(IpAddr::V6(address)) => Ask::Nothing(format!("{address}: IPv6 paths are not walked")),
        None => Ask::Nothing(format!("{host} resolved to no address to walk")),
    }
}

/// The question for `check` without running it (`vpc-probe paths`):
/// `resolve` turns a name into an address when it can.
pub fn before_run(check: &Check, resolved: Option<Ipv4Addr>) -> Ask {
    let spec = &check.spec;
    let (Some(host), Some(port)) = (spec.host(), spec.port()) else {
        return Ask::Name {
            host: spec.target(),
        };
    };
    match host.parse::<IpAddr>().ok() {
        Some(IpAddr::V4(address)) => Ask::Path {
            address,
            port,
            closed: spec.must_stay_closed(),
        },
        Some(IpAddr::V6(address)) => Ask::Nothing(format!("{address}: IPv6 paths are not walked")),
        None => match resolved {
            Some(address) => Ask::Path {
                address,
                port,
                closed: spec.must_stay_closed(),
            },
            None => Ask::Name {
                host: host.to_string(),
            },
        },
    }
}

/// Reasons a private zone, a VPC attribute or the peering's DNS option can cause.
fn names_a_dns_cause(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::DnsNxdomain
            | Reason::DnsPublicAddress
            | Reason::DnsUnexpectedAddress
            | Reason::DnsServfail
    )
}

/// The address the check connected to, or the first its name resolved to.
fn seen_address(outcome: &Outcome) -> Option<IpAddr> {
    let peer = outcome
        .observed
        .get("peer")
        .and_then(|p| p.parse::<std::net::SocketAddr>().ok())
        .map(|p| p.ip());
    peer.or_else(|| {
        let listed = outcome.observed.get("addresses")?;
        listed.split(',').find_map(|a| a.trim().parse().ok())
    })
}
