//! Ub, the bootstrapping of TS 24.109 §4 and Annex C (TS 33.220 §4.5.2): HTTP Digest AKA of
//! RFC 3310 between the ME and the BSF, the pure, I/O-free half of the ME's GBA client and of the
//! BSF. The Digest headers themselves are in [`crate::digest`], Zn in [`crate::zn`].
//!
//! ```text
//! ME  → BSF  GET / HTTP/1.1
//!            User-Agent: … 3gpp-gba-uicc          (GBA_U capable card; "3gpp-gba" otherwise)
//!            Authorization: Digest username="IMPI", realm="…", nonce="", uri="/", response=""
//! BSF → ME   401 Unauthorized
//!            WWW-Authenticate: Digest realm="…", nonce="base64(RAND ‖ AUTN(*))",
//!                              algorithm=AKAv1-MD5, qop="auth-int", opaque="…"
//! ME  → BSF  GET / HTTP/1.1
//!            Authorization: Digest username="IMPI", realm="…", nonce="…", uri="/",
//!                           qop=auth-int, nc=00000001, cnonce="…", response="…",
//!                           opaque="…", algorithm=AKAv1-MD5        [, auts="base64(AUTS)"]
//! BSF → ME   200 OK
//!            Authentication-Info: qop=auth-int, rspauth="…", cnonce="…", nc=00000001
//!            Content-Type: application/vnd.3gpp.bsf+xml
//!            <BootstrappingInfo xmlns="uri:3gpp-gba"><btid>…</btid><lifetime>…</lifetime></BootstrappingInfo>
//! ```
//!
//! AKAv1 (RFC 3310 §3.3) takes the raw RES octets as the Digest password. After a
//! synchronisation failure the client sends `auts` and computes `response` with the empty
//! password (RFC 3310 §3.4).
//!
//! Every parser here is total: any input gives a value or an [`Error`] with a reason, never a
//! panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gba::Rand;
use gba::aka::{AUTN_LEN, Autn, Auts};
use gba::lifetime::{civil_from_days, days_from_civil, days_in_month};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::digest::{DigestAuthorization, DigestChallenge, DigestRequest, invalid};
use crate::xml::{from_xml, to_xml};

// ------------------------------------------------------------------------------------------------
// Constants of the wire format

/// The Digest algorithm of RFC 3310 §3.1: AKA version 1 with MD5.
pub const ALGORITHM_AKAV1_MD5: &str = "AKAv1-MD5";
/// The request URI of the bootstrapping request (TS 24.109 §4.3: `GET /`).
pub const UB_REQUEST_URI: &str = "/";
/// User-Agent product token of a GBA-capable ME (TS 24.109 §4.3.1).
pub const USER_AGENT_GBA: &str = "3gpp-gba";
/// User-Agent product token of an ME with a GBA_U-capable UICC (TS 24.109 §4.3.1). UNCONFIRMED that
/// the BSF must run GBA_U only when it sees this token (from memory of TS 33.220 §5.3.2 / TS 24.109
/// §4.3.2); the BSF here does so, and so does the one real client found (Samsung).
pub const USER_AGENT_GBA_UICC: &str = "3gpp-gba-uicc";
/// Content type of the 200 OK body: IANA media type `application/vnd.3gpp.bsf+xml` (vendor tree,
/// published specifications TS 33.220 and TS 24.109: "B-TID and key lifetime from the BSF to the UE").
pub const BSF_CONTENT_TYPE: &str = "application/vnd.3gpp.bsf+xml";
/// XML namespace of `BootstrappingInfo`: the schema's `targetNamespace="uri:3gpp-gba"` (TS 24.109
/// Annex C, read on itecspec).
pub const BOOTSTRAPPING_INFO_NAMESPACE: &str = "uri:3gpp-gba";
/// Root element of the 200 OK body, with children `btid`, `lifetime` (UTC `xs:dateTime`) and an
/// optional `Extension` (TS 24.109 Annex C schema).
pub const BOOTSTRAPPING_INFO_ELEMENT: &str = "BootstrappingInfo";
/// Length of RAND ‖ AUTN at the start of the AKA nonce (RFC 3310 §3.2).
pub const AKA_NONCE_MIN_LEN: usize = 16 + AUTN_LEN;

