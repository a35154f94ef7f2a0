//! Card commands: `apdu`, `readers`, `vpcd`, `profile show`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sim_reader::trace::{GsmtapSink, PcapSink, TextTrace, gsmtap};
use sim_reader::{CardProfile, Emulator, PcscReader, Protocol, Reader, ReaderSelector, Session, Traced};

use crate::cli::{ApduArgs, CardArgs, TraceArgs, VpcdArgs};

pub(crate) fn load_profile(path: Option<&Path>) -> Result<CardProfile> {
    Ok(match path {
        Some(p) => CardProfile::load(p)?,
        None => CardProfile::default(),
    })
}

pub fn profile_show(path: Option<&Path>, json: bool) -> Result<ExitCode> {
    let profile = load_profile(path)?;
    let text = if json { profile.to_json() } else { profile.to_toml() };
    println!("{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn emulator(card: &CardArgs) -> Result<Emulator> {
    let profile = load_profile(card.profile.as_deref())?;
    let protocol = if card.protocol == "t0" { Protocol::T0 } else { Protocol::T1 };
    let emulator = Emulator::open(&profile, card.card_state.as_deref())
        .with_context(|| "starting the emulated card")?
        .with_protocol(protocol);
    Ok(emulator)
}

/// The card of a run and its name for reports: the one in PC/SC reader `reader` (by index or a
/// substring of its name), or the emulated one of `card`.
pub(crate) fn open_card(reader: Option<&str>, card: &CardArgs) -> Result<(Box<dyn Reader>, String)> {
    Ok(match reader {
        Some(name) => {
            let selector: ReaderSelector = name.parse().unwrap_or(ReaderSelector::Name(name.to_owned()));
            let r = PcscReader::open(&selector).with_context(|| format!("opening reader {name}"))?;
            let n = r.reader_name().to_string_lossy().into_owned();
            (Box::new(r), format!("PC/SC reader {n}"))
        }
        None => {
            let name = match &card.profile {
                Some(p) => format!("emulated card ({})", p.display()),
                None => "emulated card (built-in profile)".into(),
            };
            (Box::new(emulator(card)?), name)
        }
    })
}

/// Wrap a reader with the trace sinks asked for.
pub(crate) fn traced<R: Reader>(reader: R, trace: &TraceArgs) -> Result<Traced<R>> {
    let mut traced = Traced::new(reader);
    if trace.trace {
        traced.add_sink(TextTrace::new(std::io::stderr()));
    }
    if let Some(target) = &trace.gsmtap {
        let addr = gsmtap::parse_target(target)?;
        traced.add_sink(GsmtapSink::new(addr)?);
    }
    if let Some(path) = &trace.pcap {
        traced.add_sink(PcapSink::create(path)?);
    }
    Ok(traced)
}

#[derive(Serialize)]
struct JsonExchange {
    command: String,
    response: String,
    sw: String,
}

pub fn apdu(args: ApduArgs) -> Result<ExitCode> {
    // Check every argument before touching the card, so a typo sends nothing.
    let mut commands = Vec::with_capacity(args.apdus.len());
    for (i, text) in args.apdus.iter().enumerate() {
        let bytes = sim_reader::parse_hex(text).with_context(|| format!("APDU #{} '{text}'", i + 1))?;
        apdu::Command::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("APDU #{} '{text}' is not a command APDU: {e}", i + 1))?;
        commands.push(bytes);
    }
    let reader: Box<dyn Reader> = match &args.reader {
        Some(name) => {
            let selector: ReaderSelector = name.parse().unwrap_or(ReaderSelector::Name(name.clone()));
            Box::new(PcscReader::open(&selector)?)
        }
        None => Box::new(emulator(&args.card)?),
    };
    let mut session = Session::new(traced(reader, &args.trace)?);
    let atr = session.reader_mut().power_on()?;
    let mut results = Vec::with_capacity(commands.len());
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "ATR {}", hex::encode_upper(&atr))?;
    }
    let mut decoder = sim_reader::trace::Decoder::new();
    for command in &commands {
        let exchange = session.transmit_apdu(command)?;
        if args.json {
            results.push(JsonExchange {
                command: hex::encode_upper(command),
                response: hex::encode_upper(&exchange.data),
                sw: format!("{:04X}", exchange.sw()),
            });
        } else {
            let decoded = decoder.decode(command, &exchange.to_bytes());
            writeln!(out, "> {}  {} {}", hex::encode_upper(command), decoded.name, decoded.detail)?;
            if !exchange.data.is_empty() {
                writeln!(out, "< {}", hex::encode_upper(&exchange.data))?;
            }
            if let Some(meaning) = &decoded.response {
                writeln!(out, "  {meaning}")?;
            }
            writeln!(out, "< {}", exchange.status)?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &results)?;
        writeln!(out)?;
    }
    session.reader_mut().power_off()?;
    session.reader_mut().flush();
    Ok(ExitCode::SUCCESS)
}

pub fn readers() -> Result<ExitCode> {
    let list = sim_reader::list_readers()?;
    if list.is_empty() {
        println!("no PC/SC readers");
    }
    for r in list {
        match (&r.card_present, &r.atr) {
            (true, Some(atr)) => println!("{}: {} (card: ATR {})", r.index, r.name, hex::encode_upper(atr)),
            (true, None) => println!("{}: {} (card present)", r.index, r.name),
            _ => println!("{}: {} (no card)", r.index, r.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn vpcd(args: VpcdArgs) -> Result<ExitCode> {
    let addr = sim_reader::vpcd::resolve(&format!("{}:{}", args.host, args.port))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving the card to a non-loopback vpcd address");
    }
    let mut card = traced(emulator(&args.card)?, &args.trace)?;
    let options = sim_reader::vpcd::ServeOptions {
        stop: Arc::new(AtomicBool::new(false)),
        max_duration: match args.duration {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => bail!("--duration must be a positive number of seconds, not {s}"),
            None => None,
        },
        ..Default::default()
    };
    eprintln!("keysim: serving the emulated card to vpcd at {addr}");
    let stats = sim_reader::vpcd::serve(&mut card, addr, &options)?;
    card.flush();
    eprintln!(
        "keysim: vpcd served {} APDUs over {} connection(s) ({} dropped for bad frames)",
        stats.apdus, stats.connections, stats.bad_connections
    );
    Ok(ExitCode::SUCCESS)
}
