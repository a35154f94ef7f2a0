//! Any [`Reader`] offered to pcscd as a virtual card, over vsmartcard's vpcd protocol (the
//! `vsmartcard-vpcd` IFD handler, reader "Virtual PCD 00 00" on TCP 35963).
//!
//! The card side is the TCP client. Every message is a 2-byte big-endian length and a payload. A
//! 1-byte payload is a control message (0 power off, 1 power on, 2 reset, 4 get ATR, answered with
//! the ATR); a longer one is a command APDU, answered with the response APDU. `TCP_QUICKACK` is
//! set before every read: vpcd writes the length and the body separately, and without it the
//! delayed ACK meets Nagle's algorithm on pcscd's side and each APDU costs about 45 ms.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{Error, Reader, Result};

/// The TCP port of the first vpcd slot ("Virtual PCD 00 00"; `/etc/reader.conf.d/vpcd`, 0x8C7B).
pub const DEFAULT_PORT: u16 = 35963;

/// Where pcscd's vpcd driver listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:35963";

/// Control message: power the card off.
pub const CTRL_POWER_OFF: u8 = 0;
/// Control message: power the card on.
pub const CTRL_POWER_ON: u8 = 1;
/// Control message: reset the card.
pub const CTRL_RESET: u8 = 2;
/// Control message: send the ATR.
pub const CTRL_GET_ATR: u8 = 4;

/// The largest payload a frame can carry: its length field has 16 bits. (The largest extended
/// APDU, 65544 bytes, does not fit; vpcd cannot carry it either.)
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Status word sent when the reader behind the server fails: technical problem, no precise diagnosis.
const SW_TECHNICAL_PROBLEM: [u8; 2] = [0x6F, 0x00];

/// How long a frame may take to arrive once its first byte has: a peer that stalls inside a frame
/// longer than this is dropped (pcscd writes a frame in two back-to-back writes).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection must last to count as working: one that ends sooner is followed by a
/// growing wait before the next connection (so a peer that accepts and drops at once, or never
/// reads, is not reconnected to in a tight loop).
const HEALTHY_CONNECTION: Duration = Duration::from_secs(2);

/// How the server runs and when it stops.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Set to `true` (from any thread) to stop the server; it returns within `poll_interval`.
    pub stop: Arc<AtomicBool>,
    /// Stop after this long.
    pub max_duration: Option<Duration>,
    /// Connect again when pcscd closes the connection, sends garbage or is not up yet.
    pub reconnect: bool,
    /// First wait before connecting again; doubled after each failed attempt.
    pub backoff_min: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// How often a blocked read looks at `stop` and `max_duration`.
    pub poll_interval: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            stop: Arc::new(AtomicBool::new(false)),
            max_duration: None,
            reconnect: true,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// What a server did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Connections made to vpcd.
    pub connections: u64,
    /// Command APDUs answered.
    pub apdus: u64,
    /// Control messages handled.
    pub controls: u64,
    /// Connections dropped because of a bad frame or a peer gone mid-frame.
    pub bad_connections: u64,
    /// APDUs answered `6F 00` because the reader failed (for example a card powered off).
    pub reader_failures: u64,
}

/// What one connection remembers between frames.
#[derive(Default)]
struct Connection {
    /// The ATR of the card as powered on in this connection.
    atr: Option<Vec<u8>>,
    /// Whether a reader failure was logged already.
    reader_failure_logged: bool,
}

