#!/usr/bin/env bash
# callpulse local stack without Docker: a Kafka-protocol broker (tansu) and
# ClickHouse (Debian's clickhouse-server), both on 127.0.0.1.
#
#   deploy/local/stack.sh install   install what is missing (tansu, ClickHouse, ZooKeeper)
#   deploy/local/stack.sh start     install, then start what is not running; wait until ready
#   deploy/local/stack.sh stop      stop what this script started (by PID file)
#   deploy/local/stack.sh status    show what runs; exit 0 only if both run and answer
#   deploy/local/stack.sh users     render ClickHouse's users.xml again (ClickHouse reloads it)
#   deploy/local/stack.sh reset     stop, then delete the state directory
#   deploy/local/stack.sh tansu-bin print where the (patched) tansu binary is installed
#
# Environment (defaults in brackets):
#   CALLPULSE_STATE_DIR             [<repo>/.local]  PID files, logs, ClickHouse data
#   CALLPULSE_CACHE                 [$HOME/.cache/callpulse]  tansu install root
#   CALLPULSE_KAFKA_PORT            [9092]
#   CALLPULSE_CLICKHOUSE_HTTP_PORT  [8123]
#   CALLPULSE_CLICKHOUSE_TCP_PORT   [9000]
#   CALLPULSE_TANSU_STORAGE         [memory://tansu/]  tansu --storage-engine URL
#   CALLPULSE_TANSU_FEATURES        [dynostore]  cargo features of the tansu build;
#                                   "dynostore,libsql" allows sqlite://tansu.db (durable)
#   CALLPULSE_READY_TIMEOUT         [60]  seconds to wait for each service
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
CH_TEMPLATE_DIR="$REPO_ROOT/deploy/clickhouse"

