//! Zn between a NAF and the BSF (TS 33.220 §4.5.3, TS 29.109 §4.3) on our own HTTP + XML binding.
//!
//! TS 29.109 carries Zn over Diameter or SOAP. Both ends here are ours, so Zn is a plain HTTP POST
//! of a [`ZnRequest`] XML document to the BSF (path [`ZN_PATH`], content type
//! [`ZN_CONTENT_TYPE`], namespace [`ZN_NAMESPACE`]), answered by a [`ZnAnswer`] (200) or a
//! [`ZnErrorBody`] (4xx). The answer carries the fields of the TS 29.109 Zn answer: ME key material
//! (Ks_NAF or Ks_ext_NAF), UICC key material (Ks_int_NAF), key expiry time, bootstrap creation
//! time, GBA type, IMPI and the IMPUs of the GUSS:
//!
//! ```text
//! POST /zn   <ZnRequest xmlns="uri:keysim-zn"><btid>…</btid><nafId>base64(NAF_Id)</nafId>
//!                       <gbaUAware>true</gbaUAware></ZnRequest>
//! 200 OK     <ZnAnswer xmlns="uri:keysim-zn"><btid>…</btid><gbaType>GBA_U</gbaType>
//!                      <meKeyMaterial>base64(Ks_ext_NAF)</meKeyMaterial>
//!                      <uiccKeyMaterial>base64(Ks_int_NAF)</uiccKeyMaterial>
//!                      <keyExpiryTime>2030-01-01T00:00:00Z</keyExpiryTime>
//!                      <bootstrapInfoCreationTime>…</bootstrapInfoCreationTime>
//!                      <impi>…</impi><guss><impu>sip:…</impu><impu>tel:…</impu></guss></ZnAnswer>
//! 404        <ZnError xmlns="uri:keysim-zn"><code>unknown-btid</code><reason>…</reason></ZnError>
//! ```
//!
//! Every parser here is total: any input gives a value or an [`Error`] with a reason, never a
//! panic.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gba::keys::{KsExtNaf, KsIntNaf, KsNaf};
use gba::naf_id::NafId;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ub::parse_utc_time;
use crate::xml::{from_xml, to_xml};

/// Path of our Zn endpoint on the BSF (own transport choice, see the module documentation).
pub const ZN_PATH: &str = "/zn";
/// Content type of Zn requests and answers.
pub const ZN_CONTENT_TYPE: &str = "application/xml";
/// XML namespace of the Zn documents (ours; TS 29.109 defines only Diameter and SOAP bindings).
pub const ZN_NAMESPACE: &str = "uri:keysim-zn";

// ------------------------------------------------------------------------------------------------
// Zn (own HTTP + XML binding of the TS 29.109 Zn request and answer)

/// The GBA run that produced Ks (TS 29.109 GBA-Type: GBA_ME, GBA_U).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GbaType {
    /// GBA_ME: Ks and Ks_NAF in the ME (TS 33.220 §4).
    GbaMe,
    /// GBA_U: Ks on the UICC, Ks_ext_NAF to the ME, Ks_int_NAF kept (TS 33.220 §5).
    GbaU,
}

impl GbaType {
    /// `GBA_ME` or `GBA_U`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GbaType::GbaMe => "GBA_ME",
            GbaType::GbaU => "GBA_U",
        }
    }
}

impl fmt::Display for GbaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GbaType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "GBA_ME" => Ok(GbaType::GbaMe),
            "GBA_U" => Ok(GbaType::GbaU),
            other => Err(Error::XmlBody(format!("GBA type `{other}` is neither GBA_ME nor GBA_U"))),
        }
    }
}

/// A NAF's Zn request: B-TID and NAF_Id (TS 33.220 §4.5.3, TS 29.109 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZnRequest {
    /// The B-TID the UE presented.
    pub btid: String,
    /// NAF_Id = FQDN ‖ Ua security protocol id.
    pub naf_id: NafId,
    /// The NAF can use Ks_int_NAF (TS 29.109 GBA_U-Awareness-Indicator). A GBA_U answer to an
    /// unaware NAF carries Ks_ext_NAF only.
    pub gba_u_aware: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "ZnRequest")]
struct ZnRequestXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    btid: String,
    #[serde(rename = "nafId")]
    naf_id: String,
    #[serde(rename = "gbaUAware", default)]
    gba_u_aware: Option<bool>,
}

