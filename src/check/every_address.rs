//! `addresses = "all"`: a name that answers several addresses (an NLB or a
//! HAProxy pair across AZs, an ElastiCache configuration endpoint) is
//! proven through each of them, not through whichever answered first, so a
//! broken AZ shows. The check runs once per address, at once, each under a
//! probe pinned to that address; it passes only if each does.

use super::{CheckSpec, Probe};
use crate::outcome::{AddressResult, Failure, Fault, IdleStep};
use std::net::IpAddr;
use std::time::Instant;

/// Most addresses one check probes; a longer answer is cut, and says so.
pub const MAX_ADDRESSES: usize = 16;

/// Which resolved addresses a check probes (`addresses = "first" | "all"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Addresses {
    /// The first address, as most clients do.
    #[default]
    First,
    /// Each address the name resolves to.
    All,
}

impl std::str::FromStr for Addresses {
    type Err = &'static str;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "first" => Ok(Addresses::First),
            "all" => Ok(Addresses::All),
            _ => Err("must be \"first\" or \"all\""),
        }
    }
}

/// Resolve `host` once, run `spec` pinned to each address, merge.
pub async fn run(spec: &CheckSpec, host: &str, probe: &mut Probe<'_>) -> Result<(), Failure> {
    let mut resolved = probe.resolve(host).await?;
    if resolved.len() > MAX_ADDRESSES {
        probe.observe(
            "addresses_probed",
            format!("the first {MAX_ADDRESSES} of {}", resolved.len()),
        );
        resolved.truncate(MAX_ADDRESSES);
    }
    let runs = resolved.iter().map(|address| {
        let mut pinned = probe.sibling().pinned(*address);
        async move {
            let start = Instant::now();
            let result = spec.run(&mut pinned).await;
            let one = AddressResult {
                address: *address,
                result,
                duration: start.elapsed(),
                idle: std::mem::take(&mut pinned.idle),
            };
            (one, pinned)
        }
    });
    let runs = futures_util::future::join_all(runs).await;
    merge(probe, runs)
}

/// Phases as the slowest address spent them (they ran at once), findings
/// of the first address, every address's result; the verdict names each
/// failing address.
fn merge(probe: &mut Probe<'_>, runs: Vec<(AddressResult, Probe<'_>)>) -> Result<(), Failure> {
    for (index, (one, pinned)) in runs.into_iter().enumerate() {
        for (phase, spent) in &pinned.phases {
            let total = probe.phases.entry(*phase).or_default();
            *total = (*total).max(*spent);
        }
        if index == 0 {
            probe.cycles = pinned.cycles.clone();
            probe.absorb(pinned.learned());
        }
        probe.addresses.push(one);
    }
    probe.idle = idle_of_all(&probe.addresses);
    verdict(&probe.addresses)
}

/// The check's idle steps over every address: per step, the first
/// address's record where it died, else the first address's.
fn idle_of_all(addresses: &[AddressResult]) -> Vec<IdleStep> {
    let steps = addresses
        .iter()
        .map(|one| one.idle.len())
        .max()
        .unwrap_or(0);
    (0..steps)
        .filter_map(|index| {
            let records = addresses.iter().filter_map(|one| one.idle.get(index));
            let mut records = records.peekable();
            let first = records.peek().cloned()?.clone();
            Some(records.find(|r| !r.survived).cloned().unwrap_or(first))
        })
        .collect()
}

/// Pass when every address passed; else the first failing address's
/// reason and phase, with every failing address named in the detail.
fn verdict(addresses: &[AddressResult]) -> Result<(), Failure> {
    let failed: Vec<(IpAddr, &Failure)> = addresses
        .iter()
        .filter_map(|one| one.result.as_ref().err().map(|f| (one.address, f)))
        .collect();
    let Some((_, first)) = failed.first() else {
        return Ok(());
    };
    let named: Vec<String> = failed
        .iter()
        .map(|(address, failure)| format!("{address}: {} ({})", failure.reason, failure.detail))
        .collect();
    let detail = format!(
        "{} of {} addresses failed: {}",
        failed.len(),
        addresses.len(),
        named.join("; ")
    );
    Err(Failure::new(first.phase, Fault::new(first.reason, detail)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Phase, Reason};
    use std::time::Duration;

    fn one(address: &str, reason: Option<Reason>) -> AddressResult {
        AddressResult {
            address: address.parse().unwrap(),
            result: match reason {
                None => Ok(()),
                Some(reason) => Err(Failure::new(
                    Phase::Connect,
                    Fault::new(reason, "no answer"),
                )),
            },
            duration: Duration::from_millis(1),
            idle: Vec::new(),
        }
    }

    #[test]
    fn one_failing_address_fails_the_check_and_is_named() {
        let all = [
            one("10.0.1.12", None),
            one("10.0.1.13", Some(Reason::ConnectTimeout)),
        ];
        let failure = verdict(&all).unwrap_err();
        assert_eq!(failure.reason, Reason::ConnectTimeout);
        assert_eq!(
            failure.detail,
            "1 of 2 addresses failed: 10.0.1.13: connect_timeout (no answer)"
        );
        assert!(verdict(&all[..1]).is_ok());
    }
}
