//! `vpc-probe check`: one run of the suite, its reports (text or JSON,
//! JUnit, EMF) and its push to the Pushgateway.

use super::exit::{settle, Exit};
use super::{load, reader_went_away, runtime, stop_signal};
use crate::cli::{CheckArgs, Format};
use crate::ecs::TaskIdentity;
use crate::net::fetch;
use crate::publish::ledger::Ledger;
use crate::publish::{emf, metrics, pushgateway};
use crate::report;
use crate::report::document::RunReport;
use crate::runner::{self, Report};
use crate::suite::{self, Suite};
use std::io::Write;

pub(super) fn check(args: CheckArgs) -> Exit {
    settle(checked(args))
}

fn checked(args: CheckArgs) -> Result<Exit, Exit> {
    let suite = load(&args.suite)?;
    if suite.checks.is_empty() {
        return Err(Exit::usage(format!(
            "suite {} has no [[check]] (its drills run with `vpc-probe drill`)",
            suite.name
        )));
    }
    let checks = runner::select(&suite, &args.only).map_err(Exit::usage)?;
    if let Some(path) = &args.junit {
        // A report that cannot be written is a usage error, found before
        // any check runs rather than after a gate's whole run.
        std::fs::File::create(path)
            .map_err(|err| Exit::usage(format!("--junit {}: {err}", path.display())))?;
    }
    Ok(runtime()?.block_on(check_and_publish(&suite, &checks, &args)))
}

async fn check_and_publish(suite: &Suite, checks: &[&suite::Check], args: &CheckArgs) -> Exit {
    let format = args.format;
    if let Some(notice) = idle_notice(checks) {
        match format {
            Format::Text => say!("{notice}"),
            Format::Json => tracing::info!("{notice}"),
        }
    }
    // Where the task runs is read while the checks run, not before them.
    let (identity, ran) = tokio::join!(
        TaskIdentity::discover(),
        runner::run_until(
            suite,
            checks,
            |outcome| {
                let line = report::text::progress_line(outcome);
                match format {
                    Format::Text => say!("{line}"),
                    Format::Json => {
                        tracing::info!(check = %outcome.name, success = outcome.success(), "{line}")
                    }
                }
            },
            stop_signal("stopping: the checks still running are reported as interrupted")
        )
    );
    let mut report = match ran {
        Ok(report) => report,
        Err(err) => return Exit::error(format!("{err:#}")),
    };
    crate::evidence::explain(suite, &mut report.checks, identity.as_ref()).await;
    if let Err(err) = write_reports(&report, identity.as_ref(), args) {
        if !reader_went_away(&err) {
            return Exit::error(format!("writing the report: {err:#}"));
        }
    }
    let pushed = match &args.push {
        Some(gateway) => push(gateway, &report, identity.as_ref()).await,
        None => true,
    };
    let warned = report.checks.iter().any(|c| c.warning.is_some());
    Exit::verdict(
        report.success() && (pushed || !args.push_required) && !(args.fail_on_warning && warned),
    )
}

/// Said before a run that holds sessions idle: how long the gate will take.
fn idle_notice(checks: &[&suite::Check]) -> Option<String> {
    // The first in suite order among the longest (max_by_key keeps the last).
    let longest = checks
        .iter()
        .rev()
        .filter(|c| c.spec.idle().is_some())
        .max_by_key(|c| c.wall_time())?;
    let idle = longest.spec.idle().map(|i| i.longest()).unwrap_or_default();
    Some(format!(
        "holding sessions idle: this run takes up to {} ({}: idle {} + timeout {})",
        humantime::format_duration(longest.wall_time()),
        longest.name,
        humantime::format_duration(idle),
        humantime::format_duration(longest.timeout)
    ))
}

/// Push the run to the Pushgateway; a failure is reported, not fatal.
async fn push(gateway: &url::Url, report: &Report, identity: Option<&TaskIdentity>) -> bool {
    let ledger = Ledger::from_report(report);
    let exposition = metrics::render(&metrics::Exposition {
        suite: &report.suite,
        ledger: &ledger,
        identity,
        reload: None,
    });
    let group =
        pushgateway::group_url(gateway, &pushgateway::grouping_key(&report.suite, identity));
    let pushed = match exposition {
        Ok(text) => pushgateway::push(&group, text).await,
        Err(err) => Err(err),
    };
    match pushed {
        Ok(()) => {
            tracing::info!(group = %fetch::redacted(&group), "pushed to the Pushgateway");
            true
        }
        Err(err) => {
            tracing::warn!("push to the Pushgateway failed: {err:#}");
            false
        }
    }
}

fn write_reports(
    report: &Report,
    identity: Option<&TaskIdentity>,
    args: &CheckArgs,
) -> anyhow::Result<()> {
    let document = RunReport::new(report, identity);
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => write!(stdout, "\n{}", report::text::render(&document))?,
        Format::Json => writeln!(stdout, "{}", serde_json::to_string(&document)?)?,
    }
    if args.emf {
        for line in emf::documents(&document, &args.emf_namespace) {
            writeln!(stdout, "{line}")?;
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::render(&document)?)?;
    }
    Ok(())
}
