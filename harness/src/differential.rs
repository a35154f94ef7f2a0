//! Differential validation of the two MBMS key-management paths (TS 33.246 §6.1, §6.3 with CRs
//! 001, 021 and 027): random but reproducible key-management histories fed to the UICC-based path
//! (the card, over APDUs) and the ME-based path (the ME key store), compared step by step.
//!
//! A history is a list of [`Event`]s drawn from a seed ([`generate`]). The runner materialises
//! each event as the BM-SC would (one [`BmscStream`] per Key Group, plus a rogue BM-SC whose keys
//! no UE holds), feeds the messages to both paths and records, per path, an [`Observation`]: the
//! outcome (accepted, or the refusal's class), the MTK and salt installed, the MSK IDs held
//! afterwards, and which streams' SRTP packets decrypt. Where the two observations differ, either
//! the difference is one the specifications allow ([`Allowance`], each with its clause), or it is a
//! divergence: [`shrink`] cuts the history down to the shortest one that still shows it.

// Index 0 is the UICC-based path, 1 the ME-based one, across several parallel arrays.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use me::{App, GbaVariant, MbmsReceiver, MskOutcome};
use mikey::mbms::{KeyDomainId, Muk};
use network::bmsc_stream::{BmscStream, BmscStreamConfig};
use serde::Serialize;
use sim_reader::{CardProfile, Reader};

use crate::paths::{self, BMSC_FQDN, Hss, PathKm, PathUe};
use crate::{Error, Result};

/// The Key Groups of the histories (one BM-SC stream each).
pub const KEY_GROUPS: [u16; 2] = [0x0001, 0x0002];
/// Most events a generated history has.
pub const MAX_STEPS: usize = 40;

/// One step of a key-management history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    /// The BM-SC rotates the MSK of Key Group `g` and pushes it to both UEs.
    MskPush(u8),
    /// The BM-SC pushes the current MSK of `g` again, with a new counter.
    MskRepush(u8),
    /// The last MSK message each UE got, sent again byte for byte.
    MskReplay,
    /// An earlier MSK message each UE got (its counter not above the last one).
    MskStale,
    /// The last MSK message with its MAC damaged.
    MskBadMac,
    /// An MSK message for `g` protected with a MUK no UE holds (IDr unknown).
    MskUnknownMuk(u8),
    /// A solicited pull (MSK ID with key number 0) for `g` under the UE's MUK.
    Pull(u8),
    /// The next MTK of `g`.
    Mtk(u8),
    /// The last MTK message again.
    MtkReplay,
    /// An earlier MTK message (MTK ID not above the last one).
    MtkOld,
    /// An MTK message of `g` protected with an MSK the UEs never got.
    MtkWrongMsk(u8),
    /// The last MTK message with one byte of its encrypted key data changed.
    MtkTampered,
    /// The ME deletes the MSKs of `g`.
    DeleteMsk(u8),
    /// The UE is powered off and on; the ME keeps its keys or drops them (configuration).
    PowerCycle {
        /// Keep MRK, MSK and MTK in the ME at power-down.
        keep: bool,
    },
    /// A new GBA bootstrap: new MUKs, which the BM-SC uses from now on.
    Rebootstrap,
    /// A different UICC (the other built-in subscriber's) is inserted and the UE powers on with
    /// it; the ME keeps its key store, which must forget every MBMS key (TS 33.246 §6.1, CR 001).
    /// A run whose cards cannot be swapped (a card in a reader) skips it.
    CardSwap,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::MskPush(g) => write!(f, "msk-push:{g}"),
            Event::MskRepush(g) => write!(f, "msk-repush:{g}"),
            Event::MskReplay => f.write_str("msk-replay"),
            Event::MskStale => f.write_str("msk-stale"),
            Event::MskBadMac => f.write_str("msk-bad-mac"),
            Event::MskUnknownMuk(g) => write!(f, "msk-unknown-muk:{g}"),
            Event::Pull(g) => write!(f, "pull:{g}"),
            Event::Mtk(g) => write!(f, "mtk:{g}"),
            Event::MtkReplay => f.write_str("mtk-replay"),
            Event::MtkOld => f.write_str("mtk-old"),
            Event::MtkWrongMsk(g) => write!(f, "mtk-wrong-msk:{g}"),
            Event::MtkTampered => f.write_str("mtk-tampered"),
            Event::DeleteMsk(g) => write!(f, "delete-msk:{g}"),
            Event::PowerCycle { keep: true } => f.write_str("power-cycle-keep"),
            Event::PowerCycle { keep: false } => f.write_str("power-cycle-drop"),
            Event::Rebootstrap => f.write_str("rebootstrap"),
            Event::CardSwap => f.write_str("card-swap"),
        }
    }
}

