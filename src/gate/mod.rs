//! `vpc-probe gate`: the pre-cutover gate across every subnet of a service,
//! run through ECS itself. One Fargate task per subnet (that subnet alone,
//! the service's security groups) runs a one-shot `check --format json`;
//! the gate waits for them (DescribeTasks, with backoff, within
//! `--timeout`), reads each task's report back from its awslogs stream,
//! judges a task that gave none from what ECS says, and puts the checks
//! side by side: a check failing in some subnets points at those subnets'
//! own path, one failing everywhere at the target. Every task it started
//! is stopped before it exits (SIGTERM, SIGINT, `--timeout`).
//!
//! Layout: `ecs` (the ECS calls as typed answers), `logs` (a task's
//! stream and the report in it), `verdict` (why no report, the cells, the
//! diagnosis), `report` (the JSON document and its schema), `text` (the
//! matrix and the JUnit rendering), `html` (the page).

pub mod ecs;
pub mod html;
pub mod logs;
pub mod report;
pub mod text;
pub mod verdict;

use crate::aws::client::{Account, CallError, Pending};
use ecs::{Container, Network, Started, Task};
use report::{GateReport, Stopped, SubnetResult};
use std::future::Future;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What the gate was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub cluster: String,
    /// Where the tasks go: a service's network, or the command line's.
    pub placement: Placement,
    /// The probe container (default: the one named vpc-probe, else the
    /// first essential one).
    pub container: Option<String>,
    /// The suite inside the image (default: the container's VPC_PROBE_SUITE).
    pub task_suite: Option<String>,
    pub timeout: Duration,
    pub region: String,
    /// One endpoint for every call (tests, a VPC endpoint); else the SDKs'
    /// `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// A local suite with `[aws]`: its paths are judged from each subnet
    /// before the tasks run (the static pass).
    pub static_suite: Option<crate::suite::Suite>,
}

/// Where the tasks go.
#[derive(Debug, Clone)]
pub enum Placement {
    Service(String),
    Given(Network),
}

/// Why the gate could not run at all (exit 2).
#[derive(Debug)]
pub struct Refused(pub String);

/// The gate's first and last waits between DescribeTasks calls.
const FIRST_POLL: Duration = Duration::from_millis(250);
const LAST_POLL: Duration = Duration::from_secs(1);
/// How long tasks the gate stopped get to stop before their logs are read:
/// ECS's default stopTimeout (SIGTERM, then SIGKILL 30 s later) and a margin.
const STOP_WAIT: Duration = Duration::from_secs(35);

/// Run the gate; `stop` (SIGTERM, SIGINT) ends the wait early, and every
/// task still running is stopped either way.
pub async fn run(options: &Options, stop: impl Future<Output = ()>) -> Result<GateReport, Refused> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let account = account(options).await?;
    let network = match &options.placement {
        Placement::Service(name) => ecs::service(&account, &options.cluster, name)
            .await
            .map_err(Refused)?,
        Placement::Given(network) => network.clone(),
    };
    let (arn, container) = ecs::container(
        &account,
        &network.task_definition,
        options.container.as_deref(),
    )
    .await
    .map_err(Refused)?;
    let network = Network {
        task_definition: arn,
        ..network
    };
    let suite = options.task_suite.clone().or_else(|| container.suite.clone()).ok_or_else(|| {
        Refused(format!("container {} has no VPC_PROBE_SUITE: pass --task-suite PATH (the suite inside the image)", container.name))
    })?;
    let static_pass = static_pass(options, &network).await;
    let command: Vec<String> = ["check", "--format", "json", "--suite", &suite]
        .map(str::to_string)
        .to_vec();
    let started_by = format!("vpc-probe-gate-{:012x}", fastrand::u64(..) >> 16);
    let mut subnets = launch(
        &account,
        options,
        &network,
        &container,
        &command,
        &started_by,
    )
    .await?;
    let gate_stopped = wait(&account, options, &container, &mut subnets, stop).await;
    let reads = subnets
        .into_iter()
        .map(|(subnet, state)| collect(&account, &container, subnet, state, gate_stopped));
    let results = futures_util::future::join_all(reads).await;
    let checks = verdict::checks(&results);
    let diagnosis = verdict::diagnose(&results, &checks);
    let success = results
        .iter()
        .all(|r| r.report.as_ref().is_some_and(|report| report.success));
    Ok(GateReport {
        cluster: options.cluster.clone(),
        task_definition: network.task_definition,
        started_by,
        success,
        started: humantime::format_rfc3339_millis(started).to_string(),
        duration_seconds: clock.elapsed().as_secs_f64(),
        checks,
        subnets: results,
        diagnosis,
        static_pass,
    })
}

