//! The seam between the recorder and a drill kind. A kind says what to do
//! against its service (one file each: `postgres.rs`); `record.rs` times,
//! bounds and records every answer, and `figures.rs` reads only what was
//! recorded. A new drill kind is one file implementing [`Target`] plus its
//! arm in [`DrillKind`]'s match in `keys.rs` (`postgres.rs`, `redis.rs`).

use super::record::{Ctx, Identity, WriteEnd};
use crate::outcome::Fault;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// The drill kinds: the suite's `kind` and the report's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
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
    fn setup<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Identity, Fault>>;

    /// Name the server taking writes now (after the change, for the report).
    fn identify<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Identity, Fault>>;

    /// Write `seq` on a fresh connection, setting `sent` once the write
    /// has left (a lost answer after that is uncertain, not failed).
    fn write<'a>(
        &'a self,
        ctx: &'a Ctx,
        seq: u64,
        sent: &'a AtomicBool,
    ) -> BoxFuture<'a, Result<Identity, WriteEnd>>;

    /// One read on the read-only endpoint: `true` when a replica answered,
    /// `false` a primary; the failure's label otherwise.
    fn read<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<bool, &'static str>>;

    /// A session opened before the change, to be held through it.
    fn hold<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Box<dyn Held>, &'static str>>;

    /// This run's writes read back, `seq` → times present; `None` when the
    /// service never answered.
    fn read_back<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Option<BTreeMap<u64, u64>>>;
}

/// A session held through the change, as a pooled connection would be.
pub trait Held: Send + Sync {
    /// Use it once; the failure's label when it no longer works.
    fn ask(&self) -> BoxFuture<'_, Result<(), &'static str>>;

    /// End it, as the kind ends sessions.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}
