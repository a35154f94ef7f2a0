//! The ME's SIP side of IMS-based MBMS user service security (TS 26.237 §10.4.2, with the
//! B-TID body of its Annex I): a UDP SIP UA (RFC 3261) that registers with an INVITE to the SCF
//! through the P-CSCF, and deregisters and requests MSKs with re-INVITEs in the same dialog.
//!
//! ```text
//! UE → P-CSCF → SCF   INVITE sip:scf@<domain>   (application/mbms-btid+xml: B-TID + userServiceIds)
//! SCF → UE            200 OK  (application/mbms-register-response+xml, relayed from the BM-SC)
//! UE → SCF            ACK (a new transaction, along the route set of the dialog)
//! UE → SCF            re-INVITE (deregistration, or Key Domain ID / MSK ID pairs) … 200, ACK
//! SCF → UE            403 + Warning 399 "GBA bootstrapping required" → [`Error::BtidRejected`]
//! UE → SCF            BYE … 200
//! ```
//!
//! Requests are retransmitted on loss (RFC 3261 §17.1.1.2 timer A for INVITE, §17.1.2.2 timer E
//! for BYE) until the transaction timeout; a retransmitted 2xx of an earlier INVITE is
//! acknowledged again (§13.2.2.4).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sip::{Message, Method};
use wire::mbms_key_management::{
    self, DeregisterRequest, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
};
use wire::sip_based_mbms::{self, SipProcedure, SipSecurityRequest};

use crate::error::{Error, Result};

const PEER: &str = "SCF";

/// RFC 3261 §17.1.1.1 T1: the round-trip estimate, first retransmission interval.
pub const SIP_T1: Duration = Duration::from_millis(500);
/// RFC 3261 §17.1.1.1 T2: the longest retransmission interval of non-INVITE requests.
pub const SIP_T2: Duration = Duration::from_secs(4);
/// RFC 3261 timers B and F: 64·T1, the longest a transaction waits for its final answer.
pub const SIP_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);
/// Max-Forwards of the UE's requests (RFC 3261 §8.1.1.6).
pub const MAX_FORWARDS: u32 = 70;
/// Largest datagram read.
const DATAGRAM_MAX: usize = sip::MAX_MESSAGE_LEN;

/// Where and who the UE is in the IM CN subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// The P-CSCF (loopback only): every request goes there.
    pub pcscf: SocketAddr,
    /// The SCF's Request-URI and To of the INVITE (`sip:scf@<domain>`).
    pub scf_uri: String,
    /// The UE's public user identity (From).
    pub impu: String,
}

/// The SIP UA of one UE: at most one dialog with the SCF at a time.
#[derive(Debug)]
pub struct SipClient {
    config: SipConfig,
    sock: UdpSocket,
    local: SocketAddr,
    timeout: Duration,
    call_counter: u32,
    branch_counter: u32,
    dialog: Option<Dialog>,
    /// The last 2xx ACK sent, with the CSeq it acknowledges (sent again on a retransmitted 2xx).
    last_ack: Option<(u32, Vec<u8>)>,
}

#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    remote_target: String,
    route: Vec<String>,
    cseq: u32,
    established: bool,
}

impl SipClient {
    /// A UA on an ephemeral loopback UDP port; `timeout` bounds each transaction (at most
    /// [`SIP_TRANSACTION_TIMEOUT`]).
    pub fn new(config: SipConfig, timeout: Duration) -> Result<Self> {
        if !config.pcscf.ip().is_loopback() {
            return Err(Error::InvalidInput(format!("P-CSCF {} is not a loopback address", config.pcscf)));
        }
        for (what, uri) in [("SCF URI", &config.scf_uri), ("IMPU", &config.impu)] {
            let ok = sip::SipUri::parse(uri).is_ok();
            if !ok {
                return Err(Error::InvalidInput(format!("{what} '{uri}' is no SIP URI")));
            }
        }
        let ip = config.pcscf.ip();
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
            .map_err(|source| Error::Io { context: "SIP socket", source })?;
        let local =
            sock.local_addr().map_err(|source| Error::Io { context: "SIP socket address", source })?;
        Ok(SipClient {
            config,
            sock,
            local,
            timeout: timeout.min(SIP_TRANSACTION_TIMEOUT),
            call_counter: 0,
            branch_counter: 0,
            dialog: None,
            last_ack: None,
        })
    }

