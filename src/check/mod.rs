//! The check kinds: one file each (its suite keys, its spec, how it runs),
//! one enum variant each, one `match` that dispatches them. [`Probe`]
//! (`probe.rs`) is what a running check uses to time its phases under the
//! check's deadline, open its connections and note what it saw.

pub mod crowd;
pub mod dns;
pub mod every_address;
pub mod http;
pub mod idle;
pub mod keys;
pub mod postgres;
mod probe;
pub mod redis;
pub mod tcp;

use crate::outcome::Failure;
pub use crate::outcome::Kind;
pub use every_address::Addresses;
use futures_util::future::BoxFuture;
pub use probe::{InFlight, Learned, Opened, OpenedFacts, Probe};

/// What a check does, by kind.
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Dns(dns::DnsSpec),
    Tcp(tcp::TcpSpec),
    Postgres(postgres::PostgresSpec),
    Redis(redis::RedisSpec),
    Http(http::HttpSpec),
}

impl CheckSpec {
    /// The check's kind.
    pub fn kind(&self) -> Kind {
        match self {
            CheckSpec::Dns(_) => Kind::Dns,
            CheckSpec::Tcp(_) => Kind::Tcp,
            CheckSpec::Postgres(_) => Kind::Postgres,
            CheckSpec::Redis(_) => Kind::Redis,
            CheckSpec::Http(_) => Kind::Http,
        }
    }

    /// What is probed, for the report; never carries a secret.
    pub fn target(&self) -> String {
        match self {
            CheckSpec::Dns(spec) => spec.host.clone(),
            CheckSpec::Tcp(spec) => spec.target(),
            CheckSpec::Postgres(spec) => spec.target(),
            CheckSpec::Redis(spec) => spec.target(),
            CheckSpec::Http(spec) => spec.target(),
        }
    }

    /// The name or address the check connects to; `None` for dns, which
    /// judges the answer itself.
    pub fn host(&self) -> Option<&str> {
        match self {
            CheckSpec::Dns(_) => None,
            CheckSpec::Tcp(spec) => Some(&spec.host),
            CheckSpec::Postgres(spec) => Some(&spec.host),
            CheckSpec::Redis(spec) => Some(&spec.host),
            CheckSpec::Http(spec) => Some(&spec.host),
        }
    }

    /// The TCP port the check connects to; `None` for dns.
    pub fn port(&self) -> Option<u16> {
        match self {
            CheckSpec::Dns(_) => None,
            CheckSpec::Tcp(spec) => Some(spec.port),
            CheckSpec::Postgres(spec) => Some(spec.port),
            CheckSpec::Redis(spec) => Some(spec.port),
            CheckSpec::Http(spec) => Some(spec.port),
        }
    }

    /// The sessions held idle, for kinds that hold them (`idle`).
    pub fn idle(&self) -> Option<&idle::Idle> {
        match self {
            CheckSpec::Dns(_) | CheckSpec::Http(_) => None,
            CheckSpec::Tcp(spec) => spec.idle.as_ref(),
            CheckSpec::Postgres(spec) => spec.idle.as_ref(),
            CheckSpec::Redis(spec) => spec.idle.as_ref(),
        }
    }

    /// Whether a connection is the failure (`expect = "unreachable"`).
    pub fn must_stay_closed(&self) -> bool {
        matches!(self, CheckSpec::Tcp(spec) if spec.expect == tcp::Reach::Unreachable)
    }

    /// Run the check against the first address, or each one in turn;
    /// boxed like [`CheckSpec::run`], so the caller holds a pointer.
    pub fn run_at<'a>(
        &'a self,
        probe: &'a mut Probe<'_>,
        addresses: Addresses,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        match (addresses, self.host()) {
            (Addresses::All, Some(host)) => Box::pin(every_address::run(self, host, probe)),
            _ => self.run(probe),
        }
    }

    /// Run the check once; phases and observations land in `probe`.
    ///
    /// Each kind's future is boxed on its own: un-boxed, the `match` would
    /// make every check's future as large as the largest kind's (postgres,
    /// kilobytes), tcp and dns included. The guard is the size test in
    /// runner/future_sizes.rs.
    pub fn run<'a>(&'a self, probe: &'a mut Probe<'_>) -> BoxFuture<'a, Result<(), Failure>> {
        match self {
            CheckSpec::Dns(spec) => Box::pin(spec.run(probe)),
            CheckSpec::Tcp(spec) => Box::pin(spec.run(probe)),
            CheckSpec::Postgres(spec) => Box::pin(spec.run(probe)),
            CheckSpec::Redis(spec) => Box::pin(spec.run(probe)),
            CheckSpec::Http(spec) => Box::pin(spec.run(probe)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn kind_labels_are_the_suite_words() {
        for kind in Kind::iter() {
            let parsed: Kind = serde_json::from_value(kind.as_str().into()).unwrap();
            assert_eq!(parsed, kind);
        }
    }
}
