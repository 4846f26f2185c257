//! Runs a suite's checks all at once, each under its own deadline, and
//! collects their outcomes in suite order.
//!
//! Layout: this file runs the suite and isolates each check in its own
//! task; `one` is a single check's run and how its outcome is shaped;
//! `ended` the outcomes of checks that did not finish.

mod ended;
#[cfg(test)]
mod future_sizes;
mod one;
#[cfg(test)]
mod tests;

use ended::{crashed, interrupted};
use one::run_check;

use crate::check::InFlight;
use crate::net::Net;
use crate::outcome::Outcome;
use crate::secret::Scrubber;
use crate::suite::{Check, Suite};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinSet;

/// All outcomes of one run of a suite.
#[derive(Debug, Clone)]
pub struct Report {
    pub suite: String,
    pub started: SystemTime,
    pub duration: Duration,
    pub checks: Vec<Outcome>,
}

impl Report {
    pub fn success(&self) -> bool {
        self.checks.iter().all(Outcome::success)
    }

    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.success()).count()
    }
}

/// The checks of `suite` to run: all, or those named in `only`.
pub fn select<'a>(suite: &'a Suite, only: &[String]) -> Result<Vec<&'a Check>, String> {
    if let Some(unknown) = only
        .iter()
        .find(|name| !suite.checks.iter().any(|c| &c.name == *name))
    {
        return Err(format!(
            "--only {unknown}: no such check in suite {}",
            suite.name
        ));
    }
    Ok(suite
        .checks
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .collect())
}

/// Run `checks` concurrently; `progress` sees each outcome as it finishes.
pub async fn run(
    suite: &Suite,
    checks: &[&Check],
    progress: impl FnMut(&Outcome),
) -> anyhow::Result<Report> {
    run_until(suite, checks, progress, std::future::pending()).await
}

/// Run `checks` until they finish or `stop` completes (SIGTERM from ECS):
/// then the checks still running are cut, each reported `interrupted` in
/// the phase it was in, so a gate still gets the report of what finished.
///
/// Each check is one task in one JoinSet, its future built straight into
/// the task: one copy per check, sized for its own kind (see
/// [`CheckSpec::run`](crate::check::CheckSpec::run)), never a second copy
/// waiting in a stream for its turn to be spawned.
pub async fn run_until(
    suite: &Suite,
    checks: &[&Check],
    mut progress: impl FnMut(&Outcome),
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let net = Net::new(suite.resolver, suite.longest_timeout())?;
    let in_flight: Vec<InFlight> = checks.iter().map(|_| InFlight::default()).collect();
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::with_capacity(checks.len());
    for (index, check) in checks.iter().enumerate() {
        let task = tasks.spawn(owned_check(
            net.clone(),
            Arc::new((*check).clone()),
            suite.scrubber.clone(),
            in_flight[index].clone(),
        ));
        index_of.insert(task.id(), index);
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            next = tasks.join_next_with_id() => {
                let Some(joined) = next else { break };
                let id = joined.as_ref().map_or_else(|err| err.id(), |(id, _)| *id);
                let index = index_of[&id];
                let outcome = settled(
                    checks[index],
                    &suite.scrubber,
                    &in_flight[index],
                    clock.elapsed(),
                    joined.map(|(_, outcome)| outcome),
                );
                progress(&outcome);
                outcomes[index] = Some(outcome);
            },
            () = &mut stop => break,
        }
    }
    // Dropping the set aborts the checks still running.
    drop(tasks);
    let cut = |index: usize| {
        interrupted(
            checks[index],
            &suite.scrubber,
            in_flight[index].phase(),
            clock.elapsed(),
        )
    };
    Ok(Report {
        suite: suite.name.clone(),
        started,
        duration: clock.elapsed(),
        checks: outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| outcome.unwrap_or_else(|| cut(index)))
            .collect(),
    })
}

/// Run one check in a task of its own: checks run in parallel, and a panic
/// on a hostile answer becomes a failed outcome instead of ending the run
/// (or a `serve` loop). The task lives in a JoinSet, so dropping this
/// future (a reload, a shutdown) aborts the check in flight too.
pub async fn run_isolated(net: &Net, check: &Check, scrubber: &Scrubber) -> Outcome {
    let in_flight = InFlight::default();
    let task = owned_check(
        net.clone(),
        Arc::new(check.clone()),
        scrubber.clone(),
        in_flight.clone(),
    );
    isolated(check, scrubber, in_flight, task).await
}

/// Run `run` as a task; a panic becomes a failed outcome in the phase
/// `in_flight` last entered, after the time it had run.
fn isolated<'a, Fut>(
    check: &'a Check,
    scrubber: &'a Scrubber,
    in_flight: InFlight,
    run: Fut,
) -> impl Future<Output = Outcome> + use<'a, Fut>
where
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let clock = Instant::now();
    let mut one = JoinSet::new();
    // Spawned here, not at the first poll: the returned future holds only
    // the set, never a copy of `run`.
    one.spawn(run);
    async move {
        let joined = one.join_next().await.expect("one task was spawned");
        settled(check, scrubber, &in_flight, clock.elapsed(), joined)
    }
}

/// A finished task's outcome; a task that panicked becomes a failed
/// outcome in the phase it was in.
fn settled(
    check: &Check,
    scrubber: &Scrubber,
    in_flight: &InFlight,
    ran: Duration,
    joined: Result<Outcome, tokio::task::JoinError>,
) -> Outcome {
    joined.unwrap_or_else(|err| crashed(check, scrubber, &err, in_flight.phase(), ran))
}

/// [`run_check`] owning what it needs, as a task does.
async fn owned_check(
    net: Net,
    check: Arc<Check>,
    scrubber: Scrubber,
    in_flight: InFlight,
) -> Outcome {
    run_check(&net, &check, &scrubber, in_flight).await
}