/// `paths` from each subnet with the tasks' groups, before any task runs.
async fn static_pass(options: &Options, network: &Network) -> Vec<report::StaticSubnet> {
    let Some(suite) = &options.static_suite else {
        return Vec::new();
    };
    let mut subnets = Vec::new();
    for subnet in &network.subnets {
        let source = crate::aws::settings::Source::Subnet(subnet.clone());
        let judged = crate::evidence::paths::run(suite, source, &network.security_groups).await;
        let (paths, error) = match judged {
            Ok(paths) => (Some(paths), None),
            Err(err) => (None, Some(err)),
        };
        subnets.push(report::StaticSubnet {
            subnet: subnet.clone(),
            paths,
            error,
        });
    }
    subnets
}

/// The caller's account: credentials from the chain, the region given.
async fn account(options: &Options) -> Result<Account, Refused> {
    let credentials = crate::aws::credentials::lookup().await.map_err(Refused)?;
    Ok(Account::new(
        String::new(),
        credentials,
        options.region.clone(),
        options.endpoint_url.clone(),
        Pending::default(),
    ))
}

/// Where one subnet's task stands.
#[derive(Debug, Clone)]
enum State {
    /// RunTask started nothing here; ECS's reason.
    NotStarted(String),
    Running(Task),
}

/// One RunTask per subnet, all at once. A refusal of the action
/// (AccessDenied) stops the gate: nothing it could start would report;
/// the tasks that did start are stopped.
async fn launch(
    account: &Account,
    options: &Options,
    network: &Network,
    container: &Container,
    command: &[String],
    started_by: &str,
) -> Result<Vec<(String, State)>, Refused> {
    // Every subnet at once: a gate over many subnets waits for ECS once.
    let runs = network.subnets.iter().map(|subnet| {
        ecs::run_task(
            account,
            &options.cluster,
            network,
            subnet,
            &container.name,
            command,
            started_by,
        )
    });
    let started = futures_util::future::join_all(runs).await;
    let mut subnets = Vec::new();
    let mut refused = None;
    for (subnet, started) in network.subnets.iter().zip(started) {
        let state = match started {
            Ok(Started::Task(arn)) => State::Running(Task {
                arn,
                ..Task::default()
            }),
            Ok(Started::Refused(reason)) => State::NotStarted(reason),
            Err(err) => {
                refused.get_or_insert(err);
                continue;
            }
        };
        subnets.push((subnet.clone(), state));
    }
    if let Some(err) = refused {
        let why = "the gate could not start every task";
        stop_all(account, &options.cluster, &subnets, why).await;
        return Err(Refused(refusal(&err)));
    }
    Ok(subnets)
}

/// A RunTask that failed, as one line: AWS's own message names the
/// principal and the action on a refusal.
fn refusal(err: &CallError) -> String {
    match err {
        CallError::Denied { action, message } => format!("{action} denied: {message}"),
        other => other.to_string(),
    }
}

