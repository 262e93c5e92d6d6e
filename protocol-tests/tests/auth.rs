//! `-Y <file>`: ascii authentication, against memcached 1.6.18.
//!
//! Until a connection authenticates, memcached's only command is a `set`
//! whose data is `username password`; every other line answers
//! `CLIENT_ERROR unauthenticated`. Its replies on this path share one
//! response object until it is written, so within one batch of input each
//! reply replaces the previous one: a client sending several lines at once
//! gets one reply, the last. The conversations below therefore send one
//! batch per step and, before authenticating, read one line per step.

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use protocol_tests::*;

/// An auth file in the temp directory, removed on drop.
struct AuthFile(PathBuf);

impl AuthFile {
    fn new(contents: &[u8]) -> AuthFile {
        let path = temp_path("auth");
        std::fs::write(&path, contents).expect("write auth file");
        AuthFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp path is UTF-8")
    }
}

impl Drop for AuthFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const USERS: &[u8] = b"alice:secret\nbob:hunter2\r\ncarol:\n";
const LOGIN: &[u8] = b"set auth 0 0 12\r\nalice secret\r\n";
const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";

/// How a step's reply is read.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// Up to a line end: before authentication a batch answers one line.
    Line,
    /// The harness's `version` sentinel (only once authenticated).
    Sentinel,
    /// Nothing is expected: pause so that the next step is another batch.
    Nothing,
    /// Until the server closes the connection.
    Eof,
}

type Step<'a> = (&'a [u8], Read, &'a [u8]);

fn exchange(conn: &mut Conn, send: &[u8], read: Read) -> Reply {
    match read {
        Read::Line => {
            conn.write_raw(send);
            conn.read_until_suffix(b"\r\n", REPLY_TIMEOUT)
        }
        Read::Sentinel => conn.send(send),
        Read::Nothing => {
            conn.write_raw(send);
            thread::sleep(Duration::from_millis(100));
            Reply::default()
        }
        Read::Eof => {
            conn.write_raw(send);
            conn.read_to_eof(REPLY_TIMEOUT)
        }
    }
}

/// Run `steps` on one connection per server: the replies must be equal,
/// and memcached's the recorded one. Returns both connections.
fn steps(pair: &Pair, steps: &[Step<'_>]) -> (Conn, Conn) {
    let mut rc = pair.reference.connect();
    let mut sc = pair.subject.connect();
    for (i, (send, read, expected)) in steps.iter().enumerate() {
        let r = exchange(&mut rc, send, *read);
        let s = exchange(&mut sc, send, *read);
        let context = format!("step {i} ({read:?}) {}", describe(send));
        assert_reference(&context, &r, expected);
        assert_same(&context, &r, &s);
    }
    (rc, sc)
}

/// `auth_cmds`, `auth_errors` (and the command counters) on both servers,
/// compared; returns memcached's (`auth_cmds`, `auth_errors`).
fn auth_counters(rc: &mut Conn, sc: &mut Conn) -> (u64, u64) {
    let keep = ["auth_cmds", "auth_errors", "cmd_get", "cmd_set", "get_hits"];
    let r = filter_stats(&rc.stats(""), &keep);
    let s = filter_stats(&sc.stats(""), &keep);
    assert_stats_eq("auth counters", &r, &s, &[]);
    (stat_u64(&r, "auth_cmds"), stat_u64(&r, "auth_errors"))
}

#[test]
fn commands_before_authentication() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let u = UNAUTHENTICATED;
    let (mut rc, mut sc) = steps(
        &pair,
        &[
            (b"get a\r\n", Read::Line, u),
            (b"gets a b\r\n", Read::Line, u),
            (b"version\r\n", Read::Line, u),
            (b"stats\r\n", Read::Line, u),
            (b"stats settings\r\n", Read::Line, u),
            (b"delete a\r\n", Read::Line, u),
            (b"flush_all\r\n", Read::Line, u),
            (b"shutdown\r\n", Read::Line, u),
            (b"mn\r\n", Read::Line, u),
            // quit does not close the connection.
            (b"quit\r\n", Read::Line, u),
            (b"\r\n", Read::Line, u),
            // The key, flags and exptime are ignored, the length must parse.
            (b"set a 0 0\r\n", Read::Line, u),
            (b"set a 0 0 abc\r\n", Read::Line, u),
            (b"set a 0 0 -1\r\n", Read::Line, u),
            // Two lines, one batch: one reply.
            (b"SET a 0 0 12\r\nalice secret\r\n", Read::Line, u),
            (b"add a 0 0 12\r\nalice secret\r\n", Read::Line, u),
            (
                b"set a 0 0 12\r\nalice secret\r\nget a\r\n",
                Read::Sentinel,
                b"STORED\r\nEND\r\n",
            ),
        ],
    );
    assert_eq!(auth_counters(&mut rc, &mut sc), (1, 0));
}

