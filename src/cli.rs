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
    /// The whole MBMS service end to end on loopback: BSF and BM-SC started in-process, the card
    /// emulated (or in a PC/SC reader), GBA bootstrap → NAF keys → registration → MSK push → MTK
    /// updates → SRTP media checked against the source → MSK rotation → solicited pull →
    /// deregistration, on the UICC-based path, the ME-based path, or both.
    Demo(DemoArgs),
    /// One UE (or N) against a running BSF and BM-SC (keysim's in another process, or anyone's):
    /// power-on, GBA bootstrap, NAF keys, registration over HTTP or SIP, MSK push, then the MTKs,
    /// media, MSK rotations and solicited pulls the BM-SC sends on its own schedule for --duration
    /// seconds, deregistration. Exit 0 only when every step succeeded.
    Ue(Box<UeArgs>),
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
    /// Run one BM-SC stream through the UICC-based and the ME-based key management side by side.
    Compare(CompareArgs),
    /// MIKEY messages of MBMS security (RFC 3830, RFC 4563, TS 33.246): decode and build.
    #[command(subcommand)]
    Mikey(MikeyCommand),
    /// SRTP and SRTCP (RFC 3711): protect or unprotect the packets of a file.
    #[command(subcommand)]
    Srtp(SrtpCommand),
    /// Measure SRTP throughput on one core beside libsrtp and the bare crypto, and the card's rates.
    Bench(BenchArgs),
    /// One protected IMS call between two simulated UEs (TS 33.328: SDES e2e / e2ae, KMS), media both ways.
    Call(crate::cmd::call::CallArgs),
    /// Cut the power at every NVM write of every card and ME key-store flow, restart, check the invariants.
    Tearing(crate::cmd::tearing::TearingArgs),
    /// Conformance suite for a card in a PC/SC reader (or the emulated one): TS 102 221 basics,
    /// USIM/ISIM AKA, GBA_U and MBMS key management, checked against the network side's answers.
    CardTest(crate::cmd::card_test::CardTestArgs),
    /// The Wireshark plugin for what Wireshark does not decode in a keysim capture.
    #[command(subcommand)]
    Wireshark(crate::cmd::wireshark::WiresharkCommand),
    /// The BSF and the BM-SC as standalone servers on fixed loopback ports, their state (SQNs,
    /// bootstrappings, registrations, MSKs, MTK IDs, MIKEY counters) kept in a database across
    /// restarts, until SIGINT or SIGTERM.
    Serve(crate::cmd::serve::ServeArgs),
    /// Operator actions on a running `keysim serve`: list, counters, rotate-msk, pull, media.
    Ctl(crate::cmd::ctl::CtlArgs),
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
    /// Keep the emulated card's non-volatile memory in FILE (created 0600 from the profile when
    /// absent, locked for the session, rewritten atomically after every command that changes it;
    /// it holds the card's secrets).
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

// ---------------------------------------------------------------------------------------------
// keysim mikey

#[derive(Debug, Subcommand)]
pub enum MikeyCommand {
    /// Decode a MIKEY message and print every payload with its fields; optionally verify its MAC
    /// and decrypt its key with the MUK (MSK messages) or the MSK (MTK messages).
    Decode(MikeyDecodeArgs),
    /// Build an MBMS MIKEY message (TS 33.246): MSK message, MTK message or solicited pull.
    #[command(subcommand)]
    Build(MikeyBuildCommand),
}

