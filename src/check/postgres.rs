//! `kind = "postgres"`: N full open / TLS / auth / query / close cycles,
//! the server's role (`pg_is_in_recovery()`) and required extensions, all
//! over the simple query protocol so PgBouncer transaction pooling works.
//! Opt-in, for what applications do beyond `SELECT 1`: a COPY round trip
//! (`copy`), named prepared statements across transactions (`prepared`),
//! and many sessions at once (`concurrency`, through [`super::crowd`]).

mod copy;
mod mtu;
mod prepared;

use super::crowd::{self, MAX_CONCURRENCY};
use super::keys::{self, Problem};
use super::Probe;
use crate::expand::Env;
use crate::net::frames::Frames;
use crate::net::tls::{self, TlsSetup, Verify};
use crate::net::url_parts::{host_port, percent_decode};
use crate::net::wire::{Heard, Wire};
use crate::net::{io_kind, is_hang_up, Net};
use crate::outcome::{Cycles, Failure, Fault, Phase, Reason};
use crate::secret::{Scrubber, Secret};
use futures_util::future::BoxFuture;
use rustls::ClientConfig;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Longest run of cycles one check may ask for.
const MAX_CYCLES: u32 = 1000;

/// The suite keys of `kind = "postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    url: Env<url::Url>,
    password: Option<Secret>,
    password_file: Option<Env<PathBuf>>,
    cycles: Option<u32>,
    query: Option<Env<String>>,
    expect_role: Option<Env<String>>,
    expect_extensions: Option<Vec<Env<String>>>,
    ca_file: Option<Env<PathBuf>>,
    tls_server_name: Option<Env<String>>,
    copy_bytes: Option<Env<String>>,
    #[serde(default)]
    prepared_statements: bool,
    concurrency: Option<u32>,
}

impl Keys {
    /// The keys that say where and how to connect, with the rest at their
    /// defaults: the failover drill's endpoints are built by these rules.
    pub fn endpoint(
        url: Env<url::Url>,
        password: Option<Secret>,
        password_file: Option<Env<PathBuf>>,
        ca_file: Option<Env<PathBuf>>,
        tls_server_name: Option<Env<String>>,
    ) -> Keys {
        Keys {
            url,
            password,
            password_file,
            cycles: None,
            query: None,
            expect_role: None,
            expect_extensions: None,
            ca_file,
            tls_server_name,
            copy_bytes: None,
            prepared_statements: false,
            concurrency: None,
        }
    }

    pub fn build(self, scrubber: &mut Scrubber) -> Result<PostgresSpec, Problem> {
        let Env(url) = &self.url;
        keys::scheme(url, &["postgres", "postgresql"])?;
        let (host, port) = keys::host_and_port(url, 5432)?;
        let user = percent_decode(url.username());
        if user.is_empty() {
            return Err(Problem::at(
                "url",
                "needs a user, e.g. postgres://probe@host:5432/app",
            ));
        }
        let password = keys::password(url, self.password, self.password_file, scrubber)?;
        let dbname = match url.path().trim_start_matches('/') {
            "" => user.clone(),
            path => percent_decode(path),
        };
        let (sslmode, application_name) = url_parameters(url)?;
        let verify = match sslmode {
            // libpq: without a root certificate, require and prefer only encrypt.
            SslMode::Prefer | SslMode::Require if self.ca_file.is_none() => Verify::Nothing,
            _ => Verify::Full,
        };
        let tls = keys::tls_setup(
            sslmode != SslMode::Disable,
            verify,
            self.ca_file.as_ref(),
            self.tls_server_name,
        )?;
        let cycles = self.cycles.unwrap_or(1);
        if cycles == 0 || cycles > MAX_CYCLES {
            return Err(Problem::at(
                "cycles",
                format!("must be between 1 and {MAX_CYCLES}"),
            ));
        }
        let query = self.query.map_or_else(|| "SELECT 1".into(), |Env(q)| q);
        if query.trim().is_empty() {
            return Err(Problem::at("query", "must not be empty"));
        }
        Ok(PostgresSpec {
            host,
            port,
            user,
            password,
            dbname,
            application_name,
            sslmode,
            tls,
            cycles,
            query,
            expect_role: role(self.expect_role)?,
            expect_extensions: keys::strings(self.expect_extensions),
            copy_bytes: keys::byte_size(self.copy_bytes, "copy_bytes", copy::MAX_COPY_BYTES)?,
            prepared_statements: self.prepared_statements,
            concurrency: keys::concurrency(self.concurrency, MAX_CONCURRENCY)?,
        })
    }
}

