//! Path evidence against the offline AWS: moto in server mode on a loopback
//! port, with the two accounts of tests/rig/aws_world.py mirroring the
//! network-namespace topology. Each fault is its own test and asserts the
//! finding's code and the object's id; `paths` sends no traffic at all, so
//! these tests only ever talk to moto on 127.0.0.1.

mod rig;

use rig::moto::{Moto, CREDENTIALS};
use rig::namespace::Namespace;
use rig::probe::{run_with, Run};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// The production shape's checks, by the addresses and names of the topology.
const CHECKS: &str = r#"
[[check]]
name = "haproxy-rw"
kind = "tcp"
host = "production-haproxy.timescale.glimpse.internal"
port = 5432

[[check]]
name = "haproxy-dns"
kind = "dns"
host = "production-haproxy.timescale.glimpse.internal"

[[check]]
name = "patroni-direct"
kind = "tcp"
host = "10.0.1.21"
port = 5432
expect = "unreachable"

[[check]]
name = "patroni-api"
kind = "tcp"
host = "10.0.1.22"
port = 8008
expect = "unreachable"

[[check]]
name = "redis"
kind = "tcp"
host = "10.0.2.10"
port = 6379
"#;

/// The task's address in subnet A; subnet B has no task yet.
const TASK_A: &str = "10.20.1.10";
const SUBNET_B_ADDRESS: &str = "10.20.2.10";

fn suite(moto: &Moto, source: &str, extra: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("suite file");
    let text = format!(
        "[suite]\nname = \"aws\"\nresolver = \"{}\"\n{}\n{CHECKS}",
        silent_resolver(),
        moto.table(source, extra)
    );
    file.write_all(text.as_bytes()).expect("write suite");
    file
}

/// A loopback resolver nobody answers: if `paths` ever asked one (a name
/// no private zone holds), the query stays on loopback.
fn silent_resolver() -> String {
    format!(
        "127.0.0.1:{}",
        rig::process::free_udp_port().expect("a free UDP port")
    )
}

fn paths(moto: &Moto, source: &str) -> Run {
    let file = suite(moto, source, "");
    let path = file.path().to_str().expect("utf-8");
    run_with(
        &["paths", "--suite", path, "--format", "json"],
        &CREDENTIALS,
        Duration::from_secs(60),
    )
}

fn row(run: &Run, check: &str) -> Value {
    let report = run.json();
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["check"] == check)
        .cloned()
        .unwrap_or_else(|| panic!("no row {check}: {report}"))
}

/// One fault of the world: the check it shows in, the verdict, the
/// finding's code, and the world key of the object it must name.
struct Row {
    fault: &'static str,
    source: &'static str,
    check: &'static str,
    verdict: &'static str,
    code: &'static str,
    object: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        fault: "sg_drops_haproxy",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "sg_ingress_missing",
        object: "sg_haproxy",
    },
    Row {
        fault: "redis_sg_missing",
        source: TASK_A,
        check: "redis",
        verdict: "blocked",
        code: "sg_ingress_missing",
        object: "sg_redis",
    },
    Row {
        fault: "sg_egress_missing",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "sg_egress_missing",
        object: "sg_tasks",
    },
    Row {
        fault: "egress_by_wrong_prefix_list",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "sg_egress_missing",
        object: "sg_tasks",
    },
    Row {
        fault: "route_missing_from_b",
        source: SUBNET_B_ADDRESS,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "no_route",
        object: "rtb_b",
    },
    Row {
        fault: "route_missing_from_a",
        source: TASK_A,
        check: "redis",
        verdict: "blocked",
        code: "no_route",
        object: "rtb_a",
    },
    Row {
        fault: "return_route_missing",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "return_route_missing",
        object: "rtb_db",
    },
    Row {
        fault: "blackhole_route",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "blackhole_route",
        object: "rtb_a",
    },
    Row {
        fault: "more_specific_route",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "more_specific_route",
        object: "rtb_a",
    },
    Row {
        fault: "nacl_deny_below_allow",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "nacl_denied",
        object: "app_acl",
    },
    Row {
        fault: "nacl_drops_returns",
        source: TASK_A,
        check: "redis",
        verdict: "blocked",
        code: "nacl_return_blocked",
        object: "app_acl",
    },
    Row {
        fault: "peering_pending",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "peering_not_active",
        object: "pcx_pending",
    },
    Row {
        fault: "peering_deleted",
        source: TASK_A,
        check: "redis",
        verdict: "blocked",
        code: "blackhole_route",
        object: "rtb_a",
    },
    Row {
        fault: "dns_public_ip",
        source: TASK_A,
        check: "haproxy-dns",
        verdict: "blocked",
        code: "peering_dns_resolution_off",
        object: "pcx",
    },
    Row {
        fault: "vpc_dns_off",
        source: TASK_A,
        check: "haproxy-dns",
        verdict: "blocked",
        code: "vpc_dns_off",
        object: "app_vpc",
    },
    Row {
        fault: "zone_not_associated",
        source: TASK_A,
        check: "haproxy-dns",
        verdict: "blocked",
        code: "zone_not_associated",
        object: "zone",
    },
    Row {
        fault: "sg_too_wide_patroni_node",
        source: TASK_A,
        check: "patroni-direct",
        verdict: "allowed_but_should_not_be",
        code: "allowed_by_rule",
        object: "sg_patroni",
    },
    Row {
        fault: "sg_too_wide_patroni_api",
        source: TASK_A,
        check: "patroni-api",
        verdict: "allowed_but_should_not_be",
        code: "allowed_by_rule",
        object: "sg_patroni",
    },
    Row {
        fault: "transit_gateway_without_route",
        source: TASK_A,
        check: "haproxy-rw",
        verdict: "blocked",
        code: "tgw_attachment_missing",
        object: "tgw",
    },
];

