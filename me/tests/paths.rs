//! The validation keysim exists for: the UICC-based path (GBA_U, MBMS keys on the emulated card,
//! T=0) and the ME-based path (GBA_ME, keys in the ME key store) fed the same BM-SC stream give the
//! same MTKs and the same decrypted media, refuse the same replays and forgeries with the same
//! typed errors, and in the UICC path no Ks, MUK or MSK byte crosses the APDU interface.
//!
//! Network side: `network::bmsc_stream` (MIKEY and SRTP from the `mikey` / `srtp` primitives) with
//! MUKs computed by the `gba` crate from the HSS's authentication vectors.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use me::open_values::MTKS_KEPT_PER_STREAM;
use me::{
    Card, Error, GbaClient, GbaVariant, KeyManagementPath, KeyStore, MbmsKeyManagement, MbmsReceiver,
    MeBased, MikeyEvent, MikeyListener, MskOutcome, MtkOutcome, UiccBased, choose_path,
};
use network::bmsc_stream::{BmscStream, BmscStreamConfig, MskTimestamps};
use sim_reader::trace::MemoryTrace;
use sim_reader::{CardProfile, Emulator, Protocol, Reader, Traced};
use support::*;

const STREAM: u32 = 7;
/// 2030-01-01T00:00:00Z = Unix 1893456000; 2031-01-01T00:00:00Z = Unix 1924992000.
const LIFETIME_2030: &str = "2030-01-01T00:00:00Z";
const LIFETIME_2031: &str = "2031-01-01T00:00:00Z";
const BEFORE_2030: u64 = 1_893_456_000 - 3600;
const AFTER_2030: u64 = 1_893_456_000 + 60;

/// The UICC-based UE: GBA_U on its own card (T=0), the card's key management.
struct UiccUe<R> {
    gba: GbaClient<R>,
    km: UiccBased<R>,
    hss: Hss,
    impi: String,
}

fn uicc_ue<R: Reader>(reader: R) -> UiccUe<R> {
    let card = card(reader);
    assert_eq!(choose_path(&card, None).unwrap(), KeyManagementPath::UiccBased, "EF.UST has n°69");
    let impi = card.impi().unwrap();
    UiccUe {
        gba: GbaClient::new(card.clone(), GbaVariant::GbaU),
        km: UiccBased::new(card),
        hss: Hss::for_profile(&CardProfile::default()),
        impi,
    }
}

impl<R: Reader> UiccUe<R> {
    /// Bootstrap, NAF derivation (the card keeps Ks_int_NAF = MUK); returns the network's record.
    fn gba(&mut self, n: u8, lifetime: &str) -> Bootstrapped {
        let b = bootstrap(&mut self.gba, &mut self.hss, rand(n), lifetime);
        let keys = self.gba.naf_keys(&bmsc_naf_id(), &self.impi).unwrap();
        assert_eq!(keys.key.expose(), b.ks_naf(&self.impi).expose(), "Ks_ext_NAF = the BSF's");
        b
    }
}

/// The ME-based UE: GBA_ME on its own card, keys in a key store bound to that card.
struct MeUe<R> {
    gba: GbaClient<R>,
    km: MeBased,
    hss: Hss,
    impi: String,
    _dir: tempfile::TempDir,
}

fn me_ue<R: Reader>(reader: R) -> MeUe<R> {
    let card = card(reader);
    assert_eq!(choose_path(&card, Some(KeyManagementPath::MeBased)).unwrap(), KeyManagementPath::MeBased);
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("me-keys.bin")).unwrap();
    store.on_card_inserted(&card.iccid().unwrap()).unwrap();
    let impi = card.impi().unwrap();
    MeUe {
        gba: GbaClient::new(card, GbaVariant::GbaMe),
        km: MeBased::new(store),
        hss: Hss::for_profile(&CardProfile::default()),
        impi,
        _dir: dir,
    }
}

impl<R: Reader> MeUe<R> {
    fn gba(&mut self, n: u8, lifetime: &str) -> Bootstrapped {
        let b = bootstrap(&mut self.gba, &mut self.hss, rand(n), lifetime);
        let keys = self.gba.naf_keys(&bmsc_naf_id(), &self.impi).unwrap();
        assert_eq!(keys.key.expose(), b.ks_naf(&self.impi).expose(), "Ks_NAF = the BSF's");
        self.km.install_naf_keys(&keys).unwrap();
        b
    }
}

