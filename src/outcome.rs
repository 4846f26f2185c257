//! What a check found: its classified failure reason, the phase it failed in,
//! and the per-phase timings; plus the closed label sets (kinds, reasons,
//! phases) and the fixed table of hints the report prints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why a check failed: a closed, payload-free set, so it can be a metric label.
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
    clap::ValueEnum,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Reason {
    DnsNxdomain,
    DnsTimeout,
    DnsServfail,
    DnsPublicAddress,
    DnsUnexpectedAddress,
    ConnectTimeout,
    ConnectRefused,
    ConnectUnreachable,
    TlsError,
    TlsRequired,
    AuthFailed,
    PermissionDenied,
    WrongRole,
    MissingExtension,
    ClosedByPeer,
    TooManyConnections,
    PoolerIncompatible,
    DataMismatch,
    PathMtu,
    ProtocolError,
    UnexpectedResponse,
    Timeout,
    TooSlow,
    UnexpectedlyReachable,
    Interrupted,
}

impl Reason {
    /// Every reason, in declaration order: the enum itself is the list.
    pub fn all() -> impl Iterator<Item = Reason> {
        <Reason as strum::IntoEnumIterator>::iter()
    }

    /// The label value: stable, snake_case, safe for metrics and JSON.
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    /// One line: what the reason means.
    pub fn meaning(self) -> &'static str {
        self.describe().1
    }

    /// One line: the likely cause in the VPC and where to look, for any kind.
    pub fn hint(self) -> &'static str {
        self.describe().2
    }

    /// The hint for a check of `kind`: where the fix differs by kind, the
    /// object to inspect for that kind; else the general hint.
    pub fn hint_for(self, kind: Kind) -> &'static str {
        self.kind_hint(kind).unwrap_or_else(|| self.hint())
    }

    /// Hints that name a kind's own objects (one table, like `describe`).
    pub fn kind_hint(self, kind: Kind) -> Option<&'static str> {
        use Kind::{Http, Postgres, Redis};
        Some(match (self, kind) {
            (Reason::AuthFailed, Postgres) => "check the user and password (the Secrets Manager secret the task reads), pg_hba.conf on the Patroni nodes, and PgBouncer's auth_file / userlist and [databases]",
            (Reason::AuthFailed, Redis) => "check the AUTH token (the Secrets Manager secret the task reads; ElastiCache keeps the old and new token during a rotation), or the ACL user and its password: on ElastiCache the RBAC user must be in the user group attached to the replication group, and enabled",
            (Reason::AuthFailed, Http) => "check the credentials in the URL's user info against the service's authentication",
            (Reason::ClosedByPeer, Postgres) => "HAProxy has no healthy backend for this port (its stats / the Patroni REST checks), PgBouncer is at max_client_conn, or PostgreSQL at max_connections",
            (Reason::ClosedByPeer, Redis) => "the server closed the connection: maxclients reached, a proxy with no healthy node, or a TLS-only endpoint reached without TLS",
            (Reason::ClosedByPeer, Http) => "the service's listener closed the connection: no healthy target behind a load balancer or proxy, or a TLS listener reached with http://",
            (Reason::Timeout, Postgres) => "PostgreSQL, PgBouncer (query_wait_timeout, a full pool) or HAProxy (queueing at maxconn) stopped answering; the phase says where",
            (Reason::Timeout, Redis) => "the server accepted and went silent: a blocked or overloaded Redis, or a TLS/plain mismatch that leaves one side waiting",
            (Reason::Timeout, Http) => "the service accepted and did not answer in time: check the service's health and its dependencies",
            (Reason::TlsError, Postgres) => "check sslmode and ca_file against the server's certificate (PgBouncer's client_tls_* or PostgreSQL's ssl_cert_file), and that the name checked (host or tls_server_name) is on the certificate",
            (Reason::TlsError, Redis) => "check the endpoint has in-transit encryption as expected; ElastiCache certificates cover only the *.cache.amazonaws.com names, so a CNAME needs tls_server_name set to the real endpoint",
            (Reason::TlsError, Http) => "check the service's TLS listener: its certificate chain (ca_file for a private CA), its names (or tls_server_name) and protocol versions",
            (Reason::TlsRequired, Postgres) => "pg_hba.conf (or PgBouncer's client_tls_sslmode) only allows TLS here: use sslmode=require or verify-full",
            (Reason::TlsRequired, Redis) => "the endpoint has in-transit encryption: use rediss:// (and an AUTH token, which ElastiCache only allows with TLS)",
            (Reason::TlsRequired, Http) => "the listener serves HTTPS: use https:// (and ca_file for a private CA)",
            (Reason::PermissionDenied, Postgres) => "GRANT the probe's role what its queries touch (SELECT on the queried objects; pg_is_in_recovery() and pg_extension need no grant)",
            (Reason::PermissionDenied, Redis) => "extend the ACL user's access string (ElastiCache: the RBAC user's access string) with the commands the check sends: +ping, plus +role for expect_role and +info +cluster|info for cluster checks",
            _ => return None,
        })
    }

    /// The single table of (label, meaning, hint); one arm per reason.
    fn describe(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Reason::DnsNxdomain => (
                "dns_nxdomain",
                "the resolver says the name does not exist (or has no address records)",
                "check the Route 53 private hosted zone is associated with this VPC and holds the record; check the name for typos",
            ),
            Reason::DnsTimeout => (
                "dns_timeout",
                "no answer from the DNS resolver before the deadline",
                "the resolver is unreachable from this subnet: check the VPC DHCP options / resolver address, and NACLs or security groups blocking port 53",
            ),
            Reason::DnsServfail => (
                "dns_servfail",
                "the resolver answered with an error (SERVFAIL, REFUSED, ...)",
                "the resolver is broken or refuses this client: check Route 53 Resolver rules and forwarding endpoints",
            ),
            Reason::DnsPublicAddress => (
                "dns_public_address",
                "the name resolved to a public IP address",
                "enable DNS resolution on the VPC peering connection (requester and accepter options), or associate the private hosted zone with this VPC, so the name answers its private address",
            ),
            Reason::DnsUnexpectedAddress => (
                "dns_unexpected_address",
                "the name resolved outside the expected CIDRs or addresses",
                "compare the private hosted zone record with the expected address; a stale record or another zone shadowing this one",
            ),
            Reason::ConnectTimeout => (
                "connect_timeout",
                "the TCP connection got no answer before the deadline (packets dropped)",
                "check this subnet's route table has the peering route and that it is active (a deleted or rejected peering connection leaves a blackhole route), the network ACLs both ways (return traffic to ephemeral ports too), and that the target's security group allows this subnet on the port",
            ),
            Reason::ConnectRefused => (
                "connect_refused",
                "the host answered but nothing listens on the port (or a REJECT rule)",
                "the service is down or listens on another port: check the HAProxy / server process and its bind address",
            ),
            Reason::ConnectUnreachable => (
                "connect_unreachable",
                "no route to the target from this subnet",
                "add the peering route for the target CIDR to this subnet's route table; check the peering connection is active",
            ),
            Reason::TlsError => (
                "tls_error",
                "TLS failed: required but not offered, bad certificate, or wrong host name",
                "check the server has TLS enabled, the certificate chain and its names match the host used, or the sslmode / ca_file setting",
            ),
            Reason::TlsRequired => (
                "tls_required",
                "a plain-text client reached a port that only speaks TLS (proved by a TLS ClientHello that got a ServerHello)",
                "use TLS for this endpoint: rediss:// for Redis (ElastiCache in-transit encryption), https:// for HTTP, sslmode=require or verify-full for PostgreSQL",
            ),
            Reason::AuthFailed => (
                "auth_failed",
                "the server rejected the credentials",
                "check the user and password (the secret in Secrets Manager), pg_hba.conf, PgBouncer's userlist and [databases], or the Redis ACL user",
            ),
            Reason::PermissionDenied => (
                "permission_denied",
                "authenticated, but the user is not allowed a command or object the check needs",
                "grant the probe's user what the check runs: a Redis ACL / ElastiCache RBAC access string with the command (e.g. +ping +role +info), or a PostgreSQL GRANT on the object",
            ),
            Reason::WrongRole => (
                "wrong_role",
                "the server has the wrong role: a replica where a primary was expected, or the reverse",
                "check the HAProxy frontend for that port routes to the right Patroni role (its health check on /primary or /replica)",
            ),
            Reason::MissingExtension => (
                "missing_extension",
                "a required extension is not installed in that database",
                "CREATE EXTENSION in the target database, or point the check at the database that has it",
            ),
            Reason::ClosedByPeer => (
                "closed_by_peer",
                "the connection was accepted, then closed before the server spoke",
                "HAProxy has no healthy backend (check its stats / backend health), or the server is at its connection limit",
            ),
            Reason::TooManyConnections => (
                "too_many_connections",
                "the server or a proxy refused a session: its connection limit is reached",
                "size the path for the application's concurrency: PostgreSQL max_connections (or the role's CONNECTION LIMIT), PgBouncer max_client_conn / default_pool_size / query_wait_timeout, Redis maxclients (ElastiCache: by node type), HAProxy maxconn",
            ),
            Reason::PoolerIncompatible => (
                "pooler_incompatible",
                "a named prepared statement did not survive from one transaction to the next: a transaction-mode pooler moved the session to another server",
                "upgrade PgBouncer to 1.21 or later and set max_prepared_statements (Debian 12 ships 1.18), or turn server-side prepared statements off in the driver (pgx: QueryExecModeSimpleProtocol or describe/exec cache modes; asyncpg: statement_cache_size=0; JDBC: prepareThreshold=0; psycopg 3: prepare_threshold=None), or use session pooling",
            ),
            Reason::DataMismatch => (
                "data_mismatch",
                "bulk data sent through the path came back different or truncated",
                "a middlebox on the path alters or cuts large transfers: check proxies and inspection appliances between the task and the database (HAProxy / PgBouncer buffer settings, a firewall's protocol inspection), and the path MTU; the detail names the first differing byte",
            ),
            Reason::PathMtu => (
                "path_mtu",
                "small answers arrive on the path but large ones stall: packets bigger than the path's MTU are dropped, and the ICMP 'fragmentation needed' that would shrink them never reaches the sender",
                "allow ICMP type 3 code 4 (fragmentation needed) in the network ACLs and security groups of both VPCs, so path MTU discovery works; Fargate ENIs use MTU 9001 while inter-region peering, VPN and Transit Gateway paths carry 1500 at most (or clamp the MSS to 1460 on HAProxy / the proxies)",
            ),
            Reason::ProtocolError => (
                "protocol_error",
                "something other than the expected server answered on that port",
                "the port is served by another service: check the port in the check and the HAProxy frontend / ECS service mapping",
            ),
            Reason::UnexpectedResponse => (
                "unexpected_response",
                "the server answered, but not as expected (status, body, reply, query result)",
                "look at the detail: the service is up but unhealthy or misconfigured",
            ),
            Reason::Timeout => (
                "timeout",
                "the server accepted the connection, then stopped answering before the deadline",
                "the server is overloaded or hung, or a middlebox drops traffic after the handshake; the phase says where",
            ),
            Reason::TooSlow => (
                "too_slow",
                "the check passed but took longer than its max_duration budget",
                "the path is slower than budgeted: a congested or longer path (cross-region peering, a NAT or proxy hop), or an overloaded HAProxy / PgBouncer / server; the phase named is where most time went",
            ),
            Reason::Interrupted => (
                "interrupted",
                "the run was stopped (SIGTERM or SIGINT) before the check finished",
                "the task was stopped (ECS StopTask, a deployment, a Spot interruption, or the gate's own timeout) while the check ran: the other checks' results stand; run it again",
            ),
            Reason::UnexpectedlyReachable => (
                "unexpectedly_reachable",
                "a path that must stay closed accepted a connection",
                "the security group or NACL is too wide: remove the rule that lets this subnet reach the target directly",
            ),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds a suite may name in `kind = "..."`; the label is the same word.
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
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    Dns,
    Tcp,
    Postgres,
    Redis,
    Http,
}

