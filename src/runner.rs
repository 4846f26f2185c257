//! Runs a suite's checks all at once, each under its own deadline, and
//! collects their outcomes in suite order.

use crate::check::Probe;
use crate::config::{Check, Scrubber, Suite};
use crate::net::Net;
use crate::outcome::{Failure, Fault, Outcome, Phase, Reason};
use std::collections::HashMap;
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
    mut progress: impl FnMut(&Outcome),
) -> anyhow::Result<Report> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let net = Net::new(suite.resolver, suite.longest_timeout())?;
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::new();
    for (index, check) in checks.iter().enumerate() {
        let (net, check, scrubber) = (net.clone(), (*check).clone(), suite.scrubber.clone());
        let handle = tasks.spawn(async move { run_check(&net, &check, &scrubber).await });
        index_of.insert(handle.id(), index);
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    while let Some(joined) = tasks.join_next_with_id().await {
        let (index, outcome) = match joined {
            Ok((id, outcome)) => (index_of[&id], outcome),
            Err(err) => {
                let index = index_of[&err.id()];
                (index, crashed(checks[index], &suite.scrubber, &err))
            }
        };
        progress(&outcome);
        outcomes[index] = Some(outcome);
    }
    Ok(Report {
        suite: suite.name.clone(),
        started,
        duration: clock.elapsed(),
        checks: outcomes.into_iter().flatten().collect(),
    })
}

/// Run one check and scrub its secrets from everything it reports.
pub async fn run_check(net: &Net, check: &Check, scrubber: &Scrubber) -> Outcome {
    let clock = Instant::now();
    let mut probe = Probe::new(net, check.timeout);
    let result = check.spec.run(&mut probe).await;
    let result = result.map_err(|failure| Failure {
        detail: scrubber.scrub(&failure.detail),
        ..failure
    });
    tracing::debug!(check = %check.name, ok = result.is_ok(), "check finished");
    Outcome {
        name: check.name.clone(),
        kind: check.spec.kind().as_str(),
        target: scrubber.scrub(&check.spec.target()),
        result,
        duration: clock.elapsed(),
        phases: probe.phases,
        observed: probe
            .observed
            .into_iter()
            .map(|(key, value)| (key, scrubber.scrub(&value)))
            .collect(),
        cycles: probe.cycles,
    }
}

/// A check whose task panicked still shows up, failed, in the report.
pub fn crashed(check: &Check, scrubber: &Scrubber, err: &tokio::task::JoinError) -> Outcome {
    let detail = scrubber.scrub(&format!("the probe crashed on this server's answer: {err}"));
    Outcome {
        name: check.name.clone(),
        kind: check.spec.kind().as_str(),
        target: scrubber.scrub(&check.spec.target()),
        result: Err(Failure::new(
            Phase::Request,
            Fault::new(Reason::ProtocolError, detail),
        )),
        duration: Duration::ZERO,
        phases: Default::default(),
        observed: Default::default(),
        cycles: None,
    }
}
