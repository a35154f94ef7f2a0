//! The BM-SC of `network` (TS 33.246 §6.2–§6.3, TS 24.109 §5) end to end over real loopback
//! sockets, with the real `network::bsf::Bsf` behind Zn, a UE written here (ureq for HTTP, a
//! std UDP socket for MIKEY) and the emulated card where a key must come from a card.
//!
//! Independent sources:
//! - Python's `hashlib.md5` recomputing every Digest response and rspauth from the raw header
//!   text (RFC 2617 §3.2.2 / §3.2.3), and Python's `base64` for the password;
//! - a Python reader of MIKEY MSK / MTK / verification messages (RFC 3830 PRF, HMAC-SHA-1 MAC,
//!   AES-CM key data; the same oracle as mikey/tests/python_oracle.rs) that opens what the BM-SC
//!   pushes with the MUK computed independently;
//! - the `milenage` crate for RES / CK / IK and the GBA KDF (TS 33.220 Annex B) written out over
//!   `hmac` + `sha2` for Ks_NAF / Ks_ext_NAF / Ks_int_NAF and the ME-based MRK / MUK;
//! - the card: its Ks_ext_NAF (NAF Derivation Mode) is the MRK of the GBA_U UE, and its MSK
//!   Update mode accepts the pushed MSK message with the Ks_int_NAF it keeps (and answers the
//!   verification message that the BM-SC then checks).
//!
//! Without python3 the Python checks are skipped with a printed reason (they fail under
//! `KEYSIM_REQUIRE_ORACLES=1`).

mod peers_support;

use peers_support::{Card, TIMEOUT, UA_ME, UA_UICC, agent, me_profile};
use test_kit::independent::gba_kdf;
use test_kit::{DIGEST_ORACLE, MIKEY_ORACLE, field, python};

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use gba::{NafId, UaSecurityProtocolId};
use me::{BmscClient, BmscSession};
use mikey::mbms::{self, KeyDomainId, MskId};
use network::bmsc::{Bmsc, BmscConfig, BmscSchedule, BmscService};
use network::bmsc_stream::{mki, test_signal_frame};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sim_reader::CardProfile;
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest};
use wire::mbms_key_management::{
    self, DeregisterRequest, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
    RequestType,
};
use wire::ub::{AkaNonce, BootstrappingInfo};
use wire::zn::{self, GbaType};

const FQDN: &str = "bmsc.example.org";
const KEY_DOMAIN: KeyDomainId = KeyDomainId([0x00, 0xF1, 0x10]);
const SVC_A: &str = "urn:keysim:svc:a";
const SVC_B: &str = "urn:keysim:svc:b";

// ------------------------------------------------------------------------------------------------
// Oracles

/// The RFC 2617 request-digest Python computes for a sent Authorization header.
fn py_response(authorization: &str, password: &[u8], method: &str, body: &[u8]) -> Option<String> {
    python(DIGEST_ORACLE, &["response", authorization, &hex::encode(password), method, &hex::encode(body)])
}

/// The rspauth Python computes for a request's Authorization header and the response body.
fn py_rspauth(authorization: &str, password: &[u8], response_body: &[u8]) -> Option<String> {
    python(DIGEST_ORACLE, &["rspauth", authorization, &hex::encode(password), &hex::encode(response_body)])
}

/// (RES, CK, IK) of the `milenage` crate.
fn milenage(profile: &CardProfile, rand: &[u8; 16]) -> ([u8; 8], [u8; 16], [u8; 16]) {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let (res, ck, ik, _) = m.f2345(rand);
    (res, ck, ik)
}

fn ks(profile: &CardProfile, rand: &[u8; 16]) -> [u8; 32] {
    let (_, ck, ik) = milenage(profile, rand);
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&ck);
    ks[16..].copy_from_slice(&ik);
    ks
}

fn naf_id() -> Vec<u8> {
    NafId::new(FQDN, UaSecurityProtocolId::MBMS).unwrap().as_bytes().to_vec()
}

/// The keys a UE holds for the BM-SC, computed here without `gba`.
struct UeKeys {
    mrk: [u8; 32],
    muk: [u8; 32],
}

/// GBA_U: MRK = Ks_ext_NAF, MUK = Ks_int_NAF (TS 33.246 §6.1).
fn gba_u_keys(profile: &CardProfile, rand: &[u8; 16]) -> UeKeys {
    let (ks, impi, naf) = (ks(profile, rand), profile.impi().as_bytes(), naf_id());
    UeKeys {
        mrk: gba_kdf(&ks, 0x01, &[b"gba-me", rand, impi, &naf]),
        muk: gba_kdf(&ks, 0x01, &[b"gba-u", rand, impi, &naf]),
    }
}

/// GBA_ME: Ks_NAF, then MRK and MUK by the ME-based derivation whose (UNCONFIRMED) FC and labels
/// are the named constants of gba::mbms_keys; the KDF itself is the one written out here.
fn gba_me_keys(profile: &CardProfile, rand: &[u8; 16]) -> UeKeys {
    let (ks, impi, naf) = (ks(profile, rand), profile.impi().as_bytes(), naf_id());
    let ks_naf = gba_kdf(&ks, 0x01, &[b"gba-me", rand, impi, &naf]);
    let fc = gba::mbms_keys::FC_MBMS_ME_KEYS;
    UeKeys {
        mrk: gba_kdf(&ks_naf, fc, &[gba::mbms_keys::P0_MRK]),
        muk: gba_kdf(&ks_naf, fc, &[gba::mbms_keys::P0_MUK]),
    }
}

