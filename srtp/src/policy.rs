//! Crypto suites and the SRTP cryptographic context parameters (RFC 3711 §3.2, §8.2; RFC 4568 §6.2).
//!
//! Values RFC 3711 leaves to the implementation are taken from libsrtp and named here, in one place.

use crate::error::{Error, Result};

/// Master key length of the AES-CM-128 suites, in bytes (RFC 3711 §8.2, n_e = 128 bits).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length, in bytes (RFC 3711 §8.2, n_s = 112 bits).
pub const MASTER_SALT_LEN: usize = 14;
/// Session authentication key length for HMAC-SHA1, in bytes (RFC 3711 §8.2, n_a = 160 bits).
pub const SESSION_AUTH_KEY_LEN: usize = 20;

/// At most 2^48 SRTP packets per master key (RFC 3711 §9.2).
pub const SRTP_MAX_PACKETS_PER_KEY: u64 = 1 << 48;
/// At most 2^31 SRTCP packets per master key (RFC 3711 §9.2).
pub const SRTCP_MAX_PACKETS_PER_KEY: u64 = 1 << 31;
/// Largest SRTCP index (31 bits, RFC 3711 §3.4). libsrtp refuses to send beyond it.
pub const SRTCP_INDEX_MAX: u32 = 0x7fff_ffff;

/// Default replay window, in packets: libsrtp's default (`window_size = 128`); RFC 3711 §3.3.2
/// asks for at least 64.
pub const DEFAULT_REPLAY_WINDOW: usize = 128;
/// Smallest replay window libsrtp accepts (RFC 3711 §3.3.2 minimum of 64).
pub const MIN_REPLAY_WINDOW: usize = 64;
/// Largest replay window libsrtp accepts (`window_size < 0x8000`).
pub const MAX_REPLAY_WINDOW: usize = 0x7fff;
/// libsrtp allocates the replay bitmap in 32-bit words and uses all of it, so a window of `w`
/// packets behaves as one of `w` rounded up to a multiple of 32. We do the same, so that replay
/// decisions agree packet for packet.
pub const REPLAY_WINDOW_GRANULARITY: usize = 32;
/// Largest key derivation rate: 2^24 (RFC 3711 §4.3.1: 0 or a power of 2 from 1 to 2^24).
pub const MAX_KEY_DERIVATION_RATE: u64 = 1 << 24;
/// Largest MKI this implementation accepts, in bytes (libsrtp's `SRTP_MAX_MKI_LEN`).
pub const MAX_MKI_LEN: usize = 128;
/// SRTCP tag length of every suite here, in bytes. RFC 3711 §5.2 gives HMAC-SHA1 an 80-bit tag;
/// the `_32` profiles shorten only the SRTP tag (RFC 4568 §6.2.1 and libsrtp's
/// `srtp_crypto_policy_set_from_profile_for_rtcp`, which keeps SRTCP at 80 bits).
pub const SRTCP_TAG_LEN: usize = 10;

/// The SRTP crypto suites (RFC 4568 §6.2 names; RFC 3711 §4.1.1 AES-CM, §4.2.1 HMAC-SHA1).
///
/// All use a 128-bit master key and a 112-bit master salt; SRTCP always carries an 80-bit tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES_CM_128_HMAC_SHA1_80: AES-128 counter mode, 80-bit SRTP tag.
    Aes128CmHmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32: AES-128 counter mode, 32-bit SRTP tag (SRTCP keeps 80 bits).
    Aes128CmHmacSha1_32,
    /// NULL_HMAC_SHA1_80: no encryption, 80-bit SRTP tag (RFC 3711 §4.1.3 NULL cipher).
    NullHmacSha1_80,
    /// NULL_HMAC_SHA1_32: no encryption, 32-bit SRTP tag (SRTCP keeps 80 bits).
    NullHmacSha1_32,
}

impl CryptoSuite {
    /// Every suite, for iteration in tests and user interfaces.
    pub const ALL: [CryptoSuite; 4] = [
        CryptoSuite::Aes128CmHmacSha1_80,
        CryptoSuite::Aes128CmHmacSha1_32,
        CryptoSuite::NullHmacSha1_80,
        CryptoSuite::NullHmacSha1_32,
    ];

