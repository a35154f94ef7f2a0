//! The `keysim` command line as scripts use it: flags, JSON shapes, exit codes and error messages.

use std::process::{Command, Output};

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "keysim failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

#[test]
fn profile_show_json_has_exactly_the_documented_keys() {
    let v = stdout_json(&keysim(&["profile", "show", "--json"]));
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["adm1", "amf", "home_domain", "iccid", "impi", "impu", "imsi", "k", "opc", "pin1", "puk1", "sqn"]
    );
    assert!(v["impu"].is_array());
    for hex_key in ["k", "opc"] {
        let s = v[hex_key].as_str().expect("string");
        assert_eq!(s.len(), 32);
        assert!(s.chars().all(|c| c.is_ascii_hexdigit()), "{hex_key} = {s}");
    }
    assert_eq!(v["sqn"].as_str().map(str::len), Some(12));
    assert_eq!(v["amf"].as_str().map(str::len), Some(4));
}

#[test]
fn profile_show_reads_a_file_and_names_the_bad_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string("tests/data/applet-test-profile.toml").expect("test profile");
    let path = dir.path().join("p.toml");
    std::fs::write(&path, &good).expect("write");
    let v = stdout_json(&keysim(&["profile", "show", "--profile", path.to_str().unwrap(), "--json"]));
    assert_eq!(v["iccid"], "8988211000000430010");
    assert_eq!(v["adm1"], "3132333435363738");

    std::fs::write(&path, good.replace("465b5ce8b199b49faa5f0a2ee238a6bc", "465b5c")).expect("write");
    let out = keysim(&["profile", "show", "--profile", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains('k') && err.contains("p.toml"), "{err}");
}

#[test]
fn apdu_json_gives_command_response_and_status_word() {
    // SELECT MF returning the FCP, then READ BINARY of EF.ICCID (readable without PIN, 10 bytes).
    let v = stdout_json(&keysim(&[
        "apdu",
        "--emulator",
        "--json",
        "00A40004023F00",
        "00a4000c022fe2",
        "00B000000A",
    ]));
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 3);
    for item in list {
        let mut keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["command", "response", "sw"]);
    }
    assert_eq!(list[0]["command"], "00A40004023F00");
    assert_eq!(list[0]["sw"], "9000");
    // An FCP template (tag 62) without the status word.
    let fcp = list[0]["response"].as_str().unwrap();
    assert!(fcp.starts_with("62") && !fcp.ends_with("9000"), "{fcp}");
    assert_eq!(list[1]["response"], "");
    // EF.ICCID: the default profile's ICCID, nibble-swapped BCD (TS 102 221 §13.2).
    let profile = stdout_json(&keysim(&["profile", "show", "--json"]));
    let iccid = profile["iccid"].as_str().unwrap();
    let mut digits: Vec<char> = iccid.chars().collect();
    digits.resize(20, 'F');
    let swapped: String = digits.chunks(2).flat_map(|p| [p[1], p[0]]).collect();
    assert_eq!(list[2]["response"], swapped.as_str());
    assert_eq!(list[2]["sw"], "9000");
}

#[test]
fn apdu_under_t0_returns_whole_responses_after_get_response() {
    let t1 = stdout_json(&keysim(&["apdu", "--emulator", "--json", "00A40004023F00"]));
    let t0 = stdout_json(&keysim(&["apdu", "--emulator", "--protocol", "t0", "--json", "00A40004023F00"]));
    assert_eq!(t0[0]["response"], t1[0]["response"]);
    assert_eq!(t0[0]["sw"], "9000");
}

