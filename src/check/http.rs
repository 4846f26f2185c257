//! `kind = "http"`: an HTTP/1.1 GET (e.g. anisette-v3's `/v3/client_info`)
//! with its status, headers, JSON keys or body text checked.

use super::keys::{self, Problem};
use super::Probe;
use crate::expand::Env;
use crate::net::tls::TlsSetup;
use crate::net::url_parts::{self, host_port};
use crate::net::wire::{Heard, Spoke};
use crate::net::BoxedStream;
use crate::outcome::{Failure, Fault, Phase, Reason};
use crate::secret::{Scrubber, Secret};
use bytes::Bytes;
use http::header::{HeaderMap, AUTHORIZATION, HOST, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::path::PathBuf;

/// The suite keys of `kind = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    url: Env<url::Url>,
    expect_status: Option<Vec<u16>>,
    expect_json_keys: Option<Vec<Env<String>>>,
    expect_headers: Option<Vec<Env<String>>>,
    expect_body: Option<Env<String>>,
    ca_file: Option<Env<PathBuf>>,
    #[serde(default)]
    tls_skip_verify: bool,
    tls_server_name: Option<Env<String>>,
}

impl Keys {
    pub fn build(self, scrubber: &mut Scrubber) -> Result<HttpSpec, Problem> {
        let Env(url) = &self.url;
        let scheme = keys::scheme(url, &["http", "https"])?;
        let (host, port) = keys::host_and_port(url, if scheme == "https" { 443 } else { 80 })?;
        let authorization = authorization(url, scrubber)?;
        let expect_status = self.expect_status.unwrap_or_default();
        if expect_status.iter().any(|s| !(100..=599).contains(s)) {
            return Err(Problem::at("expect_status", "status codes are 100 to 599"));
        }
        let tls = keys::tls_setup(
            scheme == "https",
            keys::verify(self.tls_skip_verify),
            self.ca_file.as_ref(),
            self.tls_server_name,
        )?;
        let expect_headers = keys::strings(self.expect_headers);
        if let Some(bad) = expect_headers
            .iter()
            .find(|h| http::HeaderName::try_from(h.as_str()).is_err())
        {
            return Err(Problem::at(
                "expect_headers",
                format!("`{bad}` is not a header name"),
            ));
        }
        Ok(HttpSpec {
            host,
            port,
            path: url_parts::path_and_query(url).to_string(),
            tls,
            authorization,
            expect_status,
            expect_headers,
            expect_json_keys: keys::strings(self.expect_json_keys),
            expect_body: self.expect_body.map(|Env(b)| b),
        })
    }
}

/// The URL's user info as a `Basic` header, both registered as secrets.
fn authorization(url: &url::Url, scrubber: &mut Scrubber) -> Result<Option<Secret>, Problem> {
    let Some((header, password)) = url_parts::basic_authorization(url) else {
        return Ok(None);
    };
    if !password.is_empty() {
        scrubber.add(&Secret::checked(password).map_err(|m| Problem::at("url", m))?);
    }
    let header = Secret::new(header);
    scrubber.add(&header);
    Ok(Some(header))
}

/// Bodies larger than this are cut off: a probe reads a health answer, not a download.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub host: String,
    pub port: u16,
    /// Path and query, e.g. `/v3/client_info`.
    pub path: String,
    /// Present for `https://`.
    pub tls: Option<TlsSetup>,
    /// `Basic ...` from the URL's user info; a secret.
    pub authorization: Option<Secret>,
    pub expect_status: Vec<u16>,
    pub expect_headers: Vec<String>,
    pub expect_json_keys: Vec<String>,
    pub expect_body: Option<String>,
}

impl HttpSpec {
    pub fn target(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!(
            "{scheme}://{}{}",
            host_port(&self.host, self.port),
            self.path
        )
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        let (stream, facts) = probe
            .open(&self.host, self.port, self.tls.as_ref())
            .await?
            .split();
        let response = match probe
            .phase(Phase::Request, self.request(stream, &facts.heard))
            .await
        {
            Ok(response) => response,
            Err(failure) => return Err(probe.tls_required(failure, &facts, &self.host).await),
        };
        let (parts, body) = response.into_parts();
        probe.observe("status", parts.status.as_str());
        let body = probe
            .phase(Phase::Body, async {
                let limited = Limited::new(body, MAX_BODY).collect().await;
                limited
                    .map(|collected| collected.to_bytes())
                    .map_err(|err| {
                        Fault::new(Reason::UnexpectedResponse, format!("reading body: {err}"))
                    })
            })
            .await?;
        self.judge(parts.status, &parts.headers, &body)
            .map_err(|fault| Failure::new(Phase::Body, fault))
    }

