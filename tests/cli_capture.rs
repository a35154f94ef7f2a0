//! `--capture FILE.pcapng` on `keysim demo` and `keysim call`, read back by tshark: every part of
//! the run in one file, decoded without "Decode As", with the values the run reports in its JSON.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

/// tshark is there, or (unless oracles are required) the test is skipped.
fn have_tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!oracles_required(), "tshark is required (KEYSIM_REQUIRE_ORACLES=1) but not available");
        eprintln!("skipping: tshark not available");
    }
    ok
}

fn keysim_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim");
    assert!(out.status.success(), "keysim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn tshark(args: &[&str]) -> String {
    // A home of its own: a copy of the plugin installed in the user's Wireshark folders would
    // otherwise load twice with -X lua_script, and change what "without the plugin" means.
    let home = std::env::temp_dir().join(format!("keysim-tshark-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("tshark home");
    let out = Command::new("tshark")
        .args(args)
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The plugin this repository ships for what Wireshark 4.0 does not decode.
const PLUGIN: &str = concat!("lua_script:", env!("CARGO_MANIFEST_DIR"), "/wireshark/keysim.lua");

/// The values of `fields` in the frames matching `filter`, one line per frame, tab-separated.
fn fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    fields_with(file, &[], filter, fields)
}

/// `fields` with the keysim plugin loaded.
fn plugin_fields(file: &Path, filter: &str, names: &[&str]) -> Vec<String> {
    fields_with(file, &["-X", PLUGIN], filter, names)
}

fn plugin_count(file: &Path, filter: &str) -> usize {
    plugin_fields(file, filter, &["frame.number"]).len()
}

fn fields_with(file: &Path, extra: &[&str], filter: &str, fields: &[&str]) -> Vec<String> {
    let file = file.to_str().expect("utf-8 path");
    let mut args = vec!["-r", file];
    args.extend_from_slice(extra);
    args.extend(["-Y", filter, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]);
    for f in fields {
        args.extend(["-e", f]);
    }
    tshark(&args).lines().map(str::to_owned).collect()
}

fn count(file: &Path, filter: &str) -> usize {
    fields(file, filter, &["frame.number"]).len()
}

/// No malformed frame, no expert warning or error (with and without the plugin), nothing left
/// as raw data with the plugin, frames in time order.
fn assert_clean(file: &Path) {
    assert_eq!(
        count(file, "_ws.malformed || _ws.expert.severity >= warning"),
        0,
        "malformed or expert items"
    );
    let bad = plugin_fields(
        file,
        "_ws.malformed || _ws.expert.severity >= warning",
        &["frame.number", "_ws.expert.message"],
    );
    assert!(bad.is_empty(), "with the plugin: {bad:?}");
    // With the plugin nothing is left undecoded: no frame ends in raw data.
    assert_eq!(plugin_count(file, "data"), 0, "frames left as raw data with the plugin");
    let times: Vec<f64> =
        fields(file, "frame", &["frame.time_epoch"]).iter().map(|t| t.parse().unwrap()).collect();
    assert!(times.len() > 10, "only {} frames", times.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "frames out of time order");
}

/// Standard base64 (RFC 4648 §4), for the RAND inside a B-TID (TS 33.220 §4.5.2: base64(RAND)@domain).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The NAF FQDN of the keys in `keysim demo`: the BM-SC's, or with SIP signalling the SCF's.
const BMSC_FQDN: &str = "bmsc.mnc001.mcc001.pub.3gppnetwork.org";
const SCF_FQDN: &str = "scf-bmsc.mnc001.mcc001.pub.3gppnetwork.org";

fn impi() -> String {
    keysim_json(&["profile", "show", "--json"])["impi"].as_str().expect("impi").to_owned()
}

fn demo_checks(args: &[&str], sip: bool) {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("demo.pcapng");
    let mut all = vec!["demo", "--json", "--quiet", "--duration", "1", "--capture", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let report = keysim_json(&all);
    assert_eq!(report["ok"], true, "{report}");
    assert_clean(&file);

    let paths: Vec<&Value> = report["paths"].as_object().expect("paths").values().collect();
    // Ub: the IMPI in the Digest AKA Authorization, and each path's B-TID in the BSF's answer.
    let aka = fields(&file, "http.authorization contains \"AKAv1-MD5\"", &["http.authorization"]);
    assert!(aka.len() >= paths.len(), "{aka:?}");
    assert!(aka.iter().all(|a| a.contains(&format!("username=\"{}\"", impi()))), "{aka:?}");
    let btids = fields(&file, "http.content_type contains \"vnd.3gpp.bsf+xml\"", &["xml.cdata"]);
    for p in &paths {
        let btid = p["btid"].as_str().expect("btid");
        assert!(btids.iter().any(|b| b.split(',').any(|c| c == btid)), "B-TID {btid} not in {btids:?}");
        // The BM-SC's HTTP (from the UE, or from the SCF with SIP signalling): registration, MSK
        // request and deregistration; the UE's own requests authenticate with the B-TID.
        let prefix = if sip { "sip-based-" } else { "" };
        for kind in ["register", "msk-request", "deregister"] {
            let uri = format!("/keymanagement?requesttype={prefix}{kind}");
            assert!(count(&file, &format!("http.request.uri == \"{uri}\"")) >= 1, "no {uri}");
        }
        if !sip {
            let n = count(
                &file,
                &format!(
                    "http.request.uri contains \"/keymanagement\" && http.authorization contains \"username=\\\"{btid}\\\"\""
                ),
            );
            assert!(n >= 3, "{n} BM-SC requests authenticated as {btid}");
        }
    }
    // MIKEY on its registered port, decoded as MIKEY: at least the messages the UEs accepted.
    let accepted: u64 =
        paths.iter().map(|p| p["msk_count"].as_u64().unwrap() + p["mtk_count"].as_u64().unwrap()).sum();
    let mikey = count(&file, "mikey && udp.port == 2269");
    assert!(mikey as u64 >= accepted, "{mikey} MIKEY frames on 2269, {accepted} MIKEY messages accepted");
    // The APDUs as GSMTAP SIM: at least every exchange the paths count, AUTHENTICATE among them.
    let apdus: u64 = paths.iter().map(|p| p["apdus"].as_u64().unwrap()).sum();
    let sim = count(&file, "gsm_sim && udp.port == 4729");
    assert!(sim as u64 >= apdus, "{sim} GSM SIM frames, {apdus} APDUs");
    assert!(count(&file, "gsm_sim.apdu.ins == 0x88") > 0, "no AUTHENTICATE");
    // Media: every SRTP packet the BM-SC sent.
    let sent: u64 = paths.iter().map(|p| p["packets_sent"].as_u64().unwrap()).sum();
    let media = count(&file, "udp && udp.port != 4729 && !mikey && !sip && !icmp");
    assert_eq!(media as u64, sent, "media frames");
    plugin_demo_checks(&file, &paths, if sip { SCF_FQDN } else { BMSC_FQDN });
    if sip {
        // Each INVITE crosses more than one hop: count the distinct transactions (Call-ID, CSeq).
        let mut invites = fields(&file, "sip.Method == \"INVITE\"", &["sip.Call-ID", "sip.CSeq"]);
        invites.sort();
        invites.dedup();
        let invites = invites.len() as u64;
        let expected: u64 = paths
            .iter()
            .map(|p| p["scf_invites"].as_u64().unwrap() + p["scf_reinvites"].as_u64().unwrap())
            .sum();
        assert_eq!(invites, expected, "INVITEs and re-INVITEs");
    }
}

/// What the plugin decodes in a demo capture, against what the run used.
fn plugin_demo_checks(file: &Path, paths: &[&Value], naf_fqdn: &str) {
    // Every GBA / MBMS AUTHENTICATE that Wireshark's own GSM SIM dissector sees (as a 2G RUN GSM
    // ALGORITHM or raw) is the plugin's, and none is left to gsm_sim.
    // Counted on the raw GSMTAP bytes (16-byte header, then CLA INS P1 P2): gsm_sim itself loses some.
    let auth = "udp.port == 4729 && ((udp.payload[17:1] == 88 && udp.payload[19:1] == 84) || (udp.payload[17:1] == 89 && udp.payload[19:1] == 85))";
    let plain = count(file, auth);
    assert!(plain > 0, "no GBA or MBMS AUTHENTICATE in the capture");
    assert_eq!(plugin_count(file, "keysim_uicc"), plain, "AUTHENTICATEs decoded by the plugin");
    assert_eq!(
        plugin_count(file, "gsm_sim"),
        count(file, "gsm_sim") - plain,
        "AUTHENTICATEs left to gsm_sim"
    );
    for p in paths.iter().filter(|p| p["gba"] == "GBA_U") {
        // GBA bootstrap: the RAND of the B-TID the BSF issued.
        let btid = p["btid"].as_str().expect("btid");
        let rand = hex::encode(base64_decode(btid.split('@').next().unwrap_or_default()));
        let rands = plugin_fields(
            file,
            "keysim_uicc.tag == 0xdd",
            &["keysim_uicc.rand", "keysim_uicc.autn", "keysim_uicc.res"],
        );
        assert!(
            rands.iter().any(|l| l.starts_with(&format!("{rand}\t")) && {
                let f: Vec<&str> = l.split('\t').collect();
                f.len() == 3 && f[1].len() == 32 && (8..=32).contains(&f[2].len())
            }),
            "RAND {rand} not in {rands:?}"
        );
        // NAF derivation: the BM-SC's FQDN, MBMS Ua protocol identifier, the IMPI, a 256-bit Ks_ext_NAF.
        let naf = plugin_fields(
            file,
            "keysim_uicc.tag == 0xde",
            &[
                "keysim_uicc.naf_fqdn",
                "keysim_uicc.ua_protocol",
                "keysim_uicc.impi",
                "keysim_uicc.ks_ext_naf",
            ],
        );
        assert!(
            naf.iter().any(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                f.len() == 4 && f[0] == naf_fqdn && f[1] == "0100000001" && f[2] == impi() && f[3].len() == 64
            }),
            "{naf:?}"
        );
        // MBMS: at least the MSKs and MTKs the UICC-based path accepted, each MTK with a salt.
        let msk = plugin_count(file, "keysim_uicc.mbms_mode == 1") as u64;
        assert!(msk >= p["msk_count"].as_u64().unwrap(), "{msk} MSK updates");
        let mtks = plugin_fields(
            file,
            "keysim_uicc.mbms_mode == 2 && keysim_uicc.sw == 0x9000",
            &["keysim_uicc.mtk", "keysim_uicc.salt"],
        );
        assert!(mtks.len() as u64 >= p["mtk_count"].as_u64().unwrap(), "{mtks:?}");
        assert!(mtks.iter().all(|l| l.len() == 32 + 1 + 28), "MTK (16 bytes) and salt (14 bytes): {mtks:?}");
    }
    // MIKEY (the BM-SC's pre-shared-key messages): the empty CS ID map, Key IDs of Key Group 1 (the first service's), COUNTER timestamps.
    let mikey = plugin_fields(
        file,
        "mikey && udp && mikey.type == 0",
        &["keysim_mikey.cs_id_map_type", "keysim_mikey.msk_id", "keysim_mikey.ts_counter"],
    );
    assert!(!mikey.is_empty());
    for l in &mikey {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert!(f[0].split(',').all(|m| m == "1"), "CS ID map type: {l}");
        assert!(!f[1].is_empty() && f[1].split(',').all(|id| id.starts_with("0001")), "MSK ID: {l}");
        assert!(f[2].parse::<u32>().is_ok(), "COUNTER: {l}");
    }
    // The MBMS XML bodies as XML.
    let mbms_bodies = count(file, "http.content_type contains \"application/mbms-\"");
    assert!(mbms_bodies > 0);
    assert_eq!(
        plugin_count(file, "http.content_type contains \"application/mbms-\" && xml"),
        mbms_bodies,
        "MBMS bodies as XML"
    );
    // The bearer's SRTP as RTP, with the services' SSRC.
    let ssrcs = plugin_fields(file, "rtp", &["rtp.ssrc"]);
    let sent: u64 = paths.iter().map(|p| p["packets_sent"].as_u64().unwrap()).sum();
    assert_eq!(ssrcs.len() as u64, sent);
    assert!(ssrcs.iter().all(|s| s == "0x4d424d00"), "SSRCs {:?}", ssrcs.first());
}

#[test]
fn demo_both_paths_capture_decodes_without_decode_as() {
    demo_checks(&["--path", "both"], false);
}

#[test]
fn demo_multicast_capture_decodes_without_decode_as() {
    demo_checks(&["--multicast"], false);
}

#[test]
fn demo_sip_signalling_capture_decodes_without_decode_as() {
    demo_checks(&["--signalling", "sip"], true);
}

#[test]
fn call_kms_capture_decodes_without_decode_as() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("call.pcapng");
    let report = keysim_json(&["call", "--security", "kms", "--json", "--capture", file.to_str().unwrap()]);
    assert_eq!(report["ok"], true, "{report}");
    assert_clean(&file);
    let caller = report["caller"]["impu"].as_str().expect("caller impu");
    let callee = report["callee"]["impu"].as_str().expect("callee impu");
    let invites = fields(&file, "sip.Method == \"INVITE\"", &["sip.from.addr", "sip.r-uri"]);
    assert!(!invites.is_empty(), "no INVITE");
    let user = |impu: &str| impu.trim_start_matches("sip:").split('@').next().unwrap_or_default().to_owned();
    assert!(
        invites.iter().all(|l| l.starts_with(caller) && l.contains(&user(callee))),
        "INVITEs {invites:?}, caller {caller}, callee {callee}"
    );
    // The MIKEY-TICKET offer rides in the SDP; the KMS's HTTP carries MIKEY too.
    assert!(count(&file, "sdp.media_attr contains \"key-mgmt:mikey \"") > 0, "no a=key-mgmt:mikey");
    assert!(count(&file, "http && mikey") > 0, "no MIKEY over HTTP to the KMS");
    // RTP found through the SDP of the call: every packet both sides sent.
    let sent = report["caller"]["packets_sent"].as_u64().unwrap()
        + report["callee"]["packets_sent"].as_u64().unwrap();
    assert_eq!(count(&file, "rtp") as u64, sent, "RTP frames");
    // Both cards' APDUs: GBA bootstrap and NAF derivation each, from two GSMTAP senders.
    assert!(count(&file, "gsm_sim.apdu.ins == 0x88") >= 4, "AUTHENTICATE of both cards");
    let mut senders = fields(&file, "udp.dstport == 4729", &["udp.srcport"]);
    senders.sort();
    senders.dedup();
    assert_eq!(senders.len(), 2, "GSMTAP senders {senders:?}");
    assert!(
        plugin_count(&file, "keysim_uicc.tag == 0xdd") >= 2
            && plugin_count(&file, "keysim_uicc.tag == 0xde") >= 2
    );

    // With the plugin: every media-level a=key-mgmt:mikey decoded, the offer a TRANSFER_INIT
    // (RFC 6043) from the caller to the callee with a 3GPP ticket, the answer a TRANSFER_RESP.
    let offers = count(&file, "sdp.media_attr contains \"key-mgmt:mikey \"");
    assert_eq!(plugin_count(&file, "keysim_keymgmt"), offers, "a=key-mgmt decoded");
    let init = plugin_fields(
        &file,
        "keysim_keymgmt && keysim_mikey.data_type == 14",
        &["keysim_mikey.id", "keysim_mikey.ticket_type"],
    );
    let (caller_id, callee_id) = (caller.trim_start_matches("sip:"), callee.trim_start_matches("sip:"));
    assert!(
        !init.is_empty()
            && init.iter().all(|l| l.starts_with(&format!("{caller_id},{callee_id},")) && l.ends_with("\t2")),
        "{init:?} {caller_id} {callee_id}"
    );
    assert!(plugin_count(&file, "keysim_keymgmt && keysim_mikey.data_type == 15") > 0, "no TRANSFER_RESP");
    // The KMS's HTTP: ticket request (REQUEST_INIT_PSK), its response, resolve and its response.
    for t in [11, 13, 16, 18] {
        assert!(
            plugin_count(&file, &format!("http && keysim_mikey.data_type == {t}")) > 0,
            "no MIKEY data type {t} over HTTP"
        );
    }
}

#[test]
fn capture_to_an_unwritable_file_fails_before_the_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["demo", "--quiet", "--capture", "/nonexistent-dir/x.pcapng"])
        .output()
        .expect("run keysim");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--capture"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refused_naf_derivation_decodes_without_malformed_frames() {
    if !have_tshark() {
        return;
    }
    // A NAF derivation the card refuses (no bootstrapping before it): the response is the SW alone.
    let naf_id = [BMSC_FQDN.as_bytes(), &[0x01, 0x00, 0x00, 0x00, 0x01]].concat();
    let impi = impi();
    let data = [&[0xDE, naf_id.len() as u8][..], &naf_id, &[impi.len() as u8], impi.as_bytes()].concat();
    let apdu = format!("00880084{:02x}{}", data.len(), hex::encode(&data));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("refused.pcap");
    let out = keysim_json(&["apdu", "--emulator", "--json", "--pcap", file.to_str().unwrap(), &apdu]);
    let sw = out[0]["sw"].as_str().expect("sw").to_owned();
    assert_ne!(sw, "9000", "the card should refuse: {out}");
    assert_eq!(plugin_count(&file, "_ws.malformed || _ws.expert.severity >= warning"), 0);
    let f = plugin_fields(
        &file,
        "keysim_uicc",
        &["keysim_uicc.naf_fqdn", "keysim_uicc.impi", "keysim_uicc.sw", "keysim_uicc.ks_ext_naf"],
    );
    assert_eq!(f, [format!("{BMSC_FQDN}\t{impi}\t0x{}\t", sw.to_lowercase())], "{f:?}");
}

