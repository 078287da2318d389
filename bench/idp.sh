#!/usr/bin/env bash
# Identity-provider throughput on one core: sign-ins per second (bounded by argon2id) and
# client_credentials grants per second (bounded by RS256 signing), each printed with the raw
# crypto rate measured on the same core as the ratio's denominator.
#
# usage: bench/idp.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/portcullis"
WORK="$(mktemp -d /tmp/portcullis-idp-bench.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SECRET="bench-machine-secret-0123456789abcdef"
cat > "$WORK/idp.toml" <<CONF
[load_balancer]
name = "idp-bench"
state_dir = "$WORK/state"
[[user_pools]]
name = "bench"
domain = { listen = "127.0.0.1:$PORT", base_url = "http://localhost:$PORT" }
resource_servers = [{ identifier = "tasks", scopes = [{ name = "read" }, { name = "write" }] }]
clients = [
  { client_id = "machine", client_secret = "$SECRET", allowed_oauth_flows = ["client_credentials"], allowed_oauth_scopes = ["tasks/read", "tasks/write"] },
  { client_id = "web", generate_secret = true, allowed_oauth_flows = ["code"], allowed_oauth_scopes = ["openid"], callback_urls = ["http://localhost/cb"] },
]
users = [{ username = "bench", password = "Bench-pass-1!" }]
CONF
RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$WORK/idp.toml" &
PID=$!
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

AUTH=$(printf 'machine:%s' "$SECRET" | base64 -w0)
cat > "$WORK/cc.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $AUTH"
wrk.body = "grant_type=client_credentials"
LUA
cat > "$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "XSRF-TOKEN=benchcsrf"
wrk.body = "_csrf=benchcsrf&username=bench&password=Bench-pass-1%21"
LUA
LOGIN_URL="http://127.0.0.1:$PORT/login?client_id=web&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&response_type=code&scope=openid"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Cookie: XSRF-TOKEN=benchcsrf' --data '_csrf=benchcsrf&username=bench&password=Bench-pass-1%21' "$LOGIN_URL")
[ "$STATUS" = 302 ] || { echo "sign-in does not work: $STATUS" >&2; exit 1; }

rps() { awk '/Requests\/sec/ {print $2}'; }
CC=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -s "$WORK/cc.lua" "http://127.0.0.1:$PORT/oauth2/token" | rps)
LOGINS=$(taskset -c 1 wrk -t1 -c8 -d"${DURATION}s" -s "$WORK/login.lua" "$LOGIN_URL" | rps)
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
BOUNDS=$(taskset -c 0 cargo bench --quiet -p portcullis-idp --bench crypto_bounds 2>/dev/null)
RS=$(echo "$BOUNDS" | awk '/rs256_signs_per_sec/ {print $2}')
AR=$(echo "$BOUNDS" | awk '/argon2id_verifies_per_sec/ {print $2}')
echo "$BOUNDS" | grep params
python3 - "$CC" "$RS" "$LOGINS" "$AR" <<'PY'
import sys
cc, rs, logins, ar = map(float, sys.argv[1:])
print(f"client_credentials grants/s (1 core): {cc:8.0f}   raw RS256 signs/s: {rs:8.0f}   ratio {cc/rs:.2f}")
print(f"sign-ins/s (1 core):                  {logins:8.1f}   argon2id verifies/s: {ar:6.1f}   ratio {logins/ar:.2f}")
PY
