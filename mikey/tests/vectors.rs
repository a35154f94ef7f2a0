//! Known-answer tests against published or third-party values.
//!
//! Sources:
//! * spec digest `spec/mikey-srtp.md` §5.4: MIKEY PRF vectors (HMAC-SHA-1 rows marked (*) were
//!   reproduced by minisip's `prf()`), PRF-HMAC-SHA-256 rows, the KEMAC AES-CM IV and keystream.
//! * Streamwide `sw_mikey_sakke`, `libmikey` unit test `test_key_deriv` (PRF-HMAC-SHA-256 key
//!   derivation from a TGK/SSV, RFC 3830 §4.1.3 labels): a third-party implementation's vectors.
//! * GStreamer `tests/check/libs/mikey.c`: byte-exact common header with and without SRTP-ID map.
//! * A PSK message hand-built with Python `struct.pack` (HARNESS.md §2) and accepted by tshark,
//!   including its HMAC-SHA-1 MAC computed by Python with a zero key.

use hmac::{Hmac, KeyInit, Mac};
use mikey::kemac::{aes_cm_apply, kemac_iv};
use mikey::prf::{Label, PrfFunc, label, prf};
use mikey::{
    CsIdMap, DataType, EncrAlg, GeneralExtension, Hdr, IdType, KeyType, KeyValidity, MacAlg, Message,
    MessageBuilder, Payload, ProtType, SrtpIdEntries, SrtpIdEntry, Timestamp, TransportKeys,
};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test hex")
}

const INKEY: &str = "000102030405060708090A0B0C0D0E0F";
const CSB: u32 = 0x0102_0304;
const RAND: &str = "101112131415161718191A1B1C1D1E1F";

fn derive(func: PrfFunc, inkey: &[u8], constant: u32, cs_id: u8, rand: &[u8], len: usize) -> String {
    let mut out = vec![0u8; len];
    prf(func, inkey, &Label { constant, cs_id, csb_id: CSB, rand }, &mut out).expect("prf");
    hex::encode_upper(out)
}

#[test]
fn prf_sha1_transport_keys_digest_5_4() {
    let (k, r) = (h(INKEY), h(RAND));
    let f = PrfFunc::MikeyHmacSha1;
    assert_eq!(derive(f, &k, label::TRANSPORT_ENCR, 0xFF, &r, 16), "D0FE800A31AA671A9FDA5009C60A1114");
    assert_eq!(
        derive(f, &k, label::TRANSPORT_AUTH, 0xFF, &r, 20),
        "5128FBD4045393BD34D9FFCA7E877700781330E8"
    );
    assert_eq!(derive(f, &k, label::TRANSPORT_SALT, 0xFF, &r, 14), "4EACAD003F487312D9D8D8E6C513");
    // Empty RAND in the label.
    assert_eq!(derive(f, &k, label::TRANSPORT_ENCR, 0xFF, &[], 16), "2F17C76552F3C2DD7FC2820F662A469D");
    // Inkey of two chunks (48 bytes) and of exactly one full chunk (32 bytes).
    let k48: Vec<u8> = (0u8..0x30).collect();
    assert_eq!(derive(f, &k48, label::TRANSPORT_ENCR, 0xFF, &r, 16), "567AE521BC3DEB9A360BD5EEDD7521CD");
    let k32: Vec<u8> = (0u8..0x20).collect();
    assert_eq!(derive(f, &k32, label::TRANSPORT_ENCR, 0xFF, &r, 16), "8A881C6B8B81CE070A9C5891BF681548");
}

#[test]
fn prf_sha1_tgk_keys_digest_5_4() {
    let (k, r) = (h(INKEY), h(RAND));
    let f = PrfFunc::MikeyHmacSha1;
    assert_eq!(derive(f, &k, label::TEK, 1, &r, 16), "A488DAB36184E8D41AE26CB6DAF5405E");
    assert_eq!(derive(f, &k, label::TGK_SALT, 1, &r, 14), "BFD77ADF6B9118D13FFFBCD4B407");
    assert_eq!(derive(f, &k, label::TGK_AUTH, 1, &r, 20), "8F3E29854E0FA85A76AEC4DFDBE95EDB82B84DF1");
    assert_eq!(derive(f, &k, label::TGK_ENCR, 1, &r, 16), "8AC599429ED300E8003DCFA78B664374");
}

