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
    config
        .check_root_user()
        .map_err(|e| io::Error::other(e.message))?;
    let credentials = match &config.auth_file {
        Some(path) => read_auth_file(path)?,
        None => Vec::new(),
    };
    let listeners = server::bind(&config)?;
    if let Ok(path) = std::env::var("MEMCACHED_PORT_FILENAME") {
        listeners.write_port_file(&path)?;
    }
    if config.listen.is_empty() && config.unix_socket.is_none() && credentials.is_empty() {
        tracing::warn!(
            "listening on all interfaces without authentication: anyone who can reach this host can use the cache"
        );
    }
    if config.daemonize {
        // Before any thread exists: fork() keeps only the calling thread.
        nix::unistd::daemon(false, config.verbose > 0).map_err(io::Error::from)?;
    }
    if let Some(path) = &config.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))?;
    }
    drop_privileges(&config)?;
    let pid_file = config.pid_file.clone();
    let shared = Arc::new(server::Shared::new(config, credentials));
    let result = server::run(shared, listeners);
    if let Some(path) = pid_file {
        let _ = std::fs::remove_file(path);
    }
    result
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
        .try_init();
}

/// `-Y`: one `username:password` per line.
fn read_auth_file(path: &std::path::Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let text = std::fs::read(path)?;
    let creds: Vec<_> = text
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some((line[..colon].to_vec(), line[colon + 1..].to_vec()))
        })
        .collect();
    if creds.is_empty() {
        return Err(io::Error::other(format!(
            "no usernames in auth file {}",
            path.display()
        )));
    }
    Ok(creds)
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
