//! What the suite knows and computes: the card session with its per-case APDU log, the facts
//! read from the card at start (applications, services), and the network side that computes every
//! expected answer from the profile: the HE/AuC (Milenage vectors, TS 33.102 §6.3; AUTN* of
//! TS 33.220 §5.3.2), the BSF (Ks, B-TID, key lifetime), the NAF keys (TS 33.220 Annex B) and the
//! BM-SC (MIKEY MSK, MTK and solicited-pull messages of TS 33.246 through `mikey::mbms`).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use gba::{AuthVector, BTid, Milenage, NafId, Sqn, UaSecurityProtocolId};
use mikey::Timestamp;
use mikey::mbms::{self, KeyDomainId};
use sim_reader::{CardProfile, Exchange, RawExchange, Reader, Session};

use uicc_vocab::authenticate::{
    self as framing, INS_AUTHENTICATE_EVEN, INS_AUTHENTICATE_ODD, P1_EVEN, P2_3G_CONTEXT, P2_GBA_CONTEXT,
    P2_MBMS_CONTEXT, TAG_SUCCESS,
};
use uicc_vocab::ef::gbanl;
use uicc_vocab::ef::muk::{TAG_MUK_ID, TAG_MUK_IDI, TAG_MUK_IDR, TAG_MUK_TS};
use uicc_vocab::files::{FID_DIR, isim, usim};
use uicc_vocab::open_values::{P1_ODD_FIRST_BLOCK, TAG_MBMS_DATA};

use super::cases::Case;
use super::report::{CaseResult, Verdict};

/// Why a case stopped before passing.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The card answered wrongly.
    Fail {
        /// What went wrong.
        message: String,
        /// What a correct card answers.
        expected: Option<String>,
        /// What came back.
        got: Option<String>,
    },
    /// The card does not have what the case tests (by its own EF.DIR / EF.UST / EF.IST).
    NotApplicable(String),
    /// The case was not run (a safety rule, or a missing option).
    Skipped(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Fail { message, expected, got } => {
                f.write_str(message)?;
                if let (Some(e), Some(g)) = (expected, got) {
                    write!(f, " (expected {e}, got {g})")?;
                }
                Ok(())
            }
            Stop::NotApplicable(why) | Stop::Skipped(why) => f.write_str(why),
        }
    }
}

/// A step of a case.
pub(crate) type Step<T = ()> = Result<T, Stop>;

/// A failure with only a message.
pub(crate) fn fail<T>(message: impl Into<String>) -> Step<T> {
    Err(Stop::Fail { message: message.into(), expected: None, got: None })
}

/// A failure with what was expected and what came back.
pub(crate) fn mismatch<T>(
    message: impl Into<String>,
    expected: impl Into<String>,
    got: impl Into<String>,
) -> Step<T> {
    Err(Stop::Fail { message: message.into(), expected: Some(expected.into()), got: Some(got.into()) })
}

/// Fail unless `cond`.
pub(crate) fn ensure(cond: bool, message: impl FnOnce() -> String) -> Step {
    if cond { Ok(()) } else { fail(message()) }
}

// ------------------------------------------------------------------------------------------------
// Card facts

/// RID ‖ PIX of the USIM and of the ISIM (TS 101 220 Annex E).
pub(crate) use uicc_vocab::files::{AID_PREFIX_ISIM as ISIM_AID_PREFIX, AID_PREFIX_USIM as USIM_AID_PREFIX};

/// An application of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum App {
    /// USIM (TS 31.102).
    Usim,
    /// ISIM (TS 31.103).
    Isim,
}

impl App {
    /// EF.GBABP (TS 31.102 §4.2.79, TS 31.103 §4.2.9).
    pub(crate) fn gbabp(self) -> u16 {
        match self {
            App::Usim => usim::GBABP,
            App::Isim => isim::GBABP,
        }
    }
    /// EF.GBANL (TS 31.102 §4.2.83, TS 31.103 §4.2.10).
    pub(crate) fn gbanl(self) -> u16 {
        match self {
            App::Usim => usim::GBANL,
            App::Isim => isim::GBANL,
        }
    }
    /// The name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            App::Usim => "USIM",
            App::Isim => "ISIM",
        }
    }
}

/// EF.MSK of the USIM (TS 31.102 §4.2.80).
pub(crate) const EF_MSK: u16 = usim::MSK;
/// EF.MUK of the USIM (TS 31.102 §4.2.81).
pub(crate) const EF_MUK: u16 = usim::MUK;

/// What the card says about itself, read once at the start.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts {
    /// The answer-to-reset.
    pub atr: Vec<u8>,
    /// EF.DIR's application identifiers, in record order.
    pub aids: Vec<Vec<u8>>,
    /// EF.UST.
    pub ust: Vec<u8>,
    /// EF.IST.
    pub ist: Vec<u8>,
    /// Digits of the MNC (EF.AD byte 4).
    pub mnc_len: usize,
    /// EF.IMPI's NAI (the ISIM's IMPI).
    pub isim_impi: Option<String>,
}

impl Facts {
    /// The AID of EF.DIR starting with `prefix`.
    pub(crate) fn aid(&self, prefix: &[u8]) -> Option<&[u8]> {
        self.aids.iter().find(|a| a.starts_with(prefix)).map(Vec::as_slice)
    }

