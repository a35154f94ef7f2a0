//! File identifiers and AIDs (TS 102 221 §8 and §13, TS 31.102 §4.2 and §4.7, TS 31.103 §4.2;
//! application identifiers of TS 101 220 Annex E), and the names a trace gives them.
//!
//! FIDs repeat across applications (`6FD7` is EF.MSK in the USIM but EF.GBANL in the ISIM), so the
//! application FIDs live in one module per application.

/// Registered application provider of 3GPP applications (TS 101 220 Annex E).
pub const RID_3GPP: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x87];
/// Application code of the USIM (TS 101 220 Annex E).
pub const APP_CODE_USIM: [u8; 2] = [0x10, 0x02];
/// Application code of the ISIM (TS 101 220 Annex E).
pub const APP_CODE_ISIM: [u8; 2] = [0x10, 0x04];
/// AID prefix (RID ‖ application code) of every USIM.
pub const AID_PREFIX_USIM: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// AID prefix (RID ‖ application code) of every ISIM.
pub const AID_PREFIX_ISIM: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04];

/// FID of the MF (TS 102 221 §8.2).
pub const FID_MF: u16 = 0x3F00;
/// FID that stands for the current application's ADF (TS 102 221 §8.3).
pub const FID_CURRENT_ADF: u16 = 0x7FFF;
/// EF.DIR under the MF (TS 102 221 §13.1).
pub const FID_DIR: u16 = 0x2F00;
/// EF.ICCID under the MF (TS 102 221 §13.2).
pub const FID_ICCID: u16 = 0x2FE2;
/// EF.PL under the MF (TS 102 221 §13.3).
pub const FID_PL: u16 = 0x2F05;
/// EF.ARR under the MF (TS 102 221 §13.4).
pub const FID_ARR: u16 = 0x2F06;
/// DF.TELECOM (TS 31.102 §4.4).
pub const FID_DF_TELECOM: u16 = 0x7F10;
/// DF.GSM (TS 51.011 §10.7).
pub const FID_DF_GSM: u16 = 0x7F20;

/// EFs of ADF.USIM (TS 31.102 §4.2, §4.7 file identifiers).
pub mod usim {
    /// EF.IMSI (TS 31.102 §4.2.2).
    pub const IMSI: u16 = 0x6F07;
    /// EF.Keys (TS 31.102 §4.2.3).
    pub const KEYS: u16 = 0x6F08;
    /// EF.KeysPS (TS 31.102 §4.2.4).
    pub const KEYS_PS: u16 = 0x6F09;
    /// EF.UST (TS 31.102 §4.2.8).
    pub const UST: u16 = 0x6F38;
    /// EF.EST (TS 31.102 §4.2.47).
    pub const EST: u16 = 0x6F56;
    /// EF.ACC (TS 31.102 §4.2.15).
    pub const ACC: u16 = 0x6F78;
    /// EF.LOCI (TS 31.102 §4.2.17).
    pub const LOCI: u16 = 0x6F7E;
    /// EF.AD (TS 31.102 §4.2.18).
    pub const AD: u16 = 0x6FAD;
    /// EF.ARR of the ADF (TS 31.102 §4.2.57).
    pub const ARR: u16 = 0x6F06;
    /// EF.GBABP (TS 31.102 §4.2.79).
    pub const GBABP: u16 = 0x6FD6;
    /// EF.MSK (TS 31.102 §4.2.80): one record per Key Domain and Key Group.
    pub const MSK: u16 = 0x6FD7;
    /// EF.MUK (TS 31.102 §4.2.81): one record per BM-SC.
    pub const MUK: u16 = 0x6FD8;
    /// EF.GBANL (TS 31.102 §4.2.83).
    pub const GBANL: u16 = 0x6FDA;
    /// EF.NAFKCA (TS 31.102 §4.2.86).
    pub const NAFKCA: u16 = 0x6FDD;
}

/// EFs of ADF.ISIM (TS 31.103 §4.2 file identifiers).
pub mod isim {
    /// EF.IMPI (TS 31.103 §4.2.2).
    pub const IMPI: u16 = 0x6F02;
    /// EF.DOMAIN (TS 31.103 §4.2.3).
    pub const DOMAIN: u16 = 0x6F03;
    /// EF.IMPU (TS 31.103 §4.2.4).
    pub const IMPU: u16 = 0x6F04;
    /// EF.AD (TS 31.103 §4.2.5).
    pub const AD: u16 = 0x6FAD;
    /// EF.ARR of the ADF (TS 31.103 §4.2.6).
    pub const ARR: u16 = 0x6F06;
    /// EF.IST (TS 31.103 §4.2.7).
    pub const IST: u16 = 0x6F07;
    /// EF.P-CSCF (TS 31.103 §4.2.8).
    pub const PCSCF: u16 = 0x6F09;
    /// EF.GBABP (TS 31.103 §4.2.9).
    pub const GBABP: u16 = 0x6FD5;
    /// EF.GBANL (TS 31.103 §4.2.10).
    pub const GBANL: u16 = 0x6FD7;
    /// EF.NAFKCA (TS 31.103 §4.2.11).
    pub const NAFKCA: u16 = 0x6FDD;
}

