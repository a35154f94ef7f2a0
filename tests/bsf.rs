//! The BSF of `network` (TS 33.220 §4.5, TS 24.109 §4–5) end to end over real loopback HTTP, with
//! a blocking HTTP client (ureq) as the ME's transport and the emulated card driven through
//! `sim_reader::Session` per docs/card-interface.md.
//!
//! Independent sources:
//! - RFC 2617 §3.5's published example (Mufasa / "Circle Of Life", qop=auth);
//! - Python's `hashlib.md5` recomputing every digest response and rspauth from the raw header
//!   text at test time (`KEYSIM_REQUIRE_ORACLES=1`: a missing python3 fails the test; otherwise
//!   the check is skipped with a printed reason), and Python's `base64` for the B-TID;
//! - the `milenage` crate for RES / CK / IK / AK* (test-kit/src/independent.rs), and the GBA KDF
//!   written out over `hmac` + `sha2` for Ks_NAF / Ks_ext_NAF / Ks_int_NAF;
//! - the card itself, whose Ks_ext_NAF (NAF Derivation Mode) must equal the BSF's over Zn.

use std::io::{Read, Write};
use std::time::Duration;

use gba::{NafId, UaSecurityProtocolId};
use network::bsf::{Bsf, BsfConfig, Subscriber, ZnError, zn_query};
use sim_reader::{CardProfile, Emulator, Protocol};
use test_kit::independent;
use test_kit::mbms_run::{
    CardLink, SELECT_USIM, authenticate_3g, gba_bootstrap, naf_derivation, select_fid, sw, verify_pin1,
};
use test_kit::{DIGEST_ORACLE, python};
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest};
use wire::ub::{self, AkaNonce, BootstrappingInfo};
use wire::zn::{self, GbaType, NafKeyMaterial, ZnErrorCode, ZnRequest};

/// The User-Agent of an ME whose card can run GBA_U (TS 24.109 §4.3.1).
const UA_UICC: &str = "keysim-test/0.1 3gpp-gba-uicc";
/// The User-Agent of an ME without GBA_U card support.
const UA_ME: &str = "keysim-test/0.1 3gpp-gba";

// ------------------------------------------------------------------------------------------------
// Oracles

/// The request-digest Python computes for a sent Authorization header.
fn py_response(authorization: &str, password: &[u8], method: &str, body: &[u8]) -> Option<String> {
    python(DIGEST_ORACLE, &["response", authorization, &hex::encode(password), method, &hex::encode(body)])
}

/// The rspauth Python computes for a request's Authorization header and the response body.
fn py_rspauth(authorization: &str, password: &[u8], response_body: &[u8]) -> Option<String> {
    python(DIGEST_ORACLE, &["rspauth", authorization, &hex::encode(password), &hex::encode(response_body)])
}

/// base64(RAND) "@" domain computed by Python's base64 module.
fn py_btid(rand: &[u8; 16], domain: &str) -> Option<String> {
    python(
        "import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode() + '@' + sys.argv[2])",
        &[&hex::encode(rand), domain],
    )
}

/// RES = f2(RAND) of the `milenage` crate: the ME side of tests that need no card.
fn oracle_res(profile: &CardProfile, rand: &[u8; 16]) -> [u8; 8] {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    m.f2345(rand).0
}

/// (CK, IK) of the `milenage` crate.
fn oracle_ck_ik(profile: &CardProfile, rand: &[u8; 16]) -> ([u8; 16], [u8; 16]) {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let (_, ck, ik, _) = m.f2345(rand);
    (ck, ik)
}

fn oracle_ks(profile: &CardProfile, rand: &[u8; 16]) -> [u8; 32] {
    let (ck, ik) = oracle_ck_ik(profile, rand);
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&ck);
    ks[16..].copy_from_slice(&ik);
    ks
}

// ------------------------------------------------------------------------------------------------
// The ME's HTTP side

/// One HTTP answer, as the ME sees it.
#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    authentication_info: Option<String>,
    body: String,
}

struct Ub {
    agent: ureq::Agent,
    url: String,
    user_agent: &'static str,
}

impl Ub {
    fn new(bsf: &Bsf, user_agent: &'static str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ub { agent, url: bsf.url(), user_agent }
    }

