//! The UE with SIP-based MBMS security (TS 26.237 §10.4.2) end to end on loopback against the
//! real peers of `network`: BSF, SCF (as NAF, Zn to the BSF), P-CSCF (asserting the identity) and
//! BM-SC (`sip-based-*` requests from the SCF), on both key-management paths.
//!
//! Independent checks: the BM-SC's MIKEY messages carry IDi = the SCF FQDN and are made with the
//! MUK the BM-SC got from the SCF, which the SCF got from the BSF over Zn for NAF_Id = SCF FQDN ‖
//! 01 00 00 00 01 (that derivation is checked against `milenage` and an HMAC oracle in
//! tests/scf.rs): the UE takes them only if it derived for the same NAF_Id. The media
//! must equal `network::bmsc_stream::test_signal_frame`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use me::ue::UeStats;
use me::{Error, KeyManagementPath, Signalling, Ue, UeConfig};
use mikey::mbms::KeyDomainId;
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bmsc_stream::test_signal_frame;
use network::bsf::{Bsf, BsfConfig, Subscriber};
use network::pcscf::{Pcscf, PcscfConfig, PcscfUser};
use network::scf::{Scf, ScfConfig, ScfMode, ScfService, ScfSubscriber};
use sim_reader::{CardProfile, Emulator};
use wire::mbms_key_management::{self, MskKeyId};

const SERVICE: &str = "urn:keysim:mbms:service:1";
const BMSC_FQDN: &str = "bmsc.example.org";
const SCF_DOMAIN: &str = "scf.example.org";
const SCF_FQDN: &str = "scf1.example.org";
const KEY_DOMAIN: KeyDomainId = KeyDomainId([0x00, 0xF1, 0x10]);
/// The SCF's source address towards the BM-SC (all of 127/8 is loopback on Linux).
const SCF_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const WAIT: Duration = Duration::from_secs(10);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn impu(profile: &CardProfile) -> String {
    profile.impu().first().expect("an IMPU").clone()
}

struct World {
    bsf: Bsf,
    bmsc: Bmsc,
    scf: Scf,
    _pcscf: Pcscf,
    ue: Ue<Emulator>,
    _dir: tempfile::TempDir,
}

fn world(path: KeyManagementPath) -> World {
    let profile = CardProfile::default();
    let bsf = Bsf::start(BsfConfig {
        subscribers: vec![Subscriber::from_profile_toml(&profile.to_toml()).unwrap()],
        ..BsfConfig::default()
    })
    .unwrap();
    let (mikey_port, media_port) = (free_udp_port(), free_udp_port());
    let mut c = BmscConfig::new(BMSC_FQDN, bsf.addr());
    c.services = vec![BmscService::new(SERVICE, 0x0001, [0x42; 32])];
    c.ue_mikey_port = mikey_port;
    c.bearer_mikey = vec![SocketAddr::from(([127, 0, 0, 1], mikey_port))];
    c.bearer_media = vec![SocketAddr::from(([127, 0, 0, 1], media_port))];
    c.trusted_scfs = vec![SCF_SOURCE];
    let bmsc = Bmsc::start(c).unwrap();
    let mut c = ScfConfig::new(SCF_DOMAIN, bsf.addr());
    c.services = vec![ScfService::new(SERVICE, SCF_FQDN, bmsc.addr(), 0x0001)];
    c.subscribers = vec![ScfSubscriber { impu: impu(&profile), services: vec![SERVICE.into()] }];
    c.http_source = SCF_SOURCE;
    c.mode = ScfMode::SipBased;
    c.trusted_proxies = vec!["127.0.0.1:9".parse().unwrap()];
    let scf = Scf::start(c).unwrap();
    let mut p = PcscfConfig::new(scf.addr());
    p.users.push(PcscfUser { impi: profile.impi().into(), impus: profile.impu().to_vec(), ue_addr: None });
    let pcscf = Pcscf::start(p).unwrap();
    scf.trust_proxy(pcscf.addr());

    let dir = tempfile::tempdir().unwrap();
    let mut u = UeConfig::new(&bsf.url(), &bmsc.url(), BMSC_FQDN, dir.path().join("me-keys.bin"));
    u.service_ids = vec![SERVICE.to_owned()];
    u.mikey_bind = SocketAddr::from(([127, 0, 0, 1], mikey_port));
    u.media_bind = SocketAddr::from(([127, 0, 0, 1], media_port));
    u.path = Some(path);
    u.pin1 = Some("1234".to_owned());
    u.signalling = Signalling::Sip {
        pcscf: pcscf.addr(),
        scf_uri: format!("sip:scf@{SCF_DOMAIN}"),
        impu: impu(&profile),
        naf_fqdn: SCF_FQDN.to_owned(),
    };
    let ue = Ue::new(Emulator::new(&profile).unwrap(), u).unwrap();
    World { bsf, bmsc, scf, _pcscf: pcscf, ue, _dir: dir }
}

impl World {
    fn poll_until(&mut self, what: &str, done: impl Fn(&UeStats) -> bool) {
        self.ue.poll_until(Instant::now() + WAIT, &done).unwrap();
        assert!(done(&self.ue.stats()), "{what}: {:?}", self.ue.stats());
    }

    fn media(&mut self, n: u64) {
        let before = self.ue.stats().packets_decrypted;
        self.bmsc.send_media(SERVICE, n as usize).unwrap();
        self.poll_until("media", |s| s.packets_decrypted >= before + n);
    }

    fn btid(&self) -> String {
        self.ue.btid().unwrap().to_owned()
    }
}