/// Why one connection ended.
#[derive(Debug)]
enum End {
    Stopped,
    PeerClosed,
    BadFrame(&'static str),
    Io(std::io::Error),
}

/// Resolve `host:port` (the port defaults to [`DEFAULT_PORT`]).
pub fn resolve(addr: &str) -> Result<SocketAddr> {
    let with_port =
        if addr.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !addr.ends_with(']') {
            addr.to_owned()
        } else {
            format!("{addr}:{DEFAULT_PORT}")
        };
    with_port
        .to_socket_addrs()
        .map_err(|source| Error::Io { context: format!("resolving vpcd address '{addr}'"), source })?
        .next()
        .ok_or_else(|| Error::Io {
            context: format!("resolving vpcd address '{addr}'"),
            source: std::io::Error::new(ErrorKind::NotFound, "no address"),
        })
}

/// Serve `card` to the vpcd driver at `addr` until `options` say stop. Power, reset and ATR
/// requests go to the reader's `power_on`, `reset` and `power_off`; APDUs to `transmit` (a failing
/// reader is answered `6F 00`). A connection that breaks, closes, or carries a zero-length frame is
/// dropped and made again after a short backoff (pcscd restarts); the card is powered off in
/// between. Returns what was done; an error only when `reconnect` is off and the first connection
/// cannot be made.
pub fn serve<R: Reader + ?Sized>(
    card: &mut R,
    addr: SocketAddr,
    options: &ServeOptions,
) -> Result<ServeStats> {
    let deadline = options.max_duration.map(|d| Instant::now() + d);
    let stopped = || options.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
    let mut stats = ServeStats::default();
    let mut backoff = options.backoff_min;
    let mut payload = vec![0u8; MAX_FRAME];
    while !stopped() {
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(source) if !options.reconnect => {
                return Err(Error::Io { context: format!("connecting to vpcd at {addr}"), source });
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, ?backoff, "vpcd not reachable; retrying");
                sleep_unless(backoff, &stopped);
                backoff = (backoff * 2).min(options.backoff_max);
                continue;
            }
        };
        stats.connections += 1;
        tracing::info!(%addr, reader = card.name(), "connected to vpcd");
        let started = Instant::now();
        let failures_before = stats.reader_failures;
        let end = run_connection(card, stream, &mut payload, &mut stats, options.poll_interval, &stopped);
        let failures = stats.reader_failures - failures_before;
        if failures > 1 {
            tracing::warn!(
                count = failures,
                "APDUs of this connection were answered 6F00 (the first is logged above)"
            );
        }
        match &end {
            End::Stopped => tracing::info!("vpcd server stopping"),
            End::PeerClosed => tracing::info!("vpcd closed the connection"),
            End::BadFrame(why) => {
                stats.bad_connections += 1;
                tracing::warn!(reason = why, "dropping the vpcd connection");
            }
            End::Io(e) => {
                stats.bad_connections += 1;
                tracing::warn!(error = %e, "vpcd connection failed");
            }
        }
        if let Err(e) = card.power_off() {
            tracing::warn!(error = %e, "powering the card off failed");
        }
        if matches!(end, End::Stopped) || !options.reconnect {
            break;
        }
        // A connection that worked for a while is followed by the shortest wait; one that failed
        // at once by a wait that grows, as for a failed connect.
        let healthy =
            started.elapsed() >= HEALTHY_CONNECTION && !matches!(end, End::BadFrame(_) | End::Io(_));
        backoff = if healthy { options.backoff_min } else { (backoff * 2).min(options.backoff_max) };
        sleep_unless(backoff, &stopped);
    }
    Ok(stats)
}

fn run_connection<R: Reader + ?Sized>(
    card: &mut R,
    mut stream: TcpStream,
    payload: &mut [u8],
    stats: &mut ServeStats,
    poll: Duration,
    stopped: &dyn Fn() -> bool,
) -> End {
    if let Err(e) = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(poll)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
    {
        return End::Io(e);
    }
    let mut conn = Connection::default();
    loop {
        let mut header = [0u8; 2];
        match read_full(&mut stream, &mut header, stopped, None) {
            Ok(Filled::All) => {}
            Ok(Filled::Nothing) => return End::PeerClosed,
            Ok(Filled::Part) => return End::BadFrame("peer closed inside a length field"),
            Ok(Filled::Stalled) => return End::BadFrame("peer stalled inside a length field"),
            Ok(Filled::Stopped) => return End::Stopped,
            Err(e) => return End::Io(e),
        }
        let len = usize::from(u16::from_be_bytes(header));
        if len == 0 {
            return End::BadFrame("zero-length frame");
        }
        let Some(body) = payload.get_mut(..len) else {
            return End::BadFrame("frame longer than the buffer");
        };
        match read_full(&mut stream, body, stopped, Some(Instant::now())) {
            Ok(Filled::All) => {}
            Ok(Filled::Nothing | Filled::Part) => return End::BadFrame("peer closed inside a frame"),
            Ok(Filled::Stalled) => return End::BadFrame("peer stalled inside a frame"),
            Ok(Filled::Stopped) => return End::Stopped,
            Err(e) => return End::Io(e),
        }
        let Some(reply) = answer_frame(card, body, &mut conn, stats) else { continue };
        if let Err(e) = send_frame(&mut stream, &reply) {
            return End::Io(e);
        }
    }
}

