//! A BM-SC stream generator (TS 33.246 §6.3 MSK and MTK procedures, RFC 3711 traffic protection):
//! MSK messages per recipient (rotation), MTK messages with increasing MTK IDs, solicited pulls,
//! and SRTP packets of a deterministic test signal protected with the current MTK.
//!
//! Built only from the published primitives of `mikey` and `srtp`; it shares no code with the
//! ME's verify/decrypt side. Keys come from a seeded deterministic generator, so two runs with the
//! same seed send the same MSKs, MTKs and packets: the UICC-based and the ME-based ME can be fed
//! the same stream. A real BM-SC seeds from the operating system.
//!
//! MSK messages go to one recipient each (point-to-point, protected by that recipient's MUK); MTK
//! messages and SRTP packets are the same bytes for every recipient (point-to-multipoint).

use mikey::Timestamp;
use mikey::mbms::{
    self, KeyDomainId, Msk, MskId, MskMessageParams, Mtk, MtkId, MtkMessageParams, MtkSalt, Muk,
    SolicitedPullParams,
};
use sha2::{Digest, Sha256};
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};
use zeroize::Zeroizing;

pub use mikey::mbms::mki;
pub use mikey::mbms::profile::MKI_LEN;
/// CSB ID of the MIKEY header: the Key Group ID, as Rel-6 CR 021 put it there (TS 33.246
/// §6.3.2.1). UNCONFIRMED for later releases; the receivers do not depend on it.
pub const CSB_ID_IS_KEY_GROUP: bool = true;
/// RAND length of MSK messages (RFC 3830 §4.1.1: at least 128 bits).
pub const RAND_LEN: usize = 16;
/// Whether MTK messages carry a RAND payload. UNCONFIRMED (spec digest §2.5); without one the
/// transport keys use an empty RAND in their label.
pub const MTK_MESSAGE_CARRIES_RAND: bool = false;
/// RTP payload type of the test signal: dynamic (RFC 3551 §3), L16 mono at 8 kHz.
pub const TEST_SIGNAL_PAYLOAD_TYPE: u8 = 96;
/// Samples per RTP packet of the test signal (20 ms at 8 kHz).
pub const TEST_SIGNAL_SAMPLES: usize = 160;
/// One period of the 1 kHz test tone at 8 kHz, 16-bit: round(32767 × sin(2πk/8)).
pub const TEST_TONE: [i16; 8] = [0, 23170, 32767, 23170, 0, -23170, -32767, -23170];
/// Largest MIKEY message built here.
pub const MIKEY_MAX: usize = 1024;

/// The RTP payload of test-signal frame `n`: [`TEST_SIGNAL_SAMPLES`] samples of [`TEST_TONE`],
/// big-endian L16 (RFC 3551 §4.5.11), its amplitude halved on odd frames so that frames differ.
pub fn test_signal_frame(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * TEST_SIGNAL_SAMPLES);
    for i in 0..TEST_SIGNAL_SAMPLES {
        let s = TEST_TONE[i % TEST_TONE.len()];
        let s = if n % 2 == 1 { s / 2 } else { s };
        out.extend_from_slice(&s.to_be_bytes());
    }
    out
}

/// RTP payload type of G.711 µ-law (PCMU), RFC 3551 Table 4: the default of media files.
pub const PCMU_PAYLOAD_TYPE: u8 = 0;
/// Octets per 20 ms frame of 8 kHz G.711 (RFC 3551 §4.5.14): the default frame of media files.
pub const G711_FRAME_LEN: usize = 160;
/// Largest media file read (frames are kept in memory).
pub const MEDIA_FILE_MAX: usize = 64 << 20;

/// Media from a file: its bytes cut into RTP payloads of a fixed length (the last one shorter),
/// sent in order and from the start again when the file ends. A raw G.711 file (`.ul`, `.al`)
/// with 160-octet frames gives 20 ms per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    frames: Vec<Vec<u8>>,
    /// RTP payload type of the packets.
    pub payload_type: u8,
    /// RTP timestamp units per frame.
    pub samples_per_frame: u32,
}

