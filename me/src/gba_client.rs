//! The ME's GBA client (TS 33.220 §4.5.2, §5.3.2, Annex G) in both variants, shaped as the steps
//! the Ub HTTP layer calls:
//!
//! 1. [`GbaClient::bootstrap`] with RAND and AUTN(*) from the BSF's 401 → RES, AUTS or MAC failure;
//! 2. [`GbaClient::complete_bootstrap`] with the B-TID and key lifetime of the BSF's 200 OK;
//! 3. [`GbaClient::naf_keys`] for each NAF.
//!
//! * **GBA_U**: the card runs the bootstrap (AUTHENTICATE GBA context, Bootstrapping Mode) and the
//!   NAF derivation (NAF Derivation Mode); Ks never leaves it. The ME writes B-TID and lifetime into
//!   EF.GBABP after the card's RAND (TS 31.102 §4.2.79; `docs/card-interface.md`).
//! * **GBA_ME**: the card runs plain 3G AKA (AUTHENTICATE 3G context); the ME keeps
//!   Ks = CK ‖ IK with RAND, B-TID and lifetime, and derives Ks_NAF itself (Annex B.3).

use gba::{Auts, BTid, Ks, KsExtNaf, KsNaf, Mrk, Muk, NafId, Rand};
use sim_reader::Reader;
use zeroize::Zeroizing;

use uicc_vocab::authenticate::{
    self as framing, P2_3G_CONTEXT, P2_GBA_CONTEXT, TAG_SUCCESS, TAG_SYNC_FAILURE,
};
use uicc_vocab::ef::gbabp;
use uicc_vocab::lv;

use crate::card::{App, Card, FID_USIM_GBABP};
use crate::error::{Error, Result};

/// RAND and AUTN lengths on the wire and in EF.GBABP (TS 33.102 §6.3.2).
pub use uicc_vocab::ef::{AUTN_LEN, RAND_LEN};
/// Longest B-TID or key lifetime the ME writes: one length byte each in EF.GBABP.
pub const GBABP_FIELD_MAX: usize = 255;

/// Which GBA the ME runs (TS 33.220 §4, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GbaVariant {
    /// GBA_U: Ks on the card, Ks_ext_NAF to the ME, Ks_int_NAF kept on the card.
    GbaU,
    /// GBA_ME: Ks and Ks_NAF in the ME.
    GbaMe,
}

/// What the card said to a bootstrap challenge, for the HTTP digest answer to the BSF.
#[derive(Clone)]
pub enum BootstrapOutcome {
    /// AKA succeeded: RES is the digest password (RFC 3310).
    Res(Zeroizing<Vec<u8>>),
    /// Synchronisation failure: send AUTS to the BSF (RFC 3310 `auts`).
    Auts(Auts),
    /// AUTN did not verify (`98 62`): the network is not authentic, or a GBA_U challenge reached the
    /// 3G context.
    MacFailure,
}

impl core::fmt::Debug for BootstrapOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootstrapOutcome::Res(r) => write!(f, "Res({} bytes)", r.len()),
            BootstrapOutcome::Auts(a) => write!(f, "Auts({a:?})"),
            BootstrapOutcome::MacFailure => f.write_str("MacFailure"),
        }
    }
}

/// The NAF-specific key of one derivation.
#[derive(Debug, Clone)]
pub enum NafKey {
    /// GBA_U: Ks_ext_NAF from the card.
    KsExtNaf(KsExtNaf),
    /// GBA_ME: Ks_NAF computed in the ME.
    KsNaf(KsNaf),
}

impl NafKey {
    /// The 32 key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        match self {
            NafKey::KsExtNaf(k) => k.expose(),
            NafKey::KsNaf(k) => k.expose(),
        }
    }
}

