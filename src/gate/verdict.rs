//! From what each subnet's task did to the gate's verdict: why a task gave
//! no report (from ECS's stop code and reason), the check × subnet cells,
//! and the fleet diagnosis (fails in some subnets: their own path; in
//! every subnet: the target or the shared path).

use super::ecs::Task;
use super::report::{Diagnosis, NoReport, Scope, Stopped, SubnetResult};

/// Why a stopped task gave no report, from ECS's own words.
pub fn stopped(task: &Task, stopped_by_gate: bool) -> Stopped {
    let reason = task.stopped_reason.as_deref().unwrap_or_default();
    let container = task.container_reason.as_deref().unwrap_or_default();
    match task.stop_code.as_deref() {
        _ if stopped_by_gate => Stopped::StoppedByGate,
        Some("TaskFailedToStart") | None
            if container.contains("CannotPullContainerError")
                || reason.contains("CannotPullContainerError") =>
        {
            Stopped::ImageNotPulled
        }
        Some("TaskFailedToStart") | None if reason.contains("ResourceInitializationError") => {
            Stopped::ServicesUnreachable
        }
        Some("TaskFailedToStart") => Stopped::FailedToStart,
        Some("EssentialContainerExited") => Stopped::ExitedWithoutReport,
        _ => Stopped::StoppedOtherwise,
    }
}

/// The record of a task without a report.
pub fn no_report(task: &Task, why: Stopped, log_tail: Vec<String>) -> NoReport {
    NoReport {
        why,
        stop_code: task.stop_code.clone(),
        stopped_reason: task.stopped_reason.clone(),
        exit_code: task.exit_code,
        hint: why.hint().to_string(),
        log_tail,
    }
}

/// One cell of the matrix: "pass", the check's reason, "no report", or
/// "-" where the subnet's suite has no such check.
pub fn cell(subnet: &SubnetResult, check: &str) -> String {
    let Some(report) = &subnet.report else {
        return "no report".into();
    };
    match report.checks.iter().find(|c| c.name == check) {
        Some(c) if c.success => "pass".into(),
        Some(c) => c
            .reason
            .map(|r| r.as_str().to_string())
            .unwrap_or_else(|| "fail".into()),
        None => "-".into(),
    }
}

/// Every check any subnet reported, in the order first seen.
pub fn checks(subnets: &[SubnetResult]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for report in subnets.iter().filter_map(|s| s.report.as_ref()) {
        for check in &report.checks {
            if !names.contains(&check.name) {
                names.push(check.name.clone());
            }
        }
    }
    names
}

/// A subnet's name in the diagnosis: its id and availability zone.
fn shown(subnet: &SubnetResult) -> String {
    match &subnet.availability_zone {
        Some(zone) => format!("{} ({zone})", subnet.subnet),
        None => subnet.subnet.clone(),
    }
}

/// For each check that failed in a subnet that reported: where to look.
pub fn diagnose(subnets: &[SubnetResult], checks: &[String]) -> Vec<Diagnosis> {
    let reported: Vec<&SubnetResult> = subnets.iter().filter(|s| s.report.is_some()).collect();
    checks
        .iter()
        .filter_map(|check| {
            let (failing, passing): (Vec<&SubnetResult>, Vec<&SubnetResult>) = reported
                .iter()
                .filter(|s| cell(s, check) != "-")
                .partition(|s| cell(s, check) != "pass");
            if failing.is_empty() {
                return None;
            }
            let failing: Vec<String> = failing.into_iter().map(shown).collect();
            let passing: Vec<String> = passing.into_iter().map(shown).collect();
            let (scope, says) = match passing.is_empty() {
                true => (Scope::EverySubnet, format!("{check} fails in every subnet that reported: look at the target or the path all subnets share (its security group, the peering or transit gateway, the target's own health)")),
                false => (Scope::SomeSubnets, format!("{check} fails only in {} and passes in {}: look at the failing subnets' own path (their route table, their network ACL)", failing.join(", "), passing.join(", "))),
            };
            Some(Diagnosis { check: check.clone(), scope, failing, passing, says })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(stop_code: Option<&str>, reason: &str, container_reason: Option<&str>) -> Task {
        Task {
            stop_code: stop_code.map(str::to_string),
            stopped_reason: Some(reason.to_string()),
            container_reason: container_reason.map(str::to_string),
            ..Task::default()
        }
    }

    fn judged((stop_code, reason, container): (Option<&str>, &str, Option<&str>), want: Stopped) {
        assert_eq!(stopped(&task(stop_code, reason, container), false), want);
    }

    crate::cases!(judged {
        secrets_timeout: (Some("TaskFailedToStart"), "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): failed to fetch secret arn:aws:secretsmanager:... dial tcp 10.0.0.1:443: i/o timeout", None) => Stopped::ServicesUnreachable;
        image_pull: (Some("TaskFailedToStart"), "CannotPullContainerError: pull image manifest has been retried 5 time(s)", None) => Stopped::ImageNotPulled;
        image_pull_in_container: (Some("TaskFailedToStart"), "Task failed to start", Some("CannotPullContainerError: ref pull has been retried")) => Stopped::ImageNotPulled;
        other_start_failure: (Some("TaskFailedToStart"), "Task failed to start", None) => Stopped::FailedToStart;
        exited: (Some("EssentialContainerExited"), "Essential container in task exited", None) => Stopped::ExitedWithoutReport;
        user: (Some("UserInitiated"), "stopped by a deployment", None) => Stopped::StoppedOtherwise;
    });
}
