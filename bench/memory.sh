#!/usr/bin/env bash
# The memory of one `portcullis serve` process: a user pool with users and a forward listener,
# resident memory (VmRSS) at start, after real sign-ins through the hosted UI, after an idle
# while, holding 10,000 idle keep-alive connections, and after they have closed.
#
# The server and its backend (nginx answering 200 "ok") are pinned to CPU 0, this script and its
# clients (curl, python, wrk) to CPU 1, as in bench/run.sh. Each point also prints the anonymous
# memory (/proc/PID/smaps_rollup), the threads and, for a build on glibc's malloc, where the heap
# sits: the main arena (brk), the thread arenas (64 MiB heaps) and other anonymous mappings
# (mmapped chunks such as argon2 blocks, thread stacks). The allocator is read from the binary.
#
# usage: bench/memory.sh [idle seconds, default 60] [connections, default 10000]
# (the idle while covers the release of unused argon2 memory, 30 s after its last use and checked
# every 2 s, then jemalloc's return of freed pages, which decays over about 10 s; with a longer
# while the RSS is printed at 35 s too)
# environment:
#   BIN=path          run this binary instead of building the release one (to compare builds)
#   WRK_SECONDS=n     at the end, also measure throughput: wrk -t1 -c50 for n seconds on the
#                     HTTP forward listener, then print the RSS after it
#   SIGN_INS=n        sign-ins through the hosted UI, n at once (default 4, at most 8)
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE="${1:-60}"
CONNS="${2:-10000}"
SIGN_INS="${SIGN_INS:-4}"
[ "$SIGN_INS" -ge 1 ] && [ "$SIGN_INS" -le 8 ] || { echo "SIGN_INS must be 1-8" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"

. bench/lib.sh
need nginx nginx-light
need curl curl
need taskset util-linux
[ -z "${WRK_SECONDS:-}" ] || need wrk wrk
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 10,000 idle connections need the file limit
[ "$(ulimit -n)" -gt $((CONNS + 100)) ] || { echo "the file limit $(ulimit -n) is too low for $CONNS connections" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis
  BIN="$CARGO_TARGET_DIR/release/portcullis"
fi
taskset -cp 1 $$ >/dev/null   # this script and its clients on CPU 1; the servers go to CPU 0
bench_workdir
PC_HTTP=$(free_port); PC_HTTPS=$(free_port); POOL=$(free_port); ADMIN=$(free_port)
PASSWORD='Bench-pass-1!'
start_backend

# Portcullis: a forward listener on HTTP, an authenticated rule on HTTPS, one user pool.
USERS=$(for i in $(seq 1 "$SIGN_INS"); do printf '  { username = "user%s", password = "%s", attributes = { email = "user%s@example.com" } },\n' "$i" "$PASSWORD" "$i"; done)
cat > "$WORK/portcullis.toml" <<CONF
[load_balancer]
name = "memory"
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
  { type = "authenticate-cognito", user_pool = "bench", user_pool_client_id = "web", scope = "openid email" },
  { type = "forward", target_group = "backend" },
]

[[target_groups]]
name = "backend"
targets = [{ id = "127.0.0.1", port = $BACKEND }]
health_check = { enabled = false }

[[user_pools]]
name = "bench"
domain = { listen = "127.0.0.1:$POOL", base_url = "http://localhost:$POOL" }
clients = [{ client_id = "web", generate_secret = true, allowed_oauth_flows = ["code"], allowed_oauth_scopes = ["openid", "email"], callback_urls = ["https://localhost:$PC_HTTPS/oauth2/idpresponse"] }]
users = [
$USERS
]
CONF
RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$WORK/portcullis.toml" 2>"$WORK/portcullis.log" &
PC_PID=$!
PIDS+=($PC_PID)
wait_port "$PC_HTTP"; wait_port "$PC_HTTPS"; wait_port "$POOL"

# One line per point: VmRSS, anonymous memory, threads, and where the heap memory sits.
ALLOCATOR=glibc
grep -qa '_rjem_' "$BIN" && ALLOCATOR=jemalloc
grep -qa 'mi_option_set' "$BIN" && ALLOCATOR=mimalloc
GLIBC=$([ "$ALLOCATOR" = glibc ] && echo 1 || echo 0)
point() { # label
  python3 - "$PC_PID" "$GLIBC" "$1" <<'PY'
import sys
pid, glibc, label = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
kb = lambda v: int(v.split()[0])
rollup = {}
for l in open(f"/proc/{pid}/smaps_rollup").readlines()[1:]:
    k, v = l.split(":", 1)
    rollup[k] = kb(v)
mb = lambda k: f"{k / 1024:7.1f}"
line = (f"{label:<34}{mb(kb(status['VmRSS']))}{mb(rollup.get('Anonymous', 0))}"
        f"{int(status['Threads']):>8}")
if glibc:
    # glibc: the main arena is [heap]; a thread arena is a 64 MiB-aligned anonymous reservation
    # (one or more adjacent mappings); anything else anonymous is mmapped chunks and stacks.
    vmas, cur = [], None
    for l in open(f"/proc/{pid}/smaps"):
        f = l.split()
        if "-" in f[0] and len(f) >= 5 and ":" not in f[0]:
            a, b = (int(x, 16) for x in f[0].split("-"))
            cur = {"start": a, "end": b, "name": f[5] if len(f) > 5 else "", "rss": 0, "anon": 0}
            vmas.append(cur)
        elif f[0] == "Rss:":
            cur["rss"] = int(f[1])
        elif f[0] == "Anonymous:":
            cur["anon"] = int(f[1])
    heap = sum(v["anon"] for v in vmas if v["name"] == "[heap]")
    arenas, arena_kb, other, reserve_end = 0, 0, 0, 0
    for v in vmas:
        if v["name"]:
            continue
        if v["start"] % (64 << 20) == 0:
            arenas += 1
            reserve_end = v["start"] + (64 << 20)
        if v["start"] < reserve_end:
            arena_kb += v["anon"]
        else:
            other += v["anon"]
    line += f"{mb(heap)}{arenas:>4} {mb(arena_kb)}{mb(other)}"
print(line, flush=True)
PY
}
if [ "$GLIBC" = 1 ]; then
  printf '%-34s%7s%7s%8s%7s%12s%7s\n' "MB (glibc)" "RSS" "anon" "threads" "brk" "arenas" "other"
else
  printf '%-34s%7s%7s%8s\n' "MB ($ALLOCATOR)" "RSS" "anon" "threads"
fi
point "start"

# Sign-ins at once, so that several hashing workers run (each owns an argon2 block).
for i in $(seq 1 "$SIGN_INS"); do
  login "user$i" >"$WORK/cookie-$i" &
done
FAILED=0
for _ in $(seq 1 "$SIGN_INS"); do wait -n || FAILED=$((FAILED + 1)); done
[ "$FAILED" = 0 ] || { echo "$FAILED sign-ins failed" >&2; exit 1; }
point "after $SIGN_INS sign-ins"
if [ "$IDLE" -gt 35 ]; then
  sleep 35
  point "after 35 s idle"
  sleep $((IDLE - 35))
else
  sleep "$IDLE"
fi
point "after ${IDLE} s idle"

# Idle keep-alive connections: one request each, then silence until told to close.
cat > "$WORK/hold.py" <<'PY'
import os, socket, sys, time
port, n, ready, close = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    if not s.recv(65536).startswith(b"HTTP/1.1 200"):
        sys.exit("a request failed")
open(ready, "w").close()
while not os.path.exists(close):
    time.sleep(0.1)
for s in conns:
    s.close()
PY
python3 "$WORK/hold.py" "$PC_HTTP" "$CONNS" "$WORK/ready" "$WORK/close" &
HOLDER=$!
while [ ! -e "$WORK/ready" ]; do
  kill -0 "$HOLDER" 2>/dev/null || { echo "the connection holder failed" >&2; exit 1; }
  sleep 0.2
done
sleep 1
point "with $CONNS idle connections"
touch "$WORK/close"
wait "$HOLDER"
sleep 10
point "10 s after they closed"

if [ -n "${WRK_SECONDS:-}" ]; then
  OUT=$(wrk -t1 -c50 -d"${WRK_SECONDS}s" "http://127.0.0.1:$PC_HTTP/")
  point "after wrk -c50 ${WRK_SECONDS} s"
  echo "$OUT" | awk '/Requests\/sec/ {print "throughput (HTTP forward, wrk -t1 -c50): " $2 " req/s"} /Non-2xx|Socket errors/ {print}'
fi
if grep -q -i -E 'panic|error' "$WORK/portcullis.log"; then
  echo "portcullis logged errors:" >&2
  grep -i -E 'panic|error' "$WORK/portcullis.log" | head -5 >&2
fi
