//! The SRTP/SRTCP cryptographic context (RFC 3711 §3.2, §3.3, §3.4): protect and unprotect in
//! place, per-SSRC stream state, several master keys looked up by MKI.
//!
//! One context serves every SSRC, like a libsrtp session whose policy has `ssrc_any_outbound`
//! and `ssrc_any_inbound`: streams are created on the first packet, the outbound ones when a
//! packet is protected, the inbound ones only once a packet has authenticated.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

use aes::Aes128;
use aes::cipher::KeyInit;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::aes_cm::packet_iv;
use crate::error::{Error, Result};
use crate::kdf::{RTCP_LABELS, RTP_LABELS, SessionKeys, key_derivation_r};
use crate::key::MasterKey;
use crate::policy::{MASTER_SALT_LEN, Policy, SRTCP_INDEX_MAX};
use crate::replay::{ReplayWindow, estimate_index};
use crate::rtp::{RTCP_HEADER_LEN, RtcpHeader, RtpHeader};
use crate::transform::{
    self, SHA1_DIGEST, Strategies, Strategy, authenticate_and_keystream_with, encrypt_and_authenticate_with,
};

/// The SRTCP E flag: top bit of the word before the MKI and tag (RFC 3711 §3.4).
const SRTCP_E_BIT: u32 = 0x8000_0000;
/// Length of the E || SRTCP index word.
const SRTCP_TRAILER_LEN: usize = 4;
/// The keystream of a received packet is computed beside its MAC into a buffer of this size and applied once the tag verifies; a longer encrypted portion is decrypted after the check
/// instead. A 1500-byte MTU fits with room to spare. The buffer holds keystream only, never a key.
const KEYSTREAM_BUFFER: usize = 2048;

/// The stream tables' hash of an SSRC: a folded multiply of the SSRC XOR a per-context random key
/// (the folded-multiply construction of `foldhash`/`ahash`). SipHash, the standard library's
/// default, cost as much per packet as the whole SRTP framing; a keyed hash still keeps the
/// bucket of an SSRC unpredictable, and inbound streams only appear once a packet authenticated.
#[derive(Clone, Copy)]
struct SsrcHash {
    key: u64,
}

impl SsrcHash {
    fn new() -> Self {
        SsrcHash { key: RandomState::new().hash_one(0x5352_5450_u32) }
    }
}

impl BuildHasher for SsrcHash {
    type Hasher = SsrcHasher;
    fn build_hasher(&self) -> SsrcHasher {
        SsrcHasher { key: self.key, hash: 0 }
    }
}

/// See [`SsrcHash`].
struct SsrcHasher {
    key: u64,
    hash: u64,
}

