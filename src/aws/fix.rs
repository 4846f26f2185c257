//! The fix for each finding, as a runnable `aws …` command: one function per
//! kind of change, so a finding's fix reads the same wherever it is made.

use super::model::Ports;
use std::fmt::Display;

fn port_range(ports: Ports) -> String {
    format!("From={},To={}", ports.from, ports.to)
}

/// Let `group` send TCP to `cidr` on `port`.
pub fn authorize_egress(group: &str, port: u16, cidr: impl Display) -> String {
    format!(
        "aws ec2 authorize-security-group-egress --group-id {group} \
         --ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},IpRanges=[{{CidrIp={cidr}}}]'"
    )
}

/// Let `cidr` reach `group` on TCP `port`.
pub fn authorize_ingress(group: &str, port: u16, cidr: impl Display) -> String {
    format!(
        "aws ec2 authorize-security-group-ingress --group-id {group} --protocol tcp --port {port} --cidr {cidr}"
    )
}

/// Take back the rule that lets `cidr` reach `group` on `port`.
pub fn revoke_ingress(group: &str, rule: Option<&str>, port: u16, cidr: impl Display) -> String {
    match rule {
        Some(rule) => format!(
            "aws ec2 revoke-security-group-ingress --group-id {group} --security-group-rule-ids {rule}"
        ),
        None => format!(
            "aws ec2 revoke-security-group-ingress --group-id {group} --protocol tcp --port {port} --cidr {cidr}"
        ),
    }
}

/// Allow TCP `ports` to or from `cidr` at `rule` of `acl`: replaces a deny
/// entry, or creates one in front of the final deny.
pub fn acl_allow(
    acl: &str,
    rule: u16,
    replace: bool,
    egress: bool,
    ports: Ports,
    cidr: impl Display,
) -> String {
    let verb = if replace { "replace" } else { "create" };
    let direction = if egress { "--egress" } else { "--ingress" };
    format!(
        "aws ec2 {verb}-network-acl-entry --network-acl-id {acl} --rule-number {rule} {direction} \
         --protocol tcp --port-range {} --cidr-block {cidr} --rule-action allow",
        port_range(ports)
    )
}

/// Send `cidr` from `table` through `peering`, adding or replacing the route.
pub fn route(table: &str, replace: bool, cidr: impl Display, peering: &str) -> String {
    let verb = if replace { "replace" } else { "create" };
    format!(
        "aws ec2 {verb}-route --route-table-id {table} --destination-cidr-block {cidr} --vpc-peering-connection-id {peering}"
    )
}

/// Remove the route for `cidr` from `table`.
pub fn delete_route(table: &str, cidr: impl Display) -> String {
    format!("aws ec2 delete-route --route-table-id {table} --destination-cidr-block {cidr}")
}

/// Accept a pending peering (run in the accepter's account).
pub fn accept_peering(peering: &str) -> String {
    format!("aws ec2 accept-vpc-peering-connection --vpc-peering-connection-id {peering}")
}

/// Let the requester (or accepter) side resolve the other side's private names.
pub fn peering_dns(peering: &str, accepter: bool) -> String {
    let side = if accepter { "accepter" } else { "requester" };
    format!(
        "aws ec2 modify-vpc-peering-connection-options --vpc-peering-connection-id {peering} \
         --{side}-peering-connection-options AllowDnsResolutionFromRemoteVpc=true"
    )
}

/// Associate a private zone with a VPC of another account: authorize in
/// the zone's account, then associate in the VPC's.
pub fn associate_zone(zone: &str, vpc: &str, region: &str, cross_account: bool) -> String {
    let vpc_arg = format!("--vpc VPCRegion={region},VPCId={vpc}");
    let associate =
        format!("aws route53 associate-vpc-with-hosted-zone --hosted-zone-id {zone} {vpc_arg}");
    if cross_account {
        format!("aws route53 create-vpc-association-authorization --hosted-zone-id {zone} {vpc_arg} (zone's account), then {associate} (VPC's account)")
    } else {
        associate
    }
}

/// Turn a VPC DNS attribute on.
pub fn vpc_dns(vpc: &str, attribute: &str) -> String {
    let flag = match attribute {
        "enableDnsSupport" => "--enable-dns-support",
        _ => "--enable-dns-hostnames",
    };
    format!("aws ec2 modify-vpc-attribute --vpc-id {vpc} {flag} '{{\"Value\":true}}'")
}

/// Send `cidr` from a transit gateway route table to `attachment`.
pub fn tgw_route(table: &str, replace: bool, cidr: impl Display, attachment: &str) -> String {
    let verb = if replace { "replace" } else { "create" };
    format!(
        "aws ec2 {verb}-transit-gateway-route --transit-gateway-route-table-id {table} \
         --destination-cidr-block {cidr} --transit-gateway-attachment-id {attachment}"
    )
}

/// Associate an attachment with a transit gateway route table.
pub fn tgw_associate(table: &str, attachment: &str) -> String {
    format!(
        "aws ec2 associate-transit-gateway-route-table --transit-gateway-route-table-id {table} \
         --transit-gateway-attachment-id {attachment}"
    )
}

/// Give an attachment an interface in another subnet (another zone).
pub fn tgw_add_subnet(attachment: &str, subnet: &str) -> String {
    format!(
        "aws ec2 modify-transit-gateway-vpc-attachment --transit-gateway-attachment-id {attachment} \
         --add-subnet-ids {subnet}"
    )
}

/// Attach a VPC to a transit gateway through one of its subnets.
pub fn tgw_attach(gateway: &str, vpc: &str, subnet: &str) -> String {
    format!(
        "aws ec2 create-transit-gateway-vpc-attachment --transit-gateway-id {gateway} \
         --vpc-id {vpc} --subnet-ids {subnet}"
    )
}

/// Send `cidr` from `table` to a transit gateway, adding or replacing the route.
pub fn route_to_tgw(table: &str, replace: bool, cidr: impl Display, gateway: &str) -> String {
    let verb = if replace { "replace" } else { "create" };
    format!(
        "aws ec2 {verb}-route --route-table-id {table} --destination-cidr-block {cidr} --transit-gateway-id {gateway}"
    )
}

/// Accept a pending endpoint connection (run in the provider's account).
pub fn accept_endpoint(service: &str, endpoint: &str) -> String {
    format!(
        "aws ec2 accept-vpc-endpoint-connections --service-id {service} --vpc-endpoint-ids {endpoint}"
    )
}

/// Let `principal` connect endpoints to `service` (provider's account).
pub fn allow_principal(service: &str, principal: &str) -> String {
    format!(
        "aws ec2 modify-vpc-endpoint-service-permissions --service-id {service} --add-allowed-principals {principal}"
    )
}

/// A TCP listener on `port` forwarding to `target_group`.
pub fn create_listener(balancer: &str, port: u16, target_group: &str) -> String {
    format!(
        "aws elbv2 create-listener --load-balancer-arn {balancer} --protocol TCP --port {port} \
         --default-actions Type=forward,TargetGroupArn={target_group}"
    )
}

/// Let the endpoint answer its service's private DNS name in its VPC.
pub fn endpoint_private_dns(endpoint: &str) -> String {
    format!("aws ec2 modify-vpc-endpoint --vpc-endpoint-id {endpoint} --private-dns-enabled")
}
