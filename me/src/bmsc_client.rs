//! The ME's HTTP side of MBMS key management (TS 33.246 §6.3.2: registration, deregistration,
//! basic MSK request) with HTTP Digest over the GBA keys (TS 24.109 §5, TS 33.220 §4.5.3,
//! RFC 2617 MD5 with qop=auth). Wire values come from [`wire::mbms_key_management`], shared with the BM-SC.
//!
//! ```text
//! ME → BM-SC  POST /keymanagement?requesttype=…   (XML body, no credentials)
//! BM-SC → ME  401  WWW-Authenticate: Digest realm="3GPP-bootstrapping@fqdn" …
//!                  WWW-Authenticate: Digest realm="3GPP-bootstrapping-uicc@fqdn" …
//! ME → BM-SC  the same request, Authorization: Digest username=B-TID, response=H(… base64(MRK) …)
//! BM-SC → ME  200  Authentication-Info: rspauth=…   (XML answer with per-item status codes)
//!             401  again: the BM-SC does not accept the B-TID → [`Error::BtidRejected`]
//! ```
//!
//! The ME answers the `-uicc` realm when its MBMS keys live on the UICC (GBA_U with UICC-based key
//! management: MRK = Ks_ext_NAF, MUK = Ks_int_NAF) and the other realm otherwise (MUK and MRK
//! derived in the ME), so that the BM-SC derives the same MUK as the ME.

use std::time::Duration;

use gba::Mrk;
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest, Qop};
use wire::mbms_key_management::{
    self, DeregisterRequest, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
    RequestType,
};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::http_client::{Answer, DEFAULT_HTTP_TIMEOUT, HttpClient, fresh_cnonce};

const PEER: &str = "BM-SC";

/// Who the ME is to the BM-SC: the B-TID of its bootstrap and the MRK of that bootstrap.
pub struct Credentials<'a> {
    /// The B-TID (the Digest username).
    pub btid: &'a str,
    /// The MBMS Request Key: the Digest password is [`mbms_key_management::digest_password`] of it.
    pub mrk: &'a Mrk,
    /// Answer the `3GPP-bootstrapping-uicc@` realm (UICC-based key management) rather than
    /// `3GPP-bootstrapping@`.
    pub uicc_realm: bool,
}

impl core::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("btid", &self.btid)
            .field("uicc_realm", &self.uicc_realm)
            .finish_non_exhaustive()
    }
}

/// The key-management client of one BM-SC.
#[derive(Debug)]
pub struct BmscClient {
    http: HttpClient,
    fqdn: String,
}

impl BmscClient {
    /// A client of the BM-SC at `bmsc_url` (loopback only) whose FQDN (the NAF's, and the realms')
    /// is `bmsc_fqdn`.
    pub fn new(bmsc_url: &str, bmsc_fqdn: &str) -> Result<Self> {
        Self::with_timeout(bmsc_url, bmsc_fqdn, DEFAULT_HTTP_TIMEOUT)
    }

    /// [`Self::new`] with a time limit per HTTP exchange.
    pub fn with_timeout(bmsc_url: &str, bmsc_fqdn: &str, timeout: Duration) -> Result<Self> {
        Self::with_source(bmsc_url, bmsc_fqdn, timeout, None)
    }

