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

/// A token for `resource` signed now, from the chain's credentials (kept
/// per expiry), in `region` or the environment's; else what is missing.
pub async fn fresh(region: Option<&str>, resource: &Resource) -> Result<Secret, String> {
    let region = self::region(region)
        .ok_or("IAM authentication needs a region: set [aws] region in the suite, or AWS_REGION")?;
    let credentials = super::credentials::cached().await.map_err(|why| {
        format!("IAM authentication: {why}; on ECS, give the task definition a taskRoleArn")
    })?;
    token(&credentials, &region, resource, SystemTime::now())
}

/// The region to sign in: [`super::settings::region`]'s rule (no task
/// zone is known where a connection opens).
pub fn region(configured: Option<&str>) -> Option<String> {
    super::settings::region(configured, None)
}

/// What an ElastiCache endpoint's own name says against the token's cache
/// name and region (`master.<group>.<id>.<code>.cache.amazonaws.com`,
/// `<name>-<id>.serverless.<code>.cache.amazonaws.com`): a mismatch the
/// server would only answer with WRONGPASS. `None` when they agree, or
/// when the host is not such a name (a CNAME, an address).
pub fn mismatch(host: &str, cache_name: &str, region: &str, serverless: bool) -> Option<String> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let cache_at = labels.iter().rposition(|label| *label == "cache")?;
    if labels.get(cache_at + 1..) != Some(&["amazonaws", "com"][..]) || cache_at < 2 {
        return None;
    }
    let code = labels[cache_at - 1];
    let named: &str = match *labels.first()? {
        name if labels.get(1) == Some(&"serverless") => name.rsplit_once('-')?.0,
        "master" | "replica" | "clustercfg" => labels.get(1)?,
        node => node.split("-0").next()?,
    };
    let mut wrong = Vec::new();
    let serverless_endpoint = labels.get(1) == Some(&"serverless");
    if serverless_endpoint != serverless {
        wrong.push(match serverless_endpoint {
            true => "the endpoint is an ElastiCache Serverless cache, the token is not: set serverless = true".to_string(),
            false => "the endpoint is a replication group's, the token is a Serverless cache's: set serverless = false".to_string(),
        });
    }
    if !named.eq_ignore_ascii_case(cache_name) {
        wrong.push(format!(
            "the endpoint belongs to cache `{named}`, the token names `{cache_name}` (cache_name)"
        ));
    }
    if region_code(region).as_deref() != Some(code) {
        wrong.push(format!(
            "the endpoint is in region code `{code}`, the token is signed for {region}"
        ));
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// The short code ElastiCache puts in endpoint names: `eu-west-1` → `euw1`,
/// `ap-southeast-2` → `apse2`, `us-gov-west-1` → `usgw1`.
fn region_code(region: &str) -> Option<String> {
    let parts: Vec<&str> = region.split('-').collect();
    let (number, words) = parts.split_last()?;
    let (area, directions) = words.split_first()?;
    let mut code = area.to_string();
    for word in directions {
        let initials: String = ["north", "south", "east", "west", "central", "gov"]
            .iter()
            .filter(|part| word.contains(*part))
            .map(|part| &part[..1])
            .collect();
        code += &if initials.is_empty() {
            word[..1].to_string()
        } else {
            initials
        };
    }
    Some(code + number)
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

    fn coded(region: &str, code: &str) {
        assert_eq!(region_code(region).as_deref(), Some(code));
    }

    crate::cases!(coded {
        eu_west_1: "eu-west-1" => "euw1";
        us_east_1: "us-east-1" => "use1";
        ap_southeast_2: "ap-southeast-2" => "apse2";
        ap_northeast_1: "ap-northeast-1" => "apne1";
        eu_central_1: "eu-central-1" => "euc1";
        us_gov_west_1: "us-gov-west-1" => "usgw1";
    });

    #[test]
    fn an_endpoint_name_tells_a_wrong_cache_or_region() {
        let primary = "master.glimpse-redis.abc123.use1.cache.amazonaws.com";
        assert_eq!(mismatch(primary, "glimpse-redis", "us-east-1", false), None);
        assert_eq!(mismatch(primary, "Glimpse-Redis", "us-east-1", false), None);
        let both = mismatch(primary, "other", "eu-west-1", false).unwrap();
        assert!(both.contains("belongs to cache `glimpse-redis`"), "{both}");
        assert!(both.contains("region code `use1`, the token is signed for eu-west-1"));
        let serverless = "sessions-x1y2z3.serverless.euw1.cache.amazonaws.com";
        assert_eq!(mismatch(serverless, "sessions", "eu-west-1", true), None);
        assert!(mismatch(serverless, "session", "eu-west-1", true).is_some());
        let kind = mismatch(serverless, "sessions", "eu-west-1", false).unwrap();
        assert!(kind.contains("set serverless = true"), "{kind}");
        let kind = mismatch(primary, "glimpse-redis", "us-east-1", true).unwrap();
        assert!(kind.contains("set serverless = false"), "{kind}");
        assert_eq!(
            mismatch("redis.glimpse.internal", "x", "eu-west-1", false),
            None
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
