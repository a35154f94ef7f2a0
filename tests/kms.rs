//! The KMS (TS 33.328 Annexes A, B) over loopback HTTP, driven by hand: a GBA_ME subscriber
//! bootstrapped against the real BSF with RES from the `milenage` crate, and the NAF key of
//! NAF_Id = KMS FQDN ‖ (0x01,0x00,0x00,0x00,0x06) computed here with the GBA KDF of TS 33.220
//! Annex B written out over `hmac` + `sha2` (not with `gba`). The KMS must accept requests
//! protected with that key, refuse everything else with the right MIKEY error or HTTP status, and
//! keep its state unchanged when it refuses.

mod peers_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use mikey::ticket::exchange::{self as tx, Key128, PolicySpec, RequestInit, ResolveInit, TicketKeys};
use mikey::ticket::kms_uid;
use mikey::{DataType, Message, ntp_from_unix};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use network::kms::{ALLOWED_CLOCK_SKEW, Kms, KmsConfig, KmsUserPolicy};
use peers_support::{UA_ME, agent, me_profile};
use sha2::Sha256;
use sim_reader::CardProfile;
use wire::digest::{DigestAuthorization, DigestChallenge, DigestRequest};
use wire::ub::{AkaNonce, BootstrappingInfo};

const FQDN: &str = "kms.ims.mnc001.mcc001.3gppnetwork.org";

fn gba_kdf(key: &[u8], params: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&[0x01]);
    for p in params {
        mac.update(p);
        mac.update(&(p.len() as u16).to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// GBA_ME bootstrap over Ub with RES and Ks = CK ‖ IK from the milenage crate; returns the B-TID
/// and Ks_NAF for the KMS.
fn bootstrap(bsf: &Bsf, profile: &CardProfile) -> (String, [u8; 32]) {
    let get = DigestRequest { method: "GET", uri: "/", entity_body: b"" };
    let ub = |auth: &str| {
        let mut r =
            agent().get(&bsf.url()).header("User-Agent", UA_ME).header("Authorization", auth).call().unwrap();
        let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), www, r.body_mut().read_to_string().unwrap())
    };
    let initial = DigestAuthorization::initial(profile.impi(), &bsf.domain(), "/").to_header_value().unwrap();
    let (status, www, _) = ub(&initial);
    assert_eq!(status, 401);
    let ch = DigestChallenge::parse(&www.unwrap()).unwrap();
    let rand = AkaNonce::decode(&ch.nonce).unwrap().rand;
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let (res, ck, ik, _) = m.f2345(&rand);
    let answer = DigestAuthorization::answer(&ch, profile.impi(), &res, &get, "0a4f113b", 1);
    let (status, _, body) = ub(&answer.to_header_value().unwrap());
    assert_eq!(status, 200, "{body}");
    let btid = BootstrappingInfo::from_xml(&body).unwrap().btid;
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&ck);
    ks[16..].copy_from_slice(&ik);
    let mut naf_id = FQDN.as_bytes().to_vec();
    naf_id.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x06]);
    (btid, gba_kdf(&ks, &[b"gba-me", &rand, profile.impi().as_bytes(), &naf_id]))
}

fn setup(tune: impl FnOnce(&mut KmsConfig)) -> (Bsf, Kms, String, [u8; 32], String) {
    let p = me_profile();
    let sub = Subscriber::from_profile_toml(&format!("{}\ngba_type = \"GBA_ME\"\n", p.to_toml())).unwrap();
    let bsf = Bsf::start(BsfConfig { subscribers: vec![sub], ..BsfConfig::default() }).unwrap();
    let mut cfg = KmsConfig::new(FQDN, bsf.addr(), Some([9; 32]));
    tune(&mut cfg);
    let kms = Kms::start(cfg).unwrap();
    let (btid, key) = bootstrap(&bsf, &p);
    let uid = kms_uid(&p.impu()[0]).unwrap().to_owned();
    (bsf, kms, btid, key, uid)
}

