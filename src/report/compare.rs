//! Puts the JSON reports of runs from several subnets side by side, so
//! "fails from one subnet only" (a route table, NACL or security group
//! that differs by subnet) is the first thing an engineer reads.

use super::document::RunReport;
use crate::outcome::Reason;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What to look at when a check's result depends on the subnet.
pub const SUBNET_HINT: &str = "the path differs by subnet: compare the failing subnet's route table (the peering route to the target's CIDR), its network ACL, and security group rules that name subnet CIDRs, with a subnet where the check passes";

/// One check's result from one place: `None` for a pass, else the reason.
type Cell = Option<String>;

/// The runs being compared: a label per place and each check's cells.
#[derive(Debug, Default)]
pub struct Comparison {
    pub places: Vec<String>,
    /// Check names in the order they first appear.
    pub checks: Vec<String>,
    cells: BTreeMap<(String, usize), Cell>,
}

/// How a check behaves across places.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    PassesEverywhere,
    FailsEverywhere {
        reasons: Vec<&'a str>,
    },
    FailsFromSome {
        failing: Vec<(&'a str, &'a str)>,
        passing: Vec<&'a str>,
    },
    /// Not run in every place (different suites or `--only`).
    Partial,
}

impl Comparison {
    /// Build from `(label, report)` pairs.
    pub fn new(reports: &[(String, RunReport)]) -> Comparison {
        let mut comparison = Comparison::default();
        for (index, (label, report)) in reports.iter().enumerate() {
            comparison.places.push(label.clone());
            for check in &report.checks {
                if !comparison.checks.contains(&check.name) {
                    comparison.checks.push(check.name.clone());
                }
                let cell = match check.reason {
                    _ if check.success => None,
                    Some(reason) => Some(reason.as_str().to_string()),
                    None => Some("failed".to_string()),
                };
                comparison.cells.insert((check.name.clone(), index), cell);
            }
        }
        comparison
    }

    fn cell(&self, check: &str, place: usize) -> Option<&Cell> {
        self.cells.get(&(check.to_string(), place))
    }

    /// How `check` behaves across the places.
    pub fn verdict(&self, check: &str) -> Verdict<'_> {
        let cells: Vec<(&str, &Cell)> = (0..self.places.len())
            .filter_map(|place| Some((self.places[place].as_str(), self.cell(check, place)?)))
            .collect();
        if cells.len() < self.places.len() {
            return Verdict::Partial;
        }
        let failing: Vec<(&str, &str)> = cells
            .iter()
            .filter_map(|(place, cell)| Some((*place, cell.as_deref()?)))
            .collect();
        let passing: Vec<&str> = cells
            .iter()
            .filter(|(_, cell)| cell.is_none())
            .map(|(place, _)| *place)
            .collect();
        match (failing.is_empty(), passing.is_empty()) {
            (true, _) => Verdict::PassesEverywhere,
            (false, true) => {
                let mut reasons: Vec<&str> = failing.iter().map(|(_, reason)| *reason).collect();
                reasons.dedup();
                Verdict::FailsEverywhere { reasons }
            }
            (false, false) => Verdict::FailsFromSome { failing, passing },
        }
    }

    pub fn success(&self) -> bool {
        self.cells.values().all(Option::is_none)
    }

    /// A table (checks × places), then one finding per check that fails.
    pub fn render(&self) -> String {
        let mut table = Table::new();
        table.load_style(UTF8_BORDERS_ONLY);
        let mut header = vec!["check".to_string()];
        header.extend(self.places.iter().cloned());
        table.set_header(header);
        for check in &self.checks {
            let mut row = vec![check.clone()];
            for place in 0..self.places.len() {
                row.push(match self.cell(check, place) {
                    None => "-".to_string(),
                    Some(None) => "pass".to_string(),
                    Some(Some(reason)) => format!("FAIL {reason}"),
                });
            }
            table.add_row(row);
        }
        let mut out = format!("{table}\n");
        for check in &self.checks {
            let _ = match self.verdict(check) {
                Verdict::PassesEverywhere => Ok(()),
                Verdict::Partial => writeln!(out, "\n{check}: not run from every place"),
                Verdict::FailsEverywhere { reasons } => writeln!(
                    out,
                    "\n{check}: fails from every place ({}): the cause is at the target or shared by all subnets\n  hint: {}",
                    reasons.join(", "),
                    hints(&reasons)
                ),
                Verdict::FailsFromSome { failing, passing } => {
                    let places: Vec<String> = failing.iter().map(|(p, r)| format!("{p} ({r})")).collect();
                    writeln!(
                        out,
                        "\n{check}: fails from {} only; passes from {}\n  hint: {SUBNET_HINT}",
                        places.join(", "),
                        passing.join(", ")
                    )
                }
            };
        }
        out
    }
}