impl MediaFile {
    /// `bytes` cut into `frame_len`-octet payloads; `None` when `bytes` is empty or `frame_len`
    /// is 0 or larger than an RTP packet can carry here (1200 octets).
    pub fn from_bytes(
        bytes: &[u8],
        frame_len: usize,
        payload_type: u8,
        samples_per_frame: u32,
    ) -> Option<Self> {
        if bytes.is_empty() || frame_len == 0 || frame_len > 1200 || payload_type > 127 {
            return None;
        }
        let frames = bytes.chunks(frame_len).map(<[u8]>::to_vec).collect();
        Some(MediaFile { frames, payload_type, samples_per_frame })
    }

    /// A raw G.711 µ-law file (PCMU, 160-octet frames of 20 ms).
    pub fn load_g711(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.take(MEDIA_FILE_MAX as u64 + 1).read_to_end(&mut bytes)?;
        if bytes.len() > MEDIA_FILE_MAX {
            return Err(std::io::Error::other(format!("larger than {MEDIA_FILE_MAX} octets")));
        }
        MediaFile::from_bytes(&bytes, G711_FRAME_LEN, PCMU_PAYLOAD_TYPE, G711_FRAME_LEN as u32)
            .ok_or_else(|| std::io::Error::other("empty media file"))
    }

    /// Payload of frame `n` (the file repeats).
    pub fn frame(&self, n: u64) -> &[u8] {
        let len = self.frames.len().max(1) as u64;
        self.frames.get((n % len) as usize).map_or(&[], Vec::as_slice)
    }

    /// Frames in one pass of the file.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the file has no frame (never, for a value built by the constructors).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// How MSK messages are timestamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MskTimestamps {
    /// RFC 3830 COUNTER: 1, 2, 3, ... per recipient.
    Counter,
    /// NTP-UTC from the generator's clock ([`BmscStream::set_time`]); the fraction carries a
    /// per-recipient counter, so timestamps grow even within one second.
    NtpUtc,
}

/// Errors of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A MIKEY message could not be built.
    #[error("MIKEY: {0}")]
    Mikey(mikey::Error),
    /// SRTP protection failed.
    #[error("SRTP: {0}")]
    Srtp(#[from] srtp::Error),
    /// No MSK yet: rotate one in first.
    #[error("no MSK: call rotate_msk first")]
    NoMsk,
    /// No MTK yet: send an MTK message first.
    #[error("no MTK: call next_mtk_message first")]
    NoMtk,
    /// No such recipient.
    #[error("no recipient {0}")]
    NoRecipient(usize),
    /// The MTK ID space of the wire length is used up.
    #[error("MTK IDs exhausted")]
    MtkIdsExhausted,
}

impl From<mikey::Error> for StreamError {
    fn from(e: mikey::Error) -> Self {
        StreamError::Mikey(e)
    }
}

/// Configuration of a stream.
#[derive(Debug, Clone)]
pub struct BmscStreamConfig {
    /// The BM-SC FQDN (IDi of MSK messages; the NAF FQDN of its NAF_Id).
    pub bmsc_fqdn: String,
    /// Key Domain ID (MCC ‖ MNC).
    pub key_domain_id: KeyDomainId,
    /// Key Group of the stream's MSKs.
    pub key_group: u16,
    /// Seed of the deterministic key generator.
    pub seed: [u8; 32],
    /// SSRC of the SRTP stream.
    pub ssrc: u32,
    /// First RTP sequence number.
    pub first_seq: u16,
    /// Timestamps of MSK messages.
    pub msk_timestamps: MskTimestamps,
    /// Ask for verification messages (V bit) in MSK messages.
    pub v_bit: bool,
    /// Media from a file instead of the test signal.
    pub media: Option<std::sync::Arc<MediaFile>>,
}

