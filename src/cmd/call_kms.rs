//! `keysim call --security kms`: the network and the two UEs of KMS-based media plane security
//! (TS 33.328 §7.2.3, §7.3.3, Annexes A/B) — a BSF with both built-in subscribers, a KMS on
//! loopback, the caller's card (emulated from a profile, or the card in a PC/SC reader whose keys
//! the profile gives to the BSF) and the emulated callee card, both UEs bootstrapped with GBA_U
//! through their card.
// The `call` subcommand is the only user; other builds of the binary leave parts unused.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use me::kms::{KmsKeying, KmsUeConfig};
use me::{CallParties, GbaClient, GbaVariant, MediaKeying, MediaKeys, UbClient};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use network::kms::{Kms, KmsConfig};
use sim_reader::trace::Traced;
use sim_reader::{CardProfile, Emulator, PcscReader, Reader, ReaderSelector};

use crate::cli::TraceArgs;

/// The KMS FQDN of the simulated home network (its NAF FQDN and IDRkms).
pub(crate) const KMS_FQDN: &str = "kms.ims.mnc001.mcc001.3gppnetwork.org";

/// A UE's card: emulated or in a PC/SC reader, with the APDU trace sinks asked for.
type CardReader = Traced<Box<dyn Reader + Send>>;

type Ue = Arc<Mutex<KmsKeying<CardReader>>>;

fn lock(ue: &Ue) -> MutexGuard<'_, KmsKeying<CardReader>> {
    ue.lock().unwrap_or_else(|e| e.into_inner())
}

/// A UE's keying handed to the call while the setup keeps reading its counters.
struct SharedKeying(Ue);

impl MediaKeying for SharedKeying {
    fn name(&self) -> &'static str {
        "kms"
    }

    fn offer(&mut self, call: &CallParties) -> me::Result<Vec<String>> {
        lock(&self.0).offer(call)
    }

    fn answer(&mut self, call: &CallParties, offer: &[String]) -> me::Result<(Vec<String>, MediaKeys)> {
        lock(&self.0).answer(call, offer)
    }

    fn complete(&mut self, call: &CallParties, answer: &[String]) -> me::Result<MediaKeys> {
        lock(&self.0).complete(call, answer)
    }
}

/// The KMS network and both UEs.
pub(crate) struct KmsSetup {
    bsf: Bsf,
    kms: Kms,
    caller: Ue,
    callee: Ue,
    btids: [String; 2],
    /// Each card: the PC/SC reader's name, or "emulated".
    cards: [String; 2],
}

/// The caller's card: its profile (the keys the BSF holds, its IMPI, IMPU and PIN1), the PC/SC
/// reader it is in (by index or by a substring of the name; `None`: emulated from the profile), and
/// where its APDUs are traced.
pub(crate) struct CallerCard<'a> {
    pub(crate) profile: CardProfile,
    pub(crate) reader: Option<&'a str>,
    pub(crate) trace: &'a TraceArgs,
}

/// Opens (and powers) the card: the one in the named PC/SC reader, or one emulated from `profile`.
/// Returns it with its name for the report.
fn open_card(profile: &CardProfile, reader: Option<&str>, trace: &TraceArgs) -> Result<(CardReader, String)> {
    match reader {
        Some(name) => {
            let selector: ReaderSelector = name.parse().unwrap_or(ReaderSelector::Name(name.to_owned()));
            let r = PcscReader::open(&selector).with_context(|| format!("opening reader {name}"))?;
            let reader_name = r.reader_name().to_string_lossy().into_owned();
            let mut card = super::card::traced(Box::new(r) as Box<dyn Reader + Send>, trace)?;
            card.power_on().with_context(|| format!("powering the card in {reader_name} on"))?;
            Ok((card, reader_name))
        }
        None => {
            let emulator = Emulator::new(profile).context("emulated card")?;
            Ok((super::card::traced(Box::new(emulator) as Box<dyn Reader + Send>, trace)?, "emulated".into()))
        }
    }
}

fn ue(card: CardReader, profile: &CardProfile, bsf: &Bsf, kms: &Kms) -> Result<(Ue, String)> {
    let card = me::Card::new(card);
    card.verify_pin(profile.pin1()).context("PIN1")?;
    let mut gba = GbaClient::new(card, GbaVariant::GbaU);
    let report = UbClient::new(&bsf.url())?.bootstrap(&mut gba, profile.impi()).context("GBA_U bootstrap")?;
    let cfg = KmsUeConfig::new(&kms.url(), KMS_FQDN, profile.impi());
    Ok((Arc::new(Mutex::new(KmsKeying::new(gba, cfg)?)), report.btid))
}

impl KmsSetup {
    /// Starts the BSF and the KMS and bootstraps both UEs, the caller on the built-in profile's
    /// emulated card.
    pub(crate) fn start() -> Result<KmsSetup> {
        Self::start_with(CallerCard {
            profile: CardProfile::default(),
            reader: None,
            trace: &TraceArgs::default(),
        })
    }

