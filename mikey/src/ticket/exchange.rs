//! The MIKEY-TICKET exchanges of RFC 6043 §4.2 with the 3GPP profile of TS 33.328 Annex B / D, as
//! owned messages for the std peers (the KMS, the IMS UE): Ticket Request, Ticket Transfer and
//! Ticket Resolve, with key forking (§5.1.1) and the TEK / salt derivation of §5.1.3.
//!
//! Every function here builds or checks one message; callers supply the randomness and time.
//! Only with the `std` feature.

use std::string::{String, ToString};
use std::vec::Vec;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::*;
use crate::NTP_UNIX_OFFSET;
use crate::payload::{
    EncrAlg, GenericIdEntries, GenericIdEntry, IdRole, IdType, Idr, KeyData, KeyDataList, KeyType,
    KeyValidity, Payload, Rand, Timestamp, key_data_type,
};
use crate::prf::label as prf_label;

/// Length of MPK, MPKi, MPKr and TGK here (128 bits; RFC 6043 §12.1: at least 128 bits).
pub const KEY_LEN: usize = 16;
/// Length of RANDRi / RANDRr: at least the longest pre-shared key (the 256-bit NAF key; §12.1).
pub const RAND_LEN: usize = 32;
/// Length of RANDRkms: at least the longest MPKr / TGK (§12.1).
pub const RANDRKMS_LEN: usize = 16;
/// Length of the Ticket Data RAND: at least the longest of TPK and MPK (§12.1).
pub const TICKET_RAND_LEN: usize = 32;
/// SRTP master key length (AES_CM_128).
pub const TEK_LEN: usize = 16;
/// SRTP master salt length.
pub const SALT_LEN: usize = 14;
/// SPI of MPKi, MPKr and the TGK in the key data (RFC 6043 §6.2.1: an SPI for each key).
pub const SPI_MPKI: u8 = 1;
/// SPI of MPKr.
pub const SPI_MPKR: u8 = 2;
/// SPI of the TGK, referenced by the crypto sessions of the GENERIC-ID map.
pub const SPI_TGK: u8 = 3;
/// Crypto session of the initiator's media (initiator → responder).
pub const CS_INITIATOR: u8 = 1;
/// Crypto session of the responder's media (responder → initiator).
pub const CS_RESPONDER: u8 = 2;
/// Policy number of the SRTP security policy the TRANSFER_RESP selects for both crypto sessions.
pub const SRTP_POLICY_NO: u8 = 0;

/// SRTP parameters of [`SRTP_POLICY_NO`] (RFC 3830 Table 6.10.1.a): AES-CM with a 16-byte session
/// key, HMAC-SHA-1 with a 20-byte key and an 80-bit tag, 14-byte salt (AES_CM_128_HMAC_SHA1_80).
const SRTP_POLICY_PARAMS: [crate::SpParam<'static>; 6] = [
    crate::SpParam { param_type: 0, value: &[1] },
    crate::SpParam { param_type: 1, value: &[16] },
    crate::SpParam { param_type: 2, value: &[1] },
    crate::SpParam { param_type: 3, value: &[20] },
    crate::SpParam { param_type: 4, value: &[14] },
    crate::SpParam { param_type: 11, value: &[10] },
];

/// The SP payload of [`SRTP_POLICY_NO`].
pub fn srtp_policy() -> crate::SecurityPolicy<'static> {
    crate::SecurityPolicy {
        policy_no: SRTP_POLICY_NO,
        prot_type: crate::ProtType::SRTP,
        params: crate::SpParams::from_items(&SRTP_POLICY_PARAMS),
    }
}

/// Largest message built here.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// A 128-bit key, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key128(pub [u8; KEY_LEN]);

impl core::fmt::Debug for Key128 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key128(..)")
    }
}

fn key128(k: &[u8]) -> Result<Key128, Error> {
    Ok(Key128(k.try_into().map_err(|_| Error::BadLength)?))
}

fn ts(t: u64) -> Payload<'static> {
    Payload::Timestamp(Timestamp::NtpUtc(t))
}

fn idr<'a>(role: IdRole, id_type: IdType, data: &'a str) -> Payload<'a> {
    Payload::Idr(Idr { role, id_type, data: data.as_bytes() })
}

fn utf8(b: &[u8]) -> Result<String, Error> {
    core::str::from_utf8(b).map(ToString::to_string).map_err(|_| Error::BadLength)
}

fn message_t(m: &Message<'_>) -> Result<u64, Error> {
    Ok(m.timestamp().ok_or(Error::MissingPayload(PayloadType::Timestamp))?.as_u64())
}

fn expect(m: &Message<'_>, dt: DataType) -> Result<(), Error> {
    if m.hdr().data_type == dt { Ok(()) } else { Err(Error::WrongDataType(m.hdr().data_type.0)) }
}

/// Parses a response of type `dt` and the request it answers (RFC 6043 §5: the response carries
/// the request's CSB ID); a response to another request is refused.
fn parse_answer<'r, 'i>(
    resp: &'r [u8],
    dt: DataType,
    init: &'i [u8],
) -> Result<(Message<'r>, Message<'i>), Error> {
    let m = Message::parse_ticket(resp)?;
    expect(&m, dt)?;
    let im = Message::parse_ticket(init)?;
    if m.hdr().csb_id != im.hdr().csb_id {
        return Err(Error::WrongDataType(m.hdr().data_type.0));
    }
    Ok((m, im))
}

// ------------------------------------------------------------------------------------------------
// Ticket policy and tickets

/// A desired or granted ticket policy, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// PRF of the ticket (key forking, TPK and MPK derivations).
    pub prf: PrfFunc,
    /// Flags.
    pub flags: TicketFlags,
    /// IDRkms: the KMS that can resolve the ticket.
    pub kms: Option<String>,
    /// IDRi: who requested or created the ticket (KMS UID).
    pub initiator: Option<String>,
    /// TRs: start of validity, Unix seconds.
    pub valid_from: Option<u64>,
    /// TRe: end of validity, Unix seconds.
    pub valid_to: Option<u64>,
    /// IDRr: the allowed recipients (KMS UIDs or group identities).
    pub recipients: Vec<String>,
}

