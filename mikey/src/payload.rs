//! MIKEY payloads (RFC 3830 §6, RFC 4563 §4–5, RFC 6043 §6): borrowed views, parse and encode.
//!
//! Every payload after the common header starts with a one-byte next-payload field. The types
//! here leave that byte out: the parser returns it beside the payload and the
//! [`MessageBuilder`](crate::MessageBuilder) patches it when the next payload is appended.
//!
//! One [`Payload`] type covers the payloads of RFC 3830 and RFC 4563 and those RFC 6043 adds (IDR
//! here; TR, RANDR, TP and TICKET with the ticket logic in [`crate::ticket`]). Which of them a
//! parser accepts is its [`PayloadSet`]: the MBMS profile and the card read RFC 3830 messages and
//! refuse the MIKEY-TICKET payloads and key types as they always have.

use crate::Error;
use crate::codec::{Reader, Writer};
use crate::list::{WireItem, wire_list};
use crate::prf::PrfFunc;
use crate::ticket::{Randr, Ticket, TicketPolicy, Tr};

/// The payloads, timestamp types and key data types a parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadSet {
    /// RFC 3830 with the Key ID extension and empty map of RFC 4563, and IDR (RFC 6043 §6.6): the
    /// TR, RANDR, TP and TICKET payloads are refused ([`Error::UnsupportedPayload`]), and so are the
    /// key data types GTGK and MPK ([`Error::UnsupportedKeyDataType`]).
    Rfc3830,
    /// Everything of [`PayloadSet::Rfc3830`] and the MIKEY-TICKET payloads and key data types of
    /// RFC 6043; a payload chain holds at most [`MAX_RFC6043_PAYLOADS`] payloads.
    Rfc6043,
}

/// Most payloads in one MIKEY-TICKET message or payload chain (its chains nest inside TP and
/// TICKET payloads, so their walk is bounded).
pub const MAX_RFC6043_PAYLOADS: usize = 255;

impl PayloadSet {
    /// Whether the RFC 6043 payloads and key data types are known.
    pub const fn knows_rfc6043(self) -> bool {
        matches!(self, PayloadSet::Rfc6043)
    }

    /// Most payloads in a message or chain.
    pub(crate) const fn max_payloads(self) -> usize {
        match self {
            PayloadSet::Rfc3830 => usize::MAX,
            PayloadSet::Rfc6043 => MAX_RFC6043_PAYLOADS,
        }
    }
}

/// Next-payload / payload type values (RFC 3830 Table 6.1.b, RFC 6043 Table 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PayloadType {
    /// No further payload.
    Last = 0,
    /// Key data transport (KEMAC), §6.2.
    Kemac = 1,
    /// Envelope data (PKE), §6.3.
    Pke = 2,
    /// DH data, §6.4.
    Dh = 3,
    /// Signature, §6.5.
    Sign = 4,
    /// Timestamp (T), §6.6.
    Timestamp = 5,
    /// ID, §6.7.
    Id = 6,
    /// Certificate, §6.7.
    Cert = 7,
    /// Cert hash, §6.8.
    Chash = 8,
    /// Verification message (V), §6.9.
    Verification = 9,
    /// Security policy (SP), §6.10.
    SecurityPolicy = 10,
    /// RAND, §6.11.
    Rand = 11,
    /// Error (ERR), §6.12.
    Err = 12,
    /// Timestamp with role (TR), RFC 6043 §6.4.
    Tr = 13,
    /// ID with role (IDR), RFC 6043 §6.6.
    Idr = 14,
    /// RAND with role (RANDR), RFC 6043 §6.8.
    Randr = 15,
    /// Ticket policy (TP), RFC 6043 §6.10.
    Tp = 16,
    /// Ticket, RFC 6043 §6.10.
    Ticket = 17,
    /// Key data sub-payload (only inside a KEMAC), §6.13.
    KeyData = 20,
    /// General extension, §6.15.
    GeneralExtension = 21,
}

impl PayloadType {
    /// The payload type for a next-payload value, if it is one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => PayloadType::Last,
            1 => PayloadType::Kemac,
            2 => PayloadType::Pke,
            3 => PayloadType::Dh,
            4 => PayloadType::Sign,
            5 => PayloadType::Timestamp,
            6 => PayloadType::Id,
            7 => PayloadType::Cert,
            8 => PayloadType::Chash,
            9 => PayloadType::Verification,
            10 => PayloadType::SecurityPolicy,
            11 => PayloadType::Rand,
            12 => PayloadType::Err,
            13 => PayloadType::Tr,
            14 => PayloadType::Idr,
            15 => PayloadType::Randr,
            16 => PayloadType::Tp,
            17 => PayloadType::Ticket,
            20 => PayloadType::KeyData,
            21 => PayloadType::GeneralExtension,
            _ => return None,
        })
    }
}

/// HDR version (RFC 3830 §6.1).
pub const MIKEY_VERSION: u8 = 1;

/// HDR data type (RFC 3830 Table 6.1.a, RFC 6043 Table 6.1). Unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataType(pub u8);

