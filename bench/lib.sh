# Shared by the bench scripts (source it): configuration files for an emulator (auto-consent,
# one channel) and our server (SQLite, guideline logs on), their start-up on loopback, and
# waiting until they answer. Every function takes the work directory first.

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