#[test]
fn good_credentials_then_commands_work() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let (mut rc, mut sc) = steps(
        &pair,
        &[
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
            // The authentication set stored nothing.
            (b"get auth\r\n", Read::Sentinel, b"END\r\n"),
            (
                b"set k 5 0 1\r\nx\r\nget k\r\n",
                Read::Sentinel,
                b"STORED\r\nVALUE k 5 1\r\nx\r\nEND\r\n",
            ),
            // Once authenticated, the same set is a real one.
            (
                b"set auth 0 0 12\r\nalice secret\r\nget auth\r\n",
                Read::Sentinel,
                b"STORED\r\nVALUE auth 0 12\r\nalice secret\r\nEND\r\n",
            ),
        ],
    );
    assert_eq!(auth_counters(&mut rc, &mut sc), (1, 0));
    let keep = [
        "binding_protocol",
        "auth_enabled_sasl",
        "auth_enabled_ascii",
    ];
    let r = filter_stats(&rc.stats("settings"), &keep);
    let s = filter_stats(&sc.stats("settings"), &keep);
    assert_stats_eq("stats settings", &r, &s, &[]);
    assert_eq!(stat(&r, "binding_protocol"), Some("ascii"));
    assert_eq!(stat(&r, "auth_enabled_ascii"), Some(file.path()));
    // Other connections still have to authenticate.
    steps(&pair, &[(b"get k\r\n", Read::Line, UNAUTHENTICATED)]);
}

#[test]
fn bad_password_and_unknown_user() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let (mut rc, mut sc) = steps(
        &pair,
        &[
            (b"set a 0 0 12\r\nalice wrong!\r\n", Read::Line, FAILURE),
            (b"set a 0 0 14\r\nmallory secret\r\n", Read::Line, FAILURE),
            // Another user's password, wrong case, prefix, extension.
            (b"set a 0 0 13\r\nalice hunter2\r\n", Read::Line, FAILURE),
            (b"set a 0 0 12\r\nALICE secret\r\n", Read::Line, FAILURE),
            (b"set a 0 0 11\r\nalice secre\r\n", Read::Line, FAILURE),
            (b"set a 0 0 13\r\nalice secret2\r\n", Read::Line, FAILURE),
            // A failure does not close the connection; a retry may succeed.
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
        ],
    );
    assert_eq!(auth_counters(&mut rc, &mut sc), (7, 6));
}

