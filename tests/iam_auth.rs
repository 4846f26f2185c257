//! `auth = "iam"` on redis checks against a TLS RESP server that verifies
//! ElastiCache IAM tokens itself (tests/rig/iam_redis.py: botocore
//! recomputes the signature at the token's own date), with the task
//! role's credentials served by an ECS container credentials fixture. One
//! test per row: a good token passes; an expired one, a wrong region, a
//! wrong cache name, a wrong user and no credentials at all each fail
//! with what the probe can tell about the cause. Then RDS: a real
//! PostgreSQL whose role's password is the token for a moment, and the
//! probe run with its clock stopped at that moment (libfaketime), so it
//! makes the same token and logs in with it. The token never shows.

mod rig;

use rig::fixture::{container_credentials, TASK_ACCESS_KEY, TASK_SECRET_KEY, TASK_TOKEN};
use rig::probe::run_with;
use rig::process::{self, free_port, Daemon};
use rig::{rig, ELASTICACHE_NAME};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};
use vpc_probe::aws::token::{token, Resource};

/// What the server accepts: the cache in ELASTICACHE_NAME, in us-east-1.
const CACHE: &str = "glimpse-redis";
const USER: &str = "probe-iam";
const REGION: &str = "us-east-1";

/// The verifying server on a port, with its clock `skew` seconds ahead.
fn server(skew: u32) -> u16 {
    let port = free_port().unwrap();
    start_server(&format!("127.0.0.1:{port}"), &[&skew.to_string()]);
    port
}

/// The fixture on `at` (host:port) with `more` arguments after the keys.
fn start_server(at: &str, more: &[&str]) {
    let tls = rig::tls::tls_rig();
    let python = rig::moto::venv_bin().unwrap().join("python");
    let mut command = Command::new(python);
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/rig/iam_redis.py"
        ))
        .arg(at)
        .arg(tls.root.join("redis.crt"))
        .arg(tls.root.join("redis.key"))
        .args([CACHE, USER, REGION, TASK_ACCESS_KEY, TASK_SECRET_KEY])
        .args(more);
    let log = tls
        .root
        .join(format!("iam-redis-{}.log", at.replace(':', "-")));
    let daemon = Daemon::spawn("iam-redis", command, &log).unwrap();
    let addr: std::net::SocketAddr = at.parse().unwrap();
    daemon
        .wait_ready("the IAM Redis fixture", Duration::from_secs(30), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
        .unwrap();
}

/// The fixture with a true clock, and one 20 minutes ahead (every token
/// the probe makes is expired to it).
fn servers() -> &'static (u16, u16) {
    static SERVERS: OnceLock<(u16, u16)> = OnceLock::new();
    SERVERS.get_or_init(|| (server(0), server(1200)))
}

/// Run one IAM check: (exit code, its JSON).
fn iam_check(
    port: u16,
    keys: &str,
    region: &str,
    with_credentials: bool,
) -> (i32, serde_json::Value) {
    let tls = rig::tls::tls_rig();
    let checks = format!(
        "[[check]]\nname = \"iam\"\nkind = \"redis\"\nurl = \"rediss://{ELASTICACHE_NAME}:{port}\"\n\
         auth = \"iam\"\nca_file = \"{}\"\n{keys}\n",
        tls.ca_file.display()
    );
    let name = format!("iam-{port}-{}", suite_file_name(keys, region));
    let run = probe_with_task_role(&name, &checks, region, with_credentials, &[]);
    let check = run.check("iam");
    println!("{}: {}", keys.replace('\n', " "), check["detail"]);
    (run.code, check)
}

/// `check --format json` on `checks`, the task role's credentials served
/// by the container credentials fixture (unless `with_credentials` is
/// false), `region` as AWS_REGION, and `more` in the environment.
fn probe_with_task_role(
    name: &str,
    checks: &str,
    region: &str,
    with_credentials: bool,
    more: &[(&str, &str)],
) -> rig::probe::Run {
    let suite = rig().suite(name, checks);
    let home = tempfile::tempdir().unwrap();
    let (url, served) = container_credentials();
    let mut envs = vec![
        ("HOME", home.path().to_str().unwrap().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
        ("AWS_REGION", region.into()),
    ];
    if with_credentials {
        envs.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", url));
    }
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.extend_from_slice(more);
    let suite_arg = suite.to_str().unwrap();
    let args = ["check", "--suite", suite_arg, "--format", "json"];
    let run = run_with(&args, &envs, Duration::from_secs(60));
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("X-Amz-Signature"),
            "a token was printed: {text}"
        );
        assert!(!text.contains(TASK_SECRET_KEY));
    }
    if with_credentials {
        assert!(served.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }
    run
}

/// A file name per row.
fn suite_file_name(keys: &str, region: &str) -> String {
    let text = format!("{keys}{region}");
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(40)
        .collect()
}

fn keys(cache: &str, user: &str) -> String {
    format!("user = \"{user}\"\ncache_name = \"{cache}\"")
}

/// A refusal: auth_failed, with `words` in the detail.
fn refused(check: &serde_json::Value, words: &str) {
    assert_eq!(check["reason"], "auth_failed", "{check}");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(words), "{detail}");
}

#[test]
fn a_fresh_token_from_the_task_role_is_accepted() {
    let (good, _) = *servers();
    let (code, check) = iam_check(good, &keys(CACHE, USER), REGION, true);
    assert_eq!(code, 0, "{check}");
}