impl PolicySpec {
    /// The policy of the 3GPP profile: key forking (I, which implies E), TRANSFER_RESP (F) with
    /// RANDRr (G), RANDRi in TEK derivation (H), plain initiators and responders (N, O).
    pub fn ims(kms: &str, initiator: &str, recipients: &[&str], reusable: bool) -> Self {
        PolicySpec {
            prf: PrfFunc::MikeyHmacSha1,
            flags: TicketFlags {
                d: true,
                e: true,
                f: true,
                g: true,
                h: true,
                i: true,
                j: reusable,
                n: true,
                o: true,
                ..TicketFlags::default()
            },
            kms: Some(kms.to_string()),
            initiator: Some(initiator.to_string()),
            valid_from: None,
            valid_to: None,
            recipients: recipients.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The TP Data chain.
    pub fn tp_data(&self) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; MAX_MESSAGE_LEN];
        let mut b = MessageBuilder::chain(&mut buf)?;
        if let Some(k) = &self.kms {
            b.push(&idr(IdRole::KMS, IdType::URI, k))?;
        }
        if let Some(i) = &self.initiator {
            b.push(&idr(IdRole::INITIATOR, IdType::NAI, i))?;
        }
        if let Some(s) = self.valid_from {
            b.push(&Payload::Tr(Tr { role: ts_role::START, ts: Timestamp::NtpUtc32(ntp32(s)) }))?;
        }
        if let Some(e) = self.valid_to {
            b.push(&Payload::Tr(Tr { role: ts_role::END, ts: Timestamp::NtpUtc32(ntp32(e)) }))?;
        }
        for r in &self.recipients {
            b.push(&idr(IdRole::RESPONDER, IdType::NAI, r))?;
        }
        let n = b.finish();
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads a policy back (TP or TICKET payload).
    pub fn from_policy(p: &TicketPolicy<'_>) -> Result<Self, Error> {
        let s = |i: Option<Idr<'_>>| i.map(|i| utf8(i.data)).transpose();
        let unix = |t: Option<Timestamp>| {
            t.and_then(|t| t.ntp_seconds()).map(|s| u64::from(s).saturating_sub(NTP_UNIX_OFFSET))
        };
        Ok(PolicySpec {
            prf: p.prf,
            flags: p.flags,
            kms: s(p.idr(IdRole::KMS))?,
            initiator: s(p.idr(IdRole::INITIATOR))?,
            valid_from: unix(p.tr(ts_role::START)),
            valid_to: unix(p.tr(ts_role::END)),
            recipients: p.idrs(IdRole::RESPONDER).map(|i| utf8(i.data)).collect::<Result<_, _>>()?,
        })
    }

    /// Whether `now` (Unix seconds) lies in the validity period.
    pub fn valid_at(&self, now: u64) -> bool {
        self.valid_from.is_none_or(|f| now >= f) && self.valid_to.is_none_or(|t| now <= t)
    }

    /// Whether one of `uids` is an allowed recipient (group identities with `?` included).
    pub fn allows(&self, uids: &[String]) -> Option<String> {
        uids.iter().find(|u| self.recipients.iter().any(|r| uid_matches(r, u))).cloned()
    }
}

fn ntp32(unix: u64) -> u32 {
    (unix + NTP_UNIX_OFFSET) as u32
}

/// A TICKET payload, owned: policy, Ticket Data, Initiator Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTicket {
    /// Ticket type.
    pub ticket_type: u16,
    /// Subtype.
    pub subtype: u8,
    /// Version.
    pub version: u8,
    /// PRF.
    pub prf: PrfFunc,
    /// Flags.
    pub flags: TicketFlags,
    /// TP Data chain.
    pub tp_data: Vec<u8>,
    /// Ticket Data.
    pub ticket_data: Vec<u8>,
    /// Initiator Data.
    pub initiator_data: Vec<u8>,
}

impl OwnedTicket {
    /// Copies a parsed ticket.
    pub fn from_ticket(t: &Ticket<'_>) -> Self {
        OwnedTicket {
            ticket_type: t.policy.ticket_type,
            subtype: t.policy.subtype,
            version: t.policy.version,
            prf: t.policy.prf,
            flags: t.policy.flags,
            tp_data: t.policy.tp_data.as_bytes().to_vec(),
            ticket_data: t.ticket_data.to_vec(),
            initiator_data: t.initiator_data.to_vec(),
        }
    }

    /// The borrowed view.
    pub fn as_ticket(&self) -> Result<Ticket<'_>, Error> {
        Ok(Ticket {
            policy: TicketPolicy {
                ticket_type: self.ticket_type,
                subtype: self.subtype,
                version: self.version,
                prf: self.prf,
                flags: self.flags,
                tp_data: Chain::parse(&self.tp_data)?,
            },
            ticket_data: &self.ticket_data,
            initiator_data: &self.initiator_data,
        })
    }

    /// The granted policy.
    pub fn policy(&self) -> Result<PolicySpec, Error> {
        PolicySpec::from_policy(&self.as_ticket()?.policy)
    }

    /// The identity of the ticket without its Initiator Data (what a reusable-ticket store keys on).
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut v = self.tp_data.clone();
        v.extend_from_slice(&self.ticket_data);
        v
    }

    /// The IDRpsk of the Ticket Data: the name of the TPK.
    pub fn tpk_id(&self) -> Result<String, Error> {
        let t = self.as_ticket()?;
        let d = TicketData::parse(&t)?;
        utf8(d.idrpsk.ok_or(Error::MissingPayload(PayloadType::Idr))?.data)
    }

    /// The Ticket Data RAND.
    pub fn data_rand(&self) -> Result<Vec<u8>, Error> {
        let t = self.as_ticket()?;
        Ok(TicketData::parse(&t)?.rand.to_vec())
    }
}

/// The keys a ticket encodes (RFC 6043 Appendix A.1: `MPK || {TEK|TGK|GTGK}`).
#[derive(Debug, Clone)]
pub struct TicketKeys {
    /// MPK.
    pub mpk: Key128,
    /// TGK.
    pub tgk: Key128,
}

/// Issues a 3GPP ticket (the KMS, or the initiator in mode 3): the granted policy, Ticket Data
/// with the keys encrypted and the MAC made with the TPK.
pub fn issue_ticket(
    policy: &PolicySpec,
    tpk: &[u8],
    tpk_id: &str,
    keys: &TicketKeys,
    rand: &[u8],
    t: u64,
) -> Result<OwnedTicket, Error> {
    let tpk_keys = TransportKeys::for_ticket(policy.prf, tpk, rand)?;
    let spi_tgk = [SPI_TGK];
    let key_data = [
        KeyData { key_type: KeyType::Mpk, key: &keys.mpk.0, salt: None, kv: KeyValidity::Null },
        KeyData { key_type: KeyType::Tgk, key: &keys.tgk.0, salt: None, kv: KeyValidity::Spi(&spi_tgk) },
    ];
    let mut data = vec![0u8; MAX_MESSAGE_LEN];
    let n = build_ticket_data(&mut data, &tpk_keys, t, rand, &key_data, tpk_id.as_bytes())?;
    data.truncate(n);
    let mut ticket = OwnedTicket {
        ticket_type: ticket_type::THREE_GPP,
        subtype: profile::SUBTYPE_3GPP,
        version: profile::VERSION_3GPP,
        prf: policy.prf,
        flags: policy.flags,
        tp_data: policy.tp_data()?,
        ticket_data: Vec::new(),
        initiator_data: Vec::new(),
    };
    let pol = TicketPolicy {
        ticket_type: ticket.ticket_type,
        subtype: ticket.subtype,
        version: ticket.version,
        prf: ticket.prf,
        flags: ticket.flags,
        tp_data: Chain::parse(&ticket.tp_data)?,
    };
    seal_ticket(&pol, &mut data, &tpk_keys)?;
    ticket.ticket_data = data;
    Ok(ticket)
}