impl std::str::FromStr for Event {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, group) = match s.split_once(':') {
            Some((n, g)) => {
                let g: u8 = g.parse().map_err(|_| format!("'{s}': the Key Group index is no number"))?;
                if usize::from(g) >= KEY_GROUPS.len() {
                    return Err(format!("'{s}': Key Group index {g} (0 to {})", KEY_GROUPS.len() - 1));
                }
                (n, Some(g))
            }
            None => (s, None),
        };
        let need =
            |e: fn(u8) -> Event| group.map(e).ok_or_else(|| format!("'{s}' needs a Key Group (:0 or :1)"));
        let none = |e: Event| if group.is_none() { Ok(e) } else { Err(format!("'{s}' takes no Key Group")) };
        match name {
            "msk-push" => need(Event::MskPush),
            "msk-repush" => need(Event::MskRepush),
            "msk-unknown-muk" => need(Event::MskUnknownMuk),
            "pull" => need(Event::Pull),
            "mtk" => need(Event::Mtk),
            "mtk-wrong-msk" => need(Event::MtkWrongMsk),
            "delete-msk" => need(Event::DeleteMsk),
            "msk-replay" => none(Event::MskReplay),
            "msk-stale" => none(Event::MskStale),
            "msk-bad-mac" => none(Event::MskBadMac),
            "mtk-replay" => none(Event::MtkReplay),
            "mtk-old" => none(Event::MtkOld),
            "mtk-tampered" => none(Event::MtkTampered),
            "power-cycle-keep" => none(Event::PowerCycle { keep: true }),
            "power-cycle-drop" => none(Event::PowerCycle { keep: false }),
            "rebootstrap" => none(Event::Rebootstrap),
            "card-swap" => none(Event::CardSwap),
            _ => Err(format!("'{s}' is no event")),
        }
    }
}

/// Parses a comma-separated history (`msk-push:0,mtk:0,mtk-replay`).
pub fn parse_history(text: &str) -> std::result::Result<Vec<Event>, String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::parse).collect()
}

/// The history as the comma-separated text [`parse_history`] reads.
pub fn history_text(history: &[Event]) -> String {
    history.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// SplitMix64: a small generator whose output is fixed by its definition, so a seed names the same
/// history in every version of keysim (a library generator may change its algorithm).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The history of `seed`: 5 to [`MAX_STEPS`] events, well-behaved traffic (pushes and MTKs)
/// weighted above the adversarial events.
pub fn generate(seed: u64) -> Vec<Event> {
    let mut r = SplitMix64(seed);
    let steps = 5 + r.below(MAX_STEPS as u64 - 4) as usize;
    let mut history = Vec::with_capacity(steps);
    for _ in 0..steps {
        let g = r.below(KEY_GROUPS.len() as u64) as u8;
        let event = match r.below(100) {
            0..=17 => Event::MskPush(g),
            18..=21 => Event::MskRepush(g),
            22..=45 => Event::Mtk(g),
            46..=50 => Event::MskReplay,
            51..=55 => Event::MskStale,
            56..=59 => Event::MskBadMac,
            60..=62 => Event::MskUnknownMuk(g),
            63..=66 => Event::Pull(g),
            67..=71 => Event::MtkReplay,
            72..=76 => Event::MtkOld,
            77..=79 => Event::MtkWrongMsk(g),
            80..=83 => Event::MtkTampered,
            84..=87 => Event::DeleteMsk(g),
            // Dropping keys at power-down makes the paths differ (allowed) until the keys come
            // again: rare, so that most steps stay comparable.
            88..=93 => Event::PowerCycle { keep: true },
            94..=95 => Event::PowerCycle { keep: false },
            96..=97 => Event::Rebootstrap,
            _ => Event::CardSwap,
        };
        history.push(event);
    }
    history
}

/// What one path did with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// `accepted …` with what was installed, `refused <class>`, or `-` for an event that sends no
    /// message to the path.
    pub outcome: String,
    /// The MTK and salt installed (hex), when an MTK was accepted.
    pub mtk: Option<String>,
    /// The MSKs held after the event, as `KeyDomainID/MSK ID` (hex), sorted.
    pub msks: Vec<String>,
    /// Per Key Group with a current MTK at the BM-SC: whether its next SRTP packet decrypts.
    pub decrypts: Vec<bool>,
}