fn post(kms: &Kms, request_type: &str, message: &[u8]) -> Vec<u8> {
    let mut r = agent()
        .post(&format!("{}/keymanagement?requesttype={request_type}", kms.url()))
        .header("Content-Type", "application/mikey")
        .send(B64.encode(message).as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "application/mikey");
    B64.decode(r.body_mut().read_to_vec().unwrap()).unwrap()
}

fn error_no(resp: &[u8]) -> Option<u8> {
    let m = Message::parse_ticket(resp).unwrap();
    (m.hdr().data_type == DataType::ERROR).then(|| m.error_no().unwrap().0)
}

/// Unix seconds now, moved by `offset` (the KMS's test clock is moved the same way).
fn unix_now(offset: i64) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    now.checked_add_signed(offset).unwrap()
}

/// A RAND no other message of this test process carries.
fn fresh_rand() -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut r = vec![0x42; 32];
    r[..4].copy_from_slice(&n.to_be_bytes());
    r
}

fn request(uid: &str, btid: &str, recipients: &[&str]) -> RequestInit {
    RequestInit {
        csb_id: 0x1234,
        t: ntp_from_unix(unix_now(0)),
        randri: fresh_rand(),
        initiator: uid.into(),
        kms: FQDN.into(),
        policy: PolicySpec::ims(FQDN, uid, recipients, true),
        psk_id: btid.into(),
    }
}

fn state(kms: &Kms) -> (u64, u64, usize) {
    let s = kms.stats();
    (s.tickets_issued, s.tickets_resolved, kms.cached_btids())
}

#[test]
fn request_and_resolve_with_the_independent_naf_key() {
    let (_bsf, kms, btid, key, uid) = setup(|_| {});
    let init = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    let resp = post(&kms, "ticketrequest", &init);
    assert_eq!(error_no(&resp), None);
    let grant = tx::open_request_resp(&resp, &init, &key).unwrap();
    let granted = grant.ticket.policy().unwrap();
    assert_eq!(granted.initiator.as_deref(), Some(uid.as_str()));
    assert_eq!(granted.kms.as_deref(), Some(FQDN));
    assert!(granted.flags.d && granted.flags.i && granted.flags.e && granted.flags.j);
    assert!(grant.ticket.as_ticket().unwrap().policy.is_3gpp());
    assert_eq!(kms.cached_btids(), 1);

    // The same user resolves its ticket (it is the allowed recipient): forked keys for its UID.
    let ti = tx::build_transfer_init(
        &tx::TransferInit {
            csb_id: 5,
            t: ntp_from_unix(1_700_000_001),
            randri: vec![1; 32],
            initiator: uid.clone(),
            responder: uid.clone(),
            ssrc: 1,
            ticket: grant.ticket.clone(),
        },
        &grant.mpki,
        &grant.mpkr,
    )
    .unwrap();
    let view = tx::read_transfer_init(&ti).unwrap();
    let ri = tx::build_resolve_init(
        &ResolveInit {
            csb_id: 6,
            t: ntp_from_unix(unix_now(0)),
            randrr: vec![2; 32],
            responder: uid.clone(),
            kms: FQDN.into(),
            ticket: view.ticket,
            psk_id: Some(btid.clone()),
        },
        Some(&key),
    )
    .unwrap();
    let rr = post(&kms, "ticketresolve", &ri);
    let g = tx::open_resolve_resp(&rr, &ri, Some(&key)).unwrap();
    assert_eq!(g.mpki.0, grant.mpki.0);
    let (mpkr_f, tgk_f) = tx::fork(grant.ticket.prf, &grant.mpkr, &grant.tgk, &uid, &g.randrkms).unwrap();
    assert_eq!((g.mpkr.0, g.tgk.0), (mpkr_f.0, tgk_f.0));
    assert_eq!(g.responder, uid);
    let s = kms.stats();
    assert_eq!((s.tickets_issued, s.tickets_resolved, s.zn_queries), (1, 1, 1), "the B-TID's keys were kept");
}

