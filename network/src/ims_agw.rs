//! The IMS Access Gateway of e2ae media protection (TS 33.328 §4.1.2.1, §4.2.2, §7.2.1, §7.3.1): a
//! UDP media relay on loopback that terminates SRTP (RFC 3711) towards each UE of a session.
//!
//! The P-CSCF (IMS ALG) allocates a session (two relay ports, one per access leg) when it rewrites
//! the SDP offer, and activates it with the keys of both legs once the answer is in: on each leg
//! the key the UE protects its media with (received in the UE's `a=crypto`) and the key the ALG
//! gave the UE for the media towards it. A packet from UE A is unprotected with leg A's UE key,
//! its plaintext counted and digested, protected again with leg B's network key and sent to UE B
//! from leg B's port; and the reverse. The two legs share no key: access protection on the
//! originating side is independent of the terminating side.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};

use crate::peer_thread::PeerThread;

/// The SRTP parameters of one direction of one access leg.
#[derive(Clone)]
pub struct LegKey {
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// Master key, master salt, MKI.
    pub master: MasterKey,
    /// Key derivation rate (0 or 2^n).
    pub kdr: u64,
}

impl std::fmt::Debug for LegKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegKey").field("suite", &self.suite).field("kdr", &self.kdr).finish_non_exhaustive()
    }
}

impl LegKey {
    fn context(&self) -> Result<SrtpContext, srtp::Error> {
        let policy =
            Policy::new(self.suite).with_mki_len(self.master.mki.len()).with_key_derivation_rate(self.kdr);
        SrtpContext::new(policy, [self.master.clone()])
    }
}

/// One access leg as the gateway sees it.
#[derive(Debug, Clone)]
pub struct AccessLeg {
    /// The UE's media address (from its SDP).
    pub ue_media: SocketAddr,
    /// The key the UE protects its media with (the gateway unprotects with it).
    pub from_ue: LegKey,
    /// The key the gateway protects the media towards the UE with.
    pub to_ue: LegKey,
}

/// Counters and plaintext digest of one direction of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams received on the leg's port.
    pub received: u64,
    /// Packets that authenticated and decrypted with the leg's UE key.
    pub decrypted: u64,
    /// Packets refused (authentication, replay, unknown source, not yet activated).
    pub failed: u64,
    /// Packets protected again and sent on the other leg.
    pub forwarded: u64,
    /// SHA-256 (hex) of the decrypted RTP payloads in arrival order.
    pub plaintext_sha256: String,
}

/// What the gateway did for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgwSessionStats {
    /// The relay port facing UE A (the originating UE).
    pub leg_a: Option<SocketAddr>,
    /// The relay port facing UE B (the terminating UE).
    pub leg_b: Option<SocketAddr>,
    /// Media from UE A to UE B.
    pub a_to_b: DirectionStats,
    /// Media from UE B to UE A.
    pub b_to_a: DirectionStats,
}

#[derive(Default)]
struct Direction {
    stats: DirectionStats,
    digest: Sha256,
}

impl Direction {
    fn snapshot(&self) -> DirectionStats {
        let mut s = self.stats.clone();
        s.plaintext_sha256 = hex::encode(self.digest.clone().finalize());
        s
    }
}

#[derive(Default)]
struct Counters {
    a_to_b: Direction,
    b_to_a: Direction,
}

