//! `--report FILE.html`: one self-contained page per run, a message-sequence chart in SVG drawn
//! from the run's captured packets (see [`crate::capture`]): one lane per party, one arrow per
//! message (each HTTP request and response, SIP message, MIKEY message, APDU exchange, and one per
//! media stream), named as the specifications name them, key lifecycle marks, refusals in red, and
//! each arrow's decoded content on click.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use sim_reader::trace::Decoder;

use crate::capture::Frame;

/// The run's own summary (what `--json` prints), handed over by the command before it prints it.
static RUN_SUMMARY: std::sync::Mutex<Option<serde_json::Value>> = std::sync::Mutex::new(None);

/// Keep the run's summary for the report's table.
pub fn run_summary(summary: &serde_json::Value) {
    if let Ok(mut s) = RUN_SUMMARY.lock() {
        *s = Some(summary.clone());
    }
}

/// The scalar fields of a JSON value as (dotted key, value) rows; arrays are left out.
fn flatten(prefix: &str, v: &serde_json::Value, rows: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, rows);
            }
        }
        serde_json::Value::Array(_) => {}
        serde_json::Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

/// The lanes, left to right.
const LANES: [&str; 6] = ["UICC (card)", "ME", "BSF", "BM-SC", "SCF / KMS", "P-CSCF / IMS"];
const CARD: usize = 0;
const ME: usize = 1;
const BSF: usize = 2;
const BMSC: usize = 3;
const SCF_KMS: usize = 4;
const IMS: usize = 5;

/// Which run the frames come from: where its media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `keysim demo`: the BM-SC sends the bearer's SRTP to the ME.
    Demo,
    /// `keysim call`: the UEs send SRTP to each other.
    Call,
}

/// One message of the chart.
struct Message {
    time_ns: u64,
    from: usize,
    to: usize,
    name: String,
    refused: bool,
    /// A key lifecycle mark on a lane after the message, if any.
    mark: Option<(usize, String)>,
    detail: String,
}

/// A parsed IPv4 packet on lo: addresses and ports and the transport payload.
struct Packet<'a> {
    time_ns: u64,
    udp: bool,
    src_port: u16,
    dst_port: u16,
    payload: &'a [u8],
}

/// The source and destination ports of a TCP or UDP frame.
pub(crate) fn frame_ports(frame: &Frame) -> Option<(u16, u16)> {
    parse_packet(frame).map(|p| (p.src_port, p.dst_port))
}

fn parse_packet(frame: &Frame) -> Option<Packet<'_>> {
    let d = &frame.data;
    if d.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = d.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let proto = *ip.get(9)?;
    let l4 = ip.get(ihl..total.max(ihl))?;
    let port = |i: usize| Some(u16::from_be_bytes([*l4.get(i)?, *l4.get(i + 1)?]));
    let (src_port, dst_port) = (port(0)?, port(2)?);
    let (udp, payload) = match proto {
        17 => (true, l4.get(8..)?),
        6 => (false, l4.get(usize::from(l4.get(12)? >> 4) * 4..)?),
        _ => return None,
    };
    Some(Packet { time_ns: frame.time_ns, udp, src_port, dst_port, payload })
}

/// An HTTP message cut out of one direction of a TCP connection.
struct HttpMessage {
    time_ns: u64,
    client_port: u16,
    server_port: u16,
    from_client: bool,
    head: String,
    body: Vec<u8>,
}

/// A media stream: source port, destination port, SSRC.
type StreamKey = (u16, u16, u32);
/// A media stream's first packet time, its lanes and its packet count.
type StreamSeen = (u64, usize, usize, usize);

/// One direction of a TCP connection: the bytes not yet cut into messages.
#[derive(Default)]
struct Stream {
    buf: Vec<u8>,
    start_ns: u64,
}

/// Cut complete HTTP messages (head, then Content-Length bytes of body) off a stream.
fn cut_http(stream: &mut Stream) -> Vec<(u64, String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(end) = stream.buf.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&stream.buf[..end]).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let Some(total) = (end + 4).checked_add(length) else { break };
        if stream.buf.len() < total {
            break;
        }
        let body = stream.buf[end + 4..total].to_vec();
        stream.buf.drain(..total);
        out.push((stream.start_ns, head, body));
    }
    out
}