fn check_frames(ue: &Ue<Emulator>, total: u64) {
    let frames: Vec<_> = ue.frames().collect();
    assert_eq!(frames.len() as u64, total);
    for f in frames {
        let n = u64::from(f.sequence_number.wrapping_sub(1));
        assert_eq!(f.payload, test_signal_frame(n), "frame {n}");
    }
}

/// Register over SIP (INVITE through the P-CSCF; the SCF's Zn query and `sip-based-register`),
/// the MSK pushed with IDi = SCF FQDN taken, MTK and SRTP media; a solicited pull answered with a
/// SIP MSK request (re-INVITE); the SCF's re-bootstrap answer (new B-TID, re-registration by
/// re-INVITE, the request retried, the MSK under the new MUK taken); deregistration and BYE.
fn end_to_end(path: KeyManagementPath) {
    let mut w = world(path);
    let reg = w.ue.register().unwrap();
    assert_eq!(reg.accepted, vec![SERVICE.to_owned()]);
    let btid = w.btid();
    let sip_reg = w.bmsc.sip_registration(&btid).expect("registered at the BM-SC through the SCF");
    assert_eq!(sip_reg.naf_fqdn, SCF_FQDN);
    assert_eq!(w.scf.stats().invites, 1);
    w.poll_until("MSK push with IDi = SCF FQDN", |s| s.msk_count == 1);
    assert_eq!(w.ue.stats().mikey_dropped, 0);

    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK", |s| s.mtk_count == 1);
    w.media(20);

    // Solicited pull → SIP MSK request (re-INVITE) → the current MSK again.
    assert_eq!(w.bmsc.solicited_pull(&btid).unwrap(), 1);
    w.poll_until("solicited pull answered", |s| s.solicited_pulls == 1 && s.msk_count == 2);
    assert_eq!(w.ue.stats().basic_msk_requests, 1);
    assert_eq!(w.scf.stats().reinvites, 1);

    // The SCF wants a new bootstrapping: the UE bootstraps, re-registers with the new B-TID by
    // re-INVITE (MUK update) and retries the MSK request.
    assert!(w.scf.require_rebootstrap(&impu(&CardProfile::default())));
    let key = MskKeyId::any_in_group(KEY_DOMAIN, 0x0001);
    let before = w.ue.stats();
    let req = w.ue.msk_request(&[key]).unwrap();
    assert!(req.rebootstrapped);
    assert_eq!(req.statuses, vec![(key, mbms_key_management::STATUS_OK)]);
    let new = w.btid();
    assert_ne!(new, btid);
    assert_eq!(w.ue.stats().rebootstraps, before.rebootstraps + 1);
    assert_eq!(w.bmsc.registered(&new), vec![SERVICE.to_owned()]);
    assert!(w.bmsc.registered(&btid).is_empty(), "the registration moved to the new B-TID");
    assert!(w.scf.stats().rebootstrap_responses >= 1);
    w.poll_until("MSKs under the new MUK", |s| s.msk_count >= before.msk_count + 2);
    assert_eq!(w.ue.stats().mikey_dropped, 0);
    w.bmsc.send_mtk(SERVICE).unwrap();
    let mtks = w.ue.stats().mtk_count;
    w.poll_until("MTK after re-bootstrap", |s| s.mtk_count == mtks + 1);
    w.media(5);
    check_frames(&w.ue, 25);
    assert!(w.bsf.session(&new).is_some());

    // Deregistration by re-INVITE, then BYE.
    let dereg = w.ue.deregister().unwrap();
    assert_eq!(dereg.accepted, vec![SERVICE.to_owned()]);
    assert!(w.bmsc.registered(&new).is_empty());
    assert_eq!(w.scf.dialog_count(), 0, "BYE ended the dialog");
    assert_eq!(w.scf.stats().byes, 1);
    let msks = w.ue.stats().msk_count;
    w.bmsc.rotate_msk(SERVICE).unwrap();
    w.ue.poll(Instant::now() + Duration::from_millis(300)).unwrap();
    assert_eq!(w.ue.stats().msk_count, msks, "no MSK after deregistration");
}

#[test]
fn uicc_based_over_sip() {
    end_to_end(KeyManagementPath::UiccBased);
}

#[test]
fn me_based_over_sip() {
    end_to_end(KeyManagementPath::MeBased);
}

/// A SIP peer that never answers: the UE retransmits the INVITE (timer A: at 0, T1, 3·T1, …) and
/// gives up with a clear error at the transaction timeout; nothing is registered.
#[test]
fn unanswered_invite_is_retransmitted_then_times_out() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let profile = CardProfile::default();
    let mut sip = me::SipClient::new(
        me::SipConfig {
            pcscf: silent.local_addr().unwrap(),
            scf_uri: format!("sip:scf@{SCF_DOMAIN}"),
            impu: impu(&profile),
        },
        Duration::from_millis(1800),
    )
    .unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok((n, _)) = silent.recv_from(&mut buf) {
                seen.push(sip::Message::parse(&buf[..n]).unwrap());
            }
        }
        seen
    });
    let e = sip.register("AAECAwQFBgcICQoLDA0ODw==@bsf.example.org", &[SERVICE.into()]).unwrap_err();
    assert!(matches!(e, Error::SipTimeout { ref method } if method == "INVITE"), "{e}");
    let seen = t.join().unwrap();
    // Sent at 0, 0.5 s, 1.5 s before the 1.8 s timeout: three copies, one transaction.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|m| m.method() == Some(&sip::Method::Invite)));
    assert!(seen.windows(2).all(|p| p[0] == p[1]), "retransmissions are identical");
}
