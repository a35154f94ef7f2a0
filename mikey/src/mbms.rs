//! The MIKEY profile of MBMS security (TS 33.246 §6.3 MSK and MTK procedures and the MIKEY
//! message clauses after it; RFC 4563 Key ID information and empty map).
//!
//! Used by the UICC (MSK Update / MTK Generation modes of AUTHENTICATE, TS 31.102 §7.1), by the
//! ME in ME-based key management, and by the simulated BM-SC.
//!
//! Every byte-level choice that the TS 33.246 text available to this project does not confirm is
//! a named constant in [`profile`], with the clause it should come from, so that it can be
//! corrected in one line.
//!
//! Messages built here:
//!
//! ```text
//! MSK message (MUK-protected)  HDR(PSK init, V, CSB ID, empty map), EXT(Key ID: Key Domain ID,
//!                              MSK ID), T, RAND, IDi, IDr, [SP], KEMAC(TGK = MSK [+ KV])
//! Solicited pull               the same with MSK ID "0" and a KEMAC without key data
//! Verification message         HDR(PSK ver), T (copied), [IDr], V
//! MTK message (MSK-protected)  HDR(PSK init, V=0), EXT(Key ID: Key Domain ID, MSK ID, MTK ID),
//!                              T, [RAND], [SP], KEMAC(MTK [+ salt] [+ KV])
//! ```
//! Receivers accept the payloads in any order, but the KEMAC (or V) must be last.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// MBMS User Key (TS 33.246 §6.1): Ks_int_NAF (UICC-based) or the ME-derived MUK, the MIKEY
/// pre-shared key of MSK messages. GBA derives it ([`gba::mbms_keys`]), so the type is GBA's.
pub use gba::Muk;

use crate::Error;
use crate::error::ProfileViolation;
use crate::kemac::{KemacProtection, TransportKeys, decrypt_key_data, verify_kemac, verify_verification};
use crate::message::{Message, MessageBuilder};
use crate::payload::{
    CsIdMap, DataType, GeneralExtension, Hdr, Id, KeyData, KeyId, KeyIdType, KeyIds, KeyType, KeyValidity,
    Payload, PayloadType, Rand, SecurityPolicy, Timestamp,
};

/// The profile's constants. Items marked UNCONFIRMED come from the project's digest of the
/// specifications, not from the TS 33.246 text itself.
pub mod profile {
    use crate::payload::{EncrAlg, IdType, KeyType, MacAlg};
    use crate::prf::PrfFunc;

    /// MUK length: Ks_int_NAF / Ks_NAF is a 256-bit HMAC-SHA-256 output (TS 33.220 Annex B).
    pub const MUK_LEN: usize = gba::Muk::LEN;
    /// MSK length (128-bit, TS 33.246 §6.3). UNCONFIRMED for other releases.
    pub const MSK_LEN: usize = 16;
    /// MTK length: an AES-128 SRTP master key (TS 33.246 §6.3.3, RFC 3711). UNCONFIRMED.
    pub const MTK_LEN: usize = 16;
    /// Salt delivered with the MTK: the 112-bit SRTP master salt (RFC 3711 §8.2). UNCONFIRMED that
    /// TS 33.246 always uses 112 bits.
    pub const MTK_SALT_LEN: usize = 14;
    /// Key Domain ID = MCC || MNC, 3 bytes (TS 31.102 §4.2.80 EF_MSK bytes 1–3).
    pub const KEY_DOMAIN_ID_LEN: usize = 3;
    /// MSK ID, 4 bytes; the first 2 are the Key Group part (TS 31.102 §4.2.80).
    pub const MSK_ID_LEN: usize = 4;
    /// MTK ID length on the wire. UNCONFIRMED (TS 33.246 §6.3.3.1 "MTK identification"; 2 bytes is
    /// the digest's reading). Must be 1..=4.
    pub const MTK_ID_LEN: usize = 2;
    const _: () = assert!(MTK_ID_LEN >= 1 && MTK_ID_LEN <= 4);
    /// SRTP MKI = MSK ID ([`MSK_ID_LEN`] bytes) ‖ MTK ID ([`MTK_ID_LEN`] bytes), so the receiver
    /// picks the MTK by MKI. UNCONFIRMED (spec digest mikey-srtp.md §2.7, TS 33.246 traffic
    /// protection); the BM-SC and the ME both take it from here.
    pub const MKI_LEN: usize = MSK_ID_LEN + MTK_ID_LEN;
    /// PRF of MBMS MIKEY messages: MIKEY-1 (HMAC-SHA-1). UNCONFIRMED whether later releases allow
    /// PRF-HMAC-SHA-256.
    pub const PRF: PrfFunc = PrfFunc::MikeyHmacSha1;
    /// KEMAC encryption (RFC 3830 default, TS 33.246 MIKEY profile).
    pub const ENCR_ALG: EncrAlg = EncrAlg::AesCm128;
    /// KEMAC / V MAC (RFC 3830 default, TS 33.246 MIKEY profile).
    pub const MAC_ALG: MacAlg = MacAlg::HmacSha1_160;
    /// Key data type of the MSK in an MSK message: TGK (RFC 4563 §2: the MSK protects MTK
    /// delivery). UNCONFIRMED against the TS 33.246 key data clause.
    pub const MSK_KEY_TYPE: KeyType = KeyType::Tgk;
    /// Key data type of the MTK in an MTK message (the salt, when sent, makes it TGK+SALT).
    /// UNCONFIRMED (TEK or TGK; spec digest §2.7). Receivers accept both.
    pub const MTK_KEY_TYPE: KeyType = KeyType::Tgk;
    /// ID type of IDi (the BM-SC / NAF FQDN). UNCONFIRMED (TS 33.246 MSK message clause).
    pub const IDI_TYPE: IdType = IdType::URI;
    /// ID type of IDr (the B-TID, an NAI-like string, TS 33.220 §4.5.2). UNCONFIRMED.
    pub const IDR_TYPE: IdType = IdType::NAI;
    /// Minimum RAND length: 128 bits (RFC 3830 §4.1.1).
    pub const MIN_RAND_LEN: usize = 16;
    /// Bits of the MSK ID that are zero in a solicited-pull message (TS 33.246 §6.3.2.2.4: "MSK ID
    /// set to 0x0"). UNCONFIRMED: this profile keeps the Key Group part (the upper 16 bits) so that
    /// the UE knows which Key Group to request; set to `0xFFFF_FFFF` for an all-zero MSK ID.
    pub const SOLICITED_PULL_MSK_ID_MASK: u32 = 0x0000_FFFF;
    /// #CS of the empty CS ID map (RFC 4563 §5). UNCONFIRMED value for MBMS.
    pub const EMPTY_MAP_CS_COUNT: u8 = 0;
    /// Whether the verification message (MSK acknowledgement) carries IDr before V (RFC 3830 §3.1
    /// makes it optional). UNCONFIRMED for TS 33.246.
    pub const VERIFICATION_CARRIES_IDR: bool = true;
    /// Largest KEMAC key data this profile decrypts (a stack buffer on the card).
    pub const MAX_KEY_DATA_LEN: usize = 256;
    /// Largest key validity value kept in a delivery.
    pub const MAX_KV_LEN: usize = 16;
}

