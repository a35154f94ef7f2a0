#!/usr/bin/env bash
# `keysim bench` with the MTK-update figures through a real PC/SC stack as well: a private pcscd
# with the vsmartcard vpcd driver (scripts/pcscd-env.sh), `keysim vpcd` serving the emulated card
# on its slot 0, then `keysim bench ARGS` with KEYSIM_PCSC_READER set, which adds
# mtk_updates_per_s_uicc_pcsc and mtk_updates_per_s_me_pcsc. pcscd and the card are stopped by
# PID on exit. Needs pcscd and vsmartcard-vpcd (scripts/setup-system.sh test).
# Usage: benches/pcsc-bench.sh [keysim bench arguments, e.g. --json]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYSIM=${KEYSIM:-${CARGO_TARGET_DIR:-target}/release/keysim}
source scripts/pcscd-env.sh

CARD_PID=
cleanup() {
  if [ -n "$CARD_PID" ]; then kill "$CARD_PID" 2>/dev/null || true; wait "$CARD_PID" 2>/dev/null || true; fi
  keysim_pcscd_stop
  rm -rf "$KEYSIM_PCSCD_DIR"
}
trap cleanup EXIT

cargo build -q --release --bin keysim
keysim_pcscd_start
"$KEYSIM" vpcd --protocol t0 --port "$KEYSIM_VPCD_PORT" --card-state "$KEYSIM_PCSCD_DIR/card.bin" \
  2> "$KEYSIM_PCSCD_DIR/card.log" &
CARD_PID=$!
for _ in $(seq 1 100); do
  "$KEYSIM" readers 2>/dev/null | grep -q "$KEYSIM_PCSC_READER (card" && break
  sleep 0.05
done
"$KEYSIM" bench "$@"
