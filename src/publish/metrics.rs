//! The Prometheus text exposition of a [`Ledger`]: blackbox_exporter's
//! names where the meaning is the same (`probe_success`,
//! `probe_duration_seconds`, `probe_dns_lookup_time_seconds`), and
//! `vpc_probe_*` for what it lacks. Every label value comes from the suite
//! (check names), a closed set (kind, phase, reason) or the task identity:
//! never an error text, never a secret.
//!
//! Each scrape builds a fresh registry from the ledger, so a scrape sees
//! one consistent state and checks removed by a reload leave no series.

use super::ledger::{Ledger, Tally};
use crate::ecs::TaskIdentity;
use crate::outcome::{Phase, WarningReason};
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::time::{SystemTime, UNIX_EPOCH};
use strum::IntoEnumIterator;

/// The content type of what [`render`] writes (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The label value of `reason` and `phase` while a check passes (metrics and EMF).
pub const NONE: &str = "none";

/// The state of suite reloads (`serve` only).
#[derive(Debug, Clone, Copy)]
pub struct ReloadStatus {
    pub last_successful: bool,
    pub last_success: SystemTime,
    pub succeeded: u64,
    pub failed: u64,
}

/// Everything one exposition shows.
pub struct Exposition<'a> {
    pub suite: &'a str,
    pub ledger: &'a Ledger,
    pub identity: Option<&'a TaskIdentity>,
    pub reload: Option<ReloadStatus>,
}

/// Render the exposition as Prometheus text.
pub fn render(exposition: &Exposition) -> anyhow::Result<String> {
    let registry = Registry::new();
    let families = Families::register(&registry)?;
    for tally in exposition.ledger.tallies() {
        families.record(tally);
    }
    families.info(exposition);
    if let Some(reload) = exposition.reload {
        families.reload(&registry, reload)?;
    }
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    Ok(String::from_utf8(buffer)?)
}

const CHECK: &[&str] = &["check", "kind"];

struct Families {
    success: GaugeVec,
    duration: GaugeVec,
    dns_lookup: GaugeVec,
    phase: GaugeVec,
    reason: GaugeVec,
    last_run: GaugeVec,
    runs: IntCounterVec,
    failures: IntCounterVec,
    cycles: IntCounterVec,
    server: GaugeVec,
    address: GaugeVec,
    finding: GaugeVec,
    warning: GaugeVec,
    cert_expiry: GaugeVec,
    chain_expiry: GaugeVec,
    tls_version: GaugeVec,
    idle_survived: GaugeVec,
    build: GaugeVec,
    suite: GaugeVec,
    task: GaugeVec,
}

impl Families {
    /// Register every family of a scrape in `registry`.
    fn register(registry: &Registry) -> prometheus::Result<Families> {
        Ok(Families {
            success: gauge(registry, "probe_success", HELP_SUCCESS, CHECK)?,
            duration: gauge(registry, "probe_duration_seconds", HELP_DURATION, CHECK)?,
            dns_lookup: gauge(
                registry,
                "probe_dns_lookup_time_seconds",
                HELP_DNS_LOOKUP,
                CHECK,
            )?,
            phase: gauge(
                registry,
                "vpc_probe_phase_duration_seconds",
                HELP_PHASE,
                &["check", "kind", "phase"],
            )?,
            reason: gauge(
                registry,
                "vpc_probe_failure_reason",
                HELP_REASON,
                &["check", "kind", "reason", "phase"],
            )?,
            last_run: gauge(
                registry,
                "vpc_probe_last_run_timestamp_seconds",
                HELP_LAST_RUN,
                CHECK,
            )?,
            runs: counter(
                registry,
                "vpc_probe_check_runs_total",
                HELP_RUNS,
                &["check", "kind", "result"],
            )?,
            failures: counter(
                registry,
                "vpc_probe_check_failures_total",
                HELP_FAILURES,
                &["check", "kind", "reason"],
            )?,
            cycles: counter(
                registry,
                "vpc_probe_postgres_cycles_total",
                HELP_CYCLES,
                &["check", "result"],
            )?,
            server: gauge(
                registry,
                "vpc_probe_postgres_server_info",
                HELP_SERVER,
                &["check", "server", "role", "timeline"],
            )?,
            address: gauge(
                registry,
                "vpc_probe_address_success",
                HELP_ADDRESS,
                &["check", "address"],
            )?,
            finding: gauge(
                registry,
                "vpc_probe_finding",
                HELP_FINDING,
                &["check", "code"],
            )?,
            warning: gauge(
                registry,
                "vpc_probe_warning",
                HELP_WARNING,
                &["check", "reason"],
            )?,
            cert_expiry: gauge(
                registry,
                "probe_ssl_earliest_cert_expiry",
                HELP_CERT_EXPIRY,
                CHECK,
            )?,
            chain_expiry: gauge(
                registry,
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                HELP_CHAIN_EXPIRY,
                CHECK,
            )?,
            tls_version: gauge(
                registry,
                "probe_tls_version_info",
                HELP_TLS_VERSION,
                &["check", "kind", "version"],
            )?,
            idle_survived: gauge(
                registry,
                "vpc_probe_idle_survived_seconds",
                HELP_IDLE_SURVIVED,
                CHECK,
            )?,
            build: gauge(registry, "vpc_probe_build_info", HELP_BUILD, &["version"])?,
            suite: gauge(
                registry,
                "vpc_probe_suite_info",
                HELP_SUITE,
                &["suite", "checks"],
            )?,
            task: gauge(
                registry,
                "vpc_probe_task_info",
                HELP_TASK,
                &TaskIdentity::label_names(),
            )?,
        })
    }