#[test]
fn malformed_credentials() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let (mut rc, mut sc) = steps(
        &pair,
        &[
            // No space: one token.
            (b"set a 0 0 5\r\nalice\r\n", Read::Line, BAD_FORMAT),
            // Empty, blank, a tab is not a separator.
            (b"set a 0 0 0\r\n\r\n", Read::Line, BAD_FORMAT),
            (b"set a 0 0 1\r\n \r\n", Read::Line, BAD_FORMAT),
            (b"set a 0 0 12\r\nalice\tsecret\r\n", Read::Line, BAD_FORMAT),
            // The data block must end with \r\n.
            (b"set a 0 0 3\r\nabcXY", Read::Line, BAD_TERMINATION),
            // ... and the rest ("\r\n") is a line, whose reply replaces it.
            (b"set a 0 0 3\r\nabcde\r\n", Read::Line, UNAUTHENTICATED),
            // length + 2 wraps at 32 bits: 0 bytes of data, then 2.
            (b"set a 0 0 4294967294\r\n", Read::Line, BAD_TERMINATION),
            (b"set a 0 0 4294967296\r\n\r\n", Read::Line, BAD_FORMAT),
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
        ],
    );
    // Malformed attempts are not counted.
    assert_eq!(auth_counters(&mut rc, &mut sc), (1, 0));
}

#[test]
fn tolerated_credential_forms() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let forms: &[&[u8]] = &[
        // Tokens after the password are ignored.
        b"set a 0 0 18\r\nalice secret extra\r\n",
        // Runs of spaces separate, leading ones are skipped.
        b"set a 0 0 16\r\n  alice   secret\r\n",
        b"set    a 0 0 12   \r\nalice secret\r\n",
        // Key, flags and exptime are not looked at; noreply neither.
        b"set a b c 12\r\nalice secret\r\n",
        b"set a 0 0 12 noreply\r\nalice secret\r\n",
        // A bare \n ends the command line.
        b"set a 0 0 12\nalice secret\r\n",
        // The payload is a C string: a NUL ends it.
        b"set a 0 0 16\r\nalice secret\0xyz\r\n",
        // bob's line ends with \r\n in the file.
        b"set a 0 0 11\r\nbob hunter2\r\n",
    ];
    for form in forms {
        steps(&pair, &[(form, Read::Sentinel, b"STORED\r\n")]);
    }
}

#[test]
fn replies_in_one_batch_replace_each_other() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    steps(
        &pair,
        &[
            (b"get a\r\nget b\r\nstats\r\n", Read::Line, UNAUTHENTICATED),
            // The failure is lost: the next line's reply replaces it.
            (
                b"set a 0 0 12\r\nalice wrong!\r\nget a\r\n",
                Read::Line,
                UNAUTHENTICATED,
            ),
            (
                b"set a 0 0 5\r\nalice\r\nset a 0 0 12\r\nalice secret\r\nget a\r\n",
                Read::Sentinel,
                b"STORED\r\nEND\r\n",
            ),
        ],
    );
    // Waiting for data ends the batch: the earlier reply is sent.
    steps(
        &pair,
        &[
            (b"get a\r\nset a 0 0 12\r\n", Read::Line, UNAUTHENTICATED),
            (b"alice secret\r\n", Read::Sentinel, b"STORED\r\n"),
        ],
    );
}

#[test]
fn credentials_split_across_writes() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    steps(
        &pair,
        &[
            (b"set a 0 0 12\r\n", Read::Nothing, b""),
            (b"alice ", Read::Nothing, b""),
            (b"secret\r", Read::Nothing, b""),
            (b"\n", Read::Line, b"STORED\r\n"),
            (b"get a\r\n", Read::Sentinel, b"END\r\n"),
        ],
    );
}

#[test]
fn long_lines_and_large_data_blocks() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    // Data that fits memcached's 16 KiB read buffer is read and judged.
    let mut fits = b"set a 0 0 16000\r\n".to_vec();
    fits.extend(std::iter::repeat_n(b'x', 16000));
    fits.extend_from_slice(b"\r\n");
    steps(
        &pair,
        &[
            (&fits, Read::Line, BAD_FORMAT),
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
        ],
    );
    // Data that cannot fit it closes the connection.
    let mut large = b"set a 0 0 20000\r\n".to_vec();
    large.extend(std::iter::repeat_n(b'x', 20000));
    large.extend_from_slice(b"\r\n");
    steps(&pair, &[(&large, Read::Eof, b"")]);
    // So do 2048 bytes without a newline.
    steps(&pair, &[(&[b'x'; 3000], Read::Eof, b"")]);
}

