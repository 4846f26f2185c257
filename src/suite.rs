//! What runs: a validated suite of checks, each with its deadline, its
//! latency budget and its kind's spec. [`crate::config`] builds it from a
//! file; the runner, `serve` and the reports only ever see this.

use crate::aws::settings::Settings;
use crate::check::{Addresses, CheckSpec};
use crate::drill::DrillSpec;
use crate::secret::Scrubber;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Deadline of a check when neither the suite nor the check sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `min_cert_validity` when neither the suite nor the check sets one.
pub const DEFAULT_MIN_CERT_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// A validated suite, ready to run.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    /// DNS server for every name in the suite; `None` is the system's.
    pub resolver: Option<SocketAddr>,
    pub checks: Vec<Check>,
    /// `[[drill]]` tables: run only by `vpc-probe drill`.
    pub drills: Vec<DrillSpec>,
    /// The `[aws]` table: explain failures from describe-only reads.
    pub aws: Option<Settings>,
    /// Removes this suite's secrets from any text before it is shown.
    pub scrubber: Scrubber,
}

impl Suite {
    /// The longest check deadline: no run lasts longer.
    pub fn longest_timeout(&self) -> Duration {
        self.checks
            .iter()
            .map(|c| c.timeout)
            .max()
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

impl Check {
    /// The longest one run of this check takes: its timeout, plus the
    /// longest idle span when it holds sessions idle.
    pub fn wall_time(&self) -> Duration {
        self.timeout
            + self
                .spec
                .idle()
                .map_or(Duration::ZERO, |idle| idle.longest())
    }
}

/// One check of a suite: its name, deadline, budget and what it does.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub timeout: Duration,
    /// A latency budget: a run that passes but takes longer is `too_slow`.
    pub max_duration: Option<Duration>,
    /// Probe the first address the name resolves to, or each of them.
    pub addresses: Addresses,
    /// How often `serve` runs this check, when not the `--interval`: heavy
    /// checks (a COPY, many sessions) run less often than the rest.
    pub interval: Option<Duration>,
    /// A passing TLS check whose presented chain expires sooner is a warning.
    pub min_cert_validity: Duration,
    pub spec: CheckSpec,
}
