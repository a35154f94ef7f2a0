//! The ME's Ub client (TS 24.109 §4–5, RFC 3310) against the real BSF of `network` over loopback
//! HTTP, with the emulated card, for GBA_U and GBA_ME.
//!
//! Independent sources:
//! - the BSF's own view: its stored session and the keys it hands a NAF over Zn
//!   (`network::bsf::zn_query`);
//! - the `milenage` crate for CK / IK (Ks = CK ‖ IK) and f5* (SQN_MS out of AUTS), and the GBA KDF
//!   of TS 33.220 Annex B.2 written out below over `hmac` + `sha2`;
//! - a hand-written fake BSF (raw TCP) whose 200 OK carries a wrong `rspauth`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use gba::{AuthVector, Milenage, Sqn};
use hmac::{Hmac, KeyInit, Mac};
use me::card::FID_USIM_GBABP;
use me::{App, Error, GbaClient, GbaVariant, NafKey, UbClient};
use network::bsf::{Bsf, BsfConfig, Subscriber, zn_query};
use sha2::Sha256;
use sim_reader::{CardProfile, Emulator, Protocol};
use support::{PIN, bmsc_naf_id};
use wire::digest::{self, DigestChallenge};
use wire::ub::{self, AkaNonce, BootstrappingInfo};
use wire::zn::{GbaType, NafKeyMaterial, ZnRequest};

// ------------------------------------------------------------------------------------------------
// Oracles

/// Ks = CK ‖ IK of the `milenage` crate (TS 33.220 §4.5.2).
fn oracle_ks(profile: &CardProfile, rand: &[u8; 16]) -> [u8; 32] {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let (_, ck, ik, _) = m.f2345(rand);
    let mut ks = [0u8; 32];
    ks[..16].copy_from_slice(&ck);
    ks[16..].copy_from_slice(&ik);
    ks
}

