//! [`Probe`]: what a running check uses to time its phases under the
//! check's deadline, open connections (resolve, connect, TLS), and note
//! what it saw; [`InFlight`], the phase it is in for whoever runs it.

use crate::net::tls::TlsSetup;
use crate::net::wire::{Heard, Spoke, Wire};
use crate::net::{self, tls, BoxedStream, Net};
use crate::outcome::{
    AddressResult, Cycles, Facts, Failure, Fault, Handshake, IdleStep, Phase, Reason,
    ServerIdentity,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The phase a check is in, shared with whoever runs it, so a check that
/// crashes is still reported in the phase it crashed in.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<std::sync::Mutex<Option<Phase>>>);

impl InFlight {
    /// The phase entered last; `resolve` before any was entered.
    pub fn phase(&self) -> Phase {
        let entered = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        entered.unwrap_or(Phase::Resolve)
    }

    fn enter(&self, phase: Phase) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(phase);
    }
}

/// What a sibling probe learned of the path: its observations, facts and
/// the server that answered.
#[derive(Debug, Clone, Default)]
pub struct Learned {
    observed: BTreeMap<&'static str, String>,
    facts: Facts,
    server: Option<ServerIdentity>,
}

/// The running state of one check: its deadline, phase timings and findings.
pub struct Probe<'a> {
    net: &'a Net,
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
    in_flight: InFlight,
    pub phases: BTreeMap<Phase, Duration>,
    pub observed: BTreeMap<&'static str, String>,
    /// The facts read back by metrics, the report and the evidence.
    pub facts: Facts,
    pub cycles: Option<Cycles>,
    /// Each address's result with `addresses = "all"`.
    pub addresses: Vec<AddressResult>,
    /// The database server that answered, when the kind can tell.
    pub server: Option<ServerIdentity>,
    /// Each idle step's fate (`idle`).
    pub idle: Vec<IdleStep>,
    /// The one address this probe connects to, already resolved.
    pin: Option<IpAddr>,
    /// Keepalives on every connection this probe opens (`tcp_keepalive`).
    pub(super) keepalive: Option<Duration>,
}

impl<'a> Probe<'a> {
    pub fn new(net: &'a Net, timeout: Duration, in_flight: InFlight) -> Self {
        Probe {
            net,
            deadline: Instant::now() + timeout,
            timeout,
            in_flight,
            phases: BTreeMap::new(),
            observed: BTreeMap::new(),
            facts: Facts::default(),
            cycles: None,
            addresses: Vec::new(),
            server: None,
            idle: Vec::new(),
            pin: None,
            keepalive: None,
        }
    }

    /// Run one phase under the check's deadline, adding its time to the
    /// phase total; a deadline hit becomes the phase's timeout reason.
    pub async fn phase<T>(
        &mut self,
        phase: Phase,
        work: impl Future<Output = Result<T, Fault>>,
    ) -> Result<T, Failure> {
        self.phase_leaving(phase, Duration::ZERO, work).await
    }

    /// [`Probe::phase`], ending `reserve` before the deadline, so a check
    /// keeps time to find out why the phase stalled.
    pub async fn phase_leaving<T>(
        &mut self,
        phase: Phase,
        reserve: Duration,
        work: impl Future<Output = Result<T, Fault>>,
    ) -> Result<T, Failure> {
        self.in_flight.enter(phase);
        let start = Instant::now();
        let result = tokio::time::timeout_at(self.deadline - reserve, work).await;
        self.add_time(phase, start.elapsed());
        match result {
            Ok(done) => done.map_err(|fault| Failure::new(phase, fault)),
            Err(_) => Err(Failure::new(
                phase,
                Fault::new(
                    phase.deadline_reason(),
                    match reserve {
                        Duration::ZERO => format!(
                            "no answer within the check's {} deadline",
                            humantime::format_duration(self.timeout)
                        ),
                        _ => format!(
                            "no answer within {} (the check's {} deadline less the time kept to find out why)",
                            humantime::format_duration(self.timeout.saturating_sub(reserve)),
                            humantime::format_duration(self.timeout)
                        ),
                    },
                ),
            )),
        }
    }

