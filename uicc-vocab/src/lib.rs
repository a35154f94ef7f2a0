//! The UICC's vocabulary (ETSI TS 102 221, 3GPP TS 31.102, TS 31.103): what the card, the ME and
//! the APDU trace decoder must all say the same way.
//!
//! * [`files`]: file identifiers, AIDs and the paths the project uses;
//! * [`ef`]: codecs of the EFs the project reads or writes, each decoding borrowed bytes and
//!   encoding into a caller buffer, each with its known-answer vectors;
//! * [`authenticate`]: the AUTHENTICATE command data and response framing of every context the
//!   card supports (3G, GBA bootstrapping and NAF derivation, the four MBMS modes);
//! * [`open_values`]: the card-interface values the specifications leave open.
//!
//! `no_std`, allocation-free and panic-free on any input.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod authenticate;
pub mod ef;
pub mod files;
pub mod open_values;

/// Why an encoder refused: the output buffer is too small, or a value is too long for its length
/// field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer cannot hold the encoding.
    BufferTooSmall,
    /// A value is longer than its length field can say (255 bytes for a one-byte length).
    ValueTooLong,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "output buffer too small",
            EncodeError::ValueTooLong => "value too long for its length field",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Writes `parts` one after the other at `*at` in `out`, advancing `*at`.
pub(crate) fn put(out: &mut [u8], at: &mut usize, parts: &[&[u8]]) -> Result<(), EncodeError> {
    for part in parts {
        let end = at.checked_add(part.len()).ok_or(EncodeError::BufferTooSmall)?;
        out.get_mut(*at..end).ok_or(EncodeError::BufferTooSmall)?.copy_from_slice(part);
        *at = end;
    }
    Ok(())
}

/// Writes `tag L value` with a BER length at `*at`, advancing `*at`.
pub(crate) fn put_tlv(out: &mut [u8], at: &mut usize, tag: u8, value: &[u8]) -> Result<(), EncodeError> {
    let n = apdu::tlv::write(u16::from(tag), value, out.get_mut(*at..).ok_or(EncodeError::BufferTooSmall)?)
        .map_err(|_| EncodeError::BufferTooSmall)?;
    *at += n;
    Ok(())
}

/// Bytes `tag L value` takes with a one-byte tag and a BER length.
pub const fn tlv_len(value_len: usize) -> usize {
    1 + apdu::tlv::length_field_len(value_len) + value_len
}

/// `L value` with a one-byte length at the front of `bytes`: the value and what follows.
pub fn lv(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    rest.split_at_checked(usize::from(len))
}

/// A chain of one-byte length-value fields, read as far as it goes: a field whose length runs past
/// the end yields what is left and ends the chain (for display of damaged data).
#[derive(Debug, Clone)]
pub struct LvFields<'a>(&'a [u8]);

impl<'a> LvFields<'a> {
    /// The fields of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        LvFields(data)
    }
}

impl<'a> Iterator for LvFields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        match rest.split_at_checked(usize::from(len)) {
            Some((value, after)) => {
                self.0 = after;
                Some(value)
            }
            None => {
                self.0 = &[];
                Some(rest)
            }
        }
    }
}

/// Writes `L value` with a one-byte length at `*at`, advancing `*at`.
pub(crate) fn put_lv(out: &mut [u8], at: &mut usize, value: &[u8]) -> Result<(), EncodeError> {
    let len = u8::try_from(value.len()).map_err(|_| EncodeError::ValueTooLong)?;
    put(out, at, &[&[len], value])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lv_fields_read_as_far_as_they_go() {
        let f: Vec<&[u8]> = LvFields::new(&[2, 1, 2, 1, 3, 5, 9]).collect();
        assert_eq!(f, [&[1u8, 2][..], &[3], &[9]]);
        assert_eq!(LvFields::new(&[]).count(), 0);
        assert_eq!(lv(&[2, 1, 2, 3]), Some((&[1u8, 2][..], &[3u8][..])));
        assert_eq!(lv(&[3, 1]), None);
    }
}
