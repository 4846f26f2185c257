//! What ships to ECS: the task definition validated offline against the ECS
//! API model (botocore), and the Dockerfile linted (hadolint). The gate
//! that runs it in every subnet is `vpc-probe gate` (tests/gate.rs).

use serde_json::{json, Value};
use std::path::Path;
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
