//! A cluster-mode cache as the Redis drill meets it: the owner of the
//! run's slot (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`), and the node a MOVED
//! answer names, so writes follow redirects as a cluster client does.

use super::record::Identity;
use crate::check::redis::{text, Session};
use crate::outcome::{Fault, Reason};
use redis::{RedisError, Value};

/// On a cluster, the owner of `key`'s slot (`CLUSTER KEYSLOT`, `CLUSTER
/// SLOTS`); `None` when the server is not in cluster mode.
pub(super) async fn slot_owner(
    session: &mut Session,
    key: &str,
) -> Result<Option<Identity>, Fault> {
    let info: Result<String, RedisError> = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut session.connection)
        .await;
    let enabled = info.is_ok_and(|info| info.contains("cluster_enabled:1"));
    if !enabled {
        return Ok(None);
    }
    let slot: i64 = session
        .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
        .await?;
    let slots: Value = session.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
    let owner = owner_of(&slots, slot).ok_or_else(|| {
        Fault::new(
            Reason::UnexpectedResponse,
            format!("CLUSTER SLOTS names no owner of slot {slot}"),
        )
    })?;
    Ok(Some(Identity {
        server: owner,
        timeline: Some(format!("slot {slot}")),
    }))
}

/// `host:port` of the master serving `slot`, from a CLUSTER SLOTS reply:
/// `[[start, end, [host, port, id, ...], replicas...], ...]`.
fn owner_of(slots: &Value, slot: i64) -> Option<String> {
    let Value::Array(ranges) = slots else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(fields) = range else {
            return None;
        };
        let (Some(Value::Int(start)), Some(Value::Int(end))) = (fields.first(), fields.get(1))
        else {
            return None;
        };
        if !(*start..=*end).contains(&slot) {
            return None;
        }
        let Some(Value::Array(master)) = fields.get(2) else {
            return None;
        };
        let host = text(master.first()?)?;
        let Value::Int(port) = master.get(1)? else {
            return None;
        };
        Some(crate::net::url_parts::host_port(&host, *port as u16))
    })
}

/// The `host:port` a MOVED error names (`MOVED 3999 10.0.1.5:6379`).
pub(super) fn moved_target(err: &RedisError) -> Option<String> {
    let detail = err.detail()?;
    let target = detail.split_whitespace().nth(1)?;
    Some(target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn the_slot_owner_is_the_master_of_the_range_holding_it() {
        let range = |start, end, host: &str, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
                Value::Array(vec![bulk("10.0.9.9"), Value::Int(6379), bulk("replica")]),
            ])
        };
        let slots = Value::Array(vec![
            range(0, 5460, "10.0.1.1", 6379),
            range(5461, 10922, "10.0.1.2", 6380),
        ]);
        assert_eq!(owner_of(&slots, 7000).as_deref(), Some("10.0.1.2:6380"));
        assert_eq!(owner_of(&slots, 0).as_deref(), Some("10.0.1.1:6379"));
        assert_eq!(owner_of(&slots, 16000), None);
    }

    #[test]
    fn a_moved_error_names_its_node() {
        let err = RedisError::from((
            redis::ErrorKind::Moved,
            "An error was signalled by the server",
            "3999 10.0.1.5:6381".to_string(),
        ));
        assert_eq!(moved_target(&err).as_deref(), Some("10.0.1.5:6381"));
    }
}