    /// Send the GET over `stream` and wait for the response head.
    async fn request(
        &self,
        stream: BoxedStream,
        heard: &Heard,
    ) -> Result<http::Response<hyper::body::Incoming>, Fault> {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| classify(&err, heard))?;
        tokio::spawn(connection);
        let mut request = Request::get(self.path.as_str())
            .header(HOST, host_port(&self.host, self.port))
            .header(USER_AGENT, concat!("vpc-probe/", env!("CARGO_PKG_VERSION")));
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.expose());
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|err| Fault::new(Reason::ProtocolError, format!("building request: {err}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|err| classify(&err, heard))
    }

    /// Status, then headers, then body expectations.
    fn judge(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), Fault> {
        let status_ok = if self.expect_status.is_empty() {
            status.is_success()
        } else {
            self.expect_status.contains(&status.as_u16())
        };
        if !status_ok {
            return Err(Fault::new(
                Reason::UnexpectedResponse,
                format!("HTTP status {status}"),
            ));
        }
        let missing: Vec<&str> = self
            .expect_headers
            .iter()
            .filter(|name| !headers.contains_key(name.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Fault::new(
                Reason::UnexpectedResponse,
                format!("response lacks headers: {}", missing.join(", ")),
            ));
        }
        if !self.expect_json_keys.is_empty() {
            check_json_keys(body, &self.expect_json_keys)?;
        }
        if let Some(text) = &self.expect_body {
            if !String::from_utf8_lossy(body).contains(text.as_str()) {
                return Err(Fault::new(
                    Reason::UnexpectedResponse,
                    format!("body does not contain {text:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// The body must be a JSON object holding every key.
fn check_json_keys(body: &[u8], keys: &[String]) -> Result<(), Fault> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        Fault::new(
            Reason::UnexpectedResponse,
            format!("body is not JSON: {err}"),
        )
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| Fault::new(Reason::UnexpectedResponse, "body is JSON but not an object"))?;
    let missing: Vec<&str> = keys
        .iter()
        .filter(|key| !object.contains_key(key.as_str()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Fault::new(
            Reason::UnexpectedResponse,
            format!("JSON body lacks keys: {}", missing.join(", ")),
        ))
    }
}

/// Bytes an HTTP/1 response starts with.
const HTTP_FIRST: &[u8] = b"H";

/// Classify a hyper error from its predicates first, then from what the
/// bytes above TLS showed.
fn classify(err: &hyper::Error, heard: &Heard) -> Fault {
    let io = crate::net::io_kind(err);
    let hung_up = err.is_incomplete_message()
        || err.is_closed()
        || err.is_canceled()
        || io.is_some_and(crate::net::is_hang_up);
    let (reason, detail) = match heard.spoke(HTTP_FIRST) {
        _ if io == Some(std::io::ErrorKind::InvalidData) => {
            (Reason::ProtocolError, err.to_string())
        }
        _ if err.is_parse() || err.is_parse_status() => (
            Reason::ProtocolError,
            format!("not an HTTP answer: {err}; it began {}", heard.shown()),
        ),
        Spoke::Nothing if hung_up => (
            Reason::ClosedByPeer,
            format!("the server closed the connection without answering: {err}"),
        ),
        Spoke::Other(_) => (
            Reason::ProtocolError,
            format!("not an HTTP answer ({err}); it began {}", heard.shown()),
        ),
        _ if hung_up => (Reason::ClosedByPeer, err.to_string()),
        _ => (Reason::ProtocolError, err.to_string()),
    };
    Fault::new(reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HttpSpec {
        HttpSpec {
            host: "anisette-v3".into(),
            port: 6969,
            path: "/v3/client_info".into(),
            tls: None,
            authorization: None,
            expect_status: vec![],
            expect_headers: vec![],
            expect_json_keys: vec!["client_info".into(), "user_agent".into()],
            expect_body: None,
        }
    }

    #[test]
    fn json_keys_and_status() {
        let ok = br#"{"client_info":"x","user_agent":"y"}"#;
        assert_eq!(spec().judge(StatusCode::OK, &HeaderMap::new(), ok), Ok(()));
        let partial = br#"{"client_info":"x"}"#;
        let fault = spec()
            .judge(StatusCode::OK, &HeaderMap::new(), partial)
            .unwrap_err();
        assert!(fault.detail.contains("user_agent"));
        let unavailable = spec().judge(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), ok);
        assert_eq!(unavailable.unwrap_err().reason, Reason::UnexpectedResponse);
        assert!(spec()
            .judge(StatusCode::OK, &HeaderMap::new(), b"<html>")
            .is_err());
    }

    #[test]
    fn explicit_status_list_overrides_2xx() {
        let spec = HttpSpec {
            expect_status: vec![401],
            expect_json_keys: vec![],
            ..spec()
        };
        assert!(spec
            .judge(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b"")
            .is_ok());
        assert!(spec.judge(StatusCode::OK, &HeaderMap::new(), b"").is_err());
    }
}
