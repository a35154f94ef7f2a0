#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs missing system packages first (scripts/setup-system.sh),
# then: format and lint checks, the no_std probe, every unit and integration test, and the same APDU
# cases through a real pcscd + vpcd (private pcscd, stopped by PID at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/setup-system.sh test

# Tests that check against an independent tool (tshark, pcscd, pySim) fail instead of skipping when
# the tool is missing.
export KEYSIM_REQUIRE_ORACLES=1

step "Python oracles (pylibsrtp venv)"
KEYSIM_PYTHON="$(scripts/python-oracles.sh)"
export KEYSIM_PYTHON
echo "libsrtp through $KEYSIM_PYTHON"

step "osmocom pySim and its venv (for the pySim check of the card through pcscd)"
scripts/pysim-check.sh --prepare

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "no_std, no-alloc probe of the card crates (apdu, uicc-vocab, gba, mikey, uicc-applet)"
cargo build --manifest-path nostd-probe/Cargo.toml

step "cargo test --workspace"
cargo test --workspace

step "differential validation of the two key-management paths: 1000 random histories"
"${CARGO_TARGET_DIR:-target}/debug/keysim" compare --random 1000

step "the card through a real pcscd with vpcd"
scripts/pcsc-tests.sh
