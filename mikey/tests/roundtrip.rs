//! Property tests: `parse(build(x)) == x` for every payload and whole messages, the MBMS builders
//! against their receivers, and "parsing never panics" on arbitrary and on mutated input.

mod common;

use common::*;
use mikey::mbms::{
    KeyDomainId, KeyValidityData, Msk, MskId, MskMessageParams, MskUpdate, Mtk, MtkId, MtkMessageParams,
    MtkSalt, Muk, build_msk_message, build_mtk_message, build_verification_message, parse_msk_message,
    parse_mtk_message, profile, verify_and_decrypt_msk, verify_and_decrypt_mtk, verify_verification_message,
};
use mikey::{
    CsIdMap, DataType, EncrAlg, ErrPayload, ErrorNo, GeneralExtension, GenericIdEntries, GenericIdEntry, Hdr,
    Id, IdRole, IdType, Idr, Kemac, KeyData, KeyDataList, KeyId, KeyIdType, KeyIds, KeyType, KeyValidity,
    MacAlg, Message, MessageBuilder, Payload, PrfFunc, ProtType, Rand, SecurityPolicy, SpParam, SpParams,
    SrtpIdEntries, SrtpIdEntry, Timestamp, Verification,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        any::<u64>().prop_map(Timestamp::NtpUtc),
        any::<u64>().prop_map(Timestamp::Ntp),
        any::<u32>().prop_map(Timestamp::Counter),
    ]
}

type Tlvs = Vec<(u8, Vec<u8>)>;

/// An owned mirror of [`Payload`] for strategies.
#[derive(Debug, Clone)]
enum Owned {
    Kemac(u8, Vec<u8>, Option<Vec<u8>>),
    T(Timestamp),
    Id(u8, Vec<u8>),
    Idr(u8, u8, Vec<u8>),
    V(Option<Vec<u8>>),
    Sp(u8, u8, Tlvs),
    Rand(Vec<u8>),
    Err(u8),
    KeyIds(Tlvs),
    Ext(u8, Vec<u8>),
}

fn tlvs() -> impl Strategy<Value = Tlvs> {
    vec((any::<u8>(), bytes(20)), 0..6)
}

fn mac() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(vec(any::<u8>(), 20..=20))
}

fn plain_payload() -> impl Strategy<Value = Owned> {
    prop_oneof![
        timestamp().prop_map(Owned::T),
        (any::<u8>(), bytes(80)).prop_map(|(t, d)| Owned::Id(t, d)),
        (any::<u8>(), any::<u8>(), bytes(80)).prop_map(|(r, t, d)| Owned::Idr(r, t, d)),
        (any::<u8>(), any::<u8>(), tlvs()).prop_map(|(n, p, t)| Owned::Sp(n, p, t)),
        bytes(64).prop_map(Owned::Rand),
        any::<u8>().prop_map(Owned::Err),
        tlvs().prop_map(Owned::KeyIds),
        (any::<u8>().prop_filter("type 3 is Key ID", |t| *t != 3), bytes(40))
            .prop_map(|(t, d)| Owned::Ext(t, d)),
    ]
}

fn mac_payload() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (0u8..=2, bytes(120), mac()).prop_map(|(e, d, m)| Owned::Kemac(e, d, m)),
        mac().prop_map(Owned::V),
    ]
}

/// Items the borrowed views point into.
struct Scratch<'a> {
    sp: Vec<SpParam<'a>>,
    ids: Vec<KeyId<'a>>,
}

fn scratch(o: &Owned) -> Scratch<'_> {
    let mut s = Scratch { sp: Vec::new(), ids: Vec::new() };
    match o {
        Owned::Sp(_, _, t) => s.sp = t.iter().map(|(k, v)| SpParam { param_type: *k, value: v }).collect(),
        Owned::KeyIds(t) => {
            s.ids = t.iter().map(|(k, v)| KeyId { key_id_type: KeyIdType(*k), value: v }).collect()
        }
        _ => {}
    }
    s
}

