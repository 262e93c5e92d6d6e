//! get/gets/gat/gats, touch, delete.

use protocol_tests::*;

#[test]
fn get_many_keys() {
    let p = pair!();
    let mut conv = Vec::new();
    for i in 0..100 {
        if i % 3 != 0 {
            conv.extend(set_cmd(
                &format!("key{i}"),
                i,
                0,
                format!("v{i}").as_bytes(),
            ));
        }
    }
    let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    conv.extend(format!("get {}\r\n", keys.join(" ")).as_bytes());
    conv.extend(format!("gets {}\r\n", keys.join(" ")).as_bytes());
    let r = p.diff(&conv);
    let text = r.text();
    assert_eq!(text.matches("STORED\r\n").count(), 66);
    assert_eq!(text.matches("VALUE ").count(), 132);
    assert!(text.contains("VALUE key1 1 2\r\nv1\r\nVALUE key2 2 2\r\nv2\r\nVALUE key4 4 2\r\n"));
    assert!(
        text.ends_with("VALUE key98 98 3 66\r\nv98\r\nEND\r\n"),
        "{text}"
    );
}

/// memcached writes its replies after every classic get (hit or miss), so
/// a get's key-too-long error drops only the replies queued since the last
/// one: earlier gets' values (large ones too) stay, later sets' and
/// arithmetic's replies go, and `mg` does not write.
#[test]
fn long_key_drops_replies_since_the_last_get() {
    let p = pair!();
    let long = "k".repeat(251);
    let big = vec![b'b'; 20_000];
    p.diff(&cat(&[
        &set_cmd("small", 0, 0, b"y"),
        &set_cmd("big", 0, 0, &big),
    ]));
    for conv in [
        format!("set a 0 0 1\r\n1\r\nget small\r\nset b 0 0 1\r\n2\r\nget {long}\r\n"),
        format!("set a 0 0 1\r\n1\r\nget nope\r\nincr small 1\r\nget {long}\r\n"),
        format!("set a 0 0 1\r\n1\r\ngets small\r\ndelete a\r\ngat 0 small {long}\r\n"),
        format!("mg small v\r\nset c 0 0 1\r\n3\r\nget {long}\r\n"),
        format!("get small\r\nget big\r\nget big small {long}\r\nget small\r\n"),
        format!("get big\r\nset d 0 0 1\r\n4\r\nget big {long}\r\nget big\r\n"),
    ] {
        let r = p.diff(conv.as_bytes());
        assert!(
            r.text()
                .contains("CLIENT_ERROR bad command line format\r\n"),
            "{}",
            r.render()
        );
    }
}

/// A key too long in the middle of a long multi-get (past the first window
/// of keys memcrab looks ahead at) drops the replies already made.
#[test]
fn get_long_key_late_in_a_multi_get() {
    let p = pair!();
    let mut conv = Vec::new();
    for i in 0..40 {
        conv.extend(set_cmd(&format!("k{i}"), i, 0, b"v"));
    }
    let mut keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    keys[20] = "x".repeat(251);
    conv.extend(format!("get {}\r\n", keys.join(" ")).as_bytes());
    conv.extend(b"get k39 k0\r\n");
    let r = p.diff(&conv);
    assert!(
        r.text().ends_with(
            "STORED\r\nCLIENT_ERROR bad command line format\r\nVALUE k39 39 1\r\nv\r\nVALUE k0 0 1\r\nv\r\nEND\r\n"
        ),
        "{}",
        r.text()
    );
}

#[test]
fn get_duplicate_and_missing_keys() {
    let p = pair!();
    p.steps(&[
        (b"set a 1 0 1\r\nA\r\nset b 2 0 1\r\nB\r\n", b"STORED\r\nSTORED\r\n"),
        (
            b"get a a b a missing b\r\n",
            b"VALUE a 1 1\r\nA\r\nVALUE a 1 1\r\nA\r\nVALUE b 2 1\r\nB\r\nVALUE a 1 1\r\nA\r\nVALUE b 2 1\r\nB\r\nEND\r\n",
        ),
        (b"get missing\r\n", b"END\r\n"),
        (b"gets missing other\r\n", b"END\r\n"),
        (b"get\r\n", b"ERROR\r\n"),
        (b"gets\r\n", b"ERROR\r\n"),
        (b"get \r\n", b"ERROR\r\n"),
        (b"gets a b\r\n", b"VALUE a 1 1 1\r\nA\r\nVALUE b 2 1 2\r\nB\r\nEND\r\n"),
        (b"GET a\r\n", b"ERROR\r\n"),
        (b"get a noreply\r\n", b"VALUE a 1 1\r\nA\r\nEND\r\n"),
    ]);
}

