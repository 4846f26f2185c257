//! One check's run: the kind's probe under the check's deadline, then
//! everything it reports scrubbed of secrets, judged against its latency
//! budget and warned about a chain that expires soon.

use crate::check::{InFlight, Probe};
use crate::net::Net;
use crate::outcome::{
    AddressResult, ChainFacts, Failure, Fault, IdleStep, Outcome, Phase, Reason, ServerIdentity,
    Warning,
};
use crate::secret::Scrubber;
use crate::suite::Check;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Run one check and scrub its secrets from everything it reports.
pub(super) async fn run_check(
    net: &Net,
    check: &Check,
    scrubber: &Scrubber,
    in_flight: InFlight,
) -> Outcome {
    let clock = Instant::now();
    let mut probe = Probe::new(net, check.timeout, in_flight);
    let seen = crate::net::certs::Seen::default();
    let run = check.spec.run_at(&mut probe, check.addresses);
    let result = crate::net::certs::SEEN.scope(seen.clone(), run).await;
    let certificate = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    let certificate = certificate.map(|chain| scrubbed_chain(chain, scrubber));
    let elapsed = clock.elapsed();
    let result = result
        .and_then(|()| within_max_duration(check.max_duration, elapsed, &probe.phases))
        .map_err(|failure| scrubbed(failure, scrubber));
    tracing::debug!(check = %check.name, ok = result.is_ok(), "check finished");
    let warning = warning(check, &result, certificate.as_ref());
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
        facts: probe.facts,
        cycles: probe.cycles,
        addresses: probe
            .addresses
            .into_iter()
            .map(|one| AddressResult {
                result: one.result.map_err(|failure| scrubbed(failure, scrubber)),
                idle: scrubbed_idle(one.idle, scrubber),
                ..one
            })
            .collect(),
        server: probe.server.map(|identity| ServerIdentity {
            server: scrubber.scrub(&identity.server),
            role: scrubber.scrub(&identity.role),
            timeline: identity.timeline.map(|t| scrubber.scrub(&t)),
        }),
        evidence: None,
        warning,
        certificate,
        idle: scrubbed_idle(probe.idle, scrubber),
    }
}

/// A presented chain's names scrubbed: they are the server's words.
pub(super) fn scrubbed_chain(chain: ChainFacts, scrubber: &Scrubber) -> ChainFacts {
    ChainFacts {
        subject: scrubber.scrub(&chain.subject),
        sans: chain.sans.iter().map(|san| scrubber.scrub(san)).collect(),
        issuer: scrubber.scrub(&chain.issuer),
        ..chain
    }
}

/// Idle steps with what the server said scrubbed: a server's words may
/// echo a secret (a user name and token in an error).
pub(super) fn scrubbed_idle(steps: Vec<IdleStep>, scrubber: &Scrubber) -> Vec<IdleStep> {
    steps
        .into_iter()
        .map(|step| IdleStep {
            server_said: step.server_said.map(|said| scrubber.scrub(&said)),
            ..step
        })
        .collect()
}

/// A passing check whose chain expires within its `min_cert_validity`.
pub(super) fn warning(
    check: &Check,
    result: &Result<(), Failure>,
    chain: Option<&ChainFacts>,
) -> Option<Warning> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    result.as_ref().ok()?;
    Warning::cert_expiring(chain?, check.min_cert_validity, now)
}

/// The failure with every secret removed from its detail.
pub(super) fn scrubbed(failure: Failure, scrubber: &Scrubber) -> Failure {
    Failure {
        detail: scrubber.scrub(&failure.detail),
        ..failure
    }
}

/// A run that passed but overran its latency budget is `too_slow`,
/// attributed to the phase that took longest.
pub(super) fn within_max_duration(
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

pub(super) fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}