#[test]
fn http_errors_are_4xx_and_change_nothing() {
    let (_bsf, kms, ..) = setup(|_| {});
    let url = format!("{}/keymanagement?requesttype=ticketrequest", kms.url());
    let status = |r: ureq::http::Response<ureq::Body>| r.status().as_u16();
    assert_eq!(status(agent().get(&url).call().unwrap()), 405);
    assert_eq!(status(agent().post(&format!("{}/other", kms.url())).send(&b""[..]).unwrap()), 404);
    let send = |url: &str, ct: &str, body: &[u8]| {
        status(agent().post(url).header("Content-Type", ct).send(body).unwrap())
    };
    assert_eq!(send(&url, "application/xml", b"AAAA"), 415);
    assert_eq!(send(&url.replace("ticketrequest", "ticketupdate"), "application/mikey", b"AAAA"), 400);
    assert_eq!(send(&url, "application/mikey", b"%%%%"), 400);
    assert_eq!(send(&url, "application/mikey", &vec![b'A'; 64 * 1024]), 413);
    assert_eq!(kms.stats().http_errors, 6);
    assert_eq!(state(&kms), (0, 0, 0));
}

#[test]
fn mikey_refusals_change_nothing() {
    let (_bsf, kms, btid, key, uid) = setup(|c| {
        c.policy.allowed_recipients = vec!["?@ims.mnc001.mcc001.3gppnetwork.org".into()];
        c.policy.allow_mode3 = false;
    });
    // Garbage MIKEY, unknown B-TID, wrong key, foreign IDRi, IDRkms of another KMS, a recipient
    // the KMS policy does not allow.
    assert_eq!(error_no(&post(&kms, "ticketrequest", &[1, 11, 0, 0])), Some(12));
    let unknown =
        tx::build_request_init(&request(&uid, "AAAAAAAAAAAAAAAAAAAAAA==@bsf.example", &[&uid]), &key)
            .unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &unknown)), Some(0));
    let wrong_key = tx::build_request_init(&request(&uid, &btid, &[&uid]), &[0; 32]).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &wrong_key)), Some(0));
    let other = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
    let foreign = tx::build_request_init(&request(other, &btid, &[&uid]), &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &foreign)), Some(7));
    let mut r = request(&uid, &btid, &[&uid]);
    r.kms = "kms.elsewhere.example".into();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &tx::build_request_init(&r, &key).unwrap())), Some(7));
    let eve = tx::build_request_init(&request(&uid, &btid, &["eve@elsewhere.example"]), &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &eve)), Some(15));
    // A mode-3 ticket when the policy forbids them.
    let mut p3 = PolicySpec::ims(FQDN, &uid, &[&uid], false);
    p3.flags.d = false;
    let keys = TicketKeys { mpk: Key128([1; 16]), tgk: Key128([2; 16]) };
    let ticket = tx::issue_ticket(&p3, &key, &btid, &keys, &[3; 32], ntp_from_unix(1)).unwrap();
    let (mpki, mpkr) = tx::mpk_pair(&ticket, &keys.mpk).unwrap();
    let ti = tx::build_transfer_init(
        &tx::TransferInit {
            csb_id: 1,
            t: 1,
            randri: vec![1; 32],
            initiator: uid.clone(),
            responder: uid.clone(),
            ssrc: 1,
            ticket,
        },
        &mpki,
        &mpkr,
    )
    .unwrap();
    let ri = tx::build_resolve_init(
        &ResolveInit {
            csb_id: 2,
            t: ntp_from_unix(unix_now(0)),
            randrr: vec![2; 32],
            responder: uid.clone(),
            kms: FQDN.into(),
            ticket: tx::read_transfer_init(&ti).unwrap().ticket,
            psk_id: Some(btid.clone()),
        },
        Some(&key),
    )
    .unwrap();
    assert_eq!(error_no(&post(&kms, "ticketresolve", &ri)), Some(14));
    // An unprotected (Zk) resolve from a peer that is not trusted.
    let (zk, _) = tx::read_resolve_init(&ri).unwrap();
    let zk = tx::build_resolve_init(&ResolveInit { psk_id: None, ..zk }, None).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketresolve", &zk)), Some(0));
    assert_eq!(state(&kms), (0, 0, 0), "no refusal changes what the KMS keeps");
    assert_eq!(kms.stats().mikey_errors, 8);
}

