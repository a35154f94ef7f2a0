//! The ME's network side of MBMS (TS 33.246 §6.2–§6.3): the BM-SC key-management client against a
//! hand-written BM-SC (raw TCP, its Digest arithmetic redone by Python's hashlib and base64), and
//! the whole UE end to end against the BSF and BM-SC of `network` on loopback, on both
//! key-management paths.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use gba::Mrk;
use me::{BmscClient, Credentials, Error};
use mikey::mbms::{KeyDomainId, MskId};
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, Qop};
use wire::mbms_key_management::{
    self, KeyStatus, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse, RequestType,
    ServiceStatus,
};
use wire::zn;

const FQDN: &str = "bmsc.example.org";
const BTID: &str = "AAECAwQFBgcICQoLDA0ODw==@bsf.example.org";

// ------------------------------------------------------------------------------------------------
// Oracles

/// Runs a Python 3 snippet; `None` (reason printed) when python3 is missing and
/// `KEYSIM_REQUIRE_ORACLES` is unset.
fn python(script: &str, args: &[&str]) -> Option<String> {
    match std::process::Command::new("python3").arg("-c").arg(script).args(args).output() {
        Ok(o) if o.status.success() => Some(String::from_utf8(o.stdout).unwrap().trim().to_owned()),
        Ok(o) => panic!("python3 failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_some() => {
            panic!("python3 is required (KEYSIM_REQUIRE_ORACLES is set): {e}")
        }
        Err(e) => {
            eprintln!("python3 not available ({e}): skipping the Python cross-check");
            None
        }
    }
}

/// RFC 2617 §3.2.2 request-digest in Python from the raw Authorization header, with the password
/// base64(MRK) made by Python's base64 (TS 24.109 §5.2.1 / the contract's PASSWORD_IS_BASE64).
const PY_DIGEST: &str = r#"
import base64, hashlib, re, sys
h = re.sub(r'^\s*Digest\s+', '', sys.argv[1])
p = {}
for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))', h):
    p[m.group(1).lower()] = re.sub(r'\\(.)', r'\1', m.group(2)) if m.group(2) is not None else m.group(3)
pw = base64.b64encode(bytes.fromhex(sys.argv[2]))
H = lambda b: hashlib.md5(b).hexdigest()
ha1 = H(p['username'].encode() + b':' + p['realm'].encode() + b':' + pw)
ha2 = H((sys.argv[3] + ':' + p['uri']).encode())
print(H(':'.join([ha1, p['nonce'], p['nc'], p['cnonce'], p['qop'], ha2]).encode()))
"#;

fn py_digest(authorization: &str, mrk: &[u8; 32], method: &str) -> Option<String> {
    python(PY_DIGEST, &[authorization, &hex::encode(mrk), method])
}

// ------------------------------------------------------------------------------------------------
// A hand-written BM-SC

/// One HTTP request as the fake server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> Request {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    Request { method, target, headers, body }
}

/// A server answering each connection's one request with `respond`; returns what it saw.
fn fake_server(
    n: usize,
    respond: impl Fn(usize, &Request) -> String + Send + 'static,
) -> (String, std::thread::JoinHandle<Vec<Request>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for i in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let req = read_request(&s);
            let answer = respond(i, &req);
            s.write_all(answer.as_bytes()).unwrap();
            seen.push(req);
        }
        seen
    });
    (url, thread)
}

fn challenge(realm: String, nonce: &str) -> String {
    DigestChallenge {
        realm,
        nonce: nonce.into(),
        algorithm: Some(mbms_key_management::DIGEST_ALGORITHM.into()),
        qop: vec![Qop::Auth],
        opaque: Some("opq".into()),
        stale: false,
    }
    .to_header_value()
    .unwrap()
}

fn http(status: &str, headers: &[(&str, String)], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    out
}

/// The 401 with both realms' challenges (the contract's first answer).
fn both_challenges() -> String {
    http(
        "401 Unauthorized",
        &[
            ("WWW-Authenticate", challenge(mbms_key_management::realm_me(FQDN), "n-me")),
            ("WWW-Authenticate", challenge(mbms_key_management::realm_uicc(FQDN), "n-uicc")),
            ("Content-Type", "text/plain".into()),
        ],
        "",
    )
}

