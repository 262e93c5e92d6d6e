#!/usr/bin/env bash
# Real-client checks with nginx's memcached module (ngx_http_memcached_module,
# built into Debian's nginx): a value that a client (pymemcache) stored is
# served by `memcached_pass`. nginx runs on 127.0.0.1 on a free port the kernel picks,
# with its own prefix, config, logs and temp dirs in a temp
# dir (the system config is not read), and is stopped at the end.
#
#   protocol-tests/clients/nginx.sh HOST:PORT
#
# Prints one line per check: `PASS name` or `FAIL name: reason`. Exits 0 when
# every check ran, whatever their results. Run by scripts/clients.sh.
set -euo pipefail

if [[ $# -ne 1 || $1 != *:* ]]; then
    echo "usage: $0 HOST:PORT" >&2
    exit 2
fi
ADDR=$1
T=$(mktemp -d)
NGINX_PID=
cleanup() {
    if [[ -n $NGINX_PID ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port the kernel picks for a listener is in use by no socket at all: a
# random one in 40000-40999 (inside the ephemeral range) can be the local
# port of some connection, and nginx's bind() then fails.
NPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' || true)
if [[ -z $NPORT ]]; then
    echo "FAIL nginx.start: no free port"
    exit 0
fi

mkdir -p "$T/logs" "$T/tmp"
cat >"$T/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log $T/logs/access.log;
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        location /mc/ {
            set \$memcached_key "nginx:\$uri";
            memcached_pass $ADDR;
            memcached_connect_timeout 2s;
            memcached_send_timeout 5s;
            memcached_read_timeout 5s;
            memcached_gzip_flag 1024;
            default_type application/octet-stream;
        }
    }
}
EOF
nginx -p "$T" -c "$T/nginx.conf" -e "$T/logs/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do port_in_use "$NPORT" && break; sleep 0.1; done
if ! port_in_use "$NPORT"; then
    echo "FAIL nginx.start: nginx is not listening on 127.0.0.1:$NPORT: $(tr -s '\n' ' ' <"$T/logs/error.log" | cut -c1-300)"
    exit 0
fi

# client OP KEY [FILE FLAGS]: pymemcache stores FILE's bytes under KEY, or
# deletes KEY.
client() {
    timeout 20 /usr/bin/python3 - "$ADDR" "$@" <<'EOF'
import sys
from pymemcache.client.base import Client
host, port = sys.argv[1].rsplit(":", 1)
c = Client((host, int(port)), connect_timeout=5, timeout=5, default_noreply=False)
op, key = sys.argv[2], sys.argv[3]
if op == "set":
    with open(sys.argv[4], "rb") as f:
        ok = c.set(key, f.read(), flags=int(sys.argv[5]))
else:
    ok = c.delete(key)
sys.exit(0 if ok else 1)
EOF
}

# fetch PATH OUT: prints the HTTP status; the body goes to OUT, headers to OUT.h
fetch() {
    curl -sS --max-time 10 -o "$2" -D "$2.h" -w '%{http_code}' "http://127.0.0.1:$NPORT$1"
}

check() {
    local name=$1 out
    if out=$("$2" 2>&1); then
        echo "PASS $name"
    else
        echo "FAIL $name: $(printf '%s' "$out" | tr -s '\n\t ' '   ' | cut -c1-300)"
    fi
}

hit() {
    local f code
    printf 'binary \0\r\nEND\r\nVALUE x 0 1\r\n' >"$T/small"
    head -c 700000 /dev/urandom >"$T/big"
    for f in small big; do
        client set "nginx:/mc/$f" "$T/$f" 0 || { echo "pymemcache set of $f failed"; return 1; }
        code=$(fetch "/mc/$f" "$T/got_$f") || { echo "curl /mc/$f failed"; return 1; }
        [[ $code == 200 ]] || { echo "GET /mc/$f: status $code"; return 1; }
        cmp "$T/$f" "$T/got_$f" || { echo "GET /mc/$f: body differs from the stored value"; return 1; }
        grep -qi "^Content-Length: $(stat -c %s "$T/$f")" "$T/got_$f.h" ||
            { echo "GET /mc/$f: $(tr -s '\r\n' ' ' <"$T/got_$f.h")"; return 1; }
    done
}

miss() {
    local code
    client delete "nginx:/mc/small" || { echo "pymemcache delete failed"; return 1; }
    code=$(fetch /mc/small "$T/got_miss") || { echo "curl failed"; return 1; }
    [[ $code == 404 ]] || { echo "GET of a deleted key: status $code"; return 1; }
    code=$(fetch /mc/never-stored "$T/got_miss") || { echo "curl failed"; return 1; }
    [[ $code == 404 ]] || { echo "GET of a missing key: status $code"; return 1; }
}

gzip_flag() {
    local code
    printf 'hello gzip world\n' | gzip -c >"$T/gz"
    client set "nginx:/mc/gz" "$T/gz" 1024 || { echo "pymemcache set failed"; return 1; }
    code=$(fetch /mc/gz "$T/got_gz") || { echo "curl failed"; return 1; }
    [[ $code == 200 ]] || { echo "status $code"; return 1; }
    grep -qi '^Content-Encoding: gzip' "$T/got_gz.h" || { echo "no Content-Encoding: gzip for flags 1024"; return 1; }
    cmp "$T/gz" "$T/got_gz" || { echo "body differs"; return 1; }
}

check nginx.memcached_pass_hit hit
check nginx.memcached_pass_miss miss
check nginx.memcached_gzip_flag gzip_flag
if grep -qE '\[(error|crit|alert|emerg)\]' "$T/logs/error.log"; then
    # 404s of missing keys are logged at [info], not [error]
    echo "FAIL nginx.error_log: $(grep -E '\[(error|crit|alert|emerg)\]' "$T/logs/error.log" | head -3 | tr -s '\n' ' ' | cut -c1-300)"
else
    echo "PASS nginx.error_log"
fi
