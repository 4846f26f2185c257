//! The path walk: from a source (an ENI, or a subnet before the task
//! exists) to an address and TCP port, both ways, across both accounts,
//! over what the describes returned. Every object the traffic meets goes on
//! the chain; every object that stops it becomes a finding with its fix.
//! Takes a source, an address and a port, never an `Outcome`.

use super::fix;
use super::model::{
    Eni, Peering, Ports, Route, RouteTable, SecurityGroup, SgRule, Subnet, Target, World,
};
use super::rules::{acl_verdict, group_allowing, AclVerdict, Other, FINAL_DENY};
use crate::outcome::{Code, Finding};
use ipnet::Ipv4Net;
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

    fn group_ids(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.id.clone()).collect()
    }

    fn account(&self) -> &str {
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

    fn find(
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
    source_egress(&mut walk, source, address, port, &dest_groups);
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
    dest_ingress(&mut walk, world, source, &dest, port);
    acl_legs(&mut walk, world, dest.subnet, false, source.address, port);
    return_route(&mut walk, world, source, &dest, peering.as_ref());
    walk
}

fn source_egress(
    walk: &mut Walk,
    source: &End<'_>,
    address: Ipv4Addr,
    port: u16,
    dest_groups: &[String],
) {
    if source.eni.is_none() && source.groups.is_empty() {
        walk.chain.push(format!(
            "{} (no interface yet, no security group given: egress rules not judged)",
            source.subnet.id
        ));
        return;
    }
    let other = Other {
        address,
        groups: dest_groups,
    };
    match group_allowing(&source.groups, false, port, other) {
        Some((group, rule)) => walk
            .chain
            .push(format!("{} egress {}", group.id, rule_name(rule))),
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

fn dest_ingress(walk: &mut Walk, world: &World, source: &End<'_>, dest: &End<'_>, port: u16) {
    let source_groups = source.group_ids();
    let other = Other {
        address: source.address,
        groups: &source_groups,
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

/// The request leg and the return leg through one subnet's network ACL.
/// `outbound`: the subnet sends the request (the source side).
fn acl_legs(
    walk: &mut Walk,
    world: &World,
    subnet: &Subnet,
    outbound: bool,
    other: Ipv4Addr,
    port: u16,
) {
    let Some(acl) = world.acl_of(&subnet.id) else {
        walk.chain
            .push(format!("{}: network ACL not read", subnet.id));
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

/// The route from the source's subnet; returns the peering it uses when it
/// leads to the destination's VPC.
fn forward_route(
    walk: &mut Walk,
    world: &World,
    source: &End<'_>,
    address: Ipv4Addr,
    dest_vpc: Option<&str>,
) -> Option<Peering> {
    let Some(table) = world.table_of(source.subnet) else {
        walk.chain
            .push(format!("{}: route table not read", source.subnet.id));
        return None;
    };
    let joining = dest_vpc.and_then(|d| peering_between(world, &source.subnet.vpc, d));
    let Some(route) = longest_match(table, address) else {
        let fix = joining
            .zip(dest_vpc.and_then(|d| vpc_cidr(world, d)))
            .map(|(p, cidr)| fix::route(&table.id, false, cidr, &p.id));
        walk.find(
            Code::NoRoute,
            table.id.clone(),
            &table.account,
            format!("{} has no route to {address}", table.id),
            fix,
        );
        return None;
    };
    judge_route(
        walk,
        world,
        table,
        route,
        address,
        joining,
        dest_vpc,
        Code::BlackholeRoute,
    )
}

/// Judge the route that matched: blackhole, a peering that is not active,
/// a target other than the peering. Returns the peering when it is sound.
#[allow(clippy::too_many_arguments)]
fn judge_route(
    walk: &mut Walk,
    world: &World,
    table: &RouteTable,
    route: &Route,
    address: Ipv4Addr,
    joining: Option<&Peering>,
    other_vpc: Option<&str>,
    missing: Code,
) -> Option<Peering> {
    let shown = format!(
        "{} {} -> {}",
        table.id,
        route.destination,
        route.target.id()
    );
    walk.chain.push(shown.clone());
    let fix_to =
        |replace: bool| joining.map(|p| fix::route(&table.id, replace, route.destination, &p.id));
    if route.blackhole {
        walk.find(
            Code::BlackholeRoute,
            table.id.clone(),
            &table.account,
            format!("{shown} is a blackhole: its target is gone"),
            fix_to(true),
        );
        return None;
    }
    match &route.target {
        // The VPC's own range: the other end is in this VPC.
        Target::Local => None,
        Target::Peering(id) => match world.peering(id) {
            None => {
                walk.find(
                    Code::BlackholeRoute,
                    table.id.clone(),
                    &table.account,
                    format!("{shown}: the peering no longer exists"),
                    fix_to(true),
                );
                None
            }
            Some(p) if !p.active() => {
                peering_inactive(walk, table, p, &shown, fix_to(true));
                None
            }
            Some(p) if other_vpc.is_some_and(|v| !p.joins(&table.vpc, v)) => {
                walk.find(
                    missing_or(missing),
                    table.id.clone(),
                    &table.account,
                    format!("{shown}: {id} does not lead to the VPC that holds {address}"),
                    fix_to(true),
                );
                None
            }
            Some(p) => {
                walk.chain.push(format!("{} ({})", p.id, p.status));
                overlap(walk, p);
                Some(p.clone())
            }
        },
        Target::TransitGateway(id) => {
            walk.chain
                .push(format!("{id}: transit gateway routes not followed"));
            None
        }
        other => {
            let wider = joining.is_some_and(|p| {
                table.routes.iter().any(|r| {
                    r.target == Target::Peering(p.id.clone()) && r.destination.contains(&address)
                })
            });
            let code = if wider {
                Code::MoreSpecificRoute
            } else {
                missing_or(missing)
            };
            let fix = if wider {
                Some(fix::delete_route(&table.id, route.destination))
            } else {
                fix_to(true)
            };
            walk.find(
                code,
                table.id.clone(),
                &table.account,
                format!(
                    "{shown}: traffic for {address} goes to {} instead of the peering",
                    other.id()
                ),
                fix,
            );
            None
        }
    }
}

/// The forward leg reports a missing route as `no_route`; the return leg as `return_route_missing`.
fn missing_or(missing: Code) -> Code {
    match missing {
        Code::BlackholeRoute => Code::NoRoute,
        other => other,
    }
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

fn return_route(
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
        walk.chain
            .push(format!("{}: route table not read", dest.subnet.id));
        return;
    };
    let joining = forward
        .cloned()
        .or_else(|| peering_between(world, &dest.subnet.vpc, &source.subnet.vpc).cloned());
    let source_cidr = vpc_cidr(world, &source.subnet.vpc).unwrap_or(source.subnet.cidr);
    match longest_match(table, source.address) {
        None => {
            let fix = joining
                .as_ref()
                .map(|p| fix::route(&table.id, false, source_cidr, &p.id));
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
        }
        Some(route) => {
            judge_route(
                walk,
                world,
                table,
                route,
                source.address,
                joining.as_ref(),
                Some(&source.subnet.vpc),
                Code::ReturnRouteMissing,
            );
        }
    }
}

fn longest_match(table: &RouteTable, address: Ipv4Addr) -> Option<&Route> {
    table
        .routes
        .iter()
        .filter(|r| r.destination.contains(&address))
        .max_by_key(|r| r.destination.prefix_len())
}

/// The peering joining two VPCs: an active one first, else any.
fn peering_between<'w>(world: &'w World, a: &str, b: &str) -> Option<&'w Peering> {
    let joining = || world.peerings.iter().filter(|p| p.joins(a, b));
    joining().find(|p| p.active()).or_else(|| joining().next())
}

fn vpc_cidr(world: &World, vpc: &str) -> Option<Ipv4Net> {
    if let Some(cidr) = world.vpcs.get(vpc).and_then(|v| v.cidrs.first()) {
        return Some(*cidr);
    }
    world
        .peerings
        .iter()
        .find_map(|p| p.side(vpc).and_then(|s| s.cidrs.first().copied()))
}

fn vpc_of(world: &World, address: Ipv4Addr) -> Option<String> {
    world.subnet_holding(address).map(|s| s.vpc.clone())
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
    use super::model::Peer;
    match &rule.peer {
        Peer::Cidr(net) => net.to_string(),
        Peer::PrefixList(id, _) => id.clone(),
        Peer::Group(id) => id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::model::*;

    const APP: &str = "111111111111";
    const DB: &str = "222222222222";

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn open_acl(id: &str, account: &str, subnet: &str) -> NetworkAcl {
        let entry = |egress| AclEntry {
            number: 100,
            egress,
            allow: true,
            protocol: Protocol::All,
            cidr: net("0.0.0.0/0"),
        };
        NetworkAcl {
            id: id.into(),
            account: account.into(),
            vpc: String::new(),
            subnets: vec![subnet.into()],
            entries: vec![entry(true), entry(false)],
        }
    }

    fn group(id: &str, account: &str, ingress: Vec<SgRule>) -> SecurityGroup {
        let all = SgRule {
            id: None,
            protocol: Protocol::All,
            peer: Peer::Cidr(net("0.0.0.0/0")),
        };
        SecurityGroup {
            id: id.into(),
            account: account.into(),
            name: id.into(),
            ingress,
            egress: vec![all],
        }
    }

    fn route(destination: &str, target: Target) -> Route {
        Route {
            destination: net(destination),
            target,
            blackhole: false,
        }
    }

    /// The app VPC 10.20/16 and the database VPC 10.0/16, peered by pcx-1,
    /// with the database side's CIDRs as given.
    fn world(db_cidrs: &[&str], app_routes: Vec<Route>) -> World {
        let mut w = World {
            accounts: vec![APP.into(), DB.into()],
            ..World::default()
        };
        w.subnets.insert(
            "subnet-a".into(),
            Subnet {
                id: "subnet-a".into(),
                account: APP.into(),
                vpc: "vpc-app".into(),
                cidr: net("10.20.1.0/24"),
            },
        );
        w.subnets.insert(
            "subnet-d".into(),
            Subnet {
                id: "subnet-d".into(),
                account: DB.into(),
                vpc: "vpc-db".into(),
                cidr: net("10.0.1.0/24"),
            },
        );
        w.enis.push(Eni {
            id: "eni-task".into(),
            account: APP.into(),
            address: "10.20.1.10".parse().unwrap(),
            subnet: "subnet-a".into(),
            vpc: "vpc-app".into(),
            groups: vec!["sg-task".into()],
        });
        w.enis.push(Eni {
            id: "eni-db".into(),
            account: DB.into(),
            address: "10.0.1.12".parse().unwrap(),
            subnet: "subnet-d".into(),
            vpc: "vpc-db".into(),
            groups: vec!["sg-db".into()],
        });
        let admit = SgRule {
            id: Some("sgr-1".into()),
            protocol: Protocol::Tcp(Ports::one(5432)),
            peer: Peer::Cidr(net("10.20.0.0/16")),
        };
        w.groups
            .insert("sg-task".into(), group("sg-task", APP, vec![]));
        w.groups
            .insert("sg-db".into(), group("sg-db", DB, vec![admit]));
        w.acls.push(open_acl("acl-a", APP, "subnet-a"));
        w.acls.push(open_acl("acl-d", DB, "subnet-d"));
        let mut routes = vec![route("10.20.0.0/16", Target::Local)];
        routes.extend(app_routes);
        w.tables.push(RouteTable {
            id: "rtb-a".into(),
            account: APP.into(),
            vpc: "vpc-app".into(),
            subnets: vec!["subnet-a".into()],
            main: false,
            routes,
        });
        let back = vec![
            route("10.0.0.0/16", Target::Local),
            route("10.20.0.0/16", Target::Peering("pcx-1".into())),
        ];
        w.tables.push(RouteTable {
            id: "rtb-d".into(),
            account: DB.into(),
            vpc: "vpc-db".into(),
            subnets: vec![],
            main: true,
            routes: back,
        });
        let side = |vpc: &str, account: &str, cidrs: Vec<Ipv4Net>| PeeringSide {
            vpc: vpc.into(),
            account: account.into(),
            cidrs,
            dns_from_remote: true,
        };
        w.peerings.push(Peering {
            id: "pcx-1".into(),
            status: "active".into(),
            requester: side("vpc-app", APP, vec![net("10.20.0.0/16")]),
            accepter: side("vpc-db", DB, db_cidrs.iter().map(|c| net(c)).collect()),
        });
        w
    }

    fn codes(w: &World) -> Vec<Code> {
        let source = End::at_eni(w, w.eni("eni-task").unwrap()).unwrap();
        walk(w, &source, "10.0.1.12".parse().unwrap(), 5432)
            .findings
            .iter()
            .map(|f| f.code)
            .collect()
    }

    fn peered() -> Vec<Route> {
        vec![route("10.0.0.0/16", Target::Peering("pcx-1".into()))]
    }

    #[test]
    fn the_healthy_path_has_no_finding_and_names_the_admitting_rule() {
        let w = world(&["10.0.0.0/16"], peered());
        assert_eq!(codes(&w), []);
        let source = End::at_eni(&w, w.eni("eni-task").unwrap()).unwrap();
        let walked = walk(&w, &source, "10.0.1.12".parse().unwrap(), 5432);
        assert_eq!(
            walked.admitted_by.map(|f| f.object),
            Some("sgr-1".to_string())
        );
    }

    #[test]
    fn a_secondary_cidr_that_overlaps_is_named_on_the_peering() {
        let w = world(&["10.0.0.0/16", "10.20.128.0/17"], peered());
        assert_eq!(codes(&w), [Code::CidrOverlap]);
    }

    #[test]
    fn a_transit_gateway_route_is_named_not_judged() {
        let w = world(
            &["10.0.0.0/16"],
            vec![route("10.0.0.0/8", Target::TransitGateway("tgw-1".into()))],
        );
        let source = End::at_eni(&w, w.eni("eni-task").unwrap()).unwrap();
        let walked = walk(&w, &source, "10.0.1.12".parse().unwrap(), 5432);
        assert!(walked.findings.is_empty(), "{:?}", walked.findings);
        assert!(
            walked
                .chain
                .iter()
                .any(|c| c.contains("tgw-1: transit gateway routes not followed")),
            "{:?}",
            walked.chain
        );
    }

    #[test]
    fn a_wider_peering_route_behind_a_specific_gateway_route_is_more_specific_route() {
        let mut routes = peered();
        routes.push(route("10.0.1.0/24", Target::Gateway("igw-1".into())));
        let w = world(&["10.0.0.0/16"], routes);
        assert_eq!(codes(&w), [Code::MoreSpecificRoute]);
    }
}
