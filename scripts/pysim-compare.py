"""What osmocom pySim-shell reads from the card, compared with values that come from elsewhere.

    pysim-compare.py commands PROFILE                  the pySim-shell commands, one a line
    pysim-compare.py check OUTPUT PROFILE [EXPECT]     compare pySim-shell's OUTPUT of those commands

PROFILE is the TOML the card was personalized from (read here with Python's tomllib, not through
keysim). EXPECT is the JSON tests/pcsc_mbms.rs wrote with what the network side delivered to the
card. Run with the pySim venv's interpreter and PYTHONPATH at the pySim snapshot: where pySim's
record decoder of a file fails, its records are read raw and decoded here with pySim's own TLV
classes of that file.

Exit status 0 when every comparison holds, 1 otherwise (each difference is printed).
"""
import json
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

# Each step: marker, the SELECTs, what the last SELECT must have selected (its FCP: a file
# identifier, or the start of an ADF's AID), and the reads. `echo @@MARKER` splits pySim-shell's
# output; a SELECT that fails leaves the previous file selected, so every block's FCP is checked
# before its reads count. FIDs and AIDs: TS 102 221 §13, TS 31.102 §4.2, TS 31.103 §4.2.
STEPS = [
    ("ICCID", ["select MF", "select EF.ICCID"], ("fid", "2fe2"), ["read_binary_decoded --oneline"]),
    ("USIM", ["select ADF.USIM"], ("aid", "a0000000871002"), []),
    ("IMSI", ["select EF.IMSI"], ("fid", "6f07"), ["read_binary_decoded --oneline"]),
    ("UST", ["select EF.UST"], ("fid", "6f38"), ["read_binary_decoded --oneline"]),
    ("UST_CHECK", [], None, ["ust_service_check"]),
    ("GBABP", ["select EF.GBABP"], ("fid", "6fd6"), ["read_binary_decoded --oneline"]),
    ("MSK", ["select EF.MSK"], ("fid", "6fd7"), ["read_records_decoded --oneline"]),
    ("MUK", ["select EF.MUK"], ("fid", "6fd8"), ["read_records"]),
    ("MUK_DECODED", [], None, ["read_record_decoded --oneline 1"]),
    ("GBANL", ["select EF.GBANL"], ("fid", "6fda"), ["read_records"]),
    ("GBANL_DECODED", [], None, ["read_records_decoded --oneline"]),
    ("ISIM", ["select ADF.ISIM"], ("aid", "a0000000871004"), []),
    ("IMPI", ["select EF.IMPI"], ("fid", "6f02"), ["read_binary_decoded --oneline"]),
    ("DOMAIN", ["select EF.DOMAIN"], ("fid", "6f03"), ["read_binary_decoded --oneline"]),
    ("IMPU", ["select EF.IMPU"], ("fid", "6f04"), ["read_records_decoded --oneline"]),
    ("IST", ["select EF.IST"], ("fid", "6f07"), ["read_binary_decoded --oneline"]),
    ("IST_CHECK", [], None, ["ist_service_check"]),
]

# USIM services that must be available (TS 31.102 §4.2.8): n°33, which pySim's service table
# describes as "shall be set to 1", and the services the test suite's network side uses on this
# card through pcscd: GBA_U bootstrapping and NAF derivation need n°68 (GBA), the MBMS modes of
# AUTHENTICATE n°69 (MBMS security) (TS 31.102 §7.1.2).
REQUIRED_USIM_SERVICES = {33: "shall be set to 1", 68: "GBA", 69: "MBMS security"}

# Files pySim's service tables (pySim/ts_31_102.py, ts_31_103.py) expect for an available service
# and that this card does not have. Each is reported, not failed; a gap that is no longer reported
# fails the check, so this list only ever names real gaps.
KNOWN_SERVICE_GAPS = {
    ("USIM", 68, "EF(EF.GBAUAPI)"): "Access Control to GBA_U_API (TS 31.130), not implemented",
    ("ISIM", 2, "EF(EF.GBAUAPI)"): "Access Control to GBA_U_API (TS 31.130), not implemented",
    ("ISIM", 2, "EF(EF.NAFKCA)"): "NAF Key Centre Address (TS 31.103 §4.2.11), not implemented",
}