    /// Service n of a service table (TS 31.102 §4.2.8): bit (n-1) mod 8 of byte (n-1) div 8.
    pub(crate) fn service(table: &[u8], n: usize) -> bool {
        table.get((n - 1) / 8).is_some_and(|b| b & (1 << ((n - 1) % 8)) != 0)
    }
}

// ------------------------------------------------------------------------------------------------
// APDUs

/// A short command APDU; `le` `Some(0)` asks for everything available.
pub(crate) fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut c = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        c.push(data.len() as u8);
        c.extend_from_slice(data);
    }
    c.extend(le);
    c
}

/// `DE Ln NAF_Id Li IMPI` (TS 31.102 §7.1.2.4); NAF_Id and IMPI cut to 255 bytes each.
pub(crate) fn naf_derivation_data(naf_id: &[u8], impi: &[u8]) -> Vec<u8> {
    let (naf_id, impi) = (&naf_id[..naf_id.len().min(255)], &impi[..impi.len().min(255)]);
    let mut data = vec![0; framing::naf_derivation_len(naf_id.len(), impi.len())];
    let n = framing::encode_naf_derivation(naf_id, impi, &mut data).unwrap_or(0);
    data.truncate(n);
    data
}

/// A PIN field: ASCII digits padded with `FF` to 8 bytes (TS 102 221 §9.5.1).
pub(crate) fn pin_field(pin: &str) -> [u8; 8] {
    let mut v = [0xFF; 8];
    for (o, b) in v.iter_mut().zip(pin.bytes()) {
        *o = b;
    }
    v
}

/// The value of tag `tag` inside the FCP template `62 L ...` (TS 102 221 §11.1.1.3).
pub(crate) fn fcp_tag(fcp: &[u8], tag: u8) -> Option<Vec<u8>> {
    let (outer, _) = apdu::tlv::Tlv::parse(fcp).ok()?;
    if outer.tag != 0x62 {
        return None;
    }
    apdu::tlv::find(outer.value, u32::from(tag)).ok().flatten().map(<[u8]>::to_vec)
}

/// Upper-case hex.
pub(crate) fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

// ------------------------------------------------------------------------------------------------
// The network side

/// The BM-SC's FQDN: the NAF the MBMS keys are derived for.
pub(crate) const BMSC_FQDN: &str = "bmsc.card-test.keysim.example";
/// Another NAF, for derivations that are not MBMS.
pub(crate) const OTHER_NAF_FQDN: &str = "naf.card-test.keysim.example";
/// The BSF's domain in the B-TID.
pub(crate) const BSF_DOMAIN: &str = "bsf.card-test.keysim.example";
/// Key lifetime the BSF hands out (TS 24.109 §4.2 ASCII UTC).
pub(crate) const LIFETIME: &str = "2035-01-01T00:00:00Z";
/// Seconds between the NTP epoch and the Unix epoch (RFC 5905 §6).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// SQN step between two vectors: the next SEQ with the same IND (TS 33.102 Annex C.3.2, 5 IND bits).
pub(crate) const SQN_STEP: u64 = 1 << 5;

/// NTP-UTC timestamp (RFC 3830 §6.6) of a Unix time.
pub(crate) fn ntp_utc(unix_seconds: u64) -> Timestamp {
    Timestamp::NtpUtc((unix_seconds + NTP_UNIX_OFFSET) << 32)
}

/// Kc = c3(CK, IK) (TS 33.102 §6.8.1.2): CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2 over 64-bit halves.
pub(crate) fn c3(ck: &[u8; 16], ik: &[u8; 16]) -> [u8; 8] {
    std::array::from_fn(|i| ck[i] ^ ck[i + 8] ^ ik[i] ^ ik[i + 8])
}

/// One GBA_U bootstrap as the BSF knows it.
#[derive(Clone)]
pub(crate) struct Bootstrap {
    /// RAND.
    pub rand: [u8; 16],
    /// Ks = CK ‖ IK.
    pub ks: [u8; 32],
    /// CK.
    pub ck: [u8; 16],
    /// IK.
    pub ik: [u8; 16],
    /// B-TID.
    pub btid: String,
}

/// The NAF keys of one derivation, as the BSF computes them.
#[derive(Clone)]
pub(crate) struct NafKeys {
    /// Ks_ext_NAF.
    pub ext: [u8; 32],
    /// Ks_int_NAF (the MUK for the BM-SC).
    pub int: [u8; 32],
}

/// The BM-SC of the MBMS cases: one MUK, one card. A message it cannot build comes out empty
/// (the card refuses it, and the case reports that).
pub(crate) use network::muk_bmsc::MukBmsc as Bmsc;

/// AUTHENTICATE, MBMS context (ODD INS, P1 `80`, P2 `85`): `53 L mode data`.
pub(crate) fn mbms_apdu(mode: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![0; framing::mbms_len(data.len())];
    let n = framing::encode_mbms(mode, data, &mut body).unwrap_or(0);
    body.truncate(n);
    let header = [0x00, INS_AUTHENTICATE_ODD, P1_ODD_FIRST_BLOCK, P2_MBMS_CONTEXT];
    if body.len() <= 255 {
        apdu(header[0], header[1], header[2], header[3], &body, Some(0))
    } else {
        let mut c = header.to_vec();
        c.extend([0x00, (body.len() >> 8) as u8, body.len() as u8]);
        c.extend_from_slice(&body);
        c.extend([0x00, 0x00]);
        c
    }
}

