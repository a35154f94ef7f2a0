//! UMTS AKA with Milenage (TS 33.102 §6.3): the authentication vector of the HE/AuC (§6.3.2), the
//! USIM's check of AUTN (§6.3.3) and the resynchronisation token AUTS (§6.3.3, §6.3.5).
//!
//! ```text
//! AUTN = SQN ⊕ AK ‖ AMF ‖ MAC          MAC   = f1(SQN, RAND, AMF)        AK  = f5(RAND)
//! AUTS = SQN_MS ⊕ AK* ‖ MAC-S          MAC-S = f1*(SQN_MS, RAND, 0000)   AK* = f5*(RAND)
//! ```
//!
//! The USIM order is the one of §6.3.3: recover SQN, verify MAC (failure: "MAC failure", no state
//! change), then check SQN freshness (failure: synchronisation failure with AUTS, no state change),
//! and only then update the SQN array and output RES, CK, IK.

use subtle::ConstantTimeEq;

use crate::keys::{Ck, Ik, Ks};
use crate::milenage::Milenage;
pub use crate::sqn::Sqn;
use crate::sqn::{SqnArray, SqnPolicy, SqnReject};
use crate::{Amf, Error, Mac, Rand, Res, xor};

/// Length of AUTN: 6 + 2 + 8 octets.
pub const AUTN_LEN: usize = 16;
/// Length of AUTS: 6 + 8 octets.
pub const AUTS_LEN: usize = 14;
/// The dummy AMF used in MAC-S = f1*(SQN_MS ‖ RAND ‖ AMF) (TS 33.102 §6.3.3): all zero, so
/// that AMF need not be sent in the resynchronisation message.
pub const RESYNC_AMF: Amf = [0x00, 0x00];

/// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC (TS 33.102 §6.3.2). Not secret: it travels in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Autn {
    /// SQN ⊕ AK.
    pub sqn_xor_ak: [u8; 6],
    /// AMF.
    pub amf: Amf,
    /// MAC (MAC-A), or MAC* in the GBA_U AUTN* (see [`crate::gba_u`]).
    pub mac: Mac,
}

impl Autn {
    /// The AUTN for (RAND, SQN, AMF), as the HE/AuC builds it.
    pub fn build(m: &Milenage, rand: &Rand, sqn: Sqn, amf: &Amf) -> Self {
        let sqn_bytes = sqn.to_bytes();
        Autn { sqn_xor_ak: xor(&sqn_bytes, &m.f5(rand)), amf: *amf, mac: m.f1(rand, &sqn_bytes, amf) }
    }

    /// AUTN from its 16 octets.
    pub fn from_bytes(b: &[u8; AUTN_LEN]) -> Self {
        let mut autn = Autn { sqn_xor_ak: [0; 6], amf: [0; 2], mac: [0; 8] };
        let (sqn_xor_ak, rest) = b.split_at(6);
        let (amf, mac) = rest.split_at(2);
        autn.sqn_xor_ak.copy_from_slice(sqn_xor_ak);
        autn.amf.copy_from_slice(amf);
        autn.mac.copy_from_slice(mac);
        autn
    }

    /// AUTN from a slice, which must be exactly 16 octets.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        let arr: &[u8; AUTN_LEN] =
            b.try_into().map_err(|_| Error::WrongLength { expected: AUTN_LEN, actual: b.len() })?;
        Ok(Self::from_bytes(arr))
    }

    /// The 16 octets.
    pub fn to_bytes(&self) -> [u8; AUTN_LEN] {
        let mut out = [0u8; AUTN_LEN];
        for (o, b) in out.iter_mut().zip(self.sqn_xor_ak.iter().chain(&self.amf).chain(&self.mac)) {
            *o = *b;
        }
        out
    }
}

/// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S (TS 33.102 §6.3.3), the token of a synchronisation failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auts {
    /// SQN_MS ⊕ AK*.
    pub sqn_ms_xor_ak_star: [u8; 6],
    /// MAC-S = f1*(SQN_MS, RAND, [`RESYNC_AMF`]).
    pub mac_s: Mac,
}

