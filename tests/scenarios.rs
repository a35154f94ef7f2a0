//! The MBMS security scenarios of TS 33.246 §6 end to end: a BSF (TS 33.220), a BM-SC and a UE on
//! an emulated card, over real HTTP and UDP on loopback, each scenario on both key-management
//! paths (UICC-based with GBA_U, ME-based with GBA_ME).
//!
//! What is checked comes from outside the UE: the media against the test signal the BM-SC encodes
//! (`network::bmsc_stream::test_signal_frame`) and a SHA-256 over it, the BM-SC's and BSF's own
//! records (registrations, B-TIDs, verification messages it checked), the datagrams a relay on the
//! path saw, the card's EF.MUK / EF.MSK read over APDUs (TS 31.102 §4.2.80–81) and the ME key
//! store file read back from disk.

#[path = "support/scenario.rs"]
mod scenario;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use me::KeyManagementPath;
use me::key_store::CardChange;
use mikey::mbms::{parse_msk_message, parse_mtk_message};
use network::bsf::{DEFAULT_KEY_LIFETIME, Subscriber};
use scenario::{FQDN, Options, SERVICE, World, other_profile, sleep_past, unix_now};
use sim_reader::Emulator;

/// GBA key lifetime of the scenarios where the keys run out during the service.
const SHORT_LIFETIME: Duration = Duration::from_secs(3);

/// One `#[test]` per key-management path for a scenario `fn(KeyManagementPath)`.
macro_rules! on_both_paths {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn uicc_based() {
                super::$scenario(me::KeyManagementPath::UiccBased);
            }
            #[test]
            fn me_based() {
                super::$scenario(me::KeyManagementPath::MeBased);
            }
        }
    )*};
}

on_both_paths!(
    msk_rotation_mid_stream,
    missed_msk_update,
    gba_key_expiry_during_service,
    solicited_pull_with_expired_muk,
    different_uicc_inserted,
    me_power_cycle,
    replayed_mikey_message,
    tampered_srtp_packet,
    unknown_btid_at_bmsc,
);

/// Unix seconds of a MIKEY NTP-UTC timestamp (RFC 3830 §6.6; era 0).
fn ntp_unix(ts: mikey::Timestamp) -> u64 {
    match ts {
        mikey::Timestamp::NtpUtc(v) => (v >> 32) - mikey::NTP_UNIX_OFFSET,
        other => panic!("NTP-UTC timestamp expected, got {other:?}"),
    }
}

/// Whether the last successfully used MUK the UE keeps for the BM-SC is the one of `btid`: EF.MUK
/// names it on the card; the ME key store marks it (TS 33.246 §6.1 as changed by CR 027).
fn last_used_muk_is(w: &World, btid: &str) -> bool {
    match w.path {
        KeyManagementPath::UiccBased => {
            let muks = w.card_muks();
            muks.len() == 1 && muks[0].idr == btid && muks[0].idi == FQDN
        }
        KeyManagementPath::MeBased => {
            let store = w.store_on_disk();
            let last: Vec<_> = store.muks().iter().filter(|m| m.last_used).collect();
            last.len() == 1 && last[0].idr == btid.as_bytes() && last[0].idi == FQDN.as_bytes()
        }
    }
}

/// MSK rotation mid-stream (TS 33.246 §6.3.2.3.1 push, §6.3.2.1 two MSKs per Key Group, §6.3.3
/// MTK): the BM-SC rotates the MSK while media under the old MTK is still flowing; the push is
/// verified (the BM-SC checks the verification message), the next MTK is under the new MSK, and
/// every packet before and after decrypts to the source frame. Twice, so the oldest MSK goes.
fn msk_rotation_mid_stream(path: KeyManagementPath) {
    let mut w = World::start(path);
    w.join();
    let m1 = w.bmsc.current_msk_id(SERVICE).unwrap();
    assert_eq!(w.held_msk_ids(), vec![m1.0]);
    w.media(10);
    let before = w.ue.stats();
    let verified = w.bmsc.stats().verifications_ok;
    let mut held = vec![m1.0];
    for round in 1..=2u64 {
        let new = w.bmsc.rotate_msk(SERVICE).unwrap();
        assert!(!held.contains(&new.0));
        // The push and 10 packets under the current MTK are in flight together.
        w.bmsc.send_media(SERVICE, 10).unwrap();
        let media_sent = w.bmsc.stats().media_packets;
        w.poll_until("rotated MSK and the media around it", |s| {
            s.msk_count == before.msk_count + round && s.packets_decrypted == media_sent
        });
        w.wait_bmsc("verification of the rotated MSK", |b| b.verifications_ok == verified + round);
        w.mtk();
        assert_eq!(w.msk_id_in_use(), new.0, "the MTK is under the new MSK");
        w.media(10);
        held.push(new.0);
        if held.len() > 2 {
            held.remove(0);
        }
        assert_eq!(w.held_msk_ids(), held, "two MSKs per Key Group, the older deleted");
    }
    let d = w.ue.stats().since(&before);
    assert_eq!((d.packets_received, d.packets_decrypted, d.packets_failed), (40, 40, 0), "{d:?}");
    assert_eq!((d.msk_count, d.mtk_count, d.mikey_dropped, d.basic_msk_requests), (2, 2, 0, 0), "{d:?}");
    w.check_all_media();
}

