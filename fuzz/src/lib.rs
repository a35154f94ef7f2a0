//! Bodies of the fuzz targets: the card (TS 102 221 / TS 31.102 command processing), the APDU
//! codec (ISO/IEC 7816-4 §5), BER-TLV (ISO/IEC 8825-1) and MIKEY with the MBMS profile (RFC 3830,
//! TS 33.246 §6.3).
//!
//! Beyond the card: SRTP / SRTCP unprotect (RFC 3711), MIKEY verification (RFC 3830 §5.1), the
//! XML bodies of Ub, Zn and MBMS key management (TS 24.109, TS 29.109, TS 33.246, TS 26.237),
//! the Ub Digest headers, vpcd framing, card profiles and HTTP responses.
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
    puk1: "12345678",
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

// ---------------------------------------------------------------------------------------------
// MIKEY verify: messages made to pass the MAC, so that decryption and key data parsing are reached

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// `message` with its KEMAC key data taken as plaintext and encrypted, and its MAC computed, with
/// the transport keys of `keys` (RFC 3830 §4.2, §5.1): what a sender holding the key would send.
/// `None` if the KEMAC is not the last field of the message or its MAC is not HMAC-SHA-1-160.
fn reprotect(
    message: &[u8],
    kemac: &mikey::Kemac<'_>,
    keys: &mikey::TransportKeys,
    csb_id: u32,
    timestamp: u64,
) -> Option<Vec<u8>> {
    let base = message.as_ptr() as usize;
    let enc_at = (kemac.encr_data.as_ptr() as usize).checked_sub(base)?;
    let mac_at = (kemac.mac.as_ptr() as usize).checked_sub(base)?;
    if kemac.mac_alg != mikey::MacAlg::HmacSha1_160 || mac_at + kemac.mac.len() != message.len() {
        return None;
    }
    let mut out = message.to_vec();
    if kemac.encr_alg == mikey::EncrAlg::AesCm128 {
        let plain = out.get_mut(enc_at..enc_at + kemac.encr_data.len())?;
        mikey::kemac::aes_cm_apply(keys, csb_id, timestamp, plain).ok()?;
    }
    let tag = hmac_sha1(keys.auth_key(), &out[..mac_at]);
    out[mac_at..].copy_from_slice(&tag);
    Some(out)
}

fn kemac_of<'a>(msg: &mikey::Message<'a>) -> Option<mikey::Kemac<'a>> {
    match msg.last_payload() {
        Some(mikey::Payload::Kemac(k)) => Some(k),
        _ => None,
    }
}

