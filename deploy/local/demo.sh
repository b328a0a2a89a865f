#!/usr/bin/env bash
# The whole pipeline on this machine with simulated national traffic and live
# numbers: starts the local stack (installing it if missing), builds
# callpulse (release), then runs migrate, orgs load, the adapters, processor,
# sink, alerter and dashboard, and the simulator through the adapters' HTTP
# endpoint, and prints a table of ICBs from ClickHouse every few seconds
# (and the dashboard's address and login tokens, kept in
# .local/dashboard-tokens.toml).
# Ctrl-C stops everything it started (and the stack, if it started it).
#
# Each run is self-contained: ClickHouse database `callpulse_demo` (dropped
# and recreated at start) and Kafka topics and consumer groups named after
# the run, so the demo never mixes with other data or earlier runs.
#
# Environment:
#   DEMO_PRACTICES [630]  practices, spread evenly over the 42 ICBs
#   DEMO_SPEED [60]       event time per wall-clock second (60: a minute a second)
#   DEMO_START            London local start [07:30 on the last Monday that
#                         was not a bank holiday], e.g. 2026-11-23T07:30
#   DEMO_DURATION [12h]   simulated event time
#   DEMO_TO [http]        http (through the adapters) or kafka (straight to the topic)
#   DEMO_FORMAT [canonical] or native: each practice's supplier's own records (Twilio,
#                         Amazon Connect, Asterisk, Teams) through the adapters' routes
#   DEMO_FAULTS []        e.g. duplicates,late,silence
#   DEMO_REFRESH [5]      seconds between tables
#   DEMO_DATABASE [callpulse_demo], DEMO_ADAPTERS_PORT [18088], DEMO_METRICS_PORT [19101],
#   DEMO_DASHBOARD_PORT [18090]
#   plus everything stack.sh reads.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
cd "$REPO_ROOT"
STATE_DIR=${CALLPULSE_STATE_DIR:-$REPO_ROOT/.local}
LOG_DIR="$STATE_DIR/logs/demo"
CH_URL="http://127.0.0.1:${CALLPULSE_CLICKHOUSE_HTTP_PORT:-8123}"
DB=${DEMO_DATABASE:-callpulse_demo}
SPEED=${DEMO_SPEED:-60}
PRACTICES=${DEMO_PRACTICES:-630}
ADAPTERS="127.0.0.1:${DEMO_ADAPTERS_PORT:-18088}"
DASHBOARD="127.0.0.1:${DEMO_DASHBOARD_PORT:-18090}"
TOKENS_FILE="$STATE_DIR/dashboard-tokens.toml"
RUN=$(date +%Y%m%d%H%M%S)

# Everything the services read, for this run only.
export CALLPULSE__KAFKA__BROKERS="127.0.0.1:${CALLPULSE_KAFKA_PORT:-9092}"
export CALLPULSE__CLICKHOUSE__URL="$CH_URL"
export CALLPULSE__CLICKHOUSE__DATABASE="$DB"
topic="callpulse.demo-$RUN"
export CALLPULSE__TOPICS__CALL_EVENTS="$topic.call-events"
export CALLPULSE__TOPICS__DEAD_LETTERS="$topic.call-events-dlq"
export CALLPULSE__TOPICS__METRICS="$topic.metrics"
export CALLPULSE__TOPICS__CALLS="$topic.calls"
export CALLPULSE__TOPICS__ALERTS="$topic.alerts"
export CALLPULSE__TOPICS__LATE_EVENTS="$topic.late-events"
export CALLPULSE__TOPICS__CHECKPOINTS="$topic.checkpoints"
export CALLPULSE__ALERTER__UNDELIVERABLE_TOPIC="$topic.alerts-undeliverable"
export CALLPULSE__PROCESSOR__GROUP_ID="callpulse-demo-$RUN-processor"
export CALLPULSE__SINK__GROUP_ID="callpulse-demo-$RUN-sink"
export CALLPULSE__ALERTER__GROUP_ID="callpulse-demo-$RUN-alerter"
export CALLPULSE__PROCESSOR__METRICS_LISTEN="127.0.0.1:${DEMO_METRICS_PORT:-19101}"
export CALLPULSE__ADAPTERS__LISTEN="$ADAPTERS"
export CALLPULSE__ADAPTERS__ORGANISATIONS="$REPO_ROOT/data/organisations.csv"
export CALLPULSE__ALERTER__ORGANISATIONS="$REPO_ROOT/data/organisations.csv"
export CALLPULSE__DASHBOARD__LISTEN="$DASHBOARD"
export CALLPULSE__DASHBOARD__TOKENS_FILE="$TOKENS_FILE"