/// How `keysim mikey decode --json` describes a message.
pub const MIKEY_DECODE_JSON_HELP: &str = "\
JSON output (--json):
  {\"payloads\": [ {\"type\": \"HDR\", ...}, {\"type\": \"EXT\", ...}, ... ],
   \"verification\": {...}}                      (only with --muk or --msk)

Every payload object has \"type\" (HDR, KEMAC, T, ID, IDR, V, SP, RAND, ERR, EXT), \"offset\" (of
its first byte in the message) and \"length\" (bytes, including its next-payload byte). Byte
strings are lowercase hex; numeric codes come with a \"<key>_name\" beside them where known.
  HDR    version, data_type, v, prf, csb_id (8 hex digits), cs_count, cs_id_map_type,
         cs_id_map (SRTP-ID: [{policy_no, ssrc, roc}]; GENERIC-ID: [{cs_id, prot_type, s,
         policy_nos, session_data, spi}]; empty map: [])
  EXT    ext_type; Key ID information (type 3, RFC 4563): key_ids [{key_id_type, value}] and
         key_domain_id, msk_id, key_group (the MSK ID's first 2 bytes), mtk_id as present;
         other types: data
  T      ts_type, value (a number), value_hex; NTP-UTC also time (ISO 8601, UTC)
  RAND   rand
  ID     id_type, role (IDi / IDr by position), data (text), data_hex
  IDR    role, id_type, data, data_hex
  SP     policy_no, prot_type, params [{param_type, value}]
  KEMAC  encr_alg, encr_data_len, encr_data, mac_alg, mac; key_data [{key_type, key_len, key
         (only with --show-keys), salt_len, salt (only with --show-keys), kv_type, kv_spi or
         kv_from and kv_to}] when
         the key data is readable (NULL encryption, or decrypted with --muk / --msk)
  V      mac_alg, mac
  ERR    error_no

verification: {message (MSK, solicited pull, MTK), key (MUK or MSK), mac (valid or invalid),
  key_domain_id, msk_id, key_group, mtk_id, timestamp, v, key_type, kv_type, salt_present,
  msk / mtk / salt (only with --show-keys)}

Exit status: 0 decoded (and verified when asked), 1 the MAC did not verify, 2 malformed input
(the error names the payload and its offset) or a usage error.";

#[derive(Debug, Args)]
#[command(after_long_help = MIKEY_DECODE_JSON_HELP)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["hex", "input"])))]
pub struct MikeyDecodeArgs {
    /// The message in hex (spaces and colons allowed).
    #[arg(value_name = "HEX")]
    pub hex: Option<String>,
    /// Read the message from FILE ("-" for stdin): hex text or raw binary, detected.
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print JSON (see --help for the shape).
    #[arg(long)]
    pub json: bool,
    /// MUK (Ks_int_NAF / Ks_NAF, 32 bytes hex): verify an MSK message or solicited pull and
    /// decrypt its MSK.
    #[arg(long, value_name = "HEX", conflicts_with = "msk")]
    pub muk: Option<String>,
    /// MSK (16 bytes hex): verify an MTK message and decrypt its MTK and salt.
    #[arg(long, value_name = "HEX")]
    pub msk: Option<String>,
    /// Print the decrypted keys (MSK, MTK, salt). Without it only their lengths are shown.
    #[arg(long)]
    pub show_keys: bool,
}

#[derive(Debug, Subcommand)]
pub enum MikeyBuildCommand {
    /// An MSK message protected with the MUK (TS 33.246 §6.3.2).
    Msk(MikeyBuildMskArgs),
    /// An MTK message protected with the MSK (TS 33.246 §6.3.3).
    Mtk(MikeyBuildMtkArgs),
    /// A solicited pull (TS 33.246 §6.3.2.2.4): an MSK message with MSK key number 0 and no key,
    /// MAC only, telling the UE to request the current MSK of a Key Group.
    Pull(MikeyBuildPullArgs),
}

/// Options every built message shares.
#[derive(Debug, Args)]
pub struct MikeyBuildCommon {
    /// The HDR's CSB ID (8 hex digits). Which identifier TS 33.246 puts here is UNCONFIRMED
    /// (§6.3.2.1), so it is the caller's choice.
    #[arg(long, value_name = "HEX8", default_value = "00000000")]
    pub csb_id: String,
    /// Write the raw message into FILE instead of printing it in hex.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MikeyBuildMskArgs {
    /// MUK, 32 bytes hex (Ks_int_NAF for GBA_U, Ks_NAF for GBA_ME).
    #[arg(long, value_name = "HEX")]
    pub muk: String,
    /// IDi: the BM-SC's FQDN (NAF FQDN).
    #[arg(long, value_name = "FQDN")]
    pub idi: String,
    /// IDr: the B-TID of the bootstrap that gave the MUK.
    #[arg(long, value_name = "BTID")]
    pub idr: String,
    /// Key Domain ID (MCC || MNC), 3 bytes hex.
    #[arg(long, value_name = "HEX6")]
    pub key_domain: String,
    /// MSK ID, 4 bytes hex (Key Group || key number); the key number may not be 0.
    #[arg(long, value_name = "HEX8")]
    pub msk_id: String,
    /// The MSK, 16 bytes hex.
    #[arg(long, value_name = "HEX")]
    pub msk: String,
    /// Timestamp value: the MUK's replay counter (decimal or 0x-hex).
    #[arg(long, value_name = "N")]
    pub timestamp: String,
    /// Timestamp type: counter (32 bits), ntp-utc or ntp (64-bit NTP, seconds since 1900 in the
    /// upper 32 bits).
    #[arg(long, value_name = "TYPE", default_value = "counter", value_parser = ["counter", "ntp-utc", "ntp"])]
    pub ts_type: String,
    /// RAND, at least 16 bytes hex (default: 16 random bytes).
    #[arg(long, value_name = "HEX")]
    pub rand: Option<String>,
    /// Set the V bit: ask the UE for a verification message.
    #[arg(long)]
    pub v: bool,
    #[command(flatten)]
    pub common: MikeyBuildCommon,
}

#[derive(Debug, Args)]
pub struct MikeyBuildMtkArgs {
    /// MSK, 16 bytes hex.
    #[arg(long, value_name = "HEX")]
    pub msk: String,
    /// Key Domain ID (MCC || MNC), 3 bytes hex.
    #[arg(long, value_name = "HEX6")]
    pub key_domain: String,
    /// MSK ID of the protecting MSK, 4 bytes hex.
    #[arg(long, value_name = "HEX8")]
    pub msk_id: String,
    /// MTK ID in hex (2 bytes in this profile; UNCONFIRMED length, TS 33.246 §6.3.3.1).
    #[arg(long, value_name = "HEX")]
    pub mtk_id: String,
    /// The MTK, 16 bytes hex (the SRTP master key).
    #[arg(long, value_name = "HEX")]
    pub mtk: String,
    /// Salt sent with the MTK, 14 bytes hex (the SRTP master salt).
    #[arg(long, value_name = "HEX")]
    pub salt: Option<String>,
    /// Timestamp COUNTER: the MSK's replay counter.
    #[arg(long, value_name = "N")]
    pub counter: u32,
    /// RAND payload, at least 16 bytes hex (default: none; the transport keys then use an empty
    /// RAND).
    #[arg(long, value_name = "HEX")]
    pub rand: Option<String>,
    #[command(flatten)]
    pub common: MikeyBuildCommon,
}

#[derive(Debug, Args)]
pub struct MikeyBuildPullArgs {
    /// MUK, 32 bytes hex (the most recent MUK).
    #[arg(long, value_name = "HEX")]
    pub muk: String,
    /// IDi: the BM-SC's FQDN.
    #[arg(long, value_name = "FQDN")]
    pub idi: String,
    /// IDr: the B-TID of the most recent MUK.
    #[arg(long, value_name = "BTID")]
    pub idr: String,
    /// Key Domain ID (MCC || MNC), 3 bytes hex.
    #[arg(long, value_name = "HEX6")]
    pub key_domain: String,
    /// Key Group whose current MSK the UE shall request, 2 bytes hex.
    #[arg(long, value_name = "HEX4")]
    pub key_group: String,
    /// Timestamp value: the MUK's replay counter (decimal or 0x-hex).
    #[arg(long, value_name = "N")]
    pub timestamp: String,
    /// Timestamp type: counter, ntp-utc or ntp.
    #[arg(long, value_name = "TYPE", default_value = "counter", value_parser = ["counter", "ntp-utc", "ntp"])]
    pub ts_type: String,
    /// RAND, at least 16 bytes hex (default: 16 random bytes).
    #[arg(long, value_name = "HEX")]
    pub rand: Option<String>,
    #[command(flatten)]
    pub common: MikeyBuildCommon,
}

// ---------------------------------------------------------------------------------------------
// keysim srtp

#[derive(Debug, Subcommand)]
pub enum SrtpCommand {
    /// Protect RTP (or with --rtcp, RTCP) packets: encrypt, append MKI and tag.
    Protect(SrtpArgs),
    /// Unprotect SRTP (or with --rtcp, SRTCP) packets: check tag and replay, decrypt.
    Unprotect(SrtpArgs),
}

/// Exit status of `keysim srtp`.
pub const SRTP_EXIT_HELP: &str = "\
Packets: with --format hex, one packet per line in hex (blank lines and lines starting with '#'
are skipped); with --format pcap, a classic pcap file (Ethernet or raw IP) whose IPv4/IPv6 UDP
payloads are the packets. Output frames keep the input's link, IP and UDP headers with lengths
and checksums fixed; frames that are not UDP are copied unchanged. Packet N is the Nth packet
line (hex) or pcap frame N (as Wireshark numbers it).

