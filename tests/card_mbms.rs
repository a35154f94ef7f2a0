//! GBA_U bootstrap, NAF derivation and the MBMS modes of AUTHENTICATE (docs/card-interface.md;
//! TS 31.102 §7.1, TS 33.220 §5.3.2, TS 33.246 §6.3) driven through `Session` on the in-process
//! card, under T=1 and T=0, with the network side of `test_kit::mbms_run` (`test-kit/src/mbms_run.rs`).
//!
//! Besides the scenario's own checks, the APDU trace of a whole run is walked: no byte string of
//! Ks, of a MUK (Ks_int_NAF) or of an MSK, nor any 8-byte window of one, may cross the interface,
//! while RES, Ks_ext_NAF, MTK and salt must (so the walk is not vacuous).

use std::collections::HashSet;

use sim_reader::trace::MemoryTrace;
use sim_reader::{CardProfile, Emulator, Protocol, Traced};
use test_kit::independent;
use test_kit::mbms_run::{self, MbmsRun};

const TEST_PROFILE: &str = include_str!("data/applet-test-profile.toml");

fn emulator(profile: &CardProfile, protocol: Protocol) -> Emulator {
    Emulator::new(profile).expect("emulated card").with_protocol(protocol)
}

/// The scenario with every raw exchange also captured below the session, by the reader trace.
fn traced_run(profile: &CardProfile, protocol: Protocol) -> (MbmsRun, Vec<sim_reader::RawExchange>) {
    let trace = MemoryTrace::new();
    let reader = Traced::new(emulator(profile, protocol)).with_sink(trace.clone());
    let (run, _) = mbms_run::run(reader, profile);
    (run, trace.exchanges())
}

/// The oracles the network side trusts, against published values: TS 35.208 test set 1 (spec
/// digest §8.1) for the `milenage` crate, the GBA_U AUTN* and KDF values of digest §8.2 / §8.3
/// (computed there with Python's hmac/hashlib) for the SHA-1 mask and the written-out KDF.
#[test]
fn independent_oracles_match_published_vectors() {
    let h = |s: &str| hex::decode(s).unwrap();
    let k: [u8; 16] = h("465b5ce8b199b49faa5f0a2ee238a6bc").try_into().unwrap();
    let opc: [u8; 16] = h("cd63cb71954a9f4e48a5994e37a02baf").try_into().unwrap();
    let rand: [u8; 16] = h("23553cbe9637a89d218ae64dae47bf35").try_into().unwrap();
    let v = independent::vector(&k, &opc, &rand, 0xff9b_b4d0_b607, &[0xb9, 0xb9]);
    assert_eq!(hex::encode(v.xres), "a54211d5e3ba50bf");
    assert_eq!(hex::encode(v.ck), "b40ba9a3c58b2a05bbf0d987b21bf8cb");
    assert_eq!(hex::encode(v.ik), "f769bcd751044604127672711c6d3441");
    assert_eq!(hex::encode(v.autn), "55f328b43577b9b94a9ffac354dfafb3");
    assert_eq!(hex::encode(v.autn_star), "55f328b43577b9b98c7f3f0d723fb244");
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&v.ck);
    ks[16..].copy_from_slice(&v.ik);
    let impi = b"user@ims.mnc001.mcc001.3gppnetwork.org";
    let naf_id = mbms_run::bmsc_naf_id();
    assert_eq!(hex::encode(&naf_id), "626d73632e6578616d706c652e6f72670100000001");
    assert_eq!(
        hex::encode(independent::ks_ext_naf(&ks, &rand, impi, &naf_id)),
        "f519b9a4b75b451a1e36b9f2ed46e862a68735f51cd4a231d73841b21cd26334"
    );
    assert_eq!(
        hex::encode(independent::ks_int_naf(&ks, &rand, impi, &naf_id)),
        "528d966e28f446754cddd71f235195aeefed207477908292b44ac2372cb51cb9"
    );
    // Key Domain ID of MCC 001 / MNC 01 (TS 24.008 §10.5.1.13 PLMN coding).
    let sub = mbms_run::Subscriber::from_profile(&CardProfile::default());
    assert_eq!(sub.key_domain_id().0, [0x00, 0xF1, 0x10]);
}