impl DataType {
    /// Pre-shared key initiator message.
    pub const PSK_INIT: DataType = DataType(0);
    /// Verification message of a pre-shared key exchange.
    pub const PSK_VERIFY: DataType = DataType(1);
    /// Public-key initiator message.
    pub const PK_INIT: DataType = DataType(2);
    /// Verification message of a public-key exchange.
    pub const PK_VERIFY: DataType = DataType(3);
    /// Diffie-Hellman initiator message.
    pub const DH_INIT: DataType = DataType(4);
    /// Diffie-Hellman responder message.
    pub const DH_RESP: DataType = DataType(5);
    /// Error message.
    pub const ERROR: DataType = DataType(6);
    /// DH-HMAC initiator message (RFC 4650 §3).
    pub const DHHMAC_INIT: DataType = DataType(7);
    /// DH-HMAC responder message (RFC 4650 §3).
    pub const DHHMAC_RESP: DataType = DataType(8);
    /// RSA-R initiator message (RFC 4738 §3).
    pub const RSA_R_INIT: DataType = DataType(9);
    /// RSA-R responder message (RFC 4738 §3).
    pub const RSA_R_RESP: DataType = DataType(10);
    /// MIKEY-TICKET REQUEST_INIT (PSK), RFC 6043 Table 6.1.
    pub const REQUEST_INIT_PSK: DataType = DataType(11);
    /// MIKEY-TICKET REQUEST_INIT (PK), RFC 6043 Table 6.1.
    pub const REQUEST_INIT_PK: DataType = DataType(12);
    /// MIKEY-TICKET REQUEST_RESP, RFC 6043 Table 6.1.
    pub const REQUEST_RESP: DataType = DataType(13);
    /// MIKEY-TICKET TRANSFER_INIT, RFC 6043 Table 6.1.
    pub const TRANSFER_INIT: DataType = DataType(14);
    /// MIKEY-TICKET TRANSFER_RESP, RFC 6043 Table 6.1.
    pub const TRANSFER_RESP: DataType = DataType(15);
    /// MIKEY-TICKET RESOLVE_INIT (PSK), RFC 6043 Table 6.1.
    pub const RESOLVE_INIT_PSK: DataType = DataType(16);
    /// MIKEY-TICKET RESOLVE_INIT (PK), RFC 6043 Table 6.1.
    pub const RESOLVE_INIT_PK: DataType = DataType(17);
    /// MIKEY-TICKET RESOLVE_RESP, RFC 6043 Table 6.1.
    pub const RESOLVE_RESP: DataType = DataType(18);
}

/// CS ID map type values (RFC 3830 Table 6.1.d, RFC 4563 Table 3, RFC 6043 Table 6.4).
pub mod cs_id_map_type {
    /// SRTP-ID map.
    pub const SRTP_ID: u8 = 0;
    /// Empty map: the crypto session parameters travel outside MIKEY (RFC 4563 §5).
    pub const EMPTY: u8 = 1;
    /// GENERIC-ID map (RFC 6043 §6.1.1).
    pub const GENERIC_ID: u8 = 2;
}

/// One SRTP-ID map entry (RFC 3830 §6.1.1): the crypto session with index i (1-based) is entry i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpIdEntry {
    /// Security policy number (refers to an SP payload).
    pub policy_no: u8,
    /// SSRC of the stream (0 = not known yet).
    pub ssrc: u32,
    /// Current rollover counter.
    pub roc: u32,
}

impl<'a> WireItem<'a> for SrtpIdEntry {
    fn decode(r: &mut Reader<'a>) -> Result<Self, Error> {
        Ok(SrtpIdEntry { policy_no: r.u8()?, ssrc: r.u32()?, roc: r.u32()? })
    }
    fn encoded_len(&self) -> usize {
        9
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u8(self.policy_no)?;
        w.u32(self.ssrc)?;
        w.u32(self.roc)
    }
}

wire_list!(
    /// The entries of an SRTP-ID map.
    'a, SrtpIdEntries, SrtpIdIter, SrtpIdEntry
);

/// One GENERIC-ID map entry (RFC 6043 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericIdEntry<'a> {
    /// Crypto session ID.
    pub cs_id: u8,
    /// Security protocol (0 = SRTP).
    pub prot_type: u8,
    /// The S flag: session data carries ROC and SEQ too.
    pub s: bool,
    /// Policy numbers (at most 127).
    pub policy_nos: &'a [u8],
    /// Protocol-specific session data.
    pub session_data: &'a [u8],
    /// Security parameter index.
    pub spi: &'a [u8],
}

impl<'a> WireItem<'a> for GenericIdEntry<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, Error> {
        let cs_id = r.u8()?;
        let prot_type = r.u8()?;
        let sp = r.u8()?;
        let policy_nos = r.bytes(usize::from(sp & 0x7f))?;
        let sd_len = r.u16()?;
        let session_data = r.bytes(usize::from(sd_len))?;
        let spi_len = r.u8()?;
        let spi = r.bytes(usize::from(spi_len))?;
        Ok(GenericIdEntry { cs_id, prot_type, s: sp & 0x80 != 0, policy_nos, session_data, spi })
    }
    fn encoded_len(&self) -> usize {
        3 + self.policy_nos.len() + 2 + self.session_data.len() + 1 + self.spi.len()
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        if self.policy_nos.len() > 0x7f {
            return Err(Error::FieldTooLong);
        }
        w.u8(self.cs_id)?;
        w.u8(self.prot_type)?;
        w.u8(((self.s as u8) << 7) | self.policy_nos.len() as u8)?;
        w.bytes(self.policy_nos)?;
        w.len16(self.session_data.len())?;
        w.bytes(self.session_data)?;
        w.len8(self.spi.len())?;
        w.bytes(self.spi)
    }
}

wire_list!(
    /// The entries of a GENERIC-ID map.
    'a, GenericIdEntries, GenericIdIter, GenericIdEntry<'a>
);

/// CS ID map of the common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsIdMap<'a> {
    /// SRTP-ID map (type 0); #CS is the number of entries.
    SrtpId(SrtpIdEntries<'a>),
    /// Empty map (type 1, RFC 4563 §5); no map info, and no SP payload may be present.
    Empty {
        /// The #CS field as carried.
        cs_count: u8,
    },
    /// GENERIC-ID map (type 2, RFC 6043); #CS is the number of entries.
    GenericId(GenericIdEntries<'a>),
}

impl CsIdMap<'_> {
    /// The map type value.
    pub fn map_type(&self) -> u8 {
        match self {
            CsIdMap::SrtpId(_) => cs_id_map_type::SRTP_ID,
            CsIdMap::Empty { .. } => cs_id_map_type::EMPTY,
            CsIdMap::GenericId(_) => cs_id_map_type::GENERIC_ID,
        }
    }

    /// The #CS field.
    pub fn cs_count(&self) -> Result<u8, Error> {
        match self {
            CsIdMap::SrtpId(e) => u8::try_from(e.len()).map_err(|_| Error::FieldTooLong),
            CsIdMap::Empty { cs_count } => Ok(*cs_count),
            CsIdMap::GenericId(e) => u8::try_from(e.len()).map_err(|_| Error::FieldTooLong),
        }
    }
}

