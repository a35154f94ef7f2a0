//! Timing for the benches: this thread's CPU clock, rates over a CPU-time budget, and commands
//! run with a time limit. The per-core figures of `keysim bench` divide by this clock.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, bail};

/// Runs of each figure; the best is kept.
pub const REPS: usize = 3;
/// Steps between two readings of the clock.
const CLOCK_EVERY: u64 = 256;

/// The CPU time this thread has run, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (which asks
/// the scheduler for the running time up to now; `/proc/thread-self/schedstat`, read here
/// before, only advances at scheduler ticks, 4 ms apart, so a timed batch of unprotects read 0
/// or a whole tick). The per-core figures divide by this clock, not by the wall clock: on a
/// machine shared with other work, time the thread spent waiting for a core is not counted
/// against it (the peers are timed the same way: Python's `time.thread_time()`, the C harness's
/// and the Rust peers' `CLOCK_THREAD_CPUTIME_ID`, `openssl speed`'s user time). Falls back to the
/// wall clock where that clock is missing.
struct CpuClock {
    cpu_time: bool,
    wall: Instant,
}

impl CpuClock {
    fn new() -> Self {
        CpuClock { cpu_time: thread_cpu_time().is_some(), wall: Instant::now() }
    }

    /// Now, on this clock.
    fn now(&self) -> Duration {
        match thread_cpu_time().filter(|_| self.cpu_time) {
            Some(t) => t,
            None => self.wall.elapsed(),
        }
    }

    /// Whether this is the thread's CPU time (else the wall clock).
    fn is_cpu_time(&self) -> bool {
        self.cpu_time
    }
}

/// This thread's CPU time.
#[allow(unsafe_code)]
fn thread_cpu_time() -> Option<Duration> {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; clock_gettime writes only it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    (rc == 0).then(|| Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), t.tv_nsec as u32))
}

thread_local! {
    static CLOCK: CpuClock = CpuClock::new();
}

/// Now, on this thread's clock.
pub fn cpu_now() -> Duration {
    CLOCK.with(CpuClock::now)
}

/// Whether this thread's clock is its CPU time (else the wall clock).
pub fn is_cpu_time() -> bool {
    CLOCK.with(CpuClock::is_cpu_time)
}

/// Calls `step` until `secs` of this thread's CPU time have passed; returns calls per second.
pub fn rate(secs: f64, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    let wall = Instant::now();
    let start = cpu_now();
    let mut n = 0u64;
    loop {
        for _ in 0..CLOCK_EVERY {
            step()?;
        }
        n += CLOCK_EVERY;
        // The wall clock is cheap; the CPU clock is read only when the wall clock says it may be
        // time (CPU time never runs ahead of wall time).
        if wall.elapsed().as_secs_f64() >= secs {
            let t = (cpu_now() - start).as_secs_f64();
            if t >= secs {
                return Ok(n as f64 / t);
            }
        }
    }
}

/// Runs `batch` (which returns how many operations it timed and how long they took) until
/// `secs` of timed work; returns operations per second.
pub fn rate_timed(secs: f64, mut batch: impl FnMut() -> Result<(u64, Duration)>) -> Result<f64> {
    let (mut n, mut timed) = (0u64, Duration::ZERO);
    while timed.as_secs_f64() < secs {
        let (k, t) = batch()?;
        n += k;
        timed += t;
    }
    Ok(n as f64 / timed.as_secs_f64())
}

/// The warm-up before the timed runs.
pub fn warm_up(secs: f64) -> f64 {
    (secs / 5.0).clamp(0.01, 0.2)
}

/// Runs a command with a time limit; returns its stdout.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no answer within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
