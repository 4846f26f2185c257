//! The gate's report as one typed document: each subnet's task and its
//! report (or why it gave none), and the fleet diagnosis. JSON is its
//! serialization (schema `schema/gate.schema.json`), text and JUnit are
//! rendered from it.

use crate::report::document::RunReport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One gate run across the subnets of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateReport {
    pub cluster: String,
    pub task_definition: String,
    /// The tasks' `startedBy`: finds this run's tasks in ECS.
    pub started_by: String,
    /// True when every subnet's task reported every check passing.
    pub success: bool,
    pub started: String,
    pub duration_seconds: f64,
    /// Every check any subnet reported, in suite order.
    pub checks: Vec<String>,
    pub subnets: Vec<SubnetResult>,
    /// One line per check that failed somewhere: where to look.
    pub diagnosis: Vec<Diagnosis>,
    /// With a local `--suite` that has `[aws]`: each subnet's paths judged
    /// from the describes before any task ran (`paths` from the subnet with
    /// the tasks' security groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_pass: Vec<StaticSubnet>,
}

/// One subnet's static pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StaticSubnet {
    pub subnet: String,
    pub paths: Option<crate::evidence::paths::PathsReport>,
    /// Why the describes could not be read for it.
    pub error: Option<String>,
}

/// One subnet's task and what it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubnetResult {
    pub subnet: String,
    pub availability_zone: Option<String>,
    /// The task's ARN, when RunTask started one.
    pub task: Option<String>,
    /// The probe's own report, read from the task's log stream.
    pub report: Option<RunReport>,
    /// Why there is no report; absent when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_report: Option<NoReport>,
}

/// A task that gave no report, as ECS tells it (quoted verbatim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoReport {
    pub why: Stopped,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub exit_code: Option<i64>,
    /// What to fix.
    pub hint: String,
    /// The last lines the task printed, when it printed any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// Why a subnet's task gave no report: a closed set, each with its hint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Stopped {
    /// RunTask started nothing in this subnet (ECS's reason quoted).
    NotStarted,
    /// The task could not reach ECR, Secrets Manager or CloudWatch Logs
    /// from this subnet (ResourceInitializationError ... i/o timeout).
    ServicesUnreachable,
    /// The image could not be pulled (CannotPullContainerError).
    ImageNotPulled,
    /// Another TaskFailedToStart.
    FailedToStart,
    /// The container exited and printed no report.
    ExitedWithoutReport,
    /// Still running at the gate's `--timeout`, or the gate was stopped:
    /// the gate stopped it.
    StoppedByGate,
    /// Stopped by someone else (UserInitiated, a deployment, Spot).
    StoppedOtherwise,
}

impl Stopped {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What to fix, for this subnet.
    pub fn hint(self) -> &'static str {
        match self {
            Stopped::NotStarted => "ECS started no task in this subnet: the quoted reason says why (no free IP addresses in the subnet, a capacity or quota limit, a wrong subnet or security group id)",
            Stopped::ServicesUnreachable => "this subnet has no path to ECR, Secrets Manager or CloudWatch Logs: add the VPC endpoints (ecr.api, ecr.dkr, s3 gateway, secretsmanager, logs) to this subnet's route table / security groups, or a NAT route",
            Stopped::ImageNotPulled => "the image could not be pulled: the image name and tag, the execution role's ecr:GetAuthorizationToken / BatchGetImage, and this subnet's path to ECR (VPC endpoints or NAT)",
            Stopped::FailedToStart => "the task failed to start: the quoted reason names the cause (execution role, secrets ARNs, the log group)",
            Stopped::ExitedWithoutReport => "the probe exited without a report: its last lines below say why (an invalid suite exits 2; --task-suite or VPC_PROBE_SUITE must name the suite inside the image)",
            Stopped::StoppedByGate => "the task ran past the gate's --timeout (or the gate was stopped) and was stopped: raise --timeout, or look at why the task was slow to start (image size, ENI attachment)",
            Stopped::StoppedOtherwise => "the task was stopped by someone else while it ran (the quoted reason says who): run the gate again",
        }
    }
}

/// Where a check's failures point, by the subnets they happen in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnosis {
    pub check: String,
    pub scope: Scope,
    pub failing: Vec<String>,
    pub passing: Vec<String>,
    /// The diagnosis in words.
    pub says: String,
}

/// Whether a check fails in some subnets or in every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Fails in some subnets, passes in others: those subnets' own path.
    SomeSubnets,
    /// Fails in every subnet that reported: the target or the shared path.
    EverySubnet,
}

/// The schema of the gate's JSON report.
pub fn schema() -> String {
    let schema = schemars::schema_for!(GateReport);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    /// The checked-in schema is the generated one.
    #[test]
    fn the_checked_in_gate_schema_is_the_generated_one() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/gate.schema.json");
        if std::env::var_os("VPC_PROBE_WRITE_SCHEMA").is_some() {
            std::fs::write(file, super::schema()).expect("write the schema");
        }
        let checked_in = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            checked_in == super::schema(),
            "{file} is stale: run VPC_PROBE_WRITE_SCHEMA=1 cargo test --lib schema"
        );
    }
}
