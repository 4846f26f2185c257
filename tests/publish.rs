//! Publishing against real components: `serve` scraped by promtool and by a
//! real Prometheus, pushes to a real Pushgateway, CloudWatch EMF lines
//! checked against the specification's rules, and the ECS task identity
//! read from a metadata endpoint serving AWS's documented example.

mod rig;

use rig::observe::{self, Served, ECS_METADATA};
use rig::probe::run_with;
use rig::suites;
use rig::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use strum::IntoEnumIterator;
use vpc_probe::outcome::{Kind, Phase, Reason};

/// Four passing checks and two failing ones, each with a known reason.
fn mixed_checks(rig: &Rig) -> String {
    let (closed, anisette) = (rig.closed, rig.anisette);
    let pg = "cycles = 2\nexpect_role = \"primary\"\nexpect_extensions = [\"postgis\"]";
    [
        suites::haproxy_dns("haproxy-dns", ""),
        suites::postgres_haproxy(rig, "postgres-haproxy", pg),
        suites::redis(rig, "redis", ""),
        suites::closed_tcp(rig, "patroni-direct"),
        suites::check(
            "anisette-down",
            "tcp",
            &format!("host = \"{ANISETTE_NAME}\"\nport = {closed}"),
        ),
        suites::check(
            "postgres-wrong-password",
            "postgres",
            &format!("url = \"postgres://{PG_USER}@{HAPROXY_NAME}:{}/app\"\npassword = \"not-the-Password-9931\"", rig.haproxy),
        ),
        suites::check(
            "anisette",
            "http",
            &format!("url = \"http://{ANISETTE_NAME}:{anisette}/v3/client_info\"\nexpect_json_keys = [\"client_info\", \"user_agent\"]"),
        ),
    ]
    .join("\n")
}

const PASSING: [&str; 5] = [
    "haproxy-dns",
    "postgres-haproxy",
    "redis",
    "patroni-direct",
    "anisette",
];
const FAILING: [(&str, &str); 2] = [
    ("anisette-down", "connect_refused"),
    ("postgres-wrong-password", "auth_failed"),
];
const SECRETS: [&str; 3] = [PG_PASSWORD, REDIS_PASSWORD, "not-the-Password-9931"];

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

fn promtool_check_metrics(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (run scripts/test to install prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let output = promtool.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{metrics}"
    );
}

/// One `kind = "tcp"` check to 127.0.0.1:`port`.
fn tcp_check(name: &str, port: u16) -> String {
    format!("[[check]]\nname = \"{name}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n")
}

#[test]
fn serve_exposes_every_check_with_its_reason_and_promtool_is_clean() {
    let rig = rig();
    let suite = rig.suite("serve-mixed", &mixed_checks(rig));
    let metadata = rig.task_metadata_url();
    let served = Served::start(&suite, "1s", &[(ECS_METADATA, metadata.as_str())]);
    served.wait_ready(Duration::from_secs(30));
    // The task identity arrives beside the first runs, not before them.
    let metrics = served.metrics_until(Duration::from_secs(10), |m| {
        m.contains("vpc_probe_postgres_cycles_total") && m.contains("vpc_probe_task_info{")
    });
    for check in PASSING {
        let kind_free = format!("probe_success{{check=\"{check}\",");
        let line = metrics.lines().find(|l| l.starts_with(&kind_free));
        assert!(
            line.is_some_and(|l| l.ends_with(" 1")),
            "{check} should pass:\n{metrics}"
        );
    }
    for (check, reason) in FAILING {
        let series = format!("probe_success{{check=\"{check}\",");
        let line = metrics.lines().find(|l| l.starts_with(&series));
        assert!(
            line.is_some_and(|l| l.ends_with(" 0")),
            "{check} should fail:\n{metrics}"
        );
        let reason_line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("vpc_probe_failure_reason{{check=\"{check}\",")))
            .expect("a reason series");
        assert!(
            reason_line.contains(&format!("reason=\"{reason}\"")),
            "{reason_line}"
        );
    }
    assert_eq!(
        metrics.matches("vpc_probe_failure_reason{").count(),
        PASSING.len() + FAILING.len(),
        "one reason series per check"
    );
    let phase =
        "vpc_probe_phase_duration_seconds{check=\"postgres-haproxy\",kind=\"postgres\",phase=";
    for name in ["resolve", "connect", "auth", "query", "close"] {
        let seconds = sample(&metrics, &format!("{phase}\"{name}\"}}"));
        assert!(seconds.is_some_and(|s| s > 0.0), "phase {name}:\n{metrics}");
    }
    let dns = sample(
        &metrics,
        "probe_dns_lookup_time_seconds{check=\"haproxy-dns\",kind=\"dns\"}",
    );
    assert!(dns.is_some_and(|s| s > 0.0));
    let cycles = sample(
        &metrics,
        "vpc_probe_postgres_cycles_total{check=\"postgres-haproxy\",result=\"ok\"}",
    );
    assert!(cycles.is_some_and(|n| n >= 2.0), "{metrics}");
    assert!(metrics.contains("availability_zone=\"us-west-2a\""));
    assert!(metrics.contains("subnet=\"192.0.2.0/24\""));
    assert!(metrics.contains("vpc_probe_build_info{version="));
    for secret in SECRETS {
        assert!(!metrics.contains(secret), "a secret reached /metrics");
    }
    promtool_check_metrics(&metrics);
    assert_eq!(served.get("/healthz").0, 200);
    assert_eq!(served.get("/nope").0, 404);
}