impl ZnRequest {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_xml(&ZnRequestXml {
            xmlns: Some(ZN_NAMESPACE.to_owned()),
            btid: self.btid.clone(),
            naf_id: BASE64.encode(self.naf_id.as_bytes()),
            gba_u_aware: Some(self.gba_u_aware),
        })
    }

    /// Parses the XML document. `gbaUAware` defaults to false (TS 29.109: absent = not aware).
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: ZnRequestXml = from_xml(xml, "ZnRequest", ZN_NAMESPACE)?;
        let raw =
            BASE64.decode(x.naf_id.trim()).map_err(|e| Error::XmlBody(format!("<nafId> not base64: {e}")))?;
        let naf_id = NafId::from_bytes(&raw).map_err(|e| Error::XmlBody(format!("<nafId>: {e}")))?;
        if x.btid.is_empty() {
            return Err(Error::XmlBody("empty <btid>".into()));
        }
        Ok(ZnRequest { btid: x.btid, naf_id, gba_u_aware: x.gba_u_aware.unwrap_or(false) })
    }
}

/// The NAF keys of a Zn answer (TS 29.109 ME-Key-Material / UICC-Key-Material).
#[derive(Debug, Clone)]
pub enum NafKeyMaterial {
    /// GBA_ME: Ks_NAF.
    GbaMe {
        /// Ks_NAF.
        ks_naf: KsNaf,
    },
    /// GBA_U: Ks_ext_NAF, and Ks_int_NAF for a GBA_U-aware NAF.
    GbaU {
        /// Ks_ext_NAF (ME key material).
        ks_ext_naf: KsExtNaf,
        /// Ks_int_NAF (UICC key material), only for a GBA_U-aware NAF.
        ks_int_naf: Option<KsIntNaf>,
    },
}

impl NafKeyMaterial {
    /// The GBA type these keys belong to.
    pub fn gba_type(&self) -> GbaType {
        match self {
            NafKeyMaterial::GbaMe { .. } => GbaType::GbaMe,
            NafKeyMaterial::GbaU { .. } => GbaType::GbaU,
        }
    }
}

/// The BSF's Zn answer (TS 33.220 §4.5.3, TS 29.109 §4.3). Keys print as `<redacted>`.
#[derive(Debug, Clone)]
pub struct ZnAnswer {
    /// The B-TID asked for.
    pub btid: String,
    /// The NAF keys of the GBA type.
    pub keys: NafKeyMaterial,
    /// Expiry of the keys: the Ks lifetime, UTC (TS 29.109 Key-ExpiryTime).
    pub key_expiry: String,
    /// When the bootstrapping ran, UTC (TS 29.109 BootstrapInfoCreationTime).
    pub bootstrap_time: String,
    /// IMPI of the subscriber.
    pub impi: String,
    /// The IMPUs of the subscriber's GUSS (TS 29.109 GBA-UserSecSettings).
    pub impus: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct GussXml {
    #[serde(rename = "impu", default)]
    impu: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "ZnAnswer")]
struct ZnAnswerXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    btid: String,
    #[serde(rename = "gbaType")]
    gba_type: String,
    #[serde(rename = "meKeyMaterial")]
    me_key_material: String,
    #[serde(rename = "uiccKeyMaterial", default, skip_serializing_if = "Option::is_none")]
    uicc_key_material: Option<String>,
    #[serde(rename = "keyExpiryTime")]
    key_expiry_time: String,
    #[serde(rename = "bootstrapInfoCreationTime")]
    bootstrap_info_creation_time: String,
    impi: String,
    guss: GussXml,
}

fn decode_key(element: &str, text: &str) -> Result<[u8; 32], Error> {
    let raw =
        BASE64.decode(text.trim()).map_err(|e| Error::XmlBody(format!("<{element}> not base64: {e}")))?;
    <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| Error::XmlBody(format!("<{element}> holds {} octets, a NAF key has 32", raw.len())))
}

impl ZnAnswer {
    /// The GBA type.
    pub fn gba_type(&self) -> GbaType {
        self.keys.gba_type()
    }

