//! A route to a transit gateway, followed as AWS forwards the packet: the
//! VPC's attachment (its state, its subnets against this end's zone), the
//! attachment's association with a TGW route table, and that table's
//! longest-prefix route to the other VPC's attachment. The request and the
//! replies each take this walk from their own end, so the way back is the
//! destination attachment's table, not the source's.

use super::route::Leg;
use super::Walk;
use crate::aws::fix;
use crate::aws::model::{Subnet, TgwAttachment, TgwRoute, TgwRouteTable, World};
use crate::outcome::Code;
use std::net::Ipv4Addr;

/// One crossing of a gateway: from a subnet toward an address.
pub(super) struct Crossing<'a> {
    pub gateway: &'a str,
    /// The subnet the packet leaves from (its route table sent it here).
    pub from: &'a Subnet,
    pub address: Ipv4Addr,
    /// The VPC holding the address, when the describes found it.
    pub to_vpc: Option<&'a str>,
    pub leg: Leg,
}

impl Leg {
    /// The code for a TGW route table without a route on this leg.
    fn tgw_missing(self) -> Code {
        match self {
            Leg::Forward => Code::TgwNoRoute,
            Leg::Return => Code::TgwReturnRouteMissing,
        }
    }
}

/// Follow the packet through the gateway; true when every object on the
/// way lets it reach the other VPC's attachment.
pub(super) fn cross(walk: &mut Walk, world: &World, crossing: &Crossing<'_>) -> bool {
    let Some(from) = attachment(walk, world, crossing) else {
        return false;
    };
    walk.chain.push(format!(
        "{} ({}, {} on {})",
        from.id, from.state, from.vpc, crossing.gateway
    ));
    if !in_zone(walk, world, from, crossing.from) {
        return false;
    }
    let Some(table) = associated(walk, world, from) else {
        return false;
    };
    let to = crossing
        .to_vpc
        .and_then(|vpc| world.attachment(crossing.gateway, vpc));
    if let (None, Some(vpc)) = (to, crossing.to_vpc) {
        unattached(walk, world, crossing, vpc);
        return false;
    }
    let Some(route) = table.route_to(crossing.address) else {
        let cidr = cidr_toward(world, crossing);
        let why = format!(
            "{} of {} has no route to {} ({cidr})",
            table.id, crossing.gateway, crossing.address
        );
        missing(walk, table, crossing, to, &cidr, why);
        return false;
    };
    leads_to(walk, world, table, route, crossing, to)
}

/// The attachment of the packet's VPC to the gateway, when it is there and
/// available; otherwise a finding (or a hop not followed when the
/// attachments could not be read).
fn attachment<'w>(
    walk: &mut Walk,
    world: &'w World,
    crossing: &Crossing<'_>,
) -> Option<&'w TgwAttachment> {
    let (gateway, subnet) = (crossing.gateway, crossing.from);
    if let Some(denied) = world.denied("DescribeTransitGatewayVpcAttachments") {
        let why = format!("its attachments could not be read ({})", denied.message);
        walk.not_followed(gateway, &subnet.account, why);
        return None;
    }
    let found = world.attachment(gateway, &subnet.vpc);
    let state = found.map(|a| a.state.as_str());
    if found.is_some_and(TgwAttachment::available) {
        return found;
    }
    let (object, explanation) = match found {
        Some(a) => (
            a.id.clone(),
            format!(
                "{} joins {} to {gateway} but is {}: no traffic crosses it",
                a.id,
                subnet.vpc,
                state.unwrap_or_default()
            ),
        ),
        None => (
            gateway.to_string(),
            format!(
                "{} routes to {gateway}, but {} has no attachment to it",
                subnet.id, subnet.vpc
            ),
        ),
    };
    let fix = found
        .is_none()
        .then(|| fix::tgw_attach(gateway, &subnet.vpc, &subnet.id));
    walk.find(
        Code::TgwAttachmentMissing,
        object,
        &subnet.account,
        explanation,
        fix,
    );
    None
}

/// The other end's VPC has no attachment to the gateway at all: no route
/// can lead there.
fn unattached(walk: &mut Walk, world: &World, crossing: &Crossing<'_>, vpc: &str) {
    let gateway = crossing.gateway;
    let held = world.subnet_holding(crossing.address);
    let account = held.map_or(crossing.from.account.as_str(), |s| s.account.as_str());
    let subnet = held.map_or("<a subnet of the VPC>", |s| s.id.as_str());
    walk.find(
        Code::TgwAttachmentMissing,
        gateway.to_string(),
        account,
        format!(
            "{vpc}, which holds {}, has no attachment to {gateway}: the gateway has nowhere to send it",
            crossing.address
        ),
        Some(fix::tgw_attach(gateway, vpc, subnet)),
    );
}

