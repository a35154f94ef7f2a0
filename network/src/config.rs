//! The configuration of the standalone network (`keysim serve --config FILE`): addresses, the
//! BSF's domain and key lifetime (TS 33.220 §4.5.2), its HSS subscribers with their GBA user
//! security setting (GUSS UICC type, TS 33.220 §4.4.3), the BM-SC's User Services (TS 33.246
//! §6.3, TS 26.346 §11) and their schedule.
//!
//! A bad file is refused with the key it concerns named ([`ConfigError`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use gba::Sqn;
use mikey::mbms::KeyDomainId;
use wire::zn::GbaType;

use crate::bsf::Subscriber;

/// The BSF's address when none is given (Ub and Zn).
pub const DEFAULT_BSF_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24750);
/// The BM-SC's HTTP address when none is given (key management, TS 33.246 §6.3.2).
pub const DEFAULT_BMSC_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24751);
/// The BM-SC's MIKEY socket when none is given: MSK pushes leave from it, verification messages
/// come back to it.
pub const DEFAULT_BMSC_MIKEY_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24752);
/// Where the bearer's SRTP goes when no address is given: unicast to one UE on this host, at the
/// port a `keysim ue` listens on by default ([`wire::mbms_key_management::DEFAULT_BEARER_MEDIA_PORT`]).
pub const DEFAULT_BEARER_MEDIA_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), wire::mbms_key_management::DEFAULT_BEARER_MEDIA_PORT);
/// The KMS's address when none is given (TS 33.328 MIKEY-TICKET over HTTP).
pub const DEFAULT_KMS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24756);
/// The KMS's FQDN when none is given (the one `keysim call --security kms` uses).
pub const DEFAULT_KMS_FQDN: &str = "kms.ims.mnc001.mcc001.3gppnetwork.org";
/// The SCF's SIP address when none is given (UDP; TS 26.237 §10.4.2).
pub const DEFAULT_SCF_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24757);
/// The P-CSCF's SIP address when none is given (UDP; the UEs' first hop).
pub const DEFAULT_PCSCF_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24758);
/// The SCF's SIP domain when none is given (the one `keysim demo --signalling sip` uses).
pub const DEFAULT_SCF_DOMAIN: &str = "scf.mnc001.mcc001.pub.3gppnetwork.org";
/// The SCF's FQDN towards the BM-SC when none is given: the NAF FQDN of its services.
pub const DEFAULT_SCF_FQDN: &str = "scf-bmsc.mnc001.mcc001.pub.3gppnetwork.org";
/// The admin API's address when none is given (loopback only).
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24759);
/// The BM-SC's FQDN when none is given.
pub const DEFAULT_BMSC_FQDN: &str = "bmsc.mnc001.mcc001.pub.3gppnetwork.org";
/// The User Service of the default configuration.
pub const DEFAULT_SERVICE_ID: &str = "urn:keysim:mbms:service:1";
/// The home network domain of derived subscribers (TS 23.003 §13.2 for MCC 001, MNC 01).
pub const RANGE_HOME_DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML of this schema (syntax, unknown or missing key, wrong type); the TOML parser's
    /// message names the key and the line.
    #[error("configuration: {0}")]
    Syntax(String),
    /// A key holds a value that cannot be used.
    #[error("configuration: key `{key}`: {reason}")]
    Value {
        /// The key, with its table (`subscriber[1].k`).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn value(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Value { key: key.into(), reason: reason.into() }
}

fn yes() -> bool {
    true
}

/// The whole file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The state directory (overridden by `--state-dir`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminSection,
    /// The BSF.
    #[serde(default)]
    pub bsf: BsfSection,
    /// The BM-SC.
    #[serde(default)]
    pub bmsc: BmscSection,
    /// The KMS.
    #[serde(default)]
    pub kms: KmsSection,
    /// The SCF (SIP-based MBMS security, TS 26.237 §10.4.2).
    #[serde(default)]
    pub scf: ScfSection,
    /// The P-CSCF in front of the SCF.
    #[serde(default)]
    pub pcscf: PcscfSection,
    /// Subscribers written out one by one.
    #[serde(default, rename = "subscriber")]
    pub subscribers: Vec<SubscriberEntry>,
    /// Subscribers derived from an index ([`derived_identity`]).
    #[serde(default, rename = "subscriber_range")]
    pub subscriber_ranges: Vec<SubscriberRange>,
}

