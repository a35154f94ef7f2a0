//! Property tests of SRTP/SRTCP (RFC 3711 §3.3, §3.4): round trip, no panic on arbitrary input,
//! any altered bit refused (and the forged packet left as it came), replays refused, reordering
//! inside the window accepted once; round trips and refusals under every transform strategy.

use proptest::prelude::*;
use srtp::transform::{Strategies, Strategy as Schedule};
use srtp::{CryptoSuite, Direction, Error, MasterKey, Policy, SrtpContext};

/// Any pair of transform strategies (protect, unprotect).
fn schedules() -> impl Strategy<Value = Strategies> {
    (prop::sample::select(Schedule::ALL.to_vec()), prop::sample::select(Schedule::ALL.to_vec()))
        .prop_map(|(protect, unprotect)| Strategies { protect, unprotect })
}

fn suite() -> impl Strategy<Value = CryptoSuite> {
    prop::sample::select(CryptoSuite::ALL.to_vec())
}

fn master_key(mki_len: usize) -> impl Strategy<Value = MasterKey> {
    (any::<[u8; 16]>(), any::<[u8; 14]>(), prop::collection::vec(any::<u8>(), mki_len))
        .prop_map(|(k, s, m)| MasterKey::new(k, s, m))
}

/// A policy and a master key that fits it (MKI length 0..=6).
fn policy_and_key() -> impl Strategy<Value = (Policy, MasterKey)> {
    (suite(), 0usize..=6).prop_flat_map(|(suite, mki_len)| {
        (Just(Policy::new(suite).with_mki_len(mki_len)), master_key(mki_len))
    })
}

/// An RTP packet with random CSRCs, header extension, payload and padding (RFC 3550 §5.1, §5.3.1).
fn rtp_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((any::<u16>(), prop::collection::vec(any::<u32>(), 0..6))),
        prop::collection::vec(any::<u8>(), 0..300),
        0u8..=16,
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(csrcs, ext, payload, pad, marker, pt, seq, ts, ssrc)| {
            let mut p = vec![
                0x80 | (u8::from(pad > 0) << 5) | (u8::from(ext.is_some()) << 4) | csrcs.len() as u8,
                (u8::from(marker) << 7) | pt,
            ];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            for c in &csrcs {
                p.extend_from_slice(&c.to_be_bytes());
            }
            if let Some((profile, words)) = &ext {
                p.extend_from_slice(&profile.to_be_bytes());
                p.extend_from_slice(&(words.len() as u16).to_be_bytes());
                for w in words {
                    p.extend_from_slice(&w.to_be_bytes());
                }
            }
            p.extend_from_slice(&payload);
            if pad > 0 {
                p.extend(std::iter::repeat_n(0u8, usize::from(pad) - 1));
                p.push(pad);
            }
            p
        })
}

