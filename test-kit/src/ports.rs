//! Loopback ports for servers a test starts as other processes, which must be told their ports
//! before they bind them.
//!
//! A port the system hands out for `bind(…:0)` comes from the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), where any other test's socket or outgoing
//! connection may take it again between the moment it was released and the moment the server
//! binds it. These ports come from below that range instead: a block of [`BLOCK`] ports per test
//! process (chosen by its PID), handed out in turn by a counter, each checked free for both TCP and
//! UDP when it is handed out. Test binaries run one after another and each test thread of one
//! binary takes the next port, so no two tests of a run are given the same one.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};

/// The lowest port handed out (above the registered ports most services of a machine listen on).
const BASE: u16 = 10_000;
/// Ports per test process.
const BLOCK: u16 = 200;
/// Blocks: `BASE + BLOCKS * BLOCK` stays below the default ephemeral range (32768) and below the
/// fixed ports of `keysim serve` (24750–24759) that the documentation test owns.
const BLOCKS: u16 = 70;

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A loopback port, free for TCP and UDP when handed out, that no other test of this process gets.
pub fn loopback_port() -> u16 {
    let block = (std::process::id() % u32::from(BLOCKS)) as u16;
    let first = BASE + block * BLOCK;
    for _ in 0..BLOCK {
        let port = first + NEXT.fetch_add(1, Ordering::Relaxed) % BLOCK;
        if (24_740..24_770).contains(&port) {
            continue;
        }
        let free =
            TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free loopback port in {first}..{}", first + BLOCK)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| super::loopback_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len());
        assert!(ports.iter().all(|&p| (10_000..32_768).contains(&p) && !(24_740..24_770).contains(&p)));
    }
}
