//! The per-packet SRTP transform: AES-CM (RFC 3711 §4.1.1) and HMAC-SHA1 (RFC 3711 §4.2.1,
//! RFC 2104) over the same bytes, scheduled for the CPU it runs on ([`Strategy`]).
//!
//! * [`Strategy::OnePass`]: SHA-1 is a chain of dependent rounds, and AES counter blocks are
//!   independent of each other and of the hash; issuing a few AES blocks between SHA-1 blocks
//!   lets a core whose AES and SHA units are apart run both at once (a Zen 3 with AES-NI).
//! * [`Strategy::Sequential`]: the whole keystream in the AES backend's widest batches, then the
//!   hash. Where AES and SHA-1 compete for the same execution units (a Xeon with VAES and
//!   AVX-512) nothing is gained by interleaving, and the wide batches need the fewest AES
//!   instructions.
//!
//! [`Strategy::for_this_cpu`] picks one from the AES backend the `aes` crate detected at run time
//! (no build-time `target-cpu`; CPUs without AES-NI get the constant-time software AES).
//!
//! * [`encrypt_and_authenticate`] (protect): the keystream is XORed into the payload before the
//!   hash reads it (a few blocks ahead in one pass).
//! * [`authenticate_and_keystream`] (unprotect): the hash reads the received ciphertext while the
//!   keystream goes to a separate buffer; the caller applies it only once the tag has been
//!   verified, so a packet that fails authentication is never decrypted. With the sequential
//!   strategy the caller computes the MAC alone ([`HmacSha1Key::mac`]) and, once the tag has
//!   verified, decrypts in place with [`xor_keystream`].
//!
//! HMAC-SHA1 starts from the inner and outer states of the padded key, hashed once per session
//! key ([`HmacSha1Key`]), and the SHA-1 compression function reads full 64-byte blocks straight
//! from the packet: no per-packet key hashing, no copy of the packet, no allocation. The primitives
//! are the `aes` and `sha1` crates' own (AES-NI / VAES and SHA-NI picked at run time).

use aes::Aes128;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
};
use sha1::block_api::compress;
use std::sync::OnceLock;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-1 block length (FIPS 180-4 §5.1.1).
const SHA1_BLOCK: usize = 64;
/// SHA-1 digest length.
pub const SHA1_DIGEST: usize = 20;
/// AES block length.
const AES_BLOCK: usize = 16;
/// The SHA-1 initial hash value (FIPS 180-4 §5.3.1).
const SHA1_H0: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
/// HMAC inner and outer pad bytes (RFC 2104 §2).
const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;
/// The widest AES backend batch (AES-NI: 8, the constant-time software AES: 2 or 4) that the
/// one-pass strategy issues whole; with wider ones (VAES: 30 or 64) it makes the keystream one
/// block at a time, which is why [`Strategies::for_aes_batch`] picks the sequential strategy for
/// them.
const SMALL_PAR_BATCH: usize = 8;

/// An HMAC-SHA1 key as the SHA-1 states after its inner and its outer padded key block
/// (RFC 2104 §2): per message, HMAC costs only the message's blocks and one outer block.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HmacSha1Key {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl HmacSha1Key {
    /// Keys HMAC-SHA1 with `key` (a key longer than the SHA-1 block is hashed first, RFC 2104 §2).
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; SHA1_BLOCK];
        if key.len() > SHA1_BLOCK {
            let mut digest = sha1_digest(key);
            block[..SHA1_DIGEST].copy_from_slice(&digest);
            digest.zeroize();
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut padded = block.map(|b| b ^ byte);
            let mut state = SHA1_H0;
            compress(&mut state, &[padded]);
            padded.zeroize();
            state
        };
        let keyed = HmacSha1Key { inner: pad(IPAD), outer: pad(OPAD) };
        block.zeroize();
        keyed
    }

    /// HMAC-SHA1 of `message ‖ trailer`.
    pub fn mac(&self, message: &[u8], trailer: &[u8]) -> [u8; SHA1_DIGEST] {
        let mut h = InnerHash::new(self, message.len() + trailer.len());
        let (blocks, _) = message.as_chunks::<SHA1_BLOCK>();
        h.blocks(blocks);
        h.finish(self, message, trailer)
    }
}

