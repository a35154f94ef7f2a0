//! BER-TLV data objects of ISO/IEC 7816-4 §5.2 and ISO/IEC 8825-1 (tags of one to three bytes,
//! definite lengths of one to four bytes).
//!
//! [`Tlv::parse`] and [`Iter`] read without allocating (the card uses them); with the `std`
//! feature, [`build`] and [`build_constructed`] encode through `iso7816-tlv` for the ME side.

/// Why a BER-TLV data object could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvError {
    /// The input ended inside a tag, a length or a value.
    Truncated,
    /// A tag longer than three bytes, or a tag `00`/`FF` (padding, not a data object).
    InvalidTag,
    /// An indefinite length (`80`) or a length field longer than four bytes.
    InvalidLength,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl core::fmt::Display for TlvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TlvError::Truncated => "BER-TLV truncated",
            TlvError::InvalidTag => "BER-TLV tag invalid",
            TlvError::InvalidLength => "BER-TLV length invalid",
            TlvError::BufferTooSmall => "buffer too small for BER-TLV",
        })
    }
}

impl core::error::Error for TlvError {}

/// One data object: its tag (the tag bytes read as a big-endian number, so `62` is `0x62` and
/// `5F2D` is `0x5F2D`) and its value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag bytes as a big-endian number.
    pub tag: u32,
    /// The value field.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Read one data object from the front of `bytes`; return it and the bytes after it.
    pub fn parse(bytes: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        let first = *bytes.first().ok_or(TlvError::Truncated)?;
        if first == 0x00 || first == 0xFF {
            return Err(TlvError::InvalidTag);
        }
        let mut at = 1;
        let mut tag = first as u32;
        if first & 0x1F == 0x1F {
            loop {
                let b = *bytes.get(at).ok_or(TlvError::Truncated)?;
                at += 1;
                tag = (tag << 8) | b as u32;
                if b & 0x80 == 0 {
                    break;
                }
                if at >= 3 {
                    return Err(TlvError::InvalidTag);
                }
            }
        }
        let l0 = *bytes.get(at).ok_or(TlvError::Truncated)?;
        at += 1;
        let len = if l0 < 0x80 {
            l0 as usize
        } else {
            let n = (l0 & 0x7F) as usize;
            if n == 0 || n > 4 {
                return Err(TlvError::InvalidLength);
            }
            let field = bytes.get(at..at + n).ok_or(TlvError::Truncated)?;
            at += n;
            field.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize)
        };
        let end = at.checked_add(len).ok_or(TlvError::InvalidLength)?;
        let (head, rest) = bytes.split_at_checked(end).ok_or(TlvError::Truncated)?;
        let value = head.get(at..).ok_or(TlvError::Truncated)?;
        Ok((Tlv { tag, value }, rest))
    }

    /// Whether the tag marks a constructed object (bit 6 of its first byte).
    pub fn is_constructed(&self) -> bool {
        let first = if self.tag > 0xFFFF {
            (self.tag >> 16) as u8
        } else if self.tag > 0xFF {
            (self.tag >> 8) as u8
        } else {
            self.tag as u8
        };
        first & 0x20 != 0
    }

    /// The data objects inside this one's value.
    pub fn children(&self) -> Iter<'a> {
        Iter::new(self.value)
    }
}

/// Iterates over consecutive data objects. Padding bytes `FF` (and `00`) between or after objects
/// end the iteration, as in EF records padded with `FF`.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iter<'a> {
    /// Iterate over the objects in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Iter { rest: bytes }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rest.first() {
            None | Some(0xFF) | Some(0x00) => None,
            Some(_) => match Tlv::parse(self.rest) {
                Ok((tlv, rest)) => {
                    self.rest = rest;
                    Some(Ok(tlv))
                }
                Err(e) => {
                    self.rest = &[];
                    Some(Err(e))
                }
            },
        }
    }
}

/// The first object with `tag` among the objects in `bytes` (not descending into children).
pub fn find(bytes: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    for tlv in Iter::new(bytes) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// The number of bytes a BER length field for `len` takes.
pub const fn length_field_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xFF {
        2
    } else if len <= 0xFFFF {
        3
    } else {
        4
    }
}

/// Write a BER length field; return the bytes written.
pub fn write_length(len: usize, out: &mut [u8]) -> Result<usize, TlvError> {
    let n = length_field_len(len);
    if len > 0xFF_FFFF {
        return Err(TlvError::InvalidLength);
    }
    let out = out.get_mut(..n).ok_or(TlvError::BufferTooSmall)?;
    let (first, rest) = out.split_first_mut().ok_or(TlvError::BufferTooSmall)?;
    if n == 1 {
        *first = len as u8;
    } else {
        *first = 0x80 | (n as u8 - 1);
        for (i, b) in rest.iter_mut().enumerate() {
            *b = (len >> (8 * (n - 2 - i))) as u8;
        }
    }
    Ok(n)
}

/// Write a primitive or constructed object with a one- or two-byte tag into `out`, without
/// allocating; return the bytes written.
pub fn write(tag: u16, value: &[u8], out: &mut [u8]) -> Result<usize, TlvError> {
    let tag_bytes = tag.to_be_bytes();
    let tag_bytes: &[u8] = if tag > 0xFF { &tag_bytes } else { &tag_bytes[1..] };
    let mut at = tag_bytes.len();
    out.get_mut(..at).ok_or(TlvError::BufferTooSmall)?.copy_from_slice(tag_bytes);
    at += write_length(value.len(), out.get_mut(at..).ok_or(TlvError::BufferTooSmall)?)?;
    out.get_mut(at..at + value.len()).ok_or(TlvError::BufferTooSmall)?.copy_from_slice(value);
    Ok(at + value.len())
}

/// Encode a primitive data object (the tag must be primitive) through `iso7816-tlv` (ME side).
#[cfg(feature = "std")]
pub fn build(tag: u16, value: &[u8]) -> Result<Vec<u8>, iso7816_tlv::TlvError> {
    use iso7816_tlv::ber::{Tag, Tlv, Value};
    let tag = Tag::try_from(tag)?;
    Ok(Tlv::new(tag, Value::Primitive(value.to_vec()))?.to_vec())
}

/// Encode a constructed data object from already-encoded children through `iso7816-tlv`.
#[cfg(feature = "std")]
pub fn build_constructed(tag: u16, children: &[Vec<u8>]) -> Result<Vec<u8>, iso7816_tlv::TlvError> {
    use iso7816_tlv::ber::{Tag, Tlv, Value};
    let tag = Tag::try_from(tag)?;
    let mut parsed = Vec::with_capacity(children.len());
    for c in children {
        parsed.push(Tlv::from_bytes(c)?);
    }
    Ok(Tlv::new(tag, Value::Constructed(parsed))?.to_vec())
}
