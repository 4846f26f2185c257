//! The figures of a run, from what the recorder saw: the write gap, what
//! happened to each write and to the open session, the read-only port, the
//! data read back, latency and the timeline.

use super::record::{Attempt, Ctx, Read, ReadFrom, SessionEnd, WriteEnd};
use super::report::{
    secs, AttemptRow, Data, DnsChange, DrillReport, Ends, Event, Latency, OpenSession, Primary,
    ReadOnly, ReadRow, SessionEnded, Span, Spread, Trigger, WriteFate, Writes,
};
use super::verdict::budgets;
use super::DrillSpec;
use crate::secret::Scrubber;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

impl DrillReport {
    /// A drill that could not start measuring: why, and nothing else.
    pub fn unusable(
        spec: &DrillSpec,
        started: SystemTime,
        ctx: &Ctx,
        error: String,
    ) -> DrillReport {
        let mut report = DrillReport::empty(spec, started, ctx);
        report.error = Some(error);
        report
    }

    fn empty(spec: &DrillSpec, started: SystemTime, ctx: &Ctx) -> DrillReport {
        DrillReport {
            drill: spec.name.clone(),
            kind: spec.target.kind().as_str().into(),
            success: false,
            error: None,
            interrupted: false,
            run_id: ctx.env.run_id.clone(),
            started: humantime::format_rfc3339_millis(started).to_string(),
            duration_seconds: secs(ctx.start.elapsed()),
            expect: spec.expect,
            primary_before: None,
            primary_after: None,
            change_seen_after_seconds: None,
            trigger: None,
            dns: None,
            write_gap_seconds: 0.0,
            write_gap: None,
            writes: Writes::default(),
            failures_by_reason: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            misrouted_writes: 0,
            open_session: OpenSession {
                fate: SessionEnded::NeverOpened,
                after_seconds: None,
                how: None,
            },
            read_only: None,
            data: None,
            latency: Latency::default(),
            budgets: Vec::new(),
            timeline: Vec::new(),
            attempts: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// The figures of a finished run, judged against the budgets.
    pub fn new(
        ctx: &Ctx,
        started: SystemTime,
        ends: Ends,
        trigger: Option<Trigger>,
        rows: Option<BTreeMap<u64, u64>>,
        scrubber: &Scrubber,
    ) -> DrillReport {
        let spec = &ctx.env.spec;
        // Before the log is locked: first_change locks it too.
        let before = ends.before;
        let change = ctx.first_change(&before);
        let log = ctx.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut writes = log.writes.clone();
        writes.sort_by_key(|attempt| attempt.seq);
        let mut report = DrillReport::empty(spec, started, ctx);
        let triggered_at = trigger.as_ref().map_or(spec.baseline, |t| {
            Duration::from_secs_f64(t.started_after_seconds)
        });
        report.primary_before = Some(Primary::from(&before));
        let last_ack = writes.iter().rev().find_map(|a| match &a.fate {
            WriteEnd::Ok(identity) => Some(identity),
            _ => None,
        });
        report.primary_after = ends.after.as_ref().or(last_ack).map(Primary::from);
        report.dns = dns_change(spec.target.name(), &log.answers, triggered_at);
        report.change_seen_after_seconds = change
            .as_ref()
            .map(|(at, _)| secs(at.saturating_sub(triggered_at)));
        report.trigger = trigger.map(|t| t.scrubbed(scrubber));
        report.tally(&writes);
        report.gap(&writes);
        report.open_session = open_session(&log.session);
        report.read_only = spec.target.watches_reads().then(|| read_only(&log.reads));
        report.reads = log.reads.iter().map(read_row).collect();
        report.data = rows.map(|rows| data(&writes, &rows));
        report.latency = latency(&writes, change.as_ref().map(|(at, _)| *at));
        report.timeline = timeline(&report, triggered_at, &writes, &log.session);
        report.attempts = writes.iter().map(attempt_row).collect();
        report.budgets = budgets(spec, &report, change.is_some());
        report.success = report.budgets.iter().all(|b| b.pass);
        report.duration_seconds = secs(ctx.start.elapsed());
        for detail in report.failure_examples.values_mut() {
            *detail = scrubber.scrub(detail);
        }
        report
    }

    /// Mark a run stopped by SIGTERM: what it measured stands, it never passes.
    pub fn interrupt(&mut self) {
        self.interrupted = true;
        self.success = false;
    }

    fn tally(&mut self, writes: &[Attempt]) {
        for attempt in writes {
            self.writes.attempted += 1;
            match &attempt.fate {
                WriteEnd::Ok(_) => self.writes.ok += 1,
                WriteEnd::Failed { label, detail } => {
                    self.writes.failed += 1;
                    self.misrouted_writes += u64::from(label.misrouted());
                    self.count_failure(label.as_str(), detail);
                }
                WriteEnd::Uncertain { label, detail } => {
                    self.writes.uncertain += 1;
                    self.count_failure(label.as_str(), detail);
                }
            }
        }
    }

    fn count_failure(&mut self, label: &str, detail: &str) {
        *self
            .failures_by_reason
            .entry(label.to_string())
            .or_default() += 1;
        self.failure_examples
            .entry(label.to_string())
            .or_insert_with(|| detail.to_string());
    }

    /// The longest time between two acknowledgements (or from the first
    /// attempt to the first one, or from the last one to the end).
    fn gap(&mut self, writes: &[Attempt]) {
        let acks = writes
            .iter()
            .filter(|a| matches!(a.fate, WriteEnd::Ok(_)))
            .map(|a| a.finished);
        let spans = writes.iter().map(|a| (a.started, a.finished));
        if let Some((from, to)) = widest_gap(spans, acks) {
            self.write_gap_seconds = secs(to.saturating_sub(from));
            self.write_gap = Some(Span {
                from_seconds: secs(from),
                to_seconds: secs(to),
            });
        }
    }
}

/// The widest stretch without a success: between two successes, or from
/// the first attempt's start to the first success, or from the last
/// success to the last attempt's end. `attempts` are (started, finished).
fn widest_gap(
    attempts: impl Iterator<Item = (Duration, Duration)> + Clone,
    successes: impl Iterator<Item = Duration>,
) -> Option<(Duration, Duration)> {
    let first = attempts.clone().map(|(started, _)| started).min()?;
    let last = attempts.map(|(_, finished)| finished).max()?;
    let mut edges: Vec<Duration> = successes.collect();
    edges.sort();
    edges.insert(0, first);
    edges.push(last);
    edges
        .windows(2)
        .map(|pair| (pair[0], pair[1]))
        .max_by_key(|(from, to)| to.saturating_sub(*from))
}

/// The name's first and last answers and when they first changed.
fn dns_change(
    name: &str,
    answers: &[(Duration, Vec<IpAddr>)],
    triggered_at: Duration,
) -> Option<DnsChange> {
    let shown = |ips: &[IpAddr]| ips.iter().map(IpAddr::to_string).collect();
    let (_, first) = answers.first()?;
    let (_, last) = answers.last()?;
    Some(DnsChange {
        name: name.to_string(),
        before: shown(first),
        after: shown(last),
        changed_after_seconds: answers
            .get(1)
            .map(|(at, _)| secs(at.saturating_sub(triggered_at))),
    })
}

fn open_session(end: &SessionEnd) -> OpenSession {
    let (fate, after, how) = match end {
        SessionEnd::Survived => (SessionEnded::Survived, None, None),
        SessionEnd::Cut { at, label } => {
            (SessionEnded::Cut, Some(secs(*at)), Some(label.to_string()))
        }
        SessionEnd::Hung { at } => (SessionEnded::Hung, Some(secs(*at)), None),
        SessionEnd::NeverOpened { label } => {
            (SessionEnded::NeverOpened, None, Some(label.to_string()))
        }
    };
    OpenSession {
        fate,
        after_seconds: after,
        how,
    }
}

fn read_only(reads: &[Read]) -> ReadOnly {
    let oks = reads
        .iter()
        .filter(|r| r.answer.is_ok())
        .map(|r| r.finished);
    let spans = reads.iter().map(|r| (r.started, r.finished));
    let longest =
        widest_gap(spans, oks.clone()).map_or(Duration::ZERO, |(from, to)| to.saturating_sub(from));
    ReadOnly {
        attempted: reads.len() as u64,
        ok: oks.count() as u64,
        longest_gap_seconds: secs(longest),
        from_primary: reads
            .iter()
            .filter(|r| r.answer == Ok(ReadFrom::Primary))
            .count() as u64,
    }
}

fn read_row(read: &Read) -> ReadRow {
    ReadRow {
        at_seconds: secs(read.started),
        answer: match read.answer {
            Ok(from) => from.as_str().into(),
            Err(label) => label.as_str().into(),
        },
    }
}

fn attempt_row(attempt: &Attempt) -> AttemptRow {
    let (fate, detail) = match &attempt.fate {
        WriteEnd::Ok(identity) => (WriteFate::Ok, identity.server.clone()),
        WriteEnd::Failed { label, .. } if label.misrouted() => {
            (WriteFate::Misrouted, label.to_string())
        }
        WriteEnd::Failed { label, .. } => (WriteFate::Failed, label.to_string()),
        WriteEnd::Uncertain { label, .. } => (WriteFate::Uncertain, label.to_string()),
    };
    AttemptRow {
        seq: attempt.seq,
        at_seconds: secs(attempt.started),
        done_seconds: secs(attempt.finished),
        fate,
        detail,
    }
}

/// Acknowledged, uncertain and present writes compared with the table.
fn data(writes: &[Attempt], rows: &BTreeMap<u64, u64>) -> Data {
    let mut data = Data::default();
    for attempt in writes {
        let present = rows.get(&attempt.seq).copied().unwrap_or(0);
        data.duplicates += present.saturating_sub(1);
        match attempt.fate {
            WriteEnd::Ok(_) if present > 0 => {
                data.acknowledged += 1;
                data.present += 1;
            }
            WriteEnd::Ok(_) => {
                data.acknowledged += 1;
                data.lost += 1;
            }
            WriteEnd::Uncertain { .. } if present > 0 => data.uncertain_present += 1,
            WriteEnd::Uncertain { .. } => data.uncertain_missing += 1,
            WriteEnd::Failed { .. } => {}
        }
    }
    data
}

fn latency(writes: &[Attempt], change: Option<Duration>) -> Latency {
    let spread = |before: bool| {
        let mut millis: Vec<f64> = writes
            .iter()
            .filter(|a| matches!(a.fate, WriteEnd::Ok(_)))
            .filter(|a| change.map_or(before, |at| (a.finished < at) == before))
            .map(|a| a.finished.saturating_sub(a.started).as_secs_f64() * 1000.0)
            .collect();
        millis.sort_by(f64::total_cmp);
        let at = |q: f64| millis[((millis.len() as f64 - 1.0) * q).round() as usize];
        (!millis.is_empty()).then(|| Spread {
            count: millis.len() as u64,
            median_ms: (at(0.5) * 10.0).round() / 10.0,
            p99_ms: (at(0.99) * 10.0).round() / 10.0,
        })
    };
    Latency {
        before: spread(true),
        after: change.and_then(|_| spread(false)),
    }
}

fn timeline(
    report: &DrillReport,
    triggered_at: Duration,
    writes: &[Attempt],
    session: &SessionEnd,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut add = |at: f64, event: String| {
        events.push(Event {
            at_seconds: at,
            event,
        })
    };
    let primary = report.primary_before.as_ref().map_or("?", |p| &p.server);
    add(0.0, format!("measuring; primary {primary}"));
    trigger_events(report, triggered_at, &mut add);
    change_events(report, triggered_at, writes, &mut add);
    match session {
        SessionEnd::Cut { at, label } => add(secs(*at), format!("open session cut ({label})")),
        SessionEnd::Hung { at } => add(secs(*at), "open session hung".into()),
        _ => {}
    }
    events.sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    events
}

/// The trigger's start and end, or the end of the baseline without one.
fn trigger_events(report: &DrillReport, triggered_at: Duration, add: &mut impl FnMut(f64, String)) {
    let Some(trigger) = &report.trigger else {
        add(
            secs(triggered_at),
            "baseline over; waiting for the change".into(),
        );
        return;
    };
    add(
        trigger.started_after_seconds,
        format!("trigger started: {}", trigger.command.join(" ")),
    );
    let exit = trigger
        .exit_code
        .map_or("none: killed or not started".into(), |c| c.to_string());
    add(
        trigger.finished_after_seconds,
        format!("trigger finished (exit {exit})"),
    );
}

/// What changed: the name's answer, the first write refused, the gap in
/// acknowledged writes, the new primary.
fn change_events(
    report: &DrillReport,
    triggered_at: Duration,
    writes: &[Attempt],
    add: &mut impl FnMut(f64, String),
) {
    if let Some((dns, changed)) = report
        .dns
        .as_ref()
        .and_then(|dns| Some((dns, dns.changed_after_seconds?)))
    {
        add(
            secs(triggered_at) + changed,
            format!("{} now answers {}", dns.name, dns.after.join(",")),
        );
    }
    if let Some(first) = writes.iter().find(|a| !matches!(a.fate, WriteEnd::Ok(_))) {
        let detail = attempt_row(first).detail;
        add(
            secs(first.started),
            format!("first write not acknowledged ({detail})"),
        );
    }
    if let Some(gap) = report
        .write_gap
        .filter(|_| report.writes.failed + report.writes.uncertain > 0)
    {
        add(
            gap.from_seconds,
            "last acknowledged write before the gap".into(),
        );
        add(
            gap.to_seconds,
            "first acknowledged write after the gap".into(),
        );
    }
    if let (Some(seen), Some(after)) = (report.change_seen_after_seconds, &report.primary_after) {
        add(
            secs(triggered_at) + seen,
            format!("writes acknowledged by the new primary {}", after.server),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_widest_gap_counts_the_edges_too() {
        let spans = [(ms(0), ms(10)), (ms(50), ms(60)), (ms(100), ms(900))];
        let between = widest_gap(spans.iter().copied(), [ms(10), ms(900)].into_iter());
        assert_eq!(between, Some((ms(10), ms(900))));
        let none_ok = widest_gap(spans.iter().copied(), std::iter::empty());
        assert_eq!(none_ok, Some((ms(0), ms(900))));
        assert_eq!(widest_gap(std::iter::empty(), std::iter::empty()), None);
    }
}