impl Hasher for SsrcHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
        let full = u128::from(n ^ self.key ^ self.hash) * u128::from(MULTIPLIER);
        self.hash = (full as u64) ^ ((full >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Per-SSRC state.
type Streams<T> = HashMap<u32, T, SsrcHash>;

/// Whether the first `tag.len()` bytes of `mac` equal `tag`, in constant time.
fn tag_matches(mac: &[u8; SHA1_DIGEST], tag: &[u8]) -> bool {
    mac.get(..tag.len()).is_some_and(|m| bool::from(m.ct_eq(tag)))
}

/// Decrypts `data` after a verified tag: with the keystream computed beside the MAC, or afresh.
fn decrypt(keys: &SessionKeys, iv: &[u8; 16], data: &mut [u8], keystream: &[u8], computed: Option<usize>) {
    match computed {
        Some(n) => transform::apply(data, &keystream[..n]),
        None => transform::xor_keystream(&keys.cipher, iv, data),
    }
}

/// The tag of a received packet, and the keystream of its encrypted portion when the strategy
/// computes it beside the MAC ([`decrypt`] applies it once the tag has verified). With
/// [`Strategy::Sequential`] only the MAC is computed here and the keystream after the check.
#[allow(clippy::too_many_arguments)]
fn authenticate(
    strategy: Strategy,
    keys: &SessionKeys,
    iv: &[u8; 16],
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
    keystream: &mut [u8],
) -> ([u8; SHA1_DIGEST], Option<usize>) {
    if strategy == Strategy::Sequential {
        (keys.auth.mac(packet, trailer), None)
    } else {
        authenticate_and_keystream_with(
            strategy,
            &keys.cipher,
            iv,
            &keys.auth,
            packet,
            enc_start,
            trailer,
            keystream,
        )
    }
}

/// Which side of a stream: the state of protected (sent) and unprotected (received) streams is
/// kept apart, even for the same SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Streams this context protects.
    Outbound,
    /// Streams this context unprotects.
    Inbound,
}

/// One master key with its cached session keys and packet counters (RFC 3711 §3.2.1: "for each
/// master key, a counter of the number of SRTP packets that have been processed").
struct KeyEntry {
    mki: Vec<u8>,
    master: Aes128,
    master_salt: [u8; MASTER_SALT_LEN],
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_packets: u64,
    rtcp_packets: u64,
}

impl KeyEntry {
    fn new(key: &MasterKey) -> Self {
        let master = Aes128::new((&key.key).into());
        let rtp = SessionKeys::derive(&master, &key.salt, RTP_LABELS, 0);
        let rtcp = SessionKeys::derive(&master, &key.salt, RTCP_LABELS, 0);
        KeyEntry {
            mki: key.mki.clone(),
            master,
            master_salt: key.salt,
            rtp,
            rtcp,
            rtp_packets: 0,
            rtcp_packets: 0,
        }
    }

    /// Session keys for `r` when the cached ones belong to another `r` (key derivation rate > 0).
    fn rederive(&self, rtcp: bool, r: u64) -> Option<SessionKeys> {
        let (cached, labels) = if rtcp { (&self.rtcp, RTCP_LABELS) } else { (&self.rtp, RTP_LABELS) };
        (cached.r != r).then(|| SessionKeys::derive(&self.master, &self.master_salt, labels, r))
    }
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.master_salt.zeroize();
    }
}

/// Keeps freshly derived session keys if they are newer than the cached ones, so that a late packet
/// from the previous key derivation period does not push the current keys out.
fn cache(slot: &mut SessionKeys, fresh: Option<SessionKeys>) {
    if let Some(keys) = fresh
        && keys.r > slot.r
    {
        *slot = keys;
    }
}

/// An SRTP/SRTCP context: one [`Policy`], one or more master keys (selected by MKI on receipt,
/// by [`SrtpContext::set_active_master_key`] for sending), and the state of every stream.
pub struct SrtpContext {
    policy: Policy,
    keys: Vec<KeyEntry>,
    active: Option<usize>,
    rtp_out: Streams<ReplayWindow>,
    rtp_in: Streams<ReplayWindow>,
    rtcp_out: Streams<u32>,
    rtcp_in: Streams<ReplayWindow>,
    /// The keystream of the packet being unprotected (see [`KEYSTREAM_BUFFER`]).
    keystream: Box<[u8; KEYSTREAM_BUFFER]>,
    /// How AES-CM and HMAC-SHA1 are scheduled ([`Strategy::for_this_cpu`] at creation).
    strategies: Strategies,
}