/// A missed key update (TS 33.246 §6.3.2.2.3 as changed by CR 021, §6.3.2.2.1): the MSK push of a
/// rotation is lost on the way; the MTK message then names an MSK ID the UE lacks, so it runs a
/// basic MSK request for it over HTTP, the BM-SC pushes it, and the waiting MTK message is used.
fn missed_msk_update(path: KeyManagementPath) {
    let mut w = World::start(path);
    w.join();
    w.media(5);
    let (before, bm) = (w.ue.stats(), w.bmsc.stats());
    w.mikey.drop_next_msk_messages(1);
    let m2 = w.bmsc.rotate_msk(SERVICE).unwrap();
    let deadline = Instant::now() + scenario::WAIT;
    while w.mikey.dropped().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let lost = w.mikey.dropped();
    assert_eq!(lost.len(), 1, "the BM-SC's push was lost on the path");
    assert_eq!(parse_msk_message(&lost[0]).unwrap().msk_id(), m2);
    // Media under the old MTK goes on meanwhile.
    w.media(5);
    assert_eq!(w.ue.stats().msk_count, before.msk_count, "nothing of the lost push arrived");
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK under the missed MSK", |s| s.mtk_count == before.mtk_count + 1);
    let d = w.ue.stats().since(&before);
    assert_eq!((d.basic_msk_requests, d.msk_count, d.mtk_count), (1, 1, 1), "{d:?}");
    assert_eq!((d.rebootstraps, d.mikey_dropped, d.network_errors), (0, 0, 0), "{d:?}");
    let b = w.bmsc.stats();
    assert_eq!(b.msk_requests, bm.msk_requests + 1, "one basic MSK request at the BM-SC");
    assert_eq!(b.msk_pushes, bm.msk_pushes + 2, "the lost push and the requested one");
    assert_eq!(w.msk_id_in_use(), m2.0);
    assert!(w.held_msk_ids().contains(&m2.0));
    w.media(5);
    w.check_all_media();
}

/// GBA key expiry during the service (TS 33.246 §6.1, TS 33.220 §4.5.3): with a 3 s key lifetime
/// the UE bootstraps again on its own (new B-TID, new MUK), registers again, and the BM-SC's next
/// MSK push is under the new MUK (IDr = the new B-TID) and verified with it (the BM-SC checks the
/// verification message). Media keeps decrypting across.
fn gba_key_expiry_during_service(path: KeyManagementPath) {
    let mut w = World::with(path, Options { key_lifetime: Some(SHORT_LIFETIME), ..Options::default() });
    let first = w.join();
    // Later bootstraps get a day: one renewal is seen.
    w.bsf.set_key_lifetime(DEFAULT_KEY_LIFETIME);
    let expires = w.bsf.session(&first).unwrap().expires;
    assert!(expires <= unix_now() + SHORT_LIFETIME.as_secs());
    w.media(5);
    let (before, bm) = (w.ue.stats(), w.bmsc.stats());
    assert_eq!(before.rebootstraps, 1, "only the first bootstrap so far");
    w.bmsc.send_media(SERVICE, 5).unwrap();
    w.ue.poll_until(Instant::now() + SHORT_LIFETIME + scenario::WAIT, |s| {
        s.rebootstraps == before.rebootstraps + 1
            && s.msk_count == before.msk_count + 1
            && s.packets_decrypted == before.packets_decrypted + 5
    })
    .unwrap();
    assert!(unix_now() >= expires, "renewed only once the lifetime was over");
    let second = w.btid();
    assert_ne!(second, first);
    assert!(w.bsf.session(&second).unwrap().expires > unix_now() + 3600);
    assert_eq!(w.bmsc.registered(&second), vec![SERVICE.to_owned()]);
    assert!(w.bmsc.registered(&first).is_empty(), "the registration moved to the new B-TID");
    let push = w.mikey.seen().into_iter().rev().find(|d| parse_msk_message(d).is_ok()).unwrap();
    assert_eq!(parse_msk_message(&push).unwrap().idr().data, second.as_bytes(), "pushed under the new MUK");
    w.wait_bmsc("verification under the new MUK", |b| b.verifications_ok == bm.verifications_ok + 1);
    assert!(last_used_muk_is(&w, &second));
    w.media(5);
    // The next rotation's push is under the new MUK too, and verified with it.
    let m2 = w.bmsc.rotate_msk(SERVICE).unwrap();
    w.poll_until("rotated MSK under the new MUK", |s| s.msk_count == before.msk_count + 2);
    w.wait_bmsc("verification of the rotated MSK", |b| b.verifications_ok == bm.verifications_ok + 2);
    w.mtk();
    assert_eq!(w.msk_id_in_use(), m2.0);
    w.media(5);
    let d = w.ue.stats().since(&before);
    assert_eq!((d.mikey_dropped, d.packets_failed, d.network_errors), (0, 0, 0), "{d:?}");
    w.check_all_media();
}

