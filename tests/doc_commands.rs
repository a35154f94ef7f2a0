//! Every command shown in README.md and docs/*.md runs, so a broken example cannot ship.
//!
//! The ```` ```sh ```` blocks of those files are read line by line (a trailing `\` joins lines),
//! and each block runs as one bash script in a fresh directory, with the `keysim` under test first
//! on PATH and `tests/` and `vectors/` of the checkout reachable by those names (`python3` is the
//! oracle venv's when there is one). Each command's exit status is
//! recorded; the expected one is 0, or the `exit N` its comment names. A comment
//! `# prints TEXT` gives the command's exact standard output (trimmed). Commands whose documented
//! output is JSON are checked for the keys the docs show ([`json_checks`]).
//!
//! A few commands need a PC/SC daemon, a physical reader or minutes of run time; they are listed
//! in [`EXCLUDED`] with the reason and where they run instead. Every other command runs, and an
//! exclusion that matches no documented command fails the test, so the list cannot go stale.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::serve::{ServeCommand, ServeProcess};

/// Documented commands that need `keysim serve` running on its default ports (started here for
/// their block, and stopped after it).
const NEEDS_SERVE: &[&str] = &["keysim ue --emulator"];

/// A lock file beside the system's temporary files that every run of this test takes while it
/// holds keysim's default ports, so that two checkouts tested at once do not meet on them.
const DEFAULT_PORTS_LOCK: &str = "keysim-default-ports.lock";

/// Documented commands not run here: (line prefix, why, where they run instead).
const EXCLUDED: &[(&str, &str)] = &[
    ("make demo", "builds the release binary first; `keysim demo` itself runs in tests/cli_demo.rs"),
    ("make test", "runs this test among all others (it would recurse)"),
    (
        "cargo run --release -- bench",
        "a release build and seconds to minutes of timing each; `keysim bench --quick` runs in tests/cli_bench.rs",
    ),
    ("cargo bench", "criterion measurements, minutes"),
    ("benches/pcsc-bench.sh", "needs pcscd + vpcd and minutes of timing"),
    (
        "keysim serve --state-dir",
        "serves until a signal: this test starts `keysim serve` on its default ports itself for the blocks that run keysim ue",
    ),
    (
        "keysim ue --reader",
        "needs a card in a PC/SC reader: scripts/pcsc-tests.sh runs keysim ue --reader against keysim serve with the emulated card in vpcd",
    ),
    (
        "keysim ue --emulator --ues",
        "needs a keysim serve with a subscriber range and a multicast bearer; tests/cli_ue.rs runs twenty UEs and three on a multicast bearer",
    ),
    ("keysim readers", "needs pcscd: run by scripts/pcsc-tests.sh against the emulated card in vpcd"),
    ("keysim apdu --reader", "needs pcscd: run by scripts/pcsc-tests.sh against the emulated card in vpcd"),
    (
        "keysim card-test --reader",
        "needs pcscd: scripts/pcsc-tests.sh runs exactly this command against the emulated card in vpcd",
    ),
    (
        "keysim compare --random 1000",
        "scripts/test.sh runs exactly this command in make test (about half a minute in a debug build)",
    ),
    (
        "keysim compare --random 50 --reader",
        "needs pcscd: scripts/pcsc-tests.sh runs it against the emulated card in vpcd",
    ),
    ("pcscd -f &", "starts the system pcscd: scripts/pcsc-tests.sh starts a private one instead"),
    (
        "keysim vpcd",
        "needs pcscd: scripts/pcsc-tests.sh serves the card with `keysim vpcd` to a private pcscd",
    ),
    ("pcsc_scan -c", "needs pcscd: scripts/pcsc-tests.sh lists the readers with `keysim readers`"),
    (
        "scripts/fuzz.sh",
        "cargo-fuzz on a nightly toolchain, minutes per target; the corpora replay in tests/fuzz_corpus.rs",
    ),
    ("FUZZ_ARGS=", "cargo-fuzz on a nightly toolchain, an hour; the corpora replay in tests/fuzz_corpus.rs"),
    (
        "keysim serve --config",
        "serves until a signal: tests/cli_serve.rs starts the printed configuration with --config and --state-dir",
    ),
    (
        "keysim ctl",
        "needs a running keysim serve: tests/cli_serve.rs runs list, counters, rotate-msk, pull and media against one",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose commands are documented: README.md, BENCHMARKS.md and docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// One documented command: where it is, the shell text, its expected exit status and output.
#[derive(Debug, Clone)]
struct DocCommand {
    at: String,
    text: String,
    exit: i32,
    prints: Option<String>,
}

/// The ```sh blocks of one file, each a list of commands (comment-only lines dropped).
fn blocks(path: &Path) -> Vec<Vec<DocCommand>> {
    let text = fs::read_to_string(path).expect("readable Markdown");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
    let mut out = Vec::new();
    let mut current: Option<Vec<DocCommand>> = None;
    let mut pending = String::new();
    let mut pending_line = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            match current.take() {
                Some(block) => out.push(block),
                None if matches!(trimmed.trim_end(), "```sh" | "```bash" | "```shell") => {
                    current = Some(Vec::new())
                }
                None => {}
            }
            continue;
        }
        let Some(block) = current.as_mut() else { continue };
        if pending.is_empty() {
            pending_line = i + 1;
        }
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let command = full.trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        let comment = comment_of(command);
        block.push(DocCommand {
            at: format!("{name}:{pending_line}"),
            text: command.to_owned(),
            exit: comment
                .and_then(|c| c.split("exit ").nth(1))
                .and_then(|rest| rest.split(|ch: char| !ch.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            prints: comment.and_then(|c| c.strip_prefix("prints ")).map(|s| s.trim().to_owned()),
        });
    }
    assert!(current.is_none(), "{name}: unclosed code block");
    out
}

/// The text after the first ` #` outside quotes, trimmed.
fn comment_of(command: &str) -> Option<&str> {
    let mut quote = None;
    let bytes = command.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'#') if i > 0 && bytes[i - 1] == b' ' => return Some(command[i + 1..].trim()),
            _ => {}
        }
    }
    None
}

