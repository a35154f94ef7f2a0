//! Key types of TS 33.102 §6.3 (CK, IK), TS 33.220 §4.5.2 / Annex B.3 (Ks, Ks_NAF, Ks_ext_NAF,
//! Ks_int_NAF) and TS 33.246 §6.1 (MRK, MUK).
//!
//! Every key is a newtype over a fixed array with no `PartialEq` (compare MACs, not keys, and
//! then with `subtle`), a `Debug` that hides the bytes (`<redacted>`; `..` for the MUK, as the
//! MIKEY keys print), and zeroization on drop. The bytes are reached only through [`Ck::expose`]
//! (or its alias `as_bytes`), so reading key material is always a visible act in the code.

use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        secret_key!($(#[$doc])* $name, $len, "(<redacted>)");
    };
    ($(#[$doc:meta])* $name:ident, $len:expr, $redacted:literal) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the key in octets.
            pub const LEN: usize = $len;

            /// Wraps raw key bytes.
            pub const fn new(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Wraps raw key bytes from a slice; the slice must have exactly [`Self::LEN`] octets.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::Error> {
                let arr: [u8; $len] = bytes
                    .try_into()
                    .map_err(|_| crate::Error::WrongLength { expected: $len, actual: bytes.len() })?;
                Ok(Self(arr))
            }

            /// The key bytes. Use sparingly: every call is a place where key material leaves its type.
            pub fn expose(&self) -> &[u8; $len] {
                &self.0
            }

            /// Same as [`Self::expose`].
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), $redacted))
            }
        }
    };
}

secret_key!(
    /// CK, the 128-bit cipher key of AKA (Milenage f3, TS 33.102 §6.3.2).
    Ck,
    16
);
secret_key!(
    /// IK, the 128-bit integrity key of AKA (Milenage f4, TS 33.102 §6.3.2).
    Ik,
    16
);
secret_key!(
    /// Ks = CK ‖ IK, the 256-bit GBA master key (TS 33.220 §4.5.2). In GBA_U it never leaves the card.
    Ks,
    32
);
secret_key!(
    /// Ks_NAF of GBA_ME: KDF(Ks, "gba-me", RAND, IMPI, NAF_Id), held by the ME (TS 33.220 Annex B.3).
    KsNaf,
    32
);
secret_key!(
    /// Ks_ext_NAF of GBA_U: KDF(Ks, "gba-me", RAND, IMPI, NAF_Id), derived on the card and given to
    /// the ME (TS 33.220 §5.3.2, Annex B.3). In the UICC-based MBMS key management it is the MRK.
    KsExtNaf,
    32
);
secret_key!(
    /// Ks_int_NAF of GBA_U: KDF(Ks, "gba-u", RAND, IMPI, NAF_Id), never leaves the card
    /// (TS 33.220 §5.3.2, Annex B.3). In the UICC-based MBMS key management it is the MUK.
    KsIntNaf,
    32
);
secret_key!(
    /// MRK, the MBMS Request Key: authenticates the UE to the BM-SC in HTTP digest (TS 33.246 §6.1).
    Mrk,
    32
);
secret_key!(
    /// MUK, the MBMS User Key: protects the MIKEY MSK deliveries (TS 33.246 §6.1). The MIKEY MBMS
    /// profile takes this type as its MUK (`mikey::mbms::Muk`), and it prints as the MIKEY keys do.
    Muk,
    32,
    "(..)"
);

impl Ks {
    /// Ks = CK ‖ IK (TS 33.220 §4.5.2): CK first.
    pub fn from_ck_ik(ck: &Ck, ik: &Ik) -> Self {
        let mut ks = [0u8; 32];
        let (first, second) = ks.split_at_mut(16);
        first.copy_from_slice(ck.expose());
        second.copy_from_slice(ik.expose());
        Self(ks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = KsIntNaf::new([0xAB; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "KsIntNaf(<redacted>)");
        assert!(!s.contains("ab") && !s.contains("AB") && !s.contains("171"));
    }

    #[test]
    fn ks_is_ck_then_ik() {
        let ks = Ks::from_ck_ik(&Ck::new([1; 16]), &Ik::new([2; 16]));
        assert_eq!(&ks.expose()[..16], &[1; 16]);
        assert_eq!(&ks.expose()[16..], &[2; 16]);
    }

    #[test]
    fn from_slice_checks_length() {
        assert_eq!(
            Ck::from_slice(&[0; 15]).err(),
            Some(crate::Error::WrongLength { expected: 16, actual: 15 })
        );
        assert!(Ks::from_slice(&[0; 32]).is_ok());
    }
}
