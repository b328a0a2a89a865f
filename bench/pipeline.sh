#!/usr/bin/env bash
# Pipeline benchmarks through the real local broker and ClickHouse (issues
# #4 and #8). Every run uses its own topics, consumer groups and ClickHouse
# database, and deletes them at the end, so it never disturbs other runs on
# the same stack. Measurements are printed as JSON lines; logs stay in
# $BENCH_WORK (a fresh temporary directory by default).
#
#   bench/pipeline.sh live  [--speed 10x] [--start 2026-11-23T08:00] [--duration 20m] [--practices N] [--no-sink]
#   bench/pipeline.sh load  [--start ...] [--duration ...] [--practices N] [--no-sink]
#   bench/pipeline.sh peer  [--start ...] [--duration ...] [--practices N]
#   bench/pipeline.sh week  [--duration 7d]
#   bench/pipeline.sh late  [--practices 300]
#
# live: processor and sink running, the simulator publishing at --speed;
#       publication -> first emission of the event's 1-minute window, and
#       -> that window visible in ClickHouse (50 sampled practices), p50/p99.
#       With --no-sink, the processor alone (issue #4's measure: topic to
#       metrics topic), without the sink and the ClickHouse watcher.
# load: events pre-loaded at full speed, then processor (and sink) started:
#       events per second to the metrics topic (and into ClickHouse).
# peer: events pre-loaded; callpulse's processor, then Quix Streams
#       (bench/quix_counts.py), each over the whole topic; throughput of
#       each and a comparison of their 15-minute counts.
# week: a simulated national week to a file, then `callpulse replay`.
# late: a burst of late events: the processor is past Monday noon when
#       Monday 8 to 9 am arrives (another seed, so every event is new and
#       late); the time until all of them are on the late-events topic.
#
# Needs: cargo build --release -p callpulse-cli
#        cargo build --release -p callpulse-e2e --example pipeline_bench
#        for peer: python3 with bench/requirements.txt (BENCH_PYTHON=path/to/python)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${CALLPULSE_BIN:-$ROOT/target/release/callpulse}
TOOL=${BENCH_TOOL:-$ROOT/target/release/examples/pipeline_bench}
PY=${BENCH_PYTHON:-python3}
export CALLPULSE__KAFKA__BROKERS=${CALLPULSE_BENCH_KAFKA:-127.0.0.1:9092}
export CALLPULSE__CLICKHOUSE__URL=${CALLPULSE_BENCH_CLICKHOUSE:-http://127.0.0.1:8123}
WORK=${BENCH_WORK:-$(mktemp -d -t callpulse-bench.XXXXXX)}
mkdir -p "$WORK"

mode=${1:-}
shift || true
start=2026-11-23T08:00 duration=20m speed=10x practices="" sink=1
while [ $# -gt 0 ]; do
    case $1 in
        --start) start=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --speed) speed=$2; shift 2 ;;
        --practices) practices=$2; shift 2 ;;
        --no-sink) sink=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
sim_args=(--start "$start" --duration "$duration")
[ -n "$practices" ] && sim_args+=(--practices "$practices")

run=bench_$(date +%s)_$$
port=$((19100 + $$ % 800))
export CALLPULSE__PROCESSOR__METRICS_LISTEN=127.0.0.1:$port
export CALLPULSE__PROCESSOR__GROUP_ID=processor-$run
export CALLPULSE__SINK__GROUP_ID=sink-$run
export CALLPULSE__CLICKHOUSE__DATABASE=$run
export CALLPULSE__TOPICS__CALL_EVENTS=events-$run
export CALLPULSE__TOPICS__DEAD_LETTERS=dlq-$run
export CALLPULSE__TOPICS__METRICS=metrics-$run
export CALLPULSE__TOPICS__CALLS=calls-$run
export CALLPULSE__TOPICS__ALERTS=alerts-$run
export CALLPULSE__TOPICS__LATE_EVENTS=late-$run
export CALLPULSE__TOPICS__CHECKPOINTS=checkpoints-$run
topics=events-$run,dlq-$run,metrics-$run,calls-$run,alerts-$run,late-$run,checkpoints-$run
metrics_url=http://127.0.0.1:$port/metrics

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$TOOL" drop-topics --topics "$topics" 2>/dev/null || true
    curl -sf "$CALLPULSE__CLICKHOUSE__URL" --data-binary "DROP DATABASE IF EXISTS $run" >/dev/null || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
