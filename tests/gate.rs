//! `vpc-probe gate` against the ECS + CloudWatch Logs stand-in, which
//! really runs each task's one-shot `check` (in its subnet's network
//! namespace, for the topology rows) and turns its output into awslogs
//! events. The repository's own task-definition.json is registered.
//! Rows: a healthy pair of subnets, a route missing from subnet B and a
//! NACL in subnet B (the two-VPC topology), a task that fails to start,
//! RunTask denied, SIGTERM mid-run, and `--service`.

mod rig;

use rig::ecs::Ecs;
use rig::probe::{binary, run_with, Run};
use rig::topology::{self, Topology};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One topology change at a time: the rows share one topology.
static TURN: Mutex<()> = Mutex::new(());

const CLUSTER: &str = "glimpse";
const REGION: &str = "eu-west-1";
const SUBNET_A: &str = "subnet-0aaa1111";
const SUBNET_B: &str = "subnet-0bbb2222";
const ZONE_A: &str = "eu-west-1a";
const ZONE_B: &str = "eu-west-1b";
const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "AKIDGATETEST"),
    ("AWS_SECRET_ACCESS_KEY", "gate-test-secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A suite file of the test's own (the "image" is this machine).
fn suite_file(tag: &str, text: &str) -> PathBuf {
    let dir = rig::process::scratch_dir(&format!("gate-{tag}")).unwrap();
    let path = dir.join("suite.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The stand-in, with the repository's task definition registered; each
/// subnet maps to a namespace (or to this host's, `None`).
fn ecs(tag: &str, subnets: &[(&str, &str, Option<String>)], extra: Value) -> (Ecs, String) {
    let mut config = json!({
        "binary": std::fs::canonicalize(binary()).unwrap(),
        "region": REGION,
        "subnets": {},
        "services": {},
        "secrets": {},
        "page_size": 3,
    });
    for (subnet, zone, namespace) in subnets {
        config["subnets"][subnet] = json!({"az": zone, "namespace": namespace});
    }
    if let (Some(into), Some(from)) = (config.as_object_mut(), extra.as_object()) {
        for (key, value) in from {
            into.insert(key.clone(), value.clone());
        }
    }
    let ecs = Ecs::start(tag, &config).unwrap_or_else(|err| panic!("{err}"));
    let registered = ecs.register(|_| {}).unwrap_or_else(|err| panic!("{err}"));
    let arn = registered["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    (ecs, arn)
}

/// `vpc-probe gate` on `subnets`, JSON on stdout, bounded at 3 minutes.
fn gate(ecs: &Ecs, suite: &Path, subnets: &[&str], extra: &[&str]) -> (Run, Value) {
    let subnets = subnets.join(",");
    let mut args = vec![
        "gate",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "vpc-probe",
        "--subnets",
        &subnets,
        "--security-groups",
        "sg-0probe",
        "--task-suite",
        suite.to_str().unwrap(),
        "--region",
        REGION,
        "--endpoint-url",
        &ecs.endpoint,
    ];
    args.extend_from_slice(extra);
    if !extra.contains(&"--format") {
        args.extend_from_slice(&["--format", "json"]);
    }
    let run = run_with(&args, &CREDENTIALS, Duration::from_secs(180));
    let report = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run, report)
}

fn subnet<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["subnets"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["subnet"] == id))
        .unwrap_or_else(|| panic!("no subnet {id}: {report:#}"))
}

/// The check's result in a subnet's report: "pass" or its reason.
fn cell(report: &Value, id: &str, check: &str) -> String {
    let checks = subnet(report, id)["report"]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let found = checks.iter().find(|c| c["name"] == check);
    match found {
        Some(c) if c["success"] == true => "pass".into(),
        Some(c) => c["reason"].as_str().unwrap_or("?").into(),
        None => "no report".into(),
    }
}

/// A loopback suite for the rows that need no topology: a closed port that
/// must stay closed passes.
fn loopback_suite(tag: &str) -> PathBuf {
    let port = rig::process::free_port().unwrap();
    suite_file(
        tag,
        &format!("[[check]]\nname = \"closed\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\nexpect = \"unreachable\"\n"),
    )
}

#[test]
fn a_task_that_fails_to_start_is_judged_from_what_ecs_says() {
    let reason = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): failed to fetch secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:glimpse/production/vpc-probe-AbCdEf from secrets manager: RequestCanceled: request context canceled caused by: context deadline exceeded: dial tcp 10.20.2.40:443: i/o timeout";
    let subnets = [(SUBNET_A, ZONE_A, None), (SUBNET_B, ZONE_B, None)];
    let (ecs, _) = ecs(
        "fail-start",
        &subnets,
        json!({"fail_start": {SUBNET_B: reason}}),
    );
    let suite = loopback_suite("fail-start");
    // A third subnet ECS does not know: RunTask starts nothing there.
    let unknown = "subnet-0ccc3333";
    let (run, report) = gate(&ecs, &suite, &[SUBNET_A, SUBNET_B, unknown], &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(cell(&report, SUBNET_A, "closed"), "pass", "{report:#}");
    let not_started = &subnet(&report, unknown)["no_report"];
    assert_eq!(not_started["why"], "not_started", "{report:#}");
    assert!(
        not_started["stopped_reason"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{report:#}"
    );
    let missing = &subnet(&report, SUBNET_B)["no_report"];
    assert_eq!(missing["why"], "services_unreachable", "{report:#}");
    assert_eq!(missing["stop_code"], "TaskFailedToStart");
    assert_eq!(missing["stopped_reason"], reason, "quoted verbatim");
    let hint = missing["hint"].as_str().unwrap();
    assert!(
        hint.contains("VPC endpoints") && hint.contains("NAT"),
        "{hint}"
    );
}

#[test]
fn run_task_denied_exits_2_naming_the_action_and_the_principal() {
    let subnets = [(SUBNET_A, ZONE_A, None)];
    let (ecs, _) = ecs("denied", &subnets, json!({"deny": ["RunTask"]}));
    let suite = loopback_suite("denied");
    let (run, _) = gate(&ecs, &suite, &[SUBNET_A], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("ecs:RunTask denied"), "{}", run.stderr);
    assert!(
        run.stderr.contains("assumed-role/ci-deploy/gate"),
        "the principal: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn sigterm_mid_run_stops_every_task_it_started() {
    let subnets = [(SUBNET_A, ZONE_A, None), (SUBNET_B, ZONE_B, None)];
    let (ecs, _) = ecs("sigterm", &subnets, json!({}));
    let silent = rig::fixture::spawn(rig::fixture::Mode::Silent).unwrap();
    // Each task holds a session idle for a minute: still running when the
    // gate is stopped.
    let suite = suite_file(
        "sigterm",
        &format!("[[check]]\nname = \"held\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {silent}\nidle = \"60s\"\n"),
    );
    let subnets = format!("{SUBNET_A},{SUBNET_B}");
    let mut child = Command::new(binary())
        .args([
            "gate",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "vpc-probe",
            "--subnets",
            &subnets,
        ])
        .args([
            "--security-groups",
            "sg-0probe",
            "--task-suite",
            suite.to_str().unwrap(),
        ])
        .args([
            "--region",
            REGION,
            "--endpoint-url",
            &ecs.endpoint,
            "--format",
            "json",
        ])
        .envs(CREDENTIALS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both tasks running (on a loaded machine a fixed sleep was not enough
    // for the second to start), then a moment for their probes to begin.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = ecs.state().unwrap();
        let tasks = state["tasks"].as_array().cloned().unwrap_or_default();
        if tasks.len() == 2 && tasks.iter().all(|t| t["lastStatus"] == "RUNNING") {
            break;
        }
        assert!(Instant::now() < deadline, "tasks not running: {state:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A probe installs its SIGTERM handler within milliseconds of its
    // start; two seconds leave room on a loaded machine.
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: SIGTERM to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(60),
            "the gate outlived SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let state = ecs.state().unwrap();
    let stops = state["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2, "a StopTask for each task: {state:#}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = ecs.state().unwrap();
        let tasks = state["tasks"].as_array().unwrap().clone();
        if tasks.iter().all(|t| t["lastStatus"] == "STOPPED") {
            assert!(
                tasks.iter().all(|t| t["stopCode"] == "UserInitiated"),
                "{state:#}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "tasks still running: {state:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    // Each task's probe, stopped by ECS's SIGTERM, still reported: interrupted.
    for id in [SUBNET_A, SUBNET_B] {
        assert_eq!(cell(&report, id, "held"), "interrupted", "{report:#}");
    }
}

/// The topology's suite for the gate: the HAProxy name over TCP and the
/// Redis address, through the VPC resolver.
fn topology_suite() -> PathBuf {
    suite_file(
        "topology",
        &format!(
            "[suite]\nname = \"gate\"\nresolver = \"{}\"\ntimeout = \"2s\"\n\n\
             [[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"{}\"\nport = 5432\n\n\
             [[check]]\nname = \"redis-tcp\"\nkind = \"tcp\"\nhost = \"{}\"\nport = 6379\n",
            topology::RESOLVER,
            rig::HAPROXY_NAME,
            topology::REDIS
        ),
    )
}

/// The stand-in with subnets A and B in the topology's namespaces.
fn topology_ecs(topology: &Topology, tag: &str, extra: Value) -> (Ecs, String) {
    let subnets = [
        (SUBNET_A, ZONE_A, Some(topology.namespace("a"))),
        (SUBNET_B, ZONE_B, Some(topology.namespace("b"))),
    ];
    ecs(tag, &subnets, extra)
}

#[test]
fn two_healthy_subnets_pass_naming_both_zones() {
    let Some(topology) = topology::topology() else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let (ecs, _) = topology_ecs(topology, "healthy", json!({}));
    let (run, report) = gate(&ecs, &topology_suite(), &[SUBNET_A, SUBNET_B], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for (id, zone) in [(SUBNET_A, ZONE_A), (SUBNET_B, ZONE_B)] {
        assert_eq!(subnet(&report, id)["availability_zone"], zone, "{report:#}");
        for check in ["haproxy-tcp", "redis-tcp"] {
            assert_eq!(
                cell(&report, id, check),
                "pass",
                "{check} in {id}: {report:#}"
            );
        }
    }
    let text = gate(
        &ecs,
        &topology_suite(),
        &[SUBNET_A, SUBNET_B],
        &["--format", "text"],
    )
    .0;
    println!("{}", text.stdout);
    for word in [SUBNET_A, SUBNET_B, ZONE_A, ZONE_B, "haproxy-tcp", "PASS"] {
        assert!(text.stdout.contains(word), "{word}: {}", text.stdout);
    }
}

/// A fault made in subnet B's namespace (and undone after): the check
/// fails only there, and the diagnosis points at B's own path.
fn only_subnet_b_fails(tag: &str, apply: &[&str], revert: &[&str], reason: &str) {
    let Some(topology) = topology::topology() else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let (ecs, _) = topology_ecs(topology, tag, json!({}));
    topology.exec("b", apply).unwrap();
    let junit = rig::process::scratch_dir(&format!("gate-junit-{tag}"))
        .unwrap()
        .join("gate.xml");
    let (run, report) = gate(
        &ecs,
        &topology_suite(),
        &[SUBNET_A, SUBNET_B],
        &["--junit", junit.to_str().unwrap()],
    );
    let html = rig::process::scratch_dir(&format!("gate-page-{tag}"))
        .unwrap()
        .join("gate.html");
    let text = gate(
        &ecs,
        &topology_suite(),
        &[SUBNET_A, SUBNET_B],
        &["--format", "text", "--html", html.to_str().unwrap()],
    )
    .0;
    println!("{}", text.stdout);
    topology.exec("b", revert).unwrap();
    page_fits(&html);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(cell(&report, SUBNET_A, "haproxy-tcp"), "pass", "{report:#}");
    assert_eq!(cell(&report, SUBNET_B, "haproxy-tcp"), reason, "{report:#}");
    let diagnosis = report["diagnosis"].as_array().unwrap();
    let haproxy = diagnosis
        .iter()
        .find(|d| d["check"] == "haproxy-tcp")
        .expect("a diagnosis");
    assert_eq!(haproxy["scope"], "some_subnets", "{haproxy:#}");
    assert_eq!(
        haproxy["failing"],
        json!([format!("{SUBNET_B} ({ZONE_B})")])
    );
    assert!(
        haproxy["says"].as_str().unwrap().contains("route table"),
        "{haproxy:#}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!("<testsuite name=\"{SUBNET_B}\"")),
        "{xml}"
    );
}

#[test]
fn a_route_missing_from_subnet_b_fails_only_there() {
    only_subnet_b_fails(
        "route-b",
        &["ip", "route", "del", "10.0.0.0/16"],
        &["ip", "route", "add", "10.0.0.0/16", "via", "10.20.2.1"],
        "connect_unreachable",
    );
}

#[test]
fn a_nacl_in_subnet_b_fails_only_there() {
    let rule = [
        "-p",
        "tcp",
        "--dport",
        "5432",
        "-d",
        topology::HAPROXY,
        "-j",
        "DROP",
    ];
    let apply: Vec<&str> = ["iptables", "-I", "OUTPUT"]
        .into_iter()
        .chain(rule)
        .collect();
    let revert: Vec<&str> = ["iptables", "-D", "OUTPUT"]
        .into_iter()
        .chain(rule)
        .collect();
    only_subnet_b_fails("nacl-b", &apply, &revert, "connect_timeout");
}

#[test]
fn service_mode_takes_the_services_subnets_and_groups() {
    let Some(topology) = topology::topology() else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let service = json!({"services": {format!("{CLUSTER}/app"): {
        "taskDefinition": "vpc-probe",
        "subnets": [SUBNET_A, SUBNET_B],
        "securityGroups": ["sg-0app"],
    }}});
    let (ecs, _) = topology_ecs(topology, "service", service);
    let suite = topology_suite();
    let args = [
        "gate",
        "--cluster",
        CLUSTER,
        "--service",
        "app",
        "--task-suite",
        suite.to_str().unwrap(),
        "--region",
        REGION,
        "--endpoint-url",
        &ecs.endpoint,
        "--format",
        "json",
    ];
    let run = run_with(&args, &CREDENTIALS, Duration::from_secs(180));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = report["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["subnet"].as_str())
        .collect();
    assert_eq!(ids, [SUBNET_A, SUBNET_B]);
}

/// The gate's page (`--html`) from a run with a failing subnet renders in
/// headless Chromium with nothing sticking out at three widths.
fn page_fits(html: &Path) {
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains(SUBNET_B) && page.contains("haproxy-tcp"),
        "{page}"
    );
    let png = html.with_extension("png");
    rig::chromium::screenshot(html, &png).expect("headless Chromium renders the page");
    for width in [1280, 1024, 800] {
        let sticking_out = rig::chromium::overflow(html, width).expect("measured in Chromium");
        assert!(sticking_out.is_empty(), "at {width}px: {sticking_out:?}");
    }
}

/// The static pass: given a local suite with `[aws]` (the offline AWS,
/// where subnet B's route table lacks the peering route), each subnet's
/// paths are judged from the describes, with the tasks' security groups,
/// before any task runs: subnet B's row names its route table.
#[test]
fn the_static_pass_names_subnet_bs_route_table() {
    let moto =
        rig::moto::Moto::start("route_missing_from_b", &[]).unwrap_or_else(|err| panic!("{err}"));
    let (a, b) = (moto.id("subnet_a"), moto.id("subnet_b"));
    let subnets = [(a.as_str(), ZONE_A, None), (b.as_str(), ZONE_B, None)];
    let (ecs, _) = ecs("static", &subnets, json!({}));
    let resolver = format!("127.0.0.1:{}", rig::process::free_udp_port().unwrap());
    let local = suite_file(
        "static-local",
        &format!(
            "[suite]\nname = \"static\"\nresolver = \"{resolver}\"\n{}\n\
             [[check]]\nname = \"haproxy-rw\"\nkind = \"tcp\"\nhost = \"{}\"\nport = 5432\n",
            moto.table(&a, ""),
            rig::HAPROXY_NAME
        ),
    );
    let task_suite = loopback_suite("static-task");
    let groups = moto.id("sg_tasks");
    let subnets = format!("{a},{b}");
    let args = [
        "gate",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "vpc-probe",
        "--subnets",
        &subnets,
        "--security-groups",
        &groups,
        "--task-suite",
        task_suite.to_str().unwrap(),
        "--suite",
        local.to_str().unwrap(),
        "--region",
        REGION,
        "--endpoint-url",
        &ecs.endpoint,
    ];
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let run = run_with(
        &json_args,
        &rig::moto::CREDENTIALS,
        Duration::from_secs(180),
    );
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", run.stdout, run.stderr));
    let row = |subnet: &str| {
        let paths = report["static_pass"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subnet"] == subnet)
            .cloned()
            .unwrap();
        paths["paths"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["check"] == "haproxy-rw")
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&a)["verdict"], "reachable", "{report:#}");
    let blocked = row(&b);
    assert_eq!(blocked["verdict"], "blocked", "{blocked:#}");
    let rtb = moto.id("rtb_b");
    assert!(
        blocked["evidence"]["findings"].to_string().contains(&rtb),
        "{blocked:#}"
    );
    let text = run_with(&args, &rig::moto::CREDENTIALS, Duration::from_secs(180));
    assert!(
        text.stdout
            .contains("before any task ran, the describes said:"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("{b}: haproxy-rw blocked (no_route")),
        "{}",
        text.stdout
    );
}