#[test]
fn labels_are_bounded_names_never_error_text() {
    let rig = rig();
    let suite = rig.suite("serve-labels", &mixed_checks(rig));
    let served = Served::start(&suite, "1s", &[]);
    served.wait_ready(Duration::from_secs(30));
    let metrics = served.get("/metrics").1;
    let checks: BTreeSet<&str> = PASSING
        .iter()
        .chain(FAILING.iter().map(|f| &f.0))
        .copied()
        .collect();
    // The closed sets, from the enums themselves.
    let warnings = vpc_probe::outcome::WarningReason::iter().map(|w| w.as_str());
    let reasons: BTreeSet<&str> = Reason::all()
        .map(Reason::as_str)
        .chain(warnings)
        .chain(["none"])
        .collect();
    let kinds: BTreeSet<&str> = Kind::iter().map(Kind::as_str).collect();
    let phases: BTreeSet<&str> = Phase::iter().map(Phase::as_str).chain(["none"]).collect();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        for (label, value) in labels(line) {
            match label.as_str() {
                "check" => assert!(checks.contains(value.as_str()), "{line}"),
                "kind" => assert!(kinds.contains(value.as_str()), "{line}"),
                "reason" => assert!(reasons.contains(value.as_str()), "{line}"),
                "phase" => assert!(phases.contains(value.as_str()), "{line}"),
                "result" => assert!(
                    ["ok", "failed", "success", "failure"].contains(&value.as_str()),
                    "{line}"
                ),
                "code" => assert!(
                    vpc_probe::outcome::Code::iter().any(|c| c.as_str() == value),
                    "{line}"
                ),
                "version" | "suite" | "checks" => {
                    assert!(value.len() < 64 && !value.contains(' '), "{line}")
                }
                // The server behind a postgres check: one address, a role, a timeline.
                "server" => assert!(value.parse::<std::net::SocketAddr>().is_ok(), "{line}"),
                "role" => assert!(["primary", "replica"].contains(&value.as_str()), "{line}"),
                "timeline" => assert!(
                    value.is_empty()
                        || (value.len() == 8 && value.chars().all(|c| c.is_ascii_hexdigit())),
                    "{line}"
                ),
                other => panic!("unexpected label {other} in {line}"),
            }
        }
    }
}

/// The (label, value) pairs of one exposition line (values without quotes or escapes).
fn labels(line: &str) -> Vec<(String, String)> {
    let Some(inside) = line
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(l, _)| l)
    else {
        return Vec::new();
    };
    inside
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(label, value)| (label.to_string(), value.trim_end_matches('"').to_string()))
        .collect()
}

