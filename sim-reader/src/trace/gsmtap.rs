//! GSMTAP version 2 datagrams carrying SIM APDUs (osmocom `gsmtap.h`, type 4 = SIM), as SIMtrace2
//! and pySim-trace send them: the C-APDU header with P3, the command data, the response data and
//! SW1 SW2, after a 16-byte GSMTAP header. Wireshark's `gsm_sim` dissector decodes them on UDP 4729.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use apdu::Command;

use crate::{Error, Result};

/// The UDP port GSMTAP is sent to (IANA "gsmtap").
pub const GSMTAP_PORT: u16 = 4729;
/// GSMTAP header version.
pub const GSMTAP_VERSION: u8 = 2;
/// GSMTAP header length in 32-bit words.
pub const GSMTAP_HDR_WORDS: u8 = 4;
/// GSMTAP payload type: SIM APDU.
pub const GSMTAP_TYPE_SIM: u8 = 4;
/// GSMTAP header length in bytes.
pub const GSMTAP_HDR_LEN: usize = 4 * GSMTAP_HDR_WORDS as usize;
/// The largest GSMTAP payload one IPv4 UDP datagram carries (65535 - IP 20 - UDP 8 - GSMTAP 16).
pub const GSMTAP_PAYLOAD_MAX: usize = 65535 - 20 - 8 - GSMTAP_HDR_LEN;

/// The GSMTAP v2 header for a SIM payload: version, header length, type SIM; ARFCN, signal level,
/// SNR, frame number, sub-type, antenna, sub-slot all zero.
pub fn header() -> [u8; GSMTAP_HDR_LEN] {
    let mut h = [0u8; GSMTAP_HDR_LEN];
    h[0] = GSMTAP_VERSION;
    h[1] = GSMTAP_HDR_WORDS;
    h[2] = GSMTAP_TYPE_SIM;
    h
}

/// The SIM payload of one exchange, as a T=0 TPDU trace shows it: `CLA INS P1 P2 P3`, the
/// command data, the response data, SW1 SW2. P3 is Lc when the command carries data, else Le
/// (`00` for 256), else `00`; a case-4 command's Le is dropped, as on the T=0 wire. Commands that
/// do not parse, or use extended lengths, are copied as they are.
pub fn sim_payload(command: &[u8], response: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(command.len() + response.len() + 1);
    match Command::parse(command) {
        Ok(cmd) if !cmd.extended => {
            let p3 = if !cmd.data.is_empty() {
                cmd.data.len() as u8
            } else {
                cmd.ne.map_or(0, |ne| (ne % 256) as u8)
            };
            out.extend_from_slice(&[cmd.cla, cmd.ins, cmd.p1, cmd.p2, p3]);
            out.extend_from_slice(cmd.data);
        }
        _ => out.extend_from_slice(command),
    }
    out.extend_from_slice(response);
    out
}

/// A whole GSMTAP datagram (header and SIM payload), the payload cut to [`GSMTAP_PAYLOAD_MAX`].
pub fn datagram(command: &[u8], response: &[u8]) -> Vec<u8> {
    let mut payload = sim_payload(command, response);
    payload.truncate(GSMTAP_PAYLOAD_MAX);
    let mut out = Vec::with_capacity(GSMTAP_HDR_LEN + payload.len());
    out.extend_from_slice(&header());
    out.extend_from_slice(&payload);
    out
}

/// Resolve a GSMTAP destination `HOST[:PORT]` (port 4729 when absent).
pub fn parse_target(target: &str) -> Result<SocketAddr> {
    let has_port = target
        .rsplit_once(':')
        .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')));
    let full = if has_port { target.to_owned() } else { format!("{target}:{GSMTAP_PORT}") };
    let io = |source| Error::Io { context: format!("resolving GSMTAP target '{target}'"), source };
    full.to_socket_addrs().map_err(io)?.next().ok_or_else(|| io(std::io::Error::other("no address")))
}

/// A sender of GSMTAP datagrams to one UDP destination.
pub struct GsmtapSender {
    socket: UdpSocket,
    target: SocketAddr,
}

impl GsmtapSender {
    /// A sender to `target` (from an ephemeral local port of the same address family).
    pub fn new(target: SocketAddr) -> Result<Self> {
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .map_err(|source| Error::Io { context: "opening the GSMTAP socket".into(), source })?;
        Ok(GsmtapSender { socket, target })
    }

    /// Where datagrams go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Send one exchange.
    pub fn send(&self, command: &[u8], response: &[u8]) -> std::io::Result<()> {
        self.socket.send_to(&datagram(command, response), self.target).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_the_harness_reference() {
        // HARNESS.md §2: struct.pack(">BBBBHbbIBBBB", 2, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        assert_eq!(hex::encode(header()), "02040400000000000000000000000000");
    }

    #[test]
    fn payload_is_tpdu_shaped() {
        // Case 3: header + Lc + data.
        assert_eq!(
            hex::encode(sim_payload(&hex::decode("00a4000c023f00").unwrap(), &[0x90, 0])),
            "00a4000c023f009000"
        );
        // Case 4 (T=1 form): Le dropped.
        assert_eq!(
            hex::encode(sim_payload(&hex::decode("00a40004023f0000").unwrap(), &[0x61, 0x1d])),
            "00a40004023f00611d"
        );
        // Case 2: P3 = Le.
        assert_eq!(
            hex::encode(sim_payload(&hex::decode("00c000001d").unwrap(), &[0x90, 0])),
            "00c000001d9000"
        );
        // Case 1: P3 = 00.
        assert_eq!(hex::encode(sim_payload(&hex::decode("00f20000").unwrap(), &[0x90, 0])), "00f20000009000");
        // Unparseable: raw.
        assert_eq!(hex::encode(sim_payload(&[0x00, 0xa4], &[0x67, 0])), "00a46700");
    }

    #[test]
    fn targets_default_to_port_4729() {
        assert_eq!(parse_target("127.0.0.1").unwrap(), "127.0.0.1:4729".parse().unwrap());
        assert_eq!(parse_target("127.0.0.1:5000").unwrap(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(parse_target("[::1]").unwrap(), "[::1]:4729".parse().unwrap());
        assert_eq!(parse_target("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(parse_target("no such host.invalid").is_err());
    }

    #[test]
    fn datagrams_reach_a_loopback_listener() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let tx = GsmtapSender::new(rx.local_addr().unwrap()).unwrap();
        tx.send(&hex::decode("00b0000009").unwrap(), &hex::decode("0809101010325476989000").unwrap())
            .unwrap();
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(
            hex::encode(&buf[..n]),
            "0204040000000000000000000000000000b00000090809101010325476989000"
        );
    }
}