/// The common header (RFC 3830 §6.1), without its next-payload byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdr<'a> {
    /// Data type (kind of message).
    pub data_type: DataType,
    /// V flag: the initiator asks for a verification message.
    pub v: bool,
    /// PRF function.
    pub prf: PrfFunc,
    /// Crypto session bundle ID.
    pub csb_id: u32,
    /// CS ID map (carries #CS).
    pub cs_id_map: CsIdMap<'a>,
}

impl<'a> Hdr<'a> {
    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        10 + match &self.cs_id_map {
            CsIdMap::SrtpId(e) => e.encoded_len(),
            CsIdMap::Empty { .. } => 0,
            CsIdMap::GenericId(e) => e.encoded_len(),
        }
    }

    /// Parses the header; returns it with the type of the first payload.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<(Self, u8), Error> {
        let version = r.u8()?;
        if version != MIKEY_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let data_type = DataType(r.u8()?);
        let next = r.u8()?;
        let vprf = r.u8()?;
        let prf = PrfFunc::from_u8(vprf & 0x7f).ok_or(Error::UnsupportedPrf(vprf & 0x7f))?;
        let csb_id = r.u32()?;
        let cs_count = r.u8()?;
        let map_type = r.u8()?;
        let cs_id_map = match map_type {
            cs_id_map_type::SRTP_ID => CsIdMap::SrtpId(SrtpIdEntries::parse_counted(r, cs_count.into())?),
            cs_id_map_type::EMPTY => CsIdMap::Empty { cs_count },
            cs_id_map_type::GENERIC_ID => {
                CsIdMap::GenericId(GenericIdEntries::parse_counted(r, cs_count.into())?)
            }
            other => return Err(Error::UnsupportedCsIdMap(other)),
        };
        Ok((Hdr { data_type, v: vprf & 0x80 != 0, prf, csb_id, cs_id_map }, next))
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>, next: u8) -> Result<(), Error> {
        let cs_count = self.cs_id_map.cs_count()?;
        w.u8(MIKEY_VERSION)?;
        w.u8(self.data_type.0)?;
        w.u8(next)?;
        w.u8(((self.v as u8) << 7) | self.prf.to_u8())?;
        w.u32(self.csb_id)?;
        w.u8(cs_count)?;
        w.u8(self.cs_id_map.map_type())?;
        match &self.cs_id_map {
            CsIdMap::SrtpId(e) => e.encode(w),
            CsIdMap::Empty { .. } => Ok(()),
            CsIdMap::GenericId(e) => e.encode(w),
        }
    }
}

/// KEMAC encryption algorithm (RFC 3830 Table 6.2.a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EncrAlg {
    /// No encryption.
    Null = 0,
    /// AES in counter mode, 128-bit key (the default, §4.2.3).
    AesCm128 = 1,
    /// AES key wrap, 128-bit key (RFC 3830; framed here but not implemented by the crypto).
    AesKw128 = 2,
}

impl EncrAlg {
    /// The algorithm for a wire value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(EncrAlg::Null),
            1 => Some(EncrAlg::AesCm128),
            2 => Some(EncrAlg::AesKw128),
            _ => None,
        }
    }
}

/// MAC algorithm of KEMAC and V payloads (RFC 3830 Table 6.2.b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MacAlg {
    /// No MAC (zero-length MAC field).
    Null = 0,
    /// HMAC-SHA-1, full 160-bit output.
    HmacSha1_160 = 1,
}

impl MacAlg {
    /// The algorithm for a wire value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(MacAlg::Null),
            1 => Some(MacAlg::HmacSha1_160),
            _ => None,
        }
    }

    /// Length of the MAC field.
    pub const fn mac_len(self) -> usize {
        match self {
            MacAlg::Null => 0,
            MacAlg::HmacSha1_160 => 20,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let v = r.u8()?;
        MacAlg::from_u8(v).ok_or(Error::UnsupportedMacAlg(v))
    }
}

/// KEMAC payload (RFC 3830 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kemac<'a> {
    /// Encryption of `encr_data`.
    pub encr_alg: EncrAlg,
    /// The (encrypted) Key data sub-payloads; may be empty.
    pub encr_data: &'a [u8],
    /// MAC algorithm.
    pub mac_alg: MacAlg,
    /// MAC value; its length is fixed by `mac_alg`.
    pub mac: &'a [u8],
}

impl<'a> Kemac<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, Error> {
        let e = r.u8()?;
        let encr_alg = EncrAlg::from_u8(e).ok_or(Error::UnsupportedEncrAlg(e))?;
        let len = r.u16()?;
        let encr_data = r.bytes(len.into())?;
        let mac_alg = MacAlg::parse(r)?;
        let mac = r.bytes(mac_alg.mac_len())?;
        Ok(Kemac { encr_alg, encr_data, mac_alg, mac })
    }

    fn body_len(&self) -> usize {
        1 + 2 + self.encr_data.len() + 1 + self.mac_alg.mac_len()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        if self.mac.len() != self.mac_alg.mac_len() {
            return Err(Error::BadLength);
        }
        w.u8(self.encr_alg as u8)?;
        w.len16(self.encr_data.len())?;
        w.bytes(self.encr_data)?;
        w.u8(self.mac_alg as u8)?;
        w.bytes(self.mac)
    }
}

/// What a key of a Key data sub-payload is (RFC 3830 Table 6.13.a, RFC 6043 Table 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// TEK generation key.
    Tgk,
    /// Traffic encryption key.
    Tek,
    /// Group TGK (RFC 6043).
    Gtgk,
    /// MIKEY Protection Key (RFC 6043); it has no salted form.
    Mpk,
}

/// Key validity (RFC 3830 §6.14, Table 6.13.b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValidity<'a> {
    /// No validity data.
    Null,
    /// SPI / MKI.
    Spi(&'a [u8]),
    /// Validity interval (for SRTP: 48-bit indexes; MBMS puts its own values here).
    Interval {
        /// Valid from.
        from: &'a [u8],
        /// Valid to.
        to: &'a [u8],
    },
}