#[test]
fn an_expired_token_is_refused_and_the_clock_named() {
    let (_, ahead) = *servers();
    let (code, check) = iam_check(ahead, &keys(CACHE, USER), REGION, true);
    assert_eq!(code, 1);
    refused(&check, "server said: WRONGPASS");
    refused(&check, "clock must be right");
}

#[test]
fn a_token_for_another_region_is_told_by_the_endpoint_name() {
    let (good, _) = *servers();
    let (_, check) = iam_check(good, &keys(CACHE, USER), "eu-west-1", true);
    refused(
        &check,
        "the endpoint is in region code `use1`, the token is signed for eu-west-1",
    );
}

#[test]
fn a_token_for_another_cache_is_told_by_the_endpoint_name() {
    let (good, _) = *servers();
    let (_, check) = iam_check(good, &keys("other-cache", USER), REGION, true);
    refused(
        &check,
        "the endpoint belongs to cache `glimpse-redis`, the token names `other-cache`",
    );
}

#[test]
fn a_token_for_another_user_names_the_user_and_the_policy() {
    let (good, _) = *servers();
    let (_, check) = iam_check(good, &keys(CACHE, "someone"), REGION, true);
    refused(&check, "user `someone`");
    refused(&check, "elasticache:Connect");
}

#[test]
fn without_credentials_the_chain_says_so() {
    let (good, _) = *servers();
    let (_, check) = iam_check(good, &keys(CACHE, USER), REGION, false);
    refused(&check, "no AWS credentials");
    refused(&check, "taskRoleArn");
}

/// libfaketime, from Debian's `faketime` (scripts/install-deps).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn an_rds_token_is_the_password_over_verified_tls() {
    let rig = rig();
    if !std::path::Path::new(FAKETIME).exists() && process::may_skip("libfaketime is not installed")
    {
        return;
    }
    // The moment the probe will sign at: now, in whole seconds.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let credentials = aws_credential_types::Credentials::new(
        TASK_ACCESS_KEY,
        TASK_SECRET_KEY,
        Some(TASK_TOKEN.to_string()),
        None,
        "test",
    );
    let resource = Resource::Rds {
        host: "127.0.0.1".into(),
        port: rig.postgres,
        user: "iam_probe".into(),
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
    let password = token(&credentials, REGION, &resource, at).unwrap();
    let sql = format!(
        "DROP ROLE IF EXISTS iam_probe; CREATE ROLE iam_probe LOGIN PASSWORD '{}'",
        password.expose()
    );
    rig.psql("app", &sql).unwrap();
    let check = |name: &str, user: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\nkind = \"postgres\"\n\
             url = \"postgres://{user}@127.0.0.1:{}/app?sslmode=verify-full\"\n\
             ca_file = \"{}\"\nauth = \"iam\"\n",
            rig.postgres,
            rig.pg_certificate().display()
        )
    };
    let checks = check("rds", "iam_probe") + &check("rds-unknown", "iam_nobody");
    let frozen = humantime::format_rfc3339_seconds(at).to_string();
    let frozen = frozen.trim_end_matches('Z').replace('T', " ");
    let clock = [
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME", frozen.as_str()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("TZ", "UTC"),
    ];
    let run = probe_with_task_role("iam-rds", &checks, REGION, true, &clock);
    let _ = rig.psql("app", "DROP ROLE IF EXISTS iam_probe");
    let good = run.check("rds");
    assert_eq!(good["success"], true, "{good}");
    let unknown = run.check("rds-unknown");
    println!("{}", unknown["detail"]);
    refused(&unknown, "GRANT rds_iam TO iam_nobody");
    refused(
        &unknown,
        "rds-db:connect on arn:aws:rds-db:us-east-1:<account>:dbuser:<DbiResourceId>/iam_nobody",
    );
}

/// A Serverless cache's reader endpoint: port 6380 (on a loopback address
/// of its own, so the port is free), TLS named for the cache.
fn serverless_reader() -> &'static str {
    static READER: OnceLock<()> = OnceLock::new();
    READER.get_or_init(|| start_server("127.0.0.5:6380", &["0", "serverless"]));
    "127.0.0.5:6380"
}

fn serverless_check(serverless: bool) -> (i32, serde_json::Value) {
    let tls = rig::tls::tls_rig();
    let checks = format!(
        "[[check]]\nname = \"iam\"\nkind = \"redis\"\nurl = \"rediss://{}\"\n\
         tls_server_name = \"{ELASTICACHE_NAME}\"\nca_file = \"{}\"\n\
         auth = \"iam\"\n{}\nserverless = {serverless}\n",
        serverless_reader(),
        tls.ca_file.display(),
        keys(CACHE, USER)
    );
    let run = probe_with_task_role(
        &format!("iam-serverless-{serverless}"),
        &checks,
        REGION,
        true,
        &[],
    );
    let check = run.check("iam");
    println!("serverless = {serverless}: {}", check["detail"]);
    (run.code, check)
}

#[test]
fn a_serverless_reader_gets_readonly_before_its_reads_and_a_serverless_token() {
    let (code, check) = serverless_check(true);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["observed"]["cluster_state"], "ok");
}

#[test]
fn a_replication_group_token_is_refused_by_a_serverless_cache() {
    let (_, check) = serverless_check(false);
    refused(&check, "server said: WRONGPASS");
}
