//! The card's command/response cases (uicc-applet/testdata/command-response.txt) replayed through a
//! real pcscd: libpcsclite and the `pcsc` crate on one side, pcscd's vsmartcard vpcd driver and the
//! vpcd server on the other. Every response must equal, byte for byte, what the cases expect (the
//! same file the in-process test runs).
//!
//! Needs a running pcscd with the vpcd driver, so it is ignored in a plain `cargo test`;
//! `scripts/pcsc-tests.sh` starts a private pcscd and runs it with `--ignored`. The card is served
//! on the second vpcd slot (`KEYSIM_VPCD_PORT` + 1), because `keysim vpcd` holds the first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sim_reader::vpcd::{self, ServeOptions};
use sim_reader::{CardProfile, Emulator, PcscReader, Protocol, Reader, ReaderSelector, Result, list_readers};

const CASES: &str = include_str!("../uicc-applet/testdata/command-response.txt");
const PROFILE: &str = include_str!("data/applet-test-profile.toml");

/// A card the test can swap (a fresh card per case) while the vpcd server serves it.
#[derive(Clone)]
struct SharedCard(Arc<Mutex<Emulator>>);

impl SharedCard {
    fn with<T>(&self, f: impl FnOnce(&mut Emulator) -> T) -> T {
        let mut card = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut card)
    }
}

impl Reader for SharedCard {
    fn name(&self) -> &str {
        "shared emulated card"
    }
    fn protocol(&self) -> Protocol {
        self.with(|c| c.protocol())
    }
    fn power_on(&mut self) -> Result<Vec<u8>> {
        self.with(|c| c.power_on())
    }
    fn reset(&mut self) -> Result<Vec<u8>> {
        self.with(|c| c.reset())
    }
    fn power_off(&mut self) -> Result<()> {
        self.with(|c| c.power_off())
    }
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        self.with(|c| c.transmit(command))
    }
}

fn case_hex(line: usize, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        match token.split_once('*') {
            Some((byte, count)) => {
                let byte = u8::from_str_radix(byte, 16).unwrap_or_else(|e| panic!("line {line}: {e}"));
                let count: usize = count.parse().unwrap_or_else(|e| panic!("line {line}: {e}"));
                out.extend(std::iter::repeat_n(byte, count));
            }
            None => out.extend(hex::decode(token).unwrap_or_else(|e| panic!("line {line}: {token}: {e}"))),
        }
    }
    out
}

fn env_port() -> u16 {
    std::env::var("KEYSIM_VPCD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(vpcd::DEFAULT_PORT)
}

/// The reader of vpcd slot 1: the slot-0 name with its last digit changed.
fn slot1_reader() -> String {
    let slot0 = std::env::var("KEYSIM_PCSC_READER").unwrap_or_else(|_| "Virtual PCD 00 00".to_owned());
    format!("{}1", &slot0[..slot0.len() - 1])
}

fn wait_for_card(reader: &str) -> PcscReader {
    let start = Instant::now();
    loop {
        let present = list_readers()
            .map(|rs| rs.iter().any(|r| r.name == reader && r.card_present))
            .unwrap_or_else(|e| panic!("PC/SC: {e}"));
        if present {
            return PcscReader::open(&ReaderSelector::Name(reader.to_owned())).expect("open reader");
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no card in '{reader}' after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs pcscd with the vpcd driver: run by scripts/pcsc-tests.sh"]
fn command_response_cases_through_pcscd() {
    let profile = CardProfile::from_toml_str(PROFILE).expect("test profile");
    let fresh = || Emulator::new(&profile).expect("emulated card");
    let card = SharedCard(Arc::new(Mutex::new(fresh())));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = vpcd::resolve(&format!("127.0.0.1:{}", env_port() + 1)).expect("vpcd address");
    let server = {
        let mut card = card.clone();
        let options = ServeOptions { stop: stop.clone(), ..Default::default() };
        std::thread::spawn(move || vpcd::serve(&mut card, addr, &options))
    };
    let reader_name = slot1_reader();
    let mut reader = wait_for_card(&reader_name);

    let mut failures = Vec::new();
    let (mut cases, mut exchanges, mut skipped) = (0, 0, 0);
    let mut name = String::new();
    let mut pending: Option<(usize, Vec<u8>)> = None;
    for (i, raw) in CASES.lines().enumerate() {
        let line = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if let Some(expected) = text.strip_prefix('<') {
            let (sent_at, command) = pending.take().unwrap_or_else(|| panic!("line {line}: '<' without '>'"));
            let expected = case_hex(line, expected);
            if command.len() == 1 {
                // vpcd carries a one-byte frame as a control message (0 = power off), so a
                // one-byte command cannot cross it; the in-process test covers those.
                skipped += 1;
                continue;
            }
            let got = reader.transmit(&command).unwrap_or_else(|e| panic!("line {sent_at}: {e}"));
            exchanges += 1;
            if got != expected {
                failures.push(format!(
                    "{name} (line {sent_at}): > {}\n    expected {}\n    got      {}",
                    hex::encode_upper(&command),
                    hex::encode_upper(&expected),
                    hex::encode_upper(&got)
                ));
            }
            continue;
        }
        assert!(pending.is_none(), "line {line}: '>' not followed by '<'");
        if let Some(command) = text.strip_prefix('>') {
            pending = Some((line, case_hex(line, command)));
        } else if let Some(case) = text.strip_prefix("case ") {
            name = case.to_owned();
            cases += 1;
            card.with(|c| *c = fresh());
            reader.power_on().expect("cold reset through PC/SC");
        } else if text == "power" {
            // A cold reset through PC/SC: pcscd powers the card off and on through vpcd.
            reader.power_on().expect("cold reset through PC/SC");
        } else if text == "t0" || text == "t1" {
            let protocol = if text == "t0" { Protocol::T0 } else { Protocol::T1 };
            card.with(|c| c.set_protocol(protocol));
        } else if text == "blank" {
            card.with(|c| *c = Emulator::from_image(vec![0xFF; sim_reader::NVM_SIZE]).expect("blank card"));
            reader.power_on().expect("cold reset through PC/SC");
        } else {
            panic!("line {line}: unknown directive '{text}'");
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(reader);
    let stats = server.join().expect("vpcd server thread").expect("vpcd server");
    eprintln!(
        "{cases} cases, {exchanges} exchanges through pcscd ('{reader_name}'), {skipped} one-byte \
         commands left to the in-process test; server answered {} APDUs",
        stats.apdus
    );
    assert!(cases > 20 && exchanges > 100, "the case file is missing cases");
    assert!(stats.apdus >= exchanges, "the server saw fewer APDUs than were sent");
    assert!(
        failures.is_empty(),
        "{} of {exchanges} exchanges differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
