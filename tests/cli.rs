//! The command line contract: exit codes, report formats, suite errors with
//! file / line / key, and no secret in any output.

mod rig;

use rig::probe::{check_json, run_with};
use rig::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = rig().root.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_suites_exit_2_naming_file_line_and_key() {
    let cases = [
        ("unknown-key.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\nprot = 2\n", ":6:", "prot"),
        ("bad-cidr.toml", "[[check]]\nname = \"a\"\nkind = \"dns\"\nhost = \"h\"\nexpect_cidrs = [\"10.0.0/16\"]\n", ":5:", "expect_cidrs"),
        ("bad-port.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 70000\n", ":5:", "port"),
        ("bad-kind.toml", "[[check]]\nname = \"a\"\nkind = \"ftp\"\n", ":3:", "kind"),
        ("bad-duration.toml", "[suite]\ntimeout = \"5 parsecs\"\n[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n", ":2:", "timeout"),
        ("bad-url.toml", "[[check]]\nname = \"a\"\nkind = \"postgres\"\nurl = \"mysql://u@h/db\"\n", ":4:", "url"),
        ("unset-env.toml", "[[check]]\nname = \"a\"\nkind = \"redis\"\nurl = \"redis://h\"\npassword = \"${VPC_PROBE_TEST_UNSET}\"\n", ":5:", "VPC_PROBE_TEST_UNSET"),
        ("wrong-kind-key.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\ncycles = 3\n", ":6:", "cycles"),
        ("budget-over-timeout.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\ntimeout = \"1s\"\nmax_duration = \"2s\"\n", ":7:", "max_duration"),
        ("budget-on-closed-path.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\nexpect = \"unreachable\"\nmax_duration = \"2s\"\n", ":7:", "max_duration"),
        ("duplicate.toml", "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 2\n", ":7:", "duplicate"),
    ];
    for (file, text, line, word) in cases {
        let path = write(file, text);
        let strict = [
            "validate",
            "--suite",
            path.to_str().unwrap(),
            "--require-env",
        ];
        let run = run_with(&strict, &[], LIMIT);
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        assert!(
            run.stderr.contains(file) && run.stderr.contains(line) && run.stderr.contains(word),
            "{file}: {}",
            run.stderr
        );
        let run = run_with(&["check", "--suite", path.to_str().unwrap()], &[], LIMIT);
        assert_eq!(run.code, 2, "check on {file} must not run");
        assert!(
            run.stdout.is_empty(),
            "{file}: nothing may run: {}",
            run.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let suite = write(
        "usage.toml",
        "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n",
    );
    let suite = suite.to_str().unwrap();
    assert_eq!(run_with(&["check"], &[], LIMIT).code, 2);
    assert_eq!(
        run_with(&["check", "--suite", suite, "--format", "yaml"], &[], LIMIT).code,
        2
    );
    assert_eq!(
        run_with(&["check", "--suite", suite, "--only", "nope"], &[], LIMIT).code,
        2
    );
    assert_eq!(
        run_with(&["check", "--suite", "/nonexistent.toml"], &[], LIMIT).code,
        2
    );
}

#[test]
fn suite_from_environment_and_only_selects() {
    let rig = rig();
    let body = format!(
        "[[check]]\nname = \"up\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n\n[[check]]\nname = \"down\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n",
        rig.postgres, rig.closed
    );
    let suite = rig.suite("env-suite", &body);
    let envs = [("VPC_PROBE_SUITE", suite.to_str().unwrap())];
    let passed = run_with(&["check", "--format", "json", "--only", "up"], &envs, LIMIT);
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    assert_eq!(passed.json()["checks"].as_array().unwrap().len(), 1);
    let failed = run_with(&["check", "--format", "json"], &envs, LIMIT);
    assert_eq!(failed.code, 1);
    assert_eq!(failed.check("down")["reason"], "connect_refused");
}

#[test]
fn text_report_has_progress_table_detail_and_hint() {
    let rig = rig();
    let body = format!(
        "[[check]]\nname = \"leaky-dns\"\nkind = \"dns\"\nhost = \"{PUBLIC_NAME}\"\n\n[[check]]\nname = \"haproxy-tcp\"\nkind = \"tcp\"\nhost = \"{HAPROXY_NAME}\"\nport = {}\n",
        rig.haproxy
    );
    let suite = rig.suite("text", &body);
    let run = run_with(&["check", "--suite", suite.to_str().unwrap()], &[], LIMIT);
    assert_eq!(run.code, 1);
    let out = &run.stdout;
    assert!(out.contains("PASS haproxy-tcp (tcp)"), "{out}");
    assert!(
        out.contains("FAIL leaky-dns (dns) dns_public_address in resolve"),
        "{out}"
    );
    for column in ["check", "kind", "target", "result", "reason", "time"] {
        assert!(out.contains(column), "table lacks {column}: {out}");
    }
    assert!(
        out.contains(&format!("resolved to public {PUBLIC_ADDRESS}")),
        "{out}"
    );
    assert!(
        out.contains("hint:   enable DNS resolution on the VPC peering connection"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");
}

#[test]
fn junit_has_one_case_per_check_with_reason() {
    let rig = rig();
    let body = format!(
        "[[check]]\nname = \"ok\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n\n[[check]]\nname = \"refused\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n",
        rig.postgres, rig.closed
    );
    let suite = rig.suite("junit", &body);
    let junit = rig.root.join("junit.xml");
    let run = check_json(&suite, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\"") && xml.contains("failures=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("testcase name=\"refused\""), "{xml}");
    assert!(xml.contains("type=\"connect_refused\""), "{xml}");
    assert!(xml.contains("hint: the service is down"), "{xml}");
}

/// A real report, passes, failures and PostgreSQL cycles included, is valid
/// against the checked-in schema (Python's jsonschema, an independent
/// validator), and `compare` reads it back with the EMF lines after it.
#[test]
fn json_reports_match_the_checked_in_schema() {
    let rig = rig();
    let body = format!(
        "[[check]]\nname = \"ok\"\nkind = \"postgres\"\nurl = \"postgres://{PG_USER}@127.0.0.1:{}/app?sslmode=disable\"\npassword = \"{PG_PASSWORD}\"\ncycles = 2\n\n[[check]]\nname = \"refused\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n",
        rig.postgres, rig.closed
    );
    let suite = rig.suite("schema", &body);
    let run = check_json(&suite, &["--emf"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = rig.root.join("schema-report.json");
    std::fs::write(&report, &run.stdout).unwrap();
    rig::schema::validate("report.schema.json", &report).expect("a valid report");
    let compared = run_with(&["compare", report.to_str().unwrap()], &[], LIMIT);
    assert_eq!(compared.code, 1, "{}", compared.stderr);
    assert!(
        compared.stdout.contains("FAIL connect_refused"),
        "{}",
        compared.stdout
    );
}

#[test]
fn no_secret_reaches_any_output() {
    let rig = rig();
    let url_secret = "Url-Secret-9931";
    let file_secret = "File-Secret-9932";
    let env_secret = "Env-Secret-9933";
    let http_secret = "Http-Secret-9934";
    let secret_file = write("pg.secret", &format!("{file_secret}\n"));
    let body = format!(
        r#"
[[check]]
name = "pg-url-password"
kind = "postgres"
url = "postgres://{PG_USER}:{url_secret}@127.0.0.1:{pg}/app"

[[check]]
name = "pg-password-file"
kind = "postgres"
url = "postgres://{PG_USER}@127.0.0.1:{pg}/app"
password_file = "{file}"

[[check]]
name = "redis-url-password"
kind = "redis"
url = "redis://:{url_secret}@127.0.0.1:{redis}"

[[check]]
name = "redis-env-password"
kind = "redis"
url = "redis://{REDIS_ACL_USER}@127.0.0.1:{redis}"
password = "${{VPC_PROBE_TEST_SECRET}}"

[[check]]
name = "http-basic"
kind = "http"
url = "http://admin:{http_secret}@127.0.0.1:{http}/v3/client_info"
"#,
        pg = rig.postgres,
        redis = rig.redis,
        http = rig.unhealthy_http,
        file = secret_file.display(),
    );
    let suite = rig.suite("secrets", &body);
    let junit = rig.root.join("secrets.xml");
    let suite = suite.to_str().unwrap();
    let envs = [("VPC_PROBE_TEST_SECRET", env_secret), ("RUST_LOG", "trace")];
    let runs = [
        run_with(
            &[
                "check",
                "--suite",
                suite,
                "--format",
                "json",
                "--junit",
                junit.to_str().unwrap(),
            ],
            &envs,
            LIMIT,
        ),
        run_with(
            &["--log-format", "json", "check", "--suite", suite],
            &envs,
            LIMIT,
        ),
        run_with(&["list", "--suite", suite], &envs, LIMIT),
    ];
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        runs[0].code, 1,
        "the wrong passwords must fail: {}",
        runs[0].stdout
    );
    for secret in [url_secret, file_secret, env_secret, http_secret] {
        for run in &runs {
            assert!(
                !run.stdout.contains(secret),
                "secret in stdout: {}",
                run.stdout
            );
            assert!(!run.stderr.contains(secret), "secret in stderr");
        }
        assert!(!junit_text.contains(secret), "secret in JUnit");
    }
    assert_eq!(runs[0].check("pg-url-password")["reason"], "auth_failed");
    assert_eq!(runs[0].check("redis-env-password")["reason"], "auth_failed");
}

#[test]
fn explain_prints_every_reason() {
    let run = run_with(&["explain"], &[], LIMIT);
    assert_eq!(run.code, 0);
    for reason in [
        "dns_public_address",
        "connect_timeout",
        "closed_by_peer",
        "too_slow",
        "unexpectedly_reachable",
    ] {
        assert!(run.stdout.contains(reason), "{reason} missing");
    }
    let one = run_with(&["explain", "wrong_role"], &[], LIMIT);
    assert!(one.stdout.contains("Patroni role"), "{}", one.stdout);
    assert_eq!(run_with(&["explain", "no_such_reason"], &[], LIMIT).code, 2);
}

/// `KEY=VALUE` lines of checks/env.example.
fn example_environment() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/checks/env.example");
    std::fs::read_to_string(path)
        .expect("checks/env.example")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

#[test]
fn production_and_staging_suites_validate_with_the_example_environment() {
    let environment = example_environment();
    let envs: Vec<(&str, &str)> = environment
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    for (suite, checks) in [("production", 10), ("staging", 6)] {
        let path = format!("{}/checks/{suite}.toml", env!("CARGO_MANIFEST_DIR"));
        let run = run_with(&["validate", "--suite", &path], &envs, LIMIT);
        assert_eq!(run.code, 0, "{suite}: {}", run.stderr);
        assert!(
            run.stdout.contains(&format!("({checks} checks)")),
            "{}",
            run.stdout
        );
        let without_secret: Vec<(&str, &str)> = envs
            .iter()
            .copied()
            .filter(|(key, _)| *key != "VPC_PROBE_PG_PASSWORD")
            .collect();
        // A pull request's pipeline lints without the secrets: valid,
        // and the missing one is named.
        let run = run_with(&["validate", "--suite", &path], &without_secret, LIMIT);
        assert_eq!(run.code, 0, "{suite}: {}", run.stderr);
        assert!(
            run.stdout.contains("needs VPC_PROBE_PG_PASSWORD: unset"),
            "{}",
            run.stdout
        );
        let strict = ["validate", "--suite", &path, "--require-env"];
        let run = run_with(&strict, &without_secret, LIMIT);
        assert_eq!(run.code, 2, "{suite} must need its password");
        assert!(
            run.stderr.contains("VPC_PROBE_PG_PASSWORD"),
            "{}",
            run.stderr
        );
        let run = run_with(&["check", "--suite", &path], &without_secret, LIMIT);
        assert_eq!(
            run.code, 2,
            "check refuses an unset variable: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("VPC_PROBE_PG_PASSWORD is not set"),
            "{}",
            run.stderr
        );
    }
}

/// Linting in a fresh clone, where no variable the suites name is set:
/// every suite of the repository is valid, each variable is listed by
/// name (set or not, never its value), and --require-env refuses.
#[test]
fn every_suite_validates_with_no_environment_at_all() {
    let dir = format!("{}/checks", env!("CARGO_MANIFEST_DIR"));
    for suite in ["production", "staging", "local"] {
        let path = format!("{dir}/{suite}.toml");
        let output = std::process::Command::new(rig::probe::binary())
            .args(["validate", "--suite", &path])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("vpc-probe validate");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{suite}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("is valid"), "{stdout}");
        assert!(
            stdout.contains(": unset\n"),
            "{suite} names its unset variables: {stdout}"
        );
        let strict = std::process::Command::new(rig::probe::binary())
            .args(["validate", "--suite", &path, "--require-env"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("vpc-probe validate --require-env");
        assert_eq!(strict.status.code(), Some(2), "{suite}");
    }
}

#[test]
fn drills_are_validated_listed_and_run_only_by_name() {
    let drill = "[[drill]]\nname = \"pg-switchover\"\nkind = \"postgres-failover\"\nurl = \"postgres://probe@127.0.0.1:1/app\"\npassword = \"drill-Secret-1\"\n";
    let both = write(
        "with-drill.toml",
        &format!(
            "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n\n{drill}"
        ),
    );
    let both = both.to_str().unwrap();
    let valid = run_with(&["validate", "--suite", both], &[], LIMIT);
    assert_eq!(valid.code, 0, "{}", valid.stderr);
    assert!(
        valid.stdout.contains("(1 checks, 1 drills)"),
        "{}",
        valid.stdout
    );
    let listed = run_with(&["list", "--suite", both], &[], LIMIT);
    assert!(
        listed
            .stdout
            .contains("pg-switchover\tdrill\t127.0.0.1:1/app"),
        "{}",
        listed.stdout
    );
    let unknown = run_with(&["drill", "--suite", both, "--drill", "nope"], &[], LIMIT);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("it has: pg-switchover"),
        "{}",
        unknown.stderr
    );
    let only = write("drill-only.toml", drill);
    let checked = run_with(&["check", "--suite", only.to_str().unwrap()], &[], LIMIT);
    assert_eq!(checked.code, 2, "{}", checked.stderr);
    // A drill whose read-write port is closed cannot start: exit 1, said why.
    let ran = run_with(
        &[
            "drill",
            "--suite",
            only.to_str().unwrap(),
            "--drill",
            "pg-switchover",
        ],
        &[],
        LIMIT,
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("could not run: connecting to the read-write port"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("drill-Secret-1"));
}

/// SIGTERM in the middle of a gate run: the checks that finished are in the
/// JSON and the JUnit, the one still running is `interrupted`, exit 1.
#[test]
fn sigterm_during_a_run_still_writes_what_finished() {
    use std::io::{BufRead, BufReader, Read};
    let rig = rig();
    let body = format!(
        "[[check]]\nname = \"quick\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n\n\
         [[check]]\nname = \"slow\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/\"\ntimeout = \"30s\"\n",
        rig.postgres, rig.silent
    );
    let suite = rig.suite("interrupted", &body);
    let junit = rig.root.join("interrupted.xml");
    let mut child = std::process::Command::new(rig::probe::binary())
        .args([
            "check",
            "--format",
            "json",
            "--log-level",
            "info",
            "--suite",
        ])
        .arg(&suite)
        .arg("--junit")
        .arg(&junit)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The quick check's progress line on stderr says the run is under way.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("PASS quick") {
        line.clear();
    }
    assert!(
        line.contains("PASS quick"),
        "the quick check finished first"
    );
    // Each check is its own task from the start, so the quick one can be
    // reported before the slow one has even connected: give the slow one
    // time to reach its request (a loopback connect takes microseconds;
    // the silent server then holds the request for its 30 s).
    std::thread::sleep(std::time::Duration::from_millis(500));
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["checks"][0]["success"], true);
    assert_eq!(report["checks"][1]["reason"], "interrupted", "{report}");
    assert_eq!(report["checks"][1]["phase"], "request", "{report}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\"") && xml.contains("type=\"interrupted\""),
        "{xml}"
    );
}

#[test]
fn an_unwritable_junit_path_is_refused_before_any_check_runs() {
    let suite = write(
        "junit-path.toml",
        "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n",
    );
    let run = run_with(
        &[
            "check",
            "--suite",
            suite.to_str().unwrap(),
            "--junit",
            "/nonexistent-dir/report.xml",
        ],
        &[],
        LIMIT,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    assert!(
        run.stderr.contains("--junit /nonexistent-dir/report.xml"),
        "{}",
        run.stderr
    );
}

/// A reader that goes away early (`| head -1`) costs no panic.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let rig = rig();
    // The quick check's line goes out at once; the rest a second later,
    // when `head` is long gone.
    let suite = rig.suite(
        "closed-stdout",
        &format!(
            "[[check]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n\n\
             [[check]]\nname = \"b\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/\"\ntimeout = \"1s\"\n",
            rig.postgres, rig.silent
        ),
    );
    let args = ["check", "--suite", suite.to_str().unwrap()];
    {
        let err = rig.root.join("closed-stdout.err");
        let script = format!(
            "{} {} 2>{} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
            rig::probe::binary(),
            args.join(" "),
            err.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            code, "1",
            "the slow check fails, and that is all: {args:?}: {stderr}"
        );
    }
}
