#!/usr/bin/env python3
"""An independent reader of MIKEY-TICKET (RFC 6043) Ticket Transfer messages carrying the 3GPP
ticket (TS 33.328 §6.2.3; ticket data laid out as the MIKEY base ticket of RFC 6043 Appendix A,
without THDR), written from the RFC text with hmac/hashlib and the `cryptography` AES-CTR.

  ticket_vectors.py transfer <TPK hex> <TRANSFER_INIT hex> <TRANSFER_RESP hex>
      opens the ticket with the TPK (Appendix A.2.1), checks its MAC, decrypts MPK and TGK, derives
      MPKi / MPKr (A.2.2), checks the TRANSFER_INIT MAC (§5.5: without the Initiator Data, then
      IDRi || IDRr) and the Initiator Data Vi / Vr (§6.10), forks MPKr and TGK with the
      TRANSFER_RESP's (IDRr, RANDRkms) (§5.1.1), checks the TRANSFER_RESP MAC (over
      TRANSFER_RESP || TRANSFER_INIT) and prints TEK and salt of crypto sessions 1 and 2 (§5.1.3).

  ticket_vectors.py exchange <PSK hex> <INIT hex> <RESP hex>
      checks a REQUEST_INIT_PSK / REQUEST_RESP or RESOLVE_INIT_PSK / RESOLVE_RESP pair (§4.2.1,
      §4.2.3): the initial MAC (over INIT || Identity_i|r || Identity_kms) with keys from the PSK
      and RANDRi or RANDRr (§5.1.2, role 0x01), the response MAC (over RESP || INIT, role 0x02), and
      prints the keys of the decrypted KEMAC in order.

  ticket_vectors.py issue <TPK hex> <MPK hex> <TGK hex> <RAND hex> <NTP hex> <TP-data hex> <flags hex>
      builds a TICKET payload body (without its next-payload byte) the other way round and prints it.
"""
import hashlib
import hmac
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ENCR, AUTH, SALT = 0x150533E1, 0x2D22AC75, 0x29B88916  # RFC 3830 §4.1.4
TEK, TGK_SALT = 0x2AD01C64, 0x39A2C14B  # RFC 3830 §4.1.3
MPKI, MPKR = 0x220E99A2, 0x1F4D675B  # RFC 6043 Table A.1
MPKR_FORK, TGK_FORK = 0x2B288856, 0x1512B54A  # RFC 6043 Table 5.1
NO_CSB = b'\xff\xff\xff\xff'


def P(s, label, m):
    out, a = b'', label
    for _ in range(m):
        a = hmac.new(s, a, hashlib.sha1).digest()
        out += hmac.new(s, a + label, hashlib.sha1).digest()
    return out