fn fault_row(fault: &str) {
    let row_of = ROWS.iter().find(|r| r.fault == fault).expect("a row");
    if let Some(cause) = rig::causes::cause(fault) {
        assert_eq!(
            cause.code, row_of.code,
            "tests/rig/causes.rs and this row disagree on {fault}"
        );
    }
    let moto = Moto::start(fault, &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = paths(&moto, row_of.source);
    assert_eq!(
        run.code, 1,
        "a fault fails the paths gate\n{}\n{}",
        run.stdout, run.stderr
    );
    let got = row(&run, row_of.check);
    assert_eq!(got["verdict"], row_of.verdict, "{got:#}");
    let object = moto.id(row_of.object);
    let findings = got["evidence"]["findings"].as_array().expect("findings");
    let named = findings
        .iter()
        .find(|f| f["code"] == row_of.code)
        .unwrap_or_else(|| panic!("no {} finding: {got:#}", row_of.code));
    let names_it = named["object"]
        .as_str()
        .unwrap_or_default()
        .contains(&object)
        || named["explanation"]
            .as_str()
            .unwrap_or_default()
            .contains(&object);
    assert!(names_it, "the finding must name {object}: {named:#}");
    let fix = named["fix"].as_str().unwrap_or_default();
    assert!(
        row_of.code == "more_specific_route"
            || row_of.code == "hop_not_followed"
            || fix.starts_with("aws ")
            || named["code"] == "peering_not_active",
        "a runnable fix: {named:#}"
    );
    assert!(
        !run.stdout.contains(CREDENTIALS[1].1) && !run.stderr.contains(CREDENTIALS[1].1),
        "no secret in output"
    );
}

fault_rows!(
    sg_drops_haproxy,
    redis_sg_missing,
    sg_egress_missing,
    egress_by_wrong_prefix_list,
    route_missing_from_b,
    route_missing_from_a,
    return_route_missing,
    blackhole_route,
    more_specific_route,
    nacl_deny_below_allow,
    nacl_drops_returns,
    peering_pending,
    peering_deleted,
    dns_public_ip,
    vpc_dns_off,
    zone_not_associated,
    sg_too_wide_patroni_node,
    sg_too_wide_patroni_api,
    transit_gateway_without_route,
);

#[test]
fn every_aws_fault_row_has_a_test_of_its_own() {
    let rows: Vec<&str> = ROWS.iter().map(|r| r.fault).collect();
    assert_eq!(rows, FAULT_ROWS, "add the new row to fault_rows!");
}

#[test]
fn an_egress_rule_naming_a_prefix_list_opens_what_the_list_holds() {
    let moto = Moto::start("egress_by_prefix_list", &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = paths(&moto, TASK_A);
    assert_eq!(
        row(&run, "haproxy-rw")["verdict"],
        "reachable",
        "{}",
        run.stdout
    );
    let redis = row(&run, "redis");
    assert_eq!(
        redis["verdict"], "blocked",
        "the list's rule is for 5432 only: {redis:#}"
    );
    assert_eq!(
        redis["evidence"]["findings"][0]["code"],
        "sg_egress_missing"
    );
}

#[test]
fn the_healthy_world_passes_every_path() {
    let moto = Moto::start("healthy", &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = paths(&moto, TASK_A);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let verdicts: Vec<(String, String)> = run.json()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("haproxy-rw", "reachable"),
        ("haproxy-dns", "reachable"),
        ("patroni-direct", "closed"),
        ("patroni-api", "closed"),
        ("redis", "reachable"),
    ];
    assert_eq!(verdicts, want.map(|(a, b)| (a.to_string(), b.to_string())));
    // A handful of calls for the whole suite, not one set per check.
    let calls = run.json()["calls"].as_u64().unwrap();
    assert!(calls <= 40, "{calls} describe calls");
}

/// The world's Redis address: inside a namespace of the test's own it is
/// a loopback address nothing listens on, so a check to it fails
/// (connect_refused) without a packet leaving the namespace, and the
/// describes explain it as the path from the task in subnet A.
const FAILING: &str = "10.0.2.10:6379";

/// A namespace of the test's own holding [`FAILING`]'s address, and the
/// offline AWS served inside it (moto, with `fault`), when asked for;
/// `None` when namespaces cannot be made here (not root, outside CI).
struct Inside {
    ns: Namespace,
    moto: Option<Moto>,
}

impl Inside {
    fn new(tag: &str, fault: Option<&str>) -> Option<Inside> {
        let ns = Namespace::create(tag)?;
        let address = FAILING.split(':').next().unwrap();
        ns.exec(&["ip", "addr", "add", &format!("{address}/32"), "dev", "lo"]);
        let moto = fault.map(|fault| {
            Moto::start(fault, &self::wrap(&ns)).unwrap_or_else(|err| panic!("{err}"))
        });
        Some(Inside { ns, moto })
    }

    fn moto(&self) -> &Moto {
        self.moto.as_ref().expect("moto inside the namespace")
    }

    /// A deny fixture in front of the namespace's moto.
    fn denying(&self, actions: &[&str]) -> (String, rig::process::Daemon) {
        self.moto()
            .denying(actions, &wrap(&self.ns))
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `vpc-probe ARGS` inside the namespace with `envs`, bounded at 60 s.
    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let started = std::time::Instant::now();
        let child = self
            .ns
            .command("timeout")
            .args(["60", rig::probe::binary()])
            .args(args)
            .env_remove("VPC_PROBE_SUITE")
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("vpc-probe in a namespace");
        rig::namespace::finish(child, started)
    }
}

/// The words that run a command inside `ns`.
fn wrap(ns: &Namespace) -> [&str; 4] {
    ["ip", "netns", "exec", ns.name.as_str()]
}

/// A check to [`FAILING`], explained from the world as if it ran from
/// the task in subnet A; `endpoint` serves the describes.
fn failing_check(inside: &Inside, endpoint: &str, explain: &str, envs: &[(&str, &str)]) -> Run {
    failing_check_with(inside, endpoint, explain, envs, &["--format", "json"])
}

/// The suite of [`failing_check`]: one tcp check to [`FAILING`].
fn failing_suite(endpoint: &str, explain: &str) -> tempfile::NamedTempFile {
    let (host, port) = FAILING.split_once(':').unwrap();
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("suite file");
    let text = format!(
        "[aws]\nregion = \"{}\"\nendpoint_url = \"{endpoint}\"\npeer_role_arn = \"{}\"\nsource = \"{TASK_A}\"\n{explain}\n\
         [[check]]\nname = \"local\"\nkind = \"tcp\"\nhost = \"{host}\"\nport = {port}\ntimeout = \"2s\"\n",
        rig::moto::REGION,
        rig::moto::ROLE
    );
    file.write_all(text.as_bytes()).expect("write suite");
    file
}

fn failing_check_with(
    inside: &Inside,
    endpoint: &str,
    explain: &str,
    envs: &[(&str, &str)],
    args: &[&str],
) -> Run {
    let file = failing_suite(endpoint, explain);
    let path = file.path().to_str().expect("utf-8").to_string();
    let mut all = vec!["check", "--suite", &path];
    all.extend_from_slice(args);
    inside.run(&all, envs)
}

/// The check's own verdict, whatever the describes said.
fn assert_unchanged(run: &Run) -> Value {
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let check = run.check("local");
    assert_eq!(check["reason"], "connect_refused", "{check:#}");
    check
}

#[test]
fn a_describe_the_policy_leaves_out_gives_one_line_and_an_unchanged_result() {
    let Some(inside) = Inside::new("aws-deny-nacl", Some("healthy")) else {
        return;
    };
    let (endpoint, _deny) = inside.denying(&["DescribeNetworkAcls"]);
    let check = assert_unchanged(&failing_check(&inside, &endpoint, "", &CREDENTIALS));
    let evidence = &check["evidence"];
    let skipped = evidence["skipped"].as_str().unwrap_or_default();
    assert!(
        skipped.contains("ec2:DescribeNetworkAcls denied"),
        "{evidence:#}"
    );
    let denied = evidence["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "access_denied")
        .cloned();
    assert_eq!(
        denied.map(|f| f["object"].clone()),
        Some(Value::from("ec2:DescribeNetworkAcls")),
        "{evidence:#}"
    );
}

#[test]
fn a_peer_role_that_cannot_be_assumed_gives_one_line_and_an_unchanged_result() {
    let Some(inside) = Inside::new("aws-deny-role", Some("healthy")) else {
        return;
    };
    let (endpoint, _deny) = inside.denying(&["AssumeRole"]);
    let check = assert_unchanged(&failing_check(&inside, &endpoint, "", &CREDENTIALS));
    let skipped = check["evidence"]["skipped"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        skipped.contains("sts:AssumeRole denied in account 222222222222"),
        "{check:#}"
    );
}

#[test]
fn without_credentials_the_explanation_is_skipped_quickly_and_the_result_stands() {
    let Some(inside) = Inside::new("aws-no-creds", None) else {
        return;
    };
    let home = tempfile::tempdir().expect("an empty home");
    let home = home.path().to_str().expect("utf-8").to_string();
    let envs = [
        ("HOME", home.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    // Nothing listens at the endpoint: no call may be needed to say why.
    let endpoint = format!("http://127.0.0.1:{}", rig::process::free_port().unwrap());
    let run = failing_check(&inside, &endpoint, "", &envs);
    let check = assert_unchanged(&run);
    let skipped = check["evidence"]["skipped"].as_str().unwrap_or_default();
    assert!(skipped.contains("no AWS credentials"), "{check:#}");
    assert!(
        run.elapsed < Duration::from_secs(15),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn explain_never_reads_nothing() {
    let Some(inside) = Inside::new("aws-never", None) else {
        return;
    };
    let endpoint = format!("http://127.0.0.1:{}", rig::process::free_port().unwrap());
    let check = assert_unchanged(&failing_check(
        &inside,
        &endpoint,
        "explain = \"never\"",
        &CREDENTIALS,
    ));
    assert!(check.get("evidence").is_none(), "{check:#}");
}

#[test]
fn a_failing_check_carries_its_findings_in_json_text_and_junit() {
    let Some(inside) = Inside::new("aws-findings", Some("healthy")) else {
        return;
    };
    let endpoint = inside.moto().endpoint.clone();
    let check = assert_unchanged(&failing_check(&inside, &endpoint, "", &CREDENTIALS));
    let findings = check["evidence"]["findings"]
        .as_array()
        .expect("findings")
        .clone();
    // The healthy world lets tcp/6379 through both ways: look elsewhere.
    let codes: Vec<&str> = findings.iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(codes, ["path_open"], "{check:#}");
    assert_eq!(findings[0]["object"], FAILING, "{check:#}");
    let junit = tempfile::Builder::new().suffix(".xml").tempfile().unwrap();
    let junit_path = junit.path().to_str().unwrap().to_string();
    let args = ["--junit", junit_path.as_str()];
    let text = failing_check_with(&inside, &endpoint, "", &CREDENTIALS, &args);
    let line = format!("- path_open {FAILING}");
    assert!(
        text.stdout.contains("local: what AWS says") && text.stdout.contains(&line),
        "{}",
        text.stdout
    );
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(xml.contains(&format!("path_open {FAILING}")), "{xml}");
}

/// A destination that never enters the VPC (loopback here; link-local
/// addresses are judged the same, in evidence::ask's unit rows) gets no
/// finding and costs no describe: nothing in the VPC decides its fate.
#[test]
fn a_loopback_destination_is_not_a_vpc_path() {
    let port = rig::process::free_port().unwrap();
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    // Nothing listens at the endpoint either: a describe would fail loudly.
    let endpoint = format!("http://127.0.0.1:{}", rig::process::free_port().unwrap());
    let text = format!(
        "[aws]\nregion = \"{}\"\nendpoint_url = \"{endpoint}\"\nsource = \"{TASK_A}\"\n\
         [[check]]\nname = \"loopback\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout = \"2s\"\n",
        rig::moto::REGION
    );
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let run = run_with(
        &["check", "--suite", path, "--format", "json"],
        &CREDENTIALS,
        Duration::from_secs(60),
    );
    let check = run.check("loopback");
    assert_eq!(check["reason"], "connect_refused", "{check:#}");
    let evidence = &check["evidence"];
    assert!(
        evidence["findings"].as_array().is_none_or(|f| f.is_empty()),
        "{evidence:#}"
    );
    let skipped = evidence["skipped"].as_str().unwrap_or_default();
    assert!(
        skipped.contains("127.0.0.1 is loopback: the path never enters the VPC"),
        "{evidence:#}"
    );
}

#[test]
fn the_task_roles_credentials_come_from_the_ecs_container_endpoint() {
    let moto = Moto::start("healthy", &[]).unwrap_or_else(|err| panic!("{err}"));
    let (url, served) = rig::fixture::container_credentials();
    let home = tempfile::tempdir().expect("an empty home");
    let home = home.path().to_str().unwrap().to_string();
    let envs = [
        ("HOME", home.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.as_str()),
    ];
    let file = suite(&moto, TASK_A, "");
    let path = file.path().to_str().unwrap();
    let run = run_with(
        &["paths", "--suite", path, "--format", "json"],
        &envs,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        served.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the container endpoint was asked"
    );
    for secret in ["task-role-secret", "task-role-token"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn serve_exports_each_finding_of_its_failing_checks() {
    let Some(inside) = Inside::new("aws-serve", Some("redis_sg_missing")) else {
        return;
    };
    let suite = failing_suite(&inside.moto().endpoint, "");
    let port = rig::process::free_port().unwrap();
    let mut serve = inside
        .ns
        .command(rig::probe::binary())
        .args(["serve", "--suite", suite.path().to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "5s"])
        .env_remove("VPC_PROBE_SUITE")
        .env_remove("ECS_CONTAINER_METADATA_URI_V4")
        .envs(CREDENTIALS)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve in a namespace");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let want = "vpc_probe_finding{check=\"local\",code=\"sg_ingress_missing\",object=\"sg-";
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline && !text.contains(want) {
        std::thread::sleep(Duration::from_millis(200));
        let scraped = inside
            .ns
            .command("curl")
            .args(["-s", "-m", "5", &url])
            .output();
        text = scraped
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(text.contains(want), "{text}");
    assert!(!text.contains(CREDENTIALS[1].1), "no secret in /metrics");
}

/// An AWS endpoint that misbehaves; each is its own named test, run
/// through `paths` (on loopback) and through `check` with `[aws]` (inside
/// a namespace, where the failing check's path lies).
#[derive(Clone, Copy)]
enum Broken {
    /// HTTP 500 with a plain-text body, every time.
    Error500,
    /// 200 with bytes that are not XML.
    Garbage,
    /// 200 and a body that never ends.
    Endless,
    /// Accepts and never answers.
    Silent,
    /// 200 text/html: a proxy's or a portal's page.
    Html,
}

const HTML_PAGE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 68\r\nConnection: close\r\n\r\n<html><head><title>Portal</title></head><body>Sign in</body></html>\n";

impl Broken {
    /// A server behaving so, on a free loopback port (of the calling
    /// thread's namespace).
    fn spawn(self) -> u16 {
        use rig::hostile::{spawn, Behaviour};
        match self {
            Broken::Error500 => spawn(Behaviour::Answer(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\noops!\n",
            )),
            Broken::Garbage => spawn(Behaviour::Answer(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 8\r\nConnection: close\r\n\r\n\x00\x01\x02garbg",
            )),
            Broken::Endless => spawn(Behaviour::Flood {
                prefix: b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<GetCallerIdentityResponse>",
                filler: b'a',
            }),
            Broken::Silent => rig::fixture::spawn(rig::fixture::Mode::Silent).unwrap(),
            Broken::Html => spawn(Behaviour::Answer(HTML_PAGE)),
        }
    }

    /// What the one line must say about the answer, beside the endpoint
    /// and the call.
    fn says(self) -> &'static str {
        match self {
            Broken::Error500 => "HTTP 500",
            Broken::Garbage => "not AWS's (HTTP 200, application/octet-stream): not XML",
            Broken::Endless => "larger than",
            Broken::Silent => "no answer",
            Broken::Html => "not AWS's (HTTP 200, text/html)",
        }
    }
}

/// The line must name the endpoint and the call, say what came back, and
/// never blame the credentials, which were never judged.
fn names_the_broken_answer(line: &str, port: u16, broken: Broken) {
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "the endpoint: {line}"
    );
    assert!(line.contains("sts:GetCallerIdentity"), "the call: {line}");
    assert!(line.contains(broken.says()), "{}: {line}", broken.says());
    assert!(!line.contains("credentials not accepted"), "{line}");
}

fn paths_against(broken: Broken) {
    let port = broken.spawn();
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let text = format!(
        "[suite]\nname = \"broken\"\nresolver = \"{}\"\n[aws]\nregion = \"{}\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nsource = \"{TASK_A}\"\nexplain_timeout = \"20s\"\n{CHECKS}",
        silent_resolver(),
        rig::moto::REGION
    );
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let run = run_with(
        &["paths", "--suite", path, "--format", "json"],
        &CREDENTIALS,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "an error, never a verdict: {}",
        run.stdout
    );
    names_the_broken_answer(&run.stderr, port, broken);
}

fn check_against(broken: Broken, tag: &str) {
    let Some(inside) = Inside::new(tag, None) else {
        return;
    };
    let port = inside.ns.inside(move || broken.spawn());
    let endpoint = format!("http://127.0.0.1:{port}");
    let check = assert_unchanged(&failing_check(
        &inside,
        &endpoint,
        "explain_timeout = \"20s\"",
        &CREDENTIALS,
    ));
    let evidence = &check["evidence"];
    assert!(
        evidence["findings"].as_array().is_none_or(|f| f.is_empty()),
        "{evidence:#}"
    );
    names_the_broken_answer(
        evidence["skipped"].as_str().unwrap_or_default(),
        port,
        broken,
    );
}

macro_rules! broken_endpoint_rows {
    ($($name:ident: $broken:expr;)*) => {
        mod broken_endpoint {
            use super::*;
            $(
                mod $name {
                    use super::*;
                    #[test]
                    fn paths() {
                        paths_against($broken);
                    }
                    #[test]
                    fn check() {
                        check_against($broken, concat!("aws-", stringify!($name)));
                    }
                }
            )*
        }
    };
}

broken_endpoint_rows! {
    answers_500_forever: Broken::Error500;
    answers_bytes_that_are_not_xml: Broken::Garbage;
    streams_an_endless_body: Broken::Endless;
    never_answers: Broken::Silent;
    answers_an_html_page: Broken::Html;
}

/// A reading cut by explain_timeout names the call it waited for and the
/// endpoint (in a VPC: no VPC endpoint for STS or EC2, no NAT route).
#[test]
fn a_reading_past_explain_timeout_names_the_endpoint_and_the_call() {
    let Some(inside) = Inside::new("aws-slow", None) else {
        return;
    };
    let port = inside
        .ns
        .inside(|| rig::fixture::spawn(rig::fixture::Mode::Silent).unwrap());
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = failing_check(&inside, &endpoint, "explain_timeout = \"2s\"", &CREDENTIALS);
    let check = assert_unchanged(&run);
    let skipped = check["evidence"]["skipped"].as_str().unwrap_or_default();
    assert!(
        skipped.contains("took longer than explain_timeout (2s)"),
        "{skipped}"
    );
    assert!(
        skipped.contains(&format!("sts:GetCallerIdentity at http://127.0.0.1:{port}")),
        "{skipped}"
    );
}

/// The HAProxy name of the world (a record in the database account's
/// private zone).
const HAPROXY_NAME: &str = "production-haproxy.timescale.glimpse.internal";

/// A DNS fault of the world: the name resolves nowhere the task runs, so
/// the tcp check to it is blocked by the fault's finding in `paths`,
/// which must not read the record from a zone the source VPC cannot see.
fn dns_fault_in_paths(fault: &str, code: &str) {
    let moto = Moto::start(fault, &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = paths(&moto, TASK_A);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let got = row(&run, "haproxy-rw");
    assert_eq!(got["verdict"], "blocked", "{got:#}");
    assert_eq!(got["path"], HAPROXY_NAME, "{got:#}");
    let codes: Vec<&str> = got["evidence"]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "{code}: {got:#}");
}

/// The same fault as `check` meets it: the task's resolver says NXDOMAIN
/// for the name (inside a namespace of the test's own), and the evidence
/// names the same finding.
fn dns_fault_in_check(fault: &str, code: &str, tag: &str) {
    let Some(inside) = Inside::new(tag, Some(fault)) else {
        return;
    };
    let resolver = inside.ns.inside(rig::hostile::spawn_dns_nxdomain);
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let text = format!(
        "[suite]\nname = \"dns\"\nresolver = \"{resolver}\"\n{}\n\
         [[check]]\nname = \"haproxy-rw\"\nkind = \"tcp\"\nhost = \"{HAPROXY_NAME}\"\nport = 5432\ntimeout = \"2s\"\n",
        inside.moto().table(TASK_A, "")
    );
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let run = inside.run(
        &["check", "--suite", path, "--format", "json"],
        &CREDENTIALS,
    );
    let check = run.check("haproxy-rw");
    assert_eq!(check["reason"], "dns_nxdomain", "{check:#}");
    let codes: Vec<&str> = check["evidence"]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "{code}: {check:#}");
}

macro_rules! dns_fault_rows {
    ($($fault:ident: $code:expr;)*) => {
        mod dns_fault {
            use super::*;
            $(
                mod $fault {
                    use super::*;
                    #[test]
                    fn paths() {
                        dns_fault_in_paths(stringify!($fault), $code);
                    }
                    #[test]
                    fn check() {
                        dns_fault_in_check(stringify!($fault), $code, concat!("dns-", stringify!($fault)));
                    }
                }
            )*
        }
    };
}

dns_fault_rows! {
    zone_not_associated: "zone_not_associated";
    vpc_dns_off: "vpc_dns_off";
}

/// `paths` from a subnet before any task runs there, with the service's
/// security groups as the source's: subnet B's own route table blocks in
/// one world, the groups' egress in another, and the healthy world passes.
#[test]
fn a_subnet_source_takes_the_services_security_groups() {
    for (fault, code, object) in [
        ("route_missing_from_b", Some("no_route"), "rtb_b"),
        ("sg_egress_missing", Some("sg_egress_missing"), "sg_tasks"),
        ("healthy", None, ""),
    ] {
        let moto = Moto::start(fault, &[]).unwrap_or_else(|err| panic!("{err}"));
        let file = suite(&moto, &moto.id("subnet_b"), "");
        let path = file.path().to_str().unwrap();
        let groups = moto.id("sg_tasks");
        let run = run_with(
            &[
                "paths",
                "--suite",
                path,
                "--format",
                "json",
                "--security-groups",
                &groups,
            ],
            &CREDENTIALS,
            Duration::from_secs(60),
        );
        let got = row(&run, "haproxy-rw");
        match code {
            Some(code) => {
                assert_eq!(got["verdict"], "blocked", "{fault}: {got:#}");
                let finding = got["evidence"]["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["code"] == code)
                    .cloned()
                    .unwrap_or_else(|| panic!("{fault}: no {code}: {got:#}"));
                let id = moto.id(object);
                assert!(
                    finding.to_string().contains(&id),
                    "{fault}: {id} in {finding:#}"
                );
            }
            None => {
                assert_eq!(got["verdict"], "reachable", "{fault}: {got:#}");
                let chain = got["evidence"]["chain"].to_string();
                assert!(
                    chain.contains(&format!("{groups} egress")),
                    "egress judged: {chain}"
                );
            }
        }
    }
}

/// Without `endpoint_url` in the suite, the SDKs' own variables name the
/// endpoints: AWS_ENDPOINT_URL for all, AWS_ENDPOINT_URL_<SERVICE> for one
/// (a wrong global one is overridden per service here).
#[test]
fn the_sdks_endpoint_variables_are_honoured() {
    let moto = Moto::start("healthy", &[]).unwrap_or_else(|err| panic!("{err}"));
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let table = moto
        .table(TASK_A, "")
        .replace(&format!("endpoint_url = \"{}\"\n", moto.endpoint), "");
    assert!(!table.contains("endpoint_url"), "{table}");
    let text = format!(
        "[suite]\nname = \"aws\"\nresolver = \"{}\"\n{table}\n{CHECKS}",
        silent_resolver()
    );
    file.write_all(text.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let nowhere = format!("http://127.0.0.1:{}", rig::process::free_port().unwrap());
    let global: Vec<(&str, &str)> = CREDENTIALS
        .into_iter()
        .chain([("AWS_ENDPOINT_URL", moto.endpoint.as_str())])
        .collect();
    let per_service: Vec<(&str, &str)> = CREDENTIALS
        .into_iter()
        .chain([
            ("AWS_ENDPOINT_URL", nowhere.as_str()),
            ("AWS_ENDPOINT_URL_EC2", moto.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_STS", moto.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_ROUTE_53", moto.endpoint.as_str()),
        ])
        .collect();
    for envs in [global, per_service] {
        let run = run_with(
            &["paths", "--suite", path, "--format", "json"],
            &envs,
            Duration::from_secs(60),
        );
        assert_eq!(run.code, 0, "{envs:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(row(&run, "haproxy-rw")["verdict"], "reachable");
    }
}

/// The shared profile files, as an operator's machine or a CodeBuild
/// project has them: profile `probe` assumes a role from profile `base`'s
/// keys, through STS at `AWS_ENDPOINT_URL`. Refused, the refusal is the
/// line; allowed, the describes run with the role's credentials.
#[test]
fn a_profiles_role_is_assumed_from_its_source_profile() {
    let moto = Moto::start("healthy", &[]).unwrap_or_else(|err| panic!("{err}"));
    let home = tempfile::tempdir().expect("a home");
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    let config = format!(
        "[profile probe]\nrole_arn = arn:aws:iam::123456789012:role/vpc-probe-read\nsource_profile = base\nregion = {}\n",
        rig::moto::REGION
    );
    std::fs::write(aws.join("config"), config).unwrap();
    let keys = "[base]\naws_access_key_id = AKIDPROFILEBASE\naws_secret_access_key = profile-base-secret\n";
    std::fs::write(aws.join("credentials"), keys).unwrap();
    let file = suite(&moto, TASK_A, "");
    let path = file.path().to_str().unwrap();
    for (denied, code) in [("Nothing", 0), ("AssumeRole", 1)] {
        let (sts, _deny) = moto
            .denying(&[denied], &[])
            .unwrap_or_else(|err| panic!("{err}"));
        let envs = [
            ("HOME", home.path().to_str().unwrap()),
            ("AWS_PROFILE", "probe"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ];
        let run = run_with(
            &["paths", "--suite", path, "--format", "json"],
            &envs,
            Duration::from_secs(60),
        );
        let all = format!("{}\n{}", run.stdout, run.stderr);
        assert!(!all.contains("profile-base-secret"), "{all}");
        assert_eq!(run.code, code, "denied {denied}: {all}");
        if code == 0 {
            assert_eq!(row(&run, "haproxy-rw")["verdict"], "reachable");
        } else {
            assert!(
                all.contains("profile probe: sts:AssumeRole denied"),
                "{all}"
            );
        }
    }
}
