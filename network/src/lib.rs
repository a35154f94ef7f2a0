//! Simulated network peers on loopback (TS 33.220 BSF, TS 33.246 BM-SC, TS 26.237 SCF, TS 33.328 KMS
//! and P-CSCF; the IMS core with its IMS ALG and IMS Access Gateway of TS 33.328), speaking the
//! real wire formats over real sockets.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
pub mod bmsc;
pub mod bmsc_stream;
pub mod bsf;
pub mod config;
pub mod http;
pub mod ims_agw;
pub mod ims_core;
pub mod kms;
pub mod muk_bmsc;
pub mod pcscf;
mod peer_thread;
mod rand_source;
pub mod scf;
pub mod serve;
pub mod store;
