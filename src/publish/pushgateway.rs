//! Pushes a one-shot run to a Prometheus Pushgateway, for `aws ecs
//! run-task` runs that nobody can scrape. The grouping key is stable
//! (suite, availability zone, subnet) so each push replaces the previous
//! one from the same place; a task ID would leave a stale group per run.

use crate::ecs::TaskIdentity;
use crate::net::fetch;
use base64::Engine;
use bytes::Bytes;
use std::time::Duration;
use url::Url;

/// The job label of every push.
pub const JOB: &str = "vpc_probe";

/// How long a push may take before it is reported as failed.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The grouping key: `suite`, plus `availability_zone` and `subnet` when
/// the task metadata says them.
pub fn grouping_key<'a>(
    suite: &'a str,
    identity: Option<&'a TaskIdentity>,
) -> Vec<(&'static str, &'a str)> {
    let mut key = vec![("suite", suite)];
    if let Some(identity) = identity {
        key.extend(
            identity
                .labels()
                .into_iter()
                .filter(|(name, _)| matches!(*name, "availability_zone" | "subnet")),
        );
    }
    key
}

/// `{base}/metrics/job/vpc_probe/{label}/{value}...`, with base64 for any
/// value a path segment cannot carry as is (a subnet's `/`, for one).
pub fn group_url(base: &Url, key: &[(&str, &str)]) -> Url {
    let mut path = format!("{}/metrics/job/{JOB}", base.path().trim_end_matches('/'));
    for (label, value) in key {
        path.push('/');
        path.push_str(&segment(label, value));
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(None);
    url
}

fn segment(label: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        format!("{label}/{value}")
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
        // The Pushgateway wants a lone "=" for an empty value.
        let encoded = if encoded.is_empty() {
            "=".to_string()
        } else {
            encoded
        };
        format!("{label}@base64/{encoded}")
    }
}

/// PUT `exposition` to the group, replacing what that group held.
pub async fn push(group: &Url, exposition: String) -> anyhow::Result<()> {
    let body = Some((super::metrics::CONTENT_TYPE, Bytes::from(exposition)));
    let response = fetch::send(http::Method::PUT, group, body, PUSH_TIMEOUT).await?;
    if response.status.is_success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&response.body);
    anyhow::bail!(
        "{}: HTTP {}: {}",
        fetch::redacted(group),
        response.status,
        said.chars().take(300).collect::<String>().trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_slash_is_base64_and_plain_values_stay_readable() {
        let identity = TaskIdentity {
            availability_zone: Some("us-west-2a".into()),
            subnet: Some("10.20.1.0/24".into()),
            task_arn: Some("arn:aws:ecs:us-west-2:1:task/x".into()),
            ..TaskIdentity::default()
        };
        let key = grouping_key("production", Some(&identity));
        let base = Url::parse("http://gateway:9091/").unwrap();
        assert_eq!(
            group_url(&base, &key).as_str(),
            "http://gateway:9091/metrics/job/vpc_probe/suite/production/availability_zone/us-west-2a/subnet@base64/MTAuMjAuMS4wLzI0"
        );
    }

    #[test]
    fn a_path_prefix_is_kept_and_odd_suite_names_are_encoded() {
        let base = Url::parse("https://ops.example/pushgateway/").unwrap();
        let url = group_url(&base, &grouping_key("a b", None));
        assert_eq!(
            url.as_str(),
            "https://ops.example/pushgateway/metrics/job/vpc_probe/suite@base64/YSBi"
        );
        assert_eq!(segment("x", ""), "x@base64/=");
    }
}
