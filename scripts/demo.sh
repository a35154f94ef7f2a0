#!/usr/bin/env bash
# The main job on the built-in emulated card: a card session as an ME starts it (select the USIM,
# verify PIN1, read the subscriber identity and the service table, then the ISIM identities and
# the GBA bootstrapping parameters), every APDU decoded on the way (add --trace for the raw
# exchanges, --pcap FILE for Wireshark).
set -euo pipefail
cd "$(dirname "$0")/.."
KEYSIM=${KEYSIM:-${CARGO_TARGET_DIR:-target}/release/keysim}
USIM=A0000000871002FFFFFFFF8907090000
ISIM=A0000000871004FFFFFFFF8907090000
exec "$KEYSIM" apdu --emulator "$@" \
  00A40004023F00 00A40004022FE2 00B000000A \
  00A4040410$USIM \
  002000010831323334FFFFFFFF \
  00A40004026F07 00B0000009 \
  00A40004026F38 00B0000000 \
  00A40004026FD6 00B0000000 \
  00A4040410$ISIM \
  00A40004026F02 00B0000000 \
  00A40004026F04 00B2010400
