//! A transit gateway as the walk needs it: the gateway, each VPC's
//! attachment and its association, the gateway's route tables and routes.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A VPC's attachment to a transit gateway, read in the VPC's account
/// (or the gateway owner's), with the route table it is associated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwAttachment {
    pub id: String,
    pub gateway: String,
    /// The VPC owner's account.
    pub account: String,
    pub vpc: String,
    /// `available`, `pendingAcceptance`, `rejected`, `deleted`, ...
    pub state: String,
    /// The subnets it has an interface in: one per Availability Zone it serves.
    pub subnets: Vec<String>,
    pub appliance_mode: bool,
    /// `SecurityGroupReferencingSupport` of this attachment.
    pub sg_referencing: bool,
    /// The TGW route table it is associated with, when the association is
    /// known and not being removed.
    pub association: Option<String>,
}

impl TgwAttachment {
    pub fn available(&self) -> bool {
        self.state == "available"
    }
}

/// A transit gateway, as its owner (or an account it is shared with) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitGateway {
    pub id: String,
    /// The owner's account (a network account, when shared through RAM).
    pub account: String,
    /// `SecurityGroupReferencingSupport` of the gateway itself.
    pub sg_referencing: bool,
}

/// Where a transit gateway route leads: its attachments' ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRoute {
    pub destination: Ipv4Net,
    pub attachments: Vec<String>,
    /// `propagated`, or `static` (entered by hand).
    pub propagated: bool,
    pub blackhole: bool,
}

/// A transit gateway route table, read in the gateway owner's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRouteTable {
    pub id: String,
    pub gateway: String,
    pub account: String,
    pub routes: Vec<TgwRoute>,
}

impl TgwRouteTable {
    /// The route a packet for `address` takes: the longest prefix.
    pub fn route_to(&self, address: Ipv4Addr) -> Option<&TgwRoute> {
        self.routes
            .iter()
            .filter(|r| r.destination.contains(&address))
            .max_by_key(|r| r.destination.prefix_len())
    }
}