    fn get(&self, authorization: Option<&str>) -> Reply {
        let mut req = self.agent.get(&self.url).header("User-Agent", self.user_agent);
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().expect("HTTP exchange with the BSF");
        let header =
            |name: &str| resp.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned());
        let (www_authenticate, authentication_info) =
            (header("www-authenticate"), header("authentication-info"));
        Reply {
            status: resp.status().as_u16(),
            www_authenticate,
            authentication_info,
            body: resp.body_mut().read_to_string().expect("body"),
        }
    }

    fn post_zn(&self, zn_url: &str, body: &[u8]) -> Reply {
        let mut resp = self
            .agent
            .post(zn_url)
            .header("Content-Type", zn::ZN_CONTENT_TYPE)
            .send(body)
            .expect("HTTP exchange with the BSF");
        Reply {
            status: resp.status().as_u16(),
            www_authenticate: None,
            authentication_info: None,
            body: resp.body_mut().read_to_string().expect("body"),
        }
    }

    /// The first request: `username=IMPI, nonce="", response=""` → the AKA challenge.
    fn challenge(&self, impi: &str, realm: &str) -> DigestChallenge {
        let initial =
            DigestAuthorization::initial(impi, realm, ub::UB_REQUEST_URI).to_header_value().unwrap();
        let reply = self.get(Some(&initial));
        assert_eq!(reply.status, 401, "{reply:?}");
        let ch =
            DigestChallenge::parse(reply.www_authenticate.as_deref().expect("WWW-Authenticate")).unwrap();
        assert!(ch.is_aka_v1_md5(), "{ch:?}");
        assert_eq!(ch.qop, vec![digest::Qop::AuthInt], "TS 24.109 offers auth-int");
        ch
    }
}

const GET: DigestRequest<'static> = DigestRequest { method: "GET", uri: "/", entity_body: b"" };

/// A finished bootstrapping as the ME saw it.
struct Bootstrapped {
    rand: [u8; 16],
    res: Vec<u8>,
    info: BootstrappingInfo,
}

/// Sends the answer to `ch` with password `res`; on 200 checks rspauth and the XML body, with
/// wire::ub and with Python. Returns the reply and the parsed body (on 200).
fn answer(
    ub: &Ub,
    ch: &DigestChallenge,
    impi: &str,
    res: &[u8],
    cnonce: &str,
) -> (Reply, Option<BootstrappingInfo>) {
    let auth = DigestAuthorization::answer(ch, impi, res, &GET, cnonce, 1);
    let header = auth.to_header_value().unwrap();
    if let Some(py) = py_response(&header, res, "GET", b"") {
        assert_eq!(py, auth.response, "Python's RFC 2617 digest differs from wire::ub's");
    }
    let reply = ub.get(Some(&header));
    if reply.status != 200 {
        return (reply, None);
    }
    let info_header = reply.authentication_info.as_deref().expect("Authentication-Info on the 200 OK");
    let info = AuthenticationInfo::parse(info_header).unwrap();
    assert_eq!((info.qop, info.nc, info.cnonce.as_deref()), (auth.qop, auth.nc, Some(cnonce)));
    let rspauth = info.rspauth.as_deref().expect("rspauth");
    assert!(digest::verify_rspauth(&auth.digest_input(res, "GET", b""), reply.body.as_bytes(), rspauth));
    if let Some(py) = py_rspauth(&header, res, reply.body.as_bytes()) {
        assert_eq!(py, rspauth, "Python's rspauth differs from the BSF's");
    }
    let body = BootstrappingInfo::from_xml(&reply.body).unwrap();
    (reply, Some(body))
}

/// Checks B-TID = base64(RAND)@domain (gba's BTid and Python) and the lifetime format.
fn check_btid(info: &BootstrappingInfo, rand: &[u8; 16], bsf: &Bsf) {
    assert_eq!(info.btid, gba::BTid::new(rand, &bsf.domain()).unwrap().as_str());
    if let Some(py) = py_btid(rand, &bsf.domain()) {
        assert_eq!(info.btid, py);
    }
    let expiry = ub::parse_utc_time(&info.lifetime).unwrap();
    assert_eq!(bsf.session(&info.btid).expect("stored").expires, expiry);
}

// ------------------------------------------------------------------------------------------------
// The card side

