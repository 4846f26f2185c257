//! The describes, batched per resource type and per account: a run costs
//! the same handful of calls for one failing check or a thousand (ENIs by
//! address filter, then the subnets, VPCs, groups, rules, route tables,
//! ACLs and peerings of the VPCs found, then the DNS facts when a name is
//! asked about). Each answer becomes `model` types here; a refused call
//! becomes a `Denied` entry and the rest of the reading goes on.
//!
//! Layout: this file reads the network objects; `zones` the DNS facts
//! (VPC attributes, private hosted zones, a record); `transit` the transit
//! gateways the route tables point at; `privatelink` interface endpoints,
//! their services and the load balancers behind them.

mod privatelink;
mod transit;
mod zones;

use super::client::{Account, CallError, Service};
use super::model::*;
use super::parse::{acl, enis, group, peering, subnet, table, vpc};
use super::settings::Source;
use super::xml::Element;
use ipnet::Ipv4Net;
pub use privatelink::{endpoint_vpcs, read_endpoints, read_services, services_named, source_vpc};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
pub use transit::{gateways_routed, read_gateways};
use zones::{dns_facts, merge_zone};
pub use zones::{record, zones_of};

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
    /// A subnet source's security groups (a service's, before any task).
    pub source_groups: BTreeSet<String>,
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
            Err(other) => {
                self.failures.push(other.to_string());
                None
            }
        }
    }

    /// Merge another account's reading into this one.
    pub fn merge(&mut self, mut other: Part) {
        transit::merge(self, &mut other.world);
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
        for e in o.endpoints {
            if !w.endpoints.iter().any(|known| known.id == e.id) {
                w.endpoints.push(e);
            }
        }
        w.services.extend(o.services);
        w.balancers.extend(o.balancers);
        w.target_groups.extend(o.target_groups);
        w.denied.extend(o.denied);
        w.accounts.extend(o.accounts);
        self.calls += other.calls;
        self.failures.extend(other.failures);
    }
}

/// Read what `wanted` needs from one account; `source_side`: this is the
/// account the path starts in (it answers the DNS questions).
pub async fn read_account(account: &Account, wanted: &Wanted, source_side: bool) -> Part {
    let mut part = Part::default();
    part.world.accounts.push(account.id.clone());
    let (mut vpcs, subnet_filter) = read_interfaces(&mut part, account, wanted, source_side).await;
    // The subnets: of the VPCs found, else the source subnet, else (an
    // address without an interface yet) every subnet of the account.
    let filters = match vpcs.is_empty() {
        false => vec![("vpc-id", vpcs.iter().cloned().collect())],
        true => subnet_filter,
    };
    let answer = describe(account, "DescribeSubnets", &filters, "subnetSet").await;
    for item in part.note(account, answer).unwrap_or_default() {
        if let Some(subnet) = subnet(&item, &account.id) {
            vpcs.insert(subnet.vpc.clone());
            part.world.subnets.insert(subnet.id.clone(), subnet);
        }
    }
    if !vpcs.is_empty() {
        read_vpcs(&mut part, account, &vpcs, wanted, source_side).await;
        prefix_lists(&mut part, account).await;
    }
    // The source side answers the DNS questions from its VPCs' facts; the
    // other side only says which of its zones hold the names.
    match (source_side, wanted.hosts.is_empty(), vpcs.is_empty()) {
        (_, true, _) | (true, false, true) => {}
        (true, false, false) => dns_facts(&mut part, account, &vpcs, wanted).await,
        (false, false, _) => zones_of(&mut part, account, wanted).await,
    }
    part
}

/// A subnet filter for `DescribeSubnets`.
type Filters = Vec<(&'static str, Vec<String>)>;

/// The interfaces holding the addresses asked about, and the source's:
/// the VPCs they are in, or the source subnet's filter when there is no
/// interface to start from.
async fn read_interfaces(
    part: &mut Part,
    account: &Account,
    wanted: &Wanted,
    source_side: bool,
) -> (BTreeSet<String>, Filters) {
    let mut addresses: Vec<Ipv4Addr> = wanted.addresses.iter().copied().collect();
    if let Some(Source::Address(a)) = &wanted.source {
        addresses.push(*a);
    }
    for chunk in addresses.chunks(FILTER_VALUES) {
        let values = chunk.iter().map(Ipv4Addr::to_string).collect();
        let filter = [("addresses.private-ip-address", values)];
        read_enis(part, account, &filter).await;
    }
    let mut subnet_filter = vec![];
    match &wanted.source {
        Some(Source::Eni(id)) if source_side => {
            let filter = [("network-interface-id", vec![id.clone()])];
            read_enis(part, account, &filter).await;
        }
        Some(Source::Subnet(id)) if source_side => {
            subnet_filter.push(("subnet-id", vec![id.clone()]))
        }
        _ => {}
    }
    let vpcs = part.world.enis.iter().map(|e| e.vpc.clone()).collect();
    (vpcs, subnet_filter)
}

/// One `DescribeNetworkInterfaces` call, its interfaces added to the world.
async fn read_enis(part: &mut Part, account: &Account, filters: &[(&str, Vec<String>)]) {
    let answer = describe(
        account,
        "DescribeNetworkInterfaces",
        filters,
        "networkInterfaceSet",
    )
    .await;
    let items = part.note(account, answer).unwrap_or_default();
    part.world
        .enis
        .extend(items.iter().flat_map(|item| enis(item, &account.id)));
}

/// The VPCs found, their route tables, ACLs and peerings, and the security
/// groups of the interfaces (and of a subnet source), read at once.
async fn read_vpcs(
    part: &mut Part,
    account: &Account,
    vpcs: &BTreeSet<String>,
    wanted: &Wanted,
    source_side: bool,
) {
    let vpc_filter = vec![("vpc-id", vpcs.iter().cloned().collect::<Vec<_>>())];
    let mut groups: BTreeSet<String> = part
        .world
        .enis
        .iter()
        .flat_map(|e| e.groups.clone())
        .collect();
    if source_side {
        groups.extend(wanted.source_groups.iter().cloned());
    }
    let group_filter = vec![("group-id", groups.iter().cloned().collect::<Vec<_>>())];
    let (vpc_items, table_items, acl_items, peering_items, group_items, rule_items) = tokio::join!(
        describe(account, "DescribeVpcs", &vpc_filter, "vpcSet"),
        describe(account, "DescribeRouteTables", &vpc_filter, "routeTableSet"),
        describe(account, "DescribeNetworkAcls", &vpc_filter, "networkAclSet"),
        describe(
            account,
            "DescribeVpcPeeringConnections",
            &[],
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
    for group_id in &groups {
        let read = group(group_id, id, &names, &rules);
        part.world.groups.insert(group_id.clone(), read);
    }
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