// ------------------------------------------------------------------------------------------------
// The card

// ------------------------------------------------------------------------------------------------
// Ub (the bootstrapping), over ureq

fn ub_get(bsf: &Bsf, user_agent: &str, authorization: &str) -> (u16, Option<String>, String) {
    let mut resp = agent()
        .get(&bsf.url())
        .header("User-Agent", user_agent)
        .header("Authorization", authorization)
        .call()
        .expect("Ub exchange");
    let www = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), www, resp.body_mut().read_to_string().unwrap())
}

/// What answers an AKA challenge (RAND, AUTN) with RES: the card or the milenage crate.
type ResOf<'a> = &'a mut dyn FnMut(&[u8; 16], &[u8; 16]) -> Vec<u8>;

/// A bootstrapping: the challenge, RES from `res_of` (the card or the milenage crate), the
/// answer. Returns RAND and the BootstrappingInfo.
fn bootstrap(
    bsf: &Bsf,
    profile: &CardProfile,
    user_agent: &str,
    res_of: ResOf<'_>,
) -> ([u8; 16], BootstrappingInfo) {
    let get = DigestRequest { method: "GET", uri: "/", entity_body: b"" };
    let initial = DigestAuthorization::initial(profile.impi(), &bsf.domain(), "/").to_header_value().unwrap();
    let (status, www, _) = ub_get(bsf, user_agent, &initial);
    assert_eq!(status, 401);
    let ch = DigestChallenge::parse(&www.expect("WWW-Authenticate")).unwrap();
    let nonce = AkaNonce::decode(&ch.nonce).unwrap();
    let res = res_of(&nonce.rand, &nonce.autn.to_bytes());
    let answer = DigestAuthorization::answer(&ch, profile.impi(), &res, &get, "0a4f113b", 1);
    let (status, _, body) = ub_get(bsf, user_agent, &answer.to_header_value().unwrap());
    assert_eq!(status, 200, "{body}");
    (nonce.rand, BootstrappingInfo::from_xml(&body).unwrap())
}

/// GBA_U with the card: bootstrap, B-TID into EF.GBABP, NAF derivation for the BM-SC. Returns
/// B-TID and the keys; the card's Ks_ext_NAF must be the independent one.
fn bootstrap_gba_u(bsf: &Bsf, profile: &CardProfile, card: &mut Card) -> (String, UeKeys) {
    let (rand, info) = bootstrap(bsf, profile, UA_UICC, &mut |rand, autn| card.gba_bootstrap(rand, autn));
    assert_eq!(bsf.session(&info.btid).unwrap().gba_type, GbaType::GbaU);
    card.write_gbabp(&info);
    let ks_ext_naf = card.naf_derivation(&naf_id(), profile.impi().as_bytes());
    let keys = gba_u_keys(profile, &rand);
    assert_eq!(ks_ext_naf, keys.mrk, "the card's Ks_ext_NAF is the independent KDF's");
    (info.btid, keys)
}

/// GBA_ME without a card: RES from the milenage crate (the BSF's GUSS says GBA_ME).
fn bootstrap_gba_me(bsf: &Bsf, profile: &CardProfile) -> (String, UeKeys) {
    let (rand, info) = bootstrap(bsf, profile, UA_ME, &mut |rand, _| milenage(profile, rand).0.to_vec());
    assert_eq!(bsf.session(&info.btid).unwrap().gba_type, GbaType::GbaMe);
    (info.btid, gba_me_keys(profile, &rand))
}

fn bsf() -> Bsf {
    let a = Subscriber::from_profile_toml(&CardProfile::default().to_toml()).unwrap();
    let b = Subscriber::from_profile_toml(&format!("{}\ngba_type = \"GBA_ME\"\n", me_profile().to_toml()))
        .unwrap();
    Bsf::start(BsfConfig { subscribers: vec![a, b], ..BsfConfig::default() }).expect("BSF")
}

/// A BM-SC with services A (Key Group 1) and B (Key Group 2), pushing to `ue_port`.
fn bmsc_config(bsf: &Bsf, ue_port: u16, v_bit: bool) -> BmscConfig {
    let mut c = BmscConfig::new(FQDN, bsf.addr());
    c.services = vec![BmscService::new(SVC_A, 1, [0xA1; 32]), BmscService::new(SVC_B, 2, [0xB2; 32])];
    c.ue_mikey_port = ue_port;
    c.v_bit = v_bit;
    c
}

// ------------------------------------------------------------------------------------------------
// The UE's key-management side (ureq + UDP)

#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: Vec<String>,
    authentication_info: Option<String>,
    reason: Option<String>,
    body: String,
}

fn post(url: &str, content_type: &str, body: &[u8], authorization: Option<&str>) -> Reply {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let mut resp = req.send(body).expect("HTTP exchange with the BM-SC");
    let all = |name: &str| -> Vec<String> {
        resp.headers().get_all(name).iter().map(|v| v.to_str().expect("visible ASCII").to_owned()).collect()
    };
    let (www_authenticate, info, reason) =
        (all("www-authenticate"), all("authentication-info"), all("x-keysim-reason"));
    Reply {
        status: resp.status().as_u16(),
        www_authenticate,
        authentication_info: info.into_iter().next(),
        reason: reason.into_iter().next(),
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// The two challenges of a 401: (ME realm, UICC realm), same nonce, MD5, qop=auth.
fn challenges(reply: &Reply) -> (DigestChallenge, DigestChallenge) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.reason.is_none(), "no reason header with a 401: {reply:?}");
    assert_eq!(reply.www_authenticate.len(), 2, "{reply:?}");
    let chs: Vec<DigestChallenge> =
        reply.www_authenticate.iter().map(|h| DigestChallenge::parse(h).unwrap()).collect();
    let me = chs
        .iter()
        .find(|c| c.realm == format!("{}{FQDN}", mbms_key_management::REALM_PREFIX_ME))
        .expect("ME realm");
    let uicc = chs
        .iter()
        .find(|c| c.realm == format!("{}{FQDN}", mbms_key_management::REALM_PREFIX_UICC))
        .expect("UICC realm");
    for c in [me, uicc] {
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert_eq!(c.qop, vec![digest::Qop::Auth]);
        assert!(c.opaque.is_some());
    }
    assert_eq!(me.nonce, uicc.nonce);
    (me.clone(), uicc.clone())
}

