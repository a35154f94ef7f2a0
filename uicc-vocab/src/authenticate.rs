//! AUTHENTICATE framing (TS 31.102 §7.1.2, TS 31.103 §7.1; spec digest §2): the command data and
//! the response data of every context the card supports — 3G, GBA Bootstrapping Mode (`DD`), GBA
//! NAF Derivation Mode (`DE`), and the MBMS modes (MSK Update, MTK Generation, MSK Deletion, MUK
//! Deletion) — built into caller buffers and parsed without copying. The card parses commands and
//! builds answers with it, the ME the other way round, and the trace decoder names what it sees.

use apdu::tlv::{self, Tlv};

use crate::ef::muk::{MukId, parse_muk_id};
use crate::ef::{AUTN_LEN, KEY_DOMAIN_ID_LEN, KEY_GROUP_LEN, RAND_LEN};
use crate::open_values::{
    MODE_MSK_DELETION, MODE_MSK_UPDATE, MODE_MTK_GENERATION, MODE_MUK_DELETION, TAG_MBMS_DATA,
    TAG_MBMS_DATA_BER,
};
use crate::{EncodeError, put, put_lv};

/// INS of AUTHENTICATE, EVEN instruction: the 3G, GSM, VGCS/VBS and GBA contexts.
pub const INS_AUTHENTICATE_EVEN: u8 = 0x88;
/// INS of AUTHENTICATE, ODD instruction: the MBMS and Local Key Establishment contexts.
pub const INS_AUTHENTICATE_ODD: u8 = 0x89;
/// P1 of the EVEN instruction.
pub const P1_EVEN: u8 = 0x00;
/// P2 b8: "specific reference data" (Table 7.1.2-1); every context sets it.
pub const P2_SPECIFIC_REFERENCE: u8 = 0x80;
/// P2 of the GSM security context (Table 7.1.2-1).
pub const P2_GSM_CONTEXT: u8 = 0x80;
/// P2 of the 3G security context (Table 7.1.2-1).
pub const P2_3G_CONTEXT: u8 = 0x81;
/// P2 of the VGCS/VBS security context (Table 7.1.2-1).
pub const P2_VGCS_CONTEXT: u8 = 0x82;
/// P2 of the GBA security context (Table 7.1.2-1).
pub const P2_GBA_CONTEXT: u8 = 0x84;
/// P2 of the MBMS security context, ODD instruction only (Table 7.1.2-2).
pub const P2_MBMS_CONTEXT: u8 = 0x85;
/// P2 of the Local Key Establishment security context, ODD instruction only (Table 7.1.2-2).
pub const P2_LOCAL_KEY_CONTEXT: u8 = 0x86;
/// Tag of a successful answer (§7.1.2.1).
pub const TAG_SUCCESS: u8 = 0xDB;
/// Tag of a synchronisation failure (§7.1.2.1).
pub const TAG_SYNC_FAILURE: u8 = 0xDC;
/// GBA security context, Bootstrapping Mode.
pub const TAG_GBA_BOOTSTRAPPING: u8 = 0xDD;
/// GBA security context, NAF Derivation Mode.
pub const TAG_GBA_NAF_DERIVATION: u8 = 0xDE;
/// Length of the 3G context's command data: `10 RAND 10 AUTN`.
pub const RAND_AUTN_LEN: usize = 2 + RAND_LEN + AUTN_LEN;

/// The security context P2 b3..b1 names (Tables 7.1.2-1 and 7.1.2-2).
pub const fn context_name(p2: u8) -> &'static str {
    match p2 & 0x07 {
        0 => "GSM context",
        1 => "3G context",
        2 => "VGCS/VBS context",
        4 => "GBA context",
        5 => "MBMS context",
        6 => "local key establishment context",
        _ => "RFU context",
    }
}

/// What P1 of the ODD instruction asks for (TS 31.101 block chaining; spec digest §2.2: `80` and
/// `A0` after the Nokia TSY, `00` and `20` UNCONFIRMED).
pub const fn odd_block_name(p1: u8) -> &'static str {
    match p1 {
        0x80 => "first block of authentication data",
        0x00 => "next block of authentication data",
        0xA0 => "retrieve first block of response data",
        0x20 => "retrieve next block of response data",
        _ => "P1 unknown",
    }
}