/// The data after `DB` in an MBMS answer `53 L DB [data]`.
pub(crate) fn mbms_answer(what: &str, data: &[u8]) -> Step<Vec<u8>> {
    let Ok((object, rest)) = apdu::tlv::Tlv::parse(data) else {
        return mismatch(format!("{what}: the answer is no BER-TLV object"), "53 L DB ...", hx(data));
    };
    if object.tag != u32::from(TAG_MBMS_DATA) || !rest.is_empty() {
        return mismatch(format!("{what}: the answer is not one 53 object"), "53 L DB ...", hx(data));
    }
    match object.value.split_first() {
        Some((&TAG_SUCCESS, d)) => Ok(d.to_vec()),
        _ => mismatch(format!("{what}: the 53 object does not start with DB"), "53 L DB ...", hx(data)),
    }
}

/// One EF.MSK record (TS 31.102 §4.2.80): Key Domain ID and (MSK ID, Time Stamp Counter) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MskRecord {
    pub key_domain_id: [u8; 3],
    pub pairs: Vec<(u32, u32)>,
}

/// Decodes an EF.MSK record; `None` for an unused one.
pub(crate) fn decode_msk_record(r: &[u8]) -> Step<Option<MskRecord>> {
    if r.iter().all(|&b| b == 0xFF) || r.get(3) == Some(&0) || r.get(3) == Some(&0xFF) {
        return Ok(None);
    }
    let n = usize::from(r[3]);
    let mut pairs = Vec::new();
    for i in 0..n {
        let Some(p) = r.get(4 + 8 * i..12 + 8 * i) else {
            return fail(format!("EF.MSK record shorter than its {n} pairs: {}", hx(r)));
        };
        pairs.push((
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ));
    }
    Ok(Some(MskRecord { key_domain_id: [r[0], r[1], r[2]], pairs }))
}

/// One EF.MUK record (TS 31.102 §4.2.81): IDr, IDi, Time Stamp Counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MukRecord {
    pub idr: Vec<u8>,
    pub idi: Vec<u8>,
    pub ts: Vec<u8>,
}

/// Decodes an EF.MUK record; `None` for an unused one.
pub(crate) fn decode_muk_record(r: &[u8]) -> Step<Option<MukRecord>> {
    if r.first().is_none_or(|&b| b == 0xFF || b == 0x00) {
        return Ok(None);
    }
    let bad = || {
        mismatch("EF.MUK record is not A0 {80 IDr, 82 IDi} 81 TS", "A0 L 80 L IDr 82 L IDi 81 L TS", hx(r))
    };
    let Ok((id, rest)) = apdu::tlv::Tlv::parse(r) else { return bad() };
    let Ok((ts, _)) = apdu::tlv::Tlv::parse(rest) else { return bad() };
    if id.tag != u32::from(TAG_MUK_ID) || ts.tag != u32::from(TAG_MUK_TS) {
        return bad();
    }
    let (Ok(Some(idr)), Ok(Some(idi))) =
        (apdu::tlv::find(id.value, TAG_MUK_IDR.into()), apdu::tlv::find(id.value, TAG_MUK_IDI.into()))
    else {
        return bad();
    };
    Ok(Some(MukRecord { idr: idr.to_vec(), idi: idi.to_vec(), ts: ts.value.to_vec() }))
}

/// EF.GBABP as its three LV fields (TS 31.102 §4.2.79): RAND, B-TID, key lifetime.
pub(crate) fn decode_gbabp(bytes: &[u8]) -> Step<[Vec<u8>; 3]> {
    let mut at = 0;
    let mut out: [Vec<u8>; 3] = Default::default();
    for field in &mut out {
        let Some(&len) = bytes.get(at) else {
            return fail(format!("EF.GBABP ends before a length: {}", hx(bytes)));
        };
        let Some(v) = bytes.get(at + 1..at + 1 + usize::from(len)) else {
            return fail(format!("EF.GBABP ends inside a field: {}", hx(bytes)));
        };
        *field = v.to_vec();
        at += 1 + usize::from(len);
    }
    Ok(out)
}

/// An EF.GBANL record (TS 31.102 §4.2.83): `80 L NAF_Id 81 L B-TID`; `None` when unused.
pub(crate) fn decode_gbanl_record(r: &[u8]) -> Step<Option<(Vec<u8>, Vec<u8>)>> {
    if r.first().is_none_or(|&b| b == 0xFF) {
        return Ok(None);
    }
    let bad = || mismatch("EF.GBANL record is not 80 NAF_Id 81 B-TID", "80 L NAF_Id 81 L B-TID", hx(r));
    let Ok((naf, rest)) = apdu::tlv::Tlv::parse(r) else { return bad() };
    let Ok((btid, _)) = apdu::tlv::Tlv::parse(rest) else { return bad() };
    if naf.tag != u32::from(gbanl::TAG_NAF_ID) || btid.tag != u32::from(gbanl::TAG_B_TID) {
        return bad();
    }
    Ok(Some((naf.value.to_vec(), btid.value.to_vec())))
}

// ------------------------------------------------------------------------------------------------
// The context of a run