/// A difference between the paths that the specifications allow, with the clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Allowance {
    /// At power-down the ME drops MRK, MSK and MTK by configuration, and MUKs other than the last
    /// used one; the card keeps everything in its NVM (TS 33.246 §6.1 as changed by CR 001 and
    /// CR 027). Until the BM-SC pushes those keys again the card accepts MTKs (and MSK messages
    /// under the dropped MUKs) that the ME refuses, decrypts what the ME cannot, and holds MSKs the
    /// ME does not; and an MSK the ME got again starts without the MTK ID it had seen, so the ME
    /// takes an older MTK the card still refuses.
    MePowerDownDrop,
    /// The card keeps the Ks_int_NAF of a BM-SC's most recently used MUK and of the newest
    /// bootstrap only (one EF.GBANL record superseded per NAF_Id, TS 31.102 §4.2.83, TS 33.220
    /// Annex G); the ME keeps more MUKs of a BM-SC. A message under an older MUK that both refuse
    /// is refused by the card as naming no MUK, by the ME for what is wrong with it.
    CardMukCapacity,
}

impl Allowance {
    /// The clause that allows it.
    pub fn clause(self) -> &'static str {
        match self {
            Allowance::MePowerDownDrop => "TS 33.246 §6.1 (CR 001, CR 027): ME keys dropped at power-down",
            Allowance::CardMukCapacity => {
                "TS 31.102 §4.2.83, TS 33.220 Annex G: Ks_int_NAF kept per NAF on the card"
            }
        }
    }
}

/// One step of a run, on both paths.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The event.
    pub event: String,
    /// The UICC-based path.
    pub uicc: Observation,
    /// The ME-based path.
    pub me: Observation,
    /// When the observations differ: the allowance that covers it, if one does.
    pub allowed: Option<Allowance>,
}

impl Step {
    /// Whether the two observations differ and no allowance covers it.
    pub fn diverges(&self) -> bool {
        self.uicc != self.me && self.allowed.is_none()
    }
}

/// The other subscriber's profile, with a card of it for each path.
pub type SwappedCards = (CardProfile, [Box<dyn Reader>; 2]);

/// How the cards of a run are made.
pub trait CardSource {
    /// A powered card of the run's profile for the UICC-based path. A card that keeps its state
    /// between runs (a real card) gets the MSKs of [`KEY_GROUPS`] deleted by the runner first.
    fn uicc_card(&mut self) -> Result<Box<dyn Reader>>;
    /// A powered card for the ME-based path (used for its AKA only).
    fn me_card(&mut self) -> Result<Box<dyn Reader>>;
    /// A number that makes this run's RANDs (so B-TIDs, so MUK IDs) differ from earlier runs': a
    /// card that keeps its state must not see an earlier run's MUK IDs with their counters. Fresh
    /// cards need none (0 keeps a seed's run identical every time).
    fn run_nonce(&mut self) -> u16 {
        0
    }
    /// Cards of another subscriber than `current`, for both paths, with its profile; `None` when
    /// this source cannot swap cards.
    fn swap(&mut self, current: &CardProfile) -> Result<Option<SwappedCards>> {
        let _ = current;
        Ok(None)
    }
}

/// Emulated cards of `profile`, fresh for every run.
pub struct EmulatedCards(pub CardProfile);

impl CardSource for EmulatedCards {
    fn uicc_card(&mut self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(sim_reader::Emulator::new(&self.0)?))
    }

    fn me_card(&mut self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(sim_reader::Emulator::new(&self.0)?))
    }

    /// Fresh cards of the built-in callee subscriber, or of this source's profile when `current`
    /// is the callee.
    fn swap(&mut self, current: &CardProfile) -> Result<Option<SwappedCards>> {
        let callee = CardProfile::callee();
        let other = if current.iccid() == callee.iccid() { self.0.clone() } else { callee };
        let cards: [Box<dyn Reader>; 2] =
            [Box::new(sim_reader::Emulator::new(&other)?), Box::new(sim_reader::Emulator::new(&other)?)];
        Ok(Some((other, cards)))
    }
}

/// One path of a run.
struct Side {
    ue: PathUe<Box<dyn Reader>>,
    /// Its index among the recipients of every stream.
    recipient: usize,
    msk_sent: Vec<Vec<u8>>,
    rx: MbmsReceiver,
    /// MUKs the ME dropped at a power-down (by IDr), and MSKs it dropped.
    dropped_btids: BTreeSet<String>,
    dropped_msks: BTreeSet<String>,
    /// MSKs it dropped and got again: their MTK ID history is gone.
    repushed_msks: BTreeSet<String>,
}

/// The world of one run: both paths, the BM-SC streams, the network's HSS.
struct World {
    profile: CardProfile,
    sides: [Side; 2],
    streams: Vec<BmscStream>,
    rogue: BmscStream,
    mtk_sent: Vec<Vec<u8>>,
    hss: [Hss; 2],
    rand_counter: u8,
    nonce: u16,
    /// The ME key store file.
    store: std::path::PathBuf,
}

