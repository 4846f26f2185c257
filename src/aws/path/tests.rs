//! The walk against hand-built worlds: one fact of the path per test.

use super::*;
use crate::aws::model::*;

pub(super) const APP: &str = "111111111111";
pub(super) const DB: &str = "222222222222";

pub(super) fn net(text: &str) -> Ipv4Net {
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

pub(super) fn group(id: &str, account: &str, ingress: Vec<SgRule>) -> SecurityGroup {
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

pub(super) fn route(destination: &str, target: Target) -> Route {
    Route {
        destination: net(destination),
        target,
        blackhole: false,
    }
}

/// An ordinary interface holding `address`, in one security group.
pub(super) fn eni(
    id: &str,
    account: &str,
    address: &str,
    subnet: &str,
    vpc: &str,
    group: &str,
) -> Eni {
    Eni {
        id: id.into(),
        account: account.into(),
        address: address.parse().unwrap(),
        subnet: subnet.into(),
        vpc: vpc.into(),
        groups: vec![group.into()],
        interface_type: None,
    }
}

/// The app VPC 10.20/16 and the database VPC 10.0/16, peered by pcx-1,
/// with the database side's CIDRs as given.
pub(super) fn world(db_cidrs: &[&str], app_routes: Vec<Route>) -> World {
    let mut w = World {
        accounts: vec![APP.into(), DB.into()],
        ..World::default()
    };
    for (id, account, vpc, cidr) in [
        ("subnet-a", APP, "vpc-app", "10.20.1.0/24"),
        ("subnet-d", DB, "vpc-db", "10.0.1.0/24"),
    ] {
        let subnet = Subnet {
            id: id.into(),
            account: account.into(),
            vpc: vpc.into(),
            cidr: net(cidr),
            zone: Some("eu-west-1a".into()),
        };
        w.subnets.insert(id.into(), subnet);
    }
    w.enis.push(eni(
        "eni-task",
        APP,
        "10.20.1.10",
        "subnet-a",
        "vpc-app",
        "sg-task",
    ));
    w.enis.push(eni(
        "eni-db",
        DB,
        "10.0.1.12",
        "subnet-d",
        "vpc-db",
        "sg-db",
    ));
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

pub(super) fn codes(w: &World) -> Vec<Code> {
    let source = End::at_eni(w, w.eni("eni-task").unwrap()).unwrap();
    walk(w, &source, "10.0.1.12".parse().unwrap(), 5432)
        .findings
        .iter()
        .map(|f| f.code)
        .collect()
}

pub(super) fn peered() -> Vec<Route> {
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
fn a_route_to_an_appliance_interface_keeps_the_path_unjudged() {
    let w = world(
        &["10.0.0.0/16"],
        vec![route("10.0.0.0/16", Target::Other("eni-firewall".into()))],
    );
    assert_eq!(codes(&w), [Code::HopNotFollowed]);
}

#[test]
fn a_subnet_whose_route_table_was_not_read_keeps_the_path_unjudged() {
    let mut w = world(&["10.0.0.0/16"], peered());
    w.tables.retain(|t| t.id != "rtb-a");
    assert_eq!(codes(&w), [Code::HopNotFollowed]);
}

#[test]
fn a_wider_peering_route_behind_a_specific_gateway_route_is_more_specific_route() {
    let mut routes = peered();
    routes.push(route("10.0.1.0/24", Target::Gateway("igw-1".into())));
    let w = world(&["10.0.0.0/16"], routes);
    assert_eq!(codes(&w), [Code::MoreSpecificRoute]);
}

#[test]
fn an_interface_endpoint_destination_keeps_the_path_unjudged() {
    let mut w = world(&["10.0.0.0/16"], peered());
    db_type(&mut w, "vpc_endpoint");
    assert_eq!(codes(&w), [Code::HopNotFollowed]);
    db_type(&mut w, "interface");
    assert_eq!(codes(&w), []);
}

fn db_type(w: &mut World, kind: &str) {
    let db = w.enis.iter_mut().find(|e| e.id == "eni-db").unwrap();
    db.interface_type = Some(kind.into());
}
