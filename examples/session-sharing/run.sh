#!/usr/bin/env bash
# PHP session sharing through memcrab: nginx balances round-robin over two
# PHP-FPM app servers (A and B) that keep their sessions in one memcrab.
#
#   examples/session-sharing/run.sh [--install] [--bin PATH] [--dir DIR] start|status|stop
#   examples/session-sharing/run.sh [--install] [--bin PATH] [--keep] test
#
# Everything listens on 127.0.0.1 and all configuration is generated into DIR
# (default ${TMPDIR:-/tmp}/memcrab-session-sharing-$UID for start/status/stop,
# a fresh temporary directory for test); /etc/nginx and /etc/php/*/fpm/php.ini
# are not used (the extensions are loaded by Debian's conf.d as usual).
#
#   cache       memcrab (or --bin /usr/bin/memcached), one node
#   app A, B    one php-fpm master each, each with two pools:
#                 "memcached": session.save_handler=memcached (php-memcached),
#                              with PHP's defaults (Debian: binary protocol,
#                              memcached.sess_binary_protocol=On)
#                 "memcache":  session.save_handler=memcache (php-memcache)
#   nginx       two sites, round-robin over A and B:
#                 http://127.0.0.1:WEB1/  -> the memcached pools
#                 http://127.0.0.1:WEB2/  -> the memcache pools
#               each page answers `backend=A counter=N handler=H binary=on|off`
#               (binary: memcached.sess_binary_protocol in effect).
#
# test, for each handler: 20 requests with one cookie jar must count the
# session 1..20 while the answers alternate between A and B; the session
# must be in the cache server (read back with a plain `get`); then app
# server A is stopped (3 requests go to B), started again, and 6 more
# requests must continue the counter (21..29) on both backends again.
# Prints `PASS name` / `FAIL name: reason` lines and `N passed, M failed`;
# exits non-zero on failure. Takes about 10 s.
#
# Options:
#   --bin PATH   cache server (default <repo>/target/release/memcrab)
#   --dir DIR    run directory for start/status/stop
#   --keep       test: keep the run directory (configs, logs) afterwards
#   --install    first apt-get install nginx php-fpm php-memcached
#                php-memcache curl, if missing
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PROG="run.sh"
CMD=""
BIN="$REPO/target/release/memcrab"
DIR=""
KEEP=0
INSTALL=0
while (($#)); do
    case "$1" in
    start | stop | status | test) CMD="$1" ;;
    --bin) BIN="${2:?--bin needs a path}"; shift ;;
    --dir) DIR="${2:?--dir needs a path}"; shift ;;
    --keep) KEEP=1 ;;
    --install) INSTALL=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "$PROG: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $CMD || $INSTALL == 1 ]] || { echo "usage: $0 [--install] [--bin PATH] [--dir DIR] start|status|stop|test" >&2; exit 2; }

die() {
    echo "$PROG: $*" >&2
    exit 2
}

# --- prerequisites -----------------------------------------------------------

php_fpm_bin() {
    local f
    f="$(command -v php-fpm 2>/dev/null || true)"
    [[ -n $f ]] || f="$(ls /usr/sbin/php-fpm[0-9]* 2>/dev/null | sort -V | tail -1 || true)"
    echo "$f"
}

# missing_prereqs: Debian packages of what is not there yet.
missing_prereqs() {
    local m=() fpm
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || m+=(nginx)
    fpm="$(php_fpm_bin)"
    [[ -n $fpm ]] || m+=(php-fpm)
    if [[ -n $fpm ]]; then
        local mods
        mods="$("$fpm" -m 2>/dev/null || true)"
        grep -qx memcached <<<"$mods" || m+=(php-memcached)
        grep -qx memcache <<<"$mods" || m+=(php-memcache)
    else
        m+=(php-memcached php-memcache)
    fi
    command -v curl >/dev/null || m+=(curl)
    echo "${m[*]}"
}

# apt_install PKG...: without starting the packages' services.
apt_install() { "$REPO/scripts/apt-install.sh" "$@"; }

if ((INSTALL)); then
    missing="$(missing_prereqs)"
    if [[ -n $missing ]]; then
        # shellcheck disable=SC2086
        apt_install $missing
    fi
    [[ -n $CMD ]] || exit 0
fi

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
PHP_FPM="$(php_fpm_bin)"

