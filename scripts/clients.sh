#!/usr/bin/env bash
# Real-client test suite: unmodified memcached client libraries, as Debian,
# PyPI and npm package them, do real round trips against a server and assert
# the results (binary-safe values, multi-get, cas conflicts, incr/decr,
# delete, touch/expiry, flush, stats, sessions, leases):
#   libmemcached tools (memccapable, memccp/memccat, memcstat, memcflush...,
#   the load generators memcaslap and memcslap in binary mode), Python
#   pymemcache (Client, HashClient over 3 nodes), python-memcached and
#   pylibmc (binary mode), Java spymemcached (text and binary factories),
#   PHP memcached and memcache extensions and their session handlers, Perl
#   Cache::Memcached, nginx's memcached_pass, node's memjs (binary protocol
#   only) and meta-memcache (PyPI; meta commands only). The checks live in
#   protocol-tests/clients/.
#
#   scripts/clients.sh --install
#       installs every package the suite needs: Debian packages with apt-get,
#       meta-memcache with pip (--target) and memjs with npm (--prefix) into
#       target/client-deps/ (or $MEMCRAB_CLIENT_DEPS), never system-wide;
#       quick when all is present
#   scripts/clients.sh --start BIN
#       starts 3 instances of BIN (memcrab or /usr/bin/memcached) with
#       `-u root -l 127.0.0.1 -U 0 -p PORT` on free ports in 40000-40999,
#       runs the suite against them, stops them
#   scripts/clients.sh [--text-only-server] HOST:PORT HOST:PORT HOST:PORT
#       runs the suite against running servers: the first is the main
#       target, all three are HashClient's nodes
#
# Checks that need the binary protocol (BINARY_CHECKS below) run like the
# others; memcrab and memcached both speak it. Against a server that does
# not (--text-only-server) their failures print as
# `XFAIL name: needs the binary protocol` and count as passed, and a pass
# prints as `XPASS name` and counts as failed.
#
# Output: one line per check, `PASS name`, `FAIL name: reason`, `XFAIL ...`
# or `XPASS name`, then exactly `N passed, M failed`. Each client's stderr
# is kept in a log dir, named on failure. Every client run is bounded by
# `timeout`. The checks flush the servers.
# Exit status: non-zero if any check failed or passed unexpectedly.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$REPO/protocol-tests/clients"

APT_PACKAGES=(
    libmemcached-tools      # memccapable, memccp, memccat, memcstat, memcflush...
    python3-pymemcache      # pymemcache (Client, HashClient)
    python3-memcache        # python-memcached
    libspymemcached-java    # /usr/share/java/spymemcached.jar
    openjdk-17-jdk-headless # javac, java
    php-cli
    php-memcached
    php-memcache
    libcache-memcached-perl # Cache::Memcached
    nginx                   # built with ngx_http_memcached_module
    curl
    python3-pylibmc         # pylibmc, over libmemcached
)
# From PyPI and npm, pinned, installed into DEPS (not system-wide, not in git):
PIP_PACKAGE=meta-memcache
PIP_VERSION=4.3.0
NPM_PACKAGE=memjs
NPM_VERSION=1.3.2
DEPS=${MEMCRAB_CLIENT_DEPS:-$REPO/target/client-deps}
SPY_JAR=/usr/share/java/spymemcached.jar
PY=/usr/bin/python3 # Debian's python, which sees the python3-* packages

# Checks that need the binary protocol.
BINARY_CHECKS=(
    libmemcached.memccapable
    libmemcached.memccp_memccat_binary
    libmemcached.memcaslap_binary
    libmemcached.memcslap_binary
    pylibmc.binary_set_get
    pylibmc.binary_multi_get
    pylibmc.binary_cas
    pylibmc.binary_incr_decr
    pylibmc.binary_add_replace_append_prepend
    pylibmc.binary_delete
    pylibmc.binary_touch_expiry
    pylibmc.binary_stats_flush
    pylibmc.binary_on_the_wire
    memjs.set_get
    memjs.add_replace_append
    memjs.delete
    memjs.increment_decrement
    memjs.touch_expiry
    memjs.flush
    memjs.stats
    spymemcached.binary_factory
    php-memcached.binary_protocol
    php-memcached.binary_session
    php-memcache.binary_protocol
)

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# ------------------------------------------------------------------ install

