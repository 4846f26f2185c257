//! Credentials, region and signed calls: the standard credential chain of
//! `aws-config` (environment, profile, ECS container credentials, instance
//! metadata only on an EC2 host), looked up once and bounded; requests
//! signed with `aws-sigv4` and sent on the probe's reqwest client. Errors
//! are classified here, from the API's own codes: a refusal names the action.

use super::xml::Element;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// Looking for credentials never takes longer than this, once per run.
pub const CREDENTIALS_LOOKUP: Duration = Duration::from_secs(2);

/// One describe call's own deadline, inside the run's `explain_timeout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The API refused the action (AccessDenied, UnauthorizedOperation).
    Denied { action: String, message: String },
    /// Throttled past the deadline, unreachable, or an answer we cannot read.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Denied { action, message } => write!(f, "{action} denied: {message}"),
            CallError::Failed(why) => f.write_str(why),
        }
    }
}

/// The credentials of one account and where its calls go.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    credentials: Credentials,
    pub region: String,
    endpoint: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({}, {})", self.id, self.region)
    }
}

/// An AWS service's query or REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ec2,
    Route53,
    Sts,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Route53 => "route53",
            Service::Sts => "sts",
        }
    }

    /// The IAM prefix of its actions.
    pub fn iam_prefix(self) -> &'static str {
        self.signing_name()
    }

    fn endpoint(self, region: &str) -> String {
        match self {
            Service::Ec2 => format!("https://ec2.{region}.amazonaws.com"),
            Service::Route53 => "https://route53.amazonaws.com".to_string(),
            Service::Sts => format!("https://sts.{region}.amazonaws.com"),
        }
    }

    /// Route 53 is global: it signs for us-east-1.
    fn signing_region(self, region: &str) -> &str {
        match self {
            Service::Route53 => "us-east-1",
            Service::Ec2 | Service::Sts => region,
        }
    }
}

/// The standard chain without a reach for instance metadata off EC2.
fn chain() -> CredentialsProviderChain {
    let config = ProviderConfig::without_region().with_http_client(super::http::client());
    let profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&config)
        .build();
    let ecs = aws_config::ecs::EcsCredentialsProvider::builder()
        .configure(&config)
        .build();
    let chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", profile)
    .or_else("EcsContainer", ecs);
    if on_ec2() {
        let imds = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .configure(&config)
            .build();
        return chain.or_else("Ec2InstanceMetadata", imds);
    }
    chain
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

/// The chain's credentials, or one line saying why there are none.
pub async fn credentials() -> Result<Credentials, String> {
    match tokio::time::timeout(CREDENTIALS_LOOKUP, chain().provide_credentials()).await {
        Ok(Ok(credentials)) => Ok(credentials),
        Ok(Err(err)) => Err(format!(
            "no AWS credentials (environment, profile, ECS container credentials{}): {}",
            if on_ec2() { ", instance metadata" } else { "" },
            error_chain(&err)
        )),
        Err(_) => Err(format!("no AWS credentials within {CREDENTIALS_LOOKUP:?}")),
    }
}

/// The chain's credentials, kept while they have more than five minutes
/// left: an IAM token is made for every connection, the lookup (an HTTP
/// call to the ECS credentials endpoint) once per expiry.
pub async fn cached_credentials() -> Result<Credentials, String> {
    static KEPT: tokio::sync::Mutex<Option<Credentials>> = tokio::sync::Mutex::const_new(None);
    let mut kept = KEPT.lock().await;
    let fresh_enough = |c: &Credentials| {
        c.expiry()
            .is_none_or(|at| at > SystemTime::now() + Duration::from_secs(300))
    };
    if let Some(credentials) = kept.as_ref().filter(|c| fresh_enough(c)) {
        return Ok(credentials.clone());
    }
    let credentials = credentials().await?;
    *kept = Some(credentials.clone());
    Ok(credentials)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

impl Account {
    pub fn new(
        id: String,
        credentials: Credentials,
        region: String,
        endpoint: Option<String>,
    ) -> Account {
        Account {
            id,
            credentials,
            region,
            endpoint,
        }
    }

    /// The same credentials, known to act in account `id`.
    pub fn named(self, id: String) -> Account {
        Account { id, ..self }
    }

    /// A query-API call (EC2, STS): `Action` and its parameters, form-encoded.
    pub async fn query(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Element, CallError> {
        let version = match service {
            Service::Ec2 => "2016-11-15",
            Service::Sts => "2011-06-15",
            Service::Route53 => "2013-04-01",
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action)
                .append_pair("Version", version);
            for (key, value) in params {
                form.append_pair(key, value);
            }
            Bytes::from(form.finish())
        };
        self.call(service, action, http::Method::POST, "/", body)
            .await
    }

    /// A REST call (Route 53): `path_and_query` below the endpoint.
    pub async fn rest(
        &self,
        service: Service,
        action: &str,
        path_and_query: &str,
    ) -> Result<Element, CallError> {
        self.call(
            service,
            action,
            http::Method::GET,
            path_and_query,
            Bytes::new(),
        )
        .await
    }

    async fn call(
        &self,
        service: Service,
        action: &str,
        method: http::Method,
        path: &str,
        body: Bytes,
    ) -> Result<Element, CallError> {
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| service.endpoint(&self.region));
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            let request = self.signed(service, &method, &url, body.clone())?;
            let response = crate::net::fetch::exchange(request, CALL_TIMEOUT)
                .await
                .map_err(|err| {
                    CallError::Failed(format!("{}:{action}: {err:#}", service.iam_prefix()))
                })?;
            let text = String::from_utf8_lossy(&response.body).into_owned();
            let document = Element::parse(&text).map_err(|err| {
                CallError::Failed(format!(
                    "{}:{action}: unreadable answer: {err}",
                    service.iam_prefix()
                ))
            })?;
            if response.status.is_success() {
                return Ok(document);
            }
            let (code, message) = document.error();
            match classify(&code, response.status.as_u16()) {
                Kind::Denied => {
                    return Err(CallError::Denied {
                        action: format!("{}:{action}", service.iam_prefix()),
                        message,
                    })
                }
                Kind::Throttled if attempt < 4 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                _ => {
                    return Err(CallError::Failed(format!(
                        "{}:{action}: {code}: {message}",
                        service.iam_prefix()
                    )))
                }
            }
        }
        unreachable!("the loop returns")
    }

    fn signed(
        &self,
        service: Service,
        method: &http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, CallError> {
        let failed = |err: &dyn std::fmt::Display| CallError::Failed(format!("signing: {err}"));
        let content_type =
            (!body.is_empty()).then_some("application/x-www-form-urlencoded; charset=utf-8");
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("content-type", c))
            .into_iter()
            .collect();
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(service.signing_region(&self.region))
            .name(service.signing_name())
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        let mut request = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request.body(body).map_err(|e| failed(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Denied,
    Throttled,
    Other,
}

/// The API's error code, classified: refusals, throttling, the rest.
fn classify(code: &str, status: u16) -> Kind {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedAccess"
        | "AuthorizationError" => Kind::Denied,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "PriorRequestNotComplete"
        | "TooManyRequestsException" => Kind::Throttled,
        _ if status == 503 || status == 429 => Kind::Throttled,
        _ => Kind::Other,
    }
}
