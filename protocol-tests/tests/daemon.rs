//! Process behaviour against memcached 1.6.18: `-vv` request logging on
//! stderr, `-d` daemon mode and the `-P` pid file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use protocol_tests::*;

/// Is something listening on 127.0.0.1:`port`? (/proc/net/tcp, so that the
/// check opens no connection, which `-vv` would log.)
fn listening(port: u16) -> bool {
    let needle = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.get(1) == Some(&needle.as_str()) && f.get(3) == Some(&"0A")
        })
}

/// A temp file removed on drop (also when a test fails).
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Poll `f` every 10 ms until it returns `Some` or `timeout` passes.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A server whose stdout and stderr go to files; SIGTERM and reaped on
/// drop (SIGKILL if it does not stop).
struct Logged {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    port: u16,
}

impl Logged {
    fn start(bin: &Path, extra: &[&str]) -> Logged {
        let port = free_port();
        let (stdout, stderr) = (temp_path("stdout"), temp_path("stderr"));
        let child = Command::new(bin)
            .args(standard_args(port))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut server = Logged {
            child,
            stdout,
            stderr,
            port,
        };
        let up = poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{} exited with {status}: {}",
                    bin.display(),
                    server.stderr()
                );
            }
            listening(port).then_some(())
        });
        assert!(up.is_some(), "{} does not listen", bin.display());
        server
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// SIGTERM, wait for the exit, return (stdout, stderr).
    fn stop(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let exited = poll(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        });
        assert!(exited.is_some(), "no exit after SIGTERM");
        let stdout = std::fs::read(&self.stdout).unwrap_or_default();
        (String::from_utf8_lossy(&stdout).into_owned(), self.stderr())
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// The lines `-vv` prints about client connections (`<fd ...`, `>fd ...`,
/// `fd: ...`), with the descriptor replaced by `N`. Listener lines are
/// start-up output, not the conversation's.
fn connection_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            let (dir, rest) = match line.as_bytes().first() {
                Some(b'<' | b'>') => line.split_at(1),
                _ => ("", line),
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let tail = &rest[digits..];
            let ours = digits > 0 && (tail.starts_with(' ') || tail.starts_with(": "));
            (ours && !tail.contains("server listening")).then(|| format!("{dir}N{tail}"))
        })
        .collect()
}

/// Run the conversation (one connection, steps written one by one, each
/// answered before the next) with `extra` flags on both servers; return
/// memcached's connection lines after checking memcrab's are the same and
/// that neither wrote to stdout.
fn verbose_conversation(extra: &[&str], steps: &[&[u8]]) -> Option<Vec<String>> {
    verbose_logs(extra, steps, |conn, step| {
        conn.write_raw(step);
        if step.ends_with(b"quit\r\n") {
            conn.read_to_eof(REPLY_TIMEOUT);
        } else {
            conn.read_until_suffix(b"\r\n", REPLY_TIMEOUT);
        }
    })
}

/// [`verbose_conversation`] for the binary protocol: each step is followed
/// by a noop, whose reply ends it.
fn verbose_binary_conversation(extra: &[&str], steps: &[&[u8]]) -> Option<Vec<String>> {
    verbose_logs(extra, steps, |conn, step| {
        conn.send_binary(step);
    })
}

fn verbose_logs(
    extra: &[&str],
    steps: &[&[u8]],
    mut send: impl FnMut(&mut Conn, &[u8]),
) -> Option<Vec<String>> {
    let (reference, subject) = binaries()?;
    let mut logs = Vec::new();
    for bin in [&reference, &subject] {
        let server = Logged::start(bin, extra);
        let mut conn = Conn::open(&Endpoint::Tcp(server.port));
        for step in steps {
            send(&mut conn, step);
        }
        drop(conn);
        let closed = poll(REPLY_TIMEOUT, || {
            server.stderr().contains("connection closed.").then_some(())
        });
        assert!(
            closed.is_some(),
            "{}: no close logged:\n{}",
            bin.display(),
            server.stderr()
        );
        let (stdout, stderr) = server.stop();
        assert_eq!(stdout, "", "{} wrote to stdout", bin.display());
        logs.push(connection_lines(&stderr));
    }
    let render = |l: &[String]| l.join("\n");
    assert_eq!(
        render(&logs[1]),
        render(&logs[0]),
        "\n-vv lines differ (left: memcrab, right: memcached)"
    );
    Some(logs.swap_remove(0))
}

