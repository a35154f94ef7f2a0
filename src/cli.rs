//! Command-line grammar (clap). Subcommand and flag names are a public interface: scripts use them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Simulates the UICC/ME split of 3GPP GBA and MBMS key management, on an emulated card or a real
/// PC/SC reader.
#[derive(Debug, Parser)]
#[command(name = "keysim", version, about, propagate_version = true)]
pub struct Cli {
    /// Log debug detail on stderr (or set KEYSIM_LOG, e.g. KEYSIM_LOG=sim_reader=trace).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send APDUs to a card, in order, in one card session, and print each response with its meaning.
    Apdu(ApduArgs),
    /// List the PC/SC readers and the cards in them.
    Readers,
    /// Serve the emulated card to a running pcscd through vsmartcard's vpcd driver.
    Vpcd(VpcdArgs),
    /// The card profile (personalization).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// GBA key derivations (TS 33.220).
    #[command(subcommand)]
    Gba(GbaCommand),
}

#[derive(Debug, Subcommand)]
pub enum GbaCommand {
    /// Derive Ks, Ks_NAF / Ks_ext_NAF, Ks_int_NAF and the B-TID from CK, IK and RAND (TS 33.220 Annex B).
    Derive(GbaDeriveArgs),
}

#[derive(Debug, Args)]
pub struct GbaDeriveArgs {
    /// CK, 16 bytes in hex.
    #[arg(long)]
    pub ck: String,
    /// IK, 16 bytes in hex.
    #[arg(long)]
    pub ik: String,
    /// RAND of the bootstrapping run, 16 bytes in hex.
    #[arg(long)]
    pub rand: String,
    /// The IMPI (private user identity).
    #[arg(long)]
    pub impi: String,
    /// The NAF's FQDN (the text part of NAF_Id).
    #[arg(long)]
    pub naf_fqdn: String,
    /// The 5-byte Ua security protocol identifier (TS 33.220 Annex H), e.g. 0100000001 for MBMS.
    #[arg(long)]
    pub ua_protocol: String,
    /// The BSF's domain for the B-TID (base64(RAND)@domain).
    #[arg(long, default_value = "bsf.example.org")]
    pub bsf_domain: String,
    /// Print JSON: {"ks", "ks_naf", "ks_ext_naf", "ks_int_naf", "btid", "naf_id"} (hex except btid).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the profile: the built-in default, or the one in --profile FILE.
    Show {
        /// A TOML profile file (see `keysim profile show` for the fields).
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

/// Where the emulated card comes from.
#[derive(Debug, Args, Clone)]
pub struct CardArgs {
    /// Personalize the emulated card from this TOML profile instead of the built-in default.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Keep the emulated card's non-volatile memory in FILE (created from the profile when absent,
    /// rewritten atomically after every command that changes it).
    #[arg(long, value_name = "FILE")]
    pub card_state: Option<PathBuf>,
    /// The transport protocol of the emulated card: t0 (responses behind 61xx / GET RESPONSE) or t1.
    #[arg(long, value_name = "PROTOCOL", default_value = "t1", value_parser = ["t0", "t1"])]
    pub protocol: String,
}

/// Where APDU traces go.
#[derive(Debug, Args, Clone, Default)]
pub struct TraceArgs {
    /// Print every APDU exchange decoded (command, P1/P2 meaning, data, status word meaning) on stderr.
    #[arg(long)]
    pub trace: bool,
    /// Send every exchange as GSMTAP v2 (type SIM) UDP datagrams to HOST:PORT (Wireshark: udp.port==4729).
    #[arg(long, value_name = "HOST:PORT")]
    pub gsmtap: Option<String>,
    /// Write every exchange into a pcap file (GSMTAP over UDP on 127.0.0.1:4729).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApduArgs {
    /// A PC/SC reader, by index (0, 1, ...) or by a substring of its name.
    #[arg(long, value_name = "NAME", conflicts_with = "emulator")]
    pub reader: Option<String>,
    /// Use the built-in emulated card (the default when no reader is named).
    #[arg(long)]
    pub emulator: bool,
    #[command(flatten)]
    pub card: CardArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Print a JSON array of {"command", "response", "sw"} objects (hex strings).
    #[arg(long)]
    pub json: bool,
    /// Command APDUs in hex (spaces and colons inside one argument are allowed).
    #[arg(value_name = "HEX", required = true)]
    pub apdus: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VpcdArgs {
    /// Host where pcscd's vpcd driver listens.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the vpcd slot ("Virtual PCD 00 00" listens on 35963).
    #[arg(long, default_value_t = 35963)]
    pub port: u16,
    #[command(flatten)]
    pub card: CardArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}