    fn record(&self, tally: &Tally) {
        let outcome = &tally.latest;
        let check = [outcome.name.as_str(), outcome.kind.as_str()];
        self.success
            .with_label_values(&check)
            .set(f64::from(u8::from(outcome.success())));
        self.duration
            .with_label_values(&check)
            .set(outcome.duration.as_secs_f64());
        let dns = outcome
            .phases
            .get(&Phase::Resolve)
            .map_or(0.0, |d| d.as_secs_f64());
        self.dns_lookup.with_label_values(&check).set(dns);
        for (phase, spent) in &outcome.phases {
            self.phase
                .with_label_values(&[check[0], check[1], phase.as_str()])
                .set(spent.as_secs_f64());
        }
        let (reason, phase) = outcome
            .failure()
            .map_or((NONE, NONE), |f| (f.reason.as_str(), f.phase.as_str()));
        self.reason
            .with_label_values(&[check[0], check[1], reason, phase])
            .set(1.0);
        self.last_run
            .with_label_values(&check)
            .set(epoch_seconds(tally.finished));
        self.runs
            .with_label_values(&[check[0], check[1], "success"])
            .inc_by(tally.successes);
        self.runs
            .with_label_values(&[check[0], check[1], "failure"])
            .inc_by(tally.failures());
        for (reason, count) in &tally.failures_by_reason {
            self.failures
                .with_label_values(&[check[0], check[1], reason.as_str()])
                .inc_by(*count);
        }
        if let Some(identity) = &outcome.server {
            let timeline = identity.timeline.as_deref().unwrap_or("");
            self.server
                .with_label_values(&[check[0], &identity.server, &identity.role, timeline])
                .set(1.0);
        }
        for one in &outcome.addresses {
            self.address
                .with_label_values(&[check[0], &one.address.to_string()])
                .set(f64::from(u8::from(one.result.is_ok())));
        }
        for reason in WarningReason::iter() {
            let on = outcome.warning.as_ref().is_some_and(|w| w.reason == reason);
            self.warning
                .with_label_values(&[check[0], reason.as_str()])
                .set(f64::from(u8::from(on)));
        }
        if let Some(chain) = &outcome.certificate {
            self.cert_expiry
                .with_label_values(&check)
                .set(chain.earliest_not_after as f64);
            self.chain_expiry
                .with_label_values(&check)
                .set(chain.earliest_not_after as f64);
        }
        if let Some(version) = outcome.observed.get("tls").filter(|v| v.starts_with("TLS")) {
            self.tls_version
                .with_label_values(&[check[0], check[1], version])
                .set(1.0);
        }
        if !outcome.idle.is_empty() {
            let survived = outcome.idle.iter().filter(|step| step.survived);
            let longest = survived.map(|step| step.idle_seconds).fold(0.0, f64::max);
            self.idle_survived.with_label_values(&check).set(longest);
        }
        for finding in outcome.evidence.iter().flat_map(|e| &e.findings) {
            self.finding
                .with_label_values(&[check[0], finding.code.as_str()])
                .set(1.0);
        }
        if outcome.cycles.is_some() {
            self.cycles
                .with_label_values(&[check[0], "ok"])
                .inc_by(tally.cycles_ok);
            self.cycles
                .with_label_values(&[check[0], "failed"])
                .inc_by(tally.cycles_failed);
        }
    }

    fn info(&self, exposition: &Exposition) {
        self.build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        let checks = exposition.ledger.check_count().to_string();
        self.suite
            .with_label_values(&[exposition.suite, checks.as_str()])
            .set(1.0);
        if let Some(identity) = exposition.identity {
            let values = identity
                .fields()
                .map(|(_, value)| value.unwrap_or_default());
            self.task.with_label_values(&values).set(1.0);
        }
    }

