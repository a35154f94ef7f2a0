//! ME-based key management (TS 33.246 §6.1, §6.3) against the BM-SC stream generator: keys as the
//! BM-SC holds them, replay and MAC refusals, the Key Group limit, MTK ID freshness, the expired
//! MUK rule of the solicited pull. A refused message leaves the store byte for byte unchanged.

mod support;

use me::{Error, KeyStore, MbmsKeyManagement, MeBased, MskOutcome};
use mikey::mbms::{MtkId, Muk};
use network::bmsc_stream::{BmscStream, BmscStreamConfig, MskTimestamps};
use proptest::prelude::*;
use support::{BMSC, BSF};

const ICCID: &str = "89882110000000000010";
/// 2030-01-01T00:00:00Z is Unix 1893456000.
const LIFETIME_2030: &str = "2030-01-01T00:00:00Z";
const BEFORE_2030: u64 = 1_893_456_000 - 3600;
const AFTER_2030: u64 = 1_893_456_000 + 1;

fn btid(n: u8) -> String {
    gba::BTid::new(&support::rand(n), BSF).unwrap().as_str().to_owned()
}

struct Setup {
    _dir: tempfile::TempDir,
    km: MeBased,
    bmsc: BmscStream,
}

fn setup(timestamps: MskTimestamps, lifetime: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("keys.bin")).unwrap();
    store.on_card_inserted(ICCID).unwrap();
    let mut km = MeBased::new(store);
    km.install_muk(BMSC.as_bytes(), btid(1).as_bytes(), Muk::new([0x5A; 32]), lifetime).unwrap();
    let mut cfg = BmscStreamConfig::new(BMSC, [1; 32]);
    cfg.msk_timestamps = timestamps;
    let mut bmsc = BmscStream::new(cfg).unwrap();
    bmsc.set_time(BEFORE_2030);
    bmsc.add_recipient(Muk::new([0x5A; 32]), &btid(1));
    Setup { _dir: dir, km, bmsc }
}

/// Runs `f`, which must be refused with `expected`, and checks that nothing changed.
fn refused(km: &mut MeBased, expected: fn(&Error) -> bool, f: impl FnOnce(&mut MeBased) -> me::Result<()>) {
    let before = km.store().encode().to_vec();
    let on_disk = std::fs::read(km.store().path()).unwrap();
    let r = f(km);
    assert!(r.as_ref().is_err_and(expected), "{r:?}");
    assert_eq!(km.store().encode().as_slice(), before.as_slice());
    assert_eq!(std::fs::read(km.store().path()).unwrap(), on_disk);
}

#[test]
fn msk_then_mtk_give_the_bm_sc_keys() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    let msk_id = s.bmsc.rotate_msk();
    let out = s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    assert_eq!(
        out,
        MskOutcome::Msk { key_domain_id: s.bmsc.config().key_domain_id, msk_id, verification: None }
    );
    let stored = &s.km.store().msks()[0];
    assert_eq!(stored.msk.as_bytes(), s.bmsc.msk(msk_id).unwrap().as_bytes());
    let mtk = s.km.mtk_generate(&s.bmsc.next_mtk_message().unwrap()).unwrap();
    let (bm_msk, bm_id, bm_mtk, bm_salt) = s.bmsc.current_mtk().unwrap();
    assert_eq!((mtk.msk_id, mtk.mtk_id), (bm_msk, bm_id));
    assert_eq!(mtk.mtk.as_bytes(), bm_mtk.as_bytes());
    assert_eq!(mtk.salt.as_ref().unwrap().as_bytes(), bm_salt.as_bytes());
    assert_eq!(mtk.mki(), network::bmsc_stream::mki(bm_msk, bm_id).to_vec());
}