/// The card session and the network's state across cases.
pub(crate) struct Ctx {
    session: Session<Box<dyn Reader>>,
    /// The profile: the network's view of the subscriber.
    pub profile: CardProfile,
    /// ADM1, when given.
    pub adm: Option<[u8; 8]>,
    /// What the card says about itself.
    pub facts: Facts,
    /// The reader's name.
    pub reader_name: String,
    /// The highest SQN the network has used or learnt (SQN_MS after a resynchronisation).
    sqn: u64,
    /// The profile's PIN1 was refused once: never present it again.
    pin_refused: bool,
    /// This case's raw exchanges.
    log: Vec<RawExchange>,
    /// Every response data byte string of the run, for the secrets check.
    responses: Vec<Vec<u8>>,
    /// Material generator state.
    seed: u64,
}

impl Ctx {
    /// A context over `session`: powers the card on and reads its facts.
    pub(crate) fn new(
        session: Session<Box<dyn Reader>>,
        profile: CardProfile,
        adm: Option<[u8; 8]>,
    ) -> Result<Self> {
        let reader_name = session.reader().name().to_owned();
        let sqn = Sqn::from_bytes(profile.sqn()).value();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
        let mut ctx = Ctx {
            session,
            profile,
            adm,
            facts: Facts::default(),
            reader_name,
            sqn,
            pin_refused: false,
            log: Vec::new(),
            responses: Vec::new(),
            seed: nanos | 1,
        };
        ctx.facts.atr = ctx.session.reader_mut().power_on()?;
        if let Err(stop) = ctx.probe() {
            bail!("reading the card's applications and services: {stop}");
        }
        ctx.log.clear();
        Ok(ctx)
    }

    /// EF.DIR, EF.UST, EF.AD, and with an ISIM EF.IST and EF.IMPI.
    fn probe(&mut self) -> Step {
        self.expect("SELECT MF", &apdu(0x00, 0xA4, 0x00, 0x0C, &[0x3F, 0x00], None), 0x9000)?;
        for record in self.read_records(FID_DIR, "EF.DIR")? {
            if let Ok((app, _)) = apdu::tlv::Tlv::parse(&record)
                && app.tag == 0x61
                && let Ok(Some(aid)) = apdu::tlv::find(app.value, 0x4F)
            {
                self.facts.aids.push(aid.to_vec());
            }
        }
        if self.facts.aid(&USIM_AID_PREFIX).is_none() {
            return fail("EF.DIR lists no USIM");
        }
        self.open(App::Usim)?;
        self.facts.ust = self.read_binary(usim::UST, "EF.UST")?;
        let ad = self.read_binary(usim::AD, "EF.AD")?;
        self.facts.mnc_len = match ad.get(3) {
            Some(&n @ 2..=3) => usize::from(n),
            _ => 2,
        };
        if self.facts.aid(&ISIM_AID_PREFIX).is_some() {
            self.open(App::Isim)?;
            self.facts.ist = self.read_binary(isim::IST, "EF.IST")?;
            let impi = self.read_binary(isim::IMPI, "EF.IMPI")?;
            if let Ok((nai, _)) = apdu::tlv::Tlv::parse(&impi)
                && nai.tag == 0x80
            {
                self.facts.isim_impi = Some(String::from_utf8_lossy(nai.value).into_owned());
            }
        }
        Ok(())
    }

