#!/usr/bin/env bash
# A fleet on this machine: HAProxy (round robin) in front of N server instances on one
# PostgreSQL and one Redis (the shared outbound limit), one emulator, and the load-test runner
# aimed at HAProxy. For each N it reports:
#   - login flows/s and failures;
#   - each instance's share (callbacks it logged: its own authorization-response.<i>.log, and
#     the requests HAProxy sent it, from the stats socket);
#   - the emulator's busiest second of token + deauthorize calls (its journal), against the
#     configured limit rate + burst;
#   - CPU per flow of each process (instances, PostgreSQL, Redis, HAProxy, emulator, runner).
#
# Everything is private and on loopback: a PostgreSQL cluster (initdb, durability defaults), a
# redis-server, HAProxy with a stats socket, in a temporary directory; each N starts afresh
# (new database, new Redis, new logs). Each run lasts DURATION seconds (default 20, at most 30).
#
#   bench/fleet.sh                          # N = 1, 2, 3; 64 virtual users; limit 1000/s + 100
#   NS="1 2 3" DURATION=20 VUS=64 RATE=1000 BURST=100 bench/fleet.sh
#   NO_BUILD=1 BIN=/tmp/linelogin bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults "NS=1 2 3" DURATION=20 VUS=64 RATE=1000 BURST=100 EMU_PORT=9351 HA_PORT=8420 \
  SRV_BASE=8421 PG_PORT=55481 REDIS_PORT=6391
[ "$DURATION" -le 30 ] || { echo "fleet: DURATION is at most 30 s" >&2; exit 2; }
command -v haproxy > /dev/null || { echo "fleet: needs haproxy (apt-get install haproxy)" >&2; exit 2; }
command -v redis-server > /dev/null || { echo "fleet: needs redis-server" >&2; exit 2; }
pg_binaries fleet

build
BIN=$(realpath "${BIN:-target/release/linelogin}")
TICK=$(getconf CLK_TCK)

work_dir
RESULTS="$WORK/results"
cleanup_more() { pg stop -m fast 2>/dev/null || true; }

pg_cluster "$PG_PORT" max_connections=200
touch "$RESULTS"

for N in $NS; do
  RUN="$WORK/n$N"
  mkdir -p "$RUN/logs"
  DB="fleet$N"
  psql_at -d postgres -c "CREATE DATABASE $DB" > /dev/null
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$RUN/redis.out" 2>&1 &
  REDIS=$!; PIDS+=("$REDIS")

  EMU_TOP="journal_capacity = 1000000" \
    emulator_config "$RUN" "$EMU_PORT" "http://127.0.0.1:$HA_PORT/callback"
  start_emulator "$RUN"; EMU=$STARTED; PIDS+=("$EMU")

  # HAProxy: round robin over the instances, per request; a stats socket for the shares.
  {
    echo "global"
    echo "  maxconn 4096"
    echo "  stats socket $RUN/haproxy.sock mode 600 level admin"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 5s"
    echo "  timeout client 30s"
    echo "  timeout server 30s"
    echo "frontend fe"
    echo "  bind 127.0.0.1:$HA_PORT"
    echo "  default_backend be"
    echo "backend be"
    echo "  balance roundrobin"
    for i in $(seq 1 "$N"); do echo "  server i$i 127.0.0.1:$((SRV_BASE + i - 1))"; done
  } > "$RUN/haproxy.cfg"
  haproxy -f "$RUN/haproxy.cfg" > "$RUN/haproxy.out" 2>&1 &
  HA=$!; PIDS+=("$HA")

  SRVS=()
  for i in $(seq 1 "$N"); do
    mkdir -p "$RUN/i$i"
    server_config "$RUN/i$i" "$((SRV_BASE + i - 1))" "$EMU_PORT" "$RATE" "$BURST"
    # Every instance is reached through HAProxy, on one database, one Redis and one log
    # directory; the first creates the schema before the others start.
    sed -i -e "s|^public_url = .*|public_url = \"http://127.0.0.1:$HA_PORT\"|" \
      -e "s|^database_url = .*|database_url = \"postgres://postgres@127.0.0.1:$PG_PORT/$DB\"|" \
      -e "s|^dir = .*|dir = \"$RUN/logs\"\ninstance = \"i$i\"|" \
      -e "s|^\[outbound\]|[outbound]\nredis_url = \"redis://127.0.0.1:$REDIS_PORT\"\ninstances = $N|" \
      "$RUN/i$i/server.toml"
    [ "$i" = 1 ] || sed -i "s|^token_encryption_key = .*|$(grep '^token_encryption_key' "$RUN/i1/server.toml")|" "$RUN/i$i/server.toml"
    start_server "$RUN/i$i"; SRVS+=("$STARTED"); PIDS+=("$STARTED")
    wait_ready "http://127.0.0.1:$((SRV_BASE + i - 1))/healthz"
  done
  wait_ready "http://127.0.0.1:$EMU_PORT/_emulator/stats" "http://127.0.0.1:$HA_PORT/healthz"
  curl -s "http://127.0.0.1:$SRV_BASE/healthz" > "$RUN/healthz.json"

  before=()
  for p in "${SRVS[@]}" "$EMU" "$HA" "$REDIS"; do before+=("$(cpu_ticks "$p")"); done
  pg0=$(pg_ticks)
  /usr/bin/time -f "%U %S" -o "$RUN/runner.cpu" "$BIN" loadtest --max-failure-rate 1 \
    --target "http://127.0.0.1:$HA_PORT" --duration "$DURATION" --concurrency "$VUS" \
    --quiet --json "$RUN/run.json" > /dev/null
  after=()
  for p in "${SRVS[@]}" "$EMU" "$HA" "$REDIS"; do after+=("$(cpu_ticks "$p")"); done
  pg1=$(pg_ticks)
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n")
out = b""
while chunk := s.recv(65536): out += chunk
sys.stdout.write(out.decode())' "$RUN/haproxy.sock" > "$RUN/haproxy.csv"
  curl -s "http://127.0.0.1:$EMU_PORT/_emulator/journal?limit=1000000&endpoint=token" > "$RUN/token.json"
  curl -s "http://127.0.0.1:$EMU_PORT/_emulator/journal?limit=1000000&endpoint=deauthorize" > "$RUN/deauthorize.json"
  stop_started

  cpu=""
  for k in "${!before[@]}"; do cpu+="$((after[k] - before[k])) "; done
  python3 - "$RUN" "$N" "$TICK" "$RATE" "$BURST" $((pg1 - pg0)) $cpu <<'PY' | tee -a "$RESULTS"
