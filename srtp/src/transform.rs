//! The per-packet SRTP transform in one pass: AES-CM (RFC 3711 §4.1.1) and HMAC-SHA1 (RFC 3711
//! §4.2.1, RFC 2104) over the same bytes, interleaved block by block.
//!
//! SHA-1 is a chain of dependent rounds, so a SHA-1 block leaves most of the core's execution
//! units idle; AES counter blocks are independent of each other and of the hash. Issuing a few
//! AES blocks between SHA-1 blocks lets the core run both at once, where computing the keystream
//! first and the MAC afterwards runs them one after the other.
//!
//! * [`encrypt_and_authenticate`] (protect): the keystream is XORed into the payload a few blocks
//!   ahead of the hash, which then reads the fresh ciphertext from the first-level cache.
//! * [`authenticate_and_keystream`] (unprotect): the hash reads the received ciphertext while the
//!   keystream goes to a separate buffer; the caller applies it only once the tag has been
//!   verified, so a packet that fails authentication is never decrypted.
//!
//! HMAC-SHA1 starts from the inner and outer states of the padded key, hashed once per session
//! key ([`HmacSha1Key`]), and the SHA-1 compression function reads full 64-byte blocks straight
//! from the packet: no per-packet key hashing, no copy of the packet, no allocation. The primitives
//! are the `aes` and `sha1` crates' own (AES-NI / VAES and SHA-NI picked at run time).

use aes::Aes128;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser};
use sha1::block_api::compress;
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
/// Parallel batches up to this many blocks (AES-NI: 8, the constant-time software AES: 2 or 4)
/// are issued whole; with larger ones (VAES: 30) the keystream is made one block at a time, four
/// blocks (one SHA-1 block of payload) between two SHA-1 blocks.
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
        tail.zeroize();
        self.state.zeroize();
        digest_bytes(&state)
    }
}

/// Where the keystream goes.
enum Keystream<'a> {
    /// XORed into `packet[enc_start..]` (protect).
    InPlace,
    /// Written to this buffer, as long as `packet[enc_start..]` rounded up to whole AES blocks
    /// (unprotect).
    Out(&'a mut [u8]),
}

/// One packet's pass, run inside the AES backend so that counter blocks go to it directly.
struct Pass<'a> {
    packet: &'a mut [u8],
    enc_start: usize,
    counter: u128,
    keystream: Keystream<'a>,
    hash: &'a mut InnerHash,
}

impl BlockSizeUser for Pass<'_> {
    type BlockSize = U16;
}

impl Pass<'_> {
    /// Generates the keystream of payload blocks `from..to` with `backend` (one block at a time,
    /// or whole parallel batches when they are small) and XORs it into the packet or writes it out.
    #[inline(always)]
    fn keystream<B: BlockCipherEncBackend<BlockSize = U16>>(
        &mut self,
        backend: &B,
        par_blocks: &mut Array<Array<u8, U16>, B::ParBlocksSize>,
        from: usize,
        to: usize,
    ) {
        let par = B::ParBlocksSize::USIZE;
        let mut at = from;
        while at < to {
            if par <= SMALL_PAR_BATCH && to - at >= par {
                for (j, b) in par_blocks.iter_mut().enumerate() {
                    *b = Array(self.counter.wrapping_add((at + j) as u128).to_be_bytes());
                }
                backend.encrypt_par_blocks(par_blocks.into());
                for (j, b) in par_blocks.iter().enumerate() {
                    self.put(at + j, &b.0);
                }
                at += par;
            } else {
                let mut b = Array(self.counter.wrapping_add(at as u128).to_be_bytes());
                backend.encrypt_block((&mut b).into());
                self.put(at, &b.0);
                at += 1;
            }
        }
    }

    /// Keystream block `n` of the payload: XORed in, or written out.
    #[inline(always)]
    fn put(&mut self, n: usize, block: &[u8; AES_BLOCK]) {
        let from = n * AES_BLOCK;
        match &mut self.keystream {
            Keystream::InPlace => {
                let payload = &mut self.packet[self.enc_start..];
                let to = (from + AES_BLOCK).min(payload.len());
                xor_into(&mut payload[from..to], block);
            }
            Keystream::Out(out) => out[from..from + AES_BLOCK].copy_from_slice(block),
        }
    }
}