#[test]
fn verbose_logs_requests_and_replies() {
    let steps: &[&[u8]] = &[
        b"set a 0 0 1\r\nx\r\n",
        b"get a\r\n",
        b"get a b\r\n",
        b"gets a\r\n",
        b"delete a\r\n",
        b"delete a\r\n",
        b"incr n 1\r\n",
        b"set n 0 0 1 noreply\r\n5\r\nincr n 2\r\n",
        b"touch n 10\r\n",
        b"bogus\r\n",
        b"version\r\n",
        b"mn\r\n",
        b"quit\r\n",
    ];
    let Some(lines) = verbose_conversation(&["-vv"], steps) else {
        return;
    };
    let expected = [
        "<N new auto-negotiating client connection",
        "N: Client using the ascii protocol",
        "<N set a 0 0 1",
        ">N STORED",
        "<N get a",
        ">N sending key a",
        ">N END",
        "<N get a b",
        ">N sending key a",
        ">N END",
        "<N gets a",
        ">N sending key a",
        ">N END",
        "<N delete a",
        ">N DELETED",
        "<N delete a",
        ">N NOT_FOUND",
        "<N incr n 1",
        ">N NOT_FOUND",
        "<N set n 0 0 1 noreply",
        ">N NOREPLY STORED",
        "<N incr n 2",
        ">N 7",
        "<N touch n 10",
        ">N TOUCHED",
        "<N bogus",
        ">N ERROR",
        "<N version",
        ">N VERSION 1.6.18",
        "<N mn",
        ">N MN",
        "<N quit",
        "<N connection closed.",
    ];
    assert_eq!(lines, expected, "memcached's -vv lines");
}

/// The binary protocol's -vv lines: header dumps of requests and replies,
/// and a line per command (memcached prints some without the `<fd`
/// prefix; those are not compared).
#[test]
fn verbose_logs_binary_protocol() {
    use protocol_tests::bin::*;
    let steps: Vec<Vec<u8>> = vec![
        store(SET, b"k", 0, 0, b"v", 0, 1),
        store(ADD, b"k", 0, 0, b"v", 0, 2),
        store(REPLACEQ, b"k", 0, 0, b"w", 0, 3),
        req(GET, b"k", 4),
        req(GETK, b"zz", 5),
        touch(GAT, b"k", 0, 6),
        req(DELETE, b"k", 7),
        delta(INCR, b"n", 1, 0, 0, 0, 8),
        req(STAT, b"bogus", 9),
        req(STAT, b"", 10),
        req(0x55, b"", 11),
        req(GET, b"", 12),
    ];
    let steps: Vec<&[u8]> = steps.iter().map(Vec::as_slice).collect();
    let Some(lines) = verbose_binary_conversation(&["-vv"], &steps) else {
        return;
    };
    let count = |s: &str| lines.iter().filter(|l| l.as_str() == s).count();
    assert_eq!(
        lines[..3],
        [
            "<N new auto-negotiating client connection",
            "N: Client using the binary protocol",
            "<N Read binary protocol data:"
        ]
    );
    assert_eq!(count("<N SET k Value len is 1"), 1);
    assert_eq!(count("<N ADD k Value len is 1"), 1);
    assert_eq!(count("<N REPLACE k Value len is 1"), 1);
    assert_eq!(count(">N Writing an error: Data exists for key."), 1);
    assert_eq!(count("<N GET k"), 1);
    assert_eq!(count("<N TOUCH k"), 1);
    assert_eq!(count("<N STATS bogus"), 1);
    assert_eq!(count(">N Writing an error: Invalid arguments"), 1);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("<N connection closed.")
    );
}

#[test]
fn verbose_logs_in_auth_mode() {
    let path = Remove(temp_path("auth"));
    std::fs::write(&path.0, b"alice:secret\n").expect("write auth file");
    let path_arg = path.0.to_str().expect("UTF-8 temp path").to_string();
    let steps: &[&[u8]] = &[
        b"get a\r\n",
        b"set a 0 0 5\r\nalice\r\n",
        b"set a 0 0 12\r\nalice secret\r\n",
        b"get a\r\n",
        b"quit\r\n",
    ];
    let Some(lines) = verbose_conversation(&["-vv", "-Y", &path_arg], steps) else {
        return;
    };
    // -Y implies -B ascii: no negotiation; the authentication path logs
    // its replies but not the request lines.
    let expected = [
        "<N new ascii client connection.",
        ">N CLIENT_ERROR unauthenticated",
        ">N CLIENT_ERROR bad authentication token format",
        ">N STORED",
        "<N get a",
        ">N END",
        "<N quit",
        "<N connection closed.",
    ];
    assert_eq!(lines, expected, "memcached's -vv lines");
}

// ---------------------------------------------------------------------------
// -d and -P

/// Fields of /proc/PID/stat after the command name: state, ppid, pgrp,
/// session, ...
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// Running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|f| !matches!(f[0].as_str(), "Z" | "X"))
}

