//! Command APDUs of ISO/IEC 7816-4 §5.1 (cases 1 to 4, short and extended length fields).

use crate::ApduError;

/// The four cases of ISO/IEC 7816-4 §5.1: whether a command carries data and whether it expects data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No command data, no response data expected.
    Case1,
    /// No command data, response data expected (Le present).
    Case2,
    /// Command data (Lc present), no response data expected.
    Case3,
    /// Command data and response data expected.
    Case4,
}

/// Largest Ne a short Le field can express (`00` means 256).
pub const SHORT_NE_MAX: usize = 256;
/// Largest Ne an extended Le field can express (`00 00` means 65536).
pub const EXTENDED_NE_MAX: usize = 65536;
/// Largest Nc a short Lc field can express.
pub const SHORT_NC_MAX: usize = 255;
/// Largest Nc an extended Lc field can express.
pub const EXTENDED_NC_MAX: usize = 65535;

/// A command APDU borrowed from the bytes it was parsed from (or built over caller data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field (Nc bytes; empty for cases 1 and 2).
    pub data: &'a [u8],
    /// Ne, the maximum number of response bytes expected; `None` when there is no Le field.
    /// `Some(256)` is a short Le of `00`; `Some(65536)` an extended Le of `00 00`.
    pub ne: Option<usize>,
    /// Whether the length fields are (or are to be) coded in extended form.
    pub extended: bool,
}

impl<'a> Command<'a> {
    /// A command with no data and no Le (case 1).
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command { cla, ins, p1, p2, data: &[], ne: None, extended: false }
    }

    /// The same command with a data field.
    pub const fn with_data(mut self, data: &'a [u8]) -> Self {
        self.data = data;
        self
    }

    /// The same command with an Le field asking for `ne` bytes (1..=65536).
    pub const fn with_ne(mut self, ne: usize) -> Self {
        self.ne = Some(ne);
        self
    }

    /// The same command coded with extended length fields.
    pub const fn extended(mut self) -> Self {
        self.extended = true;
        self
    }

    /// The ISO 7816-4 case of this command.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.ne.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// Parse a command APDU.
    ///
    /// Short and extended forms are accepted. The parser is lenient in the one way modems need:
    /// an extended Le is accepted whether or not the card's ATR announced extended lengths.
    /// Everything else must be exact: a body whose length matches no case is [`ApduError::WrongLength`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let &[cla, ins, p1, p2, ref body @ ..] = bytes else {
            return Err(ApduError::TooShort);
        };
        let base = Command { cla, ins, p1, p2, data: &[], ne: None, extended: false };
        match *body {
            // Case 1.
            [] => Ok(base),
            // Case 2 short.
            [le] => Ok(Command { ne: Some(short_ne(le)), ..base }),
            [lc, ref rest @ ..] if lc != 0 => {
                // Short Lc: case 3 short or case 4 short.
                let (data, le) = rest.split_at_checked(lc as usize).ok_or(ApduError::WrongLength)?;
                Self::with_body(base, data, le, false)
            }
            // Case 2 extended: 00 Le1 Le2.
            [0, le1, le2] => {
                Ok(Command { ne: Some(extended_ne(u16::from_be_bytes([le1, le2]))), extended: true, ..base })
            }
            // Extended Lc: case 3 extended or case 4 extended.
            [0, lc1, lc2, ref rest @ ..] => {
                let nc = u16::from_be_bytes([lc1, lc2]) as usize;
                if nc == 0 {
                    return Err(ApduError::WrongLength);
                }
                let (data, le) = rest.split_at_checked(nc).ok_or(ApduError::WrongLength)?;
                Self::with_body(base, data, le, true)
            }
            // Two bytes starting with 00: neither short nor extended.
            _ => Err(ApduError::WrongLength),
        }
    }

    /// `base` with its data and the Le field after them: none, one byte (after a short Lc), or two
    /// bytes (extended; leniently also after a short Lc, as some modems send).
    fn with_body(base: Self, data: &'a [u8], le: &[u8], extended: bool) -> Result<Self, ApduError> {
        match *le {
            [] => Ok(Command { data, extended, ..base }),
            [le] if !extended => Ok(Command { data, ne: Some(short_ne(le)), ..base }),
            [le1, le2] => Ok(Command {
                data,
                ne: Some(extended_ne(u16::from_be_bytes([le1, le2]))),
                extended: true,
                ..base
            }),
            _ => Err(ApduError::WrongLength),
        }
    }

    /// The number of bytes [`Command::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let nc = self.data.len();
        let ext = self.needs_extended();
        4 + match (nc, self.ne, ext) {
            (0, None, _) => 0,
            (0, Some(_), false) => 1,
            (0, Some(_), true) => 3,
            (_, None, false) => 1 + nc,
            (_, None, true) => 3 + nc,
            (_, Some(_), false) => 2 + nc,
            (_, Some(_), true) => 5 + nc,
        }
    }

    fn needs_extended(&self) -> bool {
        self.extended || self.data.len() > SHORT_NC_MAX || self.ne.is_some_and(|ne| ne > SHORT_NE_MAX)
    }

    /// Write the command into `out` and return the number of bytes written.
    ///
    /// Extended length fields are used when asked for or when Nc or Ne do not fit a short field.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ApduError> {
        let nc = self.data.len();
        if nc > EXTENDED_NC_MAX {
            return Err(ApduError::DataTooLong);
        }
        if self.ne.is_some_and(|ne| ne == 0 || ne > EXTENDED_NE_MAX) {
            return Err(ApduError::InvalidNe);
        }
        let len = self.encoded_len();
        let out = out.get_mut(..len).ok_or(ApduError::BufferTooSmall)?;
        let mut at = 0;
        put(out, &mut at, &[self.cla, self.ins, self.p1, self.p2])?;
        let ext = self.needs_extended();
        if nc > 0 {
            if ext {
                put(out, &mut at, &[0])?;
                put(out, &mut at, &(nc as u16).to_be_bytes())?;
            } else {
                put(out, &mut at, &[nc as u8])?;
            }
            put(out, &mut at, self.data)?;
        }
        if let Some(ne) = self.ne {
            if ext {
                if nc == 0 {
                    put(out, &mut at, &[0])?;
                }
                put(out, &mut at, &((ne % EXTENDED_NE_MAX) as u16).to_be_bytes())?;
            } else {
                put(out, &mut at, &[(ne % SHORT_NE_MAX) as u8])?;
            }
        }
        debug_assert_eq!(at, len);
        Ok(at)
    }
}

/// Copies `bytes` into `out` at `*at` and advances `*at`.
fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) -> Result<(), ApduError> {
    let end = *at + bytes.len();
    out.get_mut(*at..end).ok_or(ApduError::BufferTooSmall)?.copy_from_slice(bytes);
    *at = end;
    Ok(())
}

fn short_ne(le: u8) -> usize {
    if le == 0 { SHORT_NE_MAX } else { le as usize }
}

fn extended_ne(le: u16) -> usize {
    if le == 0 { EXTENDED_NE_MAX } else { le as usize }
}