fn card(profile: &CardProfile, protocol: Protocol) -> CardLink<Emulator> {
    let mut link = CardLink::new(Emulator::new(profile).expect("emulated card").with_protocol(protocol));
    link.expect("SELECT ADF.USIM", &SELECT_USIM, sw::OK).unwrap();
    link.expect("VERIFY PIN1", &verify_pin1(profile.pin1()), sw::OK).unwrap();
    link
}

/// What the card answered to a bootstrapping challenge.
enum CardAnswer {
    Res(Vec<u8>),
    Auts([u8; 14]),
}

fn card_gba_bootstrap(link: &mut CardLink<Emulator>, rand: &[u8; 16], autn: &[u8; 16]) -> CardAnswer {
    let ex = link.expect("AUTHENTICATE GBA bootstrap", &gba_bootstrap(rand, autn), sw::OK).unwrap();
    match ex.data.as_slice() {
        [0xDB, len, res @ ..] if usize::from(*len) == res.len() => CardAnswer::Res(res.to_vec()),
        [0xDC, 0x0E, auts @ ..] => CardAnswer::Auts(auts.try_into().expect("AUTS is 14 octets")),
        other => panic!("GBA bootstrap answer {}", hex::encode_upper(other)),
    }
}

/// UPDATE BINARY EF.GBABP at 1 + len(RAND): Lbtid B-TID Llt lifetime (docs/card-interface.md).
fn write_gbabp(link: &mut CardLink<Emulator>, info: &BootstrappingInfo) {
    link.expect("SELECT EF.GBABP", &select_fid(0x6FD6), sw::OK).unwrap();
    let mut data = vec![info.btid.len() as u8];
    data.extend_from_slice(info.btid.as_bytes());
    data.push(info.lifetime.len() as u8);
    data.extend_from_slice(info.lifetime.as_bytes());
    let mut apdu = vec![0x00, 0xD6, 0x00, 17, data.len() as u8];
    apdu.extend_from_slice(&data);
    link.expect("UPDATE BINARY EF.GBABP", &apdu, sw::OK).unwrap();
    let read = link.expect("READ BINARY EF.GBABP", &[0x00, 0xB0, 0x00, 0x00, 0x00], sw::OK).unwrap();
    assert_eq!(read.data.get(18..18 + info.btid.len()), Some(info.btid.as_bytes()));
}

/// GBA_U bootstrapping with the card, answering one synchronisation failure with AUTS.
fn bootstrap_gba_u(ub: &Ub, bsf: &Bsf, link: &mut CardLink<Emulator>, profile: &CardProfile) -> Bootstrapped {
    let impi = profile.impi();
    let mut ch = ub.challenge(impi, &bsf.domain());
    for attempt in 0..2 {
        let nonce = AkaNonce::decode(&ch.nonce).unwrap();
        match card_gba_bootstrap(link, &nonce.rand, &nonce.autn.to_bytes()) {
            CardAnswer::Res(res) => {
                assert_eq!(
                    res,
                    oracle_res(profile, &nonce.rand),
                    "the card's RES is f2 of the milenage crate"
                );
                let (reply, info) = answer(ub, &ch, impi, &res, "0a4f113b");
                assert_eq!(reply.status, 200, "{reply:?}");
                let info = info.unwrap();
                check_btid(&info, &nonce.rand, bsf);
                return Bootstrapped { rand: nonce.rand, res, info };
            }
            CardAnswer::Auts(auts) if attempt == 0 => {
                let sqn_ms = independent::sqn_ms_from_auts(profile.k(), profile.opc(), &nonce.rand, &auts);
                let auts = gba::Auts::from_bytes(&auts);
                let resync = DigestAuthorization::answer_sync_failure(&ch, impi, &auts, &GET, "5ccc069c", 1);
                let header = resync.to_header_value().unwrap();
                if let Some(py) = py_response(&header, b"", "GET", b"") {
                    assert_eq!(
                        py, resync.response,
                        "the AUTS answer uses the empty password (RFC 3310 §3.4)"
                    );
                }
                let reply = ub.get(Some(&header));
                assert_eq!(reply.status, 401, "{reply:?}");
                assert_eq!(
                    bsf.subscriber_sqn(impi).unwrap().value() >> 5,
                    (sqn_ms >> 5) + 1,
                    "SQN_HE resynced"
                );
                ch = DigestChallenge::parse(reply.www_authenticate.as_deref().unwrap()).unwrap();
            }
            CardAnswer::Auts(_) => panic!("still out of sync after one resynchronisation"),
        }
    }
    unreachable!()
}

