#!/usr/bin/env bash
# Throughput / latency / CPU-per-request comparison: memcrab vs memcached.
#
#   scripts/bench.sh [--quick] [W1 W2 W3a W3b W4 W5 ...]
#
# For each workload: start memcached and memcrab with identical flags, both
# pinned to core $SERVER_CPU, preload the key space into each, then run the
# workload alternately on each (A B A B ..., $ROUNDS rounds) with the load
# generator pinned to core $LOADGEN_CPU; only one server is loaded at a time.
# Server CPU time per request comes from /proc/PID/stat (utime+stime delta
# over the run / requests the load generator completed, warm-up included).
# Prints a table of medians and ratios memcrab/memcached, then
# `geomean throughput ratio: X.XX`.
#
# Workloads:
#   W1   get-heavy 90:10, 100 B values, 100k keys, 50 connections
#   W2   set-only, 1 KiB values, 100k keys, 50 connections
#   W3a  multi-get of 10 keys, 100 B values, 50 connections
#   W3b  single gets, pipeline depth 16, 50 connections
#   W4   1000 connections, $W4_RATE req/s each, 90:10, 100 B values
#   W5   100 KiB values, get:set 1:1, 1000 keys, 20 connections
#   C1 C10 C100 C1000   scaling: W1's mix over 1, 10, 100, 1000 connections
#   C1000f  C1000 with a fair load generator (loadgen --fair): its p99 is the
#           servers' (C1000's is the load generator's starved connections)
#
# Environment (defaults):
#   MEMCRAB_BIN     <repo>/target/release/memcrab (if missing: memcached only)
#   MEMCACHED_BIN   /usr/bin/memcached
#   SERVER_FLAGS    "-t 1 -m 1024 -c 4096"  (identical for both servers)
#   BENCH_DURATION  5     measured seconds per run (--quick: 1)
#   BENCH_WARMUP    1     warm-up seconds per run  (--quick: 0.3)
#   ROUNDS          3     A/B rounds per workload
#   SERVER_CPU      1     core for the servers
#   LOADGEN_CPU     0     core for the load generator
#   LOADGEN_THREADS 1     tokio worker threads of the load generator
#   W4_RATE         10    requests/s per connection in W4
#   LOADGEN         path to a built loadgen (default: cargo build --release -p loadgen
#                   into ${CARGO_TARGET_DIR:-<repo>/target})
#   WORKLOADS       space-separated list (same as positional arguments)
#   BENCH_OUT       directory to keep raw JSON results (default: temp, removed)
#   FLOOR           1: also run the floor server (benches/loadgen/src/bin/floor.rs,
#                   stores nothing) on raw epoll, on a tokio runtime and on
#                   io_uring, and print what each costs against memcached: what
#                   no server can go below here, and what the runtime costs
#
# Exit status: 0 all runs valid, 1 some run INVALID or failed, 2 setup error.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
ARGS=()
for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) ARGS+=("$a") ;;
    esac
done

MEMCRAB_BIN="${MEMCRAB_BIN:-$REPO/target/release/memcrab}"
MEMCACHED_BIN="${MEMCACHED_BIN:-/usr/bin/memcached}"
SERVER_FLAGS="${SERVER_FLAGS:--t 1 -m 1024 -c 4096}"
if [[ $QUICK == 1 ]]; then
    BENCH_DURATION="${BENCH_DURATION:-1}"
    BENCH_WARMUP="${BENCH_WARMUP:-0.3}"
else
    BENCH_DURATION="${BENCH_DURATION:-5}"
    BENCH_WARMUP="${BENCH_WARMUP:-1}"
