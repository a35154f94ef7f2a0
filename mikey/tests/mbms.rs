//! The MBMS profile end to end: build on the BM-SC side, parse and verify on the UICC/ME side,
//! refusals, tamper detection (every byte of every protected message).

mod common;

use common::*;
use mikey::kemac::KemacProtection;
use mikey::mbms::{
    KeyValidityData, Msk, MskId, MskUpdate, Mtk, MtkId, MtkSalt, Muk, build_msk_message, build_mtk_message,
    build_solicited_pull, build_verification_message, is_fresh, parse_msk_message, parse_mtk_message,
    profile, verify_and_decrypt_msk, verify_and_decrypt_mtk, verify_verification_message,
};
use mikey::{
    CsIdMap, DataType, EncrAlg, Error, GeneralExtension, Hdr, Id, KeyData, KeyId, KeyIdType, KeyIds, KeyType,
    KeyValidity, MacAlg, MessageBuilder, Payload, ProfileViolation, ProtType, Rand, SecurityPolicy, SpParams,
    Timestamp, TransportKeys,
};

fn msk_message(v_bit: bool) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n =
        build_msk_message(&Muk::new(MUK), &msk_params(v_bit, 41), &Msk::new(MSK), &mut buf).expect("build");
    buf[..n].to_vec()
}

fn mtk_message(streaming: bool, with_salt: bool, rand: bool) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut p = mtk_params(9, streaming);
    if rand {
        p.rand = Some(&RAND);
    }
    let salt = MtkSalt::new(SALT);
    let salt = if with_salt { Some(&salt) } else { None };
    let n = build_mtk_message(&Msk::new(MSK), &p, &Mtk::new(MTK), salt, &mut buf).expect("build");
    buf[..n].to_vec()
}

#[test]
fn msk_delivery_round_trip() {
    let bytes = msk_message(true);
    let msg = parse_msk_message(&bytes).expect("parse");
    assert_eq!(msg.idi(), Id { id_type: profile::IDI_TYPE, data: BMSC_FQDN });
    assert_eq!(msg.idr().data, B_TID);
    assert_eq!(msg.key_domain_id(), KEY_DOMAIN);
    assert_eq!(msg.msk_id(), MSK_ID);
    assert_eq!(msg.timestamp(), Timestamp::Counter(41));
    assert!(msg.v_bit());
    assert!(!msg.is_solicited_pull());
    let MskUpdate::Msk(d) = verify_and_decrypt_msk(&Muk::new(MUK), &msg).expect("verify") else {
        panic!("expected an MSK");
    };
    assert_eq!(d.msk.as_bytes(), &MSK);
    assert_eq!(d.msk_id, MSK_ID);
    assert_eq!(d.key_domain_id, KEY_DOMAIN);
    assert_eq!(d.csb_id, MSK_CSB);
    assert!(d.v_bit);
    assert_eq!(d.timestamp.as_u64(), 41);
    assert_eq!(
        d.validity,
        KeyValidityData::Interval {
            from: heapless::Vec::from_slice(&[0, 1]).expect("kv"),
            to: heapless::Vec::from_slice(&[0xff, 0xff]).expect("kv"),
        }
    );
}

#[test]
fn verification_message_round_trip() {
    let bytes = msk_message(true);
    let msg = parse_msk_message(&bytes).expect("parse");
    let mut out = [0u8; 256];
    let n = build_verification_message(&Muk::new(MUK), &msg, &mut out).expect("build ver");
    verify_verification_message(&Muk::new(MUK), &msg, &out[..n]).expect("verify ver");
    // Another MUK, or a verification message for another MSK message, does not verify.
    let mut other_muk = MUK;
    other_muk[0] ^= 1;
    assert_eq!(verify_verification_message(&Muk::new(other_muk), &msg, &out[..n]), Err(Error::MacMismatch));
    let mut buf = [0u8; 512];
    let n2 =
        build_msk_message(&Muk::new(MUK), &msk_params(true, 42), &Msk::new(MSK), &mut buf).expect("build");
    let msg2 = parse_msk_message(&buf[..n2]).expect("parse");
    assert!(verify_verification_message(&Muk::new(MUK), &msg2, &out[..n]).is_err());
    // Every byte of the verification message is protected.
    for i in 0..n {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut t = out[..n].to_vec();
            t[i] ^= mask;
            assert!(
                verify_verification_message(&Muk::new(MUK), &msg, &t).is_err(),
                "byte {i} mask {mask:#x}"
            );
        }
    }
}