/// MIKEY verification and decryption of the MBMS profile (RFC 3830 §5.1, TS 33.246 §6.3): an
/// input that parses as an MSK or MTK message is first re-protected with the fixed fuzz keys (its
/// key data encrypted, its MAC computed), so the fuzzer reaches what lies behind the MAC: key data
/// decryption, Key data sub-payloads, the MSK / MTK / salt rules. Properties: no panic; a message
/// MACed with the key never fails its MAC; a verified message built again by the BM-SC's builder
/// from what was verified verifies to the same keys.
pub fn mikey_verify(data: &[u8]) {
    let muk = mbms::Muk::new(FUZZ_MUK);
    let msk = mbms::Msk::new(FUZZ_MSK);
    if let Ok(m) = mbms::parse_msk_message(data) {
        let bytes = m.message().as_bytes();
        let keys = mikey::TransportKeys::derive(mbms::profile::PRF, &FUZZ_MUK, m.csb_id(), m.rand())
            .expect("transport keys");
        if let Some(kemac) = kemac_of(m.message())
            && let Some(fixed) = reprotect(bytes, &kemac, &keys, m.csb_id(), m.timestamp().as_u64())
        {
            let m2 = mbms::parse_msk_message(&fixed).expect("a re-protected MSK message parses");
            match mbms::verify_and_decrypt_msk(&muk, &m2) {
                Err(mikey::Error::MacMismatch) => panic!("an MSK message MACed with the MUK fails its MAC"),
                Ok(mbms::MskUpdate::Msk(d)) => {
                    let params = mbms::MskMessageParams {
                        csb_id: m2.csb_id(),
                        v_bit: m2.v_bit(),
                        timestamp: m2.timestamp(),
                        rand: m2.rand(),
                        idi: m2.idi().data,
                        idr: m2.idr().data,
                        key_domain_id: m2.key_domain_id(),
                        msk_id: m2.msk_id(),
                        cs_id_map: m2.message().hdr().cs_id_map,
                        policy: m2.policy(),
                        validity: d.validity.as_wire(),
                    };
                    let mut out = [0u8; 2048];
                    if let Ok(n) = mbms::build_msk_message(&muk, &params, &d.msk, &mut out) {
                        let again = mbms::parse_msk_message(&out[..n]).expect("a built MSK message parses");
                        match mbms::verify_and_decrypt_msk(&muk, &again)
                            .expect("a built MSK message verifies")
                        {
                            mbms::MskUpdate::Msk(e) => {
                                assert_eq!(e.msk.as_bytes(), d.msk.as_bytes(), "MSK changed");
                                assert_eq!((e.key_domain_id, e.msk_id), (d.key_domain_id, d.msk_id));
                            }
                            mbms::MskUpdate::SolicitedPull(_) => panic!("an MSK became a solicited pull"),
                        }
                    }
                }
                Ok(mbms::MskUpdate::SolicitedPull(_)) | Err(_) => {}
            }
        }
    }
    if let Ok(m) = mbms::parse_mtk_message(data) {
        let bytes = m.message().as_bytes();
        let keys = mikey::TransportKeys::derive(mbms::profile::PRF, &FUZZ_MSK, m.csb_id(), m.rand())
            .expect("transport keys");
        if let Some(kemac) = kemac_of(m.message())
            && let Some(fixed) = reprotect(bytes, &kemac, &keys, m.csb_id(), m.timestamp().as_u64())
        {
            let m2 = mbms::parse_mtk_message(&fixed).expect("a re-protected MTK message parses");
            match mbms::verify_and_decrypt_mtk(&msk, &m2) {
                Err(mikey::Error::MacMismatch) => panic!("an MTK message MACed with the MSK fails its MAC"),
                Ok(d) => {
                    let rand = m2.rand();
                    let params = mbms::MtkMessageParams {
                        csb_id: m2.csb_id(),
                        timestamp: m2.timestamp(),
                        rand: (!rand.is_empty()).then_some(rand),
                        key_domain_id: m2.key_domain_id(),
                        msk_id: m2.msk_id(),
                        mtk_id: m2.mtk_id(),
                        cs_id_map: m2.message().hdr().cs_id_map,
                        policy: m2.policy(),
                        validity: d.validity.as_wire(),
                    };
                    let mut out = [0u8; 2048];
                    if let Ok(n) = mbms::build_mtk_message(&msk, &params, &d.mtk, d.salt.as_ref(), &mut out) {
                        let again = mbms::parse_mtk_message(&out[..n]).expect("a built MTK message parses");
                        let e =
                            mbms::verify_and_decrypt_mtk(&msk, &again).expect("a built MTK message verifies");
                        assert_eq!(e.mtk.as_bytes(), d.mtk.as_bytes(), "MTK changed");
                        assert_eq!(
                            e.salt.map(|s| *s.as_bytes()),
                            d.salt.map(|s| *s.as_bytes()),
                            "salt changed"
                        );
                        assert_eq!((e.msk_id, e.mtk_id), (d.msk_id, d.mtk_id));
                    }
                }
                Err(_) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SRTP / SRTCP (RFC 3711)

/// Master key and salt of the SRTP fuzz contexts (RFC 3711 Appendix B.2's key and salt).
pub const SRTP_MASTER_KEY: [u8; 16] =
    [0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39];
/// Master salt of the SRTP fuzz contexts.
pub const SRTP_MASTER_SALT: [u8; 14] =
    [0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6];
/// MKI of the contexts that carry one: MSK ID ‖ MTK ID, as in MBMS (TS 33.246 §6.6).
pub const SRTP_MKI: [u8; 8] = [0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07];

/// The SRTP policies of the fuzz contexts, selected by the low two bits of an input's first byte.
pub fn srtp_policy(selector: u8) -> srtp::Policy {
    use srtp::{CryptoSuite, Policy};
    match selector & 3 {
        0 => Policy::new(CryptoSuite::Aes128CmHmacSha1_80),
        1 => Policy::new(CryptoSuite::Aes128CmHmacSha1_32).with_mki_len(SRTP_MKI.len()),
        2 => Policy::new(CryptoSuite::NullHmacSha1_80).with_mki_len(SRTP_MKI.len()),
        _ => Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_key_derivation_rate(1 << 4),
    }
}

/// A context of [`srtp_policy`]`(selector)` holding the fuzz master key.
pub fn srtp_context(selector: u8) -> srtp::SrtpContext {
    let policy = srtp_policy(selector);
    let mki = if policy.mki_len == 0 { Vec::new() } else { SRTP_MKI.to_vec() };
    srtp::SrtpContext::new(policy, [srtp::MasterKey::new(SRTP_MASTER_KEY, SRTP_MASTER_SALT, mki)])
        .expect("the fuzz policies are valid")
}

/// SRTP and SRTCP unprotect (RFC 3711 §3.3, §3.4) with a fixed context. The first byte selects the
/// policy (bits 0-1), RTP or RTCP (bit 2) and whether the rest is unprotected as it is (bit 3
/// clear) or first protected by a sender with the same key (bit 3 set). Properties: no panic; a
/// refused packet leaves the buffer unchanged; a packet the sender protected unprotects to itself.
pub fn srtp_unprotect(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else { return };
    let rtcp = selector & 4 != 0;
    let mut rx = srtp_context(selector);
    if selector & 8 == 0 {
        let mut buf = packet.to_vec();
        let result = if rtcp { rx.unprotect_rtcp(&mut buf) } else { rx.unprotect_rtp(&mut buf) };
        match result {
            Ok(n) => assert!(n <= packet.len(), "unprotected length beyond the packet"),
            Err(_) => assert_eq!(buf, packet, "a refused packet was changed"),
        }
        // The same packet again: a replay, never accepted twice.
        if result.is_ok() {
            let mut again = packet.to_vec();
            let second = if rtcp { rx.unprotect_rtcp(&mut again) } else { rx.unprotect_rtp(&mut again) };
            assert!(second.is_err(), "a replayed packet was accepted");
        }
    } else {
        let mut tx = srtp_context(selector);
        let mut buf = packet.to_vec();
        let protected = if rtcp { tx.protect_rtcp_vec(&mut buf) } else { tx.protect_rtp_vec(&mut buf) };
        if protected.is_ok() {
            let result = if rtcp { rx.unprotect_rtcp_vec(&mut buf) } else { rx.unprotect_rtp_vec(&mut buf) };
            result.expect("a packet protected with the same key unprotects");
            assert_eq!(buf, packet, "unprotect(protect(p)) != p");
        }
    }
}

/// Genuine SRTP packets of one stream, protected in sending order with [`srtp_context`]`(0)`:
/// (packet index, packet). Indices 0 to 99, then jumps across a ROC change and beyond.
pub fn srtp_packet_pool() -> &'static [(u64, Vec<u8>)] {
    static POOL: OnceLock<Vec<(u64, Vec<u8>)>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut tx = srtp_context(0);
        let indices = (0..100u64)
            .chain([300, 20_000, 40_000, 60_000, 65_530, 65_535, 65_536, 65_537, 65_600, 90_000, 120_000]);
        indices
            .map(|index| {
                let seq = (index & 0xFFFF) as u16;
                let mut p = vec![0x80, 0x60];
                p.extend_from_slice(&seq.to_be_bytes());
                p.extend_from_slice(&(index as u32).wrapping_mul(160).to_be_bytes());
                p.extend_from_slice(&SRTP_SEQUENCE_SSRC.to_be_bytes());
                p.extend((0..20).map(|i| (index as u8).wrapping_add(i)));
                tx.protect_rtp_vec(&mut p).expect("the sender protects its stream");
                (index, p)
            })
            .collect()
    })
}

/// SSRC of the [`srtp_packet_pool`] stream.
pub const SRTP_SEQUENCE_SSRC: u32 = 0x5EC0_0001;

/// A receiving SRTP context fed a sequence of genuine packets (from [`srtp_packet_pool`]),
/// replays, damaged packets and garbage. Input: one byte `b` per step: `b < 0x80` sends pool packet
/// `b` (modulo the pool); `0x80..=0xBF` sends pool packet `next byte` with the bit `b & 7` of its
/// byte `b >> 3 & 7` (from the end) flipped; `0xC0..` sends the next `b & 0x3F` input bytes as they
/// are. Properties: garbage and damaged packets are refused and leave the stream state alone; a
/// genuine packet is accepted at most once; one within the window and near the highest index
/// (2^15, so its index estimate is right) is accepted unless already seen; after accepting index
/// `i` the highest index is the larger of `i` and the previous one; and at the end the context
/// still accepts the next genuine packet it has not seen.
pub fn srtp_sequence(data: &[u8]) {
    let pool = srtp_packet_pool();
    let mut rx = srtp_context(0);
    let window = rx.policy().replay_window as u64;
    let ssrc = SRTP_SEQUENCE_SSRC;
    let mut accepted = std::collections::BTreeSet::new();
    let highest = |rx: &srtp::SrtpContext| rx.rtp_index(srtp::Direction::Inbound, ssrc);
    let mut steps = data.iter().copied();
    while let Some(b) = steps.next() {
        let before = highest(&rx);
        if b < 0x80 {
            let (index, packet) = &pool[usize::from(b) % pool.len()];
            let mut buf = packet.clone();
            match rx.unprotect_rtp_vec(&mut buf) {
                Ok(()) => {
                    assert!(accepted.insert(*index), "index {index} accepted twice");
                    let now = highest(&rx).expect("a stream after a packet");
                    assert_eq!(now, before.map_or(*index, |h| h.max(*index)), "highest index after {index}");
                }
                Err(e) => {
                    assert_eq!(highest(&rx), before, "a refused packet moved the stream ({e})");
                    let may_refuse = accepted.contains(index)
                        || match before {
                            None => *index > 0xFFFF,
                            Some(h) => h >= index + window || h.abs_diff(*index) >= 0x8000,
                        };
                    assert!(may_refuse, "fresh packet {index} refused with highest {before:?}: {e}");
                }
            }
        } else {
            let garbage = if b < 0xC0 {
                let Some(which) = steps.next() else { break };
                let mut p = pool[usize::from(which) % pool.len()].1.clone();
                let at = p.len() - 1 - usize::from((b >> 3) & 7);
                p[at] ^= 1 << (b & 7);
                p
            } else {
                steps.by_ref().take(usize::from(b & 0x3F)).collect()
            };
            let mut buf = garbage.clone();
            assert!(rx.unprotect_rtp_vec(&mut buf).is_err(), "a damaged or made-up packet was accepted");
            assert_eq!(buf, garbage, "a refused packet was changed");
            assert_eq!(highest(&rx), before, "a refused packet moved the stream");
        }
    }
    // Still working: the first genuine packet above the highest index (and close to it) is accepted.
    let h = highest(&rx);
    if let Some((index, packet)) =
        pool.iter().find(|(i, _)| h.is_none_or(|h| *i > h && *i - h < 0x8000) && !accepted.contains(i))
        && (h.is_some() || *index <= 0xFFFF)
    {
        let mut buf = packet.clone();
        rx.unprotect_rtp_vec(&mut buf).unwrap_or_else(|e| panic!("next packet {index} after {h:?}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// XML bodies and Ub headers

/// Parse, write, parse again: the second parse gives the first result.
macro_rules! xml_round_trip {
    ($ty:ty, $text:expr) => {
        if let Ok(x) = <$ty>::from_xml($text) {
            let xml = x.to_xml();
            let again = <$ty>::from_xml(&xml)
                .unwrap_or_else(|e| panic!("{}: own XML refused: {e}\n{xml}", stringify!($ty)));
            assert_eq!(again, x, "{}: changed through to_xml / from_xml", stringify!($ty));
        }
    };
}

/// The XML bodies (first byte selects the document, the rest is its text): Ub's
/// BootstrappingInfo (TS 24.109 Annex C), Zn request / answer / error (TS 29.109), the BM-SC
/// key management bodies (TS 33.246 §6.3.2, TS 26.346), and the SIP-based bodies of TS 26.237
/// Annex I. Properties: no panic; what parses is written back and parses to the same value.
pub fn xml_bodies(data: &[u8]) {
    use wire::mbms_key_management as http;
    use wire::sip_based_mbms as sip_based;
    let Some((&which, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match which % 13 {
        0 => xml_round_trip!(wire::ub::BootstrappingInfo, text),
        1 => xml_round_trip!(wire::zn::ZnRequest, text),
        2 => {
            if let Ok(x) = wire::zn::ZnAnswer::from_xml(text) {
                let _ = x.gba_type();
                wire::zn::ZnAnswer::from_xml(&x.to_xml()).expect("own Zn answer parses");
            }
        }
        3 => xml_round_trip!(wire::zn::ZnErrorBody, text),
        4 => xml_round_trip!(http::RegisterRequest, text),
        5 => xml_round_trip!(http::DeregisterRequest, text),
        6 => xml_round_trip!(http::RegisterResponse, text),
        7 => xml_round_trip!(http::MskRequest, text),
        8 => xml_round_trip!(http::MskResponse, text),
        9 => xml_round_trip!(sip_based::SipSecurityRequest, text),
        10 => xml_round_trip!(sip_based::SipProcedure, text),
        11 => {
            if let Ok(x) = sip_based::NafKeyInfo::from_xml(text) {
                sip_based::NafKeyInfo::from_xml(&x.to_xml()).expect("own NAF key info parses");
            }
        }
        _ => xml_round_trip!(sip_based::AuthorizeRequest, text),
    }
}

/// Parse, write, parse again for the Ub header values.
macro_rules! header_round_trip {
    ($ty:ty, $text:expr) => {
        if let Ok(x) = <$ty>::parse($text)
            && let Ok(value) = x.to_header_value()
        {
            let again = <$ty>::parse(&value)
                .unwrap_or_else(|e| panic!("{}: own header refused: {e}\n{value}", stringify!($ty)));
            assert_eq!(again, x, "{}: changed through to_header_value / parse", stringify!($ty));
        }
    };
}

/// The HTTP Digest AKA headers of Ub (TS 24.109 §4–5, RFC 3310, RFC 2617) and the AKA nonce:
/// first byte selects the header. Properties: no panic; what parses is written back and parses to
/// the same value.
pub fn ub_headers(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match which % 4 {
        0 => header_round_trip!(wire::digest::DigestChallenge, text),
        1 => {
            header_round_trip!(wire::digest::DigestAuthorization, text);
            if let Ok(a) = wire::digest::DigestAuthorization::parse(text) {
                let _ = a.decode_auts();
                let _ = a.verify(b"password", "GET", b"");
            }
        }
        2 => header_round_trip!(wire::digest::AuthenticationInfo, text),
        _ => {
            if let Ok(n) = wire::ub::AkaNonce::decode(text) {
                assert_eq!(wire::ub::AkaNonce::decode(&n.encode()).expect("own nonce decodes"), n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// vpcd framing, card profiles, HTTP responses

/// vsmartcard's vpcd framing (2-byte length, control byte or APDU) into the emulated card
/// (`sim_reader::vpcd::answer_frames`). Properties: no panic; every answer is one well-formed
/// frame: an ATR or a response APDU with a status word.
pub fn vpcd_frames(data: &[u8]) {
    let mut card = sim_reader::Emulator::from_image(personalized_image().as_bytes().to_vec())
        .expect("the fuzz card powers on");
    let mut replies = Vec::new();
    let _ = sim_reader::vpcd::answer_frames(&mut card, data, &mut replies);
    let mut rest = replies.as_slice();
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (body, tail) = tail.split_at_checked(len).expect("a reply frame is complete");
        assert!(!body.is_empty() || len == 0, "reply frame body");
        rest = tail;
    }
    assert!(rest.is_empty(), "half a length field in the replies");
}

/// Card profiles (sim-reader's TOML and JSON forms). Properties: no panic; an accepted profile is
/// written back (TOML and JSON) and read to the same fields, and personalizes an emulated card.
pub fn profile_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [sim_reader::CardProfile::from_toml_str(text), sim_reader::CardProfile::from_json_str(text)]
    {
        let Ok(profile) = parsed else { continue };
        let toml = profile.to_toml();
        let again = sim_reader::CardProfile::from_toml_str(&toml)
            .unwrap_or_else(|e| panic!("own TOML refused: {e}\n{toml}"));
        assert_eq!(again.to_fields(), profile.to_fields(), "changed through TOML");
        let json = profile.to_json();
        let again = sim_reader::CardProfile::from_json_str(&json)
            .unwrap_or_else(|e| panic!("own JSON refused: {e}\n{json}"));
        assert_eq!(again.to_fields(), profile.to_fields(), "changed through JSON");
        if let Err(e) = sim_reader::Emulator::new(&profile) {
            panic!("an accepted profile does not personalize a card: {e}\n{toml}");
        }
    }
}

/// HTTP/1.1 responses as the ME and the peers' clients read them (`network::http::parse_response`:
/// status line, headers, Content-Length or chunked body). Properties: no panic; a parsed body is no
/// longer than the input.
pub fn http_response(data: &[u8]) {
    if let Ok(r) = network::http::parse_response(data) {
        assert!((100..=999).contains(&r.status));
        assert!(r.body.len() <= data.len(), "body longer than the response");
        for (name, _) in &r.headers {
            assert!(r.header(name).is_some(), "header {name} not found by name");
        }
    }
}

/// MIKEY-TICKET messages (RFC 6043 §4–§6, TS 33.328 Annex D) through `mikey::ticket::fuzz_parse`,
/// which walks every payload, the TP and Ticket Data chains, the Initiator Data and the key data.
/// Properties: no panic; the walk visits at least every top-level payload of a parsed message (a
/// message may have none: a lone HDR is well formed).
pub fn mikey_ticket(data: &[u8]) {
    let walked = mikey::ticket::fuzz_parse(data);
    if let Ok(m) = mikey::Message::parse_ticket(data) {
        let payloads = m.payloads().count();
        assert!(walked >= payloads, "{walked} payloads walked of {payloads}");
    }
}