    /// Add time to a phase total (also used to split a measured span).
    pub fn add_time(&mut self, phase: Phase, spent: Duration) {
        *self.phases.entry(phase).or_default() += spent;
    }

    /// Move time measured inside one phase to another, e.g. TLS inside auth.
    pub fn move_time(&mut self, from: Phase, to: Phase, spent: Duration) {
        if let Some(total) = self.phases.get_mut(&from) {
            *total = total.saturating_sub(spent);
        }
        self.add_time(to, spent);
    }

    /// A probe for one of several sessions run at once: the same resolver
    /// and deadline, its own phases and findings.
    pub fn sibling(&self) -> Probe<'a> {
        Probe {
            net: self.net,
            deadline: self.deadline,
            timeout: self.timeout,
            in_flight: InFlight::default(),
            phases: BTreeMap::new(),
            observed: BTreeMap::new(),
            facts: Facts::default(),
            cycles: None,
            addresses: Vec::new(),
            server: None,
            idle: Vec::new(),
            pin: self.pin,
            keepalive: self.keepalive,
        }
    }

    /// The same, held to one address its name already resolved to.
    pub fn pinned(self, address: IpAddr) -> Probe<'a> {
        Probe {
            pin: Some(address),
            ..self
        }
    }

    /// The check's whole time: its timeout, from start to deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True once the deadline has passed: further cycles would only time out.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn observe(&mut self, key: &'static str, value: impl Into<String>) {
        self.observed.insert(key, value.into());
    }

    /// A completed TLS handshake: a fact, and shown as `tls` / `tls_cipher`.
    pub fn handshake(&mut self, version: impl Into<String>, cipher: Option<String>) {
        let version = version.into();
        self.observe("tls", version.clone());
        if let Some(cipher) = &cipher {
            self.observe("tls_cipher", cipher.clone());
        }
        self.facts.tls = Some(Handshake { version, cipher });
    }

    /// What this probe learned of the path, for the probe it is a sibling of.
    pub fn learned(&self) -> Learned {
        Learned {
            observed: self.observed.clone(),
            facts: self.facts.clone(),
            server: self.server.clone(),
        }
    }

    /// What a sibling (an address, an idle step, a crowd's session) learned
    /// of the path that this probe does not know yet: the one rule for
    /// every kind of sibling.
    pub fn absorb(&mut self, learned: Learned) {
        for (key, value) in learned.observed {
            self.observed.entry(key).or_insert(value);
        }
        self.facts.absorb(learned.facts);
        if self.server.is_none() {
            self.server = learned.server;
        }
    }

    /// Per-hop latency: the TCP connect (one round trip to the first hop,
    /// HAProxy or a load balancer) next to the first request's round trip
    /// (through every hop to the server), so what the proxies add shows.
    pub fn observe_hops(&mut self, connect: Duration, request: Duration) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.observe(
            "latency",
            format!(
                "connect {:.2} ms (first hop), first request {:.2} ms (every hop to the server)",
                ms(connect),
                ms(request)
            ),
        );
    }

    /// Resolve through the suite's resolver, noting the answer.
    pub async fn resolve(&mut self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        if let Some(address) = self.pin {
            return Ok(vec![address]);
        }
        let net = self.net;
        let addrs = self.phase(Phase::Resolve, net.resolve(host)).await?;
        let listed: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        self.observe("addresses", listed.join(","));
        self.facts.resolved = addrs.clone();
        Ok(addrs)
    }

    /// Open a TCP connection to one of `addrs`, timed as the connect phase.
    pub async fn connect(&mut self, addrs: &[IpAddr], port: u16) -> Result<TcpStream, Failure> {
        let stream = self
            .phase(Phase::Connect, net::connect(addrs, port))
            .await?;
        if let Ok(peer) = stream.peer_addr() {
            self.observe("peer", peer.to_string());
            self.facts.peer = Some(peer);
        }
        if let Some(every) = self.keepalive {
            if let Err(err) = net::socket::keep_alive(&stream, every) {
                self.observe("tcp_keepalive", format!("not set: {err}"));
            }
        }
        Ok(stream)
    }

    /// Resolve, connect and, when `tls` is set, run the TLS handshake: the
    /// stream a client protocol runs over, and what the server said on it
    /// above TLS (ciphertext tells nothing about the protocol).
    pub async fn open(
        &mut self,
        host: &str,
        port: u16,
        tls: Option<&TlsSetup>,
    ) -> Result<Opened, Failure> {
        let addrs = self.resolve(host).await?;
        let tcp = self.connect(&addrs, port).await?;
        let peer = tcp.peer_addr().map_err(|err| {
            Failure::new(
                Phase::Connect,
                Fault::new(Reason::ClosedByPeer, err.to_string()),
            )
        })?;
        let (raw, raw_heard) = Wire::with_limit(tcp, crate::net::wire::MAX_ANSWER);
        let Some(setup) = tls else {
            let stream: BoxedStream = Box::new(raw);
            return Ok(Opened {
                stream,
                heard: raw_heard.clone(),
                raw: raw_heard,
                peer,
                tls: false,
            });
        };
        let name = setup.name(host);
        let handshake = tls::handshake(raw, name, setup.config.clone(), &raw_heard);
        let stream = self.phase(Phase::Tls, handshake).await.map_err(|mut failure| {
            if failure.reason == Reason::Timeout && raw_heard.bytes() == 0 {
                failure.detail = format!(
                    "{}: not a byte in answer to the TLS ClientHello; the port may not speak TLS (a plain Redis waits silently for a newline)",
                    failure.detail
                );
            }
            failure
        })?;
        self.handshake(tls::version(&stream), tls::cipher(&stream));
        let (wire, heard) = Wire::new(stream);
        let stream: BoxedStream = Box::new(wire);
        Ok(Opened {
            stream,
            heard,
            raw: raw_heard,
            peer,
            tls: true,
        })
    }

    /// A plain connection that the server hung up on, or answered with a
    /// TLS record, may have reached a TLS-only port: one ClientHello to the
    /// same address proves it (a ServerHello comes back) before the check
    /// says `tls_required`. Anything else keeps its failure.
    pub async fn tls_required(
        &mut self,
        failure: Failure,
        opened: &OpenedFacts,
        host: &str,
    ) -> Failure {
        let hung_up = matches!(
            failure.reason,
            Reason::ClosedByPeer | Reason::ProtocolError | Reason::UnexpectedResponse
        );
        let candidate = match opened.heard.spoke(&[]) {
            Spoke::Nothing => true,
            Spoke::Other(byte) => matches!(byte, 0x15 | 0x16),
            Spoke::Protocol => false,
        };
        if opened.tls || !hung_up || !candidate || self.expired() {
            return failure;
        }
        let start = Instant::now();
        let proof =
            tokio::time::timeout_at(self.deadline, tls::speaks_tls(opened.peer, host)).await;
        self.add_time(failure.phase, start.elapsed());
        if proof != Ok(true) {
            return failure;
        }
        let detail = format!(
            "{} closed the plain connection ({}), and answered a TLS ClientHello with a ServerHello: this port only speaks TLS",
            opened.peer,
            failure.detail
        );
        Failure::new(failure.phase, Fault::new(Reason::TlsRequired, detail))
    }
}

/// An open connection: the stream, and the facts its failures are judged by.
pub struct Opened {
    pub stream: BoxedStream,
    /// What the server said, above TLS.
    pub heard: Arc<Heard>,
    /// The TCP connection's own record, beneath TLS: how it ended.
    pub raw: Arc<Heard>,
    pub peer: SocketAddr,
    pub tls: bool,
}

impl Opened {
    /// The stream, and the facts kept apart for judging failures.
    pub fn split(self) -> (BoxedStream, OpenedFacts) {
        let facts = OpenedFacts {
            heard: self.heard,
            raw: self.raw,
            peer: self.peer,
            tls: self.tls,
        };
        (self.stream, facts)
    }
}

/// What [`Probe::tls_required`] and the classifiers need of a connection.
pub struct OpenedFacts {
    pub heard: Arc<Heard>,
    /// The TCP connection's own record, beneath TLS: how it ended.
    pub raw: Arc<Heard>,
    pub peer: SocketAddr,
    pub tls: bool,
}