    /// The UA's address (Via, Contact).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether a dialog with the SCF is established.
    pub fn in_dialog(&self) -> bool {
        self.dialog.as_ref().is_some_and(|d| d.established)
    }

    /// SIP-based registration of `service_ids` (TS 26.237 §10.4.2.1): INVITE, or re-INVITE in
    /// the dialog (which also moves the registration to a new B-TID, §10.4.2.3).
    pub fn register(&mut self, btid: &str, service_ids: &[String]) -> Result<RegisterResponse> {
        let p = SipProcedure::Register(RegisterRequest { service_ids: service_ids.to_vec() });
        let body = self.invite(btid, p, mbms_key_management::CONTENT_TYPE_REGISTER_RESPONSE)?;
        RegisterResponse::from_xml(&body).map_err(malformed)
    }

    /// SIP-based deregistration of `service_ids` (TS 26.237 §10.4.2.2): a re-INVITE.
    pub fn deregister(&mut self, btid: &str, service_ids: &[String]) -> Result<RegisterResponse> {
        let p = SipProcedure::Deregister(DeregisterRequest { service_ids: service_ids.to_vec() });
        let body = self.invite(btid, p, mbms_key_management::CONTENT_TYPE_REGISTER_RESPONSE)?;
        RegisterResponse::from_xml(&body).map_err(malformed)
    }

    /// SIP-based basic MSK request (TS 26.237 §10.4.2.4): a re-INVITE; the MSKs come as MIKEY.
    pub fn msk_request(&mut self, btid: &str, key_ids: &[MskKeyId]) -> Result<MskResponse> {
        let p = SipProcedure::MskRequest(MskRequest { key_ids: key_ids.to_vec() });
        let body = self.invite(btid, p, mbms_key_management::CONTENT_TYPE_MSK_RESPONSE)?;
        MskResponse::from_xml(&body).map_err(malformed)
    }

    /// Ends the dialog with BYE (RFC 3261 §15.1.1); nothing to do without one.
    pub fn bye(&mut self) -> Result<()> {
        if !self.in_dialog() {
            self.dialog = None;
            return Ok(());
        }
        let (request, _) = self.request(Method::Bye, None)?;
        let answer = self.transaction(&request, false);
        // The dialog ends whatever the answer (§15.1.1).
        self.dialog = None;
        let answer = answer?;
        match answer.status() {
            Some(200..=299) => Ok(()),
            _ => Err(status_error(&answer)),
        }
    }

    /// One INVITE transaction with the B-TID body; ACKs the final answer; the 2xx body of
    /// `expected` type.
    fn invite(&mut self, btid: &str, procedure: SipProcedure, expected: &str) -> Result<String> {
        if self.dialog.is_none() {
            self.call_counter += 1;
            let tag = format!("ue{}-{}-{}", std::process::id(), self.local.port(), self.call_counter);
            self.dialog = Some(Dialog {
                call_id: format!("{tag}@{}", self.local.ip()),
                from_tag: tag,
                to_tag: None,
                remote_target: self.config.scf_uri.clone(),
                route: Vec::new(),
                cseq: 0,
                established: false,
            });
        }
        let body = SipSecurityRequest { btid: btid.to_owned(), procedure }.to_xml();
        let (mut request, branch) = self.request(Method::Invite, None)?;
        request.set_body(sip_based_mbms::CONTENT_TYPE_SIP_SECURITY, body.into_bytes());
        let answer = match self.transaction(&request, true) {
            Ok(a) => a,
            Err(e) => {
                if !self.in_dialog() {
                    self.dialog = None;
                }
                return Err(e);
            }
        };
        let status = answer.status().unwrap_or(0);
        if (200..300).contains(&status) {
            self.learn_dialog(&answer)?;
            let cseq = self.dialog.as_ref().map_or(0, |d| d.cseq);
            let (ack, _) = self.request(Method::Ack, Some(cseq))?;
            let bytes = ack.to_bytes().map_err(|e| Error::InvalidInput(format!("ACK: {e}")))?;
            self.send(&bytes)?;
            self.last_ack = Some((cseq, bytes));
        } else {
            self.ack_non_2xx(&request, &answer, &branch)?;
            if !self.in_dialog() {
                // A refused initial INVITE creates no dialog (RFC 3261 §13.2.2.3).
                self.dialog = None;
            }
            return Err(refusal(&answer, btid));
        }
        match answer.content_type() {
            Some(t) if mbms_key_management::content_type_matches(t, expected) => {}
            other => return Err(malformed(format!("Content-Type {other:?}, expected {expected}"))),
        }
        String::from_utf8(answer.body).map_err(|_| malformed("the body is not UTF-8"))
    }

