#!/usr/bin/env bash
# A local multi-node cache cluster: N cache nodes (memcrab by default, or
# memcached) behind nutcracker (twemproxy), all on 127.0.0.1.
#
#   scripts/cluster.sh start  [--bin PATH] [--dir DIR] [--nodes N] [--port P]
#                             [--memory MB] [--retry-timeout MS] [--hash NAME]
#   scripts/cluster.sh status [--dir DIR]
#   scripts/cluster.sh stop   [--dir DIR]
#   scripts/cluster.sh --install     apt-get install nutcracker (if missing)
#
# start writes nutcracker.yml, the pid files, the logs and cluster.env (ports,
# pids) into DIR and prints the proxy address. Clients talk to the proxy with
# the memcached text protocol; nutcracker spreads keys over the nodes with
# ketama (md5 key hash, node names n1..nN) and, with auto_eject_hosts: true
# and server_failure_limit: 1, takes a node out of the ring at its first
# failure and tries it again after server_retry_timeout.
#
# Options (defaults):
#   --bin PATH           cache server binary (<repo>/target/release/memcrab;
#                        --bin /usr/bin/memcached runs memcached instead)
#   --dir DIR            run directory (${TMPDIR:-/tmp}/memcrab-cluster-$UID)
#   --nodes N            number of cache nodes (3)
#   --port P             proxy on P, nodes on P+1..P+N, nutcracker stats on
#                        P+N+1 (default: a free block picked in 41000-41999)
#   --memory MB          -m of each node (64)
#   --retry-timeout MS   nutcracker server_retry_timeout (2000)
#   --hash NAME          nutcracker key hash (md5; nutcracker's own default,
#                        fnv1a_64, keeps only 32 bits and crowds keys that
#                        differ in their last characters onto one node)
#
# Exit status: 0 ok; 1 start/stop failed or (status) something is down;
# 2 usage or setup error.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG="cluster.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}
die() {
    echo "$PROG: $*" >&2
    exit 2
}

# apt_install PKG...: without starting the packages' services.
apt_install() { "$REPO/scripts/apt-install.sh" "$@"; }

install_packages() {
    if command -v nutcracker >/dev/null; then
        echo "$PROG: nutcracker already installed"
        return 0
    fi
    apt_install nutcracker
}

CMD=""
BIN="$REPO/target/release/memcrab"
DIR="${TMPDIR:-/tmp}/memcrab-cluster-$UID"
NODES=3
PORT=""
MEMORY=64
RETRY_TIMEOUT=2000
HASH=md5
while (($#)); do
    case "$1" in
    start | stop | status) CMD="$1" ;;
    --install) CMD="${CMD:-install}" ;;
    --bin) BIN="${2:?--bin needs a path}"; shift ;;
    --dir) DIR="${2:?--dir needs a path}"; shift ;;
    --nodes) NODES="${2:?--nodes needs a number}"; shift ;;
    --port) PORT="${2:?--port needs a number}"; shift ;;
    --memory) MEMORY="${2:?--memory needs a number}"; shift ;;
    --hash) HASH="${2:?--hash needs a name}"; shift ;;
    --retry-timeout) RETRY_TIMEOUT="${2:?--retry-timeout needs milliseconds}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[[ $CMD == install ]] && { install_packages; exit 0; }
[[ -n $CMD ]] || { usage >&2; exit 2; }
for v in NODES MEMORY RETRY_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v,,} must be a number"
done
((NODES >= 1 && NODES <= 20)) || die "--nodes must be 1..20"
[[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die "--port must be a number"

ENV_FILE="$DIR/cluster.env"

# --- helpers ---------------------------------------------------------------

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# pid_is PID PATTERN: PID is alive and its command line contains PATTERN
# (guards against a recycled pid).
pid_is() {
    local pid="$1" pattern="$2"
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# alive PID: PID exists and is not a zombie.
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ ${stat:0:1} != Z ]]
}

# wait_port PORT PID: wait (max 5 s) until PORT accepts while PID lives.
wait_port() {
    local i
    for ((i = 0; i < 50; i++)); do
        alive "$2" || return 1
        port_open "$1" && return 0
        sleep 0.1
    done
    return 1
}

# mc_stat PORT NAME: one value of `stats` from 127.0.0.1:PORT.
mc_stat() {
    local fd tag name value
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'stats\r\nquit\r\n' >&"$fd"
    while IFS=' ' read -r -t 2 tag name value <&"$fd"; do
        [[ ${tag%$'\r'} == END ]] && break
        if [[ $name == "$2" ]]; then echo "${value%$'\r'}"; fi
    done
    exec {fd}>&-
}

