//! `keysim mikey`: decode MIKEY messages (RFC 3830 §6, RFC 4563 §4–5, RFC 6043 IDR) payload by
//! payload, verify and decrypt those of the MBMS profile, and build the MSK, MTK and
//! solicited-pull messages of TS 33.246 §6.3.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use mikey::kemac::{TransportKeys, decrypt_key_data};
use mikey::mbms::{
    KeyDomainId, KeyValidityData, Msk, MskId, MskMessageParams, MskUpdate, Mtk, MtkId, MtkMessageParams,
    MtkSalt, Muk, SolicitedPullParams, build_msk_message, build_mtk_message, build_solicited_pull,
    parse_msk_message, parse_mtk_message, profile, verify_and_decrypt_msk, verify_and_decrypt_mtk,
};
use mikey::{
    CsIdMap, EncrAlg, GeneralExtension, Hdr, KeyData, KeyDataList, KeyIdType, KeyType, KeyValidity, Message,
    Payload, PayloadType, Timestamp,
};
use serde::Serialize;
use serde_json::Value;

use super::hex_array;
use crate::cli::{
    MikeyBuildCommand, MikeyBuildCommon, MikeyBuildMskArgs, MikeyBuildMtkArgs, MikeyBuildPullArgs,
    MikeyCommand, MikeyDecodeArgs,
};

pub fn run(cmd: MikeyCommand) -> Result<ExitCode> {
    match cmd {
        MikeyCommand::Decode(args) => decode(args),
        MikeyCommand::Build(MikeyBuildCommand::Msk(args)) => build_msk(args),
        MikeyCommand::Build(MikeyBuildCommand::Mtk(args)) => build_mtk(args),
        MikeyCommand::Build(MikeyBuildCommand::Pull(args)) => build_pull(args),
    }
}

// ---------------------------------------------------------------------------------------------
// An ordered description: JSON objects and indented text from the same fields.

enum Node {
    Value(Value),
    Object(Fields),
    List(Vec<Fields>),
}

/// Named fields in the order they are printed (JSON keeps the order too).
#[derive(Default)]
struct Fields(Vec<(&'static str, Node)>);

impl Fields {
    fn val(&mut self, key: &'static str, v: impl Into<Value>) -> &mut Self {
        self.0.push((key, Node::Value(v.into())));
        self
    }

    fn hex(&mut self, key: &'static str, bytes: &[u8]) -> &mut Self {
        self.val(key, hex::encode(bytes))
    }

    /// A numeric code and, when known, its name as `<key>_name`.
    fn code(&mut self, key: &'static str, name_key: &'static str, v: u8, name: Option<&str>) -> &mut Self {
        self.val(key, v);
        if let Some(n) = name {
            self.val(name_key, n);
        }
        self
    }

    fn object(&mut self, key: &'static str, f: Fields) -> &mut Self {
        self.0.push((key, Node::Object(f)));
        self
    }

    fn list(&mut self, key: &'static str, items: Vec<Fields>) -> &mut Self {
        self.0.push((key, Node::List(items)));
        self
    }

    fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, n)| n)
    }
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(v) => v.serialize(s),
            Node::Object(f) => f.serialize(s),
            Node::List(l) => l.serialize(s),
        }
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn text_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `value` or `value (name)` when a `<key>_name` field sits beside it.
fn text_field(f: &Fields, key: &str, v: &Value) -> String {
    let name = f.0.iter().find_map(|(k, n)| match n {
        Node::Value(Value::String(s)) if k.strip_suffix("_name") == Some(key) => Some(s.as_str()),
        _ => None,
    });
    match name {
        Some(n) => format!("{} ({n})", text_value(v)),
        None => text_value(v),
    }
}

fn is_merged_name(f: &Fields, key: &str) -> bool {
    key.strip_suffix("_name").is_some_and(|base| matches!(f.get(base), Some(Node::Value(_))))
}