/// SHA-1 of a whole message (for over-long HMAC keys only).
fn sha1_digest(message: &[u8]) -> [u8; SHA1_DIGEST] {
    let mut state = SHA1_H0;
    let (blocks, _) = message.as_chunks::<SHA1_BLOCK>();
    compress(&mut state, blocks);
    let mut tail = [0u8; 2 * SHA1_BLOCK];
    let last = finish_blocks(&mut tail, &message[blocks.len() * SHA1_BLOCK..], &[], 8 * message.len() as u64);
    compress(&mut state, last);
    tail.zeroize();
    digest_bytes(&state)
}

/// The big-endian bytes of a SHA-1 state.
fn digest_bytes(state: &[u32; 5]) -> [u8; SHA1_DIGEST] {
    let mut out = [0u8; SHA1_DIGEST];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Writes `rest ‖ trailer ‖ 0x80 ‖ 0… ‖ bit length` (the FIPS 180-4 §5.1.1 padding) into `buf`
/// and returns the one or two final blocks. `rest` is shorter than a block, the trailer at most
/// a block long.
fn finish_blocks<'a>(
    buf: &'a mut [u8; 2 * SHA1_BLOCK],
    rest: &[u8],
    trailer: &[u8],
    bit_len: u64,
) -> &'a [[u8; SHA1_BLOCK]] {
    let n = rest.len() + trailer.len();
    buf[..rest.len()].copy_from_slice(rest);
    buf[rest.len()..n].copy_from_slice(trailer);
    buf[n] = 0x80;
    let blocks = if n + 1 + 8 <= SHA1_BLOCK { 1 } else { 2 };
    let end = blocks * SHA1_BLOCK;
    buf[n + 1..end - 8].fill(0);
    buf[end - 8..end].copy_from_slice(&bit_len.to_be_bytes());
    let (all, _) = buf.as_chunks::<SHA1_BLOCK>();
    &all[..blocks]
}

/// The inner hash of one message of known length, fed block by block.
struct InnerHash {
    state: [u32; 5],
    /// Full blocks of the message compressed so far.
    done: usize,
    /// The message length in bytes (without the key block).
    len: usize,
}

impl InnerHash {
    fn new(key: &HmacSha1Key, len: usize) -> Self {
        InnerHash { state: key.inner, done: 0, len }
    }

    /// Compresses the next full blocks.
    fn blocks(&mut self, blocks: &[[u8; SHA1_BLOCK]]) {
        compress(&mut self.state, blocks);
        self.done += blocks.len();
    }

    /// The rest of `message` (after the blocks already compressed) ‖ `trailer`, the padding, then
    /// the outer hash: the HMAC.
    fn finish(mut self, key: &HmacSha1Key, message: &[u8], trailer: &[u8]) -> [u8; SHA1_DIGEST] {
        let (blocks, _) = message.as_chunks::<SHA1_BLOCK>();
        if self.done < blocks.len() {
            compress(&mut self.state, &blocks[self.done..]);
        }
        let mut tail = [0u8; 2 * SHA1_BLOCK];
        let rest = &message[blocks.len() * SHA1_BLOCK..];
        // The key block counts in the bit length: (64 + len) * 8.
        let bit_len = 8 * (SHA1_BLOCK + self.len) as u64;
        compress(&mut self.state, finish_blocks(&mut tail, rest, trailer, bit_len));
        let inner = digest_bytes(&self.state);
        let mut outer = [0u8; SHA1_BLOCK];
        outer[..SHA1_DIGEST].copy_from_slice(&inner);
        outer[SHA1_DIGEST] = 0x80;
        outer[SHA1_BLOCK - 8..].copy_from_slice(&(8 * (SHA1_BLOCK + SHA1_DIGEST) as u64).to_be_bytes());
        let mut state = key.outer;
        compress(&mut state, &[outer]);
        // `tail` holds only message bytes and padding; the keyed states are wiped.
        self.state.zeroize();
        digest_bytes(&state)
    }
}

