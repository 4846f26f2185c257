//! One JSON document per run, for pipelines and CloudWatch Logs Insights.

use crate::ecs::TaskIdentity;
use crate::outcome::Outcome;
use crate::runner::Report;
use serde_json::{json, Map, Value};

/// The run as one JSON value; `task` is where it ran, when ECS says so.
pub fn render(report: &Report, identity: Option<&TaskIdentity>) -> Value {
    json!({
        "suite": report.suite,
        "task": identity,
        "success": report.success(),
        "started": humantime::format_rfc3339_millis(report.started).to_string(),
        "duration_seconds": report.duration.as_secs_f64(),
        "checks": report.checks.iter().map(check).collect::<Vec<_>>(),
    })
}

fn check(outcome: &Outcome) -> Value {
    let failure = outcome.failure();
    let phases: Map<String, Value> = outcome
        .phases
        .iter()
        .map(|(phase, spent)| (phase.as_str().to_string(), json!(spent.as_secs_f64())))
        .collect();
    let mut value = json!({
        "name": outcome.name,
        "kind": outcome.kind,
        "target": outcome.target,
        "success": outcome.success(),
        "reason": failure.map(|f| f.reason.as_str()),
        "phase": failure.map(|f| f.phase.as_str()),
        "detail": failure.map(|f| f.detail.as_str()),
        "hint": failure.map(|f| f.reason.hint()),
        "duration_seconds": outcome.duration.as_secs_f64(),
        "phases": phases,
        "observed": outcome.observed,
    });
    if let Some(cycles) = &outcome.cycles {
        let spread = cycles.spread();
        value["cycles"] = json!({
            "ok": cycles.ok,
            "failed": cycles.failed,
            "seconds": cycles.seconds,
            "min_seconds": spread.map(|s| s.0),
            "median_seconds": spread.map(|s| s.1),
            "max_seconds": spread.map(|s| s.2),
        });
    }
    value
}
