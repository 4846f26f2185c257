//! `kind = "postgres"`: N full open / TLS / auth / query / close cycles,
//! the server's role (`pg_is_in_recovery()`) and required extensions, all
//! over the simple query protocol so PgBouncer transaction pooling works.
//! Opt-in, for what applications do beyond `SELECT 1`: a COPY round trip
//! (`copy`), named prepared statements across transactions (`prepared`),
//! and many sessions at once (`concurrency`, through [`super::crowd`]).

mod classify;
mod copy;
mod iam;
mod keys;
mod mtu;
mod prepared;
pub mod rows;
mod server;
mod session;
mod tls;

use super::crowd;
use super::idle::{self, Idle, IdleSession};
use super::{InFlight, Probe};
use crate::net::tls::TlsSetup;
use crate::net::url_parts::host_port;
use crate::net::wire::{Heard, MAX_ANSWER};
use crate::net::Net;
use crate::outcome::{Cycles, Failure, Fault, Phase, Reason};
use crate::secret::Secret;
use classify::{classify, Step};
pub use keys::Keys;
use session::{close, Driver};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// libpq's `sslmode`, as far as it changes what the probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    /// `verify-ca` and `verify-full`: the chain and the host name are checked.
    VerifyFull,
}

/// The role the server behind the port must have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
    #[default]
    Any,
}

#[derive(Debug, Clone)]
pub struct PostgresSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub application_name: String,
    pub sslmode: SslMode,
    /// Present unless `sslmode = disable`.
    pub tls: Option<TlsSetup>,
    pub cycles: u32,
    pub query: String,
    pub expect_role: Role,
    pub expect_extensions: Vec<String>,
    /// Bytes to COPY in and back out, when asked.
    pub copy_bytes: Option<u64>,
    pub prepared_statements: bool,
    /// Sessions to hold open at once, when asked.
    pub concurrency: Option<u32>,
    /// Sessions held idle, then queried (`idle`).
    pub idle: Option<Idle>,
    /// `auth = "iam"`: a fresh RDS IAM token as the password, per connection.
    pub iam: Option<RdsIam>,
}

/// RDS / Aurora IAM authentication: where the token is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsIam {
    /// The suite's `[aws] region`; else the environment's, at run time.
    pub region: Option<String>,
}

/// An open session and the task driving its connection.
pub struct Session {
    pub client: tokio_postgres::Client,
    driver: Driver,
    heard: Arc<Heard>,
}

impl Session {
    /// Classify an error a query on this session raised, as a check would.
    pub fn fault(&self, err: &tokio_postgres::Error, sslmode: SslMode) -> Fault {
        classify(err, &self.heard, sslmode, Step::Query, None)
    }

    /// Terminate the session and wait until the server has closed it.
    pub async fn close(self) -> Result<(), Fault> {
        close(self).await
    }
}

impl PostgresSpec {
    pub fn target(&self) -> String {
        format!("{}/{}", host_port(&self.host, self.port), self.dbname)
    }

    /// The most one session may read: a health answer's cap, plus room
    /// for a COPY's bytes coming back (with its framing) when asked.
    fn read_limit(&self) -> u64 {
        MAX_ANSWER + 2 * self.copy_bytes.unwrap_or(0)
    }

    /// Resolve, connect and start a session within `limit`, each phase's
    /// timeout classified as a check's would be (the failover drill).
    pub async fn session(&self, net: &Net, limit: Duration) -> Result<Session, Fault> {
        let mut probe = Probe::new(net, limit, InFlight::default());
        let opened = async {
            let addrs = probe.resolve(&self.host).await?;
            self.connect_and_open(&mut probe, &addrs).await
        };
        opened
            .await
            .map_err(|failure| Fault::new(failure.reason, failure.detail))
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
        if let Some(idle) = &self.idle {
            return Box::pin(self.run_idle(probe, idle)).await;
        }
        let addrs = probe.resolve(&self.host).await?;
        let mut cycles = Cycles::default();
        let mut first_failure = None;
        for index in 0..self.cycles {
            let start = Instant::now();
            let result = self.cycle(probe, &addrs, index == 0).await;
            cycles.seconds.push(start.elapsed().as_secs_f64());
            match result {
                Ok(()) => cycles.ok += 1,
                Err(failure) => {
                    cycles.failed += 1;
                    first_failure.get_or_insert(failure);
                }
            }
            if probe.expired() {
                break;
            }
        }
        probe.observe("cycles", format!("{}/{} ok", cycles.ok, self.cycles));
        probe.cycles = Some(cycles);
        if let Some(failure) = first_failure {
            return Err(failure);
        }
        self.beyond_select_one(probe, &addrs).await
    }

