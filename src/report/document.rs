//! The run as one typed document: what `--format json` prints, what JUnit,
//! CloudWatch EMF and `compare` are made from, and what the checked-in JSON
//! Schema (`schema/report.schema.json`) is generated from, so pipeline
//! authors can validate what they consume.

use crate::ecs::TaskIdentity;
use crate::outcome::{
    AddressResult, ChainFacts, Cycles, Evidence, IdleStep, Kind, Outcome, Phase, Reason, Warning,
};
use crate::runner::Report;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One run of a suite, from one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    /// The suite's name (`[suite] name`, else the file's stem).
    pub suite: String,
    /// Where the run happened, when the ECS task metadata endpoint answered.
    pub task: Option<TaskIdentity>,
    /// True when every check passed.
    pub success: bool,
    /// When the run started: RFC 3339, UTC, milliseconds.
    pub started: String,
    pub duration_seconds: f64,
    /// The checks in suite order.
    pub checks: Vec<CheckReport>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckReport {
    pub name: String,
    pub kind: Kind,
    /// What was probed, with any secret removed.
    pub target: String,
    pub success: bool,
    /// Why it failed; null when it passed.
    pub reason: Option<Reason>,
    /// The phase it failed in; null when it passed.
    pub phase: Option<Phase>,
    /// What the probe saw, scrubbed of secrets; null when it passed.
    pub detail: Option<String>,
    /// What to fix, from the reason's hint table for this kind; null when it passed.
    pub hint: Option<String>,
    pub duration_seconds: f64,
    /// Seconds spent in each phase (summed over PostgreSQL cycles).
    pub phases: BTreeMap<Phase, f64>,
    /// Facts seen on the way: addresses, peer, TLS version, role, ...
    pub observed: BTreeMap<String, String>,
    /// PostgreSQL only: the open / query / close cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<CycleReport>,
    /// With `addresses = "all"`: each address the name resolved to, with
    /// its own result (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddressReport>,
    /// A passing check's warning (a certificate expiring within
    /// `min_cert_validity`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Warning>,
    /// The TLS session and the certificate chain the server presented
    /// (TLS checks only; also when the handshake failed on the chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// With `idle`: each step, whether its session survived, and if not
    /// how it died and when (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle: Vec<IdleStep>,
    /// What the AWS describes say about the path (suites with an `[aws]`
    /// table): findings naming the object, its account and the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// A check's TLS block: the session's version and cipher suite when the
/// handshake completed, and the chain the server presented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TlsReport {
    /// e.g. TLSv1_3; absent when the handshake did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    pub chain: ChainFacts,
}

impl TlsReport {
    fn new(outcome: &Outcome) -> Option<TlsReport> {
        let chain = outcome.certificate.clone()?;
        let handshake = outcome.facts.tls.clone();
        let version = handshake.as_ref().map(|h| h.version.clone());
        let cipher = handshake.and_then(|h| h.cipher);
        Some(TlsReport {
            version,
            cipher,
            chain,
        })
    }
}

/// One address's result, when a check probes every address of its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddressReport {
    pub address: String,
    pub success: bool,
    pub reason: Option<Reason>,
    pub phase: Option<Phase>,
    pub detail: Option<String>,
    pub duration_seconds: f64,
    /// This address's idle steps (`idle` with `addresses = "all"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle: Vec<IdleStep>,
}

/// Timings of a PostgreSQL check's cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleReport {
    pub ok: u32,
    pub failed: u32,
    /// Seconds per cycle, in run order.
    pub seconds: Vec<f64>,
    pub min_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

impl RunReport {
    /// The document of a run; `task` is where it ran, when ECS says so.
    pub fn new(report: &Report, task: Option<&TaskIdentity>) -> RunReport {
        RunReport {
            suite: report.suite.clone(),
            task: task.cloned(),
            success: report.success(),
            started: humantime::format_rfc3339_millis(report.started).to_string(),
            duration_seconds: report.duration.as_secs_f64(),
            checks: report.checks.iter().map(CheckReport::new).collect(),
        }
    }

    /// `started` as a time; `None` if a foreign report mangled it.
    pub fn started_at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.started).ok()
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.success).count()
    }

    /// The first line of `text` that is a report (EMF lines may follow it).
    pub fn find_in(text: &str) -> Result<RunReport, String> {
        let mut last_error = "no JSON object in it".to_string();
        for line in text.lines().filter(|line| line.starts_with('{')) {
            match serde_json::from_str(line) {
                Ok(report) => return Ok(report),
                Err(err) => last_error = format!("not a vpc-probe report: {err}"),
            }
        }
        Err(last_error)
    }
}

