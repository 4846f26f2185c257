use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    vpc_probe::app::main(vpc_probe::cli::Cli::parse())
}
