//! IMS calls with SDES media security over real UDP on loopback (TS 33.328 §7.1–§7.3): two UEs
//! register with the IMS core, one calls the other, SRTP flows both ways, and the keys seen in
//! the SDP on the wire decrypt the media in libsrtp (PyPI pylibsrtp) independently of our SRTP.

use std::time::Duration;

use me::{ImsUe, ImsUeConfig, MediaKeying, SdesKeying, SdesScope, run_call};
use network::ims_core::{ImsCore, ImsCoreConfig};

const CALLER: &str = "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
const CALLEE: &str = "sip:001010000000002@ims.mnc001.mcc001.3gppnetwork.org";
const PACKETS: u32 = 40;

fn start_core(prefer_e2ae: bool) -> ImsCore {
    let mut c = ImsCoreConfig::new(&[CALLER, CALLEE]);
    c.prefer_e2ae = prefer_e2ae;
    ImsCore::start(c).expect("IMS core")
}

fn ue(core: &ImsCore, impu: &str, announce: bool) -> ImsUe {
    let mut c = ImsUeConfig::new(core.addr(), impu);
    c.announce_e2ae = announce;
    c.timeout = Duration::from_secs(5);
    c.capture_media = true;
    ImsUe::new(c).expect("UE")
}

fn sdes(scope: SdesScope) -> Box<dyn MediaKeying + Send> {
    Box::new(SdesKeying::new(scope))
}

/// The base64 key of the (only, or first) crypto attribute of an SDP text.
fn sdp_keys(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=crypto:"))
        .map(|v| {
            let f: Vec<&str> = v.split(' ').collect();
            (f[1].to_owned(), f[2].trim_start_matches("inline:").split('|').next().unwrap().to_owned())
        })
        .collect()
}

/// A Python that imports pylibsrtp: $KEYSIM_PYTHON or the venv of scripts/python-oracles.sh.
fn python() -> Option<std::path::PathBuf> {
    let candidates = std::env::var_os("KEYSIM_PYTHON").map(std::path::PathBuf::from).into_iter().chain(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(|t| t.join("pyenv-srtp/bin/python")),
    );
    for p in candidates {
        let ok = std::process::Command::new(&p)
            .args(["-c", "import pylibsrtp"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(p);
        }
    }
    assert!(
        std::env::var("KEYSIM_REQUIRE_ORACLES").map_or(true, |v| v != "1"),
        "pylibsrtp required (KEYSIM_REQUIRE_ORACLES=1): run scripts/python-oracles.sh"
    );
    eprintln!("pylibsrtp not available: skipping the libsrtp cross-check");
    None
}

/// libsrtp unprotects `packets` with the base64 key ‖ salt of an SDP crypto attribute; returns
/// (decrypted, failed, SHA-256 hex of the payloads in order).
fn libsrtp_unprotect(suite: &str, key_b64: &str, packets: &[Vec<u8>]) -> Option<(u64, u64, String)> {
    let py = python()?;
    const SCRIPT: &str = r#"
import base64, hashlib, sys, pylibsrtp
suite, key = sys.argv[1], base64.b64decode(sys.argv[2])
profile = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
           "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}[suite]
policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
session = pylibsrtp.Session(policy=policy)
ok = bad = 0
h = hashlib.sha256()
for line in sys.stdin:
    try:
        rtp = session.unprotect(bytes.fromhex(line.strip()))
        ok += 1
        h.update(rtp[12:])
    except pylibsrtp.Error:
        bad += 1
print(ok, bad, h.hexdigest())
"#;
    use std::io::Write as _;
    let mut child = std::process::Command::new(py)
        .args(["-c", SCRIPT, suite, key_b64])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().unwrap();
    for p in packets {
        writeln!(stdin, "{}", hex::encode(p)).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    Some((f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].to_owned()))
}

#[test]
fn sdes_e2e_call_both_directions() {
    let core = start_core(true);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, true));
    assert!(a.register().unwrap().network_e2ae, "the network prefers e2ae");
    b.register().unwrap();
    assert!(core.binding(CALLER).unwrap().e2ae_supported);
    let (mut ka, mut kb) = (sdes(SdesScope::E2e), sdes(SdesScope::E2e));
    let run = run_call(&mut a, &mut b, ka.as_mut(), kb.as_mut(), PACKETS, (1, 2));
    let (a_call, a_media) = run.caller.expect("caller");
    let (b_call, b_media) = run.callee.expect("callee");
    for (m, peer_seed) in [(&a_media, 2), (&b_media, 1)] {
        assert_eq!(
            (m.packets_sent, m.packets_decrypted, m.packets_failed),
            (u64::from(PACKETS), u64::from(PACKETS), 0)
        );
        assert_eq!(m.media_sha256, me::ims_ue::expected_media_sha256(peer_seed, PACKETS));
    }
    assert_eq!(a_media.media_sha256, b_media.sent_sha256);
    // e2e: the crypto attributes pass untouched, media goes UE to UE.
    assert_eq!(b_call.remote_sdp, a_call.local_sdp, "the offer reaches the callee unchanged");
    assert_eq!(a_call.remote_sdp, b_call.local_sdp, "the answer reaches the caller unchanged");
    assert_eq!(a_call.remote_media, b.media_addr());
    assert_eq!(b_call.remote_media, a.media_addr());
    assert_eq!(core.stats().e2e_offers, 1);
    // libsrtp decrypts each side's received packets with the key of the peer's SDP on the wire:
    // the callee's media with the answer's key, the caller's with the offered key under the
    // answer's tag.
    let [(suite, k2)] = sdp_keys(&a_call.remote_sdp).try_into().unwrap();
    if let Some((ok, bad, sha)) = libsrtp_unprotect(&suite, &k2, &a_media.captured) {
        assert_eq!((ok, bad), (u64::from(PACKETS), 0));
        assert_eq!(sha, a_media.media_sha256);
    }
    let offered = sdp_keys(&b_call.remote_sdp);
    let tag = b_call
        .local_sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let (suite1, k1) = &offered[tag.parse::<usize>().unwrap() - 1];
    if let Some((ok, bad, sha)) = libsrtp_unprotect(suite1, k1, &b_media.captured) {
        assert_eq!((ok, bad), (u64::from(PACKETS), 0));
        assert_eq!(sha, b_media.media_sha256);
    }
    core.shutdown().unwrap();
}

