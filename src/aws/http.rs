//! The credential providers' HTTP client (ECS container credentials,
//! instance metadata, STS for profiles) is the probe's own reqwest client:
//! one HTTP stack and one rustls configuration in the binary. The SDK's
//! default client would bring a second one (hyper-rustls, h2, native
//! roots) and push the image past its 10 MB limit (BENCHMARKS.md).

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use std::time::Duration;

/// Each exchange of a credential provider, at most.
const EXCHANGE: Duration = Duration::from_secs(2);

/// The client the credential chain is configured with.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Reqwest)
}

#[derive(Debug, Clone, Copy)]
struct Reqwest;

impl HttpClient for Reqwest {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Reqwest)
    }
}

impl HttpConnector for Reqwest {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|err| ConnectorError::other(err.into(), None))?;
            let (parts, body) = request.into_parts();
            let body = Bytes::copy_from_slice(body.bytes().unwrap_or_default());
            let request = http::Request::from_parts(parts, body);
            let answer = crate::net::fetch::exchange(request, EXCHANGE)
                .await
                .map_err(|err| ConnectorError::io(err.into()))?;
            let response = http::Response::builder()
                .status(answer.status)
                .body(SdkBody::from(answer.body))
                .map_err(|err| ConnectorError::other(err.into(), None))?;
            HttpResponse::try_from(response).map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}
