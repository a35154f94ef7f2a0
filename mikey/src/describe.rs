//! A MIKEY message described field by field (RFC 3830 §6, RFC 4563 §4–5, RFC 6043 §6), with the
//! MBMS profile's verification and decryption (TS 33.246 §6.3): an ordered tree of named values
//! that a caller prints as text or JSON. Needs the `std` feature.

use std::borrow::Cow;
use std::fmt;

use crate::kemac::{TransportKeys, decrypt_key_data};
use crate::mbms::{
    KeyValidityData, Msk, MskUpdate, Muk, parse_msk_message, parse_mtk_message, profile,
    verify_and_decrypt_msk, verify_and_decrypt_mtk,
};
use crate::payload::{cs_id_map_type, ext_type, key_data_type, kv_type, srtp_param};
use crate::{
    CsIdMap, DataType, EncrAlg, ErrorNo, GeneralExtension, Hdr, IdRole, IdType, KeyData, KeyDataList,
    KeyIdType, KeyType, KeyValidity, MacAlg, Message, Payload, PayloadType, PrfFunc, ProtType, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// The tree

/// A leaf value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text (hex strings included).
    Text(String),
    /// A non-negative number.
    Number(u64),
    /// A flag.
    Bool(bool),
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<Cow<'_, str>> for Value {
    fn from(v: Cow<'_, str>) -> Self {
        Value::Text(v.into_owned())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

macro_rules! number_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Number(v as u64)
            }
        }
    )*};
}
number_from!(u8, u16, u32, u64, usize);

/// A field's content: a value, a nested object, or a list of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A leaf.
    Value(Value),
    /// Named fields.
    Object(Fields),
    /// Objects in order.
    List(Vec<Fields>),
}

/// Named fields in the order they are to be printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(&'static str, Node)>);

impl Fields {
    /// Appends a value.
    pub fn val(&mut self, key: &'static str, v: impl Into<Value>) -> &mut Self {
        self.0.push((key, Node::Value(v.into())));
        self
    }

    /// Appends bytes as lower-case hex text.
    pub fn hex(&mut self, key: &'static str, bytes: &[u8]) -> &mut Self {
        self.val(key, hex::encode(bytes))
    }

    /// A numeric code and, when known, its name as `<key>_name`.
    pub fn code(
        &mut self,
        key: &'static str,
        name_key: &'static str,
        v: u8,
        name: Option<&str>,
    ) -> &mut Self {
        self.val(key, v);
        if let Some(n) = name {
            self.val(name_key, n);
        }
        self
    }

    /// Appends a nested object.
    pub fn object(&mut self, key: &'static str, f: Fields) -> &mut Self {
        self.0.push((key, Node::Object(f)));
        self
    }

    /// Appends a list of objects.
    pub fn list(&mut self, key: &'static str, items: Vec<Fields>) -> &mut Self {
        self.0.push((key, Node::List(items)));
        self
    }

    /// The first field called `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, n)| n)
    }
}

// ---------------------------------------------------------------------------------------------
// Names of the codes (RFC 3830 §6, RFC 4563, RFC 6043)

/// The name of an HDR data type (RFC 3830 Table 6.1.a, RFC 6043 Table 6.1).
pub fn data_type_name(v: DataType) -> Option<&'static str> {
    Some(match v {
        DataType::PSK_INIT => "PSK init",
        DataType::PSK_VERIFY => "PSK verification",
        DataType::PK_INIT => "public-key init",
        DataType::PK_VERIFY => "public-key verification",
        DataType::DH_INIT => "DH init",
        DataType::DH_RESP => "DH response",
        DataType::ERROR => "error",
        DataType::DHHMAC_INIT => "DHHMAC init",
        DataType::DHHMAC_RESP => "DHHMAC response",
        DataType::RSA_R_INIT => "RSA-R init",
        DataType::RSA_R_RESP => "RSA-R response",
        DataType::REQUEST_INIT_PSK => "REQUEST_INIT (PSK)",
        DataType::REQUEST_INIT_PK => "REQUEST_INIT (PK)",
        DataType::REQUEST_RESP => "REQUEST_RESP",
        DataType::TRANSFER_INIT => "TRANSFER_INIT",
        DataType::TRANSFER_RESP => "TRANSFER_RESP",
        DataType::RESOLVE_INIT_PSK => "RESOLVE_INIT (PSK)",
        DataType::RESOLVE_INIT_PK => "RESOLVE_INIT (PK)",
        DataType::RESOLVE_RESP => "RESOLVE_RESP",
        _ => return None,
    })
}

