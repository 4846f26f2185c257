//! The human report: a progress line per check as it finishes, then a
//! table, then each failure's detail and the hint naming what to fix.

use super::document::RunReport;
use crate::outcome::Outcome;
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
pub fn render(report: &RunReport) -> String {
    let mut out = format!("{}\n", table(report));
    failures(&mut out, report);
    warnings(&mut out, report);
    for check in report.checks.iter().filter(|c| c.evidence.is_some()) {
        let _ = write!(out, "\n{}: what AWS says\n", check.name);
        out.push_str(&evidence_lines(check.evidence.as_ref().expect("filtered")));
    }
    for check in report.checks.iter().filter(|c| !c.idle.is_empty()) {
        let _ = writeln!(out, "\n{}: sessions held idle", check.name);
        for step in &check.idle {
            let _ = writeln!(out, "  {}", step.summary());
        }
    }
    addresses(&mut out, report);
    summary(&mut out, report);
    out
}

/// One row per check: result, reason, time.
fn table(report: &RunReport) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["check", "kind", "target", "result", "reason", "time"]);
    for check in &report.checks {
        let (result, reason) = match check.reason {
            _ if check.success && check.warning.is_some() => ("WARN", "-".to_string()),
            _ if check.success => ("pass", "-".to_string()),
            Some(reason) => ("FAIL", reason.to_string()),
            None => ("FAIL", "-".to_string()),
        };
        table.add_row([
            check.name.clone(),
            check.kind.to_string(),
            check.target.clone(),
            result.to_string(),
            reason,
            seconds_f64(check.duration_seconds),
        ]);
    }
    table
}

/// Each failure's reason, phase, detail and hint.
fn failures(out: &mut String, report: &RunReport) {
    for check in report.checks.iter().filter(|c| !c.success) {
        let reason = check.reason.map_or("failed", |r| r.as_str());
        let phase = check.phase.map_or("-", |p| p.as_str());
        let _ = writeln!(out, "\n{} failed: {reason} in {phase}", check.name);
        let _ = writeln!(out, "  detail: {}", check.detail.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "  hint:   {}", check.hint.as_deref().unwrap_or("-"));
    }
}

/// Each passing check's warning.
fn warnings(out: &mut String, report: &RunReport) {
    for check in report.checks.iter().filter(|c| c.success) {
        if let Some(warning) = &check.warning {
            let reason = warning.reason.as_str();
            let _ = writeln!(out, "\n{} passes with a warning: {reason}", check.name);
            let _ = writeln!(out, "  detail: {}", warning.detail);
        }
    }
}

/// With `addresses = "all"`: a line per address.
fn addresses(out: &mut String, report: &RunReport) {
    for check in report.checks.iter().filter(|c| !c.addresses.is_empty()) {
        let _ = writeln!(out, "\n{}: each address", check.name);
        for one in &check.addresses {
            let result = match one.reason {
                _ if one.success => "pass".to_string(),
                Some(reason) => format!("FAIL {reason}"),
                None => "FAIL".to_string(),
            };
            let time = seconds_f64(one.duration_seconds);
            let _ = writeln!(out, "  {:<40} {result} {time}", one.address);
        }
    }
}

/// The totals and where the run happened.
fn summary(out: &mut String, report: &RunReport) {
    let failed = report.failed();
    let _ = writeln!(
        out,
        "\nsuite {}: {} passed, {failed} failed in {}",
        report.suite,
        report.checks.len() - failed,
        seconds_f64(report.duration_seconds)
    );
    if let Some(identity) = &report.task {
        let place: Vec<String> = identity
            .labels()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(out, "ran in {}", place.join(" "));
    }
}

/// Findings, one per line with its fix below, then the chain and any skip.
pub fn evidence_lines(evidence: &crate::outcome::Evidence) -> String {
    let mut out = String::new();
    for finding in &evidence.findings {
        let _ = writeln!(out, "  - {finding}");
        if let Some(fix) = &finding.fix {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    if !evidence.chain.is_empty() {
        let _ = writeln!(out, "  path: {}", evidence.chain.join(" -> "));
    }
    if let Some(why) = &evidence.skipped {
        let _ = writeln!(out, "  aws: {why}");
    }
    out
}

fn seconds_f64(value: f64) -> String {
    format!("{value:.3}s")
}

fn seconds(duration: Duration) -> String {
    seconds_f64(duration.as_secs_f64())
}
