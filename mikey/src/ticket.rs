//! MIKEY-TICKET (RFC 6043 §4–§6, Appendix A) with the 3GPP ticket of TS 33.328 §6.2.3 / Annex D:
//! the TR, RANDR, TP and TICKET payloads, payload chains, the key derivations (PSK / MPK / TPK
//! transport keys, MPKi / MPKr, key forking, TEKs from a TGK) and the V-payload MACs.
//!
//! The payloads are variants of the one [`Payload`]; ticket messages are [`Message`]s parsed with
//! [`Message::parse_ticket`] and built with [`MessageBuilder::ticket_message`], their KEMACs with
//! [`ticket_kemac`].
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

use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::Error;
use crate::codec::{Reader, Writer};
use crate::kemac::{KemacProtection, TransportKeys, check_message_mac, check_tag, decrypt_into, hmac_sha1};
use crate::message::{Message, MessageBuilder, Payloads, walk};
use crate::payload::{
    CsIdMap, DataType, Hdr, IdRole, IdType, Idr, Kemac, KeyData, MacAlg, Payload, PayloadSet, PayloadType,
    Timestamp,
};
use crate::prf::{PrfFunc, prf_with_constant};

pub use crate::kemac::{AUTH_KEY_LEN, ENCR_KEY_LEN, SALT_KEY_LEN};

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

/// ID type "byte string" (RFC 6043 Table 6.10), used for IDRpsk.
pub const ID_TYPE_BYTE_STRING: IdType = IdType(2);

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
    /// RFC 3830 and RFC 6043 leave the value to the deployment; five minutes is keysim's choice.
    pub const ALLOWED_CLOCK_SKEW_SECS: u64 = 300;
}

/// Length of an HMAC-SHA-1-160 MAC.
pub const MAC_LEN: usize = MacAlg::HmacSha1_160.mac_len();
/// Most Key data sub-payloads a ticket KEMAC carries here (MPKi, MPKr, TGK, a few more).
pub const MAX_KEYS: usize = 8;

// ------------------------------------------------------------------------------------------------
// Payloads

