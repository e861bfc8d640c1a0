#!/usr/bin/env bash
# Memory over a long run: the server (SQLite, guideline logs on) and the emulator under a
# closed-loop login load for DURATION seconds, their resident memory (VmRSS) sampled every
# EVERY seconds. Prints the samples, then per process the peak of each third of the run after
# the warm-up (WARMUP seconds): flat memory shows as three similar peaks. Also prints the
# throughput of each minute, so a slow-down as the database grows shows.
#
#   bench/soak.sh                      # 600 s at 64 virtual users, a sample every 10 s
#   DURATION=120 EVERY=5 bench/soak.sh
#   NO_BUILD=1 BIN=old/linelogin bench/soak.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults DURATION=600 VUS=64 EVERY=10 WARMUP=60 FINISH=none EMU_PORT=9320 SRV_PORT=8395
build
defaults BIN=target/release/linelogin
work_dir

emulator_config "$WORK" "$EMU_PORT" "http://127.0.0.1:$SRV_PORT/callback"
server_config "$WORK" "$SRV_PORT" "$EMU_PORT"
start_both "$WORK" "$EMU_PORT" "$SRV_PORT"

"$BIN" loadtest --max-failure-rate 1 --target "http://127.0.0.1:$SRV_PORT" --duration "$DURATION" --concurrency "$VUS" \
  --finish "$FINISH" --quiet --json "$WORK/soak.json" > "$WORK/soak.txt" &
LOAD=$!
echo "seconds server_rss_kib emulator_rss_kib" | tee "$WORK/rss.txt"
t=0
while kill -0 "$LOAD" 2>/dev/null; do
  echo "$t $(rss "$SRV") $(rss "$EMU")" | tee -a "$WORK/rss.txt"
  sleep "$EVERY"; t=$((t + EVERY))
done
wait "$LOAD"
python3 - "$WORK/rss.txt" "$WORK/soak.json" "$WARMUP" <<'PY'
import json, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]).read().splitlines()[1:] if l.strip()]
r = json.load(open(sys.argv[2]))
warm = int(sys.argv[3])
print(f"load: {r['flows']} flows in {r['duration_s']:.0f} s, {r['flows_per_s']:.0f} flows/s, {r['failed']} failed, p99 {r['latency_ms']['p99']:.1f} ms")
if r.get('errors'):
    print(f"failures by kind: {r['errors']}")
# Throughput per minute, from the runner's per-second timeline: a slow-down as the database
# grows shows here.
minutes = {}
for s in r.get('timeline', []):
    minutes[s['t'] // 60] = minutes.get(s['t'] // 60, 0) + s['ok']
full = [m for m in sorted(minutes) if (m + 1) * 60 <= r['duration_s'] + 1]
print("flows/s per minute: " + " ".join(f"{minutes[m] / 60:.0f}" for m in full))
# Flat means: after the warm-up, each third of the run peaks at about the same size.
after = [row for row in rows if row[0] >= warm] or rows
thirds = [after[i * len(after) // 3:(i + 1) * len(after) // 3] or after for i in range(3)]
for name, col in (("server", 1), ("emulator", 2)):
    peaks = [max(row[col] for row in t) / 1024 for t in thirds]
    print(f"{name:9} RSS peak in each third after {warm} s: "
          + " / ".join(f"{p:.1f}" for p in peaks)
          + f" MiB (first sample {rows[0][col]/1024:.1f} MiB, last {rows[-1][col]/1024:.1f} MiB)")
PY
failures_logged "$WORK"
