//! The security groups at both ends: the source's egress to the
//! destination, the destination's ingress from the source, and the rule
//! that admits it (for a path that must stay closed).

use super::{vpc_cidr, End, Walk};
use crate::aws::fix;
use crate::aws::model::{Ports, SecurityGroup, SgRule, World};
use crate::aws::rules::{group_allowing, Other};
use crate::outcome::{Code, Finding};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

pub(super) fn source_egress(
    walk: &mut Walk,
    source: &End<'_>,
    address: Ipv4Addr,
    port: u16,
    dest_groups: &[String],
    gateway: Option<&str>,
) {
    if source.eni.is_none() && source.groups.is_empty() {
        walk.chain.push(format!(
            "{} (no interface yet, no security group given: egress rules not judged)",
            source.subnet.id
        ));
        return;
    }
    // Outbound rules never match a group across a transit gateway.
    let groups = if gateway.is_some() { &[] } else { dest_groups };
    let other = Other { address, groups };
    match group_allowing(&source.groups, false, port, other) {
        Some((group, rule)) => walk
            .chain
            .push(format!("{} egress {}", group.id, rule_name(rule))),
        None if across(
            walk,
            &source.groups,
            false,
            port,
            Other {
                address,
                groups: dest_groups,
            },
            gateway,
        ) => {}
        None => {
            let ids = source.group_ids().join(", ");
            let first = source.groups.first().map_or("<group>", |g| g.id.as_str());
            walk.find(
                Code::SgEgressMissing,
                ids.clone(),
                source.account(),
                format!("no egress rule of {ids} allows tcp/{port} to {address}"),
                Some(fix::authorize_egress(first, port, Ipv4Net::from(address))),
            );
        }
    }
}

/// How the path crosses between the VPCs, for rules that name a group at
/// the other end.
pub(super) struct Between<'a> {
    /// The transit gateway carrying the traffic, if one does.
    pub gateway: Option<&'a str>,
    /// Whether inbound references match across it (enabled on the gateway
    /// and both attachments).
    pub references: bool,
}

pub(super) fn dest_ingress(
    walk: &mut Walk,
    world: &World,
    (source, dest): (&End<'_>, &End<'_>),
    port: u16,
    between: &Between<'_>,
) {
    let source_groups = source.group_ids();
    let named = Other {
        address: source.address,
        groups: &source_groups,
    };
    let other = Other {
        groups: if between.references {
            &source_groups
        } else {
            &[]
        },
        ..named
    };
    let source_cidr = vpc_cidr(world, &source.subnet.vpc).unwrap_or(source.subnet.cidr);
    match group_allowing(&dest.groups, true, port, other) {
        Some((group, rule)) => {
            walk.chain
                .push(format!("{} ingress {}", group.id, rule_name(rule)));
            walk.admitted_by = Some(Finding {
                code: Code::AllowedByRule,
                object: rule.id.clone().unwrap_or_else(|| group.id.clone()),
                account: Some(group.account.clone()),
                explanation: format!(
                    "{} ({}) admits {} on tcp/{port}: {}",
                    group.id,
                    group.name,
                    source.address,
                    rule_name(rule)
                ),
                fix: Some(fix::revoke_ingress(
                    &group.id,
                    rule.id.as_deref(),
                    port,
                    peer_text(rule),
                )),
            });
        }
        None if across(walk, &dest.groups, true, port, named, between.gateway) => {}
        None => {
            let ids = dest.group_ids().join(", ");
            let first = dest.groups.first().map_or("<group>", |g| g.id.as_str());
            walk.find(
                Code::SgIngressMissing,
                ids.clone(),
                dest.account(),
                format!(
                    "no ingress rule of {ids} allows tcp/{port} from {} ({source_cidr})",
                    source.address
                ),
                Some(fix::authorize_ingress(first, port, source_cidr)),
            );
        }
    }
}

/// When only a rule naming the other end's group would let the traffic
/// through, and a transit gateway carries it: that rule is the finding.
fn across(
    walk: &mut Walk,
    groups: &[&SecurityGroup],
    ingress: bool,
    port: u16,
    named: Other<'_>,
    gateway: Option<&str>,
) -> bool {
    let Some(gateway) = gateway else {
        return false;
    };
    let Some((group, rule)) = group_allowing(groups, ingress, port, named) else {
        return false;
    };
    let direction = if ingress { "inbound" } else { "outbound" };
    let peer = Ipv4Net::from(named.address);
    let fix = match ingress {
        true => fix::authorize_ingress(&group.id, port, peer),
        false => fix::authorize_egress(&group.id, port, peer),
    };
    walk.find(
        Code::SgReferenceAcrossTgw,
        rule.id.clone().unwrap_or_else(|| group.id.clone()),
        &group.account,
        format!(
            "{} {direction} {} names a group in the other VPC, which matches nothing across {gateway} \
             (security group referencing is off on the gateway or an attachment, or the rule is outbound)",
            group.id,
            rule_name(rule)
        ),
        Some(fix),
    );
    true
}

fn rule_name(rule: &SgRule) -> String {
    let ports = match rule.protocol.tcp_ports() {
        Some(Ports::ALL) => "all traffic".to_string(),
        Some(p) if p.from == p.to => format!("tcp/{}", p.from),
        Some(p) => format!("tcp/{}-{}", p.from, p.to),
        None => "other protocols".to_string(),
    };
    let id = rule
        .id
        .as_deref()
        .map(|id| format!("{id} "))
        .unwrap_or_default();
    format!("{id}{ports} {}", peer_text(rule))
}

fn peer_text(rule: &SgRule) -> String {
    use crate::aws::model::Peer;
    match &rule.peer {
        Peer::Cidr(net) => net.to_string(),
        Peer::PrefixList(id, _) => id.clone(),
        Peer::Group(id) => id.clone(),
    }
}
