#!/usr/bin/env bash
# The gateway benchmark, side by side in one run (issue 13's targets):
#   A. nginx alone, proxying the app without any authentication (the practical limit);
#   B. linelogin's proxy mode, authenticated GET (session cookie + identity headers + ES256
#      assertion) to the same app;
#   C. the Node gateway (bench/node-gateway: Express, passport-line-auth, express-session,
#      http-proxy-middleware, a jose-signed assertion), authenticated, to the same app;
#   D. nginx with `auth_request` through linelogin (deploy/nginx/linelogin.conf's scheme);
#   and the latency linelogin adds at p99 at moderate load (one connection, closed loop):
#   B vs the app directly.
# The app is an nginx server block answering 200 with a short body, so that the proxies, not
# the app, are what is measured. Everything binds 127.0.0.1; each wrk run lasts DURATION s.
#
#   bench/gateway.sh                       # 3 runs of 5 s each, 32 connections
#   RUNS=5 DURATION=10 CONNS=64 bench/gateway.sh
#
# Prints each run's requests/s, then the medians and the ratios against the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
defaults RUNS=3 DURATION=5 CONNS=32 THREADS=2
for p in wrk nginx node curl; do command -v $p >/dev/null || { echo "gateway.sh: $p is not installed" >&2; exit 1; }; done

build
defaults BIN=target/release/linelogin
(cd bench/node-gateway && npm ci --no-audit --no-fund --silent)

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
EMU=$(port); APP=$(port); NGX=$(port); GW=$(port); NODE=$(port); FA=$(port); FA_LL=$(port)

work_dir
mkdir -p "$WORK/nginx/tmp"

