#!/usr/bin/env python3
"""Independent builder of the MIKEY MBMS vectors used by src/tests/mikey_vectors.rs.

Written from RFC 3830 (§4.1.2 PRF, §4.1.4 transport keys, §4.2.3 AES-CM IV, §5.2 MAC coverage,
§6 payload layouts) and RFC 4563 (Key ID extension, empty CS ID map), with the MBMS choices of
uicc-applet's profile (MSK as a TGK key data, IDi a URI, IDr an NAI). It shares no code with the
project: Python's hmac/hashlib and the `cryptography` AES only. Run it to print the vectors:

    python3 uicc-applet/testdata/mikey_vectors.py
"""
import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Spec digest §8.2: Ks_int_NAF for bmsc.example.org || 01 00 00 00 01 = the MUK.
MUK = bytes.fromhex("528d966e28f446754cddd71f235195aeefed207477908292b44ac2372cb51cb9")
IDI = b"bmsc.example.org"
IDR = b"I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org"
KDI = bytes.fromhex("00f110")


def prf(inkey, label, outlen):
    """RFC 3830 §4.1.2, MIKEY-1 (HMAC-SHA-1)."""
    chunks = [inkey[i:i + 32] for i in range(0, len(inkey), 32)]
    m = -(-outlen * 8 // 160)
    out = bytes(outlen)
    for s in chunks:
        a, p = label, b""
        for _ in range(m):
            a = hmac.new(s, a, hashlib.sha1).digest()
            p += hmac.new(s, a + label, hashlib.sha1).digest()
        out = bytes(x ^ y for x, y in zip(out, p[:outlen]))
    return out


def transport_keys(psk, csb_id, rand):
    """RFC 3830 §4.1.4: label = constant || 0xFF || CSB ID || RAND."""
    lab = lambda c: c.to_bytes(4, "big") + b"\xff" + csb_id.to_bytes(4, "big") + rand
    return prf(psk, lab(0x150533E1), 16), prf(psk, lab(0x2D22AC75), 20), prf(psk, lab(0x29B88916), 14)


def aes_cm(key, salt, csb_id, t64, data):
    """RFC 3830 §4.2.3: IV = (S xor (0x0000 || CSB ID || T)) || 0x0000."""
    x = b"\x00\x00" + csb_id.to_bytes(4, "big") + t64.to_bytes(8, "big")
    iv = bytes(a ^ b for a, b in zip(salt, x)) + b"\x00\x00"
    e = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return e.update(data) + e.finalize()


def chain(hdr_fields, payloads):
    """Concatenate HDR and payloads, each payload's first byte = type of the next one."""
    types = [t for t, _ in payloads] + [0]
    version, data_type, vprf, csb_id, cs_map = hdr_fields
    out = bytes([version, data_type, types[0], vprf]) + csb_id.to_bytes(4, "big") + cs_map
    for i, (_, body) in enumerate(payloads):
        out += bytes([types[i + 1]]) + body
    return out


def key_ids(items):
    body = b"".join(bytes([t, len(v)]) + v for t, v in items)
    return bytes([3]) + len(body).to_bytes(2, "big") + body  # General Extension type 3 (RFC 4563)


def kemac_message(hdr_fields, payloads, keys, csb_id, t64, key_data):
    encr_key, auth_key, salt_key = keys
    encrypted = aes_cm(encr_key, salt_key, csb_id, t64, key_data) if key_data else b""
    kemac_head = bytes([1]) + len(encrypted).to_bytes(2, "big") + encrypted + bytes([1])  # AES-CM, HMAC-SHA-1-160
    msg = chain(hdr_fields, payloads + [(1, kemac_head)])
    return msg + hmac.new(auth_key, msg, hashlib.sha1).digest()


def msk_message(csb_id, v, ntp64, rand, msk_id, msk):
    keys = transport_keys(MUK, csb_id, rand)
    payloads = [
        (21, key_ids([(0, KDI), (1, msk_id.to_bytes(4, "big"))])),
        (5, bytes([0]) + ntp64.to_bytes(8, "big")),  # T, NTP-UTC
        (11, bytes([len(rand)]) + rand),
        (6, bytes([1]) + len(IDI).to_bytes(2, "big") + IDI),  # IDi, URI
        (6, bytes([0]) + len(IDR).to_bytes(2, "big") + IDR),  # IDr, NAI
    ]
    key_data = bytes([0, 0x00]) + len(msk).to_bytes(2, "big") + msk if msk else b""  # TGK, KV null
    hdr = (1, 0, (0x80 if v else 0) | 0, csb_id, b"\x00\x01")  # PSK init, #CS 0, empty map
    return kemac_message(hdr, payloads, keys, csb_id, ntp64, key_data)


def verification_message(csb_id, ntp64, rand):
    """RFC 3830 §5.2/§6.9: HDR (PSK ver msg), T (copied), IDr, V; MAC over the message up to the
    V payload's auth alg byte, followed by IDi || IDr || T value."""
    _, auth_key, _ = transport_keys(MUK, csb_id, rand)
    payloads = [
        (5, bytes([0]) + ntp64.to_bytes(8, "big")),
        (6, bytes([0]) + len(IDR).to_bytes(2, "big") + IDR),
        (9, bytes([1])),  # V, HMAC-SHA-1-160
    ]
    msg = chain((1, 1, 0, csb_id, b"\x00\x01"), payloads)
    return msg + hmac.new(auth_key, msg + IDI + IDR + ntp64.to_bytes(8, "big"), hashlib.sha1).digest()


def mtk_message(csb_id, msk, msk_id, mtk_id, counter, mtk, salt):
    keys = transport_keys(msk, csb_id, b"")
    payloads = [
        (21, key_ids([(0, KDI), (1, msk_id.to_bytes(4, "big")), (2, mtk_id.to_bytes(2, "big"))])),
        (5, bytes([2]) + counter.to_bytes(4, "big")),  # T, COUNTER
    ]
    key_data = bytes([0, 0x10]) + len(mtk).to_bytes(2, "big") + mtk + len(salt).to_bytes(2, "big") + salt
    hdr = (1, 0, 0, csb_id, b"\x00\x01")
    return kemac_message(hdr, payloads, keys, csb_id, counter, key_data)


NTP_2026 = (1767225600 + 2208988800) << 32
MSK = bytes(range(0x40, 0x50))
MTK = bytes(range(0x60, 0x70))
SALT = bytes(range(0x80, 0x8E))
print("MSK_MESSAGE", msk_message(0x00010000, True, NTP_2026 | 1, bytes(range(16)), 0x00010005, MSK).hex())
print("VERIFICATION", verification_message(0x00010000, NTP_2026 | 1, bytes(range(16))).hex())
print("MTK_MESSAGE", mtk_message(0x00010005, MSK, 0x00010005, 0x0001, 7, MTK, SALT).hex())
print("SOLICITED_PULL", msk_message(0x00010000, False, NTP_2026 | 2, bytes(range(16, 32)), 0x00010000, b"").hex())
