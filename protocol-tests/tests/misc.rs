//! version, verbosity, quit, unknown commands, empty lines, whitespace,
//! line endings and over-long lines.

use std::thread::sleep;
use std::time::Duration;

use protocol_tests::*;

#[test]
fn version_command() {
    let p = pair!();
    p.steps(&[
        (b"version\r\n", b"VERSION <version>\r\n"),
        (b"version extra\r\n", b"VERSION <version>\r\n"),
        (b"  version\r\n", b"VERSION <version>\r\n"),
        (b"version\tx\r\n", b"ERROR\r\n"),
        (b"VERSION\r\n", b"ERROR\r\n"),
        (b"version\n", b"VERSION <version>\r\n"),
    ]);
    // the version line is one token after `VERSION `
    let mut c = p.subject.connect();
    let reply = c.send_expecting(b"version\r\n", Delivery::Whole, 2);
    let line = String::from_utf8_lossy(&reply.bytes).into_owned();
    let v = line
        .strip_prefix("VERSION ")
        .and_then(|v| v.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("bad version line {line:?}"));
    assert!(
        !v.is_empty() && !v.contains(' '),
        "bad version line {line:?}"
    );
}

#[test]
fn verbosity_command() {
    let p = pair!();
    p.steps(&[
        (b"verbosity\r\n", b"ERROR\r\n"),
        (b"verbosity 1\r\n", b"OK\r\n"),
        (b"verbosity 0\r\n", b"OK\r\n"),
        (b"verbosity 1 noreply\r\n", b""),
        (
            b"verbosity x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"verbosity -1\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"verbosity 1 2\r\n", b"OK\r\n"),
        (b"verbosity 1 2 3\r\n", b"ERROR\r\n"),
        (b"verbosity noreply\r\n", b""),
        (b"verbosity 0 extra\r\n", b"OK\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_stats_eq("stats settings after verbosity", &r, &s, IGNORED_STATS);
}

#[test]
fn quit_closes_the_connection() {
    let p = pair!();
    for conv in [
        &b"quit\r\n"[..],
        b"set a 0 0 1\r\na\r\nget a\r\nquit\r\nget a\r\n",
        b"quit extra\r\n",
        b"quit\n",
    ] {
        let r = p.diff(conv);
        assert!(r.closed, "{}", r.render());
    }
    p.check(b"QUIT\r\n", b"ERROR\r\n");
    let r = p.diff(b"set a 0 0 1\r\na\r\nget a\r\nquit\r\nget a\r\n");
    assert_eq!(r.bytes, b"STORED\r\nVALUE a 0 1\r\na\r\nEND\r\n");
}

#[test]
fn unknown_commands_and_empty_lines() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"foo\r\n", b"ERROR\r\n"),
        (b"foo bar baz\r\n", b"ERROR\r\n"),
        (b"\r\n", b"ERROR\r\n"),
        (b"\n", b"ERROR\r\n"),
        (b" \r\n", b"ERROR\r\n"),
        (b"   \r\n", b"ERROR\r\n"),
        (b"\t\r\n", b"ERROR\r\n"),
        (b"\r\r\n", b"ERROR\r\n"),
        (b"GET a\r\n", b"ERROR\r\n"),
        (b"Set a 0 0 1\r\na\r\n", b"ERROR\r\nERROR\r\n"),
        (b"gets\r\n", b"ERROR\r\n"),
        (b"get\x00a\r\n", b"ERROR\r\n"),
        (b"\x00\r\n", b"ERROR\r\n"),
        (b"\xff\xfe\r\n", b"ERROR\r\n"),
        (
            b"a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
            b"ERROR\r\n",
        ),
        (b"stats detail dump extra extra extra\r\n", b"END\r\n"),
    ]);
}

#[test]
fn whitespace_variants() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"set  a  1  0  1 \r\nx\r\n", b"STORED\r\n"),
        (b"get a \r\n", b"VALUE a 1 1\r\nx\r\nEND\r\n"),
        (
            b"get  a   a \r\n",
            b"VALUE a 1 1\r\nx\r\nVALUE a 1 1\r\nx\r\nEND\r\n",
        ),
        (b"   get a\r\n", b"VALUE a 1 1\r\nx\r\nEND\r\n"),
        (b"set\ta\t0\t0\t1\r\ny\r\n", b"ERROR\r\nERROR\r\n"),
        (b"get\ta\r\n", b"ERROR\r\n"),
        (b"get a\t\r\n", b"END\r\n"),
        (b"get a\r \r\n", b"END\r\n"),
        (b"get a\rb\r\n", b"END\r\n"),
        (
            b"set b 0 0 1  noreply \r\nz\r\nget b\r\n",
            b"VALUE b 0 1\r\nz\r\nEND\r\n",
        ),
        (
            b"incr  a  1 \r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"delete  a  noreply \r\n", b""),
        (b"get a\r\n", b"END\r\n"),
    ]);
}

