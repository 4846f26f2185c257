//! How AWS judges one packet against one object: a security group's rules
//! (any rule that matches allows; stateful, so one direction suffices) and
//! a network ACL's entries (ascending number, first match wins, then the
//! final deny 32767; stateless, so the return leg is judged on its own).

use super::model::{NetworkAcl, Peer, Ports, SecurityGroup, SgRule};
use std::net::Ipv4Addr;

/// The number AWS gives the final deny of every network ACL.
pub const FINAL_DENY: u16 = 32767;

/// The other end of a packet, as a security group rule may name it.
#[derive(Debug, Clone, Copy)]
pub struct Other<'a> {
    pub address: Ipv4Addr,
    /// That end's security groups, for rules that reference a group.
    pub groups: &'a [String],
}

/// The first rule of `group` (ingress or egress) that lets TCP to `port` pass to or from `other`.
pub fn allowing<'g>(rules: &'g [SgRule], port: u16, other: Other<'_>) -> Option<&'g SgRule> {
    rules
        .iter()
        .find(|rule| rule.protocol.covers(port) && names(&rule.peer, other))
}

fn names(peer: &Peer, other: Other<'_>) -> bool {
    match peer {
        Peer::Cidr(net) => net.contains(&other.address),
        Peer::PrefixList(_, nets) => nets.iter().any(|net| net.contains(&other.address)),
        Peer::Group(id) => other.groups.iter().any(|g| g == id),
    }
}

/// The first (group, rule) among `groups` letting the traffic through.
pub fn group_allowing<'g>(
    groups: &[&'g SecurityGroup],
    ingress: bool,
    port: u16,
    other: Other<'_>,
) -> Option<(&'g SecurityGroup, &'g SgRule)> {
    groups.iter().find_map(|group| {
        let rules = if ingress {
            &group.ingress
        } else {
            &group.egress
        };
        allowing(rules, port, other).map(|rule| (*group, rule))
    })
}

/// A network ACL's verdict on a range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclVerdict {
    /// Every port of the range is allowed.
    Allowed,
    /// Entry `rule` (or [`FINAL_DENY`]) denies `ports`, part of the range.
    Denied { rule: u16, ports: Ports },
}

/// Judge TCP packets to `ports` (of the packet's destination) with the
/// other end at `address`, leaving (`egress`) or entering the subnet.
pub fn acl_verdict(acl: &NetworkAcl, egress: bool, address: Ipv4Addr, ports: Ports) -> AclVerdict {
    let mut entries: Vec<_> = acl
        .entries
        .iter()
        .filter(|e| e.egress == egress && e.number < FINAL_DENY && e.cidr.contains(&address))
        .collect();
    entries.sort_by_key(|e| e.number);
    let mut open = vec![ports];
    for entry in entries {
        let Some(covered) = entry.protocol.tcp_ports() else {
            continue;
        };
        let hit: Vec<Ports> = open.iter().filter_map(|p| overlap(*p, covered)).collect();
        if hit.is_empty() {
            continue;
        }
        if !entry.allow {
            return AclVerdict::Denied {
                rule: entry.number,
                ports: hit[0],
            };
        }
        open = open.into_iter().flat_map(|p| minus(p, covered)).collect();
        if open.is_empty() {
            return AclVerdict::Allowed;
        }
    }
    match open.first() {
        Some(ports) => AclVerdict::Denied {
            rule: FINAL_DENY,
            ports: *ports,
        },
        None => AclVerdict::Allowed,
    }
}

fn overlap(a: Ports, b: Ports) -> Option<Ports> {
    let (from, to) = (a.from.max(b.from), a.to.min(b.to));
    (from <= to).then_some(Ports { from, to })
}

/// `a` without `b`: zero, one or two ranges.
fn minus(a: Ports, b: Ports) -> Vec<Ports> {
    if overlap(a, b).is_none() {
        return vec![a];
    }
    let mut left = Vec::new();
    if a.from < b.from {
        left.push(Ports {
            from: a.from,
            to: b.from - 1,
        });
    }
    if a.to > b.to {
        left.push(Ports {
            from: b.to + 1,
            to: a.to,
        });
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::model::{AclEntry, Protocol};

    fn entry(
        number: u16,
        egress: bool,
        allow: bool,
        ports: Option<(u16, u16)>,
        cidr: &str,
    ) -> AclEntry {
        AclEntry {
            number,
            egress,
            allow,
            protocol: ports.map_or(Protocol::All, |(from, to)| {
                Protocol::Tcp(Ports { from, to })
            }),
            cidr: cidr.parse().unwrap(),
        }
    }

    fn acl(entries: Vec<AclEntry>) -> NetworkAcl {
        NetworkAcl {
            id: "acl-1".into(),
            account: "1".into(),
            vpc: "vpc-1".into(),
            subnets: vec![],
            entries,
        }
    }

    const DB: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 12);

    fn judged(case: (Vec<AclEntry>, bool, Ports), expected: AclVerdict) {
        let (entries, egress, ports) = case;
        assert_eq!(acl_verdict(&acl(entries), egress, DB, ports), expected);
    }

    fn denied(rule: u16, from: u16, to: u16) -> AclVerdict {
        AclVerdict::Denied {
            rule,
            ports: Ports { from, to },
        }
    }

    const ANY: &str = "0.0.0.0/0";

    crate::cases!(judged {
        open_acl_allows: (vec![entry(100, true, true, None, ANY)], true, Ports::one(5432)) => AclVerdict::Allowed;
        no_entry_is_the_final_deny: (vec![], true, Ports::one(5432)) => denied(FINAL_DENY, 5432, 5432);
        deny_numbered_below_allow_wins: (vec![entry(100, true, true, None, ANY), entry(90, true, false, Some((5432, 5432)), "10.0.0.0/16")], true, Ports::one(5432)) => denied(90, 5432, 5432);
        deny_numbered_above_allow_loses: (vec![entry(100, true, true, None, ANY), entry(110, true, false, Some((5432, 5432)), "10.0.0.0/16")], true, Ports::one(5432)) => AclVerdict::Allowed;
        other_direction_does_not_count: (vec![entry(100, false, true, None, ANY)], true, Ports::one(5432)) => denied(FINAL_DENY, 5432, 5432);
        other_cidr_does_not_count: (vec![entry(100, true, true, None, "192.168.0.0/16")], true, Ports::one(5432)) => denied(FINAL_DENY, 5432, 5432);
        ephemeral_range_half_open: (vec![entry(100, false, true, Some((32768, 65535)), ANY)], false, Ports::EPHEMERAL) => denied(FINAL_DENY, 1024, 32767);
        ephemeral_range_pieced_together: (vec![entry(100, false, true, Some((1024, 40000)), ANY), entry(110, false, true, Some((40001, 65535)), ANY)], false, Ports::EPHEMERAL) => AclVerdict::Allowed;
        ephemeral_deny_first: (vec![entry(50, false, false, Some((1024, 65535)), ANY), entry(100, false, true, None, ANY)], false, Ports::EPHEMERAL) => denied(50, 1024, 65535);
    });
}
