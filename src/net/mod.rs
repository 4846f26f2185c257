//! The shared network steps every check kind uses: resolving names through
//! the suite's resolver (one lookup per name in flight, [`lookups`]),
//! connecting TCP, and classifying what went wrong.

pub mod certs;
pub mod ending;
pub mod fetch;
pub mod frames;
pub mod lookups;
pub mod socket;
pub mod tls;
pub mod url_parts;
pub mod wire;

use crate::outcome::{Fault, Reason};
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A byte stream, plain or TLS, that checks can hold without naming which.
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// A boxed [`Duplex`] stream.
pub type BoxedStream = Box<dyn Duplex>;

/// One resolver for every name in a suite, so all checks see the same DNS.
/// Shared behind an `Arc`: every check's task holds a `Net`, and the
/// resolver itself is hundreds of bytes.
#[derive(Clone)]
pub struct Net {
    resolver: Arc<TokioResolver>,
    /// Checks resolving one name at once share one lookup.
    lookups: lookups::Lookups,
}

impl Net {
    /// A resolver for `server`, or the system's (`/etc/resolv.conf` and
    /// `/etc/hosts`, where ECS Service Connect writes its names) when `None`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Net> {
        let (config, mut opts, hosts) = match server {
            Some(addr) => {
                let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                let config = ResolverConfig::from_parts(None, vec![], group);
                (config, ResolverOpts::default(), ResolveHosts::Never)
            }
            None => {
                let (config, opts) = hickory_resolver::system_conf::read_system_conf()?;
                (config, opts, ResolveHosts::Always)
            }
        };
        opts.use_hosts_file = hosts;
        // A probe must see the resolver's current answer on every run.
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Ok(Net {
            resolver: Arc::new(resolver),
            lookups: lookups::Lookups::default(),
        })
    }

    /// Addresses for `host`; an IP literal is returned as is, without DNS.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Fault> {
        let literal = url_parts::bare_host(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = self.resolver.clone();
        let owned = host.to_string();
        self.lookups
            .resolve(host, move || Box::pin(lookup(resolver, owned)))
            .await
    }
}

/// One query of `host`'s addresses, sorted (IPv4 first) and deduplicated.
/// Its state is kilobytes: boxed by [`lookups::Lookups`], held only while
/// it runs and once per name, never inside every check's future.
async fn lookup(resolver: Arc<TokioResolver>, host: String) -> lookups::Answer {
    let lookup = resolver
        .lookup_ip(host.as_str())
        .await
        .map_err(|err| classify_resolve(&host, &err))?;
    let mut addrs: Vec<IpAddr> = lookup.iter().collect();
    addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(Fault::new(
            Reason::DnsNxdomain,
            format!("{host}: no address records"),
        ));
    }
    Ok(addrs)
}

/// Classify a resolver error from its protocol error kind and response code.
pub fn classify_resolve(host: &str, err: &ResolveError) -> Fault {
    use ResponseCode::{NXDomain, NoError};
    match err.proto().map(|proto| proto.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            let reason = match *response_code {
                NXDomain | NoError => Reason::DnsNxdomain,
                _ => Reason::DnsServfail,
            };
            Fault::new(reason, format!("{host}: resolver answered {response_code}"))
        }
        Some(ProtoErrorKind::Timeout | ProtoErrorKind::Io(_) | ProtoErrorKind::NoConnections) => {
            Fault::new(Reason::DnsTimeout, format!("{host}: {err}"))
        }
        _ => Fault::new(Reason::DnsServfail, format!("{host}: {err}")),
    }
}

/// Connect to the first address that accepts; the last error is classified.
pub async fn connect(addrs: &[IpAddr], port: u16) -> Result<TcpStream, Fault> {
    let mut last = Fault::new(Reason::ConnectUnreachable, "no address to connect to");
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Probes exchange a few small messages; do not wait on Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = Fault::new(classify_connect(&err), format!("{addr}: {err}")),
        }
    }
    Err(last)
}

/// Classify a failed TCP connect from its `io::ErrorKind`. A reset during
/// the handshake means something accepted and hung up at once.
pub fn classify_connect(err: &io::Error) -> Reason {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectRefused,
        io::ErrorKind::TimedOut => Reason::ConnectTimeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Reason::ClosedByPeer,
        _ => Reason::ConnectUnreachable,
    }
}

/// The `io::ErrorKind` somewhere in an error's chain of causes, if an I/O
/// error caused it (protocol libraries wrap them).
pub fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cause = Some(err);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cause = error.source();
    }
    None
}

/// I/O errors that mean the peer went away.
pub fn is_hang_up(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// True for addresses that are not routable on the internet: the answer a
/// private hosted zone should give inside a VPC.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [first, second, ..] = v4.octets();
            let cgnat = first == 100 && (second & 0xc0) == 64; // 100.64.0.0/10
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || cgnat
        }
        IpAddr::V6(v6) => {
            let ula = (v6.segments()[0] & 0xfe00) == 0xfc00;
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            v6.is_loopback()
                || ula
                || link_local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(v4.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_public_addresses() {
        for private in [
            "10.0.1.12",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "fd00::1",
            "::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "203.0.113.7",
            "52.1.2.3",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2600::1",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn connect_errors_classify_by_kind() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_connect(&refused), Reason::ConnectRefused);
        let unreachable = io::Error::from(io::ErrorKind::NetworkUnreachable);
        assert_eq!(classify_connect(&unreachable), Reason::ConnectUnreachable);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify_connect(&timed_out), Reason::ConnectTimeout);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify_connect(&reset), Reason::ClosedByPeer);
    }

    #[tokio::test]
    async fn ip_literals_skip_dns() {
        let net = Net::new(
            Some("127.0.0.1:9".parse().unwrap()),
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(
            net.resolve("127.0.0.7").await.unwrap(),
            vec!["127.0.0.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            net.resolve("[::1]").await.unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
    }
}
