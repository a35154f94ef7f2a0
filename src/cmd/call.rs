//! `keysim call`: one protected IMS voice call between two simulated UEs through the simulated IM
//! CN subsystem on loopback (TS 33.328 §7: SDES e2e, SDES e2ae through the IMS ALG and the IMS
//! Access Gateway, or the KMS with MIKEY-TICKET), media both ways, and whether each end decrypted
//! what the other sent. The caller is the first IMPU of the built-in card profile (with `kms`: of
//! `--profile`, on the card in `--reader` or an emulated one), the callee the built-in callee
//! profile's. JSON shape and flows: docs/ims-media-security.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use me::{ImsUe, ImsUeConfig, MediaKeying, MediaReport, SdesKeying, SdesScope};
use network::ims_core::{ImsCore, ImsCoreConfig};
use serde_json::{Value, json};
use sim_reader::CardProfile;

use crate::cli::TraceArgs;

/// Exit status when card options (--reader, --profile, APDU traces) come with an SDES security.
const EXIT_USAGE: u8 = 2;
/// Exit status when the call failed or media did not decrypt or match.
const EXIT_MEDIA: u8 = 1;
/// Seeds of the two senders' payloads (the caller's, the callee's).
const SEEDS: (u64, u64) = (0x00ca_11e7, 0x00ca_11ee);

/// The media plane security of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    /// SDES end to end (TS 33.328 §7.2.2, §7.3.2).
    SdesE2e,
    /// SDES end to access edge through the IMS ALG and IMS-AGW (TS 33.328 §7.2.1, §7.3.1).
    SdesE2ae,
    /// KMS-based MIKEY-TICKET (TS 33.328 §7.2.3, §7.3.3).
    Kms,
}

impl Security {
    fn name(self) -> &'static str {
        match self {
            Security::SdesE2e => "sdes-e2e",
            Security::SdesE2ae => "sdes-e2ae",
            Security::Kms => "kms",
        }
    }
}

/// `keysim call` options.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Media plane security: sdes-e2e, sdes-e2ae or kms.
    #[arg(long, value_enum)]
    pub security: Security,
    /// RTP packets each side sends.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub packets: u32,
    /// Print JSON: {"security","ok","caller","callee","agw","kms","signalling","media_match"}.
    #[arg(long)]
    pub json: bool,
    /// With --security kms: the caller's card is the one in this PC/SC reader, by index (0, 1, ...)
    /// or by a substring of its name (default: an emulated card). The callee's card stays emulated.
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// With --security kms: the caller card's profile (TOML); the BSF gets its keys, the caller its
    /// IMPI, first IMPU and PIN1 (default: the built-in profile).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// With --security kms: where the caller card's APDUs are traced.
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write every packet of the call (SIP/SDP, the KMS's HTTP, RTP/SRTP, with --security kms both
    /// cards' APDUs as GSMTAP) into FILE, a pcapng file Wireshark decodes as it stands. The
    /// run gets a network namespace of its own (root, or unprivileged user namespaces).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Write a self-contained HTML page of the run into FILE: a message-sequence chart in SVG
    /// (one lane per party, one arrow per message, key lifecycle marks, refusals in red, each
    /// arrow's content on click) and a summary table. Taken from the same capture as --capture.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

impl CallArgs {
    /// The options that only the KMS keying uses (it has cards; SDES has none), as given.
    fn card_options(&self) -> Vec<&'static str> {
        let given = [
            ("--reader", self.reader.is_some()),
            ("--profile", self.profile.is_some()),
            ("--trace", self.trace.trace),
            ("--gsmtap", self.trace.gsmtap.is_some()),
            ("--pcap", self.trace.pcap.is_some()),
        ];
        given.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect()
    }
}

/// The keying of both UEs and what the key management reports afterwards.
struct Keying {
    caller: Box<dyn MediaKeying + Send>,
    callee: Box<dyn MediaKeying + Send>,
    kms: Option<KmsRun>,
}

// ---- KMS (MIKEY-TICKET) -------------------------------------------------------------------------
// The KMS side (BSF, KMS, the two cards and GBA bootstrapping) lives in `call_kms.rs`.
struct KmsRun(super::call_kms::KmsSetup);