/// Key data sub-payload (RFC 3830 §6.13, RFC 6043 §6.2.1), found inside the KEMAC's encrypted data.
///
/// The wire type (TGK, TGK+SALT, TEK, TEK+SALT, GTGK, GTGK+SALT, MPK) follows from `key_type` and
/// whether `salt` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyData<'a> {
    /// TGK, TEK, GTGK or MPK.
    pub key_type: KeyType,
    /// The key.
    pub key: &'a [u8],
    /// The salt, for the +SALT types.
    pub salt: Option<&'a [u8]>,
    /// Key validity data.
    pub kv: KeyValidity<'a>,
}

/// Key data type values (RFC 3830 Table 6.13.a, RFC 6043 Table 6.7).
pub mod key_data_type {
    /// TGK.
    pub const TGK: u8 = 0;
    /// TGK + salt.
    pub const TGK_SALT: u8 = 1;
    /// TEK.
    pub const TEK: u8 = 2;
    /// TEK + salt.
    pub const TEK_SALT: u8 = 3;
    /// Group TGK (RFC 6043).
    pub const GTGK: u8 = 4;
    /// Group TGK + salt (RFC 6043).
    pub const GTGK_SALT: u8 = 5;
    /// MIKEY Protection Key (RFC 6043).
    pub const MPK: u8 = 6;
}

/// Key validity type values (RFC 3830 Table 6.13.b).
pub mod kv_type {
    /// No validity data.
    pub const NULL: u8 = 0;
    /// SPI / MKI.
    pub const SPI: u8 = 1;
    /// Interval.
    pub const INTERVAL: u8 = 2;
}

impl<'a> KeyData<'a> {
    /// The 4-bit wire type. An MPK with a salt has none (it does not encode); this gives MPK.
    pub fn wire_type(&self) -> u8 {
        match (self.key_type, self.salt.is_some()) {
            (KeyType::Tgk, false) => key_data_type::TGK,
            (KeyType::Tgk, true) => key_data_type::TGK_SALT,
            (KeyType::Tek, false) => key_data_type::TEK,
            (KeyType::Tek, true) => key_data_type::TEK_SALT,
            (KeyType::Gtgk, false) => key_data_type::GTGK,
            (KeyType::Gtgk, true) => key_data_type::GTGK_SALT,
            (KeyType::Mpk, _) => key_data_type::MPK,
        }
    }

    /// Encoded length including the next-payload byte.
    pub fn encoded_len(&self) -> usize {
        let mut n = 1 + 1 + 2 + self.key.len();
        if let Some(s) = self.salt {
            n += 2 + s.len();
        }
        n + match self.kv {
            KeyValidity::Null => 0,
            KeyValidity::Spi(s) => 1 + s.len(),
            KeyValidity::Interval { from, to } => 2 + from.len() + to.len(),
        }
    }

    /// Parses one sub-payload with the key data types of `set`; returns it with its next-payload
    /// value.
    pub(crate) fn parse(r: &mut Reader<'a>, set: PayloadSet) -> Result<(Self, u8), Error> {
        let next = r.u8()?;
        let tkv = r.u8()?;
        let (key_type, salted) = match tkv >> 4 {
            key_data_type::TGK => (KeyType::Tgk, false),
            key_data_type::TGK_SALT => (KeyType::Tgk, true),
            key_data_type::TEK => (KeyType::Tek, false),
            key_data_type::TEK_SALT => (KeyType::Tek, true),
            key_data_type::GTGK if set.knows_rfc6043() => (KeyType::Gtgk, false),
            key_data_type::GTGK_SALT if set.knows_rfc6043() => (KeyType::Gtgk, true),
            key_data_type::MPK if set.knows_rfc6043() => (KeyType::Mpk, false),
            other => return Err(Error::UnsupportedKeyDataType(other)),
        };
        let key_len = r.u16()?;
        let key = r.bytes(key_len.into())?;
        let salt = if salted {
            let l = r.u16()?;
            Some(r.bytes(l.into())?)
        } else {
            None
        };
        let kv = match tkv & 0x0f {
            kv_type::NULL => KeyValidity::Null,
            kv_type::SPI => {
                let l = r.u8()?;
                KeyValidity::Spi(r.bytes(l.into())?)
            }
            kv_type::INTERVAL => {
                let l = r.u8()?;
                let from = r.bytes(l.into())?;
                let l = r.u8()?;
                let to = r.bytes(l.into())?;
                KeyValidity::Interval { from, to }
            }
            other => return Err(Error::UnsupportedKeyValidity(other)),
        };
        Ok((KeyData { key_type, key, salt, kv }, next))
    }

    fn encode(&self, w: &mut Writer<'_>, next: u8) -> Result<(), Error> {
        if self.key_type == KeyType::Mpk && self.salt.is_some() {
            return Err(Error::BadLength);
        }
        let kv = match self.kv {
            KeyValidity::Null => kv_type::NULL,
            KeyValidity::Spi(_) => kv_type::SPI,
            KeyValidity::Interval { .. } => kv_type::INTERVAL,
        };
        w.u8(next)?;
        w.u8((self.wire_type() << 4) | kv)?;
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

/// The Key data sub-payloads of a (decrypted) KEMAC, validated: each next-payload is Key data
/// (20) except the last, which is 0, and they fill the data exactly. Empty data has no keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDataList<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> KeyDataList<'a> {
    /// Validates plaintext key data of an RFC 3830 KEMAC (key data types TGK and TEK, with or without
    /// salt).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let mut count = 0;
        while !r.is_empty() {
            let (_, next) = KeyData::parse(&mut r, PayloadSet::Rfc3830)?;
            count += 1;
            match next {
                0 => {
                    if !r.is_empty() {
                        return Err(Error::TrailingBytes);
                    }
                }
                20 => {
                    if r.is_empty() {
                        return Err(Error::Truncated);
                    }
                }
                other => return Err(Error::UnexpectedPayload(unexpected(other)?)),
            }
        }
        Ok(KeyDataList { bytes, count })
    }

