//! The card's file system (TS 102 221 §8, TS 31.102 §4.2, TS 31.103 §4.2): the MF, the USIM and
//! ISIM ADFs and their EFs, with structure, identifiers and access rules. A closed, static tree:
//! the card creates and deletes no files.

/// AID of the USIM application (TS 101 220 Annex E: RID `A000000087`, PIX `1002`, then the
/// country code `FFFF`, provider `FFFF89` and application provider field `07090000`).
pub const USIM_AID: [u8; 16] =
    [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x07, 0x09, 0x00, 0x00];
/// AID of the ISIM application (TS 101 220 Annex E, PIX `1004`).
pub const ISIM_AID: [u8; 16] =
    [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x07, 0x09, 0x00, 0x00];
/// Shortest right-truncated AID SELECT accepts (TS 102 221 §11.1.1.2): the 5-byte RID of TS 101 220.
pub const PARTIAL_AID_MIN: usize = 5;

/// FIDs of the MF, of the current ADF and of EF.ARR (referenced from every FCP's tag `8B`).
pub use uicc_vocab::files::{FID_ARR, FID_CURRENT_ADF, FID_MF};
use uicc_vocab::files::{FID_DIR, FID_ICCID, FID_PL, isim, usim};

/// Records in EF.DIR: one per application (TS 102 221 §13.1).
pub const DIR_RECORDS: u8 = 2;
/// EF.DIR record length. An application template holds at most 127 bytes (TS 102 221 §13.1); ours
/// takes 26, and 40 matches the sample card of HARNESS.md §4.
pub const DIR_RECORD_LEN: u8 = 40;
/// EF.ICCID size (TS 102 221 §13.2).
pub const ICCID_SIZE: u16 = uicc_vocab::ef::iccid::ICCID_LEN as u16;
/// EF.PL size: five 2-byte language codes (TS 102 221 §13.3).
pub const PL_SIZE: u16 = 10;
/// EF.ARR record length: two AM_DO/SC_DO pairs of 11 bytes each, padded (TS 102 221 §9.2.4).
pub const ARR_RECORD_LEN: u8 = 24;
/// EF.IMSI size (TS 31.102 §4.2.2).
pub const IMSI_SIZE: u16 = uicc_vocab::ef::imsi::IMSI_LEN as u16;
/// EF.AD size: operation mode, two bytes of additional information, MNC length (TS 31.102 §4.2.18).
pub const AD_SIZE: u16 = uicc_vocab::ef::ad::AD_LEN as u16;
/// EF.UST size. Services up to n°69 need 9 bytes (TS 31.102 §4.2.8); three more stay free.
pub const UST_SIZE: u16 = 12;
/// EF.GBABP size (TS 31.102 §4.2.79): RAND LV (17) + B-TID LV + key lifetime LV. 128 bytes leave
/// 110 for B-TID and lifetime, room for `base64(RAND)@<BSF FQDN>` plus an XML dateTime.
pub const GBABP_SIZE: u16 = 128;
/// EF.GBANL records (TS 31.102 §4.2.83): one per NAF whose Ks_int_NAF the card keeps.
pub const GBANL_RECORDS: u8 = 8;
/// EF.GBANL record length: `80 L NAF_Id` (FQDN + 5-byte Ua protocol id) and `81 L B-TID`.
pub const GBANL_RECORD_LEN: u8 = 160;
/// EF.MSK records (TS 31.102 §4.2.80): one per (Key Domain ID, Key Group).
pub const MSK_RECORDS: u8 = 4;
/// MSK ID / Time Stamp Counter pairs per EF.MSK record ("n" of TS 31.102 §4.2.80).
pub const MSK_PAIRS_PER_RECORD: u8 = uicc_vocab::open_values::MSKS_PER_KEY_GROUP as u8;
/// EF.MSK record length, 8n + 4 (TS 31.102 §4.2.80).
pub const MSK_RECORD_LEN: u8 = uicc_vocab::ef::msk::RECORD_LEN as u8;
/// EF.MUK records (TS 31.102 §4.2.81): one per BM-SC (MUK Idi).
pub const MUK_RECORDS: u8 = 4;
/// EF.MUK record length: `A0 L {80 L Idr, 82 L Idi} 81 L TS`, Idr and Idi up to about 64 bytes.
pub const MUK_RECORD_LEN: u8 = 160;
/// EF.IMPI size (TS 31.103 §4.2.2): `80 L NAI`.
pub const IMPI_SIZE: u16 = 128;
/// EF.DOMAIN size (TS 31.103 §4.2.3): `80 L domain`.
pub const DOMAIN_SIZE: u16 = 96;
/// EF.IMPU records (TS 31.103 §4.2.4).
pub const IMPU_RECORDS: u8 = 4;
/// EF.IMPU record length: `80 L URI`.
pub const IMPU_RECORD_LEN: u8 = 96;
/// EF.IST size (TS 31.103 §4.2.7); service n°2 (GBA) is in the first byte.
pub const IST_SIZE: u16 = 4;
/// EF.GBANL records in the ISIM (TS 31.103 §4.2.10).
pub const ISIM_GBANL_RECORDS: u8 = 4;

