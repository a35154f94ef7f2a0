//! The network side of a card run: a BSF (TS 33.220 §4.5.2, GBA_U of §5.3.2) and a BM-SC
//! (TS 33.246 §6.3, UICC-based key management) driving a card through any `sim_reader::Reader`
//! with the AUTHENTICATE contract of docs/card-interface.md (TS 31.102 §7.1).
//!
//! The network computes every key itself: Milenage vectors and AUTN* through `gba`, checked
//! against the `milenage` crate and SHA-1 ([`crate::independent`]); Ks_ext_NAF / Ks_int_NAF
//! through `gba::kdf`, checked against an HMAC-SHA-256 KDF written out here; MIKEY messages built
//! with `mikey::mbms`. The card's answers are compared with those values, and every exchange is
//! kept (raw APDUs included) so callers can walk the traffic.
//!
//! [`run`] is the whole scenario, asserting as it goes; the step functions return `Err` with a
//! readable message instead, for callers (benchmarks) that must not panic.

use std::collections::BTreeMap;

use gba::{AuthVector, BTid, Milenage, NafId, Sqn, UaSecurityProtocolId};
use mikey::Timestamp;
use mikey::mbms::{self, KeyDomainId};
use network::muk_bmsc::MukBmsc;
use sha2::{Digest, Sha256};
use sim_reader::{CardProfile, Exchange, Reader, Session};

use crate::independent;

/// Status words of the contract (docs/card-interface.md and the status words of the card's MBMS
/// profile module it points to; TS 31.102 §7.3 via the spec digest §6).
pub mod sw {
    /// Normal ending.
    pub const OK: u16 = 0x9000;
    /// Authentication error, incorrect MAC: AUTN (or AUTN* in the 3G context), or a MIKEY MAC.
    pub const AUTH_MAC: u16 = 0x9862;
    /// Key freshness failure: a replayed MSK message, a replayed or old MTK message.
    pub const KEY_FRESHNESS: u16 = 0x9865;
    /// Conditions of use not satisfied: no Ks, B-TID or lifetime for NAF derivation; no MUK.
    pub const CONDITIONS: u16 = 0x6985;
    /// Referenced data not found: no MSK for an MTK message; nothing to delete.
    pub const NOT_FOUND: u16 = 0x6A88;
    /// Security status not satisfied: AUTHENTICATE before PIN1 was verified.
    pub const PIN_REQUIRED: u16 = 0x6982;
    /// Security session or association expired: the MUK's key lifetime lies before the MSK
    /// message's timestamp (outside a solicited pull).
    pub const MUK_EXPIRED: u16 = 0x9863;
}

/// The NAF the MBMS keys are derived for: the BM-SC (TS 33.246 §6.1; NAF_Id = FQDN ‖ 01 00 00 00 01,
/// TS 33.220 Annex H).
pub const BMSC_FQDN: &str = "bmsc.example.org";
/// The BSF's domain in the B-TID (TS 23.003 §16.2 form for MCC 001, MNC 01).
pub const BSF_DOMAIN: &str = "bsf.mnc001.mcc001.pub.3gppnetwork.org";
/// Key lifetime of the first bootstrap (TS 24.109 §4.2: ASCII UTC, `YYYY-MM-DDThh:mm:ssZ`).
pub const LIFETIME_1: &str = "2030-01-01T00:00:00Z";
/// Key lifetime of the second bootstrap.
pub const LIFETIME_2: &str = "2035-01-01T00:00:00Z";
/// 2026-01-01T00:00:00Z in Unix seconds: the timestamps of the first MUK's messages start here.
const UNIX_2026: u64 = 1_767_225_600;
/// 2031-01-01T00:00:00Z: after [`LIFETIME_1`], so the first MUK has expired.
const UNIX_2031: u64 = 1_924_992_000;
/// 2032-01-01T00:00:00Z: before [`LIFETIME_2`], for the second MUK.
const UNIX_2032: u64 = 1_956_528_000;
/// Key Group of the first MSKs, and of the second MUK's MSKs.
pub const KEY_GROUP_1: u16 = 0x0001;
/// Key Group delivered after the MUK was re-created.
pub const KEY_GROUP_2: u16 = 0x0002;

/// NTP-UTC timestamp (RFC 3830 §6.6, TS-type 0) of a Unix time in seconds.
pub fn ntp(unix_seconds: u64) -> Timestamp {
    Timestamp::NtpUtc(mikey::ntp_from_unix(unix_seconds))
}

/// SELECT ADF.USIM by AID (TS 31.102 §4; RID A000000087, application 1002), FCP returned.
pub const SELECT_USIM: [u8; 13] =
    [0x00, 0xA4, 0x04, 0x04, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0x00];

/// One command as sent and its whole answer.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step did.
    pub name: String,
    /// The answer, with every raw exchange it took.
    pub exchange: Exchange,
}

/// A session that keeps every step.
pub struct CardLink<R: Reader> {
    session: Session<R>,
    /// Every step so far, in order.
    pub steps: Vec<Step>,
    /// Keep steps (off for long measurement loops).
    pub record: bool,
}

impl<R: Reader> CardLink<R> {
    /// Drive `reader` (a powered card).
    pub fn new(reader: R) -> Self {
        CardLink { session: Session::new(reader), steps: Vec::new(), record: true }
    }

    /// The session.
    pub fn session_mut(&mut self) -> &mut Session<R> {
        &mut self.session
    }

    /// Give the reader back.
    pub fn into_reader(self) -> R {
        self.session.into_reader()
    }

    /// Send a command, keep the step.
    pub fn send(&mut self, name: &str, apdu: &[u8]) -> Result<Exchange, String> {
        let ex = self.session.transmit_apdu(apdu).map_err(|e| format!("{name}: {e}"))?;
        if self.record {
            self.steps.push(Step { name: name.to_owned(), exchange: ex.clone() });
        }
        Ok(ex)
    }

    /// Send a command that must end with `expected`.
    pub fn expect(&mut self, name: &str, apdu: &[u8], expected: u16) -> Result<Exchange, String> {
        let ex = self.send(name, apdu)?;
        if ex.sw() != expected {
            return Err(format!(
                "{name}: expected SW {expected:04X}, the card answered {:04X} ({})\n  > {}\n  < {}",
                ex.sw(),
                ex.status,
                hex::encode_upper(apdu),
                hex::encode_upper(ex.to_bytes())
            ));
        }
        Ok(ex)
    }
}

// ------------------------------------------------------------------------------------------------
// Command encodings (TS 31.102 §7.1.2, TS 102 221 §11)

/// A short case-3 or case-4 command APDU.
pub fn short_apdu(header: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let lc = u8::try_from(data.len()).expect("short APDU data fits in 255 bytes");
    let mut c = header.to_vec();
    c.push(lc);
    c.extend_from_slice(data);
    c.extend(le);
    c
}

