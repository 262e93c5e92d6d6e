"""Real-client checks with meta-memcache (PyPI `meta-memcache`, RevenueCat's
client), which speaks only the meta commands (mg, ms, md, ma, mn), unmodified.

    PYTHON meta_memcache_check.py DEPS_DIR HOST:PORT HOST:PORT HOST:PORT

DEPS_DIR is the pip --target directory that scripts/clients.sh --install
fills (meta-memcache and its wheels, built for that PYTHON). The first
address is the main target; `meta-memcache.hash_ring` spreads keys over all
three. The client talks to the main server through a recording relay
(wiretap.py), and `meta-memcache.meta_commands_only` checks that every byte
it sent was a meta command. Setup (flush, per-node look-ups) uses a plain
socket, not the relay. Prints one line per check: `PASS name` or
`FAIL name: reason`; exits 0 when every check ran. Run by scripts/clients.sh.
"""

import atexit
import os
import socket
import sys

if len(sys.argv) != 5:
    sys.exit("usage: meta_memcache_check.py DEPS_DIR HOST:PORT HOST:PORT HOST:PORT")
sys.path.insert(0, sys.argv[1])
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

from meta_memcache import (  # noqa: E402
    CacheClient,
    Conflict,
    Key,
    LeasePolicy,
    Miss,
    NotStored,
    RecachePolicy,
    RequestFlags,
    ServerAddress,
    SetMode,
    StalePolicy,
    Success,
    Value,
    connection_pool_factory_builder,
)
import meta_memcache  # noqa: E402

from checks import check, eq, is_  # noqa: E402
from wiretap import WireTap, meta_commands  # noqa: E402

TIMEOUT = 5


