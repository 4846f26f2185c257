//! Classifying a session's errors: the server's SQLSTATE when it sent one,
//! else what the wire showed.

use super::SslMode;
use crate::net::tls;
use crate::net::wire::Heard;
use crate::net::{io_kind, is_hang_up};
use crate::outcome::{Fault, Reason};
use tokio_postgres::error::SqlState;

/// Where in a session an error was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Startup: TLS negotiation and authentication.
    Startup,
    Query,
}

/// Classify a session error: the server's SQLSTATE when it sent one, else
/// what the wire showed (nothing heard, another protocol, a TLS refusal).
/// `tls_failed` names the server name checked when the handshake failed.
pub(super) fn classify(
    err: &tokio_postgres::Error,
    heard: &Heard,
    sslmode: SslMode,
    step: Step,
    tls_failed: Option<&str>,
) -> Fault {
    if let Some(db) = err.as_db_error() {
        let detail = format!(
            "server said: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        );
        let reason = classify_server(db.code(), db.message(), step);
        return Fault::new(reason, detail).with_code(db.code().code());
    }
    if let (Some(name), false) = (tls_failed, banner_after_ssl_answer(heard)) {
        return tls::explain(err, &heard.skip(1), name);
    }
    let tls_failed = tls_failed.is_some();
    let transport = Transport {
        closed: err.is_closed(),
        io: io_kind(err),
    };
    let reason = wire_reason(heard, sslmode, tls_failed, transport);
    let detail = match reason {
        Reason::ClosedByPeer if heard.bytes() == 0 => {
            "the server accepted the connection and closed it without a word".to_string()
        }
        Reason::TlsError if !tls_failed => {
            "the server does not support TLS (answered N to SSLRequest)".to_string()
        }
        Reason::ProtocolError if heard.bytes() > 0 => {
            format!(
                "not a PostgreSQL server: {err} (first byte {:#04x})",
                heard.first_byte().unwrap_or(0)
            )
        }
        _ => err.to_string(),
    };
    Fault::new(reason, detail)
}

/// What the transport said of a failure the server sent no error for.
#[derive(Debug, Clone, Copy, Default)]
struct Transport {
    /// The connection was closed under the client.
    closed: bool,
    /// The I/O error underneath, if one caused it.
    io: Option<std::io::ErrorKind>,
}

/// Reason for a failure without a server error, from the bytes heard:
/// nothing, another protocol, a refusal of TLS, or a hang-up.
fn wire_reason(heard: &Heard, sslmode: SslMode, tls_failed: bool, transport: Transport) -> Reason {
    let tls_required = matches!(sslmode, SslMode::Require | SslMode::VerifyFull);
    match heard.first_byte() {
        Some(b'S') if tls_failed && banner_after_ssl_answer(heard) => Reason::ProtocolError,
        _ if tls_failed => Reason::TlsError,
        None => Reason::ClosedByPeer,
        Some(byte) if !STARTUP_REPLIES.contains(&byte) => Reason::ProtocolError,
        Some(b'N') if tls_required && heard.bytes() == 1 => Reason::TlsError,
        _ if transport.io == Some(std::io::ErrorKind::InvalidData) => Reason::ProtocolError,
        Some(_) if transport.closed || transport.io.is_some_and(is_hang_up) => Reason::ClosedByPeer,
        Some(_) => Reason::ProtocolError,
    }
}

/// A real server answers SSLRequest with the single byte S, then TLS
/// records (0x16 handshake, 0x15 alert) follow; anything else after the S
/// is a banner of another protocol that happened to start with S.
fn banner_after_ssl_answer(heard: &Heard) -> bool {
    let prefix = heard.prefix();
    prefix.first() == Some(&b'S') && prefix.get(1).is_some_and(|b| ![0x15, 0x16].contains(b))
}

/// First bytes a PostgreSQL server sends: an SSLRequest answer (S/N) or a
/// startup reply (authentication request R, error E).
const STARTUP_REPLIES: [u8; 4] = [b'S', b'N', b'R', b'E'];

/// Reason for a server error, from its SQLSTATE. PgBouncer (before 1.21)
/// reports a failed login, an unknown user and an unknown database all as
/// 08P01 during startup, where a real PostgreSQL never sends it to a
/// correct client. Refusing a plain connection shows in the message only:
/// pg_hba's "no encryption" (PostgreSQL) and "SSL required" (PgBouncer).
fn classify_server(code: &SqlState, message: &str, step: Step) -> Reason {
    let pgbouncer_login = step == Step::Startup && *code == SqlState::PROTOCOL_VIOLATION;
    let plain_refused = message.contains("no encryption") || message.contains("SSL required");
    // PgBouncer says its limits in the same 08P01: they are not a login
    // failure (seen in the soak: 60 clients a second past max_client_conn 50).
    let pgbouncer_full = PGBOUNCER_LIMITS.iter().any(|words| message.contains(words));
    if step == Step::Startup && plain_refused {
        Reason::TlsRequired
    } else if pgbouncer_full || *code == SqlState::TOO_MANY_CONNECTIONS {
        Reason::TooManyConnections
    } else if *code == SqlState::INVALID_SQL_STATEMENT_NAME
        || *code == SqlState::DUPLICATE_PSTATEMENT
    {
        // A named statement missing, or another client's there: only a
        // pooler sharing servers between clients does that to a driver.
        Reason::PoolerIncompatible
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        Reason::PermissionDenied
    } else if code.code().starts_with("28") || pgbouncer_login {
        Reason::AuthFailed
    } else if *code == SqlState::CANNOT_CONNECT_NOW {
        Reason::ClosedByPeer
    } else {
        Reason::UnexpectedResponse
    }
}

/// Words of PgBouncer's limit errors (all 08P01): max_client_conn, the
/// pool's size with query_wait_timeout, max_db_connections / max_user_connections.
const PGBOUNCER_LIMITS: [&str; 4] = [
    "no more connections allowed",
    "query_wait_timeout",
    "pool_size",
    "max_db_connections",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn server(row: (&str, &str, Step), want: Reason) {
        let (code, message, step) = row;
        let got = classify_server(&SqlState::from_code(code), message, step);
        assert_eq!(got, want, "SQLSTATE {code} {message:?} at {step:?}");
    }

    crate::cases! { server {
        pg_hba_refuses_a_plain_session: ("28000", "pg_hba.conf rejects connection for host \"10.20.1.5\", user \"probe\", no encryption", Step::Startup) => Reason::TlsRequired;
        pgbouncer_requires_ssl: ("08P01", "SSL required", Step::Startup) => Reason::TlsRequired;
        postgres_has_too_many_clients: ("53300", "sorry, too many clients already", Step::Startup) => Reason::TooManyConnections;
        pgbouncer_max_client_conn: ("08P01", "no more connections allowed (max_client_conn)", Step::Startup) => Reason::TooManyConnections;
        pgbouncer_query_wait_timeout: ("08P01", "query_wait_timeout", Step::Query) => Reason::TooManyConnections;
        a_prepared_statement_gone: ("26000", "prepared statement \"s1\" does not exist", Step::Query) => Reason::PoolerIncompatible;
        a_prepared_statement_taken: ("42P05", "prepared statement \"s1\" already exists", Step::Query) => Reason::PoolerIncompatible;
        no_grant_on_a_table: ("42501", "permission denied for table t", Step::Query) => Reason::PermissionDenied;
        a_wrong_password: ("28P01", "password authentication failed for user \"probe\"", Step::Startup) => Reason::AuthFailed;
        pgbouncer_login_failed: ("08P01", "password authentication failed", Step::Startup) => Reason::AuthFailed;
        a_protocol_violation_mid_session: ("08P01", "unexpected message", Step::Query) => Reason::UnexpectedResponse;
        the_server_is_starting: ("57P03", "the database system is starting up", Step::Startup) => Reason::ClosedByPeer;
        a_syntax_error: ("42601", "syntax error at or near \"SELEC\"", Step::Query) => Reason::UnexpectedResponse;
    }}

    /// (bytes heard, sslmode, the TLS handshake failed, transport)
    type WireRow = (&'static [u8], SslMode, bool, Transport);

    fn wire(row: WireRow, want: Reason) {
        let (bytes, sslmode, tls_failed, transport) = row;
        let got = wire_reason(&Heard::of(bytes), sslmode, tls_failed, transport);
        assert_eq!(
            got, want,
            "heard {bytes:?}, {sslmode:?}, tls failed {tls_failed}, {transport:?}"
        );
    }

    const CLOSED: Transport = Transport {
        closed: true,
        io: None,
    };
    const QUIET: Transport = Transport {
        closed: false,
        io: None,
    };
    const fn io(kind: std::io::ErrorKind) -> Transport {
        Transport {
            closed: false,
            io: Some(kind),
        }
    }

    crate::cases! { wire {
        closed_before_a_word: (b"", SslMode::Prefer, false, CLOSED) => Reason::ClosedByPeer;
        an_ssh_banner: (b"SSH-2.0-OpenSSH_9.2", SslMode::Prefer, false, QUIET) => Reason::ProtocolError;
        no_tls_where_it_is_required: (b"N", SslMode::Require, false, QUIET) => Reason::TlsError;
        a_tls_alert_after_the_ssl_answer: (b"S\x15\x03\x03", SslMode::VerifyFull, true, QUIET) => Reason::TlsError;
        a_banner_that_starts_with_s: (b"SSH-2.0-OpenSSH", SslMode::Require, true, QUIET) => Reason::ProtocolError;
        garbage_after_an_auth_request: (b"R\x00\x00", SslMode::Prefer, false, io(std::io::ErrorKind::InvalidData)) => Reason::ProtocolError;
        closed_after_an_auth_request: (b"R\x00\x00\x00\x08", SslMode::Prefer, false, CLOSED) => Reason::ClosedByPeer;
        reset_after_an_auth_request: (b"R\x00\x00\x00\x08", SslMode::Prefer, false, io(std::io::ErrorKind::ConnectionReset)) => Reason::ClosedByPeer;
        an_error_reply_then_nothing_more: (b"E\x00\x00", SslMode::Prefer, false, QUIET) => Reason::ProtocolError;
    }}
}