impl core::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("policy", &self.policy)
            .field("master_keys", &self.keys.len())
            .field("active_mki", &self.active_mki())
            .field("rtp_streams_out", &self.rtp_out.len())
            .field("rtp_streams_in", &self.rtp_in.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context with `policy` and the given master keys; the first key is the active one for
    /// sending. Every MKI must have the policy's MKI length and be unique (so without an MKI the
    /// context holds exactly one key).
    pub fn new(policy: Policy, master_keys: impl IntoIterator<Item = MasterKey>) -> Result<Self> {
        policy.validate()?;
        let hash = SsrcHash::new();
        let mut ctx = SrtpContext {
            policy,
            keys: Vec::new(),
            active: None,
            rtp_out: Streams::with_hasher(hash),
            rtp_in: Streams::with_hasher(hash),
            rtcp_out: Streams::with_hasher(hash),
            rtcp_in: Streams::with_hasher(hash),
            keystream: Box::new([0u8; KEYSTREAM_BUFFER]),
            strategies: Strategy::for_this_cpu(),
        };
        for key in master_keys {
            ctx.add_master_key(key)?;
        }
        Ok(ctx)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How this context schedules AES-CM and HMAC-SHA1: [`Strategy::for_this_cpu`] unless set.
    pub fn strategies(&self) -> Strategies {
        self.strategies
    }

    /// Schedules AES-CM and HMAC-SHA1 as `strategies` says (every strategy gives the same
    /// packets; only the speed differs). For measuring and testing the strategies.
    pub fn set_strategies(&mut self, strategies: Strategies) {
        self.strategies = strategies;
    }

    /// Adds a master key (e.g. a new MTK). It becomes the active key if there was none.
    pub fn add_master_key(&mut self, key: MasterKey) -> Result<()> {
        if key.mki.len() != self.policy.mki_len {
            return Err(Error::MkiLength { got: key.mki.len(), expected: self.policy.mki_len });
        }
        if self.keys.iter().any(|k| k.mki == key.mki) {
            return Err(Error::DuplicateMki);
        }
        self.keys.push(KeyEntry::new(&key));
        if self.active.is_none() {
            self.active = Some(self.keys.len() - 1);
        }
        Ok(())
    }

    /// Removes the master key with this MKI; packets that carry it are then refused with
    /// [`Error::UnknownMki`]. If it was the active key, the oldest remaining key becomes active.
    pub fn remove_master_key(&mut self, mki: &[u8]) -> Result<()> {
        let at = self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)?;
        self.keys.remove(at);
        self.active = match self.active {
            Some(a) if a == at => (!self.keys.is_empty()).then_some(0),
            Some(a) if a > at => Some(a - 1),
            other => other,
        };
        Ok(())
    }

    /// Makes the master key with this MKI the one [`Self::protect_rtp`] and [`Self::protect_rtcp`]
    /// use.
    pub fn set_active_master_key(&mut self, mki: &[u8]) -> Result<()> {
        let at = self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)?;
        self.active = Some(at);
        Ok(())
    }

    /// MKI of the active master key.
    pub fn active_mki(&self) -> Option<&[u8]> {
        self.active.and_then(|a| self.keys.get(a)).map(|k| k.mki.as_slice())
    }

    /// MKIs of all master keys, oldest first.
    pub fn mkis(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().map(|k| k.mki.as_slice())
    }

    /// Packets processed so far with the master key of this MKI: (SRTP, SRTCP), both directions.
    pub fn master_key_usage(&self, mki: &[u8]) -> Option<(u64, u64)> {
        self.keys.iter().find(|k| k.mki == mki).map(|k| (k.rtp_packets, k.rtcp_packets))
    }

    /// The highest SRTP packet index (ROC * 2^16 + SEQ) of a stream, if the stream exists.
    pub fn rtp_index(&self, direction: Direction, ssrc: u32) -> Option<u64> {
        self.rtp_streams(direction).get(&ssrc).map(ReplayWindow::highest)
    }

    /// Sets the ROC of a stream, keeping its last SEQ and forgetting its replay list (libsrtp
    /// `srtp_set_stream_roc`); creates the stream (with SEQ 0) if it does not exist. A receiver that
    /// joins a running stream learns the ROC out of band this way. The ROC never moves backwards:
    /// a smaller ROC gives [`Error::ReplayOld`].
    pub fn set_rtp_roc(&mut self, direction: Direction, ssrc: u32, roc: u32) -> Result<()> {
        let window = self.policy.replay_window;
        let streams = match direction {
            Direction::Outbound => &mut self.rtp_out,
            Direction::Inbound => &mut self.rtp_in,
        };
        let stream = streams.entry(ssrc).or_insert_with(|| ReplayWindow::new(window));
        let highest = stream.highest();
        if u64::from(roc) < highest >> 16 {
            return Err(Error::ReplayOld);
        }
        stream.reset((u64::from(roc) << 16) | (highest & 0xffff));
        Ok(())
    }

    /// The SRTCP index of a stream: the last one sent (outbound) or the highest one accepted
    /// (inbound).
    pub fn srtcp_index(&self, direction: Direction, ssrc: u32) -> Option<u32> {
        match direction {
            Direction::Outbound => self.rtcp_out.get(&ssrc).copied(),
            Direction::Inbound => self.rtcp_in.get(&ssrc).map(|w| w.highest() as u32),
        }
    }

    /// Forgets every state kept for this SSRC (both directions, SRTP and SRTCP).
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.rtp_out.remove(&ssrc);
        self.rtp_in.remove(&ssrc);
        self.rtcp_out.remove(&ssrc);
        self.rtcp_in.remove(&ssrc);
    }

    fn rtp_streams(&self, direction: Direction) -> &Streams<ReplayWindow> {
        match direction {
            Direction::Outbound => &self.rtp_out,
            Direction::Inbound => &self.rtp_in,
        }
    }

    fn key_for_mki(&self, mki: &[u8]) -> Result<usize> {
        if self.keys.is_empty() {
            return Err(Error::NoMasterKey);
        }
        // Without an MKI (the usual case) the context holds exactly one key.
        if mki.is_empty() && self.keys.len() == 1 && self.keys[0].mki.is_empty() {
            return Ok(0);
        }
        self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)
    }

    /// Protects the RTP packet in `buf[..len]` in place (RFC 3711 §3.3): encrypts the payload
    /// (everything after the CSRC list and header extension, padding included), appends the MKI
    /// and the tag, and returns the SRTP packet length. `buf` must have room for
    /// [`Policy::rtp_overhead`] more bytes. On error `buf` is unchanged.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let capacity = buf.len();
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall { needed: len, capacity })?;
        let hdr = RtpHeader::parse(packet)?;
        let mki_len = self.policy.mki_len;
        let tag_len = self.policy.suite.rtp_tag_len();
        let total = len + mki_len + tag_len;
        if capacity < total {
            return Err(Error::BufferTooSmall { needed: total, capacity });
        }
        let entry = self.active.and_then(|a| self.keys.get_mut(a)).ok_or(Error::NoMasterKey)?;
        if entry.rtp_packets >= self.policy.rtp_packets_per_key {
            return Err(Error::KeyUsageLimit);
        }

        // The sender estimates the index from SEQ as the receiver will, and refuses to re-use one.
        let seq = hdr.sequence_number;
        let (index, delta) = match self.rtp_out.get(&hdr.ssrc) {
            Some(stream) => {
                let (index, delta) = estimate_index(stream.highest(), seq);
                match stream.check(delta) {
                    Err(Error::ReplayDuplicate) if self.policy.allow_repeat_tx => {}
                    other => other?,
                }
                (index, delta)
            }
            None => (u64::from(seq), i64::from(seq)),
        };
        let roc = (index >> 16) as u32;
        let fresh = entry.rederive(false, key_derivation_r(index, self.policy.key_derivation_rate));
        let keys = fresh.as_ref().unwrap_or(&entry.rtp);

        let roc_bytes = roc.to_be_bytes();
        let tag = if self.policy.suite.encrypts() {
            let iv = packet_iv(&keys.salt, hdr.ssrc, index);
            encrypt_and_authenticate_with(
                self.strategies.protect,
                &keys.cipher,
                &iv,
                &keys.auth,
                &mut buf[..len],
                hdr.header_len,
                &roc_bytes,
            )
        } else {
            keys.auth.mac(&buf[..len], &roc_bytes)
        };
        buf[len..len + mki_len].copy_from_slice(&entry.mki);
        buf[len + mki_len..total].copy_from_slice(&tag[..tag_len]);

        cache(&mut entry.rtp, fresh);
        entry.rtp_packets += 1;
        let window = self.policy.replay_window;
        self.rtp_out.entry(hdr.ssrc).or_insert_with(|| ReplayWindow::new(window)).add(delta);
        Ok(total)
    }

    /// [`Self::protect_rtp`] on a `Vec`, growing it by the MKI and tag.
    pub fn protect_rtp_vec(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let len = packet.len();
        packet.resize(len + self.policy.rtp_overhead(), 0);
        let result = self.protect_rtp(packet, len);
        packet.truncate(*result.as_ref().unwrap_or(&len));
        result.map(|_| ())
    }

    /// Unprotects the SRTP packet in `buf` in place (RFC 3711 §3.3): finds the master key by MKI,
    /// estimates the index, checks the replay list, verifies the tag, decrypts, and only then
    /// updates ROC, replay list and counters. Returns the RTP packet length (`buf[..n]`). On error
    /// `buf` and the context are unchanged.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len();
        let hdr = RtpHeader::parse(buf)?;
        let mki_len = self.policy.mki_len;
        let tag_len = self.policy.suite.rtp_tag_len();
        let needed = hdr.header_len + mki_len + tag_len;
        if len < needed {
            return Err(Error::TooShort { len, needed });
        }
        let auth_end = len - mki_len - tag_len;
        let key_at = self.key_for_mki(&buf[auth_end..auth_end + mki_len])?;

        let seq = hdr.sequence_number;
        let (index, delta) = match self.rtp_in.get(&hdr.ssrc) {
            Some(stream) => {
                let (index, delta) = estimate_index(stream.highest(), seq);
                stream.check(delta)?;
                (index, delta)
            }
            None => (u64::from(seq), i64::from(seq)),
        };
        let entry = self.keys.get_mut(key_at).ok_or(Error::NoMasterKey)?;
        if entry.rtp_packets >= self.policy.rtp_packets_per_key {
            return Err(Error::KeyUsageLimit);
        }
        let roc = (index >> 16) as u32;
        let fresh = entry.rederive(false, key_derivation_r(index, self.policy.key_derivation_rate));
        let keys = fresh.as_ref().unwrap_or(&entry.rtp);

        let roc_bytes = roc.to_be_bytes();
        let encrypts = self.policy.suite.encrypts();
        let iv = packet_iv(&keys.salt, hdr.ssrc, index);
        let keystream = &mut self.keystream[..];
        let (mac, computed) = if encrypts {
            let packet = &mut buf[..auth_end];
            authenticate(self.strategies.unprotect, keys, &iv, packet, hdr.header_len, &roc_bytes, keystream)
        } else {
            (keys.auth.mac(&buf[..auth_end], &roc_bytes), None)
        };
        if !tag_matches(&mac, &buf[auth_end + mki_len..]) {
            return Err(Error::AuthFailure);
        }
        if encrypts {
            decrypt(keys, &iv, &mut buf[hdr.header_len..auth_end], keystream, computed);
        }

        cache(&mut entry.rtp, fresh);
        entry.rtp_packets += 1;
        let window = self.policy.replay_window;
        self.rtp_in.entry(hdr.ssrc).or_insert_with(|| ReplayWindow::new(window)).add(delta);
        Ok(auth_end)
    }

    /// [`Self::unprotect_rtp`] on a `Vec`, shortening it to the RTP packet.
    pub fn unprotect_rtp_vec(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let n = self.unprotect_rtp(packet)?;
        packet.truncate(n);
        Ok(())
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place (RFC 3711 §3.4): encrypts all
    /// but the first 8 bytes, appends E || SRTCP index, the MKI and the 80-bit tag, and returns the
    /// SRTCP packet length. `buf` must have room for [`Policy::rtcp_overhead`] more bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let capacity = buf.len();
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall { needed: len, capacity })?;
        let hdr = RtcpHeader::parse(packet)?;
        let mki_len = self.policy.mki_len;
        let tag_len = self.policy.suite.rtcp_tag_len();
        let auth_end = len + SRTCP_TRAILER_LEN;
        let total = auth_end + mki_len + tag_len;
        if capacity < total {
            return Err(Error::BufferTooSmall { needed: total, capacity });
        }
        let entry = self.active.and_then(|a| self.keys.get_mut(a)).ok_or(Error::NoMasterKey)?;
        if entry.rtcp_packets >= self.policy.rtcp_packets_per_key {
            return Err(Error::KeyUsageLimit);
        }
        // libsrtp sends index 1 first and stops after 2^31 - 1 (`srtp_rdb_increment`).
        let last = self.rtcp_out.get(&hdr.ssrc).copied().unwrap_or(0);
        if last >= SRTCP_INDEX_MAX {
            return Err(Error::KeyUsageLimit);
        }
        let index = last + 1;
        let fresh = entry.rederive(true, key_derivation_r(u64::from(index), self.policy.key_derivation_rate));
        let keys = fresh.as_ref().unwrap_or(&entry.rtcp);

        let encrypts = self.policy.suite.encrypts();
        let word = if encrypts { SRTCP_E_BIT | index } else { index };
        let word_bytes = word.to_be_bytes();
        // The MAC covers the packet and then E || index, which follows the encrypted portion.
        let tag = if encrypts {
            let iv = packet_iv(&keys.salt, hdr.ssrc, u64::from(index));
            encrypt_and_authenticate_with(
                self.strategies.protect,
                &keys.cipher,
                &iv,
                &keys.auth,
                &mut buf[..len],
                RTCP_HEADER_LEN,
                &word_bytes,
            )
        } else {
            keys.auth.mac(&buf[..len], &word_bytes)
        };
        buf[len..auth_end].copy_from_slice(&word_bytes);
        buf[auth_end..auth_end + mki_len].copy_from_slice(&entry.mki);
        buf[auth_end + mki_len..total].copy_from_slice(&tag[..tag_len]);

        cache(&mut entry.rtcp, fresh);
        entry.rtcp_packets += 1;
        self.rtcp_out.insert(hdr.ssrc, index);
        Ok(total)
    }

    /// [`Self::protect_rtcp`] on a `Vec`, growing it by the trailer.
    pub fn protect_rtcp_vec(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let len = packet.len();
        packet.resize(len + self.policy.rtcp_overhead(), 0);
        let result = self.protect_rtcp(packet, len);
        packet.truncate(*result.as_ref().unwrap_or(&len));
        result.map(|_| ())
    }

    /// Unprotects the SRTCP packet in `buf` in place (RFC 3711 §3.4) and returns the RTCP packet
    /// length. The E flag must match the policy (encrypted unless the suite is NULL). On error
    /// `buf` and the context are unchanged.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len();
        let hdr = RtcpHeader::parse(buf)?;
        let mki_len = self.policy.mki_len;
        let tag_len = self.policy.suite.rtcp_tag_len();
        let needed = RTCP_HEADER_LEN + SRTCP_TRAILER_LEN + mki_len + tag_len;
        if len < needed {
            return Err(Error::TooShort { len, needed });
        }
        let auth_end = len - mki_len - tag_len;
        let body_end = auth_end - SRTCP_TRAILER_LEN;
        let word =
            u32::from_be_bytes([buf[body_end], buf[body_end + 1], buf[body_end + 2], buf[body_end + 3]]);
        let e_flag = word & SRTCP_E_BIT != 0;
        let index = word & !SRTCP_E_BIT;
        let key_at = self.key_for_mki(&buf[auth_end..auth_end + mki_len])?;

        let delta = match self.rtcp_in.get(&hdr.ssrc) {
            Some(stream) => {
                let delta = i64::from(index) - stream.highest() as i64;
                stream.check(delta)?;
                delta
            }
            None => i64::from(index),
        };
        let entry = self.keys.get_mut(key_at).ok_or(Error::NoMasterKey)?;
        if entry.rtcp_packets >= self.policy.rtcp_packets_per_key {
            return Err(Error::KeyUsageLimit);
        }
        let fresh = entry.rederive(true, key_derivation_r(u64::from(index), self.policy.key_derivation_rate));
        let keys = fresh.as_ref().unwrap_or(&entry.rtcp);

        let word_bytes = word.to_be_bytes();
        let iv = packet_iv(&keys.salt, hdr.ssrc, u64::from(index));
        let keystream = &mut self.keystream[..];
        let (mac, computed) = if e_flag {
            let packet = &mut buf[..body_end];
            authenticate(
                self.strategies.unprotect,
                keys,
                &iv,
                packet,
                RTCP_HEADER_LEN,
                &word_bytes,
                keystream,
            )
        } else {
            (keys.auth.mac(&buf[..body_end], &word_bytes), None)
        };
        if !tag_matches(&mac, &buf[auth_end + mki_len..]) {
            return Err(Error::AuthFailure);
        }
        if e_flag != self.policy.suite.encrypts() {
            return Err(Error::EncryptionFlagMismatch);
        }
        if e_flag {
            decrypt(keys, &iv, &mut buf[RTCP_HEADER_LEN..body_end], keystream, computed);
        }

        cache(&mut entry.rtcp, fresh);
        entry.rtcp_packets += 1;
        let window = self.policy.rtcp_replay_window;
        self.rtcp_in.entry(hdr.ssrc).or_insert_with(|| ReplayWindow::new(window)).add(delta);
        Ok(body_end)
    }

    /// [`Self::unprotect_rtcp`] on a `Vec`, shortening it to the RTCP packet.
    pub fn unprotect_rtcp_vec(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let n = self.unprotect_rtcp(packet)?;
        packet.truncate(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! libsrtp's reference packets (cisco/libsrtp test/srtp_driver.c: `srtp_validate`,
    //! `srtp_validate_mki`, `srtp_validate_null_sha1_80`), SSRC 0xcafebabe, SEQ 0x1234.
    use super::*;
    use crate::CryptoSuite;

    /// `test_key` of srtp_driver.c: the RFC 3711 B.3 master key and salt.
    const TEST_KEY: &str = "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6";
    /// `test_key_2` of srtp_driver.c (first 30 bytes).
    const TEST_KEY_2: &str = "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9";
    const TEST_MKI: [u8; 4] = [0xe1, 0xf9, 0x7a, 0x0d];
    const TEST_MKI_2: [u8; 4] = [0xf3, 0xa1, 0x46, 0x71];

    const RTP: &str = "800f1234decafbadcafebabeabababababababababababababababab";
    const RTCP: &str = "81c8000bcafebabeabababababababababababababababab";

    fn key(hex_key: &str, mki: &[u8]) -> MasterKey {
        MasterKey::from_key_and_salt(&hex::decode(hex_key).unwrap(), mki).unwrap()
    }

    fn pair(policy: Policy, keys: &[MasterKey]) -> (SrtpContext, SrtpContext) {
        (
            SrtpContext::new(policy.clone(), keys.iter().cloned()).unwrap(),
            SrtpContext::new(policy, keys.iter().cloned()).unwrap(),
        )
    }

    fn check(tx: &mut SrtpContext, rx: &mut SrtpContext, srtp: &str, srtcp: &str) {
        let mut p = hex::decode(RTP).unwrap();
        tx.protect_rtp_vec(&mut p).unwrap();
        assert_eq!(hex::encode(&p), srtp);
        rx.unprotect_rtp_vec(&mut p).unwrap();
        assert_eq!(hex::encode(&p), RTP);

        let mut p = hex::decode(RTCP).unwrap();
        tx.protect_rtcp_vec(&mut p).unwrap();
        assert_eq!(hex::encode(&p), srtcp);
        rx.unprotect_rtcp_vec(&mut p).unwrap();
        assert_eq!(hex::encode(&p), RTCP);
    }

    #[test]
    fn libsrtp_validate() {
        let (mut tx, mut rx) = pair(Policy::new(CryptoSuite::Aes128CmHmacSha1_80), &[key(TEST_KEY, &[])]);
        check(
            &mut tx,
            &mut rx,
            "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
            "81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798",
        );
    }

    #[test]
    fn libsrtp_validate_mki() {
        let keys = [key(TEST_KEY, &TEST_MKI), key(TEST_KEY_2, &TEST_MKI_2)];
        let (mut tx, mut rx) = pair(Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_mki_len(4), &keys);
        check(
            &mut tx,
            &mut rx,
            "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402e1f97a0db78d6acc99ea179b8dbb",
            "81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001e1f97a0d993e08cd54d6c1230798",
        );
    }

    #[test]
    fn libsrtp_validate_null_sha1_80() {
        let (mut tx, mut rx) = pair(Policy::new(CryptoSuite::NullHmacSha1_80), &[key(TEST_KEY, &[])]);
        check(
            &mut tx,
            &mut rx,
            "800f1234decafbadcafebabeabababababababababababababababababa136270b679134ce9b",
            "81c8000bcafebabeabababababababababababababababab00000001fe88c7fdfd37ebce615d",
        );
    }

    /// The MKI picks the master key on receipt; an unknown MKI is refused without state change.
    #[test]
    fn mki_selects_master_key() {
        let keys = [key(TEST_KEY, &TEST_MKI), key(TEST_KEY_2, &TEST_MKI_2)];
        let policy = Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_mki_len(4);
        let (mut tx, mut rx) = pair(policy, &keys);
        tx.set_active_master_key(&TEST_MKI_2).unwrap();
        let mut p = hex::decode(RTP).unwrap();
        tx.protect_rtp_vec(&mut p).unwrap();
        assert_eq!(&p[28..32], &TEST_MKI_2);
        let mut unknown = p.clone();
        unknown[28] ^= 1;
        assert_eq!(rx.unprotect_rtp_vec(&mut unknown), Err(Error::UnknownMki));
        assert_eq!(rx.rtp_index(Direction::Inbound, 0xcafebabe), None);
        rx.unprotect_rtp_vec(&mut p).unwrap();
        assert_eq!(hex::encode(&p), RTP);
        assert_eq!(rx.master_key_usage(&TEST_MKI_2), Some((1, 0)));
        assert_eq!(rx.master_key_usage(&TEST_MKI), Some((0, 0)));

        rx.remove_master_key(&TEST_MKI_2).unwrap();
        let mut p = hex::decode(RTP).unwrap();
        p[3] = 0x35;
        tx.protect_rtp_vec(&mut p).unwrap();
        assert_eq!(rx.unprotect_rtp_vec(&mut p), Err(Error::UnknownMki));
        assert_eq!(rx.add_master_key(key(TEST_KEY, &TEST_MKI)), Err(Error::DuplicateMki));
        assert_eq!(rx.add_master_key(key(TEST_KEY, &[1, 2])), Err(Error::MkiLength { got: 2, expected: 4 }));
        rx.add_master_key(key(TEST_KEY_2, &TEST_MKI_2)).unwrap();
        rx.unprotect_rtp_vec(&mut p).unwrap();
    }

    /// RFC 3711 §9.2 limit, lowered so that it can be reached: the next packet is refused.
    #[test]
    fn key_usage_limit() {
        let policy = Policy::new(CryptoSuite::Aes128CmHmacSha1_32).with_key_usage_limits(3, 2);
        let (mut tx, mut rx) = pair(policy, &[key(TEST_KEY, &[])]);
        for seq in 0..4u16 {
            let mut p = hex::decode(RTP).unwrap();
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            let r = tx.protect_rtp_vec(&mut p);
            if seq < 3 {
                r.unwrap();
                rx.unprotect_rtp_vec(&mut p).unwrap();
            } else {
                assert_eq!(r, Err(Error::KeyUsageLimit));
            }
        }
        for n in 0..3 {
            let mut p = hex::decode(RTCP).unwrap();
            let r = tx.protect_rtcp_vec(&mut p);
            assert_eq!(r.is_ok(), n < 2);
        }
    }

    #[test]
    fn short_buffers_and_packets() {
        let (mut tx, mut rx) = pair(Policy::default(), &[key(TEST_KEY, &[])]);
        let mut buf = hex::decode(RTP).unwrap();
        assert_eq!(tx.protect_rtp(&mut buf, 28), Err(Error::BufferTooSmall { needed: 38, capacity: 28 }));
        assert_eq!(hex::encode(&buf), RTP);
        assert_eq!(rx.unprotect_rtp(&mut buf[..21]), Err(Error::TooShort { len: 21, needed: 22 }));
        assert_eq!(rx.unprotect_rtcp(&mut buf[..21]), Err(Error::TooShort { len: 21, needed: 22 }));
        buf[0] = 0x40;
        assert_eq!(rx.unprotect_rtp(&mut buf), Err(Error::BadVersion(1)));
        assert!(SrtpContext::new(Policy::default().with_key_derivation_rate(3), []).is_err());
        assert!(SrtpContext::new(Policy::default().with_replay_window(63), []).is_err());
        let mut empty = SrtpContext::new(Policy::default(), []).unwrap();
        let mut p = hex::decode(RTP).unwrap();
        assert_eq!(empty.protect_rtp_vec(&mut p), Err(Error::NoMasterKey));
    }
}
