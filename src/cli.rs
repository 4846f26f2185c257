//! The command line: `check`, `serve`, `drill`, `healthcheck`, `validate`,
//! `list`, `explain`, `compare`, `paths`.

use crate::outcome::Reason;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// In-VPC connectivity validation: DNS, TCP, PostgreSQL, Redis/Valkey and
/// HTTP checks with every failure classified and explained.
#[derive(Debug, Parser)]
#[command(name = "vpc-probe", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (json for CloudWatch Logs).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `vpc_probe=debug` (RUST_LOG works too);
    /// `info` for `serve`, `warn` otherwise.
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every check once; exit 0 if all pass, 1 if any fails, 2 if the suite is wrong.
    Check(CheckArgs),
    /// Run the suite on a schedule and serve /metrics, /healthz and /readyz.
    Serve(ServeArgs),
    /// Ask a running `serve` whether it is ready (exit 0) or not (exit 1):
    /// the ECS container health check, with no shell needed.
    Healthcheck(HealthcheckArgs),
    /// Rehearse a failover through HAProxy: write, read and hold a session
    /// while a switchover happens, then judge the figures against the
    /// drill's budgets (exit 0 all hold, 1 one does not, 2 the suite is wrong).
    Drill(DrillArgs),
    /// Judge every check's path from describe-only AWS reads, sending no
    /// traffic: reachable, blocked, or open when it must not be (exit 0 all
    /// as they must be, 1 any is not, 2 the suite or the AWS access is wrong).
    Paths(PathsArgs),
    /// The pre-cutover gate across every subnet of a service, through ECS:
    /// one one-shot task per subnet, each task's report read back from
    /// CloudWatch Logs, the checks side by side (exit 0 every subnet
    /// passed, 1 a check failed or a task gave no report, 2 the command
    /// line, the credentials or an AWS refusal).
    Gate(GateArgs),
    /// Check a suite file without running it (exit 0 or 2); the
    /// environment variables it needs may be unset (a pipeline's lint).
    Validate(ValidateArgs),
    /// List a suite's checks and their targets.
    List(SuiteArg),
    /// Put JSON reports from several subnets side by side and say which
    /// checks fail from some subnets only (exit 0 all pass, 1 any fails).
    Compare {
        /// `check --format json` outputs, each `FILE` or `LABEL=FILE`; without
        /// a label, the report's ECS subnet, else the file name.
        #[arg(required = true, num_args = 1.., value_name = "[LABEL=]FILE")]
        reports: Vec<String>,
    },
    /// Explain a failure reason (or all of them) and what to check.
    Explain {
        /// A reason label, e.g. dns_public_address; all when omitted.
        reason: Option<Reason>,
    },
}

#[derive(Debug, Args)]
pub struct SuiteArg {
    /// Suite file (TOML).
    #[arg(long, env = "VPC_PROBE_SUITE")]
    pub suite: PathBuf,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The ECS cluster.
    #[arg(long)]
    pub cluster: String,

    /// The service whose subnets, security groups, public-IP setting and
    /// task definition the tasks take.
    #[arg(long, conflicts_with_all = ["task_definition", "subnets", "security_groups"])]
    pub service: Option<String>,

    /// Without --service: the task definition (FAMILY[:REVISION] or ARN).
    #[arg(long, requires_all = ["subnets", "security_groups"])]
    pub task_definition: Option<String>,

    /// Without --service: the subnets, one task each.
    #[arg(long, value_delimiter = ',')]
    pub subnets: Vec<String>,

    /// Without --service: the tasks' security groups.
    #[arg(long, value_delimiter = ',')]
    pub security_groups: Vec<String>,

    /// Without --service: give the tasks public IPs.
    #[arg(long)]
    pub assign_public_ip: bool,

    /// The probe container (default: the one named vpc-probe, else the
    /// first essential one).
    #[arg(long)]
    pub container: Option<String>,