fn excluded(command: &str) -> Option<&'static str> {
    EXCLUDED.iter().find(|(prefix, _)| command.starts_with(prefix)).map(|(_, why)| *why)
}

/// Extra checks on the output of commands whose documented output is JSON.
fn json_checks(command: &str, stdout: &str) -> Result<(), String> {
    let parse = || serde_json::from_str::<serde_json::Value>(stdout).map_err(|e| format!("not JSON: {e}"));
    if command.starts_with("keysim apdu") && command.contains("--json") {
        let v = parse()?;
        let items = v.as_array().ok_or("not an array")?;
        for item in items {
            for key in ["command", "response", "sw"] {
                item.get(key).ok_or(format!("item without {key:?}: {item}"))?;
            }
            if item["sw"] != "9000" {
                return Err(format!("documented example answers {}", item["sw"]));
            }
        }
    } else if command.starts_with("keysim mikey decode") && command.contains("--json") {
        let v = parse()?;
        v.get("payloads").and_then(|p| p.as_array()).ok_or("no payloads array")?;
        if command.contains("--msk") || command.contains("--muk") {
            let verification = v.get("verification").ok_or("no verification object")?;
            if verification["mac"] != "valid" {
                return Err(format!("MAC {}", verification["mac"]));
            }
        }
    } else if command.starts_with("keysim ue") && command.contains("--json") {
        let v = parse()?;
        if v["ok"] != true {
            return Err(format!("keysim ue: ok is {}", v["ok"]));
        }
        v.get("ue").ok_or("no \"ue\" object")?;
    } else if command.starts_with("keysim tearing") && command.contains("--json") {
        let v = parse()?;
        for key in ["flows", "cut_points_total", "violations_total", "ok"] {
            v.get(key).ok_or(format!("no {key:?}"))?;
        }
    }
    Ok(())
}

/// `keysim apdu` without `--json` must not show a failing status word in a documented example.
fn text_checks(command: &str, stdout: &str) -> Result<(), String> {
    if command.starts_with("keysim apdu") && !command.contains("--json") {
        for line in stdout.lines().filter(|l| l.starts_with("< ") && l.contains(": ")) {
            if !line.starts_with("< 9000") {
                return Err(format!("documented example answers {line:?}"));
            }
        }
    }
    Ok(())
}

/// `keysim serve --state-dir DIR/serve-state` with no other option, its default ports held under
/// [`DEFAULT_PORTS_LOCK`] until the returned file is dropped.
fn default_serve(dir: &Path) -> (ServeProcess, fs::File) {
    let lock = fs::File::create(std::env::temp_dir().join(DEFAULT_PORTS_LOCK)).expect("lock file");
    lock.lock().expect("lock the default ports");
    let state = dir.join("serve-state");
    let server = ServeProcess::start(ServeCommand {
        args: vec!["--state-dir".into(), state.to_str().expect("UTF-8").to_owned()],
        env: Vec::new(),
        admin: network::config::DEFAULT_ADMIN_ADDR.to_string(),
    })
    .unwrap_or_else(|e| panic!("keysim serve on its default ports (are they taken?): {e}"));
    (server, lock)
}