#[test]
fn solicited_pull_round_trip() {
    let mut buf = [0u8; 512];
    let n = build_solicited_pull(&Muk::new(MUK), &pull_params(43), &mut buf).expect("build");
    let msg = parse_msk_message(&buf[..n]).expect("parse");
    assert!(msg.is_solicited_pull());
    assert_eq!(msg.msk_id(), MskId::solicited_pull(MSK_ID.key_group()));
    match verify_and_decrypt_msk(&Muk::new(MUK), &msg).expect("verify") {
        MskUpdate::SolicitedPull(p) => {
            assert_eq!(p.key_group, MSK_ID.key_group());
            assert_eq!(p.key_domain_id, KEY_DOMAIN);
            assert_eq!(p.timestamp, Timestamp::Counter(43));
        }
        MskUpdate::Msk(_) => panic!("expected a solicited pull"),
    }
    let kemac = msg.message().kemac().expect("kemac");
    assert!(kemac.encr_data.is_empty());
    assert_eq!(kemac.mac.len(), 20);
}

#[test]
fn mtk_delivery_round_trip() {
    for (streaming, salt, rand) in [
        (false, true, false),
        (true, true, false),
        (false, false, false),
        (false, true, true),
        (true, false, true),
    ] {
        let bytes = mtk_message(streaming, salt, rand);
        let msg = parse_mtk_message(&bytes).expect("parse");
        assert_eq!(msg.key_domain_id(), KEY_DOMAIN);
        assert_eq!(msg.msk_id(), MSK_ID);
        assert_eq!(msg.mtk_id(), MTK_ID);
        assert_eq!(msg.rand().len(), if rand { 16 } else { 0 });
        assert_eq!(msg.policy().is_some(), streaming);
        let d = verify_and_decrypt_mtk(&Msk::new(MSK), &msg).expect("verify");
        assert_eq!(d.mtk.as_bytes(), &MTK);
        assert_eq!(d.salt.as_ref().map(|s| *s.as_bytes()), salt.then_some(SALT));
        assert_eq!(d.key_type, profile::MTK_KEY_TYPE);
        assert_eq!(d.mtk_id, MTK_ID);
        assert_eq!(d.timestamp, Timestamp::Counter(9));
        let mut out = [0u8; 64];
        let n = d.write_mtk_and_salt(&mut out).expect("write");
        let mut want = MTK.to_vec();
        if salt {
            want.extend_from_slice(&SALT);
        }
        assert_eq!(&out[..n], &want[..]);
        assert_eq!(d.write_mtk_and_salt(&mut [0u8; 16]).is_ok(), !salt);
    }
}

#[test]
fn wrong_keys_fail_with_mac_error() {
    let bytes = msk_message(false);
    let msg = parse_msk_message(&bytes).expect("parse");
    let mut muk = MUK;
    muk[31] ^= 0x40;
    assert_eq!(verify_and_decrypt_msk(&Muk::new(muk), &msg).err(), Some(Error::MacMismatch));
    let bytes = mtk_message(false, true, false);
    let msg = parse_mtk_message(&bytes).expect("parse");
    let mut msk = MSK;
    msk[0] ^= 1;
    assert_eq!(verify_and_decrypt_mtk(&Msk::new(msk), &msg).err(), Some(Error::MacMismatch));
}

