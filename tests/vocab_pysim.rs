//! The EF codecs of `uicc-vocab` against osmocom pySim's own (`pySim/ts_31_102.py`,
//! `ts_31_103.py`, `ts_51_011.py`), both ways: pySim decodes what the vocabulary encodes, and the
//! vocabulary decodes what pySim encodes, each compared with the values put in. pySim's EF.MUK
//! (no codec for its Time Stamp Counter) and its TS 31.102 EF.GBANL (a collection without a tag)
//! cannot decode, so EF.GBANL is checked with the TS 31.103 class, which has the same layout; that
//! class decodes but does not encode (its FQDN length refers to a record length it is not given),
//! so EF.GBANL goes one way only.
//!
//! pySim and its venv come as `scripts/pysim-check.sh --prepare` sets them up; without them the
//! test says so and passes, unless `KEYSIM_REQUIRE_ORACLES=1`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use uicc_vocab::ef::{ad, gbabp, gbanl, ims_identity, imsi, msk, service_table};

/// Decodes each `decode` entry with the named pySim class and encodes each `encode` entry; prints
/// the results as JSON.
const PYSIM_SIDE: &str = r#"
import json, sys
from pySim.ts_31_102 import EF_AD, EF_GBABP, EF_MSK, EF_UST
from pySim.ts_31_103 import EF_GBANL, EF_IMPI
from pySim.ts_51_011 import EF_IMSI

