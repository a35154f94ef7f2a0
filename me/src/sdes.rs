//! SDES key management of an IMS UE (TS 33.328 §7.2.1, §7.2.2, §7.3.1, §7.3.2 over RFC 4568
//! §5–§7): the offer carries one `a=crypto` attribute per supported suite, each with a fresh
//! master key K1; the answerer picks one it supports and answers with its own K2 under the same
//! tag. The offerer protects with K1 and checks with K2, the answerer the reverse.
//!
//! In the e2ae scope the UE adds "e2ae-security requested" to its offer and accepts only an
//! answer with "e2ae-security applied" (its keys are then shared with the IMS Access Gateway);
//! as answerer it accepts only an offer the P-CSCF (IMS ALG) marked "applied". In the e2e scope an
//! answer or offer with "applied" is refused: some network node would terminate the media
//! security (TS 33.328 §5.4.2). The indication values live in [`sip::sdes::ims_e2ae`].

use std::io::Read as _;

use sip::sdes::{CryptoAttribute, InlineKey, KEY_SALT_LEN, SdesError, SdesSuite, SessionParam, ims_e2ae};
use srtp::{CryptoSuite, MasterKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::media_keying::{CallParties, MediaKeying, MediaKeys, SrtpKeying};

/// Which security scope the UE asks for (TS 33.328 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdesScope {
    /// End to end: the keys are shared with the peer UE only.
    E2e,
    /// End to access edge: the keys are shared with the IMS Access Gateway of this UE's access.
    E2ae,
}

impl SdesScope {
    /// `sdes-e2e` or `sdes-e2ae`.
    pub fn name(self) -> &'static str {
        match self {
            SdesScope::E2e => "sdes-e2e",
            SdesScope::E2ae => "sdes-e2ae",
        }
    }
}

/// The SRTP suite of an SDES suite.
pub fn srtp_suite(suite: SdesSuite) -> CryptoSuite {
    match suite {
        SdesSuite::AesCm128HmacSha1_80 => CryptoSuite::Aes128CmHmacSha1_80,
        SdesSuite::AesCm128HmacSha1_32 => CryptoSuite::Aes128CmHmacSha1_32,
    }
}

/// Fills `buf` from the operating system's random source (`/dev/urandom`).
pub fn os_random(buf: &mut [u8]) -> Result<()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|source| Error::Io { context: "random source /dev/urandom", source })
}

/// A fresh master key ‖ master salt as an inline key (no lifetime, no MKI).
pub fn fresh_inline_key() -> Result<InlineKey> {
    let mut ks = Zeroizing::new([0u8; KEY_SALT_LEN]);
    os_random(ks.as_mut_slice())?;
    InlineKey::new(ks.as_slice(), None, None).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// The SRTP keying of one inline key of a crypto attribute.
pub fn srtp_keying(suite: SdesSuite, key: &InlineKey, kdr: u64) -> Result<SrtpKeying> {
    let mki = key.mki.map(|m| m.to_bytes()).unwrap_or_default();
    let master = MasterKey::from_key_and_salt(key.key_salt(), &mki)?;
    Ok(SrtpKeying { suite: srtp_suite(suite), master, kdr })
}

/// What is wrong with a crypto attribute line, as the ME's error.
fn refused(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("SDES: {what}: {e}"))
}

/// The crypto attributes of `lines` this UE can use, in order: unknown suites, several keys and
/// session parameters it does not support are skipped (RFC 4568 §7.1.1), a malformed attribute
/// refuses the whole description. Also whether the e2ae "applied" indication is among them.
pub fn usable_crypto(lines: &[String]) -> Result<(Vec<CryptoAttribute>, usize, bool)> {
    let mut usable = Vec::new();
    let mut seen = 0usize;
    let mut applied = false;
    for line in lines {
        if line == ims_e2ae::APPLIED_LINE {
            applied = true;
        }
        if !line.starts_with("crypto:") {
            continue;
        }
        seen += 1;
        match CryptoAttribute::parse_line(line) {
            Ok(a) if a.keys.len() == 1 && a.unsupported_params().is_empty() => usable.push(a),
            Ok(a) => tracing::debug!(
                tag = a.tag,
                "crypto attribute skipped: several keys or unsupported parameters"
            ),
            Err(SdesError::UnknownSuite(s)) => tracing::debug!(suite = %s, "crypto attribute skipped"),
            Err(e) => return Err(refused("malformed crypto attribute", e)),
        }
    }
    Ok((usable, seen, applied))
}

