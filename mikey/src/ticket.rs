//! MIKEY-TICKET (RFC 6043 §4–§6, Appendix A) with the 3GPP ticket of TS 33.328 §6.2.3 / Annex D:
//! the TR, RANDR, TP and TICKET payloads, whole ticket messages, the key derivations (PSK / MPK /
//! TPK transport keys, MPKi / MPKr, key forking, TEKs from a TGK) and the V-payload MACs.
//!
//! ```text
//! REQUEST_INIT_PSK = HDR, T, RANDRi, [IDRi], [IDRkms], TP, [IDRpsk], V        (RFC 6043 §4.2.1)
//! REQUEST_RESP     = HDR, T, [IDRkms], TICKET, KEMAC, V
//! TRANSFER_INIT    = HDR, T, RANDRi, [IDRi], [IDRr], {SP}, TICKET, [KEMAC], V  (§4.2.2)
//! TRANSFER_RESP    = HDR, T, [RANDRr], [IDRr], [RANDRkms], {SP}, [KEMAC], V
//! RESOLVE_INIT_PSK = HDR, T, RANDRr, [IDRr], [IDRkms], TICKET, [IDRpsk], V     (§4.2.3)
//! RESOLVE_RESP     = HDR, T, [IDRkms], KEMAC, [IDRr], [RANDRkms], V
//! Error message    = HDR, T, (ERR), [V]                                        (§5.4)
//! ```
//!
//! Everything here is `no_std` and heap-free: parsers borrow, builders write into caller buffers,
//! parsing never panics. Values RFC 6043 leaves to the ticket type and that the TS 33.328 Annex D
//! text available to this project does not confirm are named constants in [`profile`], marked
//! UNCONFIRMED.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;
use crate::codec::{Reader, Writer};
use crate::payload::{
    CsIdMap, DataType, EncrAlg, Hdr, IdRole, IdType, Idr, Kemac, KeyValidity, MacAlg, Payload, PayloadType,
};
use crate::prf::{PrfFunc, prf_with_label_parts};

#[cfg(any(feature = "std", test))]
pub mod exchange;

// ------------------------------------------------------------------------------------------------
// Constants

/// TS roles of the TR payload (RFC 6043 Table 6.9).
pub mod ts_role {
    /// Time of issue (TRi).
    pub const ISSUE: u8 = 1;
    /// Start of the validity period (TRs).
    pub const START: u8 = 2;
    /// End of the validity period (TRe).
    pub const END: u8 = 3;
    /// Rekeying interval (TRr).
    pub const REKEY: u8 = 4;
}

/// RAND roles of the RANDR payload (RFC 6043 Table 6.13).
pub mod rand_role {
    /// RANDRi.
    pub const INITIATOR: u8 = 1;
    /// RANDRr.
    pub const RESPONDER: u8 = 2;
    /// RANDRkms.
    pub const KMS: u8 = 3;
}

/// TS type NTP-UTC-32 (RFC 6043 Table 6.8); RFC 3830 types 0–2 are in [`crate::payload::ts_type`].
pub const TS_TYPE_NTP_UTC_32: u8 = 3;
/// ID type "byte string" (RFC 6043 Table 6.10), used for IDRpsk.
pub const ID_TYPE_BYTE_STRING: IdType = IdType(2);

/// Key data types (RFC 3830 Table 6.13.a, RFC 6043 Table 6.7).
pub mod key_type {
    /// TGK.
    pub const TGK: u8 = 0;
    /// TGK + salt.
    pub const TGK_SALT: u8 = 1;
    /// TEK.
    pub const TEK: u8 = 2;
    /// TEK + salt.
    pub const TEK_SALT: u8 = 3;
    /// Group TGK.
    pub const GTGK: u8 = 4;
    /// Group TGK + salt.
    pub const GTGK_SALT: u8 = 5;
    /// MIKEY Protection Key.
    pub const MPK: u8 = 6;
}

/// Error numbers added by RFC 6043 Table 6.14.
pub mod err_no {
    use crate::ErrorNo;
    /// Ticket type not supported.
    pub const INVALID_TICKET: ErrorNo = ErrorNo(14);
    /// TP parameters not supported.
    pub const INVALID_TPPAR: ErrorNo = ErrorNo(15);
}

/// Ticket types (RFC 6043 Table 6.15).
pub mod ticket_type {
    /// MIKEY base ticket (Appendix A).
    pub const MIKEY_BASE: u16 = 1;
    /// 3GPP base ticket (TS 33.328 §6.2.3.4).
    pub const THREE_GPP: u16 = 2;
}

/// PRF label constants of RFC 6043 (taken from the digits of e like RFC 3830's).
pub mod label {
    /// MPKr' by key forking (RFC 6043 Table 5.1).
    pub const MPKR_FORKED: u32 = 0x2B28_8856;
    /// TGK' by key forking (RFC 6043 Table 5.1).
    pub const TGK_FORKED: u32 = 0x1512_B54A;
    /// MPKi from the MPK (RFC 6043 Table A.1).
    pub const MPKI: u32 = 0x220E_99A2;
    /// MPKr from the MPK (RFC 6043 Table A.1).
    pub const MPKR: u32 = 0x1F4D_675B;
    /// The role byte of initial messages in transport-key labels (RFC 6043 §5.1.2).
    pub const ROLE_INITIAL: u8 = 0x01;
    /// The role byte of response messages (§5.1.2).
    pub const ROLE_RESPONSE: u8 = 0x02;
    /// The role byte of TEK / salt derivation from a TGK (§5.1.3).
    pub const ROLE_TGK: u8 = 0x03;
    /// The role byte of the Initiator Data Vr key (§6.10).
    pub const ROLE_INITIATOR_DATA: u8 = 0x04;
    /// The role byte of keys from the TPK (Appendix A.2.1).
    pub const ROLE_TPK: u8 = 0x05;
    /// The role byte of MPKi / MPKr (Appendix A.2.2).
    pub const ROLE_MPK: u8 = 0x06;
    /// The CSB ID slot when no CSB applies (§5.1.1, §6.10, Appendix A).
    pub const NO_CSB: u32 = 0xFFFF_FFFF;
}

/// The 3GPP ticket (ticket type 2, subtype 0, version 0) and the values of TS 33.328 this crate
/// depends on.
pub mod profile {
    /// Ticket subtype of TS 33.328 Table 1 (§6.2.3.4.2).
    pub const SUBTYPE_3GPP: u8 = 0;
    /// Ticket version of TS 33.328 Table 1 (§6.2.3.4.2).
    pub const VERSION_3GPP: u8 = 0;
    /// UNCONFIRMED (TS 33.328 Annex D.2, not read): the Ticket Data of the 3GPP ticket is laid out
    /// like the MIKEY base ticket of RFC 6043 Appendix A without its THDR payload (whose payload
    /// type RFC 6043 does not assign): `first payload, T, RAND, KEMAC, [IDRpsk], V`, protected by
    /// the TPK with the derivations of Appendix A.2.
    pub const TICKET_DATA_LIKE_MIKEY_BASE_TICKET: bool = true;
    /// UNCONFIRMED (TS 33.328 Annex D): the ticket MAC algorithm, HMAC-SHA-1-160 (RFC 3830 default).
    pub const TICKET_MAC_ALG: crate::MacAlg = crate::MacAlg::HmacSha1_160;
    /// UNCONFIRMED (TS 33.328 Annex D): the KEMAC encryption of tickets and responses, AES-CM-128.
    pub const KEMAC_ENCR_ALG: crate::EncrAlg = crate::EncrAlg::AesCm128;
    /// The character that makes a KMS UID a user group identity (TS 33.328 §6.2.3.2).
    pub const GROUP_WILDCARD: char = '?';
    /// How far a message's T may be from the receiver's clock, either way, in seconds (RFC 3830
    /// §5.4: the timestamp must lie within the allowable clock skew), at the KMS and at the UEs.
    /// UNCONFIRMED: RFC 3830 and RFC 6043 leave the value to the deployment; five minutes is a choice.
    pub const ALLOWED_CLOCK_SKEW_SECS: u64 = 300;
}

