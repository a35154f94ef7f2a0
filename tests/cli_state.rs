//! The card-state file as users and attackers meet it through `keysim apdu --card-state`: processes
//! running in parallel on one file, permissions, kill -9 at any moment, files that are not card
//! states, symbolic links; and the small command-line items that went with it (hex with colons,
//! error texts said once, `demo --services` beyond the card, `vpcd` against misbehaving peers).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const USIM: &str = "00A4040C07A0000000871002";
const WRONG_PIN: &str = "002000010831323335FFFFFFFF";
const RIGHT_PIN: &str = "002000010831323334FFFFFFFF";
const PIN_QUERY: &str = "0020000100";
/// EF.PL under the MF: read always, update with PIN1 (10 bytes).
const SELECT_PL: [&str; 2] = ["00A4000C023F00", "00A4000C022F05"];

fn keysim_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keysim"));
    c.args(args).stdin(Stdio::null());
    c
}

fn keysim(args: &[&str]) -> Output {
    keysim_cmd(args).output().expect("run keysim")
}

fn apdus(state: &Path, apdus: &[&str]) -> Output {
    let mut args = vec!["apdu", "--emulator", "--json", "--card-state", state.to_str().unwrap()];
    args.extend_from_slice(apdus);
    keysim(&args)
}

/// The status words of a successful `apdu --json` run.
fn sws(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "keysim failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v.as_array().unwrap().iter().map(|x| x["sw"].as_str().unwrap().to_owned()).collect()
}

fn data(out: &Output, i: usize) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v[i]["response"].as_str().unwrap().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn spawn_apdus(state: &Path, list: &[&str]) -> Child {
    let mut args = vec!["apdu", "--emulator", "--json", "--card-state", state.to_str().unwrap()];
    args.extend_from_slice(list);
    keysim_cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn keysim")
}

#[test]
fn parallel_wrong_pins_each_cost_a_try() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..8 {
        let state = dir.path().join(format!("r{round}.bin"));
        // Create the file first, so both processes load the same card.
        assert_eq!(sws(&apdus(&state, &[USIM, PIN_QUERY])), ["9000", "63C3"]);
        let children: Vec<Child> = (0..2).map(|_| spawn_apdus(&state, &[USIM, WRONG_PIN])).collect();
        let mut answers: Vec<String> =
            children.into_iter().map(|c| sws(&c.wait_with_output().unwrap())[1].clone()).collect();
        answers.sort();
        assert_eq!(answers, ["63C1", "63C2"], "round {round}: the two processes took turns");
        assert_eq!(sws(&apdus(&state, &[USIM, PIN_QUERY]))[1], "63C1", "round {round}: no try refunded");
    }
    // Ten at once against three tries: the PIN ends blocked, whatever the interleaving.
    let state = dir.path().join("ten.bin");
    assert_eq!(sws(&apdus(&state, &[USIM, PIN_QUERY]))[1], "63C3");
    let children: Vec<Child> = (0..10).map(|_| spawn_apdus(&state, &[USIM, WRONG_PIN])).collect();
    let mut answers: Vec<String> =
        children.into_iter().map(|c| sws(&c.wait_with_output().unwrap())[1].clone()).collect();
    answers.sort();
    let blocked = answers.iter().filter(|sw| *sw == "6983").count();
    assert_eq!(answers[..3], ["63C0", "63C1", "63C2"], "{answers:?}");
    assert_eq!(blocked, 7, "{answers:?}");
    assert_eq!(sws(&apdus(&state, &[USIM, RIGHT_PIN]))[1], "6983", "the PIN stays blocked");
}

#[test]
fn parallel_updates_at_different_offsets_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("u.bin");
    let mut setup = vec![USIM, RIGHT_PIN];
    setup.extend(SELECT_PL);
    setup.push("00D600000AFFFFFFFFFFFFFFFFFFFF");
    assert!(sws(&apdus(&state, &setup)).iter().all(|sw| sw == "9000"));
    let commands: Vec<String> = (0..10).map(|i| format!("00D6000{i:X}01{:02X}", 0x10 + i)).collect();
    let children: Vec<Child> = commands
        .iter()
        .map(|update| {
            let mut list = vec![USIM, RIGHT_PIN];
            list.extend(SELECT_PL);
            list.push(update);
            spawn_apdus(&state, &list)
        })
        .collect();
    for c in children {
        assert!(sws(&c.wait_with_output().unwrap()).iter().all(|sw| sw == "9000"));
    }
    let mut read = SELECT_PL.to_vec();
    read.push("00B000000A");
    let out = apdus(&state, &read);
    assert_eq!(sws(&out)[2], "9000");
    assert_eq!(data(&out, 2), "10111213141516171819", "no acknowledged write was lost");
}

#[test]
fn the_state_file_is_private_from_creation_and_after_every_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.bin");
    sws(&apdus(&state, &[USIM, PIN_QUERY]));
    assert_eq!(mode(&state), 0o600);
    // Widened by hand, then rewritten by a command that changes the card: 0600 again.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    sws(&apdus(&state, &[USIM, WRONG_PIN]));
    assert_eq!(mode(&state), 0o600);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_loadable_file_and_no_temporary_after_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("k.bin");
    sws(&apdus(&state, &[USIM, PIN_QUERY]));
    // A long session that rewrites the file after every command (each UPDATE changes EF.PL).
    let mut session: Vec<String> = vec![USIM.into(), RIGHT_PIN.into()];
    session.extend(SELECT_PL.iter().map(|s| s.to_string()));
    for i in 0..300 {
        session.push(format!("00D6000001{:02X}", i % 256));
    }
    let list: Vec<&str> = session.iter().map(String::as_str).collect();
    for round in 0..40u64 {
        let mut child = spawn_apdus(&state, &list);
        std::thread::sleep(Duration::from_millis(3 + (round * 7) % 40));
        child.kill().unwrap();
        let _ = child.wait();
        // The next open loads the file (old or new content), and clears what the kill left.
        let out = apdus(&state, &[SELECT_PL[0], SELECT_PL[1], "00B0000001"]);
        assert_eq!(sws(&out)[2], "9000", "round {round}");
        let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}

