//! `keysim ue` as a separate process against a BSF and a BM-SC started here (real sockets on
//! loopback), the BM-SC sending MTKs and media on its own schedule: full sessions on both paths
//! with the decrypted media compared to the source frames, the ME key store across runs, SIP
//! registration through an SCF and a P-CSCF, twenty UEs at once, bad arguments and refusals.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use network::bmsc::{Bmsc, BmscConfig, BmscSchedule, BmscService};
use network::bmsc_stream::{BmscStreamConfig, test_signal_frame};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sim_reader::CardProfile;

const FQDN: &str = wire::mbms_key_management::DEFAULT_BMSC_FQDN;
const SERVICE: &str = "urn:keysim:mbms:service:1";
const SEED: [u8; 32] = *b"keysim ue test BM-SC key seed...";
const STEPS: [&str; 8] = [
    "power_on",
    "gba_bootstrap",
    "naf_derivation",
    "registration",
    "msk_push",
    "mtk_update",
    "media",
    "deregistration",
];

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

/// `keysim` with the words of `line` as arguments.
fn keysim_line(line: &str) -> Output {
    keysim(&line.split_whitespace().collect::<Vec<_>>())
}

fn free_udp_port() -> u16 {
    test_kit::ports::loopback_port()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn explain(out: &Output) -> String {
    format!(
        "{:?}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn bsf(profiles: &[CardProfile]) -> Bsf {
    let subscribers = profiles.iter().map(|p| Subscriber::from_profile_toml(&p.to_toml()).unwrap()).collect();
    Bsf::start(BsfConfig { subscribers, ..BsfConfig::default() }).unwrap()
}

/// The BM-SC on its own schedule: an MTK every 400 ms, 50 packets per second.
fn schedule() -> BmscSchedule {
    BmscSchedule {
        mtk_interval: Duration::from_millis(400),
        media_interval: Duration::from_millis(20),
        packets_per_media_interval: 1,
        msk_rotation_interval: None,
    }
}

struct Net {
    bsf: Bsf,
    bmsc: Bmsc,
    mikey: String,
    media: String,
}

fn network(profiles: &[CardProfile]) -> Net {
    let bsf = bsf(profiles);
    let (mikey_port, media_port) = (free_udp_port(), free_udp_port());
    let mut config = BmscConfig::new(FQDN, bsf.addr());
    config.services = vec![BmscService::new(SERVICE, 1, SEED)];
    config.ue_mikey_port = mikey_port;
    config.bearer_mikey = vec![SocketAddr::from(([127, 0, 0, 1], mikey_port))];
    config.bearer_media = vec![SocketAddr::from(([127, 0, 0, 1], media_port))];
    config.v_bit = true;
    config.schedule = Some(schedule());
    let bmsc = Bmsc::start(config).unwrap();
    Net { bsf, bmsc, mikey: format!("127.0.0.1:{mikey_port}"), media: format!("127.0.0.1:{media_port}") }
}

fn ue_args<'a>(net: &'a Net, bsf: &'a str, bmsc: &'a str) -> Vec<&'a str> {
    vec![
        "ue",
        "--emulator",
        "--bsf",
        bsf,
        "--bmsc",
        bmsc,
        "--mikey-bind",
        &net.mikey,
        "--bearer-media",
        &net.media,
        "--json",
        "--quiet",
    ]
}

fn path_report<'a>(j: &'a serde_json::Value, tag: &str) -> &'a serde_json::Value {
    &j["paths"][tag]
}

fn step<'a>(p: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {p}"))
}