# port_free PORT: nothing listens on PORT and no socket uses it as its local
# port (41000-41999 lies inside Linux's ephemeral range, so an outgoing
# connection may hold it).
port_free() {
    if command -v ss >/dev/null; then
        [[ -z $(ss -Htan "sport = :$1" 2>/dev/null) ]]
    else
        if port_open "$1"; then return 1; fi
    fi
}

pick_base_port() {
    local tries base p ok
    for ((tries = 0; tries < 50; tries++)); do
        base=$((41000 + RANDOM % (1000 - NODES - 2)))
        ok=1
        for ((p = base; p <= base + NODES + 1; p++)); do
            if ! port_free "$p"; then ok=0; break; fi
        done
        ((ok)) && { echo "$base"; return 0; }
    done
    return 1
}

load_env() {
    [[ -r $ENV_FILE ]] || return 1
    # shellcheck disable=SC1090
    source "$ENV_FILE"
}

# --- start -----------------------------------------------------------------

start_cluster() {
    command -v nutcracker >/dev/null ||
        die "nutcracker not found: apt-get install nutcracker (or $0 --install)"
    [[ -x $BIN ]] || die "cache server binary not found: $BIN (cargo build --release, or --bin PATH)"
    BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    ENV_FILE="$DIR/cluster.env"
    if load_env && pid_is "${PROXY_PID:-}" "$DIR/nutcracker.yml"; then
        echo "$PROG: a cluster is already running in $DIR (proxy 127.0.0.1:$PROXY_PORT); stop it first" >&2
        exit 1
    fi
    local attempt base
    for ((attempt = 1; attempt <= 3; attempt++)); do
        if [[ -n $PORT ]]; then
            base=$PORT
            ((base >= 1 && base + NODES + 1 <= 65535)) || die "--port out of range"
        else
            base="$(pick_base_port)" || die "no free block of $((NODES + 2)) ports in 41000-41999"
        fi
        try_start "$base" && return 0
        # a port taken between the check and the bind: try another block
        [[ -z $PORT ]] || exit 1
        echo "$PROG: retrying with other ports" >&2
    done
    exit 1
}

