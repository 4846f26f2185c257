//! What the drill measures while a change happens, through the given URLs
//! only: one write attempt per interval on a fresh connection (as an
//! application reconnecting), one read per interval on the read-only port,
//! and one session opened before the change that keeps asking `SELECT 1`.

use super::DrillSpec;
use crate::check::postgres::rows::{cell, Answer};
use crate::check::postgres::Session;
use crate::net::Net;
use crate::outcome::Fault;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

/// Which server answered: `address:port` and the WAL timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub server: String,
    pub timeline: Option<String>,
}

/// The SQL columns that name the server: address, port, timeline (the
/// first 8 hex digits of the current WAL file, on a primary).
pub const IDENTITY: &str = "host(inet_server_addr()), inet_server_port()::text, \
     substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)";

/// How one write attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged by `Identity`.
    Ok(Identity),
    /// Definitely not applied: refused before or by the server.
    Failed {
        label: &'static str,
        misrouted: bool,
        detail: String,
    },
    /// Sent, and no answer came: it may or may not have been applied.
    Uncertain { label: &'static str, detail: String },
}

/// One write attempt, timed from the drill's start.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub seq: u64,
    pub started: Duration,
    pub finished: Duration,
    pub fate: Fate,
}

/// One read on the read-only port.
#[derive(Debug, Clone)]
pub struct Read {
    pub started: Duration,
    pub finished: Duration,
    /// `Some(true)` when a replica answered, `Some(false)` a primary,
    /// `None` when the read failed.
    pub in_recovery: Option<bool>,
    pub label: &'static str,
}

/// What happened to the session opened before the change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionEnd {
    /// Still answering when the drill stopped.
    #[default]
    Survived,
    /// The server or a proxy ended it: when, and how.
    Cut { at: Duration, label: &'static str },
    /// A query on it got no answer within the attempt timeout.
    Hung { at: Duration },
    /// It could not even be opened before the change.
    NeverOpened { label: &'static str },
}

/// Everything measured, shared by the loops and read by the report.
#[derive(Debug, Default)]
pub struct Log {
    pub writes: Vec<Attempt>,
    pub reads: Vec<Read>,
    pub session: SessionEnd,
}

/// What every loop needs: the spec, the resolver, the clock and the run.
pub struct Ctx {
    pub spec: DrillSpec,
    pub net: Net,
    pub start: Instant,
    pub run_id: String,
    pub log: Mutex<Log>,
    /// Sessions closing off the clock of the attempt that used them, each
    /// bounded by `attempt_timeout`; awaited by [`Ctx::closed`].
    pub closing: Mutex<JoinSet<()>>,
}

impl Ctx {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Close `session` without holding up the caller's timing; the close
    /// is bounded and awaited before the drill ends ([`Ctx::closed`]).
    pub fn close_later(&self, session: Session) {
        let limit = self.spec.attempt_timeout;
        let mut closing = self.closing.lock().unwrap_or_else(|p| p.into_inner());
        closing.spawn(async move {
            let _ = tokio::time::timeout(limit, session.close()).await;
        });
    }

    /// Wait until every session handed to [`Ctx::close_later`] has closed
    /// (or its bounded close gave up).
    pub async fn closed(&self) {
        let mut closing =
            std::mem::take(&mut *self.closing.lock().unwrap_or_else(|p| p.into_inner()));
        while closing.join_next().await.is_some() {}
    }

    /// The first acknowledged write from another server than `before`.
    pub fn first_change(&self, before: &Identity) -> Option<(Duration, Identity)> {
        self.log()
            .writes
            .iter()
            .find_map(|attempt| match &attempt.fate {
                Fate::Ok(identity) if identity.server != before.server => {
                    Some((attempt.finished, identity.clone()))
                }
                _ => None,
            })
    }
}

/// A label for a failure: what a failover shows by its SQLSTATE
/// (read-only transaction, shutdown, starting or stopping), else the reason.
fn label(fault: &Fault) -> &'static str {
    let code = fault.code.as_deref();
    if code == Some(SqlState::READ_ONLY_SQL_TRANSACTION.code()) {
        "read_only_transaction"
    } else if code == Some(SqlState::ADMIN_SHUTDOWN.code()) {
        "admin_shutdown"
    } else if code == Some(SqlState::CANNOT_CONNECT_NOW.code()) {
        "cannot_connect_now"
    } else {
        fault.reason.as_str()
    }
}

/// One write on a fresh connection, bounded by the attempt timeout.
async fn write_once(ctx: Arc<Ctx>, seq: u64) -> Attempt {
    let started = ctx.elapsed();
    let sent = AtomicBool::new(false);
    let work = async {
        let session = ctx
            .spec
            .rw
            .session(&ctx.net)
            .await
            .map_err(|fault| Fate::Failed {
                label: label(&fault),
                misrouted: false,
                detail: fault.detail,
            })?;
        let sql = format!(
            "INSERT INTO {} (run_id, seq, sent_at) VALUES ('{}', {seq}, now()) RETURNING {IDENTITY}",
            ctx.spec.table, ctx.run_id
        );
        sent.store(true, Ordering::SeqCst);
        let answer = session.client.simple_query(&sql).await;
        let fate = match answer {
            Ok(messages) => Ok(identity(&messages)),
            Err(err) => Err(write_error(&err, &session, &ctx)),
        };
        ctx.close_later(session);
        fate
    };
    let fate = match tokio::time::timeout(ctx.spec.attempt_timeout, work).await {
        Ok(Ok(identity)) => Fate::Ok(identity),
        Ok(Err(fate)) => fate,
        Err(_) if sent.load(Ordering::SeqCst) => Fate::Uncertain {
            label: "timeout",
            detail: "sent, and no answer within attempt_timeout".into(),
        },
        Err(_) => Fate::Failed {
            label: "timeout",
            misrouted: false,
            detail: "no session within attempt_timeout".into(),
        },
    };
    Attempt {
        seq,
        started,
        finished: ctx.elapsed(),
        fate,
    }
}

