//! What holding a session idle found (`idle = ...`): per step, whether the
//! session still worked, and if not how it died ([`IdleEnd`]) and when.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How an idle session died: a closed set, one arm each for its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum IdleEnd {
    /// The peer closed it with a FIN.
    Fin,
    /// A reset came back, during the idle or in answer to the next packet.
    Reset,
    /// No answer at all until the deadline: state dropped without a word.
    Silence,
}

impl IdleEnd {
    /// The JSON value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What happened, in words.
    pub fn said(self) -> &'static str {
        match self {
            IdleEnd::Fin => "closed by the peer (FIN)",
            IdleEnd::Reset => "reset (RST)",
            IdleEnd::Silence => "silent: no answer until the deadline",
        }
    }

    /// What happened and when, `after` seconds from going idle.
    pub fn told(self, after: f64) -> String {
        match self {
            IdleEnd::Fin | IdleEnd::Reset => format!("{} after {after:.1} s", self.said()),
            IdleEnd::Silence => format!("{}, {after:.1} s after it went idle", self.said()),
        }
    }

    /// The idle killers that end a session this way, by kind.
    pub fn suspects(self) -> &'static str {
        match self {
            IdleEnd::Fin => "a proxy or server that closes idle sessions: HAProxy `timeout client` / `timeout server` (Patroni's sample configuration: 30m), PgBouncer `client_idle_timeout`, Redis `timeout` (the ElastiCache parameter of that name)",
            IdleEnd::Reset => "a load balancer or NAT that forgets idle flows and resets the next packet: an NLB (350 s idle timeout by default), a NAT gateway (350 s), or a proxy closing with `option nolinger`",
            IdleEnd::Silence => "state that expired without a word: security group connection tracking (established TCP: 5 days by default, as low as 60 s when set on the ENI), a firewall or NAT on the path; TCP keepalives (`tcp_keepalive`) shorter than its timeout keep such state alive",
        }
    }
}

/// One step of an idle check: a session held idle this long, then used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdleStep {
    /// How long the session was to stay idle.
    pub idle_seconds: f64,
    /// The session answered after its idle.
    pub survived: bool,
    /// How it died, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fate: Option<IdleEnd>,
    /// Seconds from the session's last use to its death (the FIN or reset
    /// arriving, or the deadline for silence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seconds: Option<f64>,
    /// What the server said as it closed the session, if anything
    /// (PgBouncer: `FATAL: client_idle_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_said: Option<String>,
}

impl IdleStep {
    /// "30s: survived", or "5m: closed by the peer (FIN) after 3.0 s".
    pub fn summary(&self) -> String {
        let step = idle_span(self.idle_seconds);
        let said = self
            .server_said
            .as_ref()
            .map_or(String::new(), |said| format!(" (the server said: {said})"));
        let summary = match (self.fate, self.after_seconds) {
            (Some(fate), Some(after)) => format!("{step}: {}", fate.told(after)),
            (Some(fate), None) => format!("{step}: {}", fate.said()),
            (None, _) if self.survived => format!("{step}: survived"),
            (None, _) => format!("{step}: failed"),
        };
        summary + &said
    }
}

/// A step's length as the suite would write it ("30s", "6m").
pub fn idle_span(value: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs_f64(value.max(0.0))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_have_words_and_labels() {
        for fate in <IdleEnd as strum::IntoEnumIterator>::iter() {
            assert_eq!(serde_json::to_value(fate).unwrap(), fate.as_str());
            assert!(!fate.said().is_empty() && !fate.suspects().is_empty());
        }
    }

    #[test]
    fn summaries_name_the_step_and_the_fate() {
        let died = IdleStep {
            idle_seconds: 300.0,
            survived: false,
            fate: Some(IdleEnd::Fin),
            after_seconds: Some(3.04),
            server_said: None,
        };
        assert_eq!(died.summary(), "5m: closed by the peer (FIN) after 3.0 s");
        let lived = IdleStep {
            idle_seconds: 30.0,
            survived: true,
            fate: None,
            after_seconds: None,
            server_said: None,
        };
        assert_eq!(lived.summary(), "30s: survived");
    }
}