import csv, json, os, sys
from datetime import datetime
run, n, tick, rate, burst, pgt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ticks = [int(t) for t in sys.argv[7:]]
srv, (emu, ha, redis) = ticks[:n], ticks[n:]
r = json.load(open(f"{run}/run.json"))
flows = max(r["ok"] + r["failed"], 1)
user, system = map(float, open(f"{run}/runner.cpu").read().split()[:2])
ms = lambda t: t / tick * 1000 / flows
# Callbacks each instance logged (its own file), and requests HAProxy sent it.
callbacks = []
for i in range(1, n + 1):
    path = f"{run}/logs/authorization-response.i{i}.log"
    callbacks.append(sum(1 for _ in open(path)) if os.path.exists(path) else 0)
requests, header = {}, []
for row in csv.reader(open(f"{run}/haproxy.csv")):
    if row and row[0].startswith("# pxname"):
        header = [h.strip("# ") for h in row]
    elif row and row[0] == "be" and row[1].startswith("i"):
        d = dict(zip(header, row))
        requests[row[1]] = int(d.get("req_tot") or d.get("stot") or 0)
# The busiest second (sliding one-second window) of token + deauthorize calls at the emulator.
times = []
for name in ("token", "deauthorize"):
    for e in json.load(open(f"{run}/{name}.json"))["entries"]:
        times.append(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp())
times.sort()
peak, lo = 0, 0
for hi in range(len(times)):
    while times[hi] - times[lo] >= 1.0:
        lo += 1
    peak = max(peak, hi - lo + 1)
total_cb = max(sum(callbacks), 1)
print(json.dumps({
    "instances": n, "flows_per_s": r["flows_per_s"], "ok": r["ok"], "failed": r["failed"],
    "errors": r.get("errors", {}), "p99_ms": r["latency_ms"]["p99"],
    "share_callbacks": [round(c / total_cb, 3) for c in callbacks],
    "haproxy_requests": requests,
    "busiest_second": peak, "limit": rate + burst, "token_and_deauthorize_calls": len(times),
    "cpu_ms_per_flow": {**{f"i{i + 1}": round(ms(t), 3) for i, t in enumerate(srv)},
                        "postgres": round(ms(pgt), 3), "redis": round(ms(redis), 3),
                        "haproxy": round(ms(ha), 3), "emulator": round(ms(emu), 3),
                        "runner": round((user + system) * 1000 / flows, 3)},
}))
PY
  grep -h -E 'ERROR' "$RUN"/i*/server.out | head -5 || true
done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\n| N | flows/s | failed | p99 ms | share of callbacks | busiest second (limit) | CPU ms/flow: instances | postgres | redis | haproxy | emulator |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    c = r["cpu_ms_per_flow"]
    inst = " + ".join(f"{c[f'i{i}']:.3f}" for i in range(1, r["instances"] + 1))
    share = " / ".join(f"{s:.2f}" for s in r["share_callbacks"])
    print(f"| {r['instances']} | {r['flows_per_s']:.0f} | {r['failed']} | {r['p99_ms']:.1f} | {share} | "
          f"{r['busiest_second']} ({r['limit']}) | {inst} | {c['postgres']:.3f} | {c['redis']:.3f} | "
          f"{c['haproxy']:.3f} | {c['emulator']:.3f} |")
PY
