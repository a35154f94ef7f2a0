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
    let out = Command::new("tshark").args(args).output().expect("run tshark");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The values of `fields` in the frames matching `filter`, one line per frame, tab-separated.
fn fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let file = file.to_str().expect("utf-8 path");
    let mut args = vec!["-r", file, "-Y", filter, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"];
    for f in fields {
        args.extend(["-e", f]);
    }
    tshark(&args).lines().map(str::to_owned).collect()
}

fn count(file: &Path, filter: &str) -> usize {
    fields(file, filter, &["frame.number"]).len()
}

/// No malformed frame, no expert warning or error, frames in time order.
fn assert_clean(file: &Path) {
    assert_eq!(
        count(file, "_ws.malformed || _ws.expert.severity >= warning"),
        0,
        "malformed or expert items"
    );
    let times: Vec<f64> =
        fields(file, "frame", &["frame.time_epoch"]).iter().map(|t| t.parse().unwrap()).collect();
    assert!(times.len() > 10, "only {} frames", times.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "frames out of time order");
}

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

#[test]
fn demo_both_paths_capture_decodes_without_decode_as() {
    demo_checks(&["--path", "both"], false);
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
    // The caller card's APDUs: GBA bootstrap and NAF derivation.
    assert!(count(&file, "gsm_sim.apdu.ins == 0x88") >= 2, "AUTHENTICATE of the caller card");
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
