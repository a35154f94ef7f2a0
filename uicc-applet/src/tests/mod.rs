//! Tests of the whole card through its APDU interface, and of the EF encodings against published
//! vectors. Shared fixtures live here.

pub(crate) mod authenticate;
mod command_response;
mod encodings;
mod mikey_vectors;
mod power_cut;
mod power_cut_auth;
mod properties;

use crate::{NVM_SIZE, Nvm, Personalization, RESPONSE_MAX, RamNvm, Uicc};

/// IMPUs of the test profile.
/// The test profile: the subscriber of TS 35.208 test set 1 ([`crate::testing::TS_35_208_SUBSCRIBER`]).
pub(crate) const PROFILE: Personalization<'static> = crate::testing::TS_35_208_SUBSCRIBER;

/// A RAM NVM holding the test profile.
pub(crate) fn personalized() -> RamNvm<NVM_SIZE> {
    let mut nvm = RamNvm::new();
    Uicc::personalize(&mut nvm, &PROFILE).unwrap();
    nvm
}

/// Send one command (hex) and return the whole response (data and status word).
pub(crate) fn send<N: Nvm>(card: &mut Uicc<N>, command: &[u8]) -> Vec<u8> {
    let mut response = [0u8; RESPONSE_MAX];
    let n = card.process(command, &mut response);
    response[..n].to_vec()
}

/// Send a command given in hex.
pub(crate) fn send_hex<N: Nvm>(card: &mut Uicc<N>, command: &str) -> Vec<u8> {
    send(card, &hex::decode(command.replace(' ', "")).unwrap())
}

/// The status word of a response.
pub(crate) fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => panic!("response without status word: {response:02X?}"),
    }
}

#[test]
fn an_unformatted_card_answers_6f00_to_everything() {
    let mut card = Uicc::power_on(RamNvm::<NVM_SIZE>::new());
    assert!(!card.is_personalized());
    for cmd in ["00A40004023F00", "00B0000001", "80F2000000", "00C0000010", "00"] {
        assert_eq!(send_hex(&mut card, cmd), [0x6F, 0x00], "{cmd}");
    }
    assert_eq!(card.into_nvm().as_bytes(), RamNvm::<NVM_SIZE>::new().as_bytes(), "nothing written");
}

#[test]
fn a_store_smaller_than_the_layout_is_refused() {
    let mut small = RamNvm::<1024>::new();
    assert_eq!(Uicc::personalize(&mut small, &PROFILE), Err(crate::NvmError::OutOfRange));
    let mut card = Uicc::power_on(small);
    assert_eq!(send_hex(&mut card, "00A4000C023F00"), [0x6F, 0x00]);
}

#[test]
fn a_profile_that_does_not_fit_is_refused_before_writing() {
    let mut nvm = RamNvm::<NVM_SIZE>::new();
    let long = "x".repeat(200);
    let bad = Personalization { impi: &long, ..PROFILE };
    assert_eq!(bad.validate(), Err(crate::ProfileError::Impi));
    assert_eq!(Uicc::personalize(&mut nvm, &bad), Err(crate::NvmError::OutOfRange));
    assert_eq!(nvm.as_bytes(), RamNvm::<NVM_SIZE>::new().as_bytes());
    let five: [&str; 5] = ["tel:1"; 5];
    assert_eq!(Personalization { impu: &five, ..PROFILE }.validate(), Err(crate::ProfileError::Impu));
    assert_eq!(Personalization { imsi: "00101x", ..PROFILE }.validate(), Err(crate::ProfileError::Imsi));
    assert_eq!(Personalization { pin1: "123", ..PROFILE }.validate(), Err(crate::ProfileError::Pin1));
    assert_eq!(Personalization { iccid: "1234", ..PROFILE }.validate(), Err(crate::ProfileError::Iccid));
}

#[test]
fn personalizing_again_replaces_the_image() {
    let mut nvm = personalized();
    let mut card = Uicc::power_on(nvm.clone());
    // Spend a PIN try, then personalize the same store again: the counter is back at 3.
    send_hex(&mut card, "002000010839393939FFFFFFFF");
    nvm = card.into_nvm();
    Uicc::personalize(&mut nvm, &PROFILE).unwrap();
    assert_eq!(nvm.as_bytes(), personalized().as_bytes());
}

#[test]
fn a_too_small_response_buffer_gets_6f00_or_nothing() {
    let mut card = Uicc::power_on(personalized());
    let mut small = [0u8; 10];
    assert_eq!(card.process(&hex::decode("00A40004023F00").unwrap(), &mut small), 2);
    assert_eq!(small[..2], [0x6F, 0x00]);
    let mut tiny = [0u8; 1];
    assert_eq!(card.process(&hex::decode("00A4000C023F00").unwrap(), &mut tiny), 0);
}

#[test]
fn the_toml_test_profile_mirrors_profile() {
    // tests/data/applet-test-profile.toml feeds the same command/response cases through pcscd.
    const TOML: &str = include_str!("../../../tests/data/applet-test-profile.toml");
    let value = |key: &str| -> String {
        let line = TOML
            .lines()
            .find(|l| l.split('=').next().map(str::trim) == Some(key))
            .unwrap_or_else(|| panic!("{key} missing"));
        line.split_once('=').unwrap().1.trim().to_string()
    };
    let quoted = |s: &str| format!("\"{s}\"");
    assert_eq!(value("iccid"), quoted(PROFILE.iccid));
    assert_eq!(value("imsi"), quoted(PROFILE.imsi));
    assert_eq!(value("k"), quoted(&hex::encode(PROFILE.k)));
    assert_eq!(value("opc"), quoted(&hex::encode(PROFILE.opc)));
    assert_eq!(value("sqn"), quoted(&hex::encode(PROFILE.sqn)));
    assert_eq!(value("amf"), quoted(&hex::encode(PROFILE.amf)));
    assert_eq!(value("impi"), quoted(PROFILE.impi));
    assert_eq!(value("home_domain"), quoted(PROFILE.home_domain));
    assert_eq!(value("pin1"), quoted(PROFILE.pin1));
    assert_eq!(value("adm1"), quoted(std::str::from_utf8(&PROFILE.adm1).unwrap()));
    let impus: Vec<String> = PROFILE.impu.iter().map(|u| quoted(u)).collect();
    assert_eq!(value("impu"), format!("[{}]", impus.join(", ")));
}
