//! The describes, batched per resource type and per account: a run costs
//! the same handful of calls for one failing check or a thousand (ENIs by
//! address filter, then the subnets, VPCs, groups, rules, route tables,
//! ACLs and peerings of the VPCs found, then the DNS facts when a name is
//! asked about). Each answer becomes `model` types here; a refused call
//! becomes a `Denied` entry and the rest of the reading goes on.

use super::client::{Account, CallError, Service};
use super::model::*;
use super::settings::Source;
use super::xml::Element;
use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Filter values per call (EC2 accepts up to 200 per filter).
const FILTER_VALUES: usize = 200;
/// Pages followed per describe, so a huge account cannot hold a run.
const MAX_PAGES: usize = 10;

/// What one run needs read.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub source: Option<Source>,
    pub addresses: BTreeSet<Ipv4Addr>,
    /// Private names asked about: their zones, the source VPC's DNS attributes.
    pub hosts: BTreeSet<String>,
}

/// One account's reading and what it cost.
#[derive(Debug, Default)]
pub struct Part {
    pub world: World,
    pub calls: usize,
    /// Calls that failed for another reason than a refusal.
    pub failures: Vec<String>,
}

impl Part {
    fn note<T>(&mut self, account: &Account, result: Result<T, CallError>) -> Option<T> {
        self.calls += 1;
        match result {
            Ok(value) => Some(value),
            Err(CallError::Denied { action, message }) => {
                let account = account.id.clone();
                self.world.denied.push(Denied {
                    action,
                    account,
                    message,
                });
                None
            }
            Err(CallError::Failed(why)) => {
                self.failures.push(why);
                None
            }
        }
    }

    /// Merge another account's reading into this one.
    pub fn merge(&mut self, other: Part) {
        let (w, o) = (&mut self.world, other.world);
        w.enis.extend(o.enis);
        w.groups.extend(o.groups);
        w.subnets.extend(o.subnets);
        w.tables.extend(o.tables);
        w.acls.extend(o.acls);
        for p in o.peerings {
            if !w.peerings.iter().any(|known| known.id == p.id) {
                w.peerings.push(p);
            }
        }
        w.vpcs.extend(o.vpcs);
        for zone in o.zones {
            merge_zone(&mut w.zones, zone);
        }
        w.denied.extend(o.denied);
        w.accounts.extend(o.accounts);
        self.calls += other.calls;
        self.failures.extend(other.failures);
    }
}

fn merge_zone(zones: &mut Vec<Zone>, zone: Zone) {
    match zones.iter_mut().find(|z| z.id == zone.id) {
        Some(known) => {
            for vpc in zone.vpcs {
                if !known.vpcs.contains(&vpc) {
                    known.vpcs.push(vpc);
                }
            }
        }
        None => zones.push(zone),
    }
}

