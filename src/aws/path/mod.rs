//! The path walk: from a source (an ENI, or a subnet before the task
//! exists) to an address and TCP port, both ways, across both accounts,
//! over what the describes returned. Every object the traffic meets goes on
//! the chain; every object that stops it becomes a finding with its fix.
//! Takes a source, an address and a port, never an `Outcome`.

//!
//! Layout: this file holds the two ends, the walk's record and its order;
//! `security` judges the groups at both ends, `acl` the network ACLs both
//! ways, `route` the route tables and what they lead to, `transit` a
//! transit gateway both ways, `privatelink` an interface endpoint to the
//! load balancer's targets behind it.

mod acl;
mod privatelink;
#[cfg(test)]
mod privatelink_tests;
mod route;
mod security;
#[cfg(test)]
mod tests;
mod transit;
#[cfg(test)]
mod transit_tests;

use super::model::{Eni, Peering, Route, RouteTable, SecurityGroup, Subnet, World};
use crate::outcome::{Code, Finding};
use acl::acl_legs;
use ipnet::Ipv4Net;
use route::{forward_route, return_route};
use security::{dest_ingress, source_egress, Between};
use std::net::Ipv4Addr;

/// One end of the path as the describes know it.
#[derive(Debug, Clone)]
pub struct End<'w> {
    pub address: Ipv4Addr,
    /// The interface holding the address; `None` for a subnet-only source.
    pub eni: Option<&'w Eni>,
    pub subnet: &'w Subnet,
    pub groups: Vec<&'w SecurityGroup>,
}

impl<'w> End<'w> {
    /// The end at an interface, when its subnet was read.
    pub fn at_eni(world: &'w World, eni: &'w Eni) -> Option<End<'w>> {
        let subnet = world.subnets.get(&eni.subnet)?;
        let groups = eni
            .groups
            .iter()
            .filter_map(|g| world.groups.get(g))
            .collect();
        Some(End {
            address: eni.address,
            eni: Some(eni),
            subnet,
            groups,
        })
    }

    /// A subnet as the source, before any task runs in it: its first
    /// address AWS hands out stands for the task; no groups are judged.
    pub fn in_subnet(subnet: &'w Subnet) -> End<'w> {
        let base = u32::from(subnet.cidr.network());
        End {
            address: Ipv4Addr::from(base + 4),
            eni: None,
            subnet,
            groups: Vec::new(),
        }
    }

    pub(super) fn group_ids(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.id.clone()).collect()
    }

    pub(super) fn account(&self) -> &str {
        &self.subnet.account
    }
}

/// What the walk found: the objects met, those that block, and what let
/// the traffic in (for a path that must stay closed).
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub chain: Vec<String>,
    pub findings: Vec<Finding>,
    /// The destination's rule that admits the source, when one does.
    pub admitted_by: Option<Finding>,
}

impl Walk {
    /// Whether some object on the way stops the traffic.
    pub fn blocked(&self) -> bool {
        self.findings.iter().any(|f| f.code.blocks())
    }

    /// Whether some object on the way was met but not judged: the path
    /// may be open or not, and no verdict may say it is.
    pub fn unfollowed(&self) -> bool {
        self.findings.iter().any(|f| f.code == Code::HopNotFollowed)
    }

    /// An object on the way the walk does not judge: on the chain, and a
    /// finding that keeps any verdict from saying the path is open.
    pub(super) fn not_followed(&mut self, object: &str, account: &str, why: String) {
        self.chain.push(format!("{object}: {why}"));
        self.find(
            Code::HopNotFollowed,
            object,
            account,
            format!("{object}: {why}"),
            None,
        );
    }

    pub(super) fn find(
        &mut self,
        code: Code,
        object: impl Into<String>,
        account: &str,
        explanation: String,
        fix: Option<String>,
    ) {
        // The forward and return legs may meet the same object.
        let object = object.into();
        if self
            .findings
            .iter()
            .any(|f| f.code == code && f.object == object)
        {
            return;
        }
        self.findings.push(Finding {
            code,
            object,
            account: Some(account.to_string()),
            explanation,
            fix,
        });
    }
}

