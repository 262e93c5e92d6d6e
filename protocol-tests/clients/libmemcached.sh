#!/usr/bin/env bash
# Real-client checks with libmemcached's command-line tools (Debian
# libmemcached-tools, commands prefixed `memc`), unmodified:
# memccapable -a (ascii conformance), memccp/memccat, memcexist, memctouch,
# memcrm, memcstat, memcping, memcflush; memccapable without -a,
# memccp/memccat --binary and the load generators memcaslap --binary and
# memcslap --binary need the binary protocol (scripts/clients.sh lists them
# in BINARY_CHECKS).
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

# snapshot VAR: VAR=(cmd_get cmd_set get_hits get_misses) of the server,
# read with memcstat (text protocol).
snapshot() {
    local -n snap=$1
    local out k v
    out=$(timeout 10 memcstat --servers="$ADDR") || { echo "memcstat failed"; return 1; }
    snap=()
    for k in cmd_get cmd_set get_hits get_misses; do
        v=$(awk -F': ' -v k="$k" '$1 == "\t" k { print $2 }' <<<"$out")
        [[ $v =~ ^[0-9]+$ ]] || { echo "memcstat shows no $k"; return 1; }
        snap+=("$v")
    done
}

# memcaslap (libmemcached's load generator, Debian libmemcached-tools) in
# binary mode: a short bounded run of gets and sets (its default 9:1 mix,
# 10% of the gets verified against what was set), then one with 10-key
# multi-gets. Its own counters must show every operation done, no misses
# and no failed verifications, and the server's counters must have counted
# the same gets (all hits) and sets.
memcaslap_binary() {
    local what out rc n_get n_set ops before after args d_get d_set d_hits d_misses k
    for what in gets multi-gets; do
        args=(-x 20000)
        [[ $what == gets ]] || args=(-x 10000 -d 10)
        snapshot before || return 1
        rc=0
        out=$(timeout 60 memcaslap -s "$ADDR" --binary -T 1 -c 16 -v 0.1 "${args[@]}" 2>&1) || rc=$?
        [[ $rc -eq 0 ]] || { echo "$what: memcaslap exit $rc: $(tail -n 3 <<<"$out")"; return 1; }
        snapshot after || return 1
        for k in get_misses verify_misses verify_failed; do
            grep -qE "^$k: 0\$" <<<"$out" || { echo "$what: $(grep -E "^$k:" <<<"$out" || echo "no $k line")"; return 1; }
        done
        n_get=$(sed -n 's/^cmd_get: //p' <<<"$out")
        n_set=$(sed -n 's/^cmd_set: //p' <<<"$out")
        ops=$(sed -n 's/^Run time: .* Ops: \([0-9]*\) .*/\1/p' <<<"$out")
        if ! [[ $n_get =~ ^[0-9]+$ && $n_set =~ ^[0-9]+$ && $n_get -gt 0 && $n_set -gt 0 &&
            $((n_get + n_set)) -eq ${args[1]} && $ops -eq ${args[1]} ]]; then
            echo "$what: memcaslap reports cmd_get '$n_get', cmd_set '$n_set', Ops '$ops' for ${args[1]} operations"
            return 1
        fi
        d_get=$((after[0] - before[0])) d_set=$((after[1] - before[1]))
        d_hits=$((after[2] - before[2])) d_misses=$((after[3] - before[3]))
        if [[ $d_get -ne $n_get || $d_set -ne $n_set || $d_hits -ne $n_get || $d_misses -ne 0 ]]; then
            echo "$what: memcaslap did $n_get gets and $n_set sets; the server counted cmd_get +$d_get," \
                "cmd_set +$d_set, get_hits +$d_hits, get_misses +$d_misses"
            return 1
        fi
    done
}

# memcslap (libmemcached's other load generator) --binary: sets, gets after
# its initial load, and multi-gets; the server counts every one, all hits.
memcslap_binary() {
    local t out rc before after deltas want
    for t in set get mget; do
        snapshot before || return 1
        rc=0
        out=$(timeout 60 memcslap --binary --servers="$ADDR" --test="$t" --concurrency=2 --execute-number=2000 2>&1) || rc=$?
        [[ $rc -eq 0 ]] || { echo "memcslap --test=$t: exit $rc: $(tail -n 3 <<<"$out")"; return 1; }
        snapshot after || return 1
        deltas="$((after[0] - before[0])) $((after[1] - before[1])) $((after[2] - before[2])) $((after[3] - before[3]))"
        case $t in
        set) want="0 4000 0 0" ;;        # 2 threads x 2000 sets
        *) want="4000 2000 4000 0" ;;    # its initial load of 2000 keys, then 2 x 2000 gets
        esac
        [[ $deltas == "$want" ]] ||
            { echo "memcslap --test=$t: changes of cmd_get cmd_set get_hits get_misses: $deltas, want $want"; return 1; }
    done
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
check libmemcached.memcaslap_binary memcaslap_binary
check libmemcached.memcslap_binary memcslap_binary
