//! One `[[check]]` table to a [`Check`]: the keys every check has, then
//! the kind's own keys (declared once, as the `Keys` struct in the kind's
//! file), then the rules serde cannot express. A key is refused with what
//! it is: another kind's key, or no key at all.

use super::fields::fields;
use super::MAX_TIMEOUT;
use crate::check::keys::Problem;
use crate::check::{dns, http, postgres, redis, tcp, Addresses, CheckSpec, Kind};
use crate::drill::target::DrillKind;
use crate::drill::{self, DrillSpec};
use crate::expand::Env;
use crate::secret::Scrubber;
use crate::suite::Check;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;
use strum::IntoEnumIterator;

/// The keys every check has, whatever its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    name: Env<String>,
    kind: Kind,
    timeout: Option<Env<humantime::Duration>>,
    max_duration: Option<Env<humantime::Duration>>,
    addresses: Option<Env<Addresses>>,
    interval: Option<Env<humantime::Duration>>,
    min_cert_validity: Option<Env<humantime::Duration>>,
}

/// A check's name, kept apart so duplicates can be told before building.
pub(super) struct Parsed {
    pub name: String,
    pub check: Result<Check, Problem>,
}

/// Build one check from its table; `Err` is a problem naming a key, or none.
pub(super) fn parse(
    table: toml::Table,
    (default_timeout, default_validity): (Duration, Duration),
    scrubber: &mut Scrubber,
) -> Result<Parsed, Problem> {
    let (common, own): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(key, _)| fields::<Common>().contains(&key.as_str()));
    let common: Common = deserialize(common, None)?;
    let Env(name) = common.name;
    let check = build(common.kind, own, scrubber).and_then(|spec| {
        check_name(&name)?;
        let timeout = match common.timeout {
            Some(Env(timeout)) => {
                checked_timeout(timeout.into()).map_err(|msg| Problem::at("timeout", msg))?
            }
            None => default_timeout,
        };
        let max_duration = common
            .max_duration
            .map(|Env(budget)| budget_within(budget.into(), timeout, &spec))
            .transpose()?;
        let addresses = match (common.addresses, spec.host()) {
            (None, _) => Addresses::First,
            (Some(Env(addresses)), Some(_)) => addresses,
            (Some(_), None) => {
                return Err(Problem::at(
                    "addresses",
                    format!(
                    "does not apply to kind `{}`: it judges the answer itself (expect_addresses)",
                    spec.kind()
                ),
                ))
            }
        };
        let interval = common
            .interval
            .map(|Env(every)| check_interval(every.into(), timeout))
            .transpose()?;
        let min_cert_validity = common
            .min_cert_validity
            .map_or(default_validity, |Env(v)| v.into());
        Ok(Check {
            name: name.clone(),
            timeout,
            max_duration,
            addresses,
            interval,
            min_cert_validity,
            spec,
        })
    });
    Ok(Parsed { name, check })
}

/// A check's own `serve` interval: at least its timeout (a run never
/// overlaps the next) and at least a second.
fn check_interval(every: Duration, timeout: Duration) -> Result<Duration, Problem> {
    if every < timeout.max(Duration::from_secs(1)) {
        return Err(Problem::at(
            "interval",
            format!(
                "must be at least the check's timeout ({}) and 1s",
                humantime::format_duration(timeout)
            ),
        ));
    }
    Ok(every)
}

/// The key every drill has besides its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: Env<String>,
}

/// One `[[drill]]` table: its name, the keys every drill takes and its
/// kind's own (all declared in `drill::keys`).
pub(super) fn parse_drill(
    table: toml::Table,
    scrubber: &mut Scrubber,
) -> Result<DrillSpec, Problem> {
    use drill::keys::{Keys, KindKeys, PostgresKeys, RedisKeys};
    let (named, rest): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(key, _)| fields::<Named>().contains(&key.as_str()));
    let Env(name) = deserialize::<Named>(named, None)?.name;
    check_name(&name)?;
    let (common, own): (toml::Table, toml::Table) = rest
        .into_iter()
        .partition(|(key, _)| fields::<Keys>().contains(&key.as_str()));
    refuse_foreign_drill_keys(&common, &own)?;
    let keys: Keys = serde_path_to_error::deserialize(toml::Value::Table(common))
        .map_err(|err| path_problem(&err, "a drill"))?;
    let own = match keys.kind {
        DrillKind::PostgresFailover => KindKeys::Postgres(drill_keys::<PostgresKeys>(own)?),
        DrillKind::RedisFailover => KindKeys::Redis(drill_keys::<RedisKeys>(own)?),
    };
    keys.build(name, own, scrubber)
}

/// The keys a drill kind takes besides those every drill takes.
fn drill_kind_keys(kind: DrillKind) -> &'static [&'static str] {
    match kind {
        DrillKind::PostgresFailover => fields::<drill::keys::PostgresKeys>(),
        DrillKind::RedisFailover => fields::<drill::keys::RedisKeys>(),
    }
}

/// A key of another drill kind is named as such, any other as unknown.
fn refuse_foreign_drill_keys(common: &toml::Table, own: &toml::Table) -> Result<(), Problem> {
    let kind = common
        .get("kind")
        .and_then(|k| k.clone().try_into::<DrillKind>().ok());
    let accepted = kind.map_or(&[][..], drill_kind_keys);
    let Some(key) = own.keys().find(|key| !accepted.contains(&key.as_str())) else {
        return Ok(());
    };
    let owner = DrillKind::iter().find(|other| drill_kind_keys(*other).contains(&key.as_str()));
    if let Some(owner) = owner {
        let message = format!("applies to kind `{}` only", owner.as_str());
        return Err(Problem::at(key.as_str(), message));
    }
    let mut known = fields::<drill::keys::Keys>().to_vec();
    if let Some(kind) = kind {
        known.extend(drill_kind_keys(kind));
    }
    Err(Problem::at(
        key.as_str(),
        format!("unknown key; a drill takes name, {}", known.join(", ")),
    ))
}

