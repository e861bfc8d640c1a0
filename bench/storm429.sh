#!/usr/bin/env bash
# The 429 case of the load-testing issue, measured on loopback:
#   - the emulator rate-limits the channel at EMU_RATE calls/s (429 + Retry-After beyond it);
#   - the server's outbound limit is SRV_RATE/s with SRV_BURST burst;
#   - a login storm runs (open loop, STORM_RATE flows/s offered, for DURATION s);
#   - meanwhile wrk measures one of the server's other pages (PAGE, default `/`), and the same
#     wrk run is made without the storm first, side by side.
# Printed: the emulator's view (API calls, 429s, the most calls in any one second vs. the
# server's limit + burst, calls per login callback), the storm's outcomes, and the page's
# latency percentiles with and without the storm.
#
#   bench/storm429.sh
#   EMU_RATE=50 SRV_RATE=100 SRV_BURST=20 STORM_RATE=800 DURATION=20 bench/storm429.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults EMU_RATE=50 SRV_RATE=100 SRV_BURST=20 STORM_RATE=800 DURATION=20 PAGE=/ \
  WRK_CONNECTIONS=4 EMU_PORT=9310 SRV_PORT=8390

command -v wrk >/dev/null || { echo "storm429: needs wrk (apt-get install wrk)" >&2; exit 2; }
build
BIN=target/release/linelogin
work_dir

EMU_TOP="journal_capacity = 1000000" EMU_CHANNEL="rate_limit_per_second = $EMU_RATE" \
  emulator_config "$WORK" "$EMU_PORT" "http://127.0.0.1:$SRV_PORT/callback"
server_config "$WORK" "$SRV_PORT" "$EMU_PORT" "$SRV_RATE" "$SRV_BURST"
start_both "$WORK" "$EMU_PORT" "$SRV_PORT"

WRK_SECS=$((DURATION - 4))
echo "== $PAGE without the storm (wrk, $WRK_CONNECTIONS connections, ${WRK_SECS}s)"
wrk -t1 -c"$WRK_CONNECTIONS" -d"${WRK_SECS}s" --latency "http://127.0.0.1:$SRV_PORT$PAGE" > "$WORK/wrk-quiet.txt"
grep -E '^\s+(50|90|99)%|Requests/sec|Non-2xx' "$WORK/wrk-quiet.txt"

echo "== $PAGE during a login storm of $STORM_RATE flows/s offered (emulator limit $EMU_RATE/s, server limit $SRV_RATE/s + burst $SRV_BURST)"
START_MS=$(($(date +%s%N) / 1000000))
"$BIN" loadtest --max-failure-rate 1 --target "http://127.0.0.1:$SRV_PORT" --rate "$STORM_RATE" --concurrency 512 \
  --duration "$DURATION" --quiet --json "$WORK/storm.json" > "$WORK/storm.txt" &
STORM=$!
sleep 2
wrk -t1 -c"$WRK_CONNECTIONS" -d"${WRK_SECS}s" --latency "http://127.0.0.1:$SRV_PORT$PAGE" > "$WORK/wrk-storm.txt"
grep -E '^\s+(50|90|99)%|Requests/sec|Non-2xx' "$WORK/wrk-storm.txt"
wait "$STORM" || true

curl -s "http://127.0.0.1:$EMU_PORT/_emulator/journal?limit=1000000" > "$WORK/journal.json"
python3 - "$WORK/journal.json" "$WORK/storm.json" "$SRV_RATE" "$SRV_BURST" <<'PY'
import json, sys, datetime
journal = json.load(open(sys.argv[1]))["entries"]
storm = json.load(open(sys.argv[2]))
rate, burst = int(sys.argv[3]), int(sys.argv[4])
api = [e for e in journal if not e["path"].startswith(("/oauth2/v2.1/authorize", "/_emulator"))]
def ms(e):
    return datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() * 1000
times = sorted(ms(e) for e in api)
most, j = 0, 0
for i, t in enumerate(times):
    while times[j] <= t - 1000:
        j += 1
    most = max(most, i - j + 1)
limited = sum(1 for e in api if e["status"] == 429)
token = sum(1 for e in api if e["path"] == "/oauth2/v2.1/token")
callbacks = storm["ok"] + storm["failed"]
print(f"emulator: {len(api)} API calls, {limited} answered 429, {token} token calls for {callbacks} flows")
print(f"most API calls in any one second: {most} (server limit + burst: {rate + burst}) -> {'OK' if most <= rate + burst else 'OVER'}")
print(f"storm: {storm['ok']} flows ok, {storm['failed']} failed; errors: {storm.get('errors', {})}")
PY
