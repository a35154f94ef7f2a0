//! Readable names for UICC commands (TS 102 221 §10 and §11, TS 31.102 §7, TS 31.103 §7), with
//! the AUTHENTICATE contexts pySim leaves undecoded: GBA bootstrapping (tag `DD`), GBA NAF
//! derivation (tag `DE`) and the MBMS modes (INS `89`, P2 `85`, tag `53`).

use apdu::{Command, Response};
use uicc_vocab::LvFields;
use uicc_vocab::authenticate::{
    INS_AUTHENTICATE_EVEN, INS_AUTHENTICATE_ODD, TAG_GBA_BOOTSTRAPPING, TAG_GBA_NAF_DERIVATION, TAG_SUCCESS,
    TAG_SYNC_FAILURE, context_name, odd_block_name, odd_object_value,
};
use uicc_vocab::files::{App, common_file_name};
use uicc_vocab::open_values::{
    MODE_MSK_DELETION, MODE_MSK_UPDATE, MODE_MTK_GENERATION, MODE_MUK_DELETION, P1_ODD_FIRST_BLOCK,
    TAG_MBMS_DATA,
};

/// The application a trace believes is selected, to name the EFs whose FIDs differ per application.
pub use uicc_vocab::files::App as Application;

/// Length of the Ua security protocol identifier that ends a NAF_Id (TS 33.220 Annex H).
const UA_SECURITY_PROTOCOL_ID_LEN: usize = 5;

/// A command decoder that follows application selection.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    app: Option<Application>,
}

/// One decoded exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The command's name (e.g. `SELECT`, `AUTHENTICATE`).
    pub name: &'static str,
    /// What P1, P2 and the data mean.
    pub detail: String,
    /// What the response data hold, when known.
    pub response: Option<String>,
}

impl Decoder {
    /// A decoder that assumes no application is selected.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// The application last selected by AID.
    pub fn application(&self) -> Option<Application> {
        self.app
    }

    /// Decode one raw exchange and follow any application selection it made.
    pub fn decode(&mut self, command: &[u8], response: &[u8]) -> Decoded {
        let Ok(cmd) = Command::parse(command) else {
            let name = match command {
                [cla, ins, ..] => ins_name(*cla, *ins),
                _ => "(too short)",
            };
            return Decoded { name, detail: "malformed APDU".into(), response: None };
        };
        let rsp = Response::parse(response).ok();
        let ok = rsp.is_some_and(|r| r.status.is_success());
        let name = ins_name(cmd.cla, cmd.ins);
        let mut detail = match (cmd.cla, cmd.ins) {
            (_, 0xA4) => self.select(&cmd, ok),
            (_, 0xB0 | 0xD6) => binary(&cmd),
            (_, 0xB2 | 0xDC) => record(&cmd),
            (_, 0xA2) => format!("record {}, {}", cmd.p1, record_mode(cmd.p2)),
            (_, 0x20 | 0x24 | 0x26 | 0x28 | 0x2C) => pin(&cmd),
            (_, 0xF2) => status(&cmd),
            (_, 0xC0 | 0x12) => format!("Le {}", cmd.ne.unwrap_or(0)),
            (0xA0, INS_AUTHENTICATE_EVEN) => format!("RAND {}", hex::encode(cmd.data)),
            (_, INS_AUTHENTICATE_EVEN) => authenticate_even(&cmd),
            (_, INS_AUTHENTICATE_ODD) => authenticate_odd(&cmd),
            (_, 0x70) => match cmd.p1 {
                0x00 if cmd.p2 == 0 => "open a logical channel (card assigns)".into(),
                0x00 => format!("open logical channel {}", cmd.p2),
                0x80 => format!("close logical channel {}", cmd.p2),
                p1 => format!("P1 {p1:02X} unknown"),
            },
            _ => format!("P1 {:02X} P2 {:02X}", cmd.p1, cmd.p2),
        };
        let channel = logical_channel(cmd.cla);
        if channel != 0 {
            detail.push_str(&format!(", logical channel {channel}"));
        }
        let response = rsp.and_then(|r| describe_response(&cmd, r.data));
        Decoded { name, detail, response }
    }

