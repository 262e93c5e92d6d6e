//! Storage commands: set/add/replace/append/prepend/cas.
//!
//! Every test runs the same bytes against memcrab and memcached and compares
//! the replies; the recorded replies are memcached 1.6.18's.

use protocol_tests::*;

#[test]
fn set_add_replace() {
    let p = pair!();
    p.steps(&[
        (b"set k 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"add k 0 0 1\r\nb\r\n", b"NOT_STORED\r\n"),
        (b"add k2 7 0 2\r\nbb\r\n", b"STORED\r\n"),
        (b"replace nope 0 0 1\r\nc\r\n", b"NOT_STORED\r\n"),
        (b"replace k 3 0 3\r\nccc\r\n", b"STORED\r\n"),
        (
            b"get k k2 nope\r\n",
            b"VALUE k 3 3\r\nccc\r\nVALUE k2 7 2\r\nbb\r\nEND\r\n",
        ),
        (b"set k 0 0 1\r\nd\r\n", b"STORED\r\n"),
        (b"get k\r\n", b"VALUE k 0 1\r\nd\r\nEND\r\n"),
    ]);
}

#[test]
fn append_prepend() {
    let p = pair!();
    p.steps(&[
        (b"append k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"prepend k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"set k 5 0 3\r\nmid\r\n", b"STORED\r\n"),
        // flags and exptime of append/prepend are ignored
        (b"append k 9 100 4\r\n_end\r\n", b"STORED\r\n"),
        (b"prepend k 8 -1 6\r\nstart_\r\n", b"STORED\r\n"),
        (b"gets k\r\n", b"VALUE k 5 13 3\r\nstart_mid_end\r\nEND\r\n"),
        (b"append k 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"gets k\r\n", b"VALUE k 5 13 4\r\nstart_mid_end\r\nEND\r\n"),
        (
            b"append k 0 0 1 noreply\r\n!\r\nprepend k 0 0 1 noreply\r\n!\r\nget k\r\n",
            b"VALUE k 5 15\r\n!start_mid_end!\r\nEND\r\n",
        ),
    ]);
}

#[test]
fn cas_unique_and_cas_command() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"cas k 0 0 1 1\r\nx\r\n", b"NOT_FOUND\r\n"),
        (b"set k 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"set j 0 0 1\r\nb\r\n", b"STORED\r\n"),
        // cas uniques count from 1 on a fresh server
        (
            b"gets k j\r\n",
            b"VALUE k 0 1 1\r\na\r\nVALUE j 0 1 2\r\nb\r\nEND\r\n",
        ),
        (b"cas k 0 0 1 2\r\nx\r\n", b"EXISTS\r\n"),
        (b"cas k 4 0 1 1\r\ny\r\n", b"STORED\r\n"),
        (b"gets k\r\n", b"VALUE k 4 1 3\r\ny\r\nEND\r\n"),
        (b"cas k 0 0 1 1\r\nz\r\n", b"EXISTS\r\n"),
        (b"cas k 0 0 1 3 noreply\r\nz\r\n", b""),
        (b"gets k\r\n", b"VALUE k 0 1 4\r\nz\r\nEND\r\n"),
        (b"cas k 0 0 1 0\r\nq\r\n", b"EXISTS\r\n"),
        (b"cas k 0 0 1 18446744073709551615\r\nq\r\n", b"EXISTS\r\n"),
        (
            b"cas k 0 0 1 18446744073709551616\r\nq\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"cas k 0 0 1 -1\r\nq\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"cas k 0 0 1 abc\r\nq\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (b"cas k 0 0 1 +4\r\nq\r\n", b"STORED\r\n"),
        (b"cas k 0 0 1\r\nq\r\n", b"ERROR\r\nERROR\r\n"),
        (b"gets k\r\n", b"VALUE k 0 1 5\r\nq\r\nEND\r\n"),
        (b"delete k\r\n", b"DELETED\r\n"),
        (b"cas k 0 0 1 5\r\nq\r\n", b"NOT_FOUND\r\n"),
        // every successful store takes a new unique, failed ones do not
        (
            b"add k 0 0 1\r\nn\r\nappend k 0 0 1\r\nm\r\n",
            b"STORED\r\nSTORED\r\n",
        ),
        (
            b"add k 0 0 1\r\nn\r\nprepend nope 0 0 1\r\nm\r\n",
            b"NOT_STORED\r\nNOT_STORED\r\n",
        ),
        (
            b"gets k j\r\n",
            b"VALUE k 0 2 7\r\nnm\r\nVALUE j 0 1 2\r\nb\r\nEND\r\n",
        ),
        (
            b"touch k 0\r\ngets k\r\n",
            b"TOUCHED\r\nVALUE k 0 2 7\r\nnm\r\nEND\r\n",
        ),
        (
            b"set k 0 0 1\r\n5\r\nincr k 1\r\ngets k\r\n",
            b"STORED\r\n6\r\nVALUE k 0 1 9\r\n6\r\nEND\r\n",
        ),
    ]);
}