    /// Run one case on a freshly reset card.
    pub(crate) fn run_case(&mut self, case: &Case, destructive: bool) -> CaseResult {
        self.log.clear();
        let start = Instant::now();
        let outcome = if case.destructive && !destructive {
            Err(Stop::Skipped("cannot be undone on the card: run with --destructive".into()))
        } else {
            match self.session.reader_mut().reset() {
                Ok(_) => (case.run)(self),
                Err(e) => fail(format!("resetting the card: {e}")),
            }
        };
        let (verdict, message, expected, got) = match outcome {
            Ok(()) => (Verdict::Pass, None, None, None),
            Err(Stop::Fail { message, expected, got }) => (Verdict::Fail, Some(message), expected, got),
            Err(Stop::NotApplicable(why)) => (Verdict::NotApplicable, Some(why), None, None),
            Err(Stop::Skipped(why)) => (Verdict::Skipped, Some(why), None, None),
        };
        CaseResult {
            id: case.id,
            clause: case.clause,
            title: case.title,
            verdict,
            message,
            expected,
            got,
            apdus: std::mem::take(&mut self.log),
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// Reset the card in the middle of a case (selection and PIN state cleared).
    pub(crate) fn session_reset(&mut self) -> Step {
        match self.session.reader_mut().reset() {
            Ok(_) => Ok(()),
            Err(e) => fail(format!("resetting the card: {e}")),
        }
    }

    /// The session (to power the card off at the end).
    pub(crate) fn session_mut(&mut self) -> &mut Session<Box<dyn Reader>> {
        &mut self.session
    }

    /// The protocol the reader speaks with the card.
    pub(crate) fn protocol(&self) -> sim_reader::Protocol {
        self.session.reader().protocol()
    }

    /// Every response data seen in this run.
    pub(crate) fn responses(&self) -> &[Vec<u8>] {
        &self.responses
    }

    /// Fresh pseudo-random bytes for RANDs and keys (xorshift over the start time: unique per run,
    /// not secret).
    pub(crate) fn material<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            (self.seed >> 24) as u8
        })
    }

    // --------------------------------------------------------------------------------------------
    // Exchanges

    /// Send a command through the T=0 loop (`61 xx` / `6C xx` handled); log every raw exchange.
    pub(crate) fn send(&mut self, command: &[u8]) -> Step<Exchange> {
        match self.session.transmit_apdu(command) {
            Ok(ex) => {
                self.log.extend(ex.raw.iter().cloned());
                if !ex.data.is_empty() {
                    self.responses.push(ex.data.clone());
                }
                Ok(ex)
            }
            Err(e) => fail(format!("{} could not be exchanged: {e}", hx(command))),
        }
    }

    /// Send exactly `command`, without any transport handling; return data ‖ SW.
    pub(crate) fn raw(&mut self, command: &[u8]) -> Step<Vec<u8>> {
        match self.session.reader_mut().transmit(command) {
            Ok(r) if r.len() >= 2 => {
                self.log.push(RawExchange { command: command.to_vec(), response: r.clone() });
                if r.len() > 2 {
                    self.responses.push(r[..r.len() - 2].to_vec());
                }
                Ok(r)
            }
            Ok(r) => fail(format!("{}: a response without status word: {}", hx(command), hx(&r))),
            Err(e) => fail(format!("{} could not be exchanged: {e}", hx(command))),
        }
    }

    /// Send; the final status word must be `sw`.
    pub(crate) fn expect(&mut self, what: &str, command: &[u8], sw: u16) -> Step<Exchange> {
        let ex = self.send(command)?;
        if ex.sw() != sw {
            return mismatch(
                format!("{what}: wrong status word"),
                format!("SW {sw:04X}"),
                format!(
                    "SW {:04X}{}",
                    ex.sw(),
                    if ex.data.is_empty() { String::new() } else { format!(", data {}", hx(&ex.data)) }
                ),
            );
        }
        Ok(ex)
    }

    /// Send; the status word must be one of `sws`.
    pub(crate) fn expect_any(&mut self, what: &str, command: &[u8], sws: &[u16]) -> Step<Exchange> {
        let ex = self.send(command)?;
        if !sws.contains(&ex.sw()) {
            let want: Vec<_> = sws.iter().map(|s| format!("{s:04X}")).collect();
            return mismatch(
                format!("{what}: wrong status word"),
                format!("SW {}", want.join(" or ")),
                format!("SW {:04X}", ex.sw()),
            );
        }
        Ok(ex)
    }

    // --------------------------------------------------------------------------------------------
    // Files and PIN

    /// SELECT by FID under the current DF, no data.
    pub(crate) fn select(&mut self, fid: u16, what: &str) -> Step {
        self.expect(
            &format!("SELECT {what}"),
            &apdu(0x00, 0xA4, 0x00, 0x0C, &fid.to_be_bytes(), None),
            0x9000,
        )?;
        Ok(())
    }

    /// SELECT by FID with the FCP returned.
    pub(crate) fn select_fcp(&mut self, fid: u16, what: &str) -> Step<Vec<u8>> {
        Ok(self
            .expect(
                &format!("SELECT {what} (FCP)"),
                &apdu(0x00, 0xA4, 0x00, 0x04, &fid.to_be_bytes(), Some(0)),
                0x9000,
            )?
            .data)
    }

    /// SELECT an EF and read it whole.
    pub(crate) fn read_binary(&mut self, fid: u16, what: &str) -> Step<Vec<u8>> {
        self.select(fid, what)?;
        Ok(self
            .expect(&format!("READ BINARY {what}"), &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(0)), 0x9000)?
            .data)
    }

    /// Every record of a linear fixed EF under the current DF (shape from its FCP).
    pub(crate) fn read_records(&mut self, fid: u16, what: &str) -> Step<Vec<Vec<u8>>> {
        let fcp = self.select_fcp(fid, what)?;
        let Some(d) = fcp_tag(&fcp, 0x82) else {
            return fail(format!("{what}: no file descriptor (82) in the FCP {}", hx(&fcp)));
        };
        let (len, n) = match d.as_slice() {
            [fdb, _, _, len, n] if fdb & 0x07 == 0x02 => (*len, *n),
            [fdb, _, _, len, n] if fdb & 0x07 == 0x02 || fdb & 0x07 == 0x06 => (*len, *n),
            _ => return mismatch(format!("{what}: not a linear fixed EF"), "82 05 x2 21 00 RL NR", hx(&d)),
        };
        (1..=n)
            .map(|r| {
                Ok(self
                    .expect(
                        &format!("READ RECORD {what} {r}"),
                        &apdu(0x00, 0xB2, r, 0x04, &[], Some(len)),
                        0x9000,
                    )?
                    .data)
            })
            .collect()
    }

    /// SELECT an application by its EF.DIR AID (`NotApplicable` without it).
    pub(crate) fn select_app(&mut self, app: App) -> Step {
        let prefix = if app == App::Usim { USIM_AID_PREFIX } else { ISIM_AID_PREFIX };
        let Some(aid) = self.facts.aid(&prefix).map(<[u8]>::to_vec) else {
            return Err(Stop::NotApplicable(format!("EF.DIR lists no {}", app.name())));
        };
        self.expect(
            &format!("SELECT ADF.{}", app.name()),
            &apdu(0x00, 0xA4, 0x04, 0x0C, &aid, None),
            0x9000,
        )?;
        Ok(())
    }

    /// PIN1 verified, safely: presented only while two or more tries are left, and never again
    /// once refused.
    pub(crate) fn verify_pin(&mut self) -> Step {
        if self.pin_refused {
            return Err(Stop::Skipped("the profile's PIN1 was refused earlier: not presented again".into()));
        }
        let state = self.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?;
        match state.sw() {
            0x9000 => return Ok(()),
            sw if sw & 0xFFF0 == 0x63C0 && sw & 0x0F >= 2 => {}
            sw => {
                return Err(Stop::Skipped(format!(
                    "PIN1 state {sw:04X}: fewer than two tries left, not presenting it"
                )));
            }
        }
        let pin = pin_field(self.profile.pin1());
        let ex = self.send(&apdu(0x00, 0x20, 0x00, 0x01, &pin, None))?;
        if ex.sw() != 0x9000 {
            self.pin_refused = true;
            return mismatch("VERIFY PIN1 with the profile's PIN1", "SW 9000", format!("SW {:04X}", ex.sw()));
        }
        Ok(())
    }

    /// The application selected and PIN1 verified.
    pub(crate) fn open(&mut self, app: App) -> Step {
        self.select_app(app)?;
        self.verify_pin()
    }

    /// `NotApplicable` unless the application offers GBA (USIM n°68, ISIM n°2).
    pub(crate) fn require_gba(&self, app: App) -> Step {
        let has = match app {
            App::Usim => Facts::service(&self.facts.ust, 68),
            App::Isim => self.facts.aid(&ISIM_AID_PREFIX).is_some() && Facts::service(&self.facts.ist, 2),
        };
        if has { Ok(()) } else { Err(Stop::NotApplicable(format!("{} has no GBA service", app.name()))) }
    }

    /// `NotApplicable` unless the USIM offers GBA and MBMS security (n°68, n°69).
    pub(crate) fn require_mbms(&self) -> Step {
        self.require_gba(App::Usim)?;
        if Facts::service(&self.facts.ust, 69) {
            Ok(())
        } else {
            Err(Stop::NotApplicable("EF.UST: no MBMS security (n°69)".into()))
        }
    }

    /// `NotApplicable` without an ISIM.
    pub(crate) fn require_isim(&self) -> Step {
        if self.facts.aid(&ISIM_AID_PREFIX).is_some() {
            Ok(())
        } else {
            Err(Stop::NotApplicable("EF.DIR lists no ISIM".into()))
        }
    }

    // --------------------------------------------------------------------------------------------
    // AKA and GBA

    /// The HE's Milenage.
    pub(crate) fn milenage(&self) -> Milenage {
        Milenage::new(self.profile.k(), self.profile.opc())
    }

    /// A vector for `sqn` and a fresh RAND.
    pub(crate) fn vector(&mut self, sqn: u64) -> AuthVector {
        let rand: [u8; 16] = self.material();
        let sqn = Sqn::new(sqn & 0xFFFF_FFFF_FFFF).unwrap_or_default();
        AuthVector::generate(&self.milenage(), &rand, sqn, self.profile.amf())
    }

    /// The next SQN the network uses.
    pub(crate) fn next_sqn(&self) -> u64 {
        self.sqn + SQN_STEP
    }

    /// The command of the 3G context (`10 RAND 10 AUTN`) or of GBA bootstrapping (`DD ...`).
    pub(crate) fn aka_apdu(cla: u8, rand: &[u8; 16], autn: &[u8; 16], bootstrap: bool) -> Vec<u8> {
        let (p2, data) = if bootstrap {
            (P2_GBA_CONTEXT, framing::encode_gba_bootstrap(rand, autn).to_vec())
        } else {
            (P2_3G_CONTEXT, framing::encode_rand_autn(rand, autn).to_vec())
        };
        apdu(cla, INS_AUTHENTICATE_EVEN, P1_EVEN, p2, &data, Some(0))
    }

    /// Learn SQN_MS from a `DC 0E AUTS` answer (MAC-S checked with f1*, TS 33.102 §6.3.5).
    pub(crate) fn resync(&mut self, rand: &[u8; 16], answer: &[u8]) -> Step<u64> {
        let auts = match answer {
            [0xDC, 0x0E, auts @ ..] if auts.len() == 14 => auts,
            _ => return mismatch("a synchronisation failure answer", "DC 0E AUTS", hx(answer)),
        };
        let Some(sqn_ms) = gba::Auts::parse(auts).ok().and_then(|a| a.verify(&self.milenage(), rand)) else {
            return fail(format!("AUTS {}: MAC-S does not verify (f1* with AMF 0000)", hx(auts)));
        };
        self.sqn = self.sqn.max(sqn_ms.value());
        Ok(sqn_ms.value())
    }

    /// Run AKA (3G context, or GBA bootstrapping) on channel `cla` with a fresh vector; one
    /// resynchronisation when the card answers `DC AUTS`. Returns the vector and the `DB ...` answer.
    pub(crate) fn aka(&mut self, cla: u8, bootstrap: bool) -> Step<(AuthVector, Vec<u8>)> {
        for attempt in 0..2 {
            let sqn = self.next_sqn();
            let av = self.vector(sqn);
            let autn = if bootstrap { av.gba_u_autn().to_bytes() } else { av.autn.to_bytes() };
            let what = if bootstrap { "GBA bootstrap" } else { "AUTHENTICATE 3G" };
            let ex = self.expect(what, &Self::aka_apdu(cla, &av.rand, &autn, bootstrap), 0x9000)?;
            match ex.data.first() {
                Some(0xDB) => {
                    self.sqn = sqn;
                    return Ok((av, ex.data));
                }
                Some(0xDC) if attempt == 0 => {
                    self.resync(&av.rand, &ex.data)?;
                }
                _ => return mismatch(format!("{what}: answer"), "DB ... (or DC 0E AUTS once)", hx(&ex.data)),
            }
        }
        fail("still out of synchronisation after one resynchronisation")
    }

    /// GBA_U bootstrap on the current application: the answer must be `DB L RES` with RES = XRES.
    pub(crate) fn bootstrap(&mut self) -> Step<Bootstrap> {
        let (av, answer) = self.aka(0x00, true)?;
        let mut expected = vec![0xDB, av.xres.len() as u8];
        expected.extend_from_slice(&av.xres);
        if answer != expected {
            return mismatch(
                "GBA bootstrap: the answer is DB L RES only, RES = XRES",
                hx(&expected),
                hx(&answer),
            );
        }
        let ks = *av.ks().expose();
        let btid = BTid::new(&av.rand, BSF_DOMAIN).map(|b| b.as_str().to_owned()).unwrap_or_default();
        Ok(Bootstrap { rand: av.rand, ks, ck: *av.ck.expose(), ik: *av.ik.expose(), btid })
    }

    /// UPDATE BINARY of B-TID and key lifetime at offset 1 + 16 of EF.GBABP (TS 33.220 Annex G.1).
    pub(crate) fn write_btid(&mut self, app: App, btid: &str, lifetime: &str) -> Step {
        self.select(app.gbabp(), "EF.GBABP")?;
        let mut data = vec![btid.len() as u8];
        data.extend_from_slice(btid.as_bytes());
        data.push(lifetime.len() as u8);
        data.extend_from_slice(lifetime.as_bytes());
        self.expect(
            "UPDATE BINARY EF.GBABP (B-TID, lifetime)",
            &apdu(0x00, 0xD6, 0x00, 17, &data, None),
            0x9000,
        )?;
        Ok(())
    }

    /// The IMPI the BSF uses for `app`: the ISIM's EF.IMPI, else the profile's.
    pub(crate) fn impi(&self, app: App) -> String {
        match (app, &self.facts.isim_impi) {
            (App::Isim, Some(impi)) => impi.clone(),
            _ => self.profile.impi().to_owned(),
        }
    }

    /// The NAF keys the BSF computes for `boot` and `naf_id`.
    pub(crate) fn naf_keys(&self, boot: &Bootstrap, app: App, naf_id: &[u8]) -> Step<NafKeys> {
        let parsed = NafId::from_bytes(naf_id).map_err(|e| Stop::Fail {
            message: format!("NAF_Id: {e:?}"),
            expected: None,
            got: None,
        })?;
        let impi = self.impi(app);
        let (ext, int) =
            gba::kdf::derive_gba_u_naf_keys(&gba::Ks::new(boot.ks), &boot.rand, impi.as_bytes(), &parsed)
                .map_err(|e| Stop::Fail { message: format!("KDF: {e:?}"), expected: None, got: None })?;
        Ok(NafKeys { ext: *ext.expose(), int: *int.expose() })
    }

    /// NAF Derivation Mode: the answer must be exactly `DB 20 Ks_ext_NAF`.
    pub(crate) fn derive(&mut self, app: App, boot: &Bootstrap, naf_id: &[u8]) -> Step<NafKeys> {
        let keys = self.naf_keys(boot, app, naf_id)?;
        let impi = self.impi(app);
        let data = naf_derivation_data(naf_id, impi.as_bytes());
        let ex = self.expect(
            "NAF derivation",
            &apdu(0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT, &data, Some(0)),
            0x9000,
        )?;
        let mut expected = vec![0xDB, 0x20];
        expected.extend_from_slice(&keys.ext);
        if ex.data != expected {
            return mismatch(
                "NAF derivation: DB 20 Ks_ext_NAF and nothing else",
                hx(&expected),
                hx(&ex.data),
            );
        }
        Ok(keys)
    }

    /// The NAF_Id of the BM-SC (TS 33.220 Annex H: Ua protocol id `01 00 00 00 01`, MBMS).
    pub(crate) fn bmsc_naf_id() -> Vec<u8> {
        NafId::new(BMSC_FQDN, UaSecurityProtocolId::MBMS).map(|n| n.as_bytes().to_vec()).unwrap_or_default()
    }

    /// Key Domain ID = MCC ‖ MNC in the PLMN coding of TS 24.008 §10.5.1.13.
    pub(crate) fn key_domain_id(&self) -> KeyDomainId {
        let d: Vec<u8> = self.profile.imsi().bytes().take(6).map(|c| c.wrapping_sub(b'0') & 0x0F).collect();
        let digit = |i: usize| d.get(i).copied().unwrap_or(0x0F);
        let mnc3 = if self.facts.mnc_len == 3 { digit(5) } else { 0x0F };
        KeyDomainId([(digit(1) << 4) | digit(0), (mnc3 << 4) | digit(2), (digit(4) << 4) | digit(3)])
    }

    /// USIM open, bootstrapped, B-TID and lifetime written, the BM-SC's NAF keys derived: the
    /// BM-SC of the resulting MUK.
    pub(crate) fn mbms_setup(&mut self, lifetime: &str) -> Step<(Bootstrap, Bmsc)> {
        self.require_mbms()?;
        self.open(App::Usim)?;
        let boot = self.bootstrap()?;
        self.write_btid(App::Usim, &boot.btid, lifetime)?;
        let keys = self.derive(App::Usim, &boot, &Self::bmsc_naf_id())?;
        let bmsc = Bmsc {
            muk: keys.int,
            idi: BMSC_FQDN.as_bytes().to_vec(),
            idr: boot.btid.as_bytes().to_vec(),
            key_domain_id: self.key_domain_id(),
        };
        Ok((boot, bmsc))
    }

    /// EF.MSK and EF.MUK records in use.
    pub(crate) fn mbms_files(&mut self) -> Step<(Vec<MskRecord>, Vec<MukRecord>)> {
        let mut msk = Vec::new();
        for r in self.read_records(EF_MSK, "EF.MSK")? {
            msk.extend(decode_msk_record(&r)?);
        }
        let mut muk = Vec::new();
        for r in self.read_records(EF_MUK, "EF.MUK")? {
            muk.extend(decode_muk_record(&r)?);
        }
        Ok((msk, muk))
    }

    /// MSK Deletion of `key_group`: `DB` alone, or `6A 88` when there was nothing (`must` false).
    pub(crate) fn delete_msks(&mut self, key_group: u16, must: bool) -> Step {
        let mut data = self.key_domain_id().0.to_vec();
        data.extend_from_slice(&key_group.to_be_bytes());
        let sws: &[u16] = if must { &[0x9000] } else { &[0x9000, 0x6A88] };
        let ex = self.expect_any("MSK Deletion", &mbms_apdu(0x03, &data), sws)?;
        if ex.sw() == 0x9000 {
            let rest = mbms_answer("MSK Deletion", &ex.data)?;
            ensure(rest.is_empty(), || format!("MSK Deletion: expected DB alone, got DB {}", hx(&rest)))?;
        }
        Ok(())
    }

    /// MUK Deletion of the BM-SC's MUK (`6A 88` allowed when `must` is false).
    pub(crate) fn delete_muk(&mut self, bmsc: &Bmsc, must: bool) -> Step {
        let sws: &[u16] = if must { &[0x9000] } else { &[0x9000, 0x6A88] };
        let ex =
            self.expect_any("MUK Deletion", &mbms_apdu(0x04, &bmsc.muk_id_tlv().unwrap_or_default()), sws)?;
        if ex.sw() == 0x9000 {
            let rest = mbms_answer("MUK Deletion", &ex.data)?;
            ensure(rest.is_empty(), || format!("MUK Deletion: expected DB alone, got DB {}", hx(&rest)))?;
        }
        Ok(())
    }

    /// MSK Update of a new MSK; with V the verification message must verify with the MUK, else
    /// the answer is `DB` alone. Returns the MSK.
    pub(crate) fn deliver_msk(&mut self, bmsc: &Bmsc, msk_id: u32, ts: Timestamp, v: bool) -> Step<[u8; 16]> {
        let msk: [u8; 16] = self.material();
        let rand: [u8; 16] = self.material();
        let message = bmsc.msk_message(&rand, msk_id, &msk, ts, v).unwrap_or_default();
        let what = format!("MSK Update {msk_id:08X}");
        let ex = self.expect(&what, &mbms_apdu(0x01, &message), 0x9000)?;
        let answer = mbms_answer(&what, &ex.data)?;
        if v {
            let parsed = mbms::parse_msk_message(&message).map_err(|e| Stop::Fail {
                message: format!("own MSK message: {e:?}"),
                expected: None,
                got: None,
            })?;
            if let Err(e) = mbms::verify_verification_message(&mbms::Muk::new(bmsc.muk), &parsed, &answer) {
                return mismatch(
                    format!("{what}: the verification message does not verify with the MUK ({e:?})"),
                    "a MIKEY verification message (RFC 3830 §3.1)",
                    hx(&answer),
                );
            }
        } else if !answer.is_empty() {
            return mismatch(format!("{what}: V bit clear"), "53 01 DB", hx(&ex.data));
        }
        Ok(msk)
    }

    /// MTK Generation: the answer must be the MTK (and salt) the BM-SC put in.
    pub(crate) fn generate_mtk(
        &mut self,
        bmsc: &Bmsc,
        msk_id: u32,
        msk: &[u8; 16],
        mtk_id: u32,
        counter: u32,
    ) -> Step {
        let mtk: [u8; 16] = self.material();
        let salt: [u8; 14] = self.material();
        let message = bmsc.mtk_message(msk_id, msk, mtk_id, counter, &mtk, Some(&salt)).unwrap_or_default();
        let what = format!("MTK Generation {msk_id:08X}/{mtk_id}");
        let ex = self.expect(&what, &mbms_apdu(0x02, &message), 0x9000)?;
        let answer = mbms_answer(&what, &ex.data)?;
        let mut expected = mtk.to_vec();
        expected.extend_from_slice(&salt);
        if answer != expected {
            return mismatch(format!("{what}: MTK ‖ salt"), hx(&expected), hx(&answer));
        }
        Ok(())
    }

    /// An MTK message for `msk_id`, with the SW the card must answer.
    pub(crate) fn mtk_refused(
        &mut self,
        bmsc: &Bmsc,
        msk_id: u32,
        msk: &[u8; 16],
        mtk_id: u32,
        sw: u16,
        what: &str,
    ) -> Step {
        let mtk: [u8; 16] = self.material();
        let message = bmsc.mtk_message(msk_id, msk, mtk_id, mtk_id, &mtk, None).unwrap_or_default();
        self.expect(what, &mbms_apdu(0x02, &message), sw)?;
        Ok(())
    }
}
