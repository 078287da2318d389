#!/usr/bin/env bash
# Checks bench/lib.sh's helpers without running a benchmark: free_port gives distinct ports that
# nothing listens on and that lie outside the kernel's ephemeral range (where client connections'
# local ports, and the old bind-to-0 answer, come from). Run from the repository root.
set -euo pipefail
source bench/lib.sh
read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range
declare -A seen=()
for _ in $(seq 1 30); do
  p=$(free_port)
  [[ -z "${seen[$p]:-}" ]] || { echo "free_port gave $p twice" >&2; exit 1; }
  seen[$p]=1
  if (( p >= lo && p <= hi )); then echo "free_port gave $p, inside the ephemeral range $lo-$hi" >&2; exit 1; fi
  (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null && { echo "port $p is in use" >&2; exit 1; }
done
rm -f "${TMPDIR:-/tmp}/portcullis-bench-ports.$$"
echo "bench/lib.sh: free_port ok"
