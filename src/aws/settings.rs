//! The suite's `[aws]` table, validated: where the describes go (region,
//! endpoint), the read-only role in the database account, when to explain,
//! and what the source of every path is.

use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// How long one run may spend explaining, at most once per run.
pub const DEFAULT_EXPLAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Validated `[aws]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `None`: the environment's, else the task metadata's.
    pub region: Option<String>,
    /// Another endpoint for every service (tests, VPC interface endpoints).
    pub endpoint_url: Option<String>,
    /// A read-only role in the database account, assumed with STS.
    pub peer_role_arn: Option<RoleArn>,
    /// A read-only role in the account that owns a shared transit gateway
    /// (a network account, through RAM): its route tables answer only there.
    pub network_role_arn: Option<RoleArn>,
    /// Sent with every AssumeRole (the peer's and the network's role).
    pub external_id: Option<String>,
    pub explain: Explain,
    /// `None`: the task's own ENI, from the ECS task metadata.
    pub source: Option<Source>,
    pub explain_timeout: Duration,
}

/// When failing (or all) checks get their path explained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Explain {
    #[default]
    OnFailure,
    Always,
    Never,
}

/// Where every path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Eni(String),
    Subnet(String),
    Address(Ipv4Addr),
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(address) = text.parse() {
            return Ok(Source::Address(address));
        }
        let id_ok = |prefix: &str| {
            text.strip_prefix(prefix)
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        };
        match () {
            _ if id_ok("eni-") => Ok(Source::Eni(text.to_string())),
            _ if id_ok("subnet-") => Ok(Source::Subnet(text.to_string())),
            _ => {
                Err("expected an ENI id (eni-…), a subnet id (subnet-…) or an IPv4 address".into())
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Eni(id) | Source::Subnet(id) => f.write_str(id),
            Source::Address(address) => write!(f, "{address}"),
        }
    }
}

/// `arn:<partition>:iam::<account>:role/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    account: String,
}

impl RoleArn {
    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }
}

impl FromStr for RoleArn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("not an IAM role ARN (arn:aws:iam::123456789012:role/NAME): `{text}`");
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, iam, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
        let name_ok = resource.strip_prefix("role/").is_some_and(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        });
        let partition_ok = matches!(partition, "aws" | "aws-cn" | "aws-us-gov");
        if arn != "arn"
            || !partition_ok
            || iam != "iam"
            || !region.is_empty()
            || !account_ok
            || !name_ok
        {
            return Err(bad());
        }
        Ok(RoleArn {
            arn: text.to_string(),
            account: account.to_string(),
        })
    }
}

/// The one rule for the region every AWS call and IAM token is signed
/// in: the suite's `[aws] region`, else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the region of the zone the task runs in
/// (when the caller knows it).
pub fn region(configured: Option<&str>, task_zone: Option<&str>) -> Option<String> {
    let from_env = || {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
    };
    let from_zone = || {
        task_zone.map(|z| {
            z.trim_end_matches(|c: char| c.is_ascii_lowercase())
                .to_string()
        })
    };
    configured
        .map(str::to_string)
        .or_else(from_env)
        .or_else(from_zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_region_wins_over_the_environment_and_the_zone() {
        // Whatever AWS_REGION says in this process, the suite's comes first.
        let region = region(Some("eu-west-1"), Some("us-east-1a"));
        assert_eq!(region.as_deref(), Some("eu-west-1"));
    }

    fn arn(text: &str, ok: bool) {
        assert_eq!(text.parse::<RoleArn>().is_ok(), ok, "{text}");
    }

    crate::cases!(arn {
        a_role: "arn:aws:iam::222222222222:role/vpc-probe-read" => true;
        a_role_with_a_path: "arn:aws:iam::222222222222:role/probe/read" => true;
        a_user: "arn:aws:iam::222222222222:user/probe" => false;
        a_short_account: "arn:aws:iam::2222:role/probe" => false;
        a_region: "arn:aws:iam:eu-west-1:222222222222:role/probe" => false;
        not_iam: "arn:aws:sts::222222222222:role/probe" => false;
        empty_name: "arn:aws:iam::222222222222:role/" => false;
    });

    #[test]
    fn sources_parse_by_shape() {
        assert_eq!(
            "10.20.1.10".parse(),
            Ok(Source::Address(Ipv4Addr::new(10, 20, 1, 10)))
        );
        assert_eq!("eni-0abc".parse(), Ok(Source::Eni("eni-0abc".into())));
        assert_eq!(
            "subnet-0abc".parse(),
            Ok(Source::Subnet("subnet-0abc".into()))
        );
        assert!("sg-0abc".parse::<Source>().is_err());
    }
}