/// TR payload: a timestamp with a role (RFC 6043 §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    /// TS role ([`ts_role`]).
    pub role: u8,
    /// The timestamp (any TS type, NTP-UTC-32 included).
    pub ts: Timestamp,
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
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, Error> {
        let ticket_type = r.u16()?;
        let subtype = r.u8()?;
        let version = r.u8()?;
        let (flags, prf) = TicketFlags::from_bytes(r.array()?)?;
        let l = r.u16()?;
        let tp_data = Chain::parse(r.bytes(l.into())?)?;
        Ok(TicketPolicy { ticket_type, subtype, version, prf, flags, tp_data })
    }

    pub(crate) fn encoded_len(&self) -> usize {
        2 + 1 + 1 + 3 + 2 + self.tp_data.bytes.len()
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
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
            Payload::Idr(i) if i.role == role => Some(i),
            _ => None,
        })
    }

    /// The first TR of a role in the TP data.
    pub fn tr(&self, role: u8) -> Option<Timestamp> {
        self.tp_data.payloads().find_map(|p| match p {
            Payload::Tr(t) if t.role == role => Some(t.ts),
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
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, Error> {
        let policy = TicketPolicy::parse(r)?;
        let l = r.u16()?;
        let ticket_data = r.bytes(l.into())?;
        let l = r.u16()?;
        let initiator_data = r.bytes(l.into())?;
        Ok(Ticket { policy, ticket_data, initiator_data })
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.policy.encoded_len() + 2 + self.ticket_data.len() + 2 + self.initiator_data.len()
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
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

// ------------------------------------------------------------------------------------------------
// Payload chains

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
            let next = r.u8()?;
            walk(next, &mut r, PayloadSet::Rfc6043)?;
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
    pub fn payloads(&self) -> Payloads<'a> {
        let mut r = Reader::new(self.bytes);
        let next = r.u8().unwrap_or(0);
        Payloads::new(r, next, PayloadSet::Rfc6043)
    }
}

/// Verifies the V payload that ends `msg`: HMAC-SHA-1-160 with `auth_key` over the message without
/// its MAC (and without a TRANSFER_INIT's Initiator Data) followed by `trailer` (RFC 6043 §5.5).
pub fn verify_v(msg: &Message<'_>, auth_key: &[u8], trailer: &[&[u8]]) -> Result<(), Error> {
    let mac = msg.v_mac().ok_or(Error::MissingPayload(PayloadType::Verification))?;
    check_message_mac(msg, mac, auth_key, trailer)
}

// ------------------------------------------------------------------------------------------------
// Key data

/// Parses decrypted key data into at most [`MAX_KEYS`] sub-payloads.
pub fn parse_key_data(plain: &[u8]) -> Result<heapless::Vec<KeyData<'_>, MAX_KEYS>, Error> {
    let mut out = heapless::Vec::new();
    let mut r = Reader::new(plain);
    while !r.is_empty() {
        let (k, next) = KeyData::parse(&mut r, PayloadSet::Rfc6043)?;
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
    keys: &TransportKeys,
    csb_id: u32,
    t: u64,
    out: &'o mut [u8],
) -> Result<heapless::Vec<KeyData<'o>, MAX_KEYS>, Error> {
    parse_key_data(decrypt_into(kemac, keys, csb_id, t, out)?)
}

/// How the KEMAC of a MIKEY-TICKET message or Ticket Data is protected (RFC 6043 §6.2.1): AES-CM
/// under `keys` with the IV of `csb_id` and the 64-bit timestamp `t`, and a NULL MAC (the message
/// MAC is in the V payload).
pub fn ticket_kemac(keys: &TransportKeys, csb_id: u32, t: u64) -> KemacProtection<'_> {
    KemacProtection { encr_alg: profile::KEMAC_ENCR_ALG, mac_alg: MacAlg::Null, keys, csb_id, timestamp: t }
}

// ------------------------------------------------------------------------------------------------
// Key derivation

/// The transport keys of the MIKEY-TICKET messages and of the Ticket Data (RFC 6043 §5.1.2, §6.10,
/// Appendix A.2.1): the keys of RFC 3830 §4.1.4 with RFC 6043's labels.
impl TransportKeys {
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
        Self::derive_with_label(prf, inkey, &[&[0xFF], &csb, &[role], &li, randri, &lr, randrr])
    }

    /// Keys from the TPK for the Ticket Data (Appendix A.2.1):
    /// `0xFF || 0xFFFFFFFF || 0x05 || len RAND || RAND`.
    pub fn for_ticket(prf: PrfFunc, tpk: &[u8], rand: &[u8]) -> Result<Self, Error> {
        let l = [u8::try_from(rand.len()).map_err(|_| Error::FieldTooLong)?];
        Self::derive_with_label(
            prf,
            tpk,
            &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[label::ROLE_TPK], &l, rand],
        )
    }

    /// The auth_key of the Initiator Data Vr from MPKr (§6.10): `0xFF || 0xFFFFFFFF || 0x04`.
    pub fn for_initiator_data(prf: PrfFunc, mpkr: &[u8]) -> Result<Self, Error> {
        Self::derive_with_label(
            prf,
            mpkr,
            &[&[0xFF], &label::NO_CSB.to_be_bytes(), &[label::ROLE_INITIATOR_DATA]],
        )
    }
}