fn bsf_for(profile_toml: &str) -> Bsf {
    let sub = Subscriber::from_profile_toml(profile_toml).expect("subscriber from the card profile");
    Bsf::start(BsfConfig { subscribers: vec![sub], ..BsfConfig::default() }).expect("BSF on loopback")
}

fn naf_id() -> NafId {
    NafId::new("bmsc.example.org", UaSecurityProtocolId::MBMS).unwrap()
}

// ------------------------------------------------------------------------------------------------
// Tests

/// RFC 2617 §3.5's published example through wire::ub and through Python (qop=auth).
#[test]
fn rfc_2617_example_through_gba_and_python() {
    let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, \
        cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let auth = DigestAuthorization::parse(header).unwrap();
    assert!(auth.verify(b"Circle Of Life", "GET", b""));
    if let Some(py) = py_response(header, b"Circle Of Life", "GET", b"") {
        assert_eq!(py, "6629fae49393a05397450978507c4ef1");
    }
}

/// GBA_U: bootstrap with the card (AUTN* accepted in the GBA context), B-TID and lifetime into
/// EF.GBABP, NAF derivation on the card; Zn gives the same Ks_ext_NAF and the Ks_int_NAF of the
/// independent KDF, with lifetime, GBA type, IMPI and IMPUs.
#[test]
fn gba_u_bootstrap_and_zn_match_the_card() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile.to_toml());
    let ub = Ub::new(&bsf, UA_UICC);
    let mut link = card(&profile, Protocol::T1);
    let boot = bootstrap_gba_u(&ub, &bsf, &mut link, &profile);
    assert_eq!(bsf.session(&boot.info.btid).unwrap().gba_type, GbaType::GbaU);
    assert_eq!(boot.res.len(), 8);
    write_gbabp(&mut link, &boot.info);

    let naf = naf_id();
    let ex = link
        .expect(
            "AUTHENTICATE NAF derivation",
            &naf_derivation(naf.as_bytes(), profile.impi().as_bytes()),
            sw::OK,
        )
        .unwrap();
    let card_ext = match ex.data.as_slice() {
        [0xDB, 0x20, key @ ..] if key.len() == 32 => key.to_vec(),
        other => panic!("NAF derivation answer {}", hex::encode_upper(other)),
    };

    let answer = zn_query(
        bsf.addr(),
        &ZnRequest { btid: boot.info.btid.clone(), naf_id: naf.clone(), gba_u_aware: true },
    )
    .expect("Zn answer");
    let ks = oracle_ks(&profile, &boot.rand);
    match &answer.keys {
        NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: Some(int) } => {
            assert_eq!(
                ks_ext_naf.expose().as_slice(),
                card_ext.as_slice(),
                "card and BSF agree on Ks_ext_NAF"
            );
            let impi = profile.impi().as_bytes();
            assert_eq!(*ks_ext_naf.expose(), independent::ks_ext_naf(&ks, &boot.rand, impi, naf.as_bytes()));
            assert_eq!(*int.expose(), independent::ks_int_naf(&ks, &boot.rand, impi, naf.as_bytes()));
        }
        other => panic!("expected GBA_U keys with Ks_int_NAF, got {other:?}"),
    }
    assert_eq!(answer.gba_type(), GbaType::GbaU);
    assert_eq!(answer.key_expiry, boot.info.lifetime);
    assert_eq!(answer.impi, profile.impi());
    assert_eq!(answer.impus, profile.impu());
    assert_eq!(answer.btid, boot.info.btid);

    // A NAF that is not GBA_U aware gets Ks_ext_NAF only (TS 29.109 GBA_U-Awareness-Indicator).
    let unaware =
        zn_query(bsf.addr(), &ZnRequest { btid: boot.info.btid.clone(), naf_id: naf, gba_u_aware: false })
            .expect("Zn answer");
    match unaware.keys {
        NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: None } => {
            assert_eq!(ks_ext_naf.expose().as_slice(), card_ext.as_slice())
        }
        other => panic!("{other:?}"),
    }
    bsf.shutdown().unwrap();
}

