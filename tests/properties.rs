//! Properties over generated input: the suite loader never panics and
//! never echoes a password, URL host handling round-trips, the scrubber
//! leaves no secret in any text or JSON, and whatever a server answers
//! first, every kind ends with a reason in its deadline, never a crash.

use proptest::prelude::*;
use std::time::Duration;
use vpc_probe::secret::{Scrubber, Secret};

const PASSWORD: &str = "Pw-Secret-Value-9931";

/// A valid suite with one check of every kind. Only ever parsed: its
/// private addresses are never probed.
fn valid_suite() -> String {
    format!(
        "[suite]\nname = \"props\"\ntimeout = \"2s\"\n\n\
         [[check]]\nname = \"d\"\nkind = \"dns\"\nhost = \"db.internal\"\nexpect_cidrs = [\"10.0.0.0/8\"]\n\n\
         [[check]]\nname = \"t\"\nkind = \"tcp\"\nhost = \"10.0.1.12\"\nport = 5432\n\n\
         [[check]]\nname = \"p\"\nkind = \"postgres\"\nurl = \"postgres://probe@db:5432/app?sslmode=require\"\npassword = \"{PASSWORD}\"\ncycles = 2\n\n\
         [[check]]\nname = \"r\"\nkind = \"redis\"\nurl = \"rediss://cache:6379\"\npassword = \"{PASSWORD}\"\nexpect_role = \"master\"\n\n\
         [[check]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://anisette:6969/v3/client_info\"\nexpect_status = [200]\n"
    )
}

/// One edit of a text: delete, insert or replace a character, or
/// duplicate a line.
fn mutate(text: &str, at: usize, edit: u8, with: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let mut out: Vec<char> = chars.clone();
    match edit % 4 {
        0 if at < out.len() => {
            out.remove(at);
        }
        1 => out.insert(at, with),
        2 if at < out.len() => out[at] = with,
        _ => {
            let lines: Vec<&str> = text.lines().collect();
            let line = lines[at % lines.len()];
            return format!("{text}\n{line}\n");
        }
    }
    out.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_loader_never_panics_and_never_echoes_a_password(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..4)
    ) {
        let mut text = valid_suite();
        for (at, edit, with) in edits {
            text = mutate(&text, at, edit, with);
        }
        match vpc_probe::config::parse(&text, "props.toml", "props") {
            Ok(suite) => prop_assert!(!suite.checks.is_empty()),
            Err(err) => {
                let shown = err.to_string();
                prop_assert!(shown.starts_with("props.toml"), "{}", shown);
                prop_assert!(!shown.contains(PASSWORD), "{}", shown);
            }
        }
    }

    #[test]
    fn hosts_lose_and_regain_their_brackets_once(host in "[a-z0-9.:-]{1,40}", port in 1u16..) {
        use vpc_probe::net::url_parts::{bare_host, host_port};
        let bare = bare_host(&host);
        let joined = host_port(bare, port);
        let suffix = format!(":{}", port);
        prop_assert!(joined.ends_with(&suffix));
        prop_assert_eq!(host_port(&format!("[{bare}]"), port), joined.clone());
        if bare.contains(':') {
            prop_assert!(joined.starts_with('['));
        }
    }

    #[test]
    fn no_secret_survives_the_scrubber(
        secret in "\\PC{4,24}",
        before in "\\PC{0,40}",
        after in "\\PC{0,40}",
        times in 1usize..4,
    ) {
        let mut scrubber = Scrubber::default();
        scrubber.add(&Secret::checked(secret.clone()).unwrap());
        let text = format!("{before}{}{after}", secret.repeat(times));
        let scrubbed = scrubber.scrub(&text);
        prop_assert!(!scrubbed.contains(&secret), "{:?}", scrubbed);
        let json = serde_json::to_string(&scrubbed).unwrap();
        let escaped = serde_json::to_string(&secret).unwrap();
        prop_assert!(!json.contains(escaped.trim_matches('"')), "{}", json);
    }
}

/// One server answer, as bytes, to every protocol kind.
fn answer_to_every_kind(answer: Vec<u8>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut request)).await;
                    let _ = stream.write_all(&answer).await;
                });
            }
        });
        let suite = vpc_probe::config::parse(
            &format!(
                "[suite]\ntimeout = \"1s\"\n\
                 [[check]]\nname = \"p\"\nkind = \"postgres\"\nurl = \"postgres://probe@127.0.0.1:{port}/app?sslmode=disable\"\n\
                 [[check]]\nname = \"r\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n\
                 [[check]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/\"\n\
                 [[check]]\nname = \"s\"\nkind = \"http\"\nurl = \"https://127.0.0.1:{port}/\"\ntls_skip_verify = true\n"
            ),
            "answers.toml",
            "answers",
        )
        .unwrap();
        let checks: Vec<&vpc_probe::suite::Check> = suite.checks.iter().collect();
        let report = vpc_probe::runner::run(&suite, &checks, |_| {}).await.unwrap();
        server.abort();
        for outcome in &report.checks {
            prop_assert!(outcome.duration < Duration::from_secs(3), "{}: {:?}", outcome.name, outcome.duration);
            if let Some(failure) = outcome.failure() {
                prop_assert!(!failure.detail.contains("crashed"), "{}: {}", outcome.name, failure.detail);
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_first_answer_ends_in_a_reason_not_a_crash(
        answer in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            // Starts that each protocol's parser takes further.
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [b"R".as_slice(), &tail].concat()),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [b"$".as_slice(), &tail].concat()),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [b"HTTP/1.1 ".as_slice(), &tail].concat()),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [b"\x16\x03\x03".as_slice(), &tail].concat()),
        ]
    ) {
        answer_to_every_kind(answer)?;
    }
}
