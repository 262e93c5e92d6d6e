//! Expiry in real time. These tests sleep (each ~3 s of wall clock); both
//! servers run concurrently.

use std::thread::sleep;
use std::time::Duration;

use protocol_tests::*;

/// Wall clock: ~3 s.
#[test]
fn relative_exptime_expires() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let mut out = Vec::new();
        out.push(c.send(
            b"set one 0 1 1\r\n1\r\nset two 0 2 1\r\n2\r\nset long 0 100 1\r\nl\r\nset never 0 0 1\r\nn\r\n\
              get one two long never\r\n",
        ));
        sleep(Duration::from_millis(3100));
        out.push(c.send(b"get one two long never\r\ntouch one 10\r\nincr two 1\r\n"));
        out
    });
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_same(&format!("phase {i}"), r, s);
    }
    assert_reference(
        "before",
        &r[0],
        b"STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE one 0 1\r\n1\r\nVALUE two 0 1\r\n2\r\n\
          VALUE long 0 1\r\nl\r\nVALUE never 0 1\r\nn\r\nEND\r\n",
    );
    assert_reference(
        "after",
        &r[1],
        b"VALUE long 0 1\r\nl\r\nVALUE never 0 1\r\nn\r\nEND\r\nNOT_FOUND\r\nNOT_FOUND\r\n",
    );
    // expired items count as misses (whether `get_expired` or the LRU
    // crawler's `reclaimed` counts them depends on background timing)
    let (rs, ss) = p.stats("");
    for name in [
        "get_misses",
        "get_hits",
        "cmd_get",
        "touch_misses",
        "incr_misses",
    ] {
        assert_eq!(stat(&ss, name), stat(&rs, name), "{name}");
    }
    assert_eq!(stat_u64(&rs, "get_misses"), 2);
}

/// Wall clock: ~3 s. touch/gat extend or shorten the lifetime.
#[test]
fn touch_and_gat_change_lifetime() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let mut out = Vec::new();
        out.push(c.send(
            b"set a 0 1 1\r\na\r\nset b 0 1 1\r\nb\r\nset c 0 0 1\r\nc\r\nset d 0 100 1\r\nd\r\n\
              touch a 100\r\ngat 100 b\r\ntouch c 1\r\ngats 1 d\r\n",
        ));
        sleep(Duration::from_millis(3100));
        out.push(c.send(b"get a b c d\r\n"));
        out
    });
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_same(&format!("phase {i}"), r, s);
    }
    assert_reference(
        "after",
        &r[1],
        b"VALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nEND\r\n",
    );
}

/// Negative and absolute expiration times (no sleep needed).
#[test]
fn negative_and_absolute_exptime() {
    let p = pair!();
    let now = unix_now();
    let conv = format!(
        "set neg 0 -1 1\r\nn\r\n\
         set past 0 {} 1\r\np\r\n\
         set future 0 {} 1\r\nf\r\n\
         set epoch1 0 2592001 1\r\ne\r\n\
         get neg past future epoch1\r\n\
         add neg 0 0 1\r\nN\r\n\
         get neg\r\n",
        now - 10,
        now + 100
    );
    p.check(
        conv.as_bytes(),
        b"STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE future 0 1\r\nf\r\nEND\r\nSTORED\r\nVALUE neg 0 1\r\nN\r\nEND\r\n",
    );
}

/// Wall clock: ~3 s. An absolute time 2 s in the future behaves like a
/// relative one.
#[test]
fn absolute_exptime_in_near_future() {
    let p = pair!();
    let when = unix_now() + 2;
    let set = format!("set a 0 {when} 1\r\na\r\nget a\r\n");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let first = c.send(set.as_bytes());
        sleep(Duration::from_millis(3500));
        (first, c.send(b"get a\r\n"))
    });
    assert_same("before", &r.0, &s.0);
    assert_same("after", &r.1, &s.1);
    assert_reference("before", &r.0, b"STORED\r\nVALUE a 0 1\r\na\r\nEND\r\n");
    assert_reference("after", &r.1, b"END\r\n");
}
