//! SQN freshness on the USIM: the SEQ/IND array of TS 33.102 Annex C.2 (wrap-around limit Δ of
//! C.2.1, the SEQ_MS(i) array and the age limit L of C.2.2).
//!
//! SQN (48 bits) = SEQ ‖ IND, IND being the `IND_BITS` least significant bits. The USIM keeps
//! one SEQ_MS(i) per IND value i, all starting at zero. A received SQN is accepted when
//!
//! 1. (C.2.1) SEQ − SEQ_MS ≤ Δ, where SEQ_MS is the highest SEQ accepted anywhere in the array;
//! 2. (C.2.2, if L is applied) SEQ_MS − SEQ < L;
//! 3. (C.2.2) SEQ > SEQ_MS(IND); then SEQ_MS(IND) := SEQ.
//!
//! Otherwise the USIM answers with a synchronisation failure carrying SQN_MS, the highest SQN
//! accepted anywhere in the array (TS 33.102 §6.3.3, Annex C.2.2).
//!
//! [`SqnArray`] is a plain `[u64; A]` with a fixed-size byte encoding ([`SqnArray::to_bytes`])
//! so the card can keep it in NVM. Checking never changes it; [`SqnArray::accept`] does, and the
//! card commits that in an NVM transaction.

use crate::Error;

/// Length of SQN in octets (TS 33.102 §6.3.2: 48 bits).
pub const SQN_LEN: usize = 6;

/// A 48-bit sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sqn(u64);

impl Sqn {
    /// SQN = 0.
    pub const ZERO: Sqn = Sqn(0);
    /// The largest 48-bit SQN.
    pub const MAX: Sqn = Sqn((1 << 48) - 1);

    /// A SQN from its integer value; fails if it does not fit in 48 bits.
    pub const fn new(value: u64) -> Result<Self, Error> {
        if value > Self::MAX.0 { Err(Error::SqnOutOfRange) } else { Ok(Sqn(value)) }
    }

    /// The integer value.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// SQN from its 6-octet big-endian encoding.
    pub const fn from_bytes(b: &[u8; SQN_LEN]) -> Self {
        let [b0, b1, b2, b3, b4, b5] = *b;
        Sqn(u64::from_be_bytes([0, 0, b0, b1, b2, b3, b4, b5]))
    }

    /// The 6-octet big-endian encoding.
    pub const fn to_bytes(self) -> [u8; SQN_LEN] {
        let b = self.0.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    /// SQN = SEQ ‖ IND with an IND of `ind_bits` bits.
    pub const fn from_seq_ind(seq: u64, ind: u64, ind_bits: u32) -> Result<Self, Error> {
        if ind_bits > 47 || ind >= (1 << ind_bits) || seq > (Self::MAX.0 >> ind_bits) {
            return Err(Error::SqnOutOfRange);
        }
        Ok(Sqn((seq << ind_bits) | ind))
    }

    /// SEQ, the most significant 48 − `ind_bits` bits.
    pub const fn seq(self, ind_bits: u32) -> u64 {
        if ind_bits >= 48 { 0 } else { self.0 >> ind_bits }
    }

    /// IND, the `ind_bits` least significant bits.
    pub const fn ind(self, ind_bits: u32) -> u64 {
        if ind_bits >= 48 { self.0 } else { self.0 & ((1 << ind_bits) - 1) }
    }
}

/// Length of IND in bits: 5 bits, so the array has 32 entries.
///
/// TS 33.102 Annex C.2.2 leaves the length to the operator; 5 bits is what real and simulated USIMs
/// use: sysmocom's sysmoISIM-SJA2 USIM SQN file (`ind_len` 5 in osmocom pySim,
/// `pySim/sysmocom_sja2.py`, `EF_USIM_SQN`) and UERANSIM (`SqnManager(5, 1 << 28)`).
pub const IND_LEN_BITS: u32 = 5;

/// Number of SEQ_MS(i) entries of the card's array: 2^[`IND_LEN_BITS`].
pub const SQN_ARRAY_LEN: usize = 1 << IND_LEN_BITS;

/// The array the card uses.
pub type UsimSqnArray = SqnArray<SQN_ARRAY_LEN>;

/// Size of the NVM encoding of [`UsimSqnArray`].
pub const USIM_SQN_STATE_LEN: usize = SQN_ARRAY_LEN * SQN_LEN;

/// Δ, the largest accepted jump SEQ − SEQ_MS (TS 33.102 Annex C.2.1).
///
/// An operator choice: C.2.1 only requires Δ large enough for a correct HE/AuC and small enough that
/// SEQmax/Δ is large. 2^28 is UERANSIM's choice; sysmocom's sysmoISIM-SJA2 ships 2^33
/// (`delta_max` in pySim's `EF_USIM_SQN` test vector). Either passes a correct network.
pub const DELTA: u64 = 1 << 28;

/// L, the age limit: SEQ_MS − SEQ must stay below L (TS 33.102 Annex C.2.2, optional for the USIM).
///
/// The spec leaves the value to the operator (sysmocom's sysmoISIM-SJA2 ships 2^33 with the check
/// off); this is our choice, equal to Δ so the accepted window is symmetric around SEQ_MS.
pub const AGE_LIMIT_L: u64 = 1 << 28;

/// The freshness limits a USIM applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqnPolicy {
    /// Δ of TS 33.102 Annex C.2.1.
    pub delta: u64,
    /// L of TS 33.102 Annex C.2.2; `None` means L is not applied.
    pub age_limit: Option<u64>,
}