/// B.1.2 step 7: the KMS grants a modified policy (no reuse, a shorter validity) and says so with
/// the K flag; the initiator sees the granted policy in the ticket.
#[test]
fn the_kms_modifies_the_requested_policy() {
    let (_bsf, kms, btid, key, uid) = setup(|c| {
        c.policy.allow_reuse = false;
        c.policy.max_lifetime = std::time::Duration::from_secs(600);
    });
    let mut r = request(&uid, &btid, &[&uid, "?@ims.mnc001.mcc001.3gppnetwork.org"]);
    r.policy.valid_to = Some(u64::from(u32::MAX) - mikey::NTP_UNIX_OFFSET);
    let init = tx::build_request_init(&r, &key).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key).unwrap();
    let p = grant.ticket.policy().unwrap();
    assert!(!p.flags.j && p.flags.k);
    let (from, to) = (p.valid_from.unwrap(), p.valid_to.unwrap());
    assert_eq!(to - from, 600);
    assert_eq!(p.recipients, vec![uid.clone(), "?@ims.mnc001.mcc001.3gppnetwork.org".to_string()]);
}

// ------------------------------------------------------------------------------------------------
// Replay protection (RFC 3830 §5.4): MIKEY error 1 (Invalid TS, RFC 3830 §6.12) for stale and
// replayed requests.

const INVALID_TS: Option<u8> = Some(1);

/// A RESOLVE_INIT_PSK of `uid` for the ticket of `grant` (sent to itself), with T = now + `offset`.
fn resolve_init(uid: &str, btid: &str, key: &[u8; 32], grant: &tx::RequestGrant, offset: i64) -> Vec<u8> {
    resolve_by_at(uid, (uid, btid, key), grant, offset)
}

#[test]
fn a_replayed_request_is_refused_and_a_fresh_one_still_served() {
    let (_bsf, kms, btid, key, uid) = setup(|_| {});
    let init = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &init)), None);
    assert_eq!(error_no(&post(&kms, "ticketrequest", &init)), INVALID_TS);
    let s = kms.stats();
    assert_eq!((s.tickets_issued, s.replays, s.mikey_errors), (1, 1, 1));
    // The same user with a fresh RAND: served.
    let fresh = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    let resp = post(&kms, "ticketrequest", &fresh);
    assert_eq!(error_no(&resp), None);
    tx::open_request_resp(&resp, &fresh, &key).unwrap();
    assert_eq!((kms.stats().tickets_issued, kms.replay_cache_len()), (2, 2));
}

#[test]
fn a_replayed_resolve_is_refused() {
    let (_bsf, kms, btid, key, uid) = setup(|_| {});
    let init = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key).unwrap();
    let ri = resolve_init(&uid, &btid, &key, &grant, 0);
    let rr = post(&kms, "ticketresolve", &ri);
    tx::open_resolve_resp(&rr, &ri, Some(&key)).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketresolve", &ri)), INVALID_TS);
    let s = kms.stats();
    assert_eq!((s.tickets_resolved, s.replays, s.mikey_errors), (1, 1, 1));
    // A new resolve of the same ticket (fresh T and RANDRr) is served.
    let again = resolve_init(&uid, &btid, &key, &grant, 0);
    assert_eq!(error_no(&post(&kms, "ticketresolve", &again)), None);
    assert_eq!(kms.stats().tickets_resolved, 2);
}

