//! The human report: a progress line per check as it finishes, then a
//! table, then each failure's detail and the hint naming what to fix.

use crate::ecs::TaskIdentity;
use crate::outcome::Outcome;
use crate::runner::Report;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use std::fmt::Write;
use std::time::Duration;

/// One line, printed the moment a check finishes.
pub fn progress_line(outcome: &Outcome) -> String {
    match outcome.failure() {
        None => format!(
            "PASS {} ({}) {}",
            outcome.name,
            outcome.kind,
            seconds(outcome.duration)
        ),
        Some(failure) => format!(
            "FAIL {} ({}) {} in {} after {}",
            outcome.name,
            outcome.kind,
            failure.reason,
            failure.phase.as_str(),
            seconds(outcome.duration)
        ),
    }
}

/// The full report: table, failures with hints, summary, and where it ran.
pub fn render(report: &Report, identity: Option<&TaskIdentity>) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["check", "kind", "target", "result", "reason", "time"]);
    for outcome in &report.checks {
        let (result, reason) = match outcome.failure() {
            None => ("pass", "-".to_string()),
            Some(failure) => ("FAIL", failure.reason.to_string()),
        };
        table.add_row([
            outcome.name.clone(),
            outcome.kind.to_string(),
            outcome.target.clone(),
            result.to_string(),
            reason,
            seconds(outcome.duration),
        ]);
    }
    let mut out = format!("{table}\n");
    for outcome in &report.checks {
        if let Some(failure) = outcome.failure() {
            let _ = writeln!(
                out,
                "\n{} failed: {} in {}",
                outcome.name,
                failure.reason,
                failure.phase.as_str()
            );
            let _ = writeln!(out, "  detail: {}", failure.detail);
            let _ = writeln!(out, "  hint:   {}", failure.reason.hint());
        }
    }
    let passed = report.checks.len() - report.failed();
    let _ = writeln!(
        out,
        "\nsuite {}: {passed} passed, {} failed in {}",
        report.suite,
        report.failed(),
        seconds(report.duration)
    );
    if let Some(identity) = identity {
        let place: Vec<String> = identity
            .labels()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(out, "ran in {}", place.join(" "));
    }
    out
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}
