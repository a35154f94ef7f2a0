//! The subscriber profile of an emulated card (TS 31.102 §4.2 and TS 31.103 §4.2 EF contents,
//! TS 33.102 / TS 35.206 subscriber keys): loaded from TOML with every field checked, and turned
//! into the applet's [`Personalization`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uicc_applet::Personalization;
use zeroize::Zeroize;

/// The built-in profile (TS 35.208 test set 1 keys, test-network IMSI), with comments on every field.
pub const DEFAULT_PROFILE_TOML: &str = include_str!("../default.toml");
/// The second built-in profile: the called party of an IMS session (`sim-reader/callee.toml`).
pub const CALLEE_PROFILE_TOML: &str = include_str!("../callee.toml");

/// PUK1 of an emulated card whose profile gives none (TS 102 221 §9.5.1: 8 digits).
pub const DEFAULT_PUK1: &str = "00000000";

/// Longest identity (IMPI, IMPU, domain) accepted before the card's own EF limits are checked.
pub const IDENTITY_MAX: usize = 255;

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is no valid TOML or JSON profile (syntax, missing or unknown key, wrong type).
    #[error("profile{}: {message}", origin(path))]
    Syntax {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's message (it names the key and line).
        message: String,
    },
    /// A field holds a value the card cannot take.
    #[error("profile{}: field `{field}`: {reason}", origin(path))]
    Field {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The field's name.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

fn origin(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
}

/// A profile as written in TOML or JSON: every value as text. [`CardProfile::try_from`] checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFields {
    /// ICCID, 19 or 20 digits.
    pub iccid: String,
    /// IMSI, 6 to 15 digits.
    pub imsi: String,
    /// K, 32 hex digits.
    pub k: String,
    /// OPc, 32 hex digits.
    pub opc: String,
    /// SQN, 12 hex digits.
    pub sqn: String,
    /// AMF, 4 hex digits.
    pub amf: String,
    /// IMPI.
    pub impi: String,
    /// IMPUs (SIP or tel URIs), at least one.
    pub impu: Vec<String>,
    /// Home network domain name.
    pub home_domain: String,
    /// PIN1, 4 to 8 digits.
    pub pin1: String,
    /// ADM1, 16 hex digits or 8 digits.
    pub adm1: String,
    /// PUK1 (the UNBLOCK PIN value of PIN1), 8 digits; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk1: Option<String>,
}

/// A checked subscriber profile. Keys are wiped from memory when it is dropped; `Debug` does not
/// show them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ProfileFields", into = "ProfileFields")]
pub struct CardProfile {
    iccid: String,
    imsi: String,
    k: [u8; 16],
    opc: [u8; 16],
    sqn: [u8; 6],
    amf: [u8; 2],
    impi: String,
    impu: Vec<String>,
    home_domain: String,
    pin1: String,
    adm1: [u8; 8],
    puk1: Option<String>,
}

impl Drop for CardProfile {
    fn drop(&mut self) {
        self.k.zeroize();
        self.opc.zeroize();
        self.adm1.zeroize();
    }
}

impl core::fmt::Debug for CardProfile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardProfile")
            .field("iccid", &self.iccid)
            .field("imsi", &self.imsi)
            .field("k", &"<secret>")
            .field("opc", &"<secret>")
            .field("sqn", &hex::encode(self.sqn))
            .field("amf", &hex::encode(self.amf))
            .field("impi", &self.impi)
            .field("impu", &self.impu)
            .field("home_domain", &self.home_domain)
            .field("pin1", &"<secret>")
            .field("adm1", &"<secret>")
            .field("puk1", &"<secret>")
            .finish()
    }
}

impl Default for CardProfile {
    /// The built-in profile, [`DEFAULT_PROFILE_TOML`].
    fn default() -> Self {
        #[allow(clippy::expect_used)] // the embedded file is checked by the unit tests
        CardProfile::from_toml_str(DEFAULT_PROFILE_TOML).expect("the built-in profile is valid")
    }
}