struct Ue {
    bmsc_base: String,
    btid: String,
    /// base64(MRK), by the `base64` crate (and checked against Python's).
    password: Vec<u8>,
    uicc: bool,
    mikey: UdpSocket,
    challenge: Option<DigestChallenge>,
    nc: u32,
}

impl Ue {
    fn new(bmsc: &Bmsc, mikey: UdpSocket, btid: &str, mrk: &[u8; 32], uicc: bool) -> Self {
        const { assert!(mbms_key_management::PASSWORD_IS_BASE64, "the test UE encodes the password as base64") };
        let password = base64::engine::general_purpose::STANDARD.encode(mrk);
        let script = "import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())";
        if let Some(py) = python(script, &[&hex::encode(mrk)]) {
            assert_eq!(py, password);
        }
        Ue {
            bmsc_base: format!("http://{}", bmsc.addr()),
            btid: btid.to_owned(),
            password: password.into_bytes(),
            uicc,
            mikey,
            challenge: None,
            nc: 0,
        }
    }

    /// The Authorization header answering the current challenge (nc + 1); the response is
    /// checked against Python's.
    fn authorization(&mut self, t: RequestType, body: &str) -> (String, DigestAuthorization) {
        let ch = self.challenge.clone().expect("a challenge");
        self.nc += 1;
        let target = t.path_and_query();
        let request = DigestRequest { method: "POST", uri: &target, entity_body: body.as_bytes() };
        let cnonce = format!("c{:07x}", self.nc);
        let auth = DigestAuthorization::answer(&ch, &self.btid, &self.password, &request, &cnonce, self.nc);
        let header = auth.to_header_value().unwrap();
        if let Some(py) = py_response(&header, &self.password, "POST", body.as_bytes()) {
            assert_eq!(py, auth.response, "Python's RFC 2617 digest differs from wire::ub's");
        }
        (header, auth)
    }

    fn take_challenge(&mut self, reply: &Reply) {
        let (me, uicc) = challenges(reply);
        self.challenge = Some(if self.uicc { uicc } else { me });
        self.nc = 0;
    }

    /// One request, authenticated: a 401 first when there is no challenge yet. On 200 the
    /// rspauth is checked with wire::ub and with Python.
    fn request(&mut self, t: RequestType, body: &str) -> Reply {
        let url = format!("{}{}", self.bmsc_base, t.path_and_query());
        if self.challenge.is_none() {
            let reply = post(&url, t.request_content_type(), body.as_bytes(), None);
            self.take_challenge(&reply);
        }
        let (header, auth) = self.authorization(t, body);
        let reply = post(&url, t.request_content_type(), body.as_bytes(), Some(&header));
        if reply.status == 200 {
            let info =
                AuthenticationInfo::parse(reply.authentication_info.as_deref().expect("Authentication-Info"))
                    .unwrap();
            assert_eq!(
                (info.qop, info.nc, info.cnonce.as_deref()),
                (auth.qop, auth.nc, auth.cnonce.as_deref())
            );
            let rspauth = info.rspauth.expect("rspauth");
            let input = auth.digest_input(&self.password, "POST", body.as_bytes());
            assert!(digest::verify_rspauth(&input, reply.body.as_bytes(), &rspauth), "rspauth");
            if let Some(py) = py_rspauth(&header, &self.password, reply.body.as_bytes()) {
                assert_eq!(py, rspauth, "Python's rspauth differs from the BM-SC's");
            }
        } else if reply.status == 401 {
            self.take_challenge(&reply);
        }
        reply
    }

    fn register(&mut self, ids: &[&str]) -> RegisterResponse {
        let body = RegisterRequest { service_ids: ids.iter().map(|s| s.to_string()).collect() }.to_xml();
        let reply = self.request(RequestType::Register, &body);
        assert_eq!(reply.status, 200, "{reply:?}");
        RegisterResponse::from_xml(&reply.body).unwrap()
    }

    fn deregister(&mut self, ids: &[&str]) -> RegisterResponse {
        let body = DeregisterRequest { service_ids: ids.iter().map(|s| s.to_string()).collect() }.to_xml();
        let reply = self.request(RequestType::Deregister, &body);
        assert_eq!(reply.status, 200, "{reply:?}");
        RegisterResponse::from_xml(&reply.body).unwrap()
    }

    fn msk_request(&mut self, ids: &[MskKeyId]) -> MskResponse {
        let body = MskRequest { key_ids: ids.to_vec() }.to_xml();
        let reply = self.request(RequestType::MskRequest, &body);
        assert_eq!(reply.status, 200, "{reply:?}");
        MskResponse::from_xml(&reply.body).unwrap()
    }

    /// The next MIKEY datagram pushed to the UE.
    fn recv(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = self.mikey.recv_from(&mut buf).expect("a MIKEY datagram within the timeout");
        (buf[..n].to_vec(), from)
    }
}