fn view<'a>(o: &'a Owned, s: &'a Scratch<'a>) -> Payload<'a> {
    let mac_of = |m: &'a Option<Vec<u8>>| match m {
        Some(m) => (MacAlg::HmacSha1_160, &m[..]),
        None => (MacAlg::Null, &[][..]),
    };
    match o {
        Owned::Kemac(e, d, m) => {
            let (mac_alg, mac) = mac_of(m);
            Payload::Kemac(Kemac {
                encr_alg: EncrAlg::from_u8(*e).expect("0..=2"),
                encr_data: d,
                mac_alg,
                mac,
            })
        }
        Owned::T(t) => Payload::Timestamp(*t),
        Owned::Id(t, d) => Payload::Id(Id { id_type: IdType(*t), data: d }),
        Owned::Idr(r, t, d) => Payload::Idr(Idr { role: IdRole(*r), id_type: IdType(*t), data: d }),
        Owned::V(m) => {
            let (mac_alg, mac) = mac_of(m);
            Payload::Verification(Verification { mac_alg, mac })
        }
        Owned::Sp(n, p, _) => Payload::SecurityPolicy(SecurityPolicy {
            policy_no: *n,
            prot_type: ProtType(*p),
            params: SpParams::from_items(&s.sp),
        }),
        Owned::Rand(r) => Payload::Rand(Rand { rand: r }),
        Owned::Err(e) => Payload::Err(ErrPayload { error_no: ErrorNo(*e) }),
        Owned::KeyIds(_) => {
            Payload::GeneralExtension(GeneralExtension::KeyIdInfo(KeyIds::from_items(&s.ids)))
        }
        Owned::Ext(t, d) => Payload::GeneralExtension(GeneralExtension::Other { ext_type: *t, data: d }),
    }
}

type OwnedGeneric = (u8, u8, bool, Vec<u8>, Vec<u8>, Vec<u8>);

#[derive(Debug, Clone)]
enum OwnedMap {
    Srtp(Vec<SrtpIdEntry>),
    Empty(u8),
    Generic(Vec<OwnedGeneric>),
}

#[derive(Debug, Clone)]
struct OwnedHdr {
    data_type: u8,
    v: bool,
    prf: PrfFunc,
    csb_id: u32,
    map: OwnedMap,
}

fn hdr() -> impl Strategy<Value = OwnedHdr> {
    let srtp = (any::<u8>(), any::<u32>(), any::<u32>()).prop_map(|(p, s, r)| SrtpIdEntry {
        policy_no: p,
        ssrc: s,
        roc: r,
    });
    let generic = (any::<u8>(), any::<u8>(), any::<bool>(), bytes(6), bytes(12), bytes(6));
    let map = prop_oneof![
        vec(srtp, 0..5).prop_map(OwnedMap::Srtp),
        any::<u8>().prop_map(OwnedMap::Empty),
        vec(generic, 0..4).prop_map(OwnedMap::Generic),
    ];
    let prf = prop_oneof![Just(PrfFunc::MikeyHmacSha1), Just(PrfFunc::HmacSha256)];
    (any::<u8>(), any::<bool>(), prf, any::<u32>(), map)
        .prop_map(|(data_type, v, prf, csb_id, map)| OwnedHdr { data_type, v, prf, csb_id, map })
}

fn generic_view(g: &[OwnedGeneric]) -> Vec<GenericIdEntry<'_>> {
    g.iter()
        .map(|(cs_id, prot_type, s, p, d, spi)| GenericIdEntry {
            cs_id: *cs_id,
            prot_type: *prot_type,
            s: *s,
            policy_nos: p,
            session_data: d,
            spi,
        })
        .collect()
}

fn hdr_view<'a>(h: &'a OwnedHdr, generic: &'a [GenericIdEntry<'a>]) -> Hdr<'a> {
    Hdr {
        data_type: DataType(h.data_type),
        v: h.v,
        prf: h.prf,
        csb_id: h.csb_id,
        cs_id_map: match &h.map {
            OwnedMap::Srtp(e) => CsIdMap::SrtpId(SrtpIdEntries::from_items(e)),
            OwnedMap::Empty(n) => CsIdMap::Empty { cs_count: *n },
            OwnedMap::Generic(_) => CsIdMap::GenericId(GenericIdEntries::from_items(generic)),
        },
    }
}

/// Owned key data: TEK?, key, salt, KV type, KV value 1, KV value 2.
type OwnedKeyData = (bool, Vec<u8>, Option<Vec<u8>>, u8, Vec<u8>, Vec<u8>);

fn key_data() -> impl Strategy<Value = OwnedKeyData> {
    (any::<bool>(), bytes(40), prop::option::of(bytes(20)), 0u8..3, bytes(10), bytes(10))
}

fn kd_view(k: &OwnedKeyData) -> KeyData<'_> {
    let (tek, key, salt, kv, a, b) = k;
    KeyData {
        key_type: if *tek { KeyType::Tek } else { KeyType::Tgk },
        key,
        salt: salt.as_deref(),
        kv: match kv {
            0 => KeyValidity::Null,
            1 => KeyValidity::Spi(a),
            _ => KeyValidity::Interval { from: a, to: b },
        },
    }
}