def plain(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v

job = json.load(sys.stdin)
d = job["decode"]
out = {"decoded": {
    "imsi": EF_IMSI().decode_hex(d["imsi"]),
    "gbabp": EF_GBABP().decode_hex(d["gbabp"]),
    "msk": EF_MSK().decode_record_hex(d["msk"]),
    "gbanl": EF_GBANL().decode_record_hex(d["gbanl"]),
    "ad": EF_AD().decode_hex(d["ad"]),
    "impi": EF_IMPI().decode_hex(d["impi"]),
    "ust": sorted(n for n, s in EF_UST().decode_hex(d["ust"]).items() if s["activated"]),
}}
e = job["encode"]
out["encoded"] = {
    "imsi": EF_IMSI().encode_hex({"imsi": e["imsi"]}),
    "gbabp": EF_GBABP().encode_hex(e["gbabp"]),
    "msk": EF_MSK().encode_record_hex({"key_domain_id": bytes.fromhex(e["msk"]["key_domain_id"]),
                                        "num_msk_id": len(e["msk"]["pairs"]),
                                        "msk_ids": [{"msk_id": i, "timestamp_counter": t}
                                                    for i, t in e["msk"]["pairs"]]}, 1),
    "ad": EF_AD().encode_hex({"ms_operation_mode": "normal",
                              "additional_info": {"ciphering_indicator": False, "csg_display_control": False,
                                                  "prose_services": False, "extended_drx": False},
                              "rfu": 0, "mnc_len": e["mnc_len"], "extensions": b""}),
    "impi": EF_IMPI().encode_hex({"nai": e["impi"]}),
}
print(json.dumps(plain(out)))
"#;

const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
const B_TID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org";
const LIFETIME: &str = "2030-12-31T23:59:59Z";
const BMSC: &str = "bmsc.example.org";
const UA_MBMS: &str = "0100000001";
const IMPI: &str = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python and the pySim checkout, if both are there.
fn pysim() -> Option<(PathBuf, PathBuf)> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    let python = target.join("pysim-venv/bin/python");
    let dir = match std::env::var_os("PYSIM_DIR") {
        Some(d) => PathBuf::from(d),
        None => [workspace().join("../shared/vendor/pysim"), PathBuf::from("/opt/pysim")]
            .into_iter()
            .find(|d| d.join("pySim").is_dir())?,
    };
    (python.is_file() && dir.join("pySim").is_dir()).then_some((python, dir))
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

#[test]
fn ef_codecs_agree_with_pysim() {
    let Some((python, dir)) = pysim() else {
        assert!(
            std::env::var("KEYSIM_REQUIRE_ORACLES").as_deref() != Ok("1"),
            "pySim or its venv missing: run scripts/pysim-check.sh --prepare"
        );
        eprintln!("SKIPPED: pySim or its venv missing (scripts/pysim-check.sh --prepare sets them up)");
        return;
    };

    // What the vocabulary encodes, from the values above.
    let rand: [u8; 16] = hex::decode(RAND).unwrap().try_into().unwrap();
    let mut gbabp_file = [0u8; 128];
    gbabp::encode_after_bootstrap(&rand, &mut gbabp_file).unwrap();
    let at = gbabp::b_tid_offset(16);
    gbabp::encode_b_tid_lifetime(B_TID.as_bytes(), LIFETIME.as_bytes(), &mut gbabp_file[at..]).unwrap();
    let gbabp_len = at + 2 + B_TID.len() + LIFETIME.len();
    let msk_record = msk::MskRecord::new(
        [0x00, 0xF1, 0x10],
        &[msk::MskPair { msk_id: 0x0001_0002, ts: 5 }, msk::MskPair { msk_id: 0x0001_0003, ts: 9 }],
    )
    .unwrap();
    let naf_id = [BMSC.as_bytes(), &hex::decode(UA_MBMS).unwrap()].concat();
    let mut gbanl_record = [0u8; 100];
    gbanl::encode(&naf_id, B_TID.as_bytes(), &mut gbanl_record).unwrap();
    let mut impi = [0xFFu8; 64];
    ims_identity::encode(IMPI.as_bytes(), &mut impi).unwrap();
    let ust: [u8; 12] = service_table::encode(&[33, 68, 69]);

    let job = json!({
        "decode": {
            "imsi": hx(&imsi::encode("001010123456789").unwrap()),
            "gbabp": hx(&gbabp_file[..gbabp_len]),
            "msk": hx(&msk_record.encode()),
            "gbanl": hx(&gbanl_record),
            "ad": hx(&ad::encode(3)),
            "impi": hx(&impi),
            "ust": hx(&ust),
        },
        "encode": {
            "imsi": "262011106487504",
            "gbabp": {"rand": RAND, "b_tid": hx(B_TID.as_bytes()), "key_lifetime": hx(LIFETIME.as_bytes())},
            "msk": {"key_domain_id": "00f110", "pairs": [[0x0002_0007, 3]]},
            "mnc_len": 3,
            "impi": IMPI,
        },
    });
    let mut child = Command::new(&python)
        .args(["-c", PYSIM_SIDE])
        .env("PYTHONPATH", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pySim's Python");
    child.stdin.take().unwrap().write_all(job.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pySim failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON from pySim");

    // pySim decodes what the vocabulary encoded into the values put in.
    let d = &got["decoded"];
    assert_eq!(d["imsi"]["imsi"], "001010123456789");
    assert_eq!(d["gbabp"]["rand"], RAND);
    assert_eq!(unhex(&d["gbabp"]["b_tid"]), B_TID.as_bytes());
    assert_eq!(unhex(&d["gbabp"]["key_lifetime"]), LIFETIME.as_bytes());
    assert_eq!(d["msk"]["key_domain_id"], "00f110");
    assert_eq!(d["msk"]["num_msk_id"], 2);
    assert_eq!(
        d["msk"]["msk_ids"],
        json!([{"msk_id": 0x0001_0002, "timestamp_counter": 5}, {"msk_id": 0x0001_0003, "timestamp_counter": 9}])
    );
    assert_eq!(d["gbanl"][0]["naf_id"]["fqdn"], BMSC);
    assert_eq!(d["gbanl"][0]["naf_id"]["ua_spi"], UA_MBMS);
    assert_eq!(d["gbanl"][1]["b_tid"], B_TID);
    assert_eq!(d["ad"]["mnc_len"], 3);
    assert_eq!(d["ad"]["ms_operation_mode"], "normal");
    assert_eq!(d["impi"]["nai"], IMPI);
    assert_eq!(d["ust"], json!([33, 68, 69]));

    // The vocabulary decodes what pySim encoded into the values put in.
    let e = &got["encoded"];
    assert_eq!(imsi::decode(&unhex(&e["imsi"])).as_deref(), Some("262011106487504"));
    let gbabp_bytes = unhex(&e["gbabp"]);
    let g = gbabp::parse(&gbabp_bytes).expect("EF.GBABP from pySim");
    assert_eq!((hx(g.rand), g.b_tid, g.lifetime), (RAND.to_owned(), B_TID.as_bytes(), LIFETIME.as_bytes()));
    let m = msk::MskRecord::parse(&unhex(&e["msk"])).expect("EF.MSK from pySim");
    assert_eq!(m.key_domain_id, [0x00, 0xF1, 0x10]);
    assert_eq!(m.pairs.as_slice(), [msk::MskPair { msk_id: 0x0002_0007, ts: 3 }]);
    assert_eq!(ad::mnc_length(&unhex(&e["ad"])), 3);
    assert_eq!(ims_identity::decode(&unhex(&e["impi"])), Some(IMPI.as_bytes()));
}
