//! The walk to an interface endpoint and behind it, against a hand-built
//! world: the task's VPC holds vpce-1 (interface eni-vpce, 10.20.1.50),
//! connected to the database account's vpce-svc-1, whose NLB listens on
//! 5432 and forwards to a target group with one healthy target. One named
//! test per fault row.

use super::tests::{codes, group, net, peered, world, APP, DB};
use super::*;
use crate::aws::model::*;

const SERVICE: &str = "com.amazonaws.vpce.eu-west-1.vpce-svc-1";
const NLB: &str = "arn:aws:elasticloadbalancing:eu-west-1:222222222222:loadbalancer/net/db/1";
const GROUP: &str = "arn:aws:elasticloadbalancing:eu-west-1:222222222222:targetgroup/haproxy/1";

/// The endpoint world: the task reaches HAProxy at the endpoint's address.
fn linked() -> World {
    let mut w = world(&["10.0.0.0/16"], peered());
    w.enis.push(Eni {
        id: "eni-vpce".into(),
        account: APP.into(),
        address: "10.20.1.50".parse().unwrap(),
        subnet: "subnet-a".into(),
        vpc: "vpc-app".into(),
        groups: vec!["sg-vpce".into()],
        interface_type: Some("vpc_endpoint".into()),
    });
    let admit = SgRule {
        id: Some("sgr-vpce".into()),
        protocol: Protocol::Tcp(Ports::one(5432)),
        peer: Peer::Cidr(net("10.20.0.0/16")),
    };
    w.groups
        .insert("sg-vpce".into(), group("sg-vpce", APP, vec![admit]));
    w.endpoints.push(Endpoint {
        id: "vpce-1".into(),
        account: APP.into(),
        vpc: "vpc-app".into(),
        service: SERVICE.into(),
        state: "available".into(),
        interfaces: vec!["eni-vpce".into()],
        subnets: vec!["subnet-a".into()],
        private_dns: true,
        dns_name: Some("haproxy.vpce.glimpse.example".into()),
    });
    w.services.push(EndpointService {
        id: "vpce-svc-1".into(),
        name: SERVICE.into(),
        account: DB.into(),
        acceptance_required: true,
        zones: vec!["eu-west-1a".into()],
        load_balancers: vec![NLB.into()],
        principals: Some(vec![format!("arn:aws:iam::{APP}:root")]),
        connections: vec![("vpce-1".into(), "available".into())],
    });
    w.balancers.push(LoadBalancer {
        arn: NLB.into(),
        name: "db".into(),
        account: DB.into(),
        zones: vec!["eu-west-1a".into()],
        listeners: vec![Listener {
            port: 5432,
            protocol: "TCP".into(),
            target_groups: vec![GROUP.into()],
        }],
    });
    w.target_groups.push(TargetGroup {
        arn: GROUP.into(),
        name: "haproxy".into(),
        targets: vec![TargetHealth {
            target: "10.0.1.12".into(),
            port: Some(5432),
            state: "healthy".into(),
            reason: None,
        }],
    });
    w
}

fn walked(w: &World) -> Walk {
    let source = End::at_eni(w, w.eni("eni-task").unwrap()).unwrap();
    walk(w, &source, "10.20.1.50".parse().unwrap(), 5432)
}

fn finding(w: &World) -> Finding {
    let walked = walked(w);
    assert_eq!(walked.findings.len(), 1, "{:#?}", walked.findings);
    walked.findings[0].clone()
}

#[test]
fn a_healthy_endpoint_is_followed_to_a_healthy_target() {
    let w = linked();
    let walked = walked(&w);
    assert_eq!(walked.findings, [], "{:#?}", walked.chain);
    let chain = walked.chain.join(" | ");
    for hop in [
        "vpce-1 (available",
        "db listener TCP:5432",
        "haproxy (a healthy target)",
    ] {
        assert!(chain.contains(hop), "{hop} not in {chain}");
    }
    // The peered database path of the base world is untouched.
    assert_eq!(codes(&linked()), []);
}

