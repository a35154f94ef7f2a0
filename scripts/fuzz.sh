#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after the other, each for SECONDS_PER_TARGET seconds
# (default 300) in one libFuzzer process, and prints a summary table (also written to
# target/fuzz/summary.md): target, seconds run, executions, executions per second, coverage,
# corpus size, result.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Without targets every target of fuzz/Cargo.toml runs. New inputs go to target/fuzz/corpus/<t>
# (the seed corpus fuzz/corpus/<t> is read, never written); logs to target/fuzz/logs/<t>.log;
# crashes to fuzz/artifacts/<t>/. Extra libFuzzer options: FUZZ_ARGS="-rss_limit_mb=4096".
# The toolchain: FUZZ_TOOLCHAIN (default nightly). Exit status 1 if any target found a crash.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-300}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

cd "$root/fuzz"
if [ "$#" -eq 0 ]; then
  mapfile -t targets < <(cargo "+$toolchain" fuzz list)
else
  targets=("$@")
fi

out="$root/target/fuzz"
mkdir -p "$out/logs"
for t in "${targets[@]}"; do
  cargo "+$toolchain" fuzz build "$t" >>"$out/logs/build.log" 2>&1 || { tail -n 40 "$out/logs/build.log" >&2; exit 2; }
done

summary="$out/summary.md"
{
  echo "| target | seconds | executions | exec/s | coverage | corpus | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
} >"$summary"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "corpus/$t"
  log="$out/logs/$t.log"
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  cargo "+$toolchain" fuzz run "$t" "$out/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  ran=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
  execs="${execs:-0}"
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | sed 's/cov: //')
  corpus=$(find "$out/corpus/$t" "corpus/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result="no crash"
  else
    artifact=$(grep -o 'artifacts/[^ ]*' "$log" | tail -n1)
    result="CRASH ${artifact:-(see $log)}"
    status=1
  fi
  line="| $t | $ran | $execs | ${rate:-?} | ${cov:-?} | $corpus | $result |"
  echo "$line" >>"$summary"
  echo "$line" >&2
done
cat "$summary"
exit "$status"
