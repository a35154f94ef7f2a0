//! SDP Security Descriptions for media streams (RFC 4568 §4, §6): the `a=crypto` attribute of
//! SRTP, the RFC 4567 §3.1 `a=key-mgmt` attribute that carries MIKEY, and the e2ae indications
//! of IMS media plane security (TS 33.328 §7.1, §7.2.1, §7.3.1) in [`ims_e2ae`].
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
//! key-params = inline:<base64(master key ‖ master salt)>[|<lifetime>][|<MKI>:<MKI length>] *(";" …)
//! ```
//!
//! Only the SRTP suites of TS 33.328 are accepted ([`SdesSuite`]); any other suite name is
//! refused with [`SdesError::UnknownSuite`] so that an answerer can skip the attribute (RFC 4568
//! §7.1.1) and a malformed one with another [`SdesError`]. Key material is wiped on drop and is
//! never shown by `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::{Zeroize, Zeroizing};

/// The attribute name of SDES (RFC 4568 §9.1).
pub const CRYPTO: &str = "crypto";
/// The attribute name of RFC 4567 key management (§3.1).
pub const KEY_MGMT: &str = "key-mgmt";
/// The RFC 4567 protocol identifier of MIKEY (§3.1, IANA "key management protocol identifiers").
pub const KEY_MGMT_MIKEY: &str = "mikey";
/// Master key ‖ master salt of the AES-CM-128 suites: 16 + 14 octets (RFC 4568 §6.2).
pub const KEY_SALT_LEN: usize = 30;
/// Largest tag: at most nine digits (RFC 4568 §9.1 `tag = 1*9DIGIT`).
pub const MAX_TAG: u32 = 999_999_999;
/// Most `inline:` keys in one attribute.
pub const MAX_KEYS: usize = 16;
/// Longest MKI (RFC 4568 §6.1: 1 to 128 octets).
pub const MAX_MKI_LEN: u8 = 128;
/// Largest KDR exponent (RFC 4568 §6.3.1: `KDR=n` means a rate of 2^n, n in 0..=24).
pub const MAX_KDR_EXPONENT: u8 = 24;
/// Largest power-of-two lifetime exponent (RFC 3711 §9.2: at most 2^48 SRTP packets).
pub const MAX_LIFETIME_EXPONENT: u8 = 48;
/// Longest attribute value parsed.
pub const MAX_ATTRIBUTE_LEN: usize = 4096;

/// Values of the e2ae indications of TS 33.328, whose stage-2 text names them only as
/// placeholders; the stage-3 syntax is TS 24.229's: the `mediasec` header field parameter of
/// Security-Client / Security-Server (§7.2A.7; IETF draft-dawes-sipcore-mediasec-parameter, which
/// registers it with RFC 3329's headers) and the `3ge2ae` SDP attribute (§7.5.2, Table 7.5.1).
/// Kept in this one place.
pub mod ims_e2ae {
    /// `Security-Client` header of the initial REGISTER: "e2ae-security supported by UE"
    /// (TS 33.328 §7.1 NOTE 1; the RFC 3329 header that TS 24.229 §7.2A.7 puts `mediasec` in).
    pub const SECURITY_CLIENT: &str = "Security-Client";
    /// `Security-Server` header of the 200 to REGISTER: "e2ae-security supported by network"
    /// (TS 33.328 §7.1; RFC 3329 header, TS 24.229 §7.2A.7).
    pub const SECURITY_SERVER: &str = "Security-Server";
    /// The mechanism name in those headers (TS 24.229 §7.2A.7, whose example is
    /// `Security-Client: sdes-srtp;mediasec`; the same string in independent IMS clients, e.g. the
    /// Go SIP security-mechanism parser and pjsua-based clients found by code search).
    pub const MECHANISM: &str = "sdes-srtp";
    /// The header parameter marking media plane security (TS 24.229 §7.2A.7 `mediasec`;
    /// draft-dawes-sipcore-mediasec-parameter).
    pub const MEDIASEC_PARAM: &str = "mediasec";
    /// The full header value of both indications: `sdes-srtp;mediasec` (TS 24.229 §7.2A.7).
    pub const HEADER_VALUE: &str = "sdes-srtp;mediasec";
    /// The SDP attribute of the per-session indications (TS 33.328 §7.2.1, §7.3.1): the media-level
    /// `a=3ge2ae:<indicator>` of TS 24.229 §7.5.2 (Table 7.5.1; §7.5.2.3 gives its IANA
    /// registration, "3GPP_e2ae-security-indicator").
    pub const ATTRIBUTE: &str = "3ge2ae";
    /// "e2ae-security requested by UE" in the SDP offer (TS 33.328 §7.2.1): indicator
    /// `requested` of TS 24.229 §7.5.2.
    pub const REQUESTED: &str = "requested";
    /// "e2ae-security applied" from the P-CSCF (IMS ALG) (TS 33.328 §5.4.1, §7.2.1, §7.3.1):
    /// indicator `applied` of TS 24.229 §7.5.2.
    pub const APPLIED: &str = "applied";
    /// The attribute line (without `a=`) of the request: `3ge2ae:requested`.
    pub const REQUESTED_LINE: &str = "3ge2ae:requested";
    /// The attribute line (without `a=`) of the confirmation: `3ge2ae:applied`.
    pub const APPLIED_LINE: &str = "3ge2ae:applied";

