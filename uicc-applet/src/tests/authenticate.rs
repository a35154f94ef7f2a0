//! AUTHENTICATE through `process()`: Milenage known answers of TS 35.208 (test sets 1 to 6) as
//! APDUs, resynchronisation against the `milenage` crate, the GBA_U key list, and the MBMS modes
//! driven by a BM-SC built from the `mikey` crate's builders with the MUK of the spec digest §8.2
//! (so a card that derived any other Ks_int_NAF fails the MAC). Every refusal is checked to leave
//! the NVM byte-identical, and a whole MBMS sequence is checked to leak no Ks, Ks_int_NAF, MUK or
//! MSK byte string (nor any 8-byte window of one) in any response or readable file.

use mikey::mbms::{
    self, KeyDomainId, MskId, MskMessageParams, MtkId, MtkMessageParams, SolicitedPullParams,
    profile::EMPTY_MAP_CS_COUNT,
};
use mikey::{CsIdMap, KeyValidity, Timestamp};

use super::{PROFILE, personalized, send, send_hex, sw};
use crate::fs::Ef;
use crate::{NVM_SIZE, Personalization, RamNvm, Transport, Uicc};

pub(crate) type Card = Uicc<RamNvm<NVM_SIZE>>;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    h(s).try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the spec digest's vectors (§8.1 to §8.3) and a BM-SC

pub(crate) const SELECT_USIM: &str = "00A4040C07A0000000871002";
pub(crate) const SELECT_ISIM: &str = "00A4040C07A0000000871004";
pub(crate) const VERIFY_PIN1: &str = "002000010831323334FFFFFFFF";
pub(crate) const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
pub(crate) const AUTN: &str = "55f328b43577b9b94a9ffac354dfafb3";
/// §8.3: AUTN with MAC* = MAC xor Trunc64(SHA-1(IK)).
pub(crate) const AUTN_STAR: &str = "55f328b43577b9b98c7f3f0d723fb244";
pub(crate) const RES: &str = "a54211d5e3ba50bf";
pub(crate) const CK: &str = "b40ba9a3c58b2a05bbf0d987b21bf8cb";
pub(crate) const IK: &str = "f769bcd751044604127672711c6d3441";
/// §8.2, Ks_ext_NAF (= MRK) for IMPI and NAF_Id below.
pub(crate) const KS_EXT_NAF: &str = "f519b9a4b75b451a1e36b9f2ed46e862a68735f51cd4a231d73841b21cd26334";
/// §8.2, Ks_int_NAF (= MUK).
pub(crate) const KS_INT_NAF: &str = "528d966e28f446754cddd71f235195aeefed207477908292b44ac2372cb51cb9";
pub(crate) const IMPI: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";
pub(crate) const BMSC: &str = "bmsc.example.org";
pub(crate) const B_TID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org";
pub(crate) const LIFETIME: &str = "2030-12-31T23:59:59Z";
/// Ua security protocol id of MBMS (TS 33.220 Annex H.3).
pub(crate) const UA_MBMS: [u8; 5] = [1, 0, 0, 0, 1];
pub(crate) const KDI: [u8; 3] = [0x00, 0xF1, 0x10];

/// 2026-01-01T00:00:00Z as Unix seconds.
pub(crate) const JAN_2026: u64 = 1_767_225_600;
/// 2031-01-01T00:00:00Z: after [`LIFETIME`].
pub(crate) const JAN_2031: u64 = 1_924_992_000;

/// An NTP-UTC timestamp for a Unix time, `n` in the fraction so that messages of one second differ.
pub(crate) fn ntp(unix: u64, n: u32) -> Timestamp {
    Timestamp::NtpUtc(((unix + mikey::NTP_UNIX_OFFSET) << 32) | u64::from(n))
}

pub(crate) fn ok(card: &mut Card, command: &str) {
    assert_eq!(sw(&send_hex(card, command)), 0x9000, "{command}");
}

pub(crate) fn bootstrap_apdu() -> String {
    format!("0088008423 DD 10 {RAND} 10 {AUTN_STAR} 00")
}

/// UPDATE BINARY of B-TID and lifetime at offset 1 + len(RAND) of the current EF.GBABP.
pub(crate) fn gbabp_update_apdu(b_tid: &str, lifetime: &str) -> Vec<u8> {
    let mut body = vec![b_tid.len() as u8];
    body.extend(b_tid.as_bytes());
    body.push(lifetime.len() as u8);
    body.extend(lifetime.as_bytes());
    let mut apdu = vec![0x00, 0xD6, 0x00, 0x11, body.len() as u8];
    apdu.extend(body);
    apdu
}

pub(crate) fn naf_id(fqdn: &str) -> Vec<u8> {
    let mut id = fqdn.as_bytes().to_vec();
    id.extend(UA_MBMS);
    id
}

pub(crate) fn naf_apdu(naf_id: &[u8], impi: &str) -> Vec<u8> {
    let mut data = vec![0xDE, naf_id.len() as u8];
    data.extend(naf_id);
    data.push(impi.len() as u8);
    data.extend(impi.as_bytes());
    let mut apdu = vec![0x00, 0x88, 0x00, 0x84, data.len() as u8];
    apdu.extend(data);
    apdu.push(0x00);
    apdu
}

