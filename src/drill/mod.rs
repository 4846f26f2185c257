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
    pub expect: ExpectedChange,
    pub budgets: Budgets,
}

/// What the change must do to the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedChange {
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

/// How many attempt timeouts a drill may spend outside its measuring
/// window: setup 2, opening the held session 1, the last attempts in
/// flight 1, the primary after and the read-back together 3, closing 1.
pub const ATTEMPTS_OUTSIDE_THE_WINDOW: u32 = 8;

impl DrillSpec {
    /// The longest a run can take: baseline + wait_for_change + settle +
    /// 8 × attempt_timeout (each wait below is bounded by its share).
    pub fn longest(&self) -> Duration {
        self.baseline
            + self.wait_for_change
            + self.settle
            + self.attempt_timeout * ATTEMPTS_OUTSIDE_THE_WINDOW
    }
}

/// Run the drill once; setup failures are in the report, never a panic.
/// `stop` (SIGTERM, SIGINT) ends the measuring early: the trigger's process
/// group is ended and the report holds what was measured, marked
/// interrupted. Every wait is bounded: see [`DrillSpec::longest`].
pub async fn run(
    spec: &DrillSpec,
    net: Net,
    scrubber: &Scrubber,
    stop: impl std::future::Future<Output = ()>,
) -> DrillReport {
    tokio::pin!(stop);
    let started = SystemTime::now();
    let env = target::Env {
        spec: spec.clone(),
        net,
        run_id: format!("{:016x}", fastrand::u64(..)),
        closing: Default::default(),
    };
    let ctx = Arc::new(Ctx {
        env,
        start: Instant::now(),
        log: Default::default(),
    });
    let setup = tokio::time::timeout(spec.attempt_timeout * 2, spec.target.setup(&ctx.env));
    let unusable = |error: String, interrupted: bool| {
        let mut report = DrillReport::unusable(spec, started, &ctx, scrubber.scrub(&error));
        report.interrupted = interrupted;
        report
    };
    let before = tokio::select! {
        answered = setup => match answered {
            Ok(Ok(identity)) => identity,
            Ok(Err(fault)) => {
                ctx.env.closed().await;
                return unusable(fault.detail, false);
            }
            Err(_) => {
                ctx.env.closed().await;
                let limit = humantime::format_duration(spec.attempt_timeout * 2);
                return unusable(format!("setup: no answer within {limit} (2 × attempt_timeout)"), false);
            }
        },
        () = &mut stop => {
            ctx.env.closed().await;
            return unusable("interrupted (SIGTERM) before measuring began".into(), true);
        }
    };
    let (stop_loops, stopped) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    let mut window = Window::default();
    let interrupted = tokio::select! {
        () = measure(&ctx, &before, &mut loops, stopped, &mut window, scrubber) => false,
        () = &mut stop => true,
    };
    if interrupted {
        window.end(&ctx, scrubber).await;
    }
    let _ = stop_loops.send(true);
    drain(&mut loops, spec.attempt_timeout).await;
    let (after, rows) = if interrupted {
        (None, None)
    } else {
        ending(&ctx).await
    };
    ctx.env.closed().await;
    let ends = report::Ends { before, after };
    let mut report = DrillReport::new(&ctx, started, ends, window.trigger, rows, scrubber);
    if interrupted {
        report.interrupt();
    }
    report
}

/// The trigger of a run: running, or what it did.
#[derive(Default)]
struct Window {
    triggered_at: Duration,
    running: Option<trigger::Running>,
    trigger: Option<Trigger>,
}

impl Window {
    /// End a trigger still running (the drill was interrupted), saying so.
    async fn end(&mut self, ctx: &Ctx, scrubber: &Scrubber) {
        if let Some(running) = self.running.take() {
            let ran = running.end("interrupted (SIGTERM)").await;
            self.record(ctx, ran, scrubber);
        }
    }

    /// Record a trigger that has finished (or whose limit ended it).
    async fn collect(&mut self, ctx: &Ctx, scrubber: &Scrubber) {
        if let Some(running) = self.running.take() {
            let ran = running.finished().await;
            self.record(ctx, ran, scrubber);
        }
    }

