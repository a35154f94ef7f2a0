//! The transport layer above a reader (ISO/IEC 7816-3 §10.3.5, ISO/IEC 7816-4 §5.1.3, TS 102 221 §7.3):
//! `61 xx` is answered with GET RESPONSE, `6C xx` by re-issuing the command with Le = xx, so callers
//! see whole responses; every raw exchange is kept for traces and APDU counts.

use apdu::{Command, Status};

use crate::{Error, Reader, Result};

/// INS of GET RESPONSE (ISO/IEC 7816-4 §11.3.1, TS 102 221 §11.1.12).
pub const INS_GET_RESPONSE: u8 = 0xC0;

/// GET RESPONSE commands the session sends for one command before it gives up: 256 rounds of
/// up to 256 bytes cover the largest extended response (65536 bytes).
pub const MAX_GET_RESPONSE_ROUNDS: usize = 256;

/// One command as it crossed the reader interface, and the card's raw answer.
#[derive(Clone, PartialEq, Eq)]
pub struct RawExchange {
    /// The command APDU sent.
    pub command: Vec<u8>,
    /// The response received: data followed by SW1 SW2.
    pub response: Vec<u8>,
}

impl core::fmt::Debug for RawExchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} -> {}", hex::encode(&self.command), hex::encode(&self.response))
    }
}

/// The whole answer to one command, after the transport loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The response data, concatenated over every GET RESPONSE.
    pub data: Vec<u8>,
    /// The final status word.
    pub status: Status,
    /// Every raw exchange this command took, in order (the command itself, any re-issue, every
    /// GET RESPONSE).
    pub raw: Vec<RawExchange>,
}

impl Exchange {
    /// The final status word as a number.
    pub fn sw(&self) -> u16 {
        self.status.to_u16()
    }

    /// Whether the command ended with `90 00`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The data and status word as one R-APDU (data‖SW1 SW2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.status.to_bytes());
        out
    }

    /// How many APDUs crossed the reader interface for this command.
    pub fn apdu_count(&self) -> usize {
        self.raw.len()
    }
}

/// A card session over any [`Reader`]: whole responses, counted exchanges.
pub struct Session<R> {
    reader: R,
    apdus: u64,
}

impl<R: Reader> Session<R> {
    /// A session over `reader` (which should already hold a powered card).
    pub fn new(reader: R) -> Self {
        Session { reader, apdus: 0 }
    }

    /// The reader.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The reader, mutably (to reset or power-cycle the card).
    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Give the reader back.
    pub fn into_reader(self) -> R {
        self.reader
    }

    /// How many raw APDUs this session has sent so far (the difference around an operation is
    /// its APDU cost).
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    /// Send a command given as hex digits (spaces allowed) and return the whole response.
    pub fn transmit_hex(&mut self, command: &str) -> Result<Exchange> {
        let bytes = parse_hex(command)?;
        self.transmit_apdu(&bytes)
    }