    /// Number of Key data sub-payloads.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sub-payloads in order.
    pub fn iter(&self) -> KeyDataIter<'a> {
        KeyDataIter { r: Reader::new(self.bytes) }
    }

    /// Encoded length of these sub-payloads.
    pub fn encoded_len(items: &[KeyData<'_>]) -> usize {
        items.iter().map(KeyData::encoded_len).sum()
    }

    /// Writes the sub-payloads with their next-payload chain into `out`; returns the length.
    pub fn encode(items: &[KeyData<'_>], out: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(out);
        Self::encode_into(items, &mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn encode_into(items: &[KeyData<'_>], w: &mut Writer<'_>) -> Result<(), Error> {
        for (i, k) in items.iter().enumerate() {
            let next = if i + 1 == items.len() { 0 } else { PayloadType::KeyData as u8 };
            k.encode(w, next)?;
        }
        Ok(())
    }
}

/// Iterator over validated Key data sub-payloads.
#[derive(Clone)]
pub struct KeyDataIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for KeyDataIter<'a> {
    type Item = KeyData<'a>;

    fn next(&mut self) -> Option<KeyData<'a>> {
        if self.r.is_empty() {
            return None;
        }
        match KeyData::parse(&mut self.r, PayloadSet::Rfc3830) {
            Ok((k, _)) => Some(k),
            Err(_) => {
                let _ = self.r.rest();
                None
            }
        }
    }
}

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01), RFC 5905 §6: the one
/// definition every NTP timestamp of the workspace (RFC 3830 §6.6) is converted with.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An NTP-UTC 64-bit timestamp value (RFC 3830 §6.6) for Unix seconds, fraction zero.
pub const fn ntp_from_unix(unix_secs: u64) -> u64 {
    (unix_secs + NTP_UNIX_OFFSET) << 32
}

/// NTP era rule of RFC 4330 §3: a 32-bit seconds field with its most significant bit clear counts
/// from 2036-02-07T06:28:16Z (era 1), so 1968 to 2104 read unambiguously.
pub const NTP_ERA_PIVOT_BIT: u32 = 0x8000_0000;

/// Seconds since 1900-01-01T00:00:00Z of a 64-bit NTP timestamp (RFC 3830 §6.6), a seconds field
/// with its top bit clear read as era 1 ([`NTP_ERA_PIVOT_BIT`]); the fraction is dropped.
pub const fn ntp_era_seconds(timestamp: u64) -> u64 {
    let seconds = (timestamp >> 32) as u32;
    if seconds & NTP_ERA_PIVOT_BIT != 0 { seconds as u64 } else { seconds as u64 + (1 << 32) }
}

/// Timestamp type values (RFC 3830 Table 6.6, RFC 6043 Table 6.8).
pub mod ts_type {
    /// NTP timestamp in UTC, 64 bits.
    pub const NTP_UTC: u8 = 0;
    /// NTP timestamp, 64 bits.
    pub const NTP: u8 = 1;
    /// Counter, 32 bits.
    pub const COUNTER: u8 = 2;
    /// NTP-UTC-32: whole seconds since 1900, 32 bits (RFC 6043).
    pub const NTP_UTC_32: u8 = 3;
}

/// A timestamp of any TS type (RFC 3830 §6.6 Table 6.6, RFC 6043 Table 6.8): the value of a T
/// payload (types 0 to 2 here, as the T payloads this crate reads and writes) or of a TR payload
/// (RFC 6043 §6.4, all four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// NTP-UTC, 64 bits.
    NtpUtc(u64),
    /// NTP, 64 bits.
    Ntp(u64),
    /// Counter, 32 bits.
    Counter(u32),
    /// NTP-UTC-32: whole seconds since 1900 (RFC 6043; TR payloads only).
    NtpUtc32(u32),
}

impl Timestamp {
    /// The value as 64 bits: a COUNTER is zero-padded on the left (RFC 3830 Table 6.6 note), as it
    /// enters the KEMAC IV and replay checks; an NTP-UTC-32 becomes an NTP-UTC timestamp with a
    /// zero fraction (RFC 6043 §6.3).
    pub const fn as_u64(&self) -> u64 {
        match *self {
            Timestamp::NtpUtc(v) | Timestamp::Ntp(v) => v,
            Timestamp::Counter(c) => c as u64,
            Timestamp::NtpUtc32(s) => (s as u64) << 32,
        }
    }

    /// Whole NTP seconds (for validity checks); a counter has none.
    pub const fn ntp_seconds(&self) -> Option<u32> {
        match *self {
            Timestamp::NtpUtc(v) | Timestamp::Ntp(v) => Some((v >> 32) as u32),
            Timestamp::NtpUtc32(s) => Some(s),
            Timestamp::Counter(_) => None,
        }
    }

    /// The type value.
    pub const fn ts_type(&self) -> u8 {
        match self {
            Timestamp::NtpUtc(_) => ts_type::NTP_UTC,
            Timestamp::Ntp(_) => ts_type::NTP,
            Timestamp::Counter(_) => ts_type::COUNTER,
            Timestamp::NtpUtc32(_) => ts_type::NTP_UTC_32,
        }
    }

    /// Length of the value field: 8 or 4 bytes.
    pub const fn value_len(&self) -> usize {
        match self {
            Timestamp::NtpUtc(_) | Timestamp::Ntp(_) => 8,
            Timestamp::Counter(_) | Timestamp::NtpUtc32(_) => 4,
        }
    }

    /// Writes the value field as carried (8 or 4 bytes) into `out`; returns its length.
    pub fn value_bytes(&self, out: &mut [u8; 8]) -> usize {
        match *self {
            Timestamp::NtpUtc(v) | Timestamp::Ntp(v) => {
                *out = v.to_be_bytes();
                8
            }
            Timestamp::Counter(c) | Timestamp::NtpUtc32(c) => {
                out[..4].copy_from_slice(&c.to_be_bytes());
                4
            }
        }
    }

