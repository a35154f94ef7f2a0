//! Power cut at every NVM write of UPDATE BINARY, UPDATE RECORD, VERIFY and CHANGE PIN, with every
//! kind of torn write, then power-on (also cut at each of its recovery writes): the file holds the
//! old or the new content, never a mix, and a PIN try counter never goes back up.

use super::{personalized, send_hex, sw};
use crate::layout::{self, JOURNAL_BODY, JOURNAL_MARK, Region};
use crate::testing::{PowerCutNvm, Tear};
use crate::{NVM_SIZE, RamNvm, Uicc};

type Card = Uicc<PowerCutNvm<RamNvm<NVM_SIZE>>>;

const PIN1: &str = "002000010831323334FFFFFFFF";
const WRONG_PIN1: &str = "002000010839393939FFFFFFFF";
const ADM1: &str = "0020000A083132333435363738";
const WRONG_ADM1: &str = "0020000A080000000000000000";

/// One interrupted operation: commands that set the stage (each must succeed), then the command
/// the power is cut in, the region that must end up old-or-new, and the key whose tries to watch.
struct Scenario {
    name: &'static str,
    setup: &'static [&'static str],
    op: String,
    file: Region,
    tries: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    let gbabp_update = format!("00D6000064{}", "5A".repeat(100));
    let impu_record = format!("00DC010460 8010 {} {}", hex::encode(b"tel:+15550000000"), "FF".repeat(78));
    vec![
        Scenario {
            name: "UPDATE BINARY EF.GBABP, 100 bytes",
            setup: &["00A4040C07A0000000871002", PIN1, "00A4000C026FD6"],
            op: gbabp_update,
            file: layout::ef(crate::fs::Ef::UsimGbabp),
            tries: "00200001",
        },
        Scenario {
            name: "UPDATE RECORD EF.MSK record 2",
            setup: &["00A4040C07A0000000871002", PIN1, ADM1, "00A4000C026FD7"],
            op: "00DC020414 00F110 01 00010002 00000005 00010003 00000009".into(),
            file: layout::ef(crate::fs::Ef::UsimMsk),
            tries: "00200001",
        },
        Scenario {
            name: "UPDATE RECORD EF.IMPU record 1, 96 bytes",
            setup: &["00A4040C07A0000000871004", ADM1, "00A4000C026F04"],
            op: impu_record,
            file: layout::ef(crate::fs::Ef::IsimImpu),
            tries: "0020000A",
        },
        Scenario {
            name: "VERIFY PIN1, wrong value",
            setup: &[],
            op: WRONG_PIN1.into(),
            file: layout::PIN1_VALUE,
            tries: "00200001",
        },
        Scenario {
            name: "VERIFY PIN1, right value after a wrong one",
            setup: &[],
            op: PIN1.into(),
            file: layout::PIN1_VALUE,
            tries: "00200001",
        },
        Scenario {
            name: "VERIFY ADM1, wrong value",
            setup: &[],
            op: WRONG_ADM1.into(),
            file: layout::ADM1_VALUE,
            tries: "0020000A",
        },
        Scenario {
            name: "CHANGE PIN1",
            setup: &[],
            op: "0024000110 31323334FFFFFFFF 35363738FFFFFFFF".into(),
            file: layout::PIN1_VALUE,
            tries: "00200001",
        },
    ]
}

/// A card on `nvm` with the scenario's setup done. "right value after a wrong one" starts with
/// one try spent, so that a refund would show.
fn prepared(s: &Scenario, nvm: RamNvm<NVM_SIZE>) -> Card {
    let mut card = Uicc::power_on(PowerCutNvm::new(nvm));
    if s.name.contains("after a wrong one") {
        assert_eq!(sw(&send_hex(&mut card, WRONG_PIN1)), 0x63C2);
    }
    for cmd in s.setup {
        assert_eq!(sw(&send_hex(&mut card, cmd)), 0x9000, "{}: setup {cmd}", s.name);
    }
    card
}

/// Tries left as VERIFY without data reports them (0 when blocked; `None` when verified).
fn tries_left(card: &mut Card, query: &str) -> Option<u8> {
    match sw(&send_hex(card, query)) {
        0x9000 => None,
        0x6983 => Some(0),
        s if s & 0xFFF0 == 0x63C0 => Some((s & 0x0F) as u8),
        s => panic!("VERIFY query answered {s:04X}"),
    }
}

