//! PrivateLink as the walk needs it: the consumer's interface endpoint, the
//! provider's endpoint service (acceptance, principals, its connections),
//! and the Network Load Balancer behind it (listeners, target groups and
//! their targets' health).

/// An interface endpoint, as its consumer account reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub account: String,
    pub vpc: String,
    /// `com.amazonaws.vpce.<region>.vpce-svc-…` for an endpoint service.
    pub service: String,
    /// `pendingAcceptance`, `pending`, `available`, `rejected`, `failed`, ...
    pub state: String,
    pub interfaces: Vec<String>,
    pub subnets: Vec<String>,
    pub private_dns: bool,
    /// The service's private DNS name (`db.example.com`, `*.example.com`),
    /// as the consumer's DescribeVpcEndpointServices says it.
    pub dns_name: Option<String>,
}

impl Endpoint {
    /// Whether the service's private DNS name covers `host` (lowercase,
    /// no trailing dot); a `*.` name covers one more label.
    pub fn names(&self, host: &str) -> bool {
        let Some(name) = self.dns_name.as_deref() else {
            return false;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => host == name,
        }
    }
}

impl Endpoint {
    /// Whether traffic crosses it: only `available` carries any.
    pub fn available(&self) -> bool {
        self.state.eq_ignore_ascii_case("available")
    }
}

/// An endpoint service, as its provider account reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointService {
    pub id: String,
    pub name: String,
    pub account: String,
    pub acceptance_required: bool,
    pub zones: Vec<String>,
    pub load_balancers: Vec<String>,
    /// The allowed principals' ARNs (`*` for everyone), when read.
    pub principals: Option<Vec<String>>,
    /// Each endpoint connected to it and the connection's state.
    pub connections: Vec<(String, String)>,
}

/// One listener of a load balancer: its port and where it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub protocol: String,
    pub target_groups: Vec<String>,
}

/// A target's health as the target group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub target: String,
    pub port: Option<u16>,
    pub state: String,
    /// `Target.Timeout`, `Target.FailedHealthChecks`, ...
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub targets: Vec<TargetHealth>,
}

impl TargetGroup {
    pub fn healthy(&self) -> bool {
        self.targets.iter().any(|t| t.state == "healthy")
    }
}

/// A Network Load Balancer behind an endpoint service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub zones: Vec<String>,
    pub listeners: Vec<Listener>,
}