/// Short payload names, as RFC 3830 §6 and RFC 6043 §6 write them.
pub fn payload_type_name(t: PayloadType) -> &'static str {
    match t {
        PayloadType::Last => "last",
        PayloadType::Kemac => "KEMAC",
        PayloadType::Pke => "PKE",
        PayloadType::Dh => "DH",
        PayloadType::Sign => "SIGN",
        PayloadType::Timestamp => "T",
        PayloadType::Id => "ID",
        PayloadType::Cert => "CERT",
        PayloadType::Chash => "CHASH",
        PayloadType::Verification => "V",
        PayloadType::SecurityPolicy => "SP",
        PayloadType::Rand => "RAND",
        PayloadType::Err => "ERR",
        PayloadType::Tr => "TR",
        PayloadType::Idr => "IDR",
        PayloadType::Randr => "RANDR",
        PayloadType::Tp => "TP",
        PayloadType::Ticket => "TICKET",
        PayloadType::KeyData => "Key data",
        PayloadType::GeneralExtension => "EXT",
    }
}

/// The payload name of a next-payload code, or `unknown type N`.
pub fn payload_name(v: u8) -> String {
    match PayloadType::from_u8(v) {
        Some(t) => payload_type_name(t).to_owned(),
        None => format!("unknown type {v}"),
    }
}

fn map_type_name(v: u8) -> Option<&'static str> {
    match v {
        cs_id_map_type::SRTP_ID => Some("SRTP-ID"),
        cs_id_map_type::EMPTY => Some("empty map"),
        cs_id_map_type::GENERIC_ID => Some("GENERIC-ID"),
        _ => None,
    }
}

fn encr_alg_name(a: EncrAlg) -> &'static str {
    match a {
        EncrAlg::Null => "NULL",
        EncrAlg::AesCm128 => "AES-CM-128",
        EncrAlg::AesKw128 => "AES-KW-128",
    }
}

fn mac_alg_name(a: MacAlg) -> &'static str {
    match a {
        MacAlg::Null => "NULL",
        MacAlg::HmacSha1_160 => "HMAC-SHA-1-160",
    }
}

fn id_type_name(v: IdType) -> Option<&'static str> {
    match v {
        IdType::NAI => Some("NAI"),
        IdType::URI => Some("URI"),
        _ => None,
    }
}

fn key_id_type_name(t: KeyIdType) -> Option<&'static str> {
    match t {
        KeyIdType::MBMS_KEY_DOMAIN_ID => Some("Key Domain ID"),
        KeyIdType::MBMS_MSK_ID => Some("MSK ID"),
        KeyIdType::MBMS_MTK_ID => Some("MTK ID"),
        _ => None,
    }
}

fn srtp_param_name(v: u8) -> Option<&'static str> {
    Some(match v {
        srtp_param::ENCR_ALG => "encryption algorithm",
        srtp_param::ENCR_KEY_LEN => "session encryption key length",
        srtp_param::AUTH_ALG => "authentication algorithm",
        srtp_param::AUTH_KEY_LEN => "session authentication key length",
        srtp_param::SALT_KEY_LEN => "session salt key length",
        srtp_param::PRF => "SRTP PRF",
        srtp_param::KEY_DERIVATION_RATE => "key derivation rate",
        srtp_param::SRTP_ENCR => "SRTP encryption",
        srtp_param::SRTCP_ENCR => "SRTCP encryption",
        srtp_param::FEC_ORDER => "sender's FEC order",
        srtp_param::SRTP_AUTH => "SRTP authentication",
        srtp_param::AUTH_TAG_LEN => "authentication tag length",
        srtp_param::PREFIX_LEN => "SRTP prefix length",
        _ => return None,
    })
}