/// A 200 with rspauth made by wire::ub for `auth` and `password`.
fn ok_with_rspauth(req: &Request, password: &[u8], content_type: &str, body: &str, tamper: bool) -> String {
    let auth = DigestAuthorization::parse(req.header("authorization").unwrap()).unwrap();
    let mut rspauth = digest::rspauth(&auth.digest_input(password, "POST", &req.body), body.as_bytes());
    if tamper {
        rspauth =
            digest::rspauth(&auth.digest_input(b"not the password", "POST", &req.body), body.as_bytes());
    }
    let info = AuthenticationInfo {
        qop: auth.qop,
        rspauth: Some(rspauth),
        cnonce: auth.cnonce.clone(),
        nc: auth.nc,
        nextnonce: None,
    };
    http(
        "200 OK",
        &[("Authentication-Info", info.to_header_value().unwrap()), ("Content-Type", content_type.into())],
        body,
    )
}

const MRK: [u8; 32] = [0x5A; 32];

fn client(url: &str) -> BmscClient {
    BmscClient::new(url, FQDN).unwrap()
}

/// Registration through the hand-written BM-SC: the request carries the contract's target,
/// Content-Type and XML; the answer to the challenge uses the realm of the path, username = B-TID
/// and password base64(MRK) (checked by wire::ub and by Python); the per-service codes come back.
#[test]
fn register_answers_the_realm_of_the_path_with_base64_mrk() {
    for uicc_realm in [true, false] {
        let answer = RegisterResponse {
            statuses: vec![
                ServiceStatus { code: 200, service_ids: vec!["urn:svc:a".into()] },
                ServiceStatus { code: 404, service_ids: vec!["urn:svc:x".into()] },
            ],
        };
        let xml = answer.to_xml();
        let (url, server) = fake_server(2, move |i, req| {
            if i == 0 {
                assert!(req.header("authorization").is_none());
                both_challenges()
            } else {
                let password = mbms_key_management::digest_password(&MRK);
                ok_with_rspauth(
                    req,
                    password.as_bytes(),
                    mbms_key_management::CONTENT_TYPE_REGISTER_RESPONSE,
                    &xml,
                    false,
                )
            }
        });
        let mrk = Mrk::new(MRK);
        let creds = Credentials { btid: BTID, mrk: &mrk, uicc_realm };
        let services = vec!["urn:svc:a".to_owned(), "urn:svc:x".to_owned()];
        let got = client(&url).register(&creds, &services).unwrap();
        assert_eq!(got, answer);
        let seen = server.join().unwrap();
        for req in &seen {
            assert_eq!(req.method, "POST");
            assert_eq!(req.target, RequestType::Register.path_and_query());
            assert_eq!(req.target, "/keymanagement?requesttype=register", "the contract's request line");
            assert!(mbms_key_management::content_type_matches(
                req.header("content-type").unwrap(),
                "application/mbms-register+xml"
            ));
            let body = RegisterRequest::from_xml(std::str::from_utf8(&req.body).unwrap()).unwrap();
            assert_eq!(body.service_ids, services);
        }
        let header = seen[1].header("authorization").unwrap();
        let auth = DigestAuthorization::parse(header).unwrap();
        let realm = if uicc_realm {
            "3GPP-bootstrapping-uicc@bmsc.example.org"
        } else {
            "3GPP-bootstrapping@bmsc.example.org"
        };
        assert_eq!(auth.realm, realm);
        assert_eq!(auth.nonce, if uicc_realm { "n-uicc" } else { "n-me" });
        assert_eq!(
            (auth.username.as_str(), auth.qop, auth.opaque.as_deref()),
            (BTID, Some(Qop::Auth), Some("opq"))
        );
        assert!(auth.verify(mbms_key_management::digest_password(&MRK).as_bytes(), "POST", &seen[1].body));
        if let Some(py) = py_digest(header, &MRK, "POST") {
            assert_eq!(py, auth.response, "Python's RFC 2617 digest with base64(MRK)");
        }
    }
}

