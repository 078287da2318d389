#!/usr/bin/env bash
# Runs every test: Rust unit, property and integration tests (real servers on port 0), the interop
# checks (Python cryptography and Authlib), the browser tests (Chromium driven by Playwright) and
# the check of the benchmark scripts' helpers. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"

# PostgreSQL on 127.0.0.1:5432 (trust auth) for the multi-node store tests.
if command -v pg_lsclusters >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  pg_isready -h 127.0.0.1 -p 5432 || echo "warning: PostgreSQL is not answering on 127.0.0.1:5432"
fi

# Interop clients and verifiers that are not ours.
if ! python3 -c 'import cryptography, authlib, requests, jwt, boto3, aiosmtpd, websockets, grpc' 2>/dev/null; then
  echo "installing Python cryptography, Authlib, requests, PyJWT, boto3, aiosmtpd, websockets and grpcio (interop tests)"
  python3 -m pip install --quiet 'cryptography>=41' 'authlib>=1.3' 'requests>=2.31' 'pyjwt[crypto]>=2.8' 'boto3>=1.43' 'aiosmtpd>=1.4' 'websockets>=13' 'grpcio>=1.60' \
    || python3 -m pip install --quiet --user --break-system-packages 'cryptography>=41' 'authlib>=1.3' 'requests>=2.31' 'pyjwt[crypto]>=2.8' 'boto3>=1.43' 'aiosmtpd>=1.4' 'websockets>=13' 'grpcio>=1.60'
fi

# Real headless Chromium (Debian's) for the browser tests, driven by playwright-core from npm.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium (browser tests)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
if [ ! -f e2e/browser/node_modules/playwright-core/package.json ] || [ ! -f e2e/browser/node_modules/jose/package.json ] \
   || [ ! -f e2e/browser/node_modules/jsonwebtoken/package.json ] || [ ! -f e2e/browser/node_modules/axe-core/package.json ] \
   || [ ! -f e2e/browser/node_modules/oidc-provider/package.json ]; then
  echo "installing playwright-core, axe-core, oidc-provider, jose and jsonwebtoken (browser and interop tests)"
  npm ci --prefix e2e/browser --no-audit --no-fund --silent
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# Doc examples (nextest does not run them).
cargo test --workspace --doc --quiet
# The benchmark scripts' shared helpers (bench/lib.sh's free_port; a few seconds, no benchmark).
bash bench/test_lib.sh
