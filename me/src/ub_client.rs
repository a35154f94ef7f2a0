//! GBA bootstrapping over Ub (TS 33.220 §4.5.2 / §5.3.2, TS 24.109 §4–5, RFC 3310 HTTP Digest
//! AKA): the ME's HTTP side of [`GbaClient`], for GBA_U and GBA_ME.
//!
//! ```text
//! ME → BSF  GET /   User-Agent: … 3gpp-gba-uicc | 3gpp-gba
//!                   Authorization: Digest username="IMPI", realm, nonce="", uri="/", response=""
//! BSF → ME  401     WWW-Authenticate: Digest …, nonce=base64(RAND ‖ AUTN(*)), algorithm=AKAv1-MD5
//!           card:   AUTHENTICATE (GBA bootstrapping or 3G) → RES | AUTS | MAC failure
//! ME → BSF  GET /   Authorization: Digest …, response=H(RES …)          [or auts=…, empty password]
//! BSF → ME  200     Authentication-Info: rspauth=…   BootstrappingInfo(B-TID, lifetime)
//!           card:   B-TID and lifetime into EF.GBABP (GBA_U) / the ME's bootstrap (GBA_ME)
//! ```
//!
//! A synchronisation failure sends AUTS and runs the fresh challenge once more; a second one is an
//! error. The BSF is authenticated twice: by the card (AUTN) and by `rspauth` over the 200 OK body,
//! checked before anything is written.

use std::time::{Duration, Instant};

use sim_reader::Reader;
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest};
use wire::ub::{self, AkaNonce, BootstrappingInfo};

use crate::error::{Error, Result};
use crate::gba_client::{BootstrapOutcome, GbaClient, GbaVariant};
use crate::http_client::{Answer, DEFAULT_HTTP_TIMEOUT, HttpClient, fresh_cnonce};

const PEER: &str = "BSF";
/// How many AUTS resynchronisations one bootstrapping runs before giving up (RFC 3310 §3.4:
/// the new challenge after a resynchronisation must verify).
pub const MAX_RESYNCHRONISATIONS: u32 = 1;
/// The product token of this ME in `User-Agent`, before the GBA token of TS 24.109 §4.3.1.
pub const USER_AGENT_PRODUCT: &str = concat!("keysim-me/", env!("CARGO_PKG_VERSION"));

/// What one bootstrapping did (for logs and timing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// GBA_U or GBA_ME.
    pub variant: GbaVariant,
    /// The B-TID the BSF assigned.
    pub btid: String,
    /// The key lifetime, as the BSF sent it (`YYYY-MM-DDThh:mm:ssZ`).
    pub lifetime: String,
    /// The RAND of the run (named by the B-TID).
    pub rand: [u8; 16],
    /// AUTS resynchronisations run.
    pub resynchronisations: u32,
    /// HTTP requests sent.
    pub http_requests: u32,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// The Ub client of one BSF.
#[derive(Debug)]
pub struct UbClient {
    http: HttpClient,
    realm: String,
}

impl UbClient {
    /// A client of the BSF at `bsf_url` (`http://host:port/`, loopback only), with the default
    /// time limit per HTTP exchange.
    pub fn new(bsf_url: &str) -> Result<Self> {
        Self::with_timeout(bsf_url, DEFAULT_HTTP_TIMEOUT)
    }

    /// [`Self::new`] with a time limit per HTTP exchange.
    pub fn with_timeout(bsf_url: &str, timeout: Duration) -> Result<Self> {
        Self::with_source(bsf_url, timeout, None)
    }

    /// [`Self::with_timeout`] with the requests leaving from the loopback address `source`.
    pub fn with_source(bsf_url: &str, timeout: Duration, source: Option<std::net::IpAddr>) -> Result<Self> {
        let http = HttpClient::with_source(PEER, bsf_url, timeout, source)?;
        // The first request carries a realm before the BSF has named one (TS 24.109 §4.3.1): the
        // BSF's host name as the ME addresses it. The answers use the challenge's realm.
        let realm = bsf_url
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_default();
        Ok(UbClient { http, realm })
    }

    /// The User-Agent of `variant` (TS 24.109 §4.3.1): `3gpp-gba-uicc` when the card runs GBA_U.
    pub fn user_agent(variant: GbaVariant) -> String {
        let token = match variant {
            GbaVariant::GbaU => ub::USER_AGENT_GBA_UICC,
            GbaVariant::GbaMe => ub::USER_AGENT_GBA,
        };
        format!("{USER_AGENT_PRODUCT} {token}")
    }

