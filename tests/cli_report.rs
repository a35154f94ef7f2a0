//! `--report FILE.html` on `keysim demo` and `keysim call`, opened in headless Chromium: the page's
//! SVG chart has one arrow per message of the run's capture (counted by tshark), every arrow is
//! drawn, a click shows its content, and a screenshot is taken.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!oracles_required(), "{tool} is required (KEYSIM_REQUIRE_ORACLES=1) but not available");
        eprintln!("skipping: {tool} not available");
    }
    ok
}

const PLUGIN: &str = concat!("lua_script:", env!("CARGO_MANIFEST_DIR"), "/wireshark/keysim.lua");

/// Frames matching `filter` (with the plugin when asked), one line of `fields` each.
fn tshark(file: &Path, plugin: bool, filter: &str, fields: &[&str]) -> Vec<String> {
    let home = std::env::temp_dir().join(format!("keysim-tshark-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("tshark home");
    let mut args = vec!["-r".to_owned(), file.to_str().expect("utf-8").to_owned()];
    if plugin {
        args.extend(["-X".to_owned(), PLUGIN.to_owned()]);
    }
    args.extend(["-Y".to_owned(), filter.to_owned(), "-T".to_owned(), "fields".to_owned()]);
    for f in fields {
        args.extend(["-e".to_owned(), (*f).to_owned()]);
    }
    let out = Command::new("tshark")
        .args(&args)
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// The messages of a capture as tshark counts them: HTTP requests and responses, SIP messages,
/// MIKEY over UDP, APDU exchanges (GSMTAP frames), and one per media stream (SSRC, destination).
fn messages_in_capture(file: &Path) -> usize {
    let count = |filter: &str| tshark(file, false, filter, &["frame.number"]).len();
    let mut streams = tshark(file, true, "rtp", &["rtp.ssrc", "udp.dstport"]);
    streams.sort();
    streams.dedup();
    count("http.request || http.response")
        + count("sip")
        + count("mikey && udp")
        + count("udp.port == 4729")
        + streams.len()
}

/// A page that opens the report in a frame and writes what the browser made of it.
const HARNESS: &str = r#"<!DOCTYPE html><html><body><iframe id="f" src="report.html" width="1400" height="2000"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var doc = document.getElementById('f').contentDocument;
  var svg = doc.querySelector('svg#msc');
  var arrows = doc.querySelectorAll('svg#msc g.arrow');
  var drawn = 0;
  arrows.forEach(function (g) { var b = g.getBBox(); if (b.width > 0 && b.height > 0) drawn++; });
  var shown = false;
  if (arrows.length > 0) {
    arrows[arrows.length - 1].dispatchEvent(new MouseEvent('click', { bubbles: true }));
    var d = doc.getElementById('d' + (arrows.length - 1));
    shown = !!d && !d.hidden && d.textContent.length > 0;
  }
  var out = document.createElement('pre');
  out.id = 'result';
  out.textContent = 'RESULT svg=' + (!!svg && svg instanceof doc.defaultView.SVGSVGElement) + ' arrows=' + arrows.length
    + ' drawn=' + drawn + ' clicked=' + shown + ' red=' + doc.querySelectorAll('g.arrow[data-refused="true"]').length + ' END';
  document.body.appendChild(out);
});
</script></body></html>"#;

struct BrowserView {
    svg: bool,
    arrows: usize,
    drawn: usize,
    clicked: bool,
}

fn chromium(args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open_in_browser(dir: &Path) -> BrowserView {
    std::fs::write(dir.join("harness.html"), HARNESS).expect("harness");
    let url = format!("file://{}", dir.join("harness.html").display());
    let dom = chromium(&["--dump-dom", &url]);
    let result = dom.split("RESULT ").nth(2).or_else(|| dom.split("RESULT ").nth(1)).unwrap_or_default();
    let result = result.split(" END").next().unwrap_or_default();
    let get = |k: &str| {
        result.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))).unwrap_or_default()
    };
    BrowserView {
        svg: get("svg") == "true",
        arrows: get("arrows").parse().unwrap_or(0),
        drawn: get("drawn").parse().unwrap_or(0),
        clicked: get("clicked") == "true",
    }
}

fn check(name: &str, run: &[&str]) {
    if !have("tshark") || !have("chromium") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (capture, report) = (dir.path().join("run.pcapng"), dir.path().join("report.html"));
    let mut args = run.to_vec();
    args.extend(["--json", "--capture", capture.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_keysim")).args(&args).output().expect("run keysim");
    assert!(out.status.success(), "keysim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);

    let page = std::fs::read_to_string(&report).expect("report");
    // The run's own summary is in the page: its verdict and, for the demo, each path's B-TID.
    assert!(page.contains("<tr><td>ok</td><td>true</td></tr>"), "no run summary");
    for p in v["paths"].as_object().into_iter().flat_map(|m| m.values()) {
        let btid = p["btid"].as_str().expect("btid");
        assert!(page.contains(&format!("<td>{btid}</td>")), "B-TID {btid} not in the summary");
    }
    // Self-contained: nothing fetched from anywhere.
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("url(http"),
        "external resources"
    );
    let view = open_in_browser(dir.path());
    assert!(view.svg, "the browser found no SVG chart");
    let expected = messages_in_capture(&capture);
    assert_eq!(view.arrows, expected, "arrows in the chart, messages in the capture");
    assert_eq!(view.drawn, view.arrows, "arrows drawn with a size");
    assert!(view.clicked, "a click shows the arrow's content");

    // A screenshot, kept beside the build for a look.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}", report.display());
    chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1400,2400", &url]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "screenshot of {} bytes", png.len());
}

#[test]
fn demo_both_report_has_one_arrow_per_captured_message() {
    check("demo-both", &["demo", "--path", "both", "--duration", "1", "--quiet"]);
}

#[test]
fn demo_sip_report_has_one_arrow_per_captured_message() {
    check("demo-sip", &["demo", "--signalling", "sip", "--duration", "1", "--quiet"]);
}

#[test]
fn call_kms_report_has_one_arrow_per_captured_message() {
    check("call-kms", &["call", "--security", "kms"]);
}
