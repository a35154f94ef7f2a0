//! `keysim mikey`: decode MIKEY messages (RFC 3830 §6, RFC 4563 §4–5, RFC 6043 IDR) payload by
//! payload, verify and decrypt those of the MBMS profile, and build the MSK, MTK and
//! solicited-pull messages of TS 33.246 §6.3. The description itself is `mikey::describe`'s;
//! this prints it as text or JSON.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use mikey::describe::{Fields, Node, Value, describe, has_mtk_id, locate, verify_with_msk, verify_with_muk};
use mikey::mbms::{
    KeyDomainId, Msk, MskId, MskMessageParams, Mtk, MtkId, MtkMessageParams, MtkSalt, Muk,
    SolicitedPullParams, build_msk_message, build_mtk_message, build_solicited_pull, profile,
};
use mikey::{Message, Timestamp};
use serde::Serialize;

use super::hex_array;
use crate::cli::{
    MikeyBuildCommand, MikeyBuildCommon, MikeyBuildMskArgs, MikeyBuildMtkArgs, MikeyBuildPullArgs,
    MikeyCommand, MikeyDecodeArgs,
};

pub fn run(cmd: MikeyCommand) -> Result<ExitCode> {
    match cmd {
        MikeyCommand::Decode(args) => decode(args),
        MikeyCommand::Build(MikeyBuildCommand::Msk(args)) => build_msk(args),
        MikeyCommand::Build(MikeyBuildCommand::Mtk(args)) => build_mtk(args),
        MikeyCommand::Build(MikeyBuildCommand::Pull(args)) => build_pull(args),
    }
}

// ---------------------------------------------------------------------------------------------
// The description as JSON objects and as indented text, in the same order.

/// A description tree for serde (JSON keeps the fields' order).
struct Json<'a, T>(&'a T);

impl Serialize for Json<'_, Value> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Text(t) => s.serialize_str(t),
            Value::Number(n) => s.serialize_u64(*n),
            Value::Bool(b) => s.serialize_bool(*b),
        }
    }
}

impl Serialize for Json<'_, Node> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Node::Value(v) => Json(v).serialize(s),
            Node::Object(f) => Json(f).serialize(s),
            Node::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for item in l {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
        }
    }
}

impl Serialize for Json<'_, Fields> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.0.len()))?;
        for (k, v) in &self.0.0 {
            m.serialize_entry(k, &Json(v))?;
        }
        m.end()
    }
}

