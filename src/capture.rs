//! `--capture FILE.pcapng`: every packet a run's parts exchange, as Wireshark sees it on the wire.
//!
//! The run moves into a network namespace of its own before it starts anything: its loopback then
//! carries exactly the run's traffic (HTTP of Ub, Zn, the BM-SC and the KMS, SIP/SDP, MIKEY,
//! RTP/SRTP, and the card's APDUs sent as GSMTAP to 127.0.0.1:4729) and nothing else of the
//! machine's. A packet socket on that loopback copies every frame with its real addresses and
//! ports; at the end they are written in arrival order as one pcapng section with one interface
//! (pcapng: draft-ietf-opsawg-pcapng, Section Header, Interface Description and Enhanced Packet
//! blocks).
//!
//! Entering a namespace needs CAP_SYS_ADMIN, or an unprivileged user namespace (the default on
//! Debian); the namespace is entered while the process has a single thread, as `unshare(2)` asks.
//!
//! A standalone program (`keysim serve`, `keysim ue`) talks to peers outside itself, which a
//! namespace would cut off: [`begin_on_host`] instead reads the host's own loopback (a packet
//! socket on `lo`, which needs CAP_NET_RAW) and keeps only the frames to or from the ports the
//! program uses or talks to; the file and the report are written as above.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// Where the APDUs of a captured run go as GSMTAP (the port IANA assigns to GSMTAP, 4729).
pub const GSMTAP_TARGET: &str = "127.0.0.1:4729";
/// GSMTAP's port (IANA "gsmtap" 4729/udp).
pub const GSMTAP_PORT: u16 = 4729;
/// MIKEY's registered port (RFC 3830 §9, IANA "mikey" 2269/udp): MIKEY sent there needs no
/// "Decode As" in Wireshark.
pub const MIKEY_PORT: u16 = 2269;

/// LINKTYPE_ETHERNET: Linux loopback frames carry an Ethernet header of zero addresses.
const LINKTYPE_ETHERNET: u16 = 1;
/// Largest frame kept (loopback MTU is 65536).
const SNAPLEN: usize = 65_536 + 14;

/// A capture running on the run's own loopback, or on the host's for the frames of some ports.
pub struct Capture {
    path: Option<PathBuf>,
    report: Option<(PathBuf, crate::report::RunKind)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<Vec<Frame>>>>,
    /// Keeps 127.0.0.1:4729 bound, so GSMTAP datagrams meet no ICMP "port unreachable" (on the
    /// host's loopback only when the port was free).
    _gsmtap_sink: Option<std::net::UdpSocket>,
    /// The UEs' MIKEY ports, for the report.
    mikey_ports: Vec<u16>,
    /// What the interface block says the frames are.
    description: &'static str,
}

/// Which frames of the host's loopback a standalone program's capture keeps.
pub struct HostPorts {
    /// Frames from or to any of these ports are kept (the program's own and its peers').
    pub ports: Vec<u16>,
    /// The UEs' MIKEY ports among them (MSK pushes and bearer MTK messages go to them).
    pub mikey_ports: Vec<u16>,
}

/// Start a capture on the host's loopback (no namespace: the program's peers run outside it)
/// when `path` or `report` is given, keeping the frames of `ports`; the card's APDUs (when `apdus`
/// is given) go to it as GSMTAP. Needs CAP_NET_RAW.
pub fn begin_on_host(
    path: Option<&Path>,
    report: Option<(&Path, crate::report::RunKind)>,
    ports: HostPorts,
    apdus: Option<&mut crate::cli::TraceArgs>,
) -> Result<Option<Capture>> {
    begin_in(path, report, Some(ports), apdus)
}

/// Points the APDU trace at [`GSMTAP_TARGET`], refusing another `--gsmtap`.
fn set_gsmtap(trace: &mut crate::cli::TraceArgs) -> Result<()> {
    match &trace.gsmtap {
        Some(target) if target != GSMTAP_TARGET => {
            bail!(
                "--capture sends the APDUs as GSMTAP to {GSMTAP_TARGET} inside the run: leave out --gsmtap {target}"
            )
        }
        _ => trace.gsmtap = Some(GSMTAP_TARGET.to_owned()),
    }
    Ok(())
}

