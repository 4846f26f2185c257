//! Why a private name gives no private answer in the source VPC: the
//! private hosted zone that holds it is not associated with the VPC, the
//! VPC's DNS attributes are off, the peering does not let the VPC resolve
//! the remote VPC's private names, or the interface endpoint whose service
//! the name belongs to has its private DNS off.

use super::fix;
use super::model::{World, Zone};
use crate::outcome::{Code, Finding};

/// The findings for `host` looked up from `vpc` (in `region`), and the chain.
pub fn walk(world: &World, vpc: &str, host: &str, region: &str) -> (Vec<String>, Vec<Finding>) {
    let mut chain = Vec::new();
    let mut findings = Vec::new();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone_for(world, &host);
    match zone {
        Some(zone) => {
            chain.push(format!("{} ({})", zone.id, zone.name));
            if !zone.vpcs.iter().any(|v| v == vpc) {
                let account = world.vpcs.get(vpc).map(|v| v.account.clone());
                let cross = account.as_deref().is_some_and(|a| a != zone.account);
                findings.push(Finding {
                    code: Code::ZoneNotAssociated,
                    object: zone.id.clone(),
                    account: Some(zone.account.clone()),
                    explanation: format!("private zone {} ({}) is not associated with {vpc}, so {host} has no private answer there", zone.name, zone.id),
                    fix: Some(fix::associate_zone(&zone.id, vpc, region, cross)),
                });
            }
        }
        None => chain.push(format!(
            "no private zone holding {host} in the accounts read"
        )),
    }
    if let Some(v) = world.vpcs.get(vpc) {
        for (attribute, on) in [
            ("enableDnsSupport", v.dns_support),
            ("enableDnsHostnames", v.dns_hostnames),
        ] {
            if on == Some(false) {
                findings.push(Finding {
                    code: Code::VpcDnsOff,
                    object: format!("{vpc} {attribute}"),
                    account: Some(v.account.clone()),
                    explanation: format!(
                        "{attribute} is off on {vpc}: private zones do not answer there"
                    ),
                    fix: Some(fix::vpc_dns(vpc, attribute)),
                });
            }
        }
    }
    peering_dns(world, vpc, zone, &mut chain, &mut findings);
    endpoint_dns(world, vpc, &host, &mut chain, &mut findings);
    (chain, findings)
}

/// An interface endpoint in `vpc` whose service's private DNS name covers
/// `host` answers it with the endpoint's addresses only when its private
/// DNS is on; off, the name resolves to the service's public answer.
fn endpoint_dns(
    world: &World,
    vpc: &str,
    host: &str,
    chain: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) {
    let serving = world
        .endpoints
        .iter()
        .filter(|e| e.vpc == vpc && e.names(host));
    for endpoint in serving {
        chain.push(format!(
            "{} private DNS {}",
            endpoint.id,
            if endpoint.private_dns { "on" } else { "off" }
        ));
        if !endpoint.private_dns {
            findings.push(Finding {
                code: Code::EndpointPrivateDnsOff,
                object: endpoint.id.clone(),
                account: Some(endpoint.account.clone()),
                explanation: format!(
                    "{} serves {host} but its private DNS is off: {vpc} resolves the name to the service's public answer, not the endpoint's addresses",
                    endpoint.id
                ),
                fix: Some(fix::endpoint_private_dns(&endpoint.id)),
            });
        }
    }
}

/// The zone whose name is the longest suffix of `host`.
fn zone_for<'w>(world: &'w World, host: &str) -> Option<&'w Zone> {
    world
        .zones
        .iter()
        .filter(|z| host == z.name || host.ends_with(&format!(".{}", z.name)))
        .max_by_key(|z| z.name.len())
}

/// Each peering from `vpc` to a VPC the zone serves (any peering when the
/// zone is unknown) must let `vpc` resolve the remote side's names: the
/// option is set on the remote side.
fn peering_dns(
    world: &World,
    vpc: &str,
    zone: Option<&Zone>,
    chain: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) {
    for p in world
        .peerings
        .iter()
        .filter(|p| p.active() && p.side(vpc).is_some())
    {
        let remote_is_accepter = p.requester.vpc == vpc;
        let remote = if remote_is_accepter {
            &p.accepter
        } else {
            &p.requester
        };
        if zone.is_some_and(|z| !z.vpcs.contains(&remote.vpc)) {
            continue;
        }
        chain.push(format!(
            "{} dns from remote: {}",
            p.id, remote.dns_from_remote
        ));
        if !remote.dns_from_remote {
            findings.push(Finding {
                code: Code::PeeringDnsResolutionOff,
                object: p.id.clone(),
                account: Some(remote.account.clone()),
                explanation: format!("{} does not let {vpc} resolve {}'s private names (AllowDnsResolutionFromRemoteVpc is off on the {} side)", p.id, remote.vpc, if remote_is_accepter { "accepter" } else { "requester" }),
                fix: Some(fix::peering_dns(&p.id, remote_is_accepter)),
            });
        }
    }
}
