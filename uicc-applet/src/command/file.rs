//! File commands of TS 102 221 §11.1.1 to §11.1.6: SELECT (with the FCP of §11.1.1.3), STATUS,
//! READ BINARY, UPDATE BINARY, READ RECORD, UPDATE RECORD, and the access rules of §9.2.

use apdu::Status;

use super::{Context, Reply, Volatile};
use crate::error::Error;
use crate::fs::{
    self, Access, App, Df, Ef, FID_ARR, FID_CURRENT_ADF, FID_MF, File, PARTIAL_AID_MIN, Structure,
};
use crate::journal::Transaction;
use crate::layout;
use crate::nvm::Nvm;

/// Life cycle status "operational, activated" (TS 102 221 §11.1.1.4.9).
const LCSI_OPERATIONAL_ACTIVATED: u8 = 0x05;
/// Data coding byte of the file descriptor (TS 102 221 §11.1.1.4.3).
const DATA_CODING: u8 = 0x21;
/// File descriptor byte of a DF or ADF (TS 102 221 §11.1.1.4.3).
const FDB_DF: u8 = 0x78;
/// File descriptor byte of a shareable transparent working EF.
const FDB_TRANSPARENT: u8 = 0x41;
/// File descriptor byte of a shareable linear fixed working EF.
const FDB_LINEAR_FIXED: u8 = 0x42;
/// UICC characteristics of the MF's proprietary information (TS 102 221 §11.1.1.4.6.1, mandatory
/// for the MF): clock stop allowed with no preferred level, supply voltage classes A, B and C, as
/// commercial UICCs answer.
const UICC_CHARACTERISTICS: u8 = 0x71;
/// PIN status template DO of the MF and the ADFs (TS 102 221 §11.1.1.4, §9.5): PS_DO marks both key
/// references that follow as enabled (b8 for the first, b7 for the second): PIN1 (`01`) and ADM1 (`0A`).
const PIN_STATUS_TEMPLATE: [u8; 9] = [0x90, 0x01, 0xC0, 0x83, 0x01, 0x01, 0x83, 0x01, 0x0A];

fn put<const M: usize>(out: &mut heapless::Vec<u8, M>, tag: u8, value: &[u8]) -> Result<(), Error> {
    let mut len = [0u8; 4];
    let n = apdu::tlv::write_length(value.len(), &mut len).map_err(|_| Error::TechnicalProblem)?;
    out.push(tag).map_err(|_| Error::TechnicalProblem)?;
    out.extend_from_slice(len.get(..n).unwrap_or_default()).map_err(|_| Error::TechnicalProblem)?;
    out.extend_from_slice(value).map_err(|_| Error::TechnicalProblem)
}

/// Append the FCP template (tag `62`) of `file` to `reply` (TS 102 221 §11.1.1.3).
pub(crate) fn write_fcp(file: File, reply: &mut Reply) -> Result<(), Error> {
    write_fcp_with(file, reply, true)
}

