//! The ME (terminal) of TS 33.246 §6.1 and TS 33.220 §5: GBA_U and GBA_ME clients, the UICC-based and
//! ME-based MBMS key management paths, and the ME key store.
#![deny(unsafe_code)]
