//! `keysim srtp protect|unprotect`: SRTP and SRTCP (RFC 3711 §3.3, §3.4) over the packets of a
//! hex file (one packet per line) or of a classic pcap file (the UDP payloads), with one
//! cryptographic context per run.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};

use crate::cli::{SrtpArgs, SrtpCommand};

/// Exit statuses (see `keysim srtp protect --help`): failed packets count up to
/// [`MAX_FAILURES_STATUS`]; the sysexits.h values above it name errors of the run itself.
mod status {
    /// The largest failure count the exit status carries ("that many or more").
    pub const MAX_FAILURES_STATUS: u8 = 63;
    /// EX_USAGE: a bad option value.
    pub const USAGE: u8 = 64;
    /// EX_DATAERR: the input file has a format that cannot be read.
    pub const DATA: u8 = 65;
    /// EX_NOINPUT: the input file cannot be read.
    pub const NO_INPUT: u8 = 66;
    /// EX_CANTCREAT: the output file cannot be written.
    pub const CANT_CREATE: u8 = 73;
}

pub use status::MAX_FAILURES_STATUS;

/// Which transform a run applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Protect,
    Unprotect,
}

/// An error that ends the run, with its exit status.
struct Fatal(u8, String);

pub fn run(cmd: SrtpCommand) -> ExitCode {
    let (args, op) = match cmd {
        SrtpCommand::Protect(a) => (a, Operation::Protect),
        SrtpCommand::Unprotect(a) => (a, Operation::Unprotect),
    };
    match run_files(&args, op) {
        Ok((0, _)) => ExitCode::SUCCESS,
        Ok((failed, total)) => {
            eprintln!("keysim: {failed} of {total} packets failed");
            ExitCode::from(u8::try_from(failed).unwrap_or(u8::MAX).min(MAX_FAILURES_STATUS))
        }
        Err(Fatal(code, msg)) => {
            eprintln!("keysim: {msg}");
            ExitCode::from(code)
        }
    }
}

fn hex_option(option: &str, text: &str) -> Result<Vec<u8>, Fatal> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    hex::decode(&digits).map_err(|e| Fatal(status::USAGE, format!("{option}: {e}")))
}

fn context(args: &SrtpArgs) -> Result<SrtpContext, Fatal> {
    let usage = |m: String| Fatal(status::USAGE, m);
    let suite =
        CryptoSuite::from_name(&args.suite).ok_or_else(|| usage(format!("--suite {}", args.suite)))?;
    let key = hex_option("--key", &args.key)?;
    let salt = hex_option("--salt", &args.salt)?;
    let mki = args.mki.as_deref().map(|m| hex_option("--mki", m)).transpose()?.unwrap_or_default();
    if args.mki.is_some() && mki.is_empty() {
        return Err(usage("--mki: an MKI has at least one byte".to_owned()));
    }
    let master = MasterKey::from_slices(&key, &salt, &mki).map_err(|e| {
        let option = if key.len() != srtp::policy::MASTER_KEY_LEN { "--key" } else { "--salt" };
        usage(format!("{option}: {e}"))
    })?;
    let policy = Policy::new(suite).with_mki_len(mki.len()).with_key_derivation_rate(args.kdr);
    SrtpContext::new(policy, [master]).map_err(|e| usage(format!("{e} (--kdr, --mki)")))
}

/// Why a packet was refused, as the report line says it.
fn reason(op: Operation, e: &srtp::Error) -> String {
    match (op, e) {
        (_, srtp::Error::AuthFailure) => "authentication failed".to_owned(),
        (Operation::Unprotect, srtp::Error::ReplayDuplicate) => {
            "replayed: packet index already received".to_owned()
        }
        (Operation::Unprotect, srtp::Error::ReplayOld) => {
            "replayed: packet index too old for the replay window".to_owned()
        }
        (Operation::Protect, srtp::Error::ReplayDuplicate | srtp::Error::ReplayOld) => {
            "packet index already protected (keystream would be re-used)".to_owned()
        }
        (_, other) => other.to_string(),
    }
}

/// Applies the transform to one packet.
fn apply(ctx: &mut SrtpContext, op: Operation, rtcp: bool, packet: &[u8]) -> Result<Vec<u8>, String> {
    let mut p = packet.to_vec();
    let r = match (op, rtcp) {
        (Operation::Protect, false) => ctx.protect_rtp_vec(&mut p),
        (Operation::Unprotect, false) => ctx.unprotect_rtp_vec(&mut p),
        (Operation::Protect, true) => ctx.protect_rtcp_vec(&mut p),
        (Operation::Unprotect, true) => ctx.unprotect_rtcp_vec(&mut p),
    };
    r.map(|()| p).map_err(|e| reason(op, &e))
}

