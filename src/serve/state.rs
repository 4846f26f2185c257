//! What `serve` shares between the schedule, the signal handler and the
//! HTTP endpoints: the ledger of results, the task identity and the state
//! of suite reloads, behind one lock held only to copy or update.

use crate::ecs::TaskIdentity;
use crate::outcome::Outcome;
use crate::publish::ledger::Ledger;
use crate::publish::metrics::{self, Exposition, ReloadStatus};
use crate::suite::Suite;
use std::sync::Mutex;
use std::time::SystemTime;

pub struct State {
    inner: Mutex<Inner>,
}

struct Inner {
    suite: String,
    ledger: Ledger,
    identity: Option<TaskIdentity>,
    reload: ReloadStatus,
    /// The checks readiness waits for: all but those holding sessions
    /// idle, whose first result comes only after their longest span.
    awaited: Vec<String>,
    /// Set once every awaited check has finished a run; stays set across
    /// reloads, since the process has proved it can probe.
    ready: bool,
}

/// Readiness, with what is missing when not ready.
pub enum Readiness {
    Ready,
    Waiting { finished: usize, total: usize },
}

impl State {
    pub fn new(suite: &Suite) -> State {
        State {
            inner: Mutex::new(Inner {
                suite: suite.name.clone(),
                ledger: Ledger::new(names(suite)),
                identity: None,
                reload: ReloadStatus {
                    last_successful: true,
                    last_success: SystemTime::now(),
                    succeeded: 0,
                    failed: 0,
                },
                awaited: awaited(suite),
                ready: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the ledger half
        // written (each update is one insert), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the probe runs, once the task metadata has answered.
    pub fn identify(&self, identity: TaskIdentity) {
        self.lock().identity = Some(identity);
    }

    pub fn record(&self, outcome: Outcome) {
        let mut inner = self.lock();
        inner.ledger.record(outcome, SystemTime::now());
        if inner.awaited.iter().all(|name| inner.ledger.has(name)) {
            inner.ready = true;
        }
    }

    /// The latest outcomes to explain (the failing ones unless `all`), and where the probe runs.
    pub fn to_explain(&self, all: bool) -> (Vec<Outcome>, Option<TaskIdentity>) {
        let inner = self.lock();
        let outcomes = inner
            .ledger
            .tallies()
            .map(|t| t.latest.clone())
            .filter(|o| all || !o.success())
            .collect();
        (outcomes, inner.identity.clone())
    }

    /// Attach the explanations made from [`State::to_explain`].
    pub fn explained(&self, outcomes: Vec<Outcome>) {
        let mut inner = self.lock();
        for outcome in outcomes {
            if let Some(evidence) = outcome.evidence {
                inner.ledger.explained(&outcome.name, evidence);
            }
        }
    }

    pub fn reloaded(&self, suite: &Suite) {
        let mut inner = self.lock();
        inner.suite = suite.name.clone();
        inner.ledger.retain(names(suite));
        inner.awaited = awaited(suite);
        inner.reload.last_successful = true;
        inner.reload.last_success = SystemTime::now();
        inner.reload.succeeded += 1;
    }

    pub fn reload_refused(&self) {
        let mut inner = self.lock();
        inner.reload.last_successful = false;
        inner.reload.failed += 1;
    }

    pub fn readiness(&self) -> Readiness {
        let inner = self.lock();
        if inner.ready {
            return Readiness::Ready;
        }
        Readiness::Waiting {
            finished: inner.awaited.iter().filter(|n| inner.ledger.has(n)).count(),
            total: inner.awaited.len(),
        }
    }

    /// The Prometheus text of the current state, rendered from a copy
    /// taken under the lock, so check loops never wait on a scrape.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let (suite, ledger, identity, reload) = {
            let inner = self.lock();
            (
                inner.suite.clone(),
                inner.ledger.clone(),
                inner.identity.clone(),
                inner.reload,
            )
        };
        metrics::render(&Exposition {
            suite: &suite,
            ledger: &ledger,
            identity: identity.as_ref(),
            reload: Some(reload),
        })
    }
}

fn names(suite: &Suite) -> Vec<String> {
    suite.checks.iter().map(|c| c.name.clone()).collect()
}

/// The checks readiness waits for: those that hold no session idle.
fn awaited(suite: &Suite) -> Vec<String> {
    let quick = suite.checks.iter().filter(|c| c.spec.idle().is_none());
    quick.map(|c| c.name.clone()).collect()
}
