//! Code shared by the root integration tests that run the `keysim` binary (`mod support;`); what
//! the other tests share is in the test-kit crate.
#![allow(dead_code)]

/// The profile the `keysim vpcd` card of scripts/pcsc-tests.sh was personalized with: the
/// built-in one, as `keysim profile show --json` prints it.
pub fn vpcd_card_profile() -> sim_reader::CardProfile {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["profile", "show", "--json"])
        .output()
        .expect("run keysim profile show");
    assert!(out.status.success(), "keysim profile show: {}", String::from_utf8_lossy(&out.stderr));
    sim_reader::CardProfile::from_json_str(&String::from_utf8_lossy(&out.stdout)).expect("profile JSON")
}

pub mod serve;
