//! An IMS UE as a SIP user agent for a protected voice session (TS 33.328 §7.1–§7.3 over TS 23.228
//! session set-up, RFC 3261, RFC 3264 offer/answer): registration through the P-CSCF with the
//! "e2ae-security supported by UE" indication, an originating or terminating session whose SDP
//! carries the media key management of any [`MediaKeying`], and SRTP media (RFC 3711) on a UDP
//! socket of its own.
//!
//! ```text
//! UE → P-CSCF   REGISTER  (Security-Client: sdes-srtp;mediasec unless configured otherwise)
//! P-CSCF → UE   200       (Security-Server: sdes-srtp;mediasec when the network prefers e2ae)
//! UE A → P-CSCF INVITE (SDP offer: m=audio RTP/SAVP + the key management attributes)
//! UE B ← P-CSCF INVITE … 200 (SDP answer) or 488 when the offer is not acceptable
//! UE A          ACK; then SRTP both ways; BYE … 200
//! ```
//!
//! Every request goes to the P-CSCF (it is the outbound proxy of the dialog too); responses go
//! where the topmost Via says. Requests are retransmitted with RFC 3261 timers A and E.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sip::sdes::ims_e2ae;
use sip::sdp::{Attribute, CONTENT_TYPE_SDP, MediaDescription, SessionDescription};
use sip::{Message, Method};
use srtp::{Policy, SrtpContext};

use crate::error::{Error, Result};
use crate::media_keying::{CallParties, MediaKeying, MediaKeys, SrtpKeying};
use crate::sip_client::{MAX_FORWARDS, SIP_T1, SIP_T2};

const PEER: &str = "IMS";
/// The RTP/SAVP payload type and format of the audio stream (RFC 3551 PCMU).
pub const AUDIO_PAYLOAD_TYPE: u8 = 0;
/// Payload octets per RTP packet (20 ms of PCMU).
pub const AUDIO_PAYLOAD_LEN: usize = 160;
/// The transport protocol of SRTP media (RFC 3711 §12).
pub const PROTO_SAVP: &str = "RTP/SAVP";
/// Registration lifetime asked for (RFC 3261 §10.2.1.1).
pub const REGISTER_EXPIRES: u32 = 600;
/// Longest a receiver waits for the next media packet before it stops counting.
pub const MEDIA_IDLE: Duration = Duration::from_millis(1500);

/// Who and where the UE is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImsUeConfig {
    /// The P-CSCF (loopback only).
    pub pcscf: SocketAddr,
    /// The public user identity (From of its requests).
    pub impu: String,
    /// Include "e2ae-security supported by UE" in REGISTER (TS 33.328 §7.1: unless the UE's
    /// policy dictates otherwise).
    pub announce_e2ae: bool,
    /// Bound of each SIP transaction and of waiting for a call.
    pub timeout: Duration,
    /// Keep the protected media packets as received (for independent checks).
    pub capture_media: bool,
}

impl ImsUeConfig {
    /// A UE that announces e2ae support, with a 10 s transaction bound.
    pub fn new(pcscf: SocketAddr, impu: &str) -> Self {
        ImsUeConfig {
            pcscf,
            impu: impu.to_owned(),
            announce_e2ae: true,
            timeout: Duration::from_secs(10),
            capture_media: false,
        }
    }
}

/// The outcome of REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The network answered "e2ae-security supported by network" (stored for originating
    /// sessions, TS 33.328 §7.1).
    pub network_e2ae: bool,
    /// The registration lifetime granted, in seconds.
    pub expires: u32,
}

#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    local_cseq: u32,
}

/// An established session. `Debug` leaves out the SDP bodies (they carry SDES keys).
#[derive(Clone)]
pub struct Call {
    /// Caller, callee, Call-ID.
    pub parties: CallParties,
    /// This end's SRTP keys.
    pub keys: MediaKeys,
    /// Where this end sends its media (from the peer's SDP).
    pub remote_media: SocketAddr,
    /// The SDP this end sent.
    pub local_sdp: String,
    /// The SDP this end received.
    pub remote_sdp: String,
    /// INVITE sent (or received) until the 2xx arrived (or the ACK, on the terminating side).
    pub setup_time: Duration,
    dialog: Dialog,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("parties", &self.parties)
            .field("keys", &self.keys)
            .field("remote_media", &self.remote_media)
            .field("setup_time", &self.setup_time)
            .finish_non_exhaustive()
    }
}