/// The media-out file against the BM-SC's source: each SSRC's bytes are the test-signal frames
/// from its first sequence number on, generated here from the stream definition.
fn check_media_out(j: &serde_json::Value, file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let m = &j["ue"]["media_out"];
    assert_eq!(m["bytes"].as_u64().unwrap(), bytes.len() as u64);
    let streams = m["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{m}");
    let s = &streams[0];
    let source = BmscStreamConfig::new(FQDN, SEED);
    assert_eq!(s["ssrc"].as_u64().unwrap(), u64::from(source.ssrc));
    assert_eq!(s["missing"], 0);
    let first = s["first_seq"].as_u64().unwrap() as u16;
    let frames = s["frames"].as_u64().unwrap();
    assert!(frames >= 20, "{frames} frames in 2 s of 50 per second");
    let mut expected = Vec::new();
    for i in 0..frames {
        expected.extend_from_slice(&test_signal_frame(u64::from(first.wrapping_sub(source.first_seq)) + i));
    }
    assert_eq!(bytes.len(), expected.len());
    assert!(bytes == expected, "the decrypted media differs from the source frames");
}

#[test]
fn full_session_on_both_paths_with_media_out() {
    let profile = CardProfile::default();
    let net = network(std::slice::from_ref(&profile));
    let dir = tempfile::tempdir().unwrap();
    let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
    for tag in ["uicc", "me"] {
        let out_file = dir.path().join(format!("media-{tag}.raw"));
        let out_name = out_file.to_str().unwrap().to_owned();
        let mut args = ue_args(&net, &bsf, &bmsc);
        args.extend(["--path", tag, "--duration", "2", "--media-out", &out_name]);
        let before = net.bmsc.stats();
        let out = keysim(&args);
        assert!(out.status.success(), "{}", explain(&out));
        let j = json(&out);
        assert_eq!(j["ok"], true);
        let p = path_report(&j, tag);
        let names: Vec<&str> =
            p["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        for s in STEPS {
            assert!(names.contains(&s), "{s} missing from {names:?}");
            assert_eq!(step(p, s)["ok"], true, "{s}: {p}");
        }
        assert!(p["mtk_count"].as_u64().unwrap() >= 1);
        assert!(p["packets_decrypted"].as_u64().unwrap() >= 20);
        check_media_out(&j, &out_file);
        // The network side saw the registration, the verification message and the deregistration.
        let d = net.bmsc.stats();
        assert_eq!(d.registrations - before.registrations, 1);
        assert_eq!(d.deregistrations - before.deregistrations, 1);
        assert!(d.verifications_ok > before.verifications_ok);
    }
}

