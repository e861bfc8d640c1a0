#!/usr/bin/env bash
# Login flows per second of our server (SQLite, guideline logs on) with the load-test runner,
# the emulator (auto-consent) and the server on this machine, and the CPU each of the three
# spends per flow. Each run starts all three afresh (new database, new logs), so runs are
# independent; prints every run, then the medians.
#
#   bench/flows.sh                          # 5 runs of 10 s at 64 virtual users
#   RUNS=3 DURATION=30 VUS=64 bench/flows.sh
#   BINS="old/linelogin target/release/linelogin" bench/flows.sh
#                                           # two builds side by side: their runs alternate,
#                                           # and each gets its own medians
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults RUNS=5 DURATION=10 VUS=64 EMU_PORT=9330 SRV_PORT=8396
build
BINS=${BINS:-$PWD/target/release/linelogin}
TICK=$(getconf CLK_TCK)

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
for run in $(seq 1 "$RUNS"); do
 for BIN in $BINS; do
  BIN=$(realpath "$BIN")
  WORK=$(mktemp -d)
  emulator_config "$WORK" "$EMU_PORT" "http://127.0.0.1:$SRV_PORT/callback"
  server_config "$WORK" "$SRV_PORT" "$EMU_PORT"
  start_both "$WORK" "$EMU_PORT" "$SRV_PORT"
  e0=$(cpu_ticks $EMU); s0=$(cpu_ticks $SRV)
  /usr/bin/time -f "%U %S" -o "$WORK/runner.cpu" "$BIN" loadtest --max-failure-rate 1 --target "http://127.0.0.1:$SRV_PORT" \
    --duration "$DURATION" --concurrency "$VUS" --quiet --json "$WORK/run.json" > /dev/null
  e1=$(cpu_ticks $EMU); s1=$(cpu_ticks $SRV)
  kill $EMU $SRV 2>/dev/null || true
  wait $EMU $SRV 2>/dev/null || true
  python3 - "$WORK/run.json" "$WORK/runner.cpu" $((e1 - e0)) $((s1 - s0)) "$TICK" "$run" "$BIN" <<'PY' | tee -a "$RESULTS"
import json, sys
r = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[:2])
emu, srv, tick, run, binary = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
n = max(r["ok"] + r["failed"], 1)
ms = lambda seconds: seconds * 1000 / n
print(json.dumps({"run": run, "bin": binary, "flows_per_s": r["flows_per_s"], "p99": r["latency_ms"]["p99"],
                  "ok": r["ok"], "failed": r["failed"], "errors": r.get("errors", {}),
                  "runner": ms(user + system), "emulator": ms(emu / tick), "server": ms(srv / tick)}))
PY
  failures_logged "$WORK"
  rm -rf "$WORK"
 done
done
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
all_runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for binary in dict.fromkeys(r["bin"] for r in all_runs):
    runs = [r for r in all_runs if r["bin"] == binary]
    med = lambda k: statistics.median(r[k] for r in runs)
    print(f"{binary}\n  median of {len(runs)} runs: {med('flows_per_s'):.0f} flows/s, "
          f"p99 {med('p99'):.1f} ms, failed {sum(r['failed'] for r in runs)}; CPU per flow: "
          f"runner {med('runner'):.3f} ms, emulator {med('emulator'):.3f} ms, "
          f"server {med('server'):.3f} ms")
PY
