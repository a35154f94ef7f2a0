//! ME-based MBMS key management (TS 33.246 §6.1, §6.3): MUK and MRK derived from Ks_(ext)_NAF,
//! MIKEY MSK and MTK messages verified in the ME (MGV-F) and their keys kept in the ME key store
//! (MGV-S), with the same checks as the card:
//!
//! * the MUK is found by IDi (BM-SC FQDN) and IDr (B-TID);
//! * a MUK whose key lifetime lies before the message's NTP-UTC time is expired: it verifies only a
//!   solicited pull, and only when it is the last successfully used MUK of that BM-SC;
//! * the MAC is verified before the counters are compared (the card's order);
//! * the MSK message's timestamp must be greater than the MUK's counter;
//! * at most [`MSKS_PER_KEY_GROUP`] MSKs per Key Domain and Key Group (a further one deletes the
//!   older);
//! * an MTK ID must be greater than the last one accepted under its MSK (the first one may be any).
//!
//! A refused message changes nothing, neither in memory nor in the file.

use mikey::mbms::{self, KeyDomainId, MskUpdate, Muk, is_fresh};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::gba_client::NafKeys;
use crate::key_management::{KeyManagementPath, MbmsKeyManagement, MskOutcome, MtkOutcome, malformed};
use crate::key_store::{KeyStore, StoredMrk, StoredMtk, StoredMuk};
use uicc_vocab::open_values::{EXPIRED_MUK_FOR_SOLICITED_PULL, FIRST_MTK_ID_ANY, MSKS_PER_KEY_GROUP};

use crate::open_values::{is_expired, parse_key_lifetime};

/// Largest verification message the ME builds.
const VERIFICATION_MAX: usize = 512;

/// The ME-based key management over the ME key store.
#[derive(Debug)]
pub struct MeBased {
    store: KeyStore,
}

impl MeBased {
    /// Key management keeping its keys in `store` (already bound to the card with
    /// [`KeyStore::on_card_inserted`]).
    pub fn new(store: KeyStore) -> Self {
        MeBased { store }
    }

    /// The key store.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// The key store, mutably (card insertion, power-down).
    pub fn store_mut(&mut self) -> &mut KeyStore {
        &mut self.store
    }

    /// Gives the key store back.
    pub fn into_store(self) -> KeyStore {
        self.store
    }

    /// Power-down: see [`KeyStore::power_down`].
    pub fn power_down(mut self, keep: bool) -> Result<()> {
        self.store.power_down(keep)
    }

    /// Installs the MUK and MRK derived from the NAF keys of a bootstrap for the BM-SC `naf_keys`
    /// was derived for (IDi = its FQDN, IDr = the B-TID). Saves the store.
    pub fn install_naf_keys(&mut self, naf_keys: &NafKeys) -> Result<()> {
        let idi = naf_keys.naf_id.fqdn().as_bytes().to_vec();
        let idr = naf_keys.btid.as_bytes().to_vec();
        check_lifetime(&naf_keys.lifetime)?;
        let muk = naf_keys.me_based_muk();
        self.store.put_mrk(StoredMrk {
            idi: idi.clone(),
            idr: idr.clone(),
            mrk: naf_keys.mrk(false),
            lifetime: naf_keys.lifetime.clone(),
        });
        self.install_muk(&idi, &idr, muk, &naf_keys.lifetime)
    }

    /// Installs a MUK for (IDi, IDr) with its key lifetime (`YYYY-MM-DDThh:mm:ssZ`). Saves the store.
    pub fn install_muk(&mut self, idi: &[u8], idr: &[u8], muk: Muk, lifetime: &str) -> Result<()> {
        check_lifetime(lifetime)?;
        if idi.is_empty() || idr.is_empty() {
            return Err(Error::InvalidInput("IDi and IDr must not be empty".into()));
        }
        self.store.put_muk(StoredMuk {
            idi: idi.to_vec(),
            idr: idr.to_vec(),
            muk,
            lifetime: lifetime.to_owned(),
            ts_counter: None,
            last_used: false,
        });
        self.store.save()
    }

    /// The MRK for the BM-SC `idi` and B-TID `idr`, if stored.
    pub fn mrk(&self, idi: &[u8], idr: &[u8]) -> Option<&gba::Mrk> {
        self.store.mrks().iter().find(|m| m.idi == idi && m.idr == idr).map(|m| &m.mrk)
    }
}

fn check_lifetime(lifetime: &str) -> Result<()> {
    parse_key_lifetime(lifetime.as_bytes()).map(|_| ()).ok_or_else(|| {
        Error::InvalidInput(format!("key lifetime '{lifetime}' is no YYYY-MM-DDThh:mm:ssZ time"))
    })
}

impl MbmsKeyManagement for MeBased {
    fn path(&self) -> KeyManagementPath {
        KeyManagementPath::MeBased
    }