#[test]
fn sdes_e2ae_call_through_the_access_gateway() {
    let core = start_core(true);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, true));
    assert!(a.register().unwrap().network_e2ae);
    assert!(b.register().unwrap().network_e2ae);
    let (mut ka, mut kb) = (sdes(SdesScope::E2ae), sdes(SdesScope::E2ae));
    let run = run_call(&mut a, &mut b, ka.as_mut(), kb.as_mut(), PACKETS, (3, 4));
    let (a_call, a_media) = run.caller.expect("caller");
    let (b_call, b_media) = run.callee.expect("callee");
    for (m, peer_seed) in [(&a_media, 4), (&b_media, 3)] {
        assert_eq!((m.packets_decrypted, m.packets_failed), (u64::from(PACKETS), 0), "{m:?}");
        assert_eq!(m.media_sha256, me::ims_ue::expected_media_sha256(peer_seed, PACKETS));
    }
    // The ALG removed the UEs' crypto attributes: none of A's offered keys reaches B, and B's
    // answer key does not reach A.
    let a_offered = sdp_keys(&a_call.local_sdp);
    let b_got = sdp_keys(&b_call.remote_sdp);
    assert_eq!(a_offered.len(), 2);
    assert_eq!(b_got.len(), 1);
    assert!(a_offered.iter().all(|(_, k)| *k != b_got[0].1));
    let a_got = sdp_keys(&a_call.remote_sdp);
    let b_answered = sdp_keys(&b_call.local_sdp);
    assert_ne!(a_got[0].1, b_answered[0].1);
    for sdp in [&a_call.remote_sdp, &b_call.remote_sdp] {
        assert!(sdp.contains("a=3ge2ae:applied\r\n"), "{sdp}");
        assert!(!sdp.contains("requested"), "{sdp}");
    }
    // Media flows through the gateway's two ports, never UE to UE.
    assert_ne!(a_call.remote_media, b.media_addr());
    assert_ne!(b_call.remote_media, a.media_addr());
    let agw = core.agw_session(&a_call.parties.call_id).expect("gateway session");
    assert_eq!((agw.leg_a, agw.leg_b), (Some(a_call.remote_media), Some(b_call.remote_media)));
    assert_eq!(agw.a_to_b.decrypted, u64::from(PACKETS));
    assert_eq!(agw.b_to_a.decrypted, u64::from(PACKETS));
    assert_eq!(agw.a_to_b.plaintext_sha256, a_media.sent_sha256, "the gateway saw A's plaintext");
    assert_eq!(agw.b_to_a.plaintext_sha256, b_media.sent_sha256);
    // Independent access protection: libsrtp decrypts A's packets with A's leg key (from A's
    // answer) and not with B's leg key (from B's offer), and the other way round.
    let (suite_a, key_a) = a_got[0].clone();
    let (suite_b, key_b) = b_got[0].clone();
    if let Some((ok, bad, sha)) = libsrtp_unprotect(&suite_a, &key_a, &a_media.captured) {
        assert_eq!((ok, bad, sha), (u64::from(PACKETS), 0, a_media.media_sha256.clone()));
        let (ok, bad, _) = libsrtp_unprotect(&suite_b, &key_b, &a_media.captured).unwrap();
        assert_eq!((ok, bad), (0, u64::from(PACKETS)), "leg B's key does not open leg A");
        let (ok, bad, sha) = libsrtp_unprotect(&suite_b, &key_b, &b_media.captured).unwrap();
        assert_eq!((ok, bad, sha), (u64::from(PACKETS), 0, b_media.media_sha256.clone()));
        let (ok, _, _) = libsrtp_unprotect(&suite_a, &key_a, &b_media.captured).unwrap();
        assert_eq!(ok, 0, "leg A's key does not open leg B");
    }
    assert_eq!(core.stats().e2ae_offers, 1);
    assert_eq!(core.stats().e2ae_answers, 1);
    core.shutdown().unwrap();
}

