# Sourced by scripts that need a real pcscd with the vsmartcard vpcd driver.
# Starts a private pcscd (its own socket and vpcd port) so it never disturbs a pcscd that serves real
# readers, and stops it by PID on exit. Exports:
#   PCSCLITE_CSOCK_NAME   the private pcscd's socket, honoured by libpcsclite clients (pcsc crate, pyscard)
#   KEYSIM_VPCD_PORT      the TCP port its vpcd driver listens on (127.0.0.1)
#   KEYSIM_PCSC_READER    the reader name the virtual card appears in
# Needs root for the private mount namespace; without root it falls back to the system socket and
# refuses to run if another pcscd is already up.

KEYSIM_PCSCD_DIR=$(mktemp -d /tmp/keysim-pcscd.XXXXXX)
KEYSIM_VPCD_PORT=${KEYSIM_VPCD_PORT:-35990}
export KEYSIM_VPCD_PORT
PCSCD_PID=
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

keysim_pcscd_stop() {
  if [ -n "$PCSCD_PID" ]; then
    kill "$PCSCD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PCSCD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PCSCD_PID" 2>/dev/null || true
    PCSCD_PID=
  fi
}

keysim_pcscd_start() {
  [ -f "$VPCD_DRIVER" ] || { echo "keysim: vsmartcard-vpcd is not installed ($VPCD_DRIVER missing)" >&2; return 1; }
  mkdir -p "$KEYSIM_PCSCD_DIR/run" "$KEYSIM_PCSCD_DIR/conf"
  printf 'FRIENDLYNAME "keysim vpcd"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n' \
    "$KEYSIM_VPCD_PORT" "$VPCD_DRIVER" "$KEYSIM_VPCD_PORT" > "$KEYSIM_PCSCD_DIR/conf/vpcd"
  if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
    mkdir -p /run/pcscd
    unshare -m sh -c "mount --bind '$KEYSIM_PCSCD_DIR/run' /run/pcscd && exec pcscd --foreground --apdu --debug -c '$KEYSIM_PCSCD_DIR/conf/vpcd'" \
      > "$KEYSIM_PCSCD_DIR/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    export PCSCLITE_CSOCK_NAME="$KEYSIM_PCSCD_DIR/run/pcscd.comm"
  else
    if [ -S /run/pcscd/pcscd.comm ]; then
      echo "keysim: a pcscd is already running; run the PC/SC tests as root (private pcscd) or stop it" >&2
      return 1
    fi
    pcscd --foreground --apdu --debug -c "$KEYSIM_PCSCD_DIR/conf/vpcd" > "$KEYSIM_PCSCD_DIR/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    export PCSCLITE_CSOCK_NAME=/run/pcscd/pcscd.comm
  fi
  # vpcd readers are named after FRIENDLYNAME with slot numbers; slot 0 is on KEYSIM_VPCD_PORT.
  export KEYSIM_PCSC_READER="keysim vpcd 00 00"
  for _ in $(seq 1 100); do
    [ -S "$PCSCLITE_CSOCK_NAME" ] && ss -ltn 2>/dev/null | grep -q ":$KEYSIM_VPCD_PORT " && return 0
    kill -0 "$PCSCD_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "keysim: pcscd did not come up; its log:" >&2
  cat "$KEYSIM_PCSCD_DIR/pcscd.log" >&2
  return 1
}