def parse(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


ADDRS = [parse(a) for a in sys.argv[2:]]
MAIN = ADDRS[0]
TAP = WireTap(MAIN)
atexit.register(TAP.close)


def client(addrs=None):
    """A CacheClient on the tapped main server (or on addrs, untapped)."""
    servers = [ServerAddress(host="127.0.0.1", port=TAP.port)] if addrs is None else [
        ServerAddress(host=h, port=p) for h, p in addrs]
    return CacheClient.cache_client_from_servers(
        servers=servers,
        # With its default 4 KiB read buffer meta-memcache 4.3.0 takes about
        # 15 s to read a 600 KB value (from memcached as from memcrab); a
        # buffer larger than the values makes that instant.
        connection_pool_factory_fn=connection_pool_factory_builder(
            connection_timeout=TIMEOUT, recv_timeout=TIMEOUT, read_buffer_size=1 << 20),
        raise_on_server_error=True,
    )


def raw(addr, request):
    """Sends request on a fresh plain socket, returns the reply up to the
    first line in the reply that ends it (END/OK/HD/EN/VA data...)."""
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        s.sendall(request + b"mn\r\n")
        data = b""
        while not data.endswith(b"MN\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data[:-4] if data.endswith(b"MN\r\n") else data


for a in ADDRS:
    raw(a, b"flush_all\r\n")

P = "mm:"


@check("meta-memcache.set_get_values")
def _():
    c = client()
    values = {P + "bytes": bytes(range(256)) + b"\r\nEND\r\n", P + "str": "héllo wörld",
              P + "int": 42, P + "dict": {"a": [1, 2.5, None]}, P + "empty": b""}
    for k, v in values.items():
        eq(c.set(k, v, ttl=300), True, "set " + k)
    for k, v in values.items():
        eq(c.get(k), v, "get " + k)
    big = os.urandom(600_000)
    eq(c.set(P + "big", big, ttl=300), True, "set of 600000 bytes")
    eq(c.get(P + "big"), big, "get of 600000 bytes")
    # a key with spaces and non-ASCII goes as a base64 key (mg/ms ... b)
    for k in (Key("🍺 beer"), Key("spaced key\tand tab"), Key("k" * 300)):
        eq(c.set(k, b"v:" + k.key.encode(), ttl=300), True, "set of key %r" % k.key[:20])
        eq(c.get(k), b"v:" + k.key.encode(), "get of key %r" % k.key[:20])
    eq(c.get(P + "missing"), None, "get of a missing key")
    # the client flag chose the type, and comes back as stored
    r = c.meta_get(Key(P + "int"), flags=RequestFlags(return_client_flag=True, return_value=True))
    if not isinstance(r, Value) or r.flags.client_flag is None:
        raise AssertionError("mg with f returned %r" % (r,))


@check("meta-memcache.cas")
def _():
    a, b = client(), client()
    eq(a.set(P + "cas", b"v1", ttl=300), True, "set")
    v, token = a.get_cas(P + "cas")
    eq(v, b"v1", "get_cas value")
    if not isinstance(token, int):
        raise AssertionError("get_cas token %r" % (token,))
    eq(b.set(P + "cas", b"v2", ttl=300), True, "set by a second client")
    eq(a.set(P + "cas", b"v3", ttl=300, cas_token=token), False, "set with a stale cas token")
    is_(a.meta_set(Key(P + "cas"), b"v3", flags=RequestFlags(cas_token=token)), Conflict,
        "ms with a stale C token answers EX")
    v, token2 = a.get_cas(P + "cas")
    eq(v, b"v2", "value after the refused cas")
    if token2 == token:
        raise AssertionError("cas token did not change after a set: %r" % token)
    token3 = a.set_cas(P + "cas", b"v3", ttl=300, cas_token=token2)
    if not isinstance(token3, int) or token3 == token2:
        raise AssertionError("set_cas with the current token returned %r" % (token3,))
    eq(b.get_cas(P + "cas"), (b"v3", token3), "value and token after set_cas")
    eq(a.set(P + "cas", b"v4", ttl=300, cas_token=token2), False, "set reusing a spent token")
    got = a.multi_get_cas([P + "cas", P + "cas-missing"])
    eq(got[Key(P + "cas")], (b"v3", token3), "multi_get_cas of a stored key")
    eq(got[Key(P + "cas-missing")], (None, None), "multi_get_cas of a missing key")
    eq(a.set(P + "cas-missing", b"x", ttl=300, cas_token=token3), False, "cas set of a missing key")
    is_(a.meta_set(Key(P + "cas-missing"), b"x", flags=RequestFlags(cas_token=token3)), Miss,
        "ms with C of a missing key answers NF")


@check("meta-memcache.set_modes")
def _():
    c = client()
    k = P + "modes"
    eq(c.set(k, b"x", ttl=300, set_mode=SetMode.REPLACE), False, "replace of a missing key")
    eq(c.set(k, b"x", ttl=300, set_mode=SetMode.APPEND), False, "append to a missing key")
    eq(c.set(k, b"x", ttl=300, set_mode=SetMode.PREPEND), False, "prepend to a missing key")
    is_(c.meta_set(Key(k), b"x", flags=RequestFlags(mode=SetMode.REPLACE.value)), NotStored,
        "ms MR of a missing key answers NS")
    eq(c.set(k, b"mid", ttl=300, set_mode=SetMode.ADD), True, "add of a new key")
    eq(c.set(k, b"other", ttl=300, set_mode=SetMode.ADD), False, "add of an existing key")
    eq(c.refill(k, b"other", ttl=300), False, "refill (add) of an existing key")
    eq(c.set(k, b"\r\nend", ttl=300, set_mode=SetMode.APPEND), True, "append")
    eq(c.set(k, b"start\x00", ttl=300, set_mode=SetMode.PREPEND), True, "prepend")
    eq(c.get(k), b"start\x00mid\r\nend", "value after append and prepend")
    eq(c.set(k, b"new", ttl=300, set_mode=SetMode.REPLACE), True, "replace of an existing key")
    eq(c.get(k), b"new", "value after replace")
    eq(c.refill(P + "refill", b"filled", ttl=300), True, "refill of a missing key")
    eq(c.get(P + "refill"), b"filled", "value after refill")


@check("meta-memcache.lease")
def _():
    # get_or_lease: the first client to miss wins the lease (mg ... N W) and
    # fills the key; the others see the empty placeholder (Z) and wait.
    a, b = client(), client()
    k = P + "lease"
    waits = []
    policy = LeasePolicy(ttl=30, miss_retries=3, miss_retry_wait=0.05)
    v, token = a.get_or_lease_cas(k, policy, lease_wait_fn=waits.append)
    eq(v, None, "the lease winner's value")
    eq(waits, [], "the winner waited")
    if not isinstance(token, int):
        raise AssertionError("no cas token with the lease: %r" % (token,))
    r = b.meta_get(Key(k), flags=RequestFlags(return_value=True, vivify_on_miss_ttl=30))
    if not (isinstance(r, Value) and r.size == 0 and r.flags.win is False):
        raise AssertionError("a second mg N during the lease: %r (want an empty value with Z)" % (r,))
    eq(b.get_or_lease(k, policy, lease_wait_fn=waits.append), None, "a loser's value")
    eq(len(waits), 2, "a loser's retries (waits before attempts 2 and 3)")
    eq(a.set(k, b"computed", ttl=300, cas_token=token), True, "the winner fills the key with its token")
    eq(b.get_or_lease(k, policy, lease_wait_fn=waits.append), b"computed", "a loser's value after the fill")
    eq(len(waits), 2, "waits after the fill")


@check("meta-memcache.recache")
def _():
    # RecachePolicy: a read of a key whose TTL is below the recache TTL wins
    # the right to recompute it (W, seen as a miss); other readers keep
    # getting the value (Z) until it is rewritten.
    a, b = client(), client()
    k = P + "recache"
    eq(a.set(k, b"old", ttl=100), True, "set with ttl 100")
    policy = RecachePolicy(ttl=200)
    v, token = a.get_cas(k, recache_policy=policy)
    eq(v, None, "the recache winner sees a miss")
    eq(b.get(k, recache_policy=policy), b"old", "another reader keeps the value")
    r = b.meta_get(Key(k), flags=RequestFlags(return_value=True, recache_ttl=200))
    if not (isinstance(r, Value) and r.flags.win is False):
        raise AssertionError("mg R during a recache: %r (want the value with Z)" % (r,))
    eq(a.set(k, b"new", ttl=1000, cas_token=token), True, "the winner rewrites the key")
    eq(b.get(k, recache_policy=policy), b"new", "readers get the new value")
    eq(a.get(k, recache_policy=policy), b"new", "a TTL above the recache TTL does not win again")


@check("meta-memcache.stale_while_revalidate")
def _():
    # StalePolicy: delete marks the item stale (md ... I T30) instead of
    # removing it; the next reader wins the recompute (W, seen as a miss),
    # the others get the stale value (X Z) until the winner writes.
    a, b = client(), client()
    k = P + "stale"
    stale = StalePolicy(mark_stale_on_deletion_ttl=30, mark_stale_on_cas_mismatch=True)
    eq(a.set(k, b"fresh", ttl=300), True, "set")
    eq(a.delete(k, stale_policy=stale), True, "delete marking stale")
    v, token = a.get_cas(k)
    eq(v, None, "the first reader after the invalidation wins (sees a miss)")
    eq(b.get(k), b"fresh", "another reader gets the stale value")
    r = b.meta_get(Key(k), flags=RequestFlags(return_value=True, return_ttl=True, return_cas_token=True))
    if not (isinstance(r, Value) and r.flags.stale and r.flags.win is False):
        raise AssertionError("mg of a stale item: %r (want X and Z)" % (r,))
    if r.flags.ttl is None or not 0 < r.flags.ttl <= 30:
        raise AssertionError("TTL of the stale item: %r (want at most 30)" % (r.flags.ttl,))
    eq(a.set(k, b"revalidated", ttl=300, cas_token=token, stale_policy=stale), True,
       "the winner writes with its token")
    r = b.meta_get(Key(k), flags=RequestFlags(return_value=True))
    if not (isinstance(r, Value) and not r.flags.stale and r.flags.win is None):
        raise AssertionError("mg after the rewrite: %r (want a fresh value)" % (r,))
    eq(b.get(k), b"revalidated", "value after the rewrite")
    # a write with an older token and mark_stale_on_cas_mismatch (ms ... I)
    # stores the value but as stale
    eq(a.set(k, b"late", ttl=300, cas_token=token, stale_policy=stale), True,
       "a write with a spent token and I")
    r = b.meta_get(Key(k), flags=RequestFlags(return_value=True))
    if not (isinstance(r, Value) and r.flags.stale):
        raise AssertionError("mg after ms I with an old token: %r (want X)" % (r,))


@check("meta-memcache.touch")
def _():
    c = client()
    k = P + "touch"
    eq(c.set(k, b"x", ttl=100), True, "set with ttl 100")
    eq(c.touch(k, 1000), True, "touch of a stored key")
    eq(c.touch(P + "touch-missing", 1000), False, "touch of a missing key")
    r = c.meta_get(Key(k), flags=RequestFlags(return_ttl=True, return_value=False))
    if not (isinstance(r, Success) and r.flags.ttl is not None and 990 <= r.flags.ttl <= 1000):
        raise AssertionError("TTL after touch: %r" % (r,))
    eq(c.get(k, touch_ttl=5000), b"x", "get with touch_ttl")
    r = c.meta_get(Key(k), flags=RequestFlags(return_ttl=True, return_value=False))
    if not (isinstance(r, Success) and r.flags.ttl is not None and 4990 <= r.flags.ttl <= 5000):
        raise AssertionError("TTL after a get with touch_ttl: %r" % (r,))
    eq(c.set(P + "forever", b"y", ttl=0), True, "set without expiry")
    r = c.meta_get(Key(P + "forever"), flags=RequestFlags(return_ttl=True, return_value=False))
    eq(r.flags.ttl if isinstance(r, Success) else r, -1, "TTL of an item without expiry")


@check("meta-memcache.delta")
def _():
    c = client()
    k = P + "n"
    eq(c.delta(k, 1), False, "delta of a missing key")
    eq(c.delta_and_get(k, 1), None, "delta_and_get of a missing key")
    eq(c.delta_initialize_and_get(k, 5, initial_value=10, initial_ttl=300), 10,
       "delta_initialize_and_get of a missing key gives the initial value")
    eq(c.delta_and_get(k, 5), 15, "+5")
    eq(c.delta_and_get(k, -3), 12, "-3")
    eq(c.delta_and_get(k, -100), 0, "a decrement stops at 0")
    eq(c.delta(k, 7), True, "delta")
    # a decrement rewrites the number in place, padded with spaces to its
    # old length ("12" -> "0 "), and the increment after it too ("7 ")
    eq(c.get(k), "7 ", "get of the counter (flags 0: a str)")
    eq(c.delta_initialize(k, 2, initial_value=100, initial_ttl=300), True,
       "delta_initialize of an existing key")
    eq(c.delta_and_get(k, 0), 9, "counter after delta_initialize of an existing key")
    eq(c.set(k, b"18446744073709551615", ttl=300), True, "set 2^64-1")
    eq(c.delta_and_get(k, 1), 0, "+1 wraps at 2^64")
    eq(c.set(P + "text", b"abc", ttl=300), True, "set a non-numeric value")
    # the server answers CLIENT_ERROR, which meta-memcache 4.3.0 does not
    # parse: it raises and drops the connection
    try:
        c.delta(P + "text", 1)
    except meta_memcache.MemcacheServerError:
        pass
    else:
        raise AssertionError("delta of a non-numeric value did not fail")
    eq(c.get(P + "text"), b"abc", "a non-numeric value after a refused delta")
    v, token = c.get_cas(k)
    eq(c.delta_and_get(k, 1, cas_token=token + 1000), None, "delta with a wrong cas token")
    eq(c.delta_and_get(k, 1, cas_token=token), 1, "delta with the current cas token")


@check("meta-memcache.delete")
def _():
    c = client()
    k = P + "del"
    eq(c.set(k, b"x", ttl=300), True, "set")
    eq(c.delete(k), True, "delete of a stored key")
    eq(c.get(k), None, "get after delete")
    eq(c.delete(k), False, "delete of a missing key")
    eq(c.invalidate(k), True, "invalidate of a missing key")
    eq(c.set(k, b"x", ttl=300), True, "set again")
    v, token = c.get_cas(k)
    eq(c.delete(k, cas_token=token + 1000), False, "delete with a wrong cas token")
    eq(c.get(k), b"x", "get after the refused delete")
    eq(c.delete(k, cas_token=token), True, "delete with the current cas token")
    eq(c.set(k, b"quiet", ttl=300), True, "set")
    eq(c.delete(k, no_reply=True), True, "delete with no_reply (q)")
    eq(c.get(k), None, "get after a quiet delete")


@check("meta-memcache.multi_get_noreply")
def _():
    c = client()
    items = {P + "m%02d" % i: b"value %d" % i * (i + 1) for i in range(40)}
    for k, v in items.items():
        eq(c.set(k, v, ttl=300, no_reply=True), True, "set with no_reply (q) of " + k)
    keys = list(items) + [P + "missing1", P + "missing2"]
    got = c.multi_get(keys)
    eq(len(got), len(keys), "multi_get answers")
    for k in keys:
        eq(got[Key(k)], items.get(k), "multi_get of " + k)
    got = c.multi_get([P + "m00", P + "m01"], touch_ttl=1000)
    eq(got[Key(P + "m01")], items[P + "m01"], "multi_get with touch_ttl")


@check("meta-memcache.hash_ring")
def _():
    c = client(ADDRS)
    keys = ["ring:%03d" % i for i in range(90)]
    for k in keys:
        eq(c.set(k, k.encode(), ttl=300), True, "set " + k)
    got = c.multi_get(keys)
    for k in keys:
        eq(got[Key(k)], k.encode(), "multi_get of " + k)
    per_node = [0, 0, 0]
    for k in keys:
        found = [i for i, a in enumerate(ADDRS) if raw(a, b"mg %s v\r\n" % k.encode()).startswith(b"VA ")]
        if len(found) != 1:
            raise AssertionError("%s is on nodes %s, want exactly one" % (k, found))
        per_node[found[0]] += 1
    if 0 in per_node:
        raise AssertionError("keys per node %s: a node got none" % per_node)


@check("meta-memcache.meta_commands_only")
def _():
    streams = [s for s in TAP.sent() if s]
    if not streams:
        raise AssertionError("the relay saw no traffic")
    counts = {}
    for s in streams:
        for name in meta_commands(s):
            counts[name] = counts.get(name, 0) + 1
    for name in ("mg", "ms", "md", "ma"):
        if not counts.get(name):
            raise AssertionError("no %s among the commands sent: %s" % (name, counts))
    print("# meta-memcache %s sent over %d connections: %s" % (
        meta_memcache.__version__, len(streams), counts), file=sys.stderr)