fn bmsc(timestamps: MskTimestamps, v_bit: bool) -> BmscStream {
    let mut cfg = BmscStreamConfig::new(BMSC, [0x42; 32]);
    cfg.msk_timestamps = timestamps;
    cfg.v_bit = v_bit;
    BmscStream::new(cfg).unwrap()
}

fn receiver(bmsc: &BmscStream) -> MbmsReceiver {
    let mut r = MbmsReceiver::new();
    let c = bmsc.config();
    r.add_stream(STREAM, c.key_domain_id, c.key_group, bmsc.srtp_policy()).unwrap();
    r
}

fn same_mtk(a: &MtkOutcome, b: &MtkOutcome, bmsc: &BmscStream) {
    let (msk_id, mtk_id, mtk, salt) = bmsc.current_mtk().unwrap();
    for o in [a, b] {
        assert_eq!((o.key_domain_id, o.msk_id, o.mtk_id), (bmsc.config().key_domain_id, msk_id, mtk_id));
        assert_eq!(o.mtk.as_bytes(), mtk.as_bytes());
        assert_eq!(o.salt.as_ref().unwrap().as_bytes(), salt.as_bytes());
    }
}

fn t0_emulator() -> Emulator {
    emulator().with_protocol(Protocol::T0)
}

#[test]
fn both_paths_give_the_same_mtks_and_the_same_media() {
    let mut u = uicc_ue(t0_emulator());
    let mut m = me_ue(emulator());
    let bu = u.gba(1, LIFETIME);
    let bm = m.gba(1, LIFETIME);
    let mut bmsc = bmsc(MskTimestamps::Counter, false);
    let ru = bmsc.add_recipient(bu.bmsc_muk(&u.impi, true), &bu.btid);
    let rm = bmsc.add_recipient(bm.bmsc_muk(&m.impi, false), &bm.btid);
    let (mut rx_u, mut rx_m) = (receiver(&bmsc), receiver(&bmsc));

    let mut early_packet = None;
    for round in 0..5 {
        if round % 2 == 0 {
            let msk_id = bmsc.rotate_msk();
            let a = u.km.msk_update(&bmsc.msk_message(ru).unwrap()).unwrap();
            let b = m.km.msk_update(&bmsc.msk_message(rm).unwrap()).unwrap();
            assert_eq!(a, b);
            assert!(matches!(a, MskOutcome::Msk { msk_id: id, .. } if id == msk_id));
        }
        // MTK messages are multicast: the same bytes to both UEs.
        let mtk_message = bmsc.next_mtk_message().unwrap();
        let a = u.km.mtk_generate(&mtk_message).unwrap();
        let b = m.km.mtk_generate(&mtk_message).unwrap();
        same_mtk(&a, &b, &bmsc);
        assert_eq!(rx_u.add_mtk(&a).unwrap(), 1);
        assert_eq!(rx_m.add_mtk(&b).unwrap(), 1);
        for i in 0..4 {
            let (srtp, rtp) = bmsc.next_srtp_packet().unwrap();
            if round == 0 && i == 3 {
                early_packet = Some(srtp);
                continue;
            }
            let (mut pu, mut pm) = (srtp.clone(), srtp.clone());
            rx_u.unprotect(STREAM, &mut pu).unwrap();
            rx_m.unprotect(STREAM, &mut pm).unwrap();
            assert_eq!(pu, rtp);
            assert_eq!(pm, rtp);
        }
    }
    // Only the last MTKS_KEPT_PER_STREAM MTKs stay: a packet of the first MTK is refused by MKI.
    assert_eq!(rx_u.mkis(STREAM).unwrap().len(), MTKS_KEPT_PER_STREAM);
    assert_eq!(rx_u.mkis(STREAM).unwrap(), rx_m.mkis(STREAM).unwrap());
    let early = early_packet.unwrap();
    for rx in [&mut rx_u, &mut rx_m] {
        let mut p = early.clone();
        assert!(matches!(rx.unprotect(STREAM, &mut p), Err(Error::Srtp(srtp::Error::UnknownMki))));
        assert_eq!(p, early);
    }
    // A tampered packet is refused on both and changes nothing: the genuine one passes after.
    let (srtp, rtp) = bmsc.next_srtp_packet().unwrap();
    for rx in [&mut rx_u, &mut rx_m] {
        for at in [14, srtp.len() - 1] {
            let mut bad = srtp.clone();
            bad[at] ^= 0x10;
            assert!(matches!(rx.unprotect(STREAM, &mut bad), Err(Error::Srtp(srtp::Error::AuthFailure))));
        }
        let mut good = srtp.clone();
        rx.unprotect(STREAM, &mut good).unwrap();
        assert_eq!(good, rtp);
        // And replayed: refused.
        let mut again = srtp.clone();
        assert!(matches!(rx.unprotect(STREAM, &mut again), Err(Error::Srtp(srtp::Error::ReplayDuplicate))));
    }
    assert!(matches!(rx_u.unprotect(99, &mut srtp.clone()), Err(Error::NoStream(99))));
}

