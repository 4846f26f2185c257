//! The failure reasons: a closed, payload-free set (so a reason can be a
//! metric label), and the one table of what each means and what to fix,
//! in general and per kind.

use super::Kind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a check failed: a closed, payload-free set, so it can be a metric label.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[derive(clap::ValueEnum, strum::EnumIter)]
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
    IdleTimeout,
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
        self.describe().label
    }

    /// One line: what the reason means.
    pub fn meaning(self) -> &'static str {
        self.describe().meaning
    }

    /// One line: the likely cause in the VPC and where to look, for any kind.
    pub fn hint(self) -> &'static str {
        self.describe().hint
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
            (Reason::IdleTimeout, Postgres) => "on the PostgreSQL path: HAProxy `timeout client` / `timeout server` (Patroni's sample: 30m) and PgBouncer `client_idle_timeout` close idle sessions; set the application pool's max idle time (pgx MaxConnIdleTime, HikariCP idleTimeout / maxLifetime, SQLAlchemy pool_recycle) below the shortest, or raise them",
            (Reason::IdleTimeout, Redis) => "on the Redis path: the server's `timeout` (ElastiCache parameter group; 0 = never) or a proxy closes idle clients; enable the client's health checks / keepalive PINGs, or set `timeout` 0",
            (Reason::PermissionDenied, Postgres) => "GRANT the probe's role what its queries touch (SELECT on the queried objects; pg_is_in_recovery() and pg_extension need no grant)",
            (Reason::PermissionDenied, Redis) => "extend the ACL user's access string (ElastiCache: the RBAC user's access string) with the commands the check sends: +ping, plus +role for expect_role and +info +cluster|info for cluster checks",
            _ => return None,
        })
    }

    /// Each reason's row of the table below; one arm per reason.
    fn describe(self) -> &'static Described {
        match self {
            Reason::DnsNxdomain => &DNS_NXDOMAIN,
            Reason::DnsTimeout => &DNS_TIMEOUT,
            Reason::DnsServfail => &DNS_SERVFAIL,
            Reason::DnsPublicAddress => &DNS_PUBLIC_ADDRESS,
            Reason::DnsUnexpectedAddress => &DNS_UNEXPECTED_ADDRESS,
            Reason::ConnectTimeout => &CONNECT_TIMEOUT,
            Reason::ConnectRefused => &CONNECT_REFUSED,
            Reason::ConnectUnreachable => &CONNECT_UNREACHABLE,
            Reason::TlsError => &TLS_ERROR,
            Reason::TlsRequired => &TLS_REQUIRED,
            Reason::AuthFailed => &AUTH_FAILED,
            Reason::PermissionDenied => &PERMISSION_DENIED,
            Reason::WrongRole => &WRONG_ROLE,
            Reason::MissingExtension => &MISSING_EXTENSION,
            Reason::ClosedByPeer => &CLOSED_BY_PEER,
            Reason::TooManyConnections => &TOO_MANY_CONNECTIONS,
            Reason::PoolerIncompatible => &POOLER_INCOMPATIBLE,
            Reason::DataMismatch => &DATA_MISMATCH,
            Reason::PathMtu => &PATH_MTU,
            Reason::ProtocolError => &PROTOCOL_ERROR,
            Reason::UnexpectedResponse => &UNEXPECTED_RESPONSE,
            Reason::Timeout => &TIMEOUT,
            Reason::IdleTimeout => &IDLE_TIMEOUT,
            Reason::TooSlow => &TOO_SLOW,
            Reason::Interrupted => &INTERRUPTED,
            Reason::UnexpectedlyReachable => &UNEXPECTEDLY_REACHABLE,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason's row: its label, what it means, and what to fix.
struct Described {
    label: &'static str,
    meaning: &'static str,
    hint: &'static str,
}

// The table, in the enum's order.

const DNS_NXDOMAIN: Described = Described {
    label: "dns_nxdomain",
    meaning: "the resolver says the name does not exist (or has no address records)",
    hint: "check the Route 53 private hosted zone is associated with this VPC and holds the record; check the name for typos",
};

const DNS_TIMEOUT: Described = Described {
    label: "dns_timeout",
    meaning: "no answer from the DNS resolver before the deadline",
    hint: "the resolver is unreachable from this subnet: check the VPC DHCP options / resolver address, and NACLs or security groups blocking port 53",
};

const DNS_SERVFAIL: Described = Described {
    label: "dns_servfail",
    meaning: "the resolver answered with an error (SERVFAIL, REFUSED, ...)",
    hint: "the resolver is broken or refuses this client: check Route 53 Resolver rules and forwarding endpoints",
};

const DNS_PUBLIC_ADDRESS: Described = Described {
    label: "dns_public_address",
    meaning: "the name resolved to a public IP address",
    hint: "enable DNS resolution on the VPC peering connection (requester and accepter options), or associate the private hosted zone with this VPC, so the name answers its private address",
};

const DNS_UNEXPECTED_ADDRESS: Described = Described {
    label: "dns_unexpected_address",
    meaning: "the name resolved outside the expected CIDRs or addresses",
    hint: "compare the private hosted zone record with the expected address; a stale record or another zone shadowing this one",
};

const CONNECT_TIMEOUT: Described = Described {
    label: "connect_timeout",
    meaning: "the TCP connection got no answer before the deadline (packets dropped)",
    hint: "check this subnet's route table has the peering route and that it is active (a deleted or rejected peering connection leaves a blackhole route), the network ACLs both ways (return traffic to ephemeral ports too), and that the target's security group allows this subnet on the port",
};

const CONNECT_REFUSED: Described = Described {
    label: "connect_refused",
    meaning: "the host answered but nothing listens on the port (or a REJECT rule)",
    hint: "the service is down or listens on another port: check the HAProxy / server process and its bind address",
};

const CONNECT_UNREACHABLE: Described = Described {
    label: "connect_unreachable",
    meaning: "no route to the target from this subnet",
    hint: "add the peering route for the target CIDR to this subnet's route table; check the peering connection is active",
};

const TLS_ERROR: Described = Described {
    label: "tls_error",
    meaning: "TLS failed: required but not offered, bad certificate, or wrong host name",
    hint: "check the server has TLS enabled, the certificate chain and its names match the host used, or the sslmode / ca_file setting",
};

const TLS_REQUIRED: Described = Described {
    label: "tls_required",
    meaning: "a plain-text client reached a port that only speaks TLS (proved by a TLS ClientHello that got a ServerHello)",
    hint: "use TLS for this endpoint: rediss:// for Redis (ElastiCache in-transit encryption), https:// for HTTP, sslmode=require or verify-full for PostgreSQL",
};

const AUTH_FAILED: Described = Described {
    label: "auth_failed",
    meaning: "the server rejected the credentials",
    hint: "check the user and password (the secret in Secrets Manager), pg_hba.conf, PgBouncer's userlist and [databases], or the Redis ACL user",
};

const PERMISSION_DENIED: Described = Described {
    label: "permission_denied",
    meaning: "authenticated, but the user is not allowed a command or object the check needs",
    hint: "grant the probe's user what the check runs: a Redis ACL / ElastiCache RBAC access string with the command (e.g. +ping +role +info), or a PostgreSQL GRANT on the object",
};

const WRONG_ROLE: Described = Described {
    label: "wrong_role",
    meaning: "the server has the wrong role: a replica where a primary was expected, or the reverse",
    hint: "check the HAProxy frontend for that port routes to the right Patroni role (its health check on /primary or /replica)",
};

const MISSING_EXTENSION: Described = Described {
    label: "missing_extension",
    meaning: "a required extension is not installed in that database",
    hint: "CREATE EXTENSION in the target database, or point the check at the database that has it",
};

const CLOSED_BY_PEER: Described = Described {
    label: "closed_by_peer",
    meaning: "the connection was accepted, then closed before the server spoke",
    hint: "HAProxy has no healthy backend (check its stats / backend health), or the server is at its connection limit",
};

const TOO_MANY_CONNECTIONS: Described = Described {
    label: "too_many_connections",
    meaning: "the server or a proxy refused a session: its connection limit is reached",
    hint: "size the path for the application's concurrency: PostgreSQL max_connections (or the role's CONNECTION LIMIT), PgBouncer max_client_conn / default_pool_size / query_wait_timeout, Redis maxclients (ElastiCache: by node type), HAProxy maxconn",
};

const POOLER_INCOMPATIBLE: Described = Described {
    label: "pooler_incompatible",
    meaning: "a named prepared statement did not survive from one transaction to the next: a transaction-mode pooler moved the session to another server",
    hint: "upgrade PgBouncer to 1.21 or later and set max_prepared_statements (Debian 12 ships 1.18), or turn server-side prepared statements off in the driver (pgx: QueryExecModeSimpleProtocol or describe/exec cache modes; asyncpg: statement_cache_size=0; JDBC: prepareThreshold=0; psycopg 3: prepare_threshold=None), or use session pooling",
};

const DATA_MISMATCH: Described = Described {
    label: "data_mismatch",
    meaning: "bulk data sent through the path came back different or truncated",
    hint: "a middlebox on the path alters or cuts large transfers: check proxies and inspection appliances between the task and the database (HAProxy / PgBouncer buffer settings, a firewall's protocol inspection), and the path MTU; the detail names the first differing byte",
};

const PATH_MTU: Described = Described {
    label: "path_mtu",
    meaning: "small answers arrive on the path but large ones stall: packets bigger than the path's MTU are dropped, and the ICMP 'fragmentation needed' that would shrink them never reaches the sender",
    hint: "allow ICMP type 3 code 4 (fragmentation needed) in the network ACLs and security groups of both VPCs, so path MTU discovery works; Fargate ENIs use MTU 9001 while inter-region peering, VPN and Transit Gateway paths carry 1500 at most (or clamp the MSS to 1460 on HAProxy / the proxies)",
};

const PROTOCOL_ERROR: Described = Described {
    label: "protocol_error",
    meaning: "something other than the expected server answered on that port",
    hint: "the port is served by another service: check the port in the check and the HAProxy frontend / ECS service mapping",
};

const UNEXPECTED_RESPONSE: Described = Described {
    label: "unexpected_response",
    meaning: "the server answered, but not as expected (status, body, reply, query result)",
    hint: "look at the detail: the service is up but unhealthy or misconfigured",
};

const TIMEOUT: Described = Described {
    label: "timeout",
    meaning: "the server accepted the connection, then stopped answering before the deadline",
    hint: "the server is overloaded or hung, or a middlebox drops traffic after the handshake; the phase says where",
};

const IDLE_TIMEOUT: Described = Described {
    label: "idle_timeout",
    meaning: "a session held idle (`idle`) no longer worked: closed by the peer, reset, or silent, as the detail says",
    hint: "something on the path kills idle connections: HAProxy `timeout client` / `timeout server`, an NLB's idle timeout (350 s), security group connection tracking, PgBouncer `client_idle_timeout`, Redis `timeout`; keep the application pool's idle lifetime under the limit, or keep sessions busy (TCP keepalive only helps against killers that watch packets: NLBs, NAT, connection tracking)",
};

const TOO_SLOW: Described = Described {
    label: "too_slow",
    meaning: "the check passed but took longer than its max_duration budget",
    hint: "the path is slower than budgeted: a congested or longer path (cross-region peering, a NAT or proxy hop), or an overloaded HAProxy / PgBouncer / server; the phase named is where most time went",
};

const INTERRUPTED: Described = Described {
    label: "interrupted",
    meaning: "the run was stopped (SIGTERM or SIGINT) before the check finished",
    hint: "the task was stopped (ECS StopTask, a deployment, a Spot interruption, or the gate's own timeout) while the check ran: the other checks' results stand; run it again",
};

const UNEXPECTEDLY_REACHABLE: Described = Described {
    label: "unexpectedly_reachable",
    meaning: "a path that must stay closed accepted a connection",
    hint: "the security group or NACL is too wide: remove the rule that lets this subnet reach the target directly",
};

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
    fn the_reasons_page_explains_every_reason() {
        let readme = include_str!("../../docs/reasons.md");
        for reason in Reason::all() {
            let row = format!(
                "| `{}` | {} | {} |",
                reason.as_str(),
                reason.meaning(),
                reason.hint()
            );
            assert!(
                readme.contains(&row),
                "docs/reasons.md has no row for {reason}, or its words differ from these: {row}"
            );
        }
    }
}