    /// Send one command APDU and return the whole response: `61 xx` is followed by GET
    /// RESPONSE (`CLA C0 00 00 xx`, repeated while the card answers `61 xx`, data concatenated),
    /// `6C xx` by the same command with Le = xx. A command that is no valid ISO/IEC 7816-4 APDU
    /// is refused before anything is sent.
    pub fn transmit_apdu(&mut self, command: &[u8]) -> Result<Exchange> {
        let parsed = Command::parse(command)
            .map_err(|reason| Error::MalformedCommand { apdu: hex::encode(command), reason })?;
        let mut raw = Vec::new();
        let (mut data, mut sw) = self.exchange(command.to_vec(), &mut raw)?;

        if let [0x6C, le] = sw {
            // Wrong Le: the card says how many bytes it has; ask again for exactly that many.
            let ne = if le == 0 { 256 } else { usize::from(le) };
            let reissued = Command { ne: Some(ne), extended: false, ..parsed };
            let mut buf = vec![0u8; reissued.encoded_len()];
            let n = reissued
                .encode(&mut buf)
                .map_err(|reason| Error::MalformedCommand { apdu: hex::encode(command), reason })?;
            buf.truncate(n);
            (data, sw) = self.exchange(buf, &mut raw)?;
            if sw[0] == 0x6C {
                return Err(Error::WrongLeLoop { first: le, second: u16::from_be_bytes(sw) });
            }
        }

        let cla = get_response_cla(parsed.cla);
        let mut rounds = 0;
        let mut retried_le = false;
        while sw[0] == 0x61 || (sw[0] == 0x6C && rounds > 0 && !retried_le) {
            // 6C after a GET RESPONSE: its P3 was wrong; ask once more with the length given.
            retried_le = sw[0] == 0x6C;
            if rounds >= MAX_GET_RESPONSE_ROUNDS {
                return Err(Error::GetResponseLoop { rounds, bytes: data.len() });
            }
            let (more, next) = self.exchange(vec![cla, INS_GET_RESPONSE, 0x00, 0x00, sw[1]], &mut raw)?;
            rounds += 1;
            if next[0] != 0x6C {
                data.extend_from_slice(&more);
                retried_le = false;
            }
            sw = next;
        }
        if sw[0] == 0x6C {
            return Err(Error::WrongLeLoop { first: sw[1], second: u16::from_be_bytes(sw) });
        }
        Ok(Exchange { data, status: Status::from_bytes(sw[0], sw[1]), raw })
    }

    /// One raw exchange: send, check the response has a status word, record it.
    fn exchange(&mut self, command: Vec<u8>, raw: &mut Vec<RawExchange>) -> Result<(Vec<u8>, [u8; 2])> {
        let response = self.reader.transmit(&command)?;
        self.apdus += 1;
        let Some(split) = response.len().checked_sub(2) else {
            return Err(Error::ShortResponse { len: response.len() });
        };
        let sw = [response[split], response[split + 1]];
        let data = response[..split].to_vec();
        raw.push(RawExchange { command, response });
        Ok((data, sw))
    }
}

/// The class byte of the GET RESPONSE that follows a command of class `cla`: the same logical
/// channel, interindustry coding (TS 102 221 §10.1.1; ISO/IEC 7816-4 §5.4.1), `A0` after GSM class
/// commands (TS 51.011).
pub fn get_response_cla(cla: u8) -> u8 {
    match cla {
        0xA0 => 0xA0,
        // Further interindustry class: channels 4 to 19 in b4..b1.
        c if c & 0xC0 == 0x40 => 0x40 | (c & 0x0F),
        // First interindustry class, or proprietary classes coded like it (TS 102 221 '8X').
        c => c & 0x03,
    }
}