use profile::*;

// ---------------------------------------------------------------------------------------------
// Identifiers (TS 33.246 §6.3.2.1, §6.3.3.1; TS 31.102 §4.2.80)

/// MBMS Key Domain ID: MCC || MNC, 3 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDomainId(pub [u8; KEY_DOMAIN_ID_LEN]);

/// MSK ID: 4 bytes, the first 2 being the Key Group part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MskId(pub u32);

impl MskId {
    /// The Key Group part (first 2 bytes).
    pub const fn key_group(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The MSK ID of a solicited-pull message for a Key Group (see
    /// [`profile::SOLICITED_PULL_MSK_ID_MASK`]).
    pub const fn solicited_pull(key_group: u16) -> Self {
        MskId(((key_group as u32) << 16) & !SOLICITED_PULL_MSK_ID_MASK)
    }

    /// True if this MSK ID asks the UE to fetch the current MSK (TS 33.246 §6.3.2.2.4).
    pub const fn is_solicited_pull(self) -> bool {
        self.0 & SOLICITED_PULL_MSK_ID_MASK == 0
    }

    /// Wire bytes.
    pub const fn to_bytes(self) -> [u8; MSK_ID_LEN] {
        self.0.to_be_bytes()
    }
}

/// MTK ID, [`profile::MTK_ID_LEN`] bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MtkId(pub u32);

impl MtkId {
    /// Largest MTK ID the wire length can carry.
    pub const MAX: u32 = if MTK_ID_LEN >= 4 { u32::MAX } else { (1u32 << (8 * MTK_ID_LEN)) - 1 };

    fn to_wire(self) -> Result<[u8; 4], Error> {
        if self.0 > Self::MAX {
            return Err(Error::FieldTooLong);
        }
        Ok(self.0.to_be_bytes())
    }

    fn from_wire(b: &[u8]) -> Result<Self, Error> {
        if b.len() != MTK_ID_LEN {
            return Err(ProfileViolation::BadKeyIdLength.into());
        }
        Ok(MtkId(b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))))
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

macro_rules! secret_key {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps key bytes.
            pub const fn new(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// Key from a slice of exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
                let a: [u8; $len] = bytes.try_into().map_err(|_| Error::BadLength)?;
                Ok($name(a))
            }

            /// The key bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_key!(
    /// MBMS Service Key: the pre-shared key of MTK messages.
    Msk,
    MSK_LEN
);
secret_key!(
    /// MBMS Traffic Key: the SRTP master key (or DCF key).
    Mtk,
    MTK_LEN
);
secret_key!(
    /// Salt delivered with an MTK: the SRTP master salt.
    MtkSalt,
    MTK_SALT_LEN
);

/// Owned bytes of a key validity field.
pub type KvBytes = heapless::Vec<u8, MAX_KV_LEN>;

/// Key validity data kept from a Key data sub-payload (RFC 3830 §6.14). In MBMS the interval of
/// an MSK is expected to bound the MTK IDs it may protect (UNCONFIRMED, TS 33.246 MSK clause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValidityData {
    /// None.
    Null,
    /// SPI / MKI.
    Spi(KvBytes),
    /// Interval.
    Interval {
        /// Valid from.
        from: KvBytes,
        /// Valid to.
        to: KvBytes,
    },
}

impl KeyValidityData {
    fn from_wire(kv: &KeyValidity<'_>) -> Result<Self, Error> {
        let own = |b: &[u8]| KvBytes::from_slice(b).map_err(|_| Error::FieldTooLong);
        Ok(match *kv {
            KeyValidity::Null => KeyValidityData::Null,
            KeyValidity::Spi(s) => KeyValidityData::Spi(own(s)?),
            KeyValidity::Interval { from, to } => {
                KeyValidityData::Interval { from: own(from)?, to: own(to)? }
            }
        })
    }