/// `[admin]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Loopback address of the admin API.
    #[serde(default = "default_admin")]
    pub listen: SocketAddr,
}

fn default_admin() -> SocketAddr {
    DEFAULT_ADMIN_ADDR
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection { listen: DEFAULT_ADMIN_ADDR }
    }
}

/// `[bsf]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BsfSection {
    /// Started without `--bsf`/`--bmsc`/… options.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ub and Zn.
    #[serde(default = "default_bsf")]
    pub listen: SocketAddr,
    /// The domain of B-TIDs and the Digest realm.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Lifetime of Ks in seconds.
    #[serde(default = "default_lifetime")]
    pub key_lifetime_s: u64,
}

fn default_bsf() -> SocketAddr {
    DEFAULT_BSF_ADDR
}
fn default_domain() -> String {
    crate::bsf::DEFAULT_BSF_DOMAIN.to_owned()
}
fn default_lifetime() -> u64 {
    crate::bsf::DEFAULT_KEY_LIFETIME.as_secs()
}

impl Default for BsfSection {
    fn default() -> Self {
        BsfSection {
            enabled: true,
            listen: DEFAULT_BSF_ADDR,
            domain: default_domain(),
            key_lifetime_s: default_lifetime(),
        }
    }
}

/// `[kms]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsSection {
    /// Started when no `--bsf`/`--bmsc`/`--kms` option is given.
    #[serde(default)]
    pub enabled: bool,
    /// Ticket requests and resolves.
    #[serde(default = "default_kms")]
    pub listen: SocketAddr,
    /// The KMS FQDN (its NAF FQDN and identity).
    #[serde(default = "default_kms_fqdn")]
    pub fqdn: String,
    /// The BSF's Zn address (default: the BSF's `listen`).
    #[serde(default)]
    pub bsf_zn: Option<SocketAddr>,
    /// Whether tickets may be reusable.
    #[serde(default = "yes")]
    pub allow_reuse: bool,
    /// Longest ticket validity, in seconds (0: the KMS's default).
    #[serde(default)]
    pub max_ticket_lifetime_s: u64,
}

fn default_kms() -> SocketAddr {
    DEFAULT_KMS_ADDR
}
fn default_kms_fqdn() -> String {
    DEFAULT_KMS_FQDN.to_owned()
}

impl Default for KmsSection {
    fn default() -> Self {
        KmsSection {
            enabled: false,
            listen: DEFAULT_KMS_ADDR,
            fqdn: default_kms_fqdn(),
            bsf_zn: None,
            allow_reuse: true,
            max_ticket_lifetime_s: 0,
        }
    }
}

/// `[scf]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScfSection {
    /// Started when no function option is given.
    #[serde(default)]
    pub enabled: bool,
    /// Its SIP socket (UDP).
    #[serde(default = "default_scf")]
    pub listen: SocketAddr,
    /// Its SIP domain (Request-URI `sip:scf@domain`).
    #[serde(default = "default_scf_domain")]
    pub domain: String,
    /// Its FQDN towards the BM-SC: the NAF FQDN of the services it serves.
    #[serde(default = "default_scf_fqdn")]
    pub naf_fqdn: String,
}

fn default_scf() -> SocketAddr {
    DEFAULT_SCF_ADDR
}
fn default_scf_domain() -> String {
    DEFAULT_SCF_DOMAIN.to_owned()
}
fn default_scf_fqdn() -> String {
    DEFAULT_SCF_FQDN.to_owned()
}

impl Default for ScfSection {
    fn default() -> Self {
        ScfSection {
            enabled: false,
            listen: DEFAULT_SCF_ADDR,
            domain: default_scf_domain(),
            naf_fqdn: default_scf_fqdn(),
        }
    }
}

/// `[pcscf]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcscfSection {
    /// Started when no function option is given (only with the SCF).
    #[serde(default)]
    pub enabled: bool,
    /// Its SIP socket (UDP).
    #[serde(default = "default_pcscf")]
    pub listen: SocketAddr,
}

fn default_pcscf() -> SocketAddr {
    DEFAULT_PCSCF_ADDR
}

impl Default for PcscfSection {
    fn default() -> Self {
        PcscfSection { enabled: false, listen: DEFAULT_PCSCF_ADDR }
    }
}