/// Read what `wanted` needs from one account; `source_side`: this is the
/// account the path starts in (it answers the DNS questions).
pub async fn read_account(account: &Account, wanted: &Wanted, source_side: bool) -> Part {
    let mut part = Part::default();
    part.world.accounts.push(account.id.clone());
    let mut addresses: Vec<Ipv4Addr> = wanted.addresses.iter().copied().collect();
    if let Some(Source::Address(a)) = &wanted.source {
        addresses.push(*a);
    }
    for chunk in addresses.chunks(FILTER_VALUES) {
        let values = chunk.iter().map(Ipv4Addr::to_string).collect();
        let answer = describe(
            account,
            "DescribeNetworkInterfaces",
            &[("addresses.private-ip-address", values)],
            "networkInterfaceSet",
        )
        .await;
        let items = part.note(account, answer).unwrap_or_default();
        part.world
            .enis
            .extend(items.iter().flat_map(|item| enis(item, &account.id)));
    }
    let mut vpcs: BTreeSet<String> = part.world.enis.iter().map(|e| e.vpc.clone()).collect();
    let mut subnet_filter = vec![];
    match &wanted.source {
        Some(Source::Eni(id)) if source_side => {
            let answer = describe(
                account,
                "DescribeNetworkInterfaces",
                &[("network-interface-id", vec![id.clone()])],
                "networkInterfaceSet",
            )
            .await;
            let found: Vec<Eni> = part
                .note(account, answer)
                .unwrap_or_default()
                .iter()
                .flat_map(|i| enis(i, &account.id))
                .collect();
            vpcs.extend(found.iter().map(|e| e.vpc.clone()));
            part.world.enis.extend(found);
        }
        Some(Source::Subnet(id)) if source_side => {
            subnet_filter.push(("subnet-id", vec![id.clone()]))
        }
        Some(Source::Address(a)) if source_side && part.world.eni_at(*a).is_none() => {}
        _ => {}
    }
    // The subnets: of the VPCs found, else the source subnet, else (an
    // address without an interface yet) every subnet of the account.
    let filters: Vec<(&str, Vec<String>)> = if !vpcs.is_empty() {
        vec![("vpc-id", vpcs.iter().cloned().collect())]
    } else {
        subnet_filter
    };
    let answer = describe(account, "DescribeSubnets", &filters, "subnetSet").await;
    for item in part.note(account, answer).unwrap_or_default() {
        if let Some(subnet) = subnet(&item, &account.id) {
            vpcs.insert(subnet.vpc.clone());
            part.world.subnets.insert(subnet.id.clone(), subnet);
        }
    }
    if vpcs.is_empty() {
        if !source_side && !wanted.hosts.is_empty() {
            zones_of(&mut part, account, wanted).await;
        }
        return part;
    }
    let vpc_filter = vec![("vpc-id", vpcs.iter().cloned().collect::<Vec<_>>())];
    let groups: BTreeSet<String> = part
        .world
        .enis
        .iter()
        .flat_map(|e| e.groups.clone())
        .collect();
    let group_filter = vec![("group-id", groups.iter().cloned().collect::<Vec<_>>())];
    let no_filter: Vec<(&str, Vec<String>)> = vec![];
    let (vpc_items, table_items, acl_items, peering_items, group_items, rule_items) = tokio::join!(
        describe(account, "DescribeVpcs", &vpc_filter, "vpcSet"),
        describe(account, "DescribeRouteTables", &vpc_filter, "routeTableSet"),
        describe(account, "DescribeNetworkAcls", &vpc_filter, "networkAclSet"),
        describe(
            account,
            "DescribeVpcPeeringConnections",
            &no_filter,
            "vpcPeeringConnectionSet"
        ),
        describe_if(
            !groups.is_empty(),
            account,
            "DescribeSecurityGroups",
            &group_filter,
            "securityGroupInfo"
        ),
        describe_if(
            !groups.is_empty(),
            account,
            "DescribeSecurityGroupRules",
            &group_filter,
            "securityGroupRuleSet"
        ),
    );
    let id = account.id.as_str();
    for item in part.note(account, vpc_items).unwrap_or_default() {
        let vpc = vpc(&item, id);
        part.world.vpcs.insert(vpc.id.clone(), vpc);
    }
    let tables = part.note(account, table_items).unwrap_or_default();
    part.world
        .tables
        .extend(tables.iter().map(|i| table(i, id)));
    let acls = part.note(account, acl_items).unwrap_or_default();
    part.world.acls.extend(acls.iter().map(|i| acl(i, id)));
    let peerings = part.note(account, peering_items).unwrap_or_default();
    part.world
        .peerings
        .extend(peerings.iter().filter_map(peering));
    let names = part.note(account, group_items).unwrap_or_default();
    let rules = part.note(account, rule_items).unwrap_or_default();
    for id_ in &groups {
        part.world
            .groups
            .insert(id_.clone(), group(id_, id, &names, &rules));
    }
    prefix_lists(&mut part, account).await;
    match (source_side, wanted.hosts.is_empty()) {
        (_, true) => {}
        (true, false) => dns_facts(&mut part, account, &vpcs, wanted).await,
        (false, false) => zones_of(&mut part, account, wanted).await,
    }
    part
}

