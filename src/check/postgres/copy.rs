//! `copy_bytes`: COPY that many bytes into a temporary table and back out
//! in one transaction (so it works through transaction pooling), comparing
//! what came back byte for byte with what went in. Large messages are where
//! proxies corrupt or cut a session and where a broken path MTU stalls;
//! `SELECT 1` never sends one.

use crate::outcome::{Fault, Reason};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Largest `copy_bytes` a check may ask for.
pub const MAX_COPY_BYTES: u64 = 256 * 1024 * 1024;
/// One line of the COPY: sequence, space, pseudo-random hex, newline.
const LINE: usize = 100;
/// Lines per CopyData message sent.
const LINES_PER_CHUNK: u64 = 640;

/// What one round trip moved.
#[derive(Debug, Clone, Copy)]
pub struct Moved {
    /// Bytes sent in, and the same again read back.
    pub bytes: u64,
    pub took: Duration,
}

impl Moved {
    /// Both directions, in MiB/s.
    pub fn mib_per_second(&self) -> f64 {
        (2 * self.bytes) as f64 / (1024.0 * 1024.0) / self.took.as_secs_f64().max(1e-9)
    }
}

/// Progress, for the detail of a cut transfer.
#[derive(Debug, Default)]
struct Progress {
    sent: u64,
    received: u64,
}

/// COPY `bytes` in and out on `client` (a fresh session the caller closes
/// afterwards, which also drops the table on any failure). `classify`
/// judges session errors as the kind does.
pub async fn round_trip(
    client: &Client,
    bytes: u64,
    classify: impl Fn(&tokio_postgres::Error) -> Fault,
) -> Result<Moved, Fault> {
    let lines = Lines::new(bytes);
    let mut progress = Progress::default();
    let start = Instant::now();
    let moved = transfer(client, &lines, &mut progress).await;
    match moved {
        Ok(()) => Ok(Moved {
            bytes: lines.total(),
            took: start.elapsed(),
        }),
        Err(Failed::Data(fault)) => Err(fault),
        Err(Failed::Session(err)) => Err(cut(classify(&err), &progress, lines.total())),
    }
}

/// Why a transfer stopped.
enum Failed {
    Session(tokio_postgres::Error),
    /// What came back differs from what went in.
    Data(Fault),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(err: tokio_postgres::Error) -> Self {
        Failed::Session(err)
    }
}

async fn transfer(client: &Client, lines: &Lines, progress: &mut Progress) -> Result<(), Failed> {
    client
        .batch_execute("BEGIN; CREATE TEMP TABLE vpc_probe_copy (line text) ON COMMIT DROP")
        .await?;
    let sink = client
        .copy_in::<_, Bytes>("COPY vpc_probe_copy (line) FROM STDIN")
        .await?;
    futures_util::pin_mut!(sink);
    let mut first = 0;
    while first < lines.count {
        let last = (first + LINES_PER_CHUNK).min(lines.count);
        let chunk: Vec<u8> = (first..last).flat_map(|index| lines.line(index)).collect();
        sink.send(Bytes::from(chunk)).await?;
        progress.sent = last * LINE as u64;
        first = last;
    }
    let rows = sink.finish().await?;
    if rows != lines.count {
        let detail = format!("COPY FROM took {rows} rows, {} were sent", lines.count);
        return Err(Failed::Data(Fault::new(Reason::DataMismatch, detail)));
    }
    let stream = client
        .copy_out("COPY (SELECT line FROM vpc_probe_copy ORDER BY line) TO STDOUT")
        .await?;
    futures_util::pin_mut!(stream);
    let mut checker = Checker::new(lines);
    while let Some(chunk) = stream.next().await {
        checker.feed(&chunk?).map_err(Failed::Data)?;
        progress.received = checker.offset;
    }
    checker.finish().map_err(Failed::Data)?;
    client.batch_execute("COMMIT").await?;
    Ok(())
}

/// A session that closed mid-transfer cut the data: `data_mismatch`,
/// saying how far each direction got. Other failures stay as judged.
fn cut(fault: Fault, progress: &Progress, total: u64) -> Fault {
    if fault.reason != Reason::ClosedByPeer {
        return fault;
    }
    let detail = format!(
        "the connection closed mid-COPY: {} of {total} bytes went in, {} came back ({})",
        progress.sent, progress.received, fault.detail
    );
    Fault::new(Reason::DataMismatch, detail)
}

