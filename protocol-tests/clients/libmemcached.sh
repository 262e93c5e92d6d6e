#!/usr/bin/env bash
# Real-client checks with libmemcached's command-line tools (Debian
# libmemcached-tools, commands prefixed `memc`), unmodified:
# memccapable -a (ascii conformance), memccp/memccat, memcexist, memctouch,
# memcrm, memcstat, memcping, memcflush; memccapable without -a and
# memccp/memccat --binary need the binary protocol (scripts/clients.sh lists
# them as expected failures while the server does not speak it).
#
#   protocol-tests/clients/libmemcached.sh HOST:PORT
#
# Prints one line per check: `PASS name` or `FAIL name: reason`. Exits 0 when
# every check ran, whatever their results. Run by scripts/clients.sh.
# memccapable FLUSHES the server.
set -euo pipefail

if [[ $# -ne 1 || $1 != *:* ]]; then
    echo "usage: $0 HOST:PORT" >&2
    exit 2
fi
ADDR=$1
HOST=${ADDR%:*}
PORT=${ADDR##*:}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
one_line() { tr -s '\n\t ' '   ' | cut -c1-300; }

# check NAME FUNCTION: runs FUNCTION; it prints its failure reason and returns
# non-zero, or returns 0.
check() {
    local name=$1 out
    if out=$("$2" 2>&1); then
        pass "$name"
    else
        fail "$name" "$(printf '%s' "$out" | one_line)"
    fi
}

memccapable_ascii() {
    local out rc=0
    out=$(timeout 60 memccapable -a -t 2 -h "$HOST" -p "$PORT" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q '^All tests passed' <<<"$out"; then
        echo "exit $rc; failed: $(grep -B1 -a '\[FAIL\]' <<<"$out" | grep -av '^\[FAIL\]' | grep -av '^--' | cut -c1-40 | sed 's/ *$//' | paste -sd, -)"
        echo "$out" | tail -3
        return 1
    fi
}

# memccapable without -a runs its ascii and its binary tests.
memccapable_all() {
    local out rc=0
    out=$(timeout 90 memccapable -t 1 -h "$HOST" -p "$PORT" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q '^All tests passed' <<<"$out"; then
        local failed ascii binary
        failed=$(grep -B1 -a '\[FAIL\]' <<<"$out" | grep -aEo '^(ascii|binary) [a-z_]+' || true)
        ascii=$(grep -ac '^ascii' <<<"$failed" || true)
        binary=$(grep -ac '^binary' <<<"$failed" || true)
        echo "exit $rc; $(grep -aE 'tests failed' <<<"$out" || echo 'no summary');" \
            "failed: $ascii ascii tests $(grep -a '^ascii' <<<"$failed" | paste -sd, - || true), $binary binary tests"
        return 1
    fi
}

make_files() {
    # every byte value, CR LF, an "END" line, then random bytes
    printf '%b' "$(printf '\\x%02x' $(seq 0 255))" >"$WORK/lm_bytes"
    printf '\r\nEND\r\nVALUE x 0 1\r\n' >>"$WORK/lm_bytes"
    head -c 300000 /dev/urandom >>"$WORK/lm_bytes"
    printf 'x' >"$WORK/lm_one"
    head -c 900000 /dev/urandom >"$WORK/lm_big"
}

# memccp stores each file under its base name; memccat --file writes a value
# back byte for byte.
copy_round_trip() {
    local mode=("$@") f
    for f in lm_bytes lm_one lm_big; do
        timeout 10 memccp "${mode[@]}" --servers="$ADDR" --flags=123 "$WORK/$f" ||
            { echo "memccp ${mode[*]} $f failed"; return 1; }
    done
    for f in lm_bytes lm_one lm_big; do
        rm -f "$WORK/out_$f"
        timeout 10 memccat "${mode[@]}" --servers="$ADDR" --file="$WORK/out_$f" "$f" ||
            { echo "memccat ${mode[*]} $f failed"; return 1; }
        cmp "$WORK/$f" "$WORK/out_$f" || { echo "memccat ${mode[*]} $f: value differs"; return 1; }
    done
}

memccp_memccat() { copy_round_trip; }
memccp_memccat_binary() { copy_round_trip --binary; }

exist_touch_rm() {
    timeout 10 memccp --servers="$ADDR" "$WORK/lm_one" || { echo "memccp failed"; return 1; }
    timeout 10 memcexist --servers="$ADDR" lm_one || { echo "memcexist of a stored key failed"; return 1; }
    if timeout 10 memcexist --servers="$ADDR" lm_missing_key; then
        echo "memcexist of a missing key succeeded"
        return 1
    fi
    timeout 10 memctouch --servers="$ADDR" --expire=100 lm_one || { echo "memctouch of a stored key failed"; return 1; }
    if timeout 10 memctouch --servers="$ADDR" --expire=100 lm_missing_key; then
        echo "memctouch of a missing key succeeded"
        return 1
    fi
    timeout 10 memcrm --servers="$ADDR" lm_one || { echo "memcrm failed"; return 1; }
    if timeout 10 memcexist --servers="$ADDR" lm_one; then
        echo "memcexist after memcrm succeeded"
        return 1
    fi
    if timeout 10 memcrm --servers="$ADDR" lm_one; then
        echo "memcrm of a missing key succeeded"
        return 1
    fi
}

stat_ping_version() {
    local out
    timeout 10 memcping --servers="$ADDR" || { echo "memcping failed"; return 1; }
    out=$(timeout 10 memcstat --servers="$ADDR") || { echo "memcstat failed"; return 1; }
    for k in pid uptime version curr_items total_items get_hits cmd_get cmd_set curr_connections limit_maxbytes; do
        grep -qE "^\s+$k: " <<<"$out" || { echo "memcstat lacks $k: $(head -c 200 <<<"$out")"; return 1; }
    done
    grep -qE "^Server: $HOST \($PORT\)" <<<"$out" || { echo "memcstat names no server $HOST ($PORT)"; return 1; }
    out=$(timeout 10 memcstat --servers="$ADDR" --args=settings) || { echo "memcstat --args=settings failed"; return 1; }
    grep -qE "^\s+tcpport: $PORT\$" <<<"$out" || { echo "memcstat --args=settings lacks tcpport: $PORT"; return 1; }
    # it prints the versions on stderr
    out=$(timeout 10 memcstat --servers="$ADDR" --server-version 2>&1) || { echo "memcstat --server-version failed"; return 1; }
    grep -qE "^$HOST:$PORT [0-9]+\.[0-9]+\.[0-9]+" <<<"$out" || { echo "memcstat --server-version: $out"; return 1; }
    out=$(timeout 10 memcstat --servers="$ADDR" --analyze) || { echo "memcstat --analyze failed"; return 1; }
    grep -q 'Number of Servers Analyzed *: 1' <<<"$out" || { echo "memcstat --analyze: $(head -c 200 <<<"$out")"; return 1; }
}

flush() {
    timeout 10 memccp --servers="$ADDR" "$WORK/lm_one" || { echo "memccp failed"; return 1; }
    timeout 10 memcexist --servers="$ADDR" lm_one || { echo "memcexist before memcflush failed"; return 1; }
    timeout 10 memcflush --servers="$ADDR" || { echo "memcflush failed"; return 1; }
    if timeout 10 memcexist --servers="$ADDR" lm_one; then
        echo "memcexist after memcflush succeeded"
        return 1
    fi
    if timeout 10 memccat --servers="$ADDR" --file="$WORK/out_flushed" lm_one; then
        echo "memccat after memcflush succeeded"
        return 1
    fi
}

make_files
check libmemcached.memccapable_ascii memccapable_ascii
check libmemcached.memccp_memccat memccp_memccat
check libmemcached.memcexist_memctouch_memcrm exist_touch_rm
check libmemcached.memcstat_memcping stat_ping_version
check libmemcached.memcflush flush
# Need the binary protocol:
check libmemcached.memccapable memccapable_all
check libmemcached.memccp_memccat_binary memccp_memccat_binary