/// How one packet's AES-CM and HMAC-SHA1 are scheduled on the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The whole keystream first, in the AES backend's widest batches, then the whole hash in one
    /// SHA-1 call.
    Sequential,
    /// One pass: the hash runs in steps of `sha_blocks` SHA-1 blocks (one compression call each),
    /// and before each step the keystream of the following step is issued, so that the core runs
    /// AES and SHA-1 side by side. The keystream is made in the backend's parallel batches when
    /// they hold at most 8 blocks, one block at a time otherwise.
    OnePass {
        /// SHA-1 blocks per step (at least 1).
        sha_blocks: u8,
    },
}

/// The strategies of one CPU, for protect and for unprotect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Strategies {
    /// [`encrypt_and_authenticate`].
    pub protect: Strategy,
    /// [`authenticate_and_keystream`] (with [`Strategy::Sequential`], the caller computes the
    /// MAC alone and decrypts with [`xor_keystream`] once the tag has verified).
    pub unprotect: Strategy,
}

impl Strategy {
    /// Every strategy, as `keysim bench` measures them and the tests check them.
    pub const ALL: [Strategy; 4] = [
        Strategy::Sequential,
        Strategy::OnePass { sha_blocks: 1 },
        Strategy::OnePass { sha_blocks: 2 },
        Strategy::OnePass { sha_blocks: 4 },
    ];

    /// The strategies for this CPU: [`Strategies::for_aes_batch`] of the AES backend the `aes`
    /// crate picked for it at run time ([`aes_batch`]), decided once per process.
    pub fn for_this_cpu() -> Strategies {
        static CHOSEN: OnceLock<Strategies> = OnceLock::new();
        *CHOSEN.get_or_init(|| Strategies::for_aes_batch(aes_batch()))
    }

    /// A short name: `sequential`, `one-pass/1` (SHA-1 blocks per step).
    pub fn name(&self) -> String {
        match self {
            Strategy::Sequential => "sequential".to_owned(),
            Strategy::OnePass { sha_blocks } => format!("one-pass/{sha_blocks}"),
        }
    }
}

impl Strategies {
    /// The strategies for an AES backend with parallel batches of `batch` blocks, as measured
    /// (BENCHMARKS.md):
    /// * at most 8 blocks (AES-NI: 8, the software AES: 2 or 4): one pass, one SHA-1 block a
    ///   step, the keystream in whole batches: on a Zen 3 the core runs the AES-NI batches beside
    ///   the SHA-NI rounds, about 3 % over the `ctr` + `hmac` sequence there;
    /// * wider (VAES: 64 blocks with AVX-512; 30 with 256-bit registers, not measured):
    ///   sequential. On a Xeon
    ///   with VAES and AVX-512, AES and SHA-1 do not run side by side at all (computing the
    ///   keystream beside an independent MAC costs as much as computing it after), so what counts
    ///   is the fewest AES instructions, and one wide batch makes 64 blocks with 16 of them per
    ///   round; single blocks (the interleaved order) cost four times as many.
    pub fn for_aes_batch(batch: usize) -> Strategies {
        let one =
            if batch <= SMALL_PAR_BATCH { Strategy::OnePass { sha_blocks: 1 } } else { Strategy::Sequential };
        Strategies { protect: one, unprotect: one }
    }

    /// What `keysim bench` reports as `srtp_strategy`: the strategies and the AES backend, e.g.
    /// `sequential (AES batches of 64 blocks: VAES with AVX-512)`.
    pub fn describe(&self, aes_batch: usize) -> String {
        let backend = match aes_batch {
            64 => "VAES with AVX-512",
            30 => "VAES with AVX2",
            8 => "AES-NI",
            _ => "software AES",
        };
        let which = if self.protect == self.unprotect {
            self.protect.name()
        } else {
            format!("protect {}, unprotect {}", self.protect.name(), self.unprotect.name())
        };
        format!("{which} (AES batches of {aes_batch} blocks: {backend})")
    }
}

