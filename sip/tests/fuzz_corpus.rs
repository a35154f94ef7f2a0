//! The seeds of the `sip_parse`, `sdp_parse` and `sdes_parse` fuzz targets (fuzz/corpus/<target>/)
//! replayed through the targets' bodies (`sip::fuzz::*`) in an ordinary `cargo test`, so a crash
//! kept as a seed stays fixed; the recorded dialog seeds must also parse.

use std::path::{Path, PathBuf};

fn seeds() -> Vec<PathBuf> {
    seeds_of("sip_parse")
}

fn seeds_of(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

#[test]
fn sip_parse_corpus() {
    let files = seeds();
    assert!(files.len() >= 3, "only {} seeds", files.len());
    for file in &files {
        let data = std::fs::read(file).expect("seed");
        let outcome = std::panic::catch_unwind(|| sip::fuzz::sip_parse(&data));
        assert!(outcome.is_ok(), "{} fails the target", file.display());
    }
}

fn replay(target: &str, body: fn(&[u8])) {
    let files = seeds_of(target);
    assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
    for file in &files {
        let data = std::fs::read(file).expect("seed");
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails the target", file.display());
    }
}

#[test]
fn sdp_parse_corpus() {
    replay("sdp_parse", sip::fuzz::sdp_parse);
}

#[test]
fn sdes_parse_corpus() {
    replay("sdes_parse", sip::fuzz::sdes_parse);
}

#[test]
fn dialog_seeds_parse() {
    for name in ["invite-register", "ok-register", "ack", "bye", "reinvite-msk-request", "compact-folded"] {
        let file = seeds().into_iter().find(|f| f.file_name().is_some_and(|n| n == name)).expect(name);
        let m = sip::Message::parse(&std::fs::read(&file).expect("seed"));
        assert!(m.is_ok(), "{name}: {m:?}");
    }
}
