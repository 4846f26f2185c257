//! The gate's report for a person and for CI: the check × subnet matrix
//! (each cell pass or the reason), each failure's detail and hint with the
//! task's own AWS evidence, each task without a report with ECS's words,
//! the fleet diagnosis; and JUnit, one testsuite per subnet.

use super::report::{GateReport, SubnetResult};
use super::verdict::cell;
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;

/// A subnet's column heading: its id and availability zone.
fn heading(subnet: &SubnetResult) -> String {
    match &subnet.availability_zone {
        Some(zone) => format!("{}\n{zone}", subnet.subnet),
        None => subnet.subnet.clone(),
    }
}

/// The whole text report.
pub fn render(report: &GateReport) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    let mut header = vec!["check".to_string()];
    header.extend(report.subnets.iter().map(heading));
    table.set_header(header);
    for check in &report.checks {
        let mut row = vec![check.clone()];
        row.extend(report.subnets.iter().map(|s| cell(s, check)));
        table.add_row(row);
    }
    if report.checks.is_empty() {
        let mut row = vec!["(no report)".to_string()];
        row.extend(report.subnets.iter().map(|_| "no report".to_string()));
        table.add_row(row);
    }
    let verdict = if report.success { "PASS" } else { "FAIL" };
    let mut out = format!(
        "gate {} on cluster {} ({}): {verdict}\n{table}\n",
        report.task_definition, report.cluster, report.started_by
    );
    for subnet in &report.subnets {
        write_subnet(&mut out, subnet);
    }
    write_static(&mut out, report);
    if !report.diagnosis.is_empty() {
        out += "\ndiagnosis:\n";
        for diagnosis in &report.diagnosis {
            let _ = writeln!(out, "  - {}", diagnosis.says);
        }
    }
    let _ = writeln!(
        out,
        "\n{} subnets, {} passed; {:.1} s",
        report.subnets.len(),
        report
            .subnets
            .iter()
            .filter(|s| s.report.as_ref().is_some_and(|r| r.success))
            .count(),
        report.duration_seconds
    );
    out
}

/// What the describes said of each subnet before any task ran: the paths
/// that are not as they must be, with the object deciding each.
fn write_static(out: &mut String, report: &GateReport) {
    if report.static_pass.is_empty() {
        return;
    }
    out.push_str("\nbefore any task ran, the describes said:\n");
    for subnet in &report.static_pass {
        let Some(paths) = &subnet.paths else {
            let why = subnet.error.as_deref().unwrap_or("not read");
            let _ = writeln!(out, "  {}: not judged: {why}", subnet.subnet);
            continue;
        };
        let failing: Vec<_> = paths.rows.iter().filter(|r| !r.verdict.passes()).collect();
        if failing.is_empty() {
            let _ = writeln!(out, "  {}: every path as it must be", subnet.subnet);
        }
        for row in failing {
            let verdict: &'static str = row.verdict.into();
            let objects: Vec<String> = row
                .evidence
                .findings
                .iter()
                .map(|f| format!("{} {}", f.code.as_str(), f.object))
                .collect();
            let _ = writeln!(
                out,
                "  {}: {} {verdict} ({})",
                subnet.subnet,
                row.check,
                objects.join(", ")
            );
        }
    }
}

/// A subnet's failures with their detail, hint and evidence, or why it
/// gave no report.
fn write_subnet(out: &mut String, subnet: &SubnetResult) {
    if let Some(missing) = &subnet.no_report {
        let _ = writeln!(
            out,
            "\n{}: no report ({})",
            subnet.subnet,
            missing.why.as_str()
        );
        for (what, value) in [
            ("stopCode", missing.stop_code.clone()),
            ("stoppedReason", missing.stopped_reason.clone()),
            ("exit code", missing.exit_code.map(|c| c.to_string())),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "  {what}: {value}");
            }
        }
        let _ = writeln!(out, "  hint: {}", missing.hint);
        for line in &missing.log_tail {
            let _ = writeln!(out, "  | {line}");
        }
        return;
    }
    let Some(report) = &subnet.report else { return };
    for check in report.checks.iter().filter(|c| !c.success) {
        let reason = check.reason.map_or("fail", |r| r.as_str());
        let _ = writeln!(out, "\n{} in {}: {reason}", check.name, subnet.subnet);
        if let Some(detail) = &check.detail {
            let _ = writeln!(out, "  {detail}");
        }
        if let Some(hint) = &check.hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
        if let Some(evidence) = &check.evidence {
            let _ = write!(out, "{}", crate::report::text::evidence_lines(evidence));
        }
    }
}

/// JUnit: one testsuite per subnet, one testcase per check (a subnet
/// without a report is one failing testcase saying why).
pub fn junit(report: &GateReport) -> anyhow::Result<String> {
    let mut junit = Junit::new("vpc-probe gate");
    for subnet in &report.subnets {
        let mut suite = TestSuite::new(subnet.subnet.as_str());
        match (&subnet.report, &subnet.no_report) {
            (Some(run), _) => {
                for check in &run.checks {
                    let status = match check.success {
                        true => TestCaseStatus::success(),
                        false => {
                            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                            status.set_message(cell(subnet, &check.name));
                            status.set_description(format!(
                                "{}\nhint: {}",
                                check.detail.clone().unwrap_or_default(),
                                check.hint.clone().unwrap_or_default()
                            ));
                            status
                        }
                    };
                    let mut case = TestCase::new(check.name.as_str(), status);
                    case.set_classname(format!("gate.{}", subnet.subnet));
                    suite.add_test_case(case);
                }
            }
            (None, missing) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                if let Some(missing) = missing {
                    status.set_message(format!("no report: {}", missing.why.as_str()));
                    status.set_description(format!(
                        "{}\nhint: {}",
                        missing.stopped_reason.clone().unwrap_or_default(),
                        missing.hint
                    ));
                }
                suite.add_test_case(TestCase::new("report", status));
            }
        }
        junit.add_test_suite(suite);
    }
    Ok(junit.to_string()?)
}
