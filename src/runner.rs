//! Runs a suite's checks all at once, each under its own deadline, and
//! collects their outcomes in suite order.

use crate::check::{InFlight, Probe};
use crate::net::Net;
use crate::outcome::{AddressResult, Failure, Fault, Outcome, Phase, Reason};
use crate::secret::Scrubber;
use crate::suite::{Check, Suite};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
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
    let mut running: FuturesUnordered<_> = checks
        .iter()
        .zip(&in_flight)
        .enumerate()
        .map(|(index, (check, in_flight))| {
            let (net, in_flight) = (net.clone(), in_flight.clone());
            let (task_check, scrubber) = ((*check).clone(), suite.scrubber.clone());
            async move {
                let watched = in_flight.clone();
                let outcome = isolated(check, &suite.scrubber, watched, async move {
                    run_check(&net, &task_check, &scrubber, in_flight).await
                })
                .await;
                (index, outcome)
            }
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            next = running.next() => match next {
                Some((index, outcome)) => {
                    progress(&outcome);
                    outcomes[index] = Some(outcome);
                }
                None => break,
            },
            () = &mut stop => break,
        }
    }
    drop(running);
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
    let (task_net, task_check, task_scrubber) = (net.clone(), check.clone(), scrubber.clone());
    let in_flight = InFlight::default();
    let watched = in_flight.clone();
    isolated(check, scrubber, watched, async move {
        run_check(&task_net, &task_check, &task_scrubber, in_flight).await
    })
    .await
}

/// Run `run` as a task; a panic becomes a failed outcome in the phase
/// `in_flight` last entered, after the time it had run.
async fn isolated<Fut>(check: &Check, scrubber: &Scrubber, in_flight: InFlight, run: Fut) -> Outcome
where
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let clock = Instant::now();
    let mut one = JoinSet::new();
    one.spawn(run);
    match one.join_next().await {
        Some(Ok(outcome)) => outcome,
        Some(Err(err)) => crashed(check, scrubber, &err, in_flight.phase(), clock.elapsed()),
        None => unreachable!("one task was spawned"),
    }
}

/// Run one check and scrub its secrets from everything it reports.
async fn run_check(net: &Net, check: &Check, scrubber: &Scrubber, in_flight: InFlight) -> Outcome {
    let clock = Instant::now();
    let mut probe = Probe::new(net, check.timeout, in_flight);
    let result = check.spec.run_at(&mut probe, check.addresses).await;
    let elapsed = clock.elapsed();
    let result = result
        .and_then(|()| within_budget(check.max_duration, elapsed, &probe.phases))
        .map_err(|failure| scrubbed(failure, scrubber));
    tracing::debug!(check = %check.name, ok = result.is_ok(), "check finished");
    Outcome {
        name: check.name.clone(),
        kind: check.spec.kind(),
        target: scrubber.scrub(&check.spec.target()),
        result,
        duration: elapsed,
        phases: probe.phases,
        observed: probe
            .observed
            .into_iter()
            .map(|(key, value)| (key, scrubber.scrub(&value)))
            .collect(),
        cycles: probe.cycles,
        addresses: probe
            .addresses
            .into_iter()
            .map(|one| AddressResult {
                result: one.result.map_err(|failure| scrubbed(failure, scrubber)),
                ..one
            })
            .collect(),
    }
}

/// The failure with every secret removed from its detail.
fn scrubbed(failure: Failure, scrubber: &Scrubber) -> Failure {
    Failure {
        detail: scrubber.scrub(&failure.detail),
        ..failure
    }
}

