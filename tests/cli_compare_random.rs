//! `keysim compare --random N` / `--history EVENTS` as scripts use it: the JSON keys, exit codes,
//! reproducible seeds, and a planted divergence reported with a command that shows it again.

use std::process::{Command, Output};

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn random_histories_report_the_documented_keys_and_agree() {
    let out = keysim(&["compare", "--random", "20", "--seed", "100", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["allowed_differences_seen", "divergences", "histories", "ok", "steps"]);
    assert_eq!(v["histories"], 20);
    assert!(v["steps"].as_u64().unwrap() >= 20 * 5);
    assert_eq!(v["divergences"].as_array().unwrap().len(), 0);
    assert_eq!(v["ok"], true);
    for a in v["allowed_differences_seen"].as_array().unwrap() {
        assert!(a["clause"].as_str().unwrap().starts_with("TS "), "{a}");
    }
    // A seed names the same histories every time.
    let again = json(&keysim(&["compare", "--random", "20", "--seed", "100", "--json"]));
    assert_eq!(v, again);
}

#[test]
fn a_planted_divergence_is_shrunk_and_its_command_shows_it_again() {
    let out = keysim(&["compare", "--random", "10", "--plant", "me-stale-mtk-id", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let divergences = v["divergences"].as_array().unwrap();
    assert!(!divergences.is_empty());
    let d = &divergences[0];
    assert!(d["seed"].is_u64());
    assert!(d["steps"].as_u64().unwrap() <= 4, "{d}");
    assert!(d["steps"].as_u64().unwrap() <= d["original_steps"].as_u64().unwrap());
    assert_eq!(d["first_difference"]["uicc"]["outcome"], "refused: freshness", "{d}");
    assert!(d["first_difference"]["me"]["outcome"].as_str().unwrap().starts_with("accepted MTK"), "{d}");
    // The printed command, run as it is, shows the same divergence; without the defect it agrees.
    let command = d["command"].as_str().unwrap();
    let history = command.split('\'').nth(1).unwrap();
    assert!(
        command.starts_with("keysim compare --history '") && command.ends_with("--plant me-stale-mtk-id")
    );
    let out = keysim(&["compare", "--history", history, "--plant", "me-stale-mtk-id"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("DIVERGENCE"));
    let out = keysim(&["compare", "--history", history]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_bad_history_is_refused_before_anything_runs() {
    for (history, says) in [
        ("msk-push:0,bogus", "'bogus' is no event"),
        ("mtk:7", "Key Group index 7"),
        ("mtk", "needs a Key Group"),
    ] {
        let out = keysim(&["compare", "--history", history]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{history}: {err}");
        assert!(err.contains(says), "{history}: {err}");
    }
}

#[test]
fn the_documented_history_runs_and_agrees() {
    // docs/differential.md shows this command.
    let out = keysim(&["compare", "--history", "msk-push:1,mtk:1,mtk-replay"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 histories, 3 steps"));
}
