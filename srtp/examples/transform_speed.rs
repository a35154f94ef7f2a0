//! Packets per second of the SRTP transform under each strategy, against the `ctr` + `hmac`
//! crates used one after the other and the two primitives alone, 12-byte header + 1200-byte
//! payload (a quick check beside `keysim bench`; wall clock, so only meaningful on a quiet machine).
use std::hint::black_box;
use std::time::Instant;

use aes::Aes128;
use aes::cipher::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use srtp::transform::{
    HmacSha1Key, Strategy, aes_batch, authenticate_and_keystream_with, encrypt_and_authenticate_with,
    keystream_len,
};

fn rate(mut f: impl FnMut()) -> f64 {
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed().as_secs_f64() < 0.3 {
            for _ in 0..256 {
                f();
            }
            n += 256;
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let aes = Aes128::new(&[0x3c; 16].into());
    let key = HmacSha1Key::new(&[0x5c; 20]);
    let hk = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&[0x5c; 20]).expect("key");
    let mut buf = vec![0xa5u8; 1212];
    let iv = [7u8; 16];
    let roc = [0u8; 4];
    println!("this CPU: {}", Strategy::for_this_cpu().describe(aes_batch()));
    let seq = rate(|| {
        srtp::aes_cm::apply_keystream(&aes, &iv, &mut buf[12..]);
        let mut m = hk.clone();
        m.update(&buf);
        m.update(&roc);
        black_box(m.finalize());
    });
    let aes_only = rate(|| srtp::transform::xor_keystream(&aes, &iv, black_box(&mut buf[12..])));
    let mac_only = rate(|| {
        black_box(key.mac(&buf, &roc));
    });
    println!("ctr + hmac {seq:.0}  aes-ctr only {aes_only:.0}  hmac only {mac_only:.0}");
    let mut ks = [0u8; 2048];
    let n = keystream_len(1200);
    for strategy in Strategy::ALL {
        let protect = rate(|| {
            black_box(encrypt_and_authenticate_with(strategy, &aes, &iv, &key, &mut buf, 12, &roc));
        });
        let unprotect = if strategy == Strategy::Sequential {
            // MAC first, decryption after the check (what the context does with this strategy).
            rate(|| {
                black_box(key.mac(&buf, &roc));
                srtp::transform::xor_keystream(&aes, &iv, &mut buf[12..]);
            })
        } else {
            rate(|| {
                let (tag, _) =
                    authenticate_and_keystream_with(strategy, &aes, &iv, &key, &mut buf, 12, &roc, &mut ks);
                srtp::transform::apply(&mut buf[12..], &ks[..n]);
                black_box(tag);
            })
        };
        println!("{:<12} protect {protect:.0}  unprotect {unprotect:.0}", strategy.name());
    }
}
