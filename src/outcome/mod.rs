//! What a check found: its classified failure reason, the phase it failed in,
//! and the per-phase timings; plus the closed label sets (kinds, reasons,
//! phases) and the fixed table of hints the report prints.

mod facts;
mod finding;
mod idle;
mod reason;

pub use facts::{Facts, Handshake};
pub use finding::{Code, Evidence, Finding};
pub use idle::{idle_span, IdleEnd, IdleStep};
pub use reason::Reason;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The kinds a suite may name in `kind = "..."`; the label is the same word.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[derive(strum::EnumIter, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    Dns,
    Tcp,
    Postgres,
    Redis,
    Http,
}

impl Kind {
    /// The `kind` label, and the name used in suite files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A step of a check, each timed and each under the check's deadline.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Auth,
    Query,
    Request,
    Body,
    /// A held session's idle span and the use after it (`idle`).
    Idle,
    Close,
}

impl Phase {
    /// The label value used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The reason a deadline expiring in this phase stands for.
    pub fn deadline_reason(self) -> Reason {
        match self {
            Phase::Resolve => Reason::DnsTimeout,
            Phase::Connect => Reason::ConnectTimeout,
            Phase::Idle => Reason::IdleTimeout,
            Phase::Tls
            | Phase::Auth
            | Phase::Query
            | Phase::Request
            | Phase::Body
            | Phase::Close => Reason::Timeout,
        }
    }
}

/// A classified error before the phase that saw it is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub reason: Reason,
    pub detail: String,
    /// The protocol's own error code when the server sent one (a
    /// SQLSTATE), for callers that count finer than reasons (the drill).
    pub code: Option<String>,
}

impl Fault {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Fault {
            reason,
            detail: detail.into(),
            code: None,
        }
    }

    /// The same fault, carrying the server's error code.
    pub fn with_code(self, code: impl Into<String>) -> Self {
        Fault {
            code: Some(code.into()),
            ..self
        }
    }
}

/// A check's failure: why, where, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: Reason,
    pub phase: Phase,
    pub detail: String,
}

impl Failure {
    pub fn new(phase: Phase, fault: Fault) -> Self {
        Failure {
            reason: fault.reason,
            phase,
            detail: fault.detail,
        }
    }
}

/// One resolved address's own result, when a check probes every address
/// behind its name (`addresses = "all"`).
#[derive(Debug, Clone, PartialEq)]
pub struct AddressResult {
    pub address: std::net::IpAddr,
    pub result: Result<(), Failure>,
    pub duration: Duration,
    /// This address's idle steps, when the check holds sessions idle.
    pub idle: Vec<IdleStep>,
}

/// Timings of repeated PostgreSQL open/auth/query/close cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cycles {
    pub ok: u32,
    pub failed: u32,
    /// Seconds per completed or failed cycle, in run order.
    pub seconds: Vec<f64>,
}

impl Cycles {
    /// (min, median, max) of the cycle times, if any cycle ran.
    pub fn min_median_max(&self) -> Option<(f64, f64, f64)> {
        min_median_max(&self.seconds)
    }
}

/// (min, median, max) of `samples`, if there are any.
pub fn min_median_max(samples: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (sorted.first()?, sorted.last()?);
    Some((*first, sorted[sorted.len() / 2], *last))
}

/// The presented chain, as the report's tls block shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainFacts {
    pub subject: String,
    /// DNS names and IP addresses the leaf covers.
    pub sans: Vec<String>,
    pub issuer: String,
    /// The leaf's not-after, seconds since the epoch.
    pub not_after: i64,
    /// The earliest not-after of every certificate the server presented.
    pub earliest_not_after: i64,
    /// How many certificates the server presented.
    pub presented: usize,
}

/// Why a passing check is not quite fine: a closed set, like [`Reason`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum WarningReason {
    /// The presented chain expires within the check's `min_cert_validity`.
    CertExpiring,
}

impl WarningReason {
    /// The `reason` label and the JSON value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A passing check's warning: it passes, and says what is coming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Warning {
    pub reason: WarningReason,
    pub detail: String,
    /// Days until the earliest certificate of the chain expires.
    pub days_left: f64,
}

impl Warning {
    /// A warning when `chain` expires within `min` of `now` (epoch seconds).
    pub fn cert_expiring(chain: &ChainFacts, min: Duration, now: i64) -> Option<Warning> {
        let left = chain.earliest_not_after - now;
        if left >= min.as_secs() as i64 {
            return None;
        }
        let days_left = left as f64 / 86_400.0;
        Some(Warning {
            reason: WarningReason::CertExpiring,
            detail: format!(
                "the certificate chain ({}) expires in {days_left:.1} days, under min_cert_validity ({} days)",
                chain.subject,
                min.as_secs() / 86_400
            ),
            days_left,
        })
    }
}