    /// The wire view.
    pub fn as_wire(&self) -> KeyValidity<'_> {
        match self {
            KeyValidityData::Null => KeyValidity::Null,
            KeyValidityData::Spi(s) => KeyValidity::Spi(s),
            KeyValidityData::Interval { from, to } => KeyValidity::Interval { from, to },
        }
    }
}

/// Replay rule for MBMS counters (MGV-F, TS 33.246): a message is fresh only if its timestamp
/// (counter) is greater than the one stored for the MUK (MSK messages) or the MSK (MTK messages).
/// UNCONFIRMED: "strictly greater, then store" is the digest's reading.
pub const fn is_fresh(received: u64, stored: u64) -> bool {
    received > stored
}

// ---------------------------------------------------------------------------------------------
// Building

/// What the BM-SC puts into an MSK message besides the MSK itself.
#[derive(Debug, Clone, Copy)]
pub struct MskMessageParams<'a> {
    /// CSB ID of the header. Which identifier belongs here is UNCONFIRMED (TS 33.246 §6.3.2.1;
    /// Rel-6 CR 021 put the Key Group ID here), so the caller chooses.
    pub csb_id: u32,
    /// Ask for a verification message (MSK acknowledgement).
    pub v_bit: bool,
    /// Timestamp, the replay counter bound to the MUK.
    pub timestamp: Timestamp,
    /// RAND, at least 16 bytes.
    pub rand: &'a [u8],
    /// IDi: the BM-SC (NAF) FQDN.
    pub idi: &'a [u8],
    /// IDr: the B-TID of the bootstrap that produced the MUK.
    pub idr: &'a [u8],
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID.
    pub msk_id: MskId,
    /// CS ID map; MBMS uses the empty map (`CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT }`).
    pub cs_id_map: CsIdMap<'a>,
    /// SP payload; only with a non-empty map (RFC 4563 §5).
    pub policy: Option<SecurityPolicy<'a>>,
    /// Key validity of the MSK.
    pub validity: KeyValidity<'a>,
}

/// What the BM-SC puts into a solicited-pull message (TS 33.246 §6.3.2.2.4).
#[derive(Debug, Clone, Copy)]
pub struct SolicitedPullParams<'a> {
    /// CSB ID (as for [`MskMessageParams::csb_id`]).
    pub csb_id: u32,
    /// Timestamp (replay counter of the MUK).
    pub timestamp: Timestamp,
    /// RAND, at least 16 bytes.
    pub rand: &'a [u8],
    /// IDi: the BM-SC FQDN.
    pub idi: &'a [u8],
    /// IDr: the B-TID of the most recent MUK.
    pub idr: &'a [u8],
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// Key Group whose current MSK the UE shall fetch.
    pub key_group: u16,
}

/// What the BM-SC puts into an MTK message besides the MTK and salt.
#[derive(Debug, Clone, Copy)]
pub struct MtkMessageParams<'a> {
    /// CSB ID of the header (caller's choice, as for MSK messages).
    pub csb_id: u32,
    /// Timestamp, the replay counter bound to the MSK (TS 31.102 EF_MSK keeps 4 bytes: COUNTER).
    pub timestamp: Timestamp,
    /// RAND payload. UNCONFIRMED whether MTK messages carry one; without it the transport keys
    /// use an empty RAND in their label.
    pub rand: Option<&'a [u8]>,
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID of the MSK protecting this message.
    pub msk_id: MskId,
    /// MTK ID.
    pub mtk_id: MtkId,
    /// CS ID map: empty for download (RFC 4563 §5); SRTP-ID when an SP payload travels along.
    pub cs_id_map: CsIdMap<'a>,
    /// SP payload; only with a non-empty map (RFC 4563 §5).
    pub policy: Option<SecurityPolicy<'a>>,
    /// Key validity of the MTK.
    pub validity: KeyValidity<'a>,
}

impl<'a> MskMessageParams<'a> {
    /// The MSK message of this profile for MSK `msk_id` of Key Domain `key_domain_id`, from the
    /// BM-SC `idi` to the B-TID `idr`: CSB ID = the MSK ID's Key Group (Rel-6 CR 021, see
    /// [`MskMessageParams::csb_id`]), no verification message asked, the empty CS ID map of
    /// RFC 4563 §5, no policy, a null key validity. Change any field after.
    pub fn new(
        idi: &'a [u8],
        idr: &'a [u8],
        key_domain_id: KeyDomainId,
        msk_id: MskId,
        timestamp: Timestamp,
        rand: &'a [u8],
    ) -> Self {
        MskMessageParams {
            csb_id: u32::from(msk_id.key_group()),
            v_bit: false,
            timestamp,
            rand,
            idi,
            idr,
            key_domain_id,
            msk_id,
            cs_id_map: CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT },
            policy: None,
            validity: KeyValidity::Null,
        }
    }

    /// The same with the V bit (a verification message asked for) as given.
    pub fn with_v_bit(self, v_bit: bool) -> Self {
        MskMessageParams { v_bit, ..self }
    }
}

