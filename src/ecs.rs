//! Which ECS task, availability zone and subnet a result came from, read
//! once from the task metadata endpoint v4. A route missing from one
//! subnet's route table shows up as "fails from subnet B only" only if
//! every result says where it ran.

use crate::net::fetch;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// The variable ECS sets in every container of a task (platform 1.4.0+).
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The metadata endpoint is link-local and answers in milliseconds; a
/// probe outside ECS must not wait on it.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Where this process runs. Every field is optional: metadata can be
/// partial (EC2 launch type, bridge networking), and absent outside ECS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskIdentity {
    pub cluster: Option<String>,
    pub task_arn: Option<String>,
    pub family: Option<String>,
    pub revision: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet: Option<String>,
    pub private_ip: Option<String>,
}

impl TaskIdentity {
    /// Read `${ECS_CONTAINER_METADATA_URI_V4}/task`; `None` when the variable
    /// is unset or the endpoint is broken (logged, never fatal).
    pub async fn discover() -> Option<TaskIdentity> {
        let base = std::env::var(METADATA_ENV).ok()?;
        match Self::fetch(&base, METADATA_TIMEOUT).await {
            Ok(identity) => {
                tracing::info!(?identity, "ECS task identity");
                Some(identity)
            }
            Err(err) => {
                tracing::warn!(
                    "ECS task metadata unavailable, results carry no task identity: {err:#}"
                );
                None
            }
        }
    }

    /// Read and parse the task metadata below `base`.
    pub async fn fetch(base: &str, timeout: Duration) -> anyhow::Result<TaskIdentity> {
        let url = Url::parse(&format!("{}/task", base.trim_end_matches('/')))?;
        let response = fetch::send(http::Method::GET, &url, None, timeout).await?;
        anyhow::ensure!(
            response.status.is_success(),
            "{}: HTTP {}",
            fetch::redacted(&url),
            response.status
        );
        Self::parse(&response.body)
    }

    /// The identity in a task metadata v4 `/task` document.
    pub fn parse(document: &[u8]) -> anyhow::Result<TaskIdentity> {
        let task: TaskMetadata = serde_json::from_slice(document)?;
        let network = task
            .containers
            .iter()
            .flat_map(|c| &c.networks)
            .find(|n| !n.ipv4_addresses.is_empty() || n.ipv4_subnet_cidr_block.is_some());
        Ok(TaskIdentity {
            cluster: task.cluster.map(|c| short_cluster(&c)),
            task_arn: task.task_arn,
            family: task.family,
            revision: task.revision,
            availability_zone: task.availability_zone,
            subnet: network.and_then(|n| n.ipv4_subnet_cidr_block.clone()),
            private_ip: network.and_then(|n| n.ipv4_addresses.first().cloned()),
        })
    }

    /// The label names of the fields, in the one fixed order that labels,
    /// the text report and EMF members are made in.
    pub const LABELS: [&'static str; 7] = [
        "cluster",
        "task_arn",
        "family",
        "revision",
        "availability_zone",
        "subnet",
        "private_ip",
    ];

    /// Every field under its label name, known or not, in the order of
    /// [`TaskIdentity::LABELS`].
    pub fn fields(&self) -> [(&'static str, Option<&str>); 7] {
        let values = [
            self.cluster.as_deref(),
            self.task_arn.as_deref(),
            self.family.as_deref(),
            self.revision.as_deref(),
            self.availability_zone.as_deref(),
            self.subnet.as_deref(),
            self.private_ip.as_deref(),
        ];
        std::array::from_fn(|i| (Self::LABELS[i], values[i]))
    }

    /// `(label, value)` pairs for the fields that are known, in a fixed order.
    pub fn labels(&self) -> Vec<(&'static str, &str)> {
        self.fields()
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect()
    }
}

/// Fargate gives the cluster as an ARN, EC2 as a name; keep the name.
fn short_cluster(cluster: &str) -> String {
    match cluster.strip_prefix("arn:") {
        Some(_) => cluster.rsplit('/').next().unwrap_or(cluster).to_string(),
        None => cluster.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskMetadata {
    cluster: Option<String>,
    #[serde(rename = "TaskARN")]
    task_arn: Option<String>,
    family: Option<String>,
    revision: Option<String>,
    availability_zone: Option<String>,
    #[serde(default)]
    containers: Vec<ContainerMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerMetadata {
    #[serde(default)]
    networks: Vec<NetworkMetadata>,
}

#[derive(Deserialize)]
struct NetworkMetadata {
    #[serde(rename = "IPv4Addresses", default)]
    ipv4_addresses: Vec<String>,
    #[serde(rename = "IPv4SubnetCIDRBlock")]
    ipv4_subnet_cidr_block: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FARGATE_EXAMPLE: &str = include_str!("../tests/data/ecs-task-metadata-v4.json");

    #[test]
    fn reads_the_documented_fargate_example() {
        let identity = TaskIdentity::parse(FARGATE_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(identity.cluster.as_deref(), Some("default"));
        assert_eq!(
            identity.task_arn.as_deref(),
            Some(
                "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"
            )
        );
        assert_eq!(identity.family.as_deref(), Some("curltest"));
        assert_eq!(identity.revision.as_deref(), Some("3"));
        assert_eq!(identity.availability_zone.as_deref(), Some("us-west-2a"));
        assert_eq!(identity.subnet.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(identity.private_ip.as_deref(), Some("192.0.2.3"));
        assert_eq!(identity.labels().len(), 7);
    }

    #[test]
    fn partial_metadata_keeps_what_is_known() {
        let identity = TaskIdentity::parse(br#"{"Cluster":"default","Containers":[]}"#).unwrap();
        assert_eq!(identity.labels(), vec![("cluster", "default")]);
        assert!(TaskIdentity::parse(b"not json").is_err());
    }
}
