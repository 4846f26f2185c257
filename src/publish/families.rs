//! Every metric family the probe exports, defined once: its name, its
//! type, its HELP text and its labels. `metrics` registers them per scrape;
//! tests/prometheus.rs holds the dashboard and the rules to this list.

use crate::ecs::TaskIdentity;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

/// A family's type in the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
}

/// One metric family: what Prometheus sees of it.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Type,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

impl Family {
    /// This gauge family, registered in `registry`.
    pub fn gauge(&self, registry: &Registry) -> prometheus::Result<GaugeVec> {
        debug_assert_eq!(self.kind, Type::Gauge, "{}", self.name);
        let family = GaugeVec::new(Opts::new(self.name, self.help), self.labels)?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    }

    /// This counter family, registered in `registry`.
    pub fn counter(&self, registry: &Registry) -> prometheus::Result<IntCounterVec> {
        debug_assert_eq!(self.kind, Type::Counter, "{}", self.name);
        let family = IntCounterVec::new(Opts::new(self.name, self.help), self.labels)?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    }
}

const CHECK: &[&str] = &["check", "kind"];

pub const SUCCESS: Family = Family {
    name: "probe_success",
    kind: Type::Gauge,
    help: "Whether the check passed (1) or failed (0) on its latest run.",
    labels: CHECK,
};

pub const DURATION: Family = Family {
    name: "probe_duration_seconds",
    kind: Type::Gauge,
    help: "How long the check's latest run took.",
    labels: CHECK,
};

pub const DNS_LOOKUP: Family = Family {
    name: "probe_dns_lookup_time_seconds",
    kind: Type::Gauge,
    help: "Time the latest run spent resolving the target's name (microseconds for an IP literal, which needs no DNS).",
    labels: CHECK,
};

pub const PHASE: Family = Family {
    name: "vpc_probe_phase_duration_seconds",
    kind: Type::Gauge,
    help: "Time spent in each phase of the check's latest run (summed over PostgreSQL cycles).",
    labels: &["check", "kind", "phase"],
};

pub const REASON: Family = Family {
    name: "vpc_probe_failure_reason",
    kind: Type::Gauge,
    help:
        "1 for the reason and phase of the check's latest failure; reason=\"none\" while it passes.",
    labels: &["check", "kind", "reason", "phase"],
};

pub const LAST_RUN: Family = Family {
    name: "vpc_probe_last_run_timestamp_seconds",
    kind: Type::Gauge,
    help: "When the check's latest run finished, in seconds since the epoch.",
    labels: CHECK,
};

pub const RUNS: Family = Family {
    name: "vpc_probe_check_runs_total",
    kind: Type::Counter,
    help: "Runs of the check since the probe started, by result.",
    labels: &["check", "kind", "result"],
};

pub const FAILURES: Family = Family {
    name: "vpc_probe_check_failures_total",
    kind: Type::Counter,
    help: "Failed runs of the check since the probe started, by reason.",
    labels: &["check", "kind", "reason"],
};

pub const CYCLES: Family = Family {
    name: "vpc_probe_postgres_cycles_total",
    kind: Type::Counter,
    help: "PostgreSQL open/auth/query/close cycles since the probe started, by result.",
    labels: &["check", "result"],
};

pub const SERVER: Family = Family {
    name: "vpc_probe_postgres_server_info",
    kind: Type::Gauge,
    help: "The PostgreSQL server behind a postgres check's port at its last run (address:port from inet_server_addr(), its role, and its WAL timeline when primary): one series per check; a new series marks a failover.",
    labels: &["check", "server", "role", "timeline"],
};

pub const ADDRESS: Family = Family {
    name: "vpc_probe_address_success",
    kind: Type::Gauge,
    help: "With addresses = \"all\": 1 if the check passed through this address at its last run, else 0; one series per address the name resolved to (bounded by the DNS answer, at most 16).",
    labels: &["check", "address"],
};