/// [`write_fcp`], with the life cycle status of an EF left out when `lcsi` is false (a planted
/// defect of the `testing` feature).
fn write_fcp_with(file: File, reply: &mut Reply, lcsi: bool) -> Result<(), Error> {
    let mut fcp = heapless::Vec::<u8, 64>::new();
    let [arr_hi, arr_lo] = FID_ARR.to_be_bytes();
    match file {
        File::Df(df) => {
            put(&mut fcp, 0x82, &[FDB_DF, DATA_CODING])?;
            match df {
                Df::Mf => {
                    put(&mut fcp, 0x83, &FID_MF.to_be_bytes())?;
                    put(&mut fcp, 0xA5, &[0x80, 0x01, UICC_CHARACTERISTICS])?;
                }
                Df::Adf(app) => put(&mut fcp, 0x84, app.aid())?,
            }
            put(&mut fcp, 0x8A, &[LCSI_OPERATIONAL_ACTIVATED])?;
            put(&mut fcp, 0x8B, &[arr_hi, arr_lo, df.arr_record()])?;
            put(&mut fcp, 0xC6, &PIN_STATUS_TEMPLATE)?;
        }
        File::Ef(ef) => {
            let info = ef.info();
            match info.structure {
                Structure::Transparent { .. } => put(&mut fcp, 0x82, &[FDB_TRANSPARENT, DATA_CODING])?,
                Structure::LinearFixed { record_len, records } => {
                    put(&mut fcp, 0x82, &[FDB_LINEAR_FIXED, DATA_CODING, 0x00, record_len, records])?
                }
            }
            put(&mut fcp, 0x83, &info.fid.to_be_bytes())?;
            if lcsi {
                put(&mut fcp, 0x8A, &[LCSI_OPERATIONAL_ACTIVATED])?;
            }
            put(&mut fcp, 0x8B, &[arr_hi, arr_lo, info.arr_record])?;
            put(&mut fcp, 0x80, &(info.structure.size() as u16).to_be_bytes())?;
            // Without tag 88 the SFI would default to the FID's low 5 bits (§11.1.1.4.8); an
            // empty 88 says the EF has no SFI.
            match info.sfi {
                Some(sfi) => put(&mut fcp, 0x88, &[sfi << 3])?,
                None => put(&mut fcp, 0x88, &[])?,
            }
        }
    }
    put(reply, 0x62, &fcp)
}

fn check(access: Access, vol: &Volatile) -> Result<(), Error> {
    let granted = match access {
        Access::Always => true,
        Access::Pin1 => vol.pin1_verified,
        Access::Adm1 => vol.adm1_verified,
        Access::Never => false,
    };
    if granted { Ok(()) } else { Err(Error::SecurityStatusNotSatisfied) }
}

fn select(vol: &mut Volatile, file: File) {
    match file {
        File::Df(df) => {
            vol.current_df = df;
            vol.current_ef = None;
        }
        File::Ef(ef) => {
            vol.current_df = ef.info().parent;
            vol.current_ef = Some(ef);
        }
    }
    if let Df::Adf(app) = vol.current_df {
        vol.current_app = Some(app);
    }
    vol.record = None;
}

/// The EF a READ/UPDATE addresses: the one named by SFI in the current directory (read or updated
/// without a SELECT, TS 102 221 §14.1.1; it becomes the current EF), or the current EF.
fn target_ef(vol: &mut Volatile, sfi: Option<u8>) -> Result<Ef, Error> {
    match sfi {
        Some(sfi) => {
            let ef = fs::child_ef_by_sfi(vol.current_df, sfi).ok_or(Error::FileNotFound)?;
            if vol.current_ef != Some(ef) {
                select(vol, File::Ef(ef));
            }
            Ok(ef)
        }
        None => vol.current_ef.ok_or(Error::NoEfSelected),
    }
}

/// Which of several applications matching a right-truncated AID (TS 102 221 Table 11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occurrence {
    /// First or only.
    First,
    /// Last.
    Last,
    /// Next after the current application.
    Next,
    /// Previous before the current application.
    Previous,
}

