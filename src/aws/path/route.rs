//! The route tables both ways: the source subnet's route toward the
//! destination, the destination subnet's route back, and what each leads
//! to (the local VPC, an active peering joining the right VPCs, or
//! something that stops the traffic).

use super::transit::{cross, Crossing};
use super::{longest_match, peering_between, vpc_cidr, End, Walk};
use crate::aws::fix;
use crate::aws::model::{Peering, Route, RouteTable, Subnet, Target, World};
use crate::outcome::Code;
use std::net::Ipv4Addr;

/// Which way a route is judged: the request toward the destination, or
/// the replies back to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leg {
    Forward,
    Return,
}

impl Leg {
    /// The code for a route that leads elsewhere or nowhere on this leg.
    fn missing(self) -> Code {
        match self {
            Leg::Forward => Code::NoRoute,
            Leg::Return => Code::ReturnRouteMissing,
        }
    }
}

/// Where one leg must get to: the address, the VPC holding it when known,
/// and the peering that joins the two VPCs when there is one.
struct Toward<'a> {
    /// The subnet whose table routes the packet.
    from: &'a Subnet,
    address: Ipv4Addr,
    vpc: Option<&'a str>,
    joining: Option<&'a Peering>,
    leg: Leg,
}

/// The route from the source's subnet; returns the peering it uses when it
/// leads to the destination's VPC.
pub(super) fn forward_route(
    walk: &mut Walk,
    world: &World,
    source: &End<'_>,
    address: Ipv4Addr,
    dest_vpc: Option<&str>,
) -> Option<Peering> {
    let Some(table) = world.table_of(source.subnet) else {
        let subnet = source.subnet;
        walk.not_followed(&subnet.id, &subnet.account, "route table not read".into());
        return None;
    };
    let joining = dest_vpc.and_then(|d| peering_between(world, &source.subnet.vpc, d));
    let Some(route) = longest_match(table, address) else {
        let fix = dest_vpc.and_then(|d| {
            let cidr = vpc_cidr(world, d)?;
            way(world, &table.id, cidr, joining, [&source.subnet.vpc, d])
        });
        walk.find(
            Code::NoRoute,
            table.id.clone(),
            &table.account,
            format!("{} has no route to {address}", table.id),
            fix,
        );
        return None;
    };
    let toward = Toward {
        from: source.subnet,
        address,
        vpc: dest_vpc,
        joining,
        leg: Leg::Forward,
    };
    judge_route(walk, world, table, route, &toward)
}

/// The route back from the destination's subnet to the source.
pub(super) fn return_route(
    walk: &mut Walk,
    world: &World,
    source: &End<'_>,
    dest: &End<'_>,
    forward: Option<&Peering>,
) {
    if dest.subnet.vpc == source.subnet.vpc {
        return;
    }
    let Some(table) = world.table_of(dest.subnet) else {
        let subnet = dest.subnet;
        walk.not_followed(&subnet.id, &subnet.account, "route table not read".into());
        return;
    };
    let joining = forward
        .cloned()
        .or_else(|| peering_between(world, &dest.subnet.vpc, &source.subnet.vpc).cloned());
    let source_cidr = vpc_cidr(world, &source.subnet.vpc).unwrap_or(source.subnet.cidr);
    let Some(route) = longest_match(table, source.address) else {
        let vpcs = [dest.subnet.vpc.as_str(), source.subnet.vpc.as_str()];
        let fix = way(world, &table.id, source_cidr, joining.as_ref(), vpcs);
        walk.find(
            Code::ReturnRouteMissing,
            table.id.clone(),
            &table.account,
            format!(
                "{} has no route back to {} ({source_cidr})",
                table.id, source.address
            ),
            fix,
        );
        return;
    };
    let toward = Toward {
        from: dest.subnet,
        address: source.address,
        vpc: Some(&source.subnet.vpc),
        joining: joining.as_ref(),
        leg: Leg::Return,
    };
    judge_route(walk, world, table, route, &toward);
}

/// The route to add to `table` for `cidr`: through the peering joining the
/// two VPCs, else through a transit gateway both are attached to.
fn way(
    world: &World,
    table: &str,
    cidr: ipnet::Ipv4Net,
    joining: Option<&Peering>,
    vpcs: [&str; 2],
) -> Option<String> {
    if let Some(p) = joining {
        return Some(fix::route(table, false, cidr, &p.id));
    }
    let shared = world
        .attachments
        .iter()
        .find(|a| a.vpc == vpcs[0] && world.attachment(&a.gateway, vpcs[1]).is_some())?;
    Some(fix::route_to_tgw(table, false, cidr, &shared.gateway))
}

