#!/usr/bin/env python3
"""Recomputes every known-answer vector in this folder from its inputs, independently of keysim.

Written from the standards' text only: TS 33.220 Annex B (GBA KDF), clause 4.5.2 (B-TID),
clause 5.3.2 (GBA_U MAC*), TS 33.246 clause 6.1 (MUK and MRK), RFC 3830 (MIKEY: PRF clause 4.1.2,
transport keys 4.1.4, AES-CM 4.2.3, MAC coverage 5.2, payloads 6), RFC 4563 (Key ID extension,
empty CS ID map) and RFC 3711 (SRTP key derivation 4.3, AES-CM 4.1.1, HMAC-SHA1 4.2.1). It uses
Python's hmac, hashlib and base64 and the `cryptography` package's AES; with `pylibsrtp` importable
it also protects the SRTP packet with libsrtp. It shares no code with keysim.

    python3 vectors/check.py [FOLDER]      # prints one line per file; exit 1 on any mismatch
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FAILURES = []


def expect(what, got, want):
    if got != want:
        FAILURES.append(f"{what}: computed {got!r}, file says {want!r}")


def h(text):
    return bytes.fromhex(text)


# ---------------------------------------------------------------------------------------- GBA

def gba_kdf(key, fc, *params):
    """TS 33.220 Annex B.2.1: HMAC-SHA-256(Key, FC || P0 || L0 || P1 || L1 || ...)."""
    s = bytes([fc])
    for p in params:
        s += p + struct.pack(">H", len(p))
    return hmac.new(key, s, hashlib.sha256).digest()


def check_gba_kdf(doc):
    n = 0
    for v in doc["vectors"]:
        name = f"gba_kdf {v['naf_fqdn']}"
        ks = h(v["ck"]) + h(v["ik"])
        naf_id = v["naf_fqdn"].encode() + h(v["ua_security_protocol_id"])
        expect(f"{name} naf_id", naf_id.hex(), v["naf_id"])
        expect(f"{name} ks", ks.hex(), v["ks"])
        rand, impi = h(v["rand"]), v["impi"].encode("utf-8")
        ext = gba_kdf(ks, 0x01, b"gba-me", rand, impi, naf_id)
        expect(f"{name} ks_ext_naf", ext.hex(), v["ks_ext_naf"])
        expect(f"{name} ks_naf", ext.hex(), v["ks_naf"])
        expect(f"{name} ks_int_naf", gba_kdf(ks, 0x01, b"gba-u", rand, impi, naf_id).hex(), v["ks_int_naf"])
        expect(f"{name} btid", base64.b64encode(rand).decode() + "@" + v["bsf_domain"], v["btid"])
        n += 1
    return n


def check_gba_u_autn(doc):
    n = 0
    for v in doc["vectors"]:
        mask = hashlib.sha1(h(v["ik"])).digest()[:8]
        autn = h(v["autn"])
        mac_star = bytes(a ^ b for a, b in zip(autn[8:], mask))
        expect("gba_u mask", mask.hex(), v["mask"])
        expect("gba_u mac", autn[8:].hex(), v["mac"])
        expect("gba_u mac_star", mac_star.hex(), v["mac_star"])
        expect("gba_u autn_star", (autn[:8] + mac_star).hex(), v["autn_star"])
        n += 1
    return n


def check_muk_mrk(doc):
    n = 0
    for v in doc["vectors"]:
        ks, rand, impi, naf_id = h(v["ks"]), h(v["rand"]), v["impi"].encode(), h(v["naf_id"])
        expect("mrk", gba_kdf(ks, 0x01, b"gba-me", rand, impi, naf_id).hex(), v["mrk"])
        expect("muk", gba_kdf(ks, 0x01, b"gba-u", rand, impi, naf_id).hex(), v["muk"])
        expect("muk idr", base64.b64encode(rand).decode() + "@" + v["muk_idr"].split("@", 1)[1], v["muk_idr"])
        n += 1
    return n


# -------------------------------------------------------------------------------------- MIKEY

def mikey_prf(inkey, label, outlen):
    """RFC 3830 clause 4.1.2 (MIKEY-1): P-function on 256-bit chunks of inkey, XORed."""
    out = bytes(outlen)
    m = -(-outlen * 8 // 160)
    for i in range(0, len(inkey), 32):
        s = inkey[i:i + 32]
        a, p = label, b""
        for _ in range(m):
            a = hmac.new(s, a, hashlib.sha1).digest()
            p += hmac.new(s, a + label, hashlib.sha1).digest()
        out = bytes(x ^ y for x, y in zip(out, p[:outlen]))
    return out


def transport_keys(psk, csb_id, rand):
    """RFC 3830 clause 4.1.4: label = constant || 0xFF || CSB ID || RAND; encr, auth, salt keys."""
    def label(c):
        return struct.pack(">I", c) + b"\xff" + struct.pack(">I", csb_id) + rand
    return mikey_prf(psk, label(0x150533E1), 16), mikey_prf(psk, label(0x2D22AC75), 20), mikey_prf(psk, label(0x29B88916), 14)


def aes_cm(key, iv, data):
    e = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return e.update(data) + e.finalize()


def parse_mikey(msg):
    """RFC 3830 clause 6: the common header, then the payload chain. Returns a dict of fields."""
    version, data_type, nxt, vprf = msg[0], msg[1], msg[2], msg[3]
    csb_id = struct.unpack(">I", msg[4:8])[0]
    cs_count, map_type = msg[8], msg[9]
    out = {"version": version, "data_type": data_type, "v": bool(vprf & 0x80), "prf": vprf & 0x7F,
           "csb_id": csb_id, "cs_count": cs_count, "map_type": map_type, "ids": [], "key_ids": {}}
    pos = 10  # RFC 4563 clause 5: the empty map (type 1) has no CS ID map info
    while nxt != 0:
        kind, nxt = nxt, msg[pos]
        if kind == 21:  # EXT, RFC 3830 clause 6.15
            ext_type, length = msg[pos + 1], struct.unpack(">H", msg[pos + 2:pos + 4])[0]
            data = msg[pos + 4:pos + 4 + length]
            out["ext_type"] = ext_type
            i = 0
            while i < len(data):  # RFC 4563 clause 4: Key ID type, length, value
                t, l = data[i], data[i + 1]
                out["key_ids"][t] = data[i + 2:i + 2 + l]
                i += 2 + l
            pos += 4 + length
        elif kind == 5:  # T, RFC 3830 clause 6.6: NTP-UTC/NTP 64 bits, COUNTER 32 bits
            ts_type = msg[pos + 1]
            size = 4 if ts_type == 2 else 8
            out["ts_type"] = ts_type
            out["ts"] = int.from_bytes(msg[pos + 2:pos + 2 + size], "big")
            pos += 2 + size
        elif kind == 11:  # RAND, clause 6.11
            length = msg[pos + 1]
            out["rand"] = msg[pos + 2:pos + 2 + length]
            pos += 2 + length
        elif kind == 6:  # ID, clause 6.7
            id_type, length = msg[pos + 1], struct.unpack(">H", msg[pos + 2:pos + 4])[0]
            out["ids"].append((id_type, msg[pos + 4:pos + 4 + length]))
            pos += 4 + length
        elif kind == 1:  # KEMAC, clause 6.2
            encr_alg, length = msg[pos + 1], struct.unpack(">H", msg[pos + 2:pos + 4])[0]
            out["encr_alg"] = encr_alg
            out["encr_data"] = msg[pos + 4:pos + 4 + length]
            mac_alg = msg[pos + 4 + length]
            out["mac_alg"] = mac_alg
            mac_at = pos + 5 + length
            out["mac"] = msg[mac_at:mac_at + 20]
            out["mac_covered"] = msg[:mac_at]
            pos = mac_at + 20
        else:
            raise ValueError(f"payload type {kind} not expected in an MBMS message")
    if pos != len(msg):
        raise ValueError(f"{len(msg) - pos} trailing octets")
    return out


def open_kemac(fields, psk):
    """Verifies the KEMAC MAC and decrypts its Key data sub-payload (RFC 3830 clauses 4.2.3, 5.2, 6.13)."""
    rand = fields.get("rand", b"")
    encr, auth, salt = transport_keys(psk, fields["csb_id"], rand)
    mac_ok = hmac.compare_digest(hmac.new(auth, fields["mac_covered"], hashlib.sha1).digest(), fields["mac"])
    x = b"\x00\x00" + struct.pack(">I", fields["csb_id"]) + fields["ts"].to_bytes(8, "big")
    iv = bytes(a ^ b for a, b in zip(salt, x)) + b"\x00\x00"
    plain = aes_cm(encr, iv, fields["encr_data"])
    key_type, kv = plain[1] >> 4, plain[1] & 0x0F
    key_len = struct.unpack(">H", plain[2:4])[0]
    key = plain[4:4 + key_len]
    rest = plain[4 + key_len:]
    key_salt = None
    if key_type in (1, 3):  # TGK+SALT, TEK+SALT
        salt_len = struct.unpack(">H", rest[:2])[0]
        key_salt = rest[2:2 + salt_len]
    return mac_ok, key_type, kv, key, key_salt


def check_mikey(doc):
    n = 0
    for v in doc["msk_messages"]:
        name = f"MSK message {v['name']!r}"
        f = parse_mikey(h(v["message"]))
        expect(f"{name} version/data type/PRF", (f["version"], f["data_type"], f["prf"]), (1, 0, 0))
        expect(f"{name} empty map", (f["map_type"], f["cs_count"]), (1, 0))
        expect(f"{name} csb_id", f"{f['csb_id']:08x}", v["csb_id"])
        expect(f"{name} V bit", f["v"], v["v"])
        expect(f"{name} Key ID extension", f["ext_type"], 3)
        expect(f"{name} key domain", f["key_ids"].get(0, b"").hex(), v["key_domain_id"])
        expect(f"{name} MSK ID", f["key_ids"].get(1, b"").hex(), v["msk_id"])
        expect(f"{name} key group", f["key_ids"].get(1, b"")[:2].hex(), v["key_group"])
        expect(f"{name} COUNTER", (f["ts_type"], f["ts"]), (2, v["timestamp"]))
        expect(f"{name} RAND", f.get("rand", b"").hex(), v["rand"])
        expect(f"{name} IDi", f["ids"][0][1].decode(), v["idi"])
        expect(f"{name} IDr", f["ids"][1][1].decode(), v["idr"])
        mac_ok, key_type, _, key, _ = open_kemac(f, h(v["muk"]))
        expect(f"{name} MAC with the MUK", mac_ok, True)
        expect(f"{name} MSK", key.hex(), v["msk"])
        n += 1
    for v in doc["mtk_messages"]:
        name = f"MTK message {v['name']!r}"
        f = parse_mikey(h(v["message"]))
        expect(f"{name} empty map", (f["map_type"], f["cs_count"]), (1, 0))
        expect(f"{name} key domain", f["key_ids"].get(0, b"").hex(), v["key_domain_id"])
        expect(f"{name} MSK ID", f["key_ids"].get(1, b"").hex(), v["msk_id"])
        expect(f"{name} MTK ID", f["key_ids"].get(2, b"").hex(), v["mtk_id"])
        expect(f"{name} COUNTER", (f["ts_type"], f["ts"]), (2, v["timestamp"]))
        mac_ok, key_type, _, key, salt = open_kemac(f, h(v["msk"]))
        expect(f"{name} MAC with the MSK", mac_ok, True)
        expect(f"{name} MTK", key.hex(), v["mtk"])
        expect(f"{name} salt", salt.hex() if salt is not None else None, v["salt"])
        expect(f"{name} MKI", (f["key_ids"][1] + f["key_ids"][2]).hex(), v["mki"])
        n += 1
    return n


# --------------------------------------------------------------------------------------- SRTP

def srtp_kdf(master_key, master_salt, label, length, r=0):
    """RFC 3711 clause 4.3.1/4.3.3: AES-CM keystream at IV = ((label || r) XOR master salt) * 2^16."""
    key_id = (label << 48) | r
    x = int.from_bytes(master_salt, "big") ^ key_id
    return aes_cm(master_key, (x << 16).to_bytes(16, "big"), bytes(length))


def srtp_protect(k_e, k_a, k_s, rtp, roc=0, mki=b"", tag_len=10):
    """RFC 3711 clauses 3.1, 4.1.1, 4.2.1 for a header without CSRCs or extension."""
    header, payload = rtp[:12], rtp[12:]
    seq, ssrc = struct.unpack(">H", rtp[2:4])[0], struct.unpack(">I", rtp[8:12])[0]
    index = (roc << 16) | seq
    iv = (int.from_bytes(k_s, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    enc = aes_cm(k_e, iv.to_bytes(16, "big"), payload)
    tag = hmac.new(k_a, header + enc + struct.pack(">I", roc), hashlib.sha1).digest()[:tag_len]
    return header + enc + mki + tag


def check_srtp(doc):
    n = 0
    for v in doc["session_keys"]:
        mk, ms = h(v["master_key"]), h(v["master_salt"])
        for field, label, length in (("srtp_encryption", 0, 16), ("srtp_authentication", 1, 20), ("srtp_salt", 2, 14),
                                     ("srtcp_encryption", 3, 16), ("srtcp_authentication", 4, 20), ("srtcp_salt", 5, 14)):
            expect(f"session key {field}", srtp_kdf(mk, ms, label, length).hex(), v[field])
        n += 1
    libsrtp = None
    try:
        from pylibsrtp import Policy, Session
        libsrtp = (Policy, Session)
    except ImportError:
        pass
    for v in doc["packets"]:
        mk, ms = h(v["master_key"]), h(v["master_salt"])
        keys = [srtp_kdf(mk, ms, label, length) for label, length in ((0, 16), (1, 20), (2, 14))]
        rtp = h(v["rtp"])
        expect(f"SRTP packet {v['name']!r}", srtp_protect(*keys, rtp, mki=h(v["mki"])).hex(), v["srtp"])
        expect(f"SRTP packet {v['name']!r} without MKI", srtp_protect(*keys, rtp).hex(), v["srtp_without_mki"])
        if libsrtp is not None:
            policy_cls, session_cls = libsrtp
            tx = session_cls(policy=policy_cls(key=mk + ms, ssrc_type=policy_cls.SSRC_ANY_OUTBOUND,
                                               srtp_profile=policy_cls.SRTP_PROFILE_AES128_CM_SHA1_80))
            expect(f"SRTP packet {v['name']!r} by libsrtp (no MKI)", tx.protect(rtp).hex(), v["srtp_without_mki"])
        n += 1
    return n, libsrtp is not None


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    load = lambda name: json.load(open(os.path.join(folder, name)))
    print(f"gba_kdf.json: {check_gba_kdf(load('gba_kdf.json'))} vectors")
    print(f"gba_u_autn.json: {check_gba_u_autn(load('gba_u_autn.json'))} vectors")
    print(f"mbms_muk_mrk.json: {check_muk_mrk(load('mbms_muk_mrk.json'))} vectors")
    print(f"mbms_mikey.json: {check_mikey(load('mbms_mikey.json'))} messages")
    count, with_libsrtp = check_srtp(load('srtp.json'))
    print(f"srtp.json: {count} vectors" + (" (packets also through libsrtp)" if with_libsrtp else " (libsrtp not importable)"))
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
