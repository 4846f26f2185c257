//! The interface endpoints the addresses asked about belong to, then, in
//! whichever account provides their services, the endpoint services (their
//! permissions and connections) and the Network Load Balancers behind them
//! (listeners, and the health of each listener's targets). An account that
//! does not provide a service finds none and reads no further.

use super::{describe, Part};
use crate::aws::answer::CallError;
use crate::aws::client::{Account, Service};
use crate::aws::model::{
    Endpoint, EndpointService, Listener, LoadBalancer, TargetGroup, TargetHealth,
};
use crate::aws::xml::Element;
use std::collections::BTreeSet;

/// The VPCs holding an interface endpoint's interface among those read.
pub fn endpoint_vpcs(part: &Part) -> BTreeSet<String> {
    let enis = part.world.enis.iter();
    enis.filter(|e| e.interface_type.as_deref() == Some("vpc_endpoint"))
        .map(|e| e.vpc.clone())
        .collect()
}

/// The interface endpoints of `vpcs` that `account` owns.
pub async fn read_endpoints(part: &mut Part, account: &Account, vpcs: &BTreeSet<String>) {
    if vpcs.is_empty() {
        return;
    }
    let filters = [
        ("vpc-id", vpcs.iter().cloned().collect()),
        ("vpc-endpoint-type", vec!["Interface".to_string()]),
    ];
    let answer = describe(account, "DescribeVpcEndpoints", &filters, "vpcEndpointSet").await;
    let mut found: Vec<Endpoint> = part
        .note(account, answer)
        .unwrap_or_default()
        .iter()
        .map(|item| endpoint(item, &account.id))
        .collect();
    dns_names(part, account, &mut found).await;
    for read in found {
        if !part.world.endpoints.iter().any(|e| e.id == read.id) {
            part.world.endpoints.push(read);
        }
    }
}

/// The private DNS name of each endpoint's service, as the consumer sees
/// it (DescribeVpcEndpointServices, one call for all of them).
async fn dns_names(part: &mut Part, account: &Account, endpoints: &mut [Endpoint]) {
    let names: BTreeSet<&str> = endpoints.iter().map(|e| e.service.as_str()).collect();
    if names.is_empty() {
        return;
    }
    let params: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(n, name)| (format!("ServiceName.{}", n + 1), name.to_string()))
        .collect();
    let answer = account
        .query(Service::Ec2, "DescribeVpcEndpointServices", &params)
        .await;
    // A service this account may not connect to is one it cannot see:
    // AWS answers InvalidServiceName. Its name stays unknown; the reading
    // is not void for it (the provider's side says why).
    if let Err(CallError::Failed { code, .. }) = &answer {
        if code.starts_with("InvalidServiceName") {
            part.calls += 1;
            return;
        }
    }
    let Some(answer) = part.note(account, answer) else {
        return;
    };
    for detail in answer.items("serviceDetailSet") {
        let (Some(name), Some(dns)) = (
            detail.text_of("serviceName"),
            detail.text_of("privateDnsName"),
        ) else {
            continue;
        };
        for e in endpoints.iter_mut().filter(|e| e.service == name) {
            e.dns_name = Some(dns.to_string());
        }
    }
}

/// The VPC the path starts in, when the interfaces or subnets read hold it.
pub fn source_vpc(part: &Part, source: Option<&crate::aws::settings::Source>) -> Option<String> {
    use crate::aws::settings::Source;
    let world = &part.world;
    match source? {
        Source::Eni(id) => world.eni(id).map(|e| e.vpc.clone()),
        Source::Subnet(id) => world.subnets.get(id).map(|s| s.vpc.clone()),
        Source::Address(a) => world.eni_at(*a).map(|e| e.vpc.clone()),
    }
}

/// The services the endpoints read lead to, by name.
pub fn services_named(part: &Part) -> BTreeSet<String> {
    part.world
        .endpoints
        .iter()
        .map(|e| e.service.clone())
        .collect()
}