    /// Reads a TS type and value. NTP-UTC-32 only where `ntp_utc_32` allows it (TR payloads).
    pub(crate) fn parse(r: &mut Reader<'_>, ntp_utc_32: bool) -> Result<Self, Error> {
        match r.u8()? {
            ts_type::NTP_UTC => Ok(Timestamp::NtpUtc(r.u64()?)),
            ts_type::NTP => Ok(Timestamp::Ntp(r.u64()?)),
            ts_type::COUNTER => Ok(Timestamp::Counter(r.u32()?)),
            ts_type::NTP_UTC_32 if ntp_utc_32 => Ok(Timestamp::NtpUtc32(r.u32()?)),
            other => Err(Error::UnsupportedTimestampType(other)),
        }
    }

    fn body_len(&self) -> usize {
        1 + self.value_len()
    }

    /// Writes the TS type and value.
    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u8(self.ts_type())?;
        match *self {
            Timestamp::NtpUtc(v) | Timestamp::Ntp(v) => w.u64(v),
            Timestamp::Counter(c) | Timestamp::NtpUtc32(c) => w.u32(c),
        }
    }
}

/// ID type (RFC 3830 §6.7, RFC 6043 Table 6.5). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdType(pub u8);

impl IdType {
    /// Network access identifier.
    pub const NAI: IdType = IdType(0);
    /// URI.
    pub const URI: IdType = IdType(1);
}

/// ID payload (RFC 3830 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id<'a> {
    /// ID type.
    pub id_type: IdType,
    /// The identity.
    pub data: &'a [u8],
}

/// ID role of an IDR payload (RFC 6043 Table 6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdRole(pub u8);

impl IdRole {
    /// Initiator (IDRi).
    pub const INITIATOR: IdRole = IdRole(1);
    /// Responder (IDRr).
    pub const RESPONDER: IdRole = IdRole(2);
    /// KMS (IDRkms).
    pub const KMS: IdRole = IdRole(3);
    /// Pre-shared key (IDRpsk).
    pub const PSK: IdRole = IdRole(4);
    /// Application (IDRapp).
    pub const APP: IdRole = IdRole(5);
}

/// IDR payload: an ID with a role (RFC 6043 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idr<'a> {
    /// Role of the identity.
    pub role: IdRole,
    /// ID type.
    pub id_type: IdType,
    /// The identity.
    pub data: &'a [u8],
}

/// V payload (RFC 3830 §6.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification<'a> {
    /// MAC algorithm.
    pub mac_alg: MacAlg,
    /// Verification data (the MAC); length fixed by `mac_alg`.
    pub mac: &'a [u8],
}

/// Security protocol of an SP payload (RFC 3830 Table 6.10.a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtType(pub u8);

impl ProtType {
    /// SRTP.
    pub const SRTP: ProtType = ProtType(0);
}

/// SRTP policy parameter types (RFC 3830 Table 6.10.1.a).
pub mod srtp_param {
    /// Encryption algorithm (0 NULL, 1 AES-CM, 2 AES-F8).
    pub const ENCR_ALG: u8 = 0;
    /// Session encryption key length in bytes.
    pub const ENCR_KEY_LEN: u8 = 1;
    /// Authentication algorithm (0 NULL, 1 HMAC-SHA-1).
    pub const AUTH_ALG: u8 = 2;
    /// Session authentication key length in bytes.
    pub const AUTH_KEY_LEN: u8 = 3;
    /// Session salt key length in bytes.
    pub const SALT_KEY_LEN: u8 = 4;
    /// SRTP PRF (0 AES-CM).
    pub const PRF: u8 = 5;
    /// Key derivation rate.
    pub const KEY_DERIVATION_RATE: u8 = 6;
    /// SRTP encryption off/on.
    pub const SRTP_ENCR: u8 = 7;
    /// SRTCP encryption off/on.
    pub const SRTCP_ENCR: u8 = 8;
    /// Sender's FEC order.
    pub const FEC_ORDER: u8 = 9;
    /// SRTP authentication off/on.
    pub const SRTP_AUTH: u8 = 10;
    /// Authentication tag length in bytes.
    pub const AUTH_TAG_LEN: u8 = 11;
    /// SRTP prefix length.
    pub const PREFIX_LEN: u8 = 12;
}

/// One policy parameter: `type(1) | length(1) | value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpParam<'a> {
    /// Parameter type.
    pub param_type: u8,
    /// Value.
    pub value: &'a [u8],
}

impl<'a> WireItem<'a> for SpParam<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, Error> {
        let param_type = r.u8()?;
        let l = r.u8()?;
        Ok(SpParam { param_type, value: r.bytes(l.into())? })
    }
    fn encoded_len(&self) -> usize {
        2 + self.value.len()
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u8(self.param_type)?;
        w.len8(self.value.len())?;
        w.bytes(self.value)
    }
}

wire_list!(
    /// The parameters of an SP payload.
    'a, SpParams, SpParamIter, SpParam<'a>
);

/// SP payload (RFC 3830 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityPolicy<'a> {
    /// Policy number (referred to by the CS ID map).
    pub policy_no: u8,
    /// Security protocol.
    pub prot_type: ProtType,
    /// Parameters.
    pub params: SpParams<'a>,
}

/// RAND payload (RFC 3830 §6.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rand<'a> {
    /// The random value (at least 16 bytes for key derivation, §4.1.1).
    pub rand: &'a [u8],
}

/// Error number of an ERR payload (RFC 3830 Table 6.12). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorNo(pub u8);

