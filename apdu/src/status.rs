//! Status words of ISO/IEC 7816-4 §5.6, ETSI TS 102 221 §10.2 and TS 31.102 §7.3.

/// A status word SW1 SW2, typed by meaning. Words without a variant of their own are kept in
/// [`Status::Other`], so every `u16` round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `90 00` normal ending.
    Ok,
    /// `91 xx` normal ending, proactive command of xx bytes pending (TS 102 221).
    OkProactive(u8),
    /// `61 xx` response bytes still available: fetch them with GET RESPONSE (T=0).
    BytesAvailable(u8),
    /// `62 00` warning, no information given.
    WarningNoInfo,
    /// `62 81` part of the returned data may be corrupted.
    DataMayBeCorrupted,
    /// `62 82` end of file or record reached before reading Ne bytes.
    EndOfFile,
    /// `62 83` selected file invalidated.
    FileInvalidated,
    /// `62 F1` more data available (TS 102 221).
    MoreDataAvailable,
    /// `62 F2` more data available and proactive command pending.
    MoreDataAvailableProactive,
    /// `62 F3` response data available (ODD-INS AUTHENTICATE, fetch with P1 `A0`).
    ResponseDataAvailable,
    /// `63 Cx` verification failed, x retries left.
    VerifyFailed(u8),
    /// `63 F1` more data expected.
    MoreDataExpected,
    /// `63 F2` more data expected and proactive command pending.
    MoreDataExpectedProactive,
    /// `64 00` state of non-volatile memory unchanged, no information.
    NvmUnchanged,
    /// `65 81` memory problem.
    MemoryProblem,
    /// `67 00` wrong length.
    WrongLength,
    /// `68 81` logical channel not supported.
    LogicalChannelNotSupported,
    /// `68 82` secure messaging not supported.
    SecureMessagingNotSupported,
    /// `69 81` command incompatible with file structure.
    IncompatibleFileStructure,
    /// `69 82` security status not satisfied (access condition not fulfilled).
    SecurityStatusNotSatisfied,
    /// `69 83` authentication/PIN method blocked.
    AuthMethodBlocked,
    /// `69 84` referenced data invalidated.
    ReferencedDataInvalidated,
    /// `69 85` conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `69 86` command not allowed, no EF selected.
    NoEfSelected,
    /// `6A 80` incorrect parameters in the data field.
    IncorrectData,
    /// `6A 81` function not supported.
    FunctionNotSupported,
    /// `6A 82` file or application not found.
    FileNotFound,
    /// `6A 83` record not found.
    RecordNotFound,
    /// `6A 84` not enough memory space in the file.
    NotEnoughMemory,
    /// `6A 86` incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6A 87` Lc inconsistent with P1-P2.
    LcInconsistentWithP1P2,
    /// `6A 88` referenced data not found.
    ReferencedDataNotFound,
    /// `6B 00` wrong parameters P1-P2 (offset outside the EF).
    WrongP1P2,
    /// `6C xx` wrong Le: xx is the exact number of bytes available (T=0: reissue with Le = xx).
    WrongLe(u8),
    /// `6D 00` instruction not supported or invalid.
    InsNotSupported,
    /// `6E 00` class not supported.
    ClaNotSupported,
    /// `6F 00` technical problem, no precise diagnosis.
    NoPreciseDiagnosis,
    /// `98 50` INCREASE cannot be performed, maximum value reached.
    IncreaseMaxReached,
    /// `98 62` authentication error, incorrect MAC.
    AuthIncorrectMac,
    /// `98 63` security session or association expired.
    SecuritySessionExpired,
    /// `98 64` authentication error, security context not supported.
    SecurityContextNotSupported,
    /// `98 65` key freshness failure.
    KeyFreshnessFailure,
    /// `98 66` authentication error, no memory space available.
    AuthNoMemory,
    /// `98 67` authentication error, no memory space available in EF_MUK.
    AuthNoMemoryMuk,
    /// Any other status word.
    Other(u16),
}

