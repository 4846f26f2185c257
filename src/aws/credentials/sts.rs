//! Assuming a role with the probe's own signed STS call: for the database
//! and network accounts' read-only roles, and for a profile's `role_arn`.

use crate::aws::client::{Account, Call, CallError, Pending, Service};
use aws_credential_types::Credentials;

/// Credentials of `role` for this run (15 minutes, the shortest STS gives).
pub async fn assume(
    app: &Account,
    role: &str,
    external_id: Option<&str>,
    provider: &'static str,
) -> Result<Credentials, CallError> {
    let mut params = vec![
        ("RoleArn".to_string(), role.to_string()),
        ("RoleSessionName".to_string(), "vpc-probe".to_string()),
        ("DurationSeconds".to_string(), "900".to_string()),
    ];
    if let Some(id) = external_id {
        params.push(("ExternalId".into(), id.into()));
    }
    let answer = app.query(Service::Sts, "AssumeRole", &params).await?;
    let field = |name: &str| {
        answer
            .find(name)
            .map(|e| e.text.clone())
            .ok_or_else(|| CallError::Failed {
                call: Call {
                    action: "sts:AssumeRole".into(),
                    endpoint: String::new(),
                },
                code: "IncompleteAnswer".into(),
                message: format!("no {name} in the answer"),
            })
    };
    Ok(Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?),
        answer
            .find("Expiration")
            .and_then(|e| super::expiry(&e.text)),
        provider,
    ))
}

/// A profile's role, assumed from `source` in `region`.
pub async fn assume_role(
    source: Credentials,
    region: String,
    role: &str,
    external_id: Option<&str>,
    provider: &'static str,
) -> Result<Credentials, String> {
    let account = Account::new(String::new(), source, region, None, Pending::default());
    assume(&account, role, external_id, provider)
        .await
        .map_err(|err| err.to_string())
}