fn read_all(path: &Path) -> Result<Vec<u8>, Fatal> {
    let mut data = Vec::new();
    let r = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data)).map(|_| ())
    };
    r.map_err(|e| Fatal(status::NO_INPUT, format!("{}: {e}", path.display())))?;
    Ok(data)
}

fn write_all(path: &Path, data: &[u8]) -> Result<(), Fatal> {
    let r = if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(data).and_then(|()| out.flush())
    } else {
        std::fs::write(path, data)
    };
    r.map_err(|e| Fatal(status::CANT_CREATE, format!("{}: {e}", path.display())))
}

/// Runs the whole file; returns (failed packets, packets).
fn run_files(args: &SrtpArgs, op: Operation) -> Result<(usize, usize), Fatal> {
    let mut ctx = context(args)?;
    let input = read_all(&args.input)?;
    let mut failed = 0usize;
    let mut total = 0usize;
    let mut process = |number: usize, packet: Result<&[u8], String>| -> Option<Vec<u8>> {
        total += 1;
        match packet.and_then(|p| apply(&mut ctx, op, args.rtcp, p)) {
            Ok(out) => Some(out),
            Err(why) => {
                eprintln!("packet {number}: {why}");
                failed += 1;
                None
            }
        }
    };
    let output = if args.format == "pcap" {
        let file = pcap::File::parse(&input)
            .map_err(|e| Fatal(status::DATA, format!("{}: {e}", args.input.display())))?;
        file.map_udp_payloads(&mut process)
    } else {
        let text = String::from_utf8_lossy(&input);
        let mut out = String::new();
        let mut number = 0usize;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            number += 1;
            let digits: String = line.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
            let packet = hex::decode(&digits).map_err(|e| format!("not a hex packet: {e}"));
            if let Some(p) = process(number, packet.as_deref().map_err(Clone::clone)) {
                out.push_str(&hex::encode(p));
                out.push('\n');
            }
        }
        out.into_bytes()
    };
    write_all(&args.out, &output)?;
    Ok((failed, total))
}

/// Classic pcap files (the libpcap format: a 24-byte file header, then records of a 16-byte header
/// and the frame), with Ethernet (DLT 1, 802.1Q tags allowed), Linux cooked (113) and raw IP
/// (101, 228, 229) links, IPv4 and IPv6 (without extension headers) carrying UDP.
mod pcap {
    use std::fmt;

    const LINK_ETHERNET: u32 = 1;
    const LINK_RAW: u32 = 101;
    const LINK_LINUX_SLL: u32 = 113;
    const LINK_IPV4: u32 = 228;
    const LINK_IPV6: u32 = 229;
    const ETHERTYPE_IPV4: u16 = 0x0800;
    const ETHERTYPE_IPV6: u16 = 0x86dd;
    const ETHERTYPE_VLAN: [u16; 2] = [0x8100, 0x88a8];
    const IP_PROTO_UDP: u8 = 17;
    /// IPv6 extension headers this reader does not walk (RFC 8200 §4): hop-by-hop, routing,
    /// fragment, destination options.
    const IPV6_EXTENSIONS: [u8; 4] = [0, 43, 44, 60];
    /// The snapshot length written into output files, enough for any UDP datagram.
    const OUTPUT_SNAPLEN: u32 = 262_144;

    #[derive(Debug)]
    pub struct Error(String);

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    fn err<T>(m: impl Into<String>) -> Result<T, Error> {
        Err(Error(m.into()))
    }