/// The image without the journal area (which legitimately differs between runs).
fn state(nvm: &RamNvm<NVM_SIZE>) -> Vec<u8> {
    let mut image = nvm.as_bytes().to_vec();
    image[JOURNAL_MARK.offset..JOURNAL_BODY.end()].fill(0);
    image
}

/// The raw try counter bytes, which the assertions below allow to differ from old/new.
fn without_counters(mut image: Vec<u8>) -> Vec<u8> {
    image[layout::PIN1_TRIES.offset] = 0;
    image[layout::ADM1_TRIES.offset] = 0;
    image
}

/// Power on (recovering the journal) and check the image and the try counter.
fn check_after_cut(
    s: &Scenario,
    k: usize,
    tear: Tear,
    old: &[u8],
    new: &[u8],
    old_tries: u8,
    nvm: RamNvm<NVM_SIZE>,
) {
    let mut card = Uicc::power_on(PowerCutNvm::new(nvm));
    let image = state(card.nvm().inner());
    let region = s.file.offset..s.file.end();
    let what = format!("{}: cut at write {k} ({tear:?})", s.name);
    assert!(
        image[region.clone()] == old[region.clone()] || image[region.clone()] == new[region],
        "{what}: file mixed"
    );
    let rest = without_counters(image);
    assert!(
        rest == without_counters(old.to_vec()) || rest == without_counters(new.to_vec()),
        "{what}: image mixed"
    );
    let tries = tries_left(&mut card, s.tries).unwrap_or(u8::MAX);
    assert!(tries <= old_tries, "{what}: tries went from {old_tries} up to {tries}");
    // The card works after recovery.
    assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x90, 0x00], "{what}: card unusable");
}

#[test]
fn a_power_cut_at_any_write_leaves_old_or_new_and_never_refunds_a_try() {
    for s in scenarios() {
        // Reference run: how many writes the operation makes, and the image before and after.
        let mut card = prepared(&s, personalized());
        let old_nvm = card.nvm().inner().clone();
        let old_tries =
            tries_left(&mut Uicc::power_on(PowerCutNvm::new(old_nvm.clone())), s.tries).unwrap_or(0);
        let before = card.nvm().writes();
        let answer = sw(&send_hex(&mut card, &s.op));
        assert!(matches!(answer, 0x9000 | 0x63C0..=0x63CF), "{}: answered {answer:04X}", s.name);
        let writes = card.nvm().writes() - before;
        assert!(writes > 0, "{}: no NVM write to cut", s.name);
        let new_nvm = card.into_nvm().into_inner();
        let (old, new) = (state(&old_nvm), state(&new_nvm));

        for tear in Tear::ALL {
            for k in 0..writes {
                let mut card = prepared(&s, personalized());
                card.nvm().arm(k, tear);
                assert_eq!(sw(&send_hex(&mut card, &s.op)), 0x6581, "{}: cut at {k}", s.name);
                assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x6F, 0x00], "halted until power-on");
                let mut nvm = card.into_nvm();
                nvm.restore_power();
                let cut_image = nvm.into_inner();

                // Power on with a cut at each write the recovery makes, then power on cleanly.
                let mut probe = Uicc::power_on(PowerCutNvm::new(cut_image.clone()));
                let recovery_writes = probe.nvm().writes();
                assert_eq!(send_hex(&mut probe, "00A4000C023F00"), [0x90, 0x00]);
                for j in 0..recovery_writes {
                    let nvm = PowerCutNvm::new(cut_image.clone());
                    nvm.arm(j, tear);
                    let mut card = Uicc::power_on(nvm);
                    assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x6F, 0x00], "recovery cut at {j}");
                    let mut nvm = card.into_nvm();
                    nvm.restore_power();
                    check_after_cut(&s, k, tear, &old, &new, old_tries, nvm.into_inner());
                }
                check_after_cut(&s, k, tear, &old, &new, old_tries, cut_image);
            }
        }
    }
}

#[test]
fn a_card_halted_by_a_failed_write_answers_6f00_until_reset() {
    let mut card = Uicc::power_on(PowerCutNvm::new(personalized()));
    card.nvm().arm(0, Tear::Nothing);
    assert_eq!(sw(&send_hex(&mut card, WRONG_PIN1)), 0x6581);
    assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x6F, 0x00]);
    assert_eq!(send_hex(&mut card, "00200001"), [0x6F, 0x00]);
    card.reset();
    assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x90, 0x00]);
    assert_eq!(send_hex(&mut card, "00200001"), [0x63, 0xC3], "the cut decrement never landed");
}