#[test]
fn mbms_run_t1_default_profile() {
    let profile = CardProfile::default();
    let (run, _) = mbms_run::run(emulator(&profile, Protocol::T1), &profile);
    assert_eq!(run.bootstraps.len(), 2);
    assert_eq!(run.msks.len(), 5);
    assert_eq!(run.mtks.len(), 9);
}

#[test]
fn mbms_run_t0_test_profile() {
    let profile = CardProfile::from_toml_str(TEST_PROFILE).expect("test profile");
    let (run, _) = mbms_run::run(emulator(&profile, Protocol::T0), &profile);
    assert_eq!(run.bootstraps.len(), 2);
    assert!(run.steps.iter().any(|s| s.exchange.raw.len() == 2), "T=0 answers need GET RESPONSE");
}

/// One MTK update is one command/response pair under T=1, plus one GET RESPONSE under T=0.
#[test]
fn apdus_per_mtk_update() {
    for (protocol, apdus) in [(Protocol::T1, 1), (Protocol::T0, 2)] {
        let profile = CardProfile::default();
        let (run, _) = mbms_run::run(emulator(&profile, protocol), &profile);
        for g in &run.mtks {
            assert_eq!(g.apdus, apdus, "{protocol}: MTK {:08X}/{}", g.msk_id, g.mtk_id);
        }
        let counted: Vec<usize> =
            run.steps_named("MTK Generation").map(|s| s.exchange.apdu_count()).collect();
        assert_eq!(counted, vec![apdus; run.mtks.len()], "{protocol}");
        if protocol == Protocol::T0 {
            for s in run.steps_named("MTK Generation") {
                let get_response = &s.exchange.raw[1].command;
                assert_eq!(&get_response[..4], &[0x00, 0xC0, 0x00, 0x00], "{}", s.name);
                assert_eq!(s.exchange.raw[0].response[0], 0x61, "{}: 61 xx first", s.name);
            }
        }
    }
}

/// No Ks, MUK or MSK byte string (nor any 8-byte window of one) in any command or response of a
/// whole run, as recorded by the reader trace; RES, Ks_ext_NAF, MTK and salt do appear in responses.
#[test]
fn secrets_never_cross_the_interface() {
    for protocol in [Protocol::T1, Protocol::T0] {
        let profile = CardProfile::default();
        let (run, traced) = traced_run(&profile, protocol);

        // The trace below the session saw exactly the exchanges the session reports.
        let from_session: Vec<_> = run.raw_exchanges().cloned().collect();
        assert_eq!(traced, from_session, "{protocol}: trace and session disagree");
        assert!(traced.len() > 60, "{protocol}: {} exchanges", traced.len());

        let (secrets, outputs) = mbms_run::secrets_and_outputs(&run);
        assert!(secrets.len() >= 9 && outputs.len() >= 14, "{secrets:?} {outputs:?}");
        let mut leaks = Vec::new();
        for (i, ex) in traced.iter().enumerate() {
            for (what, bytes) in [("response", &ex.response), ("command", &ex.command)] {
                for (name, offset) in mbms_run::secret_windows_in(&secrets, bytes) {
                    leaks.push(format!("exchange {i} {what}: 8 bytes of {name} at offset {offset}"));
                }
            }
        }
        assert!(leaks.is_empty(), "{protocol}: secrets on the interface:\n{}", leaks.join("\n"));

        // Every output reaches the ME, in the responses only.
        let responses: Vec<u8> = traced.iter().flat_map(|e| e.response.iter().copied()).collect();
        for (name, value) in &outputs {
            assert!(
                responses.windows(value.len()).any(|w| w == value.as_slice()),
                "{protocol}: {name} never returned"
            );
        }
        // The windows are really looked for: a response made of a secret would be caught.
        let (name, secret) = secrets.iter().next().unwrap();
        assert!(!mbms_run::secret_windows_in(&secrets, secret).is_empty(), "{name}");

        // Distinct values: no 8-byte window is shared between a secret and an output, so the
        // outputs' presence says nothing about the secrets.
        let secret_windows: HashSet<&[u8]> = secrets.values().flat_map(|s| s.windows(8)).collect();
        for (name, value) in &outputs {
            assert!(value.windows(8).all(|w| !secret_windows.contains(w)), "{name} overlaps a secret");
        }
    }
}