/// The parallel batch of the AES backend the `aes` crate picked for this CPU at run time.
pub fn aes_batch() -> usize {
    struct Probe<'a>(&'a mut usize);
    impl BlockSizeUser for Probe<'_> {
        type BlockSize = U16;
    }
    impl BlockCipherEncClosure for Probe<'_> {
        fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, _backend: &B) {
            *self.0 = B::ParBlocksSize::USIZE;
        }
    }
    let mut n = 0;
    Aes128::new(&Array([0; 16])).encrypt_with_backend(Probe(&mut n));
    n
}

/// One packet's pass, run inside the AES backend so that counter blocks go to it directly.
/// `OUT`: the keystream goes to `out` (unprotect); else it is XORed into `packet[enc_start..]`.
struct Pass<'a, const OUT: bool> {
    strategy: Strategy,
    packet: &'a mut [u8],
    enc_start: usize,
    counter: u128,
    /// As long as `packet[enc_start..]` rounded up to whole AES blocks (`OUT` only).
    out: &'a mut [u8],
    /// `None`: the keystream only (then the strategy is [`Strategy::Sequential`]).
    hash: Option<&'a mut InnerHash>,
}

impl<const OUT: bool> BlockSizeUser for Pass<'_, OUT> {
    type BlockSize = U16;
}

impl<const OUT: bool> Pass<'_, OUT> {
    /// Generates the keystream of payload blocks `from..to` with `backend` and XORs it into the
    /// packet or writes it out: in the backend's parallel batches when `batches` (a last wide
    /// batch may run past `to` when more than a quarter of it is needed: the blocks past `to` are
    /// dropped), else one block at a time.
    #[inline(always)]
    fn keystream<B: BlockCipherEncBackend<BlockSize = U16>>(
        &mut self,
        backend: &B,
        par_blocks: &mut Array<Array<u8, U16>, B::ParBlocksSize>,
        batches: bool,
        from: usize,
        to: usize,
    ) {
        let par = B::ParBlocksSize::USIZE;
        let mut at = from;
        if batches {
            while at < to && (to - at >= par || (par > SMALL_PAR_BATCH && 4 * (to - at) > par)) {
                let base = self.counter.wrapping_add(at as u128);
                let (high, low) = ((base >> 64) as u64, base as u64);
                if low.checked_add(par as u64).is_some() {
                    // No carry into the high half within this batch (always so in SRTP).
                    let high = high.to_be_bytes();
                    for (j, b) in par_blocks.iter_mut().enumerate() {
                        b[..8].copy_from_slice(&high);
                        b[8..].copy_from_slice(&(low + j as u64).to_be_bytes());
                    }
                } else {
                    for (j, b) in par_blocks.iter_mut().enumerate() {
                        *b = Array(base.wrapping_add(j as u128).to_be_bytes());
                    }
                }
                backend.encrypt_par_blocks(par_blocks.into());
                let n = par.min(to - at);
                self.put(at, &par_blocks[..n]);
                at += n;
            }
        }
        while at < to {
            let mut b = Array(self.counter.wrapping_add(at as u128).to_be_bytes());
            backend.encrypt_block((&mut b).into());
            self.put(at, core::slice::from_ref(&b));
            at += 1;
        }
    }

    /// Keystream blocks `n..` of the payload: XORed in, or written out.
    #[inline(always)]
    fn put(&mut self, n: usize, blocks: &[Array<u8, U16>]) {
        let from = n * AES_BLOCK;
        let to = from + blocks.len() * AES_BLOCK;
        if OUT {
            if let Some(out) = self.out.get_mut(from..to) {
                for (o, b) in out.as_chunks_mut::<AES_BLOCK>().0.iter_mut().zip(blocks) {
                    *o = b.0;
                }
            }
        } else {
            let payload = &mut self.packet[self.enc_start..];
            if let Some(whole) = payload.get_mut(from..to) {
                for (d, k) in whole.as_chunks_mut::<AES_BLOCK>().0.iter_mut().zip(blocks) {
                    *d = (u128::from_ne_bytes(*d) ^ u128::from_ne_bytes(k.0)).to_ne_bytes();
                }
            } else if let Some(rest) = payload.get_mut(from..) {
                // The packet's last, partial block.
                for (d, k) in rest.iter_mut().zip(Array::slice_as_flattened(blocks)) {
                    *d ^= k;
                }
            }
        }
    }

    /// AES blocks of the payload needed for the first `sha_blocks` SHA-1 blocks of the packet.
    fn aes_blocks_for(&self, sha_blocks: usize, aes_blocks: usize) -> usize {
        (sha_blocks * SHA1_BLOCK).saturating_sub(self.enc_start).div_ceil(AES_BLOCK).min(aes_blocks)
    }
}