A packet that fails (authentication, replay, unknown MKI, malformed) is reported on stderr as
\"packet N: reason\" and not written; the others are.

Exit status:
  0        every packet was processed
  1-63     that many packets failed (63 means 63 or more)
  64       a bad option value (key or salt length, hex, MKI, key derivation rate)
  65       the input is not a pcap file of a supported link type
  66       the input cannot be read
  73       the output cannot be written
  2        the command line itself is wrong (unknown option, missing value): like every keysim
           command, this is reported before any packet is read and no output is written";

#[derive(Debug, Args)]
#[command(after_long_help = SRTP_EXIT_HELP)]
pub struct SrtpArgs {
    /// Master key, 16 bytes hex.
    #[arg(long, value_name = "HEX")]
    pub key: String,
    /// Master salt, 14 bytes hex.
    #[arg(long, value_name = "HEX")]
    pub salt: String,
    /// Crypto suite (RFC 4568 name).
    #[arg(long, value_name = "SUITE", default_value = "AES_CM_128_HMAC_SHA1_80", value_parser = [
        "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32",
    ])]
    pub suite: String,
    /// The packets are RTCP / SRTCP.
    #[arg(long)]
    pub rtcp: bool,
    /// Master Key Identifier in hex: every packet carries it (its length is the MKI length).
    #[arg(long, value_name = "HEX")]
    pub mki: Option<String>,
    /// Key derivation rate: 0 (derive once) or a power of 2 up to 2^24 (RFC 3711 §4.3.1).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub kdr: u64,
    /// Input file ("-" for stdin).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output file ("-" for stdout).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// File format of input and output: hex (one packet per line) or pcap (UDP payloads).
    #[arg(long, value_name = "FORMAT", default_value = "hex", value_parser = ["hex", "pcap"])]
    pub format: String,
}