    /// True if a `Security-Client` / `Security-Server` value lists `sdes-srtp` with `mediasec`
    /// (mechanisms are comma-separated, parameters `;`-separated, names case-insensitive).
    pub fn header_indicates_mediasec(value: &str) -> bool {
        value.split(',').any(|mech| {
            let mut parts = mech.split(';').map(str::trim);
            parts.next().is_some_and(|m| m.eq_ignore_ascii_case(MECHANISM))
                && parts.any(|p| {
                    p.split('=').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(MEDIASEC_PARAM))
                })
        })
    }
}

/// Why an `a=crypto` or `a=key-mgmt` attribute is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    /// Not an attribute of this name.
    #[error("not a `{0}` attribute")]
    NotThisAttribute(&'static str),
    /// Longer than [`MAX_ATTRIBUTE_LEN`].
    #[error("attribute longer than {MAX_ATTRIBUTE_LEN} characters")]
    TooLong,
    /// The tag is not 1 to 9 digits.
    #[error("tag `{0}` is not 1 to 9 digits")]
    BadTag(String),
    /// The crypto suite is not one this implementation supports (RFC 4568 §7.1.1: skip it).
    #[error("unknown crypto suite `{0}`")]
    UnknownSuite(String),
    /// The key parameters are missing or malformed.
    #[error("key parameter: {0}")]
    BadKeyParam(&'static str),
    /// The key ‖ salt is not base64 or has the wrong length for the suite.
    #[error("inline key: {0}")]
    BadKey(&'static str),
    /// A session parameter is malformed.
    #[error("session parameter `{param}`: {reason}")]
    BadSessionParam {
        /// The parameter (cut to 64 characters).
        param: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `key-mgmt` value is malformed.
    #[error("key-mgmt: {0}")]
    BadKeyMgmt(&'static str),
}

/// The SRTP crypto suites of SDES this implementation supports (RFC 4568 §6.2); the names are
/// case-sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdesSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
}

impl SdesSuite {
    /// Both suites, the preferred first.
    pub const ALL: [SdesSuite; 2] = [SdesSuite::AesCm128HmacSha1_80, SdesSuite::AesCm128HmacSha1_32];

    /// The suite's name.
    pub const fn name(self) -> &'static str {
        match self {
            SdesSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SdesSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of this name, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for SdesSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The master key lifetime of an inline key (RFC 4568 §6.1): a packet count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `<decimal>` packets.
    Packets(u64),
    /// `2^<n>` packets.
    PowerOfTwo(u8),
}

impl Lifetime {
    /// The number of packets.
    pub fn packets(self) -> u64 {
        match self {
            Lifetime::Packets(n) => n,
            Lifetime::PowerOfTwo(n) => 1u64 << n.min(63),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Packets(n) => write!(f, "{n}"),
            Lifetime::PowerOfTwo(n) => write!(f, "2^{n}"),
        }
    }
}

/// The MKI of an inline key (RFC 4568 §6.1): a decimal value carried in `length` octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// The MKI field length in octets (1..=128).
    pub length: u8,
}

impl Mki {
    /// The MKI field: the value big-endian in `length` octets.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = vec![0u8; usize::from(self.length)];
        let be = self.value.to_be_bytes();
        let n = out.len().min(8);
        let (dst_start, src_start) = (out.len() - n, 8 - n);
        if let (Some(dst), Some(src)) = (out.get_mut(dst_start..), be.get(src_start..)) {
            dst.copy_from_slice(src);
        }
        out
    }
}

/// One `inline:` key (RFC 4568 §6.1). Wiped on drop; `Debug` shows no key bytes.
#[derive(Clone)]
pub struct InlineKey {
    key_salt: Zeroizing<Vec<u8>>,
    /// The master key lifetime, if given.
    pub lifetime: Option<Lifetime>,
    /// The MKI, if given.
    pub mki: Option<Mki>,
}

impl InlineKey {
    /// A key from master key ‖ master salt ([`KEY_SALT_LEN`] octets for the supported suites).
    pub fn new(key_salt: &[u8], lifetime: Option<Lifetime>, mki: Option<Mki>) -> Result<Self, SdesError> {
        if key_salt.len() != KEY_SALT_LEN {
            return Err(SdesError::BadKey("master key and salt are not 30 octets"));
        }
        check_mki(mki)?;
        check_lifetime(lifetime)?;
        Ok(InlineKey { key_salt: Zeroizing::new(key_salt.to_vec()), lifetime, mki })
    }

    /// Master key ‖ master salt.
    pub fn key_salt(&self) -> &[u8] {
        &self.key_salt
    }

    /// True if both keys have the same bytes, lifetime and MKI (constant time on the bytes).
    pub fn same_as(&self, other: &InlineKey) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.key_salt.as_slice().ct_eq(other.key_salt.as_slice()))
            && self.lifetime == other.lifetime
            && self.mki == other.mki
    }

    fn parse(text: &str) -> Result<Self, SdesError> {
        let rest = text.strip_prefix("inline:").ok_or(SdesError::BadKeyParam("only the inline method"))?;
        let mut parts = rest.split('|');
        let b64 = parts.next().unwrap_or_default();
        if b64.is_empty() {
            return Err(SdesError::BadKey("empty key"));
        }
        let key_salt = Zeroizing::new(BASE64.decode(b64).map_err(|_| SdesError::BadKey("not base64"))?);
        let mut lifetime = None;
        let mut mki = None;
        for p in parts {
            if mki.is_some() {
                return Err(SdesError::BadKeyParam("nothing may follow the MKI"));
            }
            if let Some((value, length)) = p.split_once(':') {
                let value = decimal(value).ok_or(SdesError::BadKeyParam("MKI value is no decimal"))?;
                let length = decimal(length)
                    .and_then(|l| u8::try_from(l).ok())
                    .ok_or(SdesError::BadKeyParam("MKI length is no decimal of 1..=128"))?;
                mki = Some(Mki { value, length });
            } else if lifetime.is_none() {
                lifetime = Some(match p.strip_prefix("2^") {
                    Some(e) => Lifetime::PowerOfTwo(
                        decimal(e)
                            .and_then(|e| u8::try_from(e).ok())
                            .ok_or(SdesError::BadKeyParam("lifetime exponent"))?,
                    ),
                    None => Lifetime::Packets(decimal(p).ok_or(SdesError::BadKeyParam("lifetime"))?),
                });
            } else {
                return Err(SdesError::BadKeyParam("two lifetimes"));
            }
        }
        if key_salt.len() != KEY_SALT_LEN {
            return Err(SdesError::BadKey("master key and salt are not 30 octets"));
        }
        check_mki(mki)?;
        check_lifetime(lifetime)?;
        Ok(InlineKey { key_salt, lifetime, mki })
    }
}