impl<'a> SolicitedPullParams<'a> {
    /// The solicited pull of this profile for Key Group `key_group` of Key Domain `key_domain_id`,
    /// from the BM-SC `idi` to the B-TID `idr` of the most recent MUK; CSB ID = the Key Group.
    pub fn new(
        idi: &'a [u8],
        idr: &'a [u8],
        key_domain_id: KeyDomainId,
        key_group: u16,
        timestamp: Timestamp,
        rand: &'a [u8],
    ) -> Self {
        SolicitedPullParams {
            csb_id: u32::from(key_group),
            timestamp,
            rand,
            idi,
            idr,
            key_domain_id,
            key_group,
        }
    }
}

impl<'a> MtkMessageParams<'a> {
    /// The MTK message of this profile for MTK `mtk_id` under MSK `msk_id` of Key Domain
    /// `key_domain_id`: CSB ID = the MSK ID's Key Group, no RAND, the empty CS ID map of RFC 4563
    /// §5, no policy, a null key validity. Change any field after.
    pub fn new(key_domain_id: KeyDomainId, msk_id: MskId, mtk_id: MtkId, timestamp: Timestamp) -> Self {
        MtkMessageParams {
            csb_id: u32::from(msk_id.key_group()),
            timestamp,
            rand: None,
            key_domain_id,
            msk_id,
            mtk_id,
            cs_id_map: CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT },
            policy: None,
            validity: KeyValidity::Null,
        }
    }
}

fn check_policy(map: &CsIdMap<'_>, policy: &Option<SecurityPolicy<'_>>) -> Result<(), Error> {
    if policy.is_some() && matches!(map, CsIdMap::Empty { .. }) {
        return Err(ProfileViolation::PolicyWithEmptyMap.into());
    }
    Ok(())
}

fn check_rand(rand: &[u8]) -> Result<(), Error> {
    if rand.len() < MIN_RAND_LEN {
        return Err(ProfileViolation::RandTooShort.into());
    }
    Ok(())
}

struct MskLike<'a> {
    csb_id: u32,
    v_bit: bool,
    timestamp: Timestamp,
    rand: &'a [u8],
    idi: &'a [u8],
    idr: &'a [u8],
    key_domain_id: KeyDomainId,
    msk_id: MskId,
    cs_id_map: CsIdMap<'a>,
    policy: Option<SecurityPolicy<'a>>,
}

fn build_msk_like(
    muk: &Muk,
    p: &MskLike<'_>,
    key_data: &[KeyData<'_>],
    out: &mut [u8],
) -> Result<usize, Error> {
    check_rand(p.rand)?;
    check_policy(&p.cs_id_map, &p.policy)?;
    let keys = TransportKeys::derive(PRF, muk.as_bytes(), p.csb_id, p.rand)?;
    let hdr =
        Hdr { data_type: DataType::PSK_INIT, v: p.v_bit, prf: PRF, csb_id: p.csb_id, cs_id_map: p.cs_id_map };
    let kd = p.key_domain_id.0;
    let msk = p.msk_id.to_bytes();
    let ids = [
        KeyId { key_id_type: KeyIdType::MBMS_KEY_DOMAIN_ID, value: &kd },
        KeyId { key_id_type: KeyIdType::MBMS_MSK_ID, value: &msk },
    ];
    let mut b = MessageBuilder::new(out, &hdr)?;
    b.push(&Payload::GeneralExtension(GeneralExtension::KeyIdInfo(KeyIds::from_items(&ids))))?
        .push(&Payload::Timestamp(p.timestamp))?
        .push(&Payload::Rand(Rand { rand: p.rand }))?
        .push(&Payload::Id(Id { id_type: IDI_TYPE, data: p.idi }))?
        .push(&Payload::Id(Id { id_type: IDR_TYPE, data: p.idr }))?;
    if let Some(sp) = &p.policy {
        b.push(&Payload::SecurityPolicy(*sp))?;
    }
    let prot = KemacProtection {
        encr_alg: ENCR_ALG,
        mac_alg: MAC_ALG,
        keys: &keys,
        csb_id: p.csb_id,
        timestamp: p.timestamp.as_u64(),
    };
    b.push_kemac(&prot, key_data)?;
    Ok(b.finish())
}

/// Builds an MSK message protected with the MUK into `out`; returns its length.
pub fn build_msk_message(
    muk: &Muk,
    params: &MskMessageParams<'_>,
    msk: &Msk,
    out: &mut [u8],
) -> Result<usize, Error> {
    if params.msk_id.is_solicited_pull() {
        return Err(ProfileViolation::SolicitedPullMismatch.into());
    }
    let key = KeyData { key_type: MSK_KEY_TYPE, key: msk.as_bytes(), salt: None, kv: params.validity };
    let p = MskLike {
        csb_id: params.csb_id,
        v_bit: params.v_bit,
        timestamp: params.timestamp,
        rand: params.rand,
        idi: params.idi,
        idr: params.idr,
        key_domain_id: params.key_domain_id,
        msk_id: params.msk_id,
        cs_id_map: params.cs_id_map,
        policy: params.policy,
    };
    build_msk_like(muk, &p, &[key], out)
}

/// Builds a solicited-pull message (MSK ID "0", KEMAC with no key data, MAC only) protected with
/// the most recent MUK; returns its length.
pub fn build_solicited_pull(
    muk: &Muk,
    params: &SolicitedPullParams<'_>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let p = MskLike {
        csb_id: params.csb_id,
        v_bit: false,
        timestamp: params.timestamp,
        rand: params.rand,
        idi: params.idi,
        idr: params.idr,
        key_domain_id: params.key_domain_id,
        msk_id: MskId::solicited_pull(params.key_group),
        cs_id_map: CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT },
        policy: None,
    };
    build_msk_like(muk, &p, &[], out)
}

