//! `keysim tearing` through the binary: every key-management flow of the card and of the ME key
//! store, cut at every write, without a violation; and the same checks reporting violations (and
//! a failing exit status) when a broken write ordering is planted, so a clean run means something.

use std::process::{Command, Output};

use serde_json::Value;

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn flow<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["flows"].as_array().expect("flows").iter().find(|f| f["name"] == name).unwrap_or_else(|| {
        panic!("no flow {name} in {report}");
    })
}

/// The flows the campaign must cover (issue: PIN verify/change, GBA bootstrap, NAF derivation, MSK
/// update, MTK generation, MSK and MUK deletion, USIM/ISIM AKA; the ME key store writes).
const REQUIRED: [&str; 21] = [
    "pin-verify",
    "pin-verify-wrong",
    "pin-change",
    "pin-unblock",
    "usim-aka",
    "isim-aka",
    "gba-bootstrap",
    "naf-derivation",
    "msk-update",
    "msk-update-key-group",
    "mtk-generation",
    "mtk-generation-next",
    "msk-deletion",
    "muk-deletion",
    "me-muk-mrk-store",
    "me-msk-store",
    "me-mtk-store",
    "me-msk-deletion",
    "me-muk-deletion",
    "me-card-change-wipe",
    "me-power-down-drop",
];

#[test]
fn every_flow_is_cut_at_every_write_without_a_violation() {
    let out = keysim(&["tearing", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["violations_total"], 0, "{report:#}");
    let flows = report["flows"].as_array().expect("flows");
    for name in REQUIRED {
        let f = flow(&report, name);
        let (writes, cuts) = (f["writes"].as_u64().expect("writes"), f["cut_points"].as_u64().expect("cuts"));
        assert!(writes >= 1 && cuts >= writes, "{name}: {writes} writes, {cuts} cut points");
        assert_eq!(f["violations"], 0, "{name}: {f:#}");
        assert_eq!(f["details"].as_array().map(Vec::len), Some(0));
    }
    let sum: u64 = flows.iter().map(|f| f["cut_points"].as_u64().expect("cuts")).sum();
    assert_eq!(report["cut_points_total"].as_u64(), Some(sum));
    // Card flows are cut with four kinds of torn write and again in their recovery.
    assert!(sum > 1000, "only {sum} cut points");
    // The ME store is cut before each of the five steps of a save, and after the rename once more
    // with the rename lost.
    assert_eq!(flow(&report, "me-msk-store")["cut_points"], 6);

    let text = keysim(&["tearing"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("{sum} cut points, 0 invariant violations")), "{text}");
}

#[test]
fn a_lost_journal_commit_mark_is_caught() {
    let out = keysim(&["tearing", "--json", "--flow", "msk-update", "--defect", "journal-mark-lost"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["ok"], false);
    let f = flow(&report, "msk-update");
    assert!(f["violations"].as_u64().expect("violations") > 0, "{f:#}");
    let details = f["details"].to_string();
    assert!(details.contains("neither the old nor the new"), "{details}");
    assert_eq!(report["flows"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_store_rewritten_in_place_is_caught() {
    let out = keysim(&["tearing", "--json", "--flow", "me-mtk-store", "--defect", "store-in-place"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = flow(&report, "me-mtk-store");
    assert!(f["violations"].as_u64().expect("violations") > 0, "{f:#}");
    assert!(f["details"].to_string().contains("the store was lost"), "{f:#}");
}

#[test]
fn an_unknown_flow_is_a_usage_error() {
    let out = keysim(&["tearing", "--flow", "no-such-flow"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no flow 'no-such-flow'") && stderr.contains("me-power-down-drop"), "{stderr}");
}