/// Verifies a 3GPP ticket with its TPK and returns the keys it encodes.
pub fn open_ticket_keys(ticket: &OwnedTicket, tpk: &[u8]) -> Result<TicketKeys, Error> {
    let t = ticket.as_ticket()?;
    if !t.policy.is_3gpp() {
        return Err(Error::UnsupportedPayload(PayloadType::Ticket as u8));
    }
    let data = TicketData::parse(&t)?;
    let tpk_keys = TransportKeys::for_ticket(t.policy.prf, tpk, data.rand)?;
    let mut buf = [0u8; 512];
    let keys = open_ticket(&t, &tpk_keys, &mut buf)?;
    let mpk = keys
        .iter()
        .find(|k| k.wire_type() == key_data_type::MPK)
        .ok_or(Error::MissingPayload(PayloadType::KeyData))?;
    let tgk = keys
        .iter()
        .find(|k| k.wire_type() == key_data_type::TGK)
        .ok_or(Error::MissingPayload(PayloadType::KeyData))?;
    let out = TicketKeys { mpk: key128(mpk.key)?, tgk: key128(tgk.key)? };
    drop(keys);
    buf.zeroize();
    Ok(out)
}

/// MPKi and MPKr of a ticket (Appendix A.2.2).
pub fn mpk_pair(ticket: &OwnedTicket, mpk: &Key128) -> Result<(Key128, Key128), Error> {
    let rand = ticket.data_rand()?;
    let (mut i, mut r) = (Key128([0; KEY_LEN]), Key128([0; KEY_LEN]));
    derive_mpk(ticket.prf, &mpk.0, label::MPKI, &rand, &mut i.0)?;
    derive_mpk(ticket.prf, &mpk.0, label::MPKR, &rand, &mut r.0)?;
    Ok((i, r))
}

/// The forked MPKr' and TGK' for the modifier (IDRr, RANDRkms) (§5.1.1).
pub fn fork(
    prf: PrfFunc,
    mpkr: &Key128,
    tgk: &Key128,
    idrr: &str,
    randrkms: &[u8],
) -> Result<(Key128, Key128), Error> {
    let (mut m, mut t) = (Key128([0; KEY_LEN]), Key128([0; KEY_LEN]));
    fork_key(prf, &mpkr.0, label::MPKR_FORKED, idrr.as_bytes(), randrkms, &mut m.0)?;
    fork_key(prf, &tgk.0, label::TGK_FORKED, idrr.as_bytes(), randrkms, &mut t.0)?;
    Ok((m, t))
}

/// SRTP master key and salt of one crypto session from the (forked) TGK (§5.1.3; RFC 3830 §4.1.3
/// TEK and salting-key constants).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey {
    /// TEK (SRTP master key).
    pub tek: [u8; TEK_LEN],
    /// SRTP master salt.
    pub salt: [u8; SALT_LEN],
}

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// The session key of crypto session `cs_id`; RANDRi enters when the H flag is set, RANDRr when
/// the G flag is set.
pub fn session_key(
    prf: PrfFunc,
    tgk: &Key128,
    cs_id: u8,
    flags: &TicketFlags,
    randri: &[u8],
    randrr: &[u8],
) -> Result<SessionKey, Error> {
    let ri: &[u8] = if flags.h { randri } else { &[] };
    let rr: &[u8] = if flags.g { randrr } else { &[] };
    let mut k = SessionKey { tek: [0; TEK_LEN], salt: [0; SALT_LEN] };
    tgk_derive(prf, &tgk.0, prf_label::TEK, cs_id, ri, rr, &mut k.tek)?;
    tgk_derive(prf, &tgk.0, prf_label::TGK_SALT, cs_id, ri, rr, &mut k.salt)?;
    Ok(k)
}

// ------------------------------------------------------------------------------------------------
// Ticket Request

/// REQUEST_INIT_PSK contents.
#[derive(Debug, Clone)]
pub struct RequestInit {
    /// CSB ID.
    pub csb_id: u32,
    /// T (NTP-UTC).
    pub t: u64,
    /// RANDRi.
    pub randri: Vec<u8>,
    /// IDRi: the requester's KMS UID.
    pub initiator: String,
    /// IDRkms.
    pub kms: String,
    /// TP: the desired policy.
    pub policy: PolicySpec,
    /// IDRpsk: the B-TID.
    pub psk_id: String,
}

/// Builds a REQUEST_INIT_PSK protected with the PSK (RFC 6043 §4.2.1.2; MAC trailer
/// `Identity_i || Identity_kms`).
pub fn build_request_init(r: &RequestInit, psk: &[u8]) -> Result<Vec<u8>, Error> {
    let keys = TransportKeys::for_exchange(r.policy.prf, psk, r.csb_id, label::ROLE_INITIAL, &r.randri, &[])?;
    let tp = r.policy.tp_data()?;
    let pol = TicketPolicy {
        ticket_type: ticket_type::THREE_GPP,
        subtype: profile::SUBTYPE_3GPP,
        version: profile::VERSION_3GPP,
        prf: r.policy.prf,
        flags: TicketFlags { k: false, ..r.policy.flags },
        tp_data: Chain::parse(&tp)?,
    };
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b = MessageBuilder::ticket_message(
        &mut buf,
        &init_hdr(DataType::REQUEST_INIT_PSK, r.policy.prf, r.csb_id),
    )?;
    b.push(&ts(r.t))?;
    b.push(&Payload::Randr(Randr { role: rand_role::INITIATOR, rand: &r.randri }))?;
    b.push(&idr(IdRole::INITIATOR, IdType::NAI, &r.initiator))?;
    b.push(&idr(IdRole::KMS, IdType::URI, &r.kms))?;
    b.push(&Payload::Tp(pol))?;
    b.push(&idr(IdRole::PSK, ID_TYPE_BYTE_STRING, &r.psk_id))?;
    let n = b.seal(keys.auth_key(), &[r.initiator.as_bytes(), r.kms.as_bytes()])?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads a REQUEST_INIT_PSK without checking its MAC (the KMS needs IDRpsk to find the key).
pub fn read_request_init(bytes: &[u8]) -> Result<RequestInit, Error> {
    let m = Message::parse_ticket(bytes)?;
    expect(&m, DataType::REQUEST_INIT_PSK)?;
    let s = |role| -> Result<String, Error> {
        utf8(m.idr(role).ok_or(Error::MissingPayload(PayloadType::Idr))?.data)
    };
    let tp = m.tp().ok_or(Error::MissingPayload(PayloadType::Tp))?;
    Ok(RequestInit {
        csb_id: m.hdr().csb_id,
        t: message_t(&m)?,
        randri: m.randr(rand_role::INITIATOR).ok_or(Error::MissingPayload(PayloadType::Randr))?.to_vec(),
        initiator: s(IdRole::INITIATOR)?,
        kms: s(IdRole::KMS)?,
        policy: PolicySpec::from_policy(&tp)?,
        psk_id: s(IdRole::PSK)?,
    })
}

/// Verifies a REQUEST_INIT_PSK's MAC with the PSK.
pub fn verify_request_init(bytes: &[u8], psk: &[u8]) -> Result<RequestInit, Error> {
    let r = read_request_init(bytes)?;
    let m = Message::parse_ticket(bytes)?;
    let keys = TransportKeys::for_exchange(m.hdr().prf, psk, r.csb_id, label::ROLE_INITIAL, &r.randri, &[])?;
    verify_v(&m, keys.auth_key(), &[r.initiator.as_bytes(), r.kms.as_bytes()])?;
    Ok(r)
}

/// What the initiator gets from a REQUEST_RESP.
#[derive(Debug, Clone)]
pub struct RequestGrant {
    /// The ticket.
    pub ticket: OwnedTicket,
    /// MPKi.
    pub mpki: Key128,
    /// MPKr (before forking).
    pub mpkr: Key128,
    /// The TGK (before forking).
    pub tgk: Key128,
}

fn kemac_keys<'k>(
    mpki: &'k Key128,
    mpkr: Option<&'k Key128>,
    tgk: &'k Key128,
    spis: &'k [[u8; 1]; 3],
) -> Vec<KeyData<'k>> {
    let [a, b, c] = spis;
    let mut v = vec![KeyData { key_type: KeyType::Mpk, key: &mpki.0, salt: None, kv: KeyValidity::Spi(a) }];
    if let Some(r) = mpkr {
        v.push(KeyData { key_type: KeyType::Mpk, key: &r.0, salt: None, kv: KeyValidity::Spi(b) });
    }
    v.push(KeyData { key_type: KeyType::Tgk, key: &tgk.0, salt: None, kv: KeyValidity::Spi(c) });
    v
}