install_packages() {
    local missing=() p sudo=()
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "clients.sh: all packages present"
        return 0
    fi
    echo "clients.sh: installing ${missing[*]}"
    # Keep the nginx package from starting its system service (on port 80).
    local policy=/usr/sbin/policy-rc.d made_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        made_policy=1
    fi
    local rc=0
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if [[ $rc -eq 0 ]]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null || rc=$?
    fi
    [[ -z $made_policy ]] || "${sudo[@]}" rm -f "$policy"
    return "$rc"
}

# pip_python: the python3 whose pip installs meta-memcache (its wheels are
# built for that interpreter, which then runs the check): the first python3
# on PATH (on the project's machines pyenv's CPython 3.11, which has pip),
# else Debian's with python3-pip.
pip_python() {
    local py
    for py in "$(command -v python3 || true)" /usr/bin/python3; do
        [[ -n $py ]] || continue
        py=$("$py" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
        if "$py" -m pip --version >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# deps_ok: the PyPI and npm packages are in DEPS, at their pinned versions,
# and load.
py_deps_ok() {
    [[ -f $DEPS/py/.python && -d $DEPS/py/${PIP_PACKAGE//-/_}-$PIP_VERSION.dist-info ]] &&
        "$(cat "$DEPS/py/.python")" -c "import sys; sys.path.insert(0, sys.argv[1]); import meta_memcache" \
            "$DEPS/py" >/dev/null 2>&1
}
node_deps_ok() {
    command -v node >/dev/null &&
        [[ $(node -p "require(process.argv[1]).version" "$DEPS/node/node_modules/$NPM_PACKAGE/package.json" 2>/dev/null) == "$NPM_VERSION" ]]
}

# install_registry_packages: meta-memcache (pip --target) and memjs (npm
# --prefix) into DEPS, each only if missing; needs python3 with pip, and
# node with npm (apt-get installs python3-pip, nodejs, npm if they are not
# there).
install_registry_packages() {
    local py sudo=() apt=()
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    if py_deps_ok && node_deps_ok; then
        echo "clients.sh: $PIP_PACKAGE $PIP_VERSION and $NPM_PACKAGE $NPM_VERSION present in $DEPS"
        return 0
    fi
    pip_python >/dev/null || apt+=(python3-pip)
    command -v node >/dev/null && command -v npm >/dev/null || apt+=(nodejs npm)
    if [[ ${#apt[@]} -gt 0 ]]; then
        echo "clients.sh: installing ${apt[*]}"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${apt[@]}" >/dev/null
    fi
    mkdir -p "$DEPS"
    if ! py_deps_ok; then
        py=$(pip_python) || { echo "clients.sh: no python3 with pip" >&2; return 1; }
        echo "clients.sh: pip install --target $DEPS/py $PIP_PACKAGE==$PIP_VERSION ($py)"
        rm -rf "$DEPS/py"
        # (--break-system-packages: only Debian's pip wants it, for a --target
        # install that touches no system package)
        local extra=()
        [[ $py != /usr/bin/* ]] || extra=(--break-system-packages)
        timeout 600 "$py" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
            --no-warn-script-location "${extra[@]}" --target "$DEPS/py" "$PIP_PACKAGE==$PIP_VERSION"
        echo "$py" >"$DEPS/py/.python"
        py_deps_ok || { echo "clients.sh: $PIP_PACKAGE does not load with $py" >&2; return 1; }
    fi
    if ! node_deps_ok; then
        echo "clients.sh: npm install --prefix $DEPS/node $NPM_PACKAGE@$NPM_VERSION"
        mkdir -p "$DEPS/node"
        timeout 600 npm install --prefix "$DEPS/node" --no-save --no-audit --no-fund --silent \
            "$NPM_PACKAGE@$NPM_VERSION"
        node_deps_ok || { echo "clients.sh: $NPM_PACKAGE did not install" >&2; return 1; }
    fi
}

# ------------------------------------------------------------------ servers

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SERVER_PIDS=()
stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
}

# start_server BIN: starts BIN on a free port in 40000-40999, sets PORT.
start_server() {
    local bin=$1 p pid
    for _ in $(seq 10); do
        p=$((40000 + RANDOM % 1000))
        port_in_use "$p" && continue
        "$bin" -u root -l 127.0.0.1 -U 0 -p "$p" &
        pid=$!
        for _ in $(seq 50); do
            port_in_use "$p" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && port_in_use "$p"; then
            SERVER_PIDS+=("$pid")
            PORT=$p
            return 0
        fi
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    echo "clients.sh: could not start $bin on a free port" >&2
    return 1
}

# -------------------------------------------------------------------- suite

PASSED=0
FAILED=0
XFAILS=0
XPASSES=0
SEEN=" "
LOGS=

is_binary_check() {
    local c
    for c in "${BINARY_CHECKS[@]}"; do [[ $c == "$1" ]] && return 0; done
    return 1
}

# result KIND NAME [REASON]: prints and counts one result line.
result() {
    local kind=$1 name=$2 reason=${3-}
    SEEN+="$name "
    if is_binary_check "$name" && [[ $SERVER_BINARY -eq 0 ]]; then
        case $kind in
        PASS) kind=XPASS reason= ;;
        FAIL)
            kind=XFAIL
            [[ -z $reason ]] || echo "$name: $reason" >>"$LOGS/xfail-reasons.log"
            reason="needs the binary protocol"
            ;;
        esac
    fi
    case $kind in
    PASS) PASSED=$((PASSED + 1)) ;;
    XFAIL) PASSED=$((PASSED + 1)) XFAILS=$((XFAILS + 1)) ;;
    XPASS) FAILED=$((FAILED + 1)) XPASSES=$((XPASSES + 1)) ;;
    *) FAILED=$((FAILED + 1)) ;;
    esac
    if [[ -n $reason ]]; then
        echo "$kind $name: $reason"
    else
        echo "$kind $name"
    fi
}

# run_client LABEL SECONDS CMD...: runs one client program under timeout and
# turns its PASS/FAIL lines into results; a crash or timeout is a FAIL.
run_client() {
    local label=$1 secs=$2 rc=0 line name reason
    shift 2
    timeout -k 5 "$secs" "$@" >"$LOGS/$label.out" 2>"$LOGS/$label.err" </dev/null || rc=$?
    while IFS= read -r line; do
        case $line in
        PASS\ *) result PASS "${line#PASS }" ;;
        FAIL\ *)
            line=${line#FAIL }
            name=${line%%:*}
            reason=${line#"$name"}
            result FAIL "$name" "${reason#: }"
            ;;
        esac
    done <"$LOGS/$label.out"
    if [[ $rc -ne 0 ]]; then
        reason="exited with status $rc"
        [[ $rc -ne 124 && $rc -ne 137 ]] || reason="timed out after ${secs}s"
        result FAIL "$label" "$reason: $(tail -n 3 "$LOGS/$label.err" | tr -s '\n\t ' '   ' | cut -c1-200)"
    elif ! grep -qE '^(PASS|FAIL) ' "$LOGS/$label.out"; then
        result FAIL "$label" "printed no results"
    fi
}

run_suite() {
    local main=$1 n2=$2 n3=$3 start=$SECONDS
    local host=${main%:*} port=${main##*:}
    LOGS=$(mktemp -d /tmp/memcrab-clients.XXXXXX)
    echo "clients.sh: servers $main $n2 $n3; binary protocol expected to work: $([[ $SERVER_BINARY -eq 1 ]] && echo yes || echo no)"

    run_client libmemcached 240 bash "$CLIENTS/libmemcached.sh" "$main"
    run_client python 120 "$PY" "$CLIENTS/python_clients.py" "$main" "$n2" "$n3"
    if timeout 120 javac -nowarn -cp "$SPY_JAR" -d "$LOGS/java" "$CLIENTS/SpyCheck.java" \
        >"$LOGS/javac.log" 2>&1; then
        run_client spymemcached 120 java -cp "$LOGS/java:$SPY_JAR" SpyCheck "$main"
    else
        result FAIL spymemcached.compile "javac failed: $(head -n 3 "$LOGS/javac.log" | tr -s '\n' ' ' | cut -c1-200)"
    fi
    run_client php 180 php "$CLIENTS/php_clients.php" "$host" "$port"
    run_client perl 60 perl "$CLIENTS/perl_clients.pl" "$main"
    run_client nginx 60 bash "$CLIENTS/nginx.sh" "$main"
    run_client pylibmc 60 "$PY" "$CLIENTS/pylibmc_binary.py" "$main"
    if node_deps_ok; then
        run_client memjs 60 env NODE_PATH="$DEPS/node/node_modules" node "$CLIENTS/memjs_check.js" "$main"
    else
        result FAIL memjs "$NPM_PACKAGE $NPM_VERSION is not in $DEPS/node (run scripts/clients.sh --install)"
    fi
    if py_deps_ok; then
        run_client meta-memcache 60 "$(cat "$DEPS/py/.python")" "$CLIENTS/meta_memcache_check.py" \
            "$DEPS/py" "$main" "$n2" "$n3"
    else
        result FAIL meta-memcache "$PIP_PACKAGE $PIP_VERSION is not in $DEPS/py (run scripts/clients.sh --install)"
    fi

    # A binary-protocol check is never silently skipped.
    local c
    for c in "${BINARY_CHECKS[@]}"; do
        [[ $SEEN == *" $c "* ]] || result FAIL "$c" "this check did not run"
    done

    echo "clients.sh: ${XFAILS} expected failures (XFAIL, counted as passed), ${XPASSES} unexpected passes (XPASS); $((SECONDS - start))s"
    if [[ $FAILED -gt 0 ]]; then
        echo "clients.sh: client logs kept in $LOGS"
    else
        rm -rf "$LOGS"
    fi
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

# --------------------------------------------------------------------- main

SERVER_BINARY=1
case "${1-}" in
-h | --help | "")
    usage
    [[ -n ${1-} ]]
    exit
    ;;
--install)
    [[ $# -eq 1 ]] || { usage >&2; exit 2; }
    install_packages
    install_registry_packages
    ;;
--start)
    [[ $# -eq 2 ]] || { usage >&2; exit 2; }
    BIN=$2
    [[ $BIN == */* ]] || BIN=$(command -v "$BIN" || echo "$BIN")
    [[ -x $BIN ]] || { echo "clients.sh: $BIN is not an executable" >&2; exit 2; }
    trap stop_servers EXIT
    ADDRS=()
    for _ in 1 2 3; do
        start_server "$BIN"
        ADDRS+=("127.0.0.1:$PORT")
    done
    echo "clients.sh: started $BIN on ${ADDRS[*]}"
    rc=0
    run_suite "${ADDRS[@]}" || rc=$?
    exit "$rc"
    ;;
*)
    if [[ $1 == --text-only-server ]]; then
        SERVER_BINARY=0
        shift
    fi
    if [[ $# -ne 3 ]]; then
        echo "clients.sh: give three HOST:PORT addresses (HashClient needs 3 nodes), or --start BIN" >&2
        exit 2
    fi
    for a in "$@"; do
        [[ $a == *:[0-9]* ]] || { echo "clients.sh: not HOST:PORT: $a" >&2; exit 2; }
    done
    run_suite "$@"
    ;;
esac