const ROGUE_SEED: [u8; 32] = [0x66; 32];

fn rand_for(nonce: u16, n: u8, side: usize) -> gba::Rand {
    let mut r =
        [0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35];
    r[12..14].copy_from_slice(&nonce.to_be_bytes());
    r[14] = n;
    r[15] ^= side as u8 + 1;
    r
}

fn msk_key(kd: KeyDomainId, msk_id: u32) -> String {
    format!("{}/{msk_id:08x}", hex::encode(kd.0))
}

fn refusal_class(e: &me::Error) -> String {
    match e {
        me::Error::MacFailure => "auth (MAC)".into(),
        me::Error::KeyFreshness => "freshness".into(),
        me::Error::NoMuk => "no MUK".into(),
        me::Error::KeyNotFound => "no key".into(),
        me::Error::MukExpired => "MUK expired".into(),
        me::Error::NoMskSpace => "no MSK space".into(),
        me::Error::NoMukSpace => "no MUK space".into(),
        me::Error::MalformedMikey { .. } => "malformed".into(),
        other => format!("other: {other}"),
    }
}

impl World {
    fn new(profile: &CardProfile, cards: &mut dyn CardSource, store: &Path) -> Result<Self> {
        let mut hss = [Hss::new(profile), Hss::new(profile)];
        let mut streams = Vec::new();
        for (i, group) in KEY_GROUPS.iter().enumerate() {
            let mut config = BmscStreamConfig::new(BMSC_FQDN, [0x40 + i as u8; 32]);
            config.key_group = *group;
            config.ssrc += i as u32;
            streams.push(BmscStream::new(config)?);
        }
        let mut rogue_config = BmscStreamConfig::new(BMSC_FQDN, ROGUE_SEED);
        rogue_config.key_group = KEY_GROUPS[0];
        let mut rogue = BmscStream::new(rogue_config)?;
        rogue.add_recipient(Muk::new([0x5A; 32]), "AAAAAAAAAAAAAAAAAAAAAA==@unknown.example.org");

        let nonce = cards.run_nonce();
        let mut sides = Vec::new();
        for (i, variant) in [GbaVariant::GbaU, GbaVariant::GbaMe].into_iter().enumerate() {
            let reader = if i == 0 { cards.uicc_card()? } else { cards.me_card()? };
            let (ue, boot) =
                paths::power_on(reader, profile, variant, rand_for(nonce, 0, i), &mut hss[i], store)?;
            let mut rx = MbmsReceiver::new();
            for (s, stream) in streams.iter_mut().enumerate() {
                let recipient = stream.add_recipient(Muk::new(*boot.muk.as_bytes()), &boot.btid);
                debug_assert_eq!(recipient, i);
                let cfg = stream.config();
                rx.add_stream(s as u32, cfg.key_domain_id, cfg.key_group, stream.srtp_policy())?;
            }
            sides.push(Side {
                ue,
                recipient: i,
                msk_sent: Vec::new(),
                rx,
                dropped_btids: BTreeSet::new(),
                dropped_msks: BTreeSet::new(),
                repushed_msks: BTreeSet::new(),
            });
        }
        let sides: [Side; 2] = sides.try_into().map_err(|_| Error::Other("two paths".into()))?;
        let mut world = World {
            profile: profile.clone(),
            sides,
            streams,
            rogue,
            mtk_sent: Vec::new(),
            hss,
            rand_counter: 0,
            nonce,
            store: store.to_owned(),
        };
        // A card that kept MSKs from earlier runs starts without them (it is a real card).
        for g in 0..KEY_GROUPS.len() {
            let kd = world.streams[g].config().key_domain_id;
            let _ = world.sides[0].ue.km.km().delete_msk(kd, KEY_GROUPS[g]);
        }
        Ok(world)
    }

    /// The MSKs a path holds, from EF.MSK on the card or from the ME key store.
    fn held_msks(side: &mut Side) -> Result<Vec<String>> {
        let mut held = Vec::new();
        match &side.ue.km {
            PathKm::Me(km) => {
                for m in km.store().msks() {
                    held.push(msk_key(m.key_domain_id, m.msk_id.0));
                }
            }
            PathKm::Uicc(_) => {
                let records = side.ue.card.record_shape(App::Usim, me::card::FID_USIM_MSK, "EF.MSK")?.1;
                for n in 1..=records {
                    let rec = side.ue.card.read_record(App::Usim, me::card::FID_USIM_MSK, n, "EF.MSK")?;
                    // TS 31.102 §4.2.80. Only the Key Groups compared here: a real card may hold the
                    // MSKs of other services, which no event of a history touches.
                    let Some(record) = uicc_vocab::ef::msk::MskRecord::parse(&rec) else { continue };
                    if !record.key_group().is_some_and(|g| KEY_GROUPS.contains(&g)) {
                        continue;
                    }
                    for pair in &record.pairs {
                        held.push(msk_key(KeyDomainId(record.key_domain_id), pair.msk_id));
                    }
                }
            }
        }
        held.sort();
        Ok(held)
    }