/// Whether the attachment has a subnet in the zone of the end that sends:
/// a zone without one hands the gateway nothing. Unknown zones pass.
fn in_zone(walk: &mut Walk, world: &World, attachment: &TgwAttachment, from: &Subnet) -> bool {
    let Some(zone) = from.zone.as_deref() else {
        return true;
    };
    let zones: Vec<&str> = attachment
        .subnets
        .iter()
        .filter_map(|s| world.subnets.get(s)?.zone.as_deref())
        .collect();
    if zones.is_empty() || zones.contains(&zone) {
        return true;
    }
    walk.find(
        Code::TgwAttachmentNotInZone,
        attachment.id.clone(),
        &attachment.account,
        format!(
            "{} has subnets in {} only, so {} in {zone} cannot reach the gateway",
            attachment.id,
            zones.join(", "),
            from.id
        ),
        Some(fix::tgw_add_subnet(
            &attachment.id,
            "<a subnet in that zone>",
        )),
    );
    false
}

/// The TGW route table the attachment is associated with.
fn associated<'w>(
    walk: &mut Walk,
    world: &'w World,
    attachment: &TgwAttachment,
) -> Option<&'w TgwRouteTable> {
    let Some(id) = attachment.association.as_deref() else {
        let owner = owner(world, &attachment.gateway).unwrap_or(&attachment.account);
        walk.find(
            Code::TgwNotAssociated,
            attachment.id.clone(),
            owner,
            format!(
                "{} is associated with no route table of {}: the gateway drops what it sends",
                attachment.id, attachment.gateway
            ),
            Some(fix::tgw_associate("<tgw-rtb-…>", &attachment.id)),
        );
        return None;
    };
    let table = world.tgw_table(id);
    if table.is_none() {
        let account = owner(world, &attachment.gateway).unwrap_or(&attachment.account);
        let why = format!(
            "{}'s route table {id} was not read: it lives in the gateway owner's account (network_role_arn)",
            attachment.id
        );
        walk.not_followed(id, account, why);
    }
    table
}

/// The route that matched: a blackhole, an attachment other than the
/// destination VPC's, or the way there.
fn leads_to(
    walk: &mut Walk,
    world: &World,
    table: &TgwRouteTable,
    route: &TgwRoute,
    crossing: &Crossing<'_>,
    to: Option<&TgwAttachment>,
) -> bool {
    let how = if route.propagated {
        "propagated"
    } else {
        "static"
    };
    let shown = format!(
        "{} {} -> {} ({how})",
        table.id,
        route.destination,
        route.attachments.join(", ")
    );
    walk.chain.push(shown.clone());
    if route.blackhole {
        walk.find(
            Code::TgwBlackholeRoute,
            table.id.clone(),
            &table.account,
            format!("{shown} is a blackhole"),
            to.map(|to| fix::tgw_route(&table.id, true, route.destination, &to.id)),
        );
        return false;
    }
    match to {
        Some(to) if !route.attachments.contains(&to.id) => {
            let why = format!(
                "{shown}: {} goes elsewhere than {}, the attachment of {}",
                crossing.address, to.id, to.vpc
            );
            missing(
                walk,
                table,
                crossing,
                Some(to),
                &cidr_toward(world, crossing),
                why,
            );
            false
        }
        _ => true,
    }
}

/// No route (or the wrong one) to the other end in `table`.
fn missing(
    walk: &mut Walk,
    table: &TgwRouteTable,
    crossing: &Crossing<'_>,
    to: Option<&TgwAttachment>,
    cidr: &str,
    explanation: String,
) {
    walk.find(
        crossing.leg.tgw_missing(),
        table.id.clone(),
        &table.account,
        explanation,
        to.map(|to| fix::tgw_route(&table.id, false, cidr, &to.id)),
    );
}

/// The other end's VPC range, else its address alone.
fn cidr_toward(world: &World, crossing: &Crossing<'_>) -> String {
    crossing
        .to_vpc
        .and_then(|vpc| super::vpc_cidr(world, vpc))
        .map_or_else(|| format!("{}/32", crossing.address), |c| c.to_string())
}

/// The account that owns the gateway, when it was read.
fn owner<'w>(world: &'w World, gateway: &str) -> Option<&'w str> {
    world
        .gateways
        .iter()
        .find(|g| g.id == gateway)
        .map(|g| g.account.as_str())
        .or_else(|| {
            world
                .tgw_tables
                .iter()
                .find(|t| t.gateway == gateway)
                .map(|t| t.account.as_str())
        })
}

/// Whether a rule naming a group at the other end can match across the
/// gateway: the gateway and both VPCs' attachments must enable security
/// group referencing (it is off by default, and for inbound rules only).
pub(super) fn references_work(world: &World, gateway: &str, vpcs: [&str; 2]) -> bool {
    let gateway_on = world
        .gateways
        .iter()
        .any(|g| g.id == gateway && g.sg_referencing);
    gateway_on
        && vpcs.iter().all(|vpc| {
            world
                .attachment(gateway, vpc)
                .is_some_and(|a| a.sg_referencing)
        })
}
