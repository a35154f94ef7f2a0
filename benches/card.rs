//! Criterion benchmarks of the in-process card through `Session<Emulator>`:
//! - raw APDU rate with SELECT MF (TS 102 221 §11.1.1), the cheapest command every UICC answers;
//! - MTK Generation (AUTHENTICATE, MBMS context, TS 31.102 §7.1): one MIKEY MTK message in, MTK
//!   and salt out;
//! - MSK Update: one MIKEY MSK message in, verified and stored (journaled NVM writes).
//!
//! The MBMS benchmarks set the card up with the network side of `test_kit::mbms_run`
//! (bootstrap, B-TID, NAF derivation, a first MSK); a card that refuses any of it is reported and
//! those benchmarks are skipped. Figures only: nothing here asserts a time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sim_reader::{CardProfile, Emulator, Protocol};
use test_kit::mbms_run::{self, Bmsc, CardLink, Delivered, Subscriber};

/// SELECT MF by file ID, no data returned (TS 102 221 §11.1.1).
const SELECT_MF: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];

/// A card with a MUK and one MSK, and the BM-SC that knows them.
struct Ready {
    link: CardLink<Emulator>,
    bmsc: Bmsc,
    msk: Delivered,
}

fn set_up(protocol: Protocol) -> Result<Ready, String> {
    let profile = CardProfile::default();
    let card = Emulator::new(&profile).map_err(|e| e.to_string())?.with_protocol(protocol);
    let mut link = CardLink::new(card);
    link.record = false;
    let mut sub = Subscriber::from_profile(&profile);
    mbms_run::open_usim(&mut link, &sub)?;
    let boot =
        mbms_run::bootstrap(&mut link, &mut sub, mbms_run::material("bench rand", 0), mbms_run::LIFETIME_2)?;
    mbms_run::write_btid(&mut link, &boot)?;
    let keys = mbms_run::derive_naf_keys(&mut link, &sub, &boot)?;
    let mut bmsc = Bmsc::new(&sub, &boot, &keys);
    let msk = mbms_run::deliver_msk(&mut link, &mut bmsc, 0x0001_0001, mbms_run::ntp(1_956_528_000), false)?;
    Ok(Ready { link, bmsc, msk })
}

fn select_mf(c: &mut Criterion) {
    let mut group = c.benchmark_group("in-process");
    group.throughput(Throughput::Elements(1));
    for protocol in [Protocol::T1, Protocol::T0] {
        let card = Emulator::new(&CardProfile::default()).expect("card").with_protocol(protocol);
        let mut session = sim_reader::Session::new(card);
        group.bench_function(format!("SELECT MF APDU ({protocol})"), |b| {
            b.iter(|| black_box(session.transmit_apdu(black_box(&SELECT_MF)).expect("SELECT MF")))
        });
    }
    group.finish();
}

/// Sends `messages` in order through `iters` timed iterations; when they run out, `restart`
/// (untimed) gives a card on which they are valid again.
fn timed_stream(
    iters: u64,
    ready: &mut Ready,
    next: &mut usize,
    messages: &[Vec<u8>],
    restart: &mut dyn FnMut(&mut Ready),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut remaining = iters;
    while remaining > 0 {
        if *next == messages.len() {
            restart(ready);
            *next = 0;
        }
        let batch = remaining.min((messages.len() - *next) as u64);
        let start = Instant::now();
        for _ in 0..batch {
            let ex = ready.link.send("bench", &messages[*next]).expect("transport");
            assert_eq!(ex.sw(), mbms_run::sw::OK, "message {} refused", *next);
            *next += 1;
            black_box(ex);
        }
        total += start.elapsed();
        remaining -= batch;
    }
    total
}

/// MTK IDs are 2 bytes on the wire and must grow: this many messages, then a fresh card.
const MTK_MESSAGES: u32 = 8192;

fn mtk_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("in-process");
    group.throughput(Throughput::Elements(1));
    for protocol in [Protocol::T1, Protocol::T0] {
        let mut ready = match set_up(protocol) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("MTK Generation benchmark skipped: the card refused the set-up: {e}");
                return;
            }
        };
        // Set-up is deterministic, so these messages are valid again on every fresh card.
        let messages: Vec<Vec<u8>> = (1..=MTK_MESSAGES)
            .map(|id| {
                let (msk_id, msk) = (ready.msk.msk_id, ready.msk.msk);
                let msg = ready
                    .bmsc
                    .keys
                    .mtk_message(msk_id, &msk, id, id, &[0x5A; 16], Some(&[0xA5; 14]))
                    .expect("MTK message");
                mbms_run::mbms(mbms_run::mode::MTK_GENERATION, &msg)
            })
            .collect();
        match ready.link.expect("MTK Generation", &messages[0], mbms_run::sw::OK) {
            Ok(ex) => eprintln!("MTK Generation ({protocol}): {} APDUs per MTK update", ex.apdu_count()),
            Err(e) => {
                eprintln!("MTK Generation benchmark skipped: {e}");
                return;
            }
        }
        let mut next = 1;
        let mut restart = |r: &mut Ready| *r = set_up(protocol).expect("the set-up worked once");
        group.bench_function(format!("MTK Generation ({protocol})"), |b| {
            b.iter_custom(|iters| timed_stream(iters, &mut ready, &mut next, &messages, &mut restart))
        });
    }
    group.finish();
}

/// MSK IDs of the benchmark: key numbers 2 to this in Key Group 1, then the group is deleted.
const MSK_MESSAGES: u32 = 4096;

fn msk_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("in-process");
    group.throughput(Throughput::Elements(1));
    let mut ready = match set_up(Protocol::T1) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("MSK Update benchmark skipped: the card refused the set-up: {e}");
            return;
        }
    };
    // Growing MSK IDs and timestamps (the MUK's replay counter); at most two MSKs are kept.
    let mut round: u64 = 0;
    let batch = |bmsc: &mut Bmsc, round: u64| -> Vec<Vec<u8>> {
        (0..u64::from(MSK_MESSAGES))
            .map(|i| {
                let id = 0x0001_0002 + i as u32;
                let t = mbms_run::ntp(1_956_528_000 + 1 + round * u64::from(MSK_MESSAGES) + i);
                mbms_run::mbms(mbms_run::mode::MSK_UPDATE, &bmsc.msk_message(id, &[0x3C; 16], t, false))
            })
            .collect()
    };
    let messages = batch(&mut ready.bmsc, round);
    if let Err(e) = ready.link.expect("MSK Update", &messages[0], mbms_run::sw::OK) {
        eprintln!("MSK Update benchmark skipped: {e}");
        return;
    }
    let messages = std::cell::RefCell::new(messages);
    let mut next = 1;
    group.bench_function("MSK Update (T=1)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut remaining = iters;
            while remaining > 0 {
                if next == MSK_MESSAGES as usize {
                    // Untimed: delete Key Group 1 and build the next round (later timestamps).
                    mbms_run::delete_msks(&mut ready.link, &ready.bmsc, 1).expect("MSK Deletion");
                    round += 1;
                    *messages.borrow_mut() = batch(&mut ready.bmsc, round);
                    next = 0;
                }
                let m = messages.borrow();
                let n = remaining.min((m.len() - next) as u64);
                let start = Instant::now();
                for _ in 0..n {
                    let ex = ready.link.send("MSK Update", &m[next]).expect("transport");
                    assert_eq!(ex.sw(), mbms_run::sw::OK, "MSK Update {next} refused");
                    black_box(ex);
                    next += 1;
                }
                total += start.elapsed();
                remaining -= n;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, select_mf, mtk_generation, msk_update);
criterion_main!(benches);
