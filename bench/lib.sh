# Shared setup of bench/run.sh, bench/profile.sh and bench/memory.sh: tools, ports, a work directory cleaned up on
# exit, the backend, and Portcullis. Source it from the repository root after `set -euo pipefail`.

# need COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2" >&2
  apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
}

# free_port: a port nothing listens on, never the same twice in one script, and outside the
# kernel's ephemeral range, so neither an earlier free_port nor a client connection's local port
# (wrk, h2load and loadgen open thousands) can hold it when the server binds. (Binding port 0 and
# closing it raced: the kernel hands the same port out again.) The ports given out are listed in
# a file named after the calling script's PID ($$ is the same in the $(free_port) subshell).
free_port() {
  python3 - "${TMPDIR:-/tmp}/portcullis-bench-ports.$$" <<'PY'
import random, socket, sys
used_file = sys.argv[1]
try:
    used = set(open(used_file).read().split())
except FileNotFoundError:
    used = set()
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
candidates = list(range(10000, lo)) if lo > 11000 else list(range(hi + 1, 65536))
random.shuffle(candidates)
for port in candidates:
    if str(port) in used:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    with open(used_file, "a") as f:
        f.write(f"{port}\n")
    print(port)
    break
else:
    sys.exit("free_port: no free port outside the ephemeral range")
PY
}
wait_port() { for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# bench_workdir: $WORK, and the $PIDS that are killed (and $WORK removed) when the script exits.
bench_workdir() {
  WORK="$(mktemp -d /tmp/portcullis-bench.XXXXXX)"
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK" "${TMPDIR:-/tmp}/portcullis-bench-ports.$$"
}

# start_backend: nginx answering 200 "ok" from memory on $BACKEND, pinned to CPU 0.
start_backend() {
  BACKEND=$(free_port)
  mkdir -p "$WORK/backend"
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
}

# start_portcullis BINARY CONFIG PORT: `serve` pinned to CPU 0 ($PC_PID), once PORT answers.
start_portcullis() {
  # The default log level (info, as users run it: the per-request span is built), its lines kept
  # out of the results.
  env -u RUST_LOG taskset -c 0 "$1" serve --config "$2" 2>>"$WORK/portcullis.log" &
  PC_PID=$!
  PIDS+=("$PC_PID")
  wait_port "$3"
}

# login USER: a real sign-in through the hosted UI with curl's cookie jar ($PC_HTTPS's `/auth/*`
# rule, $PASSWORD); prints the Cookie header value of the session, checked to work.
login() {
  local JAR="$WORK/jar-$1"
  step() { curl -sk -c "$JAR" -b "$JAR" -o "$WORK/body-$1" -w '%{redirect_url}' "${@:2}"; }
  local AUTHZ LOGIN CSRF CALLBACK COOKIE STATUS
  AUTHZ=$(step "$1" "https://localhost:$PC_HTTPS/auth/x")
  LOGIN=$(step "$1" "$AUTHZ")
  curl -s -c "$JAR" -b "$JAR" -o "$WORK/login-$1.html" "$LOGIN"
  CSRF=$(sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' "$WORK/login-$1.html")
  CALLBACK=$(step "$1" --data-urlencode "_csrf=$CSRF" --data-urlencode "username=$1" --data-urlencode "password=$PASSWORD" "$LOGIN")
  step "$1" "$CALLBACK" >/dev/null
  COOKIE=$(awk '$6 ~ /^AWSELBAuthSessionCookie-/ {printf "%s=%s; ", $6, $7}' "$JAR")
  [ -n "$COOKIE" ] || { echo "login of $1 failed: no session cookie" >&2; return 1; }
  STATUS=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "https://localhost:$PC_HTTPS/auth/x")
  [ "$STATUS" = 200 ] || { echo "session cookie of $1 does not work: $STATUS" >&2; return 1; }
  echo "$COOKIE"
}
