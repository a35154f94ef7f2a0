#!/usr/bin/env bash
# Creates the Python venv the independent cross-checks use (pylibsrtp for libsrtp; cryptography for
# the AES-CM of the MIKEY-TICKET oracle; both pinned), once, in the build's target directory:
# <target>/pyenv-srtp. Prints the interpreter's path on stdout.
# Tests and `keysim bench` find it there (or through $KEYSIM_PYTHON), whichever test runs first.
set -euo pipefail
cd "$(dirname "$0")/.."

PYLIBSRTP="pylibsrtp==1.0.0"
CRYPTOGRAPHY="cryptography==50.0.2"
target="${CARGO_TARGET_DIR:-target}"
venv="$target/pyenv-srtp"
py="$venv/bin/python"

if [ -x "$py" ] && "$py" -c 'import pylibsrtp, cryptography' 2>/dev/null; then
  echo "$(cd "$venv" && pwd)/bin/python"
  exit 0
fi
mkdir -p "$target"
python3 -m venv "$venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check "$PYLIBSRTP" "$CRYPTOGRAPHY" >&2
"$py" -c 'import pylibsrtp, cryptography' >&2
echo "$(cd "$venv" && pwd)/bin/python"