/// A BER-TLV data object with a one-byte tag and a definite length (ISO/IEC 8825-1 §8.1.3).
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// VERIFY PIN1 (TS 102 221 §11.1.9): the ASCII digits padded with `FF` to 8 bytes.
pub fn verify_pin1(pin: &str) -> Vec<u8> {
    let mut value = [0xFF; 8];
    value[..pin.len()].copy_from_slice(pin.as_bytes());
    short_apdu([0x00, 0x20, 0x00, 0x01], &value, None)
}

/// SELECT by file ID under the current DF, no data returned.
pub fn select_fid(fid: u16) -> Vec<u8> {
    short_apdu([0x00, 0xA4, 0x00, 0x0C], &fid.to_be_bytes(), None)
}

/// AUTHENTICATE, 3G context (TS 31.102 §7.1.2.1): `10 RAND 10 AUTN`.
pub fn authenticate_3g(rand: &[u8; 16], autn: &[u8; 16]) -> Vec<u8> {
    let mut data = vec![0x10];
    data.extend_from_slice(rand);
    data.push(0x10);
    data.extend_from_slice(autn);
    short_apdu([0x00, 0x88, 0x00, 0x81], &data, Some(0))
}

/// AUTHENTICATE, GBA context, Bootstrapping Mode: `DD 10 RAND 10 AUTN*`.
pub fn gba_bootstrap(rand: &[u8; 16], autn_star: &[u8; 16]) -> Vec<u8> {
    let mut data = vec![0xDD, 0x10];
    data.extend_from_slice(rand);
    data.push(0x10);
    data.extend_from_slice(autn_star);
    short_apdu([0x00, 0x88, 0x00, 0x84], &data, Some(0))
}

/// AUTHENTICATE, GBA context, NAF Derivation Mode: `DE Ln NAF_Id Li IMPI`.
pub fn naf_derivation(naf_id: &[u8], impi: &[u8]) -> Vec<u8> {
    let mut data = vec![0xDE, u8::try_from(naf_id.len()).expect("NAF_Id length")];
    data.extend_from_slice(naf_id);
    data.push(u8::try_from(impi.len()).expect("IMPI length"));
    data.extend_from_slice(impi);
    short_apdu([0x00, 0x88, 0x00, 0x84], &data, Some(0))
}

/// MBMS modes of AUTHENTICATE (docs/card-interface.md "MBMS context").
pub mod mode {
    /// MSK Update (and solicited pull).
    pub const MSK_UPDATE: u8 = 0x01;
    /// MTK Generation.
    pub const MTK_GENERATION: u8 = 0x02;
    /// MSK Deletion.
    pub const MSK_DELETION: u8 = 0x03;
    /// MUK Deletion.
    pub const MUK_DELETION: u8 = 0x04;
}

/// AUTHENTICATE, MBMS context (ODD INS, P1 `80` first block, P2 `85`): `53 L mode data`.
pub fn mbms(mode: u8, data: &[u8]) -> Vec<u8> {
    let mut inner = vec![mode];
    inner.extend_from_slice(data);
    short_apdu([0x00, 0x89, 0x80, 0x85], &tlv(0x53, &inner), Some(0))
}

/// The data after `DB` in an MBMS answer `53 L DB [data]`.
pub fn mbms_answer(name: &str, ex: &Exchange) -> Result<Vec<u8>, String> {
    let bad = |why: &str| Err(format!("{name}: {why}: {}", hex::encode_upper(&ex.data)));
    let Ok((object, rest)) = apdu::tlv::Tlv::parse(&ex.data) else {
        return bad("the answer is no BER-TLV object");
    };
    if object.tag != 0x53 {
        return bad("the answer is not wrapped in tag 53");
    }
    if !rest.is_empty() {
        return bad("bytes after the 53 object");
    }
    match object.value.split_first() {
        Some((0xDB, data)) => Ok(data.to_vec()),
        _ => bad("the 53 object does not start with DB"),
    }
}

// ------------------------------------------------------------------------------------------------
// The subscriber, the BSF and the BM-SC

/// What the network knows of the subscriber (HSS): the profile's keys and the HE's SQN.
pub struct Subscriber {
    /// K.
    pub k: [u8; 16],
    /// OPc.
    pub opc: [u8; 16],
    /// AMF put into AUTN.
    pub amf: [u8; 2],
    /// The highest SQN the HE has used (starts at the card's initial SQN).
    pub sqn: u64,
    /// IMPI, the identity of the Ks derivations (TS 33.220 Annex B.3).
    pub impi: String,
    /// PIN1.
    pub pin1: String,
    /// IMSI.
    pub imsi: String,
}

/// SQN step between two vectors: the next SEQ with the same IND (TS 33.102 Annex C.3.2, 5 IND bits).
pub const SQN_STEP: u64 = 1 << 5;

impl Subscriber {
    /// The subscriber of a card profile.
    pub fn from_profile(p: &CardProfile) -> Self {
        Subscriber {
            k: *p.k(),
            opc: *p.opc(),
            amf: *p.amf(),
            sqn: Sqn::from_bytes(p.sqn()).value(),
            impi: p.impi().to_owned(),
            pin1: p.pin1().to_owned(),
            imsi: p.imsi().to_owned(),
        }
    }

    /// MBMS Key Domain ID = MCC ‖ MNC in the PLMN coding of TS 24.008 §10.5.1.13 (TS 33.246
    /// §6.3.2.1; TS 31.102 §4.2.80). The IMSI is read with a two-digit MNC, as for MCC 001.
    pub fn key_domain_id(&self) -> KeyDomainId {
        let d: Vec<u8> = self.imsi.bytes().take(5).map(|c| c - b'0').collect();
        KeyDomainId([(d[1] << 4) | d[0], 0xF0 | d[2], (d[4] << 4) | d[3]])
    }
}

/// One GBA_U bootstrap as the BSF sees it.
#[derive(Clone)]
pub struct Bootstrap {
    /// RAND.
    pub rand: [u8; 16],
    /// SQN of the vector.
    pub sqn: u64,
    /// XRES.
    pub xres: [u8; 8],
    /// RES as the card returned it.
    pub res: Vec<u8>,
    /// CK.
    pub ck: [u8; 16],
    /// IK.
    pub ik: [u8; 16],
    /// Ks = CK ‖ IK.
    pub ks: [u8; 32],
    /// AUTN* sent.
    pub autn_star: [u8; 16],
    /// B-TID = base64(RAND)@BSF domain.
    pub btid: String,
    /// Key lifetime.
    pub lifetime: String,
}