TANSU_VERSION=0.6.0
# dynostore gives memory:// storage; adding libsql gives durable sqlite://
# storage (see docs/broker.md). Each feature set gets its own install root:
# dynostore -> tansu-0.6.0-pID, dynostore,libsql -> tansu-0.6.0-pID-libsql.
TANSU_FEATURES=${CALLPULSE_TANSU_FEATURES:-dynostore}
CACHE_DIR=${CALLPULSE_CACHE:-$HOME/.cache/callpulse}
tansu_suffix=$(printf '%s' "$TANSU_FEATURES" | tr ',' '\n' | tr -d ' ' | grep -vx -e dynostore -e '' | sort | paste -sd- - || true)
# Fixes applied to tansu's source before it is built (deploy/local/tansu/);
# a new patch gives a new install root, so a cached older build is not used.
TANSU_PATCH_DIR="$SCRIPT_DIR/tansu"
TANSU_PATCH_ID=$(cat "$TANSU_PATCH_DIR"/*.patch | sha256sum | cut -c1-8)
TANSU_ROOT="$CACHE_DIR/tansu-$TANSU_VERSION-p$TANSU_PATCH_ID${tansu_suffix:+-$tansu_suffix}"
TANSU_BIN="$TANSU_ROOT/bin/tansu"
# How a running broker is recognised in /proc/PID/cmdline (any feature set).
TANSU_MATCH="bin/tansu broker"

STATE_DIR=${CALLPULSE_STATE_DIR:-$REPO_ROOT/.local}
LOG_DIR="$STATE_DIR/logs"
CH_DIR="$STATE_DIR/clickhouse"
TANSU_DIR="$STATE_DIR/tansu"
TANSU_PID="$STATE_DIR/tansu.pid"
CH_PID="$STATE_DIR/clickhouse.pid"
# Generated passwords of the local ClickHouse users (never in the repository).
PASSWORD_DIR="$STATE_DIR/passwords"

KAFKA_PORT=${CALLPULSE_KAFKA_PORT:-9092}
CH_HTTP_PORT=${CALLPULSE_CLICKHOUSE_HTTP_PORT:-8123}
CH_TCP_PORT=${CALLPULSE_CLICKHOUSE_TCP_PORT:-9000}
TANSU_STORAGE=${CALLPULSE_TANSU_STORAGE:-memory://tansu/}
READY_TIMEOUT=${CALLPULSE_READY_TIMEOUT:-60}
STOP_TIMEOUT=20
HOST=127.0.0.1

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $*"
    fi
}

# ---------------------------------------------------------------- install

install_tansu() {
    if [ -x "$TANSU_BIN" ]; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain first"
    mkdir -p "$CACHE_DIR"
    log "building tansu $TANSU_VERSION with deploy/local/tansu/*.patch into $TANSU_ROOT (about 14 minutes on 2 cores)"
    # The lock keeps two concurrent runs of this script from building twice.
    (
        flock 9
        if [ ! -x "$TANSU_BIN" ]; then
            build_patched_tansu
        fi
    ) 9>"$TANSU_ROOT.lock"
    [ -x "$TANSU_BIN" ] || die "tansu build finished but $TANSU_BIN is missing"
}

# tansu's published source, with our patches to tansu-storage, built with
# the dependency versions of tansu's own Cargo.lock (only the patched crate
# changes in it). Both crates come from crates.io, checked against the
# registry's own checksums.
TANSU_CRATES="tansu:4fdd85473ec265140488cf8d55e82b844f5c051c8916fabdd4a71156ac053f6d
tansu-storage:720d2ed8e6010c70f7f06e5af5a7274ebbf6e42fdcd9e46de542b10dc4d2f35d"

build_patched_tansu() {
    command -v curl >/dev/null 2>&1 || die "curl not found (it fetches tansu's source from crates.io)"
    local work="$TANSU_ROOT.build" entry
    rm -rf "$work"
    mkdir -p "$work"
    for entry in $TANSU_CRATES; do
        local crate=${entry%%:*} sum=${entry#*:}
        local file="$work/$crate-$TANSU_VERSION.crate"
        curl -sSfL --retry 3 -o "$file" "https://static.crates.io/crates/$crate/$crate-$TANSU_VERSION.crate" ||
            die "could not download $crate $TANSU_VERSION from crates.io"
        printf '%s  %s\n' "$sum" "$file" | sha256sum -c --quiet - || die "$crate $TANSU_VERSION: checksum mismatch"
        tar -xzf "$file" -C "$work"
        mv "$work/$crate-$TANSU_VERSION" "$work/$crate"
    done
    local patch
    for patch in "$TANSU_PATCH_DIR"/*.patch; do
        log "applying $(basename "$patch")"
        (cd "$work/tansu-storage" && git apply -p1 "$patch") || die "$(basename "$patch") does not apply to tansu-storage $TANSU_VERSION"
    done
    printf '\n[patch.crates-io]\ntansu-storage = { path = "../tansu-storage" }\n' >>"$work/tansu/Cargo.toml"
    cargo build --release --manifest-path "$work/tansu/Cargo.toml" \
        --features "$TANSU_FEATURES" --target-dir "$work/target" --bin tansu
    mkdir -p "$TANSU_ROOT/bin"
    cp "$work/target/release/tansu" "$TANSU_BIN.tmp"
    mv "$TANSU_BIN.tmp" "$TANSU_BIN"
    rm -rf "$work"
}

# Debian puts the server in /usr/sbin, which a non-root PATH may lack.
clickhouse_exe() {
    command -v clickhouse-server 2>/dev/null ||
        { [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server; }
}

install_clickhouse() {
    if clickhouse_exe >/dev/null; then
        return 0
    fi
    log "installing clickhouse-server and clickhouse-client from apt"
    apt_install clickhouse-server clickhouse-client
    clickhouse_exe >/dev/null || die "clickhouse-server still not installed"
}

# apt_install PACKAGE...: install from apt without letting the packages'
# init scripts start system-wide servers (ClickHouse on 8123/9000,
# ZooKeeper on 2181); Docker-style images already ship such a policy-rc.d.
apt_install() {
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        added_policy=1
    fi
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if [ "$rc" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "$@" || rc=$?
    fi
    if [ "$added_policy" -eq 1 ]; then
        as_root rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed (exit $rc)"
}

# ZooKeeper is not part of the stack: tests/tests/replicated_clickhouse.rs
# starts one of its own (with two ClickHouse replicas) from Debian's jar.
install_zookeeper() {
    if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
        return 0
    fi
    log "installing zookeeper (and a Java runtime) from apt"
    apt_install zookeeper
    [ -f /usr/share/java/zookeeper.jar ] || die "zookeeper still not installed"
    command -v java >/dev/null 2>&1 || die "zookeeper installed but no java on PATH"
}

cmd_install() {
    install_clickhouse
    install_zookeeper
    install_tansu
}

# ---------------------------------------------------------------- helpers

# pid_of NAME PIDFILE EXE: print the PID recorded in PIDFILE if that process
# is alive and still runs EXE (guards against a recycled PID).
pid_of() {
    local pidfile=$2 exe=$3 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case "$cmdline" in *"$exe"*) printf '%s\n' "$pid" ;; *) return 1 ;; esac
}

port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

clickhouse_ping() {
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -sf --max-time 2 "http://$HOST:$CH_HTTP_PORT/ping" 2>/dev/null)" = "Ok." ]
    else
        local reply
        reply=$(
            exec 3<>"/dev/tcp/$HOST/$CH_HTTP_PORT" || exit 1
            printf 'GET /ping HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" >&3
            timeout 2 cat <&3
        ) 2>/dev/null || return 1
        case "$reply" in *"Ok."*) return 0 ;; *) return 1 ;; esac
    fi
}

tansu_ready() { port_open "$KAFKA_PORT"; }

show_log_tail() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            printf -- '----- last lines of %s -----\n' "$f" >&2
            tail -n 30 "$f" >&2
        fi
    done
}

# launched_alive PIDFILE: the process launch() started is still alive.
# Unlike pid_of, this does not read /proc/PID/cmdline: just after launch the
# shell is still exec'ing the server, and its command line can read as empty
# for a moment, which once made a healthy broker look "exited" in CI.
launched_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null
}

# wait_ready NAME CHECK PIDFILE LOG...
wait_ready() {
    local name=$1 check=$2 pidfile=$3
    shift 3
    local deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if $check; then
            return 0
        fi
        if ! launched_alive "$pidfile"; then
            show_log_tail "$@"
            die "$name exited during start-up (see the log above)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_log_tail "$@"
            die "$name not ready after ${READY_TIMEOUT}s (see the log above)"
        fi
        sleep 0.5
    done
}

# launch PIDFILE LOGFILE WORKDIR COMMAND...: start COMMAND detached from the
# terminal (own session, no stdin) and record its PID.
launch() {
    local pidfile=$1 logfile=$2 workdir=$3
    shift 3
    rm -f "$pidfile"
    (
        cd "$workdir"
        # The inner shell writes its own PID and then becomes the server.
        # shellcheck disable=SC2016
        exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
            >>"$logfile" 2>&1 </dev/null
    ) &
    local _
    for _ in $(seq 1 50); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    die "could not start: $*"
}

# stop_one NAME PIDFILE EXE
stop_one() {
    local name=$1 pidfile=$2 exe=$3 pid
    if ! pid=$(pid_of "$name" "$pidfile" "$exe"); then
        if [ -f "$pidfile" ]; then
            log "$name: not running (removing stale $(basename "$pidfile"))"
            rm -f "$pidfile"
        fi
        return 0
    fi
    log "$name: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- start

render_clickhouse_config() {
    mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$LOG_DIR"
    local sed_escape_ch sed_escape_log
    sed_escape_ch=$(printf '%s' "$CH_DIR" | sed 's/[&|\\]/\\&/g')
    sed_escape_log=$(printf '%s' "$LOG_DIR" | sed 's/[&|\\]/\\&/g')
    sed -e "s|@CH_DIR@|$sed_escape_ch|g" \
        -e "s|@LOG_DIR@|$sed_escape_log|g" \
        -e "s|@HTTP_PORT@|$CH_HTTP_PORT|g" \
        -e "s|@TCP_PORT@|$CH_TCP_PORT|g" \
        "$CH_TEMPLATE_DIR/config.xml" >"$CH_DIR/config.xml.tmp"
    mv "$CH_DIR/config.xml.tmp" "$CH_DIR/config.xml"
    render_clickhouse_users
}

# users.xml with the analyst's password hash. The password is generated once
# into $PASSWORD_DIR/analyst and kept; users.d/ holds further users (e.g.
# per-ICB ones, docs/queries.md). A running ClickHouse reloads both.
render_clickhouse_users() {
    mkdir -p "$CH_DIR/users.d" "$PASSWORD_DIR"
    chmod 700 "$PASSWORD_DIR"
    local file="$PASSWORD_DIR/analyst" hash
    if [ ! -s "$file" ]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' >"$file")
    fi
    hash=$(tr -d '\n' <"$file" | sha256sum | cut -d' ' -f1)
    sed -e "s|@ANALYST_PASSWORD_SHA256@|$hash|g" \
        "$CH_TEMPLATE_DIR/users.xml" >"$CH_DIR/users.xml.tmp"
    mv "$CH_DIR/users.xml.tmp" "$CH_DIR/users.xml"
}

start_clickhouse() {
    local exe ch_log="$LOG_DIR/clickhouse-server.log" ch_err="$LOG_DIR/clickhouse-server.err.log"
    local out="$LOG_DIR/clickhouse-stdout.log"
    exe=$(clickhouse_exe) || die "clickhouse-server not found"
    if pid_of clickhouse "$CH_PID" clickhouse-server >/dev/null; then
        wait_ready clickhouse clickhouse_ping "$CH_PID" "$out" "$ch_err" "$ch_log"
        log "clickhouse: already running (pid $(cat "$CH_PID")), http :$CH_HTTP_PORT"
        return 0
    fi
    rm -f "$CH_PID"
    for port in "$CH_HTTP_PORT" "$CH_TCP_PORT"; do
        if port_open "$port"; then
            die "clickhouse: port $HOST:$port is already in use by another process (not started by this script)"
        fi
    done
    render_clickhouse_config
    log "clickhouse: starting on http :$CH_HTTP_PORT, native :$CH_TCP_PORT"
    launch "$CH_PID" "$out" "$CH_DIR" "$exe" --config-file="$CH_DIR/config.xml"
    wait_ready clickhouse clickhouse_ping "$CH_PID" "$out" "$ch_err" "$ch_log"
    log "clickhouse: ready (pid $(cat "$CH_PID"))"
}

start_tansu() {
    local out="$LOG_DIR/tansu.log" url="tcp://$HOST:$KAFKA_PORT"
    if pid_of tansu "$TANSU_PID" "$TANSU_MATCH" >/dev/null; then
        wait_ready tansu tansu_ready "$TANSU_PID" "$out"
        log "tansu: already running (pid $(cat "$TANSU_PID")), kafka :$KAFKA_PORT"
        return 0
    fi
    rm -f "$TANSU_PID"
    if port_open "$KAFKA_PORT"; then
        die "tansu: port $HOST:$KAFKA_PORT is already in use by another process (not started by this script)"
    fi
    case "$TANSU_STORAGE,$TANSU_FEATURES" in
        sqlite:*,*libsql*) ;;
        sqlite:*) die "tansu: $TANSU_STORAGE needs CALLPULSE_TANSU_FEATURES=dynostore,libsql" ;;
    esac
    mkdir -p "$TANSU_DIR" "$LOG_DIR"
    log "tansu: starting on kafka :$KAFKA_PORT, storage $TANSU_STORAGE"
    launch "$TANSU_PID" "$out" "$TANSU_DIR" \
        env RUST_LOG="${RUST_LOG:-warn}" NO_COLOR=1 \
        "$TANSU_BIN" broker \
        --listener-url "$url" \
        --advertised-listener-url "$url" \
        --storage-engine "$TANSU_STORAGE"
    wait_ready tansu tansu_ready "$TANSU_PID" "$out"
    log "tansu: ready (pid $(cat "$TANSU_PID"))"
}

cmd_start() {
    cmd_install
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    start_tansu
    start_clickhouse
    log "up: kafka $HOST:$KAFKA_PORT, clickhouse http://$HOST:$CH_HTTP_PORT (native $CH_TCP_PORT), state in $STATE_DIR"
}

cmd_stop() {
    stop_one tansu "$TANSU_PID" "$TANSU_MATCH"
    stop_one clickhouse "$CH_PID" clickhouse-server
}

cmd_status() {
    local ok=0 pid
    if pid=$(pid_of tansu "$TANSU_PID" "$TANSU_MATCH"); then
        if tansu_ready; then
            echo "tansu:      running (pid $pid), kafka $HOST:$KAFKA_PORT, storage $TANSU_STORAGE"
        else
            echo "tansu:      running (pid $pid) but port $KAFKA_PORT not accepting"
            ok=1
        fi
    else
        echo "tansu:      stopped"
        ok=1
    fi
    if pid=$(pid_of clickhouse "$CH_PID" clickhouse-server); then
        if clickhouse_ping; then
            echo "clickhouse: running (pid $pid), http $HOST:$CH_HTTP_PORT, native $HOST:$CH_TCP_PORT"
        else
            echo "clickhouse: running (pid $pid) but http://$HOST:$CH_HTTP_PORT/ping not answering"
            ok=1
        fi
    else
        echo "clickhouse: stopped"
        ok=1
    fi
    echo "state:      $STATE_DIR"
    return "$ok"
}

cmd_reset() {
    cmd_stop
    if [ -d "$STATE_DIR" ]; then
        log "deleting $STATE_DIR"
        rm -rf "$STATE_DIR"
    fi
}

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    users) render_clickhouse_users && log "users.xml rendered into $CH_DIR (analyst password in $PASSWORD_DIR/analyst)" ;;
    reset) cmd_reset ;;
    tansu-bin) echo "$TANSU_BIN" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
