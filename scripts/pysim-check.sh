#!/usr/bin/env bash
# osmocom pySim-shell against the card in reader 0 of the current pcscd (PCSCLITE_CSOCK_NAME):
# it must start on the card, verify PIN1, select ADF.USIM and EF.IMSI, and decode the IMSI of the profile.
# pySim is published on neither PyPI nor Debian: clone it into $PYSIM_DIR (default /opt/pysim) to
# run this check; its Python dependencies come from PyPI into target/pysim-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYSIM_DIR=${PYSIM_DIR:-/opt/pysim}
profile_field() { target/debug/keysim profile show --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
EXPECT_IMSI=${EXPECT_IMSI:-$(profile_field imsi)}
PIN1=${PIN1:-$(profile_field pin1)}

if [ ! -f "$PYSIM_DIR/pySim-shell.py" ]; then
  echo "pySim check SKIPPED: no pySim-shell.py in $PYSIM_DIR (set PYSIM_DIR to an osmocom pySim checkout)"
  exit 0
fi

venv=target/pysim-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import smartcard, cmd2, construct, smpp.pdu' 2>/dev/null; then
  echo "setting up $venv for pySim (PyPI)"
  python3 -m venv "$venv"
  grep -v '^git+\|@ git+' "$PYSIM_DIR/requirements.txt" > "$venv/requirements.txt"
  printf 'asn1tools\nsmpp.pdu3\n' >> "$venv/requirements.txt"
  "$venv/bin/pip" install -q -r "$venv/requirements.txt"
fi

out=$(mktemp)
set +e
(cd "$PYSIM_DIR" && timeout 120 "$OLDPWD/$venv/bin/python" pySim-shell.py -p 0 --noprompt \
  -e "verify_chv $PIN1" -e 'select ADF.USIM' -e 'select EF.IMSI' -e 'read_binary_decoded' "$@" -e 'quit' </dev/null) > "$out" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ] || ! grep -q "\"imsi\": \"$EXPECT_IMSI\"" "$out"; then
  echo "pySim check FAILED (exit $rc); pySim-shell said:"
  cat "$out"
  exit 1
fi
grep -E '"imsi"' "$out"
echo "pySim check passed: pySim-shell started on the card and decoded EF.IMSI = $EXPECT_IMSI"
rm -f "$out"