/// The discriminant of an outcome, to compare the two paths.
fn kind<T: std::fmt::Debug>(r: &me::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::MalformedMikey { .. }) => "malformed".into(),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn both_paths_refuse_replays_and_forgeries_alike() {
    let mut u = uicc_ue(emulator());
    let mut m = me_ue(emulator());
    let bu = u.gba(1, LIFETIME);
    let bm = m.gba(1, LIFETIME);
    let mut bmsc = bmsc(MskTimestamps::Counter, false);
    let ru = bmsc.add_recipient(bu.bmsc_muk(&u.impi, true), &bu.btid);
    let rm = bmsc.add_recipient(bm.bmsc_muk(&m.impi, false), &bm.btid);
    let stranger_u =
        bmsc.add_recipient(bu.bmsc_muk(&u.impi, true), "AAAAAAAAAAAAAAAAAAAAAA==@bsf.example.org");
    let kms: [&mut dyn MbmsKeyManagement; 2] = [&mut u.km, &mut m.km];
    let [ku, km] = kms;

    let mut both = |what: &str,
                    fu: &mut dyn FnMut(&mut dyn MbmsKeyManagement) -> String,
                    fm: &mut dyn FnMut(&mut dyn MbmsKeyManagement) -> String,
                    expected: &str| {
        let (a, b) = (fu(&mut *ku), fm(&mut *km));
        assert_eq!(a, expected, "{what}: UICC-based");
        assert_eq!(b, expected, "{what}: ME-based");
    };

    bmsc.rotate_msk();
    let (mu, mm) = (bmsc.msk_message(ru).unwrap(), bmsc.msk_message(rm).unwrap());
    let mtk_before_msk = bmsc.next_mtk_message().unwrap();
    both(
        "MTK before its MSK",
        &mut |k| kind(&k.mtk_generate(&mtk_before_msk)),
        &mut |k| kind(&k.mtk_generate(&mtk_before_msk)),
        "KeyNotFound",
    );
    both("MSK", &mut |k| kind(&k.msk_update(&mu)), &mut |k| kind(&k.msk_update(&mm)), "ok");
    both(
        "replayed MSK",
        &mut |k| kind(&k.msk_update(&mu)),
        &mut |k| kind(&k.msk_update(&mm)),
        "KeyFreshness",
    );
    let (mut fu, mut fm) = (bmsc.msk_message(ru).unwrap(), bmsc.msk_message(rm).unwrap());
    let (lu, lm) = (fu.len() - 1, fm.len() - 1);
    fu[lu] ^= 1;
    fm[lm] ^= 1;
    both("forged MSK", &mut |k| kind(&k.msk_update(&fu)), &mut |k| kind(&k.msk_update(&fm)), "MacFailure");
    let unknown = bmsc.msk_message(stranger_u).unwrap();
    both(
        "unknown MUK",
        &mut |k| kind(&k.msk_update(&unknown)),
        &mut |k| kind(&k.msk_update(&unknown)),
        "NoMuk",
    );
    let mtk1 = bmsc.next_mtk_message().unwrap();
    let mtk2 = bmsc.next_mtk_message().unwrap();
    both("MTK 3", &mut |k| kind(&k.mtk_generate(&mtk2)), &mut |k| kind(&k.mtk_generate(&mtk2)), "ok");
    both(
        "replayed MTK",
        &mut |k| kind(&k.mtk_generate(&mtk2)),
        &mut |k| kind(&k.mtk_generate(&mtk2)),
        "KeyFreshness",
    );
    both(
        "older MTK",
        &mut |k| kind(&k.mtk_generate(&mtk1)),
        &mut |k| kind(&k.mtk_generate(&mtk1)),
        "KeyFreshness",
    );
    let mut forged = bmsc.next_mtk_message().unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x40;
    both(
        "forged MTK",
        &mut |k| kind(&k.mtk_generate(&forged)),
        &mut |k| kind(&k.mtk_generate(&forged)),
        "MacFailure",
    );
    let garbage = [0x01, 0x00, 0x15, 0x00, 0x00];
    both(
        "garbage",
        &mut |k| kind(&k.msk_update(&garbage)),
        &mut |k| kind(&k.msk_update(&garbage)),
        "malformed",
    );
    both(
        "garbage MTK",
        &mut |k| kind(&k.mtk_generate(&garbage)),
        &mut |k| kind(&k.mtk_generate(&garbage)),
        "malformed",
    );

    // Deletions: the MSKs of the Key Group, then the MUK.
    let (kd, kg) = (bmsc.config().key_domain_id, bmsc.config().key_group);
    let next = bmsc.next_mtk_message().unwrap();
    both("delete MSK", &mut |k| kind(&k.delete_msk(kd, kg)), &mut |k| kind(&k.delete_msk(kd, kg)), "ok");
    both(
        "MTK after deletion",
        &mut |k| kind(&k.mtk_generate(&next)),
        &mut |k| kind(&k.mtk_generate(&next)),
        "KeyNotFound",
    );
    both(
        "delete again",
        &mut |k| kind(&k.delete_msk(kd, kg)),
        &mut |k| kind(&k.delete_msk(kd, kg)),
        "KeyNotFound",
    );
    let (iu, im) = (bu.btid.clone(), bm.btid.clone());
    both(
        "delete MUK",
        &mut |k| kind(&k.delete_muk(BMSC.as_bytes(), iu.as_bytes())),
        &mut |k| kind(&k.delete_muk(BMSC.as_bytes(), im.as_bytes())),
        "ok",
    );
    let (mu2, mm2) = (bmsc.msk_message(ru).unwrap(), bmsc.msk_message(rm).unwrap());
    both(
        "MSK after MUK deletion",
        &mut |k| kind(&k.msk_update(&mu2)),
        &mut |k| kind(&k.msk_update(&mm2)),
        "NoMuk",
    );
}

