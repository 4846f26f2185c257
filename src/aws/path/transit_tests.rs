//! The walk across a transit gateway, against a hand-built world: the app
//! VPC and the database VPC each attached to tgw-1, each attachment
//! associated with its own TGW route table. One named test per fault row.

use super::tests::{codes, net, route, world, APP, DB};
use super::*;
use crate::aws::model::*;

const NETWORK: &str = "333333333333";

fn attachment(id: &str, account: &str, vpc: &str, subnet: &str, table: &str) -> TgwAttachment {
    TgwAttachment {
        id: id.into(),
        gateway: "tgw-1".into(),
        account: account.into(),
        vpc: vpc.into(),
        state: "available".into(),
        subnets: vec![subnet.into()],
        appliance_mode: false,
        sg_referencing: false,
        association: Some(table.into()),
    }
}

fn tgw_table(id: &str, destination: &str, to: &str) -> TgwRouteTable {
    TgwRouteTable {
        id: id.into(),
        gateway: "tgw-1".into(),
        account: NETWORK.into(),
        routes: vec![TgwRoute {
            destination: net(destination),
            attachments: vec![to.into()],
            propagated: true,
            blackhole: false,
        }],
    }
}

/// The healthy world: both VPCs routed through tgw-1, no peering.
fn joined() -> World {
    let mut w = world(
        &["10.0.0.0/16"],
        vec![route("10.0.0.0/16", Target::TransitGateway("tgw-1".into()))],
    );
    w.peerings.clear();
    for (id, account, cidr) in [
        ("vpc-app", APP, "10.20.0.0/16"),
        ("vpc-db", DB, "10.0.0.0/16"),
    ] {
        let vpc = Vpc {
            id: id.into(),
            account: account.into(),
            cidrs: vec![net(cidr)],
            dns_support: Some(true),
            dns_hostnames: Some(true),
        };
        w.vpcs.insert(id.into(), vpc);
    }
    let back = w.tables.iter_mut().find(|t| t.id == "rtb-d").unwrap();
    back.routes[1] = route("10.20.0.0/16", Target::TransitGateway("tgw-1".into()));
    w.gateways.push(TransitGateway {
        id: "tgw-1".into(),
        account: NETWORK.into(),
        sg_referencing: false,
    });
    w.attachments = vec![
        attachment("tgw-attach-app", APP, "vpc-app", "subnet-a", "tgw-rtb-app"),
        attachment("tgw-attach-db", DB, "vpc-db", "subnet-d", "tgw-rtb-db"),
    ];
    w.tgw_tables = vec![
        tgw_table("tgw-rtb-app", "10.0.0.0/16", "tgw-attach-db"),
        tgw_table("tgw-rtb-db", "10.20.0.0/16", "tgw-attach-app"),
    ];
    w
}

fn walked(w: &World) -> Walk {
    let source = End::at_eni(w, w.eni("eni-task").unwrap()).unwrap();
    walk(w, &source, "10.0.1.12".parse().unwrap(), 5432)
}

/// The one finding of `w`: its code, object and fix.
fn finding(w: &World) -> Finding {
    let walked = walked(w);
    assert_eq!(walked.findings.len(), 1, "{:#?}", walked.findings);
    walked.findings[0].clone()
}

fn table_mut<'w>(w: &'w mut World, id: &str) -> &'w mut TgwRouteTable {
    w.tgw_tables.iter_mut().find(|t| t.id == id).unwrap()
}

fn attachment_mut<'w>(w: &'w mut World, id: &str) -> &'w mut TgwAttachment {
    w.attachments.iter_mut().find(|a| a.id == id).unwrap()
}

#[test]
fn the_healthy_gateway_path_is_followed_both_ways() {
    let w = joined();
    let walked = walked(&w);
    assert_eq!(walked.findings, [], "{:#?}", walked.chain);
    let chain = walked.chain.join(" | ");
    for hop in [
        "rtb-a 10.0.0.0/16 -> tgw-1",
        "tgw-attach-app (available, vpc-app on tgw-1)",
        "tgw-rtb-app 10.0.0.0/16 -> tgw-attach-db (propagated)",
        "tgw-rtb-db 10.20.0.0/16 -> tgw-attach-app (propagated)",
    ] {
        assert!(chain.contains(hop), "{hop} not in {chain}");
    }
}

#[test]
fn tgw_subnet_route_missing() {
    let mut w = joined();
    w.tables[0].routes.truncate(1);
    let found = finding(&w);
    assert_eq!(found.code, Code::NoRoute);
    assert_eq!(
        found.fix.as_deref(),
        Some("aws ec2 create-route --route-table-id rtb-a --destination-cidr-block 10.0.0.0/16 --transit-gateway-id tgw-1")
    );
}

