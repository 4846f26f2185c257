//! Servers that misbehave on purpose. Each row names the exact reason the
//! probe must give, within the check's deadline plus a margin, without a
//! crash; the whole catalogue runs in one process, and once more under the
//! Fargate task's 512 MiB as an address-space limit, where an unbounded
//! read or a 1 GiB reservation would abort the process.

mod rig;

use rig::fixture::{self, Mode};
use rig::hostile::{self, Behaviour};
use rig::probe::{check_json, run_with};
use std::path::PathBuf;
use std::time::Duration;

/// A suite file in a fresh temp dir, kept for the life of the test.
fn suite(checks: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hostile.toml");
    std::fs::write(&path, checks).expect("write suite");
    (dir, path)
}

#[test]
fn a_row_without_columns_is_an_unexpected_response_not_a_crash() {
    let port = fixture::spawn(Mode::PgZeroColumns).expect("fixture");
    let (_dir, path) = suite(&format!(
        "[[check]]\nname = \"zero-columns\"\nkind = \"postgres\"\n\
         url = \"postgres://probe@127.0.0.1:{port}/app?sslmode=disable\"\n\
         expect_role = \"primary\"\ntimeout = \"5s\"\n"
    ));
    let run = check_json(&path, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let check = run.check("zero-columns");
    assert_eq!(check["reason"], "unexpected_response", "{check}");
    assert_eq!(check["phase"], "query", "{check}");
    assert!(
        !check["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("crashed"),
        "{check}"
    );
}

/// Every check's deadline in the catalogue.
const TIMEOUT: Duration = Duration::from_secs(3);
/// What a row may take beyond its deadline.
const MARGIN: Duration = Duration::from_secs(2);

const PG_AUTH_OK: &[u8] = b"R\x00\x00\x00\x08\x00\x00\x00\x00";
const PG_GIGABYTE: &[u8] = b"R\x40\x00\x00\x00\x00\x00\x00\x00";
const TLS_PARTIAL_RECORD: &[u8] = b"\x16\x03\x03\x00\x50\x02\x00\x00";
const TLS_ENDLESS_CERTIFICATE: &[u8] = b"\x16\x03\x03\x40\x00\x0b\xff\xff\xff";

/// (name, suite body after `name`, expected reason).
fn catalogue() -> Vec<(&'static str, String, &'static str)> {
    let http = |port: u16| format!("kind = \"http\"\nurl = \"http://127.0.0.1:{port}/\"");
    let https = |port: u16| {
        format!("kind = \"http\"\nurl = \"https://127.0.0.1:{port}/\"\ntls_skip_verify = true")
    };
    let redis = |port: u16| format!("kind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"");
    let pg = |port: u16| {
        format!(
            "kind = \"postgres\"\nurl = \"postgres://probe@127.0.0.1:{port}/app?sslmode=disable\""
        )
    };
    let dns = hostile::spawn_dns_truncating();
    let spawn = hostile::spawn;
    vec![
        (
            "drip-postgres",
            pg(spawn(Behaviour::Drip(PG_AUTH_OK))),
            "timeout",
        ),
        (
            "drip-redis",
            redis(spawn(Behaviour::Drip(b"+PONG\r\n"))),
            "timeout",
        ),
        (
            "drip-http",
            http(spawn(Behaviour::Drip(b"HTTP/1.1 200 OK\r\n"))),
            "timeout",
        ),
        (
            "drip-tls",
            https(spawn(Behaviour::Drip(b"\x16\x03\x03\x00\x50"))),
            "timeout",
        ),
        (
            "endless-status-line",
            http(spawn(Behaviour::Flood {
                prefix: b"HTTP/1.1 200 ",
                filler: b'A',
            })),
            "protocol_error",
        ),
        (
            "endless-header",
            http(spawn(Behaviour::Flood {
                prefix: b"HTTP/1.1 200 OK\r\nX-Endless: ",
                filler: b'a',
            })),
            "protocol_error",
        ),
        (
            "gigabyte-body",
            http(spawn(Behaviour::Flood {
                prefix: b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n",
                filler: b'0',
            })),
            "unexpected_response",
        ),
        (
            "endless-resp-bulk-string",
            redis(spawn(Behaviour::Flood {
                prefix: b"$999999999\r\n",
                filler: b'x',
            })),
            "protocol_error",
        ),
        (
            "postgres-gigabyte-message",
            pg(spawn(Behaviour::Answer(PG_GIGABYTE))),
            "protocol_error",
        ),
        (
            "dns-truncated-then-endless-tcp",
            format!(
                "kind = \"dns\"\nhost = \"db.glimpse.internal\"\nresolver_override = \"{dns}\""
            ),
            // hickory retries the truncated answer over TCP, gets junk,
            // and the deadline ends it: no usable answer in time.
            "dns_timeout",
        ),
        (
            "tls-garbage",
            https(spawn(Behaviour::Flood {
                prefix: b"\x16\x03\x03\x40\x00",
                filler: 0xab,
            })),
            "tls_error",
        ),
        (
            "tls-endless-certificate",
            https(spawn(Behaviour::Flood {
                prefix: TLS_ENDLESS_CERTIFICATE,
                filler: 0x30,
            })),
            "tls_error",
        ),
        (
            "tls-stall-mid-handshake",
            https(spawn(Behaviour::Answer(TLS_PARTIAL_RECORD))),
            "timeout",
        ),
        (
            "reset-http",
            http(spawn(Behaviour::Reset)),
            "closed_by_peer",
        ),
        (
            "reset-redis",
            redis(spawn(Behaviour::Reset)),
            "closed_by_peer",
        ),
        (
            "reset-postgres",
            pg(spawn(Behaviour::Reset)),
            "closed_by_peer",
        ),
        (
            "half-close-http",
            http(spawn(Behaviour::HalfClose)),
            "closed_by_peer",
        ),
        (
            "half-close-postgres",
            pg(spawn(Behaviour::HalfClose)),
            "closed_by_peer",
        ),
    ]
}

/// The catalogue as one suite; the DNS row gets its resolver from the suite.
fn catalogue_suite() -> (
    tempfile::TempDir,
    PathBuf,
    Vec<(&'static str, &'static str)>,
) {
    let rows = catalogue();
    let mut resolver = String::new();
    let mut text = String::new();
    for (name, body, _) in &rows {
        let body = match body.split_once("\nresolver_override = ") {
            Some((body, dns)) => {
                resolver = format!("resolver = {dns}\n");
                body.to_string()
            }
            None => body.clone(),
        };
        text += &format!("[[check]]\nname = \"{name}\"\n{body}\n\n");
    }
    let whole = format!(
        "[suite]\ntimeout = \"{}s\"\n{resolver}\n{text}",
        TIMEOUT.as_secs()
    );
    let (dir, path) = suite(&whole);
    (
        dir,
        path,
        rows.iter()
            .map(|(name, _, reason)| (*name, *reason))
            .collect(),
    )
}

/// Run the catalogue with `prefix` before the binary (e.g. prlimit), and
/// check every row: its reason, its time, no crash.
fn run_catalogue(prefix: &[&str]) {
    let (_dir, path, rows) = catalogue_suite();
    let suite = path.to_str().unwrap();
    let mut args: Vec<&str> = prefix.to_vec();
    let binary = rig::probe::binary();
    if !prefix.is_empty() {
        args.push(binary);
    }
    args.extend(["check", "--format", "json", "--suite", suite]);
    let run = if prefix.is_empty() {
        run_with(&args, &[], Duration::from_secs(60))
    } else {
        let output = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        rig::probe::Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into(),
            stderr: String::from_utf8_lossy(&output.stderr).into(),
            elapsed: Duration::ZERO,
        }
    };
    assert_eq!(
        run.code, 1,
        "every row fails, nothing aborts: {}",
        run.stderr
    );
    let mut wrong = Vec::new();
    for (name, reason) in rows {
        let check = run.check(name);
        let took = Duration::from_secs_f64(check["duration_seconds"].as_f64().unwrap());
        let detail = check["detail"].as_str().unwrap_or_default();
        if check["reason"] != reason || took > TIMEOUT + MARGIN || detail.contains("crashed") {
            wrong.push(format!(
                "{name}: expected {reason} within {:?}, got {check}",
                TIMEOUT + MARGIN
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_hostile_catalogue() {
    run_catalogue(&[]);
}

/// The same catalogue in a process that may map no more than the Fargate
/// task's 512 MiB.
#[test]
fn the_hostile_catalogue_within_512_mib() {
    run_catalogue(&["prlimit", "--as=536870912", "--"]);
}