/// `[bmsc]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmscSection {
    /// Started without `--bsf`/`--bmsc`/… options.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// HTTP key management.
    #[serde(default = "default_bmsc")]
    pub listen: SocketAddr,
    /// The MIKEY socket.
    #[serde(default = "default_bmsc_mikey")]
    pub mikey_listen: SocketAddr,
    /// FQDN: NAF_Id, realms, IDi.
    #[serde(default = "default_fqdn")]
    pub fqdn: String,
    /// The BSF's Zn address (default: the BSF's `listen`).
    #[serde(default)]
    pub bsf_zn: Option<SocketAddr>,
    /// The UEs' UDP port of MSK pushes.
    #[serde(default = "default_ue_mikey_port")]
    pub ue_mikey_port: u16,
    /// Ask for MIKEY verification messages.
    #[serde(default = "yes")]
    pub v_bit: bool,
    /// Where MTK messages go (default: `127.0.0.1:ue_mikey_port`).
    #[serde(default)]
    pub bearer_mikey: Vec<SocketAddr>,
    /// Where SRTP goes (default: [`DEFAULT_BEARER_MEDIA_ADDR`]).
    #[serde(default)]
    pub bearer_media: Vec<SocketAddr>,
    /// A new MTK every so many milliseconds.
    #[serde(default = "default_mtk_ms")]
    pub mtk_period_ms: u64,
    /// Media every so many milliseconds …
    #[serde(default = "default_media_ms")]
    pub media_period_ms: u64,
    /// … this many SRTP packets per service each time.
    #[serde(default = "default_packets")]
    pub packets_per_media_period: usize,
    /// A new MSK every so many seconds; 0: only when asked (`keysim ctl rotate-msk`).
    #[serde(default)]
    pub msk_rotation_s: u64,
    /// The User Services.
    #[serde(default = "default_services", rename = "service")]
    pub services: Vec<ServiceEntry>,
}

fn default_bmsc() -> SocketAddr {
    DEFAULT_BMSC_ADDR
}
fn default_bmsc_mikey() -> SocketAddr {
    DEFAULT_BMSC_MIKEY_ADDR
}
fn default_fqdn() -> String {
    DEFAULT_BMSC_FQDN.to_owned()
}
fn default_ue_mikey_port() -> u16 {
    wire::mbms_key_management::DEFAULT_UE_MIKEY_PORT
}
fn default_mtk_ms() -> u64 {
    1000
}
fn default_media_ms() -> u64 {
    100
}
fn default_packets() -> usize {
    5
}
fn default_services() -> Vec<ServiceEntry> {
    vec![ServiceEntry {
        id: DEFAULT_SERVICE_ID.to_owned(),
        key_domain: default_key_domain(),
        key_group: 1,
        ssrc: None,
        media: None,
    }]
}

impl Default for BmscSection {
    fn default() -> Self {
        BmscSection {
            enabled: true,
            listen: DEFAULT_BMSC_ADDR,
            mikey_listen: DEFAULT_BMSC_MIKEY_ADDR,
            fqdn: default_fqdn(),
            bsf_zn: None,
            ue_mikey_port: default_ue_mikey_port(),
            v_bit: true,
            bearer_mikey: Vec::new(),
            bearer_media: Vec::new(),
            mtk_period_ms: default_mtk_ms(),
            media_period_ms: default_media_ms(),
            packets_per_media_period: default_packets(),
            msk_rotation_s: 0,
            services: default_services(),
        }
    }
}

impl BmscSection {
    /// The bearer's MTK addresses as configured, or the default.
    pub fn bearer_mikey_or_default(&self) -> Vec<SocketAddr> {
        if self.bearer_mikey.is_empty() {
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.ue_mikey_port)]
        } else {
            self.bearer_mikey.clone()
        }
    }

    /// The bearer's media addresses as configured, or the default.
    pub fn bearer_media_or_default(&self) -> Vec<SocketAddr> {
        if self.bearer_media.is_empty() { vec![DEFAULT_BEARER_MEDIA_ADDR] } else { self.bearer_media.clone() }
    }

    /// The schedule.
    pub fn schedule(&self) -> crate::bmsc::BmscSchedule {
        crate::bmsc::BmscSchedule {
            mtk_interval: Duration::from_millis(self.mtk_period_ms),
            media_interval: Duration::from_millis(self.media_period_ms),
            packets_per_media_interval: self.packets_per_media_period,
            msk_rotation_interval: (self.msk_rotation_s > 0)
                .then(|| Duration::from_secs(self.msk_rotation_s)),
        }
    }
}

