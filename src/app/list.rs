//! `vpc-probe list`: each check and drill with its kind, its scrubbed
//! target and its deadline.

use super::exit::Exit;
use super::load;
use crate::cli::SuiteArg;

pub(super) fn list(args: &SuiteArg) -> Exit {
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
