#!/usr/bin/env python3
"""Writes the seed corpus of both fuzz targets (fuzz/corpus/<target>/seed-*).

The conversations are taken from protocol-tests (storage, retrieval,
arithmetic, misc, auth, stats). Layout: text_protocol inputs are
<config byte><stream>; connection inputs are
<config byte><number of splits><2 bytes per split (LE)><stream>.
Run from anywhere: python3 fuzz/seeds/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def setc(cmd, key, flags, exp, data, extra=b""):
    return b"%s %s %d %d %d%s\r\n%s\r\n" % (cmd, key, flags, exp, len(data), extra, data)


CONVERSATIONS = {
    "storage": setc(b"set", b"a", 0, 0, b"hello") + setc(b"add", b"a", 0, 0, b"x")
    + setc(b"add", b"b", 3, 0, b"bee") + setc(b"replace", b"a", 7, 0, b"world")
    + setc(b"replace", b"zz", 0, 0, b"q") + b"get a b zz\r\ngets a\r\ndelete b\r\ndelete b\r\nget b\r\n",
    "append": setc(b"set", b"k", 5, 0, b"mid") + setc(b"append", b"k", 0, 0, b">>")
    + setc(b"prepend", b"k", 0, 0, b"<<") + setc(b"append", b"none", 0, 0, b"x") + b"get k none\r\n",
    "cas": setc(b"set", b"c", 0, 0, b"v1") + b"gets c\r\n" + setc(b"cas", b"c", 0, 0, b"v2", b" 1")
    + setc(b"cas", b"c", 0, 0, b"v3", b" 999") + setc(b"cas", b"nope", 0, 0, b"v", b" 1") + b"gets c\r\n",
    "arith": setc(b"set", b"n", 0, 0, b"41") + b"incr n 1\r\ndecr n 100\r\nincr n 18446744073709551615\r\n"
    + b"incr n 1\r\ndecr n 1\r\nget n\r\nincr x 1\r\n" + setc(b"set", b"t", 0, 0, b"abc") + b"incr t 1\r\nincr n abc\r\n",
    "noreply": b"set q 0 0 1 noreply\r\nx\r\nadd q 0 0 1 noreply\r\ny\r\nincr q 1 noreply\r\n"
    b"delete q noreply\r\ntouch q 10 noreply\r\nflush_all noreply\r\nget q\r\n",
    "bad_lengths": b"set k 0 0 -1\r\nx\r\nset k 0 0 abc\r\nx\r\nset k 0 0 4294967296\r\nx\r\n"
    b"set k 0 0 4294967297\r\nx\r\nset k 0 0 18446744073709551616\r\nx\r\nset k 0 0 +1\r\nx\r\nget k\r\n",
    "bad_chunk": b"set k 0 0 1\r\nold\r\nset k 0 0 2\r\nab\n\r\nset k 0 0 1\r\nx\r\nset k 0 0 1\r\nxy\r\nget k\r\n",
    "keys": setc(b"set", b"k" * 250, 0, 0, b"v") + setc(b"set", b"k" * 251, 0, 0, b"v")
    + b"get " + b"k" * 250 + b"\r\nget " + b"k" * 251 + b"\r\nset a\tb 0 0 1\r\nx\r\nget a\tb\r\n",
    "multiget": setc(b"set", b"k1", 1, 0, b"one") + setc(b"set", b"k30", 2, 0, b"thirty")
    + b"get " + b" ".join(b"k%d" % i for i in range(40)) + b"\r\ngets k1 k1 k30\r\n",
    "touch": setc(b"set", b"t", 9, 0, b"tt") + b"touch t 100\r\ngat 0 t\r\ngats 100 t u\r\n"
    b"gat abc t\r\ntouch u 1\r\nset e 0 -1 1\r\nx\r\nget e\r\n",
    "admin": b"version\r\nverbosity 1\r\nverbosity\r\nflush_all\r\nflush_all 0\r\nflush_all -1\r\n"
    b"stats\r\nstats items\r\nstats slabs\r\nstats settings\r\nstats sizes\r\nstats conns\r\n"
    b"stats detail on\r\n" + setc(b"set", b"p:1", 0, 0, b"x") + b"get p:1 p:2\r\nstats detail dump\r\n"
    b"stats detail off\r\nstats reset\r\nstats cachedump 1 1\r\nmn\r\n",
    "slabs": b"slabs reassign 1 2\r\nslabs reassign -1 0\r\nslabs automove 0\r\nslabs automove 1\r\n"
    b"lru_crawler crawl all\r\nlru_crawler metadump all\r\nlru_crawler disable\r\nlru_crawler enable\r\n"
    b"cache_memlimit 8\r\ncache_memlimit 1\r\nshutdown\r\n",
    "endings": b"set b 0 0 2\nab\nget b\n\r\n\n  get   b  \r\nGET b\r\nget\r\n\x00\r\nquit\r\nget b\r\n",
    "auth": b"get a\r\nset x 0 0 9\r\nuser pass\r\n" + setc(b"set", b"a", 0, 0, b"in") + b"get a\r\n"
    b"set x 0 0 8\r\nbad pass\r\n",
    "too_large": setc(b"set", b"L", 0, 0, b"small") + setc(b"set", b"L", 0, 0, b"x" * 3000)
    + b"get L\r\n" + setc(b"set", b"L", 0, 0, b"y" * 1900) + setc(b"append", b"L", 0, 0, b"z" * 1000) + b"get L\r\n",
    "meta": b"ms mk 5 T0 F9\r\nhello\r\nmg mk v f t s k c\r\nmg mk k O123 q\r\nmg missing v\r\n"
    b"ms mk 2 MA\r\n!!\r\nms mk 2 MP C1\r\n<<\r\nms Zm9v 3 b F1\r\nbar\r\nmg Zm9v b v k\r\nget foo mk\r\n"
    b"ma cnt N0 J10 v\r\nma cnt D5 MI v\r\nma cnt MD D100 v\r\nmd mk q\r\nmd mk I T30\r\nmg mk v c\r\n"
    b"mg viv N30 v t\r\nme cnt\r\nms big 70000 I\r\nmn\r\n",
    # memcached's base64 decoder skips bytes outside the alphabet
    "meta_b64": b"ms \xc8\xff\xff\xffZm9v 3 b F1\r\nbar\r\nmg Zm9v b v k\r\nget foo\r\n"
    b"ms Zm!9v 3 b\r\nbaz\r\nms Zm9v= 1 b\r\nx\r\nmg Zm9v b v k f\r\n",
    "direct": setc(b"set", b"big", 4, 0, bytes(range(256)) * 80) + b"get big\r\n"
    + b"set big2 0 0 17000\r\n" + b"w" * 17000 + b"XX" + b"get big2\r\n",
}

def breq(op, key=b"", extras=b"", value=b"", opaque=0, cas=0, magic=0x80):
    """One binary-protocol request."""
    body = len(extras) + len(key) + len(value)
    hdr = struct.pack(">BBHBBHIIQ", magic, op, len(key), len(extras), 0, 0, body, opaque, cas)
    return hdr + extras + key + value


SETX = struct.pack(">II", 5, 0)          # flags 5, no expiry
ARITH = struct.pack(">QQI", 3, 10, 0)    # delta 3, initial 10, expiry 0
BINARY = {
    "bin_basic": breq(0x01, b"bk", SETX, b"hello", 1) + breq(0x00, b"bk", opaque=2)
    + breq(0x0c, b"bk", opaque=3) + breq(0x02, b"bk", SETX, b"x") + breq(0x03, b"bk", SETX, b"world")
    + breq(0x0e, b"bk", value=b">>") + breq(0x0f, b"bk", value=b"<<") + breq(0x0c, b"bk")
    + breq(0x05, b"n", ARITH) + breq(0x05, b"n", ARITH) + breq(0x06, b"n", ARITH) + breq(0x0c, b"n")
    + breq(0x1d, b"bk", struct.pack(">I", 100)) + breq(0x1c, b"bk", struct.pack(">I", 0))
    + breq(0x04, b"bk") + breq(0x00, b"bk") + breq(0x0b) + breq(0x0a) + breq(0x10) + breq(0x10, b"items")
    + breq(0x08) + breq(0x07),
    "bin_quiet": breq(0x11, b"q1", SETX, b"one") + breq(0x11, b"q2", SETX, b"two") + breq(0x09, b"q1")
    + breq(0x0d, b"q2") + breq(0x0d, b"missing") + breq(0x14, b"q1") + breq(0x15, b"c", ARITH)
    + breq(0x19, b"q2", value=b"!") + breq(0x0a) + breq(0x18) + breq(0x17),
    "bin_bad": breq(0x01, b"k", b"", b"v") + breq(0x01, b"k" * 251, SETX, b"v")
    + struct.pack(">BBHBBHIIQ", 0x80, 0x01, 10, 8, 0, 0, 5, 0, 0) + b"x" * 18
    + breq(0x00) + breq(0x05, b"k", b"\0" * 4) + breq(0x42, b"k") + breq(0x20) + breq(0x21, b"PLAIN", value=b"\0u\0p")
    + breq(0x01, b"cas", SETX, b"v", cas=12345) + breq(0x0a) + breq(0x01, b"k", SETX, b"x", magic=0x81) + breq(0x0a),
    "bin_large": breq(0x01, b"big", SETX, bytes(range(256)) * 80) + breq(0x0c, b"big")
    + breq(0x01, b"huge", SETX, b"h" * 70000) + breq(0x0c, b"huge") + breq(0x0a),
}

# configurations (see fuzz/src/lib.rs): 0 base, 1 tiny -I, 2 -C -R 1, 3 -Y, 4 -M -F
CHOICES = {"auth": [3], "too_large": [1, 0], "direct": [0, 2]}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


for name, conv in BINARY.items():
    # binary conversations: connection target only (it negotiates the protocol)
    for choice in ([1, 0] if name == "bin_large" else [0, 2, 4]):
        for tag, cuts in (("1", []), ("3", [len(conv) // 3, 2 * len(conv) // 3])):
            hdr = bytes([choice, len(cuts)]) + b"".join(struct.pack("<H", c % 65536) for c in cuts)
            write("connection", "%s-%d-%s" % (name, choice, tag), hdr + conv)

for name, conv in CONVERSATIONS.items():
    for choice in CHOICES.get(name, [0, 2]):
        write("text_protocol", "%s-%d" % (name, choice), bytes([choice]) + conv)
        # the same stream in 3 reads at fixed points, and in 8 equal reads
        for tag, cuts in (("3", [len(conv) // 3, 2 * len(conv) // 3]),
                          ("8", [len(conv) * i // 8 for i in range(1, 8)])):
            hdr = bytes([choice, len(cuts)]) + b"".join(struct.pack("<H", c % 65536) for c in cuts)
            write("connection", "%s-%d-%s" % (name, choice, tag), hdr + conv)
