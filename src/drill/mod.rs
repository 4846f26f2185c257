//! `vpc-probe drill`: a failover rehearsal measured from the ECS side,
//! through the proxy only. While a switchover or failover happens (run by
//! the drill's `trigger` or by an operator), the drill writes once per
//! interval on a fresh connection, reads from the read-only endpoint, and
//! keeps one session opened before the change; then it reads back its own
//! writes and judges the figures against the drill's budgets.
//!
//! Layout: `keys` (the `[[drill]]` suite keys), `target` (what a drill kind
//! does: the seam), `postgres` and `redis` (the kinds; `cluster` is how the
//! Redis one follows a cluster's slots and redirects), `record` (the
//! measuring loops, any kind), `trigger`, `figures`, `verdict` (budgets),
//! `report` (the JSON schema), `text` and `html` (the renderers).

mod cluster;
mod figures;
pub mod html;
pub mod keys;
pub mod postgres;
pub mod record;
pub mod redis;
pub mod report;
pub mod target;
mod text;
pub mod trigger;
mod verdict;

use crate::net::Net;
use crate::secret::Scrubber;
use record::{Ctx, Identity};
use report::{DrillReport, Trigger};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use target::Target;
use tokio::sync::watch;
use tokio::time::Instant;

/// A validated `[[drill]]`.
#[derive(Debug, Clone)]
pub struct DrillSpec {
    pub name: String,
    /// What the drill's kind does against its service.
    pub target: Arc<dyn Target>,
    pub interval: Duration,
    pub attempt_timeout: Duration,
    /// Measuring time before the trigger runs.
    pub baseline: Duration,
    pub wait_for_change: Duration,
    pub settle: Duration,
    /// A command run after the baseline (program and arguments); empty
    /// when the operator makes the change.
    pub trigger: Vec<String>,
    pub expect: Expect,
    pub budgets: Budgets,
}

/// What the change must do to the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// A switchover or failover: another node must take the writes.
    #[default]
    PrimaryChange,
    /// A HAProxy reload or PgBouncer RELOAD: the primary must stay, every
    /// write land, and the session opened before it survive.
    NoChange,
}

/// What must happen to a session opened before the change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionFate {
    /// Ended by the server or a proxy, so the application reconnects.
    Cut,
    /// Still answering afterwards.
    Survive,
    /// Either; a hung session still fails.
    #[default]
    Any,
}

/// The limits the drill's figures are judged against.
#[derive(Debug, Clone)]
pub struct Budgets {
    pub max_write_gap: Duration,
    pub max_lost_writes: u64,
    pub max_misrouted_writes: u64,
    pub max_ro_gap: Option<Duration>,
    pub open_session: SessionFate,
}

impl DrillSpec {
    /// What is drilled, for `list`.
    pub fn target(&self) -> String {
        self.target.describe()
    }
}

/// Run the drill once; setup failures are in the report, never a panic.
pub async fn run(spec: &DrillSpec, net: Net, scrubber: &Scrubber) -> DrillReport {
    let started = SystemTime::now();
    let ctx = Arc::new(Ctx {
        spec: spec.clone(),
        net,
        start: Instant::now(),
        run_id: format!("{:016x}", fastrand::u64(..)),
        log: Default::default(),
        closing: Default::default(),
    });
    let before = match ctx.spec.target.setup(&ctx).await {
        Ok(identity) => identity,
        Err(fault) => {
            ctx.closed().await;
            return DrillReport::unusable(spec, started, &ctx, scrubber.scrub(&fault.detail));
        }
    };
    let (stop, stopped) = watch::channel(false);
    let held = ctx.spec.target.hold(&ctx).await;
    let mut loops = tokio::task::JoinSet::new();
    loops.spawn(record::writes(ctx.clone(), stopped.clone()));
    loops.spawn(record::hold_session(ctx.clone(), held, stopped.clone()));
    if spec.target.name().parse::<std::net::IpAddr>().is_err() {
        loops.spawn(record::answers(ctx.clone(), stopped.clone()));
    }
    if spec.target.watches_reads() {
        loops.spawn(record::reads(ctx.clone(), stopped));
    }
    tokio::time::sleep(spec.baseline).await;
    let (trigger, change) = change_window(&ctx, &before, scrubber).await;
    if change.is_some() || spec.expect == Expect::NoChange {
        tokio::time::sleep(spec.settle).await;
    }
    let _ = stop.send(true);
    while loops.join_next().await.is_some() {}
    let after = bounded(&ctx, ctx.spec.target.identify(&ctx)).await;
    let rows = ctx.spec.target.read_back(&ctx).await;
    ctx.closed().await;
    let ends = report::Ends { before, after };
    DrillReport::new(&ctx, started, ends, trigger, rows, scrubber)
}

/// Who takes writes at the end, asked within five attempt timeouts;
/// `None` when nobody answered.
async fn bounded(
    ctx: &Ctx,
    asked: impl std::future::Future<Output = Result<Identity, crate::outcome::Fault>>,
) -> Option<Identity> {
    let limit = ctx.spec.attempt_timeout * 5;
    tokio::time::timeout(limit, asked).await.ok()?.ok()
}

/// Run the trigger (if any) and wait, bounded, for the change the drill
/// expects: a new primary, or (no-change) the trigger's end.
async fn change_window(
    ctx: &Arc<Ctx>,
    before: &Identity,
    scrubber: &Scrubber,
) -> (Option<Trigger>, Option<(Duration, Identity)>) {
    let triggered_at = ctx.start.elapsed();
    let deadline = Instant::now() + ctx.spec.wait_for_change;
    let command = ctx.spec.trigger.clone();
    let mut running = (!command.is_empty())
        .then(|| tokio::spawn(trigger::run_trigger(command, ctx.spec.wait_for_change)));
    let mut trigger = None;
    loop {
        if let Some(handle) = running.as_mut().filter(|handle| handle.is_finished()) {
            let finished = ctx.start.elapsed();
            let ran = handle.await.unwrap_or_default();
            trigger = Some(Trigger::new(
                &ctx.spec.trigger,
                ran,
                triggered_at,
                finished,
                scrubber,
            ));
            running = None;
        }
        let change = ctx.first_change(before);
        let waiting_on_trigger = running.is_some();
        let done = match ctx.spec.expect {
            Expect::PrimaryChange => change.is_some() && !waiting_on_trigger,
            Expect::NoChange => !waiting_on_trigger,
        };
        if done || Instant::now() >= deadline {
            if let Some(handle) = running {
                handle.abort();
                trigger = Some(Trigger::timed_out(
                    &ctx.spec.trigger,
                    triggered_at,
                    ctx.spec.wait_for_change,
                ));
            }
            return (trigger, change);
        }
        tokio::time::sleep(ctx.spec.interval).await;
    }
}