/// Flip every byte of every protected message with several masks: the receiver must refuse it
/// (never panic, never accept); when the framing and profile still parse, the refusal is a MAC error.
#[test]
fn tampering_any_byte_is_detected() {
    let mut buf = [0u8; 512];
    let n = build_solicited_pull(&Muk::new(MUK), &pull_params(44), &mut buf).expect("pull");
    let msk_like = [msk_message(true), msk_message(false), buf[..n].to_vec()];
    for m in &msk_like {
        let mut mac_errors = 0;
        for i in 0..m.len() {
            for mask in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                let mut t = m.clone();
                t[i] ^= mask;
                if let Ok(msg) = parse_msk_message(&t) {
                    let r = verify_and_decrypt_msk(&Muk::new(MUK), &msg);
                    assert_eq!(r.err(), Some(Error::MacMismatch), "byte {i} mask {mask:#x}");
                    mac_errors += 1;
                }
            }
        }
        assert!(mac_errors > m.len(), "most flips keep the framing and must hit the MAC check");
    }
    for m in [mtk_message(false, true, false), mtk_message(true, true, true)] {
        for i in 0..m.len() {
            for mask in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                let mut t = m.clone();
                t[i] ^= mask;
                if let Ok(msg) = parse_mtk_message(&t) {
                    let r = verify_and_decrypt_mtk(&Msk::new(MSK), &msg);
                    assert_eq!(r.err(), Some(Error::MacMismatch), "byte {i} mask {mask:#x}");
                }
            }
        }
    }
}

