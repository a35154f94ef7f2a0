//! EF encodings against published vectors: the `_test_de_encode` tables of osmocom pySim
//! (`pySim/ts_51_011.py` EF_IMSI and EF_ICCID, `pySim/ts_102_221.py` EF_DIR and FileDescriptor,
//! `pySim/ts_31_102.py` EF_AD, `pySim/ts_31_103.py` EF_IMPI / EF_DOMAIN / EF_IMPU), values
//! computed with pySim's own encoders (`enc_imsi`, `EF_IMPU.encode_record_hex`), and byte
//! positions stated in TS 31.102.

use super::PROFILE;
use crate::ef;
use crate::fs::{ARR_DF, ARR_READ_ALW_UPDATE_ADM, ARR_READ_PIN_UPDATE_ADM, ARR_READ_PIN_UPDATE_PIN, App};
use crate::profile::Personalization;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn ef_imsi_matches_pysim_vectors() {
    // pySim ts_51_011.py EF_IMSI._test_de_encode.
    assert_eq!(ef::encode_imsi("228062800000208").unwrap().to_vec(), h("082982608200002080"));
    assert_eq!(ef::encode_imsi("262011106487504").unwrap().to_vec(), h("082926101160845740"));
    // pySim utils.enc_imsi("001010123456789"), run against this profile's IMSI.
    assert_eq!(ef::encode_imsi(PROFILE.imsi).unwrap().to_vec(), h("080910101032547698"));
    // An even number of digits: parity bit clear, last high nibble F (pySim enc_imsi again).
    assert_eq!(ef::encode_imsi("00101012345678").unwrap().to_vec(), h("0801101010325476f8"));
    assert_eq!(ef::encode_imsi("0010101234567890"), None);
    assert_eq!(ef::encode_imsi("00101"), None);
}

#[test]
fn ef_iccid_matches_the_pysim_vector() {
    // pySim ts_51_011.py EF_ICCID._test_de_encode: 19 digits, F-padded, nibble-swapped.
    assert_eq!(ef::encode_iccid("8988211000000430010").unwrap().to_vec(), h("988812010000400310f0"));
    // 20 digits, no padding (pySim utils.enc_iccid).
    assert_eq!(ef::encode_iccid("89882110000004300109").unwrap().to_vec(), h("98881201000040031090"));
    assert_eq!(ef::encode_iccid("89882110000004300A1"), None);
}

#[test]
fn ef_dir_application_template_matches_the_pysim_vector() {
    // pySim ts_102_221.py EF_DIR._test_de_encode, second vector (ISIM AID, label "ISim1").
    let mut out = [0u8; 32];
    let n = ef::encode_application_template(App::Isim.aid(), b"ISim1", &mut out).unwrap();
    assert_eq!(out[..n].to_vec(), h("61194f10a0000000871004ffffffff890709000050054953696d31"));
    // Our records: the same template with labels "USIM"/"ISIM", FF-padded to the record length.
    let usim = ef::encode_dir_record(App::Usim);
    assert_eq!(
        usim[..26].to_vec(),
        [h("61184f10a0000000871002ffffffff89070900005004"), b"USIM".to_vec()].concat()
    );
    assert!(usim[26..].iter().all(|&b| b == 0xFF));
}

#[test]
fn ef_ad_matches_the_pysim_vector() {
    // pySim ts_31_102.py EF_AD._test_de_encode: normal operation, MNC length 2.
    assert_eq!(ef::encode_ad(PROFILE.mnc_len()).to_vec(), h("00000002"));
    let us = Personalization { imsi: "310150123456789", ..PROFILE };
    assert_eq!(us.mnc_len(), 3);
}