/// `00 89 80 85 Lc | 53 L mode data | Le`, extended when it does not fit a short Lc.
pub(crate) fn mbms_apdu(mode: u8, data: &[u8]) -> Vec<u8> {
    let mut inner = vec![mode];
    inner.extend(data);
    let mut object = vec![0x53];
    match inner.len() {
        n if n < 0x80 => object.push(n as u8),
        n if n <= 0xFF => object.extend([0x81, n as u8]),
        n => object.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    object.extend(inner);
    let mut apdu = vec![0x00, 0x89, 0x80, 0x85];
    if object.len() <= 255 {
        apdu.push(object.len() as u8);
        apdu.extend(object);
        apdu.push(0x00);
    } else {
        apdu.push(0x00);
        apdu.extend((object.len() as u16).to_be_bytes());
        apdu.extend(object);
        apdu.extend([0x00, 0x00]);
    }
    apdu
}

/// A card with a GBA_U bootstrap (§8.4), B-TID and lifetime written, and the NAF derivation of
/// §8.2 done: its USIM holds Ks_int_NAF = [`KS_INT_NAF`] for `bmsc.example.org`.
pub(crate) fn gba_card() -> Card {
    let mut card = Uicc::power_on(personalized());
    ok(&mut card, SELECT_USIM);
    ok(&mut card, VERIFY_PIN1);
    assert_eq!(send_hex(&mut card, &bootstrap_apdu()), h(&format!("DB08 {RES} 9000")));
    ok(&mut card, "00A4000C026FD6");
    assert_eq!(sw(&send(&mut card, &gbabp_update_apdu(B_TID, LIFETIME))), 0x9000);
    let answer = send(&mut card, &naf_apdu(&naf_id(BMSC), IMPI));
    assert_eq!(answer, h(&format!("DB20 {KS_EXT_NAF} 9000")));
    card
}

/// The BM-SC of one MUK.
pub(crate) struct BmSc {
    pub muk: [u8; 32],
    pub idi: Vec<u8>,
    pub idr: Vec<u8>,
}

impl BmSc {
    /// The BM-SC `bmsc.example.org` with the §8.2 MUK and the B-TID of the bootstrap.
    pub(crate) fn spec() -> BmSc {
        BmSc { muk: arr(KS_INT_NAF), idi: BMSC.as_bytes().to_vec(), idr: B_TID.as_bytes().to_vec() }
    }

    /// A BM-SC whose MUK its BSF derives from the §8.1 Ks and RAND for `fqdn` ‖ MBMS and [`IMPI`].
    pub(crate) fn for_naf(fqdn: &str) -> BmSc {
        let ks = gba::Ks::new(arr(&format!("{CK}{IK}")));
        let naf = gba::NafId::new(fqdn, gba::UaSecurityProtocolId::MBMS).unwrap();
        let int = gba::kdf::derive_ks_int_naf(&ks, &arr(RAND), IMPI.as_bytes(), &naf).unwrap();
        BmSc { muk: *int.expose(), idi: fqdn.as_bytes().to_vec(), idr: B_TID.as_bytes().to_vec() }
    }

    fn muk(&self) -> mbms::Muk {
        mbms::Muk::new(self.muk)
    }

    pub(crate) fn msk_message(&self, ts: Timestamp, msk_id: u32, msk: &[u8; 16], v_bit: bool) -> Vec<u8> {
        let rand = [0x5Au8; 16];
        let params = MskMessageParams {
            csb_id: msk_id >> 16,
            v_bit,
            timestamp: ts,
            rand: &rand,
            idi: &self.idi,
            idr: &self.idr,
            key_domain_id: KeyDomainId(KDI),
            msk_id: MskId(msk_id),
            cs_id_map: CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT },
            policy: None,
            validity: KeyValidity::Null,
        };
        let mut out = [0u8; 512];
        let n = mbms::build_msk_message(&self.muk(), &params, &mbms::Msk::new(*msk), &mut out).unwrap();
        out[..n].to_vec()
    }

    pub(crate) fn solicited_pull(&self, ts: Timestamp, key_group: u16) -> Vec<u8> {
        let rand = [0xA5u8; 16];
        let params = SolicitedPullParams {
            csb_id: u32::from(key_group),
            timestamp: ts,
            rand: &rand,
            idi: &self.idi,
            idr: &self.idr,
            key_domain_id: KeyDomainId(KDI),
            key_group,
        };
        let mut out = [0u8; 512];
        let n = mbms::build_solicited_pull(&self.muk(), &params, &mut out).unwrap();
        out[..n].to_vec()
    }

    /// Check a verification message the card returned for `msk_message`.
    pub(crate) fn check_verification(&self, msk_message: &[u8], verification: &[u8]) {
        let msg = mbms::parse_msk_message(msk_message).unwrap();
        mbms::verify_verification_message(&self.muk(), &msg, verification).unwrap();
    }
}

pub(crate) fn mtk_message(
    msk: &[u8; 16],
    msk_id: u32,
    mtk_id: u32,
    mtk: &[u8; 16],
    salt: Option<&[u8; 14]>,
) -> Vec<u8> {
    let params = MtkMessageParams {
        csb_id: msk_id,
        timestamp: Timestamp::Counter(mtk_id),
        rand: None,
        key_domain_id: KeyDomainId(KDI),
        msk_id: MskId(msk_id),
        mtk_id: MtkId(mtk_id),
        cs_id_map: CsIdMap::Empty { cs_count: EMPTY_MAP_CS_COUNT },
        policy: None,
        validity: KeyValidity::Null,
    };
    let salt = salt.map(|s| mbms::MtkSalt::new(*s));
    let mut out = [0u8; 512];
    let n = mbms::build_mtk_message(
        &mbms::Msk::new(*msk),
        &params,
        &mbms::Mtk::new(*mtk),
        salt.as_ref(),
        &mut out,
    )
    .unwrap();
    out[..n].to_vec()
}