/// The NAF keys of one derivation, with the bootstrap they come from.
#[derive(Debug, Clone)]
pub struct NafKeys {
    /// The NAF_Id derived for.
    pub naf_id: NafId,
    /// B-TID of the bootstrap.
    pub btid: String,
    /// Key lifetime of the bootstrap, as the BSF sent it.
    pub lifetime: String,
    /// Ks_ext_NAF (GBA_U) or Ks_NAF (GBA_ME).
    pub key: NafKey,
}

impl NafKeys {
    /// The MRK (TS 33.246 §6.1): Ks_ext_NAF itself after GBA_U with UICC-based key management;
    /// derived from Ks_NAF (or Ks_ext_NAF) when the keys are managed in the ME.
    pub fn mrk(&self, uicc_based: bool) -> Mrk {
        match (&self.key, uicc_based) {
            (NafKey::KsExtNaf(k), true) => gba::mbms_keys::uicc_based_mrk(k),
            (key, _) => gba::mbms_keys::me_based_mrk(&KsNaf::new(*key.expose())),
        }
    }

    /// The ME-based MUK derived from Ks_(ext)_NAF (TS 33.246 §6.1: "In any other circumstance ...
    /// the ME derives MUK and MRK").
    pub fn me_based_muk(&self) -> Muk {
        gba::mbms_keys::me_based_muk(&KsNaf::new(*self.key.expose()))
    }
}

/// GBA_ME state in the ME: Ks with its RAND, then B-TID and lifetime.
struct MeBootstrap {
    rand: Rand,
    ks: Ks,
    btid: Option<String>,
    lifetime: Option<String>,
}

/// The GBA client over a shared card handle.
pub struct GbaClient<R> {
    card: Card<R>,
    variant: GbaVariant,
    me: Option<MeBootstrap>,
}

impl<R> core::fmt::Debug for GbaClient<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GbaClient")
            .field("variant", &self.variant)
            .field("me_bootstrap", &self.me.as_ref().map(|m| m.btid.as_deref()))
            .finish_non_exhaustive()
    }
}

impl<R: Reader> GbaClient<R> {
    /// A client of `variant` on `card`. GBA runs on the USIM (MBMS, the reason for GBA_U here, is a
    /// USIM context).
    pub fn new(card: Card<R>, variant: GbaVariant) -> Self {
        GbaClient { card, variant, me: None }
    }

    /// The variant.
    pub fn variant(&self) -> GbaVariant {
        self.variant
    }

    /// The card.
    pub fn card(&self) -> &Card<R> {
        &self.card
    }

    /// VERIFY PIN1; AUTHENTICATE and EF.GBABP need it.
    pub fn verify_pin(&self, pin: &str) -> Result<()> {
        self.card.verify_pin(pin)
    }