/// Length of an HMAC-SHA-1-160 MAC.
pub const MAC_LEN: usize = 20;
/// encr_key length for AES-CM-128.
pub const ENCR_KEY_LEN: usize = 16;
/// auth_key length for HMAC-SHA-1-160.
pub const AUTH_KEY_LEN: usize = 20;
/// salt_key length for AES-CM-128.
pub const SALT_KEY_LEN: usize = 14;
/// Most Key data sub-payloads a ticket KEMAC carries here (MPKi, MPKr, TGK, a few more).
pub const MAX_KEYS: usize = 8;

// ------------------------------------------------------------------------------------------------
// Payloads

/// A timestamp value of any TS type (RFC 3830 Table 6.6, RFC 6043 Table 6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsValue {
    /// NTP-UTC, 64 bits.
    NtpUtc(u64),
    /// NTP, 64 bits.
    Ntp(u64),
    /// Counter, 32 bits.
    Counter(u32),
    /// NTP-UTC-32: whole seconds since 1900.
    NtpUtc32(u32),
}

impl TsValue {
    /// The value as 64 bits for IV creation: a COUNTER is zero-padded on the left, an NTP-UTC-32
    /// becomes an NTP-UTC timestamp with a zero fraction (RFC 6043 §6.3).
    pub const fn as_u64(&self) -> u64 {
        match *self {
            TsValue::NtpUtc(v) | TsValue::Ntp(v) => v,
            TsValue::Counter(c) => c as u64,
            TsValue::NtpUtc32(s) => (s as u64) << 32,
        }
    }

    /// Whole NTP seconds (for validity checks); a counter has none.
    pub const fn ntp_seconds(&self) -> Option<u32> {
        match *self {
            TsValue::NtpUtc(v) | TsValue::Ntp(v) => Some((v >> 32) as u32),
            TsValue::NtpUtc32(s) => Some(s),
            TsValue::Counter(_) => None,
        }
    }

    fn ts_type(&self) -> u8 {
        match self {
            TsValue::NtpUtc(_) => 0,
            TsValue::Ntp(_) => 1,
            TsValue::Counter(_) => 2,
            TsValue::NtpUtc32(_) => TS_TYPE_NTP_UTC_32,
        }
    }

    fn value_len(&self) -> usize {
        match self {
            TsValue::NtpUtc(_) | TsValue::Ntp(_) => 8,
            _ => 4,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        match r.u8()? {
            0 => Ok(TsValue::NtpUtc(r.u64()?)),
            1 => Ok(TsValue::Ntp(r.u64()?)),
            2 => Ok(TsValue::Counter(r.u32()?)),
            TS_TYPE_NTP_UTC_32 => Ok(TsValue::NtpUtc32(r.u32()?)),
            other => Err(Error::UnsupportedTimestampType(other)),
        }
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u8(self.ts_type())?;
        match *self {
            TsValue::NtpUtc(v) | TsValue::Ntp(v) => w.u64(v),
            TsValue::Counter(c) | TsValue::NtpUtc32(c) => w.u32(c),
        }
    }
}

/// TR payload: a timestamp with a role (RFC 6043 §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    /// TS role ([`ts_role`]).
    pub role: u8,
    /// The timestamp.
    pub ts: TsValue,
}

/// RANDR payload: a RAND with a role (RFC 6043 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Randr<'a> {
    /// RAND role ([`rand_role`]).
    pub role: u8,
    /// The random value.
    pub rand: &'a [u8],
}

/// The flags of a ticket policy (RFC 6043 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketFlags {
    /// D: generated by the KMS (true) or the initiator.
    pub d: bool,
    /// E: the Ticket Resolve exchange is mandatory.
    pub e: bool,
    /// F: a TRANSFER_RESP shall be sent.
    pub f: bool,
    /// G: the responder shall generate RANDRr.
    pub g: bool,
    /// H: RANDRi is used in TEK derivation from a TGK.
    pub h: bool,
    /// I: key forking.
    pub i: bool,
    /// J: the ticket may be reused.
    pub j: bool,
    /// K: the KMS changed the desired policy.
    pub k: bool,
    /// L: the initiator may supply session keys.
    pub l: bool,
    /// M: the responder may supply session keys.
    pub m: bool,
    /// N: a plain initiator can use the ticket.
    pub n: bool,
    /// O: a plain responder can process the ticket.
    pub o: bool,
}

impl TicketFlags {
    /// The 3 bytes after the version byte: PRF(7) D | E F G H I J K L | M N O Res(5).
    fn to_bytes(self, prf: PrfFunc) -> [u8; 3] {
        let b = |v: bool, s: u8| (v as u8) << s;
        [
            (prf.to_u8() << 1) | b(self.d, 0),
            b(self.e, 7)
                | b(self.f, 6)
                | b(self.g, 5)
                | b(self.h, 4)
                | b(self.i, 3)
                | b(self.j, 2)
                | b(self.k, 1)
                | b(self.l, 0),
            b(self.m, 7) | b(self.n, 6) | b(self.o, 5),
        ]
    }

    fn from_bytes(x: [u8; 3]) -> Result<(Self, PrfFunc), Error> {
        let [a, b, c] = x;
        let prf = PrfFunc::from_u8(a >> 1).ok_or(Error::UnsupportedPrf(a >> 1))?;
        let bit = |v: u8, s: u8| v & (1 << s) != 0;
        Ok((
            TicketFlags {
                d: bit(a, 0),
                e: bit(b, 7),
                f: bit(b, 6),
                g: bit(b, 5),
                h: bit(b, 4),
                i: bit(b, 3),
                j: bit(b, 2),
                k: bit(b, 1),
                l: bit(b, 0),
                m: bit(c, 7),
                n: bit(c, 6),
                o: bit(c, 5),
            },
            prf,
        ))
    }
}

/// The ticket policy shared by the TP and TICKET payloads (RFC 6043 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketPolicy<'a> {
    /// Ticket type ([`ticket_type`]).
    pub ticket_type: u16,
    /// Subtype.
    pub subtype: u8,
    /// Version.
    pub version: u8,
    /// PRF for key forking and the ticket's own derivations.
    pub prf: PrfFunc,
    /// The flags.
    pub flags: TicketFlags,
    /// TP Data: a payload chain `first payload, [IDRkms], [IDRi], [TRs], [TRe], [TRr], [KEMAC],
    /// {IDRapp}, (IDRr)` ([`Chain`] reads it).
    pub tp_data: Chain<'a>,
}

