//! `vpc-probe` proves, from inside the application subnets, that the path to
//! the data plane works and is no wider than intended: DNS answers the
//! private address, HAProxy accepts, PostgreSQL completes full sessions with
//! the right role and extensions, Redis / Valkey answers AUTH and PING, the
//! internal HTTP services answer, and paths that must stay closed do; on
//! request also what applications do through the proxies (a COPY round
//! trip, prepared statements across transactions, many sessions at once)
//! and every address behind a name. Every failure carries a fixed
//! [`outcome::Reason`] and a hint; with an `[aws]` table, also the AWS
//! object behind it ([`outcome::Finding`]), read with describe calls only.
//!
//! # Layout
//!
//! The repository's `ARCHITECTURE.md` is the map: how a check travels from
//! suite file to metric, which module may import which, and the invariants.
//! Modules, from the leaves up:
//!
//! - [`outcome`]: the closed label sets (kinds, reasons, phases), failures,
//!   outcomes, and the one table of hints.
//! - [`expand`]: `${ENV}` expansion and the value types suite keys use.
//! - [`secret`]: secrets that never print, and the scrubber.
//! - [`net`]: the resolver (lookups of one name in flight shared by every
//!   check, [`net::lookups`]), TCP connect, TLS, the [`net::wire::Wire`] stream
//!   that remembers what a server said first and how the connection ended
//!   ([`net::ending`]), keepalives and TCP_INFO ([`net::socket`]), URL
//!   parts, and the plumbing HTTP client (reqwest).
//! - [`ecs`]: the task identity (cluster, task, AZ, subnet) from ECS task
//!   metadata v4.
//! - [`aws`]: describe-only AWS reads in the app's and the database's
//!   account (credentials from the standard chain, SigV4 by `aws-sigv4` on
//!   the plumbing client), the typed network they describe, and the path walk
//!   that names the security group rule, NACL entry, route, peering or
//!   hosted zone behind a path's result.
//! - [`check`]: one module per check kind (its suite keys, spec and run),
//!   the [`check::Probe`] that times each phase under the check's deadline,
//!   [`check::crowd`] (sessions held open at once),
//!   [`check::every_address`] (one run per resolved address) and
//!   [`check::idle`] (sessions held idle, then used: `idle_timeout`).
//! - [`drill`]: the failover drill: writes, reads and an open session
//!   measured through the endpoint while a change happens (a Patroni
//!   switchover behind HAProxy, an ElastiCache failover, a proxy reload).
//! - [`suite`]: a validated suite: what runs.
//! - [`config`]: suite files: TOML, spans, validation, `file:line:key` errors.
//! - [`runner`]: runs a suite's checks concurrently, one task each,
//!   isolating panics.
//! - [`report`]: the typed report document (JSON and its schema), text,
//!   JUnit XML, and the comparison of runs from several subnets.
//! - [`evidence`]: joins the AWS reads to a run's outcomes (one reading per
//!   run), and `vpc-probe paths`, the same questions without traffic.
//! - [`publish`]: Prometheus exposition, Pushgateway, CloudWatch EMF.
//! - [`serve`]: the long-running mode: schedule, `/metrics`, signals.
//! - [`cli`] and [`app`]: the command line and what each subcommand does,
//!   with the exit code contract.

/// A table of cases as one named `#[test]` per row, so a failing row never
/// hides the rest and `cargo test -- --list` shows every row:
/// `cases! { check_fn { row_name: input => expected; ... } }`.
#[cfg(test)]
#[macro_export]
macro_rules! cases {
    ($check:ident { $($name:ident: $input:expr => $want:expr;)* }) => {
        $(
            #[test]
            fn $name() {
                $check($input, $want)
            }
        )*
    };
}

pub mod app;
pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod drill;
pub mod ecs;
pub mod evidence;
pub mod expand;
pub mod gate;
pub mod net;
pub mod outcome;
pub mod publish;
pub mod report;
pub mod runner;
pub mod secret;
pub mod serve;
pub mod suite;
