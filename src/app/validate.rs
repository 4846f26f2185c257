//! `vpc-probe validate`: the suite checked without running it, and the
//! environment variables it needs (names only, never values).

use super::exit::Exit;
use super::load;
use crate::cli::ValidateArgs;
use crate::config;

/// Everything but the environment is checked; each variable the suite
/// needs is listed with whether it is set (names only, never values).
pub(super) fn validate(args: &ValidateArgs) -> Exit {
    use crate::expand::{noting, Need};
    let path = &args.suite.suite;
    let (loaded, needs) = noting(|| config::load(path));
    let suite = match loaded {
        Ok(suite) => suite,
        Err(err) => return Exit::usage(err),
    };
    let drills = match suite.drills.len() {
        0 => String::new(),
        n => format!(", {n} drills"),
    };
    say!(
        "{}: suite {} is valid ({} checks{drills})",
        path.display(),
        suite.name,
        suite.checks.len()
    );
    for (name, need) in &needs {
        say!("  needs {name}: {}", need.as_str());
    }
    let unset: Vec<&str> = needs
        .iter()
        .filter(|(_, need)| **need == Need::Unset)
        .map(|(name, _)| name.as_str())
        .collect();
    match (unset.is_empty(), args.require_env) {
        // Read again as `check` reads it: the first unset one, by file:line:key.
        (false, true) => match load(&args.suite) {
            Err(exit) => exit,
            Ok(_) => Exit::usage(format!("unset at run time: {}", unset.join(", "))),
        },
        _ => Exit::Pass,
    }
}
