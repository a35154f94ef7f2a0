//! Test support: an [`Nvm`] that loses power at a chosen write, to check at every interruption point
//! that a card update (TS 102 221 §14.1.2) lands whole or not at all.

use core::cell::Cell;

use crate::Personalization;
use crate::nvm::{Nvm, NvmError};

/// IMPUs of [`TS_35_208_SUBSCRIBER`].
pub const TS_35_208_IMPUS: &[&str] =
    &["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "tel:+15551234567"];

/// A card of the subscriber of TS 35.208 test set 1 (K, OPc and AMF of that set; PIN1 "1234",
/// ADM1 "12345678"). The SQN is the card's highest accepted SQN, ff9bb4d0b5e0 (SEQ one below test
/// set 1's ff9bb4d0b607, IND 0), so that the test set 1 AUTN (and the GBA_U AUTN* of the spec digest
/// §8.3) are fresh on a new card.
pub const TS_35_208_SUBSCRIBER: Personalization<'static> = Personalization {
    iccid: "8988211000000430010",
    imsi: "001010123456789",
    k: [0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc],
    opc: [0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf],
    sqn: [0xff, 0x9b, 0xb4, 0xd0, 0xb5, 0xe0],
    amf: [0xb9, 0xb9],
    impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
    impu: TS_35_208_IMPUS,
    home_domain: "ims.mnc001.mcc001.3gppnetwork.org",
    pin1: "1234",
    adm1: *b"12345678",
    puk1: "87654321",
};

/// How much of the interrupted write reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// None of it.
    Nothing,
    /// The first half of the bytes (rounded down).
    Half,
    /// All but the last byte.
    AllButLast,
    /// The first half, and the second half overwritten with `A5` garbage.
    Garbage,
}

impl Tear {
    /// Every kind of tear.
    pub const ALL: [Tear; 4] = [Tear::Nothing, Tear::Half, Tear::AllButLast, Tear::Garbage];
}

/// Wraps an [`Nvm`] and cuts the power at the k-th write from the moment it is armed: that write is
/// torn as [`Tear`] says and fails with [`NvmError::PowerLost`], and every later write fails without
/// effect until [`PowerCutNvm::restore_power`]. Reads keep working.
pub struct PowerCutNvm<N: Nvm> {
    inner: N,
    writes: usize,
    cut_at: Cell<Option<usize>>,
    tear: Cell<Tear>,
    dead: bool,
}

impl<N: Nvm> PowerCutNvm<N> {
    /// Wrap `inner`, with power on and nothing armed.
    pub fn new(inner: N) -> Self {
        PowerCutNvm { inner, writes: 0, cut_at: Cell::new(None), tear: Cell::new(Tear::Nothing), dead: false }
    }

    /// Cut the power at the write `k` writes from now (0 = the next write). Takes `&self` so it can
    /// be armed through [`Uicc::nvm`](crate::Uicc::nvm) while the card runs.
    pub fn arm(&self, k: usize, tear: Tear) {
        self.cut_at.set(Some(self.writes.saturating_add(k)));
        self.tear.set(tear);
    }

    /// Write calls seen so far (including failed ones).
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// Whether the power has been cut.
    pub fn power_lost(&self) -> bool {
        self.dead
    }

    /// Power back on: disarm, and let writes through again.
    pub fn restore_power(&mut self) {
        self.dead = false;
        self.cut_at.set(None);
    }

    /// The wrapped store.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> N {
        self.inner
    }
}

impl<N: Nvm> Nvm for PowerCutNvm<N> {
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.inner.read(offset, buf)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError> {
        let index = self.writes;
        self.writes += 1;
        if self.dead {
            return Err(NvmError::PowerLost);
        }
        if self.cut_at.get() != Some(index) {
            return self.inner.write(offset, data);
        }
        self.dead = true;
        let (first_half, second_half) = data.split_at(data.len() / 2);
        match self.tear.get() {
            Tear::Nothing => {}
            Tear::Half => self.inner.write(offset, first_half)?,
            Tear::AllButLast => {
                self.inner.write(offset, data.split_last().map_or(&[][..], |(_, head)| head))?
            }
            Tear::Garbage => {
                self.inner.write(offset, first_half)?;
                let garbage = [0xA5u8; 64];
                let mut at = offset + first_half.len();
                for chunk in second_half.chunks(garbage.len()) {
                    self.inner.write(at, garbage.get(..chunk.len()).unwrap_or_default())?;
                    at += chunk.len();
                }
            }
        }
        Err(NvmError::PowerLost)
    }
}

/// A deliberate defect a card can be built with ([`Uicc::plant_defect`](crate::Uicc::plant_defect)),
/// each a mistake real cards have been known to make, so that a conformance suite can prove it
/// catches them. Only with the `testing` feature: the normal build's card has no such switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    /// The 3G context accepts a GBA_U challenge (AUTN* with MAC*, TS 33.220 §5.3.2) as if its MAC
    /// were right, and returns CK and IK for it.
    WrongMacCheck,
    /// MTK Generation does not advance the MSK's counter in EF.MSK: a replayed MTK message is
    /// accepted again.
    CounterNotAdvanced,
    /// NAF Derivation Mode returns Ks_int_NAF after Ks_ext_NAF.
    KsIntNafLeaked,
    /// A third MSK of a Key Group replaces the newer of the two kept, not the older: the oldest
    /// MSK stays usable.
    ThirdMskKept,
    /// A wrong PIN or PUK does not cost a try.
    PinTryNotCounted,
    /// The FCP of an EF lacks its life cycle status (tag `8A`, TS 102 221 §11.1.1.4.9).
    MissingFcpTag,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 6] = [
        Defect::WrongMacCheck,
        Defect::CounterNotAdvanced,
        Defect::KsIntNafLeaked,
        Defect::ThirdMskKept,
        Defect::PinTryNotCounted,
        Defect::MissingFcpTag,
    ];

    /// A short name, for command lines and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Defect::WrongMacCheck => "wrong-mac-check",
            Defect::CounterNotAdvanced => "counter-not-advanced",
            Defect::KsIntNafLeaked => "ks-int-naf-leaked",
            Defect::ThirdMskKept => "third-msk-kept",
            Defect::PinTryNotCounted => "pin-try-not-counted",
            Defect::MissingFcpTag => "missing-fcp-tag",
        }
    }

    /// The defect of a [`Defect::name`].
    pub fn from_name(name: &str) -> Option<Defect> {
        Defect::ALL.into_iter().find(|d| d.name() == name)
    }
}