#[test]
fn auth_file_with_several_users() {
    // CRLF and CR line ends, an empty password (which no login can give),
    // and more than 8 entries: memcached keeps the first 8.
    let mut users = b"alice:secret\nbob:hunter2\r\ncarol:\ndave:pw\rjunk\n".to_vec();
    for i in 5..=10 {
        users.extend_from_slice(format!("u{i}:p{i}\n").as_bytes());
    }
    let file = AuthFile::new(&users);
    let pair = pair!("-Y", file.path());
    let cases: &[(&[u8], &[u8])] = &[
        (b"alice secret", b"STORED\r\n"),
        (b"bob hunter2", b"STORED\r\n"),
        (b"dave pw", b"STORED\r\n"),
        (b"dave pw\rjunk", FAILURE),
        (b"u8 p8", b"STORED\r\n"),
        (b"u9 p9", FAILURE),
        (b"u10 p10", FAILURE),
        (b"carol x", FAILURE),
        (b"carol ", BAD_FORMAT),
        (b"bob secret", FAILURE),
    ];
    for (credentials, expected) in cases {
        let mut login = format!("set a 0 0 {}\r\n", credentials.len()).into_bytes();
        login.extend_from_slice(credentials);
        login.extend_from_slice(b"\r\n");
        steps(&pair, &[(&login, Read::Line, expected)]);
    }
}

#[test]
fn one_line_auth_file_without_newline_loses_a_byte() {
    // memcached reads the file with fgets into a buffer of the file's size.
    let file = AuthFile::new(b"alice:secret");
    let pair = pair!("-Y", file.path());
    steps(&pair, &[(LOGIN, Read::Line, FAILURE)]);
    steps(
        &pair,
        &[(
            b"set a 0 0 11\r\nalice secre\r\n",
            Read::Line,
            b"STORED\r\n",
        )],
    );
}

#[test]
fn ascii_protocol_flag_is_allowed() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path(), "-B", "ascii");
    steps(
        &pair,
        &[
            (b"get a\r\n", Read::Line, UNAUTHENTICATED),
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
        ],
    );
}

/// Run both binaries with `-Y FILE` and `extra`; both must exit with
/// `code` without listening. Returns (memcached's, memcrab's) stderr.
fn refused(auth: &[u8], extra: &[&str], code: i32) -> Option<(String, String)> {
    let (reference, subject) = binaries()?;
    let file = AuthFile::new(auth);
    let runs: Vec<Run> = [&reference, &subject]
        .iter()
        .map(|bin| {
            let port = free_port();
            let mut args = standard_args(port);
            args.extend(["-Y".to_string(), file.path().to_string()]);
            args.extend(extra.iter().map(|s| s.to_string()));
            run_to_exit(bin, &args, Some(port), Duration::from_secs(5))
        })
        .collect();
    for (run, side) in runs.iter().zip([Side::Reference, Side::Subject]) {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(
            run.code(),
            Some(code),
            "{} with -Y and {extra:?}: {:?}, stderr {stderr}",
            side.name(),
            run.status
        );
        assert!(!run.listened, "{} listened with {extra:?}", side.name());
    }
    let text = |r: &Run| String::from_utf8_lossy(&r.stderr).into_owned();
    Some((text(&runs[0]), text(&runs[1])))
}

