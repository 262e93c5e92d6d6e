#!/usr/bin/env bash
# Runs the storage engine's unit tests under Valgrind's memcheck: every load
# and store of the unsafe chunk code (src/storage/chunk.rs) is checked
# against allocated, initialised memory. Miri and -Zsanitizer need a nightly
# toolchain, which this project's machines do not have.
#
#   scripts/memcheck.sh
#
# Exit status: non-zero if memcheck reports an error or a test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "memcheck.sh: installing valgrind"
    DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind >/dev/null
fi

bin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')
echo "==> valgrind memcheck: $bin storage::"
# Fewer model cases: memcheck runs code ~30x slower. The 64 MiB fill test
# is skipped for time; it uses the same paths as the smaller fills.
PROPTEST_CASES=64 valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --fair-sched=yes \
    --quiet "$bin" storage:: --test-threads=2 --skip memory_target_64_mib