/// Why command data do not frame as their context requires; the card answers each with its status
/// word (`67 00`, `6A 80`, `98 64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// The data are of the wrong size for the context (`67 00`).
    WrongLength,
    /// A tag, a length or a value is wrong (`6A 80`).
    IncorrectData,
    /// An MBMS mode byte this vocabulary does not know (`98 64`, context not supported).
    UnknownMode,
}

/// `10 RAND 10 AUTN` (§7.1.2.1: the 3G context, and the GBA bootstrap after its tag), exactly.
pub fn parse_rand_autn(data: &[u8]) -> Result<([u8; RAND_LEN], [u8; AUTN_LEN]), FramingError> {
    if data.len() != RAND_AUTN_LEN {
        return Err(FramingError::WrongLength);
    }
    let (rand, rest) = crate::lv(data).ok_or(FramingError::IncorrectData)?;
    let (autn, rest) = crate::lv(rest).ok_or(FramingError::IncorrectData)?;
    let rand = rand.try_into().map_err(|_| FramingError::IncorrectData)?;
    let autn = autn.try_into().map_err(|_| FramingError::IncorrectData)?;
    if !rest.is_empty() {
        return Err(FramingError::IncorrectData);
    }
    Ok((rand, autn))
}

/// `10 RAND 10 AUTN`.
pub fn encode_rand_autn(rand: &[u8; RAND_LEN], autn: &[u8; AUTN_LEN]) -> [u8; RAND_AUTN_LEN] {
    let mut out = [0u8; RAND_AUTN_LEN];
    let (l1, rest) = out.split_at_mut(1);
    let (r, rest) = rest.split_at_mut(RAND_LEN);
    let (l2, a) = rest.split_at_mut(1);
    l1.fill(RAND_LEN as u8);
    r.copy_from_slice(rand);
    l2.fill(AUTN_LEN as u8);
    a.copy_from_slice(autn);
    out
}

/// The command data of the GBA context.
#[derive(Clone, Copy)]
pub enum GbaCommand<'a> {
    /// Bootstrapping Mode: `DD 10 RAND 10 AUTN*` (§7.1.2.3).
    Bootstrap {
        /// RAND.
        rand: [u8; RAND_LEN],
        /// AUTN* (GBA_U: the MAC masked, TS 33.220 §5.3.2).
        autn: [u8; AUTN_LEN],
    },
    /// NAF Derivation Mode: `DE Ln NAF_Id Li IMPI` (§7.1.2.4).
    NafDerivation {
        /// NAF_Id = FQDN ‖ Ua security protocol id (not checked here).
        naf_id: &'a [u8],
        /// IMPI, as its UTF-8 octets; never empty.
        impi: &'a [u8],
    },
}

/// Parse the command data of the GBA context.
pub fn parse_gba(data: &[u8]) -> Result<GbaCommand<'_>, FramingError> {
    let (&tag, body) = data.split_first().ok_or(FramingError::WrongLength)?;
    match tag {
        TAG_GBA_BOOTSTRAPPING => {
            let (rand, autn) = parse_rand_autn(body)?;
            Ok(GbaCommand::Bootstrap { rand, autn })
        }
        TAG_GBA_NAF_DERIVATION => {
            let (naf_id, rest) = crate::lv(body).ok_or(FramingError::WrongLength)?;
            let (impi, rest) = crate::lv(rest).ok_or(FramingError::WrongLength)?;
            if !rest.is_empty() {
                return Err(FramingError::WrongLength);
            }
            if impi.is_empty() {
                return Err(FramingError::IncorrectData);
            }
            Ok(GbaCommand::NafDerivation { naf_id, impi })
        }
        _ => Err(FramingError::IncorrectData),
    }
}

/// `DD 10 RAND 10 AUTN*`.
pub fn encode_gba_bootstrap(rand: &[u8; RAND_LEN], autn: &[u8; AUTN_LEN]) -> [u8; 1 + RAND_AUTN_LEN] {
    let mut out = [TAG_GBA_BOOTSTRAPPING; 1 + RAND_AUTN_LEN];
    if let Some((_, rest)) = out.split_first_mut() {
        rest.copy_from_slice(&encode_rand_autn(rand, autn));
    }
    out
}

/// Bytes of the NAF Derivation Mode command data for these lengths.
pub const fn naf_derivation_len(naf_id_len: usize, impi_len: usize) -> usize {
    3 + naf_id_len + impi_len
}