/// The data of an MBMS answer `53 L DB data 90 00`.
pub(crate) fn mbms_data(response: &[u8]) -> Vec<u8> {
    assert_eq!(sw(response), 0x9000, "{}", hex::encode_upper(response));
    let body = &response[..response.len() - 2];
    let (object, rest) = apdu::tlv::Tlv::parse(body).unwrap();
    assert!(rest.is_empty() && object.tag == 0x53 && object.value.first() == Some(&0xDB), "{body:02X?}");
    object.value[1..].to_vec()
}

pub(crate) const MSK_1: [u8; 16] = [0x11; 16];
pub(crate) const MSK_2: [u8; 16] = [0x22; 16];
pub(crate) const MSK_3: [u8; 16] = [0x33; 16];
pub(crate) const MTK: [u8; 16] = [0x7E; 16];
pub(crate) const SALT: [u8; 14] = [0x5C; 14];

/// Send `command`, expect `expected` and an unchanged NVM image.
fn refused(card: &mut Card, command: &[u8], expected: u16, what: &str) {
    let before = card.nvm().as_bytes().to_vec();
    let answer = send(card, command);
    assert_eq!(sw(&answer), expected, "{what}: {}", hex::encode_upper(&answer));
    assert_eq!(answer.len(), 2, "{what}: a refusal carries no data");
    assert!(card.nvm().as_bytes() == &before[..], "{what}: the refusal changed the NVM");
}

fn read_record(card: &mut Card, fid: &str, record: u8, len: u8) -> Vec<u8> {
    ok(card, &format!("00A4000C02{fid}"));
    let answer = send(card, &[0x00, 0xB2, record, 0x04, len]);
    assert_eq!(sw(&answer), 0x9000);
    answer[..answer.len() - 2].to_vec()
}

// ---------------------------------------------------------------------------------------------
// 3G context: TS 35.208 test sets 1 to 6

/// TS 35.208 §4.3 test sets 1 to 6: K, RAND, SQN, AMF, OPc, f1, f2, f3, f4, f5, f5*. Typed from
/// the published tables (as also listed by the `milenage` crate's tests and the spec digest §8.1).
const TEST_SETS: [[&str; 11]; 6] = [
    [
        "465b5ce8b199b49faa5f0a2ee238a6bc",
        "23553cbe9637a89d218ae64dae47bf35",
        "ff9bb4d0b607",
        "b9b9",
        "cd63cb71954a9f4e48a5994e37a02baf",
        "4a9ffac354dfafb3",
        "a54211d5e3ba50bf",
        "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        "f769bcd751044604127672711c6d3441",
        "aa689c648370",
        "451e8beca43b",
    ],
    [
        "0396eb317b6d1c36f19c1c84cd6ffd16",
        "c00d603103dcee52c4478119494202e8",
        "fd8eef40df7d",
        "af17",
        "53c15671c60a4b731c55b4a441c0bde2",
        "5df5b31807e258b0",
        "d3a628ed988620f0",
        "58c433ff7a7082acd424220f2b67c556",
        "21a8c1f929702adb3e738488b9f5c5da",
        "c47783995f72",
        "30f1197061c1",
    ],
    [
        "fec86ba6eb707ed08905757b1bb44b8f",
        "9f7c8d021accf4db213ccff0c7f71a6a",
        "9d0277595ffc",
        "725c",
        "1006020f0a478bf6b699f15c062e42b3",
        "9cabc3e99baf7281",
        "8011c48c0c214ed2",
        "5dbdbb2954e8f3cde665b046179a5098",
        "59a92d3b476a0443487055cf88b2307b",
        "33484dc2136b",
        "deacdd848cc6",
    ],
    [
        "9e5944aea94b81165c82fbf9f32db751",
        "ce83dbc54ac0274a157c17f80d017bd6",
        "0b604a81eca8",
        "9e09",
        "a64a507ae1a2a98bb88eb4210135dc87",
        "74a58220cba84c49",
        "f365cd683cd92e96",
        "e203edb3971574f5a94b0d61b816345d",
        "0c4524adeac041c4dd830d20854fc46b",
        "f0b9c08ad02e",
        "6085a86c6f63",
    ],
    [
        "4ab1deb05ca6ceb051fc98e77d026a84",
        "74b0cd6031a1c8339b2b6ce2b8c4a186",
        "e880a1b580b6",
        "9f07",
        "dcf07cbd51855290b92a07a9891e523e",
        "49e785dd12626ef2",
        "5860fc1bce351e7e",
        "7657766b373d1c2138f307e3de9242f9",
        "1c42e960d89b8fa99f2744e0708ccb53",
        "31e11a609118",
        "fe2555e54aa9",
    ],
    [
        "6c38a116ac280c454f59332ee35c8c4f",
        "ee6466bc96202c5a557abbeff8babf63",
        "414b98222181",
        "4464",
        "3803ef5363b947c6aaa225e58fae3934",
        "078adfb488241a57",
        "16c8233f05a0ac28",
        "3f8c7587fe8e4b233af676aede30ba3b",
        "a7466cc1e6b2a1337d49d3b66e95d7b4",
        "45b0f69ab06c",
        "1f53cd2b1113",
    ],
];

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn three_g_apdu(rand: &[u8], autn: &[u8]) -> Vec<u8> {
    let mut apdu = h("0088008122 10");
    apdu.extend(rand);
    apdu.push(0x10);
    apdu.extend(autn);
    apdu.push(0x00);
    apdu
}