fn check_mki(mki: Option<Mki>) -> Result<(), SdesError> {
    if let Some(m) = mki {
        if m.length == 0 || m.length > MAX_MKI_LEN {
            return Err(SdesError::BadKeyParam("MKI length outside 1..=128"));
        }
        if m.length < 8 && m.value >> (8 * u32::from(m.length)) != 0 {
            return Err(SdesError::BadKeyParam("MKI value does not fit its length"));
        }
    }
    Ok(())
}

fn check_lifetime(lifetime: Option<Lifetime>) -> Result<(), SdesError> {
    match lifetime {
        Some(Lifetime::PowerOfTwo(n)) if n > MAX_LIFETIME_EXPONENT => {
            Err(SdesError::BadKeyParam("lifetime above 2^48"))
        }
        Some(Lifetime::Packets(0)) => Err(SdesError::BadKeyParam("lifetime 0")),
        _ => Ok(()),
    }
}

/// A decimal of at most 20 digits (a u64) without a sign.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for InlineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b64 = Zeroizing::new(BASE64.encode(self.key_salt.as_slice()));
        write!(f, "inline:{}", b64.as_str())?;
        b64.zeroize();
        if let Some(l) = self.lifetime {
            write!(f, "|{l}")?;
        }
        if let Some(m) = self.mki {
            write!(f, "|{}:{}", m.value, m.length)?;
        }
        Ok(())
    }
}

