//! JUnit XML, one testcase per check, so CI systems show failures natively.

use crate::runner::Report;
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut suite = TestSuite::new(report.suite.as_str());
    suite.set_timestamp(chrono::DateTime::<chrono::Utc>::from(report.started).fixed_offset());
    suite.set_time(report.duration);
    for outcome in &report.checks {
        let status = match outcome.failure() {
            None => TestCaseStatus::success(),
            Some(failure) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!("{} in {}", failure.reason, failure.phase.as_str()));
                status.set_type(failure.reason.as_str());
                status.set_description(format!(
                    "{}\nhint: {}",
                    failure.detail,
                    failure.reason.hint()
                ));
                status
            }
        };
        let mut case = TestCase::new(outcome.name.as_str(), status);
        case.set_classname(format!("{}.{}", report.suite, outcome.kind));
        case.set_time(outcome.duration);
        suite.add_test_case(case);
    }
    let mut junit = Junit::new("vpc-probe");
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}