#[test]
fn noreply_storage() {
    let p = pair!();
    p.steps(&[
        (
            b"set a 1 0 1 noreply\r\n1\r\nadd a 2 0 1 noreply\r\n2\r\nadd b 3 0 1 noreply\r\n3\r\n\
replace c 0 0 1 noreply\r\n4\r\nreplace b 4 0 1 noreply\r\n5\r\n",
            b"",
        ),
        (
            b"get a b c\r\n",
            b"VALUE a 1 1\r\n1\r\nVALUE b 4 1\r\n5\r\nEND\r\n",
        ),
        // noreply also silences errors of the storage itself
        (
            b"cas a 0 0 1 999 noreply\r\nx\r\ncas zz 0 0 1 1 noreply\r\nx\r\n",
            b"",
        ),
        // ... and even syntax errors of the command line
        (b"set a 0 0 x noreply\r\n", b""),
        (
            b"set a 0 0 1 noreplyx\r\nz\r\nget a\r\n",
            b"STORED\r\nVALUE a 0 1\r\nz\r\nEND\r\n",
        ),
    ]);
}

#[test]
fn flags_range() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"set k 0 0 1\r\na\r\n", b"STORED\r\n"),
        (b"get k\r\n", b"VALUE k 0 1\r\na\r\nEND\r\n"),
        (b"set k 4294967295 0 1\r\na\r\n", b"STORED\r\n"),
        (b"get k\r\n", b"VALUE k 4294967295 1\r\na\r\nEND\r\n"),
        (b"set k 4294967296 0 1\r\na\r\n", b"STORED\r\n"),
        (b"get k\r\n", b"VALUE k 0 1\r\na\r\nEND\r\n"),
        (
            b"set k 18446744073709551616 0 1\r\na\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k -1 0 1\r\na\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k abc 0 1\r\na\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 12a 0 1\r\na\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 0x10 0 1\r\na\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (b"set k 010 0 1\r\na\r\n", b"STORED\r\n"),
        (b"set k +7 0 1\r\na\r\n", b"STORED\r\n"),
        (b"get k\r\n", b"VALUE k 7 1\r\na\r\nEND\r\n"),
    ]);
}

#[test]
fn exptime_forms() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    let now = unix_now();
    let future = format!("set abs_future 0 {} 1\r\nf\r\n", now + 3600);
    let past = format!("set abs_past 0 {} 1\r\np\r\n", now - 3600);
    p.steps(&[
        (b"set zero 0 0 1\r\nz\r\n", b"STORED\r\n"),
        (b"set neg 0 -1 1\r\nn\r\n", b"STORED\r\n"),
        (b"set neg_big 0 -9999999999 1\r\nn\r\n", b"STORED\r\n"),
        (b"set rel 0 100 1\r\nr\r\n", b"STORED\r\n"),
        (b"set thirty_days 0 2592000 1\r\nt\r\n", b"STORED\r\n"),
        // > 30 days is an absolute unix time: 2592001 is in 1970
        (b"set just_over 0 2592001 1\r\no\r\n", b"STORED\r\n"),
        (future.as_bytes(), b"STORED\r\n"),
        (past.as_bytes(), b"STORED\r\n"),
        (b"set huge 0 99999999999 1\r\nh\r\n", b"STORED\r\n"),
        (b"set bad 0 abc 1\r\nb\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"set bad2 0 1x 1\r\nb\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"set plus 0 +100 1\r\nb\r\n", b"STORED\r\n"),
        (
            b"get zero neg neg_big rel thirty_days just_over abs_future abs_past huge bad bad2 plus\r\n",
            b"VALUE zero 0 1\r\nz\r\nVALUE rel 0 1\r\nr\r\nVALUE thirty_days 0 1\r\nt\r\nVALUE abs_future 0 1\r\nf\r\nVALUE plus 0 1\r\nb\r\nEND\r\n",
        ),
    ]);
}