    /// SRTP authentication tag length in bytes (10 or 4).
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            CryptoSuite::Aes128CmHmacSha1_80 | CryptoSuite::NullHmacSha1_80 => 10,
            CryptoSuite::Aes128CmHmacSha1_32 | CryptoSuite::NullHmacSha1_32 => 4,
        }
    }

    /// SRTCP authentication tag length in bytes: always [`SRTCP_TAG_LEN`].
    pub const fn rtcp_tag_len(self) -> usize {
        SRTCP_TAG_LEN
    }

    /// Whether the payload is encrypted (AES-CM) or only authenticated (NULL cipher).
    pub const fn encrypts(self) -> bool {
        matches!(self, CryptoSuite::Aes128CmHmacSha1_80 | CryptoSuite::Aes128CmHmacSha1_32)
    }

    /// The RFC 4568 / SDES name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub const fn name(self) -> &'static str {
        match self {
            CryptoSuite::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            CryptoSuite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    /// The suite with this RFC 4568 name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl core::fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The transform-independent and transform-dependent parameters of an SRTP cryptographic
/// context (RFC 3711 §3.2), shared by all streams (SSRCs) of one [`crate::SrtpContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Cipher and authentication transform.
    pub suite: CryptoSuite,
    /// MKI length in bytes; 0 means no MKI field. Fixed for the life of the context (§3.2.1).
    pub mki_len: usize,
    /// Key derivation rate: 0 (derive once) or 2^t with t in 0..=24 (RFC 3711 §4.3.1).
    pub key_derivation_rate: u64,
    /// SRTP replay window in packets ([`MIN_REPLAY_WINDOW`]..=[`MAX_REPLAY_WINDOW`]).
    pub replay_window: usize,
    /// SRTCP replay window in packets (same range; libsrtp fixes it at 128).
    pub rtcp_replay_window: usize,
    /// Let the sender protect the same SRTP index twice (retransmissions; libsrtp's
    /// `allow_repeat_tx`). Off by default: re-using an index re-uses keystream.
    pub allow_repeat_tx: bool,
    /// SRTP packets one master key may protect or accept ([`SRTP_MAX_PACKETS_PER_KEY`] by default;
    /// a lower value forces earlier re-keying).
    pub rtp_packets_per_key: u64,
    /// SRTCP packets one master key may protect or accept ([`SRTCP_MAX_PACKETS_PER_KEY`] by default).
    pub rtcp_packets_per_key: u64,
}

impl Policy {
    /// A policy with the given suite and the defaults: no MKI, key derivation rate 0, replay
    /// windows of 128, no repeated sending, the RFC 3711 §9.2 key usage limits.
    pub const fn new(suite: CryptoSuite) -> Self {
        Policy {
            suite,
            mki_len: 0,
            key_derivation_rate: 0,
            replay_window: DEFAULT_REPLAY_WINDOW,
            rtcp_replay_window: DEFAULT_REPLAY_WINDOW,
            allow_repeat_tx: false,
            rtp_packets_per_key: SRTP_MAX_PACKETS_PER_KEY,
            rtcp_packets_per_key: SRTCP_MAX_PACKETS_PER_KEY,
        }
    }

    /// Sets the MKI length in bytes.
    pub const fn with_mki_len(mut self, mki_len: usize) -> Self {
        self.mki_len = mki_len;
        self
    }

    /// Sets the key derivation rate.
    pub const fn with_key_derivation_rate(mut self, kdr: u64) -> Self {
        self.key_derivation_rate = kdr;
        self
    }

    /// Sets the SRTP replay window.
    pub const fn with_replay_window(mut self, packets: usize) -> Self {
        self.replay_window = packets;
        self
    }

    /// Sets the SRTCP replay window.
    pub const fn with_rtcp_replay_window(mut self, packets: usize) -> Self {
        self.rtcp_replay_window = packets;
        self
    }

    /// Allows or forbids protecting the same SRTP index twice.
    pub const fn with_allow_repeat_tx(mut self, allow: bool) -> Self {
        self.allow_repeat_tx = allow;
        self
    }

    /// Sets the per-master-key packet limits (SRTP, SRTCP); each at most the RFC 3711 §9.2 value.
    pub const fn with_key_usage_limits(mut self, rtp_packets: u64, rtcp_packets: u64) -> Self {
        self.rtp_packets_per_key = rtp_packets;
        self.rtcp_packets_per_key = rtcp_packets;
        self
    }

    /// Bytes SRTP adds to an RTP packet: MKI and tag.
    pub const fn rtp_overhead(&self) -> usize {
        self.mki_len + self.suite.rtp_tag_len()
    }

    /// Bytes SRTCP adds to an RTCP packet: E||SRTCP index, MKI and tag.
    pub const fn rtcp_overhead(&self) -> usize {
        4 + self.mki_len + self.suite.rtcp_tag_len()
    }

    /// Checks every value against its allowed range.
    pub fn validate(&self) -> Result<()> {
        let kdr = self.key_derivation_rate;
        if kdr != 0 && (!kdr.is_power_of_two() || kdr > MAX_KEY_DERIVATION_RATE) {
            return Err(Error::InvalidPolicy("key derivation rate must be 0 or 2^t with t <= 24"));
        }
        if self.mki_len > MAX_MKI_LEN {
            return Err(Error::InvalidPolicy("MKI longer than 128 bytes"));
        }
        for w in [self.replay_window, self.rtcp_replay_window] {
            if !(MIN_REPLAY_WINDOW..=MAX_REPLAY_WINDOW).contains(&w) {
                return Err(Error::InvalidPolicy("replay window must be 64..=32767 packets"));
            }
        }
        if self.rtp_packets_per_key == 0 || self.rtp_packets_per_key > SRTP_MAX_PACKETS_PER_KEY {
            return Err(Error::InvalidPolicy("SRTP key usage limit must be 1..=2^48"));
        }
        if self.rtcp_packets_per_key == 0 || self.rtcp_packets_per_key > SRTCP_MAX_PACKETS_PER_KEY {
            return Err(Error::InvalidPolicy("SRTCP key usage limit must be 1..=2^31"));
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(CryptoSuite::Aes128CmHmacSha1_80)
    }
}