const SPIS: [[u8; 1]; 3] = [[SPI_MPKI], [SPI_MPKR], [SPI_TGK]];

/// Builds the REQUEST_RESP for `init` (§4.2.1.5): KEMAC `E(encr_key, MPKi || MPKr || TGK)` with
/// keys from the PSK, V over `REQUEST_RESP || REQUEST_INIT`.
pub fn build_request_resp(
    init: &[u8],
    t: u64,
    kms: &str,
    grant: &RequestGrant,
    psk: &[u8],
) -> Result<Vec<u8>, Error> {
    let im = Message::parse_ticket(init)?;
    let randri = im.randr(rand_role::INITIATOR).ok_or(Error::MissingPayload(PayloadType::Randr))?;
    let hdr = resp_hdr(DataType::REQUEST_RESP, im.hdr());
    let keys = TransportKeys::for_exchange(hdr.prf, psk, hdr.csb_id, label::ROLE_RESPONSE, randri, &[])?;
    let ticket = grant.ticket.as_ticket()?;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b = MessageBuilder::ticket_message(&mut buf, &hdr)?;
    b.push(&ts(t))?;
    b.push(&idr(IdRole::KMS, IdType::URI, kms))?;
    b.push(&Payload::Ticket(ticket))?;
    b.push_kemac(
        &ticket_kemac(&keys, hdr.csb_id, t),
        &kemac_keys(&grant.mpki, Some(&grant.mpkr), &grant.tgk, &SPIS),
    )?;
    let n = b.seal(keys.auth_key(), &[init])?;
    buf.truncate(n);
    Ok(buf)
}

fn read_kemac_keys(
    m: &Message<'_>,
    keys: &TransportKeys,
    want_mpkr: bool,
) -> Result<(Key128, Option<Key128>, Key128), Error> {
    let kemac = m.kemac().ok_or(Error::MissingPayload(PayloadType::Kemac))?;
    let mut buf = [0u8; 512];
    let kd = open_kemac(&kemac, keys, m.hdr().csb_id, message_t(m)?, &mut buf)?;
    let mut mpks = kd.iter().filter(|k| k.wire_type() == key_data_type::MPK);
    let mpki = key128(mpks.next().ok_or(Error::MissingPayload(PayloadType::KeyData))?.key)?;
    let mpkr = if want_mpkr {
        Some(key128(mpks.next().ok_or(Error::MissingPayload(PayloadType::KeyData))?.key)?)
    } else {
        None
    };
    let tgk = key128(
        kd.iter()
            .find(|k| k.wire_type() == key_data_type::TGK)
            .ok_or(Error::MissingPayload(PayloadType::KeyData))?
            .key,
    )?;
    drop(kd);
    buf.zeroize();
    Ok((mpki, mpkr, tgk))
}

/// Checks a REQUEST_RESP against its REQUEST_INIT and the PSK; returns the ticket and keys.
pub fn open_request_resp(resp: &[u8], init: &[u8], psk: &[u8]) -> Result<RequestGrant, Error> {
    let (m, im) = parse_answer(resp, DataType::REQUEST_RESP, init)?;
    let randri = im.randr(rand_role::INITIATOR).ok_or(Error::MissingPayload(PayloadType::Randr))?;
    let keys =
        TransportKeys::for_exchange(m.hdr().prf, psk, m.hdr().csb_id, label::ROLE_RESPONSE, randri, &[])?;
    verify_v(&m, keys.auth_key(), &[init])?;
    let ticket = OwnedTicket::from_ticket(&m.ticket().ok_or(Error::MissingPayload(PayloadType::Ticket))?);
    let (mpki, mpkr, tgk) = read_kemac_keys(&m, &keys, true)?;
    Ok(RequestGrant { ticket, mpki, mpkr: mpkr.ok_or(Error::MissingPayload(PayloadType::KeyData))?, tgk })
}

// ------------------------------------------------------------------------------------------------
// Ticket Transfer

/// TRANSFER_INIT contents.
#[derive(Debug, Clone)]
pub struct TransferInit {
    /// CSB ID.
    pub csb_id: u32,
    /// T.
    pub t: u64,
    /// RANDRi.
    pub randri: Vec<u8>,
    /// IDRi: the initiator's KMS UID (from the From URI).
    pub initiator: String,
    /// IDRr: the responder's KMS UID (from the To URI).
    pub responder: String,
    /// SSRC of the initiator's media (crypto session 1).
    pub ssrc: u32,
    /// The ticket.
    pub ticket: OwnedTicket,
}

