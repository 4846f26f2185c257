//! What the drill measures while a change happens, whatever the kind:
//! one write attempt per interval on a fresh connection (as an application
//! reconnecting), one read per interval on the read-only endpoint, and one
//! session opened before the change that is used every interval. What each
//! attempt does is the kind's ([`super::target::Target`]); the timing, the
//! bounds and the record are here.

use super::target::{Env, Held};
pub use super::target::{Identity, Label, ReadFrom, WriteEnd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One write attempt, timed from the drill's start.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub seq: u64,
    pub started: Duration,
    pub finished: Duration,
    pub fate: WriteEnd,
}

/// One read on the read-only port.
#[derive(Debug, Clone)]
pub struct Read {
    pub started: Duration,
    pub finished: Duration,
    /// Who answered, or why nobody did.
    pub answer: Result<ReadFrom, Label>,
}

/// What happened to the session opened before the change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionEnd {
    /// Still answering when the drill stopped.
    #[default]
    Survived,
    /// The server or a proxy ended it: when, and how.
    Cut { at: Duration, label: Label },
    /// A query on it got no answer within the attempt timeout.
    Hung { at: Duration },
    /// It could not even be opened before the change.
    NeverOpened { label: Label },
}

/// Everything measured, shared by the loops and read by the report.
#[derive(Debug, Default)]
pub struct Log {
    pub writes: Vec<Attempt>,
    pub reads: Vec<Read>,
    pub session: SessionEnd,
    /// The endpoint name's answers: the first, then each change, timed
    /// from the drill's start (a failed lookup is no answer).
    pub answers: Vec<(Duration, Vec<std::net::IpAddr>)>,
}

/// What every loop needs: the kind's environment, the clock and the log.
pub struct Ctx {
    pub env: Env,
    pub start: Instant,
    pub log: Mutex<Log>,
}

impl Ctx {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The highest write sequence number attempted so far (0 for none).
    pub fn last_seq(&self) -> u64 {
        self.log().writes.iter().map(|a| a.seq).max().unwrap_or(0)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The first acknowledged write from another server than `before`.
    pub fn first_change(&self, before: &Identity) -> Option<(Duration, Identity)> {
        self.log()
            .writes
            .iter()
            .find_map(|attempt| match &attempt.fate {
                WriteEnd::Ok(identity) if identity.server != before.server => {
                    Some((attempt.finished, identity.clone()))
                }
                _ => None,
            })
    }
}

/// One write on a fresh connection, bounded by the attempt timeout.
async fn write_once(ctx: Arc<Ctx>, seq: u64) -> Attempt {
    let started = ctx.elapsed();
    let sent = AtomicBool::new(false);
    let work = ctx.env.spec.target.write(&ctx.env, seq, &sent);
    let fate = match tokio::time::timeout(ctx.env.spec.attempt_timeout, work).await {
        Ok(Ok(identity)) => WriteEnd::Ok(identity),
        Ok(Err(fate)) => fate,
        Err(_) if sent.load(Ordering::SeqCst) => WriteEnd::Uncertain {
            label: Label::Timeout,
            detail: "sent, and no answer within attempt_timeout".into(),
        },
        Err(_) => WriteEnd::Failed {
            label: Label::Timeout,
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

/// One read on the read-only endpoint, bounded by the attempt timeout.
async fn read_once(ctx: Arc<Ctx>) -> Read {
    let started = ctx.elapsed();
    let work = ctx.env.spec.target.read(&ctx.env);
    let answer = match tokio::time::timeout(ctx.env.spec.attempt_timeout, work).await {
        Ok(answer) => answer,
        Err(_) => Err(Label::Timeout),
    };
    Read {
        started,
        finished: ctx.elapsed(),
        answer,
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
    let mut ticker = tokio::time::interval(ctx.env.spec.interval);
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

/// The endpoint's name resolved every interval through the suite's
/// resolver, as the writes' fresh connections do: the answers kept when
/// they change, so the report says when DNS moved.
pub async fn answers(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(ctx.env.spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let asked = ctx.env.spec.target.name();
        let lookup = tokio::time::timeout(ctx.env.spec.attempt_timeout, ctx.env.net.resolve(asked));
        let Ok(Ok(answer)) = lookup.await else {
            continue;
        };
        let at = ctx.elapsed();
        let mut log = ctx.log();
        if log.answers.last().is_none_or(|(_, last)| *last != answer) {
            log.answers.push((at, answer));
        }
    }
}

/// Hold a session opened before the change and use it every interval
/// until it fails, hangs or the drill stops.
pub async fn hold_session(
    ctx: Arc<Ctx>,
    held: Result<Box<dyn Held>, Label>,
    mut stop: watch::Receiver<bool>,
) {
    let held = match held {
        Ok(held) => held,
        Err(label) => {
            ctx.log().session = SessionEnd::NeverOpened { label };
            return;
        }
    };
    let end = loop {
        tokio::select! {
            _ = stop.changed() => break SessionEnd::Survived,
            _ = tokio::time::sleep(ctx.env.spec.interval) => {}
        }
        match tokio::time::timeout(ctx.env.spec.attempt_timeout, held.ask()).await {
            Ok(Ok(())) => continue,
            Ok(Err(label)) => {
                break SessionEnd::Cut {
                    at: ctx.elapsed(),
                    label,
                }
            }
            Err(_) => break SessionEnd::Hung { at: ctx.elapsed() },
        }
    };
    ctx.log().session = end;
    ctx.env.close_later(held.close());
}
