//! `vpc-probe compare`: JSON reports from several subnets side by side.

use super::exit::Exit;
use crate::report;
use crate::report::document::RunReport;

pub(super) fn compare(arguments: &[String]) -> Exit {
    let reports: Result<Vec<_>, String> = arguments.iter().map(|a| read_report(a)).collect();
    let reports = match reports {
        Ok(reports) => reports,
        Err(message) => return Exit::usage(message),
    };
    let comparison = report::compare::Comparison::new(&reports);
    say!("{}", comparison.render().trim_end());
    Exit::verdict(comparison.success())
}

/// `[LABEL=]FILE`: the parsed report and the label it is shown under.
fn read_report(argument: &str) -> Result<(String, RunReport), String> {
    let (label, path) = match argument.split_once('=') {
        Some((label, path)) if !label.is_empty() => (Some(label.to_string()), path),
        _ => (None, argument),
    };
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    let report = RunReport::find_in(&text).map_err(|err| format!("{path}: {err}"))?;
    let label = label
        .or_else(|| report::compare::label_from_report(&report))
        .unwrap_or_else(|| path.to_string());
    Ok((label, report))
}