impl fmt::Debug for InlineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineKey")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish_non_exhaustive()
    }
}

/// The SRTP session parameters of RFC 4568 §6.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionParam {
    /// `KDR=<n>`: key derivation rate 2^n (§6.3.1).
    Kdr(u8),
    /// `UNENCRYPTED_SRTP` (§6.3.2).
    UnencryptedSrtp,
    /// `UNENCRYPTED_SRTCP` (§6.3.2).
    UnencryptedSrtcp,
    /// `UNAUTHENTICATED_SRTP` (§6.3.3).
    UnauthenticatedSrtp,
    /// `FEC_ORDER=<order>` (§6.3.4), e.g. `FEC_SRTP`.
    FecOrder(String),
    /// `FEC_KEY=<key-params>` (§6.3.5), kept as text.
    FecKey(String),
    /// `WSH=<packets>`: window size hint (§6.3.6).
    Wsh(u32),
    /// Any other parameter, as text. One starting with `-` may be ignored by a receiver that
    /// does not know it (§6.3.7); any other unknown one makes the attribute unusable.
    Extension(String),
}

impl SessionParam {
    /// The key derivation rate as a packet count (0 when absent): 2^n.
    pub fn kdr_rate(params: &[SessionParam]) -> u64 {
        params
            .iter()
            .find_map(|p| match p {
                SessionParam::Kdr(n) => Some(1u64 << n),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn parse(text: &str) -> Result<Self, SdesError> {
        let err = |reason| SdesError::BadSessionParam { param: crate::cut(text), reason };
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) || text.is_empty() {
            return Err(err("empty or with white space"));
        }
        Ok(match text.split_once('=') {
            Some(("KDR", v)) => SessionParam::Kdr(
                decimal(v)
                    .and_then(|n| u8::try_from(n).ok())
                    .filter(|n| *n <= MAX_KDR_EXPONENT)
                    .ok_or_else(|| err("KDR is a decimal of 0..=24"))?,
            ),
            Some(("FEC_ORDER", v)) if !v.is_empty() => SessionParam::FecOrder(v.into()),
            Some(("FEC_KEY", v)) if !v.is_empty() => SessionParam::FecKey(v.into()),
            Some(("WSH", v)) => SessionParam::Wsh(
                decimal(v).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| err("WSH is a decimal"))?,
            ),
            Some(("FEC_ORDER" | "FEC_KEY", _)) => return Err(err("empty value")),
            None if text == "UNENCRYPTED_SRTP" => SessionParam::UnencryptedSrtp,
            None if text == "UNENCRYPTED_SRTCP" => SessionParam::UnencryptedSrtcp,
            None if text == "UNAUTHENTICATED_SRTP" => SessionParam::UnauthenticatedSrtp,
            _ => SessionParam::Extension(text.into()),
        })
    }
}

impl fmt::Display for SessionParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionParam::Kdr(n) => write!(f, "KDR={n}"),
            SessionParam::UnencryptedSrtp => f.write_str("UNENCRYPTED_SRTP"),
            SessionParam::UnencryptedSrtcp => f.write_str("UNENCRYPTED_SRTCP"),
            SessionParam::UnauthenticatedSrtp => f.write_str("UNAUTHENTICATED_SRTP"),
            SessionParam::FecOrder(o) => write!(f, "FEC_ORDER={o}"),
            SessionParam::FecKey(k) => write!(f, "FEC_KEY={k}"),
            SessionParam::Wsh(n) => write!(f, "WSH={n}"),
            SessionParam::Extension(t) => f.write_str(t),
        }
    }
}

/// One `a=crypto` attribute (RFC 4568 §4). `Debug` shows no key bytes.
#[derive(Debug, Clone)]
pub struct CryptoAttribute {
    /// The tag (0..=[`MAX_TAG`]) the answer refers back to.
    pub tag: u32,
    /// The crypto suite.
    pub suite: SdesSuite,
    /// The keys (at least one; several only with MKIs of one length, §6.1).
    pub keys: Vec<InlineKey>,
    /// The session parameters, in order.
    pub session_params: Vec<SessionParam>,
}