/// `DE Ln NAF_Id Li IMPI` into `out`; the bytes written. NAF_Id and IMPI take at most 255 bytes each.
pub fn encode_naf_derivation(naf_id: &[u8], impi: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put(out, &mut at, &[&[TAG_GBA_NAF_DERIVATION]])?;
    put_lv(out, &mut at, naf_id)?;
    put_lv(out, &mut at, impi)?;
    Ok(at)
}

/// The command data of the MBMS context, inside `53 L mode …`.
#[derive(Clone, Copy)]
pub enum MbmsCommand<'a> {
    /// MSK Update: a MIKEY MSK message (or a solicited-pull message).
    MskUpdate(&'a [u8]),
    /// MTK Generation: a MIKEY MTK message.
    MtkGeneration(&'a [u8]),
    /// MSK Deletion: Key Domain ID ‖ Key Group.
    MskDeletion {
        /// Key Domain ID.
        key_domain_id: [u8; KEY_DOMAIN_ID_LEN],
        /// Key Group part of the MSK IDs to delete.
        key_group: u16,
    },
    /// MUK Deletion: the MUK ID (coded as in EF.MUK).
    MukDeletion(MukId<'a>),
}

/// Parse the command data of the MBMS context: one `53` object holding the mode byte and its data.
pub fn parse_mbms(data: &[u8]) -> Result<MbmsCommand<'_>, FramingError> {
    if data.is_empty() {
        return Err(FramingError::WrongLength);
    }
    let (object, rest) = Tlv::parse(data).map_err(|_| FramingError::IncorrectData)?;
    if object.tag != u32::from(TAG_MBMS_DATA) || !rest.is_empty() {
        return Err(FramingError::IncorrectData);
    }
    let (&mode, data) = object.value.split_first().ok_or(FramingError::IncorrectData)?;
    match mode {
        MODE_MSK_UPDATE => Ok(MbmsCommand::MskUpdate(data)),
        MODE_MTK_GENERATION => Ok(MbmsCommand::MtkGeneration(data)),
        MODE_MSK_DELETION => {
            let (key_domain_id, key_group) =
                data.split_first_chunk::<KEY_DOMAIN_ID_LEN>().ok_or(FramingError::IncorrectData)?;
            let key_group: [u8; KEY_GROUP_LEN] =
                key_group.try_into().map_err(|_| FramingError::IncorrectData)?;
            Ok(MbmsCommand::MskDeletion {
                key_domain_id: *key_domain_id,
                key_group: u16::from_be_bytes(key_group),
            })
        }
        MODE_MUK_DELETION => match parse_muk_id(data) {
            Some((id, [])) => Ok(MbmsCommand::MukDeletion(id)),
            _ => Err(FramingError::IncorrectData),
        },
        _ => Err(FramingError::UnknownMode),
    }
}

/// Bytes of the MBMS command data for `data_len` bytes of mode data.
pub const fn mbms_len(data_len: usize) -> usize {
    crate::tlv_len(1 + data_len)
}

/// `53 L mode data` into `out`; the bytes written.
pub fn encode_mbms(mode: u8, data: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put(out, &mut at, &[&[TAG_MBMS_DATA]])?;
    at += tlv::write_length(1 + data.len(), out.get_mut(at..).ok_or(EncodeError::BufferTooSmall)?)
        .map_err(|_| EncodeError::BufferTooSmall)?;
    put(out, &mut at, &[&[mode], data])?;
    Ok(at)
}

/// The data of MSK Deletion mode: Key Domain ID ‖ Key Group.
pub fn msk_deletion_data(
    key_domain_id: &[u8; KEY_DOMAIN_ID_LEN],
    key_group: u16,
) -> [u8; KEY_DOMAIN_ID_LEN + KEY_GROUP_LEN] {
    let mut out = [0u8; KEY_DOMAIN_ID_LEN + KEY_GROUP_LEN];
    let (kd, kg) = out.split_at_mut(KEY_DOMAIN_ID_LEN);
    kd.copy_from_slice(key_domain_id);
    kg.copy_from_slice(&key_group.to_be_bytes());
    out
}

/// Writes the head of an MBMS answer, `53 L DB`, for `after_db` bytes following `DB`; the bytes written.
pub fn encode_mbms_answer_head(after_db: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put(out, &mut at, &[&[TAG_MBMS_DATA]])?;
    at += tlv::write_length(1 + after_db, out.get_mut(at..).ok_or(EncodeError::BufferTooSmall)?)
        .map_err(|_| EncodeError::BufferTooSmall)?;
    put(out, &mut at, &[&[TAG_SUCCESS]])?;
    Ok(at)
}

/// Why an MBMS answer does not frame as `53 L DB [data]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbmsAnswerError {
    /// No BER-TLV object at the front.
    NoObject,
    /// Not one `53` (or `73`) object and nothing else.
    NotOneObject,
    /// The object does not start with `DB`.
    NoSuccessTag,
}