impl<'a> TicketPolicy<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, Error> {
        let ticket_type = r.u16()?;
        let subtype = r.u8()?;
        let version = r.u8()?;
        let (flags, prf) = TicketFlags::from_bytes(r.array()?)?;
        let l = r.u16()?;
        let tp_data = Chain::parse(r.bytes(l.into())?)?;
        Ok(TicketPolicy { ticket_type, subtype, version, prf, flags, tp_data })
    }

    fn encoded_len(&self) -> usize {
        2 + 1 + 1 + 3 + 2 + self.tp_data.bytes.len()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u16(self.ticket_type)?;
        w.u8(self.subtype)?;
        w.u8(self.version)?;
        w.bytes(&self.flags.to_bytes(self.prf))?;
        w.len16(self.tp_data.bytes.len())?;
        w.bytes(self.tp_data.bytes)
    }

    /// The first IDR of a role in the TP data.
    pub fn idr(&self, role: IdRole) -> Option<Idr<'a>> {
        self.idrs(role).next()
    }

    /// The IDRs of a role in the TP data, in order (IDRr: the allowed recipients).
    pub fn idrs(&self, role: IdRole) -> impl Iterator<Item = Idr<'a>> + use<'a> {
        self.tp_data.payloads().filter_map(move |p| match p {
            TPayload::Std(Payload::Idr(i)) if i.role == role => Some(i),
            _ => None,
        })
    }

    /// The first TR of a role in the TP data.
    pub fn tr(&self, role: u8) -> Option<TsValue> {
        self.tp_data.payloads().find_map(|p| match p {
            TPayload::Tr(t) if t.role == role => Some(t.ts),
            _ => None,
        })
    }

    /// True for the 3GPP ticket type 2 / subtype 0 / version 0.
    pub fn is_3gpp(&self) -> bool {
        self.ticket_type == ticket_type::THREE_GPP
            && self.subtype == profile::SUBTYPE_3GPP
            && self.version == profile::VERSION_3GPP
    }
}

/// TICKET payload: the granted policy, the Ticket Data and the Initiator Data (RFC 6043 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket<'a> {
    /// The granted ticket policy.
    pub policy: TicketPolicy<'a>,
    /// Ticket Data (for the 3GPP ticket a payload chain, see [`profile`]).
    pub ticket_data: &'a [u8],
    /// Initiator Data (`first payload, Vi, Vr`), present only with key forking in TRANSFER_INIT.
    pub initiator_data: &'a [u8],
}

impl<'a> Ticket<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, Error> {
        let policy = TicketPolicy::parse(r)?;
        let l = r.u16()?;
        let ticket_data = r.bytes(l.into())?;
        let l = r.u16()?;
        let initiator_data = r.bytes(l.into())?;
        Ok(Ticket { policy, ticket_data, initiator_data })
    }

    fn encoded_len(&self) -> usize {
        self.policy.encoded_len() + 2 + self.ticket_data.len() + 2 + self.initiator_data.len()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        self.policy.encode(w)?;
        w.len16(self.ticket_data.len())?;
        w.bytes(self.ticket_data)?;
        w.len16(self.initiator_data.len())?;
        w.bytes(self.initiator_data)
    }

    /// The same ticket with other Initiator Data.
    pub fn with_initiator_data(&self, initiator_data: &'a [u8]) -> Ticket<'a> {
        Ticket { initiator_data, ..*self }
    }

    /// The Ticket Data as a payload chain.
    pub fn data_chain(&self) -> Result<Chain<'a>, Error> {
        Chain::parse(self.ticket_data)
    }
}

/// Any payload of a MIKEY-TICKET message, without its next-payload byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TPayload<'a> {
    /// A payload of RFC 3830 (or IDR, which [`Payload`] already knows).
    Std(Payload<'a>),
    /// TR.
    Tr(Tr),
    /// RANDR.
    Randr(Randr<'a>),
    /// TP.
    Tp(TicketPolicy<'a>),
    /// TICKET.
    Ticket(Ticket<'a>),
}

impl<'a> TPayload<'a> {
    /// The payload type.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            TPayload::Std(p) => p.payload_type(),
            TPayload::Tr(_) => PayloadType::Tr,
            TPayload::Randr(_) => PayloadType::Randr,
            TPayload::Tp(_) => PayloadType::Tp,
            TPayload::Ticket(_) => PayloadType::Ticket,
        }
    }

    /// Encoded length including the next-payload byte.
    pub fn encoded_len(&self) -> usize {
        match self {
            TPayload::Std(p) => p.encoded_len(),
            TPayload::Tr(t) => 3 + t.ts.value_len(),
            TPayload::Randr(r) => 3 + r.rand.len(),
            TPayload::Tp(p) => 1 + p.encoded_len(),
            TPayload::Ticket(t) => 1 + t.encoded_len(),
        }
    }

    fn parse(ty: u8, r: &mut Reader<'a>) -> Result<(Self, u8), Error> {
        let p = match ty {
            13 => {
                let next = r.u8()?;
                let role = r.u8()?;
                (TPayload::Tr(Tr { role, ts: TsValue::parse(r)? }), next)
            }
            15 => {
                let next = r.u8()?;
                let role = r.u8()?;
                let l = r.u8()?;
                (TPayload::Randr(Randr { role, rand: r.bytes(l.into())? }), next)
            }
            16 => {
                let next = r.u8()?;
                (TPayload::Tp(TicketPolicy::parse(r)?), next)
            }
            17 => {
                let next = r.u8()?;
                (TPayload::Ticket(Ticket::parse(r)?), next)
            }
            _ => {
                let (p, next) = Payload::parse(ty, r)?;
                (TPayload::Std(p), next)
            }
        };
        Ok(p)
    }

    fn encode(&self, w: &mut Writer<'_>, next: u8) -> Result<(), Error> {
        match self {
            TPayload::Std(p) => p.encode(w, next),
            TPayload::Tr(t) => {
                w.u8(next)?;
                w.u8(t.role)?;
                t.ts.encode(w)
            }
            TPayload::Randr(r) => {
                w.u8(next)?;
                w.u8(r.role)?;
                w.len8(r.rand.len())?;
                w.bytes(r.rand)
            }
            TPayload::Tp(p) => {
                w.u8(next)?;
                p.encode(w)
            }
            TPayload::Ticket(t) => {
                w.u8(next)?;
                t.encode(w)
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Chains and messages

/// A payload chain inside a payload (TP Data, Ticket Data, Initiator Data): the first byte names
/// the first payload, then the payloads follow, each naming the next (RFC 6043 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain<'a> {
    bytes: &'a [u8],
}

impl<'a> Chain<'a> {
    /// Validates a chain; empty bytes are an empty chain.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        if !r.is_empty() {
            let mut next = r.u8()?;
            walk(&mut next, &mut r)?;
        }
        Ok(Chain { bytes })
    }

    /// A chain from already encoded bytes that were validated (or an empty chain).
    pub const fn empty() -> Self {
        Chain { bytes: &[] }
    }

    /// The encoded chain.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payloads in order.
    pub fn payloads(&self) -> TPayloads<'a> {
        let mut r = Reader::new(self.bytes);
        let next = r.u8().unwrap_or(0);
        TPayloads { r, next }
    }
}

fn walk(next: &mut u8, r: &mut Reader<'_>) -> Result<(), Error> {
    let mut count = 0usize;
    while *next != 0 {
        let (_, n) = TPayload::parse(*next, r)?;
        *next = n;
        count += 1;
        if count > 255 {
            return Err(Error::FieldTooLong);
        }
    }
    if !r.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

/// Iterator over validated payloads.
#[derive(Clone)]
pub struct TPayloads<'a> {
    r: Reader<'a>,
    next: u8,
}

impl<'a> Iterator for TPayloads<'a> {
    type Item = TPayload<'a>;

    fn next(&mut self) -> Option<TPayload<'a>> {
        if self.next == 0 {
            return None;
        }
        match TPayload::parse(self.next, &mut self.r) {
            Ok((p, n)) => {
                self.next = n;
                Some(p)
            }
            Err(_) => {
                self.next = 0;
                None
            }
        }
    }
}

