#!/usr/bin/python3
"""Real-client checks with pylibmc (Debian python3-pylibmc, over Debian's
libmemcached) in binary mode, `pylibmc.Client([...], binary=True)`,
unmodified.

    /usr/bin/python3 pylibmc_binary.py HOST:PORT

The client talks to the server through a recording relay (wiretap.py), and
`pylibmc.binary_on_the_wire` checks that every byte it sent was a
binary-protocol request. Prints one line per check: `PASS name` or
`FAIL name: reason`; exits 0 when every check ran. Run by
scripts/clients.sh. Flushes the server.
"""

import atexit
import os
import sys
import time

import pylibmc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (  # noqa: E402
    add_append_prepend_replace, blob, cas_race, check, eq, raises, short)
from wiretap import WireTap, binary_opcodes  # noqa: E402

if len(sys.argv) != 2 or ":" not in sys.argv[1]:
    sys.exit("usage: pylibmc_binary.py HOST:PORT")
HOST, PORT = sys.argv[1].rsplit(":", 1)
TAP = WireTap((HOST, int(PORT)))
atexit.register(TAP.close)
BEHAVIORS = {"cas": True, "connect_timeout": 5000, "receive_timeout": 5_000_000,
             "send_timeout": 5_000_000}


CLIENTS = []


def client():
    c = pylibmc.Client(["127.0.0.1:%d" % TAP.port], binary=True, behaviors=BEHAVIORS)
    CLIENTS.append(c)
    if not c.binary:
        raise AssertionError("pylibmc.Client(binary=True) is not in binary mode")
    return c


P = "plm:"


@check("pylibmc.binary_set_get")
def _():
    c = client()
    for i, size in enumerate((0, 1, 300, 65536, 500_000)):
        v = blob(size)
        eq(c.set(P + "bin%d" % i, v), True, "set of %d bytes" % size)
        eq(c.get(P + "bin%d" % i), v, "get of %d bytes" % size)
    # pylibmc keeps the type in the flags: str, int, pickled objects
    values = {P + "str": "héllo wörld", P + "int": 42, P + "long": 2**40,
              P + "bool": True, P + "obj": {"a": [1, 2.5, None]}}
    for k, v in values.items():
        eq(c.set(k, v), True, "set " + k)
    for k, v in values.items():
        eq(c.get(k), v, "get " + k)
    k = P + "k" * (250 - len(P))
    eq(c.set(k, b"long key"), True, "set with a 250-byte key")
    eq(c.get(k), b"long key", "get with a 250-byte key")
    eq(c.get(P + "missing"), None, "get of a missing key")


@check("pylibmc.binary_multi_get")
def _():
    c = client()
    items = {P + "m%02d" % i: b"value %d" % i * (i + 1) for i in range(40)}
    eq(c.set_multi(items), [], "set_multi failed keys")
    keys = list(items) + [P + "missing1", P + "missing2"]
    eq(c.get_multi(keys), items, "get_multi")
    eq(c.get_multi([P + "missing1"]), {}, "get_multi of a missing key")
    eq(c.set_multi({"a": b"1", "b": b"2"}, key_prefix=P + "pfx:"), [], "set_multi with key_prefix")
    eq(c.get_multi(["a", "b", "c"], key_prefix=P + "pfx:"), {"a": b"1", "b": b"2"},
       "get_multi with key_prefix")


@check("pylibmc.binary_cas")
def _():
    a, b = client(), client()
    token2 = cas_race(a, b, P + "cas")
    raises(pylibmc.NotFound, lambda: a.cas(P + "cas-missing", b"x", token2), "cas on a missing key")
    eq(a.gets(P + "cas-missing"), (None, None), "gets of a missing key")