/// Decode hex digits (whitespace and colons between digits allowed, as in `00:A4:00:04`) into
/// bytes, with a clear error for odd lengths and non-hex characters.
pub fn parse_hex(input: &str) -> Result<Vec<u8>> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    let err = |reason: String| Error::Hex { input: input.to_owned(), reason };
    if digits.is_empty() {
        return Err(err("no hex digits".to_owned()));
    }
    if let Some((at, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(err(format!("'{c}' at digit {at} is not a hex digit")));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(err(format!("odd number of hex digits ({})", digits.len())));
    }
    hex::decode(&digits).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use std::collections::VecDeque;

    /// A reader that checks each command against a script and answers from it.
    struct Scripted {
        script: VecDeque<(Vec<u8>, Vec<u8>)>,
    }

    impl Scripted {
        fn new(steps: &[(&str, &str)]) -> Self {
            let script = steps
                .iter()
                .map(|(c, r)| (parse_hex(c).unwrap(), hex::decode(r.replace(' ', "")).unwrap()))
                .collect();
            Scripted { script }
        }
    }

    impl Reader for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn protocol(&self) -> Protocol {
            Protocol::T0
        }
        fn power_on(&mut self) -> Result<Vec<u8>> {
            Ok(vec![0x3B, 0x00])
        }
        fn reset(&mut self) -> Result<Vec<u8>> {
            Ok(vec![0x3B, 0x00])
        }
        fn power_off(&mut self) -> Result<()> {
            Ok(())
        }
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
            let (expected, response) = self.script.pop_front().expect("unexpected extra command");
            assert_eq!(hex::encode(command), hex::encode(&expected), "command out of script");
            Ok(response)
        }
    }

    fn run(steps: &[(&str, &str)], command: &str) -> (Result<Exchange>, Session<Scripted>) {
        let mut s = Session::new(Scripted::new(steps));
        let r = s.transmit_hex(command);
        (r, s)
    }

    #[test]
    fn plain_response_passes_through() {
        let (r, s) = run(&[("00A4000C023F00", "9000")], "00 A4 00 0C 02 3F 00");
        let r = r.unwrap();
        assert_eq!(r.status, Status::Ok);
        assert!(r.data.is_empty());
        assert_eq!(r.apdu_count(), 1);
        assert_eq!(s.apdu_count(), 1);
        assert!(s.reader().script.is_empty());
    }

    /// The MF FCP a commercial UICC returned (HARNESS.md §4).
    const MF_FCP: &str = "621b8202782183023f00a5008a0105c60c90017083010183018183010a";

    #[test]
    fn bytes_available_fetched_with_get_response() {
        // TS 102 221 §7.3.1.1.4 case 4 under T=0: 61 xx, then GET RESPONSE 00 C0 00 00 xx.
        let (r, s) =
            run(&[("00A40004023F00", "611D"), ("00C000001D", &format!("{MF_FCP}9000"))], "00A40004023F00");
        let r = r.unwrap();
        assert_eq!(r.status, Status::Ok);
        assert_eq!(hex::encode(&r.data), MF_FCP);
        assert_eq!(r.data[0], 0x62);
        assert_eq!(r.apdu_count(), 2);
        assert!(s.reader().script.is_empty());
    }

    #[test]
    fn chained_61xx_concatenates() {
        let (r, _) = run(
            &[
                ("00880081221023553cbe9637a89d218ae64dae47bf351055f328b43577b9b94a9ffac354dfafb3", "6104"),
                ("00C0000004", "010203046102"),
                ("00C0000002", "05069000"),
            ],
            "00880081221023553cbe9637a89d218ae64dae47bf351055f328b43577b9b94a9ffac354dfafb3",
        );
        let r = r.unwrap();
        assert_eq!(r.data, [1, 2, 3, 4, 5, 6]);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.apdu_count(), 3);
    }

    #[test]
    fn get_response_keeps_logical_channel() {
        // CLA 01 (channel 1) -> GET RESPONSE 01 C0; CLA 80 (proprietary, channel 0) -> 00 C0;
        // CLA 41 (channel 5) -> 41 C0; GSM class A0 -> A0 C0.
        assert_eq!(get_response_cla(0x01), 0x01);
        assert_eq!(get_response_cla(0x80), 0x00);
        assert_eq!(get_response_cla(0x83), 0x03);
        assert_eq!(get_response_cla(0x41), 0x41);
        assert_eq!(get_response_cla(0x6F), 0x4F);
        assert_eq!(get_response_cla(0xA0), 0xA0);
        let (r, _) = run(&[("01B0000000", "6105"), ("01C0000005", "11223344559000")], "01B0000000");
        assert_eq!(r.unwrap().data, [0x11, 0x22, 0x33, 0x44, 0x55]);
    }

    #[test]
    fn wrong_le_reissues_with_exact_le() {
        // ISO/IEC 7816-3 §10.3.5: 6C xx -> same header with P3 = xx.
        let (r, _) = run(&[("00B0000000", "6C09"), ("00B0000009", "0809101010325476989000")], "00B0000000");
        let r = r.unwrap();
        assert_eq!(hex::encode(&r.data), "080910101032547698");
        assert_eq!(r.apdu_count(), 2);
    }

    #[test]
    fn wrong_le_then_61xx() {
        let (r, _) = run(
            &[
                ("00B2010410", "6C20"),
                ("00B2010420", "6120"),
                ("00C0000020", &format!("{}9000", "ab".repeat(32))),
            ],
            "00B2010410",
        );
        let r = r.unwrap();
        assert_eq!(r.data, vec![0xAB; 32]);
        assert_eq!(r.apdu_count(), 3);
    }

    #[test]
    fn get_response_answered_6cxx_is_retried_once() {
        let (r, _) = run(
            &[("00F20000", "6110"), ("00C0000010", "6C08"), ("00C0000008", "01020304050607089000")],
            "00F20000",
        );
        assert_eq!(r.unwrap().data, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn repeated_6cxx_is_an_error() {
        let (r, _) = run(&[("00B0000000", "6C09"), ("00B0000009", "6C08")], "00B0000000");
        assert!(matches!(r, Err(Error::WrongLeLoop { first: 9, second: 0x6C08 })), "{r:?}");
    }

    #[test]
    fn endless_61xx_is_an_error() {
        struct Endless;
        impl Reader for Endless {
            fn name(&self) -> &str {
                "endless"
            }
            fn protocol(&self) -> Protocol {
                Protocol::T0
            }
            fn power_on(&mut self) -> Result<Vec<u8>> {
                Ok(vec![])
            }
            fn reset(&mut self) -> Result<Vec<u8>> {
                Ok(vec![])
            }
            fn power_off(&mut self) -> Result<()> {
                Ok(())
            }
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>> {
                Ok(vec![0x61, 0x00])
            }
        }
        let mut s = Session::new(Endless);
        let r = s.transmit_hex("00F2000000");
        assert!(matches!(r, Err(Error::GetResponseLoop { rounds: MAX_GET_RESPONSE_ROUNDS, .. })), "{r:?}");
        assert_eq!(s.apdu_count(), MAX_GET_RESPONSE_ROUNDS as u64 + 1);
    }

    #[test]
    fn malformed_commands_are_refused_before_sending() {
        let mut s = Session::new(Scripted::new(&[]));
        for bad in ["00A4", "00A4000C033F00", "00A4000C0002"] {
            let r = s.transmit_hex(bad);
            assert!(matches!(r, Err(Error::MalformedCommand { .. })), "{bad}: {r:?}");
        }
        assert!(matches!(s.transmit_hex("00A4000"), Err(Error::Hex { .. })));
        assert!(matches!(s.transmit_hex("00A4 00zz"), Err(Error::Hex { .. })));
        assert!(matches!(s.transmit_hex("  "), Err(Error::Hex { .. })));
        assert_eq!(s.apdu_count(), 0);
        let msg = s.transmit_hex("00A4000").unwrap_err().to_string();
        assert!(msg.contains("odd number of hex digits (7)"), "{msg}");
    }

    #[test]
    fn response_without_status_word_is_an_error() {
        let (r, _) = run(&[("00F20000", "90")], "00F20000");
        assert!(matches!(r, Err(Error::ShortResponse { len: 1 })), "{r:?}");
    }

    proptest::proptest! {
        /// Whatever a (broken) card answers, the loop ends without panicking.
        #[test]
        fn any_card_answers_never_panic(answers in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8), 1..20)) {
            struct Random(std::vec::IntoIter<Vec<u8>>);
            impl Reader for Random {
                fn name(&self) -> &str { "random" }
                fn protocol(&self) -> Protocol { Protocol::T0 }
                fn power_on(&mut self) -> Result<Vec<u8>> { Ok(vec![]) }
                fn reset(&mut self) -> Result<Vec<u8>> { Ok(vec![]) }
                fn power_off(&mut self) -> Result<()> { Ok(()) }
                fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>> {
                    Ok(self.0.next().unwrap_or_else(|| vec![0x90, 0x00]))
                }
            }
            let mut s = Session::new(Random(answers.into_iter()));
            let _ = s.transmit_hex("00B0000000");
        }
    }
}
