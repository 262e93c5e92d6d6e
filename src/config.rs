//! Command-line configuration: memcached 1.6's flags, defaults and meanings.
//!
//! (Being written: parsing, validation and `-h` text land in this file.)

use std::path::PathBuf;

/// Which protocols a listener accepts (`-B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Ascii,
    Auto,
    Binary,
}

/// Every setting memcrab runs with. Field names follow memcached's `settings` struct.
#[derive(Clone, Debug)]
pub struct Config {
    /// `-p`: TCP port (default 11211; 0 = off... see memcached).
    pub port: u16,
    /// `-U`: UDP port (default 0 = off).
    pub udp_port: u16,
    /// `-l`: interfaces as given (`host` or `host:port`, comma-separated and repeatable).
    /// Empty means all interfaces.
    pub listen: Vec<String>,
    /// `-s`: unix socket path (disables TCP and UDP when given, as memcached).
    pub unix_socket: Option<PathBuf>,
    /// `-a`: unix socket permissions (octal, default 0700).
    pub unix_mask: u32,
    /// `-m`: slab memory limit in bytes (default 64 MiB).
    pub max_bytes: usize,
    /// `-M`: return an error instead of evicting.
    pub no_evict: bool,
    /// `-c`: max simultaneous connections (default 1024).
    pub max_conns: usize,
    /// `-t`: worker threads (default 4).
    pub threads: usize,
    /// `-f`: slab growth factor (default 1.25).
    pub growth_factor: f64,
    /// `-n`: minimum space for key+value+flags (default 48).
    pub chunk_size: usize,
    /// `-I`: largest item and slab page size in bytes (default 1 MiB).
    pub item_size_max: usize,
    /// `-o slab_chunk_max`: largest slab chunk (default item_size_max / 2).
    pub slab_chunk_max: usize,
    /// `!-C`: CAS enabled.
    pub use_cas: bool,
    /// `-v` count.
    pub verbose: u8,
    /// `-d`.
    pub daemonize: bool,
    /// `-P`.
    pub pid_file: Option<PathBuf>,
    /// `-u`.
    pub user: Option<String>,
    /// `-R`: max requests per event (default 20).
    pub reqs_per_event: usize,
    /// `-b`: listen backlog (default 1024).
    pub backlog: u32,
    /// `-B`.
    pub protocol: Protocol,
    /// `-A`: enable `shutdown`.
    pub shutdown_command: bool,
    /// `!-F`: `flush_all` allowed.
    pub flush_enabled: bool,
    /// `-Y`: ascii auth file.
    pub auth_file: Option<PathBuf>,
    /// `-o idle_timeout` seconds (0 = off).
    pub idle_timeout: u32,
    /// `-o hashpower` (0 = default).
    pub hashpower: u8,
    /// `-o maxconns_fast` (default on).
    pub maxconns_fast: bool,
    /// `-o lru_crawler` / `no_lru_crawler`.
    pub lru_crawler: bool,
    pub lru_crawler_sleep: u32,
    pub lru_crawler_tocrawl: u32,
    /// `-o lru_maintainer` / `no_lru_maintainer`.
    pub lru_maintainer: bool,
    pub hot_lru_pct: u32,
    pub warm_lru_pct: u32,
    pub temporary_ttl: u32,
    pub slab_reassign: bool,
    pub slab_automove: u8,
    pub track_sizes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            udp_port: 0,
            listen: Vec::new(),
            unix_socket: None,
            unix_mask: 0o700,
            max_bytes: 64 * 1024 * 1024,
            no_evict: false,
            max_conns: 1024,
            threads: 4,
            growth_factor: 1.25,
            chunk_size: 48,
            item_size_max: 1024 * 1024,
            slab_chunk_max: 512 * 1024,
            use_cas: true,
            verbose: 0,
            daemonize: false,
            pid_file: None,
            user: None,
            reqs_per_event: 20,
            backlog: 1024,
            protocol: Protocol::Auto,
            shutdown_command: false,
            flush_enabled: true,
            auth_file: None,
            idle_timeout: 0,
            hashpower: 0,
            maxconns_fast: true,
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            lru_maintainer: true,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            temporary_ttl: 61,
            slab_reassign: true,
            slab_automove: 1,
            track_sizes: false,
        }
    }
}
