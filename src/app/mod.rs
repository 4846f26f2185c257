//! What each subcommand does, mapped to the exit code contract:
//! 0 all passed, 1 a check failed, 2 the suite or command line is wrong
//! ([`Exit`], whose line `main` alone prints). Diagnostics go through
//! tracing; results to stdout through `say!`.

mod exit;
mod gate;

use exit::settle;
pub use exit::Exit;

use crate::cli::{
    CheckArgs, Cli, Command, DrillArgs, Format, HealthcheckArgs, LogFormat, ServeArgs, SuiteArg,
    ValidateArgs,
};
use crate::config;
use crate::ecs::TaskIdentity;
use crate::net::fetch;
use crate::outcome::{Kind, Reason};
use crate::publish::ledger::Ledger;
use crate::publish::{emf, metrics, pushgateway};
use crate::report;
use crate::report::document::RunReport;
use crate::runner::{self, Report};
use crate::serve;
use crate::suite::{self, Suite};
use std::io::Write;
use std::process::ExitCode;
use strum::IntoEnumIterator;

/// Print a line to stdout. A reader that went away (a pipe to `head`) is
/// not worth a panic: the line is dropped and the exit code still says
/// what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub fn main(cli: Cli) -> ExitCode {
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging(
        cli.log_format,
        cli.log_level.as_deref().unwrap_or(default_level),
    );
    let exit = match cli.command {
        Command::Check(args) => check(args),
        Command::Serve(args) => serve(args),
        Command::Drill(args) => drill(&args),
        Command::Healthcheck(args) => healthcheck(&args),
        Command::Paths(args) => paths(&args),
        Command::Gate(args) => gate::gate(&args),
        Command::Validate(args) => validate(&args),
        Command::List(args) => list(&args),
        Command::Explain { reason } => explain(reason),
        Command::Compare { reports } => compare(&reports),
    };
    exit.finish()
}

/// Logs to stderr, filtered by RUST_LOG, else `--log-level`, else warn:
/// `filter::Targets` takes the same `target=level,...` directives as
/// EnvFilter without its regex engine (half a megabyte of the binary).
fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|env| env.parse::<Targets>().ok())
        .or_else(|| level.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    // Colour only on a terminal: CloudWatch Logs shows escape codes as text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(layer).init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).init(),
    }
}

fn load(args: &SuiteArg) -> Result<Suite, Exit> {
    config::load(&args.suite).map_err(Exit::usage)
}

/// Everything but the environment is checked; each variable the suite
/// needs is listed with whether it is set (names only, never values).
fn validate(args: &ValidateArgs) -> Exit {
    use crate::expand::{noting, Need};
    let path = &args.suite.suite;
    let (loaded, needs) = noting(|| config::load(path));
    let suite = match loaded {
        Ok(suite) => suite,
        Err(err) => return Exit::usage(err),
    };
    let drills = match suite.drills.len() {
        0 => String::new(),
        n => format!(", {n} drills"),
    };
    say!(
        "{}: suite {} is valid ({} checks{drills})",
        path.display(),
        suite.name,
        suite.checks.len()
    );
    for (name, need) in &needs {
        say!("  needs {name}: {}", need.as_str());
    }
    let unset: Vec<&str> = needs
        .iter()
        .filter(|(_, need)| **need == Need::Unset)
        .map(|(name, _)| name.as_str())
        .collect();
    match (unset.is_empty(), args.require_env) {
        // Read again as `check` reads it: the first unset one, by file:line:key.
        (false, true) => match load(&args.suite) {
            Err(exit) => exit,
            Ok(_) => Exit::usage(format!("unset at run time: {}", unset.join(", "))),
        },
        _ => Exit::Pass,
    }
}