impl<const OUT: bool> BlockCipherEncClosure for Pass<'_, OUT> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(mut self, backend: &B) {
        let mut par_blocks: Array<Array<u8, U16>, B::ParBlocksSize> = Default::default();
        let enc_len = self.packet.len() - self.enc_start;
        let aes_blocks = enc_len.div_ceil(AES_BLOCK);
        let sha_blocks = self.packet.len() / SHA1_BLOCK;
        let Some(hash) = self.hash.take() else {
            self.keystream(backend, &mut par_blocks, true, 0, aes_blocks);
            return;
        };
        match self.strategy {
            Strategy::Sequential => {
                self.keystream(backend, &mut par_blocks, true, 0, aes_blocks);
                let (blocks, _) = self.packet.as_chunks::<SHA1_BLOCK>();
                hash.blocks(blocks);
            }
            Strategy::OnePass { sha_blocks: step } => {
                let step = usize::from(step.max(1));
                let batches = B::ParBlocksSize::USIZE <= SMALL_PAR_BATCH;
                let mut aes_done = 0;
                let mut j = 0;
                while j < sha_blocks {
                    let end = (j + step).min(sha_blocks);
                    // Keystream up to one step beyond this one: in place, blocks j..end are then
                    // all ciphertext; and the next step's AES work is issued before this hash.
                    let upto = self.aes_blocks_for(end + step, aes_blocks);
                    if upto > aes_done {
                        self.keystream(backend, &mut par_blocks, batches, aes_done, upto);
                        aes_done = upto;
                    }
                    let (blocks, _) = self.packet.as_chunks::<SHA1_BLOCK>();
                    hash.blocks(&blocks[j..end]);
                    j = end;
                }
                if aes_done < aes_blocks {
                    self.keystream(backend, &mut par_blocks, batches, aes_done, aes_blocks);
                }
            }
        }
    }
}

/// Encrypts `packet[enc_start..]` in place with the AES-CM keystream that starts at `iv` and
/// returns HMAC-SHA1(`packet ‖ trailer`) over the ciphertext: the SRTP (or SRTCP) protect
/// transform, with the trailer the ROC (RFC 3711 §4.2). `enc_start` at most `packet.len()`;
/// the trailer at most 64 bytes. Scheduled as [`Strategy::for_this_cpu`] says.
pub fn encrypt_and_authenticate(
    cipher: &Aes128,
    iv: &[u8; 16],
    key: &HmacSha1Key,
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
) -> [u8; SHA1_DIGEST] {
    encrypt_and_authenticate_with(
        Strategy::for_this_cpu().protect,
        cipher,
        iv,
        key,
        packet,
        enc_start,
        trailer,
    )
}

/// [`encrypt_and_authenticate`] scheduled as `strategy` says.
pub fn encrypt_and_authenticate_with(
    strategy: Strategy,
    cipher: &Aes128,
    iv: &[u8; 16],
    key: &HmacSha1Key,
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
) -> [u8; SHA1_DIGEST] {
    let enc_start = enc_start.min(packet.len());
    let mut hash = InnerHash::new(key, packet.len() + trailer.len());
    let pass = Pass::<false> {
        strategy,
        packet: &mut *packet,
        enc_start,
        counter: u128::from_be_bytes(*iv),
        out: &mut [],
        hash: Some(&mut hash),
    };
    cipher.encrypt_with_backend(pass);
    hash.finish(key, packet, trailer)
}

