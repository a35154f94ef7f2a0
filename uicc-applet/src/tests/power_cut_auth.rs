//! Power cut at every NVM write of every AUTHENTICATE mode that stores something (3G SQN update,
//! GBA bootstrap, NAF derivation, MSK Update incl. the older-MSK deletion and the expired-MUK
//! solicited pull, MTK Generation, MSK Deletion, MUK Deletion), with every kind of torn write, and
//! at every write of the recovery at the next power-on. After the restart:
//! - the whole NVM image (journal aside) is the old or the new one, so every record and counter is;
//! - the card works, and the last MIKEY message accepted before the cut is still refused;
//! - the interrupted command's replay is refused exactly when its state landed (no counter went
//!   back), and accepted when it did not (nothing half-stored blocks it).

use super::authenticate::{
    B_TID, BmSc, JAN_2026, JAN_2031, LIFETIME, MSK_1, MSK_2, MSK_3, MTK, SALT, SELECT_USIM, VERIFY_PIN1,
    bootstrap_apdu, gbabp_update_apdu, mbms_apdu, mtk_message, naf_apdu, naf_id, ntp,
};
use super::{personalized, send, sw};
use crate::layout::{JOURNAL_BODY, JOURNAL_MARK};
use crate::testing::{PowerCutNvm, Tear};
use crate::{NVM_SIZE, RamNvm, Uicc};

type Card = Uicc<PowerCutNvm<RamNvm<NVM_SIZE>>>;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// What replaying the interrupted command must answer after the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// AKA: a spent SQN is a synchronisation failure (`DC`), an unspent one succeeds (`DB`).
    Aka,
    /// A MIKEY message: `98 65` once accepted, `90 00` otherwise.
    Mikey,
    /// A deletion: `6A 88` once done, `90 00` otherwise.
    Deletion,
    /// Idempotent (NAF derivation): always `90 00`.
    Repeatable,
}

struct Scenario {
    name: &'static str,
    /// Run once on a new card; the image they leave is the start of every cut.
    prepare: Vec<Vec<u8>>,
    /// The interrupted command.
    op: Vec<u8>,
    replay: Replay,
    /// The last MIKEY command accepted in `prepare`, and what its replay answers after `op`
    /// landed (it must stay refused whatever happened).
    last_accepted: Option<(Vec<u8>, u16)>,
}

/// After a power-on: select the USIM and verify PIN1.
fn open_usim(card: &mut Card) {
    for cmd in [SELECT_USIM, VERIFY_PIN1] {
        assert_eq!(sw(&send(card, &h(cmd))), 0x9000, "open USIM {cmd}");
    }
}

fn gba_prepare() -> Vec<Vec<u8>> {
    vec![
        h(SELECT_USIM),
        h(VERIFY_PIN1),
        h(&bootstrap_apdu()),
        h("00A4000C026FD6"),
        gbabp_update_apdu(B_TID, LIFETIME),
        naf_apdu(&naf_id(super::authenticate::BMSC), super::authenticate::IMPI),
    ]
}

fn scenarios() -> Vec<Scenario> {
    let bmsc = BmSc::spec();
    let m1 = mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 1), 0x0001_0001, &MSK_1, true));
    let m2 = mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 2), 0x0001_0002, &MSK_2, false));
    let m3 = mbms_apdu(1, &bmsc.msk_message(ntp(JAN_2026, 3), 0x0001_0003, &MSK_3, true));
    let t1 = mbms_apdu(2, &mtk_message(&MSK_1, 0x0001_0001, 1, &MTK, Some(&SALT)));
    let t2 = mbms_apdu(2, &mtk_message(&MSK_1, 0x0001_0001, 2, &MTK, None));
    let late_pull = mbms_apdu(1, &bmsc.solicited_pull(ntp(JAN_2031, 1), 1));
    let mut muk_id = vec![0xA0, 0x3C, 0x80, 0x28];
    muk_id.extend(B_TID.as_bytes());
    muk_id.extend([0x82, 0x10]);
    muk_id.extend(super::authenticate::BMSC.as_bytes());
    let with = |extra: &[&Vec<u8>]| {
        let mut p = gba_prepare();
        p.extend(extra.iter().map(|c| (*c).clone()));
        p
    };
    vec![
        Scenario {
            name: "3G context (SQN array)",
            prepare: vec![],
            op: h("0088008122 10 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b94a9ffac354dfafb3 00"),
            replay: Replay::Aka,
            last_accepted: None,
        },
        Scenario {
            name: "GBA bootstrap (SQN array, GBA context, EF.GBABP)",
            prepare: vec![],
            op: h(&bootstrap_apdu()),
            replay: Replay::Aka,
            last_accepted: None,
        },
        Scenario {
            name: "NAF derivation (Ks_int_NAF slot, EF.GBANL record)",
            prepare: gba_prepare()[..5].to_vec(),
            op: naf_apdu(&naf_id(super::authenticate::BMSC), super::authenticate::IMPI),
            replay: Replay::Repeatable,
            last_accepted: None,
        },
        Scenario {
            name: "MSK Update, first MSK (EF.MUK, MUK link, EF.MSK, MSK slots)",
            prepare: gba_prepare(),
            op: m1.clone(),
            replay: Replay::Mikey,
            last_accepted: None,
        },
        Scenario {
            name: "MSK Update, third MSK of a Key Group (the older one deleted)",
            prepare: with(&[&m1, &m2]),
            op: m3,
            replay: Replay::Mikey,
            last_accepted: Some((m2.clone(), 0x9865)),
        },
        Scenario {
            name: "MTK Generation, first MTK of an MSK",
            prepare: with(&[&m1]),
            op: t1.clone(),
            replay: Replay::Mikey,
            last_accepted: Some((m1.clone(), 0x9865)),
        },
        Scenario {
            name: "MTK Generation, a later MTK",
            prepare: with(&[&m1, &t1]),
            op: t2,
            replay: Replay::Mikey,
            last_accepted: Some((t1.clone(), 0x9865)),
        },
        Scenario {
            name: "MSK Update, solicited pull with an expired MUK",
            prepare: with(&[&m1]),
            op: late_pull,
            replay: Replay::Mikey,
            last_accepted: Some((m1.clone(), 0x9865)),
        },
        Scenario {
            name: "MSK Deletion",
            prepare: with(&[&m1, &m2]),
            op: mbms_apdu(3, &h("00F110 0001")),
            replay: Replay::Deletion,
            last_accepted: Some((m2, 0x9865)),
        },
        Scenario {
            name: "MUK Deletion",
            prepare: with(&[&m1]),
            op: mbms_apdu(4, &muk_id),
            replay: Replay::Deletion,
            // Once the MUK is gone its messages find no key (69 85); before, the counter refuses.
            last_accepted: Some((m1, 0x6985)),
        },
    ]
}

