"""libsrtp, through PyPI pylibsrtp, driven one line at a time over stdin/stdout.

Used by srtp/tests/libsrtp.rs. Requests (fields separated by one space, bytes in hex):
  session <id> <suite> <out|in> <window> <key||salt>   create a libsrtp session (ssrc_any_*)
  protect|unprotect|protect_rtcp|unprotect_rtcp <id> <packet>
  version
Each request gets one line back: "ok <hex>", "err <libsrtp message>" or "fail <bad request>".
"""
import sys

import pylibsrtp
from pylibsrtp import Error, Policy, Session

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}

sessions = {}


def handle(fields):
    op = fields[0]
    if op == "version":
        return pylibsrtp.__version__.encode().hex()
    if op == "session":
        sid, suite, direction, window, key = fields[1:6]
        ssrc_type = Policy.SSRC_ANY_OUTBOUND if direction == "out" else Policy.SSRC_ANY_INBOUND
        policy = Policy(key=bytes.fromhex(key), ssrc_type=ssrc_type, srtp_profile=PROFILES[suite])
        policy.window_size = int(window)
        policy.allow_repeat_tx = False
        sessions[sid] = Session(policy=policy)
        return ""
    session = sessions[fields[1]]
    func = {
        "protect": session.protect,
        "unprotect": session.unprotect,
        "protect_rtcp": session.protect_rtcp,
        "unprotect_rtcp": session.unprotect_rtcp,
    }[op]
    return bytes(func(bytes.fromhex(fields[2]))).hex()


for line in sys.stdin:
    try:
        reply = "ok " + handle(line.split())
    except Error as e:
        reply = "err " + str(e)
    except Exception as e:  # a bad request: the Rust side fails the test
        reply = "fail " + repr(e)
    sys.stdout.write(reply + "\n")
    sys.stdout.flush()
