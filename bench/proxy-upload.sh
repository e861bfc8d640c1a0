#!/usr/bin/env bash
# Peak memory of the gateway's reverse proxy (crates/line-proxy) while a large body streams
# through it: 1 GiB uploaded (chunked, from curl's stdin) and 1 GiB downloaded, through the
# proxy served as the gateway serves it (an axum fallback on line-listener), to an upstream
# in another process. Everything binds to 127.0.0.1:0.
#
#   bench/proxy-upload.sh                  # 1 GiB each way, debug build of the example
#   BYTES=268435456 PROFILE=release bench/proxy-upload.sh
#
# Prints the proxy's resident memory before, and its peak (VmHWM) after each transfer, with
# the throughput. Memory barely depends on the build profile; throughput does.
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${BYTES:-1073741824}
PROFILE=${PROFILE:-debug}

if [ "$PROFILE" = release ]; then
  cargo build -q --release -p line-proxy --example proxy_upload
else
  cargo build -q -p line-proxy --example proxy_upload
fi
BIN=target/$PROFILE/examples/proxy_upload

WORK=$(mktemp -d)
cleanup() { for f in "$WORK"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

# Starts "$@" (its pid in $WORK/$name.pid, killed on exit) with stdout to $WORK/$name.out; waits for its "listening on ADDR" line.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 100); do
    if grep -q '^listening on ' "$WORK/$name.out" 2>/dev/null; then
      sed -n 's/^listening on //p' "$WORK/$name.out"
      return
    fi
    sleep 0.1
  done
  echo "$name did not start: $(cat "$WORK/$name.err")" >&2
  exit 1
}

kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$2/status"; }

UP=$(start upstream "$BIN" upstream)
PROXY=$(start proxy "$BIN" proxy "http://$UP")
PROXY_PID=$(cat "$WORK/proxy.pid")
echo "upstream $UP, proxy $PROXY (pid $PROXY_PID), $BYTES bytes each way, $PROFILE build"
echo "proxy RSS at rest: $(kib VmRSS "$PROXY_PID") KiB"

START=$(date +%s.%N)
GOT=$(head -c "$BYTES" /dev/zero | curl -sS --fail -T - -X POST "http://$PROXY/upload")
END=$(date +%s.%N)
[ "$GOT" = "$BYTES" ] || { echo "the upstream got $GOT bytes, not $BYTES" >&2; exit 1; }
echo "upload:   the upstream got all $GOT bytes in $(awk -v s="$START" -v e="$END" 'BEGIN {printf "%.1f", e-s}') s; proxy peak RSS (VmHWM) $(kib VmHWM "$PROXY_PID") KiB"

START=$(date +%s.%N)
GOT=$(curl -sS --fail -o /dev/null -w '%{size_download}' "http://$PROXY/download?bytes=$BYTES")
END=$(date +%s.%N)
[ "$GOT" = "$BYTES" ] || { echo "the client got $GOT bytes, not $BYTES" >&2; exit 1; }
echo "download: the client got all $GOT bytes in $(awk -v s="$START" -v e="$END" 'BEGIN {printf "%.1f", e-s}') s; proxy peak RSS (VmHWM) $(kib VmHWM "$PROXY_PID") KiB"
