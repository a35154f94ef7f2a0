//! The subcommands: each takes its parsed arguments and returns the process exit code.

mod bench;
pub(crate) mod call;
pub(crate) mod call_kms;
mod card;
pub(crate) mod card_test;
mod compare;
mod compare_random;
pub(crate) mod ctl;
mod demo;
mod gba;
mod mikey;
mod scale;
pub(crate) mod serve;
mod srtp;
pub(crate) mod tearing;
mod ue;
pub(crate) mod wireshark;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, GbaCommand, ProfileCommand};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(mut args) => {
            let report = args.report.as_deref().map(|p| (p, crate::report::RunKind::Demo));
            let capture = crate::capture::begin(args.capture.as_deref(), report, Some(&mut args.trace))?;
            crate::capture::end(capture, demo::run(args))
        }
        Command::Ue(args) => ue::run(*args),
        Command::Apdu(args) => card::apdu(args),
        Command::Readers => card::readers(),
        Command::Vpcd(args) => card::vpcd(args),
        Command::Profile(ProfileCommand::Show { profile, json }) => {
            card::profile_show(profile.as_deref(), json)
        }
        Command::Gba(GbaCommand::Derive(args)) => gba::derive(args),
        Command::Compare(args) => compare::compare(args),
        Command::Mikey(m) => self::mikey::run(m),
        Command::Srtp(s) => Ok(self::srtp::run(s)),
        Command::Bench(args) => bench::run(args),
        Command::Call(mut args) => {
            let apdus = (args.security == call::Security::Kms).then_some(&mut args.trace);
            let report = args.report.as_deref().map(|p| (p, crate::report::RunKind::Call));
            let capture = crate::capture::begin(args.capture.as_deref(), report, apdus)?;
            crate::capture::end(capture, call::run(args))
        }
        Command::Tearing(args) => tearing::run(args),
        Command::CardTest(args) => card_test::run(args),
        Command::Wireshark(w) => wireshark::run(w),
        Command::Serve(args) => serve::run(args),
        Command::Ctl(args) => ctl::run(args),
    }
}

/// Decode a hex argument of exactly `N` bytes, naming the option in the error.
pub(crate) fn hex_array<const N: usize>(option: &str, text: &str) -> Result<[u8; N]> {
    let bytes = sim_reader::parse_hex(text).map_err(|e| anyhow::anyhow!("{option}: {e}"))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!("{option}: expected {N} bytes ({} hex digits), got {}", 2 * N, bytes.len())
    })
}
