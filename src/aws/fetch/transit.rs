//! The transit gateways the route tables point at, read where they can
//! be: the gateway (its owner, its security group referencing switch), the
//! VPC attachments and their route table associations, the gateway's route
//! tables and their routes. An account a gateway is shared with (RAM) sees
//! the gateway and its own attachments; the route tables only answer in
//! the owner's account, read through `network_role_arn`. A handful of calls
//! per account, one more per TGW route table.

use super::{describe, Part};
use crate::aws::client::Account;
use crate::aws::model::{Target, TgwAttachment, TgwRoute, TgwRouteTable, TransitGateway};
use crate::aws::xml::Element;
use std::collections::BTreeSet;

/// The gateways the route tables read so far send traffic to.
pub fn gateways_routed(part: &Part) -> BTreeSet<String> {
    let targets = part.world.tables.iter().flat_map(|t| &t.routes);
    targets
        .filter_map(|r| match &r.target {
            Target::TransitGateway(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Read `gateways` in `account`: the gateways, attachments, tables, routes.
pub async fn read_gateways(part: &mut Part, account: &Account, gateways: &BTreeSet<String>) {
    if gateways.is_empty() {
        return;
    }
    let ids: Vec<String> = gateways.iter().cloned().collect();
    let filter = [("transit-gateway-id", ids)];
    let (found, vpc_attachments, associations, tables) = tokio::join!(
        describe(
            account,
            "DescribeTransitGateways",
            &filter,
            "transitGatewaySet"
        ),
        describe(
            account,
            "DescribeTransitGatewayVpcAttachments",
            &filter,
            "transitGatewayVpcAttachments"
        ),
        describe(
            account,
            "DescribeTransitGatewayAttachments",
            &filter,
            "transitGatewayAttachments"
        ),
        describe(
            account,
            "DescribeTransitGatewayRouteTables",
            &filter,
            "transitGatewayRouteTables"
        ),
    );
    let id = account.id.as_str();
    for item in part.note(account, found).unwrap_or_default() {
        add_gateway(part, gateway(&item, id));
    }
    let associations = part.note(account, associations).unwrap_or_default();
    for item in part.note(account, vpc_attachments).unwrap_or_default() {
        if let Some(read) = attachment(&item, id, &associations) {
            add_attachment(part, read);
        }
    }
    for item in part.note(account, tables).unwrap_or_default() {
        read_table(part, account, &item).await;
    }
}

/// One TGW route table and its routes (`SearchTransitGatewayRoutes`
/// needs a filter: every active and blackhole route; without MaxResults
/// it returns up to 1,000, its documented default and maximum).
async fn read_table(part: &mut Part, account: &Account, item: &Element) {
    let (Some(id), Some(gateway)) = (
        item.text_of("transitGatewayRouteTableId"),
        item.text_of("transitGatewayId"),
    ) else {
        return;
    };
    if part.world.tgw_tables.iter().any(|t| t.id == id) {
        return;
    }
    let params = vec![
        ("TransitGatewayRouteTableId".to_string(), id.to_string()),
        ("Filter.1.Name".to_string(), "state".to_string()),
        ("Filter.1.Value.1".to_string(), "active".to_string()),
        ("Filter.1.Value.2".to_string(), "blackhole".to_string()),
    ];
    let answer = account
        .query(
            crate::aws::client::Service::Ec2,
            "SearchTransitGatewayRoutes",
            &params,
        )
        .await;
    let Some(answer) = part.note(account, answer) else {
        return;
    };
    let routes = answer.items("routeSet").filter_map(route).collect();
    part.world.tgw_tables.push(TgwRouteTable {
        id: id.to_string(),
        gateway: gateway.to_string(),
        account: account.id.clone(),
        routes,
    });
}

fn gateway(item: &Element, account: &str) -> TransitGateway {
    let options = item.child("options");
    TransitGateway {
        id: item
            .text_of("transitGatewayId")
            .unwrap_or_default()
            .to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        sg_referencing: enabled(options, "securityGroupReferencingSupport"),
    }
}

/// A VPC attachment, with the association `DescribeTransitGatewayAttachments` gave it.
fn attachment(item: &Element, account: &str, associations: &[Element]) -> Option<TgwAttachment> {
    let id = item.text_of("transitGatewayAttachmentId")?;
    let options = item.child("options");
    let association = associations
        .iter()
        .filter(|a| a.text_of("transitGatewayAttachmentId") == Some(id))
        .filter_map(|a| a.child("association"))
        .filter(|a| matches!(a.text_of("state"), Some("associated" | "associating")))
        .find_map(|a| a.text_of("transitGatewayRouteTableId"))
        .map(str::to_string);
    Some(TgwAttachment {
        id: id.to_string(),
        gateway: item.text_of("transitGatewayId")?.to_string(),
        account: item.text_of("vpcOwnerId").unwrap_or(account).to_string(),
        vpc: item.text_of("vpcId")?.to_string(),
        state: item.text_of("state").unwrap_or_default().to_string(),
        subnets: item.items("subnetIds").map(|s| s.text.clone()).collect(),
        appliance_mode: enabled(options, "applianceModeSupport"),
        sg_referencing: enabled(options, "securityGroupReferencingSupport"),
        association,
    })
}

fn route(item: &Element) -> Option<TgwRoute> {
    Some(TgwRoute {
        destination: item.text_of("destinationCidrBlock")?.parse().ok()?,
        attachments: item
            .items("transitGatewayAttachments")
            .filter_map(|a| a.text_of("transitGatewayAttachmentId"))
            .map(str::to_string)
            .collect(),
        propagated: item.text_of("type") == Some("propagated"),
        blackhole: item.text_of("state") == Some("blackhole"),
    })
}

fn enabled(options: Option<&Element>, name: &str) -> bool {
    options.and_then(|o| o.text_of(name)) == Some("enable")
}

/// A gateway read twice (app, peer, network account) is kept once; the
/// owner's own reading wins.
fn add_gateway(part: &mut Part, read: TransitGateway) {
    part.world.gateways.retain(|g| g.id != read.id);
    part.world.gateways.push(read);
}

/// An attachment read in two accounts: the one that knows its association wins.
fn add_attachment(part: &mut Part, read: TgwAttachment) {
    let known = part.world.attachments.iter_mut().find(|a| a.id == read.id);
    match known {
        Some(known) if known.association.is_none() => *known = read,
        Some(_) => {}
        None => part.world.attachments.push(read),
    }
}

/// Merge another account's gateway reading into `part`.
pub fn merge(part: &mut Part, other: &mut crate::aws::model::World) {
    for g in other.gateways.drain(..) {
        add_gateway(part, g);
    }
    for a in other.attachments.drain(..) {
        add_attachment(part, a);
    }
    for t in other.tgw_tables.drain(..) {
        if !part.world.tgw_tables.iter().any(|known| known.id == t.id) {
            part.world.tgw_tables.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(text: &str) -> Element {
        Element::parse(text).unwrap()
    }

    #[test]
    fn an_attachment_takes_its_association_and_options() {
        let item = xml(
            "<item><transitGatewayAttachmentId>tgw-attach-1</transitGatewayAttachmentId>\
             <transitGatewayId>tgw-1</transitGatewayId><vpcId>vpc-1</vpcId><vpcOwnerId>2222</vpcOwnerId>\
             <state>available</state><subnetIds><item>subnet-a</item><item>subnet-b</item></subnetIds>\
             <options><applianceModeSupport>enable</applianceModeSupport>\
             <securityGroupReferencingSupport>disable</securityGroupReferencingSupport></options></item>",
        );
        let associations = [xml(
            "<item><transitGatewayAttachmentId>tgw-attach-1</transitGatewayAttachmentId>\
             <association><transitGatewayRouteTableId>tgw-rtb-1</transitGatewayRouteTableId>\
             <state>associated</state></association></item>",
        )];
        let read = attachment(&item, "1111", &associations).unwrap();
        assert_eq!(read.account, "2222");
        assert_eq!(read.subnets, ["subnet-a", "subnet-b"]);
        assert!(read.appliance_mode && !read.sg_referencing);
        assert_eq!(read.association.as_deref(), Some("tgw-rtb-1"));
        assert_eq!(attachment(&item, "1111", &[]).unwrap().association, None);
    }

    #[test]
    fn a_route_names_its_attachments_type_and_state() {
        let item = xml(
            "<item><destinationCidrBlock>10.0.0.0/16</destinationCidrBlock>\
             <transitGatewayAttachments><item><resourceId>vpc-1</resourceId>\
             <transitGatewayAttachmentId>tgw-attach-1</transitGatewayAttachmentId></item>\
             </transitGatewayAttachments><type>static</type><state>blackhole</state></item>",
        );
        let read = route(&item).unwrap();
        assert_eq!(read.attachments, ["tgw-attach-1"]);
        assert!(!read.propagated && read.blackhole);
    }
}