    /// Runs AKA on the card for a BSF challenge: GBA Bootstrapping Mode (`DD`, GBA_U, AUTN* as
    /// received) or the 3G context (GBA_ME).
    pub fn bootstrap(&mut self, rand: &Rand, autn: &[u8; AUTN_LEN]) -> Result<BootstrapOutcome> {
        let data = match self.variant {
            GbaVariant::GbaU => framing::encode_gba_bootstrap(rand, autn).to_vec(),
            GbaVariant::GbaMe => framing::encode_rand_autn(rand, autn).to_vec(),
        };
        let (p2, command) = match self.variant {
            GbaVariant::GbaU => (P2_GBA_CONTEXT, "AUTHENTICATE (GBA bootstrapping)"),
            GbaVariant::GbaMe => (P2_3G_CONTEXT, "AUTHENTICATE (3G)"),
        };
        let r = self.card.authenticate_even(App::Usim, p2, &data)?;
        let r = Zeroizing::new(r);
        let bad = |reason| Error::CardResponse { command, reason };
        match r.sw {
            0x9000 => {}
            0x9862 => return Ok(BootstrapOutcome::MacFailure),
            0x6982 => return Err(Error::PinRequired),
            0x9864 => return Err(Error::ContextNotSupported),
            sw => return Err(Error::CardStatus { command, sw }),
        }
        match r.data.split_first() {
            Some((&TAG_SYNC_FAILURE, rest)) => {
                let auts = lv(rest).ok_or(bad("truncated AUTS"))?.0;
                Ok(BootstrapOutcome::Auts(Auts::parse(auts).map_err(|_| bad("AUTS is not 14 bytes"))?))
            }
            Some((&TAG_SUCCESS, rest)) => {
                let (res, rest) = lv(rest).ok_or(bad("truncated RES"))?;
                if !(4..=16).contains(&res.len()) {
                    return Err(bad("RES is not 4 to 16 bytes"));
                }
                let res = Zeroizing::new(res.to_vec());
                if self.variant == GbaVariant::GbaMe {
                    let (ck, rest) = lv(rest).ok_or(bad("truncated CK"))?;
                    let (ik, _kc) = lv(rest).ok_or(bad("truncated IK"))?;
                    let ck = gba::Ck::from_slice(ck).map_err(|_| bad("CK is not 16 bytes"))?;
                    let ik = gba::Ik::from_slice(ik).map_err(|_| bad("IK is not 16 bytes"))?;
                    self.me = Some(MeBootstrap {
                        rand: *rand,
                        ks: Ks::from_ck_ik(&ck, &ik),
                        btid: None,
                        lifetime: None,
                    });
                } else if !rest.is_empty() {
                    // TS 31.102 §7.1.2.3: the GBA bootstrap answer is RES only; CK/IK never leave.
                    return Err(bad("data after RES in a GBA_U bootstrap response"));
                }
                Ok(BootstrapOutcome::Res(res))
            }
            _ => Err(bad("neither DB nor DC")),
        }
    }

    /// Stores the B-TID and key lifetime of the BSF's answer: into EF.GBABP after the RAND the card
    /// wrote (GBA_U), or into the ME's bootstrap (GBA_ME). The B-TID must name the bootstrap's RAND.
    pub fn complete_bootstrap(&mut self, btid: &str, lifetime: &str) -> Result<()> {
        if btid.len() > GBABP_FIELD_MAX || lifetime.len() > GBABP_FIELD_MAX {
            return Err(Error::InvalidInput("B-TID and lifetime are at most 255 bytes each".into()));
        }
        let parsed = BTid::parse(btid.as_bytes())?;
        match self.variant {
            GbaVariant::GbaU => {
                let gbabp = self.card.read_transparent(Some(App::Usim), FID_USIM_GBABP)?;
                let rand = gbabp::rand(&gbabp).ok_or(Error::NoBootstrap("EF.GBABP holds no RAND"))?;
                if rand.len() != RAND_LEN || rand != parsed.rand() {
                    return Err(Error::InvalidInput(
                        "the B-TID does not name the card's bootstrap RAND".into(),
                    ));
                }
                let mut data = vec![0; 2 + btid.len() + lifetime.len()];
                gbabp::encode_b_tid_lifetime(btid.as_bytes(), lifetime.as_bytes(), &mut data).map_err(
                    |_| Error::InvalidInput("B-TID and lifetime are at most 255 bytes each".into()),
                )?;
                let offset = gbabp::b_tid_offset(rand.len()) as u16;
                self.card.update_binary(App::Usim, FID_USIM_GBABP, offset, &data)
            }
            GbaVariant::GbaMe => {
                let me = self.me.as_mut().ok_or(Error::NoBootstrap("complete_bootstrap"))?;
                if parsed.rand() != me.rand {
                    return Err(Error::InvalidInput("the B-TID does not name the bootstrap RAND".into()));
                }
                me.btid = Some(btid.to_owned());
                me.lifetime = Some(lifetime.to_owned());
                Ok(())
            }
        }
    }