impl CardProfile {
    /// The second built-in profile, [`CALLEE_PROFILE_TOML`]: another subscriber (IMSI, K, OPc,
    /// ICCID, IMPI and IMPUs all differ from the default one).
    pub fn callee() -> Self {
        #[allow(clippy::expect_used)] // the embedded file is checked by the unit tests
        CardProfile::from_toml_str(CALLEE_PROFILE_TOML).expect("the built-in callee profile is valid")
    }

    /// This profile with another subscriber's identity and key (many UEs against one network, each
    /// card numbered as the network numbers its subscribers: `network::config::derived_identity`):
    /// IMSI, IMPI, IMPUs and K replaced, every other field (ICCID, OPc, SQN, PINs) the base's. The
    /// result is checked as a loaded profile is.
    pub fn with_identity(
        &self,
        imsi: &str,
        impi: &str,
        impus: &[String],
        k: [u8; 16],
    ) -> Result<CardProfile, ProfileError> {
        let mut f = self.to_fields();
        f.imsi = imsi.to_owned();
        f.impi = impi.to_owned();
        f.impu = impus.to_vec();
        f.k = hex::encode(k);
        CardProfile::try_from(f)
    }

    /// Load and check a TOML profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Read { path: path.into(), source })?;
        Self::from_toml_str(&text).map_err(|e| e.in_file(path))
    }

    /// Parse and check a TOML profile.
    pub fn from_toml_str(text: &str) -> Result<Self, ProfileError> {
        let fields: ProfileFields = toml::from_str(text)
            .map_err(|e| ProfileError::Syntax { path: None, message: e.to_string().trim_end().to_owned() })?;
        Self::try_from(fields)
    }

    /// Parse and check a JSON profile (the form [`CardProfile::to_json`] writes).
    pub fn from_json_str(text: &str) -> Result<Self, ProfileError> {
        let fields: ProfileFields = serde_json::from_str(text)
            .map_err(|e| ProfileError::Syntax { path: None, message: e.to_string() })?;
        Self::try_from(fields)
    }

    /// The profile as text fields (hex keys), e.g. to change one field and check it again.
    pub fn to_fields(&self) -> ProfileFields {
        ProfileFields {
            iccid: self.iccid.clone(),
            imsi: self.imsi.clone(),
            k: hex::encode(self.k),
            opc: hex::encode(self.opc),
            sqn: hex::encode(self.sqn),
            amf: hex::encode(self.amf),
            impi: self.impi.clone(),
            impu: self.impu.clone(),
            home_domain: self.home_domain.clone(),
            pin1: self.pin1.clone(),
            adm1: hex::encode(self.adm1),
            puk1: self.puk1.clone(),
        }
    }

    /// The profile as a JSON object with exactly the keys `iccid, imsi, k, opc, sqn, amf, impi,
    /// impu` (a list), `home_domain, pin1, adm1`, and `puk1` when the profile has one; keys, SQN, AMF
    /// and ADM1 as lowercase hex.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings cannot fail.
        serde_json::to_string_pretty(&self.to_fields()).unwrap_or_default()
    }

    /// The profile as TOML (without the comments of the built-in file).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_fields()).unwrap_or_default()
    }

    /// ICCID digits.
    pub fn iccid(&self) -> &str {
        &self.iccid
    }
    /// IMSI digits.
    pub fn imsi(&self) -> &str {
        &self.imsi
    }
    /// K.
    pub fn k(&self) -> &[u8; 16] {
        &self.k
    }
    /// OPc.
    pub fn opc(&self) -> &[u8; 16] {
        &self.opc
    }
    /// Initial SQN.
    pub fn sqn(&self) -> &[u8; 6] {
        &self.sqn
    }
    /// AMF.
    pub fn amf(&self) -> &[u8; 2] {
        &self.amf
    }
    /// IMPI.
    pub fn impi(&self) -> &str {
        &self.impi
    }
    /// IMPUs.
    pub fn impu(&self) -> &[String] {
        &self.impu
    }
    /// Home network domain name.
    pub fn home_domain(&self) -> &str {
        &self.home_domain
    }
    /// PIN1 digits.
    pub fn pin1(&self) -> &str {
        &self.pin1
    }
    /// ADM1 verification value.
    pub fn adm1(&self) -> &[u8; 8] {
        &self.adm1
    }
    /// PUK1 digits, when the profile gives them.
    pub fn puk1(&self) -> Option<&str> {
        self.puk1.as_deref()
    }

    /// The IMPUs as string slices, to hand to [`CardProfile::personalization`].
    pub fn impu_refs(&self) -> Vec<&str> {
        self.impu.iter().map(String::as_str).collect()
    }

    /// The card's personalization; `impu` is [`CardProfile::impu_refs`]:
    /// `let impu = p.impu_refs(); let pers = p.personalization(&impu);`.
    pub fn personalization<'a>(&'a self, impu: &'a [&'a str]) -> Personalization<'a> {
        Personalization {
            iccid: &self.iccid,
            imsi: &self.imsi,
            k: self.k,
            opc: self.opc,
            sqn: self.sqn,
            amf: self.amf,
            impi: &self.impi,
            impu,
            home_domain: &self.home_domain,
            pin1: &self.pin1,
            adm1: self.adm1,
            puk1: self.puk1.as_deref().unwrap_or(DEFAULT_PUK1),
        }
    }
}