/// Poll the tasks until all stopped, `--timeout`, or `stop`; whether the
/// gate stopped the tasks still running (they are stopped here).
async fn wait(
    account: &Account,
    options: &Options,
    container: &Container,
    subnets: &mut [(String, State)],
    stop: impl Future<Output = ()>,
) -> bool {
    tokio::pin!(stop);
    let deadline = Instant::now() + options.timeout;
    let mut delay = FIRST_POLL;
    loop {
        let arns: Vec<String> = running(subnets).map(|t| t.arn.clone()).collect();
        if let Ok(tasks) = ecs::describe(account, &options.cluster, &arns, &container.name).await {
            refresh(subnets, &tasks);
        }
        if running(subnets).all(Task::stopped) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!("the gate's --timeout passed: stopping the tasks still running");
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(delay.min(deadline - now)) => {}
            () = &mut stop => {
                tracing::warn!("stopping: every task the gate started is stopped");
                break;
            }
        }
        delay = (delay * 3 / 2).min(LAST_POLL);
    }
    stop_all(
        account,
        &options.cluster,
        subnets,
        "the vpc-probe gate stopped (timeout or signal)",
    )
    .await;
    until_stopped(account, options, container, subnets).await;
    true
}

/// After StopTask, poll until every task stopped (its probe, stopped by
/// SIGTERM, writes its report as it ends) or [`STOP_WAIT`] passes: logs
/// read any sooner miss the reports of the tasks stopped last.
async fn until_stopped(
    account: &Account,
    options: &Options,
    container: &Container,
    subnets: &mut [(String, State)],
) {
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline && !running(subnets).all(Task::stopped) {
        tokio::time::sleep(FIRST_POLL).await;
        let arns: Vec<String> = running(subnets).map(|t| t.arn.clone()).collect();
        if let Ok(tasks) = ecs::describe(account, &options.cluster, &arns, &container.name).await {
            refresh(subnets, &tasks);
        }
    }
}

/// Each running task's state as DescribeTasks now tells it.
fn refresh(subnets: &mut [(String, State)], tasks: &[Task]) {
    for (_, state) in subnets.iter_mut() {
        if let State::Running(task) = state {
            if let Some(fresh) = tasks.iter().find(|t| t.arn == task.arn) {
                *task = fresh.clone();
            }
        }
    }
}

fn running(subnets: &[(String, State)]) -> impl Iterator<Item = &Task> {
    subnets.iter().filter_map(|(_, state)| match state {
        State::Running(task) => Some(task),
        State::NotStarted(_) => None,
    })
}

/// StopTask for every task not yet stopped; a failure is logged.
async fn stop_all(account: &Account, cluster: &str, subnets: &[(String, State)], reason: &str) {
    for task in running(subnets).filter(|t| !t.stopped()) {
        if let Err(err) = ecs::stop(account, cluster, &task.arn, reason).await {
            tracing::error!(task = %task.arn, "could not stop a task the gate started: {err}");
        }
    }
}

/// One subnet's result: the report from its stream, else why none.
async fn collect(
    account: &Account,
    container: &Container,
    subnet: String,
    state: State,
    gate_stopped: bool,
) -> SubnetResult {
    let task = match state {
        State::NotStarted(reason) => {
            let failed = Task {
                stopped_reason: Some(reason),
                ..Task::default()
            };
            return SubnetResult {
                subnet,
                availability_zone: None,
                task: None,
                report: None,
                no_report: Some(verdict::no_report(&failed, Stopped::NotStarted, Vec::new())),
            };
        }
        State::Running(task) => task,
    };
    let stream = logs::stream_name(&container.stream_prefix, &container.name, task.id());
    // A task that never started has no stream to read.
    let never_ran = task.stop_code.as_deref() == Some("TaskFailedToStart");
    let read = match never_ran {
        true => logs::Stream::default(),
        false => logs::read(account, &container.log_group, &stream)
            .await
            .unwrap_or_else(|err| logs::Stream {
                report: None,
                tail: vec![format!("the log stream {stream} could not be read: {err}")],
            }),
    };
    let no_report = read.report.is_none().then(|| {
        let why = verdict::stopped(&task, gate_stopped && !task.stopped());
        verdict::no_report(&task, why, read.tail.clone())
    });
    SubnetResult {
        subnet,
        availability_zone: task.availability_zone.clone(),
        task: Some(task.arn.clone()),
        report: read.report,
        no_report,
    }
}
