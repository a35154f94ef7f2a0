//! Atomic NVM updates for UPDATE BINARY / UPDATE RECORD (TS 102 221 §14.1.2) and every other
//! multi-field change of card state: a redo journal in the NVM, so that a power cut leaves the old
//! or the new state, never a mix.
//!
//! A [`Transaction`] writes its entries into the journal body, never to their home. `commit` then
//! writes the body length, then the one-byte commit mark, then copies each entry home, then clears
//! the mark. [`recover`], run at power-on, replays a journal whose mark is set and ignores one whose
//! mark is clear. The fault model: a power cut may stop any `write` call part-way (leaving any
//! mix of old and new bytes in the range it was writing) and stops all later calls; a one-byte
//! write either happens or does not. Since the mark is set by a one-byte write issued only after the
//! body and its length were completely written, a set mark always means a complete journal, and
//! replaying it is idempotent, so a cut during replay is repaired by the next replay.

use crate::layout::{JOURNAL_BODY, JOURNAL_MARK, JOURNAL_USED, STATE_START, USED};
use crate::nvm::{Nvm, NvmError};

/// Mark value of a committed journal whose entries may not all be home yet.
const MARK_COMMITTED: u8 = 0xC3;
/// Mark value of an empty journal (the erased state).
const MARK_CLEAR: u8 = 0xFF;
/// Bytes of an entry header: home offset and length, both big-endian u16.
const ENTRY_HEADER_LEN: usize = 4;
/// Bytes copied per NVM write while replaying.
const COPY_CHUNK: usize = 64;

/// A set of NVM writes that land all together or not at all.
pub(crate) struct Transaction<'n, N: Nvm> {
    nvm: &'n mut N,
    used: usize,
}

impl<'n, N: Nvm> Transaction<'n, N> {
    /// Start a transaction. The journal must be clear (it always is outside `commit`).
    pub(crate) fn begin(nvm: &'n mut N) -> Self {
        Transaction { nvm, used: 0 }
    }

    /// Stage `data` to be written at `offset` when the transaction commits.
    ///
    /// `OutOfRange` if the target lies outside the persistent state or the journal is full.
    pub(crate) fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError> {
        if !entry_target_valid(offset, data.len()) {
            return Err(NvmError::OutOfRange);
        }
        let at = self.used;
        let end = at.checked_add(ENTRY_HEADER_LEN + data.len()).ok_or(NvmError::OutOfRange)?;
        if end > JOURNAL_BODY.len {
            return Err(NvmError::OutOfRange);
        }
        let mut header = [0u8; ENTRY_HEADER_LEN];
        header[..2].copy_from_slice(&(offset as u16).to_be_bytes());
        header[2..].copy_from_slice(&(data.len() as u16).to_be_bytes());
        self.nvm.write(JOURNAL_BODY.offset + at, &header)?;
        self.nvm.write(JOURNAL_BODY.offset + at + ENTRY_HEADER_LEN, data)?;
        self.used = end;
        Ok(())
    }

    /// Make the staged writes durable and apply them.
    pub(crate) fn commit(self) -> Result<(), NvmError> {
        if self.used == 0 {
            return Ok(());
        }
        self.nvm.write(JOURNAL_USED.offset, &(self.used as u16).to_be_bytes())?;
        self.nvm.write(JOURNAL_MARK.offset, &[MARK_COMMITTED])?;
        replay(self.nvm, self.used)?;
        self.nvm.write(JOURNAL_MARK.offset, &[MARK_CLEAR])
    }
}

/// Whether an entry may target `offset..offset + len`: inside the persistent state, never the
/// header or the journal itself.
fn entry_target_valid(offset: usize, len: usize) -> bool {
    len > 0 && offset >= STATE_START && offset.checked_add(len).is_some_and(|end| end <= USED)
}

/// Finish an interrupted commit: replay a committed journal, then clear it. An uncommitted journal
/// is left as it is (its entries are simply never applied). `OutOfRange` if a committed journal is
/// malformed, which the fault model rules out; the card then refuses to work rather than guess.
pub(crate) fn recover<N: Nvm>(nvm: &mut N) -> Result<(), NvmError> {
    let mut mark = [0u8; 1];
    nvm.read(JOURNAL_MARK.offset, &mut mark)?;
    if mark[0] != MARK_COMMITTED {
        return Ok(());
    }
    let mut used = [0u8; 2];
    nvm.read(JOURNAL_USED.offset, &mut used)?;
    replay(nvm, usize::from(u16::from_be_bytes(used)))?;
    nvm.write(JOURNAL_MARK.offset, &[MARK_CLEAR])
}

/// Check every entry of a journal body of `used` bytes, then copy each home.
fn replay<N: Nvm>(nvm: &mut N, used: usize) -> Result<(), NvmError> {
    if used > JOURNAL_BODY.len {
        return Err(NvmError::OutOfRange);
    }
    // First pass: validate, so that a malformed journal applies nothing.
    let mut at = 0;
    while at < used {
        let (offset, len) = entry_header(nvm, at)?;
        if !entry_target_valid(offset, len) || at + ENTRY_HEADER_LEN + len > used {
            return Err(NvmError::OutOfRange);
        }
        at += ENTRY_HEADER_LEN + len;
    }
    let mut at = 0;
    let mut chunk = [0u8; COPY_CHUNK];
    while at < used {
        let (offset, len) = entry_header(nvm, at)?;
        let source = JOURNAL_BODY.offset + at + ENTRY_HEADER_LEN;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(COPY_CHUNK);
            let buf = chunk.get_mut(..n).ok_or(NvmError::OutOfRange)?;
            nvm.read(source + done, buf)?;
            nvm.write(offset + done, buf)?;
            done += n;
        }
        at += ENTRY_HEADER_LEN + len;
    }
    Ok(())
}