/// A daemon by pid, SIGKILLed on drop if it still runs (as the binary we
/// started, in case the pid was reused).
struct Daemon {
    pid: u32,
    bin: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok();
        let ours = exe.and_then(|e| e.canonicalize().ok()) == self.bin.canonicalize().ok();
        if alive(self.pid) && ours {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.pid.to_string())
                .status();
        }
    }
}

/// What a `-d -P FILE` run looked like.
#[derive(Debug, PartialEq)]
struct DaemonRun {
    parent_exit: Option<i32>,
    parent_output: String,
    /// The pid file is the daemon's pid and a newline.
    pid_file_ok: bool,
    /// Not our child (the parent we started exited), in its own session.
    forked: bool,
    setsid: bool,
    cwd: Option<PathBuf>,
    std_fds: Vec<Option<PathBuf>>,
    reply: String,
    stopped_by_sigterm: bool,
    pid_file_removed: bool,
    tmp_file_left: bool,
}

fn daemon_run(bin: &Path) -> DaemonRun {
    let port = free_port();
    let pid_file = Remove(temp_path("pid"));
    let pid_path = pid_file.0.clone();
    let mut args = standard_args(port);
    args.extend(["-d".into(), "-P".into(), pid_path.display().to_string()]);
    let parent = run_to_exit(bin, &args, None, Duration::from_secs(10));
    // The daemon writes its pid once it listens.
    let text = poll(Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_path)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .unwrap_or_else(|| panic!("{}: no pid file {}", bin.display(), pid_path.display()));
    let pid: u32 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file holds {text:?}"));
    let _guard = Daemon {
        pid,
        bin: bin.to_path_buf(),
    };
    let stat = proc_stat(pid).unwrap_or_else(|| panic!("daemon {pid} is gone"));
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let std_fds = (0..3)
        .map(|n| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).ok())
        .collect();
    let reply = Conn::open(&Endpoint::Tcp(port))
        .send(b"set a 0 0 1\r\nx\r\nget a\r\n")
        .bytes;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let stopped = poll(Duration::from_secs(10), || (!alive(pid)).then_some(())).is_some();
    let mut tmp = pid_path.clone().into_os_string();
    tmp.push(".tmp");
    DaemonRun {
        parent_exit: parent.code(),
        parent_output: format!(
            "{}{}",
            String::from_utf8_lossy(&parent.stdout),
            String::from_utf8_lossy(&parent.stderr)
        ),
        pid_file_ok: text == format!("{pid}\n"),
        forked: stat[1] != std::process::id().to_string(),
        setsid: stat[3] == pid.to_string(),
        cwd,
        std_fds,
        reply: String::from_utf8_lossy(&reply).into_owned(),
        stopped_by_sigterm: stopped,
        pid_file_removed: !pid_path.exists(),
        tmp_file_left: Path::new(&tmp).exists(),
    }
}

#[test]
fn daemon_mode_and_pid_file() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let (r, s) = thread::scope(|scope| {
        let r = scope.spawn(|| daemon_run(&reference));
        let s = daemon_run(&subject);
        (r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), s)
    });
    let dev_null = Some(PathBuf::from("/dev/null"));
    let expected = DaemonRun {
        parent_exit: Some(0),
        parent_output: String::new(),
        pid_file_ok: true,
        forked: true,
        setsid: true,
        cwd: Some(PathBuf::from("/")),
        std_fds: vec![dev_null.clone(), dev_null.clone(), dev_null],
        reply: "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n".to_string(),
        stopped_by_sigterm: true,
        pid_file_removed: true,
        tmp_file_left: false,
    };
    assert_eq!(r, expected, "memcached -d -P");
    assert_eq!(s, r, "memcrab -d -P (left) vs memcached (right)");
}

/// Without `-d` memcached writes the pid file but leaves it on exit; it
/// warns when the file names a running process.
#[test]
fn pid_file_without_daemon_mode() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let me = std::process::id();
    let mut results = Vec::new();
    for bin in [&reference, &subject] {
        let file = Remove(temp_path("pid"));
        let path = file.0.clone();
        std::fs::write(&path, format!("{me}\n")).expect("write pid file");
        let path_arg = path.display().to_string();
        let server = Logged::start(bin, &["-P", &path_arg]);
        let pid = server.child.id();
        let written = poll(Duration::from_secs(5), || {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|t| *t == format!("{pid}\n"))
        });
        let (stdout, stderr) = server.stop();
        let kept = std::fs::read_to_string(&path).ok();
        let warning = stderr
            .lines()
            .find(|l| l.starts_with("WARNING"))
            .map(str::to_string);
        results.push((written.is_some(), kept == written, stdout, warning));
    }
    let warning = format!("WARNING: The pid file contained the following (running) pid: {me}");
    assert_eq!(
        results[0],
        (true, true, String::new(), Some(warning)),
        "memcached -P"
    );
    assert_eq!(results[1], results[0], "memcrab -P (left) vs memcached");
}
