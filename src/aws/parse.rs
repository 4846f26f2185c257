//! The EC2 describes' XML items to `model` types: one function per
//! resource type, no I/O. `fetch` makes the calls.

use super::model::*;
use super::xml::Element;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

pub(super) fn enis(item: &Element, account: &str) -> Vec<Eni> {
    let text = |name| item.text_of(name).unwrap_or_default().to_string();
    let groups: Vec<String> = item
        .items("groupSet")
        .filter_map(|g| g.text_of("groupId"))
        .map(str::to_string)
        .collect();
    let mut addresses: Vec<Ipv4Addr> = item
        .items("privateIpAddressesSet")
        .filter_map(|a| a.text_of("privateIpAddress")?.parse().ok())
        .collect();
    if let Some(primary) = item
        .text_of("privateIpAddress")
        .and_then(|a| a.parse().ok())
    {
        if !addresses.contains(&primary) {
            addresses.insert(0, primary);
        }
    }
    let owner = item.text_of("ownerId").unwrap_or(account).to_string();
    let interface_type = item.text_of("interfaceType").map(str::to_string);
    addresses
        .into_iter()
        .map(|address| Eni {
            id: text("networkInterfaceId"),
            account: owner.clone(),
            address,
            subnet: text("subnetId"),
            vpc: text("vpcId"),
            groups: groups.clone(),
            interface_type: interface_type.clone(),
        })
        .collect()
}

pub(super) fn subnet(item: &Element, account: &str) -> Option<Subnet> {
    Some(Subnet {
        id: item.text_of("subnetId")?.to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        vpc: item.text_of("vpcId")?.to_string(),
        cidr: item.text_of("cidrBlock")?.parse().ok()?,
        zone: item.text_of("availabilityZone").map(str::to_string),
    })
}

pub(super) fn vpc(item: &Element, account: &str) -> Vpc {
    let mut cidrs: Vec<Ipv4Net> = item
        .items("cidrBlockAssociationSet")
        .filter_map(|c| c.text_of("cidrBlock")?.parse().ok())
        .collect();
    if cidrs.is_empty() {
        cidrs.extend(
            item.text_of("cidrBlock")
                .and_then(|c| c.parse::<Ipv4Net>().ok()),
        );
    }
    Vpc {
        id: item.text_of("vpcId").unwrap_or_default().to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        cidrs,
        dns_support: None,
        dns_hostnames: None,
    }
}

pub(super) fn table(item: &Element, account: &str) -> RouteTable {
    let associations: Vec<&Element> = item.items("associationSet").collect();
    RouteTable {
        id: item.text_of("routeTableId").unwrap_or_default().to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        vpc: item.text_of("vpcId").unwrap_or_default().to_string(),
        subnets: associations
            .iter()
            .filter_map(|a| a.text_of("subnetId"))
            .map(str::to_string)
            .collect(),
        main: associations
            .iter()
            .any(|a| a.text_of("main") == Some("true")),
        routes: item.items("routeSet").filter_map(route).collect(),
    }
}

pub(super) fn route(item: &Element) -> Option<Route> {
    let destination = item.text_of("destinationCidrBlock")?.parse().ok()?;
    let target = [
        ("vpcPeeringConnectionId", 0),
        ("transitGatewayId", 1),
        ("natGatewayId", 2),
        ("gatewayId", 3),
        ("networkInterfaceId", 4),
        ("instanceId", 4),
    ]
    .iter()
    .find_map(|(name, kind)| item.text_of(name).map(|id| (id.to_string(), *kind)))
    .map(|(id, kind)| match (kind, id.as_str()) {
        (3, "local") => Target::Local,
        (0, _) => Target::Peering(id),
        (1, _) => Target::TransitGateway(id),
        (2, _) => Target::Nat(id),
        (3, _) => Target::Gateway(id),
        _ => Target::Other(id),
    })
    .unwrap_or(Target::Other("unknown".into()));
    Some(Route {
        destination,
        target,
        blackhole: item.text_of("state") == Some("blackhole"),
    })
}

pub(super) fn acl(item: &Element, account: &str) -> NetworkAcl {
    NetworkAcl {
        id: item.text_of("networkAclId").unwrap_or_default().to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        vpc: item.text_of("vpcId").unwrap_or_default().to_string(),
        subnets: item
            .items("associationSet")
            .filter_map(|a| a.text_of("subnetId"))
            .map(str::to_string)
            .collect(),
        entries: item.items("entrySet").filter_map(acl_entry).collect(),
    }
}