/// Builds a TRANSFER_INIT (§4.2.2.1): V with the key from MPKi over the message (without the
/// Initiator Data) `|| Identity_i || Identity_r`; with key forking (I flag) the Initiator Data
/// carries Vi and Vr (key from MPKr).
pub fn build_transfer_init(ti: &TransferInit, mpki: &Key128, mpkr: &Key128) -> Result<Vec<u8>, Error> {
    let flags = ti.ticket.flags;
    let ssrc = ti.ssrc.to_be_bytes();
    let spi = [SPI_TGK];
    let entries = [
        GenericIdEntry {
            cs_id: CS_INITIATOR,
            prot_type: 0,
            s: false,
            policy_nos: &[],
            session_data: &ssrc,
            spi: &spi,
        },
        GenericIdEntry {
            cs_id: CS_RESPONDER,
            prot_type: 0,
            s: false,
            policy_nos: &[],
            session_data: &[],
            spi: &spi,
        },
    ];
    let hdr = Hdr {
        data_type: DataType::TRANSFER_INIT,
        v: flags.f,
        prf: ti.ticket.prf,
        csb_id: ti.csb_id,
        cs_id_map: CsIdMap::GenericId(GenericIdEntries::from_items(&entries)),
    };
    let placeholder = if flags.i { vec![0u8; INITIATOR_DATA_LEN] } else { Vec::new() };
    let mut ticket = ti.ticket.clone();
    ticket.initiator_data = placeholder;
    let keys =
        TransportKeys::for_exchange(hdr.prf, &mpki.0, ti.csb_id, label::ROLE_INITIAL, &ti.randri, &[])?;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b = MessageBuilder::ticket_message(&mut buf, &hdr)?;
    b.push(&ts(ti.t))?;
    b.push(&Payload::Randr(Randr { role: rand_role::INITIATOR, rand: &ti.randri }))?;
    b.push(&idr(IdRole::INITIATOR, IdType::NAI, &ti.initiator))?;
    b.push(&idr(IdRole::RESPONDER, IdType::NAI, &ti.responder))?;
    b.push(&Payload::Ticket(ticket.as_ticket()?))?;
    let n = b.seal(keys.auth_key(), &[ti.initiator.as_bytes(), ti.responder.as_bytes()])?;
    buf.truncate(n);
    if flags.i {
        let vi = Message::parse_ticket(&buf)?
            .v_mac()
            .ok_or(Error::MissingPayload(PayloadType::Verification))?
            .to_vec();
        let vr = TransportKeys::for_initiator_data(ticket.prf, &mpkr.0)?;
        let data = build_initiator_data(&vi, &vr)?;
        set_initiator_data(&mut buf, &data)?;
    }
    Ok(buf)
}

/// A TRANSFER_INIT as the responder reads it before resolving.
#[derive(Debug, Clone)]
pub struct TransferView {
    /// CSB ID.
    pub csb_id: u32,
    /// RANDRi.
    pub randri: Vec<u8>,
    /// IDRi.
    pub initiator: String,
    /// IDRr.
    pub responder: String,
    /// The ticket with its Initiator Data.
    pub ticket: OwnedTicket,
    /// The granted policy.
    pub policy: PolicySpec,
}

/// Reads a TRANSFER_INIT and makes the responder's early checks (§4.2.2.2, TS 33.328 B.2.2.2 step
/// 1): a 3GPP ticket, RANDRi present, the ticket's IDRi equal to the message's IDRi.
pub fn read_transfer_init(bytes: &[u8]) -> Result<TransferView, Error> {
    let m = Message::parse_ticket(bytes)?;
    expect(&m, DataType::TRANSFER_INIT)?;
    let t = m.ticket().ok_or(Error::MissingPayload(PayloadType::Ticket))?;
    if !t.policy.is_3gpp() {
        return Err(Error::UnsupportedPayload(PayloadType::Ticket as u8));
    }
    let s = |role| -> Result<String, Error> {
        utf8(m.idr(role).ok_or(Error::MissingPayload(PayloadType::Idr))?.data)
    };
    let policy = PolicySpec::from_policy(&t.policy)?;
    let initiator = s(IdRole::INITIATOR)?;
    if policy.initiator.as_deref() != Some(initiator.as_str()) {
        // The ticket's IDRi names someone else than the message's IDRi.
        return Err(Error::UnexpectedPayload(PayloadType::Idr));
    }
    Ok(TransferView {
        csb_id: m.hdr().csb_id,
        randri: m.randr(rand_role::INITIATOR).ok_or(Error::MissingPayload(PayloadType::Randr))?.to_vec(),
        initiator,
        responder: s(IdRole::RESPONDER)?,
        ticket: OwnedTicket::from_ticket(&t),
        policy,
    })
}

/// Verifies a TRANSFER_INIT with MPKi once the ticket is resolved; with key forking, also that
/// Vi of the Initiator Data equals its V (§4.2.3.6).
pub fn verify_transfer_init(bytes: &[u8], mpki: &Key128) -> Result<(), Error> {
    let v = read_transfer_init(bytes)?;
    let m = Message::parse_ticket(bytes)?;
    let keys =
        TransportKeys::for_exchange(m.hdr().prf, &mpki.0, v.csb_id, label::ROLE_INITIAL, &v.randri, &[])?;
    verify_v(&m, keys.auth_key(), &[v.initiator.as_bytes(), v.responder.as_bytes()])?;
    if v.ticket.flags.i {
        let chain = Chain::parse(&v.ticket.initiator_data)?;
        let vi = chain
            .payloads()
            .find_map(|p| match p {
                Payload::Verification(x) => Some(x.mac),
                _ => None,
            })
            .ok_or(Error::MissingPayload(PayloadType::Verification))?;
        let mac = m.v_mac().ok_or(Error::MissingPayload(PayloadType::Verification))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(vi, mac)) {
            return Err(Error::MacMismatch);
        }
    }
    Ok(())
}

/// TRANSFER_RESP contents.
#[derive(Debug, Clone)]
pub struct TransferResp {
    /// T.
    pub t: u64,
    /// RANDRr (G flag).
    pub randrr: Vec<u8>,
    /// IDRr: the responder's KMS UID from the RESOLVE_RESP (the modifier).
    pub responder: String,
    /// RANDRkms of the RESOLVE_RESP (the modifier).
    pub randrkms: Vec<u8>,
    /// SSRC of the responder's media (crypto session 2).
    pub ssrc: u32,
}