fi
ROUNDS="${ROUNDS:-3}"
FLOOR="${FLOOR:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
LOADGEN_CPU="${LOADGEN_CPU:-0}"
LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
W4_RATE="${W4_RATE:-10}"
if ((${#ARGS[@]})); then
    WORKLOADS="${ARGS[*]}"
else
    WORKLOADS="${WORKLOADS:-W1 W2 W3a W3b W4 W5 C1 C10 C100 C1000 C1000f}"
fi

workload_args() {
    case "$1" in
    W1) echo "-c 50 -k 100000 -v 100 -r 9:1" ;;
    W2) echo "-c 50 -k 100000 -v 1024 -r 0:1" ;;
    W3a) echo "-c 50 -k 100000 -v 100 -r 1:0 -m 10" ;;
    W3b) echo "-c 50 -k 100000 -v 100 -r 1:0 -p 16" ;;
    W4) echo "-c 1000 -k 100000 -v 100 -r 9:1 --rate $W4_RATE" ;;
    W5) echo "-c 20 -k 1000 -v 102400 -r 1:1" ;;
    C1 | C10 | C100 | C1000) echo "-c ${1#C} -k 100000 -v 100 -r 9:1" ;;
    C1000f) echo "-c 1000 -k 100000 -v 100 -r 9:1 --fair" ;;
    *) return 1 ;;
    esac
}
workload_desc() {
    case "$1" in
    W1) echo "get 90:10, 100 B, 100k keys, 50 conns" ;;
    W2) echo "set-only, 1 KiB values, 50 conns" ;;
    W3a) echo "multi-get x10, 100 B, 50 conns" ;;
    W3b) echo "get pipeline depth 16, 50 conns" ;;
    W4) echo "1000 conns x ${W4_RATE} req/s, 90:10" ;;
    W5) echo "100 KiB values, get:set 1:1, 20 conns" ;;
    C1000f) echo "1000 conns, get 90:10, fair load generator" ;;
    C*) echo "scaling: get 90:10, 100 B, ${1#C} conns" ;;
    esac
}
for w in $WORKLOADS; do
    workload_args "$w" >/dev/null || {
        echo "bench.sh: unknown workload $w" >&2
        exit 2
    }
done

# ---------------------------------------------------------------------------
# setup

[[ -x $MEMCACHED_BIN ]] || {
    echo "bench.sh: memcached not found at $MEMCACHED_BIN" >&2
    exit 2
}
NAMES=(memcached)
BINS=("$MEMCACHED_BIN")
EXTRA=("") # per server: arguments before the memcached flags
if [[ -x $MEMCRAB_BIN ]]; then
    NAMES+=(memcrab)
    BINS+=("$MEMCRAB_BIN")
    EXTRA+=("")
else
    echo "bench.sh: NOTE: memcrab not found at $MEMCRAB_BIN: running memcached only" >&2
fi

if [[ -z ${LOADGEN:-} ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
    echo "bench.sh: building loadgen (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
    (cd "$REPO" && cargo build --release -q -p loadgen) || exit 2
    LOADGEN="$CARGO_TARGET_DIR/release/loadgen"
fi
[[ -x $LOADGEN ]] || {
    echo "bench.sh: loadgen not found at $LOADGEN" >&2
    exit 2
}
if [[ $FLOOR == 1 ]]; then
    FLOOR_BIN="$(dirname "$LOADGEN")/floor"
    [[ -x $FLOOR_BIN ]] || {
        echo "bench.sh: floor not found at $FLOOR_BIN" >&2
        exit 2
    }
    NAMES+=(floor floor-tokio floor-uring)
    BINS+=("$FLOOR_BIN" "$FLOOR_BIN" "$FLOOR_BIN")
    EXTRA+=("" "--tokio" "--uring")
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HZ="$(getconf CLK_TCK)"
NCPU="$(nproc)"
if ((SERVER_CPU >= NCPU || LOADGEN_CPU >= NCPU)); then
    echo "bench.sh: SERVER_CPU/LOADGEN_CPU must be < $NCPU" >&2
    exit 2
fi

TMP="$(mktemp -d /tmp/bench.XXXXXX)"
OUT="${BENCH_OUT:-$TMP}"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
    if [[ -z ${BENCH_OUT:-} ]]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

USER_FLAG=()
[[ $(id -u) == 0 ]] && USER_FLAG=(-u root)

# start_server NAME BIN [EXTRA] -> sets SPID and SPORT (runs in this shell so
# the pid is tracked for cleanup)
start_server() {
    local name=$1 bin=$2 extra=${3:-} port pid i
    port="$(free_port)"
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CPU" "$bin" $extra "${USER_FLAG[@]}" -l 127.0.0.1 -U 0 -p "$port" \
        $SERVER_FLAGS >"$TMP/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench.sh: $name exited at startup:" >&2
            cat "$TMP/$name.log" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            SPID=$pid
            SPORT=$port
            return 0
        fi
        sleep 0.1
    done
    echo "bench.sh: $name did not listen on port $port" >&2
    return 1
}

stop_servers() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}

cpu_ticks() { # utime+stime of PID (fields 14, 15; comm may contain spaces)
    local s
    s="$(cat "/proc/$1/stat")"
    s="${s##*) }"
    # after "comm) ": field 3 is state, so utime is the 12th, stime the 13th
    awk '{print $12 + $13}' <<<"$s"
}

jget() { # jget FILE KEY
    python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); v=d.get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null || true
}