/// MPKi or MPKr from the MPK of the Ticket Data (Appendix A.2.2); `out` as long as the MPK.
pub fn derive_mpk(prf: PrfFunc, mpk: &[u8], constant: u32, rand: &[u8], out: &mut [u8]) -> Result<(), Error> {
    if out.len() != mpk.len() {
        return Err(Error::BadLength);
    }
    let l = [u8::try_from(rand.len()).map_err(|_| Error::FieldTooLong)?];
    prf_with_constant(
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
    prf_with_constant(
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
    prf_with_constant(
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
                Payload::Timestamp(ts) => t = Some(ts.as_u64()),
                Payload::Rand(r) => rand = Some(r.rand),
                Payload::Kemac(k) => kemac = Some(k),
                Payload::Idr(i) if i.role == IdRole::PSK => idrpsk = Some(i),
                Payload::Verification(v) if v.mac_alg == profile::TICKET_MAC_ALG => mac = Some(v.mac),
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
    tpk_keys: &TransportKeys,
    t: u64,
    rand: &[u8],
    keys: &[KeyData<'_>],
    idrpsk: &[u8],
) -> Result<usize, Error> {
    let mut b = MessageBuilder::chain(out)?;
    b.push(&Payload::Timestamp(Timestamp::NtpUtc(t)))?;
    b.push(&Payload::Rand(crate::Rand { rand }))?;
    b.push_kemac(&ticket_kemac(tpk_keys, label::NO_CSB, t), keys)?;
    b.push(&Payload::Idr(Idr { role: IdRole::PSK, id_type: ID_TYPE_BYTE_STRING, data: idrpsk }))?;
    // The V payload with a zero MAC; `seal_ticket` fills it in.
    b.push(&Payload::Verification(crate::Verification {
        mac_alg: profile::TICKET_MAC_ALG,
        mac: &[0u8; MAC_LEN],
    }))?;
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
    tpk_keys: &TransportKeys,
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

/// Verifies the ticket MAC with the TPK's keys (derive them with [`TransportKeys::for_ticket`] and the
/// Ticket Data RAND) and decrypts the ticket KEMAC into `out`.
pub fn open_ticket<'o>(
    ticket: &Ticket<'_>,
    tpk_keys: &TransportKeys,
    out: &'o mut [u8],
) -> Result<heapless::Vec<KeyData<'o>, MAX_KEYS>, Error> {
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
pub fn build_initiator_data(
    vi_mac: &[u8],
    vr_keys: &TransportKeys,
) -> Result<[u8; INITIATOR_DATA_LEN], Error> {
    let mut out = [0u8; INITIATOR_DATA_LEN];
    let mut b = MessageBuilder::chain(&mut out)?;
    b.push(&Payload::Verification(crate::Verification { mac_alg: MacAlg::HmacSha1_160, mac: vi_mac }))?;
    b.push(&Payload::Verification(crate::Verification {
        mac_alg: MacAlg::HmacSha1_160,
        mac: &[0u8; MAC_LEN],
    }))?;
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
        let m = Message::parse_ticket(msg)?;
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
pub fn verify_initiator_data<'a>(data: &'a [u8], vr_keys: &TransportKeys) -> Result<&'a [u8], Error> {
    let chain = Chain::parse(data)?;
    let mut vs = chain.payloads().filter_map(|p| match p {
        Payload::Verification(v) if v.mac_alg == MacAlg::HmacSha1_160 => Some(v.mac),
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
    let mut b = MessageBuilder::ticket_message(out, &hdr)?;
    b.push(&Payload::Timestamp(Timestamp::NtpUtc(t)))?;
    b.push(&Payload::Err(crate::ErrPayload { error_no }))?;
    Ok(b.finish())
}

/// Parses a message, for fuzzing: any input gives a message or an error, never a panic; a parsed
/// message is walked completely (payloads, TP data, Ticket Data, Initiator Data, key data). Behind
/// the `fuzz` feature: no library API.
#[cfg(feature = "fuzz")]
pub fn fuzz_parse(data: &[u8]) -> usize {
    let Ok(m) = Message::parse_ticket(data) else { return 0 };
    let mut n = 0;
    for p in m.payloads() {
        n += 1;
        match p {
            Payload::Tp(tp) => n += tp.tp_data.payloads().count(),
            Payload::Ticket(t) => {
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
            Payload::Kemac(k) => n += parse_key_data(k.encr_data).map(|k| k.len()).unwrap_or(0),
            _ => {}
        }
    }
    let mut buf = [0u8; 512];
    let _ = m.mac_input(&mut buf);
    n
}
