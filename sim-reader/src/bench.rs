//! APDU rate of a reader, measured with SELECT MF (TS 102 221 §11.1.1), the cheapest command every
//! UICC answers: the figure `keysim bench` reports per backend.

use std::time::{Duration, Instant};

use apdu::Status;

use crate::{Error, Reader, Result, Session};

/// SELECT MF by file ID, no data returned: `00 A4 00 0C 02 3F 00`.
pub const SELECT_MF: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];

/// The outcome of [`measure_select_mf`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectMfRate {
    /// Commands sent (each answered `90 00`).
    pub commands: usize,
    /// Raw APDUs that crossed the reader (more than `commands` if the card used `61 xx`).
    pub apdus: u64,
    /// Wall time for all of them.
    pub elapsed: Duration,
}

impl SelectMfRate {
    /// Raw APDUs per second.
    pub fn apdus_per_second(&self) -> f64 {
        self.apdus as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Mean time of one raw APDU.
    pub fn per_apdu(&self) -> Duration {
        self.elapsed.checked_div(self.apdus.max(1) as u32).unwrap_or_default()
    }
}

/// Send SELECT MF `count` times through `reader` and time it. Every answer must be `90 00`; the
/// first other status word ends the measurement with [`Error::UnexpectedStatus`].
pub fn measure_select_mf<R: Reader>(reader: R, count: usize) -> Result<SelectMfRate> {
    let mut session = Session::new(reader);
    let start = Instant::now();
    for _ in 0..count {
        let r = session.transmit_apdu(&SELECT_MF)?;
        if r.status != Status::Ok {
            return Err(Error::UnexpectedStatus { command: "SELECT MF", status: r.status });
        }
    }
    Ok(SelectMfRate { commands: count, apdus: session.apdu_count(), elapsed: start.elapsed() })
}
