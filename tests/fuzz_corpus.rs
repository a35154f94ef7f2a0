//! Every seed of the fuzz corpora (fuzz/corpus/<target>/) replayed through the same target
//! functions the cargo-fuzz binaries run (fuzz/src/lib.rs), as an ordinary test: a crash found
//! once and kept as a seed stays fixed.
//!
//! `KEYSIM_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus -- --ignored write_seed_corpus`
//! rewrites the recorded seeds from a run of the MBMS scenario on the emulated card.

mod support;

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

use sim_reader::{CardProfile, Emulator, Protocol};
use support::mbms_run;
use targets::{CardInput, op};

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
        &bmsc.mtk_message(0x0001_0001, &msk, 7, 7, &[0x77; 16], Some(&[0x5A; 14])),
    );
    write_seed("mikey_parse", "mtk", &bmsc.mtk_message(0x0001_0001, &msk, 8, 8, &[0x78; 16], None));
    let verification = run.steps_named("MSK Update 00010001").next().expect("MSK 1");
    let answer = mbms_run::mbms_answer("MSK 1", &verification.exchange).expect("answer");
    write_seed("mikey_parse", "verification", &answer);
    eprintln!("seed corpora written under {}", corpus_dir("").display());
}
