//! The IMS UE of KMS-based media plane security (TS 33.328 §7.2.3, §7.3.3, Annex B): MIKEY-TICKET
//! (RFC 6043) behind the [`MediaKeying`] trait, authenticated to the KMS with GBA (the NAF key of
//! NAF_Id = KMS FQDN ‖ Ua protocol id (0x01,0x00,0x00,0x00,0x06), Ks_ext_NAF from the card for
//! GBA_U, Ks_NAF for GBA_ME).
//!
//! * Offerer (B.1.2): a reusable ticket from the store, or a REQUEST_INIT_PSK to the KMS over HTTP
//!   (Annex A), or — mode 3 — a ticket it creates itself with the NAF key as TPK; then the
//!   TRANSFER_INIT goes into the SDP offer as `a=key-mgmt:mikey <base64>` (RFC 4567 §3.1).
//! * Answerer (B.2.2.2): the ticket's keys from its store of resolved reusable tickets or a
//!   RESOLVE_INIT_PSK to its KMS; the TRANSFER_RESP (with its KMS UID, key forking) goes into the
//!   answer.
//! * Offerer again: checks the TRANSFER_RESP with the forked MPKr' and that the authenticated
//!   responder is an allowed recipient of the ticket.
//!
//! SRTP keys: crypto session 1 carries the offerer's media, 2 the answerer's; each TEK and master
//! salt come from the forked TGK (RFC 6043 §5.1.3).
//!
//! Replay protection (RFC 3830 §5.4, kept by RFC 6043 for TRANSFER_INIT / TRANSFER_RESP): the
//! answerer refuses a TRANSFER_INIT whose T lies outside [`ALLOWED_CLOCK_SKEW`] of its clock, and
//! keeps a bounded replay cache of the TRANSFER_INITs it accepted (a digest of the whole message,
//! until its T leaves the window). A message enters the cache only after its MAC verified with
//! the ticket's MPKi — which the answerer has only after resolving the ticket or finding it in its
//! store of resolved reusable tickets — and after the answer is built, so a refusal stores
//! nothing. A replayed or stale TRANSFER_INIT is refused with [`Error::KeyFreshness`] (the call
//! agent answers 488) and counted in [`KmsUeStats`]. When the cache is full of live entries, new
//! offers are refused (evicting one would reopen its replay window). The offerer accepts a
//! TRANSFER_RESP only for its pending TRANSFER_INIT (the MAC covers that TRANSFER_INIT and the CSB
//! ID must match), only once (the pending offer ends with it), and only with a T inside the window.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gba::NafId;
use mikey::ticket::exchange::{
    self as tx, Key128, OwnedTicket, PolicySpec, RequestGrant, RequestInit, ResolveGrant, ResolveInit,
    TicketKeys, TransferInit, TransferResp,
};
use mikey::ticket::kms_uid;
use mikey::{Message, NTP_UNIX_OFFSET, ntp_from_unix};
use serde::Serialize;
use sim_reader::Reader;
use srtp::{CryptoSuite, MasterKey};
use wire::kms_http::{self, MIKEY_CONTENT_TYPE, RequestType, kms_naf_id};

use crate::error::{Error, Result};
use crate::gba_client::{GbaClient, GbaVariant, NafKeys};
use crate::http_client::{DEFAULT_HTTP_TIMEOUT, HttpClient, fresh_cnonce};
use crate::media_keying::{CallParties, MediaKeying, MediaKeys, SrtpKeying};

/// The RFC 4567 attribute prefix for MIKEY (without `a=`).
pub const KEY_MGMT_MIKEY: &str = "key-mgmt:mikey ";
/// The SRTP suite the tickets' keys are used with.
pub const SRTP_SUITE: CryptoSuite = CryptoSuite::Aes128CmHmacSha1_80;
/// How far a TRANSFER_INIT's or TRANSFER_RESP's T may be from the UE clock, either way (RFC 3830
/// §5.4); the value is [`mikey::ticket::profile::ALLOWED_CLOCK_SKEW_SECS`] (a deployment choice).
pub const ALLOWED_CLOCK_SKEW: Duration = Duration::from_secs(mikey::ticket::profile::ALLOWED_CLOCK_SKEW_SECS);
/// Most accepted TRANSFER_INITs the answerer remembers (RFC 3830 §5.4 replay cache), each a
/// 32-byte digest and an expiry. A choice: far more offers than a UE answers in one window.
pub const TRANSFER_REPLAY_CACHE_MAX: usize = 1024;

