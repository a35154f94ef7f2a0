//! Milenage, the example AKA algorithm set f1, f1*, f2, f3, f4, f5, f5* (TS 35.206 §4.1).
//!
//! Kernel E_K is AES-128. With OPc = OP ⊕ E_K(OP):
//!
//! ```text
//! TEMP = E_K(RAND ⊕ OPc)
//! OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc      IN1 = SQN ‖ AMF ‖ SQN ‖ AMF
//! OUTk = E_K(rot(TEMP ⊕ OPc, rk) ⊕ ck) ⊕ OPc             k = 2..5
//! f1 = OUT1[0..8]  f1* = OUT1[8..16]  f5 = OUT2[0..6]  f2 = OUT2[8..16]  f3 = OUT3  f4 = OUT4  f5* = OUT5[0..6]
//! ```
//!
//! `rot(x, r)` rotates the 128-bit value x left by r bits; all r are multiples of 8 here.

use aes::Aes128;
use aes::cipher::array::Array;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::{Ck, Ik};
use crate::{Ak, Amf, Mac, Rand, Res, xor};

/// Rotation r1 (bits) for OUT1 (TS 35.206 §4.1).
pub const R1: u32 = 64;
/// Rotation r2 (bits) for OUT2.
pub const R2: u32 = 0;
/// Rotation r3 (bits) for OUT3.
pub const R3: u32 = 32;
/// Rotation r4 (bits) for OUT4.
pub const R4: u32 = 64;
/// Rotation r5 (bits) for OUT5.
pub const R5: u32 = 96;
/// Constant c1 (TS 35.206 §4.1): all zero.
pub const C1: [u8; 16] = c_const(0x00);
/// Constant c2: all zero except the last bit.
pub const C2: [u8; 16] = c_const(0x01);
/// Constant c3: all zero except the next to last bit.
pub const C3: [u8; 16] = c_const(0x02);
/// Constant c4: all zero except the third bit from the end.
pub const C4: [u8; 16] = c_const(0x04);
/// Constant c5: all zero except the fourth bit from the end.
pub const C5: [u8; 16] = c_const(0x08);

const fn c_const(last: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[15] = last;
    c
}

/// Cyclic left rotation of a 128-bit block by `bits` (a multiple of 8).
fn rot(x: &[u8; 16], bits: u32) -> [u8; 16] {
    let mut out = *x;
    out.rotate_left(((bits / 8) % 16) as usize);
    out
}

/// The Milenage functions for one subscriber (K, OPc). The AES key schedule and OPc are wiped on drop.
pub struct Milenage {
    cipher: Aes128,
    opc: [u8; 16],
}

impl Drop for Milenage {
    fn drop(&mut self) {
        // The Aes128 field zeroizes its own key schedule (aes feature "zeroize").
        self.opc.zeroize();
    }
}

impl ZeroizeOnDrop for Milenage {}

impl core::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Milenage(<redacted>)")
    }
}

/// The outputs of f2, f3, f4 and f5 for one RAND.
pub struct F2345 {
    /// RES (f2).
    pub res: Res,
    /// CK (f3).
    pub ck: Ck,
    /// IK (f4).
    pub ik: Ik,
    /// AK (f5).
    pub ak: Ak,
}

impl core::fmt::Debug for F2345 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("F2345(<redacted>)")
    }
}

impl Milenage {
    /// Milenage keyed with the subscriber key K and the operator variant OPc.
    pub fn new(k: &[u8; 16], opc: &[u8; 16]) -> Self {
        Self { cipher: Aes128::new(&Array::from(*k)), opc: *opc }
    }

    /// Milenage keyed with K and the operator variant OP (OPc is computed, TS 35.206 §4.1).
    pub fn with_op(k: &[u8; 16], op: &[u8; 16]) -> Self {
        let mut opc = opc_from_op(k, op);
        let m = Self::new(k, &opc);
        opc.zeroize();
        m
    }

    fn encrypt(&self, input: &[u8; 16]) -> [u8; 16] {
        let mut block = Array::from(*input);
        self.cipher.encrypt_block(&mut block);
        block.into()
    }

    /// TEMP = E_K(RAND ⊕ OPc).
    fn temp(&self, rand: &Rand) -> [u8; 16] {
        self.encrypt(&xor(rand, &self.opc))
    }

    /// OUT1 (f1 and f1*).
    fn out1(&self, rand: &Rand, sqn: &[u8; 6], amf: &Amf) -> [u8; 16] {
        let temp = self.temp(rand);
        // IN1 = SQN ‖ AMF ‖ SQN ‖ AMF
        let mut in1 = [0u8; 16];
        for (b, v) in in1.iter_mut().zip(sqn.iter().chain(amf).chain(sqn).chain(amf)) {
            *b = *v;
        }
        let x = xor(&xor(&temp, &rot(&xor(&in1, &self.opc), R1)), &C1);
        xor(&self.encrypt(&x), &self.opc)
    }

