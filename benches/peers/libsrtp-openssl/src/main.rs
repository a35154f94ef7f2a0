//! libsrtp (the copy `srtp2-sys` ships, built with `--enable-openssl`) `srtp_protect` /
//! `srtp_unprotect` rates on the packets `keysim bench` uses (12-byte RTP header, PT 96, SSRC
//! deadbeef, fresh sequence numbers, 1200 bytes of 0xa5), AES_CM_128_HMAC_SHA1_80, master key
//! 2b*16, salt 17*14, `ssrc_any_outbound` / `ssrc_any_inbound`, replay window 128; one thread,
//! timed on this thread's CPU clock (CLOCK_THREAD_CPUTIME_ID), best of REPS runs of SECS
//! seconds after a warm-up. Unprotect times batches of BATCH packets protected untimed just before.
//!
//! `libsrtp-openssl-bench SECS REPS BATCH` prints {"version", "crypto", "protect_pps",
//! "unprotect_pps"}; `crypto` is the OpenSSL linked in, reported only once libsrtp has shown that
//! it runs on it (it accepts an AES-GCM policy, which its built-in crypto does not have), so the
//! figure cannot silently come from libsrtp's own AES and SHA-1.
use std::ffi::CStr;
use std::hint::black_box;
use std::time::Duration;

use srtp2_sys as sys;

const HEADER: usize = 12;
const PAYLOAD: usize = 1200;
/// Room for the tag (and an MKI) after the payload.
const ROOM: usize = HEADER + PAYLOAD + sys::SRTP_MAX_TRAILER_LEN as usize;

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

fn rtp(p: &mut [u8; ROOM], seq: u16) {
    p[..HEADER + PAYLOAD].fill(0xa5);
    p[..HEADER].fill(0);
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
}

fn check(status: sys::srtp_err_status_t, what: &str) {
    if status != sys::srtp_err_status_t_srtp_err_status_ok {
        eprintln!("{what} failed: libsrtp error {status}");
        std::process::exit(1);
    }
}

/// A session for every SSRC of one direction; `key` must outlive it (libsrtp copies it, but
/// keep it alive anyway).
fn session(inbound: bool, key: &mut [u8; 30]) -> sys::srtp_t {
    // SAFETY: srtp_policy_t is a plain C struct for which all-zero is the documented starting
    // point; the setters fill in the crypto policies; `srtp_create` copies what it needs.
    unsafe {
        let mut policy: sys::srtp_policy_t = std::mem::zeroed();
        // srtp.h's srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 is a macro for these.
        sys::srtp_crypto_policy_set_rtp_default(&mut policy.rtp);
        sys::srtp_crypto_policy_set_rtcp_default(&mut policy.rtcp);
        policy.ssrc.type_ = if inbound {
            sys::srtp_ssrc_type_t_ssrc_any_inbound
        } else {
            sys::srtp_ssrc_type_t_ssrc_any_outbound
        };
        policy.key = key.as_mut_ptr();
        policy.window_size = 128;
        let mut s: sys::srtp_t = std::ptr::null_mut();
        check(sys::srtp_create(&mut s, &policy), "srtp_create");
        s
    }
}

/// The OpenSSL libsrtp runs on, after checking that libsrtp was built with its OpenSSL backend:
/// only that backend has AES-GCM (libsrtp's built-in crypto refuses a GCM policy).
fn crypto() -> String {
    let mut key = [0x2bu8; 28];
    // SAFETY: as in `session`; the session is deallocated at once. OpenSSL_version returns a
    // static NUL-terminated string.
    unsafe {
        let mut policy: sys::srtp_policy_t = std::mem::zeroed();
        sys::srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut policy.rtp);
        sys::srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut policy.rtcp);
        policy.ssrc.type_ = sys::srtp_ssrc_type_t_ssrc_any_outbound;
        policy.key = key.as_mut_ptr();
        policy.window_size = 128;
        let mut s: sys::srtp_t = std::ptr::null_mut();
        if sys::srtp_create(&mut s, &policy) != sys::srtp_err_status_t_srtp_err_status_ok {
            eprintln!("libsrtp refuses AES-GCM: it was not built with its OpenSSL backend");
            std::process::exit(1);
        }
        sys::srtp_dealloc(s);
        CStr::from_ptr(openssl_sys::OpenSSL_version(openssl_sys::OPENSSL_VERSION))
            .to_string_lossy()
            .into_owned()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, secs, reps, batch] = &args[..] else {
        eprintln!("usage: libsrtp-openssl-bench SECS REPS BATCH");
        std::process::exit(2);
    };
    let secs: f64 = secs.parse().expect("SECS");
    let reps: usize = reps.parse().expect("REPS");
    let batch: usize = batch.parse().expect("BATCH");
    let clock = Clock;
    // SAFETY: called once before any other libsrtp function.
    check(unsafe { sys::srtp_init() }, "srtp_init");
    let mut key = [0u8; 30];
    key[..16].fill(0x2b);
    key[16..].fill(0x17);
    let (tx, tx2, rx) = (session(false, &mut key), session(false, &mut key), session(true, &mut key));

    let mut packet = Box::new([0u8; ROOM]);
    rtp(&mut packet, 0);
    let mut packets = vec![[0u8; ROOM]; batch];
    let mut lens = vec![0i32; batch];
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
                let mut len = (HEADER + PAYLOAD) as i32;
                // SAFETY: `packet` has ROOM bytes, SRTP_MAX_TRAILER_LEN past the RTP packet.
                check(
                    unsafe { sys::srtp_protect(tx, black_box(packet.as_mut_ptr()).cast(), &mut len) },
                    "srtp_protect",
                );
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
            for (p, len) in packets.iter_mut().zip(&mut lens) {
                useq = useq.wrapping_add(1);
                rtp(p, useq);
                *len = (HEADER + PAYLOAD) as i32;
                // SAFETY: as above.
                check(unsafe { sys::srtp_protect(tx2, p.as_mut_ptr().cast(), len) }, "srtp_protect");
            }
            let start = clock.now();
            for (p, len) in packets.iter_mut().zip(&mut lens) {
                // SAFETY: `p` holds a protected packet of `len` bytes.
                check(
                    unsafe { sys::srtp_unprotect(rx, black_box(p.as_mut_ptr()).cast(), len) },
                    "srtp_unprotect",
                );
            }
            timed += (clock.now() - start).as_secs_f64();
            n += batch as u64;
        }
        if r > 0 {
            best_u = best_u.max(n as f64 / timed);
        }
    }
    // SAFETY: a static NUL-terminated string.
    let libsrtp = unsafe { CStr::from_ptr(sys::srtp_get_version_string()) }.to_string_lossy().into_owned();
    // The srtp2-sys version is the one pinned in Cargo.toml.
    let version = format!("{libsrtp} (srtp2-sys 3.0.2, --enable-openssl)");
    let crypto = crypto();
    let json = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    println!(
        "{{\"version\": \"{}\", \"crypto\": \"{}\", \"protect_pps\": {best_p:.0}, \"unprotect_pps\": {best_u:.0}}}",
        json(&version),
        json(&crypto)
    );
}