/// The applications on the card, in EF.DIR order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// USIM (TS 31.102).
    Usim,
    /// ISIM (TS 31.103).
    Isim,
}

impl App {
    /// All applications, in EF.DIR record order.
    pub const ALL: [App; 2] = [App::Usim, App::Isim];

    /// The full AID.
    pub const fn aid(self) -> &'static [u8; 16] {
        match self {
            App::Usim => &USIM_AID,
            App::Isim => &ISIM_AID,
        }
    }

    /// The application label of the EF.DIR record (TS 102 221 §13.1).
    pub const fn label(self) -> &'static [u8] {
        match self {
            App::Usim => b"USIM",
            App::Isim => b"ISIM",
        }
    }

    /// Position in [`App::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A dedicated file: the MF or an application's ADF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Df {
    /// The master file 3F00.
    Mf,
    /// An ADF, selectable by AID (TS 102 221 §8.4) or by 7FFF once it is the current application.
    Adf(App),
}

impl Df {
    /// The parent DF (`None` for the MF).
    pub const fn parent(self) -> Option<Df> {
        match self {
            Df::Mf => None,
            Df::Adf(_) => Some(Df::Mf),
        }
    }

    /// The access rule (EF.ARR record number) of the DF itself.
    pub const fn arr_record(self) -> u8 {
        ARR_DF
    }
}

/// Condition under which an access mode is granted (TS 102 221 §9.2.4 security condition DOs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Always (SC_DO `90 00`).
    Always,
    /// After PIN1 verification (key reference `01`).
    Pin1,
    /// After ADM1 verification (key reference `0A`).
    Adm1,
    /// Never (SC_DO `97 00`).
    Never,
}

/// The access conditions of one EF.ARR record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRule {
    /// READ BINARY / READ RECORD (and SEARCH) on an EF; for a DF, the DF's own access mode byte.
    pub read: Access,
    /// UPDATE BINARY / UPDATE RECORD on an EF.
    pub update: Access,
}

/// EF.ARR record: read always, update ADM (TS 102 221 §13 MF files).
pub const ARR_READ_ALW_UPDATE_ADM: u8 = 1;
/// EF.ARR record: read PIN, update ADM (most USIM/ISIM EFs).
pub const ARR_READ_PIN_UPDATE_ADM: u8 = 2;
/// EF.ARR record: read PIN, update PIN (EF.GBABP, TS 31.102 §4.2.79).
pub const ARR_READ_PIN_UPDATE_PIN: u8 = 3;
/// EF.ARR record: read always, update PIN (EF.PL, TS 102 221 §13.3).
pub const ARR_READ_ALW_UPDATE_PIN: u8 = 4;
/// EF.ARR record for the DFs (MF and ADFs): every administrative access mode under ADM. Only
/// its `update` condition is encoded (with the DF access mode byte of ISO/IEC 7816-4 §9.3.2).
pub const ARR_DF: u8 = 5;

/// The rules of EF.ARR, record n at index n-1. The card checks access with these, and EF.ARR is
/// encoded from them, so the two cannot disagree.
pub const ARR_RULES: [AccessRule; 5] = [
    AccessRule { read: Access::Always, update: Access::Adm1 },
    AccessRule { read: Access::Pin1, update: Access::Adm1 },
    AccessRule { read: Access::Pin1, update: Access::Pin1 },
    AccessRule { read: Access::Always, update: Access::Pin1 },
    AccessRule { read: Access::Always, update: Access::Adm1 },
];

/// EF.ARR records.
pub const ARR_RECORDS: u8 = ARR_RULES.len() as u8;

/// The rule of EF.ARR record `record` (1-based).
pub fn arr_rule(record: u8) -> AccessRule {
    ARR_RULES
        .get(usize::from(record).wrapping_sub(1))
        .copied()
        .unwrap_or(AccessRule { read: Access::Never, update: Access::Never })
}

/// How an EF's content is organised (TS 102 221 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// A transparent EF of `size` bytes.
    Transparent {
        /// File size in bytes.
        size: u16,
    },
    /// A linear fixed EF of `records` records of `record_len` bytes.
    LinearFixed {
        /// Record length in bytes.
        record_len: u8,
        /// Number of records.
        records: u8,
    },
}

