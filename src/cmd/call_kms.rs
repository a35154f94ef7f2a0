//! `keysim call --security kms`: the network and the two UEs of KMS-based media plane security
//! (TS 33.328 §7.2.3, §7.3.3, Annexes A/B) — a BSF with both built-in subscribers, a KMS on
//! loopback, two emulated cards (the caller's default profile and the callee profile), both UEs
//! bootstrapped with GBA_U through their card.
// The `call` subcommand is the only user; other builds of the binary leave parts unused.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use me::kms::{KmsKeying, KmsUeConfig};
use me::{CallParties, GbaClient, GbaVariant, MediaKeying, MediaKeys, UbClient};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use network::kms::{Kms, KmsConfig};
use sim_reader::{CardProfile, Emulator};

/// The KMS FQDN of the simulated home network (its NAF FQDN and IDRkms).
pub(crate) const KMS_FQDN: &str = "kms.ims.mnc001.mcc001.3gppnetwork.org";

type Ue = Arc<Mutex<KmsKeying<Emulator>>>;

fn lock(ue: &Ue) -> MutexGuard<'_, KmsKeying<Emulator>> {
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
}

fn ue(profile: &CardProfile, bsf: &Bsf, kms: &Kms) -> Result<(Ue, String)> {
    let card = me::Card::new(Emulator::new(profile).context("emulated card")?);
    card.verify_pin(profile.pin1()).context("PIN1")?;
    let mut gba = GbaClient::new(card, GbaVariant::GbaU);
    let report = UbClient::new(&bsf.url())?.bootstrap(&mut gba, profile.impi()).context("GBA_U bootstrap")?;
    let cfg = KmsUeConfig::new(&kms.url(), KMS_FQDN, profile.impi());
    Ok((Arc::new(Mutex::new(KmsKeying::new(gba, cfg)?)), report.btid))
}

impl KmsSetup {
    /// Starts the BSF and the KMS and bootstraps both UEs.
    pub(crate) fn start() -> Result<KmsSetup> {
        let caller_profile = CardProfile::default();
        let callee_profile = CardProfile::callee();
        let subscribers = [&caller_profile, &callee_profile]
            .iter()
            .map(|p| Subscriber::from_profile_toml(&p.to_toml()))
            .collect::<Result<Vec<_>, _>>()?;
        let bsf = Bsf::start(BsfConfig { subscribers, ..BsfConfig::default() }).context("BSF")?;
        let kms = Kms::start(KmsConfig::new(KMS_FQDN, bsf.addr(), None)).context("KMS")?;
        let (caller, a) = ue(&caller_profile, &bsf, &kms).context("caller UE")?;
        let (callee, b) = ue(&callee_profile, &bsf, &kms).context("callee UE")?;
        Ok(KmsSetup { bsf, kms, caller, callee, btids: [a, b] })
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
        let side = |ue: &Ue, btid: &str| {
            let k = lock(ue);
            serde_json::json!({
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
            "caller": side(&self.caller, &self.btids[0]),
            "callee": side(&self.callee, &self.btids[1]),
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
        assert_eq!(r["caller"]["counters"]["ticket_requests"], 1);
        assert_eq!(r["callee"]["counters"]["resolves"], 1);
        s.shutdown();
    }
}
