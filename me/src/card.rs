//! The ME's side of the UICC interface (TS 102 221 §10–§11, TS 31.102 §4.2 and §7.1, TS 31.103
//! §4.2): application discovery through EF.DIR, PIN1, the EFs the ME reads (ICCID, UST, IMSI, AD,
//! IMPI, GBABP) and the AUTHENTICATE exchanges, over any [`Reader`] through a [`Session`].
//!
//! [`Card`] is a cheap, cloneable handle: the GBA client and the UICC-based key management share
//! one card, as the subsystems of a phone share one modem channel to it.

use std::sync::{Arc, Mutex, MutexGuard};

use sim_reader::{Reader, Session};

use uicc_vocab::authenticate::{INS_AUTHENTICATE_EVEN, INS_AUTHENTICATE_ODD, P1_EVEN};
use uicc_vocab::ef::{ad, dir, iccid, ims_identity, imsi, service_table};
use uicc_vocab::files::FID_MF;
use uicc_vocab::open_values::P1_ODD_FIRST_BLOCK;

use crate::error::{Error, Result};

/// The card applications the ME uses, the 3GPP RID and application codes (TS 101 220 Annex E).
pub use uicc_vocab::files::{APP_CODE_ISIM, APP_CODE_USIM, App, RID_3GPP};
/// The files the ME reads and writes (TS 102 221 §13, TS 31.102 §4.2, TS 31.103 §4.2).
pub use uicc_vocab::files::{
    FID_DIR, FID_ICCID, isim::GBABP as FID_ISIM_GBABP, isim::IMPI as FID_ISIM_IMPI, usim::AD as FID_USIM_AD,
    usim::GBABP as FID_USIM_GBABP, usim::IMSI as FID_USIM_IMSI, usim::MSK as FID_USIM_MSK,
    usim::UST as FID_USIM_UST,
};
/// PIN1 key reference (TS 102 221 §9.5.1, Table 9.3).
pub const KEY_REF_PIN1: u8 = 0x01;
/// PIN block length: the digits in ASCII, padded with `FF` (TS 102 221 §9.5.x).
pub const PIN_BLOCK_LEN: usize = 8;
/// Largest short-APDU data field (ISO/IEC 7816-4 §5.1); longer commands go extended.
pub const SHORT_LC_MAX: usize = apdu::SHORT_NC_MAX;

/// The applications listed in EF.DIR, with their AIDs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applications {
    /// AID of the USIM.
    pub usim: Option<Vec<u8>>,
    /// AID of the ISIM.
    pub isim: Option<Vec<u8>>,
}

impl Applications {
    fn aid(&self, app: App) -> Option<&[u8]> {
        match app {
            App::Usim => self.usim.as_deref(),
            App::Isim => self.isim.as_deref(),
        }
    }
}

/// A service table (EF.UST, TS 31.102 §4.2.8; coded as `uicc_vocab::ef::service_table` reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTable(pub Vec<u8>);

impl ServiceTable {
    /// Whether service `n` (1-based) is available.
    pub fn has(&self, n: u16) -> bool {
        service_table::has(&self.0, n)
    }
}

/// One response after the transport loop: data and status word.
#[derive(Clone)]
pub struct CardResponse {
    /// Response data.
    pub data: Vec<u8>,
    /// Status word.
    pub sw: u16,
}

impl zeroize::Zeroize for CardResponse {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

impl core::fmt::Debug for CardResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Response data may carry keys (Ks_ext_NAF, MTK): only the length is shown.
        write!(f, "CardResponse {{ data: {} bytes, sw: {:04X} }}", self.data.len(), self.sw)
    }
}

struct Inner<R> {
    session: Session<R>,
    apps: Option<Applications>,
    current: Option<App>,
}

/// A shared handle to the card in a reader. Clones use the same card; every operation holds the
/// card for its whole exchange sequence.
pub struct Card<R> {
    inner: Arc<Mutex<Inner<R>>>,
}

impl<R> Clone for Card<R> {
    fn clone(&self) -> Self {
        Card { inner: Arc::clone(&self.inner) }
    }
}