# The last Monday (before today) that was not a bank holiday: a busy day.
if [ -n "${DEMO_START:-}" ]; then
  START=$DEMO_START
else
  day=$(date -d "last monday" +%F)
  for _ in 1 2 3 4; do
    grep -q "\"date\": \"$day\"" data/bank-holidays-england-and-wales.json || break
    day=$(date -d "$day - 7 days" +%F)
  done
  START="${day}T07:30"
fi
DAY=${START:0:10}
# The dashboard shows the simulated day, not the calendar's.
export CALLPULSE__DASHBOARD__DAY="$DAY"

started_stack=0
"$SCRIPT_DIR/stack.sh" status >/dev/null 2>&1 || started_stack=1
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  # Newest first: the simulator, then the adapters, alerter, sink, processor.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ "$started_stack" = 1 ]; then "$SCRIPT_DIR/stack.sh" stop || true; fi
  echo "demo: stopped; logs in $LOG_DIR, figures in ClickHouse database $DB"
}
trap cleanup INT TERM EXIT

"$SCRIPT_DIR/stack.sh" start
echo "demo: building callpulse (release)"
cargo build --release --locked -p callpulse-cli
BIN="$REPO_ROOT/target/release/callpulse"
mkdir -p "$LOG_DIR"

ch() { curl -sS --fail-with-body --data-binary "$1" "$CH_URL/"; }
ch "DROP DATABASE IF EXISTS $DB" >/dev/null
"$BIN" migrate
"$BIN" orgs load data/organisations.csv

# Demo login tokens (England, and ICB QHM), made once and kept for later runs.
if [ ! -s "$TOKENS_FILE" ]; then
  new_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  mkdir -p "$STATE_DIR"
  (umask 077 && cat >"$TOKENS_FILE" <<EOF
# Demo login tokens for callpulse dashboard (docs/dashboard.md); local use only.
[[token]]
name = "demo-england"
token = "$(new_token)"
scope = "england"

[[token]]
name = "demo-qhm"
token = "$(new_token)"
scope = "QHM"
EOF
  )
fi
token_of() { awk -v want="\"$1\"" '/^token = /{t=$3} /^scope = /{if ($3 == want) {gsub(/"/, "", t); print t}}' "$TOKENS_FILE"; }
ENGLAND_TOKEN=$(token_of england)
QHM_TOKEN=$(token_of QHM)

"$BIN" processor >"$LOG_DIR/processor.log" 2>&1 & pids+=($!)
"$BIN" sink >"$LOG_DIR/sink.log" 2>&1 & pids+=($!)
"$BIN" alerter --contacts "$SCRIPT_DIR/demo-contacts.toml" >"$LOG_DIR/alerter.log" 2>&1 & pids+=($!)
"$BIN" dashboard >"$LOG_DIR/dashboard.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://$DASHBOARD/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: the dashboard did not start; see $LOG_DIR/dashboard.log" >&2; exit 1; }
  sleep 0.2
