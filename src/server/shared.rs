//! State every connection shares: settings, the store, counters, and the
//! registry behind `stats conns`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::{Config, SettingsRuntime};
use crate::stats::{Summed, ThreadStats};
use crate::storage::{Store, StoreConfig};

/// One open connection, as `stats conns` shows it.
pub struct ConnEntry {
    pub fd: i32,
    pub addr: String,
    pub listen_addr: Option<String>,
    pub state: &'static str,
    pub last_cmd: Arc<AtomicU32>,
}

pub struct ConnRow {
    pub fd: i32,
    pub addr: String,
    pub listen_addr: Option<String>,
    pub state: &'static str,
    pub idle_secs: u32,
}

pub struct ConnCounts {
    pub current: u64,
    pub total: u64,
    pub rejected: u64,
}

#[derive(Default, Clone, Copy)]
struct PrefixStats {
    get: u64,
    hit: u64,
    set: u64,
    del: u64,
}

/// `stats detail`: prefixes in the order first seen (as `stats detail dump`
/// lists them), and where each one is in that list.
#[derive(Default)]
struct Detail {
    list: Vec<(Vec<u8>, PrefixStats)>,
    index: HashMap<Vec<u8>, usize>,
}

pub struct Shared {
    pub config: Config,
    pub store: Store,
    /// One per worker thread, plus one for work done outside workers.
    pub threads: Box<[ThreadStats]>,
    verbosity: AtomicU32,
    pub automove: AtomicU8,
    automove_ratio: Mutex<f64>,
    pub crawler_enabled: AtomicBool,
    crawler_starts: AtomicU64,
    memlimit: AtomicUsize,
    detail_on: AtomicBool,
    detail: Mutex<Detail>,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    next_conn: AtomicU64,
    pub curr_conns: AtomicU64,
    total_conns: AtomicU64,
    pub rejected_conns: AtomicU64,
    pub shutdown: Notify,
    pub stopping: AtomicBool,
    credentials: parking_lot::RwLock<Vec<(Vec<u8>, Vec<u8>)>>,
    pub listeners: AtomicU32,
    /// What `stats` reports as `hash_power_level`: memcached's table size.
    pub hash_power: AtomicU32,
    pub crawler_tocrawl: AtomicU32,
    pub crawler_sleep: AtomicU32,
}

impl Shared {
    pub fn new(config: Config, credentials: Vec<(Vec<u8>, Vec<u8>)>) -> Shared {
        let store = Store::new(&StoreConfig::from_config(&config));
        Shared {
            threads: (0..=config.threads)
                .map(|_| ThreadStats::default())
                .collect(),
            verbosity: AtomicU32::new(config.verbose as u32),
            automove: AtomicU8::new(if config.slab_reassign {
                config.slab_automove
            } else {
                0
            }),
            automove_ratio: Mutex::new(config.slab_automove_ratio),
            crawler_enabled: AtomicBool::new(config.lru_crawler),
            crawler_starts: AtomicU64::new(1),
            memlimit: AtomicUsize::new(config.max_bytes),
            detail_on: AtomicBool::new(config.detail_enabled),
            detail: Mutex::new(Detail::default()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            curr_conns: AtomicU64::new(0),
            total_conns: AtomicU64::new(0),
            rejected_conns: AtomicU64::new(0),
            shutdown: Notify::new(),
            stopping: AtomicBool::new(false),
            listeners: AtomicU32::new(0),
            hash_power: AtomicU32::new(match config.hashpower {
                0 => 16,
                p => p as u32,
            }),
            crawler_tocrawl: AtomicU32::new(config.lru_crawler_tocrawl),
            crawler_sleep: AtomicU32::new(config.lru_crawler_sleep),
            credentials: parking_lot::RwLock::new(credentials),
            store,
            config,
        }
    }

    pub fn verbosity(&self) -> u32 {
        self.verbosity.load(Ordering::Relaxed)
    }

    pub fn set_verbosity(&self, v: u32) {
        self.verbosity.store(v, Ordering::Relaxed);
    }

    pub fn request_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Resolves once shutdown has been requested, even if that happened
    /// before the call.
    pub async fn stopped(&self) {
        loop {
            let notified = self.shutdown.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopping() {
                return;
            }
            notified.await;
        }
    }

    pub fn memlimit(&self) -> usize {
        self.memlimit.load(Ordering::Relaxed)
    }

    pub fn set_memlimit(&self, bytes: usize) {
        self.memlimit.store(bytes, Ordering::Relaxed);
        self.store.slabs.set_limit(bytes);
    }

    pub fn set_automove_ratio(&self, r: f64) {
        *self.automove_ratio.lock() = r;
    }

    pub fn listener_count(&self) -> u64 {
        self.listeners.load(Ordering::Relaxed) as u64
    }

    pub fn crawler_starts(&self) -> u64 {
        self.crawler_starts.load(Ordering::Relaxed)
    }

    pub fn summed(&self) -> Summed {
        Summed::of(self.threads.iter())
    }

    pub fn reset_stats(&self) {
        for t in self.threads.iter() {
            t.reset();
        }
        self.total_conns.store(0, Ordering::Relaxed);
        self.rejected_conns.store(0, Ordering::Relaxed);
        self.store.reset_counters();
    }

    /// `stats settings`, with the values that can change at run time.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut config = self.config.clone();
        config.max_bytes = self.memlimit();
        config.lru_crawler = self.crawler_enabled.load(Ordering::Relaxed);
        config.slab_automove = self.automove.load(Ordering::Relaxed);
        config.slab_automove_ratio = *self.automove_ratio.lock();
        config.lru_crawler_tocrawl = self.crawler_tocrawl.load(Ordering::Relaxed);
        config.lru_crawler_sleep = self.crawler_sleep.load(Ordering::Relaxed);
        let mut rows = config.settings_stats(&SettingsRuntime {
            verbosity: self.verbosity(),
            oldest: self.store.oldest_live.load(Ordering::Relaxed),
            tcpport: self.config.port,
            udpport: self.config.udp_port,
        });
        if self.detail_on.load(Ordering::Relaxed) {
            for row in rows.iter_mut().filter(|r| r.0 == "detail_enabled") {
                row.1 = "yes".into();
            }
        }
        rows
    }