fn render(f: &Fields, indent: usize, skip: &[&str], out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, node) in &f.0 {
        if skip.contains(k) || is_merged_name(f, k) {
            continue;
        }
        match node {
            Node::Value(v) => out.push_str(&format!("{pad}{k}: {}\n", text_field(f, k, v))),
            Node::Object(o) => {
                out.push_str(&format!("{pad}{k}:\n"));
                render(o, indent + 2, &[], out);
            }
            Node::List(items) if items.is_empty() => out.push_str(&format!("{pad}{k}: none\n")),
            Node::List(items) => {
                out.push_str(&format!("{pad}{k}:\n"));
                for item in items {
                    let inline: Vec<String> = item
                        .0
                        .iter()
                        .filter(|(ik, _)| !is_merged_name(item, ik))
                        .map(|(ik, n)| match n {
                            Node::Value(v) => format!("{ik}={}", text_field(item, ik, v)),
                            Node::Object(_) | Node::List(_) => format!("{ik}=..."),
                        })
                        .collect();
                    out.push_str(&format!("{pad}  - {}\n", inline.join(", ")));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Names of the codes (RFC 3830 §6, RFC 4563, RFC 6043)

fn data_type_name(v: u8) -> Option<&'static str> {
    Some(match v {
        0 => "PSK init",
        1 => "PSK verification",
        2 => "public-key init",
        3 => "public-key verification",
        4 => "DH init",
        5 => "DH response",
        6 => "error",
        7 => "DHHMAC init",
        8 => "DHHMAC response",
        9 => "RSA-R init",
        10 => "RSA-R response",
        11 => "REQUEST_INIT (PSK)",
        12 => "REQUEST_INIT (PK)",
        13 => "REQUEST_RESP",
        14 => "TRANSFER_INIT",
        15 => "TRANSFER_RESP",
        16 => "RESOLVE_INIT (PSK)",
        17 => "RESOLVE_INIT (PK)",
        18 => "RESOLVE_RESP",
        _ => return None,
    })
}

/// Short payload names, as RFC 3830 §6 and RFC 6043 §6 write them.
fn payload_name(v: u8) -> String {
    let name = match PayloadType::from_u8(v) {
        Some(PayloadType::Last) => "last",
        Some(PayloadType::Kemac) => "KEMAC",
        Some(PayloadType::Pke) => "PKE",
        Some(PayloadType::Dh) => "DH",
        Some(PayloadType::Sign) => "SIGN",
        Some(PayloadType::Timestamp) => "T",
        Some(PayloadType::Id) => "ID",
        Some(PayloadType::Cert) => "CERT",
        Some(PayloadType::Chash) => "CHASH",
        Some(PayloadType::Verification) => "V",
        Some(PayloadType::SecurityPolicy) => "SP",
        Some(PayloadType::Rand) => "RAND",
        Some(PayloadType::Err) => "ERR",
        Some(PayloadType::Tr) => "TR",
        Some(PayloadType::Idr) => "IDR",
        Some(PayloadType::Randr) => "RANDR",
        Some(PayloadType::Tp) => "TP",
        Some(PayloadType::Ticket) => "TICKET",
        Some(PayloadType::KeyData) => "Key data",
        Some(PayloadType::GeneralExtension) => "EXT",
        None => return format!("unknown type {v}"),
    };
    name.to_owned()
}

fn map_type_name(v: u8) -> Option<&'static str> {
    match v {
        0 => Some("SRTP-ID"),
        1 => Some("empty map"),
        2 => Some("GENERIC-ID"),
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

fn mac_alg_name(a: mikey::MacAlg) -> &'static str {
    match a {
        mikey::MacAlg::Null => "NULL",
        mikey::MacAlg::HmacSha1_160 => "HMAC-SHA-1-160",
    }
}

fn id_type_name(v: u8) -> Option<&'static str> {
    match v {
        0 => Some("NAI"),
        1 => Some("URI"),
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
        0 => "encryption algorithm",
        1 => "session encryption key length",
        2 => "authentication algorithm",
        3 => "session authentication key length",
        4 => "session salt key length",
        5 => "SRTP PRF",
        6 => "key derivation rate",
        7 => "SRTP encryption",
        8 => "SRTCP encryption",
        9 => "sender's FEC order",
        10 => "SRTP authentication",
        11 => "authentication tag length",
        12 => "SRTP prefix length",
        _ => return None,
    })
}

fn error_no_name(v: u8) -> Option<&'static str> {
    Some(match v {
        0 => "authentication failure",
        1 => "invalid timestamp",
        2 => "PRF function not supported",
        3 => "MAC algorithm not supported",
        4 => "encryption algorithm not supported",
        5 => "hash function not supported",
        6 => "DH group not supported",
        7 => "ID not supported",
        8 => "certificate not supported",
        9 => "SP type not supported",
        10 => "SP parameter not supported",
        11 => "data type not supported",
        12 => "unspecified error",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Time

/// A 64-bit NTP timestamp (RFC 3830 §6.6: seconds since 1900 in the upper 32 bits, fraction in the
/// lower) as ISO 8601 UTC. Seconds with the top bit clear belong to NTP era 1 (2036–2104), as
/// RFC 4330 §3 reads them.
fn ntp_to_iso8601(ntp: u64) -> String {
    let unix = mikey::ntp_era_seconds(ntp) as i64 - mikey::NTP_UNIX_OFFSET as i64;
    let (days, sod) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = gba::lifetime::civil_from_days(days);
    let micros = ((ntp & 0xffff_ffff) * 1_000_000) >> 32;
    let frac = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z", sod / 3600, sod / 60 % 60, sod % 60)
}

// ---------------------------------------------------------------------------------------------
// Input

/// Hex digits with optional whitespace and colons, naming the option (or operand) in the error.
fn hex_arg(option: &str, text: &str) -> Result<Vec<u8>> {
    sim_reader::parse_hex(text).map_err(|e| anyhow!("{option}: {e}"))
}

/// The message from FILE ("-": stdin): hex text when it is only hex digits, whitespace and colons
/// (a raw MIKEY message starts with the version byte 0x01, never a hex digit), else raw bytes.
fn read_input(path: &Path) -> Result<Vec<u8>> {
    let raw = if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).context("reading stdin")?;
        v
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    if raw.is_empty() {
        bail!("{}: empty input", path.display());
    }
    let looks_hex = raw.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b':');
    if looks_hex {
        let text = String::from_utf8_lossy(&raw);
        return hex_arg(&path.display().to_string(), &text);
    }
    Ok(raw)
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
        Err(mikey::Error::Truncated) => Probe::TooShort,
        Err(mikey::Error::TrailingBytes) => Probe::TooLong,
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
fn locate(bytes: &[u8]) -> String {
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
        let rest = bytes.len() - at;
        let found = fitting_len(rest, |n| {
            let mut m = bytes[..hdr_len].to_vec();
            m[2] = next;
            m.extend_from_slice(&bytes[at..at + n]);
            m[hdr_len] = 0;
            m
        });
        match found {
            Some(len) => {
                next = bytes[at];
                at += len;
                number += 1;
            }
            None => return format!("in payload {number} ({}) at offset {at}", payload_name(next)),
        }
    }
    format!("after the last payload, at offset {at}")
}

// ---------------------------------------------------------------------------------------------
// Describing payloads

fn key_data_fields(kd: &KeyData<'_>, show_keys: bool) -> Fields {
    let mut f = Fields::default();
    let type_name = match kd.wire_type() {
        0 => "TGK",
        1 => "TGK+SALT",
        2 => "TEK",
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
            f.code("kv_type", "kv_type_name", 0, Some("NULL"));
        }
        KeyValidity::Spi(spi) => {
            f.code("kv_type", "kv_type_name", 1, Some("SPI/MKI")).hex("kv_spi", spi);
        }
        KeyValidity::Interval { from, to } => {
            f.code("kv_type", "kv_type_name", 2, Some("interval")).hex("kv_from", from).hex("kv_to", to);
        }
    }
    f
}

