//! An emulated card made ready for MBMS key management on the UICC-based path, with the network
//! side computed in-process: ADF.USIM selected, PIN1 verified, GBA_U bootstrap (TS 33.220 §5.3.2)
//! with the authentication vector the BSF would make (TS 33.102 §6.3), B-TID and key lifetime in
//! EF.GBABP (TS 31.102 §4.2.79), NAF derivation for the BM-SC (TS 33.220 Annex G).

use uicc_vocab::authenticate::{self as framing, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT};
use uicc_vocab::ef::gbabp;
use uicc_vocab::files::usim;

use crate::{Context, Error, Result, bail};

/// CLA INS P1 P2 of AUTHENTICATE in the GBA context (TS 31.102 §7.1.2).
const GBA_CONTEXT_HEADER: [u8; 4] = [0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT];

/// SQN step to the next vector with the same IND (TS 33.102 Annex C.3.2, 5 IND bits).
const SQN_STEP: u64 = 1 << 5;
/// Key lifetime written with the B-TID (ASCII UTC, TS 24.109 §4.2).
const KEY_LIFETIME: &str = "2035-01-01T00:00:00Z";
/// The BM-SC (NAF) FQDN the card derives its NAF keys for.
pub const BMSC_FQDN: &str = "bmsc.example.org";
/// The BSF domain of the B-TID.
const BSF_DOMAIN: &str = "bsf.example.org";

/// A session on an emulated card.
pub type Card = sim_reader::Session<sim_reader::Emulator>;

/// One exchange that must end `90 00`; returns the response data.
pub fn card_ok(s: &mut Card, what: &str, apdu: &[u8]) -> Result<Vec<u8>> {
    let ex = s.transmit_apdu(apdu).with_context(|| what.to_owned())?;
    if ex.sw() != 0x9000 {
        bail!("{what}: the card answered {:04X} ({})", ex.sw(), ex.status);
    }
    Ok(ex.data)
}

/// A short command APDU `header Lc data [Le = 00]`.
pub fn short_apdu(header: [u8; 4], data: &[u8], le: bool) -> Result<Vec<u8>> {
    let lc =
        u8::try_from(data.len()).map_err(|_| Error::Other("command data longer than 255 bytes".into()))?;
    let mut c = header.to_vec();
    c.push(lc);
    c.extend_from_slice(data);
    if le {
        c.push(0);
    }
    Ok(c)
}

/// An emulated card after GBA_U and NAF derivation for the BM-SC, and the network's view of it.
pub struct CardWithNafKeys {
    pub card: Card,
    pub btid: String,
    pub key_domain_id: mikey::mbms::KeyDomainId,
    pub ks_ext_naf: gba::KsExtNaf,
    pub ks_int_naf: gba::KsIntNaf,
    pub impi: String,
}

/// A card of `profile`, GBA_U bootstrap on it
/// with that RAND (the authentication vector computed here, as the BSF would), B-TID written,
/// NAF derivation for the BM-SC on the card, its Ks_ext_NAF checked against the network's.
pub fn card_with_naf_keys(profile: &sim_reader::CardProfile, rand: [u8; 16]) -> Result<CardWithNafKeys> {
    let mut s = sim_reader::Session::new(sim_reader::Emulator::new(profile)?);
    card_ok(
        &mut s,
        "SELECT ADF.USIM",
        &[0x00, 0xA4, 0x04, 0x04, 0x07, 0xA0, 0, 0, 0, 0x87, 0x10, 0x02, 0x00],
    )?;
    let mut pin = [0xFFu8; 8];
    let digits = profile.pin1().as_bytes();
    pin.get_mut(..digits.len())
        .ok_or_else(|| Error::Other("PIN1 longer than 8 digits".into()))?
        .copy_from_slice(digits);
    card_ok(&mut s, "VERIFY PIN1", &short_apdu([0x00, 0x20, 0x00, 0x01], &pin, false)?)?;

    let sqn = gba::Sqn::new(gba::Sqn::from_bytes(profile.sqn()).value() + SQN_STEP)
        .map_err(|e| Error::Other(e.to_string()))?;
    let av =
        gba::AuthVector::generate(&gba::Milenage::new(profile.k(), profile.opc()), &rand, sqn, profile.amf());
    let data = framing::encode_gba_bootstrap(&rand, &av.gba_u_autn().to_bytes());
    let answer = card_ok(&mut s, "GBA bootstrap", &short_apdu(GBA_CONTEXT_HEADER, &data, true)?)?;
    match answer.as_slice() {
        [0xDB, len, res @ ..] if usize::from(*len) == res.len() && av.verify_res(res) => {}
        other => bail!("GBA bootstrap: expected DB L RES with RES = XRES, got {}", hex::encode(other)),
    }
    let btid = gba::BTid::new(&rand, BSF_DOMAIN).map_err(|e| Error::Other(format!("B-TID: {e}")))?;
    card_ok(
        &mut s,
        "SELECT EF.GBABP",
        &short_apdu([0x00, 0xA4, 0x00, 0x0C], &usim::GBABP.to_be_bytes(), false)?,
    )?;
    let mut data = vec![0; 2 + btid.as_str().len() + KEY_LIFETIME.len()];
    gbabp::encode_b_tid_lifetime(btid.as_str().as_bytes(), KEY_LIFETIME.as_bytes(), &mut data)
        .map_err(|e| Error::Other(format!("EF.GBABP: {e}")))?;
    // EF.GBABP (TS 31.102 §4.2.79): L RAND, then L B-TID L lifetime after the RAND.
    let offset = len_u8(gbabp::b_tid_offset(rand.len()))?;
    card_ok(&mut s, "UPDATE BINARY EF.GBABP", &short_apdu([0x00, 0xD6, 0x00, offset], &data, false)?)?;

    let naf_id = gba::NafId::new(BMSC_FQDN, gba::UaSecurityProtocolId::MBMS)
        .map_err(|e| Error::Other(e.to_string()))?;
    let impi = profile.impi().as_bytes();
    let (ext, int) = gba::kdf::derive_gba_u_naf_keys(&av.ks(), &rand, impi, &naf_id)
        .map_err(|e| Error::Other(e.to_string()))?;
    let mut data = vec![0; framing::naf_derivation_len(naf_id.as_bytes().len(), impi.len())];
    framing::encode_naf_derivation(naf_id.as_bytes(), impi, &mut data)
        .map_err(|e| Error::Other(format!("NAF derivation: {e}")))?;
    let answer = card_ok(&mut s, "NAF derivation", &short_apdu(GBA_CONTEXT_HEADER, &data, true)?)?;
    if answer.get(2..) != Some(&ext.expose()[..]) {
        bail!("NAF derivation: the card's Ks_ext_NAF differs from the network's");
    }
    // Key Domain ID = MCC || MNC in the PLMN coding of TS 24.008 §10.5.1.13 (two-digit MNC).
    let d: Vec<u8> = profile.imsi().bytes().take(5).map(|c| c.wrapping_sub(b'0')).collect();
    let [d1, d2, d3, d4, d5] = d[..] else { bail!("IMSI shorter than MCC and MNC") };
    let key_domain_id = mikey::mbms::KeyDomainId([(d2 << 4) | d1, 0xF0 | d3, (d5 << 4) | d4]);
    Ok(CardWithNafKeys {
        card: s,
        btid: btid.as_str().to_owned(),
        key_domain_id,
        ks_ext_naf: ext,
        ks_int_naf: int,
        impi: profile.impi().to_owned(),
    })
}

/// A length that must fit one byte of a command's data.
fn len_u8(n: usize) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::Other(format!("length {n} does not fit one byte")))
}