fn ue_socket() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Opens an MSK message with the MUK in Python: the MSK, MAC checked; `None` without python3.
fn py_open(psk: &[u8], message: &[u8]) -> Option<String> {
    python(MIKEY_ORACLE, &["open", &hex::encode(psk), &hex::encode(message)])
}

/// Checks a pushed MSK message: IDi = FQDN, IDr = B-TID, Key ID, and the MSK it carries (opened
/// with the independent MUK by mikey and by Python). Returns (MSK ID, MSK).
fn open_msk_message(message: &[u8], btid: &str, muk: &[u8; 32]) -> (MskId, [u8; 16]) {
    let parsed = mbms::parse_msk_message(message).unwrap();
    assert_eq!(parsed.idi().data, FQDN.as_bytes());
    assert_eq!(parsed.idr().data, btid.as_bytes());
    assert_eq!(parsed.key_domain_id(), KEY_DOMAIN);
    let mbms::MskUpdate::Msk(d) = mbms::verify_and_decrypt_msk(&mbms::Muk::new(*muk), &parsed).unwrap()
    else {
        panic!("an MSK, not a solicited pull")
    };
    let msk = *d.msk.as_bytes();
    if let Some(out) = py_open(muk, message) {
        assert_eq!(field(&out, "mac_ok"), "1", "{out}");
        assert_eq!(field(&out, "key"), hex::encode(msk), "{out}");
        assert!(out.contains(&format!("keyid=3:1:{}", hex::encode(d.msk_id.to_bytes()))), "{out}");
        assert_eq!(field(&out, "ids"), format!("{},{}", hex::encode(FQDN), hex::encode(btid)));
    }
    (d.msk_id, msk)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------------------------------------
// Tests

/// GBA_U with the card, V bit set: register (one unknown service), the MSK push opens with the
/// card's Ks_int_NAF (card MSK Update, mikey and Python with the independent key), the card's
/// verification message verifies at the BM-SC; basic MSK requests (200 / 403 / 404), a
/// rotation, a solicited pull, deregistration, and nothing pushed afterwards.
#[test]
fn gba_u_register_push_verify_msk_request_deregister() {
    let profile = CardProfile::default();
    let bsf = bsf();
    let socket = ue_socket();
    let bmsc = Bmsc::start(bmsc_config(&bsf, socket.local_addr().unwrap().port(), true)).unwrap();
    let mut card = Card::new(&profile);
    let (btid, keys) = bootstrap_gba_u(&bsf, &profile, &mut card);
    let mut ue = Ue::new(&bmsc, socket, &btid, &keys.mrk, true);

    let resp = ue.register(&[SVC_A, "urn:keysim:nope"]);
    assert_eq!(resp.code_of(SVC_A), Some(mbms_key_management::STATUS_OK));
    assert_eq!(resp.code_of("urn:keysim:nope"), Some(mbms_key_management::STATUS_UNKNOWN));
    assert_eq!(bmsc.registered(&btid), strings(&[SVC_A]));

    // The push: from the BM-SC's MIKEY socket, with the current MSK of service A.
    let (message, from) = ue.recv();
    assert_eq!(from, bmsc.mikey_addr());
    let (msk_id, _) = open_msk_message(&message, &btid, &keys.muk);
    assert_eq!(Some(msk_id), bmsc.current_msk_id(SVC_A));
    // The card takes it with the Ks_int_NAF it kept, and answers the verification message.
    let verification = card.msk_update(&message);
    assert!(!verification.is_empty(), "V bit set: the card answers a verification message");
    if let Some(out) = python(
        MIKEY_ORACLE,
        &["ver", &hex::encode(keys.muk), &hex::encode(&message), &hex::encode(&verification)],
    ) {
        assert_eq!(field(&out, "ver_ok"), "1", "{out}");
    }
    ue.mikey.send_to(&verification, from).unwrap();
    wait_until("the verification", || bmsc.stats().verifications_ok == 1);

    // Basic MSK requests: current MSK of Key Group 1 (registered), Key Group 2 (not registered),
    // Key Group 9 (no service), an MSK ID of group 1 the BM-SC never had.
    let any_1 = MskKeyId::any_in_group(KEY_DOMAIN, 1);
    let any_2 = MskKeyId::any_in_group(KEY_DOMAIN, 2);
    let any_9 = MskKeyId::any_in_group(KEY_DOMAIN, 9);
    let unknown = MskKeyId { key_domain_id: KEY_DOMAIN, msk_id: MskId(0x0001_0063) };
    let other_domain = MskKeyId::any_in_group(KeyDomainId([0x13, 0x00, 0x14]), 1);
    let resp = ue.msk_request(&[any_1, any_2, any_9, unknown, other_domain]);
    assert_eq!(resp.code_of(&any_1), Some(200));
    assert_eq!(resp.code_of(&any_2), Some(403));
    assert_eq!(resp.code_of(&any_9), Some(404));
    assert_eq!(resp.code_of(&unknown), Some(404));
    assert_eq!(resp.code_of(&other_domain), Some(404));
    let (message, _) = ue.recv();
    assert_eq!(open_msk_message(&message, &btid, &keys.muk).0, msk_id);
    card.msk_update(&message);

    // Rotation: the new MSK is pushed; the card takes it.
    let new_id = bmsc.rotate_msk(SVC_A).unwrap();
    assert_ne!(new_id, msk_id);
    let (message, _) = ue.recv();
    assert_eq!(open_msk_message(&message, &btid, &keys.muk).0, new_id);
    let verification = card.msk_update(&message);
    ue.mikey.send_to(&verification, bmsc.mikey_addr()).unwrap();
    wait_until("the second verification", || bmsc.stats().verifications_ok == 2);

    // Solicited pull: MSK ID with key number 0, MAC with the MUK, no key.
    assert_eq!(bmsc.solicited_pull(&btid).unwrap(), 1);
    let (pull, _) = ue.recv();
    let parsed = mbms::parse_msk_message(&pull).unwrap();
    assert!(parsed.is_solicited_pull());
    assert!(matches!(
        mbms::verify_and_decrypt_msk(&mbms::Muk::new(keys.muk), &parsed).unwrap(),
        mbms::MskUpdate::SolicitedPull(_)
    ));
    if let Some(out) = py_open(&keys.muk, &pull) {
        assert_eq!((field(&out, "mac_ok"), field(&out, "plain_len")), ("1", "0"), "{out}");
    }

    // Deregistration: nothing more for service A.
    let resp = ue.deregister(&[SVC_A, "urn:keysim:nope"]);
    assert_eq!((resp.code_of(SVC_A), resp.code_of("urn:keysim:nope")), (Some(200), Some(404)));
    assert!(bmsc.registered(&btid).is_empty());
    let pushes = bmsc.stats().msk_pushes;
    bmsc.rotate_msk(SVC_A).unwrap();
    assert_eq!(bmsc.stats().msk_pushes, pushes, "no push after deregistration");
    assert!(bmsc.push_msks(&btid).is_err());
    // An MSK request now: 403 (not registered).
    assert_eq!(ue.msk_request(&[any_1]).code_of(&any_1), Some(403));

    let s = bmsc.stats();
    assert_eq!((s.registrations, s.deregistrations, s.msk_requests), (1, 1, 2));
    assert_eq!((s.msk_pushes, s.solicited_pulls, s.verifications_ok, s.verifications_bad), (3, 1, 2, 0));
    assert_eq!((s.zn_queries, s.zn_failures, s.challenges, s.http_4xx), (1, 0, 1, 0), "{s:?}");
    bmsc.shutdown().unwrap();
}

/// GBA_ME: the ME-realm answer with the ME-based MRK; the push opens with the ME-based MUK; the
/// UICC realm is refused for GBA_ME keys. On the bearer: the MTK message (multicast 239.x over
/// loopback) opens with the pushed MSK, and the SRTP packets (unicast) carry MKI = MSK ID ‖ MTK
/// ID and decrypt to the test signal.
#[test]
fn gba_me_register_mtk_and_media_on_the_bearer() {
    let profile = me_profile();
    let bsf = bsf();
    let socket = ue_socket();
    let group = Ipv4Addr::new(239, 255, 42, 17);
    let bearer_mikey = UdpSocket::bind((group, 0)).expect("bind the multicast group");
    bearer_mikey.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).expect("join on lo");
    bearer_mikey.set_read_timeout(Some(TIMEOUT)).unwrap();
    let bearer_media = ue_socket();
    let mut config = bmsc_config(&bsf, socket.local_addr().unwrap().port(), false);
    config.bearer_mikey = vec![SocketAddr::new(group.into(), bearer_mikey.local_addr().unwrap().port())];
    config.bearer_media = vec![bearer_media.local_addr().unwrap()];
    let bmsc = Bmsc::start(config).unwrap();
    let (btid, keys) = bootstrap_gba_me(&bsf, &profile);

    // The UICC realm with GBA_ME keys: refused like a wrong password.
    let mut wrong_realm = Ue::new(&bmsc, ue_socket(), &btid, &keys.mrk, true);
    let body = RegisterRequest { service_ids: strings(&[SVC_B]) }.to_xml();
    assert_eq!(wrong_realm.request(RequestType::Register, &body).status, 401);
    assert_eq!(wrong_realm.request(RequestType::Register, &body).status, 401);
    assert!(bmsc.registered(&btid).is_empty());

    let mut ue = Ue::new(&bmsc, socket, &btid, &keys.mrk, false);
    assert_eq!(ue.register(&[SVC_B]).code_of(SVC_B), Some(200));
    let (message, _) = ue.recv();
    let (msk_id, msk) = open_msk_message(&message, &btid, &keys.muk);
    assert_eq!(msk_id.key_group(), 2);

    let mtk_id = bmsc.send_mtk(SVC_B).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = bearer_mikey.recv_from(&mut buf).expect("the MTK message on the multicast bearer");
    let mtk_message = buf[..n].to_vec();
    let parsed = mbms::parse_mtk_message(&mtk_message).unwrap();
    assert_eq!((parsed.msk_id(), parsed.mtk_id()), (msk_id, mtk_id));
    let delivery = mbms::verify_and_decrypt_mtk(&mbms::Msk::new(msk), &parsed).unwrap();
    let salt = *delivery.salt.as_ref().expect("salt").as_bytes();
    if let Some(out) = py_open(&msk, &mtk_message) {
        assert_eq!(field(&out, "mac_ok"), "1", "{out}");
        assert_eq!(field(&out, "key"), hex::encode(delivery.mtk.as_bytes()), "{out}");
        assert_eq!(field(&out, "salt"), hex::encode(salt), "{out}");
    }

    assert_eq!(bmsc.send_media(SVC_B, 3).unwrap(), 3);
    let key_id = mki(msk_id, mtk_id);
    let policy = bmsc.srtp_policy(SVC_B).unwrap();
    let master = srtp::MasterKey::new(*delivery.mtk.as_bytes(), salt, key_id.to_vec());
    let mut rx = srtp::SrtpContext::new(policy, [master]).unwrap();
    for frame in 0..3u64 {
        let (n, _) = bearer_media.recv_from(&mut buf).expect("an SRTP packet");
        let mut packet = buf[..n].to_vec();
        let payload_len = n - 12 - key_id.len() - 10;
        assert_eq!(&packet[12 + payload_len..12 + payload_len + key_id.len()], &key_id);
        rx.unprotect_rtp_vec(&mut packet).unwrap();
        assert_eq!(&packet[12..], &test_signal_frame(frame)[..]);
    }
    let s = bmsc.stats();
    assert_eq!((s.mtk_messages, s.media_packets, s.registrations, s.send_errors), (1, 3, 1, 0));
}