/// The GBA KDF of TS 33.220 Annex B.2 by hand: HMAC-SHA-256(Ks, 0x01 ‖ P0 ‖ L0 ‖ … ‖ P3 ‖ L3).
fn oracle_kdf(ks: &[u8; 32], p0: &[u8], rand: &[u8], impi: &[u8], naf_id: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(ks).unwrap();
    mac.update(&[0x01]);
    for p in [p0, rand, impi, naf_id] {
        mac.update(p);
        mac.update(&(p.len() as u16).to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// SQN_MS out of AUTS with f5* of the `milenage` crate (TS 33.102 §6.3.3).
fn oracle_sqn_ms(profile: &CardProfile, rand: &[u8; 16], auts: &[u8; 14]) -> u64 {
    let mut m = milenage::Milenage::new_with_opc(*profile.k(), *profile.opc());
    let ak_star = m.f5star(rand);
    auts[..6].iter().zip(ak_star).fold(0u64, |acc, (a, b)| (acc << 8) | u64::from(a ^ b))
}

// ------------------------------------------------------------------------------------------------
// Set-up

fn bsf_for(profile: &CardProfile) -> Bsf {
    let sub = Subscriber::from_profile_toml(&profile.to_toml()).unwrap();
    Bsf::start(BsfConfig { subscribers: vec![sub], ..BsfConfig::default() }).unwrap()
}

fn gba_client(profile: &CardProfile, variant: GbaVariant, protocol: Protocol) -> GbaClient<Emulator> {
    let card = me::Card::new(Emulator::new(profile).unwrap().with_protocol(protocol));
    card.verify_pin(PIN).unwrap();
    GbaClient::new(card, variant)
}

/// EF.GBABP: RAND, B-TID, lifetime (TS 31.102 §4.2.79), each one length byte first.
fn read_gbabp(gba: &GbaClient<Emulator>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let raw = gba.card().read_transparent(Some(App::Usim), FID_USIM_GBABP).unwrap();
    let mut parts = Vec::new();
    let mut rest = &raw[..];
    for _ in 0..3 {
        let (len, tail) = rest.split_first().unwrap();
        let len = if *len == 0xFF { 0 } else { usize::from(*len) };
        parts.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    (parts[0].clone(), parts[1].clone(), parts[2].clone())
}

// ------------------------------------------------------------------------------------------------
// Tests

/// GBA_U: the BSF runs GBA_U (User-Agent with 3gpp-gba-uicc), the card writes RAND, the client
/// writes B-TID and lifetime into EF.GBABP; the card's Ks_ext_NAF equals the BSF's over Zn and the
/// independent KDF over the `milenage` crate's Ks, and so does Zn's Ks_int_NAF.
#[test]
fn gba_u_bootstrap_matches_zn_and_the_oracles() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile);
    for protocol in [Protocol::T1, Protocol::T0] {
        let mut gba = gba_client(&profile, GbaVariant::GbaU, protocol);
        let impi = gba.card().impi().unwrap();
        let ub = UbClient::new(&bsf.url()).unwrap();
        let report = ub.bootstrap(&mut gba, &impi).unwrap();
        assert_eq!(report.variant, GbaVariant::GbaU);
        assert_eq!(report.resynchronisations, 0);
        assert_eq!(report.http_requests, 2);
        let session = bsf.session(&report.btid).expect("the BSF stored the bootstrapping");
        assert_eq!((session.gba_type, session.rand), (GbaType::GbaU, report.rand));
        assert_eq!(report.btid, gba::BTid::new(&report.rand, &bsf.domain()).unwrap().as_str());
        assert_eq!(ub::parse_utc_time(&report.lifetime).unwrap(), session.expires);

        let (rand, btid, lifetime) = read_gbabp(&gba);
        assert_eq!(rand, report.rand, "the card wrote the challenge's RAND");
        assert_eq!(btid, report.btid.as_bytes());
        assert_eq!(lifetime, report.lifetime.as_bytes());

        let naf = bmsc_naf_id();
        let keys = gba.naf_keys(&naf, &impi).unwrap();
        assert!(matches!(keys.key, NafKey::KsExtNaf(_)));
        assert_eq!(
            (keys.btid.as_str(), keys.lifetime.as_str()),
            (report.btid.as_str(), report.lifetime.as_str())
        );
        let zn = zn_query(
            bsf.addr(),
            &ZnRequest { btid: report.btid.clone(), naf_id: naf.clone(), gba_u_aware: true },
        )
        .unwrap();
        let ks = oracle_ks(&profile, &report.rand);
        let (ext, int) = (
            oracle_kdf(&ks, b"gba-me", &report.rand, impi.as_bytes(), naf.as_bytes()),
            oracle_kdf(&ks, b"gba-u", &report.rand, impi.as_bytes(), naf.as_bytes()),
        );
        match zn.keys {
            NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: Some(ks_int_naf) } => {
                assert_eq!(ks_ext_naf.expose(), keys.key.expose(), "card and BSF agree on Ks_ext_NAF");
                assert_eq!(*ks_int_naf.expose(), int, "Zn's Ks_int_NAF is the independent KDF's");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*keys.key.expose(), ext, "Ks_ext_NAF is the independent KDF's");
        assert_eq!(zn.key_expiry, report.lifetime);
    }
}

/// GBA_ME: the same subscriber without the uicc token in User-Agent runs GBA_ME; Ks_NAF from the
/// ME equals Zn's and the independent KDF's; EF.GBABP is left alone.
#[test]
fn gba_me_bootstrap_matches_zn_and_the_oracles() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile);
    let mut gba = gba_client(&profile, GbaVariant::GbaMe, Protocol::T1);
    let gbabp_before = read_gbabp(&gba);
    let impi = gba.card().impi().unwrap();
    let ub = UbClient::new(&bsf.url()).unwrap();
    let report = ub.bootstrap(&mut gba, &impi).unwrap();
    assert_eq!(bsf.session(&report.btid).unwrap().gba_type, GbaType::GbaMe);
    assert_eq!(gba.bootstrap_info().unwrap(), (report.btid.clone(), report.lifetime.clone()));
    assert_eq!(read_gbabp(&gba), gbabp_before, "GBA_ME writes nothing into EF.GBABP");

    let naf = bmsc_naf_id();
    let keys = gba.naf_keys(&naf, &impi).unwrap();
    assert!(matches!(keys.key, NafKey::KsNaf(_)));
    let zn = zn_query(
        bsf.addr(),
        &ZnRequest { btid: report.btid.clone(), naf_id: naf.clone(), gba_u_aware: true },
    )
    .unwrap();
    let ks = oracle_ks(&profile, &report.rand);
    let expected = oracle_kdf(&ks, b"gba-me", &report.rand, impi.as_bytes(), naf.as_bytes());
    match zn.keys {
        NafKeyMaterial::GbaMe { ks_naf } => assert_eq!(ks_naf.expose(), keys.key.expose()),
        other => panic!("{other:?}"),
    }
    assert_eq!(*keys.key.expose(), expected);
    // A second bootstrapping gives a new B-TID and new keys.
    let again = ub.bootstrap(&mut gba, &impi).unwrap();
    assert_ne!(again.btid, report.btid);
    assert_ne!(gba.naf_keys(&naf, &impi).unwrap().key.expose(), keys.key.expose());
}

