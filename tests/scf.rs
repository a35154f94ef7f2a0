//! SIP-based MBMS security (TS 26.237 §10.4.2, Annex I) end to end over real loopback sockets: a
//! UE written here (SIP over UDP with the `sip` codec, MIKEY on a UDP socket), the P-CSCF
//! (`network::pcscf`), the SCF (`network::scf`) as NAF, two BM-SCs behind it
//! (`network::bmsc`), and the real BSF (`network::bsf`) behind Zn. Also the earlier `authorize`
//! variant (TS 26.237 CR §10.2) and a table of bad input.
//!
//! Independent sources:
//! - SIPp (Debian package `sip-tester`) as the UE of one registration (scenario in
//!   `tests/sipp/mbms_register.xml`): skipped with a printed reason when `sipp` is missing,
//!   failed then under `KEYSIM_REQUIRE_ORACLES=1`;
//! - the MUKs the pushed MIKEY MSK messages must verify with, computed here without `gba`: the
//!   `milenage` crate for CK / IK and the GBA KDF (TS 33.220 Annex B) written out over `hmac` +
//!   `sha2` with NAF_Id = the SCF FQDN ‖ 01 00 00 00 01 (GBA_U: Ks_int_NAF; GBA_ME: the ME-based
//!   MUK whose UNCONFIRMED FC and label are `gba::mbms_keys`'s constants);
//! - a Python reader of MIKEY messages (RFC 3830 PRF, HMAC-SHA-1, AES-CM; as in tests/bmsc.rs)
//!   opening the pushes with those MUKs;
//! - the emulated card: after its NAF derivation for the SCF's NAF_Id, its MSK Update mode accepts
//!   the pushed message with the Ks_int_NAF it keeps.

mod peers_support;

use peers_support::{Card, TIMEOUT, UA_ME, UA_UICC, agent, me_profile};
use test_kit::independent::gba_kdf;
use test_kit::{MIKEY_ORACLE, field, python, require_oracles};

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mikey::mbms::{self, KeyDomainId, MskId};
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use network::pcscf::{Pcscf, PcscfConfig, PcscfUser};
use network::scf::{Scf, ScfConfig, ScfMode, ScfService, ScfSubscriber};
use sim_reader::CardProfile;
use sip::{Message, Method};
use wire::digest::{DigestAuthorization, DigestChallenge, DigestRequest};
use wire::mbms_key_management::{
    self, DeregisterRequest, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
    RequestType,
};
use wire::sip_based_mbms::{self, NafKeyInfo, NafKeys, SipProcedure, SipSecurityRequest};
use wire::ub::{AkaNonce, BootstrappingInfo};
use wire::zn::GbaType;

const SCF_DOMAIN: &str = "scf.example.org";
const SCF_FQDN_1: &str = "scf1.example.org";
const SCF_FQDN_2: &str = "scf2.example.org";
const KEY_DOMAIN: KeyDomainId = KeyDomainId([0x00, 0xF1, 0x10]);
const SVC_A: &str = "urn:keysim:svc:a";
const SVC_B: &str = "urn:keysim:svc:b";
const SVC_C: &str = "urn:keysim:svc:c";
/// The SCF's source address towards the BM-SCs (on Linux all of 127/8 is loopback).
const SCF_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

// ------------------------------------------------------------------------------------------------
// Oracles

/// (RES, Ks = CK ‖ IK) of the `milenage` crate.
fn milenage(profile: &CardProfile, rand: &[u8; 16]) -> ([u8; 8], [u8; 32]) {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let (res, ck, ik, _) = m.f2345(rand);
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&ck);
    ks[16..].copy_from_slice(&ik);
    (res, ks)
}

/// NAF_Id = FQDN ‖ Ua security protocol identifier of MBMS, 01 00 00 00 01 (TS 33.220 Annex H).
fn naf_id(fqdn: &str) -> Vec<u8> {
    let mut v = fqdn.as_bytes().to_vec();
    v.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]);
    v
}

/// What a UE's bootstrapping gives the test: B-TID, RAND, GBA type.
struct Bootstrap {
    btid: String,
    rand: [u8; 16],
    gba_u: bool,
}

/// The MUK for `naf_fqdn`, computed here (TS 33.246 §6.1): GBA_U Ks_int_NAF, GBA_ME the ME-based
/// MUK from Ks_NAF.
fn muk(profile: &CardProfile, b: &Bootstrap, naf_fqdn: &str) -> [u8; 32] {
    let (_, ks) = milenage(profile, &b.rand);
    let (impi, naf) = (profile.impi().as_bytes(), naf_id(naf_fqdn));
    if b.gba_u {
        gba_kdf(&ks, 0x01, &[b"gba-u", &b.rand, impi, &naf])
    } else {
        let ks_naf = gba_kdf(&ks, 0x01, &[b"gba-me", &b.rand, impi, &naf]);
        gba_kdf(&ks_naf, gba::mbms_keys::FC_MBMS_ME_KEYS, &[gba::mbms_keys::P0_MUK])
    }
}

// ------------------------------------------------------------------------------------------------
// The card and Ub

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