/// The endpoint services of `names` that `account` provides, and what is
/// behind each.
pub async fn read_services(part: &mut Part, account: &Account, names: &BTreeSet<String>) {
    if names.is_empty() {
        return;
    }
    let filter = [("service-name", names.iter().cloned().collect())];
    let set = "serviceConfigurationSet";
    let answer = describe(
        account,
        "DescribeVpcEndpointServiceConfigurations",
        &filter,
        set,
    )
    .await;
    for item in part.note(account, answer).unwrap_or_default() {
        let Some(mut service) = service(&item, &account.id) else {
            continue;
        };
        let id = vec![("ServiceId".to_string(), service.id.clone())];
        let by_service = [("service-id", vec![service.id.clone()])];
        let (permissions, connections) = tokio::join!(
            account.query(Service::Ec2, "DescribeVpcEndpointServicePermissions", &id),
            describe(
                account,
                "DescribeVpcEndpointConnections",
                &by_service,
                "vpcEndpointConnectionSet"
            ),
        );
        service.principals = part.note(account, permissions).map(|a| {
            let allowed = a.items("allowedPrincipals");
            allowed
                .filter_map(|p| p.text_of("principal"))
                .map(str::to_string)
                .collect()
        });
        let connections = part.note(account, connections).unwrap_or_default();
        service.connections = connections.iter().filter_map(connection).collect();
        for arn in &service.load_balancers {
            read_balancer(part, account, arn).await;
        }
        part.world.services.push(service);
    }
}

/// One NLB: its zones, its listeners, and each listener's target health.
async fn read_balancer(part: &mut Part, account: &Account, arn: &str) {
    let by_arn = vec![("LoadBalancerArns.member.1".to_string(), arn.to_string())];
    let of_balancer = vec![("LoadBalancerArn".to_string(), arn.to_string())];
    let (found, listeners) = tokio::join!(
        account.query(Service::Elb, "DescribeLoadBalancers", &by_arn),
        account.query(Service::Elb, "DescribeListeners", &of_balancer),
    );
    let found = part.note(account, found);
    let Some(item) = found
        .as_ref()
        .and_then(|a| members(a, "LoadBalancers").next())
    else {
        return;
    };
    let listeners: Vec<Listener> = part
        .note(account, listeners)
        .map(|a| members(&a, "Listeners").filter_map(listener).collect())
        .unwrap_or_default();
    let groups: BTreeSet<String> = listeners
        .iter()
        .flat_map(|l| l.target_groups.clone())
        .collect();
    part.world.balancers.push(LoadBalancer {
        arn: arn.to_string(),
        name: item
            .text_of("LoadBalancerName")
            .unwrap_or_default()
            .to_string(),
        account: account.id.clone(),
        zones: members(item, "AvailabilityZones")
            .filter_map(|z| z.text_of("ZoneName"))
            .map(str::to_string)
            .collect(),
        listeners,
    });
    for group in groups {
        let params = vec![("TargetGroupArn".to_string(), group.clone())];
        let health = account
            .query(Service::Elb, "DescribeTargetHealth", &params)
            .await;
        if let Some(health) = part.note(account, health) {
            let targets = members(&health, "TargetHealthDescriptions")
                .map(target)
                .collect();
            let name = group.split('/').nth(1).unwrap_or(&group).to_string();
            part.world.target_groups.push(TargetGroup {
                arn: group,
                name,
                targets,
            });
        }
    }
}

/// The `member`s of the list `name`, wherever the `…Result` holds it.
fn members<'a>(answer: &'a Element, name: &str) -> impl Iterator<Item = &'a Element> {
    answer
        .find(name)
        .into_iter()
        .flat_map(|list| list.children.iter())
}

fn endpoint(item: &Element, account: &str) -> Endpoint {
    let text = |name| item.text_of(name).unwrap_or_default().to_string();
    let listed = |name| item.items(name).map(|i| i.text.clone()).collect();
    Endpoint {
        id: text("vpcEndpointId"),
        account: item.text_of("ownerId").unwrap_or(account).to_string(),
        vpc: text("vpcId"),
        service: text("serviceName"),
        state: text("state"),
        interfaces: listed("networkInterfaceIdSet"),
        subnets: listed("subnetIdSet"),
        private_dns: item.text_of("privateDnsEnabled") == Some("true"),
        dns_name: None,
    }
}