/// The NAF keys of one derivation.
#[derive(Clone)]
pub struct NafKeys {
    /// NAF_Id = FQDN ‖ Ua security protocol id.
    pub naf_id: Vec<u8>,
    /// Ks_ext_NAF (= MRK), given to the ME.
    pub ks_ext_naf: [u8; 32],
    /// Ks_int_NAF (= MUK), kept on the card.
    pub ks_int_naf: [u8; 32],
}

/// Deterministic distinct byte strings for RANDs and keys: the first bytes of
/// SHA-256("keysim mbms run" ‖ label ‖ n).
pub fn material<const N: usize>(label: &str, n: u64) -> [u8; N] {
    let digest =
        Sha256::new().chain_update(b"keysim mbms run").chain_update(label).chain_update(n.to_be_bytes());
    digest.finalize()[..N].try_into().expect("N <= 32")
}

/// GBA_U bootstrap (AUTHENTICATE `DD`), with one resynchronisation if the card answers `DC AUTS`
/// (TS 33.102 §6.3.5). Returns the bootstrap with the card's RES checked against XRES.
pub fn bootstrap<R: Reader>(
    link: &mut CardLink<R>,
    sub: &mut Subscriber,
    rand: [u8; 16],
    lifetime: &str,
) -> Result<Bootstrap, String> {
    let mut rand = rand;
    for attempt in 0..2 {
        let sqn = sub.sqn + SQN_STEP;
        let m = Milenage::new(&sub.k, &sub.opc);
        let av = AuthVector::generate(&m, &rand, Sqn::new(sqn).map_err(|e| format!("{e:?}"))?, &sub.amf);
        let autn_star = av.gba_u_autn().to_bytes();
        let oracle = independent::vector(&sub.k, &sub.opc, &rand, sqn, &sub.amf);
        if oracle.autn_star != autn_star || oracle.autn != av.autn.to_bytes() || oracle.xres != av.xres {
            return Err("gba's vector differs from the milenage crate's".to_owned());
        }
        if oracle.ck != *av.ck.expose() || oracle.ik != *av.ik.expose() {
            return Err("gba's CK/IK differ from the milenage crate's".to_owned());
        }
        let ex = link.expect("GBA bootstrap", &gba_bootstrap(&rand, &autn_star), sw::OK)?;
        match ex.data.as_slice() {
            [0xDB, len, res @ ..] if usize::from(*len) == res.len() => {
                if !av.verify_res(res) {
                    return Err(format!(
                        "GBA bootstrap: RES {} is not XRES {}",
                        hex::encode(res),
                        hex::encode(av.xres)
                    ));
                }
                sub.sqn = sqn;
                let mut ks = [0u8; 32];
                ks[..16].copy_from_slice(&oracle.ck);
                ks[16..].copy_from_slice(&oracle.ik);
                if ks != *av.ks().expose() {
                    return Err("Ks differs from CK ‖ IK".to_owned());
                }
                let btid = BTid::new(&rand, BSF_DOMAIN).map_err(|e| format!("B-TID: {e:?}"))?;
                return Ok(Bootstrap {
                    rand,
                    sqn,
                    xres: av.xres,
                    res: res.to_vec(),
                    ck: oracle.ck,
                    ik: oracle.ik,
                    ks,
                    autn_star,
                    btid: btid.as_str().to_owned(),
                    lifetime: lifetime.to_owned(),
                });
            }
            [0xDC, 0x0E, auts @ ..] if auts.len() == 14 && attempt == 0 => {
                let sqn_ms = independent::sqn_ms_from_auts(&sub.k, &sub.opc, &rand, auts);
                let checked = gba::Auts::parse(auts)
                    .map_err(|e| format!("AUTS: {e:?}"))?
                    .verify(&m, &rand)
                    .ok_or("AUTS: MAC-S does not verify")?;
                if checked.value() != sqn_ms {
                    return Err("AUTS: gba and the milenage crate disagree on SQN_MS".to_owned());
                }
                sub.sqn = sqn_ms;
                rand = material("resync rand", sqn_ms);
            }
            other => {
                return Err(format!(
                    "GBA bootstrap: expected DB L RES (or DC 0E AUTS), got {}",
                    hex::encode_upper(other)
                ));
            }
        }
    }
    Err("GBA bootstrap: still out of sync after one resynchronisation".to_owned())
}

/// Reads the whole of EF.GBABP (the ADF.USIM must be current, PIN1 verified).
pub fn read_gbabp<R: Reader>(link: &mut CardLink<R>) -> Result<Vec<u8>, String> {
    link.expect("SELECT EF.GBABP", &select_fid(0x6FD6), sw::OK)?;
    Ok(link.expect("READ BINARY EF.GBABP", &[0x00, 0xB0, 0x00, 0x00, 0x00], sw::OK)?.data)
}

/// EF.GBABP as its three LV fields (TS 31.102 §4.2.79): RAND, B-TID, key lifetime.
pub fn parse_gbabp(bytes: &[u8]) -> Result<[Vec<u8>; 3], String> {
    let mut at = 0;
    let mut field = || -> Result<Vec<u8>, String> {
        let len = usize::from(*bytes.get(at).ok_or("EF.GBABP ends before a length byte")?);
        let value = bytes.get(at + 1..at + 1 + len).ok_or("EF.GBABP ends inside a field")?.to_vec();
        at += 1 + len;
        Ok(value)
    };
    Ok([field()?, field()?, field()?])
}

/// Writes B-TID and lifetime after the card's RAND (UPDATE BINARY at offset 1 + len(RAND)).
pub fn write_btid<R: Reader>(link: &mut CardLink<R>, boot: &Bootstrap) -> Result<(), String> {
    link.expect("SELECT EF.GBABP", &select_fid(0x6FD6), sw::OK)?;
    let mut data = vec![u8::try_from(boot.btid.len()).expect("B-TID length")];
    data.extend_from_slice(boot.btid.as_bytes());
    data.push(u8::try_from(boot.lifetime.len()).expect("lifetime length"));
    data.extend_from_slice(boot.lifetime.as_bytes());
    link.expect(
        "UPDATE BINARY EF.GBABP (B-TID, lifetime)",
        &short_apdu([0x00, 0xD6, 0x00, 17], &data, None),
        sw::OK,
    )?;
    Ok(())
}

/// The NAF_Id of the BM-SC.
pub fn bmsc_naf_id() -> Vec<u8> {
    NafId::new(BMSC_FQDN, UaSecurityProtocolId::MBMS).expect("NAF_Id").as_bytes().to_vec()
}