/// Every message of the run, in time order.
/// `mikey_ports`: the UEs' MIKEY ports (MSK pushes and bearer MTK messages go to them,
/// verification messages leave from them).
fn messages(frames: &[Frame], kind: RunKind, mikey_ports: &[u16]) -> Vec<Message> {
    let packets: Vec<Packet<'_>> = frames.iter().filter_map(parse_packet).collect();
    let mut out = Vec::new();

    // HTTP: reassemble each direction; the side that sent the first SYN is the client.
    let mut servers: BTreeMap<(u16, u16), u16> = BTreeMap::new();
    let mut streams: BTreeMap<(u16, u16), Stream> = BTreeMap::new();
    let mut http = Vec::new();
    for p in packets.iter().filter(|p| !p.udp) {
        let key = (p.src_port.min(p.dst_port), p.src_port.max(p.dst_port));
        servers.entry(key).or_insert(p.dst_port);
        if p.payload.is_empty() {
            continue;
        }
        let s = streams.entry((p.src_port, p.dst_port)).or_default();
        if s.buf.is_empty() {
            s.start_ns = p.time_ns;
        }
        s.buf.extend_from_slice(p.payload);
        let server = servers[&key];
        let cut = cut_http(s);
        // What is left after a cut message begins the next one.
        let next_begun = !cut.is_empty() && !s.buf.is_empty();
        for (time_ns, head, body) in cut {
            let from_client = p.dst_port == server;
            let client_port = if from_client { p.src_port } else { p.dst_port };
            http.push(HttpMessage { time_ns, client_port, server_port: server, from_client, head, body });
        }
        if next_begun {
            s.start_ns = p.time_ns;
        }
    }
    // Who serves which port, from what is asked of it; who the clients are.
    let mut server_party: BTreeMap<u16, usize> = BTreeMap::new();
    let mut client_party: BTreeMap<u16, usize> = BTreeMap::new();
    // A NAF asks the BSF over Zn on behalf of the request it is serving: the Zn client is the
    // server of the latest request before it.
    let mut serving = BMSC;
    for m in http.iter().filter(|m| m.from_client) {
        let target = m.head.split_whitespace().nth(1).unwrap_or_default();
        let body = String::from_utf8_lossy(&m.body);
        let server = if target == "/" || target == "/zn" {
            BSF
        } else if target.contains("requesttype=ticket") {
            SCF_KMS
        } else {
            BMSC
        };
        server_party.insert(m.server_port, server);
        let client = if target == "/zn" {
            if body.contains("scf") { SCF_KMS } else { serving }
        } else if target.contains("sip-based-") {
            SCF_KMS
        } else {
            ME
        };
        client_party.insert(m.client_port, client);
        if server != BSF {
            serving = server;
        }
    }
    for m in &http {
        let server = server_party.get(&m.server_port).copied().unwrap_or(BMSC);
        let client = client_party.get(&m.client_port).copied().unwrap_or(ME);
        let first = m.head.lines().next().unwrap_or_default().to_owned();
        let (from, to) = if m.from_client { (client, server) } else { (server, client) };
        let status: u16 = if m.from_client {
            0
        } else {
            first.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
        };
        let aka = m.head.contains("AKAv1-MD5");
        let name = if m.from_client {
            let target = first.split_whitespace().nth(1).unwrap_or_default();
            match target {
                "/" if m.head.contains("response=\"\"") => "Ub: GET / (IMPI, Digest AKA)".to_owned(),
                "/" => "Ub: GET / (RES, Digest AKA)".to_owned(),
                "/zn" => "Zn: request for the NAF keys (B-TID, NAF_Id)".to_owned(),
                t => match t.split_once("requesttype=") {
                    Some((_, what)) => format!("POST {what}"),
                    None => first.clone(),
                },
            }
        } else if status == 401 && aka {
            "401 Digest AKA (RAND, AUTN)".to_owned()
        } else if status == 401 {
            "401 Digest (B-TID challenge)".to_owned()
        } else {
            let ctype = header(&m.head, "content-type").unwrap_or_default();
            format!(
                "{} {}",
                first.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
                short_type(&ctype)
            )
        };
        let mark = (from == BSF && status == 200).then(|| (BSF, "B-TID, Ks stored".to_owned()));
        let mut detail = m.head.clone();
        detail.push_str("\n\n");
        detail.push_str(&String::from_utf8_lossy(&m.body));
        out.push(Message {
            time_ns: m.time_ns,
            from,
            to,
            name,
            refused: status >= 400 && status != 401,
            mark,
            detail,
        });
    }

    // UDP: GSMTAP (APDUs), MIKEY, SIP, media.
    let mut sip_ue: Vec<u16> = Vec::new();
    let mut scf_sip: Vec<u16> = Vec::new();
    for p in packets.iter().filter(|p| p.udp) {
        let text = String::from_utf8_lossy(p.payload.get(..p.payload.len().min(64)).unwrap_or_default())
            .into_owned();
        if text.starts_with("REGISTER ") {
            sip_ue.push(p.src_port);
        }
        if text.starts_with("INVITE sip:scf@") {
            scf_sip.push(p.dst_port);
        }
    }
    let sip_party = |port: u16| {
        if sip_ue.contains(&port) {
            ME
        } else if scf_sip.contains(&port) {
            SCF_KMS
        } else {
            IMS
        }
    };
    let mut decoder = Decoder::new();
    let mut media: BTreeMap<StreamKey, StreamSeen> = BTreeMap::new();
    for p in packets.iter().filter(|p| p.udp) {
        let d = p.payload;
        if p.dst_port == crate::capture::GSMTAP_PORT {
            if let Some(m) = apdu_message(&mut decoder, p) {
                out.push(m);
            }
        } else if mikey_ports.contains(&p.dst_port) || mikey_ports.contains(&p.src_port) {
            let (from, to) = if mikey_ports.contains(&p.dst_port) { (BMSC, ME) } else { (ME, BMSC) };
            let name = mikey_name(d);
            out.push(Message {
                time_ns: p.time_ns,
                from,
                to,
                refused: false,
                mark: None,
                name,
                detail: hex_dump(d),
            });
        } else if d.first() == Some(&0x80) && d.len() >= 12 {
            let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
            let (from, to) = match kind {
                RunKind::Demo => (BMSC, ME),
                RunKind::Call => (ME, ME),
            };
            let e = media.entry((p.src_port, p.dst_port, ssrc)).or_insert((p.time_ns, from, to, 0));
            e.3 += 1;
        } else if let Ok(text) = std::str::from_utf8(d)
            && (text.starts_with("SIP/2.0 ") || text.split_whitespace().nth(2) == Some("SIP/2.0"))
        {
            let first = text.lines().next().unwrap_or_default();
            let code: u16 = first
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let method = header(text, "cseq").unwrap_or_default();
            let name = if code > 0 {
                format!(
                    "{} ({})",
                    first.trim_start_matches("SIP/2.0 "),
                    method.split_whitespace().nth(1).unwrap_or_default()
                )
            } else {
                let m = first.split_whitespace().next().unwrap_or_default();
                let sdp = if text.contains("a=key-mgmt:mikey") {
                    " (SDP, a=key-mgmt:mikey)"
                } else if text.contains("application/sdp") {
                    " (SDP)"
                } else {
                    ""
                };
                format!("{m}{sdp}")
            };
            out.push(Message {
                time_ns: p.time_ns,
                from: sip_party(p.src_port),
                to: sip_party(p.dst_port),
                refused: code >= 400 && code != 401 && code != 407,
                mark: None,
                name,
                detail: text.to_owned(),
            });
        }
    }
    for ((src, dst, ssrc), (time_ns, from, to, n)) in media {
        out.push(Message {
            time_ns,
            from,
            to,
            refused: false,
            mark: None,
            name: format!("SRTP media, SSRC {ssrc:08x} ({n} packets)"),
            detail: format!("UDP {src} → {dst}, SSRC 0x{ssrc:08x}, {n} packets"),
        });
    }
    out.sort_by_key(|m| m.time_ns);
    out
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn short_type(ctype: &str) -> String {
    let t = ctype.split(';').next().unwrap_or_default().trim();
    if t.is_empty() { String::new() } else { format!("({t})") }
}

/// MIKEY messages by what TS 33.246 calls them: MSK or MTK message, with the V flag.
fn mikey_name(d: &[u8]) -> String {
    let data_type = d.get(1).copied().unwrap_or(0xFF);
    let v = d.get(3).is_some_and(|b| b & 0x80 != 0);
    if data_type == 1 {
        return "MIKEY verification message".to_owned();
    }
    // The Key ID extension (RFC 4563 §4): an MTK ID (type 2) makes it an MTK message.
    let mtk = d.windows(3).any(|w| w[0] == 0x02 && w[1] <= 4 && w[1] > 0) && has_mtk_id(d);
    format!("MIKEY {} (V={})", if mtk { "MTK" } else { "MSK" }, u8::from(v))
}

/// Walks HDR (empty map) and the payload chain to the Key ID extension.
fn has_mtk_id(d: &[u8]) -> bool {
    if d.get(9) != Some(&1) {
        return false;
    }
    let (mut next, mut at) = (d.get(2).copied().unwrap_or(0), 10usize);
    while next == 21 {
        let Some(len) = d.get(at + 2..at + 4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return false;
        };
        if d.get(at + 1) == Some(&3) {
            let mut k = at + 4;
            while k + 2 <= at + 4 + len {
                if d.get(k) == Some(&2) {
                    return true;
                }
                k += 2 + usize::from(d.get(k + 1).copied().unwrap_or(0));
            }
        }
        next = d.get(at).copied().unwrap_or(0);
        at += 4 + len;
    }
    false
}

/// Instructions whose command carries data (the GSMTAP SIM payload holds the T=0 TPDU: header,
/// data, response, SW; P3 is Lc for these, Le otherwise).
const DATA_INS: [u8; 14] =
    [0xA4, 0x88, 0x89, 0x20, 0x24, 0x2C, 0xD6, 0xDC, 0xE2, 0x10, 0xC2, 0x14, 0x32, 0x28];

fn apdu_message(decoder: &mut Decoder, p: &Packet<'_>) -> Option<Message> {
    let d = p.payload;
    let hlen = usize::from(*d.get(1)?) * 4;
    let tpdu = d.get(hlen..)?;
    if d.get(2) != Some(&4) || tpdu.len() < 7 {
        return None;
    }
    let (ins, p2, p3) = (tpdu[1], tpdu[3], usize::from(tpdu[4]));
    let (command, response) = if DATA_INS.contains(&ins) && p3 > 0 && tpdu.len() >= 5 + p3 + 2 {
        (tpdu[..5 + p3].to_vec(), tpdu[5 + p3..].to_vec())
    } else {
        (tpdu[..5].to_vec(), tpdu[5..].to_vec())
    };
    let sw = u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]]);
    let ok = sw == 0x9000 || sw >> 8 == 0x91 || sw >> 8 == 0x61;
    let decoded = decoder.decode(&command, &response);
    let tag = command.get(5).copied();
    // The MBMS mode byte opens the value of tag 53 (short or 81/82 long length).
    let mode = match command.get(6) {
        Some(0x81) => command.get(8),
        Some(0x82) => command.get(9),
        _ => command.get(7),
    }
    .copied();
    let (name, mark) = match (ins, p2 & 0x07, tag) {
        (0x88, 4, Some(0xDD)) => {
            ("AUTHENTICATE GBA bootstrap".to_owned(), Some((CARD, "Ks derived".to_owned())))
        }
        (0x88, 4, Some(0xDE)) => {
            ("AUTHENTICATE GBA NAF derivation".to_owned(), Some((CARD, "Ks_ext_NAF derived".to_owned())))
        }
        (0x88, 1, _) => ("AUTHENTICATE 3G (AKA)".to_owned(), None),
        (0x89, 5, Some(0x53)) => match mode {
            Some(1) => ("AUTHENTICATE MBMS MSK Update".to_owned(), Some((CARD, "MSK stored".to_owned()))),
            Some(2) => {
                ("AUTHENTICATE MBMS MTK Generation".to_owned(), Some((ME, "MTK installed".to_owned())))
            }
            Some(3) => ("AUTHENTICATE MBMS MSK Deletion".to_owned(), Some((CARD, "MSK evicted".to_owned()))),
            Some(4) => ("AUTHENTICATE MBMS MUK Deletion".to_owned(), Some((CARD, "MUK deleted".to_owned()))),
            _ => ("AUTHENTICATE MBMS".to_owned(), None),
        },
        _ => (decoded.name.to_owned(), None),
    };
    let name = if ok { name } else { format!("{name} → {sw:04X}") };
    let detail = format!(
        "{} {}\n> {}\n< {}\n{}",
        decoded.name,
        decoded.detail,
        hex::encode(&command),
        hex::encode(&response),
        decoded.response.unwrap_or_default()
    );
    Some(Message {
        time_ns: p.time_ns,
        from: ME,
        to: CARD,
        name,
        refused: !ok,
        mark: mark.filter(|_| ok),
        detail,
    })
}

