//! Nonces, opaque values and RANDs of the simulated peers (RFC 2617 §3.2.1 nonce, TS 33.220 §4.5.2
//! RAND): SHA-256(seed ‖ counter). Unique per run, reproducible from a fixed seed for tests; not a
//! cryptographic RNG for real networks.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// A counter-mode generator over SHA-256.
pub(crate) struct RandSource {
    seed: [u8; 32],
    counter: u64,
}

impl RandSource {
    /// From `seed`, or, when `None`, from the operating system's randomness (std's `RandomState`
    /// keys), the time and the process ID.
    pub(crate) fn new(seed: Option<[u8; 32]>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = Sha256::new();
            for i in 0..4u64 {
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(i);
                h.update(hasher.finish().to_be_bytes());
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            h.update(now.as_nanos().to_be_bytes());
            h.update(std::process::id().to_be_bytes());
            h.finalize().into()
        });
        RandSource { seed, counter: 0 }
    }

    fn block(&mut self) -> [u8; 32] {
        self.counter += 1;
        Sha256::new().chain_update(self.seed).chain_update(self.counter.to_be_bytes()).finalize().into()
    }

    /// The next 16 octets (a RAND).
    pub(crate) fn next(&mut self) -> [u8; 16] {
        let d = self.block();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }

    /// The next `n` (at most 32) octets, hex-encoded.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        let d = self.block();
        hex::encode(&d[..n.min(32)])
    }
}

#[cfg(test)]
mod tests {
    use super::RandSource;

    #[test]
    fn same_seed_same_sequence_other_seed_differs() {
        let (mut a, mut b) = (RandSource::new(Some([1; 32])), RandSource::new(Some([1; 32])));
        assert_eq!(a.next(), b.next());
        assert_eq!(a.hex(8), b.hex(8));
        assert_eq!(a.hex(8).len(), 16);
        assert_ne!(RandSource::new(None).next(), RandSource::new(None).next());
    }
}