impl SqnPolicy {
    /// Δ = [`DELTA`], L = [`AGE_LIMIT_L`].
    pub const DEFAULT: SqnPolicy = SqnPolicy { delta: DELTA, age_limit: Some(AGE_LIMIT_L) };
}

impl Default for SqnPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a SQN was not accepted (each leads to a synchronisation failure, TS 33.102 §6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqnReject {
    /// SEQ − SEQ_MS > Δ (Annex C.2.1).
    TooFarAhead,
    /// SEQ_MS − SEQ ≥ L (Annex C.2.2).
    TooOld,
    /// SEQ ≤ SEQ_MS(IND): replayed or out of order for its array entry (Annex C.2.2).
    NotFresh,
}

/// The USIM's SEQ_MS(0) … SEQ_MS(A−1) (TS 33.102 Annex C.2.2). `A` must be a power of two
/// (IND = log2(A) bits), at most 2^16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqnArray<const A: usize> {
    seq_ms: [u64; A],
}

impl<const A: usize> Default for SqnArray<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const A: usize> SqnArray<A> {
    /// Length of IND in bits for this array (compile-time check that `A` is a power of two ≤ 2^16).
    pub const IND_BITS: u32 = {
        assert!(A.is_power_of_two() && A <= 1 << 16, "SqnArray length must be a power of two <= 65536");
        A.trailing_zeros()
    };

    /// Size of the byte encoding: A entries of 6 octets (SEQ, big-endian).
    pub const ENCODED_LEN: usize = A * SQN_LEN;

    /// All entries zero, as on a new card (Annex C.2.2).
    pub const fn new() -> Self {
        let _ = Self::IND_BITS;
        Self { seq_ms: [0; A] }
    }

    /// An array from explicit SEQ_MS(i) values; each must fit in 48 − IND_BITS bits.
    pub fn from_seq_ms(seq_ms: [u64; A]) -> Result<Self, Error> {
        let max_seq = Sqn::MAX.value() >> Self::IND_BITS;
        if seq_ms.iter().any(|&s| s > max_seq) {
            return Err(Error::SqnOutOfRange);
        }
        Ok(Self { seq_ms })
    }

    /// The SEQ_MS(i) values.
    pub fn seq_ms(&self) -> &[u64; A] {
        &self.seq_ms
    }

    /// SEQ_MS, the highest SEQ accepted anywhere in the array (0 if none).
    pub fn highest_seq(&self) -> u64 {
        self.seq_ms.iter().copied().max().unwrap_or(0)
    }

    /// SQN_MS, the highest SQN accepted anywhere in the array (0 if none): what AUTS carries.
    pub fn sqn_ms(&self) -> Sqn {
        let best = self
            .seq_ms
            .iter()
            .enumerate()
            .filter(|&(_, &seq)| seq > 0)
            .map(|(ind, &seq)| (seq << Self::IND_BITS) | ind as u64)
            .max()
            .unwrap_or(0);
        Sqn(best & Sqn::MAX.value())
    }

    /// Checks a received SQN against Δ, L and SEQ_MS(IND), in the order of Annex C.2. Does not
    /// change the array.
    pub fn check(&self, sqn: Sqn, policy: &SqnPolicy) -> Result<(), SqnReject> {
        let seq = sqn.seq(Self::IND_BITS);
        let ind = sqn.ind(Self::IND_BITS) as usize;
        let seq_ms = self.highest_seq();
        if seq > seq_ms && seq - seq_ms > policy.delta {
            return Err(SqnReject::TooFarAhead);
        }
        if let Some(l) = policy.age_limit
            && seq_ms > seq
            && seq_ms - seq >= l
        {
            return Err(SqnReject::TooOld);
        }
        match self.seq_ms.get(ind) {
            Some(&current) if seq > current => Ok(()),
            _ => Err(SqnReject::NotFresh),
        }
    }

