//! A password that cannot be printed by accident, and the scrubber that
//! removes known secrets from any text before it is reported.
//!
//! Short secrets: a secret shorter than [`MIN_SECRET_CHARS`] is refused when
//! the suite loads (see [`Secret::checked`]). The scrubber replaces every
//! occurrence of a secret, so a one- or two-character secret would shred
//! every detail into `***` — or, if it were skipped, leak. Neither is
//! acceptable for a tool whose promise is that no secret reaches output,
//! and no real AUTH token or database password is that short.

use crate::expand::Env;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The shortest secret a suite may carry: anything shorter cannot be
/// scrubbed from output without destroying it.
pub const MIN_SECRET_CHARS: usize = 4;

/// A secret value: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A secret from a suite: refused when too short to scrub.
    pub fn checked(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "a secret must have at least {MIN_SECRET_CHARS} characters, or it could not be kept out of reports"
            ));
        }
        Ok(Secret(value))
    }

    /// The value, for handing to a protocol client; never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Env(value) = Env::<String>::deserialize(deserializer)?;
        Secret::checked(value).map_err(serde::de::Error::custom)
    }
}

/// Replaces every known secret in a text with `***`, as a last line of
/// defence for error details that might echo what a server was sent.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a secret containing another is removed whole.
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn add(&mut self, secret: &Secret) {
        if !secret.0.is_empty() && !self.secrets.contains(&secret.0) {
            self.secrets.push(secret.0.clone());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_string();
        // A replacement can complete another occurrence ("a***" in
        // "aa***"): repeat until none is left. Each pass shortens the text
        // (a secret has 4 or more characters, `***` 3), so this ends.
        while let Some(secret) = self.secrets.iter().find(|s| scrubbed.contains(s.as_str())) {
            scrubbed = scrubbed.replace(secret.as_str(), "***");
        }
        scrubbed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn scrubber_removes_longest_first() {
        let mut scrubber = Scrubber::default();
        scrubber.add(&Secret::new("pass"));
        scrubber.add(&Secret::new("pass-long"));
        assert_eq!(scrubber.scrub("a pass-long b pass"), "a *** b ***");
    }

    #[test]
    fn a_replacement_that_completes_the_secret_again_is_scrubbed_too() {
        let mut scrubber = Scrubber::default();
        scrubber.add(&Secret::new("a***"));
        let scrubbed = scrubber.scrub("aa***");
        assert!(!scrubbed.contains("a***"), "{scrubbed}");
    }

    #[test]
    fn short_secrets_are_refused_not_silently_left_unscrubbed() {
        assert!(Secret::checked("x").is_err());
        assert!(Secret::checked("abc").is_err());
        let secret = Secret::checked("abcd").unwrap();
        let mut scrubber = Scrubber::default();
        scrubber.add(&secret);
        assert_eq!(scrubber.scrub("user abcd failed"), "user *** failed");
    }
}