impl ProfileError {
    fn in_file(self, file: &Path) -> Self {
        match self {
            ProfileError::Syntax { message, .. } => ProfileError::Syntax { path: Some(file.into()), message },
            ProfileError::Field { field, reason, .. } => {
                ProfileError::Field { path: Some(file.into()), field, reason }
            }
            other => other,
        }
    }
}

impl TryFrom<ProfileFields> for CardProfile {
    type Error = ProfileError;

    fn try_from(f: ProfileFields) -> Result<Self, ProfileError> {
        let field = |field: &'static str, reason: String| ProfileError::Field { path: None, field, reason };
        let iccid = digits("iccid", &f.iccid, 19, 20)?;
        if !luhn_valid(&iccid) {
            tracing::warn!(iccid = %iccid, "ICCID fails its Luhn check digit (ITU-T E.118)");
        }
        let imsi = digits("imsi", &f.imsi, 6, 15)?;
        let pin1 = digits("pin1", &f.pin1, 4, 8)?;
        let puk1 = f.puk1.as_deref().map(|p| digits("puk1", p, 8, 8)).transpose()?;
        let adm1 = match f.adm1.len() {
            8 if f.adm1.bytes().all(|b| b.is_ascii_digit()) => {
                let mut v = [0u8; 8];
                v.copy_from_slice(f.adm1.as_bytes());
                v
            }
            _ => hex_array("adm1", &f.adm1).map_err(|_| {
                field("adm1", format!("expected 16 hex digits or 8 decimal digits, found '{}'", f.adm1))
            })?,
        };
        let impi = identity("impi", &f.impi)?;
        if f.impu.is_empty() {
            return Err(field("impu", "expected at least one public identity".into()));
        }
        let mut impu = Vec::with_capacity(f.impu.len());
        for (i, uri) in f.impu.iter().enumerate() {
            let uri = identity("impu", uri).map_err(|e| match e {
                ProfileError::Field { reason, .. } => field("impu", format!("entry {i}: {reason}")),
                other => other,
            })?;
            if !["sip:", "sips:", "tel:"].iter().any(|s| uri.to_ascii_lowercase().starts_with(s)) {
                return Err(field(
                    "impu",
                    format!("entry {i} '{uri}' is no SIP or tel URI (RFC 3261, RFC 3966)"),
                ));
            }
            impu.push(uri);
        }
        let home_domain = identity("home_domain", &f.home_domain)?;
        if home_domain.contains(char::is_whitespace) {
            return Err(field("home_domain", format!("'{home_domain}' is no domain name")));
        }
        let profile = CardProfile {
            iccid,
            imsi,
            k: hex_array("k", &f.k)?,
            opc: hex_array("opc", &f.opc)?,
            sqn: hex_array("sqn", &f.sqn)?,
            amf: hex_array("amf", &f.amf)?,
            impi,
            impu,
            home_domain,
            pin1,
            adm1,
            puk1,
        };
        // The card's own limits (EF sizes, record counts) have the last word.
        let impu = profile.impu_refs();
        if let Err(e) = profile.personalization(&impu).validate() {
            use uicc_applet::ProfileError as Card;
            let name = match e {
                Card::Iccid => "iccid",
                Card::Imsi => "imsi",
                Card::Pin1 => "pin1",
                Card::Puk1 => "puk1",
                Card::Impi => "impi",
                Card::Impu => "impu",
                Card::HomeDomain => "home_domain",
            };
            return Err(field(name, format!("the card cannot store it: {e}")));
        }
        drop(impu);
        Ok(profile)
    }
}

