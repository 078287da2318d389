#!/usr/bin/env bash
# CPU time Portcullis spends per forwarded request (HTTP keep-alive, run.sh's `portcullis-http`
# case), for two builds side by side: a before/after check of a change to the data path that is
# steadier than requests per second on a VM whose throughput moves between runs. nginx (as the
# proxy, same backend) is measured in the same run for scale.
#
# The backend and the proxy share CPU 0, wrk runs on CPU 1; `perf stat -e task-clock` counts the
# proxy process's CPU time while wrk runs; CPU µs per request = task-clock ÷ requests wrk completed.
# Runs alternate (A, B, nginx, A, B, nginx, ...) so drift hits all alike.
# Beside it, per request: the proxy's context switches and the wake-ups it caused (perf's
# `sched:sched_wakeup`, counted in the proxy's context: mostly the backend it woke by writing to
# it). These two are steady where the CPU time is not, and they show how well writes are batched.
#
# usage: bench/cpu_per_request.sh BIN_A BIN_B [rounds, default 3] [seconds, default 5] [connections, default 50]
set -euo pipefail
cd "$(dirname "$0")/.."
A="$1"; B="$2"; ROUNDS="${3:-3}"; SECS="${4:-5}"; CONNS="${5:-50}"
. bench/lib.sh
need wrk wrk
need nginx nginx-light
need taskset util-linux
need perf linux-perf
[ "$(cat /proc/sys/kernel/perf_event_paranoid)" -le 1 ] || sysctl -qw kernel.perf_event_paranoid=1 2>/dev/null || true
bench_workdir
start_backend

# One measured run of the proxy whose pid is $1 on port $2; prints "req/s cpu_us_per_request".
measure() {
  local pid=$1 port=$2
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$((SECS + 2))s" "http://127.0.0.1:$port/" > "$WORK/wrk.txt" &
  local wrk=$!
  sleep 1
  taskset -c 1 perf stat -x, -e "$EVENTS" -p "$pid" -o "$WORK/stat.txt" -- sleep "$SECS"
  wait "$wrk"
  local rps ms cs wk
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  ms=$(awk -F, '/task-clock/ {print $1}' "$WORK/stat.txt")
  cs=$(awk -F, '/context-switches/ {print $1}' "$WORK/stat.txt")
  wk=$(awk -F, '/sched_wakeup/ {print $1}' "$WORK/stat.txt")
  # task-clock (ms) over SECS seconds against rps requests per second over the whole wrk run.
  awk -v rps="$rps" -v ms="$ms" -v s="$SECS" -v cs="${cs:-0}" -v wk="${wk:--1}" 'BEGIN {
    r = rps * s
    printf "%.0f %.2f %.3f %s\n", rps, 1000 * ms / r, cs / r, (wk < 0 ? "-" : sprintf("%.3f", wk / r)) }'
}

config() {
  cat > "$WORK/$1.toml" <<CONF
[load_balancer]
name = "cpu"
state_dir = "$WORK/state-$1"

[[listeners]]
protocol = "HTTP"
port = $2
address = "127.0.0.1"
default_actions = [{ type = "forward", target_group = "backend" }]

[[target_groups]]
name = "backend"
targets = [{ id = "127.0.0.1", port = $BACKEND }]
health_check = { enabled = false }
CONF
}

NGX=$(free_port)
# One process (no master), so its pid is the one doing the work.
cat > "$WORK/nginx-proxy.conf" <<CONF
master_process off;
daemon off;
user root;
pid $WORK/nginx-proxy.pid;
error_log /dev/null;
events { worker_connections 4096; }
http {
  access_log off;
  upstream b { server 127.0.0.1:$BACKEND; keepalive 64; }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
taskset -c 0 nginx -c "$WORK/nginx-proxy.conf" -p "$WORK" &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_port "$NGX"

# The wake-up tracepoint needs tracefs; without it only CPU time and switches are counted.
EVENTS=task-clock,context-switches,sched:sched_wakeup
perf stat -e sched:sched_wakeup -o /dev/null -- true 2>/dev/null || EVENTS=task-clock,context-switches
printf "%-8s %5s %10s %12s %10s %10s\n" build round "req/s" "CPU µs/req" "cs/req" "wakeups/req"
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    port=$(free_port)
    config "$side$r" "$port"
    start_portcullis "$bin" "$WORK/$side$r.toml" "$port"
    read -r rps us cs wk < <(measure "$PC_PID" "$port")
    printf "%-8s %5s %10s %12s %10s %10s\n" "$side" "$r" "$rps" "$us" "$cs" "$wk"
    kill "$PC_PID"; wait "$PC_PID" 2>/dev/null || true
  done
  read -r rps us cs wk < <(measure "$NGX_PID" "$NGX")
  printf "%-8s %5s %10s %12s %10s %10s\n" nginx "$r" "$rps" "$us" "$cs" "$wk"
done