/// Builds an MTK message protected with the MSK into `out`; returns its length.
pub fn build_mtk_message(
    msk: &Msk,
    params: &MtkMessageParams<'_>,
    mtk: &Mtk,
    salt: Option<&MtkSalt>,
    out: &mut [u8],
) -> Result<usize, Error> {
    if let Some(r) = params.rand {
        check_rand(r)?;
    }
    check_policy(&params.cs_id_map, &params.policy)?;
    let rand = params.rand.unwrap_or(&[]);
    let keys = TransportKeys::derive(PRF, msk.as_bytes(), params.csb_id, rand)?;
    let hdr = Hdr {
        data_type: DataType::PSK_INIT,
        v: false,
        prf: PRF,
        csb_id: params.csb_id,
        cs_id_map: params.cs_id_map,
    };
    let kd = params.key_domain_id.0;
    let msk_id = params.msk_id.to_bytes();
    let mtk_id = params.mtk_id.to_wire()?;
    let mtk_id = mtk_id.get(4 - MTK_ID_LEN..).ok_or(Error::BadLength)?;
    let ids = [
        KeyId { key_id_type: KeyIdType::MBMS_KEY_DOMAIN_ID, value: &kd },
        KeyId { key_id_type: KeyIdType::MBMS_MSK_ID, value: &msk_id },
        KeyId { key_id_type: KeyIdType::MBMS_MTK_ID, value: mtk_id },
    ];
    let mut b = MessageBuilder::new(out, &hdr)?;
    b.push(&Payload::GeneralExtension(GeneralExtension::KeyIdInfo(KeyIds::from_items(&ids))))?
        .push(&Payload::Timestamp(params.timestamp))?;
    if let Some(r) = params.rand {
        b.push(&Payload::Rand(Rand { rand: r }))?;
    }
    if let Some(sp) = &params.policy {
        b.push(&Payload::SecurityPolicy(*sp))?;
    }
    let key = KeyData {
        key_type: MTK_KEY_TYPE,
        key: mtk.as_bytes(),
        salt: salt.map(|s| &s.as_bytes()[..]),
        kv: params.validity,
    };
    let prot = KemacProtection {
        encr_alg: ENCR_ALG,
        mac_alg: MAC_ALG,
        keys: &keys,
        csb_id: params.csb_id,
        timestamp: params.timestamp.as_u64(),
    };
    b.push_kemac(&prot, &[key])?;
    Ok(b.finish())
}

// ---------------------------------------------------------------------------------------------
// Receiving

/// Fields common to MSK and MTK messages, gathered in one pass.
struct Scan<'a> {
    timestamp: Option<Timestamp>,
    rand: Option<&'a [u8]>,
    key_ids: Option<KeyIds<'a>>,
    idi: Option<Id<'a>>,
    idr: Option<Id<'a>>,
    policy: Option<SecurityPolicy<'a>>,
}

fn once<T>(slot: &mut Option<T>, v: T, t: PayloadType) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::DuplicatePayload(t));
    }
    *slot = Some(v);
    Ok(())
}

fn scan<'a>(msg: &Message<'a>) -> Result<Scan<'a>, Error> {
    let hdr = msg.hdr();
    if hdr.data_type != DataType::PSK_INIT {
        return Err(Error::WrongDataType(hdr.data_type.0));
    }
    if hdr.prf != PRF {
        return Err(Error::UnsupportedPrf(hdr.prf.to_u8()));
    }
    let mut s = Scan { timestamp: None, rand: None, key_ids: None, idi: None, idr: None, policy: None };
    let mut kemac_seen = false;
    for p in msg.payloads() {
        if kemac_seen {
            return Err(Error::PayloadAfterMac);
        }
        match p {
            Payload::Timestamp(t) => once(&mut s.timestamp, t, PayloadType::Timestamp)?,
            Payload::Rand(r) => once(&mut s.rand, r.rand, PayloadType::Rand)?,
            Payload::GeneralExtension(GeneralExtension::KeyIdInfo(ids)) => {
                once(&mut s.key_ids, ids, PayloadType::GeneralExtension)?
            }
            // Other extensions (vendor ID, SDP IDs) are allowed and ignored.
            Payload::GeneralExtension(GeneralExtension::Other { .. }) => {}
            Payload::Id(id) => {
                if s.idi.is_none() {
                    s.idi = Some(id);
                } else {
                    once(&mut s.idr, id, PayloadType::Id)?;
                }
            }
            Payload::SecurityPolicy(sp) => once(&mut s.policy, sp, PayloadType::SecurityPolicy)?,
            Payload::Kemac(_) => kemac_seen = true,
            other => return Err(Error::UnexpectedPayload(other.payload_type())),
        }
    }
    if !kemac_seen {
        return Err(Error::MissingPayload(PayloadType::Kemac));
    }
    if s.timestamp.is_none() {
        return Err(Error::MissingPayload(PayloadType::Timestamp));
    }
    if let Some(r) = s.rand {
        check_rand(r)?;
    }
    check_policy(&hdr.cs_id_map, &s.policy)?;
    Ok(s)
}