#[test]
fn truncation_and_small_buffers_are_errors() {
    let bytes = msk_message(true);
    for n in 0..bytes.len() {
        assert!(parse_msk_message(&bytes[..n]).is_err(), "prefix {n}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(parse_msk_message(&longer).err(), Some(Error::TrailingBytes));
    for size in 0..bytes.len() {
        let mut buf = vec![0u8; size];
        let r = build_msk_message(&Muk::new(MUK), &msk_params(true, 41), &Msk::new(MSK), &mut buf);
        assert_eq!(r, Err(Error::BufferTooSmall), "size {size}");
    }
    let mut buf = vec![0u8; bytes.len()];
    assert_eq!(
        build_msk_message(&Muk::new(MUK), &msk_params(true, 41), &Msk::new(MSK), &mut buf),
        Ok(bytes.len())
    );
    let msg = parse_msk_message(&bytes).expect("parse");
    let mut ver = [0u8; 256];
    let vn = build_verification_message(&Muk::new(MUK), &msg, &mut ver).expect("ver");
    for size in 0..vn {
        let mut small = vec![0u8; size];
        assert_eq!(build_verification_message(&Muk::new(MUK), &msg, &mut small), Err(Error::BufferTooSmall));
    }
}

#[test]
fn builders_refuse_profile_violations() {
    let mut buf = [0u8; 512];
    let muk = Muk::new(MUK);
    let msk = Msk::new(MSK);
    // SP next to the empty map (RFC 4563 §5).
    let mut p = msk_params(false, 1);
    p.policy = Some(SecurityPolicy { policy_no: 0, prot_type: ProtType::SRTP, params: SpParams::empty() });
    assert_eq!(
        build_msk_message(&muk, &p, &msk, &mut buf),
        Err(Error::ProfileViolation(ProfileViolation::PolicyWithEmptyMap))
    );
    let mut m = mtk_params(1, true);
    m.cs_id_map = CsIdMap::Empty { cs_count: 0 };
    assert_eq!(
        build_mtk_message(&msk, &m, &Mtk::new(MTK), None, &mut buf),
        Err(Error::ProfileViolation(ProfileViolation::PolicyWithEmptyMap))
    );
    // Short RAND.
    let mut p = msk_params(false, 1);
    p.rand = &RAND[..15];
    assert_eq!(
        build_msk_message(&muk, &p, &msk, &mut buf),
        Err(Error::ProfileViolation(ProfileViolation::RandTooShort))
    );
    // An MSK under the solicited-pull MSK ID.
    let mut p = msk_params(false, 1);
    p.msk_id = MskId::solicited_pull(7);
    assert_eq!(
        build_msk_message(&muk, &p, &msk, &mut buf),
        Err(Error::ProfileViolation(ProfileViolation::SolicitedPullMismatch))
    );
    // MTK ID too large for its wire length.
    let mut m = mtk_params(1, false);
    m.mtk_id = MtkId(MtkId::MAX.wrapping_add(1));
    if MtkId::MAX < u32::MAX {
        assert_eq!(build_mtk_message(&msk, &m, &Mtk::new(MTK), None, &mut buf), Err(Error::FieldTooLong));
    }
}

/// Hand-assembles MSK-message-like bytes with the generic builder, to feed the receiver messages
/// the profile builders would never produce.
fn custom_msk(
    encr: EncrAlg,
    mac: MacAlg,
    msk_id: u32,
    key: Option<KeyData<'_>>,
    policy: Option<SecurityPolicy<'_>>,
) -> Vec<u8> {
    let keys = TransportKeys::derive(profile::PRF, &MUK, MSK_CSB, &RAND).expect("keys");
    let hdr = Hdr {
        data_type: DataType::PSK_INIT,
        v: false,
        prf: profile::PRF,
        csb_id: MSK_CSB,
        cs_id_map: CsIdMap::Empty { cs_count: 0 },
    };
    let kd = KEY_DOMAIN.0;
    let id = msk_id.to_be_bytes();
    let ids = [
        KeyId { key_id_type: KeyIdType::MBMS_KEY_DOMAIN_ID, value: &kd },
        KeyId { key_id_type: KeyIdType::MBMS_MSK_ID, value: &id },
    ];
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(&mut buf, &hdr).expect("hdr");
    b.push(&Payload::GeneralExtension(GeneralExtension::KeyIdInfo(KeyIds::from_items(&ids))))
        .expect("ext")
        .push(&Payload::Timestamp(Timestamp::Counter(5)))
        .expect("t")
        .push(&Payload::Rand(Rand { rand: &RAND }))
        .expect("rand")
        .push(&Payload::Id(Id { id_type: profile::IDI_TYPE, data: BMSC_FQDN }))
        .expect("idi")
        .push(&Payload::Id(Id { id_type: profile::IDR_TYPE, data: B_TID }))
        .expect("idr");
    if let Some(sp) = policy {
        b.push(&Payload::SecurityPolicy(sp)).expect("sp");
    }
    let prot = KemacProtection { encr_alg: encr, mac_alg: mac, keys: &keys, csb_id: MSK_CSB, timestamp: 5 };
    let kds: Vec<KeyData<'_>> = key.into_iter().collect();
    b.push_kemac(&prot, &kds).expect("kemac");
    let n = b.finish();
    buf[..n].to_vec()
}

#[test]
fn receivers_refuse_profile_violations() {
    let msk_key = KeyData { key_type: KeyType::Tgk, key: &MSK, salt: None, kv: KeyValidity::Null };
    // The generic builder makes a valid message the profile accepts.
    let ok = custom_msk(EncrAlg::AesCm128, MacAlg::HmacSha1_160, MSK_ID.0, Some(msk_key), None);
    let msg = parse_msk_message(&ok).expect("parse");
    assert!(matches!(verify_and_decrypt_msk(&Muk::new(MUK), &msg), Ok(MskUpdate::Msk(_))));

    let violation = |bytes: &[u8]| parse_msk_message(bytes).err();
    assert_eq!(
        violation(&custom_msk(EncrAlg::Null, MacAlg::HmacSha1_160, MSK_ID.0, Some(msk_key), None)),
        Some(Error::ProfileViolation(ProfileViolation::NullProtection))
    );
    assert_eq!(
        violation(&custom_msk(EncrAlg::AesCm128, MacAlg::Null, MSK_ID.0, Some(msk_key), None)),
        Some(Error::ProfileViolation(ProfileViolation::NullProtection))
    );
    let sp = SecurityPolicy { policy_no: 0, prot_type: ProtType::SRTP, params: SpParams::empty() };
    assert_eq!(
        violation(&custom_msk(EncrAlg::AesCm128, MacAlg::HmacSha1_160, MSK_ID.0, Some(msk_key), Some(sp))),
        Some(Error::ProfileViolation(ProfileViolation::PolicyWithEmptyMap))
    );
    // Solicited-pull MSK ID with a key, and a normal MSK ID without one.
    let pull_id = MskId::solicited_pull(1).0;
    assert_eq!(
        violation(&custom_msk(EncrAlg::AesCm128, MacAlg::HmacSha1_160, pull_id, Some(msk_key), None)),
        Some(Error::ProfileViolation(ProfileViolation::SolicitedPullMismatch))
    );
    assert_eq!(
        violation(&custom_msk(EncrAlg::AesCm128, MacAlg::HmacSha1_160, MSK_ID.0, None, None)),
        Some(Error::ProfileViolation(ProfileViolation::SolicitedPullMismatch))
    );
    // A TEK, a salted key, or a key of the wrong length where the MSK should be: MAC is fine,
    // the key data is refused.
    for bad in [
        KeyData { key_type: KeyType::Tek, ..msk_key },
        KeyData { salt: Some(&SALT), ..msk_key },
        KeyData { key: &MSK[..15], ..msk_key },
    ] {
        let m = custom_msk(EncrAlg::AesCm128, MacAlg::HmacSha1_160, MSK_ID.0, Some(bad), None);
        let msg = parse_msk_message(&m).expect("parse");
        assert!(verify_and_decrypt_msk(&Muk::new(MUK), &msg).is_err());
    }
    // An MTK message is not an MSK message and vice versa.
    assert!(parse_msk_message(&mtk_message(false, true, false)).is_err());
    assert!(parse_mtk_message(&ok).is_err());
}

#[test]
fn ids_and_helpers() {
    assert_eq!(MskId(0xABCD_1234).key_group(), 0xABCD);
    assert!(MskId::solicited_pull(0xABCD).is_solicited_pull());
    assert!(!MskId(0xABCD_0001).is_solicited_pull());
    assert!(is_fresh(5, 4));
    assert!(!is_fresh(4, 4));
    assert!(!is_fresh(3, 4));
    let dbg = format!("{:?} {:?} {:?} {:?}", Muk::new(MUK), Msk::new(MSK), Mtk::new(MTK), MtkSalt::new(SALT));
    assert_eq!(dbg, "Muk(..) Msk(..) Mtk(..) MtkSalt(..)");
    let keys = TransportKeys::derive(profile::PRF, &MUK, 1, &RAND).expect("keys");
    assert_eq!(format!("{keys:?}"), "TransportKeys { .. }");
    assert_eq!(Msk::from_slice(&MSK[..15]).err(), Some(Error::BadLength));
}

/// The constructors fill in what the profile fixes: the CSB ID is the MSK ID's Key Group (the
/// upper 16 bits), no V bit unless asked, the empty CS ID map, no policy, a null key validity.
#[test]
fn constructors_fill_in_the_profile() {
    use mikey::mbms::{MskMessageParams, MtkMessageParams, SolicitedPullParams};
    let msk_id = MskId(0x0102_0007);
    let mut buf = [0u8; 512];
    let p = MskMessageParams::new(BMSC_FQDN, B_TID, KEY_DOMAIN, msk_id, Timestamp::Counter(3), &RAND);
    let n = build_msk_message(&Muk::new(MUK), &p, &Msk::new(MSK), &mut buf).expect("MSK message");
    let m = parse_msk_message(&buf[..n]).expect("parses");
    assert_eq!((m.csb_id(), m.v_bit(), m.msk_id(), m.key_domain_id()), (0x0102, false, msk_id, KEY_DOMAIN));
    assert_eq!(m.message().hdr().cs_id_map, CsIdMap::Empty { cs_count: profile::EMPTY_MAP_CS_COUNT });
    let MskUpdate::Msk(d) = verify_and_decrypt_msk(&Muk::new(MUK), &m).expect("verifies") else {
        panic!("an MSK, not a pull")
    };
    assert!(matches!(d.validity, KeyValidityData::Null));
    let p = p.with_v_bit(true);
    let n = build_msk_message(&Muk::new(MUK), &p, &Msk::new(MSK), &mut buf).expect("MSK message");
    assert!(parse_msk_message(&buf[..n]).expect("parses").v_bit());

    let p = SolicitedPullParams::new(BMSC_FQDN, B_TID, KEY_DOMAIN, 0x0102, Timestamp::Counter(4), &RAND);
    let n = build_solicited_pull(&Muk::new(MUK), &p, &mut buf).expect("pull");
    let m = parse_msk_message(&buf[..n]).expect("parses");
    assert!(m.is_solicited_pull());
    assert_eq!((m.csb_id(), m.msk_id().key_group()), (0x0102, 0x0102));

    let p = MtkMessageParams::new(KEY_DOMAIN, msk_id, MtkId(9), Timestamp::Counter(9));
    let n =
        build_mtk_message(&Msk::new(MSK), &p, &Mtk::new([0x77; 16]), None, &mut buf).expect("MTK message");
    let m = parse_mtk_message(&buf[..n]).expect("parses");
    assert_eq!((m.csb_id(), m.msk_id(), m.mtk_id()), (0x0102, msk_id, MtkId(9)));
    assert!(m.policy().is_none());
}