#[test]
fn endpoint_pending_acceptance() {
    let mut w = linked();
    w.endpoints[0].state = "pendingAcceptance".into();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.account.as_deref()),
        (Code::EndpointNotAvailable, Some(DB))
    );
    assert_eq!(
        found.fix.as_deref(),
        Some("aws ec2 accept-vpc-endpoint-connections --service-id vpce-svc-1 --vpc-endpoint-ids vpce-1")
    );
}

#[test]
fn endpoint_rejected() {
    let mut w = linked();
    w.endpoints[0].state = "rejected".into();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::EndpointNotAvailable, "vpce-1")
    );
    assert!(found
        .explanation
        .contains("delete and create the endpoint again"));
}

#[test]
fn endpoint_principal_not_allowed() {
    let mut w = linked();
    w.services[0].principals = Some(vec!["arn:aws:iam::999999999999:root".into()]);
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::EndpointPrincipalNotAllowed, "vpce-svc-1")
    );
    assert!(found
        .fix
        .unwrap()
        .ends_with("--add-allowed-principals arn:aws:iam::111111111111:root"));
}

#[test]
fn endpoint_security_group_without_the_port() {
    let mut w = linked();
    w.groups.get_mut("sg-vpce").unwrap().ingress.clear();
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::SgIngressMissing, "sg-vpce")
    );
}

#[test]
fn nlb_without_a_listener_on_the_port() {
    let mut w = linked();
    w.balancers[0].listeners[0].port = 5433;
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::NlbNoListener, NLB)
    );
    assert!(
        found.explanation.contains("it listens on 5433"),
        "{}",
        found.explanation
    );
}

#[test]
fn nlb_targets_all_unhealthy() {
    let mut w = linked();
    let target = &mut w.target_groups[0].targets[0];
    target.state = "unhealthy".into();
    target.reason = Some("Target.FailedHealthChecks".into());
    let found = finding(&w);
    assert_eq!(
        (found.code, found.object.as_str()),
        (Code::NlbTargetsUnhealthy, GROUP)
    );
    assert!(found
        .explanation
        .contains("10.0.1.12 unhealthy (Target.FailedHealthChecks)"));
}

#[test]
fn a_provider_not_read_keeps_the_path_unjudged() {
    let mut w = linked();
    w.services.clear();
    let walked = walked(&w);
    assert!(
        walked.unfollowed() && !walked.blocked(),
        "{:#?}",
        walked.findings
    );
}

#[test]
fn an_endpoint_not_read_keeps_the_path_unjudged() {
    let mut w = linked();
    w.endpoints.clear();
    let walked = walked(&w);
    assert!(
        walked.unfollowed() && !walked.blocked(),
        "{:#?}",
        walked.findings
    );
}

#[test]
fn endpoint_private_dns_off_is_named_for_the_service_name() {
    let mut w = linked();
    let (chain, findings) =
        crate::aws::dns::walk(&w, "vpc-app", "haproxy.vpce.glimpse.example", "eu-west-1");
    assert_eq!(findings, [], "{chain:?}");
    assert!(
        chain.iter().any(|c| c == "vpce-1 private DNS on"),
        "{chain:?}"
    );
    w.endpoints[0].private_dns = false;
    let (_, findings) =
        crate::aws::dns::walk(&w, "vpc-app", "HAProxy.vpce.glimpse.example.", "eu-west-1");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        (findings[0].code, findings[0].object.as_str()),
        (Code::EndpointPrivateDnsOff, "vpce-1")
    );
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-1 --private-dns-enabled")
    );
    let (_, other) = crate::aws::dns::walk(&w, "vpc-app", "other.glimpse.example", "eu-west-1");
    assert_eq!(other, [], "a name the service does not hold");
}

#[test]
fn a_wildcard_private_name_covers_one_label() {
    let mut endpoint = linked().endpoints.remove(0);
    endpoint.dns_name = Some("*.vpce.glimpse.example".into());
    assert!(endpoint.names("db.vpce.glimpse.example"));
    assert!(!endpoint.names("a.db.vpce.glimpse.example"));
    assert!(!endpoint.names("vpce.glimpse.example"));
}