/// Feeds bytes to every receiving entry point; returns nothing, must not panic.
fn exercise(bytes: &[u8]) {
    if let Ok(m) = Message::parse(bytes) {
        for p in m.payloads() {
            let _ = p.encoded_len();
            if let Payload::Kemac(k) = p {
                let _ = KeyDataList::parse(k.encr_data).map(|l| l.iter().count());
            }
        }
        let _ = (m.timestamp(), m.rand(), m.kemac(), m.key_ids(), m.ids().count(), m.last_payload());
        // Rebuilding a parsed message gives the same bytes (ERR's reserved bytes are not kept).
        if m.count(mikey::PayloadType::Err) == 0 {
            let mut out = vec![0u8; bytes.len()];
            let mut b = MessageBuilder::new(&mut out, m.hdr()).expect("rebuild hdr");
            for p in m.payloads() {
                b.push(&p).expect("rebuild payload");
            }
            let n = b.finish();
            assert_eq!(&out[..n], bytes);
        }
    }
    if let Ok(m) = parse_msk_message(bytes) {
        let _ = verify_and_decrypt_msk(&Muk::new(MUK), &m);
        let mut out = [0u8; 300];
        let _ = build_verification_message(&Muk::new(MUK), &m, &mut out);
    }
    if let Ok(m) = parse_mtk_message(bytes) {
        let _ = verify_and_decrypt_mtk(&Msk::new(MSK), &m);
    }
    let _ = KeyDataList::parse(bytes).map(|l| l.iter().count());
}

