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
        Some(address) => to_walk(address, port, spec.must_stay_closed()),
        None => Ask::Nothing(format!("{host} resolved to no address to walk")),
    }
}

/// The walk to `address:port`, unless the address never leaves the task.
fn to_walk(address: IpAddr, port: u16, closed: bool) -> Ask {
    if let Some(why) = not_a_vpc_path(address) {
        return Ask::Nothing(why);
    }
    match address {
        IpAddr::V4(address) => Ask::Path {
            address,
            port,
            closed,
        },
        IpAddr::V6(address) => Ask::Nothing(format!("{address}: IPv6 paths are not walked")),
    }
}

/// Why `address` is no VPC path: loopback and unspecified addresses stay
/// in the task, link-local ones (169.254.0.0/16: the ECS metadata and
/// credentials endpoints, the Amazon DNS server's 169.254.169.253, the
/// instance metadata) are answered by the host; no route table, NACL or
/// security group sees them, so the describes have nothing to say.
fn not_a_vpc_path(address: IpAddr) -> Option<String> {
    let what = match address {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local",
        IpAddr::V4(v4) if v4.is_unspecified() => "unspecified",
        IpAddr::V6(v6) if v6.is_loopback() => "loopback",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "link-local",
        IpAddr::V6(v6) if v6.is_unspecified() => "unspecified",
        _ => return None,
    };
    Some(format!(
        "{address} is {what}: the path never enters the VPC, so no route, NACL or security group is involved"
    ))
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
    let closed = spec.must_stay_closed();
    match host.parse::<IpAddr>().ok() {
        Some(address) => to_walk(address, port, closed),
        None => match resolved {
            Some(address) => to_walk(IpAddr::V4(address), port, closed),
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
    outcome.facts.address()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first words of why an address is no VPC path, if it is not.
    fn judged(address: &str, expected: Option<&str>) {
        let why = not_a_vpc_path(address.parse().unwrap());
        let head = why.and_then(|why| Some(why.split_once(": the path")?.0.to_string()));
        assert_eq!(head.as_deref(), expected);
    }

    crate::cases!(judged {
        loopback_v4: "127.0.0.1" => Some("127.0.0.1 is loopback");
        loopback_range: "127.8.9.10" => Some("127.8.9.10 is loopback");
        ecs_metadata: "169.254.170.2" => Some("169.254.170.2 is link-local");
        amazon_dns: "169.254.169.253" => Some("169.254.169.253 is link-local");
        unspecified: "0.0.0.0" => Some("0.0.0.0 is unspecified");
        loopback_v6: "::1" => Some("::1 is loopback");
        link_local_v6: "fe80::1" => Some("fe80::1 is link-local");
        private: "10.0.1.12" => None;
        public: "203.0.113.7" => None;
    });
}