impl Auts {
    /// The AUTS a USIM sends for its SQN_MS and the received RAND.
    pub fn build(m: &Milenage, rand: &Rand, sqn_ms: Sqn) -> Self {
        let sqn_bytes = sqn_ms.to_bytes();
        Auts {
            sqn_ms_xor_ak_star: xor(&sqn_bytes, &m.f5_star(rand)),
            mac_s: m.f1_star(rand, &sqn_bytes, &RESYNC_AMF),
        }
    }

    /// The HE/AuC side (§6.3.5): recovers SQN_MS and verifies MAC-S in constant time. `None` if
    /// MAC-S is wrong.
    pub fn verify(&self, m: &Milenage, rand: &Rand) -> Option<Sqn> {
        let sqn_bytes = xor(&self.sqn_ms_xor_ak_star, &m.f5_star(rand));
        let xmac_s = m.f1_star(rand, &sqn_bytes, &RESYNC_AMF);
        if bool::from(xmac_s[..].ct_eq(&self.mac_s[..])) { Some(Sqn::from_bytes(&sqn_bytes)) } else { None }
    }

    /// AUTS from its 14 octets.
    pub fn from_bytes(b: &[u8; AUTS_LEN]) -> Self {
        let mut auts = Auts { sqn_ms_xor_ak_star: [0; 6], mac_s: [0; 8] };
        let (conc, mac) = b.split_at(6);
        auts.sqn_ms_xor_ak_star.copy_from_slice(conc);
        auts.mac_s.copy_from_slice(mac);
        auts
    }

    /// AUTS from a slice, which must be exactly 14 octets.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        let arr: &[u8; AUTS_LEN] =
            b.try_into().map_err(|_| Error::WrongLength { expected: AUTS_LEN, actual: b.len() })?;
        Ok(Self::from_bytes(arr))
    }

    /// The 14 octets.
    pub fn to_bytes(&self) -> [u8; AUTS_LEN] {
        let mut out = [0u8; AUTS_LEN];
        for (o, b) in out.iter_mut().zip(self.sqn_ms_xor_ak_star.iter().chain(&self.mac_s)) {
            *o = *b;
        }
        out
    }
}

/// An authentication vector of the HE/AuC (TS 33.102 §6.3.2): RAND, XRES, CK, IK, AK, AUTN.
pub struct AuthVector {
    /// RAND.
    pub rand: Rand,
    /// XRES = f2(RAND).
    pub xres: Res,
    /// CK = f3(RAND).
    pub ck: Ck,
    /// IK = f4(RAND).
    pub ik: Ik,
    /// AK = f5(RAND).
    pub ak: [u8; 6],
    /// AUTN.
    pub autn: Autn,
}

impl core::fmt::Debug for AuthVector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthVector")
            .field("rand", &self.rand)
            .field("autn", &self.autn)
            .finish_non_exhaustive()
    }
}

impl AuthVector {
    /// Generates the vector for a RAND chosen by the caller, the HE's next SQN and an AMF.
    pub fn generate(m: &Milenage, rand: &Rand, sqn: Sqn, amf: &Amf) -> Self {
        let out = m.f2345(rand);
        let sqn_bytes = sqn.to_bytes();
        let autn = Autn { sqn_xor_ak: xor(&sqn_bytes, &out.ak), amf: *amf, mac: m.f1(rand, &sqn_bytes, amf) };
        AuthVector { rand: *rand, xres: out.res, ck: out.ck, ik: out.ik, ak: out.ak, autn }
    }

    /// Ks = CK ‖ IK, the GBA master key of this vector (TS 33.220 §4.5.2).
    pub fn ks(&self) -> Ks {
        Ks::from_ck_ik(&self.ck, &self.ik)
    }

    /// Compares a received RES with XRES in constant time (a wrong length never matches).
    pub fn verify_res(&self, res: &[u8]) -> bool {
        bool::from(self.xres[..].ct_eq(res))
    }
}

