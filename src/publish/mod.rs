//! Where results go besides the exit code: Prometheus (`serve`'s
//! `/metrics`, a Pushgateway) and CloudWatch (Embedded Metric Format).

pub mod emf;
pub mod families;
pub mod ledger;
pub mod metrics;
pub mod pushgateway;
