//! A pcap file writer (the classic libpcap format, LINKTYPE_ETHERNET) whose frames are UDP/IPv4
//! datagrams on loopback, so Wireshark dissects GSMTAP traces written without any capture.

use std::io::Write;
use std::net::SocketAddrV4;
use std::time::{SystemTime, UNIX_EPOCH};

/// libpcap magic number (microsecond timestamps).
pub const PCAP_MAGIC: u32 = 0xA1B2_C3D4;
/// Link type: Ethernet (tcpdump.org link-layer header types).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame: Ethernet header and a full IPv4 packet.
pub const SNAPLEN: u32 = 14 + 65535;

const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;

/// Writes UDP datagrams into a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// Start a pcap stream: the 24-byte global header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, ip_id: 0 })
    }

    /// Append one UDP datagram from `src` to `dst`, stamped `time`. A payload that does not fit an
    /// IPv4 packet is cut.
    pub fn write_udp(
        &mut self,
        time: SystemTime,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let payload = &payload[..payload.len().min(65535 - 28)];
        let frame = ethernet_udp_frame(self.ip_id, src, dst, payload);
        self.ip_id = self.ip_id.wrapping_add(1);
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rec = Vec::with_capacity(16 + frame.len());
        rec.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
        rec.extend_from_slice(&since.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&frame);
        self.out.write_all(&rec)
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Give the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An Ethernet II frame (zero MAC addresses) carrying an IPv4 UDP datagram; the UDP checksum is
/// left 0 ("not computed", RFC 768).
pub fn ethernet_udp_frame(ip_id: u16, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45; // version 4, IHL 5
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = IPPROTO_UDP;
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum (RFC 1071): one's complement of the one's-complement sum of 16-bit words.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
        assert_eq!(internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }

    #[test]
    fn ip_header_checksums_to_zero() {
        let a: SocketAddrV4 = "127.0.0.1:4729".parse().unwrap();
        let f = ethernet_udp_frame(7, a, a, &[1, 2, 3]);
        assert_eq!(internet_checksum(&f[14..34]), 0);
        assert_eq!(f.len(), 14 + 20 + 8 + 3);
    }

    #[test]
    fn global_header_layout() {
        let w = PcapWriter::new(Vec::new()).unwrap().into_inner();
        assert_eq!(hex::encode(&w), "d4c3b2a10200040000000000000000000d00010001000000");
    }
}
