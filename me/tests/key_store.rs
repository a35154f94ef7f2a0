//! The ME key store (TS 33.246 §6.1 as changed by CR 001 / CR 027): ICCID binding, power-down,
//! the last used MUK, corruption and truncation, atomic replacement. The keys come from the BM-SC
//! stream generator of the `network` crate; files are inspected as bytes.

mod support;

use std::path::Path;

use me::key_store::{WriteStep, fault};
use me::{CardChange, Error, KeyStore, MbmsKeyManagement, MeBased, MskOutcome};
use mikey::mbms::Muk;
use network::bmsc_stream::{BmscStream, BmscStreamConfig, MskTimestamps};
use support::{BMSC, BSF, LIFETIME};

const ICCID: &str = "89882110000000000010";
const OTHER_ICCID: &str = "89882110000000000028";

fn btid(n: u8) -> String {
    gba::BTid::new(&support::rand(n), BSF).unwrap().as_str().to_owned()
}

/// An ME-based key management on a fresh store with one MUK, fed one MSK and one MTK; returns it
/// with the BM-SC (recipient 0) and the second, never used MUK's B-TID.
fn loaded(path: &Path) -> (MeBased, BmscStream) {
    let mut store = KeyStore::open(path).unwrap();
    assert_eq!(store.on_card_inserted(ICCID).unwrap(), CardChange::FirstCard);
    let mut km = MeBased::new(store);
    km.install_muk(BMSC.as_bytes(), btid(1).as_bytes(), Muk::new([0x11; 32]), LIFETIME).unwrap();
    km.install_muk(BMSC.as_bytes(), btid(2).as_bytes(), Muk::new([0x22; 32]), LIFETIME).unwrap();
    let keys = me::NafKeys {
        naf_id: support::bmsc_naf_id(),
        btid: btid(1),
        lifetime: LIFETIME.into(),
        key: me::NafKey::KsNaf(gba::KsNaf::new([0x33; 32])),
    };
    km.install_naf_keys(&keys).unwrap();
    // install_naf_keys replaced btid(1)'s MUK by the one derived from Ks_NAF.
    let muk = gba::mbms_keys::me_based_muk(&gba::KsNaf::new([0x33; 32]));
    let mut bmsc = BmscStream::new(BmscStreamConfig::new(BMSC, [5; 32])).unwrap();
    let ue = bmsc.add_recipient(muk, &btid(1));
    bmsc.rotate_msk();
    let msk = bmsc.msk_message(ue).unwrap();
    assert!(matches!(km.msk_update(&msk).unwrap(), MskOutcome::Msk { .. }));
    km.mtk_generate(&bmsc.next_mtk_message().unwrap()).unwrap();
    (km, bmsc)
}

fn counts(s: &KeyStore) -> (usize, usize, usize, usize) {
    (s.muks().len(), s.mrks().len(), s.msks().len(), s.mtks().len())
}

#[test]
fn a_different_uicc_wipes_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.bin");
    let (km, _) = loaded(&path);
    assert_eq!(counts(km.store()), (2, 1, 1, 1));
    drop(km);

    let mut same = KeyStore::open(&path).unwrap();
    assert_eq!(same.on_card_inserted(ICCID).unwrap(), CardChange::SameCard);
    assert_eq!(counts(&same), (2, 1, 1, 1));
    assert_eq!(same.on_card_inserted(OTHER_ICCID).unwrap(), CardChange::DifferentCard);
    assert!(same.is_empty());
    assert!(matches!(same.on_card_inserted("12ab"), Err(Error::InvalidInput(_))));
    drop(same);
    // On disk too, bound to the new card.
    let reopened = KeyStore::open(&path).unwrap();
    assert!(reopened.is_empty());
    assert_eq!(reopened.iccid(), Some(OTHER_ICCID));
}