    /// Opens the caller's card (before anything starts, so a missing reader fails first), starts
    /// the BSF with the caller's and the callee's subscriptions and the KMS, and bootstraps both UEs.
    pub(crate) fn start_with(caller_card: CallerCard<'_>) -> Result<KmsSetup> {
        let CallerCard { profile: caller_profile, reader, trace } = caller_card;
        let (caller_reader, caller_name) =
            open_card(&caller_profile, reader, trace).context("caller card")?;
        let callee_profile = CardProfile::callee();
        // A captured call has both cards' APDUs: the callee's go to the capture's GSMTAP too.
        let callee_trace = TraceArgs {
            gsmtap: trace.gsmtap.clone().filter(|t| t == crate::capture::GSMTAP_TARGET),
            ..TraceArgs::default()
        };
        let (callee_reader, callee_name) =
            open_card(&callee_profile, None, &callee_trace).context("callee card")?;
        let subscribers = [&caller_profile, &callee_profile]
            .iter()
            .map(|p| Subscriber::from_profile_toml(&p.to_toml()))
            .collect::<Result<Vec<_>, _>>()?;
        let bsf = Bsf::start(BsfConfig { subscribers, ..BsfConfig::default() }).context("BSF")?;
        let kms = Kms::start(KmsConfig::new(KMS_FQDN, bsf.addr(), None)).context("KMS")?;
        let (caller, a) = ue(caller_reader, &caller_profile, &bsf, &kms).context("caller UE")?;
        let (callee, b) = ue(callee_reader, &callee_profile, &bsf, &kms).context("callee UE")?;
        Ok(KmsSetup { bsf, kms, caller, callee, btids: [a, b], cards: [caller_name, callee_name] })
    }

    /// The caller's (offerer's) keying.
    pub(crate) fn caller_keying(&mut self) -> Result<Box<dyn MediaKeying + Send>> {
        Ok(Box::new(SharedKeying(self.caller.clone())))
    }

    /// The callee's (answerer's) keying.
    pub(crate) fn callee_keying(&mut self) -> Result<Box<dyn MediaKeying + Send>> {
        Ok(Box::new(SharedKeying(self.callee.clone())))
    }

    /// Ticket requests, resolves, reuse, the KMS's counters and the GBA path of each UE.
    pub(crate) fn report(&self) -> serde_json::Value {
        let side = |ue: &Ue, btid: &str, card: &str| {
            let k = lock(ue);
            serde_json::json!({
                "card": card,
                "gba": match k.variant() { GbaVariant::GbaU => "GBA_U", GbaVariant::GbaMe => "GBA_ME" },
                "naf_key": match k.variant() { GbaVariant::GbaU => "Ks_ext_NAF (card)", GbaVariant::GbaMe => "Ks_NAF (ME)" },
                "btid": btid,
                "counters": serde_json::to_value(k.stats()).unwrap_or_default(),
            })
        };
        serde_json::json!({
            "kms": {
                "fqdn": self.kms.fqdn(),
                "url": self.kms.url(),
                "counters": serde_json::to_value(self.kms.stats()).unwrap_or_default(),
            },
            "bsf": { "url": self.bsf.url() },
            "caller": side(&self.caller, &self.btids[0], &self.cards[0]),
            "callee": side(&self.callee, &self.btids[1], &self.cards[1]),
        })
    }

    /// Stops the KMS and the BSF.
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.kms.shutdown() {
            tracing::warn!("KMS shutdown: {e}");
        }
        if let Err(e) = self.bsf.shutdown() {
            tracing::warn!("BSF shutdown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API `keysim call --security kms` uses: one call's offer, answer and completion give
    /// both ends the same keys, and the report shows the ticket request, the resolve and GBA_U.
    #[test]
    fn setup_keys_a_call_and_reports() {
        let mut s = KmsSetup::start().unwrap();
        let mut caller = s.caller_keying().unwrap();
        let mut callee = s.callee_keying().unwrap();
        let call = CallParties {
            caller: CardProfile::default().impu()[0].clone(),
            callee: CardProfile::callee().impu()[0].clone(),
            call_id: "c1@127.0.0.1".into(),
        };
        let offer = caller.offer(&call).unwrap();
        let (answer, kb) = callee.answer(&call, &offer).unwrap();
        let ka = caller.complete(&call, &answer).unwrap();
        assert_eq!(ka.send.master.key, kb.recv.master.key);
        assert_eq!(ka.recv.master.salt, kb.send.master.salt);
        let r = s.report();
        assert_eq!(r["kms"]["counters"]["tickets_issued"], 1);
        assert_eq!(r["kms"]["counters"]["tickets_resolved"], 1);
        assert_eq!(r["caller"]["gba"], "GBA_U");
        assert_eq!(r["caller"]["card"], "emulated");
        assert_eq!(r["callee"]["card"], "emulated");
        assert_eq!(r["caller"]["counters"]["ticket_requests"], 1);
        assert_eq!(r["callee"]["counters"]["resolves"], 1);
        s.shutdown();
    }
}