/// Start a capture when `path` is given, before anything of the run exists; the card's APDUs
/// (when `apdus` is given) go to it as GSMTAP.
pub fn begin(
    path: Option<&Path>,
    report: Option<(&Path, crate::report::RunKind)>,
    apdus: Option<&mut crate::cli::TraceArgs>,
) -> Result<Option<Capture>> {
    begin_in(path, report, None, apdus)
}

/// A capture in a namespace of the run's own, or with `host` on the host's loopback.
fn begin_in(
    path: Option<&Path>,
    report: Option<(&Path, crate::report::RunKind)>,
    host: Option<HostPorts>,
    apdus: Option<&mut crate::cli::TraceArgs>,
) -> Result<Option<Capture>> {
    if path.is_none() && report.is_none() {
        return Ok(None);
    }
    let gsmtap = apdus.is_some();
    if let Some(trace) = apdus {
        set_gsmtap(trace)?;
    }
    match host {
        None => Capture::start(path, report),
        Some(mut ports) => {
            if gsmtap {
                ports.ports.push(GSMTAP_PORT);
            }
            Capture::start_on_host(path, report, ports)
        }
    }
    .map(Some)
}

/// Finish the capture (if any) after the run, whatever the run's outcome.
pub fn end<T>(capture: Option<Capture>, outcome: Result<T>) -> Result<T> {
    let written = capture.map(Capture::finish).transpose();
    let value = outcome?;
    written?;
    Ok(value)
}

/// One frame and when it was seen (nanoseconds since the Unix epoch).
pub struct Frame {
    /// When the packet socket read it.
    pub time_ns: u64,
    /// The frame from its Ethernet header on.
    pub data: Vec<u8>,
}

impl Capture {
    /// Move the process into a network namespace of its own, bring its loopback up and start
    /// copying its frames. Call it before any thread exists.
    pub fn start(path: Option<&Path>, report: Option<(&Path, crate::report::RunKind)>) -> Result<Capture> {
        create_outputs(path, report)?;
        sys::enter_network_namespace().context("--capture: entering a network namespace of the run's own")?;
        sys::loopback_up().context("--capture: bringing up the namespace's loopback")?;
        let socket =
            sys::PacketSocket::open_loopback().context("--capture: opening a packet socket on lo")?;
        let gsmtap_sink =
            std::net::UdpSocket::bind(GSMTAP_TARGET).context("--capture: binding 127.0.0.1:4729")?;
        let ports = HostPorts { ports: Vec::new(), mikey_ports: vec![MIKEY_PORT] };
        let description = "loopback of the run's network namespace";
        Capture::copying(path, report, socket, None, Some(gsmtap_sink), ports, description)
    }