    fn msk_update(&mut self, mikey: &[u8]) -> Result<MskOutcome> {
        let msg = mbms::parse_msk_message(mikey).map_err(malformed)?;
        let (idi, idr) = (msg.idi().data, msg.idr().data);
        let stored = self.store.muk(idi, idr).ok_or(Error::NoMuk)?;
        // An unreadable lifetime cannot be installed, so this reads; refuse rather than guess.
        let lifetime = parse_key_lifetime(stored.lifetime.as_bytes()).ok_or(Error::MukExpired)?;
        if is_expired(lifetime, &msg.timestamp())
            && !(EXPIRED_MUK_FOR_SOLICITED_PULL && msg.is_solicited_pull() && stored.last_used)
        {
            return Err(Error::MukExpired);
        }
        // The card's order: MAC, then freshness.
        let update = mbms::verify_and_decrypt_msk(&stored.muk, &msg)?;
        if let Some(counter) = stored.ts_counter
            && !is_fresh(msg.timestamp().as_u64(), counter)
        {
            return Err(Error::KeyFreshness);
        }
        let verification = if msg.v_bit() {
            let mut buf = Zeroizing::new([0u8; VERIFICATION_MAX]);
            let n = mbms::build_verification_message(&stored.muk, &msg, &mut buf[..])?;
            Some(buf[..n].to_vec())
        } else {
            None
        };
        // Verified: record the counter and the last used MUK, then store the MSK.
        if let Some(m) = self.store.muk_mut(idi, idr) {
            m.ts_counter = Some(msg.timestamp().as_u64());
        }
        self.store.mark_muk_used(idi, idr);
        let outcome = match update {
            MskUpdate::Msk(d) => {
                let (key_domain_id, msk_id) = (d.key_domain_id, d.msk_id);
                self.store.put_msk(key_domain_id, msk_id, d.msk, MSKS_PER_KEY_GROUP);
                MskOutcome::Msk { key_domain_id, msk_id, verification }
            }
            MskUpdate::SolicitedPull(p) => MskOutcome::SolicitedPull {
                key_domain_id: p.key_domain_id,
                key_group: p.key_group,
                verification,
            },
        };
        self.store.save()?;
        Ok(outcome)
    }

    fn mtk_generate(&mut self, mikey: &[u8]) -> Result<MtkOutcome> {
        let msg = mbms::parse_mtk_message(mikey).map_err(malformed)?;
        let (kd, msk_id, mtk_id) = (msg.key_domain_id(), msg.msk_id(), msg.mtk_id());
        let stored = self.store.msk(kd, msk_id).ok_or(Error::KeyNotFound)?;
        // The card's order: MAC, then freshness.
        let d = mbms::verify_and_decrypt_mtk(&stored.msk, &msg)?;
        match stored.last_mtk_id {
            Some(last)
                if !is_fresh(u64::from(mtk_id.0), u64::from(last.0))
                    && planted::get() != Some(planted::Defect::StaleMtkIdAccepted) =>
            {
                return Err(Error::KeyFreshness);
            }
            None if !FIRST_MTK_ID_ANY && mtk_id.0 == 0 => return Err(Error::KeyFreshness),
            _ => {}
        }
        if let Some(m) = self.store.msk_mut(kd, msk_id) {
            m.last_mtk_id = Some(mtk_id);
        }
        let copy = |d: &mbms::MtkDelivery| StoredMtk {
            key_domain_id: kd,
            msk_id,
            mtk_id,
            mtk: mbms::Mtk::new(*d.mtk.as_bytes()),
            salt: d.salt.as_ref().map(|s| mbms::MtkSalt::new(*s.as_bytes())),
        };
        self.store.put_mtk(copy(&d));
        self.store.save()?;
        Ok(MtkOutcome { key_domain_id: kd, msk_id, mtk_id, mtk: d.mtk, salt: d.salt })
    }

    fn delete_msk(&mut self, key_domain_id: KeyDomainId, key_group: u16) -> Result<()> {
        if self.store.remove_msks(key_domain_id, key_group) == 0 {
            return Err(Error::KeyNotFound);
        }
        self.store.save()
    }

    fn delete_muk(&mut self, idi: &[u8], idr: &[u8]) -> Result<()> {
        if !self.store.remove_muk(idi, idr) {
            return Err(Error::KeyNotFound);
        }
        self.store.save()
    }
}

/// Defects planted on purpose, to show that the differential validation of the two paths finds
/// and shrinks a divergence (`keysim compare --random … --plant …`). Off unless set on the calling
/// thread. Not a stable API.
#[doc(hidden)]
pub mod planted {
    use std::cell::Cell;

    /// A planted defect of the ME-based path.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Defect {
        /// An MTK message whose MTK ID is not above the last accepted one is accepted.
        StaleMtkIdAccepted,
    }

    thread_local! {
        static DEFECT: Cell<Option<Defect>> = const { Cell::new(None) };
    }

    /// Plants `defect` on this thread (or removes it with `None`).
    pub fn set(defect: Option<Defect>) {
        DEFECT.with(|d| d.set(defect));
    }

    pub(crate) fn get() -> Option<Defect> {
        DEFECT.with(Cell::get)
    }
}
