//! `keysim gba derive`: the GBA key derivations of TS 33.220 Annex B from CK, IK and RAND.

use std::process::ExitCode;

use anyhow::{Context, Result};
use gba::kdf::{derive_ks_ext_naf, derive_ks_int_naf, derive_ks_naf};
use gba::{BTid, Ck, Ik, Ks, NafId, UaSecurityProtocolId};
use serde::Serialize;

use super::hex_array;
use crate::cli::GbaDeriveArgs;

#[derive(Serialize)]
struct Derived {
    ks: String,
    ks_naf: String,
    ks_ext_naf: String,
    ks_int_naf: String,
    btid: String,
    naf_id: String,
}

pub fn derive(args: GbaDeriveArgs) -> Result<ExitCode> {
    let ck = Ck::new(hex_array::<16>("--ck", &args.ck)?);
    let ik = Ik::new(hex_array::<16>("--ik", &args.ik)?);
    let rand = hex_array::<16>("--rand", &args.rand)?;
    let ua = UaSecurityProtocolId(hex_array::<5>("--ua-protocol", &args.ua_protocol)?);
    let naf_id = NafId::new(&args.naf_fqdn, ua).map_err(|e| anyhow::anyhow!("--naf-fqdn: {e}"))?;
    let impi = args.impi.as_bytes();
    let ks = Ks::from_ck_ik(&ck, &ik);
    let btid = BTid::new(&rand, &args.bsf_domain).map_err(|e| anyhow::anyhow!("--bsf-domain: {e}"))?;
    let kdf_err = |e: gba::Error| anyhow::anyhow!("key derivation: {e}");
    let out = Derived {
        ks: hex::encode(ks.expose()),
        ks_naf: hex::encode(derive_ks_naf(&ks, &rand, impi, &naf_id).map_err(kdf_err)?.expose()),
        ks_ext_naf: hex::encode(derive_ks_ext_naf(&ks, &rand, impi, &naf_id).map_err(kdf_err)?.expose()),
        ks_int_naf: hex::encode(derive_ks_int_naf(&ks, &rand, impi, &naf_id).map_err(kdf_err)?.expose()),
        btid: btid.as_str().to_owned(),
        naf_id: hex::encode(naf_id.as_bytes()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).context("JSON")?);
    } else {
        println!("Ks          {}", out.ks);
        println!("NAF_Id      {} ({} || {})", out.naf_id, args.naf_fqdn, hex::encode(ua.0));
        println!("Ks_NAF      {}  (GBA_ME; equals Ks_ext_NAF)", out.ks_naf);
        println!("Ks_ext_NAF  {}  (GBA_U, given to the ME; MRK for MBMS)", out.ks_ext_naf);
        println!("Ks_int_NAF  {}  (GBA_U, kept on the UICC; MUK for MBMS)", out.ks_int_naf);
        println!("B-TID       {}", out.btid);
    }
    Ok(ExitCode::SUCCESS)
}