/// A 401 to credentials is a refused B-TID (re-bootstrap); a 401 carrying the reason header, a 400,
/// a wrong rspauth, a missing Authentication-Info, a wrong Content-Type and garbage XML are each
/// their own error; no challenge for our realm is malformed.
#[test]
fn bmsc_refusals_and_bad_answers() {
    type Case = (&'static str, fn(&Request) -> String, fn(&Error) -> bool);
    let key = MskKeyId { key_domain_id: KeyDomainId([0, 0xF1, 0x10]), msk_id: MskId(0x0001_0002) };
    let cases: Vec<Case> = vec![
        ("401 again", |_| both_challenges(), |e| matches!(e, Error::BtidRejected { btid } if btid == BTID)),
        (
            "401 with reason",
            |_| http("401 Unauthorized", &[(mbms_key_management::REASON_HEADER, "something".into())], "x\n"),
            |e| matches!(e, Error::HttpStatus { status: 401, .. }),
        ),
        (
            "400",
            |_| http("400 Bad Request", &[("Content-Type", "text/plain".into())], "bad keyId\n"),
            |e| matches!(e, Error::HttpStatus { status: 400, reason, .. } if reason.contains("bad keyId")),
        ),
        (
            "wrong rspauth",
            |r| {
                ok_with_rspauth(
                    r,
                    mbms_key_management::digest_password(&MRK).as_bytes(),
                    mbms_key_management::CONTENT_TYPE_MSK_RESPONSE,
                    &msk_ok(),
                    true,
                )
            },
            |e| matches!(e, Error::PeerNotAuthentic { .. }),
        ),
        (
            "no Authentication-Info",
            |_| {
                http(
                    "200 OK",
                    &[("Content-Type", mbms_key_management::CONTENT_TYPE_MSK_RESPONSE.into())],
                    &msk_ok(),
                )
            },
            |e| matches!(e, Error::PeerNotAuthentic { .. }),
        ),
        (
            "wrong Content-Type",
            |r| {
                ok_with_rspauth(
                    r,
                    mbms_key_management::digest_password(&MRK).as_bytes(),
                    "text/html",
                    &msk_ok(),
                    false,
                )
            },
            |e| matches!(e, Error::MalformedAnswer { .. }),
        ),
        (
            "garbage XML",
            |r| {
                ok_with_rspauth(
                    r,
                    mbms_key_management::digest_password(&MRK).as_bytes(),
                    mbms_key_management::CONTENT_TYPE_MSK_RESPONSE,
                    "<mbmsMskResponse",
                    false,
                )
            },
            |e| matches!(e, Error::MalformedAnswer { .. }),
        ),
    ];
    for (name, second, expected) in cases {
        let (url, server) =
            fake_server(2, move |i, req| if i == 0 { both_challenges() } else { second(req) });
        let mrk = Mrk::new(MRK);
        let creds = Credentials { btid: BTID, mrk: &mrk, uicc_realm: false };
        let e = client(&url).msk_request(&creds, &[key]).unwrap_err();
        assert!(expected(&e), "{name}: {e:?}");
        let seen = server.join().unwrap();
        let body = MskRequest::from_xml(std::str::from_utf8(&seen[0].body).unwrap()).unwrap();
        assert_eq!(body.key_ids, vec![key], "{name}");
        assert_eq!(seen[0].target, "/keymanagement?requesttype=msk-request");
    }
    // Only the other realm offered: the ME does not answer it.
    let (url, server) = fake_server(1, |_, _| {
        http(
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge(mbms_key_management::realm_uicc(FQDN), "n"))],
            "",
        )
    });
    let mrk = Mrk::new(MRK);
    let e = client(&url)
        .register(&Credentials { btid: BTID, mrk: &mrk, uicc_realm: false }, &["s".into()])
        .unwrap_err();
    assert!(matches!(e, Error::MalformedAnswer { .. }), "{e:?}");
    server.join().unwrap();
    // A 200 without a challenge first: the BM-SC did not authenticate the UE.
    let (url, server) = fake_server(1, |_, _| http("200 OK", &[], ""));
    let e = client(&url)
        .register(&Credentials { btid: BTID, mrk: &mrk, uicc_realm: false }, &["s".into()])
        .unwrap_err();
    assert!(matches!(e, Error::HttpStatus { status: 200, .. }), "{e:?}");
    server.join().unwrap();
    assert!(matches!(BmscClient::new("http://192.0.2.7:80", FQDN), Err(Error::InvalidInput(_))));
    assert!(matches!(BmscClient::new("http://127.0.0.1:80", "bad fqdn"), Err(Error::InvalidInput(_))));
}