#[test]
fn files_that_are_no_card_state_are_refused_with_exit_2_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let good_path = dir.path().join("good.bin");
    sws(&apdus(&good_path, &[USIM, PIN_QUERY]));
    let good = std::fs::read(&good_path).unwrap();
    let mut random = vec![0u8; 16_384];
    let mut x: u32 = 0x1234_5678;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut other_version = good.clone();
    other_version[9] = 99;
    let mut flipped = good.clone();
    flipped[5000] ^= 0x40;
    let mut longer = good.clone();
    longer.extend_from_slice(b"\n");
    let cases: [(&str, Vec<u8>, &str); 8] = [
        ("random", random, "not a keysim card-state file"),
        ("zeros", vec![0; 16_384], "all zeros or all FF"),
        ("ff", vec![0xFF; 16_384], "all zeros or all FF"),
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("empty", Vec::new(), "truncated"),
        ("other-version", other_version, "format version 99"),
        ("flipped", flipped, "checksum"),
        ("longer", longer, "after its checksum"),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let out = apdus(&path, &[USIM, WRONG_PIN]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(says) && err.contains("refused"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing was sent");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before, "{name}");
    }
}

#[test]
fn a_symlinked_state_file_updates_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("card.bin");
    let link = dir.path().join("link.bin");
    sws(&apdus(&target, &[USIM, PIN_QUERY]));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(sws(&apdus(&link, &[USIM, WRONG_PIN]))[1], "63C2");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "still a link");
    assert_eq!(sws(&apdus(&target, &[USIM, PIN_QUERY]))[1], "63C2", "the target has the new state");
    let dangling = dir.path().join("dangling.bin");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let out = apdus(&dangling, &[USIM]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn errors_are_said_once_and_hex_takes_colons() {
    let dir = tempfile::tempdir().unwrap();
    // A directory as the state file: one clear sentence.
    let out = apdus(dir.path(), &[USIM]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    // Colons, as --help allows.
    let out = keysim(&["apdu", "--emulator", "--json", "00:A4:00:04:02:3F:00"]);
    assert_eq!(sws(&out), ["9000"]);
    // A hex operand with a non-hex digit names the digit, not the length.
    let out = keysim(&["mikey", "decode", "zz"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("'z' at digit 0 is not a hex digit") && !err.contains("even"), "{err}");
}

#[test]
fn demo_refuses_more_services_than_the_cards_ef_msk_holds_before_anything_runs() {
    let start = Instant::now();
    let out = keysim(&["demo", "--services", "5", "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("EF.MSK has 4 records") && err.contains("at most 4"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(start.elapsed() < Duration::from_secs(20));
    // The limit is in --help too.
    let help = String::from_utf8_lossy(&keysim(&["demo", "--help"]).stdout).into_owned();
    assert!(help.contains("EF.MSK"), "{help}");
}

/// A vpcd stand-in that sends `frames` on every connection it accepts, reads nothing, and closes.
fn rude_vpcd(listener: TcpListener, frames: Vec<u8>, until: Instant) -> usize {
    listener.set_nonblocking(true).unwrap();
    let mut connections = 0;
    while Instant::now() < until {
        match listener.accept() {
            Ok((mut s, _)) => {
                connections += 1;
                s.set_nonblocking(false).unwrap();
                let _ = s.write_all(&frames);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    connections
}

#[test]
fn vpcd_logs_a_peer_that_never_reads_once_per_connection_not_per_apdu() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let apdu = [0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00];
    let mut frames = Vec::new();
    for _ in 0..200 {
        frames.extend_from_slice(&(apdu.len() as u16).to_be_bytes());
        frames.extend_from_slice(&apdu);
    }
    let until = Instant::now() + Duration::from_secs(4);
    let peer = std::thread::spawn(move || rude_vpcd(listener, frames, until));
    let out = keysim(&["vpcd", "--port", &port, "--duration", "4"]);
    let connections = peer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let lines = err.lines().count();
    assert!(connections >= 2, "{connections} connections");
    assert!(lines <= 4 * connections + 4, "{lines} lines for {connections} connections of 200 APDUs:\n{err}");
    assert!(lines < 100, "{lines} lines:\n{err}");
}

#[test]
fn vpcd_drops_a_peer_that_stalls_inside_a_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut child =
        keysim_cmd(&["vpcd", "--port", &port, "--duration", "9"]).stderr(Stdio::piped()).spawn().unwrap();
    let (mut first, _) = listener.accept().unwrap();
    // A length field announcing 7 bytes, and 3 of them; then silence.
    first.write_all(&[0x00, 0x07, 0x00, 0xA4, 0x00]).unwrap();
    let stalled_at = Instant::now();
    listener.set_nonblocking(true).unwrap();
    let mut second: Option<TcpStream> = None;
    while stalled_at.elapsed() < Duration::from_secs(8) {
        if let Ok((s, _)) = listener.accept() {
            second = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = stalled_at.elapsed();
    // The dropped connection is closed on keysim's side.
    first.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 16];
    let closed = matches!(first.read(&mut buf), Ok(0) | Err(_));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(second.is_some(), "keysim never gave up the stalled connection:\n{err}");
    assert!(waited >= Duration::from_secs(4), "dropped after {waited:?}, before the frame timeout");
    assert!(closed);
    assert!(err.contains("stalled inside a frame"), "{err}");
}