impl Kind {
    /// The `kind` label, and the name used in suite files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A step of a check, each timed and each under the check's deadline.
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
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Auth,
    Query,
    Request,
    Body,
    Close,
}

impl Phase {
    /// The label value used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The reason a deadline expiring in this phase stands for.
    pub fn deadline_reason(self) -> Reason {
        match self {
            Phase::Resolve => Reason::DnsTimeout,
            Phase::Connect => Reason::ConnectTimeout,
            Phase::Tls
            | Phase::Auth
            | Phase::Query
            | Phase::Request
            | Phase::Body
            | Phase::Close => Reason::Timeout,
        }
    }
}

/// A classified error before the phase that saw it is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub reason: Reason,
    pub detail: String,
    /// The protocol's own error code when the server sent one (a
    /// SQLSTATE), for callers that count finer than reasons (the drill).
    pub code: Option<String>,
}

impl Fault {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Fault {
            reason,
            detail: detail.into(),
            code: None,
        }
    }

    /// The same fault, carrying the server's error code.
    pub fn with_code(self, code: impl Into<String>) -> Self {
        Fault {
            code: Some(code.into()),
            ..self
        }
    }
}

/// A check's failure: why, where, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: Reason,
    pub phase: Phase,
    pub detail: String,
}

impl Failure {
    pub fn new(phase: Phase, fault: Fault) -> Self {
        Failure {
            reason: fault.reason,
            phase,
            detail: fault.detail,
        }
    }
}