// ---------------------------------------------------------------------------------------------
// keysim bench

/// What `keysim bench --json` prints.
pub const BENCH_JSON_HELP: &str = "\
All SRTP figures are measured in this run, on one core, 12-byte RTP header + 1200-byte payload,
AES_CM_128_HMAC_SHA1_80, timed on the thread's CPU time (\"timing\"); each is the best of 3 runs
of --seconds after a warm-up. --quick: 0.05 s runs and short network runs (for tests); it builds
no peer (a peer built before is measured).
--srtp-only: only the SRTP figures and their peers.

JSON output (--json); a figure that could not be measured is null and \"notes\" says why:
  srtp_protect_pps, srtp_unprotect_pps   this project's srtp crate, packets per second
  srtp_strategy                          how srtp::transform schedules AES-CM and HMAC-SHA1 on
                                         this CPU (one-pass/1 or sequential) and its AES backend
  crypto_budget_pps                      the bare crypto on the same packets with the primitives
                                         used as the srtp crate uses them (AES-CTR over the
                                         payload + HMAC-SHA1 over header, payload and ROC,
                                         srtp::transform with srtp_strategy), no SRTP framing
  crypto_budget_other_strategy_pps, crypto_budget_other_strategy
                                         the same with the strategy this CPU did not get
  crypto_budget_sequential_pps           the same through the ctr and hmac crates, one after the other
  crypto_budget_best_pps                 the best of the three budgets
  libsrtp_protect_pps, libsrtp_unprotect_pps, libsrtp_version
                                         libsrtp through PyPI pylibsrtp, timed in a Python loop
  libsrtp_c_protect_pps, libsrtp_c_unprotect_pps, libsrtp_c_version, libsrtp_c_crypto
                                         Debian libsrtp2 from C (benches/peers/libsrtp_bench.c)
  libsrtp_openssl_protect_pps, libsrtp_openssl_unprotect_pps, libsrtp_openssl_version,
  libsrtp_openssl_crypto                 libsrtp built from source with its OpenSSL backend by the
                                         srtp2-sys crate (benches/peers/libsrtp-openssl, built on
                                         first use), and the OpenSSL it runs on
  webrtc_srtp_protect_pps, webrtc_srtp_unprotect_pps, webrtc_srtp_version
                                         webrtc-srtp (benches/peers/webrtc-srtp, built on first use)
  openssl_aes128ctr_1200_Bps, openssl_hmac_sha1_1216_Bps
                                         bytes per second from `openssl speed -bytes N`
  openssl_budget_pps                     1 / (1200 B at the AES-CTR rate + 1216 B at the HMAC rate)
  ratio_vs_{libsrtp,libsrtp_c,libsrtp_openssl,budget,sequential_budget,best_budget,openssl_budget,
           webrtc}_{protect,unprotect}
  srtp_protect_vs_libsrtp, srtp_unprotect_vs_libsrtp, srtp_vs_libsrtp (the smaller of the two)
  srtp_protect_vs_crypto_budget, srtp_unprotect_vs_crypto_budget, srtp_vs_crypto_budget (smaller)
  card_select_aps                        SELECT MF per second on the in-process emulated card
  card_mtk_generations_per_s             MBMS AUTHENTICATE MTK Generation per second on it
  mtk_updates_per_s_uicc, _me            MTK updates end to end on loopback, in-process card
  mtk_updates_per_s_uicc_pcsc, _me_pcsc  the same through pcscd + vpcd (KEYSIM_PCSC_READER;
                                         benches/pcsc-bench.sh sets it up)
  payload_bytes, seconds, timing, python, notes

