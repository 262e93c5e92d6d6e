#!/usr/bin/env python3
"""Memory-efficiency comparison: memcached vs memcrab, filled identically.

Starts both servers with identical flags (default ``-m 64 -t 4``), fills each
one with ``set`` commands over raw sockets (pipelined batches, replies
counted) and reports, per server: items kept, items per MB of ``-m``,
evictions, ``total_malloced`` and slab pages, process RSS (idle before the
fill and after it), items per MB of RSS, and the ratio memcrab/memcached.

Scenarios (all by default, select with --scenarios):
  a  100-byte values, unique keys of 10-40 bytes, written until evictions have
     been going on for a while (2x what could possibly fit in -m).
  b  mixed value sizes, 50-5000 bytes, same idea.
  c  shifting sizes: fill with 100-byte items, then write only 10 KiB items
     for --large-seconds (default 60 s) or --large-keys, whichever first, in
     chunks with short pauses, pause --pause seconds so background slab
     rebalancing can work, write one more round of N fresh 10 KiB keys, where
     N = how many 10 KiB items could fit in -m (64 MiB / 10 KiB = 6553), and
     get those last N keys: percentage readable = kept %.
  d  scale: 100-byte values under 20-byte keys, RSS measured after 10k, 100k,
     1M and 10M items (--scale-max caps the count), at -m --scale-mem
     (default 4096, replacing the -m of --flags) so that nothing is evicted.

Every server is started fresh for every scenario and is always stopped, even
on error or Ctrl-C.  If the memcrab binary is missing, only memcached is run.

Environment: MEMCRAB_BIN (default <repo>/target/release/memcrab),
MEMCACHED_BIN (default /usr/bin/memcached).  Python 3 stdlib only.
"""

import argparse
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
LARGE_VALUE = 10 * 1024

STARTED = []  # Popen objects we started and must stop


# --------------------------------------------------------------------------
# server process management


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_all():
    while STARTED:
        p = STARTED.pop()
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


class Server:
    def __init__(self, name, binary, flags):
        self.name = name
        self.binary = binary
        self.flags = flags
        self.port = None
        self.proc = None

    def start(self):
        self.port = free_port()
        cmd = [self.binary]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]
        cmd += ["-l", "127.0.0.1", "-U", "0", "-p", str(self.port)] + self.flags
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        STARTED.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                raise RuntimeError(
                    f"{self.name} exited at startup (rc={self.proc.returncode}): "
                    f"{' '.join(cmd)}\n{err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not accept connections on port {self.port}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in STARTED:
            STARTED.remove(self.proc)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), 10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(60)
        return Conn(s)


# --------------------------------------------------------------------------
# protocol helpers


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.sendall(b"quit\r\n")
        except OSError:
            pass
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def readexact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def stats(self, sub=b""):
        self.sock.sendall(b"stats " + sub + b"\r\n" if sub else b"stats\r\n")
        out = {}
        while True:
            line = self.readline()
            if line == b"END":
                return out
            parts = line.split()
            if len(parts) >= 3 and parts[0] == b"STAT":
                out[parts[1].decode()] = parts[2].decode()
            elif line.startswith(b"ERROR") or line.startswith(b"CLIENT_ERROR") \
                    or line.startswith(b"SERVER_ERROR"):
                return out

    def set_many(self, items, max_batch=1000, max_bytes=1 << 20):
        """Pipelined sets; returns (stored, not_stored, errors)."""
        stored = not_stored = errors = 0
        batch = []
        size = 0

        def flush():
            nonlocal stored, not_stored, errors, batch, size
            if not batch:
                return
            self.sock.sendall(b"".join(batch))
            for _ in range(len(batch)):
                line = self.readline()
                if line == b"STORED":
                    stored += 1
                elif line == b"NOT_STORED":
                    not_stored += 1
                else:
                    errors += 1
            batch = []
            size = 0

        for key, value in items:
            cmd = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)
            batch.append(cmd)
            size += len(cmd)
            if len(batch) >= max_batch or size >= max_bytes:
                flush()
        flush()
        return stored, not_stored, errors

    def get_many(self, keys, expect, width=50):
        """Multi-gets; returns (hits, misses, wrong) checked by expect(key)."""
        hits = misses = wrong = 0
        for i in range(0, len(keys), width):
            chunk = keys[i:i + width]
            self.sock.sendall(b"get " + b" ".join(chunk) + b"\r\n")
            seen = set()
            while True:
                line = self.readline()
                if line == b"END":
                    break
                parts = line.split()
                if len(parts) < 4 or parts[0] != b"VALUE":
                    raise RuntimeError(f"unexpected get reply: {line[:100]!r}")
                data = self.readexact(int(parts[3]) + 2)[:-2]
                seen.add(parts[1])
                if data == expect(parts[1]):
                    hits += 1
                else:
                    wrong += 1
            misses += sum(1 for k in chunk if k not in seen)
        return hits, misses, wrong


