//! webrtc-srtp 0.17 `Context::encrypt_rtp` / `decrypt_rtp` rates on the packets `keysim bench`
//! uses (12-byte RTP header, PT 96, SSRC deadbeef, fresh sequence numbers, 1200 bytes of 0xa5),
//! AES_CM_128_HMAC_SHA1_80, master key 2b*16, salt 17*14; one thread, timed on this thread's CPU
//! clock (CLOCK_THREAD_CPUTIME_ID), best of REPS runs of SECS seconds. Unprotect times
//! batches of BATCH packets protected untimed just before.
//!
//! `webrtc-srtp-bench SECS REPS BATCH` prints {"version", "protect_pps", "unprotect_pps"}.
use std::hint::black_box;
use std::time::Duration;

use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const HEADER: usize = 12;
const PAYLOAD: usize = 1200;

/// This thread's CPU time, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which is exact (the
/// `/proc/thread-self/schedstat` figure only moves at scheduler ticks).
struct Clock;

impl Clock {
    fn now(&self) -> Duration {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec; clock_gettime writes only it.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID");
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0xa5u8; HEADER + PAYLOAD];
    p[..HEADER].fill(0);
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    p
}

fn context() -> Context {
    Context::new(&[0x2b; 16], &[0x17; 14], ProtectionProfile::Aes128CmHmacSha1_80, None, None)
        .expect("context")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, secs, reps, batch] = &args[..] else {
        eprintln!("usage: webrtc-srtp-bench SECS REPS BATCH");
        std::process::exit(2);
    };
    let secs: f64 = secs.parse().expect("SECS");
    let reps: usize = reps.parse().expect("REPS");
    let batch: usize = batch.parse().expect("BATCH");
    let clock = Clock;
    let (mut tx, mut tx2, mut rx) = (context(), context(), context());
    let mut packet = rtp(0);
    let (mut seq, mut useq) = (0u16, 0u16);
    let (mut best_p, mut best_u) = (0f64, 0f64);
    for r in 0..=reps {
        let run = if r == 0 { secs / 5.0 } else { secs };
        let start = clock.now();
        let mut n = 0u64;
        let t = loop {
            for _ in 0..256 {
                seq = seq.wrapping_add(1);
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                black_box(tx.encrypt_rtp(black_box(&packet)).expect("encrypt_rtp"));
            }
            n += 256;
            let t = (clock.now() - start).as_secs_f64();
            if t >= run {
                break t;
            }
        };
        if r > 0 {
            best_p = best_p.max(n as f64 / t);
        }
        let (mut timed, mut n) = (0f64, 0u64);
        while timed < run {
            let protected: Vec<_> = (0..batch)
                .map(|_| {
                    useq = useq.wrapping_add(1);
                    tx2.encrypt_rtp(&rtp(useq)).expect("encrypt_rtp")
                })
                .collect();
            let start = clock.now();
            for p in &protected {
                black_box(rx.decrypt_rtp(black_box(p)).expect("decrypt_rtp"));
            }
            timed += (clock.now() - start).as_secs_f64();
            n += batch as u64;
        }
        if r > 0 {
            best_u = best_u.max(n as f64 / timed);
        }
    }
    let version =
        if cfg!(feature = "openssl") { "webrtc-srtp 0.17.2 (openssl)" } else { "webrtc-srtp 0.17.2" };
    println!("{{\"version\": \"{version}\", \"protect_pps\": {best_p:.0}, \"unprotect_pps\": {best_u:.0}}}");
}
