//! The Redis / ElastiCache drill (`kind = "redis-failover"`), through the
//! primary endpoint's name only. A write is a SET of this run's sequence
//! key and an INCR of its counter, on a fresh connection, the name
//! resolved anew each time, as a well-behaved client does; the held
//! session writes too, as a pooled connection would; the read-back reads
//! every sequence key. The server is named by the address the connection
//! reached, with `ROLE` and `INFO replication`'s `master_replid` (a new
//! one at each promotion) before and after.

use super::record::{Ctx, Fate, Identity};
use super::target::{DrillKind, Held, Target};
use crate::check::redis::{RedisSpec, Session};
use crate::outcome::{Fault, Reason};
use futures_util::future::{BoxFuture, FutureExt};
use redis::{RedisError, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How long the drill's keys live: long enough to read back and look at,
/// never left for ever.
const KEY_SECONDS: u64 = 24 * 3600;

/// Sequence keys read back per MGET.
const READ_BACK_BATCH: usize = 500;

/// The primary endpoint.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub endpoint: RedisSpec,
}

impl Target for RedisTarget {
    fn kind(&self) -> DrillKind {
        DrillKind::RedisFailover
    }

    fn describe(&self) -> String {
        self.endpoint.target()
    }

    fn name(&self) -> &str {
        &self.endpoint.host
    }

    fn watches_reads(&self) -> bool {
        false
    }

    fn setup<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.identify(ctx)
    }

    fn identify<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.role(ctx).boxed()
    }

    fn write<'a>(
        &'a self,
        ctx: &'a Ctx,
        seq: u64,
        sent: &'a AtomicBool,
    ) -> BoxFuture<'a, Result<Identity, Fate>> {
        self.set(ctx, seq, sent).boxed()
    }

    fn read<'a>(&'a self, _ctx: &'a Ctx) -> BoxFuture<'a, Result<bool, &'static str>> {
        async { Err("no_read_only_port") }.boxed()
    }

    fn hold<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Box<dyn Held>, &'static str>> {
        async move {
            let timeout = ctx.spec.attempt_timeout;
            let session = self.endpoint.session(&ctx.net, timeout).await;
            let held: Box<dyn Held> = Box::new(HeldSession {
                session: session.map_err(|fault| label(&fault))?,
                key: format!("{}:held", prefix(ctx)),
                uses: AtomicU64::new(0),
            });
            Ok(held)
        }
        .boxed()
    }

    fn read_back<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Option<BTreeMap<u64, u64>>> {
        self.present(ctx).boxed()
    }
}

/// This run's keys: `vpc-probe:drill:RUN:SEQ`, `...:count`, `...:held`.
fn prefix(ctx: &Ctx) -> String {
    format!("vpc-probe:drill:{}", ctx.run_id)
}

impl RedisTarget {
    /// Who answers at the endpoint: the address reached, `ROLE` (it must
    /// be a primary) and the replication id.
    async fn role(&self, ctx: &Ctx) -> Result<Identity, Fault> {
        let timeout = ctx.spec.attempt_timeout;
        let mut session = self.endpoint.session(&ctx.net, timeout).await?;
        let asked = ask_role(&mut session).await;
        let server = session.facts.peer.to_string();
        session.close();
        let (role, replid) = asked?;
        if role != "master" {
            let detail =
                format!("{server} answers ROLE {role}: the endpoint does not reach a primary");
            return Err(Fault::new(Reason::WrongRole, detail));
        }
        Ok(Identity {
            server,
            timeline: Some(format!("replid {replid}")),
        })
    }