/// A parsed MIKEY-TICKET (or plain MIKEY) message, borrowed from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct TicketMessage<'a> {
    bytes: &'a [u8],
    hdr: Hdr<'a>,
    body: usize,
    first: u8,
}

impl<'a> TicketMessage<'a> {
    /// Parses and validates a whole message. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let (hdr, first) = Hdr::parse(&mut r)?;
        let body = r.pos();
        let mut next = first;
        walk(&mut next, &mut r)?;
        Ok(TicketMessage { bytes, hdr, body, first })
    }

    /// The header.
    pub fn hdr(&self) -> &Hdr<'a> {
        &self.hdr
    }

    /// The bytes as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payloads after the header.
    pub fn payloads(&self) -> TPayloads<'a> {
        TPayloads { r: Reader::new(self.bytes.get(self.body..).unwrap_or(&[])), next: self.first }
    }

    /// The first T payload.
    pub fn timestamp(&self) -> Option<crate::Timestamp> {
        self.payloads().find_map(|p| match p {
            TPayload::Std(Payload::Timestamp(t)) => Some(t),
            _ => None,
        })
    }

    /// The first IDR of a role.
    pub fn idr(&self, role: IdRole) -> Option<Idr<'a>> {
        self.payloads().find_map(|p| match p {
            TPayload::Std(Payload::Idr(i)) if i.role == role => Some(i),
            _ => None,
        })
    }

    /// The first RANDR of a role.
    pub fn randr(&self, role: u8) -> Option<&'a [u8]> {
        self.payloads().find_map(|p| match p {
            TPayload::Randr(r) if r.role == role => Some(r.rand),
            _ => None,
        })
    }

    /// The TP payload.
    pub fn tp(&self) -> Option<TicketPolicy<'a>> {
        self.payloads().find_map(|p| match p {
            TPayload::Tp(t) => Some(t),
            _ => None,
        })
    }

    /// The TICKET payload.
    pub fn ticket(&self) -> Option<Ticket<'a>> {
        self.payloads().find_map(|p| match p {
            TPayload::Ticket(t) => Some(t),
            _ => None,
        })
    }

    /// The KEMAC payload.
    pub fn kemac(&self) -> Option<Kemac<'a>> {
        self.payloads().find_map(|p| match p {
            TPayload::Std(Payload::Kemac(k)) => Some(k),
            _ => None,
        })
    }

    /// The ERR payload's error number, for an error message.
    pub fn error_no(&self) -> Option<crate::ErrorNo> {
        self.payloads().find_map(|p| match p {
            TPayload::Std(Payload::Err(e)) => Some(e.error_no),
            _ => None,
        })
    }

    /// The last payload's MAC when it is a V payload with HMAC-SHA-1-160.
    pub fn v_mac(&self) -> Option<&'a [u8]> {
        match self.payloads().last() {
            Some(TPayload::Std(Payload::Verification(v))) if v.mac_alg == MacAlg::HmacSha1_160 => Some(v.mac),
            _ => None,
        }
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

    /// Where the Initiator Data length and data of the TICKET payload lie, in a TRANSFER_INIT.
    fn initiator_data_span(&self) -> Result<Option<(usize, usize)>, Error> {
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

/// Builds a message or a payload chain into a caller buffer, patching next-payload bytes.
pub struct ChainBuilder<'b> {
    buf: &'b mut [u8],
    pos: usize,
    next_pos: usize,
    sealed: bool,
}

impl<'b> ChainBuilder<'b> {
    /// A message starting with its header.
    pub fn message(buf: &'b mut [u8], hdr: &Hdr<'_>) -> Result<Self, Error> {
        let mut w = Writer::new(buf);
        hdr.encode(&mut w, 0)?;
        let pos = w.pos();
        Ok(ChainBuilder { buf, pos, next_pos: 2, sealed: false })
    }

    /// A payload chain (TP Data, Ticket Data, Initiator Data): a first-payload byte, then payloads.
    pub fn chain(buf: &'b mut [u8]) -> Result<Self, Error> {
        let first = buf.first_mut().ok_or(Error::BufferTooSmall)?;
        *first = 0;
        Ok(ChainBuilder { buf, pos: 1, next_pos: 0, sealed: false })
    }

    /// Appends a payload.
    pub fn push(&mut self, p: &TPayload<'_>) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let mut w = Writer::at(self.buf, self.pos);
        p.encode(&mut w, 0)?;
        let end = w.pos();
        self.link(p.payload_type() as u8, end)
    }

    fn link(&mut self, t: u8, end: usize) -> Result<&mut Self, Error> {
        let slot = self.buf.get_mut(self.next_pos).ok_or(Error::BufferTooSmall)?;
        *slot = t;
        self.next_pos = self.pos;
        self.pos = end;
        Ok(self)
    }

    /// Appends a KEMAC whose key data are encrypted with AES-CM under `keys` (IV from `csb_id` and
    /// the 64-bit timestamp `t`), NULL MAC (RFC 6043: the message MAC is in the V payload).
    pub fn push_kemac(
        &mut self,
        keys: &MsgKeys,
        csb_id: u32,
        t: u64,
        key_data: &[TKeyData<'_>],
    ) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let mut w = Writer::at(self.buf, self.pos);
        w.u8(0)?;
        w.u8(profile::KEMAC_ENCR_ALG as u8)?;
        let len: usize = key_data.iter().map(TKeyData::encoded_len).sum();
        w.len16(len)?;
        let start = w.pos();
        for (i, k) in key_data.iter().enumerate() {
            let next = if i + 1 == key_data.len() { 0 } else { PayloadType::KeyData as u8 };
            k.encode(&mut w, next)?;
        }
        let data_end = w.pos();
        w.u8(MacAlg::Null as u8)?;
        let end = w.pos();
        let data = self.buf.get_mut(start..data_end).ok_or(Error::BufferTooSmall)?;
        keys.apply_aes_cm(csb_id, t, data)?;
        self.link(PayloadType::Kemac as u8, end)
    }

