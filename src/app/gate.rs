//! `vpc-probe gate`: the command line to `gate::Options`, the run, and
//! its reports (text or JSON on stdout, JUnit to a file).

use super::exit::{settle, Exit};
use super::{reader_went_away, runtime, stop_signal};
use crate::cli::{Format, GateArgs};
use crate::gate::{self, ecs::Network, Options, Placement};
use std::io::Write;

pub fn gate(args: &GateArgs) -> Exit {
    settle(gated(args))
}

fn gated(args: &GateArgs) -> Result<Exit, Exit> {
    let options = options(args)?;
    let stop = stop_signal("stopping the gate: every task it started is stopped");
    let ran = runtime()?.block_on(gate::run(&options, stop));
    let report = ran.map_err(|refused| Exit::usage(refused.0))?;
    if let Err(err) = write(&report, args) {
        if !reader_went_away(&err) {
            return Err(Exit::error(format!("writing the gate's report: {err:#}")));
        }
    }
    Ok(Exit::verdict(report.success))
}

fn options(args: &GateArgs) -> Result<Options, Exit> {
    let placement = match (&args.service, &args.task_definition) {
        (Some(service), _) => Placement::Service(service.clone()),
        (None, Some(task_definition)) => Placement::Given(Network {
            task_definition: task_definition.clone(),
            subnets: args.subnets.clone(),
            security_groups: args.security_groups.clone(),
            assign_public_ip: args.assign_public_ip,
        }),
        (None, None) => {
            return Err(Exit::usage(
                "pass --service, or --task-definition with --subnets and --security-groups",
            ))
        }
    };
    let region = args
        .region
        .clone()
        .or_else(|| {
            ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        })
        .ok_or_else(|| Exit::usage("no AWS region: pass --region or set AWS_REGION"))?;
    Ok(Options {
        cluster: args.cluster.clone(),
        placement,
        container: args.container.clone(),
        task_suite: args.task_suite.clone(),
        timeout: args.timeout,
        region,
        endpoint_url: args.endpoint_url.as_ref().map(|u| u.to_string()),
        static_suite: match &args.suite {
            Some(path) => Some(crate::config::load(path).map_err(Exit::usage)?),
            None => None,
        },
    })
}

fn write(report: &gate::report::GateReport, args: &GateArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => write!(stdout, "{}", gate::text::render(report))?,
        Format::Json => writeln!(stdout, "{}", serde_json::to_string(report)?)?,
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, gate::text::junit(report)?)?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, gate::html::render(report))?;
    }
    Ok(())
}