/// A card that has seen a higher SQN answers AUTS; the client sends it (empty password, RFC 3310
/// §3.4), the BSF resynchronises to the SQN_MS the `milenage` crate reads out of AUTS, and the
/// fresh challenge succeeds. Both variants.
#[test]
fn auts_resynchronisation_then_success() {
    let network_profile = CardProfile::default();
    let mut fields = network_profile.to_fields();
    fields.sqn = "000000001000".into();
    let card_profile = CardProfile::try_from(fields).unwrap();
    for variant in [GbaVariant::GbaU, GbaVariant::GbaMe] {
        let bsf = bsf_for(&network_profile);
        let impi = network_profile.impi();
        let before = bsf.subscriber_sqn(impi).unwrap();
        let mut gba = gba_client(&card_profile, variant, Protocol::T1);
        let report = UbClient::new(&bsf.url()).unwrap().bootstrap(&mut gba, impi).unwrap();
        assert_eq!(report.resynchronisations, 1);
        assert_eq!(report.http_requests, 3);
        let after = bsf.subscriber_sqn(impi).unwrap();
        assert!(before.value() < 0x1000 && after.value() > 0x1000, "{before:?} → {after:?}");
        assert_eq!(bsf.session_count(), 1);
        // The card's SQN_MS is what the milenage crate reads from an AUTS for a stale vector.
        let rand = [0x5A; 16];
        let av = AuthVector::generate(
            &Milenage::new(network_profile.k(), network_profile.opc()),
            &rand,
            Sqn::from_seq_ind(2, 0, 5).unwrap(),
            network_profile.amf(),
        );
        let autn = match variant {
            GbaVariant::GbaU => av.gba_u_autn().to_bytes(),
            GbaVariant::GbaMe => av.autn.to_bytes(),
        };
        match gba.bootstrap(&rand, &autn).unwrap() {
            me::BootstrapOutcome::Auts(auts) => {
                let sqn_ms = oracle_sqn_ms(&network_profile, &rand, &auts.to_bytes());
                assert_eq!(sqn_ms >> 5, after.value() >> 5, "the BSF took the card's SQN_MS");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// An unknown IMPI is refused by the BSF (403); a BSF with other subscriber keys fails AUTN on the
/// card: no session, and nothing written to the card.
#[test]
fn refusals_store_nothing() {
    let profile = CardProfile::default();
    let bsf = bsf_for(&profile);
    let mut gba = gba_client(&profile, GbaVariant::GbaU, Protocol::T1);
    let before = read_gbabp(&gba);
    let ub = UbClient::new(&bsf.url()).unwrap();
    let e = ub.bootstrap(&mut gba, "nobody@ims.example.org").unwrap_err();
    assert!(matches!(e, Error::HttpStatus { status: 403, .. }), "{e:?}");

    let mut fields = profile.to_fields();
    fields.k = "00112233445566778899aabbccddeeff".into();
    let other = bsf_for(&CardProfile::try_from(fields).unwrap());
    let e = UbClient::new(&other.url()).unwrap().bootstrap(&mut gba, profile.impi()).unwrap_err();
    assert!(matches!(e, Error::PeerNotAuthentic { peer: "BSF", .. }), "{e:?}");
    assert_eq!(other.session_count(), 0);
    assert_eq!(read_gbabp(&gba), before);
    assert!(matches!(gba.bootstrap_info(), Err(Error::NoBootstrap(_))));

    assert!(matches!(UbClient::new("http://192.0.2.1:80/"), Err(Error::InvalidInput(_))));
}

/// One HTTP request read off a connection: the header block (the requests here have no body).
fn read_request(stream: &std::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    head
}

/// A fake BSF: a right AKA challenge for the card, then a 200 OK whose rspauth (or body) is not
/// the BSF's. The client must refuse it and write no B-TID. Also: a 200 with garbage XML and a
/// right rspauth is refused as malformed.
#[test]
fn wrong_rspauth_or_garbage_body_is_refused() {
    let profile = CardProfile::default();
    for case in ["wrong-rspauth", "no-auth-info", "garbage-body"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let m = Milenage::new(profile.k(), profile.opc());
        let rand = [0x33; 16];
        let av = AuthVector::generate(&m, &rand, Sqn::from_seq_ind(5, 0, 5).unwrap(), profile.amf());
        let nonce = AkaNonce { rand, autn: av.gba_u_autn(), server_data: vec![] }.encode();
        let xres = av.xres;
        let server = std::thread::spawn(move || {
            let challenge = DigestChallenge {
                realm: "bsf.example.org".into(),
                nonce,
                algorithm: Some(ub::ALGORITHM_AKAV1_MD5.into()),
                qop: vec![digest::Qop::AuthInt],
                opaque: Some("0pq".into()),
                stale: false,
            }
            .to_header_value()
            .unwrap();
            let (mut s, _) = listener.accept().unwrap();
            read_request(&s);
            write!(
                s,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            drop(s);
            let (mut s, _) = listener.accept().unwrap();
            let head = read_request(&s);
            let auth_line = head
                .lines()
                .find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: ")))
                .unwrap()
                .to_owned();
            let auth = digest::DigestAuthorization::parse(&auth_line).unwrap();
            assert!(auth.verify(&xres, "GET", b""), "the client's RES is the card's");
            let info = BootstrappingInfo {
                btid: gba::BTid::new(&rand, "bsf.example.org").unwrap().as_str().to_owned(),
                lifetime: "2099-01-01T00:00:00Z".into(),
            };
            let body = if case == "garbage-body" { "<x>".to_owned() } else { info.to_xml() };
            let good = digest::rspauth(&auth.digest_input(&xres, "GET", b""), body.as_bytes());
            let rspauth = if case == "wrong-rspauth" {
                digest::rspauth(&auth.digest_input(&xres, "GET", b""), b"another body")
            } else {
                good
            };
            let info_header = if case == "no-auth-info" {
                String::new()
            } else {
                format!(
                    "Authentication-Info: qop=auth-int, rspauth=\"{rspauth}\", cnonce=\"{}\", nc=00000001\r\n",
                    auth.cnonce.unwrap()
                )
            };
            write!(
                s,
                "HTTP/1.1 200 OK\r\n{info_header}Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                ub::BSF_CONTENT_TYPE,
                body.len()
            )
            .unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let mut gba = gba_client(&profile, GbaVariant::GbaU, Protocol::T1);
        let e = UbClient::new(&url).unwrap().bootstrap(&mut gba, profile.impi()).unwrap_err();
        server.join().unwrap();
        match case {
            "garbage-body" => assert!(matches!(e, Error::MalformedAnswer { .. }), "{case}: {e:?}"),
            _ => assert!(matches!(e, Error::PeerNotAuthentic { .. }), "{case}: {e:?}"),
        }
        let (card_rand, btid, _) = read_gbabp(&gba);
        assert_eq!(card_rand, rand, "{case}: the card ran the challenge");
        assert!(btid.is_empty(), "{case}: no B-TID was written");
        assert!(gba.bootstrap_info().is_err());
    }
}
