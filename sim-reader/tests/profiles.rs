//! The profile loader against good and bad TOML files in `tests/data/profiles/`.

use std::path::PathBuf;

use sim_reader::profile::{CardProfile, ProfileError};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/profiles").join(name)
}

#[test]
fn good_profile_loads() {
    let p = CardProfile::load(&data("good.toml")).unwrap();
    assert_eq!(p.iccid(), "8949000000000000018");
    assert_eq!(p.imsi(), "00101987654321");
    assert_eq!(hex::encode(p.k()), "0396eb317b6d1c36f19c1c84cd6ffd16");
    assert_eq!(p.sqn(), &[0xFF, 0x9B, 0xB4, 0xD0, 0xB6, 0x07]);
    assert_eq!(p.amf(), &[0xB9, 0xB9]);
    assert_eq!(p.adm1(), b"12345678");
    assert_eq!(p.pin1(), "00000000");
    assert_eq!(p.impu().len(), 1);
}

#[test]
fn builtin_file_loads_like_the_default() {
    let p = CardProfile::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("default.toml")).unwrap();
    assert_eq!(p.to_fields(), CardProfile::default().to_fields());
}

/// Each bad file is refused with a message naming the field (and the file).
#[test]
fn bad_profiles_name_the_field() {
    let cases = [
        ("bad-k-length.toml", "`k`", "expected 32 hex digits (16 bytes), found 30"),
        ("bad-opc-hex.toml", "`opc`", "'z' is not a hex digit"),
        ("bad-imsi-digits.toml", "`imsi`", "expected 6 to 15 decimal digits"),
        ("bad-iccid-length.toml", "`iccid`", "expected 19 or 20 decimal digits"),
        ("bad-pin1.toml", "`pin1`", "expected 4 to 8 decimal digits, found '123'"),
        ("bad-adm1.toml", "`adm1`", "expected 16 hex digits or 8 decimal digits"),
        ("bad-sqn.toml", "`sqn`", "expected 12 hex digits (6 bytes), found 4"),
        ("bad-impu-scheme.toml", "`impu`", "entry 1 'mailto:someone@example.org' is no SIP or tel URI"),
    ];
    for (file, field, reason) in cases {
        let err = CardProfile::load(&data(file)).err().unwrap_or_else(|| panic!("{file} was accepted"));
        assert!(matches!(err, ProfileError::Field { .. }), "{file}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains(reason) && msg.contains(file), "{file}: {msg}");
    }
}

#[test]
fn unknown_missing_and_mistyped_keys_are_refused() {
    let cases = [
        ("bad-unknown-key.toml", "unknown field `pin2`"),
        ("bad-missing-key.toml", "missing field `home_domain`"),
        ("bad-type.toml", "imsi"),
    ];
    for (file, needle) in cases {
        let err = CardProfile::load(&data(file)).err().unwrap_or_else(|| panic!("{file} was accepted"));
        assert!(matches!(err, ProfileError::Syntax { .. }), "{file}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle) && msg.contains(file), "{file}: {msg}");
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let err = CardProfile::load(&data("no-such.toml")).err().unwrap();
    assert!(matches!(err, ProfileError::Read { .. }));
    assert!(err.to_string().contains("no-such.toml"), "{err}");
}

#[test]
fn the_cards_own_limits_apply() {
    let long = format!("sip:{}@ims.mnc001.mcc001.3gppnetwork.org", "1".repeat(150));
    let mut f = CardProfile::default().to_fields();
    f.impu = vec![long];
    let msg = CardProfile::try_from(f).err().unwrap().to_string();
    assert!(msg.contains("`impu`") && msg.contains("the card cannot store it"), "{msg}");
    let mut f = CardProfile::default().to_fields();
    f.impu = (0..50).map(|i| format!("tel:+1555010{i:02}")).collect();
    let msg = CardProfile::try_from(f).err().unwrap().to_string();
    assert!(msg.contains("`impu`"), "{msg}");
}
