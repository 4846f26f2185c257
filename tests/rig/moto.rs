//! The offline AWS: moto's server mode on a loopback port (or on the
//! loopback of a test-made namespace), its log in the test's own temp dir,
//! and the two-account world of `aws_world.py` built in it with one fault.

use super::probe::{run_with, Run};
use super::process::{self, Daemon};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The read-only role of the database account in the world.
pub const ROLE: &str = "arn:aws:iam::222222222222:role/vpc-probe-read";
pub const REGION: &str = "eu-west-1";

/// A moto server and the ids of the world built in it.
pub struct Moto {
    pub endpoint: String,
    pub ids: serde_json::Value,
    /// Where moto and the world's build ran (the gaps.json a world writes).
    pub dir: PathBuf,
    _daemon: Daemon,
}

/// The venv's bin directory (scripts/python-tools installs moto there).
pub fn venv_bin() -> Result<PathBuf, String> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-tools");
    process::run(&mut Command::new(&tools), "scripts/python-tools").map(PathBuf::from)
}

/// Static credentials any moto accepts (the app account, 123456789012).
pub const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIDVPCPROBETEST"),
    ("AWS_SECRET_ACCESS_KEY", "vpc-probe-test-secret"),
];

impl Moto {
    /// Start moto on loopback, build the world, apply `fault` ("healthy": none).
    /// `wrap` runs both inside a namespace (`ip netns exec NS`), or not.
    pub fn start(fault: &str, wrap: &[&str]) -> Result<Moto, String> {
        let bin = venv_bin()?;
        let dir = process::scratch_dir(&format!("moto-{fault}"))?;
        let port = process::free_port()?;
        let mut command = wrapped(wrap, &bin.join("moto_server"));
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(&dir);
        let daemon = Daemon::spawn("moto_server", command, &dir.join("moto.log"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let world = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rig/aws_world.py");
        let mut build = wrapped(wrap, &bin.join("python"));
        build
            .arg(&world)
            .args([&endpoint, fault])
            .current_dir(&dir)
            .envs(CREDENTIALS);
        let mut ids = Err(String::new());
        daemon
            .wait_ready("moto_server", Duration::from_secs(60), || {
                ids = process::run(&mut build, "building the AWS world");
                ids.as_ref().is_ok_and(|text| !text.is_empty())
            })
            .map_err(|err| match &ids {
                Err(why) if !why.is_empty() => format!("{err}\n--- the last build said: {why}"),
                _ => err,
            })?;
        let ids = serde_json::from_str(&ids?).map_err(|err| format!("world ids: {err}"))?;
        Ok(Moto {
            endpoint,
            ids,
            dir,
            _daemon: daemon,
        })
    }

    /// A stand-in for IAM in front of this moto that refuses `actions`
    /// (tests/rig/aws_deny.py); its endpoint and its process. `wrap` runs
    /// it where this moto runs (`ip netns exec NS`), or not.
    pub fn denying(&self, actions: &[&str], wrap: &[&str]) -> Result<(String, Daemon), String> {
        self.in_front("aws_deny.py", "aws_deny", &actions.join(","), wrap)
    }

    /// What moto cannot hold (a network account's shared transit gateway,
    /// an endpoint's state and interface, target health), answered in front
    /// of this moto by tests/rig/aws_gaps.py from the gaps.json a `tgw_…`
    /// or `vpce_…` world wrote: its endpoint and its process.
    /// `wrap` runs it where this moto runs (`ip netns exec NS`), or not.
    pub fn with_gaps(&self, wrap: &[&str]) -> Result<(String, Daemon), String> {
        let state = self.dir.join("gaps.json");
        let state = state.to_str().ok_or("a UTF-8 scratch path")?;
        self.in_front("aws_gaps.py", "aws_gaps", state, wrap)
    }

    /// A forwarding fixture `script` on a free loopback port, in front of
    /// this moto, given `argument`; ready once it says it listens.
    fn in_front(
        &self,
        script: &str,
        name: &'static str,
        argument: &str,
        wrap: &[&str],
    ) -> Result<(String, Daemon), String> {
        let bin = venv_bin()?;
        let dir = process::scratch_dir(name)?;
        let port = process::free_port()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/rig")
            .join(script);
        let mut command = wrapped(wrap, &bin.join("python"));
        command
            .arg(script)
            .args([&port.to_string(), &self.endpoint, argument])
            .current_dir(&dir);
        let log = dir.join("fixture.log");
        let daemon = Daemon::spawn(name, command, &log)?;
        daemon.wait_ready(name, Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("listening"))
        })?;
        Ok((format!("http://127.0.0.1:{port}"), daemon))
    }

    /// `vpc-probe paths` of `checks` from `source`, through the gaps
    /// fixture in front of this moto, the `[aws]` table given `extra`.
    pub fn paths_through_gaps(&self, source: &str, extra: &str, checks: &str) -> Run {
        let (endpoint, fixture) = self.with_gaps(&[]).unwrap_or_else(|err| panic!("{err}"));
        let resolver = format!(
            "127.0.0.1:{}",
            process::free_udp_port().expect("a free UDP port")
        );
        let text = format!(
            "[suite]\nname = \"gaps\"\nresolver = \"{resolver}\"\n{}\n{checks}",
            self.table_at(&endpoint, source, extra)
        );
        let suite = self.dir.join("gaps-suite.toml");
        std::fs::write(&suite, text).expect("write the suite");
        let run = run_with(
            &[
                "paths",
                "--suite",
                suite.to_str().expect("utf-8"),
                "--format",
                "json",
            ],
            &CREDENTIALS,
            Duration::from_secs(60),
        );
        drop(fixture);
        run
    }

    /// The id the world gave `key` (`sg_haproxy`, `rtb_b`, `pcx`, …).
    pub fn id(&self, key: &str) -> String {
        self.ids[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in the world: {}", self.ids))
            .to_string()
    }

    /// The `[aws]` table of a suite reading this world from `source`.
    pub fn table(&self, source: &str, extra: &str) -> String {
        self.table_at(&self.endpoint, source, extra)
    }

    /// [`Moto::table`] through another endpoint (a fixture in front).
    pub fn table_at(&self, endpoint: &str, source: &str, extra: &str) -> String {
        format!(
            "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\npeer_role_arn = \"{ROLE}\"\nsource = \"{source}\"\n{extra}"
        )
    }
}

fn wrapped(wrap: &[&str], program: &Path) -> Command {
    match wrap.split_first() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(program);
            command
        }
        None => Command::new(program),
    }
}
