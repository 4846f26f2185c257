//! The trigger: the command that makes the change happen, run with no
//! stdin and a bounded life, and what it did as the report shows it.

use super::report::{secs, Trigger};
use crate::secret::Scrubber;
use std::time::Duration;

/// What the trigger command did: exit code and its output's tail.
#[derive(Debug, Default)]
pub struct Ran {
    pub exit_code: Option<i32>,
    pub output: String,
}

/// Run the trigger with no stdin and a clean view of its output, killed
/// if it outlives `limit`.
pub async fn run_trigger(command: Vec<String>, limit: Duration) -> Ran {
    let Some((program, args)) = command.split_first() else {
        return Ran::default();
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, child).await {
        Ok(Ok(output)) => Ran {
            exit_code: output.status.code(),
            output: tail(&format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )),
        },
        Ok(Err(err)) => Ran {
            exit_code: None,
            output: format!("could not start {program}: {err}"),
        },
        Err(_) => Ran {
            exit_code: None,
            output: "still running at the end of wait_for_change; killed".into(),
        },
    }
}

/// The last 20 lines of a text, at most 4 KiB.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(20)..].join("\n");
    let start = kept.len().saturating_sub(4096);
    let start = (start..kept.len())
        .find(|i| kept.is_char_boundary(*i))
        .unwrap_or(kept.len());
    kept[start..].to_string()
}

impl Trigger {
    pub fn new(
        command: &[String],
        ran: Ran,
        started: Duration,
        finished: Duration,
        scrubber: &Scrubber,
    ) -> Trigger {
        Trigger {
            command: command.to_vec(),
            exit_code: ran.exit_code,
            started_after_seconds: secs(started),
            finished_after_seconds: secs(finished),
            output: scrubber.scrub(&ran.output),
        }
    }

    /// The same, with every secret out of its command and output: a
    /// trigger may carry a password (`REDISCLI_AUTH=...`, a URL).
    pub fn scrubbed(self, scrubber: &Scrubber) -> Trigger {
        Trigger {
            command: self
                .command
                .iter()
                .map(|part| scrubber.scrub(part))
                .collect(),
            output: scrubber.scrub(&self.output),
            ..self
        }
    }

    pub fn timed_out(command: &[String], started: Duration, limit: Duration) -> Trigger {
        Trigger {
            command: command.to_vec(),
            exit_code: None,
            started_after_seconds: secs(started),
            finished_after_seconds: secs(started + limit),
            output: "still running at the end of wait_for_change; killed".into(),
        }
    }
}