/// NAF derivation for the BM-SC (AUTHENTICATE `DE`): Ks_ext_NAF checked against the network's.
pub fn derive_naf_keys<R: Reader>(
    link: &mut CardLink<R>,
    sub: &Subscriber,
    boot: &Bootstrap,
) -> Result<NafKeys, String> {
    let naf_id = bmsc_naf_id();
    let impi = sub.impi.as_bytes();
    let ks = gba::Ks::new(boot.ks);
    let parsed = NafId::from_bytes(&naf_id).map_err(|e| format!("{e:?}"))?;
    let (ext, int) =
        gba::kdf::derive_gba_u_naf_keys(&ks, &boot.rand, impi, &parsed).map_err(|e| format!("{e:?}"))?;
    let (ext, int) = (*ext.expose(), *int.expose());
    if ext != independent::ks_ext_naf(&boot.ks, &boot.rand, impi, &naf_id)
        || int != independent::ks_int_naf(&boot.ks, &boot.rand, impi, &naf_id)
    {
        return Err("gba::kdf differs from the TS 33.220 Annex B KDF written out here".to_owned());
    }
    let ex = link.expect("NAF derivation", &naf_derivation(&naf_id, impi), sw::OK)?;
    let mut expected = vec![0xDB, 0x20];
    expected.extend_from_slice(&ext);
    if ex.data != expected {
        return Err(format!(
            "NAF derivation: expected DB 20 Ks_ext_NAF = {}, got {}",
            hex::encode_upper(&expected),
            hex::encode_upper(&ex.data)
        ));
    }
    Ok(NafKeys { naf_id, ks_ext_naf: ext, ks_int_naf: int })
}

/// The BM-SC of a run: one MUK (`network::muk_bmsc`), RANDs numbered by the messages built.
pub struct Bmsc {
    /// The MUK, IDi, IDr and Key Domain ID, and the messages.
    pub keys: MukBmsc,
    /// Messages built so far (numbers the RANDs).
    pub serial: u64,
}

/// One MSK as delivered.
#[derive(Clone)]
pub struct Delivered {
    /// MSK ID.
    pub msk_id: u32,
    /// The MSK.
    pub msk: [u8; 16],
    /// Timestamp of the MSK message that carried it.
    pub timestamp: Timestamp,
}

/// One MTK as generated.
#[derive(Clone)]
pub struct Generated {
    /// MSK ID of the protecting MSK.
    pub msk_id: u32,
    /// MTK ID.
    pub mtk_id: u32,
    /// Timestamp counter of the MTK message.
    pub counter: u32,
    /// MTK.
    pub mtk: [u8; 16],
    /// Salt, when sent.
    pub salt: Option<[u8; 14]>,
    /// Raw APDUs the MTK Generation took.
    pub apdus: usize,
}

impl Bmsc {
    /// The BM-SC of `keys` for the bootstrap `boot`.
    pub fn new(sub: &Subscriber, boot: &Bootstrap, keys: &NafKeys) -> Self {
        let keys = MukBmsc {
            muk: keys.ks_int_naf,
            idi: BMSC_FQDN.as_bytes().to_vec(),
            idr: boot.btid.as_bytes().to_vec(),
            key_domain_id: sub.key_domain_id(),
        };
        Bmsc { keys, serial: 0 }
    }

    fn next_rand(&mut self) -> [u8; 16] {
        self.serial += 1;
        material("mikey rand", self.serial)
    }

    /// An MSK message (TS 33.246 §6.3.2) carrying `msk`.
    pub fn msk_message(&mut self, msk_id: u32, msk: &[u8; 16], timestamp: Timestamp, v_bit: bool) -> Vec<u8> {
        let rand = self.next_rand();
        self.keys.msk_message(&rand, msk_id, msk, timestamp, v_bit).expect("MSK message")
    }

    /// A solicited pull for `key_group` (TS 33.246 §6.3.2.2.4).
    pub fn solicited_pull(&mut self, key_group: u16, timestamp: Timestamp) -> Vec<u8> {
        let rand = self.next_rand();
        self.keys.solicited_pull(&rand, key_group, timestamp).expect("pull")
    }
}

/// MSK Update: sends `message`; on `90 00` returns the data after `DB`.
pub fn msk_update<R: Reader>(link: &mut CardLink<R>, name: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    let ex = link.expect(name, &mbms(mode::MSK_UPDATE, message), sw::OK)?;
    mbms_answer(name, &ex)
}

/// MSK Update of a new MSK; with the V bit, the verification message is checked with the MUK
/// (`verify_verification_message`), else the answer must be `DB` alone.
#[allow(clippy::too_many_arguments)]
pub fn deliver_msk<R: Reader>(
    link: &mut CardLink<R>,
    bmsc: &mut Bmsc,
    msk_id: u32,
    timestamp: Timestamp,
    v_bit: bool,
) -> Result<Delivered, String> {
    let msk: [u8; 16] = material("msk", u64::from(msk_id) ^ (bmsc.serial << 32));
    let message = bmsc.msk_message(msk_id, &msk, timestamp, v_bit);
    let name = format!("MSK Update {msk_id:08X}");
    let answer = msk_update(link, &name, &message)?;
    if v_bit {
        let parsed = mbms::parse_msk_message(&message).map_err(|e| format!("{e:?}"))?;
        mbms::verify_verification_message(&mbms::Muk::new(bmsc.keys.muk), &parsed, &answer)
            .map_err(|e| format!("{name}: the verification message does not verify: {e:?}"))?;
    } else if !answer.is_empty() {
        return Err(format!("{name}: V bit clear, but the card answered DB {}", hex::encode(&answer)));
    }
    Ok(Delivered { msk_id, msk, timestamp })
}

/// MTK Generation: the card must return exactly the MTK (and salt) the BM-SC put in.
pub fn generate_mtk<R: Reader>(
    link: &mut CardLink<R>,
    bmsc: &Bmsc,
    msk: &Delivered,
    mtk_id: u32,
    counter: u32,
    with_salt: bool,
) -> Result<Generated, String> {
    let mtk: [u8; 16] = material("mtk", (u64::from(msk.msk_id) << 20) ^ u64::from(mtk_id));
    let salt: Option<[u8; 14]> =
        with_salt.then(|| material("salt", (u64::from(msk.msk_id) << 20) ^ u64::from(mtk_id)));
    let message = bmsc
        .keys
        .mtk_message(msk.msk_id, &msk.msk, mtk_id, counter, &mtk, salt.as_ref())
        .expect("MTK message");
    let name = format!("MTK Generation {:08X}/{mtk_id}", msk.msk_id);
    let ex = link.expect(&name, &mbms(mode::MTK_GENERATION, &message), sw::OK)?;
    let answer = mbms_answer(&name, &ex)?;
    let mut expected = mtk.to_vec();
    expected.extend(salt.iter().flatten());
    if answer != expected {
        return Err(format!(
            "{name}: expected MTK‖salt {}, got {}",
            hex::encode(&expected),
            hex::encode(&answer)
        ));
    }
    Ok(Generated { msk_id: msk.msk_id, mtk_id, counter, mtk, salt, apdus: ex.apdu_count() })
}