pub const FINDING: Family = Family {
    name: "vpc_probe_finding",
    kind: Type::Gauge,
    help: "What the AWS describes say about the check's path at its latest explained run (suites with an [aws] table): one series per finding, by code (e.g. sg_ingress_missing) and the object it names (e.g. sg-0abc); the fix is in the report.",
    labels: &["check", "code", "object"],
};

pub const WARNING: Family = Family {
    name: "vpc_probe_warning",
    kind: Type::Gauge,
    help: "1 while the check passes with a warning of this reason (cert_expiring: the presented chain expires within min_cert_validity), else 0.",
    labels: &["check", "reason"],
};

pub const CERT_EXPIRY: Family = Family {
    name: "probe_ssl_earliest_cert_expiry",
    kind: Type::Gauge,
    help: "The earliest not-after (seconds since the epoch) of the certificates the server presented at the check's latest run, as blackbox_exporter; present also when the handshake failed on an expired one.",
    labels: CHECK,
};

pub const CHAIN_EXPIRY: Family = Family {
    name: "probe_ssl_last_chain_expiry_timestamp_seconds",
    kind: Type::Gauge,
    help: "The earliest not-after (seconds since the epoch) of the presented chain at the latest run, as blackbox_exporter's (the one chain a server presents; the trusted root is not in it).",
    labels: CHECK,
};

pub const TLS_VERSION: Family = Family {
    name: "probe_tls_version_info",
    kind: Type::Gauge,
    help: "The TLS version of the check's latest completed handshake; always 1.",
    labels: &["check", "kind", "version"],
};

pub const IDLE_SURVIVED: Family = Family {
    name: "vpc_probe_idle_survived_seconds",
    kind: Type::Gauge,
    help: "Checks with `idle`: the longest span a held session survived at the latest run (0 when none did).",
    labels: CHECK,
};

pub const BUILD: Family = Family {
    name: "vpc_probe_build_info",
    kind: Type::Gauge,
    help: "The probe's version; always 1.",
    labels: &["version"],
};

pub const SUITE: Family = Family {
    name: "vpc_probe_suite_info",
    kind: Type::Gauge,
    help: "The suite being run and its number of checks in the checks label; always 1.",
    labels: &["suite", "checks"],
};

pub const TASK: Family = Family {
    name: "vpc_probe_task_info",
    kind: Type::Gauge,
    help: "Where the probe runs, from the ECS task metadata; always 1.",
    labels: &TaskIdentity::LABELS,
};

pub const RELOAD_OK: Family = Family {
    name: "vpc_probe_config_last_reload_successful",
    kind: Type::Gauge,
    help: "Whether the last suite reload (SIGHUP) succeeded; a refused suite leaves the previous one running.",
    labels: &[],
};

pub const RELOAD_AT: Family = Family {
    name: "vpc_probe_config_last_reload_success_timestamp_seconds",
    kind: Type::Gauge,
    help: "When the suite was last loaded successfully, in seconds since the epoch.",
    labels: &[],
};

pub const RELOADS: Family = Family {
    name: "vpc_probe_config_reloads_total",
    kind: Type::Counter,
    help: "Suite reloads since the probe started, by result.",
    labels: &["result"],
};

/// Every family, in exposition order; the reload families only in `serve`.
pub const ALL: &[Family] = &[
    SUCCESS,
    DURATION,
    DNS_LOOKUP,
    PHASE,
    REASON,
    LAST_RUN,
    RUNS,
    FAILURES,
    CYCLES,
    SERVER,
    ADDRESS,
    FINDING,
    WARNING,
    CERT_EXPIRY,
    CHAIN_EXPIRY,
    TLS_VERSION,
    IDLE_SURVIVED,
    BUILD,
    SUITE,
    TASK,
    RELOAD_OK,
    RELOAD_AT,
    RELOADS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_registers_once_under_its_own_name() {
        let registry = Registry::new();
        for family in ALL {
            let registered = match family.kind {
                Type::Gauge => family.gauge(&registry).map(drop),
                Type::Counter => family.counter(&registry).map(drop),
            };
            registered.unwrap_or_else(|err| panic!("{}: {err}", family.name));
        }
    }
}