/// A successful AUTN check on the USIM.
pub struct AkaSuccess {
    /// RES = f2(RAND).
    pub res: Res,
    /// CK = f3(RAND).
    pub ck: Ck,
    /// IK = f4(RAND).
    pub ik: Ik,
    /// The SQN recovered from AUTN (to be recorded with [`SqnArray::accept`]).
    pub sqn: Sqn,
    /// The AMF of AUTN.
    pub amf: Amf,
}

impl core::fmt::Debug for AkaSuccess {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AkaSuccess").field("sqn", &self.sqn).field("amf", &self.amf).finish_non_exhaustive()
    }
}

/// Why the USIM rejected a challenge (TS 33.102 §6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkaFailure {
    /// XMAC ≠ MAC: "user authentication reject, MAC failure" (status word 98 62 on the card).
    MacFailure,
    /// MAC correct but SQN not acceptable: the USIM answers with AUTS.
    SyncFailure {
        /// The resynchronisation token carrying SQN_MS.
        auts: Auts,
        /// Which Annex C.2 condition failed.
        reason: SqnReject,
    },
}

/// The USIM's check of (RAND, AUTN) against its SQN array, without changing the array.
///
/// On success the caller records `success.sqn` with [`SqnArray::accept`] (on the card: inside the
/// NVM transaction that also stores the new state).
pub fn usim_verify<const A: usize>(
    m: &Milenage,
    rand: &Rand,
    autn: &Autn,
    sqns: &SqnArray<A>,
    policy: &SqnPolicy,
) -> Result<AkaSuccess, AkaFailure> {
    let out = m.f2345(rand);
    let sqn_bytes = xor(&autn.sqn_xor_ak, &out.ak);
    let xmac = m.f1(rand, &sqn_bytes, &autn.amf);
    if !bool::from(xmac[..].ct_eq(&autn.mac[..])) {
        return Err(AkaFailure::MacFailure);
    }
    let sqn = Sqn::from_bytes(&sqn_bytes);
    if let Err(reason) = sqns.check(sqn, policy) {
        return Err(AkaFailure::SyncFailure { auts: Auts::build(m, rand, sqns.sqn_ms()), reason });
    }
    Ok(AkaSuccess { res: out.res, ck: out.ck, ik: out.ik, sqn, amf: autn.amf })
}

