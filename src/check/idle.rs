//! `idle = "6m"`, or a staircase `idle = ["30s", "5m", "6m"]`: sessions
//! opened and authenticated as the kind always does, held idle (one per
//! step, all at once, so the run takes the longest step, not their sum),
//! then used. A session that no longer works fails the check with
//! `idle_timeout`, saying how it died ([`IdleEnd`]: FIN, reset, or silence
//! until the deadline), after how long, and between which steps the limit
//! lies. `tcp_keepalive` turns keepalives on for the held sessions.
//!
//! The wait costs nothing while idle: each session's reader (the protocol
//! driver, or a reader task for `tcp`) wakes the step only when the
//! connection ends ([`crate::net::ending`]).

use super::keys::Problem;
use super::Probe;
use crate::expand::Env;
use crate::net::ending::End;
use crate::net::wire::Heard;
use crate::outcome::{Failure, Fault, IdleEnd, IdleStep, Phase, Reason};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a session may be held idle: past the 350 s of an NLB and
/// the 30m of Patroni's HAProxy sample, short of tying a probe up for days.
pub const MAX_IDLE: Duration = Duration::from_secs(2 * 3600);

/// Most steps of a staircase: each is a session held at once.
pub const MAX_STEPS: usize = 8;

/// Sessions held idle, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idle {
    /// Ascending, distinct.
    pub steps: Vec<Duration>,
    /// Keepalive idle time and interval on the held sessions.
    pub keepalive: Option<Duration>,
}

impl Idle {
    /// The longest step: what an idle check adds to its run.
    pub fn longest(&self) -> Duration {
        self.steps.last().copied().unwrap_or_default()
    }
}

/// The `idle` key: one span, or a list of spans.
#[derive(Debug)]
pub struct Steps(Vec<Duration>);

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StepsVisitor)
    }
}

struct StepsVisitor;

