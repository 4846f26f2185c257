//! The PostgreSQL drill (`kind = "postgres-failover"`), through HAProxy
//! only: a write is an INSERT into the drill table returning the server's
//! identity, a read asks `pg_is_in_recovery()` on the read-only port, the
//! held session asks `SELECT 1`, and the read-back counts this run's rows.

use super::target::{DrillKind, Env, Held, Identity, Label, ReadFrom, Target, WriteEnd};
use crate::check::postgres::rows::{cell, Answer};
use crate::check::postgres::{PostgresSpec, Session, SslMode};
use crate::outcome::{Fault, Reason};
use futures_util::future::{BoxFuture, FutureExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

/// The SQL columns that name the server: address, port, timeline (the
/// first 8 hex digits of the current WAL file, on a primary).
const IDENTITY: &str = "host(inet_server_addr()), inet_server_port()::text, \
     substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)";

/// The read-write port, the read-only port if watched, and the table.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    /// The read-write port (HAProxy's primary frontend).
    pub rw: PostgresSpec,
    /// The read-only port, when the drill should watch it too.
    pub ro: Option<PostgresSpec>,
    /// Where writes go: created if missing, only this run's rows are read.
    pub table: String,
}

impl Target for PostgresTarget {
    fn kind(&self) -> DrillKind {
        DrillKind::PostgresFailover
    }

    fn describe(&self) -> String {
        self.rw.target()
    }

    fn name(&self) -> &str {
        &self.rw.host
    }

    fn watches_reads(&self) -> bool {
        self.ro.is_some()
    }

    fn setup<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.prepare(ctx).boxed()
    }

    fn identify<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.whoami(ctx).boxed()
    }

    fn write<'a>(
        &'a self,
        ctx: &'a Env,
        seq: u64,
        sent: &'a AtomicBool,
    ) -> BoxFuture<'a, Result<Identity, WriteEnd>> {
        self.insert(ctx, seq, sent).boxed()
    }

    fn read<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<ReadFrom, Label>> {
        self.in_recovery(ctx).boxed()
    }

    fn hold<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Box<dyn Held>, Label>> {
        async move {
            let session = self
                .rw
                .session(&ctx.net, ctx.spec.attempt_timeout)
                .await
                .map_err(|f| label(&f))?;
            let held: Box<dyn Held> = Box::new(HeldSession {
                session,
                sslmode: self.rw.sslmode,
            });
            Ok(held)
        }
        .boxed()
    }

    fn read_back<'a>(
        &'a self,
        ctx: &'a Env,
        _last: u64,
    ) -> BoxFuture<'a, Option<BTreeMap<u64, u64>>> {
        // The table holds this run's rows by run id: all of them are read.
        self.rows_of_this_run(ctx).boxed()
    }
}

impl PostgresTarget {
    /// Make sure the table exists and learn the primary before anything moves.
    async fn prepare(&self, ctx: &Env) -> Result<Identity, Fault> {
        let session = self
            .rw
            .session(&ctx.net, ctx.spec.attempt_timeout)
            .await
            .map_err(|fault| {
                Fault::new(
                    fault.reason,
                    format!("connecting to the read-write port: {}", fault.detail),
                )
            })?;
        let table = &self.table;
        let create = format!(
            "DO $$ BEGIN IF to_regclass('{table}') IS NULL THEN \
             CREATE TABLE {table} (run_id text NOT NULL, seq bigint NOT NULL, sent_at timestamptz NOT NULL); \
             END IF; END $$"
        );
        let identify = format!("SELECT {IDENTITY}");
        let mut answer = Err(Fault::new(Reason::UnexpectedResponse, "not asked"));
        for (step, sql) in [
            ("creating the drill table", create.as_str()),
            ("identifying the primary", identify.as_str()),
        ] {
            answer = match session.client.simple_query(sql).await {
                Ok(messages) => Ok(identity(&messages)),
                Err(err) => {
                    let fault = session.fault(&err, self.rw.sslmode);
                    Err(Fault::new(
                        fault.reason,
                        format!("{step}: {}", fault.detail),
                    ))
                }
            };
            if answer.is_err() {
                break;
            }
        }
        ctx.close_later(session.close().map(drop));
        answer
    }

    /// The server behind the read-write port now, on a fresh session.
    async fn whoami(&self, ctx: &Env) -> Result<Identity, Fault> {
        let session = self.rw.session(&ctx.net, ctx.spec.attempt_timeout).await?;
        let answer = session
            .client
            .simple_query(&format!("SELECT {IDENTITY}"))
            .await;
        let identity = match answer {
            Ok(messages) => Ok(identity(&messages)),
            Err(err) => Err(session.fault(&err, self.rw.sslmode)),
        };
        ctx.close_later(session.close().map(drop));
        identity
    }

