//! NAF_Id = FQDN of the NAF ‖ Ua security protocol identifier (TS 33.220 Annex B.3, Annex H).
//!
//! The FQDN enters as text (UTF-8; we accept printable ASCII, as DNS names are), the protocol
//! identifier as 5 raw octets at the end: 1 organisation octet + 4 octets (Annex H.1, H.2).
//! Omitting the suffix gives wrong keys everywhere.

use crate::Error;

/// Length of a Ua security protocol identifier (Annex H.1).
pub const UA_SECURITY_PROTOCOL_ID_LEN: usize = 5;

/// Largest NAF_Id we hold: 255 octets, the most the AUTHENTICATE NAF Derivation Mode can carry
/// in its one-octet length field (TS 31.102 §7.1.2) and EF_GBANL in a short BER length.
pub const NAF_ID_MAX_LEN: usize = 255;

/// A Ua security protocol identifier (TS 33.220 Annex H).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UaSecurityProtocolId(pub [u8; UA_SECURITY_PROTOCOL_ID_LEN]);

impl UaSecurityProtocolId {
    /// Organisation octet 0x00: the default protocol, only `00 00 00 00 00` (Annex H.2).
    pub const DEFAULT: Self = Self([0x00, 0x00, 0x00, 0x00, 0x00]);
    /// Ua protocol of TS 33.221 (subscriber certificates) (Annex H.3).
    pub const SUBSCRIBER_CERTIFICATES: Self = Self([0x01, 0x00, 0x00, 0x00, 0x00]);
    /// MBMS, TS 33.246 (Annex H.3). The id our BM-SC uses.
    pub const MBMS: Self = Self([0x01, 0x00, 0x00, 0x00, 0x01]);
    /// HTTP digest authentication per TS 24.109 (Annex H.3).
    pub const HTTP_DIGEST: Self = Self([0x01, 0x00, 0x00, 0x00, 0x02]);
    /// HTTP-based security procedures for MBMS user services, TS 26.237 (Annex H.3).
    pub const MBMS_HTTP_TS26237: Self = Self([0x01, 0x00, 0x00, 0x00, 0x03]);
    /// SIP-based security procedures for MBMS user services, TS 26.237 (Annex H.3).
    pub const MBMS_SIP_TS26237: Self = Self([0x01, 0x00, 0x00, 0x00, 0x04]);
    /// Generic Push Layer, TS 33.224 (Annex H.3).
    pub const GENERIC_PUSH_LAYER: Self = Self([0x01, 0x00, 0x00, 0x00, 0x05]);
    /// IMS UE to KMS HTTP-based key management, TS 33.328 (Annex H.3).
    pub const IMS_UE_KMS_HTTP: Self = Self([0x01, 0x00, 0x00, 0x00, 0x06]);
    /// Shared-key-based TLS 1.3, TS 33.222 §5.4.0.2 (Annex H.3).
    pub const SHARED_KEY_TLS13: Self = Self([0x01, 0x00, 0x00, 0x00, 0x07]);
    /// TMPI generation (Annex B.4); listed in H.3 though not strictly a Ua protocol.
    pub const TMPI: Self = Self([0x01, 0x00, 0x00, 0x01, 0x00]);

    /// Organisation octet 3GPP (Annex H.2).
    pub const ORG_3GPP: u8 = 0x01;

    /// TLS-based Ua of TS 33.222 with the given TLS cipher suite: `01 00 01 yy zz` (Annex H.3).
    pub const fn tls(cipher_suite: u16) -> Self {
        let cs = cipher_suite.to_be_bytes();
        Self([0x01, 0x00, 0x01, cs[0], cs[1]])
    }

    /// The 5 octets.
    pub const fn as_bytes(&self) -> &[u8; UA_SECURITY_PROTOCOL_ID_LEN] {
        &self.0
    }
}

/// NAF_Id in a fixed buffer: FQDN (≥ 1 octet) ‖ Ua security protocol id (5 octets), ≤ 255 octets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NafId {
    buf: [u8; NAF_ID_MAX_LEN],
    len: u8,
}

impl NafId {
    /// Builds FQDN ‖ protocol id. The FQDN must be 1..=250 printable ASCII octets (no space).
    pub fn new(fqdn: &str, ua: UaSecurityProtocolId) -> Result<Self, Error> {
        Self::from_parts(fqdn.as_bytes(), ua)
    }

    /// As [`Self::new`], from the FQDN octets.
    pub fn from_parts(fqdn: &[u8], ua: UaSecurityProtocolId) -> Result<Self, Error> {
        check_fqdn(fqdn)?;
        let total = fqdn.len() + UA_SECURITY_PROTOCOL_ID_LEN;
        let len = u8::try_from(total).map_err(|_| Error::NafIdLength)?;
        let mut buf = [0u8; NAF_ID_MAX_LEN];
        for (b, v) in buf.iter_mut().zip(fqdn.iter().chain(ua.as_bytes())) {
            *b = *v;
        }
        Ok(NafId { buf, len })
    }