    /// Ends the message with a V payload (HMAC-SHA-1-160) whose MAC covers the message so far
    /// (without the Initiator Data of a TRANSFER_INIT's TICKET) followed by `trailer`.
    pub fn seal(mut self, auth_key: &[u8], trailer: &[&[u8]]) -> Result<usize, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let start = self.pos;
        let mac_start = start + 2;
        let end = mac_start + MAC_LEN;
        let mut w = Writer::at(self.buf, start);
        w.u8(0)?;
        w.u8(MacAlg::HmacSha1_160 as u8)?;
        w.bytes(&[0u8; MAC_LEN])?;
        self.link(PayloadType::Verification as u8, end)?;
        self.sealed = true;
        let mut m = hmac_sha1(auth_key)?;
        let built = self.buf.get(..end).ok_or(Error::BufferTooSmall)?;
        // Skip the Initiator Data of a TRANSFER_INIT (RFC 6043 §5.5).
        let msg = TicketMessage::parse(built)?;
        let skip = msg.initiator_data_span()?;
        let covered = built.get(..mac_start).ok_or(Error::BufferTooSmall)?;
        match skip {
            Some((a, b)) => {
                m.update(covered.get(..a).ok_or(Error::Truncated)?);
                m.update(covered.get(b..).ok_or(Error::Truncated)?);
            }
            None => m.update(covered),
        }
        for t in trailer {
            m.update(t);
        }
        let tag = m.finalize().into_bytes();
        self.buf.get_mut(mac_start..end).ok_or(Error::BufferTooSmall)?.copy_from_slice(&tag);
        Ok(end)
    }

    /// Ends the message or chain without a MAC; returns its length.
    pub fn finish(self) -> usize {
        self.pos
    }

    /// Length written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Never true after construction.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

/// Verifies the V payload that ends `msg`: HMAC-SHA-1-160 with `auth_key` over the message without
/// its MAC (and without a TRANSFER_INIT's Initiator Data) followed by `trailer` (RFC 6043 §5.5).
pub fn verify_v(msg: &TicketMessage<'_>, auth_key: &[u8], trailer: &[&[u8]]) -> Result<(), Error> {
    let mac = msg.v_mac().ok_or(Error::MissingPayload(PayloadType::Verification))?;
    let bytes = msg.as_bytes();
    let covered = bytes.get(..bytes.len().saturating_sub(mac.len())).ok_or(Error::Truncated)?;
    let mut m = hmac_sha1(auth_key)?;
    match msg.initiator_data_span()? {
        Some((a, b)) => {
            m.update(covered.get(..a).ok_or(Error::Truncated)?);
            m.update(covered.get(b..).ok_or(Error::Truncated)?);
        }
        None => m.update(covered),
    }
    for t in trailer {
        m.update(t);
    }
    check_tag(m, mac)
}

fn hmac_sha1(key: &[u8]) -> Result<Hmac<Sha1>, Error> {
    <Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(|_| Error::BadLength)
}

fn check_tag(m: Hmac<Sha1>, tag: &[u8]) -> Result<(), Error> {
    let computed = m.finalize().into_bytes();
    if bool::from(computed.as_slice().ct_eq(tag)) { Ok(()) } else { Err(Error::MacMismatch) }
}

// ------------------------------------------------------------------------------------------------
// Key data

/// A Key data sub-payload with the key types of RFC 6043 (GTGK, MPK) too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TKeyData<'a> {
    /// Key data type ([`key_type`]).
    pub key_type: u8,
    /// The key.
    pub key: &'a [u8],
    /// The salt (types TGK+SALT, TEK+SALT, GTGK+SALT).
    pub salt: Option<&'a [u8]>,
    /// Key validity (RFC 6043 §6.2.1: an SPI for each key).
    pub kv: KeyValidity<'a>,
}

fn salted(t: u8) -> Result<bool, Error> {
    match t {
        key_type::TGK_SALT | key_type::TEK_SALT | key_type::GTGK_SALT => Ok(true),
        key_type::TGK | key_type::TEK | key_type::GTGK | key_type::MPK => Ok(false),
        other => Err(Error::UnsupportedKeyDataType(other)),
    }
}

impl<'a> TKeyData<'a> {
    /// Encoded length including the next-payload byte.
    pub fn encoded_len(&self) -> usize {
        4 + self.key.len()
            + self.salt.map_or(0, |s| 2 + s.len())
            + match self.kv {
                KeyValidity::Null => 0,
                KeyValidity::Spi(s) => 1 + s.len(),
                KeyValidity::Interval { from, to } => 2 + from.len() + to.len(),
            }
    }

    fn parse(r: &mut Reader<'a>) -> Result<(Self, u8), Error> {
        let next = r.u8()?;
        let tkv = r.u8()?;
        let key_type = tkv >> 4;
        let has_salt = salted(key_type)?;
        let l = r.u16()?;
        let key = r.bytes(l.into())?;
        let salt = if has_salt {
            let l = r.u16()?;
            Some(r.bytes(l.into())?)
        } else {
            None
        };
        let kv = match tkv & 0x0f {
            0 => KeyValidity::Null,
            1 => {
                let l = r.u8()?;
                KeyValidity::Spi(r.bytes(l.into())?)
            }
            2 => {
                let l = r.u8()?;
                let from = r.bytes(l.into())?;
                let l = r.u8()?;
                KeyValidity::Interval { from, to: r.bytes(l.into())? }
            }
            other => return Err(Error::UnsupportedKeyValidity(other)),
        };
        Ok((TKeyData { key_type, key, salt, kv }, next))
    }

    fn encode(&self, w: &mut Writer<'_>, next: u8) -> Result<(), Error> {
        if salted(self.key_type)? != self.salt.is_some() {
            return Err(Error::BadLength);
        }
        let kv = match self.kv {
            KeyValidity::Null => 0,
            KeyValidity::Spi(_) => 1,
            KeyValidity::Interval { .. } => 2,
        };
        w.u8(next)?;
        w.u8((self.key_type << 4) | kv)?;
        w.len16(self.key.len())?;
        w.bytes(self.key)?;
        if let Some(s) = self.salt {
            w.len16(s.len())?;
            w.bytes(s)?;
        }
        match self.kv {
            KeyValidity::Null => Ok(()),
            KeyValidity::Spi(s) => {
                w.len8(s.len())?;
                w.bytes(s)
            }
            KeyValidity::Interval { from, to } => {
                w.len8(from.len())?;
                w.bytes(from)?;
                w.len8(to.len())?;
                w.bytes(to)
            }
        }
    }
}

/// Parses decrypted key data into at most [`MAX_KEYS`] sub-payloads.
pub fn parse_key_data(plain: &[u8]) -> Result<heapless::Vec<TKeyData<'_>, MAX_KEYS>, Error> {
    let mut out = heapless::Vec::new();
    let mut r = Reader::new(plain);
    while !r.is_empty() {
        let (k, next) = TKeyData::parse(&mut r)?;
        out.push(k).map_err(|_| Error::FieldTooLong)?;
        match next {
            0 if r.is_empty() => {}
            0 => return Err(Error::TrailingBytes),
            20 if !r.is_empty() => {}
            20 => return Err(Error::Truncated),
            other => return Err(Error::UnsupportedPayload(other)),
        }
    }
    Ok(out)
}

