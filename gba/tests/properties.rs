//! Property tests: our Milenage against the independent `milenage` crate, the KDF against a
//! hand-built S fed to the `hmac` crate, base64 against the `base64` crate, codec round trips
//! (parse(build(x)) == x) and "parse never panics" for every input-facing parser.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gba::aka::{AkaFailure, AuthVector, Autn, Auts, Sqn, usim_authenticate};
use gba::btid::{BTid, rand_from_base64, rand_to_base64};
use gba::milenage::{Milenage, opc_from_op};
use gba::naf_id::{NafId, UaSecurityProtocolId};
use gba::sqn::{IND_LEN_BITS, SqnPolicy, SqnReject, UsimSqnArray};
use gba::{Kdf, kdf};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha2::Sha256;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn milenage_equals_oracle(k: [u8; 16], opc: [u8; 16], rand: [u8; 16], sqn: [u8; 6], amf: [u8; 2]) {
        let ours = Milenage::new(&k, &opc);
        let mut oracle = milenage::Milenage::new_with_opc(k, opc);
        prop_assert_eq!(ours.f1(&rand, &sqn, &amf), oracle.f1(&rand, &sqn, &amf));
        prop_assert_eq!(ours.f1_star(&rand, &sqn, &amf), oracle.f1star(&rand, &sqn, &amf));
        let (res, ck, ik, ak) = oracle.f2345(&rand);
        let all = ours.f2345(&rand);
        prop_assert_eq!(all.res, res);
        prop_assert_eq!(all.ck.expose(), &ck);
        prop_assert_eq!(all.ik.expose(), &ik);
        prop_assert_eq!(all.ak, ak);
        prop_assert_eq!(ours.f2(&rand), res);
        prop_assert_eq!(ours.f5(&rand), ak);
        prop_assert_eq!(ours.f5_star(&rand), oracle.f5star(&rand));
    }

    #[test]
    fn opc_equals_oracle(k: [u8; 16], op: [u8; 16]) {
        let oracle = milenage::Milenage::new_with_op(k, op);
        prop_assert_eq!(&opc_from_op(&k, &op), oracle.opc());
    }

    /// AUTS built by the USIM side checked against the oracle's f5* and f1* (dummy AMF 0000),
    /// then opened by the HE side.
    #[test]
    fn auts_round_trip_with_oracle(k: [u8; 16], opc: [u8; 16], rand: [u8; 16], sqn in 0u64..(1 << 48)) {
        let m = Milenage::new(&k, &opc);
        let mut oracle = milenage::Milenage::new_with_opc(k, opc);
        let sqn = Sqn::new(sqn).unwrap();
        let auts = Auts::build(&m, &rand, sqn);
        let ak_star = oracle.f5star(&rand);
        let sqn_bytes = sqn.to_bytes();
        let conc: Vec<u8> = sqn_bytes.iter().zip(ak_star).map(|(a, b)| a ^ b).collect();
        prop_assert_eq!(&auts.sqn_ms_xor_ak_star[..], &conc[..]);
        prop_assert_eq!(auts.mac_s, oracle.f1star(&rand, &sqn_bytes, &[0, 0]));
        prop_assert_eq!(auts.verify(&m, &rand), Some(sqn));
        prop_assert_eq!(Auts::parse(&auts.to_bytes()), Ok(auts));
    }

    #[test]
    fn autn_auts_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(a) = Autn::parse(&bytes) {
            prop_assert_eq!(&a.to_bytes()[..], &bytes[..]);
        }
        if let Ok(a) = Auts::parse(&bytes) {
            prop_assert_eq!(&a.to_bytes()[..], &bytes[..]);
        }
    }

    /// The KDF against the `hmac` crate keyed directly, over an S string built here byte by byte.
    #[test]
    fn kdf_equals_hand_built_s(
        key: [u8; 32],
        fc: u8,
        params in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5),
    ) {
        let mut s = vec![fc];
        for p in &params {
            s.extend_from_slice(p);
            s.extend_from_slice(&(p.len() as u16).to_be_bytes());
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(&s);
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        let refs: Vec<&[u8]> = params.iter().map(|p| p.as_slice()).collect();
        prop_assert_eq!(kdf(&key, fc, &refs).unwrap(), expected);
        let mut inc = Kdf::new(&key, fc);
        for p in &params {
            inc = inc.param(p).unwrap();
        }
        prop_assert_eq!(inc.finish(), expected);
    }

    #[test]
    fn base64_equals_oracle(rand: [u8; 16]) {
        let ours = rand_to_base64(&rand);
        prop_assert_eq!(std::str::from_utf8(&ours).unwrap(), STANDARD.encode(rand));
        prop_assert_eq!(rand_from_base64(&ours), Some(rand));
    }

    /// Our strict decoder accepts exactly the canonical encodings of 16 octets.
    #[test]
    fn base64_decode_never_panics(text in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Some(rand) = rand_from_base64(&text) {
            let canonical = STANDARD.encode(rand);
            prop_assert_eq!(canonical.as_bytes(), &text[..]);
        }
    }

    #[test]
    fn base64_decode_alphabet_strings(text in "[A-Za-z0-9+/]{22}==") {
        let ours = rand_from_base64(text.as_bytes());
        let oracle = STANDARD.decode(&text).ok();
        match ours {
            Some(r) => prop_assert_eq!(Some(r.to_vec()), oracle),
            // Rejected only for non-zero trailing bits, which the oracle also rejects.
            None => prop_assert!(oracle.is_none()),
        }
    }

    #[test]
    fn btid_round_trip(rand: [u8; 16], domain in "[a-z0-9.-]{1,230}") {
        let b = BTid::new(&rand, &domain).unwrap();
        prop_assert_eq!(b.as_str(), format!("{}@{}", STANDARD.encode(rand), domain));
        prop_assert_eq!(b.rand(), rand);
        prop_assert_eq!(BTid::parse(b.as_bytes()), Ok(b));
    }

    #[test]
    fn btid_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(b) = BTid::parse(&bytes) {
            prop_assert_eq!(b.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn naf_id_round_trip(fqdn in "[a-z0-9.-]{1,250}", ua: [u8; 5]) {
        let n = NafId::new(&fqdn, UaSecurityProtocolId(ua)).unwrap();
        prop_assert_eq!(n.fqdn(), fqdn.as_str());
        prop_assert_eq!(n.ua_security_protocol_id().0, ua);
        prop_assert_eq!(NafId::from_bytes(n.as_bytes()), Ok(n));
    }

    #[test]
    fn naf_id_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(n) = NafId::from_bytes(&bytes) {
            prop_assert_eq!(n.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn sqn_state_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 190..194)) {
        if let Ok(a) = UsimSqnArray::read_bytes(&bytes) {
            prop_assert_eq!(&a.to_bytes()[..], &bytes[..]);
        }
    }

    /// Any sequence of SQNs: an accepted SQN is never accepted again, a rejection never changes
    /// the state, SQN_MS never decreases, and every accepted SQN satisfied the Annex C.2 rules.
    #[test]
    fn sqn_array_invariants(steps in proptest::collection::vec((0u64..64, 0u64..32), 1..200)) {
        let policy = SqnPolicy { delta: 16, age_limit: Some(24) };
        let mut a = UsimSqnArray::new();
        let mut accepted = std::collections::HashSet::new();
        for (seq, ind) in steps {
            let sqn = Sqn::from_seq_ind(seq, ind, IND_LEN_BITS).unwrap();
            let before = a.clone();
            let highest = a.highest_seq();
            let entry = a.seq_ms()[ind as usize];
            match a.check_and_accept(sqn, &policy) {
                Ok(()) => {
                    prop_assert!(accepted.insert(sqn), "SQN accepted twice");
                    prop_assert!(seq > entry && seq.saturating_sub(highest) <= 16 && highest.saturating_sub(seq) < 24);
                    prop_assert!(a.sqn_ms() >= before.sqn_ms());
                }
                Err(reason) => {
                    prop_assert_eq!(&a, &before);
                    let expected = if seq > highest && seq - highest > 16 {
                        SqnReject::TooFarAhead
                    } else if highest > seq && highest - seq >= 24 {
                        SqnReject::TooOld
                    } else {
                        SqnReject::NotFresh
                    };
                    prop_assert_eq!(reason, expected);
                }
            }
        }
    }

    /// HE and USIM end to end: consecutive vectors (SEQ + 1, IND rotating) are all accepted,
    /// and replaying any earlier one gives a synchronisation failure whose AUTS the HE opens.
    #[test]
    fn he_and_usim_stay_in_sync(k: [u8; 16], opc: [u8; 16], rands in proptest::collection::vec(any::<[u8; 16]>(), 1..12)) {
        let m = Milenage::new(&k, &opc);
        let mut card = UsimSqnArray::new();
        let mut vectors = Vec::new();
        for (i, rand) in rands.iter().enumerate() {
            let sqn = Sqn::from_seq_ind(i as u64 + 1, (i % 32) as u64, IND_LEN_BITS).unwrap();
            let av = AuthVector::generate(&m, rand, sqn, &[0x80, 0x00]);
            let ok = usim_authenticate(&m, rand, &av.autn, &mut card, &SqnPolicy::DEFAULT).unwrap();
            prop_assert!(av.verify_res(&ok.res));
            prop_assert_eq!(ok.ck.expose(), av.ck.expose());
            vectors.push(av);
        }
        for av in &vectors {
            match usim_authenticate(&m, &av.rand, &av.autn, &mut card, &SqnPolicy::DEFAULT) {
                Err(AkaFailure::SyncFailure { auts, .. }) => {
                    prop_assert_eq!(auts.verify(&m, &av.rand), Some(card.sqn_ms()));
                }
                other => prop_assert!(false, "replay not rejected: {:?}", other),
            }
        }
    }
}
