//! The step report of an MBMS UE run (TS 33.246 §6: bootstrap, NAF keys, registration, MSK push,
//! MTK updates, media, deregistration), as `keysim demo --json` and `keysim ue --json` print it:
//! one [`PathReport`] per key-management path, each a list of timed [`Step`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::key_management::KeyManagementPath;
use crate::ue::UeStats;

/// One procedure of a run: whether it succeeded, how long it took, what it did or why it failed.
#[derive(Debug, Serialize, Clone)]
pub struct Step {
    /// Its name (`power_on`, `gba_bootstrap`, `naf_derivation`, `registration`, `msk_push`,
    /// `mtk_update`, `media`, `msk_rotation`, `solicited_pull`, `deregistration`, `media_check`).
    pub name: &'static str,
    /// It succeeded.
    pub ok: bool,
    /// Its wall time in milliseconds.
    pub latency_ms: f64,
    /// What it did, or why it failed.
    pub detail: String,
}

impl Step {
    /// A step that took `elapsed`.
    pub fn new(name: &'static str, ok: bool, elapsed: Duration, detail: String) -> Self {
        Step { name, ok, latency_ms: elapsed.as_secs_f64() * 1e3, detail }
    }
}

/// The steps of a run as they happen: each is recorded and shown to a caller's hook as it ends.
pub struct StepLog<'a> {
    steps: Vec<Step>,
    on_step: Box<dyn FnMut(&Step) + 'a>,
}

impl<'a> StepLog<'a> {
    /// An empty log calling `on_step` for each step as it ends.
    pub fn new(on_step: impl FnMut(&Step) + 'a) -> Self {
        StepLog { steps: Vec::new(), on_step: Box::new(on_step) }
    }

    /// Records a step measured by the caller.
    pub fn record(&mut self, name: &'static str, ok: bool, elapsed: Duration, detail: String) {
        let s = Step::new(name, ok, elapsed, detail);
        (self.on_step)(&s);
        self.steps.push(s);
    }

    /// Runs `f` (which gives a value and the step's detail), records it as a step (failed: with
    /// the error's text) and passes its result on.
    pub fn step<T, E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<(T, String), E>,
    ) -> Result<T, E> {
        let start = std::time::Instant::now();
        match f() {
            Ok((v, detail)) => {
                self.record(name, true, start.elapsed(), detail);
                Ok(v)
            }
            Err(e) => {
                self.record(name, false, start.elapsed(), format!("{e:#}"));
                Err(e)
            }
        }
    }

    /// The steps so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The steps.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

impl core::fmt::Debug for StepLog<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StepLog").field("steps", &self.steps).finish_non_exhaustive()
    }
}

/// One key-management path of a run.
#[derive(Debug, Serialize, Default)]
pub struct PathReport {
    /// Every step succeeded (and the media checks held).
    pub ok: bool,
    /// "UICC-based" or "ME-based".
    pub path: &'static str,
    /// "GBA_U" or "GBA_ME".
    pub gba: &'static str,
    /// Where the keys live.
    pub keys_held_by: &'static str,
    /// The B-TID of the run.
    pub btid: String,
    /// User Services registered.
    pub services: usize,
    /// SRTP packets the BM-SC sent (0 when the UE cannot know).
    pub packets_sent: u64,
    /// SRTP packets received.
    pub packets_received: u64,
    /// SRTP packets decrypted.
    pub packets_decrypted: u64,
    /// SRTP packets refused.
    pub packets_failed: u64,
    /// The decrypted media equals the source.
    pub media_match: bool,
    /// MSKs accepted.
    pub msk_count: u64,
    /// MTKs accepted.
    pub mtk_count: u64,
    /// Basic MSK requests sent.
    pub basic_msk_requests: u64,
    /// Bootstraps the UE ran on its own.
    pub rebootstraps: u64,
    /// MIKEY datagrams dropped.
    pub mikey_dropped: u64,
    /// "http" or "sip".
    pub signalling: &'static str,
    /// With SIP signalling: the SCF's count of INVITEs (when the SCF is in the process).
    pub scf_invites: Option<u64>,
    /// … of re-INVITEs.
    pub scf_reinvites: Option<u64>,
    /// … of posts to the BM-SC.
    pub scf_bmsc_requests: Option<u64>,
    /// APDUs exchanged with the card.
    pub apdus: usize,
    /// Power-on to the first decrypted packet.
    pub time_to_first_media_ms: Option<f64>,
    /// SHA-256 over the decrypted payloads, in the order of decryption.
    pub media_sha256: String,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// Each step's latency by name.
    pub latency_ms: BTreeMap<&'static str, f64>,
    /// The error that ended the run early.
    pub error: Option<String>,
}

impl PathReport {
    /// An empty report of `path` with its names filled in.
    pub fn for_path(path: KeyManagementPath, services: usize) -> Self {
        PathReport {
            path: match path {
                KeyManagementPath::UiccBased => "UICC-based",
                KeyManagementPath::MeBased => "ME-based",
            },
            gba: match path {
                KeyManagementPath::UiccBased => "GBA_U",
                KeyManagementPath::MeBased => "GBA_ME",
            },
            keys_held_by: match path {
                KeyManagementPath::UiccBased => "UICC (Ks, MUK, MSK); ME: MRK, MTK",
                KeyManagementPath::MeBased => "ME (Ks_NAF, MUK, MRK, MSK, MTK)",
            },
            services,
            ..PathReport::default()
        }
    }

    /// Copies the UE's counters in.
    pub fn fill(&mut self, s: &UeStats) {
        self.packets_received = s.packets_received;
        self.packets_decrypted = s.packets_decrypted;
        self.packets_failed = s.packets_failed;
        self.msk_count = s.msk_count;
        self.mtk_count = s.mtk_count;
        self.basic_msk_requests = s.basic_msk_requests;
        self.rebootstraps = s.rebootstraps;
        self.mikey_dropped = s.mikey_dropped;
    }

    /// Sets [`Self::steps`] and [`Self::latency_ms`] from `steps`.
    pub fn set_steps(&mut self, steps: Vec<Step>) {
        self.latency_ms = steps.iter().map(|s| (s.name, s.latency_ms)).collect();
        self.steps = steps;
    }
}

/// A whole run: the card, the services, the paths.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The card ("emulated card (…)" or "PC/SC reader …").
    pub card: String,
    /// User Services.
    pub services: u16,
    /// Seconds of media.
    pub duration_s: f64,
    /// Each path's report by tag ("uicc", "me").
    pub paths: BTreeMap<&'static str, PathReport>,
    /// With both paths: whether they decrypted the same media.
    pub media_identical_across_paths: Option<bool>,
    /// Everything succeeded.
    pub ok: bool,
}

/// The tag of a path in [`Report::paths`] and on the command line.
pub fn path_tag(path: KeyManagementPath) -> &'static str {
    match path {
        KeyManagementPath::UiccBased => "uicc",
        KeyManagementPath::MeBased => "me",
    }
}
