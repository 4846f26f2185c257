//! `vpc-probe paths`: each check's AWS path judged from describes alone.

use super::exit::{settle, Exit};
use super::{load, runtime};
use crate::cli::Format;

pub(super) fn paths(args: &crate::cli::PathsArgs) -> Exit {
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