impl ErrorNo {
    /// Authentication failure.
    pub const AUTH_FAILURE: ErrorNo = ErrorNo(0);
    /// Invalid timestamp.
    pub const INVALID_TS: ErrorNo = ErrorNo(1);
    /// PRF function not supported.
    pub const INVALID_PRF: ErrorNo = ErrorNo(2);
    /// MAC algorithm not supported.
    pub const INVALID_MAC: ErrorNo = ErrorNo(3);
    /// Encryption algorithm not supported.
    pub const INVALID_EA: ErrorNo = ErrorNo(4);
    /// Hash function not supported.
    pub const INVALID_HA: ErrorNo = ErrorNo(5);
    /// DH group not supported.
    pub const INVALID_DH: ErrorNo = ErrorNo(6);
    /// ID not supported.
    pub const INVALID_ID: ErrorNo = ErrorNo(7);
    /// Certificate not supported.
    pub const INVALID_CERT: ErrorNo = ErrorNo(8);
    /// SP type not supported.
    pub const INVALID_SP: ErrorNo = ErrorNo(9);
    /// SP parameter not supported.
    pub const INVALID_SPPAR: ErrorNo = ErrorNo(10);
    /// Data type not supported.
    pub const INVALID_DT: ErrorNo = ErrorNo(11);
    /// Unspecified error.
    pub const UNSPECIFIED: ErrorNo = ErrorNo(12);
}

/// ERR payload (RFC 3830 §6.12): `error no(1) | reserved(2)`; the reserved bytes are written as
/// zero and ignored on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrPayload {
    /// Error number.
    pub error_no: ErrorNo,
}

/// General extension types (RFC 3830 §6.15, RFC 4563 Table 1).
pub mod ext_type {
    /// Vendor ID.
    pub const VENDOR_ID: u8 = 0;
    /// SDP IDs.
    pub const SDP_IDS: u8 = 1;
    /// Key ID information (RFC 4563 §4).
    pub const KEY_ID: u8 = 3;
}

/// Key ID type of a Key ID sub-payload (RFC 4563 Table 2). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyIdType(pub u8);

impl KeyIdType {
    /// MBMS Key Domain ID.
    pub const MBMS_KEY_DOMAIN_ID: KeyIdType = KeyIdType(0);
    /// MBMS Service Key ID (MSK ID).
    pub const MBMS_MSK_ID: KeyIdType = KeyIdType(1);
    /// MBMS Traffic Key ID (MTK ID).
    pub const MBMS_MTK_ID: KeyIdType = KeyIdType(2);
}

/// One Key ID sub-payload (RFC 4563 §4): `type(1) | length(1) | Key ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId<'a> {
    /// Key ID type.
    pub key_id_type: KeyIdType,
    /// The Key ID.
    pub value: &'a [u8],
}

impl<'a> WireItem<'a> for KeyId<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, Error> {
        let t = r.u8()?;
        let l = r.u8()?;
        Ok(KeyId { key_id_type: KeyIdType(t), value: r.bytes(l.into())? })
    }
    fn encoded_len(&self) -> usize {
        2 + self.value.len()
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u8(self.key_id_type.0)?;
        w.len8(self.value.len())?;
        w.bytes(self.value)
    }
}

wire_list!(
    /// The Key ID sub-payloads of a Key ID information extension.
    'a, KeyIds, KeyIdIter, KeyId<'a>
);

impl<'a> KeyIds<'a> {
    /// The first Key ID of a type.
    pub fn find(&self, t: KeyIdType) -> Option<&'a [u8]> {
        self.iter().find(|k| k.key_id_type == t).map(|k| k.value)
    }
}

/// General extension payload (RFC 3830 §6.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneralExtension<'a> {
    /// Key ID information (type 3, RFC 4563 §4).
    KeyIdInfo(KeyIds<'a>),
    /// Any other type, kept raw. (Type 3 data is always decoded as [`GeneralExtension::KeyIdInfo`].)
    Other {
        /// Extension type.
        ext_type: u8,
        /// Extension data.
        data: &'a [u8],
    },
}

