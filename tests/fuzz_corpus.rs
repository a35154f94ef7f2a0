//! Every seed of the fuzz corpora (fuzz/corpus/<target>/) replayed through the same target
//! functions the cargo-fuzz binaries run (fuzz/src/lib.rs), as an ordinary test: a crash found
//! once and kept as a seed stays fixed.
//!
//! `KEYSIM_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus -- --ignored write_seed_corpus`
//! rewrites the recorded seeds from a run of the MBMS scenario on the emulated card.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

use sim_reader::{CardProfile, Emulator, Protocol};
use targets::{CardInput, op};
use test_kit::mbms_run;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn replay(target: &str, body: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
    for file in &files {
        let data = std::fs::read(file).expect("seed");
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails the target", file.display());
    }
}

#[test]
fn card_apdus_corpus() {
    replay("card_apdus", targets::card_apdus);
}

#[test]
fn apdu_parse_corpus() {
    replay("apdu_parse", targets::apdu_parse);
}

#[test]
fn mikey_parse_corpus() {
    replay("mikey_parse", targets::mikey_parse);
}

#[test]
fn tlv_corpus() {
    replay("tlv", targets::tlv);
}

#[test]
fn mikey_verify_corpus() {
    replay("mikey_verify", targets::mikey_verify);
}

#[test]
fn srtp_unprotect_corpus() {
    replay("srtp_unprotect", targets::srtp_unprotect);
}

#[test]
fn srtp_sequence_corpus() {
    replay("srtp_sequence", targets::srtp_sequence);
}

#[test]
fn xml_bodies_corpus() {
    replay("xml_bodies", targets::xml_bodies);
}

#[test]
fn ub_headers_corpus() {
    replay("ub_headers", targets::ub_headers);
}

#[test]
fn vpcd_frames_corpus() {
    replay("vpcd_frames", targets::vpcd_frames);
}

#[test]
fn profile_toml_corpus() {
    replay("profile_toml", targets::profile_toml);
}

#[test]
fn mikey_ticket_corpus() {
    replay("mikey_ticket", targets::mikey_ticket);
}

#[test]
fn http_response_corpus() {
    replay("http_response", targets::http_response);
}

/// The seeds reach past the checks they are meant to pass: the MIKEY seeds verify and decrypt
/// once re-protected, the SRTP seeds unprotect, the XML and profile seeds parse.
#[test]
fn new_target_seeds_are_valid_messages() {
    use mikey::mbms;
    let read = |target: &str, name: &str| std::fs::read(corpus_dir(target).join(name)).expect("seed");
    let muk = mbms::Muk::new(targets::FUZZ_MUK);
    let msk_message = read("mikey_verify", "msk");
    let m = mbms::parse_msk_message(&msk_message).expect("MSK seed parses");
    assert!(mbms::verify_and_decrypt_msk(&muk, &m).is_ok(), "MSK seed verifies");
    let mtk_message = read("mikey_verify", "mtk-salt");
    let m = mbms::parse_mtk_message(&mtk_message).expect("MTK seed parses");
    assert!(mbms::verify_and_decrypt_mtk(&mbms::Msk::new(targets::FUZZ_MSK), &m).is_ok());
    for name in ["rtp-80", "rtp-32-mki", "rtcp-80"] {
        let seed = read("srtp_unprotect", name);
        let mut rx = targets::srtp_context(seed[0]);
        let mut packet = seed[1..].to_vec();
        let ok = if seed[0] & 4 != 0 {
            rx.unprotect_rtcp_vec(&mut packet)
        } else {
            rx.unprotect_rtp_vec(&mut packet)
        };
        assert!(ok.is_ok(), "{name} unprotects");
    }
    let xml = read("xml_bodies", "register-request");
    let text = std::str::from_utf8(&xml[1..]).expect("UTF-8");
    assert!(wire::mbms_key_management::RegisterRequest::from_xml(text).is_ok(), "{text}");
    let toml = String::from_utf8(read("profile_toml", "default.toml")).expect("UTF-8");
    assert!(CardProfile::from_toml_str(&toml).is_ok());
    let header = |name: &str| String::from_utf8(read("ub_headers", name)[1..].to_vec()).expect("UTF-8");
    wire::digest::DigestChallenge::parse(&header("www-authenticate")).expect("WWW-Authenticate seed");
    wire::digest::DigestAuthorization::parse(&header("authorization")).expect("Authorization seed");
    wire::digest::AuthenticationInfo::parse(&header("authentication-info"))
        .expect("Authentication-Info seed");
    for name in ["bootstrapping-info", "unauthorized", "chunked", "no-length"] {
        network::http::parse_response(&read("http_response", name)).expect(name);
    }
    wire::ub::AkaNonce::decode(&header("aka-nonce")).expect("AKA nonce seed");
    let mut card = Emulator::from_image(targets::personalized_image().as_bytes().to_vec()).expect("card");
    let mut replies = Vec::new();
    sim_reader::vpcd::answer_frames(&mut card, &read("vpcd_frames", "verify-read-reset-off"), &mut replies)
        .expect("vpcd seed frames");
    assert!(replies.len() > 2, "the vpcd seed gets answers");
    let walked = mikey::ticket::fuzz_parse(&read("mikey_ticket", "request-init"));
    assert!(walked >= 5, "REQUEST_INIT seed walked through {walked} payloads");
}