// ------------------------------------------------------------------------------------------------
// AKAv1-MD5 on the Digest headers (RFC 3310 §3.1, §3.4)

impl DigestChallenge {
    /// Whether the algorithm is AKAv1-MD5 (case-insensitive, RFC 3310 §3.1).
    pub fn is_aka_v1_md5(&self) -> bool {
        self.algorithm.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(ALGORITHM_AKAV1_MD5))
    }
}

impl DigestAuthorization {
    /// The answer after a synchronisation failure (RFC 3310 §3.4): `auts` = base64(AUTS) and the
    /// response computed with the empty password.
    pub fn answer_sync_failure(
        challenge: &DigestChallenge,
        username: &str,
        auts: &Auts,
        request: &DigestRequest<'_>,
        cnonce: &str,
        nc: u32,
    ) -> Self {
        let mut a = Self::answer(challenge, username, b"", request, cnonce, nc);
        a.auts = Some(BASE64.encode(auts.to_bytes()));
        a
    }

    /// The AUTS of a synchronisation failure, if `auts` is present: base64 of exactly 14 octets.
    pub fn decode_auts(&self) -> Result<Option<Auts>, Error> {
        let Some(text) = &self.auts else { return Ok(None) };
        let bytes = BASE64.decode(text).map_err(|e| invalid("auts", format!("not base64: {e}")))?;
        Auts::parse(&bytes).map(Some).map_err(|e| invalid("auts", e.to_string()))
    }
}

// ------------------------------------------------------------------------------------------------
// The AKA nonce (RFC 3310 §3.2)

/// nonce = base64(RAND ‖ AUTN ‖ server data) (RFC 3310 §3.2); on Ub the AUTN is AUTN* for GBA_U.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaNonce {
    /// RAND.
    pub rand: Rand,
    /// AUTN, or AUTN* for GBA_U.
    pub autn: Autn,
    /// Optional server data after AUTN (opaque to the client).
    pub server_data: Vec<u8>,
}

impl AkaNonce {
    /// The nonce text.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(AKA_NONCE_MIN_LEN + self.server_data.len());
        raw.extend_from_slice(&self.rand);
        raw.extend_from_slice(&self.autn.to_bytes());
        raw.extend_from_slice(&self.server_data);
        BASE64.encode(raw)
    }

    /// Decodes a nonce: base64 of at least 32 octets; RAND is octets 0..16, AUTN 16..32.
    pub fn decode(nonce: &str) -> Result<Self, Error> {
        let raw = BASE64.decode(nonce).map_err(|e| Error::Nonce(format!("not base64: {e}")))?;
        let (rand, rest) = raw
            .split_first_chunk::<16>()
            .ok_or_else(|| Error::Nonce(format!("{} octets, RAND ‖ AUTN needs 32", raw.len())))?;
        let (autn, server_data) = rest
            .split_first_chunk::<AUTN_LEN>()
            .ok_or_else(|| Error::Nonce(format!("{} octets, RAND ‖ AUTN needs 32", raw.len())))?;
        Ok(AkaNonce { rand: *rand, autn: Autn::from_bytes(autn), server_data: server_data.to_vec() })
    }
}

// ------------------------------------------------------------------------------------------------
// The 200 OK body (TS 24.109 Annex C)

/// The body of the final 200 OK of Ub: B-TID and key lifetime (TS 24.109 Annex C; namespace and
/// element names confirmed there, see [`BOOTSTRAPPING_INFO_NAMESPACE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrappingInfo {
    /// B-TID = base64(RAND) "@" BSF domain (TS 33.220 §4.5.2).
    pub btid: String,
    /// Key lifetime, UTC (`YYYY-MM-DDThh:mm:ssZ`, TS 24.109 §4.2).
    pub lifetime: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "BootstrappingInfo")]
struct BootstrappingInfoXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    btid: String,
    lifetime: String,
}