#[test]
fn e2ae_needs_the_indications() {
    // A network that does not prefer e2ae: no "supported by network", and the UE refuses to
    // request e2ae before sending anything.
    let core = start_core(false);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, true));
    assert!(!a.register().unwrap().network_e2ae);
    b.register().unwrap();
    let mut ka = SdesKeying::new(SdesScope::E2ae);
    let e = a.call(CALLEE, &mut ka).unwrap_err();
    assert!(e.to_string().contains("did not indicate e2ae"), "{e}");
    assert_eq!(core.stats().requests, 0);
    core.shutdown().unwrap();

    // The callee registered without e2ae support: the ALG answers 488, nothing is allocated.
    let core = start_core(true);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, false));
    a.register().unwrap();
    b.register().unwrap();
    assert!(!core.binding(CALLEE).unwrap().e2ae_supported);
    let e = a.call(CALLEE, &mut SdesKeying::new(SdesScope::E2ae)).unwrap_err();
    assert!(matches!(e, me::Error::SipStatus { status: 488, .. }), "{e}");
    assert!(core.agw().session_ids().is_empty());
    core.shutdown().unwrap();
}

/// An e2ae offer reaches a callee that wants e2e: the callee refuses the "applied" offer with 488,
/// the caller sees the 488 and the gateway frees the ports it had allocated.
#[test]
fn e2ae_offer_to_an_e2e_callee_is_refused_and_released() {
    let core = start_core(true);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, true));
    a.register().unwrap();
    b.register().unwrap();
    let (mut ka, mut kb) = (SdesKeying::new(SdesScope::E2ae), SdesKeying::new(SdesScope::E2e));
    let (caller, callee) = std::thread::scope(|s| {
        let h = s.spawn(|| b.answer_call(&mut kb));
        let caller = a.call(CALLEE, &mut ka);
        (caller, h.join().unwrap())
    });
    let e = caller.unwrap_err();
    assert!(matches!(e, me::Error::SipStatus { status: 488, .. }), "{e}");
    assert!(e.to_string().contains("e2ae-security applied"), "{e}");
    assert!(matches!(callee, Err(me::Error::InvalidInput(_))), "{callee:?}");
    assert_eq!((core.stats().e2ae_offers, core.stats().e2ae_answers), (1, 0));
    assert_eq!(core.agw().active_sessions(), 0);
    core.shutdown().unwrap();
}