    /// [`Self::with_timeout`] with the requests leaving from the loopback address `source`: the
    /// BM-SC pushes the MSKs to that address (TS 33.246 §6.3.2.2), so each UE of one host needs its
    /// own.
    pub fn with_source(
        bmsc_url: &str,
        bmsc_fqdn: &str,
        timeout: Duration,
        source: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        if bmsc_fqdn.is_empty() || bmsc_fqdn.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::InvalidInput(format!("'{bmsc_fqdn}' is no BM-SC FQDN")));
        }
        Ok(BmscClient {
            http: HttpClient::with_source(PEER, bmsc_url, timeout, source)?,
            fqdn: bmsc_fqdn.to_owned(),
        })
    }

    /// The BM-SC FQDN.
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }

    /// The BM-SC's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.http.addr()
    }

    /// MBMS registration of `service_ids` (TS 33.246 §6.3.2.1); the answer's per-service codes.
    pub fn register(
        &self,
        credentials: &Credentials<'_>,
        service_ids: &[String],
    ) -> Result<RegisterResponse> {
        let body = RegisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        let answer = self.authenticated(credentials, RequestType::Register, &body)?;
        RegisterResponse::from_xml(&answer).map_err(malformed)
    }

    /// MBMS deregistration of `service_ids` (TS 33.246 §6.3.2.2).
    pub fn deregister(
        &self,
        credentials: &Credentials<'_>,
        service_ids: &[String],
    ) -> Result<RegisterResponse> {
        let body = DeregisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        let answer = self.authenticated(credentials, RequestType::Deregister, &body)?;
        RegisterResponse::from_xml(&answer).map_err(malformed)
    }

    /// Basic MSK request for `key_ids` (TS 33.246 §6.3.2.2.2); the MSKs themselves come as MIKEY
    /// MSK messages over UDP.
    pub fn msk_request(&self, credentials: &Credentials<'_>, key_ids: &[MskKeyId]) -> Result<MskResponse> {
        let body = MskRequest { key_ids: key_ids.to_vec() }.to_xml();
        let answer = self.authenticated(credentials, RequestType::MskRequest, &body)?;
        MskResponse::from_xml(&answer).map_err(malformed)
    }

    /// The realm this ME answers.
    pub fn realm(&self, uicc_realm: bool) -> String {
        if uicc_realm {
            mbms_key_management::realm_uicc(&self.fqdn)
        } else {
            mbms_key_management::realm_me(&self.fqdn)
        }
    }

    /// One request: without credentials, then answering the challenge of our realm; returns the
    /// 200 body after checking rspauth and the Content-Type.
    fn authenticated(&self, credentials: &Credentials<'_>, kind: RequestType, body: &str) -> Result<String> {
        self.authenticated_keeping(credentials, kind, body, &mut None)
    }

    /// [`Self::authenticated`], answering the challenge in `kept` (with the next nonce count) when
    /// there is one instead of asking for a new one; `kept` holds the challenge last answered.
    fn authenticated_keeping(
        &self,
        credentials: &Credentials<'_>,
        kind: RequestType,
        body: &str,
        kept: &mut Option<(DigestChallenge, u32)>,
    ) -> Result<String> {
        let uri = kind.path_and_query();
        let content_type = kind.request_content_type();
        let realm = self.realm(credentials.uicc_realm);
        let (mut challenge, mut nc) = match kept.take() {
            Some((challenge, nc)) => (challenge, nc.saturating_add(1)),
            None => {
                let first = self.http.exchange("POST", &uri, &[], Some((content_type, body.as_bytes())))?;
                if first.status != 401 {
                    return Err(status_error(&first, "expected a Digest challenge"));
                }
                (pick_challenge(&first, &realm)?, 1)
            }
        };
        let password = Zeroizing::new(mbms_key_management::digest_password(credentials.mrk.expose()));
        let request = DigestRequest { method: "POST", uri: &uri, entity_body: body.as_bytes() };
        let mut stale_retry = true;
        let (auth, answer) = loop {
            let auth = DigestAuthorization::answer(
                &challenge,
                credentials.btid,
                password.as_bytes(),
                &request,
                &fresh_cnonce(),
                nc,
            );
            let header = auth.to_header_value().map_err(|e| Error::InvalidInput(format!("B-TID: {e}")))?;
            let answer = self.http.exchange(
                "POST",
                &uri,
                &[("Authorization", &header)],
                Some((content_type, body.as_bytes())),
            )?;
            match answer.status {
                200 => break (auth, answer),
                401 if answer.single(mbms_key_management::REASON_HEADER).ok().flatten().is_none() => {
                    // stale=true: the credentials were right, the nonce was not (RFC 2617
                    // §3.2.1): answer the fresh challenge once.
                    match pick_challenge(&answer, &realm) {
                        Ok(fresh) if fresh.stale && stale_retry => {
                            stale_retry = false;
                            (challenge, nc) = (fresh, 1);
                            continue;
                        }
                        _ => {}
                    }
                    tracing::info!(btid = credentials.btid, %kind, "the BM-SC refused the B-TID");
                    return Err(Error::BtidRejected { btid: credentials.btid.to_owned() });
                }
                _ => return Err(status_error(&answer, "")),
            }
        };
        let info = answer
            .single("authentication-info")
            .map_err(malformed)?
            .ok_or(Error::PeerNotAuthentic { peer: PEER, reason: "200 OK without Authentication-Info" })?;
        let info = AuthenticationInfo::parse(info).map_err(malformed)?;
        let rspauth = info
            .rspauth
            .as_deref()
            .ok_or(Error::PeerNotAuthentic { peer: PEER, reason: "Authentication-Info without rspauth" })?;
        if info.cnonce.is_some() && info.cnonce != auth.cnonce || info.nc.is_some() && info.nc != auth.nc {
            return Err(Error::PeerNotAuthentic { peer: PEER, reason: "rspauth for another cnonce or nc" });
        }
        let input = auth.digest_input(password.as_bytes(), "POST", body.as_bytes());
        if !digest::verify_rspauth(&input, &answer.body, rspauth) {
            return Err(Error::PeerNotAuthentic { peer: PEER, reason: "rspauth does not verify" });
        }
        let expected = kind.response_content_type();
        match answer.all("content-type").next() {
            Some(t) if mbms_key_management::content_type_matches(t, expected) => {}
            other => return Err(malformed(format!("Content-Type {other:?}, expected {expected}"))),
        }
        let text = answer.text().map(str::to_owned).map_err(malformed)?;
        *kept = Some((challenge, nc));
        Ok(text)
    }
}

