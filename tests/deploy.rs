//! What ships to ECS: the task definition validated offline against the ECS
//! API model (botocore), the Dockerfile linted (hadolint), and the decisions
//! of scripts/ecs-gate with canned `aws` answers (no AWS account here).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(Path::new(ROOT).join(program))
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// (what is broken, how, what the validator must say)
type Breakage = (&'static str, fn(&mut Value), &'static str);

#[test]
fn task_definition_is_a_valid_fargate_registration() {
    let valid = run("scripts/validate-task-definition", &[]);
    assert!(valid.status.success(), "{}", text(&valid));
    assert!(text(&valid).contains("Fargate 256/512"), "{}", text(&valid));

    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("task-definition.json")).unwrap(),
    )
    .unwrap();
    let broken: [Breakage; 6] = [
        (
            "unknown key",
            |d| d["containerDefinitions"][0]["bogus"] = json!(1),
            "Unknown parameter",
        ),
        (
            "bad enum",
            |d| d["networkMode"] = json!("vpc"),
            "is not one of",
        ),
        (
            "cpu/memory",
            |d| d["memory"] = json!("4096"),
            "not a Fargate pair",
        ),
        (
            "shell health check",
            |d| {
                d["containerDefinitions"][0]["healthCheck"]["command"] =
                    json!(["CMD-SHELL", "true"])
            },
            "CMD form",
        ),
        (
            "root user",
            |d| d["containerDefinitions"][0]["user"] = json!("0"),
            "non-root",
        ),
        (
            "secret",
            |d| d["containerDefinitions"][0]["secrets"][0]["valueFrom"] = json!("plain-text"),
            "Secrets Manager ARN",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, change, expected) in broken {
        let mut definition = original.clone();
        change(&mut definition);
        let path = dir.path().join("td.json");
        std::fs::write(&path, definition.to_string()).unwrap();
        let checked = run(
            "scripts/validate-task-definition",
            &[path.to_str().unwrap()],
        );
        assert_eq!(checked.status.code(), Some(1), "{what} must be refused");
        assert!(
            text(&checked).contains(expected),
            "{what}: {}",
            text(&checked)
        );
    }
}

#[test]
fn dockerfile_is_hadolint_clean() {
    let bin = String::from_utf8(run("scripts/python-tools", &[]).stdout).unwrap();
    let linted = Command::new(Path::new(bin.trim()).join("hadolint"))
        .arg(Path::new(ROOT).join("Dockerfile"))
        .output()
        .expect("hadolint");
    assert!(linted.status.success(), "{}", text(&linted));
}

/// A scenario for the gate: canned answers in a directory, the stub first on PATH.
struct Gate {
    dir: tempfile::TempDir,
}

const TASK_A: &str = "arn:aws:ecs:us-east-1:111122223333:task/glimpse/aaaa1111";
const TASK_B: &str = "arn:aws:ecs:us-east-1:111122223333:task/glimpse/bbbb2222";

impl Gate {
    fn new() -> Gate {
        let gate = Gate {
            dir: tempfile::tempdir().unwrap(),
        };
        gate.write("describe-task-definition.json", &json!({"taskDefinition": {"containerDefinitions": [
            {"name": "vpc-probe", "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/vpc-probe", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "vpc-probe"}}}]}}));
        gate.started("subnet-a", TASK_A);
        gate.started("subnet-b", TASK_B);
        gate
    }

    fn write(&self, name: &str, value: &Value) {
        std::fs::write(self.dir.path().join(name), value.to_string()).unwrap();
    }

    fn started(&self, subnet: &str, task: &str) {
        self.write(
            &format!("run-task-{subnet}.json"),
            &json!({"tasks": [{"taskArn": task, "lastStatus": "PROVISIONING"}], "failures": []}),
        );
    }

    /// describe-tasks answers: (task, stopCode, probe exit code, stoppedReason).
    fn stopped(&self, tasks: &[(&str, &str, Option<i32>, &str)]) {
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|(arn, stop, code, why)| json!({"taskArn": arn, "lastStatus": "STOPPED", "stopCode": stop,
                "stoppedReason": why, "containers": [{"name": "vpc-probe", "lastStatus": "STOPPED", "exitCode": code}]}))
            .collect();
        self.write(
            "describe-tasks.json",
            &json!({"tasks": tasks, "failures": []}),
        );
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("calls.log")
    }

    fn run(&self) -> (i32, String) {
        let stub = Path::new(ROOT).join("tests/data/aws-stub");
        let path = format!(
            "{}:{}",
            stub.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let output = Command::new(Path::new(ROOT).join("scripts/ecs-gate"))
            .args(["--cluster", "glimpse", "--task-definition", "vpc-probe:7"])
            .args([
                "--subnets",
                "subnet-a,subnet-b",
                "--security-groups",
                "sg-probe",
            ])
            .env("PATH", path)
            .env("AWS_STUB_DIR", self.dir.path())
            .env("AWS_STUB_LOG", self.log())
            .output()
            .expect("scripts/ecs-gate");
        (output.status.code().unwrap_or(-1), text(&output))
    }
}

