//! The command line: `check`, `validate`, `list`, `explain`.

use crate::outcome::Reason;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// In-VPC connectivity validation: DNS, TCP, PostgreSQL, Redis/Valkey and
/// HTTP checks with every failure classified and explained.
#[derive(Debug, Parser)]
#[command(name = "vpc-probe", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (json for CloudWatch Logs).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `vpc_probe=debug` (RUST_LOG works too).
    #[arg(long, default_value = "warn", global = true)]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every check once; exit 0 if all pass, 1 if any fails, 2 if the suite is wrong.
    Check(CheckArgs),
    /// Check a suite file without running it (exit 0 or 2).
    Validate(SuiteArg),
    /// List a suite's checks and their targets.
    List(SuiteArg),
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
