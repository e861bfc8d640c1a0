#!/usr/bin/env bash
# Load-test comparison, side by side in one run: linelogin's server (SQLite, guideline logs on)
# and a small Express app using passport-line-auth, both logging in against the same linelogin
# emulator (auto-consent), driven by the same `linelogin loadtest` runner. Everything binds to
# 127.0.0.1; the runner's guard refuses anything else.
#
#   bench/compare.sh                 # 3 runs of 10 s each per app, 64 virtual users
#   RUNS=5 DURATION=20 VUS=64 bench/compare.sh
#
# Prints each run's flows/s, p99 and the app's CPU per flow, then the medians and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults RUNS=3 DURATION=10 VUS=64 EMU_PORT=9300 SRV_PORT=8380 EXP_PORT=8390
build
BIN=target/release/linelogin
(cd bench/express-passport-line && npm ci --no-audit --no-fund --silent)

work_dir

emulator_config "$WORK" "$EMU_PORT" "http://127.0.0.1:$SRV_PORT/callback" "http://127.0.0.1:$EXP_PORT/callback"
server_config "$WORK" "$SRV_PORT" "$EMU_PORT"
start_both "$WORK" "$EMU_PORT" "$SRV_PORT"; SRV_PID=$SRV
(cd bench/express-passport-line && PORT=$EXP_PORT LINE_BASE="http://127.0.0.1:$EMU_PORT" exec node app.js) > "$WORK/express.out" 2>&1 & EXP_PID=$!; PIDS+=($EXP_PID)
wait_ready "http://127.0.0.1:$EXP_PORT/api/me"

run() { # name port run pid
  local before; before=$(cpu_ticks "$4")
  "$BIN" loadtest --max-failure-rate 1 --target "http://127.0.0.1:$2" --duration "$DURATION" --concurrency "$VUS" --quiet \
    --json "$WORK/$1-$3.json" > "$WORK/$1-$3.txt"
  python3 - "$WORK/$1-$3.json" "$1" "$3" "$(( $(cpu_ticks "$4") - before ))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu_ms = int(sys.argv[4]) * 1000 / int(sys.argv[5]) / max(r['ok'] + r['failed'], 1)
print(f"{sys.argv[2]:<10} run {sys.argv[3]}: {r['flows_per_s']:8.1f} flows/s  p99 {r['latency_ms']['p99']:7.2f} ms  "
      f"ok {r['ok']}  failed {r['failed']}  app CPU {cpu_ms:.3f} ms/flow")
PY
}
for i in $(seq 1 "$RUNS"); do
  run linelogin "$SRV_PORT" "$i" "$SRV_PID"
  run express "$EXP_PORT" "$i" "$EXP_PID"
done
python3 - "$WORK" "$RUNS" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def med(name, key):
    vals = [json.load(open(f"{work}/{name}-{i}.json")) for i in range(1, runs + 1)]
    return statistics.median(key(v) for v in vals)
ours, peer = med("linelogin", lambda r: r["flows_per_s"]), med("express", lambda r: r["flows_per_s"])
print(f"median flows/s: linelogin {ours:.1f}, express+passport-line-auth {peer:.1f}, ratio {ours / peer:.2f}x")
print(f"median p99 ms:  linelogin {med('linelogin', lambda r: r['latency_ms']['p99']):.2f}, express {med('express', lambda r: r['latency_ms']['p99']):.2f}")
PY
