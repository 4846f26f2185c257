//! A small HTTP/1.1 client for the probe's own plumbing: the ECS task
//! metadata endpoint, the Pushgateway and `healthcheck`. Checks do not use
//! it; they time every phase themselves (see `check/http.rs`).

use super::tls::{self, Verify};
use super::url_parts;
use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;
use url::{Position, Url};

/// Plumbing answers are small; anything bigger is not what we asked for.
const MAX_BODY: usize = 4 << 20;

/// A response: status and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Send one request to `url` and read the answer, all within `timeout`.
/// User info in the URL becomes Basic authorization and never appears in
/// an error (errors name [`redacted`] URLs only).
pub async fn send(
    method: Method,
    url: &Url,
    body: Option<(&'static str, Bytes)>,
    timeout: Duration,
) -> anyhow::Result<Response> {
    tokio::time::timeout(timeout, exchange(method, url, body))
        .await
        .with_context(|| format!("{}: no answer within {timeout:?}", redacted(url)))?
        .with_context(|| redacted(url))
}

async fn exchange(
    method: Method,
    url: &Url,
    body: Option<(&'static str, Bytes)>,
) -> anyhow::Result<Response> {
    let host = url.host_str().context("the URL has no host")?;
    let port = url.port_or_known_default().context("the URL has no port")?;
    let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .context("connect")?;
    let stream: super::BoxedStream = match url.scheme() {
        "http" => Box::new(tcp),
        "https" => {
            let config = tls::client_config(Verify::Full, None).map_err(anyhow::Error::msg)?;
            let stream = tls::handshake(tcp, host, config)
                .await
                .map_err(|fault| anyhow::anyhow!(fault.detail))?;
            Box::new(stream)
        }
        other => bail!("unsupported scheme {other}"),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(connection);
    let request = build(method, url, body)?;
    let response = sender.send_request(request).await.context("request")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|err| anyhow::anyhow!("reading the body: {err}"))?
        .to_bytes();
    Ok(Response { status, body })
}

fn build(
    method: Method,
    url: &Url,
    body: Option<(&'static str, Bytes)>,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let mut request = Request::builder()
        .method(method)
        .uri(url_parts::path_and_query(url))
        .header(HOST, authority)
        .header(USER_AGENT, concat!("vpc-probe/", env!("CARGO_PKG_VERSION")));
    if let Some((header, _)) = url_parts::basic_authorization(url) {
        request = request.header(AUTHORIZATION, header);
    }
    let (content_type, bytes) = body.unwrap_or(("text/plain", Bytes::new()));
    if !bytes.is_empty() {
        request = request.header(CONTENT_TYPE, content_type);
    }
    Ok(request.body(Full::new(bytes))?)
}

/// The URL without user info, safe to print.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_never_shown_and_becomes_the_authorization_header() {
        let url = Url::parse("http://ops:s%40cret@gateway:9091/x?y=1").unwrap();
        assert_eq!(redacted(&url), "http://gateway:9091/x?y=1");
        let request = build(Method::PUT, &url, None).unwrap();
        assert_eq!(request.uri(), "/x?y=1");
        assert_eq!(request.headers()[HOST], "gateway:9091");
        let expected = url_parts::basic_authorization(&url).unwrap().0;
        assert_eq!(request.headers()[AUTHORIZATION], expected.as_str());
    }
}
