//! `keysim card-test` through the binary: the clean emulated card passes every case (the
//! destructive ones included), and every planted defect of the card (uicc-applet feature
//! `testing`) is caught by the case meant for it, so a clean run means something. Also the
//! catalogue listing, `--only`, the JSON and JUnit outputs, and the commands the README shows.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::Value;
use uicc_applet::testing::Defect;

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

fn failed(report: &Value) -> BTreeSet<String> {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The clauses of the catalogue, each with at least this many cases.
const CLAUSES: [(&str, u64); 5] =
    [("TS 102 221", 20), ("TS 33.102", 8), ("TS 33.220", 8), ("TS 33.246", 12), ("secrets", 1)];

#[test]
fn the_clean_emulated_card_passes_every_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("card-test.xml");
    let out = keysim(&[
        "card-test",
        "--emulator",
        "--destructive",
        "--json",
        "--junit",
        junit.to_str().expect("path"),
    ]);
    let report = json(&out);
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    let total = report["summary"]["total"].as_u64().expect("total");
    assert_eq!(report["summary"]["pass"], total, "every case passes on our card: {:#}", report["summary"]);
    assert!(total >= 50, "{total} cases");
    for (clause, at_least) in CLAUSES {
        let n = report["clauses"][clause]["total"].as_u64().unwrap_or(0);
        assert!(n >= at_least, "clause {clause}: {n} cases, expected at least {at_least}");
    }
    let xml = std::fs::read_to_string(&junit).expect("JUnit file");
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testcase ").count() as u64, total);
    assert_eq!(xml.matches("<testsuite ").count(), CLAUSES.len());
    assert!(!xml.contains("<failure"));
}

/// The case meant to catch each planted defect (others may fail too).
fn catcher(defect: Defect) -> &'static str {
    match defect {
        Defect::WrongMacCheck => "AKA-GBA-U-IN-3G",
        Defect::CounterNotAdvanced => "MBMS-MTK-ID-RULE",
        Defect::KsIntNafLeaked => "SEC-NO-SECRETS",
        Defect::ThirdMskKept => "MBMS-TWO-MSKS",
        Defect::PinTryNotCounted => "BAS-VERIFY-COUNTER",
        Defect::MissingFcpTag => "BAS-SELECT-EF-FCP",
    }
}