fn msk_ok() -> String {
    let key = MskKeyId { key_domain_id: KeyDomainId([0, 0xF1, 0x10]), msk_id: MskId(0x0001_0002) };
    MskResponse { statuses: vec![KeyStatus { code: 200, key_ids: vec![key] }] }.to_xml()
}

// ------------------------------------------------------------------------------------------------
// The whole UE against the BSF and the BM-SC of `network`

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use me::ue::{ReceivedFrame, UeStats};
use me::{KeyManagementPath, Ue, UeConfig};
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bmsc_stream::test_signal_frame;
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sim_reader::{CardProfile, Emulator};

const SERVICE: &str = "urn:keysim:mbms:service:1";
/// Long enough for anything on loopback; the polls end as soon as their condition holds.
const WAIT: Duration = Duration::from_secs(10);

/// A free loopback UDP port (bound and released; the BM-SC needs the UE's ports before the UE).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct World {
    bsf: Bsf,
    bmsc: Bmsc,
    ue: Ue<Emulator>,
    _dir: tempfile::TempDir,
}

fn world(path: KeyManagementPath, keep_keys: bool, key_lifetime: Option<Duration>) -> World {
    let profile = CardProfile::default();
    let bsf = Bsf::start(BsfConfig {
        subscribers: vec![Subscriber::from_profile_toml(&profile.to_toml()).unwrap()],
        key_lifetime: key_lifetime.unwrap_or(network::bsf::DEFAULT_KEY_LIFETIME),
        ..BsfConfig::default()
    })
    .unwrap();
    let (mikey_port, media_port) = (free_udp_port(), free_udp_port());
    let mut config = BmscConfig::new(FQDN, bsf.addr());
    config.services = vec![BmscService::new(SERVICE, 0x0001, [0x42; 32])];
    config.ue_mikey_port = mikey_port;
    config.bearer_mikey = vec![SocketAddr::from(([127, 0, 0, 1], mikey_port))];
    config.bearer_media = vec![SocketAddr::from(([127, 0, 0, 1], media_port))];
    config.v_bit = true;
    let bmsc = Bmsc::start(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ue_config = UeConfig::new(&bsf.url(), &bmsc.url(), FQDN, dir.path().join("me-keys.bin"));
    ue_config.service_ids = vec![SERVICE.to_owned()];
    ue_config.mikey_bind = SocketAddr::from(([127, 0, 0, 1], mikey_port));
    ue_config.media_bind = SocketAddr::from(([127, 0, 0, 1], media_port));
    ue_config.path = Some(path);
    ue_config.pin1 = Some(support::PIN.to_owned());
    ue_config.keep_keys_at_power_down = keep_keys;
    let ue = Ue::new(Emulator::new(&profile).unwrap(), ue_config).unwrap();
    assert_eq!(ue.path(), path);
    World { bsf, bmsc, ue, _dir: dir }
}

impl World {
    /// Polls until `done` holds; fails the test after [`WAIT`].
    fn poll_until(&mut self, what: &str, done: impl Fn(&UeStats) -> bool) {
        self.ue.poll_until(Instant::now() + WAIT, &done).unwrap();
        assert!(done(&self.ue.stats()), "{what}: {:?}", self.ue.stats());
    }

    /// `n` SRTP packets of the test signal: the UE decrypts every one.
    fn media(&mut self, n: u64) {
        let before = self.ue.stats().packets_decrypted;
        self.bmsc.send_media(SERVICE, n as usize).unwrap();
        self.poll_until("media", |s| s.packets_decrypted >= before + n);
    }

    fn btid(&self) -> String {
        self.ue.btid().unwrap().to_owned()
    }
}

/// Every frame the UE decrypted is test-signal frame `seq - 1` of `network::bmsc_stream` (the
/// stream's first RTP sequence number is 1), and none is missing or repeated.
fn check_frames(ue: &Ue<Emulator>, total: u64) {
    let frames: Vec<&ReceivedFrame> = ue.frames().collect();
    assert_eq!(frames.len() as u64, total);
    let mut seen = std::collections::BTreeSet::new();
    for f in frames {
        let n = u64::from(f.sequence_number.wrapping_sub(1));
        assert_eq!(f.payload, test_signal_frame(n), "frame {n}");
        assert!(seen.insert(n), "frame {n} twice");
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), (0..total).collect::<Vec<_>>());
    // Loopback UDP through one socket keeps the order: the running digest is SHA-256 over the
    // source frames in order.
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    for n in 0..total {
        sha2::Digest::update(&mut h, test_signal_frame(n));
    }
    let expected: [u8; 32] = sha2::Digest::finalize(h).into();
    assert_eq!(ue.media_digest(), expected);
}