impl CheckReport {
    fn new(outcome: &Outcome) -> CheckReport {
        let failure = outcome.failure();
        CheckReport {
            name: outcome.name.clone(),
            kind: outcome.kind,
            target: outcome.target.clone(),
            success: outcome.success(),
            reason: failure.map(|f| f.reason),
            phase: failure.map(|f| f.phase),
            detail: failure.map(|f| f.detail.clone()),
            hint: failure.map(|f| f.reason.hint_for(outcome.kind).to_string()),
            duration_seconds: outcome.duration.as_secs_f64(),
            phases: outcome
                .phases
                .iter()
                .map(|(phase, spent)| (*phase, spent.as_secs_f64()))
                .collect(),
            observed: outcome
                .observed
                .iter()
                .map(|(key, value)| (key.to_string(), value.clone()))
                .collect(),
            cycles: outcome.cycles.as_ref().map(CycleReport::new),
            addresses: outcome.addresses.iter().map(AddressReport::new).collect(),
            evidence: outcome.evidence.clone(),
            tls: TlsReport::new(outcome),
            warning: outcome.warning.clone(),
            idle: outcome.idle.clone(),
        }
    }
}

impl AddressReport {
    fn new(one: &AddressResult) -> AddressReport {
        let failure = one.result.as_ref().err();
        AddressReport {
            address: one.address.to_string(),
            success: failure.is_none(),
            reason: failure.map(|f| f.reason),
            phase: failure.map(|f| f.phase),
            detail: failure.map(|f| f.detail.clone()),
            duration_seconds: one.duration.as_secs_f64(),
            idle: one.idle.clone(),
        }
    }
}

impl CycleReport {
    fn new(cycles: &Cycles) -> CycleReport {
        let timings = cycles.min_median_max();
        CycleReport {
            ok: cycles.ok,
            failed: cycles.failed,
            seconds: cycles.seconds.clone(),
            min_seconds: timings.map(|s| s.0),
            median_seconds: timings.map(|s| s.1),
            max_seconds: timings.map(|s| s.2),
        }
    }
}

/// The JSON Schema of [`RunReport`], as checked in.
pub fn schema() -> String {
    pretty(schemars::schema_for!(RunReport))
}

/// The JSON Schema of a drill's report, as checked in.
pub fn drill_schema() -> String {
    pretty(schemars::schema_for!(crate::drill::report::DrillReport))
}

fn pretty(schema: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::sample::outcome;
    use std::time::Duration;

    /// A checked-in schema file and the function that generates it.
    type Schema = (&'static str, fn() -> String);

    /// The checked-in schemas, from the crate root, and what they must be.
    const SCHEMAS: [Schema; 2] = [
        (
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json"),
            schema,
        ),
        (
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/drill.schema.json"),
            drill_schema,
        ),
    ];

    #[test]
    fn the_checked_in_schemas_are_the_generated_ones() {
        for (file, generate) in SCHEMAS {
            if std::env::var_os("VPC_PROBE_WRITE_SCHEMA").is_some() {
                std::fs::write(file, generate()).expect("write the schema");
            }
            let checked_in = std::fs::read_to_string(file).unwrap_or_default();
            assert!(
                checked_in == generate(),
                "{file} is stale: run VPC_PROBE_WRITE_SCHEMA=1 cargo test --lib schema"
            );
        }
    }

    #[test]
    fn a_report_reads_back_as_written_and_emf_lines_are_skipped() {
        let report = Report {
            suite: "production".into(),
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            duration: Duration::from_millis(40),
            checks: vec![
                outcome("up", None),
                outcome("down", Some(Reason::ConnectTimeout)),
            ],
        };
        let document = RunReport::new(&report, None);
        let text = format!(
            "{}\n{{\"_aws\":{{}},\"Suite\":\"production\"}}\n",
            serde_json::to_string(&document).unwrap()
        );
        let read = RunReport::find_in(&text).unwrap();
        assert_eq!(read, document);
        assert_eq!(read.checks[1].reason, Some(Reason::ConnectTimeout));
        assert_eq!(read.started, "2023-11-14T22:13:20.123Z");
        assert_eq!(read.started_at(), Some(report.started));
        assert!(RunReport::find_in("{\"_aws\":{}}").is_err());
        assert!(RunReport::find_in("{\"hello\": 1}").is_err());
    }
}