    pub struct File<'a> {
        header: [u8; 24],
        big_endian: bool,
        link: u32,
        records: Vec<Record<'a>>,
    }

    struct Record<'a> {
        ts: [u32; 2],
        orig_len: u32,
        data: &'a [u8],
    }

    /// Where a UDP datagram sits in a frame.
    struct Udp {
        /// Offset of the IP header.
        ip: usize,
        /// IPv4 header length, or 40 for IPv6.
        ip_header_len: usize,
        v6: bool,
        /// Offset of the UDP header.
        udp: usize,
        /// Length of the UDP payload.
        payload_len: usize,
    }

    fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }

    impl<'a> File<'a> {
        pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
            let header: [u8; 24] = match bytes.get(..24).and_then(|h| h.try_into().ok()) {
                Some(h) => h,
                None => return err("not a pcap file: shorter than its 24-byte header"),
            };
            let big_endian = match header[..4] {
                [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
                [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
                [0x0a, 0x0d, 0x0d, 0x0a] => {
                    return err("a pcapng file: convert it with `editcap -F pcap IN OUT` first");
                }
                _ => return err("not a pcap file (unknown magic number)"),
            };
            let word = |b: &[u8]| -> u32 {
                let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
                if big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
            };
            let link = word(&header[20..24]) & 0x0fff_ffff;
            if ![LINK_ETHERNET, LINK_RAW, LINK_LINUX_SLL, LINK_IPV4, LINK_IPV6].contains(&link) {
                return err(format!("link type {link} is not supported (Ethernet, Linux cooked or raw IP)"));
            }
            let mut records = Vec::new();
            let mut at = 24;
            while at < bytes.len() {
                let frame = records.len() + 1;
                let Some(h) = bytes.get(at..at + 16) else {
                    return err(format!("frame {frame}: record header cut short"));
                };
                let incl = word(&h[8..12]) as usize;
                let Some(data) = bytes.get(at + 16..at + 16 + incl) else {
                    return err(format!("frame {frame}: {incl} bytes announced, the file ends first"));
                };
                records.push(Record {
                    ts: [word(&h[0..4]), word(&h[4..8])],
                    orig_len: word(&h[12..16]),
                    data,
                });
                at += 16 + incl;
            }
            Ok(File { header, big_endian, link, records })
        }

        fn word(&self, v: u32) -> [u8; 4] {
            if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
        }

        /// Offset of the IP header and whether it is IPv6, or None for a frame that is not IP.
        fn ip_offset(&self, data: &[u8]) -> Option<(usize, bool)> {
            let (mut at, mut ethertype) = match self.link {
                LINK_ETHERNET => (14, u16_at(data, 12)?),
                LINK_LINUX_SLL => (16, u16_at(data, 14)?),
                _ => {
                    let v = data.first()? >> 4;
                    return match (self.link, v) {
                        (LINK_RAW | LINK_IPV4, 4) => Some((0, false)),
                        (LINK_RAW | LINK_IPV6, 6) => Some((0, true)),
                        _ => None,
                    };
                }
            };
            for _ in 0..2 {
                if ETHERTYPE_VLAN.contains(&ethertype) {
                    ethertype = u16_at(data, at + 2)?;
                    at += 4;
                }
            }
            match ethertype {
                ETHERTYPE_IPV4 => Some((at, false)),
                ETHERTYPE_IPV6 => Some((at, true)),
                _ => None,
            }
        }

        /// Finds the UDP datagram of a frame: Ok(None) for a frame that carries no UDP (it is
        /// copied unchanged), Err for a UDP frame that cannot be processed.
        fn udp(&self, r: &Record<'_>) -> Result<Option<Udp>, String> {
            let data = r.data;
            let Some((ip, v6)) = self.ip_offset(data) else { return Ok(None) };
            let (ip_header_len, proto, ip_end) = if v6 {
                let next = *data.get(ip + 6).ok_or("IPv6 header cut short")?;
                if IPV6_EXTENSIONS.contains(&next) {
                    return Err("IPv6 extension headers are not supported".to_owned());
                }
                let plen = u16_at(data, ip + 4).ok_or("IPv6 header cut short")?;
                (40, next, ip + 40 + usize::from(plen))
            } else {
                let b0 = *data.get(ip).ok_or("IPv4 header cut short")?;
                if b0 >> 4 != 4 {
                    return Ok(None);
                }
                let ihl = usize::from(b0 & 0x0f) * 4;
                let total = usize::from(u16_at(data, ip + 2).ok_or("IPv4 header cut short")?);
                let frag = u16_at(data, ip + 6).ok_or("IPv4 header cut short")?;
                let proto = *data.get(ip + 9).ok_or("IPv4 header cut short")?;
                if proto == IP_PROTO_UDP && frag & 0x3fff != 0 {
                    return Err("an IPv4 fragment (reassemble the capture first)".to_owned());
                }
                if ihl < 20 || total < ihl {
                    return Err("bad IPv4 header length".to_owned());
                }
                (ihl, proto, ip + total)
            };
            if proto != IP_PROTO_UDP {
                return Ok(None);
            }
            if (r.orig_len as usize) > data.len() || ip_end > data.len() {
                return Err("frame cut short by the capture's snapshot length".to_owned());
            }
            let udp = ip + ip_header_len;
            let udp_len = usize::from(u16_at(data, udp + 4).ok_or("UDP header cut short")?);
            if udp_len < 8 || udp + udp_len > ip_end {
                return Err("bad UDP length".to_owned());
            }
            Ok(Some(Udp { ip, ip_header_len, v6, udp, payload_len: udp_len - 8 }))
        }

        /// A new frame: the old link and IP headers, lengths and checksums fixed, the new payload.
        fn rebuild(data: &[u8], u: &Udp, payload: &[u8]) -> Vec<u8> {
            let udp_len = 8 + payload.len();
            let mut f = Vec::with_capacity(u.udp + udp_len);
            f.extend_from_slice(&data[..u.udp + 8]);
            f.extend_from_slice(payload);
            let ip = u.ip;
            if u.v6 {
                f[ip + 4..ip + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            } else {
                let total = (u.ip_header_len + udp_len) as u16;
                f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
                f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
                let sum = !fold(sum16(&f[ip..ip + u.ip_header_len], 0));
                f[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
            }
            let udp = u.udp;
            f[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            f[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
            // RFC 768 / RFC 8200 §8.1: the checksum covers a pseudo-header of the addresses,
            // the protocol and the UDP length; a computed 0 is sent as FFFF.
            let pseudo = if u.v6 {
                let s = sum16(&f[ip + 8..ip + 40], 0);
                s + (udp_len as u32 >> 16) + (udp_len as u32 & 0xffff) + u32::from(IP_PROTO_UDP)
            } else {
                sum16(&f[ip + 12..ip + 20], 0) + udp_len as u32 + u32::from(IP_PROTO_UDP)
            };
            let mut sum = !fold(sum16(&f[udp..], pseudo));
            if sum == 0 {
                sum = 0xffff;
            }
            f[udp + 6..udp + 8].copy_from_slice(&sum.to_be_bytes());
            f
        }

        /// Calls `f(frame number, UDP payload or why the frame cannot be used)` for every UDP
        /// frame; writes the frames `f` returns a new payload for, drops the others, and copies
        /// frames without UDP unchanged. Returns the output file.
        pub fn map_udp_payloads(
            &self,
            mut f: impl FnMut(usize, Result<&[u8], String>) -> Option<Vec<u8>>,
        ) -> Vec<u8> {
            let mut out = self.header.to_vec();
            let old_snaplen = {
                let a: [u8; 4] = self.header[16..20].try_into().unwrap_or([0; 4]);
                if self.big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
            };
            out[16..20].copy_from_slice(&self.word(old_snaplen.max(OUTPUT_SNAPLEN)));
            for (i, r) in self.records.iter().enumerate() {
                let (frame, orig_len) = match self.udp(r) {
                    Ok(None) => (r.data.to_vec(), r.orig_len),
                    Ok(Some(u)) => {
                        let payload = &r.data[u.udp + 8..u.udp + 8 + u.payload_len];
                        let Some(new) = f(i + 1, Ok(payload)) else { continue };
                        let frame = Self::rebuild(r.data, &u, &new);
                        let len = frame.len() as u32;
                        (frame, len)
                    }
                    Err(why) => {
                        let _refused = f(i + 1, Err(why));
                        continue;
                    }
                };
                for w in [r.ts[0], r.ts[1], frame.len() as u32, orig_len] {
                    out.extend_from_slice(&self.word(w));
                }
                out.extend_from_slice(&frame);
            }
            out
        }
    }

    /// One's-complement sum of 16-bit big-endian words (RFC 1071), odd tail padded with zero.
    fn sum16(b: &[u8], init: u32) -> u32 {
        let mut s = init;
        let mut chunks = b.chunks_exact(2);
        for c in &mut chunks {
            s += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            s += u32::from(*last) << 8;
        }
        s
    }

    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        #[test]
        fn rfc1071_checksum_example() {
            assert_eq!(fold(sum16(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0)), 0xddf2);
        }

        #[test]
        fn refuses_what_it_cannot_read() {
            assert!(File::parse(&[0xd4, 0xc3]).is_err());
            assert!(
                File::parse(&[
                    0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                ])
                .is_err()
            );
            let mut h =
                vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0];
            assert!(File::parse(&h).is_ok());
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&100u32.to_le_bytes());
            h.extend_from_slice(&100u32.to_le_bytes());
            assert!(File::parse(&h).is_err(), "a record longer than the file");
        }
    }
}
