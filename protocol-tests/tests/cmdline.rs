//! The command line: exit statuses for invalid values, -h, -V, the port
//! file, unix sockets, and signals.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use protocol_tests::*;

fn args_with(port: u16, extra: &[&str], listen: bool) -> Vec<String> {
    let mut v: Vec<String> = ["-u", "root", "-U", "0", "-p"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(port.to_string());
    if listen {
        v.extend(["-l".to_string(), "127.0.0.1".to_string()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Run both binaries with the same invalid arguments; compare exit codes
/// and check that neither listened on its port.
fn invalid(extra: &[&str], expected_code: i32) {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let listen = !extra.contains(&"-l");
    let runs: Vec<Run> = [&reference, &subject]
        .iter()
        .map(|bin| {
            let port = free_port();
            run_to_exit(
                bin,
                &args_with(port, extra, listen),
                Some(port),
                Duration::from_secs(5),
            )
        })
        .collect();
    let (r, s) = (&runs[0], &runs[1]);
    assert_eq!(
        r.code(),
        Some(expected_code),
        "memcached {extra:?}: {:?}, stderr {}",
        r.status,
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        s.code(),
        r.code(),
        "memcrab exit status for {extra:?} (stderr: {})",
        String::from_utf8_lossy(&s.stderr)
    );
    assert!(!r.listened, "memcached listened with {extra:?}");
    assert!(!s.listened, "memcrab listened with {extra:?}");
    assert!(
        !r.stderr.is_empty(),
        "memcached printed nothing for {extra:?}"
    );
    assert!(
        !s.stderr.is_empty(),
        "memcrab printed nothing to stderr for {extra:?}"
    );
}

#[test]
fn invalid_listen_address() {
    // EX_OSERR
    invalid(&["-l", "fooble"], 71);
}

#[test]
fn invalid_protocol() {
    // EX_USAGE
    invalid(&["-B", "http"], 64);
}

#[test]
fn invalid_connection_limit() {
    invalid(&["-c", "0"], 1);
    invalid(&["-c", "-1"], 1);
    invalid(&["-c", "abc"], 1);
}

#[test]
fn invalid_thread_count() {
    invalid(&["-t", "0"], 1);
    invalid(&["-t", "-1"], 1);
}

#[test]
fn invalid_item_size() {
    invalid(&["-I", "1000"], 64);
    invalid(&["-I", "256m", "-m", "64"], 64);
    invalid(&["-I", "1025m"], 64);
    // not a multiple of slab_chunk_max (512k)
    invalid(&["-I", "600k"], 64);
    // below the default slab_chunk_max
    invalid(&["-I", "64k"], 64);
}

#[test]
fn invalid_memory_limit() {
    // -m 0 / -m 1 leave less than 2 x the 1 MiB item size limit
    invalid(&["-m", "0"], 64);
    invalid(&["-m", "1"], 64);
}

#[test]
fn invalid_port() {
    invalid(&["-p", "70000"], 64);
}

#[test]
fn invalid_slab_settings() {
    invalid(&["-f", "1"], 1);
    invalid(&["-f", "0.5"], 1);
    invalid(&["-n", "0"], 1);
    invalid(&["-o", "slab_chunk_max=2000"], 64);
}

#[test]
fn invalid_misc_options() {
    invalid(&["-R", "0"], 1);
    invalid(&["-o", "bogus"], 1);
    invalid(&["-o", "hash_algorithm=foo"], 1);
}

#[test]
fn unknown_flags() {
    invalid(&["--bogus"], 1);
    invalid(&["-Q"], 1);
    // missing argument
    invalid(&["-D"], 1);
}

#[test]
fn help_and_version_exit_zero() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    for flag in ["-h", "-V"] {
        let args = vec![flag.to_string()];
        let r = run_to_exit(&reference, &args, None, Duration::from_secs(5));
        let s = run_to_exit(&subject, &args, None, Duration::from_secs(5));
        assert_eq!(r.code(), Some(0), "memcached {flag}");
        assert_eq!(s.code(), Some(0), "memcrab {flag}");
        assert!(!s.stdout.is_empty(), "memcrab {flag} printed nothing");
        if flag == "-V" {
            // one line: "<name> <version>...\n" (memcached: "memcached 1.6.18")
            for out in [&r.stdout, &s.stdout] {
                let text = String::from_utf8_lossy(out);
                assert!(
                    text.ends_with('\n') && text.lines().count() == 1,
                    "{flag}: {text:?}"
                );
                assert!(text.split_whitespace().count() >= 2, "{flag}: {text:?}");
            }
        }
    }
}

fn read_port_file(path: &PathBuf, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return Some(s);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `-p -1` asks for an ephemeral port, written to $MEMCACHED_PORT_FILENAME
/// as `TCP INET: <port>\n` (renamed into place once listening).
#[test]
fn port_file_with_ephemeral_port() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let mut replies = Vec::new();
    let mut contents = Vec::new();
    for (bin, side) in [(&reference, Side::Reference), (&subject, Side::Subject)] {
        let file = temp_path("portfile");
        let args: Vec<String> = ["-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", "-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let env = [("MEMCACHED_PORT_FILENAME", OsString::from(&file))];
        let mut srv = Server::spawn(bin, side, &args, Endpoint::Tcp(0), &env);
        let content = read_port_file(&file, START_TIMEOUT)
            .unwrap_or_else(|| panic!("{}: no port file; stderr {}", side.name(), srv.stderr()));
        let port: u16 = content
            .strip_prefix("TCP INET: ")
            .and_then(|s| s.strip_suffix('\n'))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}: port file {content:?}", side.name()));
        assert!(port > 0);
        srv.endpoint = Endpoint::Tcp(port);
        srv.wait_ready(START_TIMEOUT)
            .expect("listening on the port from the file");
        replies.push(srv.converse(b"set a 0 0 1\r\nx\r\nget a\r\n"));
        contents.push(content.replace(&port.to_string(), "<port>"));
        drop(srv);
        let _ = std::fs::remove_file(&file);
    }
    assert_eq!(contents[0], "TCP INET: <port>\n");
    assert_eq!(contents[1], contents[0]);
    assert_same(
        "conversation on the ephemeral port",
        &replies[0],
        &replies[1],
    );
}

/// `-p 0` disables TCP: the port file is created empty.
#[test]
fn port_file_with_tcp_disabled() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let mut contents = Vec::new();
    for (bin, side) in [(&reference, Side::Reference), (&subject, Side::Subject)] {
        let file = temp_path("portfile");
        let args: Vec<String> = ["-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let env = [("MEMCACHED_PORT_FILENAME", OsString::from(&file))];
        let mut srv = Server::spawn(bin, side, &args, Endpoint::Tcp(0), &env);
        let content = read_port_file(&file, START_TIMEOUT)
            .unwrap_or_else(|| panic!("{}: no port file; stderr {}", side.name(), srv.stderr()));
        assert!(srv.try_wait().is_none(), "{} exited", side.name());
        contents.push(content);
        drop(srv);
        let _ = std::fs::remove_file(&file);
    }
    assert_eq!(contents[0], "");
    assert_eq!(contents[1], contents[0]);
}

/// `-s PATH` serves the same protocol on a unix socket; `-a` sets its mode.
#[test]
fn unix_socket() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let rpath = temp_path("sock");
    let spath = temp_path("sock");
    let rp = rpath.to_string_lossy().into_owned();
    let sp = spath.to_string_lossy().into_owned();
    let r = Server::start(&reference, Side::Reference, &["-s", &rp, "-a", "600"]);
    let s = Server::start(&subject, Side::Subject, &["-s", &sp, "-a", "600"]);
    let conv = b"set a 5 0 3\r\nabc\r\nget a\r\nincr a 1\r\ndelete a\r\nstats detail dump\r\n";
    let (rr, sr) = (r.converse(conv), s.converse(conv));
    assert_same("unix socket conversation", &rr, &sr);
    assert_reference(
        "unix socket conversation",
        &rr,
        b"STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n\
          CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nEND\r\n",
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &PathBuf| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode(&rpath), 0o600);
    assert_eq!(mode(&spath), mode(&rpath), "socket file mode with -a 600");
    let (rs, ss) = (r.stats("settings"), s.stats("settings"));
    assert_eq!(stat(&rs, "domain_socket"), Some(rp.as_str()));
    assert_eq!(stat(&ss, "domain_socket"), Some(sp.as_str()));
    assert_stats_eq("stats settings with -s", &rs, &ss, IGNORED_STATS);
    // TCP is off with -s: nothing listens on the -p port
    let rport = r
        .args
        .iter()
        .position(|a| a == "-p")
        .map(|i| r.args[i + 1].clone());
    if let Some(port) = rport.and_then(|p| p.parse::<u16>().ok()) {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

/// SIGTERM and SIGINT stop the server with exit status 0 and close the port.
#[test]
fn signals_stop_cleanly() {
    for sig in ["TERM", "INT"] {
        let Some(mut p) = Pair::start(&[]) else {
            return;
        };
        p.diff(b"set a 0 0 1\r\nx\r\n");
        let (r, s) = p.run_mut(|srv| {
            srv.signal(sig);
            (
                srv.wait_exit(Duration::from_secs(5))
                    .map(|s| (s.code(), s.to_string())),
                srv.port(),
            )
        });
        let rcode = r.0.as_ref().map(|c| c.0);
        let scode = s.0.as_ref().map(|c| c.0);
        assert_eq!(rcode, Some(Some(0)), "memcached after SIG{sig}: {:?}", r.0);
        assert_eq!(scode, rcode, "memcrab after SIG{sig}: {:?}", s.0);
        for port in [r.1, s.1] {
            assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        }
    }
}

/// memcached raises the open-files limit to -c: started with a soft limit
/// of 64, both still serve 150 simultaneous clients under -c 300. (Run
/// through `sh -c 'ulimit -Sn 64; exec …'`.)
#[test]
fn open_files_limit_raised_to_maxconns() {
    use std::io::{Read, Write};
    let Some((reference, subject)) = binaries() else {
        return;
    };
    for bin in [&reference, &subject] {
        let port = free_port();
        let mut args = vec![
            "-c".to_string(),
            "ulimit -Sn 64 && exec \"$0\" \"$@\"".to_string(),
            bin.display().to_string(),
        ];
        args.extend(args_with(port, &["-c", "300"], true));
        let mut child = std::process::Command::new("sh")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn sh");
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let mut answered = 0;
        let mut clients = Vec::new();
        for _ in 0..150 {
            let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                break;
            };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 64];
            if c.write_all(b"version\r\n").is_ok()
                && c.read(&mut buf)
                    .is_ok_and(|n| buf[..n].starts_with(b"VERSION "))
            {
                answered += 1;
            } else {
                break;
            }
            clients.push(c);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(up, "{} did not listen", bin.display());
        assert_eq!(answered, 150, "{} with a soft limit of 64", bin.display());
    }
}