/// An unknown B-TID and a wrong password get a fresh 401 with both challenges (no reason header)
/// and change nothing; a re-bootstrapped UE (new B-TID, same IMPI) takes over its registrations
/// and its pushes use the new MUK; a B-TID that expired at the BSF and at the BM-SC gets 401.
#[test]
fn unknown_btid_wrong_password_rebootstrap_and_expiry() {
    let profile = me_profile();
    let bsf = bsf();
    let socket = ue_socket();
    let bmsc = Bmsc::start(bmsc_config(&bsf, socket.local_addr().unwrap().port(), false)).unwrap();
    let (btid, keys) = bootstrap_gba_me(&bsf, &profile);
    let mut ue = Ue::new(&bmsc, socket, &btid, &keys.mrk, false);
    ue.register(&[SVC_A, SVC_B]);
    ue.recv();
    ue.recv();
    let before = bmsc.stats();

    let body = RegisterRequest { service_ids: strings(&[SVC_A]) }.to_xml();
    let mut stranger =
        Ue::new(&bmsc, ue_socket(), "AAAAAAAAAAAAAAAAAAAAAA==@bsf.example.org", &[7; 32], false);
    let reply = stranger.request(RequestType::Register, &body);
    assert_eq!(reply.status, 401, "{reply:?}");
    let mut liar = Ue::new(&bmsc, ue_socket(), &btid, &[7; 32], false);
    assert_eq!(liar.request(RequestType::Register, &body).status, 401);
    let s = bmsc.stats();
    assert_eq!((s.zn_queries, s.zn_failures), (before.zn_queries + 1, before.zn_failures + 1));
    assert_eq!(s.challenges, before.challenges + 4, "first request and refusal, twice");
    assert_eq!(s.registrations, before.registrations);
    assert_eq!(bmsc.registered(&btid), strings(&[SVC_A, SVC_B]));
    assert_eq!(bmsc.registration_count(), 1);

    // Re-bootstrap: a new B-TID of the same IMPI takes over both registrations.
    let (btid2, keys2) = bootstrap_gba_me(&bsf, &profile);
    assert_ne!(btid2, btid);
    let mut ue2 = Ue::new(&bmsc, ue.mikey.try_clone().unwrap(), &btid2, &keys2.mrk, false);
    assert_eq!(ue2.register(&[SVC_A]).code_of(SVC_A), Some(200));
    assert_eq!(open_msk_message(&ue2.recv().0, &btid2, &keys2.muk).0.key_group(), 1);
    assert_eq!(bmsc.registered(&btid2), strings(&[SVC_A, SVC_B]));
    assert!(bmsc.registered(&btid).is_empty());
    assert_eq!(bmsc.push_msks(&btid2).unwrap(), 2);
    for _ in 0..2 {
        open_msk_message(&ue2.recv().0, &btid2, &keys2.muk);
    }

    // Expiry at the BSF and at the BM-SC: the next request is resolved over Zn again, refused.
    assert!(bsf.expire(&btid2));
    assert!(bmsc.expire_registration(&btid2));
    assert!(!bmsc.expire_registration("nobody"));
    assert!(bmsc.registered(&btid2).is_empty());
    let reply = ue2.request(RequestType::Register, &body);
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(bmsc.registration_count(), 0);
}

