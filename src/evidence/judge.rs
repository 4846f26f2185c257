//! From one question and the describes to one check's `Evidence`: which
//! findings the walk's result means for a check that failed, passed, or
//! connected where it must not.

use super::ask::Ask;
use crate::aws::model::World;
use crate::aws::path::{self, End};
use crate::aws::settings::Source;
use crate::outcome::{Code, Evidence, Finding};

/// Where the path starts, as far as the describes know it; a subnet
/// source takes `groups` (the service's security groups) as its own.
pub fn source_end<'w>(world: &'w World, source: &Source, groups: &[String]) -> Option<End<'w>> {
    match source {
        Source::Eni(id) => End::at_eni(world, world.eni(id)?),
        Source::Subnet(id) => {
            let mut end = End::in_subnet(world.subnets.get(id)?);
            end.groups = groups.iter().filter_map(|g| world.groups.get(g)).collect();
            Some(end)
        }
        Source::Address(address) => match world.eni_at(*address) {
            Some(eni) => End::at_eni(world, eni),
            None => {
                let subnet = world.subnet_holding(*address)?;
                Some(End {
                    address: *address,
                    ..End::in_subnet(subnet)
                })
            }
        },
    }
}

/// One `access_denied` finding per refused describe.
fn denied(world: &World) -> Vec<Finding> {
    world
        .denied
        .iter()
        .map(|d| Finding {
            code: Code::AccessDenied,
            object: d.action.clone(),
            account: Some(d.account.clone()),
            explanation: format!(
                "{} refused in account {}: {}",
                d.action, d.account, d.message
            ),
            fix: Some(format!(
                "grant {} to the role vpc-probe reads with (deploy/iam/)",
                d.action
            )),
        })
        .collect()
}

/// The one line saying the explanation is partial, naming the first refusal.
fn partial(world: &World) -> Option<String> {
    let first = world.denied.first()?;
    Some(format!(
        "{} denied in account {}: the explanation is partial",
        first.action, first.account
    ))
}

/// What the wire said about the path, if anything was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Failed,
    Passed,
    /// `paths`: nothing was sent.
    NotRun,
}

/// The evidence for one check, given what its run saw.
pub fn judge(
    world: &World,
    source: &Source,
    groups: &[String],
    ask: &Ask,
    seen: Seen,
    region: &str,
) -> Evidence {
    let mut evidence = Evidence {
        skipped: partial(world),
        ..Evidence::default()
    };
    let denied = denied(world);
    let Some(end) = source_end(world, source, groups) else {
        evidence.findings.push(Finding {
            code: Code::SourceUnknown,
            object: source.to_string(),
            account: world.accounts.first().cloned(),
            explanation: format!(
                "no interface or subnet for {source} in the accounts read ({})",
                world.accounts.join(", ")
            ),
            fix: None,
        });
        evidence.findings.extend(denied);
        return evidence;
    };
    match ask {
        Ask::Path {
            address,
            port,
            closed,
        } => {
            let walk = path::walk(world, &end, *address, *port);
            evidence.chain = walk.chain.clone();
            evidence.findings = path_findings(walk, *address, *port, *closed, seen);
        }
        Ask::Name { host } => {
            let (chain, findings) = crate::aws::dns::walk(world, &end.subnet.vpc, host, region);
            evidence.chain = chain;
            evidence.findings = findings;
        }
        Ask::Nothing(why) => evidence.skipped = Some(why.clone()),
    }
    evidence.findings.extend(denied);
    evidence
}

/// What the walk means for the check: the blocking objects, the rule that
/// lets a closed path open, or "the VPC is open, look elsewhere".
fn path_findings(
    walk: path::Walk,
    address: std::net::Ipv4Addr,
    port: u16,
    closed: bool,
    seen: Seen,
) -> Vec<Finding> {
    let blocked = walk.blocked();
    // A hop the walk did not follow may be what blocks: not "all open".
    let open = !blocked && !walk.unfollowed();
    match (closed, seen, blocked) {
        (true, Seen::Failed | Seen::NotRun, false) => {
            walk.admitted_by.into_iter().chain(walk.findings).collect()
        }
        (false, Seen::Failed, false) if open => {
            let mut findings = walk.findings;
            findings.push(Finding {
                code: Code::PathOpen,
                object: format!("{address}:{port}"),
                account: None,
                explanation: format!("security groups, network ACLs, routes and the peering all let tcp/{port} to {address} through and back: the cause is outside the VPC configuration (the host, the proxy, an OS firewall)"),
                fix: None,
            });
            findings
        }
        _ => walk.findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: Code, object: &str) -> Finding {
        Finding {
            code,
            object: object.into(),
            account: None,
            explanation: String::new(),
            fix: None,
        }
    }

    fn codes(walk: path::Walk) -> Vec<Code> {
        let address = "10.0.1.12".parse().unwrap();
        let found = path_findings(walk, address, 5432, false, Seen::Failed);
        found.iter().map(|f| f.code).collect()
    }

    #[test]
    fn an_open_walk_under_a_failed_check_says_the_path_is_open() {
        assert_eq!(codes(path::Walk::default()), [Code::PathOpen]);
    }

    #[test]
    fn a_hop_not_followed_never_reads_as_an_open_path() {
        let walk = path::Walk {
            findings: vec![finding(Code::HopNotFollowed, "tgw-1")],
            ..path::Walk::default()
        };
        assert_eq!(codes(walk), [Code::HopNotFollowed]);
    }
}