    fn select(&mut self, cmd: &Command<'_>, ok: bool) -> String {
        let how = match cmd.p1 {
            0x00 => "select by file ID",
            0x01 => "select child DF",
            0x03 => "select parent DF",
            0x04 => "select by DF name (AID)",
            0x08 => "select by path from MF",
            0x09 => "select by path from current DF",
            _ => "select (P1 unknown)",
        };
        let ret = match cmd.p2 & 0x0C {
            0x04 => "return FCP",
            0x0C => "no data returned",
            0x00 => "return FCI",
            _ => "return (P2 unknown)",
        };
        let mut out = format!("{how}, {ret}");
        if cmd.p1 == 0x04 && cmd.p2 & 0x60 == 0x40 {
            out.push_str(", terminate the application");
        }
        let target = match cmd.p1 {
            0x04 => {
                let app = Application::of_aid(cmd.data);
                if ok && cmd.p2 & 0x60 == 0 {
                    self.app = app;
                }
                let name = match app {
                    Some(Application::Usim) => " = ADF.USIM",
                    Some(Application::Isim) => " = ADF.ISIM",
                    None => "",
                };
                format!("AID {}{name}", hex::encode(cmd.data))
            }
            0x08 | 0x09 => {
                let names: Vec<String> = cmd.data.chunks(2).map(|fid| self.fid_name(fid)).collect();
                format!("path {}", names.join("/"))
            }
            _ => self.fid_name(cmd.data),
        };
        format!("{out}: {target}")
    }

    fn fid_name(&self, fid: &[u8]) -> String {
        let [hi, lo] = *fid else {
            return format!("'{}'", hex::encode(fid));
        };
        let fid = u16::from_be_bytes([hi, lo]);
        let name = common_file_name(fid);
        let app_name = |app: App| app.ef_name(fid);
        let name = name.map(str::to_owned).or_else(|| match self.app {
            Some(app) => app_name(app).map(str::to_owned),
            None => {
                let (u, i) = (app_name(Application::Usim), app_name(Application::Isim));
                match (u, i) {
                    (Some(u), Some(i)) if u != i => Some(format!("{u} (USIM) or {i} (ISIM)")),
                    (Some(n), _) | (None, Some(n)) => Some(n.to_owned()),
                    (None, None) => None,
                }
            }
        });
        match name {
            Some(n) => format!("{fid:04X} = {n}"),
            None => format!("{fid:04X}"),
        }
    }
}

/// The logical channel a class byte addresses (TS 102 221 §10.1.1).
pub fn logical_channel(cla: u8) -> u8 {
    match cla {
        0xA0 => 0,
        c if c & 0xC0 == 0x40 => 4 + (c & 0x0F),
        c => c & 0x03,
    }
}

/// The name of an instruction (TS 102 221 Table 10.5, TS 31.102 §7, GSM class A0 of TS 51.011).
pub fn ins_name(cla: u8, ins: u8) -> &'static str {
    match ins {
        0xA4 => "SELECT",
        0xF2 => "STATUS",
        0xB0 => "READ BINARY",
        0xD6 => "UPDATE BINARY",
        0xB2 => "READ RECORD",
        0xDC => "UPDATE RECORD",
        0xA2 => "SEARCH RECORD",
        0x32 => "INCREASE",
        0xCB => "RETRIEVE DATA",
        0xDB => "SET DATA",
        0x20 => "VERIFY",
        0x24 => "CHANGE PIN",
        0x26 => "DISABLE PIN",
        0x28 => "ENABLE PIN",
        0x2C => "UNBLOCK PIN",
        0x04 => "DEACTIVATE FILE",
        0x44 => "ACTIVATE FILE",
        0x88 if cla == 0xA0 => "RUN GSM ALGORITHM",
        0x88 | 0x89 => "AUTHENTICATE",
        0x84 => "GET CHALLENGE",
        0x10 => "TERMINAL PROFILE",
        0xC2 => "ENVELOPE",
        0x12 => "FETCH",
        0x14 => "TERMINAL RESPONSE",
        0x70 => "MANAGE CHANNEL",
        0x73 => "MANAGE SECURE CHANNEL",
        0x75 => "TRANSACT DATA",
        0x76 => "SUSPEND UICC",
        0x78 => "GET IDENTITY",
        0xC0 => "GET RESPONSE",
        0xCA => "GET DATA",
        0xE2 => "STORE DATA",
        _ => "UNKNOWN INSTRUCTION",
    }
}

fn binary(cmd: &Command<'_>) -> String {
    let at = if cmd.p1 & 0x80 != 0 {
        format!("SFI {:02X}, offset {}", cmd.p1 & 0x1F, cmd.p2)
    } else {
        format!("offset {}", u16::from_be_bytes([cmd.p1 & 0x7F, cmd.p2]))
    };
    match (cmd.ins, cmd.ne) {
        (0xB0, Some(ne)) => format!("{at}, {ne} bytes"),
        (0xD6, _) => format!("{at}, {} bytes: {}", cmd.data.len(), hex::encode(cmd.data)),
        _ => at,
    }
}

