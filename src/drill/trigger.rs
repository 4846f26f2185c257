//! The trigger: the command that makes the change happen, run with no
//! stdin in a process group of its own and a bounded life, and what it did
//! as the report shows it. Ending it (its time is up, or the drill was
//! interrupted) ends the whole group, so nothing it started is orphaned.

use super::report::{secs, Trigger};
use crate::secret::Scrubber;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long an interrupted trigger's group has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(1);

/// What the trigger command did: exit code and its output's tail.
#[derive(Debug, Default)]
pub struct Ran {
    pub exit_code: Option<i32>,
    pub output: String,
}

/// A trigger started and not yet awaited.
pub struct Running {
    /// The process group's id (the leader's pid); `None` if it never started.
    group: Option<i32>,
    task: JoinHandle<Ran>,
}

impl Running {
    /// Start `command` in a new process group, with no stdin; its group is
    /// killed if it outlives `limit`.
    pub fn start(command: &[String], limit: Duration) -> Option<Running> {
        let (program, args) = command.split_first()?;
        let spawned = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                let output = format!("could not start {program}: {err}");
                let task = tokio::spawn(async move {
                    Ran {
                        exit_code: None,
                        output,
                    }
                });
                return Some(Running { group: None, task });
            }
        };
        let group = child.id().and_then(|pid| i32::try_from(pid).ok());
        let task = tokio::spawn(async move {
            match tokio::time::timeout(limit, child.wait_with_output()).await {
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
                    output: format!("waiting for the trigger: {err}"),
                },
                Err(_) => {
                    signal_group(group, libc::SIGKILL);
                    Ran {
                        exit_code: None,
                        output: "still running at the end of wait_for_change; its process group was killed".into(),
                    }
                }
            }
        });
        Some(Running { group, task })
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// What it did, once it has ended on its own (or its limit ended it).
    pub async fn finished(self) -> Ran {
        self.task.await.unwrap_or_default()
    }

    /// End it now: SIGTERM to its process group, SIGKILL after a grace
    /// second; what it printed until then, and that it was ended.
    pub async fn end(self, why: &str) -> Ran {
        signal_group(self.group, libc::SIGTERM);
        let mut task = self.task;
        let ran = match tokio::time::timeout(GRACE, &mut task).await {
            Ok(ran) => ran.unwrap_or_default(),
            Err(_) => {
                signal_group(self.group, libc::SIGKILL);
                tokio::time::timeout(GRACE, &mut task)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_else(|| {
                        task.abort();
                        Ran::default()
                    })
            }
        };
        let group = self.group.map_or(String::new(), |g| format!(" {g}"));
        let said = format!("{why}: the drill ended its process group{group}");
        Ran {
            exit_code: ran.exit_code,
            output: tail(format!("{}\n{said}", ran.output).trim_start()),
        }
    }
}

/// Send `signal` to the trigger's whole process group (a shell's children
/// too); nothing when it never started.
fn signal_group(group: Option<i32>, signal: libc::c_int) {
    if let Some(group) = group.filter(|g| *g > 1) {
        // SAFETY: killpg only sends a signal; a group that has already
        // gone makes it return ESRCH, which is ignored.
        unsafe {
            libc::killpg(group, signal);
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// Whether process `pid` still runs (a zombie no longer does: it may
    /// wait for a reaper that a container never runs).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn a_finished_trigger_gives_its_exit_code_and_output() {
        let running = Running::start(&shell("echo moved; exit 3"), Duration::from_secs(5));
        let ran = running.expect("started").finished().await;
        assert_eq!(ran.exit_code, Some(3));
        assert_eq!(ran.output, "moved");
    }

    #[tokio::test]
    async fn ending_a_trigger_ends_the_children_it_started() {
        let pid_file =
            std::env::temp_dir().join(format!("vpc-probe-trigger-{}", fastrand::u64(..)));
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let running = Running::start(&shell(&script), Duration::from_secs(30)).expect("started");
        let mut child = None;
        for _ in 0..100 {
            child = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok());
            if child.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let child = child.expect("the trigger's child started");
        let ran = running.end("interrupted").await;
        let _ = std::fs::remove_file(&pid_file);
        assert!(
            ran.output
                .contains("interrupted: the drill ended its process group"),
            "{}",
            ran.output
        );
        let mut gone = false;
        for _ in 0..100 {
            if !alive(child) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the trigger's child {child} outlived the trigger");
    }

    #[tokio::test]
    async fn a_trigger_past_its_limit_is_killed_with_its_group() {
        let running = Running::start(&shell("sleep 60"), Duration::from_millis(200));
        let ran = running.expect("started").finished().await;
        assert_eq!(ran.exit_code, None);
        assert!(ran.output.contains("killed"), "{}", ran.output);
    }

    #[tokio::test]
    async fn a_trigger_that_cannot_start_says_why() {
        let running = Running::start(
            &["/nonexistent/trigger".to_string()],
            Duration::from_secs(1),
        );
        let ran = running.expect("a record").finished().await;
        assert!(
            ran.output.contains("could not start /nonexistent/trigger"),
            "{}",
            ran.output
        );
    }
}