/// Solicited pull with an expired MUK (TS 33.246 §6.3.2.2.4 and §6.1 as changed by CR 021 and
/// CR 027): after the MUK's GBA key lifetime the BM-SC sends an MSK ID 0 solicited pull under
/// that last MUK; the UE accepts it for that purpose only (card: the MUK EF.MUK names; ME: the
/// key store's last used MUK) and runs a basic MSK request, with a fresh bootstrap since the GBA
/// keys expired. A normal MSK message under the same expired MUK is refused.
fn solicited_pull_with_expired_muk(path: KeyManagementPath) {
    let mut w = World::with(path, Options { key_lifetime: Some(SHORT_LIFETIME), ..Options::default() });
    let first = w.join();
    w.bsf.set_key_lifetime(DEFAULT_KEY_LIFETIME);
    w.media(5);
    assert!(last_used_muk_is(&w, &first));
    let expires = w.bsf.session(&first).unwrap().expires;
    // The UE is not polled while its keys run out; then the BM-SC uses the last MUK it has.
    sleep_past(expires);
    let (before, bm) = (w.ue.stats(), w.bmsc.stats());
    assert_eq!(before.rebootstraps, 1, "only the first bootstrap so far");
    let seen = w.mikey.seen().len();
    assert_eq!(w.bmsc.push_msks(&first).unwrap(), 1);
    assert_eq!(w.bmsc.solicited_pull(&first).unwrap(), 1);
    let deadline = Instant::now() + scenario::WAIT;
    while w.mikey.seen().len() < seen + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = w.mikey.seen();
    let (msk, pull) = (parse_msk_message(&sent[seen]).unwrap(), parse_msk_message(&sent[seen + 1]).unwrap());
    assert!(!msk.is_solicited_pull() && pull.is_solicited_pull());
    for m in [&msk, &pull] {
        assert_eq!(m.idr().data, first.as_bytes(), "under the expired MUK");
        assert!(ntp_unix(m.timestamp()) > expires, "stamped after the key lifetime");
    }
    w.poll_until("solicited pull answered", |s| {
        s.solicited_pulls == before.solicited_pulls + 1
            && s.mikey_dropped == before.mikey_dropped + 1
            && s.msk_count == before.msk_count + 2
    });
    let d = w.ue.stats().since(&before);
    assert_eq!((d.basic_msk_requests, d.rebootstraps, d.network_errors), (1, 1, 0), "{d:?}");
    assert_eq!(d.mikey_received, 4, "expired MSK message, pull, and the two pushes under the new MUK");
    let b = w.bmsc.stats();
    assert_eq!((b.solicited_pulls, b.msk_requests), (bm.solicited_pulls + 1, bm.msk_requests + 1));
    let second = w.btid();
    assert_ne!(second, first);
    assert_eq!(w.bmsc.registered(&second), vec![SERVICE.to_owned()]);
    w.wait_bmsc("the MSKs verified under the new MUK", |b| b.verifications_ok == bm.verifications_ok + 2);
    assert!(last_used_muk_is(&w, &second));
    w.mtk();
    w.media(5);
    w.check_all_media();
}