fn record_mode(p2: u8) -> String {
    let mode = match p2 & 0x07 {
        0x02 => "next record",
        0x03 => "previous record",
        0x04 => "absolute/current record",
        _ => "mode unknown",
    };
    match p2 >> 3 {
        0 => mode.to_owned(),
        sfi => format!("{mode}, SFI {sfi:02X}"),
    }
}

fn record(cmd: &Command<'_>) -> String {
    let head = format!("record {}, {}", cmd.p1, record_mode(cmd.p2));
    match (cmd.ins, cmd.ne) {
        (0xB2, Some(ne)) => format!("{head}, {ne} bytes"),
        (0xDC, _) => format!("{head}, {} bytes: {}", cmd.data.len(), hex::encode(cmd.data)),
        _ => head,
    }
}

/// The key reference of VERIFY and the PIN commands (TS 102 221 Table 9.3).
fn key_reference(p2: u8) -> String {
    match p2 {
        0x01..=0x08 => format!("PIN Appl {} (global)", p2),
        0x0A..=0x0E => format!("ADM{}", p2 - 0x09),
        0x11 => "universal PIN".to_owned(),
        0x81..=0x88 => format!("second PIN Appl {} (local)", p2 - 0x80),
        0x8A..=0x8E => format!("ADM{}", p2 - 0x84),
        _ => format!("key reference {p2:02X}"),
    }
}

fn pin(cmd: &Command<'_>) -> String {
    let reference = key_reference(cmd.p2);
    match (cmd.ins, cmd.data.is_empty()) {
        (0x20, true) => format!("{reference}: retry counter query"),
        (0x20, false) => format!("{reference}: {}", hex::encode(cmd.data)),
        (0x26, _) if cmd.p1 != 0 => format!("{reference}, replaced by key {:02X}", cmd.p1),
        _ => reference,
    }
}

fn status(cmd: &Command<'_>) -> String {
    let p1 = match cmd.p1 {
        0x00 => "no indication",
        0x01 => "application initialized",
        0x02 => "application terminating",
        _ => "P1 unknown",
    };
    let p2 = match cmd.p2 {
        0x00 => "return FCP of the current DF",
        0x01 => "return the AID",
        0x0C => "no data returned",
        _ => "P2 unknown",
    };
    format!("{p1}, {p2}")
}

/// Split a chain of one-byte length-value fields, as far as it goes.
fn lv_fields(data: &[u8]) -> Vec<&[u8]> {
    LvFields::new(data).collect()
}

fn authenticate_even(cmd: &Command<'_>) -> String {
    let reference = if cmd.p2 & 0x80 != 0 { "" } else { " (P2 b8 not set: no specific reference data)" };
    let context = context_name(cmd.p2);
    match (cmd.p2 & 0x07, cmd.data.first()) {
        (4, Some(&TAG_GBA_BOOTSTRAPPING)) => {
            let f = lv_fields(cmd.data.get(1..).unwrap_or_default());
            format!(
                "{context}, bootstrapping mode (tag DD){reference}: RAND {} AUTN {}",
                hex::encode(f.first().copied().unwrap_or_default()),
                hex::encode(f.get(1).copied().unwrap_or_default())
            )
        }
        (4, Some(&TAG_GBA_NAF_DERIVATION)) => {
            let f = lv_fields(cmd.data.get(1..).unwrap_or_default());
            let naf_id = f.first().copied().unwrap_or_default();
            let (fqdn, ua) = naf_id.split_at(naf_id.len().saturating_sub(UA_SECURITY_PROTOCOL_ID_LEN));
            format!(
                "{context}, NAF derivation mode (tag DE){reference}: NAF_Id {} + Ua security protocol {} IMPI {}",
                String::from_utf8_lossy(fqdn),
                hex::encode(ua),
                String::from_utf8_lossy(f.get(1).copied().unwrap_or_default())
            )
        }
        (4, tag) => format!("{context}, unknown mode tag {:02X?}", tag),
        (0, _) => format!(
            "{context}{reference}: RAND {}",
            hex::encode(lv_fields(cmd.data).first().copied().unwrap_or_default())
        ),
        (1 | 2, _) => {
            let f = lv_fields(cmd.data);
            format!(
                "{context}{reference}: RAND {} AUTN {}",
                hex::encode(f.first().copied().unwrap_or_default()),
                hex::encode(f.get(1).copied().unwrap_or_default())
            )
        }
        _ => format!("{context}{reference}"),
    }
}