done
to=${DEMO_TO:-http}
format=${DEMO_FORMAT:-canonical}
if [ "$to" = http ]; then
  mapping=()
  if [ "$format" = native ]; then
    # The simulated practices' vendor numbers, queues and accounts (docs/simulator.md).
    "$BIN" simulate --practices "$PRACTICES" --spread --write-mapping "$LOG_DIR/vendor-mapping.toml" 2>>"$LOG_DIR/simulate.log"
    mapping=(--mapping "$LOG_DIR/vendor-mapping.toml")
  fi
  "$BIN" adapters --demo "${mapping[@]}" >"$LOG_DIR/adapters.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://$ADAPTERS/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: the adapters did not start; see $LOG_DIR/adapters.log" >&2; exit 1; }
    sleep 0.2
  done
fi
"$BIN" simulate --practices "$PRACTICES" --spread --start "$START" \
  --duration "${DEMO_DURATION:-12h}" --speed "${SPEED}x" --seed "$RANDOM" \
  --to "$to" --faults "${DEMO_FAULTS:-}" --format "$format" \
  >"$LOG_DIR/simulate.log" 2>&1 & pids+=($!)
echo "demo: running; logs in $LOG_DIR; Ctrl-C to stop"
echo "demo: dashboard at http://$DASHBOARD/ (tokens in $TOKENS_FILE)"

# Active alerts: the latest state of each alert the alerter handled.
alerts="SELECT icb, count() AS active_alerts FROM (
    SELECT alert_id, argMax(icb, revision) AS icb, argMax(state, revision) AS state
    FROM $DB.alert_deliveries GROUP BY alert_id)
  WHERE state != 'resolved' GROUP BY icb"
table="SELECT
    code,
    substring(replaceRegexpOne(replaceRegexpOne(name, '^NHS ', ''), ' Integrated Care Board\$', ''), 1, 34) AS name,
    practices,
    offered AS calls_offered,
    round(answered_pct, 1) AS answered_pct,
    round(abandoned_pct, 1) AS abandoned_pct,
    round(100 * callback_requested / offered, 1) AS callback_pct,
    p90_wait_s,
    diverted_111_core AS div_111_core,
    active_alerts
  FROM (SELECT * FROM $DB.rollup_icb WHERE \`window\` = '1d' AND toDate(\`start\`, 'Europe/London') = toDate('$DAY'))
  ANY LEFT JOIN ($alerts) USING icb
  ORDER BY code
  FORMAT PrettyCompactMonoBlock"
england="SELECT practices, offered AS calls_offered, round(answered_pct, 1) AS answered_pct,
    round(abandoned_pct, 1) AS abandoned_pct, round(100 * callback_requested / offered, 1) AS callback_pct,
    round(100 * (ivr_ended + diverted_111) / offered, 1) AS menu_pct,
    round(100 * (abandoned + missed) / offered, 1) AS missed_pct,
    p90_wait_s, diverted_111_core AS div_111_core, dq_duplicates
  FROM $DB.rollup_england WHERE \`window\` = '1d' AND toDate(\`start\`, 'Europe/London') = toDate('$DAY')
  FORMAT PrettyCompactMonoBlock"
while true; do
  sleep "${DEMO_REFRESH:-5}"
  icbs=$(ch "$table" 2>&1 || true)
  total=$(ch "$england" 2>&1 || true)
  latest=$(ch "SELECT formatDateTime(toDateTime(max(\`end\`), 'Europe/London'), '%Y-%m-%d %H:%M') FROM $DB.window_metrics WHERE \`window\` = '1m'" 2>/dev/null || true)
  if [ -t 1 ]; then printf '\033[2J\033[H'; fi
  echo "callpulse demo: $DAY (London), simulated at ${SPEED}x from $START; latest minute: ${latest:-none yet}; $(date +%H:%M:%S)"
  echo "Dashboard: http://$DASHBOARD/  login token: $ENGLAND_TOKEN (England), $QHM_TOKEN (ICB QHM only)"
  echo "England ($PRACTICES practices simulated):"
  echo "$total"
  echo "By ICB (p90 wait in seconds, from the wait histogram; div_111_core: calls diverted to 111 in core hours):"
  echo "$icbs"
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { [ "$pid" = "${pids[-1]}" ] || echo "demo: a service stopped; see $LOG_DIR"; }
  done
done