/// `sslmode` and `application_name` from the URL's query.
fn url_parameters(url: &url::Url) -> Result<(SslMode, String), Problem> {
    let mut sslmode = SslMode::Prefer;
    let mut application_name = "vpc-probe".to_string();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => sslmode = parse_sslmode(&value)?,
            "application_name" => application_name = value.into_owned(),
            other => {
                return Err(Problem::at(
                    "url",
                    format!("unsupported URL parameter `{other}` (sslmode, application_name)"),
                ))
            }
        }
    }
    Ok((sslmode, application_name))
}

fn parse_sslmode(value: &str) -> Result<SslMode, Problem> {
    match value {
        "disable" => Ok(SslMode::Disable),
        "allow" | "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-ca" | "verify-full" => Ok(SslMode::VerifyFull),
        _ => Err(Problem::at(
            "url",
            "sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
        )),
    }
}

fn role(expect_role: Option<Env<String>>) -> Result<Role, Problem> {
    match expect_role.as_ref().map(|Env(r)| r.as_str()) {
        None | Some("any") => Ok(Role::Any),
        Some("primary") => Ok(Role::Primary),
        Some("replica") => Ok(Role::Replica),
        Some(_) => Err(Problem::at(
            "expect_role",
            "must be primary, replica or any",
        )),
    }
}

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
}

/// An open session and the task driving its connection.
pub struct Session {
    pub client: Client,
    driver: JoinHandle<Result<(), tokio_postgres::Error>>,
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

    /// Resolve, connect and start a session in one untimed step, for
    /// callers that keep their own clock (the failover drill).
    pub async fn session(&self, net: &Net) -> Result<Session, Fault> {
        let addrs = net.resolve(&self.host).await?;
        let tcp = crate::net::connect(&addrs, self.port).await?;
        let (wire, heard) = Wire::new(tcp);
        let tls_state = Arc::new(Mutex::new(TlsState::default()));
        let (client, driver) = self.startup(wire, &heard, &tls_state).await?;
        Ok(Session {
            client,
            driver,
            heard,
        })
    }

