//! The published known-answer vectors (`vectors/*.json`) against two implementations:
//!
//! - `vectors/check.py`, written from the standards' text with Python's hmac/hashlib and the
//!   `cryptography` AES (and libsrtp through pylibsrtp for the SRTP packet), recomputes every
//!   output from its inputs; a copy with one flipped octet must fail it, so it is no rubber stamp;
//! - keysim's own code (the `gba` and `srtp` crates, `keysim mikey decode`, `keysim srtp protect`)
//!   gives the same values.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("vectors").join(name)).expect("vector file");
    serde_json::from_str(&text).expect("JSON")
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    h(v).try_into().expect("length")
}

/// The Python with `cryptography` the oracle tests use (`scripts/python-oracles.sh`): $KEYSIM_PYTHON,
/// else the venv in the target directory, else that script builds it. `None` (reason printed) when
/// none can be had and `KEYSIM_REQUIRE_ORACLES` is unset.
fn python() -> Option<PathBuf> {
    let usable = |p: &Path| {
        Command::new(p).args(["-c", "import cryptography"]).output().is_ok_and(|o| o.status.success())
    };
    let candidate = std::env::var_os("KEYSIM_PYTHON").map(PathBuf::from).or_else(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?.to_owned();
        let venv = target.join("pyenv-srtp/bin/python");
        if usable(&venv) {
            return Some(venv);
        }
        let out = Command::new(root().join("scripts/python-oracles.sh"))
            .env("CARGO_TARGET_DIR", target)
            .output()
            .ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match candidate {
        Some(p) if usable(&p) => Some(p),
        other => {
            assert!(
                std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_none(),
                "a Python with `cryptography` is required (KEYSIM_REQUIRE_ORACLES is set); found {other:?}"
            );
            eprintln!("no Python with `cryptography`: skipping the independent recomputation");
            None
        }
    }
}

#[test]
fn python_recomputes_every_vector() {
    let Some(py) = python() else { return };
    let out = Command::new(&py).arg(root().join("vectors/check.py")).output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "vectors/check.py: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    for file in ["gba_kdf.json", "gba_u_autn.json", "mbms_muk_mrk.json", "mbms_mikey.json", "srtp.json"] {
        assert!(stdout.contains(file), "check.py skipped {file}: {stdout}");
    }
    eprint!("{stdout}");
}

#[test]
fn python_refuses_a_corrupted_vector() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(root().join("vectors")).expect("vectors/") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    for (file, field) in [("gba_kdf.json", "ks_int_naf"), ("mbms_mikey.json", "msk"), ("srtp.json", "srtp")] {
        let path = dir.path().join(file);
        let good = std::fs::read_to_string(&path).expect("read");
        let mut doc: Value = serde_json::from_str(&good).expect("JSON");
        let target = match file {
            "mbms_mikey.json" => &mut doc["msk_messages"][0][field],
            "srtp.json" => &mut doc["packets"][0][field],
            _ => &mut doc["vectors"][0][field],
        };
        let mut bytes = h(target);
        bytes[0] ^= 0x01;
        *target = Value::String(hex::encode(bytes));
        std::fs::write(&path, doc.to_string()).expect("write");
        let out =
            Command::new(&py).arg(dir.path().join("check.py")).arg(dir.path()).output().expect("python");
        assert!(!out.status.success(), "check.py accepted a flipped {field} in {file}");
        std::fs::write(&path, good).expect("restore");
    }
}

#[test]
fn gba_crate_gives_the_gba_vectors() {
    for v in load("gba_kdf.json")["vectors"].as_array().expect("vectors") {
        let ks = gba::Ks::from_ck_ik(&gba::Ck::new(arr(&v["ck"])), &gba::Ik::new(arr(&v["ik"])));
        assert_eq!(hex::encode(ks.expose()), v["ks"]);
        let rand: gba::Rand = arr(&v["rand"]);
        let naf_id = gba::NafId::from_bytes(&h(&v["naf_id"])).expect("NAF_Id");
        assert_eq!(naf_id.fqdn(), v["naf_fqdn"]);
        let impi = v["impi"].as_str().expect("impi").as_bytes();
        let ext = gba::kdf::derive_ks_ext_naf(&ks, &rand, impi, &naf_id).expect("Ks_ext_NAF");
        let int = gba::kdf::derive_ks_int_naf(&ks, &rand, impi, &naf_id).expect("Ks_int_NAF");
        let naf = gba::kdf::derive_ks_naf(&ks, &rand, impi, &naf_id).expect("Ks_NAF");
        assert_eq!(hex::encode(ext.expose()), v["ks_ext_naf"]);
        assert_eq!(hex::encode(int.expose()), v["ks_int_naf"]);
        assert_eq!(hex::encode(naf.expose()), v["ks_naf"]);
        let btid = gba::BTid::new(&rand, v["bsf_domain"].as_str().expect("domain")).expect("B-TID");
        assert_eq!(btid.as_str(), v["btid"]);
    }
    for v in load("mbms_muk_mrk.json")["vectors"].as_array().expect("vectors") {
        let ks: [u8; 32] = arr(&v["ks"]);
        let (ck, ik) = ks.split_at(16);
        let ks = gba::Ks::from_ck_ik(
            &gba::Ck::new(ck.try_into().expect("CK")),
            &gba::Ik::new(ik.try_into().expect("IK")),
        );
        let naf_id = gba::NafId::from_bytes(&h(&v["naf_id"])).expect("NAF_Id");
        let impi = v["impi"].as_str().expect("impi").as_bytes();
        let rand: gba::Rand = arr(&v["rand"]);
        let (ext, int) = (
            gba::kdf::derive_ks_ext_naf(&ks, &rand, impi, &naf_id).expect("MRK"),
            gba::kdf::derive_ks_int_naf(&ks, &rand, impi, &naf_id).expect("MUK"),
        );
        assert_eq!(hex::encode(ext.expose()), v["mrk"]);
        assert_eq!(hex::encode(int.expose()), v["muk"]);
    }
    for v in load("gba_u_autn.json")["vectors"].as_array().expect("vectors") {
        let ik = gba::Ik::new(arr(&v["ik"]));
        assert_eq!(hex::encode(gba::gba_u::gba_u_mac_mask(&ik)), v["mask"]);
        let autn = gba::Autn::from_bytes(&arr(&v["autn"]));
        let star = gba::gba_u::mask_autn_for_gba_u(&autn, &ik);
        assert_eq!(hex::encode(star.to_bytes()), v["autn_star"]);
        assert_eq!(gba::gba_u::unmask_autn_for_gba_u(&star, &ik), autn);
    }
}