/// The whole procedure on one path: bootstrap, NAF keys, registration (MSK pushed, verification
/// message accepted by the BM-SC), MTK on the bearer, SRTP equal to the test signal, MSK
/// rotation, a solicited pull answered with a basic MSK request, an MTK for an MSK lost while
/// the UE was off (basic MSK request for it, the waiting MTK message then used), a refused
/// B-TID (re-bootstrap, re-registration, retry), junk datagrams (counted, nothing changes),
/// deregistration (no more MSKs).
fn end_to_end(path: KeyManagementPath) {
    let mut w = world(path, false, None);
    let boot = w.ue.bootstrap().unwrap();
    let session = w.bsf.session(&boot.btid).unwrap();
    let expected_gba = match path {
        KeyManagementPath::UiccBased => zn::GbaType::GbaU,
        KeyManagementPath::MeBased => zn::GbaType::GbaMe,
    };
    assert_eq!(session.gba_type, expected_gba);
    let keys = w.ue.derive_naf_keys().unwrap();
    assert_eq!(keys.btid, boot.btid);

    // Registration: the BM-SC resolves the B-TID over Zn, derives the MUK of the realm, pushes
    // the MSK; the UE verifies it with its own MUK (on the card, or in the ME) and answers V.
    let reg = w.ue.register().unwrap();
    assert_eq!(reg.accepted, vec![SERVICE.to_owned()]);
    assert!(!reg.rebootstrapped);
    assert_eq!(w.bmsc.registered(&boot.btid), vec![SERVICE.to_owned()]);
    w.poll_until("MSK push after registration", |s| s.msk_count == 1 && s.verifications_sent == 1);
    let deadline = Instant::now() + WAIT;
    while w.bmsc.stats().verifications_ok < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(w.bmsc.stats().verifications_ok, 1, "the BM-SC checked the verification message");

    // MTK and media.
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK", |s| s.mtk_count == 1);
    w.media(20);

    // MSK rotation: pushed, then the next MTK is under the new MSK.
    let msk2 = w.bmsc.rotate_msk(SERVICE).unwrap();
    w.poll_until("rotated MSK", |s| s.msk_count == 2);
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK under the new MSK", |s| s.mtk_count == 2);
    w.media(10);
    let mkis = w.ue.receiver().mkis(0).unwrap();
    assert_eq!(mkis.last().unwrap()[..4], msk2.0.to_be_bytes(), "MKI = MSK ID ‖ MTK ID");

    // Solicited pull → basic MSK request → the current MSK pushed again.
    assert_eq!(w.bmsc.solicited_pull(&boot.btid).unwrap(), 1);
    w.poll_until("solicited pull answered", |s| s.solicited_pulls == 1 && s.msk_count == 3);
    assert_eq!(w.ue.stats().basic_msk_requests, 1);
    assert_eq!(w.bmsc.stats().msk_requests, 1);

    // The UE is off while the BM-SC rotates: the push is lost. After power-on the next MTK
    // message names an MSK the UE lacks: it asks for it, and then uses the waiting MTK message.
    let msk3 = w.bmsc.rotate_msk(SERVICE).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let cycle = w.ue.power_cycle().unwrap();
    assert_eq!(cycle.change, me::key_store::CardChange::SameCard);
    assert_eq!(cycle.bootstrap_kept, path == KeyManagementPath::UiccBased, "GBA_U survives on the card");
    let before = w.ue.stats();
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK of an unknown MSK", |s| s.mtk_count == before.mtk_count + 1);
    let after = w.ue.stats().since(&before);
    assert_eq!((after.basic_msk_requests, after.msk_count), (1, 1), "{after:?}");
    // The ME-based UE lost Ks at power-down: it bootstrapped and registered again on its own.
    let rebooted = u64::from(path == KeyManagementPath::MeBased);
    assert_eq!(after.rebootstraps, rebooted);
    assert_eq!(w.bmsc.registered(&w.btid()), vec![SERVICE.to_owned()]);
    w.media(10);
    assert_eq!(w.ue.receiver().mkis(0).unwrap().last().unwrap()[..4], msk3.0.to_be_bytes());

    // A B-TID the network no longer accepts: the BM-SC's 401 makes the UE bootstrap again,
    // register with the new B-TID, and retry.
    let old = w.btid();
    assert!(w.bsf.expire(&old));
    assert!(w.bmsc.expire_registration(&old));
    let key = MskKeyId::any_in_group(KeyDomainId([0x00, 0xF1, 0x10]), 0x0001);
    let req = w.ue.msk_request(&[key]).unwrap();
    assert!(req.rebootstrapped);
    assert_eq!(req.statuses, vec![(key, mbms_key_management::STATUS_OK)]);
    let new = w.btid();
    assert_ne!(new, old);
    assert_eq!(w.bmsc.registered(&new), vec![SERVICE.to_owned()]);
    assert_eq!(w.ue.stats().rebootstraps, rebooted + 1);
    w.poll_until("MSK under the new MUK", |s| s.msk_count >= before.msk_count + 2);
    w.bmsc.send_mtk(SERVICE).unwrap();
    let mtks = w.ue.stats().mtk_count;
    w.poll_until("MTK after re-bootstrap", |s| s.mtk_count == mtks + 1);
    w.media(5);

    // Junk on both sockets: counted, dropped, no key changes; the genuine traffic goes on.
    let store_before = std::fs::read(w.ue.key_store().path()).unwrap();
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = w.ue.stats();
    for (i, datagram) in
        [vec![], vec![0x01], vec![0xFF; 300], b"not mikey at all".to_vec()].iter().enumerate()
    {
        junk.send_to(datagram, w.ue.mikey_addr()).unwrap();
        junk.send_to(datagram, w.ue.media_addr()).unwrap();
        if i == 0 {
            // A well-formed SRTP-looking packet with a known MKI but a wrong tag.
            let mut forged = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0x4D, 0x42, 0x4D, 0x53];
            forged.extend_from_slice(&[0u8; 40]);
            forged.extend_from_slice(mkis.last().unwrap());
            forged.extend_from_slice(&[0u8; 10]);
            junk.send_to(&forged, w.ue.media_addr()).unwrap();
        }
    }
    // Junk that parses as SRTP with an MKI of no MTK held waits up to UNKEYED_PACKET_HOLD for an
    // MTK message before it is refused.
    w.poll_until("junk counted", |s| {
        s.mikey_received == before.mikey_received + 4
            && s.packets_received == before.packets_received + 5
            && s.packets_failed == before.packets_failed + 5
    });
    let d = w.ue.stats().since(&before);
    assert_eq!((d.mikey_dropped, d.packets_failed, d.packets_decrypted), (4, 5, 0), "{d:?}");
    assert_eq!((d.msk_count, d.mtk_count, d.network_errors), (0, 0, 0), "{d:?}");
    assert_eq!(std::fs::read(w.ue.key_store().path()).unwrap(), store_before, "no key changed");
    w.media(5);
    check_frames(&w.ue, 20 + 10 + 10 + 5 + 5);
    assert!(w.ue.stats().datagrams_overflowed == 0);

    // Deregistration: the BM-SC forgets the UE; a rotation pushes nothing to it.
    let dereg = w.ue.deregister().unwrap();
    assert_eq!(dereg.accepted, vec![SERVICE.to_owned()]);
    assert!(w.bmsc.registered(&new).is_empty());
    assert!(w.ue.registered().is_empty());
    let msks = w.ue.stats().msk_count;
    w.bmsc.rotate_msk(SERVICE).unwrap();
    w.ue.poll(Instant::now() + Duration::from_millis(300)).unwrap();
    assert_eq!(w.ue.stats().msk_count, msks, "no MSK after deregistration");
}

