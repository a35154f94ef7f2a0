//! `keysim compare`: one BM-SC stream (TS 33.246 §6.3–§6.6) through the UICC-based path (GBA_U, MBMS
//! keys on the card) and the ME-based path (GBA_ME, keys in the ME), side by side.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gba::{AuthVector, BTid, Milenage, NafId, Sqn, UaSecurityProtocolId};
use me::{
    BootstrapOutcome, Card, GbaClient, GbaVariant, KeyManagementPath, KeyStore, MbmsKeyManagement,
    MbmsReceiver, MeBased, UiccBased, choose_path,
};
use network::bmsc_stream::{BmscStream, BmscStreamConfig};
use serde::Serialize;
use sim_reader::trace::MemoryTrace;
use sim_reader::{CardProfile, Emulator, Protocol, RawExchange, Traced};

use crate::cli::CompareArgs;

/// The BSF domain of the B-TIDs.
const BSF_DOMAIN: &str = "bsf.example.org";
/// The BM-SC (NAF) FQDN.
const BMSC_FQDN: &str = "bmsc.example.org";
/// Key lifetime written into the card.
const LIFETIME: &str = "2099-12-31T23:59:59Z";
/// The MBMS stream of the comparison.
const STREAM: u32 = 1;
/// SQN index bits of the card's SQN array (TS 33.102 Annex C.3.2).
const IND_BITS: u32 = gba::sqn::IND_LEN_BITS;

#[derive(Serialize, Default)]
struct PathReport {
    path: &'static str,
    gba: &'static str,
    muk_and_msk_held_by: &'static str,
    apdus: usize,
    apdu_bytes: usize,
    mtk_updates: usize,
    mean_mtk_update_us: f64,
    packets_decrypted: usize,
    packets_failed: usize,
    secrets_on_card_interface: usize,
}

#[derive(Serialize)]
struct Report {
    uicc: PathReport,
    me: PathReport,
    mtks_identical: bool,
    media_identical: bool,
    ok: bool,
}

/// The network's HSS/BSF for the built-in profile: authentication vectors above the card's SQN.
struct Hss {
    m: Milenage,
    amf: [u8; 2],
    next_seq: u64,
}

impl Hss {
    fn new(p: &CardProfile) -> Self {
        Hss {
            m: Milenage::new(p.k(), p.opc()),
            amf: *p.amf(),
            next_seq: Sqn::from_bytes(p.sqn()).seq(IND_BITS) + 1,
        }
    }

    fn vector(&mut self, rand: &[u8; 16]) -> Result<AuthVector> {
        let sqn = Sqn::from_seq_ind(self.next_seq, 0, IND_BITS).map_err(|e| anyhow!("SQN: {e}"))?;
        self.next_seq += 1;
        Ok(AuthVector::generate(&self.m, rand, sqn, &self.amf))
    }
}

struct Ue {
    _gba: GbaClient<Traced<Emulator>>,
    km: Box<dyn MbmsKeyManagement>,
    trace: MemoryTrace,
    rx: MbmsReceiver,
    report: PathReport,
    mtk_time: Duration,
}

fn bmsc_naf_id() -> Result<NafId> {
    NafId::new(BMSC_FQDN, UaSecurityProtocolId::MBMS).map_err(|e| anyhow!("NAF_Id: {e}"))
}