/// GBA_ME (the GUSS says GBA_ME): the 3G AUTHENTICATE (under T=0) accepts the plain AUTN; Ks = CK ‖ IK
/// in the ME; Zn's Ks_NAF equals the test's own derivation with gba::kdf and the independent KDF.
#[test]
fn gba_me_bootstrap_and_zn_ks_naf() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&format!("{}\ngba_type = \"GBA_ME\"\n", profile.to_toml()));
    let ub = Ub::new(&bsf, UA_UICC);
    let mut link = card(&profile, Protocol::T0);
    let ch = ub.challenge(profile.impi(), &bsf.domain());
    let nonce = AkaNonce::decode(&ch.nonce).unwrap();
    let ex = link
        .expect("AUTHENTICATE 3G", &authenticate_3g(&nonce.rand, &nonce.autn.to_bytes()), sw::OK)
        .unwrap();
    // DB 08 RES 10 CK 10 IK [08 Kc] (TS 31.102 §7.1.2.1).
    let d = ex.data.as_slice();
    assert_eq!(
        (d.first(), d.get(1), d.get(10), d.get(27)),
        (Some(&0xDB), Some(&8), Some(&0x10), Some(&0x10)),
        "{}",
        hex::encode_upper(d)
    );
    assert!(d.len() >= 44, "{}", hex::encode_upper(d));
    let (res, ck, ik) = (d[2..10].to_vec(), d[11..27].to_vec(), d[28..44].to_vec());
    let (ock, oik) = oracle_ck_ik(&profile, &nonce.rand);
    assert_eq!(
        (ck.as_slice(), ik.as_slice()),
        (ock.as_slice(), oik.as_slice()),
        "CK, IK of the milenage crate"
    );
    let (reply, info) = answer(&ub, &ch, profile.impi(), &res, "deadbeef");
    assert_eq!(reply.status, 200, "{reply:?}");
    let info = info.unwrap();
    check_btid(&info, &nonce.rand, &bsf);
    assert_eq!(bsf.session(&info.btid).unwrap().gba_type, GbaType::GbaMe);

    // The ME's own Ks and Ks_NAF.
    let ks = gba::Ks::from_ck_ik(&gba::Ck::from_slice(&ck).unwrap(), &gba::Ik::from_slice(&ik).unwrap());
    let naf = naf_id();
    let mine = gba::kdf::derive_ks_naf(&ks, &nonce.rand, profile.impi().as_bytes(), &naf).unwrap();
    assert_eq!(
        *mine.expose(),
        independent::ks_ext_naf(ks.expose(), &nonce.rand, profile.impi().as_bytes(), naf.as_bytes())
    );
    let answer =
        zn_query(bsf.addr(), &ZnRequest { btid: info.btid.clone(), naf_id: naf, gba_u_aware: true }).unwrap();
    match &answer.keys {
        NafKeyMaterial::GbaMe { ks_naf } => assert_eq!(ks_naf.expose(), mine.expose()),
        other => panic!("expected GBA_ME keys, got {other:?}"),
    }
    assert_eq!((answer.gba_type(), answer.key_expiry.as_str()), (GbaType::GbaMe, info.lifetime.as_str()));
    assert_eq!(answer.impus, profile.impu());
}

/// A GBA_U subscriber whose ME does not announce `3gpp-gba-uicc` runs GBA_ME: the plain AUTN
/// passes the card's 3G context, and Zn answers with Ks_NAF.
#[test]
fn without_the_uicc_token_a_gba_u_subscriber_runs_gba_me() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile.to_toml());
    let ub = Ub::new(&bsf, UA_ME);
    let mut link = card(&profile, Protocol::T1);
    let ch = ub.challenge(profile.impi(), &bsf.domain());
    let nonce = AkaNonce::decode(&ch.nonce).unwrap();
    let ex = link
        .expect("AUTHENTICATE 3G", &authenticate_3g(&nonce.rand, &nonce.autn.to_bytes()), sw::OK)
        .unwrap();
    let res = ex.data.get(2..10).expect("RES").to_vec();
    let (reply, info) = answer(&ub, &ch, profile.impi(), &res, "c0ffee");
    assert_eq!(reply.status, 200, "{reply:?}");
    let btid = info.unwrap().btid;
    assert_eq!(bsf.session(&btid).unwrap().gba_type, GbaType::GbaMe);
    let answer = zn_query(bsf.addr(), &ZnRequest { btid, naf_id: naf_id(), gba_u_aware: true }).unwrap();
    assert!(matches!(answer.keys, NafKeyMaterial::GbaMe { .. }));
}