/// What SELECT names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelectTarget<'a> {
    /// P1 `00` with no data: the MF.
    Mf,
    /// P1 `00`: a file identifier.
    Fid(u16),
    /// P1 `04`: an AID, possibly right-truncated.
    Aid(&'a [u8], Occurrence),
    /// P1 `08`: a path from the MF (without 3F00).
    PathFromMf(&'a [u8]),
    /// P1 `09`: a path from the current DF.
    PathFromCurrent(&'a [u8]),
}

/// SELECT (TS 102 221 §11.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Select<'a> {
    /// The file named.
    pub target: SelectTarget<'a>,
    /// P2 `04` (FCP template) or `00` (FCI, see [`P2_RETURN_FCI`]) rather than `0C` (no data).
    pub fcp: bool,
}

/// P2 `00` of SELECT: "return FCI template" in ISO/IEC 7816-4 (Table 40, b4-b3 = `00`). TS 102 221
/// Table 11.2 lists only `04` (FCP) and `0C` (no data), but real UICCs are ISO 7816-4 cards and
/// accept `00`: terminals and tools send `00 A4 04 00 <AID>` (GlobalPlatform's SELECT, the Symbian
/// and AOSP SIM stacks' application selection). A UICC has no FCI other than its FCP (TS 102 221
/// §11.1.1.3), so the card answers P2 `00` exactly as `04`: the FCP template.
pub(crate) const P2_RETURN_FCI: u8 = 0x00;

impl<'a> Select<'a> {
    /// P2 (Table 11.2): b8 and b5 zero, b7-b6 activation `00` (termination `10` is not supported),
    /// b4-b3 `01` FCP, `00` FCI (answered as FCP) or `11` no data, b2-b1 occurrence (only with
    /// P1 `04`).
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        let fcp = match c.p2 & 0xFC {
            0x04 | P2_RETURN_FCI => true,
            0x0C => false,
            _ => return Err(Error::IncorrectP1P2),
        };
        let occurrence = match c.p2 & 0x03 {
            0 => Occurrence::First,
            1 => Occurrence::Last,
            2 => Occurrence::Next,
            _ => Occurrence::Previous,
        };
        if c.p1 != 0x04 && occurrence != Occurrence::First {
            return Err(Error::IncorrectP1P2);
        }
        let data = c.data;
        let target = match c.p1 {
            0x00 => match *data {
                [] => SelectTarget::Mf,
                [hi, lo] => SelectTarget::Fid(u16::from_be_bytes([hi, lo])),
                _ => return Err(Error::WrongLength),
            },
            0x04 if !data.is_empty() && data.len() <= 16 => SelectTarget::Aid(data, occurrence),
            0x08 | 0x09 if !data.is_empty() && data.len().is_multiple_of(2) => {
                if c.p1 == 0x08 {
                    SelectTarget::PathFromMf(data)
                } else {
                    SelectTarget::PathFromCurrent(data)
                }
            }
            0x04 | 0x08 | 0x09 => return Err(Error::WrongLength),
            _ => return Err(Error::IncorrectP1P2),
        };
        Ok(Select { target, fcp })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let lcsi = !super::planted!(ctx, MissingFcpTag);
        let vol = &mut *ctx.vol;
        let file = match self.target {
            SelectTarget::Mf => File::Df(Df::Mf),
            SelectTarget::Fid(fid) => resolve_fid(vol, fid)?,
            SelectTarget::Aid(aid, occurrence) => File::Df(Df::Adf(resolve_aid(vol, aid, occurrence)?)),
            SelectTarget::PathFromMf(path) => resolve_path(vol, Df::Mf, path, true)?,
            SelectTarget::PathFromCurrent(path) => resolve_path(vol, vol.current_df, path, false)?,
        };
        if self.fcp {
            write_fcp_with(file, reply, lcsi)?;
        }
        select(vol, file);
        Ok(Status::Ok)
    }
}

/// Selection by FID (TS 102 221 §11.1.1.2): the MF, 7FFF, then the children of the
/// current DF, the parent DF, the children of the parent DF.
fn resolve_fid(vol: &Volatile, fid: u16) -> Result<File, Error> {
    if fid == FID_MF {
        return Ok(File::Df(Df::Mf));
    }
    if fid == FID_CURRENT_ADF {
        return vol.current_app.map(|app| File::Df(Df::Adf(app))).ok_or(Error::FileNotFound);
    }
    if let Some(file) = fs::child(vol.current_df, fid) {
        return Ok(file);
    }
    if let Some(parent) = vol.current_df.parent() {
        if fs::df_fid(parent) == Some(fid) {
            return Ok(File::Df(parent));
        }
        if let Some(file) = fs::child(parent, fid) {
            return Ok(file);
        }
    }
    Err(Error::FileNotFound)
}