dur_s() { case $1 in *m) echo $((${1%m} * 60)) ;; *h) echo $((${1%h} * 3600)) ;; *d) echo $((${1%d} * 86400)) ;; *) echo $(($1 * 60)) ;; esac; }
# CPU seconds (user + system) and peak RSS (MiB) of a running process.
cpu_s() { [ -r "/proc/$1/stat" ] || { echo 0; return; }; awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
stack_pid() { "$ROOT/deploy/local/stack.sh" status 2>/dev/null | awk -v s="$1:" '$1 == s { gsub(/[^0-9]/, "", $4); print $4 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
sent() { sed -n 's/.*simulation finished sent=\([0-9]*\).*/\1/p' "$1" | tail -1; }

start_processor() {
    "$BIN" processor >"$WORK/processor.log" 2>&1 &
    proc_pid=$!
    pids+=("$proc_pid")
    for _ in $(seq 100); do curl -sf "$metrics_url" >/dev/null && return; sleep 0.1; done
    echo "processor did not start; see $WORK/processor.log" >&2
    exit 1
}
start_sink() {
    "$BIN" sink >"$WORK/sink.log" 2>&1 &
    sink_pid=$!
    pids+=("$sink_pid")
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

# The simulator's events, published by `pipeline_bench publish` (paced by
# event time; see bench/README.md for why not `simulate --to kafka`). They
# are simulated to a file first, so that the simulator does not take CPU
# from the services while they are measured.
simulate_events() {
    "$BIN" simulate "${sim_args[@]}" --to file --out "$WORK/events.jsonl" 2>"$WORK/simulate.log"
}
publish() {
    [ -f "$WORK/events.jsonl" ] || simulate_events
    "$TOOL" publish --speed "$1" "${@:2}" <"$WORK/events.jsonl" | tee "$WORK/publish.json"
    rm -f "$WORK/events.jsonl"
    events=$(sed -n 's/.*"published_events":\([0-9]*\).*/\1/p' "$WORK/publish.json")
}
preload() {
    publish max
    echo "{\"preloaded_events\": $events, \"topic\": \"events-$run\", \"load\": \"$(load)\"}"
}

# A sample of 50 of the simulated practices (the first N open ones of the
# organisations file), for the ClickHouse watcher.
sample_practices() {
    python3 - "$practices" <<'EOF'
import csv, sys
rows = [r["PRACTICE_CODE"] for r in csv.DictReader(open("data/organisations.csv")) if not r["CLOSE_DATE"]]
n = int(sys.argv[1]) if sys.argv[1] else len(rows)
rows = rows[:n]
print(",".join(rows[:: max(1, len(rows) // 50)][:50]))
EOF
}

tansu=$(stack_pid tansu)
clickhouse=$(stack_pid clickhouse)
broker_cpu0=$(cpu_s "$tansu")
ch_cpu0=$(cpu_s "$clickhouse")
resources() {
    echo "{\"processor_cpu_s\": $(cpu_s "$proc_pid"), \"processor_rss_peak_mib\": $(hwm_mib "$proc_pid")$(
        [ -n "${sink_pid:-}" ] && echo ", \"sink_cpu_s\": $(cpu_s "$sink_pid"), \"sink_rss_peak_mib\": $(hwm_mib "$sink_pid")"
    ), \"broker_cpu_s\": $(echo "$(cpu_s "$tansu") - $broker_cpu0" | bc), \"clickhouse_cpu_s\": $(echo "$(cpu_s "$clickhouse") - $ch_cpu0" | bc), \"load\": \"$(load)\"}"
}

echo "{\"mode\": \"$mode\", \"run\": \"$run\", \"date\": \"$(date -u +%FT%TZ)\", \"load\": \"$(load)\", \"start\": \"$start\", \"duration\": \"$duration\", \"speed\": \"$speed\", \"practices\": \"${practices:-all}\", \"work\": \"$WORK\"}"
case $mode in
live)
    sim_args=(--start "$(TZ=Europe/London date -d "${start/T/ } 10 minutes ago" +%FT%H:%M)" --duration $((10 + $(dur_s "$duration") / 60))m)
    [ -n "$practices" ] && sim_args+=(--practices "$practices")
    simulate_events # before the clock starts
    start_processor
    latency_args=() wait_args=()
    if [ "$sink" = 1 ]; then
        start_sink
        sleep 5 # group joins, schema applied
        rm -f "$WORK/ch.stop"
        "$TOOL" watch-ch --clickhouse "$CALLPULSE__CLICKHOUSE__URL" --database "$run" \
            --practices "$(sample_practices)" --out "$WORK/ch-seen.tsv" --stop "$WORK/ch.stop" &
        watch_pid=$!
        pids+=("$watch_pid")
        latency_args=(--ch-seen "$WORK/ch-seen.tsv")
        wait_args=(--metrics-topic "metrics-$run" --sink-group "sink-$run")
    else
        sleep 5 # group joins
    fi
    t0=$(now_ms)
    # The simulation starts 10 minutes early, unpublished, so queues and
    # redials are already built up at --start; only the events of the range
    # are published (the calls' tails, callbacks up to 3 hours later, would
    # take hours at 1x).
    publish "$speed" --skip-s 600 --until-s $((600 + $(dur_s "$duration")))
    "$TOOL" wait --processor "$metrics_url" --events "$events" --since-ms "$t0" --state-wait-s 11 \
        "${wait_args[@]}"
    sleep 2 # the last drain (and insert)
    if [ "$sink" = 1 ]; then
        touch "$WORK/ch.stop"
        wait "$watch_pid"
    fi
    resources
    stop "$proc_pid"
    [ "$sink" = 1 ] && stop "$sink_pid"
    pids=()
    "$TOOL" latency --events-topic "events-$run" --metrics-topic "metrics-$run" \
        --events "$events" "${latency_args[@]}"
    ;;
load | peer)
    # A pre-loaded topic is a backlog: the local broker serves its partitions
    # unevenly, and a partition starved for idle_timeout_ms (wall clock)
    # would follow the leading partition's watermark and send its own
    # backlog to the late-events topic (bench/README.md). Off for these runs.
    export CALLPULSE__PROCESSOR__IDLE_TIMEOUT_MS=${BENCH_IDLE_TIMEOUT_MS:-3600000}
    ;;&
load)
    preload
    t0=$(now_ms)
    start_processor
    if [ "$sink" = 1 ]; then
        start_sink
        "$TOOL" wait --processor "$metrics_url" --events "$events" --since-ms "$t0" --state-wait-s 11 \
            --metrics-topic "metrics-$run" --sink-group "sink-$run"
    else
        "$TOOL" wait --processor "$metrics_url" --events "$events" --since-ms "$t0" --state-wait-s 11
    fi
    resources
    ;;
peer)
    preload
    t0=$(now_ms)
    start_processor
    "$TOOL" wait --processor "$metrics_url" --events "$events" --since-ms "$t0" --state-wait-s 11
    sleep 2 # the last drain
    resources
    stop "$proc_pid"
    pids=()
    /usr/bin/time -f '{"quix_cpu_s": %U+%S, "quix_rss_peak_mib": %M/1024}' -o "$WORK/quix.time" \
        "$PY" bench/quix_counts.py --topic "events-$run" --events "$events" \
        --out "$WORK/quix.jsonl" --state-dir "$WORK/quix-state"
    python3 -c 'import re,sys; t=open(sys.argv[1]).read(); print(re.sub(r"(\d+(?:\.\d+)?)([+/])(\d+(?:\.\d+)?)", lambda m: str(round(eval(m.group(0)), 2)), t).strip())' "$WORK/quix.time"
    "$TOOL" compare --metrics-topic "metrics-$run" --quix "$WORK/quix.jsonl"
    ;;
week)
    [ "$duration" = 20m ] && duration=7d
    t0=$(now_ms)
    "$BIN" simulate --start 2026-11-16 --duration "$duration" --to file --out "$WORK/week.jsonl" 2>"$WORK/simulate.log"
    echo "{\"events\": $(sent "$WORK/simulate.log"), \"bytes\": $(stat -c %s "$WORK/week.jsonl"), \"simulate_s\": $(echo "($(now_ms) - $t0) / 1000" | bc -l | cut -c1-6)}"
    /usr/bin/time -f '{"replay_wall_s": %e, "replay_cpu_s": %U+%S, "replay_rss_peak_mib": %M/1024}' -o "$WORK/replay.time" \
        "$BIN" replay --events "$WORK/week.jsonl" --metrics /dev/null
    python3 -c 'import re,sys; t=open(sys.argv[1]).read(); print(re.sub(r"(\d+(?:\.\d+)?)([+/])(\d+(?:\.\d+)?)", lambda m: str(round(eval(m.group(0)), 2)), t).strip())' "$WORK/replay.time"
    rm -f "$WORK/week.jsonl"
    ;;
late)
    [ -n "$practices" ] || practices=300
    start_processor
    "$BIN" simulate --practices "$practices" --start 2026-11-23T12:00 --duration 10m --speed max \
        --to kafka 2>"$WORK/simulate-noon.log"
    "$TOOL" wait --processor "$metrics_url" --events "$(sent "$WORK/simulate-noon.log")" --since-ms "$(now_ms)"
    t0=$(now_ms)
    "$BIN" simulate --practices "$practices" --start 2026-11-23T08:00 --duration 1h --speed max --seed 7 \
        --to kafka 2>"$WORK/simulate-morning.log"
    published_ms=$(($(now_ms) - t0))
    late_events=$(sent "$WORK/simulate-morning.log")
    echo "{\"late_events\": $late_events, \"published_s\": $(echo "$published_ms / 1000" | bc -l | cut -c1-6)}"
    "$TOOL" wait-records --topic "late-$run" --records "$late_events" --since-ms "$t0"
    resources
    ;;
*)
    sed -n '2,30p' "$0"
    exit 2
    ;;
esac
echo "{\"end\": \"$(date -u +%FT%TZ)\", \"load\": \"$(load)\"}"