/// The CIDRs of the managed prefix lists the groups' rules name (one call
/// per list): a rule naming `pl-…` matches what the list holds.
async fn prefix_lists(part: &mut Part, account: &Account) {
    let lists: BTreeSet<String> = part
        .world
        .groups
        .values()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .filter_map(|r| match &r.peer {
            Peer::PrefixList(id, _) => Some(id.clone()),
            _ => None,
        })
        .collect();
    for list in lists {
        let params = vec![("PrefixListId".to_string(), list.clone())];
        let answer = account
            .query(Service::Ec2, "GetManagedPrefixListEntries", &params)
            .await;
        let cidrs: Vec<Ipv4Net> = part
            .note(account, answer)
            .map(|a| {
                a.items("entrySet")
                    .filter_map(|e| e.text_of("cidr")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for group in part.world.groups.values_mut() {
            for rule in group.ingress.iter_mut().chain(group.egress.iter_mut()) {
                if let Peer::PrefixList(id, nets) = &mut rule.peer {
                    if *id == list {
                        nets.clone_from(&cidrs);
                    }
                }
            }
        }
    }
}

/// The VPC attributes and private zones behind the names asked about.
async fn dns_facts(part: &mut Part, account: &Account, vpcs: &BTreeSet<String>, wanted: &Wanted) {
    for vpc in vpcs {
        for attribute in ["enableDnsSupport", "enableDnsHostnames"] {
            let params = vec![
                ("VpcId".to_string(), vpc.clone()),
                ("Attribute".to_string(), attribute.to_string()),
            ];
            let answer = account
                .query(Service::Ec2, "DescribeVpcAttribute", &params)
                .await;
            let on = part.note(account, answer).and_then(|a| {
                a.child(attribute)
                    .and_then(|c| c.text_of("value"))
                    .map(|v| v == "true")
            });
            if let Some(known) = part.world.vpcs.get_mut(vpc) {
                match attribute {
                    "enableDnsSupport" => known.dns_support = on,
                    _ => known.dns_hostnames = on,
                }
            }
        }
        let path = format!(
            "/2013-04-01/hostedzonesbyvpc?vpcid={vpc}&vpcregion={}",
            account.region
        );
        let answer = account
            .rest(Service::Route53, "ListHostedZonesByVPC", &path)
            .await;
        for summary in part
            .note(account, answer)
            .iter()
            .flat_map(|a| a.items("HostedZoneSummaries"))
        {
            let Some(zone_id) = summary.text_of("HostedZoneId") else {
                continue;
            };
            let owner = summary
                .child("Owner")
                .and_then(|o| o.text_of("OwningAccount"))
                .unwrap_or(&account.id);
            let zone = Zone {
                id: zone_id.to_string(),
                account: owner.to_string(),
                name: zone_name(summary.text_of("Name")),
                vpcs: vec![vpc.clone()],
            };
            merge_zone(&mut part.world.zones, zone);
        }
    }
    zones_of(part, account, wanted).await;
}

/// The account's private zones that hold a name asked about, with their VPCs.
pub async fn zones_of(part: &mut Part, account: &Account, wanted: &Wanted) {
    let answer = account
        .rest(
            Service::Route53,
            "ListHostedZones",
            "/2013-04-01/hostedzone?maxitems=100",
        )
        .await;
    let listed = part
        .note(account, answer)
        .map(|a| a.items("HostedZones").cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for zone in listed {
        let private = zone.child("Config").and_then(|c| c.text_of("PrivateZone")) == Some("true");
        let name = zone_name(zone.text_of("Name"));
        let holds = wanted
            .hosts
            .iter()
            .any(|h| h.trim_end_matches('.') == name || h.ends_with(&format!(".{name}")));
        let Some(id) = zone
            .text_of("Id")
            .map(|i| i.trim_start_matches("/hostedzone/").to_string())
        else {
            continue;
        };
        if !private || !holds {
            continue;
        }
        let answer = account
            .rest(
                Service::Route53,
                "GetHostedZone",
                &format!("/2013-04-01/hostedzone/{id}"),
            )
            .await;
        let vpcs = part
            .note(account, answer)
            .map(|a| {
                a.items("VPCs")
                    .filter_map(|v| v.text_of("VPCId").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        merge_zone(
            &mut part.world.zones,
            Zone {
                id,
                account: account.id.clone(),
                name,
                vpcs,
            },
        );
    }
}

/// The first IPv4 address of `name`'s A record in `zone`.
pub async fn record(account: &Account, zone: &str, name: &str) -> Option<Ipv4Addr> {
    let path = format!("/2013-04-01/hostedzone/{zone}/rrset?name={name}&type=A&maxitems=1");
    let answer = account
        .rest(Service::Route53, "ListResourceRecordSets", &path)
        .await
        .ok()?;
    let wanted = name.trim_end_matches('.').to_ascii_lowercase();
    let address = answer
        .items("ResourceRecordSets")
        .filter(|set| zone_name(set.text_of("Name")) == wanted && set.text_of("Type") == Some("A"))
        .flat_map(|set| set.items("ResourceRecords"))
        .find_map(|r| r.text_of("Value")?.parse().ok());
    address
}

fn zone_name(name: Option<&str>) -> String {
    name.unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

async fn describe_if(
    wanted: bool,
    account: &Account,
    action: &str,
    filters: &[(&str, Vec<String>)],
    set: &str,
) -> Result<Vec<Element>, CallError> {
    if wanted {
        describe(account, action, filters, set).await
    } else {
        Ok(Vec::new())
    }
}

/// One EC2 describe with filters, following `nextToken` a bounded number of times.
pub async fn describe(
    account: &Account,
    action: &str,
    filters: &[(&str, Vec<String>)],
    set: &str,
) -> Result<Vec<Element>, CallError> {
    let mut params = Vec::new();
    for (n, (name, values)) in filters.iter().enumerate() {
        params.push((format!("Filter.{}.Name", n + 1), name.to_string()));
        for (v, value) in values.iter().enumerate() {
            params.push((format!("Filter.{}.Value.{}", n + 1, v + 1), value.clone()));
        }
    }
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut page = params.clone();
        if let Some(token) = &token {
            page.push(("NextToken".into(), token.clone()));
        }
        let answer = account.query(Service::Ec2, action, &page).await?;
        items.extend(answer.items(set).cloned());
        token = answer.text_of("nextToken").map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(items)
}

fn enis(item: &Element, account: &str) -> Vec<Eni> {
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
    addresses
        .into_iter()
        .map(|address| Eni {
            id: text("networkInterfaceId"),
            account: owner.clone(),
            address,
            subnet: text("subnetId"),
            vpc: text("vpcId"),
            groups: groups.clone(),
        })
        .collect()
}

fn subnet(item: &Element, account: &str) -> Option<Subnet> {
    Some(Subnet {
        id: item.text_of("subnetId")?.to_string(),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        vpc: item.text_of("vpcId")?.to_string(),
        cidr: item.text_of("cidrBlock")?.parse().ok()?,
    })
}

fn vpc(item: &Element, account: &str) -> Vpc {
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

fn table(item: &Element, account: &str) -> RouteTable {
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

fn route(item: &Element) -> Option<Route> {
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

fn acl(item: &Element, account: &str) -> NetworkAcl {
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

fn acl_entry(item: &Element) -> Option<AclEntry> {
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
fn protocol(name: &str, ports: Option<Ports>) -> Protocol {
    match name {
        "-1" | "all" => Protocol::All,
        "tcp" | "6" => Protocol::Tcp(ports.unwrap_or(Ports::ALL)),
        _ => Protocol::Other,
    }
}

fn peering(item: &Element) -> Option<Peering> {
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
fn group(id: &str, account: &str, names: &[Element], rules: &[Element]) -> SecurityGroup {
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

fn sg_rule(item: &Element) -> Option<SgRule> {
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
