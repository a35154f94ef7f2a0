//! Card readers for the ME (PC/SC part 3, vsmartcard vpcd protocol): the [`Reader`] trait, the
//! in-process emulator, PC/SC readers, the vpcd server, T=0 handling and APDU traces.
#![deny(unsafe_code)]
