#!/usr/bin/env bash
# The PostgreSQL path against SQLite, side by side in one run: login flows per second of our
# server on each database with the same load-test runner, emulator and virtual users, and where
# the time goes on PostgreSQL: statements and transactions per flow (pg_stat_statements and
# pg_stat_database), CPU per flow of the server, of PostgreSQL (the postmaster and all its
# children) and of the emulator.
#
# PostgreSQL is a private cluster in a temporary directory (initdb, port PG_PORT), with its
# durability defaults (fsync on, synchronous_commit on) and pg_stat_statements loaded; each
# PostgreSQL run gets a new database. SQLite runs use a new file. Runs alternate SQLite and
# PostgreSQL (and, with BINS, the builds), so machine noise hits both alike.
#
#   bench/pgpath.sh                                 # 3 runs of 10 s each, 64 virtual users
#   RUNS=5 DURATION=10 VUS=64 bench/pgpath.sh
#   NO_BUILD=1 BINS="/tmp/old/linelogin target/release/linelogin" bench/pgpath.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults RUNS=3 DURATION=10 VUS=64 EMU_PORT=9341 SRV_PORT=8407 PG_PORT=55471

build
BINS=${BINS:-$PWD/target/release/linelogin}
pg_binaries pgpath
TICK=$(getconf CLK_TCK)

work_dir
RESULTS="$WORK/results"
EMU=""; SRV=""
cleanup_more() {
  [ -z "$EMU$SRV" ] || kill $EMU $SRV 2>/dev/null || true
  pg stop -m fast 2>/dev/null || true
}

pg_cluster "$PG_PORT" shared_preload_libraries=pg_stat_statements pg_stat_statements.track=top
for db in template1 postgres; do psql_at -d "$db" -c "CREATE EXTENSION pg_stat_statements" > /dev/null; done

touch "$RESULTS"
n=0
for run in $(seq 1 "$RUNS"); do
 for BIN in $BINS; do
  BIN=$(realpath "$BIN")
  for DB in sqlite postgres; do
    n=$((n + 1))
    RUN="$WORK/run$n"
    mkdir -p "$RUN"
    emulator_config "$RUN" "$EMU_PORT" "http://127.0.0.1:$SRV_PORT/callback"
    server_config "$RUN" "$SRV_PORT" "$EMU_PORT"
    if [ "$DB" = postgres ]; then
      DBNAME="flows$n"
      psql_at -d postgres -c "CREATE DATABASE $DBNAME" > /dev/null
      sed -i "s|^database_url = .*|database_url = \"postgres://postgres@127.0.0.1:$PG_PORT/$DBNAME\"|" "$RUN/server.toml"
    fi
    start_emulator "$RUN"; EMU=$STARTED
    start_server "$RUN"; SRV=$STARTED
    wait_ready "http://127.0.0.1:$EMU_PORT/_emulator/stats" "http://127.0.0.1:$SRV_PORT/healthz"
    if [ "$DB" = postgres ]; then
      psql_at -d "$DBNAME" -c "SELECT pg_stat_statements_reset()" > /dev/null
      x0=$(psql_at -d "$DBNAME" -c "SELECT pg_stat_force_next_flush(); SELECT xact_commit FROM pg_stat_database WHERE datname = '$DBNAME'" | tail -n1)
    fi
    e0=$(cpu_ticks $EMU); s0=$(cpu_ticks $SRV); p0=$(pg_ticks)
    "$BIN" loadtest --max-failure-rate 1 --target "http://127.0.0.1:$SRV_PORT" \
      --duration "$DURATION" --concurrency "$VUS" --quiet --json "$RUN/run.json" > /dev/null
    e1=$(cpu_ticks $EMU); s1=$(cpu_ticks $SRV); p1=$(pg_ticks)
    kill $EMU $SRV 2>/dev/null || true
    wait $EMU $SRV 2>/dev/null || true
    EMU=""; SRV=""
    statements=0; xacts=0; top=""
    if [ "$DB" = postgres ]; then
      sleep 1 # the backends report their statistics when their connections close
      x1=$(psql_at -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DBNAME'")
      xacts=$((x1 - x0))
      statements=$(psql_at -d postgres -c "SELECT COALESCE(SUM(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$DBNAME'")
      top=$(psql_at -d postgres -F '|' -c "SELECT s.calls, left(regexp_replace(s.query, '\s+', ' ', 'g'), 70) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$DBNAME' ORDER BY s.calls DESC LIMIT 8" | tr '\n' '~')
    fi
    python3 - "$RUN/run.json" $((e1 - e0)) $((s1 - s0)) $((p1 - p0)) "$TICK" "$run" "$BIN" "$DB" "$statements" "$xacts" "$top" <<'PY' | tee -a "$RESULTS"
import json, sys
r = json.load(open(sys.argv[1]))
emu, srv, pgt, tick = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run, binary, db, statements, xacts, top = sys.argv[6], sys.argv[7], sys.argv[8], int(sys.argv[9]), int(sys.argv[10]), sys.argv[11]
n = max(r["ok"] + r["failed"], 1)
ms = lambda ticks: ticks / tick * 1000 / n
out = {"run": run, "bin": binary, "db": db, "flows_per_s": r["flows_per_s"], "ok": r["ok"],
       "failed": r["failed"], "p99": r["latency_ms"]["p99"], "server": ms(srv), "emulator": ms(emu)}
if db == "postgres":
    out.update({"postgres": ms(pgt), "statements_per_flow": statements / n, "xacts_per_flow": xacts / n,
                "top": [f"{int(c) / n:.2f}/flow {q}" for c, q in (l.split("|", 1) for l in top.split("~") if l)]})
print(json.dumps(out))
PY
    [ "$DB" = postgres ] && psql_at -d postgres -c "DROP DATABASE $DBNAME" > /dev/null
    failures_logged "$RUN"
  done
 done
done
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for binary in dict.fromkeys(r["bin"] for r in runs):
    med = {}
    for db in ("sqlite", "postgres"):
        rs = [r for r in runs if r["bin"] == binary and r["db"] == db]
        m = lambda k: statistics.median(r[k] for r in rs)
        med[db] = m("flows_per_s")
        line = (f"  {db:8} median of {len(rs)}: {m('flows_per_s'):.0f} flows/s, p99 {m('p99'):.1f} ms, "
                f"failed {sum(r['failed'] for r in rs)}; CPU per flow: server {m('server'):.3f} ms, "
                f"emulator {m('emulator'):.3f} ms")
        if db == "postgres":
            line += (f", postgres {m('postgres'):.3f} ms; statements {m('statements_per_flow'):.2f}/flow, "
                     f"transactions {m('xacts_per_flow'):.2f}/flow")
        print(binary if db == "sqlite" else "", line, sep="\n" if db == "sqlite" else "")
    print(f"  postgres / sqlite: {med['postgres'] / med['sqlite']:.2f}")
PY