fn authenticate_odd(cmd: &Command<'_>) -> String {
    let block = odd_block_name(cmd.p1);
    let context = if matches!(cmd.p1, P1_ODD_FIRST_BLOCK | 0x00) { context_name(cmd.p2) } else { "" };
    let mut out = if context.is_empty() { block.to_owned() } else { format!("{context}, {block}") };
    if cmd.p2 & 0x07 == 5 && cmd.data.first() == Some(&TAG_MBMS_DATA) {
        let body = odd_object_value(cmd.data).unwrap_or_default();
        let mode = body.first().copied();
        let data = body.get(1..).unwrap_or_default();
        let mode_text = match mode {
            Some(MODE_MSK_UPDATE) => format!("MSK update mode (01): MIKEY message of {} bytes", data.len()),
            Some(MODE_MTK_GENERATION) => {
                format!("MTK generation mode (02): MIKEY message of {} bytes", data.len())
            }
            Some(MODE_MSK_DELETION) => match data {
                [a, b, c, g1, g2, ..] => format!(
                    "MSK deletion mode (03): Key Domain ID {} Key Group {}",
                    hex::encode([*a, *b, *c]),
                    hex::encode([*g1, *g2])
                ),
                _ => format!("MSK deletion mode (03): {}", hex::encode(data)),
            },
            Some(MODE_MUK_DELETION) => format!("MUK deletion mode (04): MUK ID {}", hex::encode(data)),
            Some(m) => format!("unknown MBMS mode {m:02X}"),
            None => "no MBMS mode byte".to_owned(),
        };
        out.push_str(": ");
        out.push_str(&mode_text);
    }
    out
}

