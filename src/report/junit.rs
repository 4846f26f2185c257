//! JUnit XML, one testcase per check, so CI systems show failures natively.

use super::document::RunReport;
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(report: &RunReport) -> anyhow::Result<String> {
    let mut suite = TestSuite::new(report.suite.as_str());
    if let Some(started) = report.started_at() {
        suite.set_timestamp(chrono::DateTime::<chrono::Utc>::from(started).fixed_offset());
    }
    suite.set_time(seconds(report.duration_seconds));
    for check in &report.checks {
        let status = match (check.reason, check.phase) {
            (Some(reason), Some(phase)) if !check.success => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!("{reason} in {}", phase.as_str()));
                status.set_type(reason.as_str());
                let evidence = check.evidence.as_ref().map(super::text::evidence_lines);
                status.set_description(format!(
                    "{}\nhint: {}\n{}",
                    check.detail.as_deref().unwrap_or_default(),
                    check.hint.as_deref().unwrap_or(reason.hint()),
                    evidence.unwrap_or_default()
                ));
                status
            }
            _ if !check.success => TestCaseStatus::non_success(NonSuccessKind::Failure),
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(check.name.as_str(), status);
        if let Some(warning) = check.warning.as_ref().filter(|_| check.success) {
            case.set_system_out(format!(
                "warning {}: {}",
                warning.reason.as_str(),
                warning.detail
            ));
        }
        case.set_classname(format!("{}.{}", report.suite, check.kind));
        case.set_time(seconds(check.duration_seconds));
        suite.add_test_case(case);
    }
    let mut junit = Junit::new("vpc-probe");
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

/// A drill as a test suite: one testcase per budget.
pub fn render_drill(report: &crate::drill::report::DrillReport) -> anyhow::Result<String> {
    let mut suite = TestSuite::new(format!("drill {}", report.drill));
    suite.set_time(seconds(report.duration_seconds));
    if let Some(error) = &report.error {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(error.as_str());
        suite.add_test_case(TestCase::new("setup", status));
    }
    if report.interrupted {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!(
            "interrupted (SIGTERM) after {:.1} s",
            report.duration_seconds
        ));
        suite.add_test_case(TestCase::new("interrupted", status));
    }
    for budget in &report.budgets {
        let status = if budget.pass {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "{}: {} against a limit of {}",
                budget.name, budget.value, budget.limit
            ));
            status
        };
        let mut case = TestCase::new(budget.name.as_str(), status);
        case.set_classname(format!("drill.{}", report.drill));
        suite.add_test_case(case);
    }
    let mut junit = Junit::new("vpc-probe");
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}