fn hex_dump(d: &[u8]) -> String {
    d.chunks(16).map(hex::encode).collect::<Vec<_>>().join("\n")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Write the page; returns the number of arrows drawn.
pub fn write(
    path: &Path,
    frames: &[Frame],
    kind: RunKind,
    title: &str,
    mikey_ports: &[u16],
) -> Result<usize> {
    let msgs = messages(frames, kind, mikey_ports);
    let lane_w = 190.0;
    let top = 50.0;
    let step = 28.0;
    let rows: usize = msgs.iter().map(|m| 1 + usize::from(m.mark.is_some())).sum();
    let height = top + step * (rows as f64 + 1.0);
    let width = lane_w * LANES.len() as f64;
    let x = |lane: usize| lane_w * (lane as f64 + 0.5);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg id="msc" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">
<defs><marker id="head" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker>
<marker id="headred" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#c00"/></marker></defs>
"##
    );
    for (i, lane) in LANES.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<g class="lane"><rect x="{}" y="8" width="{}" height="24" rx="4" fill="#eef"/><text x="{}" y="24" text-anchor="middle" font-weight="bold">{}</text><line x1="{}" y1="32" x2="{}" y2="{height}" stroke="#999" stroke-dasharray="4 3"/></g>"##,
            x(i) - 80.0,
            160.0,
            x(i),
            esc(lane),
            x(i),
            x(i)
        );
    }
    let mut y = top;
    let mut details = Vec::new();
    for (n, m) in msgs.iter().enumerate() {
        y += step;
        let color = if m.refused { "#c00" } else { "#000" };
        let head = if m.refused { "headred" } else { "head" };
        let (x1, x2) = (x(m.from), x(m.to));
        let path = if m.from == m.to {
            format!("M{x1},{} h40 v10 h-40", y - 6.0)
        } else {
            let x2 = if x2 > x1 { x2 - 2.0 } else { x2 + 2.0 };
            format!("M{x1},{y} L{x2},{y}")
        };
        let tx = if m.from == m.to { x1 + 45.0 } else { (x1 + x(m.to)) / 2.0 };
        let anchor = if m.from == m.to { "start" } else { "middle" };
        let _ = writeln!(
            svg,
            r#"<g class="arrow" data-n="{n}" data-refused="{}" style="cursor:pointer"><path d="{path}" stroke="{color}" fill="none" marker-end="url(#{head})"/><text x="{tx}" y="{}" text-anchor="{anchor}" fill="{color}">{}</text><title>{}</title></g>"#,
            m.refused,
            y - 4.0,
            esc(&m.name),
            esc(&m.name)
        );
        details.push(format!("<pre class=\"detail\" id=\"d{n}\" hidden>{}</pre>", esc(&m.detail)));
        if let Some((lane, text)) = &m.mark {
            y += step;
            let _ = writeln!(
                svg,
                r##"<g class="mark"><rect x="{}" y="{}" width="130" height="18" rx="9" fill="#ffd"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"##,
                x(*lane) - 65.0,
                y - 14.0,
                x(*lane),
                y - 1.0,
                esc(text)
            );
        }
    }
    svg.push_str("</svg>\n");

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &msgs {
        let kind = if m.to == CARD {
            "APDU exchanges (GSMTAP SIM)"
        } else if m.name.starts_with("MIKEY") {
            "MIKEY messages"
        } else if m.name.starts_with("SRTP") {
            "media streams"
        } else if m.detail.starts_with("SIP/2.0") || m.detail.contains(" SIP/2.0\r\n") {
            "SIP messages"
        } else {
            "HTTP messages"
        };
        *counts.entry(kind).or_default() += 1;
    }
    let refused = msgs.iter().filter(|m| m.refused).count();
    let duration = match (msgs.first(), msgs.last()) {
        (Some(a), Some(b)) => (b.time_ns - a.time_ns) as f64 / 1e9,
        _ => 0.0,
    };
    let mut table = String::from("<table id=\"summary\"><tr><th>what</th><th>count</th></tr>\n");
    for (k, v) in &counts {
        let _ = writeln!(table, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    let _ = writeln!(table, "<tr><td>arrows</td><td>{}</td></tr>", msgs.len());
    let _ = writeln!(table, "<tr><td>refusals (red)</td><td>{refused}</td></tr>");
    let _ = writeln!(table, "<tr><td>packets captured</td><td>{}</td></tr>", frames.len());
    let _ = writeln!(table, "<tr><td>first to last message</td><td>{duration:.3} s</td></tr></table>");
    let summary = RUN_SUMMARY.lock().ok().and_then(|s| s.clone());
    if let Some(summary) = summary {
        let mut rows = Vec::new();
        flatten("", &summary, &mut rows);
        table.push_str(
            "<h2>Run summary</h2>\n<table id=\"run-summary\"><tr><th>key</th><th>value</th></tr>\n",
        );
        for (k, v) in rows {
            let _ = writeln!(table, "<tr><td>{}</td><td>{}</td></tr>", esc(&k), esc(&v));
        }
        table.push_str("</table>\n");
    }

    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1em 37% 1em 1em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px}}
