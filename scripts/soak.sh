#!/usr/bin/env bash
# Soak test: memcrab under constant eviction, every answer verified.
#
#   scripts/soak.sh [--duration SECS] [--conns N] [--rss-limit-mib MIB] [--seed N]
#
# Starts memcrab at `-m 16` on a free loopback port and runs the soak
# workload (benches/loadgen, bin `soak`) over 500 connections for
# --duration seconds (default 300; CI uses 60):
#
#   * mixed requests: get, multi-get, set, add, replace, delete, touch,
#     incr/decr, append, reads of other connections' keys; values from 16 B
#     to 256 KiB (most up to 4 KiB), so every slab class evicts;
#   * every reply checked: each connection owns its keys and models them,
#     so a get must return the last value written for its key or a miss
#     (eviction), never an old or foreign value; a wrong value or any error
#     fails the run;
#   * clients killed on purpose in the middle of a data block, of a command
#     line, or with unread answers (reset or FIN); their partial commands
#     must have no effect;
#   * memcrab's RSS sampled every second: min/max reported, max asserted
#     <= --rss-limit-mib (default below);
#   * at the end, SIGTERM under full load: every connection must be closed
#     by the server within 5 s and memcrab must exit 0 within 10 s.
#
# The default RSS limit is what the memory budget allows, in MiB:
#     -m (16)
#   + 42: one slab page per slab class granted beyond -m (memcached grants
#     a class its first page even over the limit; 42 classes at the
#     default -f 1.25, -I 1m)
#   + 4: the worker threads' buffer pools (1 MiB each, -t 4); an idle
#     connection holds no buffer
#   + connections x 16 KiB: buffers of connections caught mid-request
#   + 16: the index, the worker runtimes, the binary (~4 MiB idle)
# = 86 MiB for 500 connections. (memcached 1.6.18 peaks at ~42 MiB under
# the same workload.) docs/reliability.md has the measured numbers.
#
# Environment: MEMCRAB_BIN (default <repo>/target/release/memcrab),
# SOAK_BIN (default: built with cargo into ${CARGO_TARGET_DIR:-<repo>/target}).
#
# Exit status: 0 pass; 1 wrong values, errors, RSS over the limit or an
# unclean shutdown; 2 setup failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION=300
CONNS=500
MEM_MB=16
RSS_LIMIT_MIB=""
SEED=1
while (($#)); do
    case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --conns) CONNS="$2"; shift 2 ;;
    --rss-limit-mib) RSS_LIMIT_MIB="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "soak.sh: unknown argument $1" >&2
        exit 2
        ;;
    esac
done
RSS_LIMIT_MIB="${RSS_LIMIT_MIB:-$((MEM_MB + 42 + 4 + CONNS * 16 / 1024 + 16))}"

MEMCRAB_BIN="${MEMCRAB_BIN:-$REPO/target/release/memcrab}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
if [[ -z ${SOAK_BIN:-} ]]; then
    echo "soak.sh: building (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
    (cd "$REPO" && cargo build --release -q -p loadgen --bin soak) || exit 2
    SOAK_BIN="$CARGO_TARGET_DIR/release/soak"
    if [[ $MEMCRAB_BIN == "$REPO/target/release/memcrab" && $CARGO_TARGET_DIR == "$REPO/target" ]]; then
        (cd "$REPO" && cargo build --release -q --bin memcrab) || exit 2
    fi
fi
for b in "$MEMCRAB_BIN" "$SOAK_BIN"; do
    [[ -x $b ]] || {
        echo "soak.sh: $b not found" >&2
        exit 2
    }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

WORK="$(mktemp -d /tmp/memcrab-soak.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Start memcrab on a free port (retry if another process takes it first).
for _ in 1 2 3 4 5; do
    PORT="$(free_port)"
    "$MEMCRAB_BIN" -u root -U 0 -l 127.0.0.1 -p "$PORT" -m "$MEM_MB" -c 4096 -t 4 \
        >"$WORK/memcrab.out" 2>"$WORK/memcrab.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            break 2
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
done
if [[ -z $SERVER_PID ]]; then
    echo "soak.sh: memcrab did not start:" >&2
    cat "$WORK/memcrab.err" >&2
    exit 2
fi
echo "soak.sh: memcrab pid $SERVER_PID on 127.0.0.1:$PORT -m $MEM_MB; $CONNS connections for $DURATION s"

# The workload samples RSS every second and sends SIGTERM at the end,
# with the load still running.
set +e
"$SOAK_BIN" --server "127.0.0.1:$PORT" --conns "$CONNS" --duration "$DURATION" \
    --pid "$SERVER_PID" --rss-limit-mib "$RSS_LIMIT_MIB" --sigterm --shutdown-within 5 \
    --seed "$SEED" | tee "$WORK/soak.out"
SOAK_RC=${PIPESTATUS[0]}
set -e

# memcrab must exit by itself, with status 0, within 10 s of the SIGTERM.
EXIT_RC=""
for _ in $(seq 200); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        set +e
        wait "$SERVER_PID"
        EXIT_RC=$?
        set -e
        break
    fi
    sleep 0.05
done
SERVER_PID_DONE="$SERVER_PID"
if [[ -z $EXIT_RC ]]; then
    echo "soak.sh: memcrab still running 10 s after SIGTERM" >&2
else
    SERVER_PID=""
fi

JSON="$(tail -n 1 "$WORK/soak.out")"
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$JSON" "$1" 2>/dev/null || true; }
CHECKED="$(field checked)"
WRONG="$(field wrong)"
ERRORS="$(field errors)"
RSS_MIN="$(field rss_min_kib)"
RSS_MAX="$(field rss_max_kib)"
SHUTDOWN="$(field shutdown_secs)"

echo
echo "==================== soak summary ===================="
echo "duration:          $DURATION s, $CONNS connections, memcrab -m $MEM_MB (pid $SERVER_PID_DONE)"
echo "reads checked:     ${CHECKED:-?}"
echo "wrong values:      ${WRONG:-?}"
echo "errors:            ${ERRORS:-?}"
if [[ -n $RSS_MAX ]]; then
    echo "RSS:               min $((RSS_MIN / 1024)) MiB, peak $((RSS_MAX / 1024)) MiB (-m $MEM_MB MiB; limit $RSS_LIMIT_MIB MiB)"
fi
echo "SIGTERM under load: connections closed in ${SHUTDOWN:-?} s; exit status ${EXIT_RC:-none (killed)}"
if [[ -s $WORK/memcrab.err ]]; then
    echo "memcrab stderr (last lines):"
    tail -n 5 "$WORK/memcrab.err" | sed 's/^/    /'
fi
FAIL=0
if [[ $SOAK_RC != 0 ]]; then
    echo "FAIL: the workload failed (exit $SOAK_RC)"
    FAIL=1
fi
if [[ $EXIT_RC != 0 ]]; then
    echo "FAIL: memcrab did not exit cleanly after SIGTERM (status ${EXIT_RC:-still running})"
    FAIL=1
fi
if grep -qi "panic" "$WORK/memcrab.err"; then
    echo "FAIL: memcrab logged a panic"
    FAIL=1
fi
if ((FAIL)); then
    echo "RESULT: FAIL"
    exit 1
fi
echo "RESULT: PASS"