    /// One INSERT on a fresh connection, returning who acknowledged it.
    async fn insert(&self, ctx: &Env, seq: u64, sent: &AtomicBool) -> Result<Identity, WriteEnd> {
        let session = self
            .rw
            .session(&ctx.net, ctx.spec.attempt_timeout)
            .await
            .map_err(|fault| WriteEnd::Failed {
                label: label(&fault),
                detail: fault.detail,
            })?;
        let sql = format!(
            "INSERT INTO {} (run_id, seq, sent_at) VALUES ('{}', {seq}, now()) RETURNING {IDENTITY}",
            self.table, ctx.run_id
        );
        sent.store(true, Ordering::SeqCst);
        let answer = session.client.simple_query(&sql).await;
        let fate = match answer {
            Ok(messages) => Ok(identity(&messages)),
            Err(err) => Err(write_error(&err, &session, &self.rw)),
        };
        ctx.close_later(session.close().map(drop));
        fate
    }

    /// `pg_is_in_recovery()` on the read-only port, on a fresh connection.
    async fn in_recovery(&self, ctx: &Env) -> Result<ReadFrom, Label> {
        let Some(ro) = &self.ro else {
            return Err(Label::NoReadOnlyPort);
        };
        let session = ro
            .session(&ctx.net, ctx.spec.attempt_timeout)
            .await
            .map_err(|f| label(&f))?;
        let answer = session
            .client
            .simple_query("SELECT pg_is_in_recovery()::text")
            .await;
        let result = match answer {
            Ok(messages) => match Answer::new(&messages).first(0) {
                Some("true") => Ok(ReadFrom::Replica),
                _ => Ok(ReadFrom::Primary),
            },
            Err(err) => Err(label(&session.fault(&err, ro.sslmode))),
        };
        ctx.close_later(session.close().map(drop));
        result
    }

    /// This run's rows, `seq` → how many times it is present; `None` when
    /// the read-write port never answered (the caller bounds the retries).
    async fn rows_of_this_run(&self, ctx: &Env) -> Option<BTreeMap<u64, u64>> {
        let sql = format!(
            "SELECT seq::text, count(*)::text FROM {} WHERE run_id = '{}' GROUP BY seq",
            self.table, ctx.run_id
        );
        // The caller bounds the whole read-back; each try gets one attempt.
        loop {
            let asked = tokio::time::timeout(ctx.spec.attempt_timeout, async {
                let session = self
                    .rw
                    .session(&ctx.net, ctx.spec.attempt_timeout)
                    .await
                    .ok()?;
                let rows = session.client.simple_query(&sql).await.ok();
                ctx.close_later(session.close().map(drop));
                rows
            });
            if let Ok(Some(messages)) = asked.await {
                return Some(counts(&messages));
            }
            tokio::time::sleep(ctx.spec.interval).await;
        }
    }
}

/// The session opened before the change.
struct HeldSession {
    session: Session,
    sslmode: SslMode,
}

impl Held for HeldSession {
    fn ask(&self) -> BoxFuture<'_, Result<(), Label>> {
        async move {
            match self.session.client.simple_query("SELECT 1").await {
                Ok(_) => Ok(()),
                Err(err) => Err(label(&self.session.fault(&err, self.sslmode))),
            }
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.session.close().map(drop).boxed()
    }
}

/// A label for a failure: what a failover shows by its SQLSTATE
/// (read-only transaction, shutdown, starting or stopping), else the reason.
fn label(fault: &Fault) -> Label {
    let code = fault.code.as_deref();
    if code == Some(SqlState::READ_ONLY_SQL_TRANSACTION.code()) {
        Label::ReadOnlyTransaction
    } else if code == Some(SqlState::ADMIN_SHUTDOWN.code()) {
        Label::AdminShutdown
    } else if code == Some(SqlState::CANNOT_CONNECT_NOW.code()) {
        Label::CannotConnectNow
    } else {
        Label::Reason(fault.reason)
    }
}

/// A server's refusal is a failure (25006 is a misrouted write); a lost
/// connection after sending leaves the write uncertain.
fn write_error(err: &tokio_postgres::Error, session: &Session, rw: &PostgresSpec) -> WriteEnd {
    let fault = session.fault(err, rw.sslmode);
    let label = label(&fault);
    if err.as_db_error().is_some() {
        WriteEnd::Failed {
            label,
            detail: fault.detail,
        }
    } else {
        WriteEnd::Uncertain {
            label,
            detail: fault.detail,
        }
    }
}

/// The identity from the first row of an answer to [`IDENTITY`].
fn identity(messages: &[SimpleQueryMessage]) -> Identity {
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
fn counts(messages: &[SimpleQueryMessage]) -> BTreeMap<u64, u64> {
    Answer::new(messages)
        .rows()
        .filter_map(|row| {
            let seq = cell(row, 0)?.parse().ok()?;
            let count = cell(row, 1)?.parse().ok()?;
            Some((seq, count))
        })
        .collect()
}