    /// Records an accepted SQN: SEQ_MS(IND) := SEQ (never lowers an entry).
    pub fn accept(&mut self, sqn: Sqn) {
        let seq = sqn.seq(Self::IND_BITS);
        if let Some(entry) = self.seq_ms.get_mut(sqn.ind(Self::IND_BITS) as usize)
            && seq > *entry
        {
            *entry = seq;
        }
    }

    /// [`Self::check`], then [`Self::accept`] on success; unchanged on failure.
    pub fn check_and_accept(&mut self, sqn: Sqn, policy: &SqnPolicy) -> Result<(), SqnReject> {
        self.check(sqn, policy)?;
        self.accept(sqn);
        Ok(())
    }

    /// Writes the NVM encoding (A × 6 octets, SEQ_MS(i) big-endian) into `out`, which must be
    /// exactly [`Self::ENCODED_LEN`] long.
    pub fn write_bytes(&self, out: &mut [u8]) -> Result<(), Error> {
        if out.len() != Self::ENCODED_LEN {
            return Err(Error::WrongLength { expected: Self::ENCODED_LEN, actual: out.len() });
        }
        for (chunk, seq) in out.chunks_exact_mut(SQN_LEN).zip(self.seq_ms.iter()) {
            chunk.copy_from_slice(&Sqn(*seq).to_bytes());
        }
        Ok(())
    }

    /// Decodes the NVM encoding written by [`Self::write_bytes`].
    pub fn read_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != Self::ENCODED_LEN {
            return Err(Error::InvalidSqnState);
        }
        let mut seq_ms = [0u64; A];
        for (seq, chunk) in seq_ms.iter_mut().zip(bytes.chunks_exact(SQN_LEN)) {
            let arr: &[u8; SQN_LEN] = chunk.try_into().map_err(|_| Error::InvalidSqnState)?;
            *seq = Sqn::from_bytes(arr).value();
        }
        Self::from_seq_ms(seq_ms).map_err(|_| Error::InvalidSqnState)
    }
}

impl SqnArray<SQN_ARRAY_LEN> {
    /// The NVM encoding of the card's array, as a fixed-size value.
    pub fn to_bytes(&self) -> [u8; USIM_SQN_STATE_LEN] {
        let mut out = [0u8; USIM_SQN_STATE_LEN];
        for (chunk, seq) in out.chunks_exact_mut(SQN_LEN).zip(self.seq_ms.iter()) {
            chunk.copy_from_slice(&Sqn(*seq).to_bytes());
        }
        out
    }

