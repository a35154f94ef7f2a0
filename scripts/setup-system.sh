#!/usr/bin/env bash
# Installs the system packages keysim needs on Debian/Ubuntu, only those that are missing:
#   build:  pkg-config, libpcsclite-dev (the `pcsc` crate links libpcsclite)
#   tests:  pcscd, pcsc-tools, vsmartcard-vpcd (a real PC/SC stack with a virtual reader),
#           tshark (independent dissection of MIKEY and GSMTAP traces), python3-venv,
#           sip-tester (sipp: drives the SCF as an independent SIP UE), gcc and python3-dev
#           (pySim's venv builds PyPI's pyscard from source against libpcsclite), chromium
#           (headless: loads the --report pages and takes a screenshot),
#           the SRTP peers of `keysim bench`: libsrtp2-dev (Debian's libsrtp2, on NSS), and for
#           libsrtp with OpenSSL built from source by srtp2-sys (benches/peers/libsrtp-openssl):
#           make, libclang-dev (bindgen), libssl-dev
# Usage: scripts/setup-system.sh [build|test]   (default: test, which includes build)
set -euo pipefail

want=(pkg-config libpcsclite-dev)
if [ "${1:-test}" = test ]; then
  want+=(pcscd pcsc-tools vsmartcard-vpcd tshark python3-venv sip-tester gcc python3-dev chromium)
  want+=(libsrtp2-dev make libclang-dev libssl-dev)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "keysim: installing system packages: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "keysim: apt-get not found. Install these packages with your system's package manager: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "keysim: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >/dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "keysim: installed ${missing[*]}"
