//! ISO/IEC 7816-4 §5.1 command cases, §5.6 status words and BER-TLV, checked against
//! hand-coded encodings from the standard and by property tests.

use apdu::tlv::{self, Tlv, TlvError};
use apdu::{ApduError, Case, Command, Response, Status};
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

#[test]
fn the_four_cases_short() {
    let c = h("00 A4 00 0C");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.ne, cmd.data.len()), (Case::Case1, None, 0));

    let c = h("00 B0 00 00 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.ne), (Case::Case2, Some(256)));

    let c = h("00 A4 00 0C 02 3F 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.data), (Case::Case3, &[0x3F, 0x00][..]));

    let c = h("00 A4 04 04 07 A0 00 00 00 87 10 02 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!(cmd.case(), Case::Case4);
    assert_eq!(cmd.data, &h("A0 00 00 00 87 10 02")[..]);
    assert_eq!(cmd.ne, Some(256));
    assert!(!cmd.extended);
}

#[test]
fn the_four_cases_extended() {
    // Case 2E: 00 Le1 Le2, Le 0000 means 65536.
    let c = h("00 B0 00 00 00 00 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.ne, cmd.extended), (Case::Case2, Some(65536), true));

    // Case 3E: 00 Lc1 Lc2 data.
    let mut c = h("00 D6 00 00 00 01 2C");
    c.extend(std::iter::repeat_n(0x5A, 300));
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.data.len(), cmd.extended), (Case::Case3, 300, true));

    // Case 4E: 00 Lc1 Lc2 data Le1 Le2.
    let c = h("00 89 80 85 00 00 03 53 01 02 01 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!((cmd.case(), cmd.data, cmd.ne), (Case::Case4, &[0x53, 0x01, 0x02][..], Some(256)));
}

#[test]
fn extended_le_after_short_lc_is_accepted() {
    // Some modems send a 2-byte Le after a short Lc although the ATR announces no extended lengths.
    let c = h("00 88 00 81 02 AA BB 00 00");
    let cmd = Command::parse(&c).unwrap();
    assert_eq!(cmd.data, &[0xAA, 0xBB][..]);
    assert_eq!(cmd.ne, Some(65536));
}

#[test]
fn malformed_lengths_are_rejected() {
    assert_eq!(Command::parse(&h("00 A4 00")), Err(ApduError::TooShort));
    // Lc says 4, two bytes follow.
    assert_eq!(Command::parse(&h("00 A4 00 0C 04 3F 00")), Err(ApduError::WrongLength));
    // Lc says 2, five bytes follow (no case fits).
    assert_eq!(Command::parse(&h("00 A4 00 0C 02 3F 00 00 00 00")), Err(ApduError::WrongLength));
    // Two body bytes starting with 00 fit neither form.
    assert_eq!(Command::parse(&h("00 B0 00 00 00 10")), Err(ApduError::WrongLength));
    // Extended Lc of zero.
    assert_eq!(Command::parse(&h("00 D6 00 00 00 00 00 AA")), Err(ApduError::WrongLength));
    assert_eq!(ApduError::WrongLength.status(), Status::WrongLength);
}

#[test]
fn encoding_picks_extended_only_when_needed() {
    let mut buf = [0u8; 80];
    let n =
        Command::new(0x00, 0xA4, 0x04, 0x04).with_data(&[0xA0, 0, 0, 0, 0x87]).with_ne(256).encode(&mut buf);
    assert_eq!(&buf[..n.unwrap()], &h("00 A4 04 04 05 A0 00 00 00 87 00")[..]);

    let n = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(300).encode(&mut buf);
    assert_eq!(&buf[..n.unwrap()], &h("00 B0 00 00 00 01 2C")[..]);

    let n = Command::new(0x00, 0x88, 0x00, 0x81).with_data(&[1, 2]).with_ne(65536).encode(&mut buf);
    assert_eq!(&buf[..n.unwrap()], &h("00 88 00 81 00 00 02 01 02 00 00")[..]);

    assert_eq!(Command::new(0, 0xB0, 0, 0).with_ne(0).encode(&mut buf), Err(ApduError::InvalidNe));
    assert_eq!(Command::new(0, 0xB0, 0, 0).with_ne(65537).encode(&mut buf), Err(ApduError::InvalidNe));
    assert_eq!(
        Command::new(0, 0xA4, 0, 0).with_data(&[0; 4]).encode(&mut buf[..7]),
        Err(ApduError::BufferTooSmall)
    );
}

#[test]
fn status_words_have_their_standard_meanings() {
    let cases: &[(u16, Status, &str)] = &[
        (0x9000, Status::Ok, "normal ending"),
        (0x6110, Status::BytesAvailable(0x10), "response bytes available"),
        (0x6C08, Status::WrongLe(8), "wrong length Le"),
        (0x6282, Status::EndOfFile, "end of file"),
        (0x6700, Status::WrongLength, "wrong length"),
        (0x6982, Status::SecurityStatusNotSatisfied, "security status not satisfied"),
        (0x6983, Status::AuthMethodBlocked, "blocked"),
        (0x6985, Status::ConditionsNotSatisfied, "conditions of use not satisfied"),
        (0x6A80, Status::IncorrectData, "incorrect parameters in the data field"),
        (0x6A82, Status::FileNotFound, "file or application not found"),
        (0x6A86, Status::IncorrectP1P2, "incorrect parameters P1 to P2"),
        (0x6B00, Status::WrongP1P2, "wrong parameter"),
        (0x6D00, Status::InsNotSupported, "instruction code not supported"),
        (0x6E00, Status::ClaNotSupported, "class not supported"),
        (0x6F00, Status::NoPreciseDiagnosis, "no precise diagnosis"),
        (0x9862, Status::AuthIncorrectMac, "incorrect MAC"),
        (0x9863, Status::SecuritySessionExpired, "expired"),
        (0x9864, Status::SecurityContextNotSupported, "security context not supported"),
        (0x9865, Status::KeyFreshnessFailure, "key freshness failure"),
        (0x9866, Status::AuthNoMemory, "no memory space"),
        (0x9867, Status::AuthNoMemoryMuk, "EF_MUK"),
        (0x63C2, Status::VerifyFailed(2), "verification failed"),
        (0x62F3, Status::ResponseDataAvailable, "response data available"),
    ];
    for &(sw, status, words) in cases {
        assert_eq!(Status::from_u16(sw), status, "{sw:04X}");
        assert_eq!(status.to_u16(), sw);
        assert!(status.meaning().contains(words), "{sw:04X}: {}", status.meaning());
    }
    assert_eq!(Status::BytesAvailable(0).to_string(), "6100: response bytes available (GET RESPONSE) (256)");
    assert_eq!(Status::from_u16(0x6A8F), Status::Other(0x6A8F));
}

#[test]
fn response_split() {
    let r = h("DB 08 A5 42 11 D5 E3 BA 50 BF 90 00");
    let resp = Response::parse(&r).unwrap();
    assert_eq!(resp.status, Status::Ok);
    assert_eq!(resp.data.len(), 10);
    assert_eq!(Response::parse(&[0x90]), Err(ApduError::TooShort));
}

#[test]
fn tlv_reads_fcp_and_record_padding() {
    // The MF FCP from HARNESS.md §4 (as a real UICC returns it).
    let fcp = h("621b8202782183023f00a5008a0105c60c90017083010183018183010a");
    let (outer, rest) = Tlv::parse(&fcp).unwrap();
    assert!(rest.is_empty());
    assert_eq!(outer.tag, 0x62);
    assert!(outer.is_constructed());
    assert_eq!(tlv::find(outer.value, 0x83).unwrap(), Some(&[0x3F, 0x00][..]));
    assert_eq!(tlv::find(outer.value, 0x82).unwrap(), Some(&[0x78, 0x21][..]));
    let tags: Vec<u32> = outer.children().map(|t| t.unwrap().tag).collect();
    assert_eq!(tags, vec![0x82, 0x83, 0xA5, 0x8A, 0xC6]);
    // An EF.GBANL-like record padded with FF ends iteration at the padding.
    let rec = h("8003616263 8102 7878 FFFFFFFF");
    assert_eq!(tlv::Iter::new(&rec).count(), 2);
    // Two-byte tag and two-byte length.
    let mut long = h("5F2D 81 80");
    long.extend([0x41; 0x80]);
    let (t, _) = Tlv::parse(&long).unwrap();
    assert_eq!((t.tag, t.value.len()), (0x5F2D, 0x80));
    assert_eq!(Tlv::parse(&h("80 05 01 02")), Err(TlvError::Truncated));
    assert_eq!(Tlv::parse(&h("80 80 01")), Err(TlvError::InvalidLength));
}

#[cfg(feature = "std")]
#[test]
fn tlv_write_matches_iso7816_tlv() {
    for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
        let value = vec![0xA5u8; len];
        for tag in [0x80u16, 0x53, 0x5F2D] {
            let mut ours = vec![0u8; len + 8];
            let n = tlv::write(tag, &value, &mut ours).unwrap();
            let theirs = tlv::build(tag, &value).unwrap();
            if len == 0x7F {
                // iso7816-tlv writes 127 in the long form (81 7F); BER allows both, the short form
                // is the minimal one. Both must read back to the same object.
                let (a, _) = Tlv::parse(&ours[..n]).unwrap();
                let (b, _) = Tlv::parse(&theirs).unwrap();
                assert_eq!((a.tag, a.value), (b.tag, b.value));
                assert_eq!(n, theirs.len() - 1);
            } else {
                assert_eq!(&ours[..n], &theirs[..], "tag {tag:X} len {len}");
            }
        }
    }
    let inner = tlv::build(0x80, b"bmsc").unwrap();
    let outer = tlv::build_constructed(0xA0, &[inner]).unwrap();
    assert_eq!(outer, h("A0 06 80 04 626d7363"));
}

fn arb_command() -> impl Strategy<Value = (u8, u8, u8, u8, Vec<u8>, Option<usize>, bool)> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..=255),
            proptest::collection::vec(any::<u8>(), 256..700)
        ],
        prop_oneof![Just(None), (1usize..=256).prop_map(Some), (1usize..=65536).prop_map(Some)],
        any::<bool>(),
    )
}