impl<R: Reader> Card<R> {
    /// The card in `reader` (already powered).
    pub fn new(reader: R) -> Self {
        Self::from_session(Session::new(reader))
    }

    /// The card behind an existing session.
    pub fn from_session(session: Session<R>) -> Self {
        Card { inner: Arc::new(Mutex::new(Inner { session, apps: None, current: None })) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner<R>>> {
        self.inner.lock().map_err(|_| Error::CardPoisoned)
    }

    /// Raw access to the session (for traces, resets, APDU counts). The ME forgets what it had
    /// selected, since `f` may change it.
    pub fn with_session<T>(&self, f: impl FnOnce(&mut Session<R>) -> T) -> Result<T> {
        let mut inner = self.lock()?;
        inner.current = None;
        Ok(f(&mut inner.session))
    }

    /// The applications EF.DIR lists (read once, then remembered).
    pub fn applications(&self) -> Result<Applications> {
        self.lock()?.applications()
    }

    /// VERIFY PIN for PIN1 (TS 102 221 §11.1.9): 4 to 8 decimal digits.
    pub fn verify_pin(&self, pin: &str) -> Result<()> {
        if !(4..=PIN_BLOCK_LEN).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidInput("PIN1 is 4 to 8 decimal digits".into()));
        }
        let mut block = zeroize::Zeroizing::new([0xFFu8; PIN_BLOCK_LEN]);
        for (slot, digit) in block.iter_mut().zip(pin.bytes()) {
            *slot = digit;
        }
        let mut apdu = zeroize::Zeroizing::new(vec![0x00, 0x20, 0x00, KEY_REF_PIN1, PIN_BLOCK_LEN as u8]);
        apdu.extend_from_slice(&block[..]);
        let mut inner = self.lock()?;
        let r = inner.transmit(&apdu)?;
        match r.sw {
            0x9000 => Ok(()),
            sw if sw & 0xFFF0 == 0x63C0 => Err(Error::WrongPin { tries_left: (sw & 0x0F) as u8 }),
            0x6983 => Err(Error::PinBlocked),
            sw => Err(Error::CardStatus { command: "VERIFY PIN", sw }),
        }
    }

    /// The ICCID (EF.ICCID, TS 102 221 §13.2) as its decimal digits.
    pub fn iccid(&self) -> Result<String> {
        let raw = self.lock()?.read_transparent(None, FID_ICCID, "EF.ICCID")?;
        let digits: String = iccid::digits(&raw).collect();
        if digits.is_empty() {
            return Err(Error::CardResponse { command: "READ EF.ICCID", reason: "no digits" });
        }
        Ok(digits)
    }

    /// The USIM service table (EF.UST). Needs PIN1.
    pub fn usim_service_table(&self) -> Result<ServiceTable> {
        Ok(ServiceTable(self.lock()?.read_transparent(Some(App::Usim), FID_USIM_UST, "EF.UST")?))
    }

    /// The IMSI digits (EF.IMSI, TS 31.102 §4.2.2). Needs PIN1.
    pub fn imsi(&self) -> Result<String> {
        let raw = self.lock()?.read_transparent(Some(App::Usim), FID_USIM_IMSI, "EF.IMSI")?;
        imsi::decode(&raw)
            .map(|d| d.as_str().to_owned())
            .ok_or(Error::CardResponse { command: "READ EF.IMSI", reason: "not an IMSI" })
    }

    /// The number of MNC digits (EF.AD byte 4, TS 31.102 §4.2.18); 2 when the card does not say.
    pub fn mnc_length(&self) -> Result<usize> {
        let raw = self.lock()?.read_transparent(Some(App::Usim), FID_USIM_AD, "EF.AD")?;
        Ok(ad::mnc_length(&raw))
    }