#[test]
fn refused_flag_combinations() {
    // EX_USAGE, with memcached's messages.
    let udp = free_port().to_string();
    let Some((r, s)) = refused(USERS, &["-U", &udp], 64) else {
        return;
    };
    assert_eq!(
        r,
        "Cannot use UDP with ascii authentication enabled (-U 0 to disable)\n"
    );
    assert_eq!(s, r);
    let binary =
        "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.\n";
    let Some((r, s)) = refused(USERS, &["-B", "auto"], 64) else {
        return;
    };
    assert_eq!(r, binary);
    assert_eq!(s, r);
    let Some((r, s)) = refused(USERS, &["-B", "binary"], 64) else {
        return;
    };
    assert_eq!(r, binary);
    assert_eq!(s, r);
}

#[test]
fn unreadable_or_malformed_auth_file() {
    // EXIT_FAILURE, same messages (the malformed one has no newline).
    for contents in [
        &b"alice:secret\nnocolon\n"[..],
        b"alice:secret\n\n",
        b"\n",
        b"a",
    ] {
        let Some((r, s)) = refused(contents, &[], 1) else {
            return;
        };
        assert!(
            r.starts_with("Authfile [")
                && r.ends_with("has a malformed entry. Should be 'user:password'"),
            "memcached: {r:?}"
        );
        assert_eq!(s, r, "auth file {}", literal(contents));
    }
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let missing = temp_path("no-such-auth-file");
    let missing = missing.to_str().expect("UTF-8 temp path");
    let out: Vec<Run> = [&reference, &subject]
        .iter()
        .map(|bin| {
            let port = free_port();
            let mut args = standard_args(port);
            args.extend(["-Y".to_string(), missing.to_string()]);
            run_to_exit(bin, &args, Some(port), Duration::from_secs(5))
        })
        .collect();
    let expected = format!(
        "Could not open authfile [{missing}] for reading, error No such file or directory: \
         No such file or directory\n"
    );
    for run in &out {
        assert_eq!(run.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&run.stderr), expected);
        assert!(!run.listened);
    }
}

#[test]
fn long_get_line_before_authentication_closes() {
    // Authenticated, a long get line waits for its newline; before, any
    // 2048 bytes without one close the connection.
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    let mut get = b"get ".to_vec();
    get.extend(std::iter::repeat_n(b'k', 3000));
    steps(&pair, &[(&get, Read::Eof, b"")]);
}

#[test]
fn lone_newline_waits_for_a_second_byte() {
    // memcached needs 2 bytes before it looks for a command line: the "\n"
    // is answered with the next line, in the same batch, so one reply.
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    steps(
        &pair,
        &[
            (b"\n", Read::Nothing, b""),
            (b"get a\r\n", Read::Line, UNAUTHENTICATED),
            (LOGIN, Read::Sentinel, b"STORED\r\n"),
        ],
    );
}

#[test]
fn auth_file_without_users_refuses_every_login() {
    let file = AuthFile::new(b"");
    let pair = pair!("-Y", file.path());
    steps(
        &pair,
        &[
            (b"get a\r\n", Read::Line, UNAUTHENTICATED),
            (LOGIN, Read::Line, FAILURE),
            (b"set a 0 0 3\r\na b\r\n", Read::Line, FAILURE),
        ],
    );
}

/// SIGHUP re-reads the auth file: a user added to it can log in, one
/// removed cannot, and the server keeps running (the default action of
/// SIGHUP would kill it). Wall clock: ~2 s.
#[test]
fn sighup_reloads_the_auth_file() {
    let file = AuthFile::new(USERS);
    let pair = pair!("-Y", file.path());
    std::fs::write(&file.0, b"alice:secret\ndave:newpass\n").expect("rewrite auth file");
    for srv in pair.servers() {
        srv.signal("HUP");
    }
    // memcached reloads from its once-a-second clock event.
    thread::sleep(Duration::from_millis(1500));
    steps(
        &pair,
        &[(
            b"set auth 0 0 12\r\ndave newpass\r\n",
            Read::Line,
            b"STORED\r\n",
        )],
    );
    steps(
        &pair,
        &[(b"set auth 0 0 11\r\nbob hunter2\r\n", Read::Line, FAILURE)],
    );
}