/// A bootstrapping over Ub: RES from the card (GBA_U) or the milenage crate (GBA_ME).
fn bootstrap(bsf: &Bsf, profile: &CardProfile, card: Option<&mut Card>) -> Bootstrap {
    let get = DigestRequest { method: "GET", uri: "/", entity_body: b"" };
    let ua = if card.is_some() { UA_UICC } else { UA_ME };
    let initial = DigestAuthorization::initial(profile.impi(), &bsf.domain(), "/").to_header_value().unwrap();
    let (status, www, _) = ub_get(bsf, ua, &initial);
    assert_eq!(status, 401);
    let ch = DigestChallenge::parse(&www.expect("WWW-Authenticate")).unwrap();
    let nonce = AkaNonce::decode(&ch.nonce).unwrap();
    let gba_u = card.is_some();
    let res = match card {
        Some(c) => {
            let res = c.gba_bootstrap(&nonce.rand, &nonce.autn.to_bytes());
            (res, Some(c))
        }
        None => (milenage(profile, &nonce.rand).0.to_vec(), None),
    };
    let answer = DigestAuthorization::answer(&ch, profile.impi(), &res.0, &get, "0a4f113b", 1);
    let (status, _, body) = ub_get(bsf, ua, &answer.to_header_value().unwrap());
    assert_eq!(status, 200, "{body}");
    let info = BootstrappingInfo::from_xml(&body).unwrap();
    let expected = if gba_u { GbaType::GbaU } else { GbaType::GbaMe };
    assert_eq!(bsf.session(&info.btid).unwrap().gba_type, expected);
    if let Some(c) = res.1 {
        c.write_gbabp(&info);
    }
    Bootstrap { btid: info.btid, rand: nonce.rand, gba_u }
}

fn impu(profile: &CardProfile) -> String {
    profile.impu().first().expect("an IMPU").clone()
}

// ------------------------------------------------------------------------------------------------
// The network: BSF, two BM-SCs, SCF, P-CSCF

struct Net {
    bsf: Bsf,
    bmsc1: Bmsc,
    bmsc2: Bmsc,
    scf: Scf,
    pcscf: Pcscf,
}

fn bsf() -> Bsf {
    let a = Subscriber::from_profile_toml(&CardProfile::default().to_toml()).unwrap();
    let b = Subscriber::from_profile_toml(&format!("{}\ngba_type = \"GBA_ME\"\n", me_profile().to_toml()))
        .unwrap();
    Bsf::start(BsfConfig { subscribers: vec![a, b], ..BsfConfig::default() }).expect("BSF")
}

/// BM-SC 1 (services A, B; SCF FQDN 1) and BM-SC 2 (service C; SCF FQDN 2), both trusting the
/// SCF's source address and pushing to `ue_mikey_port`; the SCF (subscriptions: the default
/// card's IMPU to A, B, C; the GBA_ME subscriber's to A); the P-CSCF in front of it, knowing both.
fn net(ue_mikey_port: u16, mode: ScfMode, fresh_keys_after: Option<Duration>) -> Net {
    let bsf = bsf();
    let bmsc = |fqdn: &str, services: Vec<BmscService>| {
        let mut c = BmscConfig::new(fqdn, bsf.addr());
        c.services = services;
        c.ue_mikey_port = ue_mikey_port;
        c.trusted_scfs = vec![SCF_SOURCE];
        c.require_scf_authorization = mode == ScfMode::Authorize;
        Bmsc::start(c).expect("BM-SC")
    };
    let bmsc1 = bmsc(
        "bmsc1.example.org",
        vec![BmscService::new(SVC_A, 1, [0xA1; 32]), BmscService::new(SVC_B, 2, [0xB2; 32])],
    );
    let bmsc2 = bmsc("bmsc2.example.org", vec![BmscService::new(SVC_C, 3, [0xC3; 32])]);
    let mut c = ScfConfig::new(SCF_DOMAIN, bsf.addr());
    c.services = vec![
        ScfService::new(SVC_A, SCF_FQDN_1, bmsc1.addr(), 1),
        ScfService::new(SVC_B, SCF_FQDN_1, bmsc1.addr(), 2),
        ScfService::new(SVC_C, SCF_FQDN_2, bmsc2.addr(), 3),
    ];
    c.subscribers = vec![
        ScfSubscriber {
            impu: impu(&CardProfile::default()),
            services: vec![SVC_A.into(), SVC_B.into(), SVC_C.into()],
        },
        ScfSubscriber { impu: impu(&me_profile()), services: vec![SVC_A.into()] },
    ];
    c.http_source = SCF_SOURCE;
    c.mode = mode;
    c.fresh_keys_after = fresh_keys_after;
    // Only the P-CSCF's assertions count; it is added once it runs.
    c.trusted_proxies = vec!["127.0.0.1:9".parse().unwrap()];
    let scf = Scf::start(c).expect("SCF");
    let mut p = PcscfConfig::new(scf.addr());
    for profile in [CardProfile::default(), me_profile()] {
        p.users.push(PcscfUser {
            impi: profile.impi().into(),
            impus: profile.impu().to_vec(),
            ue_addr: None,
        });
    }
    let pcscf = Pcscf::start(p).expect("P-CSCF");
    scf.trust_proxy(pcscf.addr());
    Net { bsf, bmsc1, bmsc2, scf, pcscf }
}

// ------------------------------------------------------------------------------------------------
// The UE's SIP side

fn udp_socket() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// A SIP UA for one dialog with the SCF, through the P-CSCF (RFC 3261 §8.1, §12, §13).
struct SipUe {
    sock: UdpSocket,
    pcscf: SocketAddr,
    from_uri: String,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    remote_target: String,
    route: Vec<String>,
    cseq: u32,
    branches: u32,
}