#[test]
fn timestamps_outside_the_skew_are_refused() {
    let (_bsf, kms, btid, key, uid) = setup(|_| {});
    let skew = ALLOWED_CLOCK_SKEW.as_secs() as i64;
    for offset in [-skew - 5, skew + 5] {
        let mut r = request(&uid, &btid, &[&uid]);
        r.t = ntp_from_unix(unix_now(offset));
        let init = tx::build_request_init(&r, &key).unwrap();
        assert_eq!(error_no(&post(&kms, "ticketrequest", &init)), INVALID_TS, "T off by {offset}s");
    }
    let s = kms.stats();
    assert_eq!((s.tickets_issued, s.stale_timestamps, s.replays), (0, 2, 0));
    assert_eq!(kms.replay_cache_len(), 0, "refused messages are not remembered");

    // A genuine request, replayed once the KMS clock has left its window: refused as stale; a
    // fresh request at the new time is served and the expired entry is dropped.
    let init = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key).unwrap();
    let ri = resolve_init(&uid, &btid, &key, &grant, 0);
    kms.advance_clock(skew + 10);
    assert_eq!(error_no(&post(&kms, "ticketrequest", &init)), INVALID_TS);
    assert_eq!(error_no(&post(&kms, "ticketresolve", &ri)), INVALID_TS);
    assert_eq!(kms.stats().stale_timestamps, 4);
    let mut r = request(&uid, &btid, &[&uid]);
    r.t = ntp_from_unix(unix_now(skew + 10));
    let init = tx::build_request_init(&r, &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &init)), None);
    assert_eq!((kms.stats().tickets_issued, kms.replay_cache_len()), (2, 1));
}

#[test]
fn a_forged_message_does_not_enter_the_replay_cache() {
    let (_bsf, kms, btid, key, uid) = setup(|_| {});
    let r = request(&uid, &btid, &[&uid]);
    // Same IDRpsk, T and RANDRi as the genuine request, MAC under a wrong key.
    let forged = tx::build_request_init(&r, &[0x55; 32]).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &forged)), Some(0));
    assert_eq!(kms.replay_cache_len(), 0);
    let genuine = tx::build_request_init(&r, &key).unwrap();
    let resp = post(&kms, "ticketrequest", &genuine);
    tx::open_request_resp(&resp, &genuine, &key).unwrap();
    assert_eq!((kms.stats().tickets_issued, kms.stats().replays), (1, 0));
}

/// A full cache refuses new requests rather than forgetting live ones; expired entries make room.
#[test]
fn a_full_replay_cache_refuses_until_entries_expire() {
    let (_bsf, kms, btid, key, uid) = setup(|c| c.replay_cache_max = 1);
    let first = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &first)), None);
    let second = tx::build_request_init(&request(&uid, &btid, &[&uid]), &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &second)), INVALID_TS);
    assert_eq!(kms.stats().replay_cache_full, 1);
    let skew = ALLOWED_CLOCK_SKEW.as_secs() as i64;
    kms.advance_clock(skew + 10);
    let mut r = request(&uid, &btid, &[&uid]);
    r.t = ntp_from_unix(unix_now(skew + 10));
    let third = tx::build_request_init(&r, &key).unwrap();
    assert_eq!(error_no(&post(&kms, "ticketrequest", &third)), None);
    assert_eq!((kms.stats().tickets_issued, kms.replay_cache_len()), (2, 1));
}

// ------------------------------------------------------------------------------------------------
// Per-user policy (TS 33.328 §5.4.3, B.1.2 step 7, B.2.2.2 step 6): first matching entry wins.

const DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";
const INVALID_ID: Option<u8> = Some(7);
const INVALID_TPPAR: Option<u8> = Some(15);

/// A second GBA_ME subscriber beside `me_profile()`.
fn user_b_profile() -> CardProfile {
    let mut f = me_profile().to_fields();
    f.imsi = "001010000000003".into();
    f.impi = format!("001010000000003@{DOMAIN}");
    f.impu = vec![format!("sip:001010000000003@{DOMAIN}")];
    f.k = "0f0e0d0c0b0a09080706050403020100".into();
    CardProfile::try_from(f).unwrap()
}

/// A bootstrapped user: B-TID, NAF key of the KMS, KMS UID.
type User = (String, [u8; 32], String);

