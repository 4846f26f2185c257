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
    assert!(checked.contains("SUCCESS: 14 rules found"), "{checked}");
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
    let haproxy = format!("host = \"{HAPROXY_NAME}\"\nport = {}", rig.haproxy);
    let https = format!(
        "url = \"https://{ANISETTE_NAME}:{}/v3/client_info\"\nca_file = \"{}\"",
        tls.anisette_https,
        tls.ca_file.display()
    );
    let checks = [
        rig::suites::postgres_haproxy(rig, "postgres-haproxy", "cycles = 2"),
        rig::suites::check(
            "down",
            "tcp",
            &format!("host = \"127.0.0.1\"\nport = {}", rig.closed),
        ),
        rig::suites::check(
            "every-address",
            "tcp",
            &format!("{haproxy}\naddresses = \"all\""),
        ),
        rig::suites::check("held", "tcp", &format!("{haproxy}\nidle = \"1s\"")),
        rig::suites::check("https", "http", &https),
    ]
    .join("\n");
    let suite = rig.suite("names", &checks);
    let metadata = rig.task_metadata_url();
    let served = Served::start(&suite, "1s", &[(ECS_METADATA, metadata.as_str())]);
    served.wait_ready(Duration::from_secs(30));
    let exposed: BTreeSet<String> = served
        .metrics_until(Duration::from_secs(15), |m| {
            m.contains("vpc_probe_task_info{") && m.contains("vpc_probe_idle_survived_seconds{")
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
        // vpc_probe_finding needs an [aws] table and a failing check:
        // tests/aws.rs reads its series from a real serve against moto.
        let unknown: Vec<_> = named
            .difference(&exposed)
            .filter(|name| *name != "vpc_probe_finding")
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics serve does not expose: {unknown:?}"
        );
    }
}

/// A family the probe exports but no panel shows and no rule reads is
/// forgotten: every family in `publish::families::ALL` is named in the
/// Grafana dashboard or in rules.yml.
#[test]
fn every_family_is_in_a_panel_or_a_rule() {
    let mut named = BTreeSet::new();
    for file in ["rules.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(Path::new(DEPLOY).join(file)).expect("read");
        named.extend(metric_names(&text));
    }
    let forgotten: Vec<&str> = vpc_probe::publish::families::ALL
        .iter()
        .map(|family| family.name)
        .filter(|name| !named.contains(*name))
        .collect();
    assert!(
        forgotten.is_empty(),
        "in no panel and no rule: {forgotten:?}"
    );
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

/// The fleet view end to end: two `serve` tasks with different identities
/// (subnets 10.20.1.0/24 in us-east-1a and 10.20.2.0/24 in us-east-1b),
/// one check passing in A and failing in B, scraped by a real Prometheus
/// that evaluates rules.yml: the check × subnet recording rules have both
/// subnets, and VpcProbeCheckFailingInSomeSubnets is pending for B only
/// (its `for` is 10 minutes), never VpcProbeCheckFailingEverywhere.
#[test]
fn two_tasks_in_two_subnets_read_as_one_fleet() {
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listening.local_addr().unwrap().port();
    let closed = rig::process::free_port().unwrap();
    let mut served = Vec::new();
    for (zone, cidr, task, port) in [
        (
            "us-east-1a",
            "10.20.1.0/24",
            "aaaa1111aaaa1111aaaa1111aaaa1111",
            open,
        ),
        (
            "us-east-1b",
            "10.20.2.0/24",
            "bbbb2222bbbb2222bbbb2222bbbb2222",
            closed,
        ),
    ] {
        let metadata = rig::fixture::task_metadata_in(zone, cidr, task).unwrap();
        let suite = rig().suite(
            &format!("fleet-{task}"),
            &format!("[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout = \"1s\"\n"),
        );
        served.push(Served::start(
            &suite,
            "1s",
            &[(ECS_METADATA, metadata.as_str())],
        ));
    }
    let targets: Vec<String> = served
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
    let prometheus = rig::observe::start_prometheus_with(&targets, Some(&rules));
    let query = |expr: &str| {
        let path = format!("/api/v1/query?query={}", percent(expr));
        rig::observe::get(prometheus, &path)
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pending = "ALERTS{alertname=\"VpcProbeCheckFailingInSomeSubnets\"}";
    loop {
        let alerts = query(pending);
        let counts = query("vpc_probe:check_subnets_failing:count");
        if alerts.contains("\"subnet\":\"10.20.2.0/24\"") && counts.contains("\"value\":[") {
            assert!(!alerts.contains("10.20.1.0/24"), "{alerts}");
            assert!(
                alerts.contains("\"availability_zone\":\"us-east-1b\""),
                "{alerts}"
            );
            let everywhere = query("ALERTS{alertname=\"VpcProbeCheckFailingEverywhere\"}");
            assert!(!everywhere.contains("haproxy-tcp"), "{everywhere}");
            let subnets = query("vpc_probe:check_subnets:count");
            assert!(subnets.contains("\"2\"]"), "two subnets: {subnets}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fleet alert: {alerts}\n{counts}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(listening);
}

/// A query string value, percent-encoded.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