    /// The B-TID and lifetime of the current bootstrap: from EF.GBABP (GBA_U) or the ME (GBA_ME).
    pub fn bootstrap_info(&self) -> Result<(String, String)> {
        match self.variant {
            GbaVariant::GbaU => {
                let gbabp = self.card.read_transparent(Some(App::Usim), FID_USIM_GBABP)?;
                let fields = gbabp::parse(&gbabp).ok_or(Error::NoBootstrap("EF.GBABP"))?;
                let (btid, lifetime) = (fields.b_tid, fields.lifetime);
                if btid.is_empty() || lifetime.is_empty() {
                    return Err(Error::NoBootstrap("EF.GBABP"));
                }
                let text =
                    |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::NoBootstrap("EF.GBABP"));
                Ok((text(btid)?, text(lifetime)?))
            }
            GbaVariant::GbaMe => {
                let me = self.me.as_ref().ok_or(Error::NoBootstrap("GBA_ME"))?;
                match (&me.btid, &me.lifetime) {
                    (Some(b), Some(l)) => Ok((b.clone(), l.clone())),
                    _ => Err(Error::NoBootstrap("GBA_ME bootstrap not completed")),
                }
            }
        }
    }

    /// The NAF keys for `naf_id` and `impi` (the IMPI the BSF bootstrapped): Ks_ext_NAF from the
    /// card's NAF Derivation Mode (GBA_U; the card keeps Ks_int_NAF), or Ks_NAF computed here
    /// (GBA_ME).
    pub fn naf_keys(&mut self, naf_id: &NafId, impi: &str) -> Result<NafKeys> {
        match self.variant {
            GbaVariant::GbaU => {
                let naf = naf_id.as_bytes();
                if naf.len() > 255 || impi.len() > 255 {
                    return Err(Error::InvalidInput("NAF_Id and IMPI are at most 255 bytes each".into()));
                }
                let mut data = vec![0; framing::naf_derivation_len(naf.len(), impi.len())];
                framing::encode_naf_derivation(naf, impi.as_bytes(), &mut data)
                    .map_err(|_| Error::InvalidInput("NAF_Id and IMPI are at most 255 bytes each".into()))?;
                let command = "AUTHENTICATE (NAF derivation)";
                let r = Zeroizing::new(self.card.authenticate_even(App::Usim, P2_GBA_CONTEXT, &data)?);
                match r.sw {
                    0x9000 => {}
                    0x6985 => return Err(Error::NoBootstrap(command)),
                    0x6982 => return Err(Error::PinRequired),
                    0x9864 => return Err(Error::ContextNotSupported),
                    sw => return Err(Error::CardStatus { command, sw }),
                }
                let bad = |reason| Error::CardResponse { command, reason };
                let key = match r.data.split_first() {
                    Some((&TAG_SUCCESS, rest)) => {
                        let (k, _) = lv(rest).ok_or(bad("truncated Ks_ext_NAF"))?;
                        KsExtNaf::from_slice(k).map_err(|_| bad("Ks_ext_NAF is not 32 bytes"))?
                    }
                    _ => return Err(bad("no DB tag")),
                };
                let (btid, lifetime) = self.bootstrap_info()?;
                Ok(NafKeys { naf_id: naf_id.clone(), btid, lifetime, key: NafKey::KsExtNaf(key) })
            }
            GbaVariant::GbaMe => {
                let me = self.me.as_ref().ok_or(Error::NoBootstrap("GBA_ME naf_keys"))?;
                let (Some(btid), Some(lifetime)) = (&me.btid, &me.lifetime) else {
                    return Err(Error::NoBootstrap("GBA_ME bootstrap not completed"));
                };
                let key = gba::kdf::derive_ks_naf(&me.ks, &me.rand, impi.as_bytes(), naf_id)?;
                Ok(NafKeys {
                    naf_id: naf_id.clone(),
                    btid: btid.clone(),
                    lifetime: lifetime.clone(),
                    key: NafKey::KsNaf(key),
                })
            }
        }
    }
}
