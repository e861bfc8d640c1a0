#!/usr/bin/env bash
# The compatibility suite: real LINE Login client libraries log in against a running
# linelogin emulator, each unchanged except for its endpoint URLs (see compat/README.md).
#
#   LINELOGIN_BIN=target/debug/linelogin bash compat/run.sh
#
# Builds and installs nothing: it needs a built `linelogin` (LINELOGIN_BIN, default
# target/debug/linelogin, relative to the repository root), compat/node/node_modules
# (`npm ci --prefix compat/node`) and the Python packages
# (`pip install -r compat/python/requirements.txt`). Starts the emulator on a free loopback
# port with compat/emulator.toml and --auto-consent, runs each login, stops the emulator,
# prints one line per library and `N passed, N failed`; exits 1 on any failure.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${LINELOGIN_BIN:-target/debug/linelogin}"
NODE_DIR="$ROOT/compat/node"
PY="${PYTHON:-python3}"

die() { echo "compat: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
[ -x "$BIN" ] || die "no linelogin binary at $BIN (build it: cargo build -p linelogin; or set LINELOGIN_BIN)"
command -v node >/dev/null || die "node is not installed"
[ -d "$NODE_DIR/node_modules" ] || die "compat/node/node_modules is missing: run npm ci --prefix compat/node"
"$PY" -c 'import authlib, requests, joserfc' 2>/dev/null \
  || die "the Python packages are missing: run pip install -r compat/python/requirements.txt"

LOG="$(mktemp)"
"$BIN" emulator --config compat/emulator.toml --listen 127.0.0.1:0 --auto-consent >"$LOG" 2>&1 &
EMU_PID=$!
cleanup() { kill -INT "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; rm -f "$LOG"; }
trap cleanup EXIT

# The emulator prints its base URL on the first line once it listens; then its discovery
# document must answer.
EMULATOR_URL=""
for _ in $(seq 1 100); do
  EMULATOR_URL="$(sed -n '1s/^LINE Platform emulator .* at \(http[^ ]*\)$/\1/p' "$LOG")"
  [ -n "$EMULATOR_URL" ] && break
  kill -0 "$EMU_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$EMULATOR_URL" ] || { cat "$LOG" >&2; die "the emulator did not start"; }
curl -fsS --max-time 5 "$EMULATOR_URL/.well-known/openid-configuration" >/dev/null \
  || die "the emulator at $EMULATOR_URL does not answer"
export EMULATOR_URL CHANNEL_ID=1234567890 CHANNEL_SECRET=0123456789abcdef0123456789abcdef

passed=0
failed=0
run() {
  # Each login prints its own `ok …` / `FAIL …: hop: message` line; a crash or a hang
  # (bounded: 60 s) is a failure of that library too.
  local name="$1"; shift
  local out rc
  out="$(timeout 60 "$@" 2>&1)"; rc=$?
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^ok '; then
    printf '%s\n' "$out" | grep '^ok '
    passed=$((passed + 1))
  else
    if printf '%s\n' "$out" | grep -q '^FAIL '; then
      printf '%s\n' "$out" | grep '^FAIL '
    else
      echo "FAIL $name: harness: exit $rc: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-400)"
    fi
    failed=$((failed + 1))
  fi
}

run authjs node "$NODE_DIR/authjs.mjs"
run openid-client node "$NODE_DIR/openid-client.mjs"
COMPAT_AUTH=basic run openid-client-basic node "$NODE_DIR/openid-client.mjs"
run passport-line-auth node "$NODE_DIR/passport-line-auth.cjs"
run authlib "$PY" "$ROOT/compat/python/authlib_login.py"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
