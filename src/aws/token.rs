//! IAM authentication tokens: a SigV4 query-presigned `connect` request,
//! signed with `aws-sigv4` from the credential chain's credentials and sent
//! as the password. ElastiCache (`<cache name>/?Action=connect&User=<user>`,
//! plus `&ResourceType=ServerlessCache` for Serverless; service
//! `elasticache`) and RDS / Aurora (`<host>:<port>/?Action=connect&DBUser=
//! <user>`; service `rds-db`). Valid 900 s; made fresh for each connection;
//! a [`Secret`], so it never prints.

use crate::secret::Secret;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};

/// How long a token is good for: what ElastiCache and RDS accept at most.
pub const VALID_FOR: Duration = Duration::from_secs(900);

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// An ElastiCache replication group or Serverless cache, for `user`.
    ElastiCache {
        cache_name: String,
        user: String,
        serverless: bool,
    },
    /// An RDS or Aurora endpoint, for database user `user`.
    Rds {
        host: String,
        port: u16,
        user: String,
    },
}

impl Resource {
    /// The service the token is signed for.
    fn service(&self) -> &'static str {
        match self {
            Resource::ElastiCache { .. } => "elasticache",
            Resource::Rds { .. } => "rds-db",
        }
    }

    /// The unsigned request: the host and the `connect` parameters.
    fn url(&self) -> String {
        let encode =
            |text: &str| percent_encoding::utf8_percent_encode(text, QUERY_VALUE).to_string();
        match self {
            Resource::ElastiCache {
                cache_name,
                user,
                serverless,
            } => {
                let kind = if *serverless {
                    "&ResourceType=ServerlessCache"
                } else {
                    ""
                };
                format!(
                    "https://{}/?Action=connect&User={}{kind}",
                    cache_name.to_lowercase(),
                    encode(user)
                )
            }
            Resource::Rds { host, port, user } => {
                format!(
                    "https://{host}:{port}/?Action=connect&DBUser={}",
                    encode(user)
                )
            }
        }
    }
}

/// What SigV4 leaves unencoded in a query value: RFC 3986's unreserved.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The token for `resource`, signed at `at` in `region`: the presigned URL
/// without its scheme, as ElastiCache and RDS expect it.
pub fn token(
    credentials: &Credentials,
    region: &str,
    resource: &Resource,
    at: SystemTime,
) -> Result<Secret, String> {
    let url = resource.url();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(VALID_FOR);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(resource.service())
        .time(at)
        .settings(settings)
        .build()
        .map_err(|err| format!("signing the token: {err}"))?
        .into();
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|err| format!("signing the token: {err}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|err| format!("signing the token: {err}"))?
        .into_parts();
    let mut signed = url::Url::parse(&url).map_err(|err| err.to_string())?;
    {
        let mut query = signed.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
    }
    let presigned = signed.as_str();
    let token = presigned.strip_prefix("https://").unwrap_or(presigned);
    Secret::checked(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_string),
            None,
            "test",
        )
    }

    const AT: u64 = 1_764_547_200; // 2025-12-01T00:00:00Z

    fn made(resource: &Resource, session: Option<&str>) -> String {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        token(&credentials(session), "eu-west-1", resource, at)
            .unwrap()
            .expose()
            .to_string()
    }

    #[test]
    fn an_elasticache_token_is_the_presigned_connect_without_a_scheme() {
        let resource = Resource::ElastiCache {
            cache_name: "Glimpse-Prod".into(),
            user: "app user".into(),
            serverless: false,
        };
        let token = made(&resource, None);
        assert!(
            token.starts_with(
                "glimpse-prod/?Action=connect&User=app%20user&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
            ),
            "{token}"
        );
        assert!(token.contains(
            "X-Amz-Credential=AKIDEXAMPLE%2F20251201%2Feu-west-1%2Felasticache%2Faws4_request"
        ));
        assert!(token.contains("&X-Amz-Date=20251201T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="));
        assert!(!token.contains("ResourceType"));
    }

    #[test]
    fn serverless_and_session_tokens_are_signed_in() {
        let resource = Resource::ElastiCache {
            cache_name: "sessions".into(),
            user: "app".into(),
            serverless: true,
        };
        let token = made(&resource, Some("FwoGZXIvYXdz//token"));
        assert!(
            token.starts_with("sessions/?Action=connect&User=app&ResourceType=ServerlessCache&")
        );
        assert!(
            token.contains("X-Amz-Security-Token=FwoGZXIvYXdz%2F%2Ftoken"),
            "{token}"
        );
    }

    #[test]
    fn an_rds_token_names_host_port_and_database_user() {
        let resource = Resource::Rds {
            host: "db.cluster-abc.eu-west-1.rds.amazonaws.com".into(),
            port: 5432,
            user: "probe".into(),
        };
        let token = made(&resource, None);
        assert!(token.starts_with(
            "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=probe&"
        ));
        assert!(token.contains("%2Frds-db%2Faws4_request"));
    }
}
