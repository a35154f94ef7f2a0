//! Response APDUs of ISO/IEC 7816-4 §5.1: response data followed by SW1 SW2.

use crate::{ApduError, Status};

/// A response APDU borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// Response data (without the status word).
    pub data: &'a [u8],
    /// The status word SW1 SW2.
    pub status: Status,
}

impl<'a> Response<'a> {
    /// Split `bytes` into data and status word.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let (data, &[sw1, sw2]) = bytes.split_last_chunk::<2>().ok_or(ApduError::TooShort)?;
        Ok(Response { data, status: Status::from_bytes(sw1, sw2) })
    }

    /// The raw status word.
    pub fn sw(&self) -> u16 {
        self.status.to_u16()
    }

    /// Write data and status word into `out`; return the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ApduError> {
        let len = self.data.len() + 2;
        let (data, sw) = out.get_mut(..len).ok_or(ApduError::BufferTooSmall)?.split_at_mut(self.data.len());
        data.copy_from_slice(self.data);
        sw.copy_from_slice(&self.status.to_u16().to_be_bytes());
        Ok(len)
    }
}