# --- helpers -----------------------------------------------------------------

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# 41000-41999 lies in Linux's ephemeral range: a port is free only if no
# socket at all (listening or connected) uses it.
port_free() {
    if command -v ss >/dev/null; then
        [[ -z $(ss -Htan "sport = :$1" 2>/dev/null) ]]
    else
        if port_open "$1"; then return 1; fi
    fi
}

alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ ${stat:0:1} != Z ]]
}

# pid_is PID PATTERN: PID lives and its command line contains PATTERN.
pid_is() {
    [[ -n $1 ]] && alive "$1" || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

wait_port() { # PORT PID
    local i
    for ((i = 0; i < 50; i++)); do
        alive "$2" || return 1
        port_open "$1" && return 0
        sleep 0.1
    done
    return 1
}

# read_pid FILE: the pid in FILE, waiting up to 5 s for it to appear.
read_pid() {
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $1 ]] && { tr -dc 0-9 <"$1"; return 0; }
        sleep 0.1
    done
    return 1
}

# terminate PID PATTERN [SIGNAL]: signal (default TERM), wait up to 10 s, KILL.
terminate() {
    local pid="$1" pattern="$2" sig="${3:-TERM}" i
    pid_is "$pid" "$pattern" || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_is "$pid" "$pattern" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
    ! pid_is "$pid" "$pattern"
}

# --- configuration -----------------------------------------------------------

# Port plan: CACHE WEB1 WEB2 A_MCD A_MC B_MCD B_MC = BASE .. BASE+6
NPORTS=7
pick_base_port() {
    local tries base p ok
    for ((tries = 0; tries < 50; tries++)); do
        base=$((41000 + RANDOM % (1000 - NPORTS)))
        ok=1
        for ((p = base; p < base + NPORTS; p++)); do
            port_free "$p" || { ok=0; break; }
        done
        ((ok)) && { echo "$base"; return 0; }
    done
    return 1
}

