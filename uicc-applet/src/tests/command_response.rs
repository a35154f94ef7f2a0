//! Declarative command/response cases (`testdata/command-response.txt`), run in-process.
//!
//! Script syntax, one item per line (`#` starts a comment):
//! - `case <name>`: a new case on a freshly personalized card (T=1);
//! - `t0` / `t1`: switch the transport;
//! - `power`: power-cycle the card, keeping its NVM (and the transport);
//! - `blank`: replace the card by one whose NVM was never personalized;
//! - `> <hex>`: send a command; the next line `< <hex>` is the exact expected response, data and
//!   status word. Hex may contain spaces, and `XX*n` stands for n bytes `XX`.

use super::{PROFILE, personalized, send};
use crate::{NVM_SIZE, RamNvm, Transport, Uicc};

const SCRIPT: &str = include_str!("../../testdata/command-response.txt");

fn parse_hex(line: usize, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        if let Some((byte, count)) = token.split_once('*') {
            let byte = u8::from_str_radix(byte, 16).unwrap_or_else(|e| panic!("line {line}: {e}"));
            let count: usize = count.parse().unwrap_or_else(|e| panic!("line {line}: {e}"));
            out.extend(std::iter::repeat_n(byte, count));
        } else {
            out.extend(hex::decode(token).unwrap_or_else(|e| panic!("line {line}: {token}: {e}")));
        }
    }
    out
}

struct Run {
    card: Uicc<RamNvm<NVM_SIZE>>,
    transport: Transport,
}

impl Run {
    fn new() -> Self {
        Run { card: Uicc::power_on(personalized()), transport: Transport::T1 }
    }

    fn power_cycle(&mut self, nvm: RamNvm<NVM_SIZE>) {
        self.card = Uicc::power_on(nvm);
        self.card.set_transport(self.transport);
    }
}

#[test]
fn command_response_script() {
    assert_eq!(PROFILE.pin1, "1234", "the script assumes the test profile");
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut exchanges = 0;
    let mut name = String::new();
    let mut run = Run::new();
    let mut pending: Option<(usize, Vec<u8>)> = None;
    for (i, raw) in SCRIPT.lines().enumerate() {
        let line = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if let Some(expected) = text.strip_prefix('<') {
            let (sent_at, command) = pending.take().unwrap_or_else(|| panic!("line {line}: '<' without '>'"));
            let expected = parse_hex(line, expected);
            let got = send(&mut run.card, &command);
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
            pending = Some((line, parse_hex(line, command)));
        } else if let Some(case) = text.strip_prefix("case ") {
            name = case.to_string();
            cases += 1;
            run = Run::new();
        } else if text == "t0" || text == "t1" {
            run.transport = if text == "t0" { Transport::T0 } else { Transport::T1 };
            run.card.set_transport(run.transport);
        } else if text == "power" {
            let nvm = std::mem::replace(&mut run.card, Uicc::power_on(RamNvm::new())).into_nvm();
            run.power_cycle(nvm);
        } else if text == "blank" {
            run.power_cycle(RamNvm::new());
        } else {
            panic!("line {line}: cannot read {raw:?}");
        }
    }
    assert!(pending.is_none(), "script ends with an unanswered '>'");
    assert!(cases > 30 && exchanges > 200, "script too short: {cases} cases, {exchanges} exchanges");
    assert!(
        failures.is_empty(),
        "{} of {exchanges} exchanges failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