/// MSK Deletion of every MSK of `key_group`: the answer must be `53 01 DB`.
pub fn delete_msks<R: Reader>(link: &mut CardLink<R>, bmsc: &Bmsc, key_group: u16) -> Result<(), String> {
    let mut data = bmsc.keys.key_domain_id.0.to_vec();
    data.extend_from_slice(&key_group.to_be_bytes());
    let ex = link.expect("MSK Deletion", &mbms(mode::MSK_DELETION, &data), sw::OK)?;
    let answer = mbms_answer("MSK Deletion", &ex)?;
    if !answer.is_empty() {
        return Err(format!("MSK Deletion: expected DB alone, got DB {}", hex::encode(answer)));
    }
    Ok(())
}

/// MUK Deletion of the BM-SC's MUK: the answer must be `53 01 DB`.
pub fn delete_muk<R: Reader>(link: &mut CardLink<R>, bmsc: &Bmsc) -> Result<(), String> {
    let ex = link.expect(
        "MUK Deletion",
        &mbms(mode::MUK_DELETION, &bmsc.keys.muk_id_tlv().expect("MUK ID")),
        sw::OK,
    )?;
    let answer = mbms_answer("MUK Deletion", &ex)?;
    if !answer.is_empty() {
        return Err(format!("MUK Deletion: expected DB alone, got DB {}", hex::encode(answer)));
    }
    Ok(())
}

/// ADF.USIM selected, PIN1 verified: where every run starts.
pub fn open_usim<R: Reader>(link: &mut CardLink<R>, sub: &Subscriber) -> Result<(), String> {
    link.expect("SELECT ADF.USIM", &SELECT_USIM, sw::OK)?;
    link.expect("VERIFY PIN1", &verify_pin1(&sub.pin1), sw::OK)?;
    Ok(())
}

/// Reads every record of a linear fixed EF under ADF.USIM (record count and length from its FCP).
pub fn read_records<R: Reader>(link: &mut CardLink<R>, fid: u16, name: &str) -> Result<Vec<Vec<u8>>, String> {
    let fcp = link.expect(
        &format!("SELECT {name}"),
        &short_apdu([0x00, 0xA4, 0x00, 0x04], &fid.to_be_bytes(), Some(0)),
        sw::OK,
    )?;
    let descriptor =
        fcp_descriptor(&fcp.data).ok_or_else(|| format!("{name}: no file descriptor in the FCP"))?;
    let (record_len, records) = match descriptor.as_slice() {
        [0x42, _, _, len, n] => (*len, *n),
        _ => return Err(format!("{name}: not a linear fixed EF: {}", hex::encode(descriptor))),
    };
    (1..=records)
        .map(|r| {
            let ex =
                link.expect(&format!("READ RECORD {name} {r}"), &[0x00, 0xB2, r, 0x04, record_len], sw::OK)?;
            Ok(ex.data)
        })
        .collect()
}

/// Tag 82 (file descriptor) inside an FCP `62 L ...` (TS 102 221 §11.1.1.4.3).
fn fcp_descriptor(fcp: &[u8]) -> Option<Vec<u8>> {
    let (outer, _) = apdu::tlv::Tlv::parse(fcp).ok()?;
    apdu::tlv::find(outer.value, 0x82).ok().flatten().map(<[u8]>::to_vec)
}

// ------------------------------------------------------------------------------------------------
// Expected file contents

/// One EF.MSK record (TS 31.102 §4.2.80): Key Domain ID and (MSK ID, Time Stamp Counter) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskRecord {
    /// Key Domain ID.
    pub key_domain_id: [u8; 3],
    /// (MSK ID, TS counter) pairs.
    pub msk_ids: Vec<(u32, u32)>,
}

/// One EF.MUK record (TS 31.102 §4.2.81).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MukRecord {
    /// MUK IDr (B-TID).
    pub idr: Vec<u8>,
    /// MUK IDi (BM-SC FQDN).
    pub idi: Vec<u8>,
    /// Time Stamp Counter, as stored.
    pub timestamp_counter: Vec<u8>,
}

/// One EF.GBANL record (TS 31.102 §4.2.83): a NAF_Id and the B-TID its Ks_int_NAF comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbanlRecord {
    /// NAF_Id = NAF FQDN ‖ Ua security protocol identifier (5 bytes).
    pub naf_id: Vec<u8>,
    /// B-TID.
    pub b_tid: Vec<u8>,
}

/// Decodes an EF.GBANL record `80 L NAF_Id 81 L B-TID`; `None` for an unused one (starting with `FF`).
pub fn decode_gbanl_record(r: &[u8]) -> Result<Option<GbanlRecord>, String> {
    if r.first() == Some(&0xFF) {
        return Ok(None);
    }
    let err = |e| format!("EF.GBANL record: {e:?}: {}", hex::encode(r));
    let naf_id = apdu::tlv::find(r, 0x80).map_err(err)?.ok_or("EF.GBANL: no NAF_Id (80)")?;
    let b_tid = apdu::tlv::find(r, 0x81).map_err(err)?.ok_or("EF.GBANL: no B-TID (81)")?;
    Ok(Some(GbanlRecord { naf_id: naf_id.to_vec(), b_tid: b_tid.to_vec() }))
}

/// Decodes an EF.MSK record; `None` for an unused one (all `FF`, or no pairs).
pub fn decode_msk_record(r: &[u8]) -> Result<Option<MskRecord>, String> {
    if r.iter().all(|&b| b == 0xFF) || r.get(3) == Some(&0) {
        return Ok(None);
    }
    let n = usize::from(*r.get(3).ok_or("EF.MSK record too short")?);
    let mut msk_ids = Vec::new();
    for i in 0..n {
        let pair = r.get(4 + 8 * i..12 + 8 * i).ok_or("EF.MSK record shorter than its pair count")?;
        msk_ids.push((
            u32::from_be_bytes(pair[..4].try_into().expect("4")),
            u32::from_be_bytes(pair[4..].try_into().expect("4")),
        ));
    }
    Ok(Some(MskRecord { key_domain_id: r[..3].try_into().expect("3"), msk_ids }))
}