/// A drill kind's own keys from `own`.
fn drill_keys<T: DeserializeOwned>(own: toml::Table) -> Result<T, Problem> {
    serde_path_to_error::deserialize(toml::Value::Table(own))
        .map_err(|err| path_problem(&err, "a drill"))
}

/// The kind's keys from `own`, built into its spec: the one place a kind
/// is wired to the suite format.
fn build(kind: Kind, own: toml::Table, scrubber: &mut Scrubber) -> Result<CheckSpec, Problem> {
    refuse_foreign_keys(kind, &own)?;
    let kind_of = Some(kind);
    Ok(match kind {
        Kind::Dns => CheckSpec::Dns(deserialize::<dns::Keys>(own, kind_of)?.build()?),
        Kind::Tcp => CheckSpec::Tcp(deserialize::<tcp::Keys>(own, kind_of)?.build()?),
        Kind::Postgres => {
            CheckSpec::Postgres(deserialize::<postgres::Keys>(own, kind_of)?.build(scrubber)?)
        }
        Kind::Redis => CheckSpec::Redis(deserialize::<redis::Keys>(own, kind_of)?.build(scrubber)?),
        Kind::Http => CheckSpec::Http(deserialize::<http::Keys>(own, kind_of)?.build(scrubber)?),
    })
}

/// The suite keys a kind takes besides the common ones.
pub(super) fn kind_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Dns => fields::<dns::Keys>(),
        Kind::Tcp => fields::<tcp::Keys>(),
        Kind::Postgres => fields::<postgres::Keys>(),
        Kind::Redis => fields::<redis::Keys>(),
        Kind::Http => fields::<http::Keys>(),
    }
}

/// A key of another kind, or of none, is named as such.
fn refuse_foreign_keys(kind: Kind, own: &toml::Table) -> Result<(), Problem> {
    let accepted = kind_keys(kind);
    let Some(key) = own.keys().find(|key| !accepted.contains(&key.as_str())) else {
        return Ok(());
    };
    let elsewhere = Kind::iter().any(|other| kind_keys(other).contains(&key.as_str()));
    if elsewhere {
        return Err(Problem::at(
            key.as_str(),
            format!("does not apply to kind `{}`", kind.as_str()),
        ));
    }
    let mut known: Vec<&str> = fields::<Common>().to_vec();
    known.extend(accepted);
    Err(Problem::at(
        key.as_str(),
        format!(
            "unknown key; kind `{}` takes {}",
            kind.as_str(),
            known.join(", ")
        ),
    ))
}

/// Deserialize `table` as `T`, naming the key whose value is wrong.
fn deserialize<T: DeserializeOwned>(table: toml::Table, kind: Option<Kind>) -> Result<T, Problem> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let needs = match kind {
            Some(kind) => format!("kind `{}`", kind.as_str()),
            None => "every check".to_string(),
        };
        path_problem(&err, &needs)
    })
}

/// A serde error as a problem with the key it is about; a missing key is
/// said to be what `needs` needs.
fn path_problem(err: &serde_path_to_error::Error<toml::de::Error>, needs: &str) -> Problem {
    let message = err.inner().to_string();
    let message = message.trim();
    if let Some(missing) = missing_field(message) {
        return Problem::check(format!("{needs} needs key `{missing}`"));
    }
    match err.path().iter().next() {
        Some(serde_path_to_error::Segment::Map { key }) => Problem::at(key.as_str(), message),
        _ => Problem::check(message),
    }
}

/// The key serde's "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// A deadline must be positive and bounded.
pub(super) fn checked_timeout(timeout: Duration) -> Result<Duration, String> {
    if timeout.is_zero() {
        Err("must be more than zero".into())
    } else if timeout > MAX_TIMEOUT {
        Err(format!(
            "must be at most {}",
            humantime::format_duration(MAX_TIMEOUT)
        ))
    } else {
        Ok(timeout)
    }
}

/// A latency budget must be positive, shorter than the deadline, and on a
/// path that is meant to work.
fn budget_within(
    budget: Duration,
    timeout: Duration,
    spec: &CheckSpec,
) -> Result<Duration, Problem> {
    if let CheckSpec::Tcp(tcp) = spec {
        if tcp.expect == tcp::Reach::Unreachable {
            return Err(Problem::at(
                "max_duration",
                "a path that must stay closed has no latency budget",
            ));
        }
    }
    if spec.idle().is_some() {
        return Err(Problem::at(
            "max_duration",
            "an idle check's time is mostly its idle: budget its latency in a check without `idle`",
        ));
    }
    if budget.is_zero() || budget >= timeout {
        return Err(Problem::at(
            "max_duration",
            format!(
                "must be more than zero and less than the timeout ({})",
                humantime::format_duration(timeout)
            ),
        ));
    }
    Ok(budget)
}

/// Names become metric labels and file names in reports: keep them plain.
fn check_name(name: &str) -> Result<(), Problem> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if name.is_empty() || name.len() > 128 || !plain {
        return Err(Problem::at(
            "name",
            "use 1-128 characters from A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}