/// A card personalized with a test set's K, OPc and AMF and an SQN_MS one SEQ below the set's SQN
/// (same IND), so that the set's AUTN is fresh.
fn card_for(set: &[&str; 11]) -> Card {
    let sqn = u64::from_str_radix(set[2], 16).unwrap() - 32;
    let sqn: [u8; 6] = sqn.to_be_bytes()[2..].try_into().unwrap();
    let profile = Personalization { k: arr(set[0]), opc: arr(set[4]), amf: arr(set[3]), sqn, ..PROFILE };
    let mut nvm = RamNvm::new();
    Uicc::personalize(&mut nvm, &profile).unwrap();
    let mut card = Uicc::power_on(nvm);
    ok(&mut card, SELECT_USIM);
    ok(&mut card, VERIFY_PIN1);
    card
}

#[test]
fn milenage_test_sets_1_to_6_through_apdus() {
    for (n, set) in TEST_SETS.iter().enumerate() {
        let [k, rand, sqn, amf, opc, f1, f2, f3, f4, f5, f5s] = set.map(h);
        // AUTN = SQN xor AK || AMF || MAC-A (TS 33.102 §6.3.2), from the published values.
        let autn = [xor(&sqn, &f5), amf.clone(), f1.clone()].concat();
        for transport in [Transport::T1, Transport::T0] {
            let mut card = card_for(set);
            card.set_transport(transport);
            let mut answer = send(&mut card, &three_g_apdu(&rand, &autn));
            if transport == Transport::T0 {
                assert_eq!(answer, [0x61, 0x2C], "set {}", n + 1);
                answer = send_hex(&mut card, "00C000002C");
            }
            let expected = [&[0xDB, 0x08][..], &f2, &[0x10], &f3, &[0x10], &f4, &[0x90, 0x00]].concat();
            assert_eq!(answer, expected, "test set {} ({transport:?})", n + 1);
            // Replayed: AUTS = SQN_MS xor AK* || MAC-S; SQN_MS xor AK* from the published f5*,
            // MAC-S = f1*(SQN_MS, RAND, 0000) from the `milenage` crate.
            let mut oracle = milenage::Milenage::new_with_opc(arr(set[0]), arr(set[4]));
            let mac_s = oracle.f1star(&arr(set[1]), &arr(set[2]), &[0, 0]);
            let mut answer = send(&mut card, &three_g_apdu(&rand, &autn));
            if transport == Transport::T0 {
                assert_eq!(answer, [0x61, 0x10]);
                answer = send_hex(&mut card, "00C0000010");
            }
            let expected = [&[0xDC, 0x0E][..], &xor(&sqn, &f5s), &mac_s, &[0x90, 0x00]].concat();
            assert_eq!(answer, expected, "test set {} resynchronisation", n + 1);
            let _ = (k.len(), opc.len());
        }
    }
}

#[test]
fn a_stale_sqn_on_a_new_card_is_answered_with_the_personalized_sqn_ms() {
    // SQN_MS of the test profile is ff9bb4d0b5e0; the network sends exactly that SQN (not fresh).
    let set = TEST_SETS[0];
    let mut oracle = milenage::Milenage::new_with_opc(arr(set[0]), arr(set[4]));
    let (rand, amf, sqn_ms) = (arr::<16>(set[1]), arr::<2>(set[3]), arr::<6>("ff9bb4d0b5e0"));
    let mac = oracle.f1(&rand, &sqn_ms, &amf);
    let autn = [xor(&sqn_ms, &h(set[9])), amf.to_vec(), mac.to_vec()].concat();
    let mut card = Uicc::power_on(personalized());
    ok(&mut card, SELECT_USIM);
    ok(&mut card, VERIFY_PIN1);
    let before = card.nvm().as_bytes().to_vec();
    let mac_s = oracle.f1star(&rand, &sqn_ms, &[0, 0]);
    let expected = [&[0xDC, 0x0E][..], &xor(&sqn_ms, &h(set[10])), &mac_s, &[0x90, 0x00]].concat();
    assert_eq!(send(&mut card, &three_g_apdu(&rand, &autn)), expected);
    assert!(card.nvm().as_bytes() == &before[..], "a synchronisation failure stores nothing");
}

// ---------------------------------------------------------------------------------------------
// GBA context

#[test]
fn gba_bootstrap_answers_res_only_and_refusals_store_nothing() {
    let mut card = gba_card();
    // Bootstrapping again with the spent challenge: AUTS, nothing stored.
    let before = card.nvm().as_bytes().to_vec();
    assert_eq!(sw(&send_hex(&mut card, &bootstrap_apdu())), 0x9000);
    assert!(card.nvm().as_bytes() == &before[..]);
    refused(
        &mut card,
        &h(&format!("0088008423 DD 10 {RAND} 10 {AUTN} 00")),
        0x9862,
        "plain AUTN in GBA context",
    );
    refused(&mut card, &three_g_apdu(&h(RAND), &h(AUTN_STAR)), 0x9862, "AUTN* in 3G context");
    // The Ks is kept internally: neither EF.GBABP nor any other file shows CK or IK.
    ok(&mut card, "00A4000C026FD6");
    let gbabp = send_hex(&mut card, "00B0000000");
    assert_eq!(gbabp[..18], h(&format!("10 {RAND} 28"))[..]);
}

