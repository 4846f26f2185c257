//! The summary an SRE can paste into the change ticket.

use super::report::{DrillReport, Primary, Spread, WriteFate};
use std::collections::BTreeMap;
use std::fmt::Write;

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
            if self.interrupted {
                let _ = writeln!(out, "  interrupted (SIGTERM)");
            }
            return out;
        }
        if self.interrupted {
            let _ = writeln!(
                out,
                "  interrupted (SIGTERM) after {:.1} s: the figures below are what was measured until then",
                self.duration_seconds
            );
        }
        self.write_change(&mut out);
        self.write_writes(&mut out);
        self.write_reads_and_data(&mut out);
        self.write_budgets(&mut out);
        let _ = writeln!(out, "  per second ({STRIP_KEY}):");
        out += &self.strip();
        out
    }

    /// The primary before and after, and when the change was seen.
    fn write_change(&self, out: &mut String) {
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
        if let Some(dns) = &self.dns {
            let moved = dns
                .changed_after_seconds
                .map_or(" (unchanged)".into(), |at| {
                    format!(", changed {at:.2} s after the trigger")
                });
            let _ = writeln!(
                out,
                "  dns: {} answered {} before, {} after{moved}",
                dns.name,
                dns.before.join(","),
                dns.after.join(",")
            );
        }
    }

    /// The writes, why those not acknowledged failed, the open session.
    fn write_writes(&self, out: &mut String) {
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
            s.fate.as_str(),
            s.after_seconds
                .map(|a| format!(" at {a:.2} s"))
                .unwrap_or_default(),
            s.how
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        );
    }

    /// The read-only port, the data read back, latency.
    fn write_reads_and_data(&self, out: &mut String) {
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
    }

    /// Each budget with its limit, its value and whether it held.
    fn write_budgets(&self, out: &mut String) {
        let _ = writeln!(out, "  budgets:");
        for b in &self.budgets {
            let mark = if b.pass { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "    {mark} {:<21} limit {:<14} value {}",
                b.name, b.limit, b.value
            );
        }
    }

    /// One line per second of writes, marking the trigger and the change.
    fn strip(&self) -> String {
        let mut lines: BTreeMap<u64, String> = BTreeMap::new();
        for attempt in &self.attempts {
            let mark = match attempt.fate {
                WriteFate::Ok => '+',
                WriteFate::Misrouted => 'm',
                WriteFate::Uncertain => '?',
                WriteFate::Failed => 'x',
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