#[test]
fn wireshark_install_puts_the_plugin_where_tshark_loads_it() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["wireshark", "install"])
        .env("HOME", &home)
        .output()
        .expect("run keysim");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let installed = home.join(".local/lib/wireshark/plugins/keysim.lua");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), installed.to_str().unwrap());
    // tshark, with that home and no -X, decodes an AUTHENTICATE with the plugin.
    let trace = dir.path().join("auth.pcap");
    keysim_json(&["apdu", "--emulator", "--json", "--pcap", trace.to_str().unwrap(), "0088008402dd00"]);
    let run = |home: &Path| {
        let out = Command::new("tshark")
            .args([
                "-r",
                trace.to_str().unwrap(),
                "-Y",
                "keysim_uicc",
                "-T",
                "fields",
                "-e",
                "keysim_uicc.tag",
            ])
            .env("HOME", home)
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run tshark");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&home), "0xdd");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty home");
    assert_eq!(run(&empty), "", "without the plugin installed, no keysim_uicc");
}

/// A loopback port for a server process, TCP or UDP ([`test_kit::ports::loopback_port`]).
fn free_port(_udp: bool) -> u16 {
    test_kit::ports::loopback_port()
}

/// `keysim serve --capture --report` and `keysim ue --capture --report`, two processes on the
/// host's loopback (no namespace): each file holds the run's HTTP (Ub, registration; Zn on the
/// server's side), its MIKEY (MSK push, MTK messages) and its SRTP, as tshark decodes them, and
/// none of the other traffic the loopback carried meanwhile.
#[test]
fn serve_and_ue_capture_on_the_host_loopback() {
    use std::io::{BufRead, BufReader};
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (admin, bsf, bmsc) = (free_port(false), free_port(false), free_port(false));
    let (bmsc_mikey, ue_mikey, bearer_mikey, media) =
        (free_port(true), free_port(true), free_port(true), free_port(true));
    let group = "239.255.42.7";
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\n[bsf]\nlisten = \"127.0.0.1:{bsf}\"\n[bmsc]\n\
             listen = \"127.0.0.1:{bmsc}\"\nmikey_listen = \"127.0.0.1:{bmsc_mikey}\"\nue_mikey_port = {ue_mikey}\n\
             bearer_mikey = [\"{group}:{bearer_mikey}\"]\nbearer_media = [\"{group}:{media}\"]\n\
             mtk_period_ms = 200\nmedia_period_ms = 50\npackets_per_media_period = 2\n"
        ),
    )
    .unwrap();
    let (serve_file, serve_html) = (dir.path().join("serve.pcapng"), dir.path().join("serve.html"));
    let (ue_file, ue_html) = (dir.path().join("ue.pcapng"), dir.path().join("ue.html"));
    let mut serve = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["serve", "--config", config.to_str().unwrap(), "--state-dir"])
        .arg(dir.path().join("state"))
        .args(["--capture", serve_file.to_str().unwrap(), "--report", serve_html.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        if line.starts_with("serving until") {
            break;
        }
        seen.push(line);
    }
    // Its last line comes at the stop: keep reading.
    let rest = std::thread::spawn(move || lines.collect::<Vec<_>>());
    if serve.try_wait().unwrap().is_some() || seen.is_empty() {
        let out = serve.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("CAP_NET_RAW") || oracles_required(), "{err}");
        eprintln!("skipping: {err}");
        return;
    }
    // Traffic of no part of the run, on the same loopback while both capture.
    let noise_port = free_port(true);
    let noise = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let noise_from = noise.local_addr().unwrap().port();
    noise.send_to(b"not the run's", ("127.0.0.1", noise_port)).unwrap();
    let ue = keysim_json(&[
        "ue",
        "--emulator",
        "--bsf",
        &format!("http://127.0.0.1:{bsf}/"),
        "--bmsc",
        &format!("http://127.0.0.1:{bmsc}"),
        "--mikey-bind",
        &format!("127.0.0.1:{ue_mikey}"),
        "--bearer-mikey",
        &format!("{group}:{bearer_mikey}"),
        "--bearer-media",
        &format!("{group}:{media}"),
        "--duration",
        "1.5",
        "--json",
        "--quiet",
        "--capture",
        ue_file.to_str().unwrap(),
        "--report",
        ue_html.to_str().unwrap(),
    ]);
    noise.send_to(b"not the run's", ("127.0.0.1", noise_port)).unwrap();
    assert_eq!(ue["ok"], true, "{ue}");
    let st = Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
    assert!(st.success());
    assert!(serve.wait().unwrap().success());
    assert!(rest.join().unwrap().iter().any(|l| l.contains("stopped")));
    let path = &ue["paths"]["uicc"];
    let btid = path["btid"].as_str().unwrap();
    let (msks, mtks) = (path["msk_count"].as_u64().unwrap(), path["mtk_count"].as_u64().unwrap());
    let decrypted = path["packets_decrypted"].as_u64().unwrap();
    assert!(decrypted > 0 && mtks > 0, "{ue}");

    let decode = [
        format!("udp.port=={ue_mikey},mikey"),
        format!("udp.port=={bearer_mikey},mikey"),
        format!("udp.port=={media},rtp"),
    ];
    for file in [&serve_file, &ue_file] {
        let mut extra = Vec::new();
        for d in &decode {
            extra.extend(["-d", d.as_str()]);
        }
        let f = |filter: &str, names: &[&str]| fields_with(file, &extra, filter, names);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // HTTP: Ub (two GETs, the second with the RES), the registration naming the B-TID.
        let ub = f(
            &format!("http.request && tcp.dstport == {bsf} && http.request.uri == \"/\""),
            &["frame.number"],
        );
        assert!(ub.len() >= 2, "{name}: Ub requests {ub:?}");
        let register = f(
            &format!("http.request && tcp.dstport == {bmsc} && http.authorization contains \"{btid}\""),
            &["http.request.uri"],
        );
        assert!(register.iter().any(|u| u.contains("requesttype=register")), "{name}: {register:?}");
        // MIKEY: the MSK push(es) to the UE and every MTK message it installed, as MIKEY.
        let to_ue = f(&format!("mikey && udp.dstport == {ue_mikey}"), &["frame.number"]).len() as u64;
        let bearer = f(&format!("mikey && udp.dstport == {bearer_mikey}"), &["frame.number"]).len() as u64;
        assert!(to_ue >= msks, "{name}: {to_ue} MIKEY to the UE, {msks} MSKs");
        assert!(bearer >= mtks, "{name}: {bearer} MTK messages, {mtks} installed");
        // The UE's verification message back to the BM-SC.
        assert!(!f(&format!("mikey && udp.dstport == {bmsc_mikey}"), &["frame.number"]).is_empty(), "{name}");
        // SRTP on the bearer: RTP version 2 with the service's SSRC, at least every packet the UE
        // decrypted.
        let srtp = f(&format!("rtp.version == 2 && udp.dstport == {media}"), &["rtp.ssrc"]);
        assert!(srtp.len() as u64 >= decrypted, "{name}: {} SRTP frames, {decrypted} decrypted", srtp.len());
        assert!(srtp.iter().all(|s| s == "0x4d424d01"), "{name}: SSRCs {srtp:?}");
        // Nothing malformed, and nothing of the other traffic.
        assert!(f("_ws.malformed", &["frame.number"]).is_empty(), "{name}: malformed frames");
        let other = f(&format!("udp.port == {noise_port} || udp.port == {noise_from}"), &["frame.number"]);
        assert!(other.is_empty(), "{name}: frames of other programs kept: {other:?}");
    }
    // Only the server's side saw Zn (the BM-SC asking the BSF).
    let zn = fields(&serve_file, "http.request.uri == \"/zn\"", &["frame.number"]);
    assert!(!zn.is_empty(), "no Zn request in the server's capture");
    // The reports chart the same run: Ub, the MSK push and MTK messages on the UE's MIKEY ports.
    for html in [&serve_html, &ue_html] {
        let page = std::fs::read_to_string(html).unwrap();
        assert!(page.contains("<svg") && page.contains("Ub: GET /"), "{}", html.display());
        assert!(page.contains("MSK") && page.contains("MTK"), "{}: no MIKEY arrows", html.display());
    }
}
