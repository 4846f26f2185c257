//! What the AWS describes say about a check's path: findings with a closed
//! set of codes (in the spirit of Reachability Analyzer's explanation
//! codes), each naming the object, its account, a one-line explanation and
//! the fix as a runnable `aws …` command. `crate::aws` makes them; the
//! reports, JUnit and the metrics only carry them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why the describes say a path is blocked, open, or open when it must not be.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    SgEgressMissing,
    SgIngressMissing,
    NaclDenied,
    NaclReturnBlocked,
    NoRoute,
    MoreSpecificRoute,
    BlackholeRoute,
    ReturnRouteMissing,
    PeeringNotActive,
    CidrOverlap,
    TgwAttachmentMissing,
    TgwAttachmentNotInZone,
    TgwNotAssociated,
    TgwNoRoute,
    TgwBlackholeRoute,
    TgwReturnRouteMissing,
    SgReferenceAcrossTgw,
    EndpointNotAvailable,
    EndpointPrincipalNotAllowed,
    NlbNoListener,
    NlbTargetsUnhealthy,
    EndpointPrivateDnsOff,
    PeeringDnsResolutionOff,
    ZoneNotAssociated,
    VpcDnsOff,
    SourceUnknown,
    DestinationUnknown,
    AccessDenied,
    HopNotFollowed,
    PathOpen,
    AllowedByRule,
}