impl BootstrappingInfo {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_xml(&BootstrappingInfoXml {
            xmlns: Some(BOOTSTRAPPING_INFO_NAMESPACE.to_owned()),
            btid: self.btid.clone(),
            lifetime: self.lifetime.clone(),
        })
    }

    /// Parses the XML document; the lifetime must be a valid time ([`parse_utc_time`]).
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: BootstrappingInfoXml =
            from_xml(xml, BOOTSTRAPPING_INFO_ELEMENT, BOOTSTRAPPING_INFO_NAMESPACE)?;
        parse_utc_time(&x.lifetime)?;
        if x.btid.is_empty() {
            return Err(Error::XmlBody("empty <btid>".into()));
        }
        Ok(BootstrappingInfo { btid: x.btid, lifetime: x.lifetime })
    }
}

// ------------------------------------------------------------------------------------------------
// UTC times (XML Schema dateTime subset, as TS 24.109 §4.2 uses for the key lifetime)

/// Largest Unix time [`utc_time_string`] writes: 9999-12-31T23:59:59Z.
pub const MAX_UTC_SECONDS: u64 = 253_402_300_799;

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ` (clamped to [`MAX_UTC_SECONDS`]).
pub fn utc_time_string(unix_seconds: u64) -> String {
    let t = unix_seconds.min(MAX_UTC_SECONDS) as i64;
    let (days, secs) = (t / 86_400, t % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

fn digits(s: &str, range: std::ops::Range<usize>, what: &str) -> Result<u32, Error> {
    let part = s.get(range).ok_or_else(|| Error::Time(format!("`{s}` is too short")))?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Time(format!("`{s}`: {what} is not a number")));
    }
    part.parse().map_err(|_| Error::Time(format!("`{s}`: {what} is not a number")))
}

/// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` into Unix seconds (the fraction is dropped).
/// Times before 1970 are refused.
pub fn parse_utc_time(s: &str) -> Result<u64, Error> {
    let s = s.trim();
    let sep_ok = s.get(4..5) == Some("-")
        && s.get(7..8) == Some("-")
        && matches!(s.get(10..11), Some("T" | "t"))
        && s.get(13..14) == Some(":")
        && s.get(16..17) == Some(":");
    if !sep_ok {
        return Err(Error::Time(format!("`{s}` is not YYYY-MM-DDThh:mm:ss")));
    }
    let (y, mo, d) = (digits(s, 0..4, "year")?, digits(s, 5..7, "month")?, digits(s, 8..10, "day")?);
    let (h, mi, sec) =
        (digits(s, 11..13, "hour")?, digits(s, 14..16, "minute")?, digits(s, 17..19, "second")?);
    let month_days = days_in_month(i64::from(y), mo);
    if month_days == 0 {
        return Err(Error::Time(format!("`{s}`: month {mo}")));
    }
    if d == 0 || d > month_days || h > 23 || mi > 59 || sec > 59 {
        return Err(Error::Time(format!("`{s}`: date or time out of range")));
    }
    let mut rest = s.get(19..).unwrap_or("");
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(Error::Time(format!("`{s}`: empty fraction")));
        }
        rest = frac.get(n..).unwrap_or("");
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1) {
                Some("+") => 1,
                Some("-") => -1,
                _ => return Err(Error::Time(format!("`{s}`: no `Z` or UTC offset"))),
            };
            if rest.len() != 6 || rest.get(3..4) != Some(":") {
                return Err(Error::Time(format!("`{s}`: offset is not ±hh:mm")));
            }
            let (oh, om) = (digits(rest, 1..3, "offset")?, digits(rest, 4..6, "offset")?);
            if oh > 14 || om > 59 {
                return Err(Error::Time(format!("`{s}`: offset out of range")));
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    let local = days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    u64::try_from(local - offset).map_err(|_| Error::Time(format!("`{s}` lies before 1970")))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::digest::{
        AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest, Qop, rspauth, verify_rspauth,
    };
    use crate::zn::{ZnAnswer, ZnErrorBody, ZnRequest};

    #[test]
    fn ub_challenge_and_answer_round_trip() {
        let nonce =
            AkaNonce { rand: [0x23; 16], autn: Autn::from_bytes(&[0x55; 16]), server_data: vec![1, 2, 3] };
        let text = nonce.encode();
        assert_eq!(AkaNonce::decode(&text).unwrap(), nonce);
        let ch = DigestChallenge {
            realm: "bsf.example.org".into(),
            nonce: text,
            algorithm: Some(ALGORITHM_AKAV1_MD5.into()),
            qop: vec![Qop::AuthInt],
            opaque: Some("op\"aq\\ue".into()),
            stale: false,
        };
        let header = ch.to_header_value().unwrap();
        assert!(header.starts_with("Digest realm=\"bsf.example.org\", nonce=\""), "{header}");
        assert!(
            header.contains("algorithm=AKAv1-MD5, qop=\"auth-int\", opaque=\"op\\\"aq\\\\ue\""),
            "{header}"
        );
        let parsed = DigestChallenge::parse(&header).unwrap();
        assert_eq!(parsed, ch);
        assert!(parsed.is_aka_v1_md5());

        let req = DigestRequest { method: "GET", uri: "/", entity_body: b"" };
        let a = DigestAuthorization::answer(&parsed, "impi@x", b"\x01\x02", &req, "abc", 7);
        let again = DigestAuthorization::parse(&a.to_header_value().unwrap()).unwrap();
        assert_eq!(again, a);
        assert!(again.verify(b"\x01\x02", "GET", b""));
        assert!(!again.verify(b"\x01\x03", "GET", b""));
        assert!(!again.verify(b"\x01\x02", "GET", b"x"), "auth-int covers the body");
        assert_eq!(again.decode_auts(), Ok(None));

        let info = AuthenticationInfo {
            qop: Some(Qop::AuthInt),
            rspauth: Some(rspauth(&again.digest_input(b"\x01\x02", "GET", b""), b"<body/>")),
            cnonce: Some("abc".into()),
            nc: Some(7),
            nextnonce: None,
        };
        let h = info.to_header_value().unwrap();
        assert!(h.starts_with("qop=auth-int, rspauth=\""), "{h}");
        assert_eq!(AuthenticationInfo::parse(&h).unwrap(), info);
        assert!(verify_rspauth(
            &again.digest_input(b"\x01\x02", "GET", b""),
            b"<body/>",
            info.rspauth.as_ref().unwrap()
        ));
    }

    #[test]
    fn initial_request_and_auts() {
        let h = DigestAuthorization::initial("001010123456789@ims.example", "bsf.example.org", "/")
            .to_header_value()
            .unwrap();
        assert_eq!(
            h,
            "Digest username=\"001010123456789@ims.example\", realm=\"bsf.example.org\", nonce=\"\", uri=\"/\", response=\"\""
        );
        let a = DigestAuthorization::parse(&h).unwrap();
        assert!(a.nonce.is_empty() && a.response.is_empty());

        let auts = Auts::from_bytes(&[0x11; 14]);
        let ch = DigestChallenge {
            realm: "r".into(),
            nonce: "n".into(),
            algorithm: Some(ALGORITHM_AKAV1_MD5.into()),
            qop: vec![Qop::AuthInt],
            opaque: None,
            stale: false,
        };
        let req = DigestRequest { method: "GET", uri: "/", entity_body: b"" };
        let s = DigestAuthorization::answer_sync_failure(&ch, "u", &auts, &req, "c", 1);
        let parsed = DigestAuthorization::parse(&s.to_header_value().unwrap()).unwrap();
        assert_eq!(parsed.decode_auts(), Ok(Some(auts)));
        assert!(parsed.verify(b"", "GET", b""), "the AUTS answer uses the empty password");
        let mut bad = parsed.clone();
        bad.auts = Some("AAAA".into());
        assert!(matches!(bad.decode_auts(), Err(Error::InvalidParameter { name: "auts", .. })));
        bad.auts = Some("!!".into());
        assert!(bad.decode_auts().is_err());
    }

    #[test]
    fn nonce_errors() {
        assert!(matches!(AkaNonce::decode("***"), Err(Error::Nonce(_))));
        assert!(AkaNonce::decode(&BASE64.encode([0u8; 31])).unwrap_err().to_string().contains("31 octets"));
        let n = AkaNonce::decode(&BASE64.encode([7u8; 32])).unwrap();
        assert!(n.server_data.is_empty());
    }

    #[test]
    fn bootstrapping_info_xml() {
        let info = BootstrappingInfo {
            btid: "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org".into(),
            lifetime: "2030-01-01T00:00:00Z".into(),
        };
        let xml = info.to_xml();
        assert!(
            xml.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BootstrappingInfo xmlns=\"uri:3gpp-gba\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<btid>I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org</btid>"), "{xml}");
        assert_eq!(BootstrappingInfo::from_xml(&xml).unwrap(), info);
        // Without declaration or namespace, with whitespace: still fine.
        let plain = "<BootstrappingInfo><btid>a@b</btid>\n <lifetime>2002-08-17T09:58:27+02:00</lifetime></BootstrappingInfo>";
        assert_eq!(BootstrappingInfo::from_xml(plain).unwrap().btid, "a@b");
        for bad in [
            "",
            "<BootstrappingInfo>",
            "<BootstrappingInfo><btid>a</btid></BootstrappingInfo>",
            "<Other><btid>a</btid><lifetime>2030-01-01T00:00:00Z</lifetime></Other>",
            "<BootstrappingInfo xmlns=\"urn:else\"><btid>a</btid><lifetime>2030-01-01T00:00:00Z</lifetime></BootstrappingInfo>",
            "<BootstrappingInfo><btid>a</btid><lifetime>soon</lifetime></BootstrappingInfo>",
            "<BootstrappingInfo><btid></btid><lifetime>2030-01-01T00:00:00Z</lifetime></BootstrappingInfo>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><BootstrappingInfo/>",
            "<BootstrappingInfo><btid>a</btid><lifetime>2030-01-01T00:00:00Z</lifetime>",
        ] {
            assert!(BootstrappingInfo::from_xml(bad).is_err(), "{bad:?}");
        }
    }

    /// Known Unix times: the epoch, a leap day, and year starts used across the project's tests
    /// (each checked with `date -u -d @N` of GNU coreutils when written).
    #[test]
    fn utc_times() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
            (1_893_456_000, "2030-01-01T00:00:00Z"),
            (1_924_992_000, "2031-01-01T00:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (MAX_UTC_SECONDS, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(utc_time_string(secs), text);
            assert_eq!(parse_utc_time(text), Ok(secs));
        }
        assert_eq!(parse_utc_time("2002-08-17T09:58:27+02:00"), parse_utc_time("2002-08-17T07:58:27Z"));
        assert_eq!(parse_utc_time("2002-08-17T07:58:27.123Z"), parse_utc_time("2002-08-17T07:58:27Z"));
        for bad in [
            "",
            "2030-02-30T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2030-01-01 00:00:00Z",
            "2030-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00+0200",
            "2030-01-01T00:00:00.Z",
            "+030-01-01T00:00:00Z",
        ] {
            assert!(parse_utc_time(bad).is_err(), "{bad}");
        }
    }

    /// The Unix time formatting checked against Python's datetime at test time.
    #[test]
    fn utc_times_match_python() {
        let samples: Vec<u64> = (0..40u64).map(|i| i * 6_335_317_201 % MAX_UTC_SECONDS).collect();
        let args: Vec<String> = samples.iter().map(u64::to_string).collect();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys,datetime\nfor a in sys.argv[1:]: print(datetime.datetime.fromtimestamp(int(a), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))")
            .args(&args)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8(o.stdout).unwrap();
                for (line, secs) in text.lines().zip(&samples) {
                    assert_eq!(utc_time_string(*secs), line);
                    assert_eq!(parse_utc_time(line), Ok(*secs));
                }
                assert_eq!(text.lines().count(), samples.len());
            }
            _ if std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_some() => {
                panic!("python3 is required (KEYSIM_REQUIRE_ORACLES is set)")
            }
            _ => eprintln!("python3 not available: skipping the datetime cross-check"),
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = DigestChallenge::parse(&s);
            let _ = DigestAuthorization::parse(&s);
            let _ = AuthenticationInfo::parse(&s);
            let _ = AkaNonce::decode(&s);
            let _ = BootstrappingInfo::from_xml(&s);
            let _ = ZnRequest::from_xml(&s);
            let _ = ZnAnswer::from_xml(&s);
            let _ = ZnErrorBody::from_xml(&s);
            let _ = parse_utc_time(&s);
            let lossy = String::from_utf8_lossy(&bytes);
            let _ = DigestAuthorization::parse(&format!("Digest {lossy}"));
            let _ = ZnRequest::from_xml(&format!("<ZnRequest>{lossy}</ZnRequest>"));
        }
    }
}