/// What one end saw of the media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaReport {
    /// SRTP packets sent.
    pub packets_sent: u64,
    /// Datagrams received on the media socket.
    pub packets_received: u64,
    /// Received packets that authenticated and decrypted.
    pub packets_decrypted: u64,
    /// Received packets refused by SRTP.
    pub packets_failed: u64,
    /// SHA-256 (hex) of the decrypted payloads in RTP sequence order.
    pub media_sha256: String,
    /// SHA-256 (hex) of the payloads this end sent, in order.
    pub sent_sha256: String,
    /// The protected packets as received, when [`ImsUeConfig::capture_media`] is set.
    pub captured: Vec<Vec<u8>>,
}

/// The RTP payload number `index` of a sender seeded with `seed`: SHA-256(seed ‖ index ‖ block)
/// blocks, [`AUDIO_PAYLOAD_LEN`] octets.
pub fn media_payload(seed: u64, index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUDIO_PAYLOAD_LEN);
    let mut block = 0u8;
    while out.len() < AUDIO_PAYLOAD_LEN {
        let d = Sha256::new()
            .chain_update(seed.to_be_bytes())
            .chain_update(index.to_be_bytes())
            .chain_update([block])
            .finalize();
        out.extend_from_slice(&d);
        block = block.wrapping_add(1);
    }
    out.truncate(AUDIO_PAYLOAD_LEN);
    out
}

/// SHA-256 (hex) of the payloads a sender seeded with `seed` sends in `packets` packets.
pub fn expected_media_sha256(seed: u64, packets: u32) -> String {
    let mut h = Sha256::new();
    for i in 0..packets {
        h.update(media_payload(seed, i));
    }
    hex::encode(h.finalize())
}

/// An SRTP context for one direction's keying.
pub fn srtp_context(k: &SrtpKeying) -> Result<SrtpContext> {
    let policy = Policy::new(k.suite).with_mki_len(k.master.mki.len()).with_key_derivation_rate(k.kdr);
    Ok(SrtpContext::new(policy, [k.master.clone()])?)
}

/// The attribute lines (without `a=`) of the first audio stream of `sdp`.
pub fn audio_attribute_lines(sdp: &SessionDescription) -> Vec<String> {
    sdp.first_media("audio").map(|m| m.attributes.iter().map(|a| a.to_string()).collect()).unwrap_or_default()
}

/// One IMS UE.
#[derive(Debug)]
pub struct ImsUe {
    config: ImsUeConfig,
    sip: UdpSocket,
    sip_addr: SocketAddr,
    media: UdpSocket,
    media_addr: SocketAddr,
    registration: Option<Registration>,
    counter: u32,
}

