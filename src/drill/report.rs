//! The drill's figures and verdict: primary before and after, the write
//! gap, what happened to each write and to the open session, the read-only
//! port, the data read back, latency, the budgets, a timeline; as JSON and
//! as a summary an SRE can paste into the change ticket.

use super::record::{Attempt, Ctx, Fate, Identity, SessionEnd};
use super::{DrillSpec, Expect, SessionFate};
use crate::secret::Scrubber;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, SystemTime};
use tokio_postgres::SimpleQueryMessage;

/// One drill run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrillReport {
    pub drill: String,
    pub kind: String,
    pub success: bool,
    /// Why the drill could not measure at all (setup failed); null otherwise.
    pub error: Option<String>,
    pub run_id: String,
    pub started: String,
    pub duration_seconds: f64,
    pub expect: Expect,
    pub primary_before: Option<Primary>,
    pub primary_after: Option<Primary>,
    /// From the trigger's start (the baseline's end without a trigger) to
    /// the first write a new primary acknowledged.
    pub change_seen_after_seconds: Option<f64>,
    pub trigger: Option<Trigger>,
    /// The longest time with no acknowledged write.
    pub write_gap_seconds: f64,
    /// When that gap began and ended, in seconds from the drill's start.
    pub write_gap: Option<Span>,
    pub writes: Writes,
    /// Failed and uncertain writes by reason, with what a failover shows
    /// by SQLSTATE: read_only_transaction (25006), admin_shutdown (57P01),
    /// cannot_connect_now (57P03).
    pub failures_by_reason: BTreeMap<String, u64>,
    /// The first detail seen for each of those, scrubbed of secrets.
    pub failure_examples: BTreeMap<String, String>,
    /// Writes a demoted primary refused as read-only.
    pub misrouted_writes: u64,
    pub open_session: OpenSession,
    pub read_only: Option<ReadOnly>,
    /// Null when the read-back did not answer.
    pub data: Option<Data>,
    pub latency: Latency,
    pub budgets: Vec<Budget>,
    pub timeline: Vec<Event>,
    /// Every write attempt, for the timeline drawing.
    pub attempts: Vec<AttemptRow>,
    /// Every read on the read-only port.
    pub reads: Vec<ReadRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Primary {
    /// `address:port` as the server reports it (`inet_server_addr()`).
    pub server: String,
    /// The WAL timeline (8 hex digits): it grows by one at each promotion.
    pub timeline: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Trigger {
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub started_after_seconds: f64,
    pub finished_after_seconds: f64,
    /// The last lines it printed, scrubbed of secrets.
    pub output: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    pub from_seconds: f64,
    pub to_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Writes {
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    pub uncertain: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpenSession {
    /// cut | survived | hung | never_opened
    pub fate: String,
    pub after_seconds: Option<f64>,
    /// How it was cut, when it was.
    pub how: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadOnly {
    pub attempted: u64,
    pub ok: u64,
    pub longest_gap_seconds: f64,
    /// Answers from a server that was not in recovery.
    pub from_primary: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Data {
    pub acknowledged: u64,
    pub present: u64,
    /// Acknowledged, and not in the table afterwards.
    pub lost: u64,
    pub uncertain_present: u64,
    pub uncertain_missing: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    pub before: Option<Spread>,
    pub after: Option<Spread>,
}

/// Acknowledged writes' round trips (connect, authenticate, insert).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Spread {
    pub count: u64,
    pub median_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Budget {
    pub name: String,
    pub limit: String,
    pub value: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub at_seconds: f64,
    pub event: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRow {
    pub seq: u64,
    pub at_seconds: f64,
    pub done_seconds: f64,
    /// ok | failed | uncertain | misrouted
    pub fate: String,
    /// The acknowledging server, or the failure's reason.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadRow {
    pub at_seconds: f64,
    /// replica | primary | the failure's reason
    pub answer: String,
}

fn secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Primary {
    fn from(identity: &Identity) -> Primary {
        Primary {
            server: identity.server.clone(),
            timeline: identity.timeline.clone(),
        }
    }
}

/// What the trigger command did: exit code and its output's tail.
#[derive(Debug, Default)]
pub struct Ran {
    pub exit_code: Option<i32>,
    pub output: String,
}

/// Run the trigger with no stdin and a clean view of its output, killed
/// if it outlives `limit`.
pub async fn run_trigger(command: Vec<String>, limit: Duration) -> Ran {
    let Some((program, args)) = command.split_first() else {
        return Ran::default();
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, child).await {
        Ok(Ok(output)) => Ran {
            exit_code: output.status.code(),
            output: tail(&format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )),
        },
        Ok(Err(err)) => Ran {
            exit_code: None,
            output: format!("could not start {program}: {err}"),
        },
        Err(_) => Ran {
            exit_code: None,
            output: "still running at the end of wait_for_change; killed".into(),
        },
    }
}

/// The last 20 lines of a text, at most 4 KiB.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(20)..].join("\n");
    let start = kept.len().saturating_sub(4096);
    let start = (start..kept.len())
        .find(|i| kept.is_char_boundary(*i))
        .unwrap_or(kept.len());
    kept[start..].to_string()
}

impl Trigger {
    pub fn new(
        command: &[String],
        ran: Ran,
        started: Duration,
        finished: Duration,
        scrubber: &Scrubber,
    ) -> Trigger {
        Trigger {
            command: command.to_vec(),
            exit_code: ran.exit_code,
            started_after_seconds: secs(started),
            finished_after_seconds: secs(finished),
            output: scrubber.scrub(&ran.output),
        }
    }

    pub fn timed_out(command: &[String], started: Duration, limit: Duration) -> Trigger {
        Trigger {
            command: command.to_vec(),
            exit_code: None,
            started_after_seconds: secs(started),
            finished_after_seconds: secs(started + limit),
            output: "still running at the end of wait_for_change; killed".into(),
        }
    }
}

/// `seq` → times present, from the read-back's rows.
pub fn counts(messages: &[SimpleQueryMessage]) -> BTreeMap<u64, u64> {
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => {
                let seq = row.try_get(0).ok().flatten()?.parse().ok()?;
                let count = row.try_get(1).ok().flatten()?.parse().ok()?;
                Some((seq, count))
            }
            _ => None,
        })
        .collect()
}

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
            kind: "postgres-failover".into(),
            success: false,
            error: None,
            run_id: ctx.run_id.clone(),
            started: humantime::format_rfc3339_millis(started).to_string(),
            duration_seconds: secs(ctx.start.elapsed()),
            expect: spec.expect,
            primary_before: None,
            primary_after: None,
            change_seen_after_seconds: None,
            trigger: None,
            write_gap_seconds: 0.0,
            write_gap: None,
            writes: Writes::default(),
            failures_by_reason: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            misrouted_writes: 0,
            open_session: OpenSession {
                fate: "never_opened".into(),
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
        before: Identity,
        trigger: Option<Trigger>,
        rows: Option<BTreeMap<u64, u64>>,
        scrubber: &Scrubber,
    ) -> DrillReport {
        let spec = &ctx.spec;
        // Before the log is locked: first_change locks it too.
        let change = ctx.first_change(&before);
        let log = ctx.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut writes = log.writes.clone();
        writes.sort_by_key(|attempt| attempt.seq);
        let mut report = DrillReport::empty(spec, started, ctx);
        let triggered_at = trigger.as_ref().map_or(spec.baseline, |t| {
            Duration::from_secs_f64(t.started_after_seconds)
        });
        report.primary_before = Some(Primary::from(&before));
        report.primary_after = writes.iter().rev().find_map(|a| match &a.fate {
            Fate::Ok(identity) => Some(Primary::from(identity)),
            _ => None,
        });
        report.change_seen_after_seconds = change
            .as_ref()
            .map(|(at, _)| secs(at.saturating_sub(triggered_at)));
        report.trigger = trigger;
        report.tally(&writes);
        report.gap(&writes);
        report.open_session = open_session(&log.session);
        report.read_only = spec.ro.as_ref().map(|_| read_only(&log.reads));
        report.reads = log.reads.iter().map(read_row).collect();
        report.data = rows.map(|rows| data(&writes, &rows));
        report.latency = latency(&writes, change.as_ref().map(|(at, _)| *at));
        report.timeline = timeline(&report, triggered_at, &writes, &log.session);
        report.attempts = writes.iter().map(attempt_row).collect();
        report.budgets = budgets(spec, &report, change.is_some());
        report.success = report.budgets.iter().all(|b| b.pass);
        report.duration_seconds = secs(ctx.start.elapsed());
        if let Some(trigger) = &mut report.trigger {
            trigger.output = scrubber.scrub(&trigger.output);
        }
        for detail in report.failure_examples.values_mut() {
            *detail = scrubber.scrub(detail);
        }
        report
    }

    fn tally(&mut self, writes: &[Attempt]) {
        for attempt in writes {
            self.writes.attempted += 1;
            match &attempt.fate {
                Fate::Ok(_) => self.writes.ok += 1,
                Fate::Failed {
                    label,
                    misrouted,
                    detail,
                } => {
                    self.writes.failed += 1;
                    self.misrouted_writes += u64::from(*misrouted);
                    self.count_failure(label, detail);
                }
                Fate::Uncertain { label, detail } => {
                    self.writes.uncertain += 1;
                    self.count_failure(label, detail);
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
            .filter(|a| matches!(a.fate, Fate::Ok(_)))
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

fn open_session(end: &SessionEnd) -> OpenSession {
    let (fate, after, how) = match end {
        SessionEnd::Survived => ("survived", None, None),
        SessionEnd::Cut { at, label } => ("cut", Some(secs(*at)), Some(label.to_string())),
        SessionEnd::Hung { at } => ("hung", Some(secs(*at)), None),
        SessionEnd::NeverOpened { label } => ("never_opened", None, Some(label.to_string())),
    };
    OpenSession {
        fate: fate.into(),
        after_seconds: after,
        how,
    }
}

fn read_only(reads: &[super::record::Read]) -> ReadOnly {
    let oks = reads
        .iter()
        .filter(|r| r.in_recovery.is_some())
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
            .filter(|r| r.in_recovery == Some(false))
            .count() as u64,
    }
}

fn read_row(read: &super::record::Read) -> ReadRow {
    ReadRow {
        at_seconds: secs(read.started),
        answer: match read.in_recovery {
            Some(true) => "replica".into(),
            Some(false) => "primary".into(),
            None => read.label.into(),
        },
    }
}

fn attempt_row(attempt: &Attempt) -> AttemptRow {
    let (fate, detail) = match &attempt.fate {
        Fate::Ok(identity) => ("ok", identity.server.clone()),
        Fate::Failed {
            label,
            misrouted: true,
            ..
        } => ("misrouted", label.to_string()),
        Fate::Failed { label, .. } => ("failed", label.to_string()),
        Fate::Uncertain { label, .. } => ("uncertain", label.to_string()),
    };
    AttemptRow {
        seq: attempt.seq,
        at_seconds: secs(attempt.started),
        done_seconds: secs(attempt.finished),
        fate: fate.into(),
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
            Fate::Ok(_) if present > 0 => {
                data.acknowledged += 1;
                data.present += 1;
            }
            Fate::Ok(_) => {
                data.acknowledged += 1;
                data.lost += 1;
            }
            Fate::Uncertain { .. } if present > 0 => data.uncertain_present += 1,
            Fate::Uncertain { .. } => data.uncertain_missing += 1,
            Fate::Failed { .. } => {}
        }
    }
    data
}

fn latency(writes: &[Attempt], change: Option<Duration>) -> Latency {
    let spread = |before: bool| {
        let mut millis: Vec<f64> = writes
            .iter()
            .filter(|a| matches!(a.fate, Fate::Ok(_)))
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
    add(
        0.0,
        format!(
            "measuring; primary {}",
            report.primary_before.as_ref().map_or("?", |p| &p.server)
        ),
    );
    if let Some(trigger) = &report.trigger {
        add(
            trigger.started_after_seconds,
            format!("trigger started: {}", trigger.command.join(" ")),
        );
        add(
            trigger.finished_after_seconds,
            format!(
                "trigger finished (exit {})",
                trigger
                    .exit_code
                    .map_or("none: killed or not started".into(), |c| c.to_string())
            ),
        );
    } else {
        add(
            secs(triggered_at),
            "baseline over; waiting for the change".into(),
        );
    }
    if let Some(first) = writes.iter().find(|a| !matches!(a.fate, Fate::Ok(_))) {
        add(
            secs(first.started),
            format!(
                "first write not acknowledged ({})",
                attempt_row(first).detail
            ),
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
    match session {
        SessionEnd::Cut { at, label } => add(secs(*at), format!("open session cut ({label})")),
        SessionEnd::Hung { at } => add(secs(*at), "open session hung".into()),
        _ => {}
    }
    events.sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    events
}

fn budgets(spec: &DrillSpec, report: &DrillReport, changed: bool) -> Vec<Budget> {
    let b = &spec.budgets;
    let budget = |name: &str, limit: String, value: String, pass: bool| Budget {
        name: name.into(),
        limit,
        value,
        pass,
    };
    let expect = match spec.expect {
        Expect::PrimaryChange => "primary-change",
        Expect::NoChange => "no-change",
    };
    let happened = if changed {
        "primary-change"
    } else {
        "no-change"
    };
    let mut list = vec![
        budget("expect", expect.into(), happened.into(), expect == happened),
        budget(
            "max_write_gap",
            format!("{}s", b.max_write_gap.as_secs_f64()),
            format!("{}s", report.write_gap_seconds),
            report.write_gap_seconds <= b.max_write_gap.as_secs_f64(),
        ),
    ];
    let lost = report.data.as_ref().map(|d| d.lost);
    list.push(budget(
        "max_lost_writes",
        b.max_lost_writes.to_string(),
        lost.map_or("unknown (no read-back)".into(), |l| l.to_string()),
        lost.is_some_and(|l| l <= b.max_lost_writes),
    ));
    list.push(budget(
        "max_misrouted_writes",
        b.max_misrouted_writes.to_string(),
        report.misrouted_writes.to_string(),
        report.misrouted_writes <= b.max_misrouted_writes,
    ));
    if let (Some(limit), Some(ro)) = (b.max_ro_gap, &report.read_only) {
        list.push(budget(
            "max_ro_gap",
            format!("{}s", limit.as_secs_f64()),
            format!("{}s", ro.longest_gap_seconds),
            ro.longest_gap_seconds <= limit.as_secs_f64(),
        ));
    }
    let fate = report.open_session.fate.as_str();
    let session_ok = match b.open_session {
        SessionFate::Cut => fate == "cut",
        SessionFate::Survive => fate == "survived",
        SessionFate::Any => fate == "cut" || fate == "survived",
    };
    let wanted = match b.open_session {
        SessionFate::Cut => "cut",
        SessionFate::Survive => "survive",
        SessionFate::Any => "cut or survive",
    };
    list.push(budget(
        "open_session",
        wanted.into(),
        fate.into(),
        session_ok,
    ));
    list
}

/// One character per write attempt, one line per second.
const STRIP_KEY: &str = "+ ok, x failed, m misrouted (read-only), ? uncertain";

impl DrillReport {
    /// The summary for the change ticket.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.success { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "drill {} ({}): {verdict}", self.drill, self.kind);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  could not run: {error}");
            return out;
        }
        let shown = |p: &Option<Primary>| {
            p.as_ref().map_or("?".to_string(), |p| {
                format!(
                    "{} (timeline {})",
                    p.server,
                    p.timeline.as_deref().unwrap_or("?")
                )
            })
        };
        let _ = writeln!(out, "  primary before: {}", shown(&self.primary_before));
        let _ = writeln!(out, "  primary after:  {}", shown(&self.primary_after));
        match self.change_seen_after_seconds {
            Some(seen) => {
                let _ = writeln!(out, "  change seen {seen:.2} s after the trigger");
            }
            None => {
                let _ = writeln!(out, "  no change of primary seen");
            }
        }
        let w = &self.writes;
        let _ = writeln!(
            out,
            "  writes: {} attempted, {} ok, {} failed, {} uncertain; longest time without an acknowledged write {:.2} s",
            w.attempted, w.ok, w.failed, w.uncertain, self.write_gap_seconds
        );
        if !self.failures_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .failures_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(out, "  not acknowledged: {}", reasons.join(", "));
            for (reason, example) in &self.failure_examples {
                let _ = writeln!(out, "    e.g. {reason}: {example}");
            }
        }
        let s = &self.open_session;
        let _ = writeln!(
            out,
            "  open session: {}{}{}",
            s.fate,
            s.after_seconds
                .map(|a| format!(" at {a:.2} s"))
                .unwrap_or_default(),
            s.how
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        );
        if let Some(ro) = &self.read_only {
            let _ = writeln!(
                out,
                "  read-only port: {} attempted, {} ok, longest gap {:.2} s, {} answers from a primary",
                ro.attempted, ro.ok, ro.longest_gap_seconds, ro.from_primary
            );
        }
        match &self.data {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  data: {} acknowledged, {} present, {} LOST; uncertain {} present / {} missing; {} duplicates",
                    d.acknowledged, d.present, d.lost, d.uncertain_present, d.uncertain_missing, d.duplicates
                );
            }
            None => {
                let _ = writeln!(out, "  data: the read-back got no answer");
            }
        }
        let spread = |s: &Option<Spread>| {
            s.as_ref().map_or("-".into(), |s| {
                format!(
                    "median {} ms, p99 {} ms ({} writes)",
                    s.median_ms, s.p99_ms, s.count
                )
            })
        };
        let _ = writeln!(
            out,
            "  latency before: {}; after: {}",
            spread(&self.latency.before),
            spread(&self.latency.after)
        );
        let _ = writeln!(out, "  budgets:");
        for b in &self.budgets {
            let mark = if b.pass { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "    {mark} {:<21} limit {:<14} value {}",
                b.name, b.limit, b.value
            );
        }
        let _ = writeln!(out, "  per second ({STRIP_KEY}):");
        out += &self.strip();
        out
    }

    /// One line per second of writes, marking the trigger and the change.
    fn strip(&self) -> String {
        let mut lines: BTreeMap<u64, String> = BTreeMap::new();
        for attempt in &self.attempts {
            let mark = match attempt.fate.as_str() {
                "ok" => '+',
                "misrouted" => 'm',
                "uncertain" => '?',
                _ => 'x',
            };
            lines
                .entry(attempt.at_seconds as u64)
                .or_default()
                .push(mark);
        }
        let mut notes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for event in &self.timeline {
            notes
                .entry(event.at_seconds as u64)
                .or_default()
                .push(event.event.clone());
        }
        let mut out = String::new();
        for (second, marks) in &lines {
            let note = notes
                .get(second)
                .map(|n| format!("  <- {}", n.join("; ")))
                .unwrap_or_default();
            let _ = writeln!(out, "    {second:>4}s {marks}{note}");
        }
        out
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
