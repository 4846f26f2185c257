//! Path evidence across a transit gateway, against the offline AWS: the
//! two accounts of tests/rig/aws_world.py joined by a network account's
//! gateway, shared through RAM, instead of the peering. moto holds the
//! VPCs, subnets, route tables, groups and zones; tests/rig/aws_gaps.py
//! answers the five gateway reads moto cannot (a gateway of another
//! account, routes with their attachments, propagated routes) as AWS
//! documents them. One test per fault row, each naming the code and the
//! object; `paths` sends no traffic, and only loopback is ever contacted.

mod rig;

use rig::moto::{Moto, CREDENTIALS};
use rig::probe::Run;
use serde_json::Value;

/// The task's address in subnet A (zone a).
const TASK_A: &str = "10.20.1.10";

/// The check every row judges: HAProxy by its private name.
const CHECK: &str = r#"
[[check]]
name = "haproxy-rw"
kind = "tcp"
host = "production-haproxy.timescale.glimpse.internal"
port = 5432
"#;

/// A gateway world with `fault` applied, `paths` run through the fixture;
/// `network`: whether the suite names the network account's role.
fn paths(fault: &str, network: bool) -> (Moto, Run) {
    let moto = Moto::start(fault, &[]).unwrap_or_else(|err| panic!("{err}"));
    let extra = match network {
        true => format!("network_role_arn = \"{}\"\n", moto.id("network_role")),
        false => String::new(),
    };
    let run = moto.paths_through_gaps(TASK_A, &extra, CHECK);
    (moto, run)
}

fn haproxy(run: &Run) -> Value {
    let report = run.json();
    let rows = report["rows"].as_array().expect("rows");
    rows.iter()
        .find(|r| r["check"] == "haproxy-rw")
        .unwrap_or_else(|| panic!("no haproxy-rw row: {report:#}"))
        .clone()
}

#[test]
fn a_healthy_gateway_is_reachable_and_walked_both_ways() {
    let (moto, run) = paths("tgw_healthy", true);
    let got = haproxy(&run);
    assert_eq!(got["verdict"], "reachable", "{got:#}\n{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let chain = got["evidence"]["chain"].to_string();
    for id in ["tgw_attach_app", "tgw_rtb_app", "tgw_rtb_db"] {
        assert!(chain.contains(&moto.id(id)), "{id} not on {chain}");
    }
    assert!(chain.contains("(propagated)"), "{chain}");
}

#[test]
fn without_the_network_role_the_gateway_tables_are_not_judged() {
    let (_moto, run) = paths("tgw_healthy", false);
    let got = haproxy(&run);
    assert_eq!(got["verdict"], "unknown", "{got:#}");
    assert_eq!(run.code, 1, "an unjudged hop does not pass the gate");
    let findings = got["evidence"]["findings"].to_string();
    assert!(
        findings.contains("hop_not_followed") && findings.contains("network_role_arn"),
        "{findings}"
    );
}

/// One fault of the gateway world: the verdict, the code, the object.
struct Row {
    fault: &'static str,
    code: &'static str,
    object: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        fault: "tgw_subnet_route_missing",
        code: "no_route",
        object: "rtb_a",
    },
    Row {
        fault: "tgw_no_route",
        code: "tgw_no_route",
        object: "tgw_rtb_app",
    },
    Row {
        fault: "tgw_blackhole",
        code: "tgw_blackhole_route",
        object: "tgw_rtb_app",
    },
    Row {
        fault: "tgw_not_associated",
        code: "tgw_not_associated",
        object: "tgw_attach_app",
    },
    Row {
        fault: "tgw_return_route_missing",
        code: "tgw_return_route_missing",
        object: "tgw_rtb_db",
    },
    Row {
        fault: "tgw_return_subnet_route_missing",
        code: "return_route_missing",
        object: "rtb_db",
    },
    Row {
        fault: "tgw_no_subnet_in_zone",
        code: "tgw_attachment_not_in_zone",
        object: "tgw_attach_app",
    },
    Row {
        fault: "tgw_sg_reference",
        code: "sg_reference_across_tgw",
        object: "sg_haproxy",
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
    let (moto, run) = paths(fault, true);
    let got = haproxy(&run);
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
    assert!(fix.starts_with("aws "), "a runnable fix: {named:#}");
    assert!(
        !run.stdout.contains(CREDENTIALS[1].1) && !run.stderr.contains(CREDENTIALS[1].1),
        "no secret in output"
    );
}

fault_rows!(
    tgw_subnet_route_missing,
    tgw_no_route,
    tgw_blackhole,
    tgw_not_associated,
    tgw_return_route_missing,
    tgw_return_subnet_route_missing,
    tgw_no_subnet_in_zone,
    tgw_sg_reference,
);

#[test]
fn every_gateway_fault_row_has_a_test_of_its_own() {
    let rows: Vec<&str> = ROWS.iter().map(|r| r.fault).collect();
    assert_eq!(rows, FAULT_ROWS, "add the new row to fault_rows!");
}