#[test]
fn a_check_with_its_own_interval_runs_on_its_own_schedule() {
    let rig = rig();
    let checks = format!(
        "{}\n{}interval = \"1h\"\n",
        tcp_check("every-second", rig.haproxy),
        tcp_check("hourly", rig.haproxy)
    );
    let suite = rig.suite("serve-intervals", &checks);
    let served = Served::start(&suite, "1s", &[]);
    served.wait_ready(Duration::from_secs(30));
    let runs = |metrics: &str, check: &str| {
        let series = format!(
            "vpc_probe_check_runs_total{{check=\"{check}\",kind=\"tcp\",result=\"success\"}}"
        );
        sample(metrics, &series).unwrap_or_default()
    };
    let metrics = served.metrics_until(Duration::from_secs(20), |m| runs(m, "every-second") >= 4.0);
    assert!(runs(&metrics, "every-second") >= 4.0, "{metrics}");
    assert_eq!(runs(&metrics, "hourly"), 1.0, "{metrics}");
}

#[test]
fn readyz_waits_for_a_full_run_and_healthcheck_follows_it() {
    let rig = rig();
    let slow = format!(
        "[[check]]\nname = \"slow\"\nkind = \"postgres\"\nurl = \"postgres://u@127.0.0.1:{}/app\"\ntimeout = \"5s\"\n",
        rig.silent
    );
    let suite = rig.suite("serve-slow", &slow);
    let served = Served::start(&suite, "30s", &[]);
    let url = format!("http://127.0.0.1:{}/readyz", served.port);
    let (status, body) = served.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("0 of 1"), "{body}");
    let unready = run_with(
        &["healthcheck", "--url", &url],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(unready.code, 1, "{}", unready.stderr);
    assert!(unready.stderr.contains("503"), "{}", unready.stderr);
    served.wait_ready(Duration::from_secs(15));
    let ready = run_with(
        &["healthcheck", "--url", &url],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(ready.code, 0, "{}", ready.stderr);
    let nobody = format!("http://127.0.0.1:{}/readyz", rig.closed);
    let down = run_with(
        &["healthcheck", "--url", &nobody],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(down.code, 1);
}

#[test]
fn sighup_reloads_refuses_a_bad_suite_and_sigterm_stops_quickly() {
    let rig = rig();
    let one = |name: &str| tcp_check(name, rig.haproxy);
    // Always in flight: SIGTERM must not wait for it.
    let hung = format!(
        "[[check]]\nname = \"hung\"\nkind = \"postgres\"\nurl = \"postgres://u@127.0.0.1:{}/app\"\ntimeout = \"60s\"\n",
        rig.silent
    );
    let suite = rig.suite(
        "serve-reload",
        &format!("{}\n{}\n{hung}", one("first"), one("second")),
    );
    let mut served = Served::start(&suite, "1s", &[]);
    served.metrics_until(Duration::from_secs(15), |m| {
        m.contains("probe_success{check=\"second\"")
    });

    rig.suite(
        "serve-reload",
        &format!("{}\n{}\n{hung}", one("first"), one("third")),
    );
    served.signal(libc::SIGHUP);
    let metrics = served.metrics_until(Duration::from_secs(10), |m| m.contains("check=\"third\""));
    assert!(
        !metrics.contains("check=\"second\""),
        "a removed check keeps its series:\n{metrics}"
    );
    assert_eq!(
        sample(&metrics, "vpc_probe_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "vpc_probe_config_reloads_total{result=\"success\"}"
        ),
        Some(1.0)
    );

    std::fs::write(&suite, "[suite]\nname = \"broken\"\n[[check]]\nname = 1\n").expect("write");
    served.signal(libc::SIGHUP);
    let metrics = served.metrics_until(Duration::from_secs(10), |m| {
        sample(m, "vpc_probe_config_last_reload_successful") == Some(0.0)
    });
    assert_eq!(
        sample(
            &metrics,
            "vpc_probe_config_reloads_total{result=\"failure\"}"
        ),
        Some(1.0)
    );
    let runs = |m: &str| {
        sample(
            m,
            "vpc_probe_check_runs_total{check=\"third\",kind=\"tcp\",result=\"success\"}",
        )
        .unwrap_or(0.0)
    };
    let before = runs(&metrics);
    served.metrics_until(Duration::from_secs(10), |m| runs(m) > before);
    assert!(served.log().contains("reload refused"));

    assert!(
        !served.get("/metrics").1.contains("check=\"hung\""),
        "hung finished?"
    );
    served.signal(libc::SIGTERM);
    let code = served.wait_exit(Duration::from_secs(5));
    assert_eq!(
        code,
        Some(0),
        "serve did not stop within 5 s of SIGTERM:\n{}",
        served.log()
    );
}

#[test]
fn a_real_prometheus_scrapes_probe_success_for_every_check() {
    let rig = rig();
    let suite = rig.suite("serve-scraped", &mixed_checks(rig));
    let served = Served::start(&suite, "1s", &[]);
    served.wait_ready(Duration::from_secs(30));
    let prometheus = observe::start_prometheus(&format!("127.0.0.1:{}", served.port));
    let expected = PASSING.len() + FAILING.len();
    let mut last = String::new();
    let found = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        last = observe::get(prometheus, "/api/v1/query?query=probe_success")
            .map(|r| r.1)
            .unwrap_or_default();
        serde_json::from_str::<Value>(&last)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
            == Some(expected)
    });
    assert!(
        found,
        "Prometheus never held probe_success for {expected} checks: {last}"
    );
    let answer: Value = serde_json::from_str(&last).expect("json");
    for series in answer["data"]["result"].as_array().expect("result") {
        let check = series["metric"]["check"].as_str().expect("check label");
        let value = series["value"][1].as_str().expect("value");
        let passing = PASSING.contains(&check);
        assert_eq!(value, if passing { "1" } else { "0" }, "{check}");
    }
}

#[test]
fn check_push_lands_in_a_real_pushgateway_under_a_stable_group() {
    let rig = rig();
    let gateway = observe::start_pushgateway();
    let suite = rig.suite("pushed", &mixed_checks(rig));
    let metadata = rig.task_metadata_url();
    let url = format!("http://127.0.0.1:{gateway}");
    let args = [
        "check",
        "--suite",
        suite.to_str().expect("path"),
        "--push",
        url.as_str(),
        "--format",
        "json",
    ];
    let envs = [(ECS_METADATA, metadata.as_str())];
    for _ in 0..2 {
        let run = run_with(&args, &envs, Duration::from_secs(60));
        assert_eq!(run.code, 1, "two checks fail on purpose: {}", run.stderr);
        assert!(
            !run.stderr.contains("push to the Pushgateway failed"),
            "{}",
            run.stderr
        );
    }
    let (status, metrics) = observe::get(gateway, "/metrics").expect("pushgateway answers");
    assert_eq!(status, 200);
    let pushed: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("probe_success{"))
        .collect();
    assert_eq!(
        pushed.len(),
        PASSING.len() + FAILING.len(),
        "two pushes, one group:\n{metrics}"
    );
    for line in &pushed {
        for label in [
            "job=\"vpc_probe\"",
            "suite=\"pushed\"",
            "availability_zone=\"us-west-2a\"",
            "subnet=\"192.0.2.0/24\"",
        ] {
            assert!(line.contains(label), "{label} missing from {line}");
        }
        assert!(
            !line.contains("task_arn"),
            "the task ARN must not be in the grouping key: {line}"
        );
        let passing = PASSING
            .iter()
            .any(|c| line.contains(&format!("check=\"{c}\"")));
        assert!(line.ends_with(if passing { " 1" } else { " 0" }), "{line}");
    }
    for secret in SECRETS {
        assert!(
            !metrics.contains(secret),
            "a secret reached the Pushgateway"
        );
    }
    let (_, groups) = observe::get(gateway, "/api/v1/metrics").expect("pushgateway API");
    let groups: Value = serde_json::from_str(&groups).expect("json");
    assert_eq!(groups["data"].as_array().map(Vec::len), Some(1), "{groups}");
}