/// An RTCP compound packet: 8-byte header with sender SSRC and a random body.
fn rtcp_packet() -> impl Strategy<Value = Vec<u8>> {
    (0u8..32, 200u8..=206, any::<u32>(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(
        |(count, pt, ssrc, body)| {
            let mut p = vec![0x80 | count, pt];
            p.extend_from_slice(&((body.len() / 4 + 1) as u16).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&body);
            p
        },
    )
}

fn contexts(policy: &Policy, key: &MasterKey) -> (SrtpContext, SrtpContext) {
    (
        SrtpContext::new(policy.clone(), [key.clone()]).unwrap(),
        SrtpContext::new(policy.clone(), [key.clone()]).unwrap(),
    )
}

fn rtp_with_seq(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 7]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[seq as u8; 40]);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rtp_round_trip((policy, key) in policy_and_key(), rtp in rtp_packet(), sched in (schedules(), schedules())) {
        let (mut tx, mut rx) = contexts(&policy, &key);
        tx.set_strategies(sched.0);
        rx.set_strategies(sched.1);
        let mut p = rtp.clone();
        tx.protect_rtp_vec(&mut p).unwrap();
        prop_assert_eq!(p.len(), rtp.len() + policy.rtp_overhead());
        // Header, CSRCs and extension stay in the clear; the payload is encrypted unless NULL.
        let hdr = srtp::rtp::RtpHeader::parse(&rtp).unwrap();
        prop_assert_eq!(&p[..hdr.header_len], &rtp[..hdr.header_len]);
        if policy.suite.encrypts() && rtp.len() - hdr.header_len >= 8 {
            prop_assert_ne!(&p[hdr.header_len..rtp.len()], &rtp[hdr.header_len..]);
        }
        prop_assert_eq!(&p[rtp.len()..rtp.len() + policy.mki_len], &key.mki[..]);
        rx.unprotect_rtp_vec(&mut p).unwrap();
        prop_assert_eq!(&p, &rtp);
        let payload = hdr.payload(&p).unwrap();
        prop_assert!(payload.len() <= p.len() - hdr.header_len);
    }

    #[test]
    fn rtcp_round_trip((policy, key) in policy_and_key(), rtcp in rtcp_packet(), sched in (schedules(), schedules())) {
        let (mut tx, mut rx) = contexts(&policy, &key);
        tx.set_strategies(sched.0);
        rx.set_strategies(sched.1);
        let mut p = rtcp.clone();
        tx.protect_rtcp_vec(&mut p).unwrap();
        prop_assert_eq!(p.len(), rtcp.len() + policy.rtcp_overhead());
        prop_assert_eq!(&p[..8], &rtcp[..8]);
        let word = u32::from_be_bytes(p[rtcp.len()..rtcp.len() + 4].try_into().unwrap());
        prop_assert_eq!(word, if policy.suite.encrypts() { 0x8000_0001 } else { 1 });
        rx.unprotect_rtcp_vec(&mut p).unwrap();
        prop_assert_eq!(&p, &rtcp);
    }

    #[test]
    fn unprotect_never_panics((policy, key) in policy_and_key(), bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let (_, mut rx) = contexts(&policy, &key);
        let mut a = bytes.clone();
        prop_assert!(rx.unprotect_rtp(&mut a).is_err());
        prop_assert_eq!(&a, &bytes);
        let mut b = bytes.clone();
        prop_assert!(rx.unprotect_rtcp(&mut b).is_err());
        prop_assert_eq!(&b, &bytes);
        let mut c = bytes.clone();
        let _ = rx.protect_rtp_vec(&mut c);
        let mut d = bytes.clone();
        let _ = rx.protect_rtcp_vec(&mut d);
    }

    /// Version-2 garbage with a plausible header: still only errors, and no stream is created.
    #[test]
    fn unprotect_refuses_forged_v2(policy_key in policy_and_key(), mut bytes in prop::collection::vec(any::<u8>(), 8..120)) {
        let (policy, key) = policy_key;
        let (_, mut rx) = contexts(&policy, &key);
        bytes[0] = (bytes[0] & 0x3f) | 0x80;
        let ssrc = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        prop_assert!(rx.unprotect_rtp(&mut bytes.clone()).is_err());
        prop_assert!(rx.unprotect_rtcp(&mut bytes.clone()).is_err());
        prop_assert_eq!(rx.srtcp_index(Direction::Inbound, ssrc), None);
        prop_assert_eq!(rx.master_key_usage(&key.mki), Some((0, 0)));
    }

    /// Any single flipped bit is refused (tag, MKI or header checks), the forged packet is left as
    /// it came (never decrypted), and the receiver still accepts the genuine packet afterwards;
    /// under any strategy.
    #[test]
    fn flipped_bit_is_refused((policy, key) in policy_and_key(), rtp in rtp_packet(), rtcp in rtcp_packet(), bit in any::<prop::sample::Index>(), sched in schedules()) {
        let (mut tx, mut rx) = contexts(&policy, &key);
        rx.set_strategies(sched);
        let mut p = rtp.clone();
        tx.protect_rtp_vec(&mut p).unwrap();
        let b = bit.index(p.len() * 8);
        let mut bad = p.clone();
        bad[b / 8] ^= 0x80 >> (b % 8);
        let forged = bad.clone();
        let err = rx.unprotect_rtp_vec(&mut bad).unwrap_err();
        prop_assert_eq!(&bad, &forged);
        let mki_at = rtp.len()..rtp.len() + policy.mki_len;
        if b / 8 == 0 {
            // V, P, X, CC: version, length or tag check.
            let expected = matches!(err, Error::BadVersion(_) | Error::TooShort { .. } | Error::AuthFailure);
            prop_assert!(expected, "{:?}", err);
        } else if mki_at.contains(&(b / 8)) {
            prop_assert_eq!(err, Error::UnknownMki);
        } else {
            let expected = matches!(err, Error::AuthFailure | Error::TooShort { .. });
            prop_assert!(expected, "{:?}", err);
        }
        rx.unprotect_rtp_vec(&mut p).unwrap();
        prop_assert_eq!(&p, &rtp);

        let mut p = rtcp.clone();
        tx.protect_rtcp_vec(&mut p).unwrap();
        let b = bit.index(p.len() * 8);
        let mut bad = p.clone();
        bad[b / 8] ^= 0x80 >> (b % 8);
        let forged = bad.clone();
        let err = rx.unprotect_rtcp_vec(&mut bad).unwrap_err();
        prop_assert_eq!(&bad, &forged);
        let mki_at = rtcp.len() + 4..rtcp.len() + 4 + policy.mki_len;
        if b < 2 {
            prop_assert!(matches!(err, Error::BadVersion(_)), "{:?}", err);
        } else if mki_at.contains(&(b / 8)) {
            prop_assert_eq!(err, Error::UnknownMki);
        } else {
            prop_assert_eq!(err, Error::AuthFailure);
        }
        rx.unprotect_rtcp_vec(&mut p).unwrap();
        prop_assert_eq!(&p, &rtcp);
    }

    /// Packets delivered in any order within the window are each accepted exactly once; a replay
    /// of any accepted packet is refused; a packet behind the window is refused as old.
    #[test]
    fn reorder_and_replay(
        (policy, key) in policy_and_key(),
        start in any::<u16>(),
        order in Just((0u16..100).collect::<Vec<_>>()).prop_shuffle(),
        replay in any::<prop::sample::Index>(),
    ) {
        let (mut tx, mut rx) = contexts(&policy, &key);
        let ssrc = 0x1234_5678;
        let sent: Vec<Vec<u8>> = (0..100u16)
            .map(|k| {
                let mut p = rtp_with_seq(ssrc, start.wrapping_add(k));
                tx.protect_rtp_vec(&mut p).unwrap();
                p
            })
            .collect();
        // The first packet fixes the stream's ROC; then any order inside the window.
        let mut first = sent[0].clone();
        rx.unprotect_rtp_vec(&mut first).unwrap();
        for &k in order.iter().filter(|&&k| k != 0) {
            let mut p = sent[usize::from(k)].clone();
            rx.unprotect_rtp_vec(&mut p).unwrap();
            prop_assert_eq!(p, rtp_with_seq(ssrc, start.wrapping_add(k)));
        }
        let again = replay.index(100);
        let mut p = sent[again].clone();
        prop_assert_eq!(rx.unprotect_rtp_vec(&mut p), Err(Error::ReplayDuplicate));
        // Move 200 packets ahead: the first packet is now behind the 128-packet window.
        let mut far = rtp_with_seq(ssrc, start.wrapping_add(300));
        tx.protect_rtp_vec(&mut far).unwrap();
        rx.unprotect_rtp_vec(&mut far).unwrap();
        let mut p = sent[0].clone();
        prop_assert_eq!(rx.unprotect_rtp_vec(&mut p), Err(Error::ReplayOld));
        // The sender refuses to protect an index twice.
        let mut p = rtp_with_seq(ssrc, start.wrapping_add(300));
        prop_assert_eq!(tx.protect_rtp_vec(&mut p), Err(Error::ReplayDuplicate));
    }

    /// SRTCP: reordering within the window accepted once, replays refused.
    #[test]
    fn srtcp_reorder_and_replay(
        (policy, key) in policy_and_key(),
        order in Just((0usize..60).collect::<Vec<_>>()).prop_shuffle(),
        replay in any::<prop::sample::Index>(),
    ) {
        let (mut tx, mut rx) = contexts(&policy, &key);
        let rtcp = hex::decode("81c8000bcafebabeabababababababababababababababab").unwrap();
        let sent: Vec<Vec<u8>> = (0..60)
            .map(|_| {
                let mut p = rtcp.clone();
                tx.protect_rtcp_vec(&mut p).unwrap();
                p
            })
            .collect();
        for &k in &order {
            let mut p = sent[k].clone();
            rx.unprotect_rtcp_vec(&mut p).unwrap();
            prop_assert_eq!(&p, &rtcp);
        }
        prop_assert_eq!(rx.srtcp_index(Direction::Inbound, 0xcafebabe), Some(60));
        let mut p = sent[replay.index(60)].clone();
        prop_assert_eq!(rx.unprotect_rtcp_vec(&mut p), Err(Error::ReplayDuplicate));
    }
}

