//! Signed calls: requests signed with `aws-sigv4` from the credentials
//! `credentials` found, sent on the probe's reqwest client, to the
//! endpoint the suite, `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`
//! names, else AWS's. What an answer is, `answer` says.

use super::answer::{api_error, judge_json, judge_xml, Judged};
pub use super::answer::{Call, CallError};
use super::xml::Element;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// One describe call's own deadline, inside the run's `explain_timeout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

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

/// An AWS service the probe calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ec2,
    Route53,
    Sts,
    /// ECS (JSON 1.1): the gate's tasks.
    Ecs,
    /// CloudWatch Logs (JSON 1.1): the gate reads its tasks' reports.
    Logs,
    /// Elastic Load Balancing v2 (query): the NLB behind an endpoint service.
    Elb,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Route53 => "route53",
            Service::Sts => "sts",
            Service::Ecs => "ecs",
            Service::Logs => "logs",
            Service::Elb => "elasticloadbalancing",
        }
    }

    /// The IAM prefix of its actions.
    pub fn iam_prefix(self) -> &'static str {
        self.signing_name()
    }

    /// The SDKs' name for it in `AWS_ENDPOINT_URL_<SERVICE>`.
    fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
            Service::Route53 => "AWS_ENDPOINT_URL_ROUTE_53",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::Ecs => "AWS_ENDPOINT_URL_ECS",
            Service::Logs => "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            Service::Elb => "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
        }
    }

    fn endpoint(self, region: &str) -> String {
        match self {
            Service::Route53 => "https://route53.amazonaws.com".to_string(),
            other => format!("https://{}.{region}.amazonaws.com", other.signing_name()),
        }
    }

    /// Route 53 is global: it signs for us-east-1.
    fn signing_region(self, region: &str) -> &str {
        match self {
            Service::Route53 => "us-east-1",
            Service::Ec2 | Service::Sts | Service::Ecs | Service::Logs | Service::Elb => region,
        }
    }

    /// The JSON 1.1 target prefix (`X-Amz-Target: PREFIX.Action`).
    fn json_target(self) -> Option<&'static str> {
        match self {
            Service::Ecs => Some("AmazonEC2ContainerServiceV20141113"),
            Service::Logs => Some("Logs_20140328"),
            Service::Ec2 | Service::Route53 | Service::Sts | Service::Elb => None,
        }
    }
}

/// Where a service's calls go: the suite's `endpoint_url` (one for all, as
/// given in the suite), else the SDKs' `AWS_ENDPOINT_URL_<SERVICE>`, else
/// `AWS_ENDPOINT_URL`, else AWS's own endpoint for the region.
pub fn endpoint_for(service: Service, configured: Option<&str>, region: &str) -> String {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    configured
        .map(str::to_string)
        .or_else(|| from_env(service.endpoint_variable()))
        .or_else(|| from_env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| service.endpoint(region))
        .trim_end_matches('/')
        .to_string()
}

/// One request as it is sent: method, path below the endpoint, headers
/// beside the signed ones, and body.
struct Outgoing<'a> {
    method: http::Method,
    path: &'a str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
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

    /// Another account (an assumed role's) in the same region, endpoint
    /// and reading.
    pub fn other(&self, id: String, credentials: Credentials) -> Account {
        Account {
            id,
            credentials,
            ..self.clone()
        }
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
            Service::Elb => "2015-12-01",
            // REST and JSON services take no query version.
            Service::Route53 | Service::Ecs | Service::Logs => "",
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
        let outgoing = Outgoing {
            method: http::Method::POST,
            path: "/",
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body,
        };
        self.call(service, action, outgoing, |call, response| {
            judge_xml(call, action, response)
        })
        .await
    }

    /// A REST call (Route 53): `path_and_query` below the endpoint.
    pub async fn rest(
        &self,
        service: Service,
        action: &str,
        path_and_query: &str,
    ) -> Result<Element, CallError> {
        let outgoing = Outgoing {
            method: http::Method::GET,
            path: path_and_query,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        self.call(service, action, outgoing, |call, response| {
            judge_xml(call, action, response)
        })
        .await
    }

    /// A JSON 1.1 call (ECS, CloudWatch Logs): `action` with `input`.
    pub async fn json(
        &self,
        service: Service,
        action: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let prefix = service.json_target().unwrap_or_default();
        let outgoing = Outgoing {
            method: http::Method::POST,
            path: "/",
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                ("x-amz-target", format!("{prefix}.{action}")),
            ],
            body: Bytes::from(input.to_string()),
        };
        self.call(service, action, outgoing, judge_json).await
    }

    async fn call<T>(
        &self,
        service: Service,
        action: &str,
        outgoing: Outgoing<'_>,
        judge: impl Fn(&Call, &crate::net::fetch::Response) -> Judged<T>,
    ) -> Result<T, CallError> {
        let base = endpoint_for(service, self.endpoint.as_deref(), &self.region);
        let call = Call {
            action: format!("{}:{action}", service.iam_prefix()),
            endpoint: base.clone(),
        };
        let url = format!("{base}{}", outgoing.path);
        let flight = self.pending.start(&call);
        let answer = self.attempts(&call, service, &url, &outgoing, judge).await;
        flight.answered();
        answer
    }

    /// Send the call, again while AWS throttles or has a transient error.
    async fn attempts<T>(
        &self,
        call: &Call,
        service: Service,
        url: &str,
        outgoing: &Outgoing<'_>,
        judge: impl Fn(&Call, &crate::net::fetch::Response) -> Judged<T>,
    ) -> Result<T, CallError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            let request = self.signed(service, url, outgoing, call)?;
            let response = crate::net::fetch::exchange(request, CALL_TIMEOUT)
                .await
                .map_err(|err| CallError::NoAnswer {
                    call: call.clone(),
                    why: format!("{err:#}"),
                })?;
            match judge(call, &response) {
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
        url: &str,
        outgoing: &Outgoing<'_>,
        call: &Call,
    ) -> Result<http::Request<Bytes>, CallError> {
        let failed = |err: &dyn std::fmt::Display| CallError::Failed {
            call: call.clone(),
            code: "SigningError".into(),
            message: format!("the request could not be signed: {err}"),
        };
        let headers: Vec<(&str, &str)> = outgoing
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
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
            outgoing.method.as_str(),
            url,
            headers.iter().copied(),
            SignableBody::Bytes(&outgoing.body),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        let mut request = http::Request::builder()
            .method(outgoing.method.clone())
            .uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request
            .body(outgoing.body.clone())
            .map_err(|e| failed(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}