/// A card whose SQN_MS is ahead of the BSF's HE: the first challenge ends in `DC AUTS`; the BSF
/// takes SQN_MS from AUTS (MAC-S checked) and the second challenge succeeds.
#[test]
fn auts_resynchronises_the_bsf() {
    let network_profile = CardProfile::default();
    // The card has already seen SEQ 0x80 (IND 0); the BSF starts from the profile's SEQ 1.
    let mut fields = network_profile.to_fields();
    fields.sqn = "000000001000".into();
    let card_profile = CardProfile::try_from(fields).unwrap();
    let bsf = bsf_for(&network_profile.to_toml());
    let ub = Ub::new(&bsf, UA_UICC);
    let mut link = card(&card_profile, Protocol::T1);

    let before = bsf.subscriber_sqn(network_profile.impi()).unwrap();
    let boot = bootstrap_gba_u(&ub, &bsf, &mut link, &card_profile);
    let after = bsf.subscriber_sqn(network_profile.impi()).unwrap();
    assert!(after.value() > 0x1000 && before.value() < 0x1000, "before {before:?}, after {after:?}");
    assert_eq!(bsf.session_count(), 1);
    assert!(bsf.session(&boot.info.btid).is_some());

    // A bad AUTS (MAC-S wrong) changes no SQN and stores nothing.
    let ch = ub.challenge(network_profile.impi(), &bsf.domain());
    let sqn = bsf.subscriber_sqn(network_profile.impi()).unwrap();
    let forged = gba::Auts::from_bytes(&[0x42; 14]);
    let header = DigestAuthorization::answer_sync_failure(&ch, network_profile.impi(), &forged, &GET, "c", 1)
        .to_header_value()
        .unwrap();
    let reply = ub.get(Some(&header));
    assert_eq!(reply.status, 401);
    // The fresh challenge took one SQN step, the forged AUTS none.
    assert_eq!(bsf.subscriber_sqn(network_profile.impi()).unwrap().value() >> 5, (sqn.value() >> 5) + 1);
    assert_eq!(bsf.session_count(), 1);
}

/// A wrong RES is answered with a fresh challenge (new nonce) and nothing is stored; the right
/// RES for the new challenge then works (RES from the milenage crate: no card needed).
#[test]
fn wrong_res_gets_a_new_challenge_and_stores_nothing() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile.to_toml());
    let ub = Ub::new(&bsf, UA_UICC);
    let ch = ub.challenge(profile.impi(), &bsf.domain());
    let mut res = oracle_res(&profile, &AkaNonce::decode(&ch.nonce).unwrap().rand);
    res[7] ^= 1;
    let (reply, info) = answer(&ub, &ch, profile.impi(), &res, "1");
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(info.is_none());
    assert_eq!(bsf.session_count(), 0);
    let again = DigestChallenge::parse(reply.www_authenticate.as_deref().unwrap()).unwrap();
    assert_ne!(again.nonce, ch.nonce);
    // The used nonce is gone: the right RES for it now only gets another challenge.
    res[7] ^= 1;
    let (reply, _) = answer(&ub, &ch, profile.impi(), &res, "2");
    assert_eq!(reply.status, 401);
    assert_eq!(bsf.session_count(), 0);
    // A fresh challenge answered right.
    let ch = ub.challenge(profile.impi(), &bsf.domain());
    let rand = AkaNonce::decode(&ch.nonce).unwrap().rand;
    let (reply, info) = answer(&ub, &ch, profile.impi(), &oracle_res(&profile, &rand), "3");
    assert_eq!(reply.status, 200, "{reply:?}");
    check_btid(&info.unwrap(), &rand, &bsf);
    assert_eq!(bsf.session_count(), 1);
}