/// A run that passed but overran its latency budget is `too_slow`,
/// attributed to the phase that took longest.
fn within_budget(
    budget: Option<Duration>,
    elapsed: Duration,
    phases: &BTreeMap<Phase, Duration>,
) -> Result<(), Failure> {
    let Some(budget) = budget.filter(|budget| elapsed > *budget) else {
        return Ok(());
    };
    let (phase, spent) = phases
        .iter()
        .max_by_key(|(_, spent)| **spent)
        .map_or((Phase::Connect, Duration::ZERO), |(phase, spent)| {
            (*phase, *spent)
        });
    let detail = format!(
        "took {} against a budget of {}; the slowest phase, {}, took {}",
        millis(elapsed),
        millis(budget),
        phase.as_str(),
        millis(spent)
    );
    Err(Failure::new(phase, Fault::new(Reason::TooSlow, detail)))
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// A check cut by a stop signal, in the phase it was in.
fn interrupted(check: &Check, scrubber: &Scrubber, phase: Phase, duration: Duration) -> Outcome {
    let detail = "the run was stopped (SIGTERM or SIGINT) before this check finished";
    Outcome {
        result: Err(Failure::new(phase, Fault::new(Reason::Interrupted, detail))),
        duration,
        ..unfinished(check, scrubber)
    }
}

/// An outcome with nothing observed yet, for checks that did not finish.
fn unfinished(check: &Check, scrubber: &Scrubber) -> Outcome {
    Outcome {
        name: check.name.clone(),
        kind: check.spec.kind(),
        target: scrubber.scrub(&check.spec.target()),
        result: Ok(()),
        duration: Duration::ZERO,
        phases: Default::default(),
        observed: Default::default(),
        cycles: None,
        addresses: Vec::new(),
    }
}

/// A check whose task panicked still shows up, failed, in the report.
fn crashed(
    check: &Check,
    scrubber: &Scrubber,
    err: &tokio::task::JoinError,
    phase: Phase,
    duration: Duration,
) -> Outcome {
    let detail = scrubber.scrub(&format!("the probe crashed on this server's answer: {err}"));
    Outcome {
        result: Err(Failure::new(
            phase,
            Fault::new(Reason::ProtocolError, detail),
        )),
        duration,
        ..unfinished(check, scrubber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_is_too_slow_in_the_slowest_phase() {
        let phases = BTreeMap::from([
            (Phase::Connect, Duration::from_millis(5)),
            (Phase::Auth, Duration::from_millis(400)),
        ]);
        let budget = Some(Duration::from_millis(300));
        let failure = within_budget(budget, Duration::from_millis(420), &phases).unwrap_err();
        assert_eq!(
            (failure.reason, failure.phase),
            (Reason::TooSlow, Phase::Auth)
        );
        assert!(failure.detail.contains("420 ms") && failure.detail.contains("300 ms"));
        assert!(within_budget(budget, Duration::from_millis(200), &phases).is_ok());
        assert!(within_budget(None, Duration::from_secs(9), &phases).is_ok());
    }

    #[tokio::test]
    async fn a_crash_is_reported_in_its_phase_after_the_time_it_ran() {
        let check = Check {
            name: "hostile".into(),
            timeout: Duration::from_secs(5),
            max_duration: None,
            addresses: Default::default(),
            interval: None,
            spec: crate::check::CheckSpec::Tcp(crate::check::tcp::TcpSpec {
                host: "127.0.0.1".into(),
                port: 9,
                expect: Default::default(),
            }),
        };
        let net = Net::new(Some("127.0.0.1:9".parse().unwrap()), Duration::from_secs(1)).unwrap();
        let in_flight = InFlight::default();
        let watched = in_flight.clone();
        let outcome = isolated(&check, &Scrubber::default(), watched, async move {
            let mut probe = Probe::new(&net, Duration::from_secs(5), in_flight);
            let _ = probe
                .phase(Phase::Auth, async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    panic!("a hostile answer");
                    #[allow(unreachable_code)]
                    Ok(())
                })
                .await;
            unreachable!("the phase panicked")
        })
        .await;
        let failure = outcome.failure().expect("a crash fails the check");
        assert_eq!(
            (failure.reason, failure.phase),
            (Reason::ProtocolError, Phase::Auth)
        );
        assert!(
            outcome.duration >= Duration::from_millis(30),
            "{:?}",
            outcome.duration
        );
    }
}
