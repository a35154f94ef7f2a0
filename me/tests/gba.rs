//! GBA_U and GBA_ME clients on the emulated card (TS 33.220 §4.5.2, §5.3.2, Annex B.3, Annex G).
//! Network side: the `gba` crate and the independent `milenage` and `hmac` crates; known answers
//! from TS 35.208 test set 1 and the spec digest §8.2.

mod support;

use gba::UaSecurityProtocolId;
use hmac::{Hmac, KeyInit, Mac};
use me::card::{FID_USIM_GBABP, imsi_derived_impi};
use me::{App, BootstrapOutcome, Error, GbaClient, GbaVariant, KeyManagementPath, NafKey, choose_path};
use sha2::Sha256;
use sim_reader::CardProfile;
use support::*;

/// TS 35.208 test set 1, f2 (RES).
const RES_TS1: &str = "a54211d5e3ba50bf";
/// Spec digest §8.2: Ks_ext_NAF for test set 1 Ks and RAND, IMPI "user@ims...", NAF bmsc.example.org.
const KS_EXT_NAF_8_2: &str = "f519b9a4b75b451a1e36b9f2ed46e862a68735f51cd4a231d73841b21cd26334";
const IMPI_8_2: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";

/// HMAC-SHA-256 over S built by hand from TS 33.220 Annex B.2 (FC ‖ P0 ‖ L0 ‖ ...), with the hmac
/// crate only.
fn kdf_by_hand(ks: &[u8], p0: &[u8], rand: &[u8], impi: &[u8], naf_id: &[u8]) -> [u8; 32] {
    let mut s = vec![0x01];
    for p in [p0, rand, impi, naf_id] {
        s.extend_from_slice(p);
        s.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(ks).unwrap();
    mac.update(&s);
    mac.finalize().into_bytes().into()
}

#[test]
fn card_identity_and_path_choice() {
    let profile = CardProfile::default();
    let card = card(emulator());
    assert_eq!(card.iccid().unwrap(), profile.iccid());
    let apps = card.applications().unwrap();
    assert!(apps.usim.is_some() && apps.isim.is_some());
    // The ISIM's EF.IMPI is the profile's IMPI, which default.toml documents as IMSI-derived
    // (TS 23.003 §13.3): both readings agree.
    assert_eq!(card.impi().unwrap(), profile.impi());
    let derived = imsi_derived_impi(&card.imsi().unwrap(), card.mnc_length().unwrap()).unwrap();
    assert_eq!(derived, profile.impi());
    let ust = card.usim_service_table().unwrap();
    assert!(ust.has(68) && ust.has(69));
    assert_eq!(choose_path(&card, None).unwrap(), KeyManagementPath::UiccBased);
    assert_eq!(choose_path(&card, Some(KeyManagementPath::MeBased)).unwrap(), KeyManagementPath::MeBased);
}

#[test]
fn pin_is_required_and_checked() {
    let card = me::Card::new(emulator());
    assert!(matches!(card.usim_service_table(), Err(Error::PinRequired)));
    let mut gba = GbaClient::new(card.clone(), GbaVariant::GbaU);
    assert!(matches!(gba.bootstrap(&RAND_TS1, &[0; 16]), Err(Error::PinRequired)));
    assert!(matches!(card.verify_pin("9999"), Err(Error::WrongPin { tries_left: 2 })));
    assert!(matches!(card.verify_pin("12a4"), Err(Error::InvalidInput(_))));
    card.verify_pin(PIN).unwrap();
    assert!(card.usim_service_table().is_ok());
}

/// TS 33.220 Annex B.3: Ks_ext_NAF (GBA_U, from the card) and Ks_NAF (GBA_ME, in the ME) use the
/// same formula, so the same RAND gives the same key.
#[test]
fn gba_u_ks_ext_naf_equals_gba_me_ks_naf_for_the_same_rand() {
    let profile = CardProfile::default();
    let mut hss = Hss::for_profile(&profile);
    let card = card(emulator());
    let naf_id = bmsc_naf_id();

    let mut gba_u = GbaClient::new(card.clone(), GbaVariant::GbaU);
    let av = hss.vector(&RAND_TS1);
    let res = match gba_u.bootstrap(&RAND_TS1, &av.gba_u_autn().to_bytes()).unwrap() {
        BootstrapOutcome::Res(res) => res,
        other => panic!("{other:?}"),
    };
    assert_eq!(hex::encode(&res[..]), RES_TS1, "TS 35.208 test set 1 RES");
    let btid = gba::BTid::new(&RAND_TS1, BSF).unwrap();
    assert_eq!(btid.as_str(), "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org", "spec digest §8.2 B-TID");
    gba_u.complete_bootstrap(btid.as_str(), LIFETIME).unwrap();
    let ext = gba_u.naf_keys(&naf_id, IMPI_8_2).unwrap();
    assert!(matches!(ext.key, NafKey::KsExtNaf(_)));
    assert_eq!(ext.btid, btid.as_str());
    assert_eq!(ext.lifetime, LIFETIME);
    assert_eq!(hex::encode(ext.key.expose()), KS_EXT_NAF_8_2);
    let by_hand = kdf_by_hand(
        &[&av.ck.expose()[..], &av.ik.expose()[..]].concat(),
        b"gba-me",
        &RAND_TS1,
        IMPI_8_2.as_bytes(),
        naf_id.as_bytes(),
    );
    assert_eq!(ext.key.expose(), &by_hand);

    // GBA_ME on the same card and RAND (the HSS's next SQN).
    let mut gba_me = GbaClient::new(card.clone(), GbaVariant::GbaMe);
    let b = bootstrap(&mut gba_me, &mut hss, RAND_TS1, LIFETIME);
    let me_keys = gba_me.naf_keys(&naf_id, IMPI_8_2).unwrap();
    assert!(matches!(me_keys.key, NafKey::KsNaf(_)));
    assert_eq!(me_keys.key.expose(), ext.key.expose(), "Ks_NAF == Ks_ext_NAF");
    assert_eq!(me_keys.key.expose(), b.ks_naf(IMPI_8_2).expose(), "the BSF's Ks_NAF");

    // With the card's own IMPI too, and for another Ua protocol the keys differ.
    let impi = card.impi().unwrap();
    let ext2 = gba_u.naf_keys(&naf_id, &impi).unwrap();
    let me2 = gba_me.naf_keys(&naf_id, &impi).unwrap();
    assert_eq!(ext2.key.expose(), me2.key.expose());
    assert_eq!(me2.key.expose(), b.ks_naf(&impi).expose());
    let other = gba::NafId::new(BMSC, UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    assert_ne!(gba_me.naf_keys(&other, &impi).unwrap().key.expose(), me2.key.expose());
}

#[test]
fn gba_u_writes_btid_and_lifetime_after_the_card_rand() {
    let profile = CardProfile::default();
    let mut hss = Hss::for_profile(&profile);
    let card = card(emulator());
    let mut gba_u = GbaClient::new(card.clone(), GbaVariant::GbaU);
    let b = bootstrap(&mut gba_u, &mut hss, rand(1), LIFETIME);
    // EF.GBABP (TS 31.102 §4.2.79): L RAND, L B-TID, L lifetime, read back raw.
    let raw = card.read_transparent(Some(App::Usim), FID_USIM_GBABP).unwrap();
    let mut expected = vec![16];
    expected.extend_from_slice(&b.rand);
    expected.push(b.btid.len() as u8);
    expected.extend_from_slice(b.btid.as_bytes());
    expected.push(LIFETIME.len() as u8);
    expected.extend_from_slice(LIFETIME.as_bytes());
    assert_eq!(&raw[..expected.len()], &expected[..]);
    assert_eq!(gba_u.bootstrap_info().unwrap(), (b.btid.clone(), LIFETIME.to_owned()));
    // A B-TID naming another RAND is refused before anything is written.
    let other = gba::BTid::new(&rand(2), BSF).unwrap();
    assert!(matches!(gba_u.complete_bootstrap(other.as_str(), LIFETIME), Err(Error::InvalidInput(_))));
    assert_eq!(card.read_transparent(Some(App::Usim), FID_USIM_GBABP).unwrap(), raw);
}

#[test]
fn naf_keys_need_a_completed_bootstrap() {
    let profile = CardProfile::default();
    let mut hss = Hss::for_profile(&profile);
    let card = card(emulator());
    let naf_id = bmsc_naf_id();
    let mut gba_u = GbaClient::new(card.clone(), GbaVariant::GbaU);
    assert!(matches!(gba_u.naf_keys(&naf_id, IMPI_8_2), Err(Error::NoBootstrap(_))));
    // Bootstrapped but B-TID and lifetime not written: the card refuses (69 85).
    let av = hss.vector(&rand(3));
    assert!(matches!(
        gba_u.bootstrap(&rand(3), &av.gba_u_autn().to_bytes()).unwrap(),
        BootstrapOutcome::Res(_)
    ));
    assert!(matches!(gba_u.naf_keys(&naf_id, IMPI_8_2), Err(Error::NoBootstrap(_))));
    let mut gba_me = GbaClient::new(card, GbaVariant::GbaMe);
    assert!(matches!(gba_me.naf_keys(&naf_id, IMPI_8_2), Err(Error::NoBootstrap(_))));
    assert!(matches!(gba_me.complete_bootstrap("x", LIFETIME), Err(Error::Gba(_))));
}

/// TS 33.220 §5.3.2 / spec digest §1.7: a GBA_U challenge (AUTN* carries MAC*) fails in the 3G
/// context, and a stale SQN gives AUTS, which the network verifies.
#[test]
fn mac_failure_and_resynchronisation() {
    let profile = CardProfile::default();
    let mut hss = Hss::for_profile(&profile);
    let card = card(emulator());
    let av = hss.vector(&rand(4));
    let mut gba_me = GbaClient::new(card.clone(), GbaVariant::GbaMe);
    assert!(matches!(
        gba_me.bootstrap(&rand(4), &av.gba_u_autn().to_bytes()).unwrap(),
        BootstrapOutcome::MacFailure
    ));
    // A forged AUTN fails the GBA_U context too.
    let mut gba_u = GbaClient::new(card.clone(), GbaVariant::GbaU);
    let mut forged = av.gba_u_autn().to_bytes();
    forged[15] ^= 1;
    assert!(matches!(gba_u.bootstrap(&rand(4), &forged).unwrap(), BootstrapOutcome::MacFailure));
    // The failures consumed nothing: the same vector still works.
    assert!(matches!(
        gba_u.bootstrap(&rand(4), &av.gba_u_autn().to_bytes()).unwrap(),
        BootstrapOutcome::Res(_)
    ));

    let stale = hss.stale_vector(&rand(5));
    let auts = match gba_u.bootstrap(&rand(5), &stale.gba_u_autn().to_bytes()).unwrap() {
        BootstrapOutcome::Auts(auts) => auts,
        other => panic!("{other:?}"),
    };
    // The AuC side, with the independent milenage crate: SQN_MS = conc xor f5*, MAC-S = f1*.
    let mut oracle = milenage::Milenage::new_with_opc(hss.k, hss.opc);
    let ak_star = oracle.f5star(&rand(5));
    let bytes = auts.to_bytes();
    let sqn_ms: Vec<u8> = bytes[..6].iter().zip(ak_star).map(|(a, b)| a ^ b).collect();
    let mac_s = oracle.f1star(&rand(5), &sqn_ms.clone().try_into().unwrap(), &[0, 0]);
    assert_eq!(&bytes[6..], &mac_s);
    // SQN_MS is the highest SQN accepted so far: the one vector used (the first above the
    // personalized SEQ 1, so SEQ 2, IND 0).
    assert_eq!(
        u64::from_be_bytes([0, 0, sqn_ms[0], sqn_ms[1], sqn_ms[2], sqn_ms[3], sqn_ms[4], sqn_ms[5]])
            >> IND_BITS,
        2
    );
    assert_eq!(auts.verify(&hss.m, &rand(5)).map(|s| s.seq(IND_BITS)), Some(2));
}