impl Code {
    /// The label in JSON, text and the `code` metric label.
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    /// What the code means, for `vpc-probe explain` and docs/aws.md.
    pub fn meaning(self) -> &'static str {
        self.describe().1
    }

    /// Whether this finding blocks the path (as opposed to an open path,
    /// a too-open one, or one the describes could not see).
    pub fn blocks(self) -> bool {
        !matches!(
            self,
            Code::SourceUnknown
                | Code::DestinationUnknown
                | Code::AccessDenied
                | Code::HopNotFollowed
                | Code::PathOpen
                | Code::AllowedByRule
        )
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Code::SgEgressMissing => ("sg_egress_missing", "no egress rule of the source's security groups lets the traffic out"),
            Code::SgIngressMissing => ("sg_ingress_missing", "no ingress rule of the destination's security groups lets the source in"),
            Code::NaclDenied => ("nacl_denied", "a network ACL entry (or the final deny) drops the request on its way"),
            Code::NaclReturnBlocked => ("nacl_return_blocked", "a network ACL drops the replies to the client's ephemeral ports (1024-65535): NACLs are stateless"),
            Code::NoRoute => ("no_route", "the subnet's route table has no route to the destination through the peering"),
            Code::MoreSpecificRoute => ("more_specific_route", "a more specific route sends the traffic somewhere other than the peering"),
            Code::BlackholeRoute => ("blackhole_route", "the route's target is gone (a deleted peering, gateway or interface)"),
            Code::ReturnRouteMissing => ("return_route_missing", "the destination subnet's route table has no route back to the source through the same peering"),
            Code::PeeringNotActive => ("peering_not_active", "the peering connection is not active (pending acceptance, rejected, expired, failed or deleted)"),
            Code::CidrOverlap => ("cidr_overlap", "the two VPCs' CIDR blocks overlap, which a peering cannot route"),
            Code::TgwAttachmentMissing => ("tgw_attachment_missing", "the VPC has no available attachment to the transit gateway its route points at (none, pending acceptance, rejected or deleted)"),
            Code::TgwAttachmentNotInZone => ("tgw_attachment_not_in_zone", "the transit gateway attachment has no subnet in this end's Availability Zone, so the gateway takes no traffic from (or to) that zone"),
            Code::TgwNotAssociated => ("tgw_not_associated", "the VPC's transit gateway attachment is associated with no transit gateway route table, so the gateway drops what it sends"),
            Code::TgwNoRoute => ("tgw_no_route", "the transit gateway route table associated with the source's attachment has no route to the destination's attachment"),
            Code::TgwBlackholeRoute => ("tgw_blackhole_route", "the transit gateway route that matches is a blackhole (its attachment is gone, or the route was made to drop)"),
            Code::TgwReturnRouteMissing => ("tgw_return_route_missing", "the transit gateway route table associated with the destination's attachment has no route back to the source's attachment"),
            Code::SgReferenceAcrossTgw => ("sg_reference_across_tgw", "a security group rule names a group in the other VPC, which matches nothing across a transit gateway: AWS supports group references only over peering and inside a VPC (by default)"),
            Code::EndpointNotAvailable => ("endpoint_not_available", "the interface endpoint is not available (pending the provider's acceptance, rejected, failed or deleted), so nothing crosses it"),
            Code::EndpointPrincipalNotAllowed => ("endpoint_principal_not_allowed", "the endpoint service's allowed principals do not include the consumer's account, role or user"),
            Code::NlbNoListener => ("nlb_no_listener", "the Network Load Balancer behind the endpoint service has no listener on the checked port"),
            Code::NlbTargetsUnhealthy => ("nlb_targets_unhealthy", "no target behind the load balancer's listener is healthy (or none is registered): the reason codes say why"),
            Code::EndpointPrivateDnsOff => ("endpoint_private_dns_off", "the interface endpoint for the service the name belongs to has private DNS off, so the name resolves to the service's public answer in the source VPC"),
            Code::PeeringDnsResolutionOff => ("peering_dns_resolution_off", "the peering does not let the source VPC resolve the remote VPC's private names"),
            Code::ZoneNotAssociated => ("zone_not_associated", "the private hosted zone that holds the name is not associated with the source VPC"),
            Code::VpcDnsOff => ("vpc_dns_off", "the source VPC's enableDnsSupport or enableDnsHostnames attribute is off"),
            Code::SourceUnknown => ("source_unknown", "no network interface or subnet matches the source, so the path was not walked"),
            Code::DestinationUnknown => ("destination_unknown", "no network interface in the accounts read holds the destination address"),
            Code::AccessDenied => ("access_denied", "a describe call was refused, so part of the path was not read"),
            Code::HopNotFollowed => ("hop_not_followed", "the path crosses an object the walk does not follow (a transit gateway whose attachments or route tables could not be read, an appliance's interface, a gateway endpoint, an interface endpoint whose endpoint or provider was not read, a destination that hands the traffic on such as a load balancer, a route table or network ACL not read): the describes cannot say the path is open"),
            Code::PathOpen => ("path_open", "the describes show an open path: the cause is outside the VPC configuration (the host, the proxy, an OS firewall)"),
            Code::AllowedByRule => ("allowed_by_rule", "a path that must stay closed is open: this rule lets the traffic through"),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One AWS object behind a check's result, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub code: Code,
    /// The object: `sg-…`, `acl-… rule 90`, `rtb-…`, `pcx-…`, a hosted zone id, an API action.
    pub object: String,
    /// The account that owns the object, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// One line: what the object does to this path.
    pub explanation: String,
    /// A runnable `aws …` command that fixes it, when one can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.object)?;
        if let Some(account) = &self.account {
            write!(f, " (account {account})")?;
        }
        write!(f, ": {}", self.explanation)
    }
}

/// The explanation of one check: its findings, the chain of objects the
/// walk went through, or why there is no explanation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    pub findings: Vec<Finding>,
    /// The objects on the path, in the order the traffic meets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// Why the path was not (fully) explained: no credentials, a denied action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Evidence {
    /// An explanation that could not be made, and why.
    pub fn skipped(why: impl Into<String>) -> Self {
        Evidence {
            skipped: Some(why.into()),
            ..Evidence::default()
        }
    }

    /// Whether any finding blocks the path.
    pub fn blocked(&self) -> bool {
        self.findings.iter().any(|f| f.code.blocks())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn labels_are_unique_snake_case_and_meant() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::iter() {
            let label = code.as_str();
            assert!(seen.insert(label), "{label} twice");
            assert!(label.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!code.meaning().is_empty());
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{label}\""), "serde and as_str agree");
        }
    }
}