#[test]
fn every_planted_defect_is_caught() {
    for defect in Defect::ALL {
        let out = keysim(&["card-test", "--emulator", "--destructive", "--json", "--defect", defect.name()]);
        let report = json(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: the suite must fail: {:#}",
            defect.name(),
            report["summary"]
        );
        assert_eq!(report["defect"], defect.name());
        let failed = failed(&report);
        assert!(
            failed.contains(catcher(defect)),
            "{}: {} did not catch it; failed: {failed:?}",
            defect.name(),
            catcher(defect)
        );
        // A failure names what was expected, what came back and the APDUs.
        let case = report["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["id"] == catcher(defect))
            .expect("case");
        assert!(
            case["message"].is_string() && !case["apdus"].as_array().expect("apdus").is_empty(),
            "{case:#}"
        );
    }
}

#[test]
fn an_unknown_defect_is_refused() {
    let out = keysim(&["card-test", "--emulator", "--defect", "no-such-defect"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known defects"));
}

#[test]
fn the_catalogue_lists_and_filters() {
    let out = keysim(&["card-test", "--list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BAS-UNBLOCK-PIN") && text.contains("[destructive]"), "{text}");
    let listed = json(&keysim(&["card-test", "--list", "--json"]));
    let all = listed.as_array().expect("list");
    assert!(all.iter().any(|c| c["id"] == "MBMS-FILL-EF-MSK" && c["destructive"] == true));
    let ids: BTreeSet<_> = all.iter().map(|c| c["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), all.len(), "case IDs are unique");

    let only = json(&keysim(&["card-test", "--list", "--json", "--only", "MBMS-*-DELETION"]));
    let ids: Vec<_> =
        only.as_array().expect("list").iter().map(|c| c["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids, ["MBMS-MSK-DELETION", "MBMS-MUK-DELETION"]);
    let out = keysim(&["card-test", "--emulator", "--only", "nothing-matches"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn destructive_cases_are_skipped_by_default() {
    let report = json(&keysim(&["card-test", "--emulator", "--only", "BAS-UNBLOCK", "--json"]));
    let verdicts: Vec<_> = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (c["id"].clone(), c["verdict"].clone()))
        .collect();
    assert_eq!(
        verdicts,
        [("BAS-UNBLOCK-STATUS".into(), "pass".into()), ("BAS-UNBLOCK-PIN".into(), "skipped".into())],
        "{report:#}"
    );
}

/// The commands README.md shows for the emulated card.
#[test]
fn readme_commands() {
    let out = keysim(&["card-test", "--emulator"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("GBA-NAF-DERIVATION") && l.contains(" pass ")), "{text}");
    assert!(text.contains(" 0 fail"), "{text}");
    let out = keysim(&["card-test", "--emulator", "--only", "MBMS", "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["summary"]["fail"], 0);
    let readme = include_str!("../README.md");
    for command in [
        "keysim card-test --emulator",
        "keysim card-test --list",
        "keysim card-test --emulator --only MBMS --json",
    ] {
        assert!(readme.contains(command), "README shows `{command}`");
    }
    assert!(keysim(&["card-test", "--list"]).status.success());
}

#[test]
fn a_reader_or_the_emulator_is_required() {
    let out = keysim(&["card-test"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A plain USIM: EF.UST without GBA (n°68) and MBMS security (n°69), EF.DIR without the ISIM
/// (both changed under ADM1 on an emulated card kept in a card-state file). The GBA_U, MBMS and
/// ISIM cases are then not applicable, and nothing fails.
#[test]
fn a_plain_usim_gets_not_applicable_not_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("plain-usim.bin");
    let state = state.to_str().expect("path");
    let read = keysim(&[
        "apdu",
        "--emulator",
        "--card-state",
        state,
        "--json",
        "00A4040C07A0000000871002",
        "0020000A083838383838383838",
        "002000010831323334FFFFFFFF",
        "00A4000C026F38",
        "00B000000C",
    ]);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let exchanges = json(&read);
    assert_eq!(exchanges[1]["sw"], "9000", "ADM1 of the built-in profile");
    let mut ust = hex::decode(exchanges[4]["response"].as_str().expect("EF.UST")).expect("hex");
    assert!(ust[8] & 0x18 == 0x18, "the built-in card offers n°68 and n°69");
    ust[8] &= !0x18;
    let update_ust = format!("00D600000C{}", hex::encode_upper(&ust));
    let update_dir = format!("00DC020428{}", "FF".repeat(40));
    let write = keysim(&[
        "apdu",
        "--emulator",
        "--card-state",
        state,
        "--json",
        "00A4040C07A0000000871002",
        "0020000A083838383838383838",
        "00A4000C026F38",
        &update_ust,
        "00A4000C023F00",
        "00A4000C022F00",
        &update_dir,
    ]);
    let sws: Vec<_> = json(&write)
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["sw"].as_str().expect("sw").to_owned())
        .collect();
    assert!(sws.iter().all(|sw| sw == "9000"), "{sws:?}");

    let out = keysim(&["card-test", "--emulator", "--card-state", state, "--json"]);
    let report = json(&out);
    assert!(out.status.success(), "{report:#}");
    let verdict = |id: &str| {
        report["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["verdict"].clone())
            .expect(id)
    };
    for id in [
        "GBA-BOOTSTRAP",
        "GBA-NAF-DERIVATION",
        "GBA-ISIM",
        "MBMS-MSK-UPDATE",
        "MBMS-TWO-MSKS",
        "AKA-ISIM",
        "SEC-NO-SECRETS",
    ] {
        assert_eq!(verdict(id), "not_applicable", "{id}");
    }
    for id in ["AKA-USIM", "BAS-MANAGE-CHANNEL", "BAS-SELECT-AID-FULL"] {
        assert_eq!(verdict(id), "pass", "{id}");
    }
    assert_eq!(report["summary"]["fail"], 0);
}

/// A profile whose PIN1 the card refuses costs one try and stops the suite (exit 2): it is never
/// presented again.
#[test]
fn a_wrong_profile_pin_costs_one_try_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("card.bin");
    let state = state.to_str().expect("path");
    assert!(keysim(&["apdu", "--emulator", "--card-state", state, "00A4000C023F00"]).status.success());
    let profile = String::from_utf8(keysim(&["profile", "show"]).stdout).expect("utf-8");
    let wrong = dir.path().join("wrong-pin.toml");
    let text: String = profile
        .lines()
        .map(|l| if l.starts_with("pin1 =") { "pin1 = \"9999\"\n".to_owned() } else { format!("{l}\n") })
        .collect();
    std::fs::write(&wrong, text).expect("write profile");
    let out = keysim(&[
        "card-test",
        "--emulator",
        "--card-state",
        state,
        "--profile",
        wrong.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PIN1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = json(&keysim(&[
        "apdu",
        "--emulator",
        "--card-state",
        state,
        "--json",
        "00A4040C07A0000000871002",
        "00200001",
    ]));
    assert_eq!(after[1]["sw"], "63C2", "exactly one try spent");
}