/// The data after `DB` of an MBMS answer `53 L DB [data]` (`73` accepted too, as the Nokia TSY does).
pub fn parse_mbms_answer(data: &[u8]) -> Result<&[u8], MbmsAnswerError> {
    let (object, rest) = Tlv::parse(data).map_err(|_| MbmsAnswerError::NoObject)?;
    let tag_ok = object.tag == u32::from(TAG_MBMS_DATA) || object.tag == u32::from(TAG_MBMS_DATA_BER);
    if !tag_ok || !rest.is_empty() {
        return Err(MbmsAnswerError::NotOneObject);
    }
    match object.value.split_first() {
        Some((&TAG_SUCCESS, after)) => Ok(after),
        _ => Err(MbmsAnswerError::NoSuccessTag),
    }
}

/// The value of the BER-TLV object at the front of an ODD-instruction data field or answer, as far
/// as it is there (for display of damaged data).
pub fn odd_object_value(data: &[u8]) -> Option<&[u8]> {
    Tlv::parse(data).ok().map(|(object, _)| object.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ef::vectors::{NAF_ID, RAND, h};

    const AUTN_STAR: &str = "55f328b43577b9b98c7f3f0d723fb244";

    #[test]
    fn gba_bootstrap_apdu_of_the_spec_digest() {
        // Spec digest §8.4: 00 88 00 84 23 DD 10 RAND 10 AUTN* 00.
        let rand: [u8; 16] = h(RAND).try_into().unwrap();
        let autn: [u8; 16] = h(AUTN_STAR).try_into().unwrap();
        let data = encode_gba_bootstrap(&rand, &autn);
        assert_eq!(data.to_vec(), h(&format!("DD 10 {RAND} 10 {AUTN_STAR}")));
        assert_eq!(data.len(), 0x23);
        match parse_gba(&data) {
            Ok(GbaCommand::Bootstrap { rand: r, autn: a }) => assert_eq!((r, a), (rand, autn)),
            _ => panic!("not a bootstrap"),
        }
        // The 3G context's data is the same without the tag (§7.1.2.1).
        assert_eq!(parse_rand_autn(&data[1..]).map(|(r, _)| r), Ok(rand));
        assert_eq!(parse_rand_autn(&data[..30]).err(), Some(FramingError::WrongLength));
        let mut bad = data;
        bad[1] = 0x0F;
        assert_eq!(parse_rand_autn(&bad[1..]).err(), Some(FramingError::IncorrectData));
    }

    #[test]
    fn naf_derivation_of_the_spec_digest() {
        // Spec digest §8.4: DE 15 NAF_Id 26 IMPI (38 bytes); Lc = 0x3E.
        let impi = b"001010123456789@ims.mnc001.mcc001.3gpp";
        assert_eq!(impi.len(), 38);
        let mut out = [0u8; 80];
        let n = encode_naf_derivation(&h(NAF_ID), impi, &mut out).unwrap();
        assert_eq!(n, 0x3E);
        assert_eq!(naf_derivation_len(21, 38), 0x3E);
        let mut expected = h(&format!("DE 15 {NAF_ID} 26"));
        expected.extend_from_slice(impi);
        assert_eq!(out[..n], expected[..]);
        match parse_gba(&out[..n]) {
            Ok(GbaCommand::NafDerivation { naf_id, impi: i }) => {
                assert_eq!((naf_id, i), (&h(NAF_ID)[..], &impi[..]))
            }
            _ => panic!("not a NAF derivation"),
        }
        assert_eq!(parse_gba(&h("DE 01 61 00")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_gba(&h("DE 01 61 01 62 00")).err(), Some(FramingError::WrongLength));
        assert_eq!(parse_gba(&h("DE 05 61")).err(), Some(FramingError::WrongLength));
        assert_eq!(parse_gba(&h("DF 00")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_gba(&[]).err(), Some(FramingError::WrongLength));
        assert_eq!(encode_naf_derivation(&[0; 256], b"x", &mut [0; 300]), Err(EncodeError::ValueTooLong));
    }

    #[test]
    fn mbms_modes_as_the_nokia_tsy_frames_them() {
        // Spec digest §2.6: 53 Lm mode data; MSK Deletion is Key Domain ID (3) ‖ Key Group (2).
        let del = msk_deletion_data(&[0x00, 0x10, 0x01], 0x0001);
        let mut out = [0u8; 16];
        let n = encode_mbms(MODE_MSK_DELETION, &del, &mut out).unwrap();
        assert_eq!(out[..n], h("53 06 03 001001 0001")[..]);
        match parse_mbms(&out[..n]) {
            Ok(MbmsCommand::MskDeletion { key_domain_id, key_group }) => {
                assert_eq!((key_domain_id, key_group), ([0x00, 0x10, 0x01], 1))
            }
            _ => panic!("not MSK Deletion"),
        }
        // MUK Deletion carries the MUK ID of EF.MUK.
        let muk = h("53 09 04 A0 06 80 01 63 82 01 61");
        match parse_mbms(&muk) {
            Ok(MbmsCommand::MukDeletion(id)) => assert_eq!((id.idr, id.idi), (&b"c"[..], &b"a"[..])),
            _ => panic!("not MUK Deletion"),
        }
        // A long MIKEY message takes the length 82 xx xx (ISO/IEC 8825-1): 299 + 1 = 0x012C.
        let mikey = [0x01u8; 299];
        let mut long = [0u8; 310];
        let n = encode_mbms(MODE_MTK_GENERATION, &mikey, &mut long).unwrap();
        assert_eq!((long[..5].to_vec(), n, mbms_len(299)), (h("53 82 01 2C 02"), 304, 304));
        assert!(matches!(parse_mbms(&long[..n]), Ok(MbmsCommand::MtkGeneration(m)) if m == mikey));
        assert!(matches!(parse_mbms(&h("53 02 01 AA")), Ok(MbmsCommand::MskUpdate(&[0xAA]))));
        assert_eq!(parse_mbms(&h("53 01 09")).err(), Some(FramingError::UnknownMode));
        assert_eq!(parse_mbms(&h("53 05 03 001001 00")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_mbms(&h("73 02 01 AA")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_mbms(&h("53 02 01 AA 00")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_mbms(&h("53 00")).err(), Some(FramingError::IncorrectData));
        assert_eq!(parse_mbms(&[]).err(), Some(FramingError::WrongLength));
    }

    #[test]
    fn mbms_answers() {
        // Spec digest §2.6: 53 L DB [data]; the Nokia TSY accepts 73 too.
        let mut head = [0u8; 8];
        let n = encode_mbms_answer_head(30, &mut head).unwrap();
        assert_eq!(head[..n], h("53 1F DB")[..]);
        let n = encode_mbms_answer_head(200, &mut head).unwrap();
        assert_eq!(head[..n], h("53 81 C9 DB")[..]);
        assert_eq!(parse_mbms_answer(&h("53 03 DB 0102")), Ok(&[1u8, 2][..]));
        assert_eq!(parse_mbms_answer(&h("73 01 DB")), Ok(&[][..]));
        assert_eq!(parse_mbms_answer(&h("53 01 DC")), Err(MbmsAnswerError::NoSuccessTag));
        assert_eq!(parse_mbms_answer(&h("54 01 DB")), Err(MbmsAnswerError::NotOneObject));
        assert_eq!(parse_mbms_answer(&h("53 01 DB 00")), Err(MbmsAnswerError::NotOneObject));
        assert_eq!(parse_mbms_answer(&h("53 05 DB")), Err(MbmsAnswerError::NoObject));
    }

    #[test]
    fn context_names() {
        // Tables 7.1.2-1 and 7.1.2-2: P2 b3..b1.
        assert_eq!(context_name(P2_GBA_CONTEXT), "GBA context");
        assert_eq!(context_name(P2_MBMS_CONTEXT), "MBMS context");
        assert_eq!(context_name(P2_3G_CONTEXT), "3G context");
        assert_eq!(context_name(0x87), "RFU context");
        assert_eq!(odd_block_name(0xA0), "retrieve first block of response data");
    }
}
