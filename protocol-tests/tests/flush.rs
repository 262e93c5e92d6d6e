//! flush_all in its forms, and -F.

use std::thread::sleep;
use std::time::Duration;

use protocol_tests::*;

#[test]
fn flush_all_forms() {
    let p = pair!();
    p.steps(&[
        (
            b"set a 0 0 1\r\na\r\nset b 0 0 1\r\nb\r\n",
            b"STORED\r\nSTORED\r\n",
        ),
        (b"flush_all\r\n", b"OK\r\n"),
        (b"get a b\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\na\r\nEND\r\n"),
        (b"flush_all 0\r\n", b"OK\r\n"),
        (b"get a\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"flush_all noreply\r\n", b""),
        (b"get a\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"flush_all 0 noreply\r\n", b""),
        (b"get a\r\n", b"END\r\n"),
        // replace/append/incr see nothing after a flush
        (b"replace a 0 0 1\r\nb\r\n", b"NOT_STORED\r\n"),
        (b"incr a 1\r\n", b"NOT_FOUND\r\n"),
        (b"add a 0 0 1\r\nc\r\n", b"STORED\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 10\r\nc\r\nEND\r\n"),
    ]);
}

#[test]
fn flush_all_bad_args() {
    let p = pair!();
    p.steps(&[
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (
            b"flush_all abc\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (b"flush_all -1\r\n", b"OK\r\n"),
        (
            b"flush_all 1x\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (b"flush_all 0 0\r\n", b"OK\r\n"),
        (b"flush_all 0 noreply extra\r\n", b"ERROR\r\n"),
        (
            b"flush_all noreply 0\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (b"get a\r\n", b"END\r\n"),
    ]);
}

#[test]
fn flush_all_disabled_with_capital_f() {
    let p = pair!("-F");
    p.steps(&[
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n"),
        (
            b"flush_all 0\r\n",
            b"CLIENT_ERROR flush_all not allowed\r\n",
        ),
        (b"flush_all noreply\r\n", b""),
        (b"get a\r\n", b"VALUE a 0 1\r\na\r\nEND\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_eq!(stat(&r, "flush_enabled"), Some("no"));
    assert_stats_eq("stats settings -F", &r, &s, IGNORED_STATS);
}

/// Wall clock: ~3.5 s.
#[test]
fn flush_all_with_delay_real_time() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let mut out = Vec::new();
        out.push(c.send(b"set a 0 0 1\r\na\r\nset b 0 1000 1\r\nb\r\nflush_all 2\r\nget a b\r\n"));
        sleep(Duration::from_millis(3500));
        out.push(c.send(b"get a b\r\nset c 0 0 1\r\nc\r\nget c\r\n"));
        out
    });
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_same(&format!("phase {i}"), r, s);
    }
    assert_reference(
        "before the delay",
        &r[0],
        b"STORED\r\nSTORED\r\nOK\r\nVALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nEND\r\n",
    );
    assert_reference(
        "after the delay",
        &r[1],
        b"END\r\nSTORED\r\nVALUE c 0 1\r\nc\r\nEND\r\n",
    );
}
