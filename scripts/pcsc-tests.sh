#!/usr/bin/env bash
# The emulated card through a real PC/SC stack: a private pcscd with the vsmartcard vpcd driver,
# `keysim vpcd` serving the card to it, then
#   1. the card's command/response cases replayed through pcscd with the `pcsc` crate
#      (tests/pcsc.rs, ignored in a plain `cargo test` because it needs this set-up),
#   2. the APDU-rate figure through pcscd (reported, not asserted),
#   3. GBA_U and MBMS key management through pcscd against the `keysim vpcd` card
#      (tests/pcsc_mbms.rs), with MTK-generation and APDU-rate figures,
#   4. osmocom pySim-shell against that card (scripts/pysim-check.sh; pySim from $PYSIM_DIR, the
#      snapshot in ../shared/vendor/pysim or /opt/pysim, skipped only when none exists): EF.ICCID,
#      EF.IMSI and the ISIM's EF.IMPI, EF.DOMAIN, EF.IMPU against the card profile, EF.UST and
#      EF.IST against the files present, then EF.GBABP, EF.MSK, EF.MUK and EF.GBANL against what
#      step 3 delivered,
#   5. the whole UE on that card against the BSF and BM-SC on both key-management paths
#      (tests/pcsc_network.rs), with power-on → first-media and MTK-update figures; after step 4,
#      because it bootstraps the card again,
#   6. `keysim demo`, `keysim ue --reader` (tests/cli_ue.rs, ignored there; then against a
#      `keysim serve` process with a state directory and ports of its own, both paths: the
#      README's two-terminal example with the card in a reader), `keysim compare --random 50` and
#      `keysim call --security kms` with the card in the vpcd reader,
#   7. `keysim card-test` (--destructive) on the emulated card in-process and on the `keysim vpcd`
#      card through pcscd, JUnit into target/card-test/; last, because it bootstraps the card and
#      blocks and unblocks PIN1.
# pcscd, the card and `keysim serve` are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYSIM=${KEYSIM:-${CARGO_TARGET_DIR:-target}/debug/keysim}
source scripts/pcscd-env.sh

SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  keysim_pcsc_cleanup
}
trap cleanup EXIT

cargo build -q --bin keysim
keysim_pcscd_start
echo "pcscd up (pid $PCSCD_PID, socket $PCSCLITE_CSOCK_NAME, vpcd port $KEYSIM_VPCD_PORT)"

keysim_card_serve "$KEYSIM" --pcap "$KEYSIM_PCSCD_DIR/vpcd.pcap"
"$KEYSIM" readers
# The README's reader examples (by index, by a substring of the name), which tests/doc_commands.rs
# leaves to this script because they need pcscd.
"$KEYSIM" apdu --reader 0 00A40004023F00
"$KEYSIM" apdu --reader "${KEYSIM_PCSC_READER% 00 00}" 00A40004023F00

cargo test -q --test pcsc -- --ignored --nocapture

# The sim-reader end-to-end test serves its own card on the second slot, after the case replay:
# wait until pcscd has seen the replay's card go.
for _ in $(seq 1 100); do
  "$KEYSIM" readers 2>/dev/null | grep -q "${KEYSIM_PCSC_READER%0}1 (no card)" && break
  sleep 0.05
done
KEYSIM_VPCD_PORT=$((KEYSIM_VPCD_PORT + 1)) KEYSIM_PCSC_READER="${KEYSIM_PCSC_READER%0}1" \
  cargo test -q -p sim-reader --test pcscd_vpcd -- --ignored --nocapture

# GBA_U bootstrap, NAF derivation and the MBMS modes against the `keysim vpcd` card (slot 0); the
# test writes what the network delivered, for pySim to compare with its decoding of the card's EFs.
export KEYSIM_MBMS_EXPECT="$KEYSIM_PCSCD_DIR/mbms-expect.json"
cargo test -q --test pcsc_mbms -- --ignored --nocapture

scripts/pysim-check.sh

# The whole UE through pcscd on both paths (it re-bootstraps the card: after the pySim check).
cargo test -q --test pcsc_network -- --ignored --nocapture