    /// What the trigger did, as the report shows it.
    fn record(&mut self, ctx: &Ctx, ran: trigger::Ran, scrubber: &Scrubber) {
        let finished = ctx.start.elapsed();
        let command = &ctx.env.spec.trigger;
        self.trigger = Some(Trigger::new(
            command,
            ran,
            self.triggered_at,
            finished,
            scrubber,
        ));
    }
}

/// The measuring window: the held session opened (bounded), the loops
/// started, the baseline, the change and the settle time.
async fn measure(
    ctx: &Arc<Ctx>,
    before: &Identity,
    loops: &mut tokio::task::JoinSet<()>,
    stopped: watch::Receiver<bool>,
    window: &mut Window,
    scrubber: &Scrubber,
) {
    let spec = &ctx.env.spec;
    let hold = tokio::time::timeout(spec.attempt_timeout, spec.target.hold(&ctx.env));
    let held = hold.await.unwrap_or(Err(record::Label::Timeout));
    loops.spawn(record::writes(ctx.clone(), stopped.clone()));
    loops.spawn(record::hold_session(ctx.clone(), held, stopped.clone()));
    if spec.target.name().parse::<std::net::IpAddr>().is_err() {
        loops.spawn(record::answers(ctx.clone(), stopped.clone()));
    }
    if spec.target.watches_reads() {
        loops.spawn(record::reads(ctx.clone(), stopped));
    }
    tokio::time::sleep(spec.baseline).await;
    let change = change_window(ctx, before, window, scrubber).await;
    if change.is_some() || spec.expect == ExpectedChange::NoChange {
        tokio::time::sleep(spec.settle).await;
    }
}

/// Wait for the loops to stop: each attempt in flight is bounded by
/// `attempt_timeout`, so this is too (anything left is aborted).
async fn drain(loops: &mut tokio::task::JoinSet<()>, limit: Duration) {
    let joined = async { while loops.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, joined).await.is_err() {
        loops.abort_all();
    }
}

/// Who takes writes at the end and this run's rows read back, asked
/// together within three attempt timeouts; `None` for what never answered.
async fn ending(
    ctx: &Ctx,
) -> (
    Option<Identity>,
    Option<std::collections::BTreeMap<u64, u64>>,
) {
    let (env, last) = (&ctx.env, ctx.last_seq());
    let limit = env.spec.attempt_timeout * 3;
    let after = async {
        let asked = tokio::time::timeout(limit, env.spec.target.identify(env));
        asked.await.ok()?.ok()
    };
    let rows = async {
        let asked = tokio::time::timeout(limit, env.spec.target.read_back(env, last));
        asked.await.ok().flatten()
    };
    tokio::join!(after, rows)
}

/// Run the trigger (if any) and wait, bounded by `wait_for_change`, for
/// the change the drill expects: a new primary, or (no-change) the
/// trigger's end.
async fn change_window(
    ctx: &Arc<Ctx>,
    before: &Identity,
    window: &mut Window,
    scrubber: &Scrubber,
) -> Option<(Duration, Identity)> {
    window.triggered_at = ctx.start.elapsed();
    let deadline = Instant::now() + ctx.env.spec.wait_for_change;
    window.running = trigger::Running::start(&ctx.env.spec.trigger, ctx.env.spec.wait_for_change);
    loop {
        if window.running.as_ref().is_some_and(|r| r.is_finished()) {
            window.collect(ctx, scrubber).await;
        }
        let change = ctx.first_change(before);
        let waiting_on_trigger = window.running.is_some();
        let done = match ctx.env.spec.expect {
            ExpectedChange::PrimaryChange => change.is_some() && !waiting_on_trigger,
            ExpectedChange::NoChange => !waiting_on_trigger,
        };
        let now = Instant::now();
        if done || now >= deadline {
            // A trigger past wait_for_change is killed by its own limit.
            window.collect(ctx, scrubber).await;
            return change;
        }
        tokio::time::sleep(ctx.env.spec.interval.min(deadline - now)).await;
    }
}