/// Selection by AID, full or right-truncated (at least the RID).
fn resolve_aid(vol: &Volatile, aid: &[u8], occurrence: Occurrence) -> Result<App, Error> {
    if aid.len() < PARTIAL_AID_MIN {
        return Err(Error::FileNotFound);
    }
    let matches = |app: &App| app.aid().starts_with(aid);
    let found = match occurrence {
        Occurrence::First => App::ALL.into_iter().find(matches),
        Occurrence::Last => App::ALL.into_iter().rev().find(matches),
        Occurrence::Next => {
            let after = vol.current_app.map_or(0, |app| app.index() + 1);
            App::ALL.into_iter().skip(after).find(matches)
        }
        Occurrence::Previous => {
            let before = vol.current_app.map_or(App::ALL.len(), App::index);
            App::ALL.into_iter().take(before).rev().find(matches)
        }
    };
    found.ok_or(Error::FileNotFound)
}

/// Selection by path (TS 102 221 §8.4, §11.1.1.2): each FID a child of the DF reached so far; from the MF,
/// 7FFF may open the path as the current ADF.
fn resolve_path(vol: &Volatile, start: Df, path: &[u8], from_mf: bool) -> Result<File, Error> {
    let mut df = start;
    let mut file = File::Df(start);
    for (i, pair) in path.chunks_exact(2).enumerate() {
        let &[hi, lo] = pair else { return Err(Error::WrongLength) };
        let fid = u16::from_be_bytes([hi, lo]);
        if let File::Ef(_) = file {
            // Only the last element may name an EF.
            return Err(Error::FileNotFound);
        }
        file = if i == 0 && from_mf && fid == FID_CURRENT_ADF {
            File::Df(Df::Adf(vol.current_app.ok_or(Error::FileNotFound)?))
        } else {
            fs::child(df, fid).ok_or(Error::FileNotFound)?
        };
        if let File::Df(next) = file {
            df = next;
        }
    }
    Ok(file)
}

/// STATUS P2 (TS 102 221 §11.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusResponse {
    /// `00`: FCP of the current directory.
    Fcp,
    /// `01`: DF name (AID) of the current application.
    DfName,
    /// `0C`: no data.
    Nothing,
}

/// STATUS (TS 102 221 §11.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusCommand {
    /// What to return.
    pub response: StatusResponse,
}

impl StatusCommand {
    /// P1 `00` / `01` / `02` (application status indication; nothing to do for any of them).
    pub(crate) fn parse(c: &apdu::Command<'_>) -> Result<Self, Error> {
        if c.p1 > 0x02 {
            return Err(Error::IncorrectP1P2);
        }
        let response = match c.p2 {
            0x00 => StatusResponse::Fcp,
            0x01 => StatusResponse::DfName,
            0x0C => StatusResponse::Nothing,
            _ => return Err(Error::IncorrectP1P2),
        };
        if !c.data.is_empty() {
            return Err(Error::WrongLength);
        }
        Ok(StatusCommand { response })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        match self.response {
            StatusResponse::Fcp => write_fcp(File::Df(ctx.vol.current_df), reply)?,
            StatusResponse::DfName => {
                let app = ctx.vol.current_app.ok_or(Error::ReferencedDataNotFound)?;
                put(reply, 0x84, app.aid())?;
            }
            StatusResponse::Nothing => {}
        }
        Ok(Status::Ok)
    }
}

/// P1-P2 of READ/UPDATE BINARY (TS 102 221 §11.1.3.2): a 15-bit offset, or with P1 b8 set an SFI
/// in P1 b5-b1 and an 8-bit offset in P2.
fn binary_address(p1: u8, p2: u8) -> Result<(Option<u8>, u16), Error> {
    if p1 & 0x80 == 0 {
        return Ok((None, u16::from_be_bytes([p1, p2])));
    }
    let sfi = p1 & 0x1F;
    if p1 & 0x60 != 0 || sfi == 0 {
        return Err(Error::IncorrectP1P2);
    }
    Ok((Some(sfi), u16::from(p2)))
}

