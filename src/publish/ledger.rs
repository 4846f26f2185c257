//! What the metrics are made from: each check's latest outcome and its
//! running totals. `serve` keeps one ledger for its lifetime; a one-shot
//! `check --push` builds one from a single report.

use crate::outcome::{Outcome, Reason};
use crate::runner::Report;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One check's latest outcome and its counters since the process started.
#[derive(Debug, Clone)]
pub struct Tally {
    pub latest: Outcome,
    pub finished: SystemTime,
    pub successes: u64,
    /// Failures counted by reason: transient failures between two scrapes
    /// still show up as a counter increase.
    pub failures_by_reason: BTreeMap<Reason, u64>,
    pub cycles_ok: u64,
    pub cycles_failed: u64,
}

impl Tally {
    /// Failed runs, whatever the reason.
    pub fn failures(&self) -> u64 {
        self.failures_by_reason.values().sum()
    }
}

/// Tallies for the checks of one suite, in suite order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Check names in suite order; outcomes arrive in completion order.
    order: Vec<String>,
    tallies: BTreeMap<String, Tally>,
}

impl Ledger {
    /// An empty ledger for checks named `order`.
    pub fn new(order: Vec<String>) -> Ledger {
        Ledger {
            order,
            tallies: BTreeMap::new(),
        }
    }

    /// A ledger holding one run.
    pub fn from_report(report: &Report) -> Ledger {
        let mut ledger = Ledger::new(report.checks.iter().map(|c| c.name.clone()).collect());
        let finished = report.started + report.duration;
        for outcome in &report.checks {
            ledger.record(outcome.clone(), finished);
        }
        ledger
    }

    /// Count `outcome` and make it the check's latest.
    pub fn record(&mut self, outcome: Outcome, finished: SystemTime) {
        let (cycles_ok, cycles_failed) = outcome
            .cycles
            .as_ref()
            .map_or((0, 0), |c| (u64::from(c.ok), u64::from(c.failed)));
        let reason = outcome.failure().map(|f| f.reason);
        let tally = self
            .tallies
            .entry(outcome.name.clone())
            .or_insert_with(|| Tally {
                latest: outcome.clone(),
                finished,
                successes: 0,
                failures_by_reason: BTreeMap::new(),
                cycles_ok: 0,
                cycles_failed: 0,
            });
        match reason {
            None => tally.successes += 1,
            Some(reason) => *tally.failures_by_reason.entry(reason).or_default() += 1,
        }
        tally.cycles_ok += cycles_ok;
        tally.cycles_failed += cycles_failed;
        let mut outcome = outcome;
        // A failure that goes on keeps its explanation until the next one.
        if outcome.evidence.is_none()
            && reason.is_some()
            && tally.latest.failure().map(|f| f.reason) == reason
        {
            outcome.evidence = tally.latest.evidence.take();
        }
        tally.latest = outcome;
        tally.finished = finished;
    }

    /// Attach an explanation to a check's latest outcome, if that still fails.
    pub fn explained(&mut self, name: &str, evidence: crate::outcome::Evidence) {
        if let Some(tally) = self.tallies.get_mut(name).filter(|t| !t.latest.success()) {
            tally.latest.evidence = Some(evidence);
        }
    }

    /// Follow a reloaded suite: checks that are gone lose their series,
    /// checks that remain keep their totals.
    pub fn retain(&mut self, order: Vec<String>) {
        self.tallies.retain(|name, _| order.contains(name));
        self.order = order;
    }

    /// How many checks the suite has.
    pub fn check_count(&self) -> usize {
        self.order.len()
    }

    /// True once every check has finished at least once.
    pub fn complete(&self) -> bool {
        self.order.iter().all(|name| self.has(name))
    }

    /// True once the check named has finished at least once.
    pub fn has(&self, name: &str) -> bool {
        self.tallies.contains_key(name)
    }

    /// The tallies that exist, in suite order.
    pub fn tallies(&self) -> impl Iterator<Item = &Tally> {
        self.order.iter().filter_map(|name| self.tallies.get(name))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::outcome::sample::outcome;

    #[test]
    fn an_explanation_lasts_while_the_same_failure_goes_on() {
        let evidence = crate::outcome::Evidence::skipped("read");
        let mut ledger = Ledger::new(vec!["a".into()]);
        let timeout = || outcome("a", Some(Reason::ConnectTimeout));
        ledger.record(timeout(), SystemTime::now());
        ledger.explained("a", evidence.clone());
        ledger.record(timeout(), SystemTime::now());
        let latest = |l: &Ledger| l.tallies().next().unwrap().latest.evidence.clone();
        assert_eq!(
            latest(&ledger),
            Some(evidence.clone()),
            "the same failure keeps it"
        );
        ledger.record(
            outcome("a", Some(Reason::ConnectRefused)),
            SystemTime::now(),
        );
        assert_eq!(
            latest(&ledger),
            None,
            "another failure is not explained by it"
        );
        ledger.record(outcome("a", None), SystemTime::now());
        ledger.explained("a", evidence);
        assert_eq!(
            latest(&ledger),
            None,
            "a pass is never explained as a failure"
        );
    }

    #[test]
    fn counts_accumulate_and_latest_wins() {
        let mut ledger = Ledger::new(vec!["a".into(), "b".into()]);
        ledger.record(outcome("a", None), SystemTime::now());
        assert!(!ledger.complete());
        ledger.record(
            outcome("a", Some(Reason::ConnectRefused)),
            SystemTime::now(),
        );
        ledger.record(outcome("b", None), SystemTime::now());
        assert!(ledger.complete());
        let a = ledger.tallies().next().unwrap();
        assert_eq!((a.successes, a.failures()), (1, 1));
        assert_eq!(a.failures_by_reason[&Reason::ConnectRefused], 1);
        assert!(!a.latest.success());
    }

    #[test]
    fn reload_drops_removed_checks_and_keeps_the_rest() {
        let mut ledger = Ledger::new(vec!["a".into(), "b".into()]);
        ledger.record(outcome("a", None), SystemTime::now());
        ledger.record(outcome("b", None), SystemTime::now());
        ledger.retain(vec!["b".into(), "c".into()]);
        let names: Vec<_> = ledger.tallies().map(|t| t.latest.name.as_str()).collect();
        assert_eq!(names, ["b"]);
        assert!(!ledger.complete());
    }
}