#[test]
fn me_state_keeps_the_last_used_muk_and_another_card_wipes_it() {
    let profile = CardProfile::default();
    let other = CardProfile::callee();
    let net = network(&[profile.clone(), other.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("me");
    let state_name = state.to_str().unwrap().to_owned();
    let other_file = dir.path().join("other.toml");
    std::fs::write(&other_file, other.to_toml()).unwrap();
    let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
    let run = |extra: &[&str]| {
        let mut args = ue_args(&net, &bsf, &bmsc);
        args.extend(["--path", "me", "--duration", "1", "--me-state", &state_name]);
        args.extend(extra);
        let out = keysim(&args);
        assert!(out.status.success(), "{}", explain(&out));
        json(&out)
    };
    let store_muks = || -> Vec<(String, bool)> {
        let s = me::KeyStore::snapshot(state.join("me-keys.bin")).unwrap();
        s.muks().iter().map(|m| (String::from_utf8(m.idr.clone()).unwrap(), m.last_used)).collect()
    };

    let first = run(&[]);
    let btid1 = path_report(&first, "me")["btid"].as_str().unwrap().to_owned();
    assert_eq!(first["ue"]["me_state"]["card_change"], "first card");
    // The file, read independently of the process: the MUK of run 1 is kept and marked last used.
    assert!(store_muks().contains(&(btid1.clone(), true)), "{:?}", store_muks());

    let second = run(&[]);
    assert_eq!(second["ue"]["me_state"]["card_change"], "same card");
    let kept: Vec<&str> = second["ue"]["me_state"]["muks_at_power_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(kept.contains(&btid1.as_str()), "{kept:?}");
    assert_eq!(second["ue"]["me_state"]["last_used_muk_at_power_on"], btid1.as_str());
    let btid2 = path_report(&second, "me")["btid"].as_str().unwrap().to_owned();
    assert_ne!(btid1, btid2);

    let third = run(&["--profile", other_file.to_str().unwrap()]);
    assert_eq!(third["ue"]["me_state"]["card_change"], "different card");
    assert_eq!(third["ue"]["me_state"]["muks_at_power_on"].as_array().unwrap().len(), 0);
    let left = store_muks();
    assert!(left.iter().all(|(b, _)| *b != btid1 && *b != btid2), "{left:?}");
}

#[test]
fn sip_registration_through_the_pcscf_and_scf() {
    const SCF_DOMAIN: &str = wire::sip_based_mbms::DEFAULT_SCF_DOMAIN;
    const SCF_FQDN: &str = wire::sip_based_mbms::DEFAULT_SCF_NAF_FQDN;
    let profile = CardProfile::default();
    let bsf = bsf(std::slice::from_ref(&profile));
    let (mikey_port, media_port) = (free_udp_port(), free_udp_port());
    let mut config = BmscConfig::new(FQDN, bsf.addr());
    config.services = vec![BmscService::new(SERVICE, 1, SEED)];
    config.ue_mikey_port = mikey_port;
    config.bearer_mikey = vec![SocketAddr::from(([127, 0, 0, 1], mikey_port))];
    config.bearer_media = vec![SocketAddr::from(([127, 0, 0, 1], media_port))];
    config.schedule = Some(schedule());
    config.trusted_scfs = vec![network::scf::DEFAULT_HTTP_SOURCE];
    let bmsc = Bmsc::start(config).unwrap();
    let impu = profile.impu()[0].clone();
    let mut c = network::scf::ScfConfig::new(SCF_DOMAIN, bsf.addr());
    c.services = vec![network::scf::ScfService::new(SERVICE, SCF_FQDN, bmsc.addr(), 1)];
    c.subscribers =
        vec![network::scf::ScfSubscriber { impu: impu.clone(), services: vec![SERVICE.to_owned()] }];
    c.mode = network::scf::ScfMode::SipBased;
    let scf = network::scf::Scf::start(c).unwrap();
    let mut p = network::pcscf::PcscfConfig::new(scf.addr());
    p.users.push(network::pcscf::PcscfUser {
        impi: profile.impi().to_owned(),
        impus: profile.impu().to_vec(),
        ue_addr: None,
    });
    let pcscf = network::pcscf::Pcscf::start(p).unwrap();
    scf.trust_proxy(pcscf.addr());

    let pcscf_uri = format!("sip:{}", pcscf.addr());
    let (mikey, media) = (format!("127.0.0.1:{mikey_port}"), format!("127.0.0.1:{media_port}"));
    let out = keysim_line(&format!(
        "ue --emulator --bsf {} --pcscf {} --mikey-bind {} --bearer-media {} --path me --duration 1.5 --json --quiet",
        bsf.url(),
        pcscf_uri,
        mikey,
        media
    ));
    assert!(out.status.success(), "{}", explain(&out));
    let j = json(&out);
    let p = path_report(&j, "me");
    assert_eq!(p["signalling"], "sip");
    assert!(step(p, "naf_derivation")["detail"].as_str().unwrap().contains(SCF_FQDN));
    assert!(p["packets_decrypted"].as_u64().unwrap() > 0);
    let st = scf.stats();
    assert!(st.invites >= 1, "{st:?}");
    assert!(st.bmsc_requests >= 2, "registration and deregistration posted to the BM-SC: {st:?}");
    assert_eq!(bmsc.stats().deregistrations, 1);
}

#[test]
fn twenty_ues_against_one_bmsc() {
    // KEYSIM_TEST_UES=N runs the same with N UEs (a measurement; the figures go to stderr).
    let n: usize = std::env::var("KEYSIM_TEST_UES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let n_arg = n.to_string();
    let base = CardProfile::default();
    let profiles: Vec<CardProfile> = (0..n as u64).map(|i| nth_subscriber(&base, i as usize)).collect();
    let bsf = bsf(&profiles);
    let (mikey_port, media_port) = (free_udp_port(), free_udp_port());
    let mut config = BmscConfig::new(FQDN, bsf.addr());
    config.services = vec![BmscService::new(SERVICE, 1, SEED)];
    config.ue_mikey_port = mikey_port;
    // The bearer: one unicast copy per UE, at each UE's own loopback address.
    let ue_ip = |i: usize| me::standalone::ue_loopback_address(i).unwrap();
    config.bearer_mikey = (0..n).map(|i| SocketAddr::from((ue_ip(i), mikey_port))).collect();
    config.bearer_media = (0..n).map(|i| SocketAddr::from((ue_ip(i), media_port))).collect();
    config.schedule = Some(schedule());
    let bmsc = Bmsc::start(config).unwrap();
    let (mikey, media) = (format!("127.0.0.1:{mikey_port}"), format!("127.0.0.1:{media_port}"));
    let out = keysim_line(&format!(
        "ue --emulator --ues {} --bsf {} --bmsc {} --mikey-bind {} --bearer-media {} --path me --duration 2 --json --quiet",
        n_arg,
        bsf.url(),
        bmsc.url(),
        mikey,
        media
    ));
    assert!(out.status.success(), "{}", explain(&out));
    let j = json(&out);
    eprintln!(
        "{n} UEs: {} registrations/s, MTK fan-out {}, VmHWM {} KiB, {} KiB per UE",
        j["registrations_per_s"], j["mtk_fanout"], j["vm_hwm_kib"], j["memory_per_ue_kib"]
    );
    for key in ["ok_count", "registered", "with_msk", "with_mtk", "decrypting"] {
        assert_eq!(j[key], n, "{key}: {j}");
    }
    assert_eq!(j["decrypt_failures"], 0);
    assert!(j["registrations_per_s"].as_f64().unwrap() > 0.0);
    assert!(j["mtk_fanout"]["mtks"].as_u64().unwrap() >= 1);
    assert!(j["memory_per_ue_kib"].as_f64().is_some());
    let imsis: std::collections::BTreeSet<&str> =
        j["per_ue"].as_array().unwrap().iter().map(|u| u["imsi"].as_str().unwrap()).collect();
    assert_eq!(imsis.len(), n);
    // The BM-SC's own counts: twenty registrations from twenty B-TIDs, MSKs pushed to each.
    let st = bmsc.stats();
    assert_eq!(st.registrations, n as u64);
    assert_eq!(st.deregistrations, n as u64);
    assert!(st.msk_pushes >= n as u64);
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let no_panic = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        err.into_owned()
    };
    let out = keysim(&["ue", "--emulator", "--bmsc", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(no_panic(&out).contains("--bsf"));
    let out = keysim(&["ue", "--emulator", "--bsf", "http://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(no_panic(&out).contains("--bmsc"));
    let out = keysim(&["ue", "--emulator", "--bsf", "ftp://127.0.0.1/", "--bmsc", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(no_panic(&out).contains("--bsf"), "{}", explain(&out));
    let out = keysim(&["ue", "--emulator", "--bsf", "http://192.0.2.1/", "--bmsc", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(no_panic(&out).contains("loopback"));
    let out = keysim_line("ue --emulator --bsf http://127.0.0.1:1/ --bmsc http://127.0.0.1:1 --duration 0");
    assert_eq!(out.status.code(), Some(2));
    assert!(no_panic(&out).contains("--duration"));
    // Nobody listens on the BSF port: the bootstrap fails, the run says so in its report.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}/");
    let mikey = format!("127.0.0.1:{}", free_udp_port());
    let media = format!("127.0.0.1:{}", free_udp_port());
    let out = keysim_line(&format!(
        "ue --emulator --bsf {} --bmsc http://127.0.0.1:1 --mikey-bind {} --bearer-media {} --json --quiet",
        url, mikey, media
    ));
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    no_panic(&out);
    let j = json(&out);
    assert_eq!(j["ok"], false);
    assert_eq!(step(path_report(&j, "uicc"), "gba_bootstrap")["ok"], false);
}

/// A UE against a fresh network with `extra` arguments that must make it fail (exit 1, `ok`
/// false in the JSON); the network and the JSON come back.
fn failing_run(extra: &[&str]) -> (Net, serde_json::Value) {
    let net = network(&[CardProfile::default()]);
    let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
    let mut args = ue_args(&net, &bsf, &bmsc);
    args.extend(extra);
    args.extend(["--duration", "1"]);
    let out = keysim(&args);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let j = json(&out);
    assert_eq!(j["ok"], false);
    (net, j)
}

#[test]
fn a_refused_registration_fails_the_run() {
    let (_net, j) = failing_run(&["--service", "urn:keysim:mbms:service:not-offered"]);
    let p = path_report(&j, "uicc");
    let r = step(p, "registration");
    assert_eq!(r["ok"], false);
    assert!(r["detail"].as_str().unwrap().contains("404"), "{r}");
    assert!(p["steps"].as_array().unwrap().iter().all(|s| s["name"] != "msk_push"));
}

/// A planted defect: the UE names another NAF than the BM-SC is. Its Digest realm and NAF keys
/// are then wrong, and the run must fail at registration (this proves the full-session test can
/// fail).
#[test]
fn a_wrong_naf_fqdn_fails_registration() {
    let (net, j) = failing_run(&["--naf-fqdn", "other-bmsc.mnc001.mcc001.pub.3gppnetwork.org"]);
    assert_eq!(step(path_report(&j, "uicc"), "registration")["ok"], false, "{j}");
    assert_eq!(net.bmsc.stats().registrations, 0);
}

/// Same ICCID, another subscriber (IMPI): the key store is wiped as for another card.
#[test]
fn another_impi_behind_the_same_iccid_wipes_the_me_keys() {
    let base = CardProfile::default();
    let other = nth_subscriber(&base, 3);
    assert_eq!(base.iccid(), other.iccid());
    let net = network(&[base, other.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("me");
    let other_file = dir.path().join("other.toml");
    std::fs::write(&other_file, other.to_toml()).unwrap();
    let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
    let run = |extra: &[&str]| {
        let mut args = ue_args(&net, &bsf, &bmsc);
        args.extend(["--path", "me", "--duration", "1", "--me-state", state.to_str().unwrap()]);
        args.extend(extra);
        let out = keysim(&args);
        assert!(out.status.success(), "{}", explain(&out));
        json(&out)
    };
    let first = run(&[]);
    let btid = path_report(&first, "me")["btid"].as_str().unwrap().to_owned();
    let second = run(&["--profile", other_file.to_str().unwrap()]);
    assert_eq!(second["ue"]["me_state"]["card_change"], "different card");
    assert_eq!(second["ue"]["me_state"]["muks_at_power_on"].as_array().unwrap().len(), 0);
    let s = me::KeyStore::snapshot(state.join("me-keys.bin")).unwrap();
    assert!(s.muks().iter().all(|m| m.idr != btid.as_bytes()));
}

/// --card-state keeps the card's memory: a card whose SQN went ahead with one BSF makes a fresh
/// BSF (starting from the profile's SQN) resynchronise, which a card started afresh does not.
/// (The kept card also remembers the MTK IDs of the first BM-SC, whose restarted twin counts
/// from the start again: its MTKs are refused as replays, so only the bootstrap is looked at.)
#[test]
fn card_state_keeps_the_cards_sqn() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card.state");
    let card_name = card.to_str().unwrap().to_owned();
    let run = |net: &Net, extra: &[&str]| {
        let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
        let mut args = ue_args(net, &bsf, &bmsc);
        args.extend(["--duration", "1"]);
        args.extend(extra);
        let out = keysim(&args);
        let j = json(&out);
        let boot = step(path_report(&j, "uicc"), "gba_bootstrap");
        assert_eq!(boot["ok"], true, "{}", explain(&out));
        (out.status.success(), boot["detail"].as_str().unwrap().contains("resynchronised"))
    };
    let first = network(&[CardProfile::default()]);
    assert_eq!(run(&first, &["--card-state", &card_name]), (true, false));
    assert_eq!(run(&first, &["--card-state", &card_name]), (true, false));
    drop(first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&card).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let fresh = network(&[CardProfile::default()]);
    assert_eq!(run(&fresh, &[]), (true, false), "a fresh card is in step with a fresh BSF");
    let fresh = network(&[CardProfile::default()]);
    assert!(run(&fresh, &["--card-state", &card_name]).1, "the kept card is ahead of a fresh BSF");
}

/// The bearer on a multicast group: every UE joins it on loopback, MSK pushes stay unicast.
#[test]
fn three_ues_over_a_multicast_bearer() {
    const N: usize = 3;
    let base = CardProfile::default();
    let profiles: Vec<CardProfile> = (0..N as u64).map(|i| nth_subscriber(&base, i as usize)).collect();
    let bsf = bsf(&profiles);
    let (mikey_port, group_mtk, group_media) = (free_udp_port(), free_udp_port(), free_udp_port());
    let group = std::net::Ipv4Addr::new(239, 255, 77, 79);
    let mut config = BmscConfig::new(FQDN, bsf.addr());
    config.services = vec![BmscService::new(SERVICE, 1, SEED)];
    config.ue_mikey_port = mikey_port;
    config.bearer_mikey = vec![SocketAddr::from((group, group_mtk))];
    config.bearer_media = vec![SocketAddr::from((group, group_media))];
    config.schedule = Some(schedule());
    let bmsc = Bmsc::start(config).unwrap();
    let out = keysim_line(&format!(
        "ue --emulator --ues {N} --bsf {} --bmsc {} --mikey-bind 127.0.0.1:{mikey_port} --bearer-mikey {group}:{group_mtk} \
         --bearer-media {group}:{group_media} --duration 1.5 --json --quiet",
        bsf.url(),
        bmsc.url()
    ));
    assert!(out.status.success(), "{}", explain(&out));
    let j = json(&out);
    assert_eq!(j["ok_count"], N);
    assert_eq!(j["decrypt_failures"], 0);
    assert_eq!(bmsc.stats().registrations, N as u64);
}

/// `keysim ue --reader` with the emulated card behind a real pcscd (vsmartcard's vpcd, reader
/// `KEYSIM_PCSC_READER`), against a BSF and a BM-SC started here, on both paths. Needs the set-up
/// of `scripts/pcsc-tests.sh`, which runs it; ignored in a plain `cargo test`.
#[test]
#[ignore = "needs pcscd and a keysim vpcd card: scripts/pcsc-tests.sh"]
fn ue_through_pcscd() {
    let reader =
        std::env::var("KEYSIM_PCSC_READER").expect("KEYSIM_PCSC_READER (scripts/pcsc-tests.sh sets it)");
    let net = network(&[CardProfile::default()]);
    let (bsf, bmsc) = (net.bsf.url(), net.bmsc.url());
    for tag in ["uicc", "me"] {
        let out = keysim(&[
            "ue",
            "--reader",
            &reader,
            "--bsf",
            &bsf,
            "--bmsc",
            &bmsc,
            "--mikey-bind",
            &net.mikey,
            "--bearer-media",
            &net.media,
            "--path",
            tag,
            "--duration",
            "2",
            "--json",
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", explain(&out));
        let j = json(&out);
        let p = path_report(&j, tag);
        assert!(j["card"].as_str().unwrap().starts_with("PC/SC reader"));
        assert!(p["packets_decrypted"].as_u64().unwrap() > 0);
        eprintln!(
            "keysim ue through pcscd, {tag} path: {} MTKs, {} packets decrypted, power-on to first media {} ms",
            p["mtk_count"], p["packets_decrypted"], p["time_to_first_media_ms"]
        );
    }
}

/// Subscriber `index` of the population a `[[subscriber_range]]` of `keysim serve` describes.
fn nth_subscriber(base: &CardProfile, index: usize) -> CardProfile {
    let d = network::config::derived_identity(index);
    base.with_identity(&d.imsi, &d.impi, &[d.impu], d.k).expect("derived subscriber profile")
}
