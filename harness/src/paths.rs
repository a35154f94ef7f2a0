//! The set-up of the two MBMS key-management paths (TS 33.246 §6.1) on one card profile: GBA
//! bootstrap against a network-side HSS (TS 33.220 §4.5.2), NAF key derivation for the BM-SC, and
//! the MUK the BM-SC must use with each path, computed on the network side.

use std::path::Path;

use gba::{AuthVector, Auts, BTid, Milenage, NafId, Rand, Sqn, UaSecurityProtocolId};
use me::{BootstrapOutcome, Card, GbaClient, GbaVariant, KeyManagementPath, KeyStore, MeBased, UiccBased};
use mikey::mbms::Muk;
use sim_reader::{CardProfile, Reader};

use crate::{Error, Result};

/// The BSF domain of the B-TIDs.
pub const BSF_DOMAIN: &str = "bsf.example.org";
/// The BM-SC (NAF) FQDN.
pub const BMSC_FQDN: &str = "bmsc.example.org";
/// Key lifetime of the bootstraps.
pub const LIFETIME: &str = "2099-12-31T23:59:59Z";
/// SQN index bits of the card's SQN array (TS 33.102 Annex C.3.2).
const IND_BITS: u32 = gba::sqn::IND_LEN_BITS;

/// The network's HSS for one subscriber: authentication vectors with fresh SQNs, resynchronised
/// from AUTS when the card answers a synchronisation failure (TS 33.102 §6.3.5).
pub struct Hss {
    m: Milenage,
    amf: [u8; 2],
    next_seq: u64,
}

impl Hss {
    /// The HSS of `profile`'s subscriber, starting above the profile's SQN.
    pub fn new(profile: &CardProfile) -> Self {
        Hss {
            m: Milenage::new(profile.k(), profile.opc()),
            amf: *profile.amf(),
            next_seq: Sqn::from_bytes(profile.sqn()).seq(IND_BITS) + 1,
        }
    }

    /// The next authentication vector for `rand`.
    pub fn vector(&mut self, rand: &Rand) -> Result<AuthVector> {
        let sqn =
            Sqn::from_seq_ind(self.next_seq, 0, IND_BITS).map_err(|e| Error::Other(format!("SQN: {e}")))?;
        self.next_seq += 1;
        Ok(AuthVector::generate(&self.m, rand, sqn, &self.amf))
    }

    /// Takes the card's SQN from AUTS; the next vector is above it.
    pub fn resynchronise(&mut self, rand: &Rand, auts: &Auts) -> Result<()> {
        let sqn_ms = auts.verify(&self.m, rand).ok_or_else(|| Error::Other("AUTS did not verify".into()))?;
        self.next_seq = self.next_seq.max(sqn_ms.seq(IND_BITS) + 1);
        Ok(())
    }
}

/// The keys of one bootstrap as the network side computed them.
pub struct Bootstrap {
    /// The B-TID.
    pub btid: String,
    /// The MUK the BM-SC uses with this UE: Ks_int_NAF (GBA_U) or the ME-based MUK from Ks_NAF.
    pub muk: Muk,
    /// Ks, to look for on the card interface.
    pub ks: Vec<u8>,
}

/// The NAF_Id of the BM-SC (TS 33.220 Annex H: FQDN ‖ the MBMS Ua security protocol id).
pub fn bmsc_naf_id() -> Result<NafId> {
    NafId::new(BMSC_FQDN, UaSecurityProtocolId::MBMS).map_err(|e| Error::Other(format!("NAF_Id: {e}")))
}

