//! The seam between the recorder and a drill kind. A kind says what to do
//! against its service (one file each: `postgres.rs`); `record.rs` times,
//! bounds and records every answer, and `figures.rs` reads only what was
//! recorded. A new drill kind is one file implementing [`Target`] plus its
//! arm in [`DrillKind`]'s match in `keys.rs` (`postgres.rs`, `redis.rs`).

use super::DrillSpec;
use crate::net::Net;
use crate::outcome::{Fault, Reason};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use tokio::task::JoinSet;

/// The drill kinds: the suite's `kind` and the report's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum DrillKind {
    PostgresFailover,
    RedisFailover,
}

impl DrillKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which server answered: its address (and port), and the kind's own
/// generation mark (PostgreSQL's WAL timeline) when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub server: String,
    pub timeline: Option<String>,
}

/// How one write attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteEnd {
    /// Acknowledged by `Identity`.
    Ok(Identity),
    /// Definitely not applied: refused before or by the server.
    Failed { label: Label, detail: String },
    /// Sent, and no answer came: it may or may not have been applied.
    Uncertain { label: Label, detail: String },
}

/// Who answered a read on the read-only endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Replica,
    Primary,
}

impl ReadFrom {
    /// The report's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Replica => "replica",
            ReadFrom::Primary => "primary",
        }
    }
}

/// Why an attempt failed, as the report labels it: what a failover shows
/// by the server's own code, a timeout, else the failure's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// PostgreSQL 25006: a write reached a read-only server.
    ReadOnlyTransaction,
    /// PostgreSQL 57P01: the server is shutting down.
    AdminShutdown,
    /// PostgreSQL 57P03: the server is starting or stopping.
    CannotConnectNow,
    /// Redis READONLY: a write reached a replica.
    Readonly,
    /// Redis MOVED: a write reached a node that does not own the slot.
    Moved,
    /// No answer within `attempt_timeout`.
    Timeout,
    /// The drill has no read-only endpoint to ask.
    NoReadOnlyPort,
    /// Any other failure, by its reason.
    Reason(Reason),
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::ReadOnlyTransaction => "read_only_transaction",
            Label::AdminShutdown => "admin_shutdown",
            Label::CannotConnectNow => "cannot_connect_now",
            Label::Readonly => "readonly",
            Label::Moved => "moved",
            Label::Timeout => "timeout",
            Label::NoReadOnlyPort => "no_read_only_port",
            Label::Reason(reason) => reason.as_str(),
        }
    }

    /// A write the proxy sent to a server that cannot take it (a replica,
    /// a demoted primary, a node that does not own the slot).
    pub fn misrouted(self) -> bool {
        matches!(
            self,
            Label::ReadOnlyTransaction | Label::Readonly | Label::Moved
        )
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every attempt of a kind needs: the spec, the resolver, the run's
/// id, and where its sessions close off the clock.
pub struct Env {
    pub spec: DrillSpec,
    pub net: Net,
    pub run_id: String,
    /// Sessions closing off the clock of the attempt that used them, each
    /// bounded by `attempt_timeout`; awaited by [`Env::closed`].
    pub closing: Mutex<JoinSet<()>>,
}

impl Env {
    /// Run a session's `close` without holding up the caller's timing; it
    /// is bounded and awaited before the drill ends ([`Env::closed`]).
    pub fn close_later(&self, close: impl Future<Output = ()> + Send + 'static) {
        let limit = self.spec.attempt_timeout;
        let mut closing = self.closing.lock().unwrap_or_else(|p| p.into_inner());
        closing.spawn(async move {
            let _ = tokio::time::timeout(limit, close).await;
        });
    }

    /// Wait until every session handed to [`Env::close_later`] has closed
    /// (or its bounded close gave up).
    pub async fn closed(&self) {
        let mut closing =
            std::mem::take(&mut *self.closing.lock().unwrap_or_else(|p| p.into_inner()));
        while closing.join_next().await.is_some() {}
    }
}

/// What a drill kind does against its service. Every call is one attempt:
/// the recorder bounds it by `attempt_timeout` and records its answer.
pub trait Target: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> DrillKind;

    /// What is drilled, for `list` (never a secret).
    fn describe(&self) -> String;

    /// The name clients resolve to reach the service: the recorder watches
    /// its answer change (an IP literal is never watched).
    fn name(&self) -> &str;

    /// Whether a read-only endpoint is watched too.
    fn watches_reads(&self) -> bool;

    /// Prepare what writes need and name the server taking writes now.
    fn setup<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>>;

    /// Name the server taking writes now (after the change, for the report).
    fn identify<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>>;

    /// Write `seq` on a fresh connection, setting `sent` once the write
    /// has left (a lost answer after that is uncertain, not failed).
    fn write<'a>(
        &'a self,
        ctx: &'a Env,
        seq: u64,
        sent: &'a AtomicBool,
    ) -> BoxFuture<'a, Result<Identity, WriteEnd>>;

    /// One read on the read-only endpoint: who answered, or the failure's
    /// label.
    fn read<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<ReadFrom, Label>>;

    /// A session opened before the change, to be held through it.
    fn hold<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Box<dyn Held>, Label>>;

    /// This run's writes read back, `seq` → times present, for the
    /// attempts `1..=last` made; `None` when the service never answered.
    fn read_back<'a>(
        &'a self,
        ctx: &'a Env,
        last: u64,
    ) -> BoxFuture<'a, Option<BTreeMap<u64, u64>>>;
}

/// A session held through the change, as a pooled connection would be.
pub trait Held: Send + Sync {
    /// Use it once; the failure's label when it no longer works.
    fn ask(&self) -> BoxFuture<'_, Result<(), Label>>;

    /// End it, as the kind ends sessions.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}