/// How the offerer gets its tickets (local policy, TS 33.328 §6.2.3.3, B.1.2 step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketSource {
    /// Ticket Request to the KMS (modes 1 / 2).
    Kms,
    /// The UE creates the ticket with its NAF key as TPK (mode 3, Otway-Rees-like).
    Mode3,
}

/// One UE's KMS settings.
#[derive(Debug, Clone)]
pub struct KmsUeConfig {
    /// `http://127.0.0.1:port` of its KMS.
    pub kms_url: String,
    /// The KMS FQDN (NAF FQDN and IDRkms).
    pub kms_fqdn: String,
    /// The IMPI (for the NAF key derivation).
    pub impi: String,
    /// Where tickets come from.
    pub source: TicketSource,
    /// Ask for (and keep) reusable tickets.
    pub reuse: bool,
    /// Allowed recipients to ask for instead of the callee's KMS UID (a group identity with `?`).
    pub recipients: Option<Vec<String>>,
    /// Validity asked for.
    pub lifetime: Duration,
}

impl KmsUeConfig {
    /// Settings for the KMS at `kms_url` named `kms_fqdn`.
    pub fn new(kms_url: &str, kms_fqdn: &str, impi: &str) -> Self {
        KmsUeConfig {
            kms_url: kms_url.to_owned(),
            kms_fqdn: kms_fqdn.to_owned(),
            impi: impi.to_owned(),
            source: TicketSource::Kms,
            reuse: false,
            recipients: None,
            lifetime: Duration::from_secs(3600),
        }
    }
}

/// What the UE counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KmsUeStats {
    /// REQUEST_INIT_PSKs sent.
    pub ticket_requests: u64,
    /// Tickets created in mode 3.
    pub tickets_created: u64,
    /// Offers that reused a stored ticket.
    pub tickets_reused: u64,
    /// RESOLVE_INIT_PSKs sent.
    pub resolves: u64,
    /// Answers that took the keys from the store of resolved tickets.
    pub resolved_from_store: u64,
    /// The responder identities authenticated by TRANSFER_RESPs.
    pub authenticated_responders: Vec<String>,
    /// TRANSFER_INITs refused because their T was outside [`ALLOWED_CLOCK_SKEW`].
    pub stale_transfers: u64,
    /// TRANSFER_INITs refused as replays (already in the replay cache).
    pub replayed_transfers: u64,
    /// TRANSFER_INITs refused because the replay cache was full of live entries.
    pub replay_cache_full: u64,
    /// TRANSFER_RESPs refused because their T was outside [`ALLOWED_CLOCK_SKEW`].
    pub stale_transfer_resps: u64,
}

struct StoredTicket {
    ticket: OwnedTicket,
    mpki: Key128,
    mpkr: Key128,
    tgk: Key128,
    policy: PolicySpec,
}

struct Pending {
    init: Vec<u8>,
    ticket: OwnedTicket,
    mpkr: Key128,
    tgk: Key128,
    policy: PolicySpec,
    randri: Vec<u8>,
}

/// KMS-based media keying of one UE over its card.
pub struct KmsKeying<R> {
    gba: GbaClient<R>,
    http: HttpClient,
    cfg: KmsUeConfig,
    naf_id: NafId,
    issued: HashMap<String, StoredTicket>,
    resolved: HashMap<Vec<u8>, (ResolveGrant, PolicySpec)>,
    pending: Option<Pending>,
    /// Replay cache: SHA-256 of an accepted TRANSFER_INIT → last second (UE clock) its T is inside
    /// the window.
    replay_cache: HashMap<[u8; 32], u64>,
    clock_offset: i64,
    stats: KmsUeStats,
}