/// Returns HMAC-SHA1(`packet ‖ trailer`) and writes the AES-CM keystream for `packet[enc_start..]`
/// (from `iv`) into `keystream`: the SRTP unprotect transform, whose caller XORs the keystream in
/// only after the tag has verified. `keystream` must be at least `packet.len() - enc_start`
/// rounded up to a multiple of 16 bytes ([`keystream_len`]); with a shorter buffer the keystream
/// is not computed (the MAC still is) and `None` stands in its place. Scheduled as
/// [`Strategy::for_this_cpu`] says.
pub fn authenticate_and_keystream(
    cipher: &Aes128,
    iv: &[u8; 16],
    key: &HmacSha1Key,
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
    keystream: &mut [u8],
) -> ([u8; SHA1_DIGEST], Option<usize>) {
    let strategy = Strategy::for_this_cpu().unprotect;
    authenticate_and_keystream_with(strategy, cipher, iv, key, packet, enc_start, trailer, keystream)
}

/// [`authenticate_and_keystream`] scheduled as `strategy` says.
#[allow(clippy::too_many_arguments)]
pub fn authenticate_and_keystream_with(
    strategy: Strategy,
    cipher: &Aes128,
    iv: &[u8; 16],
    key: &HmacSha1Key,
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
    keystream: &mut [u8],
) -> ([u8; SHA1_DIGEST], Option<usize>) {
    let enc_start = enc_start.min(packet.len());
    let need = keystream_len(packet.len() - enc_start);
    let mut hash = InnerHash::new(key, packet.len() + trailer.len());
    let Some(out) = keystream.get_mut(..need) else {
        return (key.mac(packet, trailer), None);
    };
    let pass = Pass::<true> {
        strategy,
        packet: &mut *packet,
        enc_start,
        counter: u128::from_be_bytes(*iv),
        out,
        hash: Some(&mut hash),
    };
    cipher.encrypt_with_backend(pass);
    (hash.finish(key, packet, trailer), Some(need))
}

/// XORs the AES-CM keystream that starts at `iv` into `data` (encrypts or decrypts in place), in
/// the AES backend's widest batches: the same bytes as [`crate::aes_cm::apply_keystream`].
pub fn xor_keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    let pass = Pass::<false> {
        strategy: Strategy::Sequential,
        packet: data,
        enc_start: 0,
        counter: u128::from_be_bytes(*iv),
        out: &mut [],
        hash: None,
    };
    cipher.encrypt_with_backend(pass);
}

/// Keystream bytes [`authenticate_and_keystream`] writes for a payload of `len` bytes.
pub fn keystream_len(len: usize) -> usize {
    len.div_ceil(AES_BLOCK) * AES_BLOCK
}