/// An offer the callee cannot accept is answered 488 and the callee's error is typed.
#[test]
fn bad_offers_get_488() {
    struct Fixed(Vec<String>);
    impl MediaKeying for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn offer(&mut self, _: &me::CallParties) -> me::Result<Vec<String>> {
            Ok(self.0.clone())
        }
        fn answer(&mut self, _: &me::CallParties, _: &[String]) -> me::Result<(Vec<String>, me::MediaKeys)> {
            unreachable!()
        }
        fn complete(&mut self, _: &me::CallParties, _: &[String]) -> me::Result<me::MediaKeys> {
            unreachable!()
        }
    }
    let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let cases = [
        (vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD")], "malformed"),
        (vec![format!("crypto:1 F8_128_HMAC_SHA1_80 {key}")], "supported suite"),
        (vec!["sendonly".to_owned()], "no crypto"),
    ];
    let core = start_core(true);
    let (mut a, mut b) = (ue(&core, CALLER, true), ue(&core, CALLEE, true));
    a.register().unwrap();
    b.register().unwrap();
    for (lines, why) in cases {
        let mut bad = Fixed(lines.clone());
        let mut kb = SdesKeying::new(SdesScope::E2e);
        let run = std::thread::scope(|s| {
            let h = s.spawn(|| b.answer_call(&mut kb));
            let caller = a.call(CALLEE, &mut bad);
            (caller, h.join().unwrap())
        });
        let e = run.0.unwrap_err();
        assert!(matches!(e, me::Error::SipStatus { status: 488, .. }), "{lines:?}: {e}");
        assert!(e.to_string().contains(why), "{lines:?}: {e}");
        assert!(matches!(run.1, Err(me::Error::InvalidInput(_))), "{:?}", run.1);
    }
    // The same offers with "e2ae requested" are refused by the ALG itself; nothing is allocated.
    for (lines, _) in [
        (vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD")], "malformed"),
        (vec![format!("crypto:1 F8_128_HMAC_SHA1_80 {key}")], "supports"),
        (vec![], "without crypto"),
    ] {
        let mut lines = lines;
        lines.push("3ge2ae:requested".into());
        let e = a.call(CALLEE, &mut Fixed(lines.clone())).unwrap_err();
        assert!(matches!(e, me::Error::SipStatus { status: 488, .. }), "{lines:?}: {e}");
    }
    assert!(core.agw().session_ids().is_empty());
    assert_eq!(core.stats().e2ae_offers, 0);
    // The registrations are unchanged by all of this.
    assert!(core.binding(CALLER).unwrap().e2ae_supported);
    core.shutdown().unwrap();
}

/// SIPp as an independent caller (tests/sipp/sdes_uac.xml): it registers, offers the RFC 4568 §4
/// key, checks the form of our callee's SDES answer with its own regular expressions, ACKs and
/// hangs up. Our callee's receive key is the offered key as Python's base64 decodes it.
#[test]
fn sipp_caller_with_an_sdes_offer() {
    if std::process::Command::new("sipp").arg("-v").output().is_err() {
        assert!(
            std::env::var("KEYSIM_REQUIRE_ORACLES").map_or(true, |v| v != "1"),
            "sipp (sip-tester) is required"
        );
        eprintln!("sipp not available: skipping the SIPp run (apt-get install sip-tester)");
        return;
    }
    let core = start_core(true);
    let mut b = ue(&core, CALLEE, true);
    b.register().unwrap();
    let dir = std::env::temp_dir().join(format!("keysim-sipp-sdes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inf = dir.join("uac.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{CALLER};{CALLEE};ims.mnc001.mcc001.3gppnetwork.org;\n"))
        .unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/sdes_uac.xml");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut kb = SdesKeying::new(SdesScope::E2e);
    let (answered, out) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let call = b.answer_call(&mut kb)?;
            b.await_hang_up(&call)?;
            Ok::<_, me::Error>(call)
        });
        let out = std::process::Command::new("sipp")
            .args(["-sf", scenario.to_str().unwrap(), "-inf", inf.to_str().unwrap()])
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-l", "1"])
            .args(["-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err"])
            .arg(core.addr().to_string())
            .current_dir(&dir)
            .output()
            .expect("sipp runs");
        (h.join().unwrap(), out)
    });
    let errors: String = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "sipp failed ({}): {}\n{errors}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let call = answered.expect("callee");
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import base64; print(base64.b64decode('PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR').hex())",
        ])
        .output();
    if let Ok(py) = py {
        let expected = String::from_utf8(py.stdout).unwrap();
        let k = &call.keys.recv.master;
        assert_eq!(format!("{}{}", hex::encode(k.key), hex::encode(k.salt)), expected.trim());
    }
    assert_eq!(call.keys.recv.suite, srtp::CryptoSuite::Aes128CmHmacSha1_80);
    core.shutdown().unwrap();
}