    /// The IMPI for GBA (TS 33.220 §4.3.1): the ISIM's EF.IMPI when the card has an ISIM, else the
    /// IMSI-derived IMPI of TS 23.003 §13.3. Needs PIN1.
    pub fn impi(&self) -> Result<String> {
        if self.applications()?.isim.is_some() {
            let raw = self.lock()?.read_transparent(Some(App::Isim), FID_ISIM_IMPI, "EF.IMPI")?;
            let nai = ims_identity::decode(&raw)
                .ok_or(Error::CardResponse { command: "READ EF.IMPI", reason: "no NAI TLV (tag 80)" })?;
            return String::from_utf8(nai.to_vec())
                .map_err(|_| Error::CardResponse { command: "READ EF.IMPI", reason: "NAI is not UTF-8" });
        }
        let imsi = self.imsi()?;
        let mnc_len = self.mnc_length()?;
        imsi_derived_impi(&imsi, mnc_len)
            .ok_or(Error::CardResponse { command: "READ EF.IMSI", reason: "IMSI too short for MCC and MNC" })
    }

    /// The content of a transparent EF of `app` (or of the MF when `app` is `None`).
    pub fn read_transparent(&self, app: Option<App>, fid: u16) -> Result<Vec<u8>> {
        self.lock()?.read_transparent(app, fid, "READ BINARY")
    }

    /// The record length and the number of records of a linear fixed EF of `app`, from its FCP
    /// (TS 102 221 §11.1.1.4.3, file descriptor).
    pub fn record_shape(&self, app: App, fid: u16, what: &'static str) -> Result<(u8, u8)> {
        let fcp = self.lock()?.select_ef(Some(app), fid, what)?;
        fcp.records.ok_or(Error::CardResponse { command: "SELECT", reason: "not a linear fixed EF" })
    }

    /// Record `number` (1-based) of a linear fixed EF of `app` (READ RECORD, absolute mode,
    /// TS 102 221 §11.1.5).
    pub fn read_record(&self, app: App, fid: u16, number: u8, what: &'static str) -> Result<Vec<u8>> {
        let mut inner = self.lock()?;
        let fcp = inner.select_ef(Some(app), fid, what)?;
        let (len, _) =
            fcp.records.ok_or(Error::CardResponse { command: "SELECT", reason: "not a linear fixed EF" })?;
        let r = inner.transmit(&[0x00, 0xB2, number, 0x04, len])?;
        match r.sw {
            0x9000 => Ok(r.data),
            0x6982 => Err(Error::PinRequired),
            sw => Err(Error::CardStatus { command: "READ RECORD", sw }),
        }
    }

    /// How many Key Groups the card can hold MSKs for: the records of the USIM's EF.MSK
    /// (TS 31.102 §4.2.80; each record holds the MSKs of one Key Domain and Key Group).
    pub fn msk_key_groups(&self) -> Result<usize> {
        Ok(usize::from(self.record_shape(App::Usim, FID_USIM_MSK, "EF.MSK")?.1))
    }

    /// UPDATE BINARY of `data` at `offset` in a transparent EF of `app` (TS 102 221 §11.1.4).
    pub fn update_binary(&self, app: App, fid: u16, offset: u16, data: &[u8]) -> Result<()> {
        self.lock()?.update_binary(app, fid, offset, data)
    }

    /// AUTHENTICATE, EVEN instruction (TS 31.102 §7.1.2) in `app` with context `p2`: response data
    /// and status word as the card gave them (the caller maps the status word).
    pub fn authenticate_even(&self, app: App, p2: u8, data: &[u8]) -> Result<CardResponse> {
        let mut inner = self.lock()?;
        inner.select_app(app)?;
        let apdu = command_apdu(0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, p2, data)?;
        inner.transmit(&apdu)
    }

    /// AUTHENTICATE, ODD instruction (TS 31.102 §7.1.2) in the USIM with context `p2`, sent as
    /// one first block (extended APDU when longer than 255 bytes).
    pub fn authenticate_odd(&self, p2: u8, data: &[u8]) -> Result<CardResponse> {
        let mut inner = self.lock()?;
        inner.select_app(App::Usim)?;
        let apdu = command_apdu(0x00, INS_AUTHENTICATE_ODD, P1_ODD_FIRST_BLOCK, p2, data)?;
        inner.transmit(&apdu)
    }
}