fn default_key_domain() -> String {
    "00F110".to_owned()
}

/// `[[bmsc.service]]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// User Service ID.
    pub id: String,
    /// Key Domain ID, 3 bytes in hex (MCC ‖ MNC).
    #[serde(default = "default_key_domain")]
    pub key_domain: String,
    /// Key Group (the high half of its MSK IDs).
    pub key_group: u16,
    /// SSRC of its SRTP stream (default: `0x4D424D00 + key_group`).
    #[serde(default)]
    pub ssrc: Option<u32>,
    /// Raw G.711 µ-law file; absent: the test signal.
    #[serde(default)]
    pub media: Option<PathBuf>,
}

impl ServiceEntry {
    /// The Key Domain ID.
    pub fn key_domain_id(&self, index: usize) -> Result<KeyDomainId, ConfigError> {
        let mut b = [0u8; 3];
        hex::decode_to_slice(&self.key_domain, &mut b)
            .map_err(|e| value(format!("bmsc.service[{index}].key_domain"), format!("6 hex digits: {e}")))?;
        Ok(KeyDomainId(b))
    }
}

/// `[[subscriber]]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberEntry {
    /// IMSI.
    pub imsi: String,
    /// IMPI.
    pub impi: String,
    /// IMPUs.
    pub impu: Vec<String>,
    /// K, 32 hex digits.
    pub k: String,
    /// OPc, 32 hex digits.
    pub opc: String,
    /// AMF, 4 hex digits.
    #[serde(default = "default_amf")]
    pub amf: String,
    /// The card's SQN_MS, 12 hex digits.
    #[serde(default = "default_sqn")]
    pub sqn: String,
    /// GUSS UICC type: "GBA_U" or "GBA_ME".
    #[serde(default = "default_gba_type")]
    pub gba_type: String,
}

fn default_amf() -> String {
    "8000".to_owned()
}
fn default_sqn() -> String {
    "000000000000".to_owned()
}
fn default_gba_type() -> String {
    "GBA_U".to_owned()
}

/// `[[subscriber_range]]`: `count` subscribers derived from the indices `first_index ..`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberRange {
    /// How many.
    pub count: usize,
    /// The first index.
    #[serde(default)]
    pub first_index: usize,
    /// OPc of all of them.
    pub opc: String,
    /// AMF of all of them.
    #[serde(default = "default_amf")]
    pub amf: String,
    /// SQN_MS of all of them.
    #[serde(default = "default_sqn")]
    pub sqn: String,
    /// GUSS UICC type.
    #[serde(default = "default_gba_type")]
    pub gba_type: String,
}

/// The identity and key a subscriber of index `index` gets (the numbering of many simulated
/// UEs): IMSI `00101` followed by the index in 10 digits, IMPI `IMSI@`[`RANGE_HOME_DOMAIN`], K
/// = the index as 8 big-endian bytes followed by eight `0x4b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedIdentity {
    /// IMSI.
    pub imsi: String,
    /// IMPI.
    pub impi: String,
    /// IMPU (`sip:IMSI@domain`).
    pub impu: String,
    /// K.
    pub k: [u8; 16],
}

/// The identity of subscriber `index` of a range ([`DerivedIdentity`]).
pub fn derived_identity(index: usize) -> DerivedIdentity {
    let imsi = format!("00101{index:010}");
    let mut k = [0x4bu8; 16];
    k[..8].copy_from_slice(&(index as u64).to_be_bytes());
    DerivedIdentity {
        impi: format!("{imsi}@{RANGE_HOME_DOMAIN}"),
        impu: format!("sip:{imsi}@{RANGE_HOME_DOMAIN}"),
        imsi,
        k,
    }
}

fn hex_key<const N: usize>(key: String, text: &str) -> Result<[u8; N], ConfigError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| value(key, format!("expected {} hex digits: {e}", 2 * N)))?;
    Ok(out)
}

fn gba_type(key: String, text: &str) -> Result<GbaType, ConfigError> {
    text.parse().map_err(|_| value(key, format!("`{text}`: expected \"GBA_U\" or \"GBA_ME\"")))
}