    /// The opt-in checks of what applications do, each on its own sessions.
    async fn beyond_select_one(
        &self,
        probe: &mut Probe<'_>,
        addrs: &[IpAddr],
    ) -> Result<(), Failure> {
        if let Some(bytes) = self.copy_bytes {
            let session = self.connect_and_open(probe, addrs).await?;
            let classify = |err: &tokio_postgres::Error| session.fault(err, self.sslmode);
            let moved = probe
                .phase_leaving(
                    Phase::Query,
                    mtu_reserve(probe),
                    copy::round_trip(&session.client, bytes, classify),
                )
                .await;
            let moved = match moved {
                Ok(moved) => {
                    probe.phase(Phase::Close, close(session)).await?;
                    moved
                }
                Err(failure) => return Err(self.stalled(probe, addrs, session, failure).await),
            };
            probe.observe(
                "copy",
                format!(
                    "{} in and back out in {:.3} s, {:.1} MiB/s, identical",
                    bytesize::ByteSize(moved.bytes).display().iec(),
                    moved.took.as_secs_f64(),
                    moved.mib_per_second()
                ),
            );
        }
        if self.prepared_statements {
            let finding = self.prepared(probe, addrs).await?;
            probe.observe("prepared_statements", finding.describe());
        }
        if let Some(sessions) = self.concurrency {
            self.crowd(probe, addrs, sessions).await?;
        }
        Ok(())
    }

    /// A query or COPY that failed: after a server's error the session is
    /// dropped as before (its connection task says Terminate on its own,
    /// unawaited); a stall (timeout) abandons it outright and is looked into
    /// on a fresh session for a path MTU black hole.
    async fn stalled(
        &self,
        probe: &mut Probe<'_>,
        addrs: &[IpAddr],
        session: Session,
        failure: Failure,
    ) -> Failure {
        if failure.reason != Reason::Timeout {
            drop(session);
            return failure;
        }
        session.driver.abort();
        let Ok(fresh) = self.connect_and_open(probe, addrs).await else {
            return failure;
        };
        let seen = probe
            .phase(Phase::Query, async {
                Ok(mtu::black_hole(&fresh.client).await)
            })
            .await;
        fresh.driver.abort();
        match seen {
            Ok(Some(seen)) => Failure::new(
                Phase::Query,
                Fault::new(Reason::PathMtu, format!("{}; {seen}", failure.detail)),
            ),
            _ => failure,
        }
    }

    /// Connect to one of `addrs` and open a session, timed by phase.
    async fn connect_and_open(
        &self,
        probe: &mut Probe<'_>,
        addrs: &[IpAddr],
    ) -> Result<Session, Failure> {
        let stream = probe.connect(addrs, self.port).await?;
        self.open(probe, stream).await
    }

    /// A named statement across transactions, with a second session
    /// holding a transaction so a pooler must move the first.
    async fn prepared(
        &self,
        probe: &mut Probe<'_>,
        addrs: &[IpAddr],
    ) -> Result<prepared::Finding, Failure> {
        let session = self.connect_and_open(probe, addrs).await?;
        let helper = match self.connect_and_open(probe, addrs).await {
            Ok(helper) => helper,
            Err(failure) => {
                let _ = close(session).await;
                return Err(failure);
            }
        };
        let classify = |err: &tokio_postgres::Error| {
            let mut fault = session.fault(err, self.sslmode);
            if fault.reason == Reason::PoolerIncompatible {
                fault.detail = format!(
                    "{}: a statement prepared in one transaction was gone in the next, so a pooler gave this session another server",
                    fault.detail
                );
            }
            fault
        };
        let client = &session.client;
        let finding = probe
            .phase(
                Phase::Query,
                prepared::across_transactions(client, &helper.client, classify),
            )
            .await;
        // Both sessions closed inside the close phase, under the deadline,
        // whatever the finding was.
        let closed = probe
            .phase(Phase::Close, async {
                let helper = close(helper).await;
                close(session).await.and(helper)
            })
            .await;
        let finding = finding?;
        closed?;
        Ok(finding)
    }

