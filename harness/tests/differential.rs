//! The two key-management paths under a few hundred random histories: no divergence beyond the
//! allowed ones; and a planted defect of the ME-based path is found and shrunk.

use harness::differential::{self, EmulatedCards, Event};
use sim_reader::CardProfile;

fn diverging(profile: &CardProfile, history: &[Event], dir: &std::path::Path) -> Option<String> {
    let run = differential::run(history, profile, &mut EmulatedCards(profile.clone()), dir).unwrap();
    run.first_divergence().map(|(i, s)| format!("step {i} {}: uicc {:?} / me {:?}", s.event, s.uicc, s.me))
}

#[test]
fn random_histories_show_no_divergence() {
    let profile = CardProfile::default();
    let dir = tempfile::tempdir().unwrap();
    let histories: u64 =
        std::env::var("KEYSIM_DIFF_HISTORIES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut failures = Vec::new();
    for seed in 0..histories {
        let history = differential::generate(seed);
        if let Some(d) = diverging(&profile, &history, dir.path()) {
            failures.push(format!("seed {seed}: {d}\n  history {}", differential::history_text(&history)));
        }
    }
    assert!(failures.is_empty(), "{} divergences:\n{}", failures.len(), failures.join("\n"));
}

/// A defect planted in the ME-based path (an MTK ID not above the last one accepted) is found in
/// random histories and shrunk to a few events that still show it.
#[test]
fn a_planted_divergence_is_found_and_shrunk() {
    let profile = CardProfile::default();
    let dir = tempfile::tempdir().unwrap();
    me::me_based::planted::set(Some(me::me_based::planted::Defect::StaleMtkIdAccepted));
    let mut found = None;
    for seed in 0..60 {
        let history = differential::generate(seed);
        if diverging(&profile, &history, dir.path()).is_some() {
            found = Some(history);
            break;
        }
    }
    let history = found.expect("the planted defect shows in 60 histories");
    let short = differential::shrink(&history, |h| diverging(&profile, h, dir.path()).is_some(), 400);
    me::me_based::planted::set(None);
    assert!(short.len() <= 4, "shrunk to {}", differential::history_text(&short));
    // It needs an MSK, an MTK and an MTK message that is not fresh.
    assert!(short.iter().any(|e| matches!(e, Event::MskPush(_) | Event::MskRepush(_))), "{short:?}");
    assert!(short.iter().any(|e| matches!(e, Event::MtkReplay | Event::MtkOld)), "{short:?}");
    // Without the defect, the same short history agrees.
    assert!(diverging(&profile, &short, dir.path()).is_none());
}

/// Found by the random histories: after a new bootstrap's MUK was used, an MSK message under the
/// older MUK (whose counter EF.MUK no longer keeps) was accepted by the card again — a replay. Both
/// paths must refuse it as not fresh.
#[test]
fn an_older_muks_message_is_not_replayed_after_a_newer_muk_was_used() {
    let profile = CardProfile::default();
    let dir = tempfile::tempdir().unwrap();
    let history = differential::parse_history("msk-push:0,rebootstrap,msk-push:0,msk-stale").unwrap();
    let run = differential::run(&history, &profile, &mut EmulatedCards(profile.clone()), dir.path()).unwrap();
    let last = run.steps.last().unwrap();
    assert_eq!(last.uicc.outcome, "refused: freshness", "{last:?}");
    assert_eq!(last.me.outcome, "refused: freshness", "{last:?}");
    assert!(run.first_divergence().is_none());
}