/// [`usim_verify`], then records the SQN in `sqns` on success. On failure `sqns` is unchanged.
pub fn usim_authenticate<const A: usize>(
    m: &Milenage,
    rand: &Rand,
    autn: &Autn,
    sqns: &mut SqnArray<A>,
    policy: &SqnPolicy,
) -> Result<AkaSuccess, AkaFailure> {
    let ok = usim_verify(m, rand, autn, sqns, policy)?;
    sqns.accept(ok.sqn);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqn::UsimSqnArray;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn set1() -> (Milenage, Rand, Sqn, Amf) {
        let m = Milenage::new(&h("465b5ce8b199b49faa5f0a2ee238a6bc"), &h("cd63cb71954a9f4e48a5994e37a02baf"));
        (m, h("23553cbe9637a89d218ae64dae47bf35"), Sqn::from_bytes(&h("ff9bb4d0b607")), h("b9b9"))
    }

    /// AUTN of TS 35.208 test set 1 (spec digest §8.1): 55f328b43577 b9b9 4a9ffac354dfafb3.
    #[test]
    fn autn_test_set_1() {
        let (m, rand, sqn, amf) = set1();
        let autn = Autn::build(&m, &rand, sqn, &amf);
        assert_eq!(autn.to_bytes(), h::<16>("55f328b43577b9b94a9ffac354dfafb3"));
        let av = AuthVector::generate(&m, &rand, sqn, &amf);
        assert_eq!(av.autn, autn);
        assert!(av.verify_res(&h::<8>("a54211d5e3ba50bf")));
        assert!(!av.verify_res(&h::<8>("a54211d5e3ba50be")));
        assert!(!av.verify_res(&h::<7>("a54211d5e3ba50")));
        assert_eq!(Autn::parse(&autn.to_bytes()), Ok(autn));
        assert!(Autn::parse(&[0u8; 15]).is_err());
    }

    #[test]
    fn usim_accepts_then_rejects_replay_with_auts() {
        let (m, rand, sqn, amf) = set1();
        let autn = Autn::build(&m, &rand, sqn, &amf);
        // A card whose SEQ_MS is just below the test-set SQN's SEQ (so Δ is respected).
        let seq = sqn.seq(5);
        let mut seq_ms = [0u64; 32];
        seq_ms[0] = seq - 1;
        let mut sqns = UsimSqnArray::from_seq_ms(seq_ms).unwrap();
        let ok = usim_authenticate(&m, &rand, &autn, &mut sqns, &SqnPolicy::DEFAULT).unwrap();
        assert_eq!(ok.res, h::<8>("a54211d5e3ba50bf"));
        assert_eq!(ok.sqn, sqn);
        assert_eq!(ok.amf, amf);
        assert_eq!(ok.ck.expose(), &h::<16>("b40ba9a3c58b2a05bbf0d987b21bf8cb"));
        assert_eq!(sqns.sqn_ms(), sqn);
        // Replay: synchronisation failure, AUTS carries SQN_MS, state unchanged.
        let before = sqns.clone();
        match usim_authenticate(&m, &rand, &autn, &mut sqns, &SqnPolicy::DEFAULT) {
            Err(AkaFailure::SyncFailure { auts, reason }) => {
                assert_eq!(reason, SqnReject::NotFresh);
                assert_eq!(auts.verify(&m, &rand), Some(sqn));
            }
            other => panic!("expected sync failure, got {other:?}"),
        }
        assert_eq!(sqns, before);
    }

    #[test]
    fn fresh_card_resyncs_on_far_sqn() {
        let (m, rand, sqn, amf) = set1();
        let autn = Autn::build(&m, &rand, sqn, &amf);
        let mut sqns = UsimSqnArray::new();
        match usim_authenticate(&m, &rand, &autn, &mut sqns, &SqnPolicy::DEFAULT) {
            Err(AkaFailure::SyncFailure { auts, reason: SqnReject::TooFarAhead }) => {
                assert_eq!(auts.verify(&m, &rand), Some(Sqn::ZERO));
            }
            other => panic!("expected sync failure, got {other:?}"),
        }
        // After resync the HE continues from SQN_MS: SEQ + 1 within Δ is accepted.
        let next = Sqn::from_seq_ind(1, 0, 5).unwrap();
        let autn = Autn::build(&m, &rand, next, &amf);
        assert!(usim_authenticate(&m, &rand, &autn, &mut sqns, &SqnPolicy::DEFAULT).is_ok());
    }

    #[test]
    fn any_flipped_bit_of_autn_is_a_mac_failure_or_sync_failure_never_success() {
        let (m, rand, sqn, amf) = set1();
        let good = Autn::build(&m, &rand, sqn, &amf).to_bytes();
        let sqns = UsimSqnArray::new();
        let lax = SqnPolicy { delta: u64::MAX, age_limit: None };
        assert!(usim_verify(&m, &rand, &Autn::from_bytes(&good), &sqns, &lax).is_ok());
        for i in 0..AUTN_LEN * 8 {
            let mut bad = good;
            bad[i / 8] ^= 1 << (i % 8);
            let r = usim_verify(&m, &rand, &Autn::from_bytes(&bad), &sqns, &lax);
            assert!(matches!(r, Err(AkaFailure::MacFailure)), "bit {i}");
        }
    }

    #[test]
    fn auts_codec() {
        let (m, rand, _, _) = set1();
        let auts = Auts::build(&m, &rand, Sqn::new(0x1234).unwrap());
        assert_eq!(Auts::parse(&auts.to_bytes()), Ok(auts));
        assert!(Auts::parse(&[0u8; 13]).is_err());
        let mut bad = auts;
        bad.mac_s[7] ^= 1;
        assert_eq!(bad.verify(&m, &rand), None);
    }
}