/// Runs GBA (`variant`) with `gba` for `rand` and derives the BM-SC's NAF keys on the UE; checks
/// them against the network's and returns what the network knows. A synchronisation failure is
/// resolved once through AUTS.
pub fn bootstrap<R: Reader>(
    gba: &mut GbaClient<R>,
    variant: GbaVariant,
    impi: &str,
    rand: Rand,
    hss: &mut Hss,
) -> Result<(Bootstrap, me::NafKeys)> {
    let mut av = hss.vector(&rand)?;
    for attempt in 0..2 {
        let autn = if variant == GbaVariant::GbaU { av.gba_u_autn().to_bytes() } else { av.autn.to_bytes() };
        match gba.bootstrap(&rand, &autn)? {
            BootstrapOutcome::Res(res) if av.verify_res(&res) => break,
            BootstrapOutcome::Auts(auts) if attempt == 0 => {
                hss.resynchronise(&rand, &auts)?;
                av = hss.vector(&rand)?;
            }
            other => return Err(Error::Other(format!("bootstrap refused: {other:?}"))),
        }
    }
    let btid =
        BTid::new(&rand, BSF_DOMAIN).map_err(|e| Error::Other(format!("B-TID: {e}")))?.as_str().to_owned();
    gba.complete_bootstrap(&btid, LIFETIME)?;
    let naf_id = bmsc_naf_id()?;
    let keys = gba.naf_keys(&naf_id, impi)?;
    let ks = av.ks();
    let derive = |e: gba::Error| Error::Other(format!("GBA KDF: {e}"));
    let ks_naf = gba::kdf::derive_ks_naf(&ks, &rand, impi.as_bytes(), &naf_id).map_err(derive)?;
    if keys.key.expose() != ks_naf.expose() {
        return Err(Error::Other("the UE's NAF key differs from the BSF's".into()));
    }
    let muk = match variant {
        GbaVariant::GbaU => {
            let k = gba::kdf::derive_ks_int_naf(&ks, &rand, impi.as_bytes(), &naf_id).map_err(derive)?;
            gba::mbms_keys::uicc_based_muk(&k)
        }
        GbaVariant::GbaMe => gba::mbms_keys::me_based_muk(&ks_naf),
    };
    Ok((Bootstrap { btid, muk, ks: ks.expose().to_vec() }, keys))
}

/// One UE on one path: its card, its GBA client and its key management.
pub struct PathUe<R: Reader> {
    /// The card (shared with the GBA client and, on the UICC-based path, the key management).
    pub card: Card<R>,
    /// The GBA client.
    pub gba: GbaClient<R>,
    /// The IMPI read from the card.
    pub impi: String,
    /// The key management.
    pub km: PathKm<R>,
}

/// The key management of one path.
pub enum PathKm<R: Reader> {
    /// MUK and MSKs on the card.
    Uicc(UiccBased<R>),
    /// Everything in the ME key store.
    Me(Box<MeBased>),
}

impl<R: Reader> PathKm<R> {
    /// The common interface.
    pub fn km(&mut self) -> &mut dyn me::MbmsKeyManagement {
        match self {
            PathKm::Uicc(k) => k,
            PathKm::Me(k) => k,
        }
    }
}

/// Powers the UE on with the card in `reader` (PIN1 verified), bootstraps with `variant` and
/// derives the NAF keys. The UICC-based path needs the card to offer MBMS security (EF.UST n°69);
/// the ME-based path keeps its keys in a store at `store`.
pub fn power_on<R: Reader>(
    reader: R,
    profile: &CardProfile,
    variant: GbaVariant,
    rand: Rand,
    hss: &mut Hss,
    store: &Path,
) -> Result<(PathUe<R>, Bootstrap)> {
    let card = Card::new(reader);
    card.verify_pin(profile.pin1())?;
    let impi = card.impi()?;
    let mut gba = GbaClient::new(card.clone(), variant);
    let (boot, keys) = bootstrap(&mut gba, variant, &impi, rand, hss)?;
    let km = match variant {
        GbaVariant::GbaU => {
            if me::choose_path(&card, None)? != KeyManagementPath::UiccBased {
                return Err(Error::Other(
                    "the card's EF.UST does not offer MBMS security (service n°69)".into(),
                ));
            }
            PathKm::Uicc(UiccBased::new(card.clone()))
        }
        GbaVariant::GbaMe => {
            let mut key_store = KeyStore::open(store)?;
            key_store.on_card_inserted(&card.iccid()?)?;
            let mut km = MeBased::new(key_store);
            km.install_naf_keys(&keys)?;
            PathKm::Me(Box::new(km))
        }
    };
    Ok((PathUe { card, gba, impi, km }, boot))
}