#[test]
fn uicc_based_end_to_end() {
    end_to_end(KeyManagementPath::UiccBased);
}

#[test]
fn me_based_end_to_end() {
    end_to_end(KeyManagementPath::MeBased);
}

/// GBA key expiry (TS 33.246 §6.1): with a 3 s key lifetime the polling UE notices the end of
/// the lifetime, bootstraps again (a new MUK), registers with the new B-TID, and takes the MSK the
/// BM-SC pushes under the new MUK; MTKs and media go on. Both paths.
#[test]
fn expired_gba_keys_are_renewed_while_polling() {
    for path in [KeyManagementPath::UiccBased, KeyManagementPath::MeBased] {
        let mut w = world(path, false, Some(Duration::from_secs(3)));
        w.ue.register().unwrap();
        let first = w.btid();
        assert_eq!(w.ue.stats().rebootstraps, 1, "registration bootstrapped first");
        w.poll_until("first MSK", |s| s.msk_count == 1);
        assert!(!w.ue.gba_keys_expired());
        w.ue.poll_until(Instant::now() + Duration::from_secs(8), |s| s.rebootstraps == 2 && s.msk_count == 2)
            .unwrap();
        let s = w.ue.stats();
        assert_eq!((s.rebootstraps, s.msk_count), (2, 2), "{path}: {s:?}");
        let second = w.btid();
        assert_ne!(first, second);
        assert_eq!(w.bmsc.registered(&second), vec![SERVICE.to_owned()]);
        w.bmsc.send_mtk(SERVICE).unwrap();
        w.poll_until("MTK", |s| s.mtk_count == 1);
        w.media(5);
        check_frames(&w.ue, 5);
    }
}