#[test]
fn gate_passes_when_every_subnet_task_exits_zero() {
    let gate = Gate::new();
    let ok = "Essential container in task exited";
    gate.stopped(&[
        (TASK_A, "EssentialContainerExited", Some(0), ok),
        (TASK_B, "EssentialContainerExited", Some(0), ok),
    ]);
    let (code, out) = gate.run();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("subnet-a: PASS") && out.contains("subnet-b: PASS"),
        "{out}"
    );
    assert!(
        out.contains(
            "aws logs tail /ecs/vpc-probe --log-stream-names vpc-probe/vpc-probe/bbbb2222"
        ),
        "{out}"
    );
    let calls = std::fs::read_to_string(gate.log()).unwrap();
    let runs: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("ecs run-task"))
        .collect();
    assert_eq!(runs.len(), 2, "one task per subnet: {calls}");
    assert!(
        runs[0].contains("subnets=[subnet-a]") && runs[1].contains("subnets=[subnet-b]"),
        "{calls}"
    );
    assert!(runs.iter().all(|r| r.contains("securityGroups=[sg-probe]")
        && r.contains("assignPublicIp=DISABLED")
        && r.contains("FARGATE")));
    assert!(
        calls.contains(&format!(
            "ecs wait tasks-stopped --cluster glimpse --tasks {TASK_A} {TASK_B}"
        )),
        "{calls}"
    );
}

#[test]
fn gate_fails_a_subnet_whose_probe_found_a_failure() {
    let gate = Gate::new();
    let ok = "Essential container in task exited";
    gate.stopped(&[
        (TASK_A, "EssentialContainerExited", Some(0), ok),
        (TASK_B, "EssentialContainerExited", Some(1), ok),
    ]);
    let (code, out) = gate.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("subnet-a: PASS"), "{out}");
    assert!(
        out.contains("subnet-b: FAIL a check failed (probe exit 1)"),
        "{out}"
    );
}

#[test]
fn gate_fails_a_probe_that_never_ran() {
    let gate = Gate::new();
    let ok = "Essential container in task exited";
    let secrets = "ResourceInitializationError: unable to pull secrets or registry auth";
    gate.stopped(&[
        (TASK_A, "EssentialContainerExited", Some(0), ok),
        (TASK_B, "TaskFailedToStart", None, secrets),
    ]);
    let (code, out) = gate.run();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "subnet-b: FAIL the probe never ran (TaskFailedToStart: ResourceInitializationError"
        ),
        "{out}"
    );
}

#[test]
fn gate_fails_a_task_stopped_for_another_reason_even_with_exit_zero() {
    let gate = Gate::new();
    gate.stopped(&[
        (TASK_A, "EssentialContainerExited", Some(0), "done"),
        (TASK_B, "UserInitiated", Some(0), "Task stopped by user"),
    ]);
    let (code, out) = gate.run();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("subnet-b: FAIL stopped by UserInitiated"),
        "{out}"
    );
}

#[test]
fn gate_fails_a_subnet_where_run_task_reports_failures() {
    let gate = Gate::new();
    gate.write("run-task-subnet-b.json", &json!({"tasks": [], "failures": [{"arn": "arn:aws:ecs:us-east-1:111122223333:subnet/subnet-b", "reason": "RESOURCE:ENI", "detail": "no free IP addresses in subnet-b"}]}));
    gate.stopped(&[(TASK_A, "EssentialContainerExited", Some(0), "done")]);
    let (code, out) = gate.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("subnet-a: PASS"), "{out}");
    assert!(
        out.contains("subnet-b: FAIL run-task failed: RESOURCE:ENI no free IP addresses"),
        "{out}"
    );
    let calls = std::fs::read_to_string(gate.log()).unwrap();
    assert!(
        calls.contains(&format!("--tasks {TASK_A}\n")),
        "only subnet A's task is awaited: {calls}"
    );
}

#[test]
fn gate_refuses_missing_arguments() {
    let output = run("scripts/ecs-gate", &["--cluster", "glimpse"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("--task-definition is required"),
        "{}",
        text(&output)
    );
}