#[test]
fn ust_and_ist_set_the_bits_ts_31_102_names() {
    // TS 31.102 §4.2.8: service n is bit (n-1) mod 8 of byte (n-1) div 8 + 1.
    let ust = ef::usim_service_table();
    assert_eq!(ust[4], 0x01, "n°33 in byte 5, b1");
    assert_eq!(ust[8], 0x08 | 0x10, "n°68 (GBA) and n°69 (MBMS security) in byte 9, b4 and b5");
    assert_eq!(ust.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    assert_eq!(ef::isim_service_table(), [0x02, 0, 0, 0], "IST n°2 (GBA) in byte 1, b2");
}

#[test]
fn isim_identity_files_match_pysim_vectors() {
    let mut out = [0u8; 128];
    // pySim ts_31_103.py EF_IMPI, EF_DOMAIN, EF_IMPU _test_de_encode.
    for (value, expected) in [
        (
            "738006000000101@ims.mnc000.mcc738.3gppnetwork.org",
            "803137333830303630303030303031303140696d732e6d6e633030302e6d63633733382e336770706e6574776f726b2e6f7267",
        ),
        (
            "ims.mnc000.mcc738.3gppnetwork.org",
            "8021696d732e6d6e633030302e6d63633733382e336770706e6574776f726b2e6f7267",
        ),
        (
            "sip:738006000000101@ims.mnc000.mcc738.3gppnetwork.org",
            "80357369703a37333830303630303030303031303140696d732e6d6e633030302e6d63633733382e336770706e6574776f726b2e6f7267",
        ),
    ] {
        let n = ef::encode_tag80(value.as_bytes(), &mut out).unwrap();
        assert_eq!(out[..n].to_vec(), h(expected), "{value}");
    }
    // Values over 127 bytes take the two-byte BER length `81 xx`.
    let mut big = [0u8; 140];
    let n = ef::encode_tag80(&[b'a'; 130], &mut big).unwrap();
    assert_eq!((n, big[..3].to_vec()), (133, vec![0x80, 0x81, 130]));
    assert_eq!(ef::encode_tag80(&[b'a'; 130], &mut [0u8; 100]), None);
}

#[test]
fn pin_coding_is_ascii_digits_padded_with_ff() {
    // TS 102 221 §9.5.1.
    assert_eq!(ef::encode_pin("1234"), Some([0x31, 0x32, 0x33, 0x34, 0xFF, 0xFF, 0xFF, 0xFF]));
    assert_eq!(ef::encode_pin("12345678"), Some(*b"12345678"));
    assert_eq!(ef::encode_pin("123"), None);
    assert_eq!(ef::encode_pin("12a4"), None);
    assert!(ef::pin_well_formed(&[0x31, 0x32, 0x33, 0x34, 0xFF, 0xFF, 0xFF, 0xFF]));
    assert!(!ef::pin_well_formed(&[0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]));
    assert!(!ef::pin_well_formed(&[0x31, 0x32, 0x33, 0x34, 0xFF, 0x35, 0xFF, 0xFF]));
}

#[test]
fn arr_records_use_the_ts_102_221_expanded_format() {
    // AM_DO `80 01 xx` then SC_DO: `90 00` always, `A4 06 83 01 <key ref> 95 01 08` user
    // authentication with PIN1 (01) or ADM1 (0A); the same DOs appear in pySim's EF_ARR vectors
    // (e.g. `800101a40683010a950108`: READ under ADM1).
    let rec = |n| ef::encode_arr_record(n).to_vec();
    let pad = |mut v: Vec<u8>| {
        v.resize(crate::fs::ARR_RECORD_LEN.into(), 0xFF);
        v
    };
    assert_eq!(rec(ARR_READ_ALW_UPDATE_ADM), pad(h("8001019000800102a40683010a950108")));
    assert_eq!(rec(ARR_READ_PIN_UPDATE_ADM), pad(h("800101a406830101950108800102a40683010a950108")));
    assert_eq!(rec(ARR_READ_PIN_UPDATE_PIN), pad(h("800101a406830101950108800102a406830101950108")));
    assert_eq!(rec(ARR_DF), pad(h("80017fa40683010a950108")));
}