def load_profile(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def commands(profile):
    out = ["echo @@PIN1", f"verify_chv {profile['pin1']}"]
    for marker, selects, _, reads in STEPS:
        out += [f"echo @@{marker}", *selects, *reads]
    return out + ["echo @@END", "quit"]


class Output:
    """pySim-shell's output split at the markers."""

    def __init__(self, text):
        self.blocks = {}
        current = None
        for line in text.splitlines():
            if re.fullmatch(r"@@[A-Z0-9_]+", line.strip()):
                current = line.strip()[2:]
                self.blocks[current] = []
            elif current is not None:
                self.blocks[current].append(line.rstrip())

    def lines(self, marker):
        return self.blocks.get(marker)


def json_values(lines):
    """Every JSON value in `lines`: one-line ones and pretty-printed ones (an FCP)."""
    values, i = [], 0
    while i < len(lines):
        if lines[i].startswith(("{", "[")):
            for j in range(i, len(lines)):
                try:
                    values.append(json.loads("\n".join(lines[i : j + 1])))
                    i = j
                    break
                except json.JSONDecodeError:
                    continue
        i += 1
    return values


def raw_records(lines):
    """`read_records` output: {record number: bytes}."""
    records = {}
    for line in lines:
        m = re.fullmatch(r"(\d{3}) ([0-9a-fA-F]+)", line.strip())
        if m:
            records[int(m.group(1))] = bytes.fromhex(m.group(2))
    return records


def service_check(lines):
    """pySim's `ust_service_check` / `ist_service_check` output: (reported count, inconsistencies)
    with each inconsistency as (service or None, file, problem)."""
    service, found, count = None, [], None
    for line in lines:
        m = re.match(r"Checking service No (\d+) \((in)?active\)", line)
        if m:
            service = int(m.group(1))
            continue
        m = re.search(r"ERROR: File (\S+) is (not selectable|selectable) .*", line)
        if m:
            found.append((service, m.group(1), "missing" if m.group(2) == "not selectable" else "present"))
            continue
        if "ERROR:" in line:
            found.append((None, None, line.strip()))
            continue
        m = re.match(r"===> (\d+) service / file inconsistencies detected", line)
        if m:
            count = int(m.group(1))
    return count, found


class Checker:
    def __init__(self, output):
        self.out = output
        self.failures = []
        self.report = []

    def fail(self, what):
        self.failures.append(what)

    def decoded(self, marker):
        """The JSON values of a step's block after its FCP, or None (with a failure) when the
        block is missing or its SELECT did not select the expected file."""
        lines = self.out.lines(marker)
        if lines is None:
            self.fail(f"{marker}: pySim-shell never got there (no @@{marker} in its output)")
            return None
        step = next(s for s in STEPS if s[0] == marker)
        values = json_values(lines)
        if step[2] is None:
            return values
        # One FCP per SELECT, the last one the file's.
        kind, ident = step[2]
        last = len(step[1]) - 1
        fcp = values[last] if len(values) > last and isinstance(values[last], dict) else {}
        got = fcp.get("file_identifier") if kind == "fid" else fcp.get("df_name", "")
        if got is None or (kind == "fid" and got.lower() != ident) or (kind == "aid" and not got.lower().startswith(ident)):
            self.fail(f"{marker}: `{' ; '.join(step[1])}` did not select {ident}: " + " | ".join(lines[:6]))
            return None
        return values[last + 1 :]

    def first(self, marker, what):
        values = self.decoded(marker)
        if values is None:
            return None
        if not values:
            self.fail(f"{marker}: pySim printed no decoded {what}: " + " | ".join(self.out.lines(marker)[-6:]))
            return None
        return values[0]

    def expect_equal(self, name, got, want, source):
        if got != want:
            self.fail(f"{name}: pySim decoded {got!r}, {source} has {want!r}")
        else:
            self.report.append(f"{name}: {got!r}")

    def services(self, app, table_marker, check_marker, required):
        table = self.first(table_marker, f"EF.{'UST' if app == 'USIM' else 'IST'}")
        if table is not None:
            active = sorted(int(n) for n, s in table.items() if s.get("activated"))
            names = {int(n): s.get("description", "?") for n, s in table.items()}
            missing = [f"n°{n} ({what})" for n, what in required.items() if n not in active]
            if missing:
                self.fail(f"{app} service table: {', '.join(missing)} not available; available: {active}")
            self.report.append(
                f"{app} services available: " + ", ".join(f"n°{n} {names[n]}" for n in active)
            )
        if self.decoded(check_marker) is None:
            return
        count, found = service_check(self.out.lines(check_marker))
        if count is None:
            self.fail(f"{app} service check: pySim did not finish it: " + " | ".join(self.out.lines(check_marker)[-6:]))
            return
        if count != len(found):
            self.fail(f"{app} service check: pySim counted {count} inconsistencies, {len(found)} were read: {found}")
        known = {k: v for k, v in KNOWN_SERVICE_GAPS.items() if k[0] == app}
        for service, file, problem in found:
            key = (app, service, file)
            if problem == "missing" and key in known:
                self.report.append(f"{app} service n°{service}: {file} missing (known gap: {known.pop(key)})")
            else:
                self.fail(f"{app} service n°{service}: {file} {problem}, inconsistent with the service table")
        for (_, service, file), why in known.items():
            self.fail(f"{app} service n°{service}: {file} is no longer reported missing; remove it from KNOWN_SERVICE_GAPS ({why})")


def check_profile(c, profile):
    pin = c.out.lines("PIN1")
    if pin is None or not any("CHV verification successful" in line for line in pin):
        c.fail("VERIFY PIN1 with the profile's PIN1 did not succeed: " + " | ".join(pin or []))
    iccid = c.first("ICCID", "EF.ICCID")
    if iccid is not None:
        c.expect_equal("EF.ICCID", iccid.get("iccid"), profile["iccid"], "the profile")
    c.decoded("USIM")
    imsi = c.first("IMSI", "EF.IMSI")
    if imsi is not None:
        c.expect_equal("EF.IMSI", imsi.get("imsi"), profile["imsi"], "the profile")
    c.services("USIM", "UST", "UST_CHECK", REQUIRED_USIM_SERVICES)
    c.decoded("ISIM")
    impi = c.first("IMPI", "EF.IMPI")
    if impi is not None:
        c.expect_equal("ISIM EF.IMPI", impi.get("nai"), profile["impi"], "the profile")
    domain = c.first("DOMAIN", "EF.DOMAIN")
    if domain is not None:
        c.expect_equal("ISIM EF.DOMAIN", domain.get("domain"), profile["home_domain"], "the profile")
    impu = c.first("IMPU", "EF.IMPU")
    if impu is not None:
        # Unused records decode as an empty IMPU.
        used = [r.get("impu") for r in impu if r and r.get("impu")]
        c.expect_equal("ISIM EF.IMPU", used, list(profile["impu"]), "the profile")
    c.services("ISIM", "IST", "IST_CHECK", {})


def check_mbms(c, expect):
    from osmocom.tlv import TLV_IE_Collection, bertlv_parse_one
    from pySim.ts_31_102 import EF_GBANL, EF_MUK

    gbabp = c.first("GBABP", "EF.GBABP")
    if gbabp is not None:
        c.expect_equal("EF.GBABP", gbabp, expect["gbabp"], "the network")

    msk = c.first("MSK", "EF.MSK records")
    if msk is not None:
        used = [r for r in msk if r and r.get("num_msk_id") not in (0, 255)]
        key = lambda r: (r["key_domain_id"], [p["msk_id"] for p in r["msk_ids"]])
        c.expect_equal("EF.MSK", sorted(used, key=key), sorted(expect["msk"], key=key), "the network")

    # EF.MUK: pySim's own TLV classes for the MUK ID (A0 { 80 IDr, 82 IDi }); its Time Stamp
    # Counter (81) class has no codec (pySim 597f1e0's record decoder raises NotImplementedError),
    # so that TLV goes through pySim's BER-TLV parser.
    if c.decoded("MUK") is not None:
        muk = []
        for n, record in sorted(raw_records(c.out.lines("MUK")).items()):
            if record[:1] == b"\xff":
                continue
            muk_id = EF_MUK.MUK_ID()
            _, rest = muk_id.from_tlv(record)
            fields = {k: v.hex() if isinstance(v, (bytes, bytearray)) else v
                      for d in muk_id.to_dict()["muk_id"] for k, v in d.items()}
            tag, _, value, _ = bertlv_parse_one(rest)
            if (tag["class"], tag["constructed"], tag["tag"]) != (2, False, 1):
                c.fail(f"EF.MUK record {n}: no Time Stamp Counter (81) after the MUK ID: {rest.hex()}")
            muk.append({"muk_idr": fields.get("muk__idr"), "muk_idi": fields.get("muk__idi"),
                        "time_stamp_counter": value.hex()})
        c.expect_equal("EF.MUK", muk, expect["muk"], "the network")
        own = "decodes" if c.decoded("MUK_DECODED") else "fails on"
        c.report.append(f"  (pySim's own EF_MUK record decoder {own} it)")

    # EF.GBANL: pySim 597f1e0's USIM record decoder wraps the record's TLVs in a BER-TLV object
    # without a tag and fails on every record ("EF_GBANL_Collection(None): Encountered tag 128
    # doesn't match our supported tag None"). The raw records go through pySim's own TLV classes
    # of that file, NAF_ID (80) and B_TID (81), in a TLV collection as pySim's ISIM EF.GBANL uses.
    class GbanlRecord(TLV_IE_Collection, nested=[EF_GBANL.NAF_ID, EF_GBANL.B_TID]):
        pass

    if c.decoded("GBANL") is not None:
        gbanl = []
        for n, record in sorted(raw_records(c.out.lines("GBANL")).items()):
            if record[:1] == b"\xff":
                continue
            decoded = GbanlRecord()
            decoded.from_tlv(record)
            fields = [(k, v) for d in decoded.to_dict() for k, v in d.items()]
            if [k for k, _ in fields] != ["naf_id", "b_tid"]:
                c.fail(f"EF.GBANL record {n}: expected NAF_Id (80) then B-TID (81), pySim read {fields}")
                continue
            gbanl.append({k: v.hex() for k, v in fields})
        key = lambda r: (r["naf_id"], r["b_tid"])
        c.expect_equal("EF.GBANL", sorted(gbanl, key=key), sorted(expect["gbanl"], key=key), "the network")
        own = "decodes" if c.decoded("GBANL_DECODED") else "fails on"
        c.report.append(f"  (pySim's own EF_GBANL record decoder {own} it)")


def main(argv):
    if len(argv) == 3 and argv[1] == "commands":
        print("\n".join(commands(load_profile(argv[2]))))
        return 0
    if len(argv) not in (4, 5) or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2]) as f:
        c = Checker(Output(f.read()))
    check_profile(c, load_profile(argv[3]))
    if "END" not in c.out.blocks:
        c.fail("pySim-shell stopped before the last command (no @@END in its output)")
    profile_ok = not c.failures
    profile_report, c.report = c.report, []
    mbms_ok = None
    if len(argv) == 5:
        with open(argv[4]) as f:
            expect = json.load(f)
        before = len(c.failures)
        check_mbms(c, expect)
        mbms_ok = len(c.failures) == before
    for line in profile_report + c.report:
        print(f"  {line}")
    for line in c.failures:
        print(f"  DIFFERS: {line}")
    if profile_ok:
        required = ", ".join(f"n°{n}" for n in REQUIRED_USIM_SERVICES)
        print("pySim check passed: EF.ICCID, EF.IMSI and the ISIM's EF.IMPI, EF.DOMAIN, EF.IMPU as pySim "
              f"decodes them equal the card profile; EF.UST offers {required}; pySim's service checks of "
              f"EF.UST and EF.IST find no inconsistency but the {len(KNOWN_SERVICE_GAPS)} known gaps above")
    if mbms_ok:
        print("pySim check passed for the MBMS files: EF.GBABP, EF.MSK, EF.MUK and EF.GBANL as pySim "
              "decodes them equal what the network delivered")
    return 0 if not c.failures else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
