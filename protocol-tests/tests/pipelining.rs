//! Pipelining and fragmented delivery: many commands in one write, the same
//! conversation one byte at a time, and small conversations split at every
//! position.
//!
//! The conversations read counters back after incr/decr, which memcached
//! pads in place only when its background LRU threads hold no reference to
//! the item: they run with `-o no_lru_maintainer,no_lru_crawler`.

use protocol_tests::*;

/// 100 mixed commands (with noreply ones and errors) in one conversation.
fn mixed_conversation() -> Vec<u8> {
    let mut c = Vec::new();
    for i in 0..100u32 {
        let key = format!("k{}", i % 17);
        let cmd = match i % 14 {
            0 => set_cmd(&key, i, 0, format!("value-{i}").as_bytes()),
            1 => format!("get {key} k{}\r\n", (i + 1) % 17).into_bytes(),
            2 => storage_cmd("add", &key, 1, 0, b"added"),
            3 => storage_cmd("append", &key, 0, 0, b"+a"),
            4 => storage_cmd("prepend", &key, 0, 0, b"p+"),
            5 => format!("gets {key}\r\n").into_bytes(),
            6 => set_cmd(&key, 0, 0, i.to_string().as_bytes()),
            7 => format!("incr {key} 7\r\n").into_bytes(),
            8 => format!("decr {key} 3 noreply\r\n").into_bytes(),
            9 => format!("touch {key} 100\r\n").into_bytes(),
            10 => format!("delete {key}\r\n").into_bytes(),
            11 => storage_cmd("replace", &key, 5, 0, b"replaced"),
            12 => b"bogus command\r\n".to_vec(),
            _ => format!("set {key} 0 0 2 noreply\r\nnr\r\ngat 50 {key}\r\n").into_bytes(),
        };
        c.extend(cmd);
    }
    c.extend(b"get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12 k13 k14 k15 k16\r\n");
    c
}

#[test]
fn hundred_mixed_commands_in_one_write() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let r = p.diff(&mixed_conversation());
    let text = r.text();
    // sanity of the reference transcript
    assert!(text.matches("STORED\r\n").count() >= 20, "{text}");
    assert!(text.contains("ERROR\r\n"));
    assert!(text.ends_with("END\r\n"));
}

/// Wall clock: ~1-2 s (0.3 ms pause per byte, both servers concurrently).
#[test]
fn hundred_mixed_commands_one_byte_at_a_time() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let whole = p.diff(&mixed_conversation());
    // the servers now hold state; flush and run again byte by byte
    p.check(b"flush_all\r\n", b"OK\r\n");
    let bytewise = p.diff_with(&mixed_conversation(), Delivery::Bytewise);
    // cas uniques differ between the two runs; compare with them masked
    let mask = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| {
                if l.starts_with("VALUE ") && l.split(' ').count() == 5 {
                    l.rsplit_once(' ').map(|(a, _)| a).unwrap_or(l).to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(mask(&whole.bytes), mask(&bytewise.bytes));
}

#[test]
fn mixed_commands_in_chunks() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    for n in [2, 7, 64, 1000] {
        p.check(b"flush_all\r\n", b"OK\r\n");
        p.diff_with(&mixed_conversation(), Delivery::Chunks(n));
    }
}

/// Small conversations, each split in two at every possible position.
#[test]
fn split_at_every_position() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let conversations: &[&[u8]] = &[
        b"set k 1 0 5\r\nhello\r\nget k\r\n",
        b"set k 0 0 5 noreply\r\nab\r\nd\r\ngets k\r\n",
        b"incr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\n",
        b"get a b c\r\ndelete k\r\ntouch k 1\r\n",
        b"set bad 0 0 2\r\nabcd\r\nget bad\r\n",
        b"append k 0 0 3\r\n\r\n\r\r\nget k\n",
        b"stats detail dump\r\nverbosity 1\r\n",
    ];
    for conv in conversations {
        p.check(b"flush_all\r\n", b"OK\r\n");
        let reference_whole = p.diff(conv);
        for at in 1..conv.len() {
            p.check(b"flush_all\r\n", b"OK\r\n");
            let r = p.diff_with(conv, Delivery::SplitAt(at));
            // the replies are independent of where the bytes were split
            let strip_cas = |b: &[u8]| {
                String::from_utf8_lossy(b)
                    .lines()
                    .map(|l| {
                        if l.starts_with("VALUE ") && l.split(' ').count() == 5 {
                            l.rsplit_once(' ').map(|(a, _)| a).unwrap_or(l).to_string()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                strip_cas(&r.bytes),
                strip_cas(&reference_whole.bytes),
                "split at {at} of {}",
                describe(conv)
            );
        }
    }
}

/// A large multi-get reply while the client keeps pipelining.
#[test]
fn large_replies_pipelined() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let value = vec![b'v'; 100_000];
    let mut setup = Vec::new();
    for i in 0..20 {
        setup.extend(set_cmd(&format!("big{i}"), 0, 0, &value));
    }
    let r = p.diff(&setup);
    assert_eq!(r.bytes, b"STORED\r\n".repeat(20));
    let keys: Vec<String> = (0..20).map(|i| format!("big{i}")).collect();
    let get = format!("get {}\r\n", keys.join(" "));
    let r = p.diff(get.repeat(5).as_bytes());
    let one: usize = keys
        .iter()
        .map(|k| format!("VALUE {k} 0 100000\r\n").len() + 100_002)
        .sum::<usize>()
        + "END\r\n".len();
    assert_eq!(r.bytes.len(), 5 * one);
}