/// The image without the journal area (which legitimately differs between runs).
fn state(nvm: &RamNvm<NVM_SIZE>) -> Vec<u8> {
    let mut image = nvm.as_bytes().to_vec();
    image[JOURNAL_MARK.offset..JOURNAL_BODY.end()].fill(0);
    image
}

/// Power on `nvm` (recovering the journal) and check everything the module documentation lists.
fn check_after_cut(s: &Scenario, what: &str, old: &[u8], new: &[u8], nvm: RamNvm<NVM_SIZE>) {
    let mut card = Uicc::power_on(PowerCutNvm::new(nvm));
    let image = state(card.nvm().inner());
    let landed = image == new;
    assert!(landed || image == old, "{what}: the image is neither the old nor the new one");
    open_usim(&mut card);
    if let Some((cmd, after_landing)) = &s.last_accepted {
        let answer = sw(&send(&mut card, cmd));
        let expected = if landed { *after_landing } else { 0x9865 };
        assert_eq!(answer, expected, "{what}: the last accepted MIKEY message replayed");
    }
    let answer = send(&mut card, &s.op);
    match s.replay {
        Replay::Aka => {
            let tag = if landed { 0xDC } else { 0xDB };
            assert_eq!((answer[0], sw(&answer)), (tag, 0x9000), "{what}: AKA replay");
        }
        Replay::Mikey => assert_eq!(sw(&answer), if landed { 0x9865 } else { 0x9000 }, "{what}: replay"),
        Replay::Deletion => assert_eq!(sw(&answer), if landed { 0x6A88 } else { 0x9000 }, "{what}: replay"),
        Replay::Repeatable => assert_eq!(sw(&answer), 0x9000, "{what}: repeat"),
    }
}

#[test]
fn a_power_cut_at_any_write_of_authenticate_leaves_old_or_new_and_no_replay_window() {
    let mut cut_points = 0usize;
    let mut recovery_cut_points = 0usize;
    for s in scenarios() {
        // The prepared image.
        let mut card = Uicc::power_on(PowerCutNvm::new(personalized()));
        for cmd in &s.prepare {
            let answer = send(&mut card, cmd);
            assert!(matches!(sw(&answer), 0x9000 | 0x6100..=0x61FF), "{}: prepare {cmd:02X?}", s.name);
        }
        let base = card.into_nvm().into_inner();
        // Reference run: the writes the command makes, the image before and after.
        let mut card = Uicc::power_on(PowerCutNvm::new(base.clone()));
        open_usim(&mut card);
        let old = state(card.nvm().inner());
        let before = card.nvm().writes();
        let answer = send(&mut card, &s.op);
        assert_eq!(sw(&answer), 0x9000, "{}: reference run", s.name);
        let writes = card.nvm().writes() - before;
        assert!(writes > 0, "{}: no NVM write to cut", s.name);
        let new = state(card.nvm().inner());
        assert_ne!(old, new, "{}: the command stores something", s.name);

        for tear in Tear::ALL {
            for k in 0..writes {
                let mut card = Uicc::power_on(PowerCutNvm::new(base.clone()));
                open_usim(&mut card);
                card.nvm().arm(k, tear);
                assert_eq!(sw(&send(&mut card, &s.op)), 0x6581, "{}: cut at {k}", s.name);
                let mut nvm = card.into_nvm();
                nvm.restore_power();
                let cut_image = nvm.into_inner();
                cut_points += 1;
                let what = format!("{}: cut at write {k} ({tear:?})", s.name);

                let probe = Uicc::power_on(PowerCutNvm::new(cut_image.clone()));
                let recovery_writes = probe.nvm().writes();
                for j in 0..recovery_writes {
                    let nvm = PowerCutNvm::new(cut_image.clone());
                    nvm.arm(j, tear);
                    let card = Uicc::power_on(nvm);
                    let mut nvm = card.into_nvm();
                    nvm.restore_power();
                    recovery_cut_points += 1;
                    check_after_cut(
                        &s,
                        &format!("{what}, recovery cut at {j}"),
                        &old,
                        &new,
                        nvm.into_inner(),
                    );
                }
                check_after_cut(&s, &what, &old, &new, cut_image);
            }
        }
    }
    eprintln!(
        "AUTHENTICATE power cuts: {cut_points} cut points in commands, {recovery_cut_points} in recoveries"
    );
    assert!(cut_points >= 400, "only {cut_points} cut points");
}