fn key_domain_and_msk(ids: &KeyIds<'_>) -> Result<(KeyDomainId, MskId), Error> {
    let kd = ids.find(KeyIdType::MBMS_KEY_DOMAIN_ID).ok_or(ProfileViolation::MissingKeyId)?;
    let kd: [u8; KEY_DOMAIN_ID_LEN] = kd.try_into().map_err(|_| ProfileViolation::BadKeyIdLength)?;
    let msk = ids.find(KeyIdType::MBMS_MSK_ID).ok_or(ProfileViolation::MissingKeyId)?;
    let msk: [u8; MSK_ID_LEN] = msk.try_into().map_err(|_| ProfileViolation::BadKeyIdLength)?;
    Ok((KeyDomainId(kd), MskId(u32::from_be_bytes(msk))))
}

fn check_protection(kemac: &crate::payload::Kemac<'_>) -> Result<(), Error> {
    if kemac.encr_alg != ENCR_ALG || kemac.mac_alg != MAC_ALG {
        return Err(ProfileViolation::NullProtection.into());
    }
    Ok(())
}

/// A parsed, not yet verified MSK message (or solicited pull). The card reads IDi / IDr to find
/// the MUK, then calls [`verify_and_decrypt_msk`].
#[derive(Debug, Clone, Copy)]
pub struct MskMessage<'a> {
    msg: Message<'a>,
    kemac: crate::payload::Kemac<'a>,
    timestamp: Timestamp,
    rand: &'a [u8],
    idi: Id<'a>,
    idr: Id<'a>,
    key_domain_id: KeyDomainId,
    msk_id: MskId,
    policy: Option<SecurityPolicy<'a>>,
}

impl<'a> MskMessage<'a> {
    /// The underlying message.
    pub fn message(&self) -> &Message<'a> {
        &self.msg
    }
    /// IDi (the BM-SC FQDN): with IDr it names the MUK (TS 31.102 EF_MUK "MUK ID").
    pub fn idi(&self) -> Id<'a> {
        self.idi
    }
    /// IDr (the B-TID).
    pub fn idr(&self) -> Id<'a> {
        self.idr
    }
    /// Key Domain ID.
    pub fn key_domain_id(&self) -> KeyDomainId {
        self.key_domain_id
    }
    /// MSK ID.
    pub fn msk_id(&self) -> MskId {
        self.msk_id
    }
    /// Timestamp (the MUK's replay counter).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// CSB ID.
    pub fn csb_id(&self) -> u32 {
        self.msg.hdr().csb_id
    }
    /// V bit: the BM-SC wants a verification message.
    pub fn v_bit(&self) -> bool {
        self.msg.hdr().v
    }
    /// RAND.
    pub fn rand(&self) -> &'a [u8] {
        self.rand
    }
    /// SP payload, if any.
    pub fn policy(&self) -> Option<SecurityPolicy<'a>> {
        self.policy
    }
    /// True for a solicited pull (MSK ID "0", no key data).
    pub fn is_solicited_pull(&self) -> bool {
        self.msk_id.is_solicited_pull()
    }
}

/// Parses an MSK message (or solicited pull) and checks it against the profile. Never panics.
pub fn parse_msk_message(bytes: &[u8]) -> Result<MskMessage<'_>, Error> {
    let msg = Message::parse(bytes)?;
    let s = scan(&msg)?;
    let kemac = msg.kemac().ok_or(Error::MissingPayload(PayloadType::Kemac))?;
    check_protection(&kemac)?;
    let rand = s.rand.ok_or(Error::MissingPayload(PayloadType::Rand))?;
    let idi = s.idi.ok_or(Error::MissingPayload(PayloadType::Id))?;
    let idr = s.idr.ok_or(Error::MissingPayload(PayloadType::Id))?;
    let ids = s.key_ids.ok_or(Error::MissingPayload(PayloadType::GeneralExtension))?;
    let (key_domain_id, msk_id) = key_domain_and_msk(&ids)?;
    if msk_id.is_solicited_pull() != kemac.encr_data.is_empty() {
        return Err(ProfileViolation::SolicitedPullMismatch.into());
    }
    let timestamp = s.timestamp.ok_or(Error::MissingPayload(PayloadType::Timestamp))?;
    Ok(MskMessage { msg, kemac, timestamp, rand, idi, idr, key_domain_id, msk_id, policy: s.policy })
}

/// An MSK delivered by a verified MSK message.
#[derive(Debug)]
pub struct MskDelivery {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID.
    pub msk_id: MskId,
    /// The MSK.
    pub msk: Msk,
    /// Key validity of the MSK.
    pub validity: KeyValidityData,
    /// Timestamp (replay counter of the MUK; the caller checks [`is_fresh`] and stores it).
    pub timestamp: Timestamp,
    /// CSB ID.
    pub csb_id: u32,
    /// The BM-SC asked for a verification message ([`build_verification_message`]).
    pub v_bit: bool,
}