struct Session {
    leg_a: SocketAddr,
    leg_b: SocketAddr,
    sockets: Option<(UdpSocket, UdpSocket)>,
    counters: Arc<Mutex<Counters>>,
    relay: Option<PeerThread>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the gateway refuses a request of the ALG.
#[derive(Debug, thiserror::Error)]
pub enum AgwError {
    /// No such session.
    #[error("no media session {0}")]
    NoSession(String),
    /// The session is already active.
    #[error("media session {0} is already active")]
    Active(String),
    /// A UE media address off loopback.
    #[error("UE media address {0} is not on loopback")]
    NotLoopback(SocketAddr),
    /// A key the SRTP layer refuses.
    #[error("SRTP: {0}")]
    Srtp(#[from] srtp::Error),
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A running IMS Access Gateway.
pub struct ImsAgw {
    ip: IpAddr,
    sessions: Mutex<HashMap<String, Session>>,
    /// Sessions released, kept for their counters.
    finished: Mutex<Vec<(String, AgwSessionStats)>>,
}

impl std::fmt::Debug for ImsAgw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImsAgw").field("ip", &self.ip).finish_non_exhaustive()
    }
}

impl ImsAgw {
    /// A gateway whose relay ports are on `ip` (loopback only).
    pub fn new(ip: IpAddr) -> std::io::Result<Self> {
        if !ip.is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the IMS-AGW works on loopback only",
            ));
        }
        Ok(ImsAgw { ip, sessions: Mutex::new(HashMap::new()), finished: Mutex::new(Vec::new()) })
    }

    /// Allocates the two relay ports of session `id` (idempotent): (towards UE A, towards UE B).
    pub fn allocate(&self, id: &str) -> std::io::Result<(SocketAddr, SocketAddr)> {
        let mut sessions = lock(&self.sessions);
        if let Some(s) = sessions.get(id) {
            return Ok((s.leg_a, s.leg_b));
        }
        let a = UdpSocket::bind((self.ip, 0))?;
        let b = UdpSocket::bind((self.ip, 0))?;
        let (leg_a, leg_b) = (a.local_addr()?, b.local_addr()?);
        sessions.insert(
            id.to_owned(),
            Session { leg_a, leg_b, sockets: Some((a, b)), counters: Arc::default(), relay: None },
        );
        tracing::debug!(session = id, %leg_a, %leg_b, "IMS-AGW: ports allocated");
        Ok((leg_a, leg_b))
    }

    /// Starts relaying session `id` with the keys of both legs. Refused (nothing changes): an
    /// unknown or already active session, a UE address off loopback, a key SRTP refuses.
    pub fn activate(&self, id: &str, a: AccessLeg, b: AccessLeg) -> Result<(), AgwError> {
        let mut sessions = lock(&self.sessions);
        let s = sessions.get_mut(id).ok_or_else(|| AgwError::NoSession(id.to_owned()))?;
        if s.sockets.is_none() {
            return Err(AgwError::Active(id.to_owned()));
        }
        for leg in [&a, &b] {
            if !leg.ue_media.ip().is_loopback() {
                return Err(AgwError::NotLoopback(leg.ue_media));
            }
        }
        let contexts = (a.from_ue.context()?, b.to_ue.context()?, b.from_ue.context()?, a.to_ue.context()?);
        let Some((sock_a, sock_b)) = s.sockets.take() else {
            return Err(AgwError::Active(id.to_owned()));
        };
        sock_a.set_nonblocking(true)?;
        sock_b.set_nonblocking(true)?;
        let counters = s.counters.clone();
        let (a_media, b_media) = (a.ue_media, b.ue_media);
        let relay = PeerThread::spawn("IMS-AGW", "ims-agw", s.leg_a, move |stopped| async move {
            let sock_a = tokio::net::UdpSocket::from_std(sock_a)?;
            let sock_b = tokio::net::UdpSocket::from_std(sock_b)?;
            tokio::select! {
                _ = relay(&sock_a, &sock_b, a_media, b_media, contexts, &counters) => {}
                _ = stopped => {}
            }
            Ok(())
        })?;
        s.relay = Some(relay);
        tracing::info!(session = id, %a_media, %b_media, "IMS-AGW: relaying");
        Ok(())
    }

    /// Stops relaying session `id` and keeps its counters.
    pub fn release(&self, id: &str) {
        let removed = lock(&self.sessions).remove(id);
        if let Some(mut s) = removed {
            if let Some(mut r) = s.relay.take() {
                let _ = r.stop();
            }
            let stats = Self::snapshot(&s);
            lock(&self.finished).push((id.to_owned(), stats));
        }
    }

    fn snapshot(s: &Session) -> AgwSessionStats {
        let c = lock(&s.counters);
        AgwSessionStats {
            leg_a: Some(s.leg_a),
            leg_b: Some(s.leg_b),
            a_to_b: c.a_to_b.snapshot(),
            b_to_a: c.b_to_a.snapshot(),
        }
    }

    /// The counters of session `id`, active or released.
    pub fn session_stats(&self, id: &str) -> Option<AgwSessionStats> {
        if let Some(s) = lock(&self.sessions).get(id) {
            return Some(Self::snapshot(s));
        }
        lock(&self.finished).iter().rev().find(|(i, _)| i == id).map(|(_, s)| s.clone())
    }

    /// How many sessions hold relay ports now.
    pub fn active_sessions(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The IDs of every session seen, active first.
    pub fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.sessions).keys().cloned().collect();
        ids.extend(lock(&self.finished).iter().map(|(i, _)| i.clone()));
        ids
    }
}

