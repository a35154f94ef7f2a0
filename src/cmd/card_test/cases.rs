//! The catalogue of `keysim card-test`: every case, with its clause, and what a correct card
//! answers. Each case starts on a reset card (no file selected, no PIN verified) and leaves the
//! card as it found it, except for what a phone does too (AKA moves the SQN, a GBA bootstrap
//! replaces Ks, B-TID and lifetime); MSKs and MUKs it delivers are deleted again.

use uicc_vocab::authenticate::{INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT};
use uicc_vocab::files::{FID_DIR, FID_ICCID, usim};

use super::net::{
    App, Bmsc, Ctx, EF_MSK, EF_MUK, Facts, ISIM_AID_PREFIX, LIFETIME, OTHER_NAF_FQDN, Step, Stop,
    USIM_AID_PREFIX, apdu, decode_gbabp, decode_gbanl_record, ensure, fail, fcp_tag, hx, mbms_answer,
    mbms_apdu, mismatch, naf_derivation_data, ntp_utc, pin_field,
};

/// Clause of ISO/IEC 7816-4 and TS 102 221 (file system, PIN, channels, transport).
pub(crate) const BASICS: &str = "TS 102 221";
/// Clause of USIM/ISIM AKA (TS 33.102 §6.3, TS 31.102 §7.1.2.1, TS 31.103 §7.1).
pub(crate) const AKA: &str = "TS 33.102";
/// Clause of GBA_U on the card (TS 33.220 §5.3.2, Annex G; TS 31.102 §7.1.2.3-4).
pub(crate) const GBA: &str = "TS 33.220";
/// Clause of MBMS key management on the card (TS 33.246 §6 with its Rel-6 CRs; TS 31.102 §7.1.2.5).
pub(crate) const MBMS: &str = "TS 33.246";
/// No secret in any response (TS 33.220 §5.1, TS 33.246 §6.1).
pub(crate) const SECRETS: &str = "secrets";

/// One case of the catalogue.
pub(crate) struct Case {
    /// Stable identifier.
    pub id: &'static str,
    /// The clause family it checks.
    pub clause: &'static str,
    /// What it checks.
    pub title: &'static str,
    /// Whether it cannot be undone on the card (runs only with `--destructive`).
    pub destructive: bool,
    /// What a destructive case does to the card.
    pub destructive_note: &'static str,
    /// The case.
    pub run: fn(&mut Ctx) -> Step,
}

impl Case {
    /// Whether the ID or clause matches `pattern`: a glob with `*`, else a substring (case-blind).
    pub(crate) fn matches(&self, pattern: &str) -> bool {
        let p = pattern.to_ascii_lowercase();
        [self.id, self.clause].iter().any(|field| {
            let f = field.to_ascii_lowercase();
            if p.contains('*') { glob(&p, &f) } else { f.contains(&p) }
        })
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| glob(rest, &text[head.len() + i..]))
        }
    }
}

const fn case(
    id: &'static str,
    clause: &'static str,
    title: &'static str,
    run: fn(&mut Ctx) -> Step,
) -> Case {
    Case { id, clause, title, destructive: false, destructive_note: "", run }
}

const fn destructive(
    id: &'static str,
    clause: &'static str,
    title: &'static str,
    note: &'static str,
    run: fn(&mut Ctx) -> Step,
) -> Case {
    Case { id, clause, title, destructive: true, destructive_note: note, run }
}

/// Every case, in the order they run.
pub(crate) fn catalogue() -> Vec<Case> {
    vec![
        case("BAS-ATR", BASICS, "ATR: TS byte, T=0 offered, interface bytes and TCK consistent", basics::atr),
        case(
            "BAS-SELECT-MF-FCP",
            BASICS,
            "SELECT MF by FID: FCP with 82 DF, 83 3F00, A5 UICC characteristics, 8A, 8B, C6",
            basics::select_mf_fcp,
        ),
        case(
            "BAS-SELECT-EF-FCP",
            BASICS,
            "SELECT EF.ICCID by FID: FCP with 82, 83, 8A, security attributes, 80 size",
            basics::select_ef_fcp,
        ),
        case(
            "BAS-SELECT-PATH",
            BASICS,
            "SELECT by path from the MF (with 7FFF) and from the current DF",
            basics::select_path,
        ),
        case(
            "BAS-SELECT-AID-FULL",
            BASICS,
            "SELECT the USIM by its full AID: FCP with 84 = AID and C6",
            basics::select_aid_full,
        ),
        case(
            "BAS-SELECT-AID-PARTIAL",
            BASICS,
            "SELECT by right-truncated AID, STATUS names the full AID",
            basics::select_aid_partial,
        ),
        case(
            "BAS-SELECT-NOT-FOUND",
            BASICS,
            "SELECT of an absent FID or AID answers 6A82",
            basics::select_not_found,
        ),
        case(
            "BAS-READ-BINARY",
            BASICS,
            "READ BINARY EF.ICCID whole and from an offset; past the end 6B00",
            basics::read_binary,
        ),
        case(
            "BAS-READ-RECORD",
            BASICS,
            "READ RECORD EF.DIR: application templates; past the last record 6A83",
            basics::read_record,
        ),
        case(
            "BAS-ACCESS-PIN",
            BASICS,
            "EF.IMSI needs PIN1 (6982 before VERIFY), then holds the profile's IMSI",
            basics::access_pin,
        ),
        case(
            "BAS-UPDATE-BINARY",
            BASICS,
            "UPDATE BINARY EF.PL needs PIN1, reads back, is restored",
            basics::update_binary,
        ),
        case(
            "BAS-UPDATE-ADM",
            BASICS,
            "ADM files refuse UPDATE BINARY/RECORD under PIN1 only (6982); with --adm accepted",
            basics::update_adm,
        ),
        case(
            "BAS-VERIFY-COUNTER",
            BASICS,
            "VERIFY: a wrong PIN1 costs one try (63Cx), the right one restores the counter",
            basics::verify_counter,
        ),
        case(
            "BAS-VERIFY-LENGTH",
            BASICS,
            "VERIFY with a short PIN field answers 6700 and costs no try",
            basics::verify_length,
        ),
        case(
            "BAS-UNBLOCK-STATUS",
            BASICS,
            "UNBLOCK PIN without data reports the PUK1 tries (63Cx)",
            basics::unblock_status,
        ),
        destructive(
            "BAS-UNBLOCK-PIN",
            BASICS,
            "PIN1 blocked by wrong tries, UNBLOCK PIN with PUK1 restores it",
            "blocks PIN1 with wrong tries (one wrong PUK1 try too), then unblocks it with the profile's PUK1 and sets the profile's PIN1 again",
            basics::unblock_pin,
        ),
        case(
            "BAS-MANAGE-CHANNEL",
            BASICS,
            "MANAGE CHANNEL: open, own application per channel, close (then 6881)",
            basics::manage_channel,
        ),
        case("BAS-STATUS", BASICS, "STATUS: FCP of the current ADF, its AID, no data", basics::status),
        case(
            "BAS-T0-GET-RESPONSE",
            BASICS,
            "T=0: a case-4 SELECT answers 61xx, GET RESPONSE returns the FCP",
            basics::t0_get_response,
        ),
        case(
            "BAS-T0-WRONG-LE",
            BASICS,
            "T=0: READ BINARY with a too large Le answers 6Cxx, then the data",
            basics::t0_wrong_le,
        ),
        case(
            "BAS-GET-RESPONSE-NONE",
            BASICS,
            "GET RESPONSE with nothing pending answers 6F00",
            basics::get_response_none,
        ),
        case("BAS-WRONG-LENGTH", BASICS, "wrong Lc answers 6700", basics::wrong_length),
        case("BAS-UNKNOWN-INS", BASICS, "unknown instruction 6D00, unknown class 6E00", basics::unknown_ins),
        case(
            "AKA-RESYNC",
            AKA,
            "a stale SQN gives DC 0E AUTS whose MAC-S verifies and names SQN_MS",
            aka::resync,
        ),
        case("AKA-USIM", AKA, "USIM 3G context: DB RES CK IK [Kc] as the HE computes them", aka::usim),
        case("AKA-REPLAY", AKA, "the same challenge again is a synchronisation failure", aka::replay),
        case(
            "AKA-MAC-FAILURE",
            AKA,
            "a wrong MAC answers 9862 and does not consume the SQN",
            aka::mac_failure,
        ),
        case(
            "AKA-GBA-U-IN-3G",
            AKA,
            "a GBA_U challenge (AUTN*) in the 3G context answers 9862",
            aka::gba_u_in_3g,
        ),
        case("AKA-ISIM", AKA, "ISIM 3G context: DB RES CK IK", aka::isim),
        case(
            "AKA-ISIM-CHANNEL",
            AKA,
            "ISIM AKA on a logical channel while the USIM stays on the basic one",
            aka::isim_channel,
        ),
        case("AKA-NO-PIN", AKA, "AUTHENTICATE before PIN1 answers 6982", aka::no_pin),
        case("AKA-BAD-P2", AKA, "AUTHENTICATE with P2 b8 clear is refused", aka::bad_p2),
        case(
            "GBA-REFUSE-NO-BOOTSTRAP",
            GBA,
            "an application never bootstrapped refuses NAF derivation (6985)",
            gba::refuse_no_bootstrap,
        ),
        case(
            "GBA-BOOTSTRAP",
            GBA,
            "GBA_U bootstrap answers DB L RES only (Ks stays on the card)",
            gba::bootstrap,
        ),
        case(
            "GBA-GBABP",
            GBA,
            "EF.GBABP: RAND written by the card, B-TID and lifetime by the ME, read back",
            gba::gbabp,
        ),
        case(
            "GBA-NAF-DERIVATION",
            GBA,
            "NAF derivation gives exactly Ks_ext_NAF and lists NAF_Id/B-TID in EF.GBANL",
            gba::naf_derivation,
        ),
        case(
            "GBA-LIFETIME",
            GBA,
            "the key lifetime written is kept and a second lifetime replaces it",
            gba::lifetime,
        ),
        case(
            "GBA-REFUSE-NO-BTID",
            GBA,
            "NAF derivation before B-TID and lifetime are written answers 6985",
            gba::refuse_no_btid,
        ),
        case(
            "GBA-REFUSE-NEW-BOOTSTRAP",
            GBA,
            "a new bootstrap clears B-TID and lifetime: NAF derivation 6985 again",
            gba::refuse_new_bootstrap,
        ),
        case("GBA-ISIM", GBA, "ISIM GBA_U: bootstrap, EF.GBABP, NAF derivation with EF.IMPI", gba::isim),
        case(
            "GBA-MALFORMED",
            GBA,
            "malformed GBA commands are refused (empty IMPI, P1, length)",
            gba::malformed,
        ),
        case(
            "MBMS-EF-SHAPES",
            MBMS,
            "EF.MSK (record 8n+4, n ≥ 2), EF.MUK, EF.GBANL linear fixed, EF.GBABP transparent",
            mbms::ef_shapes,
        ),
        case(
            "MBMS-EF-ACCESS",
            MBMS,
            "EF.MSK, EF.MUK and EF.GBANL refuse UPDATE RECORD under PIN1 (6982)",
            mbms::ef_access,
        ),
        case(
            "MBMS-MSK-UPDATE",
            MBMS,
            "MSK Update: verification message on V, EF.MUK and EF.MSK decoded",
            mbms::msk_update,
        ),
        case(
            "MBMS-MSK-REPLAY",
            MBMS,
            "a replayed or older MSK message answers 9865, state unchanged",
            mbms::msk_replay,
        ),
        case(
            "MBMS-MSK-MAC",
            MBMS,
            "an MSK message with a wrong MAC answers 9862, state unchanged",
            mbms::msk_mac,
        ),
        case(
            "MBMS-MTK-GENERATION",
            MBMS,
            "MTK Generation returns the BM-SC's MTK and salt; EF.MSK keeps the MTK ID",
            mbms::mtk_generation,
        ),
        case(
            "MBMS-MTK-ID-RULE",
            MBMS,
            "an MTK ID not above the last one answers 9865 (state unchanged), a higher one is accepted",
            mbms::mtk_id_rule,
        ),
        case(
            "MBMS-TWO-MSKS",
            MBMS,
            "at most two MSKs per Key Group: a third deletes the older",
            mbms::two_msks,
        ),
        case(
            "MBMS-SOLICITED-PULL",
            MBMS,
            "solicited pull with an expired last MUK is accepted; an MSK with it 9863",
            mbms::solicited_pull,
        ),
        case(
            "MBMS-MSK-DELETION",
            MBMS,
            "MSK Deletion empties the Key Group; MTK and a second deletion 6A88",
            mbms::msk_deletion,
        ),
        case(
            "MBMS-MUK-DELETION",
            MBMS,
            "MUK Deletion removes EF.MUK's record and the MUK; then 6985 / 6A88",
            mbms::muk_deletion,
        ),
        case("MBMS-NO-MUK", MBMS, "an MSK message for an unknown MUK ID answers 6985", mbms::no_muk),
        case("MBMS-ISIM-REFUSED", MBMS, "the MBMS context on the ISIM answers 9864", mbms::isim_refused),
        destructive(
            "MBMS-FILL-EF-MSK",
            MBMS,
            "a full EF.MSK answers 9866, state unchanged",
            "fills every free EF.MSK record with MSKs of Key Groups 7F00 onwards, then deletes them (counters of the MUK stay advanced)",
            mbms::fill_ef_msk,
        ),
        case(
            "SEC-NO-SECRETS",
            SECRETS,
            "no CK/IK of GBA_U, Ks, Ks_int_NAF or MSK in any response",
            secrets::no_secrets,
        ),
    ]
}

