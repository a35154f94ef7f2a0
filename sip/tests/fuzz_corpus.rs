//! The seeds of the `sip_parse` fuzz target (fuzz/corpus/sip_parse/) replayed through the target's
//! body (`sip::fuzz::sip_parse`) in an ordinary `cargo test`, so a crash kept as a seed stays
//! fixed; the recorded dialog seeds must also parse.

use std::path::{Path, PathBuf};

fn seeds() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sip_parse");
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

#[test]
fn dialog_seeds_parse() {
    for name in ["invite-register", "ok-register", "ack", "bye", "reinvite-msk-request", "compact-folded"] {
        let file = seeds().into_iter().find(|f| f.file_name().is_some_and(|n| n == name)).expect(name);
        let m = sip::Message::parse(&std::fs::read(&file).expect("seed"));
        assert!(m.is_ok(), "{name}: {m:?}");
    }
}