impl SipUe {
    fn new(pcscf: SocketAddr, from_uri: &str, call: &str) -> Self {
        SipUe {
            sock: udp_socket(),
            pcscf,
            from_uri: from_uri.to_owned(),
            call_id: format!("{call}@127.0.0.1"),
            from_tag: format!("ue-{call}"),
            to_tag: None,
            remote_target: format!("sip:scf@{SCF_DOMAIN}"),
            route: Vec::new(),
            cseq: 0,
            branches: 0,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// A request of the dialog (a new CSeq unless ACK; `cseq` given for an ACK).
    fn request(&mut self, method: Method, cseq: Option<u32>) -> Message {
        self.branches += 1;
        let seq = cseq.unwrap_or_else(|| {
            self.cseq += 1;
            self.cseq
        });
        let mut m = Message::new_request(method.clone(), &self.remote_target);
        m.push_header(
            "Via",
            &format!(
                "SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK-{}-{};rport",
                self.port(),
                self.from_tag,
                self.branches
            ),
        );
        m.push_header("Max-Forwards", "70");
        m.push_header("From", &format!("<{}>;tag={}", self.from_uri, self.from_tag));
        let to = match &self.to_tag {
            Some(t) => format!("<sip:scf@{SCF_DOMAIN}>;tag={t}"),
            None => format!("<sip:scf@{SCF_DOMAIN}>"),
        };
        m.push_header("To", &to);
        m.push_header("Call-ID", &self.call_id);
        m.push_header("CSeq", &format!("{seq} {method}"));
        m.push_header("Contact", &format!("<sip:ue@127.0.0.1:{}>", self.port()));
        for r in &self.route {
            m.push_header("Route", r);
        }
        m
    }

    fn send(&self, m: &Message) {
        self.sock.send_to(&m.to_bytes().unwrap(), self.pcscf).unwrap();
    }

    fn recv(&self) -> Message {
        let mut buf = [0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).expect("a SIP message within the timeout");
        Message::parse(&buf[..n]).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf[..n])))
    }

    /// The final answer to the request just sent (1xx skipped, retransmissions of earlier
    /// answers skipped).
    fn final_answer(&self, sent: &Message) -> Message {
        let cseq = sent.cseq().unwrap();
        loop {
            let r = self.recv();
            if r.cseq().unwrap() == cseq && r.status().unwrap() >= 200 {
                return r;
            }
        }
    }

    /// An INVITE (initial or re-INVITE) with `body`; ACKs the final answer; on the first 200
    /// learns the dialog (To tag, remote target, route set).
    fn invite(&mut self, content_type: &str, body: &str) -> Message {
        let mut m = self.request(Method::Invite, None);
        m.set_body(content_type, body.as_bytes().to_vec());
        self.send(&m);
        let r = self.final_answer(&m);
        let status = r.status().unwrap();
        if status == 200 && self.to_tag.is_none() {
            self.to_tag = r.to().unwrap().tag().map(str::to_owned);
            self.remote_target = r.contacts().unwrap()[0].uri.clone();
            self.route = r.header_lines("Record-Route").rev().map(str::to_owned).collect();
        }
        // ACK: a 2xx ACK is a new transaction; a non-2xx ACK reuses the INVITE's branch and To.
        let ack = if status == 200 {
            self.request(Method::Ack, Some(self.cseq))
        } else {
            let mut a = Message::new_request(Method::Ack, m.request_uri().unwrap());
            a.push_header("Via", m.header("Via").unwrap());
            a.push_header("Max-Forwards", "70");
            a.push_header("From", m.header("From").unwrap());
            a.push_header("To", r.header("To").unwrap());
            a.push_header("Call-ID", &self.call_id);
            a.push_header("CSeq", &format!("{} ACK", self.cseq));
            a
        };
        self.send(&ack);
        r
    }

    fn security(&mut self, btid: &str, procedure: SipProcedure) -> Message {
        let body = SipSecurityRequest { btid: btid.to_owned(), procedure }.to_xml();
        self.invite(sip_based_mbms::CONTENT_TYPE_SIP_SECURITY, &body)
    }

    fn bye(&mut self) -> Message {
        let m = self.request(Method::Bye, None);
        self.send(&m);
        self.final_answer(&m)
    }
}

fn register(ids: &[&str]) -> SipProcedure {
    SipProcedure::Register(RegisterRequest { service_ids: ids.iter().map(|s| s.to_string()).collect() })
}