fn error_no_name(v: ErrorNo) -> Option<&'static str> {
    Some(match v {
        ErrorNo::AUTH_FAILURE => "authentication failure",
        ErrorNo::INVALID_TS => "invalid timestamp",
        ErrorNo::INVALID_PRF => "PRF function not supported",
        ErrorNo::INVALID_MAC => "MAC algorithm not supported",
        ErrorNo::INVALID_EA => "encryption algorithm not supported",
        ErrorNo::INVALID_HA => "hash function not supported",
        ErrorNo::INVALID_DH => "DH group not supported",
        ErrorNo::INVALID_ID => "ID not supported",
        ErrorNo::INVALID_CERT => "certificate not supported",
        ErrorNo::INVALID_SP => "SP type not supported",
        ErrorNo::INVALID_SPPAR => "SP parameter not supported",
        ErrorNo::INVALID_DT => "data type not supported",
        ErrorNo::UNSPECIFIED => "unspecified error",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Time

/// A 64-bit NTP timestamp (RFC 3830 §6.6: seconds since 1900 in the upper 32 bits, fraction in the
/// lower) as ISO 8601 UTC. Seconds with the top bit clear belong to NTP era 1 (2036–2104), as
/// RFC 4330 §3 reads them.
pub fn ntp_to_iso8601(ntp: u64) -> String {
    let unix = crate::ntp_era_seconds(ntp) as i64 - crate::NTP_UNIX_OFFSET as i64;
    let (days, sod) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = gba::lifetime::civil_from_days(days);
    let micros = ((ntp & 0xffff_ffff) * 1_000_000) >> 32;
    let frac = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z", sod / 3600, sod / 60 % 60, sod % 60)
}
// ---------------------------------------------------------------------------------------------
// Where a malformed message breaks

/// Outcome of parsing a probe message.
enum Probe {
    Fits,
    TooShort,
    TooLong,
    Broken,
}

fn probe(bytes: &[u8]) -> Probe {
    match Message::parse(bytes) {
        Ok(_) => Probe::Fits,
        Err(crate::Error::Truncated) => Probe::TooShort,
        Err(crate::Error::TrailingBytes) => Probe::TooLong,
        Err(_) => Probe::Broken,
    }
}

/// The length in 1..=max for which `make(len)` parses exactly, by bisection: a prefix that is too
/// short reports truncation, one that is too long reports trailing bytes.
fn fitting_len(max: usize, make: impl Fn(usize) -> Vec<u8>) -> Option<usize> {
    let (mut lo, mut hi) = (1usize, max);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match probe(&make(mid)) {
            Probe::Fits => return Some(mid),
            Probe::TooShort => lo = mid + 1,
            Probe::TooLong => hi = mid.checked_sub(1)?,
            Probe::Broken => return None,
        }
    }
    None
}

/// Where [`Message::parse`] stopped, found with the same parser: each payload is cut out and
/// framed as a one-payload message behind the original header, so the first payload that does not
/// frame is the broken one.
pub fn locate(bytes: &[u8]) -> String {
    let header = fitting_len(bytes.len(), |n| {
        let mut m = bytes.get(..n).unwrap_or(bytes).to_vec();
        if let Some(next) = m.get_mut(2) {
            *next = 0;
        }
        m
    });
    let (Some(hdr_len), Some(&first)) = (header, bytes.get(2)) else {
        return "in HDR at offset 0".to_owned();
    };
    let (mut next, mut at, mut number) = (first, hdr_len, 1usize);
    while next != 0 {
        let rest = bytes.len().saturating_sub(at);
        let found = fitting_len(rest, |n| {
            let mut m = bytes.get(..hdr_len).unwrap_or_default().to_vec();
            if let Some(b) = m.get_mut(2) {
                *b = next;
            }
            m.extend_from_slice(bytes.get(at..at + n).unwrap_or_default());
            if let Some(b) = m.get_mut(hdr_len) {
                *b = 0;
            }
            m
        });
        match (found, bytes.get(at)) {
            (Some(len), Some(&following)) => {
                next = following;
                at += len;
                number += 1;
            }
            _ => return format!("in payload {number} ({}) at offset {at}", payload_name(next)),
        }
    }
    format!("after the last payload, at offset {at}")
}

// ---------------------------------------------------------------------------------------------
// Describing payloads

fn key_data_fields(kd: &KeyData<'_>, show_keys: bool) -> Fields {
    let mut f = Fields::default();
    let type_name = match kd.wire_type() {
        key_data_type::TGK => "TGK",
        key_data_type::TGK_SALT => "TGK+SALT",
        key_data_type::TEK => "TEK",
        _ => "TEK+SALT",
    };
    f.code("key_type", "key_type_name", kd.wire_type(), Some(type_name)).val("key_len", kd.key.len());
    if show_keys {
        f.hex("key", kd.key);
    }
    if let Some(salt) = kd.salt {
        f.val("salt_len", salt.len());
        if show_keys {
            f.hex("salt", salt);
        }
    }
    match kd.kv {
        KeyValidity::Null => {
            f.code("kv_type", "kv_type_name", kv_type::NULL, Some("NULL"));
        }
        KeyValidity::Spi(spi) => {
            f.code("kv_type", "kv_type_name", kv_type::SPI, Some("SPI/MKI")).hex("kv_spi", spi);
        }
        KeyValidity::Interval { from, to } => {
            f.code("kv_type", "kv_type_name", kv_type::INTERVAL, Some("interval"))
                .hex("kv_from", from)
                .hex("kv_to", to);
        }
    }
    f
}

fn key_data_list(plain: &[u8], show_keys: bool) -> Result<Vec<Fields>, crate::Error> {
    let list = KeyDataList::parse(plain)?;
    Ok(list.iter().map(|kd| key_data_fields(&kd, show_keys)).collect())
}

fn timestamp_fields(f: &mut Fields, t: &Timestamp) {
    let name = match t {
        Timestamp::NtpUtc(_) => "NTP-UTC",
        Timestamp::Ntp(_) => "NTP",
        Timestamp::Counter(_) => "COUNTER",
        Timestamp::NtpUtc32(_) => "NTP-UTC-32",
    };
    f.code("ts_type", "ts_type_name", t.ts_type(), Some(name)).val("value", t.as_u64());
    match t {
        Timestamp::NtpUtc(v) => {
            f.val("value_hex", format!("{v:016x}")).val("time", ntp_to_iso8601(*v));
        }
        Timestamp::Ntp(v) => {
            f.val("value_hex", format!("{v:016x}"));
        }
        Timestamp::Counter(c) | Timestamp::NtpUtc32(c) => {
            f.val("value_hex", format!("{c:08x}"));
        }
    }
}

fn hdr_fields(version: u8, hdr: &Hdr<'_>) -> Fields {
    let mut f = Fields::default();
    let prf_name = match hdr.prf {
        PrfFunc::MikeyHmacSha1 => "MIKEY-1 (HMAC-SHA-1)",
        PrfFunc::HmacSha256 => "PRF-HMAC-SHA-256",
    };
    f.val("version", version)
        .code("data_type", "data_type_name", hdr.data_type.0, data_type_name(hdr.data_type))
        .val("v", hdr.v)
        .code("prf", "prf_name", hdr.prf.to_u8(), Some(prf_name))
        .val("csb_id", format!("{:08x}", hdr.csb_id))
        .val("cs_count", hdr.cs_id_map.cs_count().unwrap_or(0))
        .code(
            "cs_id_map_type",
            "cs_id_map_type_name",
            hdr.cs_id_map.map_type(),
            map_type_name(hdr.cs_id_map.map_type()),
        );
    let entries = match &hdr.cs_id_map {
        CsIdMap::SrtpId(e) => e
            .iter()
            .map(|e| {
                let mut x = Fields::default();
                x.val("policy_no", e.policy_no).val("ssrc", format!("{:08x}", e.ssrc)).val("roc", e.roc);
                x
            })
            .collect(),
        CsIdMap::GenericId(e) => e
            .iter()
            .map(|e| {
                let mut x = Fields::default();
                x.val("cs_id", e.cs_id)
                    .val("prot_type", e.prot_type)
                    .val("s", e.s)
                    .hex("policy_nos", e.policy_nos)
                    .hex("session_data", e.session_data)
                    .hex("spi", e.spi);
                x
            })
            .collect(),
        CsIdMap::Empty { .. } => Vec::new(),
    };
    f.list("cs_id_map", entries);
    f
}

/// Key data a reader can see: NULL-encrypted, or decrypted after the MAC verified.
pub type Readable = Option<Vec<u8>>;

fn payload_fields(
    p: &Payload<'_>,
    id_role: Option<&'static str>,
    readable: &Readable,
    show_keys: bool,
) -> Fields {
    let mut f = Fields::default();
    match p {
        Payload::Kemac(k) => {
            f.code("encr_alg", "encr_alg_name", k.encr_alg as u8, Some(encr_alg_name(k.encr_alg)))
                .val("encr_data_len", k.encr_data.len())
                .hex("encr_data", k.encr_data)
                .code("mac_alg", "mac_alg_name", k.mac_alg as u8, Some(mac_alg_name(k.mac_alg)))
                .hex("mac", k.mac);
            let plain = match (k.encr_alg, readable) {
                (_, Some(p)) => Some(p.as_slice()),
                (EncrAlg::Null, None) => Some(k.encr_data),
                _ => None,
            };
            if let Some(plain) = plain {
                match key_data_list(plain, show_keys) {
                    Ok(list) => {
                        f.list("key_data", list);
                    }
                    Err(e) => {
                        f.val("key_data_error", e.to_string());
                    }
                }
            }
        }
        Payload::Timestamp(t) => timestamp_fields(&mut f, t),
        Payload::Id(id) => {
            f.code("id_type", "id_type_name", id.id_type.0, id_type_name(id.id_type));
            if let Some(role) = id_role {
                f.val("role", role);
            }
            f.val("data", String::from_utf8_lossy(id.data)).hex("data_hex", id.data);
        }
        Payload::Idr(idr) => {
            let role = match idr.role {
                IdRole::INITIATOR => Some("IDRi"),
                IdRole::RESPONDER => Some("IDRr"),
                IdRole::KMS => Some("IDRkms"),
                IdRole::PSK => Some("IDRpsk"),
                IdRole::APP => Some("IDRapp"),
                _ => None,
            };
            f.code("role", "role_name", idr.role.0, role)
                .code("id_type", "id_type_name", idr.id_type.0, id_type_name(idr.id_type))
                .val("data", String::from_utf8_lossy(idr.data))
                .hex("data_hex", idr.data);
        }
        Payload::Verification(v) => {
            f.code("mac_alg", "mac_alg_name", v.mac_alg as u8, Some(mac_alg_name(v.mac_alg)))
                .hex("mac", v.mac);
        }
        Payload::SecurityPolicy(sp) => {
            let srtp = sp.prot_type == ProtType::SRTP;
            let params = sp
                .params
                .iter()
                .map(|p| {
                    let mut x = Fields::default();
                    let name = if srtp { srtp_param_name(p.param_type) } else { None };
                    x.code("param_type", "param_type_name", p.param_type, name).hex("value", p.value);
                    x
                })
                .collect();
            f.val("policy_no", sp.policy_no)
                .code("prot_type", "prot_type_name", sp.prot_type.0, srtp.then_some("SRTP"))
                .list("params", params);
        }
        Payload::Rand(r) => {
            f.hex("rand", r.rand);
        }
        Payload::Err(e) => {
            f.code("error_no", "error_no_name", e.error_no.0, error_no_name(e.error_no));
        }
        Payload::GeneralExtension(GeneralExtension::KeyIdInfo(ids)) => {
            let items = ids
                .iter()
                .map(|k| {
                    let mut x = Fields::default();
                    x.code(
                        "key_id_type",
                        "key_id_type_name",
                        k.key_id_type.0,
                        key_id_type_name(k.key_id_type),
                    )
                    .hex("value", k.value);
                    x
                })
                .collect();
            f.code("ext_type", "ext_type_name", ext_type::KEY_ID, Some("Key ID information"))
                .list("key_ids", items);
            if let Some(kd) = ids.find(KeyIdType::MBMS_KEY_DOMAIN_ID) {
                f.hex("key_domain_id", kd);
            }
            if let Some(msk) = ids.find(KeyIdType::MBMS_MSK_ID) {
                f.hex("msk_id", msk);
                if let Some(group) = msk.get(..2) {
                    f.hex("key_group", group);
                }
            }
            if let Some(mtk) = ids.find(KeyIdType::MBMS_MTK_ID) {
                f.hex("mtk_id", mtk);
            }
        }
        Payload::GeneralExtension(GeneralExtension::Other { ext_type: ty, data }) => {
            let name = match *ty {
                ext_type::VENDOR_ID => Some("vendor ID"),
                ext_type::SDP_IDS => Some("SDP IDs"),
                _ => None,
            };
            f.code("ext_type", "ext_type_name", *ty, name).hex("data", data);
        }
        // Message::parse refuses the MIKEY-TICKET payloads (RFC 6043), so none is described here.
        Payload::Tr(_) | Payload::Randr(_) | Payload::Tp(_) | Payload::Ticket(_) => {}
    }
    f
}

/// Every payload of `msg`, the HDR first, with its offset and length; `readable` is the KEMAC's
/// key data once verified and decrypted ([`Verified::readable`]); keys and salts only with
/// `show_keys`.
pub fn describe(msg: &Message<'_>, readable: &Readable, show_keys: bool) -> Vec<Fields> {
    let bytes = msg.as_bytes();
    let hdr = msg.hdr();
    let hdr_len = hdr.encoded_len();
    let mut out = Vec::new();
    let mut f = Fields::default();
    f.val("type", "HDR").val("offset", 0u64).val("length", hdr_len);
    f.0.extend(hdr_fields(bytes.first().copied().unwrap_or(0), hdr).0);
    out.push(f);
    // RFC 3830 §3.1: an initiator's first ID is IDi and its second IDr; a verification message
    // carries IDr only.
    let roles: &[&'static str] = match hdr.data_type {
        DataType::PSK_INIT | DataType::PK_INIT => &["IDi", "IDr"],
        DataType::PSK_VERIFY | DataType::PK_VERIFY => &["IDr"],
        _ => &[],
    };
    let (mut at, mut ids) = (hdr_len, 0usize);
    for p in msg.payloads() {
        let len = p.encoded_len();
        let role = if matches!(p, Payload::Id(_)) {
            ids += 1;
            roles.get(ids - 1).copied()
        } else {
            None
        };
        let mut f = Fields::default();
        f.val("type", payload_type_name(p.payload_type())).val("offset", at).val("length", len);
        f.0.extend(payload_fields(&p, role, readable, show_keys).0);
        out.push(f);
        at += len;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Verification with the MUK or MSK (TS 33.246 §6.3)

/// What verifying with the MUK or MSK found.
pub struct Verified {
    /// The verification's own fields (message kind, key, MAC result, the decrypted values).
    pub fields: Fields,
    /// Whether the MAC verified.
    pub mac_valid: bool,
    /// The decrypted key data, for [`describe`].
    pub readable: Readable,
}

/// Why a message could not be verified (a wrong MAC is not an error: see [`Verified::mac_valid`]).
#[derive(Debug)]
pub enum VerifyError {
    /// Not an MSK message or solicited pull of the MBMS profile.
    NotMsk(crate::Error),
    /// Not an MTK message of the MBMS profile.
    NotMtk(crate::Error),
    /// The MAC verified, but the key data is refused.
    Refused(crate::Error),
    /// No KEMAC payload.
    NoKemac,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NotMsk(e) => write!(f, "not an MSK message of the MBMS profile: {e}"),
            VerifyError::NotMtk(e) => write!(f, "not an MTK message of the MBMS profile: {e}"),
            VerifyError::Refused(e) => write!(f, "the MAC verified, but the key data is refused: {e}"),
            VerifyError::NoKemac => f.write_str("no KEMAC"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn kv_fields(f: &mut Fields, kv: &KeyValidityData) {
    match kv {
        KeyValidityData::Null => f.code("kv_type", "kv_type_name", kv_type::NULL, Some("NULL")),
        KeyValidityData::Spi(s) => {
            f.code("kv_type", "kv_type_name", kv_type::SPI, Some("SPI/MKI")).hex("kv_spi", s)
        }
        KeyValidityData::Interval { from, to } => f
            .code("kv_type", "kv_type_name", kv_type::INTERVAL, Some("interval"))
            .hex("kv_from", from)
            .hex("kv_to", to),
    };
}

fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Tgk => "TGK",
        KeyType::Tek => "TEK",
        KeyType::Gtgk => "GTGK",
        KeyType::Mpk => "MPK",
    }
}

/// Decrypts the KEMAC's key data for display, once the MAC has verified.
fn decrypt_for_display(
    key: &[u8],
    csb_id: u32,
    rand: &[u8],
    kemac: &crate::Kemac<'_>,
    ts: u64,
) -> Result<Vec<u8>, crate::Error> {
    let keys = TransportKeys::derive(profile::PRF, key, csb_id, rand)?;
    let mut buf = vec![0u8; kemac.encr_data.len()];
    let n = decrypt_key_data(kemac, &keys, csb_id, ts, &mut buf).map(|_| kemac.encr_data.len())?;
    buf.truncate(n);
    Ok(buf)
}

/// Whether the message carries an MTK ID (an MTK message, verified with the MSK).
pub fn has_mtk_id(msg: &Message<'_>) -> bool {
    msg.key_ids().is_some_and(|ids| ids.find(KeyIdType::MBMS_MTK_ID).is_some())
}

/// Verifies an MSK message or solicited pull with the MUK (TS 33.246 §6.3.2) and decrypts its key
/// data.
pub fn verify_with_muk(bytes: &[u8], muk_bytes: &[u8; 32], show_keys: bool) -> Result<Verified, VerifyError> {
    let m = parse_msk_message(bytes).map_err(VerifyError::NotMsk)?;
    let muk = Muk::new(*muk_bytes);
    let mut f = Fields::default();
    let kd = m.key_domain_id();
    let result = verify_and_decrypt_msk(&muk, &m);
    match result {
        Err(crate::Error::MacMismatch) => {
            f.val("message", if m.is_solicited_pull() { "solicited pull" } else { "MSK" })
                .val("key", "MUK")
                .val("mac", "invalid");
            Ok(Verified { fields: f, mac_valid: false, readable: None })
        }
        Err(e) => Err(VerifyError::Refused(e)),
        Ok(MskUpdate::SolicitedPull(p)) => {
            f.val("message", "solicited pull")
                .val("key", "MUK")
                .val("mac", "valid")
                .hex("key_domain_id", &p.key_domain_id.0)
                .hex("msk_id", &m.msk_id().to_bytes())
                .val("key_group", format!("{:04x}", p.key_group))
                .val("timestamp", p.timestamp.as_u64())
                .val("v", p.v_bit);
            Ok(Verified { fields: f, mac_valid: true, readable: Some(Vec::new()) })
        }
        Ok(MskUpdate::Msk(d)) => {
            f.val("message", "MSK")
                .val("key", "MUK")
                .val("mac", "valid")
                .hex("key_domain_id", &kd.0)
                .hex("msk_id", &d.msk_id.to_bytes())
                .val("key_group", format!("{:04x}", d.msk_id.key_group()))
                .val("timestamp", d.timestamp.as_u64())
                .val("v", d.v_bit)
                .val("key_type", key_type_name(profile::MSK_KEY_TYPE));
            kv_fields(&mut f, &d.validity);
            if show_keys {
                f.hex("msk", d.msk.as_bytes());
            }
            let kemac = m.message().kemac().ok_or(VerifyError::NoKemac)?;
            let readable =
                decrypt_for_display(muk_bytes, m.csb_id(), m.rand(), &kemac, m.timestamp().as_u64()).ok();
            Ok(Verified { fields: f, mac_valid: true, readable })
        }
    }
}

/// Verifies an MTK message with the MSK (TS 33.246 §6.3.3) and decrypts its key data.
pub fn verify_with_msk(bytes: &[u8], msk_bytes: &[u8; 16], show_keys: bool) -> Result<Verified, VerifyError> {
    let m = parse_mtk_message(bytes).map_err(VerifyError::NotMtk)?;
    let msk = Msk::new(*msk_bytes);
    let mut f = Fields::default();
    match verify_and_decrypt_mtk(&msk, &m) {
        Err(crate::Error::MacMismatch) => {
            f.val("message", "MTK").val("key", "MSK").val("mac", "invalid");
            Ok(Verified { fields: f, mac_valid: false, readable: None })
        }
        Err(e) => Err(VerifyError::Refused(e)),
        Ok(d) => {
            let mut mtk_id = [0u8; 4];
            mtk_id.copy_from_slice(&d.mtk_id.0.to_be_bytes());
            f.val("message", "MTK")
                .val("key", "MSK")
                .val("mac", "valid")
                .hex("key_domain_id", &d.key_domain_id.0)
                .hex("msk_id", &d.msk_id.to_bytes())
                .val("key_group", format!("{:04x}", d.msk_id.key_group()))
                .hex("mtk_id", mtk_id.get(4 - profile::MTK_ID_LEN..).unwrap_or_default())
                .val("timestamp", d.timestamp.as_u64())
                .val("key_type", key_type_name(d.key_type))
                .val("salt_present", d.salt.is_some());
            kv_fields(&mut f, &d.validity);
            if show_keys {
                f.hex("mtk", d.mtk.as_bytes());
                if let Some(s) = &d.salt {
                    f.hex("salt", s.as_bytes());
                }
            }
            let kemac = m.message().kemac().ok_or(VerifyError::NoKemac)?;
            let readable =
                decrypt_for_display(msk_bytes, m.csb_id(), m.rand(), &kemac, m.timestamp().as_u64()).ok();
            Ok(Verified { fields: f, mac_valid: true, readable })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known dates from outside this code: `date -u -d @0` and RFC 4330 §3's era boundary
    /// (NTP second 2^31 is 1968-01-20T03:14:08Z), and a leap day.
    #[test]
    fn ntp_timestamps_as_iso8601() {
        assert_eq!(ntp_to_iso8601(crate::NTP_UNIX_OFFSET << 32), "1970-01-01T00:00:00Z");
        assert_eq!(ntp_to_iso8601(0x8000_0000u64 << 32), "1968-01-20T03:14:08Z");
        // 2024-02-29T12:00:00Z is Unix 1709208000 (`date -u -d 2024-02-29T12:00:00Z +%s`).
        let ntp = (1_709_208_000u64 + crate::NTP_UNIX_OFFSET) << 32 | 0x8000_0000;
        assert_eq!(ntp_to_iso8601(ntp), "2024-02-29T12:00:00.500000Z");
        // Era 1: NTP second 0 is 2036-02-07T06:28:16Z.
        assert_eq!(ntp_to_iso8601(0), "2036-02-07T06:28:16Z");
    }

    /// RFC 3830 Table 6.1.a (0–6), RFC 4650 §3 (7, 8), RFC 4738 §3 (9, 10), RFC 6043 Table 6.1
    /// (11–18); 19 on is unassigned.
    #[test]
    fn every_assigned_data_type_has_a_name() {
        for v in 0..=18u8 {
            assert!(data_type_name(DataType(v)).is_some(), "data type {v}");
        }
        assert_eq!(data_type_name(DataType(19)), None);
        assert_eq!(data_type_name(DataType::ERROR), Some("error"));
    }

    /// A message cut inside a payload is located at that payload, one with a byte too many after
    /// the last payload (RFC 3830 §6: a chain of next-payload fields ending in 0).
    #[test]
    fn locate_names_the_broken_payload() {
        use crate::mbms::{KeyDomainId, MskId, MtkId, MtkMessageParams, build_mtk_message};
        let params = MtkMessageParams::new(
            KeyDomainId([0, 0xf1, 0x10]),
            MskId(0x0102_0007),
            MtkId(0x0203),
            Timestamp::Counter(7),
        );
        let mut buf = [0u8; 256];
        let n =
            build_mtk_message(&Msk::new([1; 16]), &params, &crate::mbms::Mtk::new([2; 16]), None, &mut buf);
        let n = n.unwrap_or(0);
        let msg = buf.get(..n).unwrap_or_default();
        assert!(Message::parse(msg).is_ok());
        // HDR (10 bytes), then the EXT payload, the first of the chain.
        assert_eq!(locate(msg.get(..12).unwrap_or_default()), "in payload 1 (EXT) at offset 10");
        let mut longer = msg.to_vec();
        longer.push(0);
        assert_eq!(locate(&longer), format!("after the last payload, at offset {n}"));
        assert_eq!(locate(&[1]), "in HDR at offset 0");
    }
}
