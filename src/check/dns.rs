//! `kind = "dns"`: the name resolves through the suite's resolver, to a
//! private address, inside the expected CIDRs or exactly the expected set.

use super::keys::{unwrap_all, Problem};
use super::Probe;
use crate::expand::Env;
use crate::net::is_private;
use crate::outcome::{Failure, Fault, Phase, Reason};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The suite keys of `kind = "dns"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    host: Env<String>,
    expect_cidrs: Option<Vec<Env<IpNet>>>,
    expect_addresses: Option<Vec<Env<IpAddr>>>,
    #[serde(default)]
    allow_public: bool,
}

impl Keys {
    pub fn build(self) -> Result<DnsSpec, Problem> {
        let Env(host) = self.host;
        if host.parse::<IpAddr>().is_ok() || host.is_empty() {
            return Err(Problem::at(
                "host",
                "a dns check needs a name to resolve, not an address",
            ));
        }
        Ok(DnsSpec {
            host,
            expect_cidrs: unwrap_all(self.expect_cidrs),
            expect_addresses: unwrap_all(self.expect_addresses),
            allow_public: self.allow_public,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub host: String,
    pub expect_cidrs: Vec<IpNet>,
    pub expect_addresses: Vec<IpAddr>,
    pub allow_public: bool,
}

impl DnsSpec {
    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        let addrs = probe.resolve(&self.host).await?;
        self.judge(&addrs)
            .map_err(|fault| Failure::new(Phase::Resolve, fault))
    }

    /// Compare an answer with the expectations, public addresses first: that
    /// is the signature of peering DNS resolution being off.
    fn judge(&self, addrs: &[IpAddr]) -> Result<(), Fault> {
        let public: Vec<String> = addrs
            .iter()
            .filter(|ip| !is_private(**ip))
            .map(IpAddr::to_string)
            .collect();
        if !self.allow_public && !public.is_empty() {
            return Err(Fault::new(
                Reason::DnsPublicAddress,
                format!("{} resolved to public {}", self.host, public.join(", ")),
            ));
        }
        let outside: Vec<String> = addrs
            .iter()
            .filter(|ip| {
                !self.expect_cidrs.is_empty()
                    && !self.expect_cidrs.iter().any(|net| net.contains(*ip))
            })
            .map(IpAddr::to_string)
            .collect();
        if !outside.is_empty() {
            let cidrs: Vec<String> = self.expect_cidrs.iter().map(IpNet::to_string).collect();
            return Err(Fault::new(
                Reason::DnsUnexpectedAddress,
                format!(
                    "{} resolved to {} outside {}",
                    self.host,
                    outside.join(", "),
                    cidrs.join(", ")
                ),
            ));
        }
        let got: BTreeSet<IpAddr> = addrs.iter().copied().collect();
        let want: BTreeSet<IpAddr> = self.expect_addresses.iter().copied().collect();
        if !want.is_empty() && got != want {
            return Err(Fault::new(
                Reason::DnsUnexpectedAddress,
                format!(
                    "{} resolved to {}, expected {}",
                    self.host,
                    join(&got),
                    join(&want)
                ),
            ));
        }
        Ok(())
    }
}

fn join(set: &BTreeSet<IpAddr>) -> String {
    set.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DnsSpec {
        DnsSpec {
            host: "production-haproxy.timescale.glimpse.internal".into(),
            expect_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
            expect_addresses: vec![],
            allow_public: false,
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn private_answer_inside_cidr_passes() {
        assert_eq!(spec().judge(&ips(&["10.0.1.12"])), Ok(()));
    }

    #[test]
    fn public_answer_is_named_before_cidr_mismatch() {
        let fault = spec().judge(&ips(&["10.0.1.12", "52.1.2.3"])).unwrap_err();
        assert_eq!(fault.reason, Reason::DnsPublicAddress);
        assert!(fault.detail.contains("52.1.2.3"));
    }

    #[test]
    fn allowed_public_answer_still_checks_cidrs() {
        let spec = DnsSpec {
            allow_public: true,
            ..spec()
        };
        assert_eq!(
            spec.judge(&ips(&["52.1.2.3"])).unwrap_err().reason,
            Reason::DnsUnexpectedAddress
        );
    }

    #[test]
    fn address_set_must_match_exactly() {
        let spec = DnsSpec {
            expect_addresses: ips(&["10.0.1.12"]),
            ..spec()
        };
        assert_eq!(spec.judge(&ips(&["10.0.1.12"])), Ok(()));
        let extra = spec.judge(&ips(&["10.0.1.12", "10.0.1.13"])).unwrap_err();
        assert_eq!(extra.reason, Reason::DnsUnexpectedAddress);
        let private_outside = DnsSpec {
            expect_addresses: vec![],
            ..spec
        };
        assert_eq!(
            private_outside
                .judge(&ips(&["192.168.0.1"]))
                .unwrap_err()
                .reason,
            Reason::DnsUnexpectedAddress
        );
    }
}
