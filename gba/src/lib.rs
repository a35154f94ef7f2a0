//! GBA key derivations (TS 33.220 §4.5.2, §5.3.2, Annex B) and Milenage (TS 35.206).
//!
//! Shared by the card (GBA_U), the ME (GBA_ME) and the simulated BSF, so that all three derive
//! the same keys from the same inputs.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_code)]
