//! Shared helpers of the integration tests: oracle discovery and test messages.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// True when CI demands that every external oracle (tshark, python3) is present.
pub fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").map(|v| v == "1").unwrap_or(false)
}

/// Reports a missing oracle: fails under KEYSIM_REQUIRE_ORACLES=1, otherwise prints why the test
/// is skipped. Returns normally only when skipping is allowed.
pub fn oracle_missing(what: &str) {
    if oracles_required() {
        panic!("{what} is required (KEYSIM_REQUIRE_ORACLES=1) but not available");
    }
    eprintln!("skipping: {what} not available");
}

/// True if `cmd args...` runs and exits with status 0.
pub fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A small deterministic generator for test inputs (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.iter_mut().for_each(|b| *b = self.next_u64() as u8);
        a
    }
}

use mikey::mbms::{
    KeyDomainId, MskId, MskMessageParams, MtkId, MtkMessageParams, SolicitedPullParams, profile,
};
use mikey::{
    CsIdMap, KeyValidity, ProtType, SecurityPolicy, SpParam, SpParams, SrtpIdEntries, SrtpIdEntry, Timestamp,
};

pub const MUK: [u8; 32] = *b"\x4d\x55\x4b\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\
\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d";
pub const MSK: [u8; 16] = *b"\x4d\x53\x4b\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac";
pub const MTK: [u8; 16] = *b"\x4d\x54\x4b\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc";
pub const SALT: [u8; 14] = *b"\x53\x41\x4c\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca";
pub const RAND: [u8; 16] = *b"\x52\x41\x4e\x44\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b";
pub const BMSC_FQDN: &[u8] = b"bmsc.mnc001.mcc001.pub.3gppnetwork.org";
pub const B_TID: &[u8] = b"dGVzdC1idGlk@bsf.mnc001.mcc001.pub.3gppnetwork.org";
pub const KEY_DOMAIN: KeyDomainId = KeyDomainId([0x00, 0xF1, 0x10]);
pub const MSK_ID: MskId = MskId(0x0102_0007);
pub const MTK_ID: MtkId = MtkId(0x0203);
pub const MSK_CSB: u32 = 0x0102_0000;
pub const MTK_CSB: u32 = 0x0000_0203;

pub fn msk_params(v_bit: bool, counter: u32) -> MskMessageParams<'static> {
    MskMessageParams {
        csb_id: MSK_CSB,
        v_bit,
        timestamp: Timestamp::Counter(counter),
        rand: &RAND,
        idi: BMSC_FQDN,
        idr: B_TID,
        key_domain_id: KEY_DOMAIN,
        msk_id: MSK_ID,
        cs_id_map: CsIdMap::Empty { cs_count: profile::EMPTY_MAP_CS_COUNT },
        policy: None,
        validity: KeyValidity::Interval { from: &[0x00, 0x01], to: &[0xff, 0xff] },
    }
}

pub fn pull_params(counter: u32) -> SolicitedPullParams<'static> {
    SolicitedPullParams {
        csb_id: MSK_CSB,
        timestamp: Timestamp::Counter(counter),
        rand: &RAND,
        idi: BMSC_FQDN,
        idr: B_TID,
        key_domain_id: KEY_DOMAIN,
        key_group: MSK_ID.key_group(),
    }
}

pub static SRTP_ENTRIES: [SrtpIdEntry; 1] = [SrtpIdEntry { policy_no: 0, ssrc: 0x1234_5678, roc: 0 }];
pub static SRTP_PARAMS: [SpParam<'static>; 6] = [
    SpParam { param_type: 0, value: &[1] },
    SpParam { param_type: 1, value: &[16] },
    SpParam { param_type: 2, value: &[1] },
    SpParam { param_type: 4, value: &[14] },
    SpParam { param_type: 5, value: &[0] },
    SpParam { param_type: 11, value: &[10] },
];

/// MTK message parameters; with `streaming` the message carries an SRTP-ID map and an SP payload.
pub fn mtk_params(counter: u32, streaming: bool) -> MtkMessageParams<'static> {
    MtkMessageParams {
        csb_id: MTK_CSB,
        timestamp: Timestamp::Counter(counter),
        rand: None,
        key_domain_id: KEY_DOMAIN,
        msk_id: MSK_ID,
        mtk_id: MTK_ID,
        cs_id_map: if streaming {
            CsIdMap::SrtpId(SrtpIdEntries::from_items(&SRTP_ENTRIES))
        } else {
            CsIdMap::Empty { cs_count: profile::EMPTY_MAP_CS_COUNT }
        },
        policy: streaming.then(|| SecurityPolicy {
            policy_no: 0,
            prot_type: ProtType::SRTP,
            params: SpParams::from_items(&SRTP_PARAMS),
        }),
        validity: KeyValidity::Null,
    }
}
