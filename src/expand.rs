//! `${VAR}` / `${VAR:-default}` expansion, applied to every string of a suite
//! while it is deserialized, so errors keep the position of the value. The
//! value types here ([`Env`], [`Port`]) are the vocabulary every kind's
//! suite keys are written in.

use serde::{de, Deserialize, Deserializer};
use std::fmt::Display;
use std::str::FromStr;

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
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_string()),
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
        let expanded = expand(&raw).map_err(de::Error::custom)?;
        expanded.parse().map(Env).map_err(de::Error::custom)
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
        let expanded = expand(raw).map_err(E::custom)?;
        let value: i64 = expanded
            .trim()
            .parse()
            .map_err(|_| E::custom("port must be a number 1-65535"))?;
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
}