fn keysim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("keysim");
    assert!(out.status.success(), "keysim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn keysim_opens_the_mikey_vectors() {
    let doc = load("mbms_mikey.json");
    for v in doc["msk_messages"].as_array().expect("MSK messages") {
        let msg = v["message"].as_str().expect("hex");
        let muk = v["muk"].as_str().expect("MUK");
        let out: Value =
            serde_json::from_str(&keysim(&["mikey", "decode", "--json", msg, "--muk", muk, "--show-keys"]))
                .expect("JSON");
        let ver = &out["verification"];
        assert_eq!(ver["mac"], "valid", "{}", v["name"]);
        assert_eq!(ver["msk"], v["msk"]);
        assert_eq!(ver["msk_id"], v["msk_id"]);
        assert_eq!(ver["key_domain_id"], v["key_domain_id"]);
        assert_eq!(ver["timestamp"], v["timestamp"]);
    }
    for v in doc["mtk_messages"].as_array().expect("MTK messages") {
        let msg = v["message"].as_str().expect("hex");
        let msk = v["msk"].as_str().expect("MSK");
        let out: Value =
            serde_json::from_str(&keysim(&["mikey", "decode", "--json", msg, "--msk", msk, "--show-keys"]))
                .expect("JSON");
        let ver = &out["verification"];
        assert_eq!(ver["mac"], "valid", "{}", v["name"]);
        assert_eq!(ver["mtk"], v["mtk"]);
        assert_eq!(ver["mtk_id"], v["mtk_id"]);
        assert_eq!(ver.get("salt").cloned().unwrap_or(Value::Null), v["salt"]);
        let mki =
            format!("{}{}", ver["msk_id"].as_str().expect("MSK ID"), ver["mtk_id"].as_str().expect("MTK ID"));
        assert_eq!(mki, v["mki"]);
    }
}

#[test]
fn keysim_gives_the_srtp_vectors() {
    use srtp::kdf::{Label, derive_session_key};
    let doc = load("srtp.json");
    for v in doc["session_keys"].as_array().expect("session keys") {
        let (key, salt): ([u8; 16], [u8; 14]) = (arr(&v["master_key"]), arr(&v["master_salt"]));
        for (field, label, len) in [
            ("srtp_encryption", Label::RtpEncryption, 16),
            ("srtp_authentication", Label::RtpAuthentication, 20),
            ("srtp_salt", Label::RtpSalt, 14),
            ("srtcp_encryption", Label::RtcpEncryption, 16),
            ("srtcp_authentication", Label::RtcpAuthentication, 20),
            ("srtcp_salt", Label::RtcpSalt, 14),
        ] {
            let mut out = vec![0u8; len];
            derive_session_key(&key, &salt, label, 0, 0, &mut out);
            assert_eq!(hex::encode(out), v[field], "{field}");
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for v in doc["packets"].as_array().expect("packets") {
        let input = dir.path().join("rtp.hex");
        std::fs::write(&input, format!("{}\n", v["rtp"].as_str().expect("rtp"))).expect("write");
        for (mki, field) in [(Some(&v["mki"]), "srtp"), (None, "srtp_without_mki")] {
            let output = dir.path().join("srtp.hex");
            let (key, salt) =
                (v["master_key"].as_str().expect("key"), v["master_salt"].as_str().expect("salt"));
            let mut args = vec!["srtp", "protect", "--key", key, "--salt", salt];
            if let Some(mki) = mki {
                args.extend(["--mki", mki.as_str().expect("mki")]);
            }
            let (i, o) = (input.to_str().expect("path"), output.to_str().expect("path"));
            args.extend(["--in", i, "--out", o]);
            keysim(&args);
            assert_eq!(std::fs::read_to_string(&output).expect("output").trim(), v[field], "{field}");
        }
    }
}
