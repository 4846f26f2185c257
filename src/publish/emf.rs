//! CloudWatch Embedded Metric Format: JSON log lines that CloudWatch Logs
//! turns into metrics, so a one-shot task on the `awslogs` driver
//! publishes `Success` and `DurationMs` with no agent.
//!
//! A document carries one value per metric for one set of dimension
//! values, so each check gets its own line (dimensions Suite and Check,
//! plus AvailabilityZone when known), and the run gets a summary line
//! (dimension Suite).

use super::metrics::NONE;
use crate::ecs::TaskIdentity;
use crate::report::document::RunReport;
use serde_json::{json, Map, Value};
use std::time::UNIX_EPOCH;

/// The namespace when none is given.
pub const DEFAULT_NAMESPACE: &str = "VpcProbe";

/// The specification's limits per directive.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

/// One document per check, then the run's summary, each to be printed on
/// a line of its own.
pub fn documents(report: &RunReport, namespace: &str) -> Vec<Value> {
    let timestamp = report
        .started_at()
        .and_then(|started| started.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let identity = report.task.as_ref();
    let zone = identity.and_then(|i| i.availability_zone.as_deref());
    let mut documents: Vec<Value> = report
        .checks
        .iter()
        .map(|check| {
            let mut members = context(&report.suite, identity);
            members.insert("Check".into(), json!(check.name));
            members.insert("Kind".into(), json!(check.kind));
            members.insert(
                "Reason".into(),
                json!(check.reason.map_or(NONE, |r| r.as_str())),
            );
            members.insert(
                "Phase".into(),
                json!(check.phase.map_or(NONE, |p| p.as_str())),
            );
            members.insert("Success".into(), json!(u8::from(check.success)));
            members.insert("DurationMs".into(), json!(millis(check.duration_seconds)));
            document(
                namespace,
                timestamp,
                &["Suite", "Check"],
                zone,
                CHECK_METRICS,
                members,
            )
        })
        .collect();
    let mut summary = context(&report.suite, identity);
    summary.insert("Success".into(), json!(u8::from(report.success)));
    summary.insert("DurationMs".into(), json!(millis(report.duration_seconds)));
    summary.insert("FailedChecks".into(), json!(report.failed()));
    documents.push(document(
        namespace,
        timestamp,
        &["Suite"],
        zone,
        RUN_METRICS,
        summary,
    ));
    documents
}

const CHECK_METRICS: &[(&str, &str)] = &[("Success", "Count"), ("DurationMs", "Milliseconds")];
const RUN_METRICS: &[(&str, &str)] = &[
    ("Success", "Count"),
    ("DurationMs", "Milliseconds"),
    ("FailedChecks", "Count"),
];

/// `snake_case` as `PascalCase`, the way EMF members are named.
fn pascal_case(label: &str) -> String {
    label
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Members every document carries: the suite and where the task ran.
/// Only the availability zone is a dimension; the rest are properties
/// that Logs Insights can query without creating metrics per task.
fn context(suite: &str, identity: Option<&TaskIdentity>) -> Map<String, Value> {
    let mut members = Map::new();
    members.insert("Suite".into(), json!(suite));
    // Every known field of the task identity (its one list is
    // `TaskIdentity::fields`), named the EMF way: availability_zone ->
    // AvailabilityZone.
    for (label, value) in identity.map(TaskIdentity::labels).unwrap_or_default() {
        members.insert(pascal_case(label), json!(value));
    }
    members
}

fn document(
    namespace: &str,
    timestamp: u64,
    dimensions: &[&str],
    zone: Option<&str>,
    metrics: &[(&str, &str)],
    mut members: Map<String, Value>,
) -> Value {
    let mut sets = vec![json!(dimensions)];
    if zone.is_some() {
        let mut with_zone = dimensions.to_vec();
        with_zone.push("AvailabilityZone");
        sets.push(json!(with_zone));
    }
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    members.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(members)
}

fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::sample::outcome;
    use crate::outcome::Reason;
    use crate::runner::Report;
    use std::time::{Duration, SystemTime};

    fn report(task: Option<&TaskIdentity>) -> RunReport {
        RunReport::new(
            &Report {
                suite: "production".into(),
                started: SystemTime::now(),
                duration: Duration::from_millis(40),
                checks: vec![
                    outcome("up", None),
                    outcome("down", Some(Reason::ConnectTimeout)),
                ],
            },
            task,
        )
    }

    #[test]
    fn one_document_per_check_and_one_for_the_run_within_the_limits() {
        let documents = documents(&report(None), DEFAULT_NAMESPACE);
        assert_eq!(documents.len(), 3);
        for document in &documents {
            let directive = &document["_aws"]["CloudWatchMetrics"][0];
            assert!(directive["Metrics"].as_array().unwrap().len() <= MAX_METRICS);
            for set in directive["Dimensions"].as_array().unwrap() {
                assert!(set.as_array().unwrap().len() <= MAX_DIMENSIONS);
            }
        }
        assert_eq!(documents[1]["Reason"], "connect_timeout");
        assert_eq!(documents[1]["Success"], 0);
        assert_eq!(documents[2]["FailedChecks"], 1);
        assert!(documents[0].get("AvailabilityZone").is_none());
    }

    #[test]
    fn a_known_zone_adds_a_dimension_set_and_the_task_stays_a_property() {
        let identity = TaskIdentity {
            availability_zone: Some("us-west-2b".into()),
            task_arn: Some("arn:aws:ecs:us-west-2:1:task/c/abc".into()),
            ..TaskIdentity::default()
        };
        let documents = documents(&report(Some(&identity)), "Glimpse");
        let sets = &documents[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(
            sets[1],
            serde_json::json!(["Suite", "Check", "AvailabilityZone"])
        );
        assert_eq!(
            documents[0]["TaskArn"],
            "arn:aws:ecs:us-west-2:1:task/c/abc"
        );
        assert!(!sets.to_string().contains("TaskArn"));
    }

    #[test]
    fn identity_labels_become_pascal_case_members() {
        assert_eq!(pascal_case("availability_zone"), "AvailabilityZone");
        assert_eq!(pascal_case("task_arn"), "TaskArn");
        assert_eq!(pascal_case("private_ip"), "PrivateIp");
    }
}
