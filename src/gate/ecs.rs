//! The ECS calls the gate makes, as typed answers: the service's network
//! and task definition, the task definition's probe container and its
//! logs, one task per subnet, the tasks' states, and stopping them. Each
//! reads only the fields the gate uses from ECS's documented JSON.

use crate::aws::client::{Account, CallError, Service};
use serde_json::{json, Value};

/// Where the gate's tasks run: the network a service (or the command
/// line) gives them, and the task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// The probe's container in the task definition, and where awslogs puts
/// what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// `VPC_PROBE_SUITE` in its environment, the suite inside the image.
    pub suite: Option<String>,
    pub log_group: String,
    pub stream_prefix: String,
}

/// One task as DescribeTasks gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
    pub availability_zone: Option<String>,
    pub subnet: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// The probe container's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// The probe container's own reason (CannotPullContainerError, ...).
    pub container_reason: Option<String>,
}

impl Task {
    /// The id in the task's ARN, as awslogs names the stream.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    pub fn stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key)?.as_str().map(str::to_string)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A service's awsvpc network and task definition.
pub async fn service(account: &Account, cluster: &str, name: &str) -> Result<Network, String> {
    let input = json!({"cluster": cluster, "services": [name]});
    let answer = call(account, "DescribeServices", &input).await?;
    let Some(service) = answer["services"].as_array().and_then(|s| s.first()) else {
        let why = answer["failures"][0]["reason"]
            .as_str()
            .unwrap_or("not found");
        return Err(format!("service {name} in cluster {cluster}: {why}"));
    };
    let awsvpc = &service["networkConfiguration"]["awsvpcConfiguration"];
    Ok(Network {
        task_definition: text(service, "taskDefinition").unwrap_or_default(),
        subnets: strings(awsvpc.get("subnets")),
        security_groups: strings(awsvpc.get("securityGroups")),
        assign_public_ip: awsvpc["assignPublicIp"] == "ENABLED",
    })
}

/// The probe container of a task definition: `wanted` by name, else the
/// one named vpc-probe, else the first essential one.
pub async fn container(
    account: &Account,
    task_definition: &str,
    wanted: Option<&str>,
) -> Result<(String, Container), String> {
    let input = json!({"taskDefinition": task_definition});
    let answer = call(account, "DescribeTaskDefinition", &input).await?;
    let definition = &answer["taskDefinition"];
    let containers = definition["containerDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named = |name: &str| containers.iter().find(|c| c["name"] == name);
    let chosen = match wanted {
        Some(name) => named(name),
        None => named("vpc-probe").or_else(|| containers.iter().find(|c| c["essential"] != false)),
    };
    let Some(chosen) = chosen else {
        return Err(format!(
            "task definition {task_definition} has no container {}",
            wanted.unwrap_or("vpc-probe")
        ));
    };
    let name = text(chosen, "name").unwrap_or_default();
    let options = &chosen["logConfiguration"]["options"];
    if chosen["logConfiguration"]["logDriver"] != "awslogs" {
        return Err(format!("container {name} of {task_definition} does not log with awslogs: the gate reads each task's report from CloudWatch Logs"));
    }
    let suite = chosen["environment"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "VPC_PROBE_SUITE")
        .and_then(|e| text(e, "value"));
    let arn = text(definition, "taskDefinitionArn").unwrap_or_else(|| task_definition.to_string());
    Ok((
        arn,
        Container {
            name,
            suite,
            log_group: text(options, "awslogs-group").unwrap_or_default(),
            stream_prefix: text(options, "awslogs-stream-prefix").unwrap_or_default(),
        },
    ))
}

/// What RunTask did for one subnet: the task, or ECS's reason for none.
pub enum Started {
    Task(String),
    Refused(String),
}

/// One Fargate task in `subnet` alone, its probe container's command
/// replaced by `command`.
pub async fn run_task(
    account: &Account,
    cluster: &str,
    network: &Network,
    subnet: &str,
    container: &str,
    command: &[String],
    started_by: &str,
) -> Result<Started, CallError> {
    let input = json!({
        "cluster": cluster,
        "taskDefinition": network.task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": started_by,
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": [subnet],
            "securityGroups": network.security_groups,
            "assignPublicIp": if network.assign_public_ip { "ENABLED" } else { "DISABLED" },
        }},
        "overrides": {"containerOverrides": [{"name": container, "command": command}]},
    });
    let answer = account.json(Service::Ecs, "RunTask", &input).await?;
    if let Some(arn) = answer["tasks"][0]["taskArn"].as_str() {
        return Ok(Started::Task(arn.to_string()));
    }
    let failure = &answer["failures"][0];
    let reason = [text(failure, "reason"), text(failure, "detail")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Ok(Started::Refused(if reason.is_empty() {
        "RunTask started no task and gave no reason".into()
    } else {
        reason
    }))
}

/// The tasks' states, up to 100 per call as ECS takes them.
pub async fn describe(
    account: &Account,
    cluster: &str,
    arns: &[String],
    container: &str,
) -> Result<Vec<Task>, String> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let input = json!({"cluster": cluster, "tasks": chunk});
        let answer = call(account, "DescribeTasks", &input).await?;
        tasks.extend(
            answer["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| task(t, container)),
        );
    }
    Ok(tasks)
}

fn task(value: &Value, container: &str) -> Task {
    let probe = value["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container);
    let details = value["attachments"][0]["details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let subnet = details
        .iter()
        .find(|d| d["name"] == "subnetId")
        .and_then(|d| text(d, "value"));
    Task {
        arn: text(value, "taskArn").unwrap_or_default(),
        last_status: text(value, "lastStatus").unwrap_or_default(),
        availability_zone: text(value, "availabilityZone"),
        subnet,
        stop_code: text(value, "stopCode"),
        stopped_reason: text(value, "stoppedReason"),
        exit_code: probe.and_then(|c| c["exitCode"].as_i64()),
        container_reason: probe.and_then(|c| text(c, "reason")),
    }
}

/// Stop a task the gate started; a task already gone is no error.
pub async fn stop(account: &Account, cluster: &str, arn: &str, reason: &str) -> Result<(), String> {
    let input = json!({"cluster": cluster, "task": arn, "reason": reason});
    call(account, "StopTask", &input).await.map(drop)
}

/// An ECS call whose failure is one line.
async fn call(account: &Account, action: &str, input: &Value) -> Result<Value, String> {
    account
        .json(Service::Ecs, action, input)
        .await
        .map_err(|err| err.to_string())
}