/// Power-down keeping the ME keys (ME-based path): MRK, MSK and MTK survive in the key store, so
/// after power-on the UE decrypts media at once, and its HTTP requests use the kept B-TID and MRK
/// without bootstrapping.
#[test]
fn me_keys_kept_over_power_down() {
    let mut w = world(KeyManagementPath::MeBased, true, None);
    w.ue.register().unwrap();
    w.poll_until("MSK", |s| s.msk_count == 1);
    w.bmsc.send_mtk(SERVICE).unwrap();
    w.poll_until("MTK", |s| s.mtk_count == 1);
    w.media(3);
    let btid = w.btid();
    let report = w.ue.power_cycle().unwrap();
    assert!(report.bootstrap_kept);
    assert_eq!(w.ue.btid(), Some(btid.as_str()));
    w.media(3);
    let key = MskKeyId::any_in_group(KeyDomainId([0x00, 0xF1, 0x10]), 0x0001);
    let req = w.ue.msk_request(&[key]).unwrap();
    assert!(!req.rebootstrapped);
    assert_eq!(req.statuses, vec![(key, mbms_key_management::STATUS_OK)]);
    w.poll_until("requested MSK", |s| s.msk_count == 2);
    assert_eq!(w.ue.stats().rebootstraps, 1, "only the first bootstrap");
    check_frames(&w.ue, 3 + 3);
}

/// A different card (another ICCID) wipes every MBMS key of the ME and the registrations; the UE
/// then bootstraps with the new card and is served again. Both paths.
#[test]
fn another_card_wipes_the_me_keys() {
    for path in [KeyManagementPath::UiccBased, KeyManagementPath::MeBased] {
        let mut w = world(path, true, None);
        w.ue.register().unwrap();
        w.poll_until("MSK", |s| s.msk_count == 1);
        if path == KeyManagementPath::MeBased {
            assert!(!w.ue.key_store().is_empty());
        }
        let mut fields = CardProfile::default().to_fields();
        fields.iccid = "8988211000000430010".into();
        let other = CardProfile::try_from(fields).unwrap();
        let report = w.ue.insert_card(Emulator::new(&other).unwrap()).unwrap();
        assert_eq!(report.change, me::key_store::CardChange::DifferentCard);
        assert_eq!(report.iccid, "8988211000000430010");
        assert!(!report.bootstrap_kept);
        assert!(w.ue.key_store().is_empty(), "{path}: every ME key wiped");
        assert_eq!(w.ue.key_store().iccid(), Some("8988211000000430010"));
        assert!(w.ue.registered().is_empty());
        assert!(w.ue.btid().is_none());
        // The new card: bootstrap, register, MSK, MTK, media.
        w.ue.register().unwrap();
        w.poll_until("MSK for the new card", |s| s.msk_count == 2);
        w.bmsc.send_mtk(SERVICE).unwrap();
        w.poll_until("MTK", |s| s.mtk_count == 1);
        w.media(4);
    }
}