/// Decodes an EF.MUK record; `None` for an unused one (starting with `FF`).
pub fn decode_muk_record(r: &[u8]) -> Result<Option<MukRecord>, String> {
    if r.first() == Some(&0xFF) {
        return Ok(None);
    }
    let err = |e| format!("EF.MUK record: {e:?}: {}", hex::encode(r));
    let (muk_id, rest) = apdu::tlv::Tlv::parse(r).map_err(err)?;
    let (ts, _) = apdu::tlv::Tlv::parse(rest).map_err(err)?;
    if muk_id.tag != 0xA0 || ts.tag != 0x81 {
        return Err(format!("EF.MUK record: expected A0 then 81: {}", hex::encode(r)));
    }
    let idr = apdu::tlv::find(muk_id.value, 0x80).map_err(err)?.ok_or("EF.MUK: no IDr (80)")?;
    let idi = apdu::tlv::find(muk_id.value, 0x82).map_err(err)?.ok_or("EF.MUK: no IDi (82)")?;
    Ok(Some(MukRecord { idr: idr.to_vec(), idi: idi.to_vec(), timestamp_counter: ts.value.to_vec() }))
}

/// What the card should hold after a run, as the network delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFiles {
    /// EF.GBABP: RAND, B-TID, key lifetime.
    pub gbabp: [Vec<u8>; 3],
    /// EF.MSK records in use (any order on the card).
    pub msk: Vec<MskRecord>,
    /// EF.MUK records in use.
    pub muk: Vec<MukRecord>,
    /// EF.GBANL records in use (any order on the card).
    pub gbanl: Vec<GbanlRecord>,
}

