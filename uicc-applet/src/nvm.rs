//! Non-volatile memory of the card (TS 102 221 §14 "atomicity" expectations): a byte-addressed store
//! behind a trait, so the emulator, a state file and the power-cut tests can each supply their own.

/// Why an NVM access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvmError {
    /// The access lies outside the store.
    OutOfRange,
    /// Power was lost during the write (injected by tests); the write may be partly applied.
    PowerLost,
}

/// Byte-addressed non-volatile memory. A single `write` call may be torn by a power cut; the card's
/// transaction layer makes multi-field updates atomic on top of it.
pub trait Nvm {
    /// Size of the store in bytes.
    fn capacity(&self) -> usize;
    /// Read `buf.len()` bytes at `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), NvmError>;
    /// Write `data` at `offset`.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError>;
}

/// NVM held in RAM, of `N` bytes.
#[derive(Clone)]
pub struct RamNvm<const N: usize> {
    bytes: [u8; N],
}

impl<const N: usize> RamNvm<N> {
    /// A blank (erased, all `FF`) store.
    pub const fn new() -> Self {
        RamNvm { bytes: [0xFF; N] }
    }

    /// The raw image.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<const N: usize> Default for RamNvm<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Nvm for RamNvm<N> {
    fn capacity(&self) -> usize {
        N
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        let end = offset.checked_add(buf.len()).ok_or(NvmError::OutOfRange)?;
        buf.copy_from_slice(self.bytes.get(offset..end).ok_or(NvmError::OutOfRange)?);
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError> {
        let end = offset.checked_add(data.len()).ok_or(NvmError::OutOfRange)?;
        self.bytes.get_mut(offset..end).ok_or(NvmError::OutOfRange)?.copy_from_slice(data);
        Ok(())
    }
}
