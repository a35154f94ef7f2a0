//! Whole MIKEY messages and payload chains (RFC 3830 §6, RFC 6043 §4 and §6.10): a validated
//! borrowed view and a builder into a caller buffer, for the messages of both RFCs.

use crate::Error;
use crate::codec::{Reader, Writer};
use crate::payload::{
    DataType, ErrorNo, GeneralExtension, Hdr, Id, IdRole, Idr, Kemac, KeyIds, MacAlg, Payload, PayloadSet,
    PayloadType, Rand, SecurityPolicy, Timestamp, Verification,
};
use crate::ticket::{Ticket, TicketPolicy};

/// A parsed MIKEY message: the header and a chain of payloads, all borrowed from the input.
///
/// [`Message::parse`] (RFC 3830 payloads) and [`Message::parse_ticket`] (with the RFC 6043 ones)
/// walk the whole chain once, so a `Message` is known to be well framed: the payload iterator
/// cannot fail and the last payload ends exactly at the end of the input.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    hdr: Hdr<'a>,
    body: usize,
    first: u8,
    set: PayloadSet,
}

/// Walks a payload chain from the payload type `next` to its end; the input must end with it.
pub(crate) fn walk(next: u8, r: &mut Reader<'_>, set: PayloadSet) -> Result<(), Error> {
    let mut next = next;
    let mut count = 0usize;
    while next != 0 {
        let (_, n) = Payload::parse(next, r, set)?;
        next = n;
        count += 1;
        if count > set.max_payloads() {
            return Err(Error::FieldTooLong);
        }
    }
    if !r.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

impl<'a> Message<'a> {
    /// Parses and validates the framing of a whole message with the payloads of RFC 3830 and
    /// RFC 4563 (and IDR). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_with(bytes, PayloadSet::Rfc3830)
    }

    /// Parses and validates a MIKEY-TICKET (or plain MIKEY) message: the payloads of RFC 3830 and
    /// those of RFC 6043 (TR, RANDR, TP, TICKET). Never panics.
    pub fn parse_ticket(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_with(bytes, PayloadSet::Rfc6043)
    }

    /// Parses and validates a message with the payloads of `set`. Never panics.
    pub fn parse_with(bytes: &'a [u8], set: PayloadSet) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let (hdr, first) = Hdr::parse(&mut r)?;
        let body = r.pos();
        walk(first, &mut r, set)?;
        Ok(Message { bytes, hdr, body, first, set })
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
        Payloads { r: Reader::new(rest), next: self.first, set: self.set }
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

    /// The first IDR payload of a role (RFC 6043 §6.6).
    pub fn idr(&self, role: IdRole) -> Option<Idr<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Idr(i) if i.role == role => Some(i),
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

    /// The first RANDR payload of a role (RFC 6043 §6.8).
    pub fn randr(&self, role: u8) -> Option<&'a [u8]> {
        self.payloads().find_map(|p| match p {
            Payload::Randr(r) if r.role == role => Some(r.rand),
            _ => None,
        })
    }

    /// The TP payload (RFC 6043 §6.10).
    pub fn tp(&self) -> Option<TicketPolicy<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Tp(t) => Some(t),
            _ => None,
        })
    }

    /// The TICKET payload (RFC 6043 §6.10).
    pub fn ticket(&self) -> Option<Ticket<'a>> {
        self.payloads().find_map(|p| match p {
            Payload::Ticket(t) => Some(t),
            _ => None,
        })
    }

    /// The ERR payload's error number, for an error message.
    pub fn error_no(&self) -> Option<ErrorNo> {
        self.payloads().find_map(|p| match p {
            Payload::Err(e) => Some(e.error_no),
            _ => None,
        })
    }

    /// The last payload's MAC when it is a V payload with HMAC-SHA-1-160.
    pub fn v_mac(&self) -> Option<&'a [u8]> {
        match self.payloads().last() {
            Some(Payload::Verification(v)) if v.mac_alg == MacAlg::HmacSha1_160 => Some(v.mac),
            _ => None,
        }
    }

    /// How many payloads of a type the message carries.
    pub fn count(&self, t: PayloadType) -> usize {
        self.payloads().filter(|p| p.payload_type() == t).count()
    }

    /// The bytes a V MAC covers: the message without its MAC field (RFC 6043 §5.5). For a
    /// TRANSFER_INIT the Initiator Data of the TICKET payload is not covered either: `out` gets the
    /// message with the Initiator Data length and data removed.
    pub fn mac_input<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        let mac = self.v_mac().ok_or(Error::MissingPayload(PayloadType::Verification))?;
        let covered = self.bytes.get(..self.bytes.len().saturating_sub(mac.len())).ok_or(Error::Truncated)?;
        let skip = self.initiator_data_span()?;
        let mut w = Writer::new(out);
        match skip {
            Some((a, b)) => {
                w.bytes(covered.get(..a).ok_or(Error::Truncated)?)?;
                w.bytes(covered.get(b..).ok_or(Error::Truncated)?)?;
            }
            None => w.bytes(covered)?,
        }
        let n = w.pos();
        out.get(..n).ok_or(Error::BufferTooSmall)
    }

    /// Where the Initiator Data length and data of the TICKET payload lie, in a TRANSFER_INIT
    /// (RFC 6043 §5.5: the message MAC does not cover them).
    pub(crate) fn initiator_data_span(&self) -> Result<Option<(usize, usize)>, Error> {
        if self.hdr.data_type != DataType::TRANSFER_INIT {
            return Ok(None);
        }
        let Some(t) = self.ticket() else { return Ok(None) };
        let start = self.bytes.as_ptr() as usize;
        let data = t.initiator_data.as_ptr() as usize;
        let end = data.checked_sub(start).ok_or(Error::Truncated)? + t.initiator_data.len();
        let begin = end.checked_sub(t.initiator_data.len() + 2).ok_or(Error::Truncated)?;
        Ok(Some((begin, end)))
    }
}