    /// Sends an MSK message to path `i`; `genuine` ones (as the BM-SC made them for this UE) are
    /// kept for later replays.
    fn msk_to(&mut self, i: usize, message: Vec<u8>, genuine: bool) -> Result<String> {
        let side = &mut self.sides[i];
        if genuine {
            side.msk_sent.push(message.clone());
        }
        Ok(match side.ue.km.km().msk_update(&message) {
            Ok(MskOutcome::Msk { key_domain_id, msk_id, .. }) => {
                let key = msk_key(key_domain_id, msk_id.0);
                if side.dropped_msks.remove(&key) {
                    side.repushed_msks.insert(key.clone());
                }
                format!("accepted MSK {key}")
            }
            Ok(MskOutcome::SolicitedPull { key_group, .. }) => {
                format!("accepted solicited pull, Key Group {key_group:04x}")
            }
            Err(e) => format!("refused: {}", refusal_class(&e)),
        })
    }

    fn mtk_to(&mut self, i: usize, message: &[u8]) -> Result<(String, Option<String>)> {
        let side = &mut self.sides[i];
        Ok(match side.ue.km.km().mtk_generate(message) {
            Ok(o) => {
                side.rx.add_mtk(&o)?;
                let mtk = format!(
                    "{}{}",
                    hex::encode(o.mtk.as_bytes()),
                    o.salt.as_ref().map(|s| hex::encode(s.as_bytes())).unwrap_or_default()
                );
                (format!("accepted MTK {}/{}", msk_key(o.key_domain_id, o.msk_id.0), o.mtk_id.0), Some(mtk))
            }
            Err(e) => (format!("refused: {}", refusal_class(&e)), None),
        })
    }

    fn power_cycle(&mut self, i: usize, keep: bool) -> Result<()> {
        let pin = self.profile.pin1().to_owned();
        let side = &mut self.sides[i];
        side.rx.clear_mtks()?;
        match &mut side.ue.km {
            PathKm::Me(km) => {
                let before: Vec<String> =
                    km.store().muks().iter().map(|m| String::from_utf8_lossy(&m.idr).into_owned()).collect();
                let msks: Vec<String> =
                    km.store().msks().iter().map(|m| msk_key(m.key_domain_id, m.msk_id.0)).collect();
                km.store_mut().power_down(keep)?;
                km.store_mut().reload()?;
                if !keep {
                    let kept: BTreeSet<String> = km
                        .store()
                        .muks()
                        .iter()
                        .map(|m| String::from_utf8_lossy(&m.idr).into_owned())
                        .collect();
                    side.dropped_btids.extend(before.into_iter().filter(|b| !kept.contains(b)));
                    side.dropped_msks.extend(msks);
                }
            }
            PathKm::Uicc(_) => {}
        }
        side.ue.card.with_session(|s| -> sim_reader::Result<()> {
            s.reader_mut().power_off()?;
            s.reader_mut().power_on()?;
            Ok(())
        })??;
        side.ue.card.verify_pin(&pin)?;
        Ok(())
    }

    fn rebootstrap(&mut self) -> Result<()> {
        self.rand_counter = self.rand_counter.wrapping_add(1);
        for i in 0..2 {
            let variant = if i == 0 { GbaVariant::GbaU } else { GbaVariant::GbaMe };
            let side = &mut self.sides[i];
            let impi = side.ue.impi.clone();
            let (boot, keys) = paths::bootstrap(
                &mut side.ue.gba,
                variant,
                &impi,
                rand_for(self.nonce, self.rand_counter, i),
                &mut self.hss[i],
            )?;
            if let PathKm::Me(km) = &mut side.ue.km {
                km.install_naf_keys(&keys)?;
            }
            for stream in &mut self.streams {
                stream.rekey_recipient(side.recipient, Muk::new(*boot.muk.as_bytes()), &boot.btid)?;
            }
        }
        Ok(())
    }