#[test]
fn binary_safe_values() {
    let p = pair!();
    let all: Vec<u8> = (0..=255u8).collect();
    let tricky: &[u8] = b"\r\nEND\r\nVALUE x 0 1\r\n\r\n\0\r";
    let mut conv = set_cmd("all", 0, 0, &all);
    conv.extend(set_cmd("tricky", 1, 0, tricky));
    conv.extend(set_cmd("crlf", 2, 0, b"\r\n"));
    conv.extend(b"get all tricky crlf\r\ngets tricky\r\n");
    let mut expected = b"STORED\r\nSTORED\r\nSTORED\r\nVALUE all 0 256\r\n".to_vec();
    expected.extend(&all);
    expected.extend(format!("\r\nVALUE tricky 1 {}\r\n", tricky.len()).as_bytes());
    expected.extend(tricky);
    expected.extend(b"\r\nVALUE crlf 2 2\r\n\r\n\r\nEND\r\n");
    expected.extend(format!("VALUE tricky 1 {} 2\r\n", tricky.len()).as_bytes());
    expected.extend(tricky);
    expected.extend(b"\r\nEND\r\n");
    p.check(&conv, &expected);
    // appending binary data to binary data
    let mut conv = storage_cmd("append", "all", 0, 0, &all);
    conv.extend(b"get all\r\n");
    let mut expected = b"STORED\r\nVALUE all 0 512\r\n".to_vec();
    expected.extend(&all);
    expected.extend(&all);
    expected.extend(b"\r\nEND\r\n");
    p.check(&conv, &expected);
}

#[test]
fn zero_length_values() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"set e 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"get e\r\n", b"VALUE e 0 0\r\n\r\nEND\r\n"),
        (b"append e 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"prepend e 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"gets e\r\n", b"VALUE e 0 1 3\r\nx\r\nEND\r\n"),
        (
            b"set e 0 0 0 noreply\r\n\r\nget e\r\n",
            b"VALUE e 0 0\r\n\r\nEND\r\n",
        ),
        // a zero-length value must still be followed by \r\n
        (
            b"set e 0 0 0\r\nx\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
    ]);
}