    /// Sessions opened (role and extensions checked), held idle for each
    /// step, then queried and closed.
    async fn run_idle<'p>(&self, probe: &mut Probe<'p>, idle: &Idle) -> Result<(), Failure> {
        let open = |mut sibling: Probe<'p>| async move {
            let opened = self.hold(&mut sibling).await;
            (sibling, opened)
        };
        let use_it = |mut sibling: Probe<'p>, session: Session| async move {
            let queried = self.query_and_close(&mut sibling, session).await;
            (sibling, queried)
        };
        idle::run(probe, idle, open, use_it).await
    }

    /// One session, open and judged, to hold idle.
    async fn hold(&self, probe: &mut Probe<'_>) -> Result<IdleSession<Session>, Failure> {
        let addrs = probe.resolve(&self.host).await?;
        let session = self.connect_and_open(probe, &addrs).await?;
        self.check_server(probe, &session).await?;
        let heard = session.heard.clone();
        Ok(IdleSession { session, heard })
    }

    /// The check's query on an open session, then its close.
    async fn query_and_close(
        &self,
        probe: &mut Probe<'_>,
        session: Session,
    ) -> Result<(), Failure> {
        let heard = session.heard.clone();
        let queried = probe
            .phase(Phase::Query, async {
                let rows = session.client.simple_query(&self.query).await;
                rows.map_err(|err| classify(&err, &heard, self.sslmode, Step::Query, None))
            })
            .await;
        match queried {
            // No answer: a Terminate would wait on a silent path too.
            Err(failure) if failure.reason == Reason::Timeout => {
                session.driver.abort();
                Err(failure)
            }
            queried => {
                let closed = probe.phase(Phase::Close, close(session)).await;
                queried.and(closed).map(drop)
            }
        }
    }

    /// `sessions` full cycles held open at once.
    async fn crowd<'p>(
        &self,
        probe: &mut Probe<'p>,
        addrs: &[IpAddr],
        sessions: u32,
    ) -> Result<(), Failure> {
        let open = |mut sibling: Probe<'p>| async move {
            let opened = self.connect_and_open(&mut sibling, addrs).await;
            (sibling, opened)
        };
        let finish = |mut sibling: Probe<'p>, session: Session| async move {
            self.query_and_close(&mut sibling, session).await
        };
        crowd::run(probe, sessions, open, finish).await
    }

    /// One open / auth / query / close cycle; the first also checks role and
    /// extensions, which do not change between cycles.
    async fn cycle(
        &self,
        probe: &mut Probe<'_>,
        addrs: &[IpAddr],
        first: bool,
    ) -> Result<(), Failure> {
        let connecting = Instant::now();
        let stream = probe.connect(addrs, self.port).await?;
        let connect = connecting.elapsed();
        let session = self.open(probe, stream).await?;
        if first {
            self.check_server(probe, &session).await?;
        }
        let heard = session.heard.clone();
        let querying = Instant::now();
        let queried = probe
            .phase_leaving(Phase::Query, mtu_reserve(probe), async {
                let rows = session.client.simple_query(&self.query).await;
                rows.map_err(|err| classify(&err, &heard, self.sslmode, Step::Query, None))
            })
            .await;
        if let Err(failure) = queried {
            return Err(self.stalled(probe, addrs, session, failure).await);
        }
        if first {
            probe.observe_hops(connect, querying.elapsed());
        }
        probe.phase(Phase::Close, close(session)).await
    }
}

/// Time a query keeps back from its deadline to look into a stall: a
/// quarter of the check's timeout, at most MTU_RESERVE.
fn mtu_reserve(probe: &Probe<'_>) -> Duration {
    (probe.timeout() / 4).min(MTU_RESERVE)
}

const MTU_RESERVE: Duration = Duration::from_secs(3);