`keysim bench scale --ues N` and `keysim bench storm --ues N` measure many UEs against BM-SCs on
loopback; `keysim bench serve --ues N` one `keysim serve` process against a `keysim ue --ues N`
process (see their --help and BENCHMARKS.md).

Python for libsrtp: --python, else $KEYSIM_PYTHON, else the pyenv-srtp venv in the build's
target directory, else python3; it must import pylibsrtp.";

#[derive(Debug, Args)]
#[command(after_long_help = BENCH_JSON_HELP)]
pub struct BenchArgs {
    /// Print JSON (see --help for the keys).
    #[arg(long)]
    pub json: bool,
    /// Length of each timed run, in seconds.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub seconds: f64,
    /// A Python interpreter that can import pylibsrtp.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Short runs of everything (for tests: the figures are rough).
    #[arg(long)]
    pub quick: bool,
    /// Only the SRTP figures and their peers (no card, network or PC/SC figures).
    #[arg(long)]
    pub srtp_only: bool,
    /// Scale figures instead of the per-core ones.
    #[command(subcommand)]
    pub what: Option<BenchCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// N emulated UEs registered with one BM-SC on loopback, each taking one MSK push and a run of
    /// MTK updates: wall time, peak memory, memory per UE.
    Scale(ScaleArgs),
    /// A BM-SC re-key storm: N registered UEs, one solicited pull to all at once, every UE asks for
    /// the new MSK: requests served per second, latency distribution, UEs left without the MSK.
    Storm(ScaleArgs),
    /// One `keysim serve` process (a child, private state, free ports, a subscriber range of N)
    /// against the N UEs of one `keysim ue --ues N` process over loopback sockets: registrations
    /// per second, MTK fan-out to the UEs, memory per UE and the server's memory.
    Serve(ServeBenchArgs),
}

