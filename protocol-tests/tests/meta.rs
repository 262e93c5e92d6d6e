//! Meta commands (`mg`, `ms`, `md`, `ma`, `me`, `mn`): every flag, its
//! errors, quiet mode, base64 keys, stale items and win tokens, mixed with
//! classic commands.
//!
//! Replies are compared with [`Pair::meta_steps`]: byte for byte, except
//! that times in seconds (`t`, `l`, `exp=`, `la=`) may differ by one (each
//! server's clock ticks at its own moment) and `me`'s `cls=`/`size=`
//! describe memcrab's smaller items. Both servers see the same commands
//! from a fresh start, so cas values are equal. The LRU maintainer and
//! crawler are off: with them memcached updates last-access times on its
//! own schedule.

use protocol_tests::*;

const QUIET_LRU: [&str; 2] = ["-o", "no_lru_maintainer,no_lru_crawler"];

macro_rules! meta_pair {
    ($($arg:expr),* $(,)?) => {
        pair!(QUIET_LRU[0], QUIET_LRU[1] $(, $arg)*)
    };
}

const LONG_OPAQUE: &str = "O123456789012345678901234567890123";

fn line(s: &str) -> Vec<u8> {
    format!("{s}\r\n").into_bytes()
}

#[test]
fn mg_hits_misses_and_return_flags() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"mg foo v\r\n", b"EN\r\n"),
        (b"ms foo 3 T0 F5\r\nabc\r\n", b"HD\r\n"),
        (b"mg foo\r\n", b"HD\r\n"),
        (b"mg foo v\r\n", b"VA 3\r\nabc\r\n"),
        (
            b"mg foo s v f c k t Oop\r\n",
            b"VA 3 s3 f5 c1 kfoo t-1 Oop\r\nabc\r\n",
        ),
        (b"mg foo k s f c O\r\n", b"HD kfoo s3 f5 c1 O\r\n"),
        // flags with tokens they do not need ignore them
        (b"mg foo kv t1\r\n", b"HD kfoo t-1\r\n"),
        // q hides only the miss
        (b"mg foo q\r\n", b"HD\r\n"),
        (b"mg foo q v\r\n", b"VA 3\r\nabc\r\n"),
        (b"mg nope q v k\r\n", b""),
        (b"mg nope k Oa1 s v\r\n", b"EN knope Oa1\r\n"),
        // P and L (proxy hints) are ignored
        (b"mg foo P L Pfoo\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg foo Pa Lb v\r\n", b"VA 3\r\nabc\r\n"),
        // mixed with classic commands
        (b"gets foo\r\n", b"VALUE foo 5 3 1\r\nabc\r\nEND\r\n"),
        (b"set foo 7 0 2\r\nxy\r\n", b"STORED\r\n"),
        (b"mg foo v f c\r\n", b"VA 2 f7 c2\r\nxy\r\n"),
        (b"mn\r\n", b"MN\r\n"),
        (b"mn extra tokens\r\n", b"MN\r\n"),
    ]);
}