# The app (nginx answering 200), nginx alone in front of it (A), and nginx + auth_request (D).
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid nginx.pid;
error_log stderr error;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  upstream app { server 127.0.0.1:$APP; keepalive 64; }
  upstream linelogin { server 127.0.0.1:$FA_LL; keepalive 64; }
  server { listen 127.0.0.1:$APP; location / { default_type text/plain; return 200 "hello from the app\n"; } }
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$FA;
    location /linelogin/ { proxy_pass http://linelogin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$http_host; }
    location = /linelogin/auth {
      internal; proxy_pass http://linelogin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header X-Forwarded-Uri \$request_uri;
    }
    location / {
      auth_request /linelogin/auth;
      auth_request_set \$ll_user \$upstream_http_x_linelogin_user;
      auth_request_set \$ll_assertion \$upstream_http_x_linelogin_assertion;
      proxy_set_header X-LineLogin-User \$ll_user;
      proxy_set_header X-LineLogin-Assertion \$ll_assertion;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" > "$WORK/nginx.out" 2>&1 & PIDS+=($!)

emulator_config "$WORK" "$EMU" "http://127.0.0.1:$GW/linelogin/callback" "http://127.0.0.1:$NODE/linelogin/callback" "http://127.0.0.1:$FA/linelogin/callback"
start_emulator "$WORK"; PIDS+=($STARTED)

gateway_config() { # FILE LISTEN PUBLIC_PORT UPSTREAM_LINE
  local key; key=$(python3 -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')
  cat > "$1" <<TOML
listen = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$3"
database_url = "sqlite://$WORK/gw-$2.db"
token_encryption_key = "$key"
[line]
channel_id = "$CHANNEL_ID"
channel_secret = "$CHANNEL_SECRET"
auth_url = "http://127.0.0.1:$EMU"
api_url = "http://127.0.0.1:$EMU"
[outbound]
rate_limit_per_second = 100000
burst = 10000
[logs]
dir = "$WORK/logs-$2"
[gateway]
$4
prefix = "/linelogin"
assertion_audience = "my-app"
trusted_proxies = ["127.0.0.1/32"]
TOML
}
gateway_config "$WORK/gw.toml" "$GW" "$GW" "upstream = \"http://127.0.0.1:$APP\""
gateway_config "$WORK/fa.toml" "$FA_LL" "$FA" ""
LINELOGIN_LOAD_TEST=1 LINELOGIN_LOG=warn "$BIN" serve --config "$WORK/gw.toml" > "$WORK/gw.out" 2>&1 & GW_PID=$!; PIDS+=($GW_PID)
LINELOGIN_LOAD_TEST=1 LINELOGIN_LOG=warn "$BIN" serve --config "$WORK/fa.toml" > "$WORK/fa.out" 2>&1 & FA_PID=$!; PIDS+=($FA_PID)
(cd bench/node-gateway && PORT=$NODE UPSTREAM="http://127.0.0.1:$APP" LINE_BASE="http://127.0.0.1:$EMU" exec node app.js) > "$WORK/node.out" 2>&1 & NODE_PID=$!; PIDS+=($NODE_PID)
wait_ready "http://127.0.0.1:$EMU/_emulator/stats" "http://127.0.0.1:$GW/linelogin/healthz" \
  "http://127.0.0.1:$FA_LL/linelogin/healthz" "http://127.0.0.1:$NODE/linelogin/failed" "http://127.0.0.1:$APP/"

# A session on each gateway: log in through the emulator (auto-consent) with curl's cookie jar.
login() { # BASE JAR COOKIE_NAME -> "name=value"
  curl -s -o /dev/null -L -c "$2" -b "$2" -H 'Accept: text/html' "$1/linelogin/login?next=/"
  awk -v n="$3" '$6 == n { print $6 "=" $7 }' "$2" | tail -n1
}
GW_COOKIE=$(login "http://127.0.0.1:$GW" "$WORK/gw.jar" ll_session)
FA_COOKIE=$(login "http://127.0.0.1:$FA" "$WORK/fa.jar" ll_session)
NODE_COOKIE=$(login "http://127.0.0.1:$NODE" "$WORK/node.jar" connect.sid)
for c in GW_COOKIE FA_COOKIE NODE_COOKIE; do [ -n "${!c}" ] || { echo "no session for $c" >&2; tail -5 "$WORK"/*.out >&2; exit 1; }; done
# Each authenticated request must really reach the app (200 with its body), not a login page.
for pair in "$GW:$GW_COOKIE" "$FA:$FA_COOKIE" "$NODE:$NODE_COOKIE"; do
  body=$(curl -s -H "Cookie: ${pair#*:}" "http://127.0.0.1:${pair%%:*}/x")
  [ "$body" = "hello from the app" ] || { echo "port ${pair%%:*}: not authenticated: $body" >&2; exit 1; }
done

rps() { # NAME URL [COOKIE] -> prints and records requests/s
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" ${3:+-H "Cookie: $3"} "$2")
  local r; r=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$1 $r ${non2xx:-0}" >> "$WORK/rps.txt"
  printf '%-22s %10.0f req/s  non-2xx %s\n' "$1" "$r" "${non2xx:-0}"
}
p99() { # NAME URL [COOKIE] -> p99 in ms, one connection
  local out; out=$(wrk -t1 -c1 -d"${DURATION}s" --latency ${3:+-H "Cookie: $3"} "$2")
  awk -v n="$1" '/^ +99%/ { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } print n, v }' <<<"$out" >> "$WORK/p99.txt"
  tail -n1 "$WORK/p99.txt"
}
for i in $(seq 1 "$RUNS"); do
  echo "== run $i"
  rps nginx-alone "http://127.0.0.1:$NGX/x"
  rps linelogin-proxy "http://127.0.0.1:$GW/x" "$GW_COOKIE"
  rps node-gateway "http://127.0.0.1:$NODE/x" "$NODE_COOKIE"
  rps nginx-auth-request "http://127.0.0.1:$FA/x" "$FA_COOKIE"
  p99 app-direct "http://127.0.0.1:$APP/x"
  p99 linelogin-proxy "http://127.0.0.1:$GW/x" "$GW_COOKIE"
done
python3 - "$WORK" <<'PY'
import statistics, sys
work = sys.argv[1]
rps, bad = {}, {}
for line in open(f"{work}/rps.txt"):
    name, r, non2xx = line.split()
    rps.setdefault(name, []).append(float(r)); bad[name] = bad.get(name, 0) + int(non2xx)
p99 = {}
for line in open(f"{work}/p99.txt"):
    name, v = line.split(); p99.setdefault(name, []).append(float(v))
m = {k: statistics.median(v) for k, v in rps.items()}
for k, v in m.items():
    print(f"median {k:<20} {v:10.0f} req/s  (non-2xx over all runs: {bad[k]})")
print(f"linelogin proxy / nginx alone        {m['linelogin-proxy'] / m['nginx-alone']:.2f}  (target >= 0.50)")
print(f"linelogin proxy / Node gateway       {m['linelogin-proxy'] / m['node-gateway']:.2f}  (target >= 5)")
print(f"nginx auth_request / nginx alone     {m['nginx-auth-request'] / m['nginx-alone']:.2f}  (target >= 0.40)")
added = statistics.median(p99['linelogin-proxy']) - statistics.median(p99['app-direct'])
print(f"p99 one connection: app {statistics.median(p99['app-direct']):.3f} ms, through linelogin {statistics.median(p99['linelogin-proxy']):.3f} ms: adds {added:.3f} ms (target < 1)")
PY