# The main job on the card behind pcscd: `keysim demo` through the PC/SC reader, both paths.
"$KEYSIM" demo --reader "$KEYSIM_PCSC_READER" --duration 1 --json -q > "$KEYSIM_PCSCD_DIR/demo.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print("keysim demo through pcscd, %s path: %d/%d packets, power-on to first media %.1f ms" % (k, p["packets_decrypted"], p["packets_sent"], p["time_to_first_media_ms"])) for k, p in d["paths"].items()]; sys.exit(0 if d["ok"] else 1)' "$KEYSIM_PCSCD_DIR/demo.json"

# The standalone UE through the PC/SC reader, against a BSF and a BM-SC the test starts.
cargo test -q --test cli_ue -- --ignored --nocapture

# `keysim serve` as its own process (private state directory; its ports next to the vpcd port,
# below the ephemeral range, so that runs with other vpcd ports do not meet) and `keysim ue
# --reader` against it on both paths. The configuration is the printed one (the built-in card,
# which the vpcd card is, among its subscribers) with the ports moved. pcscd lives in a mount
# namespace of its own, not a network namespace: the UE reaches the card through
# PCSCLITE_CSOCK_NAME and the server over loopback. The service keeps the printed Key Group 1: the
# card (its memory kept in card.bin) already holds MSKs of Key Group 1 from the BM-SCs above, with
# their MTK IDs, and a new serve state numbers its MSKs from the clock, so the card meets MSK IDs it
# has not seen (docs/serve.md, "What survives what").
SERVE_DIR="$KEYSIM_PCSCD_DIR/serve"
mkdir -p "$SERVE_DIR"
P=$KEYSIM_VPCD_PORT
SERVE_BSF=127.0.0.1:$((P + 2)) SERVE_BMSC=127.0.0.1:$((P + 3)) SERVE_ADMIN=127.0.0.1:$((P + 5))
SERVE_UE_MIKEY=$((P + 6)) SERVE_MEDIA=127.0.0.1:$((P + 7))
"$KEYSIM" serve --print-config | sed \
  -e "s/127.0.0.1:24750/$SERVE_BSF/" -e "s/127.0.0.1:24751/$SERVE_BMSC/" \
  -e "s/127.0.0.1:24752/127.0.0.1:$((P + 4))/" -e "s/127.0.0.1:24759/$SERVE_ADMIN/" \
  -e "s/ue_mikey_port = 2269/ue_mikey_port = $SERVE_UE_MIKEY/" -e "s/127.0.0.1:2269/127.0.0.1:$SERVE_UE_MIKEY/" \
  -e "s/127.0.0.1:5004/$SERVE_MEDIA/" > "$SERVE_DIR/serve.toml"
"$KEYSIM" serve --config "$SERVE_DIR/serve.toml" --state-dir "$SERVE_DIR/state" > "$SERVE_DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 200); do
  grep -q '^serving until' "$SERVE_DIR/serve.log" && break
  kill -0 "$SERVE_PID" 2>/dev/null || break
  sleep 0.05
done
grep -q '^serving until' "$SERVE_DIR/serve.log" || { echo "keysim serve did not start:" >&2; cat "$SERVE_DIR/serve.log" >&2; exit 1; }
for path in uicc me; do
  "$KEYSIM" ue --reader "$KEYSIM_PCSC_READER" --bsf "http://$SERVE_BSF" --bmsc "http://$SERVE_BMSC" \
    --mikey-bind "127.0.0.1:$SERVE_UE_MIKEY" --bearer-media "$SERVE_MEDIA" --path "$path" --duration 2 --json --quiet \
    > "$SERVE_DIR/ue-$path.json" || { echo "keysim ue --reader against keysim serve, $path path: exit $?" >&2; cat "$SERVE_DIR/ue-$path.json" >&2; exit 1; }
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["paths"][sys.argv[2]]; print("keysim ue --reader against keysim serve, %s path: %d MTKs, %d packets decrypted, power-on to first media %.1f ms" % (sys.argv[2], p["mtk_count"], p["packets_decrypted"], p["time_to_first_media_ms"])); sys.exit(0 if d["ok"] and d["card"].startswith("PC/SC reader") and p["packets_decrypted"] > 0 else 1)' "$SERVE_DIR/ue-$path.json" "$path"
done
# Both deregistered: serve holds no registration.
"$KEYSIM" ctl --admin "$SERVE_ADMIN" list --json > "$SERVE_DIR/list.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["registrations"] == [] and len(d["bootstraps"]) >= 2 else 1)' "$SERVE_DIR/list.json" \
  || { echo "keysim serve after both UEs: $(cat "$SERVE_DIR/list.json")" >&2; exit 1; }
