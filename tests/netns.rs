//! Reasons that need the network itself to misbehave, produced inside a
//! network namespace this test creates: no interface but loopback, no
//! default route, so nothing can leave it. Needs root (CI runs as root).

mod rig;

use rig::namespace::Namespace;

fn suite(name: &str, body: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("vpcp-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, format!("[suite]\ntimeout = \"1s\"\n\n{body}")).unwrap();
    path
}

#[test]
fn dropped_syn_is_a_connect_timeout_and_closes_the_negative_check() {
    let Some(ns) = Namespace::create("drop") else {
        return;
    };
    // A security group that silently drops 5432 inside the namespace.
    ns.exec(&[
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5432", "-j", "DROP",
    ]);
    let suite = suite(
        "drop",
        "[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5432\n\n\
         [[check]]\nname = \"patroni-direct\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5432\nexpect = \"unreachable\"\n",
    );
    let run = ns.probe(&suite);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.check("haproxy-tcp")["reason"], "connect_timeout");
    assert_eq!(run.check("haproxy-tcp")["phase"], "connect");
    assert_eq!(run.check("patroni-direct")["success"], true);
    assert_eq!(
        run.check("patroni-direct")["observed"]["blocked_by"],
        "connect_timeout"
    );
}

#[test]
fn no_route_is_connect_unreachable() {
    let Some(ns) = Namespace::create("noroute") else {
        return;
    };
    // TEST-NET-1 inside a namespace with no route: the kernel refuses at once.
    let suite = suite(
        "noroute",
        "[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"192.0.2.10\"\nport = 5432\n\n\
         [[check]]\nname = \"patroni-direct\"\nkind = \"tcp\"\nhost = \"192.0.2.11\"\nport = 5432\nexpect = \"unreachable\"\n",
    );
    let run = ns.probe(&suite);
    assert_eq!(
        run.check("haproxy-tcp")["reason"],
        "connect_unreachable",
        "{}",
        run.stdout
    );
    assert_eq!(
        run.check("patroni-direct")["observed"]["blocked_by"],
        "connect_unreachable"
    );
}
