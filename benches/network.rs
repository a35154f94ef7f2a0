//! Criterion benchmarks of MBMS security end to end on loopback (TS 33.246 §6.1–§6.3 over GBA,
//! TS 24.109 §5), the ME's `me::Ue` on the in-process card against the BSF and BM-SC of
//! `network`:
//! - power-on to the first decrypted SRTP packet, UICC-based (GBA_U) and ME-based (GBA_ME);
//! - MTK updates sustained end to end (BM-SC MTK message → UDP → UE → MTK Generation on the card
//!   or derivation in the ME → SRTP context), each path;
//! - BM-SC registrations over HTTP Digest: one nonce with a rising nonce count, and for reference
//!   a fresh challenge per registration (the same client, and the UE's own `me::BmscClient`).
//!
//! The measuring code is `harness::netbench`, shared with `keysim bench`; each measured unit is
//! checked there (decrypted payloads equal the test signal, MKIs, the BM-SC's counters). Figures
//! only: nothing here asserts a time.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::netbench::{self, Challenges, MtkRig, Network, Registrations};
use me::KeyManagementPath;
use sim_reader::{CardProfile, Emulator};

const PATHS: [KeyManagementPath; 2] = [KeyManagementPath::UiccBased, KeyManagementPath::MeBased];
/// Cold starts whose phases are printed before each power-on benchmark.
const PHASE_RUNS: usize = 21;

/// A factory-fresh card of the built-in profile, as an NVM image: each UE gets its own copy.
fn card_image(profile: &CardProfile) -> Vec<u8> {
    Emulator::new(profile).expect("personalizing the card").nvm_image().to_vec()
}

fn tag(path: KeyManagementPath) -> &'static str {
    match path {
        KeyManagementPath::UiccBased => "UICC-based GBA_U",
        KeyManagementPath::MeBased => "ME-based GBA_ME",
    }
}

fn power_on_to_first_media(c: &mut Criterion) {
    let profile = CardProfile::default();
    let image = card_image(&profile);
    let mut group = c.benchmark_group("network");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    for path in PATHS {
        let mut net = Network::start(&profile).expect("BSF and BM-SC");
        // Where the time goes: the phases of the median of a few cold starts.
        let mut timelines: Vec<_> = (0..PHASE_RUNS)
            .map(|_| {
                let first = netbench::power_on_to_first_media(&mut net, path, || {
                    Ok(Emulator::from_image(image.clone())?)
                })
                .expect("power-on to first media");
                net.power_off(first.ue).expect("power-off");
                first.timeline
            })
            .collect();
        timelines.sort_by_key(|t| t.total());
        eprintln!("{}: median of {PHASE_RUNS} cold starts {}", tag(path), timelines[PHASE_RUNS / 2]);
        group.bench_function(format!("power-on to first media ({})", tag(path)), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let first = netbench::power_on_to_first_media(&mut net, path, || {
                        Ok(Emulator::from_image(image.clone())?)
                    })
                    .expect("power-on to first media");
                    total += first.timeline.total();
                    net.power_off(first.ue).expect("power-off");
                }
                total
            })
        });
    }
    group.finish();
}

fn mtk_updates(c: &mut Criterion) {
    let profile = CardProfile::default();
    let image = card_image(&profile);
    let mut group = c.benchmark_group("network");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for path in PATHS {
        let mut rig =
            MtkRig::start(path, &profile, || Ok(Emulator::from_image(image.clone())?)).expect("UE up");
        group.bench_function(format!("MTK update end to end ({})", tag(path)), |b| {
            b.iter_custom(|iters| rig.run(iters).expect("MTK updates"))
        });
        rig.finish().expect("power-off");
    }
    group.finish();
}

/// Each variant talks to a BM-SC of its own: a new server port, so that the TIME-WAIT connections
/// of the variant before (all from 127.0.0.1) cannot collide with its new ones. A run stays below
/// the ephemeral port range (28 232 ports) within the 60 s of TIME-WAIT; beyond that connects
/// slow down for reasons that have nothing to do with the BM-SC.
fn registrations(c: &mut Criterion) {
    let mut group = c.benchmark_group("network");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for how in Challenges::ALL {
        let mut bmsc = Registrations::start().expect("BM-SC");
        group.bench_function(format!("BM-SC registration ({})", how.name()), |b| {
            b.iter_custom(|iters| bmsc.run(how, iters).expect("registrations"))
        });
    }
    group.finish();
}

criterion_group!(benches, power_on_to_first_media, mtk_updates, registrations);
criterion_main!(benches);