/// The answer to one frame's payload (a control message or a command APDU), if it has one.
fn answer_frame<R: Reader + ?Sized>(
    card: &mut R,
    body: &[u8],
    conn: &mut Connection,
    stats: &mut ServeStats,
) -> Option<Vec<u8>> {
    if let [control] = *body {
        stats.controls += 1;
        return control_message(card, control, &mut conn.atr);
    }
    stats.apdus += 1;
    Some(match card.transmit(body) {
        Ok(r) if r.len() >= 2 && r.len() <= MAX_FRAME => r,
        Ok(r) => {
            tracing::warn!(len = r.len(), "the card's response cannot be framed; answering 6F00");
            SW_TECHNICAL_PROBLEM.to_vec()
        }
        Err(e) => {
            // Logged once per connection: a peer that keeps sending (to a card it never powered
            // on, say) would otherwise get a log line per APDU; serve() reports the count.
            stats.reader_failures += 1;
            if !conn.reader_failure_logged {
                tracing::warn!(error = %e, "the reader failed; answering 6F00");
                conn.reader_failure_logged = true;
            }
            SW_TECHNICAL_PROBLEM.to_vec()
        }
    })
}

/// Answers the frames of a byte stream from vpcd the way [`serve`] answers them over TCP, writing
/// the answer frames (length and payload) to `replies`. `Err` says why the stream was refused: a
/// zero-length frame, or a stream that ends inside a length field or a frame. The entry point of
/// the fuzz target `vpcd_frames`; not a stable API.
#[doc(hidden)]
pub fn answer_frames<R: Reader + ?Sized>(
    card: &mut R,
    mut stream: &[u8],
    replies: &mut Vec<u8>,
) -> std::result::Result<ServeStats, &'static str> {
    let mut stats = ServeStats::default();
    let mut conn = Connection::default();
    while !stream.is_empty() {
        let [hi, lo, rest @ ..] = stream else { return Err("peer closed inside a length field") };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            return Err("zero-length frame");
        }
        let (body, rest) = rest.split_at_checked(len).ok_or("peer closed inside a frame")?;
        stream = rest;
        if let Some(reply) = answer_frame(card, body, &mut conn, &mut stats) {
            let len = u16::try_from(reply.len()).map_err(|_| "frame too long")?;
            replies.extend_from_slice(&len.to_be_bytes());
            replies.extend_from_slice(&reply);
        }
    }
    Ok(stats)
}

/// Handle a control message; return the frame to answer with, if any.
fn control_message<R: Reader + ?Sized>(
    card: &mut R,
    control: u8,
    atr: &mut Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let log = |what: &str, r: Result<()>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "{what} failed");
        }
    };
    match control {
        CTRL_POWER_OFF => {
            *atr = None;
            log("power off", card.power_off());
            None
        }
        CTRL_POWER_ON => {
            log("power on", card.power_on().map(|a| *atr = Some(a)));
            None
        }
        CTRL_RESET => {
            log("reset", card.reset().map(|a| *atr = Some(a)));
            None
        }
        CTRL_GET_ATR => {
            if atr.is_none() {
                log("power on", card.power_on().map(|a| *atr = Some(a)));
            }
            Some(atr.clone().unwrap_or_default())
        }
        other => {
            tracing::warn!(control = other, "unknown vpcd control message ignored");
            None
        }
    }
}