impl<R> core::fmt::Debug for KmsKeying<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KmsKeying")
            .field("kms", &self.cfg.kms_fqdn)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn real_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The Unix seconds of a MIKEY message's NTP T, `None` without T or with a counter T (which a
/// clock cannot check).
fn t_secs(message: &[u8]) -> Result<Option<u64>> {
    let m = Message::parse_ticket(message).map_err(mikey)?;
    Ok(m.timestamp().and_then(|t| t.ntp_seconds()).map(|s| u64::from(s).saturating_sub(NTP_UNIX_OFFSET)))
}

/// `n` fresh bytes: SHA-256 over the cnonce generator's output (process randomness, time, counter).
fn random(n: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::with_capacity(n + 32);
    while out.len() < n {
        out.extend_from_slice(&Sha256::digest(fresh_cnonce().as_bytes()));
    }
    out.truncate(n);
    out
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&random(4));
    u32::from_be_bytes(b)
}

fn key128() -> Key128 {
    let mut k = [0u8; 16];
    k.copy_from_slice(&random(16));
    Key128(k)
}

fn mikey(e: mikey::Error) -> Error {
    Error::MalformedMikey { reason: Some(e) }
}

fn uid(impu: &str) -> Result<String> {
    kms_uid(impu)
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidInput(format!("{impu} is not a SIP URI with a user part")))
}

fn srtp_keying(k: &tx::SessionKey) -> SrtpKeying {
    SrtpKeying { suite: SRTP_SUITE, master: MasterKey::new(k.tek, k.salt, Vec::new()), kdr: 0 }
}

/// The MIKEY message of the first `key-mgmt:mikey` attribute (RFC 4567 §3.1).
pub fn mikey_from_attributes(attrs: &[String]) -> Result<Vec<u8>> {
    let a = attrs
        .iter()
        .find_map(|a| a.strip_prefix(KEY_MGMT_MIKEY))
        .ok_or_else(|| Error::InvalidInput("no key-mgmt:mikey attribute".into()))?;
    B64.decode(a.trim()).map_err(|e| Error::InvalidInput(format!("key-mgmt:mikey data: {e}")))
}

