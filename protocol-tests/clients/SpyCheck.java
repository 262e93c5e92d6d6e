// Real-client checks with spymemcached (Debian libspymemcached-java), unmodified.
//
//   javac -cp /usr/share/java/spymemcached.jar -d OUT SpyCheck.java
//   java -cp OUT:/usr/share/java/spymemcached.jar SpyCheck HOST:PORT
//
// The text-protocol checks use DefaultConnectionFactory; the check
// spymemcached.binary_factory does the same round trips through
// BinaryConnectionFactory (scripts/clients.sh lists it as an expected failure
// while the server does not speak the binary protocol).
// Prints one line per check: `PASS name` or `FAIL name: reason`. Exits 0 when
// every check ran, whatever their results. Run by scripts/clients.sh.

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import net.spy.memcached.AddrUtil;
import net.spy.memcached.BinaryConnectionFactory;
import net.spy.memcached.CASResponse;
import net.spy.memcached.CASValue;
import net.spy.memcached.ConnectionFactory;
import net.spy.memcached.DefaultConnectionFactory;
import net.spy.memcached.MemcachedClient;

public class SpyCheck {
    static final long OP_TIMEOUT_MS = 3000;
    static final String P = "spy:";
    static List<InetSocketAddress> addrs;

    interface Body {
        void run(MemcachedClient c) throws Exception;
    }

    static void fail(String what, Object got, Object want) {
        throw new AssertionError(what + ": got " + show(got) + ", want " + show(want));
    }

    static String show(Object o) {
        String s;
        if (o instanceof byte[]) {
            byte[] b = (byte[]) o;
            s = "byte[" + b.length + "]";
        } else {
            s = String.valueOf(o);
        }
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    static void eq(Object got, Object want, String what) {
        boolean same = (got instanceof byte[] && want instanceof byte[])
            ? Arrays.equals((byte[]) got, (byte[]) want)
            : (got == null ? want == null : got.equals(want));
        if (!same) {
            fail(what, got, want);
        }
    }

    static MemcachedClient text() throws Exception {
        ConnectionFactory f = new DefaultConnectionFactory() {
            @Override
            public long getOperationTimeout() {
                return OP_TIMEOUT_MS;
            }

        };
        return new MemcachedClient(f, addrs);
    }

    static MemcachedClient binary() throws Exception {
        ConnectionFactory f = new BinaryConnectionFactory() {
            @Override
            public long getOperationTimeout() {
                return OP_TIMEOUT_MS;
            }

        };
        return new MemcachedClient(f, addrs);
    }

    static void check(String name, boolean binaryProtocol, Body body) {
        MemcachedClient c = null;
        try {
            c = binaryProtocol ? binary() : text();
            body.run(c);
            System.out.println("PASS " + name);
        } catch (Throwable e) {
            String msg = (e.getClass().getSimpleName() + ": " + e.getMessage()).replaceAll("\\s+", " ");
            System.out.println("FAIL " + name + ": " + msg);
            e.printStackTrace();
        } finally {
            if (c != null) {
                c.shutdown(2, TimeUnit.SECONDS);
            }
        }
        System.out.flush();
    }

    static byte[] blob(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        byte[] head = "\r\nEND\r\nVALUE x 0 1\r\n\0".getBytes();
        for (int i = 0; i < n; i++) {
            b[i] = i < 256 ? (byte) i : (i - 256 < head.length ? head[i - 256] : b[i]);
        }
        return b;
    }

    /** set/get, multi-get, cas, incr/decr, delete: shared by the text and binary checks. */
    static void roundTrips(MemcachedClient c, String p) throws Exception {
        byte[] v = blob(10000, 1);
        eq(c.set(p + "rt", 0, v).get(), true, "set");
        eq(c.get(p + "rt"), v, "get");
        Map<String, Object> bulk = c.getBulk(p + "rt", p + "rt-missing");
        eq(bulk.size(), 1, "getBulk size");
        eq(bulk.get(p + "rt"), v, "getBulk value");
        CASValue<Object> cv = c.gets(p + "rt");
        eq(c.cas(p + "rt", cv.getCas(), "new"), CASResponse.OK, "cas");
        eq(c.cas(p + "rt", cv.getCas(), "newer"), CASResponse.EXISTS, "cas with a spent unique");
        eq(c.set(p + "n", 0, "5").get(), true, "set a number");
        eq(c.incr(p + "n", 2), 7L, "incr");
        eq(c.decr(p + "n", 10), 0L, "decr");
        eq(c.delete(p + "n").get(), true, "delete");
        eq(c.get(p + "n"), null, "get after delete");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: SpyCheck HOST:PORT");
            System.exit(2);
        }
        addrs = AddrUtil.getAddresses(args[0]);

        check("spymemcached.binary_safe", false, c -> {
            for (int size : new int[] {0, 1, 300, 16000, 500000}) {
                byte[] v = blob(size, size);
                eq(c.set(P + "bin" + size, 0, v).get(), true, "set of " + size + " bytes");
                eq(c.get(P + "bin" + size), v, "get of " + size + " bytes");
            }
            String s = "unicode \u00e9\u4e2d\ud83d\ude00 \r\n text";
            eq(c.set(P + "str", 0, s).get(), true, "set of a String");
            eq(c.get(P + "str"), s, "get of a String");
            HashMap<String, Object> m = new HashMap<>();
            m.put("list", new ArrayList<>(Arrays.asList(1, 2L, "three")));
            m.put("double", 2.5);
            eq(c.set(P + "obj", 0, m).get(), true, "set of a serialized object");
            eq(c.get(P + "obj"), m, "get of a serialized object");
            eq(c.set(P + "int", 0, 123456).get(), true, "set of an Integer");
            eq(c.get(P + "int"), 123456, "get of an Integer");
        });

        check("spymemcached.multi_get", false, c -> {
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                keys.add(P + "m" + i);
                c.set(P + "m" + i, 0, "value-" + i);
            }
            keys.add(P + "m-missing");
            Map<String, Object> got = c.getBulk(keys);
            eq(got.size(), 50, "getBulk size");
            for (int i = 0; i < 50; i++) {
                eq(got.get(P + "m" + i), "value-" + i, "getBulk value " + i);
            }
            eq(c.asyncGetBulk(keys).get(5, TimeUnit.SECONDS).size(), 50, "asyncGetBulk size");
        });