    /// Inserts the other subscriber's cards in both UEs. The ME keeps its key store: the old ME is
    /// switched off (its store closed) before the new card is bound to it.
    fn swap_cards(&mut self, cards: &mut dyn CardSource) -> Result<bool> {
        let Some((profile, readers)) = cards.swap(&self.profile)? else { return Ok(false) };
        self.rand_counter = self.rand_counter.wrapping_add(1);
        for (i, reader) in readers.into_iter().enumerate() {
            let variant = if i == 0 { GbaVariant::GbaU } else { GbaVariant::GbaMe };
            let mut hss = Hss::new(&profile);
            // The new card's power-on opens the ME key store again: close it first (the old ME's key
            // management is swapped for a stand-in that holds no file).
            let stand_in = PathKm::Uicc(me::UiccBased::new(self.sides[i].ue.card.clone()));
            drop(std::mem::replace(&mut self.sides[i].ue.km, stand_in));
            let (ue, boot) = paths::power_on(
                reader,
                &profile,
                variant,
                rand_for(self.nonce, self.rand_counter, i),
                &mut hss,
                &self.store,
            )?;
            let side = &mut self.sides[i];
            side.ue = ue;
            side.rx.clear_mtks()?;
            side.dropped_btids.clear();
            side.dropped_msks.clear();
            side.repushed_msks.clear();
            self.hss[i] = hss;
            for stream in &mut self.streams {
                stream.rekey_recipient(side.recipient, Muk::new(*boot.muk.as_bytes()), &boot.btid)?;
            }
        }
        self.profile = profile;
        Ok(true)
    }

    /// Runs `event` on both paths; returns the observations.
    fn step(&mut self, event: Event, pick: u64, cards: &mut dyn CardSource) -> Result<[Observation; 2]> {
        let mut outcome = [String::from("-"), String::from("-")];
        let mut mtk: [Option<String>; 2] = [None, None];
        match event {
            Event::MskPush(g) | Event::MskRepush(g) => {
                let s = usize::from(g);
                if matches!(event, Event::MskPush(_)) || self.streams[s].current_msk_id().is_none() {
                    self.streams[s].rotate_msk();
                }
                for i in 0..2 {
                    let m = self.streams[s].msk_message(i)?;
                    outcome[i] = self.msk_to(i, m, true)?;
                }
            }
            Event::MskReplay | Event::MskStale | Event::MskBadMac => {
                for i in 0..2 {
                    let sent = &self.sides[i].msk_sent;
                    let Some(last) = sent.last() else { continue };
                    let m = match event {
                        Event::MskReplay => last.clone(),
                        Event::MskStale if sent.len() >= 2 => {
                            sent[(pick as usize) % (sent.len() - 1)].clone()
                        }
                        Event::MskStale => continue,
                        _ => {
                            let mut m = last.clone();
                            if let Some(b) = m.last_mut() {
                                *b ^= 0x01;
                            }
                            m
                        }
                    };
                    outcome[i] = self.msk_to(i, m, false)?;
                }
            }
            Event::MskUnknownMuk(g) => {
                let _ = g;
                let rogue = &mut self.rogue;
                if rogue.current_msk_id().is_none() {
                    rogue.rotate_msk();
                }
                let m = rogue.msk_message(0)?;
                for i in 0..2 {
                    outcome[i] = self.msk_to(i, m.clone(), false)?;
                }
            }
            Event::Pull(g) => {
                for i in 0..2 {
                    let m = self.streams[usize::from(g)].solicited_pull(i)?;
                    outcome[i] = self.msk_to(i, m, true)?;
                }
            }
            Event::Mtk(g) => {
                let s = usize::from(g);
                if self.streams[s].current_msk_id().is_none() {
                    return self.observe(outcome, mtk);
                }
                let m = self.streams[s].next_mtk_message()?;
                self.mtk_sent.push(m.clone());
                for i in 0..2 {
                    (outcome[i], mtk[i]) = self.mtk_to(i, &m)?;
                }
            }
            Event::MtkReplay | Event::MtkOld | Event::MtkTampered => {
                let n = self.mtk_sent.len();
                let m = match event {
                    Event::MtkReplay if n >= 1 => self.mtk_sent[n - 1].clone(),
                    Event::MtkOld if n >= 2 => self.mtk_sent[(pick as usize) % (n - 1)].clone(),
                    Event::MtkTampered if n >= 1 => {
                        let mut m = self.mtk_sent[n - 1].clone();
                        // A byte of the KEMAC's encrypted key data, well before the MAC at the end.
                        let at = m.len().saturating_sub(40);
                        if let Some(b) = m.get_mut(at) {
                            *b ^= 0x80;
                        }
                        m
                    }
                    _ => return self.observe(outcome, mtk),
                };
                for i in 0..2 {
                    (outcome[i], mtk[i]) = self.mtk_to(i, &m)?;
                }
            }
            Event::MtkWrongMsk(_) => {
                if self.rogue.current_msk_id().is_none() {
                    self.rogue.rotate_msk();
                }
                let m = self.rogue.next_mtk_message()?;
                for i in 0..2 {
                    (outcome[i], mtk[i]) = self.mtk_to(i, &m)?;
                }
            }
            Event::DeleteMsk(g) => {
                let kd = self.streams[usize::from(g)].config().key_domain_id;
                for i in 0..2 {
                    outcome[i] = match self.sides[i].ue.km.km().delete_msk(kd, KEY_GROUPS[usize::from(g)]) {
                        Ok(()) => "deleted".into(),
                        Err(e) => format!("refused: {}", refusal_class(&e)),
                    };
                }
            }
            Event::PowerCycle { keep } => {
                for i in 0..2 {
                    self.power_cycle(i, keep)?;
                    outcome[i] = "powered off and on".into();
                }
            }
            Event::Rebootstrap => {
                self.rebootstrap()?;
                outcome = [String::from("bootstrapped"), String::from("bootstrapped")];
            }
            Event::CardSwap => {
                if self.swap_cards(cards)? {
                    outcome = [String::from("another card"), String::from("another card")];
                }
            }
        }
        self.observe(outcome, mtk)
    }