/// Decrypts a KEMAC's key data into `out` and parses it.
pub fn open_kemac<'o>(
    kemac: &Kemac<'_>,
    keys: &MsgKeys,
    csb_id: u32,
    t: u64,
    out: &'o mut [u8],
) -> Result<heapless::Vec<TKeyData<'o>, MAX_KEYS>, Error> {
    let n = kemac.encr_data.len();
    let plain = out.get_mut(..n).ok_or(Error::FieldTooLong)?;
    plain.copy_from_slice(kemac.encr_data);
    match kemac.encr_alg {
        EncrAlg::Null => {}
        EncrAlg::AesCm128 => keys.apply_aes_cm(csb_id, t, plain)?,
        EncrAlg::AesKw128 => return Err(Error::UnsupportedEncrAlg(EncrAlg::AesKw128 as u8)),
    }
    parse_key_data(plain)
}

// ------------------------------------------------------------------------------------------------
// Key derivation

/// encr_key, auth_key and salt_key of one message (RFC 6043 §5.1.2, §6.10, Appendix A.2.1).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MsgKeys {
    encr: [u8; ENCR_KEY_LEN],
    auth: [u8; AUTH_KEY_LEN],
    salt: [u8; SALT_KEY_LEN],
}

impl core::fmt::Debug for MsgKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MsgKeys { .. }")
    }
}

/// The label after the constant of a derivation: the parts in order.
type LabelTail<'x> = [&'x [u8]];

impl MsgKeys {
    /// Derives the three keys from `inkey` with labels `constant || tail` (RFC 3830 §4.1.4
    /// constants).
    pub fn derive(prf: PrfFunc, inkey: &[u8], tail: &LabelTail<'_>) -> Result<Self, Error> {
        let mut k = MsgKeys { encr: [0; ENCR_KEY_LEN], auth: [0; AUTH_KEY_LEN], salt: [0; SALT_KEY_LEN] };
        derive_with(prf, inkey, crate::prf::label::TRANSPORT_ENCR, tail, &mut k.encr)?;
        derive_with(prf, inkey, crate::prf::label::TRANSPORT_AUTH, tail, &mut k.auth)?;
        derive_with(prf, inkey, crate::prf::label::TRANSPORT_SALT, tail, &mut k.salt)?;
        Ok(k)
    }

    /// Keys of a message of the Ticket Request, Transfer or Resolve exchange (§5.1.2):
    /// `0xFF || CSB ID || role || len RANDRi || RANDRi || len RANDRr || RANDRr`.
    pub fn for_exchange(
        prf: PrfFunc,
        inkey: &[u8],
        csb_id: u32,
        role: u8,
        randri: &[u8],
        randrr: &[u8],
    ) -> Result<Self, Error> {
        let li = [u8::try_from(randri.len()).map_err(|_| Error::FieldTooLong)?];
        let lr = [u8::try_from(randrr.len()).map_err(|_| Error::FieldTooLong)?];
        let csb = csb_id.to_be_bytes();
        Self::derive(prf, inkey, &[&[0xFF], &csb, &[role], &li, randri, &lr, randrr])
    }

    /// Keys from the TPK for the Ticket Data (Appendix A.2.1):
    /// `0xFF || 0xFFFFFFFF || 0x05 || len RAND || RAND`.
    pub fn for_ticket(prf: PrfFunc, tpk: &[u8], rand: &[u8]) -> Result<Self, Error> {
        let l = [u8::try_from(rand.len()).map_err(|_| Error::FieldTooLong)?];
        Self::derive(prf, tpk, &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[label::ROLE_TPK], &l, rand])
    }

    /// The auth_key of the Initiator Data Vr from MPKr (§6.10): `0xFF || 0xFFFFFFFF || 0x04`.
    pub fn for_initiator_data(prf: PrfFunc, mpkr: &[u8]) -> Result<Self, Error> {
        Self::derive(prf, mpkr, &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[label::ROLE_INITIATOR_DATA]])
    }

    /// encr_key.
    pub fn encr_key(&self) -> &[u8; ENCR_KEY_LEN] {
        &self.encr
    }

    /// auth_key.
    pub fn auth_key(&self) -> &[u8; AUTH_KEY_LEN] {
        &self.auth
    }

    /// salt_key.
    pub fn salt_key(&self) -> &[u8; SALT_KEY_LEN] {
        &self.salt
    }

    /// The AES-CM-128 keystream of RFC 3830 §4.2.3 over `data`.
    pub fn apply_aes_cm(&self, csb_id: u32, t: u64, data: &mut [u8]) -> Result<(), Error> {
        let mut iv = crate::kemac::kemac_iv(&self.salt, csb_id, t);
        let mut c = ctr::Ctr128BE::<Aes128>::new(&self.encr.into(), &iv.into());
        iv.zeroize();
        c.try_apply_keystream(data).map_err(|_| Error::FieldTooLong)
    }
}

fn derive_with(
    prf: PrfFunc,
    inkey: &[u8],
    constant: u32,
    tail: &LabelTail<'_>,
    out: &mut [u8],
) -> Result<(), Error> {
    let c = constant.to_be_bytes();
    let mut parts: heapless::Vec<&[u8], 12> = heapless::Vec::new();
    parts.push(&c).map_err(|_| Error::FieldTooLong)?;
    for p in tail {
        parts.push(p).map_err(|_| Error::FieldTooLong)?;
    }
    prf_with_label_parts(prf, inkey, &parts, out)
}

/// MPKi or MPKr from the MPK of the Ticket Data (Appendix A.2.2); `out` as long as the MPK.
pub fn derive_mpk(prf: PrfFunc, mpk: &[u8], constant: u32, rand: &[u8], out: &mut [u8]) -> Result<(), Error> {
    if out.len() != mpk.len() {
        return Err(Error::BadLength);
    }
    let l = [u8::try_from(rand.len()).map_err(|_| Error::FieldTooLong)?];
    derive_with(
        prf,
        mpk,
        constant,
        &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[label::ROLE_MPK], &l, rand],
        out,
    )
}

/// A forked key, MPKr' or TGK' (§5.1.1): `constant || 0xFF || 0xFFFFFFFF || 0x00 || len ID (16 bits)
/// || ID Data || len RANDRkms (8 bits) || RANDRkms`; `out` as long as the key.
pub fn fork_key(
    prf: PrfFunc,
    key: &[u8],
    constant: u32,
    id_data: &[u8],
    randrkms: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    if out.len() != key.len() {
        return Err(Error::BadLength);
    }
    let lid = u16::try_from(id_data.len()).map_err(|_| Error::FieldTooLong)?.to_be_bytes();
    let lr = [u8::try_from(randrkms.len()).map_err(|_| Error::FieldTooLong)?];
    derive_with(
        prf,
        key,
        constant,
        &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[0x00], &lid, id_data, &lr, randrkms],
        out,
    )
}

