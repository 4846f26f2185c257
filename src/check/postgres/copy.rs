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
        sink.send(lines.chunk(first, last)).await?;
        progress.sent = last * LINE as u64;
        first = last;
    }
    let rows = sink.finish().await?;
    if rows != lines.count {
        let detail = format!("COPY FROM took {rows} rows, {} were sent", lines.count);
        return Err(Failed::Data(Fault::new(Reason::DataMismatch, detail)));
    }
    let stream = client.copy_out("COPY vpc_probe_copy TO STDOUT").await?;
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
        // One SplitMix64 step gives 16 hex digits (a nibble each).
        for digits in line[13..LINE - 1].chunks_mut(16) {
            state = splitmix(state);
            let hex = hex16(state);
            digits.copy_from_slice(&hex[..digits.len()]);
        }
        line
    }

    /// Lines `first..last`, one after another, as one CopyData payload.
    fn chunk(&self, first: u64, last: u64) -> Bytes {
        let mut chunk = Vec::with_capacity((last - first) as usize * LINE);
        for index in first..last {
            chunk.extend_from_slice(&self.line(index));
        }
        Bytes::from(chunk)
    }
}

/// The 16 nibbles of `value` as lowercase hex, most significant first,
/// eight at a time in a register rather than a table lookup per digit
/// (the line builder was the hottest code of a COPY run).
fn hex16(value: u64) -> [u8; 16] {
    let mut hex = [0; 16];
    hex[..8].copy_from_slice(&hex8((value >> 32) as u32).to_be_bytes());
    hex[8..].copy_from_slice(&hex8(value as u32).to_be_bytes());
    hex
}

/// Eight nibbles spread to eight bytes (nibble k in byte k), each then
/// turned into its ASCII hex digit.
fn hex8(value: u32) -> u64 {
    let mut v = u64::from(value);
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    // 1 in each byte whose nibble is 10 or more: those skip to 'a'.
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    v + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// One step of SplitMix64: cheap, well-mixed, reproducible.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Compares the bytes coming back with the lines, as they arrive and in
/// whatever order the server sends them: each line names its index, is
/// rebuilt from it and compared byte for byte, and counted once, so no
/// `ORDER BY` makes the server sort the table before the first byte. A
/// line altered, duplicated, or missing (a truncation) is a mismatch.
struct Checker<'l> {
    lines: &'l Lines,
    offset: u64,
    /// The bytes of a line split across chunks, until it is whole.
    partial: Vec<u8>,
    /// One bit per line index seen.
    seen: Vec<u64>,
}

impl<'l> Checker<'l> {
    fn new(lines: &'l Lines) -> Self {
        Checker {
            lines,
            offset: 0,
            partial: Vec::with_capacity(LINE),
            seen: vec![0; lines.count.div_ceil(64) as usize],
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Fault> {
        let total = self.lines.total();
        while !chunk.is_empty() {
            if self.offset + self.partial.len() as u64 >= total {
                let detail = format!("more came back than went in: past byte {total}");
                return Err(Fault::new(Reason::DataMismatch, detail));
            }
            if self.partial.is_empty() && chunk.len() >= LINE {
                let (line, rest) = chunk.split_at(LINE);
                self.check_line(line)?;
                self.offset += LINE as u64;
                chunk = rest;
                continue;
            }
            let take = (LINE - self.partial.len()).min(chunk.len());
            self.partial.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.partial.len() == LINE {
                let line = std::mem::take(&mut self.partial);
                self.check_line(&line)?;
                self.offset += LINE as u64;
                self.partial = line;
                self.partial.clear();
            }
        }
        Ok(())
    }

    /// One whole line that came back at `self.offset`.
    fn check_line(&mut self, got: &[u8]) -> Result<(), Fault> {
        let total = self.lines.total();
        let index = decimal(&got[..12]).filter(|index| *index < self.lines.count);
        let Some(index) = index else {
            let detail = format!(
                "the line at byte {} of {total} came back numbered {:?}, no line that went in",
                self.offset,
                String::from_utf8_lossy(&got[..12])
            );
            return Err(Fault::new(Reason::DataMismatch, detail));
        };
        let sent = self.lines.line(index);
        if let Some(at) = got.iter().zip(&sent).position(|(g, s)| g != s) {
            let detail = format!(
                "byte {} of {total} came back as {:?} where {:?} went in (line {index})",
                self.offset + at as u64,
                char::from(got[at]),
                char::from(sent[at])
            );
            return Err(Fault::new(Reason::DataMismatch, detail));
        }
        let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
        if self.seen[word] & bit != 0 {
            let detail = format!(
                "line {index} came back twice (byte {} of {total})",
                self.offset
            );
            return Err(Fault::new(Reason::DataMismatch, detail));
        }
        self.seen[word] |= bit;
        Ok(())
    }

    /// Every line came back exactly once: as many whole lines as went in,
    /// none twice.
    fn finish(&self) -> Result<(), Fault> {
        let total = self.lines.total();
        let received = self.offset + self.partial.len() as u64;
        if received == total {
            return Ok(());
        }
        let detail = format!("truncated: {received} of {total} bytes came back");
        Err(Fault::new(Reason::DataMismatch, detail))
    }
}

/// The number `digits` spell, if they are all ASCII digits.
fn decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |number, digit| {
        digit
            .is_ascii_digit()
            .then(|| number * 10 + u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_matches_the_formatter() {
        for value in [
            0,
            1,
            0xa,
            0xf0,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            0x9E37_79B9_7F4A_7C15,
        ] {
            assert_eq!(
                hex16(value),
                format!("{value:016x}").as_bytes(),
                "{value:#x}"
            );
        }
        for _ in 0..1000 {
            let value = fastrand::u64(..);
            assert_eq!(
                hex16(value),
                format!("{value:016x}").as_bytes(),
                "{value:#x}"
            );
        }
    }

    #[test]
    fn decimal_reads_digits_only() {
        assert_eq!(decimal(b"000000000042"), Some(42));
        assert_eq!(decimal(b"00000000004x"), None);
        assert_eq!(decimal(b"-00000000042"), None);
    }

    #[test]
    fn a_chunk_is_its_lines_in_order() {
        let lines = Lines::new(1000);
        let chunk = lines.chunk(2, 5);
        assert_eq!(chunk.len(), 3 * LINE);
        assert_eq!(chunk[LINE..2 * LINE], lines.line(3));
    }

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
    fn lines_in_any_order_pass_and_a_twice_sent_line_fails() {
        let lines = Lines::new(500);
        let mut checker = Checker::new(&lines);
        let shuffled: Vec<u8> = [3, 0, 4, 1, 2]
            .iter()
            .flat_map(|i| lines.line(*i))
            .collect();
        checker.feed(&shuffled[..137]).unwrap();
        checker.feed(&shuffled[137..]).unwrap();
        checker.finish().unwrap();
        let mut twice = Checker::new(&lines);
        let doubled: Vec<u8> = [0, 1, 1].iter().flat_map(|i| lines.line(*i)).collect();
        let fault = twice.feed(&doubled).unwrap_err();
        assert!(
            fault.detail.starts_with("line 1 came back twice"),
            "{}",
            fault.detail
        );
    }

    #[test]
    fn a_line_numbered_outside_the_run_is_named() {
        let lines = Lines::new(200);
        let mut line = lines.line(1);
        line[..12].copy_from_slice(b"000000000009");
        let fault = Checker::new(&lines).feed(&line).unwrap_err();
        assert!(
            fault.detail.contains("numbered \"000000000009\""),
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
