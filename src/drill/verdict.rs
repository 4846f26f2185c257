//! The budgets a drill is judged by, and whether each held.

use super::report::{Budget, DrillReport, SessionEnded};
use super::{DrillSpec, ExpectedChange, SessionFate};

pub(super) fn budgets(spec: &DrillSpec, report: &DrillReport, changed: bool) -> Vec<Budget> {
    let b = &spec.budgets;
    let budget = |name: &str, limit: String, value: String, pass: bool| Budget {
        name: name.into(),
        limit,
        value,
        pass,
    };
    let expect = match spec.expect {
        ExpectedChange::PrimaryChange => "primary-change",
        ExpectedChange::NoChange => "no-change",
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
    if spec.expect == ExpectedChange::NoChange {
        // A change that must change nothing: every write lands.
        let unwritten = report.writes.failed + report.writes.uncertain;
        list.push(budget(
            "failed_writes",
            "0".into(),
            unwritten.to_string(),
            unwritten == 0,
        ));
    }
    let fate = report.open_session.fate;
    let session_ok = match wanted_session(spec) {
        SessionFate::Cut => fate == SessionEnded::Cut,
        SessionFate::Survive => fate == SessionEnded::Survived,
        SessionFate::Any => matches!(fate, SessionEnded::Cut | SessionEnded::Survived),
    };
    let wanted = match wanted_session(spec) {
        SessionFate::Cut => "cut",
        SessionFate::Survive => "survive",
        SessionFate::Any => "cut or survive",
    };
    list.push(budget(
        "open_session",
        wanted.into(),
        fate.as_str().into(),
        session_ok,
    ));
    list
}

/// What must become of the session opened before the change: under
/// `no-change`, it survives whatever `open_session` says (keys.rs refuses
/// `cut` there).
fn wanted_session(spec: &DrillSpec) -> SessionFate {
    match spec.expect {
        ExpectedChange::NoChange => SessionFate::Survive,
        ExpectedChange::PrimaryChange => spec.budgets.open_session,
    }
}
