//! Runs a suite's checks all at once, each under its own deadline, and
//! collects their outcomes in suite order.

use crate::check::{InFlight, Probe};
use crate::net::Net;
use crate::outcome::{
    AddressResult, ChainFacts, Failure, Fault, IdleStep, Outcome, Phase, Reason, ServerIdentity,
    Warning,
};
use crate::secret::Scrubber;
use crate::suite::{Check, Suite};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
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
///
/// Each check is one task in one JoinSet, its future built straight into
/// the task: one copy per check, sized for its own kind (see
/// [`CheckSpec::run`](crate::check::CheckSpec::run)), never a second copy
/// waiting in a stream for its turn to be spawned.
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
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::with_capacity(checks.len());
    for (index, check) in checks.iter().enumerate() {
        let task = tasks.spawn(owned_check(
            net.clone(),
            Arc::new((*check).clone()),
            suite.scrubber.clone(),
            in_flight[index].clone(),
        ));
        index_of.insert(task.id(), index);
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            next = tasks.join_next_with_id() => {
                let Some(joined) = next else { break };
                let id = joined.as_ref().map_or_else(|err| err.id(), |(id, _)| *id);
                let index = index_of[&id];
                let outcome = settled(
                    checks[index],
                    &suite.scrubber,
                    &in_flight[index],
                    clock.elapsed(),
                    joined.map(|(_, outcome)| outcome),
                );
                progress(&outcome);
                outcomes[index] = Some(outcome);
            },
            () = &mut stop => break,
        }
    }
    // Dropping the set aborts the checks still running.
    drop(tasks);
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
    let in_flight = InFlight::default();
    let task = owned_check(
        net.clone(),
        Arc::new(check.clone()),
        scrubber.clone(),
        in_flight.clone(),
    );
    isolated(check, scrubber, in_flight, task).await
}

/// Run `run` as a task; a panic becomes a failed outcome in the phase
/// `in_flight` last entered, after the time it had run.
fn isolated<'a, Fut>(
    check: &'a Check,
    scrubber: &'a Scrubber,
    in_flight: InFlight,
    run: Fut,
) -> impl Future<Output = Outcome> + use<'a, Fut>
where
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let clock = Instant::now();
    let mut one = JoinSet::new();
    // Spawned here, not at the first poll: the returned future holds only
    // the set, never a copy of `run`.
    one.spawn(run);
    async move {
        let joined = one.join_next().await.expect("one task was spawned");
        settled(check, scrubber, &in_flight, clock.elapsed(), joined)
    }
}

/// A finished task's outcome; a task that panicked becomes a failed
/// outcome in the phase it was in.
fn settled(
    check: &Check,
    scrubber: &Scrubber,
    in_flight: &InFlight,
    ran: Duration,
    joined: Result<Outcome, tokio::task::JoinError>,
) -> Outcome {
    joined.unwrap_or_else(|err| crashed(check, scrubber, &err, in_flight.phase(), ran))
}

/// [`run_check`] owning what it needs, as a task does.
async fn owned_check(
    net: Net,
    check: Arc<Check>,
    scrubber: Scrubber,
    in_flight: InFlight,
) -> Outcome {
    run_check(&net, &check, &scrubber, in_flight).await
}