impl<'de> Visitor<'de> for StepsVisitor {
    type Value = Steps;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a duration such as \"6m\", or a list of them such as [\"30s\", \"5m\", \"6m\"]",
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Steps, E> {
        Ok(Steps(vec![span(text)?]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Steps, A::Error> {
        let mut steps = Vec::new();
        while let Some(text) = seq.next_element::<String>()? {
            steps.push(span(&text)?);
        }
        Ok(Steps(steps))
    }
}

/// One span, after `${VAR}` expansion.
fn span<E: de::Error>(text: &str) -> Result<Duration, E> {
    let parsed: humantime::Duration = crate::expand::typed(text).map_err(E::custom)?;
    Ok(parsed.into())
}

/// The `idle` and `tcp_keepalive` keys as an [`Idle`]; keepalives alone
/// hold nothing, so they need `idle`.
pub fn build(
    steps: Option<Steps>,
    keepalive: Option<Env<humantime::Duration>>,
) -> Result<Option<Idle>, Problem> {
    let keepalive = keepalive.map(|Env(every)| Duration::from(every));
    let Some(Steps(mut steps)) = steps else {
        return match keepalive {
            Some(_) => Err(Problem::at(
                "tcp_keepalive",
                "applies to sessions held with `idle`",
            )),
            None => Ok(None),
        };
    };
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(Problem::at("idle", format!("give 1 to {MAX_STEPS} spans")));
    }
    if steps.iter().any(|s| s.is_zero() || *s > MAX_IDLE) {
        return Err(Problem::at(
            "idle",
            format!(
                "each span must be more than zero and at most {}",
                humantime::format_duration(MAX_IDLE)
            ),
        ));
    }
    if keepalive.is_some_and(|k| k < Duration::from_secs(1) || k > MAX_IDLE) {
        return Err(Problem::at("tcp_keepalive", "must be between 1s and 2h"));
    }
    steps.sort();
    steps.dedup();
    Ok(Some(Idle { steps, keepalive }))
}

/// A kind key that an idle check cannot combine with.
pub fn refuse(idle: &Option<Idle>, key: &str, set: bool) -> Result<(), Problem> {
    if idle.is_some() && set {
        return Err(Problem::at(
            key,
            "does not combine with `idle`, which holds sessions of its own: put it in another check",
        ));
    }
    Ok(())
}

/// An opened session to hold, with the record of how its connection ends.
pub struct IdleSession<S> {
    pub session: S,
    pub heard: Arc<Heard>,
}

/// How one step went.
enum Step {
    /// The session never opened: the path itself fails.
    Unopened(Failure),
    /// Held and used; `Err` when the use failed for another reason than
    /// the session having died (the server answered an error).
    Done(IdleStep, Result<(), Failure>),
}

/// Open one session per step, hold each idle for its step, then `use_it`.
/// Opening has the check's timeout; each use has it again, all within
/// the timeout plus the longest step.
pub async fn run<'p, S, O, OF, U, UF>(
    probe: &mut Probe<'p>,
    idle: &Idle,
    open: O,
    use_it: U,
) -> Result<(), Failure>
where
    O: Fn(Probe<'p>) -> OF,
    OF: Future<Output = (Probe<'p>, Result<IdleSession<S>, Failure>)>,
    U: Fn(Probe<'p>, S) -> UF,
    UF: Future<Output = (Probe<'p>, Result<(), Failure>)>,
{
    let start = Instant::now();
    let last = start + probe.timeout + idle.longest();
    let runs = idle.steps.iter().map(|&step| {
        let mut sibling = probe.sibling();
        sibling.deadline = start + probe.timeout;
        sibling.keepalive = idle.keepalive;
        let (open, use_it) = (&open, &use_it);
        async move {
            let (sibling, opened) = open(sibling).await;
            let held = match opened {
                Ok(held) => held,
                Err(failure) => return (sibling, Step::Unopened(failure)),
            };
            hold(sibling, step, last, held, use_it).await
        }
    });
    let steps = futures_util::future::join_all(runs).await;
    verdict(probe, idle, steps)
}

/// Hold one session idle for `step`, then use it; judge how it ended.
async fn hold<'p, S, U, UF>(
    mut sibling: Probe<'p>,
    step: Duration,
    last: Instant,
    held: IdleSession<S>,
    use_it: &U,
) -> (Probe<'p>, Step)
where
    U: Fn(Probe<'p>, S) -> UF,
    UF: Future<Output = (Probe<'p>, Result<(), Failure>)>,
{
    let IdleSession { session, heard } = held;
    let rested = Instant::now();
    let ending = heard.ending();
    if let Ok((at, end)) = tokio::time::timeout_at(rested + step, ending.wait()).await {
        sibling.add_time(Phase::Idle, rested.elapsed());
        drop(session);
        let fate = fate(end);
        let record = died(step, fate, at - rested, ending.said());
        let failure = fate.is_none().then(|| ended_otherwise(end, at - rested));
        return (sibling, Step::Done(record, failure.map_or(Ok(()), Err)));
    }
    sibling.add_time(Phase::Idle, step);
    sibling.deadline = (Instant::now() + sibling.timeout).min(last);
    let (sibling, used) = use_it(sibling, session).await;
    let Err(failure) = used else {
        let record = IdleStep {
            idle_seconds: step.as_secs_f64(),
            survived: true,
            fate: None,
            after_seconds: None,
            server_said: None,
        };
        return (sibling, Step::Done(record, Ok(())));
    };
    let (fate, at) = match ending.get() {
        Some((at, end)) => (fate(end), at),
        None if is_deadline(&failure) => (Some(IdleEnd::Silence), Instant::now()),
        None => (None, Instant::now()),
    };
    let record = died(step, fate, at - rested, ending.said());
    match fate {
        Some(_) => (sibling, Step::Done(record, Ok(()))),
        None => (sibling, Step::Done(record, Err(failure))),
    }
}

/// The fate an end stands for; `None` for an error that is no idle death.
fn fate(end: End) -> Option<IdleEnd> {
    match end {
        End::Fin => Some(IdleEnd::Fin),
        End::Reset => Some(IdleEnd::Reset),
        End::TimedOut => Some(IdleEnd::Silence),
        End::Failed => None,
    }
}

/// A failure the check's deadline made: no answer at all.
fn is_deadline(failure: &Failure) -> bool {
    matches!(failure.reason, Reason::Timeout | Reason::IdleTimeout)
}

/// The record of a step whose session did not survive.
fn died(step: Duration, fate: Option<IdleEnd>, after: Duration, said: Option<&str>) -> IdleStep {
    IdleStep {
        idle_seconds: step.as_secs_f64(),
        survived: false,
        fate,
        after_seconds: Some(after.as_secs_f64()),
        server_said: said.map(str::to_string),
    }
}

/// A socket error during the idle that is no known fate.
fn ended_otherwise(end: End, after: Duration) -> Failure {
    Failure::new(
        Phase::Idle,
        Fault::new(
            Reason::ProtocolError,
            format!(
                "the held session failed ({end:?}) {:.1} s into its idle",
                after.as_secs_f64()
            ),
        ),
    )
}

/// The check's result from every step: the first unopened session's
/// failure, else `idle_timeout` when a session died, else another failure
/// of a use; the steps and the longest step's timings land in `probe`.
fn verdict(
    probe: &mut Probe<'_>,
    idle: &Idle,
    steps: Vec<(Probe<'_>, Step)>,
) -> Result<(), Failure> {
    let mut records = Vec::new();
    let mut unopened = None;
    let mut other = None;
    for (sibling, step) in steps {
        probe.absorb(sibling.learned());
        probe.phases = sibling.phases;
        match step {
            Step::Unopened(failure) => {
                unopened.get_or_insert(failure);
            }
            Step::Done(record, result) => {
                records.push(record);
                if let Err(failure) = result {
                    other.get_or_insert(failure);
                }
            }
        }
    }
    if let Some(failure) = unopened {
        return Err(failure);
    }
    probe.observe(
        "idle",
        records
            .iter()
            .map(IdleStep::summary)
            .collect::<Vec<_>>()
            .join("; "),
    );
    let judged = judge(&records, idle.keepalive);
    probe.idle = records;
    match (judged, other) {
        (Some(failure), _) | (None, Some(failure)) => Err(failure),
        (None, None) => Ok(()),
    }
}

/// `idle_timeout` for the shortest step that died by a known fate, with
/// the bracket a staircase gives; `None` when every session lived.
fn judge(records: &[IdleStep], keepalive: Option<Duration>) -> Option<Failure> {
    let dead = records.iter().find(|r| r.fate.is_some())?;
    let fate = dead.fate?;
    let lived = records
        .iter()
        .filter(|r| r.survived && r.idle_seconds < dead.idle_seconds)
        .map(|r| r.idle_seconds)
        .fold(None, |best: Option<f64>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        });
    let span = crate::outcome::idle_span(dead.idle_seconds);
    let after = dead.after_seconds.unwrap_or_default();
    let mut detail = format!("the session held idle for {span} was {}", fate.told(after));
    if let Some(said) = &dead.server_said {
        detail += &format!(", the server saying: {said}");
    }
    if let Some(lived) = lived {
        detail += &format!(
            "; {} survived, so the limit lies between {} and {span}",
            crate::outcome::idle_span(lived),
            crate::outcome::idle_span(lived)
        );
    }
    if let Some(every) = keepalive {
        detail += &format!(
            "; TCP keepalive every {} did not save it",
            humantime::format_duration(every)
        );
    }
    detail += &format!("; likely: {}", fate.suspects());
    Some(Failure::new(
        Phase::Idle,
        Fault::new(Reason::IdleTimeout, detail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(toml_value: &str) -> Result<Option<Idle>, String> {
        #[derive(Deserialize)]
        struct Keys {
            idle: Option<Steps>,
            tcp_keepalive: Option<Env<humantime::Duration>>,
        }
        let keys: Keys = toml::from_str(toml_value).map_err(|e| e.to_string())?;
        build(keys.idle, keys.tcp_keepalive).map_err(|p| p.message)
    }

    #[test]
    fn one_span_or_a_staircase_sorted() {
        let one = steps("idle = \"6m\"").unwrap().unwrap();
        assert_eq!(one.steps, vec![Duration::from_secs(360)]);
        let stairs = steps("idle = [\"6m\", \"30s\", \"5m\", \"30s\"]\ntcp_keepalive = \"60s\"")
            .unwrap()
            .unwrap();
        let secs: Vec<u64> = stairs.steps.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![30, 300, 360]);
        assert_eq!(stairs.keepalive, Some(Duration::from_secs(60)));
        assert_eq!(stairs.longest(), Duration::from_secs(360));
    }

    fn refused(suite: &str, want: String) {
        assert_eq!(steps(suite).unwrap_err(), want);
    }

    crate::cases!(refused {
        keepalive_alone: "tcp_keepalive = \"60s\"" => "applies to sessions held with `idle`".to_string();
        an_empty_staircase: "idle = []" => format!("give 1 to {MAX_STEPS} spans");
        a_zero_span: "idle = \"0s\"" => "each span must be more than zero and at most 2h".to_string();
        a_day: "idle = \"1day\"" => "each span must be more than zero and at most 2h".to_string();
        sub_second_keepalive: "idle = \"1m\"\ntcp_keepalive = \"500ms\"" => "must be between 1s and 2h".to_string();
    });

    fn record(idle: u64, fate: Option<IdleEnd>, after: f64) -> IdleStep {
        IdleStep {
            idle_seconds: idle as f64,
            survived: fate.is_none(),
            fate,
            after_seconds: fate.map(|_| after),
            server_said: None,
        }
    }

    #[test]
    fn a_staircase_brackets_the_limit() {
        let records = [
            record(30, None, 0.0),
            record(300, Some(IdleEnd::Fin), 180.2),
            record(360, Some(IdleEnd::Fin), 180.1),
        ];
        let failure = judge(&records, None).unwrap();
        assert_eq!(failure.reason, Reason::IdleTimeout);
        assert_eq!(failure.phase, Phase::Idle);
        assert!(
            failure.detail.starts_with(
                "the session held idle for 5m was closed by the peer (FIN) after 180.2 s; 30s survived, so the limit lies between 30s and 5m"
            ),
            "{}",
            failure.detail
        );
        assert!(failure.detail.contains("HAProxy `timeout client`"));
    }

    #[test]
    fn silence_names_connection_tracking_and_every_survivor_passes() {
        let silent = judge(
            &[record(6, Some(IdleEnd::Silence), 9.0)],
            Some(Duration::from_secs(1)),
        )
        .unwrap();
        assert!(silent
            .detail
            .contains("was silent: no answer until the deadline, 9.0 s after it went idle"));
        assert!(silent
            .detail
            .contains("TCP keepalive every 1s did not save it"));
        assert!(silent.detail.contains("connection tracking"));
        assert!(judge(&[record(6, None, 0.0), record(60, None, 0.0)], None).is_none());
    }
}