/// A different UICC inserted (TS 33.246 §6.1 as changed by CR 001): every MBMS key of the ME is
/// deleted (the key store file holds none, bound to the new ICCID); the old card's MSK push, which
/// the BM-SC still sends, verifies no more; the UE bootstraps with the new card (another
/// subscriber of the BSF), registers and decrypts media again.
fn different_uicc_inserted(path: KeyManagementPath) {
    let mut w = World::with(path, Options { keep_keys: true, ..Options::default() });
    let old = w.join();
    w.media(5);
    let store = w.store_on_disk();
    assert_eq!(store.iccid(), Some(w.profile.iccid()));
    if path == KeyManagementPath::MeBased {
        assert!(store.muk(FQDN.as_bytes(), old.as_bytes()).is_some());
        assert!(!store.mrks().is_empty() && !store.msks().is_empty() && !store.mtks().is_empty());
    } else {
        assert!(store.is_empty(), "UICC-based: the ME keeps no MBMS key");
    }
    let other = other_profile();
    assert_ne!(
        (other.iccid(), other.imsi(), other.k()),
        (w.profile.iccid(), w.profile.imsi(), w.profile.k())
    );
    w.bsf.add_subscriber(Subscriber::from_profile_toml(&other.to_toml()).unwrap());
    let report = w.ue.insert_card(Emulator::new(&other).unwrap()).unwrap();
    assert_eq!((report.change, report.iccid.as_str()), (CardChange::DifferentCard, other.iccid()));
    let store = w.store_on_disk();
    assert_eq!(store.iccid(), Some(other.iccid()));
    assert!(store.is_empty(), "{path}: no MBMS key of the old card left in the file");
    assert!(w.ue.registered().is_empty() && w.ue.btid().is_none());

    let before = w.ue.stats();
    assert_eq!(w.bmsc.push_msks(&old).unwrap(), 1, "the BM-SC still serves the old B-TID");
    w.poll_until("the old card's MSK push", |s| s.mikey_received == before.mikey_received + 1);
    let d = w.ue.stats().since(&before);
    assert_eq!((d.mikey_dropped, d.msk_count, d.verifications_sent), (1, 0, 0), "{d:?}");

    let new = w.join();
    assert_ne!(new, old);
    assert_eq!(w.bsf.session(&new).unwrap().impi, other.impi(), "bootstrapped with the new card");
    if path == KeyManagementPath::MeBased {
        let store = w.store_on_disk();
        assert!(store.muks().iter().all(|m| m.idr == new.as_bytes()));
        assert!(store.mrks().iter().all(|m| m.idr == new.as_bytes()));
    } else {
        assert!(last_used_muk_is(&w, &new));
    }
    w.media(5);
    w.check_all_media();
}

/// ME power cycle (TS 33.246 §6.1 as changed by CR 001 and CR 027), keys kept and keys dropped:
/// ME-based, the key store file keeps MRK, MSK and MTK only when configured, and the last used MUK
/// always; UICC-based, the card keeps its keys and the ME none. The kept MTK decrypts at once; a
/// solicited pull under the last MUK verifies in every case (that is why the MUK is kept), and
/// its basic MSK request needs a new bootstrap only when the ME dropped MRK with Ks gone.
fn me_power_cycle(path: KeyManagementPath) {
    for keep in [false, true] {
        power_cycle_keeping(path, keep);
    }
}

