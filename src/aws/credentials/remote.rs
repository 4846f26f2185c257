//! Credentials answered over HTTP: the ECS container endpoint (a task
//! role) and EC2 instance metadata (IMDSv2, an instance profile). Both
//! answer the same JSON: `AccessKeyId`, `SecretAccessKey`, `Token`,
//! `Expiration`.

use super::{expiry, var, Credentials, Found};
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;

/// Each exchange with either endpoint, at most.
const EXCHANGE: Duration = Duration::from_secs(2);

/// ECS's own address for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";

/// The task role's credentials, when ECS set up the variables.
pub async fn container() -> Found {
    let url = match (
        var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(relative), _) => format!("{ECS_HOST}{relative}"),
        (None, Some(full)) => allowed_full_uri(&full)?,
        (None, None) => return Ok(None),
    };
    let mut request = http::Request::get(&url);
    if let Some(token) = authorization()? {
        request = request.header("authorization", token);
    }
    let body = answer(request, "the ECS container credentials endpoint").await?;
    credentials(&body, "ecs-container").map(Some)
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` may name only a host the SDKs
/// allow: loopback, ECS's or EKS's link-local endpoints, or any over https.
fn allowed_full_uri(full: &str) -> Result<String, String> {
    let url = url::Url::parse(full)
        .map_err(|err| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI is no URL: {err}"))?;
    let allowed = match url.host() {
        _ if url.scheme() == "https" => true,
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip.octets() == [169, 254, 170, 2]
                || ip.octets() == [169, 254, 170, 23]
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.segments()[..4] == [0xfd00, 0xec2, 0, 0]
        }
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if allowed {
        Ok(full.to_string())
    } else {
        Err("AWS_CONTAINER_CREDENTIALS_FULL_URI names a host that is neither loopback nor ECS's or EKS's endpoint, over http".into())
    }
}

/// The container endpoint's authorization: the token file's content, else
/// the token variable.
fn authorization() -> Result<Option<String>, String> {
    if let Some(path) = var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let token = std::fs::read_to_string(&path).map_err(|err| {
            format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path} cannot be read: {err}")
        })?;
        return Ok(Some(token.trim().to_string()));
    }
    Ok(var("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
}

/// The instance profile's credentials through IMDSv2: a session token,
/// the role's name, then its credentials.
pub async fn instance_metadata() -> Found {
    let base =
        var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
    let base = base.trim_end_matches('/');
    let what = "instance metadata";
    let token = http::Request::put(format!("{base}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600");
    let token = text(answer(token, what).await?)?;
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let ask =
        |url: String| http::Request::get(url).header("x-aws-ec2-metadata-token", token.as_str());
    let roles = text(answer(ask(path.clone()), what).await?)?;
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err("instance metadata: the instance has no instance profile".into());
    };
    let body = answer(ask(format!("{path}{role}")), what).await?;
    credentials(&body, "ec2-instance-metadata").map(Some)
}

/// A 200 answer's body; any other status is the line's reason (the body is
/// not quoted: it may carry what it should not).
async fn answer(request: http::request::Builder, what: &str) -> Result<Bytes, String> {
    let request = request
        .body(Bytes::new())
        .map_err(|err| format!("{what}: {err}"))?;
    let answer = crate::net::fetch::exchange(request, EXCHANGE)
        .await
        .map_err(|err| format!("{what}: {err:#}"))?;
    if !answer.status.is_success() {
        return Err(format!("{what} answered {}", answer.status));
    }
    Ok(answer.body)
}

fn text(body: Bytes) -> Result<String, String> {
    String::from_utf8(body.to_vec()).map_err(|_| "instance metadata answered no text".into())
}

/// The endpoints' JSON.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
    /// Instance metadata's verdict; "Success" when it has credentials.
    code: Option<String>,
}

/// The credentials in an endpoint's answer.
fn credentials(body: &[u8], provider: &'static str) -> Result<Credentials, String> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|err| format!("{provider}: the answer is not credentials ({err})"))?;
    if let Some(code) = answer.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!("{provider}: the answer's Code is {code}"));
    }
    let expiry = match answer.expiration.as_deref() {
        Some(at) => Some(
            expiry(at).ok_or_else(|| format!("{provider}: Expiration {at} is no RFC 3339 time"))?,
        ),
        None => None,
    };
    Ok(Credentials::new(
        answer.access_key_id,
        answer.secret_access_key,
        answer.token,
        expiry,
        provider,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn an_endpoints_answer_is_read_with_its_expiry() {
        let body = br#"{"RoleArn":"arn:r","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2099-01-01T00:00:00Z"}"#;
        let found = credentials(body, "ecs-container").unwrap();
        assert_eq!(found.access_key_id(), "ASIA1");
        assert_eq!(found.session_token(), Some("t"));
        let year_2099 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_070_908_800);
        assert_eq!(found.expiry(), Some(year_2099));
    }

    #[test]
    fn what_is_not_credentials_is_refused_without_quoting_it() {
        for (body, says) in [
            (&br#"{"Code":"AssumeRoleUnauthorizedAccess","AccessKeyId":"","SecretAccessKey":"secret-1"}"#[..], "Code is AssumeRoleUnauthorizedAccess"),
            (br"<html>secret-2</html>", "not credentials"),
            (br#"{"AccessKeyId":"a","SecretAccessKey":"secret-3","Expiration":"soon"}"#, "no RFC 3339 time"),
        ] {
            let why = credentials(body, "p").unwrap_err();
            assert!(why.contains(says), "{why}");
            assert!(!why.contains("secret-"), "{why}");
        }
    }

    #[test]
    fn a_full_uri_names_only_hosts_the_sdks_allow() {
        for (uri, allowed) in [
            ("http://127.0.0.1:8080/creds", true),
            ("http://169.254.170.2/v2/credentials", true),
            ("http://169.254.170.23/v1/credentials", true),
            ("http://[fd00:ec2::23]/v1/credentials", true),
            ("http://localhost/creds", true),
            ("https://creds.example.com/", true),
            ("http://10.0.0.5/creds", false),
            ("http://creds.example.com/", false),
        ] {
            assert_eq!(allowed_full_uri(uri).is_ok(), allowed, "{uri}");
        }
    }
}