/// The hints of the reasons, from the one hint table.
fn hints(reasons: &[&str]) -> String {
    let hints: Vec<&str> = reasons
        .iter()
        .filter_map(|label| Reason::all().find(|reason| reason.as_str() == *label))
        .map(|reason| reason.hint())
        .collect();
    hints.join("; ")
}

/// The label of a report: the task's subnet (and zone) when ECS said so.
pub fn label_from_report(report: &RunReport) -> Option<String> {
    let task = report.task.as_ref()?;
    let subnet = task.subnet.as_deref()?;
    Some(match task.availability_zone.as_deref() {
        Some(zone) => format!("{subnet} ({zone})"),
        None => subnet.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::TaskIdentity;
    use crate::outcome::sample::outcome;
    use crate::runner::Report;
    use std::time::{Duration, SystemTime};

    fn report(results: &[(&str, Option<Reason>)]) -> RunReport {
        let checks = results
            .iter()
            .map(|(name, reason)| outcome(name, *reason))
            .collect();
        let run = Report {
            suite: "s".into(),
            started: SystemTime::now(),
            duration: Duration::from_millis(1),
            checks,
        };
        RunReport::new(&run, None)
    }

    #[test]
    fn one_subnet_failing_is_named_with_the_subnet_hint() {
        let a = report(&[
            ("haproxy-tcp", None),
            ("postgres-rw", Some(Reason::WrongRole)),
        ]);
        let b = report(&[
            ("haproxy-tcp", Some(Reason::ConnectUnreachable)),
            ("postgres-rw", Some(Reason::WrongRole)),
        ]);
        let comparison = Comparison::new(&[("subnet-a".into(), a), ("subnet-b".into(), b)]);
        assert_eq!(
            comparison.verdict("haproxy-tcp"),
            Verdict::FailsFromSome {
                failing: vec![("subnet-b", "connect_unreachable")],
                passing: vec!["subnet-a"]
            }
        );
        assert_eq!(
            comparison.verdict("postgres-rw"),
            Verdict::FailsEverywhere {
                reasons: vec!["wrong_role"]
            }
        );
        let text = comparison.render();
        assert!(
            text.contains(
                "haproxy-tcp: fails from subnet-b (connect_unreachable) only; passes from subnet-a"
            ),
            "{text}"
        );
        assert!(text.contains("route table"));
        assert!(text.contains("postgres-rw: fails from every place (wrong_role)"));
        assert!(text.contains(Reason::WrongRole.hint()), "{text}");
        assert!(!comparison.success());
    }

    #[test]
    fn a_report_from_ecs_is_labelled_by_its_subnet() {
        let mut from_ecs = report(&[]);
        from_ecs.task = Some(TaskIdentity {
            subnet: Some("10.20.2.0/24".into()),
            availability_zone: Some("us-east-1b".into()),
            ..TaskIdentity::default()
        });
        assert_eq!(
            label_from_report(&from_ecs).as_deref(),
            Some("10.20.2.0/24 (us-east-1b)")
        );
        assert_eq!(label_from_report(&report(&[])), None);
    }
}
