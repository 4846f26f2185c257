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

/// Why a call gave no answer. Each is what it is: only AWS's own refusal
/// of the credentials is a credentials problem; an endpoint that is
/// silent, broken or not AWS at all is named with the call it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The API refused the action (AccessDenied, UnauthorizedOperation).
    Denied { action: String, message: String },
    /// AWS did not accept the credentials or the signature
    /// (InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken, ...).
    Rejected {
        call: Call,
        code: String,
        message: String,
    },
    /// No answer: refused, unreachable, timed out, or a body that never
    /// ended within the limits.
    NoAnswer { call: Call, why: String },
    /// An answer that is not the API's document: a proxy's or a portal's
    /// page, bytes that are not XML, an error without a code.
    NotTheApi {
        call: Call,
        status: u16,
        content_type: String,
        what: String,
    },
    /// The API's own error, other than a refusal (after retries when it
    /// was throttling or a server error).
    Failed {
        call: Call,
        code: String,
        message: String,
    },
}

/// One API call: the action (`ec2:DescribeSubnets`) and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub action: String,
    pub endpoint: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Denied { action, message } => write!(f, "{action} denied: {message}"),
            CallError::Rejected {
                call,
                code,
                message,
            } => {
                write!(f, "{} at {}: {code}: {message}", call.action, call.endpoint)
            }
            CallError::NoAnswer { call, why } => {
                write!(f, "{} at {}: no answer: {why}", call.action, call.endpoint)
            }
            CallError::NotTheApi {
                call,
                status,
                content_type,
                what,
            } => write!(
                f,
                "{} at {}: the answer is not AWS's (HTTP {status}, {content_type}): {what}",
                call.action, call.endpoint
            ),
            CallError::Failed {
                call,
                code,
                message,
            } => {
                write!(f, "{} at {}: {code}: {message}", call.action, call.endpoint)
            }
        }
    }
}

impl CallError {
    /// Whether AWS itself refused the credentials (not an endpoint that
    /// never answered as AWS).
    pub fn credentials_refused(&self) -> bool {
        matches!(self, CallError::Rejected { .. })
    }
}

/// The credentials of one account and where its calls go.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    credentials: Credentials,
    pub region: String,
    endpoint: Option<String>,
    /// The reading's calls in flight, shared by its accounts.
    pub(super) pending: Pending,
}

/// The calls of one reading still waiting for an answer, so a reading cut
/// short by `explain_timeout` names the endpoint and the call it waited for.
#[derive(Debug, Clone, Default)]
pub struct Pending(std::sync::Arc<std::sync::Mutex<Vec<(u64, Call)>>>);

/// A call in flight; it leaves [`Pending`] once answered. A call cut by
/// the reading's deadline stays, so the deadline's line can name it.
struct InFlight {
    pending: Pending,
    id: u64,
}

impl InFlight {
    fn answered(self) {
        self.pending.lock().retain(|(id, _)| *id != self.id);
    }
}

impl Pending {
    fn start(&self, call: &Call) -> InFlight {
        let id = fastrand::u64(..);
        self.lock().push((id, call.clone()));
        InFlight {
            pending: self.clone(),
            id,
        }
    }