    /// The suite file inside the image (default: the container's
    /// VPC_PROBE_SUITE).
    #[arg(long)]
    pub task_suite: Option<String>,

    /// How long to wait for the tasks; then they are stopped.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// The region (default: AWS_REGION, else AWS_DEFAULT_REGION).
    #[arg(long)]
    pub region: Option<String>,

    /// One endpoint for every AWS call (default: AWS_ENDPOINT_URL_<SERVICE>,
    /// AWS_ENDPOINT_URL, else AWS's).
    #[arg(long)]
    pub endpoint_url: Option<Url>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write JUnit XML: one testsuite per subnet.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write a self-contained HTML page with the matrix.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// A local suite with `[aws]`: first judge its paths from each subnet
    /// with the tasks' security groups (the static pass), shown beside the
    /// live results.
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub suite: SuiteArg,

    /// Also refuse (exit 2) a variable the suite needs that is unset and
    /// has no default, as `check`, `serve` and `drill` do.
    #[arg(long)]
    pub require_env: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub suite: SuiteArg,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write a JUnit XML report to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Run only the named check (repeatable).
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,

    /// After the run, push the results to this Prometheus Pushgateway
    /// (grouped by suite, availability zone and subnet).
    #[arg(long, value_name = "URL", env = "VPC_PROBE_PUSH_URL")]
    pub push: Option<Url>,

    /// Exit 1 when the push fails, even if every check passed.
    #[arg(long, requires = "push")]
    pub push_required: bool,

    /// Also print CloudWatch Embedded Metric Format lines (one per check,
    /// one per run) for the awslogs driver to turn into metrics.
    #[arg(long)]
    pub emf: bool,

    /// Exit 1 when a check passes with a warning (a certificate expiring
    /// within `min_cert_validity`); without it, warnings never fail the gate.
    #[arg(long)]
    pub fail_on_warning: bool,

    /// CloudWatch namespace of the EMF metrics.
    #[arg(long, value_name = "NAMESPACE", default_value = crate::publish::emf::DEFAULT_NAMESPACE, env = "VPC_PROBE_EMF_NAMESPACE")]
    pub emf_namespace: String,
}

#[derive(Debug, Args)]
pub struct PathsArgs {
    #[command(flatten)]
    pub suite: SuiteArg,

    /// Where the paths start: an ENI id, a subnet id or an address
    /// (default: the suite's `[aws] source`).
    #[arg(long, value_name = "ENI|SUBNET|ADDRESS")]
    pub source: Option<crate::aws::settings::Source>,

    /// With a subnet source: the security groups its tasks will have (a
    /// service's), so their egress rules are judged too.
    #[arg(long, value_delimiter = ',', value_name = "SG[,SG]")]
    pub security_groups: Vec<String>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub suite: SuiteArg,

    /// The `[[drill]]` to run, by name.
    #[arg(long = "drill", value_name = "NAME")]
    pub name: String,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write a JUnit XML report (one testcase per budget) to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Also write a self-contained HTML page with the timeline to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub suite: SuiteArg,

    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9102", env = "VPC_PROBE_LISTEN")]
    pub listen: SocketAddr,

    /// Time between two runs of a check (each wait is jittered by 10%).
    #[arg(long, default_value = "30s", value_parser = parse_interval, env = "VPC_PROBE_INTERVAL")]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The endpoint to ask.
    #[arg(long, default_value = "http://127.0.0.1:9102/readyz")]
    pub url: Url,

    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// A schedule interval: a humantime duration of at least one second.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if interval < Duration::from_secs(1) {
        return Err("the interval must be at least 1s".into());
    }
    Ok(interval)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn reasons_parse_as_arguments() {
        let cli = Cli::try_parse_from(["vpc-probe", "explain", "dns_public_address"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Explain {
                reason: Some(Reason::DnsPublicAddress)
            }
        ));
    }
}