    /// Runs one bootstrapping for `impi` with the card behind `gba` and stores B-TID and lifetime
    /// with [`GbaClient::complete_bootstrap`]. PIN1 must be verified.
    pub fn bootstrap<R: Reader>(&self, gba: &mut GbaClient<R>, impi: &str) -> Result<BootstrapReport> {
        let start = Instant::now();
        let variant = gba.variant();
        let user_agent = Self::user_agent(variant);
        let mut http_requests = 0u32;
        let mut resynchronisations = 0u32;
        let mut send = |authorization: &str| -> Result<Answer> {
            http_requests += 1;
            self.http.exchange(
                "GET",
                ub::UB_REQUEST_URI,
                &[("User-Agent", &user_agent), ("Authorization", authorization)],
                None,
            )
        };
        let initial = DigestAuthorization::initial(impi, &self.realm, ub::UB_REQUEST_URI)
            .to_header_value()
            .map_err(|e| Error::InvalidInput(format!("IMPI: {e}")))?;
        let mut answer = send(&initial)?;
        loop {
            let challenge = read_challenge(&answer)?;
            let nonce = AkaNonce::decode(&challenge.nonce).map_err(malformed)?;
            let request = DigestRequest { method: "GET", uri: ub::UB_REQUEST_URI, entity_body: b"" };
            let cnonce = fresh_cnonce();
            let res = match gba.bootstrap(&nonce.rand, &nonce.autn.to_bytes())? {
                BootstrapOutcome::Res(res) => res,
                BootstrapOutcome::Auts(auts) => {
                    if resynchronisations >= MAX_RESYNCHRONISATIONS {
                        return Err(Error::PeerNotAuthentic {
                            peer: PEER,
                            reason: "synchronisation failure again after resynchronising",
                        });
                    }
                    resynchronisations += 1;
                    tracing::info!(impi, "synchronisation failure: sending AUTS to the BSF");
                    let a = DigestAuthorization::answer_sync_failure(
                        &challenge, impi, &auts, &request, &cnonce, 1,
                    );
                    let header = a.to_header_value().map_err(malformed)?;
                    answer = send(&header)?;
                    continue;
                }
                BootstrapOutcome::MacFailure => {
                    return Err(Error::PeerNotAuthentic {
                        peer: PEER,
                        reason: "AUTN did not verify on the card",
                    });
                }
            };
            let auth = DigestAuthorization::answer(&challenge, impi, &res, &request, &cnonce, 1);
            let header = auth.to_header_value().map_err(malformed)?;
            let answer = send(&header)?;
            match answer.status {
                200 => {}
                401 => {
                    return Err(Error::HttpStatus {
                        peer: PEER,
                        status: 401,
                        reason: "the BSF refused RES".into(),
                    });
                }
                status => return Err(Error::HttpStatus { peer: PEER, status, reason: answer.reason() }),
            }
            let info = check_success(&answer, &auth, &res)?;
            let btid =
                gba::BTid::parse(info.btid.as_bytes()).map_err(|e| malformed(format!("B-TID: {e}")))?;
            if btid.rand() != nonce.rand {
                return Err(malformed("the B-TID does not name the challenge's RAND"));
            }
            gba.complete_bootstrap(&info.btid, &info.lifetime)?;
            let report = BootstrapReport {
                variant,
                btid: info.btid,
                lifetime: info.lifetime,
                rand: nonce.rand,
                resynchronisations,
                http_requests,
                elapsed: start.elapsed(),
            };
            tracing::info!(btid = %report.btid, lifetime = %report.lifetime, ?variant, "bootstrapped");
            return Ok(report);
        }
    }
}

fn malformed(reason: impl ToString) -> Error {
    Error::MalformedAnswer { peer: PEER, reason: reason.to_string() }
}

/// The AKA challenge of a 401.
fn read_challenge(answer: &Answer) -> Result<DigestChallenge> {
    if answer.status != 401 {
        return Err(Error::HttpStatus { peer: PEER, status: answer.status, reason: answer.reason() });
    }
    let value = answer
        .single("www-authenticate")
        .map_err(malformed)?
        .ok_or_else(|| malformed("401 without WWW-Authenticate"))?;
    let challenge = DigestChallenge::parse(value).map_err(malformed)?;
    if !challenge.is_aka_v1_md5() {
        return Err(malformed(format!(
            "algorithm {:?} is not {}",
            challenge.algorithm,
            ub::ALGORITHM_AKAV1_MD5
        )));
    }
    Ok(challenge)
}

/// Checks the 200 OK: rspauth over the body with RES (RFC 2617 §3.2.3), echoed cnonce and nc,
/// then the BootstrappingInfo body.
fn check_success(answer: &Answer, auth: &DigestAuthorization, res: &[u8]) -> Result<BootstrappingInfo> {
    let value = answer
        .single("authentication-info")
        .map_err(malformed)?
        .ok_or(Error::PeerNotAuthentic { peer: PEER, reason: "200 OK without Authentication-Info" })?;
    let info = AuthenticationInfo::parse(value).map_err(malformed)?;
    let rspauth = info
        .rspauth
        .as_deref()
        .ok_or(Error::PeerNotAuthentic { peer: PEER, reason: "Authentication-Info without rspauth" })?;
    if info.cnonce.is_some() && info.cnonce != auth.cnonce || info.nc.is_some() && info.nc != auth.nc {
        return Err(Error::PeerNotAuthentic { peer: PEER, reason: "rspauth for another cnonce or nc" });
    }
    if !digest::verify_rspauth(&auth.digest_input(res, "GET", b""), &answer.body, rspauth) {
        return Err(Error::PeerNotAuthentic { peer: PEER, reason: "rspauth does not verify" });
    }
    match answer.media_type() {
        Some(t) if t == ub::BSF_CONTENT_TYPE => {}
        other => tracing::warn!(content_type = ?other, "BSF answer without the content type of TS 24.109"),
    }
    BootstrappingInfo::from_xml(answer.text().map_err(malformed)?).map_err(malformed)
}