write_configs() {
    local base=$1 app
    CACHE_PORT=$base
    WEB1_PORT=$((base + 1))
    WEB2_PORT=$((base + 2))
    A_MCD_PORT=$((base + 3))
    A_MC_PORT=$((base + 4))
    B_MCD_PORT=$((base + 5))
    B_MC_PORT=$((base + 6))
    mkdir -p "$DIR/app" "$DIR/nginx/tmp"
    chmod 755 "$DIR" "$DIR/app"

    cat >"$DIR/app/index.php" <<'PHP'
<?php
// One page: counts the requests of this session.
session_start();
$_SESSION['counter'] = ($_SESSION['counter'] ?? 0) + 1;
header('Content-Type: text/plain');
// session_module_name(), not ini_get('session.save_handler'): opcache folds
// ini_get() of a php_admin_value at compile time, and the compiled script is
// shared by all the pools of one php-fpm master.
// The same memcached.* value in every pool (PHP's default), so folding it
// is harmless here.
printf("backend=%s counter=%d handler=%s binary=%s\n",
       getenv('APP_BACKEND'), $_SESSION['counter'], session_module_name(),
       ini_get('memcached.sess_binary_protocol') ? 'on' : 'off');
PHP
    chmod 644 "$DIR/app/index.php"

    # php.ini for both app servers: only what the example needs.
    cat >"$DIR/php.ini" <<EOF
; generated by examples/session-sharing/run.sh
; the memcached and memcache extensions are loaded by Debian's conf.d
display_errors = Off
log_errors = On
session.use_strict_mode = 1
session.use_cookies = 1
session.use_only_cookies = 1
session.cookie_httponly = 1
session.gc_maxlifetime = 1440
EOF

    for app in A B; do
        local mcd_port mc_port user_line=""
        if [[ $app == A ]]; then mcd_port=$A_MCD_PORT mc_port=$A_MC_PORT; else mcd_port=$B_MCD_PORT mc_port=$B_MC_PORT; fi
        ((EUID == 0)) && user_line=$'user = www-data\ngroup = www-data'
        cat >"$DIR/php-fpm-$app.conf" <<EOF
; generated by examples/session-sharing/run.sh: app server $app
[global]
pid = $DIR/php-fpm-$app.pid
error_log = $DIR/php-fpm-$app.log
daemonize = yes

; sessions in memcrab through php-memcached (its defaults: binary protocol on Debian)
[$app-memcached]
$user_line
listen = 127.0.0.1:$mcd_port
listen.allowed_clients = 127.0.0.1
pm = static
pm.max_children = 2
clear_env = yes
env[APP_BACKEND] = $app
php_admin_value[session.save_handler] = memcached
php_admin_value[session.save_path] = "127.0.0.1:$CACHE_PORT"
php_admin_value[memcached.sess_prefix] = "memc.sess.key."

; sessions in memcrab through php-memcache
[$app-memcache]
$user_line
listen = 127.0.0.1:$mc_port
listen.allowed_clients = 127.0.0.1
pm = static
pm.max_children = 2
clear_env = yes
env[APP_BACKEND] = $app
php_admin_value[session.save_handler] = memcache
php_admin_value[session.save_path] = "tcp://127.0.0.1:$CACHE_PORT"
EOF
    done

    local user_directive=""
    ((EUID == 0)) && user_directive="user www-data;"
    cat >"$DIR/nginx/nginx.conf" <<EOF
# generated by examples/session-sharing/run.sh
$user_directive
worker_processes 1;
daemon on;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log $DIR/nginx/access.log;
    client_body_temp_path $DIR/nginx/tmp/body;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;

    # round-robin (nginx's default); a server that refuses a connection is
    # skipped for fail_timeout, the request goes to the other one
    upstream app_memcached {
        server 127.0.0.1:$A_MCD_PORT max_fails=1 fail_timeout=1s;
        server 127.0.0.1:$B_MCD_PORT max_fails=1 fail_timeout=1s;
    }
    upstream app_memcache {
        server 127.0.0.1:$A_MC_PORT max_fails=1 fail_timeout=1s;
        server 127.0.0.1:$B_MC_PORT max_fails=1 fail_timeout=1s;
    }
    server {
        listen 127.0.0.1:$WEB1_PORT;
        root $DIR/app;
        location / {
            include $DIR/nginx/fastcgi.conf;
            fastcgi_pass app_memcached;
        }
    }
    server {
        listen 127.0.0.1:$WEB2_PORT;
        root $DIR/app;
        location / {
            include $DIR/nginx/fastcgi.conf;
            fastcgi_pass app_memcache;
        }
    }
}
EOF
    cat >"$DIR/nginx/fastcgi.conf" <<'EOF'
# every request runs index.php
fastcgi_param SCRIPT_FILENAME   $document_root/index.php;
fastcgi_param SCRIPT_NAME       /index.php;
fastcgi_param DOCUMENT_ROOT     $document_root;
fastcgi_param REQUEST_METHOD    $request_method;
fastcgi_param REQUEST_URI       $request_uri;
fastcgi_param QUERY_STRING      $query_string;
fastcgi_param CONTENT_TYPE      $content_type;
fastcgi_param CONTENT_LENGTH    $content_length;
fastcgi_param SERVER_PROTOCOL   $server_protocol;
fastcgi_param SERVER_NAME       $server_name;
fastcgi_param SERVER_PORT       $server_port;
fastcgi_param REMOTE_ADDR       $remote_addr;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
EOF
}

write_env() {
    cat >"$DIR/run.env" <<EOF
# written by examples/session-sharing/run.sh start
BIN='$BIN'
CACHE_PORT=$CACHE_PORT
WEB1_PORT=$WEB1_PORT
WEB2_PORT=$WEB2_PORT
A_MCD_PORT=$A_MCD_PORT
A_MC_PORT=$A_MC_PORT
B_MCD_PORT=$B_MCD_PORT
B_MC_PORT=$B_MC_PORT
CACHE_PID=$CACHE_PID
EOF
}

# --- start / stop of each part ---------------------------------------------------

start_cache() {
    local user=()
    ((EUID == 0)) && user=(-u root)
    rm -f "$DIR/cache.pid"
    "$BIN" "${user[@]}" -l 127.0.0.1 -p "$CACHE_PORT" -U 0 -m 64 -P "$DIR/cache.pid" \
        </dev/null >"$DIR/cache.log" 2>&1 &
    CACHE_PID=$!
    wait_port "$CACHE_PORT" "$CACHE_PID" || { echo "$PROG: cache server did not start: $(cat "$DIR/cache.log")" >&2; return 1; }
}