#[test]
fn power_down_keeps_or_drops_by_configuration_and_always_keeps_the_last_used_muk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.bin");

    // Keep: everything survives, counters included (a replayed MTK is still refused).
    let (km, mut bmsc) = loaded(&path);
    km.power_down(true).unwrap();
    let mut store = KeyStore::open(&path).unwrap();
    store.on_card_inserted(ICCID).unwrap();
    assert_eq!(counts(&store), (2, 1, 1, 1));
    let mut km = MeBased::new(store);
    let mtk2 = bmsc.next_mtk_message().unwrap();
    km.mtk_generate(&mtk2).unwrap();
    assert!(matches!(km.mtk_generate(&mtk2), Err(Error::KeyFreshness)));

    // Drop: MRK, MSK, MTK and the unused MUK go; the last used MUK stays, with its counter.
    km.power_down(false).unwrap();
    let store = KeyStore::open(&path).unwrap();
    assert_eq!(counts(&store), (1, 0, 0, 0));
    let muk = &store.muks()[0];
    assert!(muk.last_used && muk.idr == btid(1).as_bytes() && muk.ts_counter.is_some());
    // It still verifies the BM-SC's next message (after power-on, same card).
    let mut km = MeBased::new(store);
    km.store_mut().on_card_inserted(ICCID).unwrap();
    assert!(matches!(km.msk_update(&bmsc.msk_message(0).unwrap()).unwrap(), MskOutcome::Msk { .. }));
}

/// Write `bytes` as the store file and open it.
fn load(path: &Path, bytes: &[u8]) -> me::Result<KeyStore> {
    std::fs::write(path, bytes).unwrap();
    KeyStore::open(path)
}

/// A store file that is corrupted, truncated or extended is refused, and left as it was: the ME
/// never starts over with an empty store (which would forget every replay counter).
#[test]
fn corrupted_or_truncated_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.bin");
    let (km, _) = loaded(&path);
    drop(km);
    let good = std::fs::read(&path).unwrap();
    assert_eq!(counts(&load(&path, &good).unwrap()), (2, 1, 1, 1));

    let refused = |bytes: &[u8], what: &str| {
        let err = load(&path, bytes).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(matches!(err, Error::State(statefile::Error::Invalid { .. })), "{what}: {err}");
        assert!(err.to_string().contains("left untouched"), "{what}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}: the file changed");
    };
    // Every truncation length, from empty to one byte short.
    for len in 0..good.len() {
        refused(&good[..len], &format!("truncated to {len}"));
    }
    // Every single flipped byte (and every single flipped bit of the last byte).
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        refused(&bad, &format!("byte {at} flipped"));
    }
    for bit in 0..8 {
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1 << bit;
        refused(&bad, &format!("bit {bit} of the last byte flipped"));
    }
    let mut longer = good.clone();
    longer.push(0);
    refused(&longer, "one byte more");
    // A sound envelope around a payload that is no key store.
    refused(&statefile::seal(&me::key_store::STORE_FORMAT, b"\x03abc"), "a foreign payload");
    // The format of the previous version (no statefile envelope) names its version.
    let mut v1 = good.clone();
    v1[9] = 1;
    let err = load(&path, &v1).err().unwrap();
    assert!(err.to_string().contains("format version 1"), "{err}");
}

