#!/usr/bin/env bash
# End-to-end test of a nutcracker (twemproxy) cluster of 3 cache nodes,
# started with scripts/cluster.sh in a temporary directory.
#
#   scripts/cluster-test.sh [--bin PATH] [--keys N] [--install] [--keep]
#
# Checks, all through the proxy unless said otherwise:
#   1. the cluster starts (3 nodes + nutcracker, ketama, auto_eject_hosts);
#   2. N keys (default 300; values of 1..3000 random bytes, CR/LF included,
#      flags = key number) are stored;
#   3. `stats` curr_items on each node, asked directly, shows the keys spread
#      over all 3 nodes, and direct gets find each key on exactly one node;
#   4. every key reads back correctly with single gets and with multi-gets
#      (which nutcracker splits across the nodes);
#   5. add/replace/append/prepend/incr/decr/touch/gets/cas/delete answer as
#      memcached does;
#   6. one node is killed (SIGKILL): the proxy ejects it; the keys of the live
#      nodes are all still served; the dead node's keys miss and can be
#      stored again; then N new keys are set and read back, paced over about
#      3 s so that nutcracker re-probes the dead node (every
#      server_retry_timeout): a request that lands on a re-probe may answer
#      SERVER_ERROR once, and must then succeed when repeated (no error persists);
#   7. `cluster.sh stop` stops every process and frees every port.
#
# Options:
#   --bin PATH   cache server binary (default <repo>/target/release/memcrab;
#                --bin /usr/bin/memcached runs the same test on memcached)
#   --keys N     number of keys (300)
#   --install    first apt-get install what the test needs (nutcracker,
#                python3), if missing
#   --keep       keep the run directory (logs, nutcracker.yml) afterwards
#
# Prints `PASS name` / `FAIL name: reason` lines and a final line
# `N passed, M failed`. Exit status: 0 all passed, 1 some check failed.
# Takes about 5 s.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="$REPO/scripts/cluster.sh"
BIN="$REPO/target/release/memcrab"
KEYS=300
INSTALL=0
KEEP=0
while (($#)); do
    case "$1" in
    --bin) BIN="${2:?--bin needs a path}"; shift ;;
    --keys) KEYS="${2:?--keys needs a number}"; shift ;;
    --install) INSTALL=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "cluster-test.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $KEYS =~ ^[0-9]+$ ]] && ((KEYS >= 30)) || { echo "cluster-test.sh: --keys must be >= 30" >&2; exit 2; }

# apt_install PKG...: without starting the packages' services.
apt_install() { "$REPO/scripts/apt-install.sh" "$@"; }

if ((INSTALL)); then
    missing=()
    command -v nutcracker >/dev/null || missing+=(nutcracker)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
fi

PASSED=0
FAILED=0
pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
finish() {
    echo "$PASSED passed, $FAILED failed"
    if ((FAILED)); then exit 1; fi
    exit 0
}

setup_ok=1
command -v nutcracker >/dev/null || { fail "setup: nutcracker not installed (apt-get install nutcracker, or run with --install)"; setup_ok=0; }
command -v python3 >/dev/null || { fail "setup: python3 not installed (run with --install)"; setup_ok=0; }
[[ -x $BIN ]] || { fail "setup: cache server binary not found: $BIN (cargo build --release, or --bin PATH)"; setup_ok=0; }
((setup_ok)) || finish

