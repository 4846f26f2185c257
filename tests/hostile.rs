//! Servers that misbehave on purpose: each row names the exact reason the
//! probe must give, and that it gives it without crashing.

mod rig;

use rig::fixture::{self, Mode};
use rig::probe::check_json;
use std::path::PathBuf;

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
