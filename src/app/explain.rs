//! `vpc-probe explain`: what a reason means and what to check, per kind.

use super::exit::Exit;
use crate::outcome::{Kind, Reason};
use strum::IntoEnumIterator;

pub(super) fn explain(reason: Option<Reason>) -> Exit {
    let reasons: Vec<Reason> = reason.map_or_else(|| Reason::all().collect(), |r| vec![r]);
    for reason in reasons {
        say!(
            "{reason}\n  means: {}\n  check: {}",
            reason.meaning(),
            reason.hint()
        );
        for kind in Kind::iter() {
            if let Some(hint) = reason.kind_hint(kind) {
                say!("  {kind}: {hint}");
            }
        }
        say!();
    }
    Exit::Pass
}
