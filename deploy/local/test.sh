#!/usr/bin/env bash
# Runs every test of callpulse, starting what they need first: the local
# broker (tansu) and ClickHouse, installed if missing (see stack.sh).
# Stops the stack afterwards if this script started it.
#
#   deploy/local/test.sh              all tests
#   deploy/local/test.sh -p callpulse-core   extra arguments go to `cargo test`
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
cd "$REPO_ROOT"

started_here=0
if ! "$SCRIPT_DIR/stack.sh" status >/dev/null 2>&1; then
  started_here=1
fi
cleanup() {
  if [ "$started_here" = 1 ]; then
    "$SCRIPT_DIR/stack.sh" stop || true
  fi
}
trap cleanup EXIT

"$SCRIPT_DIR/stack.sh" start

# The dashboard's browser test drives Debian's headless Chromium through
# chromedriver (services/dashboard/tests/browser.rs).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "test.sh: installing chromium and chromium-driver from apt"
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends chromium chromium-driver fonts-liberation
fi

# Dependency policy (deny.toml): licences, banned crates and sources, with
# cargo-deny installed once outside the checkout. Security advisories need
# the RustSec database, a Git repository on GitHub: checked whenever it can
# be fetched, otherwise reported as not checked (docs/reliability.md).
DENY_VERSION=0.20.2
DENY_ROOT=${CALLPULSE_CACHE:-$HOME/.cache/callpulse}/cargo-deny-$DENY_VERSION
if [ ! -x "$DENY_ROOT/bin/cargo-deny" ]; then
  echo "test.sh: installing cargo-deny $DENY_VERSION into $DENY_ROOT"
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION" --root "$DENY_ROOT"
fi
"$DENY_ROOT/bin/cargo-deny" --log-level error --locked check licenses bans sources
if "$DENY_ROOT/bin/cargo-deny" --log-level error fetch db >/dev/null 2>&1; then
  "$DENY_ROOT/bin/cargo-deny" --log-level error --locked --offline check advisories
else
  echo "test.sh: security advisories NOT checked: the RustSec advisory database" \
    "(github.com/RustSec/advisory-db) cannot be fetched from this machine"
fi

# The fault tests start a broker of their own from the same binary.
CALLPULSE_TANSU_BIN=$("$SCRIPT_DIR/stack.sh" tansu-bin)
export CALLPULSE_TANSU_BIN
export CALLPULSE_TEST_KAFKA=${CALLPULSE_TEST_KAFKA:-127.0.0.1:${CALLPULSE_KAFKA_PORT:-9092}}
export CALLPULSE_TEST_CLICKHOUSE=${CALLPULSE_TEST_CLICKHOUSE:-http://127.0.0.1:${CALLPULSE_CLICKHOUSE_HTTP_PORT:-8123}}
# Integration tests share one broker and one ClickHouse: run test binaries one
# at a time; tests inside a binary isolate themselves by topic and database names.
# The recovery tests start the processor as a real process: build the binary first.
cargo build --locked -p callpulse-cli
cargo test --workspace --locked "$@" -- --test-threads=2

# `callpulse replay` against an independent reading of metrics.md (a Python
# reference written without the Rust code): hand-computed golden cases and
# random inputs, compared field by field (tests/reference/README.md).
python3 tests/reference/differential.py --seeds 300 --bin target/debug/callpulse
# Calls whose events name two practices, and event ids repeated on other
# calls and practices (§1: calls are vendor and call id; any repeat of an
# event id is a duplicate): replay's path for inputs that cross practices.
python3 tests/reference/differential.py --seeds 150 --no-golden --cross-dup --split-practice \
  --bin target/debug/callpulse

# The schema and the analysts' queries on current ClickHouse too (26.9,
# embedded through the chdb-core wheel): the local server is 18.16.
python3 -m pip install --quiet --disable-pip-version-check chdb-core==26.9.0
python3 tests/current-clickhouse/check.py "$REPO_ROOT"
