//! The runner's own rules: scrubbing, the latency budget, a crash.

use super::one::{scrubbed_chain, scrubbed_idle, within_max_duration};
use super::*;
use crate::check::Probe;
use crate::outcome::{ChainFacts, IdleStep, Phase, Reason};
use std::collections::BTreeMap;

/// Every string a server supplies passes the scrubber: a secret
/// planted in each such field is gone.
#[test]
fn server_supplied_strings_are_scrubbed() {
    let planted = "planted-Secret-9931";
    let mut scrubber = Scrubber::default();
    scrubber.add(&crate::secret::Secret::new(planted));
    let said = format!("FATAL: password {planted} expired");
    let steps = vec![IdleStep {
        idle_seconds: 1.0,
        survived: false,
        fate: Some(crate::outcome::IdleEnd::Fin),
        after_seconds: Some(0.5),
        server_said: Some(said),
    }];
    let idle = scrubbed_idle(steps, &scrubber);
    let chain = scrubbed_chain(
        ChainFacts {
            subject: format!("CN={planted}"),
            sans: vec![format!("{planted}.example")],
            issuer: format!("CN={planted} CA"),
            not_after: 0,
            earliest_not_after: 0,
            presented: 1,
        },
        &scrubber,
    );
    let fields = [
        idle[0].server_said.clone().unwrap_or_default(),
        chain.subject,
        chain.sans.join(","),
        chain.issuer,
    ];
    for field in fields {
        assert!(!field.contains(planted) && !field.is_empty(), "{field}");
    }
}

#[test]
fn over_budget_is_too_slow_in_the_slowest_phase() {
    let phases = BTreeMap::from([
        (Phase::Connect, Duration::from_millis(5)),
        (Phase::Auth, Duration::from_millis(400)),
    ]);
    let budget = Some(Duration::from_millis(300));
    let failure = within_max_duration(budget, Duration::from_millis(420), &phases).unwrap_err();
    assert_eq!(
        (failure.reason, failure.phase),
        (Reason::TooSlow, Phase::Auth)
    );
    assert!(failure.detail.contains("420 ms") && failure.detail.contains("300 ms"));
    assert!(within_max_duration(budget, Duration::from_millis(200), &phases).is_ok());
    assert!(within_max_duration(None, Duration::from_secs(9), &phases).is_ok());
}

#[tokio::test]
async fn a_crash_is_reported_in_its_phase_after_the_time_it_ran() {
    let check = Check {
        name: "hostile".into(),
        timeout: Duration::from_secs(5),
        max_duration: None,
        addresses: Default::default(),
        interval: None,
        min_cert_validity: crate::suite::DEFAULT_MIN_CERT_VALIDITY,
        spec: crate::check::CheckSpec::Tcp(crate::check::tcp::TcpSpec {
            host: "127.0.0.1".into(),
            port: 9,
            expect: Default::default(),
            idle: None,
        }),
    };
    let net = Net::new(Some("127.0.0.1:9".parse().unwrap()), Duration::from_secs(1)).unwrap();
    let in_flight = InFlight::default();
    let watched = in_flight.clone();
    let outcome = isolated(&check, &Scrubber::default(), watched, async move {
        let mut probe = Probe::new(&net, Duration::from_secs(5), in_flight);
        let _ = probe
            .phase(Phase::Auth, async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                panic!("a hostile answer");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await;
        unreachable!("the phase panicked")
    })
    .await;
    let failure = outcome.failure().expect("a crash fails the check");
    assert_eq!(
        (failure.reason, failure.phase),
        (Reason::ProtocolError, Phase::Auth)
    );
    assert!(
        outcome.duration >= Duration::from_millis(30),
        "{:?}",
        outcome.duration
    );
}
