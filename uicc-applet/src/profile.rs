//! The card's personalization (TS 31.102 §4.2 EF contents, TS 33.102 subscriber keys), borrowed
//! from whatever holds the profile (a TOML file on the std side, a constant in tests).

/// Everything written into a blank card. Strings are borrowed so the card needs no heap.
#[derive(Debug, Clone, Copy)]
pub struct Personalization<'a> {
    /// ICCID as decimal digits (19 or 20), stored BCD-swapped in EF.ICCID.
    pub iccid: &'a str,
    /// IMSI as decimal digits (up to 15), stored in EF.IMSI (TS 31.102 §4.2.2).
    pub imsi: &'a str,
    /// Subscriber key K (TS 35.206).
    pub k: [u8; 16],
    /// OPc (TS 35.206).
    pub opc: [u8; 16],
    /// Initial sequence number SQN (48 bits).
    pub sqn: [u8; 6],
    /// Authentication management field the card expects in AUTN.
    pub amf: [u8; 2],
    /// IMPI for EF.IMPI (TS 31.103 §4.2.2).
    pub impi: &'a str,
    /// IMPUs for EF.IMPU records (TS 31.103 §4.2.4).
    pub impu: &'a [&'a str],
    /// Home network domain name for EF.DOMAIN (TS 31.103 §4.2.3).
    pub home_domain: &'a str,
    /// PIN1 as ASCII digits (4 to 8), padded with `FF` to 8 bytes (TS 102 221 §9.5.1).
    pub pin1: &'a str,
    /// ADM1 as its 8-byte verification value.
    pub adm1: [u8; 8],
}
