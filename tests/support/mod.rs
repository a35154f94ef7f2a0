//! Code shared by the root integration tests and the benchmarks (`mod support;`). Each test binary
//! uses a different part of it.
#![allow(dead_code)]

pub mod independent;
pub mod mbms_run;
