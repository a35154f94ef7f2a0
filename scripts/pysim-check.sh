#!/usr/bin/env bash
# osmocom pySim-shell against the card in reader 0 of the current pcscd (PCSCLITE_CSOCK_NAME), in one
# session: it must start on the card and verify PIN1, and what it decodes with its own codecs must
# equal values that come from elsewhere (scripts/pysim-compare.py does the comparing):
#   - the card profile (KEYSIM_PROFILE_FILE, default sim-reader/default.toml, the built-in one):
#     EF.ICCID, EF.IMSI, and the ISIM's EF.IMPI, EF.DOMAIN and EF.IMPU;
#   - EF.UST: the services the network side uses on this card (n°68 GBA, n°69 MBMS security) are
#     available, and pySim's own service check of EF.UST and EF.IST finds the files of every
#     available service, and none of an unavailable one;
#   - with KEYSIM_MBMS_EXPECT naming the JSON that tests/pcsc_mbms.rs wrote after its run on the same
#     card: EF.GBABP, EF.MSK, EF.MUK and EF.GBANL (TS 31.102 §4.2.79-83) equal what the network
#     side delivered.
# pySim is on neither PyPI nor Debian. It is taken from $PYSIM_DIR when set, else from the pinned
# snapshot ../shared/vendor/pysim beside the checkout, else from /opt/pysim; only when none of these
# exists does the check skip. It is only read: its Python dependencies come from PyPI (versions in
# scripts/pysim-constraints.txt) into <target>/pysim-venv, and Python's bytecode cache goes to
# <target>/pysim-pycache. Once pySim is found, a dependency that cannot be installed, a pySim-shell
# failure or any difference fails the check.
# Usage: scripts/pysim-check.sh [--prepare]   (--prepare: find pySim and set up its venv, no card)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYSIM_DIR:-}" ]; then
  origin="PYSIM_DIR"
else
  for dir in ../shared/vendor/pysim /opt/pysim; do
    if [ -d "$dir" ]; then PYSIM_DIR=$dir origin=$dir; break; fi
  done
fi
if [ -z "${PYSIM_DIR:-}" ]; then
  echo "pySim check SKIPPED: no pySim (PYSIM_DIR unset, no ../shared/vendor/pysim, no /opt/pysim; set PYSIM_DIR to an osmocom pySim checkout)"
  exit 0
fi
if [ ! -f "$PYSIM_DIR/pySim-shell.py" ] || [ ! -f "$PYSIM_DIR/requirements.txt" ]; then
  echo "pySim check FAILED: $PYSIM_DIR ($origin) has no pySim-shell.py and requirements.txt"
  exit 1
fi
PYSIM_DIR=$(cd "$PYSIM_DIR" && pwd)
PROFILE=${KEYSIM_PROFILE_FILE:-sim-reader/default.toml}

target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
target=$(cd "$target" && pwd)
venv="$target/pysim-venv"
py="$venv/bin/python"
export PYTHONPYCACHEPREFIX="$target/pysim-pycache" PYTHONUNBUFFERED=1

# The snapshot's requirements without its git+ lines (their hosts are out of reach), the PyPI
# packages that stand in for them, and tomli for a Python older than 3.11 (the profile is TOML).
requirements=$(
  grep -v '^git+\|@ git+' "$PYSIM_DIR/requirements.txt"
  printf 'asn1tools\nsmpp.pdu3\ntomli; python_version < "3.11"\n'
)
stamp=$(printf '%s\n' "$requirements"; cat scripts/pysim-constraints.txt; python3 --version)
imports='import smartcard, cmd2, construct, smpp.pdu, asn1tools, osmocom, pySim.ts_31_102, pySim.ts_31_103'
if [ ! -x "$py" ] || [ "$(cat "$venv/keysim-stamp" 2>/dev/null)" != "$stamp" ] \
  || ! PYTHONPATH="$PYSIM_DIR" "$py" -c "$imports" 2>/dev/null; then
  echo "setting up $venv for pySim (PyPI)"
  python3 -m venv --clear "$venv"
  printf '%s\n' "$requirements" > "$venv/requirements.txt"
  if ! "$py" -m pip install --quiet --disable-pip-version-check \
    -r "$venv/requirements.txt" -c scripts/pysim-constraints.txt; then
    echo "pySim check FAILED: pySim's Python dependencies could not be installed from PyPI"
    exit 1
  fi
  if ! PYTHONPATH="$PYSIM_DIR" "$py" -c "$imports"; then
    echo "pySim check FAILED: pySim's modules do not import in $venv"
    exit 1
  fi
  printf '%s\n' "$stamp" > "$venv/keysim-stamp"
fi
if [ "${1:-}" = --prepare ]; then
  echo "pySim from $PYSIM_DIR ($origin), Python dependencies in $venv"
  exit 0
fi

mapfile -t commands < <("$py" scripts/pysim-compare.py commands "$PROFILE")
args=()
for c in "${commands[@]}"; do args+=(-e "$c"); done
out="$target/pysim-shell.log"
echo "pySim from $PYSIM_DIR ($origin), card profile $PROFILE"
set +e
timeout 120 "$py" "$PYSIM_DIR/pySim-shell.py" -p 0 --noprompt "${args[@]}" </dev/null >"$out" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "pySim check FAILED: pySim-shell exited with $rc; it said:"
  cat "$out"
  exit 1
fi

expect=()
if [ -n "${KEYSIM_MBMS_EXPECT:-}" ]; then
  [ -f "$KEYSIM_MBMS_EXPECT" ] || { echo "pySim check FAILED: $KEYSIM_MBMS_EXPECT does not exist"; exit 1; }
  expect=("$KEYSIM_MBMS_EXPECT")
fi
if ! PYTHONPATH="$PYSIM_DIR" "$py" scripts/pysim-compare.py check "$out" "$PROFILE" "${expect[@]}"; then
  echo "pySim check FAILED; pySim-shell's output is in $out:"
  cat "$out"
  exit 1
fi
