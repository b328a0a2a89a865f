#!/usr/bin/env bash
# The whole pipeline on this machine with simulated traffic, showing live
# numbers: starts the local stack (installing it if missing), builds
# callpulse, runs migrate, processor, sink and the simulator, and prints a
# table from ClickHouse every few seconds. Ctrl-C stops everything it started.
#
# Environment: DEMO_PRACTICES [20], DEMO_SPEED [30] (event-time speed-up),
# DEMO_RATE [2] (calls per practice per minute), DEMO_REFRESH [5] seconds,
# plus everything stack.sh reads.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
cd "$REPO_ROOT"
STATE_DIR=${CALLPULSE_STATE_DIR:-$REPO_ROOT/.local}
LOG_DIR="$STATE_DIR/logs"
CH_URL="http://127.0.0.1:${CALLPULSE_CLICKHOUSE_HTTP_PORT:-8123}"
export CALLPULSE__KAFKA__BROKERS="127.0.0.1:${CALLPULSE_KAFKA_PORT:-9092}"
export CALLPULSE__CLICKHOUSE__URL="$CH_URL"

started_stack=0
"$SCRIPT_DIR/stack.sh" status >/dev/null 2>&1 || started_stack=1
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_stack" = 1 ]; then "$SCRIPT_DIR/stack.sh" stop || true; fi
}
trap cleanup INT TERM EXIT

"$SCRIPT_DIR/stack.sh" start
echo "demo: building callpulse (release)"
cargo build --release --locked -p callpulse-cli
BIN="$REPO_ROOT/target/release/callpulse"
mkdir -p "$LOG_DIR"
"$BIN" migrate
"$BIN" processor >"$LOG_DIR/processor.log" 2>&1 & pids+=($!)
"$BIN" sink >"$LOG_DIR/sink.log" 2>&1 & pids+=($!)
"$BIN" simulate --practices "${DEMO_PRACTICES:-20}" --minutes 1440 \
  --rate "${DEMO_RATE:-2}" --speed "${DEMO_SPEED:-30}" --seed "$RANDOM" \
  >"$LOG_DIR/simulate.log" 2>&1 & pids+=($!)
echo "demo: running; logs in $LOG_DIR; Ctrl-C to stop"

query="SELECT practice,
  sum(offered) AS calls_offered,
  round(100 * sum(answered) / greatest(sum(offered), 1), 1) AS answered_pct,
  round(100 * sum(abandoned) / greatest(sum(offered), 1), 1) AS abandoned_pct,
  sum(callback_requested) AS callbacks_requested,
  round(sum(wait_ms_sum) / greatest(sum(wait_count), 1) / 1000, 1) AS mean_wait_s,
  max(peak_waiting) AS most_waiting,
  sum(diverted_111_core) AS diverted_111_in_core_hours
FROM callpulse.window_metrics FINAL
WHERE window = '1d'
GROUP BY practice ORDER BY practice
FORMAT PrettyCompactMonoBlock"
while true; do
  sleep "${DEMO_REFRESH:-5}"
  table=$(curl -sS --data-binary "$query" "$CH_URL/" 2>&1 || true)
  if [ -t 1 ]; then printf '\033[2J\033[H'; fi
  echo "callpulse demo: today so far, per practice (simulated traffic at ${DEMO_SPEED:-30}x), $(date +%H:%M:%S)"
  echo "$table"
done