# start_fpm A|B
start_fpm() {
    local app=$1 pid mcd mc
    if [[ $app == A ]]; then mcd=$A_MCD_PORT mc=$A_MC_PORT; else mcd=$B_MCD_PORT mc=$B_MC_PORT; fi
    rm -f "$DIR/php-fpm-$app.pid"
    "$PHP_FPM" -c "$DIR/php.ini" -y "$DIR/php-fpm-$app.conf" -p "$DIR" </dev/null >>"$DIR/php-fpm-$app.out" 2>&1 || {
        echo "$PROG: php-fpm $app did not start: $(tail -5 "$DIR/php-fpm-$app.out" "$DIR/php-fpm-$app.log" 2>/dev/null)" >&2
        return 1
    }
    pid="$(read_pid "$DIR/php-fpm-$app.pid")" &&
        wait_port "$mcd" "$pid" && wait_port "$mc" "$pid" || {
        echo "$PROG: php-fpm $app is not listening: $(tail -5 "$DIR/php-fpm-$app.log" 2>/dev/null)" >&2
        return 1
    }
}

# stop_fpm A|B: graceful stop (SIGQUIT), as `systemctl stop php8.2-fpm` does
stop_fpm() {
    local pid
    pid="$(tr -dc 0-9 <"$DIR/php-fpm-$1.pid" 2>/dev/null || true)"
    terminate "$pid" "$DIR/php-fpm-$1.conf" QUIT
}

start_nginx() {
    local pid
    "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" </dev/null >"$DIR/nginx/start.log" 2>&1 || {
        echo "$PROG: nginx did not start: $(cat "$DIR/nginx/start.log" "$DIR/nginx/error.log" 2>/dev/null | tail -5)" >&2
        return 1
    }
    pid="$(read_pid "$DIR/nginx/nginx.pid")" &&
        wait_port "$WEB1_PORT" "$pid" && wait_port "$WEB2_PORT" "$pid"
}

stop_nginx() {
    local pid
    pid="$(tr -dc 0-9 <"$DIR/nginx/nginx.pid" 2>/dev/null || true)"
    terminate "$pid" "$DIR/nginx/nginx.conf" QUIT
}

stop_all() {
    local rc=0
    if [[ -r $DIR/run.env ]]; then
        # shellcheck disable=SC1091
        source "$DIR/run.env"
    fi
    stop_nginx || rc=1
    stop_fpm A || rc=1
    stop_fpm B || rc=1
    terminate "${CACHE_PID:-}" "$DIR/cache.pid" || rc=1
    rm -f "$DIR/run.env"
    return $rc
}

start_all() {
    command -v "$NGINX" >/dev/null && [[ -n $PHP_FPM ]] || die "nginx/php-fpm missing: $(missing_prereqs) (run with --install)"
    [[ -z $(missing_prereqs) ]] || die "missing Debian packages: $(missing_prereqs) (run with --install)"
    [[ -x $BIN ]] || die "cache server binary not found: $BIN (cargo build --release, or --bin PATH)"
    BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    if [[ -r $DIR/run.env ]]; then
        # shellcheck disable=SC1091
        source "$DIR/run.env"
        if pid_is "${CACHE_PID:-}" "$DIR/cache.pid"; then
            echo "$PROG: already running in $DIR (http://127.0.0.1:$WEB1_PORT/); stop it first" >&2
            exit 1
        fi
    fi
    local attempt base
    for ((attempt = 1; attempt <= 3; attempt++)); do
        base="$(pick_base_port)" || die "no free block of $NPORTS ports in 41000-41999"
        write_configs "$base"
        CACHE_PID=""
        if start_cache && write_env && start_fpm A && start_fpm B && start_nginx; then
            echo "started in $DIR ($(basename "$BIN") on 127.0.0.1:$CACHE_PORT)"
            echo "  sessions via php-memcached: curl -b jar -c jar http://127.0.0.1:$WEB1_PORT/"
            echo "  sessions via php-memcache:  curl -b jar -c jar http://127.0.0.1:$WEB2_PORT/"
            return 0
        fi
        stop_all >/dev/null 2>&1 || true
        echo "$PROG: start failed (attempt $attempt of 3)" >&2
    done
    return 1
}

# --- test --------------------------------------------------------------------

PASSED=0
FAILED=0
pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }

# fetch PORT JAR: one request; prints "backend=X counter=N handler=H" or an error.
fetch() {
    curl -sS --max-time 5 -b "$2" -c "$2" "http://127.0.0.1:$1/" 2>&1 | tr -d '\r' | head -1
}

# cache_get KEY: the value of KEY in the cache server ("" if none).
cache_get() {
    local fd line data=""
    { exec {fd}<>"/dev/tcp/127.0.0.1/$CACHE_PORT"; } 2>/dev/null || return 1
    printf 'get %s\r\nquit\r\n' "$1" >&"$fd"
    while IFS= read -r -t 2 line <&"$fd"; do
        line=${line%$'\r'}
        [[ $line == END ]] && break
        [[ $line == VALUE* ]] && continue
        data+="$line"
    done
    exec {fd}>&-
    echo "$data"
}

# requests HANDLER PORT JAR COUNT FIRST EXPECT: COUNT requests; the counter must
# run FIRST..FIRST+COUNT-1. EXPECT=alternate: consecutive answers come from
# different backends; EXPECT=both: both backends appear; EXPECT=X: all
# answers from backend X.
# Sets REQ_ERR on failure, REQ_SEQ to the backends seen.
requests() {
    local handler=$1 port=$2 jar=$3 count=$4 first=$5 expect=$6 i out b c prev=""
    REQ_ERR=""
    REQ_SEQ=""
    for ((i = 0; i < count; i++)); do
        out="$(fetch "$port" "$jar")"
        if [[ ! $out =~ ^backend=([AB])\ counter=([0-9]+)\ handler=([a-z]+)\ binary=(on|off)$ ]]; then
            REQ_ERR="request $((first + i)): unexpected answer '$out'"
            return 1
        fi
        b=${BASH_REMATCH[1]} c=${BASH_REMATCH[2]}
        REQ_SEQ+=$b
        if [[ ${BASH_REMATCH[3]} != "$handler" ]]; then
            REQ_ERR="request $((first + i)): handler ${BASH_REMATCH[3]}, expected $handler"
            return 1
        fi
        # php-memcached's default (Debian): sessions over the binary protocol
        if [[ $handler == memcached && ${BASH_REMATCH[4]} != on ]]; then
            REQ_ERR="request $((first + i)): memcached.sess_binary_protocol is off; this example runs with PHP's default (On)"
            return 1
        fi
        if ((c != first + i)); then
            REQ_ERR="request $((first + i)): counter=$c (session lost or not shared); backends so far $REQ_SEQ"
            return 1
        fi
        if [[ $expect == alternate && $b == "$prev" ]]; then
            REQ_ERR="requests $((first + i - 1)) and $((first + i)) both went to $b (not round-robin): $REQ_SEQ"
            return 1
        fi
        if [[ $expect == [AB] && $b != "$expect" ]]; then
            REQ_ERR="request $((first + i)) went to $b, expected $expect: $REQ_SEQ"
            return 1
        fi
        prev=$b
    done
    if [[ $expect == alternate || $expect == both ]] && [[ $REQ_SEQ != *A* || $REQ_SEQ != *B* ]]; then
        REQ_ERR="only one backend answered: $REQ_SEQ"
        return 1
    fi
}

test_handler() {
    local handler=$1 port=$2 jar="$DIR/cookies-$1.txt" sid key value proto=""
    [[ $handler == memcached ]] && proto=", binary protocol"
    rm -f "$jar"
    if requests "$handler" "$port" "$jar" 20 1 alternate; then
        pass "$handler: 20 requests through nginx count one session 1..20, answers alternate between A and B ($REQ_SEQ$proto)"
    else
        fail "$handler: 20 requests share one session: $REQ_ERR"
        return 0
    fi

    sid="$(awk '$6 == "PHPSESSID" {print $7}' "$jar" | tail -1)"
    key="$sid"
    [[ $handler == memcached ]] && key="memc.sess.key.$sid"
    value="$(cache_get "$key" || true)"
    if [[ -n $sid && $value == *"counter|i:20;"* ]]; then
        pass "$handler: the session is in the cache server (get $key -> $value)"
    else
        fail "$handler: session not found in the cache server: get '$key' -> '$value'"
    fi

    if ! stop_fpm A; then
        fail "$handler: stop app server A (php-fpm)"
        return 0
    fi
    if requests "$handler" "$port" "$jar" 3 21 B; then
        pass "$handler: app server A stopped: requests 21..23 go to B and the counter continues"
    else
        fail "$handler: app server A stopped, B serves the session: $REQ_ERR"
    fi
    if ! start_fpm A; then
        fail "$handler: restart app server A (php-fpm)"
        return 0
    fi
    sleep 2.5 # nginx skips A for fail_timeout (1 s), counted in whole seconds
    if requests "$handler" "$port" "$jar" 6 24 both; then
        pass "$handler: app server A restarted: requests 24..29 go to both backends again ($REQ_SEQ), no session lost"
    else
        fail "$handler: after restarting app server A the session continues: $REQ_ERR"
    fi
}