/// One UE's key management with one BM-SC that keeps the BM-SC's Digest challenge: after the first
/// exchange every request answers that nonce with the next nonce count (RFC 2617 §3.2.2), so it
/// takes one round trip; a stale nonce is answered once with the fresh challenge. The requests are
/// those of [`BmscClient`], whose transport the session borrows for each call.
pub struct BmscSession {
    btid: String,
    mrk: Mrk,
    uicc_realm: bool,
    kept: Option<(DigestChallenge, u32)>,
}

impl core::fmt::Debug for BmscSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BmscSession")
            .field("btid", &self.btid)
            .field("uicc_realm", &self.uicc_realm)
            .finish_non_exhaustive()
    }
}

impl BmscSession {
    /// The session of the B-TID `btid` whose MRK is `mrk`, answering the `-uicc` realm when
    /// `uicc_realm`.
    pub fn new(btid: &str, mrk: Mrk, uicc_realm: bool) -> Self {
        BmscSession { btid: btid.to_owned(), mrk, uicc_realm, kept: None }
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials { btid: &self.btid, mrk: &self.mrk, uicc_realm: self.uicc_realm }
    }

    fn exchange(&mut self, client: &BmscClient, kind: RequestType, body: &str) -> Result<String> {
        let mut kept = self.kept.take();
        let answer = client.authenticated_keeping(&self.credentials(), kind, body, &mut kept);
        self.kept = kept;
        answer
    }

    /// [`BmscClient::register`].
    pub fn register(&mut self, client: &BmscClient, service_ids: &[String]) -> Result<RegisterResponse> {
        let body = RegisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        RegisterResponse::from_xml(&self.exchange(client, RequestType::Register, &body)?).map_err(malformed)
    }

    /// [`BmscClient::deregister`].
    pub fn deregister(&mut self, client: &BmscClient, service_ids: &[String]) -> Result<RegisterResponse> {
        let body = DeregisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        RegisterResponse::from_xml(&self.exchange(client, RequestType::Deregister, &body)?).map_err(malformed)
    }

    /// [`BmscClient::msk_request`].
    pub fn msk_request(&mut self, client: &BmscClient, key_ids: &[MskKeyId]) -> Result<MskResponse> {
        let body = MskRequest { key_ids: key_ids.to_vec() }.to_xml();
        MskResponse::from_xml(&self.exchange(client, RequestType::MskRequest, &body)?).map_err(malformed)
    }
}

fn malformed(reason: impl ToString) -> Error {
    Error::MalformedAnswer { peer: PEER, reason: reason.to_string() }
}

fn status_error(answer: &Answer, context: &str) -> Error {
    let reason = answer
        .single(mbms_key_management::REASON_HEADER)
        .ok()
        .flatten()
        .map(str::to_owned)
        .unwrap_or_else(|| answer.reason());
    let reason = if context.is_empty() { reason } else { format!("{context}; {reason}") };
    Error::HttpStatus { peer: PEER, status: answer.status, reason }
}

/// The challenge of `realm` among the 401's WWW-Authenticate headers: MD5 (or no algorithm, RFC
/// 2617's default) with qop `auth` offered. Unreadable other challenges are skipped.
fn pick_challenge(answer: &Answer, realm: &str) -> Result<DigestChallenge> {
    let mut seen = Vec::new();
    for value in answer.all("www-authenticate") {
        let challenge = match DigestChallenge::parse(value) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%e, "skipping an unreadable challenge");
                continue;
            }
        };
        if challenge.realm != realm {
            seen.push(challenge.realm);
            continue;
        }
        let md5 = challenge
            .algorithm
            .as_deref()
            .is_none_or(|a| a.eq_ignore_ascii_case(mbms_key_management::DIGEST_ALGORITHM));
        if !md5 {
            return Err(malformed(format!("realm {realm}: algorithm {:?} is not MD5", challenge.algorithm)));
        }
        if !challenge.qop.contains(&Qop::Auth) && !challenge.qop.contains(&Qop::AuthInt) {
            return Err(malformed(format!("realm {realm}: no qop {}", mbms_key_management::DIGEST_QOP)));
        }
        return Ok(challenge);
    }
    Err(malformed(format!("no Digest challenge for realm {realm} (offered: {seen:?})")))
}
