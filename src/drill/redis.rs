//! The Redis / ElastiCache drill (`kind = "redis-failover"`), through the
//! primary endpoint's name only. A write is a SET of this run's sequence
//! key and an INCR of its counter, on a fresh connection, the name
//! resolved anew each time, as a well-behaved client does; the held
//! session writes too, as a pooled connection would; the read-back reads
//! every sequence key. The server is named by the address the connection
//! reached, with `ROLE` and `INFO replication`'s `master_replid` (a new
//! one at each promotion) before and after. On a cluster-mode cache every
//! key of a run shares one hash slot (`{RUN}`): a write answered MOVED is
//! sent once more to the node named, as a cluster client does, and the
//! server is the slot's owner, before and after.

use super::cluster::{moved_target, slot_owner};
use super::target::{DrillKind, Env, Held, Identity, Label, ReadFrom, Target, WriteEnd};
use crate::check::redis::{first_text, RedisSpec, Session};
use crate::outcome::{Fault, Reason};
use futures_util::future::{BoxFuture, FutureExt};
use redis::{RedisError, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How long the drill's keys live: long enough to read back and look at,
/// never left for ever.
const KEY_SECONDS: u64 = 24 * 3600;

/// MOVED redirects one write follows: a slot moves once in a failover.
const MAX_REDIRECTS: usize = 4;

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

    fn setup<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.identify(ctx)
    }

    fn identify<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Identity, Fault>> {
        self.role(ctx).boxed()
    }

    fn write<'a>(
        &'a self,
        ctx: &'a Env,
        seq: u64,
        sent: &'a AtomicBool,
    ) -> BoxFuture<'a, Result<Identity, WriteEnd>> {
        self.set(ctx, seq, sent).boxed()
    }

    fn read<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Result<ReadFrom, Label>> {
        async { Err(Label::NoReadOnlyPort) }.boxed()
    }

    fn hold<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Result<Box<dyn Held>, Label>> {
        async move {
            let timeout = ctx.spec.attempt_timeout;
            let session = self.owner_session(ctx, timeout).await;
            let held: Box<dyn Held> = Box::new(HeldSession {
                session: session.map_err(|fault| label(&fault))?,
                key: format!("{}:held", prefix(ctx)),
                uses: AtomicU64::new(0),
            });
            Ok(held)
        }
        .boxed()
    }

    fn read_back<'a>(
        &'a self,
        ctx: &'a Env,
        last: u64,
    ) -> BoxFuture<'a, Option<BTreeMap<u64, u64>>> {
        self.present(ctx, last).boxed()
    }
}

/// This run's keys: `vpc-probe:drill:{RUN}:SEQ`, `...:count`, `...:held`;
/// the braces make a cluster hash every one of them to one slot.
fn prefix(ctx: &Env) -> String {
    format!("vpc-probe:drill:{{{}}}", ctx.run_id)
}

impl RedisTarget {
    /// Who takes this run's writes: on a cluster, the owner of the run's
    /// slot; else the address reached, which `ROLE` must call a primary.
    async fn role(&self, ctx: &Env) -> Result<Identity, Fault> {
        let timeout = ctx.spec.attempt_timeout;
        let mut session = self.endpoint.session(&ctx.net, timeout).await?;
        let asked = match slot_owner(&mut session, &prefix(ctx)).await {
            Ok(Some(owner)) => Ok(owner),
            Ok(None) => ask_role(&mut session).await.and_then(|(role, replid)| {
                let server = session.facts.peer.to_string();
                if role != "master" {
                    let detail = format!(
                        "{server} answers ROLE {role}: the endpoint does not reach a primary"
                    );
                    return Err(Fault::new(Reason::WrongRole, detail));
                }
                Ok(Identity {
                    server,
                    timeline: Some(format!("replid {replid}")),
                })
            }),
            Err(fault) => Err(fault),
        };
        session.close();
        asked
    }

    /// SET of the sequence key and INCR of the counter, on a fresh
    /// session; a MOVED answer sends it again, to the node named, as a
    /// cluster client does (at most [`MAX_REDIRECTS`] times).
    async fn set(&self, ctx: &Env, seq: u64, sent: &AtomicBool) -> Result<Identity, WriteEnd> {
        let mut node = self.endpoint.clone();
        for _ in 0..MAX_REDIRECTS {
            match self.set_at(&node, ctx, seq, sent).await {
                Err(Attempted::Moved(to)) => {
                    node = self.moved_to(&to).ok_or_else(|| WriteEnd::Failed {
                        label: Label::Moved,
                        detail: format!("MOVED to {to}, an address the probe cannot read"),
                    })?;
                }
                other => return other.map_err(Attempted::into_fate),
            }
        }
        Err(Attempted::Moved(node.target()).into_fate())
    }