/// ICCID digits as EF.ICCID holds them (BCD, nibbles swapped, `F` padded; TS 102 221 §13.2).
fn iccid_bytes(iccid: &str) -> Vec<u8> {
    let d: Vec<u8> = iccid.bytes().map(|c| c - b'0').collect();
    d.chunks(2).map(|p| (p.get(1).copied().unwrap_or(0x0F) << 4) | p[0]).collect()
}

/// Status word as a number.
fn sw_of(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

/// Tries left from a `63 Cx` answer.
fn tries(sw: u16) -> Option<u8> {
    (sw & 0xFFF0 == 0x63C0).then_some((sw & 0x0F) as u8)
}

/// A PIN1 value the profile does not have.
fn wrong_pin(pin: &str) -> String {
    if pin.starts_with('0') { "9".repeat(pin.len()) } else { "0".repeat(pin.len()) }
}

/// The class byte of logical channel `n` (TS 102 221 §10.1.1).
fn channel_cla(n: u8) -> u8 {
    if n < 4 { n } else { 0x40 | (n - 4) }
}

mod basics {
    use super::*;

    pub(super) fn atr(ctx: &mut Ctx) -> Step {
        let atr = ctx.facts.atr.clone();
        ensure(atr.len() >= 2, || format!("ATR too short: {}", hx(&atr)))?;
        ensure(atr[0] == 0x3B || atr[0] == 0x3F, || format!("TS byte {:02X}: neither 3B nor 3F", atr[0]))?;
        let historical = usize::from(atr[1] & 0x0F);
        let mut y = atr[1] >> 4;
        let mut i = 2;
        let mut protocols = Vec::new();
        loop {
            i += (y & 1) as usize + ((y >> 1) & 1) as usize + ((y >> 2) & 1) as usize;
            if y & 8 == 0 {
                break;
            }
            let Some(&td) = atr.get(i) else {
                return fail(format!("ATR ends inside its interface bytes: {}", hx(&atr)));
            };
            protocols.push(td & 0x0F);
            y = td >> 4;
            i += 1;
        }
        let t0_offered = protocols.first().is_none_or(|&p| p == 0);
        ensure(t0_offered, || format!("the ATR does not offer T=0 first (TS 102 221 §6.3): {}", hx(&atr)))?;
        let tck = protocols.iter().any(|&p| p != 0);
        let expected_len = i + historical + usize::from(tck);
        if atr.len() != expected_len {
            return mismatch(
                "ATR length from its format byte and interface bytes",
                format!("{expected_len} bytes"),
                format!("{} bytes: {}", atr.len(), hx(&atr)),
            );
        }
        if tck {
            let x = atr[1..].iter().fold(0u8, |a, b| a ^ b);
            ensure(x == 0, || format!("TCK does not check: XOR of T0..TCK is {x:02X}"))?;
        }
        Ok(())
    }

    /// The FCP checks every file shares (TS 102 221 §11.1.1.3): 82, 83, 8A, a security attribute.
    fn common_fcp(fcp: &[u8], fid: Option<u16>, what: &str) -> Step {
        ensure(fcp.first() == Some(&0x62), || format!("{what}: the FCP is not a 62 template: {}", hx(fcp)))?;
        ensure(fcp_tag(fcp, 0x82).is_some(), || format!("{what}: no file descriptor (82): {}", hx(fcp)))?;
        if let Some(fid) = fid {
            let got = fcp_tag(fcp, 0x83);
            if got.as_deref() != Some(&fid.to_be_bytes()[..]) {
                return mismatch(
                    format!("{what}: file identifier (83)"),
                    format!("83 02 {fid:04X}"),
                    hx(fcp),
                );
            }
        }
        ensure(fcp_tag(fcp, 0x8A).is_some(), || {
            format!(
                "{what}: no life cycle status integer (8A, mandatory in TS 102 221 §11.1.1.3): {}",
                hx(fcp)
            )
        })?;
        let security = [0x8B, 0x8C, 0xAB].iter().any(|&t| fcp_tag(fcp, t).is_some());
        ensure(security, || format!("{what}: no security attributes (8B, 8C or AB): {}", hx(fcp)))
    }

    pub(super) fn select_mf_fcp(ctx: &mut Ctx) -> Step {
        let fcp = ctx.select_fcp(0x3F00, "MF")?;
        common_fcp(&fcp, Some(0x3F00), "MF")?;
        let d = fcp_tag(&fcp, 0x82).unwrap_or_default();
        ensure(d.first().is_some_and(|b| b & 0xBF == 0x38), || {
            format!("MF: descriptor {} is not a DF (78)", hx(&d))
        })?;
        ensure(fcp_tag(&fcp, 0xC6).is_some(), || format!("MF: no PIN status template (C6): {}", hx(&fcp)))?;
        // TS 102 221 §11.1.1.4.6: the proprietary information A5 carries the UICC characteristics
        // (80), mandatory for the MF.
        let a5 = fcp_tag(&fcp, 0xA5).unwrap_or_default();
        let characteristics = apdu::tlv::find(&a5, 0x80).ok().flatten().is_some_and(|v| v.len() == 1);
        ensure(characteristics, || format!("MF: no UICC characteristics (A5 {{80 01 xx}}): {}", hx(&fcp)))
    }

    pub(super) fn select_ef_fcp(ctx: &mut Ctx) -> Step {
        ctx.select(0x3F00, "MF")?;
        let fcp = ctx.select_fcp(FID_ICCID, "EF.ICCID")?;
        common_fcp(&fcp, Some(0x2FE2), "EF.ICCID")?;
        let d = fcp_tag(&fcp, 0x82).unwrap_or_default();
        ensure(d.first().is_some_and(|b| b & 0x07 == 0x01), || {
            format!("EF.ICCID: descriptor {} is not transparent", hx(&d))
        })?;
        let size = fcp_tag(&fcp, 0x80);
        if size.as_deref() != Some(&[0x00, 0x0A][..]) {
            return mismatch("EF.ICCID: file size (80)", "80 02 000A", hx(&fcp));
        }
        Ok(())
    }

    pub(super) fn select_path(ctx: &mut Ctx) -> Step {
        let fcp = ctx
            .expect(
                "SELECT by path 2FE2 from the MF",
                &apdu(0x00, 0xA4, 0x08, 0x04, &[0x2F, 0xE2], Some(0)),
                0x9000,
            )?
            .data;
        common_fcp(&fcp, Some(0x2FE2), "path 3F00/2FE2")?;
        ctx.select_app(App::Usim)?;
        let fcp = ctx
            .expect(
                "SELECT by path 7FFF/6F07 from the MF",
                &apdu(0x00, 0xA4, 0x08, 0x04, &[0x7F, 0xFF, 0x6F, 0x07], Some(0)),
                0x9000,
            )?
            .data;
        common_fcp(&fcp, Some(0x6F07), "path 7FFF/6F07")?;
        ctx.select_app(App::Usim)?;
        let fcp = ctx
            .expect(
                "SELECT by path 6FAD from the current DF",
                &apdu(0x00, 0xA4, 0x09, 0x04, &[0x6F, 0xAD], Some(0)),
                0x9000,
            )?
            .data;
        common_fcp(&fcp, Some(0x6FAD), "path ./6FAD")
    }

    pub(super) fn select_aid_full(ctx: &mut Ctx) -> Step {
        let aid = ctx.facts.aid(&USIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        let fcp = ctx
            .expect(
                "SELECT ADF.USIM by full AID (FCP)",
                &apdu(0x00, 0xA4, 0x04, 0x04, &aid, Some(0)),
                0x9000,
            )?
            .data;
        common_fcp(&fcp, None, "ADF.USIM")?;
        if fcp_tag(&fcp, 0x84).as_deref() != Some(aid.as_slice()) {
            return mismatch(
                "ADF.USIM: DF name (84)",
                format!("84 {:02X} {}", aid.len(), hx(&aid)),
                hx(&fcp),
            );
        }
        ensure(fcp_tag(&fcp, 0xC6).is_some(), || {
            format!("ADF.USIM: no PIN status template (C6): {}", hx(&fcp))
        })
    }

    pub(super) fn select_aid_partial(ctx: &mut Ctx) -> Step {
        let aid = ctx.facts.aid(&USIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        ctx.expect(
            "SELECT by right-truncated AID A0000000871002",
            &apdu(0x00, 0xA4, 0x04, 0x0C, &USIM_AID_PREFIX, None),
            0x9000,
        )?;
        let ex = ctx.expect("STATUS (DF name)", &apdu(0x80, 0xF2, 0x00, 0x01, &[], Some(0)), 0x9000)?;
        let mut expected = vec![0x84, aid.len() as u8];
        expected.extend_from_slice(&aid);
        if ex.data != expected {
            return mismatch(
                "STATUS after a partial-AID SELECT names the full AID",
                hx(&expected),
                hx(&ex.data),
            );
        }
        Ok(())
    }

    pub(super) fn select_not_found(ctx: &mut Ctx) -> Step {
        ctx.expect(
            "SELECT absent FID 6F99 under the MF",
            &apdu(0x00, 0xA4, 0x00, 0x0C, &[0x6F, 0x99], None),
            0x6A82,
        )?;
        ctx.expect(
            "SELECT absent AID",
            &apdu(0x00, 0xA4, 0x04, 0x0C, &[0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x7F], None),
            0x6A82,
        )?;
        Ok(())
    }

    pub(super) fn read_binary(ctx: &mut Ctx) -> Step {
        let expected = iccid_bytes(ctx.profile.iccid());
        ctx.select(FID_ICCID, "EF.ICCID")?;
        let ex = ctx.expect("READ BINARY EF.ICCID", &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(10)), 0x9000)?;
        if ex.data != expected {
            return mismatch(
                "EF.ICCID holds the profile's ICCID (BCD, swapped)",
                hx(&expected),
                hx(&ex.data),
            );
        }
        let ex = ctx.expect(
            "READ BINARY EF.ICCID from offset 5",
            &apdu(0x00, 0xB0, 0x00, 0x05, &[], Some(5)),
            0x9000,
        )?;
        if ex.data != expected[5..] {
            return mismatch("READ BINARY at offset 5", hx(&expected[5..]), hx(&ex.data));
        }
        ctx.expect("READ BINARY past the end", &apdu(0x00, 0xB0, 0x00, 0x20, &[], Some(1)), 0x6B00)?;
        Ok(())
    }

    pub(super) fn read_record(ctx: &mut Ctx) -> Step {
        let records = ctx.read_records(FID_DIR, "EF.DIR")?;
        let usim = records.iter().any(|r| {
            apdu::tlv::Tlv::parse(r).is_ok_and(|(t, _)| {
                t.tag == 0x61
                    && apdu::tlv::find(t.value, 0x4F)
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.starts_with(&USIM_AID_PREFIX))
            })
        });
        ensure(usim, || "no EF.DIR record is an application template 61 {4F USIM AID}".into())?;
        let n = records.len() as u8;
        let len = records.first().map_or(0, |r| r.len() as u8);
        ctx.expect(
            "READ RECORD past the last record",
            &apdu(0x00, 0xB2, n + 1, 0x04, &[], Some(len)),
            0x6A83,
        )?;
        Ok(())
    }

    pub(super) fn access_pin(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        ctx.select(usim::IMSI, "EF.IMSI")?;
        ctx.expect("READ BINARY EF.IMSI before VERIFY", &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(9)), 0x6982)?;
        ctx.verify_pin()?;
        let ex = ctx.expect("READ BINARY EF.IMSI", &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(9)), 0x9000)?;
        let imsi = uicc_vocab::ef::imsi::decode(&ex.data);
        if imsi.as_deref() != Some(ctx.profile.imsi()) {
            return mismatch("EF.IMSI holds the profile's IMSI", ctx.profile.imsi().to_owned(), hx(&ex.data));
        }
        Ok(())
    }

    pub(super) fn update_binary(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        ctx.select(0x3F00, "MF")?;
        let original = ctx.read_binary(0x2F05, "EF.PL")?;
        let mut changed = original.clone();
        changed[..2].copy_from_slice(if original.starts_with(b"en") { b"de" } else { b"en" });
        ctx.expect(
            "UPDATE BINARY EF.PL before VERIFY",
            &apdu(0x00, 0xD6, 0x00, 0x00, &changed, None),
            0x6982,
        )?;
        ctx.verify_pin()?;
        ctx.select(0x2F05, "EF.PL")?;
        ctx.expect("UPDATE BINARY EF.PL", &apdu(0x00, 0xD6, 0x00, 0x00, &changed, None), 0x9000)?;
        let back = ctx
            .expect(
                "READ BINARY EF.PL",
                &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(original.len() as u8)),
                0x9000,
            )?
            .data;
        let restored = ctx.expect(
            "UPDATE BINARY EF.PL (restore)",
            &apdu(0x00, 0xD6, 0x00, 0x00, &original, None),
            0x9000,
        );
        if back != changed {
            return mismatch("EF.PL reads back what was written", hx(&changed), hx(&back));
        }
        restored?;
        let again = ctx
            .expect(
                "READ BINARY EF.PL",
                &apdu(0x00, 0xB0, 0x00, 0x00, &[], Some(original.len() as u8)),
                0x9000,
            )?
            .data;
        if again != original {
            return mismatch("EF.PL restored", hx(&original), hx(&again));
        }
        Ok(())
    }

    pub(super) fn update_adm(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        let imsi = ctx.read_binary(usim::IMSI, "EF.IMSI")?;
        ctx.expect(
            "UPDATE BINARY EF.IMSI under PIN1 only",
            &apdu(0x00, 0xD6, 0x00, 0x00, &imsi, None),
            0x6982,
        )?;
        ctx.select(0x3F00, "MF")?;
        let dir = ctx.read_records(FID_DIR, "EF.DIR")?;
        let first = dir.first().cloned().unwrap_or_default();
        ctx.expect(
            "UPDATE RECORD EF.DIR under PIN1 only",
            &apdu(0x00, 0xDC, 0x01, 0x04, &first, None),
            0x6982,
        )?;
        let Some(adm) = ctx.adm else { return Ok(()) };
        let state = ctx.send(&apdu(0x00, 0x20, 0x00, 0x0A, &[], None))?;
        match tries(state.sw()) {
            Some(n) if n >= 2 => {}
            _ if state.sw() == 0x9000 => {}
            _ => {
                return Err(Stop::Skipped(format!(
                    "ADM1 state {:04X}: fewer than two tries left, --adm not presented",
                    state.sw()
                )));
            }
        }
        ctx.expect("VERIFY ADM1 (--adm)", &apdu(0x00, 0x20, 0x00, 0x0A, &adm, None), 0x9000)?;
        ctx.expect(
            "UPDATE RECORD EF.DIR under ADM1 (same content)",
            &apdu(0x00, 0xDC, 0x01, 0x04, &first, None),
            0x9000,
        )?;
        ctx.select_app(App::Usim)?;
        ctx.select(usim::IMSI, "EF.IMSI")?;
        ctx.expect(
            "UPDATE BINARY EF.IMSI under ADM1 (same content)",
            &apdu(0x00, 0xD6, 0x00, 0x00, &imsi, None),
            0x9000,
        )?;
        Ok(())
    }

    pub(super) fn verify_counter(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        let before = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?.sw();
        let Some(n) = tries(before).filter(|&n| n >= 2) else {
            return Err(Stop::Skipped(format!(
                "PIN1 state {before:04X}: fewer than two tries left, no wrong PIN presented"
            )));
        };
        let wrong = pin_field(&wrong_pin(ctx.profile.pin1()));
        let expected = 0x63C0 | u16::from(n - 1);
        ctx.expect("VERIFY a wrong PIN1", &apdu(0x00, 0x20, 0x00, 0x01, &wrong, None), expected)?;
        ctx.expect("VERIFY without data: tries left", &apdu(0x00, 0x20, 0x00, 0x01, &[], None), expected)?;
        ctx.verify_pin()?;
        ctx.expect(
            "VERIFY without data after the right PIN1",
            &apdu(0x00, 0x20, 0x00, 0x01, &[], None),
            0x9000,
        )?;
        ctx.session_reset()?;
        let after = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?.sw();
        match tries(after) {
            Some(m) if m >= n => Ok(()),
            _ => mismatch(
                "after a reset, the right PIN1 has restored the counter",
                format!("SW 63C{n:X} or more"),
                format!("SW {after:04X}"),
            ),
        }
    }

    pub(super) fn verify_length(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        let before = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?.sw();
        if tries(before).is_none() && before != 0x9000 {
            return Err(Stop::Skipped(format!("PIN1 state {before:04X}")));
        }
        ctx.expect(
            "VERIFY with a 4-byte PIN field",
            &apdu(0x00, 0x20, 0x00, 0x01, &[0x31, 0x32, 0x33, 0x34], None),
            0x6700,
        )?;
        ctx.expect("VERIFY without data: no try spent", &apdu(0x00, 0x20, 0x00, 0x01, &[], None), before)?;
        Ok(())
    }

    pub(super) fn unblock_status(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        let sw = ctx.send(&apdu(0x00, 0x2C, 0x00, 0x01, &[], None))?.sw();
        match tries(sw) {
            Some(n) if n >= 1 => Ok(()),
            _ => mismatch(
                "UNBLOCK PIN without data reports PUK1 tries",
                "SW 63Cx, x ≥ 1",
                format!("SW {sw:04X}"),
            ),
        }
    }

    pub(super) fn unblock_pin(ctx: &mut Ctx) -> Step {
        let Some(puk) = ctx.profile.puk1().map(str::to_owned) else {
            return Err(Stop::Skipped("the profile has no puk1".into()));
        };
        ctx.select_app(App::Usim)?;
        let puk_state = ctx.send(&apdu(0x00, 0x2C, 0x00, 0x01, &[], None))?.sw();
        let Some(m) = tries(puk_state).filter(|&m| m >= 3) else {
            return Err(Stop::Skipped(format!("PUK1 state {puk_state:04X}: fewer than three tries left")));
        };
        let wrong = pin_field(&wrong_pin(ctx.profile.pin1()));
        for _ in 0..16 {
            let sw = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &wrong, None))?.sw();
            if sw == 0x63C0 || sw == 0x6983 {
                break;
            }
            ensure(tries(sw).is_some(), || format!("VERIFY a wrong PIN1: SW {sw:04X}, expected 63Cx"))?;
        }
        let pin = pin_field(ctx.profile.pin1());
        ctx.expect("VERIFY the right PIN1 once blocked", &apdu(0x00, 0x20, 0x00, 0x01, &pin, None), 0x6983)?;
        let mut data = pin_field(&wrong_pin(&puk)).to_vec();
        data.extend_from_slice(&pin);
        ctx.expect(
            "UNBLOCK PIN with a wrong PUK1",
            &apdu(0x00, 0x2C, 0x00, 0x01, &data, None),
            0x63C0 | u16::from(m - 1),
        )?;
        let mut data = pin_field(&puk).to_vec();
        data.extend_from_slice(&pin);
        ctx.expect(
            "UNBLOCK PIN with PUK1 and the profile's PIN1",
            &apdu(0x00, 0x2C, 0x00, 0x01, &data, None),
            0x9000,
        )?;
        ctx.expect("VERIFY without data: verified", &apdu(0x00, 0x20, 0x00, 0x01, &[], None), 0x9000)?;
        ctx.session_reset()?;
        let sw = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?.sw();
        ensure(tries(sw).is_some_and(|n| n >= 3), || {
            format!("PIN1 tries after UNBLOCK: SW {sw:04X}, expected 63C3 or more")
        })?;
        ctx.expect(
            "UNBLOCK PIN without data: PUK1 tries restored",
            &apdu(0x00, 0x2C, 0x00, 0x01, &[], None),
            0x63C0 | u16::from(m),
        )?;
        Ok(())
    }

    pub(super) fn manage_channel(ctx: &mut Ctx) -> Step {
        let other = if ctx.facts.aid(&ISIM_AID_PREFIX).is_some() { ISIM_AID_PREFIX } else { USIM_AID_PREFIX };
        let other_aid = ctx.facts.aid(&other).map(<[u8]>::to_vec).unwrap_or_default();
        let usim_aid = ctx.facts.aid(&USIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        let ex = ctx.expect("MANAGE CHANNEL open", &apdu(0x00, 0x70, 0x00, 0x00, &[], Some(1)), 0x9000)?;
        let n = match ex.data.as_slice() {
            [n @ 1..=19] => *n,
            d => return mismatch("MANAGE CHANNEL open returns the channel number", "01..13", hx(d)),
        };
        let cla = channel_cla(n);
        let result = (|| {
            ctx.expect(
                "SELECT an application on the new channel",
                &apdu(cla, 0xA4, 0x04, 0x0C, &other_aid, None),
                0x9000,
            )?;
            ctx.select_app(App::Usim)?;
            let on_n = ctx
                .expect(
                    "STATUS on the new channel",
                    &apdu(0x80 | cla, 0xF2, 0x00, 0x01, &[], Some(0)),
                    0x9000,
                )?
                .data;
            let on_0 = ctx
                .expect("STATUS on the basic channel", &apdu(0x80, 0xF2, 0x00, 0x01, &[], Some(0)), 0x9000)?
                .data;
            if on_n.get(2..) != Some(other_aid.as_slice()) || on_0.get(2..) != Some(usim_aid.as_slice()) {
                return mismatch(
                    "each channel keeps its own current application",
                    format!("channel {n}: {}, channel 0: {}", hx(&other_aid), hx(&usim_aid)),
                    format!("channel {n}: {}, channel 0: {}", hx(&on_n), hx(&on_0)),
                );
            }
            Ok(())
        })();
        ctx.expect("MANAGE CHANNEL close", &apdu(0x00, 0x70, 0x80, n, &[], None), 0x9000)?;
        result?;
        ctx.expect("STATUS on the closed channel", &apdu(0x80 | cla, 0xF2, 0x00, 0x0C, &[], None), 0x6881)?;
        Ok(())
    }

    pub(super) fn status(ctx: &mut Ctx) -> Step {
        let aid = ctx.facts.aid(&USIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        ctx.select_app(App::Usim)?;
        let fcp = ctx.expect("STATUS (FCP)", &apdu(0x80, 0xF2, 0x00, 0x00, &[], Some(0)), 0x9000)?.data;
        if fcp_tag(&fcp, 0x84).as_deref() != Some(aid.as_slice()) {
            return mismatch("STATUS FCP of the current ADF names its AID (84)", hx(&aid), hx(&fcp));
        }
        let ex = ctx.expect("STATUS (no data)", &apdu(0x80, 0xF2, 0x00, 0x0C, &[], None), 0x9000)?;
        ensure(ex.data.is_empty(), || format!("STATUS P2=0C returned data {}", hx(&ex.data)))
    }

    pub(super) fn t0_get_response(ctx: &mut Ctx) -> Step {
        if ctx.protocol() != sim_reader::Protocol::T0 {
            return Err(Stop::NotApplicable("the card runs T=1".into()));
        }
        let r = ctx.raw(&[0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00])?;
        let [0x61, xx] = r[..] else { return mismatch("case-4 SELECT under T=0", "61 xx", hx(&r)) };
        let r = ctx.raw(&[0x00, 0xC0, 0x00, 0x00, xx])?;
        let len = if xx == 0 { 256 } else { usize::from(xx) };
        if r.len() != len + 2 || sw_of(&r) != 0x9000 || r[0] != 0x62 {
            return mismatch(
                format!("GET RESPONSE {xx:02X}"),
                format!("{len} bytes of FCP (62 ...) and 9000"),
                hx(&r),
            );
        }
        Ok(())
    }

    pub(super) fn t0_wrong_le(ctx: &mut Ctx) -> Step {
        if ctx.protocol() != sim_reader::Protocol::T0 {
            return Err(Stop::NotApplicable("the card runs T=1".into()));
        }
        ctx.select(FID_ICCID, "EF.ICCID")?;
        let r = ctx.raw(&[0x00, 0xB0, 0x00, 0x00, 0x20])?;
        if r != [0x6C, 0x0A] {
            return mismatch("READ BINARY EF.ICCID with Le 20 under T=0", "6C 0A", hx(&r));
        }
        let r = ctx.raw(&[0x00, 0xB0, 0x00, 0x00, 0x0A])?;
        let expected = iccid_bytes(ctx.profile.iccid());
        if r.len() != 12 || r[..10] != expected[..] || sw_of(&r) != 0x9000 {
            return mismatch("READ BINARY with Le 0A", format!("{} 9000", hx(&expected)), hx(&r));
        }
        Ok(())
    }

    pub(super) fn get_response_none(ctx: &mut Ctx) -> Step {
        ctx.select(0x3F00, "MF")?;
        let r = ctx.raw(&[0x00, 0xC0, 0x00, 0x00, 0x10])?;
        let sw = sw_of(&r);
        // TS 102 221 §12.1.1.1: "technical problem, no precise diagnosis".
        ensure(r.len() == 2 && sw == 0x6F00, || {
            format!("GET RESPONSE with nothing pending: {}, expected 6F00", hx(&r))
        })
    }

    pub(super) fn wrong_length(ctx: &mut Ctx) -> Step {
        ctx.expect(
            "SELECT by FID with 3 data bytes",
            &apdu(0x00, 0xA4, 0x00, 0x0C, &[0x3F, 0x00, 0x00], None),
            0x6700,
        )?;
        ctx.select_app(App::Usim)?;
        ctx.expect(
            "VERIFY with a 9-byte PIN field",
            &apdu(0x00, 0x20, 0x00, 0x01, &[0x31; 9], None),
            0x6700,
        )?;
        Ok(())
    }

    pub(super) fn unknown_ins(ctx: &mut Ctx) -> Step {
        let r = ctx.raw(&[0x00, 0x99, 0x00, 0x00, 0x00])?;
        ensure(r == [0x6D, 0x00], || format!("INS 99: {}, expected 6D00", hx(&r)))?;
        let r = ctx.raw(&[0xA0, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00])?;
        ensure(r == [0x6E, 0x00], || format!("CLA A0: {}, expected 6E00", hx(&r)))
    }
}

mod aka {
    use super::*;

    pub(super) fn resync(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        let av = ctx.vector(0);
        let ex = ctx.expect(
            "AUTHENTICATE 3G with SQN 0",
            &Ctx::aka_apdu(0x00, &av.rand, &av.autn.to_bytes(), false),
            0x9000,
        )?;
        ctx.resync(&av.rand, &ex.data)?;
        // The network resumes above SQN_MS: the next challenge is accepted.
        ctx.aka(0x00, false)?;
        Ok(())
    }

    pub(super) fn usim(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        let (av, answer) = ctx.aka(0x00, false)?;
        let (ck, ik) = (*av.ck.expose(), *av.ik.expose());
        let mut expected = vec![0xDB, 0x08];
        expected.extend_from_slice(&av.xres);
        expected.push(0x10);
        expected.extend_from_slice(&ck);
        expected.push(0x10);
        expected.extend_from_slice(&ik);
        if Facts::service(&ctx.facts.ust, 27) {
            expected.push(0x08);
            expected.extend_from_slice(&super::super::net::c3(&ck, &ik));
        }
        if answer != expected {
            return mismatch("3G context answer (Kc when EF.UST n°27)", hx(&expected), hx(&answer));
        }
        Ok(())
    }

    pub(super) fn replay(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        let (av, _) = ctx.aka(0x00, false)?;
        let again = ctx.expect(
            "the same challenge again",
            &Ctx::aka_apdu(0x00, &av.rand, &av.autn.to_bytes(), false),
            0x9000,
        )?;
        ensure(again.data.first() == Some(&0xDC), || {
            format!("a replayed challenge was answered {}", hx(&again.data))
        })?;
        ctx.resync(&av.rand, &again.data)?;
        Ok(())
    }

    pub(super) fn mac_failure(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        ctx.aka(0x00, false)?;
        let sqn = ctx.next_sqn();
        let av = ctx.vector(sqn);
        let mut autn = av.autn.to_bytes();
        autn[15] ^= 0x01;
        ctx.expect("AUTHENTICATE 3G with a wrong MAC", &Ctx::aka_apdu(0x00, &av.rand, &autn, false), 0x9862)?;
        let av = ctx.vector(sqn);
        let ex = ctx.expect(
            "the same SQN with a right MAC",
            &Ctx::aka_apdu(0x00, &av.rand, &av.autn.to_bytes(), false),
            0x9000,
        )?;
        ensure(ex.data.first() == Some(&0xDB), || {
            format!("the refused challenge consumed its SQN: {}", hx(&ex.data))
        })?;
        Ok(())
    }

    pub(super) fn gba_u_in_3g(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        ctx.aka(0x00, false)?;
        let av = ctx.vector(ctx.next_sqn());
        let ex = ctx.send(&Ctx::aka_apdu(0x00, &av.rand, &av.gba_u_autn().to_bytes(), false))?;
        if ex.sw() != 0x9862 {
            return mismatch(
                "AUTN* (MAC*) in the 3G context",
                "SW 9862",
                format!("SW {:04X} {}", ex.sw(), hx(&ex.data)),
            );
        }
        Ok(())
    }

    pub(super) fn isim(ctx: &mut Ctx) -> Step {
        ctx.require_isim()?;
        ctx.open(App::Isim)?;
        let (av, answer) = ctx.aka(0x00, false)?;
        let mut expected = vec![0xDB, 0x08];
        expected.extend_from_slice(&av.xres);
        expected.push(0x10);
        expected.extend_from_slice(av.ck.expose());
        expected.push(0x10);
        expected.extend_from_slice(av.ik.expose());
        if answer != expected {
            return mismatch("ISIM 3G context answer", hx(&expected), hx(&answer));
        }
        Ok(())
    }

    pub(super) fn isim_channel(ctx: &mut Ctx) -> Step {
        ctx.require_isim()?;
        let isim = ctx.facts.aid(&ISIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        let usim = ctx.facts.aid(&USIM_AID_PREFIX).map(<[u8]>::to_vec).unwrap_or_default();
        ctx.open(App::Usim)?;
        let ex = ctx.expect("MANAGE CHANNEL open", &apdu(0x00, 0x70, 0x00, 0x00, &[], Some(1)), 0x9000)?;
        let Some(&n) = ex.data.first() else { return fail("MANAGE CHANNEL open returned no channel number") };
        let cla = channel_cla(n);
        let result = (|| {
            ctx.expect(
                "SELECT ADF.ISIM on the new channel",
                &apdu(cla, 0xA4, 0x04, 0x0C, &isim, None),
                0x9000,
            )?;
            let (av, answer) = ctx.aka(cla, false)?;
            ensure(answer.get(2..10) == Some(&av.xres[..]), || {
                format!("ISIM AKA on channel {n}: RES {} is not XRES", hx(&answer))
            })?;
            let on_0 = ctx
                .expect("STATUS on the basic channel", &apdu(0x80, 0xF2, 0x00, 0x01, &[], Some(0)), 0x9000)?
                .data;
            if on_0.get(2..) != Some(usim.as_slice()) {
                return mismatch("the basic channel keeps the USIM", hx(&usim), hx(&on_0));
            }
            Ok(())
        })();
        ctx.expect("MANAGE CHANNEL close", &apdu(0x00, 0x70, 0x80, n, &[], None), 0x9000)?;
        result
    }

    pub(super) fn no_pin(ctx: &mut Ctx) -> Step {
        ctx.select_app(App::Usim)?;
        let state = ctx.send(&apdu(0x00, 0x20, 0x00, 0x01, &[], None))?.sw();
        if state == 0x9000 {
            return Err(Stop::NotApplicable("PIN1 is disabled or already verified".into()));
        }
        let av = ctx.vector(ctx.next_sqn());
        ctx.expect(
            "AUTHENTICATE before VERIFY PIN1",
            &Ctx::aka_apdu(0x00, &av.rand, &av.autn.to_bytes(), false),
            0x6982,
        )?;
        Ok(())
    }

    pub(super) fn bad_p2(ctx: &mut Ctx) -> Step {
        ctx.open(App::Usim)?;
        let av = ctx.vector(ctx.next_sqn());
        let mut c = Ctx::aka_apdu(0x00, &av.rand, &av.autn.to_bytes(), false);
        c[3] = 0x01;
        ctx.expect_any("AUTHENTICATE with P2 01", &c, &[0x6A86, 0x6B00])?;
        Ok(())
    }
}

mod gba {
    use super::*;
    use crate::cmd::card_test::net::BSF_DOMAIN;

    fn other_naf_id() -> Vec<u8> {
        ::gba::NafId::new(OTHER_NAF_FQDN, ::gba::UaSecurityProtocolId([0x01, 0x00, 0x00, 0x00, 0x02]))
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Applicable while an application's EF.GBABP holds no RAND (never bootstrapped).
    pub(super) fn refuse_no_bootstrap(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        let mut tested = Vec::new();
        for app in [App::Usim, App::Isim] {
            if ctx.require_gba(app).is_err() {
                continue;
            }
            ctx.open(app)?;
            let fields = decode_gbabp(&ctx.read_binary(app.gbabp(), "EF.GBABP")?)?;
            if !fields[0].is_empty() {
                continue;
            }
            let c = naf_apdu(ctx, app, &other_naf_id());
            ctx.expect(&format!("NAF derivation on the {} before any bootstrap", app.name()), &c, 0x6985)?;
            tested.push(app.name());
        }
        if tested.is_empty() {
            return Err(Stop::NotApplicable(
                "every application has been bootstrapped before (EF.GBABP holds a RAND)".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn bootstrap(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        ctx.bootstrap()?;
        Ok(())
    }

    pub(super) fn gbabp(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        let boot = ctx.bootstrap()?;
        let fields = decode_gbabp(&ctx.read_binary(App::Usim.gbabp(), "EF.GBABP")?)?;
        if fields[0] != boot.rand || !fields[1].is_empty() || !fields[2].is_empty() {
            return mismatch(
                "EF.GBABP after bootstrap: the card's RAND, empty B-TID and lifetime",
                format!("10 {} 00 00", hx(&boot.rand)),
                format!("{:02X?}", fields),
            );
        }
        ctx.write_btid(App::Usim, &boot.btid, LIFETIME)?;
        let fields = decode_gbabp(&ctx.read_binary(App::Usim.gbabp(), "EF.GBABP")?)?;
        if fields[0] != boot.rand || fields[1] != boot.btid.as_bytes() || fields[2] != LIFETIME.as_bytes() {
            return mismatch(
                "EF.GBABP after the ME wrote B-TID and lifetime",
                format!("RAND {}, B-TID {}, lifetime {LIFETIME}", hx(&boot.rand), boot.btid),
                format!("{:02X?}", fields),
            );
        }
        Ok(())
    }

    pub(super) fn naf_derivation(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        let boot = ctx.bootstrap()?;
        ctx.write_btid(App::Usim, &boot.btid, LIFETIME)?;
        let naf_id = other_naf_id();
        ctx.derive(App::Usim, &boot, &naf_id)?;
        let mut listed = false;
        for r in ctx.read_records(App::Usim.gbanl(), "EF.GBANL")? {
            if let Some((naf, btid)) = decode_gbanl_record(&r)? {
                listed |= naf == naf_id && btid == boot.btid.as_bytes();
            }
        }
        ensure(listed, || format!("EF.GBANL lists no record 80 {} 81 {}", hx(&naf_id), boot.btid))
    }

    pub(super) fn lifetime(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        let boot = ctx.bootstrap()?;
        for lifetime in ["2031-06-30T12:00:00Z", LIFETIME] {
            ctx.write_btid(App::Usim, &boot.btid, lifetime)?;
            let fields = decode_gbabp(&ctx.read_binary(App::Usim.gbabp(), "EF.GBABP")?)?;
            if fields[2] != lifetime.as_bytes() {
                return mismatch(
                    "EF.GBABP key lifetime",
                    lifetime,
                    String::from_utf8_lossy(&fields[2]).into_owned(),
                );
            }
            ctx.derive(App::Usim, &boot, &other_naf_id())?;
        }
        Ok(())
    }

    fn naf_apdu(ctx: &Ctx, app: App, naf_id: &[u8]) -> Vec<u8> {
        let impi = ctx.impi(app);
        let data = naf_derivation_data(naf_id, impi.as_bytes());
        apdu(0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT, &data, Some(0))
    }

    pub(super) fn refuse_no_btid(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        ctx.bootstrap()?;
        let c = naf_apdu(ctx, App::Usim, &other_naf_id());
        ctx.expect("NAF derivation before B-TID and lifetime are written", &c, 0x6985)?;
        Ok(())
    }

    pub(super) fn refuse_new_bootstrap(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        let boot = ctx.bootstrap()?;
        ctx.write_btid(App::Usim, &boot.btid, LIFETIME)?;
        ctx.derive(App::Usim, &boot, &other_naf_id())?;
        let second = ctx.bootstrap()?;
        let fields = decode_gbabp(&ctx.read_binary(App::Usim.gbabp(), "EF.GBABP")?)?;
        if fields[0] != second.rand || !fields[1].is_empty() {
            return mismatch(
                "EF.GBABP after a second bootstrap",
                format!("10 {} 00 00", hx(&second.rand)),
                format!("{:02X?}", fields),
            );
        }
        let c = naf_apdu(ctx, App::Usim, &other_naf_id());
        ctx.expect("NAF derivation after a new bootstrap, before its B-TID", &c, 0x6985)?;
        ctx.write_btid(App::Usim, &second.btid, LIFETIME)?;
        ctx.derive(App::Usim, &second, &other_naf_id())?;
        Ok(())
    }

    pub(super) fn isim(ctx: &mut Ctx) -> Step {
        ctx.require_isim()?;
        ctx.require_gba(App::Isim)?;
        ctx.open(App::Isim)?;
        let boot = ctx.bootstrap()?;
        ctx.write_btid(App::Isim, &boot.btid, LIFETIME)?;
        let fields = decode_gbabp(&ctx.read_binary(App::Isim.gbabp(), "ISIM EF.GBABP")?)?;
        ensure(fields[0] == boot.rand && fields[1] == boot.btid.as_bytes(), || {
            format!("ISIM EF.GBABP: {:02X?}", fields)
        })?;
        let naf_id = other_naf_id();
        ctx.derive(App::Isim, &boot, &naf_id)?;
        let mut listed = false;
        for r in ctx.read_records(App::Isim.gbanl(), "ISIM EF.GBANL")? {
            if let Some((naf, btid)) = decode_gbanl_record(&r)? {
                listed |= naf == naf_id && btid == boot.btid.as_bytes();
            }
        }
        ensure(listed, || "ISIM EF.GBANL does not list the NAF_Id and B-TID".into())
    }

    pub(super) fn malformed(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        ctx.open(App::Usim)?;
        let naf_id = other_naf_id();
        let data = naf_derivation_data(&naf_id, b"");
        ctx.expect_any(
            "NAF derivation with an empty IMPI",
            &apdu(0x00, INS_AUTHENTICATE_EVEN, P1_EVEN, P2_GBA_CONTEXT, &data, Some(0)),
            &[0x6A80, 0x6985],
        )?;
        let c = naf_apdu(ctx, App::Usim, &naf_id);
        let mut p1 = c.clone();
        p1[2] = 0x01;
        ctx.expect_any("GBA context with P1 01", &p1, &[0x6A86, 0x6B00])?;
        let av = ctx.vector(ctx.next_sqn());
        let mut bad = Ctx::aka_apdu(0x00, &av.rand, &av.gba_u_autn().to_bytes(), true);
        bad.remove(bad.len() - 2);
        bad[4] -= 1;
        ctx.expect_any("GBA bootstrap one byte short", &bad, &[0x6700, 0x6A80])?;
        let _ = BSF_DOMAIN;
        Ok(())
    }
}

mod mbms {
    use super::*;
    use crate::cmd::card_test::net::{MskRecord, MukRecord, ntp_utc as ntp};

    /// 2026-01-01T00:00:00Z (Unix seconds): the MSK messages' NTP-UTC timestamps start here.
    const UNIX_2026: u64 = 1_767_225_600;
    /// One year.
    const YEAR: u64 = 31_536_000;

    /// Run `body` with a BM-SC whose MUK was just derived, with Key Group `kg` emptied before
    /// and after, and the MUK deleted after.
    fn with_bmsc(ctx: &mut Ctx, kg: u16, lifetime: &str, body: impl FnOnce(&mut Ctx, &Bmsc) -> Step) -> Step {
        let (_, bmsc) = ctx.mbms_setup(lifetime)?;
        ctx.delete_msks(kg, false)?;
        let result = body(ctx, &bmsc);
        let clean = ctx.delete_msks(kg, false).and_then(|()| ctx.delete_muk(&bmsc, false));
        result.and(clean)
    }

    fn msk_id(kg: u16, n: u16) -> u32 {
        (u32::from(kg) << 16) | u32::from(n)
    }

    fn record_of(files: &[MskRecord], kdi: [u8; 3], kg: u16) -> Option<MskRecord> {
        files
            .iter()
            .find(|r| r.key_domain_id == kdi && r.pairs.iter().any(|p| (p.0 >> 16) as u16 == kg))
            .cloned()
    }

    fn muk_of<'a>(files: &'a [MukRecord], bmsc: &Bmsc) -> Option<&'a MukRecord> {
        files.iter().find(|r| r.idr == bmsc.idr && r.idi == bmsc.idi)
    }

    fn ts_value(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
    }

    /// The FCP file descriptor of `fid` under the USIM: (structure bits, record length, records).
    fn shape(ctx: &mut Ctx, fid: u16, what: &str) -> Step<(u8, u8, u8)> {
        let fcp = ctx.select_fcp(fid, what)?;
        match fcp_tag(&fcp, 0x82).as_deref() {
            Some([fdb, _, _, len, n]) => Ok((fdb & 0x07, *len, *n)),
            Some([fdb, _]) => Ok((fdb & 0x07, 0, 0)),
            _ => mismatch(format!("{what}: file descriptor (82)"), "82 02 .. or 82 05 ..", hx(&fcp)),
        }
    }

    pub(super) fn ef_shapes(ctx: &mut Ctx) -> Step {
        ctx.require_mbms()?;
        ctx.open(App::Usim)?;
        let (structure, len, n) = shape(ctx, EF_MSK, "EF.MSK")?;
        ensure(structure == 2 && len >= 20 && (len - 4) % 8 == 0 && n >= 1, || {
            format!(
                "EF.MSK: structure {structure}, records {n} of {len} bytes; TS 31.102 §4.2.80 wants linear fixed, 8n+4 with n ≥ 2"
            )
        })?;
        let (structure, _, n) = shape(ctx, EF_MUK, "EF.MUK")?;
        ensure(structure == 2 && n >= 1, || {
            format!("EF.MUK: structure {structure}, {n} records; linear fixed expected")
        })?;
        let (structure, _, n) = shape(ctx, App::Usim.gbanl(), "EF.GBANL")?;
        ensure(structure == 2 && n >= 1, || {
            format!("EF.GBANL: structure {structure}, {n} records; linear fixed expected")
        })?;
        let (structure, _, _) = shape(ctx, App::Usim.gbabp(), "EF.GBABP")?;
        ensure(structure == 1, || format!("EF.GBABP: structure {structure}; transparent expected"))
    }

    pub(super) fn ef_access(ctx: &mut Ctx) -> Step {
        ctx.require_mbms()?;
        ctx.open(App::Usim)?;
        for (fid, what) in [(EF_MSK, "EF.MSK"), (EF_MUK, "EF.MUK"), (App::Usim.gbanl(), "EF.GBANL")] {
            let records = ctx.read_records(fid, what)?;
            let first = records.first().cloned().unwrap_or_default();
            ctx.expect(
                &format!("UPDATE RECORD {what} 1 under PIN1 (same content)"),
                &apdu(0x00, 0xDC, 0x01, 0x04, &first, None),
                0x6982,
            )?;
        }
        Ok(())
    }

    pub(super) fn msk_update(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A01, LIFETIME, |ctx, bmsc| {
            let ts = ntp(UNIX_2026);
            ctx.deliver_msk(bmsc, msk_id(0x7A01, 1), ts, true)?;
            ctx.open(App::Usim)?;
            let (msk, muk) = ctx.mbms_files()?;
            let kdi = bmsc.key_domain_id.0;
            let want = MskRecord { key_domain_id: kdi, pairs: vec![(msk_id(0x7A01, 1), 0)] };
            if record_of(&msk, kdi, 0x7A01).as_ref() != Some(&want) {
                return mismatch(
                    "EF.MSK record of the Key Group",
                    format!("{want:02X?}"),
                    format!("{msk:02X?}"),
                );
            }
            let Some(m) = muk_of(&muk, bmsc) else {
                return mismatch(
                    "EF.MUK record of the MUK",
                    format!(
                        "IDr {} IDi {}",
                        String::from_utf8_lossy(&bmsc.idr),
                        String::from_utf8_lossy(&bmsc.idi)
                    ),
                    format!("{muk:02X?}"),
                );
            };
            if ts_value(&m.ts) != ts.as_u64() {
                return mismatch("EF.MUK Time Stamp Counter", format!("{:016X}", ts.as_u64()), hx(&m.ts));
            }
            Ok(())
        })
    }

    pub(super) fn msk_replay(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A02, LIFETIME, |ctx, bmsc| {
            let msk: [u8; 16] = ctx.material();
            let rand: [u8; 16] = ctx.material();
            let message = bmsc
                .msk_message(&rand, msk_id(0x7A02, 1), &msk, ntp(UNIX_2026 + 100), false)
                .unwrap_or_default();
            ctx.expect("MSK Update", &mbms_apdu(0x01, &message), 0x9000)?;
            let before = ctx.mbms_files()?;
            ctx.select_app(App::Usim)?;
            ctx.expect("the same MSK message again", &mbms_apdu(0x01, &message), 0x9865)?;
            let older = bmsc
                .msk_message(&rand, msk_id(0x7A02, 2), &msk, ntp(UNIX_2026 + 50), false)
                .unwrap_or_default();
            ctx.expect("an MSK message with an older timestamp", &mbms_apdu(0x01, &older), 0x9865)?;
            let after = ctx.mbms_files()?;
            if after != before {
                return mismatch(
                    "EF.MSK and EF.MUK after the refusals",
                    format!("{before:02X?}"),
                    format!("{after:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            Ok(())
        })
    }

    pub(super) fn msk_mac(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A03, LIFETIME, |ctx, bmsc| {
            ctx.deliver_msk(bmsc, msk_id(0x7A03, 1), ntp(UNIX_2026), false)?;
            let before = ctx.mbms_files()?;
            ctx.select_app(App::Usim)?;
            let msk: [u8; 16] = ctx.material();
            let rand: [u8; 16] = ctx.material();
            let mut message = bmsc
                .msk_message(&rand, msk_id(0x7A03, 2), &msk, ntp(UNIX_2026 + 10), false)
                .unwrap_or_default();
            if let Some(last) = message.last_mut() {
                *last ^= 0x01;
            }
            ctx.expect("an MSK message with a wrong MAC", &mbms_apdu(0x01, &message), 0x9862)?;
            let after = ctx.mbms_files()?;
            if after != before {
                return mismatch(
                    "EF.MSK and EF.MUK after the refusal",
                    format!("{before:02X?}"),
                    format!("{after:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            Ok(())
        })
    }

    pub(super) fn mtk_generation(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A04, LIFETIME, |ctx, bmsc| {
            let id = msk_id(0x7A04, 1);
            let msk = ctx.deliver_msk(bmsc, id, ntp(UNIX_2026), false)?;
            ctx.generate_mtk(bmsc, id, &msk, 5, 1)?;
            let (files, _) = ctx.mbms_files()?;
            let rec = record_of(&files, bmsc.key_domain_id.0, 0x7A04);
            if rec.as_ref().map(|r| r.pairs.clone()) != Some(vec![(id, 5)]) {
                return mismatch(
                    "EF.MSK keeps the MTK ID of the last MTK",
                    format!("[({id:08X}, 5)]"),
                    format!("{rec:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            Ok(())
        })
    }

    pub(super) fn mtk_id_rule(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A05, LIFETIME, |ctx, bmsc| {
            let id = msk_id(0x7A05, 1);
            let msk = ctx.deliver_msk(bmsc, id, ntp(UNIX_2026), false)?;
            ctx.generate_mtk(bmsc, id, &msk, 5, 1)?;
            let before = ctx.mbms_files()?;
            ctx.select_app(App::Usim)?;
            ctx.mtk_refused(bmsc, id, &msk, 5, 0x9865, "an MTK message with the same MTK ID")?;
            ctx.mtk_refused(bmsc, id, &msk, 4, 0x9865, "an MTK message with a lower MTK ID")?;
            let after = ctx.mbms_files()?;
            if after != before {
                return mismatch(
                    "EF.MSK and EF.MUK after the refused MTK messages",
                    format!("{before:02X?}"),
                    format!("{after:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            ctx.generate_mtk(bmsc, id, &msk, 6, 2)?;
            Ok(())
        })
    }

    pub(super) fn two_msks(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A06, LIFETIME, |ctx, bmsc| {
            let ids = [msk_id(0x7A06, 1), msk_id(0x7A06, 2), msk_id(0x7A06, 3)];
            let mut msks = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                msks.push(ctx.deliver_msk(bmsc, *id, ntp(UNIX_2026 + i as u64), false)?);
            }
            let (files, _) = ctx.mbms_files()?;
            let rec = record_of(&files, bmsc.key_domain_id.0, 0x7A06);
            let mut listed: Vec<u32> = rec.iter().flat_map(|r| r.pairs.iter().map(|p| p.0)).collect();
            listed.sort_unstable();
            if listed != ids[1..] {
                return mismatch(
                    "EF.MSK after a third MSK of the Key Group",
                    format!("{:08X?}", &ids[1..]),
                    format!("{rec:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            ctx.mtk_refused(
                bmsc,
                ids[0],
                &msks[0],
                1,
                0x6A88,
                "an MTK message under the deleted (oldest) MSK",
            )?;
            ctx.generate_mtk(bmsc, ids[2], &msks[2], 1, 1)?;
            ctx.generate_mtk(bmsc, ids[1], &msks[1], 1, 1)?;
            Ok(())
        })
    }

    pub(super) fn solicited_pull(ctx: &mut Ctx) -> Step {
        // The MUK's key lifetime ends 2027-01-01; the card learns the time from NTP-UTC timestamps.
        with_bmsc(ctx, 0x7A07, "2027-01-01T00:00:00Z", |ctx, bmsc| {
            ctx.deliver_msk(bmsc, msk_id(0x7A07, 1), ntp(UNIX_2026), false)?;
            let rand: [u8; 16] = ctx.material();
            let pull = bmsc.solicited_pull(&rand, 0x7A07, ntp(UNIX_2026 + 2 * YEAR)).unwrap_or_default();
            let ex = ctx.expect(
                "solicited pull with the expired, most recent MUK",
                &mbms_apdu(0x01, &pull),
                0x9000,
            )?;
            let answer = mbms_answer("solicited pull", &ex.data)?;
            if answer.first() == Some(&0x00) {
                let mut want = vec![0x00];
                want.extend_from_slice(&bmsc.key_domain_id.0);
                want.extend_from_slice(&0x7A07u16.to_be_bytes());
                ensure(answer == want, || {
                    format!("solicited pull answer {}, expected DB {}", hx(&answer), hx(&want))
                })?;
            }
            let msk: [u8; 16] = ctx.material();
            let late = bmsc
                .msk_message(&rand, msk_id(0x7A07, 2), &msk, ntp(UNIX_2026 + 2 * YEAR + 10), false)
                .unwrap_or_default();
            ctx.expect("an MSK message with the expired MUK", &mbms_apdu(0x01, &late), 0x9863)?;
            Ok(())
        })
    }

    pub(super) fn msk_deletion(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A08, LIFETIME, |ctx, bmsc| {
            let a = msk_id(0x7A08, 1);
            let msk = ctx.deliver_msk(bmsc, a, ntp(UNIX_2026), false)?;
            ctx.deliver_msk(bmsc, msk_id(0x7A08, 2), ntp(UNIX_2026 + 1), false)?;
            ctx.delete_msks(0x7A08, true)?;
            let (files, _) = ctx.mbms_files()?;
            if let Some(r) = record_of(&files, bmsc.key_domain_id.0, 0x7A08) {
                return mismatch(
                    "EF.MSK after MSK Deletion",
                    "no record of the Key Group",
                    format!("{r:02X?}"),
                );
            }
            ctx.select_app(App::Usim)?;
            ctx.mtk_refused(bmsc, a, &msk, 1, 0x6A88, "an MTK message under a deleted MSK")?;
            let mut data = bmsc.key_domain_id.0.to_vec();
            data.extend_from_slice(&0x7A08u16.to_be_bytes());
            ctx.expect("MSK Deletion of an empty Key Group", &mbms_apdu(0x03, &data), 0x6A88)?;
            Ok(())
        })
    }

    pub(super) fn muk_deletion(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A09, LIFETIME, |ctx, bmsc| {
            ctx.deliver_msk(bmsc, msk_id(0x7A09, 1), ntp(UNIX_2026), false)?;
            ctx.delete_muk(bmsc, true)?;
            let (_, muk) = ctx.mbms_files()?;
            if let Some(m) = muk_of(&muk, bmsc) {
                return mismatch("EF.MUK after MUK Deletion", "no record of the MUK", format!("{m:02X?}"));
            }
            ctx.select_app(App::Usim)?;
            let msk: [u8; 16] = ctx.material();
            let rand: [u8; 16] = ctx.material();
            let message = bmsc
                .msk_message(&rand, msk_id(0x7A09, 2), &msk, ntp(UNIX_2026 + 5), false)
                .unwrap_or_default();
            ctx.expect("an MSK message with the deleted MUK", &mbms_apdu(0x01, &message), 0x6985)?;
            ctx.expect(
                "MUK Deletion again",
                &mbms_apdu(0x04, &bmsc.muk_id_tlv().unwrap_or_default()),
                0x6A88,
            )?;
            Ok(())
        })
    }

    pub(super) fn no_muk(ctx: &mut Ctx) -> Step {
        with_bmsc(ctx, 0x7A0A, LIFETIME, |ctx, bmsc| {
            let stranger = Bmsc {
                muk: bmsc.muk,
                idi: bmsc.idi.clone(),
                idr: b"AAAAAAAAAAAAAAAAAAAAAA==@bsf.card-test.keysim.example".to_vec(),
                key_domain_id: bmsc.key_domain_id,
            };
            let msk: [u8; 16] = ctx.material();
            let rand: [u8; 16] = ctx.material();
            let message = stranger
                .msk_message(&rand, msk_id(0x7A0A, 1), &msk, ntp(UNIX_2026), false)
                .unwrap_or_default();
            ctx.expect(
                "an MSK message for a MUK ID the card has no key for",
                &mbms_apdu(0x01, &message),
                0x6985,
            )?;
            Ok(())
        })
    }

    pub(super) fn isim_refused(ctx: &mut Ctx) -> Step {
        ctx.require_isim()?;
        ctx.open(App::Isim)?;
        let mut data = ctx.key_domain_id().0.to_vec();
        data.extend_from_slice(&0x7A0Bu16.to_be_bytes());
        ctx.expect("MSK Deletion on the ISIM", &mbms_apdu(0x03, &data), 0x9864)?;
        Ok(())
    }

    pub(super) fn fill_ef_msk(ctx: &mut Ctx) -> Step {
        let (_, bmsc) = ctx.mbms_setup(LIFETIME)?;
        let mut groups = Vec::new();
        let mut result = Ok(());
        for i in 0..64u16 {
            let kg = 0x7F00 + i;
            let msk: [u8; 16] = ctx.material();
            let rand: [u8; 16] = ctx.material();
            let message = bmsc
                .msk_message(&rand, msk_id(kg, 1), &msk, ntp(UNIX_2026 + u64::from(i)), false)
                .unwrap_or_default();
            let ex = match ctx.send(&mbms_apdu(0x01, &message)) {
                Ok(ex) => ex,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match ex.sw() {
                0x9000 => groups.push(kg),
                0x9866 => {
                    let before = ctx.mbms_files();
                    ctx.select_app(App::Usim).ok();
                    let again = ctx.send(&mbms_apdu(0x01, &message)).map(|e| e.sw());
                    let after = ctx.mbms_files();
                    result = match (before, again, after) {
                        (Ok(b), Ok(0x9866), Ok(a)) if a == b => Ok(()),
                        (_, Ok(sw), _) if sw != 0x9866 => {
                            mismatch("a full EF.MSK, again", "SW 9866", format!("SW {sw:04X}"))
                        }
                        _ => fail("EF.MSK or EF.MUK changed by a refused MSK Update"),
                    };
                    break;
                }
                sw => {
                    result = mismatch(
                        format!("MSK Update of Key Group {kg:04X}"),
                        "SW 9000 or 9866",
                        format!("SW {sw:04X}"),
                    );
                    break;
                }
            }
        }
        if groups.len() == 64 {
            result = result.and(fail("64 Key Groups stored without 9866"));
        }
        ctx.select_app(App::Usim).ok();
        for kg in groups {
            let _ = ctx.delete_msks(kg, false);
        }
        let _ = ctx.delete_muk(&bmsc, false);
        result
    }
}

mod secrets {
    use super::*;

    pub(super) fn no_secrets(ctx: &mut Ctx) -> Step {
        ctx.require_gba(App::Usim)?;
        let start = ctx.responses().len();
        let mbms = ctx.require_mbms().is_ok();
        ctx.open(App::Usim)?;
        let boot = ctx.bootstrap()?;
        ctx.write_btid(App::Usim, &boot.btid, LIFETIME)?;
        let keys = ctx.derive(App::Usim, &boot, &Ctx::bmsc_naf_id());
        let mut secrets: Vec<(&str, Vec<u8>)> = vec![
            ("Ks", boot.ks.to_vec()),
            ("CK of GBA_U", boot.ck.to_vec()),
            ("IK of GBA_U", boot.ik.to_vec()),
        ];
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                // The derivation's own answer may carry the leak: check it before failing.
                let k = ctx.naf_keys(&boot, App::Usim, &Ctx::bmsc_naf_id())?;
                secrets.push(("Ks_int_NAF", k.int.to_vec()));
                check(ctx, start, &secrets)?;
                return Err(e);
            }
        };
        secrets.push(("Ks_int_NAF", keys.int.to_vec()));
        if mbms {
            let bmsc = Bmsc {
                muk: keys.int,
                idi: super::super::net::BMSC_FQDN.as_bytes().to_vec(),
                idr: boot.btid.as_bytes().to_vec(),
                key_domain_id: ctx.key_domain_id(),
            };
            ctx.delete_msks(0x7A0C, false)?;
            let id = (0x7A0Cu32 << 16) | 1;
            let msk = ctx.deliver_msk(&bmsc, id, ntp_utc(1_767_225_600), true)?;
            secrets.push(("MSK", msk.to_vec()));
            ctx.generate_mtk(&bmsc, id, &msk, 1, 1)?;
            ctx.mbms_files()?;
            ctx.select_app(App::Usim)?;
            ctx.delete_msks(0x7A0C, true)?;
            ctx.delete_muk(&bmsc, false)?;
        }
        ctx.read_binary(App::Usim.gbabp(), "EF.GBABP")?;
        ctx.read_records(App::Usim.gbanl(), "EF.GBANL")?;
        let _ = (EF_MSK, EF_MUK);
        check(ctx, start, &secrets)
    }

    /// No 8-byte window of a secret in any response since `start`.
    fn check(ctx: &Ctx, start: usize, secrets: &[(&str, Vec<u8>)]) -> Step {
        for response in &ctx.responses()[start..] {
            for (name, secret) in secrets {
                if secret.windows(8).any(|w| response.windows(8).any(|r| r == w)) {
                    return mismatch(
                        format!("{name} (or 8 bytes of it) left the card"),
                        "no secret in any response",
                        hx(response),
                    );
                }
            }
        }
        Ok(())
    }
}