impl<R: Reader> Inner<R> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<CardResponse> {
        let ex = self.session.transmit_apdu(apdu)?;
        Ok(CardResponse { sw: ex.sw(), data: ex.data })
    }

    fn applications(&mut self) -> Result<Applications> {
        if let Some(apps) = &self.apps {
            return Ok(apps.clone());
        }
        self.select_mf()?;
        let fcp = self.select_fid_fcp(FID_DIR, "EF.DIR")?;
        let (record_len, records) = fcp
            .records
            .ok_or(Error::CardResponse { command: "SELECT EF.DIR", reason: "EF.DIR is not linear fixed" })?;
        let mut apps = Applications::default();
        for n in 1..=records {
            let r = self.transmit(&[0x00, 0xB2, n, 0x04, record_len])?;
            if r.sw != 0x9000 {
                return Err(Error::CardStatus { command: "READ RECORD EF.DIR", sw: r.sw });
            }
            let Some(aid) = dir::decode_aid(&r.data) else { continue };
            if let Some(app) = App::of_aid(aid) {
                let slot = match app {
                    App::Usim => &mut apps.usim,
                    App::Isim => &mut apps.isim,
                };
                slot.get_or_insert_with(|| aid.to_vec());
            }
        }
        self.current = None;
        self.apps = Some(apps.clone());
        Ok(apps)
    }

    fn select_mf(&mut self) -> Result<()> {
        let [hi, lo] = FID_MF.to_be_bytes();
        let r = self.transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, hi, lo])?;
        self.current = None;
        match r.sw {
            0x9000 => Ok(()),
            sw => Err(Error::CardStatus { command: "SELECT MF", sw }),
        }
    }

    fn select_app(&mut self, app: App) -> Result<()> {
        if self.current == Some(app) {
            return Ok(());
        }
        let apps = self.applications()?;
        let aid = apps.aid(app).ok_or(Error::NoApplication(app.name()))?;
        let apdu = command_apdu(0x00, 0xA4, 0x04, 0x0C, aid)?;
        let r = self.transmit(&apdu)?;
        match r.sw {
            0x9000 => {
                self.current = Some(app);
                Ok(())
            }
            0x6A82 => Err(Error::NoApplication(app.name())),
            sw => Err(Error::CardStatus { command: "SELECT ADF", sw }),
        }
    }

    /// SELECT by FID in the current DF, returning the FCP (TS 102 221 §11.1.1.3).
    fn select_fid_fcp(&mut self, fid: u16, what: &'static str) -> Result<Fcp> {
        let [hi, lo] = fid.to_be_bytes();
        let r = self.transmit(&[0x00, 0xA4, 0x00, 0x04, 0x02, hi, lo, 0x00])?;
        match r.sw {
            0x9000 => Fcp::parse(&r.data).ok_or(Error::CardResponse { command: "SELECT", reason: "no FCP" }),
            0x6A82 => Err(Error::FileNotFound(what)),
            0x6982 => Err(Error::PinRequired),
            sw => Err(Error::CardStatus { command: "SELECT", sw }),
        }
    }

    fn select_ef(&mut self, app: Option<App>, fid: u16, what: &'static str) -> Result<Fcp> {
        match app {
            Some(app) => self.select_app(app)?,
            None => self.select_mf()?,
        }
        self.select_fid_fcp(fid, what)
    }

    fn read_transparent(&mut self, app: Option<App>, fid: u16, what: &'static str) -> Result<Vec<u8>> {
        let fcp = self.select_ef(app, fid, what)?;
        let size = fcp.size.ok_or(Error::CardResponse { command: "SELECT", reason: "no file size" })?;
        let mut out = Vec::with_capacity(usize::from(size));
        while out.len() < usize::from(size) {
            let offset = out.len() as u16;
            let chunk = (usize::from(size) - out.len()).min(256);
            let [hi, lo] = offset.to_be_bytes();
            let r = self.transmit(&[0x00, 0xB0, hi, lo, (chunk % 256) as u8])?;
            match r.sw {
                0x9000 if !r.data.is_empty() => out.extend_from_slice(&r.data),
                0x9000 => return Err(Error::CardResponse { command: "READ BINARY", reason: "no data" }),
                0x6982 => return Err(Error::PinRequired),
                sw => return Err(Error::CardStatus { command: "READ BINARY", sw }),
            }
        }
        out.truncate(usize::from(size));
        Ok(out)
    }

    fn update_binary(&mut self, app: App, fid: u16, offset: u16, data: &[u8]) -> Result<()> {
        self.select_ef(Some(app), fid, "UPDATE BINARY")?;
        for (i, chunk) in data.chunks(SHORT_LC_MAX).enumerate() {
            let at = usize::from(offset) + i * SHORT_LC_MAX;
            let at = u16::try_from(at).map_err(|_| Error::InvalidInput("offset beyond the EF".into()))?;
            let [hi, lo] = at.to_be_bytes();
            let mut apdu = vec![0x00, 0xD6, hi, lo, chunk.len() as u8];
            apdu.extend_from_slice(chunk);
            let r = self.transmit(&apdu)?;
            match r.sw {
                0x9000 => {}
                0x6982 => return Err(Error::PinRequired),
                sw => return Err(Error::CardStatus { command: "UPDATE BINARY", sw }),
            }
        }
        Ok(())
    }
}