@check("pylibmc.binary_incr_decr")
def _():
    c = client()
    eq(c.set(P + "n", b"10"), True, "set")
    eq(c.incr(P + "n", 5), 15, "incr 5")
    eq(c.decr(P + "n", 3), 12, "decr 3")
    eq(c.decr(P + "n", 100), 0, "decr below zero stops at 0")
    eq(c.incr(P + "n"), 1, "incr by the default 1")
    eq(c.set(P + "n", b"18446744073709551615"), True, "set 2^64-1")
    eq(c.incr(P + "n", 1), 0, "incr wraps at 2^64")
    eq(c.set(P + "n", 100), True, "set an int")
    eq(c.decr(P + "n", 1), 99, "decr to fewer digits")
    eq(c.get(P + "n"), 99, "get after decr")
    c.delete(P + "nmissing")
    raises(pylibmc.NotFound, lambda: c.incr(P + "nmissing", 1), "incr of a missing key")
    raises(pylibmc.NotFound, lambda: c.decr(P + "nmissing", 1), "decr of a missing key")
    eq(c.set(P + "n", b"abc"), True, "set non-numeric")
    raises(pylibmc.Error, lambda: c.incr(P + "n", 1), "incr of a non-numeric value")
    eq(c.get(P + "n"), b"abc", "value after the refused incr")
    eq(c.set_multi({P + "i1": b"1", P + "i2": b"2"}), [], "set_multi")
    c.incr_multi([P + "i1", P + "i2"], delta=10)
    eq(c.get_multi([P + "i1", P + "i2"]), {P + "i1": b"11", P + "i2": b"12"}, "after incr_multi")


@check("pylibmc.binary_add_replace_append_prepend")
def _():
    c = client()
    c.delete(P + "arap")
    raises(pylibmc.NotFound, lambda: c.replace(P + "arap", b"x"), "replace of a missing key")
    eq(c.append(P + "arap", b"x"), False, "append to a missing key")
    eq(c.prepend(P + "arap", b"x"), False, "prepend to a missing key")
    add_append_prepend_replace(c, P + "arap")


@check("pylibmc.binary_delete")
def _():
    c = client()
    eq(c.set(P + "del", b"x"), True, "set")
    eq(c.delete(P + "del"), True, "delete of a stored key")
    eq(c.get(P + "del"), None, "get after delete")
    eq(c.delete(P + "del"), False, "delete of a missing key")
    eq(c.set_multi({P + "d1": b"1", P + "d2": b"2"}), [], "set_multi")
    eq(c.delete_multi([P + "d1", P + "d2"]), True, "delete_multi of stored keys")
    eq(c.get_multi([P + "d1", P + "d2"]), {}, "get_multi after delete_multi")
    eq(c.delete_multi([P + "d1"]), False, "delete_multi of a missing key")


@check("pylibmc.binary_touch_expiry")
def _():
    c = client()
    eq(c.set(P + "e", b"short", time=1), True, "set with a 1 s ttl")
    eq(c.set(P + "t", b"kept", time=1), True, "set with a 1 s ttl")
    eq(c.set(P + "t2", b"shortened", time=100), True, "set with a 100 s ttl")
    eq(c.touch(P + "t", 100), True, "touch to 100 s")
    eq(c.touch(P + "t2", 1), True, "touch to 1 s")
    eq(c.touch(P + "touch-missing", 100), False, "touch of a missing key")
    time.sleep(2.2)
    eq(c.get(P + "e"), None, "get after the ttl ran out")
    eq(c.get(P + "t"), b"kept", "get of the key touched to 100 s")
    eq(c.get(P + "t2"), None, "get of the key touched to 1 s")


@check("pylibmc.binary_stats_flush")
def _():
    c = client()
    st = c.get_stats()
    eq(len(st), 1, "servers answering stats")
    s = st[0][1]
    for k in ("pid", "uptime", "version", "curr_items", "get_hits", "cmd_get", "limit_maxbytes"):
        if k not in s:
            raise AssertionError("stats has no %r: %s" % (k, short(s)))
    eq(s["version"], b"1.6.18", "stats version")
    eq(c.set(P + "f", b"x"), True, "set")
    eq(c.flush_all(), True, "flush_all")
    eq(c.get(P + "f"), None, "get after flush_all")


@check("pylibmc.binary_on_the_wire")
def _():
    for c in CLIENTS:
        c.disconnect_all()  # sends quit; before the relay closes
    streams = [s for s in TAP.sent() if s]
    if not streams:
        raise AssertionError("the relay saw no traffic")
    counts = {}
    for s in streams:
        for name in binary_opcodes(s):
            counts[name] = counts.get(name, 0) + 1
    for names in (("get", "getk", "getq", "getkq"), ("set",), ("add",), ("replace",),
                  ("delete",), ("increment",), ("decrement",), ("append",), ("prepend",),
                  ("touch",), ("flush",), ("stat",)):
        if not any(counts.get(n) or counts.get(n + "q") for n in names):
            raise AssertionError("no %s request among those sent: %s" % ("/".join(names), counts))
    print("# pylibmc %s (libmemcached %s) sent over %d connections: %s" % (
        pylibmc.__version__, pylibmc.libmemcached_version, len(streams), counts), file=sys.stderr)