    // ----- -Y authentication -----

    /// `-Y` given, even with no users in the file (then no login succeeds).
    pub fn auth_required(&self) -> bool {
        self.config.auth_file.is_some()
    }

    /// SIGHUP: re-reads the `-Y` file, as memcached does; a file that no
    /// longer reads keeps the current list.
    pub fn reload_credentials(&self) {
        let Some(path) = &self.config.auth_file else {
            return;
        };
        match crate::reload_auth_file(path) {
            Some(list) => *self.credentials.write() = list,
            None => tracing::warn!("SIGHUP: could not reload {}", path.display()),
        }
    }

    pub fn check_credentials(&self, user: &[u8], pass: &[u8]) -> bool {
        self.credentials
            .read()
            .iter()
            .any(|(u, p)| u == user && p == pass)
    }

    // ----- stats detail -----

    pub fn set_detail(&self, on: bool) {
        self.detail_on.store(on, Ordering::Relaxed);
    }

    fn detail(&self, key: &[u8], f: impl FnOnce(&mut PrefixStats)) {
        if !self.detail_on.load(Ordering::Relaxed) {
            return;
        }
        // memcached counts only keys that have a prefix before ':'.
        let delimiter = self.config.prefix_delimiter as u8;
        let Some(end) = key.iter().position(|&b| b == delimiter) else {
            return;
        };
        let prefix = &key[..end];
        let mut d = self.detail.lock();
        let Detail { list, index } = &mut *d;
        match index.get(prefix) {
            Some(&i) => f(&mut list[i].1),
            None => {
                let mut s = PrefixStats::default();
                f(&mut s);
                index.insert(prefix.to_vec(), list.len());
                list.push((prefix.to_vec(), s));
            }
        }
    }

    pub fn detail_get(&self, key: &[u8], hit: bool) {
        self.detail(key, |s| {
            s.get += 1;
            s.hit += hit as u64;
        });
    }

    pub fn detail_set(&self, key: &[u8]) {
        self.detail(key, |s| s.set += 1);
    }

    pub fn detail_delete(&self, key: &[u8]) {
        self.detail(key, |s| s.del += 1);
    }

    pub fn detail_dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (p, s) in self.detail.lock().list.iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(p);
            out.extend_from_slice(
                format!(
                    " get {} hit {} set {} del {}\r\n",
                    s.get, s.hit, s.set, s.del
                )
                .as_bytes(),
            );
        }
        out
    }

    // ----- connections -----

    /// Registers a new connection; returns its id and its last-command clock.
    pub fn conn_open(
        &self,
        fd: i32,
        addr: String,
        listen_addr: Option<String>,
    ) -> (u64, Arc<AtomicU32>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU32::new(self.store.clock.now()));
        self.curr_conns.fetch_add(1, Ordering::Relaxed);
        self.total_conns.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().insert(
            id,
            ConnEntry {
                fd,
                addr,
                listen_addr,
                state: "conn_parse_cmd",
                last_cmd: last.clone(),
            },
        );
        (id, last)
    }

    /// Registers a listening socket for `stats conns`.
    pub fn listener_open(&self, fd: i32, addr: String) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let entry = ConnEntry {
            fd,
            addr,
            listen_addr: None,
            state: "conn_listening",
            last_cmd: Arc::new(AtomicU32::new(self.store.clock.now())),
        };
        self.conns.lock().insert(id, entry);
    }

    pub fn conn_close(&self, id: u64) {
        self.curr_conns.fetch_sub(1, Ordering::Relaxed);
        self.conns.lock().remove(&id);
    }

    pub fn count_listeners(&self, n: u64) {
        self.total_conns.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a connection that was turned away at accept.
    pub fn conn_rejected(&self) {
        self.rejected_conns.fetch_add(1, Ordering::Relaxed);
        self.total_conns.fetch_add(1, Ordering::Relaxed);
    }

    pub fn conn_counts(&self) -> ConnCounts {
        ConnCounts {
            current: self.curr_conns.load(Ordering::Relaxed),
            total: self.total_conns.load(Ordering::Relaxed),
            rejected: self.rejected_conns.load(Ordering::Relaxed),
        }
    }

    /// Every connection and listener; `current` is the asking connection.
    pub fn conns(&self, current: i32) -> Vec<ConnRow> {
        let now = self.store.clock.now();
        let mut rows: Vec<ConnRow> = self
            .conns
            .lock()
            .values()
            .map(|c| ConnRow {
                fd: c.fd,
                addr: c.addr.clone(),
                listen_addr: c.listen_addr.clone(),
                state: match c.state {
                    "conn_listening" => "conn_listening",
                    _ if c.fd == current => "conn_parse_cmd",
                    _ => "conn_read",
                },
                idle_secs: now.saturating_sub(c.last_cmd.load(Ordering::Relaxed)),
            })
            .collect();
        rows.sort_by_key(|r| r.fd);
        rows
    }
}