/// TS 33.246 §6.1 / §6.3.2.2.4 (CR 027), on the card and in the ME alike: an expired MUK verifies a
/// solicited pull only while it is the last used MUK of the BM-SC, and nothing else.
#[test]
fn both_paths_apply_the_same_expiry_rule() {
    let mut u = uicc_ue(emulator());
    let mut m = me_ue(emulator());
    let bu1 = u.gba(1, LIFETIME_2030);
    let bm1 = m.gba(1, LIFETIME_2030);
    let mut bmsc = bmsc(MskTimestamps::NtpUtc, false);
    let (u1, m1) = (
        bmsc.add_recipient(bu1.bmsc_muk(&u.impi, true), &bu1.btid),
        bmsc.add_recipient(bm1.bmsc_muk(&m.impi, false), &bm1.btid),
    );
    bmsc.set_time(BEFORE_2030);
    bmsc.rotate_msk();
    let pair = |bmsc: &mut BmscStream, a: usize, b: usize, pull: bool| {
        if pull {
            (bmsc.solicited_pull(a).unwrap(), bmsc.solicited_pull(b).unwrap())
        } else {
            (bmsc.msk_message(a).unwrap(), bmsc.msk_message(b).unwrap())
        }
    };
    let check = |what: &str,
                 msgs: (Vec<u8>, Vec<u8>),
                 u: &mut UiccBased<Emulator>,
                 m: &mut MeBased,
                 expected: &str| {
        let a = u.msk_update(&msgs.0);
        let b = m.msk_update(&msgs.1);
        assert_eq!(kind(&a), expected, "{what}: UICC-based {a:?}");
        assert_eq!(kind(&b), expected, "{what}: ME-based {b:?}");
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(a, b);
        }
    };
    check("MSK before the lifetime", pair(&mut bmsc, u1, m1, false), &mut u.km, &mut m.km, "ok");
    bmsc.set_time(AFTER_2030);
    check("pull, expired last used MUK", pair(&mut bmsc, u1, m1, true), &mut u.km, &mut m.km, "ok");
    check("MSK, expired MUK", pair(&mut bmsc, u1, m1, false), &mut u.km, &mut m.km, "MukExpired");

    // A new bootstrap (lifetime 2031); its MUK delivers an MSK and becomes the last used one.
    let bu2 = u.gba(2, LIFETIME_2031);
    let bm2 = m.gba(2, LIFETIME_2031);
    let (u2, m2) = (
        bmsc.add_recipient(bu2.bmsc_muk(&u.impi, true), &bu2.btid),
        bmsc.add_recipient(bm2.bmsc_muk(&m.impi, false), &bm2.btid),
    );
    check("MSK with the new MUK", pair(&mut bmsc, u2, m2, false), &mut u.km, &mut m.km, "ok");
    check(
        "pull, expired MUK no longer last used",
        pair(&mut bmsc, u1, m1, true),
        &mut u.km,
        &mut m.km,
        "MukExpired",
    );
    check("pull, new MUK", pair(&mut bmsc, u2, m2, true), &mut u.km, &mut m.km, "ok");
}