/// Builds the TRANSFER_RESP (§4.2.2.3): V with the key from MPKr' (or MPKi without forking) over
/// `TRANSFER_RESP || TRANSFER_INIT`.
pub fn build_transfer_resp(init: &[u8], tr: &TransferResp, mpk_resp: &Key128) -> Result<Vec<u8>, Error> {
    let im = Message::parse_ticket(init)?;
    let view = read_transfer_init(init)?;
    let ssrc_i: [u8; 4] = match &im.hdr().cs_id_map {
        CsIdMap::GenericId(e) => e
            .iter()
            .find(|x| x.cs_id == CS_INITIATOR)
            .and_then(|x| x.session_data.get(..4))
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]),
        _ => [0; 4],
    };
    let ssrc_r = tr.ssrc.to_be_bytes();
    let spi = [SPI_TGK];
    let entries = [
        GenericIdEntry {
            cs_id: CS_INITIATOR,
            prot_type: 0,
            s: false,
            policy_nos: &[SRTP_POLICY_NO],
            session_data: &ssrc_i,
            spi: &spi,
        },
        GenericIdEntry {
            cs_id: CS_RESPONDER,
            prot_type: 0,
            s: false,
            policy_nos: &[SRTP_POLICY_NO],
            session_data: &ssrc_r,
            spi: &spi,
        },
    ];
    let hdr = Hdr {
        data_type: DataType::TRANSFER_RESP,
        v: false,
        prf: im.hdr().prf,
        csb_id: view.csb_id,
        cs_id_map: CsIdMap::GenericId(GenericIdEntries::from_items(&entries)),
    };
    let rr: &[u8] = if view.ticket.flags.g { &tr.randrr } else { &[] };
    let keys = TransportKeys::for_exchange(
        hdr.prf,
        &mpk_resp.0,
        view.csb_id,
        label::ROLE_RESPONSE,
        &view.randri,
        rr,
    )?;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b = MessageBuilder::ticket_message(&mut buf, &hdr)?;
    b.push(&ts(tr.t))?;
    if view.ticket.flags.g {
        b.push(&Payload::Randr(Randr { role: rand_role::RESPONDER, rand: &tr.randrr }))?;
    }
    b.push(&idr(IdRole::RESPONDER, IdType::NAI, &tr.responder))?;
    if view.ticket.flags.i {
        b.push(&Payload::Randr(Randr { role: rand_role::KMS, rand: &tr.randrkms }))?;
    }
    // The TRANSFER_INIT offered no policy (#P = 0), so the response names exactly one (§6.1.1).
    b.push(&Payload::SecurityPolicy(srtp_policy()))?;
    let n = b.seal(keys.auth_key(), &[init])?;
    buf.truncate(n);
    Ok(buf)
}

/// What the initiator reads from a TRANSFER_RESP before verifying it: the modifier and RANDRr.
#[derive(Debug, Clone)]
pub struct TransferRespView {
    /// IDRr: the authenticated responder identity (once verified).
    pub responder: String,
    /// RANDRkms.
    pub randrkms: Vec<u8>,
    /// RANDRr.
    pub randrr: Vec<u8>,
}

/// Reads a TRANSFER_RESP.
pub fn read_transfer_resp(bytes: &[u8]) -> Result<TransferRespView, Error> {
    let m = Message::parse_ticket(bytes)?;
    expect(&m, DataType::TRANSFER_RESP)?;
    Ok(TransferRespView {
        responder: utf8(m.idr(IdRole::RESPONDER).ok_or(Error::MissingPayload(PayloadType::Idr))?.data)?,
        randrkms: m.randr(rand_role::KMS).unwrap_or(&[]).to_vec(),
        randrr: m.randr(rand_role::RESPONDER).unwrap_or(&[]).to_vec(),
    })
}

/// Verifies a TRANSFER_RESP with MPKr' (or MPKi without forking).
pub fn verify_transfer_resp(bytes: &[u8], init: &[u8], mpk_resp: &Key128) -> Result<TransferRespView, Error> {
    let v = read_transfer_resp(bytes)?;
    let view = read_transfer_init(init)?;
    let m = Message::parse_ticket(bytes)?;
    if m.hdr().csb_id != view.csb_id {
        return Err(Error::WrongDataType(m.hdr().data_type.0));
    }
    let rr: &[u8] = if view.ticket.flags.g { &v.randrr } else { &[] };
    let keys = TransportKeys::for_exchange(
        m.hdr().prf,
        &mpk_resp.0,
        view.csb_id,
        label::ROLE_RESPONSE,
        &view.randri,
        rr,
    )?;
    verify_v(&m, keys.auth_key(), &[init])?;
    // §4.2.2.4: the responder's security policies must be acceptable — here the one SRTP policy.
    let ours = srtp_policy();
    for p in m.payloads() {
        if let Payload::SecurityPolicy(sp) = p
            && (sp.prot_type != ours.prot_type || sp.params != ours.params)
        {
            return Err(Error::UnexpectedPayload(PayloadType::SecurityPolicy));
        }
    }
    Ok(v)
}

// ------------------------------------------------------------------------------------------------
// Ticket Resolve

/// RESOLVE_INIT_PSK contents.
#[derive(Debug, Clone)]
pub struct ResolveInit {
    /// CSB ID.
    pub csb_id: u32,
    /// T.
    pub t: u64,
    /// RANDRr.
    pub randrr: Vec<u8>,
    /// IDRr: the resolver's KMS UID.
    pub responder: String,
    /// IDRkms.
    pub kms: String,
    /// The ticket (with the Initiator Data of the TRANSFER_INIT).
    pub ticket: OwnedTicket,
    /// IDRpsk: the B-TID; `None` for the unprotected KMS-to-KMS request (TS 33.328 B.2.3.2 step 6).
    pub psk_id: Option<String>,
}

/// Builds a RESOLVE_INIT_PSK (§4.2.3.2; MAC trailer `Identity_r || Identity_kms`). Without `psk`
/// the message has no V payload (the Zk request of TS 33.328 B.2.3.2 step 6).
pub fn build_resolve_init(r: &ResolveInit, psk: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let prf = r.ticket.prf;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b =
        MessageBuilder::ticket_message(&mut buf, &init_hdr(DataType::RESOLVE_INIT_PSK, prf, r.csb_id))?;
    b.push(&ts(r.t))?;
    b.push(&Payload::Randr(Randr { role: rand_role::RESPONDER, rand: &r.randrr }))?;
    b.push(&idr(IdRole::RESPONDER, IdType::NAI, &r.responder))?;
    b.push(&idr(IdRole::KMS, IdType::URI, &r.kms))?;
    b.push(&Payload::Ticket(r.ticket.as_ticket()?))?;
    if let Some(p) = &r.psk_id {
        b.push(&idr(IdRole::PSK, ID_TYPE_BYTE_STRING, p))?;
    }
    let n = match psk {
        Some(psk) => {
            let keys = TransportKeys::for_exchange(prf, psk, r.csb_id, label::ROLE_INITIAL, &[], &r.randrr)?;
            b.seal(keys.auth_key(), &[r.responder.as_bytes(), r.kms.as_bytes()])?
        }
        None => b.finish(),
    };
    buf.truncate(n);
    Ok(buf)
}

/// Reads a RESOLVE_INIT_PSK without checking a MAC; `protected` tells whether it ends with a V.
pub fn read_resolve_init(bytes: &[u8]) -> Result<(ResolveInit, bool), Error> {
    let m = Message::parse_ticket(bytes)?;
    expect(&m, DataType::RESOLVE_INIT_PSK)?;
    let s = |role| -> Result<String, Error> {
        utf8(m.idr(role).ok_or(Error::MissingPayload(PayloadType::Idr))?.data)
    };
    Ok((
        ResolveInit {
            csb_id: m.hdr().csb_id,
            t: message_t(&m)?,
            randrr: m.randr(rand_role::RESPONDER).ok_or(Error::MissingPayload(PayloadType::Randr))?.to_vec(),
            responder: s(IdRole::RESPONDER)?,
            kms: s(IdRole::KMS)?,
            ticket: OwnedTicket::from_ticket(&m.ticket().ok_or(Error::MissingPayload(PayloadType::Ticket))?),
            psk_id: m.idr(IdRole::PSK).map(|i| utf8(i.data)).transpose()?,
        },
        m.v_mac().is_some(),
    ))
}