fn power_cycle_keeping(path: KeyManagementPath, keep: bool) {
    let mut w = World::with(path, Options { keep_keys: keep, ..Options::default() });
    let btid = w.join();
    w.media(5);
    let msk = w.bmsc.current_msk_id(SERVICE).unwrap();
    let before = w.ue.stats();
    let report = w.ue.power_cycle().unwrap();
    assert_eq!(report.change, CardChange::SameCard);
    let store = w.store_on_disk();
    let muk = store.muk(FQDN.as_bytes(), btid.as_bytes());
    let me_based = path == KeyManagementPath::MeBased;
    match (me_based, keep) {
        (true, false) => {
            assert_eq!(store.muks().len(), 1, "only the last used MUK");
            assert!(muk.is_some_and(|m| m.last_used));
            assert!(store.mrks().is_empty() && store.msks().is_empty() && store.mtks().is_empty());
            assert!(!report.bootstrap_kept);
        }
        (true, true) => {
            assert!(muk.is_some_and(|m| m.last_used));
            assert!(store.mrks().iter().any(|m| m.idr == btid.as_bytes()));
            assert_eq!(store.msks().iter().map(|m| m.msk_id).collect::<Vec<_>>(), vec![msk]);
            assert_eq!(store.mtks().len(), 1);
            assert!(report.bootstrap_kept);
        }
        (false, _) => {
            assert!(store.is_empty(), "UICC-based: the ME keeps no MBMS key");
            assert!(report.bootstrap_kept, "GBA_U keys stay on the card");
            assert_eq!(w.held_msk_ids(), vec![msk.0], "the MSK stays on the card");
            assert!(last_used_muk_is(&w, &btid));
        }
    }
    let dropped = me_based && !keep;
    if me_based && keep {
        // The kept MTK goes back into the SRTP receiver: media decrypts at once.
        w.media(5);
    }
    // The BM-SC re-keys with a solicited pull under the UE's last MUK: only the kept MUK verifies
    // it. The basic MSK request that follows needs a new bootstrap when the ME dropped its keys.
    let bm = w.bmsc.stats();
    assert_eq!(w.bmsc.solicited_pull(&btid).unwrap(), 1);
    let msks = if dropped { 2 } else { 1 };
    w.poll_until("solicited pull after power-on", |s| {
        s.solicited_pulls == before.solicited_pulls + 1 && s.msk_count == before.msk_count + msks
    });
    w.mtk();
    let d = w.ue.stats().since(&before);
    assert_eq!((d.basic_msk_requests, d.rebootstraps), (1, u64::from(dropped)), "keep {keep}: {d:?}");
    assert_eq!((d.mikey_dropped, d.network_errors), (0, 0), "keep {keep}: {d:?}");
    assert_eq!(w.bmsc.stats().msk_requests, bm.msk_requests + 1);
    if !dropped {
        assert_eq!(w.btid(), btid, "keep {keep}: the bootstrap survived");
    }
    assert_eq!(w.bmsc.registered(&w.btid()), vec![SERVICE.to_owned()]);
    w.media(5);
    w.check_all_media();
}

/// A replayed MIKEY message (TS 33.246 §6.3.2 / RFC 3830 §5.4 replay protection; MGV-F §6.3.3):
/// the MSK message and the MTK message the relay captured on their way to the UE, sent again from
/// elsewhere and through the path, are refused and counted; no verification message goes out, and
/// what the UE stores (card EF.MUK / EF.MSK, the ME key store file) does not change. The next
/// genuine messages are still taken.
fn replayed_mikey_message(path: KeyManagementPath) {
    let mut w = World::start(path);
    let btid = w.join();
    w.media(3);
    let seen = w.mikey.seen();
    let msk_message = seen.iter().find(|d| parse_msk_message(d).is_ok()).unwrap().clone();
    let mtk_message = seen.iter().rev().find(|d| parse_mtk_message(d).is_ok()).unwrap().clone();
    let state = w.stored_state();
    let mkis = w.ue.receiver().mkis(0).unwrap();
    let (before, bm) = (w.ue.stats(), w.bmsc.stats());
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.send_to(&msk_message, w.ue.mikey_addr()).unwrap();
    attacker.send_to(&mtk_message, w.ue.mikey_addr()).unwrap();
    w.mikey.send_to_ue(&msk_message);
    w.mikey.send_to_ue(&mtk_message);
    w.poll_until("replays", |s| s.mikey_received == before.mikey_received + 4);
    let d = w.ue.stats().since(&before);
    assert_eq!(d.mikey_dropped, 4, "{d:?}");
    assert_eq!((d.msk_count, d.mtk_count, d.verifications_sent, d.basic_msk_requests), (0, 0, 0, 0), "{d:?}");
    assert_eq!(w.stored_state(), state, "stored keys and counters unchanged");
    assert_eq!(w.ue.receiver().mkis(0).unwrap(), mkis);
    let b = w.bmsc.stats();
    assert_eq!((b.verifications_ok, b.verifications_bad), (bm.verifications_ok, bm.verifications_bad));
    w.media(3);

    // Genuine traffic goes on; the old MSK message is still refused after a newer one.
    assert_eq!(w.bmsc.push_msks(&btid).unwrap(), 1);
    w.poll_until("a new MSK message", |s| s.msk_count == before.msk_count + 1);
    w.mtk();
    let before = w.ue.stats();
    attacker.send_to(&msk_message, w.ue.mikey_addr()).unwrap();
    w.poll_until("replay after a newer message", |s| s.mikey_received == before.mikey_received + 1);
    assert_eq!(w.ue.stats().since(&before).mikey_dropped, 1);
    w.media(3);
    w.check_all_media();
}

