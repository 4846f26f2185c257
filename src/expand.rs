//! `${VAR}` / `${VAR:-default}` expansion, applied to every string of a suite
//! while it is deserialized, so errors keep the position of the value. The
//! value types here ([`Env`], [`Port`]) are the vocabulary every kind's
//! suite keys are written in.

use serde::{de, Deserialize, Deserializer};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

/// What a suite needs of one environment variable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Set now.
    Set,
    /// Unset now, and the suite gives a default.
    Defaulted,
    /// Unset now, with no default: `check`, `serve` and `drill` refuse it.
    Unset,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Set => "set",
            Need::Defaulted => "unset, has a default",
            Need::Unset => "unset",
        }
    }
}

thread_local! {
    /// While [`noting`] reads a suite: every variable it names, and what
    /// it needs; an unset one then reads as a placeholder, not an error.
    static NOTED: RefCell<Option<BTreeMap<String, Need>>> = const { RefCell::new(None) };
    /// What an unset variable reads as while noting: [`PLACEHOLDER`], or
    /// a sample of another type while [`typed`] retries.
    static STANDS_IN: RefCell<Option<&'static str>> = const { RefCell::new(None) };
}

/// Run `read` (a suite being parsed, on this thread) leniently: a variable
/// that is not set becomes a placeholder of its value's type instead of an
/// error, so everything else is still checked (`validate` in a pipeline
/// without the secrets). Returns what `read` returned and each variable
/// the suite names, with what it needs.
pub fn noting<T>(read: impl FnOnce() -> T) -> (T, BTreeMap<String, Need>) {
    NOTED.with(|noted| *noted.borrow_mut() = Some(BTreeMap::new()));
    let result = read();
    let needs = NOTED
        .with(|noted| noted.borrow_mut().take())
        .unwrap_or_default();
    (result, needs)
}

/// Note a variable's need while [`noting`]; whether the read is lenient.
fn note(name: &str, need: Need) -> bool {
    NOTED.with(|noted| match noted.borrow_mut().as_mut() {
        Some(needs) => {
            needs.insert(name.to_string(), need);
            true
        }
        None => false,
    })
}

/// The placeholder an unset variable reads as while [`noting`]: a DNS
/// label (a host, a user, a password of more than 4 characters).
const PLACEHOLDER: &str = "vpc-probe-unset";

/// Values of the other types a variable may hold (a port, a duration, an
/// address, a CIDR, a URL), tried in turn for every unset variable of a
/// value when the placeholder does not parse as the key's type.
const SAMPLES: &[&str] = &[
    "1",
    "1s",
    "127.0.0.1",
    "127.0.0.1:53",
    "10.0.0.0/8",
    "https://vpc-probe-unset.invalid/",
    "true",
];

/// `raw` expanded and parsed as `T`; while [`noting`], a value that holds
/// a placeholder and does not parse tries the samples of other types.
pub fn typed<T: FromStr>(raw: &str) -> Result<T, String>
where
    T::Err: Display,
{
    let expanded = expand(raw)?;
    match expanded.trim().parse::<T>() {
        Ok(value) => Ok(value),
        Err(err) if expanded.contains(PLACEHOLDER) => {
            let parsed = SAMPLES.iter().find_map(|sample| {
                STANDS_IN.with(|stands| *stands.borrow_mut() = Some(sample));
                let text = expand(raw).ok()?;
                text.trim().parse::<T>().ok()
            });
            STANDS_IN.with(|stands| *stands.borrow_mut() = None);
            parsed.ok_or_else(|| err.to_string())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// What an unset variable reads as while noting.
fn stand_in(name: &str) -> String {
    match STANDS_IN.with(|stands| *stands.borrow()) {
        Some(sample) => sample.to_string(),
        None => format!(
            "{PLACEHOLDER}-{}",
            name.to_ascii_lowercase().replace('_', "-")
        ),
    }
}

/// Expand `${VAR}` and `${VAR:-default}` from `lookup`; `$${` is a literal `${`.
pub fn expand_with(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated `${` in value".to_string())?;
            out.push_str(&substitute(&body[..end], &lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(expr: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match expr.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (expr, None),
    };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`${{{name}}}` is not a valid environment variable name"
        ));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(value), _) => {
            note(name, Need::Set);
            Ok(value)
        }
        (None, Some(default)) => {
            note(name, Need::Defaulted);
            Ok(default.to_string())
        }
        (None, None) if note(name, Need::Unset) => Ok(stand_in(name)),
        (None, None) => Err(format!("environment variable {name} is not set")),
    }
}

/// Expand from the process environment.
pub fn expand(raw: &str) -> Result<String, String> {
    expand_with(raw, |name| std::env::var(name).ok())
}

/// A string value, expanded and then parsed with `FromStr`, so a bad CIDR,
/// URL or duration is refused at the position of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Env<T>(pub T);

impl<'de, T> Deserialize<'de> for Env<T>
where
    T: FromStr,
    T::Err: Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        typed(&raw).map(Env).map_err(de::Error::custom)
    }
}