impl ExpectedFiles {
    /// JSON in the shapes pySim's decoders print (pySim/ts_31_102.py EF_GBABP, EF_MSK, EF_MUK),
    /// bytes as lower-case hex; EF.GBANL as its two TLV values (pySim's USIM EF_GBANL record
    /// decoder cannot decode a record, see scripts/pysim-compare.py).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "gbabp": {
                "rand": hex::encode(&self.gbabp[0]),
                "b_tid": hex::encode(&self.gbabp[1]),
                "key_lifetime": hex::encode(&self.gbabp[2]),
            },
            "msk": self.msk.iter().map(|r| serde_json::json!({
                "key_domain_id": hex::encode(r.key_domain_id),
                "num_msk_id": r.msk_ids.len(),
                "msk_ids": r.msk_ids.iter().map(|(id, ts)| serde_json::json!({
                    "msk_id": id, "timestamp_counter": ts,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "muk": self.muk.iter().map(|r| serde_json::json!({
                "muk_idr": hex::encode(&r.idr),
                "muk_idi": hex::encode(&r.idi),
                "time_stamp_counter": hex::encode(&r.timestamp_counter),
            })).collect::<Vec<_>>(),
            "gbanl": self.gbanl.iter().map(|r| serde_json::json!({
                "naf_id": hex::encode(&r.naf_id),
                "b_tid": hex::encode(&r.b_tid),
            })).collect::<Vec<_>>(),
        })
    }
}

/// EF.MUK Time Stamp Counter after an MSK message with `t` was accepted: the timestamp value as
/// carried (8 bytes for NTP-UTC; TS 31.102 §4.2.81 leaves the length to TS 33.246).
pub fn muk_counter_bytes(t: Timestamp) -> Vec<u8> {
    let mut b = [0u8; 8];
    let n = t.value_bytes(&mut b);
    b[..n].to_vec()
}

/// Reads EF.GBABP, EF.MSK, EF.MUK and EF.GBANL and compares them with `expected`.
pub fn check_files<R: Reader>(link: &mut CardLink<R>, expected: &ExpectedFiles) -> Result<(), String> {
    let gbabp = parse_gbabp(&read_gbabp(link)?)?;
    if gbabp != expected.gbabp {
        return Err(format!("EF.GBABP: expected {:?}, read {:?}", expected.gbabp, gbabp));
    }
    let mut msk = Vec::new();
    for r in read_records(link, 0x6FD7, "EF.MSK")? {
        msk.extend(decode_msk_record(&r)?);
    }
    let sorted = |mut v: Vec<MskRecord>| {
        v.sort_by_key(|r| r.msk_ids.first().map(|p| p.0));
        v
    };
    if sorted(msk.clone()) != sorted(expected.msk.clone()) {
        return Err(format!("EF.MSK: expected {:?}, read {:?}", expected.msk, msk));
    }
    let mut muk = Vec::new();
    for r in read_records(link, 0x6FD8, "EF.MUK")? {
        muk.extend(decode_muk_record(&r)?);
    }
    if muk != expected.muk {
        return Err(format!("EF.MUK: expected {:?}, read {:?}", expected.muk, muk));
    }
    let mut gbanl = Vec::new();
    for r in read_records(link, 0x6FDA, "EF.GBANL")? {
        gbanl.extend(decode_gbanl_record(&r)?);
    }
    let sorted = |mut v: Vec<GbanlRecord>| {
        v.sort_by(|a, b| (&a.naf_id, &a.b_tid).cmp(&(&b.naf_id, &b.b_tid)));
        v
    };
    if sorted(gbanl.clone()) != sorted(expected.gbanl.clone()) {
        return Err(format!("EF.GBANL: expected {:?}, read {:?}", expected.gbanl, gbanl));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The whole run

/// Everything the network side of a run knew and saw.
pub struct MbmsRun {
    /// The subscriber (HE SQN advanced by the run).
    pub subscriber: Subscriber,
    /// The two bootstraps.
    pub bootstraps: Vec<Bootstrap>,
    /// The NAF keys of each bootstrap.
    pub naf_keys: Vec<NafKeys>,
    /// Every MSK delivered.
    pub msks: Vec<Delivered>,
    /// Every MTK generated.
    pub mtks: Vec<Generated>,
    /// The BM-SC of the last MUK, ready for more MTK messages.
    pub bmsc: Bmsc,
    /// The MSK the last MTKs were generated under.
    pub current_msk: Delivered,
    /// Next MTK ID and counter for `current_msk`.
    pub next_mtk: u32,
    /// What the card should hold now.
    pub expected: ExpectedFiles,
    /// Every command and answer, in order.
    pub steps: Vec<Step>,
}

impl MbmsRun {
    /// Every raw exchange of the run, in order.
    pub fn raw_exchanges(&self) -> impl Iterator<Item = &sim_reader::RawExchange> {
        self.steps.iter().flat_map(|s| s.exchange.raw.iter())
    }

    /// The steps whose name starts with `prefix`.
    pub fn steps_named<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps.iter().filter(move |s| s.name.starts_with(prefix))
    }
}

/// Generates one more MTK under the run's current MSK (increasing MTK ID and counter).
pub fn next_mtk<R: Reader>(link: &mut CardLink<R>, run: &mut MbmsRun) -> Result<Generated, String> {
    let id = run.next_mtk;
    let g = generate_mtk(link, &run.bmsc, &run.current_msk, id, id, true)?;
    run.next_mtk += 1;
    Ok(g)
}

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The whole scenario on a freshly personalized card; panics with the failing step.
///
/// 1. Before PIN1: NAF derivation → `69 82`. Before any bootstrap: NAF derivation → `69 85`; the
///    GBA_U challenge in the 3G context → `98 62`.
/// 2. Bootstrap 1: RES = XRES; the card wrote RAND into EF.GBABP and left B-TID and lifetime
///    empty; NAF derivation before B-TID → `69 85`; B-TID and lifetime written; NAF derivation →
///    Ks_ext_NAF.
/// 3. MSK 1 (V bit → verification message checked), MTK with and without salt; replayed MSK
///    message → `98 65`; replayed MTK message, or a new one with an MTK ID not above the last →
///    `98 65`; wrong MAC (MSK, MTK) → `98 62`, with a
///    timestamp the later MSK 2 must still beat (so a refused message stored nothing).
/// 4. MSK 2 (no V bit): MTKs under MSK 2 and still under MSK 1; MSK 3: MSK 1 is dropped (at most
///    two MSKs per Key Group) → MTK under MSK 1 `6A 88`.
/// 5. Solicited pull → `00 ‖ Key Domain ID ‖ Key Group`. After the MUK's lifetime: an MSK message
///    → `98 63`, a solicited pull still works.
/// 6. MSK Deletion → MTK under the deleted MSKs `6A 88`; MUK Deletion → MSK message `69 85`;
///    deleting either again → `6A 88`.
/// 7. Bootstrap 2: the card cleared B-TID and lifetime; new MUK; MSKs of Key Group 2 and MTKs.
/// 8. EF.GBABP, EF.MSK, EF.MUK and EF.GBANL read back and compared with what was delivered.
pub fn run<R: Reader>(reader: R, profile: &CardProfile) -> (MbmsRun, R) {
    let mut link = CardLink::new(reader);
    let mut sub = Subscriber::from_profile(profile);
    let naf_id = bmsc_naf_id();
    let impi = sub.impi.clone();
    ok(link.expect("SELECT ADF.USIM", &SELECT_USIM, sw::OK));
    ok(link.expect(
        "NAF derivation before PIN1",
        &naf_derivation(&naf_id, impi.as_bytes()),
        sw::PIN_REQUIRED,
    ));
    ok(link.expect("VERIFY PIN1", &verify_pin1(&sub.pin1), sw::OK));

    // The card must be fresh: no MSK or MUK yet.
    for r in ok(read_records(&mut link, 0x6FD7, "EF.MSK")) {
        assert_eq!(ok(decode_msk_record(&r)), None, "the card already holds MSKs: run on a fresh card");
    }
    for r in ok(read_records(&mut link, 0x6FD8, "EF.MUK")) {
        assert_eq!(ok(decode_muk_record(&r)), None, "the card already holds a MUK: run on a fresh card");
    }

    // 1. Before any bootstrap.
    ok(link.expect(
        "NAF derivation before any bootstrap",
        &naf_derivation(&naf_id, impi.as_bytes()),
        sw::CONDITIONS,
    ));
    let probe_rand = material("3g probe rand", 0);
    let probe = independent::vector(&sub.k, &sub.opc, &probe_rand, sub.sqn + SQN_STEP, &sub.amf);
    ok(link.expect(
        "3G context with the GBA_U AUTN*",
        &authenticate_3g(&probe_rand, &probe.autn_star),
        sw::AUTH_MAC,
    ));

    // 2. Bootstrap 1.
    let boot1 = ok(bootstrap(&mut link, &mut sub, material("bootstrap rand", 1), LIFETIME_1));
    let gbabp = ok(parse_gbabp(&ok(read_gbabp(&mut link))));
    assert_eq!(
        gbabp,
        [boot1.rand.to_vec(), vec![], vec![]],
        "EF.GBABP after bootstrap 1: RAND, empty B-TID and lifetime"
    );
    ok(link.expect(
        "NAF derivation before B-TID is written",
        &naf_derivation(&naf_id, impi.as_bytes()),
        sw::CONDITIONS,
    ));
    ok(write_btid(&mut link, &boot1));
    let keys1 = ok(derive_naf_keys(&mut link, &sub, &boot1));
    let mut bmsc = Bmsc::new(&sub, &boot1, &keys1);

    // 3. MSK 1, MTKs, replays, wrong MACs.
    let t = |s: u64| ntp(UNIX_2026 + s);
    let msk1 = ok(deliver_msk(&mut link, &mut bmsc, 0x0001_0001, t(0), true));
    let mut mtks = vec![
        ok(generate_mtk(&mut link, &bmsc, &msk1, 1, 1, true)),
        ok(generate_mtk(&mut link, &bmsc, &msk1, 2, 2, false)),
    ];
    let replay = link
        .steps
        .iter()
        .find(|s| s.name == "MSK Update 00010001")
        .map(|s| s.exchange.raw[0].command.clone());
    ok(link.expect("replayed MSK message", &replay.expect("MSK 1 was sent"), sw::KEY_FRESHNESS));
    let replay = link
        .steps
        .iter()
        .find(|s| s.name == "MTK Generation 00010001/1")
        .map(|s| s.exchange.raw[0].command.clone());
    ok(link.expect("replayed MTK message", &replay.expect("MTK 1 was sent"), sw::KEY_FRESHNESS));
    for old_id in [2, 1] {
        let old = bmsc
            .keys
            .mtk_message(msk1.msk_id, &msk1.msk, old_id, 50, &[0x33; 16], None)
            .expect("MTK message");
        ok(link.expect(
            "new MTK message with an old MTK ID",
            &mbms(mode::MTK_GENERATION, &old),
            sw::KEY_FRESHNESS,
        ));
    }
    let mut forged = bmsc.msk_message(0x0001_0002, &material("forged msk", 0), t(1000), true);
    *forged.last_mut().expect("MAC") ^= 0x01;
    ok(link.expect("MSK message with a wrong MAC", &mbms(mode::MSK_UPDATE, &forged), sw::AUTH_MAC));
    let mut forged =
        bmsc.keys.mtk_message(msk1.msk_id, &msk1.msk, 1000, 1000, &[0; 16], None).expect("MTK message");
    *forged.last_mut().expect("MAC") ^= 0x01;
    ok(link.expect("MTK message with a wrong MAC", &mbms(mode::MTK_GENERATION, &forged), sw::AUTH_MAC));

    // 4. Rotation: at most two MSKs per Key Group.
    let msk2 = ok(deliver_msk(&mut link, &mut bmsc, 0x0001_0002, t(60), false));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk2, 3, 3, true)));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk1, 4, 4, true)));
    let msk3 = ok(deliver_msk(&mut link, &mut bmsc, 0x0001_0003, t(120), true));
    let stale = bmsc.keys.mtk_message(msk1.msk_id, &msk1.msk, 5, 5, &[0x11; 16], None).expect("MTK message");
    ok(link.expect(
        "MTK under MSK 1 after MSK 3 arrived",
        &mbms(mode::MTK_GENERATION, &stale),
        sw::NOT_FOUND,
    ));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk3, 6, 6, true)));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk2, 7, 7, true)));

    // 5. Solicited pull; the expired MUK.
    let kd = bmsc.keys.key_domain_id.0;
    let mut pull_answer = vec![0x00];
    pull_answer.extend_from_slice(&kd);
    pull_answer.extend_from_slice(&KEY_GROUP_1.to_be_bytes());
    let pull = bmsc.solicited_pull(KEY_GROUP_1, t(180));
    assert_eq!(ok(msk_update(&mut link, "solicited pull", &pull)), pull_answer, "solicited pull answer");
    let late = bmsc.msk_message(0x0001_0004, &material("late msk", 0), ntp(UNIX_2031), true);
    ok(link.expect("MSK message after the MUK's lifetime", &mbms(mode::MSK_UPDATE, &late), sw::MUK_EXPIRED));
    let pull = bmsc.solicited_pull(KEY_GROUP_1, ntp(UNIX_2031 + 60));
    assert_eq!(
        ok(msk_update(&mut link, "solicited pull after the MUK's lifetime", &pull)),
        pull_answer,
        "a solicited pull is verified with the expired, most recently used MUK"
    );

    // 6. Deletions.
    ok(delete_msks(&mut link, &bmsc, KEY_GROUP_1));
    let mut again = kd.to_vec();
    again.extend_from_slice(&KEY_GROUP_1.to_be_bytes());
    ok(link.expect("MSK Deletion of a deleted Key Group", &mbms(mode::MSK_DELETION, &again), sw::NOT_FOUND));
    for m in [&msk2, &msk3] {
        let msg = bmsc.keys.mtk_message(m.msk_id, &m.msk, 100, 100, &[0x22; 16], None).expect("MTK message");
        ok(link.expect("MTK under a deleted MSK", &mbms(mode::MTK_GENERATION, &msg), sw::NOT_FOUND));
    }
    ok(delete_muk(&mut link, &bmsc));
    ok(link.expect(
        "MUK Deletion of a deleted MUK",
        &mbms(mode::MUK_DELETION, &bmsc.keys.muk_id_tlv().expect("MUK ID")),
        sw::NOT_FOUND,
    ));
    let orphan = bmsc.msk_message(0x0001_0005, &material("orphan msk", 0), ntp(UNIX_2031 + 120), true);
    ok(link.expect("MSK message after MUK Deletion", &mbms(mode::MSK_UPDATE, &orphan), sw::CONDITIONS));

    // 7. Bootstrap 2, a new MUK, Key Group 2.
    let boot2 = ok(bootstrap(&mut link, &mut sub, material("bootstrap rand", 2), LIFETIME_2));
    let gbabp = ok(parse_gbabp(&ok(read_gbabp(&mut link))));
    assert_eq!(gbabp, [boot2.rand.to_vec(), vec![], vec![]], "a new bootstrap clears B-TID and lifetime");
    ok(write_btid(&mut link, &boot2));
    let keys2 = ok(derive_naf_keys(&mut link, &sub, &boot2));
    let mut bmsc = Bmsc::new(&sub, &boot2, &keys2);
    let t2 = |s: u64| ntp(UNIX_2032 + s);
    let msk21 = ok(deliver_msk(&mut link, &mut bmsc, 0x0002_0001, t2(0), true));
    let msk22 = ok(deliver_msk(&mut link, &mut bmsc, 0x0002_0002, t2(60), true));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk21, 1, 1, true)));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk22, 2, 2, true)));
    mtks.push(ok(generate_mtk(&mut link, &bmsc, &msk22, 3, 3, false)));

    // 8. The files.
    let expected = ExpectedFiles {
        gbabp: [boot2.rand.to_vec(), boot2.btid.as_bytes().to_vec(), LIFETIME_2.as_bytes().to_vec()],
        msk: vec![MskRecord { key_domain_id: kd, msk_ids: vec![(msk21.msk_id, 1), (msk22.msk_id, 3)] }],
        muk: vec![MukRecord {
            idr: bmsc.keys.idr.clone(),
            idi: bmsc.keys.idi.clone(),
            timestamp_counter: muk_counter_bytes(msk22.timestamp),
        }],
        // The second bootstrap's derivation for the BM-SC replaced the first one's entry (same
        // NAF_Id, older bootstrap, its MUK deleted).
        gbanl: vec![GbanlRecord { naf_id: naf_id.clone(), b_tid: boot2.btid.as_bytes().to_vec() }],
    };
    ok(check_files(&mut link, &expected));

    let msks = vec![msk1, msk2, msk3, msk21, msk22.clone()];
    let steps = std::mem::take(&mut link.steps);
    let run = MbmsRun {
        subscriber: sub,
        bootstraps: vec![boot1, boot2],
        naf_keys: vec![keys1, keys2],
        msks,
        mtks,
        bmsc,
        current_msk: msk22,
        next_mtk: 4,
        expected,
        steps,
    };
    (run, link.into_reader())
}