    /// Start copying the frames of the host's loopback to or from `ports` (no namespace).
    pub fn start_on_host(
        path: Option<&Path>,
        report: Option<(&Path, crate::report::RunKind)>,
        ports: HostPorts,
    ) -> Result<Capture> {
        create_outputs(path, report)?;
        let socket = sys::PacketSocket::open_loopback().map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                anyhow::anyhow!(
                    "--capture/--report read the host's loopback with a packet socket, which needs CAP_NET_RAW: \
                     run as root or give the binary the capability (setcap cap_net_raw+ep keysim) ({e})"
                )
            } else {
                anyhow::Error::new(e).context("--capture: opening a packet socket on lo")
            }
        })?;
        let sink = std::net::UdpSocket::bind(GSMTAP_TARGET).ok();
        let keep = ports.ports.clone();
        let description = "host loopback, frames of the program's ports only";
        Capture::copying(path, report, socket, Some(keep), sink, ports, description)
    }

    fn copying(
        path: Option<&Path>,
        report: Option<(&Path, crate::report::RunKind)>,
        socket: sys::PacketSocket,
        keep: Option<Vec<u16>>,
        gsmtap_sink: Option<std::net::UdpSocket>,
        ports: HostPorts,
        description: &'static str,
    ) -> Result<Capture> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || copy_frames(&socket, &flag, keep.as_deref()))
            .context("--capture: starting the capture thread")?;
        Ok(Capture {
            path: path.map(Path::to_owned),
            report: report.map(|(p, k)| (p.to_owned(), k)),
            stop,
            thread: Some(thread),
            _gsmtap_sink: gsmtap_sink,
            mikey_ports: ports.mikey_ports,
            description,
        })
    }

    /// Stop copying (after every frame already sent is in) and write the file; returns the frame count.
    pub fn finish(mut self) -> Result<usize> {
        self.stop.store(true, Ordering::SeqCst);
        let frames = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(frames)) => frames.context("--capture: reading the packet socket")?,
            _ => bail!("--capture: the capture thread failed"),
        };
        if let Some(path) = &self.path {
            let file = File::create(path).with_context(|| format!("--capture {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write_pcapng(&mut out, &frames, self.description)
                .and_then(|()| out.flush())
                .with_context(|| format!("--capture: writing {}", path.display()))?;
        }
        if let Some((path, kind)) = &self.report {
            let title = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
            crate::report::write(path, &frames, *kind, &format!("keysim {title}"), &self.mikey_ports)?;
        }
        Ok(frames.len())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Fail on an unwritable file now, not after the run.
fn create_outputs(path: Option<&Path>, report: Option<(&Path, crate::report::RunKind)>) -> Result<()> {
    if let Some(path) = path {
        File::create(path).with_context(|| format!("--capture {}", path.display()))?;
    }
    if let Some((path, _)) = report {
        File::create(path).with_context(|| format!("--report {}", path.display()))?;
    }
    Ok(())
}

/// Read frames until told to stop, then drain what is queued (loopback hands a frame to packet
/// sockets while the sender's call is still running, so everything sent before the stop is there).
/// With `keep`, only TCP and UDP frames from or to one of those ports are kept.
fn copy_frames(
    socket: &sys::PacketSocket,
    stop: &AtomicBool,
    keep: Option<&[u16]>,
) -> std::io::Result<Vec<Frame>> {
    let mut frames = Vec::new();
    let mut buf = vec![0u8; SNAPLEN];
    let kept = |f: &Frame| {
        keep.is_none_or(|ports| {
            crate::report::frame_ports(f).is_some_and(|(s, d)| ports.contains(&s) || ports.contains(&d))
        })
    };
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match socket.recv(&mut buf)? {
            Some(n) => {
                let frame = Frame { time_ns: now_ns(), data: buf[..n].to_vec() };
                if kept(&frame) {
                    frames.push(frame);
                }
            }
            None if stopping => return Ok(frames),
            None => {}
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One pcapng block: type, total length, body padded to 32 bits, total length again.
fn block(out: &mut impl Write, block_type: u32, body: &[u8]) -> std::io::Result<()> {
    let padded = body.len().div_ceil(4) * 4;
    let total = u32::try_from(12 + padded).map_err(|_| std::io::Error::other("pcapng block too large"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..padded - body.len()])?;
    out.write_all(&total.to_le_bytes())
}

/// An option: code, length, value padded to 32 bits.
fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().div_ceil(4) * 4, 0);
}

fn write_pcapng(out: &mut impl Write, frames: &[Frame], description: &str) -> std::io::Result<()> {
    // Section Header Block: byte-order magic, version 1.0, section length unknown (-1).
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    option(&mut shb, 4, concat!("keysim ", env!("CARGO_PKG_VERSION")).as_bytes()); // shb_userappl
    option(&mut shb, 0, &[]);
    block(out, 0x0A0D_0D0A, &shb)?;
    // Interface Description Block: the namespace's loopback, nanosecond timestamps.
    let mut idb = Vec::new();
    idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&(SNAPLEN as u32).to_le_bytes());
    option(&mut idb, 2, b"lo"); // if_name
    option(&mut idb, 3, description.as_bytes()); // if_description
    option(&mut idb, 9, &[9]); // if_tsresol: 10^-9 s
    option(&mut idb, 0, &[]);
    block(out, 1, &idb)?;
    for frame in frames {
        // Enhanced Packet Block on interface 0.
        let mut epb = Vec::with_capacity(frame.data.len() + 24);
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((frame.time_ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.time_ns as u32).to_le_bytes());
        let len = frame.data.len() as u32;
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&frame.data);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        block(out, 6, &epb)?;
    }
    Ok(())
}

