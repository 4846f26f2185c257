//! What an AWS answer is: the API's own document, a refusal (of the
//! action, or of the credentials), throttling worth another attempt, or
//! something that is not AWS at all. Classified here, from the API's own
//! codes and the answer's shape, for the XML APIs (EC2, STS, Route 53) and
//! the JSON 1.1 ones (ECS, CloudWatch Logs) alike.

use super::xml::Element;

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

/// What one HTTP answer is.
pub(super) enum Judged<T> {
    /// The API's document for the action.
    Answer(T),
    /// Throttling or a server error: worth another attempt.
    Retry,
    Error(CallError),
}

/// Read an answer as the API's: a success must be the action's own XML
/// document (`<ActionResponse>`); an error must carry an AWS error code.
pub(super) fn judge_xml(
    call: &Call,
    action: &str,
    response: &crate::net::fetch::Response,
) -> Judged<Element> {
    let status = response.status.as_u16();
    let parsed = std::str::from_utf8(&response.body)
        .map_err(|err| err.to_string())
        .and_then(Element::parse);
    let not_api = |what: String| not_the_api(call, response, what);
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
    judged_error(call, code, message, status)
}

/// The error a retried answer ends in when the attempts run out.
pub(super) fn api_error(call: &Call, response: &crate::net::fetch::Response) -> CallError {
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

/// Read an answer of a JSON 1.1 API (ECS, CloudWatch Logs): a success is
/// a JSON object; an error carries `__type` (the code, after any `#`).
pub(super) fn judge_json(
    call: &Call,
    response: &crate::net::fetch::Response,
) -> Judged<serde_json::Value> {
    let status = response.status.as_u16();
    let parsed: Result<serde_json::Value, String> =
        serde_json::from_slice(&response.body).map_err(|err| err.to_string());
    let not_api = |what: String| not_the_api(call, response, what);
    let document = match parsed {
        Ok(document) if document.is_object() => document,
        _ if retried(status) => return Judged::Retry,
        Ok(_) => return not_api("JSON that is not an object".into()),
        Err(err) => return not_api(format!("not JSON ({err}){}", first_words(&response.body))),
    };
    if response.status.is_success() {
        return Judged::Answer(document);
    }
    let Some((code, message)) = json_error(&response.body) else {
        return match retried(status) {
            true => Judged::Retry,
            false => not_api("an error without `__type`".into()),
        };
    };
    judged_error(call, code, message, status)
}

/// An answer that is not the API's: the call, the status and content
/// type that came back, and what it was instead.
fn not_the_api<T>(call: &Call, response: &crate::net::fetch::Response, what: String) -> Judged<T> {
    Judged::Error(CallError::NotTheApi {
        call: call.clone(),
        status: response.status.as_u16(),
        content_type: response
            .content_type
            .clone()
            .unwrap_or_else(|| "no content type".into()),
        what,
    })
}

/// A JSON error's code (`__type` after any `#`) and message.
fn json_error(body: &[u8]) -> Option<(String, String)> {
    let document: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = document.get("__type")?.as_str()?;
    let code = kind.rsplit('#').next().unwrap_or(kind).to_string();
    let message = ["message", "Message"]
        .iter()
        .find_map(|key| document.get(*key)?.as_str())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

/// An AWS error code, as the caller meets it.
fn judged_error<T>(call: &Call, code: String, message: String, status: u16) -> Judged<T> {
    match classify(&code, status) {
        ErrorClass::Denied => Judged::Error(CallError::Denied {
            action: call.action.clone(),
            message,
        }),
        ErrorClass::Rejected => Judged::Error(CallError::Rejected {
            call: call.clone(),
            code,
            message,
        }),
        ErrorClass::Throttled => Judged::Retry,
        ErrorClass::Other => Judged::Error(CallError::Failed {
            call: call.clone(),
            code,
            message,
        }),
    }
}

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorClass {
    Denied,
    /// The credentials or the signature, refused by AWS itself.
    Rejected,
    Throttled,
    Other,
}

/// The API's error code, classified: refusals, throttling, the rest.
fn classify(code: &str, status: u16) -> ErrorClass {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedAccess"
        | "AuthorizationError" => ErrorClass::Denied,
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
        | "RequestExpired" => ErrorClass::Rejected,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "PriorRequestNotComplete"
        | "TooManyRequestsException" => ErrorClass::Throttled,
        _ if retried(status) => ErrorClass::Throttled,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified((code, status): (&str, u16), kind: ErrorClass) {
        assert_eq!(classify(code, status), kind);
    }

    crate::cases!(classified {
        access_denied: ("AccessDenied", 403) => ErrorClass::Denied;
        unauthorized_operation: ("UnauthorizedOperation", 403) => ErrorClass::Denied;
        invalid_client_token: ("InvalidClientTokenId", 403) => ErrorClass::Rejected;
        signature_mismatch: ("SignatureDoesNotMatch", 403) => ErrorClass::Rejected;
        expired_token: ("ExpiredToken", 400) => ErrorClass::Rejected;
        auth_failure: ("AuthFailure", 401) => ErrorClass::Rejected;
        throttling: ("Throttling", 400) => ErrorClass::Throttled;
        internal_error: ("InternalError", 500) => ErrorClass::Throttled;
        unavailable: ("Unavailable", 503) => ErrorClass::Throttled;
        invalid_parameter: ("InvalidParameterValue", 400) => ErrorClass::Other;
    });

    fn response(status: u16, content_type: &str, body: &str) -> crate::net::fetch::Response {
        crate::net::fetch::Response {
            status: http::StatusCode::from_u16(status).unwrap(),
            content_type: Some(content_type.to_string()),
            body: bytes::Bytes::from(body.to_string()),
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
            judge_xml(&call(), "DescribeSubnets", &ok),
            Judged::Answer(_)
        ));
        let page = response(200, "text/html", "<html><body>Sign in</body></html>");
        let Judged::Error(err) = judge_xml(&call(), "DescribeSubnets", &page) else {
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
    fn json_errors_are_classified_by_their_type() {
        let denied = response(
            400,
            "application/x-amz-json-1.1",
            r#"{"__type":"com.amazonaws.ecs#AccessDeniedException","message":"User: arn:aws:iam::1:user/ci is not authorized to perform: ecs:RunTask"}"#,
        );
        let Judged::Error(CallError::Denied { message, .. }) = judge_json(&call(), &denied) else {
            panic!("a refusal");
        };
        assert!(message.contains("ecs:RunTask"), "{message}");
        let page = response(200, "text/html", "<html>portal</html>");
        assert!(matches!(
            judge_json(&call(), &page),
            Judged::Error(CallError::NotTheApi { .. })
        ));
        let ok = response(200, "application/x-amz-json-1.1", r#"{"tasks":[]}"#);
        assert!(matches!(judge_json(&call(), &ok), Judged::Answer(_)));
    }

    #[test]
    fn a_refused_token_is_the_credentials() {
        let refused = response(
            403,
            "text/xml",
            "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>",
        );
        let Judged::Error(err) = judge_xml(&call(), "DescribeSubnets", &refused) else {
            panic!("an error");
        };
        assert!(err.credentials_refused(), "{err}");
    }
}