fn key_data_list(plain: &[u8], show_keys: bool) -> Result<Vec<Fields>, mikey::Error> {
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
        mikey::PrfFunc::MikeyHmacSha1 => "MIKEY-1 (HMAC-SHA-1)",
        mikey::PrfFunc::HmacSha256 => "PRF-HMAC-SHA-256",
    };
    f.val("version", version)
        .code("data_type", "data_type_name", hdr.data_type.0, data_type_name(hdr.data_type.0))
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
type Readable = Option<Vec<u8>>;

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
            f.code("id_type", "id_type_name", id.id_type.0, id_type_name(id.id_type.0));
            if let Some(role) = id_role {
                f.val("role", role);
            }
            f.val("data", String::from_utf8_lossy(id.data)).hex("data_hex", id.data);
        }
        Payload::Idr(idr) => {
            let role = match idr.role.0 {
                1 => Some("IDRi"),
                2 => Some("IDRr"),
                3 => Some("IDRkms"),
                4 => Some("IDRpsk"),
                5 => Some("IDRapp"),
                _ => None,
            };
            f.code("role", "role_name", idr.role.0, role)
                .code("id_type", "id_type_name", idr.id_type.0, id_type_name(idr.id_type.0))
                .val("data", String::from_utf8_lossy(idr.data))
                .hex("data_hex", idr.data);
        }
        Payload::Verification(v) => {
            f.code("mac_alg", "mac_alg_name", v.mac_alg as u8, Some(mac_alg_name(v.mac_alg)))
                .hex("mac", v.mac);
        }
        Payload::SecurityPolicy(sp) => {
            let srtp = sp.prot_type.0 == 0;
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
            f.code("error_no", "error_no_name", e.error_no.0, error_no_name(e.error_no.0));
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
            f.code("ext_type", "ext_type_name", 3, Some("Key ID information")).list("key_ids", items);
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
        Payload::GeneralExtension(GeneralExtension::Other { ext_type, data }) => {
            let name = match ext_type {
                0 => Some("vendor ID"),
                1 => Some("SDP IDs"),
                _ => None,
            };
            f.code("ext_type", "ext_type_name", *ext_type, name).hex("data", data);
        }
        // Message::parse refuses the MIKEY-TICKET payloads (RFC 6043), so none is described here.
        Payload::Tr(_) | Payload::Randr(_) | Payload::Tp(_) | Payload::Ticket(_) => {}
    }
    f
}