type Contexts = (SrtpContext, SrtpContext, SrtpContext, SrtpContext);

async fn relay(
    sock_a: &tokio::net::UdpSocket,
    sock_b: &tokio::net::UdpSocket,
    a_media: SocketAddr,
    b_media: SocketAddr,
    contexts: Contexts,
    counters: &Mutex<Counters>,
) {
    let (mut a_in, mut b_out, mut b_in, mut a_out) = contexts;
    let mut buf_a = vec![0u8; 2048];
    let mut buf_b = vec![0u8; 2048];
    loop {
        tokio::select! {
            r = sock_a.recv_from(&mut buf_a) => {
                if let Ok((n, from)) = r {
                    let out = pass(buf_a.get(..n).unwrap_or_default(), from == a_media, &mut a_in, &mut b_out,
                        &mut lock(counters).a_to_b);
                    if let Some(p) = out {
                        let _ = sock_b.send_to(&p, b_media).await;
                    }
                }
            }
            r = sock_b.recv_from(&mut buf_b) => {
                if let Ok((n, from)) = r {
                    let out = pass(buf_b.get(..n).unwrap_or_default(), from == b_media, &mut b_in, &mut a_out,
                        &mut lock(counters).b_to_a);
                    if let Some(p) = out {
                        let _ = sock_a.send_to(&p, a_media).await;
                    }
                }
            }
        }
    }
}

/// One packet through the gateway: unprotect with the incoming leg's UE key, digest the
/// plaintext, protect with the outgoing leg's network key.
fn pass(
    packet: &[u8],
    from_ue: bool,
    unprotect: &mut SrtpContext,
    protect: &mut SrtpContext,
    d: &mut Direction,
) -> Option<Vec<u8>> {
    d.stats.received += 1;
    let mut p = packet.to_vec();
    if !from_ue || unprotect.unprotect_rtp_vec(&mut p).is_err() {
        d.stats.failed += 1;
        return None;
    }
    d.stats.decrypted += 1;
    d.digest.update(rtp_payload(&p));
    match protect.protect_rtp_vec(&mut p) {
        Ok(()) => {
            d.stats.forwarded += 1;
            Some(p)
        }
        Err(e) => {
            tracing::warn!("IMS-AGW: protect failed: {e}");
            None
        }
    }
}

/// The payload of an RTP packet (RFC 3550 §5.1): after the fixed header, the CSRC list and the
/// header extension; padding is left in. Empty when the header does not fit.
pub fn rtp_payload(p: &[u8]) -> &[u8] {
    let Some(&first) = p.first() else { return &[] };
    let mut at = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = p
            .get(at + 2..at + 4)
            .and_then(|w| <[u8; 2]>::try_from(w).ok())
            .map_or(0, |w| usize::from(u16::from_be_bytes(w)));
        at += 4 + 4 * words;
    }
    p.get(at..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::rtp_payload;

    #[test]
    fn payload_after_csrcs_and_extension() {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(b"pay");
        assert_eq!(rtp_payload(&p), b"pay");
        // CC = 1 and an extension of one word.
        let mut q = vec![0x91, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7];
        q.extend_from_slice(b"load");
        assert_eq!(rtp_payload(&q), b"load");
        assert_eq!(rtp_payload(&[0x9f, 0]), b"");
        assert_eq!(rtp_payload(&[]), b"");
    }
}