fn text_value(v: &Value) -> String {
    match v {
        Value::Text(s) if s.is_empty() => "\"\"".to_owned(),
        Value::Text(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

/// `value` or `value (name)` when a `<key>_name` field sits beside it.
fn text_field(f: &Fields, key: &str, v: &Value) -> String {
    let name = f.0.iter().find_map(|(k, n)| match n {
        Node::Value(Value::Text(s)) if k.strip_suffix("_name") == Some(key) => Some(s.as_str()),
        _ => None,
    });
    match name {
        Some(n) => format!("{} ({n})", text_value(v)),
        None => text_value(v),
    }
}

fn is_merged_name(f: &Fields, key: &str) -> bool {
    key.strip_suffix("_name").is_some_and(|base| matches!(f.get(base), Some(Node::Value(_))))
}

fn render(f: &Fields, indent: usize, skip: &[&str], out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, node) in &f.0 {
        if skip.contains(k) || is_merged_name(f, k) {
            continue;
        }
        match node {
            Node::Value(v) => out.push_str(&format!("{pad}{k}: {}\n", text_field(f, k, v))),
            Node::Object(o) => {
                out.push_str(&format!("{pad}{k}:\n"));
                render(o, indent + 2, &[], out);
            }
            Node::List(items) if items.is_empty() => out.push_str(&format!("{pad}{k}: none\n")),
            Node::List(items) => {
                out.push_str(&format!("{pad}{k}:\n"));
                for item in items {
                    let inline: Vec<String> = item
                        .0
                        .iter()
                        .filter(|(ik, _)| !is_merged_name(item, ik))
                        .map(|(ik, n)| match n {
                            Node::Value(v) => format!("{ik}={}", text_field(item, ik, v)),
                            Node::Object(_) | Node::List(_) => format!("{ik}=..."),
                        })
                        .collect();
                    out.push_str(&format!("{pad}  - {}\n", inline.join(", ")));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Input

/// Hex digits with optional whitespace and colons, naming the option (or operand) in the error.
fn hex_arg(option: &str, text: &str) -> Result<Vec<u8>> {
    sim_reader::parse_hex(text).map_err(|e| anyhow!("{option}: {e}"))
}

/// The message from FILE ("-": stdin): hex text when it is only hex digits, whitespace and colons
/// (a raw MIKEY message starts with the version byte 0x01, never a hex digit), else raw bytes.
fn read_input(path: &Path) -> Result<Vec<u8>> {
    let raw = if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).context("reading stdin")?;
        v
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    if raw.is_empty() {
        bail!("{}: empty input", path.display());
    }
    let looks_hex = raw.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b':');
    if looks_hex {
        let text = String::from_utf8_lossy(&raw);
        return hex_arg(&path.display().to_string(), &text);
    }
    Ok(raw)
}

pub fn decode(args: MikeyDecodeArgs) -> Result<ExitCode> {
    let bytes = match (&args.hex, &args.input) {
        (Some(text), _) => hex_arg("HEX", text)?,
        (None, Some(path)) => read_input(path)?,
        (None, None) => bail!("give the message in hex or --in FILE"),
    };
    let muk = args.muk.as_deref().map(|h| hex_array::<32>("--muk", h)).transpose()?;
    let msk = args.msk.as_deref().map(|h| hex_array::<16>("--msk", h)).transpose()?;
    let msg = Message::parse(&bytes)
        .map_err(|e| anyhow!("malformed MIKEY message ({} bytes): {}: {e}", bytes.len(), locate(&bytes)))?;

    let verified = match (&muk, &msk) {
        (Some(_), _) if has_mtk_id(&msg) => bail!("this is an MTK message: verify it with --msk"),
        (_, Some(_)) if !has_mtk_id(&msg) => {
            bail!("this is an MSK message or solicited pull: verify it with --muk")
        }
        (Some(k), _) => Some(verify_with_muk(&bytes, k, args.show_keys)?),
        (_, Some(k)) => Some(verify_with_msk(&bytes, k, args.show_keys)?),
        _ => None,
    };
    let readable = verified.as_ref().and_then(|v| v.readable.clone());
    let mut top = Fields::default();
    top.list("payloads", describe(&msg, &readable, args.show_keys));
    let mac_valid = verified.as_ref().is_none_or(|v| v.mac_valid);
    if let Some(v) = verified {
        top.object("verification", v.fields);
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&Json(&top)).context("JSON")?);
    } else {
        let mut out = String::new();
        for (key, node) in &top.0 {
            match node {
                Node::List(payloads) => {
                    for p in payloads {
                        let ty = match p.get("type") {
                            Some(Node::Value(v)) => text_value(v),
                            _ => String::new(),
                        };
                        let num = |k| match p.get(k) {
                            Some(Node::Value(v)) => text_value(v),
                            _ => String::new(),
                        };
                        out.push_str(&format!("{ty} (offset {}, {} bytes)\n", num("offset"), num("length")));
                        render(p, 2, &["type", "offset", "length"], &mut out);
                    }
                }
                Node::Object(o) => {
                    out.push_str(&format!("{key}:\n"));
                    render(o, 2, &[], &mut out);
                }
                Node::Value(_) => {}
            }
        }
        print!("{out}");
    }
    if mac_valid {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("keysim: MAC verification failed");
        Ok(ExitCode::from(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Building (TS 33.246 §6.3 through the mikey crate's MBMS profile)

fn number(option: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    parsed.map_err(|e| anyhow!("{option}: {text:?} is not a number: {e}"))
}

fn timestamp(ts_type: &str, text: &str) -> Result<Timestamp> {
    let v = number("--timestamp", text)?;
    Ok(match ts_type {
        "ntp-utc" => Timestamp::NtpUtc(v),
        "ntp" => Timestamp::Ntp(v),
        _ => Timestamp::Counter(
            u32::try_from(v).map_err(|_| anyhow!("--timestamp: a COUNTER has 32 bits; {v} is too large"))?,
        ),
    })
}

/// `--rand`, or 16 bytes from the system's random source.
fn rand_or_random(option: Option<&str>) -> Result<Vec<u8>> {
    let rand = match option {
        Some(h) => hex_arg("--rand", h)?,
        None => {
            let mut r = vec![0u8; profile::MIN_RAND_LEN];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut r))
                .context("no random source (/dev/urandom) for the RAND: give --rand")?;
            r
        }
    };
    if rand.len() < profile::MIN_RAND_LEN {
        bail!("--rand: at least {} bytes (RFC 3830 §4.1.1), got {}", profile::MIN_RAND_LEN, rand.len());
    }
    Ok(rand)
}

fn csb_id(common: &MikeyBuildCommon) -> Result<u32> {
    Ok(u32::from_be_bytes(hex_array::<4>("--csb-id", &common.csb_id)?))
}

fn buffer(variable: &[&[u8]]) -> Vec<u8> {
    vec![0u8; 512 + variable.iter().map(|v| v.len()).sum::<usize>()]
}

fn emit(message: &[u8], common: &MikeyBuildCommon) -> Result<ExitCode> {
    match &common.out {
        Some(path) if path == Path::new("-") => {
            use std::io::Write;
            std::io::stdout().write_all(message).context("writing stdout")?;
        }
        Some(path) => std::fs::write(path, message).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{}", hex::encode(message)),
    }
    Ok(ExitCode::SUCCESS)
}

fn build_err(what: &str) -> impl Fn(mikey::Error) -> anyhow::Error + '_ {
    move |e| anyhow!("building the {what}: {e}")
}

pub fn build_msk(a: MikeyBuildMskArgs) -> Result<ExitCode> {
    let muk = Muk::new(hex_array::<32>("--muk", &a.muk)?);
    let msk = Msk::new(hex_array::<16>("--msk", &a.msk)?);
    let msk_id = MskId(u32::from_be_bytes(hex_array::<4>("--msk-id", &a.msk_id)?));
    if msk_id.is_solicited_pull() {
        bail!(
            "--msk-id: key number 0 is the solicited pull's (TS 33.246 §6.3.2.2.4): use `mikey build pull`"
        );
    }
    let rand = rand_or_random(a.rand.as_deref())?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let ts = timestamp(&a.ts_type, &a.timestamp)?;
    let params = MskMessageParams {
        csb_id: csb_id(&a.common)?,
        ..MskMessageParams::new(a.idi.as_bytes(), a.idr.as_bytes(), key_domain_id, msk_id, ts, &rand)
            .with_v_bit(a.v)
    };
    let mut buf = buffer(&[&rand, a.idi.as_bytes(), a.idr.as_bytes()]);
    let n = build_msk_message(&muk, &params, &msk, &mut buf).map_err(build_err("MSK message"))?;
    emit(&buf[..n], &a.common)
}

pub fn build_mtk(a: MikeyBuildMtkArgs) -> Result<ExitCode> {
    let msk = Msk::new(hex_array::<16>("--msk", &a.msk)?);
    let mtk = Mtk::new(hex_array::<16>("--mtk", &a.mtk)?);
    let salt = a.salt.as_deref().map(|s| hex_array::<14>("--salt", s)).transpose()?.map(MtkSalt::new);
    let mtk_id = hex_arg("--mtk-id", &a.mtk_id)?;
    if mtk_id.len() != profile::MTK_ID_LEN {
        bail!("--mtk-id: the MTK ID has {} bytes in this profile, got {}", profile::MTK_ID_LEN, mtk_id.len());
    }
    let mtk_id = MtkId(mtk_id.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)));
    let rand = a.rand.as_deref().map(|_| rand_or_random(a.rand.as_deref())).transpose()?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let msk_id = MskId(u32::from_be_bytes(hex_array::<4>("--msk-id", &a.msk_id)?));
    let params = MtkMessageParams {
        csb_id: csb_id(&a.common)?,
        rand: rand.as_deref(),
        ..MtkMessageParams::new(key_domain_id, msk_id, mtk_id, Timestamp::Counter(a.counter))
    };
    let mut buf = buffer(&[rand.as_deref().unwrap_or(&[])]);
    let n =
        build_mtk_message(&msk, &params, &mtk, salt.as_ref(), &mut buf).map_err(build_err("MTK message"))?;
    emit(&buf[..n], &a.common)
}

pub fn build_pull(a: MikeyBuildPullArgs) -> Result<ExitCode> {
    let muk = Muk::new(hex_array::<32>("--muk", &a.muk)?);
    let rand = rand_or_random(a.rand.as_deref())?;
    let key_domain_id = KeyDomainId(hex_array::<3>("--key-domain", &a.key_domain)?);
    let key_group = u16::from_be_bytes(hex_array::<2>("--key-group", &a.key_group)?);
    let ts = timestamp(&a.ts_type, &a.timestamp)?;
    let params = SolicitedPullParams {
        csb_id: csb_id(&a.common)?,
        ..SolicitedPullParams::new(a.idi.as_bytes(), a.idr.as_bytes(), key_domain_id, key_group, ts, &rand)
    };
    let mut buf = buffer(&[&rand, a.idi.as_bytes(), a.idr.as_bytes()]);
    let n = build_solicited_pull(&muk, &params, &mut buf).map_err(build_err("solicited pull"))?;
    emit(&buf[..n], &a.common)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_arg_accepts_spaces_and_colons_and_names_the_bad_digit() {
        assert_eq!(hex_arg("X", "01:02 0a\n0B").unwrap(), vec![1, 2, 10, 11]);
        let odd = hex_arg("X", "012").unwrap_err().to_string();
        assert!(odd.contains("odd number of hex digits (3)"), "{odd}");
        let bad = hex_arg("HEX", "zz").unwrap_err().to_string();
        assert!(bad.starts_with("HEX: ") && bad.contains("'z' at digit 0 is not a hex digit"), "{bad}");
        assert!(hex_arg("X", "").unwrap_err().to_string().contains("no hex digits"));
    }
}