/// The fuzz card is the built-in profile's card, byte for byte, so recorded seeds reach the
/// states they reached on the emulator.
#[test]
fn fuzz_card_is_the_default_card() {
    let profile = CardProfile::default();
    let emulator = Emulator::new(&profile).expect("emulated card");
    assert_eq!(emulator.nvm_image(), targets::personalized_image().as_bytes());
}

/// The recorded seeds reach deep states: the MTK Generation seeds end with MTK and salt, as on the
/// emulator they were recorded from (so mutations start from a card with Ks, MUK and MSK).
#[test]
fn card_seeds_reach_mtk_generation() {
    for seed in ["mtk-generation", "whole-run"] {
        let data = std::fs::read(corpus_dir("card_apdus").join(seed)).expect("seed");
        let mut mtk_answers = 0;
        targets::run_card(&data, &mut |command, response| {
            let mtk_generation =
                command.get(..4) == Some(&[0x00, 0x89, 0x80, 0x85]) && command.get(7) == Some(&0x02);
            if mtk_generation
                && response.ends_with(&[0x90, 0x00])
                && response.get(..3) == Some(&[0x53, 0x1F, 0xDB])
            {
                mtk_answers += 1;
            }
        });
        assert!(mtk_answers >= 1, "{seed}: no MTK Generation succeeded");
    }
}

/// The input format splits as documented, and `join` is its inverse.
#[test]
fn card_input_format() {
    let steps = [
        CardInput::Apdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]),
        CardInput::Control(op::TOGGLE_TRANSPORT, 0),
        CardInput::Apdu(&[]),
        CardInput::Control(op::POWER_CUT, 0x85),
    ];
    let bytes = targets::join_card_input(&steps);
    assert_eq!(hex::encode(&bytes), "000700a4000c023f00800000008385");
    assert_eq!(targets::split_card_input(&bytes), steps);
    // A length beyond the input takes what is left; a last odd byte is dropped.
    assert_eq!(targets::split_card_input(&[0x01, 0xFF, 0xAA, 0xBB]), [CardInput::Apdu(&[0xAA, 0xBB])]);
    assert_eq!(targets::split_card_input(&[0x81, 0x00, 0x05]), [CardInput::Control(op::POWER_CYCLE, 0)]);
}

/// 2026-01-01T00:00:00Z in NTP seconds.
const JAN_2026_NTP: u64 = 1_767_225_600 + mikey::NTP_UNIX_OFFSET;

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