#[test]
fn bare_newline_line_endings() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"set a 0 0 1\nx\r\nget a\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
        // the data block itself must end in \r\n
        // exactly len + 2 bytes are taken as the data block: "y\ng"
        (
            b"set a 0 0 1\ny\nget a\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (b"get a\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"set b 0 0 2\n\n\n\r\n", b"STORED\r\n"),
        (b"gets b\n", b"VALUE b 0 2 2\r\n\n\n\r\nEND\r\n"),
        (b"incr a 1\ndelete a\nget a\nversion\nflush_all\n", b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nEND\r\nVERSION <version>\r\nOK\r\n"),
        (b"get a\r\n\nget a\n\r\n", b"END\r\nERROR\r\nEND\r\nERROR\r\n"),
    ]);
}

/// Over-long lines: a non-`get` line of more than 2048 bytes without a
/// newline closes the connection; a long `get`/`gets` line is read
/// whole. (The check runs when no `\n` has arrived yet, so these
/// conversations are sent without their newline first.)
#[test]
fn long_line_without_newline_closes() {
    let p = pair!();
    let bad = Some(&b"CLIENT_ERROR bad command line format\r\n"[..]);
    for (payload, expected) in [
        (vec![b'x'; 3000], None),
        ([b"set ".as_slice(), &[b'k'; 3000]].concat(), None),
        ([b"get ".as_slice(), &[b'k'; 3000]].concat(), bad),
        ([b"gets ".as_slice(), &[b'k'; 3000]].concat(), bad),
        ([&[b' '; 50][..], b"get ", &[b'k'; 3000]].concat(), bad),
        ([&[b' '; 101][..], b"get ", &[b'k'; 3000]].concat(), None),
        (
            [b"get".as_slice(), &[b' '; 3000], b"k"].concat(),
            Some(&b"END\r\n"[..]),
        ),
        ([b"GET ".as_slice(), &[b'k'; 3000]].concat(), None),
        ([b"touch ".as_slice(), &[b'k'; 3000]].concat(), None),
    ] {
        let (r, s) = p.run(|srv| {
            let mut c = srv.connect();
            c.write_raw(&payload);
            // give the server time to read it all before the newline
            sleep(Duration::from_millis(100));
            c.send(b"\r\n")
        });
        let what = describe(&payload);
        assert_same(&what, &r, &s);
        match expected {
            None => assert!(r.closed && r.bytes.is_empty(), "{what}: {}", r.render()),
            Some(e) => assert_reference(&what, &r, e),
        }
    }
}

#[test]
fn line_length_boundaries() {
    let p = pair!();
    for n in [1020, 1024, 2047, 2048, 2049, 2100, 4096, 16384, 20000] {
        let payload = vec![b'x'; n];
        let (r, s) = p.run(|srv| {
            let mut c = srv.connect();
            c.write_raw(&payload);
            sleep(Duration::from_millis(50));
            c.send(b"\r\n")
        });
        assert_same(&format!("{n} bytes then newline"), &r, &s);
        // with the newline in the same write: an ordinary unknown command,
        // as long as it fits in one read buffer
        let r = p.diff(&[payload.as_slice(), b"\r\n"].concat());
        if n <= 2048 {
            assert_reference(&format!("{n} bytes"), &r, b"ERROR\r\n");
        }
    }
}

#[test]
fn long_get_line_with_many_keys() {
    let p = pair!();
    let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
    let mut conv = set_cmd("k1999", 0, 0, b"x");
    conv.extend(set_cmd("k0", 0, 0, b"y"));
    conv.extend(format!("get {}\r\n", keys.join(" ")).as_bytes());
    p.check(
        &conv,
        b"STORED\r\nSTORED\r\nVALUE k0 0 1\r\ny\r\nVALUE k1999 0 1\r\nx\r\nEND\r\n",
    );
    // the same line trickled in small pieces
    let r = p.diff_with(&conv, Delivery::Chunks(700));
    assert_eq!(
        r.bytes,
        b"STORED\r\nSTORED\r\nVALUE k0 0 1\r\ny\r\nVALUE k1999 0 1\r\nx\r\nEND\r\n"
    );
    // one bad key anywhere fails the whole command
    let mut conv = format!("get {} ", keys.join(" ")).into_bytes();
    conv.extend(vec![b'z'; 251]);
    conv.extend(b"\r\n");
    p.check(&conv, b"CLIENT_ERROR bad command line format\r\n");
}