    fn observe(&mut self, outcome: [String; 2], mtk: [Option<String>; 2]) -> Result<[Observation; 2]> {
        // One SRTP packet of every stream that has an MTK, tried by both paths.
        let mut decrypts = [Vec::new(), Vec::new()];
        for (s, stream) in self.streams.iter_mut().enumerate() {
            if stream.current_mtk().is_none() {
                continue;
            }
            let (srtp, rtp) = stream.next_srtp_packet()?;
            for (i, side) in self.sides.iter_mut().enumerate() {
                let mut p = srtp.clone();
                decrypts[i].push(side.rx.unprotect(s as u32, &mut p).is_ok() && p == rtp);
            }
        }
        let [o0, o1] = outcome;
        let [m0, m1] = mtk;
        let [d0, d1] = decrypts;
        Ok([
            Observation { outcome: o0, mtk: m0, msks: Self::held_msks(&mut self.sides[0])?, decrypts: d0 },
            Observation { outcome: o1, mtk: m1, msks: Self::held_msks(&mut self.sides[1])?, decrypts: d1 },
        ])
    }

    /// Whether a difference between the observations is one the specifications allow.
    fn allowance(&mut self, event: Event, uicc: &Observation, me_obs: &Observation) -> Option<Allowance> {
        let both_refuse = uicc.outcome.starts_with("refused") && me_obs.outcome.starts_with("refused");
        if both_refuse
            && uicc.outcome == "refused: no MUK"
            && uicc.msks == me_obs.msks
            && uicc.decrypts == me_obs.decrypts
        {
            return Some(Allowance::CardMukCapacity);
        }
        let allowed = self.drop_allowance(event, uicc, me_obs);
        // An MSK the card took under a MUK the ME dropped is one more the ME lacks because of it.
        if allowed.is_some()
            && me_obs.outcome == "refused: no MUK"
            && let Some(key) = uicc.outcome.strip_prefix("accepted MSK ")
        {
            self.sides[1].dropped_msks.insert(key.to_owned());
        }
        allowed
    }

    fn drop_allowance(&self, event: Event, uicc: &Observation, me_obs: &Observation) -> Option<Allowance> {
        let me_side = &self.sides[1];
        let dropped = !me_side.dropped_msks.is_empty()
            || !me_side.dropped_btids.is_empty()
            || !me_side.repushed_msks.is_empty();
        if !dropped {
            return None;
        }
        // The MSKs the card holds beyond the ME's must be ones the ME dropped; none the other way.
        let me_held: BTreeSet<&String> = me_obs.msks.iter().collect();
        let card_held: BTreeSet<&String> = uicc.msks.iter().collect();
        if !me_held.is_subset(&card_held) && me_held != card_held {
            // The ME may hold a re-pushed MSK the card evicted in between: still explained only
            // by the drop when it is one of the re-pushed ones.
            if !me_held.difference(&card_held).all(|k| me_side.repushed_msks.contains(*k)) {
                return None;
            }
        }
        let just_taken =
            uicc.outcome.strip_prefix("accepted MSK ").filter(|_| me_obs.outcome == "refused: no MUK");
        if !card_held.difference(&me_held).all(|k| {
            me_side.dropped_msks.contains(*k)
                || me_side.repushed_msks.contains(*k)
                || just_taken == Some(k.as_str())
        }) {
            return None;
        }
        let outcomes_explained = uicc.outcome == me_obs.outcome
            || match event {
                // The card has the MSK (or the MTK ID history) the ME lost.
                Event::Mtk(_)
                | Event::MtkReplay
                | Event::MtkOld
                | Event::MtkTampered
                | Event::MtkWrongMsk(_) => {
                    me_obs.outcome == "refused: no key"
                        || (uicc.outcome == "refused: freshness"
                            && me_obs.outcome.starts_with("accepted MTK"))
                }
                // The card still has the MUK the ME dropped.
                Event::MskPush(_)
                | Event::MskRepush(_)
                | Event::MskReplay
                | Event::MskStale
                | Event::MskBadMac
                | Event::Pull(_) => me_obs.outcome == "refused: no MUK",
                // Nothing to delete in the ME after the drop.
                Event::DeleteMsk(_) => me_obs.outcome == "refused: no key" && uicc.outcome == "deleted",
                _ => false,
            };
        // Both refuse an older MUK's message, the card for its MUK capacity (see CardMukCapacity).
        if !outcomes_explained && uicc.outcome == "refused: no MUK" && me_obs.outcome.starts_with("refused") {
            return Some(Allowance::CardMukCapacity);
        }
        let mtk_explained = uicc.mtk == me_obs.mtk || uicc.outcome != me_obs.outcome;
        outcomes_explained.then_some(Allowance::MePowerDownDrop).filter(|_| mtk_explained)
    }
}