#[test]
fn apdu_rejects_odd_length_hex_before_sending_anything() {
    let out = keysim(&["apdu", "--emulator", "00A4000C023F00", "00A4000C023F0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("APDU #2") && err.contains("odd"), "{err}");
    assert!(out.stdout.is_empty(), "nothing may be sent: {}", String::from_utf8_lossy(&out.stdout));

    let out = keysim(&["apdu", "--emulator", "00A4"]);
    assert!(!out.status.success(), "a two-byte APDU is no command");
}

#[test]
fn card_state_keeps_the_pin_try_counter_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("card.bin");
    let state = state.to_str().unwrap();
    // A wrong PIN1 ("0000"): 63C2 (two tries left of three).
    let v = stdout_json(&keysim(&["apdu", "--card-state", state, "--json", "002000010830303030FFFFFFFF"]));
    assert_eq!(v[0]["sw"], "63C2");
    // A new process on the same state: the counter stayed down (VERIFY with no data asks for it).
    let v = stdout_json(&keysim(&["apdu", "--card-state", state, "--json", "0020000100"]));
    assert_eq!(v[0]["sw"], "63C2");
    // A card without the state file starts afresh.
    let v = stdout_json(&keysim(&["apdu", "--json", "0020000100"]));
    assert_eq!(v[0]["sw"], "63C3");
}

#[test]
fn gba_derive_json_matches_an_independent_hmac_sha256() {
    // TS 35.208 test set 1 CK/IK/RAND (spec digest §8.1) and the §8.2 example identities.
    let (ck, ik, rand) = (
        "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        "f769bcd751044604127672711c6d3441",
        "23553cbe9637a89d218ae64dae47bf35",
    );
    let impi = "user@ims.mnc001.mcc001.3gppnetwork.org";
    let v = stdout_json(&keysim(&[
        "gba",
        "derive",
        "--ck",
        ck,
        "--ik",
        ik,
        "--rand",
        rand,
        "--impi",
        impi,
        "--naf-fqdn",
        "bmsc.example.org",
        "--ua-protocol",
        "0100000001",
        "--json",
    ]));
    assert_eq!(v["ks"], format!("{ck}{ik}"));
    assert_eq!(v["ks_naf"], v["ks_ext_naf"]);
    assert_eq!(v["btid"], "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
    // Recompute with Python's hmac/hashlib: S = FC || P0 || L0 || RAND || L1 || IMPI || L2 || NAF_Id || L3.
    let script = r#"
import hmac, hashlib, sys
ks = bytes.fromhex(sys.argv[1]); rand = bytes.fromhex(sys.argv[2]); impi = sys.argv[3].encode()
naf = b"bmsc.example.org" + bytes.fromhex("0100000001")
def kdf(p0):
    s = b"\x01"
    for p in (p0, rand, impi, naf):
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(ks, s, hashlib.sha256).hexdigest()
print(kdf(b"gba-me"), kdf(b"gba-u"))
"#;
    let ks = format!("{ck}{ik}");
    match Command::new("python3").args(["-c", script, &ks, rand, impi]).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut it = text.split_whitespace();
            assert_eq!(v["ks_ext_naf"], it.next().unwrap());
            assert_eq!(v["ks_int_naf"], it.next().unwrap());
        }
        other => {
            assert!(!oracles_required(), "python3 is needed for this check: {other:?}");
            eprintln!("skipped the Python cross-check: python3 not available");
        }
    }
}

#[test]
fn gba_derive_rejects_bad_lengths_with_the_option_name() {
    let out = keysim(&[
        "gba",
        "derive",
        "--ck",
        "00",
        "--ik",
        "00",
        "--rand",
        "00",
        "--impi",
        "x",
        "--naf-fqdn",
        "y",
        "--ua-protocol",
        "0100000001",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ck"));
}

#[test]
fn compare_runs_both_paths_and_finds_them_identical() {
    let v = stdout_json(&keysim(&["compare", "--json", "--rounds", "6", "--packets-per-mtk", "5"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["mtks_identical"], true);
    assert_eq!(v["media_identical"], true);
    for path in ["uicc", "me"] {
        assert_eq!(v[path]["mtk_updates"], 6);
        assert_eq!(v[path]["packets_decrypted"], 30);
        assert_eq!(v[path]["packets_failed"], 0);
    }
    assert_eq!(v["uicc"]["secrets_on_card_interface"], 0);
    // The UICC path does its MBMS key management over APDUs: more exchanges than the ME path.
    assert!(v["uicc"]["apdus"].as_u64() > v["me"]["apdus"].as_u64());
}