/// The result of running one check once.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub kind: Kind,
    /// What was probed, with any secret removed.
    pub target: String,
    pub result: Result<(), Failure>,
    pub duration: Duration,
    /// Total time spent in each phase (summed over cycles).
    pub phases: BTreeMap<Phase, Duration>,
    /// What was seen on the way, for display (the report's `observed`).
    pub observed: BTreeMap<&'static str, String>,
    /// The facts other modules read back: addresses, peer, TLS handshake.
    pub facts: Facts,
    pub cycles: Option<Cycles>,
    /// Each address's result with `addresses = "all"`; empty otherwise.
    pub addresses: Vec<AddressResult>,
    /// The database server behind the port, when the kind can tell.
    pub server: Option<ServerIdentity>,
    /// What the AWS describes say about the path (`[aws]` suites only).
    pub evidence: Option<Evidence>,
    /// The certificate chain the server presented (TLS checks), also when
    /// the handshake failed on it.
    pub certificate: Option<ChainFacts>,
    /// Set on a passing check only: it passes, with something coming.
    pub warning: Option<Warning>,
    /// Each idle step's fate (`idle = ...`); empty otherwise.
    pub idle: Vec<IdleStep>,
}

/// Which server answered behind a proxy, as the server itself says: what
/// `vpc_probe_postgres_server_info` shows, so a new series marks a failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `address:port` from the server's own view (`inet_server_addr()`).
    pub server: String,
    /// `primary` or `replica`.
    pub role: String,
    /// The WAL timeline, on a primary.
    pub timeline: Option<String>,
}

impl Outcome {
    /// A passing outcome with nothing seen yet, to build on: a check that
    /// did not finish, a sample, a benchmark's ledger.
    pub fn empty(name: String, kind: Kind, target: String) -> Outcome {
        Outcome {
            name,
            kind,
            target,
            result: Ok(()),
            duration: Duration::ZERO,
            phases: BTreeMap::new(),
            observed: BTreeMap::new(),
            facts: Facts::default(),
            cycles: None,
            addresses: Vec::new(),
            server: None,
            evidence: None,
            certificate: None,
            warning: None,
            idle: Vec::new(),
        }
    }

    pub fn success(&self) -> bool {
        self.result.is_ok()
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err()
    }
}

/// An outcome for unit tests of what is made from outcomes.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    pub(crate) fn outcome(name: &str, reason: Option<Reason>) -> Outcome {
        Outcome {
            result: match reason {
                None => Ok(()),
                Some(reason) => Err(Failure::new(Phase::Connect, Fault::new(reason, "x"))),
            },
            duration: Duration::from_millis(5),
            ..Outcome::empty(name.to_string(), Kind::Tcp, "127.0.0.1:1".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    /// Days left of a chain expiring `in_days` from NOW, judged at 14 days (None: no warning).
    fn warned(in_days: f64, days_left: Option<f64>) {
        let chain = ChainFacts {
            subject: "CN=x".into(),
            sans: vec![],
            issuer: "CN=ca".into(),
            not_after: NOW + (in_days * DAY as f64) as i64,
            earliest_not_after: NOW + (in_days * DAY as f64) as i64,
            presented: 1,
        };
        let min = Duration::from_secs(14 * DAY as u64);
        let warning = Warning::cert_expiring(&chain, min, NOW);
        assert_eq!(warning.as_ref().map(|w| w.days_left), days_left);
        assert!(
            warning.is_none_or(|w| w.reason == WarningReason::CertExpiring
                && w.detail.contains("min_cert_validity (14 days)"))
        );
    }

    crate::cases!(warned {
        five_days_left_warns: 5.0 => Some(5.0);
        thirteen_and_a_half_days_warns: 13.5 => Some(13.5);
        exactly_the_minimum_does_not: 14.0 => None;
        a_year_does_not: 365.0 => None;
        already_expired_under_skip_verify_warns: -1.0 => Some(-1.0);
    });

    #[test]
    fn phase_labels_are_their_json_names() {
        for phase in <Phase as strum::IntoEnumIterator>::iter() {
            assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
        }
    }

    #[test]
    fn deadline_in_resolve_or_connect_names_the_layer() {
        assert_eq!(Phase::Resolve.deadline_reason(), Reason::DnsTimeout);
        assert_eq!(Phase::Connect.deadline_reason(), Reason::ConnectTimeout);
        assert_eq!(Phase::Query.deadline_reason(), Reason::Timeout);
    }

    #[test]
    fn cycle_timings_are_min_median_max() {
        let cycles = Cycles {
            ok: 3,
            failed: 0,
            seconds: vec![0.3, 0.1, 0.2],
        };
        assert_eq!(cycles.min_median_max(), Some((0.1, 0.2, 0.3)));
        assert_eq!(Cycles::default().min_median_max(), None);
    }
}