impl KmsRun {
    fn report(&self) -> Value {
        self.0.report()
    }
    fn shutdown(self) {
        self.0.shutdown()
    }
}

/// The KMS keying of both UEs (BSF, KMS, both cards bootstrapped with GBA_U).
fn kms_keying(caller_card: super::call_kms::CallerCard<'_>) -> Result<Keying> {
    let mut setup = super::call_kms::KmsSetup::start_with(caller_card).context("KMS set-up")?;
    let caller = setup.caller_keying().context("caller KMS keying")?;
    let callee = setup.callee_keying().context("callee KMS keying")?;
    Ok(Keying { caller, callee, kms: Some(KmsRun(setup)) })
}
// -------------------------------------------------------------------------------------------------

fn media_json(impu: &str, m: &MediaReport) -> Value {
    json!({
        "impu": impu,
        "packets_sent": m.packets_sent,
        "packets_received": m.packets_received,
        "packets_decrypted": m.packets_decrypted,
        "packets_failed": m.packets_failed,
        "media_sha256": m.media_sha256,
        "sent_sha256": m.sent_sha256,
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub fn run(args: CallArgs) -> Result<ExitCode> {
    let card_options = args.card_options();
    if args.security != Security::Kms && !card_options.is_empty() {
        eprintln!(
            "keysim call: {} only apply to --security kms (SDES keying uses no card)",
            card_options.join(", ")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let caller_profile = match args.security {
        Security::Kms => match &args.profile {
            Some(p) => CardProfile::load(p).with_context(|| format!("--profile {}", p.display()))?,
            None => CardProfile::default(),
        },
        _ => CardProfile::default(),
    };
    let keying = match args.security {
        Security::SdesE2e => Keying {
            caller: Box::new(SdesKeying::new(SdesScope::E2e)),
            callee: Box::new(SdesKeying::new(SdesScope::E2e)),
            kms: None,
        },
        Security::SdesE2ae => Keying {
            caller: Box::new(SdesKeying::new(SdesScope::E2ae)),
            callee: Box::new(SdesKeying::new(SdesScope::E2ae)),
            kms: None,
        },
        Security::Kms => kms_keying(super::call_kms::CallerCard {
            profile: caller_profile.clone(),
            reader: args.reader.as_deref(),
            trace: &args.trace,
        })?,
    };
    let caller_impu =
        caller_profile.impu().first().cloned().ok_or_else(|| anyhow!("the caller's profile has no IMPU"))?;
    let callee_impu = CardProfile::callee()
        .impu()
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the built-in callee profile has no IMPU"))?;
    let Keying { mut caller, mut callee, kms } = keying;
    let core = ImsCore::start(ImsCoreConfig::new(&[&caller_impu, &callee_impu])).context("IMS core")?;
    let result = call(&core, &caller_impu, &callee_impu, caller.as_mut(), callee.as_mut(), args.packets);
    let agw = match (&result, args.security) {
        (Ok(r), Security::SdesE2ae) => core.agw_session(&r.call_id).map(|s| {
            json!({
                "leg_a": s.leg_a.map(|a| a.to_string()),
                "leg_b": s.leg_b.map(|a| a.to_string()),
                "a_to_b": {"received": s.a_to_b.received, "decrypted": s.a_to_b.decrypted,
                           "failed": s.a_to_b.failed, "forwarded": s.a_to_b.forwarded,
                           "plaintext_sha256": s.a_to_b.plaintext_sha256},
                "b_to_a": {"received": s.b_to_a.received, "decrypted": s.b_to_a.decrypted,
                           "failed": s.b_to_a.failed, "forwarded": s.b_to_a.forwarded,
                           "plaintext_sha256": s.b_to_a.plaintext_sha256},
            })
        }),
        _ => None,
    };
    let stats = core.stats();
    let kms_report = kms.as_ref().map(KmsRun::report);
    let _ = core.shutdown();
    if let Some(k) = kms {
        k.shutdown();
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    json!({"security": args.security.name(), "ok": false, "error": format!("{e:#}")})
                );
            }
            eprintln!("keysim call: the call failed: {e:#}");
            return Ok(ExitCode::from(EXIT_MEDIA));
        }
    };
    let media_match = r.caller_media.media_sha256 == r.callee_media.sent_sha256
        && r.callee_media.media_sha256 == r.caller_media.sent_sha256;
    let n = u64::from(args.packets);
    let complete = |m: &MediaReport| m.packets_decrypted == n && m.packets_failed == 0 && m.packets_sent == n;
    let agw_ok = args.security != Security::SdesE2ae
        || agw.as_ref().is_some_and(|a| {
            a["a_to_b"]["plaintext_sha256"] == json!(r.caller_media.sent_sha256)
                && a["b_to_a"]["plaintext_sha256"] == json!(r.callee_media.sent_sha256)
        });
    let ok = media_match && complete(&r.caller_media) && complete(&r.callee_media) && agw_ok;
    let out = json!({
        "security": args.security.name(),
        "ok": ok,
        "caller": media_json(&caller_impu, &r.caller_media),
        "callee": media_json(&callee_impu, &r.callee_media),
        "agw": agw,
        "kms": kms_report,
        "signalling": {
            "register_ms": r.register_ms,
            "invite_ms": r.invite_ms,
            "network_e2ae": r.network_e2ae,
            "e2ae_offers": stats.e2ae_offers,
            "e2e_offers": stats.e2e_offers,
            "requests": stats.requests,
            "responses": stats.responses,
        },
        "media_match": media_match,
    });
    crate::report::run_summary(&out);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("call {} → {} ({}), {} packets each way", caller_impu, callee_impu, args.security.name(), n);
        println!("  INVITE → 200: {:.1} ms; network e2ae indication: {}", r.invite_ms, r.network_e2ae);
        for (who, m) in [("caller", &r.caller_media), ("callee", &r.callee_media)] {
            println!(
                "  {who}: sent {}, received {}, decrypted {}, failed {}; media SHA-256 {}",
                m.packets_sent, m.packets_received, m.packets_decrypted, m.packets_failed, m.media_sha256
            );
        }
        if let Some(a) = &agw {
            println!(
                "  IMS-AGW: A→B decrypted {} (plaintext {}), B→A decrypted {} (plaintext {})",
                a["a_to_b"]["decrypted"],
                a["a_to_b"]["plaintext_sha256"],
                a["b_to_a"]["decrypted"],
                a["b_to_a"]["plaintext_sha256"]
            );
        }
        println!("  media match: {media_match}; {}", if ok { "OK" } else { "FAILED" });
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(EXIT_MEDIA) })
}