fn deregister(ids: &[&str]) -> SipProcedure {
    SipProcedure::Deregister(DeregisterRequest { service_ids: ids.iter().map(|s| s.to_string()).collect() })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The register status document of a 200, with its Content-Type checked.
fn register_response(r: &Message) -> RegisterResponse {
    assert_eq!(r.status(), Some(200), "{r}");
    assert_eq!(r.content_type(), Some(mbms_key_management::CONTENT_TYPE_REGISTER_RESPONSE));
    RegisterResponse::from_xml(std::str::from_utf8(&r.body).unwrap()).unwrap()
}

/// The Warning texts of an answer.
fn warnings(r: &Message) -> Vec<String> {
    r.warnings().unwrap().into_iter().map(|w| w.text).collect()
}

fn is_rebootstrap(r: &Message) -> bool {
    r.status() == Some(sip_based_mbms::SIP_STATUS_REBOOTSTRAP)
        && r.warnings().unwrap().iter().any(|w| {
            w.code == sip_based_mbms::SIP_WARN_CODE_REBOOTSTRAP
                && w.text == sip_based_mbms::SIP_WARN_TEXT_REBOOTSTRAP
        })
}

/// The next MIKEY datagram on the UE's MIKEY socket.
fn recv_mikey(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("a MIKEY datagram within the timeout");
    buf[..n].to_vec()
}

/// Checks a pushed MSK message: IDi = the SCF FQDN, IDr = B-TID, and that it opens with the
/// independent MUK (mikey and Python). Returns the MSK ID (None for a solicited pull).
fn open_push(message: &[u8], idi: &str, btid: &str, muk: &[u8; 32]) -> Option<MskId> {
    let parsed = mbms::parse_msk_message(message).unwrap();
    assert_eq!(std::str::from_utf8(parsed.idi().data).unwrap(), idi, "IDi is the NAF (SCF) FQDN");
    assert_eq!(std::str::from_utf8(parsed.idr().data).unwrap(), btid, "IDr is the B-TID");
    assert_eq!(parsed.key_domain_id(), KEY_DOMAIN);
    let update = mbms::verify_and_decrypt_msk(&mbms::Muk::new(*muk), &parsed).expect("verifies with the MUK");
    if let Some(out) = python(MIKEY_ORACLE, &["open", &hex::encode(muk), &hex::encode(message)]) {
        assert_eq!(field(&out, "mac_ok"), "1", "{out}");
        assert_eq!(field(&out, "ids"), format!("{},{}", hex::encode(idi), hex::encode(btid)), "{out}");
    }
    match update {
        mbms::MskUpdate::Msk(d) => Some(d.msk_id),
        mbms::MskUpdate::SolicitedPull(_) => None,
    }
}

fn no_datagram(sock: &UdpSocket) {
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 2048];
    assert!(sock.recv_from(&mut buf).is_err(), "nothing more is pushed");
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ------------------------------------------------------------------------------------------------
// Tests

/// GBA_U with the card: INVITE registering to A (BM-SC 1) and C (BM-SC 2); each BM-SC pushes
/// with its own SCF FQDN as IDi and a MUK of its own (NAF keys per FQDN, two Zn queries); the
/// card takes the BM-SC 1 message after its NAF derivation for SCF FQDN 1. Then, in the dialog:
/// an MSK request, a rotation and a solicited pull (IDi still the SCF's), a deregistration, BYE.
#[test]
fn gba_u_register_at_two_bmscs_msk_request_deregister() {
    let profile = CardProfile::default();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::SipBased, None);
    let mut card = Card::new(&profile);
    let b = bootstrap(&n.bsf, &profile, Some(&mut card));
    card.naf_derivation(&naf_id(SCF_FQDN_1), profile.impi().as_bytes()).to_vec();
    let (muk1, muk2) = (muk(&profile, &b, SCF_FQDN_1), muk(&profile, &b, SCF_FQDN_2));
    assert_ne!(muk1, muk2, "each BM-SC gets its own MUK");

    let mut ue = SipUe::new(n.pcscf.addr(), &impu(&profile), "u1");
    let r = ue.security(&b.btid, register(&[SVC_A, SVC_C]));
    let doc = register_response(&r);
    assert_eq!((doc.code_of(SVC_A), doc.code_of(SVC_C)), (Some(200), Some(200)));
    assert_eq!(r.to().unwrap().tag().map(str::to_owned), ue.to_tag);
    assert_eq!(ue.route, [format!("<sip:{};lr>", n.pcscf.addr())], "the P-CSCF record-routes");

    let reg1 = n.bmsc1.sip_registration(&b.btid).expect("registered at BM-SC 1");
    assert_eq!((reg1.naf_fqdn.as_str(), reg1.services.clone()), (SCF_FQDN_1, strings(&[SVC_A])));
    assert_eq!(reg1.identity, impu(&profile), "the P-CSCF's assertion reached the BM-SC");
    assert_eq!(reg1.ue_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(n.bmsc2.sip_registration(&b.btid).unwrap().services, strings(&[SVC_C]));
    let mut pushed = [recv_mikey(&mikey), recv_mikey(&mikey)];
    pushed.sort_by_key(|m| mbms::parse_msk_message(m).unwrap().idi().data.to_vec());
    assert_eq!(open_push(&pushed[0], SCF_FQDN_1, &b.btid, &muk1), n.bmsc1.current_msk_id(SVC_A));
    assert_eq!(open_push(&pushed[1], SCF_FQDN_2, &b.btid, &muk2), n.bmsc2.current_msk_id(SVC_C));
    card.msk_update(&pushed[0]);
    let s = n.scf.stats();
    assert_eq!((s.invites, s.zn_queries, s.bmsc_requests, s.invite_ok), (1, 2, 2, 1), "{s:?}");
    assert_eq!(n.scf.btid_of(&impu(&profile)), Some(b.btid.clone()));

    // MSK request in the dialog: the current MSK of Key Group 1; keys are held, so no Zn.
    let any_1 = MskKeyId::any_in_group(KEY_DOMAIN, 1);
    let r = ue.security(&b.btid, SipProcedure::MskRequest(MskRequest { key_ids: vec![any_1] }));
    assert_eq!(r.content_type(), Some(mbms_key_management::CONTENT_TYPE_MSK_RESPONSE));
    let doc = MskResponse::from_xml(std::str::from_utf8(&r.body).unwrap()).unwrap();
    assert_eq!(doc.code_of(&any_1), Some(200));
    let msg = recv_mikey(&mikey);
    assert_eq!(open_push(&msg, SCF_FQDN_1, &b.btid, &muk1), n.bmsc1.current_msk_id(SVC_A));
    card.msk_update(&msg);
    // Key Group 2 (service B) is subscribed but not registered: the BM-SC says 403.
    let any_2 = MskKeyId::any_in_group(KEY_DOMAIN, 2);
    let r = ue.security(&b.btid, SipProcedure::MskRequest(MskRequest { key_ids: vec![any_2] }));
    let doc = MskResponse::from_xml(std::str::from_utf8(&r.body).unwrap()).unwrap();
    assert_eq!(doc.code_of(&any_2), Some(mbms_key_management::STATUS_NOT_REGISTERED));
    assert_eq!(n.scf.stats().zn_queries, 2);

    // Rotation and solicited pull at BM-SC 1: IDi stays the SCF FQDN; the card takes the MSK.
    let new_id = n.bmsc1.rotate_msk(SVC_A).unwrap();
    let msg = recv_mikey(&mikey);
    assert_eq!(open_push(&msg, SCF_FQDN_1, &b.btid, &muk1), Some(new_id));
    card.msk_update(&msg);
    assert_eq!(n.bmsc1.solicited_pull(&b.btid).unwrap(), 1);
    let pull = recv_mikey(&mikey);
    assert!(mbms::parse_msk_message(&pull).unwrap().is_solicited_pull());
    assert_eq!(open_push(&pull, SCF_FQDN_1, &b.btid, &muk1), None);

    // Deregistration from A: nothing more for A.
    let doc = register_response(&ue.security(&b.btid, deregister(&[SVC_A])));
    assert_eq!(doc.code_of(SVC_A), Some(200));
    assert!(n.bmsc1.registered(&b.btid).is_empty());
    n.bmsc1.rotate_msk(SVC_A).unwrap();
    no_datagram(&mikey);
    assert_eq!(n.bmsc2.registered(&b.btid), strings(&[SVC_C]));

    assert_eq!(ue.bye().status(), Some(200));
    assert_eq!(n.scf.dialog_count(), 0);
    let s = n.scf.stats();
    assert_eq!((s.reinvites, s.byes, s.error_responses), (3, 1, 0), "{s:?}");
    wait_until("the ACKs", || n.scf.stats().acks == 4);
    assert!(n.pcscf.stats().requests >= 9);
}

/// GBA_ME: the push verifies with the ME-based MUK of the SCF FQDN. A service outside the
/// subscription is refused with 403. The SCF then wants a new bootstrapping: the old B-TID gets
/// the re-bootstrap answer; a re-INVITE with the new B-TID re-registers (MUK update, TS 26.237
/// §10.4.2.3): the BM-SC moves the registration to the new B-TID and pushes with the new MUK.
#[test]
fn gba_me_register_then_muk_update_after_rebootstrap() {
    let profile = me_profile();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::SipBased, None);
    let b = bootstrap(&n.bsf, &profile, None);
    let muk1 = muk(&profile, &b, SCF_FQDN_1);

    let mut ue = SipUe::new(n.pcscf.addr(), &impu(&profile), "me1");
    let doc = register_response(&ue.security(&b.btid, register(&[SVC_A])));
    assert_eq!(doc.code_of(SVC_A), Some(200));
    assert_eq!(open_push(&recv_mikey(&mikey), SCF_FQDN_1, &b.btid, &muk1), n.bmsc1.current_msk_id(SVC_A));

    // Not subscribed to C: the procedure is terminated, nothing reaches BM-SC 2.
    let r = ue.security(&b.btid, register(&[SVC_C]));
    assert_eq!(r.status(), Some(sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED));
    assert!(!is_rebootstrap(&r));
    assert!(warnings(&r).iter().any(|w| w.contains("does not subscribe")), "{r}");
    assert_eq!(n.bmsc2.registration_count(), 0);

    // Policy: a new bootstrapping is wanted.
    assert!(n.scf.require_rebootstrap(&impu(&profile)));
    let r = ue.security(&b.btid, register(&[SVC_A]));
    assert!(is_rebootstrap(&r), "{r}");
    let b2 = bootstrap(&n.bsf, &profile, None);
    assert_ne!(b2.btid, b.btid);
    let muk2 = muk(&profile, &b2, SCF_FQDN_1);
    let doc = register_response(&ue.security(&b2.btid, register(&[SVC_A])));
    assert_eq!(doc.code_of(SVC_A), Some(200));
    assert_eq!(open_push(&recv_mikey(&mikey), SCF_FQDN_1, &b2.btid, &muk2), n.bmsc1.current_msk_id(SVC_A));
    assert_eq!(n.bmsc1.registered(&b2.btid), strings(&[SVC_A]));
    assert!(n.bmsc1.registered(&b.btid).is_empty(), "the registration moved to the new B-TID");
    assert_eq!(n.bmsc1.registration_count(), 1);
    // Rotation reaches the UE under the new MUK.
    let id = n.bmsc1.rotate_msk(SVC_A).unwrap();
    assert_eq!(open_push(&recv_mikey(&mikey), SCF_FQDN_1, &b2.btid, &muk2), Some(id));

    // The BSF forgets the B-TID and the SCF holds no keys for a new one: re-bootstrap again.
    assert!(n.bsf.expire(&b2.btid));
    assert!(n.scf.require_rebootstrap(&impu(&profile)));
    let r = ue.security(&b2.btid, register(&[SVC_A]));
    assert!(is_rebootstrap(&r), "{r}");
    let s = n.scf.stats();
    assert_eq!((s.rebootstrap_responses, s.zn_queries), (2, 2), "{s:?}");
}