pub(super) fn acl_entry(item: &Element) -> Option<AclEntry> {
    let range = item.child("portRange").and_then(|r| {
        Some(Ports {
            from: r.text_of("from")?.parse().ok()?,
            to: r.text_of("to")?.parse().ok()?,
        })
    });
    Some(AclEntry {
        number: item.text_of("ruleNumber")?.parse().ok()?,
        egress: item.text_of("egress") == Some("true"),
        allow: item.text_of("ruleAction") == Some("allow"),
        protocol: protocol(item.text_of("protocol")?, range),
        cidr: item.text_of("cidrBlock")?.parse().ok()?,
    })
}

/// A protocol field (`-1`, `tcp`, `6`, …) with its port range.
pub(super) fn protocol(name: &str, ports: Option<Ports>) -> Protocol {
    match name {
        "-1" | "all" => Protocol::All,
        "tcp" | "6" => Protocol::Tcp(ports.unwrap_or(Ports::ALL)),
        _ => Protocol::Other,
    }
}

pub(super) fn peering(item: &Element) -> Option<Peering> {
    let side = |name: &str| -> Option<PeeringSide> {
        let info = item.child(name)?;
        let mut cidrs: Vec<Ipv4Net> = info
            .items("cidrBlockSet")
            .filter_map(|c| c.text_of("cidrBlock")?.parse().ok())
            .collect();
        if cidrs.is_empty() {
            cidrs.extend(
                info.text_of("cidrBlock")
                    .and_then(|c| c.parse::<Ipv4Net>().ok()),
            );
        }
        let dns = info
            .child("peeringOptions")
            .and_then(|o| o.text_of("allowDnsResolutionFromRemoteVpc"))
            == Some("true");
        Some(PeeringSide {
            vpc: info.text_of("vpcId")?.to_string(),
            account: info.text_of("ownerId").unwrap_or_default().to_string(),
            cidrs,
            dns_from_remote: dns,
        })
    };
    Some(Peering {
        id: item.text_of("vpcPeeringConnectionId")?.to_string(),
        status: item
            .child("status")
            .and_then(|s| s.text_of("code"))
            .unwrap_or("unknown")
            .to_string(),
        requester: side("requesterVpcInfo")?,
        accepter: side("accepterVpcInfo")?,
    })
}

/// A group with its rules (from DescribeSecurityGroupRules, which gives rule ids).
pub(super) fn group(
    id: &str,
    account: &str,
    names: &[Element],
    rules: &[Element],
) -> SecurityGroup {
    let name = names
        .iter()
        .find(|g| g.text_of("groupId") == Some(id))
        .and_then(|g| g.text_of("groupName"))
        .unwrap_or_default();
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for rule in rules.iter().filter(|r| r.text_of("groupId") == Some(id)) {
        let Some(parsed) = sg_rule(rule) else {
            continue;
        };
        if rule.text_of("isEgress") == Some("true") {
            egress.push(parsed);
        } else {
            ingress.push(parsed);
        }
    }
    SecurityGroup {
        id: id.to_string(),
        account: account.to_string(),
        name: name.to_string(),
        ingress,
        egress,
    }
}

pub(super) fn sg_rule(item: &Element) -> Option<SgRule> {
    let port = |name| item.text_of(name).and_then(|p| p.parse::<i32>().ok());
    let ports = match (port("fromPort"), port("toPort")) {
        (Some(from), Some(to)) if from >= 0 && to >= 0 => Some(Ports {
            from: from as u16,
            to: to as u16,
        }),
        _ => None,
    };
    let peer = if let Some(cidr) = item.text_of("cidrIpv4") {
        Peer::Cidr(cidr.parse().ok()?)
    } else if let Some(group) = item
        .child("referencedGroupInfo")
        .and_then(|g| g.text_of("groupId"))
    {
        Peer::Group(group.to_string())
    } else {
        Peer::PrefixList(item.text_of("prefixListId")?.to_string(), Vec::new())
    };
    Some(SgRule {
        id: item.text_of("securityGroupRuleId").map(str::to_string),
        protocol: protocol(item.text_of("ipProtocol")?, ports),
        peer,
    })
}