#panel{{position:fixed;right:0;top:0;width:34%;height:100%;overflow:auto;background:#f8f8f8;border-left:1px solid #ccc;padding:0 1em}}
.arrow:hover text{{font-weight:bold}} pre{{white-space:pre-wrap;word-break:break-all}}</style></head>
<body><h1>{title}</h1>
<p>Click an arrow for its content.</p>
<div id="panel"><h2>Message</h2>{details}</div>
{svg}
{table}
<script>
document.querySelectorAll('.arrow').forEach(function (g) {{
  g.addEventListener('click', function () {{
    document.querySelectorAll('.detail').forEach(function (d) {{ d.hidden = true; }});
    var d = document.getElementById('d' + g.dataset.n); if (d) d.hidden = false;
  }});
}});
</script></body></html>
"#,
        title = esc(title),
        details = details.join("\n"),
    );
    std::fs::write(path, page).with_context(|| format!("--report {}", path.display()))?;
    Ok(msgs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/UDP or TCP frame on lo carrying `payload`.
    fn frame(tcp: bool, src: u16, dst: u16, payload: &[u8]) -> Frame {
        let l4_len = if tcp { 20 } else { 8 };
        let total = 20 + l4_len + payload.len();
        let mut d = vec![0u8; 12];
        d.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        d.extend_from_slice(&(total as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0, 64, if tcp { 6 } else { 17 }, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        d.extend_from_slice(&src.to_be_bytes());
        d.extend_from_slice(&dst.to_be_bytes());
        if tcp {
            d.extend_from_slice(&[0; 8]);
            d.extend_from_slice(&[0x50, 0x18, 0, 0, 0, 0, 0, 0]);
        } else {
            d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            d.extend_from_slice(&[0, 0]);
        }
        d.extend_from_slice(payload);
        Frame { time_ns: 1, data: d }
    }

    #[test]
    fn http_exchange_becomes_two_arrows_between_the_right_lanes() {
        let req = b"GET / HTTP/1.1\r\nAuthorization: Digest username=\"u\", response=\"\"\r\n\r\n";
        let resp = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest algorithm=AKAv1-MD5\r\nContent-Length: 2\r\n\r\nok";
        let frames = [
            frame(true, 40000, 8080, req),
            frame(true, 8080, 40000, &resp[..50]),
            frame(true, 8080, 40000, &resp[50..]),
        ];
        let m = messages(&frames, RunKind::Demo, &[crate::capture::MIKEY_PORT]);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].from, m[0].to), (ME, BSF));
        assert_eq!((m[1].from, m[1].to), (BSF, ME));
        assert_eq!(m[1].name, "401 Digest AKA (RAND, AUTN)");
    }

    #[test]
    fn truncated_and_odd_frames_never_panic() {
        let gsmtap = [
            [2u8, 4, 4, 0].as_slice(),
            &[0; 12],
            &[0x00, 0x89, 0x80, 0x85, 0x05, 0x53, 0x81, 0x02, 0x02],
            &[0x90, 0x00],
        ]
        .concat();
        let huge = b"POST /x HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
        let mikey = [1u8, 0, 21, 0x80, 0, 0, 0, 1, 0, 1, 0, 3, 0, 255];
        for (tcp, port, payload) in [
            (false, GSMTAP_PORT_FOR_TEST, gsmtap.as_slice()),
            (true, 80, huge.as_slice()),
            (false, 2269, mikey.as_slice()),
        ] {
            let full = frame(tcp, 40000, port, payload);
            for cut in 0..=full.data.len() {
                let f = Frame { time_ns: 1, data: full.data[..cut].to_vec() };
                let _ = messages(&[f], RunKind::Demo, &[crate::capture::MIKEY_PORT]);
            }
        }
    }

    const GSMTAP_PORT_FOR_TEST: u16 = crate::capture::GSMTAP_PORT;
}