/// One resolved address's own result, when a check probes every address
/// behind its name (`addresses = "all"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressResult {
    pub address: std::net::IpAddr,
    pub result: Result<(), Failure>,
    pub duration: Duration,
}

/// Timings of repeated PostgreSQL open/auth/query/close cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cycles {
    pub ok: u32,
    pub failed: u32,
    /// Seconds per completed or failed cycle, in run order.
    pub seconds: Vec<f64>,
}

impl Cycles {
    /// (min, median, max) of the cycle times, if any cycle ran.
    pub fn spread(&self) -> Option<(f64, f64, f64)> {
        spread(&self.seconds)
    }
}

/// (min, median, max) of `samples`, if there are any.
pub fn spread(samples: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (sorted.first()?, sorted.last()?);
    Some((*first, sorted[sorted.len() / 2], *last))
}

/// The result of running one check once.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub kind: Kind,
    /// What was probed, with any secret removed.
    pub target: String,
    pub result: Result<(), Failure>,
    pub duration: Duration,
    /// Total time spent in each phase (summed over cycles).
    pub phases: BTreeMap<Phase, Duration>,
    /// Facts seen on the way, e.g. resolved addresses, server role, TLS version.
    pub observed: BTreeMap<&'static str, String>,
    pub cycles: Option<Cycles>,
    /// Each address's result with `addresses = "all"`; empty otherwise.
    pub addresses: Vec<AddressResult>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.result.is_ok()
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err()
    }
}

