#!/usr/bin/env bash
# The one test command: README and CI both run exactly this.
#
#   scripts/test.sh [--quick]
#
# 1. installs what the tests need if it is missing (Debian: memcached, the
#    reference server of the differential tests, netcat-openbsd, valgrind);
# 2. builds everything: cargo build --release --workspace;
# 3. runs every test: cargo test --release --workspace, with
#    MEMCRAB_REQUIRE_REFERENCE=1 so that a missing memcached fails the
#    differential tests instead of skipping them. protocol-tests find the
#    server at target/release/memcrab;
# 4. runs the storage unit tests under Valgrind's memcheck (scripts/memcheck.sh);
# 5. the soak test, 60 s (scripts/soak.sh --duration 60): 500 connections
#    of verified mixed operations at -m 16, clients killed mid-request,
#    RSS bounded, SIGTERM under load;
# 6. real clients, multi-node, session sharing: installs their packages
#    (each script's --install: Debian packages; clients.sh also pip and npm
#    packages into target/client-deps/), then runs scripts/clients.sh (client
#    libraries), scripts/cluster-test.sh (nutcracker in front of 3 nodes) and
#    examples/session-sharing/run.sh test (nginx + 2 PHP-FPM), each against
#    memcrab and then against memcached, which checks the checks.
#
# --quick skips steps 5 and 6.
# Exit status: non-zero if any step fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
QUICK=0

for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument: $a (try --help)" >&2
        exit 2
        ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

# --- 1. prerequisites ---------------------------------------------------------
missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if ((${#missing[@]})); then
    step "installing ${missing[*]} (apt-get)"
    SUDO=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "test.sh: need root or sudo to install ${missing[*]}" >&2
            exit 1
        }
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y "${missing[@]}"
else
    step "prerequisites present: $(command -v memcached), $(command -v nc)"
fi
command -v cargo >/dev/null 2>&1 || {
    echo "test.sh: cargo not found (install Rust: https://rustup.rs)" >&2
    exit 1
}
# The reference server, wherever it is on PATH (protocol-tests default to /usr/bin).
export MEMCACHED_BIN="${MEMCACHED_BIN:-$(command -v memcached)}"
echo "reference: $MEMCACHED_BIN ($("$MEMCACHED_BIN" -V 2>/dev/null || echo 'version unknown'))"

# --- 2. build -------------------------------------------------------------------
step "cargo build --release --workspace"
cargo build --release --workspace

# --- 3. test --------------------------------------------------------------------
export MEMCRAB_REQUIRE_REFERENCE=1
step "MEMCRAB_REQUIRE_REFERENCE=1 cargo test --release --workspace"
cargo test --release --workspace

# The unsafe chunk code under Valgrind's memcheck (Miri needs nightly).
step "scripts/memcheck.sh"
scripts/memcheck.sh

if [[ $QUICK == 0 ]]; then
    MEMCRAB_BIN="$REPO/target/release/memcrab"
    step "scripts/soak.sh --duration 60"
    scripts/soak.sh --duration 60
    step "real clients, multi-node, session sharing: packages"
    scripts/clients.sh --install
    examples/session-sharing/run.sh --install
    for bin in "$MEMCRAB_BIN" "$MEMCACHED_BIN"; do
        step "scripts/clients.sh --start $bin"
        scripts/clients.sh --start "$bin"
        # (--install: nutcracker, if missing)
        step "scripts/cluster-test.sh --install --bin $bin"
        scripts/cluster-test.sh --install --bin "$bin"
        step "examples/session-sharing/run.sh --bin $bin test"
        examples/session-sharing/run.sh --bin "$bin" test
    done
fi

step "all tests passed"
