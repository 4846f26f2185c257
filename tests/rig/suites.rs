//! The checks many tests run against the rig, written once: each builder
//! gives one `[[check]]` table, `extra` lines appended to it.

use super::{Rig, HAPROXY_NAME, PG_PASSWORD, PG_USER, REDIS_NAME, REDIS_PASSWORD};

/// One `[[check]]` table of `kind` with its own `body` lines.
pub fn check(name: &str, kind: &str, body: &str) -> String {
    format!("[[check]]\nname = \"{name}\"\nkind = \"{kind}\"\n{body}\n")
}

/// The healthy PostgreSQL path: HAProxy's name, then PgBouncer.
pub fn postgres_haproxy(rig: &Rig, name: &str, extra: &str) -> String {
    let url = format!("postgres://{PG_USER}@{HAPROXY_NAME}:{}/app", rig.haproxy);
    let body = format!("url = \"{url}\"\npassword = \"{PG_PASSWORD}\"\n{extra}");
    check(name, "postgres", &body)
}

/// The rig's Redis by its private name, with its password.
pub fn redis(rig: &Rig, name: &str, extra: &str) -> String {
    let url = format!("redis://{REDIS_NAME}:{}", rig.redis);
    let body = format!("url = \"{url}\"\npassword = \"{REDIS_PASSWORD}\"\n{extra}");
    check(name, "redis", &body)
}

/// A port nobody listens on, that must stay closed: the Patroni node a
/// task must never reach directly.
pub fn closed_tcp(rig: &Rig, name: &str) -> String {
    let body = format!(
        "host = \"127.0.0.1\"\nport = {}\nexpect = \"unreachable\"",
        rig.closed
    );
    check(name, "tcp", &body)
}

/// HAProxy's name answering inside loopback.
pub fn haproxy_dns(name: &str, extra: &str) -> String {
    let body = format!("host = \"{HAPROXY_NAME}\"\nexpect_cidrs = [\"127.0.0.0/8\"]\n{extra}");
    check(name, "dns", &body)
}