/// A tampered SRTP packet (RFC 3711 §3.3 authentication; TS 33.246 §6.6): the relay holds the
/// media back; a bit flipped in the payload, the authentication tag, the RTP header or the MKI
/// makes the UE refuse that packet (counted); the genuine packets, delivered after each forgery,
/// and every later one decrypt.
fn tampered_srtp_packet(path: KeyManagementPath) {
    let mut w = World::start(path);
    w.join();
    w.media(4);
    w.media.hold(true);
    w.bmsc.send_media(SERVICE, 10).unwrap();
    let packets = w.media.take_held(10);
    let before = w.ue.stats();
    let mki_len = mikey::mbms::profile::MKI_LEN;
    let tag_len = 10; // HMAC-SHA1-80
    for (i, packet) in packets.iter().enumerate() {
        let flip = match i {
            1 => Some(12 + 40),                          // encrypted payload
            3 => Some(packet.len() - 1),                 // authentication tag
            5 => Some(3),                                // RTP sequence number
            7 => Some(packet.len() - tag_len - mki_len), // MKI
            _ => None,
        };
        if let Some(at) = flip {
            let mut forged = packet.clone();
            forged[at] ^= 0x01;
            w.media.send_to_ue(&forged);
        }
        w.media.send_to_ue(packet);
    }
    // The forged MKI names no MTK the UE holds: it waits up to me::ue::UNKEYED_PACKET_HOLD for
    // an MTK message before it is refused.
    w.poll_until("forged and genuine packets", |s| {
        s.packets_received == before.packets_received + 14 && s.packets_failed >= before.packets_failed + 4
    });
    let d = w.ue.stats().since(&before);
    assert_eq!((d.packets_failed, d.packets_decrypted, d.packets_unkeyed), (4, 10, 1), "{d:?}");
    assert_eq!((d.mikey_received, d.mtk_count), (0, 0));
    w.media.hold(false);
    w.media(5);
    w.check_all_media();
}

/// An unknown B-TID at the BM-SC (TS 33.246 §6.2.1, TS 24.109 §5.3.2, TS 33.220 §4.5.3): the BSF's
/// bootstrapping has ended and the BM-SC has forgotten the B-TID with its registration. The next
/// MTK message names an MSK the UE lacks; its basic MSK request is answered 401 again (Zn refuses
/// the B-TID), so the UE bootstraps again, registers the new B-TID and gets the MSK.
fn unknown_btid_at_bmsc(path: KeyManagementPath) {
    let mut w = World::start(path);
    let old = w.join();
    w.media(5);
    assert!(w.bsf.expire(&old));
    assert!(w.bmsc.expire_registration(&old));
    assert!(w.bmsc.registered(&old).is_empty());
    let (before, bm) = (w.ue.stats(), w.bmsc.stats());
    let m2 = w.bmsc.rotate_msk(SERVICE).unwrap();
    assert_eq!(w.bmsc.stats().msk_pushes, bm.msk_pushes, "nobody registered to push to");
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK after the re-bootstrap", |s| {
        s.mtk_count == before.mtk_count + 1 && s.msk_count == before.msk_count + 2
    });
    let d = w.ue.stats().since(&before);
    assert_eq!((d.rebootstraps, d.basic_msk_requests, d.network_errors), (1, 1, 0), "{d:?}");
    let b = w.bmsc.stats();
    assert_eq!(b.zn_queries, bm.zn_queries + 2, "the old B-TID, then the new one");
    assert_eq!(b.zn_failures, bm.zn_failures + 1, "the BSF no longer knows the old B-TID");
    assert!(b.challenges >= bm.challenges + 2, "401 to the first try and to the refused credentials");
    let new = w.btid();
    assert_ne!(new, old);
    assert_eq!(w.bsf.session(&new).unwrap().impi, w.profile.impi());
    assert_eq!(w.bmsc.registered(&new), vec![SERVICE.to_owned()]);
    assert_eq!(w.msk_id_in_use(), m2.0);
    assert!(last_used_muk_is(&w, &new));
    w.media(5);
    w.check_all_media();
}