    pub async fn run(&self, probe: &mut Probe<'_>) -> Result<(), Failure> {
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
        let closed = (close(helper).await, close(session).await);
        let finding = finding?;
        probe
            .phase(Phase::Close, async { closed.0.and(closed.1) })
            .await?;
        Ok(finding)
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
            let heard = session.heard.clone();
            let queried = sibling
                .phase(Phase::Query, async {
                    let rows = session.client.simple_query(&self.query).await;
                    rows.map_err(|err| classify(&err, &heard, self.sslmode, Step::Query, None))
                })
                .await;
            let closed = sibling.phase(Phase::Close, close(session)).await;
            queried.and(closed).map(drop)
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

    /// Startup, TLS and authentication; TLS time is split out of auth.
    async fn open(&self, probe: &mut Probe<'_>, stream: TcpStream) -> Result<Session, Failure> {
        let (wire, heard) = Wire::new(stream);
        let tls_state = Arc::new(Mutex::new(TlsState::default()));
        let opened = probe
            .phase(Phase::Auth, self.startup(wire, &heard, &tls_state))
            .await;
        let state = *tls_state.lock().expect("tls state lock");
        match state.spent {
            Some(spent) => {
                probe.move_time(Phase::Auth, Phase::Tls, spent);
                probe.observe("tls", if state.failed { "failed" } else { "on" });
            }
            None => probe.observe("tls", "off"),
        }
        let (client, driver) = opened?;
        Ok(Session {
            client,
            driver,
            heard,
        })
    }

    async fn startup(
        &self,
        wire: Wire<TcpStream>,
        heard: &Heard,
        tls_state: &Arc<Mutex<TlsState>>,
    ) -> Result<(Client, Driver), Fault> {
        let config = self.config();
        let opened = match &self.tls {
            Some(tls) => {
                let name = tls.name(&self.host);
                let connect =
                    timed_tls::<Frames<Wire<TcpStream>>>(&tls.config, name, tls_state.clone())?;
                let opened = config
                    .connect_raw(Frames::after_ssl_request(wire), connect)
                    .await;
                opened.map(|(client, connection)| (client, tokio::spawn(connection)))
            }
            None => {
                let opened = config.connect_raw(Frames::messages(wire), NoTls).await;
                opened.map(|(client, connection)| (client, tokio::spawn(connection)))
            }
        };
        let tls_failed = tls_state.lock().expect("tls state lock").failed;
        let tls_failed = tls_failed.then(|| {
            self.tls
                .as_ref()
                .map_or(self.host.as_str(), |t| t.name(&self.host))
        });
        opened.map_err(|err| classify(&err, heard, self.sslmode, Step::Startup, tls_failed))
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .host(&self.host)
            .port(self.port)
            .application_name(&self.application_name)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        config
    }

    /// The role behind the port and the required extensions.
    async fn check_server(&self, probe: &mut Probe<'_>, session: &Session) -> Result<(), Failure> {
        let heard = &session.heard;
        // The server behind the port, and its timeline on a primary, so a
        // report or a metric shows when the primary behind HAProxy changed.
        let sql = "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END; \
                   SELECT host(inet_server_addr()) || ':' || inet_server_port(), \
                   CASE WHEN pg_is_in_recovery() THEN NULL \
                   ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END; \
                   SELECT extname FROM pg_extension";
        let messages = probe
            .phase(Phase::Query, async {
                let rows = session.client.simple_query(sql).await;
                rows.map_err(|err| classify(&err, heard, self.sslmode, Step::Query, None))
            })
            .await?;
        if let Some(server) = column_of_statement(&messages, 1, 0) {
            probe.observe("server", server);
        }
        if let Some(timeline) = column_of_statement(&messages, 1, 1) {
            probe.observe("timeline", timeline);
        }
        let mut values = rows(&messages).into_iter();
        let role = values.next().unwrap_or_default();
        values.next(); // the server, read above
        if role.is_empty() {
            let detail = "the server answered the role query (pg_is_in_recovery()) without a value";
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::UnexpectedResponse, detail),
            ));
        }
        let extensions: BTreeSet<String> = values.collect();
        probe.observe("role", role.clone());
        let wrong_role = match self.expect_role {
            Role::Any => false,
            Role::Primary => role != "primary",
            Role::Replica => role != "replica",
        };
        if wrong_role {
            let detail = format!(
                "expected a {:?} but the server is a {role}",
                self.expect_role
            )
            .to_lowercase();
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::WrongRole, detail),
            ));
        }
        let missing: Vec<&str> = self
            .expect_extensions
            .iter()
            .filter(|name| !extensions.contains(*name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let detail = format!(
                "not installed in database {}: {}",
                self.dbname,
                missing.join(", ")
            );
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::MissingExtension, detail),
            ));
        }
        Ok(())
    }
}

/// Column `column` of the first row of statement `statement` (0-based)
/// in a multi-statement simple query's answer.
fn column_of_statement(
    messages: &[SimpleQueryMessage],
    statement: usize,
    column: usize,
) -> Option<String> {
    messages
        .split(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .nth(statement)?
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.try_get(column).ok().flatten().map(str::to_string),
            _ => None,
        })
}

