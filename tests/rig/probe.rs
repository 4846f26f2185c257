//! Running the `vpc-probe` binary from tests, bounded in time.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not JSON ({err}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The report entry of one check.
    pub fn check(&self, name: &str) -> serde_json::Value {
        let report = self.json();
        let checks = report["checks"].as_array().expect("checks array").clone();
        checks
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name} in report"))
    }
}

/// The binary under test (set by cargo for integration tests).
pub fn binary() -> &'static str {
    option_env!("CARGO_BIN_EXE_vpc-probe").unwrap_or("target/debug/vpc-probe")
}

/// Run the binary with `args`, killing it if it outlives `limit`.
pub fn run_with(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("VPC_PROBE_SUITE")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vpc-probe");
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("vpc-probe {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed: start.elapsed(),
    }
}

/// `vpc-probe check --suite PATH --format json`, bounded to 60 s.
pub fn check_json(suite: &Path, extra: &[&str]) -> Run {
    let suite = suite.to_str().expect("utf-8 path");
    let mut args = vec!["check", "--suite", suite, "--format", "json"];
    args.extend_from_slice(extra);
    run_with(&args, &[], Duration::from_secs(60))
}

/// `vpc-probe drill --suite SUITE --drill NAME --format json` plus
/// `extra`, bounded by `limit`; the report is written beside the suite
/// (NAME.json), validated against the drill schema, and parsed.
pub fn drill_json(
    suite: &Path,
    name: &str,
    extra: &[&str],
    limit: Duration,
) -> (Run, serde_json::Value) {
    let suite_arg = suite.to_str().expect("utf-8 path");
    let mut args = vec!["drill", "--suite", suite_arg, "--drill", name];
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let run = run_with(&args, &[], limit);
    let json = suite.with_file_name(format!("{name}.json"));
    std::fs::write(&json, &run.stdout).expect("write the report");
    super::schema::validate("drill.schema.json", &json).expect("a report valid against its schema");
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", run.stdout, run.stderr));
    (run, report)
}

/// Replace a drill report's per-attempt rows with `acknowledged_seqs`
/// (the acknowledged writes' sequence numbers), so a failure message
/// shows the figures, not hundreds of rows.
pub fn keep_acknowledged_seqs(report: &mut serde_json::Value) {
    let attempts = report["attempts"].take();
    report["acknowledged_seqs"] = attempts
        .as_array()
        .map(|rows| {
            let acknowledged = rows.iter().filter(|a| a["fate"] == "ok");
            acknowledged.map(|a| a["seq"].clone()).collect()
        })
        .unwrap_or_default();
}
