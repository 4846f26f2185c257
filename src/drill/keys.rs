//! The suite keys of a `[[drill]]` table, declared once, and the rules
//! that turn them into a [`DrillSpec`].

use super::postgres::PostgresTarget;
use super::redis::RedisTarget;
use super::target::{DrillKind, Target};
use super::{Budgets, DrillSpec, ExpectedChange, SessionFate};
use crate::check::keys::Problem;
use crate::check::postgres::{self, PostgresSpec};
use crate::check::redis;
use crate::expand::Env;
use crate::secret::{Scrubber, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Longest a drill may wait for a change or settle: a change window, not a soak.
const MAX_WAIT: Duration = Duration::from_secs(1800);

/// The suite keys every `[[drill]]` takes (besides `name`), whatever its
/// kind; a kind's own keys are in its struct below.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    pub kind: DrillKind,
    url: Env<url::Url>,
    password: Option<Secret>,
    password_file: Option<Env<PathBuf>>,
    ca_file: Option<Env<PathBuf>>,
    tls_server_name: Option<Env<String>>,
    interval: Option<Env<humantime::Duration>>,
    attempt_timeout: Option<Env<humantime::Duration>>,
    baseline: Option<Env<humantime::Duration>>,
    wait_for_change: Option<Env<humantime::Duration>>,
    settle: Option<Env<humantime::Duration>>,
    trigger: Option<Vec<Env<String>>>,
    #[serde(default)]
    expect: ExpectedChange,
    max_write_gap: Option<Env<humantime::Duration>>,
    max_lost_writes: Option<u64>,
    max_misrouted_writes: Option<u64>,
    #[serde(default)]
    open_session: SessionFate,
}

/// The keys only `kind = "postgres-failover"` takes: the read-only
/// endpoint, its budget, and the drill's table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresKeys {
    ro_url: Option<Env<url::Url>>,
    table: Option<Env<String>>,
    max_ro_gap: Option<Env<humantime::Duration>>,
}

/// The keys only `kind = "redis-failover"` takes: none yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisKeys {}

/// A kind's own keys, read by the kind the table names.
#[derive(Debug)]
pub enum KindKeys {
    Postgres(PostgresKeys),
    Redis(RedisKeys),
}

impl Keys {
    pub fn build(
        self,
        name: String,
        own: KindKeys,
        scrubber: &mut Scrubber,
    ) -> Result<DrillSpec, Problem> {
        let (target, max_ro_gap): (Arc<dyn Target>, _) = match own {
            KindKeys::Postgres(own) => {
                let gap = own.ro_url.as_ref().and(own.max_ro_gap.clone());
                (Arc::new(self.postgres(own, scrubber)?), gap)
            }
            KindKeys::Redis(RedisKeys {}) => (Arc::new(self.redis(scrubber)?), None),
        };
        let interval = duration(self.interval, "interval", Duration::from_millis(100))?;
        let attempt_timeout = duration(
            self.attempt_timeout,
            "attempt_timeout",
            Duration::from_secs(1),
        )?;
        if interval < Duration::from_millis(10) {
            return Err(Problem::at("interval", "must be at least 10ms"));
        }
        if self.expect == ExpectedChange::NoChange && self.open_session == SessionFate::Cut {
            return Err(Problem::at(
                "open_session",
                "`expect = \"no-change\"` needs the open session to survive: leave open_session out",
            ));
        }
        let trigger = crate::check::keys::strings(self.trigger);
        if trigger.first().is_some_and(|program| program.is_empty()) {
            return Err(Problem::at(
                "trigger",
                "the first element is the program to run",
            ));
        }
        Ok(DrillSpec {
            name,
            target,
            interval,
            attempt_timeout,
            baseline: duration(self.baseline, "baseline", Duration::from_secs(3))?,
            wait_for_change: duration(
                self.wait_for_change,
                "wait_for_change",
                Duration::from_secs(120),
            )?,
            settle: duration(self.settle, "settle", Duration::from_secs(10))?,
            trigger,
            expect: self.expect,
            budgets: Budgets {
                max_write_gap: duration(
                    self.max_write_gap,
                    "max_write_gap",
                    Duration::from_secs(15),
                )?,
                max_lost_writes: self.max_lost_writes.unwrap_or(0),
                max_misrouted_writes: self.max_misrouted_writes.unwrap_or(0),
                max_ro_gap: max_ro_gap.map(|Env(gap)| gap.into()),
                open_session: self.open_session,
            },
        })
    }

    /// The PostgreSQL kind's endpoints (built by the postgres check's own
    /// rules) and its table.
    fn postgres(
        &self,
        own: PostgresKeys,
        scrubber: &mut Scrubber,
    ) -> Result<PostgresTarget, Problem> {
        let rw = self.endpoint(&self.url, scrubber);
        let rw = rw.map_err(|p| rename(p, "url"))?;
        let ro = match &own.ro_url {
            Some(url) => Some(
                self.endpoint(url, scrubber)
                    .map_err(|p| rename(p, "ro_url"))?,
            ),
            None => None,
        };
        Ok(PostgresTarget {
            rw,
            ro,
            table: table(own.table)?,
        })
    }

    /// A PostgreSQL endpoint from a URL and the shared password and TLS
    /// keys, built by the postgres kind's own rules.
    fn endpoint(
        &self,
        url: &Env<url::Url>,
        scrubber: &mut Scrubber,
    ) -> Result<PostgresSpec, Problem> {
        postgres::Keys::endpoint(
            url.clone(),
            self.password.clone(),
            self.password_file.clone(),
            self.ca_file.clone(),
            self.tls_server_name.clone(),
        )
        .build(scrubber)
    }

    /// The Redis kind's endpoint, built by the redis check's own rules.
    fn redis(&self, scrubber: &mut Scrubber) -> Result<RedisTarget, Problem> {
        let endpoint = redis::Keys::endpoint(
            self.url.clone(),
            self.password.clone(),
            self.password_file.clone(),
            self.ca_file.clone(),
            self.tls_server_name.clone(),
        )
        .build(scrubber)?;
        Ok(RedisTarget { endpoint })
    }
}

/// A problem about `url` told about `key` instead (e.g. `ro_url`).
fn rename(problem: Problem, key: &str) -> Problem {
    match problem.key.as_deref() {
        Some("url") => Problem::at(key, problem.message),
        _ => problem,
    }
}

fn duration(
    value: Option<Env<humantime::Duration>>,
    key: &str,
    default: Duration,
) -> Result<Duration, Problem> {
    let value = value.map_or(default, |Env(d)| d.into());
    if value.is_zero() || value > MAX_WAIT {
        return Err(Problem::at(
            key,
            format!(
                "must be more than zero and at most {}",
                humantime::format_duration(MAX_WAIT)
            ),
        ));
    }
    Ok(value)
}

/// The drill table: a plain SQL identifier, optionally schema-qualified.
fn table(value: Option<Env<String>>) -> Result<String, Problem> {
    let name = value.map_or_else(|| "vpc_probe_drill".to_string(), |Env(t)| t);
    let plain = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|part| plain(part)) {
        return Err(Problem::at(
            "table",
            "use a lower-case SQL identifier, optionally schema-qualified (e.g. ops.vpc_probe_drill)",
        ));
    }
    Ok(name)
}
