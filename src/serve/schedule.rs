//! Runs each check in its own loop: first at start, then every interval
//! with jitter, so many probe tasks started together drift apart. A check
//! never overlaps itself: its next run waits for the previous one.

use super::state::{Readiness, State};
use crate::aws::settings::{Explain, Settings};
use crate::net::Net;
use crate::report;
use crate::runner;
use crate::secret::Scrubber;
use crate::suite::{Check, Suite};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Each wait is the interval plus or minus this fraction of it.
const JITTER: f64 = 0.1;

/// The running loops of one suite; dropping it stops them.
pub struct Schedule {
    loops: JoinSet<()>,
}

impl Schedule {
    /// The resolver the suite's checks share; the one step that can fail.
    pub fn resolver(suite: &Suite) -> anyhow::Result<Net> {
        Net::new(suite.resolver, suite.longest_timeout())
    }

    pub fn start(suite: &Suite, net: &Net, interval: Duration, state: &Arc<State>) -> Schedule {
        let mut loops = JoinSet::new();
        for check in &suite.checks {
            let interval = check.interval.unwrap_or(interval);
            if check.timeout > interval {
                tracing::warn!(
                    check = %check.name,
                    "the check's timeout exceeds its interval: a slow run delays its next run"
                );
            }
            let (net, check, scrubber, state) = (
                net.clone(),
                check.clone(),
                suite.scrubber.clone(),
                state.clone(),
            );
            loops.spawn(repeat(net, check, scrubber, interval, state));
        }
        if let Some(settings) = suite.aws.clone().filter(|s| s.explain != Explain::Never) {
            let every = interval.max(EXPLAIN_EVERY);
            loops.spawn(explain(
                settings,
                suite.checks.clone(),
                every,
                state.clone(),
            ));
        }
        Schedule { loops }
    }

    /// Stop every loop, abandoning checks in flight (their sockets close).
    pub async fn stop(mut self) {
        self.loops.abort_all();
        while self.loops.join_next().await.is_some() {}
    }
}

async fn repeat(net: Net, check: Check, scrubber: Scrubber, interval: Duration, state: Arc<State>) {
    loop {
        let outcome = runner::run_isolated(&net, &check, &scrubber).await;
        let line = report::text::progress_line(&outcome);
        match outcome.failure() {
            None => tracing::debug!(check = %outcome.name, "{line}"),
            Some(failure) => {
                tracing::warn!(check = %outcome.name, reason = %failure.reason, "{line}")
            }
        }
        state.record(outcome);
        tokio::time::sleep(jittered(interval)).await;
    }
}

/// How often `serve` reads the AWS describes at most: one reading for all
/// failing checks per period, whatever their number.
const EXPLAIN_EVERY: Duration = Duration::from_secs(60);

/// Explain the failing checks' latest outcomes: once every check has run
/// (readiness), then once per period.
async fn explain(settings: Settings, checks: Vec<Check>, every: Duration, state: Arc<State>) {
    let first_round = Duration::from_millis(200);
    while !matches!(state.readiness(), Readiness::Ready) {
        tokio::time::sleep(first_round).await;
    }
    loop {
        let (mut outcomes, identity) = state.to_explain(settings.explain == Explain::Always);
        if !outcomes.is_empty() {
            crate::evidence::explain_checks(&settings, &checks, &mut outcomes, identity.as_ref())
                .await;
            state.explained(outcomes);
        }
        tokio::time::sleep(every).await;
    }
}

fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 - JITTER + 2.0 * JITTER * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let interval = Duration::from_secs(30);
        for _ in 0..1000 {
            let wait = jittered(interval);
            assert!(wait >= Duration::from_secs(27) && wait <= Duration::from_secs(33));
        }
    }
}
