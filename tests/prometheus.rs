//! The Prometheus side in deploy/prometheus: rules pass `promtool check
//! rules` and their unit tests, and every metric the rules and the Grafana
//! dashboard name is one that a real `serve` exposes.

mod rig;

use rig::observe::{Served, ECS_METADATA};
use rig::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(DEPLOY)
        .output()
        .expect("promtool (run scripts/test to install prometheus)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{said}");
    said
}

#[test]
fn alerting_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "rules.yml"]);
    assert!(checked.contains("SUCCESS: 12 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Metric names (`probe_*`, `vpc_probe_*`) mentioned in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("probe_") || token.starts_with("vpc_probe_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_and_dashboard_name_only_metrics_that_serve_exposes() {
    let rig = rig();
    let tls = rig::tls::tls_rig();
    let checks = format!(
        r#"
[[check]]
name = "postgres-haproxy"
kind = "postgres"
url = "postgres://{PG_USER}@{HAPROXY_NAME}:{haproxy}/app"
password = "{PG_PASSWORD}"
cycles = 2

[[check]]
name = "down"
kind = "tcp"
host = "127.0.0.1"
port = {closed}

[[check]]
name = "every-address"
kind = "tcp"
host = "{HAPROXY_NAME}"
port = {haproxy}
addresses = "all"

[[check]]
name = "https"
kind = "http"
url = "https://{ANISETTE_NAME}:{https}/v3/client_info"
ca_file = "{ca}"
"#,
        haproxy = rig.haproxy,
        closed = rig.closed,
        https = tls.anisette_https,
        ca = tls.ca_file.display(),
    );
    let suite = rig.suite("names", &checks);
    let metadata = rig.task_metadata_url();
    let served = Served::start(&suite, "1s", &[(ECS_METADATA, metadata.as_str())]);
    served.wait_ready(Duration::from_secs(30));
    let exposed: BTreeSet<String> = served
        .metrics_until(Duration::from_secs(10), |m| {
            m.contains("vpc_probe_task_info{")
        })
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect();
    for file in ["rules.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(Path::new(DEPLOY).join(file)).expect("read");
        let named = metric_names(&text);
        assert!(named.len() >= 5, "{file} names too few metrics: {named:?}");
        let unknown: Vec<_> = named.difference(&exposed).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics serve does not expose: {unknown:?}"
        );
    }
}

#[test]
fn dashboard_and_agent_config_are_well_formed() {
    let read = |file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(Path::new(DEPLOY).join(file)).expect("read");
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{file}: {err}"))
    };
    let dashboard = read("grafana-dashboard.json");
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<_> = panels.iter().map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(targets
            .iter()
            .all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty())));
    }
    let agent = read("cloudwatch-agent-ecs.json");
    let labels =
        &agent["logs"]["metrics_collected"]["prometheus"]["ecs_service_discovery"]["docker_label"];
    assert_eq!(labels["sd_port_label"], "ECS_PROMETHEUS_EXPORTER_PORT");
    assert_eq!(labels["sd_job_name_label"], "ECS_PROMETHEUS_JOB_NAME");
}
