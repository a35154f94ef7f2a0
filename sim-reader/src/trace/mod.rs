//! APDU traces of any [`Reader`]: decoded text, GSMTAP over UDP (osmocom SIMtrace format) and pcap
//! files that Wireshark decodes as GSM SIM, through the [`Traced`] decorator.

pub mod decode;
pub mod gsmtap;
pub mod pcap;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use apdu::Response;

pub use decode::{Decoded, Decoder};

use crate::session::RawExchange;
use crate::{Error, Protocol, Reader, Result};

/// What happened at the reader.
#[derive(Debug, Clone, Copy)]
pub enum TraceEvent<'a> {
    /// The card was powered on and answered with this ATR.
    PowerOn {
        /// Answer-to-reset.
        atr: &'a [u8],
    },
    /// The card was reset and answered with this ATR.
    Reset {
        /// Answer-to-reset.
        atr: &'a [u8],
    },
    /// The card was powered off.
    PowerOff,
    /// One command and the card's raw response (data‖SW).
    Exchange {
        /// Command APDU.
        command: &'a [u8],
        /// Response APDU.
        response: &'a [u8],
    },
    /// The reader failed to carry a command.
    Failed {
        /// Command APDU.
        command: &'a [u8],
        /// The error.
        error: &'a str,
    },
}

/// One trace record.
#[derive(Debug, Clone, Copy)]
pub struct TraceRecord<'a> {
    /// When it happened.
    pub time: SystemTime,
    /// The reader's name.
    pub reader: &'a str,
    /// What happened.
    pub event: TraceEvent<'a>,
}

