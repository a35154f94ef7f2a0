//! The tearing campaign (`keysim tearing`). Every key-management flow of the card (TS 102 221
//! §14.1.2 update atomicity; TS 31.102 §7.1 AUTHENTICATE; TS 33.246 §6.3 MBMS keys) and of the ME
//! key store (TS 33.246 §6.1) runs with a power cut injected at every write: each NVM write of the
//! card (index k = 0, 1, 2, … until the flow completes without a cut, each with every kind of torn
//! write, and again at each write of the recovery at the next power-on), and each step of an ME
//! key store save (before the temporary file, half-written, before its fsync, before the rename,
//! after the rename before the directory's fsync, that last one also with the rename lost). After
//! the restart (the NVM image powered on again, the store file opened again) the invariants are
//! checked:
//!
//! * every stored item is the old or the new value, never a mix (the whole card image outside the
//!   journal is the one before or the one after the flow; the reopened store encodes to the file
//!   before or after);
//! * no counter rolls back and no replay is accepted: the last MIKEY message accepted before the
//!   flow is still refused, and the interrupted message is refused exactly when its state landed
//!   (SQN, MSK timestamp counter, MTK ID);
//! * the PIN try counter is never refunded: after a cut it is at most its value before the
//!   command, unless the presented PIN was right and the counter was reset;
//! * the card and the store keep working.
//!
//! [`Defect`] plants a deliberately broken write ordering (the journal's commit mark lost; the
//! store rewritten in place), under which the same checks must report violations: that is what
//! shows the checks can fail.

use std::cell::Cell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use me::key_store::{self, KeyStore, StoredMrk, WriteStep};
use me::{MbmsKeyManagement, MeBased};
use mikey::Timestamp;
use mikey::mbms::{self, KeyDomainId};
use network::muk_bmsc::MukBmsc;
use serde::Serialize;
use uicc_applet::layout::{JOURNAL_BODY, JOURNAL_MARK, PIN1_TRIES, PIN1_VALUE, PUK1_TRIES};
use uicc_applet::testing::{PowerCutNvm, Tear};
use uicc_applet::{
    NVM_SIZE, Nvm, NvmError, PIN1_MAX_TRIES, PUK1_MAX_TRIES, Personalization, RESPONSE_MAX, RamNvm, Uicc,
};
use uicc_vocab::authenticate::{
    self as framing, INS_AUTHENTICATE_EVEN, INS_AUTHENTICATE_ODD, P1_EVEN, P2_GBA_CONTEXT, P2_MBMS_CONTEXT,
    TAG_SUCCESS, TAG_SYNC_FAILURE,
};
use uicc_vocab::ef::muk::{encode_muk_id, muk_id_len};
use uicc_vocab::ef::{RAND_LEN, gbabp};
use uicc_vocab::open_values::{
    MODE_MSK_DELETION, MODE_MSK_UPDATE, MODE_MTK_GENERATION, MODE_MUK_DELETION, P1_ODD_FIRST_BLOCK,
};

use crate::{Result, bail};

/// Violations listed per flow (the count is always complete).
const DETAILS_MAX: usize = 12;

// ---------------------------------------------------------------------------------------------
// Report

/// One flow's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    /// The flow's name (`--flow`).
    pub name: &'static str,
    /// Card NVM or ME key store.
    pub side: &'static str,
    /// Writes (card: NVM writes; ME: save steps) of the flow when nothing is cut.
    pub writes: usize,
    /// Cuts injected: every write × every torn-write kind, plus the cuts of the recoveries.
    pub cut_points: usize,
    /// Invariants broken.
    pub violations: usize,
    /// The first violations, described.
    pub details: Vec<String>,
}

impl FlowReport {
    fn new(name: &'static str, side: &'static str) -> Self {
        FlowReport { name, side, writes: 0, cut_points: 0, violations: 0, details: Vec::new() }
    }

    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.details.len() < DETAILS_MAX {
            self.details.push(what);
        }
    }
}

/// The whole campaign.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// Each flow.
    pub flows: Vec<FlowReport>,
    /// Sum of the flows' cut points.
    pub cut_points_total: usize,
    /// Sum of the flows' violations.
    pub violations_total: usize,
    /// No violation.
    pub ok: bool,
}

/// A deliberately broken write ordering, to show the checks catch one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The card's journal commit mark never reaches the NVM: entries are copied home with no
    /// committed redo record behind them.
    JournalMarkLost,
    /// The ME key store is rewritten in place: a cut leaves the file cut short.
    StoreInPlace,
}

/// Names of every flow, in the order they run.
pub fn flow_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = card_flows().iter().map(|f| f.name).collect();
    names.extend(me_flows().iter().map(|f| f.name));
    names
}

/// Runs the campaign: every flow, or the one named `only`.
pub fn run_campaign(only: Option<&str>, defect: Option<Defect>) -> Result<CampaignReport> {
    if let Some(name) = only
        && !flow_names().contains(&name)
    {
        bail!("no flow '{name}'; the flows are: {}", flow_names().join(", "));
    }
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let mut flows = Vec::new();
    for flow in card_flows().iter().filter(|f| wanted(f.name)) {
        flows.push(run_card_flow(flow, defect == Some(Defect::JournalMarkLost)));
    }
    for flow in me_flows().iter().filter(|f| wanted(f.name)) {
        flows.push(run_me_flow(flow, defect == Some(Defect::StoreInPlace))?);
    }
    let cut_points_total = flows.iter().map(|f| f.cut_points).sum();
    let violations_total = flows.iter().map(|f| f.violations).sum();
    Ok(CampaignReport { flows, cut_points_total, violations_total, ok: violations_total == 0 })
}

// ---------------------------------------------------------------------------------------------
// Shared fixtures: the subscriber of TS 35.208 test set 1 and a BM-SC (spec digest §8)

