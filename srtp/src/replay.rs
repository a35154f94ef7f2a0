//! Packet index estimation and the replay list (RFC 3711 §3.3.1, §3.3.2), with the semantics of
//! libsrtp's replay database (`crypto/replay/rdbx.c`: `srtp_rdbx_estimate_index`,
//! `srtp_index_guess`, `srtp_rdbx_check`, `srtp_rdbx_add_index`), so that both accept and refuse
//! the same packets.

use crate::error::{Error, Result};
use crate::policy::REPLAY_WINDOW_GRANULARITY;

/// Half the sequence number space: 2^15.
const SEQ_NUM_MEDIAN: i64 = 1 << 15;
/// The sequence number space: 2^16.
const SEQ_NUM_MAX: i64 = 1 << 16;

/// Estimates the 48-bit packet index `i = 2^16 * v + SEQ` of a packet with sequence number `seq`,
/// given `local`, the highest index accepted so far (RFC 3711 §3.3.1 with s_l = SEQ of `local`).
///
/// Returns the estimate and `delta = estimate - local`. As in libsrtp, while `local` is at most
/// 2^15 the ROC is taken as 0 (no guess of ROC - 1 before the first wrap).
pub fn estimate_index(local: u64, seq: u16) -> (u64, i64) {
    if local > SEQ_NUM_MEDIAN as u64 {
        return index_guess(local, seq);
    }
    (u64::from(seq), i64::from(seq) - local as i64)
}

/// RFC 3711 §3.3.1 / libsrtp `srtp_index_guess`: v = ROC - 1, ROC or ROC + 1.
fn index_guess(local: u64, seq: u16) -> (u64, i64) {
    let local_roc = (local >> 16) as u32;
    let local_seq = i64::from(local as u16);
    let s = i64::from(seq);
    let (guess_roc, difference) = if local_seq < SEQ_NUM_MEDIAN {
        if s - local_seq > SEQ_NUM_MEDIAN {
            (local_roc.wrapping_sub(1), s - local_seq - SEQ_NUM_MAX)
        } else {
            (local_roc, s - local_seq)
        }
    } else if local_seq - SEQ_NUM_MEDIAN > s {
        (local_roc.wrapping_add(1), s - local_seq + SEQ_NUM_MAX)
    } else {
        (local_roc, s - local_seq)
    };
    ((u64::from(guess_roc) << 16) | u64::from(seq), difference)
}

/// A sliding replay window behind the highest accepted index (RFC 3711 §3.3.2). Used for the
/// 48-bit SRTP index and the 31-bit SRTCP index alike.
///
/// An index `highest + delta` is fresh if `delta > 0`, too old if `delta <= -window`, and else
/// fresh unless its bit is set. Bits live in a ring indexed by the absolute index, so moving the
/// window forward clears only the slots it passes over. The ring holds a power of two of 64-bit
/// words, at least the window, so that an index finds its slot with a mask, not a division.
pub(crate) struct ReplayWindow {
    highest: u64,
    window: i64,
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// An empty window of `packets` (rounded up to a multiple of 32, as libsrtp does) at index 0.
    pub fn new(packets: usize) -> Self {
        let window = packets.div_ceil(REPLAY_WINDOW_GRANULARITY) * REPLAY_WINDOW_GRANULARITY;
        let words = window.div_ceil(64).next_power_of_two();
        ReplayWindow { highest: 0, window: window as i64, bits: vec![0u64; words].into() }
    }