#[test]
fn naf_key_list_replaces_the_least_recently_used_but_never_a_muk_in_use() {
    let mut card = gba_card();
    // Make bmsc.example.org's key a MUK in use.
    let bmsc = BmSc::spec();
    let m1 = bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(1, &m1))), Vec::<u8>::new());
    // Seven more NAFs fill the eight USIM slots; the ninth and tenth evict the least recently
    // used, skipping slot 1 (the MUK).
    for i in 2..=10 {
        let fqdn = format!("naf{i}.example.org");
        let answer = send(&mut card, &naf_apdu(&naf_id(&fqdn), IMPI));
        assert_eq!(sw(&answer), 0x9000, "{fqdn}");
    }
    let names: Vec<Vec<u8>> = (1..=8).map(|r| read_record(&mut card, "6FDA", r, 160)[2..].to_vec()).collect();
    assert!(names[0].starts_with(b"bmsc.example.org"), "the MUK in use stays in slot 1");
    assert!(names[1].starts_with(b"naf9.example.org"), "naf2 was the least recently used");
    assert!(names[2].starts_with(b"naf10.example.org"), "then naf3");
    assert!(names[3].starts_with(b"naf4.example.org"));
    // The MUK still works.
    let m2 = bmsc.msk_message(ntp(JAN_2026, 2), 0x0001_0002, &MSK_2, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m2))), 0x9000);
}

#[test]
fn a_nafs_newer_bootstrap_supersedes_its_old_key_unless_that_key_is_a_muk_in_use() {
    // Same NAF, new B-TID (a new bootstrapping written by the ME): the old entry is replaced.
    let mut card = gba_card();
    ok(&mut card, "00A4000C026FD6");
    let other_btid = "AAAAAAAAAAAAAAAAAAAAAA==@bsf.example.org";
    assert_eq!(sw(&send(&mut card, &gbabp_update_apdu(other_btid, LIFETIME))), 0x9000);
    assert_eq!(sw(&send(&mut card, &naf_apdu(&naf_id(BMSC), IMPI))), 0x9000);
    let first = read_record(&mut card, "6FDA", 1, 160);
    assert_eq!(&first[25..25 + other_btid.len()], other_btid.as_bytes());
    assert_eq!(read_record(&mut card, "6FDA", 2, 160), vec![0xFF; 160]);
    // Once the key is a MUK in use, a newer bootstrap's key goes into another slot.
    let mut card = gba_card();
    let m1 = BmSc::spec().msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m1))), 0x9000);
    ok(&mut card, "00A4000C026FD6");
    assert_eq!(sw(&send(&mut card, &gbabp_update_apdu(other_btid, LIFETIME))), 0x9000);
    assert_eq!(sw(&send(&mut card, &naf_apdu(&naf_id(BMSC), IMPI))), 0x9000);
    assert_eq!(&read_record(&mut card, "6FDA", 1, 160)[25..65], B_TID.as_bytes());
    assert_eq!(&read_record(&mut card, "6FDA", 2, 160)[25..65], other_btid.as_bytes());
}

#[test]
fn identifiers_too_long_for_the_records_are_refused() {
    let mut card = gba_card();
    ok(&mut card, "00A4000C026FD6");
    let long_btid = format!("{}@bsf.example.org", "A".repeat(64));
    assert_eq!(sw(&send(&mut card, &gbabp_update_apdu(&long_btid, LIFETIME))), 0x9000);
    // 2 + 105 + 2 + 80 bytes do not fit a 160-byte EF.GBANL record.
    let fqdn = format!("{}.example.org", "n".repeat(88));
    refused(&mut card, &naf_apdu(&naf_id(&fqdn), IMPI), 0x6A84, "NAF_Id + B-TID > EF.GBANL record");
    // 2 + 75 + 2 + 80 fit EF.GBANL, but the EF.MUK record the key would need (167) does not.
    let fqdn = format!("{}.example.org", "n".repeat(58));
    refused(&mut card, &naf_apdu(&naf_id(&fqdn), IMPI), 0x6A84, "B-TID + IDi > EF.MUK record");
    // The ISIM keeps no MUK: there only EF.GBANL counts.
    let mut card = Uicc::power_on(personalized());
    ok(&mut card, SELECT_ISIM);
    ok(&mut card, VERIFY_PIN1);
    assert_eq!(sw(&send_hex(&mut card, &bootstrap_apdu())), 0x9000);
    ok(&mut card, "00A4000C026FD5");
    assert_eq!(sw(&send(&mut card, &gbabp_update_apdu(&long_btid, LIFETIME))), 0x9000);
    assert_eq!(sw(&send(&mut card, &naf_apdu(&naf_id(&fqdn), IMPI))), 0x9000);
}

// ---------------------------------------------------------------------------------------------
// MBMS context

