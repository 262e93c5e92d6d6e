//! memcrab: a memcached-compatible in-memory cache server.
//!
//! Data flows one way: [`server`] (sockets, connections) → [`protocol`] (parse a
//! command, apply it) → [`storage`] (slab allocator, index, eviction) → the
//! connection's response buffer.

pub mod config;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod storage;

use std::io;
use std::sync::Arc;

/// Starts memcrab with `config`: logging, listeners, daemon mode,
/// privileges, then serves until told to stop.
pub fn start(config: config::Config) -> io::Result<()> {
    init_logging(config.verbose);
    raise_fd_limit(config.max_conns)?;
    let credentials = match &config.auth_file {
        Some(path) => load_auth_file(path),
        None => Vec::new(),
    };
    let listeners = server::bind(&config)?;
    if let Ok(path) = std::env::var("MEMCACHED_PORT_FILENAME") {
        listeners.write_port_file(&path)?;
    }
    if config.listen.is_empty() && config.unix_socket.is_none() && config.auth_file.is_none() {
        tracing::warn!(
            "listening on all interfaces without authentication: anyone who can reach this host can use the cache"
        );
    }
    if config.daemonize {
        // Before any thread exists: fork() keeps only the calling thread.
        // As memcached: stay in the directory with -r, keep stderr with -v.
        nix::unistd::daemon(config.enable_coredumps, config.verbose > 0)
            .map_err(io::Error::from)?;
    }
    if let Some(path) = &config.pid_file {
        save_pid(path);
    }
    drop_privileges(&config)?;
    // memcached removes the pid file on exit only when it daemonized.
    let pid_file = config.pid_file.clone().filter(|_| config.daemonize);
    let shared = Arc::new(server::Shared::new(config, credentials));
    let result = server::run(shared, listeners);
    if let Some(path) = pid_file
        && let Err(e) = std::fs::remove_file(&path)
    {
        let msg = format!("Could not remove the pid file {}", path.display());
        perror(&msg, &e);
    }
    result
}

/// memcached raises the open-files limit to `-c`; memcrab asks for up to
/// 64 more, for descriptors of its own that memcached does not have, and,
/// like memcached, fails when even `-c` is over the hard limit.
fn raise_fd_limit(max_conns: usize) -> io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let conns = max_conns as u64;
    let want = conns.max(conns.saturating_add(64).min(hard));
    if soft >= want {
        return Ok(());
    }
    setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).map_err(|_| {
        io::Error::other(
            "failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.",
        )
    })
}

/// memcached's `perror`-style line: `message: strerror(errno)`.
fn perror(message: &str, e: &io::Error) {
    let text = e.to_string();
    let text = match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_owned(),
        None => text,
    };
    eprintln!("{message}: {text}");
}

/// `-P`: memcached's `save_pid`. Warns if the file names a running
/// process, writes `<file>.tmp` and renames it (so a reader never sees it
/// empty); failures are warnings, not fatal.
fn save_pid(path: &std::path::Path) {
    if let Ok(old) = std::fs::read(path) {
        let line = old.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let text = String::from_utf8_lossy(line);
        let text = text.trim_start();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let ends = text[digits..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace);
        if let (Ok(pid), true) = (text[..digits].parse::<u64>(), ends) {
            let pid = pid as u32;
            let target = nix::unistd::Pid::from_raw(pid as i32);
            if nix::sys::signal::kill(target, None).is_ok() {
                eprintln!("WARNING: The pid file contained the following (running) pid: {pid}");
            }
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    if let Err(e) = std::fs::write(&tmp, format!("{}\n", std::process::id())) {
        let msg = format!("Could not open the pid file {} for writing", tmp.display());
        perror(&msg, &e);
        return;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let msg = format!(
            "Could not rename the pid file from {} to {}",
            tmp.display(),
            path.display()
        );
        perror(&msg, &e);
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .try_init();
}

/// `-Y`: memcached's `authfile_load`, exits 1 with its messages when the
/// file cannot be read or has a malformed entry.
fn load_auth_file(path: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let shown = path.display();
    let text = match std::fs::File::open(path) {
        // A read error (a directory) reads as an empty file, as fgets does.
        Ok(mut f) => {
            let mut text = Vec::new();
            let _ = io::Read::read_to_end(&mut f, &mut text);
            text
        }
        Err(e) => {
            let msg = format!("Could not open authfile [{shown}] for reading, error {e}");
            let msg = match e.raw_os_error() {
                Some(code) => msg.replace(&format!(" (os error {code})"), ""),
                None => msg,
            };
            perror(&msg, &e);
            std::process::exit(1);
        }
    };
    let Some(creds) = parse_auth_file(&text) else {
        eprint!("Authfile [{shown}] has a malformed entry. Should be 'user:password'");
        std::process::exit(1);
    };
    creds
}

/// SIGHUP: reads the `-Y` file again; `None` (keep the old list) if it
/// cannot be read or is malformed.
pub fn reload_auth_file(path: &std::path::Path) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    parse_auth_file(&std::fs::read(path).ok()?)
}

/// memcached 1.6.18's parser, quirks included: lines are read with
/// `fgets` into a buffer the size of the file (so a one-line file without
/// a final newline loses its last byte) in pieces of at most 255 bytes;
/// the user ends at the first `:`, the password at `\r`, `\n` or NUL; a
/// line without `:` (an empty one too) is malformed (`None`); only the
/// first 8 entries count.
fn parse_auth_file(file: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    const MAX_ENTRY_LEN: usize = 256;
    const MAX_ENTRIES: usize = 8;
    let size = file.len();
    let mut buf = vec![0u8; size + 1];
    let at = |buf: &[u8], i: usize| buf.get(i).copied().unwrap_or(0);
    let (mut cur, mut read) = (0, 0);
    let mut creds = Vec::new();
    loop {
        // fgets(buf + cur, min(size - cur, 256), file)
        let n = size.saturating_sub(cur).min(MAX_ENTRY_LEN);
        if n == 0 || (n > 1 && read == size) {
            break;
        }
        let mut len = 0;
        while len < n - 1 && read < size {
            let b = file[read];
            buf[cur + len] = b;
            read += 1;
            len += 1;
            if b == b'\n' {
                break;
            }
        }
        buf[cur + len] = 0;
        let mut user = None;
        let mut x = 0;
        while x < MAX_ENTRY_LEN {
            let b = at(&buf, cur + x);
            match user {
                None if b == 0 => break,
                None if b == b':' => user = Some(x),
                Some(_) if matches!(b, b'\n' | b'\r' | 0) => break,
                _ => {}
            }
            x += 1;
        }
        let ulen = user?;
        let end = (cur + x).min(buf.len());
        creds.push((
            buf[cur..cur + ulen].to_vec(),
            buf[cur + ulen + 1..end].to_vec(),
        ));
        if creds.len() == MAX_ENTRIES || at(&buf, cur + x) == 0 {
            break;
        }
        cur += x;
    }
    Some(creds)
}

/// `-u`: when started as root, run as that user.
fn drop_privileges(config: &config::Config) -> io::Result<()> {
    use nix::unistd::{Uid, User, setgid, setuid};
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let Some(name) = &config.user else {
        return Ok(());
    };
    let user = User::from_name(name)
        .map_err(io::Error::from)?
        .ok_or_else(|| io::Error::other(format!("can't find the user {name} to switch to")))?;
    if user.uid.is_root() {
        return Ok(());
    }
    setgid(user.gid).map_err(io::Error::from)?;
    setuid(user.uid).map_err(io::Error::from)?;
    Ok(())
}