struct CallResult {
    call_id: String,
    caller_media: MediaReport,
    callee_media: MediaReport,
    register_ms: f64,
    invite_ms: f64,
    network_e2ae: bool,
}

fn call(
    core: &ImsCore,
    caller_impu: &str,
    callee_impu: &str,
    caller_keying: &mut (dyn MediaKeying + Send),
    callee_keying: &mut (dyn MediaKeying + Send),
    packets: u32,
) -> Result<CallResult> {
    let mut a = ImsUe::new(ImsUeConfig::new(core.addr(), caller_impu)).context("caller UE")?;
    let mut b = ImsUe::new(ImsUeConfig::new(core.addr(), callee_impu)).context("callee UE")?;
    let started = std::time::Instant::now();
    let reg = a.register().context("caller REGISTER")?;
    b.register().context("callee REGISTER")?;
    let register_ms = ms(started.elapsed()) / 2.0;
    let run = me::run_call(&mut a, &mut b, caller_keying, callee_keying, packets, SEEDS);
    let (caller_call, caller_media) = run.caller.context("caller")?;
    let (_, callee_media) = run.callee.context("callee")?;
    Ok(CallResult {
        call_id: caller_call.parties.call_id.clone(),
        caller_media,
        callee_media,
        register_ms,
        invite_ms: ms(caller_call.setup_time),
        network_e2ae: reg.network_e2ae,
    })
}