    /// The XML document (it carries key material: send it over Zn only).
    pub fn to_xml(&self) -> String {
        let (me, uicc) = match &self.keys {
            NafKeyMaterial::GbaMe { ks_naf } => (BASE64.encode(ks_naf.expose()), None),
            NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf } => {
                (BASE64.encode(ks_ext_naf.expose()), ks_int_naf.as_ref().map(|k| BASE64.encode(k.expose())))
            }
        };
        to_xml(&ZnAnswerXml {
            xmlns: Some(ZN_NAMESPACE.to_owned()),
            btid: self.btid.clone(),
            gba_type: self.gba_type().as_str().to_owned(),
            me_key_material: me,
            uicc_key_material: uicc,
            key_expiry_time: self.key_expiry.clone(),
            bootstrap_info_creation_time: self.bootstrap_time.clone(),
            impi: self.impi.clone(),
            guss: GussXml { impu: self.impus.clone() },
        })
    }

    /// Parses the XML document: keys of 32 octets, no UICC key material with GBA_ME, valid times.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: ZnAnswerXml = from_xml(xml, "ZnAnswer", ZN_NAMESPACE)?;
        let gba_type: GbaType = x.gba_type.trim().parse()?;
        let me = decode_key("meKeyMaterial", &x.me_key_material)?;
        let uicc = x.uicc_key_material.as_deref().map(|t| decode_key("uiccKeyMaterial", t)).transpose()?;
        let keys = match (gba_type, uicc) {
            (GbaType::GbaMe, None) => NafKeyMaterial::GbaMe { ks_naf: KsNaf::new(me) },
            (GbaType::GbaMe, Some(_)) => {
                return Err(Error::XmlBody("GBA_ME answer with <uiccKeyMaterial>".into()));
            }
            (GbaType::GbaU, int) => {
                NafKeyMaterial::GbaU { ks_ext_naf: KsExtNaf::new(me), ks_int_naf: int.map(KsIntNaf::new) }
            }
        };
        parse_utc_time(&x.key_expiry_time)?;
        parse_utc_time(&x.bootstrap_info_creation_time)?;
        Ok(ZnAnswer {
            btid: x.btid,
            keys,
            key_expiry: x.key_expiry_time,
            bootstrap_time: x.bootstrap_info_creation_time,
            impi: x.impi,
            impus: x.guss.impu,
        })
    }
}

/// Why the BSF refused a Zn request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZnErrorCode {
    /// No bootstrapping with this B-TID (TS 29.109: user unknown). HTTP 404.
    UnknownBtid,
    /// The B-TID's key lifetime has passed (TS 33.220 §4.5.3). HTTP 404.
    ExpiredBtid,
    /// The request is malformed. HTTP 400.
    BadRequest,
}

impl ZnErrorCode {
    /// The token in `<code>`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ZnErrorCode::UnknownBtid => "unknown-btid",
            ZnErrorCode::ExpiredBtid => "expired-btid",
            ZnErrorCode::BadRequest => "bad-request",
        }
    }

    /// The HTTP status that carries it.
    pub const fn http_status(self) -> u16 {
        match self {
            ZnErrorCode::UnknownBtid | ZnErrorCode::ExpiredBtid => 404,
            ZnErrorCode::BadRequest => 400,
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        [ZnErrorCode::UnknownBtid, ZnErrorCode::ExpiredBtid, ZnErrorCode::BadRequest]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// The body of a Zn error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZnErrorBody {
    /// What went wrong.
    pub code: ZnErrorCode,
    /// A human-readable reason.
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "ZnError")]
struct ZnErrorXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    code: String,
    #[serde(default)]
    reason: String,
}