/// Keys older than the SCF's policy: the re-bootstrap answer right away.
#[test]
fn fresh_keys_policy_makes_the_ue_bootstrap_again() {
    let profile = me_profile();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::SipBased, Some(Duration::ZERO));
    let b = bootstrap(&n.bsf, &profile, None);
    let mut ue = SipUe::new(n.pcscf.addr(), &impu(&profile), "fresh");
    let r = ue.security(&b.btid, register(&[SVC_A]));
    assert!(is_rebootstrap(&r), "{r}");
    assert_eq!(n.bmsc1.registration_count(), 0);
}

/// The earlier variant (TS 26.237 CR §10.2): the INVITE makes the SCF post `authorize`; the UE's
/// own HTTP registration then needs X-3GPP-Intended-Identity naming an IMPU the SCF authorized
/// (per service: 403 for the others; no header: 403).
#[test]
fn authorize_variant_then_http_registration() {
    let profile = me_profile();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::Authorize, None);
    let b = bootstrap(&n.bsf, &profile, None);
    let mut ue = SipUe::new(n.pcscf.addr(), &impu(&profile), "auth");
    // A bare TS 26.346 register document is enough in this variant.
    let body = RegisterRequest { service_ids: strings(&[SVC_A]) }.to_xml();
    let doc = register_response(&ue.invite(mbms_key_management::CONTENT_TYPE_REGISTER, &body));
    assert_eq!(doc.code_of(SVC_A), Some(200));
    assert_eq!(n.bmsc1.authorized_services(&impu(&profile)), strings(&[SVC_A]));
    assert_eq!(n.scf.stats().zn_queries, 0, "no keys in this variant");
    assert_eq!(n.bmsc1.registration_count(), 0, "the SCF only authorizes");
    // Deregistration belongs to HTTP here.
    assert_eq!(ue.security(&b.btid, deregister(&[SVC_A])).status(), Some(488));

    // The UE registers over HTTP with Digest (GBA_ME realm, password base64(MRK)).
    let (_, ks) = milenage(&profile, &b.rand);
    let bmsc_naf = naf_id("bmsc1.example.org");
    let ks_naf = gba_kdf(&ks, 0x01, &[b"gba-me", &b.rand, profile.impi().as_bytes(), &bmsc_naf]);
    let mrk = gba_kdf(&ks_naf, gba::mbms_keys::FC_MBMS_ME_KEYS, &[gba::mbms_keys::P0_MRK]);
    let muk_http = gba_kdf(&ks_naf, gba::mbms_keys::FC_MBMS_ME_KEYS, &[gba::mbms_keys::P0_MUK]);
    let body = RegisterRequest { service_ids: strings(&[SVC_A, SVC_B]) }.to_xml();
    let (status, text) = http_register(&n.bmsc1, &b.btid, &mrk, &body, Some(&impu(&profile)));
    assert_eq!(status, 200, "{text}");
    let doc = RegisterResponse::from_xml(&text).unwrap();
    assert_eq!(doc.code_of(SVC_A), Some(200));
    assert_eq!(doc.code_of(SVC_B), Some(sip_based_mbms::STATUS_NOT_AUTHORIZED));
    assert_eq!(n.bmsc1.registered(&b.btid), strings(&[SVC_A]));
    // The HTTP path: IDi = the BM-SC FQDN, its own MUK.
    let msg = recv_mikey(&mikey);
    assert_eq!(open_push(&msg, "bmsc1.example.org", &b.btid, &muk_http), n.bmsc1.current_msk_id(SVC_A));
    let (status, text) = http_register(&n.bmsc1, &b.btid, &mrk, &body, None);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("X-3GPP-Intended-Identity"), "{text}");
    let (status, text) = http_register(&n.bmsc1, &b.btid, &mrk, &body, Some("sip:someone@else.org"));
    assert_eq!((status, text.contains("not an identity")), (403, true), "{text}");
}

