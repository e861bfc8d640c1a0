#!/bin/sh
# The gateway's own cost, side by side in one run (wrk, medians of RUNS runs):
#   1. the upstream alone (a tiny axum "hello", in the bench process);
#   2. nginx proxying that upstream, no authentication;
#   3. linelogin in proxy mode, an authenticated GET (session lookup + assertion + proxy);
#   4. linelogin's forward-auth endpoint (`/linelogin/auth`) alone;
# then p50/p99 latency at moderate load (1 thread, 4 connections) of 1 and 3.
#
#   cargo build --release -p linelogin-server --example gateway_bench
#   bench/gateway-core.sh            # RUNS=3 SECS=5 CONNS=32 by default
#
# Needs wrk and nginx (Debian packages). Everything binds 127.0.0.1; nothing is left running.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-32}
BIN=${BIN:-target/release/examples/gateway_bench}
TMP=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

"$BIN" >"$TMP/out" 2>"$TMP/err" &
PIDS="$!"
i=0
until grep -q '^cookie=' "$TMP/out" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then echo "gateway_bench did not start:" >&2; cat "$TMP/err" >&2; exit 1; fi
    sleep 0.1
done
UP=$(sed -n 's/^upstream=//p' "$TMP/out")
GW=$(sed -n 's/^gateway=//p' "$TMP/out")
COOKIE=$(sed -n 's/^cookie=//p' "$TMP/out")

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
    upstream app { server ${UP#http://}; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
PIDS="$PIDS $!"
NGINX="http://127.0.0.1:$PORT"
i=0
until curl -fs "$NGINX/" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 100 ] && { echo "nginx did not start" >&2; exit 1; }; sleep 0.1
done
curl -fs -H "Cookie: $COOKIE" "$GW/app" | grep -q hello || { echo "gateway does not proxy" >&2; exit 1; }

median_rps() { # name, then wrk arguments
    name=$1; shift
    for _ in $(seq "$RUNS"); do
        wrk -t2 -c"$CONNS" -d"${SECS}s" "$@" | sed -n 's/^Requests\/sec: *//p'
    done | sort -n | awk -v n="$name" '{ a[NR] = $1 } END { printf "%-34s %10.0f req/s (median of %d)\n", n, a[int((NR + 1) / 2)], NR }'
}
latency() { # name, then wrk arguments
    name=$1; shift
    wrk -t1 -c4 -d"${SECS}s" --latency "$@" | awk -v n="$name" '
        / 50%/ { p50 = $2 } / 99%/ { p99 = $2 } /^Requests\/sec/ { r = $2 }
        END { printf "%-34s p50 %8s  p99 %8s  (%s req/s)\n", n, p50, p99, r }'
}

echo "wrk -t2 -c$CONNS -d${SECS}s, $RUNS runs each, on $(nproc) cores"
median_rps "upstream alone" "$UP/app"
median_rps "nginx -> upstream (no auth)" "$NGINX/app"
median_rps "linelogin proxy, authenticated" -H "Cookie: $COOKIE" "$GW/app"
median_rps "linelogin /linelogin/auth" -H "Cookie: $COOKIE" "$GW/linelogin/auth"
echo "latency at moderate load (wrk -t1 -c4 -d${SECS}s)"
latency "upstream alone" "$UP/app"
latency "linelogin proxy, authenticated" -H "Cookie: $COOKIE" "$GW/app"