/// A 3GPP application on the UICC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    /// The USIM (TS 31.102).
    Usim,
    /// The ISIM (TS 31.103).
    Isim,
}

impl App {
    /// The application code of its AID (TS 101 220 Annex E).
    pub const fn code(self) -> [u8; 2] {
        match self {
            App::Usim => APP_CODE_USIM,
            App::Isim => APP_CODE_ISIM,
        }
    }

    /// The application's name, `USIM` or `ISIM`.
    pub const fn name(self) -> &'static str {
        match self {
            App::Usim => "USIM",
            App::Isim => "ISIM",
        }
    }

    /// RID ‖ application code: what every AID of this application starts with.
    pub const fn aid_prefix(self) -> &'static [u8; 7] {
        match self {
            App::Usim => &AID_PREFIX_USIM,
            App::Isim => &AID_PREFIX_ISIM,
        }
    }

    /// The application an AID (or a right-truncated AID of at least 7 bytes) names.
    pub fn of_aid(aid: &[u8]) -> Option<App> {
        [App::Usim, App::Isim].into_iter().find(|app| aid.starts_with(app.aid_prefix()))
    }

    /// The EF name (`EF.IMSI`, …) of `fid` in this application's ADF, for the files the trace
    /// decoder names.
    pub const fn ef_name(self, fid: u16) -> Option<&'static str> {
        Some(match (self, fid) {
            (App::Usim, usim::IMSI) => "EF.IMSI",
            (App::Usim, usim::KEYS) => "EF.Keys",
            (App::Usim, usim::KEYS_PS) => "EF.KeysPS",
            (App::Usim, usim::UST) => "EF.UST",
            (App::Usim, usim::LOCI) => "EF.LOCI",
            (App::Usim, usim::ACC) => "EF.ACC",
            (App::Usim, usim::EST) => "EF.EST",
            (App::Usim, usim::GBABP) => "EF.GBABP",
            (App::Usim, usim::MSK) => "EF.MSK",
            (App::Usim, usim::MUK) => "EF.MUK",
            (App::Usim, usim::GBANL) => "EF.GBANL",
            (App::Isim, isim::IMPI) => "EF.IMPI",
            (App::Isim, isim::DOMAIN) => "EF.DOMAIN",
            (App::Isim, isim::IMPU) => "EF.IMPU",
            (App::Isim, isim::IST) => "EF.IST",
            (App::Isim, isim::PCSCF) => "EF.P-CSCF",
            (App::Isim, isim::GBABP) => "EF.GBABP",
            (App::Isim, isim::GBANL) => "EF.GBANL",
            (_, usim::AD) => "EF.AD",
            (_, usim::ARR) => "EF.ARR",
            (_, usim::NAFKCA) => "EF.NAFKCA",
            _ => return None,
        })
    }
}

/// The name of a file whose FID means the same in every DF: the MF's files, the current ADF, and
/// the GSM-era DFs.
pub const fn common_file_name(fid: u16) -> Option<&'static str> {
    Some(match fid {
        FID_MF => "MF",
        FID_ICCID => "EF.ICCID",
        FID_DIR => "EF.DIR",
        FID_PL => "EF.PL",
        FID_ARR => "EF.ARR",
        FID_CURRENT_ADF => "current ADF",
        FID_DF_TELECOM => "DF.TELECOM",
        FID_DF_GSM => "DF.GSM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gba_and_mbms_fids_of_the_spec_digest() {
        // spec/uicc-gba.md §3 (TS 31.102 §4.2.79–§4.2.83, TS 31.103 §4.2.9–§4.2.10).
        assert_eq!((usim::GBABP, usim::MSK, usim::MUK, usim::GBANL), (0x6FD6, 0x6FD7, 0x6FD8, 0x6FDA));
        assert_eq!((isim::GBABP, isim::GBANL), (0x6FD5, 0x6FD7));
        assert_eq!(App::Usim.ef_name(0x6FD7), Some("EF.MSK"));
        assert_eq!(App::Isim.ef_name(0x6FD7), Some("EF.GBANL"));
    }

    #[test]
    fn applications_by_aid() {
        let usim = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x89];
        assert_eq!(App::of_aid(&usim), Some(App::Usim));
        assert_eq!(App::of_aid(&[0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04]), Some(App::Isim));
        assert_eq!(App::of_aid(&[0xA0, 0x00, 0x00, 0x00, 0x87, 0x10]), None);
        assert_eq!(App::Usim.aid_prefix()[..5], RID_3GPP);
    }
}