/// The transparent EF `target_ef` names, with its size, once the access condition holds.
fn transparent<N: Nvm>(
    ctx: &mut Context<'_, N>,
    sfi: Option<u8>,
    mode: fn(fs::AccessRule) -> Access,
) -> Result<(Ef, usize), Error> {
    let ef = target_ef(ctx.vol, sfi)?;
    let Structure::Transparent { size } = ef.info().structure else {
        return Err(Error::IncompatibleFileStructure);
    };
    check(mode(ef.rule()), ctx.vol)?;
    Ok((ef, usize::from(size)))
}

/// READ BINARY (TS 102 221 §11.1.3). Le is mandatory; the card returns what lies between the
/// offset and the end of the file (at most 256 bytes), and the APDU edge fits it to Le.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadBinary {
    /// SFI, if the EF is named by one.
    pub sfi: Option<u8>,
    /// Offset of the first byte.
    pub offset: u16,
}

impl ReadBinary {
    pub(crate) fn parse(c: &apdu::Command<'_>) -> Result<Self, Error> {
        let (sfi, offset) = binary_address(c.p1, c.p2)?;
        if !c.data.is_empty() || c.ne.is_none() {
            return Err(Error::WrongLength);
        }
        Ok(ReadBinary { sfi, offset })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let (ef, size) = transparent(ctx, self.sfi, |r| r.read)?;
        let offset = usize::from(self.offset);
        if offset >= size {
            return Err(Error::OffsetOutsideFile);
        }
        let n = (size - offset).min(reply.capacity());
        reply.resize(n, 0).map_err(|_| Error::TechnicalProblem)?;
        ctx.nvm.read(layout::ef(ef).offset + offset, reply)?;
        Ok(Status::Ok)
    }
}

/// UPDATE BINARY (TS 102 221 §11.1.4): atomic, through the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpdateBinary<'a> {
    /// SFI, if the EF is named by one.
    pub sfi: Option<u8>,
    /// Offset of the first byte.
    pub offset: u16,
    /// New content.
    pub data: &'a [u8],
}

impl<'a> UpdateBinary<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        let (sfi, offset) = binary_address(c.p1, c.p2)?;
        if c.data.is_empty() {
            return Err(Error::WrongLength);
        }
        Ok(UpdateBinary { sfi, offset, data: c.data })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>) -> Result<Status, Error> {
        let (ef, size) = transparent(ctx, self.sfi, |r| r.update)?;
        let offset = usize::from(self.offset);
        if offset >= size {
            return Err(Error::OffsetOutsideFile);
        }
        if self.data.len() > size - offset {
            return Err(Error::WrongLength);
        }
        let mut t = Transaction::begin(ctx.nvm);
        t.write(layout::ef(ef).offset + offset, self.data)?;
        t.commit()?;
        Ok(Status::Ok)
    }
}

/// Record addressing mode (TS 102 221 §11.1.5.2, P2 b3-b1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordMode {
    /// `04`: record P1, or the current record when P1 is `00`; the record pointer stays.
    Absolute(u8),
    /// `02`: the record after the pointer (the first if none); the pointer moves there.
    Next,
    /// `03`: the record before the pointer (the last if none); the pointer moves there.
    Previous,
}

/// P2 of READ/UPDATE RECORD: SFI in b8-b4 (`00000` = current EF), mode in b3-b1.
fn record_address(p1: u8, p2: u8) -> Result<(Option<u8>, RecordMode), Error> {
    let sfi = match p2 >> 3 {
        0 => None,
        0x1F => return Err(Error::IncorrectP1P2),
        sfi => Some(sfi),
    };
    let mode = match p2 & 0x07 {
        0x02 => RecordMode::Next,
        0x03 => RecordMode::Previous,
        0x04 => RecordMode::Absolute(p1),
        _ => return Err(Error::IncorrectP1P2),
    };
    Ok((sfi, mode))
}

