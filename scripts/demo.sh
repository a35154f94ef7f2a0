#!/usr/bin/env bash
# The main job: `keysim demo` on the built-in emulated card. It starts a BSF and a BM-SC on
# loopback and runs every MBMS security procedure (TS 33.246 §6) on both key-management paths:
# GBA bootstrap, NAF key derivation, registration, MSK push, MTK updates, SRTP media checked
# against the source, MSK rotation, solicited pull, deregistration; then prints a summary table.
# Extra arguments go to `keysim demo` (e.g. --json, --path uicc, --services 3, --duration 5,
# --reader NAME, --pcap FILE for the APDU trace in Wireshark).
set -euo pipefail
cd "$(dirname "$0")/.."
KEYSIM=${KEYSIM:-${CARGO_TARGET_DIR:-target}/release/keysim}
exec "$KEYSIM" demo "$@"
