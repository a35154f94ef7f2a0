//! SRTP protect and unprotect throughput: 1200-byte payload, AES_CM_128_HMAC_SHA1_80 (RFC 3711).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};

const PAYLOAD: usize = 1200;
const HEADER: usize = 12;
const SSRC: u32 = 0xdead_beef;

fn context() -> SrtpContext {
    let key = MasterKey::new([0x2b; 16], [0x17; 14], []);
    SrtpContext::new(Policy::new(CryptoSuite::Aes128CmHmacSha1_80), [key]).expect("context")
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0xa5u8; HEADER + PAYLOAD + 10];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&SSRC.to_be_bytes());
    p
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));

    group.bench_function("protect_rtp_1200B_sha1_80", |b| {
        let mut tx = context();
        let mut buf = rtp(0);
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            black_box(tx.protect_rtp(black_box(&mut buf), HEADER + PAYLOAD).expect("protect"));
        });
    });

    group.bench_function("unprotect_rtp_1200B_sha1_80", |b| {
        // Packets are protected in untimed batches; only unprotect is timed.
        let mut tx = context();
        let mut rx = context();
        let mut seq = 0u16;
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(1024);
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1024) as usize;
                batch.clear();
                for _ in 0..n {
                    seq = seq.wrapping_add(1);
                    let mut p = rtp(seq);
                    tx.protect_rtp(&mut p, HEADER + PAYLOAD).expect("protect");
                    batch.push(p);
                }
                let start = Instant::now();
                for p in &mut batch {
                    black_box(rx.unprotect_rtp(black_box(p)).expect("unprotect"));
                }
                timed += start.elapsed();
                left -= n as u64;
            }
            timed
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
