//! The ECS + CloudWatch Logs stand-in (`tests/rig/ecs_standin.py`) on a
//! loopback port: it speaks the JSON 1.1 APIs the gate calls and really
//! runs each task's command, in the network namespace of its subnet,
//! turning every stdout and stderr line into one log event.

use super::process::{self, Daemon};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct Ecs {
    pub endpoint: String,
    _daemon: Daemon,
}

impl Ecs {
    /// Start the stand-in with `config` (see the script's doc).
    pub fn start(tag: &str, config: &Value) -> Result<Ecs, String> {
        let dir = process::scratch_dir(&format!("ecs-{tag}"))?;
        let port = process::free_port()?;
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rig/ecs_standin.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(port.to_string())
            .arg(&config_path)
            .current_dir(&dir);
        let log = dir.join("ecs.log");
        let daemon = Daemon::spawn("ecs_standin", command, &log)?;
        daemon.wait_ready("the ECS stand-in", Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("listening"))
        })?;
        Ok(Ecs {
            endpoint: format!("http://127.0.0.1:{port}"),
            _daemon: daemon,
        })
    }

    /// Register a task definition (the repository's `task-definition.json`,
    /// changed by `edit`) as RegisterTaskDefinition would.
    pub fn register(&self, edit: impl FnOnce(&mut Value)) -> Result<Value, String> {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("task-definition.json");
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let mut definition: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        edit(&mut definition);
        let answer = self.post("/_register", &definition)?;
        Ok(answer["taskDefinition"].clone())
    }

    /// Every task's state and every StopTask asked.
    pub fn state(&self) -> Result<Value, String> {
        let url = format!("{}/_state", self.endpoint);
        let output = Command::new("curl")
            .args(["-s", "-m", "5", &url])
            .output()
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.endpoint);
        let output = Command::new("curl")
            .args([
                "-s",
                "-m",
                "10",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .args(["--data-binary", &body.to_string(), &url])
            .output()
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
    }
}
