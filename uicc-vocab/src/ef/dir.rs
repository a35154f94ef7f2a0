//! EF.DIR records (TS 102 221 §13.1, ISO/IEC 7816-4 §8.2.1.1): one application template `61 L`
//! holding the AID (`4F`) and the label (`50`), padded with `FF`.

use super::find;

/// Tag of an application template.
pub const TAG_APPLICATION_TEMPLATE: u8 = 0x61;
/// Tag of the AID inside it.
pub const TAG_AID: u8 = 0x4F;
/// Tag of the application label inside it.
pub const TAG_LABEL: u8 = 0x50;
/// Longest AID (ISO/IEC 7816-4 §8.2.1.2).
pub const AID_MAX: usize = 16;

/// Writes the application template of `aid` and `label` at the start of `out`; the bytes written.
/// `None` if the AID is longer than 16 bytes, the template longer than 127, or `out` too small.
pub fn encode_application_template(aid: &[u8], label: &[u8], out: &mut [u8]) -> Option<usize> {
    let inner = 2 + aid.len() + 2 + label.len();
    if aid.len() > AID_MAX || inner > 0x7F {
        return None;
    }
    let mut at = 0;
    crate::put(
        out,
        &mut at,
        &[
            &[TAG_APPLICATION_TEMPLATE, inner as u8, TAG_AID, aid.len() as u8],
            aid,
            &[TAG_LABEL, label.len() as u8],
            label,
        ],
    )
    .ok()?;
    Some(at)
}

/// The AID of an EF.DIR record; `None` for an erased record or one without an AID.
pub fn decode_aid(record: &[u8]) -> Option<&[u8]> {
    find(find(record, TAG_APPLICATION_TEMPLATE)?, TAG_AID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_record_vectors() {
        // TS 102 221 §13.1: 61 L { 4F L AID, 50 L label }; the USIM AID of TS 101 220 Annex E.
        let aid = crate::ef::vectors::h("a0000000871002ffffffff8907090000");
        let expected = crate::ef::vectors::h("61 18 4F 10 a0000000871002ffffffff8907090000 50 04 5553494d");
        let mut out = [0xFFu8; 40];
        assert_eq!(encode_application_template(&aid, b"USIM", &mut out), Some(26));
        assert_eq!(out[..26], expected[..]);
        assert_eq!(decode_aid(&out), Some(&aid[..]));
        assert_eq!(decode_aid(&[0xFF; 40]), None);
        assert_eq!(encode_application_template(&[0; 17], b"", &mut out), None);
        assert_eq!(encode_application_template(&aid, b"USIM", &mut [0u8; 20]), None);
    }
}