#[test]
fn msk_update_then_mtk_generation() {
    let mut card = gba_card();
    let bmsc = BmSc::spec();
    // MSK Update with the V bit: the answer is the verification message, checked by the BM-SC side.
    let m1 = bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, true);
    let verification = mbms_data(&send(&mut card, &mbms_apdu(1, &m1)));
    assert_eq!(verification.first(), Some(&0x01), "a MIKEY message (version 1)");
    bmsc.check_verification(&m1, &verification);
    // EF.MUK: A0 {80 B-TID, 82 IDi} 81 08 <timestamp>; EF.MSK: KDI, 1 pair, MTK counter 0.
    let ts = ntp(JAN_2026, 1).as_u64().to_be_bytes();
    let expected_muk =
        [&[0xA0, 0x3C, 0x80, 0x28][..], B_TID.as_bytes(), &[0x82, 0x10], BMSC.as_bytes(), &[0x81, 0x08], &ts]
            .concat();
    let muk = read_record(&mut card, "6FD8", 1, 160);
    assert_eq!(muk[..expected_muk.len()], expected_muk[..]);
    assert!(muk[expected_muk.len()..].iter().all(|&b| b == 0xFF));
    assert_eq!(read_record(&mut card, "6FD7", 1, 20), h("00F110 01 00010001 00000000 FFFFFFFF FFFFFFFF"));
    // MTK Generation: MTK || salt only.
    let t1 = mtk_message(&MSK_1, 0x0001_0001, 1, &MTK, Some(&SALT));
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(2, &t1))), [&MTK[..], &SALT].concat());
    assert_eq!(read_record(&mut card, "6FD7", 1, 20), h("00F110 01 00010001 00000001 FFFFFFFF FFFFFFFF"));
    // Replay and an older MTK ID: key freshness failure, nothing stored.
    refused(&mut card, &mbms_apdu(2, &t1), 0x9865, "MTK replay");
    let t2 = mtk_message(&MSK_1, 0x0001_0001, 2, &[0x7F; 16], None);
    assert_eq!(
        mbms_data(&send(&mut card, &mbms_apdu(2, &t2))),
        vec![0x7F; 16],
        "no salt sent, none returned"
    );
    refused(&mut card, &mbms_apdu(2, &t1), 0x9865, "older MTK ID");
    // MSK Update replay: freshness failure; a forged MAC: MAC failure; an unknown MSK: 6A88.
    refused(&mut card, &mbms_apdu(1, &m1), 0x9865, "MSK message replay");
    let mut forged = bmsc.msk_message(ntp(JAN_2026, 9), 0x0001_0009, &MSK_3, false);
    *forged.last_mut().unwrap() ^= 1;
    refused(&mut card, &mbms_apdu(1, &forged), 0x9862, "MSK message with a bad MAC");
    let unknown = mtk_message(&MSK_1, 0x0001_0007, 3, &MTK, None);
    refused(&mut card, &mbms_apdu(2, &unknown), 0x6A88, "MTK under an unknown MSK");
    let wrong_key = mtk_message(&MSK_2, 0x0001_0001, 3, &MTK, None);
    refused(&mut card, &mbms_apdu(2, &wrong_key), 0x9862, "MTK message under another key");
    // Another BM-SC's MUK (no such Ks_int_NAF): 69 85.
    let stranger = BmSc { idi: b"other.example.org".to_vec(), ..BmSc::spec() };
    let m = stranger.msk_message(ntp(JAN_2026, 10), 0x0001_0003, &MSK_3, false);
    refused(&mut card, &mbms_apdu(1, &m), 0x6985, "no MUK for IDi/IDr");
    // MBMS on the ISIM.
    ok(&mut card, SELECT_ISIM);
    refused(&mut card, &mbms_apdu(2, &t2), 0x9864, "MBMS on the ISIM");
}

#[test]
fn the_first_mtk_of_an_msk_may_have_any_id_and_a_redelivered_msk_keeps_its_counter() {
    let mut card = gba_card();
    let bmsc = BmSc::spec();
    let m1 = bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m1))), 0x9000);
    let t0 = mtk_message(&MSK_1, 0x0001_0001, 0, &MTK, None);
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(2, &t0))), MTK.to_vec());
    refused(&mut card, &mbms_apdu(2, &t0), 0x9865, "MTK ID 0 again");
    let t5 = mtk_message(&MSK_1, 0x0001_0001, 5, &MTK, None);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(2, &t5))), 0x9000);
    // The same MSK ID delivered again (new timestamp): the MTK counter stays at 5.
    let again = bmsc.msk_message(ntp(JAN_2026, 2), 0x0001_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &again))), 0x9000);
    refused(&mut card, &mbms_apdu(2, &t5), 0x9865, "MTK replay after MSK re-delivery");
    assert_eq!(read_record(&mut card, "6FD7", 1, 20), h("00F110 01 00010001 00000005 FFFFFFFF FFFFFFFF"));
}

#[test]
fn at_most_two_msks_per_key_group_the_older_is_deleted() {
    let mut card = gba_card();
    let bmsc = BmSc::spec();
    for (i, (id, msk)) in
        [(0x0001_0001, MSK_1), (0x0001_0002, MSK_2), (0x0001_0003, MSK_3)].iter().enumerate()
    {
        let m = bmsc.msk_message(ntp(JAN_2026, i as u32 + 1), *id, msk, false);
        assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m))), 0x9000);
    }
    assert_eq!(read_record(&mut card, "6FD7", 1, 20), h("00F110 02 00010002 00000000 00010003 00000000"));
    // The first MSK is gone; the second and third work.
    let t = |msk: &[u8; 16], id| mtk_message(msk, id, 1, &MTK, None);
    refused(&mut card, &mbms_apdu(2, &t(&MSK_1, 0x0001_0001)), 0x6A88, "deleted MSK");
    assert_eq!(sw(&send(&mut card, &mbms_apdu(2, &t(&MSK_2, 0x0001_0002)))), 0x9000);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(2, &t(&MSK_3, 0x0001_0003)))), 0x9000);
    // Another Key Group takes another record.
    let m = bmsc.msk_message(ntp(JAN_2026, 9), 0x0002_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m))), 0x9000);
    assert_eq!(read_record(&mut card, "6FD7", 2, 20), h("00F110 01 00020001 00000000 FFFFFFFF FFFFFFFF"));
    // MSK Deletion of Key Group 1: record 1 erased, its MSKs unusable; Key Group 2 untouched.
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(3, &h("00F110 0001")))), Vec::<u8>::new());
    assert_eq!(read_record(&mut card, "6FD7", 1, 20), vec![0xFF; 20]);
    refused(&mut card, &mbms_apdu(2, &t(&MSK_3, 0x0001_0003)), 0x6A88, "deleted Key Group");
    refused(&mut card, &mbms_apdu(3, &h("00F110 0001")), 0x6A88, "Key Group deleted twice");
    assert_eq!(sw(&send(&mut card, &mbms_apdu(2, &t(&MSK_1, 0x0002_0001)))), 0x9000);
}

