//! `keysim`: the command line over the card, the readers, the ME and the simulated network.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if cli.verbose { "debug" } else { "warn" }));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keysim: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Rust starts programs with SIGPIPE ignored, so printing into a closed pipe (`keysim … | head`)
/// would panic; a command-line tool is expected to end quietly instead, as with the default action.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
