#!/usr/bin/python3
"""Real-client checks with the Python libraries pymemcache (Client and
HashClient) and python-memcached (module `memcache`), unmodified, as Debian
packages them (python3-pymemcache, python3-memcache).

    /usr/bin/python3 python_clients.py HOST:PORT HOST:PORT HOST:PORT

The first address is the main target; HashClient spreads its keys over all
three. Prints one line per check: `PASS name` or `FAIL name: reason`.
Exits 0 when every check ran (whatever their results), non-zero on a crash.
Run by scripts/clients.sh; each check flushes or uses its own keys, so the
checks must not run concurrently with other clients on the same servers.
"""

import os
import sys
import time

from pymemcache.client.base import Client as PymClient
from pymemcache.client.hash import HashClient
from pymemcache import serde as pym_serde
from pymemcache.exceptions import MemcacheClientError
import memcache  # python-memcached

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (  # noqa: E402
    add_append_prepend_replace, blob, cas_race, check, eq, short)

TIMEOUT = 5  # seconds per socket operation


def parse(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


ADDRS = [parse(a) for a in sys.argv[1:]]
if len(ADDRS) != 3:
    sys.exit("usage: python_clients.py HOST:PORT HOST:PORT HOST:PORT")
MAIN = ADDRS[0]


def pym(addr=MAIN, **kw):
    kw.setdefault("connect_timeout", TIMEOUT)
    kw.setdefault("timeout", TIMEOUT)
    kw.setdefault("default_noreply", False)
    return PymClient(addr, **kw)


# ---------------------------------------------------------------- pymemcache

P = "pym:"


@check("pymemcache.binary_safe")
def _():
    c = pym()
    for i, size in enumerate((0, 1, 300, 65536, 500_000)):
        v = blob(size)
        eq(c.set(P + "bin%d" % i, v, flags=i), True, "set of %d bytes" % size)
        eq(c.get(P + "bin%d" % i), v, "get of %d bytes" % size)
    k = P + "k" * (250 - len(P))  # the longest key allowed
    eq(c.set(k, b"long key"), True, "set with a 250-byte key")
    eq(c.get(k), b"long key", "get with a 250-byte key")
    eq(c.set(P + "nr", b"noreply value", noreply=True), True, "set noreply")
    eq(c.get(P + "nr"), b"noreply value", "get after set noreply")
    c.close()


@check("pymemcache.serde_flags")
def _():
    c = pym(serde=pym_serde.pickle_serde)
    values = {P + "int": 42, P + "str": "héllo wörld", P + "dict": {"a": [1, 2.5, None]},
              P + "bytes": b"\x00\xff raw"}
    for k, v in values.items():
        eq(c.set(k, v), True, "set %s" % k)
    for k, v in values.items():
        eq(c.get(k), v, "get %s" % k)
    # the flags the serializer chose come back from the server unchanged
    raw = pym()
    got = raw.get_many(list(values))
    eq(sorted(got), sorted(values), "keys of a raw multi-get")
    c.close()
    raw.close()


@check("pymemcache.multi_get")
def _():
    c = pym()
    items = {P + "m%02d" % i: b"value %d" % i * (i + 1) for i in range(40)}
    eq(c.set_many(items), [], "set_many failed keys")
    keys = list(items) + [P + "missing1", P + "missing2"]
    eq(c.get_many(keys), items, "get_many")
    gm = c.gets_many(keys)
    eq(sorted(gm), sorted(items), "gets_many keys")
    for k, (v, cas) in gm.items():
        eq(v, items[k], "gets_many value of " + k)
        if not cas.isdigit():
            raise AssertionError("cas unique of %s is %r" % (k, cas))
    eq(c.get_many([P + "missing1"]), {}, "get_many of a missing key")
    c.close()


@check("pymemcache.add_replace_append_prepend")
def _():
    c = pym()
    c.delete(P + "arap")
    eq(c.replace(P + "arap", b"x"), False, "replace of a missing key")
    eq(c.append(P + "arap", b"x"), False, "append to a missing key")
    add_append_prepend_replace(c, P + "arap")
    c.close()


@check("pymemcache.cas")
def _():
    a, b = pym(), pym()
    token2 = cas_race(a, b, P + "cas")
    eq(a.cas(P + "cas-missing", b"x", token2), None, "cas on a missing key (NOT_FOUND)")
    a.close()
    b.close()


@check("pymemcache.incr_decr")
def _():
    c = pym()
    eq(c.set(P + "n", b"10"), True, "set")
    eq(c.incr(P + "n", 5), 15, "incr 5")
    eq(c.decr(P + "n", 3), 12, "decr 3")
    eq(c.decr(P + "n", 100), 0, "decr below zero stops at 0")
    eq(c.set(P + "n", b"100"), True, "set 100")
    eq(c.decr(P + "n", 1), 99, "decr to fewer digits")
    eq(c.get(P + "n"), b"99 ", "value after decr keeps its length")
    eq(c.set(P + "n", b"18446744073709551615"), True, "set 2^64-1")
    eq(c.incr(P + "n", 1), 0, "incr wraps at 2^64")
    c.delete(P + "nmissing")
    eq(c.incr(P + "nmissing", 1), None, "incr of a missing key")
    eq(c.decr(P + "nmissing", 1), None, "decr of a missing key")
    eq(c.set(P + "n", b"abc"), True, "set non-numeric")
    try:
        c.incr(P + "n", 1)
    except MemcacheClientError as e:
        if "non-numeric" not in str(e):
            raise AssertionError("unexpected error text: %s" % e)
    else:
        raise AssertionError("incr of a non-numeric value did not fail")
    c.close()


@check("pymemcache.delete")
def _():
    c = pym()
    eq(c.set(P + "del", b"x"), True, "set")
    eq(c.delete(P + "del"), True, "delete of an existing key")
    eq(c.get(P + "del"), None, "get after delete")
    eq(c.delete(P + "del"), False, "delete of a missing key")
    c.set_many({P + "d1": b"1", P + "d2": b"2"})
    eq(c.delete_many([P + "d1", P + "d2"]), True, "delete_many")
    eq(c.get_many([P + "d1", P + "d2"]), {}, "get_many after delete_many")
    c.close()


@check("pymemcache.touch_expiry")
def _():
    c = pym()
    eq(c.set(P + "exp", b"short", expire=2), True, "set with ttl 2")
    eq(c.set(P + "touched", b"kept", expire=2), True, "set with ttl 2")
    eq(c.set(P + "forever", b"stays"), True, "set with no ttl")
    eq(c.touch(P + "touched", 100), True, "touch to ttl 100")
    c.delete(P + "tmissing")
    eq(c.touch(P + "tmissing", 100), False, "touch of a missing key")
    eq(c.get(P + "exp"), b"short", "get before the ttl ran out")
    time.sleep(3.2)
    eq(c.get(P + "exp"), None, "get after the ttl ran out")
    eq(c.get(P + "touched"), b"kept", "get of the touched key")
    eq(c.get(P + "forever"), b"stays", "get of the key with no ttl")
    c.close()


@check("pymemcache.flush_all")
def _():
    c = pym()
    c.set_many({P + "f1": b"1", P + "f2": b"2"})
    eq(c.get(P + "f1"), b"1", "get before flush")
    eq(c.flush_all(), True, "flush_all")
    eq(c.get_many([P + "f1", P + "f2"]), {}, "get_many after flush_all")
    eq(c.add(P + "f1", b"again"), True, "add after flush_all")
    c.close()


@check("pymemcache.stats_version")
def _():
    c = pym()
    s = c.stats()
    for k in (b"pid", b"uptime", b"version", b"curr_items", b"total_items", b"get_hits",
              b"get_misses", b"cmd_get", b"cmd_set", b"curr_connections", b"bytes", b"limit_maxbytes"):
        if k not in s:
            raise AssertionError("stats has no %r" % k)
    c.set(P + "st", b"x")
    before = c.stats()
    c.get(P + "st")
    c.get(P + "st-missing")
    c.set(P + "st", b"y")
    after = c.stats()
    eq(after[b"get_hits"] - before[b"get_hits"], 1, "get_hits delta")
    eq(after[b"get_misses"] - before[b"get_misses"], 1, "get_misses delta")
    eq(after[b"cmd_get"] - before[b"cmd_get"], 2, "cmd_get delta")
    eq(after[b"cmd_set"] - before[b"cmd_set"], 1, "cmd_set delta")
    settings = c.stats("settings")
    if b"maxbytes" not in settings or b"tcpport" not in settings:
        raise AssertionError("stats settings lacks maxbytes/tcpport: %s" % short(sorted(settings)))
    eq(int(settings[b"tcpport"]), MAIN[1], "stats settings tcpport")
    v = c.version()
    eq(v, s[b"version"], "version reply vs stats version")
    c.close()


@check("pymemcache.hashclient_3_nodes")
def _():
    h = HashClient(ADDRS, connect_timeout=TIMEOUT, timeout=TIMEOUT, default_noreply=False,
                   retry_attempts=0, dead_timeout=60, ignore_exc=False)
    nodes = [pym(a) for a in ADDRS]
    for n in nodes:
        eq(n.flush_all(), True, "flush_all of node %s:%d" % n.server)
    items = {P + "h%03d" % i: b"hv%03d\r\n" % i for i in range(90)}
    eq(h.set_many(items), [], "HashClient set_many failed keys")
    eq(h.get_many(list(items)), items, "HashClient get_many")
    # every key sits on exactly one node, and the keys are spread out
    per_node = [n.get_many(list(items)) for n in nodes]
    for k, v in items.items():
        holders = [i for i, got in enumerate(per_node) if k in got]
        eq(len(holders), 1, "number of nodes holding %s" % k)
        eq(per_node[holders[0]][k], v, "value of %s on its node" % k)
    used = sum(1 for got in per_node if got)
    if used < 3:
        raise AssertionError("90 keys landed on only %d of 3 nodes" % used)
    eq(h.set(P + "hn", b"7"), True, "HashClient set")
    eq(h.incr(P + "hn", 3), 10, "HashClient incr")
    v, token = h.gets(P + "hn")
    eq(v, b"10", "HashClient gets")
    eq(h.cas(P + "hn", b"11", token), True, "HashClient cas")
    eq(h.get(P + "hn"), b"11", "HashClient get after cas")
    eq(h.delete_many(list(items)), True, "HashClient delete_many")
    eq(h.get_many(list(items)), {}, "HashClient get_many after delete_many")
    h.close()
    for n in nodes:
        n.close()


# ---------------------------------------------------------- python-memcached

Q = "pym2:"


def pmc(**kw):
    return memcache.Client(["%s:%d" % MAIN], socket_timeout=TIMEOUT, dead_retry=0, **kw)


@check("python-memcached.binary_safe")
def _():
    c = pmc()
    for i, size in enumerate((1, 300, 65536, 400_000)):
        v = blob(size)
        if not c.set(Q + "bin%d" % i, v):
            raise AssertionError("set of %d bytes failed" % size)
        eq(c.get(Q + "bin%d" % i), v, "get of %d bytes" % size)
    c.disconnect_all()


@check("python-memcached.types_flags")
def _():
    c = pmc()
    values = {Q + "int": 1234, Q + "str": "unicode ✓ text", Q + "list": [1, "two", {"three": 3.0}],
              Q + "big": "x" * 200_000}
    for k, v in values.items():
        if not c.set(k, v):
            raise AssertionError("set of %s failed" % k)
    for k, v in values.items():
        eq(c.get(k), v, "get of %s" % k)
    # min_compress_len: the value is stored zlib-compressed with flag 8
    if not c.set(Q + "z", "compress me " * 1000, min_compress_len=100):
        raise AssertionError("compressed set failed")
    eq(c.get(Q + "z"), "compress me " * 1000, "get of a compressed value")
    raw = pym()
    stored = raw.get(Q + "z")
    if stored is None or len(stored) >= 12000:
        raise AssertionError("the value was not stored compressed: %s bytes" % (None if stored is None else len(stored)))
    raw.close()
    c.disconnect_all()


@check("python-memcached.multi_get")
def _():
    c = pmc()
    items = {"k%02d" % i: "val%d" % i for i in range(30)}
    eq(c.set_multi(items, key_prefix=Q), [], "set_multi failed keys")
    eq(c.get_multi(list(items) + ["nokey"], key_prefix=Q), items, "get_multi")
    eq(c.delete_multi(list(items)[:10], key_prefix=Q), 1, "delete_multi")
    eq(len(c.get_multi(list(items), key_prefix=Q)), 20, "keys left after delete_multi")
    c.disconnect_all()


@check("python-memcached.cas")
def _():
    a = pmc(cache_cas=True)
    b = pmc()
    a.set(Q + "cas", "v1")
    eq(a.gets(Q + "cas"), "v1", "gets")
    b.set(Q + "cas", "v2")
    eq(a.cas(Q + "cas", "v3"), 0, "cas after a concurrent set (EXISTS)")
    eq(b.get(Q + "cas"), "v2", "value after the refused cas")
    eq(a.gets(Q + "cas"), "v2", "gets again")
    eq(bool(a.cas(Q + "cas", "v3")), True, "cas with the current unique")
    eq(b.get(Q + "cas"), "v3", "value after the cas")
    a.disconnect_all()
    b.disconnect_all()


@check("python-memcached.incr_decr")
def _():
    c = pmc()
    c.set(Q + "n", "41")
    eq(c.incr(Q + "n"), 42, "incr")
    eq(c.incr(Q + "n", 8), 50, "incr 8")
    eq(c.decr(Q + "n", 60), 0, "decr below zero")
    c.delete(Q + "nmissing")
    eq(c.incr(Q + "nmissing"), None, "incr of a missing key")
    c.disconnect_all()


@check("python-memcached.add_replace_append_prepend_delete")
def _():
    c = pmc()
    c.delete(Q + "a")
    eq(c.replace(Q + "a", "x"), 0, "replace of a missing key")
    eq(bool(c.add(Q + "a", "mid")), True, "add")
    eq(c.add(Q + "a", "again"), 0, "add of an existing key")
    eq(bool(c.append(Q + "a", "-end")), True, "append")
    eq(bool(c.prepend(Q + "a", "start-")), True, "prepend")
    eq(c.get(Q + "a"), "start-mid-end", "value after append/prepend")
    eq(c.delete(Q + "a"), 1, "delete")
    eq(c.get(Q + "a"), None, "get after delete")
    c.disconnect_all()


@check("python-memcached.touch_expiry_flush")
def _():
    c = pmc()
    c.set(Q + "e", "short", time=2)
    c.set(Q + "t", "kept", time=2)
    eq(bool(c.touch(Q + "t", 100)), True, "touch")
    time.sleep(3.2)
    eq(c.get(Q + "e"), None, "get after the ttl ran out")
    eq(c.get(Q + "t"), "kept", "get of the touched key")
    c.flush_all()
    eq(c.get(Q + "t"), None, "get after flush_all")
    c.disconnect_all()


@check("python-memcached.stats")
def _():
    c = pmc()
    st = c.get_stats()
    eq(len(st), 1, "servers answering stats")
    s = st[0][1]
    for k in ("pid", "uptime", "version", "curr_items", "get_hits", "cmd_get"):
        if k not in s:
            raise AssertionError("stats has no %r" % k)
    settings = c.get_stats("settings")[0][1]
    eq(settings.get("tcpport"), str(MAIN[1]), "stats settings tcpport")
    c.set(Q + "slab", "x" * 100)
    items = c.get_stats("items")[0][1]
    if not any(k.startswith("items:") and k.endswith(":number") and int(v) > 0 for k, v in items.items()):
        raise AssertionError("stats items lists no items: %s" % short(items))
    slabs = c.get_stats("slabs")[0][1]
    if "active_slabs" not in slabs or "total_malloced" not in slabs:
        raise AssertionError("stats slabs lacks active_slabs/total_malloced: %s" % short(slabs))
    c.disconnect_all()
