//! `vpc-probe paths`: every check's path judged from the describes alone,
//! before the task exists and without sending any traffic to the checked
//! paths (names come from the private zones' records; only a name no zone
//! holds is asked of the resolver): reachable, blocked, closed as it must
//! be, or open when it must not be, with the chain of objects.

use super::ask::{self, Ask};
use super::judge::{judge, Seen};
use crate::aws::read::Session;
use crate::aws::settings::Source;
use crate::outcome::{Code, Evidence, Kind};
use crate::suite::Suite;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The describes' verdict on one path.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Verdict {
    Reachable,
    Blocked,
    /// Blocked, as `expect = "unreachable"` wants.
    Closed,
    AllowedButShouldNotBe,
    /// The describes cannot tell (a name in no zone read, an IPv6 path, a
    /// hop the walk does not follow such as a transit gateway).
    Unknown,
}

impl Verdict {
    /// Whether the gate passes on this path.
    pub fn passes(self) -> bool {
        matches!(self, Verdict::Reachable | Verdict::Closed)
    }
}

/// One check's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PathRow {
    pub check: String,
    pub kind: Kind,
    /// `address:port` walked, or the name asked about.
    pub path: String,
    pub verdict: Verdict,
    pub evidence: Evidence,
}

/// The whole static verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PathsReport {
    pub suite: String,
    pub source: String,
    pub success: bool,
    /// Describe calls made.
    pub calls: usize,
    pub rows: Vec<PathRow>,
}

/// Judge every check of `suite` from `source`; a subnet source takes
/// `groups` as its security groups (a service's, before its task runs).
pub async fn run(suite: &Suite, source: Source, groups: &[String]) -> Result<PathsReport, String> {
    let settings = suite.aws.as_ref().ok_or("the suite has no [aws] table")?;
    let session = Session::open(settings, None).await?;
    let names: BTreeSet<String> = suite
        .checks
        .iter()
        .filter_map(|c| {
            c.spec
                .host()
                .map(str::to_string)
                .or_else(|| Some(c.spec.target()))
        })
        .filter(|h| h.parse::<std::net::IpAddr>().is_err())
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let from_zones = session.resolve(&names).await;
    let mut resolved: BTreeMap<String, Ipv4Addr> = from_zones
        .iter()
        .map(|(name, (address, _))| (name.clone(), *address))
        .collect();
    resolve_the_rest(suite, &names, &mut resolved).await;
    let mut asks: Vec<Ask> = suite
        .checks
        .iter()
        .map(|c| ask::before_run(c, host_of(c).and_then(|h| resolved.get(&h).copied())))
        .collect();
    let mut wanted = super::wanted(&source, asks.iter());
    wanted.source_groups.extend(groups.iter().cloned());
    // The zones that answered, and the source VPC's DNS facts, are read
    // too: a zone's record counts only where the zone answers.
    wanted.hosts.extend(from_zones.keys().cloned());
    let reading = session.read(&wanted).await;
    if reading.world.accounts.is_empty() {
        return Err(reading
            .skipped
            .unwrap_or_else(|| "nothing could be read".into()));
    }
    let region = crate::aws::read::region(settings, None).unwrap_or_default();
    for (check, ask) in suite.checks.iter().zip(asks.iter_mut()) {
        let Some(host) = host_of(check).filter(|h| from_zones.contains_key(h)) else {
            continue;
        };
        if !answers_in_source(&reading.world, &source, groups, &host, &region) {
            // Not resolvable from the source: ask why, as the check flow does.
            resolved.remove(&host);
            *ask = Ask::Name { host };
        }
    }
    let rows: Vec<PathRow> = suite
        .checks
        .iter()
        .zip(&asks)
        .map(|(check, ask)| {
            let mut evidence = judge(&reading.world, &source, groups, ask, Seen::NotRun, &region);
            evidence.skipped = evidence.skipped.or(reading.skipped.clone());
            let in_zone = matches!(ask, Ask::Name { host } if resolved.contains_key(&host.trim_end_matches('.').to_ascii_lowercase()));
            PathRow { check: check.name.clone(), kind: check.spec.kind(), path: shown(ask), verdict: verdict(ask, &evidence, in_zone), evidence }
        })
        .collect();
    Ok(PathsReport {
        suite: suite.name.clone(),
        source: source.to_string(),
        success: rows.iter().all(|r| r.verdict.passes()),
        calls: reading.calls,
        rows,
    })
}