/// Power on a UE on its own emulated card, bootstrap it and derive its NAF keys; return the UE and
/// the MUK the BM-SC must use with it (computed on the network side from the vector).
fn ue(
    profile: &CardProfile,
    variant: GbaVariant,
    rand: [u8; 16],
    store_dir: &std::path::Path,
) -> Result<(Ue, mikey::mbms::Muk, String, Vec<u8>)> {
    let trace = MemoryTrace::new();
    let protocol = if variant == GbaVariant::GbaU { Protocol::T0 } else { Protocol::T1 };
    let reader = Traced::new(Emulator::new(profile)?.with_protocol(protocol)).with_sink(trace.clone());
    let card = Card::new(reader);
    card.verify_pin(profile.pin1())?;
    let impi = card.impi()?;
    let mut hss = Hss::new(profile);
    let av = hss.vector(&rand)?;
    let autn = if variant == GbaVariant::GbaU { av.gba_u_autn().to_bytes() } else { av.autn.to_bytes() };
    let mut gba = GbaClient::new(card.clone(), variant);
    match gba.bootstrap(&rand, &autn)? {
        BootstrapOutcome::Res(res) if av.verify_res(&res) => {}
        other => bail!("bootstrap refused: {other:?}"),
    }
    let btid = BTid::new(&rand, BSF_DOMAIN).map_err(|e| anyhow!("B-TID: {e}"))?.as_str().to_owned();
    gba.complete_bootstrap(&btid, LIFETIME)?;
    let naf_id = bmsc_naf_id()?;
    let keys = gba.naf_keys(&naf_id, &impi)?;
    let ks = av.ks();
    let ks_naf = gba::kdf::derive_ks_naf(&ks, &rand, impi.as_bytes(), &naf_id).map_err(|e| anyhow!("{e}"))?;
    if keys.key.expose() != ks_naf.expose() {
        bail!("the UE's NAF key differs from the BSF's");
    }
    let (km, muk, report): (Box<dyn MbmsKeyManagement>, _, _) = match variant {
        GbaVariant::GbaU => {
            let muk = gba::kdf::derive_ks_int_naf(&ks, &rand, impi.as_bytes(), &naf_id)
                .map_err(|e| anyhow!("{e}"))?;
            let path = choose_path(&card, None)?;
            if path != KeyManagementPath::UiccBased {
                bail!("the card's EF.UST does not offer MBMS security (service n°69)");
            }
            let report = PathReport {
                path: "UICC-based",
                gba: "GBA_U (Ks on the card)",
                muk_and_msk_held_by: "UICC",
                ..Default::default()
            };
            (Box::new(UiccBased::new(card)), gba::mbms_keys::uicc_based_muk(&muk), report)
        }
        GbaVariant::GbaMe => {
            let mut store = KeyStore::open(store_dir.join("me-keys.bin"))?;
            store.on_card_inserted(&card.iccid()?)?;
            let mut km = MeBased::new(store);
            km.install_naf_keys(&keys)?;
            let muk = gba::mbms_keys::me_based_muk(&ks_naf);
            let report = PathReport {
                path: "ME-based",
                gba: "GBA_ME (Ks in the ME)",
                muk_and_msk_held_by: "ME",
                ..Default::default()
            };
            (Box::new(km), muk, report)
        }
    };
    let ue = Ue { _gba: gba, km, trace, rx: MbmsReceiver::new(), report, mtk_time: Duration::ZERO };
    let ks_bytes = ks.expose().to_vec();
    Ok((ue, muk, btid, ks_bytes))
}

/// Whether any 8-byte window of `secret` appears in `haystack`.
fn leaks(secret: &[u8], haystack: &[u8]) -> bool {
    secret.windows(8).any(|w| haystack.windows(8).any(|h| h == w))
}