    /// The dialog state of a 2xx to the INVITE (RFC 3261 §12.1.2): To tag, remote target, route
    /// set (Record-Route reversed); a re-INVITE's 2xx updates the remote target (§12.2.1.2).
    fn learn_dialog(&mut self, answer: &Message) -> Result<()> {
        let to_tag = answer.to().map_err(malformed)?.tag().map(str::to_owned);
        let contact = answer.contacts().map_err(malformed)?.into_iter().next().map(|c| c.uri);
        let route: Vec<String> = answer.header_lines("Record-Route").rev().map(str::to_owned).collect();
        let dialog = self.dialog.as_mut().ok_or_else(|| malformed("2xx without a dialog"))?;
        if !dialog.established {
            dialog.to_tag = Some(to_tag.ok_or_else(|| malformed("2xx to the INVITE without a To tag"))?);
            dialog.route = route;
            dialog.established = true;
        }
        if let Some(c) = contact {
            dialog.remote_target = c;
        }
        Ok(())
    }

    /// The ACK of a non-2xx final answer: the INVITE's Request-URI, Via (branch), From and
    /// Call-ID, the answer's To (RFC 3261 §17.1.1.3).
    fn ack_non_2xx(&mut self, invite: &Message, answer: &Message, branch: &str) -> Result<()> {
        let mut ack = Message::new_request(Method::Ack, invite.request_uri().unwrap_or_default());
        ack.push_header("Via", &self.via(branch));
        ack.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        for name in ["From", "Call-ID"] {
            if let Some(v) = invite.header(name) {
                ack.push_header(name, v);
            }
        }
        if let Some(v) = answer.header("To") {
            ack.push_header("To", v);
        }
        let seq = invite.cseq().map_err(malformed)?.seq;
        ack.push_header("CSeq", &format!("{seq} ACK"));
        for r in invite.header_lines("Route") {
            ack.push_header("Route", r);
        }
        let bytes = ack.to_bytes().map_err(|e| Error::InvalidInput(format!("ACK: {e}")))?;
        self.send(&bytes)
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.local)
    }

    /// A request of the dialog: a new CSeq unless `cseq` is given (ACK); with its branch.
    fn request(&mut self, method: Method, cseq: Option<u32>) -> Result<(Message, String)> {
        self.branch_counter += 1;
        let local = self.local;
        let (scf_uri, impu) = (self.config.scf_uri.clone(), self.config.impu.clone());
        let dialog = self.dialog.as_mut().ok_or(Error::InvalidInput("no SIP dialog".into()))?;
        let seq = cseq.unwrap_or_else(|| {
            dialog.cseq += 1;
            dialog.cseq
        });
        let branch = format!("{}{}-{}", sip::BRANCH_MAGIC_COOKIE, dialog.from_tag, self.branch_counter);
        let mut m = Message::new_request(method.clone(), &dialog.remote_target);
        m.push_header("Via", &format!("SIP/2.0/UDP {local};branch={branch};rport"));
        m.push_header("Max-Forwards", &MAX_FORWARDS.to_string());
        m.push_header("From", &format!("<{impu}>;tag={}", dialog.from_tag));
        let to = match &dialog.to_tag {
            Some(t) => format!("<{scf_uri}>;tag={t}"),
            None => format!("<{scf_uri}>"),
        };
        m.push_header("To", &to);
        m.push_header("Call-ID", &dialog.call_id);
        m.push_header("CSeq", &format!("{seq} {method}"));
        m.push_header("Contact", &format!("<sip:ue@{local}>"));
        for r in &dialog.route {
            m.push_header("Route", r);
        }
        Ok((m, branch))
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        self.sock
            .send_to(bytes, self.config.pcscf)
            .map(|_| ())
            .map_err(|source| Error::Io { context: "SIP send", source })
    }

    /// Sends `request` and waits for its final answer, retransmitting with timer A (INVITE:
    /// T1, 2·T1, 4·T1 … until a provisional answer) or timer E (capped at T2), until the
    /// transaction timeout.
    fn transaction(&mut self, request: &Message, invite: bool) -> Result<Message> {
        let bytes = request.to_bytes().map_err(|e| Error::InvalidInput(format!("SIP request: {e}")))?;
        let cseq = request.cseq().map_err(malformed)?;
        let call_id = request.call_id().map_err(malformed)?.to_owned();
        let deadline = Instant::now() + self.timeout;
        let mut interval = SIP_T1;
        let mut next_send = Instant::now();
        let mut retransmitting = true;
        let mut buf = vec![0u8; DATAGRAM_MAX];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::SipTimeout { method: cseq.method.to_string() });
            }
            if retransmitting && now >= next_send {
                tracing::debug!(method = %cseq.method, seq = cseq.seq, "SIP request sent");
                self.send(&bytes)?;
                next_send = now + interval;
                interval = if invite { interval * 2 } else { (interval * 2).min(SIP_T2) };
            }
            let wake = if retransmitting { next_send.min(deadline) } else { deadline };
            let wait = wake.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            self.sock
                .set_read_timeout(Some(wait))
                .map_err(|source| Error::Io { context: "SIP socket timeout", source })?;
            let n = match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(source) => return Err(Error::Io { context: "SIP receive", source }),
            };
            let Some(answer) = buf.get(..n).and_then(|d| Message::parse(d).ok()) else {
                tracing::warn!(len = n, "unreadable SIP datagram dropped");
                continue;
            };
            let Some(status) = answer.status() else {
                tracing::debug!("SIP request to the UE ignored");
                continue;
            };
            let (Ok(a_cseq), Ok(a_call)) = (answer.cseq(), answer.call_id()) else { continue };
            if a_call != call_id {
                continue;
            }
            if a_cseq.method == Method::Invite && a_cseq.seq != cseq.seq && (200..300).contains(&status) {
                // A retransmitted 2xx of an earlier INVITE: its ACK was lost.
                if let Some((seq, ack)) = &self.last_ack
                    && *seq == a_cseq.seq
                {
                    self.send(ack)?;
                }
                continue;
            }
            if a_cseq != cseq {
                continue;
            }
            if status < 200 {
                if invite {
                    retransmitting = false;
                }
                continue;
            }
            return Ok(answer);
        }
    }
}