fn describe_response(cmd: &Command<'_>, data: &[u8]) -> Option<String> {
    if data.is_empty() {
        return None;
    }
    match (cmd.cla, cmd.ins, cmd.p2 & 0x07) {
        (0xA0, INS_AUTHENTICATE_EVEN, _) => None,
        (_, INS_AUTHENTICATE_EVEN, ctx) => {
            let (&tag, rest) = data.split_first()?;
            let f = lv_fields(rest);
            let lens = |names: &[&str]| {
                names
                    .iter()
                    .zip(&f)
                    .map(|(n, v)| format!("{n} ({} bytes)", v.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Some(match (tag, ctx, cmd.data.first()) {
                (TAG_SYNC_FAILURE, _, _) => format!("synchronisation failure: {}", lens(&["AUTS"])),
                (TAG_SUCCESS, 4, Some(&TAG_GBA_NAF_DERIVATION)) => {
                    format!("success: {}", lens(&["Ks_ext_NAF"]))
                }
                (TAG_SUCCESS, 4, _) => format!("success: {}", lens(&["RES"])),
                (TAG_SUCCESS, 0, _) => format!("success: {}", lens(&["SRES", "Kc"])),
                (TAG_SUCCESS, _, _) => format!("success: {}", lens(&["RES", "CK", "IK", "Kc"])),
                _ => return None,
            })
        }
        (_, INS_AUTHENTICATE_ODD, 5) => {
            let body = odd_object_value(data)?;
            match body.split_first() {
                Some((&TAG_SUCCESS, [])) => Some("success".into()),
                Some((&TAG_SUCCESS, rest)) => Some(format!("success, {} bytes follow DB", rest.len())),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(cmd: &str, rsp: &str) -> Decoded {
        Decoder::new().decode(&hex::decode(cmd).unwrap(), &hex::decode(rsp).unwrap())
    }

    #[test]
    fn select_by_aid_names_the_application_and_follows_it() {
        let mut dec = Decoder::new();
        let r = dec.decode(&hex::decode("00a4040407a000000087100200").unwrap(), &[0x90, 0x00]);
        assert_eq!(r.name, "SELECT");
        assert_eq!(r.detail, "select by DF name (AID), return FCP: AID a0000000871002 = ADF.USIM");
        assert_eq!(dec.application(), Some(Application::Usim));
        let r = dec.decode(&hex::decode("00a4000c026fd7").unwrap(), &[0x90, 0x00]);
        assert_eq!(r.detail, "select by file ID, no data returned: 6FD7 = EF.MSK");
        dec.decode(&hex::decode("00a4040c07a0000000871004").unwrap(), &[0x90, 0x00]);
        let r = dec.decode(&hex::decode("00a4000c026fd7").unwrap(), &[0x90, 0x00]);
        assert_eq!(r.detail, "select by file ID, no data returned: 6FD7 = EF.GBANL");
        // A failed selection changes nothing.
        dec.decode(&hex::decode("00a4040c07a0000000871002").unwrap(), &[0x6A, 0x82]);
        assert_eq!(dec.application(), Some(Application::Isim));
    }

    #[test]
    fn ambiguous_fid_without_application() {
        let r = d("00a4000c026f07", "9000");
        assert_eq!(r.detail, "select by file ID, no data returned: 6F07 = EF.IMSI (USIM) or EF.IST (ISIM)");
        assert_eq!(d("00a4000c023f00", "9000").detail, "select by file ID, no data returned: 3F00 = MF");
    }

    #[test]
    fn authenticate_contexts() {
        let rand = "23553cbe9637a89d218ae64dae47bf35";
        let autn = "55f328b43577b9b94a9ffac354dfafb3";
        let r = d(&format!("0088008122 10{rand} 10{autn}").replace(' ', ""), "9862");
        assert_eq!(r.detail, format!("3G context: RAND {rand} AUTN {autn}"));
        let r = d(&format!("0088008423dd10{rand}10{autn}00"), "db08a54211d5e3ba50bf9000");
        assert_eq!(r.detail, format!("GBA context, bootstrapping mode (tag DD): RAND {rand} AUTN {autn}"));
        assert_eq!(r.response.as_deref(), Some("success: RES (8 bytes)"));
        let naf = hex::encode(b"bmsc.example.org");
        let impi = hex::encode(b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org");
        let cmd = format!(
            "00880084{:02x}de15{naf}0100000001{:02x}{impi}00",
            1 + 1 + 21 + 1 + impi.len() / 2,
            impi.len() / 2
        );
        let r = d(&cmd, &format!("db20{}9000", "00".repeat(32)));
        assert_eq!(
            r.detail,
            "GBA context, NAF derivation mode (tag DE): NAF_Id bmsc.example.org + Ua security protocol 0100000001 \
             IMPI 001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
        );
        assert_eq!(r.response.as_deref(), Some("success: Ks_ext_NAF (32 bytes)"));
        assert_eq!(d(&format!("a088000010{rand}"), "9000").name, "RUN GSM ALGORITHM");
    }

    #[test]
    fn mbms_modes() {
        let r = d("00898085085306030010010001", "9000");
        assert_eq!(r.name, "AUTHENTICATE");
        assert_eq!(
            r.detail,
            "MBMS context, first block of authentication data: MSK deletion mode (03): Key Domain ID 001001 Key Group 0001"
        );
        let r = d("0089808506530401aabbcc00", "0353 01db9000".replace(' ', "").as_str());
        assert!(r.detail.contains("MSK update mode (01): MIKEY message of 3 bytes"), "{}", r.detail);
        let r = d("008980850453020203", "9000");
        assert!(r.detail.contains("MTK generation mode (02)"), "{}", r.detail);
        let r = d("00898085045302040a", "9000");
        assert!(r.detail.contains("MUK deletion mode (04): MUK ID 0a"), "{}", r.detail);
        let r = d("0089a00000", "5303db01029000");
        assert_eq!(r.detail, "retrieve first block of response data");
    }

    #[test]
    fn files_and_pins() {
        assert_eq!(d("00b0000009", "9000").detail, "offset 0, 9 bytes");
        assert_eq!(d("00b0830000", "9000").detail, "SFI 03, offset 0, 256 bytes");
        assert_eq!(d("00b2010428", "9000").detail, "record 1, absolute/current record, 40 bytes");
        assert_eq!(d("00dc0104020102", "9000").detail, "record 1, absolute/current record, 2 bytes: 0102");
        assert_eq!(d("002000010831323334ffffffff", "9000").name, "VERIFY");
        assert_eq!(d("00200001", "63c3").detail, "PIN Appl 1 (global): retry counter query");
        assert_eq!(d("0020000a083838383838383838", "9000").detail, "ADM1: 3838383838383838");
        assert_eq!(d("00f2000c", "9000").detail, "no indication, no data returned");
        assert_eq!(d("01c0000010", "9000").detail, "Le 16, logical channel 1");
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(cmd in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                  rsp in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                                  ins in proptest::sample::select(vec![0x88u8, 0x89, 0xA4, 0xB0, 0xB2, 0x20, 0xF2])) {
            let mut cmd = cmd;
            if cmd.len() > 1 { cmd[1] = ins; }
            let mut dec = Decoder::new();
            let _ = dec.decode(&cmd, &rsp);
        }
    }
}