/// The few Linux calls a capture needs.
#[allow(unsafe_code)]
mod sys {
    use std::io::{Error, Result};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::Duration;

    fn check(ret: libc::c_int) -> Result<libc::c_int> {
        if ret < 0 { Err(Error::last_os_error()) } else { Ok(ret) }
    }

    /// unshare(CLONE_NEWNET) with privileges, else inside a new user namespace that maps the
    /// caller's own uid and gid (so files it creates stay the caller's).
    pub fn enter_network_namespace() -> Result<()> {
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            return Ok(());
        }
        let first = Error::last_os_error();
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        // SAFETY: unshare takes flags only; the process is single-threaded here (the caller's duty).
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            let second = Error::last_os_error();
            return Err(Error::other(format!(
                "{first} (network namespace), {second} (user namespace): run as root or allow unprivileged user namespaces"
            )));
        }
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
        Ok(())
    }

    /// `ip link set lo up`.
    pub fn loopback_up() -> Result<()> {
        // SAFETY: socket takes integers; the descriptor is owned at once.
        let fd = unsafe { OwnedFd::from_raw_fd(check(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0))?) };
        // SAFETY: ifreq is plain data; all zeros is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
        unsafe {
            check(libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
        }
        Ok(())
    }

    /// A raw packet socket bound to lo, reading every protocol, with a short receive timeout.
    pub struct PacketSocket(OwnedFd);

    impl PacketSocket {
        pub fn open_loopback() -> Result<PacketSocket> {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: socket takes integers; the descriptor is owned at once.
            let fd = unsafe {
                OwnedFd::from_raw_fd(check(libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW,
                    libc::c_int::from(protocol),
                ))?)
            };
            // SAFETY: the name is NUL-terminated.
            let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
            if index == 0 {
                return Err(Error::last_os_error());
            }
            // SAFETY: sockaddr_ll is plain data; all zeros is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = index as i32;
            let size = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: the address is a valid sockaddr_ll of the given size.
            check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), size) })?;
            let timeout = libc::timeval { tv_sec: 0, tv_usec: Duration::from_millis(50).as_micros() as _ };
            let buffer: libc::c_int = 32 << 20;
            // SAFETY: the option values are valid for their sizes. A large buffer holds bursts of
            // media; SO_RCVBUFFORCE passes the system limit with privileges, SO_RCVBUF is the fallback.
            unsafe {
                check(libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                ))?;
                let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                if libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&raw const buffer).cast(),
                    size,
                ) != 0
                {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVBUF,
                        (&raw const buffer).cast(),
                        size,
                    );
                }
            }
            Ok(PacketSocket(fd))
        }

        /// One frame received on lo (frames lo shows as sent come again as received: skip them),
        /// or None at the timeout.
        pub fn recv(&self, buf: &mut [u8]) -> Result<Option<usize>> {
            loop {
                // SAFETY: sockaddr_ll is plain data; all zeros is valid.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf and from are valid for the lengths given.
                let n = unsafe {
                    libc::recvfrom(
                        self.0.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&raw mut from).cast(),
                        &mut len,
                    )
                };
                if n < 0 {
                    let e = Error::last_os_error();
                    return match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Ok(None),
                        std::io::ErrorKind::Interrupted => continue,
                        _ => Err(e),
                    };
                }
                if from.sll_pkttype == libc::PACKET_OUTGOING {
                    continue;
                }
                return Ok(Some(n as usize));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_blocks_are_padded_and_framed() {
        let mut out = Vec::new();
        write_pcapng(&mut out, &[Frame { time_ns: 1 << 33, data: vec![1, 2, 3, 4, 5] }], "lo").unwrap();
        // SHB, IDB, EPB; every block's two lengths agree and every length is a multiple of 4.
        let mut at = 0;
        let mut types = Vec::new();
        while at < out.len() {
            let t = u32::from_le_bytes(out[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(out[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(out[at + len - 4..at + len], out[at + 4..at + 8]);
            types.push(t);
            at += len;
        }
        assert_eq!(types, [0x0A0D_0D0A, 1, 6]);
    }
}
