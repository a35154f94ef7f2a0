//! Bodies of the fuzz targets: the card (TS 102 221 / TS 31.102 command processing), the APDU
//! codec (ISO/IEC 7816-4 §5), BER-TLV (ISO/IEC 8825-1) and MIKEY with the MBMS profile (RFC 3830,
//! TS 33.246 §6.3).
//!
//! The cargo-fuzz binaries in `fuzz_targets/` call these functions, and the root test
//! `tests/fuzz_corpus.rs` includes this file to replay every corpus input through the same code
//! in an ordinary `cargo test`. Each function panics only when a property fails.

use std::sync::OnceLock;

use mikey::mbms;
use uicc_applet::testing::{PowerCutNvm, Tear};
use uicc_applet::{NVM_SIZE, Personalization, RESPONSE_MAX, RamNvm, Transport, Uicc};

/// The card every `card_apdus` input starts from: the built-in profile of `keysim`
/// (sim-reader/default.toml; TS 35.208 test set 1 K and OPc), so seeds recorded from runs on the
/// default emulated card reach the same states.
pub const PERSONALIZATION: Personalization<'static> = Personalization {
    iccid: "89882110000000000010",
    imsi: "001010123456789",
    k: [0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc],
    opc: [0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf],
    sqn: [0x00, 0x00, 0x00, 0x00, 0x00, 0x20],
    amf: [0x80, 0x00],
    impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
    impu: &["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "tel:+15550100"],
    home_domain: "ims.mnc001.mcc001.3gppnetwork.org",
    pin1: "1234",
    adm1: *b"88888888",
};

/// The personalized NVM image, made once per process.
pub fn personalized_image() -> &'static RamNvm<NVM_SIZE> {
    static IMAGE: OnceLock<RamNvm<NVM_SIZE>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut nvm = RamNvm::new();
        Uicc::personalize(&mut nvm, &PERSONALIZATION).expect("the fuzz personalization fits the card");
        nvm
    })
}

/// Control words of a `card_apdus` input (first of two bytes with bit 8 set).
pub mod op {
    /// Switch between T=1 and T=0.
    pub const TOGGLE_TRANSPORT: u8 = 0;
    /// Power off and on (power restored if it was cut).
    pub const POWER_CYCLE: u8 = 1;
    /// Warm reset.
    pub const WARM_RESET: u8 = 2;
    /// Cut the power at the k-th NVM write from now (k = low 6 bits of the second byte), torn as
    /// `Tear::ALL[second byte >> 6]`.
    pub const POWER_CUT: u8 = 3;
}

/// One step of a `card_apdus` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardInput<'a> {
    /// A command APDU.
    Apdu(&'a [u8]),
    /// A control operation (`op`, parameter byte).
    Control(u8, u8),
}

/// Splits a `card_apdus` input into steps: two bytes `w`, then either a control operation (bit
/// 15 of `w` set: operation `(w >> 8) & 3`, parameter `w & 0xFF`) or an APDU of `w & 0x1FF` bytes
/// (fewer if the input ends first). A trailing single byte is ignored.
pub fn split_card_input(mut data: &[u8]) -> Vec<CardInput<'_>> {
    let mut steps = Vec::new();
    while let [b0, b1, rest @ ..] = data {
        if b0 & 0x80 != 0 {
            steps.push(CardInput::Control(b0 & 0x03, *b1));
            data = rest;
            continue;
        }
        let len = ((usize::from(b0 & 0x01) << 8) | usize::from(*b1)).min(rest.len());
        let (apdu, rest) = rest.split_at(len);
        steps.push(CardInput::Apdu(apdu));
        data = rest;
    }
    steps
}