/// URL, Content-Type, body, Authorization, expected status, a word of the reason.
type BadCase = (String, &'static str, Vec<u8>, Option<String>, u16, &'static str);

/// Bad input: 4xx with a one-line reason (body and X-Keysim-Reason), no challenge, nothing
/// changed; garbage and unmatched MIKEY on the MIKEY socket are counted; the BM-SC keeps serving.
#[test]
fn bad_input_gets_4xx_and_changes_nothing() {
    let profile = me_profile();
    let bsf = bsf();
    let socket = ue_socket();
    let bmsc = Bmsc::start(bmsc_config(&bsf, socket.local_addr().unwrap().port(), true)).unwrap();
    let (btid, keys) = bootstrap_gba_me(&bsf, &profile);
    let mut ue = Ue::new(&bmsc, socket, &btid, &keys.mrk, false);
    ue.register(&[SVC_A]);
    let (pushed, _) = ue.recv();
    let before = bmsc.stats();

    let base = format!("http://{}", bmsc.addr());
    let register_url = format!("{base}{}", RequestType::Register.path_and_query());
    let good_body = RegisterRequest { service_ids: strings(&[SVC_B]) }.to_xml();
    let ct = mbms_key_management::CONTENT_TYPE_REGISTER;
    let (header, _) = ue.authorization(RequestType::Register, &good_body);
    let mut wrong_realm = DigestAuthorization::parse(&header).unwrap();
    wrong_realm.realm = "elsewhere".into();
    let mut wrong_uri = DigestAuthorization::parse(&header).unwrap();
    wrong_uri.uri = "/keymanagement?requesttype=deregister".into();
    let mut auth_int = DigestAuthorization::parse(&header).unwrap();
    auth_int.qop = Some(digest::Qop::AuthInt);
    let mut other_opaque = DigestAuthorization::parse(&header).unwrap();
    other_opaque.opaque = Some("0000".into());
    let h = |a: DigestAuthorization| Some(a.to_header_value().unwrap());
    let big = vec![b'x'; mbms_key_management::MAX_XML_LEN + 1];
    let cases: Vec<BadCase> = vec![
        (register_url.clone(), ct, b"not xml at all".to_vec(), None, 400, "XML"),
        (
            register_url.clone(),
            ct,
            b"<mbmsRegister xmlns=\"urn:x\"><serviceId>a</serviceId></mbmsRegister>".to_vec(),
            None,
            400,
            "namespace",
        ),
        (
            register_url.clone(),
            ct,
            DeregisterRequest { service_ids: strings(&[SVC_A]) }.to_xml().into_bytes(),
            None,
            400,
            "root element",
        ),
        (register_url.clone(), "application/xml", good_body.clone().into_bytes(), None, 415, "Content-Type"),
        (
            format!("{base}/keymanagement?requesttype=subscribe"),
            ct,
            good_body.clone().into_bytes(),
            None,
            400,
            "unknown",
        ),
        (format!("{base}/keymanagement"), ct, good_body.clone().into_bytes(), None, 400, "requesttype"),
        (format!("{base}/elsewhere"), ct, good_body.clone().into_bytes(), None, 404, "no resource"),
        (register_url.clone(), ct, big, None, 413, "longer than"),
        (register_url.clone(), ct, b"\xff\xfe".to_vec(), None, 400, "UTF-8"),
        (
            register_url.clone(),
            ct,
            good_body.clone().into_bytes(),
            Some("Digest garbage".into()),
            400,
            "Digest",
        ),
        (
            register_url.clone(),
            ct,
            good_body.clone().into_bytes(),
            Some("Basic dXNlcjpwYXNz".into()),
            400,
            "Digest",
        ),
        (register_url.clone(), ct, good_body.clone().into_bytes(), h(wrong_realm), 400, "realm"),
        (register_url.clone(), ct, good_body.clone().into_bytes(), h(wrong_uri), 400, "uri"),
        (register_url.clone(), ct, good_body.clone().into_bytes(), h(auth_int), 400, "qop"),
        (register_url.clone(), ct, good_body.clone().into_bytes(), h(other_opaque), 400, "opaque"),
        // A well-authenticated request with a malformed body: refused before anything else.
        (register_url.clone(), ct, b"<mbmsRegister".to_vec(), Some(header.clone()), 400, "XML"),
        (
            format!("{base}{}", RequestType::MskRequest.path_and_query()),
            mbms_key_management::CONTENT_TYPE_MSK_REQUEST,
            format!(
                "<mbmsMskRequest xmlns=\"{}\"><keyId>AAAA</keyId></mbmsMskRequest>",
                mbms_key_management::NS_MSK_REQUEST
            )
            .into_bytes(),
            None,
            400,
            "octets",
        ),
        // The MSK request's media type is IANA's `application/mbms-msk+xml` (TS 26.346); the
        // unregistered `mbms-msk-request+xml` an earlier keysim sent is refused.
        (
            format!("{base}{}", RequestType::MskRequest.path_and_query()),
            "application/mbms-msk-request+xml",
            format!(
                "<mbmsMskRequest xmlns=\"{}\"><keyId>AADxEAECAAc=</keyId></mbmsMskRequest>",
                mbms_key_management::NS_MSK_REQUEST
            )
            .into_bytes(),
            None,
            415,
            "application/mbms-msk+xml",
        ),
    ];
    let count = cases.len() as u64;
    for (url, content_type, body, auth, status, reason) in cases {
        let reply = post(&url, content_type, &body, auth.as_deref());
        assert_eq!(reply.status, status, "{url} {auth:?}: {reply:?}");
        assert!(reply.body.contains(reason), "{url}: {:?} lacks {reason:?}", reply.body);
        let reason_header = reply.reason.as_deref().expect("X-Keysim-Reason");
        if reply.body.is_ascii() {
            assert_eq!(reason_header, reply.body.trim(), "{reply:?}");
        }
        assert!(reply.www_authenticate.is_empty(), "{reply:?}");
    }
    // A method other than POST.
    let mut resp = agent().get(&register_url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.body_mut().read_to_string().unwrap().contains("POST"));
    // Raw HTTP: a non-ASCII Authorization header, doubled Authorization headers, garbage.
    let raw = |bytes: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(bmsc.addr()).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let request = |extra: &[u8]| -> Vec<u8> {
        let mut r = format!(
            "POST /keymanagement?requesttype=register HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            good_body.len()
        )
        .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(good_body.as_bytes());
        r
    };
    let r = raw(&request(b"Authorization: Digest username=\"\xff\"\r\n"));
    assert!(r.starts_with("HTTP/1.1 400") && r.contains("not visible ASCII"), "{r}");
    let doubled = format!("Authorization: {header}\r\nAuthorization: {header}\r\n");
    let r = raw(&request(doubled.as_bytes()));
    assert!(r.starts_with("HTTP/1.1 400") && r.contains("more than one"), "{r}");
    let r = raw(b"GARBAGE\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");

    let s = bmsc.stats();
    assert_eq!(s.http_4xx, before.http_4xx + count + 3, "{s:?}");
    assert_eq!(
        (s.registrations, s.challenges, s.zn_queries),
        (before.registrations, before.challenges, before.zn_queries)
    );
    assert_eq!(bmsc.registered(&btid), strings(&[SVC_A]));

    // UDP: garbage, and a MIKEY message that acknowledges nothing (the push itself).
    let probe = ue_socket();
    probe.send_to(b"\x00garbage", bmsc.mikey_addr()).unwrap();
    probe.send_to(&pushed, bmsc.mikey_addr()).unwrap();
    wait_until("the drops", || {
        let s = bmsc.stats();
        s.udp_drops == 1 && s.verifications_bad == 1
    });
    // Still serving: the same UE goes on (its nonce count continues) and registers B.
    assert_eq!(ue.register(&[SVC_B]).code_of(SVC_B), Some(200));
    assert_eq!(bmsc.registered(&btid), strings(&[SVC_A, SVC_B]));
    // A replayed nonce count: a fresh challenge.
    let (old_header, _) = {
        ue.nc -= 1;
        ue.authorization(RequestType::Register, &good_body)
    };
    let reply = post(&register_url, ct, good_body.as_bytes(), Some(&old_header));
    assert_eq!(reply.status, 401, "{reply:?}");
}