    fn reload(&self, registry: &Registry, reload: ReloadStatus) -> prometheus::Result<()> {
        let successful = gauge(
            registry,
            "vpc_probe_config_last_reload_successful",
            HELP_RELOAD_OK,
            &[],
        )?;
        let last = gauge(
            registry,
            "vpc_probe_config_last_reload_success_timestamp_seconds",
            HELP_RELOAD_AT,
            &[],
        )?;
        let reloads = counter(
            registry,
            "vpc_probe_config_reloads_total",
            HELP_RELOADS,
            &["result"],
        )?;
        successful
            .with_label_values::<&str>(&[])
            .set(f64::from(u8::from(reload.last_successful)));
        last.with_label_values::<&str>(&[])
            .set(epoch_seconds(reload.last_success));
        reloads
            .with_label_values(&["success"])
            .inc_by(reload.succeeded);
        reloads
            .with_label_values(&["failure"])
            .inc_by(reload.failed);
        Ok(())
    }
}

/// A gauge family, registered in `registry`.
fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    let family = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

/// A counter family, registered in `registry`.
fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let family = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

// The HELP text of each family.
const HELP_SUCCESS: &str = "Whether the check passed (1) or failed (0) on its latest run.";
const HELP_DURATION: &str = "How long the check's latest run took.";
const HELP_DNS_LOOKUP: &str = "Time the latest run spent resolving the target's name (microseconds for an IP literal, which needs no DNS).";
const HELP_PHASE: &str =
    "Time spent in each phase of the check's latest run (summed over PostgreSQL cycles).";
const HELP_REASON: &str =
    "1 for the reason and phase of the check's latest failure; reason=\"none\" while it passes.";
const HELP_LAST_RUN: &str = "When the check's latest run finished, in seconds since the epoch.";
const HELP_RUNS: &str = "Runs of the check since the probe started, by result.";
const HELP_FAILURES: &str = "Failed runs of the check since the probe started, by reason.";
const HELP_SERVER: &str = "The PostgreSQL server behind a postgres check's port at its last run (address:port from inet_server_addr(), its role, and its WAL timeline when primary): one series per check; a new series marks a failover.";
const HELP_ADDRESS: &str = "With addresses = \"all\": 1 if the check passed through this address at its last run, else 0; one series per address the name resolved to (bounded by the DNS answer, at most 16).";
const HELP_CYCLES: &str =
    "PostgreSQL open/auth/query/close cycles since the probe started, by result.";
const HELP_WARNING: &str = "1 while the check passes with a warning of this reason (cert_expiring: the presented chain expires within min_cert_validity), else 0.";
const HELP_IDLE_SURVIVED: &str = "Checks with `idle`: the longest span a held session survived at the latest run (0 when none did).";
const HELP_CERT_EXPIRY: &str = "The earliest not-after (seconds since the epoch) of the certificates the server presented at the check's latest run, as blackbox_exporter; present also when the handshake failed on an expired one.";
const HELP_CHAIN_EXPIRY: &str = "The earliest not-after (seconds since the epoch) of the presented chain at the latest run, as blackbox_exporter's (the one chain a server presents; the trusted root is not in it).";
const HELP_TLS_VERSION: &str =
    "The TLS version of the check's latest completed handshake; always 1.";
const HELP_FINDING: &str = "What the AWS describes say about the check's path at its latest explained run (suites with an [aws] table): one series per finding code, e.g. sg_ingress_missing; the object and the fix are in the report.";
const HELP_BUILD: &str = "The probe's version; always 1.";
const HELP_SUITE: &str =
    "The suite being run and its number of checks in the checks label; always 1.";
const HELP_TASK: &str = "Where the probe runs, from the ECS task metadata; always 1.";
const HELP_RELOAD_OK: &str = "Whether the last suite reload (SIGHUP) succeeded; a refused suite leaves the previous one running.";
const HELP_RELOAD_AT: &str =
    "When the suite was last loaded successfully, in seconds since the epoch.";
const HELP_RELOADS: &str = "Suite reloads since the probe started, by result.";

fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::sample::outcome;
    use crate::outcome::Reason;

    fn exposition_of(ledger: &Ledger, identity: Option<&TaskIdentity>) -> String {
        render(&Exposition {
            suite: "local",
            ledger,
            identity,
            reload: None,
        })
        .unwrap()
    }

    #[test]
    fn a_failing_check_shows_its_reason_and_a_passing_one_none() {
        let mut ledger = Ledger::new(vec!["up".into(), "down".into()]);
        ledger.record(outcome("up", None), SystemTime::now());
        ledger.record(
            outcome("down", Some(Reason::ConnectTimeout)),
            SystemTime::now(),
        );
        let text = exposition_of(&ledger, None);
        assert!(
            text.contains("probe_success{check=\"up\",kind=\"tcp\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("probe_success{check=\"down\",kind=\"tcp\"} 0\n"));
        assert!(text.contains("vpc_probe_failure_reason{check=\"down\",kind=\"tcp\",phase=\"connect\",reason=\"connect_timeout\"} 1\n"));
        assert!(text.contains("vpc_probe_failure_reason{check=\"up\",kind=\"tcp\",phase=\"none\",reason=\"none\"} 1\n"));
        assert!(text.contains("vpc_probe_check_failures_total{check=\"down\",kind=\"tcp\",reason=\"connect_timeout\"} 1\n"));
        assert!(text.contains("# TYPE vpc_probe_check_runs_total counter\n"));
        assert!(!text.contains("vpc_probe_task_info"));
        assert!(!text.contains("vpc_probe_config_"));
    }

    #[test]
    fn each_address_of_an_all_addresses_check_is_a_series() {
        use crate::outcome::{AddressResult, Failure, Fault, Phase};
        let mut outcome = outcome("haproxy-all", Some(Reason::ConnectTimeout));
        let timeout = Failure::new(Phase::Connect, Fault::new(Reason::ConnectTimeout, "x"));
        for (address, result) in [("10.0.1.12", Ok(())), ("10.0.1.13", Err(timeout))] {
            outcome.addresses.push(AddressResult {
                address: address.parse().unwrap(),
                result,
                duration: std::time::Duration::from_millis(3),
                idle: Vec::new(),
            });
        }
        let mut ledger = Ledger::new(vec!["haproxy-all".into()]);
        ledger.record(outcome, SystemTime::now());
        let text = exposition_of(&ledger, None);
        for (address, value) in [("10.0.1.12", 1), ("10.0.1.13", 0)] {
            let series = format!(
                "vpc_probe_address_success{{address=\"{address}\",check=\"haproxy-all\"}} {value}\n"
            );
            assert!(text.contains(&series), "{text}");
        }
    }

    #[test]
    fn each_finding_of_an_explained_check_is_a_series() {
        use crate::outcome::{Code, Evidence, Finding};
        let mut outcome = outcome("haproxy", Some(Reason::ConnectTimeout));
        let finding = |code| Finding {
            code,
            object: "sg-1".into(),
            account: Some("222222222222".into()),
            explanation: "x".into(),
            fix: None,
        };
        outcome.evidence = Some(Evidence {
            findings: vec![
                finding(Code::SgIngressMissing),
                finding(Code::NaclReturnBlocked),
            ],
            ..Evidence::default()
        });
        let mut ledger = Ledger::new(vec!["haproxy".into()]);
        ledger.record(outcome, SystemTime::now());
        let text = exposition_of(&ledger, None);
        for code in ["sg_ingress_missing", "nacl_return_blocked"] {
            let series = format!("vpc_probe_finding{{check=\"haproxy\",code=\"{code}\"}} 1\n");
            assert!(text.contains(&series), "{text}");
        }
    }

    #[test]
    fn check_names_are_escaped_as_label_values() {
        let mut ledger = Ledger::new(vec!["a\"b\\c".into()]);
        ledger.record(outcome("a\"b\\c", None), SystemTime::now());
        let text = exposition_of(&ledger, None);
        assert!(
            text.contains(r#"probe_success{check="a\"b\\c",kind="tcp"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn the_server_behind_a_postgres_check_is_one_info_series() {
        let mut outcome = outcome("postgres-rw", None);
        outcome.server = Some(crate::outcome::ServerIdentity {
            server: "10.0.1.21:5432".into(),
            role: "primary".into(),
            timeline: Some("00000003".into()),
        });
        let mut ledger = Ledger::new(vec!["postgres-rw".into()]);
        ledger.record(outcome, SystemTime::now());
        let text = exposition_of(&ledger, None);
        assert!(
            text.contains(r#"vpc_probe_postgres_server_info{check="postgres-rw",role="primary",server="10.0.1.21:5432",timeline="00000003"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn task_identity_is_one_info_series() {
        let identity = TaskIdentity {
            availability_zone: Some("us-west-2a".into()),
            subnet: Some("10.20.1.0/24".into()),
            ..TaskIdentity::default()
        };
        let text = exposition_of(&Ledger::default(), Some(&identity));
        assert!(text.contains("availability_zone=\"us-west-2a\""), "{text}");
        assert_eq!(text.matches("vpc_probe_task_info{").count(), 1);
    }
}