fn list(args: &SuiteArg) -> Exit {
    let suite = match load(args) {
        Ok(suite) => suite,
        Err(exit) => return exit,
    };
    for check in &suite.checks {
        let target = suite.scrubber.scrub(&check.spec.target());
        let timeout = humantime::format_duration(check.timeout);
        say!(
            "{}\t{}\t{target}\t{timeout}",
            check.name,
            check.spec.kind().as_str()
        );
    }
    for drill in &suite.drills {
        let target = suite.scrubber.scrub(&drill.target());
        say!(
            "{}\tdrill\t{target}\t{}",
            drill.name,
            humantime::format_duration(drill.wait_for_change)
        );
    }
    Exit::Pass
}

fn compare(arguments: &[String]) -> Exit {
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

fn explain(reason: Option<Reason>) -> Exit {
    let reasons: Vec<Reason> = reason.map_or_else(|| Reason::all().collect(), |r| vec![r]);
    for reason in reasons {
        say!(
            "{reason}\n  means: {}\n  check: {}",
            reason.meaning(),
            reason.hint()
        );
        for kind in Kind::iter() {
            if let Some(hint) = reason.kind_hint(kind) {
                say!("  {kind}: {hint}");
            }
        }
        say!();
    }
    Exit::Pass
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Exit::error(format!("cannot start the runtime: {err}")))
}

fn paths(args: &crate::cli::PathsArgs) -> Exit {
    settle(pathed(args))
}

fn pathed(args: &crate::cli::PathsArgs) -> Result<Exit, Exit> {
    use crate::evidence::paths;
    let suite = load(&args.suite)?;
    let settings = suite.aws.as_ref().ok_or_else(|| {
        Exit::usage(format!(
            "suite {} has no [aws] table to read the paths with",
            suite.name
        ))
    })?;
    let source = args
        .source
        .clone()
        .or_else(|| settings.source.clone())
        .ok_or_else(|| {
            Exit::usage(
                "no source: pass --source (an ENI, a subnet or an address) or set [aws] source"
                    .to_string(),
            )
        })?;
    let report = runtime()?
        .block_on(paths::run(&suite, source, &args.security_groups))
        .map_err(Exit::error)?;
    let shown = match args.format {
        Format::Text => paths::render(&report),
        Format::Json => {
            serde_json::to_string(&report).map_err(|err| Exit::error(err.to_string()))? + "\n"
        }
    };
    print!("{shown}");
    Ok(Exit::verdict(report.success))
}

fn check(args: CheckArgs) -> Exit {
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

/// SIGTERM (ECS stopping the task) or SIGINT; never completes if the
/// handlers cannot be installed (the run then simply finishes).
pub(super) async fn stop_signal(saying: &str) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::warn!("{saying}");
}

/// Stdout closed by its reader (a pipe to `head`): not the probe's failure.
pub(super) fn reader_went_away(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
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

fn drill(args: &DrillArgs) -> Exit {
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

fn serve(args: ServeArgs) -> Exit {
    settle(served(args))
}

fn served(args: ServeArgs) -> Result<Exit, Exit> {
    let suite = load(&args.suite)?;
    let options = serve::Options {
        suite: args.suite.suite,
        listen: args.listen,
        interval: args.interval,
        loader: |path| Ok(config::load(path)?),
    };
    let runtime = runtime()?;
    let served = runtime.block_on(serve::run(options, suite));
    // Checks abandoned at shutdown must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
        .map(|()| Exit::Pass)
        .map_err(|err| Exit::error(format!("{err:#}")))
}

fn healthcheck(args: &HealthcheckArgs) -> Exit {
    let unhealthy = |why: String| Exit::Fail(Some(format!("unhealthy: {why}")));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return unhealthy(format!("cannot start the runtime: {err}")),
    };
    let answer = runtime.block_on(fetch::send(
        http::Method::GET,
        &args.url,
        None,
        args.timeout,
    ));
    match answer {
        Ok(response) if response.status.is_success() => Exit::Pass,
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            unhealthy(format!("HTTP {}: {}", response.status, body.trim()))
        }
        Err(err) => unhealthy(format!("{err:#}")),
    }
}