/// A KMS whose BSF knows users A (`me_profile()`) and B.
fn setup_two(tune: impl FnOnce(&mut KmsConfig)) -> (Bsf, Kms, [User; 2]) {
    let profiles = [me_profile(), user_b_profile()];
    let subs = profiles
        .iter()
        .map(|p| Subscriber::from_profile_toml(&format!("{}\ngba_type = \"GBA_ME\"\n", p.to_toml())).unwrap())
        .collect();
    let bsf = Bsf::start(BsfConfig { subscribers: subs, ..BsfConfig::default() }).unwrap();
    let mut cfg = KmsConfig::new(FQDN, bsf.addr(), Some([9; 32]));
    tune(&mut cfg);
    let kms = Kms::start(cfg).unwrap();
    let users = profiles.map(|p| {
        let (btid, key) = bootstrap(&bsf, &p);
        (btid, key, kms_uid(&p.impu()[0]).unwrap().to_owned())
    });
    (bsf, kms, users)
}

fn group(name: &str) -> String {
    format!("{name}-?@{DOMAIN}")
}

/// The policies of the tests below: A may request for group X only (its own entry comes before
/// the catch-all that would allow group Y), B gets no reusable tickets and at most ten minutes,
/// and B may receive keys only from itself.
fn per_user(c: &mut KmsConfig) {
    let a = KmsUserPolicy {
        allowed_recipients: vec![group("x"), format!("001010000000003@{DOMAIN}")],
        ..KmsUserPolicy::new("001010000000002@?")
    };
    let b = KmsUserPolicy {
        allowed_initiators: vec![format!("001010000000003@{DOMAIN}")],
        allow_reuse: false,
        max_lifetime: std::time::Duration::from_secs(600),
        ..KmsUserPolicy::new(&format!("001010000000003@{DOMAIN}"))
    };
    let everyone = KmsUserPolicy { allowed_recipients: vec![group("y")], ..KmsUserPolicy::new("?") };
    c.policy.users = vec![a, b, everyone];
    c.policy.allowed_recipients = vec![];
}

#[test]
fn a_user_may_request_tickets_only_for_its_allowed_recipients() {
    let (_bsf, kms, [(btid, key, uid), ..]) = setup_two(per_user);
    let x = tx::build_request_init(&request(&uid, &btid, &[&group("x")]), &key).unwrap();
    let resp = post(&kms, "ticketrequest", &x);
    assert_eq!(error_no(&resp), None);
    let p = tx::open_request_resp(&resp, &x, &key).unwrap().ticket.policy().unwrap();
    assert_eq!(p.recipients, vec![group("x")]);
    assert!(p.flags.j && !p.flags.k, "A's entry allows reuse: the request is granted unchanged");
    let before = state(&kms);
    // Group Y (which only the catch-all entry after A's allows), and X together with Y.
    for recipients in [vec![group("y")], vec![group("x"), group("y")]] {
        let rs: Vec<&str> = recipients.iter().map(String::as_str).collect();
        let y = tx::build_request_init(&request(&uid, &btid, &rs), &key).unwrap();
        assert_eq!(error_no(&post(&kms, "ticketrequest", &y)), INVALID_TPPAR, "{recipients:?}");
    }
    assert_eq!(state(&kms), before, "a refused request changes nothing the KMS keeps");
    assert_eq!(kms.stats().mikey_errors, 2);
}

/// B.1.2 step 7: B's entry forbids reusable tickets and caps the lifetime: the KMS grants the
/// reduced policy and sets the K flag.
#[test]
fn a_user_without_reuse_gets_a_reduced_policy() {
    let (_bsf, kms, [(btid_a, key_a, uid_a), (btid, key, uid)]) = setup_two(per_user);
    let mut r = request(&uid, &btid, &[&uid]);
    assert!(r.policy.flags.j, "B asks for a reusable ticket");
    r.policy.valid_to = Some(unix_now(0) + 3000);
    let init = tx::build_request_init(&r, &key).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key).unwrap();
    let p = grant.ticket.policy().unwrap();
    assert!(!p.flags.j && p.flags.k);
    assert_eq!(p.valid_to.unwrap() - p.valid_from.unwrap(), 600);
    // The same request from A, whose entry allows reuse and an hour: granted unchanged.
    let mut r = request(&uid_a, &btid_a, &[&uid]);
    r.policy.valid_to = Some(unix_now(0) + 3000);
    let init = tx::build_request_init(&r, &key_a).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key_a).unwrap();
    let p = grant.ticket.policy().unwrap();
    assert!(p.flags.j && !p.flags.k);
    assert_eq!(kms.stats().tickets_issued, 2);
}

