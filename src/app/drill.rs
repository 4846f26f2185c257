//! `vpc-probe drill`: one failover drill, stoppable by SIGTERM, and its
//! reports (text or JSON, HTML, JUnit).

use super::exit::{settle, Exit};
use super::{load, reader_went_away, runtime, stop_signal};
use crate::cli::{DrillArgs, Format};
use crate::report;
use std::io::Write;

pub(super) fn drill(args: &DrillArgs) -> Exit {
    settle(drilled(args))
}

fn drilled(args: &DrillArgs) -> Result<Exit, Exit> {
    let suite = load(&args.suite)?;
    let Some(spec) = suite.drills.iter().find(|d| d.name == args.name) else {
        let known: Vec<&str> = suite.drills.iter().map(|d| d.name.as_str()).collect();
        return Err(Exit::usage(format!(
            "--drill {}: no such drill in suite {} (it has: {})",
            args.name,
            suite.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let runtime = runtime()?;
    let net = crate::net::Net::new(suite.resolver, spec.attempt_timeout)
        .map_err(|err| Exit::error(format!("{err:#}")))?;
    tracing::info!(
        "drill {}: this run takes at most {} (baseline + wait_for_change + settle + {} x attempt_timeout)",
        spec.name,
        humantime::format_duration(spec.longest()),
        crate::drill::ATTEMPTS_OUTSIDE_THE_WINDOW
    );
    let stop =
        stop_signal("stopping the drill: the trigger is ended and what was measured is reported");
    let report = runtime.block_on(crate::drill::run(spec, net, &suite.scrubber, stop));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Err(err) = write_drill(&report, args) {
        if !reader_went_away(&err) {
            return Err(Exit::error(format!("writing the drill report: {err:#}")));
        }
    }
    Ok(Exit::verdict(report.success))
}

fn write_drill(report: &crate::drill::report::DrillReport, args: &DrillArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => write!(stdout, "{}", report.text())?,
        Format::Json => writeln!(stdout, "{}", serde_json::to_string(report)?)?,
    }
    if let Some(path) = &args.html {
        std::fs::write(path, crate::drill::html::render(report))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::render_drill(report)?)?;
    }
    Ok(())
}