/// The first column of every row, across statements.
fn rows(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| match message {
            // A hostile server may send a row without columns: `get` would panic.
            SimpleQueryMessage::Row(row) => row.try_get(0).ok().flatten().map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Terminate the session and wait until the server has closed it, so a
/// probe never leaves server sessions behind.
async fn close(session: Session) -> Result<(), Fault> {
    drop(session.client);
    match session.driver.await {
        Ok(_) => Ok(()),
        Err(err) => Err(Fault::new(
            Reason::ProtocolError,
            format!("connection task failed: {err}"),
        )),
    }
}

/// Time a query keeps back from its deadline to look into a stall: a
/// quarter of the budget, at most MTU_RESERVE.
fn mtu_reserve(probe: &Probe<'_>) -> Duration {
    (probe.budget() / 4).min(MTU_RESERVE)
}

const MTU_RESERVE: Duration = Duration::from_secs(3);

/// The task that drives a session's connection until the server closes it.
type Driver = JoinHandle<Result<(), tokio_postgres::Error>>;

/// Where in a session an error was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Startup: TLS negotiation and authentication.
    Startup,
    Query,
}

/// Classify a session error: the server's SQLSTATE when it sent one, else
/// what the wire showed (nothing heard, another protocol, a TLS refusal).
/// `tls_failed` names the server name checked when the handshake failed.
fn classify(
    err: &tokio_postgres::Error,
    heard: &Heard,
    sslmode: SslMode,
    step: Step,
    tls_failed: Option<&str>,
) -> Fault {
    if let Some(db) = err.as_db_error() {
        let detail = format!(
            "server said: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        );
        return Fault::new(classify_server(db, step), detail).with_code(db.code().code());
    }
    let prefix = heard.prefix();
    // A real server answers SSLRequest with S, then TLS records follow.
    let banner =
        prefix.first() == Some(&b'S') && prefix.get(1).is_some_and(|b| ![0x15, 0x16].contains(b));
    if let (Some(name), false) = (tls_failed, banner) {
        return tls::explain(err, &heard.skip(1), name);
    }
    let tls_failed = tls_failed.is_some();
    let tls_required = matches!(sslmode, SslMode::Require | SslMode::VerifyFull);
    let prefix = heard.prefix();
    let reason = match heard.first_byte() {
        // A real server answers SSLRequest with the single byte S, then TLS
        // records (0x16 handshake, 0x15 alert) follow; anything else is a banner.
        Some(b'S') if tls_failed && prefix.get(1).is_some_and(|b| ![0x15, 0x16].contains(b)) => {
            Reason::ProtocolError
        }
        _ if tls_failed => Reason::TlsError,
        None => Reason::ClosedByPeer,
        Some(byte) if !STARTUP_REPLIES.contains(&byte) => Reason::ProtocolError,
        Some(b'N') if tls_required && heard.bytes() == 1 => Reason::TlsError,
        _ if io_kind(err) == Some(std::io::ErrorKind::InvalidData) => Reason::ProtocolError,
        Some(_) if err.is_closed() || io_kind(err).is_some_and(is_hang_up) => Reason::ClosedByPeer,
        Some(_) => Reason::ProtocolError,
    };
    let detail = match reason {
        Reason::ClosedByPeer if heard.bytes() == 0 => {
            "the server accepted the connection and closed it without a word".to_string()
        }
        Reason::TlsError if !tls_failed => {
            "the server does not support TLS (answered N to SSLRequest)".to_string()
        }
        Reason::ProtocolError if heard.bytes() > 0 => {
            format!(
                "not a PostgreSQL server: {err} (first byte {:#04x})",
                heard.first_byte().unwrap_or(0)
            )
        }
        _ => err.to_string(),
    };
    Fault::new(reason, detail)
}

/// First bytes a PostgreSQL server sends: an SSLRequest answer (S/N) or a
/// startup reply (authentication request R, error E).
const STARTUP_REPLIES: [u8; 4] = [b'S', b'N', b'R', b'E'];

/// Reason for a server error, from its SQLSTATE. PgBouncer (before 1.21)
/// reports a failed login, an unknown user and an unknown database all as
/// 08P01 during startup, where a real PostgreSQL never sends it to a
/// correct client. Refusing a plain connection shows in the message only:
/// pg_hba's "no encryption" (PostgreSQL) and "SSL required" (PgBouncer).
fn classify_server(db: &tokio_postgres::error::DbError, step: Step) -> Reason {
    let code = db.code();
    let pgbouncer_login = step == Step::Startup && *code == SqlState::PROTOCOL_VIOLATION;
    let plain_refused =
        db.message().contains("no encryption") || db.message().contains("SSL required");
    // PgBouncer says its limits in the same 08P01: they are not a login
    // failure (seen in the soak: 60 clients a second past max_client_conn 50).
    let pgbouncer_full = PGBOUNCER_LIMITS
        .iter()
        .any(|words| db.message().contains(words));
    if step == Step::Startup && plain_refused {
        Reason::TlsRequired
    } else if pgbouncer_full || *code == SqlState::TOO_MANY_CONNECTIONS {
        Reason::TooManyConnections
    } else if *code == SqlState::INVALID_SQL_STATEMENT_NAME
        || *code == SqlState::DUPLICATE_PSTATEMENT
    {
        // A named statement missing, or another client's there: only a
        // pooler sharing servers between clients does that to a driver.
        Reason::PoolerIncompatible
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        Reason::PermissionDenied
    } else if code.code().starts_with("28") || pgbouncer_login {
        Reason::AuthFailed
    } else if *code == SqlState::CANNOT_CONNECT_NOW {
        Reason::ClosedByPeer
    } else {
        Reason::UnexpectedResponse
    }
}

/// Words of PgBouncer's limit errors (all 08P01): max_client_conn, the
/// pool's size with query_wait_timeout, max_db_connections / max_user_connections.
const PGBOUNCER_LIMITS: [&str; 4] = [
    "no more connections allowed",
    "query_wait_timeout",
    "pool_size",
    "max_db_connections",
];

#[derive(Debug, Default, Clone, Copy)]
struct TlsState {
    spent: Option<Duration>,
    failed: bool,
}

/// A TLS connector that records how long the handshake took and whether it
/// failed: tokio-postgres runs it inside its startup, out of our sight.
struct TimedTls<T> {
    inner: T,
    state: Arc<Mutex<TlsState>>,
}

fn timed_tls<S>(
    config: &Arc<ClientConfig>,
    host: &str,
    state: Arc<Mutex<TlsState>>,
) -> Result<TimedTls<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>, Fault>
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    let mut make = MakeRustlsConnect::new(ClientConfig::clone(config));
    let inner = MakeTlsConnect::<S>::make_tls_connect(&mut make, host)
        .map_err(|err| Fault::new(Reason::TlsError, format!("{host}: {}", err.into())))?;
    Ok(TimedTls { inner, state })
}

impl<S, T> TlsConnect<S> for TimedTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send,
    T::Error: Send,
{
    type Stream = Frames<T::Stream>;
    type Error = T::Error;
    type Future = BoxFuture<'static, Result<Frames<T::Stream>, T::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        let start = Instant::now();
        let handshake = self.inner.connect(stream);
        let state = self.state;
        Box::pin(async move {
            let result = handshake.await;
            let mut state = state.lock().expect("tls state lock");
            state.spent = Some(start.elapsed());
            state.failed = result.is_err();
            // Above TLS, the messages are guarded again.
            result.map(Frames::messages)
        })
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for Frames<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.get_ref().channel_binding()
    }
}