#[derive(Debug, Args)]
#[command(after_long_help = SERVE_BENCH_JSON_HELP)]
pub struct ServeBenchArgs {
    /// Number of UEs (each on its own loopback address 127.0.x.y).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub ues: usize,
    /// Seconds each UE listens to the bearer after its MSK push.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub duration: f64,
    /// The BM-SC's MTK period in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub mtk_period_ms: u64,
    /// Key-management path of the UEs.
    #[arg(long, value_name = "PATH", default_value = "uicc", value_parser = ["uicc", "me"])]
    pub path: String,
    /// The bearer: one multicast group on loopback every UE joins, or one unicast address per UE
    /// (the BM-SC sends N copies).
    #[arg(long, value_name = "KIND", default_value = "multicast", value_parser = ["multicast", "unicast"])]
    pub bearer: String,
    /// Print JSON (see --help for the keys).
    #[arg(long)]
    pub json: bool,
}

pub const SERVE_BENCH_JSON_HELP: &str = "JSON keys:
  ues, path, bearer, duration_s, mtk_period_ms    the run
  ok, ue_exit_status, ok_count                     every UE's every step succeeded; keysim ue's exit
  registered, with_msk, with_mtk, decrypting, decrypt_failures   UEs (packets) as keysim ue counts them
  registration_window_ms, registrations_per_s      first registration start to last registration end
  mtk_fanout_{mtks,mean_ms,p50_ms,p95_ms,max_ms}   per MTK installed by 2+ UEs: first to last UE installing it
  ue_vm_hwm_kib, ue_memory_per_ue_kib              the UE process's peak resident memory, and it / N
  ue_memory_per_ue_above_start_kib                 (peak - resident before the UEs) / N
  ue_wall_s, serve_start_s                         wall time of keysim ue; of the server's start
  serve_registered_max, serve_bootstraps           UEs registered at once and B-TIDs, as the admin API says
  serve_rss_idle_kib, serve_rss_kib                the server's resident memory before the UEs, after them
  serve_rss_peak_sampled_kib, serve_hwm_kib        its largest sampled, and its peak (VmHWM)
  serve_cpu_s, serve_exit                          its user+system CPU during the UEs' run; its exit after SIGTERM
  cpu                                              model, family, model_number, cores, flags_of_note,
                                                   hypervisor, loadavg (the machine may be shared)";

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Number of UEs.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub ues: usize,
    /// MTK updates each UE takes (scale).
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub mtk_updates: u64,
    /// Key management path of the UEs: uicc (an emulated card each) or me.
    #[arg(long, value_name = "PATH", default_value = "uicc")]
    pub path: String,
    /// Worker threads that multiplex the UEs (default: the number of cores).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Personalize both emulated cards from this TOML profile instead of the built-in default.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// MTK updates to run.
    #[arg(long, default_value_t = 12)]
    pub rounds: usize,
    /// MTK updates per MSK (an MSK rotation every this many rounds).
    #[arg(long, default_value_t = 4)]
    pub mtks_per_msk: usize,
    /// SRTP packets sent under each MTK.
    #[arg(long, default_value_t = 25)]
    pub packets_per_mtk: usize,
    /// Print JSON: {"uicc": {...}, "me": {...}, "mtks_identical", "media_identical", "ok"}; with
    /// --random: {"histories", "steps", "divergences": [{"seed", "steps", "first_difference", ...}],
    /// "allowed_differences_seen", "ok"}.
    #[arg(long)]
    pub json: bool,
    /// Differential validation: N random, reproducible key-management histories (pushes, replays,
    /// stale counters, bad MACs, unknown MUKs, solicited pulls, reordered and tampered MTKs,
    /// deletions, power cycles, re-bootstraps) through both paths, compared step by step; a
    /// divergence is shrunk to the shortest history that still shows it. Exit 1 on any divergence.
    #[arg(long, value_name = "N", conflicts_with = "history")]
    pub random: Option<u64>,
    /// The seed of the first random history (the others follow it).
    #[arg(long, value_name = "S", default_value_t = 1, requires = "random")]
    pub seed: u64,
    /// Run this one history (comma-separated events, as a divergence report prints them).
    #[arg(long, value_name = "EVENTS")]
    pub history: Option<String>,
    /// The UICC-based path's card in this PC/SC reader (by index or name substring) instead of an
    /// emulated one; give its keys with --profile unless it is keysim's default card.
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// Plant a defect in the ME-based path, to see a divergence found and shrunk
    /// (me-stale-mtk-id: an MTK ID not above the last one is accepted).
    #[arg(long, value_name = "DEFECT", value_parser = ["me-stale-mtk-id"], hide = true)]
    pub plant: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("card_source").required(true).args(["emulator", "reader"])))]