fn short_type(p: &Payload<'_>) -> &'static str {
    match p {
        Payload::Kemac(_) => "KEMAC",
        Payload::Timestamp(_) => "T",
        Payload::Id(_) => "ID",
        Payload::Idr(_) => "IDR",
        Payload::Verification(_) => "V",
        Payload::SecurityPolicy(_) => "SP",
        Payload::Rand(_) => "RAND",
        Payload::Err(_) => "ERR",
        Payload::GeneralExtension(_) => "EXT",
        Payload::Tr(_) => "TR",
        Payload::Randr(_) => "RANDR",
        Payload::Tp(_) => "TP",
        Payload::Ticket(_) => "TICKET",
    }
}

fn describe(msg: &Message<'_>, readable: &Readable, show_keys: bool) -> Vec<Fields> {
    let bytes = msg.as_bytes();
    let hdr = msg.hdr();
    let hdr_len = hdr.encoded_len();
    let mut out = Vec::new();
    let mut f = Fields::default();
    f.val("type", "HDR").val("offset", 0).val("length", hdr_len);
    f.0.extend(hdr_fields(bytes.first().copied().unwrap_or(0), hdr).0);
    out.push(f);
    // RFC 3830 §3.1: an initiator's first ID is IDi and its second IDr; a verification message
    // carries IDr only.
    let roles: &[&'static str] = match hdr.data_type.0 {
        0 | 2 => &["IDi", "IDr"],
        1 | 3 => &["IDr"],
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
        f.val("type", short_type(&p)).val("offset", at).val("length", len);
        f.0.extend(payload_fields(&p, role, readable, show_keys).0);
        out.push(f);
        at += len;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Verification with the MUK or MSK (TS 33.246 §6.3)

struct Verified {
    fields: Fields,
    mac_valid: bool,
    readable: Readable,
}

fn kv_fields(f: &mut Fields, kv: &KeyValidityData) {
    match kv {
        KeyValidityData::Null => f.code("kv_type", "kv_type_name", 0, Some("NULL")),
        KeyValidityData::Spi(s) => f.code("kv_type", "kv_type_name", 1, Some("SPI/MKI")).hex("kv_spi", s),
        KeyValidityData::Interval { from, to } => {
            f.code("kv_type", "kv_type_name", 2, Some("interval")).hex("kv_from", from).hex("kv_to", to)
        }
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
    kemac: &mikey::Kemac<'_>,
    ts: u64,
) -> Result<Vec<u8>, mikey::Error> {
    let keys = TransportKeys::derive(profile::PRF, key, csb_id, rand)?;
    let mut buf = vec![0u8; kemac.encr_data.len()];
    let n = decrypt_key_data(kemac, &keys, csb_id, ts, &mut buf).map(|_| kemac.encr_data.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn has_mtk_id(msg: &Message<'_>) -> bool {
    msg.key_ids().is_some_and(|ids| ids.find(KeyIdType::MBMS_MTK_ID).is_some())
}

fn verify_with_muk(bytes: &[u8], muk_bytes: &[u8; 32], show_keys: bool) -> Result<Verified> {
    let m = parse_msk_message(bytes).map_err(|e| anyhow!("not an MSK message of the MBMS profile: {e}"))?;
    let muk = Muk::new(*muk_bytes);
    let mut f = Fields::default();
    let kd = m.key_domain_id();
    let result = verify_and_decrypt_msk(&muk, &m);
    match result {
        Err(mikey::Error::MacMismatch) => {
            f.val("message", if m.is_solicited_pull() { "solicited pull" } else { "MSK" })
                .val("key", "MUK")
                .val("mac", "invalid");
            Ok(Verified { fields: f, mac_valid: false, readable: None })
        }
        Err(e) => bail!("the MAC verified, but the key data is refused: {e}"),
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
            let kemac = m.message().kemac().ok_or_else(|| anyhow!("no KEMAC"))?;
            let readable =
                decrypt_for_display(muk_bytes, m.csb_id(), m.rand(), &kemac, m.timestamp().as_u64()).ok();
            Ok(Verified { fields: f, mac_valid: true, readable })
        }
    }
}

fn verify_with_msk(bytes: &[u8], msk_bytes: &[u8; 16], show_keys: bool) -> Result<Verified> {
    let m = parse_mtk_message(bytes).map_err(|e| anyhow!("not an MTK message of the MBMS profile: {e}"))?;
    let msk = Msk::new(*msk_bytes);
    let mut f = Fields::default();
    match verify_and_decrypt_mtk(&msk, &m) {
        Err(mikey::Error::MacMismatch) => {
            f.val("message", "MTK").val("key", "MSK").val("mac", "invalid");
            Ok(Verified { fields: f, mac_valid: false, readable: None })
        }
        Err(e) => bail!("the MAC verified, but the key data is refused: {e}"),
        Ok(d) => {
            let mut mtk_id = [0u8; 4];
            mtk_id.copy_from_slice(&d.mtk_id.0.to_be_bytes());
            f.val("message", "MTK")
                .val("key", "MSK")
                .val("mac", "valid")
                .hex("key_domain_id", &d.key_domain_id.0)
                .hex("msk_id", &d.msk_id.to_bytes())
                .val("key_group", format!("{:04x}", d.msk_id.key_group()))
                .hex("mtk_id", &mtk_id[4 - profile::MTK_ID_LEN..])
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
            let kemac = m.message().kemac().ok_or_else(|| anyhow!("no KEMAC"))?;
            let readable =
                decrypt_for_display(msk_bytes, m.csb_id(), m.rand(), &kemac, m.timestamp().as_u64()).ok();
            Ok(Verified { fields: f, mac_valid: true, readable })
        }
    }
}

pub fn decode(args: MikeyDecodeArgs) -> Result<ExitCode> {
    let bytes = match (&args.hex, &args.input) {
        (Some(text), _) => hex_arg("HEX", text)?,
        (None, Some(path)) => read_input(path)?,
        (None, None) => bail!("give the message in hex or --in FILE"),
    };
    let muk = args.muk.as_deref().map(|h| hex_array::<32>("--muk", h)).transpose()?;
    let msk = args.msk.as_deref().map(|h| hex_array::<16>("--msk", h)).transpose()?;
    let msg = Message::parse(&bytes)
        .map_err(|e| anyhow!("malformed MIKEY message ({} bytes): {}: {e}", bytes.len(), locate(&bytes)))?;

    let verified = match (&muk, &msk) {
        (Some(_), _) if has_mtk_id(&msg) => bail!("this is an MTK message: verify it with --msk"),
        (_, Some(_)) if !has_mtk_id(&msg) => {
            bail!("this is an MSK message or solicited pull: verify it with --muk")
        }
        (Some(k), _) => Some(verify_with_muk(&bytes, k, args.show_keys)?),
        (_, Some(k)) => Some(verify_with_msk(&bytes, k, args.show_keys)?),
        _ => None,
    };
    let readable = verified.as_ref().and_then(|v| v.readable.clone());
    let mut top = Fields::default();
    top.list("payloads", describe(&msg, &readable, args.show_keys));
    let mac_valid = verified.as_ref().is_none_or(|v| v.mac_valid);
    if let Some(v) = verified {
        top.object("verification", v.fields);
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&top).context("JSON")?);
    } else {
        let mut out = String::new();
        for (key, node) in &top.0 {
            match node {
                Node::List(payloads) => {
                    for p in payloads {
                        let ty = match p.get("type") {
                            Some(Node::Value(v)) => text_value(v),
                            _ => String::new(),
                        };
                        let num = |k| match p.get(k) {
                            Some(Node::Value(v)) => text_value(v),
                            _ => String::new(),
                        };
                        out.push_str(&format!("{ty} (offset {}, {} bytes)\n", num("offset"), num("length")));
                        render(p, 2, &["type", "offset", "length"], &mut out);
                    }
                }
                Node::Object(o) => {
                    out.push_str(&format!("{key}:\n"));
                    render(o, 2, &[], &mut out);
                }
                Node::Value(_) => {}
            }
        }
        print!("{out}");
    }
    if mac_valid {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("keysim: MAC verification failed");
        Ok(ExitCode::from(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Building (TS 33.246 §6.3 through the mikey crate's MBMS profile)

fn number(option: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    parsed.map_err(|e| anyhow!("{option}: {text:?} is not a number: {e}"))
}

fn timestamp(ts_type: &str, text: &str) -> Result<Timestamp> {
    let v = number("--timestamp", text)?;
    Ok(match ts_type {
        "ntp-utc" => Timestamp::NtpUtc(v),
        "ntp" => Timestamp::Ntp(v),
        _ => Timestamp::Counter(
            u32::try_from(v).map_err(|_| anyhow!("--timestamp: a COUNTER has 32 bits; {v} is too large"))?,
        ),
    })
}

/// `--rand`, or 16 bytes from the system's random source.
fn rand_or_random(option: Option<&str>) -> Result<Vec<u8>> {
    let rand = match option {
        Some(h) => hex_arg("--rand", h)?,
        None => {
            let mut r = vec![0u8; profile::MIN_RAND_LEN];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut r))
                .context("no random source (/dev/urandom) for the RAND: give --rand")?;
            r
        }
    };
    if rand.len() < profile::MIN_RAND_LEN {
        bail!("--rand: at least {} bytes (RFC 3830 §4.1.1), got {}", profile::MIN_RAND_LEN, rand.len());
    }
    Ok(rand)
}

fn csb_id(common: &MikeyBuildCommon) -> Result<u32> {
    Ok(u32::from_be_bytes(hex_array::<4>("--csb-id", &common.csb_id)?))
}

fn buffer(variable: &[&[u8]]) -> Vec<u8> {
    vec![0u8; 512 + variable.iter().map(|v| v.len()).sum::<usize>()]
}

fn emit(message: &[u8], common: &MikeyBuildCommon) -> Result<ExitCode> {
    match &common.out {
        Some(path) if path == Path::new("-") => {
            use std::io::Write;
            std::io::stdout().write_all(message).context("writing stdout")?;
        }
        Some(path) => std::fs::write(path, message).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{}", hex::encode(message)),
    }
    Ok(ExitCode::SUCCESS)
}

fn build_err(what: &str) -> impl Fn(mikey::Error) -> anyhow::Error + '_ {
    move |e| anyhow!("building the {what}: {e}")
}

pub fn build_msk(a: MikeyBuildMskArgs) -> Result<ExitCode> {
    let muk = Muk::new(hex_array::<32>("--muk", &a.muk)?);
    let msk = Msk::new(hex_array::<16>("--msk", &a.msk)?);
    let msk_id = MskId(u32::from_be_bytes(hex_array::<4>("--msk-id", &a.msk_id)?));
    if msk_id.is_solicited_pull() {
        bail!(
            "--msk-id: key number 0 is the solicited pull's (TS 33.246 §6.3.2.2.4): use `mikey build pull`"
        );
    }
    let rand = rand_or_random(a.rand.as_deref())?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let ts = timestamp(&a.ts_type, &a.timestamp)?;
    let params = MskMessageParams {
        csb_id: csb_id(&a.common)?,
        ..MskMessageParams::new(a.idi.as_bytes(), a.idr.as_bytes(), key_domain_id, msk_id, ts, &rand)
            .with_v_bit(a.v)
    };
    let mut buf = buffer(&[&rand, a.idi.as_bytes(), a.idr.as_bytes()]);
    let n = build_msk_message(&muk, &params, &msk, &mut buf).map_err(build_err("MSK message"))?;
    emit(&buf[..n], &a.common)
}

pub fn build_mtk(a: MikeyBuildMtkArgs) -> Result<ExitCode> {
    let msk = Msk::new(hex_array::<16>("--msk", &a.msk)?);
    let mtk = Mtk::new(hex_array::<16>("--mtk", &a.mtk)?);
    let salt = a.salt.as_deref().map(|s| hex_array::<14>("--salt", s)).transpose()?.map(MtkSalt::new);
    let mtk_id = hex_arg("--mtk-id", &a.mtk_id)?;
    if mtk_id.len() != profile::MTK_ID_LEN {
        bail!("--mtk-id: the MTK ID has {} bytes in this profile, got {}", profile::MTK_ID_LEN, mtk_id.len());
    }
    let mtk_id = MtkId(mtk_id.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)));
    let rand = a.rand.as_deref().map(|_| rand_or_random(a.rand.as_deref())).transpose()?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let msk_id = MskId(u32::from_be_bytes(hex_array::<4>("--msk-id", &a.msk_id)?));
    let params = MtkMessageParams {
        csb_id: csb_id(&a.common)?,
        rand: rand.as_deref(),
        ..MtkMessageParams::new(key_domain_id, msk_id, mtk_id, Timestamp::Counter(a.counter))
    };
    let mut buf = buffer(&[rand.as_deref().unwrap_or(&[])]);
    let n =
        build_mtk_message(&msk, &params, &mtk, salt.as_ref(), &mut buf).map_err(build_err("MTK message"))?;
    emit(&buf[..n], &a.common)
}

pub fn build_pull(a: MikeyBuildPullArgs) -> Result<ExitCode> {
    let muk = Muk::new(hex_array::<32>("--muk", &a.muk)?);
    let rand = rand_or_random(a.rand.as_deref())?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let key_group = u16::from_be_bytes(hex_array::<2>("--key-group", &a.key_group)?);
    let ts = timestamp(&a.ts_type, &a.timestamp)?;
    let params = SolicitedPullParams {
        csb_id: csb_id(&a.common)?,
        ..SolicitedPullParams::new(a.idi.as_bytes(), a.idr.as_bytes(), key_domain_id, key_group, ts, &rand)
    };
    let mut buf = buffer(&[&rand, a.idi.as_bytes(), a.idr.as_bytes()]);
    let n = build_solicited_pull(&muk, &params, &mut buf).map_err(build_err("solicited pull"))?;
    emit(&buf[..n], &a.common)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known dates from outside this code: `date -u -d @0` and RFC 4330 §3's era boundary
    /// (NTP second 2^31 is 1968-01-20T03:14:08Z), and a leap day.
    #[test]
    fn ntp_timestamps_as_iso8601() {
        assert_eq!(ntp_to_iso8601(mikey::NTP_UNIX_OFFSET << 32), "1970-01-01T00:00:00Z");
        assert_eq!(ntp_to_iso8601(0x8000_0000u64 << 32), "1968-01-20T03:14:08Z");
        // 2024-02-29T12:00:00Z is Unix 1709208000 (`date -u -d 2024-02-29T12:00:00Z +%s`).
        let ntp = (1_709_208_000u64 + mikey::NTP_UNIX_OFFSET) << 32 | 0x8000_0000;
        assert_eq!(ntp_to_iso8601(ntp), "2024-02-29T12:00:00.500000Z");
        // Era 1: NTP second 0 is 2036-02-07T06:28:16Z.
        assert_eq!(ntp_to_iso8601(0), "2036-02-07T06:28:16Z");
    }

    #[test]
    fn hex_arg_accepts_spaces_and_colons_and_names_the_bad_digit() {
        assert_eq!(hex_arg("X", "01:02 0a\n0B").unwrap(), vec![1, 2, 10, 11]);
        let odd = hex_arg("X", "012").unwrap_err().to_string();
        assert!(odd.contains("odd number of hex digits (3)"), "{odd}");
        let bad = hex_arg("HEX", "zz").unwrap_err().to_string();
        assert!(bad.starts_with("HEX: ") && bad.contains("'z' at digit 0 is not a hex digit"), "{bad}");
        assert!(hex_arg("X", "").unwrap_err().to_string().contains("no hex digits"));
    }
}
