//! The one table joining the two fault matrices: a fault of the
//! network-namespace topology (tests/topology.rs, what the wire sees) and
//! the same fault in the moto world (tests/aws.rs, tests/aws_transit.rs:
//! what the describes say)
//! name the same cause. Both test files read it, so they cannot drift.

/// One fault both matrices make, the check that shows it, and the finding.
pub struct Cause {
    pub fault: &'static str,
    /// The ECS subnet the check runs from: "a" or "b".
    pub subnet: &'static str,
    /// The topology suite's check that fails (or connects where it must not).
    pub check: &'static str,
    /// The finding code the describes give for it.
    pub code: &'static str,
}

pub const CAUSES: &[Cause] = &[
    Cause {
        fault: "dns_public_ip",
        subnet: "a",
        check: "haproxy-dns",
        code: "peering_dns_resolution_off",
    },
    Cause {
        fault: "route_missing_from_b",
        subnet: "b",
        check: "haproxy-tcp",
        code: "no_route",
    },
    Cause {
        fault: "sg_drops_haproxy",
        subnet: "a",
        check: "haproxy-tcp",
        code: "sg_ingress_missing",
    },
    Cause {
        fault: "sg_too_wide_patroni_node",
        subnet: "a",
        check: "patroni-1-direct",
        code: "allowed_by_rule",
    },
    Cause {
        fault: "sg_too_wide_patroni_api",
        subnet: "a",
        check: "patroni-2-rest-api-direct",
        code: "allowed_by_rule",
    },
    Cause {
        fault: "nacl_drops_returns",
        subnet: "a",
        check: "haproxy-tcp",
        code: "nacl_return_blocked",
    },
    Cause {
        fault: "peering_deleted",
        subnet: "a",
        check: "haproxy-tcp",
        code: "blackhole_route",
    },
    Cause {
        fault: "redis_sg_missing",
        subnet: "a",
        check: "redis",
        code: "sg_ingress_missing",
    },
    // The router plays the transit gateway (tests/topology.rs); the moto
    // world is tests/aws_transit.rs's.
    Cause {
        fault: "tgw_no_route",
        subnet: "a",
        check: "haproxy-tcp",
        code: "tgw_no_route",
    },
    Cause {
        fault: "tgw_blackhole",
        subnet: "a",
        check: "haproxy-tcp",
        code: "tgw_blackhole_route",
    },
    Cause {
        fault: "tgw_return_route_missing",
        subnet: "a",
        check: "haproxy-tcp",
        code: "tgw_return_route_missing",
    },
];

pub fn cause(fault: &str) -> Option<&'static Cause> {
    CAUSES.iter().find(|c| c.fault == fault)
}