/// Malformed Authorization headers, Zn bodies and raw HTTP get a 4xx with a reason; the BSF keeps
/// serving and no stored bootstrapping (nor its keys) changes.
#[test]
fn bad_input_gets_4xx_and_changes_nothing() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile.to_toml());
    let ub = Ub::new(&bsf, UA_UICC);
    let impi = profile.impi();

    // One good bootstrapping first (RES from the milenage crate).
    let ch = ub.challenge(impi, &bsf.domain());
    let rand = AkaNonce::decode(&ch.nonce).unwrap().rand;
    let (reply, info) = answer(&ub, &ch, impi, &oracle_res(&profile, &rand), "1");
    assert_eq!(reply.status, 200);
    let btid = info.unwrap().btid;
    let zn = |btid: &str| {
        zn_query(bsf.addr(), &ZnRequest { btid: btid.into(), naf_id: naf_id(), gba_u_aware: true })
    };
    let key_before = match zn(&btid).unwrap().keys {
        NafKeyMaterial::GbaU { ks_ext_naf, .. } => *ks_ext_naf.expose(),
        other => panic!("{other:?}"),
    };
    let session_before = bsf.session(&btid).unwrap();

    // Ub: malformed or unacceptable Authorization headers.
    let bad_headers: Vec<(Option<String>, u16, &str)> = vec![
        (None, 400, "Authorization"),
        (Some("Basic dXNlcjpwYXNz".into()), 400, "not Digest"),
        (Some("Digest".into()), 400, "no parameters"),
        (Some(format!("Digest realm=\"r\", username=\"{impi}")), 400, "unterminated"),
        (
            Some(format!(
                "Digest username=\"{impi}\", username=\"x\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\""
            )),
            400,
            "twice",
        ),
        (Some(format!("Digest username=\"{impi}\" realm=\"r\"")), 400, "unexpected"),
        (
            Some(format!("Digest username=\"{impi}\", realm=\"r\", nonce=\"\", uri=\"/\"")),
            400,
            "`response` is missing",
        ),
        (
            Some(format!(
                "Digest username=\"{impi}\", realm=\"r\", nonce=\"\", uri=\"/other\", response=\"\""
            )),
            400,
            "request target",
        ),
        (
            Some(format!("Digest username=\"{impi}\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"zz\"")),
            400,
            "32 hex",
        ),
        (
            Some(
                "Digest username=\"nobody@example\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\""
                    .into(),
            ),
            403,
            "unknown IMPI",
        ),
    ];
    for (header, status, reason) in &bad_headers {
        let reply = ub.get(header.as_deref());
        assert_eq!(reply.status, *status, "{header:?}: {reply:?}");
        assert!(reply.body.contains(reason), "{header:?}: {:?} lacks {reason:?}", reply.body);
        assert!(reply.www_authenticate.is_none());
    }

    // Ub: answers to a live challenge that are refused before the challenge is used up.
    let ch = ub.challenge(impi, &bsf.domain());
    let rand = AkaNonce::decode(&ch.nonce).unwrap().rand;
    let good = DigestAuthorization::answer(&ch, impi, &oracle_res(&profile, &rand), &GET, "9", 1);
    let mut bad_auts = good.clone();
    bad_auts.auts = Some("not base64!".into());
    let mut short_auts = good.clone();
    short_auts.auts = Some("AAAA".into());
    let mut other_algorithm = good.clone();
    other_algorithm.algorithm = Some("MD5".into());
    let mut no_qop = good.clone();
    (no_qop.qop, no_qop.nc, no_qop.cnonce) = (None, None, None);
    let mut other_opaque = good.clone();
    other_opaque.opaque = Some("0000".into());
    let mut other_realm = good.clone();
    other_realm.realm = "elsewhere".into();
    for (a, reason) in [
        (bad_auts, "auts"),
        (short_auts, "auts"),
        (other_algorithm, "algorithm"),
        (no_qop, "qop"),
        (other_opaque, "opaque"),
        (other_realm, "realm"),
    ] {
        let reply = ub.get(Some(&a.to_header_value().unwrap()));
        assert_eq!(reply.status, 400, "{a:?}: {reply:?}");
        assert!(reply.body.contains(reason), "{:?} lacks {reason:?}", reply.body);
    }
    // Raw HTTP a client library would not send: non-ASCII and doubled Authorization headers, garbage.
    let raw = |bytes: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(bsf.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let doubled = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        good.to_header_value().unwrap(),
        good.to_header_value().unwrap()
    );
    let r = raw(doubled.as_bytes());
    assert!(r.starts_with("HTTP/1.1 400") && r.contains("more than one"), "{r}");
    let r = raw(
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username=\"\xff\"\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400") && r.contains("not visible ASCII"), "{r}");
    let r = raw(b"GARBAGE\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // The challenge survived all of that: the good answer still works.
    let reply = ub.get(Some(&good.to_header_value().unwrap()));
    assert_eq!(reply.status, 200, "{reply:?}");
    let second = BootstrappingInfo::from_xml(&reply.body).unwrap().btid;

    // Zn: malformed bodies.
    for (body, reason) in [
        (&b"not xml at all"[..], "malformed XML"),
        (b"<ZnRequest><btid>x</btid></ZnRequest>", "nafId"),
        (b"<Other/>", "root element"),
        (b"<ZnRequest><btid>x</btid><nafId>***</nafId></ZnRequest>", "base64"),
        (b"<ZnRequest><btid>x</btid><nafId>AQAAAAE=</nafId></ZnRequest>", "NAF_Id"),
        (b"\xff\xfe", "UTF-8"),
        (b"<ZnRequest xmlns=\"urn:other\"><btid>x</btid><nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId></ZnRequest>", "namespace"),
    ] {
        let reply = ub.post_zn(&bsf.zn_url(), body);
        assert_eq!(reply.status, 400, "{reply:?}");
        let err = zn::ZnErrorBody::from_xml(&reply.body).unwrap();
        assert_eq!(err.code, ZnErrorCode::BadRequest);
        assert!(err.reason.contains(reason), "{:?} lacks {reason:?}", err.reason);
    }

    // Nothing stored changed: both bootstrappings there, the first one's key the same.
    assert_eq!(bsf.session_count(), 2);
    assert_eq!(bsf.session(&btid).unwrap(), session_before);
    assert!(bsf.session(&second).is_some());
    match zn(&btid).unwrap().keys {
        NafKeyMaterial::GbaU { ks_ext_naf, .. } => assert_eq!(*ks_ext_naf.expose(), key_before),
        other => panic!("{other:?}"),
    }
}