    /// Decodes [`Self::to_bytes`]; fails if an entry does not fit in 48 − IND bits.
    pub fn from_bytes(bytes: &[u8; USIM_SQN_STATE_LEN]) -> Result<Self, Error> {
        Self::read_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqn(seq: u64, ind: u64) -> Sqn {
        Sqn::from_seq_ind(seq, ind, IND_LEN_BITS).unwrap()
    }

    #[test]
    fn sqn_codec() {
        let s = Sqn::from_bytes(&[0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]);
        assert_eq!(s.value(), 0xff9b_b4d0_b607);
        assert_eq!(s.to_bytes(), [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]);
        assert_eq!(s.ind(5), 0x07);
        assert_eq!(s.seq(5), 0xff9b_b4d0_b607 >> 5);
        assert_eq!(Sqn::new(1 << 48), Err(Error::SqnOutOfRange));
        assert_eq!(Sqn::from_seq_ind(1 << 43, 0, 5), Err(Error::SqnOutOfRange));
        assert_eq!(Sqn::from_seq_ind(1, 32, 5), Err(Error::SqnOutOfRange));
        assert_eq!(Sqn::from_seq_ind(3, 4, 5).unwrap().value(), (3 << 5) | 4);
    }

    #[test]
    fn fresh_card_accepts_first_sqn_and_rejects_replay() {
        let p = SqnPolicy::DEFAULT;
        let mut a = UsimSqnArray::new();
        assert_eq!(a.sqn_ms(), Sqn::ZERO);
        // SEQ 0 is never fresh (SEQ must be > SEQ_MS(i) = 0).
        assert_eq!(a.check(sqn(0, 3), &p), Err(SqnReject::NotFresh));
        assert_eq!(a.check_and_accept(sqn(1, 3), &p), Ok(()));
        assert_eq!(a.check_and_accept(sqn(1, 3), &p), Err(SqnReject::NotFresh));
        assert_eq!(a.sqn_ms(), sqn(1, 3));
    }

    #[test]
    fn array_accepts_out_of_order_on_other_indexes() {
        let p = SqnPolicy::DEFAULT;
        let mut a = UsimSqnArray::new();
        a.check_and_accept(sqn(10, 1), &p).unwrap();
        // Lower SEQ, other IND: still fresh for its own entry (Annex C.2.2, the point of the array).
        assert_eq!(a.check_and_accept(sqn(5, 2), &p), Ok(()));
        // Lower or equal SEQ on IND 1: not fresh.
        assert_eq!(a.check(sqn(9, 1), &p), Err(SqnReject::NotFresh));
        assert_eq!(a.check(sqn(10, 1), &p), Err(SqnReject::NotFresh));
        assert_eq!(a.check(sqn(11, 1), &p), Ok(()));
        // SQN_MS is the highest accepted SQN anywhere.
        assert_eq!(a.sqn_ms(), sqn(10, 1));
        assert_eq!(a.highest_seq(), 10);
    }

    #[test]
    fn delta_limits_jumps_ahead() {
        let p = SqnPolicy::DEFAULT;
        let mut a = UsimSqnArray::new();
        a.check_and_accept(sqn(100, 0), &p).unwrap();
        assert_eq!(a.check(sqn(100 + DELTA, 1), &p), Ok(()));
        assert_eq!(a.check(sqn(100 + DELTA + 1, 1), &p), Err(SqnReject::TooFarAhead));
        // A fresh card also applies Δ against SEQ_MS = 0.
        let fresh = UsimSqnArray::new();
        assert_eq!(fresh.check(sqn(DELTA + 1, 0), &p), Err(SqnReject::TooFarAhead));
    }

    #[test]
    fn age_limit_rejects_too_old() {
        let p = SqnPolicy { delta: DELTA, age_limit: Some(8) };
        let mut a = UsimSqnArray::new();
        a.check_and_accept(sqn(20, 0), &p).unwrap();
        assert_eq!(a.check(sqn(13, 1), &p), Ok(())); // 20 - 13 = 7 < 8
        assert_eq!(a.check(sqn(12, 1), &p), Err(SqnReject::TooOld)); // 20 - 12 = 8
        let no_l = SqnPolicy { delta: DELTA, age_limit: None };
        assert_eq!(a.check(sqn(1, 1), &no_l), Ok(()));
    }

    #[test]
    fn rejection_leaves_state_unchanged() {
        let p = SqnPolicy::DEFAULT;
        let mut a = UsimSqnArray::new();
        a.check_and_accept(sqn(7, 4), &p).unwrap();
        let before = a.clone();
        assert!(a.check_and_accept(sqn(7, 4), &p).is_err());
        assert!(a.check_and_accept(sqn(7 + DELTA + 1, 5), &p).is_err());
        assert_eq!(a, before);
    }

    #[test]
    fn nvm_encoding_round_trip() {
        let p = SqnPolicy::DEFAULT;
        let mut a = UsimSqnArray::new();
        a.check_and_accept(sqn(DELTA + 1, 31), &p).unwrap_err();
        a.check_and_accept(sqn(0x1234, 31), &p).unwrap();
        a.check_and_accept(sqn(2, 0), &p).unwrap();
        let bytes = a.to_bytes();
        assert_eq!(bytes.len(), 192);
        assert_eq!(&bytes[31 * 6..], &[0, 0, 0, 0, 0x12, 0x34]);
        assert_eq!(UsimSqnArray::from_bytes(&bytes).unwrap(), a);
        let mut buf = [0u8; 192];
        a.write_bytes(&mut buf).unwrap();
        assert_eq!(buf, bytes);
        assert!(a.write_bytes(&mut [0u8; 191]).is_err());
        assert_eq!(UsimSqnArray::read_bytes(&bytes[..191]), Err(Error::InvalidSqnState));
        // A SEQ needing more than 43 bits does not decode.
        let mut bad = bytes;
        bad[0] = 0xff;
        assert_eq!(UsimSqnArray::from_bytes(&bad), Err(Error::InvalidSqnState));
    }

    #[test]
    fn other_array_sizes() {
        assert_eq!(SqnArray::<1>::IND_BITS, 0);
        assert_eq!(SqnArray::<16>::IND_BITS, 4);
        let mut a = SqnArray::<16>::new();
        let s = Sqn::from_seq_ind(1, 15, 4).unwrap();
        a.check_and_accept(s, &SqnPolicy::DEFAULT).unwrap();
        assert_eq!(a.sqn_ms(), s);
        assert_eq!(SqnArray::<16>::ENCODED_LEN, 96);
    }
}
