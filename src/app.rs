//! What each subcommand does, mapped to the exit code contract:
//! 0 all passed, 1 a check failed, 2 the suite or command line is wrong.

use crate::cli::{CheckArgs, Cli, Command, Format, LogFormat, SuiteArg};
use crate::config::{self, Suite};
use crate::outcome::Reason;
use crate::report;
use crate::runner;
use std::io::Write;
use std::process::ExitCode;

pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn main(cli: Cli) -> ExitCode {
    init_logging(cli.log_format, &cli.log_level);
    let code = match cli.command {
        Command::Check(args) => check(args),
        Command::Validate(args) => validate(&args),
        Command::List(args) => list(&args),
        Command::Explain { reason } => explain(reason),
    };
    ExitCode::from(code)
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load(args: &SuiteArg) -> Result<Suite, u8> {
    config::load(&args.suite).map_err(|err| {
        eprintln!("error: {err}");
        EXIT_USAGE
    })
}

fn validate(args: &SuiteArg) -> u8 {
    match load(args) {
        Ok(suite) => {
            println!(
                "{}: suite {} is valid ({} checks)",
                args.suite.display(),
                suite.name,
                suite.checks.len()
            );
            EXIT_PASS
        }
        Err(code) => code,
    }
}

fn list(args: &SuiteArg) -> u8 {
    let Ok(suite) = load(args) else {
        return EXIT_USAGE;
    };
    for check in &suite.checks {
        let target = suite.scrubber.scrub(&check.spec.target());
        let timeout = humantime::format_duration(check.timeout);
        println!(
            "{}\t{}\t{target}\t{timeout}",
            check.name,
            check.spec.kind().as_str()
        );
    }
    EXIT_PASS
}

fn explain(reason: Option<Reason>) -> u8 {
    let reasons: Vec<Reason> = reason.map_or_else(|| Reason::ALL.to_vec(), |r| vec![r]);
    for reason in reasons {
        println!(
            "{reason}\n  means: {}\n  check: {}\n",
            reason.meaning(),
            reason.hint()
        );
    }
    EXIT_PASS
}

fn check(args: CheckArgs) -> u8 {
    let Ok(suite) = load(&args.suite) else {
        return EXIT_USAGE;
    };
    let checks = match runner::select(&suite, &args.only) {
        Ok(checks) => checks,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return EXIT_FAIL;
        }
    };
    let format = args.format;
    let ran = runtime.block_on(runner::run(&suite, &checks, |outcome| {
        let line = report::text::progress_line(outcome);
        match format {
            Format::Text => println!("{line}"),
            Format::Json => {
                tracing::info!(check = %outcome.name, success = outcome.success(), "{line}")
            }
        }
    }));
    let report = match ran {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err:#}");
            return EXIT_FAIL;
        }
    };
    let written = write_reports(&report, &args);
    if let Err(err) = written {
        eprintln!("error: writing the report: {err:#}");
        return EXIT_FAIL;
    }
    if report.success() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

fn write_reports(report: &runner::Report, args: &CheckArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => write!(stdout, "\n{}", report::text::render(report))?,
        Format::Json => writeln!(stdout, "{}", report::json::render(report))?,
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::render(report)?)?;
    }
    Ok(())
}
