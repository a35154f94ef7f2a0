//! RTP and RTCP header parsing (RFC 3550 §5.1, §5.3.1, §6.4), as far as SRTP needs it: the
//! encrypted part of an SRTP packet starts after the CSRC list and the header extension
//! (RFC 3711 §3.1).

use crate::error::{Error, Result};

/// The RTP and RTCP version this crate handles (RFC 3550 §5.1).
pub const RTP_VERSION: u8 = 2;
/// Fixed RTP header length.
pub const RTP_FIXED_HEADER_LEN: usize = 12;
/// RTCP header plus sender SSRC, sent in the clear in SRTCP (RFC 3711 §3.4).
pub const RTCP_HEADER_LEN: usize = 8;

/// The fields of an RTP header, borrowed from nothing: [`RtpHeader::parse`] copies the fixed
/// fields and computes where the payload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// P: the payload ends in padding whose last byte is the padding length.
    pub padding: bool,
    /// X: a header extension follows the CSRC list.
    pub extension: bool,
    /// CC: number of CSRC identifiers.
    pub csrc_count: u8,
    /// M.
    pub marker: bool,
    /// PT.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Length of the fixed header, the CSRC list and the header extension: where the payload (the
    /// SRTP encrypted portion) starts.
    pub header_len: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

fn too_short(len: usize, needed: usize) -> Error {
    Error::TooShort { len, needed }
}

impl RtpHeader {
    /// Parses the header of `packet` and checks that the CSRC list and the header extension fit.
    pub fn parse(packet: &[u8]) -> Result<Self> {
        let len = packet.len();
        let first = *packet.first().ok_or(too_short(len, RTP_FIXED_HEADER_LEN))?;
        let version = first >> 6;
        if version != RTP_VERSION {
            return Err(Error::BadVersion(version));
        }
        if len < RTP_FIXED_HEADER_LEN {
            return Err(too_short(len, RTP_FIXED_HEADER_LEN));
        }
        let csrc_count = first & 0x0f;
        let extension = first & 0x10 != 0;
        let mut header_len = RTP_FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if extension {
            // 16-bit profile-defined field, 16-bit length in 32-bit words (RFC 3550 §5.3.1).
            let words = be16(packet, header_len + 2).ok_or(too_short(len, header_len + 4))?;
            header_len += 4 + 4 * usize::from(words);
        }
        if len < header_len {
            return Err(too_short(len, header_len));
        }
        let second = packet.get(1).copied().unwrap_or(0);
        Ok(RtpHeader {
            padding: first & 0x20 != 0,
            extension,
            csrc_count,
            marker: second & 0x80 != 0,
            payload_type: second & 0x7f,
            sequence_number: be16(packet, 2).unwrap_or(0),
            timestamp: be32(packet, 4).unwrap_or(0),
            ssrc: be32(packet, 8).unwrap_or(0),
            header_len,
        })
    }

    /// The CSRC identifiers of `packet` (the packet this header was parsed from).
    pub fn csrcs<'a>(&self, packet: &'a [u8]) -> impl Iterator<Item = u32> + 'a {
        let n = usize::from(self.csrc_count);
        packet
            .get(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + 4 * n)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension of `packet` as (profile-defined 16 bits, extension data), if X is set.
    pub fn extension<'a>(&self, packet: &'a [u8]) -> Option<(u16, &'a [u8])> {
        if !self.extension {
            return None;
        }
        let at = RTP_FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count);
        Some((be16(packet, at)?, packet.get(at + 4..self.header_len)?))
    }

    /// The payload of `packet` without the padding (RFC 3550 §5.1: the last padding byte counts
    /// the padding bytes, itself included). SRTP keeps padding inside the encrypted portion, so
    /// call this on the unprotected packet.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> Result<&'a [u8]> {
        let body = packet.get(self.header_len..).ok_or(too_short(packet.len(), self.header_len))?;
        if !self.padding {
            return Ok(body);
        }
        let pad = usize::from(*body.last().ok_or(Error::BadPadding)?);
        if pad == 0 || pad > body.len() {
            return Err(Error::BadPadding);
        }
        Ok(&body[..body.len() - pad])
    }
}

/// The first 8 bytes of an RTCP (compound) packet, which SRTCP leaves in the clear (RFC 3711 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// P.
    pub padding: bool,
    /// RC / SC / subtype field.
    pub count: u8,
    /// PT (200 SR, 201 RR, ...).
    pub packet_type: u8,
    /// Length of the first RTCP packet in 32-bit words minus one.
    pub length: u16,
    /// SSRC of the sender; SRTCP keeps its stream state under this SSRC.
    pub ssrc: u32,
}

impl RtcpHeader {
    /// Parses the first 8 bytes of `packet`.
    pub fn parse(packet: &[u8]) -> Result<Self> {
        let len = packet.len();
        let first = *packet.first().ok_or(too_short(len, RTCP_HEADER_LEN))?;
        let version = first >> 6;
        if version != RTP_VERSION {
            return Err(Error::BadVersion(version));
        }
        if len < RTCP_HEADER_LEN {
            return Err(too_short(len, RTCP_HEADER_LEN));
        }
        Ok(RtcpHeader {
            padding: first & 0x20 != 0,
            count: first & 0x1f,
            packet_type: packet.get(1).copied().unwrap_or(0),
            length: be16(packet, 2).unwrap_or(0),
            ssrc: be32(packet, 4).unwrap_or(0),
        })
    }
}