/// A verified solicited pull: the UE shall request the current MSK of this Key Group over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolicitedPull {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// Key Group to request.
    pub key_group: u16,
    /// Timestamp (replay counter of the MUK).
    pub timestamp: Timestamp,
    /// CSB ID.
    pub csb_id: u32,
    /// V bit as received.
    pub v_bit: bool,
}

/// Outcome of a verified MSK message.
#[derive(Debug)]
pub enum MskUpdate {
    /// A new MSK.
    Msk(MskDelivery),
    /// A solicited pull (no key).
    SolicitedPull(SolicitedPull),
}

/// Verifies the MAC of an MSK message with the MUK and decrypts the MSK.
pub fn verify_and_decrypt_msk(muk: &Muk, msg: &MskMessage<'_>) -> Result<MskUpdate, Error> {
    let csb_id = msg.csb_id();
    let keys = TransportKeys::derive(PRF, muk.as_bytes(), csb_id, msg.rand)?;
    verify_kemac(&msg.msg, &keys)?;
    if msg.is_solicited_pull() {
        return Ok(MskUpdate::SolicitedPull(SolicitedPull {
            key_domain_id: msg.key_domain_id,
            key_group: msg.msk_id.key_group(),
            timestamp: msg.timestamp,
            csb_id,
            v_bit: msg.v_bit(),
        }));
    }
    let mut buf = [0u8; MAX_KEY_DATA_LEN];
    let result = (|| {
        let list = decrypt_key_data(&msg.kemac, &keys, csb_id, msg.timestamp.as_u64(), &mut buf)?;
        let mut it = list.iter();
        let kd = it.next().ok_or(ProfileViolation::BadKeyData)?;
        if it.next().is_some() || kd.key_type != MSK_KEY_TYPE || kd.salt.is_some() {
            return Err(ProfileViolation::BadKeyData.into());
        }
        Ok(MskDelivery {
            key_domain_id: msg.key_domain_id,
            msk_id: msg.msk_id,
            msk: Msk::from_slice(kd.key)?,
            validity: KeyValidityData::from_wire(&kd.kv)?,
            timestamp: msg.timestamp,
            csb_id,
            v_bit: msg.v_bit(),
        })
    })();
    buf.zeroize();
    result.map(MskUpdate::Msk)
}

/// The data appended to the verification message before its MAC (RFC 3830 §5.2):
/// `IDi || IDr || T` with the identity values and the timestamp value as carried.
fn verification_trailer<'t>(msg: &MskMessage<'t>, ts: &'t [u8]) -> [&'t [u8]; 3] {
    [msg.idi.data, msg.idr.data, ts]
}

/// Builds the verification message (MSK acknowledgement) for a verified MSK message; returns its
/// length. The card returns it from MSK Update mode when the V bit was set.
pub fn build_verification_message(muk: &Muk, msg: &MskMessage<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let keys = TransportKeys::derive(PRF, muk.as_bytes(), msg.csb_id(), msg.rand)?;
    let rx = msg.msg.hdr();
    let hdr = Hdr {
        data_type: DataType::PSK_VERIFY,
        v: false,
        prf: rx.prf,
        csb_id: rx.csb_id,
        cs_id_map: rx.cs_id_map,
    };
    let mut tsb = [0u8; 8];
    let n = msg.timestamp.value_bytes(&mut tsb);
    let ts = tsb.get(..n).ok_or(Error::BadLength)?;
    let mut b = MessageBuilder::new(out, &hdr)?;
    b.push(&Payload::Timestamp(msg.timestamp))?;
    if VERIFICATION_CARRIES_IDR {
        b.push(&Payload::Id(msg.idr))?;
    }
    b.push_verification(MAC_ALG, &keys, &verification_trailer(msg, ts))?;
    Ok(b.finish())
}

/// Verifies a verification message against the MSK message it acknowledges (BM-SC side).
pub fn verify_verification_message(muk: &Muk, msk_msg: &MskMessage<'_>, bytes: &[u8]) -> Result<(), Error> {
    let v = Message::parse(bytes)?;
    let hdr = v.hdr();
    if hdr.data_type != DataType::PSK_VERIFY {
        return Err(Error::WrongDataType(hdr.data_type.0));
    }
    if hdr.csb_id != msk_msg.csb_id() || v.timestamp() != Some(msk_msg.timestamp) {
        return Err(Error::MacMismatch);
    }
    let keys = TransportKeys::derive(PRF, muk.as_bytes(), msk_msg.csb_id(), msk_msg.rand)?;
    let mut tsb = [0u8; 8];
    let n = msk_msg.timestamp.value_bytes(&mut tsb);
    let ts = tsb.get(..n).ok_or(Error::BadLength)?;
    verify_verification(&v, &keys, &verification_trailer(msk_msg, ts))
}

/// A parsed, not yet verified MTK message. The card finds the MSK by Key Domain ID and MSK ID,
/// then calls [`verify_and_decrypt_mtk`].
#[derive(Debug, Clone, Copy)]
pub struct MtkMessage<'a> {
    msg: Message<'a>,
    kemac: crate::payload::Kemac<'a>,
    timestamp: Timestamp,
    rand: &'a [u8],
    key_domain_id: KeyDomainId,
    msk_id: MskId,
    mtk_id: MtkId,
    policy: Option<SecurityPolicy<'a>>,
}