#[test]
fn ef_msk_and_ef_muk_full() {
    let mut card = gba_card();
    let bmsc = BmSc::spec();
    for group in 1..=4u32 {
        let m = bmsc.msk_message(ntp(JAN_2026, group), group << 16 | 1, &MSK_1, false);
        assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m))), 0x9000);
    }
    let m = bmsc.msk_message(ntp(JAN_2026, 5), 5 << 16 | 1, &MSK_1, false);
    refused(&mut card, &mbms_apdu(1, &m), 0x9866, "fifth Key Group");
    // EF.MUK has four records, one per BM-SC: four BM-SCs deliver MSKs, a fifth is refused. The
    // other BM-SCs' MUKs are what their BSF computes: KDF(Ks, "gba-u", RAND, IMPI, NAF_Id).
    let mut card = gba_card();
    for i in 1..=5u32 {
        let bmsc = if i == 1 { BmSc::spec() } else { BmSc::for_naf(&format!("bmsc{i}.example.org")) };
        if i > 1 {
            let fqdn = String::from_utf8(bmsc.idi.clone()).unwrap();
            assert_eq!(sw(&send(&mut card, &naf_apdu(&naf_id(&fqdn), IMPI))), 0x9000);
        }
        let m = bmsc.msk_message(ntp(JAN_2026, i), 0x0001_0000 | i, &MSK_1, false);
        if i <= 4 {
            assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m))), 0x9000, "BM-SC {i}");
        } else {
            refused(&mut card, &mbms_apdu(1, &m), 0x9867, "EF.MUK full");
        }
    }
}

#[test]
fn solicited_pull_and_the_muk_lifetime() {
    let bmsc = BmSc::spec();
    // A valid MUK: the answer tells the ME to run a basic MSK request for Key Group 7.
    let mut card = gba_card();
    let pull = bmsc.solicited_pull(ntp(JAN_2026, 1), 7);
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(1, &pull))), h("00 00F110 0007"));
    refused(&mut card, &mbms_apdu(1, &pull), 0x9865, "solicited pull replay");
    // An expired MUK that was never used: refused, for a pull as for an MSK.
    let mut card = gba_card();
    let late_pull = bmsc.solicited_pull(ntp(JAN_2031, 1), 7);
    refused(&mut card, &mbms_apdu(1, &late_pull), 0x9863, "expired MUK never used");
    let late_msk = bmsc.msk_message(ntp(JAN_2031, 2), 0x0007_0001, &MSK_1, false);
    refused(&mut card, &mbms_apdu(1, &late_msk), 0x9863, "expired MUK");
    // Once used (an MSK delivered before the lifetime ended), the expired MUK still verifies a
    // solicited pull (TS 33.246 §6.3.2.2.4, CR 027), and nothing else.
    let m1 = bmsc.msk_message(ntp(JAN_2026, 1), 0x0007_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m1))), 0x9000);
    refused(&mut card, &mbms_apdu(1, &late_msk), 0x9863, "expired MUK for an MSK");
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(1, &late_pull))), h("00 00F110 0007"));
    refused(&mut card, &mbms_apdu(1, &late_pull), 0x9865, "expired-MUK pull replay");
    // A forged pull with the expired MUK: MAC failure.
    let mut forged = bmsc.solicited_pull(ntp(JAN_2031, 5), 7);
    *forged.last_mut().unwrap() ^= 0x80;
    refused(&mut card, &mbms_apdu(1, &forged), 0x9862, "forged pull");
    // A COUNTER timestamp tells no time: the MUK counts as valid.
    let mut card = gba_card();
    let counter = bmsc.msk_message(Timestamp::Counter(3), 0x0007_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &counter))), 0x9000);
}

#[test]
fn muk_deletion_removes_the_muk_and_its_key() {
    let mut card = gba_card();
    let bmsc = BmSc::spec();
    let m1 = bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(1, &m1))), 0x9000);
    let mut muk_id = vec![0xA0, 0x3C, 0x80, 0x28];
    muk_id.extend(B_TID.as_bytes());
    muk_id.extend([0x82, 0x10]);
    muk_id.extend(BMSC.as_bytes());
    assert_eq!(mbms_data(&send(&mut card, &mbms_apdu(4, &muk_id))), Vec::<u8>::new());
    assert_eq!(read_record(&mut card, "6FD8", 1, 160), vec![0xFF; 160]);
    assert_eq!(read_record(&mut card, "6FDA", 1, 160), vec![0xFF; 160]);
    refused(&mut card, &mbms_apdu(4, &muk_id), 0x6A88, "MUK deleted twice");
    let m2 = bmsc.msk_message(ntp(JAN_2026, 2), 0x0001_0002, &MSK_2, false);
    refused(&mut card, &mbms_apdu(1, &m2), 0x6985, "the deleted MUK");
    // The MSK it delivered is still there (MSK Deletion is separate).
    let t = mtk_message(&MSK_1, 0x0001_0001, 1, &MTK, None);
    assert_eq!(sw(&send(&mut card, &mbms_apdu(2, &t))), 0x9000);
}