def prf(inkey, label, n):
    m = -(-n // 20)
    res = bytearray(n)
    for i in range(0, len(inkey), 32):
        p = P(inkey[i:i + 32], label, m)
        for j in range(n):
            res[j] ^= p[j]
    return bytes(res)


def c32(v):
    return v.to_bytes(4, 'big')


def keys(inkey, tail):
    return prf(inkey, c32(ENCR) + tail, 16), prf(inkey, c32(AUTH) + tail, 20), prf(inkey, c32(SALT) + tail, 14)


def aes_cm(encr, salt, csb, t, data):
    x = b'\0\0' + csb + t
    iv = bytes(a ^ b for a, b in zip(salt, x)) + b'\0\0'
    e = Cipher(algorithms.AES(encr), modes.CTR(iv)).encryptor()
    return e.update(data) + e.finalize()


def u16(b, i):
    return int.from_bytes(b[i:i + 2], 'big')


def chain(b, nxt, pos, end):
    """Walks a payload chain; returns [(type, start, end, fields)]; start is the next-payload byte."""
    out = []
    while nxt != 0:
        t, start, nxt = nxt, pos, b[pos]
        if t == 1:  # KEMAC
            l = u16(b, pos + 2)
            ea, ed = b[pos + 1], b[pos + 4:pos + 4 + l]
            ma = b[pos + 4 + l]
            pos += 5 + l + (20 if ma == 1 else 0)
            f = (ea, ed)
        elif t == 5:  # T
            n = 4 if b[pos + 1] in (2, 3) else 8
            f = b[pos + 2:pos + 2 + n]
            pos += 2 + n
        elif t == 9:  # V
            f = b[pos + 2:pos + 22]
            pos += 22
        elif t == 11:  # RAND
            l = b[pos + 1]
            f = b[pos + 2:pos + 2 + l]
            pos += 2 + l
        elif t == 13:  # TR
            n = 4 if b[pos + 2] in (2, 3) else 8
            f = (b[pos + 1], b[pos + 3:pos + 3 + n])
            pos += 3 + n
        elif t == 14:  # IDR
            l = u16(b, pos + 3)
            f = (b[pos + 1], b[pos + 5:pos + 5 + l])
            pos += 5 + l
        elif t == 15:  # RANDR
            l = b[pos + 2]
            f = (b[pos + 1], b[pos + 3:pos + 3 + l])
            pos += 3 + l
        elif t == 10:  # SP
            f = (b[pos + 1], b[pos + 2], b[pos + 5:pos + 5 + u16(b, pos + 3)])
            pos += 5 + u16(b, pos + 3)
        elif t == 16:  # TP
            tp = u16(b, pos + 8)
            f = dict(policy=b[pos + 1:pos + 8], tp=b[pos + 10:pos + 10 + tp])
            pos += 10 + tp
        elif t == 17:  # TICKET
            p = pos + 1
            policy_start = p
            p += 7
            tp = u16(b, p)
            p += 2 + tp
            td = u16(b, p)
            data_start = p + 2
            p += 2 + td
            idl = u16(b, p)
            f = dict(policy=b[policy_start:policy_start + 7], tp=b[policy_start + 9:policy_start + 9 + tp],
                     data=b[data_start:data_start + td], data_end=data_start + td, init_len_at=p,
                     init=b[p + 2:p + 2 + idl])
            pos = p + 2 + idl
        else:
            raise ValueError('payload %d not expected here' % t)
        out.append((t, start, pos, f))
    assert pos == end, 'trailing bytes'
    return out


def message(b):
    assert b[0] == 1
    dtype, nxt, csb, ncs, maptype = b[1], b[2], b[4:8], b[8], b[9]
    pos = 10
    if maptype == 2:
        for _ in range(ncs):
            np = b[pos + 2] & 0x7f
            pos += 3 + np
            pos += 2 + u16(b, pos)
            pos += 1 + b[pos]
    return dtype, csb, chain(b, nxt, pos, len(b))


def find(pl, t, role=None):
    for (tt, s, e, f) in pl:
        if tt == t and (role is None or f[0] == role):
            return (s, e, f)
    raise KeyError(t)


def key_data(plain):
    out, pos = [], 0
    while pos < len(plain):
        nxt, tkv = plain[pos], plain[pos + 1]
        kt, kv = tkv >> 4, tkv & 15
        l = u16(plain, pos + 2)
        key = plain[pos + 4:pos + 4 + l]
        pos += 4 + l
        if kt in (1, 3, 5):
            pos += 2 + u16(plain, pos)
        if kv == 1:
            pos += 1 + plain[pos]
        out.append((kt, key))
        if nxt == 0:
            break
    return out


def transfer(tpk, ti, tr):
    dt, csb, pl = message(ti)
    assert dt == 14, 'TRANSFER_INIT'
    _, _, (_, randri) = find(pl, 15, 1)
    _, _, (_, idri) = find(pl, 14, 1)
    _, _, (_, idrr) = find(pl, 14, 2)
    ts, te, tk = find(pl, 17)
    pol = tk['policy']
    assert pol[:4] == b'\x00\x02\x00\x00', 'ticket type 2 / subtype 0 / version 0'
    flags = int.from_bytes(pol[4:7], 'big')
    assert (pol[4] >> 1) == 0, 'PRF HMAC-SHA-1'
    i_flag, g_flag, h_flag = bool(pol[5] & 0x08), bool(pol[5] & 0x20), bool(pol[5] & 0x10)
    # Ticket Data: T, RAND, KEMAC, IDRpsk, V (Appendix A.1).
    data = tk['data']
    dpl = chain(data, data[0], 1, len(data))
    _, _, t = find(dpl, 5)
    _, _, rand = find(dpl, 11)
    _, _, (ea, ed) = find(dpl, 1)
    _, _, tmac = find(dpl, 9)
    tail = b'\xff' + NO_CSB + b'\x05' + bytes([len(rand)]) + rand
    e, a, s = keys(tpk, tail)
    covered = ti[ts + 1:tk['data_end'] - 20]
    assert hmac.compare_digest(hmac.new(a, covered, hashlib.sha1).digest(), tmac), 'ticket MAC'
    kd = dict(key_data(aes_cm(e, s, NO_CSB, t, ed)))
    mpk, tgk = kd[6], kd[0]
    mt = b'\xff' + NO_CSB + b'\x06' + bytes([len(rand)]) + rand
    mpki, mpkr = prf(mpk, c32(MPKI) + mt, len(mpk)), prf(mpk, c32(MPKR) + mt, len(mpk))
    # TRANSFER_INIT MAC (§5.5): without the Initiator Data length and data, then IDRi || IDRr.
    _, _, vmac = find(pl, 9)
    il = tk['init_len_at']
    covered = ti[:il] + ti[il + 2 + len(tk['init']):len(ti) - 20]
    _, a, _ = keys(mpki, b'\xff' + csb + b'\x01' + bytes([len(randri)]) + randri + b'\x00')
    assert hmac.compare_digest(hmac.new(a, covered + idri + idrr, hashlib.sha1).digest(), vmac), 'TRANSFER_INIT MAC'
    if i_flag:
        init = tk['init']
        assert len(init) == 45 and init[0] == 9 and init[1] == 9 and init[23] == 0
        assert init[3:23] == vmac, 'Vi'
        _, a, _ = keys(mpkr, b'\xff' + NO_CSB + b'\x04')
        assert hmac.compare_digest(hmac.new(a, init[:-20], hashlib.sha1).digest(), init[-20:]), 'Vr'
    dt, csb2, rpl = message(tr)
    assert dt == 15 and csb2 == csb, 'TRANSFER_RESP'
    _, _, (_, resp_id) = find(rpl, 14, 2)
    randrr = find(rpl, 15, 2)[2][1] if g_flag else b''
    if i_flag:
        _, _, (_, randrkms) = find(rpl, 15, 3)
        mod = b'\xff' + NO_CSB + b'\x00' + len(resp_id).to_bytes(2, 'big') + resp_id + bytes([len(randrkms)]) + randrkms
        mpkr = prf(mpkr, c32(MPKR_FORK) + mod, len(mpkr))
        tgk = prf(tgk, c32(TGK_FORK) + mod, len(tgk))
    else:
        mpkr = mpki
    _, _, (policy_no, prot, params) = find(rpl, 10)
    assert (policy_no, prot) == (0, 0), 'one SRTP policy'
    _, _, rmac = find(rpl, 9)
    _, a, _ = keys(mpkr, b'\xff' + csb + b'\x02' + bytes([len(randri)]) + randri + bytes([len(randrr)]) + randrr)
    assert hmac.compare_digest(hmac.new(a, tr[:-20] + ti, hashlib.sha1).digest(), rmac), 'TRANSFER_RESP MAC'
    ri = randri if h_flag else b''
    out = []
    for cs in (1, 2):
        lab = bytes([cs]) + NO_CSB + b'\x03' + bytes([len(ri)]) + ri + bytes([len(randrr)]) + randrr
        out += [prf(tgk, c32(TEK) + lab, 16).hex(), prf(tgk, c32(TGK_SALT) + lab, 14).hex()]
    print(' '.join(out))


def exchange(psk, init, resp):
    dt, csb, pl = message(init)
    assert dt in (11, 16), 'REQUEST_INIT_PSK or RESOLVE_INIT_PSK'
    if dt == 11:
        ri, rr, who = find(pl, 15, 1)[2][1], b'', find(pl, 14, 1)[2][1]
    else:
        ri, rr, who = b'', find(pl, 15, 2)[2][1], find(pl, 14, 2)[2][1]
    kms = find(pl, 14, 3)[2][1]
    tail = bytes([len(ri)]) + ri + bytes([len(rr)]) + rr
    _, a, _ = keys(psk, b'\xff' + csb + b'\x01' + tail)
    assert hmac.compare_digest(hmac.new(a, init[:-20] + who + kms, hashlib.sha1).digest(), init[-20:]), 'INIT MAC'
    rdt, rcsb, rpl = message(resp)
    assert rdt == {11: 13, 16: 18}[dt] and rcsb == csb, 'response type / CSB ID'
    e, a, s = keys(psk, b'\xff' + csb + b'\x02' + tail)
    assert hmac.compare_digest(hmac.new(a, resp[:-20] + init, hashlib.sha1).digest(), resp[-20:]), 'RESP MAC'
    _, _, t = find(rpl, 5)
    _, _, (ea, ed) = find(rpl, 1)
    assert ea == 1, 'AES-CM-128'
    print(' '.join(k.hex() for _, k in key_data(aes_cm(e, s, csb, t, ed))))


def issue(tpk, mpk, tgk, rand, t, tp, flags):
    tail = b'\xff' + NO_CSB + b'\x05' + bytes([len(rand)]) + rand
    e, a, s = keys(tpk, tail)
    kd = bytes([20, 0x60]) + len(mpk).to_bytes(2, 'big') + mpk
    kd += bytes([0, 0x01]) + len(tgk).to_bytes(2, 'big') + tgk + b'\x01\x03'
    enc = aes_cm(e, s, NO_CSB, t, kd)
    # Ticket Data chain: first payload T(5); T -> RAND(11) -> KEMAC(1) -> IDR(14) -> V(9).
    psk_id = b'python-tpk'
    data = bytes([5]) + bytes([11, 0]) + t
    data += bytes([1, len(rand)]) + rand
    data += bytes([14, 1]) + len(enc).to_bytes(2, 'big') + enc + b'\x00'
    data += bytes([9, 4, 2]) + len(psk_id).to_bytes(2, 'big') + psk_id
    data += bytes([0, 1])
    head = b'\x00\x02\x00\x00' + flags + len(tp).to_bytes(2, 'big') + tp + len(data + bytes(20)).to_bytes(2, 'big')
    mac = hmac.new(a, head + data, hashlib.sha1).digest()
    print((head + data + mac + b'\x00\x00').hex())


if __name__ == '__main__':
    cmd, args = sys.argv[1], [bytes.fromhex(x) for x in sys.argv[2:]]
    if cmd == 'transfer':
        transfer(*args)
    elif cmd == 'exchange':
        exchange(*args)
    elif cmd == 'issue':
        issue(*args)
    else:
        raise SystemExit('usage: see the module docstring')