pub fn compare(args: CompareArgs) -> Result<ExitCode> {
    let profile = super::card::load_profile(args.profile.as_deref())?;
    let dir = tempfile_dir()?;
    let (mut u, muk_u, btid_u, ks_u) = ue(&profile, GbaVariant::GbaU, rand(1), &dir)?;
    let (mut m, muk_m, btid_m, _) = ue(&profile, GbaVariant::GbaMe, rand(2), &dir)?;
    // Secrets the UICC path must keep off the card interface.
    let mut secrets: Vec<Vec<u8>> = vec![ks_u, muk_u.as_bytes().to_vec()];

    let mut bmsc =
        BmscStream::new(BmscStreamConfig::new(BMSC_FQDN, [0x42; 32])).map_err(|e| anyhow!("{e:?}"))?;
    let ru = bmsc.add_recipient(muk_u, &btid_u);
    let rm = bmsc.add_recipient(muk_m, &btid_m);
    let cfg = bmsc.config().clone();
    for ue in [&mut u, &mut m] {
        ue.rx.add_stream(STREAM, cfg.key_domain_id, cfg.key_group, bmsc.srtp_policy())?;
    }
    let (mut mtks_identical, mut media_identical) = (true, true);
    for round in 0..args.rounds {
        if round % args.mtks_per_msk.max(1) == 0 {
            let msk_id = bmsc.rotate_msk();
            if let Some(msk) = bmsc.msk(msk_id) {
                secrets.push(msk.as_bytes().to_vec());
            }
            u.km.msk_update(&bmsc.msk_message(ru).map_err(|e| anyhow!("{e:?}"))?)
                .context("UICC path MSK update")?;
            m.km.msk_update(&bmsc.msk_message(rm).map_err(|e| anyhow!("{e:?}"))?)
                .context("ME path MSK update")?;
        }
        let mtk_message = bmsc.next_mtk_message().map_err(|e| anyhow!("{e:?}"))?;
        let mut outcomes = Vec::new();
        for ue in [&mut u, &mut m] {
            let start = Instant::now();
            let o = ue
                .km
                .mtk_generate(&mtk_message)
                .with_context(|| format!("{} MTK generation", ue.report.path))?;
            ue.mtk_time += start.elapsed();
            ue.report.mtk_updates += 1;
            ue.rx.add_mtk(&o)?;
            outcomes.push(o);
        }
        mtks_identical &= outcomes[0].mtk.as_bytes() == outcomes[1].mtk.as_bytes()
            && outcomes[0].mtk_id == outcomes[1].mtk_id;
        for _ in 0..args.packets_per_mtk {
            let (srtp, rtp) = bmsc.next_srtp_packet().map_err(|e| anyhow!("{e:?}"))?;
            let mut plain = Vec::new();
            for ue in [&mut u, &mut m] {
                let mut p = srtp.clone();
                match ue.rx.unprotect(STREAM, &mut p) {
                    Ok(()) if p == rtp => ue.report.packets_decrypted += 1,
                    _ => ue.report.packets_failed += 1,
                }
                plain.push(p);
            }
            media_identical &= plain[0] == plain[1];
        }
    }
    for (ue, trace) in [(&mut u.report, u.trace.exchanges()), (&mut m.report, m.trace.exchanges())] {
        ue.apdus = trace.len();
        ue.apdu_bytes = trace.iter().map(|x: &RawExchange| x.command.len() + x.response.len()).sum();
        if ue.path == "UICC-based" {
            ue.secrets_on_card_interface = trace
                .iter()
                .map(|x| secrets.iter().filter(|s| leaks(s, &x.command) || leaks(s, &x.response)).count())
                .sum();
        }
    }
    for ue in [&mut u, &mut m] {
        ue.report.mean_mtk_update_us = ue.mtk_time.as_secs_f64() * 1e6 / ue.report.mtk_updates.max(1) as f64;
    }
    let ok = mtks_identical
        && media_identical
        && u.report.packets_failed == 0
        && m.report.packets_failed == 0
        && u.report.secrets_on_card_interface == 0;
    let report = Report { uicc: u.report, me: m.report, mtks_identical, media_identical, ok };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_table(r: &Report) {
    let row = |name: &str, a: String, b: String| println!("{name:<40} {a:<26} {b}");
    row("", r.uicc.path.into(), r.me.path.into());
    row("GBA", r.uicc.gba.into(), r.me.gba.into());
    row("MUK and MSK held by", r.uicc.muk_and_msk_held_by.into(), r.me.muk_and_msk_held_by.into());
    row("APDUs exchanged", r.uicc.apdus.to_string(), r.me.apdus.to_string());
    row("APDU bytes", r.uicc.apdu_bytes.to_string(), r.me.apdu_bytes.to_string());
    row("MTK updates", r.uicc.mtk_updates.to_string(), r.me.mtk_updates.to_string());
    row(
        "time per MTK update",
        format!("{:.1} µs", r.uicc.mean_mtk_update_us),
        format!("{:.1} µs", r.me.mean_mtk_update_us),
    );
    row("SRTP packets decrypted", r.uicc.packets_decrypted.to_string(), r.me.packets_decrypted.to_string());
    row("SRTP packets failed", r.uicc.packets_failed.to_string(), r.me.packets_failed.to_string());
    row("Ks/MUK/MSK bytes on the card interface", r.uicc.secrets_on_card_interface.to_string(), "-".into());
    println!("MTKs identical: {}   decrypted media identical: {}", r.mtks_identical, r.media_identical);
    println!("{}", if r.ok { "the two paths agree" } else { "THE TWO PATHS DIFFER" });
}

fn rand(n: u8) -> [u8; 16] {
    let mut r =
        [0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35];
    r[15] ^= n;
    r
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("keysim-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