run_test() {
    local missing
    missing="$(missing_prereqs)"
    if [[ -n $missing ]]; then
        fail "setup: missing Debian packages: $missing (run with --install)"
    elif [[ ! -x $BIN ]]; then
        fail "setup: cache server binary not found: $BIN (cargo build --release, or --bin PATH)"
    else
        DIR="$(mktemp -d "${TMPDIR:-/tmp}/memcrab-session-test.XXXXXX")"
        # shellcheck disable=SC2064
        trap "stop_all >/dev/null 2>&1 || true" EXIT
        echo "# cache server: $BIN; run directory: $DIR"
        if start_all >"$DIR/start.out" 2>&1; then
            pass "start: $(basename "$BIN"), 2 php-fpm app servers (2 pools each), nginx round-robin"
            sed 's/^/# /' "$DIR/start.out"
            test_handler memcached "$WEB1_PORT"
            test_handler memcache "$WEB2_PORT"
            if stop_all; then
                local left=() p
                for p in "$CACHE_PORT" "$WEB1_PORT" "$WEB2_PORT" "$A_MCD_PORT" "$A_MC_PORT" "$B_MCD_PORT" "$B_MC_PORT"; do
                    port_open "$p" && left+=("$p")
                done
                if ((${#left[@]})); then
                    fail "stop: ports still open: ${left[*]}"
                else
                    pass "stop: nginx, both php-fpm and the cache server stopped, ports free"
                fi
            else
                fail "stop: something did not stop (see $DIR)"
            fi
        else
            fail "start: $(tr '\n' ' ' <"$DIR/start.out")"
        fi
        trap - EXIT
        stop_all >/dev/null 2>&1 || true
        if ((KEEP || FAILED)); then
            echo "# run directory kept: $DIR" >&2
        else
            rm -rf "$DIR"
        fi
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0)) || exit 1
}

# --- main --------------------------------------------------------------------

case "$CMD" in
start)
    DIR="${DIR:-${TMPDIR:-/tmp}/memcrab-session-sharing-$UID}"
    start_all
    ;;
stop)
    DIR="${DIR:-${TMPDIR:-/tmp}/memcrab-session-sharing-$UID}"
    [[ -r $DIR/run.env ]] || { echo "nothing running in $DIR"; exit 0; }
    stop_all && echo "stopped ($DIR)"
    ;;
status)
    DIR="${DIR:-${TMPDIR:-/tmp}/memcrab-session-sharing-$UID}"
    [[ -r $DIR/run.env ]] || { echo "nothing running in $DIR"; exit 1; }
    # shellcheck disable=SC1091
    source "$DIR/run.env"
    rc=0
    for part in "cache 127.0.0.1:$CACHE_PORT $CACHE_PORT" "nginx(memcached) 127.0.0.1:$WEB1_PORT $WEB1_PORT" \
        "nginx(memcache) 127.0.0.1:$WEB2_PORT $WEB2_PORT" "A/memcached 127.0.0.1:$A_MCD_PORT $A_MCD_PORT" \
        "A/memcache 127.0.0.1:$A_MC_PORT $A_MC_PORT" "B/memcached 127.0.0.1:$B_MCD_PORT $B_MCD_PORT" \
        "B/memcache 127.0.0.1:$B_MC_PORT $B_MC_PORT"; do
        read -r name addr port <<<"$part"
        if port_open "$port"; then echo "$name $addr up"; else echo "$name $addr DOWN"; rc=1; fi
    done
    exit $rc
    ;;
test)
    run_test
    ;;
esac