DIR="$(mktemp -d "${TMPDIR:-/tmp}/memcrab-cluster-test.XXXXXX")"
STOPPED=0
cleanup() {
    if ((!STOPPED)); then
        "$CLUSTER" stop --dir "$DIR" >/dev/null 2>&1 || true
    fi
    if ((KEEP)) || ((FAILED)); then
        echo "# run directory kept: $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

echo "# server: $BIN; run directory: $DIR"
if out="$("$CLUSTER" start --bin "$BIN" --dir "$DIR" 2>&1)"; then
    pass "cluster starts: 3 nodes + nutcracker (ketama, auto_eject_hosts, server_failure_limit 1)"
    sed 's/^/# /' <<<"$out"
else
    fail "cluster starts: $(tr '\n' ' ' <<<"$out")"
    finish
fi

# The checks that talk to the servers. Reads cluster.env; prints PASS/FAIL lines.
cat >"$DIR/check.py" <<'PY'
import os, random, re, signal, socket, sys, time

env_file, nkeys = sys.argv[1], int(sys.argv[2])
env = {}
for line in open(env_file):
    m = re.match(r"^(\w+)=\(?'?([^')]*)'?\)?$", line.strip())
    if m:
        env[m.group(1)] = m.group(2)
PROXY = int(env["PROXY_PORT"])
NODE_PORTS = [int(p) for p in env["NODE_PORTS"].split()]
NODE_PIDS = [int(p) for p in env["NODE_PIDS"].split()]
RETRY_MS = int(env["RETRY_TIMEOUT"])
N = len(NODE_PORTS)


def result(ok, name, detail=""):
    if ok:
        print("PASS " + name + (" (" + detail + ")" if detail else ""), flush=True)
    else:
        print("FAIL " + name + ": " + detail, flush=True)
    return ok


class Conn:
    """A memcached text-protocol connection."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by 127.0.0.1:%d" % self.port)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, raw):
        """Send one request, return its one-line reply."""
        self.sock.sendall(raw)
        return self.line()

    def store(self, verb, key, flags, data, exptime=0, cas=None):
        head = b"%s %s %d %d %d" % (verb, key, flags, exptime, len(data))
        if cas is not None:
            head += b" %d" % cas
        return self.cmd(head + b"\r\n" + data + b"\r\n")

    def get(self, keys, verb=b"get"):
        """Returns ({key: (flags, data, cas)}, None) or ({...}, error line)."""
        self.sock.sendall(verb + b" " + b" ".join(keys) + b"\r\n")
        found = {}
        while True:
            line = self.line()
            if line == b"END":
                return found, None
            if not line.startswith(b"VALUE "):
                return found, line
            parts = line.split()
            data = self.exact(int(parts[3]) + 2)
            if data[-2:] != b"\r\n":
                return found, b"bad data block terminator after " + line
            cas = int(parts[4]) if len(parts) > 4 else None
            found[parts[1]] = (int(parts[2]), data[:-2], cas)


def stat(port, name):
    c = Conn(port)
    c.sock.sendall(b"stats\r\n")
    value = None
    while True:
        line = c.line()
        if line == b"END":
            break
        parts = line.split()
        if len(parts) == 3 and parts[1] == name:
            value = parts[2].decode()
    c.close()
    return value


def short(b):
    return repr(b[:80])


rng = random.Random(20240605)
keys = [b"ct:key:%04d" % i for i in range(nkeys)]
values = {}
for i, k in enumerate(keys):
    n = rng.choice([1, 10, 100, 1000, rng.randint(1, 3000)])
    values[k] = (i, bytes(rng.choice(b"abcXYZ019\r\n \x00\xff") for _ in range(n)))

px = Conn(PROXY)

# 2. writes
bad = []
for k in keys:
    flags, data = values[k]
    r = px.store(b"set", k, flags, data)
    if r != b"STORED":
        bad.append((k, r))
result(not bad, "%d sets through the proxy answer STORED" % nkeys,
       "%d bad, first: %s -> %s" % (len(bad), bad[0][0].decode(), short(bad[0][1])) if bad else "")

# 3. spread
counts = [int(stat(p, b"curr_items") or -1) for p in NODE_PORTS]
detail = " ".join("n%d=%d" % (i + 1, c) for i, c in enumerate(counts))
result(sum(counts) == nkeys and min(counts) >= nkeys // (N * 4),
       "keys spread across all %d nodes (stats curr_items on each node)" % N,
       detail if sum(counts) == nkeys and min(counts) >= nkeys // (N * 4)
       else "curr_items %s, expected a sum of %d and at least %d each" % (detail, nkeys, nkeys // (N * 4)))

owner = {}
problems = []
for i, p in enumerate(NODE_PORTS):
    c = Conn(p)
    for j in range(0, nkeys, 50):
        found, err = c.get(keys[j:j + 50])
        if err:
            problems.append("n%d: get -> %s" % (i + 1, short(err)))
        for k, (flags, data, _) in found.items():
            if k in owner:
                problems.append("%s on n%d and n%d" % (k.decode(), owner[k] + 1, i + 1))
            elif (flags, data) != values[k]:
                problems.append("%s on n%d has the wrong value/flags" % (k.decode(), i + 1))
            owner[k] = i
    c.close()
missing = [k for k in keys if k not in owner]
per_node = [sum(1 for k in owner if owner[k] == i) for i in range(N)]
ok = not problems and not missing and per_node == counts
result(ok, "each key is on exactly one node, intact (direct gets on each node)",
       "" if ok else "; ".join(problems[:3] + ["%d keys on no node" % len(missing)] * bool(missing)
                               + ["per node %s vs curr_items %s" % (per_node, counts)] * (per_node != counts)))

# 4. reads through the proxy
bad = []
for k in keys:
    found, err = px.get([k])
    if err or found.get(k, (None, None, None))[:2] != values[k]:
        bad.append((k, err or (b"miss" if k not in found else b"wrong value")))
result(not bad, "%d single gets through the proxy return every value and flags" % nkeys,
       "%d bad, first %s: %s" % (len(bad), bad[0][0].decode(), short(bad[0][1])) if bad else "")

bad = []
for j in range(0, nkeys, 50):
    batch = keys[j:j + 50]
    found, err = px.get(batch)
    if err:
        bad.append("get of %d keys -> %s" % (len(batch), short(err)))
    for k in batch:
        if found.get(k, (None, None, None))[:2] != values[k]:
            bad.append("%s missing or wrong" % k.decode())
found, err = px.get(keys[:20], b"gets")
if err or len(found) != 20 or any(v[2] is None for v in found.values()):
    bad.append("gets of 20 keys -> %d values, %s" % (len(found), short(err or b"")))
result(not bad, "multi-gets of 50 keys through the proxy (split across nodes) return every value",
       "%d problems, first: %s" % (len(bad), bad[0]) if bad else "")

# 5. other commands through the proxy
steps = [
    (b"delete ct:c:1\r\n", None),
    (b"add ct:c:1 5 0 2\r\n10\r\n", b"STORED"),
    (b"add ct:c:1 5 0 2\r\n11\r\n", b"NOT_STORED"),
    (b"replace ct:c:1 6 0 2\r\n20\r\n", b"STORED"),
    (b"replace ct:c:nope 0 0 1\r\nx\r\n", b"NOT_STORED"),
    (b"append ct:c:1 0 0 1\r\n0\r\n", b"STORED"),
    (b"prepend ct:c:1 0 0 1\r\n1\r\n", b"STORED"),
    (b"incr ct:c:1 5\r\n", b"1205"),
    (b"decr ct:c:1 1300\r\n", b"0"),
    (b"incr ct:c:nope 1\r\n", b"NOT_FOUND"),
    (b"touch ct:c:1 100\r\n", b"TOUCHED"),
    (b"delete ct:c:1\r\n", b"DELETED"),
    (b"delete ct:c:1\r\n", b"NOT_FOUND"),
]
bad = []
for raw, want in steps:
    r = px.cmd(raw)
    if want is not None and r != want:
        bad.append("%s -> %s, expected %s" % (short(raw), short(r), short(want)))
k = keys[0]
found, err = px.get([k], b"gets")
if err or k not in found:
    bad.append("gets %s -> %s" % (k.decode(), short(err or b"miss")))
else:
    flags, data, cas = found[k]
    r = px.store(b"cas", k, flags, data, cas=cas)
    if r != b"STORED":
        bad.append("cas with the current unique -> %s" % short(r))
    r = px.store(b"cas", k, flags, data, cas=cas)
    if r != b"EXISTS":
        bad.append("cas with a stale unique -> %s, expected EXISTS" % short(r))
result(not bad, "add/replace/append/prepend/incr/decr/touch/delete/gets/cas through the proxy",
       "; ".join(bad[:3]))

# 6. kill one node
victim = 1  # n2
pid = NODE_PIDS[victim]
try:
    cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
except OSError:
    cmdline = b""
if str(NODE_PORTS[victim]).encode() not in cmdline:
    result(False, "kill n%d" % (victim + 1), "pid %d is not the node's process" % pid)
    sys.exit(0)
os.kill(pid, signal.SIGKILL)
for _ in range(50):
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ", 1)[1].startswith("Z"):
                break
    except OSError:
        break
    time.sleep(0.1)
dead_keys = [k for k in keys if owner.get(k) == victim]
live_keys = [k for k in keys if k in owner and owner[k] != victim]
print("# killed n%d (pid %d, port %d), which held %d keys" % (victim + 1, pid, NODE_PORTS[victim], len(dead_keys)), flush=True)

t0 = time.time()
errors = []
ejected = False
probe = dead_keys[0]
while time.time() - t0 < 10:
    try:
        found, err = px.get([probe])
    except (ConnectionError, OSError) as e:
        errors.append(str(e).encode())
        px = Conn(PROXY)
        continue
    if err is None and probe not in found:
        ejected = True
        break
    errors.append(err or b"hit on a dead node's key")
    time.sleep(0.05)
result(ejected, "proxy ejects the dead node: a get of one of its keys misses instead of failing",
       "after %.2f s, %d error replies before (%s)" % (time.time() - t0, len(errors), short(errors[0]) if errors else "none")
       if ejected else "still %s after 10 s" % short(errors[-1] if errors else b"?"))


def retried(fn):
    """Run fn(); on an error reply (a re-probe of the dead node) run it once more.
    Returns (final result, number of error replies seen)."""
    r = fn()
    if r[1] is None:
        return r, 0
    return fn(), 1


bad = []
transient = 0
for k in live_keys:
    (found, err), n = retried(lambda: px.get([k]))
    transient += n
    if err or found.get(k, (None, None, None))[:2] != values[k]:
        bad.append((k, err or b"miss or wrong value"))
result(not bad, "after the ejection the %d keys of the live nodes are all still served" % len(live_keys),
       ("%d transient error replies" % transient) if not bad else
       "%d bad, first %s: %s" % (len(bad), bad[0][0].decode(), short(bad[0][1])))

bad = []
hits = 0
for k in dead_keys:
    (found, err), n = retried(lambda: px.get([k]))
    if err:
        bad.append((k, err))
    elif k in found:
        hits += 1
result(not bad and hits == 0, "the %d keys of the dead node miss (no error)" % len(dead_keys),
       "" if not bad and hits == 0 else
       ("%d hits" % hits) if not bad else "%d errors, first %s: %s" % (len(bad), bad[0][0].decode(), short(bad[0][1])))

bad = []
for k in dead_keys:
    flags, data = values[k]
    r, n = retried(lambda: (None, None) if px.store(b"set", k, flags, data) == b"STORED" else (None, b"not stored"))
    found, err = retried(lambda: px.get([k]))[0]
    if r[1] or err or found.get(k, (None, None, None))[:2] != values[k]:
        bad.append(k)
live_counts = [int(stat(p, b"curr_items") or -1) for i, p in enumerate(NODE_PORTS) if i != victim]
ok = not bad and sum(live_counts) == nkeys
result(ok, "the dead node's keys are stored again on the live nodes",
       "live nodes now hold %s" % live_counts if ok else
       "%d failed, live nodes hold %s (want a sum of %d)" % (len(bad), live_counts, nkeys))

# new keys, paced over about 3 s so that re-probes of the dead node happen
new_keys = [b"ct:new:%04d" % i for i in range(nkeys)]
pace = 3.0 / (2 * nkeys)
first_errors = []
persist = []
t0 = time.time()
for i, k in enumerate(new_keys):
    data = b"new-%d-" % i + bytes(rng.choice(b"xyz\r\n") for _ in range(rng.randint(0, 200)))
    for attempt in (1, 2):
        r = px.store(b"set", k, i, data)
        if r == b"STORED":
            break
        (first_errors if attempt == 1 else persist).append((b"set " + k, r))
    time.sleep(pace)
    for attempt in (1, 2):
        found, err = px.get([k])
        if err is None and found.get(k, (None, None, None))[:2] == (i, data):
            break
        (first_errors if attempt == 1 else persist).append((b"get " + k, err or b"miss or wrong value"))
    time.sleep(pace)
elapsed = time.time() - t0
max_probes = int(elapsed * 1000 / RETRY_MS) + 2
ok = not persist and len(first_errors) <= max_probes
result(ok, "after the ejection %d new sets and gets through the proxy succeed (no error persists)" % nkeys,
       "%.1f s, %d transient re-probe errors (at most %d allowed at server_retry_timeout %d ms)%s"
       % (elapsed, len(first_errors), max_probes, RETRY_MS,
          ", first: %s -> %s" % (first_errors[0][0].decode(), short(first_errors[0][1])) if first_errors else "")
       if ok else
       "%d requests failed twice in a row (first: %s -> %s); %d first-attempt errors in %.1f s (max %d)"
       % (len(persist), persist[0][0].decode() if persist else "-", short(persist[0][1]) if persist else "-",
          len(first_errors), elapsed, max_probes))
px.close()
PY

if ! timeout 180 python3 "$DIR/check.py" "$DIR/cluster.env" "$KEYS" >"$DIR/check.out" 2>"$DIR/check.err"; then
    fail "checks: check.py exited with an error: $(tail -3 "$DIR/check.err" | tr '\n' ' ')"
fi
while IFS= read -r line; do
    case "$line" in
    "PASS "*) pass "${line#PASS }" ;;
    "FAIL "*) fail "${line#FAIL }" ;;
    *) echo "$line" ;;
    esac
done <"$DIR/check.out"

# 7. stop
# shellcheck disable=SC1091
source "$DIR/cluster.env"
if out="$("$CLUSTER" stop --dir "$DIR" 2>&1)"; then
    STOPPED=1
    left=()
    for pid in "$PROXY_PID" "${NODE_PIDS[@]}"; do
        [[ -s /proc/$pid/cmdline ]] && grep -qF "$DIR" "/proc/$pid/cmdline" 2>/dev/null && left+=("pid $pid")
    done
    for port in "$PROXY_PORT" "$STATS_PORT" "${NODE_PORTS[@]}"; do
        timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && left+=("port $port open")
    done
    if ((${#left[@]})); then
        fail "cluster.sh stop stops everything: still running: ${left[*]}"
    else
        pass "cluster.sh stop stops every process and frees every port"
    fi
else
    fail "cluster.sh stop: $(tr '\n' ' ' <<<"$out")"
fi
finish