    /// The highest index accepted so far (libsrtp's rdbx index).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn ring_bits(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn slot(&self, index: u64) -> (usize, u64) {
        // `ring_bits` is a power of two.
        let pos = index & (self.ring_bits() - 1);
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    fn get(&self, index: u64) -> bool {
        let (word, mask) = self.slot(index);
        self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, index: u64, on: bool) {
        let (word, mask) = self.slot(index);
        if let Some(w) = self.bits.get_mut(word) {
            if on {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }

    /// Whether the index `highest + delta` may be accepted.
    pub fn check(&self, delta: i64) -> Result<()> {
        if delta > 0 {
            return Ok(());
        }
        if delta <= -self.window {
            return Err(Error::ReplayOld);
        }
        let Some(index) = self.highest.checked_add_signed(delta) else {
            return Err(Error::ReplayOld);
        };
        if self.get(index) { Err(Error::ReplayDuplicate) } else { Ok(()) }
    }

    /// Records the index `highest + delta` as accepted, moving the window forward if `delta > 0`.
    pub fn add(&mut self, delta: i64) {
        if delta > 0 {
            let step = delta as u64;
            if step >= self.ring_bits() {
                self.bits.fill(0);
            } else {
                for k in 1..=step {
                    self.set(self.highest.wrapping_add(k), false);
                }
            }
            self.highest = self.highest.wrapping_add(step);
            self.set(self.highest, true);
        } else if let Some(index) = self.highest.checked_add_signed(delta) {
            self.set(index, true);
        }
    }

    /// Moves the window to `highest` and forgets every accepted index (libsrtp
    /// `srtp_rdbx_set_roc_seq`).
    pub fn reset(&mut self, highest: u64) {
        self.highest = highest;
        self.bits.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3711 §3.3.1: v = ROC - 1, ROC or ROC + 1 around the highest SEQ s_l.
    #[test]
    fn estimation_follows_rfc3711_3_3_1() {
        // Start of a stream: ROC 0, no ROC - 1 guess (libsrtp: index <= 2^15 means ROC 0).
        assert_eq!(estimate_index(0, 0), (0, 0));
        assert_eq!(estimate_index(100, 65000), (65000, 64900));
        // s_l >= 2^15 and SEQ < s_l - 2^15: the sequence number wrapped, v = ROC + 1.
        assert_eq!(estimate_index(65535, 0), (65536, 1));
        assert_eq!(estimate_index(40000, 100), (65636, 25636));
        // s_l >= 2^15 and SEQ just below s_l: same ROC, negative delta.
        assert_eq!(estimate_index(40000, 39990), (39990, -10));
        // s_l < 2^15 with ROC 1 and SEQ - s_l > 2^15: a late packet from before the wrap, v = ROC - 1.
        assert_eq!(estimate_index(65536 + 5, 65530), (65530, -11));
        assert_eq!(estimate_index(65536 + 5, 7), (65536 + 7, 2));
        // ROC 0xffff_ffff wraps to 0 in 32 bits (RFC 3711 §3.3.1: the ROC is 32 bits).
        assert_eq!(estimate_index(0xffff_ffff_ffff, 0), (0, 1));
    }

    #[test]
    fn window_accepts_once_and_refuses_old() {
        let mut w = ReplayWindow::new(128);
        w.add(10);
        assert_eq!(w.highest(), 10);
        assert_eq!(w.check(0), Err(Error::ReplayDuplicate));
        assert_eq!(w.check(-5), Ok(()));
        w.add(-5);
        assert_eq!(w.check(-5), Err(Error::ReplayDuplicate));
        w.add(1000);
        assert_eq!(w.highest(), 1010);
        assert_eq!(w.check(-127), Ok(()));
        assert_eq!(w.check(-128), Err(Error::ReplayOld));
        // The slots passed over by the jump are clear again.
        for d in -127..0 {
            assert_eq!(w.check(d), Ok(()));
        }
        w.add(1);
        assert_eq!(w.check(-1), Err(Error::ReplayDuplicate));
        assert_eq!(w.check(0), Err(Error::ReplayDuplicate));
        w.reset(5000);
        assert_eq!(w.check(0), Ok(()));
    }

    /// libsrtp rounds the window up to a multiple of 32 packets.
    #[test]
    fn window_rounds_up_like_libsrtp() {
        let mut w = ReplayWindow::new(100);
        w.add(1000);
        assert_eq!(w.check(-127), Ok(()));
        assert_eq!(w.check(-128), Err(Error::ReplayOld));
        let mut w = ReplayWindow::new(64);
        w.add(1000);
        assert_eq!(w.check(-63), Ok(()));
        assert_eq!(w.check(-64), Err(Error::ReplayOld));
    }
}
