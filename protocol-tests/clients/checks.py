"""What the Python client checks share: one check per decorated function,
printed as `PASS name` or `FAIL name: reason` (scripts/clients.sh counts
them), and assertions that say what differed."""

import os
import sys
import traceback


def short(v, n=80):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %s, want %s" % (what, short(got), short(want)))


def is_(got, cls, what):
    if not isinstance(got, cls):
        raise AssertionError("%s: got %s, want %s" % (what, short(got), cls.__name__))


def raises(exc, fn, what):
    try:
        got = fn()
    except exc:
        return
    raise AssertionError("%s: returned %s, want %s raised" % (what, short(got), exc.__name__))


def check(name):
    """Runs the decorated function at once as one check."""

    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any failure is the check's
            msg = "%s: %s" % (type(e).__name__, e)
            print("FAIL %s: %s" % (name, " ".join(msg.split())), flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            print("PASS %s" % name, flush=True)
        return fn

    return run


def blob(n):
    """Every byte value, CR LF and 'END' inside, then pseudo-random bytes."""
    head = bytes(range(256)) + b"\r\nEND\r\n\r\nVALUE x 0 1\r\n" + b"\x00" * 16
    return (head + os.urandom(max(0, n - len(head))))[:n]


def cas_race(a, b, key):
    """The cas conversation every client runs, over two connections `a` and
    `b`: a token goes stale when `b` sets the key, the current one wins
    once. Returns the spent token (for the client's missing-key case)."""
    eq(a.set(key, b"v1"), True, "set")
    v, token = a.gets(key)
    eq(v, b"v1", "gets value")
    eq(b.set(key, b"v2"), True, "set by a second connection")
    eq(a.cas(key, b"v3", token), False, "cas with a stale token (EXISTS)")
    eq(a.get(key), b"v2", "value after the refused cas")
    v, token2 = a.gets(key)
    if token2 == token:
        raise AssertionError("cas unique did not change after a set: %r" % token)
    eq(a.cas(key, b"v3", token2), True, "cas with the current token")
    eq(b.get(key), b"v3", "value after the cas")
    eq(a.cas(key, b"v4", token2), False, "cas reusing a spent token")
    a.delete(key + "-missing")
    return token2


def add_append_prepend_replace(c, key):
    """What every client's add/append/prepend/replace check runs once `key`
    is known to be missing: add only when missing, binary-safe append and
    prepend, replace only when present."""
    eq(c.add(key, b"mid"), True, "add of a new key")
    eq(c.add(key, b"other"), False, "add of an existing key")
    eq(c.append(key, b"\r\nend"), True, "append")
    eq(c.prepend(key, b"start\x00"), True, "prepend")
    eq(c.get(key), b"start\x00mid\r\nend", "value after append and prepend")
    eq(c.replace(key, b"new"), True, "replace of an existing key")
    eq(c.get(key), b"new", "value after replace")