/// Iterator over the payloads of a validated [`Message`] or payload chain.
#[derive(Clone)]
pub struct Payloads<'a> {
    r: Reader<'a>,
    next: u8,
    set: PayloadSet,
}

impl<'a> Payloads<'a> {
    /// The payloads of validated bytes `r` whose first payload has type `next`.
    pub(crate) fn new(r: Reader<'a>, next: u8, set: PayloadSet) -> Self {
        Payloads { r, next, set }
    }
}

impl<'a> Iterator for Payloads<'a> {
    type Item = Payload<'a>;

    fn next(&mut self) -> Option<Payload<'a>> {
        if self.next == 0 {
            return None;
        }
        match Payload::parse(self.next, &mut self.r, self.set) {
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

/// What ends what a [`MessageBuilder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// An RFC 3830 message: the payload carrying the MAC, a KEMAC or a V payload, is its last.
    Rfc3830Message,
    /// An RFC 6043 message: KEMACs carry no MAC; the V payload of
    /// [`MessageBuilder::push_verification`] or [`MessageBuilder::seal`] ends it.
    Rfc6043Message,
    /// A payload chain inside a payload (TP Data, Ticket Data, Initiator Data, RFC 6043 §6.10):
    /// a first-payload byte, then payloads, V payloads among them.
    Chain,
}

/// Builds a MIKEY message (or a payload chain) into a caller buffer: the header first, then
/// payloads appended one by one; each append patches the previous payload's next-payload byte.
///
/// A failed append (buffer too small, value too long) leaves the message built so far unchanged.
pub struct MessageBuilder<'buf> {
    pub(crate) buf: &'buf mut [u8],
    pub(crate) pos: usize,
    /// Index of the next-payload byte of the last payload written (2 for the header).
    pub(crate) next_pos: usize,
    /// A payload carrying the message MAC has been written; nothing may follow.
    pub(crate) sealed: bool,
    framing: Framing,
}

/// Offset of the header's next-payload byte.
const HDR_NEXT_POS: usize = 2;

impl<'buf> MessageBuilder<'buf> {
    /// Starts an RFC 3830 message with its common header; a KEMAC or V payload ends it.
    pub fn new(buf: &'buf mut [u8], hdr: &Hdr<'_>) -> Result<Self, Error> {
        Self::message(buf, hdr, Framing::Rfc3830Message)
    }

    /// Starts a MIKEY-TICKET message (RFC 6043 §4) with its common header: its KEMAC carries no
    /// MAC, and the V payload of [`MessageBuilder::seal`] ends it.
    pub fn ticket_message(buf: &'buf mut [u8], hdr: &Hdr<'_>) -> Result<Self, Error> {
        Self::message(buf, hdr, Framing::Rfc6043Message)
    }

    /// Starts a payload chain (TP Data, Ticket Data, Initiator Data, RFC 6043 §6.10): a
    /// first-payload byte, then payloads.
    pub fn chain(buf: &'buf mut [u8]) -> Result<Self, Error> {
        let first = buf.first_mut().ok_or(Error::BufferTooSmall)?;
        *first = 0;
        Ok(MessageBuilder { buf, pos: 1, next_pos: 0, sealed: false, framing: Framing::Chain })
    }

    fn message(buf: &'buf mut [u8], hdr: &Hdr<'_>, framing: Framing) -> Result<Self, Error> {
        let mut w = Writer::new(buf);
        hdr.encode(&mut w, 0)?;
        let pos = w.pos();
        Ok(MessageBuilder { buf, pos, next_pos: HDR_NEXT_POS, sealed: false, framing })
    }

    /// Whether this builds a MIKEY-TICKET message.
    pub(crate) fn is_ticket_message(&self) -> bool {
        self.framing == Framing::Rfc6043Message
    }

    /// Whether a KEMAC ends what is built (RFC 3830 messages).
    pub(crate) fn kemac_ends_message(&self) -> bool {
        self.framing == Framing::Rfc3830Message
    }

    /// Appends a payload. In an RFC 3830 message a KEMAC or V payload ends the message.
    pub fn push(&mut self, p: &Payload<'_>) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let mut w = Writer::at(self.buf, self.pos);
        p.encode(&mut w, 0)?;
        let end = w.pos();
        self.link(p.payload_type(), end)?;
        if self.kemac_ends_message() && matches!(p, Payload::Kemac(_) | Payload::Verification(_)) {
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

    /// True if nothing has been written (never the case after construction).
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The message built so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Ends the message or chain; returns its length.
    pub fn finish(self) -> usize {
        self.pos
    }
}