        check("spymemcached.cas", false, c -> {
            MemcachedClient other = text();
            try {
                eq(c.set(P + "cas", 0, "v1").get(), true, "set");
                CASValue<Object> cv = c.gets(P + "cas");
                eq(cv.getValue(), "v1", "gets value");
                eq(other.set(P + "cas", 0, "v2").get(), true, "set by a second client");
                eq(c.cas(P + "cas", cv.getCas(), "v3"), CASResponse.EXISTS, "cas with a stale unique");
                eq(c.get(P + "cas"), "v2", "value after the refused cas");
                CASValue<Object> cv2 = c.gets(P + "cas");
                if (cv2.getCas() == cv.getCas()) {
                    fail("cas unique after a set", cv2.getCas(), "a new one");
                }
                eq(c.cas(P + "cas", cv2.getCas(), "v3"), CASResponse.OK, "cas with the current unique");
                eq(other.get(P + "cas"), "v3", "value after the cas");
                c.delete(P + "cas-missing").get();
                eq(c.cas(P + "cas-missing", cv2.getCas(), "x"), CASResponse.NOT_FOUND, "cas on a missing key");
            } finally {
                other.shutdown(2, TimeUnit.SECONDS);
            }
        });

        check("spymemcached.incr_decr", false, c -> {
            eq(c.set(P + "n", 0, "10").get(), true, "set");
            eq(c.incr(P + "n", 5), 15L, "incr 5");
            eq(c.decr(P + "n", 3), 12L, "decr 3");
            eq(c.decr(P + "n", 100), 0L, "decr below zero");
            eq(c.set(P + "n", 0, "18446744073709551615").get(), true, "set 2^64-1");
            eq(c.incr(P + "n", 1), 0L, "incr wraps at 2^64");
            c.delete(P + "nmissing").get();
            eq(c.incr(P + "nmissing", 1), -1L, "incr of a missing key");
            eq(c.incr(P + "nmissing", 1, 100), 100L, "incr with a default creates the key");
            eq(c.incr(P + "nmissing", 1, 100), 101L, "incr after it was created");
            eq(c.asyncIncr(P + "nmissing", 9).get(), 110L, "asyncIncr");
        });