/// Walk TCP from `source` to `address:port` and the replies back.
pub fn walk(world: &World, source: &End<'_>, address: Ipv4Addr, port: u16) -> Walk {
    let mut walk = Walk::default();
    let dest = world
        .eni_at(address)
        .and_then(|eni| End::at_eni(world, eni));
    let dest_groups = dest.as_ref().map(End::group_ids).unwrap_or_default();
    let dest_vpc = dest.as_ref().map(|d| d.subnet.vpc.clone());
    if let Some(eni) = source.eni {
        walk.chain.push(format!("{} ({})", eni.id, eni.address));
    }
    let gateway = gateway_toward(world, source, address);
    source_egress(&mut walk, source, address, port, &dest_groups, gateway);
    acl_legs(&mut walk, world, source.subnet, true, address, port);
    let peering = forward_route(&mut walk, world, source, address, dest_vpc.as_deref());
    let Some(dest) = dest else {
        walk.find(
            Code::DestinationUnknown,
            address.to_string(),
            source.account(),
            format!(
                "no network interface holds {address} in the accounts read ({})",
                world.accounts.join(", ")
            ),
            None,
        );
        return walk;
    };
    walk.chain
        .push(format!("{} ({})", dest.eni.map_or("", |e| &e.id), address));
    if let Some(eni) = dest
        .eni
        .filter(|e| e.interface_type.as_deref() == Some("vpc_endpoint"))
    {
        privatelink::beyond(&mut walk, world, eni, port);
    } else if let Some(kind) = dest.eni.and_then(forwards) {
        let id = dest.eni.map_or("", |e| e.id.as_str());
        let why = format!("a {kind} interface: where it forwards the traffic (an endpoint service, a load balancer's targets, another network) is not judged");
        walk.not_followed(id, dest.account(), why);
    }
    let between = Between {
        gateway,
        references: gateway.is_none_or(|g| {
            transit::references_work(world, g, [&source.subnet.vpc, &dest.subnet.vpc])
        }),
    };
    dest_ingress(&mut walk, world, (source, &dest), port, &between);
    acl_legs(&mut walk, world, dest.subnet, false, source.address, port);
    return_route(&mut walk, world, source, &dest, peering.as_ref());
    walk
}

/// The transit gateway the source's route sends `address` to, if any.
fn gateway_toward<'w>(world: &'w World, source: &End<'_>, address: Ipv4Addr) -> Option<&'w str> {
    let table = world.table_of(source.subnet)?;
    match &longest_match(table, address)?.target {
        super::model::Target::TransitGateway(id) => Some(id),
        _ => None,
    }
}

pub(super) fn longest_match(table: &RouteTable, address: Ipv4Addr) -> Option<&Route> {
    table
        .routes
        .iter()
        .filter(|r| r.destination.contains(&address))
        .max_by_key(|r| r.destination.prefix_len())
}

/// The peering joining two VPCs: an active one first, else any.
pub(super) fn peering_between<'w>(world: &'w World, a: &str, b: &str) -> Option<&'w Peering> {
    let joining = || world.peerings.iter().filter(|p| p.joins(a, b));
    joining().find(|p| p.active()).or_else(|| joining().next())
}

pub(super) fn vpc_cidr(world: &World, vpc: &str) -> Option<Ipv4Net> {
    if let Some(cidr) = world.vpcs.get(vpc).and_then(|v| v.cidrs.first()) {
        return Some(*cidr);
    }
    world
        .peerings
        .iter()
        .find_map(|p| p.side(vpc).and_then(|s| s.cidrs.first().copied()))
}

/// The interface types that hand traffic on rather than end it, named as
/// the walk says them; `None` for an interface that is the end.
fn forwards(eni: &Eni) -> Option<&'static str> {
    Some(match eni.interface_type.as_deref()? {
        "network_load_balancer" => "Network Load Balancer",
        "load_balancer" => "load balancer",
        "gateway_load_balancer" | "gateway_load_balancer_endpoint" => "Gateway Load Balancer",
        "transit_gateway" => "transit gateway attachment",
        "natGateway" => "NAT gateway",
        "global_accelerator_managed" => "Global Accelerator",
        "api_gateway_managed" => "API Gateway",
        _ => return None,
    })
}

pub(super) fn vpc_of(world: &World, address: Ipv4Addr) -> Option<String> {
    world.subnet_holding(address).map(|s| s.vpc.clone())
}
