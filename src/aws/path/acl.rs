//! The network ACLs, which are stateless: the request leg on the port and
//! the return leg on the client's ephemeral ports, through each end's subnet.

use super::{vpc_cidr, vpc_of, Walk};
use crate::aws::fix;
use crate::aws::model::{Ports, Subnet, World};
use crate::aws::rules::{acl_verdict, AclVerdict, FINAL_DENY};
use crate::outcome::Code;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// The request leg and the return leg through one subnet's network ACL.
/// `outbound`: the subnet sends the request (the source side).
pub(super) fn acl_legs(
    walk: &mut Walk,
    world: &World,
    subnet: &Subnet,
    outbound: bool,
    other: Ipv4Addr,
    port: u16,
) {
    let Some(acl) = world.acl_of(&subnet.id) else {
        walk.not_followed(&subnet.id, &subnet.account, "network ACL not read".into());
        return;
    };
    walk.chain.push(acl.id.clone());
    let legs = [
        (outbound, Ports::one(port), Code::NaclDenied),
        (!outbound, Ports::EPHEMERAL, Code::NaclReturnBlocked),
    ];
    for (egress, ports, code) in legs {
        if let AclVerdict::Denied {
            rule,
            ports: denied,
        } = acl_verdict(acl, egress, other, ports)
        {
            let direction = if egress { "outbound" } else { "inbound" };
            let which = if rule == FINAL_DENY {
                "the final deny (32767)".to_string()
            } else {
                format!("rule {rule}")
            };
            let free = free_rule(
                acl.entries
                    .iter()
                    .filter(|e| e.egress == egress)
                    .map(|e| e.number),
            );
            let (number, replace) = if rule == FINAL_DENY {
                (free, false)
            } else {
                (rule, true)
            };
            let cidr = Ipv4Net::new(other, 32).expect("a /32");
            let cidr = vpc_cidr(world, &vpc_of(world, other).unwrap_or_default()).unwrap_or(cidr);
            walk.find(
                code,
                format!("{} rule {rule}", acl.id),
                &acl.account,
                format!(
                    "{which} of {} drops {direction} tcp/{denied} with {other} ({})",
                    acl.id, subnet.id
                ),
                Some(fix::acl_allow(
                    &acl.id, number, replace, egress, ports, cidr,
                )),
            );
        }
    }
}

/// The lowest free multiple of 10 from 100 on, for a new NACL entry.
fn free_rule(used: impl Iterator<Item = u16>) -> u16 {
    let used: Vec<u16> = used.collect();
    (10..FINAL_DENY / 10)
        .map(|n| n * 10)
        .find(|n| *n >= 100 && !used.contains(n))
        .unwrap_or(100)
}