/// A server's refusal is a failure (25006 is a misrouted write); a lost
/// connection after sending leaves the write uncertain.
fn write_error(err: &tokio_postgres::Error, session: &Session, ctx: &Ctx) -> Fate {
    let fault = session.fault(err, ctx.spec.rw.sslmode);
    let label = label(&fault);
    if err.as_db_error().is_some() {
        Fate::Failed {
            label,
            misrouted: label == "read_only_transaction",
            detail: fault.detail,
        }
    } else {
        Fate::Uncertain {
            label,
            detail: fault.detail,
        }
    }
}

/// The identity from the first row of an answer to [`IDENTITY`].
pub fn identity(messages: &[SimpleQueryMessage]) -> Identity {
    let answer = Answer::new(messages);
    Identity {
        server: format!(
            "{}:{}",
            answer.first(0).unwrap_or("?"),
            answer.first(1).unwrap_or("?")
        ),
        timeline: answer.first(2).map(str::to_string),
    }
}
/// `seq` → times present, from the read-back's rows.
pub fn counts(messages: &[SimpleQueryMessage]) -> BTreeMap<u64, u64> {
    Answer::new(messages)
        .rows()
        .filter_map(|row| {
            let seq = cell(row, 0)?.parse().ok()?;
            let count = cell(row, 1)?.parse().ok()?;
            Some((seq, count))
        })
        .collect()
}

/// One read on the read-only port on a fresh connection.
async fn read_once(ctx: Arc<Ctx>) -> Read {
    let started = ctx.elapsed();
    let Some(ro) = &ctx.spec.ro else {
        unreachable!("reads run only with ro_url");
    };
    let work = async {
        let session = ro.session(&ctx.net).await.map_err(|f| label(&f))?;
        let answer = session
            .client
            .simple_query("SELECT pg_is_in_recovery()::text")
            .await;
        let result = match answer {
            Ok(messages) => Ok(Answer::new(&messages).first(0) == Some("true")),
            Err(err) => Err(label(&session.fault(&err, ro.sslmode))),
        };
        ctx.close_later(session);
        result
    };
    let (in_recovery, label) = match tokio::time::timeout(ctx.spec.attempt_timeout, work).await {
        Ok(Ok(in_recovery)) => (Some(in_recovery), "ok"),
        Ok(Err(label)) => (None, label),
        Err(_) => (None, "timeout"),
    };
    Read {
        started,
        finished: ctx.elapsed(),
        in_recovery,
        label,
    }
}

/// Run `once` every interval until `stop`, then wait for the attempts in
/// flight (each bounded by the attempt timeout).
async fn every_interval<F, Fut, T>(
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
    once: F,
    keep: fn(&mut Log, T),
) where
    F: Fn(Arc<Ctx>, u64) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut ticker = tokio::time::interval(ctx.spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut flying = JoinSet::new();
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                seq += 1;
                flying.spawn(once(ctx.clone(), seq));
            }
            Some(done) = flying.join_next() => {
                if let Ok(done) = done { keep(&mut ctx.log(), done) }
            }
            _ = stop.changed() => break,
        }
    }
    while let Some(done) = flying.join_next().await {
        if let Ok(done) = done {
            keep(&mut ctx.log(), done);
        }
    }
}

/// The writer: one attempt per interval.
pub async fn writes(ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    every_interval(ctx, stop, write_once, |log, attempt| {
        log.writes.push(attempt)
    })
    .await;
}

/// The reader on the read-only port: one read per interval.
pub async fn reads(ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    every_interval(
        ctx,
        stop,
        |ctx, _| read_once(ctx),
        |log, read| log.reads.push(read),
    )
    .await;
}

/// Hold a session opened before the change and ask `SELECT 1` on it every
/// interval until it fails, hangs or the drill stops.
pub async fn hold_session(
    ctx: Arc<Ctx>,
    session: Result<Session, Fault>,
    mut stop: watch::Receiver<bool>,
) {
    let session = match session {
        Ok(session) => session,
        Err(fault) => {
            ctx.log().session = SessionEnd::NeverOpened {
                label: label(&fault),
            };
            return;
        }
    };
    let end = loop {
        tokio::select! {
            _ = stop.changed() => break SessionEnd::Survived,
            _ = tokio::time::sleep(ctx.spec.interval) => {}
        }
        let asked = tokio::time::timeout(
            ctx.spec.attempt_timeout,
            session.client.simple_query("SELECT 1"),
        )
        .await;
        match asked {
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => {
                let fault = session.fault(&err, ctx.spec.rw.sslmode);
                break SessionEnd::Cut {
                    at: ctx.elapsed(),
                    label: label(&fault),
                };
            }
            Err(_) => break SessionEnd::Hung { at: ctx.elapsed() },
        }
    };
    ctx.log().session = end;
    ctx.close_later(session);
}
