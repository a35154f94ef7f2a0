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

trap keysim_pcsc_cleanup EXIT

cargo build -q --release --bin keysim
keysim_pcscd_start
keysim_card_serve "$KEYSIM"
"$KEYSIM" bench "$@"
