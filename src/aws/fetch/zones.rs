//! The DNS facts behind a name asked about: the source VPC's DNS
//! attributes, the private hosted zones associated with it or holding the
//! name, and a zone's A record.

use super::{Part, Wanted};
use crate::aws::client::{Account, Service};
use crate::aws::model::Zone;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub(super) fn merge_zone(zones: &mut Vec<Zone>, zone: Zone) {
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

/// The VPC attributes and private zones behind the names asked about.
pub(super) async fn dns_facts(
    part: &mut Part,
    account: &Account,
    vpcs: &BTreeSet<String>,
    wanted: &Wanted,
) {
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