/// Records the seed corpora from a run of the MBMS scenario on the default emulated card.
#[test]
#[ignore = "rewrites fuzz/corpus: run with KEYSIM_WRITE_FUZZ_SEEDS=1 and --ignored"]
fn write_seed_corpus() {
    if std::env::var_os("KEYSIM_WRITE_FUZZ_SEEDS").is_none() {
        eprintln!("set KEYSIM_WRITE_FUZZ_SEEDS=1 to rewrite fuzz/corpus");
        return;
    }
    let profile = CardProfile::default();
    let (run, _) =
        mbms_run::run(Emulator::new(&profile).expect("card").with_protocol(Protocol::T1), &profile);
    let commands: Vec<&[u8]> = run.steps.iter().map(|s| s.exchange.raw[0].command.as_slice()).collect();
    let first = |name: &str| {
        run.steps.iter().position(|s| s.name.starts_with(name)).unwrap_or_else(|| panic!("no step {name}"))
    };
    let exact = |name: &str| {
        run.steps.iter().position(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}"))
    };

    // card_apdus: the scenario up to each stage, then variants with transport switches, resets,
    // power cycles and power cuts in the middle of key updates.
    let upto = |end: usize| commands[..end].iter().map(|c| CardInput::Apdu(c)).collect::<Vec<_>>();
    let naf = exact("NAF derivation") + 1;
    let msk = exact("MSK Update 00010001") + 1;
    let mtk = first("MTK Generation") + 1;
    let pull = exact("solicited pull") + 1;
    let all = commands.len();
    write_seed("card_apdus", "bootstrap-naf", &targets::join_card_input(&upto(naf)));
    write_seed("card_apdus", "msk-update", &targets::join_card_input(&upto(msk)));
    write_seed("card_apdus", "mtk-generation", &targets::join_card_input(&upto(mtk)));
    write_seed("card_apdus", "solicited-pull", &targets::join_card_input(&upto(pull)));
    write_seed("card_apdus", "whole-run", &targets::join_card_input(&upto(all)));
    let mut t0 = vec![CardInput::Control(op::TOGGLE_TRANSPORT, 0)];
    t0.extend(upto(mtk));
    t0.push(CardInput::Apdu(&[0x00, 0xC0, 0x00, 0x00, 0x1E]));
    write_seed("card_apdus", "mtk-generation-t0", &targets::join_card_input(&t0));
    for (name, at, control) in [
        ("power-cut-msk-update", msk - 1, CardInput::Control(op::POWER_CUT, 0x43)),
        ("power-cut-bootstrap", first("GBA bootstrap"), CardInput::Control(op::POWER_CUT, 0x81)),
        ("warm-reset-before-mtk", mtk - 1, CardInput::Control(op::WARM_RESET, 0)),
    ] {
        let mut steps = upto(at);
        steps.push(control);
        steps.push(CardInput::Apdu(commands[at]));
        steps.push(CardInput::Control(op::POWER_CYCLE, 0));
        steps.extend(upto(all)[..4].iter().cloned());
        steps.extend(commands[at..mtk.max(at + 1)].iter().map(|c| CardInput::Apdu(c)));
        write_seed("card_apdus", name, &targets::join_card_input(&steps));
    }

    // apdu_parse: one command of each kind and a few responses.
    let mut seen = std::collections::BTreeSet::new();
    for s in &run.steps {
        let kind = s.name.split_whitespace().take(2).collect::<Vec<_>>().join("-").to_lowercase();
        if seen.insert(kind.clone()) && seen.len() <= 16 {
            write_seed("apdu_parse", &format!("cmd-{kind}"), &s.exchange.raw[0].command);
            write_seed("apdu_parse", &format!("rsp-{kind}"), &s.exchange.raw[0].response);
        }
    }
    write_seed(
        "apdu_parse",
        "extended-case4",
        &[0x00, 0x89, 0x80, 0x85, 0x00, 0x00, 0x02, 0x53, 0x00, 0x00, 0x00],
    );

    // tlv: FCPs, EF records and MBMS answers as the card returned them.
    for (i, s) in run.steps.iter().filter(|s| s.name.starts_with("SELECT EF.M")).take(2).enumerate() {
        write_seed("tlv", &format!("fcp-{i}"), &s.exchange.data);
    }
    for (i, s) in run.steps_named("READ RECORD EF.MUK").take(1).enumerate() {
        write_seed("tlv", &format!("ef-muk-{i}"), &s.exchange.data);
    }
    for (name, prefix) in [("mtk-answer", "MTK Generation"), ("pull-answer", "solicited pull")] {
        let s = run.steps_named(prefix).next().expect(prefix);
        write_seed("tlv", name, &s.exchange.data);
    }
    let muk_delete = run.steps_named("MUK Deletion").next().expect("MUK Deletion");
    let command = &muk_delete.exchange.raw[0].command;
    write_seed("tlv", "muk-deletion-data", &command[5..command.len() - 1]);

    // mikey_parse: messages protected with the fixed keys of the target, so verification passes.
    let sub = mbms_run::Subscriber::from_profile(&profile);
    let boot = &run.bootstraps[0];
    let keys = mbms_run::NafKeys { ks_int_naf: targets::FUZZ_MUK, ..run.naf_keys[0].clone() };
    let mut bmsc = mbms_run::Bmsc::new(&sub, boot, &keys);
    let msk = targets::FUZZ_MSK;
    let t = mbms_run::ntp(1_767_225_600);
    write_seed("mikey_parse", "msk-v", &bmsc.msk_message(0x0001_0001, &msk, t, true));
    write_seed("mikey_parse", "msk", &bmsc.msk_message(0x0001_0002, &msk, t, false));
    write_seed("mikey_parse", "solicited-pull", &bmsc.solicited_pull(1, t));
    write_seed(
        "mikey_parse",
        "mtk-salt",
        &bmsc.keys.mtk_message(0x0001_0001, &msk, 7, 7, &[0x77; 16], Some(&[0x5A; 14])).expect("MTK message"),
    );
    write_seed(
        "mikey_parse",
        "mtk",
        &bmsc.keys.mtk_message(0x0001_0001, &msk, 8, 8, &[0x78; 16], None).expect("MTK message"),
    );
    let verification = run.steps_named("MSK Update 00010001").next().expect("MSK 1");
    let answer = mbms_run::mbms_answer("MSK 1", &verification.exchange).expect("answer");
    write_seed("mikey_parse", "verification", &answer);
    eprintln!("seed corpora written under {}", corpus_dir("").display());
}