impl Status {
    /// Decode SW1 SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self::from_u16(u16::from_be_bytes([sw1, sw2]))
    }

    /// Decode a status word.
    pub const fn from_u16(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match sw {
            0x9000 => Status::Ok,
            0x6200 => Status::WarningNoInfo,
            0x6281 => Status::DataMayBeCorrupted,
            0x6282 => Status::EndOfFile,
            0x6283 => Status::FileInvalidated,
            0x62F1 => Status::MoreDataAvailable,
            0x62F2 => Status::MoreDataAvailableProactive,
            0x62F3 => Status::ResponseDataAvailable,
            0x63F1 => Status::MoreDataExpected,
            0x63F2 => Status::MoreDataExpectedProactive,
            0x6400 => Status::NvmUnchanged,
            0x6581 => Status::MemoryProblem,
            0x6700 => Status::WrongLength,
            0x6881 => Status::LogicalChannelNotSupported,
            0x6882 => Status::SecureMessagingNotSupported,
            0x6981 => Status::IncompatibleFileStructure,
            0x6982 => Status::SecurityStatusNotSatisfied,
            0x6983 => Status::AuthMethodBlocked,
            0x6984 => Status::ReferencedDataInvalidated,
            0x6985 => Status::ConditionsNotSatisfied,
            0x6986 => Status::NoEfSelected,
            0x6A80 => Status::IncorrectData,
            0x6A81 => Status::FunctionNotSupported,
            0x6A82 => Status::FileNotFound,
            0x6A83 => Status::RecordNotFound,
            0x6A84 => Status::NotEnoughMemory,
            0x6A86 => Status::IncorrectP1P2,
            0x6A87 => Status::LcInconsistentWithP1P2,
            0x6A88 => Status::ReferencedDataNotFound,
            0x6B00 => Status::WrongP1P2,
            0x6D00 => Status::InsNotSupported,
            0x6E00 => Status::ClaNotSupported,
            0x6F00 => Status::NoPreciseDiagnosis,
            0x9850 => Status::IncreaseMaxReached,
            0x9862 => Status::AuthIncorrectMac,
            0x9863 => Status::SecuritySessionExpired,
            0x9864 => Status::SecurityContextNotSupported,
            0x9865 => Status::KeyFreshnessFailure,
            0x9866 => Status::AuthNoMemory,
            0x9867 => Status::AuthNoMemoryMuk,
            _ => match sw1 {
                0x61 => Status::BytesAvailable(sw2),
                0x6C => Status::WrongLe(sw2),
                0x91 => Status::OkProactive(sw2),
                0x63 if sw2 & 0xF0 == 0xC0 => Status::VerifyFailed(sw2 & 0x0F),
                _ => Status::Other(sw),
            },
        }
    }

    /// The status word as a `u16`.
    pub const fn to_u16(self) -> u16 {
        match self {
            Status::Ok => 0x9000,
            Status::OkProactive(n) => 0x9100 | n as u16,
            Status::BytesAvailable(n) => 0x6100 | n as u16,
            Status::WarningNoInfo => 0x6200,
            Status::DataMayBeCorrupted => 0x6281,
            Status::EndOfFile => 0x6282,
            Status::FileInvalidated => 0x6283,
            Status::MoreDataAvailable => 0x62F1,
            Status::MoreDataAvailableProactive => 0x62F2,
            Status::ResponseDataAvailable => 0x62F3,
            Status::VerifyFailed(n) => 0x63C0 | (n & 0x0F) as u16,
            Status::MoreDataExpected => 0x63F1,
            Status::MoreDataExpectedProactive => 0x63F2,
            Status::NvmUnchanged => 0x6400,
            Status::MemoryProblem => 0x6581,
            Status::WrongLength => 0x6700,
            Status::LogicalChannelNotSupported => 0x6881,
            Status::SecureMessagingNotSupported => 0x6882,
            Status::IncompatibleFileStructure => 0x6981,
            Status::SecurityStatusNotSatisfied => 0x6982,
            Status::AuthMethodBlocked => 0x6983,
            Status::ReferencedDataInvalidated => 0x6984,
            Status::ConditionsNotSatisfied => 0x6985,
            Status::NoEfSelected => 0x6986,
            Status::IncorrectData => 0x6A80,
            Status::FunctionNotSupported => 0x6A81,
            Status::FileNotFound => 0x6A82,
            Status::RecordNotFound => 0x6A83,
            Status::NotEnoughMemory => 0x6A84,
            Status::IncorrectP1P2 => 0x6A86,
            Status::LcInconsistentWithP1P2 => 0x6A87,
            Status::ReferencedDataNotFound => 0x6A88,
            Status::WrongP1P2 => 0x6B00,
            Status::WrongLe(n) => 0x6C00 | n as u16,
            Status::InsNotSupported => 0x6D00,
            Status::ClaNotSupported => 0x6E00,
            Status::NoPreciseDiagnosis => 0x6F00,
            Status::IncreaseMaxReached => 0x9850,
            Status::AuthIncorrectMac => 0x9862,
            Status::SecuritySessionExpired => 0x9863,
            Status::SecurityContextNotSupported => 0x9864,
            Status::KeyFreshnessFailure => 0x9865,
            Status::AuthNoMemory => 0x9866,
            Status::AuthNoMemoryMuk => 0x9867,
            Status::Other(sw) => sw,
        }
    }

    /// SW1 SW2 as two bytes.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// Whether this is a normal ending (`90 00`, `91 xx`, or `61 xx`, which only says more data waits).
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Ok | Status::OkProactive(_) | Status::BytesAvailable(_))
    }

    /// The meaning of the status word, in the words of ISO/IEC 7816-4, TS 102 221 and TS 31.102.
    /// Parametrised words (`61xx`, `6Cxx`, `63Cx`, `91xx`) give the family meaning; their
    /// [`Display`](core::fmt::Display) adds the number.
    pub const fn meaning(self) -> &'static str {
        match self {
            Status::Ok => "normal ending of the command",
            Status::OkProactive(_) => "normal ending, proactive command pending",
            Status::BytesAvailable(_) => "response bytes available (GET RESPONSE)",
            Status::WarningNoInfo => "warning, no information given, state of non-volatile memory unchanged",
            Status::DataMayBeCorrupted => "part of returned data may be corrupted",
            Status::EndOfFile => "end of file/record reached before reading Le bytes",
            Status::FileInvalidated => "selected file invalidated",
            Status::MoreDataAvailable => "more data available",
            Status::MoreDataAvailableProactive => "more data available and proactive command pending",
            Status::ResponseDataAvailable => "response data available",
            Status::VerifyFailed(_) => "verification failed, retries left",
            Status::MoreDataExpected => "more data expected",
            Status::MoreDataExpectedProactive => "more data expected and proactive command pending",
            Status::NvmUnchanged => "execution error, state of non-volatile memory unchanged",
            Status::MemoryProblem => "memory problem",
            Status::WrongLength => "wrong length",
            Status::LogicalChannelNotSupported => "logical channel not supported",
            Status::SecureMessagingNotSupported => "secure messaging not supported",
            Status::IncompatibleFileStructure => "command incompatible with file structure",
            Status::SecurityStatusNotSatisfied => "security status not satisfied",
            Status::AuthMethodBlocked => "authentication/PIN method blocked",
            Status::ReferencedDataInvalidated => "referenced data invalidated",
            Status::ConditionsNotSatisfied => "conditions of use not satisfied",
            Status::NoEfSelected => "command not allowed, no EF selected",
            Status::IncorrectData => "incorrect parameters in the data field",
            Status::FunctionNotSupported => "function not supported",
            Status::FileNotFound => "file or application not found",
            Status::RecordNotFound => "record not found",
            Status::NotEnoughMemory => "not enough memory space in the file",
            Status::IncorrectP1P2 => "incorrect parameters P1 to P2",
            Status::LcInconsistentWithP1P2 => "Lc inconsistent with P1 to P2",
            Status::ReferencedDataNotFound => "referenced data not found",
            Status::WrongP1P2 => "wrong parameter(s) P1-P2",
            Status::WrongLe(_) => "wrong length Le, exact length given",
            Status::InsNotSupported => "instruction code not supported or invalid",
            Status::ClaNotSupported => "class not supported",
            Status::NoPreciseDiagnosis => "technical problem, no precise diagnosis",
            Status::IncreaseMaxReached => "INCREASE cannot be performed, maximum value reached",
            Status::AuthIncorrectMac => "authentication error, incorrect MAC",
            Status::SecuritySessionExpired => "security session or association expired",
            Status::SecurityContextNotSupported => "authentication error, security context not supported",
            Status::KeyFreshnessFailure => "key freshness failure",
            Status::AuthNoMemory => "authentication error, no memory space available",
            Status::AuthNoMemoryMuk => "authentication error, no memory space available in EF_MUK",
            Status::Other(sw) => match (sw >> 8) as u8 {
                0x62 => "warning, state of non-volatile memory unchanged",
                0x63 => "warning, state of non-volatile memory changed",
                0x64 => "execution error, state of non-volatile memory unchanged",
                0x65 => "execution error, state of non-volatile memory changed",
                0x67 => "wrong length",
                0x68 => "functions in CLA not supported",
                0x69 => "command not allowed",
                0x6A => "wrong parameters",
                0x92 | 0x94 | 0x98 => "memory, referencing or security error",
                _ => "unknown status word",
            },
        }
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Self {
        Status::from_u16(sw)
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.to_u16()
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X}: {}", self.to_u16(), self.meaning())?;
        match *self {
            Status::BytesAvailable(n) | Status::WrongLe(n) => {
                write!(f, " ({})", if n == 0 { 256 } else { n as u16 })
            }
            Status::VerifyFailed(n) => write!(f, " ({n})"),
            Status::OkProactive(n) => write!(f, " ({n} bytes)"),
            _ => Ok(()),
        }
    }
}