#[command(group(clap::ArgGroup::new("key_management_peer").required(true).args(["bmsc", "pcscf"])))]
pub struct UeArgs {
    /// The emulated card (personalized from --profile, its memory kept in --card-state).
    #[arg(long)]
    pub emulator: bool,
    /// A PC/SC reader, by index (0, 1, ...) or by a substring of its name, holding the card.
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// The ME key store lives in DIR across runs (created 0700 when absent): the last used MUK stays over a
    /// power cycle, a card of another ICCID or IMPI wipes every key. With --ues, DIR/ue-<i>.
    /// Default: a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub me_state: Option<std::path::PathBuf>,
    /// The BSF's Ub URL (http://host:port/, loopback).
    #[arg(long, value_name = "URL")]
    pub bsf: String,
    /// The BM-SC's base URL (http://host:port, loopback): registration by HTTP Digest.
    #[arg(long, value_name = "URL")]
    pub bmsc: Option<String>,
    /// The P-CSCF (sip:host:port, loopback UDP): registration by SIP to the SCF (TS 26.237 §10.4.2).
    #[arg(long, value_name = "SIP-URI")]
    pub pcscf: Option<String>,
    /// With --pcscf: the SCF's Request-URI.
    #[arg(long, value_name = "SIP-URI")]
    pub scf_uri: Option<String>,
    /// With --pcscf: the UE's public identity (default: the profile's first IMPU).
    #[arg(long, value_name = "URI")]
    pub impu: Option<String>,
    /// Key-management path: uicc (GBA_U, MUK and MSKs on the card) or me (GBA_ME, keys in the ME).
    #[arg(long, value_name = "PATH", default_value = "uicc", value_parser = ["uicc", "me"])]
    pub path: String,
    /// A User Service ID to register (repeat for more; default: the first service of keysim demo).
    #[arg(long = "service", value_name = "ID")]
    pub services: Vec<String>,
    /// Seconds to listen to the BM-SC after the MSK push.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub duration: f64,
    /// Write the decrypted media into FILE: per SSRC (ascending) the RTP payloads in sequence
    /// order, concatenated (raw G.711 for G.711 media: compare with the source's sample data).
    #[arg(long, value_name = "FILE")]
    pub media_out: Option<std::path::PathBuf>,
    /// Print the report as JSON (the step log stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No step log on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// The NAF FQDN: the BM-SC's (NAF_Id, MIKEY IDi, Digest realms), or with --pcscf the SCF's.
    /// Default: the URL's host when it is a name, else keysim's default FQDN.
    #[arg(long, value_name = "FQDN")]
    pub naf_fqdn: Option<String>,
    /// The UDP address MSK pushes come to (the BM-SC sends them to the HTTP source address and its
    /// configured UE MIKEY port: the port must be that one). With --ues, the port on each UE's address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2269")]
    pub mikey_bind: String,
    /// The MBMS bearer's MTK address: an IPv4 239.x multicast group:port joined on loopback, or the
    /// --mikey-bind address (default).
    #[arg(long, value_name = "ADDR")]
    pub bearer_mikey: Option<String>,
    /// The MBMS bearer's SRTP address: a loopback address to bind, or a 239.x multicast group:port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5004")]
    pub bearer_media: String,
    /// PIN1 (default: the profile's).
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
    /// N UEs with N emulated cards (card i: the profile with its own IMSI, IMPI and K) at once,
    /// UE i on its own loopback address 127.0.(1+i/254).(1+i%254).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub ues: u32,
    #[command(flatten)]
    pub card: CardArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write the UE's packets into FILE (pcapng): the frames of the host's loopback to or from its
    /// ports and its peers' (BSF, BM-SC or P-CSCF, MIKEY, bearer), and with one UE its card's
    /// APDUs as GSMTAP (a packet socket on lo: needs CAP_NET_RAW).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Write an HTML message sequence chart of the same frames into FILE (as keysim demo --report).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Key-management path: uicc (GBA_U, MUK and MSKs on the card), me (GBA_ME, keys in the ME) or both.
    #[arg(long, value_name = "PATH", default_value = "both", value_parser = ["uicc", "me", "both"])]
    pub path: String,
    /// A PC/SC reader, by index (0, 1, ...) or by a substring of its name, instead of the emulated card.
    /// The BSF then needs the card's keys: give its profile with --profile.
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// MBMS User Services (each its own Key Group, MSKs and SRTP stream). On the UICC-based path at
    /// most as many as the card's EF.MSK has records (4 on the built-in card); checked before anything runs.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub services: u16,
    /// Seconds of media (50 SRTP packets per second and service, a new MTK every second).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub duration: f64,
    /// Print JSON: {"paths": {"uicc": {...}, "me": {...}}, "ok": ...} (the step log stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No step log on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// PIN1 of the card in --reader (default: the profile's).
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
    /// Stream this media file instead of the generated test signal: raw G.711 µ-law (PCMU),
    /// 160-octet frames of 20 ms, repeated when it ends. The decrypted frames are checked against it.
    #[arg(long, value_name = "FILE")]
    pub media: Option<PathBuf>,
    /// Send the bearer's MTK messages and media to an IPv4 multicast group on the loopback
    /// interface (239.255.77.77) instead of unicast; MSK pushes stay unicast.
    #[arg(long)]
    pub multicast: bool,
    /// How the UE registers, deregisters and asks for MSKs: http (HTTP Digest to the BM-SC,
    /// TS 33.246 §6.3.2) or sip (SIP through a P-CSCF to the SCF acting as NAF, TS 26.237 §10.4.2).
    #[arg(long, value_name = "MODE", default_value = "http", value_parser = ["http", "sip"])]
    pub signalling: String,
    #[command(flatten)]
    pub card: CardArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write every packet the run's parts exchange (HTTP, SIP/SDP, MIKEY on UDP 2269, RTP/SRTP,
    /// the APDUs as GSMTAP) into FILE, a pcapng file Wireshark decodes as it stands. The run gets a
    /// network namespace of its own (root, or unprivileged user namespaces).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Write a self-contained HTML page of the run into FILE: a message-sequence chart in SVG
    /// (one lane per party, one arrow per message, key lifecycle marks, refusals in red, each
    /// arrow's content on click) and a summary table. Taken from the same capture as --capture.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}