/// Zn for an unknown B-TID, an expired one, and one bootstrapped with a zero lifetime: 404 with
/// the code saying which; a live B-TID beside them still answers.
#[test]
fn zn_unknown_and_expired_btid() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile.to_toml());
    let ub = Ub::new(&bsf, UA_ME);
    let boot = |ub: &Ub| {
        let ch = ub.challenge(profile.impi(), &bsf.domain());
        let rand = AkaNonce::decode(&ch.nonce).unwrap().rand;
        let (reply, info) = answer(ub, &ch, profile.impi(), &oracle_res(&profile, &rand), "1");
        assert_eq!(reply.status, 200);
        info.unwrap().btid
    };
    let zn = |btid: &str| {
        zn_query(bsf.addr(), &ZnRequest { btid: btid.into(), naf_id: naf_id(), gba_u_aware: false })
    };
    let refused = |r: Result<zn::ZnAnswer, ZnError>| match r {
        Err(ZnError::Refused { status, body }) => (status, body.code),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let live = boot(&ub);
    let doomed = boot(&ub);
    assert!(zn(&doomed).is_ok());
    assert_eq!(refused(zn("AAAAAAAAAAAAAAAAAAAAAA==@bsf.example.org")), (404, ZnErrorCode::UnknownBtid));
    assert!(bsf.expire(&doomed));
    assert!(!bsf.expire("nope"));
    assert_eq!(refused(zn(&doomed)), (404, ZnErrorCode::ExpiredBtid));
    bsf.set_key_lifetime(Duration::ZERO);
    let instant = boot(&ub);
    assert_eq!(refused(zn(&instant)), (404, ZnErrorCode::ExpiredBtid));
    assert!(zn(&live).is_ok(), "the live B-TID is untouched");
    // The raw wire form of a refusal.
    let reply = ub.post_zn(
        &bsf.zn_url(),
        ZnRequest { btid: doomed.clone(), naf_id: naf_id(), gba_u_aware: true }.to_xml().as_bytes(),
    );
    assert_eq!(reply.status, 404);
    assert!(reply.body.contains("<code>expired-btid</code>"), "{}", reply.body);
}