impl Structure {
    /// Bytes of file body.
    pub const fn size(self) -> usize {
        match self {
            Structure::Transparent { size } => size as usize,
            Structure::LinearFixed { record_len, records } => record_len as usize * records as usize,
        }
    }
}

/// Static description of an EF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfInfo {
    /// File identifier.
    pub fid: u16,
    /// The DF holding it.
    pub parent: Df,
    /// Structure and size.
    pub structure: Structure,
    /// Short file identifier, if the EF has one (TS 102 221 §8.3).
    pub sfi: Option<u8>,
    /// EF.ARR record with its access rule.
    pub arr_record: u8,
}

/// Every EF on the card. The names carry the application because FIDs repeat across ADFs
/// (6FD7 is EF.MSK in the USIM but EF.GBANL in the ISIM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ef {
    /// EF.DIR 2F00 (TS 102 221 §13.1).
    Dir,
    /// EF.ICCID 2FE2 (TS 102 221 §13.2).
    Iccid,
    /// EF.PL 2F05 (TS 102 221 §13.3).
    Pl,
    /// EF.ARR 2F06 (TS 102 221 §13.4).
    Arr,
    /// USIM EF.IMSI 6F07 (TS 31.102 §4.2.2).
    UsimImsi,
    /// USIM EF.AD 6FAD (TS 31.102 §4.2.18).
    UsimAd,
    /// USIM EF.UST 6F38 (TS 31.102 §4.2.8).
    UsimUst,
    /// USIM EF.GBABP 6FD6 (TS 31.102 §4.2.79).
    UsimGbabp,
    /// USIM EF.GBANL 6FDA (TS 31.102 §4.2.83).
    UsimGbanl,
    /// USIM EF.MSK 6FD7 (TS 31.102 §4.2.80).
    UsimMsk,
    /// USIM EF.MUK 6FD8 (TS 31.102 §4.2.81).
    UsimMuk,
    /// ISIM EF.IMPI 6F02 (TS 31.103 §4.2.2).
    IsimImpi,
    /// ISIM EF.DOMAIN 6F03 (TS 31.103 §4.2.3).
    IsimDomain,
    /// ISIM EF.IMPU 6F04 (TS 31.103 §4.2.4).
    IsimImpu,
    /// ISIM EF.AD 6FAD (TS 31.103 §4.2.5).
    IsimAd,
    /// ISIM EF.IST 6F07 (TS 31.103 §4.2.7).
    IsimIst,
    /// ISIM EF.GBABP 6FD5 (TS 31.103 §4.2.9).
    IsimGbabp,
    /// ISIM EF.GBANL 6FD7 (TS 31.103 §4.2.10).
    IsimGbanl,
}

impl Ef {
    /// Number of EFs.
    pub const COUNT: usize = 18;

    /// All EFs, in NVM layout order.
    pub const ALL: [Ef; Ef::COUNT] = [
        Ef::Dir,
        Ef::Iccid,
        Ef::Pl,
        Ef::Arr,
        Ef::UsimImsi,
        Ef::UsimAd,
        Ef::UsimUst,
        Ef::UsimGbabp,
        Ef::UsimGbanl,
        Ef::UsimMsk,
        Ef::UsimMuk,
        Ef::IsimImpi,
        Ef::IsimDomain,
        Ef::IsimImpu,
        Ef::IsimAd,
        Ef::IsimIst,
        Ef::IsimGbabp,
        Ef::IsimGbanl,
    ];

