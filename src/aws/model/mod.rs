//! The network as the describe calls return it, typed and owned: network
//! interfaces, security groups, subnets, route tables, network ACLs,
//! peerings, VPC attributes and private hosted zones, each with the account
//! it was read in. The SDK's types stop at `fetch`; the walk only sees these.
//!
//! Layout: this file holds the VPC objects and the `World`; `transit` the
//! transit gateways, `privatelink` interface endpoints, endpoint services
//! and the load balancers behind them.

mod privatelink;
mod transit;

use ipnet::Ipv4Net;
pub use privatelink::*;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
pub use transit::*;

/// A network interface: what holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    pub account: String,
    pub address: Ipv4Addr,
    pub subnet: String,
    pub vpc: String,
    pub groups: Vec<String>,
    /// EC2's `interfaceType` (`interface`, `vpc_endpoint`,
    /// `network_load_balancer`, ...), when it said one.
    pub interface_type: Option<String>,
}

/// A TCP/UDP port range; `None` on a rule means every protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub from: u16,
    pub to: u16,
}

impl Ports {
    pub const ALL: Ports = Ports { from: 0, to: 65535 };
    /// The client side of a connection, as AWS documents it for NACLs.
    pub const EPHEMERAL: Ports = Ports {
        from: 1024,
        to: 65535,
    };

    pub fn one(port: u16) -> Ports {
        Ports {
            from: port,
            to: port,
        }
    }

    pub fn contains(self, port: u16) -> bool {
        (self.from..=self.to).contains(&port)
    }
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from == self.to {
            true => write!(f, "{}", self.from),
            false => write!(f, "{}-{}", self.from, self.to),
        }
    }
}

/// What one rule's protocol covers, for TCP traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `-1`: every protocol and port.
    All,
    /// `tcp` / `6` with its port range.
    Tcp(Ports),
    /// Anything else (udp, icmp): never TCP.
    Other,
}

impl Protocol {
    /// Whether TCP to `port` falls under this protocol.
    pub fn covers(self, port: u16) -> bool {
        match self {
            Protocol::All => true,
            Protocol::Tcp(ports) => ports.contains(port),
            Protocol::Other => false,
        }
    }

    /// The TCP ports this protocol lets through.
    pub fn tcp_ports(self) -> Option<Ports> {
        match self {
            Protocol::All => Some(Ports::ALL),
            Protocol::Tcp(ports) => Some(ports),
            Protocol::Other => None,
        }
    }
}

/// Who a security group rule names on the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Cidr(Ipv4Net),
    /// A managed prefix list, with its CIDRs when they could be read.
    PrefixList(String, Vec<Ipv4Net>),
    /// Another security group (`sg-…`), possibly in the peer account.
    Group(String),
}

/// One security group rule, ingress or egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRule {
    /// `sgr-…` when the API gave one.
    pub id: Option<String>,
    pub protocol: Protocol,
    pub peer: Peer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub account: String,
    pub name: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub account: String,
    pub vpc: String,
    pub cidr: Ipv4Net,
    /// Its Availability Zone (`eu-west-1a`), when the describe said one.
    pub zone: Option<String>,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local,
    Peering(String),
    TransitGateway(String),
    /// An internet, egress-only or virtual private gateway (`igw-…`, `vgw-…`).
    Gateway(String),
    Nat(String),
    /// A network interface, an instance or anything else, by id.
    Other(String),
}