fn malformed(reason: impl ToString) -> Error {
    Error::MalformedAnswer { peer: PEER, reason: reason.to_string() }
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

impl ImsUe {
    /// A UE with a SIP and a media socket on ephemeral loopback ports.
    pub fn new(config: ImsUeConfig) -> Result<Self> {
        if !config.pcscf.ip().is_loopback() {
            return Err(Error::InvalidInput(format!("P-CSCF {} is not a loopback address", config.pcscf)));
        }
        if sip::SipUri::parse(&config.impu).is_err() {
            return Err(Error::InvalidInput(format!("IMPU '{}' is no SIP URI", config.impu)));
        }
        let ip = config.pcscf.ip();
        let sip = UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(io("SIP socket"))?;
        let sip_addr = sip.local_addr().map_err(io("SIP socket address"))?;
        let media = UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(io("media socket"))?;
        let media_addr = media.local_addr().map_err(io("media socket address"))?;
        Ok(ImsUe { config, sip, sip_addr, media, media_addr, registration: None, counter: 0 })
    }

    /// The SIP socket's address (Via, Contact).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// The media socket's address (SDP c= / m=).
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// The IMPU.
    pub fn impu(&self) -> &str {
        &self.config.impu
    }

    /// The last successful registration.
    pub fn registration(&self) -> Option<Registration> {
        self.registration
    }

    fn next_tag(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}{}-{}-{}", std::process::id(), self.sip_addr.port(), self.counter)
    }

    fn contact(&self) -> String {
        let user =
            sip::SipUri::parse(&self.config.impu).ok().and_then(|u| u.user).unwrap_or_else(|| "ue".into());
        format!("<sip:{user}@{}>", self.sip_addr)
    }

    fn via(&mut self) -> (String, String) {
        let branch = format!("{}{}", sip::BRANCH_MAGIC_COOKIE, self.next_tag("b"));
        (format!("SIP/2.0/UDP {};branch={branch};rport", self.sip_addr), branch)
    }

    fn send_to(&self, m: &Message, to: SocketAddr) -> Result<()> {
        let bytes = m.to_bytes().map_err(|e| Error::InvalidInput(format!("SIP message: {e}")))?;
        self.sip.send_to(&bytes, to).map(|_| ()).map_err(io("SIP send"))
    }

    /// Receives one SIP message before `deadline` (None when it passes).
    fn recv_sip(&self, deadline: Instant) -> Result<Option<(Message, SocketAddr)>> {
        let mut buf = vec![0u8; sip::MAX_MESSAGE_LEN];
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Ok(None);
            }
            self.sip.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).map_err(io("SIP timeout"))?;
            match self.sip.recv_from(&mut buf) {
                Ok((n, from)) => match buf.get(..n).map(Message::parse) {
                    Some(Ok(m)) => return Ok(Some((m, from))),
                    _ => tracing::warn!(len = n, "unreadable SIP datagram dropped"),
                },
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(Error::Io { context: "SIP receive", source: e }),
            }
        }
    }

    /// Sends `request` to the P-CSCF and waits for its final answer (timer A / E retransmission).
    fn transaction(&mut self, request: &Message) -> Result<Message> {
        let invite = request.method() == Some(&Method::Invite);
        let cseq = request.cseq().map_err(malformed)?;
        let call_id = request.call_id().map_err(malformed)?.to_owned();
        let deadline = Instant::now() + self.config.timeout;
        let mut interval = SIP_T1;
        let mut next_send = Instant::now();
        let mut retransmitting = true;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::SipTimeout { method: cseq.method.to_string() });
            }
            if retransmitting && now >= next_send {
                self.send_to(request, self.config.pcscf)?;
                next_send = now + interval;
                interval = if invite { interval * 2 } else { (interval * 2).min(SIP_T2) };
            }
            let wake = if retransmitting { next_send.min(deadline) } else { deadline };
            let Some((m, _)) = self.recv_sip(wake)? else { continue };
            let Some(status) = m.status() else {
                tracing::debug!("SIP request ignored during a transaction");
                continue;
            };
            if m.call_id().ok() != Some(call_id.as_str()) || m.cseq().ok().as_ref() != Some(&cseq) {
                continue;
            }
            if status < 200 {
                if invite {
                    retransmitting = false;
                }
                continue;
            }
            return Ok(m);
        }
    }

    /// REGISTER through the P-CSCF (TS 33.328 §7.1): the e2ae support indication unless
    /// configured otherwise; the network's indication is stored.
    pub fn register(&mut self) -> Result<Registration> {
        let uri = sip::SipUri::parse(&self.config.impu).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let registrar = format!("sip:{}", uri.host);
        let (via, _) = self.via();
        let tag = self.next_tag("r");
        let mut m = Message::new_request(Method::Register, &registrar);
        m.push_header("Via", &via);
        m.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        m.push_header("From", &format!("<{}>;tag={tag}", self.config.impu));
        m.push_header("To", &format!("<{}>", self.config.impu));
        m.push_header("Call-ID", &format!("{tag}@{}", self.sip_addr.ip()));
        m.push_header("CSeq", "1 REGISTER");
        m.push_header("Contact", &self.contact());
        m.push_header("Expires", &REGISTER_EXPIRES.to_string());
        if self.config.announce_e2ae {
            m.push_header(ims_e2ae::SECURITY_CLIENT, ims_e2ae::HEADER_VALUE);
        }
        let answer = self.transaction(&m)?;
        if answer.status() != Some(200) {
            return Err(status_error(&answer));
        }
        let network_e2ae =
            answer.header_lines(ims_e2ae::SECURITY_SERVER).any(ims_e2ae::header_indicates_mediasec);
        let expires =
            answer.header("Expires").and_then(|e| e.trim().parse().ok()).unwrap_or(REGISTER_EXPIRES);
        let r = Registration { network_e2ae, expires };
        tracing::info!(impu = %self.config.impu, network_e2ae, "registered");
        self.registration = Some(r);
        Ok(r)
    }

    /// The SDP of this end: one audio stream on the media socket, RTP/SAVP, with `lines`.
    fn local_sdp(&mut self, lines: &[String]) -> Result<SessionDescription> {
        self.counter += 1;
        let mut sd = SessionDescription::new(u64::from(self.counter), 1, self.media_addr.ip());
        let mut m = MediaDescription::new("audio", self.media_addr.port(), PROTO_SAVP, &["0"]);
        m.attributes.push(Attribute::new("rtpmap", "0 PCMU/8000"));
        for l in lines {
            m.attributes
                .push(Attribute::parse(l).map_err(|e| Error::InvalidInput(format!("SDP attribute: {e}")))?);
        }
        m.attributes.push(Attribute::flag("sendrecv"));
        sd.media.push(m);
        Ok(sd)
    }

    /// Originating session set-up (TS 33.328 §7.2): INVITE with the SDP offer, ACK of the answer,
    /// keys from `keying`. A refused INVITE is [`Error::SipStatus`] (488 for an offer the peer or
    /// the network cannot accept); an unacceptable answer ends the dialog with BYE.
    pub fn call(&mut self, callee: &str, keying: &mut (dyn MediaKeying + Send)) -> Result<Call> {
        let registration = self.registration.ok_or_else(|| Error::InvalidInput("not registered".into()))?;
        let local_tag = self.next_tag("c");
        let call_id = format!("{local_tag}@{}", self.sip_addr.ip());
        let parties = CallParties {
            caller: self.config.impu.clone(),
            callee: callee.to_owned(),
            call_id: call_id.clone(),
        };
        let lines = keying.offer(&parties)?;
        if lines.iter().any(|l| l == ims_e2ae::REQUESTED_LINE) && !registration.network_e2ae {
            return Err(Error::InvalidInput(
                "e2ae requested, but the network did not indicate e2ae support at registration".into(),
            ));
        }
        let offer = self.local_sdp(&lines)?;
        let offer_text = offer.to_text().map_err(|e| Error::InvalidInput(e.to_string()))?;
        let (via, branch) = self.via();
        let mut invite = Message::new_request(Method::Invite, callee);
        invite.push_header("Via", &via);
        invite.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        invite.push_header("From", &format!("<{}>;tag={local_tag}", self.config.impu));
        invite.push_header("To", &format!("<{callee}>"));
        invite.push_header("Call-ID", &call_id);
        invite.push_header("CSeq", "1 INVITE");
        invite.push_header("Contact", &self.contact());
        invite.set_body(CONTENT_TYPE_SDP, offer_text.clone().into_bytes());
        let started = Instant::now();
        let answer = self.transaction(&invite)?;
        let setup_time = started.elapsed();
        let status = answer.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            self.ack_non_2xx(&invite, &answer, &branch)?;
            return Err(status_error(&answer));
        }
        let remote_tag = answer.to().map_err(malformed)?.tag().map(str::to_owned).unwrap_or_default();
        let remote_target = answer
            .contacts()
            .map_err(malformed)?
            .into_iter()
            .next()
            .map(|c| c.uri)
            .unwrap_or(callee.to_owned());
        let mut dialog = Dialog {
            call_id,
            local_tag,
            remote_tag,
            local_uri: self.config.impu.clone(),
            remote_uri: callee.to_owned(),
            remote_target,
            local_cseq: 1,
        };
        let ack = self.in_dialog_request(&dialog, Method::Ack, 1);
        self.send_to(&ack, self.config.pcscf)?;
        let remote_sdp = String::from_utf8_lossy(&answer.body).into_owned();
        let done = SessionDescription::parse(answer.body.as_slice())
            .map_err(|e| malformed(format!("SDP answer: {e}")))
            .and_then(|sd| {
                let m = sd.first_media("audio").ok_or_else(|| malformed("SDP answer without audio"))?;
                let to =
                    sd.media_address(m).ok_or_else(|| malformed("SDP answer without a unicast address"))?;
                let keys = keying.complete(&parties, &audio_attribute_lines(&sd))?;
                Ok((to, keys))
            });
        let (remote_media, keys) = match done {
            Ok(x) => x,
            Err(e) => {
                dialog.local_cseq += 1;
                let _ = self.bye_dialog(&mut dialog);
                return Err(e);
            }
        };
        tracing::info!(%remote_media, keying = keying.name(), "session established (originating)");
        Ok(Call { parties, keys, remote_media, local_sdp: offer_text, remote_sdp, setup_time, dialog })
    }

    fn ack_non_2xx(&self, invite: &Message, answer: &Message, branch: &str) -> Result<()> {
        let mut ack = Message::new_request(Method::Ack, invite.request_uri().unwrap_or_default());
        ack.push_header("Via", &format!("SIP/2.0/UDP {};branch={branch};rport", self.sip_addr));
        ack.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        for name in ["From", "Call-ID"] {
            if let Some(v) = invite.header(name) {
                ack.push_header(name, v);
            }
        }
        if let Some(v) = answer.header("To") {
            ack.push_header("To", v);
        }
        ack.push_header("CSeq", "1 ACK");
        self.send_to(&ack, self.config.pcscf)
    }

    fn in_dialog_request(&mut self, d: &Dialog, method: Method, seq: u32) -> Message {
        let (via, _) = self.via();
        let mut m = Message::new_request(method.clone(), &d.remote_target);
        m.push_header("Via", &via);
        m.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        m.push_header("From", &format!("<{}>;tag={}", d.local_uri, d.local_tag));
        m.push_header("To", &format!("<{}>;tag={}", d.remote_uri, d.remote_tag));
        m.push_header("Call-ID", &d.call_id);
        m.push_header("CSeq", &format!("{seq} {method}"));
        m.push_header("Contact", &self.contact());
        m
    }

    fn bye_dialog(&mut self, d: &mut Dialog) -> Result<()> {
        let bye = self.in_dialog_request(d, Method::Bye, d.local_cseq);
        let answer = self.transaction(&bye)?;
        match answer.status() {
            Some(200..=299) => Ok(()),
            _ => Err(status_error(&answer)),
        }
    }

    /// Terminating session set-up (TS 33.328 §7.3): waits up to the configured timeout for an
    /// INVITE, answers 200 with the SDP answer of `keying` and waits for the ACK; an offer
    /// `keying` refuses is answered 488 (with a Warning) and returned as the error.
    pub fn answer_call(&mut self, keying: &mut (dyn MediaKeying + Send)) -> Result<Call> {
        let deadline = Instant::now() + self.config.timeout;
        let (invite, from) = loop {
            let Some((m, from)) = self.recv_sip(deadline)? else {
                return Err(Error::SipTimeout { method: "INVITE (incoming)".into() });
            };
            if m.method() == Some(&Method::Invite) {
                break (m, from);
            }
            tracing::debug!("SIP message ignored while waiting for an INVITE");
        };
        let started = Instant::now();
        let back = invite.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
        let caller = invite.from().map_err(malformed)?;
        let parties = CallParties {
            caller: caller.uri.clone(),
            callee: self.config.impu.clone(),
            call_id: invite.call_id().map_err(malformed)?.to_owned(),
        };
        let local_tag = self.next_tag("t");
        let refuse = |ue: &Self, code: u16, why: &str| -> Result<()> {
            let mut r = Message::response_to(&invite, code, sip::message::reason_phrase(code));
            let _ = r.set_to_tag(&local_tag);
            let text: String = why.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
            r.push_header("Warning", &sip::Warning::new(399, "keysim-ue", &text).to_string());
            ue.send_to(&r, back)
        };
        let offer = match SessionDescription::parse(invite.body.as_slice()) {
            Ok(sd) => sd,
            Err(e) => {
                refuse(self, 488, &format!("SDP offer: {e}"))?;
                return Err(Error::InvalidInput(format!("SDP offer: {e}")));
            }
        };
        let Some(remote_media) = offer.first_media("audio").and_then(|m| offer.media_address(m)) else {
            refuse(self, 488, "no unicast audio stream")?;
            return Err(Error::InvalidInput("SDP offer without a unicast audio stream".into()));
        };
        let (lines, keys) = match keying.answer(&parties, &audio_attribute_lines(&offer)) {
            Ok(x) => x,
            Err(e) => {
                refuse(self, 488, &e.to_string())?;
                return Err(e);
            }
        };
        let answer_sdp = self.local_sdp(&lines)?;
        let answer_text = answer_sdp.to_text().map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut ok = Message::response_to(&invite, 200, "OK");
        ok.set_to_tag(&local_tag).map_err(malformed)?;
        ok.push_header("Contact", &self.contact());
        ok.set_body(CONTENT_TYPE_SDP, answer_text.clone().into_bytes());
        // 2xx retransmission until the ACK (RFC 3261 §13.3.1.4).
        let mut interval = SIP_T1;
        let mut next_send = Instant::now();
        let deadline = Instant::now() + self.config.timeout;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::SipTimeout { method: "ACK (incoming)".into() });
            }
            if Instant::now() >= next_send {
                self.send_to(&ok, back)?;
                next_send = Instant::now() + interval;
                interval = (interval * 2).min(SIP_T2);
            }
            let Some((m, _)) = self.recv_sip(next_send.min(deadline))? else { continue };
            if m.call_id().ok() != Some(parties.call_id.as_str()) {
                continue;
            }
            match m.method() {
                Some(Method::Ack) => break,
                Some(Method::Invite) => next_send = Instant::now(),
                _ => {}
            }
        }
        let dialog = Dialog {
            call_id: parties.call_id.clone(),
            local_tag,
            remote_tag: caller.tag().unwrap_or_default().to_owned(),
            local_uri: self.config.impu.clone(),
            remote_uri: caller.uri.clone(),
            remote_target: invite
                .contacts()
                .ok()
                .and_then(|c| c.into_iter().next())
                .map(|c| c.uri)
                .unwrap_or(caller.uri),
            local_cseq: 0,
        };
        tracing::info!(%remote_media, keying = keying.name(), "session established (terminating)");
        Ok(Call {
            parties,
            keys,
            remote_media,
            local_sdp: answer_text,
            remote_sdp: String::from_utf8_lossy(&invite.body).into_owned(),
            setup_time: started.elapsed(),
            dialog,
        })
    }

    /// Sends `packets` SRTP packets (payloads [`media_payload`] of `seed`, SSRC from the seed)
    /// to the peer while receiving and unprotecting the peer's, until `expect` arrived or the
    /// media stays idle for [`MEDIA_IDLE`].
    pub fn exchange_media(
        &mut self,
        call: &Call,
        packets: u32,
        expect: u32,
        seed: u64,
    ) -> Result<MediaReport> {
        let mut send_ctx = srtp_context(&call.keys.send)?;
        let mut recv_ctx = srtp_context(&call.keys.recv)?;
        let ssrc = u32::from_be_bytes(Sha256::digest(seed.to_be_bytes())[..4].try_into().unwrap_or([0; 4]));
        let first_seq = (seed as u16).wrapping_mul(31);
        self.media.set_nonblocking(true).map_err(io("media socket"))?;
        let mut report = MediaReport::default();
        let mut sent_hash = Sha256::new();
        let mut received: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut buf = vec![0u8; 2048];
        let mut last_activity = Instant::now();
        let mut drain = |ue: &Self, report: &mut MediaReport, received: &mut Vec<(u16, Vec<u8>)>| -> bool {
            let mut any = false;
            while let Ok((n, _)) = ue.media.recv_from(&mut buf) {
                any = true;
                report.packets_received += 1;
                let mut pkt = buf.get(..n).unwrap_or_default().to_vec();
                if ue.config.capture_media {
                    report.captured.push(pkt.clone());
                }
                match recv_ctx.unprotect_rtp_vec(&mut pkt) {
                    Ok(()) if pkt.len() >= 12 => {
                        report.packets_decrypted += 1;
                        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
                        received.push((seq, pkt[12..].to_vec()));
                    }
                    _ => report.packets_failed += 1,
                }
            }
            any
        };
        for i in 0..packets {
            let payload = media_payload(seed, i);
            sent_hash.update(&payload);
            let seq = first_seq.wrapping_add(i as u16);
            let mut pkt = Vec::with_capacity(12 + payload.len() + 32);
            pkt.extend_from_slice(&[0x80, AUDIO_PAYLOAD_TYPE]);
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&(i.wrapping_mul(AUDIO_PAYLOAD_LEN as u32)).to_be_bytes());
            pkt.extend_from_slice(&ssrc.to_be_bytes());
            pkt.extend_from_slice(&payload);
            send_ctx.protect_rtp_vec(&mut pkt)?;
            match self.media.send_to(&pkt, call.remote_media) {
                Ok(_) => report.packets_sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(Error::Io { context: "media send", source: e }),
            }
            if drain(self, &mut report, &mut received) {
                last_activity = Instant::now();
            }
            if i % 16 == 15 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        last_activity = last_activity.max(Instant::now());
        while report.packets_decrypted < u64::from(expect) && last_activity.elapsed() < MEDIA_IDLE {
            if drain(self, &mut report, &mut received) {
                last_activity = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // RTP sequence order, counted from the first packet (wraps at 2^16).
        if let Some(base) = received.iter().map(|(s, _)| *s).min_by_key(|s| s.wrapping_sub(received[0].0)) {
            received.sort_by_key(|(s, _)| s.wrapping_sub(base));
        }
        let mut h = Sha256::new();
        for (_, p) in &received {
            h.update(p);
        }
        report.media_sha256 = hex::encode(h.finalize());
        report.sent_sha256 = hex::encode(sent_hash.finalize());
        self.media.set_nonblocking(false).map_err(io("media socket"))?;
        Ok(report)
    }

    /// Ends the session with BYE (RFC 3261 §15.1.1).
    pub fn hang_up(&mut self, call: &mut Call) -> Result<()> {
        call.dialog.local_cseq += 1;
        let mut d = call.dialog.clone();
        self.bye_dialog(&mut d)
    }

    /// Waits for the peer's BYE of `call` and answers 200.
    pub fn await_hang_up(&mut self, call: &Call) -> Result<()> {
        let deadline = Instant::now() + self.config.timeout;
        loop {
            let Some((m, from)) = self.recv_sip(deadline)? else {
                return Err(Error::SipTimeout { method: "BYE (incoming)".into() });
            };
            if m.method() == Some(&Method::Bye) && m.call_id().ok() == Some(call.dialog.call_id.as_str()) {
                let back = m.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
                let ok = Message::response_to(&m, 200, "OK");
                self.send_to(&ok, back)?;
                return Ok(());
            }
        }
    }

    /// The IP address of the UE's sockets.
    pub fn ip(&self) -> IpAddr {
        self.sip_addr.ip()
    }
}

/// Both ends of one call run by [`run_call`].
#[derive(Debug)]
pub struct CallRun {
    /// The caller's session (`Err`: set-up failed there).
    pub caller: Result<(Call, MediaReport)>,
    /// The callee's session.
    pub callee: Result<(Call, MediaReport)>,
}

/// One call between two registered UEs: the callee answers on a thread of its own, both send
/// `packets` media packets (seeded with `seeds`), the caller hangs up.
pub fn run_call(
    caller: &mut ImsUe,
    callee: &mut ImsUe,
    caller_keying: &mut (dyn MediaKeying + Send),
    callee_keying: &mut (dyn MediaKeying + Send),
    packets: u32,
    seeds: (u64, u64),
) -> CallRun {
    let callee_impu = callee.impu().to_owned();
    std::thread::scope(|scope| {
        let answering = scope.spawn(move || -> Result<(Call, MediaReport)> {
            let call = callee.answer_call(callee_keying)?;
            let media = callee.exchange_media(&call, packets, packets, seeds.1)?;
            callee.await_hang_up(&call)?;
            Ok((call, media))
        });
        let caller_side = (|| -> Result<(Call, MediaReport)> {
            let mut call = caller.call(&callee_impu, caller_keying)?;
            let media = caller.exchange_media(&call, packets, packets, seeds.0)?;
            caller.hang_up(&mut call)?;
            Ok((call, media))
        })();
        let callee_side =
            answering.join().unwrap_or_else(|_| Err(Error::InvalidInput("callee thread panicked".into())));
        CallRun { caller: caller_side, callee: callee_side }
    })
}

fn status_error(answer: &Message) -> Error {
    let warnings: Vec<String> = answer.warnings().unwrap_or_default().into_iter().map(|w| w.text).collect();
    let reason = if warnings.is_empty() {
        answer.reason().unwrap_or_default().to_owned()
    } else {
        warnings.join("; ")
    };
    Error::SipStatus { peer: PEER, status: answer.status().unwrap_or(0), reason }
}