/// One Digest-authenticated HTTP registration (TS 33.246 §6.3.2.1, RFC 2617) with an optional
/// X-3GPP-Intended-Identity: (status, body).
fn http_register(
    bmsc: &Bmsc,
    btid: &str,
    mrk: &[u8; 32],
    body: &str,
    intended: Option<&str>,
) -> (u16, String) {
    use base64::Engine as _;
    let t = RequestType::Register;
    let url = format!("http://{}{}", bmsc.addr(), t.path_and_query());
    let send = |auth: Option<&str>| {
        let mut req = agent().post(&url).header("Content-Type", t.request_content_type());
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(i) = intended {
            req = req.header(sip_based_mbms::INTENDED_IDENTITY_HEADER, i);
        }
        let mut resp = req.send(body.as_bytes()).expect("HTTP exchange");
        let www: Vec<String> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        (resp.status().as_u16(), www, resp.body_mut().read_to_string().unwrap_or_default())
    };
    let (status, www, _) = send(None);
    assert_eq!(status, 401);
    let ch = www
        .iter()
        .map(|h| DigestChallenge::parse(h).unwrap())
        .find(|c| c.realm == mbms_key_management::realm_me("bmsc1.example.org"))
        .expect("the ME realm");
    let password = base64::engine::general_purpose::STANDARD.encode(mrk);
    let target = t.path_and_query();
    let request = DigestRequest { method: "POST", uri: &target, entity_body: body.as_bytes() };
    let auth = DigestAuthorization::answer(&ch, btid, password.as_bytes(), &request, "c0ffee01", 1);
    let (status, _, text) = send(Some(&auth.to_header_value().unwrap()));
    (status, text)
}

/// Raw bytes to `to` from a fresh socket: the answer, if one comes within half a second.
fn exchange(to: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let sock = udp_socket();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    sock.send_to(bytes, to).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let m = Message::parse_syntax(&buf[..n]).expect("the SCF and the P-CSCF answer in SIP");
        if m.status().is_some_and(|s| s >= 200) {
            return Some(m);
        }
    }
}

/// An INVITE as text (fresh Call-ID and branch), for the cases to edit.
fn raw_invite(from_uri: &str, content_type: &str, body: &str, extra: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "INVITE sip:scf@{SCF_DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-bad-{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <{from_uri}>;tag=bad\r\nTo: <sip:scf@{SCF_DOMAIN}>\r\nCall-ID: bad-{n}@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:ue@127.0.0.1:9>\r\n{extra}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len(),
    )
}