fn entry_header<N: Nvm>(nvm: &N, at: usize) -> Result<(usize, usize), NvmError> {
    let mut header = [0u8; ENTRY_HEADER_LEN];
    nvm.read(JOURNAL_BODY.offset + at, &mut header)?;
    let offset = usize::from(u16::from_be_bytes([header[0], header[1]]));
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    Ok((offset, len))
}

/// Reset the journal to clear (personalization).
pub(crate) fn format<N: Nvm>(nvm: &mut N) -> Result<(), NvmError> {
    nvm.write(JOURNAL_USED.offset, &[0, 0])?;
    nvm.write(JOURNAL_MARK.offset, &[MARK_CLEAR])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{self, NVM_SIZE};
    use crate::nvm::RamNvm;
    use crate::testing::{PowerCutNvm, Tear};

    const A: usize = layout::K.offset;
    const B: usize = layout::SQN_ARRAY.offset + 100;

    fn blank() -> RamNvm<NVM_SIZE> {
        let mut nvm = RamNvm::new();
        format(&mut nvm).unwrap();
        nvm
    }

    fn two_field_update<N: Nvm>(nvm: &mut N) -> Result<(), NvmError> {
        let mut t = Transaction::begin(nvm);
        t.write(A, &[1; 16])?;
        t.write(B, &[2; 70])?;
        t.commit()
    }

    fn image_without_journal(n: &[u8]) -> Vec<u8> {
        let mut v = n.to_vec();
        v[JOURNAL_MARK.offset..JOURNAL_BODY.end()].fill(0);
        v
    }

    #[test]
    fn commit_applies_every_entry() {
        let mut nvm = blank();
        two_field_update(&mut nvm).unwrap();
        let img = nvm.as_bytes();
        assert_eq!(&img[A..A + 16], &[1; 16]);
        assert_eq!(&img[B..B + 70], &[2; 70]);
        assert_eq!(img[JOURNAL_MARK.offset], MARK_CLEAR);
    }

    #[test]
    fn targets_outside_the_state_are_refused() {
        let mut nvm = blank();
        let mut t = Transaction::begin(&mut nvm);
        assert_eq!(t.write(JOURNAL_BODY.offset, &[0]), Err(NvmError::OutOfRange));
        assert_eq!(t.write(USED - 1, &[0, 0]), Err(NvmError::OutOfRange));
        assert_eq!(t.write(usize::MAX, &[0]), Err(NvmError::OutOfRange));
        assert_eq!(t.write(STATE_START, &[0; JOURNAL_BODY.len]), Err(NvmError::OutOfRange));
    }

    #[test]
    fn a_cut_at_any_write_leaves_old_or_new_after_recovery() {
        let old = blank();
        let mut probe = PowerCutNvm::new(old.clone());
        two_field_update(&mut probe).unwrap();
        let writes = probe.writes();
        let new = image_without_journal(probe.inner().as_bytes());
        let old_img = image_without_journal(old.as_bytes());
        for tear in Tear::ALL {
            for k in 0..writes {
                let cut = PowerCutNvm::new(old.clone());
                cut.arm(k, tear);
                let mut cut = cut;
                assert_eq!(two_field_update(&mut cut), Err(NvmError::PowerLost));
                let mut nvm = cut.into_inner();
                recover(&mut nvm).unwrap();
                let img = image_without_journal(nvm.as_bytes());
                assert!(img == old_img || img == new, "cut at write {k} ({tear:?}) left a mix");
                // Recovery itself is cut at each of its writes, then run again.
                let mut probe = PowerCutNvm::new(nvm.clone());
                recover(&mut probe).unwrap();
                for j in 0..probe.writes() {
                    let again = PowerCutNvm::new(nvm.clone());
                    again.arm(j, tear);
                    let mut again = again;
                    assert_eq!(recover(&mut again), Err(NvmError::PowerLost));
                    let mut done = again.into_inner();
                    recover(&mut done).unwrap();
                    assert_eq!(image_without_journal(done.as_bytes()), img);
                }
            }
        }
    }

    #[test]
    fn a_malformed_committed_journal_is_refused_and_applies_nothing() {
        let mut nvm = blank();
        nvm.write(JOURNAL_BODY.offset, &[0x00, 0x00, 0x00, 0x01, 0xAA]).unwrap(); // targets the header
        nvm.write(JOURNAL_USED.offset, &[0, 5]).unwrap();
        nvm.write(JOURNAL_MARK.offset, &[MARK_COMMITTED]).unwrap();
        let before = nvm.as_bytes().to_vec();
        assert_eq!(recover(&mut nvm), Err(NvmError::OutOfRange));
        assert_eq!(nvm.as_bytes(), &before[..]);
    }
}
