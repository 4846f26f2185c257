//! The Prometheus text exposition of a [`Ledger`]: blackbox_exporter's
//! names where the meaning is the same (`probe_success`,
//! `probe_duration_seconds`, `probe_dns_lookup_time_seconds`), and
//! `vpc_probe_*` for what it lacks. Every label value comes from the suite
//! (check names), a closed set (kind, phase, reason) or the task identity:
//! never an error text, never a secret.
//!
//! Each scrape builds a fresh registry from the ledger, so a scrape sees
//! one consistent state and checks removed by a reload leave no series.

use super::families as f;
use super::ledger::{Ledger, Tally};
use crate::ecs::TaskIdentity;
use crate::outcome::{Phase, WarningReason};
use prometheus::{Encoder, GaugeVec, IntCounterVec, Registry, TextEncoder};
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
            success: f::SUCCESS.gauge(registry)?,
            duration: f::DURATION.gauge(registry)?,
            dns_lookup: f::DNS_LOOKUP.gauge(registry)?,
            phase: f::PHASE.gauge(registry)?,
            reason: f::REASON.gauge(registry)?,
            last_run: f::LAST_RUN.gauge(registry)?,
            runs: f::RUNS.counter(registry)?,
            failures: f::FAILURES.counter(registry)?,
            cycles: f::CYCLES.counter(registry)?,
            server: f::SERVER.gauge(registry)?,
            address: f::ADDRESS.gauge(registry)?,
            finding: f::FINDING.gauge(registry)?,
            warning: f::WARNING.gauge(registry)?,
            cert_expiry: f::CERT_EXPIRY.gauge(registry)?,
            chain_expiry: f::CHAIN_EXPIRY.gauge(registry)?,
            tls_version: f::TLS_VERSION.gauge(registry)?,
            idle_survived: f::IDLE_SURVIVED.gauge(registry)?,
            build: f::BUILD.gauge(registry)?,
            suite: f::SUITE.gauge(registry)?,
            task: f::TASK.gauge(registry)?,
        })
    }

    /// Every series of one check's tally.
    fn record(&self, tally: &Tally) {
        self.record_run(tally);
        self.record_counts(tally);
        self.record_facts(tally);
    }

    /// The latest run: result, durations, reason.
    fn record_run(&self, tally: &Tally) {
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
    }

    /// The counters since the probe started.
    fn record_counts(&self, tally: &Tally) {
        let outcome = &tally.latest;
        let check = [outcome.name.as_str(), outcome.kind.as_str()];
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
        if outcome.cycles.is_some() {
            self.cycles
                .with_label_values(&[check[0], "ok"])
                .inc_by(tally.cycles_ok);
            self.cycles
                .with_label_values(&[check[0], "failed"])
                .inc_by(tally.cycles_failed);
        }
    }

    /// What the latest run saw: the server, each address, the chain, idle
    /// survival, warnings and findings.
    fn record_facts(&self, tally: &Tally) {
        let outcome = &tally.latest;
        let check = [outcome.name.as_str(), outcome.kind.as_str()];
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
        self.record_tls(tally);
        if !outcome.idle.is_empty() {
            let survived = outcome.idle.iter().filter(|step| step.survived);
            let longest = survived.map(|step| step.idle_seconds).fold(0.0, f64::max);
            self.idle_survived.with_label_values(&check).set(longest);
        }
        for finding in outcome.evidence.iter().flat_map(|e| &e.findings) {
            self.finding
                .with_label_values(&[check[0], finding.code.as_str(), &finding.object])
                .set(1.0);
        }
    }

    /// The presented chain's expiry and the handshake's version.
    fn record_tls(&self, tally: &Tally) {
        let outcome = &tally.latest;
        let check = [outcome.name.as_str(), outcome.kind.as_str()];
        if let Some(chain) = &outcome.certificate {
            self.cert_expiry
                .with_label_values(&check)
                .set(chain.earliest_not_after as f64);
            self.chain_expiry
                .with_label_values(&check)
                .set(chain.earliest_not_after as f64);
        }
        if let Some(handshake) = &outcome.facts.tls {
            self.tls_version
                .with_label_values(&[check[0], check[1], &handshake.version])
                .set(1.0);
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
        let successful = f::RELOAD_OK.gauge(registry)?;
        let last = f::RELOAD_AT.gauge(registry)?;
        let reloads = f::RELOADS.counter(registry)?;
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
    fn every_family_exposed_is_in_the_catalogue() {
        let mut ledger = Ledger::new(vec!["a".into(), "b".into()]);
        ledger.record(outcome("a", None), SystemTime::now());
        ledger.record(
            outcome("b", Some(Reason::ConnectTimeout)),
            SystemTime::now(),
        );
        let reload = ReloadStatus {
            last_successful: true,
            last_success: SystemTime::now(),
            succeeded: 1,
            failed: 0,
        };
        let text = render(&Exposition {
            suite: "s",
            ledger: &ledger,
            identity: None,
            reload: Some(reload),
        })
        .unwrap();
        let known: Vec<&str> = super::f::ALL.iter().map(|f| f.name).collect();
        let exposed: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        assert!(exposed.len() >= 10, "{text}");
        for name in exposed {
            assert!(known.contains(&name), "{name} is not in families::ALL");
        }
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
            let series = format!(
                "vpc_probe_finding{{check=\"haproxy\",code=\"{code}\",object=\"sg-1\"}} 1\n"
            );
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