/// A key from a TGK (§5.1.3): `constant || CS ID || 0xFFFFFFFF || 0x03 || len RANDRi || [RANDRi] ||
/// len RANDRr || [RANDRr]`, with the RFC 3830 §4.1.3 constants (TEK, salting key).
pub fn tgk_derive(
    prf: PrfFunc,
    tgk: &[u8],
    constant: u32,
    cs_id: u8,
    randri: &[u8],
    randrr: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let li = [u8::try_from(randri.len()).map_err(|_| Error::FieldTooLong)?];
    let lr = [u8::try_from(randrr.len()).map_err(|_| Error::FieldTooLong)?];
    derive_with(
        prf,
        tgk,
        constant,
        &[&[cs_id], &label::NO_CSB.to_be_bytes(), &[label::ROLE_TGK], &li, randri, &lr, randrr],
        out,
    )
}

// ------------------------------------------------------------------------------------------------
// The 3GPP ticket's Ticket Data

/// The Ticket Data of the 3GPP ticket once opened with the TPK (see [`profile`]).
#[derive(Debug, Clone, Copy)]
pub struct TicketData<'a> {
    /// T: time of issue (enters the KEMAC IV).
    pub t: u64,
    /// RAND: input of the TPK and MPK derivations.
    pub rand: &'a [u8],
    /// The KEMAC (MPK and the session keys, encrypted with the TPK's keys).
    pub kemac: Kemac<'a>,
    /// IDRpsk: what identifies the TPK (a KMS key name, or a B-TID in mode 3).
    pub idrpsk: Option<Idr<'a>>,
    /// The V MAC.
    pub mac: &'a [u8],
}

impl<'a> TicketData<'a> {
    /// Reads the payloads of the Ticket Data (no MAC check yet).
    pub fn parse(ticket: &Ticket<'a>) -> Result<Self, Error> {
        let chain = ticket.data_chain()?;
        let (mut t, mut rand, mut kemac, mut idrpsk, mut mac) = (None, None, None, None, None);
        for p in chain.payloads() {
            match p {
                TPayload::Std(Payload::Timestamp(ts)) => t = Some(ts.as_u64()),
                TPayload::Std(Payload::Rand(r)) => rand = Some(r.rand),
                TPayload::Std(Payload::Kemac(k)) => kemac = Some(k),
                TPayload::Std(Payload::Idr(i)) if i.role == IdRole::PSK => idrpsk = Some(i),
                TPayload::Std(Payload::Verification(v)) if v.mac_alg == profile::TICKET_MAC_ALG => {
                    mac = Some(v.mac)
                }
                _ => {}
            }
        }
        Ok(TicketData {
            t: t.ok_or(Error::MissingPayload(PayloadType::Timestamp))?,
            rand: rand.ok_or(Error::MissingPayload(PayloadType::Rand))?,
            kemac: kemac.ok_or(Error::MissingPayload(PayloadType::Kemac))?,
            idrpsk,
            mac: mac.ok_or(Error::MissingPayload(PayloadType::Verification))?,
        })
    }
}

/// Writes the Ticket Data of a 3GPP ticket into `out` (everything but the MAC, which
/// [`seal_ticket`] adds once the whole TICKET payload is known). Returns its length.
pub fn build_ticket_data(
    out: &mut [u8],
    tpk_keys: &MsgKeys,
    t: u64,
    rand: &[u8],
    keys: &[TKeyData<'_>],
    idrpsk: &[u8],
) -> Result<usize, Error> {
    let mut b = ChainBuilder::chain(out)?;
    b.push(&TPayload::Std(Payload::Timestamp(crate::Timestamp::NtpUtc(t))))?;
    b.push(&TPayload::Std(Payload::Rand(crate::Rand { rand })))?;
    b.push_kemac(tpk_keys, label::NO_CSB, t, keys)?;
    b.push(&TPayload::Std(Payload::Idr(Idr {
        role: IdRole::PSK,
        id_type: ID_TYPE_BYTE_STRING,
        data: idrpsk,
    })))?;
    // The V payload with a zero MAC; `seal_ticket` fills it in.
    b.push(&TPayload::Std(Payload::Verification(crate::Verification {
        mac_alg: profile::TICKET_MAC_ALG,
        mac: &[0u8; MAC_LEN],
    })))?;
    Ok(b.finish())
}

/// The bytes the ticket MAC covers (Appendix A.1): the TICKET payload without its next-payload
/// byte, the Initiator Data length and data, and the MAC field.
fn ticket_mac(ticket: &Ticket<'_>, auth_key: &[u8]) -> Result<[u8; MAC_LEN], Error> {
    let mut m = hmac_sha1(auth_key)?;
    let mut buf = [0u8; 16];
    let mut w = Writer::new(&mut buf);
    w.u16(ticket.policy.ticket_type)?;
    w.u8(ticket.policy.subtype)?;
    w.u8(ticket.policy.version)?;
    w.bytes(&ticket.policy.flags.to_bytes(ticket.policy.prf))?;
    w.len16(ticket.policy.tp_data.bytes.len())?;
    let n = w.pos();
    m.update(buf.get(..n).ok_or(Error::BufferTooSmall)?);
    m.update(ticket.policy.tp_data.bytes);
    m.update(&u16::try_from(ticket.ticket_data.len()).map_err(|_| Error::FieldTooLong)?.to_be_bytes());
    let covered =
        ticket.ticket_data.get(..ticket.ticket_data.len().saturating_sub(MAC_LEN)).ok_or(Error::Truncated)?;
    m.update(covered);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&m.finalize().into_bytes());
    Ok(out)
}

/// Fills in the MAC of Ticket Data built by [`build_ticket_data`] for the ticket with `policy`.
pub fn seal_ticket(
    policy: &TicketPolicy<'_>,
    ticket_data: &mut [u8],
    tpk_keys: &MsgKeys,
) -> Result<(), Error> {
    let mac = {
        let t = Ticket { policy: *policy, ticket_data, initiator_data: &[] };
        ticket_mac(&t, tpk_keys.auth_key())?
    };
    let n = ticket_data.len();
    let slot =
        ticket_data.get_mut(n.checked_sub(MAC_LEN).ok_or(Error::Truncated)?..).ok_or(Error::Truncated)?;
    slot.copy_from_slice(&mac);
    Ok(())
}

/// Verifies the ticket MAC with the TPK's keys (derive them with [`MsgKeys::for_ticket`] and the
/// Ticket Data RAND) and decrypts the ticket KEMAC into `out`.
pub fn open_ticket<'o>(
    ticket: &Ticket<'_>,
    tpk_keys: &MsgKeys,
    out: &'o mut [u8],
) -> Result<heapless::Vec<TKeyData<'o>, MAX_KEYS>, Error> {
    let data = TicketData::parse(ticket)?;
    let mac = ticket_mac(ticket, tpk_keys.auth_key())?;
    if !bool::from(mac.as_slice().ct_eq(data.mac)) {
        return Err(Error::MacMismatch);
    }
    open_kemac(&data.kemac, tpk_keys, label::NO_CSB, data.t, out)
}

// ------------------------------------------------------------------------------------------------
// Initiator Data (key forking)