/// The card: the subscriber of TS 35.208 test set 1 (SQN one step below that test set's SQN, so
/// its AUTN is fresh; PIN1 "1234").
const PERSONALIZATION: Personalization<'static> = uicc_applet::testing::TS_35_208_SUBSCRIBER;
/// Another card's ICCID (for the ME's card change).
const OTHER_ICCID: &str = "8988211000000430028";

const SELECT_USIM: &str = "00A4040C07A0000000871002";
const SELECT_ISIM: &str = "00A4040C07A0000000871004";
const VERIFY_PIN1: &str = "002000010831323334FFFFFFFF";
const VERIFY_PIN1_WRONG: &str = "002000010839393939FFFFFFFF";
const VERIFY_PIN1_STATUS: &str = "0020000100";
const CHANGE_PIN1: &str = "002400011031323334FFFFFFFF35363738FFFFFFFF";
/// UNBLOCK PIN with the campaign card's PUK1 (87654321), then the new PIN1 5678 (TS 102 221 §11.1.13).
const UNBLOCK_PIN1: &str = "002C0001103837363534333231";
const UNBLOCK_NEW_PIN1: &str = "35363738FFFFFFFF";
/// TS 35.208 test set 1 RAND and AUTN (3G context).
const AKA_3G: &str = "008800812210 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b94a9ffac354dfafb3 00";
/// GBA_U bootstrap: RAND and AUTN* of the spec digest §8.3.
const GBA_BOOTSTRAP: &str =
    "0088008423DD10 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b98c7f3f0d723fb244 00";
/// Ks_int_NAF (= MUK) of the spec digest §8.2 for [`BMSC`] and [`IMPI`].
const KS_INT_NAF: &str = "528d966e28f446754cddd71f235195aeefed207477908292b44ac2372cb51cb9";
const IMPI: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";
const BMSC: &str = "bmsc.example.org";
const B_TID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org";
const LIFETIME: &str = "2030-12-31T23:59:59Z";
/// Ua security protocol identifier of MBMS (TS 33.220 Annex H.3).
const UA_MBMS: [u8; 5] = gba::UaSecurityProtocolId::MBMS.0;
const KDI: [u8; 3] = [0x00, 0xF1, 0x10];
const MSK_1: [u8; 16] = [0x11; 16];
const MSK_2: [u8; 16] = [0x22; 16];
const MSK_3: [u8; 16] = [0x33; 16];
const MTK: [u8; 16] = [0x7E; 16];
const SALT: [u8; 14] = [0x5C; 14];
/// 2026-01-01T00:00:00Z.
const JAN_2026: u64 = 1_767_225_600;
/// 2031-01-01T00:00:00Z, after [`LIFETIME`].
const JAN_2031: u64 = 1_924_992_000;

#[allow(clippy::expect_used)] // the hex constants of this module, each run by its tests
fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("a hex constant")
}

fn ntp(unix: u64, n: u32) -> Timestamp {
    Timestamp::NtpUtc(((unix + mikey::NTP_UNIX_OFFSET) << 32) | u64::from(n))
}

#[allow(clippy::expect_used)] // a 32-byte constant
fn muk() -> mbms::Muk {
    mbms::Muk::new(h(KS_INT_NAF).try_into().expect("32 bytes"))
}

/// The BM-SC of the flows: [`BMSC`] to [`B_TID`], with the MUK of [`KS_INT_NAF`].
#[allow(clippy::expect_used)] // a 32-byte constant
fn bmsc() -> MukBmsc {
    MukBmsc {
        muk: h(KS_INT_NAF).try_into().expect("32 bytes"),
        idi: BMSC.as_bytes().to_vec(),
        idr: B_TID.as_bytes().to_vec(),
        key_domain_id: KeyDomainId(KDI),
    }
}

#[allow(clippy::expect_used)] // constant fields, far below the buffer; run by the tests
fn msk_message(ts: Timestamp, msk_id: u32, msk: &[u8; 16], v_bit: bool) -> Vec<u8> {
    bmsc().msk_message(&[0x5A; 16], msk_id, msk, ts, v_bit).expect("MSK message")
}

#[allow(clippy::expect_used)] // constant fields, far below the buffer; run by the tests
fn solicited_pull(ts: Timestamp, key_group: u16) -> Vec<u8> {
    bmsc().solicited_pull(&[0xA5; 16], key_group, ts).expect("solicited pull")
}

#[allow(clippy::expect_used)] // constant fields, far below the buffer; run by the tests
fn mtk_message(msk: &[u8; 16], msk_id: u32, mtk_id: u32, salt: Option<&[u8; 14]>) -> Vec<u8> {
    bmsc().mtk_message(msk_id, msk, mtk_id, mtk_id, &MTK, salt).expect("MTK message")
}

/// The messages of the flows, card and ME alike.
struct Messages {
    m1: Vec<u8>,
    m2: Vec<u8>,
    m3: Vec<u8>,
    t1: Vec<u8>,
    t2: Vec<u8>,
    late_pull: Vec<u8>,
}