#[test]
fn get_line_longer_than_2048_bytes() {
    // a multiget line far longer than 2048 bytes is fine
    let p = pair!();
    let keys: Vec<String> = (0..600)
        .map(|i| format!("some_longer_key_name_{i}"))
        .collect();
    let mut conv = set_cmd("some_longer_key_name_599", 5, 0, b"last");
    conv.extend(format!("get {}\r\n", keys.join(" ")).as_bytes());
    assert!(conv.len() > 10_000);
    p.check(
        &conv,
        b"STORED\r\nVALUE some_longer_key_name_599 5 4\r\nlast\r\nEND\r\n",
    );
}

#[test]
fn gat_gats() {
    let p = pair!();
    p.steps(&[
        (b"set a 3 0 2\r\naa\r\n", b"STORED\r\n"),
        (b"gat 100 a missing\r\n", b"VALUE a 3 2\r\naa\r\nEND\r\n"),
        (
            b"gats 100 a a\r\n",
            b"VALUE a 3 2 1\r\naa\r\nVALUE a 3 2 1\r\naa\r\nEND\r\n",
        ),
        (b"gat 0 missing\r\n", b"END\r\n"),
        (b"gat\r\n", b"ERROR\r\n"),
        (b"gat 10\r\n", b"END\r\n"),
        (
            b"gat abc a\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (b"gat -1 a\r\n", b"VALUE a 3 2\r\naa\r\nEND\r\n"),
        (b"get a\r\n", b"END\r\n"),
        (b"set b 0 0 1\r\nb\r\n", b"STORED\r\n"),
        (b"gats 2592001 b\r\n", b"VALUE b 0 1 2\r\nb\r\nEND\r\n"),
        (b"get b\r\n", b"END\r\n"),
    ]);
}

#[test]
fn touch() {
    let p = pair!();
    p.steps(&[
        (b"touch a 10\r\n", b"NOT_FOUND\r\n"),
        (b"set a 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"touch a 10\r\n", b"TOUCHED\r\n"),
        (b"touch a 10 noreply\r\n", b""),
        (b"touch missing 10 noreply\r\n", b""),
        (b"touch a\r\n", b"ERROR\r\n"),
        (
            b"touch a abc\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (b"touch a 10 20\r\n", b"TOUCHED\r\n"),
        (b"touch a 10 noreply extra\r\n", b"ERROR\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 1\r\na\r\nEND\r\n"),
        (b"touch a -1\r\n", b"TOUCHED\r\n"),
        (b"get a\r\n", b"END\r\n"),
    ]);
}

#[test]
fn delete() {
    let p = pair!();
    p.steps(&[
        (b"delete k\r\n", b"NOT_FOUND\r\n"),
        (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        (b"delete k\r\n", b"DELETED\r\n"),
        (b"delete k\r\n", b"NOT_FOUND\r\n"),
        (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        // the old "delete with hold time" form: only 0 is accepted
        (b"delete k 0\r\n", b"DELETED\r\n"),
        (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        (
            b"delete k 1\r\n",
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        (
            b"delete k x\r\n",
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        (b"delete k 0 noreply\r\n", b""),
        (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        (b"delete k noreply\r\n", b""),
        (b"delete k noreply\r\n", b""),
        (b"get k\r\n", b"END\r\n"),
        (b"delete\r\n", b"ERROR\r\n"),
        (
            b"delete a b c\r\n",
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        (b"delete a b c d\r\n", b"ERROR\r\n"),
        (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        (b"delete k 1 noreply\r\n", b""),
        (b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n"),
    ]);
}
