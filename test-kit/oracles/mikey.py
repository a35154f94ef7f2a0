# MIKEY for the MBMS profile, written independently of the Rust code: the PRF of RFC 3830
# §4.1.2 (and its HMAC-SHA-256 variant of RFC 6043), the transport keys of §4.1.4, the HMAC-SHA-1
# MAC and AES-CM of the KEMAC, payloads parsed by hand.
#
#   prf                 stdin lines `sha1|sha256 KEY LABEL OUTLEN`, hex: one output line each
#   open PSK MSG        mac_ok=… then per key key=… type=… kv=… salt=… kvdata=… next=…,
#                       keyid=… per Key ID, ids=hex(IDi),hex(IDr), csb=… v=… ts=… plain_len=…
#   ver PSK INIT VER    ver_ok=… dtype=… t_same=… csb_same=… of a verification message
import sys, hmac, hashlib, subprocess

def P(s, label, m, h):
    out, a = b'', label
    for _ in range(m):
        a = hmac.new(s, a, h).digest()
        out += hmac.new(s, a + label, h).digest()
    return out

def prf(inkey, label, outlen, h):
    m = -(-outlen // h().digest_size)
    res = bytearray(outlen)
    for i in range(0, len(inkey), 32):
        p = P(inkey[i:i + 32], label, m, h)
        for j in range(outlen):
            res[j] ^= p[j]
    return bytes(res)

def aes_ctr(key, iv, data):
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        e = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        return e.update(data) + e.finalize()
    except ImportError:
        r = subprocess.run(['openssl', 'enc', '-aes-128-ctr', '-K', key.hex(), '-iv', iv.hex(), '-nosalt'],
                           input=data, capture_output=True, check=True)
        return r.stdout

def u16(b, i): return int.from_bytes(b[i:i + 2], 'big')

def parse(msg):
    assert msg[0] == 1, 'version'
    dtype, nxt, vprf = msg[1], msg[2], msg[3]
    csb, ncs, maptype = int.from_bytes(msg[4:8], 'big'), msg[8], msg[9]
    pos = 10 + (9 * ncs if maptype == 0 else 0)
    assert maptype in (0, 1), 'map type'
    pl = []
    while nxt != 0:
        t, nxt = nxt, msg[pos]
        if t == 1:
            ea, l = msg[pos + 1], u16(msg, pos + 2)
            ed, ma = msg[pos + 4:pos + 4 + l], msg[pos + 4 + l]
            ml = 20 if ma == 1 else 0
            pl.append(('KEMAC', (ea, ed, ma, msg[pos + 5 + l:pos + 5 + l + ml])))
            pos += 5 + l + ml
        elif t == 5:
            n = 4 if msg[pos + 1] == 2 else 8
            pl.append(('T', msg[pos + 2:pos + 2 + n])); pos += 2 + n
        elif t == 11:
            l = msg[pos + 1]; pl.append(('RAND', msg[pos + 2:pos + 2 + l])); pos += 2 + l
        elif t == 6:
            l = u16(msg, pos + 2); pl.append(('ID', msg[pos + 4:pos + 4 + l])); pos += 4 + l
        elif t == 21:
            l = u16(msg, pos + 2); pl.append(('EXT', (msg[pos + 1], msg[pos + 4:pos + 4 + l]))); pos += 4 + l
        elif t == 10:
            pos += 5 + u16(msg, pos + 3); pl.append(('SP', None))
        elif t == 9:
            pl.append(('V', msg[pos + 2:pos + 22])); pos += 22
        else:
            raise Exception('payload %d' % t)
    assert pos == len(msg), 'length'
    return dict(dtype=dtype, v=vprf >> 7, csb=csb, pl=pl)

def get(p, name): return [v for (n, v) in p['pl'] if n == name]

def keys(psk, csb, rand):
    lab = lambda c: c.to_bytes(4, 'big') + b'\xff' + csb.to_bytes(4, 'big') + rand
    return [prf(psk, lab(c), n, hashlib.sha1) for c, n in ((0x150533E1, 16), (0x2D22AC75, 20), (0x29B88916, 14))]

mode = sys.argv[1]
if mode == 'prf':
    for line in sys.stdin:
        h, k, lab, n = line.split()
        h = hashlib.sha1 if h == 'sha1' else hashlib.sha256
        print(prf(bytes.fromhex(k), bytes.fromhex(lab), int(n), h).hex())
elif mode == 'open':
    psk, raw = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
    p = parse(raw)
    rand = (get(p, 'RAND') or [b''])[0]
    t = get(p, 'T')[0]
    ea, ed, ma, mac = get(p, 'KEMAC')[0]
    ek, ak, sk = keys(psk, p['csb'], rand)
    print('mac_ok=%d' % hmac.compare_digest(hmac.new(ak, raw[:-20], hashlib.sha1).digest(), mac))
    x = bytes(2) + p['csb'].to_bytes(4, 'big') + int.from_bytes(t, 'big').to_bytes(8, 'big')
    plain = aes_ctr(ek, bytes(a ^ b for a, b in zip(sk, x)) + bytes(2), ed)
    pos = 0
    while pos < len(plain):
        nxt, typ, kv = plain[pos], plain[pos + 1] >> 4, plain[pos + 1] & 15
        kl = u16(plain, pos + 2); key = plain[pos + 4:pos + 4 + kl]; pos += 4 + kl
        salt = b''
        if typ in (1, 3):
            sl = u16(plain, pos); salt = plain[pos + 2:pos + 2 + sl]; pos += 2 + sl
        kvd = b''
        if kv == 1:
            kvd = plain[pos:pos + 1 + plain[pos]]; pos += len(kvd)
        elif kv == 2:
            l1 = plain[pos]; l2 = plain[pos + 1 + l1]; kvd = plain[pos:pos + 2 + l1 + l2]; pos += len(kvd)
        print('key=%s type=%d kv=%d salt=%s kvdata=%s next=%d' % (key.hex(), typ, kv, salt.hex(), kvd.hex(), nxt))
    for et, d in get(p, 'EXT'):
        i = 0
        while i < len(d):
            print('keyid=%d:%d:%s' % (et, d[i], d[i + 2:i + 2 + d[i + 1]].hex())); i += 2 + d[i + 1]
    print('ids=%s' % ','.join(x.hex() for x in get(p, 'ID')))
    print('csb=%d v=%d ts=%s plain_len=%d' % (p['csb'], p['v'], t.hex(), len(plain)))
elif mode == 'ver':
    psk, init = bytes.fromhex(sys.argv[2]), parse(bytes.fromhex(sys.argv[3]))
    raw = bytes.fromhex(sys.argv[4]); ver = parse(raw)
    ids, t = get(init, 'ID'), get(init, 'T')[0]
    ek, ak, sk = keys(psk, init['csb'], get(init, 'RAND')[0])
    mac = hmac.new(ak, raw[:-20] + ids[0] + ids[1] + t, hashlib.sha1).digest()
    print('ver_ok=%d dtype=%d t_same=%d csb_same=%d' % (hmac.compare_digest(mac, get(ver, 'V')[0]), ver['dtype'],
          get(ver, 'T')[0] == t, ver['csb'] == init['csb']))
