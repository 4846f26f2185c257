//! A password that cannot be printed by accident, and the scrubber that
//! removes known secrets from any text before it is reported.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret value: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
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
        let super::expand::Env(value) = super::expand::Env::<String>::deserialize(deserializer)?;
        Ok(Secret(value))
    }
}

/// Replaces every known secret in a text with `***`, as a last line of
/// defence for error details that might echo what a server was sent.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn add(&mut self, secret: &Secret) {
        // One-character secrets would shred every text; they are refused at load.
        if secret.0.len() > 1 && !self.secrets.contains(&secret.0) {
            self.secrets.push(secret.0.clone());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
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
        scrubber.add(&Secret::new("pw"));
        scrubber.add(&Secret::new("pw-long"));
        assert_eq!(scrubber.scrub("a pw-long b pw"), "a *** b ***");
    }
}