impl CryptoAttribute {
    /// An attribute with one key and no session parameters.
    pub fn new(tag: u32, suite: SdesSuite, key: InlineKey) -> Self {
        CryptoAttribute { tag, suite, keys: vec![key], session_params: Vec::new() }
    }

    /// Parses the attribute value (after `crypto:`).
    pub fn parse(value: &str) -> Result<Self, SdesError> {
        if value.len() > MAX_ATTRIBUTE_LEN {
            return Err(SdesError::TooLong);
        }
        // Fields are separated by one or more spaces or tabs (RFC 4568 §9.1 WSP).
        let mut fields = value.split([' ', '\t']).filter(|f| !f.is_empty());
        let tag_text = fields.next().unwrap_or_default();
        let tag = if tag_text.len() <= 9 { decimal(tag_text) } else { None }
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| SdesError::BadTag(crate::cut(tag_text)))?;
        let suite_text = fields.next().ok_or(SdesError::BadKeyParam("no crypto suite"))?;
        let key_text = fields.next().ok_or(SdesError::BadKeyParam("no key parameters"))?;
        // An unknown suite is reported before its key and session parameters are read: other
        // suites have other key lengths and parameters (RFC 4568 §6.2), and an answerer skips
        // such an attribute instead of refusing the whole offer (§7.1.1).
        if !suite_text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SdesError::BadKeyParam("crypto suite is not a token of letters, digits and `_`"));
        }
        let suite = SdesSuite::from_name(suite_text)
            .ok_or_else(|| SdesError::UnknownSuite(crate::cut(suite_text)))?;
        let session_params = fields.map(SessionParam::parse).collect::<Result<Vec<_>, _>>()?;
        let mut keys = Vec::new();
        for k in key_text.split(';') {
            if keys.len() >= MAX_KEYS {
                return Err(SdesError::BadKeyParam("too many keys"));
            }
            keys.push(InlineKey::parse(k)?);
        }
        check_keys(&keys)?;
        Ok(CryptoAttribute { tag, suite, keys, session_params })
    }

    /// Parses an attribute line without `a=` (`crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…`).
    pub fn parse_line(line: &str) -> Result<Self, SdesError> {
        let value = line
            .strip_prefix(CRYPTO)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(SdesError::NotThisAttribute(CRYPTO))?;
        Self::parse(value)
    }

    /// The attribute line without `a=`; refused when the fields cannot be written back as the
    /// same attribute (tag too large, no key, several keys without MKIs of one length).
    pub fn to_line(&self) -> Result<String, SdesError> {
        if self.tag > MAX_TAG {
            return Err(SdesError::BadTag(self.tag.to_string()));
        }
        check_keys(&self.keys)?;
        for k in &self.keys {
            check_mki(k.mki)?;
            check_lifetime(k.lifetime)?;
        }
        for p in &self.session_params {
            let text = p.to_string();
            let again = SessionParam::parse(&text)?;
            if &again != p {
                return Err(SdesError::BadSessionParam {
                    param: crate::cut(&text),
                    reason: "does not read back as itself",
                });
            }
        }
        Ok(format!("{CRYPTO}:{self}"))
    }

    /// The key derivation rate (2^KDR, 0 when absent).
    pub fn kdr(&self) -> u64 {
        SessionParam::kdr_rate(&self.session_params)
    }

    /// Session parameters this implementation does not act on and may not ignore: any other
    /// than `KDR=`, `WSH=`, `FEC_ORDER=` (no FEC is used, so the order is moot) and `-`-prefixed
    /// extensions (RFC 4568 §6.3; `UNENCRYPTED_*`, `UNAUTHENTICATED_SRTP` and `FEC_KEY=` change
    /// the protection and are not supported).
    pub fn unsupported_params(&self) -> Vec<&SessionParam> {
        self.session_params
            .iter()
            .filter(|p| match p {
                SessionParam::Kdr(_) | SessionParam::Wsh(_) | SessionParam::FecOrder(_) => false,
                SessionParam::Extension(t) => !t.starts_with('-'),
                _ => true,
            })
            .collect()
    }
}

fn check_keys(keys: &[InlineKey]) -> Result<(), SdesError> {
    let first = keys.first().ok_or(SdesError::BadKeyParam("no key"))?;
    if keys.len() > MAX_KEYS {
        return Err(SdesError::BadKeyParam("too many keys"));
    }
    if keys.len() > 1 {
        let len = first.mki.map(|m| m.length);
        if len.is_none() || keys.iter().any(|k| k.mki.map(|m| m.length) != len) {
            return Err(SdesError::BadKeyParam("several keys need MKIs of one length"));
        }
    }
    Ok(())
}

impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}")?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// An RFC 4567 `a=key-mgmt` attribute: the protocol identifier and the decoded data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMgmt {
    /// The protocol identifier (`mikey`).
    pub protocol: String,
    /// The key management message (base64-decoded).
    pub data: Vec<u8>,
}

impl KeyMgmt {
    /// A MIKEY message to carry.
    pub fn mikey(data: &[u8]) -> Self {
        KeyMgmt { protocol: KEY_MGMT_MIKEY.into(), data: data.to_vec() }
    }

    /// Parses the value after `key-mgmt:` (`<prtcl-id> <base64 data>`, RFC 4567 §3.1).
    pub fn parse(value: &str) -> Result<Self, SdesError> {
        if value.len() > crate::sdp::MAX_SDP_LEN {
            return Err(SdesError::TooLong);
        }
        let (protocol, data) =
            value.trim().split_once(' ').ok_or(SdesError::BadKeyMgmt("no `<protocol> <data>`"))?;
        if protocol.is_empty() || !crate::header::is_token(protocol) {
            return Err(SdesError::BadKeyMgmt("protocol identifier is not a token"));
        }
        let data = BASE64.decode(data.trim()).map_err(|_| SdesError::BadKeyMgmt("data is not base64"))?;
        if data.is_empty() {
            return Err(SdesError::BadKeyMgmt("empty data"));
        }
        Ok(KeyMgmt { protocol: protocol.into(), data })
    }

    /// Parses an attribute line without `a=` (`key-mgmt:mikey AQ…`).
    pub fn parse_line(line: &str) -> Result<Self, SdesError> {
        let value = line
            .strip_prefix(KEY_MGMT)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(SdesError::NotThisAttribute(KEY_MGMT))?;
        Self::parse(value)
    }

