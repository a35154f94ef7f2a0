//! SRTP protect and unprotect (RFC 3711, AES_CM_128_HMAC_SHA1_80, 12-byte header + 1200-byte
//! payload) beside the bare crypto on the same packet: AES-128 counter mode over the payload and
//! HMAC-SHA1 over header, payload and ROC, once with the srtp crate's one-pass transform
//! (`crypto_budget`) and once through the ctr and hmac crates one after the other
//! (`crypto_budget_sequential`). `keysim bench` reports the same figures as packets per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::Aes128;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ctr::cipher::{InnerIvInit, KeyInit as _, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};

const PAYLOAD: usize = 1200;
const HEADER: usize = 12;
const TAG: usize = 10;
const SSRC: u32 = 0xdead_beef;

fn context() -> SrtpContext {
    let key = MasterKey::new([0x2b; 16], [0x17; 14], []);
    SrtpContext::new(Policy::new(CryptoSuite::Aes128CmHmacSha1_80), [key]).expect("context")
}

fn rtp() -> Vec<u8> {
    let mut p = vec![0xa5u8; HEADER + PAYLOAD + TAG];
    p[..HEADER].fill(0);
    p[0] = 0x80;
    p[1] = 96;
    p[8..12].copy_from_slice(&SSRC.to_be_bytes());
    p
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_vs_budget_1200B");
    group.throughput(Throughput::Elements(1));

    group.bench_function("protect", |b| {
        let mut tx = context();
        let mut buf = rtp();
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            black_box(tx.protect_rtp(black_box(&mut buf), HEADER + PAYLOAD).expect("protect"));
        });
    });

    group.bench_function("unprotect", |b| {
        // Packets are protected in untimed batches; only unprotect is timed.
        let (mut tx, mut rx) = (context(), context());
        let mut seq = 0u16;
        let mut batch = vec![rtp(); 256];
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(batch.len() as u64) as usize;
                for p in &mut batch[..n] {
                    seq = seq.wrapping_add(1);
                    p[2..4].copy_from_slice(&seq.to_be_bytes());
                    tx.protect_rtp(p, HEADER + PAYLOAD).expect("protect");
                }
                let start = Instant::now();
                for p in &mut batch[..n] {
                    black_box(rx.unprotect_rtp(black_box(p)).expect("unprotect"));
                }
                timed += start.elapsed();
                left -= n as u64;
            }
            timed
        });
    });

    // The budget with the primitives used as the srtp crate uses them (`keysim bench`'s
    // crypto_budget_pps): the one-pass transform, no SRTP framing.
    group.bench_function("crypto_budget", |b| {
        let aes = Aes128::new(&[0x3c; 16].into());
        let mac = srtp::transform::HmacSha1Key::new(&[0x5c; 20]);
        let salt = [0x17u8; 14];
        let mut buf = rtp();
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            let roc = 0u32;
            let iv = srtp::aes_cm::packet_iv(&salt, SSRC, (u64::from(roc) << 16) | u64::from(seq));
            let packet = &mut buf[..HEADER + PAYLOAD];
            let tag = srtp::transform::encrypt_and_authenticate(
                &aes,
                &iv,
                &mac,
                packet,
                HEADER,
                &roc.to_be_bytes(),
            );
            buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
            black_box(&buf);
        });
    });

    // The former budget: the ctr and hmac crates one after the other (crypto_budget_sequential_pps).
    group.bench_function("crypto_budget_sequential", |b| {
        let aes = Aes128::new(&[0x3c; 16].into());
        let mac = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&[0x5c; 20]).expect("key");
        let salt = [0x17u8; 14];
        let mut buf = rtp();
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            let roc = 0u32;
            let index = (u64::from(roc) << 16) | u64::from(seq);
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(&salt);
            for (x, s) in iv[4..8].iter_mut().zip(SSRC.to_be_bytes()) {
                *x ^= s;
            }
            for (x, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
                *x ^= s;
            }
            let mut cm = ctr::Ctr128BE::<&Aes128>::from_core(ctr::CtrCore::inner_iv_init(&aes, (&iv).into()));
            cm.apply_keystream(&mut buf[HEADER..HEADER + PAYLOAD]);
            let mut m = mac.clone();
            m.update(&buf[..HEADER + PAYLOAD]);
            m.update(&roc.to_be_bytes());
            let tag = m.finalize().into_bytes();
            buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
            black_box(&buf);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
