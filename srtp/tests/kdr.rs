//! Non-zero key derivation rate (RFC 3711 §4.3.1, §4.3.2).
//!
//! libsrtp (and so the pylibsrtp oracle) supports only rate 0, so these checks rest on the RFC's
//! own algebra: with `key_id = label || r` XORed into the master salt, deriving with rate `kdr` at
//! index `i` is the same as deriving with rate 0 from the master salt XOR `r = i DIV kdr` (in its
//! last 48 bits). Rate 0 is fixed by the RFC 3711 B.3 vector and libsrtp's packets; the KDF with
//! r != 0 by OpenSSL's kdr-1 vector (unit test in `kdf.rs`); `tests/libsrtp.rs` replays this same
//! identity against libsrtp itself.

use std::collections::BTreeSet;

use srtp::{CryptoSuite, Direction, MasterKey, Policy, SrtpContext};

const KEY: [u8; 16] = [0x3c; 16];
const SALT: [u8; 14] = [0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d];
const SSRC: u32 = 0x0bad_cafe;

fn salt_xor_r(r: u64) -> [u8; 14] {
    let mut s = SALT;
    for (b, x) in s[8..].iter_mut().zip(&r.to_be_bytes()[2..]) {
        *b ^= x;
    }
    s
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..64u8).map(|b| b ^ seq as u8));
    p
}

fn context(kdr: u64, salt: [u8; 14]) -> SrtpContext {
    let policy = Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_key_derivation_rate(kdr);
    SrtpContext::new(policy, [MasterKey::new(KEY, salt, [])]).unwrap()
}

/// SRTP packets under kdr = 2^8 equal rate-0 packets with the salt shifted by r, across several
/// r boundaries and with ROC 0 and ROC 3.
#[test]
fn srtp_rate_equals_shifted_salt() {
    let kdr = 256u64;
    for roc in [0u32, 3] {
        let mut tx = context(kdr, SALT);
        tx.set_rtp_roc(Direction::Outbound, SSRC, roc).unwrap();
        let mut rx = context(kdr, SALT);
        rx.set_rtp_roc(Direction::Inbound, SSRC, roc).unwrap();
        let seqs: BTreeSet<u16> = (0u16..1100).step_by(7).chain([255, 256, 511, 512, 1023]).collect();
        for seq in seqs {
            let mut p = rtp(seq);
            tx.protect_rtp_vec(&mut p).unwrap();
            let index = (u64::from(roc) << 16) | u64::from(seq);
            let mut reference = context(0, salt_xor_r(index / kdr));
            reference.set_rtp_roc(Direction::Outbound, SSRC, roc).unwrap();
            let mut q = rtp(seq);
            reference.protect_rtp_vec(&mut q).unwrap();
            assert_eq!(p, q, "seq {seq} roc {roc}");
            // With r = 0 the keys are the rate-0 keys of the unshifted salt.
            if index < kdr {
                let mut plain = context(0, SALT);
                let mut q = rtp(seq);
                plain.protect_rtp_vec(&mut q).unwrap();
                assert_eq!(p, q);
            }
            rx.unprotect_rtp_vec(&mut p).unwrap();
            assert_eq!(p, rtp(seq));
        }
    }
}

/// The receiver re-derives when r changes, also for a late packet of the previous period after
/// the cache has moved on, and for jumps back and forth.
#[test]
fn receiver_rederives_when_r_changes() {
    let mut tx = context(16, SALT);
    let mut rx = context(16, SALT);
    let sent: Vec<Vec<u8>> = (0u16..80)
        .map(|s| {
            let mut p = rtp(s);
            tx.protect_rtp_vec(&mut p).unwrap();
            p
        })
        .collect();
    for s in [0usize, 17, 15, 33, 16, 1, 79, 64, 63, 50, 2] {
        let mut p = sent[s].clone();
        rx.unprotect_rtp_vec(&mut p).unwrap();
        assert_eq!(p, rtp(s as u16));
    }
}

/// SRTCP derives with r = SRTCP index DIV kdr (RFC 3711 §4.3.2).
#[test]
fn srtcp_rate_uses_srtcp_index() {
    let kdr = 4u64;
    let rtcp = hex::decode("81c8000b0badcafeabababababababababababababababab").unwrap();
    let mut tx = context(kdr, SALT);
    let mut rx = context(kdr, SALT);
    for index in 1u64..=20 {
        let mut p = rtcp.clone();
        tx.protect_rtcp_vec(&mut p).unwrap();
        // A rate-0 sender with the shifted salt reaches the same index after index - 1 packets.
        let mut reference = context(0, salt_xor_r(index / kdr));
        let mut q = rtcp.clone();
        for _ in 0..index {
            q = rtcp.clone();
            reference.protect_rtcp_vec(&mut q).unwrap();
        }
        assert_eq!(p, q, "SRTCP index {index}");
        rx.unprotect_rtcp_vec(&mut p).unwrap();
        assert_eq!(p, rtcp);
    }
}

/// RFC 3711 §4.3.1: the rate is 0 or a power of 2 up to 2^24.
#[test]
fn rate_must_be_power_of_two_up_to_2_24() {
    for (kdr, ok) in
        [(0u64, true), (1, true), (2, true), (3, false), (1 << 24, true), (1 << 25, false), (48, false)]
    {
        assert_eq!(
            SrtpContext::new(Policy::default().with_key_derivation_rate(kdr), []).is_ok(),
            ok,
            "{kdr}"
        );
    }
}