/// Verifies a RESOLVE_INIT_PSK's MAC with the PSK.
pub fn verify_resolve_init(bytes: &[u8], psk: &[u8]) -> Result<ResolveInit, Error> {
    let (r, _) = read_resolve_init(bytes)?;
    let m = Message::parse_ticket(bytes)?;
    let keys = TransportKeys::for_exchange(m.hdr().prf, psk, r.csb_id, label::ROLE_INITIAL, &[], &r.randrr)?;
    verify_v(&m, keys.auth_key(), &[r.responder.as_bytes(), r.kms.as_bytes()])?;
    Ok(r)
}

/// What a resolve yields: MPKi, and with forking MPKr', TGK' and the modifier.
#[derive(Debug, Clone)]
pub struct ResolveGrant {
    /// MPKi.
    pub mpki: Key128,
    /// MPKr' (forked) — MPKi's role for the TRANSFER_RESP without forking.
    pub mpkr: Key128,
    /// TGK' (forked).
    pub tgk: Key128,
    /// IDRr of the modifier: the resolver's KMS UID that matched the ticket.
    pub responder: String,
    /// RANDRkms of the modifier.
    pub randrkms: Vec<u8>,
}

/// Builds a RESOLVE_RESP (§4.2.3.5): `HDR, T, IDRkms, KEMAC, IDRr, RANDRkms, V`. With `psk` the
/// KEMAC is encrypted with keys from it and the V covers `RESOLVE_RESP || RESOLVE_INIT`; without,
/// the KEMAC is NULL-encrypted and there is no V (the Zk answer of TS 33.328 B.2.3.2 step 10).
pub fn build_resolve_resp(
    init: &[u8],
    t: u64,
    kms: &str,
    grant: &ResolveGrant,
    psk: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let im = Message::parse_ticket(init)?;
    let randrr = im.randr(rand_role::RESPONDER).ok_or(Error::MissingPayload(PayloadType::Randr))?;
    let hdr = resp_hdr(DataType::RESOLVE_RESP, im.hdr());
    let key_data = kemac_keys(&grant.mpki, Some(&grant.mpkr), &grant.tgk, &SPIS);
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut b = MessageBuilder::ticket_message(&mut buf, &hdr)?;
    b.push(&ts(t))?;
    b.push(&idr(IdRole::KMS, IdType::URI, kms))?;
    let keys = match psk {
        Some(psk) => {
            let keys =
                TransportKeys::for_exchange(hdr.prf, psk, hdr.csb_id, label::ROLE_RESPONSE, &[], randrr)?;
            b.push_kemac(&ticket_kemac(&keys, hdr.csb_id, t), &key_data)?;
            Some(keys)
        }
        None => {
            let mut plain = vec![0u8; MAX_MESSAGE_LEN];
            let n = KeyDataList::encode(&key_data, &mut plain)?;
            let kemac = Kemac {
                encr_alg: EncrAlg::Null,
                encr_data: plain.get(..n).ok_or(Error::BufferTooSmall)?,
                mac_alg: MacAlg::Null,
                mac: &[],
            };
            b.push(&Payload::Kemac(kemac))?;
            plain.zeroize();
            None
        }
    };
    b.push(&idr(IdRole::RESPONDER, IdType::NAI, &grant.responder))?;
    b.push(&Payload::Randr(Randr { role: rand_role::KMS, rand: &grant.randrkms }))?;
    let n = match keys {
        Some(k) => b.seal(k.auth_key(), &[init])?,
        None => b.finish(),
    };
    buf.truncate(n);
    Ok(buf)
}

/// Checks a RESOLVE_RESP against its RESOLVE_INIT. With `psk` the V and the KEMAC encryption
/// are required; without, the unprotected Zk form is read (NULL KEMAC, no V).
pub fn open_resolve_resp(resp: &[u8], init: &[u8], psk: Option<&[u8]>) -> Result<ResolveGrant, Error> {
    let (m, im) = parse_answer(resp, DataType::RESOLVE_RESP, init)?;
    let randrr = im.randr(rand_role::RESPONDER).ok_or(Error::MissingPayload(PayloadType::Randr))?;
    let keys = match psk {
        Some(psk) => {
            let keys = TransportKeys::for_exchange(
                m.hdr().prf,
                psk,
                m.hdr().csb_id,
                label::ROLE_RESPONSE,
                &[],
                randrr,
            )?;
            verify_v(&m, keys.auth_key(), &[init])?;
            if m.kemac().map(|k| k.encr_alg) != Some(profile::KEMAC_ENCR_ALG) {
                return Err(Error::UnsupportedEncrAlg(EncrAlg::Null as u8));
            }
            keys
        }
        // NULL-encrypted: the keys are not used.
        None => TransportKeys::derive_with_label(m.hdr().prf, &[0], &[])?,
    };
    let (mpki, mpkr, tgk) = read_kemac_keys(&m, &keys, true)?;
    Ok(ResolveGrant {
        mpki,
        mpkr: mpkr.ok_or(Error::MissingPayload(PayloadType::KeyData))?,
        tgk,
        responder: utf8(m.idr(IdRole::RESPONDER).ok_or(Error::MissingPayload(PayloadType::Idr))?.data)?,
        randrkms: m.randr(rand_role::KMS).unwrap_or(&[]).to_vec(),
    })
}

/// The error message answering `init` (RFC 6043 §5.4; unauthenticated).
pub fn build_error_for(init: &[u8], t: u64, error_no: crate::ErrorNo) -> Result<Vec<u8>, Error> {
    let hdr = match Message::parse_ticket(init) {
        Ok(m) => resp_hdr(DataType::ERROR, m.hdr()),
        Err(_) => init_hdr(DataType::ERROR, PrfFunc::MikeyHmacSha1, 0),
    };
    let mut buf = vec![0u8; 64];
    let n = build_error(&mut buf, &Hdr { v: false, ..hdr }, t, error_no)?;
    buf.truncate(n);
    Ok(buf)
}