/// A RESOLVE_INIT_PSK by `responder` of a TRANSFER_INIT from `initiator` with `grant`'s ticket.
fn resolve_by(initiator: &str, responder: (&str, &str, &[u8; 32]), grant: &tx::RequestGrant) -> Vec<u8> {
    resolve_by_at(initiator, responder, grant, 0)
}

/// [`resolve_by`] with both timestamps at now + `offset`.
fn resolve_by_at(
    initiator: &str,
    responder: (&str, &str, &[u8; 32]),
    grant: &tx::RequestGrant,
    offset: i64,
) -> Vec<u8> {
    let (uid, btid, key) = responder;
    let ti = tx::build_transfer_init(
        &tx::TransferInit {
            csb_id: 5,
            t: ntp_from_unix(unix_now(offset)),
            randri: fresh_rand(),
            initiator: initiator.into(),
            responder: uid.into(),
            ssrc: 1,
            ticket: grant.ticket.clone(),
        },
        &grant.mpki,
        &grant.mpkr,
    )
    .unwrap();
    tx::build_resolve_init(
        &ResolveInit {
            csb_id: 6,
            t: ntp_from_unix(unix_now(offset)),
            randrr: fresh_rand(),
            responder: uid.into(),
            kms: FQDN.into(),
            ticket: tx::read_transfer_init(&ti).unwrap().ticket,
            psk_id: Some(btid.into()),
        },
        Some(key),
    )
    .unwrap()
}

/// B.2.2.2 step 6: B is an allowed recipient of A's ticket, but B's own policy bars keys from A:
/// a usage conflict, refused with Invalid ID and nothing kept; B still resolves its own tickets.
#[test]
fn a_barred_resolver_is_refused() {
    let (_bsf, kms, [(btid_a, key_a, uid_a), (btid_b, key_b, uid_b)]) = setup_two(per_user);
    let init = tx::build_request_init(&request(&uid_a, &btid_a, &[&uid_b]), &key_a).unwrap();
    let grant = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key_a).unwrap();
    assert_eq!(grant.ticket.policy().unwrap().recipients, vec![uid_b.clone()]);
    let before = state(&kms);
    assert_eq!(before, (1, 0, 1));
    let ri = resolve_by(&uid_a, (&uid_b, &btid_b, &key_b), &grant);
    assert_eq!(error_no(&post(&kms, "ticketresolve", &ri)), INVALID_ID);
    assert_eq!(state(&kms), before, "B's keys are not kept after the refusal");
    let s = kms.stats();
    assert_eq!((s.resolve_requests, s.tickets_resolved, s.mikey_errors), (1, 0, 1));
    // B's own ticket (initiator B, an allowed initiator for B) resolves.
    let init = tx::build_request_init(&request(&uid_b, &btid_b, &[&uid_b]), &key_b).unwrap();
    let own = tx::open_request_resp(&post(&kms, "ticketrequest", &init), &init, &key_b).unwrap();
    let ri = resolve_by(&uid_b, (&uid_b, &btid_b, &key_b), &own);
    let rr = post(&kms, "ticketresolve", &ri);
    assert_eq!(error_no(&rr), None);
    let g = tx::open_resolve_resp(&rr, &ri, Some(&key_b)).unwrap();
    assert_eq!(g.mpki.0, own.mpki.0);
    assert_eq!(kms.stats().tickets_resolved, 1);
}