/// A check's host name, as the zones and the resolver are asked for it.
fn host_of(check: &crate::suite::Check) -> Option<String> {
    let host = check.spec.host()?;
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether `host`'s private zone answers in the source's VPC: the zone is
/// associated with it and the VPC resolves at all (enableDnsSupport). A
/// record in a zone the VPC cannot see resolves nowhere the task runs.
fn answers_in_source(
    world: &crate::aws::model::World,
    source: &Source,
    groups: &[String],
    host: &str,
    region: &str,
) -> bool {
    let Some(end) = super::judge::source_end(world, source, groups) else {
        return true;
    };
    let (_, findings) = crate::aws::dns::walk(world, &end.subnet.vpc, host, region);
    !findings
        .iter()
        .any(|f| matches!(f.code, Code::ZoneNotAssociated | Code::VpcDnsOff))
}

/// Names no private zone holds (public endpoints, records elsewhere) go to
/// the suite's resolver, else the system's: the one packet `paths` may send.
async fn resolve_the_rest(
    suite: &Suite,
    names: &BTreeSet<String>,
    resolved: &mut std::collections::BTreeMap<String, std::net::Ipv4Addr>,
) {
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !resolved.contains_key(*n))
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(net) = crate::net::Net::new(suite.resolver, RESOLVE_TIMEOUT) else {
        return;
    };
    for name in missing {
        let answer = tokio::time::timeout(RESOLVE_TIMEOUT, net.resolve(name)).await;
        let first = answer.ok().and_then(Result::ok).and_then(|all| {
            all.into_iter().find_map(|a| match a {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
        });
        if let Some(address) = first {
            resolved.insert(name.clone(), address);
        }
    }
}

/// How long `paths` waits for a resolver answer.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn shown(ask: &Ask) -> String {
    match ask {
        Ask::Path { address, port, .. } => format!("{address}:{port}"),
        Ask::Name { host } => host.clone(),
        Ask::Nothing(why) => why.clone(),
    }
}

/// `in_zone`: a name asked about has a record in a private zone read.
fn verdict(ask: &Ask, evidence: &Evidence, in_zone: bool) -> Verdict {
    let unseen = evidence
        .findings
        .iter()
        .any(|f| !f.code.blocks() && f.code != crate::outcome::Code::AllowedByRule);
    match ask {
        Ask::Path { closed: true, .. } if evidence.blocked() => Verdict::Closed,
        Ask::Path { closed: true, .. } if unseen => Verdict::Unknown,
        Ask::Path { closed: true, .. } => Verdict::AllowedButShouldNotBe,
        Ask::Path { .. } if evidence.blocked() => Verdict::Blocked,
        Ask::Path { .. } if unseen => Verdict::Unknown,
        Ask::Path { .. } => Verdict::Reachable,
        Ask::Name { .. } if evidence.blocked() => Verdict::Blocked,
        Ask::Name { .. } if in_zone => Verdict::Reachable,
        Ask::Name { .. } => Verdict::Unknown,
        Ask::Nothing(_) => Verdict::Unknown,
    }
}

/// The objects that decide the row: those that block or admit, else how many were met.
fn objects(row: &PathRow) -> String {
    let deciding: Vec<&str> = row
        .evidence
        .findings
        .iter()
        .map(|f| f.object.as_str())
        .collect();
    match deciding.is_empty() {
        true => format!("{} objects, all open", row.evidence.chain.len()),
        false => deciding.join(", "),
    }
}

/// The text table and, below it, each row that does not pass.
pub fn render(report: &PathsReport) -> String {
    use std::fmt::Write;
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["check", "kind", "path", "verdict", "objects"]);
    for row in &report.rows {
        let verdict: &'static str = row.verdict.into();
        table.add_row([
            row.check.clone(),
            row.kind.to_string(),
            row.path.clone(),
            verdict.to_string(),
            objects(row),
        ]);
    }
    let mut out = format!(
        "paths of suite {} from {}\n{table}\n",
        report.suite, report.source
    );
    for row in report.rows.iter().filter(|r| !r.verdict.passes()) {
        let verdict: &'static str = row.verdict.into();
        let _ = write!(
            out,
            "\n{}: {verdict}\n{}",
            row.check,
            crate::report::text::evidence_lines(&row.evidence)
        );
    }
    let failing = report.rows.iter().filter(|r| !r.verdict.passes()).count();
    let _ = writeln!(
        out,
        "\n{} paths, {failing} not as they must be; {} describe calls",
        report.rows.len(),
        report.calls
    );
    out
}