proptest! {
    #[test]
    fn build_then_parse_gives_the_command_back((cla, ins, p1, p2, data, ne, ext) in arb_command()) {
        let mut cmd = Command::new(cla, ins, p1, p2).with_data(&data);
        cmd.ne = ne;
        cmd.extended = ext;
        let mut buf = vec![0u8; cmd.encoded_len()];
        let n = cmd.encode(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let back = Command::parse(&buf).unwrap();
        prop_assert_eq!((back.cla, back.ins, back.p1, back.p2), (cla, ins, p1, p2));
        prop_assert_eq!(back.data, &data[..]);
        prop_assert_eq!(back.ne, ne);
        let needs_ext = ext || data.len() > 255 || ne.is_some_and(|n| n > 256);
        // A case 1 command has no length field, so it carries no short/extended distinction.
        prop_assert_eq!(back.extended, needs_ext && (ne.is_some() || !data.is_empty()));
        // Re-encoding the parsed command gives the same bytes.
        let mut again = vec![0u8; back.encoded_len()];
        back.encode(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn command_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(cmd) = Command::parse(&bytes) {
            prop_assert!(cmd.data.len() < bytes.len());
        }
    }

    #[test]
    fn status_round_trips(sw in any::<u16>()) {
        prop_assert_eq!(Status::from_u16(sw).to_u16(), sw);
    }

    #[test]
    fn tlv_write_then_parse((tag, value) in (prop_oneof![0x80u16..0x9F, 0x5F20u16..0x5F7F], proptest::collection::vec(any::<u8>(), 0..400))) {
        let mut buf = vec![0u8; value.len() + 8];
        let n = tlv::write(tag, &value, &mut buf).unwrap();
        let (t, rest) = Tlv::parse(&buf[..n]).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(t.tag, tag as u32);
        prop_assert_eq!(t.value, &value[..]);
    }

    #[test]
    fn tlv_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for t in tlv::Iter::new(&bytes) {
            if t.is_err() { break; }
        }
    }
}