    /// The attribute line without `a=`.
    pub fn to_line(&self) -> String {
        format!("{KEY_MGMT}:{} {}", self.protocol, BASE64.encode(&self.data))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Published attribute values: RFC 4568 §4 (first two), §6.1 (third); the §5.1 offer.
    const RFC4568_S4: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";
    const RFC4568_S6_1: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4";
    const RFC4568_OFFER: &str = "1 AES_CM_128_HMAC_SHA1_80 \
        inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP";

    #[test]
    fn parses_the_published_examples() {
        let a = CryptoAttribute::parse(RFC4568_S4).unwrap();
        assert_eq!((a.tag, a.suite), (1, SdesSuite::AesCm128HmacSha1_80));
        assert_eq!(a.keys[0].lifetime, Some(Lifetime::PowerOfTwo(20)));
        assert_eq!(a.keys[0].mki, Some(Mki { value: 1, length: 32 }));
        assert_eq!(a.keys[0].mki.unwrap().to_bytes().len(), 32);
        assert_eq!(a.keys[0].mki.unwrap().to_bytes()[31], 1);
        assert_eq!(a.to_string(), RFC4568_S4);
        let b = CryptoAttribute::parse(RFC4568_S6_1).unwrap();
        assert_eq!(b.keys[0].lifetime, None, "1066:4 is an MKI, not a lifetime");
        assert_eq!(b.keys[0].mki, Some(Mki { value: 1066, length: 4 }));
        assert_eq!(b.keys[0].mki.unwrap().to_bytes(), [0, 0, 0x04, 0x2a]);
        // The §6.1 key is the base64 of the ASCII text "aBCdefghiJKLmoPQRsTuVwyz123456".
        assert_eq!(b.keys[0].key_salt(), b"aBCdefghiJKLmoPQrsTuVwyz123456");
        let c = CryptoAttribute::parse(RFC4568_OFFER).unwrap();
        assert_eq!(c.session_params, [SessionParam::FecOrder("FEC_SRTP".into())]);
        assert!(c.unsupported_params().is_empty(), "FEC_ORDER is moot without FEC");
        let d = CryptoAttribute::parse(&format!("{RFC4568_S4} UNENCRYPTED_SRTP FEC_KEY=x X_Y -Z")).unwrap();
        assert_eq!(d.unsupported_params().len(), 3);
        assert_eq!(c.to_line().unwrap(), format!("crypto:{RFC4568_OFFER}"));
        assert_eq!(CryptoAttribute::parse_line(&c.to_line().unwrap()).unwrap().to_string(), RFC4568_OFFER);
    }

    #[test]
    fn several_keys_and_session_params() {
        let v = "2 AES_CM_128_HMAC_SHA1_32 \
                 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
                 inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 KDR=23 WSH=128 -X_EXT";
        let a = CryptoAttribute::parse(v).unwrap();
        assert_eq!(a.keys.len(), 2);
        assert_eq!(a.kdr(), 1 << 23);
        assert!(a.unsupported_params().is_empty());
        assert_eq!(a.to_string(), v);
        assert_eq!(a.keys[0].key_salt(), b"123456789ABCDE0123456789ABcdef");
        assert_eq!(a.keys[1].key_salt(), b"ABcdef123456789ABCDE0123456789");
        assert_eq!(a.keys[1].mki.unwrap().to_bytes(), [0, 0, 0, 2]);
    }

    #[test]
    fn refuses_malformed_and_unknown() {
        use SdesError::*;
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        type Check = fn(&SdesError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (format!("x AES_CM_128_HMAC_SHA1_80 {key}"), |e| matches!(e, BadTag(_))),
            (format!("1234567890 AES_CM_128_HMAC_SHA1_80 {key}"), |e| matches!(e, BadTag(_))),
            (
                format!("1 F8_128_HMAC_SHA1_80 {key}"),
                |e| matches!(e, UnknownSuite(s) if s == "F8_128_HMAC_SHA1_80"),
            ),
            (format!("1 aes_cm_128_hmac_sha1_80 {key}"), |e| matches!(e, UnknownSuite(_))),
            ("1 AES_CM_128_HMAC_SHA1_80".into(), |e| matches!(e, BadKeyParam(_))),
            ("1 AES_CM_128_HMAC_SHA1_80 uri:x".into(), |e| matches!(e, BadKeyParam(_))),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(), |e| matches!(e, BadKey(_))),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:QUJD".into(), |e| matches!(e, BadKey(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^49"), |e| matches!(e, BadKeyParam(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:0"), |e| matches!(e, BadKeyParam(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key}|256:1"), |e| matches!(e, BadKeyParam(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:4|5"), |e| matches!(e, BadKeyParam(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}"), |e| matches!(e, BadKeyParam(_))),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=25"), |e| matches!(e, BadSessionParam { .. })),
            (format!("1 AES_CM_128_HMAC_SHA1_80 {key} WSH=x"), |e| matches!(e, BadSessionParam { .. })),
        ];
        for (v, check) in cases {
            let e = CryptoAttribute::parse(&v).unwrap_err();
            assert!(check(&e), "{v}: {e:?}");
        }
        assert_eq!(CryptoAttribute::parse_line("cryptox:1").unwrap_err(), NotThisAttribute(CRYPTO));
    }

    #[test]
    fn base64_agrees_with_python() {
        // Python's standard library decodes the RFC 4568 §4 key to the same 30 octets.
        let Ok(out) = std::process::Command::new("python3")
            .args(["-c", "import base64,sys; print(base64.b64decode(sys.argv[1]).hex())"])
            .arg("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
            .output()
        else {
            eprintln!("python3 not available: skipping");
            return;
        };
        let expected = String::from_utf8(out.stdout).unwrap();
        let a = CryptoAttribute::parse(RFC4568_S4).unwrap();
        let ours: String = a.keys[0].key_salt().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ours, expected.trim());
    }

    #[test]
    fn key_mgmt_round_trip() {
        let k = KeyMgmt::mikey(&[1, 0, 5, 0xff]);
        assert_eq!(k.to_line(), "key-mgmt:mikey AQAF/w==");
        assert_eq!(KeyMgmt::parse_line(&k.to_line()).unwrap(), k);
        assert!(matches!(KeyMgmt::parse("mikey"), Err(SdesError::BadKeyMgmt(_))));
        assert!(matches!(KeyMgmt::parse("mikey !!"), Err(SdesError::BadKeyMgmt(_))));
    }