#[test]
fn an_interrupted_write_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.bin");
    let (km, mut bmsc) = loaded(&path);
    let old = km.store().encode().to_vec();
    assert_eq!(std::fs::read(&path).unwrap(), old);
    drop(km);
    let mtk = bmsc.next_mtk_message().unwrap();
    // The next state: one more MTK, applied to a store opened on the old file.
    let next = || {
        std::fs::write(&path, &old).unwrap();
        let mut km = MeBased::new(KeyStore::open(&path).unwrap());
        fault::set_hook(Some(Box::new(|_| Err(std::io::Error::other("not now")))));
        let r = km.mtk_generate(&mtk);
        fault::set_hook(None);
        assert!(r.is_err(), "the save is cut before anything is written");
        km
    };
    let new = next().store().encode().to_vec();
    assert_ne!(old, new);

    for step in WriteStep::ALL {
        let km = next();
        fault::set_hook(Some(Box::new(move |s| {
            if s == step { Err(std::io::Error::other("power cut")) } else { Ok(()) }
        })));
        let cut = km.store().save();
        fault::set_hook(None);
        drop(km);
        assert!(cut.is_err());
        let on_disk = std::fs::read(&path).unwrap();
        let expected = if step == WriteStep::SyncDir { &new } else { &old };
        assert_eq!(&on_disk, expected, "power cut before {step:?}");
        let store = KeyStore::open(&path).unwrap();
        assert_eq!(store.encode().as_slice(), expected.as_slice());
        // Opening cleared the temporary file the cut left behind; the lock file stays.
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [std::ffi::OsString::from(".keys.bin.lock"), "keys.bin".into()], "{step:?}");
    }
    // A real I/O error (the temporary path is taken by a directory) leaves the old file alone.
    let km = next();
    let tmp = dir.path().join(".keys.bin.tmp");
    std::fs::create_dir(&tmp).unwrap();
    assert!(matches!(km.store().save(), Err(Error::Store { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), old);
    std::fs::remove_dir(&tmp).unwrap();
    km.store().save().unwrap();
    drop(km);
    assert_eq!(std::fs::read(&path).unwrap(), new);
}

#[test]
fn debug_output_shows_no_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (km, _) = loaded(&dir.path().join("keys.bin"));
    let text = format!("{km:?}");
    for leak in ["17, 17, 17", "34, 34, 34", "0x11", "111111", "222222"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert!(text.contains("Muk(..)"));
}

#[test]
fn ntp_utc_and_counter_stores_round_trip() {
    // A store written with every optional field set reads back byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.bin");
    let mut store = KeyStore::open(&path).unwrap();
    store.on_card_inserted(ICCID).unwrap();
    let mut km = MeBased::new(store);
    km.install_muk(BMSC.as_bytes(), btid(7).as_bytes(), Muk::new([7; 32]), "2030-01-01T00:00:00Z").unwrap();
    let mut cfg = BmscStreamConfig::new(BMSC, [9; 32]);
    cfg.msk_timestamps = MskTimestamps::NtpUtc;
    let mut bmsc = BmscStream::new(cfg).unwrap();
    bmsc.set_time(1_800_000_000); // 2027-01-15, before the lifetime
    let ue = bmsc.add_recipient(Muk::new([7; 32]), &btid(7));
    bmsc.rotate_msk();
    km.msk_update(&bmsc.msk_message(ue).unwrap()).unwrap();
    km.mtk_generate(&bmsc.next_mtk_message().unwrap()).unwrap();
    let bytes = km.store().encode().to_vec();
    drop(km);
    let again = KeyStore::open(&path).unwrap();
    assert_eq!(again.encode().as_slice(), bytes.as_slice());
}

#[test]
fn renewed_bootstraps_do_not_pile_up_muks_and_the_last_used_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("ks.bin")).unwrap();
    store.on_card_inserted(ICCID).unwrap();
    let mut km = MeBased::new(store);
    km.install_muk(BMSC.as_bytes(), btid(1).as_bytes(), Muk::new([1; 32]), LIFETIME).unwrap();
    km.store_mut().mark_muk_used(BMSC.as_bytes(), btid(1).as_bytes());
    for n in 2..=9u8 {
        km.install_muk(BMSC.as_bytes(), btid(n).as_bytes(), Muk::new([n; 32]), LIFETIME).unwrap();
    }
    let idrs: Vec<Vec<u8>> = km.store().muks().iter().map(|m| m.idr.clone()).collect();
    assert_eq!(idrs.len(), me::key_store::MUKS_PER_IDI);
    assert!(idrs.contains(&btid(1).into_bytes()), "the last used MUK stays");
    assert!(idrs.contains(&btid(9).into_bytes()), "the newest MUK stays");
    assert!(km.store().muk(BMSC.as_bytes(), btid(1).as_bytes()).unwrap().last_used);
    // Another BM-SC's MUKs are not touched.
    km.install_muk(b"other.bmsc.example.org", btid(1).as_bytes(), Muk::new([7; 32]), LIFETIME).unwrap();
    assert_eq!(km.store().muks().len(), me::key_store::MUKS_PER_IDI + 1);
}