/// Records the seeds of the targets beyond the card and the codecs (mikey_verify, srtp_unprotect,
/// srtp_sequence, xml_bodies, ub_headers, vpcd_frames, profile_toml, http_response): real messages
/// built by the project's own senders and the documents of the specifications' examples.
#[test]
#[ignore = "rewrites fuzz/corpus: run with KEYSIM_WRITE_FUZZ_SEEDS=1 and --ignored"]
fn write_boundary_seed_corpus() {
    use wire::mbms_key_management as http;
    use wire::sip_based_mbms as sip_based;
    if std::env::var_os("KEYSIM_WRITE_FUZZ_SEEDS").is_none() {
        eprintln!("set KEYSIM_WRITE_FUZZ_SEEDS=1 to rewrite fuzz/corpus");
        return;
    }
    // mikey_verify: the mikey_parse seeds (protected with the fuzz keys).
    for name in ["msk", "msk-v", "mtk", "mtk-salt", "solicited-pull"] {
        let bytes = std::fs::read(corpus_dir("mikey_parse").join(name)).expect("mikey_parse seed");
        write_seed("mikey_verify", name, &bytes);
    }

    // srtp_unprotect: packets protected by a sender with the fuzz key, and plain packets for the
    // protect-then-unprotect mode.
    let rtp = |seq: u16| {
        let mut p = vec![0x80, 0x60];
        p.extend(seq.to_be_bytes());
        p.extend([0, 0, 0x12, 0x34, 0xCA, 0xFE, 0xBA, 0xBE]);
        p.extend([0xAB; 24]);
        p
    };
    let rtcp = {
        // A receiver report (RFC 3550 §6.4.2) with no report block.
        vec![0x80, 0xC9, 0x00, 0x01, 0xCA, 0xFE, 0xBA, 0xBE]
    };
    for (name, selector, packet) in [
        ("rtp-80", 0u8, rtp(7)),
        ("rtp-32-mki", 1, rtp(8)),
        ("rtp-null-mki", 2, rtp(9)),
        ("rtp-kdr", 3, rtp(10)),
    ] {
        let mut tx = targets::srtp_context(selector);
        let mut p = packet.clone();
        tx.protect_rtp_vec(&mut p).expect("protect");
        let mut seed = vec![selector];
        seed.extend(&p);
        write_seed("srtp_unprotect", name, &seed);
    }
    for (name, selector) in [("rtcp-80", 4u8), ("rtcp-32-mki", 5)] {
        let mut tx = targets::srtp_context(selector);
        let mut p = rtcp.clone();
        tx.protect_rtcp_vec(&mut p).expect("protect");
        let mut seed = vec![selector];
        seed.extend(&p);
        write_seed("srtp_unprotect", name, &seed);
    }
    let mut plain = vec![8u8];
    plain.extend(rtp(11));
    write_seed("srtp_unprotect", "plain-rtp", &plain);
    let mut plain = vec![12u8];
    plain.extend(&rtcp);
    write_seed("srtp_unprotect", "plain-rtcp", &plain);

    // srtp_sequence: in order, reordered with replays, across the ROC change, with garbage.
    write_seed("srtp_sequence", "in-order", &(0..40).collect::<Vec<u8>>());
    write_seed("srtp_sequence", "reorder-replay", &[0, 2, 1, 1, 5, 3, 4, 5, 0, 9, 8, 7]);
    write_seed(
        "srtp_sequence",
        "roc-change",
        &[0, 50, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110],
    );
    write_seed("srtp_sequence", "damaged", &[0, 1, 0x80, 2, 0x9B, 3, 2, 3, 0xC4, 0x80, 0x60, 0, 1, 4]);

    // xml_bodies: one document of each kind, as the peers write them.
    let btid = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org";
    let naf = gba::NafId::new("bmsc.example.org", gba::UaSecurityProtocolId::MBMS).expect("NAF_Id");
    let key_id = http::MskKeyId {
        key_domain_id: mikey::mbms::KeyDomainId([0x00, 0xF1, 0x10]),
        msk_id: mikey::mbms::MskId(0x0001_0001),
    };
    let services = vec!["urn:3gpp:mbms:service:1".to_owned(), "urn:3gpp:mbms:service:2".to_owned()];
    let register = http::RegisterRequest { service_ids: services.clone() };
    let docs: Vec<(&str, u8, String)> = vec![
        (
            "bootstrapping-info",
            0,
            wire::ub::BootstrappingInfo { btid: btid.into(), lifetime: "2030-12-31T23:59:59Z".into() }
                .to_xml(),
        ),
        (
            "zn-request",
            1,
            wire::zn::ZnRequest { btid: btid.into(), naf_id: naf.clone(), gba_u_aware: true }.to_xml(),
        ),
        (
            "zn-answer",
            2,
            wire::zn::ZnAnswer {
                btid: btid.into(),
                keys: wire::zn::NafKeyMaterial::GbaU {
                    ks_ext_naf: gba::KsExtNaf::new([0xE5; 32]),
                    ks_int_naf: Some(gba::KsIntNaf::new([0x15; 32])),
                },
                key_expiry: "2030-12-31T23:59:59Z".into(),
                bootstrap_time: "2026-01-01T00:00:00Z".into(),
                impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org".into(),
                impus: vec!["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org".into()],
            }
            .to_xml(),
        ),
        (
            "zn-error",
            3,
            wire::zn::ZnErrorBody {
                code: wire::zn::ZnErrorCode::UnknownBtid,
                reason: "unknown B-TID".into(),
            }
            .to_xml(),
        ),
        ("register-request", 4, register.to_xml()),
        ("deregister-request", 5, http::DeregisterRequest { service_ids: services.clone() }.to_xml()),
        (
            "register-response",
            6,
            http::RegisterResponse {
                statuses: vec![http::ServiceStatus { code: 200, service_ids: services.clone() }],
            }
            .to_xml(),
        ),
        ("msk-request", 7, http::MskRequest { key_ids: vec![key_id] }.to_xml()),
        (
            "msk-response",
            8,
            http::MskResponse { statuses: vec![http::KeyStatus { code: 200, key_ids: vec![key_id] }] }
                .to_xml(),
        ),
        (
            "sip-security-request",
            9,
            sip_based::SipSecurityRequest {
                btid: btid.into(),
                procedure: sip_based::SipProcedure::Register(register.clone()),
            }
            .to_xml(),
        ),
        (
            "sip-procedure",
            10,
            sip_based::SipProcedure::MskRequest(http::MskRequest { key_ids: vec![key_id] }).to_xml(),
        ),
        (
            "naf-key-info",
            11,
            sip_based::NafKeyInfo {
                ue_ip_addresses: vec!["127.0.0.1".parse().expect("IP")],
                keys: Some(sip_based::NafKeys {
                    muk: mikey::mbms::Muk::new([0x4D; 32]),
                    muk_lifetime: "2030-12-31T23:59:59Z".into(),
                    btid: btid.into(),
                    naf_fqdn: "bmsc.example.org".into(),
                }),
                procedure: sip_based::SipProcedure::Register(register.clone()),
            }
            .to_xml(),
        ),
        (
            "authorize-request",
            12,
            sip_based::AuthorizeRequest {
                ue_ip_address: "127.0.0.1".parse().expect("IP"),
                service_ids: services,
            }
            .to_xml(),
        ),
    ];
    for (name, which, xml) in docs {
        let mut seed = vec![which];
        seed.extend(xml.as_bytes());
        write_seed("xml_bodies", name, &seed);
    }

    // ub_headers: the headers of a Ub run (RFC 3310 §3 examples, with the project's BSF values).
    let headers: [(&str, u8, &str); 5] = [
        (
            "www-authenticate",
            0,
            r#"Digest realm="bsf.example.org", nonce="CjPk9mRqNuT25eRkajM09uTl9nM09uTl9nMz5OX25PZz==", qop="auth,auth-int", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=AKAv1-MD5"#,
        ),
        (
            "authorization-initial",
            1,
            r#"Digest username="001010123456789@ims.mnc001.mcc001.3gppnetwork.org", realm="bsf.example.org", nonce="", uri="/", response="""#,
        ),
        (
            "authorization",
            1,
            r#"Digest username="001010123456789@ims.mnc001.mcc001.3gppnetwork.org", realm="bsf.example.org", nonce="CjPk9mRqNuT25eRkajM09uTl9nM09uTl9nMz5OX25PZz==", uri="/", qop=auth-int, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=AKAv1-MD5"#,
        ),
        (
            "authentication-info",
            2,
            r#"qop=auth-int, rspauth="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", nc=00000001"#,
        ),
        ("aka-nonce", 3, "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1TfrnPaZN5kbzjqCOojfN7rVv4="),
    ];
    for (name, which, text) in headers {
        let mut seed = vec![which];
        seed.extend(text.as_bytes());
        write_seed("ub_headers", name, &seed);
    }

    // vpcd_frames: what pcscd's vpcd driver sends: power on, ATR, a USIM session, reset, power off.
    let frame = |payload: &[u8]| {
        let mut f = (payload.len() as u16).to_be_bytes().to_vec();
        f.extend(payload);
        f
    };
    let mut session = Vec::new();
    for p in [&[1u8][..], &[4], &hex::decode("00A4040C07A0000000871002").expect("hex")] {
        session.extend(frame(p));
    }
    write_seed("vpcd_frames", "power-on-atr-select", &session);
    let mut pin = session.clone();
    pin.extend(frame(&hex::decode("002000010831323334FFFFFFFF").expect("hex")));
    pin.extend(frame(&hex::decode("00B0000009").expect("hex")));
    pin.extend(frame(&[2]));
    pin.extend(frame(&[0]));
    write_seed("vpcd_frames", "verify-read-reset-off", &pin);
    let mut card_seed = Vec::new();
    let apdus = std::fs::read(corpus_dir("card_apdus").join("bootstrap-naf")).expect("card seed");
    for step in targets::split_card_input(&apdus) {
        if let CardInput::Apdu(a) = step {
            card_seed.extend(frame(a));
        }
    }
    write_seed("vpcd_frames", "bootstrap-naf", &card_seed);

    // profile_toml: the built-in profiles, and the default one as JSON.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["default.toml", "callee.toml"] {
        let text = std::fs::read(root.join("sim-reader").join(name)).expect("profile");
        write_seed("profile_toml", name, &text);
    }
    write_seed("profile_toml", "default.json", CardProfile::default().to_json().as_bytes());

    // http_response: the shapes the BSF and BM-SC answer with.
    let responses: [(&str, &str); 4] = [
        (
            "bootstrapping-info",
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.3gpp.bsf+xml\r\ncontent-length: 78\r\n\r\n<BootstrappingInfo><btid>x@bsf</btid><lifetime>2030-12-31T23:59:59Z</lifetime>",
        ),
        (
            "unauthorized",
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"bsf.example.org\", nonce=\"abc\", qop=\"auth-int\", algorithm=AKAv1-MD5\r\ncontent-length: 0\r\n\r\n",
        ),
        (
            "chunked",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        ),
        ("no-length", "HTTP/1.0 204 No Content\r\nServer: keysim\r\n\r\n"),
    ];
    for (name, text) in responses {
        write_seed("http_response", name, text.as_bytes());
    }
    // mikey_ticket: a REQUEST_INIT_PSK of the IMS profile as the UE sends it to the KMS, and an
    // error answer to it.
    use mikey::ticket::{self, exchange};
    let policy = exchange::PolicySpec::ims(
        "kms.example.org",
        "sip:alice@ims.example.org",
        &["sip:bob@ims.example.org"],
        false,
    );
    for (name, reusable) in [("request-init", false), ("request-init-reusable", true)] {
        let policy = exchange::PolicySpec {
            flags: exchange::PolicySpec::ims("k", "i", &[], reusable).flags,
            ..policy.clone()
        };
        let init = exchange::RequestInit {
            csb_id: 0x1234_5678,
            t: (JAN_2026_NTP) << 32,
            randri: vec![0x5A; 16],
            initiator: "sip:alice@ims.example.org".into(),
            kms: "kms.example.org".into(),
            policy,
            psk_id: "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org".into(),
        };
        let bytes = exchange::build_request_init(&init, &[0x4B; 32]).expect("REQUEST_INIT");
        write_seed("mikey_ticket", name, &bytes);
    }
    let hdr = ticket::init_hdr(mikey::DataType::REQUEST_INIT_PSK, mikey::PrfFunc::HmacSha256, 7);
    let mut out = [0u8; 128];
    let n =
        ticket::build_error(&mut out, &hdr, JAN_2026_NTP << 32, mikey::ErrorNo::AUTH_FAILURE).expect("error");
    write_seed("mikey_ticket", "error", &out[..n]);
    eprintln!("boundary seed corpora written under {}", corpus_dir("").display());
}