    #[test]
    fn indications() {
        assert!(ims_e2ae::header_indicates_mediasec(ims_e2ae::HEADER_VALUE));
        assert!(ims_e2ae::header_indicates_mediasec("ipsec-3gpp;alg=x, SDES-SRTP; MediaSec"));
        assert!(!ims_e2ae::header_indicates_mediasec("sdes-srtp"));
        assert!(!ims_e2ae::header_indicates_mediasec("ipsec-3gpp;mediasec"));
        assert_eq!(ims_e2ae::REQUESTED_LINE, format!("{}:{}", ims_e2ae::ATTRIBUTE, ims_e2ae::REQUESTED));
        assert_eq!(ims_e2ae::APPLIED_LINE, format!("{}:{}", ims_e2ae::ATTRIBUTE, ims_e2ae::APPLIED));
    }

    fn same(a: &CryptoAttribute, b: &CryptoAttribute) -> bool {
        a.tag == b.tag
            && a.suite == b.suite
            && a.session_params == b.session_params
            && a.keys.len() == b.keys.len()
            && a.keys.iter().zip(&b.keys).all(|(x, y)| x.same_as(y))
    }

    fn attribute() -> impl Strategy<Value = CryptoAttribute> {
        let lifetime = proptest::option::of(prop_oneof![
            (1u64..u64::MAX).prop_map(Lifetime::Packets),
            (0u8..=48).prop_map(Lifetime::PowerOfTwo),
        ]);
        let key = (any::<[u8; 30]>(), lifetime, 1u8..=8, any::<u64>());
        let param = prop_oneof![
            (0u8..=24).prop_map(SessionParam::Kdr),
            Just(SessionParam::UnencryptedSrtp),
            Just(SessionParam::UnencryptedSrtcp),
            Just(SessionParam::UnauthenticatedSrtp),
            "[A-Z_]{1,8}".prop_map(SessionParam::FecOrder),
            any::<u32>().prop_map(SessionParam::Wsh),
            "-[A-Z]{1,6}".prop_map(SessionParam::Extension),
        ];
        (
            0u32..=MAX_TAG,
            prop_oneof![Just(SdesSuite::AesCm128HmacSha1_80), Just(SdesSuite::AesCm128HmacSha1_32)],
            proptest::collection::vec(key, 1..4),
            any::<bool>(),
            proptest::collection::vec(param, 0..4),
        )
            .prop_map(|(tag, suite, keys, with_mki, session_params)| {
                let several = keys.len() > 1;
                let mki_len = keys[0].2;
                let keys = keys
                    .into_iter()
                    .map(|(ks, lifetime, _, v)| {
                        let mki = (with_mki || several).then(|| Mki {
                            value: if mki_len >= 8 {
                                v
                            } else {
                                v & ((1u64 << (8 * u32::from(mki_len))) - 1)
                            },
                            length: mki_len,
                        });
                        InlineKey::new(&ks, lifetime, mki).unwrap()
                    })
                    .collect();
                CryptoAttribute { tag, suite, keys, session_params }
            })
    }

    proptest! {
        #[test]
        fn parse_of_build_is_identity(a in attribute()) {
            let line = a.to_line().unwrap();
            let again = CryptoAttribute::parse_line(&line).unwrap();
            prop_assert!(same(&a, &again), "{}", line);
        }

        #[test]
        fn parse_never_panics(s in "[ -~]{0,200}") {
            let _ = CryptoAttribute::parse(&s);
            let _ = KeyMgmt::parse(&s);
        }

        #[test]
        fn parse_never_panics_near_valid(
            tag in "[0-9]{0,11}",
            suite in "[A-Z_0-9]{0,26}",
            rest in "[A-Za-z0-9+/=|:;^ ]{0,90}",
        ) {
            let _ = CryptoAttribute::parse(&format!("{tag} {suite} inline:{rest}"));
        }

        #[test]
        fn fuzz_body_holds_near_valid(
            tag in "[0-9]{1,3}",
            suite in prop_oneof![
                Just("AES_CM_128_HMAC_SHA1_80"),
                Just("AES_CM_128_HMAC_SHA1_32"),
                Just("X_1"),
            ],
            key in any::<[u8; 30]>(),
            tail in "(\\|[0-9^:]{1,6}){0,3}( [A-Z_=0-9-]{1,10}){0,3}",
        ) {
            let b64 = BASE64.encode(key);
            crate::fuzz::sdes_parse(format!("crypto:{tag} {suite} inline:{b64}{tail}").as_bytes());
        }

        #[test]
        fn key_mgmt_round_trip_any(data in proptest::collection::vec(any::<u8>(), 1..300)) {
            let k = KeyMgmt::mikey(&data);
            prop_assert_eq!(KeyMgmt::parse_line(&k.to_line()).unwrap(), k);
        }
    }
}