# --------------------------------------------------------------------------
# data generation (deterministic)

FILLER = bytes(random.Random(7).choice(b"abcdefghijklmnopqrstuvwxyz0123456789_")
               for _ in range(64))


def make_key(prefix, i, length):
    head = b"%s%x:" % (prefix, i)  # unique by construction
    if len(head) >= length:
        return head
    return head + FILLER[:length - len(head)]


def make_value(key, size):
    reps = size // len(key) + 1
    return (key * reps)[:size]


def gen_items(prefix, count, rng, vmin, vmax, kmin=10, kmax=40, start=0):
    for i in range(start, count):
        key = make_key(prefix, i, rng.randint(kmin, kmax))
        yield key, make_value(key, rng.randint(vmin, vmax))


# --------------------------------------------------------------------------
# scenarios


def without_m(flags):
    """`flags` less any -m option."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f == "-m":
            skip = True
        elif not (f.startswith("-m") and f[2:].isdigit()):
            out.append(f)
    return out


def parse_mem_mb(flags):
    for i, f in enumerate(flags):
        if f == "-m" and i + 1 < len(flags):
            return int(flags[i + 1])
        if f.startswith("-m") and f[2:].isdigit():
            return int(f[2:])
    return 64


def snapshot(server, conn):
    st = conn.stats()
    slabs = conn.stats(b"slabs")
    pages = sum(int(v) for k, v in slabs.items() if k.endswith(":total_pages"))
    return {
        "curr_items": int(st.get("curr_items", 0)),
        "evictions": int(st.get("evictions", 0)),
        "bytes": int(st.get("bytes", 0)),
        "total_malloced": int(slabs.get("total_malloced", 0)),
        "slab_pages": pages,
        "rss_kib": server.rss_kib(),
    }


def fill_scenario(server, args, scenario, mem_mb):
    rng = random.Random(args.seed)
    conn = server.connect()
    res = {"rss_idle_kib": server.rss_kib()}
    t0 = time.time()
    if scenario == "a":
        count = args.count_a or int(args.overfill * mem_mb * MIB / (100 + 10))
        stored, ns, err = conn.set_many(gen_items(b"a", count, rng, 100, 100))
    elif scenario == "b":
        count = args.count_b or int(args.overfill * mem_mb * MIB / (2525 + 25))
        stored, ns, err = conn.set_many(gen_items(b"b", count, rng, 50, 5000))
    else:
        raise ValueError(scenario)
    res.update(written=count, stored=stored, not_stored=ns, set_errors=err,
               fill_seconds=round(time.time() - t0, 2))
    time.sleep(args.settle)
    res.update(snapshot(server, conn))
    conn.close()
    return res


SCALE_POINTS = [10_000, 100_000, 1_000_000, 10_000_000]


def scale_scenario(server, args):
    rng = random.Random(args.seed)
    conn = server.connect()
    res = {"rss_idle_kib": server.rss_kib()}
    t0 = time.time()
    done = errors = 0
    for point in [p for p in SCALE_POINTS if p <= args.scale_max]:
        _, _, err = conn.set_many(gen_items(b"d", point, rng, 100, 100, 20, 20, start=done))
        errors += err
        done = point
        time.sleep(args.settle)
        snap = snapshot(server, conn)
        res[f"items_{point}"] = snap["curr_items"]
        res[f"rss_{point}"] = snap["rss_kib"]
        res.update(snap)
    res.update(written=done, set_errors=errors, fill_seconds=round(time.time() - t0, 2))
    conn.close()
    return res


def shift_scenario(server, args, mem_mb):
    rng = random.Random(args.seed)
    conn = server.connect()
    res = {"rss_idle_kib": server.rss_kib()}
    t0 = time.time()
    small = args.count_a or int(args.overfill * mem_mb * MIB / (100 + 10))
    s_stored, _, s_err = conn.set_many(gen_items(b"c", small, rng, 100, 100))
    after_small = snapshot(server, conn)
    capacity = mem_mb * MIB // LARGE_VALUE  # 10 KiB items that could fit in -m
    chunk = max(1, capacity // 4)
    limit = args.large_keys or 100 * capacity
    deadline = time.time() + args.large_seconds
    large_keys = []
    l_stored = l_err = 0
    i = 0

    def write_large(n):
        nonlocal i, l_stored, l_err
        items = []
        for _ in range(n):
            key = make_key(b"L", i, rng.randint(10, 40))
            items.append((key, make_value(key, LARGE_VALUE)))
            large_keys.append(key)
            i += 1
        st, _, er = conn.set_many(items, max_batch=100)
        l_stored += st
        l_err += er

    # Phase 1: large items only, in chunks with short pauses, bounded.
    while i < limit and time.time() < deadline:
        write_large(min(chunk, limit - i))
        time.sleep(args.chunk_pause)
    # Let background rebalancing (slab automove etc.) work, then write one more
    # capacity's worth of fresh large keys and check how many of them stayed.
    time.sleep(args.pause)
    write_large(capacity)
    time.sleep(args.settle)
    last = large_keys[-capacity:]
    hits, misses, wrong = conn.get_many(last, lambda k: make_value(k, LARGE_VALUE))
    res.update(snapshot(server, conn))
    res.update(
        written=small + i, small_written=small, small_stored=s_stored,
        small_set_errors=s_err, small_items_before_shift=after_small["curr_items"],
        large_written=i, large_stored=l_stored, large_set_errors=l_err,
        large_capacity=capacity, large_checked=len(last), large_hits=hits,
        large_misses=misses, large_wrong=wrong,
        large_kept_pct=round(100.0 * hits / capacity, 1),
        fill_seconds=round(time.time() - t0, 2),
    )
    conn.close()
    return res


def derive(res, mem_mb):
    rss_mb = res["rss_kib"] / 1024.0
    res["items_per_mb_m"] = round(res["curr_items"] / mem_mb, 1)
    res["items_per_mb_rss"] = round(res["curr_items"] / rss_mb, 1) if rss_mb else 0.0
    return res


# --------------------------------------------------------------------------
# reporting

ROWS = [
    ("keys written", "written", "{:,}"),
    ("items kept (curr_items)", "curr_items", "{:,}"),
    ("items per MB of -m", "items_per_mb_m", "{:,.1f}"),
    ("evictions", "evictions", "{:,}"),
    ("set errors", "set_errors", "{:,}"),
    ("stats bytes", "bytes", "{:,}"),
    ("total_malloced", "total_malloced", "{:,}"),
    ("slab pages", "slab_pages", "{:,}"),
    ("RSS idle (KiB)", "rss_idle_kib", "{:,}"),
    ("RSS after fill (KiB)", "rss_kib", "{:,}"),
    ("items per MB of RSS", "items_per_mb_rss", "{:,.1f}"),
    ("small items before shift", "small_items_before_shift", "{:,}"),
    ("large (10 KiB) written", "large_written", "{:,}"),
    ("large set errors", "large_set_errors", "{:,}"),
    ("large capacity (-m/10KiB)", "large_capacity", "{:,}"),
    ("large readable (last N)", "large_hits", "{:,}"),
    ("large wrong values", "large_wrong", "{:,}"),
    ("large kept %", "large_kept_pct", "{:.1f}"),
    ("fill seconds", "fill_seconds", "{:.2f}"),
] + [row for p in SCALE_POINTS for row in (
    (f"items kept at {p:,}", f"items_{p}", "{:,}"),
    (f"RSS at {p:,} items (KiB)", f"rss_{p}", "{:,}"),
)]

RATIO_KEYS = ["curr_items", "items_per_mb_m", "items_per_mb_rss", "rss_kib",
              "rss_idle_kib", "total_malloced", "evictions", "large_kept_pct"] + [
              f"rss_{p}" for p in SCALE_POINTS]

DESCR = {
    "a": "100 B values, 10-40 B keys, overfilled",
    "b": "mixed 50-5000 B values, overfilled",
    "c": "shift: 100 B fill, then only 10 KiB items",
    "d": "scale: RSS at 10k, 100k, 1M, 10M items of 100 B",
}


def fmt(v, spec):
    if v is None:
        return "-"
    try:
        return spec.format(v)
    except (ValueError, TypeError):
        return str(v)


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def report(scenario, results, flags, notes):
    names = list(results)
    print()
    print(f"== scenario {scenario}: {DESCR[scenario]}  (flags: {' '.join(flags)})")
    for n in notes:
        print(f"   note: {n}")
    width = 28
    header = f"{'metric':<{width}}" + "".join(f"{n:>16}" for n in names)
    both = "memcached" in results and "memcrab" in results
    if both:
        header += f"{'memcrab/memcached':>20}"
    print(header)
    print("-" * len(header))
    for label, key, spec in ROWS:
        if not any(key in r for r in results.values()):
            continue
        line = f"{label:<{width}}" + "".join(
            f"{fmt(results[n].get(key), spec):>16}" for n in names)
        if both:
            r = ratio(results["memcrab"].get(key), results["memcached"].get(key))
            line += f"{fmt(r, '{:.3f}'):>20}"
        print(line)
    summary = {"scenario": scenario, "flags": " ".join(flags)}
    for n, r in results.items():
        summary[n] = r
    if both:
        summary["ratio_memcrab_memcached"] = {
            k: ratio(results["memcrab"].get(k), results["memcached"].get(k))
            for k in RATIO_KEYS if k in results["memcached"]}
    else:
        summary["ratio_memcrab_memcached"] = None
    print("FILL_RESULT " + json.dumps(summary, sort_keys=True))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="a,b,c",
                    help="comma-separated subset of a,b,c,d (default a,b,c)")
    ap.add_argument("--flags", default="-m 64 -t 4",
                    help="server flags used for both servers (default '-m 64 -t 4')")
    ap.add_argument("--memcached-bin",
                    default=os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached"))
    ap.add_argument("--memcrab-bin", default=os.environ.get(
        "MEMCRAB_BIN", os.path.join(REPO, "target", "release", "memcrab")))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale-mem", type=int, default=4096,
                    help="scenario d: -m for both servers (default 4096)")
    ap.add_argument("--scale-max", type=int, default=10_000_000,
                    help="scenario d: largest item count (default 10M)")
    ap.add_argument("--overfill", type=float, default=2.0,
                    help="write this many times the items that could fit in -m")
    ap.add_argument("--count-a", type=int, default=0, help="override key count for a")
    ap.add_argument("--count-b", type=int, default=0, help="override key count for b")
    ap.add_argument("--large-keys", type=int, default=0,
                    help="scenario c: max 10 KiB keys in phase 1 (default 100x capacity)")
    ap.add_argument("--large-seconds", type=float, default=60.0,
                    help="scenario c: time bound of phase 1 (default 60)")
    ap.add_argument("--chunk-pause", type=float, default=0.2,
                    help="scenario c: pause between chunks of large writes")
    ap.add_argument("--pause", type=float, default=5.0,
                    help="scenario c: pause before the final large round (default 5)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds to wait after a fill before measuring")
    args = ap.parse_args()

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in scenarios:
        if s not in DESCR:
            ap.error(f"unknown scenario {s!r}")
    flags = shlex.split(args.flags)
    mem_mb = parse_mem_mb(flags)

    servers = [("memcached", args.memcached_bin)]
    notes = []
    if os.access(args.memcrab_bin, os.X_OK):
        if os.path.realpath(args.memcrab_bin) == os.path.realpath(args.memcached_bin):
            notes.append(f"memcrab binary is {args.memcrab_bin} (memcached vs memcached)")
        servers.append(("memcrab", args.memcrab_bin))
    else:
        notes.append(f"memcrab binary not found at {args.memcrab_bin}: "
                     "running memcached only")
    if not os.access(args.memcached_bin, os.X_OK):
        print(f"error: memcached not found at {args.memcached_bin}", file=sys.stderr)
        return 2
    for n in notes:
        print(f"note: {n}", file=sys.stderr)

    failed = False
    for scenario in scenarios:
        results = {}
        # Fresh servers for every scenario, started side by side; each one is
        # then filled in turn (the other stays idle) and all are stopped.
        run_flags = flags
        if scenario == "d":
            run_flags = without_m(flags) + ["-m", str(args.scale_mem)]
        srvs = [Server(name, binary, run_flags) for name, binary in servers]
        try:
            for srv in srvs:
                try:
                    srv.start()
                except Exception as e:
                    failed = True
                    print(f"  [{scenario}] {srv.name}: FAILED to start: {e}",
                          file=sys.stderr)
                    srv.proc = None
            time.sleep(0.3)
            for srv in srvs:
                if srv.proc is None:
                    continue
                try:
                    if scenario == "c":
                        r = shift_scenario(srv, args, mem_mb)
                    elif scenario == "d":
                        r = scale_scenario(srv, args)
                    else:
                        r = fill_scenario(srv, args, scenario, mem_mb)
                    results[srv.name] = derive(r, mem_mb)
                    print(f"  [{scenario}] {srv.name}: done in {r['fill_seconds']} s",
                          file=sys.stderr)
                except Exception as e:  # report and keep going with the others
                    failed = True
                    print(f"  [{scenario}] {srv.name}: FAILED: {e}", file=sys.stderr)
        finally:
            for srv in srvs:
                srv.stop()
        report(scenario, results, run_flags, notes)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        sys.exit(main())
    finally:
        stop_all()