#[test]
fn key_length_limit() {
    let p = pair!();
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    let ok = set_cmd(&k250, 0, 0, b"v");
    let too_long = set_cmd(&k251, 0, 0, b"v");
    let get250 = format!("get {k250}\r\n");
    let get251 = format!("get {k251}\r\n");
    let get_both = format!("get {k251} {k250}\r\n");
    let value250 = format!("VALUE {k250} 0 1\r\nv\r\nEND\r\n").into_bytes();
    p.steps(&[
        (&ok, b"STORED\r\n"),
        (get250.as_bytes(), &value250),
        // 1.6.18 behaviour: the data block of a rejected storage command is
        // not swallowed, so `v` is answered with ERROR.
        (
            &too_long,
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            get251.as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            get_both.as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("delete {k251}\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("incr {k251} 1\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("touch {k251} 1\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("gat 0 {k251}\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (format!("delete {k250}\r\n").as_bytes(), b"DELETED\r\n"),
    ]);
}

#[test]
fn bad_lengths() {
    // 1.6.18 behaviour: after CLIENT_ERROR on the command line the data
    // block is parsed as commands (`x` -> ERROR).
    let p = pair!();
    p.steps(&[
        (
            b"set k 0 0 -1\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 abc\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 1x\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 18446744073709551616\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 4294967296\r\nx\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 2147483648\r\nx\r\n",
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (b"set k 0 0 +1\r\nx\r\n", b"STORED\r\n"),
        (b"set k 0 0 \r\nx\r\n", b"ERROR\r\nERROR\r\n"),
        (b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n"),
    ]);
}

#[test]
fn bad_data_chunk() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (
            b"set k 0 0 1\r\nold\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 2\r\nabc\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 3\r\nab\r\n\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 2\r\nab\n\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"set k 0 0 2\r\nabcd\r\nget k\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n",
        ),
        (b"set k 0 0 1\r\nx\r\n", b"STORED\r\n"),
        // a bad data chunk leaves the old value in place
        (
            b"set k 0 0 1\r\nxy\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n"),
        (
            b"append k 0 0 1\r\nxy\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (b"set k 0 0 1 noreply\r\nxy\r\n", b"ERROR\r\n"),
    ]);
}

#[test]
fn value_too_large() {
    let p = pair!();
    let max = 1024 * 1024;
    let big = vec![b'b'; max];
    let fits = vec![b'f'; max - 100];
    let mut set_fits = set_cmd("k", 0, 0, &fits);
    set_fits.extend(b"get k\r\n");
    let mut expected = b"STORED\r\nVALUE k 0 1048476\r\n".to_vec();
    expected.extend(&fits);
    expected.extend(b"\r\nEND\r\n");
    p.check(&set_fits, &expected);
    // too large: the data is swallowed and the old value is removed
    let mut conv = set_cmd("k", 0, 0, &big);
    conv.extend(b"get k\r\n");
    p.check(&conv, b"SERVER_ERROR object too large for cache\r\nEND\r\n");
    p.check(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    let mut conv = set_cmd("k", 0, 0, &[big.as_slice(), b"x"].concat());
    conv.extend(b"get k\r\n");
    p.check(&conv, b"SERVER_ERROR object too large for cache\r\nEND\r\n");
    // noreply silences the error, and the old value is gone too
    p.check(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    let mut conv = format!("set k 0 0 {} noreply\r\n", big.len()).into_bytes();
    conv.extend(&big);
    conv.extend(b"\r\nget k\r\n");
    p.check(&conv, b"END\r\n");
    // add / replace / append / prepend / cas of a too-large value: error,
    // but unlike set the old value stays
    p.check(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    for cmd in ["add", "replace", "append", "prepend", "cas"] {
        let mut conv = if cmd == "cas" {
            format!("cas k 0 0 {} 1\r\n", big.len()).into_bytes()
        } else {
            format!("{cmd} k 0 0 {}\r\n", big.len()).into_bytes()
        };
        conv.extend(&big);
        conv.extend(b"\r\nget k\r\n");
        p.check(
            &conv,
            b"SERVER_ERROR object too large for cache\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
        );
        p.check(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    }
    // append that pushes an existing value over the limit
    let mut conv = set_cmd("k", 0, 0, &fits);
    conv.extend(storage_cmd("append", "k", 0, 0, &fits));
    conv.extend(b"get k\r\n");
    let r = p.diff(&conv);
    assert!(r.bytes.starts_with(b"STORED\r\n"), "{}", r.render());
}

#[test]
fn value_too_large_small_item_max() {
    // 1.6.18 parses slab_chunk_max in bytes (its -h says kilobytes); with
    // slab_chunk_max=1 it segfaults on the first store.
    let p = pair!("-I", "2k", "-o", "slab_chunk_max=1024");
    let conv = cat(&[
        &set_cmd("k", 0, 0, b"small"),
        &set_cmd("k", 0, 0, &[b'x'; 2048]),
        b"get k\r\n",
        &set_cmd("k", 0, 0, &[b'y'; 1900]),
        b"get k\r\n",
    ]);
    let r = p.diff(&conv);
    assert!(
        r.bytes
            .starts_with(b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\nSTORED\r\nVALUE k 0 1900\r\n"),
        "{}",
        r.render()
    );
}

#[test]
fn token_counts() {
    // 1.6.18 behaviour: the data block after a rejected command line is not
    // swallowed; it is parsed as a command (usually answering ERROR).
    let p = pair!();
    p.steps(&[
        (b"set\r\n", b"ERROR\r\n"),
        (b"set k\r\n", b"ERROR\r\n"),
        (b"set k 0\r\n", b"ERROR\r\n"),
        (b"set k 0 0\r\n", b"ERROR\r\n"),
        (b"set k 0 0 1 noreply extra\r\nx\r\n", b"ERROR\r\nERROR\r\n"),
        (b"set k 0 0 1 extra\r\nx\r\n", b"STORED\r\n"),
        (b"add k 0 0\r\n", b"ERROR\r\n"),
        (b"replace k 0 0\r\n", b"ERROR\r\n"),
        (b"append k 0 0\r\n", b"ERROR\r\n"),
        (b"prepend k 0 0\r\n", b"ERROR\r\n"),
        (b"cas k 0 0 1\r\n", b"ERROR\r\n"),
        (
            b"cas k 0 0 1 1 noreply extra\r\nx\r\n",
            b"ERROR\r\nERROR\r\n",
        ),
        (b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n"),
    ]);
}

#[test]
fn large_values_round_trip() {
    let p = pair!();
    // around the default slab_chunk_max (512k): chunked items
    for (i, len) in [16 * 1024, 512 * 1024 - 60, 512 * 1024, 700 * 1024]
        .into_iter()
        .enumerate()
    {
        let value: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let key = format!("big{i}");
        let mut conv = set_cmd(&key, i as u32, 0, &value);
        conv.extend(format!("get {key}\r\n").as_bytes());
        conv.extend(storage_cmd("append", &key, 0, 0, b"tail"));
        conv.extend(format!("get {key}\r\n").as_bytes());
        let mut expected = format!("STORED\r\nVALUE {key} {i} {len}\r\n").into_bytes();
        expected.extend(&value);
        expected.extend(format!("\r\nEND\r\nSTORED\r\nVALUE {key} {i} {}\r\n", len + 4).as_bytes());
        expected.extend(&value);
        expected.extend(b"tail\r\nEND\r\n");
        p.check(&conv, &expected);
    }
}

/// Large data blocks that arrive in pieces (memcrab reads them straight
/// into their items): every storing mode, noreply, a block whose end is
/// not `\r\n`, and commands right behind a block, delivered in pieces that
/// split the block and the `\r\n` everywhere.
#[test]
fn large_values_arriving_in_pieces() {
    let p = pair!();
    let value: Vec<u8> = (0..100_000u32).map(|j| (j % 251) as u8).collect();
    let mut bad = storage_cmd("set", "c", 0, 0, &value);
    let n = bad.len();
    bad[n - 2..].copy_from_slice(b"XY");
    let conversation = [
        b"flush_all\r\n".to_vec(),
        set_cmd("a", 5, 0, &value),
        storage_cmd("add", "a", 0, 0, &value),
        storage_cmd("replace", "a", 6, 0, &value),
        storage_cmd("add", "b", 7, 0, &value),
        b"cas a 0 0 100000 12345\r\n".to_vec(),
        value.clone(),
        b"\r\n".to_vec(),
        storage_cmd("replace", "nope", 0, 0, &value),
        b"set d 0 0 100000 noreply\r\n".to_vec(),
        value.clone(),
        b"\r\nget d\r\n".to_vec(),
        bad,
        b"get c\r\nget a b\r\n".to_vec(),
    ]
    .concat();
    for how in [
        Delivery::Chunks(9_999),
        Delivery::Chunks(65_536),
        Delivery::SplitAt(100_020),
    ] {
        let r = p.diff_with(&conversation, how);
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(
            text.starts_with("OK\r\nSTORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nEXISTS\r\nNOT_STORED\r\nVALUE d 0 100000\r\n"),
            "{how:?}: {}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.contains("\r\nEND\r\nCLIENT_ERROR bad data chunk\r\nEND\r\nVALUE a 6 100000\r\n")
        );
        let last = cat(&[b"\r\nVALUE b 7 100000\r\n", &value, b"\r\nEND\r\n"]);
        assert!(r.bytes.ends_with(&last), "{how:?}");
    }
}

/// Values that span several chunks (over half a slab page), arriving in
/// pieces that cross chunk boundaries and run on into the next command.
#[test]
fn multi_chunk_values_arriving_in_pieces() {
    let p = pair!();
    let value: Vec<u8> = (0..700_000u32).map(|j| (j % 253) as u8).collect();
    let conversation = [
        set_cmd("m", 9, 0, &value),
        b"get m\r\n".to_vec(),
        set_cmd("s", 1, 0, b"small"),
        storage_cmd("append", "s", 0, 0, b"-tail"),
        b"get s m\r\n".to_vec(),
    ]
    .concat();
    let hit = cat(&[b"VALUE m 9 700000\r\n", &value, b"\r\n"]);
    let expected = cat(&[
        b"STORED\r\n",
        &hit,
        b"END\r\nSTORED\r\nSTORED\r\nVALUE s 1 10\r\nsmall-tail\r\n",
        &hit,
        b"END\r\n",
    ]);
    for how in [
        Delivery::Chunks(4_001),
        Delivery::Chunks(70_000),
        Delivery::SplitAt(524_300),
    ] {
        let r = p.diff_with(&conversation, how);
        assert!(r.bytes == expected, "{how:?}: {}", r.render());
    }
}

/// Clients that go away in the middle of a large data block leave no
/// memory behind: with -M (no eviction) at -m 8, 40 abandoned 400 KB sets
/// would hold more than the whole cache if their items were kept.
#[test]
fn abandoned_large_values_give_their_memory_back() {
    let p = pair!("-m", "8", "-M");
    let value = vec![b'v'; 400_000];
    let (r, s) = p.run(|srv| {
        for i in 0..40 {
            let mut c = srv.connect();
            let mut partial = format!("set gone{i} 0 0 400000\r\n").into_bytes();
            partial.extend_from_slice(&value[..1000 + i * 5000]);
            c.write_raw(&partial);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut conv = Vec::new();
        for i in 0..10 {
            conv.extend(set_cmd(&format!("kept{i}"), 0, 0, &value));
        }
        conv.extend(b"get gone0 gone39\r\n");
        srv.connect().send(&conv)
    });
    assert_same("abandoned sets", &r, &s);
    assert_eq!(
        r.bytes,
        [&b"STORED\r\n".repeat(10)[..], b"END\r\n"].concat()
    );
}