/// One UE of the UDP test: listener, key management, SRTP receiver, its MSK message, its recipient.
type UdpUe<'a> =
    (&'a mut MikeyListener, &'a mut dyn MbmsKeyManagement, &'a mut MbmsReceiver, &'a Vec<u8>, usize);

/// MIKEY over UDP on 127.0.0.1, malformed datagrams interleaved, verification messages back to the
/// BM-SC; the MTKs reach the SRTP receivers of both paths.
#[test]
fn mikey_over_udp_with_malformed_datagrams() {
    let mut u = uicc_ue(emulator());
    let mut m = me_ue(emulator());
    let bu = u.gba(1, LIFETIME);
    let bm = m.gba(1, LIFETIME);
    let mut bmsc = bmsc(MskTimestamps::Counter, true);
    let ru = bmsc.add_recipient(bu.bmsc_muk(&u.impi, true), &bu.btid);
    let rm = bmsc.add_recipient(bm.bmsc_muk(&m.impi, false), &bm.btid);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lu = MikeyListener::bind("127.0.0.1:0").unwrap();
    let mut lm = MikeyListener::bind("127.0.0.1:0").unwrap();
    assert!(MikeyListener::bind("0.0.0.0:0").is_err(), "loopback only");
    let (mut rx_u, mut rx_m) = (receiver(&bmsc), receiver(&bmsc));

    bmsc.rotate_msk();
    let (mu, mm) = (bmsc.msk_message(ru).unwrap(), bmsc.msk_message(rm).unwrap());
    let mtk1 = bmsc.next_mtk_message().unwrap();
    let mut forged = bmsc.next_mtk_message().unwrap();
    let n = forged.len();
    forged[n - 2] ^= 0xFF;
    let mtk3 = bmsc.next_mtk_message().unwrap();
    let junk: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![],
        vec![0x01],
        mu[..mu.len() / 2].to_vec(),
        vec![0xFF; 300],
    ];
    let datagrams = |msk: &[u8]| -> Vec<Vec<u8>> {
        vec![
            junk[0].clone(),
            msk.to_vec(),
            junk[1].clone(),
            mtk1.clone(),
            junk[2].clone(),
            forged.clone(),
            junk[3].clone(),
            mtk1.clone(),
            junk[4].clone(),
            mtk3.clone(),
        ]
    };
    let mut mtks: Vec<Vec<MtkOutcome>> = vec![Vec::new(), Vec::new()];
    let ues: [UdpUe<'_>; 2] =
        [(&mut lu, &mut u.km, &mut rx_u, &mu, ru), (&mut lm, &mut m.km, &mut rx_m, &mm, rm)];
    for (i, (listener, km, rx, msk, recipient)) in ues.into_iter().enumerate() {
        let to = listener.local_addr().unwrap();
        let sent = datagrams(msk);
        for d in &sent {
            socket.send_to(d, to).unwrap();
        }
        let mut verification = None;
        for _ in 0..sent.len() {
            match listener.receive_into(km, rx, Some(Duration::from_secs(5))).unwrap().expect("datagram") {
                MikeyEvent::Mtk(o) => mtks[i].push(o),
                MikeyEvent::Msk(o) => verification = o.verification().map(<[u8]>::to_vec),
                MikeyEvent::Refused { error, .. } => assert!(error.is_refusal(), "{error}"),
                MikeyEvent::Malformed { .. } => {}
            }
        }
        assert!(listener.receive(km, Some(Duration::from_millis(50))).unwrap().is_none());
        let s = listener.stats();
        assert_eq!(
            (s.datagrams, s.malformed, s.msk_accepted, s.mtk_accepted, s.refused, s.verifications_sent),
            (10, 5, 1, 2, 2, 1),
            "path {i}: {s:?}"
        );
        // The verification message came back to the BM-SC's socket and verifies there.
        let mut buf = [0u8; 1024];
        let (len, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(from, to);
        assert_eq!(Some(buf[..len].to_vec()), verification);
        bmsc.check_verification(recipient, msk, &buf[..len]).unwrap();
    }
    for (a, b) in mtks[0].iter().zip(&mtks[1]) {
        assert_eq!((a.mtk_id, a.mtk.as_bytes()), (b.mtk_id, b.mtk.as_bytes()));
    }
    assert_eq!(mtks[0].len(), 2);
    let (srtp, rtp) = bmsc.next_srtp_packet().unwrap();
    for rx in [&mut rx_u, &mut rx_m] {
        let mut p = srtp.clone();
        rx.unprotect(STREAM, &mut p).unwrap();
        assert_eq!(p, rtp);
    }
}

/// Architecture: in the UICC path no Ks, MUK or MSK byte crosses the APDU interface. Positive
/// controls: Ks_ext_NAF and the MTK do cross it, and the search finds them.
#[test]
fn uicc_path_keeps_ks_muk_and_msk_on_the_card() {
    let trace = MemoryTrace::new();
    let reader = Traced::new(emulator()).with_sink(trace.clone());
    let mut u = uicc_ue(reader);
    let b = u.gba(1, LIFETIME);
    let mut bmsc = bmsc(MskTimestamps::Counter, true);
    let muk = b.bmsc_muk(&u.impi, true);
    let r = bmsc.add_recipient(muk.clone(), &b.btid);
    let msk_id = bmsc.rotate_msk();
    u.km.msk_update(&bmsc.msk_message(r).unwrap()).unwrap();
    u.km.msk_update(&bmsc.solicited_pull(r).unwrap()).unwrap();
    let mtk = u.km.mtk_generate(&bmsc.next_mtk_message().unwrap()).unwrap();

    let wire: Vec<Vec<u8>> = trace.exchanges().into_iter().flat_map(|e| [e.command, e.response]).collect();
    let crosses =
        |secret: &[u8]| secret.windows(8).any(|w| wire.iter().any(|x| x.windows(8).any(|y| y == w)));
    let ks = b.av.ks();
    assert!(!crosses(ks.expose()), "Ks crossed the APDU interface");
    assert!(!crosses(&ks.expose()[..16]) && !crosses(&ks.expose()[16..]), "CK or IK crossed");
    assert!(!crosses(muk.as_bytes()), "the MUK (Ks_int_NAF) crossed");
    assert!(!crosses(bmsc.msk(msk_id).unwrap().as_bytes()), "the MSK crossed");
    assert!(crosses(b.ks_naf(&u.impi).expose()), "control: Ks_ext_NAF goes to the ME");
    assert!(crosses(mtk.mtk.as_bytes()), "control: the MTK goes to the ME");
    drop(u);
}

/// The path choice follows EF.UST (the forced path is covered above), and a card reached
/// through `Card::with_session` (here: reset from outside) keeps working.
#[test]
fn path_choice_and_shared_card() {
    let card: Card<Emulator> = card(emulator());
    assert_eq!(choose_path(&card, None).unwrap(), KeyManagementPath::UiccBased);
    let n = card.with_session(|s| s.apdu_count()).unwrap();
    assert!(n > 0);
    // A reset from outside: the ME re-selects what it needs.
    card.with_session(|s| s.reader_mut().reset().map(drop)).unwrap().unwrap();
    card.verify_pin(PIN).unwrap();
    assert!(card.usim_service_table().unwrap().has(69));
}