/// `dst ^= key[..dst.len()]`.
#[inline(always)]
fn xor_into(dst: &mut [u8], key: &[u8; AES_BLOCK]) {
    if let Ok(d) = <&mut [u8; AES_BLOCK]>::try_from(&mut *dst) {
        *d = (u128::from_ne_bytes(*d) ^ u128::from_ne_bytes(*key)).to_ne_bytes();
    } else {
        for (d, k) in dst.iter_mut().zip(key) {
            *d ^= k;
        }
    }
}

impl BlockCipherEncClosure for Pass<'_> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(mut self, backend: &B) {
        let mut par_blocks: Array<Array<u8, U16>, B::ParBlocksSize> = Default::default();
        let enc_len = self.packet.len() - self.enc_start;
        let aes_blocks = enc_len.div_ceil(AES_BLOCK);
        let sha_blocks = self.packet.len() / SHA1_BLOCK;
        let mut aes_done = 0;
        for j in 0..sha_blocks {
            // Keystream up to one SHA-1 block beyond the end of block j: in place, block j is
            // then all ciphertext; and the next block's AES work is issued before this hash.
            let bytes = ((j + 2) * SHA1_BLOCK).saturating_sub(self.enc_start);
            let upto = bytes.div_ceil(AES_BLOCK).min(aes_blocks);
            if upto > aes_done {
                self.keystream(backend, &mut par_blocks, aes_done, upto);
                aes_done = upto;
            }
            let (blocks, _) = self.packet.as_chunks::<SHA1_BLOCK>();
            self.hash.blocks(&blocks[j..j + 1]);
        }
        if aes_done < aes_blocks {
            self.keystream(backend, &mut par_blocks, aes_done, aes_blocks);
        }
    }
}

/// Encrypts `packet[enc_start..]` in place with the AES-CM keystream that starts at `iv` and
/// returns HMAC-SHA1(`packet ‖ trailer`) over the ciphertext: the SRTP (or SRTCP) protect
/// transform, with the trailer the ROC (RFC 3711 §4.2). `enc_start` at most `packet.len()`;
/// the trailer at most 64 bytes.
pub fn encrypt_and_authenticate(
    cipher: &Aes128,
    iv: &[u8; 16],
    key: &HmacSha1Key,
    packet: &mut [u8],
    enc_start: usize,
    trailer: &[u8],
) -> [u8; SHA1_DIGEST] {
    let enc_start = enc_start.min(packet.len());
    let mut hash = InnerHash::new(key, packet.len() + trailer.len());
    let pass = Pass {
        packet: &mut *packet,
        enc_start,
        counter: u128::from_be_bytes(*iv),
        keystream: Keystream::InPlace,
        hash: &mut hash,
    };
    cipher.encrypt_with_backend(pass);
    hash.finish(key, packet, trailer)
}

/// Returns HMAC-SHA1(`packet ‖ trailer`) and writes the AES-CM keystream for `packet[enc_start..]`
/// (from `iv`) into `keystream`: the SRTP unprotect transform, whose caller XORs the keystream in
/// only after the tag has verified. `keystream` must be at least `packet.len() - enc_start`
/// rounded up to a multiple of 16 bytes ([`keystream_len`]); with a shorter buffer the keystream
/// is not computed (the MAC still is) and `None` stands in its place.
pub fn authenticate_and_keystream(
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
    let pass = Pass {
        packet: &mut *packet,
        enc_start,
        counter: u128::from_be_bytes(*iv),
        keystream: Keystream::Out(out),
        hash: &mut hash,
    };
    cipher.encrypt_with_backend(pass);
    (hash.finish(key, packet, trailer), Some(need))
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
    use super::*;
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

    proptest! {
        /// Against the `hmac` + `ctr` crates, any length and split (every padding case).
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
            let mut got = packet.clone();
            let tag = encrypt_and_authenticate(&cipher, &iv, &keyed, &mut got, start, &trailer);
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(tag, expected_tag);

            let mut ks = vec![0u8; keystream_len(packet.len() - start)];
            let mut received = expected.clone();
            let (tag, n) = authenticate_and_keystream(&cipher, &iv, &keyed, &mut received, start, &trailer, &mut ks);
            prop_assert_eq!(tag, expected_tag);
            prop_assert_eq!(n, Some(ks.len()));
            prop_assert_eq!(&received, &expected);
            apply(&mut received[start..], &ks);
            prop_assert_eq!(&received, &packet);
        }
    }
}