impl From<CardProfile> for ProfileFields {
    fn from(p: CardProfile) -> Self {
        p.to_fields()
    }
}

fn digits(field: &'static str, value: &str, min: usize, max: usize) -> Result<String, ProfileError> {
    let count = match max - min {
        0 => format!("{min}"),
        1 => format!("{min} or {max}"),
        _ => format!("{min} to {max}"),
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) || value.len() < min || value.len() > max {
        return Err(ProfileError::Field {
            path: None,
            field,
            reason: format!("expected {count} decimal digits, found '{value}' ({} characters)", value.len()),
        });
    }
    Ok(value.to_owned())
}

fn hex_array<const N: usize>(field: &'static str, value: &str) -> Result<[u8; N], ProfileError> {
    let err = |reason: String| ProfileError::Field { path: None, field, reason };
    if let Some(c) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(err(format!("'{c}' is not a hex digit (expected {} hex digits)", 2 * N)));
    }
    if value.len() != 2 * N {
        return Err(err(format!("expected {} hex digits ({N} bytes), found {}", 2 * N, value.len())));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(value, &mut out).map_err(|e| err(e.to_string()))?;
    Ok(out)
}

fn identity(field: &'static str, value: &str) -> Result<String, ProfileError> {
    let err = |reason: String| ProfileError::Field { path: None, field, reason };
    if value.is_empty() {
        return Err(err("must not be empty".into()));
    }
    if value.len() > IDENTITY_MAX {
        return Err(err(format!("{} bytes long, the card stores at most {IDENTITY_MAX}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(err("contains control characters".into()));
    }
    Ok(value.to_owned())
}

/// Whether a digit string ends in its Luhn check digit (ISO/IEC 7812-1 Annex B, used by ITU-T
/// E.118 for ICCIDs).
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {

    #[test]
    fn with_identity_replaces_identity_and_key_only() {
        let base = CardProfile::default();
        let impus = vec!["sip:001010000000007@ims.mnc001.mcc001.3gppnetwork.org".to_owned()];
        let p = base
            .with_identity(
                "001010000000007",
                "001010000000007@ims.mnc001.mcc001.3gppnetwork.org",
                &impus,
                [7; 16],
            )
            .unwrap();
        assert_eq!(p.imsi(), "001010000000007");
        assert_eq!(p.impi(), "001010000000007@ims.mnc001.mcc001.3gppnetwork.org");
        assert_eq!(p.impu(), &impus[..]);
        assert_eq!(p.k(), &[7; 16]);
        assert_eq!(p.iccid(), base.iccid());
        assert_eq!(p.opc(), base.opc());
        assert!(base.with_identity("00101x", "a@b", &impus, [7; 16]).is_err());
    }

    use super::*;

    #[test]
    fn callee_profile_is_another_subscriber() {
        let a = CardProfile::default();
        let b = CardProfile::callee();
        assert_ne!(a.iccid(), b.iccid());
        assert_ne!(a.imsi(), b.imsi());
        assert_ne!(a.impi(), b.impi());
        assert!(b.impu().iter().all(|u| !a.impu().contains(u)));
        assert!(b.impu()[0].starts_with("sip:"));
    }

    #[test]
    fn builtin_profile_is_valid_and_documented() {
        let p = CardProfile::default();
        assert_eq!(p.imsi(), "001010123456789");
        assert_eq!(p.impu().len(), 2);
        assert_eq!(p.adm1(), b"88888888");
        // Every key has a comment above it.
        for key in
            ["iccid", "imsi", "k", "opc", "sqn", "amf", "impi", "impu", "home_domain", "pin1", "adm1", "puk1"]
        {
            let at = DEFAULT_PROFILE_TOML.find(&format!("\n{key} = ")).unwrap();
            let before = &DEFAULT_PROFILE_TOML[..at];
            assert!(before.lines().last().unwrap().starts_with('#'), "{key} has no comment");
        }
    }

    #[test]
    fn builtin_keys_are_ts_35_208_test_set_1() {
        // TS 35.208 §4.3.1 test set 1: OP; the milenage crate derives OPc from K and OP.
        let op: [u8; 16] = hex::decode("cdc202d5123e20f62b6d676ac72cb318").unwrap().try_into().unwrap();
        let p = CardProfile::default();
        let m = milenage::Milenage::new_with_op(*p.k(), op);
        assert_eq!(m.opc(), p.opc());
    }

    #[test]
    fn builtin_iccid_passes_luhn() {
        assert!(luhn_valid(CardProfile::default().iccid()));
        // ISO/IEC 7812 worked example: 7992739871 + check digit 3.
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }

    #[test]
    fn adm1_as_ascii_digits_or_hex() {
        let mut f = CardProfile::default().to_fields();
        f.adm1 = "12345678".into();
        assert_eq!(CardProfile::try_from(f.clone()).unwrap().adm1(), b"12345678");
        f.adm1 = "0102030405060708".into();
        assert_eq!(CardProfile::try_from(f.clone()).unwrap().adm1(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        f.adm1 = "1234567".into();
        let e = CardProfile::try_from(f).err().unwrap().to_string();
        assert!(e.contains("`adm1`") && e.contains("16 hex digits or 8 decimal digits"), "{e}");
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let json: serde_json::Value = serde_json::from_str(&CardProfile::default().to_json()).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        let mut expected = [
            "iccid",
            "imsi",
            "k",
            "opc",
            "sqn",
            "amf",
            "impi",
            "impu",
            "home_domain",
            "pin1",
            "adm1",
            "puk1",
        ];
        expected.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, expected);
        assert!(json["impu"].is_array());
        assert_eq!(json["k"], "465b5ce8b199b49faa5f0a2ee238a6bc");
        assert_eq!(json["adm1"], "3838383838383838");
    }

    #[test]
    fn json_and_toml_round_trip() {
        let p = CardProfile::default();
        assert_eq!(CardProfile::from_json_str(&p.to_json()).unwrap().to_fields(), p.to_fields());
        assert_eq!(CardProfile::from_toml_str(&p.to_toml()).unwrap().to_fields(), p.to_fields());
        // serde through the checked type too.
        let q: CardProfile = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(q.to_fields(), p.to_fields());
        let bad = p.to_json().replace("\"000000000020\"", "\"0020\"");
        assert!(serde_json::from_str::<CardProfile>(&bad).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", CardProfile::default());
        assert!(!s.contains("465b5ce8") && !s.contains("cd63cb71") && !s.contains("\"1234\""), "{s}");
    }

    #[test]
    fn personalization_carries_every_field() {
        let p = CardProfile::default();
        let impu = p.impu_refs();
        let pers = p.personalization(&impu);
        assert_eq!(pers.iccid, p.iccid());
        assert_eq!(pers.k, *p.k());
        assert_eq!(pers.sqn, [0, 0, 0, 0, 0, 0x20]);
        assert_eq!(pers.amf, [0x80, 0x00]);
        assert_eq!(pers.impu, ["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "tel:+15550100"]);
        assert_eq!(pers.pin1, "1234");
    }

    proptest::proptest! {
        #[test]
        fn checking_any_fields_never_panics(
            iccid in ".{0,24}", imsi in ".{0,18}", k in "[0-9a-fA-Fx]{0,34}", adm1 in ".{0,18}",
            pin1 in ".{0,10}", impu in proptest::collection::vec(".{0,12}", 0..3)) {
            let mut f = CardProfile::default().to_fields();
            f.iccid = iccid; f.imsi = imsi; f.k = k; f.adm1 = adm1; f.pin1 = pin1; f.impu = impu;
            let _ = CardProfile::try_from(f);
        }
    }
}
