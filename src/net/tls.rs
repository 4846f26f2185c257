//! rustls client set-up (ring provider, webpki roots built in, so a `FROM
//! scratch` image needs no CA store) and TLS handshake classification.

use crate::outcome::{Fault, Reason};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How a server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Chain and host name, against webpki roots plus an optional CA file.
    Full,
    /// Encrypt only (libpq's `sslmode=require`, `tls_skip_verify = true`).
    Nothing,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration; `ca_file` adds private CAs (PEM) to the roots.
pub fn client_config(verify: Verify, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let config = match verify {
        Verify::Full => builder
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth(),
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("ca_file {}: {err}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {}: no certificate found", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| format!("ca_file {}: {err}", path.display()))?;
        }
    }
    Ok(roots)
}

/// Run a TLS handshake over `stream`; any failure is a `tls_error`.
pub async fn handshake<S>(
    stream: S,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<S>, Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(host)?;
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|err| {
            Fault::new(
                Reason::TlsError,
                format!("TLS handshake with {host}: {err}"),
            )
        })
}

/// The name presented in SNI and checked against the certificate.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Fault> {
    let bare = super::url_parts::bare_host(host);
    ServerName::try_from(bare.to_string()).map_err(|err| {
        Fault::new(
            Reason::TlsError,
            format!("{host}: not a TLS server name: {err}"),
        )
    })
}

/// The negotiated protocol version, for the report.
pub fn version<S>(stream: &TlsStream<S>) -> String {
    let (_, connection) = stream.get_ref();
    connection
        .protocol_version()
        .and_then(|version| version.as_str())
        .unwrap_or("TLS")
        .to_string()
}

/// Accepts any certificate while still checking handshake signatures: what
/// libpq does for `sslmode=require`.
#[derive(Debug)]
struct AcceptAnyCertificate {
    /// Taken once from the provider: handshakes check signatures with it.
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
