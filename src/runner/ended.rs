//! Outcomes of checks that did not finish: stopped by a signal, or
//! crashed on a server's answer. Each still shows up, failed, in the
//! report, in the phase it was in.

use crate::outcome::{Failure, Fault, Outcome, Phase, Reason};
use crate::secret::Scrubber;
use crate::suite::Check;
use std::time::Duration;

/// A check cut by a stop signal, in the phase it was in.
pub(super) fn interrupted(
    check: &Check,
    scrubber: &Scrubber,
    phase: Phase,
    duration: Duration,
) -> Outcome {
    let detail = "the run was stopped (SIGTERM or SIGINT) before this check finished";
    Outcome {
        result: Err(Failure::new(phase, Fault::new(Reason::Interrupted, detail))),
        duration,
        ..unfinished(check, scrubber)
    }
}

/// An outcome with nothing observed yet, for checks that did not finish.
pub(super) fn unfinished(check: &Check, scrubber: &Scrubber) -> Outcome {
    let target = scrubber.scrub(&check.spec.target());
    Outcome::empty(check.name.clone(), check.spec.kind(), target)
}

/// A check whose task panicked still shows up, failed, in the report.
pub(super) fn crashed(
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
