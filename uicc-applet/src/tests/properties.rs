//! Property tests: arbitrary APDU sequences (AUTHENTICATE with random and with well-formed data
//! included) never panic, and a rejected command (status word other than `90 00`, `61 xx`,
//! `63 Cx`) leaves the NVM image byte-identical. Try counters only go up on a successful VERIFY /
//! CHANGE PIN. Damaged images never make the card panic either.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::{personalized, send, send_hex};
use crate::layout::{ADM1_TRIES, JOURNAL_BODY, JOURNAL_MARK, JOURNAL_USED};
use crate::{Nvm, RESPONSE_MAX, Transport, Uicc};

const INS: [u8; 11] = [0xA4, 0xB0, 0xD6, 0xB2, 0xDC, 0x20, 0x24, 0xC0, 0xF2, 0x88, 0x89];

/// Data fields worth trying: FIDs and paths of the card, AIDs whole and partial, PIN1, ADM1 and
/// wrong values, records of the usual lengths, noise.
fn data() -> impl Strategy<Value = Vec<u8>> {
    let fids: Vec<Vec<u8>> = [
        "3F00", "7FFF", "2F00", "2FE2", "2F05", "2F06", "6F07", "6FAD", "6F38", "6FD6", "6FDA", "6FD7",
        "6FD8", "6F02", "6F03", "6F04", "6FD5", "7FFF6F07", "7FFF6FD6",
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect();
    let known: Vec<Vec<u8>> = [
        "A0000000871002FFFFFFFF8907090000",
        "A0000000871004FFFFFFFF8907090000",
        "A0000000871002",
        "A0000000871004",
        "A000000087",
        "31323334FFFFFFFF",
        "39393939FFFFFFFF",
        "3132333435363738",
        "31323334FFFFFFFF35363738FFFFFFFF",
        // AUTHENTICATE data: 3G (test set 1), GBA bootstrap (AUTN*), NAF derivation, MBMS modes.
        "1023553cbe9637a89d218ae64dae47bf351055f328b43577b9b94a9ffac354dfafb3",
        "DD1023553cbe9637a89d218ae64dae47bf351055f328b43577b9b98c7f3f0d723fb244",
        "DE15626d73632e6578616d706c652e6f72670100000001267573657240696d732e6d6e633030312e6d63633030312e336770706e6574776f726b2e6f7267",
        "53060300F1100001",
        "530B04A0088002636482026162",
        "5305010100000000",
        "530502FFFFFFFF",
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect();
    prop_oneof![
        2 => Just(Vec::new()),
        3 => select(fids),
        3 => select(known),
        2 => vec(any::<u8>(), 0..40),
        1 => vec(any::<u8>(), 20..=20),
        1 => vec(any::<u8>(), 96..=96),
    ]
}

/// An APDU: mostly well-formed with plausible CLA/INS/P1/P2, sometimes extended, sometimes noise.
fn apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![4 => Just(0x00u8), 2 => Just(0x80u8), 1 => Just(0x01u8), 1 => any::<u8>()];
    let ins = prop_oneof![6 => select(INS.to_vec()), 1 => any::<u8>()];
    let p = || {
        prop_oneof![
            3 => select(vec![0u8, 1, 2, 3, 4, 8, 9, 0x0A, 0x0C, 0x0E, 0x80, 0x81, 0x82, 0x84, 0x85, 0x87, 0xF4]),
            1 => any::<u8>()
        ]
    };
    let short = (cla, ins, p(), p(), data(), proptest::option::of(any::<u8>())).prop_map(
        |(cla, ins, p1, p2, data, le)| {
            let mut apdu = vec![cla, ins, p1, p2];
            if !data.is_empty() {
                apdu.push(data.len() as u8);
                apdu.extend(&data);
            }
            apdu.extend(le);
            apdu
        },
    );
    let extended = (select(INS.to_vec()), p(), p(), data(), proptest::option::of(any::<u16>())).prop_map(
        |(ins, p1, p2, data, le)| {
            let mut apdu = vec![0x00, ins, p1, p2, 0x00];
            if !data.is_empty() {
                apdu.extend((data.len() as u16).to_be_bytes());
                apdu.extend(&data);
            }
            if let Some(le) = le {
                apdu.extend(le.to_be_bytes());
            }
            apdu
        },
    );
    prop_oneof![8 => short, 1 => extended, 1 => vec(any::<u8>(), 0..12)]
}

/// Commands that open files and access conditions, mixed in so updates sometimes succeed.
fn opener() -> impl Strategy<Value = Vec<u8>> {
    select(
        [
            "00A4040C07A0000000871002",
            "00A4040C07A0000000871004",
            "002000010831323334FFFFFFFF",
            "0020000A083132333435363738",
            "00A4000C026FD6",
            "00A4000C026FD7",
            "00A4000C026F04",
            "00A4000C026F07",
            "0088008423DD1023553cbe9637a89d218ae64dae47bf351055f328b43577b9b98c7f3f0d723fb24400",
            "00D600113E284931553876705933714a306869755a4e726b652f4e513d3d406273662e6578616d706c652e6f726714323033302d31322d33315432333a35393a35395a",
            "008800843EDE15626d73632e6578616d706c652e6f72670100000001267573657240696d732e6d6e633030312e6d63633030312e336770706e6574776f726b2e6f726700",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect::<Vec<_>>(),
    )
}

fn sequence() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(prop_oneof![4 => apdu(), 1 => opener()], 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rejected_commands_leave_the_nvm_untouched(commands in sequence(), t0 in any::<bool>()) {
        let mut card = Uicc::power_on(personalized());
        card.set_transport(if t0 { Transport::T0 } else { Transport::T1 });
        for command in &commands {
            let before = card.nvm().as_bytes().to_vec();
            let response = send(&mut card, command);
            prop_assert!((2..=RESPONSE_MAX).contains(&response.len()));
            let sw = u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]]);
            let after = card.nvm().as_bytes();
            let ins = command.get(1).copied();
            let accepted = sw == 0x9000 || sw >> 8 == 0x61 || sw & 0xFFF0 == 0x63C0;
            if !accepted {
                prop_assert!(before == after, "{:02X?} answered {:04X} and changed the NVM", command, sw);
            }
            if before != after {
                prop_assert!(
                    matches!(ins, Some(0xD6 | 0xDC | 0x20 | 0x24 | 0x88 | 0x89)),
                    "{:02X?} wrote the NVM",
                    command
                );
            }
            for counter in [crate::layout::PIN1_TRIES.offset, ADM1_TRIES.offset] {
                if after[counter] > before[counter] {
                    prop_assert!(sw == 0x9000 && matches!(ins, Some(0x20 | 0x24)), "{:02X?} refunded a try", command);
                }
            }
            prop_assert_ne!(sw, 0x6581, "RamNvm never fails");
            if sw == 0x6F00 {
                prop_assert_eq!(ins, Some(0xC0), "6F00 only for GET RESPONSE without pending data");
            }
            if sw >> 8 == 0x61 {
                prop_assert!(t0 && response.len() == 2, "61xx only under T=0, without data");
            }
        }
    }

    #[test]
    fn any_journal_content_is_recovered_or_refused_without_panic(
        body in vec(any::<u8>(), 0..80),
        used in prop_oneof![any::<u16>(), 0u16..80],
        mark in prop_oneof![Just(0xC3u8), any::<u8>()],
    ) {
        let mut nvm = personalized();
        nvm.write(JOURNAL_BODY.offset, &body).unwrap();
        nvm.write(JOURNAL_USED.offset, &used.to_be_bytes()).unwrap();
        nvm.write(JOURNAL_MARK.offset, &[mark]).unwrap();
        let mut card = Uicc::power_on(nvm);
        let response = send_hex(&mut card, "00A4000C023F00");
        prop_assert!(response == [0x90, 0x00] || response == [0x6F, 0x00]);
    }

    #[test]
    fn a_damaged_image_never_makes_the_card_panic(
        patches in vec((0usize..crate::layout::USED, vec(any::<u8>(), 1..64)), 1..8),
        commands in sequence(),
    ) {
        let mut nvm = personalized();
        for (offset, bytes) in patches {
            let n = bytes.len().min(nvm.capacity() - offset);
            nvm.write(offset, &bytes[..n]).unwrap();
        }
        let mut card = Uicc::power_on(nvm);
        for command in &commands {
            let response = send(&mut card, command);
            prop_assert!((2..=RESPONSE_MAX).contains(&response.len()));
        }
    }
}
