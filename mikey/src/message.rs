//! Whole MIKEY messages (RFC 3830 §6): a validated borrowed view and a builder into a caller buffer.

use crate::Error;
use crate::codec::{Reader, Writer};
use crate::payload::{
    GeneralExtension, Hdr, Id, Kemac, KeyIds, Payload, PayloadType, Rand, SecurityPolicy, Timestamp,
    Verification,
};

/// A parsed MIKEY message: the header and a chain of payloads, all borrowed from the input.
///
/// [`Message::parse`] walks the whole chain once, so a `Message` is known to be well framed: the
/// payload iterator cannot fail and the last payload ends exactly at the end of the input.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    hdr: Hdr<'a>,
    body: usize,
    first: u8,
}

impl<'a> Message<'a> {
    /// Parses and validates the framing of a whole message. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let (hdr, first) = Hdr::parse(&mut r)?;
        let body = r.pos();
        let mut next = first;
        while next != 0 {
            let (_, n) = Payload::parse(next, &mut r)?;
            next = n;
        }
        if !r.is_empty() {
            return Err(Error::TrailingBytes);
        }
        Ok(Message { bytes, hdr, body, first })
    }

    /// The common header.
    pub fn hdr(&self) -> &Hdr<'a> {
        &self.hdr
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payloads after the header, in order.
    pub fn payloads(&self) -> Payloads<'a> {
        let rest = self.bytes.get(self.body..).unwrap_or(&[]);
        Payloads { r: Reader::new(rest), next: self.first }
    }

    /// The last payload, if any.
    pub fn last_payload(&self) -> Option<Payload<'a>> {
        self.payloads().last()
    }

    /// The first T payload.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.payloads().find_map(|p| match p {
            Payload::Timestamp(t) => Some(t),
            _ => None,
        })
    }

    /// The first RAND payload.
    pub fn rand(&self) -> Option<Rand<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Rand(r) => Some(r),
            _ => None,
        })
    }

    /// The first KEMAC payload.
    pub fn kemac(&self) -> Option<Kemac<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Kemac(k) => Some(k),
            _ => None,
        })
    }

    /// The first V payload.
    pub fn verification(&self) -> Option<Verification<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Verification(v) => Some(v),
            _ => None,
        })
    }

    /// The ID payloads in order (for a PSK message: IDi, then IDr).
    pub fn ids(&self) -> impl Iterator<Item = Id<'a>> + use<'a> {
        self.payloads().filter_map(|p| match p {
            Payload::Id(id) => Some(id),
            _ => None,
        })
    }

    /// The SP payloads in order.
    pub fn security_policies(&self) -> impl Iterator<Item = SecurityPolicy<'a>> + use<'a> {
        self.payloads().filter_map(|p| match p {
            Payload::SecurityPolicy(sp) => Some(sp),
            _ => None,
        })
    }

    /// The Key ID information of the first Key ID general extension (RFC 4563 §4).
    pub fn key_ids(&self) -> Option<KeyIds<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::GeneralExtension(GeneralExtension::KeyIdInfo(ids)) => Some(ids),
            _ => None,
        })
    }

    /// How many payloads of a type the message carries.
    pub fn count(&self, t: PayloadType) -> usize {
        self.payloads().filter(|p| p.payload_type() == t).count()
    }
}

/// Iterator over the payloads of a validated [`Message`].
#[derive(Clone)]
pub struct Payloads<'a> {
    r: Reader<'a>,
    next: u8,
}

impl<'a> Iterator for Payloads<'a> {
    type Item = Payload<'a>;

    fn next(&mut self) -> Option<Payload<'a>> {
        if self.next == 0 {
            return None;
        }
        match Payload::parse(self.next, &mut self.r) {
            Ok((p, n)) => {
                self.next = n;
                Some(p)
            }
            // Unreachable for a validated message; end the iteration cleanly.
            Err(_) => {
                self.next = 0;
                None
            }
        }
    }
}

/// Builds a MIKEY message into a caller buffer: the header first, then payloads appended one by
/// one; each append patches the previous payload's next-payload byte.
///
/// A failed append (buffer too small, value too long) leaves the message built so far unchanged.
pub struct MessageBuilder<'buf> {
    pub(crate) buf: &'buf mut [u8],
    pub(crate) pos: usize,
    /// Index of the next-payload byte of the last payload written (2 for the header).
    pub(crate) next_pos: usize,
    /// A payload carrying the message MAC (KEMAC, V) has been written; nothing may follow.
    pub(crate) sealed: bool,
}

/// Offset of the header's next-payload byte.
const HDR_NEXT_POS: usize = 2;

impl<'buf> MessageBuilder<'buf> {
    /// Starts a message with its common header.
    pub fn new(buf: &'buf mut [u8], hdr: &Hdr<'_>) -> Result<Self, Error> {
        let mut w = Writer::new(buf);
        hdr.encode(&mut w, 0)?;
        let pos = w.pos();
        Ok(MessageBuilder { buf, pos, next_pos: HDR_NEXT_POS, sealed: false })
    }

    /// Appends a payload. A KEMAC or V payload ends the message.
    pub fn push(&mut self, p: &Payload<'_>) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let mut w = Writer::at(self.buf, self.pos);
        p.encode(&mut w, 0)?;
        let end = w.pos();
        self.link(p.payload_type(), end)?;
        if matches!(p, Payload::Kemac(_) | Payload::Verification(_)) {
            self.sealed = true;
        }
        Ok(self)
    }

    /// Records that a payload of type `t` was written at `self.pos..end`.
    pub(crate) fn link(&mut self, t: PayloadType, end: usize) -> Result<(), Error> {
        let slot = self.buf.get_mut(self.next_pos).ok_or(Error::BufferTooSmall)?;
        *slot = t as u8;
        self.next_pos = self.pos;
        self.pos = end;
        Ok(())
    }

    /// Length written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// True if nothing has been written (never the case after [`MessageBuilder::new`]).
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The message built so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Ends the message; returns its length.
    pub fn finish(self) -> usize {
        self.pos
    }
}