echo "bench.sh: servers [${NAMES[*]}] flags '$SERVER_FLAGS' on core $SERVER_CPU; loadgen on core $LOADGEN_CPU" \
    "(threads $LOADGEN_THREADS); ${BENCH_DURATION}s + ${BENCH_WARMUP}s warm-up x $ROUNDS rounds" >&2
if [[ ${#NAMES[@]} == 2 && $(realpath "$MEMCRAB_BIN") == $(realpath "$MEMCACHED_BIN") ]]; then
    echo "bench.sh: NOTE: MEMCRAB_BIN is memcached itself (memcached vs memcached)" >&2
fi

FAILED=0
for w in $WORKLOADS; do
    read -r -a WARGS <<<"$(workload_args "$w")"
    echo "== $w: $(workload_desc "$w")  [loadgen ${WARGS[*]}]" >&2
    declare -A PID=() PORT=()
    ok=1
    for i in "${!NAMES[@]}"; do
        n=${NAMES[$i]}
        if ! start_server "$n" "${BINS[$i]}" "${EXTRA[$i]}"; then
            ok=0
            break
        fi
        PID[$n]=$SPID
        PORT[$n]=$SPORT
        # preload (not measured)
        if ! taskset -c "$LOADGEN_CPU" "$LOADGEN" -s "127.0.0.1:${PORT[$n]}" -t "$LOADGEN_THREADS" \
            "${WARGS[@]}" --preload-only -q >"$TMP/preload.json"; then
            echo "   $n: preload FAILED: $(tail -1 "$TMP/preload.json")" >&2
            ok=0
        fi
    done
    if [[ $ok == 0 ]]; then
        FAILED=1
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "-" 0 "setup-failed" 0 0 0 0 >>"$RESULTS"
        stop_servers
        continue
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for n in "${NAMES[@]}"; do
            pid=${PID[$n]}
            f="$OUT/$w.$n.$round.json"
            c0="$(cpu_ticks "$pid")"
            set +e
            taskset -c "$LOADGEN_CPU" "$LOADGEN" -s "127.0.0.1:${PORT[$n]}" -t "$LOADGEN_THREADS" \
                "${WARGS[@]}" -d "$BENCH_DURATION" -w "$BENCH_WARMUP" --seed "$round" -q >"$f"
            rc=$?
            set -e
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "   $n: server died during $w round $round" >&2
                rc=3
            fi
            c1="$(cpu_ticks "$pid" 2>/dev/null || echo "$c0")"
            ops="$(jget "$f" ops_per_sec)"
            p99="$(jget "$f" p99_us)"
            p50="$(jget "$f" p50_us)"
            reqs="$(jget "$f" requests_total)"
            valid="$(jget "$f" valid)"
            if [[ $rc != 0 || $valid != True ]]; then
                valid=INVALID
                FAILED=1
                echo "   $n round $round: INVALID (rc $rc): $(tail -c 400 "$f")" >&2
            else
                valid=ok
            fi
            cpu_us="$(python3 -c "import sys; d,r,hz=map(float,sys.argv[1:]); print(f'{d/hz*1e6/r:.3f}' if r>0 else 0)" \
                "$((c1 - c0))" "${reqs:-0}" "$HZ")"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$n" "$round" "$valid" \
                "${ops:-0}" "${p50:-0}" "${p99:-0}" "$cpu_us" >>"$RESULTS"
            printf '   %-9s round %d: %10.0f ops/s  p50 %8.1f us  p99 %8.1f us  cpu %7.2f us/req  %s\n' \
                "$n" "$round" "${ops:-0}" "${p50:-0}" "${p99:-0}" "$cpu_us" "$valid" >&2
            # Let the server settle (e.g. after 1000 connections closed).
            sleep 0.2
        done
    done
    stop_servers
    unset PID PORT
done

python3 - "$RESULTS" "$WORKLOADS" "$SERVER_FLAGS" "$ROUNDS" "$BENCH_DURATION" <<'EOF'
import json, math, statistics, sys
path, workloads, flags, rounds, dur = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
data = {}
for w, n, rnd, valid, ops, p50, p99, cpu in rows:
    d = data.setdefault(w, {}).setdefault(n, {"ops": [], "p50": [], "p99": [], "cpu": [], "bad": 0})
    if valid != "ok":
        d["bad"] += 1
        continue
    d["ops"].append(float(ops)); d["p50"].append(float(p50))
    d["p99"].append(float(p99)); d["cpu"].append(float(cpu))

def med(xs):
    return statistics.median(xs) if xs else None

def ratio(a, b):
    return a / b if a is not None and b else None

def f(v, spec):
    return "-" if v is None else format(v, spec)

hdr = (f"{'workload':<9}{'memcached ops/s':>16}{'memcrab ops/s':>15}{'ratio':>7}"
       f"{'p99 us mcd':>12}{'p99 us crab':>12}{'ratio':>7}"
       f"{'cpu us/req mcd':>16}{'cpu us/req crab':>17}{'ratio':>7}  status")
print()
print(f"memcrab vs memcached: flags '{flags}', {rounds} rounds x {dur} s, medians")
print(hdr)
print("-" * len(hdr))
ratios, summary = [], {}
for w in workloads.split():
    ws = data.get(w, {})
    a, b = ws.get("memcached", {}), ws.get("memcrab", {})
    ma = {k: med(a.get(k, [])) for k in ("ops", "p50", "p99", "cpu")}
    mb = {k: med(b.get(k, [])) for k in ("ops", "p50", "p99", "cpu")}
    r_ops = ratio(mb["ops"], ma["ops"])
    r_p99 = ratio(mb["p99"], ma["p99"])
    r_cpu = ratio(mb["cpu"], ma["cpu"])
    bad = a.get("bad", 0) + b.get("bad", 0)
    status = "ok" if not bad else f"INVALID x{bad}"
    if "-" in ws:
        status = "SETUP FAILED (see log above)"
    if r_ops is not None and status == "ok":
        ratios.append(r_ops)
    print(f"{w:<9}{f(ma['ops'], ',.0f'):>16}{f(mb['ops'], ',.0f'):>15}{f(r_ops, '.2f'):>7}"
          f"{f(ma['p99'], '.1f'):>12}{f(mb['p99'], '.1f'):>12}{f(r_p99, '.2f'):>7}"
          f"{f(ma['cpu'], '.2f'):>16}{f(mb['cpu'], '.2f'):>17}{f(r_cpu, '.2f'):>7}  {status}")
    summary[w] = {"memcached": ma, "memcrab": mb, "ops_ratio": r_ops, "p99_ratio": r_p99,
                  "cpu_ratio": r_cpu, "status": status}
gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
print()
print("BENCH_RESULT " + json.dumps({"flags": flags, "rounds": int(rounds), "duration_s": float(dur),
                                    "workloads": summary, "geomean_ops_ratio": gm}, sort_keys=True))
print(f"geomean throughput ratio: {f(gm, '.2f')}")
floors = [n for n in ("floor", "floor-tokio", "floor-uring") if any(n in ws for ws in data.values())]
if floors:
    # What a server that stores nothing costs, against memcached: the room
    # any server has on this machine.
    print()
    print("floor (stores nothing; gets answer END), medians, ratios to memcached")
    hdr = f"{'workload':<9}" + "".join(f"{n + ' ops/s':>19}{'ratio':>7}{'cpu us/req':>12}{'ratio':>7}" for n in floors)
    print(hdr)
    print("-" * len(hdr))
    for w in workloads.split():
        ws = data.get(w, {})
        ma = {k: med(ws.get("memcached", {}).get(k, [])) for k in ("ops", "cpu")}
        row = f"{w:<9}"
        for n in floors:
            d = ws.get(n, {})
            m = {k: med(d.get(k, [])) for k in ("ops", "cpu")}
            row += (f"{f(m['ops'], ',.0f'):>19}{f(ratio(m['ops'], ma['ops']), '.2f'):>7}"
                    f"{f(m['cpu'], '.2f'):>12}{f(ratio(m['cpu'], ma['cpu']), '.2f'):>7}")
        print(row)
EOF

exit "$FAILED"