#[test]
fn a_failed_push_fails_the_run_only_when_required() {
    let rig = rig();
    let check = tcp_check("up", rig.haproxy);
    let suite = rig.suite("push-fails", &check);
    let dead = format!("http://127.0.0.1:{}", rig.closed);
    let suite = suite.to_str().expect("path");
    let lenient = run_with(
        &["check", "--suite", suite, "--push", &dead],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    assert!(
        lenient.stderr.contains("push to the Pushgateway failed"),
        "{}",
        lenient.stderr
    );
    let strict = run_with(
        &[
            "check",
            "--suite",
            suite,
            "--push",
            &dead,
            "--push-required",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(strict.code, 1, "{}", strict.stderr);
}

#[test]
fn emf_lines_follow_the_specification_and_carry_the_zone() {
    let rig = rig();
    let suite = rig.suite("emf", &mixed_checks(rig));
    let metadata = rig.task_metadata_url();
    let args = [
        "check",
        "--suite",
        suite.to_str().expect("path"),
        "--emf",
        "--emf-namespace",
        "Glimpse/VpcProbe",
    ];
    let run = run_with(
        &args,
        &[(ECS_METADATA, metadata.as_str())],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let documents: Vec<Value> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("an EMF line is one JSON object"))
        .collect();
    assert_eq!(
        documents.len(),
        PASSING.len() + FAILING.len() + 1,
        "a line per check plus the run"
    );
    for document in &documents {
        validate_emf(document);
        assert_eq!(document["AvailabilityZone"], "us-west-2a");
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Glimpse/VpcProbe"
        );
    }
    let failed = documents
        .iter()
        .find(|d| d["Check"] == "postgres-wrong-password")
        .expect("check line");
    assert_eq!(failed["Success"], 0);
    assert_eq!(failed["Reason"], "auth_failed");
    let summary = documents.last().expect("run line");
    assert_eq!(summary["FailedChecks"], 2);
    for secret in SECRETS {
        assert!(
            !run.stdout.contains(secret),
            "a secret reached the EMF output"
        );
    }
}

const EMF_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The structural rules of the Embedded Metric Format specification.
fn validate_emf(document: &Value) {
    let root = document.as_object().expect("the root is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
    assert!(
        timestamp > 1_600_000_000_000,
        "Timestamp is in milliseconds: {timestamp}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .expect("Namespace is a string");
        assert!(!namespace.is_empty() && namespace.len() <= 255);
        let sets = directive["Dimensions"]
            .as_array()
            .expect("Dimensions is an array of arrays");
        for set in sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(
                !set.is_empty() && set.len() <= 30,
                "at most 30 dimensions per set"
            );
            for name in set {
                let name = name.as_str().expect("a dimension is a member name");
                let value = root
                    .get(name)
                    .unwrap_or_else(|| panic!("dimension {name} has no member"));
                assert!(
                    value
                        .as_str()
                        .is_some_and(|v| !v.is_empty() && v.len() <= 1024),
                    "dimension {name} is a string"
                );
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .expect("Metrics is an array");
        assert!(
            !metrics.is_empty() && metrics.len() <= 100,
            "at most 100 metrics per directive"
        );
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            assert!(root[name].is_number(), "metric {name} has a numeric member");
            if let Some(unit) = metric.get("Unit") {
                assert!(
                    EMF_UNITS.contains(&unit.as_str().expect("Unit is a string")),
                    "{unit}"
                );
            }
        }
    }
}

#[test]
fn json_report_says_where_the_task_ran_and_broken_metadata_never_blocks() {
    let rig = rig();
    let check = tcp_check("up", rig.haproxy);
    let suite = rig.suite("identity", &check);
    let args = [
        "check",
        "--suite",
        suite.to_str().expect("path"),
        "--format",
        "json",
    ];
    let metadata = rig.task_metadata_url();
    let run = run_with(
        &args,
        &[(ECS_METADATA, metadata.as_str())],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let task = &run.json()["task"];
    assert_eq!(task["cluster"], "default");
    assert_eq!(task["family"], "curltest");
    assert_eq!(task["revision"], "3");
    assert_eq!(task["availability_zone"], "us-west-2a");
    assert_eq!(task["subnet"], "192.0.2.0/24");
    assert_eq!(task["private_ip"], "192.0.2.3");

    for broken in [
        format!("http://127.0.0.1:{}/v4/x", rig.silent),
        format!("http://127.0.0.1:{}/v4/x", rig.closed),
        format!("http://127.0.0.1:{}/v4/x", rig.unhealthy_http),
    ] {
        let run = run_with(
            &args,
            &[(ECS_METADATA, broken.as_str())],
            Duration::from_secs(30),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.json()["task"].is_null());
        assert!(
            run.elapsed < Duration::from_secs(10),
            "metadata held the run for {:?}",
            run.elapsed
        );
    }
}
