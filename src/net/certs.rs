//! What a server's certificate chain says, read from the DER the server
//! presented (x509-cert): the leaf's subject, names and issuer, its
//! not-after, and the earliest not-after of the chain. Recorded by the
//! TLS verifier for the check whose task it runs in, so the facts are
//! there also when the handshake fails on an expired certificate.

use crate::outcome::ChainFacts;
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, Mutex};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The facts of `chain` (leaf first); `None` when nothing parses.
pub fn read(chain: &[CertificateDer<'_>]) -> Option<ChainFacts> {
    let parsed: Vec<Certificate> = chain
        .iter()
        .filter_map(|der| Certificate::from_der(der.as_ref()).ok())
        .collect();
    let leaf = parsed.first()?;
    let tbs = &leaf.tbs_certificate;
    let not_after = |c: &Certificate| {
        c.tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs() as i64
    };
    Some(ChainFacts {
        subject: tbs.subject.to_string(),
        sans: sans(leaf),
        issuer: tbs.issuer.to_string(),
        not_after: not_after(leaf),
        earliest_not_after: parsed.iter().map(not_after).min()?,
        presented: chain.len(),
    })
}

fn sans(leaf: &Certificate) -> Vec<String> {
    use x509_cert::der::oid::AssociatedOid;
    let extensions = leaf.tbs_certificate.extensions.iter().flatten();
    let Some(ext) = extensions
        .into_iter()
        .find(|e| e.extn_id == SubjectAltName::OID)
    else {
        return Vec::new();
    };
    let Ok(names) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
        return Vec::new();
    };
    names
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            GeneralName::IpAddress(octets) => ip(octets.as_bytes()),
            _ => None,
        })
        .collect()
}

fn ip(octets: &[u8]) -> Option<String> {
    match octets.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(octets).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(octets).ok()?).to_string()),
        _ => None,
    }
}

/// Where one check's handshakes leave what they saw: the check's task
/// scopes it (`SEEN.scope`), the verifier fills it.
pub type Seen = Arc<Mutex<Option<ChainFacts>>>;

tokio::task_local! {
    /// The running check's slot; absent outside a check (the drill, plumbing).
    pub static SEEN: Seen;
}

/// Record `chain` for the check running in this task, if any: the chain
/// expiring first wins when a check shakes hands more than once.
pub fn record(chain: &[CertificateDer<'_>]) {
    let Some(facts) = read(chain) else { return };
    let _ = SEEN.try_with(|slot| {
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot
            .as_ref()
            .is_none_or(|known| facts.earliest_not_after < known.earliest_not_after)
        {
            *slot = Some(facts);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_chain_reads_back() {
        let mut params = rcgen::CertificateParams::new(vec![
            "redis.example".to_string(),
            "10.0.2.10".to_string(),
        ])
        .unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 6);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "redis.example");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let facts = read(&[cert.der().clone()]).expect("facts");
        assert_eq!(facts.sans, ["redis.example", "10.0.2.10"]);
        assert_eq!(facts.subject, "CN=redis.example");
        assert_eq!(facts.not_after, 1_935_792_000, "2031-05-06T00:00:00Z");
        assert_eq!(
            (facts.earliest_not_after, facts.presented),
            (facts.not_after, 1)
        );
        assert_eq!(read(&[CertificateDer::from(vec![1, 2, 3])]), None);
    }
}
