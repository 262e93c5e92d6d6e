//! The binary protocol: every opcode memcached 1.6.18 serves, its error
//! statuses, quiet forms, malformed headers, and negotiation by `-B` and by
//! a connection's first byte.
//!
//! Replies are compared byte for byte (both servers see the same requests
//! from a fresh start, so cas values match). Each test also checks what
//! memcached answered — opcode, status and opaque of every reply — so the
//! tests document its behaviour. The LRU maintainer and crawler are off, as
//! in the other differential tests that count items.

use protocol_tests::bin::{self, *};
use protocol_tests::*;

macro_rules! bin_pair {
    ($($arg:expr),* $(,)?) => {
        pair!("-o", "no_lru_maintainer,no_lru_crawler" $(, $arg)*)
    };
}

/// (opcode, status, opaque) of every reply.
fn summary(r: &Reply) -> Vec<(u8, u16, u32)> {
    bin::parse(&r.bytes)
        .0
        .iter()
        .map(|p| (p.opcode, p.status, p.opaque))
        .collect()
}

fn packets(r: &Reply) -> Vec<Packet> {
    bin::parse(&r.bytes).0
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn get_family_hits_and_misses() {
    let p = bin_pair!();
    let r = p.binary_steps(&[
        &cat(&[
            req(GET, b"k", 1),
            req(GETK, b"k", 2),
            req(GETQ, b"k", 3),
            req(GETKQ, b"k", 4),
        ]),
        &store(SET, b"k", 0xdead_beef, 0, b"value", 0, 5),
        &cat(&[
            req(GET, b"k", 6),
            req(GETK, b"k", 7),
            req(GETQ, b"k", 8),
            req(GETKQ, b"k", 9),
        ]),
        &store(SET, b"empty", 0, 0, b"", 0, 10),
        &req(GETK, b"empty", 11),
    ]);
    // misses: "Not found", the key for getk, nothing for the quiet forms
    assert_eq!(summary(&r[0]), [(GET, NOT_FOUND, 1), (GETK, NOT_FOUND, 2)]);
    let miss = packets(&r[0]);
    assert_eq!(miss[0].value, b"Not found");
    assert_eq!(
        (miss[1].key.as_slice(), miss[1].value.as_slice()),
        (&b"k"[..], &b""[..])
    );
    assert_eq!(packets(&r[1])[0].cas, 1);
    // hits: flags as extras, the key for the k forms, the cas; quiet forms answer hits
    let hits = packets(&r[2]);
    assert_eq!(
        summary(&r[2]),
        [(GET, OK, 6), (GETK, OK, 7), (GETQ, OK, 8), (GETKQ, OK, 9)]
    );
    for (h, key) in hits.iter().zip([&b""[..], b"k", b"", b"k"]) {
        assert_eq!(
            (
                h.extras.as_slice(),
                h.key.as_slice(),
                h.value.as_slice(),
                h.cas
            ),
            (&0xdead_beefu32.to_be_bytes()[..], key, &b"value"[..], 1)
        );
    }
    assert_eq!(packets(&r[4])[0].value, b"");
}

#[test]
fn set_add_replace_and_cas() {
    let p = bin_pair!();
    let r = p.binary_steps(&[
        &cat(&[
            store(ADD, b"a", 0, 0, b"1", 0, 1),
            store(ADD, b"a", 0, 0, b"1", 0, 2),
            store(REPLACE, b"b", 0, 0, b"1", 0, 3),
            store(REPLACE, b"a", 1, 0, b"2", 0, 4),
            store(SET, b"a", 0, 0, b"3", 999, 5),
            store(SET, b"zz", 0, 0, b"3", 999, 6),
            store(SET, b"a", 0, 0, b"4", 2, 7),
            // with a cas, add and replace are cas stores too
            store(ADD, b"a", 0, 0, b"5", 3, 8),
            store(ADD, b"a", 0, 0, b"5", 3, 9),
            store(REPLACE, b"a", 0, 0, b"6", 4, 10),
            req(GET, b"a", 11),
        ]),
        // quiet forms: only errors come back
        &cat(&[
            store(ADDQ, b"a", 0, 0, b"1", 0, 21),
            store(ADDQ, b"c", 0, 0, b"1", 0, 22),
            store(REPLACEQ, b"b", 0, 0, b"1", 0, 23),
            store(SETQ, b"a", 0, 0, b"3", 999, 24),
            store(SETQ, b"d", 7, 0, b"3", 0, 25),
            req(GETQ, b"d", 26),
        ]),
    ]);
    assert_eq!(
        summary(&r[0]),
        [
            (ADD, OK, 1),
            (ADD, EXISTS, 2),
            (REPLACE, NOT_FOUND, 3),
            (REPLACE, OK, 4),
            (SET, EXISTS, 5),
            (SET, NOT_FOUND, 6),
            (SET, OK, 7),
            (ADD, OK, 8),
            (ADD, EXISTS, 9),
            (REPLACE, OK, 10),
            (GET, OK, 11),
        ]
    );
    let last = &packets(&r[0])[10];
    assert_eq!((last.value.as_slice(), last.cas), (&b"6"[..], 5));
    assert_eq!(packets(&r[0])[1].value, b"Data exists for key.");
    assert_eq!(
        summary(&r[1]),
        [
            (ADDQ, EXISTS, 21),
            (REPLACEQ, NOT_FOUND, 23),
            (SETQ, EXISTS, 24),
            (GETQ, OK, 26)
        ]
    );
    let (r, s) = p.stats("");
    let keep = [
        "cmd_set",
        "cas_misses",
        "cas_hits",
        "cas_badval",
        "curr_items",
        "total_items",
    ];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

#[test]
fn append_prepend() {
    let p = bin_pair!();
    let raw = |op: u8, key: &[u8], value: &[u8], cas: u64, opaque: u32| {
        Req {
            opcode: op,
            key,
            value,
            cas,
            opaque,
            ..Req::default()
        }
        .bytes()
    };
    let r = p.binary_steps(&[&cat(&[
        store(SET, b"a", 3, 0, b"m", 0, 1),
        raw(APPEND, b"a", b"X", 0, 2),
        raw(PREPEND, b"a", b"Y", 0, 3),
        raw(APPEND, b"nope", b"X", 0, 4),
        raw(APPENDQ, b"nope", b"X", 0, 5),
        raw(PREPENDQ, b"a", b"Z", 0, 6),
        raw(APPEND, b"a", b"X", 1, 7),
        raw(APPEND, b"a", b"!", 4, 8),
        raw(APPENDQ, b"a", b"", 0, 9),
        req(GET, b"a", 10),
    ])]);
    assert_eq!(
        summary(&r[0]),
        [
            (SET, OK, 1),
            (APPEND, OK, 2),
            (PREPEND, OK, 3),
            (APPEND, NOT_STORED, 4),
            (APPENDQ, NOT_STORED, 5),
            (APPEND, EXISTS, 7),
            (APPEND, OK, 8),
            (GET, OK, 10),
        ]
    );
    let got = &packets(&r[0])[7];
    assert_eq!(
        (got.value.as_slice(), got.extras.as_slice()),
        (&b"ZYmX!"[..], &3u32.to_be_bytes()[..])
    );
}

#[test]
fn delete_with_and_without_cas() {
    let p = bin_pair!();
    let r = p.binary_steps(&[&cat(&[
        req(DELETE, b"nope", 1),
        req(DELETEQ, b"nope", 2),
        store(SET, b"s", 0, 0, b"v", 0, 3),
        Req {
            opcode: DELETE,
            key: b"s",
            cas: 2,
            opaque: 4,
            ..Req::default()
        }
        .bytes(),
        Req {
            opcode: DELETE,
            key: b"s",
            cas: 1,
            opaque: 5,
            ..Req::default()
        }
        .bytes(),
        store(SET, b"s", 0, 0, b"v", 0, 6),
        req(DELETEQ, b"s", 7),
        req(GET, b"s", 8),
    ])]);
    assert_eq!(
        summary(&r[0]),
        [
            (DELETE, NOT_FOUND, 1),
            (DELETEQ, NOT_FOUND, 2),
            (SET, OK, 3),
            (DELETE, EXISTS, 4),
            (DELETE, OK, 5),
            (SET, OK, 6),
            (GET, NOT_FOUND, 8),
        ]
    );
    let (r, s) = p.stats("");
    let keep = ["delete_misses", "delete_hits", "curr_items"];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

#[test]
fn incr_decr() {
    let p = bin_pair!();
    let never = u32::MAX;
    let r = p.binary_steps(&[
        &cat(&[
            delta(INCR, b"n", 1, 10, never, 0, 1),
            delta(INCR, b"n", 1, 10, 0, 0, 2),
            delta(INCR, b"n", 5, 10, 0, 0, 3),
            delta(DECR, b"n", 100, 10, 0, 0, 4),
            delta(INCRQ, b"n", 1, 0, 0, 0, 5),
            delta(DECRQ, b"m", 1, 0, never, 0, 6),
            delta(INCR, b"n", 1, 0, 0, 1, 7),
            delta(INCR, b"n", 1, 0, 0, 4, 8),
            req(GET, b"n", 9),
        ]),
        &cat(&[
            store(SET, b"s", 0, 0, b"abc", 0, 10),
            delta(INCR, b"s", 1, 0, 0, 0, 11),
            delta(DECRQ, b"s", 1, 0, 0, 0, 12),
            delta(INCR, b"w", 1, u64::MAX, 0, 0, 13),
            delta(INCR, b"w", 2, 0, 0, 0, 14),
            // a created item's expiry is the request's
            delta(INCR, b"e", 1, 7, 100, 0, 15),
            req(GET, b"e", 16),
        ]),
    ]);
    assert_eq!(
        summary(&r[0]),
        [
            (INCR, NOT_FOUND, 1),
            (INCR, OK, 2),
            (INCR, OK, 3),
            (DECR, OK, 4),
            (DECRQ, NOT_FOUND, 6),
            (INCR, EXISTS, 7),
            (INCR, OK, 8),
            (GET, OK, 9),
        ]
    );
    let values: Vec<Vec<u8>> = packets(&r[0]).into_iter().map(|p| p.value).collect();
    assert_eq!(values[1], 10u64.to_be_bytes());
    assert_eq!(values[2], 15u64.to_be_bytes());
    assert_eq!(values[3], 0u64.to_be_bytes());
    assert_eq!(values[6], 2u64.to_be_bytes());
    assert_eq!(values[7], b"2 ");
    assert_eq!(
        summary(&r[1]),
        [
            (SET, OK, 10),
            (INCR, NON_NUMERIC, 11),
            (DECRQ, NON_NUMERIC, 12),
            (INCR, OK, 13),
            (INCR, OK, 14),
            (INCR, OK, 15),
            (GET, OK, 16)
        ]
    );
    assert_eq!(packets(&r[1])[4].value, 1u64.to_be_bytes());
    let (r, s) = p.stats("");
    let keep = [
        "incr_misses",
        "incr_hits",
        "decr_misses",
        "decr_hits",
        "cmd_set",
        "curr_items",
        "total_items",
    ];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

/// memcached keeps a reference to an item until the reply that carries it
/// is written (at the end of a batch, or at a noop); an incr of such an
/// item makes a new item, without the space padding of an in-place one.
#[test]
fn incr_after_a_get_in_the_same_batch() {
    let p = bin_pair!();
    let padded = format!("2{}", " ".repeat(19));
    for (i, get) in [GET, GETQ, GETK, GETKQ].into_iter().enumerate() {
        let key = format!("k{i}");
        let key = key.as_bytes();
        let r = p.binary_steps(&[
            &store(SET, key, 0, 0, padded.as_bytes(), 0, 1),
            &cat(&[
                req(get, key, 2),
                delta(INCR, key, 5, 0, 0, 0, 3),
                req(GET, key, 4),
            ]),
        ]);
        assert_eq!(
            packets(&r[1]).last().map(|p| p.value.clone()),
            Some(b"7".to_vec())
        );
    }
    let r = p.binary_steps(&[
        &store(SET, b"t", 0, 0, padded.as_bytes(), 0, 1),
        &cat(&[
            bin::touch(TOUCH, b"t", 0, 2),
            delta(INCR, b"t", 5, 0, 0, 0, 3),
            req(GET, b"t", 4),
        ]),
        &store(SET, b"u", 0, 0, padded.as_bytes(), 0, 5),
        // a noop writes the reply: the number is rewritten in place
        &cat(&[
            req(GET, b"u", 6),
            req(NOOP, b"", 7),
            delta(INCR, b"u", 5, 0, 0, 0, 8),
            req(GET, b"u", 9),
        ]),
        &store(SET, b"v", 0, 0, padded.as_bytes(), 0, 10),
        &req(GET, b"v", 11),
        &cat(&[delta(INCR, b"v", 5, 0, 0, 0, 12), req(GET, b"v", 13)]),
    ]);
    assert_eq!(
        packets(&r[1]).last().map(|p| p.value.clone()),
        Some(b"7".to_vec())
    );
    let in_place = format!("7{}", " ".repeat(19)).into_bytes();
    assert_eq!(
        packets(&r[3]).last().map(|p| p.value.clone()),
        Some(in_place.clone())
    );
    assert_eq!(
        packets(&r[6]).last().map(|p| p.value.clone()),
        Some(in_place)
    );
}

#[test]
fn touch_and_gat() {
    let p = bin_pair!();
    let r = p.binary_steps(&[
        &store(SET, b"k", 5, 0, b"val", 0, 1),
        &cat(&[
            bin::touch(TOUCH, b"k", 100, 2),
            bin::touch(GAT, b"k", 100, 3),
            bin::touch(GATK, b"k", 100, 4),
            bin::touch(GATQ, b"k", 100, 5),
            bin::touch(GATKQ, b"k", 100, 6),
            bin::touch(TOUCH, b"zz", 100, 7),
            bin::touch(GAT, b"zz", 100, 8),
            bin::touch(GATK, b"zz", 100, 9),
            bin::touch(GATQ, b"zz", 100, 10),
            bin::touch(GATKQ, b"zz", 100, 11),
        ]),
        // the expiry is unsigned: 0xffffffff is a Unix time in 2106
        &cat(&[bin::touch(GAT, b"k", u32::MAX, 12), req(GET, b"k", 13)]),
    ]);
    assert_eq!(
        summary(&r[1]),
        [
            (TOUCH, OK, 2),
            (GAT, OK, 3),
            (GATK, OK, 4),
            (GATQ, OK, 5),
            (GATKQ, OK, 6),
            (TOUCH, NOT_FOUND, 7),
            (GAT, NOT_FOUND, 8),
            (GATK, NOT_FOUND, 9),
        ]
    );
    let hits = packets(&r[1]);
    // touch answers the flags only
    assert_eq!(
        (hits[0].extras.as_slice(), hits[0].value.as_slice()),
        (&5u32.to_be_bytes()[..], &b""[..])
    );
    assert_eq!(
        (hits[2].key.as_slice(), hits[2].value.as_slice()),
        (&b"k"[..], &b"val"[..])
    );
    assert_eq!(summary(&r[2]), [(GAT, OK, 12), (GET, OK, 13)]);
    let (r, s) = p.stats("");
    let keep = [
        "cmd_get",
        "cmd_touch",
        "get_hits",
        "get_misses",
        "touch_hits",
        "touch_misses",
    ];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

#[test]
fn noop_version_flush_quit() {
    let p = bin_pair!();
    let r = p.binary_steps(&[
        &cat(&[req(NOOP, b"", 1), req(VERSION, b"", 2)]),
        &cat(&[
            store(SET, b"a", 0, 0, b"1", 0, 3),
            req(FLUSH, b"", 4),
            req(GET, b"a", 5),
            store(SET, b"a", 0, 0, b"1", 0, 6),
            req(FLUSHQ, b"", 7),
            req(GET, b"a", 8),
            store(SET, b"a", 0, 0, b"1", 0, 9),
            Req {
                opcode: FLUSH,
                extras: &0u32.to_be_bytes(),
                opaque: 10,
                ..Req::default()
            }
            .bytes(),
            req(GET, b"a", 11),
            // a delayed flush leaves the item for now
            store(SET, b"a", 0, 0, b"1", 0, 12),
            Req {
                opcode: FLUSH,
                extras: &100u32.to_be_bytes(),
                opaque: 13,
                ..Req::default()
            }
            .bytes(),
            req(GET, b"a", 14),
        ]),
    ]);
    assert_eq!(summary(&r[0]), [(NOOP, OK, 1), (VERSION, OK, 2)]);
    assert_eq!(packets(&r[0])[1].value, b"1.6.18");
    assert_eq!(
        summary(&r[1]),
        [
            (SET, OK, 3),
            (FLUSH, OK, 4),
            (GET, NOT_FOUND, 5),
            (SET, OK, 6),
            (GET, NOT_FOUND, 8),
            (SET, OK, 9),
            (FLUSH, OK, 10),
            (GET, NOT_FOUND, 11),
            (SET, OK, 12),
            (FLUSH, OK, 13),
            (GET, OK, 14),
        ]
    );
    let (rs, ss) = p.stats("");
    assert_stats_eq(
        "stats",
        &filter_stats(&rs, &["cmd_flush"]),
        &filter_stats(&ss, &["cmd_flush"]),
        &[],
    );
    // quit answers and closes; quitq just closes
    let (r, s) = p.run(|srv| {
        srv.connect()
            .send_binary(&cat(&[req(QUIT, b"", 1), req(NOOP, b"", 2)]))
    });
    assert_binary_same("quit", &r, &s);
    assert!(r.closed);
    assert_eq!(summary(&r), [(QUIT, OK, 1)]);
    let (r, s) = p.run(|srv| {
        srv.connect().send_binary(&cat(&[
            req(NOOP, b"", 1),
            req(QUITQ, b"", 2),
            req(NOOP, b"", 3),
        ]))
    });
    assert_binary_same("quitq", &r, &s);
    assert!(r.closed);
    assert_eq!(summary(&r), [(NOOP, OK, 1)]);
}

#[test]
fn flush_disabled() {
    let p = bin_pair!("-F");
    let r = p.binary_steps(&[&cat(&[req(FLUSH, b"", 1), req(FLUSHQ, b"", 2)])]);
    assert_eq!(
        summary(&r[0]),
        [(FLUSH, AUTH_ERROR, 1), (FLUSHQ, AUTH_ERROR, 2)]
    );
    assert_eq!(packets(&r[0])[0].value, b"Auth failure.");
    let (rs, ss) = p.stats("");
    assert_stats_eq(
        "stats",
        &filter_stats(&rs, &["cmd_flush"]),
        &filter_stats(&ss, &["cmd_flush"]),
        &[],
    );
}

#[test]
fn stat_listings() {
    let p = bin_pair!();
    let workload = cat(&[
        store(SET, b"a:1", 0, 0, b"1", 0, 1),
        req(GET, b"a:1", 2),
        req(GET, b"b:2", 3),
    ]);
    // One connection: another one might still be closing when stats count.
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        c.send_binary(&workload);
        ["", "settings", "items", "slabs", "sizes", "settingsXYZ"]
            .map(|k| bin::stats(&c.send_binary(&req(STAT, k.as_bytes(), 7)).bytes))
    });
    let ignored: Vec<&str> = IGNORED_STATS
        .iter()
        .chain(LAYOUT_STATS)
        .copied()
        .chain(["age"])
        .collect();
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_stats_eq(&format!("stat listing {i}"), r, s, &ignored);
    }
    assert_eq!(stat(&r[0], "cmd_get"), Some("2"));
    assert_eq!(stat(&r[1], "binding_protocol"), Some("auto-negotiate"));
    assert_eq!(stat(&r[4], "sizes_status"), Some("disabled"));
    // the others, byte for byte
    let r = p.binary_steps(&[&cat(&[
        req(STAT, b"bogus", 1),
        req(STAT, b"conns", 2),
        req(STAT, b"detail", 3),
        req(STAT, b"detail on", 4),
        req(GET, b"a:1", 5),
        req(STAT, b"detail dump", 6),
        req(STAT, b"detail off", 7),
    ])]);
    let all = packets(&r[0]);
    assert_eq!(
        &summary(&r[0])[..5],
        [
            (STAT, NOT_FOUND, 1),
            (STAT, NOT_FOUND, 2),
            (STAT, NOT_FOUND, 3),
            (STAT, OK, 4),
            (GET, OK, 5)
        ]
    );
    assert_eq!(all[5].key, b"detailed");
    assert_eq!(all[5].value, b"PREFIX a get 1 hit 1 set 0 del 0\r\nEND\r\n");
    // stats reset answers the terminator only, and resets
    let r = p.binary_steps(&[&req(STAT, b"reset", 9)]);
    assert_eq!(summary(&r[0]), [(STAT, OK, 9)]);
    let (rs, ss) = p.stats("");
    assert_eq!(stat(&rs, "cmd_get"), Some("0"));
    assert_stats_eq(
        "after reset",
        &filter_stats(&rs, &["cmd_get", "get_hits"]),
        &filter_stats(&ss, &["cmd_get", "get_hits"]),
        &[],
    );
}

#[test]
fn unknown_opcodes_verbosity_and_sasl() {
    let p = bin_pair!();
    let r = p.binary_steps(&[
        &cat(&[req(0x55, b"", 1), req(NOOP, b"", 2)]),
        // the body is discarded
        &cat(&[
            Req {
                opcode: 0x55,
                value: b"abcd",
                opaque: 3,
                ..Req::default()
            }
            .bytes(),
            req(NOOP, b"", 4),
            req(NOOP, b"", 5),
        ]),
        // memcached discards the whole body length after the key and extras
        // it has already read: four more bytes go
        &cat(&[
            Req {
                opcode: VERBOSITY,
                extras: &1u32.to_be_bytes(),
                opaque: 6,
                ..Req::default()
            }
            .bytes(),
            vec![0; 4],
            req(NOOP, b"", 7),
        ]),
        &cat(&[
            req(SASL_LIST_MECHS, b"", 8),
            Req {
                opcode: SASL_AUTH,
                key: b"PLAIN",
                value: b"\0u\0p",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            Req {
                opcode: SASL_STEP,
                key: b"PLAIN",
                value: b"xx",
                opaque: 10,
                ..Req::default()
            }
            .bytes(),
        ]),
    ]);
    assert_eq!(summary(&r[0]), [(0x55, UNKNOWN, 1), (NOOP, OK, 2)]);
    assert_eq!(packets(&r[0])[0].value, b"Unknown command");
    assert_eq!(
        summary(&r[1]),
        [(0x55, UNKNOWN, 3), (NOOP, OK, 4), (NOOP, OK, 5)]
    );
    // With a key, what is discarded eats into the next request: its header
    // starts one byte late, with a bad magic, which closes the connection
    // (and loses the unwritten reply).
    let conv = cat(&[
        Req {
            opcode: 0x55,
            key: b"k",
            value: b"xyz",
            opaque: 11,
            ..Req::default()
        }
        .bytes(),
        req(NOOP, b"", 12),
    ]);
    let (ru, su) = p.run(|srv| srv.connect().send_binary(&conv));
    assert_binary_same("unknown with a key", &ru, &su);
    assert!(
        ru.closed && ru.bytes.is_empty(),
        "{}",
        bin::render(&ru.bytes)
    );
    assert_eq!(summary(&r[2]), [(VERBOSITY, UNKNOWN, 6), (NOOP, OK, 7)]);
    assert_eq!(
        summary(&r[3]),
        [
            (SASL_LIST_MECHS, UNKNOWN, 8),
            (SASL_AUTH, UNKNOWN, 9),
            (SASL_STEP, UNKNOWN, 10)
        ]
    );
}

/// Headers that do not fit their command: an error, then the connection
/// closes (replies of the same batch before it are still written).
#[test]
fn malformed_requests_close_the_connection() {
    let p = bin_pair!();
    let set_extras = [0u8; 8];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "key longer than the body",
            Req {
                opcode: GET,
                key: b"abc",
                body_len: Some(2),
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            UNKNOWN,
        ),
        (
            "extras longer than the body",
            Req {
                opcode: SET,
                extras: &set_extras,
                body_len: Some(4),
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            UNKNOWN,
        ),
        ("key of 251 bytes", req(GET, &[b'k'; 251], 9), INVALID),
        (
            "get with extras",
            Req {
                opcode: GET,
                key: b"k",
                extras: b"abcd",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        ("get without a key", req(GET, b"", 9), INVALID),
        ("getq without a key", req(GETQ, b"", 9), INVALID),
        (
            "get with a value",
            Req {
                opcode: GET,
                key: b"k",
                value: b"v",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        (
            "set with 4 bytes of extras",
            Req {
                opcode: SET,
                key: b"k",
                extras: b"abcd",
                value: b"v",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        (
            "set without a key",
            store(SET, b"", 0, 0, b"v", 0, 9),
            INVALID,
        ),
        (
            "noop with a body",
            Req {
                opcode: NOOP,
                value: b"v",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        ("version with a key", req(VERSION, b"k", 9), INVALID),
        ("quit with a key", req(QUIT, b"k", 9), INVALID),
        (
            "incr with 4 bytes of extras",
            Req {
                opcode: INCR,
                key: b"s",
                extras: b"1234",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        (
            "delete with extras",
            Req {
                opcode: DELETE,
                key: b"s",
                extras: b"1234",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        ("touch without extras", req(TOUCH, b"g", 9), INVALID),
        (
            "append with extras",
            Req {
                opcode: APPEND,
                key: b"a",
                extras: b"1234",
                value: b"X",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        ("flush with a key", req(FLUSH, b"k", 9), INVALID),
        (
            "flush with 8 bytes of extras",
            Req {
                opcode: FLUSH,
                extras: b"12345678",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        (
            "stat with extras",
            Req {
                opcode: STAT,
                extras: b"1234",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
        (
            "sasl auth without a key",
            Req {
                opcode: SASL_AUTH,
                value: b"xx",
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            INVALID,
        ),
    ];
    for (name, bad, status) in cases {
        let conv = cat(&[store(SET, b"x", 0, 0, b"1", 0, 1), bad, req(NOOP, b"", 2)]);
        let (r, s) = p.run(|srv| srv.connect().send_binary(&conv));
        assert_binary_same(name, &r, &s);
        assert!(r.closed, "{name}: memcached kept the connection");
        let got = summary(&r);
        assert_eq!(got.len(), 2, "{name}: {got:?}");
        assert_eq!((got[1].1, got[1].2), (status, 9), "{name}");
    }
    // a key of 250 bytes is fine
    let r = p.binary_steps(&[&req(GET, &[b'k'; 250], 1)]);
    assert_eq!(summary(&r[0]), [(GET, NOT_FOUND, 1)]);
}

/// A first byte other than 0x80 on a binary connection closes it, and
/// the replies memcached had not yet written are lost (a noop writes them).
#[test]
fn bad_magic_closes_and_drops_unwritten_replies() {
    let p = bin_pair!();
    let bad = Req {
        magic: Some(0x81),
        opcode: NOOP,
        opaque: 3,
        ..Req::default()
    }
    .bytes();
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "after a set and get",
            cat(&[
                store(SET, b"g", 0, 0, b"x", 0, 1),
                req(GET, b"g", 2),
                bad.clone(),
            ]),
            0,
        ),
        (
            "after a noop",
            cat(&[
                store(SET, b"g", 0, 0, b"x", 0, 1),
                req(NOOP, b"", 2),
                req(GET, b"g", 4),
                bad.clone(),
            ]),
            2,
        ),
        // a touch with a body: the body is read as the next header
        (
            "after a touch with a body",
            cat(&[Req {
                opcode: TOUCH,
                key: b"g",
                extras: &0u32.to_be_bytes(),
                value: b"vvvv",
                opaque: 5,
                ..Req::default()
            }
            .bytes()]),
            0,
        ),
        ("text", b"version\r\n".to_vec(), 0),
    ];
    for (name, conv, replies) in cases {
        // the first request decides the protocol: make it binary
        let conv = cat(&[req(NOOP, b"", 0), conv]);
        let (r, s) = p.run(|srv| srv.connect().send_binary(&conv));
        assert_binary_same(name, &r, &s);
        assert!(r.closed, "{name}");
        assert_eq!(summary(&r).len(), replies + 1, "{name}");
    }
    // a bad magic in a later batch: what was written stays written
    let r = p.binary_steps(&[
        &cat(&[store(SET, b"g", 0, 0, b"x", 0, 1), req(GET, b"g", 2)]),
        &bad,
    ]);
    assert!(r[1].closed);
    assert_eq!(summary(&r[0]), [(SET, OK, 1), (GET, OK, 2)]);
}

/// Values over -I: "Too large" once the value has been discarded, and a
/// set drops the old value.
#[test]
fn too_large_values() {
    let p = bin_pair!("-I", "2k", "-o", "slab_chunk_max=1024");
    let big = vec![b'x'; 3000];
    let r = p.binary_steps(&[
        &store(SET, b"b", 0, 0, b"1", 0, 1),
        &cat(&[store(SET, b"b", 0, 0, &big, 0, 2), req(GET, b"b", 3)]),
        &cat(&[
            store(SET, b"b", 0, 0, b"1", 0, 4),
            store(ADD, b"b", 0, 0, &big, 0, 5),
            store(SETQ, b"b", 0, 0, &big, 0, 6),
            req(GET, b"b", 7),
        ]),
        &cat(&[
            store(SET, b"b", 0, 0, b"1", 0, 8),
            Req {
                opcode: APPEND,
                key: b"b",
                value: &big,
                opaque: 9,
                ..Req::default()
            }
            .bytes(),
            req(GET, b"b", 10),
        ]),
        // the combined value too large: not stored
        &cat(&[
            store(SET, b"c", 0, 0, &[b'y'; 1900], 0, 11),
            Req {
                opcode: APPEND,
                key: b"c",
                value: &[b'z'; 200],
                opaque: 12,
                ..Req::default()
            }
            .bytes(),
        ]),
    ]);
    assert_eq!(summary(&r[1]), [(SET, TOO_LARGE, 2), (GET, NOT_FOUND, 3)]);
    assert_eq!(packets(&r[1])[0].value, b"Too large.");
    assert_eq!(
        summary(&r[2]),
        [
            (SET, OK, 4),
            (ADD, TOO_LARGE, 5),
            (SETQ, TOO_LARGE, 6),
            (GET, NOT_FOUND, 7)
        ]
    );
    assert_eq!(
        summary(&r[3]),
        [(SET, OK, 8), (APPEND, TOO_LARGE, 9), (GET, OK, 10)]
    );
    assert_eq!(summary(&r[4]), [(SET, OK, 11), (APPEND, NOT_STORED, 12)]);
    let (rs, ss) = p.stats("");
    let keep = ["cmd_set", "store_too_large"];
    assert_stats_eq(
        "stats",
        &filter_stats(&rs, &keep),
        &filter_stats(&ss, &keep),
        &[],
    );
    // memcached answers only once it has discarded the whole body.
    let value = 1 << 20;
    let head = Req {
        opcode: SET,
        key: b"h",
        extras: &[0; 8],
        body_len: Some(value + 9),
        opaque: 13,
        ..Req::default()
    }
    .bytes();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        c.write_raw(&cat(&[head.clone(), vec![b'v'; 1000]]));
        let early = c.read_binary_reply(std::time::Duration::from_millis(300));
        c.write_raw(&vec![b'v'; value as usize - 1000]);
        (early, c.send_binary(&req(GET, b"h", 14)))
    });
    assert_binary_same("before the body", &r.0, &s.0);
    assert_binary_same("after the body", &r.1, &s.1);
    assert!(r.0.bytes.is_empty());
    assert_eq!(summary(&r.1), [(SET, TOO_LARGE, 13), (GET, NOT_FOUND, 14)]);
}

/// Requests split anywhere, down to one byte per write.
#[test]
fn requests_in_pieces() {
    let p = bin_pair!();
    let conv = cat(&[
        store(SET, b"k", 1, 0, b"hello world", 0, 1),
        req(GETK, b"k", 2),
        delta(INCR, b"n", 1, 5, 0, 0, 3),
        Req {
            opcode: APPEND,
            key: b"k",
            value: b"!",
            opaque: 4,
            ..Req::default()
        }
        .bytes(),
        req(GETQ, b"k", 5),
        req(DELETE, b"k", 6),
    ]);
    let whole = p.binary_steps(&[&conv, &req(FLUSH, b"", 7)]);
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        for b in &conv {
            c.write_raw(std::slice::from_ref(b));
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        c.send_binary(b"")
    });
    assert_binary_same("bytewise", &r, &s);
    // the same answers but for the cas values (the flush took one)
    let strip = |r: &Reply| {
        packets(r)
            .into_iter()
            .map(|p| (p.opcode, p.status, p.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&r), strip(&whole[0]));
}

/// `-B binary`: every connection is binary; text closes it.
/// `-B ascii`: binary bytes are read as text.
/// `-B auto`: the first byte decides, for the whole connection.
#[test]
fn protocol_negotiation() {
    let p = bin_pair!("-B", "binary");
    let r = p.binary_steps(&[&req(NOOP, b"", 1)]);
    assert_eq!(summary(&r[0]), [(NOOP, OK, 1)]);
    // memcached waits for a whole header (24 bytes) before it looks at one
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        c.write_raw(b"version\r\nversion\r\nversion\r\n");
        c.read_to_eof(std::time::Duration::from_secs(5))
    });
    assert_same("text on -B binary", &r, &s);
    assert!(r.closed && r.bytes.is_empty());
    let settings =
        p.run(|srv| bin::stats(&srv.connect().send_binary(&req(STAT, b"settings", 0)).bytes));
    assert_eq!(stat(&settings.0, "binding_protocol"), Some("binary"));
    assert_eq!(stat(&settings.1, "binding_protocol"), Some("binary"));

    let p = bin_pair!("-B", "ascii");
    let conv = cat(&[req(NOOP, b"", 1), b"\r\n".to_vec()]);
    let (r, s) = p.run(|srv| srv.converse(&conv));
    assert_same("binary on -B ascii", &r, &s);
    assert_reference("binary on -B ascii", &r, b"ERROR\r\nERROR\r\n");

    let p = bin_pair!();
    // a binary connection stays binary: later text is a bad magic
    let r = p.binary_steps(&[&req(NOOP, b"", 1), b"version\r\n"]);
    assert!(r[1].closed);
    // a text connection stays text
    let r = p.diff(&cat(&[
        b"version\r\n".to_vec(),
        req(NOOP, b"", 1),
        b"\r\n".to_vec(),
    ]));
    assert_reference(
        "text then binary",
        &r,
        b"VERSION <version>\r\nERROR\r\nERROR\r\n",
    );
}

#[test]
fn binary_stats_after_workload() {
    let p = bin_pair!();
    let never = u32::MAX;
    let workload = cat(&[
        req(GET, b"a", 1),
        req(GETQ, b"a", 2),
        store(SET, b"a", 0, 0, b"1", 0, 3),
        req(GET, b"a", 4),
        req(GETK, b"a", 5),
        bin::touch(TOUCH, b"a", 10, 6),
        bin::touch(TOUCH, b"b", 10, 7),
        bin::touch(GAT, b"a", 10, 8),
        bin::touch(GATQ, b"b", 10, 9),
        req(DELETE, b"b", 10),
        Req {
            opcode: DELETE,
            key: b"a",
            cas: 99,
            opaque: 11,
            ..Req::default()
        }
        .bytes(),
        req(DELETE, b"a", 12),
        delta(INCR, b"n", 1, 0, never, 0, 13),
        delta(INCR, b"n", 1, 5, 0, 0, 14),
        delta(INCR, b"n", 1, 5, 0, 0, 15),
        delta(DECR, b"n", 1, 5, 0, 0, 16),
        delta(DECR, b"n", 1, 5, 0, 99, 17),
        store(SET, b"c", 0, 0, b"1", 99, 18),
        store(SET, b"a", 0, 0, b"1", 0, 19),
        store(ADD, b"a", 0, 0, b"1", 0, 20),
        Req {
            opcode: APPEND,
            key: b"q",
            value: b"x",
            opaque: 21,
            ..Req::default()
        }
        .bytes(),
        req(FLUSH, b"", 22),
    ]);
    // One connection: another one might still be closing when stats count.
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        c.send_binary(&workload);
        bin::stats(&c.send_binary(&req(STAT, b"", 0)).bytes)
    });
    let ignored: Vec<&str> = IGNORED_STATS.iter().copied().chain(["bytes"]).collect();
    assert_stats_eq("binary stats", &r, &s, &ignored);
    for (name, want) in [
        ("cmd_get", 4),
        ("cmd_touch", 4),
        ("cmd_set", 5),
        ("get_hits", 2),
        ("touch_hits", 2),
        ("touch_misses", 2),
        ("delete_misses", 1),
        ("incr_misses", 1),
        ("cas_misses", 1),
        ("cmd_flush", 1),
    ] {
        assert_eq!(stat_u64(&r, name), want, "{name}");
    }
}

/// With -C a cas in a request is ignored by stores (memcached cannot set
/// one on the new item) but not by delete or incr.
#[test]
fn without_cas() {
    let p = bin_pair!("-C");
    let r = p.binary_steps(&[&cat(&[
        store(SET, b"a", 0, 0, b"1", 0, 1),
        store(SET, b"a", 0, 0, b"2", 5, 2),
        store(ADD, b"a", 0, 0, b"2", 5, 3),
        Req {
            opcode: APPEND,
            key: b"a",
            value: b"3",
            cas: 7,
            opaque: 4,
            ..Req::default()
        }
        .bytes(),
        delta(INCR, b"n", 1, 1, 0, 0, 5),
        delta(INCR, b"n", 1, 1, 0, 3, 6),
        Req {
            opcode: DELETE,
            key: b"a",
            cas: 7,
            opaque: 7,
            ..Req::default()
        }
        .bytes(),
        req(GET, b"a", 8),
    ])]);
    assert_eq!(
        summary(&r[0]),
        [
            (SET, OK, 1),
            (SET, OK, 2),
            (ADD, EXISTS, 3),
            (APPEND, OK, 4),
            (INCR, OK, 5),
            (INCR, EXISTS, 6),
            (DELETE, EXISTS, 7),
            (GET, OK, 8),
        ]
    );
    assert!(packets(&r[0]).iter().all(|p| p.cas == 0));
}