/// The record a mode names in a file of `records` records, and whether the pointer moves to it.
fn resolve_record(pointer: Option<u8>, mode: RecordMode, records: u8) -> Result<(u8, bool), Error> {
    match mode {
        RecordMode::Absolute(0) => pointer.map(|r| (r, false)).ok_or(Error::RecordNotFound),
        RecordMode::Absolute(n) if n <= records => Ok((n, false)),
        RecordMode::Absolute(_) => Err(Error::RecordNotFound),
        RecordMode::Next => match pointer {
            None if records > 0 => Ok((1, true)),
            Some(r) if r < records => Ok((r + 1, true)),
            _ => Err(Error::RecordNotFound),
        },
        RecordMode::Previous => match pointer {
            None if records > 0 => Ok((records, true)),
            Some(r) if r > 1 => Ok((r - 1, true)),
            _ => Err(Error::RecordNotFound),
        },
    }
}

/// The linear fixed EF addressed, its record length and count, once the access condition holds.
fn linear_fixed<N: Nvm>(
    ctx: &mut Context<'_, N>,
    sfi: Option<u8>,
    mode: fn(fs::AccessRule) -> Access,
) -> Result<(Ef, usize, u8), Error> {
    let ef = target_ef(ctx.vol, sfi)?;
    let Structure::LinearFixed { record_len, records } = ef.info().structure else {
        return Err(Error::IncompatibleFileStructure);
    };
    check(mode(ef.rule()), ctx.vol)?;
    Ok((ef, usize::from(record_len), records))
}

/// READ RECORD (TS 102 221 §11.1.5). Le is mandatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadRecord {
    /// SFI, if the EF is named by one.
    pub sfi: Option<u8>,
    /// Which record.
    pub mode: RecordMode,
}

impl ReadRecord {
    pub(crate) fn parse(c: &apdu::Command<'_>) -> Result<Self, Error> {
        let (sfi, mode) = record_address(c.p1, c.p2)?;
        if !c.data.is_empty() || c.ne.is_none() {
            return Err(Error::WrongLength);
        }
        Ok(ReadRecord { sfi, mode })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let (ef, record_len, records) = linear_fixed(ctx, self.sfi, |r| r.read)?;
        let (record, moves) = resolve_record(ctx.vol.record, self.mode, records)?;
        reply.resize(record_len, 0).map_err(|_| Error::TechnicalProblem)?;
        ctx.nvm.read(layout::ef(ef).offset + usize::from(record - 1) * record_len, reply)?;
        if moves {
            ctx.vol.record = Some(record);
        }
        Ok(Status::Ok)
    }
}

/// UPDATE RECORD (TS 102 221 §11.1.6): the data must be exactly one record; atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpdateRecord<'a> {
    /// SFI, if the EF is named by one.
    pub sfi: Option<u8>,
    /// Which record.
    pub mode: RecordMode,
    /// New record content.
    pub data: &'a [u8],
}

impl<'a> UpdateRecord<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        let (sfi, mode) = record_address(c.p1, c.p2)?;
        if c.data.is_empty() {
            return Err(Error::WrongLength);
        }
        Ok(UpdateRecord { sfi, mode, data: c.data })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>) -> Result<Status, Error> {
        let (ef, record_len, records) = linear_fixed(ctx, self.sfi, |r| r.update)?;
        if self.data.len() != record_len {
            return Err(Error::WrongLength);
        }
        let (record, moves) = resolve_record(ctx.vol.record, self.mode, records)?;
        let mut t = Transaction::begin(ctx.nvm);
        t.write(layout::ef(ef).offset + usize::from(record - 1) * record_len, self.data)?;
        t.commit()?;
        if moves {
            ctx.vol.record = Some(record);
        }
        Ok(Status::Ok)
    }
}
