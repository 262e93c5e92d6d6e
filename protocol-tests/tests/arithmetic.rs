//! incr/decr.
//!
//! memcached rewrites a counter in place (padding with spaces) only when no
//! other thread holds a reference to the item; its LRU maintainer and
//! crawler threads sometimes do, and then it stores a new, unpadded item
//! instead. All tests here therefore run with those threads off
//! (`-o no_lru_maintainer,no_lru_crawler`), which makes memcached
//! deterministic.

use protocol_tests::*;

#[test]
fn incr_decr_basics() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    p.steps(&[
        (b"incr n 1\r\n", b"NOT_FOUND\r\n"),
        (b"decr n 1\r\n", b"NOT_FOUND\r\n"),
        (b"set n 5 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"2\r\n"),
        (b"incr n 0\r\n", b"2\r\n"),
        (b"decr n 1\r\n", b"1\r\n"),
        (b"gets n\r\n", b"VALUE n 5 1 4\r\n1\r\nEND\r\n"),
        (b"incr n 1 noreply\r\n", b""),
        (b"decr n 1 noreply\r\n", b""),
        (b"incr missing 1 noreply\r\n", b""),
        (b"incr n 1 x\r\n", b"2\r\n"),
        (b"incr n +5\r\n", b"7\r\n"),
        (b"incr n  5\r\n", b"12\r\n"),
        (b"get n\r\n", b"VALUE n 5 2\r\n12\r\nEND\r\n"),
    ]);
}

#[test]
fn incr_wraps_at_64_bits() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    p.steps(&[
        (b"set n 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"0\r\n"),
        (
            b"get n\r\n",
            b"VALUE n 0 20\r\n0                   \r\nEND\r\n",
        ),
        (
            b"incr n 18446744073709551615\r\n",
            b"18446744073709551615\r\n",
        ),
        (b"incr n 2\r\n", b"1\r\n"),
        (b"set n 0 0 19\r\n9223372036854775807\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"9223372036854775808\r\n"),
    ]);
}

#[test]
fn decr_floors_at_zero() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    p.steps(&[
        (b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (b"decr n 11\r\n", b"0\r\n"),
        (b"decr n 18446744073709551615\r\n", b"0\r\n"),
        (b"get n\r\n", b"VALUE n 0 2\r\n0 \r\nEND\r\n"),
    ]);
}

#[test]
fn length_growth_and_decr_padding() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    p.steps(&[
        (b"set n 0 0 2\r\n99\r\n", b"STORED\r\n"),
        // the value grows: a new item
        (b"incr n 1\r\n", b"100\r\n"),
        (b"gets n\r\n", b"VALUE n 0 3 2\r\n100\r\nEND\r\n"),
        // the value shrinks: rewritten in place, padded with spaces
        (b"decr n 91\r\n", b"9\r\n"),
        (b"gets n\r\n", b"VALUE n 0 3 3\r\n9  \r\nEND\r\n"),
        (b"incr n 1\r\n", b"10\r\n"),
        (b"get n\r\n", b"VALUE n 0 3\r\n10 \r\nEND\r\n"),
        (b"append n 0 0 1\r\n5\r\n", b"STORED\r\n"),
        (b"get n\r\n", b"VALUE n 0 4\r\n10 5\r\nEND\r\n"),
        (b"incr n 1\r\n", b"11\r\n"),
        (b"set n 0 0 3\r\n99 \r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"100\r\n"),
        (b"get n\r\n", b"VALUE n 0 3\r\n100\r\nEND\r\n"),
        (b"set n 0 0 5\r\n00042\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"43\r\n"),
        (b"get n\r\n", b"VALUE n 0 5\r\n43   \r\nEND\r\n"),
    ]);
}

#[test]
fn non_numeric_values() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let nonnum = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    p.steps(&[
        (b"set s 0 0 3\r\nabc\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", nonnum),
        (b"decr s 1\r\n", nonnum),
        (b"set s 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", nonnum),
        (b"set s 0 0 2\r\n-1\r\n", b"STORED\r\n"),
        (
            b"incr s 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set s 0 0 21\r\n184467440737095516150\r\n", b"STORED\r\n"),
        (
            b"incr s 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set s 0 0 20\r\n18446744073709551616\r\n", b"STORED\r\n"),
        (
            b"incr s 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set s 0 0 3\r\n 12\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", b"13\r\n"),
        (b"get s\r\n", b"VALUE s 0 3\r\n13 \r\nEND\r\n"),
        (b"set s 0 0 3\r\n1 2\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", b"2\r\n"),
        (b"set s 0 0 2\r\n+5\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", b"6\r\n"),
        (b"set s 0 0 3\r\n0x1\r\n", b"STORED\r\n"),
        (
            b"incr s 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set s 0 0 3\r\n1\r\n\r\n", b"STORED\r\n"),
        (b"incr s 1\r\n", b"2\r\n"),
        (b"get s\r\n", b"VALUE s 0 3\r\n2  \r\nEND\r\n"),
    ]);
}

#[test]
fn bad_deltas() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let bad = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    p.steps(&[
        (b"set n 0 0 1\r\n5\r\n", b"STORED\r\n"),
        (b"incr n -1\r\n", bad),
        (b"incr n abc\r\n", bad),
        (b"incr n 18446744073709551616\r\n", bad),
        (
            b"decr n 1x\r\n",
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (
            b"decr n 0x1\r\n",
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (b"incr n\r\n", b"ERROR\r\n"),
        (b"incr\r\n", b"ERROR\r\n"),
        (b"incr n 1 noreply extra\r\n", b"ERROR\r\n"),
        (b"incr n -1 noreply\r\n", b""),
        (
            b"incr missing abc\r\n",
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (b"get n\r\n", b"VALUE n 0 1\r\n5\r\nEND\r\n"),
    ]);
}
