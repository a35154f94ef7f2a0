//! `keysim wireshark install`: puts the Lua plugin shipped with keysim (`wireshark/keysim.lua`)
//! into Wireshark's personal plugin folder, where Wireshark and tshark load it at start-up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

/// The plugin, built into the binary.
const PLUGIN: &str = include_str!("../../wireshark/keysim.lua");

#[derive(Debug, Subcommand)]
pub enum WiresharkCommand {
    /// Copy the plugin into Wireshark's personal Lua plugin folder
    /// (~/.local/lib/wireshark/plugins, as Wireshark 4.0 on Linux reads it) or into --dir.
    Install {
        /// Install into this folder instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the plugin (to load it for one run: tshark -X lua_script:FILE).
    Show,
}

pub fn run(command: WiresharkCommand) -> Result<ExitCode> {
    match command {
        WiresharkCommand::Show => {
            print!("{PLUGIN}");
            Ok(ExitCode::SUCCESS)
        }
        WiresharkCommand::Install { dir } => {
            let dir = match dir {
                Some(d) => d,
                None => match std::env::var_os("HOME") {
                    Some(home) if !home.is_empty() => {
                        PathBuf::from(home).join(".local/lib/wireshark/plugins")
                    }
                    _ => bail!("HOME is not set: give the plugin folder with --dir"),
                },
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("keysim.lua");
            std::fs::write(&path, PLUGIN).with_context(|| format!("writing {}", path.display()))?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
