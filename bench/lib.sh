# Shared by the bench scripts (source it): their tunables and build, a work directory that
# goes away with the processes started in it, configuration files for an emulator
# (auto-consent, one channel) and our server (SQLite, guideline logs on), their start-up on
# loopback and waiting until they answer, a private PostgreSQL cluster, and reading a
# process's CPU and memory. Functions that write files take the work directory first.

# defaults NAME=VALUE... — each NAME that the environment leaves empty gets VALUE (so
# `RUNS=5 bench/flows.sh` overrides one tunable).
defaults() {
  local kv name
  for kv in "$@"; do
    name=${kv%%=*}
    [ -n "${!name:-}" ] || printf -v "$name" '%s' "${kv#*=}"
  done
}

# build — the release binary, unless NO_BUILD is set.
build() { [ -n "${NO_BUILD:-}" ] || cargo build --release -q -p linelogin; }

# work_dir — a new temporary directory in WORK; on exit every process whose id is in PIDS is
# stopped, then `cleanup_more` runs if the script defines it, then the directory is removed
# (kept with KEEP=1).
work_dir() {
  WORK=$(mktemp -d)
  PIDS=()
  trap cleanup EXIT
}
cleanup() {
  stop_started
  if declare -F cleanup_more > /dev/null; then cleanup_more; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}

CHANNEL_ID=1234567890
CHANNEL_SECRET=0123456789abcdef0123456789abcdef

# emulator_config WORK PORT CALLBACK_URL... — writes WORK/emulator.toml. $EMU_TOP and
# $EMU_CHANNEL add TOML lines at the top level and to the channel.
emulator_config() {
  local work=$1 port=$2
  shift 2
  local callbacks
  callbacks=$(printf '"%s", ' "$@")
  cat > "$work/emulator.toml" <<TOML
listen = "127.0.0.1:$port"
auto_consent = true
${EMU_TOP:-}
[[channels]]
id = "$CHANNEL_ID"
secret = "$CHANNEL_SECRET"
callback_urls = [${callbacks%, }]
${EMU_CHANNEL:-}
TOML
}

# server_config WORK PORT EMULATOR_PORT [RATE BURST] — writes WORK/server.toml: database and
# logs in WORK, outbound limit RATE/s with BURST (default: high enough never to bind).
server_config() {
  local work=$1 port=$2 emu=$3 rate=${4:-100000} burst=${5:-10000} key
  key=$(python3 -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')
  cat > "$work/server.toml" <<TOML
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
database_url = "sqlite://$work/linelogin.db"
token_encryption_key = "$key"
[line]
channel_id = "$CHANNEL_ID"
channel_secret = "$CHANNEL_SECRET"
auth_url = "http://127.0.0.1:$emu"
api_url = "http://127.0.0.1:$emu"
[outbound]
rate_limit_per_second = $rate
burst = $burst
[logs]
dir = "$work/logs"
retention_days = 90
TOML
}

# start_emulator WORK / start_server WORK — start $BIN in the background (output in WORK/*.out);
# the process id is left in $STARTED.
start_emulator() {
  "$BIN" emulator --config "$1/emulator.toml" > "$1/emulator.out" 2>&1 &
  STARTED=$!
}
start_server() {
  LINELOGIN_LOAD_TEST=1 "$BIN" serve --config "$1/server.toml" > "$1/server.out" 2>&1 &
  STARTED=$!
}

# stop_started — stops every process whose id is in PIDS, and empties PIDS.
stop_started() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# start_both WORK EMULATOR_PORT SERVER_PORT — the emulator and the server of WORK's
# configuration files, started and answering; their ids in EMU and SRV, and added to PIDS.
start_both() {
  start_emulator "$1"; EMU=$STARTED
  start_server "$1"; SRV=$STARTED
  PIDS+=("$EMU" "$SRV")
  wait_ready "http://127.0.0.1:$2/_emulator/stats" "http://127.0.0.1:$3/healthz"
}

# wait_ready URL... — until each URL answers (at most 10 s each).
wait_ready() {
  local url
  for url in "$@"; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
  done
}

# failures_logged WORK — what the server and the emulator logged as failures (at most 20 lines).
failures_logged() {
  grep -h -E 'ERROR|WARN' "$1/server.out" "$1/emulator.out" | head -20 || true
}

# cpu_ticks PID — user + system CPU of a process so far, in clock ticks (getconf CLK_TCK).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# rss PID — resident memory of a process in KiB (0 once it is gone).
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# pg_binaries NAME — PG_BIN (default: the newest installed PostgreSQL), or exit 2 naming the
# script.
pg_binaries() {
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
  [ -x "$PG_BIN/initdb" ] || { echo "$1: no PostgreSQL binaries (set PG_BIN)" >&2; exit 2; }
}

# pg_cluster PORT [SETTING...] — a private PostgreSQL cluster in WORK/pg (initdb, trust), started
# on 127.0.0.1:PORT with each SETTING as `-c SETTING`; its start options stay in PG_OPTS (for
# `pg restart -o "$PG_OPTS"`), its postmaster's id in PM. Nothing else on the machine is
# touched.
pg_cluster() {
  local port=$1 s
  shift
  PG_PORT=$port
  PGDATA="$WORK/pg"
  PG_OPTS="-p $port -k $WORK -c listen_addresses=127.0.0.1"
  for s in "$@"; do PG_OPTS="$PG_OPTS -c $s"; done
  chmod 755 "$WORK"
  mkdir -p "$PGDATA" && [ "$(id -u)" != 0 ] || chown postgres "$WORK" "$PGDATA"
  as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust > /dev/null
  pg start -o "$PG_OPTS"
  PM=$(head -n1 "$PGDATA/postmaster.pid")
}
# as_postgres CMD... — CMD as the postgres user when run as root.
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# pg ARGS... — pg_ctl on the cluster (`pg stop -m fast`).
pg() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg.log" -w "$@" > /dev/null; }
# psql_at ARGS... — psql on the cluster, unaligned tuples only.
psql_at() { as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -At "$@"; }
# pg_ticks — CPU ticks of the postmaster and every process it started (backends, WAL writer…).
pg_ticks() {
  local total=0 p
  for p in $PM $(pgrep -P "$PM"); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(cpu_ticks "$p" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