/// The benchmark pieces: a Zn answer put in directly, the UE's session registering and
/// deregistering on one nonce (one challenge in all), MSK requests, and rspauth checked.
#[test]
fn client_reuses_one_nonce() {
    let zn: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let socket = ue_socket();
    let mut config = BmscConfig::new(FQDN, zn);
    config.services = vec![BmscService::new(SVC_A, 1, [1; 32])];
    config.ue_mikey_port = socket.local_addr().unwrap().port();
    let bmsc = Bmsc::start(config).unwrap();
    let ks_naf = [0x5a; 32];
    let answer = zn::ZnAnswer {
        btid: "AQIDBAUGBwgJCgsMDQ4PEA==@bsf.example.org".into(),
        keys: zn::NafKeyMaterial::GbaMe { ks_naf: gba::KsNaf::new(ks_naf) },
        key_expiry: "2099-01-01T00:00:00Z".into(),
        bootstrap_time: "2020-01-01T00:00:00Z".into(),
        impi: "user@example.org".into(),
        impus: vec![],
    };
    bmsc.insert_zn_answer(&answer).unwrap();
    let fc = gba::mbms_keys::FC_MBMS_ME_KEYS;
    let mrk = gba_kdf(&ks_naf, fc, &[gba::mbms_keys::P0_MRK]);
    let muk = gba_kdf(&ks_naf, fc, &[gba::mbms_keys::P0_MUK]);
    let client = BmscClient::new(&bmsc.url(), FQDN).unwrap();
    let mut session = BmscSession::new(&answer.btid, gba::Mrk::new(mrk), false);
    let ids = strings(&[SVC_A]);
    for _ in 0..5 {
        assert_eq!(session.register(&client, &ids).unwrap().code_of(SVC_A), Some(200));
        assert_eq!(session.deregister(&client, &ids).unwrap().code_of(SVC_A), Some(200));
    }
    session.register(&client, &ids).unwrap();
    let any = MskKeyId::any_in_group(KEY_DOMAIN, 1);
    assert_eq!(session.msk_request(&client, &[any]).unwrap().code_of(&any), Some(200));
    let s = bmsc.stats();
    assert_eq!((s.challenges, s.registrations, s.deregistrations, s.msk_pushes), (1, 6, 5, 7), "{s:?}");
    for _ in 0..7 {
        let mut buf = [0u8; 2048];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        open_msk_message(&buf[..n], &answer.btid, &muk);
    }
    // The UICC realm with GBA_ME keys, and a wrong MRK: the B-TID is refused.
    let mut uicc = BmscSession::new(&answer.btid, gba::Mrk::new(mrk), true);
    assert!(matches!(uicc.register(&client, &ids), Err(me::Error::BtidRejected { .. })));
    let mut wrong = BmscSession::new(&answer.btid, gba::Mrk::new([0; 32]), false);
    assert!(matches!(wrong.register(&client, &ids), Err(me::Error::BtidRejected { .. })));
}

