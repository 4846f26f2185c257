//! Where the probe's AWS credentials come from: the standard chain the
//! SDKs document, in their order: the environment, the shared profile
//! files, the ECS container endpoint, and instance metadata (only on an EC2
//! host). Looked up once per run, bounded by [`LOOKUP`], and kept while
//! they have five minutes left.
//!
//! Hand-written over `aws-config` because the probe needs only these four
//! sources: the SDK's chain brought its own STS client and orchestrator,
//! about a megabyte of the image (BENCHMARKS.md). A role a profile names is
//! assumed with the probe's own STS call ([`sts`]).
//!
//! Layout: `env` (the `AWS_*` variables), `profile` (the shared files and
//! their role chains), `remote` (the container endpoint and instance
//! metadata, which answer the same JSON), `sts` (AssumeRole).

mod env;
mod profile;
mod remote;
pub mod sts;

pub use aws_credential_types::Credentials;
use std::time::{Duration, SystemTime};

/// Looking for credentials never takes longer than this, once per run.
pub const LOOKUP: Duration = Duration::from_secs(2);

/// What one source of the chain found: `Ok(None)` when it is not set up
/// here (the chain goes on), an error when it is set up and failed (the
/// chain stops there, as the SDKs' does, and the error says why).
type Found = Result<Option<Credentials>, String>;

/// The chain's credentials, or one line saying why there are none.
pub async fn lookup() -> Result<Credentials, String> {
    let sources = if on_ec2() {
        "environment, profile, ECS container credentials, instance metadata"
    } else {
        "environment, profile, ECS container credentials"
    };
    // Boxed: the chain's future (profiles, STS, HTTP) would otherwise sit
    // inside every Redis and PostgreSQL check's own (runner::future_sizes).
    let chain: std::pin::Pin<Box<dyn std::future::Future<Output = Found> + Send>> =
        Box::pin(chain());
    match tokio::time::timeout(LOOKUP, chain).await {
        Ok(Ok(Some(credentials))) => Ok(credentials),
        Ok(Ok(None)) => Err(format!("no AWS credentials ({sources}): none is set up")),
        Ok(Err(why)) => Err(format!("no AWS credentials ({sources}): {why}")),
        Err(_) => Err(format!("no AWS credentials within {LOOKUP:?}")),
    }
}

/// The chain's credentials, kept while they have more than five minutes
/// left: an IAM token is made for every connection, the lookup (an HTTP
/// call to the ECS credentials endpoint) once per expiry.
pub async fn cached() -> Result<Credentials, String> {
    static KEPT: tokio::sync::Mutex<Option<Credentials>> = tokio::sync::Mutex::const_new(None);
    let mut kept = KEPT.lock().await;
    let fresh_enough = |c: &Credentials| {
        c.expiry()
            .is_none_or(|at| at > SystemTime::now() + Duration::from_secs(300))
    };
    if let Some(credentials) = kept.as_ref().filter(|c| fresh_enough(c)) {
        return Ok(credentials.clone());
    }
    let credentials = lookup().await?;
    *kept = Some(credentials.clone());
    Ok(credentials)
}

/// The first source that is set up answers.
async fn chain() -> Found {
    if let Some(found) = env::read()? {
        return Ok(Some(found));
    }
    if let Some(found) = profile::read().await? {
        return Ok(Some(found));
    }
    if let Some(found) = remote::container().await? {
        return Ok(Some(found));
    }
    if on_ec2() {
        return remote::instance_metadata().await;
    }
    Ok(None)
}

/// Whether this host is an EC2 instance (where instance metadata exists):
/// the firmware says so. ECS on Fargate gives container credentials instead.
fn on_ec2() -> bool {
    if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    [
        "/sys/class/dmi/id/sys_vendor",
        "/sys/class/dmi/id/board_asset_tag",
        "/sys/hypervisor/uuid",
    ]
    .iter()
    .filter_map(|path| std::fs::read_to_string(path).ok())
    .any(|text| text.starts_with("Amazon EC2") || text.starts_with("i-") || text.starts_with("ec2"))
}

/// A variable's value, unless it is unset or empty (an empty one counts as
/// unset, as in the SDKs).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An RFC 3339 time (the endpoints' and STS's `Expiration`).
fn expiry(at: &str) -> Option<SystemTime> {
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    let seconds = u64::try_from(at.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}