    /// Parses a received NAF_Id (for example from the NAF Derivation Mode command): the last 5
    /// octets are the protocol id, the rest must be a valid FQDN.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() <= UA_SECURITY_PROTOCOL_ID_LEN || bytes.len() > NAF_ID_MAX_LEN {
            return Err(Error::NafIdLength);
        }
        let (fqdn, ua) = bytes.split_at(bytes.len() - UA_SECURITY_PROTOCOL_ID_LEN);
        let ua: [u8; UA_SECURITY_PROTOCOL_ID_LEN] = ua.try_into().map_err(|_| Error::NafIdLength)?;
        Self::from_parts(fqdn, UaSecurityProtocolId(ua))
    }

    /// The whole NAF_Id, as fed to the KDF.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The FQDN part.
    pub fn fqdn(&self) -> &str {
        let fqdn_len = usize::from(self.len).saturating_sub(UA_SECURITY_PROTOCOL_ID_LEN);
        let bytes = self.buf.get(..fqdn_len).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// The Ua security protocol identifier part.
    pub fn ua_security_protocol_id(&self) -> UaSecurityProtocolId {
        let end = usize::from(self.len);
        let start = end.saturating_sub(UA_SECURITY_PROTOCOL_ID_LEN);
        let mut id = [0u8; UA_SECURITY_PROTOCOL_ID_LEN];
        if let Some(src) = self.buf.get(start..end) {
            for (d, s) in id.iter_mut().zip(src) {
                *d = *s;
            }
        }
        UaSecurityProtocolId(id)
    }
}

impl core::fmt::Debug for NafId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e] = self.ua_security_protocol_id().0;
        write!(f, "NafId({:?} || {a:02x} {b:02x} {c:02x} {d:02x} {e:02x})", self.fqdn())
    }
}

fn check_fqdn(fqdn: &[u8]) -> Result<(), Error> {
    if fqdn.is_empty() || !fqdn.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Error::InvalidFqdn);
    }
    if fqdn.len() + UA_SECURITY_PROTOCOL_ID_LEN > NAF_ID_MAX_LEN {
        return Err(Error::NafIdLength);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec digest §1.4: "bmsc.example.org" ‖ 01 00 00 00 01, 21 octets.
    #[test]
    fn mbms_naf_id() {
        let n = NafId::new("bmsc.example.org", UaSecurityProtocolId::MBMS).unwrap();
        assert_eq!(n.as_bytes().len(), 21);
        assert_eq!(n.as_bytes(), b"bmsc.example.org\x01\x00\x00\x00\x01");
        assert_eq!(n.fqdn(), "bmsc.example.org");
        assert_eq!(n.ua_security_protocol_id(), UaSecurityProtocolId::MBMS);
        assert_eq!(NafId::from_bytes(n.as_bytes()), Ok(n.clone()));
        assert_eq!(format!("{n:?}"), "NafId(\"bmsc.example.org\" || 01 00 00 00 01)");
    }

    #[test]
    fn annex_h3_ids() {
        assert_eq!(UaSecurityProtocolId::HTTP_DIGEST.0, [1, 0, 0, 0, 2]);
        assert_eq!(UaSecurityProtocolId::MBMS_HTTP_TS26237.0, [1, 0, 0, 0, 3]);
        assert_eq!(UaSecurityProtocolId::MBMS_SIP_TS26237.0, [1, 0, 0, 0, 4]);
        assert_eq!(UaSecurityProtocolId::IMS_UE_KMS_HTTP.0, [1, 0, 0, 0, 6]);
        assert_eq!(UaSecurityProtocolId::tls(0x1301).0, [1, 0, 1, 0x13, 0x01]);
    }

    #[test]
    fn bad_naf_ids() {
        assert_eq!(NafId::new("", UaSecurityProtocolId::MBMS), Err(Error::InvalidFqdn));
        assert_eq!(NafId::new("a b", UaSecurityProtocolId::MBMS), Err(Error::InvalidFqdn));
        assert_eq!(NafId::new("bmsc\u{e9}", UaSecurityProtocolId::MBMS), Err(Error::InvalidFqdn));
        let long = "a".repeat(250);
        assert!(NafId::new(&long, UaSecurityProtocolId::MBMS).is_ok());
        let too_long = "a".repeat(251);
        assert_eq!(NafId::new(&too_long, UaSecurityProtocolId::MBMS), Err(Error::NafIdLength));
        assert_eq!(NafId::from_bytes(&[1, 0, 0, 0, 1]), Err(Error::NafIdLength));
        assert_eq!(NafId::from_bytes(&[0x41; 256]), Err(Error::NafIdLength));
    }
}