/// The lines of one run: fixed length, numbered, their hex from a seed
/// drawn per run, so no cache on the path can answer for the server and
/// any line can be rebuilt to compare without keeping what was sent.
struct Lines {
    seed: u64,
    count: u64,
}

impl Lines {
    fn new(bytes: u64) -> Lines {
        Lines {
            seed: fastrand::u64(..),
            count: bytes.div_ceil(LINE as u64).max(1),
        }
    }

    fn total(&self) -> u64 {
        self.count * LINE as u64
    }

    fn line(&self, index: u64) -> [u8; LINE] {
        let mut line = [b'\n'; LINE];
        let mut rest = index;
        for digit in line[..12].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        line[12] = b' ';
        let mut state = self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for byte in &mut line[13..LINE - 1] {
            state = splitmix(state);
            *byte = b"0123456789abcdef"[(state >> 60) as usize];
        }
        line
    }
}

/// One step of SplitMix64: cheap, well-mixed, reproducible.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Compares the bytes coming back with the lines, as they arrive.
struct Checker<'l> {
    lines: &'l Lines,
    offset: u64,
    /// The line under comparison, rebuilt once per line.
    current: (u64, [u8; LINE]),
}

impl<'l> Checker<'l> {
    fn new(lines: &'l Lines) -> Self {
        Checker {
            lines,
            offset: 0,
            current: (0, lines.line(0)),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), Fault> {
        let total = self.lines.total();
        for &got in chunk {
            if self.offset >= total {
                let detail = format!("more came back than went in: past byte {total}");
                return Err(Fault::new(Reason::DataMismatch, detail));
            }
            let line = self.offset / LINE as u64;
            if self.current.0 != line {
                self.current = (line, self.lines.line(line));
            }
            let sent = self.current.1[(self.offset % LINE as u64) as usize];
            if got != sent {
                let detail = format!(
                    "byte {} of {total} came back as {:?} where {:?} went in (line {line})",
                    self.offset,
                    char::from(got),
                    char::from(sent)
                );
                return Err(Fault::new(Reason::DataMismatch, detail));
            }
            self.offset += 1;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), Fault> {
        let total = self.lines.total();
        if self.offset == total {
            return Ok(());
        }
        let detail = format!("truncated: {} of {total} bytes came back", self.offset);
        Err(Fault::new(Reason::DataMismatch, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_fixed_length_numbered_and_reproducible() {
        let lines = Lines::new(1000);
        assert_eq!(lines.count, 10);
        let line = lines.line(7);
        assert!(line.starts_with(b"000000000007 "));
        assert_eq!(line[LINE - 1], b'\n');
        assert_eq!(line, lines.line(7));
        assert_ne!(line[13..], lines.line(8)[13..]);
    }

    #[test]
    fn the_checker_names_the_first_altered_byte_and_a_short_answer() {
        let lines = Lines::new(300);
        let mut sent: Vec<u8> = (0..3).flat_map(|i| lines.line(i)).collect();
        let mut checker = Checker::new(&lines);
        checker.feed(&sent[..150]).unwrap();
        assert!(checker.finish().unwrap_err().detail.contains("150 of 300"));
        sent[170] = if sent[170] == b'0' { b'1' } else { b'0' };
        let fault = checker.feed(&sent[150..]).unwrap_err();
        assert_eq!(fault.reason, Reason::DataMismatch);
        assert!(
            fault.detail.starts_with("byte 170 of 300"),
            "{}",
            fault.detail
        );
    }

    #[test]
    fn a_session_closed_mid_copy_is_a_cut() {
        let progress = Progress {
            sent: 4096,
            received: 0,
        };
        let closed = Fault::new(Reason::ClosedByPeer, "connection closed");
        let fault = cut(closed, &progress, 8192);
        assert_eq!(fault.reason, Reason::DataMismatch);
        assert!(fault.detail.contains("4096 of 8192 bytes went in"));
        let other = cut(Fault::new(Reason::Timeout, "t"), &progress, 8192);
        assert_eq!(other.reason, Reason::Timeout);
    }
}
