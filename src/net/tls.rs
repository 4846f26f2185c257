//! rustls client set-up (ring provider, webpki roots built in, so a `FROM
//! scratch` image needs no CA store), TLS failures told apart in words an
//! operator can act on, and the proof that a port speaks TLS.

use super::wire::{Heard, Wire};
use crate::outcome::{Fault, Reason};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How a check speaks TLS: the client configuration, and the name to
/// present in SNI and verify when it differs from the host connected to
/// (a Route 53 CNAME in front of ElastiCache, HAProxy reached by IP).
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub server_name: Option<String>,
}

impl TlsSetup {
    /// The name presented and verified for a connection to `host`.
    pub fn name<'a>(&'a self, host: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(host)
    }
}

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
/// Sessions are never resumed: every handshake presents and verifies the
/// chain.
pub fn client_config(verify: Verify, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Full => {
            let roots = Arc::new(roots(ca_file)?);
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|err| err.to_string())?
        }
        Verify::Nothing => Arc::new(AcceptAnyCertificate {
            algorithms: provider().signature_verification_algorithms,
        }),
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recording(verifier)))
        .with_no_client_auth();
    // A full handshake every time: a resumed one presents no certificate,
    // so the chain would go unrecorded and unverified from the second run
    // on (a server that swapped its certificate but kept its ticket keys
    // would pass on what the first run saw), as blackbox_exporter does.
    config.resumption = rustls::client::Resumption::disabled();
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

/// Run a TLS handshake over `stream`, presenting and verifying `name`; a
/// failure is a `tls_error` saying what went wrong, judged with `raw`
/// (what the server sent below TLS).
pub async fn handshake<S>(
    stream: S,
    name: &str,
    config: Arc<ClientConfig>,
    raw: &Heard,
) -> Result<TlsStream<S>, Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let server = server_name(name)?;
    TlsConnector::from(config)
        .connect(server, stream)
        .await
        .map_err(|err| explain(&err, raw, name))
}

/// A failed handshake as a `tls_error` whose detail tells apart an
/// untrusted certificate, a name mismatch (with the names it covers), an
/// expired or not yet valid one, a protocol or cipher mismatch, and a
/// server that answered in plain text.
pub fn explain(err: &(dyn std::error::Error + 'static), raw: &Heard, name: &str) -> Fault {
    let detail = match (rustls_error(err), raw.first_byte()) {
        (_, Some(first)) if !is_tls_record(first) => format!(
            "the server answered in plain text ({}): it does not speak TLS on this port",
            raw.shown()
        ),
        (Some(rustls::Error::InvalidCertificate(cert)), _) => certificate(cert, name),
        (Some(rustls::Error::AlertReceived(alert)), _) => received(*alert),
        (Some(rustls::Error::PeerIncompatible(why)), _) => {
            format!("protocol or cipher mismatch: the server cannot meet the probe's TLS 1.2/1.3 offer ({why:?})")
        }
        (None, None) => {
            format!("the server closed the connection without answering the TLS ClientHello: {err}")
        }
        (Some(other), _) => format!("TLS handshake with {name}: {other}"),
        (None, Some(_)) => format!("TLS handshake with {name}: {err}"),
    };
    Fault::new(Reason::TlsError, detail)
}

/// The rustls error inside an error chain (tokio-rustls wraps it in io::Error).
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        current = inner.or_else(|| error.source());
    }
    None
}

/// Record types a TLS peer sends first: alert (0x15) or handshake (0x16).
fn is_tls_record(first: u8) -> bool {
    matches!(first, 0x15 | 0x16)
}

fn certificate(err: &CertificateError, name: &str) -> String {
    match err {
        CertificateError::UnknownIssuer => format!(
            "certificate not trusted: {name}'s chain does not lead to a root the probe trusts (webpki roots plus ca_file)"
        ),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "name mismatch: the certificate covers {} but not {name}; connect by a name it covers or set tls_server_name",
            presented.join(", ")
        ),
        CertificateError::NotValidForName => format!(
            "name mismatch: the certificate does not cover {name}; set tls_server_name to a name it covers"
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("certificate expired{}", when(err))
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("certificate not valid yet{}", when(err))
        }
        other => format!("bad certificate: {other:?}"),
    }
}

/// The certificate's own date, where rustls reports it.
fn when(err: &CertificateError) -> String {
    let date = match err {
        CertificateError::ExpiredContext { not_after, .. } => not_after.as_secs(),
        CertificateError::NotValidYetContext { not_before, .. } => not_before.as_secs(),
        _ => return String::new(),
    };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(date);
    format!(" ({})", humantime::format_rfc3339_seconds(at))
}

fn received(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::ProtocolVersion => {
            "protocol mismatch: the server refused TLS 1.2 and 1.3 (it may only speak older TLS)".into()
        }
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
            "protocol or cipher mismatch: the server found no cipher suite or protocol it shares with the probe".into()
        }
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate (mutual TLS), which the probe does not send".into()
        }
        other => format!("the server refused the handshake with alert {other:?}"),
    }
}

/// One TLS ClientHello to `addr`: true when the server answers with a TLS
/// handshake record (a ServerHello), which proves the port speaks TLS.
pub async fn speaks_tls(addr: SocketAddr, name: &str) -> bool {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return false;
    };
    let (Ok(config), Ok(server)) = (client_config(Verify::Nothing, None), server_name(name)) else {
        return false;
    };
    let (wire, raw) = Wire::new(tcp);
    let _ = TlsConnector::from(config).connect(server, wire).await;
    raw.first_byte() == Some(0x16)
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

/// Records the presented chain for the running check (`net::certs`), then
/// lets the real verifier judge it: the facts survive a failed handshake.
#[derive(Debug)]
struct Recording(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<CertificateDer<'_>> = std::iter::once(end_entity.clone())
            .chain(intermediates.iter().cloned())
            .collect();
        super::certs::record(&chain);
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The negotiated cipher suite (e.g. TLS13_AES_256_GCM_SHA384), for the report.
pub fn cipher<S>(stream: &TlsStream<S>) -> Option<String> {
    let (_, connection) = stream.get_ref();
    let suite = connection.negotiated_cipher_suite()?.suite();
    Some(
        suite
            .as_str()
            .map_or_else(|| format!("{suite:?}"), str::to_string),
    )
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
