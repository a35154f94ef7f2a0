//! MBMS streaming reception (TS 33.246 traffic protection of streaming services with SRTP, RFC 3711): one SRTP
//! crypto context per MBMS stream, each MTK added as a master key under the MKI
//! MSK ID ‖ MTK ID ([`MKI_LEN`]), packets unprotected with the master key their MKI names. Each
//! stream keeps the last [`MTKS_KEPT_PER_STREAM`] MTKs.

use std::collections::{BTreeMap, VecDeque};

use mikey::mbms::KeyDomainId;
use srtp::{Policy, SrtpContext};

use crate::error::{Error, Result};
use crate::key_management::MtkOutcome;
use crate::open_values::{MKI_LEN, MTKS_KEPT_PER_STREAM};

/// Identifies an MBMS stream (a User Service session) at the receiver.
pub type StreamId = u32;

struct Stream {
    key_domain_id: KeyDomainId,
    key_group: u16,
    ctx: SrtpContext,
    mkis: VecDeque<Vec<u8>>,
}

/// The SRTP side of an MBMS receiver.
#[derive(Default)]
pub struct MbmsReceiver {
    streams: BTreeMap<StreamId, Stream>,
}

impl core::fmt::Debug for MbmsReceiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.streams.iter().map(|(id, s)| (id, s.mkis.len()))).finish()
    }
}

impl MbmsReceiver {
    /// A receiver with no stream.
    pub fn new() -> Self {
        MbmsReceiver::default()
    }

    /// Adds a stream protected by the MSKs of a Key Domain and Key Group (the mapping the service
    /// announcement gives, TS 33.246 §6.3.2.2.2). The policy's MKI length is set to [`MKI_LEN`].
    pub fn add_stream(
        &mut self,
        id: StreamId,
        key_domain_id: KeyDomainId,
        key_group: u16,
        policy: Policy,
    ) -> Result<()> {
        if self.streams.contains_key(&id) {
            return Err(Error::InvalidInput(format!("stream {id} exists already")));
        }
        let ctx = SrtpContext::new(policy.with_mki_len(MKI_LEN), [])?;
        self.streams.insert(id, Stream { key_domain_id, key_group, ctx, mkis: VecDeque::new() });
        Ok(())
    }

    /// Adds an MTK to every stream of its Key Domain and Key Group, removing the oldest beyond
    /// [`MTKS_KEPT_PER_STREAM`]; returns how many streams took it. An MTK already held is skipped.
    pub fn add_mtk(&mut self, mtk: &MtkOutcome) -> Result<usize> {
        let mki = mtk.mki();
        let mut keyed = 0;
        for stream in self.streams.values_mut() {
            if stream.key_domain_id != mtk.key_domain_id || stream.key_group != mtk.msk_id.key_group() {
                continue;
            }
            if stream.mkis.contains(&mki) {
                continue;
            }
            stream.ctx.add_master_key(mtk.srtp_master_key())?;
            stream.mkis.push_back(mki.clone());
            while stream.mkis.len() > MTKS_KEPT_PER_STREAM {
                if let Some(old) = stream.mkis.pop_front() {
                    stream.ctx.remove_master_key(&old)?;
                }
            }
            keyed += 1;
        }
        Ok(keyed)
    }

    /// Unprotects an SRTP packet of stream `id` in place: the MKI picks the MTK; on success the
    /// vector holds the RTP packet. A refused packet leaves the stream unchanged.
    pub fn unprotect(&mut self, id: StreamId, packet: &mut Vec<u8>) -> Result<()> {
        let stream = self.streams.get_mut(&id).ok_or(Error::NoStream(id))?;
        stream.ctx.unprotect_rtp_vec(packet)?;
        Ok(())
    }

    /// The MKIs a stream holds, oldest first.
    pub fn mkis(&self, id: StreamId) -> Result<Vec<Vec<u8>>> {
        let stream = self.streams.get(&id).ok_or(Error::NoStream(id))?;
        Ok(stream.mkis.iter().cloned().collect())
    }

    /// Drops every MTK (power-down without keeping keys, or a UICC change).
    pub fn clear_mtks(&mut self) -> Result<()> {
        for stream in self.streams.values_mut() {
            while let Some(mki) = stream.mkis.pop_front() {
                stream.ctx.remove_master_key(&mki)?;
            }
        }
        Ok(())
    }
}
