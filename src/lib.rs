//! `vpc-probe` proves, from inside the application subnets, that the path to
//! the data plane works and is no wider than intended: DNS answers the
//! private address, HAProxy accepts, PostgreSQL completes full sessions with
//! the right role and extensions, Redis / Valkey answers AUTH and PING, the
//! internal HTTP services answer, and paths that must stay closed do.
//! Every failure carries a fixed [`outcome::Reason`] and a hint.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap derive).
//! - [`app`]: what each subcommand does, and the exit code contract.
//! - [`config`]: suite files: parsing, `${ENV}` expansion, secrets, validation.
//! - [`check`]: one module per check kind, and the [`check::Probe`] that
//!   times each phase under the check's deadline.
//! - [`net`]: the resolver, TCP connect, TLS, and the [`net::wire::Wire`]
//!   stream that remembers what a server said first.
//! - [`outcome`]: reasons, phases, failures, and the hint table.
//! - [`runner`]: runs a suite's checks concurrently.
//! - [`report`]: text table, JSON, JUnit XML, and the comparison of runs
//!   from several subnets.
//! - [`publish`]: Prometheus exposition, Pushgateway, CloudWatch EMF.
//! - [`serve`]: the long-running mode: schedule, `/metrics`, signals.
//! - [`ecs`]: the task identity (cluster, task, AZ, subnet) from ECS
//!   task metadata v4.

pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod ecs;
pub mod expand;
pub mod net;
pub mod outcome;
pub mod publish;
pub mod report;
pub mod runner;
pub mod secret;
pub mod serve;
pub mod suite;