#[test]
fn prf_sha256_transport_keys_digest_5_4() {
    let (k, r) = (h(INKEY), h(RAND));
    let f = PrfFunc::HmacSha256;
    assert_eq!(derive(f, &k, label::TRANSPORT_ENCR, 0xFF, &r, 16), "EB5B4ACCCD27E06B0BE32650C811345F");
    assert_eq!(
        derive(f, &k, label::TRANSPORT_AUTH, 0xFF, &r, 32),
        "B7990AB908E0B61D24A13D2079C5541C6854741B09B4F9E072A64C8AC3817DC3"
    );
    assert_eq!(derive(f, &k, label::TRANSPORT_SALT, 0xFF, &r, 14), "930DDC18F9771C9042BB5709635F");
}

/// Streamwide sw_mikey_sakke, libmikey unit tests `test_key_deriv.encr_and_salt` and
/// `test_key_deriv.tek_and_salt`: `KeyAgreement::keyDeriv2` runs the RFC 3830 §4.1.2 PRF with
/// HMAC-SHA-256 and the §4.1.3 label `constant || cs_id || csb_id || RAND`.
#[test]
fn prf_sha256_tgk_keys_sw_mikey_sakke() {
    let ssv = h("A27B7D578EEB9B1EE7705E385996D300");
    let rand = h("4339F62F55AAC86348846A482C893802");
    let f = PrfFunc::HmacSha256;
    let run = |constant: u32, cs_id: u8, csb_id: u32, len: usize| {
        let mut out = vec![0u8; len];
        prf(f, &ssv, &Label { constant, cs_id, csb_id, rand: &rand }, &mut out).expect("prf");
        hex::encode_upper(out)
    };
    assert_eq!(run(label::TGK_ENCR, 4, 0x05A8_5C16, 16), "3924935940C154CCBC3C2AD05C8F5181");
    assert_eq!(run(label::TGK_SALT, 4, 0x05A8_5C16, 12), "1725869B80F370CC9F24E13B");
    assert_eq!(run(label::TGK_ENCR, 0, 0x05A8_5C16, 16), "F17C80A8D2F9BEFA47CF712603D7229A");
    assert_eq!(run(label::TGK_SALT, 0, 0x05A8_5C16, 12), "C3B7B561A291A1D3ABEF482B");
    assert_eq!(run(label::TEK, 4, 0x0633_F457, 16), "59AAA49EBB54813602B7CC165961B4E8");
    assert_eq!(run(label::TGK_SALT, 4, 0x0633_F457, 12), "745EB4DF7D155C473114A799");
}

#[test]
fn kemac_iv_and_keystream_digest_5_4() {
    let keys = TransportKeys::derive(PrfFunc::MikeyHmacSha1, &h(INKEY), CSB, &h(RAND)).expect("derive");
    assert_eq!(hex::encode_upper(keys.encr_key()), "D0FE800A31AA671A9FDA5009C60A1114");
    assert_eq!(hex::encode_upper(keys.auth_key()), "5128FBD4045393BD34D9FFCA7E877700781330E8");
    assert_eq!(hex::encode_upper(keys.salt_key()), "4EACAD003F487312D9D8D8E6C513");
    let ts = Timestamp::Counter(5).as_u64();
    assert_eq!(hex::encode_upper(kemac_iv(keys.salt_key(), CSB, ts)), "4EACAC023C4C7312D9D8D8E6C5160000");
    let mut ks = [0u8; 32];
    aes_cm_apply(&keys, CSB, ts, &mut ks).expect("aes-cm");
    assert_eq!(hex::encode_upper(ks), "9A3CEAF323EEC25373A9E811627CC7DC5DA0E6B467D11596A22002A07962DDED");
}