/// SDES key management of one UE for one session at a time.
pub struct SdesKeying {
    scope: SdesScope,
    suites: Vec<SdesSuite>,
    /// What the last offer carried: tag, suite, K1.
    offered: Vec<(u32, SdesSuite, InlineKey)>,
}

impl std::fmt::Debug for SdesKeying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesKeying")
            .field("scope", &self.scope)
            .field("suites", &self.suites)
            .field("offered", &self.offered.len())
            .finish()
    }
}

impl SdesKeying {
    /// SDES in `scope`, offering both AES-CM suites (80-bit tag first).
    pub fn new(scope: SdesScope) -> Self {
        SdesKeying { scope, suites: SdesSuite::ALL.to_vec(), offered: Vec::new() }
    }

    /// Offers (and accepts) only `suites`, in this order of preference.
    pub fn with_suites(mut self, suites: &[SdesSuite]) -> Self {
        self.suites = suites.to_vec();
        self
    }

    /// The scope.
    pub fn scope(&self) -> SdesScope {
        self.scope
    }
}

impl MediaKeying for SdesKeying {
    fn name(&self) -> &'static str {
        self.scope.name()
    }

    fn offer(&mut self, _call: &CallParties) -> Result<Vec<String>> {
        if self.suites.is_empty() {
            return Err(Error::InvalidInput("SDES: no crypto suite to offer".into()));
        }
        let mut offered = Vec::new();
        let mut lines = Vec::new();
        for (i, suite) in self.suites.iter().enumerate() {
            let tag =
                u32::try_from(i + 1).map_err(|_| Error::InvalidInput("SDES: too many suites".into()))?;
            let key = fresh_inline_key()?;
            let line =
                CryptoAttribute::new(tag, *suite, key.clone()).to_line().map_err(|e| refused("offer", e))?;
            lines.push(line);
            offered.push((tag, *suite, key));
        }
        if self.scope == SdesScope::E2ae {
            lines.push(ims_e2ae::REQUESTED_LINE.to_owned());
        }
        self.offered = offered;
        Ok(lines)
    }

    fn answer(&mut self, call: &CallParties, offer: &[String]) -> Result<(Vec<String>, MediaKeys)> {
        let (usable, seen, applied) = usable_crypto(offer)?;
        match (self.scope, applied) {
            (SdesScope::E2ae, false) => {
                return Err(Error::InvalidInput(
                    "SDES e2ae: the offer is not marked e2ae-security applied".into(),
                ));
            }
            (SdesScope::E2e, true) => {
                return Err(Error::InvalidInput(
                    "SDES e2e: the offer is marked e2ae-security applied (the network holds the keys)".into(),
                ));
            }
            _ => {}
        }
        if seen == 0 {
            return Err(Error::InvalidInput("SDES: the offer has no crypto attribute".into()));
        }
        let chosen = self
            .suites
            .iter()
            .find_map(|s| usable.iter().find(|a| a.suite == *s))
            .or_else(|| usable.iter().find(|a| self.suites.contains(&a.suite)))
            .ok_or_else(|| Error::InvalidInput("SDES: no crypto attribute with a supported suite".into()))?;
        let k1 = chosen.keys.first().ok_or_else(|| Error::InvalidInput("SDES: no key".into()))?;
        let kdr = chosen.kdr();
        let recv = srtp_keying(chosen.suite, k1, kdr)?;
        let k2 = fresh_inline_key()?;
        let send = srtp_keying(chosen.suite, &k2, kdr)?;
        let mut answer = CryptoAttribute::new(chosen.tag, chosen.suite, k2);
        answer.session_params =
            chosen.session_params.iter().filter(|p| matches!(p, SessionParam::Kdr(_))).cloned().collect();
        let line = answer.to_line().map_err(|e| refused("answer", e))?;
        tracing::debug!(call_id = %call.call_id, tag = chosen.tag, suite = %chosen.suite, "SDES answer");
        Ok((vec![line], MediaKeys { send, recv }))
    }

    fn complete(&mut self, call: &CallParties, answer: &[String]) -> Result<MediaKeys> {
        if self.offered.is_empty() {
            return Err(Error::InvalidInput("SDES: an answer without an offer".into()));
        }
        let applied = answer.iter().any(|l| l == ims_e2ae::APPLIED_LINE);
        match (self.scope, applied) {
            (SdesScope::E2ae, false) => {
                return Err(Error::InvalidInput(
                    "SDES e2ae: the answer is not marked e2ae-security applied".into(),
                ));
            }
            (SdesScope::E2e, true) => {
                return Err(Error::InvalidInput(
                    "SDES e2e: the answer is marked e2ae-security applied (the network holds the keys)"
                        .into(),
                ));
            }
            _ => {}
        }
        let crypto: Vec<&String> = answer.iter().filter(|l| l.starts_with("crypto:")).collect();
        let [line] = crypto.as_slice() else {
            return Err(Error::InvalidInput(format!(
                "SDES: the answer has {} crypto attributes, not one",
                crypto.len()
            )));
        };
        let a = CryptoAttribute::parse_line(line).map_err(|e| refused("answer", e))?;
        let (_, suite, k1) = self.offered.iter().find(|(tag, _, _)| *tag == a.tag).ok_or_else(|| {
            Error::InvalidInput(format!("SDES: the answer's tag {} was not offered", a.tag))
        })?;
        if *suite != a.suite {
            return Err(Error::InvalidInput(format!(
                "SDES: the answer's suite {} is not the {} offered under tag {}",
                a.suite, suite, a.tag
            )));
        }
        let [k2] = a.keys.as_slice() else {
            return Err(Error::InvalidInput("SDES: the answer carries several keys".into()));
        };
        if !a.unsupported_params().is_empty() {
            return Err(Error::InvalidInput("SDES: the answer has unsupported session parameters".into()));
        }
        let kdr = a.kdr();
        let keys = MediaKeys { send: srtp_keying(*suite, k1, kdr)?, recv: srtp_keying(a.suite, k2, kdr)? };
        tracing::debug!(call_id = %call.call_id, tag = a.tag, suite = %a.suite, "SDES complete");
        self.offered.clear();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallParties {
        CallParties { caller: "sip:a@x".into(), callee: "sip:b@x".into(), call_id: "c1".into() }
    }

    fn suites() -> impl proptest::strategy::Strategy<Value = Vec<SdesSuite>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(vec![SdesSuite::AesCm128HmacSha1_80]),
            Just(vec![SdesSuite::AesCm128HmacSha1_32]),
            Just(vec![SdesSuite::AesCm128HmacSha1_80, SdesSuite::AesCm128HmacSha1_32]),
            Just(vec![SdesSuite::AesCm128HmacSha1_32, SdesSuite::AesCm128HmacSha1_80]),
        ]
    }

    proptest::proptest! {
        /// Whatever each side supports: when they share a suite, both ends hold the same two
        /// keys crosswise under the answerer's preferred shared suite; otherwise the answer fails.
        #[test]
        fn offer_answer_agree(offerer in suites(), answerer in suites()) {
            let mut a = SdesKeying::new(SdesScope::E2e).with_suites(&offerer);
            let mut b = SdesKeying::new(SdesScope::E2e).with_suites(&answerer);
            let offer = a.offer(&call()).unwrap();
            match b.answer(&call(), &offer) {
                Ok((answer, bk)) => {
                    let ak = a.complete(&call(), &answer).unwrap();
                    let expected = answerer.iter().find(|s| offerer.contains(s)).copied().unwrap();
                    proptest::prop_assert_eq!(ak.send.suite, srtp_suite(expected));
                    proptest::prop_assert_eq!(ak.send.master.key, bk.recv.master.key);
                    proptest::prop_assert_eq!(ak.recv.master.key, bk.send.master.key);
                    proptest::prop_assert_eq!(ak.recv.master.salt, bk.send.master.salt);
                }
                Err(_) => proptest::prop_assert!(!answerer.iter().any(|s| offerer.contains(s))),
            }
        }
    }

    #[test]
    fn e2e_offer_answer_complete() {
        let (mut a, mut b) = (SdesKeying::new(SdesScope::E2e), SdesKeying::new(SdesScope::E2e));
        let offer = a.offer(&call()).unwrap();
        assert_eq!(offer.len(), 2);
        assert!(offer[0].starts_with("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        let (answer, bk) = b.answer(&call(), &offer).unwrap();
        let ak = a.complete(&call(), &answer).unwrap();
        assert_eq!(ak.send.master.key, bk.recv.master.key);
        assert_eq!(ak.send.master.salt, bk.recv.master.salt);
        assert_eq!(ak.recv.master.key, bk.send.master.key);
        assert_ne!(ak.send.master.key, ak.recv.master.key, "K1 and K2 are independent");
        assert_eq!(ak.send.suite, CryptoSuite::Aes128CmHmacSha1_80);
        // A second answer to the same offer is refused (the offer is spent).
        assert!(a.complete(&call(), &answer).is_err());
    }

    /// The offer of RFC 4568 §5.1 (two attributes; the second has an F8 suite and two keys):
    /// the answer takes tag 1, and the receive key carries the 4-octet MKI 1.
    #[test]
    fn answers_the_rfc4568_offer() {
        let offer = [
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 \
             FEC_ORDER=FEC_SRTP"
                .to_owned(),
            "crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
             inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP"
                .to_owned(),
        ];
        let (answer, keys) = SdesKeying::new(SdesScope::E2e).answer(&call(), &offer).unwrap();
        assert!(answer[0].starts_with("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{answer:?}");
        assert_eq!(keys.recv.master.mki, [0, 0, 0, 1]);
        assert_eq!(keys.send.master.mki, [0u8; 0]);
    }

    #[test]
    fn answerer_skips_unknown_suites_and_refuses_bad_offers() {
        let mut b = SdesKeying::new(SdesScope::E2e);
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let offer = vec![
            format!("crypto:1 F8_128_HMAC_SHA1_80 {key}"),
            format!("crypto:7 AES_CM_128_HMAC_SHA1_32 {key}"),
        ];
        let (answer, keys) = b.answer(&call(), &offer).unwrap();
        assert!(answer[0].starts_with("crypto:7 AES_CM_128_HMAC_SHA1_32 "));
        // An AES-256 attribute (46-octet key ‖ salt, RFC 6188) before a supported one is skipped.
        let key256 = "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==";
        let offer = vec![
            format!("crypto:1 AES_256_CM_HMAC_SHA1_80 {key256}"),
            format!("crypto:2 AES_CM_128_HMAC_SHA1_80 {key}"),
        ];
        let (answer, _) = b.answer(&call(), &offer).unwrap();
        assert!(answer[0].starts_with("crypto:2 AES_CM_128_HMAC_SHA1_80 "));
        assert_eq!(keys.recv.suite, CryptoSuite::Aes128CmHmacSha1_32);
        for bad in [
            vec![],
            vec!["rtpmap:0 PCMU/8000".to_owned()],
            vec![format!("crypto:1 F8_128_HMAC_SHA1_80 {key}")],
            vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA")],
            vec![format!("crypto:x AES_CM_128_HMAC_SHA1_80 {key}")],
            vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"), ims_e2ae::APPLIED_LINE.to_owned()],
        ] {
            assert!(b.answer(&call(), &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offerer_checks_tag_suite_and_indications() {
        let mut a = SdesKeying::new(SdesScope::E2e).with_suites(&[SdesSuite::AesCm128HmacSha1_80]);
        let _ = a.offer(&call()).unwrap();
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        for bad in [
            vec![format!("crypto:2 AES_CM_128_HMAC_SHA1_80 {key}")],
            vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_32 {key}")],
            vec![
                format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"),
                format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"),
            ],
            vec![format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"), ims_e2ae::APPLIED_LINE.to_owned()],
        ] {
            assert!(a.complete(&call(), &bad).is_err(), "{bad:?}");
        }
        // Nothing was spent by the refusals: a good answer still completes.
        assert!(a.complete(&call(), &[format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}")]).is_ok());

        let mut e = SdesKeying::new(SdesScope::E2ae);
        let offer = e.offer(&call()).unwrap();
        assert_eq!(offer.last().map(String::as_str), Some(ims_e2ae::REQUESTED_LINE));
        assert!(e.complete(&call(), &[format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}")]).is_err());
        let ok = [format!("crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"), ims_e2ae::APPLIED_LINE.to_owned()];
        assert!(e.complete(&call(), &ok).is_ok());
    }
}