fn service(item: &Element, account: &str) -> Option<EndpointService> {
    let listed = |name| item.items(name).map(|i| i.text.clone()).collect();
    Some(EndpointService {
        id: item.text_of("serviceId")?.to_string(),
        name: item.text_of("serviceName")?.to_string(),
        account: account.to_string(),
        acceptance_required: item.text_of("acceptanceRequired") == Some("true"),
        zones: listed("availabilityZoneSet"),
        load_balancers: listed("networkLoadBalancerArnSet"),
        principals: None,
        connections: Vec::new(),
    })
}

fn connection(item: &Element) -> Option<(String, String)> {
    let endpoint = item.text_of("vpcEndpointId")?.to_string();
    Some((endpoint, item.text_of("vpcEndpointState")?.to_string()))
}

fn listener(item: &Element) -> Option<Listener> {
    let actions = item
        .child("DefaultActions")
        .into_iter()
        .flat_map(|a| a.children.iter());
    let mut target_groups: Vec<String> = Vec::new();
    for action in actions {
        target_groups.extend(action.text_of("TargetGroupArn").map(str::to_string));
        let weighted = action
            .find("TargetGroups")
            .into_iter()
            .flat_map(|t| t.children.iter());
        target_groups.extend(
            weighted
                .filter_map(|t| t.text_of("TargetGroupArn"))
                .map(str::to_string),
        );
    }
    target_groups.dedup();
    Some(Listener {
        port: item.text_of("Port")?.parse().ok()?,
        protocol: item.text_of("Protocol").unwrap_or_default().to_string(),
        target_groups,
    })
}

fn target(item: &Element) -> TargetHealth {
    let health = item.child("TargetHealth");
    let of_health = |name| health.and_then(|h| h.text_of(name)).map(str::to_string);
    TargetHealth {
        target: item.find("Id").map(|i| i.text.clone()).unwrap_or_default(),
        port: item
            .child("Target")
            .and_then(|t| t.text_of("Port")?.parse().ok()),
        state: of_health("State").unwrap_or_default(),
        reason: of_health("Reason"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(text: &str) -> Element {
        Element::parse(text).unwrap()
    }

    #[test]
    fn an_endpoint_names_its_interfaces_service_and_state() {
        let item = xml(
            "<item><vpcEndpointId>vpce-1</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType>\
             <vpcId>vpc-1</vpcId><serviceName>com.amazonaws.vpce.eu-west-1.vpce-svc-1</serviceName>\
             <state>pendingAcceptance</state><subnetIdSet><item>subnet-a</item></subnetIdSet>\
             <networkInterfaceIdSet><item>eni-1</item></networkInterfaceIdSet>\
             <privateDnsEnabled>false</privateDnsEnabled><ownerId>1111</ownerId></item>",
        );
        let read = endpoint(&item, "9999");
        assert_eq!(
            (read.id.as_str(), read.account.as_str()),
            ("vpce-1", "1111")
        );
        assert_eq!(read.interfaces, ["eni-1"]);
        assert!(!read.available() && !read.private_dns);
    }

    #[test]
    fn a_listener_forwards_to_its_groups_plain_or_weighted() {
        let item = xml(
            "<member><Port>5432</Port><Protocol>TCP</Protocol><DefaultActions>\
             <member><Type>forward</Type><TargetGroupArn>arn:tg/a/1</TargetGroupArn></member>\
             <member><Type>forward</Type><ForwardConfig><TargetGroups><member>\
             <TargetGroupArn>arn:tg/b/2</TargetGroupArn></member></TargetGroups></ForwardConfig></member>\
             </DefaultActions></member>",
        );
        let read = listener(&item).unwrap();
        assert_eq!(read.port, 5432);
        assert_eq!(read.target_groups, ["arn:tg/a/1", "arn:tg/b/2"]);
    }

    #[test]
    fn a_target_says_its_state_and_reason() {
        let item = xml(
            "<member><Target><Id>10.0.1.12</Id><Port>5432</Port></Target>\
             <TargetHealth><State>unhealthy</State><Reason>Target.Timeout</Reason></TargetHealth></member>",
        );
        let read = target(&item);
        assert_eq!((read.target.as_str(), read.port), ("10.0.1.12", Some(5432)));
        assert_eq!(
            (read.state.as_str(), read.reason.as_deref()),
            ("unhealthy", Some("Target.Timeout"))
        );
    }
}