    /// OUTk for k = 2..5 from TEMP.
    fn out_k(&self, temp: &[u8; 16], r: u32, c: &[u8; 16]) -> [u8; 16] {
        let x = xor(&rot(&xor(temp, &self.opc), r), c);
        xor(&self.encrypt(&x), &self.opc)
    }

    /// f1: the network authentication code MAC-A.
    pub fn f1(&self, rand: &Rand, sqn: &[u8; 6], amf: &Amf) -> Mac {
        first::<8>(&self.out1(rand, sqn, amf))
    }

    /// f1*: the resynchronisation authentication code MAC-S.
    pub fn f1_star(&self, rand: &Rand, sqn: &[u8; 6], amf: &Amf) -> Mac {
        last8(&self.out1(rand, sqn, amf))
    }

    /// f2: the response RES (64 bits).
    pub fn f2(&self, rand: &Rand) -> Res {
        last8(&self.out_k(&self.temp(rand), R2, &C2))
    }

    /// f3: the cipher key CK.
    pub fn f3(&self, rand: &Rand) -> Ck {
        Ck::new(self.out_k(&self.temp(rand), R3, &C3))
    }

    /// f4: the integrity key IK.
    pub fn f4(&self, rand: &Rand) -> Ik {
        Ik::new(self.out_k(&self.temp(rand), R4, &C4))
    }

    /// f5: the anonymity key AK.
    pub fn f5(&self, rand: &Rand) -> Ak {
        first::<6>(&self.out_k(&self.temp(rand), R2, &C2))
    }

    /// f5*: the anonymity key AK* of the resynchronisation message.
    pub fn f5_star(&self, rand: &Rand) -> Ak {
        first::<6>(&self.out_k(&self.temp(rand), R5, &C5))
    }

    /// f2, f3, f4 and f5 together, sharing one TEMP computation.
    pub fn f2345(&self, rand: &Rand) -> F2345 {
        let temp = self.temp(rand);
        let out2 = self.out_k(&temp, R2, &C2);
        F2345 {
            res: last8(&out2),
            ck: Ck::new(self.out_k(&temp, R3, &C3)),
            ik: Ik::new(self.out_k(&temp, R4, &C4)),
            ak: first::<6>(&out2),
        }
    }
}

/// OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1).
pub fn opc_from_op(k: &[u8; 16], op: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(&Array::from(*k));
    let mut block = Array::from(*op);
    cipher.encrypt_block(&mut block);
    xor(&block.into(), op)
}

fn first<const N: usize>(x: &[u8; 16]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(x) {
        *o = *b;
    }
    out
}

fn last8(x: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(x.iter().skip(8)) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// TS 35.208 test set 1 (also TS 35.207 test set 1), as listed in our spec digest §8.1.
    #[test]
    fn test_set_1() {
        let k = h::<16>("465b5ce8b199b49faa5f0a2ee238a6bc");
        let op = h::<16>("cdc202d5123e20f62b6d676ac72cb318");
        let rand = h::<16>("23553cbe9637a89d218ae64dae47bf35");
        let sqn = h::<6>("ff9bb4d0b607");
        let amf = h::<2>("b9b9");
        let opc = opc_from_op(&k, &op);
        assert_eq!(opc, h::<16>("cd63cb71954a9f4e48a5994e37a02baf"));
        let m = Milenage::new(&k, &opc);
        assert_eq!(m.f1(&rand, &sqn, &amf), h::<8>("4a9ffac354dfafb3"));
        assert_eq!(m.f1_star(&rand, &sqn, &amf), h::<8>("01cfaf9ec4e871e9"));
        assert_eq!(m.f2(&rand), h::<8>("a54211d5e3ba50bf"));
        assert_eq!(m.f3(&rand).expose(), &h::<16>("b40ba9a3c58b2a05bbf0d987b21bf8cb"));
        assert_eq!(m.f4(&rand).expose(), &h::<16>("f769bcd751044604127672711c6d3441"));
        assert_eq!(m.f5(&rand), h::<6>("aa689c648370"));
        assert_eq!(m.f5_star(&rand), h::<6>("451e8beca43b"));
        let all = Milenage::with_op(&k, &op).f2345(&rand);
        assert_eq!(all.res, h::<8>("a54211d5e3ba50bf"));
        assert_eq!(all.ak, h::<6>("aa689c648370"));
        assert_eq!(all.ck.expose(), m.f3(&rand).expose());
        assert_eq!(all.ik.expose(), m.f4(&rand).expose());
    }

    #[test]
    fn constants_are_the_spec_ones() {
        assert_eq!(rot(&C2, R3), {
            let mut x = [0u8; 16];
            x[11] = 1;
            x
        });
        assert_eq!(C1, [0; 16]);
        assert_eq!((C2[15], C3[15], C4[15], C5[15]), (1, 2, 4, 8));
    }
}
