//! A blocking UE side of BM-SC key management (TS 33.246 §6.3.2, TS 24.109 §5) for benchmarks
//! and the BM-SC's own tests: one HTTP/1.1 request per connection, Digest with a known MRK.
//!
//! The first request gets the `401`; the answer picks the challenge of the realm asked for
//! (UICC-based or ME-based) and the same nonce is then used with a growing nonce count, so
//! after the first exchange every request is one round trip. `rspauth` is checked on every
//! `200`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, DigestRequest};
use wire::mbms_key_management::{
    self, DeregisterRequest, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
    RequestType,
};
use zeroize::Zeroizing;

use crate::http::{self, HttpError, HttpResponse};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No HTTP exchange.
    #[error("BM-SC: {0}")]
    Http(#[from] HttpError),
    /// The BM-SC refused the credentials (a `401` after an answer): re-bootstrap.
    #[error("BM-SC: credentials refused (401); the UE bootstraps again")]
    Unauthorized,
    /// The BM-SC answered with a status other than 200 / 401.
    #[error("BM-SC answered {status}: {reason}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The reason line.
        reason: String,
    },
    /// The answer is not what the contract says (challenge, rspauth, document).
    #[error("BM-SC: {0}")]
    Protocol(String),
}

/// The key-management side of one UE (one B-TID) towards one BM-SC.
pub struct KeyManagementClient {
    bmsc: SocketAddr,
    btid: String,
    password: Zeroizing<String>,
    uicc_based: bool,
    challenge: Option<DigestChallenge>,
    nc: u32,
    cnonce_counter: u64,
    timeout: Duration,
}

impl std::fmt::Debug for KeyManagementClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManagementClient")
            .field("bmsc", &self.bmsc)
            .field("btid", &self.btid)
            .field("uicc_based", &self.uicc_based)
            .finish_non_exhaustive()
    }
}

impl KeyManagementClient {
    /// A client for the B-TID `btid` whose MRK is `mrk`, answering the `-uicc` realm when
    /// `uicc_based`.
    pub fn new(bmsc: SocketAddr, btid: &str, mrk: &[u8; 32], uicc_based: bool) -> Self {
        KeyManagementClient {
            bmsc,
            btid: btid.to_owned(),
            password: Zeroizing::new(mbms_key_management::digest_password(mrk)),
            uicc_based,
            challenge: None,
            nc: 0,
            cnonce_counter: 0,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// Registers to `service_ids`.
    pub fn register(&mut self, service_ids: &[String]) -> Result<RegisterResponse, ClientError> {
        let body = RegisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        let text = self.exchange(RequestType::Register, &body)?;
        RegisterResponse::from_xml(&text).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Deregisters from `service_ids`.
    pub fn deregister(&mut self, service_ids: &[String]) -> Result<RegisterResponse, ClientError> {
        let body = DeregisterRequest { service_ids: service_ids.to_vec() }.to_xml();
        let text = self.exchange(RequestType::Deregister, &body)?;
        RegisterResponse::from_xml(&text).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Asks for MSKs (basic MSK request).
    pub fn msk_request(&mut self, key_ids: &[MskKeyId]) -> Result<MskResponse, ClientError> {
        let body = MskRequest { key_ids: key_ids.to_vec() }.to_xml();
        let text = self.exchange(RequestType::MskRequest, &body)?;
        MskResponse::from_xml(&text).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn realm(&self) -> &'static str {
        if self.uicc_based {
            mbms_key_management::REALM_PREFIX_UICC
        } else {
            mbms_key_management::REALM_PREFIX_ME
        }
    }

    /// Takes the challenge of our realm out of a 401.
    fn take_challenge(&mut self, r: &HttpResponse) -> Result<(), ClientError> {
        let prefix = self.realm();
        for (name, value) in &r.headers {
            if name != "www-authenticate" {
                continue;
            }
            let ch = DigestChallenge::parse(value).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if ch.realm.starts_with(prefix) {
                self.challenge = Some(ch);
                self.nc = 0;
                return Ok(());
            }
        }
        Err(ClientError::Protocol(format!("401 without a challenge of realm {prefix}…")))
    }

    fn exchange(&mut self, t: RequestType, body: &str) -> Result<String, ClientError> {
        let target = t.path_and_query();
        // At most: one 401 for a missing or stale challenge, then the answer.
        for _ in 0..3 {
            let Some(ch) = self.challenge.clone() else {
                let r = self.send(&target, t, None, body)?;
                if r.status != 401 {
                    return Err(refused(&r));
                }
                self.take_challenge(&r)?;
                continue;
            };
            self.nc += 1;
            self.cnonce_counter += 1;
            let cnonce = format!("{:016x}", self.cnonce_counter);
            let request = DigestRequest { method: "POST", uri: &target, entity_body: body.as_bytes() };
            let auth = DigestAuthorization::answer(
                &ch,
                &self.btid,
                self.password.as_bytes(),
                &request,
                &cnonce,
                self.nc,
            );
            let header = auth.to_header_value().map_err(|e| ClientError::Protocol(e.to_string()))?;
            let r = self.send(&target, t, Some(&header), body)?;
            match r.status {
                200 => {
                    let info = r
                        .header("authentication-info")
                        .ok_or_else(|| ClientError::Protocol("200 without Authentication-Info".into()))?;
                    let info =
                        AuthenticationInfo::parse(info).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    let rspauth = info.rspauth.ok_or_else(|| ClientError::Protocol("no rspauth".into()))?;
                    let input = auth.digest_input(self.password.as_bytes(), "POST", body.as_bytes());
                    if !digest::verify_rspauth(&input, &r.body, &rspauth) {
                        return Err(ClientError::Protocol("rspauth does not verify: not our BM-SC".into()));
                    }
                    return String::from_utf8(r.body)
                        .map_err(|_| ClientError::Protocol("body not UTF-8".into()));
                }
                401 => {
                    let stale =
                        r.headers.iter().any(|(n, v)| n == "www-authenticate" && v.contains("stale=true"));
                    self.take_challenge(&r)?;
                    if !stale {
                        return Err(ClientError::Unauthorized);
                    }
                }
                _ => return Err(refused(&r)),
            }
        }
        Err(ClientError::Protocol("no answer after repeated challenges".into()))
    }

    fn send(
        &self,
        target: &str,
        t: RequestType,
        authorization: Option<&str>,
        body: &str,
    ) -> Result<HttpResponse, ClientError> {
        let addr = self.bmsc;
        if !addr.ip().is_loopback() {
            return Err(HttpError::NotLoopback(addr).into());
        }
        let io = |source| HttpError::Io { addr, source };
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            t.request_content_type(),
            body.len()
        );
        if let Some(a) = authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(io)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream.take(http::MAX_RESPONSE_LEN as u64 + 1).read_to_end(&mut raw).map_err(io)?;
        if raw.len() > http::MAX_RESPONSE_LEN {
            return Err(HttpError::Malformed("response too long".into()).into());
        }
        Ok(http::parse_response(&raw)?)
    }
}

fn refused(r: &HttpResponse) -> ClientError {
    ClientError::Refused { status: r.status, reason: String::from_utf8_lossy(&r.body).trim().to_owned() }
}