/// Somewhere trace records go.
pub trait TraceSink: Send {
    /// Take one record.
    fn record(&mut self, record: &TraceRecord<'_>) -> std::io::Result<()>;
    /// Push buffered output out.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decoded text, one block per exchange.
pub struct TextTrace<W: Write + Send> {
    out: W,
    decoder: Decoder,
    count: u64,
}

impl<W: Write + Send> TextTrace<W> {
    /// A text trace written to `out` (e.g. `std::io::stderr()` or a file).
    pub fn new(out: W) -> Self {
        TextTrace { out, decoder: Decoder::new(), count: 0 }
    }

    /// Give the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> TraceSink for TextTrace<W> {
    fn record(&mut self, record: &TraceRecord<'_>) -> std::io::Result<()> {
        let text = match record.event {
            TraceEvent::PowerOn { atr } => format!("-- power on, ATR {}\n", hex::encode(atr)),
            TraceEvent::Reset { atr } => format!("-- reset, ATR {}\n", hex::encode(atr)),
            TraceEvent::PowerOff => "-- power off\n".to_owned(),
            TraceEvent::Failed { command, error } => format!("!! {} failed: {error}\n", hex::encode(command)),
            TraceEvent::Exchange { command, response } => {
                self.count += 1;
                let decoded = self.decoder.decode(command, response);
                format_exchange(self.count, &decoded, command, response)
            }
        };
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The text block of one exchange:
///
/// ```text
/// #1 SELECT select by file ID, no data returned: 3F00 = MF
///    > 00a4000c 02 3f00
///    < 9000: normal ending of the command
/// ```
pub fn format_exchange(number: u64, decoded: &Decoded, command: &[u8], response: &[u8]) -> String {
    let mut s = format!("#{number} {} {}\n   > {}\n", decoded.name, decoded.detail, split_command(command));
    match Response::parse(response) {
        Ok(r) => {
            if !r.data.is_empty() {
                s.push_str(&format!("   < {}\n", hex::encode(r.data)));
                if let Some(what) = &decoded.response {
                    s.push_str(&format!("     ({what})\n"));
                }
            }
            s.push_str(&format!("   < {}\n", r.status));
        }
        Err(_) => s.push_str(&format!("   < {} (no status word)\n", hex::encode(response))),
    }
    s
}

/// A command as `header Lc data Le`, for reading.
fn split_command(command: &[u8]) -> String {
    match apdu::Command::parse(command) {
        Ok(c) if !c.extended && command.len() >= 4 => {
            let mut parts = vec![hex::encode(&command[..4])];
            if !c.data.is_empty() {
                parts.push(format!("{:02x}", c.data.len()));
                parts.push(hex::encode(c.data));
            }
            if let Some(ne) = c.ne {
                parts.push(format!("{:02x}", ne % 256));
            }
            parts.join(" ")
        }
        _ => hex::encode(command),
    }
}

/// GSMTAP datagrams to a UDP destination.
pub struct GsmtapSink(gsmtap::GsmtapSender);

impl GsmtapSink {
    /// Send to `target` (e.g. `127.0.0.1:4729`).
    pub fn new(target: SocketAddr) -> Result<Self> {
        Ok(GsmtapSink(gsmtap::GsmtapSender::new(target)?))
    }
}

impl TraceSink for GsmtapSink {
    fn record(&mut self, record: &TraceRecord<'_>) -> std::io::Result<()> {
        match record.event {
            TraceEvent::Exchange { command, response } => self.0.send(command, response),
            _ => Ok(()),
        }
    }
}

/// The address pcap frames are written with: GSMTAP on loopback, port 4729 both ways.
pub const PCAP_ENDPOINT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, gsmtap::GSMTAP_PORT);

/// GSMTAP datagrams written into a pcap file, as if captured on loopback.
pub struct PcapSink<W: Write + Send> {
    writer: pcap::PcapWriter<W>,
}

impl PcapSink<BufWriter<File>> {
    /// Create (or truncate) a pcap file.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(Error::Trace)?;
        Self::new(BufWriter::new(file)).map_err(Error::Trace)
    }
}

impl<W: Write + Send> PcapSink<W> {
    /// A pcap stream on any writer.
    pub fn new(out: W) -> std::io::Result<Self> {
        Ok(PcapSink { writer: pcap::PcapWriter::new(out)? })
    }

    /// Give the writer back.
    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }
}

impl<W: Write + Send> TraceSink for PcapSink<W> {
    fn record(&mut self, record: &TraceRecord<'_>) -> std::io::Result<()> {
        match record.event {
            TraceEvent::Exchange { command, response } => {
                let datagram = gsmtap::datagram(command, response);
                self.writer.write_udp(record.time, PCAP_ENDPOINT, PCAP_ENDPOINT, &datagram)?;
                self.writer.flush()
            }
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Raw exchanges kept in memory; clones share the same log (keep one, give one to [`Traced`]).
#[derive(Clone, Default)]
pub struct MemoryTrace {
    log: Arc<Mutex<Vec<RawExchange>>>,
}

impl MemoryTrace {
    /// An empty log.
    pub fn new() -> Self {
        MemoryTrace::default()
    }

    /// A copy of every exchange recorded so far.
    pub fn exchanges(&self) -> Vec<RawExchange> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forget what was recorded.
    pub fn clear(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
    }
}

impl TraceSink for MemoryTrace {
    fn record(&mut self, record: &TraceRecord<'_>) -> std::io::Result<()> {
        if let TraceEvent::Exchange { command, response } = record.event
            && let Ok(mut l) = self.log.lock()
        {
            l.push(RawExchange { command: command.to_vec(), response: response.to_vec() });
        }
        Ok(())
    }
}

/// A reader whose every power event and raw exchange goes to trace sinks. A sink that fails is
/// reported once (through `tracing`) and dropped; the card keeps working. Sinks write each record
/// through, so nothing waits in a buffer when the reader is dropped.
pub struct Traced<R> {
    inner: R,
    sinks: Vec<Box<dyn TraceSink>>,
}

impl<R: Reader> Traced<R> {
    /// `inner` with no sinks yet.
    pub fn new(inner: R) -> Self {
        Traced { inner, sinks: Vec::new() }
    }

    /// Add a sink.
    pub fn with_sink(mut self, sink: impl TraceSink + 'static) -> Self {
        self.add_sink(sink);
        self
    }

    /// Add a sink.
    pub fn add_sink(&mut self, sink: impl TraceSink + 'static) {
        self.sinks.push(Box::new(sink));
    }

    /// The traced reader.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The traced reader, mutably (calls through it are not traced).
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Flush every sink and give the reader back.
    pub fn into_inner(mut self) -> R {
        self.flush();
        self.inner
    }

    /// Flush every sink.
    pub fn flush(&mut self) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                tracing::warn!(error = %e, "flushing an APDU trace failed");
            }
        }
    }

    fn emit(&mut self, event: TraceEvent<'_>) {
        let record = TraceRecord { time: SystemTime::now(), reader: self.inner.name(), event };
        self.sinks.retain_mut(|sink| match sink.record(&record) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "an APDU trace output failed; it is closed");
                false
            }
        });
    }
}

impl<R: Reader> Reader for Traced<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    fn power_on(&mut self) -> Result<Vec<u8>> {
        let atr = self.inner.power_on()?;
        self.emit(TraceEvent::PowerOn { atr: &atr });
        Ok(atr)
    }

    fn reset(&mut self) -> Result<Vec<u8>> {
        let atr = self.inner.reset()?;
        self.emit(TraceEvent::Reset { atr: &atr });
        Ok(atr)
    }

    fn power_off(&mut self) -> Result<()> {
        self.inner.power_off()?;
        self.emit(TraceEvent::PowerOff);
        Ok(())
    }

    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        match self.inner.transmit(command) {
            Ok(response) => {
                self.emit(TraceEvent::Exchange { command, response: &response });
                Ok(response)
            }
            Err(e) => {
                let text = e.to_string();
                self.emit(TraceEvent::Failed { command, error: &text });
                Err(e)
            }
        }
    }
}
