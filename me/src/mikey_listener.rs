//! MIKEY reception over UDP (TS 33.246 §6.3.2.3.1 MSK push, §6.3.3.2.2 MTK delivery in streaming):
//! a loopback `UdpSocket` whose datagrams are told apart by parsing (MTK message or MSK message)
//! and fed to the key management. Malformed datagrams are counted and logged and change nothing;
//! a verification message the BM-SC asked for goes back to the sender.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::key_management::{MbmsKeyManagement, MikeyKind, MskOutcome, MtkOutcome, classify};
use crate::mbms_receiver::MbmsReceiver;

/// Largest datagram read (a UDP payload).
pub const DATAGRAM_MAX: usize = 65_507;

/// What one datagram did.
#[derive(Debug)]
pub enum MikeyEvent {
    /// An MSK message was accepted.
    Msk(MskOutcome),
    /// An MTK message was accepted (and handed to the SRTP receiver, if one was given).
    Mtk(MtkOutcome),
    /// A well-formed message the key management refused (MAC, replay, unknown key, ...).
    Refused {
        /// What the message was.
        kind: MikeyKind,
        /// Why it was refused.
        error: Error,
    },
    /// A datagram that is no MIKEY message of the MBMS profile.
    Malformed {
        /// Its length.
        len: usize,
        /// The parser's reason.
        error: mikey::Error,
    },
}

/// Counters of a [`MikeyListener`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MikeyStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// MSK messages accepted.
    pub msk_accepted: u64,
    /// MTK messages accepted.
    pub mtk_accepted: u64,
    /// Well-formed messages refused.
    pub refused: u64,
    /// Malformed datagrams.
    pub malformed: u64,
    /// Verification messages sent back.
    pub verifications_sent: u64,
}

/// The ME's MIKEY socket.
#[derive(Debug)]
pub struct MikeyListener {
    socket: UdpSocket,
    stats: MikeyStats,
    buf: Vec<u8>,
}

impl MikeyListener {
    /// Binds a loopback address (`127.0.0.1:0` for an ephemeral port). Other addresses are refused:
    /// the simulator talks only on loopback.
    pub fn bind(addr: impl ToSocketAddrs) -> Result<Self> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| Error::Io { context: "MIKEY listener address", source })?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
            return Err(Error::InvalidInput("the MIKEY listener binds only loopback addresses".into()));
        }
        let socket = UdpSocket::bind(&addrs[..])
            .map_err(|source| Error::Io { context: "bind MIKEY listener", source })?;
        Ok(MikeyListener { socket, stats: MikeyStats::default(), buf: vec![0u8; DATAGRAM_MAX] })
    }

    /// The bound address (where the BM-SC sends).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.local_addr().map_err(|source| Error::Io { context: "MIKEY listener address", source })
    }

    /// The counters.
    pub fn stats(&self) -> MikeyStats {
        self.stats
    }

    /// Waits up to `timeout` (for ever when `None`) for one datagram and hands it to `km`;
    /// `Ok(None)` on timeout.
    pub fn receive<K: MbmsKeyManagement + ?Sized>(
        &mut self,
        km: &mut K,
        timeout: Option<Duration>,
    ) -> Result<Option<MikeyEvent>> {
        self.receive_inner(km, None, timeout)
    }

    /// [`Self::receive`], and every accepted MTK is added to `receiver`.
    pub fn receive_into<K: MbmsKeyManagement + ?Sized>(
        &mut self,
        km: &mut K,
        receiver: &mut MbmsReceiver,
        timeout: Option<Duration>,
    ) -> Result<Option<MikeyEvent>> {
        self.receive_inner(km, Some(receiver), timeout)
    }

    fn receive_inner<K: MbmsKeyManagement + ?Sized>(
        &mut self,
        km: &mut K,
        receiver: Option<&mut MbmsReceiver>,
        timeout: Option<Duration>,
    ) -> Result<Option<MikeyEvent>> {
        let timeout = timeout.filter(|t| !t.is_zero());
        self.socket
            .set_read_timeout(timeout)
            .map_err(|source| Error::Io { context: "MIKEY listener timeout", source })?;
        let (len, from) = match self.socket.recv_from(&mut self.buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(source) => return Err(Error::Io { context: "MIKEY receive", source }),
        };
        self.stats.datagrams += 1;
        let datagram = &self.buf[..len];
        let kind = match classify(datagram) {
            Ok(kind) => kind,
            Err(error) => {
                self.stats.malformed += 1;
                tracing::warn!(%from, len, %error, "malformed MIKEY datagram dropped");
                return Ok(Some(MikeyEvent::Malformed { len, error }));
            }
        };
        let result = match kind {
            MikeyKind::Msk => km.msk_update(datagram).map(MikeyEvent::Msk),
            MikeyKind::Mtk => km.mtk_generate(datagram).map(MikeyEvent::Mtk),
        };
        let event = match result {
            Ok(event) => event,
            Err(error) => {
                self.stats.refused += 1;
                tracing::warn!(%from, ?kind, %error, "MIKEY message refused");
                return Ok(Some(MikeyEvent::Refused { kind, error }));
            }
        };
        match &event {
            MikeyEvent::Msk(outcome) => {
                self.stats.msk_accepted += 1;
                if let Some(v) = outcome.verification() {
                    self.socket
                        .send_to(v, from)
                        .map_err(|source| Error::Io { context: "send MIKEY verification", source })?;
                    self.stats.verifications_sent += 1;
                }
                tracing::debug!(%from, ?outcome, "MIKEY MSK message accepted");
            }
            MikeyEvent::Mtk(mtk) => {
                self.stats.mtk_accepted += 1;
                if let Some(r) = receiver {
                    r.add_mtk(mtk)?;
                }
                tracing::debug!(%from, msk_id = ?mtk.msk_id, mtk_id = ?mtk.mtk_id, "MIKEY MTK message accepted");
            }
            _ => {}
        }
        Ok(Some(event))
    }
}
