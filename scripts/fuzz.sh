#!/usr/bin/env bash
# Fuzzes memcrab's protocol code with cargo-fuzz (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh [--seconds N] [--jobs N] [--no-asan] [target...]
#
# Targets (fuzz/fuzz_targets/):
#   text_protocol  the request parser/dispatcher (protocol::text::process) on
#                  arbitrary bytes, all at once
#   connection     a whole connection over several reads, split at
#                  fuzzer-chosen points: protocol negotiated on the first
#                  byte (text or binary), large text blocks read into items
# Both check, beyond "no panic": well-formed replies (lines ending in \r\n,
# VALUE/VA blocks of exactly the declared length; binary responses of their
# declared length), that a get returns only bytes the input stored for that
# key (with its flags), and that nothing larger than -I is stored (see
# fuzz/src/lib.rs).
#
# Built optimized with debug assertions (-O -a: an integer overflow is a
# crash) and AddressSanitizer (--no-asan: without, ~4x faster); the first
# build takes ~6 min. Each target runs for --seconds (default 60) from its
# corpus (fuzz/corpus/<target>/: the seeds made by fuzz/seeds/make_seeds.py,
# plus what earlier runs found) with the dictionary fuzz/memcached.dict.
# --jobs N runs N fuzzing processes per target. The script prints, per
# target: executions, coverage (libFuzzer's "cov" edges and "ft"
# features), corpus size and crashes; crashing inputs are saved in
# fuzz/artifacts/<target>/.
# The targets' own stderr (-vv logging that inputs turn on) is closed while
# fuzzing (-close_fd_mask=2); reproduce a crash to see its panic message:
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz uses nightly
# flags; on a stable toolchain the script sets RUSTC_BOOTSTRAP=1.
#
# Exit status: 0 no crash, 1 a target crashed (or failed to run), 2 setup.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET=60
JOBS=1
SANITIZER=address
TARGETS=()
while (($#)); do
    case "$1" in
    --seconds) SECONDS_PER_TARGET="$2"; shift 2 ;;
    --seconds=*) SECONDS_PER_TARGET="${1#*=}"; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --no-asan) SANITIZER=none; shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
((${#TARGETS[@]})) || TARGETS=(text_protocol connection)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz not found; install it with: cargo install cargo-fuzz" >&2
    exit 2
fi
# cargo-fuzz passes -Z flags to rustc: allowed on stable with RUSTC_BOOTSTRAP.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

cd "$REPO/fuzz"
[[ -d corpus/text_protocol ]] || python3 seeds/make_seeds.py
echo "==> building fuzz targets (sanitizer: $SANITIZER)"
# -a: debug assertions on (integer overflow panics) in an optimized build
if ! cargo fuzz build -O -a --sanitizer "$SANITIZER" >"/tmp/memcrab-fuzz-build.log" 2>&1; then
    tail -n 30 /tmp/memcrab-fuzz-build.log >&2
    echo "fuzz.sh: build failed" >&2
    exit 2
fi

LOGDIR="$(mktemp -d /tmp/memcrab-fuzz.XXXXXX)"
trap 'rm -rf "$LOGDIR"' EXIT
FAILED=0
SUMMARY=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    touch "$LOGDIR/$t.log.start"
    echo "==> fuzzing $t for ${SECONDS_PER_TARGET} s"
    parallel=()
    if ((JOBS > 1)); then
        parallel=(-jobs="$JOBS" -workers="$JOBS")
    fi
    set +e
    cargo fuzz run -O -a --sanitizer "$SANITIZER" "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 \
        -dict=memcached.dict -print_final_stats=1 "${parallel[@]}" \
        >"$LOGDIR/$t.log" 2>&1
    rc=$?
    set -e
    # with -jobs > 1 libFuzzer writes one log per job
    cat "$LOGDIR/$t.log" fuzz-*.log 2>/dev/null >"$LOGDIR/$t.all" || true
    rm -f fuzz-*.log
    execs=$( (grep -ah '^stat::number_of_executed_units' "$LOGDIR/$t.all" || true) | awk '{s += $2} END {print s + 0}')
    speed=$( (grep -ah '^stat::average_exec_per_sec' "$LOGDIR/$t.all" || true) | awk '{s += $2} END {print s + 0}')
    last=$( (grep -ahE '#[0-9]+.*(cov|ft):' "$LOGDIR/$t.all" || true) | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
    after=$(find "artifacts/$t" -type f | wc -l)
    crashes=$((after - before))
    if ((rc != 0)) || ((crashes > 0)); then
        FAILED=1
        echo "!!! $t: libFuzzer exit $rc, $crashes new crashing input(s):"
        (grep -ahE 'ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY|Test unit written' "$LOGDIR/$t.all" || true) | head -n 20
        # replay each new crash with stderr open, for its panic message
        bin=$( (find target -path "*/release/$t" -type f -perm -u+x 2>/dev/null || true) | head -n 1)
        for f in $(find "artifacts/$t" -type f -newer "$LOGDIR/$t.log.start" 2>/dev/null); do
            echo "--- $f"
            if [[ -n $bin ]]; then
                ("$bin" "$f" 2>&1 || true) | (grep -aE -A3 'panicked at|ERROR: AddressSanitizer' || true) | head -n 12
            fi
        done
    fi
    SUMMARY+=("$(printf '%-14s execs %10s (%s/s)  cov %6s  ft %6s  corpus %-12s crashes %s' \
        "$t" "$execs" "$speed" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
done
echo
echo "==================== fuzz summary (${SECONDS_PER_TARGET} s per target, sanitizer $SANITIZER) ===================="
printf '%s\n' "${SUMMARY[@]}"
if ((FAILED)); then
    echo "RESULT: FAILED (a crash, or the fuzzer did not run; crashing inputs in fuzz/artifacts/)"
    exit 1
fi
echo "RESULT: no crash"