        check("spymemcached.add_replace_append_prepend", false, c -> {
            c.delete(P + "a").get();
            eq(c.replace(P + "a", 0, "x").get(), false, "replace of a missing key");
            eq(c.add(P + "a", 0, "mid").get(), true, "add");
            eq(c.add(P + "a", 0, "other").get(), false, "add of an existing key");
            eq(c.append(0, P + "a", "-end").get(), true, "append");
            eq(c.prepend(0, P + "a", "start-").get(), true, "prepend");
            eq(c.get(P + "a"), "start-mid-end", "value after append/prepend");
            eq(c.replace(P + "a", 0, "new").get(), true, "replace");
            eq(c.get(P + "a"), "new", "value after replace");
        });

        check("spymemcached.delete", false, c -> {
            eq(c.set(P + "d", 0, "x").get(), true, "set");
            eq(c.delete(P + "d").get(), true, "delete of an existing key");
            eq(c.get(P + "d"), null, "get after delete");
            eq(c.delete(P + "d").get(), false, "delete of a missing key");
        });

        check("spymemcached.touch_expiry", false, c -> {
            eq(c.set(P + "e", 2, "short").get(), true, "set with ttl 2");
            eq(c.set(P + "t", 2, "kept").get(), true, "set with ttl 2");
            eq(c.touch(P + "t", 100).get(), true, "touch");
            c.delete(P + "tmissing").get();
            eq(c.touch(P + "tmissing", 100).get(), false, "touch of a missing key");
            eq(c.get(P + "e"), "short", "get before the ttl ran out");
            Thread.sleep(3200);
            eq(c.get(P + "e"), null, "get after the ttl ran out");
            eq(c.get(P + "t"), "kept", "get of the touched key");
        });

        check("spymemcached.flush", false, c -> {
            eq(c.set(P + "f", 0, "x").get(), true, "set");
            eq(c.flush().get(), true, "flush");
            eq(c.get(P + "f"), null, "get after flush");
        });

        check("spymemcached.stats_versions", false, c -> {
            c.set(P + "s", 0, "x").get();
            Map<SocketAddress, Map<String, String>> all = c.getStats();
            eq(all.size(), 1, "servers answering stats");
            Map<String, String> s = all.values().iterator().next();
            for (String k : new String[] {"pid", "uptime", "version", "curr_items", "get_hits", "cmd_set",
                "curr_connections", "limit_maxbytes"}) {
                if (!s.containsKey(k)) {
                    fail("stats key " + k, null, "present");
                }
            }
            if (Long.parseLong(s.get("curr_items")) < 1) {
                fail("curr_items", s.get("curr_items"), ">= 1");
            }
            Map<String, String> settings = c.getStats("settings").values().iterator().next();
            eq(settings.get("tcpport"), String.valueOf(addrs.get(0).getPort()), "stats settings tcpport");
            Map<SocketAddress, String> versions = c.getVersions();
            eq(versions.values().iterator().next(), s.get("version"), "version vs stats version");
        });

        // Needs the binary protocol: the same round trips over BinaryConnectionFactory.
        check("spymemcached.binary_factory", true, c -> {
            roundTrips(c, P + "binproto:");
            eq(c.touch(P + "binproto:rt", 100).get(), true, "touch");
            eq(c.getStats().values().iterator().next().containsKey("pid"), true, "stats has pid");
        });

        System.exit(0); // spymemcached's threads are not daemons
    }
}