/// An outcome for unit tests of what is made from outcomes.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    pub(crate) fn outcome(name: &str, reason: Option<Reason>) -> Outcome {
        Outcome {
            name: name.to_string(),
            kind: Kind::Tcp,
            target: "127.0.0.1:1".to_string(),
            result: match reason {
                None => Ok(()),
                Some(reason) => Err(Failure::new(Phase::Connect, Fault::new(reason, "x"))),
            },
            duration: Duration::from_millis(5),
            phases: BTreeMap::new(),
            observed: BTreeMap::new(),
            cycles: None,
            addresses: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_unique_snake_case_and_hinted() {
        use clap::ValueEnum;
        let labels: HashSet<_> = Reason::all().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Reason::all().count());
        assert_eq!(Reason::all().count(), Reason::value_variants().len());
        for reason in Reason::all() {
            let label = reason.as_str();
            assert!(label.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert_eq!(serde_json::to_value(reason).unwrap(), label);
            let argument = reason
                .to_possible_value()
                .expect("every reason is an argument");
            assert_eq!(argument.get_name(), label);
            assert!(!reason.hint().is_empty() && !reason.meaning().is_empty());
        }
    }

    #[test]
    fn the_readme_explains_every_reason() {
        let readme = include_str!("../README.md");
        for reason in Reason::all() {
            let row = format!("| `{}` |", reason.as_str());
            assert!(
                readme.contains(&row),
                "README.md has no table row for {reason}"
            );
        }
    }

    #[test]
    fn phase_labels_are_their_json_names() {
        for phase in <Phase as strum::IntoEnumIterator>::iter() {
            assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
        }
    }

    #[test]
    fn deadline_in_resolve_or_connect_names_the_layer() {
        assert_eq!(Phase::Resolve.deadline_reason(), Reason::DnsTimeout);
        assert_eq!(Phase::Connect.deadline_reason(), Reason::ConnectTimeout);
        assert_eq!(Phase::Query.deadline_reason(), Reason::Timeout);
    }

    #[test]
    fn cycle_spread_is_min_median_max() {
        let cycles = Cycles {
            ok: 3,
            failed: 0,
            seconds: vec![0.3, 0.1, 0.2],
        };
        assert_eq!(cycles.spread(), Some((0.1, 0.2, 0.3)));
        assert_eq!(Cycles::default().spread(), None);
    }
}