    /// Position in [`Ef::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The EF's static description.
    pub const fn info(self) -> EfInfo {
        use Structure::{LinearFixed, Transparent};
        const MF: Df = Df::Mf;
        const USIM: Df = Df::Adf(App::Usim);
        const ISIM: Df = Df::Adf(App::Isim);
        let (fid, parent, structure, sfi, arr_record) = match self {
            Ef::Dir => (
                FID_DIR,
                MF,
                LinearFixed { record_len: DIR_RECORD_LEN, records: DIR_RECORDS },
                Some(0x1E),
                ARR_READ_ALW_UPDATE_ADM,
            ),
            Ef::Iccid => {
                (FID_ICCID, MF, Transparent { size: ICCID_SIZE }, Some(0x02), ARR_READ_ALW_UPDATE_ADM)
            }
            Ef::Pl => (FID_PL, MF, Transparent { size: PL_SIZE }, Some(0x05), ARR_READ_ALW_UPDATE_PIN),
            Ef::Arr => (
                FID_ARR,
                MF,
                LinearFixed { record_len: ARR_RECORD_LEN, records: ARR_RECORDS },
                Some(0x06),
                ARR_READ_ALW_UPDATE_ADM,
            ),
            Ef::UsimImsi => {
                (usim::IMSI, USIM, Transparent { size: IMSI_SIZE }, Some(0x07), ARR_READ_PIN_UPDATE_ADM)
            }
            Ef::UsimAd => {
                (usim::AD, USIM, Transparent { size: AD_SIZE }, Some(0x03), ARR_READ_ALW_UPDATE_ADM)
            }
            Ef::UsimUst => {
                (usim::UST, USIM, Transparent { size: UST_SIZE }, Some(0x04), ARR_READ_PIN_UPDATE_ADM)
            }
            Ef::UsimGbabp => {
                (usim::GBABP, USIM, Transparent { size: GBABP_SIZE }, None, ARR_READ_PIN_UPDATE_PIN)
            }
            Ef::UsimGbanl => (
                usim::GBANL,
                USIM,
                LinearFixed { record_len: GBANL_RECORD_LEN, records: GBANL_RECORDS },
                None,
                ARR_READ_PIN_UPDATE_ADM,
            ),
            Ef::UsimMsk => (
                usim::MSK,
                USIM,
                LinearFixed { record_len: MSK_RECORD_LEN, records: MSK_RECORDS },
                None,
                ARR_READ_PIN_UPDATE_ADM,
            ),
            Ef::UsimMuk => (
                usim::MUK,
                USIM,
                LinearFixed { record_len: MUK_RECORD_LEN, records: MUK_RECORDS },
                None,
                ARR_READ_PIN_UPDATE_ADM,
            ),
            Ef::IsimImpi => {
                (isim::IMPI, ISIM, Transparent { size: IMPI_SIZE }, Some(0x02), ARR_READ_PIN_UPDATE_ADM)
            }
            Ef::IsimDomain => {
                (isim::DOMAIN, ISIM, Transparent { size: DOMAIN_SIZE }, Some(0x05), ARR_READ_PIN_UPDATE_ADM)
            }
            Ef::IsimImpu => (
                isim::IMPU,
                ISIM,
                LinearFixed { record_len: IMPU_RECORD_LEN, records: IMPU_RECORDS },
                Some(0x04),
                ARR_READ_PIN_UPDATE_ADM,
            ),
            Ef::IsimAd => {
                (isim::AD, ISIM, Transparent { size: AD_SIZE }, Some(0x03), ARR_READ_ALW_UPDATE_ADM)
            }
            Ef::IsimIst => {
                (isim::IST, ISIM, Transparent { size: IST_SIZE }, Some(0x07), ARR_READ_PIN_UPDATE_ADM)
            }
            Ef::IsimGbabp => {
                (isim::GBABP, ISIM, Transparent { size: GBABP_SIZE }, None, ARR_READ_PIN_UPDATE_PIN)
            }
            Ef::IsimGbanl => (
                isim::GBANL,
                ISIM,
                LinearFixed { record_len: GBANL_RECORD_LEN, records: ISIM_GBANL_RECORDS },
                None,
                ARR_READ_PIN_UPDATE_ADM,
            ),
        };
        EfInfo { fid, parent, structure, sfi, arr_record }
    }

    /// The access rule of the EF.
    pub fn rule(self) -> AccessRule {
        arr_rule(self.info().arr_record)
    }
}

/// Any file: a DF or an EF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The MF or an ADF.
    Df(Df),
    /// An elementary file.
    Ef(Ef),
}

/// The EF with identifier `fid` directly under `df`.
pub fn child_ef(df: Df, fid: u16) -> Option<Ef> {
    Ef::ALL.into_iter().find(|ef| {
        let info = ef.info();
        info.parent == df && info.fid == fid
    })
}

/// The EF with short file identifier `sfi` directly under `df`.
pub fn child_ef_by_sfi(df: Df, sfi: u8) -> Option<Ef> {
    Ef::ALL.into_iter().find(|ef| {
        let info = ef.info();
        info.parent == df && info.sfi == Some(sfi)
    })
}

/// A file selectable by FID directly under `df`. ADFs have no FID here: they are reached by AID
/// or through 7FFF (TS 102 221 §8.4), so only EFs are FID children.
pub fn child(df: Df, fid: u16) -> Option<File> {
    child_ef(df, fid).map(File::Ef)
}

/// The FID a DF answers to by FID selection (`None` for an ADF).
pub const fn df_fid(df: Df) -> Option<u16> {
    match df {
        Df::Mf => Some(FID_MF),
        Df::Adf(_) => None,
    }
}