impl BmscStreamConfig {
    /// The RTP payload of frame `n` of this stream: the media file's, or the test signal's.
    pub fn frame(&self, n: u64) -> Vec<u8> {
        match &self.media {
            Some(m) => m.frame(n).to_vec(),
            None => test_signal_frame(n),
        }
    }

    /// A configuration for `bmsc_fqdn` with Key Domain 00 F1 10 (MCC 001 MNC 01, PLMN-ID coding),
    /// Key Group 0x0001 and COUNTER timestamps.
    pub fn new(bmsc_fqdn: &str, seed: [u8; 32]) -> Self {
        BmscStreamConfig {
            bmsc_fqdn: bmsc_fqdn.to_owned(),
            key_domain_id: KeyDomainId([0x00, 0xF1, 0x10]),
            key_group: 0x0001,
            seed,
            ssrc: 0x4D42_4D53,
            first_seq: 1,
            msk_timestamps: MskTimestamps::Counter,
            v_bit: false,
            media: None,
        }
    }
}

struct Recipient {
    muk: Muk,
    btid: String,
    counter: u32,
}

struct CurrentMtk {
    msk_id: MskId,
    mtk_id: MtkId,
    mtk: Mtk,
    salt: MtkSalt,
}

/// The BM-SC side of one MBMS stream.
pub struct BmscStream {
    config: BmscStreamConfig,
    recipients: Vec<Recipient>,
    drbg_counter: u64,
    msk_number: u16,
    msks: Vec<(MskId, Msk)>,
    mtk_counter: u32,
    mtk: Option<CurrentMtk>,
    srtp: SrtpContext,
    seq: u16,
    frames: u64,
    clock_unix: u64,
}

impl core::fmt::Debug for BmscStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BmscStream")
            .field("bmsc_fqdn", &self.config.bmsc_fqdn)
            .field("recipients", &self.recipients.len())
            .field("msk_ids", &self.msks.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .field("mtk_id", &self.mtk.as_ref().map(|m| m.mtk_id))
            .finish_non_exhaustive()
    }
}

impl BmscStream {
    /// A stream with no recipient, no MSK and no MTK yet.
    pub fn new(config: BmscStreamConfig) -> Result<Self, StreamError> {
        let policy = Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_mki_len(MKI_LEN);
        let seq = config.first_seq;
        Ok(BmscStream {
            config,
            recipients: Vec::new(),
            drbg_counter: 0,
            msk_number: 0,
            msks: Vec::new(),
            mtk_counter: 0,
            mtk: None,
            srtp: SrtpContext::new(policy, [])?,
            seq,
            frames: 0,
            clock_unix: 1_800_000_000,
        })
    }

    /// The SRTP policy receivers need (MKI length [`MKI_LEN`]).
    pub fn srtp_policy(&self) -> Policy {
        self.srtp.policy().clone()
    }

    /// The configuration.
    pub fn config(&self) -> &BmscStreamConfig {
        &self.config
    }

    /// Sets the clock of NTP-UTC timestamps (Unix seconds).
    pub fn set_time(&mut self, unix_seconds: u64) {
        self.clock_unix = unix_seconds;
    }

    /// Adds a UE: its MUK (Ks_int_NAF for UICC-based, the ME-derived MUK otherwise) and the B-TID
    /// of the bootstrap (IDr). Returns the recipient's index.
    pub fn add_recipient(&mut self, muk: Muk, btid: &str) -> usize {
        self.recipients.push(Recipient { muk, btid: btid.to_owned(), counter: 0 });
        self.recipients.len() - 1
    }

