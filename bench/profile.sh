#!/usr/bin/env bash
# A CPU profile of Portcullis forwarding HTTP keep-alive requests (run.sh's `portcullis-http` case):
# the backend nginx and Portcullis on CPU 0, wrk on CPU 1, `perf record` on the Portcullis process,
# rendered as a flame graph with inferno. Prints the 20 symbols with the most self time.
#
# usage: bench/profile.sh [name, default "profile"] [seconds recorded, default 10] [connections, default 50]
# writes bench/flamegraphs/<name>.svg; PORTCULLIS_BIN=path profiles that binary instead
#
# Portcullis is built in release mode with line tables (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only:
# the same optimised code, with names, files and lines) into a target dir of its own,
# $PROFILE_TARGET_DIR (default: "$CARGO_TARGET_DIR-profile"), so run.sh's build is left alone.
# Stacks are unwound from DWARF (`--call-graph dwarf`): Rust's std and the C libraries (aws-lc,
# glibc) have no frame pointers, so `-g` alone loses most callers; and async Rust stacks are deep, so
# each sample copies the most perf allows, 64 KB of stack (16 KB cut most stacks short of main).
# PERF_CALL_GRAPH overrides it (`fp`, or `dwarf,SIZE`).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${1:-profile}"
RECORD="${2:-10}"
CONNS="${3:-50}"
[[ "$NAME" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "name: letters, digits, '.', '_' and '-' only" >&2; exit 2; }
export CARGO_TARGET_DIR="${PROFILE_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}-profile}"
. bench/lib.sh

need wrk wrk
need nginx nginx-light
need taskset util-linux
need perf linux-perf
export PATH="$HOME/.cargo/bin:$PATH"
command -v inferno-collapse-perf >/dev/null 2>&1 || { echo "installing inferno (crates.io)" >&2; cargo install --quiet --locked inferno; }
# Recording another process needs kernel.perf_event_paranoid ≤ 1 (unless root), kernel symbols
# kernel.kptr_restrict = 0: lower them when allowed.
[ "$(cat /proc/sys/kernel/perf_event_paranoid)" -le 1 ] || sysctl -qw kernel.perf_event_paranoid=1 2>/dev/null \
  || echo "could not lower kernel.perf_event_paranoid; perf may refuse" >&2
[ "$(cat /proc/sys/kernel/kptr_restrict)" = 0 ] || sysctl -qw kernel.kptr_restrict=0 2>/dev/null || true

# PORTCULLIS_BIN profiles another build instead (an earlier commit's: function names, no lines).
if [ -n "${PORTCULLIS_BIN:-}" ]; then
  BIN="$PORTCULLIS_BIN"
else
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet -p portcullis
  BIN="$CARGO_TARGET_DIR/release/portcullis"
fi
bench_workdir
start_backend
PC_HTTP=$(free_port)
cat > "$WORK/portcullis.toml" <<CONF
[load_balancer]
name = "profile"
state_dir = "$WORK/state"

[[listeners]]
protocol = "HTTP"
port = $PC_HTTP
address = "127.0.0.1"
default_actions = [{ type = "forward", target_group = "backend" }]

[[target_groups]]
name = "backend"
targets = [{ id = "127.0.0.1", port = $BACKEND }]
health_check = { enabled = false }
CONF
start_portcullis "$BIN" "$WORK/portcullis.toml" "$PC_HTTP"

# wrk runs a second longer on each side of the recording; perf shares CPU 1 with wrk, not CPU 0
# with the servers.
echo "Recording ${RECORD}s of HTTP forwarding, $CONNS connections (perf on Portcullis, pid $PC_PID)" >&2
taskset -c 1 wrk -t1 -c"$CONNS" -d"$((RECORD + 2))s" "http://127.0.0.1:$PC_HTTP/" > "$WORK/wrk.txt" &
WRK=$!
sleep 1
taskset -c 1 perf record -q -F 499 --call-graph "${PERF_CALL_GRAPH:-dwarf,65528}" -p "$PC_PID" \
  -o "$WORK/perf.data" -- sleep "$RECORD"
wait "$WRK"
awk '/Requests\/sec/ {print "wrk while recording: " $2 " req/s"}' "$WORK/wrk.txt" >&2

# Inlined frames are left out unless PERF_INLINE=1: perf 6.1 finds them by running addr2line,
# about 20 s per second recorded here, and names them briefly (`poll`, `park_internal`); without
# them a function the compiler inlined counts as its caller's time.
# The folded stacks are kept beside the SVG: `inferno-diff-folded before.folded after.folded |
# inferno-flamegraph > diff.svg` compares two profiles.
mkdir -p bench/flamegraphs
OUT="bench/flamegraphs/$NAME"
INLINE=--no-inline; [ "${PERF_INLINE:-0}" = 1 ] && INLINE=--inline
perf script -i "$WORK/perf.data" "$INLINE" 2>/dev/null | inferno-collapse-perf --all > "$OUT.folded"
[ -s "$OUT.folded" ] || { echo "perf recorded no stacks" >&2; exit 1; }
inferno-flamegraph --title "Portcullis, HTTP forwarding: $NAME" --width 1600 < "$OUT.folded" > "$OUT.svg"
echo "wrote $OUT.svg and $OUT.folded" >&2

# Self time by symbol: the leaf of each folded stack ("a;b;leaf WEIGHT", the weight being perf's
# sample periods); kernel frames end in _[k].
awk '{ n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); total += n; if (f[k] ~ /_\[k\]$/) kernel += n }
     END { printf "in the kernel: %.1f %% of the samples\n\n   self  symbol\n", 100 * kernel / total }' "$OUT.folded"
awk '{ n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); self[f[k]] += n; total += n }
     END { for (s in self) printf "%6.2f%%  %s\n", 100 * self[s] / total, s }' "$OUT.folded" | sort -rn | sed -n 1,20p