fn valid_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    let n = build_msk_message(&Muk::new(MUK), &msk_params(true, 3), &Msk::new(MSK), &mut buf).expect("msk");
    out.push(buf[..n].to_vec());
    let msg = parse_msk_message(&out[0]).expect("parse");
    let mut vb = [0u8; 256];
    let vn = build_verification_message(&Muk::new(MUK), &msg, &mut vb).expect("ver");
    let salt = MtkSalt::new(SALT);
    let n = build_mtk_message(&Msk::new(MSK), &mtk_params(4, true), &Mtk::new(MTK), Some(&salt), &mut buf)
        .expect("mtk");
    out.push(buf[..n].to_vec());
    out.push(vb[..vn].to_vec());
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(m: &mut Vec<u8>, muts: &[Mutation]) {
    for mu in muts {
        let len = m.len().max(1);
        match *mu {
            Mutation::Set(i, b) => {
                if !m.is_empty() {
                    m[i % len] = b;
                }
            }
            Mutation::Truncate(i) => m.truncate(i % len),
            Mutation::Insert(i, b) => m.insert(i % (m.len() + 1), b),
            Mutation::Remove(i) => {
                if !m.is_empty() {
                    m.remove(i % len);
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn message_round_trip(h in hdr(), body in vec(plain_payload(), 0..7), last in prop::option::of(mac_payload())) {
        let owned: Vec<Owned> = body.into_iter().chain(last).collect();
        let scratches: Vec<Scratch<'_>> = owned.iter().map(scratch).collect();
        let views: Vec<Payload<'_>> = owned.iter().zip(&scratches).map(|(o, s)| view(o, s)).collect();
        let generic = match &h.map { OwnedMap::Generic(g) => generic_view(g), _ => Vec::new() };
        let hv = hdr_view(&h, &generic);
        let mut buf = vec![0u8; 4096];
        let mut b = MessageBuilder::new(&mut buf, &hv).expect("hdr");
        for p in &views {
            b.push(p).expect("push");
        }
        let n = b.finish();
        let expected_len = hv.encoded_len() + views.iter().map(Payload::encoded_len).sum::<usize>();
        prop_assert_eq!(n, expected_len);
        let bytes = buf[..n].to_vec();
        let msg = Message::parse(&bytes).expect("parse");
        prop_assert_eq!(*msg.hdr(), hv);
        let parsed: Vec<Payload<'_>> = msg.payloads().collect();
        prop_assert_eq!(&parsed, &views);
        exercise(&bytes);
    }

    #[test]
    fn key_data_round_trip(items in vec(key_data(), 0..5)) {
        let views: Vec<KeyData<'_>> = items.iter().map(kd_view).collect();
        let mut buf = vec![0u8; 1024];
        let n = KeyDataList::encode(&views, &mut buf).expect("encode");
        prop_assert_eq!(n, KeyDataList::encoded_len(&views));
        let list = KeyDataList::parse(&buf[..n]).expect("parse");
        prop_assert_eq!(list.len(), views.len());
        prop_assert_eq!(list.iter().collect::<Vec<_>>(), views);
    }

    #[test]
    fn parse_never_panics(b in bytes(400)) {
        exercise(&b);
    }

    #[test]
    fn parse_never_panics_on_mutated_messages(which in 0usize..3, muts in vec(mutation(), 1..6)) {
        let original = valid_messages().swap_remove(which);
        let mut m = original.clone();
        apply(&mut m, &muts);
        exercise(&m);
        if m != original {
            if let Ok(msg) = parse_msk_message(&m) {
                prop_assert!(verify_and_decrypt_msk(&Muk::new(MUK), &msg).is_err());
            }
            if let Ok(msg) = parse_mtk_message(&m) {
                prop_assert!(verify_and_decrypt_mtk(&Msk::new(MSK), &msg).is_err());
            }
        }
    }

    #[test]
    fn msk_message_fields_survive(
        muk in any::<[u8; 32]>(),
        msk in any::<[u8; 16]>(),
        csb_id in any::<u32>(),
        v_bit in any::<bool>(),
        ts in timestamp(),
        rand in vec(any::<u8>(), 16..64),
        idi in bytes(100),
        idr in bytes(100),
        kd in any::<[u8; 3]>(),
        msk_id in any::<u32>().prop_filter("not a solicited pull", |id| !MskId(*id).is_solicited_pull()),
        kv in (0u8..3, bytes(16), bytes(16)),
    ) {
        let validity = match kv.0 {
            0 => KeyValidity::Null,
            1 => KeyValidity::Spi(&kv.1),
            _ => KeyValidity::Interval { from: &kv.1, to: &kv.2 },
        };
        let p = MskMessageParams {
            csb_id, v_bit, timestamp: ts, rand: &rand, idi: &idi, idr: &idr,
            key_domain_id: KeyDomainId(kd), msk_id: MskId(msk_id),
            cs_id_map: CsIdMap::Empty { cs_count: profile::EMPTY_MAP_CS_COUNT }, policy: None, validity,
        };
        let mut buf = [0u8; 1024];
        let n = build_msk_message(&Muk::new(muk), &p, &Msk::new(msk), &mut buf).expect("build");
        let msg = parse_msk_message(&buf[..n]).expect("parse");
        prop_assert_eq!(msg.idi().data, &idi[..]);
        prop_assert_eq!(msg.idr().data, &idr[..]);
        prop_assert_eq!(msg.csb_id(), csb_id);
        let MskUpdate::Msk(d) = verify_and_decrypt_msk(&Muk::new(muk), &msg).expect("verify") else {
            panic!("not an MSK");
        };
        prop_assert_eq!(d.msk.as_bytes(), &msk);
        prop_assert_eq!(d.msk_id, MskId(msk_id));
        prop_assert_eq!(d.key_domain_id, KeyDomainId(kd));
        prop_assert_eq!(d.timestamp, ts);
        prop_assert_eq!(d.v_bit, v_bit);
        prop_assert_eq!(d.validity.as_wire(), validity);
        let mut vb = [0u8; 512];
        let vn = build_verification_message(&Muk::new(muk), &msg, &mut vb).expect("ver");
        prop_assert!(verify_verification_message(&Muk::new(muk), &msg, &vb[..vn]).is_ok());
    }

    #[test]
    fn mtk_message_fields_survive(
        msk in any::<[u8; 16]>(),
        mtk in any::<[u8; 16]>(),
        salt in prop::option::of(any::<[u8; 14]>()),
        csb_id in any::<u32>(),
        counter in any::<u32>(),
        rand in prop::option::of(vec(any::<u8>(), 16..40)),
        kd in any::<[u8; 3]>(),
        msk_id in any::<u32>(),
        mtk_id in 0..=MtkId::MAX,
    ) {
        let p = MtkMessageParams {
            csb_id, timestamp: Timestamp::Counter(counter), rand: rand.as_deref(),
            key_domain_id: KeyDomainId(kd), msk_id: MskId(msk_id), mtk_id: MtkId(mtk_id),
            cs_id_map: CsIdMap::Empty { cs_count: 0 }, policy: None, validity: KeyValidity::Null,
        };
        let salt = salt.map(MtkSalt::new);
        let mut buf = [0u8; 512];
        let n = build_mtk_message(&Msk::new(msk), &p, &Mtk::new(mtk), salt.as_ref(), &mut buf).expect("build");
        let msg = parse_mtk_message(&buf[..n]).expect("parse");
        let d = verify_and_decrypt_mtk(&Msk::new(msk), &msg).expect("verify");
        prop_assert_eq!(d.mtk.as_bytes(), &mtk);
        prop_assert_eq!(d.salt.map(|s| *s.as_bytes()), salt.map(|s| *s.as_bytes()));
        prop_assert_eq!(d.mtk_id, MtkId(mtk_id));
        prop_assert_eq!(d.msk_id, MskId(msk_id));
        prop_assert_eq!(d.key_domain_id, KeyDomainId(kd));
        prop_assert_eq!(d.timestamp, Timestamp::Counter(counter));
        prop_assert_eq!(d.validity, KeyValidityData::Null);
    }
}