    /// SET of the sequence key and INCR of the counter, on a fresh session.
    async fn set(&self, ctx: &Ctx, seq: u64, sent: &AtomicBool) -> Result<Identity, Fate> {
        let timeout = ctx.spec.attempt_timeout;
        let session = self.endpoint.session(&ctx.net, timeout).await;
        let mut session = session.map_err(|fault| Fate::Failed {
            label: label(&fault),
            misrouted: false,
            detail: fault.detail,
        })?;
        let base = prefix(ctx);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(format!("{base}:{seq}"))
            .arg(seq)
            .arg("EX")
            .arg(KEY_SECONDS);
        pipe.cmd("INCR").arg(format!("{base}:count"));
        pipe.cmd("EXPIRE")
            .arg(format!("{base}:count"))
            .arg(KEY_SECONDS);
        sent.store(true, Ordering::SeqCst);
        let answer: Result<Vec<Value>, RedisError> =
            pipe.query_async(&mut session.connection).await;
        let fate = match answer {
            Ok(_) => Ok(Identity {
                server: session.facts.peer.to_string(),
                timeline: None,
            }),
            Err(err) => Err(write_error(&err, &session)),
        };
        session.close();
        fate
    }

    /// Every sequence key written or tried, read back: `seq` → 1 when present.
    async fn present(&self, ctx: &Ctx) -> Option<BTreeMap<u64, u64>> {
        let last = ctx
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writes
            .iter()
            .map(|attempt| attempt.seq)
            .max()
            .unwrap_or(0);
        let timeout = ctx.spec.attempt_timeout * 5;
        let mut session = self.endpoint.session(&ctx.net, timeout).await.ok()?;
        let base = prefix(ctx);
        let mut rows = BTreeMap::new();
        let seqs: Vec<u64> = (1..=last).collect();
        for batch in seqs.chunks(READ_BACK_BATCH) {
            let keys: Vec<String> = batch.iter().map(|seq| format!("{base}:{seq}")).collect();
            let mut mget = redis::cmd("MGET");
            mget.arg(&keys);
            let asked = mget.query_async(&mut session.connection);
            let values: Vec<Option<String>> =
                tokio::time::timeout(timeout, asked).await.ok()?.ok()?;
            for (seq, value) in batch.iter().zip(values) {
                if value.is_some() {
                    rows.insert(*seq, 1);
                }
            }
        }
        session.close();
        Some(rows)
    }
}

/// `ROLE`'s first word and `INFO replication`'s `master_replid`.
async fn ask_role(session: &mut Session) -> Result<(String, String), Fault> {
    let role: Value = redis::cmd("ROLE")
        .query_async(&mut session.connection)
        .await
        .map_err(|err| session.fault(&err))?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut session.connection)
        .await
        .map_err(|err| session.fault(&err))?;
    let replid = info
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("master_replid:"))
        .unwrap_or("?")
        .to_string();
    Ok((first_word(&role).unwrap_or_default(), replid))
}

/// The first element of an array reply, as text.
fn first_word(reply: &Value) -> Option<String> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.first()? {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The session opened before the change, writing as a pooled client does.
struct HeldSession {
    session: Session,
    key: String,
    uses: AtomicU64,
}

impl Held for HeldSession {
    fn ask(&self) -> BoxFuture<'_, Result<(), &'static str>> {
        async move {
            let n = self.uses.fetch_add(1, Ordering::Relaxed);
            let mut connection = self.session.connection.clone();
            let set: Result<Value, RedisError> = redis::cmd("SET")
                .arg(&self.key)
                .arg(n)
                .arg("EX")
                .arg(KEY_SECONDS)
                .query_async(&mut connection)
                .await;
            set.map(drop).map_err(|err| label_of(&err, &self.session))
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.session.close();
        async {}.boxed()
    }
}

/// A write's failure: READONLY is a write that reached a replica (a demoted
/// primary, or a stale address): refused, misrouted. Another refusal by
/// the server failed; a connection lost after sending left it uncertain.
fn write_error(err: &RedisError, session: &Session) -> Fate {
    let fault = session.fault(err);
    let label = label_of(err, session);
    match err.code() {
        Some(_) => Fate::Failed {
            label,
            misrouted: label == "readonly",
            detail: fault.detail,
        },
        None => Fate::Uncertain {
            label,
            detail: fault.detail,
        },
    }
}

/// The label of a command's error: `readonly` by its code, else the reason.
fn label_of(err: &RedisError, session: &Session) -> &'static str {
    match err.code() {
        Some("READONLY") => "readonly",
        _ => label(&session.fault(err)),
    }
}

/// The label of a failure to open a session: its reason.
fn label(fault: &Fault) -> &'static str {
    fault.reason.as_str()
}
