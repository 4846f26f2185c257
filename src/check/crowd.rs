//! `concurrency = N`: N sessions through the path at once, each a full
//! cycle, all held open together before any finishes, so the path's
//! connection limits (PostgreSQL, PgBouncer, Redis, HAProxy) meet the
//! application's concurrency before cutover does.

use super::{Learned, Probe};
use crate::outcome::{min_median_max, Failure, Fault, Phase, Reason};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Most sessions one check may open at once.
pub const MAX_CONCURRENCY: u32 = 1000;

/// What the sessions did.
#[derive(Debug, Default)]
pub struct Crowd {
    pub ok: u32,
    pub failed: u32,
    /// Sessions that opened (connected and authenticated).
    pub opened: u32,
    /// Connect time (the first hop's round trip) of each session that connected.
    pub connect: Vec<Duration>,
    pub wall: Duration,
    /// The first failure of a session that failed on its own, by session order.
    pub first: Option<Failure>,
    /// The first session that opened, then waited in vain for the others.
    pub first_waiting: Option<Failure>,
    /// Failed sessions by reason.
    pub by_reason: std::collections::BTreeMap<Reason, u32>,
    /// What the first session to open learned of the path.
    pub learned: Option<Learned>,
}

impl Crowd {
    /// `Err` naming how many failed and the first failure, else `Ok`.
    /// Sessions that opened but got no answer are what a queueing proxy
    /// does (HAProxy `maxconn`): the detail says so.
    pub fn verdict(&self, sessions: u32) -> Result<(), Failure> {
        let Some(first) = self.first.as_ref().or(self.first_waiting.as_ref()) else {
            return Ok(());
        };
        let counts: Vec<String> = self
            .by_reason
            .iter()
            .map(|(reason, count)| format!("{reason} {count}"))
            .collect();
        let mut detail = format!(
            "{} of {sessions} sessions opened at once failed ({}); the first: {}",
            self.failed,
            counts.join(", "),
            first.detail
        );
        let unanswered =
            first.reason == Reason::Timeout && matches!(first.phase, Phase::Tls | Phase::Auth);
        if unanswered && self.opened > 0 {
            detail += &format!(
                " ({} opened; the rest were accepted and got no answer: a proxy queueing them, e.g. HAProxy maxconn, or a server too slow to take them)",
                self.opened
            );
        }
        Err(Failure::new(first.phase, Fault::new(first.reason, detail)))
    }

    /// One line for the report: how many passed, how long, min / median / max.
    pub fn summary(&self, sessions: u32) -> String {
        format!(
            "{}/{sessions} sessions at once ok in {:.3} s; connect {}",
            self.ok,
            self.wall.as_secs_f64(),
            self.timings()
        )
    }

    /// "min / median / max" of the connect times, in milliseconds.
    pub fn timings(&self) -> String {
        let millis: Vec<f64> = self
            .connect
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let (min, median, max) = min_median_max(&millis).unwrap_or_default();
        format!("min {min:.1} ms, median {median:.1} ms, max {max:.1} ms")
    }
}

