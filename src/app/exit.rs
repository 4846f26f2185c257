//! How a subcommand ends: the documented exit codes as one type, and the
//! line to tell whoever runs it. `app::main` is the one place that prints
//! that line and turns the exit into a process exit code.

use std::fmt::Display;
use std::process::ExitCode;

/// The exit code contract: 0 all passed, 1 a check (or the command's own
/// work) failed, 2 the suite or the command line is wrong and nothing ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: every check passed; the command did what was asked.
    Pass,
    /// 1: a check failed, or the command's own work did; `Some` says why.
    Fail(Option<String>),
    /// 2: the suite or the command line is wrong; nothing ran.
    Usage(String),
}

impl Exit {
    /// 1, with `error: {message}` on stderr.
    pub fn error(message: impl Display) -> Exit {
        Exit::Fail(Some(format!("error: {message}")))
    }

    /// 2, with `error: {message}` on stderr.
    pub fn usage(message: impl Display) -> Exit {
        Exit::Usage(format!("error: {message}"))
    }

    /// Pass or fail by a verdict, with nothing more to say.
    pub fn verdict(passed: bool) -> Exit {
        if passed {
            Exit::Pass
        } else {
            Exit::Fail(None)
        }
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::Fail(_) => 1,
            Exit::Usage(_) => 2,
        }
    }

    /// Print the line for whoever ran the command (stderr), and exit.
    pub fn finish(self) -> ExitCode {
        if let Exit::Fail(Some(line)) | Exit::Usage(line) = &self {
            eprintln!("{line}");
        }
        ExitCode::from(self.code())
    }
}

/// `Ok` or `Err`, both already an exit: for subcommands written with `?`.
pub fn settle(result: Result<Exit, Exit>) -> Exit {
    result.unwrap_or_else(|exit| exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(exit: Exit, want: u8) {
        assert_eq!(exit.code(), want, "{exit:?}");
    }

    crate::cases! { code {
        passed: Exit::Pass => 0;
        a_check_failed: Exit::verdict(false) => 1;
        the_command_failed: Exit::error("writing the report") => 1;
        the_suite_is_wrong: Exit::usage("suite.toml:3:1: unknown key") => 2;
    }}

    #[test]
    fn a_failure_says_error_first() {
        assert_eq!(Exit::error("x"), Exit::Fail(Some("error: x".into())));
        assert_eq!(Exit::usage("y"), Exit::Usage("error: y".into()));
    }
}