/// Judge the route that matched: blackhole, a peering that is not active,
/// a target other than the peering. Returns the peering when it is sound.
fn judge_route(
    walk: &mut Walk,
    world: &World,
    table: &RouteTable,
    route: &Route,
    toward: &Toward<'_>,
) -> Option<Peering> {
    let shown = format!(
        "{} {} -> {}",
        table.id,
        route.destination,
        route.target.id()
    );
    walk.chain.push(shown.clone());
    if route.blackhole {
        walk.find(
            Code::BlackholeRoute,
            table.id.clone(),
            &table.account,
            format!("{shown} is a blackhole: its target is gone"),
            replacement(table, route, toward),
        );
        return None;
    }
    match &route.target {
        // The VPC's own range: the other end is in this VPC.
        Target::Local => None,
        Target::Peering(id) => judge_peering(walk, world, table, route, id, toward),
        Target::TransitGateway(gateway) => {
            let crossing = Crossing {
                gateway,
                from: toward.from,
                address: toward.address,
                to_vpc: toward.vpc,
                leg: toward.leg,
            };
            cross(walk, world, &crossing);
            None
        }
        Target::Other(id) => {
            let why =
                format!("{shown}: what an interface, instance or endpoint forwards is not judged");
            walk.not_followed(id, &table.account, why);
            None
        }
        other => {
            judge_elsewhere(walk, table, route, other, toward);
            None
        }
    }
}

/// The fix that points `route` at the joining peering, when there is one.
fn replacement(table: &RouteTable, route: &Route, toward: &Toward<'_>) -> Option<String> {
    toward
        .joining
        .map(|p| fix::route(&table.id, true, route.destination, &p.id))
}

/// A route to a peering: gone, not active, joining other VPCs, or sound.
fn judge_peering(
    walk: &mut Walk,
    world: &World,
    table: &RouteTable,
    route: &Route,
    id: &str,
    toward: &Toward<'_>,
) -> Option<Peering> {
    let shown = format!("{} {} -> {id}", table.id, route.destination);
    let fix = replacement(table, route, toward);
    match world.peering(id) {
        None => {
            walk.find(
                Code::BlackholeRoute,
                table.id.clone(),
                &table.account,
                format!("{shown}: the peering no longer exists"),
                fix,
            );
            None
        }
        Some(p) if !p.active() => {
            peering_inactive(walk, table, p, &shown, fix);
            None
        }
        Some(p) if toward.vpc.is_some_and(|v| !p.joins(&table.vpc, v)) => {
            walk.find(
                toward.leg.missing(),
                table.id.clone(),
                &table.account,
                format!(
                    "{shown}: {id} does not lead to the VPC that holds {}",
                    toward.address
                ),
                fix,
            );
            None
        }
        Some(p) => {
            walk.chain.push(format!("{} ({})", p.id, p.status));
            overlap(walk, p);
            Some(p.clone())
        }
    }
}

/// A route to a gateway or a NAT where the peering should be: a more specific route shadowing the peering's, or no route to it.
fn judge_elsewhere(
    walk: &mut Walk,
    table: &RouteTable,
    route: &Route,
    other: &Target,
    toward: &Toward<'_>,
) {
    let address = toward.address;
    let wider = toward.joining.is_some_and(|p| {
        table
            .routes
            .iter()
            .any(|r| r.target == Target::Peering(p.id.clone()) && r.destination.contains(&address))
    });
    let (code, fix) = if wider {
        let fix = fix::delete_route(&table.id, route.destination);
        (Code::MoreSpecificRoute, Some(fix))
    } else {
        (toward.leg.missing(), replacement(table, route, toward))
    };
    walk.find(
        code,
        table.id.clone(),
        &table.account,
        format!(
            "{} {} -> {}: traffic for {address} goes to {} instead of the peering",
            table.id,
            route.destination,
            other.id(),
            other.id()
        ),
        fix,
    );
}

fn peering_inactive(
    walk: &mut Walk,
    table: &RouteTable,
    p: &Peering,
    shown: &str,
    replace: Option<String>,
) {
    let pending = matches!(
        p.status.as_str(),
        "pending-acceptance" | "initiating-request" | "provisioning"
    );
    if pending {
        walk.find(
            Code::PeeringNotActive,
            p.id.clone(),
            &p.accepter.account,
            format!("{} is {}: no traffic crosses it yet", p.id, p.status),
            Some(fix::accept_peering(&p.id)),
        );
    } else {
        walk.find(
            Code::BlackholeRoute,
            table.id.clone(),
            &table.account,
            format!(
                "{shown}: {} is {}, so the route is a blackhole",
                p.id, p.status
            ),
            replace,
        );
    }
}

fn overlap(walk: &mut Walk, p: &Peering) {
    for a in &p.requester.cidrs {
        if let Some(b) = p
            .accepter
            .cidrs
            .iter()
            .find(|b| a.contains(&b.network()) || b.contains(&a.network()))
        {
            walk.find(
                Code::CidrOverlap,
                p.id.clone(),
                &p.requester.account,
                format!("{} joins {a} and {b}, which overlap", p.id),
                None,
            );
        }
    }
}
