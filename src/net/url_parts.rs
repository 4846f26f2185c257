//! The parts of a URL the probe connects with, decoded one way for the
//! checks (suite URLs) and for the plumbing (Pushgateway, healthcheck), and
//! the one place IPv6 literals lose or gain their brackets.

use base64::Engine;
use url::{Position, Url};

/// Percent-decoding as RFC 3986 has it for user info and paths: `%2B` is
/// `+` and a `+` stays a `+` (it means a space only in form bodies).
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The user info as a `Basic` authorization value, and the decoded password
/// (a secret the caller must scrub); `None` without user info.
pub fn basic_authorization(url: &Url) -> Option<(String, String)> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let password = url.password().map(percent_decode).unwrap_or_default();
    let pair = format!("{}:{password}", percent_decode(url.username()));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    Some((header, password))
}

/// A host without the brackets a URL puts around an IPv6 literal.
pub fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: u16) -> String {
    let bare = bare_host(host);
    if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    }
}

/// Path and query, as they go on an HTTP request line.
pub fn path_and_query(url: &Url) -> &str {
    &url[Position::BeforePath..Position::AfterQuery]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_decodes_percent_and_keeps_plus() {
        let url = Url::parse("http://ops:s%40c+ret@gateway:9091/x?y=1").unwrap();
        let (header, password) = basic_authorization(&url).unwrap();
        assert_eq!(password, "s@c+ret");
        let encoded = base64::engine::general_purpose::STANDARD.encode("ops:s@c+ret");
        assert_eq!(header, format!("Basic {encoded}"));
        assert_eq!(path_and_query(&url), "/x?y=1");
        assert!(basic_authorization(&Url::parse("http://gateway/").unwrap()).is_none());
    }

    #[test]
    fn ipv6_hosts_are_bracketed_once() {
        assert_eq!(bare_host("[::1]"), "::1");
        assert_eq!(bare_host("db.internal"), "db.internal");
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("[::1]", 5432), "[::1]:5432");
        assert_eq!(host_port("10.0.1.12", 5000), "10.0.1.12:5000");
    }
}
