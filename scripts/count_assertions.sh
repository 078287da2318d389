#!/usr/bin/env bash
# Counts assertion macros in the tests: crates/*/tests and the #[cfg(test)] parts of crates/*/src.
# Restructuring the tests must never lower this number (issue 12). Prints one number; with -v, a
# line per place (tests, src) first.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='assert(_eq|_ne|_matches)?!|prop_assert(_eq|_ne)?!|\.expect_err\(|panic!\('
shopt -s globstar nullglob
tests=$(cat crates/*/tests/**/*.rs | grep -Eo "$pattern" | wc -l)
# In src, only what follows a file's first #[cfg(test)] counts.
src=$(for f in crates/*/src/**/*.rs; do
  awk '/#\[cfg\(test\)\]/{t=1} t' "$f"
done | grep -Eo "$pattern" | wc -l)
if [ "${1:-}" = "-v" ]; then
  echo "tests: $tests"
  echo "src test modules: $src"
fi
echo $((tests + src))