#[test]
fn tgw_no_route_to_the_destination() {
    let mut w = joined();
    table_mut(&mut w, "tgw-rtb-app").routes.clear();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwNoRoute, "tgw-rtb-app")
    );
    assert_eq!(found.account.as_deref(), Some(NETWORK));
    assert!(found.fix.unwrap().contains(
        "--transit-gateway-route-table-id tgw-rtb-app --destination-cidr-block 10.0.0.0/16 --transit-gateway-attachment-id tgw-attach-db"
    ));
}

#[test]
fn tgw_route_to_another_attachment() {
    let mut w = joined();
    table_mut(&mut w, "tgw-rtb-app").routes[0].attachments = vec!["tgw-attach-vpn".into()];
    let found = finding(&w);
    assert_eq!(found.code, Code::TgwNoRoute);
    assert!(
        found.explanation.contains("elsewhere than tgw-attach-db"),
        "{}",
        found.explanation
    );
}

#[test]
fn tgw_blackhole() {
    let mut w = joined();
    table_mut(&mut w, "tgw-rtb-app").routes[0].blackhole = true;
    assert_eq!(finding(&w).code, Code::TgwBlackholeRoute);
}

#[test]
fn tgw_attachment_not_associated() {
    let mut w = joined();
    attachment_mut(&mut w, "tgw-attach-app").association = None;
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwNotAssociated, "tgw-attach-app")
    );
    assert_eq!(
        found.account.as_deref(),
        Some(NETWORK),
        "the gateway owner associates"
    );
}

#[test]
fn tgw_return_route_missing() {
    let mut w = joined();
    table_mut(&mut w, "tgw-rtb-db").routes.clear();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwReturnRouteMissing, "tgw-rtb-db")
    );
    assert!(found.fix.unwrap().contains(
        "--destination-cidr-block 10.20.0.0/16 --transit-gateway-attachment-id tgw-attach-app"
    ));
}

#[test]
fn tgw_return_subnet_route_missing() {
    let mut w = joined();
    w.tables[1].routes.truncate(1);
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::ReturnRouteMissing, "rtb-d")
    );
    assert!(found.fix.unwrap().ends_with("--transit-gateway-id tgw-1"));
}

#[test]
fn tgw_no_attachment_subnet_in_the_source_zone() {
    let mut w = joined();
    w.subnets.insert(
        "subnet-b".into(),
        Subnet {
            id: "subnet-b".into(),
            account: APP.into(),
            vpc: "vpc-app".into(),
            cidr: net("10.20.2.0/24"),
            zone: Some("eu-west-1b".into()),
        },
    );
    attachment_mut(&mut w, "tgw-attach-app").subnets = vec!["subnet-b".into()];
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwAttachmentNotInZone, "tgw-attach-app")
    );
    assert!(
        found.explanation.contains("eu-west-1b only"),
        "{}",
        found.explanation
    );
}

#[test]
fn tgw_attachment_pending_acceptance() {
    let mut w = joined();
    attachment_mut(&mut w, "tgw-attach-db").state = "pendingAcceptance".into();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwAttachmentMissing, "tgw-attach-db")
    );
}

#[test]
fn tgw_vpc_not_attached() {
    let mut w = joined();
    w.attachments.retain(|a| a.id != "tgw-attach-app");
    let found = finding(&w);
    assert_eq!(found.code, Code::TgwAttachmentMissing);
    assert!(found.fix.unwrap().starts_with(
        "aws ec2 create-transit-gateway-vpc-attachment --transit-gateway-id tgw-1 --vpc-id vpc-app"
    ));
}

#[test]
fn tgw_destination_vpc_not_attached() {
    let mut w = joined();
    w.attachments.retain(|a| a.id != "tgw-attach-db");
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::TgwAttachmentMissing, "tgw-1")
    );
    assert_eq!(found.account.as_deref(), Some(DB));
    assert!(found
        .fix
        .unwrap()
        .ends_with("--vpc-id vpc-db --subnet-ids subnet-d"));
}

#[test]
fn tgw_route_table_not_read_keeps_the_path_unjudged() {
    let mut w = joined();
    w.tgw_tables.clear();
    let walked = walked(&w);
    assert!(
        walked.unfollowed() && !walked.blocked(),
        "{:#?}",
        walked.findings
    );
    assert!(walked.findings[0].explanation.contains("network_role_arn"));
}

#[test]
fn tgw_sg_reference_across_the_gateway() {
    let mut w = joined();
    referenced(&mut w);
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::SgReferenceAcrossTgw, "sgr-ref")
    );
    assert_eq!(found.account.as_deref(), Some(DB));
    // Enabled on the gateway and both attachments, the reference matches.
    w.gateways[0].sg_referencing = true;
    w.attachments
        .iter_mut()
        .for_each(|a| a.sg_referencing = true);
    assert_eq!(codes(&w), []);
}

/// The database admits the task's group by reference only.
fn referenced(w: &mut World) {
    let db = w.groups.get_mut("sg-db").unwrap();
    db.ingress = vec![SgRule {
        id: Some("sgr-ref".into()),
        protocol: Protocol::Tcp(Ports::one(5432)),
        peer: Peer::Group("sg-task".into()),
    }];
}
