#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, starting from its seed corpus
# in fuzz/corpus/<target>/, and exits non-zero if any target crashed (the reproducer is left in
# fuzz/artifacts/<target>/). New inputs the fuzzer finds go to a scratch directory, so the
# committed corpus stays small; copy one in by hand when it is worth keeping.
#
#   fuzz/run.sh 60                  # each target for 60 s
#   fuzz/run.sh 300 emulator_params # one target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Only the stable toolchain is
# installed: cargo-fuzz's flags are accepted through RUSTC_BOOTSTRAP=1, and `-s none` builds
# without a sanitizer (AddressSanitizer needs nightly; the code is all safe Rust, so libFuzzer
# still catches panics, overflows of the stack, timeouts and out-of-memory).
set -euo pipefail

secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
case $secs in
  '' | *[!0-9]*) echo "fuzz/run.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

build_log=$(mktemp)
if ! cargo fuzz build -s none >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  echo "fuzz/run.sh: the fuzz targets do not build" >&2
  exit 1
fi
rm -f "$build_log"

failed=()
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  start=$(date +%s)
  echo "== $t: ${secs}s"
  if cargo fuzz run -s none "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$scratch.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$scratch.log" | sed "s/^/   $t /" || true
    echo "   $t: ok after $(( $(date +%s) - start ))s"
  else
    tail -n 40 "$scratch.log" >&2
    echo "   $t: CRASH (reproducer in fuzz/artifacts/$t/; replay: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $t fuzz/artifacts/$t/<file>)" >&2
    failed+=("$t")
  fi
  rm -rf "$scratch" "$scratch.log"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: crashed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} target(s), ${secs}s each, no crash"
