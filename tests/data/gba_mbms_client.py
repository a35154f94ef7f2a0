#!/usr/bin/env python3
"""An MBMS UE client written apart from keysim (Python 3 standard library only).

It bootstraps at a running BSF over Ub (HTTP Digest AKA, RFC 3310 / TS 24.109 §4) with Milenage
(TS 35.206) computed here over an AES-128 written here (FIPS-197), derives the NAF key of the
BM-SC (TS 33.220 Annex B, NAF_Id = FQDN || 01 00 00 00 01 of Annex H), and registers at the BM-SC
(TS 33.246 §6.3.2.1: HTTP Digest, username = B-TID, password = base64(MRK); the mbmsRegister
document of TS 26.346).

GBA_U (default): the client says `3gpp-gba-uicc` in its User-Agent (TS 24.109 §4.3.1), checks
AUTN* = SQN^AK || AMF || MAC^Trunc(SHA-1(IK)) (TS 33.220 §5.3.2), and answers the BM-SC's
`3GPP-bootstrapping-uicc@FQDN` realm with MRK = Ks_ext_NAF = KDF(Ks, "gba-me", RAND, IMPI,
NAF_Id).

Prints one JSON object (btid, bsf status, register status, MIKEY datagram length) on stdout;
exit 0 only when bootstrapping and registration got 200 and every check held.

Self-check: `--self-test` runs FIPS-197 C.1 and TS 35.208 test set 1.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import sys
import xml.etree.ElementTree as ET

# --------------------------------------------------------------------------------------------
# AES-128 encryption (FIPS-197)


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) & 0xFF if a & 0x100 else a


def _gmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = _xtime(a)
        b >>= 1
    return r


def _make_sbox():
    box = [0] * 256
    for x in range(256):
        # multiplicative inverse in GF(2^8), then the affine map
        inv = 0
        if x:
            for y in range(1, 256):
                if _gmul(x, y) == 1:
                    inv = y
                    break
        s = inv
        for i in range(1, 5):
            s ^= ((inv << i) | (inv >> (8 - i))) & 0xFF
        box[x] = s ^ 0x63
    return box


SBOX = _make_sbox()


def _expand(key):
    w = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = t[1:] + t[:1]
            t = [SBOX[b] for b in t]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    return [sum(w[r * 4:r * 4 + 4], []) for r in range(11)]


def aes128_encrypt(key, block):
    rk = _expand(key)
    s = [a ^ b for a, b in zip(block, rk[0])]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        # ShiftRows on the column-major state
        s = [s[(c * 4 + r + 4 * r) % 16] for c in range(4) for r in range(4)]
        if rnd != 10:
            out = []
            for c in range(4):
                a = s[c * 4:c * 4 + 4]
                out += [
                    _gmul(a[0], 2) ^ _gmul(a[1], 3) ^ a[2] ^ a[3],
                    a[0] ^ _gmul(a[1], 2) ^ _gmul(a[2], 3) ^ a[3],
                    a[0] ^ a[1] ^ _gmul(a[2], 2) ^ _gmul(a[3], 3),
                    _gmul(a[0], 3) ^ a[1] ^ a[2] ^ _gmul(a[3], 2),
                ]
            s = out
        s = [a ^ b for a, b in zip(s, rk[rnd])]
    return bytes(s)


# --------------------------------------------------------------------------------------------
# Milenage (TS 35.206 §4.1): r1..r5 = 64, 0, 32, 64, 96 bits; c1..c5 = 0, 1, 2, 4, 8


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _rot(b, bits):
    n = bits // 8
    return b[n:] + b[:n]


def _c(i):
    return bytes(15) + bytes([i])


def milenage(k, opc, rand, sqn, amf):
    temp = aes128_encrypt(k, _xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = _xor(aes128_encrypt(k, _xor(_rot(_xor(in1, opc), 64), temp)), opc)

    def out(r, c):
        return _xor(aes128_encrypt(k, _xor(_rot(_xor(temp, opc), r), _c(c))), opc)

    out2 = out(0, 1)
    out3 = out(32, 2)
    out4 = out(64, 4)
    out5 = out(96, 8)
    return {
        "mac_a": out1[:8], "mac_s": out1[8:], "res": out2[8:], "ak": out2[:6],
        "ck": out3, "ik": out4, "ak_star": out5[:6],
    }


def self_test():
    # FIPS-197 Appendix C.1
    assert aes128_encrypt(bytes(range(16)), bytes.fromhex("00112233445566778899aabbccddeeff")) == \
        bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a"), "AES-128 FIPS-197 C.1"
    # TS 35.208 test set 1
    m = milenage(bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"),
                 bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf"),
                 bytes.fromhex("23553cbe9637a89d218ae64dae47bf35"),
                 bytes.fromhex("ff9bb4d0b607"), bytes.fromhex("b9b9"))
    want = {"mac_a": "4a9ffac354dfafb3", "mac_s": "01cfaf9ec4e871e9", "res": "a54211d5e3ba50bf",
            "ck": "b40ba9a3c58b2a05bbf0d987b21bf8cb", "ik": "f769bcd751044604127672711c6d3441",
            "ak": "aa689c648370", "ak_star": "451e8beca43b"}
    for name, hexv in want.items():
        assert m[name].hex() == hexv, f"Milenage test set 1: {name} {m[name].hex()} != {hexv}"


# --------------------------------------------------------------------------------------------
# GBA key derivation (TS 33.220 Annex B.2): HMAC-SHA-256(Ks, FC || P0 || L0 || ...)


def gba_kdf(key, fc, *params):
    s = bytes([fc])
    for p in params:
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(key, s, hashlib.sha256).digest()


# --------------------------------------------------------------------------------------------
# HTTP Digest (RFC 2617, RFC 3310)


def md5h(b):
    return hashlib.md5(b).hexdigest()


def parse_challenge(value):
    if not value.lower().startswith("digest "):
        raise ValueError(f"not a Digest challenge: {value}")
    out = {}
    for m in re.finditer(r'([A-Za-z-]+)=("([^"]*)"|[^,\s]+)', value[7:]):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def digest_response(user, realm, password, method, uri, nonce, nc, cnonce, qop, body):
    ha1 = md5h(user.encode() + b":" + realm.encode() + b":" + password)
    if qop == "auth-int":
        ha2 = md5h(f"{method}:{uri}:{md5h(body)}".encode())
    else:
        ha2 = md5h(f"{method}:{uri}".encode())
    return ha1, md5h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


def authorization(fields):
    parts = []
    for k, v in fields:
        parts.append(f"{k}={v}" if k in ("nc", "qop", "algorithm") else f'{k}="{v}"')
    return "Digest " + ", ".join(parts)


SOURCE = None


def request(addr, method, path, headers, body=b""):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10,
                                   source_address=(SOURCE, 0) if SOURCE else None)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    hdrs = r.getheaders()
    c.close()
    return r.status, hdrs, data


def bootstrap(bsf, impi, k, opc, gba_u):
    ua = "keysim-independent-client/1.0" + (" 3gpp-gba-uicc" if gba_u else "")
    first = authorization([("username", impi), ("realm", ""), ("nonce", ""), ("uri", "/"), ("response", "")])
    status, hdrs, _ = request(bsf, "GET", "/", {"Authorization": first, "User-Agent": ua})
    if status != 401:
        raise SystemExit(f"BSF: expected 401 to the first request, got {status}")
    ch = parse_challenge(dict((h.lower(), v) for h, v in hdrs)["www-authenticate"])
    if ch.get("algorithm", "").lower() != "akav1-md5":
        raise SystemExit(f"BSF: algorithm {ch.get('algorithm')}")
    nonce_raw = base64.b64decode(ch["nonce"])
    rand, autn = nonce_raw[:16], nonce_raw[16:32]
    m = milenage(k, opc, rand, bytes(6), bytes(2))
    sqn = _xor(autn[:6], m["ak"])
    amf = autn[6:8]
    m = milenage(k, opc, rand, sqn, amf)
    mac = m["mac_a"]
    if gba_u:
        mac = _xor(mac, hashlib.sha1(m["ik"]).digest()[:8])
    if not hmac.compare_digest(mac, autn[8:16]):
        raise SystemExit("BSF: AUTN does not verify (MAC)")
    qop = "auth-int" if "auth-int" in ch.get("qop", "") else "auth"
    cnonce, nc = os.urandom(8).hex(), "00000001"
    ha1, resp = digest_response(impi, ch["realm"], m["res"], "GET", "/", ch["nonce"], nc, cnonce, qop, b"")
    auth = authorization([
        ("username", impi), ("realm", ch["realm"]), ("nonce", ch["nonce"]), ("uri", "/"),
        ("qop", qop), ("nc", nc), ("cnonce", cnonce), ("response", resp), ("opaque", ch.get("opaque", "")),
        ("algorithm", "AKAv1-MD5"),
    ])
    status, hdrs, body = request(bsf, "GET", "/", {"Authorization": auth, "User-Agent": ua})
    if status != 200:
        raise SystemExit(f"BSF: expected 200 to the answer, got {status}: {body!r}")
    # rspauth (RFC 2617 §3.2.3): HA2 without the method
    info = parse_challenge("Digest " + dict((h.lower(), v) for h, v in hdrs)["authentication-info"])
    ha2 = md5h(f":/:{md5h(body)}".encode()) if qop == "auth-int" else md5h(b":/")
    want = md5h(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    if info.get("rspauth") != want:
        raise SystemExit("BSF: rspauth does not verify")
    root = ET.fromstring(body)
    ns = {"g": "uri:3gpp-gba"}
    btid = root.findtext("g:btid", namespaces=ns) or root.findtext("btid")
    if not btid or base64.b64decode(btid.split("@")[0]) != rand:
        raise SystemExit(f"BSF: B-TID {btid!r} is not base64(RAND)@domain")
    return {"btid": btid, "rand": rand, "ks": m["ck"] + m["ik"], "sqn": int.from_bytes(sqn, "big")}


def register(bmsc, fqdn, boot, impi, services, gba_u):
    naf_id = fqdn.encode() + bytes([1, 0, 0, 0, 1])
    ks_naf = gba_kdf(boot["ks"], 0x01, b"gba-me", boot["rand"], impi.encode(), naf_id)
    if gba_u:
        mrk = ks_naf  # Ks_ext_NAF
        realm = "3GPP-bootstrapping-uicc@" + fqdn
    else:
        # ME-based MRK: keysim's placeholder inputs (TS 33.246 §6.1 inputs not public)
        mrk = gba_kdf(ks_naf, 0x01, b"gba-me-mrk")
        realm = "3GPP-bootstrapping@" + fqdn
    path = "/keymanagement?requesttype=register"
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<mbmsRegister xmlns="urn:3GPP:metadata:2005:MBMS:mbmsRegister">'
            + "".join(f"<serviceId>{s}</serviceId>" for s in services)
            + "</mbmsRegister>").encode()
    ct = "application/mbms-register+xml"
    status, hdrs, _ = request(bmsc, "POST", path, {"Content-Type": ct}, body)
    if status != 401:
        raise SystemExit(f"BM-SC: expected 401 to the first request, got {status}")
    challenges = [parse_challenge(v) for h, v in hdrs if h.lower() == "www-authenticate"]
    ch = next((c for c in challenges if c["realm"] == realm), None)
    if ch is None:
        raise SystemExit(f"BM-SC: no challenge for realm {realm}: {challenges}")
    password = base64.b64encode(mrk)
    cnonce, nc = os.urandom(8).hex(), "00000001"
    _, resp = digest_response(boot["btid"], realm, password, "POST", path, ch["nonce"], nc, cnonce, "auth", body)
    auth = authorization([
        ("username", boot["btid"]), ("realm", realm), ("nonce", ch["nonce"]), ("uri", path),
        ("qop", "auth"), ("nc", nc), ("cnonce", cnonce), ("response", resp),
        ("opaque", ch.get("opaque", "")), ("algorithm", "MD5"),
    ])
    status, hdrs, rbody = request(bmsc, "POST", path, {"Content-Type": ct, "Authorization": auth}, body)
    return status, rbody, auth, body, path, ct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--bsf")
    ap.add_argument("--bmsc")
    ap.add_argument("--fqdn", default="bmsc.mnc001.mcc001.pub.3gppnetwork.org")
    ap.add_argument("--impi")
    ap.add_argument("--k")
    ap.add_argument("--opc")
    ap.add_argument("--service", action="append", default=[])
    ap.add_argument("--mikey-port", type=int, default=0, help="bind this UDP port and wait for the MSK push")
    ap.add_argument("--gba-me", action="store_true")
    ap.add_argument("--replay", action="store_true", help="send the registration again with the same nc")
    ap.add_argument("--source", help="the loopback address to send from (another device)")
    a = ap.parse_args()
    global SOURCE
    SOURCE = a.source
    self_test()
    if a.self_test:
        print(json.dumps({"self_test": "ok"}))
        return 0
    gba_u = not a.gba_me
    sock = None
    if a.mikey_port:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((a.source or "127.0.0.1", a.mikey_port))
        sock.settimeout(10)
    boot = bootstrap(a.bsf, a.impi, bytes.fromhex(a.k), bytes.fromhex(a.opc), gba_u)
    status, rbody, auth, body, path, ct = register(a.bmsc, a.fqdn, boot, a.impi, a.service, gba_u)
    out = {"btid": boot["btid"], "sqn": boot["sqn"], "register_status": status,
           "register_body": rbody.decode("utf-8", "replace")}
    if a.replay:
        rs, _, _ = request(a.bmsc, "POST", path, {"Content-Type": ct, "Authorization": auth}, body)
        out["replay_status"] = rs
    if sock is not None and status == 200:
        data, _ = sock.recvfrom(4096)
        # RFC 3830 §6.1: version 1; data type 0 = Initiator's pre-shared key message
        out["mikey_len"] = len(data)
        out["mikey_version"] = data[0]
        out["mikey_data_type"] = data[1]
    print(json.dumps(out))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
