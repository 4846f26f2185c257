//! A destination that is an interface endpoint's address, followed to
//! what answers behind it: the endpoint's own state, then, in the
//! provider's account, the endpoint service (this connection, its allowed
//! principals) and its Network Load Balancer (a listener on the port, a
//! healthy target behind it). PrivateLink carries no return route: replies
//! come back through the endpoint's interface, in the consumer's VPC.

use super::Walk;
use crate::aws::fix;
use crate::aws::model::{Endpoint, EndpointService, Eni, LoadBalancer, TargetGroup, World};
use crate::outcome::Code;

/// Follow the endpoint owning `eni` to a target that answers on `port`;
/// true when every object on the way lets the traffic through and all of
/// them were read.
pub(super) fn beyond(walk: &mut Walk, world: &World, eni: &Eni, port: u16) -> bool {
    let Some(endpoint) = world.endpoint_of(&eni.id) else {
        let why = "a VPC interface endpoint (PrivateLink) whose endpoint was not read (DescribeVpcEndpoints)";
        walk.not_followed(&eni.id, &eni.account, why.into());
        return false;
    };
    walk.chain.push(format!(
        "{} ({}, {})",
        endpoint.id, endpoint.state, endpoint.service
    ));
    let Some(service) = world.service(&endpoint.service) else {
        let why = format!(
            "{} leads to {}, which answers only in its provider's account: not one of the accounts read ({})",
            endpoint.id,
            endpoint.service,
            world.accounts.join(", ")
        );
        walk.not_followed(&endpoint.id, &endpoint.account, why);
        return false;
    };
    if !connected(walk, endpoint, service) || !allowed(walk, service, &endpoint.account) {
        return false;
    }
    let balancers: Vec<&LoadBalancer> = service
        .load_balancers
        .iter()
        .filter_map(|arn| world.balancers.iter().find(|b| b.arn == *arn))
        .collect();
    if balancers.is_empty() {
        let why = format!("{}'s load balancer was not read", service.id);
        walk.not_followed(&service.id, &service.account, why);
        return false;
    }
    answered(walk, world, service, &balancers, port)
}

/// The endpoint's own state: only `available` carries traffic.
fn connected(walk: &mut Walk, endpoint: &Endpoint, service: &EndpointService) -> bool {
    if endpoint.available() {
        return true;
    }
    let pending = endpoint.state.eq_ignore_ascii_case("pendingAcceptance");
    let (account, fix, why) = match pending {
        true => (
            &service.account,
            Some(fix::accept_endpoint(&service.id, &endpoint.id)),
            "the provider has not accepted it yet".to_string(),
        ),
        false => (
            &endpoint.account,
            None,
            format!(
                "no traffic crosses it{}",
                rejected_hint(endpoint.state.eq_ignore_ascii_case("rejected"))
            ),
        ),
    };
    walk.find(
        Code::EndpointNotAvailable,
        endpoint.id.clone(),
        account,
        format!(
            "{} to {} is {}: {why}",
            endpoint.id, service.id, endpoint.state
        ),
        fix,
    );
    false
}

fn rejected_hint(rejected: bool) -> &'static str {
    match rejected {
        true => " (the provider rejected the connection: once it allows this account, delete and create the endpoint again)",
        false => "",
    }
}

/// Whether the service's allowed principals include the consumer's account
/// (its root, a role or user in it, or everyone).
fn allowed(walk: &mut Walk, service: &EndpointService, account: &str) -> bool {
    let Some(principals) = &service.principals else {
        return true;
    };
    let of_account = format!(":{account}:");
    let admitted = principals
        .iter()
        .any(|p| p == "*" || p.contains(&of_account));
    if admitted {
        return true;
    }
    let shown = match principals.is_empty() {
        true => "none".to_string(),
        false => principals.join(", "),
    };
    let root = format!("arn:aws:iam::{account}:root");
    walk.find(
        Code::EndpointPrincipalNotAllowed,
        service.id.clone(),
        &service.account,
        format!(
            "{} allows these principals only: {shown}; account {account} is not among them",
            service.id
        ),
        Some(fix::allow_principal(&service.id, &root)),
    );
    false
}

/// A listener on `port` on one of the load balancers, and a healthy
/// target behind it.
fn answered(
    walk: &mut Walk,
    world: &World,
    service: &EndpointService,
    balancers: &[&LoadBalancer],
    port: u16,
) -> bool {
    let listening = balancers
        .iter()
        .find_map(|b| Some((*b, b.listeners.iter().find(|l| l.port == port)?)));
    let Some((balancer, listener)) = listening else {
        no_listener(walk, service, balancers[0], port);
        return false;
    };
    walk.chain.push(format!(
        "{} listener {}:{}",
        balancer.name, listener.protocol, listener.port
    ));
    let groups: Vec<&TargetGroup> = listener
        .target_groups
        .iter()
        .filter_map(|arn| world.target_groups.iter().find(|g| g.arn == *arn))
        .collect();
    if groups.is_empty() {
        let why = format!(
            "the target groups of {}'s listener on {port} were not read",
            balancer.name
        );
        walk.not_followed(&balancer.arn, &balancer.account, why);
        return false;
    }
    if groups.iter().any(|g| g.healthy()) {
        walk.chain
            .push(format!("{} (a healthy target)", groups[0].name));
        return true;
    }
    unhealthy(walk, balancer, &groups, port);
    false
}

/// No listener on `port`: say which ports the load balancer listens on.
fn no_listener(walk: &mut Walk, service: &EndpointService, first: &LoadBalancer, port: u16) {
    let ports: Vec<String> = first.listeners.iter().map(|l| l.port.to_string()).collect();
    let ports = match ports.is_empty() {
        true => "none".to_string(),
        false => ports.join(", "),
    };
    walk.find(
        Code::NlbNoListener,
        first.arn.clone(),
        &first.account,
        format!(
            "{} (behind {}) has no listener on port {port} (it listens on {ports})",
            first.name, service.id
        ),
        Some(fix::create_listener(&first.arn, port, "<target group ARN>")),
    );
}

/// No healthy target behind the listener: each target's state and reason.
fn unhealthy(walk: &mut Walk, balancer: &LoadBalancer, groups: &[&TargetGroup], port: u16) {
    let seen: Vec<String> = groups
        .iter()
        .flat_map(|g| &g.targets)
        .map(|t| {
            let reason = t.reason.as_deref().map(|r| format!(" ({r})"));
            format!("{} {}{}", t.target, t.state, reason.unwrap_or_default())
        })
        .collect();
    let seen = match seen.is_empty() {
        true => "no target registered".to_string(),
        false => seen.join("; "),
    };
    walk.find(
        Code::NlbTargetsUnhealthy,
        groups[0].arn.clone(),
        &balancer.account,
        format!(
            "no healthy target behind {}'s listener on {port}: {seen}",
            balancer.name
        ),
        None,
    );
}