    /// Replaces a recipient's MUK and B-TID (after a new bootstrap); its counter goes on.
    pub fn rekey_recipient(&mut self, recipient: usize, muk: Muk, btid: &str) -> Result<(), StreamError> {
        let r = self.recipients.get_mut(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        r.muk = muk;
        r.btid = btid.to_owned();
        Ok(())
    }

    /// `N` bytes of the deterministic generator: SHA-256(seed ‖ label ‖ counter), concatenated.
    fn random<const N: usize>(&mut self, label: &[u8]) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        for chunk in out.chunks_mut(32) {
            self.drbg_counter += 1;
            let mut h = Sha256::new();
            h.update(self.config.seed);
            h.update(label);
            h.update(self.drbg_counter.to_be_bytes());
            let block: [u8; 32] = h.finalize().into();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        out
    }

    /// A new MSK (MSK ID = Key Group ‖ next number, never 0); the previous MSK stays usable for
    /// MTK messages until the next rotation. Returns its MSK ID.
    pub fn rotate_msk(&mut self) -> MskId {
        self.msk_number = self.msk_number.wrapping_add(1).max(1);
        let msk_id = MskId((u32::from(self.config.key_group) << 16) | u32::from(self.msk_number));
        let key = self.random::<16>(b"MSK");
        self.msks.push((msk_id, Msk::new(*key)));
        if self.msks.len() > 2 {
            self.msks.remove(0);
        }
        // MTK IDs count per MSK (TS 33.246 §6.3.3: the UE checks that the MTK ID of an MSK grows),
        // so each new MSK starts them again and a stream never runs out of them.
        self.mtk_counter = 0;
        msk_id
    }

    /// The number of the last MSK (MSK ID = Key Group ‖ number).
    pub fn msk_number(&self) -> u16 {
        self.msk_number
    }

    /// The MSKs held, oldest first: the one before and the current one.
    pub fn msks(&self) -> impl Iterator<Item = (MskId, &Msk)> {
        self.msks.iter().map(|(id, k)| (*id, k))
    }

    /// The MTK ID of the last MTK message under the current MSK.
    pub fn mtk_counter(&self) -> u32 {
        self.mtk_counter
    }

    /// Media frames built so far (the RTP sequence number is the first one plus this).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Carries on from a stored state (a restarted BM-SC): the MSKs held, the last MSK number,
    /// the last MTK ID under the current MSK and the media frames used. The next MSK number, MTK
    /// ID and RTP sequence number are past them. Until the next MTK message no media is sent.
    pub fn resume(&mut self, msk_number: u16, msks: Vec<(MskId, Msk)>, mtk_counter: u32, frames: u64) {
        self.msk_number = msk_number;
        self.msks = msks;
        while self.msks.len() > 2 {
            self.msks.remove(0);
        }
        self.mtk_counter = mtk_counter;
        self.mtk = None;
        self.frames = frames;
        self.seq = self.config.first_seq.wrapping_add(frames as u16);
    }

    /// An MSK the BM-SC holds (the current one or the one before).
    pub fn msk(&self, msk_id: MskId) -> Option<&Msk> {
        self.msks.iter().find(|(id, _)| *id == msk_id).map(|(_, k)| k)
    }

    /// The current MSK ID.
    pub fn current_msk_id(&self) -> Option<MskId> {
        self.msks.last().map(|(id, _)| *id)
    }

    fn next_timestamp(&mut self, recipient: usize) -> Result<Timestamp, StreamError> {
        let mode = self.config.msk_timestamps;
        let clock = self.clock_unix;
        let r = self.recipients.get_mut(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        r.counter += 1;
        Ok(match mode {
            MskTimestamps::Counter => Timestamp::Counter(r.counter),
            MskTimestamps::NtpUtc => {
                Timestamp::NtpUtc(((clock + mikey::NTP_UNIX_OFFSET) << 32) | u64::from(r.counter))
            }
        })
    }

    /// The B-TID (IDr) of `recipient`.
    pub fn recipient_btid(&self, recipient: usize) -> Option<&str> {
        self.recipients.get(recipient).map(|r| r.btid.as_str())
    }

    /// The last MIKEY timestamp counter sent to `recipient`.
    pub fn recipient_counter(&self, recipient: usize) -> Option<u32> {
        self.recipients.get(recipient).map(|r| r.counter)
    }

    /// Raises `recipient`'s timestamp counter to at least `counter`. The UE keeps one replay
    /// counter per MUK (TS 31.102 §4.2.81 EF.MUK Time Stamp Counter; TS 33.246 §6.3.2.2), so a
    /// BM-SC whose streams share a MUK must carry one counter across them.
    pub fn raise_counter(&mut self, recipient: usize, counter: u32) -> Result<(), StreamError> {
        let r = self.recipients.get_mut(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        r.counter = r.counter.max(counter);
        Ok(())
    }

    fn csb_id(&self) -> u32 {
        if CSB_ID_IS_KEY_GROUP { u32::from(self.config.key_group) } else { 0 }
    }

    /// The MSK message carrying the current MSK to `recipient`, protected with its MUK.
    pub fn msk_message(&mut self, recipient: usize) -> Result<Vec<u8>, StreamError> {
        let (msk_id, _) = self.msks.last().ok_or(StreamError::NoMsk)?;
        let msk_id = *msk_id;
        self.msk_message_for(recipient, msk_id)
    }

    /// The MSK message carrying the MSK `msk_id` (the current or the previous one) to `recipient`.
    pub fn msk_message_for(&mut self, recipient: usize, msk_id: MskId) -> Result<Vec<u8>, StreamError> {
        let timestamp = self.next_timestamp(recipient)?;
        let rand = self.random::<RAND_LEN>(b"RAND");
        let csb_id = self.csb_id();
        let msk = &self.msks.iter().find(|(id, _)| *id == msk_id).ok_or(StreamError::NoMsk)?.1;
        let r = self.recipients.get(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        let idi = self.config.bmsc_fqdn.as_bytes();
        let params = MskMessageParams {
            csb_id,
            v_bit: self.config.v_bit,
            ..MskMessageParams::new(
                idi,
                r.btid.as_bytes(),
                self.config.key_domain_id,
                msk_id,
                timestamp,
                &rand[..],
            )
        };
        let mut out = vec![0u8; MIKEY_MAX];
        let n = mbms::build_msk_message(&r.muk, &params, msk, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// A solicited pull to `recipient` (TS 33.246 §6.3.2.2.4): MSK ID with key number 0, a KEMAC
    /// with no key data, protected with the recipient's (most recent) MUK.
    pub fn solicited_pull(&mut self, recipient: usize) -> Result<Vec<u8>, StreamError> {
        let timestamp = self.next_timestamp(recipient)?;
        let rand = self.random::<RAND_LEN>(b"RAND");
        let csb_id = self.csb_id();
        let r = self.recipients.get(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        let (idi, idr, key_domain_id) =
            (self.config.bmsc_fqdn.as_bytes(), r.btid.as_bytes(), self.config.key_domain_id);
        let params = SolicitedPullParams {
            csb_id,
            ..SolicitedPullParams::new(idi, idr, key_domain_id, self.config.key_group, timestamp, &rand[..])
        };
        let mut out = vec![0u8; MIKEY_MAX];
        let n = mbms::build_solicited_pull(&r.muk, &params, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Checks a recipient's verification message against the MSK message it acknowledges.
    pub fn check_verification(
        &self,
        recipient: usize,
        msk_message: &[u8],
        verification: &[u8],
    ) -> Result<(), StreamError> {
        let r = self.recipients.get(recipient).ok_or(StreamError::NoRecipient(recipient))?;
        let msg = mbms::parse_msk_message(msk_message)?;
        mbms::verify_verification_message(&r.muk, &msg, verification)?;
        Ok(())
    }

    /// A new MTK (next MTK ID, fresh salt) under the current MSK: the MTK message for every
    /// recipient. From now on SRTP packets are protected with this MTK.
    pub fn next_mtk_message(&mut self) -> Result<Vec<u8>, StreamError> {
        let (msk_id, _) = self.msks.last().ok_or(StreamError::NoMsk)?;
        let msk_id = *msk_id;
        if self.mtk_counter >= MtkId::MAX {
            return Err(StreamError::MtkIdsExhausted);
        }
        self.mtk_counter += 1;
        let mtk_id = MtkId(self.mtk_counter);
        let key = self.random::<16>(b"MTK");
        let salt = self.random::<14>(b"SALT");
        let rand = self.random::<RAND_LEN>(b"RAND");
        let (mtk, salt) = (Mtk::new(*key), MtkSalt::new(*salt));
        let msk = &self.msks.last().ok_or(StreamError::NoMsk)?.1;
        // The MSK's replay counter: the MTK ID itself grows with every message.
        let timestamp = Timestamp::Counter(self.mtk_counter);
        let params = MtkMessageParams {
            csb_id: self.csb_id(),
            rand: MTK_MESSAGE_CARRIES_RAND.then_some(&rand[..]),
            ..MtkMessageParams::new(self.config.key_domain_id, msk_id, mtk_id, timestamp)
        };
        let mut out = vec![0u8; MIKEY_MAX];
        let n = mbms::build_mtk_message(msk, &params, &mtk, Some(&salt), &mut out)?;
        out.truncate(n);
        let mki = mki(msk_id, mtk_id);
        self.srtp.add_master_key(MasterKey::new(*mtk.as_bytes(), *salt.as_bytes(), mki.to_vec()))?;
        self.srtp.set_active_master_key(&mki)?;
        // The sender keeps only the key in use and the one before it.
        let old: Vec<Vec<u8>> = self.srtp.mkis().map(<[u8]>::to_vec).collect();
        for m in old.iter().take(old.len().saturating_sub(2)) {
            self.srtp.remove_master_key(m)?;
        }
        self.mtk = Some(CurrentMtk { msk_id, mtk_id, mtk, salt });
        Ok(out)
    }

    /// The current MTK as the BM-SC holds it: (MSK ID, MTK ID, MTK, salt).
    pub fn current_mtk(&self) -> Option<(MskId, MtkId, &Mtk, &MtkSalt)> {
        self.mtk.as_ref().map(|m| (m.msk_id, m.mtk_id, &m.mtk, &m.salt))
    }

    /// The next SRTP packet of the test signal, protected with the current MTK; returns it with
    /// the RTP packet it protects.
    pub fn next_srtp_packet(&mut self) -> Result<(Vec<u8>, Vec<u8>), StreamError> {
        if self.mtk.is_none() {
            return Err(StreamError::NoMtk);
        }
        let (payload_type, samples) = match &self.config.media {
            Some(m) => (m.payload_type, m.samples_per_frame),
            None => (TEST_SIGNAL_PAYLOAD_TYPE, TEST_SIGNAL_SAMPLES as u32),
        };
        let payload = self.config.frame(self.frames);
        let timestamp = (self.frames as u32).wrapping_mul(samples);
        let mut rtp = Vec::with_capacity(12 + payload.len() + 16);
        rtp.extend_from_slice(&[0x80, payload_type]);
        rtp.extend_from_slice(&self.seq.to_be_bytes());
        rtp.extend_from_slice(&timestamp.to_be_bytes());
        rtp.extend_from_slice(&self.config.ssrc.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let mut srtp = rtp.clone();
        self.srtp.protect_rtp_vec(&mut srtp)?;
        self.seq = self.seq.wrapping_add(1);
        self.frames += 1;
        Ok((srtp, rtp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> BmscStream {
        BmscStream::new(BmscStreamConfig::new("bmsc.example.org", [7; 32])).unwrap()
    }

    #[test]
    fn media_file_frames_go_out_in_order_and_repeat() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(400).collect();
        let file = MediaFile::from_bytes(&bytes, 160, PCMU_PAYLOAD_TYPE, 160).unwrap();
        assert_eq!(file.len(), 3);
        assert_eq!(file.frame(2), &bytes[320..]);
        assert_eq!(file.frame(3), &bytes[..160]);
        assert!(MediaFile::from_bytes(&[], 160, 0, 160).is_none());
        assert!(MediaFile::from_bytes(&bytes, 0, 0, 160).is_none());
        let mut config = BmscStreamConfig::new("bmsc.example.org", [7; 32]);
        config.media = Some(std::sync::Arc::new(file));
        let mut s = BmscStream::new(config).unwrap();
        s.rotate_msk();
        s.next_mtk_message().unwrap();
        for n in 0..4usize {
            let (_, rtp) = s.next_srtp_packet().unwrap();
            assert_eq!(rtp[1], PCMU_PAYLOAD_TYPE);
            assert_eq!(u32::from_be_bytes(rtp[4..8].try_into().unwrap()), 160 * n as u32);
            let start = (n % 3) * 160;
            assert_eq!(&rtp[12..], &bytes[start..(start + 160).min(400)]);
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = || {
            let mut s = stream();
            let ue = s.add_recipient(Muk::new([1; 32]), "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
            s.rotate_msk();
            let a = s.msk_message(ue).unwrap();
            let b = s.next_mtk_message().unwrap();
            let c = s.next_srtp_packet().unwrap().0;
            (a, b, c)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn messages_parse_and_verify_with_the_primitives() {
        let mut s = stream();
        let muk = [9u8; 32];
        let ue = s.add_recipient(Muk::new(muk), "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
        assert_eq!(s.next_mtk_message(), Err(StreamError::NoMsk));
        let msk_id = s.rotate_msk();
        assert_eq!(msk_id.key_group(), 1);
        let m = s.msk_message(ue).unwrap();
        let parsed = mbms::parse_msk_message(&m).unwrap();
        assert_eq!(parsed.idi().data, b"bmsc.example.org");
        let mbms::MskUpdate::Msk(d) = mbms::verify_and_decrypt_msk(&Muk::new(muk), &parsed).unwrap() else {
            panic!("not an MSK")
        };
        assert_eq!(d.msk_id, msk_id);
        let t1 = s.next_mtk_message().unwrap();
        let t2 = s.next_mtk_message().unwrap();
        let p1 = mbms::parse_mtk_message(&t1).unwrap();
        let p2 = mbms::parse_mtk_message(&t2).unwrap();
        assert!(p2.mtk_id() > p1.mtk_id());
        let got = mbms::verify_and_decrypt_mtk(&d.msk, &p2).unwrap();
        let (_, mtk_id, mtk, salt) = s.current_mtk().unwrap();
        assert_eq!(
            (got.mtk_id, got.mtk.as_bytes(), got.salt.unwrap().as_bytes()),
            (mtk_id, mtk.as_bytes(), salt.as_bytes())
        );
        let pull = s.solicited_pull(ue).unwrap();
        assert!(mbms::parse_msk_message(&pull).unwrap().is_solicited_pull());
    }

    #[test]
    fn srtp_packets_carry_the_mki() {
        let mut s = stream();
        s.rotate_msk();
        s.next_mtk_message().unwrap();
        let (srtp, rtp) = s.next_srtp_packet().unwrap();
        let (msk_id, mtk_id, _, _) = s.current_mtk().unwrap();
        assert_eq!(srtp.len(), rtp.len() + MKI_LEN + 10);
        assert_eq!(&srtp[rtp.len()..rtp.len() + MKI_LEN], &mki(msk_id, mtk_id));
        assert_eq!(&rtp[12..], &test_signal_frame(0)[..]);
    }
}
