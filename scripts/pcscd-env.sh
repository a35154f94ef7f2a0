# Sourced by scripts that need a real pcscd with the vsmartcard vpcd driver.
# Starts a private pcscd (its own socket and vpcd port) so it never disturbs a pcscd that serves real
# readers, and stops it by PID on exit. Exports:
#   PCSCLITE_CSOCK_NAME   the private pcscd's socket, honoured by libpcsclite clients (pcsc crate, pyscard)
#   KEYSIM_VPCD_PORT      the TCP port its vpcd driver listens on (127.0.0.1)
#   KEYSIM_PCSC_READER    the reader name the virtual card appears in
# keysim_card_serve KEYSIM [ARGS] serves the emulated card on slot 0 (`keysim vpcd`) and waits for
# it to appear; keysim_pcsc_cleanup stops the card and pcscd by PID and removes the private directory
# (scripts install it as their EXIT trap).
# Needs root for the private mount namespace; without root it falls back to the system socket and
# refuses to run if another pcscd is already up.

KEYSIM_PCSCD_DIR=$(mktemp -d /tmp/keysim-pcscd.XXXXXX)
# Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a port inside
# it can be held in TIME_WAIT by any earlier loopback client connection, and the vpcd driver's
# listen would then fail with "Address already in use". Slot 1 of the driver is this port + 1.
KEYSIM_VPCD_PORT=${KEYSIM_VPCD_PORT:-31990}
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

CARD_PID=

# Serves the emulated card to the private pcscd on slot 0 with `$1 vpcd` (T=0: the card's ATR
# offers T=0 only, so case-4 data comes the T=0 way) plus the remaining arguments, and waits until
# the reader shows the card.
keysim_card_serve() {
  local keysim=$1
  shift
  "$keysim" vpcd --protocol t0 --port "$KEYSIM_VPCD_PORT" --card-state "$KEYSIM_PCSCD_DIR/card.bin" "$@" \
    2> "$KEYSIM_PCSCD_DIR/card.log" &
  CARD_PID=$!
  for _ in $(seq 1 100); do
    "$keysim" readers 2>/dev/null | grep -q "$KEYSIM_PCSC_READER (card" && return 0
    sleep 0.05
  done
  echo "keysim: the served card did not appear in $KEYSIM_PCSC_READER; its log:" >&2
  cat "$KEYSIM_PCSCD_DIR/card.log" >&2
  return 1
}

keysim_pcsc_cleanup() {
  if [ -n "$CARD_PID" ]; then kill "$CARD_PID" 2>/dev/null || true; wait "$CARD_PID" 2>/dev/null || true; fi
  keysim_pcscd_stop
  rm -rf "$KEYSIM_PCSCD_DIR"
}