/// The parts of an FCP template the ME uses (TS 102 221 §11.1.1.3).
struct Fcp {
    size: Option<u16>,
    records: Option<(u8, u8)>,
}

impl Fcp {
    fn parse(data: &[u8]) -> Option<Fcp> {
        let body = fcp_object(data, 0x62)?;
        let size =
            fcp_object(body, 0x80).and_then(|v| Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)));
        let records = fcp_object(body, 0x82).and_then(|d| match *d {
            [_, _, _, len, count, ..] => Some((len, count)),
            [_, _, len, count] => Some((len, count)),
            _ => None,
        });
        let size = size.or(records.map(|(l, c)| u16::from(l) * u16::from(c)));
        Some(Fcp { size, records })
    }
}

/// The value of the first object with `tag` in an FCP template or its body (TS 102 221 §11.1.1.3).
fn fcp_object(data: &[u8], tag: u8) -> Option<&[u8]> {
    uicc_vocab::ef::find(data, tag)
}

/// A command APDU (ISO/IEC 7816-4 §5.1), case 4 with Le = 00 (short) or 00 00 (extended when the
/// data is longer than [`SHORT_LC_MAX`]).
pub fn command_apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>> {
    let ne = if data.len() <= SHORT_LC_MAX { apdu::SHORT_NE_MAX } else { apdu::EXTENDED_NE_MAX };
    let command = apdu::Command::new(cla, ins, p1, p2).with_data(data).with_ne(ne);
    let mut out = vec![0; command.encoded_len()];
    command.encode(&mut out).map_err(|_| Error::InvalidInput("command data over 65535 bytes".into()))?;
    Ok(out)
}

/// The IMSI-derived IMPI of TS 23.003 §13.3: `<IMSI>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org`, the
/// MNC padded to three digits with a leading zero.
pub fn imsi_derived_impi(imsi: &str, mnc_len: usize) -> Option<String> {
    if !imsi.bytes().all(|b| b.is_ascii_digit()) || !(2..=3).contains(&mnc_len) {
        return None;
    }
    let mcc = imsi.get(..3)?;
    let mnc = imsi.get(3..3 + mnc_len)?;
    Some(format!("{imsi}@ims.mnc{mnc:0>3}.mcc{mcc}.3gppnetwork.org"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impi_per_ts_23_003() {
        // TS 23.003 §13.3 example: IMSI 234150999999999, MNC 15 -> mnc015.mcc234.
        assert_eq!(
            imsi_derived_impi("234150999999999", 2).as_deref(),
            Some("234150999999999@ims.mnc015.mcc234.3gppnetwork.org")
        );
        assert_eq!(imsi_derived_impi("31", 2), None);
    }

    #[test]
    fn extended_apdu_when_long() {
        let a = command_apdu(0, 0x89, 0x80, 0x85, &[7; 300]).unwrap();
        assert_eq!(&a[..7], &[0, 0x89, 0x80, 0x85, 0x00, 0x01, 0x2C]);
        assert_eq!(a.len(), 7 + 300 + 2);
        let b = command_apdu(0, 0x88, 0, 0x84, &[1, 2]).unwrap();
        assert_eq!(b, [0, 0x88, 0, 0x84, 2, 1, 2, 0]);
    }
}