/// Run the crowd and note it in `probe`: its wall time in the query
/// phase, the summary as `observed.concurrency`; the verdict is the check's.
pub async fn run<'p, S, O, OF, F, FF>(
    probe: &mut Probe<'p>,
    sessions: u32,
    open: O,
    finish: F,
) -> Result<(), Failure>
where
    O: Fn(Probe<'p>) -> OF,
    OF: Future<Output = (Probe<'p>, Result<S, Failure>)>,
    F: Fn(Probe<'p>, S) -> FF,
    FF: Future<Output = Result<(), Failure>>,
{
    let mut crowd = at_once(probe, sessions, open, finish).await;
    probe.absorb(crowd.learned.take().unwrap_or_default());
    probe.add_time(Phase::Query, crowd.wall);
    probe.observe("concurrency", crowd.summary(sessions));
    crowd.verdict(sessions)
}

/// Run `sessions` copies of a two-step session at once: `open` (up to a
/// ready session) for all, then, once every one has opened or failed,
/// `finish` for each. Each runs under its own sibling probe, so its
/// phases are its own; every wait ends at the check's deadline.
async fn at_once<'p, S, O, OF, F, FF>(probe: &Probe<'p>, sessions: u32, open: O, finish: F) -> Crowd
where
    O: Fn(Probe<'p>) -> OF,
    OF: Future<Output = (Probe<'p>, Result<S, Failure>)>,
    F: Fn(Probe<'p>, S) -> FF,
    FF: Future<Output = Result<(), Failure>>,
{
    let gate = Gate::new(sessions as usize);
    let start = tokio::time::Instant::now();
    let runs = (0..sessions).map(|_| {
        let sibling = probe.sibling();
        let (gate, open, finish) = (&gate, &open, &finish);
        async move {
            let ticket = gate.ticket();
            let (sibling, opened) = open(sibling).await;
            let connect = sibling.phases.get(&Phase::Connect).copied();
            let learned = opened.is_ok().then(|| sibling.learned());
            let deadline = sibling.deadline;
            let held = tokio::time::timeout_at(deadline, ticket.arrive()).await;
            let outcome = match (opened, held) {
                (Err(failure), _) => Run::Failed(failure),
                (Ok(_), Err(_)) => Run::Waited,
                (Ok(session), Ok(())) => Run::Finished(finish(sibling, session).await),
            };
            (connect, learned, outcome)
        }
    });
    let results = futures_util::future::join_all(runs).await;
    let mut crowd = Crowd {
        wall: start.elapsed(),
        ..Crowd::default()
    };
    for (connect, learned, outcome) in results {
        crowd.connect.extend(connect);
        crowd.learned = crowd.learned.take().or(learned);
        crowd.opened += u32::from(!matches!(outcome, Run::Failed(_)));
        match outcome {
            Run::Finished(Ok(())) => crowd.ok += 1,
            Run::Finished(Err(failure)) | Run::Failed(failure) => {
                crowd.failed += 1;
                *crowd.by_reason.entry(failure.reason).or_default() += 1;
                crowd.first.get_or_insert(failure);
            }
            Run::Waited => {
                crowd.failed += 1;
                *crowd.by_reason.entry(Reason::Timeout).or_default() += 1;
                crowd.first_waiting.get_or_insert(Failure::new(
                    Phase::Auth,
                    Fault::new(
                        Reason::Timeout,
                        "opened, then waited in vain for the other sessions until the check's deadline",
                    ),
                ));
            }
        }
    }
    crowd
}

/// How one session of a crowd ended.
enum Run {
    /// Opening failed.
    Failed(Failure),
    /// Opened, but the others had not when the deadline came.
    Waited,
    /// Opened and ran its cycle, which passed or failed.
    Finished(Result<(), Failure>),
}

/// Opens once every session has arrived (opened or failed); a session
/// that drops its ticket without arriving counts as arrived.
struct Gate {
    left: AtomicUsize,
    open: Notify,
}

struct Ticket<'g> {
    gate: &'g Gate,
    arrived: bool,
}

impl Gate {
    fn new(sessions: usize) -> Gate {
        Gate {
            left: AtomicUsize::new(sessions),
            open: Notify::new(),
        }
    }

    fn ticket(&self) -> Ticket<'_> {
        Ticket {
            gate: self,
            arrived: false,
        }
    }

    fn count_in(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.open.notify_waiters();
        }
    }
}

impl Ticket<'_> {
    /// Count this session in and wait until every session has.
    async fn arrive(mut self) {
        self.arrived = true;
        let opened = self.gate.open.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        self.gate.count_in();
        if self.gate.left.load(Ordering::Acquire) != 0 {
            opened.await;
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.arrived {
            self.gate.count_in();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_opens_when_the_last_arrives_or_drops_out() {
        let gate = Gate::new(3);
        let dropped = gate.ticket();
        let (a, b) = (gate.ticket(), gate.ticket());
        let waiting = async {
            a.arrive().await;
            "a through"
        };
        let rest = async {
            tokio::task::yield_now().await;
            drop(dropped);
            b.arrive().await;
            "b through"
        };
        let both = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(waiting, rest)
        });
        assert_eq!(both.await.unwrap(), ("a through", "b through"));
    }

    /// What the first session to open learned (its peer here) reaches the
    /// check's probe, as an address's or an idle step's does.
    #[tokio::test]
    async fn the_first_opened_sessions_facts_reach_the_check() {
        let resolver = Some("127.0.0.1:9".parse().unwrap());
        let net = crate::net::Net::new(resolver, Duration::from_secs(1)).unwrap();
        let mut probe = Probe::new(&net, Duration::from_secs(2), Default::default());
        let peer: std::net::SocketAddr = "10.0.1.12:5432".parse().unwrap();
        fn open(mut sibling: Probe<'_>) -> std::future::Ready<(Probe<'_>, Result<(), Failure>)> {
            sibling.facts.peer = Some("10.0.1.12:5432".parse().unwrap());
            std::future::ready((sibling, Ok(())))
        }
        fn finish(_sibling: Probe<'_>, _: ()) -> std::future::Ready<Result<(), Failure>> {
            std::future::ready(Ok(()))
        }
        run(&mut probe, 3, open, finish).await.unwrap();
        assert_eq!(probe.facts.peer, Some(peer));
    }

    #[test]
    fn the_timings_are_min_median_max() {
        let crowd = Crowd {
            connect: [3, 1, 2].map(Duration::from_millis).to_vec(),
            ..Crowd::default()
        };
        assert_eq!(crowd.timings(), "min 1.0 ms, median 2.0 ms, max 3.0 ms");
    }
}