/// Length of Initiator Data `first payload, Vi, Vr` with HMAC-SHA-1-160.
pub const INITIATOR_DATA_LEN: usize = 1 + 2 * (2 + MAC_LEN);

/// Builds the Initiator Data (§6.10): Vi carries the TRANSFER_INIT's MAC, Vr a MAC with the key
/// from MPKr over the Initiator Data without Vr's MAC field.
pub fn build_initiator_data(vi_mac: &[u8], vr_keys: &MsgKeys) -> Result<[u8; INITIATOR_DATA_LEN], Error> {
    let mut out = [0u8; INITIATOR_DATA_LEN];
    let mut b = ChainBuilder::chain(&mut out)?;
    b.push(&TPayload::Std(Payload::Verification(crate::Verification {
        mac_alg: MacAlg::HmacSha1_160,
        mac: vi_mac,
    })))?;
    b.push(&TPayload::Std(Payload::Verification(crate::Verification {
        mac_alg: MacAlg::HmacSha1_160,
        mac: &[0u8; MAC_LEN],
    })))?;
    let n = b.finish();
    if n != INITIATOR_DATA_LEN {
        return Err(Error::BadLength);
    }
    let mut m = hmac_sha1(vr_keys.auth_key())?;
    m.update(out.get(..INITIATOR_DATA_LEN - MAC_LEN).ok_or(Error::Truncated)?);
    let tag = m.finalize().into_bytes();
    out.get_mut(INITIATOR_DATA_LEN - MAC_LEN..).ok_or(Error::Truncated)?.copy_from_slice(&tag);
    Ok(out)
}

/// Writes `data` over the Initiator Data of the TRANSFER_INIT in `msg` (built with a placeholder of
/// the same length; the message MAC does not cover it, RFC 6043 §5.5).
pub fn set_initiator_data(msg: &mut [u8], data: &[u8]) -> Result<(), Error> {
    let (a, b) = {
        let m = TicketMessage::parse(msg)?;
        m.initiator_data_span()?.ok_or(Error::MissingPayload(PayloadType::Ticket))?
    };
    let slot = msg.get_mut(a + 2..b).ok_or(Error::Truncated)?;
    if slot.len() != data.len() {
        return Err(Error::BadLength);
    }
    slot.copy_from_slice(data);
    Ok(())
}

/// Checks Initiator Data: Vr with the key from MPKr; returns Vi's MAC.
pub fn verify_initiator_data<'a>(data: &'a [u8], vr_keys: &MsgKeys) -> Result<&'a [u8], Error> {
    let chain = Chain::parse(data)?;
    let mut vs = chain.payloads().filter_map(|p| match p {
        TPayload::Std(Payload::Verification(v)) if v.mac_alg == MacAlg::HmacSha1_160 => Some(v.mac),
        _ => None,
    });
    let vi = vs.next().ok_or(Error::MissingPayload(PayloadType::Verification))?;
    let vr = vs.next().ok_or(Error::MissingPayload(PayloadType::Verification))?;
    let covered = data.get(..data.len().saturating_sub(MAC_LEN)).ok_or(Error::Truncated)?;
    if data.len() != INITIATOR_DATA_LEN {
        return Err(Error::BadLength);
    }
    let mut m = hmac_sha1(vr_keys.auth_key())?;
    m.update(covered);
    check_tag(m, vr)?;
    Ok(vi)
}

// ------------------------------------------------------------------------------------------------
// KMS UIDs and groups

/// The KMS UID of a public identity (TS 33.328 §6.2.3.2): the NAI part `user@domain` of a SIP URI
/// (scheme and URI parameters / headers dropped). Non-SIP URIs have none.
pub fn kms_uid(impu: &str) -> Option<&str> {
    let rest = impu.strip_prefix("sip:").or_else(|| impu.strip_prefix("sips:"))?;
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let nai = rest.get(..end)?;
    if nai.contains('@') && !nai.starts_with('@') && !nai.ends_with('@') { Some(nai) } else { None }
}

/// Whether `uid` belongs to `pattern`, a KMS UID or a KMS user group identity where `?` matches zero
/// or more arbitrary characters (TS 33.328 §6.2.3.2).
pub fn uid_matches(pattern: &str, uid: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), uid.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let wildcard = profile::GROUP_WILDCARD as u8;
    while si < s.len() {
        match p.get(pi) {
            Some(&c) if c == wildcard => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if s.get(si).is_some_and(|x| x.eq_ignore_ascii_case(&c)) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&wildcard) {
        pi += 1;
    }
    pi == p.len()
}

// ------------------------------------------------------------------------------------------------
// Headers

/// The header of a Ticket Request or Resolve initial message: V = 1, #CS = 0, empty map (§4.2.1.1).
pub fn init_hdr(data_type: DataType, prf: PrfFunc, csb_id: u32) -> Hdr<'static> {
    Hdr { data_type, v: true, prf, csb_id, cs_id_map: CsIdMap::Empty { cs_count: 0 } }
}

/// The header of a response or error message copying version, PRF, CSB ID and map of `init`
/// (§4.2.1.5, §4.2.3.5, §5.4); V = 0.
pub fn resp_hdr<'a>(data_type: DataType, init: &Hdr<'a>) -> Hdr<'a> {
    Hdr { data_type, v: false, ..*init }
}

/// Builds an error message `HDR, T, ERR` answering `init` (RFC 6043 §5.4).
pub fn build_error(out: &mut [u8], init: &Hdr<'_>, t: u64, error_no: crate::ErrorNo) -> Result<usize, Error> {
    let hdr = resp_hdr(DataType::ERROR, init);
    let mut b = ChainBuilder::message(out, &hdr)?;
    b.push(&TPayload::Std(Payload::Timestamp(crate::Timestamp::NtpUtc(t))))?;
    b.push(&TPayload::Std(Payload::Err(crate::ErrPayload { error_no })))?;
    Ok(b.finish())
}

/// Parses a message, for fuzzing: any input gives a message or an error, never a panic; a parsed
/// message is walked completely (payloads, TP data, Ticket Data, Initiator Data, key data).
pub fn fuzz_parse(data: &[u8]) -> usize {
    let Ok(m) = TicketMessage::parse(data) else { return 0 };
    let mut n = 0;
    for p in m.payloads() {
        n += 1;
        match p {
            TPayload::Tp(tp) => n += tp.tp_data.payloads().count(),
            TPayload::Ticket(t) => {
                n += t.policy.tp_data.payloads().count();
                if let Ok(c) = t.data_chain() {
                    n += c.payloads().count();
                }
                if let Ok(c) = Chain::parse(t.initiator_data) {
                    n += c.payloads().count();
                }
                if let Ok(d) = TicketData::parse(&t) {
                    n += parse_key_data(d.kemac.encr_data).map(|k| k.len()).unwrap_or(0);
                }
            }
            TPayload::Std(Payload::Kemac(k)) => {
                n += parse_key_data(k.encr_data).map(|k| k.len()).unwrap_or(0)
            }
            _ => {}
        }
    }
    let mut buf = [0u8; 512];
    let _ = m.mac_input(&mut buf);
    n
}
