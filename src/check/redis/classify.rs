//! Classifying a Redis error: the server's own error code first (its words
//! reach the detail), then what the bytes above TLS showed.

use crate::check::OpenedFacts;
use crate::net::wire::Spoke;
use crate::outcome::{Fault, Reason};
use redis::{ErrorKind, RedisError};

/// Bytes a RESP2/RESP3 reply may start with.
const RESP_TYPES: &[u8] = b"+-:$*_,#!=(|~>%";

/// Classify a Redis error: the server's own error code first (its words
/// reach the detail), then what the bytes above TLS showed.
pub(super) fn classify(err: &RedisError, facts: &OpenedFacts) -> Fault {
    if let Some(code) = err.code() {
        return server_error(code, &err.to_string(), err.detail().unwrap_or_default());
    }
    let io = crate::net::io_kind(err);
    if io == Some(std::io::ErrorKind::InvalidData) {
        return Fault::new(Reason::ProtocolError, format!("not a Redis answer: {err}"));
    }
    let reason = match facts.heard.spoke(RESP_TYPES) {
        Spoke::Other(byte) => {
            return Fault::new(
                Reason::ProtocolError,
                format!(
                    "not a Redis server: it answered {} (first byte {byte:#04x})",
                    facts.heard.shown()
                ),
            )
        }
        Spoke::Nothing if err.is_io_error() || err.is_connection_dropped() => Reason::ClosedByPeer,
        _ if io.is_some_and(crate::net::is_hang_up) => Reason::ClosedByPeer,
        Spoke::Protocol if err.is_connection_dropped() => Reason::ClosedByPeer,
        _ if err.kind() == ErrorKind::AuthenticationFailed => Reason::AuthFailed,
        _ => Reason::UnexpectedResponse,
    };
    let detail = match reason {
        Reason::ClosedByPeer if facts.heard.bytes() == 0 => {
            format!("the server closed the connection without a word: {err}")
        }
        _ => err.to_string(),
    };
    Fault::new(reason, detail)
}

/// A RESP error reply, by its code; the detail is the server's own words.
pub(super) fn server_error(code: &str, said: &str, words: &str) -> Fault {
    let said = format!("server said: {said}");
    match code {
        "NOAUTH" => Fault::new(
            Reason::AuthFailed,
            format!("{said} (the server requires AUTH and the check sent none: set password or password_file)"),
        ),
        "WRONGPASS" => Fault::new(
            Reason::AuthFailed,
            format!("{said} (a wrong password or token, an unknown user, or a user that is disabled: ACL `off`, or an RBAC user not active)"),
        ),
        "NOPERM" => Fault::new(Reason::PermissionDenied, said),
        "ERR" if words.contains("max number of clients reached") => Fault::new(
            Reason::TooManyConnections,
            format!("{said} (the server's maxclients)"),
        ),
        "ERR" if words.contains("without any password configured") => Fault::new(
            Reason::AuthFailed,
            format!("{said} (the server has no password for the default user, but the check sends one: drop it from the check, or enable AUTH on the server)"),
        ),
        "ERR" if words.contains("DB index is out of range") || words.contains("SELECT is not allowed in cluster mode") => {
            Fault::new(Reason::UnexpectedResponse, format!("{said} (use database 0 in the URL)"))
        }
        _ => Fault::new(Reason::UnexpectedResponse, said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::Heard;
    use std::sync::Arc;

    /// A server's error reply: (code, the whole line, the words after the code).
    fn server(row: (&str, &str), want: Reason) {
        let (code, words) = row;
        let said = format!("{code} {words}");
        let fault = server_error(code, &said, words);
        assert_eq!(fault.reason, want, "{said}");
        assert!(
            fault.detail.contains(&said),
            "the server's words reach the detail"
        );
    }

    crate::cases! { server {
        noauth: ("NOAUTH", "Authentication required.") => Reason::AuthFailed;
        wrongpass: ("WRONGPASS", "invalid username-password pair or user is disabled.") => Reason::AuthFailed;
        auth_sent_to_a_server_without_one: ("ERR", "AUTH <password> called without any password configured for the default user.") => Reason::AuthFailed;
        noperm: ("NOPERM", "User app has no permissions to run the 'info' command") => Reason::PermissionDenied;
        maxclients: ("ERR", "max number of clients reached") => Reason::TooManyConnections;
        a_database_out_of_range: ("ERR", "DB index is out of range") => Reason::UnexpectedResponse;
        select_in_cluster_mode: ("ERR", "SELECT is not allowed in cluster mode") => Reason::UnexpectedResponse;
        loading: ("LOADING", "Redis is loading the dataset in memory") => Reason::UnexpectedResponse;
    }}

    /// An error redis-rs raised with no server code, after `heard`.
    fn client(row: (RedisError, &'static [u8]), want: Reason) {
        let (err, heard) = row;
        let heard = Arc::new(Heard::of(heard));
        let facts = OpenedFacts {
            raw: heard.clone(),
            heard,
            peer: "127.0.0.1:6379".parse().unwrap(),
            tls: false,
        };
        assert_eq!(
            classify(&err, &facts).reason,
            want,
            "{err} after {:?}",
            facts.heard.prefix()
        );
    }

    fn io(kind: std::io::ErrorKind) -> RedisError {
        std::io::Error::new(kind, "from the socket").into()
    }

    crate::cases! { client {
        closed_without_a_word: (io(std::io::ErrorKind::UnexpectedEof), b"") => Reason::ClosedByPeer;
        reset_after_a_reply: (io(std::io::ErrorKind::ConnectionReset), b"+PONG\r\n") => Reason::ClosedByPeer;
        an_http_server: (RedisError::from((ErrorKind::ParseError, "parse")), b"HTTP/1.1 400 Bad") => Reason::ProtocolError;
        garbage_in_the_stream: (io(std::io::ErrorKind::InvalidData), b"+OK\r\n") => Reason::ProtocolError;
        authentication_refused: (RedisError::from((ErrorKind::AuthenticationFailed, "auth")), b"-ERR") => Reason::AuthFailed;
        an_unexpected_reply: (RedisError::from((ErrorKind::TypeError, "not a string")), b":1\r\n") => Reason::UnexpectedResponse;
    }}
}