/// `data ^= keystream[..data.len()]`.
pub fn apply(data: &mut [u8], keystream: &[u8]) {
    let (d, d_rest) = data.as_chunks_mut::<AES_BLOCK>();
    let (k, k_rest) = keystream.as_chunks::<AES_BLOCK>();
    for (d, k) in d.iter_mut().zip(k) {
        *d = (u128::from_ne_bytes(*d) ^ u128::from_ne_bytes(*k)).to_ne_bytes();
    }
    let k_tail = k.get(d.len()).map_or(k_rest, |b| &b[..]);
    for (d, k) in d_rest.iter_mut().zip(k_tail) {
        *d ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::{Strategy as Schedule, *};
    use crate::aes_cm::apply_keystream;
    use aes::cipher::KeyInit;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use sha1::Sha1;

    /// RFC 2202 §3 test cases 1, 2 and 6 (key longer than a block), HMAC-SHA-1.
    #[test]
    fn rfc2202_vectors() {
        let k = HmacSha1Key::new(&[0x0b; 20]);
        assert_eq!(hex::encode(k.mac(b"Hi There", &[])), "b617318655057264e28bc0b6fb378c8ef146be00");
        let k = HmacSha1Key::new(b"Jefe");
        assert_eq!(
            hex::encode(k.mac(b"what do ya want ", b"for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let k = HmacSha1Key::new(&[0xaa; 80]);
        assert_eq!(
            hex::encode(k.mac(b"Test Using Larger Than Block-Size Key - Hash Key First", &[])),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    fn oracle_mac(key: &[u8], message: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut m = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(key).unwrap();
        m.update(message);
        m.update(trailer);
        m.finalize().into_bytes().into()
    }

    /// The choice follows the AES backend's batch; every CPU gets some strategy.
    #[test]
    fn strategy_follows_the_aes_backend() {
        let one_pass = Schedule::OnePass { sha_blocks: 1 };
        for batch in [2, 4, 8] {
            assert_eq!(
                Strategies::for_aes_batch(batch),
                Strategies { protect: one_pass, unprotect: one_pass }
            );
        }
        for batch in [30, 64] {
            let s = Strategies::for_aes_batch(batch);
            assert_eq!(s, Strategies { protect: Schedule::Sequential, unprotect: Schedule::Sequential });
        }
        assert_eq!(Schedule::for_this_cpu(), Strategies::for_aes_batch(aes_batch()));
        assert_eq!(
            Strategies::for_aes_batch(64).describe(64),
            "sequential (AES batches of 64 blocks: VAES with AVX-512)"
        );
    }

    proptest! {
        /// Against the `hmac` + `ctr` crates, any length and split (every padding case), with
        /// every strategy (each on the AES backend of the CPU running the test).
        #[test]
        fn agrees_with_hmac_and_ctr_crates(
            key in proptest::collection::vec(any::<u8>(), 0..100),
            packet in proptest::collection::vec(any::<u8>(), 0..700),
            trailer in proptest::collection::vec(any::<u8>(), 0..9),
            enc_start in 0usize..40,
            aes_key in any::<[u8; 16]>(),
            iv in any::<[u8; 16]>(),
        ) {
            let keyed = HmacSha1Key::new(&key);
            let cipher = Aes128::new((&aes_key).into());
            let start = enc_start.min(packet.len());

            let mut expected = packet.clone();
            apply_keystream(&cipher, &iv, &mut expected[start..]);
            let expected_tag = oracle_mac(&key, &expected, &trailer);
            prop_assert_eq!(keyed.mac(&expected, &trailer), expected_tag);
            let mut got = packet.clone();
            xor_keystream(&cipher, &iv, &mut got[start..]);
            prop_assert_eq!(&got, &expected);

            for strategy in Schedule::ALL {
                let mut got = packet.clone();
                let tag = encrypt_and_authenticate_with(strategy, &cipher, &iv, &keyed, &mut got, start, &trailer);
                prop_assert_eq!(&got, &expected, "{:?}", strategy);
                prop_assert_eq!(tag, expected_tag, "{:?}", strategy);

                let mut ks = vec![0u8; keystream_len(packet.len() - start)];
                let mut received = expected.clone();
                let (tag, n) = authenticate_and_keystream_with(
                    strategy, &cipher, &iv, &keyed, &mut received, start, &trailer, &mut ks,
                );
                prop_assert_eq!(tag, expected_tag, "{:?}", strategy);
                prop_assert_eq!(n, Some(ks.len()));
                // The received packet is not touched before the caller applies the keystream.
                prop_assert_eq!(&received, &expected);
                apply(&mut received[start..], &ks);
                prop_assert_eq!(&received, &packet);
            }
        }

        /// Counters that carry out of the low 64 bits inside a wide batch (never in SRTP, whose
        /// IVs end in 16 zero bits, but the transform is AES-CM for any IV).
        #[test]
        fn counter_carries_like_ctr(len in 0usize..1300, low in (u64::MAX - 80)..=u64::MAX, high in any::<u64>()) {
            let cipher = Aes128::new((&[7u8; 16]).into());
            let iv = ((u128::from(high) << 64) | u128::from(low)).to_be_bytes();
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = data.clone();
            apply_keystream(&cipher, &iv, &mut expected);
            let mut got = data.clone();
            xor_keystream(&cipher, &iv, &mut got);
            prop_assert_eq!(got, expected);
        }
    }
}