fn send_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too long"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    // One write, so the frame leaves in one segment.
    stream.write_all(&frame)
}

enum Filled {
    All,
    Nothing,
    Part,
    /// The peer sent part of it, then nothing for [`FRAME_TIMEOUT`].
    Stalled,
    Stopped,
}

/// Fill `buf` from the stream, waiting across read timeouts (to look at `stopped`) without losing
/// the bytes already read. A frame in progress (`started`, or once a first byte came) must be
/// complete within [`FRAME_TIMEOUT`]; before that, it waits as long as it takes.
fn read_full(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stopped: &dyn Fn() -> bool,
    started: Option<Instant>,
) -> std::io::Result<Filled> {
    let mut at = 0;
    let mut first_byte = started;
    while at < buf.len() {
        set_quickack(stream);
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Ok(if at == 0 { Filled::Nothing } else { Filled::Part }),
            Ok(n) => {
                at += n;
                first_byte.get_or_insert_with(Instant::now);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if stopped() {
                    return Ok(Filled::Stopped);
                }
                if first_byte.is_some_and(|t| t.elapsed() >= FRAME_TIMEOUT) {
                    return Ok(Filled::Stalled);
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Ok(if at == 0 { Filled::Nothing } else { Filled::Part });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Filled::All)
}

/// Ask the kernel to acknowledge the next segment at once (Linux `TCP_QUICKACK`, tcp(7)). The flag
/// is not sticky, so it is set again before every read.
#[allow(unsafe_code)]
fn set_quickack(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: the descriptor is open for the lifetime of `stream`, and the option value is a
        // valid c_int of the length passed.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::trace!(error = %std::io::Error::last_os_error(), "TCP_QUICKACK not set");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

fn sleep_unless(total: Duration, stopped: &dyn Fn() -> bool) {
    let end = Instant::now() + total;
    while !stopped() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_adds_the_default_port() {
        assert_eq!(resolve("127.0.0.1").unwrap(), "127.0.0.1:35963".parse().unwrap());
        assert_eq!(resolve("127.0.0.1:35964").unwrap(), "127.0.0.1:35964".parse().unwrap());
        assert_eq!(resolve("[::1]").unwrap(), "[::1]:35963".parse().unwrap());
        assert_eq!(resolve("[::1]:4000").unwrap(), "[::1]:4000".parse().unwrap());
        assert_eq!(resolve("localhost:1").unwrap().port(), 1);
    }

    /// The in-memory framing answers as the TCP server does: GET ATR with the ATR, power on with
    /// nothing, an APDU with its response; a zero-length or unfinished frame ends the stream.
    #[test]
    fn answer_frames_frames_the_answers() {
        let mut card = crate::Emulator::new(&crate::CardProfile::default()).unwrap();
        let atr = card.atr().to_vec();
        let stream =
            [&[0, 1, CTRL_POWER_ON][..], &[0, 1, CTRL_GET_ATR], &[0, 5, 0x00, 0xA4, 0x00, 0x0C, 0x00]]
                .concat();
        let mut replies = Vec::new();
        let stats = answer_frames(&mut card, &stream, &mut replies).unwrap();
        assert_eq!((stats.controls, stats.apdus), (2, 1));
        let mut expected = vec![0, atr.len() as u8];
        expected.extend(&atr);
        assert_eq!(&replies[..expected.len()], &expected[..]);
        assert_eq!(replies.len(), expected.len() + 4, "one 2-byte status word frame");
        for (bad, why) in [
            (&[0, 0][..], "zero-length frame"),
            (&[0], "peer closed inside a length field"),
            (&[0, 3, 0x00], "peer closed inside a frame"),
        ] {
            assert_eq!(answer_frames(&mut card, bad, &mut Vec::new()).unwrap_err(), why);
        }
    }
}
