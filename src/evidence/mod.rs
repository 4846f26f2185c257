//! Joining the AWS describes to a run: for each check that failed (or every
//! check, `explain = "always"`), the question its result raises, one
//! batched reading of both accounts for the whole run, and the findings
//! attached to its outcome. `paths` asks the same questions without
//! sending any traffic.
//!
//! Layout: `ask` (a check and its result to a question), `judge` (a
//! question and the describes to `Evidence`), `paths` (the static verdict).

pub mod ask;
pub mod judge;
pub mod paths;

use crate::aws::fetch::Wanted;
use crate::aws::settings::{Explain, Settings, Source};
use crate::ecs::TaskIdentity;
use crate::outcome::{Evidence, Outcome};
use crate::suite::{Check, Suite};
use ask::Ask;

/// What one explanation cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub calls: usize,
    pub seconds: f64,
}

/// The source of every path: the suite's, else the task's own address.
pub fn source(settings: &Settings, task: Option<&TaskIdentity>) -> Option<Source> {
    settings.source.clone().or_else(|| {
        let address = task?.private_ip.as_deref()?.parse().ok()?;
        Some(Source::Address(address))
    })
}

/// Attach `Evidence` to the outcomes the suite's `[aws]` table asks about.
/// Never changes a check's result; costs one reading for the whole run.
pub async fn explain(
    suite: &Suite,
    outcomes: &mut [Outcome],
    task: Option<&TaskIdentity>,
) -> Option<Cost> {
    explain_checks(suite.aws.as_ref()?, &suite.checks, outcomes, task).await
}

/// [`explain`] for `checks` (those the outcomes came from) under `settings`.
pub async fn explain_checks(
    settings: &Settings,
    checks: &[Check],
    outcomes: &mut [Outcome],
    task: Option<&TaskIdentity>,
) -> Option<Cost> {
    let picked: Vec<usize> = (0..outcomes.len())
        .filter(|i| match settings.explain {
            Explain::Never => false,
            Explain::OnFailure => !outcomes[*i].success(),
            Explain::Always => true,
        })
        .collect();
    if picked.is_empty() {
        return None;
    }
    let started = std::time::Instant::now();
    let mut asks: Vec<(usize, Ask)> = picked
        .iter()
        .filter_map(|i| {
            let check = checks.iter().find(|c| c.name == outcomes[*i].name)?;
            Some((*i, ask::after_run(check, &outcomes[*i])))
        })
        .collect();
    // Nothing to ask (a loopback or link-local destination, an IPv6 path):
    // said so, and no reading made for it.
    asks.retain(|(i, ask)| match ask {
        Ask::Nothing(why) => {
            outcomes[*i].evidence = Some(Evidence::skipped(why.clone()));
            false
        }
        _ => true,
    });
    if asks.is_empty() {
        return None;
    }
    let Some(source) = source(settings, task) else {
        let why =
            "no source for the path: set [aws] source, or run as an ECS task (task metadata v4)";
        for (i, _) in &asks {
            outcomes[*i].evidence = Some(Evidence::skipped(why));
        }
        return None;
    };
    let wanted = wanted(&source, asks.iter().map(|(_, ask)| ask));
    let zone = task.and_then(|t| t.availability_zone.as_deref());
    let reading = crate::aws::read::read(settings, &wanted, zone).await;
    let region = crate::aws::read::region(settings, zone).unwrap_or_default();
    for (i, ask) in &asks {
        let seen = if outcomes[*i].success() {
            judge::Seen::Passed
        } else {
            judge::Seen::Failed
        };
        outcomes[*i].evidence = Some(match &reading.skipped {
            Some(why) if reading.world.accounts.is_empty() => Evidence::skipped(why.clone()),
            partial => {
                let mut evidence = judge::judge(&reading.world, &source, &[], ask, seen, &region);
                evidence.skipped = evidence.skipped.or(partial.clone());
                evidence
            }
        });
    }
    let cost = Cost {
        calls: reading.calls,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        calls = cost.calls,
        seconds = cost.seconds,
        "explained {} checks from the AWS describes",
        asks.len()
    );
    Some(cost)
}

/// One reading's wants for all questions.
pub(crate) fn wanted<'a>(source: &Source, asks: impl Iterator<Item = &'a Ask>) -> Wanted {
    let mut wanted = Wanted {
        source: Some(source.clone()),
        ..Wanted::default()
    };
    for ask in asks {
        match ask {
            Ask::Path { address, .. } => {
                wanted.addresses.insert(*address);
            }
            Ask::Name { host } => {
                wanted
                    .hosts
                    .insert(host.trim_end_matches('.').to_ascii_lowercase());
            }
            Ask::Nothing(_) => {}
        }
    }
    wanted
}