/// The result of one history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRun {
    /// Every step.
    pub steps: Vec<Step>,
}

impl HistoryRun {
    /// The first step that diverges, if any (index and step).
    pub fn first_divergence(&self) -> Option<(usize, &Step)> {
        self.steps.iter().enumerate().find(|(_, s)| s.diverges())
    }

    /// The allowances seen.
    pub fn allowances(&self) -> BTreeSet<Allowance> {
        self.steps.iter().filter(|s| s.uicc != s.me).filter_map(|s| s.allowed).collect()
    }
}

/// Runs `history` on both paths with fresh cards from `cards` and a fresh ME key store in `dir`.
pub fn run(
    history: &[Event],
    profile: &CardProfile,
    cards: &mut dyn CardSource,
    dir: &Path,
) -> Result<HistoryRun> {
    let store = dir.join("me-keys.bin");
    let _ = std::fs::remove_file(&store);
    let mut world = World::new(profile, cards, &store)?;
    let mut steps = Vec::with_capacity(history.len());
    for (n, &event) in history.iter().enumerate() {
        let [uicc, me_obs] = world.step(event, n as u64 * 7 + 3, cards)?;
        let allowed = if uicc == me_obs { None } else { world.allowance(event, &uicc, &me_obs) };
        steps.push(Step { event: event.to_string(), uicc, me: me_obs, allowed });
    }
    Ok(HistoryRun { steps })
}

/// The shortest history found that still diverges: the history cut after its first divergence,
/// then events removed (halves, quarters, … single events) while a divergence remains. At most
/// `budget` runs.
pub fn shrink(history: &[Event], mut diverges: impl FnMut(&[Event]) -> bool, budget: usize) -> Vec<Event> {
    let mut best = history.to_vec();
    let mut runs = 0;
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut removed = false;
        let mut at = 0;
        while at < best.len() && runs < budget {
            let end = (at + chunk).min(best.len());
            let candidate: Vec<Event> = best[..at].iter().chain(&best[end..]).copied().collect();
            runs += 1;
            if !candidate.is_empty() && diverges(&candidate) {
                best = candidate;
                removed = true;
            } else {
                at += chunk;
            }
        }
        if runs >= budget || (chunk == 1 && !removed) {
            return best;
        }
        if !removed {
            chunk = chunk.div_ceil(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_are_reproducible_and_round_trip_as_text() {
        assert_eq!(generate(7), generate(7));
        assert_ne!(generate(7), generate(8));
        for seed in 0..50 {
            let h = generate(seed);
            assert!((5..=MAX_STEPS).contains(&h.len()));
            assert_eq!(parse_history(&history_text(&h)).unwrap(), h);
        }
        assert!(parse_history("mtk:2").is_err());
        assert!(parse_history("mtk").is_err());
        assert!(parse_history("mtk-replay:0").is_err());
        assert!(parse_history("bogus").is_err());
    }

    #[test]
    fn shrinking_keeps_what_makes_it_fail() {
        // "Fails" when it holds a push of group 1 followed later by a replay.
        let fails = |h: &[Event]| {
            h.iter().position(|e| *e == Event::MskPush(1)).is_some_and(|p| h[p..].contains(&Event::MtkReplay))
        };
        let history = generate(3)
            .into_iter()
            .chain([Event::MskPush(1), Event::Mtk(0), Event::MtkReplay])
            .collect::<Vec<_>>();
        assert!(fails(&history));
        let short = shrink(&history, fails, 1000);
        assert_eq!(short, [Event::MskPush(1), Event::MtkReplay]);
    }
}
