//! The HTTP client for the probe's own plumbing: the ECS task metadata
//! endpoint, the Pushgateway and `healthcheck`. It is reqwest, on the
//! probe's rustls configuration (ring, webpki roots built in). Checks do
//! not use it: they time every phase and keep the raw bytes themselves
//! (see `check/http.rs`).

use super::tls::{self, Verify};
use super::url_parts;
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, StatusCode};
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// Plumbing answers are small; anything bigger is not what we asked for.
const MAX_BODY: usize = 4 << 20;

/// A response: status, what it says its body is, and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    /// The Content-Type header, when there is one.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The Content-Type a response declares.
fn content_type(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get(CONTENT_TYPE)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// One client per process: connection pools and the TLS setup are shared.
fn client() -> anyhow::Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let tls = tls::client_config(Verify::Full, None).map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
        // The metadata endpoint and the Pushgateway are inside the VPC: a
        // proxy from the environment would be the wrong path.
        .no_proxy()
        .user_agent(concat!("vpc-probe/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    Ok(CLIENT.get_or_init(|| client))
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
    let shown = redacted(url);
    let exchange = async {
        let mut request = client()?.request(method, shown.as_str());
        if let Some((header, _)) = url_parts::basic_authorization(url) {
            request = request.header(AUTHORIZATION, header);
        }
        if let Some((content_type, bytes)) = body.filter(|(_, bytes)| !bytes.is_empty()) {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.map_err(|err| err.without_url())?;
        let status = response.status();
        let content_type = content_type(&response);
        let body = read_limited(response).await?;
        anyhow::Ok(Response {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{shown}: no answer within {timeout:?}"))?
        .with_context(|| shown.clone())
}

/// Send a request made elsewhere (signed AWS calls) and read the answer,
/// all within `timeout`; errors name the URL without its query.
pub async fn exchange(
    request: http::Request<Bytes>,
    timeout: Duration,
) -> anyhow::Result<Response> {
    let mut shown = Url::parse(&request.uri().to_string())?;
    shown.set_query(None);
    let shown = redacted(&shown);
    let exchange = async {
        let request = reqwest::Request::try_from(request)?;
        let response = client()?
            .execute(request)
            .await
            .map_err(|err| err.without_url())?;
        let status = response.status();
        let content_type = content_type(&response);
        let body = read_limited(response).await?;
        anyhow::Ok(Response {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{shown}: no answer within {timeout:?}"))?
        .with_context(|| shown.clone())
}

/// The body, refused once it passes [`MAX_BODY`].
async fn read_limited(mut response: reqwest::Response) -> anyhow::Result<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| err.without_url())? {
        if body.len() + chunk.len() > MAX_BODY {
            anyhow::bail!("the answer is larger than {MAX_BODY} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn user_info_is_never_shown() {
        let url = Url::parse("http://ops:s%40cret@gateway:9091/x?y=1").unwrap();
        assert_eq!(redacted(&url), "http://gateway:9091/x?y=1");
    }

    /// A one-shot server that returns what it was sent, and a body.
    async fn echo_once(answer: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = stream.read(&mut request).await.unwrap();
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        (port, served)
    }

    #[tokio::test]
    async fn user_info_becomes_basic_authorization_and_stays_out_of_errors() {
        let (port, served) =
            echo_once("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
        let url = Url::parse(&format!("http://ops:s%40cret@127.0.0.1:{port}/x?y=1")).unwrap();
        let body = Some(("text/plain", Bytes::from_static(b"m 1\n")));
        let response = send(Method::PUT, &url, body, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            (response.status.as_u16(), &response.body[..]),
            (202, &b"ok"[..])
        );
        let request = served.await.unwrap();
        let expected = url_parts::basic_authorization(&url).unwrap().0;
        assert!(request.starts_with("PUT /x?y=1 HTTP/1.1"), "{request}");
        assert!(
            request.contains(&format!("authorization: {expected}")),
            "{request}"
        );
        let closed = Url::parse("http://ops:s%40cret@127.0.0.1:1/").unwrap();
        let err = send(Method::GET, &closed, None, Duration::from_secs(5))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(!text.contains("cret") && !text.contains("ops@"), "{text}");
    }
}