#[test]
fn replays_and_forgeries_are_refused_without_change() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    s.bmsc.rotate_msk();
    let msk = s.bmsc.msk_message(0).unwrap();
    s.km.msk_update(&msk).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::KeyFreshness), |k| k.msk_update(&msk).map(drop));
    let mtk1 = s.bmsc.next_mtk_message().unwrap();
    let mtk2 = s.bmsc.next_mtk_message().unwrap();
    s.km.mtk_generate(&mtk2).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::KeyFreshness), |k| k.mtk_generate(&mtk2).map(drop));
    // An older MTK ID after a newer one.
    refused(&mut s.km, |e| matches!(e, Error::KeyFreshness), |k| k.mtk_generate(&mtk1).map(drop));
    // A flipped MAC byte, a flipped byte inside the encrypted key data.
    let next = s.bmsc.msk_message(0).unwrap();
    for at in [next.len() - 1, next.len() - 25] {
        let mut bad = next.clone();
        bad[at] ^= 0x80;
        refused(&mut s.km, |e| matches!(e, Error::MacFailure), |k| k.msk_update(&bad).map(drop));
    }
    let mtk3 = s.bmsc.next_mtk_message().unwrap();
    let mut bad = mtk3.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    refused(&mut s.km, |e| matches!(e, Error::MacFailure), |k| k.mtk_generate(&bad).map(drop));
    // Truncated: malformed.
    refused(
        &mut s.km,
        |e| matches!(e, Error::MalformedMikey { reason: Some(_) }),
        |k| k.mtk_generate(&mtk3[..mtk3.len() - 3]).map(drop),
    );
    // The genuine ones still go through afterwards.
    s.km.msk_update(&next).unwrap();
    s.km.mtk_generate(&mtk3).unwrap();
}

#[test]
fn unknown_keys_are_refused() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    let stranger = s.bmsc.add_recipient(Muk::new([0x5A; 32]), &btid(9));
    s.bmsc.rotate_msk();
    let m = s.bmsc.msk_message(stranger).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::NoMuk), |k| k.msk_update(&m).map(drop));
    // An MTK under an MSK the ME never received.
    let t = s.bmsc.next_mtk_message().unwrap();
    refused(&mut s.km, |e| matches!(e, Error::KeyNotFound), |k| k.mtk_generate(&t).map(drop));
    let kd = s.bmsc.config().key_domain_id;
    refused(&mut s.km, |e| matches!(e, Error::KeyNotFound), |k| k.delete_msk(kd, 1));
    refused(&mut s.km, |e| matches!(e, Error::KeyNotFound), |k| k.delete_muk(BMSC.as_bytes(), b"nobody"));
}

/// TS 33.246 §6.3.2.1: a third MSK of a Key Domain and Key Group deletes the older of the two.
#[test]
fn at_most_two_msks_per_key_group() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    let first = s.bmsc.rotate_msk();
    s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    let first_mtk = s.bmsc.next_mtk_message().unwrap();
    let second = s.bmsc.rotate_msk();
    s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    let third = s.bmsc.rotate_msk();
    s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    let ids: Vec<_> = s.km.store().msks().iter().map(|m| m.msk_id).collect();
    assert_eq!(ids, [second, third]);
    assert!(!ids.contains(&first));
    refused(&mut s.km, |e| matches!(e, Error::KeyNotFound), |k| k.mtk_generate(&first_mtk).map(drop));
    // MSK deletion removes the whole Key Group.
    s.km.delete_msk(s.bmsc.config().key_domain_id, s.bmsc.config().key_group).unwrap();
    assert!(s.km.store().msks().is_empty());
}

#[test]
fn first_mtk_may_have_any_id_then_ids_grow() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    s.bmsc.rotate_msk();
    s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    let msgs: Vec<_> = (0..4).map(|_| s.bmsc.next_mtk_message().unwrap()).collect();
    // Start at MTK ID 3 (the ME missed 1 and 2): accepted; then 4; 1 and 3 refused.
    assert_eq!(s.km.mtk_generate(&msgs[2]).unwrap().mtk_id, MtkId(3));
    assert_eq!(s.km.mtk_generate(&msgs[3]).unwrap().mtk_id, MtkId(4));
    for old in [&msgs[0], &msgs[2]] {
        refused(&mut s.km, |e| matches!(e, Error::KeyFreshness), |k| k.mtk_generate(old).map(drop));
    }
}

#[test]
fn verification_message_is_accepted_by_the_bm_sc() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    let mut cfg = s.bmsc.config().clone();
    cfg.v_bit = true;
    let mut bmsc = BmscStream::new(cfg).unwrap();
    bmsc.add_recipient(Muk::new([0x5A; 32]), &btid(1));
    bmsc.rotate_msk();
    let m = bmsc.msk_message(0).unwrap();
    let out = s.km.msk_update(&m).unwrap();
    let v = out.verification().unwrap();
    bmsc.check_verification(0, &m, v).unwrap();
    let mut forged = v.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(bmsc.check_verification(0, &m, &forged).is_err());
}