/// Largest number of subscribers a file may describe.
pub const MAX_SUBSCRIBERS: usize = 1_000_000;

impl ServeConfig {
    /// Parses and checks a file's text.
    pub fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        let c: ServeConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    /// The configuration of a run without a file.
    pub fn builtin() -> ServeConfig {
        ServeConfig {
            state_dir: None,
            admin: AdminSection::default(),
            bsf: BsfSection::default(),
            bmsc: BmscSection::default(),
            kms: KmsSection::default(),
            scf: ScfSection::default(),
            pcscf: PcscfSection::default(),
            subscribers: Vec::new(),
            subscriber_ranges: Vec::new(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("admin.listen", self.admin.listen),
            ("bsf.listen", self.bsf.listen),
            ("bmsc.listen", self.bmsc.listen),
            ("bmsc.mikey_listen", self.bmsc.mikey_listen),
            ("kms.listen", self.kms.listen),
            ("scf.listen", self.scf.listen),
            ("pcscf.listen", self.pcscf.listen),
        ] {
            if !addr.ip().is_loopback() {
                return Err(value(key, format!("{addr}: the network listens on loopback only")));
            }
        }
        if self.bsf.key_lifetime_s == 0 {
            return Err(value("bsf.key_lifetime_s", "must be at least 1"));
        }
        if self.bmsc.ue_mikey_port == 0 {
            return Err(value("bmsc.ue_mikey_port", "must not be 0"));
        }
        if self.bmsc.mtk_period_ms == 0 || self.bmsc.media_period_ms == 0 {
            return Err(value("bmsc.mtk_period_ms / bmsc.media_period_ms", "must be at least 1"));
        }
        if self.bmsc.services.is_empty() {
            return Err(value("bmsc.service", "at least one service"));
        }
        for (i, s) in self.bmsc.services.iter().enumerate() {
            s.key_domain_id(i)?;
            wire::mbms_key_management::check_service_id(&s.id)
                .map_err(|e| value(format!("bmsc.service[{i}].id"), e.to_string()))?;
            if s.key_group == 0 {
                return Err(value(format!("bmsc.service[{i}].key_group"), "must not be 0"));
            }
        }
        let total: usize = self.subscribers.len()
            + self.subscriber_ranges.iter().map(|r| r.count).fold(0usize, usize::saturating_add);
        if total > MAX_SUBSCRIBERS {
            return Err(value(
                "subscriber_range.count",
                format!("more than {MAX_SUBSCRIBERS} subscribers in all"),
            ));
        }
        self.subscribers()?;
        Ok(())
    }

    /// The HSS's subscribers: those written out, then the ranges.
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, ConfigError> {
        let mut out = Vec::new();
        for (i, s) in self.subscribers.iter().enumerate() {
            let key = |f: &str| format!("subscriber[{i}].{f}");
            if s.impi.is_empty() || s.impi.chars().any(char::is_control) {
                return Err(value(key("impi"), "empty or with control characters"));
            }
            if s.impu.is_empty() {
                return Err(value(key("impu"), "at least one public identity"));
            }
            out.push(Subscriber::new(
                &s.imsi,
                &s.impi,
                s.impu.clone(),
                hex_key(key("k"), &s.k)?,
                hex_key(key("opc"), &s.opc)?,
                hex_key(key("amf"), &s.amf)?,
                Sqn::from_bytes(&hex_key(key("sqn"), &s.sqn)?),
                gba_type(key("gba_type"), &s.gba_type)?,
            ));
        }
        for (i, r) in self.subscriber_ranges.iter().enumerate() {
            let key = |f: &str| format!("subscriber_range[{i}].{f}");
            let opc = hex_key::<16>(key("opc"), &r.opc)?;
            let amf = hex_key::<2>(key("amf"), &r.amf)?;
            let sqn = Sqn::from_bytes(&hex_key(key("sqn"), &r.sqn)?);
            let t = gba_type(key("gba_type"), &r.gba_type)?;
            if r.count == 0 {
                return Err(value(key("count"), "must be at least 1"));
            }
            for index in r.first_index..r.first_index.saturating_add(r.count) {
                let d = derived_identity(index);
                out.push(Subscriber::new(&d.imsi, &d.impi, vec![d.impu], d.k, opc, amf, sqn, t));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in &out {
            if !seen.insert(s.impi().to_owned()) {
                return Err(value("subscriber", format!("IMPI {} appears twice", s.impi())));
            }
        }
        Ok(out)
    }
}

/// The documented example `--print-config` prints; `builtin` is the built-in card's subscriber
/// entry, written out in it.
pub fn example(builtin: &SubscriberEntry) -> String {
    format!(
        r#"# keysim serve configuration (TOML). Every key may be left out; the value shown is then used.
# The keys are TEST keys: never put a real subscriber's K or OPc here.

# Where the state database lives (overridden by --state-dir).
# state_dir = "./keysim-state"

[admin]
# The admin API `keysim ctl` talks to (loopback only).
listen = "{admin}"

[bsf]
# Started when no --bsf/--bmsc option is given.
enabled = true
# Ub (HTTP Digest AKA, TS 33.220 / TS 24.109) and Zn on this address.
listen = "{bsf}"
# The domain of the B-TIDs (B-TID = base64(RAND)@domain) and the Digest realm.
domain = "{domain}"
# Lifetime of a bootstrapped Ks, in seconds.
key_lifetime_s = {lifetime}

[bmsc]
enabled = true
# HTTP key management (register, deregister, msk-request; TS 33.246 §6.3.2).
listen = "{bmsc}"
# MSK pushes leave from this UDP socket; verification messages come back to it.
mikey_listen = "{bmsc_mikey}"
# FQDN: NAF_Id, the Digest realms 3GPP-bootstrapping[-uicc]@FQDN, IDi of MSK messages.
fqdn = "{fqdn}"
# The BSF's Zn address; default: [bsf] listen.
# bsf_zn = "{bsf}"
# MSK messages go to (the UE's address, ue_mikey_port): MIKEY's port, RFC 3830 §9.
ue_mikey_port = {ue_port}
# Ask the UEs for MIKEY verification messages (V bit).
v_bit = true
# The bearer: MTK messages and SRTP go to these addresses (loopback unicast, or IPv4 239.x
# multicast sent on loopback). Default: 127.0.0.1:ue_mikey_port and {media}.
bearer_mikey = ["127.0.0.1:{ue_port}"]
bearer_media = ["{media}"]
# The schedule: a new MTK every mtk_period_ms; packets_per_media_period SRTP packets every
# media_period_ms; a new MSK pushed to every registered UE every msk_rotation_s (0: only on
# `keysim ctl rotate-msk`).
mtk_period_ms = 1000
media_period_ms = 100
packets_per_media_period = 5
msk_rotation_s = 0

# One table per User Service.
[[bmsc.service]]
# User Service ID (TS 26.346 §11 registration).
id = "{service}"
# Key Domain ID (MCC ‖ MNC, 3 bytes) and Key Group (the high half of the MSK IDs).
key_domain = "00F110"
key_group = 1
# SSRC of its SRTP stream; default 0x4D424D00 + key_group.
# ssrc = 1296190721
# Raw G.711 µ-law (160-octet frames); absent: the generated test signal.
# media = "speech.ulaw"

[kms]
# The KMS of MIKEY-TICKET (TS 33.328 Annex D), keyed by GBA over Zn; started only when enabled
# (or with --kms).
enabled = false
listen = "{kms}"
# Its FQDN: the NAF FQDN of its NAF_Id and its identity in tickets.
fqdn = "{kms_fqdn}"
# The BSF's Zn address; default: [bsf] listen.
# bsf_zn = "{bsf}"
# Whether tickets may be reusable, and their longest validity in seconds (0: the KMS's default).
allow_reuse = true
max_ticket_lifetime_s = 0

[scf]
# SIP-based MBMS security (TS 26.237 §10.4.2): the SCF acts as the NAF, fetches the keys over Zn
# and registers the UE at the BM-SC; every subscriber's IMPUs may use every service. Started only
# when enabled (or with --scf).
enabled = false
# Its SIP socket (UDP).
listen = "{scf}"
# Its SIP domain (Request-URI sip:scf@domain) and its FQDN towards the BM-SC (the NAF FQDN).
domain = "{scf_domain}"
naf_fqdn = "{scf_fqdn}"

[pcscf]
# The UEs' first SIP hop, asserting their identity to the SCF; started with the SCF when enabled
# (or with --pcscf).
enabled = false
listen = "{pcscf}"

# The HSS: one table per subscriber. This one is the built-in emulated card.
[[subscriber]]
imsi = "{imsi}"
impi = "{impi}"
impu = [{impu}]
k = "{k}"
opc = "{opc}"
amf = "{amf}"
# The card's SQN_MS: the first challenge uses the next sequence number.
sqn = "{sqn}"
# GBA user security setting: "GBA_U" (GBA_U-capable UICC) or "GBA_ME".
gba_type = "{gba_type}"

# Many subscribers at once: index i (first_index ..) gets IMSI 00101 + i in 10 digits,
# IMPI IMSI@{range_domain}, IMPU sip:IMSI@{range_domain}, and K = i as 8 big-endian
# bytes followed by eight 0x4b; OPc, AMF, SQN and GBA type are the range's.
[[subscriber_range]]
count = 1000
first_index = 1
opc = "{opc}"
amf = "8000"
sqn = "000000000000"
gba_type = "GBA_U"
"#,
        admin = DEFAULT_ADMIN_ADDR,
        bsf = DEFAULT_BSF_ADDR,
        domain = crate::bsf::DEFAULT_BSF_DOMAIN,
        lifetime = crate::bsf::DEFAULT_KEY_LIFETIME.as_secs(),
        bmsc = DEFAULT_BMSC_ADDR,
        bmsc_mikey = DEFAULT_BMSC_MIKEY_ADDR,
        fqdn = DEFAULT_BMSC_FQDN,
        ue_port = wire::mbms_key_management::DEFAULT_UE_MIKEY_PORT,
        media = DEFAULT_BEARER_MEDIA_ADDR,
        service = DEFAULT_SERVICE_ID,
        imsi = builtin.imsi,
        impi = builtin.impi,
        impu = builtin.impu.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "),
        k = builtin.k,
        opc = builtin.opc,
        amf = builtin.amf,
        sqn = builtin.sqn,
        gba_type = builtin.gba_type,
        range_domain = RANGE_HOME_DOMAIN,
        kms = DEFAULT_KMS_ADDR,
        kms_fqdn = DEFAULT_KMS_FQDN,
        scf = DEFAULT_SCF_ADDR,
        scf_domain = DEFAULT_SCF_DOMAIN,
        scf_fqdn = DEFAULT_SCF_FQDN,
        pcscf = DEFAULT_PCSCF_ADDR,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> SubscriberEntry {
        SubscriberEntry {
            imsi: "001010123456789".into(),
            impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org".into(),
            impu: vec!["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org".into()],
            k: "465b5ce8b199b49faa5f0a2ee238a6bc".into(),
            opc: "cd63cb71954a9f4e48a5994e37a02baf".into(),
            amf: "8000".into(),
            sqn: "000000000020".into(),
            gba_type: "GBA_U".into(),
        }
    }

    #[test]
    fn the_example_parses_as_it_stands() {
        let c = ServeConfig::parse(&example(&builtin())).unwrap();
        let subs = c.subscribers().unwrap();
        assert_eq!(subs.len(), 1001);
        assert_eq!(subs[1].impi(), "001010000000001@ims.mnc001.mcc001.3gppnetwork.org");
        assert_eq!(c.bmsc.services[0].id, DEFAULT_SERVICE_ID);
    }

    #[test]
    fn errors_name_the_key() {
        let e = ServeConfig::parse("[bsf]\nlisten = \"127.0.0.1:1\"\ncolour = 3\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let mut text = example(&builtin());
        text = text.replace("k = \"465b5ce8b199b49faa5f0a2ee238a6bc\"", "k = \"46\"");
        let e = ServeConfig::parse(&text).unwrap_err();
        assert!(e.to_string().contains("subscriber[0].k"), "{e}");
        let e = ServeConfig::parse("[bmsc]\nlisten = \"192.0.2.1:80\"\n").unwrap_err();
        assert!(e.to_string().contains("bmsc.listen"), "{e}");
    }

    #[test]
    fn derived_identities_follow_the_index() {
        let d = derived_identity(7);
        assert_eq!(d.imsi, "001010000000007");
        assert_eq!(d.k[..8], 7u64.to_be_bytes());
        assert_eq!(d.k[8..], [0x4b; 8]);
    }
}