kill -TERM "$SERVE_PID"
SERVE_STATUS=0
wait "$SERVE_PID" || SERVE_STATUS=$?
SERVE_PID=
[ "$SERVE_STATUS" -eq 0 ] || { echo "keysim serve exited $SERVE_STATUS after SIGTERM" >&2; cat "$SERVE_DIR/serve.log" >&2; exit 1; }

# The differential validation with the UICC-based path's card behind pcscd (the ME-based path's
# card emulated): 50 random histories, each difference either allowed with its clause or fatal.
"$KEYSIM" compare --random 50 --reader "$KEYSIM_PCSC_READER" --json > "$KEYSIM_PCSCD_DIR/compare.json" \
  || { echo "keysim compare --random 50 --reader: exit $?" >&2; cat "$KEYSIM_PCSCD_DIR/compare.json" >&2; exit 1; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("keysim compare --random 50 through pcscd: %d histories, %d steps, %d divergences, allowed: %s" % (d["histories"], d["steps"], len(d["divergences"]), ", ".join("%s (%d)" % (a["name"], a["steps"]) for a in d["allowed_differences_seen"]))); sys.exit(0 if d["ok"] and d["histories"] == 50 else 1)' "$KEYSIM_PCSCD_DIR/compare.json"

# The IMS call with KMS-based media security, the caller's card behind pcscd (the callee emulated).
"$KEYSIM" call --security kms --reader "$KEYSIM_PCSC_READER" --json > "$KEYSIM_PCSCD_DIR/call.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["kms"]["caller"]; print("keysim call --security kms through pcscd: caller card %s (%s, %s), %d/%d packets decrypted by the callee, %d/%d by the caller, INVITE to 200 %.1f ms" % (c["card"], c["gba"], c["naf_key"], d["callee"]["packets_decrypted"], d["caller"]["packets_sent"], d["caller"]["packets_decrypted"], d["callee"]["packets_sent"], d["signalling"]["invite_ms"])); sys.exit(0 if d["ok"] and c["card"] != "emulated" else 1)' "$KEYSIM_PCSCD_DIR/call.json"

# The conformance suite: the emulated card in-process, then the card behind pcscd (reader 0, the
# profile it was personalized with), each writing JUnit for CI.
CARD_TEST_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")/card-test"
mkdir -p "$CARD_TEST_DIR"
KEYSIM_ABS=$(realpath "$KEYSIM")
"$KEYSIM_ABS" card-test --emulator --destructive --junit "$CARD_TEST_DIR/emulator.xml" > "$CARD_TEST_DIR/emulator.txt" \
  || { cat "$CARD_TEST_DIR/emulator.txt"; exit 1; }
tail -1 "$CARD_TEST_DIR/emulator.txt"
"$KEYSIM_ABS" profile show > "$CARD_TEST_DIR/card.toml"
(cd "$CARD_TEST_DIR" && "$KEYSIM_ABS" card-test --reader 0 --profile card.toml --junit card-test.xml > reader.txt) \
  || { cat "$CARD_TEST_DIR/reader.txt"; exit 1; }
echo "keysim card-test through pcscd: $(tail -1 "$CARD_TEST_DIR/reader.txt")"
(cd "$CARD_TEST_DIR" && "$KEYSIM_ABS" card-test --reader 0 --profile card.toml --destructive \
  --junit reader-destructive.xml > reader-destructive.txt) || { cat "$CARD_TEST_DIR/reader-destructive.txt"; exit 1; }
echo "keysim card-test --destructive through pcscd: $(tail -1 "$CARD_TEST_DIR/reader-destructive.txt")"
