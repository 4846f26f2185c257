//! IAM authentication tokens (issue 23) against the reference: botocore's
//! own signer, from PyPI, driven with the same credentials, region, clock
//! and inputs (tests/rig/botocore_token.py). One test per row; each
//! compares the host and path, every parameter, and the signature.

mod rig;

use aws_credential_types::Credentials;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};
use vpc_probe::aws::token::{token, Resource};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2025-12-01T00:00:00Z, then a second that is not on a minute.
const EPOCHS: [u64; 2] = [1_764_547_200, 1_764_550_987];

/// The token botocore makes for `resource`, as its Python sees it.
fn botocore(resource: &Resource, session: Option<&str>, region: &str, epoch: u64) -> String {
    let target = match resource {
        Resource::ElastiCache {
            cache_name,
            user,
            serverless,
        } => serde_json::json!({"elasticache": {
            "cache_name": cache_name, "user": user, "serverless": serverless}}),
        Resource::Rds { host, port, user } => {
            serde_json::json!({"rds": {"host": host, "port": port, "user": user}})
        }
    };
    let mut spec = serde_json::json!({
        "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "token": session,
        "region": region, "epoch": epoch,
    });
    spec.as_object_mut()
        .unwrap()
        .extend(target.as_object().unwrap().clone());
    let python = rig::moto::venv_bin()
        .expect("scripts/python-tools")
        .join("python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/botocore_token.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "botocore: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Host and path, and the decoded parameters, of a token.
fn parts(token: &str) -> (String, BTreeMap<String, String>) {
    let url = url::Url::parse(&format!("https://{token}")).unwrap();
    let at = format!(
        "{}{}{}",
        url.host_str().unwrap(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        url.path()
    );
    (at, url.query_pairs().into_owned().collect())
}

/// Our token and botocore's for one row: the same host, path, parameters
/// and signature (the parameters' order may differ; their values may not).
fn same_as_botocore(row: (Resource, Option<&str>, &str)) {
    let (resource, session, region) = row;
    for epoch in EPOCHS {
        let credentials = Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            session.map(str::to_string),
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
        let ours = token(&credentials, region, &resource, at).unwrap();
        let ours = ours.expose().to_string();
        let theirs = botocore(&resource, session, region, epoch);
        assert_eq!(
            parts(&ours),
            parts(&theirs),
            "\nours:     {ours}\nbotocore: {theirs}"
        );
        assert!(parts(&ours).1.contains_key("X-Amz-Signature"));
    }
}

fn cache(name: &str, user: &str, serverless: bool) -> Resource {
    Resource::ElastiCache {
        cache_name: name.into(),
        user: user.into(),
        serverless,
    }
}

fn rds(host: &str, port: u16, user: &str) -> Resource {
    Resource::Rds {
        host: host.into(),
        port,
        user: user.into(),
    }
}

macro_rules! rows {
    ($($name:ident: $row:expr;)*) => {
        $(
            #[test]
            fn $name() {
                same_as_botocore($row);
            }
        )*
    };
}

rows! {
    elasticache_replication_group: (cache("glimpse-prod", "app", false), None, "eu-west-1");
    elasticache_name_lowercased_and_user_escaped: (cache("Glimpse-Prod", "app user+1@x", false), None, "us-east-1");
    elasticache_with_a_task_role_session_token: (cache("glimpse-prod", "app", false), Some("FwoGZXIvYXdz//token+x="), "eu-west-1");
    elasticache_serverless: (cache("sessions-cache", "app", true), Some("IQoJb3JpZ2luX2VjE/abc=="), "eu-central-1");
    rds_cluster_endpoint: (rds("db.cluster-abc.eu-west-1.rds.amazonaws.com", 5432, "probe"), None, "eu-west-1");
    // A token is signed, never sent: no traffic goes to this address.
    rds_with_a_session_token: (rds("10.0.1.12", 6432, "app_iam"), Some("FwoGZXIvYXdz//token+x="), "eu-west-1");
}