/// The background sender: with a schedule, MTK messages and media flow on their own (no timing
/// is measured, only that they arrive) and shutdown stops them.
#[test]
fn schedule_sends_mtk_and_media() {
    let zn: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mikey_rx = ue_socket();
    let media_rx = ue_socket();
    let mut config = BmscConfig::new(FQDN, zn);
    config.services = vec![BmscService::new(SVC_A, 1, [1; 32])];
    config.bearer_mikey = vec![mikey_rx.local_addr().unwrap()];
    config.bearer_media = vec![media_rx.local_addr().unwrap()];
    config.schedule = Some(BmscSchedule {
        mtk_interval: Duration::from_millis(20),
        media_interval: Duration::from_millis(5),
        packets_per_media_interval: 2,
        msk_rotation_interval: Some(Duration::from_millis(50)),
    });
    let bmsc = Bmsc::start(config).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = mikey_rx.recv_from(&mut buf).unwrap();
    assert!(mbms::parse_mtk_message(&buf[..n]).is_ok());
    let (n, _) = media_rx.recv_from(&mut buf).unwrap();
    assert_eq!(buf[0] >> 6, 2, "RTP version 2");
    assert!(n > 12);
    wait_until("a rotation and more MTKs", || {
        let s = bmsc.stats();
        s.mtk_messages >= 2 && s.media_packets >= 4 && bmsc.current_msk_id(SVC_A) != Some(MskId(0x0001_0001))
    });
    bmsc.shutdown().unwrap();
}