impl<R: Reader> KmsKeying<R> {
    /// A UE whose `gba` client has bootstrapped already.
    pub fn new(gba: GbaClient<R>, cfg: KmsUeConfig) -> Result<Self> {
        let http = HttpClient::new("KMS", &cfg.kms_url, DEFAULT_HTTP_TIMEOUT)?;
        let naf_id = kms_naf_id(&cfg.kms_fqdn)?;
        Ok(KmsKeying {
            gba,
            http,
            cfg,
            naf_id,
            issued: HashMap::new(),
            resolved: HashMap::new(),
            pending: None,
            replay_cache: HashMap::new(),
            clock_offset: 0,
            stats: KmsUeStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &KmsUeStats {
        &self.stats
    }

    /// Moves the UE clock (tests of validity periods and of the replay window).
    pub fn advance_clock(&mut self, secs: i64) {
        self.clock_offset = self.clock_offset.saturating_add(secs);
    }

    /// How many accepted TRANSFER_INITs the replay cache holds (expired ones are dropped at the
    /// next answer).
    pub fn replay_cache_len(&self) -> usize {
        self.replay_cache.len()
    }

    fn now(&self) -> u64 {
        real_now().saturating_add_signed(self.clock_offset)
    }

    /// RFC 3830 §5.4 before anything else: T inside the window and the message not in the replay
    /// cache. Returns the message's cache key and expiry; records nothing.
    fn check_transfer_init(&mut self, init: &[u8]) -> Result<([u8; 32], u64)> {
        use sha2::{Digest, Sha256};
        let now = self.now();
        let skew = ALLOWED_CLOCK_SKEW.as_secs();
        let Some(t) = t_secs(init)? else {
            self.stats.stale_transfers += 1;
            return Err(Error::KeyFreshness);
        };
        if t.abs_diff(now) > skew {
            self.stats.stale_transfers += 1;
            tracing::info!(offset = t.abs_diff(now), "KMS keying: stale TRANSFER_INIT refused");
            return Err(Error::KeyFreshness);
        }
        let id: [u8; 32] = Sha256::digest(init).into();
        if self.replay_cache.get(&id).is_some_and(|until| *until >= now) {
            self.stats.replayed_transfers += 1;
            tracing::info!("KMS keying: replayed TRANSFER_INIT refused");
            return Err(Error::KeyFreshness);
        }
        Ok((id, t + skew))
    }

    /// Records an authenticated, answered TRANSFER_INIT; refuses when the cache is full of live
    /// entries.
    fn remember_transfer_init(&mut self, id: [u8; 32], until: u64) -> Result<()> {
        let now = self.now();
        self.replay_cache.retain(|_, u| *u >= now);
        if self.replay_cache.len() >= TRANSFER_REPLAY_CACHE_MAX {
            self.stats.replay_cache_full += 1;
            return Err(Error::InvalidInput("the TRANSFER_INIT replay cache is full".into()));
        }
        self.replay_cache.insert(id, until);
        Ok(())
    }

    /// GBA_U or GBA_ME.
    pub fn variant(&self) -> GbaVariant {
        self.gba.variant()
    }

    /// The settings.
    pub fn config_mut(&mut self) -> &mut KmsUeConfig {
        &mut self.cfg
    }

    /// How many reusable tickets the offerer keeps, and how many resolved ones the answerer keeps.
    pub fn stored(&self) -> (usize, usize) {
        (self.issued.len(), self.resolved.len())
    }

    fn naf_keys(&mut self) -> Result<NafKeys> {
        let naf_id = self.naf_id.clone();
        let impi = self.cfg.impi.clone();
        self.gba.naf_keys(&naf_id, &impi)
    }

    fn post(&self, request_type: RequestType, message: &[u8]) -> Result<Vec<u8>> {
        let path = request_type.path_and_query();
        let body = kms_http::encode_body(message);
        let a = self.http.exchange("POST", &path, &[], Some((MIKEY_CONTENT_TYPE, body.as_bytes())))?;
        if a.status != 200 {
            return Err(Error::HttpStatus { peer: "KMS", status: a.status, reason: a.reason() });
        }
        let resp = kms_http::decode_body(&a.body)
            .map_err(|e| Error::MalformedAnswer { peer: "KMS", reason: e.to_string() })?;
        let m = Message::parse_ticket(&resp).map_err(mikey)?;
        if let Some(n) = m.error_no() {
            return Err(Error::InvalidInput(format!("the KMS refused with MIKEY error {}", n.0)));
        }
        Ok(resp)
    }

    /// A ticket for `callee` (B.1.2 steps 1–9).
    fn ticket_for(&mut self, caller: &str, callee: &str) -> Result<StoredTicket> {
        let t_now = self.now();
        if self.cfg.reuse
            && let Some(s) = self.issued.get(callee)
            && s.policy.valid_at(t_now)
            && s.policy.allows(&[callee.to_owned()]).is_some()
        {
            self.stats.tickets_reused += 1;
            return Ok(StoredTicket {
                ticket: s.ticket.clone(),
                mpki: s.mpki.clone(),
                mpkr: s.mpkr.clone(),
                tgk: s.tgk.clone(),
                policy: s.policy.clone(),
            });
        }
        let recipients: Vec<String> = self.cfg.recipients.clone().unwrap_or_else(|| vec![callee.to_owned()]);
        let rs: Vec<&str> = recipients.iter().map(String::as_str).collect();
        let mut policy = PolicySpec::ims(&self.cfg.kms_fqdn, caller, &rs, self.cfg.reuse);
        let naf = self.naf_keys()?;
        let stored = match self.cfg.source {
            TicketSource::Mode3 => {
                policy.flags.d = false;
                policy.valid_from = Some(t_now);
                policy.valid_to = Some(t_now + self.cfg.lifetime.as_secs());
                let keys = TicketKeys { mpk: key128(), tgk: key128() };
                let ticket = tx::issue_ticket(
                    &policy,
                    naf.key.expose(),
                    &naf.btid,
                    &keys,
                    &random(tx::TICKET_RAND_LEN),
                    ntp_from_unix(t_now),
                )
                .map_err(mikey)?;
                let (mpki, mpkr) = tx::mpk_pair(&ticket, &keys.mpk).map_err(mikey)?;
                self.stats.tickets_created += 1;
                StoredTicket { ticket, mpki, mpkr, tgk: keys.tgk.clone(), policy }
            }
            TicketSource::Kms => {
                policy.valid_to = Some(t_now + self.cfg.lifetime.as_secs());
                let init = tx::build_request_init(
                    &RequestInit {
                        csb_id: random_u32(),
                        t: ntp_from_unix(t_now),
                        randri: random(tx::RAND_LEN),
                        initiator: caller.to_owned(),
                        kms: self.cfg.kms_fqdn.clone(),
                        policy,
                        psk_id: naf.btid.clone(),
                    },
                    naf.key.expose(),
                )
                .map_err(mikey)?;
                self.stats.ticket_requests += 1;
                let resp = self.post(RequestType::TicketRequest, &init)?;
                let RequestGrant { ticket, mpki, mpkr, tgk } =
                    tx::open_request_resp(&resp, &init, naf.key.expose()).map_err(mikey)?;
                let granted = ticket.policy().map_err(mikey)?;
                // B.1.2 step 9: the granted policy must still fit the call.
                if granted.allows(&[callee.to_owned()]).is_none()
                    || granted.initiator.as_deref() != Some(caller)
                {
                    return Err(Error::InvalidInput(
                        "the granted ticket policy does not fit the call".into(),
                    ));
                }
                StoredTicket { ticket, mpki, mpkr, tgk, policy: granted }
            }
        };
        if self.cfg.reuse && stored.policy.flags.j {
            self.issued.insert(
                callee.to_owned(),
                StoredTicket {
                    ticket: stored.ticket.clone(),
                    mpki: stored.mpki.clone(),
                    mpkr: stored.mpkr.clone(),
                    tgk: stored.tgk.clone(),
                    policy: stored.policy.clone(),
                },
            );
        }
        Ok(stored)
    }

    /// The ticket's keys for this answerer (B.2.2.2 steps 1–8).
    fn resolve(&mut self, view: &tx::TransferView, me: &str) -> Result<ResolveGrant> {
        let fp = view.ticket.fingerprint();
        if view.ticket.flags.j
            && let Some((g, p)) = self.resolved.get(&fp)
            && p.valid_at(self.now())
        {
            self.stats.resolved_from_store += 1;
            return Ok(g.clone());
        }
        let naf = self.naf_keys()?;
        let init = tx::build_resolve_init(
            &ResolveInit {
                csb_id: random_u32(),
                t: ntp_from_unix(self.now()),
                randrr: random(tx::RAND_LEN),
                responder: me.to_owned(),
                kms: self.cfg.kms_fqdn.clone(),
                ticket: view.ticket.clone(),
                psk_id: Some(naf.btid.clone()),
            },
            Some(naf.key.expose()),
        )
        .map_err(mikey)?;
        self.stats.resolves += 1;
        let resp = self.post(RequestType::TicketResolve, &init)?;
        let grant = tx::open_resolve_resp(&resp, &init, Some(naf.key.expose())).map_err(mikey)?;
        if view.ticket.flags.j {
            self.resolved.insert(fp, (grant.clone(), view.policy.clone()));
        }
        Ok(grant)
    }
}

impl<R: Reader> MediaKeying for KmsKeying<R> {
    fn name(&self) -> &'static str {
        "kms"
    }

    fn offer(&mut self, call: &CallParties) -> Result<Vec<String>> {
        let caller = uid(&call.caller)?;
        let callee = uid(&call.callee)?;
        let s = self.ticket_for(&caller, &callee)?;
        let randri = random(tx::RAND_LEN);
        let init = tx::build_transfer_init(
            &TransferInit {
                csb_id: random_u32(),
                t: ntp_from_unix(self.now()),
                randri: randri.clone(),
                initiator: caller,
                responder: callee,
                ssrc: random_u32(),
                ticket: s.ticket.clone(),
            },
            &s.mpki,
            &s.mpkr,
        )
        .map_err(mikey)?;
        let attr = format!("{KEY_MGMT_MIKEY}{}", B64.encode(&init));
        self.pending =
            Some(Pending { init, ticket: s.ticket, mpkr: s.mpkr, tgk: s.tgk, policy: s.policy, randri });
        Ok(vec![attr])
    }

    fn answer(&mut self, call: &CallParties, offer: &[String]) -> Result<(Vec<String>, MediaKeys)> {
        let init = mikey_from_attributes(offer)?;
        let view = tx::read_transfer_init(&init).map_err(mikey)?;
        let me = uid(&call.callee)?;
        // B.2.2.2 step 1: the ticket's issuer is the caller of the INVITE.
        if view.initiator != uid(&call.caller)? {
            return Err(Error::InvalidInput(format!(
                "the ticket was issued to {}, not to the caller",
                view.initiator
            )));
        }
        if !view.policy.valid_at(self.now()) {
            return Err(Error::InvalidInput("the ticket is outside its validity period".into()));
        }
        let (replay_id, replay_until) = self.check_transfer_init(&init)?;
        let grant = self.resolve(&view, &me)?;
        tx::verify_transfer_init(&init, &grant.mpki).map_err(|_| Error::MacFailure)?;
        let randrr = random(tx::RAND_LEN);
        let resp = tx::build_transfer_resp(
            &init,
            &TransferResp {
                t: ntp_from_unix(self.now()),
                randrr: randrr.clone(),
                responder: grant.responder.clone(),
                randrkms: grant.randrkms.clone(),
                ssrc: random_u32(),
            },
            &grant.mpkr,
        )
        .map_err(mikey)?;
        let f = view.ticket.flags;
        let ks =
            |cs| tx::session_key(view.ticket.prf, &grant.tgk, cs, &f, &view.randri, &randrr).map_err(mikey);
        let keys = MediaKeys {
            send: srtp_keying(&ks(tx::CS_RESPONDER)?),
            recv: srtp_keying(&ks(tx::CS_INITIATOR)?),
        };
        // Authenticated and answered: only now does it enter the replay cache.
        self.remember_transfer_init(replay_id, replay_until)?;
        Ok((vec![format!("{KEY_MGMT_MIKEY}{}", B64.encode(&resp))], keys))
    }

    fn complete(&mut self, call: &CallParties, answer: &[String]) -> Result<MediaKeys> {
        let p = self.pending.take().ok_or_else(|| Error::InvalidInput("no offer is pending".into()))?;
        let resp = mikey_from_attributes(answer)?;
        let v = tx::read_transfer_resp(&resp).map_err(mikey)?;
        let (mpkr, tgk) = if p.ticket.flags.i {
            tx::fork(p.ticket.prf, &p.mpkr, &p.tgk, &v.responder, &v.randrkms).map_err(mikey)?
        } else {
            (p.mpkr.clone(), p.tgk.clone())
        };
        tx::verify_transfer_resp(&resp, &p.init, &mpkr).map_err(|_| Error::MacFailure)?;
        let now = self.now();
        if t_secs(&resp)?.is_none_or(|t| t.abs_diff(now) > ALLOWED_CLOCK_SKEW.as_secs()) {
            self.stats.stale_transfer_resps += 1;
            return Err(Error::KeyFreshness);
        }
        // B.1.2 step 11: the authenticated responder must be one the ticket allows.
        if p.policy.allows(std::slice::from_ref(&v.responder)).is_none() {
            return Err(Error::InvalidInput(format!(
                "responder {} is not an allowed recipient",
                v.responder
            )));
        }
        if uid(&call.callee)? != v.responder {
            tracing::warn!(callee = %call.callee, responder = %v.responder, "KMS keying: the call was answered by another identity");
        }
        self.stats.authenticated_responders.push(v.responder.clone());
        let f = p.ticket.flags;
        let ks = |cs| tx::session_key(p.ticket.prf, &tgk, cs, &f, &p.randri, &v.randrr).map_err(mikey);
        Ok(MediaKeys { send: srtp_keying(&ks(tx::CS_INITIATOR)?), recv: srtp_keying(&ks(tx::CS_RESPONDER)?) })
    }
}