    /// The calls still waiting, oldest first.
    pub fn waiting(&self) -> Vec<Call> {
        self.lock().iter().map(|(_, call)| call.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Call)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        pending: Pending,
    ) -> Account {
        Account {
            id,
            credentials,
            region,
            endpoint,
            pending,
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
        let call = Call {
            action: format!("{}:{action}", service.iam_prefix()),
            endpoint: base.trim_end_matches('/').to_string(),
        };
        let flight = self.pending.start(&call);
        let answer = self
            .attempts(&call, service, action, &method, &url, body)
            .await;
        flight.answered();
        answer
    }

    /// Send the call, again while AWS throttles or has a transient error.
    async fn attempts(
        &self,
        call: &Call,
        service: Service,
        action: &str,
        method: &http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<Element, CallError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            let request = self.signed(service, method, url, body.clone(), call)?;
            let response = crate::net::fetch::exchange(request, CALL_TIMEOUT)
                .await
                .map_err(|err| CallError::NoAnswer {
                    call: call.clone(),
                    why: format!("{err:#}"),
                })?;
            match judge(call, action, &response) {
                Judged::Answer(document) => return Ok(document),
                Judged::Retry if attempt < 4 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Judged::Retry => return Err(api_error(call, &response)),
                Judged::Error(err) => return Err(err),
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
        call: &Call,
    ) -> Result<http::Request<Bytes>, CallError> {
        let failed = |err: &dyn std::fmt::Display| CallError::Failed {
            call: call.clone(),
            code: "SigningError".into(),
            message: format!("the request could not be signed: {err}"),
        };
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

/// What one HTTP answer is.
enum Judged {
    /// The API's document for the action.
    Answer(Element),
    /// Throttling or a server error: worth another attempt.
    Retry,
    Error(CallError),
}

/// Read an answer as the API's: a success must be the action's own XML
/// document (`<ActionResponse>`); an error must carry an AWS error code.
fn judge(call: &Call, action: &str, response: &crate::net::fetch::Response) -> Judged {
    let status = response.status.as_u16();
    let parsed = std::str::from_utf8(&response.body)
        .map_err(|err| err.to_string())
        .and_then(Element::parse);
    let not_api = |what: String| {
        Judged::Error(CallError::NotTheApi {
            call: call.clone(),
            status,
            content_type: response
                .content_type
                .clone()
                .unwrap_or_else(|| "no content type".into()),
            what,
        })
    };
    let document = match parsed {
        Ok(document) => document,
        Err(_) if retried(status) => return Judged::Retry,
        Err(err) => return not_api(format!("not XML ({err}){}", first_words(&response.body))),
    };
    if response.status.is_success() {
        let expected = format!("{action}Response");
        return match document.name == expected {
            true => Judged::Answer(document),
            false => not_api(format!("<{}> where <{expected}> belongs", document.name)),
        };
    }
    let (code, message) = document.error();
    if code.is_empty() {
        return match retried(status) {
            true => Judged::Retry,
            false => not_api(format!("<{}> without an AWS error code", document.name)),
        };
    }
    match classify(&code, status) {
        Kind::Denied => Judged::Error(CallError::Denied {
            action: call.action.clone(),
            message,
        }),
        Kind::Rejected => Judged::Error(CallError::Rejected {
            call: call.clone(),
            code,
            message,
        }),
        Kind::Throttled => Judged::Retry,
        Kind::Other => Judged::Error(CallError::Failed {
            call: call.clone(),
            code,
            message,
        }),
    }
}

/// The error a retried answer ends in when the attempts run out.
fn api_error(call: &Call, response: &crate::net::fetch::Response) -> CallError {
    let text = String::from_utf8_lossy(&response.body);
    let (code, message) = Element::parse(&text).map(|d| d.error()).unwrap_or_default();
    CallError::Failed {
        call: call.clone(),
        code: match code.is_empty() {
            true => format!("HTTP {}", response.status.as_u16()),
            false => code,
        },
        message: match message.is_empty() {
            true => format!(
                "still failing after 5 attempts{}",
                first_words(&response.body)
            ),
            false => format!("{message} (5 attempts)"),
        },
    }
}

/// Statuses AWS's SDKs try again: throttling and transient server errors.
fn retried(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The start of a body that is not what was asked for, as one short
/// printable line (a page's title shows what answered instead).
fn first_words(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.is_empty() {
        true => String::new(),
        false => format!(": begins \"{}\"", line.chars().take(80).collect::<String>()),
    }
}

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Denied,
    /// The credentials or the signature, refused by AWS itself.
    Rejected,
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
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId"
        | "AuthFailure"
        | "UnrecognizedClientException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidToken"
        | "RequestExpired" => Kind::Rejected,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "PriorRequestNotComplete"
        | "TooManyRequestsException" => Kind::Throttled,
        _ if retried(status) => Kind::Throttled,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified((code, status): (&str, u16), kind: Kind) {
        assert_eq!(classify(code, status), kind);
    }

    crate::cases!(classified {
        access_denied: ("AccessDenied", 403) => Kind::Denied;
        unauthorized_operation: ("UnauthorizedOperation", 403) => Kind::Denied;
        invalid_client_token: ("InvalidClientTokenId", 403) => Kind::Rejected;
        signature_mismatch: ("SignatureDoesNotMatch", 403) => Kind::Rejected;
        expired_token: ("ExpiredToken", 400) => Kind::Rejected;
        auth_failure: ("AuthFailure", 401) => Kind::Rejected;
        throttling: ("Throttling", 400) => Kind::Throttled;
        internal_error: ("InternalError", 500) => Kind::Throttled;
        unavailable: ("Unavailable", 503) => Kind::Throttled;
        invalid_parameter: ("InvalidParameterValue", 400) => Kind::Other;
    });

    fn response(status: u16, content_type: &str, body: &str) -> crate::net::fetch::Response {
        crate::net::fetch::Response {
            status: http::StatusCode::from_u16(status).unwrap(),
            content_type: Some(content_type.to_string()),
            body: Bytes::from(body.to_string()),
        }
    }

    fn call() -> Call {
        Call {
            action: "ec2:DescribeSubnets".into(),
            endpoint: "https://ec2.eu-west-1.amazonaws.com".into(),
        }
    }

    #[test]
    fn only_the_actions_own_document_is_an_answer() {
        let ok = response(
            200,
            "text/xml",
            "<DescribeSubnetsResponse><subnetSet/></DescribeSubnetsResponse>",
        );
        assert!(matches!(
            judge(&call(), "DescribeSubnets", &ok),
            Judged::Answer(_)
        ));
        let page = response(200, "text/html", "<html><body>Sign in</body></html>");
        let Judged::Error(err) = judge(&call(), "DescribeSubnets", &page) else {
            panic!("a page is no answer");
        };
        let line = err.to_string();
        assert!(
            line.contains("ec2:DescribeSubnets at https://ec2.eu-west-1.amazonaws.com"),
            "{line}"
        );
        assert!(
            line.contains("HTTP 200, text/html") && line.contains("<html>"),
            "{line}"
        );
        assert!(!err.credentials_refused());
    }

    #[test]
    fn a_refused_token_is_the_credentials() {
        let refused = response(
            403,
            "text/xml",
            "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>",
        );
        let Judged::Error(err) = judge(&call(), "DescribeSubnets", &refused) else {
            panic!("an error");
        };
        assert!(err.credentials_refused(), "{err}");
    }
}