/// A TCP port: a TOML integer, or a string such as `"${DB_PORT:-5432}"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PortVisitor)
    }
}

struct PortVisitor;

impl de::Visitor<'_> for PortVisitor {
    type Value = Port;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a port number 1-65535, or a string expanding to one")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Port, E> {
        u16::try_from(value)
            .ok()
            .filter(|port| *port != 0)
            .map(Port)
            .ok_or_else(|| E::custom(format!("port {value} is not in 1-65535")))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Port, E> {
        self.visit_i64(i64::try_from(value).unwrap_or(-1))
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<Port, E> {
        let value: i64 = typed(raw).map_err(|_| E::custom("port must be a number 1-65535"))?;
        self.visit_i64(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("probe".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_default_and_literal() {
        assert_eq!(expand_with("u=${USER}", env).unwrap(), "u=probe");
        assert_eq!(expand_with("${NOPE:-5432}", env).unwrap(), "5432");
        assert_eq!(expand_with("${EMPTY:-x}", env).unwrap(), "x");
        assert_eq!(
            expand_with("cost $5 $${USER}", env).unwrap(),
            "cost $5 ${USER}"
        );
    }

    #[test]
    fn unset_without_default_names_the_variable() {
        let err = expand_with("${PGPASSWORD}", env).unwrap_err();
        assert!(err.contains("PGPASSWORD"), "{err}");
    }

    #[test]
    fn ports_are_integers_or_expanded_strings() {
        #[derive(Deserialize)]
        struct Doc {
            port: Port,
        }
        let parse = |text: &str| toml::from_str::<Doc>(text).map(|d| d.port.0);
        assert_eq!(parse("port = 5432").unwrap(), 5432);
        assert_eq!(
            parse("port = \"${VPC_PROBE_UNSET_PORT:-6379}\"").unwrap(),
            6379
        );
        assert!(parse("port = 0").is_err());
        assert!(parse("port = 70000").is_err());
        assert!(parse("port = \"http\"").is_err());
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(expand_with("${USER", env).is_err());
        assert!(expand_with("${}", env).is_err());
        assert!(expand_with("${A B}", env).is_err());
    }

    #[test]
    fn noting_lists_every_variable_and_reads_unset_ones_as_placeholders() {
        let (port, needs) = noting(|| typed::<u16>("${VPC_PROBE_TEST_UNSET_PORT}"));
        assert_eq!(port, Ok(1), "a sample of the value's type");
        assert_eq!(needs.get("VPC_PROBE_TEST_UNSET_PORT"), Some(&Need::Unset));
        let (url, needs) = noting(|| {
            typed::<url::Url>("postgres://u@${VPC_PROBE_TEST_HOST}:${VPC_PROBE_TEST_UNSET_PORT}/db?x=${VPC_PROBE_TEST_D:-y}")
        });
        assert!(url.is_ok(), "{url:?}");
        assert_eq!(needs.get("VPC_PROBE_TEST_D"), Some(&Need::Defaulted));
        assert_eq!(needs.get("VPC_PROBE_TEST_HOST"), Some(&Need::Unset));
        // Outside noting, an unset variable is refused as ever.
        assert!(typed::<u16>("${VPC_PROBE_TEST_UNSET_PORT}").is_err());
    }
}