    /// One attempt at `endpoint`; a MOVED reply is handed back to follow.
    async fn set_at(
        &self,
        endpoint: &RedisSpec,
        ctx: &Env,
        seq: u64,
        sent: &AtomicBool,
    ) -> Result<Identity, Attempted> {
        let timeout = ctx.spec.attempt_timeout;
        let session = endpoint.session(&ctx.net, timeout).await;
        let mut session = session.map_err(|fault| {
            Attempted::Done(WriteEnd::Failed {
                label: label(&fault),
                detail: fault.detail,
            })
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
            Err(err) if err.code() == Some("MOVED") => match moved_target(&err) {
                Some(to) => Err(Attempted::Moved(to)),
                None => Err(Attempted::Done(write_error(&err, &session))),
            },
            Err(err) => Err(Attempted::Done(write_error(&err, &session))),
        };
        session.close();
        fate
    }

    /// A session with the server that takes this run's writes: on a
    /// cluster, the owner of the run's slot (found through the endpoint),
    /// else the endpoint's.
    async fn owner_session(&self, ctx: &Env, timeout: Duration) -> Result<Session, Fault> {
        let mut session = self.endpoint.session(&ctx.net, timeout).await?;
        let owner = match slot_owner(&mut session, &prefix(ctx)).await {
            Ok(Some(owner)) if owner.server != session.facts.peer.to_string() => owner,
            Ok(_) => return Ok(session),
            Err(fault) => {
                session.close();
                return Err(fault);
            }
        };
        session.close();
        let node = self.moved_to(&owner.server).ok_or_else(|| {
            let detail = format!("the slot's owner {} is no address to reach", owner.server);
            Fault::new(Reason::UnexpectedResponse, detail)
        })?;
        node.session(&ctx.net, timeout).await
    }

    /// The endpoint with the host and port a MOVED named, keeping the TLS
    /// name of the endpoint (a node's certificate covers the cache's names,
    /// not its address).
    fn moved_to(&self, to: &str) -> Option<RedisSpec> {
        let (host, port) = to.rsplit_once(':')?;
        let mut node = self.endpoint.clone();
        if let Some(tls) = &mut node.tls {
            tls.server_name
                .get_or_insert_with(|| self.endpoint.host.clone());
        }
        node.host = host.trim_matches(['[', ']']).to_string();
        node.port = port.parse().ok()?;
        Some(node)
    }

    /// Every sequence key written or tried, read back: `seq` → 1 when present.
    async fn present(&self, ctx: &Env, last: u64) -> Option<BTreeMap<u64, u64>> {
        let timeout = ctx.spec.attempt_timeout * 5;
        let mut session = self.owner_session(ctx, timeout).await.ok()?;
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

/// One attempt's end, when not acknowledged: a fate, or a MOVED to follow.
enum Attempted {
    Done(WriteEnd),
    /// The node (`host:port`) the server sent the write to.
    Moved(String),
}

impl Attempted {
    /// The fate; a MOVED left unfollowed is a misrouted write.
    fn into_fate(self) -> WriteEnd {
        match self {
            Attempted::Done(fate) => fate,
            Attempted::Moved(to) => WriteEnd::Failed {
                label: Label::Moved,
                detail: format!("still MOVED (to {to}) after {MAX_REDIRECTS} redirects"),
            },
        }
    }
}

/// `ROLE`'s first word and `INFO replication`'s `master_replid`.
async fn ask_role(session: &mut Session) -> Result<(String, String), Fault> {
    let role: Value = session.query(&redis::cmd("ROLE")).await?;
    let info: String = session.query(redis::cmd("INFO").arg("replication")).await?;
    let replid = info
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("master_replid:"))
        .unwrap_or("?")
        .to_string();
    Ok((first_text(&role).unwrap_or_default(), replid))
}

/// The session opened before the change, writing as a pooled client does.
struct HeldSession {
    session: Session,
    key: String,
    uses: AtomicU64,
}

impl Held for HeldSession {
    fn ask(&self) -> BoxFuture<'_, Result<(), Label>> {
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
fn write_error(err: &RedisError, session: &Session) -> WriteEnd {
    let fault = session.fault(err);
    let label = label_of(err, session);
    match err.code() {
        Some(_) => WriteEnd::Failed {
            label,
            detail: fault.detail,
        },
        None => WriteEnd::Uncertain {
            label,
            detail: fault.detail,
        },
    }
}

/// The label of a command's error: `readonly` or `moved` by its code,
/// else the reason.
fn label_of(err: &RedisError, session: &Session) -> Label {
    match err.code() {
        Some("READONLY") => Label::Readonly,
        Some("MOVED") => Label::Moved,
        _ => label(&session.fault(err)),
    }
}

/// The label of a failure to open a session: its reason.
fn label(fault: &Fault) -> Label {
    Label::Reason(fault.reason)
}
