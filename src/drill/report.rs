//! The drill's report as one typed document (the JSON, its schema
//! `schema/drill.schema.json`, and what the text, HTML and JUnit renderers
//! read): primary before and after, the write gap, what happened to each
//! write and to the open session, the read-only port, the data read back,
//! latency, the budgets and a timeline. The figures are made in
//! figures.rs, the budgets in verdict.rs, the summary in text.rs.

use super::record::Identity;
use super::ExpectedChange;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One drill run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrillReport {
    pub drill: String,
    pub kind: String,
    pub success: bool,
    /// Why the drill could not measure at all (setup failed); null otherwise.
    pub error: Option<String>,
    /// Stopped by SIGTERM or SIGINT before it finished: what was measured
    /// until then, never a pass; a trigger still running was ended.
    #[serde(default)]
    pub interrupted: bool,
    pub run_id: String,
    pub started: String,
    pub duration_seconds: f64,
    pub expect: ExpectedChange,
    pub primary_before: Option<Primary>,
    pub primary_after: Option<Primary>,
    /// From the trigger's start (the baseline's end without a trigger) to
    /// the first write a new primary acknowledged.
    pub change_seen_after_seconds: Option<f64>,
    pub trigger: Option<Trigger>,
    /// The endpoint name's answers: before, after, and when they changed
    /// (absent for an IP literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsChange>,
    /// The longest time with no acknowledged write.
    pub write_gap_seconds: f64,
    /// When that gap began and ended, in seconds from the drill's start.
    pub write_gap: Option<Span>,
    pub writes: Writes,
    /// Failed and uncertain writes by reason, with what a failover shows
    /// by SQLSTATE: read_only_transaction (25006), admin_shutdown (57P01),
    /// cannot_connect_now (57P03).
    pub failures_by_reason: BTreeMap<String, u64>,
    /// The first detail seen for each of those, scrubbed of secrets.
    pub failure_examples: BTreeMap<String, String>,
    /// Writes a demoted primary refused as read-only.
    pub misrouted_writes: u64,
    pub open_session: OpenSession,
    pub read_only: Option<ReadOnly>,
    /// Null when the read-back did not answer.
    pub data: Option<Data>,
    pub latency: Latency,
    pub budgets: Vec<Budget>,
    pub timeline: Vec<Event>,
    /// Every write attempt, for the timeline drawing.
    pub attempts: Vec<AttemptRow>,
    /// Every read on the read-only port.
    pub reads: Vec<ReadRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Primary {
    /// `address:port` as the server reports it (PostgreSQL's
    /// `inet_server_addr()`), or the address a Redis connection reached.
    pub server: String,
    /// PostgreSQL's WAL timeline (8 hex digits, one more at each
    /// promotion); Redis's `replid` (a new one at each promotion).
    pub timeline: Option<String>,
}

/// What the endpoint's name answered through the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DnsChange {
    pub name: String,
    /// The first answer.
    pub before: Vec<String>,
    /// The last answer.
    pub after: Vec<String>,
    /// From the trigger's start (the baseline's end without a trigger) to
    /// the first answer that differed; null when it never changed.
    pub changed_after_seconds: Option<f64>,
}

/// The server taking writes when the drill began and when it ended.
pub struct Ends {
    pub before: Identity,
    /// Asked once more after the settle time; `None` when nobody answered.
    pub after: Option<Identity>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Trigger {
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub started_after_seconds: f64,
    pub finished_after_seconds: f64,
    /// The last lines it printed, scrubbed of secrets.
    pub output: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    pub from_seconds: f64,
    pub to_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Writes {
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    pub uncertain: u64,
}

/// What happened to one write, as the report spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum WriteFate {
    /// Acknowledged by a primary.
    Ok,
    /// Refused by a server in recovery: HAProxy sent it to the wrong node.
    Misrouted,
    /// Not acknowledged, and known not to have been written.
    Failed,
    /// Sent, then the reply was lost: it may or may not have been written.
    Uncertain,
}

/// What became of the session opened before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum SessionEnded {
    /// Still answering at the end.
    Survived,
    /// Ended by the server or a proxy.
    Cut,
    /// Stopped answering without being ended.
    Hung,
    /// Could not be opened in the first place.
    NeverOpened,
}

impl WriteFate {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl SessionEnded {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpenSession {
    pub fate: SessionEnded,
    pub after_seconds: Option<f64>,
    /// How it was cut, when it was.
    pub how: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadOnly {
    pub attempted: u64,
    pub ok: u64,
    pub longest_gap_seconds: f64,
    /// Answers from a server that was not in recovery.
    pub from_primary: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Data {
    pub acknowledged: u64,
    pub present: u64,
    /// Acknowledged, and not in the table afterwards.
    pub lost: u64,
    pub uncertain_present: u64,
    pub uncertain_missing: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    pub before: Option<Spread>,
    pub after: Option<Spread>,
}

/// Acknowledged writes' round trips (connect, authenticate, insert).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Spread {
    pub count: u64,
    pub median_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Budget {
    pub name: String,
    pub limit: String,
    pub value: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub at_seconds: f64,
    pub event: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRow {
    pub seq: u64,
    pub at_seconds: f64,
    pub done_seconds: f64,
    pub fate: WriteFate,
    /// The acknowledging server, or the failure's reason.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadRow {
    pub at_seconds: f64,
    /// replica | primary | the failure's reason
    pub answer: String,
}

pub(super) fn secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Primary {
    pub(super) fn from(identity: &Identity) -> Primary {
        Primary {
            server: identity.server.clone(),
            timeline: identity.timeline.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn fates_are_spelled_in_json_as_in_text() {
        for fate in WriteFate::iter() {
            assert_eq!(serde_json::to_value(fate).unwrap(), fate.as_str());
        }
        for ended in SessionEnded::iter() {
            assert_eq!(serde_json::to_value(ended).unwrap(), ended.as_str());
        }
        assert_eq!(SessionEnded::NeverOpened.as_str(), "never_opened");
    }
}