/// The sender's ROC follows SEQ across the wrap, and the receiver follows it (RFC 3711 §3.3.1).
#[test]
fn roc_follows_wrap_around() {
    let key = MasterKey::new([7; 16], [9; 14], []);
    let policy = Policy::default();
    let (mut tx, mut rx) = contexts(&policy, &key);
    let ssrc = 42;
    for k in 0..20u32 {
        let seq = (65530 + k) as u16;
        let mut p = rtp_with_seq(ssrc, seq);
        tx.protect_rtp_vec(&mut p).unwrap();
        rx.unprotect_rtp_vec(&mut p).unwrap();
        assert_eq!(p, rtp_with_seq(ssrc, seq));
    }
    assert_eq!(tx.rtp_index(Direction::Outbound, ssrc), Some(65536 + 13));
    assert_eq!(rx.rtp_index(Direction::Inbound, ssrc), Some(65536 + 13));
}

/// A forged packet does not move the ROC: the ROC is updated only after authentication.
#[test]
fn roc_moves_only_after_authentication() {
    let key = MasterKey::new([7; 16], [9; 14], []);
    let (mut tx, mut rx) = contexts(&Policy::default(), &key);
    let ssrc = 42;
    let mut p = rtp_with_seq(ssrc, 40000);
    tx.protect_rtp_vec(&mut p).unwrap();
    rx.unprotect_rtp_vec(&mut p).unwrap();
    // SEQ 100 after 40000 would mean ROC + 1; the forgery fails and the ROC stays 0.
    let mut forged = rtp_with_seq(ssrc, 100);
    forged.extend_from_slice(&[0; 10]);
    assert_eq!(rx.unprotect_rtp_vec(&mut forged), Err(Error::AuthFailure));
    assert_eq!(rx.rtp_index(Direction::Inbound, ssrc), Some(40000));
    let mut p = rtp_with_seq(ssrc, 40001);
    tx.protect_rtp_vec(&mut p).unwrap();
    rx.unprotect_rtp_vec(&mut p).unwrap();
}

/// A configurable window: 256 packets accept what 128 would call old.
#[test]
fn replay_window_is_configurable() {
    let key = MasterKey::new([1; 16], [2; 14], []);
    for (window, accepted) in [(128usize, false), (256, true)] {
        let policy = Policy::default().with_replay_window(window);
        let (mut tx, mut rx) = contexts(&policy, &key);
        let sent: Vec<Vec<u8>> = (0..201u16)
            .map(|s| {
                let mut p = rtp_with_seq(5, s);
                tx.protect_rtp_vec(&mut p).unwrap();
                p
            })
            .collect();
        rx.unprotect_rtp_vec(&mut sent[200].clone()).unwrap();
        let r = rx.unprotect_rtp_vec(&mut sent[0].clone());
        assert_eq!(r.is_ok(), accepted, "window {window}: {r:?}");
        if !accepted {
            assert_eq!(r, Err(Error::ReplayOld));
        }
    }
}