#[test]
fn mg_flag_errors() {
    let p = meta_pair!();
    let too_many = "mg foo v v v v v v v v v v v v v v v v v v v v v v v v v v v v v";
    let key251 = format!("mg {} v", "k".repeat(251));
    p.meta_steps(&[
        (b"ms foo 1\r\nx\r\n", b"HD\r\n"),
        (b"mg\r\n", b"ERROR\r\n"),
        (b"mg \r\n", b"ERROR\r\n"),
        (b"mg foo v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg foo x\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg foo 1\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg foo !\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        // bytes above 126 read as duplicates in memcached's table
        (b"mg foo \x7f\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg foo \xc3\xa9\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (
            b"mg foo Nabc\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo T\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo R1x\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo Cx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo Fx\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"mg foo Dx\r\n",
            b"CLIENT_ERROR invalid numeric delta value\r\n",
        ),
        (
            b"mg foo Jx\r\n",
            b"CLIENT_ERROR invalid numeric initial value\r\n",
        ),
        (
            b"mg foo MEE\r\n",
            b"CLIENT_ERROR incorrect length for M token\r\n",
        ),
        // a later token error's message wins; a bad F leaves the last one
        (
            b"mg foo Fx Tx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo Tx Fx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (b"mg foo Tx x\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg foo Tx T1\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        // flags only other commands use are accepted and ignored
        (b"mg foo Mx I C5 F3 D2 J1 v\r\n", b"VA 1\r\nx\r\n"),
        (
            b"mg foo a b c d e f g h i j k l m n o p q r s t u\r\n",
            b"CLIENT_ERROR options flags are too long\r\n",
        ),
        (
            &line(too_many),
            b"CLIENT_ERROR options flags are too long\r\n",
        ),
        (
            b"mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n",
            b"CLIENT_ERROR invalid flag\r\n",
        ),
        (&line(&key251), b"CLIENT_ERROR bad command line format\r\n"),
        (
            b"mg foo O12345678901234567890123456789012\r\n",
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            b"mg foo O1234567890123456789012345678901\r\n",
            b"HD O1234567890123456789012345678901\r\n",
        ),
        // an over-long opaque is an error even on a quiet miss
        (
            &line(&format!("mg nope q {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mn\r\n", b"MN\r\n"),
    ]);
}

/// An over-long opaque stops mg half way: flags before it take effect.
#[test]
fn mg_opaque_error_after_a_touch() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (
            &line(&format!("mg a {LONG_OPAQUE} T30")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg a t\r\n", b"HD t-1\r\n"),
        (
            &line(&format!("mg a T30 {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg a t\r\n", b"HD t30\r\n"),
        // vivified, with the expiry of the flags before the opaque
        (
            &line(&format!("mg b N30 {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg b t v\r\n", b"VA 0 t30\r\n\r\n"),
        (
            &line(&format!("mg c {LONG_OPAQUE} N30")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg c t\r\n", b"HD t-1\r\n"),
    ]);
    let (r, s) = p.stats("");
    let keep = [
        "cmd_get",
        "get_hits",
        "get_misses",
        "cmd_touch",
        "touch_hits",
    ];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

#[test]
fn mg_ttl_touch_in_flag_order() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ms a 1 T100\r\nx\r\n", b"HD\r\n"),
        (b"mg a t T200\r\n", b"HD t100\r\n"),
        (b"mg a T300 t\r\n", b"HD t300\r\n"),
        (b"mg a T0 t\r\n", b"HD t-1\r\n"),
        (b"mg a t\r\n", b"HD t-1\r\n"),
        // an item stored without an expiry gets one
        (b"ms b 1\r\nx\r\n", b"HD\r\n"),
        (b"mg b T300 c\r\n", b"HD c2\r\n"),
        (b"mg b t c v\r\n", b"VA 1 t300 c2\r\nx\r\n"),
        // negative and out-of-range times
        (b"mg b T-1 t\r\n", b"HD t4294967235\r\n"),
        (b"mg b\r\n", b"EN\r\n"),
        (b"ms c 1 T4294967296\r\nx\r\n", b"HD\r\n"),
        (b"mg c t\r\n", b"HD t-1\r\n"),
        (b"ms c 1 T2147483648\r\nx\r\n", b"HD\r\n"),
        (b"mg c t\r\n", b"EN\r\n"),
    ]);
    let (r, s) = p.stats("");
    let keep = [
        "cmd_get",
        "get_hits",
        "get_misses",
        "cmd_touch",
        "touch_hits",
    ];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
    assert_eq!(stat_u64(&r, "cmd_touch"), 5);
}

#[test]
fn mg_hit_before_and_last_access() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ms h 1\r\nx\r\n", b"HD\r\n"),
        // u: looked at, not used
        (b"mg h h l u\r\n", b"HD h0 l0\r\n"),
        (b"mg h h l\r\n", b"HD h0 l0\r\n"),
        (b"mg h h l\r\n", b"HD h1 l0\r\n"),
        (b"ms h 1\r\nx\r\n", b"HD\r\n"),
        (b"mg h h\r\n", b"HD h0\r\n"),
        (b"touch h 0\r\n", b"TOUCHED\r\n"),
        (b"mg h h\r\n", b"HD h1\r\n"),
        (b"get h\r\n", b"VALUE h 0 1\r\nx\r\nEND\r\n"),
        (b"mg h h\r\n", b"HD h1\r\n"),
        // a touch that gives the item an expiry keeps it "hit"
        (b"ms h 1\r\nx\r\n", b"HD\r\n"),
        (b"touch h 100\r\n", b"TOUCHED\r\n"),
        (b"mg h h\r\n", b"HD h1\r\n"),
    ]);
}

/// Wall clock: ~2.2 s.
#[test]
fn mg_last_access_counts_seconds() {
    let p = meta_pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let first = c.send(b"ms a 1\r\nx\r\nmg a l h\r\n");
        std::thread::sleep(std::time::Duration::from_millis(2200));
        let later = c.send(b"mg a l h\r\nme a\r\n");
        (first, later)
    });
    assert_meta_same("first", &r.0, &s.0);
    assert_meta_same("later", &r.1, &s.1);
    assert_meta_reference(
        "later",
        &r.1,
        b"HD l2 h1\r\nME a exp=-1 la=2 cas=1 fetch=yes cls=1 size=61\r\n",
    );
}

#[test]
fn mg_vivify_recache_and_win_tokens() {
    let p = meta_pair!();
    p.meta_steps(&[
        // N: the first client to miss gets a stub and the win token
        (b"mg v N30 t c v s\r\n", b"VA 0 t30 c1 s0 W\r\n\r\n"),
        (b"mg v N30 t c v\r\n", b"VA 0 t30 c1 Z\r\n\r\n"),
        (b"mg v v\r\n", b"VA 0 Z\r\n\r\n"),
        // t before N sees the stub as created, without an expiry
        (b"mg w t N30 k q\r\n", b"HD t-1 kw W\r\n"),
        (b"mg w t\r\n", b"HD t30 Z\r\n"),
        // the winner stores; the token goes with the old item
        (b"ms v 3 T60\r\nnew\r\n", b"HD\r\n"),
        (b"mg v v t\r\n", b"VA 3 t60\r\nnew\r\n"),
        // R: win if the item expires sooner than the token says
        (b"mg v R30 t\r\n", b"HD t60\r\n"),
        (b"mg v R61 t\r\n", b"HD t60 W\r\n"),
        (b"mg v R61 t\r\n", b"HD t60 Z\r\n"),
        (b"ms r 1\r\nx\r\n", b"HD\r\n"),
        (b"mg r R100 N30 t\r\n", b"HD t-1\r\n"),
        // T before R changes the expiry R compares with
        (b"mg r T10 R20 t\r\n", b"HD t10 W\r\n"),
        (b"mg r R20 t\r\n", b"HD t10 Z\r\n"),
        (b"mg q N30 t R10\r\n", b"HD t30 W\r\n"),
        (b"mg q N30 t R40 v s\r\n", b"VA 0 t30 s0 Z\r\n\r\n"),
    ]);
    let (r, s) = p.stats("");
    let keep = [
        "cmd_get",
        "get_hits",
        "get_misses",
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
fn md_invalidate_and_stale_items() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ms a 1 T100 c\r\nx\r\n", b"HD c1\r\n"),
        (b"md a I T50 c\r\n", b"HD\r\n"),
        // stale: X, and the first reader wins the recache
        (b"mg a c t v\r\n", b"VA 1 c2 t50 X W\r\nx\r\n"),
        (b"mg a c t\r\n", b"HD c2 t50 Z X\r\n"),
        // a stale store (I with an older cas) keeps expiry and token
        (b"ms a 1 I C1 c T0\r\ny\r\n", b"HD c3\r\n"),
        (b"mg a c t v\r\n", b"VA 1 c3 t50 Z X\r\ny\r\n"),
        // a newer cas than the item's is just wrong
        (b"ms a 1 I C999 c\r\ny\r\n", b"EX c0\r\n"),
        // a plain set clears it all
        (b"ms a 1 I c\r\nz\r\n", b"HD c4\r\n"),
        (b"mg a c t v\r\n", b"VA 1 c4 t-1\r\nz\r\n"),
        (b"ms a 1 I C1 c\r\ny\r\n", b"HD c5\r\n"),
        (b"mg a\r\n", b"HD X W\r\n"),
        (b"md a I C1\r\n", b"EX\r\n"),
        (b"md a C1 I k\r\n", b"EX ka\r\n"),
        // invalidating hands the token back
        (b"md a I q\r\n", b""),
        (b"mg a c\r\n", b"HD c6 X W\r\n"),
        // I needs a cas store to matter
        (b"ms n 1 I ME\r\nx\r\n", b"HD\r\n"),
        (b"ms n 1 I MR C1\r\nx\r\n", b"HD\r\n"),
        (b"ms n 1 I MA C1\r\nx\r\n", b"EX\r\n"),
        (b"md n I\r\n", b"HD\r\n"),
        (b"mg n v\r\n", b"VA 1 X W\r\nx\r\n"),
        // md I on a missing key
        (b"md zz I k\r\n", b"NF kzz\r\n"),
        // classic commands see the value as usual
        (b"gets a\r\n", b"VALUE a 0 1 6\r\ny\r\nEND\r\n"),
    ]);
}

#[test]
fn ms_modes_cas_and_return_flags() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (b"ms a 1 c\r\nx\r\n", b"HD c2\r\n"),
        (b"ms a 1 q\r\nx\r\n", b""),
        (b"ms a 1 q ME\r\nx\r\n", b"NS\r\n"),
        (b"ms a 1 ME k c O5\r\nx\r\n", b"NS ka c0 O5\r\n"),
        (b"ms a 1 MS F7 T0 c k\r\nq\r\n", b"HD c4 ka\r\n"),
        (b"mg a f v\r\n", b"VA 1 f7\r\nq\r\n"),
        (b"ms b 1 C5\r\nx\r\n", b"NF\r\n"),
        (b"ms b 1 C5 q\r\nx\r\n", b"NF\r\n"),
        (b"ms a 1 C5 c k O1\r\nx\r\n", b"EX c0 ka O1\r\n"),
        (b"ms a 1 C0 c\r\nx\r\n", b"EX c0\r\n"),
        (b"ms a 1 C4 c\r\nx\r\n", b"HD c5\r\n"),
        // append and prepend, with and without a cas
        (b"ms a 2 MA C0\r\nyy\r\n", b"HD\r\n"),
        (b"ms a 2 MA C1\r\nyy\r\n", b"EX\r\n"),
        (b"ms a 2 MP c\r\nzz\r\n", b"HD c7\r\n"),
        (b"ms a 2 MA C7 c\r\n..\r\n", b"HD c8\r\n"),
        (b"mg a c v f\r\n", b"VA 7 c8 f0\r\nzzxyy..\r\n"),
        (b"ms b 2 MA\r\nzz\r\n", b"NS\r\n"),
        (b"ms b 2 MP N30 c t\r\nzz\r\n", b"NS c0\r\n"),
        (b"mg b\r\n", b"EN\r\n"),
        // replace, add
        (b"ms b 2 MR c\r\nqq\r\n", b"NS c0\r\n"),
        (b"ms b 2 MR C1 c\r\nqq\r\n", b"NF c0\r\n"),
        (b"ms b 2 ME C1 c\r\nqq\r\n", b"HD c9\r\n"),
        (b"ms b 2 MR C9 c\r\nrr\r\n", b"HD c10\r\n"),
        (b"ms b 2 MR c\r\nss\r\n", b"HD c11\r\n"),
        (b"ms b 2 ME\r\ntt\r\n", b"NS\r\n"),
        // the biggest flags and cas, an empty value
        (b"ms c 0 F4294967295\r\n\r\n", b"HD\r\n"),
        (b"mg c v s f\r\n", b"VA 0 s0 f4294967295\r\n\r\n"),
        (b"ms c 1 F4294967296\r\nx\r\n", b"HD\r\n"),
        (b"mg c f\r\n", b"HD f0\r\n"),
        (b"ms c 1 F+1\r\nx\r\n", b"HD\r\n"),
        (b"ms c 1 C18446744073709551615\r\nx\r\n", b"EX\r\n"),
        // a negative expiry stores an expired item
        (b"ms c 1 T-5\r\nx\r\n", b"HD\r\n"),
        (b"mg c\r\n", b"EN\r\n"),
        // flags only other commands use are accepted and ignored
        (b"ms d 1 s t f h l u v N5 R5 D3 J4 P L\r\nx\r\n", b"HD\r\n"),
        (b"get d\r\n", b"VALUE d 0 1\r\nx\r\nEND\r\n"),
    ]);
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
fn ms_errors_and_data_blocks() {
    let p = meta_pair!("-I", "2k", "-o", "slab_chunk_max=1024");
    let key251 = format!("ms {} 1", "k".repeat(251));
    let big = format!("ms big 3000\r\n{}\r\n", "x".repeat(3000));
    let many = "ms a 1 a b c d e f g h i j k l m n o p q";
    p.meta_steps(&[
        (b"ms big 1\r\nx\r\n", b"HD\r\n"),
        // errors before the length is known: the data is read as a command
        (b"ms\r\n", b"ERROR\r\n"),
        (b"ms a\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (
            b"ms a b\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"ms a -1\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"ms a 1x\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            &cat(&[&line(&key251), b"x\r\n"]),
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            &cat(&[&line(many), b"x\r\n"]),
            b"CLIENT_ERROR options flags too long\r\nERROR\r\n",
        ),
        // errors after it: the data is discarded
        (b"ms a 1 x\r\nx\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"ms a 1 v v\r\nx\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (
            b"ms a 1 Fabc\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms a 1 F-1\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms a 1 T\r\nx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"ms a 1 C18446744073709551616\r\nx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"ms a 1 Dx\r\nx\r\n",
            b"CLIENT_ERROR invalid numeric delta value\r\n",
        ),
        (
            b"ms a 1 Jx\r\nx\r\n",
            b"CLIENT_ERROR invalid numeric initial value\r\n",
        ),
        (
            b"ms a 1 MX\r\nx\r\n",
            b"CLIENT_ERROR invalid mode for ms M token\r\n",
        ),
        (
            b"ms a 1 MEE\r\nx\r\n",
            b"CLIENT_ERROR incorrect length for M token\r\n",
        ),
        (
            b"ms a 1 M\r\nx\r\n",
            b"CLIENT_ERROR incorrect length for M token\r\n",
        ),
        (b"ms a 1 E5\r\nx\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (
            &cat(&[&line(&format!("ms a 1 q {LONG_OPAQUE}")), b"x\r\n"]),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            &cat(&[&line(&format!("ms a 1 {LONG_OPAQUE} MX")), b"x\r\n"]),
            b"CLIENT_ERROR invalid mode for ms M token\r\n",
        ),
        (
            b"ms a 1 MX Tx\r\nx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"ms a 1 k c O12 b\r\nx\r\n",
            b"CLIENT_ERROR error decoding key\r\n",
        ),
        // a bad data block, quiet or not
        (
            b"ms a 1 q\r\nxyz\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"ms a 1\r\nxyz\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        // too large for -I: discarded, and the old value goes, whatever the mode
        (
            big.as_bytes(),
            b"SERVER_ERROR object too large for cache\r\n",
        ),
        (b"mg big v\r\n", b"EN\r\n"),
        (b"ms big 1 ME\r\nx\r\n", b"HD\r\n"),
        (
            big.replace("3000", "3000 ME q").as_bytes(),
            b"SERVER_ERROR object too large for cache\r\n",
        ),
        (b"mg big v\r\n", b"EN\r\n"),
        (b"mn\r\n", b"MN\r\n"),
    ]);
}

/// A data block that arrives in pieces, or with the next command.
#[test]
fn ms_data_in_pieces() {
    let p = meta_pair!();
    let conv = b"ms a 5 T0 c\r\nhello\r\nmg a v c\r\nms b 2 MA\r\nxx\r\nms a 5 q\r\nworld\r\nmg a v\r\nmn\r\n";
    let r = p.diff_with(conv, Delivery::Bytewise);
    assert_reference(
        "bytewise",
        &r,
        b"HD c1\r\nVA 5 c1\r\nhello\r\nNS\r\nVA 5\r\nworld\r\nMN\r\n",
    );
    for at in [3, 12, 15, 17, 30] {
        p.check(b"flush_all\r\n", b"OK\r\n");
        p.diff_with(conv, Delivery::SplitAt(at));
    }
}

#[test]
fn md_flags_and_errors() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"md a\r\n", b"NF\r\n"),
        // q hides only the nominal reply
        (b"md a q\r\n", b"NF\r\n"),
        (b"md a k O1\r\n", b"NF ka O1\r\n"),
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (b"md a k O1 C99\r\n", b"EX ka O1\r\n"),
        (b"md a k O1 C99 q\r\n", b"EX ka O1\r\n"),
        (b"md a k O1 C1\r\n", b"HD ka O1\r\n"),
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (b"md a q\r\n", b""),
        (b"mg a\r\n", b"EN\r\n"),
        (b"md\r\n", b"ERROR\r\n"),
        (b"md a x\r\n", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md a b\r\n", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (
            b"md a Cx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md a k k\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md a b c d e f g h i j k l m n o p q r s\r\n",
            b"CLIENT_ERROR options flags too long\r\n",
        ),
        // T alone does nothing; other flags are accepted and ignored
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (
            b"md a T30 c t s f h l u v N5 R5 M5 J5 D5 F5 P L\r\n",
            b"HD\r\n",
        ),
        // an over-long opaque is found before the item is deleted
        (b"ms a 1\r\nx\r\n", b"HD\r\n"),
        (
            &line(&format!("md a q {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg a v\r\n", b"VA 1\r\nx\r\n"),
    ]);
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
fn ma_modes_and_flags() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"ma n\r\n", b"NF\r\n"),
        (b"ma n q\r\n", b"NF\r\n"),
        (b"ma n k O1 v t c\r\n", b"NF kn O1\r\n"),
        // N creates the item with J (0 by default); the reply is that value
        (b"ma n N0\r\n", b"HD\r\n"),
        (b"ma n v\r\n", b"VA 1\r\n1\r\n"),
        (b"ma m N0 J10 v k t c\r\n", b"VA 2 km t-1 c3\r\n10\r\n"),
        (b"ma m N0 J10 v k t c\r\n", b"VA 2 km t-1 c4\r\n11\r\n"),
        (b"ma o N90 J5 t v\r\n", b"VA 1 t90\r\n5\r\n"),
        (b"ma p t N90 v\r\n", b"VA 1 t-1\r\n0\r\n"),
        (b"mg p t\r\n", b"HD t90\r\n"),
        (b"ma n D5 MD v\r\n", b"VA 1\r\n0\r\n"),
        (b"ma n D50 M- v\r\n", b"VA 1\r\n0\r\n"),
        (b"ma n MI v\r\n", b"VA 1\r\n1\r\n"),
        (b"ma n M+ v D18446744073709551615\r\n", b"VA 1\r\n0\r\n"),
        (
            b"ma n Mi v\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (
            b"ma n Md v\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (
            b"ma n Mx v\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (b"ma n q\r\n", b""),
        (b"ma n q v\r\n", b""),
        (b"ma n C1 v\r\n", b"EX\r\n"),
        (b"ma n C1 v q k\r\n", b"EX kn\r\n"),
        (b"ma n C0 v c\r\n", b"VA 1 c13\r\n3\r\n"),
        (b"ma n C13 v c\r\n", b"VA 1 c14\r\n4\r\n"),
        (
            b"ma n Dx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"ma n Jx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (b"ma n x\r\n", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma\r\n", b"ERROR\r\n"),
        // t before and after T
        (b"ma n T100 t v\r\n", b"VA 1 t100\r\n5\r\n"),
        (b"ma n t T200 v\r\n", b"VA 1 t100\r\n6\r\n"),
        (b"mg n v t\r\n", b"VA 1 t200\r\n6\r\n"),
        // counters are rewritten in place, padded, as incr does
        (b"ms w 3\r\n100\r\n", b"HD\r\n"),
        (b"ma w MD D91 v\r\n", b"VA 1\r\n9\r\n"),
        (b"get w\r\n", b"VALUE w 0 3\r\n9  \r\nEND\r\n"),
        (b"ma w D991 v\r\n", b"VA 4\r\n1000\r\n"),
        (b"get w\r\n", b"VALUE w 0 4\r\n1000\r\nEND\r\n"),
        (b"ms s 3\r\nabc\r\n", b"HD\r\n"),
        (
            b"ma s\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            b"ma s q\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        // the cas is checked before the value
        (b"ma s C99\r\n", b"EX\r\n"),
        // an over-long opaque is found after the change is made
        (
            &line(&format!("ma n {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            &line(&format!("ma z N0 {LONG_OPAQUE}")),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            &line(&format!("ma s q {LONG_OPAQUE}")),
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"mg n v\r\n", b"VA 1\r\n7\r\n"),
        (b"mg z v\r\n", b"VA 1\r\n0\r\n"),
    ]);
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

#[test]
fn me_debug_lines() {
    let p = meta_pair!();
    let key251 = format!("me {}", "k".repeat(251));
    p.meta_steps(&[
        (b"me a\r\n", b"EN\r\n"),
        (b"me\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"me \r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (&line(&key251), b"CLIENT_ERROR bad command line format\r\n"),
        (b"ms a 1 T100\r\nx\r\n", b"HD\r\n"),
        (
            b"me a\r\n",
            b"ME a exp=-100 la=0 cas=1 fetch=no cls=1 size=61\r\n",
        ),
        // me is not a use of the item
        (
            b"me a x\r\n",
            b"ME a exp=-100 la=0 cas=1 fetch=no cls=1 size=61\r\n",
        ),
        (b"mg a\r\n", b"HD\r\n"),
        (
            b"me a bb\r\n",
            b"ME a exp=-100 la=0 cas=1 fetch=yes cls=1 size=61\r\n",
        ),
        (b"me a b\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (
            b"me YQ== b\r\n",
            b"ME a exp=-100 la=0 cas=1 fetch=yes cls=1 size=61\r\n",
        ),
        (b"ms YQ== 1 b\r\nx\r\n", b"HD\r\n"),
        (
            b"me a\r\n",
            b"ME YQ== exp=-1 la=0 cas=2 fetch=no cls=1 size=61\r\n",
        ),
    ]);
    let (r, s) = p.stats("");
    let keep = ["cmd_meta", "cmd_get", "get_hits"];
    assert_stats_eq(
        "stats",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
    assert_eq!(stat_u64(&r, "cmd_meta"), 6);
}

#[test]
fn base64_keys() {
    let p = meta_pair!();
    let key: Vec<u8> = (1..=180u8).collect();
    let b64 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0";
    assert_eq!(key.len(), 180);
    p.meta_steps(&[
        (b"ms YQ== 1 k c O12 b\r\nx\r\n", b"HD kYQ== b c1 O12\r\n"),
        (b"ms YQ== 1 b c k\r\nx\r\n", b"HD c2 kYQ== b\r\n"),
        // the item remembers its key was binary
        (b"mg a k c v\r\n", b"VA 1 kYQ== b c2\r\nx\r\n"),
        (b"mg YQ== b k c v\r\n", b"VA 1 kYQ== b c2\r\nx\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        // a classic set makes it a text key again
        (b"set a 0 0 1\r\ny\r\n", b"STORED\r\n"),
        (b"mg YQ== b k\r\n", b"HD ka\r\n"),
        (
            &cat(&[&line(&format!("ms {b64} 1 b k")), b"x\r\n"]),
            &line(&format!("HD k{b64} b")),
        ),
        (
            &line(&format!("mg {b64} b k v")),
            &cat(&[&line(&format!("VA 1 k{b64} b")), b"x\r\n"]),
        ),
        (&line(&format!("md {b64} b k q")), b""),
        (
            &line(&format!("md {b64} b k")),
            &line(&format!("NF k{b64} b")),
        ),
        (
            &line(&format!("ma {b64} b k N0")),
            &line(&format!("HD k{b64} b")),
        ),
        // memcached's lenient decoder
        (b"mg Y!Q== b k\r\n", b"HD ka\r\n"),
        (b"mg YQ=x b k\r\n", b"EN kYQA= b\r\n"),
        (b"mg Y=Q= b k\r\n", b"EN kYA== b\r\n"),
        (b"mg YQ==YWJj b k\r\n", b"HD ka\r\n"),
        (b"mg YW=j b k\r\n", b"EN kYWA= b\r\n"),
        (b"mg YQ=!= b k\r\n", b"HD ka\r\n"),
        (b"mg +/+/ b k\r\n", b"EN k+/+/ b\r\n"),
        (b"mg Y=== b k\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg ==== b k\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg YQ b k\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg -_-_ b\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg YQ b b\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (
            b"ma YQ b\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
    ]);
}

/// Quiet commands in one write, ended by `mn`: only what is not nominal
/// comes back, in order.
#[test]
fn quiet_pipeline_with_mn() {
    let p = meta_pair!();
    let mut conv = Vec::new();
    for i in 0..50 {
        conv.extend(format!("ms k{i} 2 q T0 F{i}\r\n{:02}\r\n", i % 100).into_bytes());
    }
    for i in 0..60 {
        conv.extend(format!("mg k{i} q v f k O{i}\r\n").into_bytes());
    }
    conv.extend(b"md k3 q\r\nmd k3 q\r\nma k4 q\r\nma k4 q v C1\r\nms k5 1 q ME\r\nx\r\nmn\r\n");
    let r = p.diff(&conv);
    let text = r.text();
    assert_eq!(text.matches("VA 2 ").count(), 50);
    assert!(text.ends_with("NF\r\nEX\r\nNS\r\nMN\r\n"), "{text}");
}

#[test]
fn meta_stats_after_workload() {
    let p = meta_pair!();
    let big = cat(&[
        b"ms big 5000 T0\r\n",
        &[b'x'; 5000][..],
        b"\r\nmg big s\r\n",
    ]);
    let steps: &[&[u8]] = &[
        b"mg a v\r\nms a 1\r\nx\r\nmg a v\r\nmg a T30\r\nmg b T30\r\nmg a u\r\nmg c N30\r\nmg c N30\r\n",
        b"md x\r\nms d 1\r\nx\r\nmd d C5\r\nmd d I\r\nmd d\r\n",
        b"ma e\r\nma e MD\r\nma e N0\r\nma e\r\nma e MD\r\nma e C9\r\nms s 1\r\nx\r\nma s\r\n",
        b"ms f 1 C5\r\nx\r\nms f 1\r\nx\r\nms f 1 C5\r\nx\r\nms f 1 C2\r\nx\r\nms f 1 ME\r\nx\r\n",
        b"ms f 1 MA C1\r\nx\r\nms f 1 I C1\r\nx\r\nme f\r\nme g\r\nme\r\n",
        &big,
    ];
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let replies: Vec<Reply> = steps.iter().map(|step| c.send(step)).collect();
        (replies, c.stats(""))
    });
    for (i, (r, s)) in r.0.iter().zip(&s.0).enumerate() {
        assert_meta_same(&format!("step {i}"), r, s);
    }
    // lrutail_reflocked: memcached's allocation met an item it was still
    // reading (its LRU); memcrab has no such state.
    let ignored: Vec<&str> = IGNORED_STATS
        .iter()
        .copied()
        .chain(["bytes", "lrutail_reflocked"])
        .collect();
    assert_stats_eq("stats after meta workload", &r.1, &s.1, &ignored);
    for (name, want) in [
        ("cmd_get", 7),
        ("cmd_touch", 1),
        ("cmd_meta", 2),
        ("cmd_set", 11),
        ("cas_badval", 2),
        ("curr_items", 6),
    ] {
        assert_eq!(stat_u64(&r.1, name), want, "{name}");
    }
}

/// Keys are stored as given: the same key through mg, get and md.
#[test]
fn meta_and_classic_share_items() {
    let p = meta_pair!();
    p.meta_steps(&[
        (b"set k 3 0 2\r\nab\r\n", b"STORED\r\n"),
        (b"mg k v f c s\r\n", b"VA 2 f3 c1 s2\r\nab\r\n"),
        (b"ms k 2 MA\r\ncd\r\n", b"HD\r\n"),
        (b"gets k\r\n", b"VALUE k 3 4 2\r\nabcd\r\nEND\r\n"),
        (b"ms k 1 C2 c\r\n5\r\n", b"HD c3\r\n"),
        (b"incr k 1\r\n", b"6\r\n"),
        (b"ma k v c\r\n", b"VA 1 c5\r\n7\r\n"),
        (b"cas k 0 0 1 5\r\n8\r\n", b"STORED\r\n"),
        (b"touch k 100\r\n", b"TOUCHED\r\n"),
        (b"mg k t c v\r\n", b"VA 1 t100 c6\r\n8\r\n"),
        (b"delete k\r\n", b"DELETED\r\n"),
        (b"md k\r\n", b"NF\r\n"),
        (b"flush_all\r\n", b"OK\r\n"),
        (b"mg k v N0\r\n", b"VA 0 W\r\n\r\n"),
        (b"get k\r\n", b"VALUE k 0 0\r\n\r\nEND\r\n"),
    ]);
}

/// Without CAS every cas reads 0 and cas stores fail.
#[test]
fn meta_without_cas() {
    let p = meta_pair!("-C");
    p.meta_steps(&[
        (b"ms a 1 c\r\nx\r\n", b"HD c0\r\n"),
        (b"mg a c v\r\n", b"VA 1 c0\r\nx\r\n"),
        (b"ms a 1 C0 c\r\ny\r\n", b"EX c0\r\n"),
        (b"md a C1\r\n", b"EX\r\n"),
        (b"md a I\r\n", b"HD\r\n"),
        (b"mg a c\r\n", b"HD c0 X W\r\n"),
        (b"ma n N0 c\r\n", b"HD c0\r\n"),
        (b"ma n C1\r\n", b"EX\r\n"),
        (b"ma n C0 v\r\n", b"VA 1\r\n1\r\n"),
        (
            b"me n\r\n",
            b"ME n exp=-1 la=0 cas=0 fetch=no cls=1 size=53\r\n",
        ),
        (b"md a C0\r\n", b"HD\r\n"),
    ]);
}

/// memcached holds the item an `mg` hit found until the reply is written
/// (at the end of the batch, or at `mn`): an incr of it meanwhile makes a
/// new item instead of rewriting the number in place with padding. A
/// classic get does not hold it.
#[test]
fn incr_after_mg_in_the_same_batch() {
    let p = meta_pair!();
    let set = b"set y 0 0 20\r\n2                   \r\n";
    p.meta_steps(&[
        (set, b"STORED\r\n"),
        (
            b"mg y s\r\nincr y 1\r\nget y\r\n",
            b"HD s20\r\n3\r\nVALUE y 0 1\r\n3\r\nEND\r\n",
        ),
        (set, b"STORED\r\n"),
        (
            b"mg y v\r\nmn\r\nma y v\r\nmg y v\r\n",
            b"VA 20\r\n2                   \r\nMN\r\nVA 1\r\n3\r\nVA 20\r\n3                   \r\n",
        ),
        (set, b"STORED\r\n"),
        (
            b"get y\r\nincr y 1\r\nget y\r\n",
            b"VALUE y 0 20\r\n2                   \r\nEND\r\n3\r\nVALUE y 0 20\r\n3                   \r\nEND\r\n",
        ),
        (set, b"STORED\r\n"),
        (b"mg y\r\n", b"HD\r\n"),
        (b"ma y v\r\nmg y v\r\n", b"VA 1\r\n3\r\nVA 20\r\n3                   \r\n"),
    ]);
}