/// Secret byte strings of a run (Ks, CK, IK, every MUK, every MSK) and the byte strings the card
/// must hand out (RES, Ks_ext_NAF, MTK, salt).
pub fn secrets_and_outputs(run: &MbmsRun) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let mut secrets = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    for (i, b) in run.bootstraps.iter().enumerate() {
        secrets.insert(format!("Ks {i}"), b.ks.to_vec());
        outputs.insert(format!("RES {i}"), b.res.clone());
    }
    for (i, k) in run.naf_keys.iter().enumerate() {
        secrets.insert(format!("Ks_int_NAF (MUK) {i}"), k.ks_int_naf.to_vec());
        outputs.insert(format!("Ks_ext_NAF {i}"), k.ks_ext_naf.to_vec());
    }
    for m in &run.msks {
        secrets.insert(format!("MSK {:08X}", m.msk_id), m.msk.to_vec());
    }
    for g in &run.mtks {
        outputs.insert(format!("MTK {:08X}/{}", g.msk_id, g.mtk_id), g.mtk.to_vec());
        if let Some(s) = g.salt {
            outputs.insert(format!("salt {:08X}/{}", g.msk_id, g.mtk_id), s.to_vec());
        }
    }
    (secrets, outputs)
}

/// Where any 8-byte window of a secret appears in `haystack`: (secret name, offset in the secret).
pub fn secret_windows_in(secrets: &BTreeMap<String, Vec<u8>>, haystack: &[u8]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (name, secret) in secrets {
        for (offset, window) in secret.windows(8).enumerate() {
            if haystack.windows(8).any(|w| w == window) {
                found.push((name.clone(), offset));
            }
        }
    }
    found
}