#[test]
fn every_documented_command_runs() {
    let keysim = PathBuf::from(env!("CARGO_BIN_EXE_keysim"));
    let bin_dir = keysim.parent().expect("bin dir").to_owned();
    // `python3` is the oracle venv's when there is one (scripts/python-oracles.sh: `cryptography`,
    // pylibsrtp), as `make test` sets up before the tests.
    let venv_bin = std::env::var_os("KEYSIM_PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(Path::to_owned))
        .or_else(|| {
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?;
            let bin = target.join("pyenv-srtp/bin");
            if !bin.join("python3").exists() {
                // Builds the venv as `make test` does; without it the vector check below fails.
                let _ = Command::new(root().join("scripts/python-oracles.sh"))
                    .env("CARGO_TARGET_DIR", target)
                    .output();
            }
            Some(bin).filter(|d| d.join("python3").exists())
        });
    let mut path = format!("{}:", bin_dir.display());
    if let Some(dir) = venv_bin {
        path.push_str(&format!("{}:", dir.display()));
    }
    path.push_str(&std::env::var("PATH").unwrap_or_default());
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut used_exclusions = vec![false; EXCLUDED.len()];
    for doc in documents() {
        for block in blocks(&doc) {
            let dir = tempfile::tempdir().expect("temp dir");
            for shared in ["tests", "vectors", "wireshark"] {
                std::os::unix::fs::symlink(root().join(shared), dir.path().join(shared)).expect("symlink");
            }
            let mut script = String::from("set -u\n");
            let mut run = Vec::new();
            for command in &block {
                if let Some(i) = EXCLUDED.iter().position(|(prefix, _)| command.text.starts_with(prefix)) {
                    used_exclusions[i] = true;
                    continue;
                }
                let n = run.len();
                script.push_str(&format!(
                    "{{ {}\n}} >{n}.out 2>{n}.err </dev/null; echo $? >{n}.rc\n",
                    command.text
                ));
                run.push(command.clone());
            }
            if run.is_empty() {
                continue;
            }
            // `keysim serve` on its default ports for the commands that talk to it, as the docs
            // show them in two terminals.
            let serve = if run.iter().any(|c| NEEDS_SERVE.iter().any(|p| c.text.starts_with(p))) {
                Some(default_serve(dir.path()))
            } else {
                None
            };
            let status = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .current_dir(dir.path())
                .env("PATH", &path)
                // A home of its own: `keysim wireshark install` must not reach the user's folders.
                .env("HOME", dir.path())
                .env_remove("XDG_CONFIG_HOME")
                .status()
                .expect("bash");
            if let Some((server, _lock)) = serve {
                server.terminate().expect("keysim serve stops on SIGTERM");
            }
            assert!(status.success(), "the block's script itself failed: {script}");
            for (n, command) in run.iter().enumerate() {
                ran += 1;
                let read =
                    |ext: &str| fs::read_to_string(dir.path().join(format!("{n}.{ext}"))).unwrap_or_default();
                let rc: i32 = read("rc").trim().parse().unwrap_or(-1);
                let (stdout, stderr) = (read("out"), read("err"));
                let mut problem = None;
                if rc != command.exit {
                    problem = Some(format!("exit {rc}, documented {}", command.exit));
                } else if let Some(expected) = &command.prints
                    && stdout.trim() != expected
                {
                    problem = Some(format!("printed {:?}, documented {expected:?}", stdout.trim()));
                } else if command.exit == 0
                    && let Err(why) =
                        json_checks(&command.text, &stdout).and(text_checks(&command.text, &stdout))
                {
                    problem = Some(why);
                }
                if let Some(why) = problem {
                    failures.push(format!(
                        "{}: `{}`: {why}\n  stderr: {}",
                        command.at,
                        command.text,
                        stderr.lines().take(5).collect::<Vec<_>>().join("\n          ")
                    ));
                }
            }
        }
    }
    let stale: Vec<_> = EXCLUDED
        .iter()
        .zip(&used_exclusions)
        .filter(|(_, used)| !**used)
        .map(|((prefix, _), _)| *prefix)
        .collect();
    assert!(stale.is_empty(), "exclusions that match no documented command: {stale:?}");
    assert!(ran >= 15, "only {ran} documented commands found");
    assert!(
        failures.is_empty(),
        "{} of {ran} documented commands failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} documented commands ran, {} excluded kinds", EXCLUDED.len());
}

#[test]
fn the_exclusions_say_why() {
    for (prefix, why) in EXCLUDED {
        assert!(
            !prefix.is_empty() && why.len() > 20,
            "{prefix:?}: give the reason and where it runs instead"
        );
        assert!(excluded(prefix).is_some());
    }
}