impl<'a> MtkMessage<'a> {
    /// The underlying message.
    pub fn message(&self) -> &Message<'a> {
        &self.msg
    }
    /// Key Domain ID.
    pub fn key_domain_id(&self) -> KeyDomainId {
        self.key_domain_id
    }
    /// MSK ID.
    pub fn msk_id(&self) -> MskId {
        self.msk_id
    }
    /// MTK ID.
    pub fn mtk_id(&self) -> MtkId {
        self.mtk_id
    }
    /// Timestamp (the MSK's replay counter).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// CSB ID.
    pub fn csb_id(&self) -> u32 {
        self.msg.hdr().csb_id
    }
    /// RAND (empty when the message carries none).
    pub fn rand(&self) -> &'a [u8] {
        self.rand
    }
    /// SP payload, if any.
    pub fn policy(&self) -> Option<SecurityPolicy<'a>> {
        self.policy
    }
}

/// Parses an MTK message and checks it against the profile. Never panics.
pub fn parse_mtk_message(bytes: &[u8]) -> Result<MtkMessage<'_>, Error> {
    let msg = Message::parse(bytes)?;
    let s = scan(&msg)?;
    let kemac = msg.kemac().ok_or(Error::MissingPayload(PayloadType::Kemac))?;
    check_protection(&kemac)?;
    let ids = s.key_ids.ok_or(Error::MissingPayload(PayloadType::GeneralExtension))?;
    let (key_domain_id, msk_id) = key_domain_and_msk(&ids)?;
    let mtk_id = MtkId::from_wire(ids.find(KeyIdType::MBMS_MTK_ID).ok_or(ProfileViolation::MissingKeyId)?)?;
    if kemac.encr_data.is_empty() {
        return Err(ProfileViolation::BadKeyData.into());
    }
    let timestamp = s.timestamp.ok_or(Error::MissingPayload(PayloadType::Timestamp))?;
    Ok(MtkMessage {
        msg,
        kemac,
        timestamp,
        rand: s.rand.unwrap_or(&[]),
        key_domain_id,
        msk_id,
        mtk_id,
        policy: s.policy,
    })
}

/// An MTK delivered by a verified MTK message.
#[derive(Debug)]
pub struct MtkDelivery {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID.
    pub msk_id: MskId,
    /// MTK ID (the caller checks that it is newer than the stored one).
    pub mtk_id: MtkId,
    /// The MTK.
    pub mtk: Mtk,
    /// The salt, if the message carried one.
    pub salt: Option<MtkSalt>,
    /// TGK or TEK, as carried.
    pub key_type: KeyType,
    /// Key validity of the MTK.
    pub validity: KeyValidityData,
    /// Timestamp (replay counter of the MSK).
    pub timestamp: Timestamp,
}

impl MtkDelivery {
    /// Writes `MTK || salt` (the salt only if present), the MTK Generation response data of the
    /// card (TS 31.102 §7.1.2); returns the length.
    pub fn write_mtk_and_salt(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut n = MTK_LEN;
        out.get_mut(..MTK_LEN).ok_or(Error::BufferTooSmall)?.copy_from_slice(self.mtk.as_bytes());
        if let Some(s) = &self.salt {
            out.get_mut(n..n + MTK_SALT_LEN).ok_or(Error::BufferTooSmall)?.copy_from_slice(s.as_bytes());
            n += MTK_SALT_LEN;
        }
        Ok(n)
    }
}

/// Verifies the MAC of an MTK message with the MSK and decrypts the MTK (and salt).
pub fn verify_and_decrypt_mtk(msk: &Msk, msg: &MtkMessage<'_>) -> Result<MtkDelivery, Error> {
    let csb_id = msg.csb_id();
    let keys = TransportKeys::derive(PRF, msk.as_bytes(), csb_id, msg.rand)?;
    verify_kemac(&msg.msg, &keys)?;
    let mut buf = [0u8; MAX_KEY_DATA_LEN];
    let result = (|| {
        let list = decrypt_key_data(&msg.kemac, &keys, csb_id, msg.timestamp.as_u64(), &mut buf)?;
        let mut it = list.iter();
        let kd = it.next().ok_or(ProfileViolation::BadKeyData)?;
        if it.next().is_some() {
            return Err(ProfileViolation::BadKeyData.into());
        }
        Ok(MtkDelivery {
            key_domain_id: msg.key_domain_id,
            msk_id: msg.msk_id,
            mtk_id: msg.mtk_id,
            mtk: Mtk::from_slice(kd.key)?,
            salt: kd.salt.map(MtkSalt::from_slice).transpose()?,
            key_type: kd.key_type,
            validity: KeyValidityData::from_wire(&kd.kv)?,
            timestamp: msg.timestamp,
        })
    })();
    buf.zeroize();
    result
}

/// The SRTP MKI of an MTK: MSK ID ‖ MTK ID, big-endian ([`profile::MKI_LEN`] bytes).
pub fn mki(msk_id: MskId, mtk_id: MtkId) -> [u8; profile::MKI_LEN] {
    let mut out = [0u8; profile::MKI_LEN];
    let (msk, mtk) = out.split_at_mut(profile::MSK_ID_LEN);
    msk.copy_from_slice(&msk_id.to_bytes());
    let wide = mtk_id.0.to_be_bytes();
    mtk.copy_from_slice(wide.get(wide.len() - profile::MTK_ID_LEN..).unwrap_or(&[]));
    out
}