/// The RAND payload type of RFC 3830, re-exported for callers that build their own chains.
pub type RandPayload<'a> = Rand<'a>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ntp_from_unix;

    const ALICE: &str = "alice@ims.example";
    const BOB: &str = "bob@ims.example";
    const KMS: &str = "kms.ims.example";

    fn k(b: u8) -> Key128 {
        Key128([b; KEY_LEN])
    }

    /// The three exchanges end to end without transport; both ends get the same session keys and
    /// tampering anywhere is caught.
    #[test]
    fn request_transfer_resolve() {
        let psk_a = [0xA1u8; 32];
        let psk_b = [0xB2u8; 32];
        let tpk = [0x77u8; 32];
        let mut policy = PolicySpec::ims(KMS, ALICE, &[BOB], true);
        policy.valid_from = Some(1000);
        policy.valid_to = Some(2000);
        let init = build_request_init(
            &RequestInit {
                csb_id: 7,
                t: ntp_from_unix(1500),
                randri: vec![1; RAND_LEN],
                initiator: ALICE.into(),
                kms: KMS.into(),
                policy: policy.clone(),
                psk_id: "btid-a@bsf".into(),
            },
            &psk_a,
        )
        .unwrap();
        let r = verify_request_init(&init, &psk_a).unwrap();
        assert_eq!(r.policy, policy);
        assert!(verify_request_init(&init, &psk_b).is_err());

        let keys = TicketKeys { mpk: k(3), tgk: k(4) };
        let ticket =
            issue_ticket(&r.policy, &tpk, "kms-key-1", &keys, &[9; TICKET_RAND_LEN], ntp_from_unix(1500))
                .unwrap();
        let (mpki, mpkr) = mpk_pair(&ticket, &keys.mpk).unwrap();
        let grant = RequestGrant {
            ticket: ticket.clone(),
            mpki: mpki.clone(),
            mpkr: mpkr.clone(),
            tgk: keys.tgk.clone(),
        };
        let resp = build_request_resp(&init, ntp_from_unix(1501), KMS, &grant, &psk_a).unwrap();
        let got = open_request_resp(&resp, &init, &psk_a).unwrap();
        assert_eq!(got.ticket, ticket);
        assert_eq!(got.mpkr.0, mpkr.0);
        assert!(open_request_resp(&resp, &init, &psk_b).is_err());

        let ti = build_transfer_init(
            &TransferInit {
                csb_id: 99,
                t: ntp_from_unix(1502),
                randri: vec![5; RAND_LEN],
                initiator: ALICE.into(),
                responder: BOB.into(),
                ssrc: 0x1111,
                ticket: got.ticket.clone(),
            },
            &got.mpki,
            &got.mpkr,
        )
        .unwrap();
        let view = read_transfer_init(&ti).unwrap();
        assert_eq!(view.policy.recipients, vec![BOB.to_string()]);

        let ri = build_resolve_init(
            &ResolveInit {
                csb_id: 12,
                t: ntp_from_unix(1503),
                randrr: vec![6; RAND_LEN],
                responder: BOB.into(),
                kms: KMS.into(),
                ticket: view.ticket.clone(),
                psk_id: Some("btid-b@bsf".into()),
            },
            Some(&psk_b),
        )
        .unwrap();
        let rr = verify_resolve_init(&ri, &psk_b).unwrap();
        let opened = open_ticket_keys(&rr.ticket, &tpk).unwrap();
        assert_eq!(opened.tgk.0, keys.tgk.0);
        assert!(open_ticket_keys(&rr.ticket, &[0x78; 32]).is_err());
        let (ki, kr) = mpk_pair(&rr.ticket, &opened.mpk).unwrap();
        verify_initiator_data(
            &rr.ticket.initiator_data,
            &TransportKeys::for_initiator_data(rr.ticket.prf, &kr.0).unwrap(),
        )
        .unwrap();
        let (mpkr_f, tgk_f) = fork(rr.ticket.prf, &kr, &opened.tgk, BOB, &[8; RANDRKMS_LEN]).unwrap();
        let rg = ResolveGrant {
            mpki: ki,
            mpkr: mpkr_f,
            tgk: tgk_f,
            responder: BOB.into(),
            randrkms: vec![8; RANDRKMS_LEN],
        };
        let rresp = build_resolve_resp(&ri, ntp_from_unix(1504), KMS, &rg, Some(&psk_b)).unwrap();
        let bob = open_resolve_resp(&rresp, &ri, Some(&psk_b)).unwrap();
        verify_transfer_init(&ti, &bob.mpki).unwrap();
        // Unprotected (Zk) form.
        let zk_init = build_resolve_init(&ResolveInit { psk_id: None, ..rr.clone() }, None).unwrap();
        let zk = build_resolve_resp(&zk_init, ntp_from_unix(1504), KMS, &rg, None).unwrap();
        assert_eq!(open_resolve_resp(&zk, &zk_init, None).unwrap().tgk.0, bob.tgk.0);

        let tresp = build_transfer_resp(
            &ti,
            &TransferResp {
                t: ntp_from_unix(1505),
                randrr: vec![2; RAND_LEN],
                responder: bob.responder.clone(),
                randrkms: bob.randrkms.clone(),
                ssrc: 0x2222,
            },
            &bob.mpkr,
        )
        .unwrap();
        let tv = read_transfer_resp(&tresp).unwrap();
        let (a_mpkr, a_tgk) = fork(ticket.prf, &got.mpkr, &got.tgk, &tv.responder, &tv.randrkms).unwrap();
        verify_transfer_resp(&tresp, &ti, &a_mpkr).unwrap();
        assert!(verify_transfer_resp(&tresp, &ti, &got.mpkr).is_err());
        for cs in [CS_INITIATOR, CS_RESPONDER] {
            let a = session_key(ticket.prf, &a_tgk, cs, &ticket.flags, &view.randri, &tv.randrr).unwrap();
            let b = session_key(ticket.prf, &bob.tgk, cs, &ticket.flags, &view.randri, &tv.randrr).unwrap();
            assert_eq!(a.tek, b.tek);
            assert_eq!(a.salt, b.salt);
        }
        // Tampering: every single bit flip of the ticket data breaks the ticket MAC or parse.
        for i in 0..rr.ticket.ticket_data.len() {
            let mut t = rr.ticket.clone();
            t.ticket_data[i] ^= 0x01;
            assert!(open_ticket_keys(&t, &tpk).is_err(), "flip at {i}");
        }
        for i in 0..rr.ticket.tp_data.len() {
            let mut t = rr.ticket.clone();
            t.tp_data[i] ^= 0x01;
            assert!(open_ticket_keys(&t, &tpk).is_err(), "tp flip at {i}");
        }
    }

    #[test]
    fn uid_and_groups() {
        assert_eq!(
            kms_uid("sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org"),
            Some("001010123456789@ims.mnc001.mcc001.3gppnetwork.org")
        );
        assert_eq!(kms_uid("sip:bob@x.org;user=phone"), Some("bob@x.org"));
        assert_eq!(kms_uid("tel:+15550100"), None);
        assert!(uid_matches("?.department@company.example", "user1.department@company.example"));
        assert!(uid_matches("?", "anyone@x"));
        assert!(uid_matches("?@?", "a@b"));
        assert!(uid_matches("a?b", "ab"));
        assert!(!uid_matches("?.department@company.example", "user1.sales@company.example"));
        assert!(!uid_matches("bob@x", "bob@xy"));
        assert!(uid_matches("00101000000000?@ims.?", "001010000000002@ims.mnc001"));
    }
}
