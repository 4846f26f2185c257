//! What each subcommand does, mapped to the exit code contract:
//! 0 all passed, 1 a check failed, 2 the suite or command line is wrong
//! ([`Exit`], whose line `main` alone prints). Diagnostics go through
//! tracing; results to stdout through `say!`. One file per subcommand;
//! this one holds what they share: the runtime, the stop signal, loading.

/// Print a line to stdout. A reader that went away (a pipe to `head`) is
/// not worth a panic: the line is dropped and the exit code still says
/// what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod check;
mod compare;
mod drill;
mod exit;
mod explain;
mod gate;
mod healthcheck;
mod list;
mod paths;
mod serve;
mod validate;

pub use exit::Exit;

use crate::cli::{Cli, Command, LogFormat, SuiteArg};
use crate::config;
use crate::suite::Suite;
use std::process::ExitCode;

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
        Command::Check(args) => check::check(args),
        Command::Serve(args) => serve::serve(args),
        Command::Drill(args) => drill::drill(&args),
        Command::Healthcheck(args) => healthcheck::healthcheck(&args),
        Command::Paths(args) => paths::paths(&args),
        Command::Gate(args) => gate::gate(&args),
        Command::Validate(args) => validate::validate(&args),
        Command::List(args) => list::list(&args),
        Command::Explain { reason } => explain::explain(reason),
        Command::Compare { reports } => compare::compare(&reports),
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

pub(super) fn load(args: &SuiteArg) -> Result<Suite, Exit> {
    config::load(&args.suite).map_err(Exit::usage)
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Exit::error(format!("cannot start the runtime: {err}")))
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
