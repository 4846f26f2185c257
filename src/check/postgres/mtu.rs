//! Telling a path MTU black hole from a hung server. When a query or a
//! COPY stalls, a fresh session asks for a small answer (one packet on any
//! path) and then a large one (several full-size segments): a server that
//! sends the first and never the second, on a path where small exchanges
//! work, is behind a path that drops big packets without the ICMP
//! "fragmentation needed" that would shrink them.

use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Fits in one packet on a 1500-byte path, with headers.
const SMALL: usize = 1000;
/// Needs segments larger than 1500 bytes when the endpoints' MTU is larger.
const LARGE: usize = 6000;
/// How long the large answer may take before it counts as stalled.
const LARGE_WAIT: Duration = Duration::from_millis(1500);

/// `Some(what was seen)` when the small answer arrives and the large one
/// does not within LARGE_WAIT; `None` when the path carries both, or not
/// even the small one (then it is not the MTU).
pub async fn black_hole(client: &Client) -> Option<String> {
    let start = Instant::now();
    answer_of(client, SMALL).await?;
    let small = start.elapsed();
    match tokio::time::timeout(LARGE_WAIT, answer_of(client, LARGE)).await {
        Ok(_) => None,
        Err(_) => Some(format!(
            "on a fresh connection a {SMALL}-byte answer arrived in {:.1} ms, a {LARGE}-byte one not within {} s",
            small.as_secs_f64() * 1000.0,
            LARGE_WAIT.as_secs_f64()
        )),
    }
}

/// `SELECT repeat('x', size)`, its value's length when it came whole.
async fn answer_of(client: &Client, size: usize) -> Option<usize> {
    let sql = format!("SELECT repeat('x', {size})");
    let messages = client.simple_query(&sql).await.ok()?;
    super::rows::Answer::new(&messages).first(0).map(str::len)
}