impl ZnErrorBody {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_xml(&ZnErrorXml {
            xmlns: Some(ZN_NAMESPACE.to_owned()),
            code: self.code.as_str().to_owned(),
            reason: self.reason.clone(),
        })
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: ZnErrorXml = from_xml(xml, "ZnError", ZN_NAMESPACE)?;
        let code = ZnErrorCode::from_token(x.code.trim())
            .ok_or_else(|| Error::XmlBody(format!("unknown Zn error code `{}`", x.code)))?;
        Ok(ZnErrorBody { code, reason: x.reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ub::{BootstrappingInfo, MAX_UTC_SECONDS, utc_time_string};
    use gba::naf_id::UaSecurityProtocolId;

    fn naf() -> NafId {
        NafId::new("bmsc.example.org", UaSecurityProtocolId::MBMS).unwrap()
    }

    #[test]
    fn zn_documents_round_trip() {
        let req = ZnRequest { btid: "X@bsf".into(), naf_id: naf(), gba_u_aware: true };
        let xml = req.to_xml();
        assert!(xml.contains("<nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId>"), "{xml}");
        assert_eq!(ZnRequest::from_xml(&xml).unwrap(), req);
        let unaware = ZnRequest::from_xml(
            "<ZnRequest xmlns=\"uri:keysim-zn\"><btid>b</btid><nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId></ZnRequest>",
        )
        .unwrap();
        assert!(!unaware.gba_u_aware);

        let answer = ZnAnswer {
            btid: "X@bsf".into(),
            keys: NafKeyMaterial::GbaU {
                ks_ext_naf: KsExtNaf::new([1; 32]),
                ks_int_naf: Some(KsIntNaf::new([2; 32])),
            },
            key_expiry: "2030-01-01T00:00:00Z".into(),
            bootstrap_time: "2026-01-01T00:00:00Z".into(),
            impi: "u@ims".into(),
            impus: vec!["sip:u@ims".into(), "tel:+1555".into()],
        };
        let xml = answer.to_xml();
        let back = ZnAnswer::from_xml(&xml).unwrap();
        assert_eq!(back.gba_type(), GbaType::GbaU);
        assert_eq!(back.impus, answer.impus);
        assert_eq!((back.impi.as_str(), back.key_expiry.as_str()), ("u@ims", "2030-01-01T00:00:00Z"));
        match back.keys {
            NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: Some(int) } => {
                assert_eq!(ks_ext_naf.expose(), &[1; 32]);
                assert_eq!(int.expose(), &[2; 32]);
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{answer:?}").contains("1, 1, 1"), "keys are redacted");

        let me =
            ZnAnswer { keys: NafKeyMaterial::GbaMe { ks_naf: KsNaf::new([3; 32]) }, impus: vec![], ..answer };
        let back = ZnAnswer::from_xml(&me.to_xml()).unwrap();
        assert!(matches!(back.keys, NafKeyMaterial::GbaMe { .. }));
        assert!(back.impus.is_empty());
        let mixed = me
            .to_xml()
            .replace("</meKeyMaterial>", "</meKeyMaterial><uiccKeyMaterial>AA==</uiccKeyMaterial>");
        assert!(ZnAnswer::from_xml(&mixed).is_err());
        let short = me.to_xml().replace(&BASE64.encode([3u8; 32]), &BASE64.encode([3u8; 31]));
        assert!(ZnAnswer::from_xml(&short).unwrap_err().to_string().contains("31 octets"));

        let err = ZnErrorBody { code: ZnErrorCode::ExpiredBtid, reason: "lifetime <passed>".into() };
        assert_eq!(ZnErrorBody::from_xml(&err.to_xml()).unwrap(), err);
        assert_eq!(ZnErrorCode::ExpiredBtid.http_status(), 404);
    }

    #[test]
    fn zn_request_errors() {
        for bad in [
            "<ZnRequest><btid>b</btid></ZnRequest>",
            "<ZnRequest><btid>b</btid><nafId>%%</nafId></ZnRequest>",
            "<ZnRequest><btid>b</btid><nafId>AQAAAAE=</nafId></ZnRequest>",
            "<ZnRequest><btid></btid><nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId></ZnRequest>",
            "<ZnRequest><btid>b</btid><nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId><gbaUAware>maybe</gbaUAware></ZnRequest>",
            "<ZnAnswer/>",
            "not xml at all",
            "<ZnRequest><btid>b</btid><btid>c</btid><nafId>Ym1zYy5leGFtcGxlLm9yZwEAAAAB</nafId></ZnRequest>",
        ] {
            assert!(ZnRequest::from_xml(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn zn_and_ub_xml_round_trip(btid in "[ -~]{1,60}", impi in "[!-~]{0,40}",
            impus in proptest::collection::vec("[!-~]{1,30}", 0..4), secs in 0..MAX_UTC_SECONDS) {
            let t = utc_time_string(secs);
            proptest::prop_assume!(!btid.trim().is_empty() && btid.trim() == btid);
            let info = BootstrappingInfo { btid: btid.clone(), lifetime: t.clone() };
            proptest::prop_assert_eq!(BootstrappingInfo::from_xml(&info.to_xml()).unwrap(), info);
            let req = ZnRequest { btid: btid.clone(), naf_id: naf(), gba_u_aware: false };
            proptest::prop_assert_eq!(ZnRequest::from_xml(&req.to_xml()).unwrap(), req);
            let ans = ZnAnswer { btid, keys: NafKeyMaterial::GbaMe { ks_naf: KsNaf::new([9; 32]) },
                key_expiry: t.clone(), bootstrap_time: t, impi, impus };
            let back = ZnAnswer::from_xml(&ans.to_xml()).unwrap();
            proptest::prop_assert_eq!((back.btid, back.impi, back.impus), (ans.btid, ans.impi, ans.impus));
        }
    }
}