/// Run one check and scrub its secrets from everything it reports.
async fn run_check(net: &Net, check: &Check, scrubber: &Scrubber, in_flight: InFlight) -> Outcome {
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
fn scrubbed_chain(chain: ChainFacts, scrubber: &Scrubber) -> ChainFacts {
    ChainFacts {
        subject: scrubber.scrub(&chain.subject),
        sans: chain.sans.iter().map(|san| scrubber.scrub(san)).collect(),
        issuer: scrubber.scrub(&chain.issuer),
        ..chain
    }
}

/// Idle steps with what the server said scrubbed: a server's words may
/// echo a secret (a user name and token in an error).
fn scrubbed_idle(steps: Vec<IdleStep>, scrubber: &Scrubber) -> Vec<IdleStep> {
    steps
        .into_iter()
        .map(|step| IdleStep {
            server_said: step.server_said.map(|said| scrubber.scrub(&said)),
            ..step
        })
        .collect()
}

/// A passing check whose chain expires within its `min_cert_validity`.
fn warning(
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
fn scrubbed(failure: Failure, scrubber: &Scrubber) -> Failure {
    Failure {
        detail: scrubber.scrub(&failure.detail),
        ..failure
    }
}

/// A run that passed but overran its latency budget is `too_slow`,
/// attributed to the phase that took longest.
fn within_max_duration(
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
        server: None,
        evidence: None,
        certificate: None,
        warning: None,
        idle: Vec::new(),
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

/// How large one check's future may grow, in bytes, in the test profile
/// (a debug build; release futures are smaller). One task per check holds
/// [`owned_check`]'s future; the kind's own future is boxed beside it.
/// Peak memory per check follows these, so a test fails when they grow.
#[cfg(test)]
mod future_sizes {
    use super::*;
    use crate::check::InFlight;

    /// The task's own future, the same for every kind (360 B when this
    /// bound was set; 6,040 B with the resolver and the check held inline;
    /// 536 B once the probe carried idle steps and keepalives).
    const TASK: usize = 640;

    /// The kind's boxed future, from `spec.run`: about a third above its
    /// size when the bound was set (tcp 1,264 B, dns 440, http 4,368,
    /// redis 4,528, postgres 9,392; dns 608 once lookups were shared).
    fn kind_bound(kind: crate::outcome::Kind) -> usize {
        use crate::outcome::Kind;
        match kind {
            Kind::Tcp => 1700,
            Kind::Dns => 800,
            Kind::Http => 6 * 1024,
            Kind::Redis => 6 * 1024,
            Kind::Postgres => 12 * 1024,
        }
    }

    /// The sizes of the two futures one check of `body` makes.
    fn sizes(body: &str) -> (crate::outcome::Kind, usize, usize) {
        let text = format!("[[check]]\nname = \"x\"\n{body}\n");
        let suite = crate::config::parse(&text, "sizes.toml", "sizes").expect("suite");
        let check = suite.checks[0].clone();
        let net = Net::new(Some("127.0.0.1:9".parse().unwrap()), Duration::from_secs(1)).unwrap();
        let task = owned_check(
            net.clone(),
            Arc::new(check.clone()),
            Scrubber::default(),
            InFlight::default(),
        );
        let task_size = std::mem::size_of_val(&task);
        let mut probe = Probe::new(&net, Duration::from_secs(1), InFlight::default());
        let kind_future = check.spec.run(&mut probe);
        // The concrete size behind the box, read through its vtable.
        let kind_size = std::mem::size_of_val(&*kind_future);
        (check.spec.kind(), task_size, kind_size)
    }

    macro_rules! bounded {
        ($($name:ident: $body:expr;)*) => {$(
            #[tokio::test]
            async fn $name() {
                let (kind, task, own) = sizes($body);
                eprintln!("{kind:?}: task future {task} B, kind future {own} B");
                assert!(task <= TASK, "{kind:?}: the task's future is {task} B, over {TASK} B");
                let bound = kind_bound(kind);
                assert!(own <= bound, "{kind:?}: its future is {own} B, over {bound} B");
            }
        )*};
    }

    bounded! {
        tcp: "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9";
        dns: "kind = \"dns\"\nhost = \"db.internal\"";
        http: "kind = \"http\"\nurl = \"http://127.0.0.1:9/\"";
        redis: "kind = \"redis\"\nurl = \"redis://127.0.0.1:9\"";
        postgres: "kind = \"postgres\"\nurl = \"postgres://probe@127.0.0.1:9/app\"";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string a server supplies passes the scrubber: a secret
    /// planted in each such field is gone.
    #[test]
    fn server_supplied_strings_are_scrubbed() {
        let planted = "planted-Secret-9931";
        let mut scrubber = Scrubber::default();
        scrubber.add(&crate::secret::Secret::new(planted));
        let said = format!("FATAL: password {planted} expired");
        let steps = vec![IdleStep {
            idle_seconds: 1.0,
            survived: false,
            fate: Some(crate::outcome::Fate::Fin),
            after_seconds: Some(0.5),
            server_said: Some(said),
        }];
        let idle = scrubbed_idle(steps, &scrubber);
        let chain = scrubbed_chain(
            ChainFacts {
                subject: format!("CN={planted}"),
                sans: vec![format!("{planted}.example")],
                issuer: format!("CN={planted} CA"),
                not_after: 0,
                earliest_not_after: 0,
                presented: 1,
            },
            &scrubber,
        );
        let fields = [
            idle[0].server_said.clone().unwrap_or_default(),
            chain.subject,
            chain.sans.join(","),
            chain.issuer,
        ];
        for field in fields {
            assert!(!field.contains(planted) && !field.is_empty(), "{field}");
        }
    }

    #[test]
    fn over_budget_is_too_slow_in_the_slowest_phase() {
        let phases = BTreeMap::from([
            (Phase::Connect, Duration::from_millis(5)),
            (Phase::Auth, Duration::from_millis(400)),
        ]);
        let budget = Some(Duration::from_millis(300));
        let failure = within_max_duration(budget, Duration::from_millis(420), &phases).unwrap_err();
        assert_eq!(
            (failure.reason, failure.phase),
            (Reason::TooSlow, Phase::Auth)
        );
        assert!(failure.detail.contains("420 ms") && failure.detail.contains("300 ms"));
        assert!(within_max_duration(budget, Duration::from_millis(200), &phases).is_ok());
        assert!(within_max_duration(None, Duration::from_secs(9), &phases).is_ok());
    }

    #[tokio::test]
    async fn a_crash_is_reported_in_its_phase_after_the_time_it_ran() {
        let check = Check {
            name: "hostile".into(),
            timeout: Duration::from_secs(5),
            max_duration: None,
            addresses: Default::default(),
            interval: None,
            min_cert_validity: crate::suite::DEFAULT_MIN_CERT_VALIDITY,
            spec: crate::check::CheckSpec::Tcp(crate::check::tcp::TcpSpec {
                host: "127.0.0.1".into(),
                port: 9,
                expect: Default::default(),
                idle: None,
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