/// TS 33.246 §6.1 / §6.3.2.2.4 (CR 027): after its lifetime the last used MUK verifies a solicited
/// pull and nothing else; a MUK that is not the last used one verifies nothing once expired.
#[test]
fn expired_muk_verifies_only_a_solicited_pull_and_only_if_last_used() {
    let mut s = setup(MskTimestamps::NtpUtc, LIFETIME_2030);
    // A second MUK of the same BM-SC, never used, expired as well.
    s.km.install_muk(BMSC.as_bytes(), btid(2).as_bytes(), Muk::new([0x6B; 32]), LIFETIME_2030).unwrap();
    let second = s.bmsc.add_recipient(Muk::new([0x6B; 32]), &btid(2));
    s.bmsc.rotate_msk();
    // Before the lifetime: the first MUK delivers an MSK and becomes the last used.
    s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
    // An unused MUK before the lifetime: a solicited pull is fine (not expired yet).
    let early_pull = s.bmsc.solicited_pull(second).unwrap();

    s.bmsc.set_time(AFTER_2030);
    let pull = s.bmsc.solicited_pull(0).unwrap();
    let out = s.km.msk_update(&pull).unwrap();
    let kd = s.bmsc.config().key_domain_id;
    assert_eq!(out, MskOutcome::SolicitedPull { key_domain_id: kd, key_group: 1, verification: None });
    let msk = s.bmsc.msk_message(0).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::MukExpired), |k| k.msk_update(&msk).map(drop));
    let late_pull = s.bmsc.solicited_pull(second).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::MukExpired), |k| k.msk_update(&late_pull).map(drop));

    // The second MUK used (by its pull stamped before the lifetime) becomes the last used one:
    // then the first no longer verifies an expired pull.
    s.km.msk_update(&early_pull).unwrap();
    let pull_first = s.bmsc.solicited_pull(0).unwrap();
    refused(&mut s.km, |e| matches!(e, Error::MukExpired), |k| k.msk_update(&pull_first).map(drop));
    let pull_second = s.bmsc.solicited_pull(second).unwrap();
    assert!(matches!(s.km.msk_update(&pull_second).unwrap(), MskOutcome::SolicitedPull { .. }));
}

#[test]
fn counter_timestamps_tell_no_time() {
    // A MUK whose lifetime is long past still works with COUNTER timestamps (the card's rule).
    let mut s = setup(MskTimestamps::Counter, "2001-01-01T00:00:00Z");
    s.bmsc.rotate_msk();
    assert!(matches!(s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap(), MskOutcome::Msk { .. }));
}

#[test]
fn bad_installs_are_refused() {
    let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
    let r = s.km.install_muk(b"x", b"y", Muk::new([0; 32]), "tomorrow");
    assert!(matches!(r, Err(Error::InvalidInput(_))));
    assert!(s.km.install_muk(b"", b"y", Muk::new([0; 32]), LIFETIME_2030).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Arbitrary bytes, and genuine messages with arbitrary bytes changed, never panic and never
    /// change the store.
    #[test]
    fn garbage_never_changes_keys(noise in proptest::collection::vec(any::<u8>(), 0..300),
                                  edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut s = setup(MskTimestamps::Counter, LIFETIME_2030);
        s.bmsc.rotate_msk();
        s.km.msk_update(&s.bmsc.msk_message(0).unwrap()).unwrap();
        let before = s.km.store().encode().to_vec();
        let _ = s.km.msk_update(&noise);
        let _ = s.km.mtk_generate(&noise);
        let genuine = s.bmsc.next_mtk_message().unwrap();
        let mut msg = genuine.clone();
        for (at, x) in &edits {
            let n = msg.len();
            msg[at % n] ^= x | 1;
        }
        let r = s.km.mtk_generate(&msg);
        prop_assert!(r.is_err() || msg == genuine);
        if msg != genuine {
            prop_assert_eq!(s.km.store().encode().to_vec(), before);
        }
    }
}
