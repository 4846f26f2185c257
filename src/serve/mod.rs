//! `vpc-probe serve`: the long-running ECS service Prometheus scrapes.
//! Runs the suite on a schedule, serves `/metrics`, `/healthz` and
//! `/readyz`, reloads the suite on SIGHUP (a bad suite is refused and the
//! old one keeps running) and stops on SIGTERM or SIGINT.

mod http;
mod schedule;
mod state;

use crate::ecs::TaskIdentity;
use crate::suite::Suite;
use schedule::Schedule;
use state::State;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// Reads the suite file again at SIGHUP: the parser, handed in by the
/// caller, so `serve` depends on what runs and not on how it is parsed.
pub type Loader = fn(&std::path::Path) -> anyhow::Result<Suite>;

/// How `serve` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub suite: PathBuf,
    pub listen: SocketAddr,
    pub interval: Duration,
    pub loader: Loader,
}

/// Serve until a stop signal; an error here means it could not start.
pub async fn run(options: Options, suite: Suite) -> anyhow::Result<()> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", options.listen))?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let state = Arc::new(State::new(&suite));
    // Serve and probe at once; results gain the task identity when ECS answers.
    let identified = state.clone();
    tokio::spawn(async move {
        if let Some(identity) = TaskIdentity::discover().await {
            identified.identify(identity);
        }
    });
    let server = tokio::spawn(http::serve(listener, state.clone()));
    let net = Schedule::resolver(&suite)?;
    let mut schedule = Schedule::start(&suite, &net, options.interval, &state);
    tracing::info!(
        listen = %options.listen,
        suite = %suite.name,
        checks = suite.checks.len(),
        interval = %humantime::format_duration(options.interval),
        "serving"
    );
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                schedule = reload(&options, &state, schedule).await;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("stopping");
    schedule.stop().await;
    server.abort();
    Ok(())
}

/// Load the suite again; on any error keep the running schedule. Loading
/// reads files (the suite, password and CA files, resolv.conf), so it runs
/// on a blocking thread, never on the threads the checks run on.
async fn reload(options: &Options, state: &Arc<State>, running: Schedule) -> Schedule {
    let (path, load) = (options.suite.clone(), options.loader);
    let loaded = tokio::task::spawn_blocking(move || {
        let suite = load(&path)?;
        anyhow::Ok((Schedule::resolver(&suite)?, suite))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|loaded| loaded);
    let (net, suite) = match loaded {
        Ok(ready) => ready,
        Err(err) => {
            tracing::error!("reload refused, the previous suite keeps running: {err:#}");
            state.reload_refused();
            return running;
        }
    };
    running.stop().await;
    state.reloaded(&suite);
    tracing::info!(suite = %suite.name, checks = suite.checks.len(), "suite reloaded");
    Schedule::start(&suite, &net, options.interval, state)
}
