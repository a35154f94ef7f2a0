//! `keysim`: the command line over the card, the readers, the ME and the simulated network.

mod capture;
mod cli;
mod cmd;
mod report;

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
            eprintln!("keysim: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message before it
/// already ends with (errors that print their source themselves would otherwise say it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
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
