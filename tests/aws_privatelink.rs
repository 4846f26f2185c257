//! Path evidence to an interface endpoint (PrivateLink), against the
//! offline AWS: HAProxy offered by the database account as an endpoint
//! service behind an internal NLB, reached from the ECS VPC through an
//! interface endpoint (tests/rig/aws_world.py's `vpce_…` shapes). moto holds
//! the VPCs, groups, the NLB, its listener and target group, the service and
//! its permissions; tests/rig/aws_gaps.py answers what moto gets wrong (the
//! endpoint's state and interface, the connections, target health) as AWS
//! documents it. One test per fault row; only loopback is ever contacted.

mod rig;

use rig::moto::{Moto, CREDENTIALS};
use rig::probe::Run;
use serde_json::Value;

/// The task's address in subnet A.
const TASK_A: &str = "10.20.1.10";

/// HAProxy through the endpoint's interface.
const CHECK: &str = r#"
[[check]]
name = "haproxy-vpce"
kind = "tcp"
host = "10.20.1.50"
port = 5432
"#;

fn paths(fault: &str) -> (Moto, Run) {
    let moto = Moto::start(fault, &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = moto.paths_through_gaps(TASK_A, "", CHECK);
    (moto, run)
}

fn endpoint_row(run: &Run) -> Value {
    let report = run.json();
    let rows = report["rows"].as_array().expect("rows");
    rows.iter()
        .find(|r| r["check"] == "haproxy-vpce")
        .unwrap_or_else(|| panic!("no haproxy-vpce row: {report:#}"))
        .clone()
}

#[test]
fn a_healthy_endpoint_is_reachable_down_to_a_healthy_target() {
    let (moto, run) = paths("vpce_healthy");
    let got = endpoint_row(&run);
    assert_eq!(got["verdict"], "reachable", "{got:#}\n{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let chain = got["evidence"]["chain"].to_string();
    assert!(chain.contains(&moto.id("vpce")), "{chain}");
    assert!(chain.contains("listener TCP:5432"), "{chain}");
    assert!(chain.contains("a healthy target"), "{chain}");
}

/// The service's private name, asked for as a dns check: with the
/// endpoint's private DNS off it is `endpoint_private_dns_off`, naming the
/// endpoint and the modify-vpc-endpoint fix; on, the same check is clean.
#[test]
fn private_dns_off_is_named_on_the_endpoint() {
    let dns_check = "[[check]]\nname = \"haproxy-vpce-dns\"\nkind = \"dns\"\nhost = \"haproxy.vpce.glimpse.example\"\n";
    let moto = Moto::start("vpce_private_dns_off", &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = moto.paths_through_gaps(TASK_A, "", dns_check);
    let report = run.json();
    let got = &report["rows"][0];
    let findings = got["evidence"]["findings"].to_string();
    assert!(
        findings.contains("endpoint_private_dns_off") && findings.contains(&moto.id("vpce")),
        "{got:#}\n{}",
        run.stderr
    );
    assert!(findings.contains("--private-dns-enabled"), "{findings}");
    assert_eq!(got["verdict"], "blocked", "{got:#}");
    let healthy = Moto::start("vpce_healthy", &[]).unwrap_or_else(|err| panic!("{err}"));
    let run = healthy.paths_through_gaps(TASK_A, "", dns_check);
    let chain = run.json()["rows"][0]["evidence"].to_string();
    assert!(!chain.contains("endpoint_private_dns_off"), "{chain}");
    assert!(
        chain.contains("private DNS on"),
        "the endpoint serving the name is on the chain: {chain}"
    );
}

/// One fault of the endpoint world: the code and the object it names.
struct Row {
    fault: &'static str,
    code: &'static str,
    object: &'static str,
    /// Whether the finding carries an `aws …` fix.
    fix: bool,
}

const ROWS: &[Row] = &[
    Row {
        fault: "vpce_pending_acceptance",
        code: "endpoint_not_available",
        object: "vpce",
        fix: true,
    },
    Row {
        fault: "vpce_rejected",
        code: "endpoint_not_available",
        object: "vpce",
        fix: false,
    },
    Row {
        fault: "vpce_principal_not_allowed",
        code: "endpoint_principal_not_allowed",
        object: "vpce_svc",
        fix: true,
    },
    Row {
        fault: "vpce_sg_without_port",
        code: "sg_ingress_missing",
        object: "sg_vpce",
        fix: true,
    },
    Row {
        fault: "vpce_no_listener",
        code: "nlb_no_listener",
        object: "nlb",
        fix: true,
    },
    Row {
        fault: "vpce_targets_unhealthy",
        code: "nlb_targets_unhealthy",
        object: "target_group",
        fix: false,
    },
];

fn fault_row(fault: &str) {
    let row_of = ROWS.iter().find(|r| r.fault == fault).expect("a row");
    let (moto, run) = paths(fault);
    let got = endpoint_row(&run);
    assert_eq!(got["verdict"], "blocked", "{got:#}\n{}", run.stderr);
    assert_eq!(run.code, 1, "a fault fails the paths gate");
    let findings = got["evidence"]["findings"].as_array().expect("findings");
    let named = findings
        .iter()
        .find(|f| f["code"] == row_of.code)
        .unwrap_or_else(|| panic!("no {} finding: {got:#}", row_of.code));
    let object = moto.id(row_of.object);
    assert!(
        named.to_string().contains(&object),
        "the finding must name {object}: {named:#}"
    );
    let fix = named["fix"].as_str().unwrap_or_default();
    assert_eq!(fix.starts_with("aws "), row_of.fix, "{named:#}");
    assert!(
        !run.stdout.contains(CREDENTIALS[1].1) && !run.stderr.contains(CREDENTIALS[1].1),
        "no secret in output"
    );
}

fault_rows!(
    vpce_pending_acceptance,
    vpce_rejected,
    vpce_principal_not_allowed,
    vpce_sg_without_port,
    vpce_no_listener,
    vpce_targets_unhealthy,
);

#[test]
fn every_endpoint_fault_row_has_a_test_of_its_own() {
    let rows: Vec<&str> = ROWS.iter().map(|r| r.fault).collect();
    assert_eq!(rows, FAULT_ROWS, "add the new row to fault_rows!");
}