/// Encodes steps in the `card_apdus` input format (for seeds).
pub fn join_card_input(steps: &[CardInput<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in steps {
        match s {
            CardInput::Apdu(a) => {
                let len = u16::try_from(a.len()).expect("APDU length");
                assert!(len <= 0x1FF, "APDU too long for a seed");
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(a);
            }
            CardInput::Control(op, param) => out.extend_from_slice(&[0x80 | op, *param]),
        }
    }
    out
}

/// APDU sequences into a personalized card, with T=0/T=1 switches, warm resets, power cycles and
/// power cuts at chosen NVM writes. Properties: no panic; every answer has a status word and fits
/// [`RESPONSE_MAX`]; under T=0 a command carrying data never gets data back (TS 102 221 §7.3.1.1.4:
/// it waits behind `61 xx`).
pub fn card_apdus(data: &[u8]) {
    run_card(data, &mut |_, _| {});
}

/// The body of [`card_apdus`], handing every command and its answer to `seen`.
pub fn run_card(data: &[u8], seen: &mut dyn FnMut(&[u8], &[u8])) {
    let mut card = Uicc::power_on(PowerCutNvm::new(personalized_image().clone()));
    let mut transport = Transport::T1;
    card.set_transport(transport);
    let mut response = [0u8; RESPONSE_MAX];
    for step in split_card_input(data) {
        match step {
            CardInput::Control(op::TOGGLE_TRANSPORT, _) => {
                transport = if transport == Transport::T1 { Transport::T0 } else { Transport::T1 };
                card.set_transport(transport);
            }
            CardInput::Control(op::POWER_CYCLE, _) => {
                let mut nvm = card.into_nvm();
                nvm.restore_power();
                card = Uicc::power_on(nvm);
                card.set_transport(transport);
            }
            CardInput::Control(op::WARM_RESET, _) => card.reset(),
            CardInput::Control(_, param) => {
                card.nvm().arm(usize::from(param & 0x3F), Tear::ALL[usize::from(param >> 6)]);
            }
            CardInput::Apdu(apdu) => {
                let n = card.process(apdu, &mut response);
                assert!((2..=RESPONSE_MAX).contains(&n), "answer of {n} bytes to {apdu:02X?}");
                if transport == Transport::T0
                    && let Ok(c) = apdu::Command::parse(apdu)
                    && !c.data.is_empty()
                {
                    assert_eq!(n, 2, "T=0: data returned with the status word to {apdu:02X?}");
                }
                seen(apdu, &response[..n]);
            }
        }
    }
}

/// Command and response APDU parsing (ISO/IEC 7816-4 §5.1, §5.3). Properties: no panic; a
/// parsed command encodes to bytes that parse to the same command, and to the input bytes
/// themselves unless the input used the parser's lenient form (short Lc with a two-byte Le,
/// which it reads as extended); a response re-encodes to the same bytes; a status word survives
/// `from_bytes` / `to_bytes`.
pub fn apdu_parse(data: &[u8]) {
    if let Ok(c) = apdu::Command::parse(data) {
        let mut buf = vec![0u8; c.encoded_len()];
        let n = c.encode(&mut buf).expect("a parsed command encodes");
        let again = apdu::Command::parse(&buf[..n]).expect("an encoded command parses");
        assert_eq!(again, c, "command changed through encode/parse");
        let lenient = c.extended && data.get(4).is_some_and(|&lc| lc != 0);
        if !lenient {
            assert_eq!(&buf[..n], data, "command re-encoding differs");
        }
        assert!(c.data.len() <= apdu::EXTENDED_NC_MAX);
        if let Some(ne) = c.ne {
            assert!((1..=apdu::EXTENDED_NE_MAX).contains(&ne));
        }
    }
    if let Ok(r) = apdu::Response::parse(data) {
        let mut buf = vec![0u8; data.len()];
        let n = r.encode(&mut buf).expect("a parsed response encodes");
        assert_eq!(&buf[..n], data, "response re-encoding differs");
    }
    if let [.., sw1, sw2] = data {
        let status = apdu::Status::from_bytes(*sw1, *sw2);
        assert_eq!(status.to_bytes(), [*sw1, *sw2]);
        assert_eq!(apdu::Status::from_u16(status.to_u16()), status);
        let _ = status.meaning();
    }
}

fn walk_tlv(bytes: &[u8], depth: usize) {
    for item in apdu::tlv::Iter::new(bytes) {
        let Ok(t) = item else { break };
        let start = bytes.as_ptr() as usize;
        let at = t.value.as_ptr() as usize;
        assert!(at >= start && at + t.value.len() <= start + bytes.len(), "value outside the input");
        if t.is_constructed() && depth < 8 {
            walk_tlv(t.value, depth + 1);
        }
    }
}

/// BER-TLV reading (ISO/IEC 7816-4 §5.2). Properties: no panic; values lie inside the input;
/// an object with a one- or two-byte tag and a minimal length field is written back by
/// `apdu::tlv::write` to the same bytes.
pub fn tlv(data: &[u8]) {
    walk_tlv(data, 0);
    let _ = apdu::tlv::find(data, 0x53);
    if let Ok((t, rest)) = apdu::tlv::Tlv::parse(data) {
        let consumed = data.len() - rest.len();
        let tag_len = if t.tag > 0xFFFF {
            3
        } else if t.tag > 0xFF {
            2
        } else {
            1
        };
        let length_len = consumed - tag_len - t.value.len();
        if let Ok(tag) = u16::try_from(t.tag)
            && length_len == apdu::tlv::length_field_len(t.value.len())
            && t.value.len() <= 0xFF_FFFF
        {
            let mut out = vec![0u8; consumed];
            let n = apdu::tlv::write(tag, t.value, &mut out).expect("room for the object");
            assert_eq!(&out[..n], &data[..consumed], "BER-TLV re-encoding differs");
        }
    }
}

/// The MUK the `mikey_parse` seeds are protected with.
pub const FUZZ_MUK: [u8; 32] = [0x4D; 32];
/// The MSK the `mikey_parse` seeds are protected with.
pub const FUZZ_MSK: [u8; 16] = [0x53; 16];

/// MIKEY parsing and the MBMS profile: `Message::parse` and every accessor, then the MSK / MTK
/// message checks with fixed keys. Properties: no panic; a verified MSK message's verification
/// message verifies; a verified MTK delivery writes MTK ‖ salt.
pub fn mikey_parse(data: &[u8]) {
    if let Ok(msg) = mikey::Message::parse(data) {
        for p in msg.payloads() {
            let _ = p.payload_type();
        }
        let _ = (msg.kemac(), msg.timestamp(), msg.rand(), msg.verification(), msg.key_ids());
        let _ = (msg.ids().count(), msg.security_policies().count(), msg.last_payload());
    }
    let muk = mbms::Muk::new(FUZZ_MUK);
    if let Ok(m) = mbms::parse_msk_message(data) {
        let _ = (m.idi(), m.idr(), m.key_domain_id(), m.msk_id(), m.timestamp(), m.is_solicited_pull());
        if mbms::verify_and_decrypt_msk(&muk, &m).is_ok() {
            let mut out = [0u8; 1024];
            let n = mbms::build_verification_message(&muk, &m, &mut out).expect("verification message");
            mbms::verify_verification_message(&muk, &m, &out[..n])
                .expect("own verification message verifies");
        }
        let _ = mbms::verify_verification_message(&muk, &m, data);
    }
    if let Ok(m) = mbms::parse_mtk_message(data) {
        let _ = (m.key_domain_id(), m.msk_id(), m.mtk_id(), m.timestamp(), m.rand());
        if let Ok(d) = mbms::verify_and_decrypt_mtk(&mbms::Msk::new(FUZZ_MSK), &m) {
            let mut out = [0u8; mbms::profile::MTK_LEN + mbms::profile::MTK_SALT_LEN];
            d.write_mtk_and_salt(&mut out).expect("MTK and salt fit");
        }
    }
}