/// Bad input through the P-CSCF and straight at the SCF and the BM-SC: the right 4xx with a
/// reason, nothing registered, everybody keeps serving (a good registration works afterwards).
#[test]
fn bad_input_gets_4xx_and_registers_nothing() {
    let profile = me_profile();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::SipBased, None);
    let b = bootstrap(&n.bsf, &profile, None);
    let who = impu(&profile);
    let ct = sip_based_mbms::CONTENT_TYPE_SIP_SECURITY;
    let good = SipSecurityRequest { btid: b.btid.clone(), procedure: register(&[SVC_A]) }.to_xml();
    let body_of = |p: SipProcedure| SipSecurityRequest { btid: b.btid.clone(), procedure: p }.to_xml();
    let unknown_btid = SipSecurityRequest {
        btid: "AAAAAAAAAAAAAAAAAAAAAA==@bsf.example.org".into(),
        procedure: register(&[SVC_A]),
    }
    .to_xml();
    let (pcscf, scf) = (n.pcscf.addr(), n.scf.addr());
    let mut reinvite = raw_invite(&who, ct, &good, "");
    reinvite = reinvite
        .replace(&format!("To: <sip:scf@{SCF_DOMAIN}>"), &format!("To: <sip:scf@{SCF_DOMAIN}>;tag=nosuch"));
    let mut bye = raw_invite(&who, ct, "", "")
        .replace("INVITE sip", "BYE sip")
        .replace("CSeq: 1 INVITE", "CSeq: 2 BYE");
    bye = bye
        .replace(&format!("To: <sip:scf@{SCF_DOMAIN}>"), &format!("To: <sip:scf@{SCF_DOMAIN}>;tag=nosuch"));
    // (what, where, bytes, status, a word of the Warning)
    let cases: Vec<(&str, SocketAddr, String, u16, &str)> = vec![
        (
            "malformed CSeq",
            pcscf,
            raw_invite(&who, ct, &good, "").replace("CSeq: 1 INVITE", "CSeq: one"),
            400,
            "CSeq",
        ),
        (
            "malformed CSeq at the SCF",
            scf,
            raw_invite(&who, ct, &good, "").replace("CSeq: 1 INVITE", "CSeq: one"),
            400,
            "CSeq",
        ),
        (
            "unknown user at the P-CSCF",
            pcscf,
            raw_invite("sip:nobody@example.org", ct, &good, ""),
            403,
            "not a registered user",
        ),
        (
            "forged PAI straight at the SCF",
            scf,
            raw_invite(&who, ct, &good, &format!("P-Asserted-Identity: <{who}>\r\n")),
            403,
            "trusted proxy",
        ),
        (
            "unknown service",
            pcscf,
            raw_invite(&who, ct, &body_of(register(&["urn:keysim:nope"])), ""),
            404,
            "unknown User Service",
        ),
        (
            "not subscribed",
            pcscf,
            raw_invite(&who, ct, &body_of(register(&[SVC_B])), ""),
            403,
            "does not subscribe",
        ),
        ("garbled XML", pcscf, raw_invite(&who, ct, "<mbmsAuthorizedSecurityRegister", ""), 400, "body"),
        (
            "no B-TID",
            pcscf,
            raw_invite(&who, ct, &good.replace(&format!("<btid>{}</btid>", b.btid), ""), ""),
            400,
            "btid",
        ),
        (
            "wrong Content-Type",
            pcscf,
            raw_invite(&who, "application/sdp", "v=0\r\n", ""),
            415,
            "Content-Type",
        ),
        ("no body", pcscf, raw_invite(&who, ct, "", ""), 400, "no application/mbms-btid+xml body"),
        (
            "unknown B-TID",
            pcscf,
            raw_invite(&who, ct, &unknown_btid, ""),
            sip_based_mbms::SIP_STATUS_REBOOTSTRAP,
            sip_based_mbms::SIP_WARN_TEXT_REBOOTSTRAP,
        ),
        ("re-INVITE outside a dialog", pcscf, reinvite, 481, "no such dialog"),
        ("BYE outside a dialog", pcscf, bye, 481, "no such dialog"),
        (
            "another domain",
            pcscf,
            raw_invite(&who, ct, &good, "")
                .replace(&format!("INVITE sip:scf@{SCF_DOMAIN}"), "INVITE sip:scf@elsewhere.org"),
            404,
            "not served here",
        ),
        (
            "tel Request-URI",
            pcscf,
            raw_invite(&who, ct, &good, "")
                .replace(&format!("INVITE sip:scf@{SCF_DOMAIN}"), "INVITE tel:+15550100"),
            416,
            "not a SIP URI",
        ),
        (
            "MESSAGE",
            pcscf,
            raw_invite(&who, ct, &good, "")
                .replace("INVITE sip", "MESSAGE sip")
                .replace("CSeq: 1 INVITE", "CSeq: 1 MESSAGE"),
            405,
            "not served",
        ),
        (
            "Max-Forwards 0",
            pcscf,
            raw_invite(&who, ct, &good, "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
            483,
            "Max-Forwards",
        ),
    ];
    for (what, to, bytes, status, word) in cases {
        let r = exchange(to, bytes.as_bytes()).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status(), Some(status), "{what}: {r}");
        let texts: Vec<String> = r.warnings().unwrap_or_default().into_iter().map(|w| w.text).collect();
        assert!(texts.iter().any(|t| t.contains(word)), "{what}: warnings {texts:?} lack {word:?}");
    }
    // Unanswerable datagrams are dropped and counted.
    let dropped = n.scf.stats().dropped;
    for junk in [&b"garbage"[..], b"SIP/2.0 200 OK\r\n\r\n", &[0xFF; 64]] {
        assert!(exchange(scf, junk).is_none());
    }
    assert_eq!(n.scf.stats().dropped, dropped + 3);
    assert_eq!(n.bmsc1.registration_count() + n.bmsc2.registration_count(), 0);
    assert_eq!(n.bmsc1.stats().scf_requests, 0, "nothing reached the BM-SC");

    // The BM-SC: SCF requests from an untrusted source, and bad ones from the trusted one.
    let keys = || NafKeys {
        muk: mbms::Muk::new([7; 32]),
        muk_lifetime: "2030-01-01T00:00:00Z".into(),
        btid: b.btid.clone(),
        naf_fqdn: SCF_FQDN_1.into(),
    };
    let info = |ip: &str| {
        NafKeyInfo {
            ue_ip_addresses: vec![ip.parse().unwrap()],
            keys: Some(keys()),
            procedure: register(&[SVC_A]),
        }
        .to_xml()
    };
    let t = sip_based_mbms::ScfRequestType::SipBasedRegister;
    let nki = sip_based_mbms::CONTENT_TYPE_NAF_KEY_INFO;
    let id_header = Some(who.as_str());
    let http_cases: Vec<HttpCase> = vec![
        (
            "untrusted source",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            nki,
            info("127.0.0.1"),
            id_header,
            403,
            "trusted SCF",
        ),
        ("no asserted identity", SCF_SOURCE, nki, info("127.0.0.1"), None, 400, "X-3GPP-Asserted-Identity"),
        (
            "wrong Content-Type",
            SCF_SOURCE,
            "application/xml",
            info("127.0.0.1"),
            id_header,
            415,
            "Content-Type",
        ),
        ("garbled body", SCF_SOURCE, nki, "<mbmsAuthorizedSecurityRegister".into(), id_header, 400, "XML"),
        ("UE off loopback", SCF_SOURCE, nki, info("192.0.2.1"), id_header, 400, "loopback"),
        (
            "no keys in a registration",
            SCF_SOURCE,
            nki,
            NafKeyInfo { ue_ip_addresses: vec![], keys: None, procedure: register(&[SVC_A]) }.to_xml(),
            id_header,
            400,
            "NAF keys",
        ),
        (
            "body and query differ",
            SCF_SOURCE,
            nki,
            NafKeyInfo { ue_ip_addresses: vec![], keys: None, procedure: deregister(&[SVC_A]) }.to_xml(),
            id_header,
            400,
            "query says",
        ),
    ];
    for (what, source, content_type, body, identity, status, word) in http_cases {
        let (got, reason) =
            raw_http(n.bmsc1.addr(), source, &t.path_and_query(), content_type, identity, &body);
        assert_eq!(got, status, "{what}: {reason}");
        assert!(reason.contains(word), "{what}: `{reason}` lacks {word:?}");
    }
    assert_eq!(n.bmsc1.registration_count(), 0);
    let s = n.bmsc1.stats();
    assert_eq!((s.scf_requests, s.scf_untrusted, s.registrations), (0, 1, 0), "{s:?}");
    no_datagram(&mikey);

    // Everybody still serves: a good registration goes through.
    let mut ue = SipUe::new(pcscf, &who, "after");
    assert_eq!(register_response(&ue.security(&b.btid, register(&[SVC_A]))).code_of(SVC_A), Some(200));
    assert_eq!(
        open_push(&recv_mikey(&mikey), SCF_FQDN_1, &b.btid, &muk(&profile, &b, SCF_FQDN_1)),
        n.bmsc1.current_msk_id(SVC_A)
    );
}