impl Messages {
    fn new() -> Self {
        Messages {
            m1: msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, true),
            m2: msk_message(ntp(JAN_2026, 2), 0x0001_0002, &MSK_2, false),
            m3: msk_message(ntp(JAN_2026, 3), 0x0001_0003, &MSK_3, true),
            t1: mtk_message(&MSK_1, 0x0001_0001, 1, Some(&SALT)),
            t2: mtk_message(&MSK_1, 0x0001_0001, 2, None),
            late_pull: solicited_pull(ntp(JAN_2031, 1), 1),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The card side

/// The card's NVM as the campaign drives it: a power cut at a chosen write, torn as
/// [`Tear`] says ([`PowerCutNvm`]), over a RAM image.
type CutNvm = PowerCutNvm<ImageNvm>;

/// A RAM image that, with the `journal-mark-lost` defect planted, silently drops every write to
/// the journal's commit mark (so the checks must find the broken commits).
struct ImageNvm {
    image: RamNvm<NVM_SIZE>,
    mark_lost: bool,
}

impl Nvm for ImageNvm {
    fn capacity(&self) -> usize {
        self.image.capacity()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.image.read(offset, buf)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError> {
        let touches_mark = offset < JOURNAL_MARK.end() && offset + data.len() > JOURNAL_MARK.offset;
        if self.mark_lost && touches_mark { Ok(()) } else { self.image.write(offset, data) }
    }
}

fn cut_nvm(image: RamNvm<NVM_SIZE>, mark_lost: bool) -> CutNvm {
    PowerCutNvm::new(ImageNvm { image, mark_lost })
}

type Card = Uicc<CutNvm>;

fn send(card: &mut Card, command: &[u8]) -> Vec<u8> {
    let mut response = [0u8; RESPONSE_MAX];
    let n = card.process(command, &mut response);
    response[..n].to_vec()
}

fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// The image without the journal area, which legitimately differs between runs.
fn state(nvm: &RamNvm<NVM_SIZE>) -> Vec<u8> {
    let mut image = nvm.as_bytes().to_vec();
    image[JOURNAL_MARK.offset..JOURNAL_BODY.end()].fill(0);
    image
}

/// PIN1's try counter as the card reads it (a value above the maximum counts as blocked).
fn puk1_tries(image: &[u8]) -> u8 {
    let t = image[PUK1_TRIES.offset];
    if t > PUK1_MAX_TRIES { 0 } else { t }
}

fn pin1_tries(image: &[u8]) -> u8 {
    let t = image[PIN1_TRIES.offset];
    if t > PIN1_MAX_TRIES { 0 } else { t }
}

/// What the interrupted command must answer when sent again after the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardCheck {
    /// AKA: a spent SQN is a synchronisation failure (`DC`), an unspent one succeeds (`DB`).
    Aka,
    /// A MIKEY message: `98 65` once accepted, `90 00` otherwise.
    Mikey,
    /// A deletion: `6A 88` once done, `90 00` otherwise.
    Deletion,
    /// Idempotent (NAF derivation): the reference answer again.
    Repeatable,
    /// VERIFY PIN1 (right or wrong value): the try counter is never refunded.
    PinVerify { right: bool },
    /// CHANGE PIN1: the old or the new PIN works, never neither.
    PinChange,
    /// UNBLOCK PIN1 with PUK1: PIN1 still blocked with its old value, or the new value with its
    /// full tries; the PUK1 counter refunded only to its maximum (the right PUK1).
    PinUnblock,
}

struct CardFlow {
    name: &'static str,
    /// The application selected after each power-on.
    select: &'static str,
    /// Whether PIN1 is verified after the selection (not for the PIN flows themselves).
    verify_pin: bool,
    /// Commands run once on a new card (after selection and PIN); their image starts every cut.
    prepare: Vec<Vec<u8>>,
    /// The interrupted command.
    op: Vec<u8>,
    check: CardCheck,
    /// The last MIKEY command accepted in `prepare`, and what its replay answers once `op`
    /// landed (before, the counter refuses it: `98 65`).
    last_accepted: Option<(Vec<u8>, u16)>,
}

/// `00 89 80 85 Lc | 53 L mode data | Le` (TS 31.102 §7.1.2.3), extended when it does not fit,
/// built as the ME builds it.
fn mbms_apdu(mode: u8, data: &[u8]) -> Vec<u8> {
    let mut object = vec![0; framing::mbms_len(data.len())];
    #[allow(clippy::expect_used)] // the campaign's messages are far below 64 KiB
    framing::encode_mbms(mode, data, &mut object).expect("MBMS data object length");
    #[allow(clippy::expect_used)]
    me::card::command_apdu(0x00, INS_AUTHENTICATE_ODD, P1_ODD_FIRST_BLOCK, P2_MBMS_CONTEXT, &object)
        .expect("MBMS AUTHENTICATE APDU")
}

/// UPDATE BINARY of B-TID and key lifetime into EF.GBABP after its RAND (TS 31.102 §4.2.79).
fn gbabp_update_apdu() -> Vec<u8> {
    let mut body = [0u8; 255];
    #[allow(clippy::expect_used)] // both fields are constants far below 255 bytes
    let n = gbabp::encode_b_tid_lifetime(B_TID.as_bytes(), LIFETIME.as_bytes(), &mut body)
        .expect("EF.GBABP tail");
    let mut apdu = vec![0x00, 0xD6, 0x00, gbabp::b_tid_offset(RAND_LEN) as u8, n as u8];
    apdu.extend(&body[..n]);
    apdu
}

/// AUTHENTICATE in GBA NAF derivation mode (TS 31.102 §7.1.2.2) for [`BMSC`] ‖ MBMS and [`IMPI`].
fn naf_apdu() -> Vec<u8> {
    let mut naf_id = BMSC.as_bytes().to_vec();
    naf_id.extend(UA_MBMS);
    let mut data = vec![0; framing::naf_derivation_len(naf_id.len(), IMPI.len())];
    #[allow(clippy::expect_used)] // NAF_Id and IMPI are constants far below 255 bytes
    framing::encode_naf_derivation(&naf_id, IMPI.as_bytes(), &mut data).expect("NAF derivation data");
    #[allow(clippy::expect_used)]
    me::card::command_apdu(0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT, &data)
        .expect("NAF derivation APDU")
}

fn card_flows() -> Vec<CardFlow> {
    let m = Messages::new();
    let gba = vec![h(GBA_BOOTSTRAP), h("00A4000C026FD6"), gbabp_update_apdu(), naf_apdu()];
    let with = |extra: &[&Vec<u8>]| {
        let mut p = gba.clone();
        p.extend(extra.iter().map(|c| (*c).clone()));
        p
    };
    let (m1, m2, m3, t1, t2) = (
        mbms_apdu(MODE_MSK_UPDATE, &m.m1),
        mbms_apdu(MODE_MSK_UPDATE, &m.m2),
        mbms_apdu(MODE_MSK_UPDATE, &m.m3),
        mbms_apdu(MODE_MTK_GENERATION, &m.t1),
        mbms_apdu(MODE_MTK_GENERATION, &m.t2),
    );
    let mut muk_id = vec![0; muk_id_len(B_TID.len(), BMSC.len())];
    #[allow(clippy::expect_used)] // B-TID and BM-SC FQDN are constants far below 127 bytes
    encode_muk_id(B_TID.as_bytes(), BMSC.as_bytes(), &mut muk_id).expect("MUK ID");
    let flow = |name, prepare, op, check, last_accepted| CardFlow {
        name,
        select: SELECT_USIM,
        verify_pin: true,
        prepare,
        op,
        check,
        last_accepted,
    };
    vec![
        CardFlow {
            name: "pin-verify",
            verify_pin: false,
            // One wrong try first, so the right PIN resets the counter (a write to cut).
            prepare: vec![h(VERIFY_PIN1_WRONG)],
            ..flow("", vec![], h(VERIFY_PIN1), CardCheck::PinVerify { right: true }, None)
        },
        CardFlow {
            name: "pin-verify-wrong",
            verify_pin: false,
            ..flow("", vec![], h(VERIFY_PIN1_WRONG), CardCheck::PinVerify { right: false }, None)
        },
        CardFlow {
            name: "pin-change",
            verify_pin: false,
            ..flow("", vec![], h(CHANGE_PIN1), CardCheck::PinChange, None)
        },
        CardFlow {
            name: "pin-unblock",
            verify_pin: false,
            // PIN1 blocked by three wrong tries first.
            prepare: vec![h(VERIFY_PIN1_WRONG), h(VERIFY_PIN1_WRONG), h(VERIFY_PIN1_WRONG)],
            ..flow("", vec![], h(&format!("{UNBLOCK_PIN1}{UNBLOCK_NEW_PIN1}")), CardCheck::PinUnblock, None)
        },
        flow("usim-aka", vec![], h(AKA_3G), CardCheck::Aka, None),
        CardFlow {
            name: "isim-aka",
            select: SELECT_ISIM,
            ..flow("", vec![], h(AKA_3G), CardCheck::Aka, None)
        },
        flow("gba-bootstrap", vec![], h(GBA_BOOTSTRAP), CardCheck::Aka, None),
        flow("naf-derivation", gba[..3].to_vec(), naf_apdu(), CardCheck::Repeatable, None),
        flow("msk-update", gba.clone(), m1.clone(), CardCheck::Mikey, None),
        flow("msk-update-key-group", with(&[&m1, &m2]), m3, CardCheck::Mikey, Some((m2.clone(), 0x9865))),
        flow(
            "msk-update-solicited-pull",
            with(&[&m1]),
            mbms_apdu(MODE_MSK_UPDATE, &m.late_pull),
            CardCheck::Mikey,
            Some((m1.clone(), 0x9865)),
        ),
        flow("mtk-generation", with(&[&m1]), t1.clone(), CardCheck::Mikey, Some((m1.clone(), 0x9865))),
        flow("mtk-generation-next", with(&[&m1, &t1]), t2, CardCheck::Mikey, Some((t1, 0x9865))),
        flow(
            "msk-deletion",
            with(&[&m1, &m2]),
            mbms_apdu(MODE_MSK_DELETION, &framing::msk_deletion_data(&KDI, 0x0001)),
            CardCheck::Deletion,
            Some((m2, 0x9865)),
        ),
        // Once the MUK is gone its messages find no key (69 85); before, the counter refuses them.
        flow(
            "muk-deletion",
            with(&[&m1]),
            mbms_apdu(MODE_MUK_DELETION, &muk_id),
            CardCheck::Deletion,
            Some((m1, 0x6985)),
        ),
    ]
}

/// Power on, select the flow's application and verify PIN1 if the flow says so.
fn open_session(card: &mut Card, flow: &CardFlow) -> std::result::Result<(), String> {
    let mut commands = vec![h(flow.select)];
    if flow.verify_pin {
        commands.push(h(VERIFY_PIN1));
    }
    for c in commands {
        let answer = sw(&send(card, &c));
        if answer != 0x9000 {
            return Err(format!("{} answered {answer:04X}", hex::encode_upper(&c)));
        }
    }
    Ok(())
}

/// The reference run of a card flow.
struct CardReference {
    base: RamNvm<NVM_SIZE>,
    old: Vec<u8>,
    new: Vec<u8>,
    answer: Vec<u8>,
    writes: usize,
}

fn card_reference(flow: &CardFlow) -> std::result::Result<CardReference, String> {
    let mut nvm = RamNvm::new();
    Uicc::personalize(&mut nvm, &PERSONALIZATION).map_err(|e| format!("personalization: {e:?}"))?;
    let mut card = Uicc::power_on(cut_nvm(nvm, false));
    open_session(&mut card, flow)?;
    for c in &flow.prepare {
        let answer = sw(&send(&mut card, c));
        if answer != 0x9000 && answer & 0xFF00 != 0x6100 && answer & 0xFFF0 != 0x63C0 {
            return Err(format!("prepare {} answered {answer:04X}", hex::encode_upper(c)));
        }
    }
    let base = card.into_nvm().into_inner().image;
    let mut card = Uicc::power_on(cut_nvm(base.clone(), false));
    open_session(&mut card, flow)?;
    let old = state(&card.nvm().inner().image);
    let before = card.nvm().writes();
    let answer = send(&mut card, &flow.op);
    let writes = card.nvm().writes() - before;
    let new = state(&card.nvm().inner().image);
    Ok(CardReference { base, old, new, answer, writes })
}

fn run_card_flow(flow: &CardFlow, mark_lost: bool) -> FlowReport {
    let mut report = FlowReport::new(flow.name, "card");
    let reference = match card_reference(flow) {
        Ok(r) => r,
        Err(e) => {
            report.violation(format!("reference run: {e}"));
            return report;
        }
    };
    report.writes = reference.writes;
    for tear in Tear::ALL {
        for k in 0.. {
            let mut card = Uicc::power_on(cut_nvm(reference.base.clone(), mark_lost));
            if let Err(e) = open_session(&mut card, flow) {
                report.violation(format!("cut at write {k}: session before the command: {e}"));
                break;
            }
            card.nvm().arm(k, tear);
            let answer = send(&mut card, &flow.op);
            if !card.nvm().power_lost() {
                break;
            }
            let what = format!("cut at write {k} ({tear:?})");
            if sw(&answer) & 0xFFF0 == 0x63C0 || sw(&answer) == 0x9000 {
                report.violation(format!("{what}: the card answered {:04X} after losing power", sw(&answer)));
            }
            let cut_image = card.into_nvm().into_inner().image;
            report.cut_points += 1;
            for problem in check_card_restart(flow, &reference, &cut_image) {
                report.violation(format!("{what}: {problem}"));
            }
            // The recovery at the next power-on, cut at each of its writes, then a clean restart.
            let probe = Uicc::power_on(cut_nvm(cut_image.clone(), false));
            let recovery_writes = probe.nvm().writes();
            for j in 0..recovery_writes {
                let nvm = cut_nvm(cut_image.clone(), mark_lost);
                nvm.arm(j, tear);
                let image = Uicc::power_on(nvm).into_nvm().into_inner().image;
                report.cut_points += 1;
                for problem in check_card_restart(flow, &reference, &image) {
                    report.violation(format!("{what}, recovery cut at write {j}: {problem}"));
                }
            }
        }
    }
    report
}

/// Restart on `image` and check every invariant; returns the problems found.
fn check_card_restart(flow: &CardFlow, r: &CardReference, image: &RamNvm<NVM_SIZE>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut card = Uicc::power_on(cut_nvm(image.clone(), false));
    let mut now = state(&card.nvm().inner().image);
    if flow.check == CardCheck::PinUnblock {
        let (puk_before, puk_now) = (puk1_tries(&r.old), puk1_tries(&now));
        if puk_now > puk_before && puk_now != PUK1_MAX_TRIES {
            problems.push(format!("PUK1 try counter refunded: {puk_before} before, {puk_now} after"));
        }
        let mut masked = [now.clone(), r.old.clone(), r.new.clone()];
        for image in &mut masked {
            image[PIN1_TRIES.offset] = 0;
            image[PUK1_TRIES.offset] = 0;
        }
        let [now_m, old_m, new_m] = &masked;
        if now_m != old_m && now_m != new_m {
            problems.push(format!(
                "the image is neither the old nor the new one ({})",
                first_difference(now_m, old_m)
            ));
            return problems;
        }
        let pin = PIN1_VALUE.offset..PIN1_VALUE.end();
        let landed = now[pin.clone()] == r.new[pin] && now_m != old_m;
        if landed && pin1_tries(&now) != PIN1_MAX_TRIES {
            problems
                .push(format!("the new PIN1 landed with {} tries, not {PIN1_MAX_TRIES}", pin1_tries(&now)));
        }
        let command =
            if landed { format!("0020000108{UNBLOCK_NEW_PIN1}") } else { VERIFY_PIN1_STATUS.to_owned() };
        let expected = if landed { 0x9000 } else { 0x6983 };
        let _ = send(&mut card, &h(SELECT_USIM));
        let answer = sw(&send(&mut card, &h(&command)));
        if answer != expected {
            problems.push(format!("after the restart VERIFY answered {answer:04X}, not {expected:04X}"));
        }
        return problems;
    }
    let pin_flow = matches!(flow.check, CardCheck::PinVerify { .. } | CardCheck::PinChange);
    if pin_flow {
        // The try counter is checked on its own below: VERIFY writes it before comparing (so a
        // cut cannot hide a wrong try), which is a deliberate intermediate state.
        let tries_before = pin1_tries(&r.old);
        let tries_now = pin1_tries(&now);
        let right = !matches!(flow.check, CardCheck::PinVerify { right: false });
        if tries_now > tries_before && !(right && tries_now == PIN1_MAX_TRIES) {
            problems.push(format!("PIN1 try counter refunded: {tries_before} before, {tries_now} after"));
        }
        let mut old = r.old.clone();
        let mut new = r.new.clone();
        for image in [&mut now, &mut old, &mut new] {
            image[PIN1_TRIES.offset] = 0;
        }
        if now != old && now != new {
            problems.push(format!(
                "PIN1 value is neither the old nor the new one ({})",
                first_difference(&now, &old)
            ));
        }
        let status = sw(&send(&mut card, &h(VERIFY_PIN1_STATUS)));
        let expected = match tries_now {
            0 => 0x6983,
            n => 0x63C0 | u16::from(n),
        };
        if status != expected {
            problems.push(format!("VERIFY status answered {status:04X}, the counter says {expected:04X}"));
        }
        if flow.check == CardCheck::PinChange && tries_now > 0 {
            let landed = now == new && now != old;
            let pin = if landed { "002000010835363738FFFFFFFF" } else { VERIFY_PIN1 };
            let answer = sw(&send(&mut card, &h(pin)));
            if answer != 0x9000 {
                problems
                    .push(format!("the {} PIN answered {answer:04X}", if landed { "new" } else { "old" }));
            }
        }
        return problems;
    }
    let landed = now == r.new;
    if !landed && now != r.old {
        problems.push(format!(
            "the image is neither the old nor the new one ({})",
            first_difference(&now, &r.old)
        ));
        return problems;
    }
    if let Err(e) = open_session(&mut card, flow) {
        problems.push(format!("the card does not work after the restart: {e}"));
        return problems;
    }
    if let Some((command, after_landing)) = &flow.last_accepted {
        let answer = sw(&send(&mut card, command));
        let expected = if landed { *after_landing } else { 0x9865 };
        if answer != expected {
            problems.push(format!(
                "replay of the last accepted message answered {answer:04X}, not {expected:04X}"
            ));
        }
    }
    let answer = send(&mut card, &flow.op);
    let bad = match flow.check {
        CardCheck::Aka => {
            let tag = if landed { TAG_SYNC_FAILURE } else { TAG_SUCCESS };
            (answer.first() != Some(&tag) || sw(&answer) != 0x9000)
                .then(|| format!("AKA replay answered tag {:02X?}, SW {:04X}", answer.first(), sw(&answer)))
        }
        CardCheck::Mikey => {
            let expected = if landed { 0x9865 } else { 0x9000 };
            (sw(&answer) != expected)
                .then(|| format!("replay answered {:04X}, not {expected:04X}", sw(&answer)))
        }
        CardCheck::Deletion => {
            let expected = if landed { 0x6A88 } else { 0x9000 };
            (sw(&answer) != expected).then(|| format!("deletion again answered {:04X}", sw(&answer)))
        }
        CardCheck::Repeatable => {
            (answer != r.answer).then(|| "the repeated command answered differently".into())
        }
        CardCheck::PinVerify { .. } | CardCheck::PinChange | CardCheck::PinUnblock => None,
    };
    problems.extend(bad);
    problems
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => format!("first difference at NVM offset {at}, {}", region_name(at)),
        None => "same bytes".into(),
    }
}

/// The card's NVM region holding `offset` (uicc-applet's layout).
fn region_name(offset: usize) -> String {
    use uicc_applet::layout::{
        ADM1_TRIES, ADM1_VALUE, AMF, ISIM_GBA_CONTEXT, ISIM_KS_INT_NAF, K, MSK_KEYS, OPC, PIN1_VALUE,
        SQN_ARRAY, USIM_GBA_CONTEXT, USIM_KS_INT_NAF,
    };
    let named = [
        ("PIN1", PIN1_VALUE),
        ("PIN1 tries", PIN1_TRIES),
        ("ADM1", ADM1_VALUE),
        ("ADM1 tries", ADM1_TRIES),
        ("K", K),
        ("OPc", OPC),
        ("AMF", AMF),
        ("SQN array", SQN_ARRAY),
        ("USIM GBA context", USIM_GBA_CONTEXT),
        ("ISIM GBA context", ISIM_GBA_CONTEXT),
        ("USIM Ks_int_NAF slots", USIM_KS_INT_NAF),
        ("ISIM Ks_int_NAF slots", ISIM_KS_INT_NAF),
        ("MSK slots", MSK_KEYS),
    ];
    let inside = |r: uicc_applet::layout::Region| (r.offset..r.end()).contains(&offset);
    if let Some((name, _)) = named.iter().find(|(_, r)| inside(*r)) {
        return (*name).to_owned();
    }
    match uicc_applet::fs::Ef::ALL.iter().find(|e| inside(uicc_applet::layout::ef(**e))) {
        Some(ef) => format!("{ef:?}"),
        None => "outside the state".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The ME side

type MeOp = Box<dyn Fn(&mut MeBased) -> me::Result<()>>;

/// What the interrupted operation must do when run again after the restart.
enum MeCheck {
    /// Installing the MUK: afterwards the first MSK message finds it.
    MukInstalled,
    /// A MIKEY message: refused as stale (`KeyFreshness`) once it landed, accepted otherwise.
    Mikey(Vec<u8>),
    /// A deletion: `KeyNotFound` once done.
    Deletion,
    /// A different card: every key gone and the store bound to it, or nothing changed.
    CardChange,
    /// Power-down without keeping keys: MSKs and MTKs gone, the last used MUK and its counter kept.
    PowerDown,
}

struct MeFlow {
    name: &'static str,
    prepare: Vec<MeOp>,
    op: MeOp,
    check: MeCheck,
    /// The last MIKEY message accepted in `prepare`: its replay must be refused before and after
    /// the flow (`after_landing`: which error once the flow landed; `None` = stale, as before).
    last_accepted: Option<(Vec<u8>, Option<&'static str>)>,
}

fn install_muk() -> MeOp {
    Box::new(|me: &mut MeBased| {
        me.store_mut().put_mrk(StoredMrk {
            idi: BMSC.as_bytes().to_vec(),
            idr: B_TID.as_bytes().to_vec(),
            mrk: gba::Mrk::new([0x3A; 32]),
            lifetime: LIFETIME.into(),
        });
        me.install_muk(BMSC.as_bytes(), B_TID.as_bytes(), muk(), LIFETIME)
    })
}

fn msk_update(message: &[u8]) -> MeOp {
    let message = message.to_vec();
    Box::new(move |me: &mut MeBased| me.msk_update(&message).map(|_| ()))
}

fn mtk_generate(message: &[u8]) -> MeOp {
    let message = message.to_vec();
    Box::new(move |me: &mut MeBased| me.mtk_generate(&message).map(|_| ()))
}

fn me_flows() -> Vec<MeFlow> {
    let m = Messages::new();
    vec![
        MeFlow {
            name: "me-muk-mrk-store",
            prepare: vec![],
            op: install_muk(),
            check: MeCheck::MukInstalled,
            last_accepted: None,
        },
        MeFlow {
            name: "me-msk-store",
            prepare: vec![install_muk()],
            op: msk_update(&m.m1),
            check: MeCheck::Mikey(m.m1.clone()),
            last_accepted: None,
        },
        MeFlow {
            name: "me-msk-store-key-group",
            prepare: vec![install_muk(), msk_update(&m.m1), msk_update(&m.m2)],
            op: msk_update(&m.m3),
            check: MeCheck::Mikey(m.m3.clone()),
            last_accepted: Some((m.m2.clone(), None)),
        },
        MeFlow {
            name: "me-mtk-store",
            prepare: vec![install_muk(), msk_update(&m.m1)],
            op: mtk_generate(&m.t1),
            check: MeCheck::Mikey(m.t1.clone()),
            last_accepted: Some((m.m1.clone(), None)),
        },
        MeFlow {
            name: "me-mtk-store-next",
            prepare: vec![install_muk(), msk_update(&m.m1), mtk_generate(&m.t1)],
            op: mtk_generate(&m.t2),
            check: MeCheck::Mikey(m.t2.clone()),
            last_accepted: Some((m.t1.clone(), None)),
        },
        MeFlow {
            name: "me-msk-deletion",
            prepare: vec![install_muk(), msk_update(&m.m1), msk_update(&m.m2)],
            op: Box::new(|me: &mut MeBased| me.delete_msk(KeyDomainId(KDI), 1)),
            check: MeCheck::Deletion,
            last_accepted: Some((m.m2.clone(), None)),
        },
        MeFlow {
            name: "me-muk-deletion",
            prepare: vec![install_muk(), msk_update(&m.m1)],
            op: Box::new(|me: &mut MeBased| me.delete_muk(BMSC.as_bytes(), B_TID.as_bytes())),
            check: MeCheck::Deletion,
            last_accepted: Some((m.m1.clone(), Some("NoMuk"))),
        },
        MeFlow {
            name: "me-card-change-wipe",
            prepare: vec![install_muk(), msk_update(&m.m1), mtk_generate(&m.t1)],
            op: Box::new(|me: &mut MeBased| me.store_mut().on_card_inserted(OTHER_ICCID).map(|_| ())),
            check: MeCheck::CardChange,
            last_accepted: Some((m.m1.clone(), Some("NoMuk"))),
        },
        MeFlow {
            name: "me-power-down-drop",
            prepare: vec![install_muk(), msk_update(&m.m1), mtk_generate(&m.t1)],
            op: Box::new(|me: &mut MeBased| me.store_mut().power_down(false)),
            check: MeCheck::PowerDown,
            last_accepted: Some((m.m1.clone(), None)),
        },
    ]
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> io::Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keysim-tearing-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }

    fn store(&self) -> PathBuf {
        self.0.join("me-keys.bin")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes the fault hook when dropped (also on a panic).
struct HookGuard;

impl HookGuard {
    fn install(hook: key_store::fault::Hook) -> Self {
        key_store::fault::set_hook(Some(hook));
        HookGuard
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        key_store::fault::set_hook(None);
    }
}

fn open_me(path: &Path) -> me::Result<MeBased> {
    let mut store = KeyStore::open(path)?;
    store.on_card_inserted(PERSONALIZATION.iccid)?;
    Ok(MeBased::new(store))
}

/// Runs the op with a cut at save step `k` (`None`: no cut); returns whether the power was cut,
/// and at which step, and the steps seen.
fn run_me_op(path: &Path, op: &MeOp, cut_at: Option<usize>) -> Result<(Option<WriteStep>, usize)> {
    let mut me = open_me(path)?;
    let steps = std::rc::Rc::new(Cell::new(0usize));
    let cut = std::rc::Rc::new(Cell::new(None));
    let (s, c) = (steps.clone(), cut.clone());
    let _guard = HookGuard::install(Box::new(move |step| {
        let i = s.get();
        s.set(i + 1);
        if Some(i) == cut_at {
            c.set(Some(step));
            return Err(io::Error::other("power cut"));
        }
        Ok(())
    }));
    let result = op(&mut me);
    drop(me);
    match (cut.get(), result) {
        (Some(step), Err(_)) => Ok((Some(step), steps.get())),
        (Some(step), Ok(())) => bail!("the flow went on after a power cut at {step:?}"),
        (None, Ok(())) => Ok((None, steps.get())),
        (None, Err(e)) => bail!("the flow failed without a cut: {e}"),
    }
}

fn run_me_flow(flow: &MeFlow, in_place: bool) -> Result<FlowReport> {
    let mut report = FlowReport::new(flow.name, "me");
    // The prepared store.
    let scratch = ScratchDir::new()?;
    let path = scratch.store();
    {
        let mut me = open_me(&path)?;
        for op in &flow.prepare {
            if let Err(e) = op(&mut me) {
                report.violation(format!("prepare: {e}"));
                return Ok(report);
            }
        }
    }
    let old = fs::read(&path)?;
    // Reference run: the save steps of the flow and the file it leaves.
    let (cut, steps) = run_me_op(&path, &flow.op, None)?;
    debug_assert!(cut.is_none());
    let new = fs::read(&path)?;
    report.writes = steps;
    for k in 0..steps {
        fs::write(&path, &old)?;
        let (cut, _) = run_me_op(&path, &flow.op, Some(k))?;
        let Some(step) = cut else { break };
        // What the cut leaves, in each crash model: the files as they are; and when the rename had
        // happened but the directory was not synced yet, the rename lost.
        let left = fs::read(&path)?;
        let mut models = vec![("files as left", left)];
        if step == WriteStep::SyncDir {
            models.push(("rename lost", old.clone()));
        }
        if in_place {
            // A store rewritten in place: at the cut the file holds what was written so far.
            let written = match step {
                WriteStep::CreateTemp => Vec::new(),
                WriteStep::WriteHalf => new[..new.len() / 2].to_vec(),
                _ => new.clone(),
            };
            models = vec![("rewritten in place", written)];
        }
        for (model, bytes) in models {
            fs::write(&path, &bytes)?;
            report.cut_points += 1;
            for problem in check_me_restart(flow, &path, &old, &new)? {
                report.violation(format!("cut before step {k} ({step:?}, {model}): {problem}"));
            }
        }
    }
    Ok(report)
}

/// Files next to the store other than the store itself and its lock (which is meant to stay).
fn temporaries(path: &Path, lock: &Path) -> Result<Vec<PathBuf>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.as_path() != path && p.as_path() != lock)
        .collect())
}

/// Sends an MSK or MTK message to the ME again.
fn replay(me: &mut MeBased, message: &[u8]) -> me::Result<()> {
    if mbms::parse_msk_message(message).is_ok() {
        me.msk_update(message).map(|_| ())
    } else {
        me.mtk_generate(message).map(|_| ())
    }
}

fn error_name(e: &me::Error) -> &'static str {
    match e {
        me::Error::KeyFreshness => "KeyFreshness",
        me::Error::NoMuk => "NoMuk",
        me::Error::KeyNotFound => "KeyNotFound",
        _ => "other",
    }
}

/// Reopen the store at `path` and check every invariant; returns the problems found.
fn check_me_restart(flow: &MeFlow, path: &Path, old: &[u8], new: &[u8]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let store = match KeyStore::open(path) {
        Ok(store) => store,
        Err(e) => {
            problems.push(format!("the store was lost: {e}"));
            return Ok(problems);
        }
    };
    if let Some(leftover) = temporaries(path, store.lock_path().unwrap_or(path))?.first() {
        problems.push(format!("a temporary file survived the reopening: {}", leftover.display()));
    }
    let now = store.encode();
    let landed = now[..] == *new;
    if !landed && now[..] != *old {
        problems.push("the store is neither the old nor the new one".into());
        return Ok(problems);
    }
    let card_changed = landed && matches!(flow.check, MeCheck::CardChange);
    let expected_iccid = if card_changed { OTHER_ICCID } else { PERSONALIZATION.iccid };
    if store.iccid() != Some(expected_iccid) {
        problems.push(format!("bound to {:?}, not {expected_iccid}", store.iccid()));
    }
    let msks = store.msks().len();
    drop(store);
    let mut me = MeBased::new(KeyStore::open(path)?);
    if let Some((message, after_landing)) = &flow.last_accepted {
        let expected = if landed { after_landing.unwrap_or("KeyFreshness") } else { "KeyFreshness" };
        match replay(&mut me, message) {
            Ok(()) => problems.push("the last accepted message was accepted again".into()),
            Err(e) if error_name(&e) != expected => {
                problems.push(format!("the last accepted message was refused with {e}, not {expected}"))
            }
            Err(_) => {}
        }
    }
    let outcome = match &flow.check {
        MeCheck::MukInstalled => {
            let first = msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
            match (landed, me.msk_update(&first)) {
                (true, Ok(_)) | (false, Err(me::Error::NoMuk)) => None,
                (l, r) => Some(format!(
                    "an MSK message after the MUK {}: {:?}",
                    ["was lost", "landed"][usize::from(l)],
                    r.err()
                )),
            }
        }
        MeCheck::Mikey(message) => match (landed, replay(&mut me, message)) {
            (true, Err(me::Error::KeyFreshness)) | (false, Ok(())) => None,
            (l, r) => {
                Some(format!("replay {}: {:?}", ["before landing", "after landing"][usize::from(l)], r.err()))
            }
        },
        MeCheck::Deletion => None,
        MeCheck::CardChange => (landed && msks != 0).then(|| "keys of the old card survived".into()),
        MeCheck::PowerDown => ((msks == 0) != landed).then(|| format!("{msks} MSKs after power-down")),
    };
    problems.extend(outcome);
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(report: &CampaignReport, name: &str) -> FlowReport {
        report.flows.iter().find(|f| f.name == name).cloned().expect("flow")
    }

    #[test]
    fn every_flow_has_cut_points_and_no_violation() {
        let report = run_campaign(None, None).expect("campaign");
        assert_eq!(report.flows.len(), flow_names().len());
        for f in &report.flows {
            assert!(
                f.writes > 0 && f.cut_points >= f.writes,
                "{}: {} writes, {} cuts",
                f.name,
                f.writes,
                f.cut_points
            );
            assert_eq!(f.violations, 0, "{}: {:?}", f.name, f.details);
        }
        assert!(report.ok);
    }

    #[test]
    fn a_lost_journal_commit_mark_breaks_the_card_invariants() {
        let report = run_campaign(Some("msk-update"), Some(Defect::JournalMarkLost)).expect("campaign");
        let f = flow(&report, "msk-update");
        assert!(f.violations > 0, "{f:?}");
        assert!(f.details.iter().any(|d| d.contains("neither the old nor the new")), "{:?}", f.details);
        assert!(!report.ok);
    }

    #[test]
    fn a_store_rewritten_in_place_breaks_the_me_invariants() {
        let report = run_campaign(Some("me-msk-store"), Some(Defect::StoreInPlace)).expect("campaign");
        let f = flow(&report, "me-msk-store");
        assert!(f.violations > 0, "{f:?}");
        assert!(f.details.iter().any(|d| d.contains("the store was lost")), "{:?}", f.details);
    }

    #[test]
    fn a_refunded_pin_try_is_a_violation() {
        let flows = card_flows();
        let wrong = flows.iter().find(|f| f.name == "pin-verify-wrong").expect("flow");
        let reference = card_reference(wrong).expect("reference");
        // Pretend the counter stood at 1 before the wrong try: the image (3 tries) is a refund.
        let mut r = reference;
        r.old[PIN1_TRIES.offset] = 1;
        let image = r.base.clone();
        let problems = check_card_restart(wrong, &r, &image);
        assert!(problems.iter().any(|p| p.contains("refunded")), "{problems:?}");
    }

    #[test]
    fn an_unknown_flow_is_refused_with_the_list() {
        let e = run_campaign(Some("nope"), None).expect_err("unknown flow");
        assert!(e.to_string().contains("msk-update"), "{e}");
    }
}