fn malformed(reason: impl ToString) -> Error {
    Error::MalformedAnswer { peer: PEER, reason: reason.to_string() }
}

/// The Warning texts of an answer, or its reason phrase.
fn reason_of(answer: &Message) -> String {
    let warnings: Vec<String> = answer.warnings().unwrap_or_default().into_iter().map(|w| w.text).collect();
    if warnings.is_empty() { answer.reason().unwrap_or_default().to_owned() } else { warnings.join("; ") }
}

fn status_error(answer: &Message) -> Error {
    Error::SipStatus { peer: PEER, status: answer.status().unwrap_or(0), reason: reason_of(answer) }
}

/// A non-2xx final answer: the re-bootstrap answer (TS 26.237 §10.4.2.1) is
/// [`Error::BtidRejected`]; anything else [`Error::SipStatus`].
fn refusal(answer: &Message, btid: &str) -> Error {
    let rebootstrap = answer.status() == Some(sip_based_mbms::SIP_STATUS_REBOOTSTRAP)
        && answer.warnings().unwrap_or_default().iter().any(|w| {
            w.code == sip_based_mbms::SIP_WARN_CODE_REBOOTSTRAP
                && w.text == sip_based_mbms::SIP_WARN_TEXT_REBOOTSTRAP
        });
    if rebootstrap {
        tracing::info!(btid, "the SCF wants a new bootstrapping");
        Error::BtidRejected { btid: btid.to_owned() }
    } else {
        status_error(answer)
    }
}