#[test]
fn mbms_under_t0() {
    let mut card = gba_card();
    card.set_transport(Transport::T0);
    let m1 = BmSc::spec().msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, false);
    assert_eq!(send(&mut card, &mbms_apdu(1, &m1)), [0x61, 0x03]);
    assert_eq!(send_hex(&mut card, "00C0000003"), h("53 01 DB 9000"));
    let t = mtk_message(&MSK_1, 0x0001_0001, 1, &MTK, Some(&SALT));
    assert_eq!(send(&mut card, &mbms_apdu(2, &t)), [0x61, 0x21]);
    let answer = send_hex(&mut card, "00C0000021");
    assert_eq!(answer, [&h("53 1F DB")[..], &MTK, &SALT, &[0x90, 0x00]].concat());
}

// ---------------------------------------------------------------------------------------------
// Secrets never leave the card

/// Every 8-byte window of `secret` that appears in `haystack`.
fn windows_in(secret: &[u8], haystack: &[u8]) -> bool {
    secret.windows(8).any(|w| haystack.windows(8).any(|x| x == w))
}

#[test]
fn no_ks_ks_int_naf_muk_or_msk_bytes_in_any_response_or_file() {
    let mut responses: Vec<Vec<u8>> = Vec::new();
    fn log(responses: &mut Vec<Vec<u8>>, card: &mut Card, command: &[u8]) -> Vec<u8> {
        let answer = send(card, command);
        responses.push(answer.clone());
        answer
    }
    for transport in [Transport::T1, Transport::T0] {
        let mut card = Uicc::power_on(personalized());
        card.set_transport(transport);
        let bmsc = BmSc::spec();
        let messages: Vec<Vec<u8>> = vec![
            h(SELECT_USIM),
            h(VERIFY_PIN1),
            h(&bootstrap_apdu()),
            h("00A4000C026FD6"),
            gbabp_update_apdu(B_TID, LIFETIME),
            naf_apdu(&naf_id(BMSC), IMPI),
            naf_apdu(&naf_id("naf2.example.org"), IMPI),
            mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, true)),
            mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 2), 0x0001_0002, &MSK_2, true)),
            mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 3), 0x0001_0003, &MSK_3, true)),
            mbms_apdu(2, &mtk_message(&MSK_3, 0x0001_0003, 1, &MTK, Some(&SALT))),
            mbms_apdu(2, &mtk_message(&MSK_2, 0x0001_0002, 1, &MTK, None)),
            mbms_apdu(1, &bmsc.solicited_pull(ntp(JAN_2026, 4), 1)),
            mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 5), 0x0001_0004, &MSK_1, false)),
            mbms_apdu(3, &h("00F110 0001")),
        ];
        for command in &messages {
            let answer = log(&mut responses, &mut card, command);
            if answer.len() == 2 && answer[0] == 0x61 {
                log(&mut responses, &mut card, &[0x00, 0xC0, 0x00, 0x00, answer[1]]);
            }
        }
        // Every readable file of both applications.
        for app in [SELECT_USIM, SELECT_ISIM] {
            log(&mut responses, &mut card, &h(app));
            for ef in Ef::ALL {
                let info = ef.info();
                let fid = info.fid.to_be_bytes();
                log(&mut responses, &mut card, &[0x00, 0xA4, 0x00, 0x0C, 0x02, fid[0], fid[1]]);
                match info.structure {
                    crate::fs::Structure::Transparent { .. } => {
                        log(&mut responses, &mut card, &h("00B0000000"));
                    }
                    crate::fs::Structure::LinearFixed { record_len, records } => {
                        for r in 1..=records {
                            log(&mut responses, &mut card, &[0x00, 0xB2, r, 0x04, record_len]);
                        }
                    }
                }
            }
        }
    }
    // The sequence did what it should: the MTK came out (an allowed output), and the key store
    // holds the secrets the check looks for.
    assert!(responses.iter().any(|r| windows_in(&MTK, r)), "the MTK is an allowed output");
    assert!(responses.iter().filter(|r| r.len() > 2).count() > 60);
    let ks = [h(CK), h(IK)].concat();
    let secrets: [(&str, Vec<u8>); 6] = [
        ("Ks", ks),
        ("Ks_int_NAF / MUK", h(KS_INT_NAF)),
        ("MSK 1", MSK_1.to_vec()),
        ("MSK 2", MSK_2.to_vec()),
        ("MSK 3", MSK_3.to_vec()),
        ("CK", h(CK)),
    ];
    for response in &responses {
        for (name, secret) in &secrets {
            assert!(!windows_in(secret, response), "{name} leaked in {}", hex::encode_upper(response));
        }
    }
    assert!(responses.iter().any(|r| windows_in(&h(KS_EXT_NAF), r)), "Ks_ext_NAF is an allowed output");
}