impl Target {
    pub fn id(&self) -> &str {
        match self {
            Target::Local => "local",
            Target::Peering(id)
            | Target::TransitGateway(id)
            | Target::Gateway(id)
            | Target::Nat(id)
            | Target::Other(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    pub target: Target,
    /// `State` = `blackhole` in the API.
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub account: String,
    pub vpc: String,
    /// Subnets explicitly associated.
    pub subnets: Vec<String>,
    /// The VPC's main table, used by subnets with no explicit association.
    pub main: bool,
    pub routes: Vec<Route>,
}

/// One network ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub number: u16,
    pub egress: bool,
    pub allow: bool,
    pub protocol: Protocol,
    pub cidr: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAcl {
    pub id: String,
    pub account: String,
    pub vpc: String,
    pub subnets: Vec<String>,
    /// As listed; evaluated in ascending number, then the final deny (32767).
    pub entries: Vec<AclEntry>,
}

/// A peering's status code (`Status.Code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringSide {
    pub vpc: String,
    pub account: String,
    pub cidrs: Vec<Ipv4Net>,
    /// `PeeringOptions.AllowDnsResolutionFromRemoteVpc` of this side.
    pub dns_from_remote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub id: String,
    pub status: String,
    pub requester: PeeringSide,
    pub accepter: PeeringSide,
}

impl Peering {
    pub fn active(&self) -> bool {
        self.status == "active"
    }

    /// Whether the peering joins these two VPCs (either way round).
    pub fn joins(&self, a: &str, b: &str) -> bool {
        let (r, x) = (&self.requester.vpc, &self.accepter.vpc);
        (r == a && x == b) || (r == b && x == a)
    }

    /// The side of `vpc`.
    pub fn side(&self, vpc: &str) -> Option<&PeeringSide> {
        [&self.requester, &self.accepter]
            .into_iter()
            .find(|side| side.vpc == vpc)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub account: String,
    pub cidrs: Vec<Ipv4Net>,
    pub dns_support: Option<bool>,
    pub dns_hostnames: Option<bool>,
}

/// A private hosted zone and the VPCs it is associated with (as far as read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub account: String,
    /// Without the trailing dot, lowercase.
    pub name: String,
    pub vpcs: Vec<String>,
}

/// A describe call that was refused: the action and the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub action: String,
    pub account: String,
    pub message: String,
}

/// Everything read for one run, from one or both accounts.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub enis: Vec<Eni>,
    pub groups: BTreeMap<String, SecurityGroup>,
    pub subnets: BTreeMap<String, Subnet>,
    pub tables: Vec<RouteTable>,
    pub acls: Vec<NetworkAcl>,
    pub peerings: Vec<Peering>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub zones: Vec<Zone>,
    pub gateways: Vec<TransitGateway>,
    pub attachments: Vec<TgwAttachment>,
    pub tgw_tables: Vec<TgwRouteTable>,
    pub endpoints: Vec<Endpoint>,
    pub services: Vec<EndpointService>,
    pub balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<TargetGroup>,
    pub denied: Vec<Denied>,
    /// The account of each side read: the app's, then the peer's.
    pub accounts: Vec<String>,
}

impl World {
    pub fn eni_at(&self, address: Ipv4Addr) -> Option<&Eni> {
        self.enis.iter().find(|eni| eni.address == address)
    }

    pub fn eni(&self, id: &str) -> Option<&Eni> {
        self.enis.iter().find(|eni| eni.id == id)
    }

    /// The subnet's route table: its explicit association, else the VPC's main one.
    pub fn table_of(&self, subnet: &Subnet) -> Option<&RouteTable> {
        let explicit = self.tables.iter().find(|t| t.subnets.contains(&subnet.id));
        explicit.or_else(|| self.tables.iter().find(|t| t.main && t.vpc == subnet.vpc))
    }

    pub fn acl_of(&self, subnet: &str) -> Option<&NetworkAcl> {
        self.acls
            .iter()
            .find(|acl| acl.subnets.iter().any(|s| s == subnet))
    }

    pub fn peering(&self, id: &str) -> Option<&Peering> {
        self.peerings.iter().find(|p| p.id == id)
    }

    /// The subnet whose CIDR holds `address`, among those read.
    pub fn subnet_holding(&self, address: Ipv4Addr) -> Option<&Subnet> {
        self.subnets.values().find(|s| s.cidr.contains(&address))
    }

    /// The attachment joining `vpc` to `gateway`: an available one first.
    pub fn attachment(&self, gateway: &str, vpc: &str) -> Option<&TgwAttachment> {
        let joining = || {
            self.attachments
                .iter()
                .filter(|a| a.gateway == gateway && a.vpc == vpc)
        };
        joining()
            .find(|a| a.available())
            .or_else(|| joining().next())
    }

    /// The interface endpoint owning the interface `eni`.
    pub fn endpoint_of(&self, eni: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.interfaces.iter().any(|i| i == eni))
    }

    /// The endpoint service named `name`, when its provider was read.
    pub fn service(&self, name: &str) -> Option<&EndpointService> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn tgw_table(&self, id: &str) -> Option<&TgwRouteTable> {
        self.tgw_tables.iter().find(|t| t.id == id)
    }

    /// The refused action that may hide `action`'s answer, if any.
    pub fn denied(&self, action: &str) -> Option<&Denied> {
        self.denied.iter().find(|d| d.action == action)
    }
}