/// What, source, Content-Type, body, X-3GPP-Asserted-Identity, status, a word of the reason.
type HttpCase<'a> = (&'a str, IpAddr, &'a str, String, Option<&'a str>, u16, &'a str);

/// One HTTP request to `to` from `source` (bound before connecting): (status, reason header).
fn raw_http(
    to: SocketAddr,
    source: IpAddr,
    target: &str,
    content_type: &str,
    identity: Option<&str>,
    body: &str,
) -> (u16, String) {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.bind(&SocketAddr::new(source, 0).into()).unwrap();
    s.connect_timeout(&to.into(), TIMEOUT).unwrap();
    let mut stream: std::net::TcpStream = s.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let id = identity
        .map(|i| format!("{}: {i}\r\n", sip_based_mbms::ASSERTED_IDENTITY_HEADER))
        .unwrap_or_default();
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: {to}\r\nContent-Type: {content_type}\r\n{id}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let r = network::http::parse_response(&raw).unwrap();
    (r.status, r.header(mbms_key_management::REASON_HEADER).unwrap_or_default().to_owned())
}

/// SIPp as the UE (tests/sipp/mbms_register.xml): INVITE with the Annex I.1 body through the
/// P-CSCF, 200 with the register status document, ACK, BYE. The BM-SC then holds the user's
/// registration and the pushed MSK message verifies with the independent MUK.
#[test]
fn sipp_registers_through_the_pcscf() {
    let sipp = match std::process::Command::new("sipp").arg("-v").output() {
        Ok(_) => "sipp",
        Err(e) if require_oracles() => panic!("sipp (Debian package sip-tester) is required: {e}"),
        Err(e) => {
            eprintln!("sipp not available ({e}): skipping the SIPp run (apt-get install sip-tester)");
            return;
        }
    };
    let profile = me_profile();
    let mikey = udp_socket();
    let n = net(mikey.local_addr().unwrap().port(), ScfMode::SipBased, None);
    let b = bootstrap(&n.bsf, &profile, None);
    let dir = std::env::temp_dir().join(format!("keysim-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inf = dir.join("ue.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{};{};{SCF_DOMAIN};{SVC_A};\n", impu(&profile), b.btid))
        .unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/mbms_register.xml");
    // A free local port for SIPp (it has no "any port" choice of its own).
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let out = std::process::Command::new(sipp)
        .args(["-sf", scenario.to_str().unwrap(), "-inf", inf.to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-l", "1"])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin", "-trace_err"])
        .arg(n.pcscf.addr().to_string())
        .current_dir(&dir)
        .output()
        .expect("sipp runs");
    let errors: String = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "sipp failed ({}):\n{}\n{}\n{errors}",
        out.status,
        String::from_utf8_lossy(&out.stdout).lines().rev().take(40).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(n.bmsc1.registered(&b.btid), strings(&[SVC_A]));
    let reg = n.bmsc1.sip_registration(&b.btid).unwrap();
    assert_eq!((reg.identity, reg.naf_fqdn.as_str()), (impu(&profile), SCF_FQDN_1));
    let msg = recv_mikey(&mikey);
    assert_eq!(
        open_push(&msg, SCF_FQDN_1, &b.btid, &muk(&profile, &b, SCF_FQDN_1)),
        n.bmsc1.current_msk_id(SVC_A)
    );
    let s = n.scf.stats();
    assert_eq!((s.invites, s.invite_ok, s.byes), (1, 1, 1), "{s:?}");
    assert_eq!(n.scf.dialog_count(), 0);
}