# try_start BASE: start the nodes and nutcracker on BASE..; 1 after cleaning
# up if something did not start.
try_start() {
    local base=$1 i port pidf pid user=()
    rm -f "$DIR"/*.pid "$DIR"/*.log "$ENV_FILE"
    PROXY_PORT=$base
    STATS_PORT=$((base + NODES + 1))
    PROXY_PID=""
    NODE_PORTS=()
    NODE_PIDS=()
    ((EUID == 0)) && user=(-u root)

    for ((i = 1; i <= NODES; i++)); do
        port=$((base + i))
        pidf="$DIR/n$i.pid"
        port_free "$port" || { echo "$PROG: port $port is in use" >&2; stop_started; return 1; }
        "$BIN" "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -m "$MEMORY" -P "$pidf" \
            </dev/null >"$DIR/n$i.log" 2>&1 &
        pid=$!
        NODE_PORTS+=("$port")
        NODE_PIDS+=("$pid")
        if ! wait_port "$port" "$pid"; then
            echo "$PROG: node n$i ($BIN on port $port) did not start; log:" >&2
            sed 's/^/  /' "$DIR/n$i.log" >&2
            stop_started
            return 1
        fi
    done

    {
        echo "# generated by scripts/cluster.sh"
        echo "memcrab:"
        echo "  listen: 127.0.0.1:$PROXY_PORT"
        echo "  hash: $HASH"
        echo "  distribution: ketama"
        echo "  timeout: 1000"
        echo "  backlog: 1024"
        echo "  preconnect: true"
        echo "  auto_eject_hosts: true"
        echo "  server_retry_timeout: $RETRY_TIMEOUT"
        echo "  server_failure_limit: 1"
        echo "  servers:"
        for ((i = 1; i <= NODES; i++)); do
            echo "    - 127.0.0.1:${NODE_PORTS[i - 1]}:1 n$i"
        done
    } >"$DIR/nutcracker.yml"

    if ! nutcracker -t -c "$DIR/nutcracker.yml" >"$DIR/nutcracker-check.log" 2>&1; then
        echo "$PROG: nutcracker rejected $DIR/nutcracker.yml:" >&2
        sed 's/^/  /' "$DIR/nutcracker-check.log" >&2
        stop_started
        exit 1
    fi
    for port in "$PROXY_PORT" "$STATS_PORT"; do
        port_free "$port" || { echo "$PROG: port $port is in use" >&2; stop_started; return 1; }
    done
    nutcracker -d -c "$DIR/nutcracker.yml" -o "$DIR/nutcracker.log" -p "$DIR/nutcracker.pid" \
        -a 127.0.0.1 -s "$STATS_PORT" </dev/null >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
        [[ -s $DIR/nutcracker.pid ]] && PROXY_PID="$(cat "$DIR/nutcracker.pid")" && break
        sleep 0.1
    done
    if [[ -z $PROXY_PID ]] || ! wait_port "$PROXY_PORT" "$PROXY_PID"; then
        echo "$PROG: nutcracker did not start; log:" >&2
        sed 's/^/  /' "$DIR/nutcracker.log" >&2 || true
        stop_started
        return 1
    fi

    {
        echo "# written by scripts/cluster.sh start; read by stop/status and tests"
        echo "BIN='$BIN'"
        echo "NODES=$NODES"
        echo "PROXY_PORT=$PROXY_PORT"
        echo "STATS_PORT=$STATS_PORT"
        echo "RETRY_TIMEOUT=$RETRY_TIMEOUT"
        echo "PROXY_PID=$PROXY_PID"
        echo "NODE_PORTS=(${NODE_PORTS[*]})"
        echo "NODE_PIDS=(${NODE_PIDS[*]})"
    } >"$ENV_FILE"

    echo "cluster started in $DIR"
    echo "  proxy  127.0.0.1:$PROXY_PORT (nutcracker pid $PROXY_PID, stats 127.0.0.1:$STATS_PORT)"
    for ((i = 1; i <= NODES; i++)); do
        echo "  n$i     127.0.0.1:${NODE_PORTS[i - 1]} ($(basename "$BIN") pid ${NODE_PIDS[i - 1]})"
    done
    echo "stop with: $0 stop --dir $DIR"
}

# terminate PID PATTERN: SIGTERM, wait up to 5 s, then SIGKILL.
terminate() {
    local pid="$1" pattern="$2" i
    pid_is "$pid" "$pattern" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_is "$pid" "$pattern" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.1
    ! pid_is "$pid" "$pattern"
}

# stop what a failed start already started
stop_started() {
    local i
    [[ -n ${PROXY_PID:-} ]] && { terminate "$PROXY_PID" "$DIR/nutcracker.yml" || true; }
    for ((i = 0; i < ${#NODE_PIDS[@]}; i++)); do
        terminate "${NODE_PIDS[i]}" "$DIR/n$((i + 1)).pid" || true
    done
}

# --- stop / status -----------------------------------------------------------

stop_cluster() {
    [[ -d $DIR ]] && DIR="$(cd "$DIR" && pwd)" && ENV_FILE="$DIR/cluster.env"
    if ! load_env; then
        echo "$PROG: no cluster in $DIR (no cluster.env)"
        return 0
    fi
    local rc=0 i
    terminate "${PROXY_PID:-}" "$DIR/nutcracker.yml" || { echo "$PROG: nutcracker $PROXY_PID did not stop" >&2; rc=1; }
    for ((i = 0; i < NODES; i++)); do
        terminate "${NODE_PIDS[i]}" "$DIR/n$((i + 1)).pid" ||
            { echo "$PROG: node n$((i + 1)) pid ${NODE_PIDS[i]} did not stop" >&2; rc=1; }
    done
    rm -f "$ENV_FILE" "$DIR"/*.pid
    ((rc == 0)) && echo "cluster in $DIR stopped"
    return $rc
}

status_cluster() {
    [[ -d $DIR ]] && DIR="$(cd "$DIR" && pwd)" && ENV_FILE="$DIR/cluster.env"
    if ! load_env; then
        echo "no cluster in $DIR"
        return 1
    fi
    local rc=0 i state items
    if pid_is "$PROXY_PID" "$DIR/nutcracker.yml" && port_open "$PROXY_PORT"; then
        state=up
    else
        state=DOWN
        rc=1
    fi
    echo "proxy  127.0.0.1:$PROXY_PORT  pid $PROXY_PID  $state  (stats: nc 127.0.0.1 $STATS_PORT)"
    for ((i = 0; i < NODES; i++)); do
        if pid_is "${NODE_PIDS[i]}" "$DIR/n$((i + 1)).pid" && port_open "${NODE_PORTS[i]}"; then
            items="$(mc_stat "${NODE_PORTS[i]}" curr_items || true)"
            echo "n$((i + 1))     127.0.0.1:${NODE_PORTS[i]}  pid ${NODE_PIDS[i]}  up  curr_items=${items:-?}"
        else
            echo "n$((i + 1))     127.0.0.1:${NODE_PORTS[i]}  pid ${NODE_PIDS[i]}  DOWN"
            rc=1
        fi
    done
    return $rc
}

case "$CMD" in
start) start_cluster ;;
stop) stop_cluster ;;
status) status_cluster ;;
esac
