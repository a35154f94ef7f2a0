# HTTP Digest of RFC 2617 §3.2.2 / §3.2.3, written independently of the Rust code: the
# auth-params parsed from the raw header text with a regular expression of its own.
#
#   response AUTH PWHEX METHOD BODYHEX   the request-digest of an Authorization header
#   rspauth AUTH PWHEX BODYHEX           the rspauth of the answer to that request
import hashlib, re, sys
def params(h):
    h = re.sub(r'^\s*Digest\s+', '', h)
    out = {}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))', h):
        v = re.sub(r'\\(.)', r'\1', m.group(2)) if m.group(2) is not None else m.group(3)
        out[m.group(1).lower()] = v
    return out
H = lambda b: hashlib.md5(b).hexdigest()
def digest(p, pw, method, body):
    ha1 = H(p['username'].encode() + b':' + p['realm'].encode() + b':' + pw)
    a2 = method + ':' + p['uri']
    if p.get('qop') == 'auth-int':
        a2 += ':' + H(body)
    ha2 = H(a2.encode())
    if 'qop' in p:
        return H(':'.join([ha1, p['nonce'], p['nc'], p['cnonce'], p['qop'], ha2]).encode())
    return H(':'.join([ha1, p['nonce'], ha2]).encode())
mode, auth, pw = sys.argv[1], params(sys.argv[2]), bytes.fromhex(sys.argv[3])
if mode == 'response':
    print(digest(auth, pw, sys.argv[4], bytes.fromhex(sys.argv[5])))
else:
    print(digest(auth, pw, '', bytes.fromhex(sys.argv[4])))