/// Any payload this crate can frame, without its next-payload byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// KEMAC.
    Kemac(Kemac<'a>),
    /// T.
    Timestamp(Timestamp),
    /// ID.
    Id(Id<'a>),
    /// IDR (RFC 6043).
    Idr(Idr<'a>),
    /// V.
    Verification(Verification<'a>),
    /// SP.
    SecurityPolicy(SecurityPolicy<'a>),
    /// RAND.
    Rand(Rand<'a>),
    /// ERR.
    Err(ErrPayload),
    /// General extension.
    GeneralExtension(GeneralExtension<'a>),
    /// TR: a timestamp with a role (RFC 6043 §6.4).
    Tr(Tr),
    /// RANDR: a RAND with a role (RFC 6043 §6.8).
    Randr(Randr<'a>),
    /// TP: the ticket policy asked for (RFC 6043 §6.10).
    Tp(TicketPolicy<'a>),
    /// TICKET (RFC 6043 §6.10).
    Ticket(Ticket<'a>),
}

fn unexpected(v: u8) -> Result<PayloadType, Error> {
    PayloadType::from_u8(v).ok_or(Error::UnsupportedPayload(v))
}

impl<'a> Payload<'a> {
    /// This payload's type.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Kemac(_) => PayloadType::Kemac,
            Payload::Timestamp(_) => PayloadType::Timestamp,
            Payload::Id(_) => PayloadType::Id,
            Payload::Idr(_) => PayloadType::Idr,
            Payload::Verification(_) => PayloadType::Verification,
            Payload::SecurityPolicy(_) => PayloadType::SecurityPolicy,
            Payload::Rand(_) => PayloadType::Rand,
            Payload::Err(_) => PayloadType::Err,
            Payload::GeneralExtension(_) => PayloadType::GeneralExtension,
            Payload::Tr(_) => PayloadType::Tr,
            Payload::Randr(_) => PayloadType::Randr,
            Payload::Tp(_) => PayloadType::Tp,
            Payload::Ticket(_) => PayloadType::Ticket,
        }
    }

    /// Encoded length including the next-payload byte.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Payload::Kemac(k) => k.body_len(),
            Payload::Timestamp(t) => t.body_len(),
            Payload::Id(id) => 3 + id.data.len(),
            Payload::Idr(idr) => 4 + idr.data.len(),
            Payload::Verification(v) => 1 + v.mac_alg.mac_len(),
            Payload::SecurityPolicy(sp) => 4 + sp.params.encoded_len(),
            Payload::Rand(r) => 1 + r.rand.len(),
            Payload::Err(_) => 3,
            Payload::GeneralExtension(GeneralExtension::KeyIdInfo(ids)) => 3 + ids.encoded_len(),
            Payload::GeneralExtension(GeneralExtension::Other { data, .. }) => 3 + data.len(),
            Payload::Tr(t) => 2 + t.ts.value_len(),
            Payload::Randr(r) => 2 + r.rand.len(),
            Payload::Tp(p) => p.encoded_len(),
            Payload::Ticket(t) => t.encoded_len(),
        }
    }

    /// Parses one payload of type `ty` (the previous payload's next-payload value) if `set` knows it;
    /// returns it with its own next-payload value.
    pub(crate) fn parse(ty: u8, r: &mut Reader<'a>, set: PayloadSet) -> Result<(Self, u8), Error> {
        let kind = unexpected(ty)?;
        let next = r.u8()?;
        let rfc6043 = set.knows_rfc6043();
        let p = match kind {
            PayloadType::Kemac => Payload::Kemac(Kemac::parse(r)?),
            PayloadType::Timestamp => Payload::Timestamp(Timestamp::parse(r, false)?),
            PayloadType::Id => {
                let id_type = IdType(r.u8()?);
                let l = r.u16()?;
                Payload::Id(Id { id_type, data: r.bytes(l.into())? })
            }
            PayloadType::Idr => {
                let role = IdRole(r.u8()?);
                let id_type = IdType(r.u8()?);
                let l = r.u16()?;
                Payload::Idr(Idr { role, id_type, data: r.bytes(l.into())? })
            }
            PayloadType::Verification => {
                let mac_alg = MacAlg::parse(r)?;
                Payload::Verification(Verification { mac_alg, mac: r.bytes(mac_alg.mac_len())? })
            }
            PayloadType::SecurityPolicy => {
                let policy_no = r.u8()?;
                let prot_type = ProtType(r.u8()?);
                let l = r.u16()?;
                let params = SpParams::parse_exact(r.bytes(l.into())?)?;
                Payload::SecurityPolicy(SecurityPolicy { policy_no, prot_type, params })
            }
            PayloadType::Rand => {
                let l = r.u8()?;
                Payload::Rand(Rand { rand: r.bytes(l.into())? })
            }
            PayloadType::Err => {
                let error_no = ErrorNo(r.u8()?);
                r.bytes(2)?;
                Payload::Err(ErrPayload { error_no })
            }
            PayloadType::GeneralExtension => {
                let ext_type = r.u8()?;
                let l = r.u16()?;
                let data = r.bytes(l.into())?;
                Payload::GeneralExtension(if ext_type == ext_type::KEY_ID {
                    GeneralExtension::KeyIdInfo(KeyIds::parse_exact(data)?)
                } else {
                    GeneralExtension::Other { ext_type, data }
                })
            }
            PayloadType::Tr if rfc6043 => {
                let role = r.u8()?;
                Payload::Tr(Tr { role, ts: Timestamp::parse(r, true)? })
            }
            PayloadType::Randr if rfc6043 => {
                let role = r.u8()?;
                let l = r.u8()?;
                Payload::Randr(Randr { role, rand: r.bytes(l.into())? })
            }
            PayloadType::Tp if rfc6043 => Payload::Tp(TicketPolicy::parse(r)?),
            PayloadType::Ticket if rfc6043 => Payload::Ticket(Ticket::parse(r)?),
            PayloadType::KeyData | PayloadType::Last => return Err(Error::UnexpectedPayload(kind)),
            PayloadType::Pke
            | PayloadType::Dh
            | PayloadType::Sign
            | PayloadType::Cert
            | PayloadType::Chash
            | PayloadType::Tr
            | PayloadType::Randr
            | PayloadType::Tp
            | PayloadType::Ticket => return Err(Error::UnsupportedPayload(ty)),
        };
        Ok((p, next))
    }

    /// Writes the payload with the given next-payload value.
    pub(crate) fn encode(&self, w: &mut Writer<'_>, next: u8) -> Result<(), Error> {
        w.u8(next)?;
        match self {
            Payload::Kemac(k) => k.encode(w),
            // A T payload carries the RFC 3830 types; NTP-UTC-32 is for TR payloads.
            Payload::Timestamp(Timestamp::NtpUtc32(_)) => {
                Err(Error::UnsupportedTimestampType(ts_type::NTP_UTC_32))
            }
            Payload::Timestamp(t) => t.encode(w),
            Payload::Id(id) => {
                w.u8(id.id_type.0)?;
                w.len16(id.data.len())?;
                w.bytes(id.data)
            }
            Payload::Idr(idr) => {
                w.u8(idr.role.0)?;
                w.u8(idr.id_type.0)?;
                w.len16(idr.data.len())?;
                w.bytes(idr.data)
            }
            Payload::Verification(v) => {
                if v.mac.len() != v.mac_alg.mac_len() {
                    return Err(Error::BadLength);
                }
                w.u8(v.mac_alg as u8)?;
                w.bytes(v.mac)
            }
            Payload::SecurityPolicy(sp) => {
                w.u8(sp.policy_no)?;
                w.u8(sp.prot_type.0)?;
                w.len16(sp.params.encoded_len())?;
                sp.params.encode(w)
            }
            Payload::Rand(r) => {
                w.len8(r.rand.len())?;
                w.bytes(r.rand)
            }
            Payload::Err(e) => {
                w.u8(e.error_no.0)?;
                w.u16(0)
            }
            Payload::GeneralExtension(GeneralExtension::KeyIdInfo(ids)) => {
                w.u8(ext_type::KEY_ID)?;
                w.len16(ids.encoded_len())?;
                ids.encode(w)
            }
            Payload::GeneralExtension(GeneralExtension::Other { ext_type, data }) => {
                w.u8(*ext_type)?;
                w.len16(data.len())?;
                w.bytes(data)
            }
            Payload::Tr(t) => {
                w.u8(t.role)?;
                t.ts.encode(w)
            }
            Payload::Randr(r) => {
                w.u8(r.role)?;
                w.len8(r.rand.len())?;
                w.bytes(r.rand)
            }
            Payload::Tp(p) => p.encode(w),
            Payload::Ticket(t) => t.encode(w),
        }
    }
}