/// GStreamer tests/check/libs/mikey.c `create_common`: version 1, PSK init, V=0, PRF 0,
/// CSB 0x12345678, SRTP-ID map, first without entries, then with two.
#[test]
fn hdr_bytes_gstreamer() {
    let mut buf = [0u8; 64];
    let hdr = Hdr {
        data_type: DataType::PSK_INIT,
        v: false,
        prf: PrfFunc::MikeyHmacSha1,
        csb_id: 0x1234_5678,
        cs_id_map: CsIdMap::SrtpId(SrtpIdEntries::empty()),
    };
    let n = MessageBuilder::new(&mut buf, &hdr).expect("hdr").finish();
    assert_eq!(hex::encode(&buf[..n]), "01000000123456780000");

    let entries = [
        SrtpIdEntry { policy_no: 1, ssrc: 0x1234_5678, roc: 0 },
        SrtpIdEntry { policy_no: 2, ssrc: 0x2345_6789, roc: 1 },
    ];
    let hdr = Hdr { cs_id_map: CsIdMap::SrtpId(SrtpIdEntries::from_items(&entries)), ..hdr };
    let n = MessageBuilder::new(&mut buf, &hdr).expect("hdr").finish();
    assert_eq!(hex::encode(&buf[..n]), "01000000123456780200011234567800000000022345678900000001");
    let msg = Message::parse(&buf[..n]).expect("parse");
    assert_eq!(*msg.hdr(), hdr);
}

/// HARNESS.md §2: a PSK message built with Python struct.pack (MBMS-like framing: empty map,
/// general extension type 2, NTP-UTC T, RAND, two URI IDs, SP, NULL-encrypted KEMAC with a
/// TEK+SALT key, HMAC-SHA-1 with a zero key). Parsing and re-building it must give the same bytes.
#[test]
fn python_built_psk_message() {
    let bytes =
        h("01001500112233440001050200060204000100020b00e8f3c0a0000000000610000102030405060708090a0b0c0d0e0f
        06010010626d7363406578616d706c652e6f72670a01001075736572406578616d706c652e6f7267010000001200010101
        011002010104010e0501000b010a000000240030001000000000000000000000000000000000000e00000000000000000000
        0000000001bd61873675fb51fee25749580176e198b70cd640");
    let msg = Message::parse(&bytes).expect("parse");
    let hdr = msg.hdr();
    assert_eq!(hdr.data_type, DataType::PSK_INIT);
    assert_eq!(hdr.csb_id, 0x1122_3344);
    assert_eq!(hdr.cs_id_map, CsIdMap::Empty { cs_count: 0 });
    let payloads: Vec<Payload<'_>> = msg.payloads().collect();
    assert_eq!(payloads.len(), 7);
    assert_eq!(
        payloads[0],
        Payload::GeneralExtension(GeneralExtension::Other { ext_type: 2, data: &h("020400010002") })
    );
    assert_eq!(payloads[1], Payload::Timestamp(Timestamp::NtpUtc(0xe8f3_c0a0_0000_0000)));
    let ids: Vec<_> = msg.ids().collect();
    assert_eq!(ids[0].id_type, IdType::URI);
    assert_eq!(ids[0].data, b"bmsc@example.org");
    assert_eq!(ids[1].data, b"user@example.org");
    let sp = msg.security_policies().next().expect("sp");
    assert_eq!(sp.prot_type, ProtType::SRTP);
    let params: Vec<(u8, Vec<u8>)> = sp.params.iter().map(|p| (p.param_type, p.value.to_vec())).collect();
    assert_eq!(
        params,
        vec![(0, vec![1]), (1, vec![16]), (2, vec![1]), (4, vec![14]), (5, vec![0]), (11, vec![10])]
    );
    let kemac = msg.kemac().expect("kemac");
    assert_eq!(kemac.encr_alg, EncrAlg::Null);
    assert_eq!(kemac.mac_alg, MacAlg::HmacSha1_160);
    let keys = mikey::KeyDataList::parse(kemac.encr_data).expect("key data");
    let kd = keys.iter().next().expect("one key");
    assert_eq!(kd.key_type, KeyType::Tek);
    assert_eq!(kd.key, &[0u8; 16]);
    assert_eq!(kd.salt, Some(&[0u8; 14][..]));
    assert_eq!(kd.kv, KeyValidity::Null);

    // The MAC covers everything up to and including the MAC algorithm byte (RFC 3830 §5.2).
    let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&[0u8; 20]).expect("hmac");
    m.update(&bytes[..bytes.len() - 20]);
    assert_eq!(m.finalize().into_bytes().as_slice(), kemac.mac);

    // Rebuild from the parsed view: identical bytes.
    let mut out = vec![0u8; bytes.len()];
    let mut b = MessageBuilder::new(&mut out, hdr).expect("hdr");
    for p in &payloads {
        b.push(p).expect("push");
    }
    let n = b.finish();
    assert_eq!(&out[..n], &bytes[..]);
}
