//! Command-line configuration: memcached 1.6.18's flags, defaults, validation,
//! `-h` text and `stats settings` listing.
//!
//! clap tokenizes the command line the way getopt_long does (clustered short
//! flags, attached or separate values, values that start with `-`, unambiguous
//! long-name prefixes, stray operands ignored); the options are then applied in
//! command-line order with memcached's own C conversions (`atoi`, `atof`,
//! `strtol(.., 8)`, `safe_strtoul`), so odd values and the first-error-wins
//! order behave as in memcached. docs/flags.md lists every flag, its status in
//! memcrab and the measured memcached behaviour (exit codes, ephemeral ports,
//! the MEMCACHED_PORT_FILENAME format).

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Arg, ArgAction, ColorChoice, Command};

/// `-V` output.
pub const VERSION_TEXT: &str = concat!("memcrab ", env!("CARGO_PKG_VERSION"));
/// sysexits.h codes memcached exits with.
pub const EX_USAGE: i32 = 64;
pub const EX_NOUSER: i32 = 67;
pub const EX_OSERR: i32 = 71;
/// memcached 1.6 always carves slab chunks out of 1 MiB pages, whatever `-I` is.
pub const SLAB_PAGE_SIZE: usize = 1024 * 1024;

/// Which protocols a listener accepts (`-B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Ascii,
    Auto,
    Binary,
}

impl Protocol {
    /// The `binding_protocol` value of `stats settings`.
    pub fn stats_name(self) -> &'static str {
        match self {
            Protocol::Ascii => "ascii",
            Protocol::Auto => "auto-negotiate",
            Protocol::Binary => "binary",
        }
    }
}

/// Every setting memcrab runs with. Field names follow memcached's `settings` struct.
#[derive(Clone, Debug)]
pub struct Config {
    /// `-p`: TCP port (default 11211). 0 = TCP off, unless `tcp_ephemeral`.
    pub port: u16,
    /// `-p -1`: bind TCP to port 0 (kernel-chosen port); `port` is then 0.
    pub tcp_ephemeral: bool,
    /// `-U`: UDP port (default 0 = off, unless `udp_ephemeral`).
    pub udp_port: u16,
    /// `-U -1`: bind UDP to port 0 (kernel-chosen port); `udp_port` is then 0.
    pub udp_ephemeral: bool,
    /// `-l` arguments as given (each may hold a `,`/`;` list of `host`,
    /// `host:port`, `[v6]:port`, `*:port`). Empty means all interfaces.
    /// memcached drops an `-l` that is a substring of the earlier ones; so does this.
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
    /// `-I`: largest item in bytes (default 1 MiB). Slab pages stay SLAB_PAGE_SIZE.
    pub item_size_max: usize,
    /// `-o slab_chunk_max`: largest slab chunk in bytes (default SLAB_PAGE_SIZE / 2).
    pub slab_chunk_max: usize,
    /// `!-C`: CAS enabled.
    pub use_cas: bool,
    /// `-v` count (initial `verbosity`).
    pub verbose: u8,
    /// `-d`.
    pub daemonize: bool,
    /// `-P`: memcached writes it whenever given, removes it at exit only with `-d`.
    pub pid_file: Option<PathBuf>,
    /// `-u`.
    pub user: Option<String>,
    /// `-r`: raise the core file limit.
    pub enable_coredumps: bool,
    /// `-k`: mlockall (memcached only warns when that fails).
    pub lock_memory: bool,
    /// `-R`: max requests per event (default 20).
    pub reqs_per_event: usize,
    /// `-b`: listen backlog (default 1024). memcached takes any int: a negative
    /// one is kept bit-for-bit (`as i32` gives it back; listen(2) clamps it).
    pub backlog: u32,
    /// `-B`.
    pub protocol: Protocol,
    /// `-A`: enable `shutdown`.
    pub shutdown_command: bool,
    /// `!-F`: `flush_all` allowed.
    pub flush_enabled: bool,
    /// `!-X`: `stats cachedump` and `lru_crawler metadump` allowed.
    pub dump_enabled: bool,
    /// `!-W`: `watch` allowed.
    pub watch_enabled: bool,
    /// `-D`: key prefix delimiter for per-prefix stats (default ':').
    pub prefix_delimiter: char,
    /// `-D` given (or later `stats detail on`): per-prefix stats collected.
    pub detail_enabled: bool,
    /// `-Y`: ascii auth file.
    pub auth_file: Option<PathBuf>,
    /// `-o idle_timeout` seconds (0 = off). A negative value wraps (never times out).
    pub idle_timeout: u32,
    /// `-o hashpower` (0 = default).
    pub hashpower: u8,
    /// `!-o no_hashexpand`.
    pub hash_expand: bool,
    /// `-o hash_algorithm`: "murmur3" (default), "jenkins" or "xxh3".
    pub hash_algorithm: &'static str,
    /// `-o maxconns_fast` (default on).
    pub maxconns_fast: bool,
    /// `-o lru_crawler` / `no_lru_crawler`.
    pub lru_crawler: bool,
    pub lru_crawler_sleep: u32,
    pub lru_crawler_tocrawl: u32,
    /// `-o lru_maintainer` / `no_lru_maintainer`.
    pub lru_maintainer: bool,
    /// Segmented (hot/warm/cold) LRU; off with `no_lru_maintainer`.
    pub lru_segmented: bool,
    pub hot_lru_pct: u32,
    pub warm_lru_pct: u32,
    pub hot_max_factor: f64,
    pub warm_max_factor: f64,
    /// `-o temporary_ttl` given: short-TTL items get their own LRU.
    pub temp_lru: bool,
    pub temporary_ttl: u32,
    /// `-o tail_repair_time` seconds (0 = off).
    pub tail_repair_time: u32,
    pub slab_reassign: bool,
    pub slab_automove: u8,
    pub slab_automove_ratio: f64,
    pub slab_automove_window: u32,
    /// `-o slab_automove_freeratio`: free memory kept per class by automove.
    pub slab_automove_freeratio: f64,
    pub track_sizes: bool,
    /// `-o watcher_logbuf_size` / `worker_logbuf_size`, in bytes.
    pub watcher_logbuf_size: u32,
    pub worker_logbuf_size: u32,
    /// `-o read_buf_mem_limit`, in bytes (0 = unlimited).
    pub read_buf_mem_limit: u32,
    /// `-o drop_privileges` / `no_drop_privileges` (seccomp in memcached).
    pub drop_privileges: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            tcp_ephemeral: false,
            udp_port: 0,
            udp_ephemeral: false,
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
            slab_chunk_max: SLAB_PAGE_SIZE / 2,
            use_cas: true,
            verbose: 0,
            daemonize: false,
            pid_file: None,
            user: None,
            enable_coredumps: false,
            lock_memory: false,
            reqs_per_event: 20,
            backlog: 1024,
            protocol: Protocol::Auto,
            shutdown_command: false,
            flush_enabled: true,
            dump_enabled: true,
            watch_enabled: true,
            prefix_delimiter: ':',
            detail_enabled: false,
            auth_file: None,
            idle_timeout: 0,
            hashpower: 0,
            hash_expand: true,
            hash_algorithm: "murmur3",
            maxconns_fast: true,
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            lru_maintainer: true,
            lru_segmented: true,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            hot_max_factor: 0.2,
            warm_max_factor: 2.0,
            temp_lru: false,
            temporary_ttl: 61,
            tail_repair_time: 0,
            slab_reassign: true,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 30,
            slab_automove_freeratio: 0.01,
            track_sizes: false,
            watcher_logbuf_size: 256 * 1024,
            worker_logbuf_size: 64 * 1024,
            read_buf_mem_limit: 0,
            drop_privileges: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once at startup
pub enum Action {
    Run(Config),
    /// `-h` or `-i`: print the text on stdout and exit 0.
    Help(String),
    /// `-V`: print the text on stdout and exit 0.
    Version(String),
}

/// A rejected command line: print `message` on stderr and exit with `exit_code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub exit_code: i32,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn fail(exit_code: i32, message: impl Into<String>) -> ConfigError {
    ConfigError {
        message: message.into(),
        exit_code,
    }
}

/// memcached's runtime values that `stats settings` reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct SettingsRuntime {
    /// Current `verbosity` (changed by the `verbosity` command).
    pub verbosity: u32,
    /// `oldest_live` (set by `flush_all`).
    pub oldest: u32,
    /// The configured ports (`Config::port` / `udp_port`). memcached prints
    /// its configuration, not the bound port: -1 for an ephemeral request.
    pub tcpport: u16,
    pub udpport: u16,
}

// getopt_long's table: (clap id = long name, short, takes a value).
const OPTIONS: &[(&str, char, bool)] = &[
    ("unix-mask", 'a', true),
    ("enable-shutdown", 'A', false),
    ("enable-ssl", 'Z', false),
    ("port", 'p', true),
    ("unix-socket", 's', true),
    ("udp-port", 'U', true),
    ("memory-limit", 'm', true),
    ("disable-evictions", 'M', false),
    ("conn-limit", 'c', true),
    ("lock-memory", 'k', false),
    ("help", 'h', false),
    ("license", 'i', false),
    ("version", 'V', false),
    ("enable-coredumps", 'r', false),
    ("verbose", 'v', false),
    ("daemon", 'd', false),
    ("listen", 'l', true),
    ("user", 'u', true),
    ("pidfile", 'P', true),
    ("slab-growth-factor", 'f', true),
    ("slab-min-size", 'n', true),
    ("threads", 't', true),
    ("enable-largepages", 'L', false),
    ("max-reqs-per-event", 'R', true),
    ("disable-cas", 'C', false),
    ("listen-backlog", 'b', true),
    ("protocol", 'B', true),
    ("max-item-size", 'I', true),
    ("enable-sasl", 'S', false),
    ("disable-flush-all", 'F', false),
    ("disable-dumping", 'X', false),
    ("disable-watch", 'W', false),
    ("auth-file", 'Y', true),
    ("memory-file", 'e', true),
    ("extended", 'o', true),
    ("napi-ids", 'N', true),
    ("D", 'D', true), // -D has no long name
];

fn command() -> Command {
    let mut cmd = Command::new("memcrab")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .infer_long_args(true)
        .color(ColorChoice::Never)
        // getopt permutes and memcached ignores operands.
        .arg(
            Arg::new("operands")
                .num_args(0..)
                .action(ArgAction::Append)
                .hide(true),
        );
    for &(id, short, takes_value) in OPTIONS {
        // Every occurrence is recorded (Append) so options apply in command-line order.
        let mut arg = Arg::new(id).short(short).action(ArgAction::Append);
        if id.len() > 1 {
            arg = arg.long(id);
        }
        arg = if takes_value {
            // getopt takes the next word as the value even when it starts with '-'.
            arg.num_args(1).allow_hyphen_values(true)
        } else {
            arg.num_args(0).default_missing_value("")
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses memcached's command line (`args` includes argv[0]).
pub fn parse_args<I, T>(args: I) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let prog = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "memcrab".to_owned());
    // `--verbose` has an optional argument in memcached that is ignored.
    for a in args.iter_mut().skip(1) {
        if let Some((name, _)) = a
            .to_str()
            .and_then(|s| s.strip_prefix("--")?.split_once('='))
            && name.len() >= 4
            && "verbose".starts_with(name)
        {
            *a = "--verbose".into();
        }
    }
    let matches = command()
        .try_get_matches_from(args)
        .map_err(|e| clap_error(&prog, &e))?;
    let mut events: Vec<(usize, char, String)> = Vec::new();
    for &(id, short, _) in OPTIONS {
        if let (Some(idx), Some(vals)) = (matches.indices_of(id), matches.get_many::<String>(id)) {
            events.extend(idx.zip(vals).map(|(i, v)| (i, short, v.clone())));
        }
    }
    events.sort_by_key(|e| e.0);
    let mut p = Parser::default();
    for (_, opt, val) in &events {
        if let Some(action) = p.apply(*opt, val)? {
            return Ok(action);
        }
    }
    p.finish().map(Action::Run)
}

/// getopt-style wording for clap's errors; memcached exits 1 for all of them.
fn clap_error(prog: &str, e: &clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let first = match e.kind() {
        ErrorKind::UnknownArgument if arg.starts_with("--") => {
            format!("{prog}: unrecognized option '{arg}'")
        }
        ErrorKind::UnknownArgument => {
            let c = arg.trim_start_matches('-').chars().next().unwrap_or('?');
            format!("{prog}: invalid option -- '{c}'")
        }
        _ => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            format!("{prog}: {}", line.trim_start_matches("error: "))
        }
    };
    fail(1, format!("{first}\nIllegal argument \"?\""))
}

/// Parse state beyond Config: memcached's locals in main().
struct Parser {
    cfg: Config,
    tcp_port: i32,
    udp_port: i32,
    tcp_specified: bool,
    udp_specified: bool,
    protocol_specified: bool,
    slab_chunk_max: i32,
    slab_chunk_max_changed: bool,
    item_size_max: i32,
    napi_ids: i32,
}

impl Default for Parser {
    fn default() -> Self {
        let cfg = Config::default();
        Parser {
            tcp_port: i32::from(cfg.port),
            udp_port: i32::from(cfg.udp_port),
            tcp_specified: false,
            udp_specified: false,
            protocol_specified: false,
            slab_chunk_max: SLAB_PAGE_SIZE as i32 / 2,
            slab_chunk_max_changed: false,
            item_size_max: cfg.item_size_max as i32,
            napi_ids: 0,
            cfg,
        }
    }
}

fn warn(msg: &str) {
    eprintln!("memcrab: WARNING: {msg}");
}

impl Parser {
    /// One option, as memcached's `switch (c)`; `Some` ends parsing (-h, -V, -i).
    fn apply(&mut self, opt: char, v: &str) -> Result<Option<Action>, ConfigError> {
        let c = &mut self.cfg;
        match opt {
            'A' => c.shutdown_command = true,
            'Z' => return Err(fail(EX_USAGE, "TLS (-Z) is not supported by memcrab")),
            'a' => c.unix_mask = strtol(v, 8) as i32 as u32,
            'U' => {
                self.udp_port = atoi(v);
                self.udp_specified = true;
            }
            'p' => {
                self.tcp_port = atoi(v);
                self.tcp_specified = true;
            }
            's' => c.unix_socket = Some(PathBuf::from(v)),
            // memcached: ((size_t)atoi(optarg)) * 1024 * 1024, no unit suffixes.
            'm' => c.max_bytes = (atoi(v) as i64 as u64).wrapping_mul(1 << 20) as usize,
            'M' => c.no_evict = true,
            'c' => c.max_conns = positive(v, "Maximum connections must be greater than 0")?,
            'h' => return Ok(Some(Action::Help(help_text()))),
            'i' => return Ok(Some(Action::Help(license_text()))),
            'V' => return Ok(Some(Action::Version(format!("{VERSION_TEXT}\n")))),
            'k' => c.lock_memory = true,
            'v' => c.verbose = c.verbose.saturating_add(1),
            'l' => {
                // memcached skips an -l found (strstr) in the list so far.
                if c.listen.is_empty() || !c.listen.join(",").contains(v) {
                    c.listen.push(v.to_owned());
                }
            }
            'd' => c.daemonize = true,
            'r' => c.enable_coredumps = true,
            // memcached accepts negative -R and -n, then misbehaves (hangs): refuse them.
            'R' => {
                let msg = "Number of requests per event must be greater than 0";
                c.reqs_per_event = positive(v, msg)?;
            }
            'u' => c.user = Some(v.to_owned()),
            'P' => c.pid_file = Some(PathBuf::from(v)),
            'e' => {
                return Err(fail(
                    EX_USAGE,
                    "memory_file (-e) is not supported by memcrab",
                ));
            }
            'f' => {
                let f = atof(v);
                if f.is_nan() || f <= 1.0 {
                    return Err(fail(1, "Factor must be greater than 1"));
                }
                c.growth_factor = f;
            }
            'n' => c.chunk_size = positive(v, "Chunk size must be greater than 0")?,
            't' => {
                c.threads = positive(v, "Number of threads must be greater than 0")?;
                if c.threads > 64 {
                    eprintln!(
                        "WARNING: Setting a high number of workerthreads is not recommended.\n \
                         Set this value to the number of cores in your machine or less."
                    );
                }
            }
            'D' => {
                c.prefix_delimiter = v
                    .chars()
                    .next()
                    .ok_or_else(|| fail(1, "No delimiter specified"))?;
                c.detail_enabled = true;
            }
            'L' => warn("-L (large memory pages) is not supported; ignored"),
            'C' => c.use_cas = false,
            'b' => c.backlog = atoi(v) as u32,
            'B' => {
                self.protocol_specified = true;
                c.protocol = match v {
                    "auto" => Protocol::Auto,
                    "ascii" => Protocol::Ascii,
                    "binary" => Protocol::Binary,
                    _ => {
                        let msg = format!(
                            "Invalid value for binding protocol: {v}\n -- should be one of auto, binary, or ascii"
                        );
                        return Err(fail(EX_USAGE, msg));
                    }
                };
            }
            'I' => self.item_size_max = item_size(v),
            'S' => return Err(fail(EX_USAGE, "SASL (-S) is not supported by memcrab")),
            'F' => c.flush_enabled = false,
            'X' => c.dump_enabled = false,
            'W' => c.watch_enabled = false,
            'Y' => c.auth_file = Some(PathBuf::from(v)),
            'N' => {
                self.napi_ids = atoi(v);
                if self.napi_ids <= 0 {
                    return Err(fail(1, "Maximum number of NAPI IDs must be greater than 0"));
                }
            }
            'o' => {
                // getsubopt(3): stops at the end, so a trailing ',' is fine but ",," is not.
                let mut rest = v;
                while !rest.is_empty() {
                    let (tok, next) = rest.split_once(',').unwrap_or((rest, ""));
                    self.subopt(tok)?;
                    rest = next;
                }
            }
            _ => return Err(fail(1, format!("Illegal argument \"{opt}\""))),
        }
        Ok(None)
    }

    /// One `-o` key[=value], as memcached's sub-option switch.
    fn subopt(&mut self, tok: &str) -> Result<(), ConfigError> {
        let (key, val) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        let need = |what: &str| val.ok_or_else(|| fail(1, format!("Missing {what}")));
        let c = &mut self.cfg;
        match key {
            "maxconns_fast" => c.maxconns_fast = true,
            "no_maxconns_fast" => c.maxconns_fast = false,
            "hashpower" => {
                let n = atoi(need("numeric argument for hashpower")?);
                if n < 12 {
                    return Err(fail(
                        1,
                        format!("Initial hashtable multiplier of {n} is too low"),
                    ));
                }
                if n > 32 {
                    return Err(fail(
                        1,
                        format!(
                            "Initial hashtable multiplier of {n} is too high\n\
                             Choose a value based on \"STAT hash_power_level\" from a running instance"
                        ),
                    ));
                }
                c.hashpower = n as u8;
            }
            "no_hashexpand" => c.hash_expand = false,
            "slab_reassign" => c.slab_reassign = true,
            "no_slab_reassign" => c.slab_reassign = false,
            "slab_automove" => {
                let n = val.map_or(1, atoi);
                if !(0..=2).contains(&n) {
                    return Err(fail(1, "slab_automove must be between 0 and 2"));
                }
                c.slab_automove = n as u8;
            }
            "no_slab_automove" => c.slab_automove = 0,
            "slab_automove_ratio" => {
                let r = atof(need("slab_automove_ratio argument")?);
                if !(r > 0.0 && r <= 1.0) {
                    return Err(fail(1, "slab_automove_ratio must be > 0 and < 1"));
                }
                c.slab_automove_ratio = r;
            }
            "slab_automove_window" => {
                let n = atoi(need("slab_automove_window argument")?);
                if n < 3 {
                    return Err(fail(1, "slab_automove_window must be > 2"));
                }
                c.slab_automove_window = n as u32;
            }
            "tail_repair_time" => {
                let n = atoi(need("numeric argument for tail_repair_time")?);
                if n < 10 {
                    return Err(fail(
                        1,
                        "Cannot set tail_repair_time to less than 10 seconds",
                    ));
                }
                c.tail_repair_time = n as u32;
            }
            "hash_algorithm" => {
                c.hash_algorithm = match need("hash_algorithm argument")? {
                    "jenkins" => "jenkins",
                    "murmur3" => "murmur3",
                    "xxh3" => "xxh3",
                    _ => {
                        let msg = "Unknown hash_algorithm option (jenkins, murmur3, xxh3)";
                        return Err(fail(1, msg));
                    }
                };
            }
            "lru_crawler" => c.lru_crawler = true,
            "no_lru_crawler" => c.lru_crawler = false,
            "lru_crawler_sleep" => {
                let n = atoi(need("lru_crawler_sleep value")?);
                if !(0..=1_000_000).contains(&n) {
                    return Err(fail(1, "LRU crawler sleep must be between 0 and 1 second"));
                }
                c.lru_crawler_sleep = n as u32;
            }
            "lru_crawler_tocrawl" => {
                c.lru_crawler_tocrawl = safe_strtoul(need("lru_crawler_tocrawl value")?)
                    .ok_or_else(|| fail(1, "lru_crawler_tocrawl takes a numeric 32bit value"))?;
            }
            "lru_maintainer" => {
                c.lru_maintainer = true;
                c.lru_segmented = true;
            }
            "no_lru_maintainer" => {
                c.lru_maintainer = false;
                c.lru_segmented = false;
            }
            "hot_lru_pct" | "warm_lru_pct" => {
                let n = atoi(need(&format!("{key} argument"))?);
                if !(1..80).contains(&n) {
                    return Err(fail(1, format!("{key} must be > 1 and < 80")));
                }
                *(if key == "hot_lru_pct" {
                    &mut c.hot_lru_pct
                } else {
                    &mut c.warm_lru_pct
                }) = n as u32;
            }
            "hot_max_factor" | "warm_max_factor" => {
                let f = atof(need(&format!("{key} argument"))?);
                if f.is_nan() || f <= 0.0 {
                    return Err(fail(1, format!("{key} must be > 0")));
                }
                *(if key == "hot_max_factor" {
                    &mut c.hot_max_factor
                } else {
                    &mut c.warm_max_factor
                }) = f;
            }
            "temporary_ttl" => {
                c.temporary_ttl = atoi(need("temporary_ttl argument")?) as u32;
                c.temp_lru = true;
            }
            "idle_timeout" => {
                c.idle_timeout = atoi(need("numeric argument for idle_timeout")?) as u32
            }
            // memcached's worker_logbuf_size falls through into slab_sizes (a bug); not copied.
            "watcher_logbuf_size" | "worker_logbuf_size" => {
                let kb = safe_strtoul(need(&format!("{key} argument"))?)
                    .ok_or_else(|| fail(1, format!("could not parse argument to {key}")))?;
                *(if key == "watcher_logbuf_size" {
                    &mut c.watcher_logbuf_size
                } else {
                    &mut c.worker_logbuf_size
                }) = kb.wrapping_mul(1024);
            }
            "read_buf_mem_limit" => {
                let mb = safe_strtoul(need("read_buf_mem_limit argument")?)
                    .ok_or_else(|| fail(1, "could not parse argument to read_buf_mem_limit"))?;
                c.read_buf_mem_limit = mb.wrapping_mul(1024 * 1024);
            }
            "slab_chunk_max" => {
                // Bytes, whatever memcached's -h says (kilobytes).
                self.slab_chunk_max = safe_strtol(need("slab_chunk_max argument")?)
                    .ok_or_else(|| fail(1, "could not parse argument to slab_chunk_max"))?;
                self.slab_chunk_max_changed = true;
            }
            "no_chunked_items" => self.slab_chunk_max = SLAB_PAGE_SIZE as i32,
            "track_sizes" => c.track_sizes = true,
            "modern" | "inline_ascii_resp" | "no_inline_ascii_resp" => {}
            "no_modern" => {
                if !self.slab_chunk_max_changed {
                    self.slab_chunk_max = SLAB_PAGE_SIZE as i32;
                }
                c.slab_reassign = false;
                c.slab_automove = 0;
                c.maxconns_fast = false;
                c.lru_segmented = false;
                c.hash_algorithm = "jenkins";
                c.lru_crawler = false;
                c.lru_maintainer = false;
            }
            "drop_privileges" => c.drop_privileges = true,
            "no_drop_privileges" => c.drop_privileges = false,
            "resp_obj_mem_limit" => {
                eprintln!("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,");
            }
            "slab_automove_freeratio" => {
                c.slab_automove_freeratio = atof(need("slab_automove_freeratio argument")?);
            }
            "sock_cookie_id" => {
                warn(&format!("-o {key} is not supported; ignored"));
            }
            "slab_sizes" => return Err(fail(1, "-o slab_sizes is not supported by memcrab")),
            "ext_page_size" | "ext_wbuf_size" | "ext_threads" | "ext_io_depth" | "ext_path"
            | "ext_item_size" | "ext_item_age" | "ext_low_ttl" | "ext_recache_rate"
            | "ext_compact_under" | "ext_drop_under" | "ext_max_sleep" | "ext_max_frag"
            | "ext_drop_unread" => {
                let msg = format!("extstore is not supported by memcrab (-o {tok})");
                return Err(fail(1, msg));
            }
            "ssl_chain_cert" | "ssl_key" | "ssl_verify_mode" | "ssl_keyformat" | "ssl_ciphers"
            | "ssl_ca_cert" | "ssl_wbuf_size" | "ssl_session_cache" | "ssl_kernel_tls"
            | "ssl_min_version" => {
                let msg = format!("TLS is not supported by memcrab (-o {tok})");
                return Err(fail(1, msg));
            }
            _ => return Err(fail(1, format!("Illegal suboption \"{tok}\""))),
        }
        Ok(())
    }

    /// memcached's checks after getopt, in its order.
    fn finish(mut self) -> Result<Config, ConfigError> {
        let c = &mut self.cfg;
        if self.napi_ids > c.threads as i32 {
            let msg = format!(
                "Number of napi_ids({}) cannot be greater than number of threads({})",
                self.napi_ids, c.threads
            );
            return Err(fail(EX_USAGE, msg));
        }
        if self.napi_ids > 0 {
            warn("-N (NAPI ids) is not supported; ignored");
        }
        let item = self.item_size_max;
        if item < 1024 {
            let msg = "Item max size cannot be less than 1024 bytes.";
            return Err(fail(EX_USAGE, msg));
        }
        if item as usize > c.max_bytes / 2 {
            let msg = "Cannot set item size limit higher than 1/2 of memory max.";
            return Err(fail(EX_USAGE, msg));
        }
        if item > 1024 * 1024 * 1024 {
            let msg = "Cannot set item size limit higher than a gigabyte.";
            return Err(fail(EX_USAGE, msg));
        }
        if item > 1024 * 1024 && !self.slab_chunk_max_changed {
            self.slab_chunk_max = SLAB_PAGE_SIZE as i32 / 2;
        }
        let chunk = self.slab_chunk_max;
        // memcached divides by it unchecked (SIGFPE on 0).
        if chunk <= 0 {
            let msg = format!("slab_chunk_max (bytes: {chunk}) must be greater than 0");
            return Err(fail(EX_USAGE, msg));
        }
        if chunk > item {
            let msg = format!(
                "slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
            );
            return Err(fail(EX_USAGE, msg));
        }
        if item % chunk != 0 {
            let msg = format!(
                "-I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
            );
            return Err(fail(EX_USAGE, msg));
        }
        if SLAB_PAGE_SIZE as i32 % chunk != 0 {
            let msg = format!(
                "slab_chunk_max (bytes: {chunk}) must divide evenly into {SLAB_PAGE_SIZE} (slab_page_size)"
            );
            return Err(fail(EX_USAGE, msg));
        }
        c.item_size_max = item as usize;
        c.slab_chunk_max = chunk as usize;
        if c.hot_lru_pct + c.warm_lru_pct > 80 {
            let msg = "hot_lru_pct + warm_lru_pct cannot be more than 80% combined";
            return Err(fail(EX_USAGE, msg));
        }
        if c.temp_lru && !c.lru_maintainer {
            let msg = "temporary_ttl requires lru_maintainer to be enabled";
            return Err(fail(EX_USAGE, msg));
        }
        if c.auth_file.is_some() {
            if !self.protocol_specified {
                c.protocol = Protocol::Ascii;
            } else if c.protocol != Protocol::Ascii {
                let msg = "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.";
                return Err(fail(EX_USAGE, msg));
            }
        }
        // -U alone moves TCP to the same port.
        if self.udp_specified && self.udp_port != 0 && !self.tcp_specified {
            self.tcp_port = self.udp_port;
        }
        // memcached binds UDP > 65535 modulo 65536; memcrab refuses it like TCP.
        for port in [self.tcp_port, self.udp_port] {
            if port > 65535 {
                let msg = format!("ERROR: Invalid port number {port}.");
                return Err(fail(EX_USAGE, msg));
            }
        }
        if c.auth_file.is_some() && self.udp_port != 0 {
            let msg = "Cannot use UDP with ascii authentication enabled (-U 0 to disable)";
            return Err(fail(EX_USAGE, msg));
        }
        // -1 asks for a kernel-chosen port; other negatives fail in getaddrinfo (unless -s).
        for (port, proto) in [(self.tcp_port, "TCP"), (self.udp_port, "UDP")] {
            if port < -1 && c.unix_socket.is_none() {
                let msg = format!(
                    "getaddrinfo(): Servname not supported for ai_socktype\n\
                     failed to listen on {proto} port {port}"
                );
                return Err(fail(EX_OSERR, msg));
            }
        }
        c.tcp_ephemeral = self.tcp_port == -1;
        c.port = self.tcp_port.max(0) as u16;
        c.udp_ephemeral = self.udp_port == -1;
        c.udp_port = self.udp_port.max(0) as u16;
        Ok(self.cfg)
    }
}

/// `-c`, `-t`, `-R`, `-n`: atoi, refused unless > 0.
fn positive(v: &str, msg: &str) -> Result<usize, ConfigError> {
    let n = atoi(v);
    if n <= 0 {
        return Err(fail(1, msg));
    }
    Ok(n as usize)
}

/// `-I`: atoi of the text before a k/K/m/M suffix, times the unit, in C int arithmetic
/// (so `2g` is 2 bytes and `2048m` wraps negative: both "less than 1024 bytes").
fn item_size(v: &str) -> i32 {
    let unit = match v.as_bytes().last() {
        Some(b'k' | b'K') => 1024,
        Some(b'm' | b'M') => 1024 * 1024,
        _ => return atoi(v),
    };
    atoi(&v[..v.len() - 1]).wrapping_mul(unit)
}

fn skip_space(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
}

/// C `strtol` without end pointer: leading space, sign, digits; saturates like glibc.
fn strtol(s: &str, radix: u32) -> i64 {
    let s = skip_space(s);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for d in digits.chars().map_while(|ch| ch.to_digit(radix)) {
        n = n
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
    }
    if neg { n.saturating_neg() } else { n }
}

/// C `atoi`: `(int)strtol(s, NULL, 10)`.
fn atoi(s: &str) -> i32 {
    strtol(s, 10) as i32
}

/// C `atof`: the longest decimal (or inf/nan) prefix, 0.0 if none.
fn atof(s: &str) -> f64 {
    let s = skip_space(s);
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let lower = s[end..].to_ascii_lowercase();
    for word in ["infinity", "inf", "nan"] {
        if lower.starts_with(word) {
            return s[..end + word.len()].parse().unwrap_or(0.0);
        }
    }
    let int_end = digits(end);
    let mut mantissa = int_end > end;
    end = int_end;
    if b.get(end) == Some(&b'.') {
        let frac_end = digits(end + 1);
        mantissa |= frac_end > end + 1;
        end = frac_end;
    }
    if !mantissa {
        return 0.0;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        let exp_end = digits(end + 1 + sign);
        if exp_end > end + 1 + sign {
            end = exp_end;
        }
    }
    s[..end].parse().unwrap_or(0.0)
}

/// memcached's `safe_strtoul` (base 10, whole string, no negatives, truncated to 32 bits).
fn safe_strtoul(s: &str) -> Option<u32> {
    let t = skip_space(s);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &digits[len..];
    if len == 0 || !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let n: u64 = digits[..len].parse().ok()?; // overflow is ERANGE
    // strtoul negates "-N"; memcached only catches that when the result looks negative.
    let n = if t.starts_with('-') {
        n.wrapping_neg()
    } else {
        n
    };
    if (n as i64) < 0 && s.contains('-') {
        return None;
    }
    Some(n as u32)
}

/// memcached's `safe_strtol` (base 10, whole string, truncated to 32 bits).
fn safe_strtol(s: &str) -> Option<i32> {
    let t = skip_space(s);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &digits[len..];
    if len == 0 || !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let n: i64 = t[..t.len() - rest.len()].parse().ok()?; // overflow is ERANGE
    Some(n as i32)
}

impl Config {
    /// memcached's `settings.inter`: the `-l` arguments joined with ','.
    fn inter(&self) -> Option<String> {
        (!self.listen.is_empty()).then(|| self.listen.join(","))
    }

    /// The TCP port to bind (0 = let the kernel choose), or None when TCP is off
    /// (`-p 0`, or `-s`).
    pub fn tcp_bind_port(&self) -> Option<u16> {
        let on = self.unix_socket.is_none() && (self.port != 0 || self.tcp_ephemeral);
        on.then_some(self.port)
    }

    /// The UDP port to bind (0 = let the kernel choose), or None when UDP is off.
    pub fn udp_bind_port(&self) -> Option<u16> {
        let on = self.unix_socket.is_none() && (self.udp_port != 0 || self.udp_ephemeral);
        on.then_some(self.udp_port)
    }

    /// TCP addresses to listen on, in memcached's bind order: each `-l` entry
    /// resolved (its `:port` overrides `-p`), or 0.0.0.0 and :: without `-l`.
    /// Empty when TCP is off. On error memcached exits EX_OSERR (71).
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.resolve(self.tcp_bind_port())
    }

    /// UDP addresses: the same `-l` entries (a `:port` overrides `-U` too).
    pub fn udp_listen_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.resolve(self.udp_bind_port())
    }

    fn resolve(&self, port: Option<u16>) -> Result<Vec<SocketAddr>, String> {
        let Some(port) = port else {
            return Ok(Vec::new());
        };
        let Some(inter) = self.inter() else {
            return Ok(any_addrs(port));
        };
        let mut out = Vec::new();
        for entry in inter.split([',', ';']).filter(|e| !e.is_empty()) {
            let found = resolve_entry(entry, port)
                .map_err(|e| format!("{e}\nfailed to listen on one of interface(s) {inter}"))?;
            out.extend(found);
        }
        Ok(out)
    }

    /// `stats settings`, line for line as memcached 1.6.18 (Debian build: with
    /// extstore and TLS, so their defaults are listed).
    pub fn settings_stats(&self, rt: &SettingsRuntime) -> Vec<(&'static str, String)> {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let port = |ephemeral: bool, p: u16| if ephemeral { -1 } else { i32::from(p) }.to_string();
        let path_or = |p: &Option<PathBuf>, none: &str| {
            p.as_ref()
                .map_or_else(|| none.to_owned(), |p| p.display().to_string())
        };
        let inter = self.inter();
        let per_udp = match &inter {
            Some(i) if i.contains(',') => 1,
            _ => self.threads,
        };
        let evictions = if self.no_evict { "off" } else { "on" }.to_owned();
        vec![
            ("maxbytes", self.max_bytes.to_string()),
            ("maxconns", self.max_conns.to_string()),
            ("tcpport", port(self.tcp_ephemeral, rt.tcpport)),
            ("udpport", port(self.udp_ephemeral, rt.udpport)),
            ("inter", inter.unwrap_or_else(|| "NULL".to_owned())),
            ("verbosity", rt.verbosity.to_string()),
            ("oldest", rt.oldest.to_string()),
            ("evictions", evictions),
            ("domain_socket", path_or(&self.unix_socket, "NULL")),
            ("umask", format!("{:o}", self.unix_mask)),
            ("shutdown_command", yes_no(self.shutdown_command)),
            ("growth_factor", format!("{:.2}", self.growth_factor)),
            ("chunk_size", self.chunk_size.to_string()),
            ("num_threads", self.threads.to_string()),
            ("num_threads_per_udp", per_udp.to_string()),
            ("stat_key_prefix", self.prefix_delimiter.to_string()),
            ("detail_enabled", yes_no(self.detail_enabled)),
            ("reqs_per_event", self.reqs_per_event.to_string()),
            ("cas_enabled", yes_no(self.use_cas)),
            ("tcp_backlog", (self.backlog as i32).to_string()),
            ("binding_protocol", self.protocol.stats_name().to_owned()),
            ("auth_enabled_sasl", "no".to_owned()),
            ("auth_enabled_ascii", path_or(&self.auth_file, "no")),
            ("item_size_max", self.item_size_max.to_string()),
            ("maxconns_fast", yes_no(self.maxconns_fast)),
            ("hashpower_init", self.hashpower.to_string()),
            ("slab_reassign", yes_no(self.slab_reassign)),
            ("slab_automove", self.slab_automove.to_string()),
            (
                "slab_automove_ratio",
                format!("{:.2}", self.slab_automove_ratio),
            ),
            (
                "slab_automove_window",
                self.slab_automove_window.to_string(),
            ),
            ("slab_chunk_max", self.slab_chunk_max.to_string()),
            ("lru_crawler", yes_no(self.lru_crawler)),
            ("lru_crawler_sleep", self.lru_crawler_sleep.to_string()),
            ("lru_crawler_tocrawl", self.lru_crawler_tocrawl.to_string()),
            ("tail_repair_time", self.tail_repair_time.to_string()),
            ("flush_enabled", yes_no(self.flush_enabled)),
            ("dump_enabled", yes_no(self.dump_enabled)),
            ("hash_algorithm", self.hash_algorithm.to_owned()),
            ("lru_maintainer_thread", yes_no(self.lru_maintainer)),
            ("lru_segmented", yes_no(self.lru_segmented)),
            ("hot_lru_pct", self.hot_lru_pct.to_string()),
            ("warm_lru_pct", self.warm_lru_pct.to_string()),
            ("hot_max_factor", format!("{:.2}", self.hot_max_factor)),
            ("warm_max_factor", format!("{:.2}", self.warm_max_factor)),
            ("temp_lru", yes_no(self.temp_lru)),
            ("temporary_ttl", self.temporary_ttl.to_string()),
            ("idle_timeout", (self.idle_timeout as i32).to_string()),
            ("watcher_logbuf_size", self.watcher_logbuf_size.to_string()),
            ("worker_logbuf_size", self.worker_logbuf_size.to_string()),
            ("read_buf_mem_limit", self.read_buf_mem_limit.to_string()),
            ("track_sizes", yes_no(self.track_sizes)),
            ("inline_ascii_response", "no".to_owned()),
            // Not supported: memcached's defaults.
            ("ext_item_size", "512".to_owned()),
            ("ext_item_age", "4294967295".to_owned()),
            ("ext_low_ttl", "0".to_owned()),
            ("ext_recache_rate", "2000".to_owned()),
            ("ext_wbuf_size", "4194304".to_owned()),
            ("ext_compact_under", "0".to_owned()),
            ("ext_drop_under", "0".to_owned()),
            ("ext_max_sleep", "1000000".to_owned()),
            ("ext_max_frag", "0.80".to_owned()),
            (
                "slab_automove_freeratio",
                format!("{:.3}", self.slab_automove_freeratio),
            ),
            ("ext_drop_unread", "no".to_owned()),
            ("ssl_enabled", "no".to_owned()),
            ("ssl_chain_cert", "(null)".to_owned()),
            ("ssl_key", "(null)".to_owned()),
            ("ssl_verify_mode", "0".to_owned()),
            ("ssl_keyformat", "1".to_owned()),
            ("ssl_ciphers", "NULL".to_owned()),
            ("ssl_ca_cert", "NULL".to_owned()),
            ("ssl_wbuf_size", "16384".to_owned()),
            ("ssl_session_cache", "no".to_owned()),
            ("ssl_kernel_tls", "no".to_owned()),
            ("ssl_min_version", "tlsv1.2".to_owned()),
            ("num_napi_ids", "(null)".to_owned()),
            ("memory_file", "(null)".to_owned()),
        ]
    }

    /// memcached's refusal to run as root without `-u` (checked before binding).
    /// Switching identity is the caller's job.
    pub fn check_root_user(&self) -> Result<(), ConfigError> {
        let root = nix::unistd::getuid().is_root() || nix::unistd::geteuid().is_root();
        if root && self.user.as_deref().is_none_or(str::is_empty) {
            return Err(fail(EX_USAGE, "can't run as root without the -u switch"));
        }
        Ok(())
    }
}

/// One line of the MEMCACHED_PORT_FILENAME file for a bound listener, e.g.
/// `TCP INET: 11211\n` or `UDP INET6: 40000\n` (see docs/flags.md).
pub fn port_file_line(udp: bool, local: SocketAddr) -> String {
    let proto = if udp { "UDP" } else { "TCP" };
    let family = if local.is_ipv4() { "INET" } else { "INET6" };
    format!("{proto} {family}: {}\n", local.port())
}

/// getaddrinfo(NULL, port, AI_PASSIVE) on Linux: IPv4 first, then IPv6 (v6-only).
fn any_addrs(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ]
}

/// One `-l` entry, as memcached's server_sockets(): optional `notls:`,
/// `proto[..]:` and `tag[..]:` prefixes, `[v6]`, `:port`, `*` for any.
fn resolve_entry(entry: &str, default_port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut p = entry;
    if p.starts_with("notls") {
        return Err("'notls' option is valid only when SSL is enabled".to_owned());
    }
    // memcached strips "proto"/"tag" even without '[' (breaking such hostnames); we don't.
    if let Some(spec) = p.strip_prefix("proto[") {
        let (name, rest) = spec
            .split_once(']')
            .ok_or_else(|| format!("Invalid protocol spec: \"[{spec}\""))?;
        // memcached compares a prefix of the known names.
        // A protocol per listener is not implemented (-B sets it for all).
        if "binary".starts_with(name) && !name.is_empty() {
            return Err(format!("per-listener protocol not supported: \"{entry}\""));
        }
        if "proxy".starts_with(name) && !name.is_empty() {
            return Err(format!("Server not built with proxy: \"{entry}\""));
        }
        p = rest.get(1..).unwrap_or(""); // the assumed ':'
    }
    if let Some(spec) = p.strip_prefix("tag[") {
        let (tag, rest) = spec
            .split_once(']')
            .ok_or_else(|| format!("Invalid tag in socket config: \"[{spec}\""))?;
        if tag.is_empty() || tag.len() > 8 {
            return Err(format!(
                "Listener tags must be between 1 and 8 characters: \"{tag}\""
            ));
        }
        p = rest.get(1..).unwrap_or("");
    }
    let mut host = p;
    let mut bracketed = false;
    if let Some(inner) = p.strip_prefix('[') {
        let (h, rest) = inner
            .split_once(']')
            .ok_or_else(|| format!("Invalid IPV6 address: \"{p}\""))?;
        (host, p, bracketed) = (h, rest, true);
    }
    let mut port = i32::from(default_port);
    if let Some(colon) = p.find(':') {
        // A second ':' means an unbracketed IPv6 address without port.
        if bracketed || !p[colon + 1..].contains(':') {
            let s = &p[colon + 1..];
            port = safe_strtol(s).ok_or_else(|| format!("Invalid port number: \"{s}\""))?;
            if !bracketed {
                host = &p[..colon];
            }
        }
    }
    let port = match port {
        -1 => 0,
        p if p < -1 => return Err("getaddrinfo(): Servname not supported for ai_socktype".into()),
        // memcached binds port % 65536 here; refuse instead.
        p => u16::try_from(p).map_err(|_| format!("Invalid port number: \"{p}\""))?,
    };
    if host == "*" {
        return Ok(any_addrs(port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs = (host, port).to_socket_addrs().map_err(|e| {
        let e = e.to_string();
        let e = e
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&e);
        format!("getaddrinfo(): {e}")
    })?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// `-i` text.
pub fn license_text() -> String {
    format!(
        "{VERSION_TEXT}\n\
         memcrab is distributed under the BSD 3-Clause License.\n\
         It is an independent implementation of the memcached protocol and\n\
         command line; it contains no memcached or libevent code.\n"
    )
}

/// `-h` text, in memcached's layout, listing only what memcrab implements.
pub fn help_text() -> String {
    let mut s = format!("{VERSION_TEXT} (memcached 1.6.18 compatible)\n");
    s.push_str(
        "\
-p, --port=<num>          TCP port to listen on (default: 11211)
                          0 disables TCP, -1 picks a free port
-U, --udp-port=<num>      UDP port to listen on (default: 0, off)
                          -1 picks a free port
-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)
-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: 700)
-A, --enable-shutdown     enable ascii \"shutdown\" command
-l, --listen=<addr>       interface to listen on (default: INADDR_ANY)
                          comma separated, may be given more than once;
                          <host>:<port> and [<ipv6>]:<port> override -p/-U
-d, --daemon              run as a daemon
-r, --enable-coredumps    maximize core file limit
-u, --user=<user>         assume identity of <username> (only when run as root)
-m, --memory-limit=<num>  item memory in megabytes (default: 64)
-M, --disable-evictions   return error on memory exhausted instead of evicting
-c, --conn-limit=<num>    max simultaneous connections (default: 1024)
-k, --lock-memory         lock down all paged memory
-v, --verbose             verbose (print errors/warnings while in event loop)
-vv                       very verbose (also print client commands/responses)
-vvv                      extremely verbose (internal state transitions)
-h, --help                print this help and exit
-i, --license             print license and exit
-V, --version             print version and exit
-P, --pidfile=<file>      save PID in <file>, only used with -d option
-f, --slab-growth-factor=<num> chunk size growth factor (default: 1.25)
-n, --slab-min-size=<bytes> min space used for key+value+flags (default: 48)
-D <char>     Use <char> as the delimiter between key prefixes and IDs.
              This is used for per-prefix stats reporting. The default is
              \":\" (colon). If this option is specified, stats collection
              is turned on automatically; if not, then it may be turned on
              by sending the \"stats detail on\" command to the server.
-t, --threads=<num>       number of threads to use (default: 4)
-R, --max-reqs-per-event  maximum number of requests per event, limits the
                          requests processed per connection to prevent 
                          starvation (default: 20)
-C, --disable-cas         disable use of CAS
-b, --listen-backlog=<num> set the backlog queue limit (default: 1024)
-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: auto-negotiate)
-I, --max-item-size=<num> adjusts max item size
                          (default: 1m, min: 1k, max: 1024m)
-F, --disable-flush-all   disable flush_all command
-X, --disable-dumping     disable stats cachedump and lru_crawler metadump
-W  --disable-watch       disable watch commands (live logging)
-Y, --auth-file=<file>    (EXPERIMENTAL) enable ASCII protocol authentication. format:
                          user:pass\\nuser2:pass2\\n
-o, --extended            comma separated list of extended options
                          most options have a 'no_' prefix to disable
   - maxconns_fast:       immediately close new connections after limit (default: enabled)
   - hashpower:           an integer multiplier for how large the hash
                          table should be. normally grows at runtime. (default starts at: 0)
                          set based on \"STAT hash_power_level\"
   - tail_repair_time:    time in seconds for how long to wait before
                          forcefully killing LRU tail item.
                          disabled by default; very dangerous option.
   - hash_algorithm:      the hash table algorithm
                          default is murmur3 hash. options: jenkins, murmur3, xxh3
   - no_lru_crawler:      disable LRU Crawler background thread.
   - lru_crawler_sleep:   microseconds to sleep between items
                          default is 100.
   - lru_crawler_tocrawl: max items to crawl per slab per run
                          default is 0 (unlimited)
   - read_buf_mem_limit:  limit in megabytes for connection read/response buffers.
                          do not adjust unless you have high (20k+) conn. limits.
                          0 means unlimited (default: 0)
   - no_lru_maintainer:   disable new LRU system + background thread.
   - hot_lru_pct:         pct of slab memory to reserve for hot lru.
                          (requires lru_maintainer, default pct: 20)
   - warm_lru_pct:        pct of slab memory to reserve for warm lru.
                          (requires lru_maintainer, default pct: 40)
   - hot_max_factor:      items idle > cold lru age * drop from hot lru. (default: 0.20)
   - warm_max_factor:     items idle > cold lru age * this drop from warm. (default: 2.00)
   - temporary_ttl:       TTL's below get separate LRU, can't be evicted.
                          (requires lru_maintainer, default: 61)
   - idle_timeout:        timeout for idle connections. (default: 0, no timeout)
   - slab_reassign:       allow slab pages to move between classes (default: enabled)
   - slab_automove:       0 = off, 1 = background page mover, 2 = aggressive
                          (default: 1)
   - slab_automove_ratio: free-chunk ratio that triggers a page move (default: 0.80)
   - slab_automove_window: window, in seconds, for slab_automove (default: 30)
   - slab_chunk_max:      (EXPERIMENTAL) maximum slab chunk size in bytes. use extreme care. (default: 524288)
   - watcher_logbuf_size: size in kilobytes of per-watcher write buffer. (default: 256)
   - worker_logbuf_size:  size in kilobytes of per-worker-thread buffer
                          read by background thread, then written to watchers. (default: 64)
   - track_sizes:         enable dynamic reports for 'stats sizes' command.
   - no_hashexpand:       disables hash table expansion (dangerous)
   - modern:              enables options which will be default in future.
                          currently: nothing
   - no_modern:           uses defaults of previous major version (1.4.x)
",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// memcached 1.6.18 (Debian) `stats settings` with no flags but `-u root`,
    /// captured from the daemon (tcpport rewritten to the default 11211).
    const MEMCACHED_DEFAULT_SETTINGS: &str = "maxbytes 67108864|maxconns 1024|tcpport 11211|\
        udpport 0|inter NULL|verbosity 0|oldest 0|evictions on|domain_socket NULL|umask 700|\
        shutdown_command no|growth_factor 1.25|chunk_size 48|num_threads 4|num_threads_per_udp 4|\
        stat_key_prefix :|detail_enabled no|reqs_per_event 20|cas_enabled yes|tcp_backlog 1024|\
        binding_protocol auto-negotiate|auth_enabled_sasl no|auth_enabled_ascii no|\
        item_size_max 1048576|maxconns_fast yes|hashpower_init 0|slab_reassign yes|\
        slab_automove 1|slab_automove_ratio 0.80|slab_automove_window 30|slab_chunk_max 524288|\
        lru_crawler yes|lru_crawler_sleep 100|lru_crawler_tocrawl 0|tail_repair_time 0|\
        flush_enabled yes|dump_enabled yes|hash_algorithm murmur3|lru_maintainer_thread yes|\
        lru_segmented yes|hot_lru_pct 20|warm_lru_pct 40|hot_max_factor 0.20|\
        warm_max_factor 2.00|temp_lru no|temporary_ttl 61|idle_timeout 0|\
        watcher_logbuf_size 262144|worker_logbuf_size 65536|read_buf_mem_limit 0|\
        track_sizes no|inline_ascii_response no|ext_item_size 512|ext_item_age 4294967295|\
        ext_low_ttl 0|ext_recache_rate 2000|ext_wbuf_size 4194304|ext_compact_under 0|\
        ext_drop_under 0|ext_max_sleep 1000000|ext_max_frag 0.80|slab_automove_freeratio 0.010|\
        ext_drop_unread no|ssl_enabled no|ssl_chain_cert (null)|ssl_key (null)|\
        ssl_verify_mode 0|ssl_keyformat 1|ssl_ciphers NULL|ssl_ca_cert NULL|ssl_wbuf_size 16384|\
        ssl_session_cache no|ssl_kernel_tls no|ssl_min_version tlsv1.2|num_napi_ids (null)|\
        memory_file (null)";

    /// Parses exact argv words (for empty or space-holding values).
    fn parse_words(args: &[&str]) -> Result<Action, ConfigError> {
        parse_args(std::iter::once("memcrab").chain(args.iter().copied()))
    }

    /// Parses a command line split on whitespace.
    fn parse(args: &str) -> Result<Action, ConfigError> {
        parse_words(&args.split_whitespace().collect::<Vec<_>>())
    }

    fn run(r: Result<Action, ConfigError>, what: &str) -> Config {
        match r {
            Ok(Action::Run(c)) => c,
            other => panic!("{what}: expected Run, got {other:?}"),
        }
    }

    fn cfg(args: &str) -> Config {
        run(parse(args), args)
    }

    fn err(args: &str) -> ConfigError {
        match parse(args) {
            Err(e) => e,
            Ok(other) => panic!("{args}: expected an error, got {other:?}"),
        }
    }

    fn rt(c: &Config) -> SettingsRuntime {
        let verbosity = c.verbose.into();
        SettingsRuntime {
            verbosity,
            oldest: 0,
            tcpport: c.port,
            udpport: c.udp_port,
        }
    }

    fn stat(c: &Config, name: &str) -> String {
        let found = c
            .settings_stats(&rt(c))
            .into_iter()
            .find(|(k, _)| *k == name);
        found
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no stat {name}"))
    }

    fn addrs(r: Result<Vec<SocketAddr>, String>) -> Vec<String> {
        r.unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_match_config_default() {
        let c = cfg("");
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
        assert_eq!(
            (c.port, c.tcp_bind_port(), c.udp_bind_port()),
            (11211, Some(11211), None)
        );
        assert_eq!(
            (c.max_bytes, c.item_size_max, c.slab_chunk_max),
            (64 << 20, 1 << 20, 1 << 19)
        );
        assert_eq!(c.protocol, Protocol::Auto);
        assert_eq!(cfg("-B binary").protocol, Protocol::Binary);
        assert_eq!(cfg("--protocol=ascii").protocol, Protocol::Ascii);
    }

    #[test]
    fn default_settings_stats_match_memcached() {
        let c = cfg("");
        let ours: Vec<String> = c
            .settings_stats(&rt(&c))
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        assert_eq!(
            ours,
            MEMCACHED_DEFAULT_SETTINGS.split('|').collect::<Vec<_>>()
        );
    }

    #[test]
    fn settings_stats_formatting() {
        let c = cfg(
            "-f 1.1 -a 0755 -l 127.0.0.1,::1 -s /tmp/m.sock -B ascii -M -b -1 \
                     -o idle_timeout=-1,slab_automove_ratio=0.5,hot_max_factor=0.3",
        );
        for (name, want) in [
            ("growth_factor", "1.10"),
            ("umask", "755"),
            ("inter", "127.0.0.1,::1"),
            ("num_threads_per_udp", "1"),
            ("domain_socket", "/tmp/m.sock"),
            ("binding_protocol", "ascii"),
            ("evictions", "off"),
            ("tcp_backlog", "-1"),
            ("idle_timeout", "-1"),
            ("slab_automove_ratio", "0.50"),
            ("hot_max_factor", "0.30"),
        ] {
            assert_eq!(stat(&c, name), want, "{name}");
        }
        let e = cfg("-p -1 -U -1");
        assert_eq!(
            (stat(&e, "tcpport"), stat(&e, "udpport")),
            ("-1".into(), "-1".into())
        );
        assert_eq!(stat(&cfg("-m -1"), "maxbytes"), "18446744073708503040");
        let y = cfg("-Y /etc/auth");
        assert_eq!(stat(&y, "auth_enabled_ascii"), "/etc/auth");
        assert_eq!(stat(&y, "binding_protocol"), "ascii");
    }

    #[test]
    fn each_flag() {
        let c = cfg(
            "-p 1234 -U 1235 -s /tmp/x -a 644 -A -l 10.0.0.1 -d -r -u nobody -m 128 -M \
                     -c 99 -k -v -P /tmp/pid -f 1.5 -n 64 -t 8 -R 7 -C -b 55 -B ascii -I 4m \
                     -F -X -W -Y /tmp/auth -U 0",
        );
        assert_eq!((c.port, c.udp_port, c.unix_mask), (1234, 0, 0o644));
        assert_eq!(c.unix_socket, Some(PathBuf::from("/tmp/x")));
        assert!(c.shutdown_command && c.daemonize && c.enable_coredumps && c.lock_memory);
        assert_eq!(c.listen, ["10.0.0.1"]);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!((c.max_bytes, c.max_conns, c.verbose), (128 << 20, 99, 1));
        assert!(c.no_evict);
        assert_eq!(c.pid_file, Some(PathBuf::from("/tmp/pid")));
        assert_eq!(c.growth_factor, 1.5);
        assert_eq!(
            (c.chunk_size, c.threads, c.reqs_per_event, c.backlog),
            (64, 8, 7, 55)
        );
        assert!(!c.use_cas && !c.flush_enabled && !c.dump_enabled && !c.watch_enabled);
        assert_eq!((c.protocol, c.item_size_max), (Protocol::Ascii, 4 << 20));
        assert_eq!(c.auth_file, Some(PathBuf::from("/tmp/auth")));
        let d = cfg("-D /x");
        assert_eq!((d.prefix_delimiter, d.detail_enabled), ('/', true));
        assert_eq!(
            (stat(&d, "stat_key_prefix"), stat(&d, "detail_enabled")),
            ("/".into(), "yes".into())
        );
        // -s turns TCP and UDP off.
        assert_eq!((c.tcp_bind_port(), c.udp_bind_port()), (None, None));
    }

    #[test]
    fn long_names_and_getopt_forms() {
        let c = cfg(
            "--port=2000 --listen 127.0.0.1 --memory-limit=100 --conn-limit 10 \
                     --threads=2 --max-item-size=2m --disable-cas --enable-shutdown \
                     --disable-flush-all --extended=track_sizes --unix-mask=600 --udp-port=3000 \
                     --disable-evictions --slab-growth-factor=2 --slab-min-size=80 \
                     --max-reqs-per-event=3 --listen-backlog=5 --protocol=ascii --pidfile=/p \
                     --daemon --user=u --verbose=9 --enable-coredumps --lock-memory \
                     --disable-dumping --disable-watch --unix-socket=/s --slab-g=3 --memory-l 200",
        );
        assert_eq!(
            (c.port, c.udp_port, c.max_conns, c.threads),
            (2000, 3000, 10, 2)
        );
        assert_eq!(c.listen, ["127.0.0.1"]);
        assert_eq!(c.max_bytes, 200 << 20); // unambiguous prefixes work
        assert_eq!((c.item_size_max, c.growth_factor), (2 << 20, 3.0));
        assert_eq!(c.verbose, 1); // --verbose's argument is ignored
        assert!(c.track_sizes && !c.use_cas && c.shutdown_command && !c.flush_enabled);
        assert_eq!(
            (c.unix_mask, c.chunk_size, c.reqs_per_event, c.backlog),
            (0o600, 80, 3, 5)
        );
        assert_eq!(cfg("--auth-file=/a").auth_file, Some(PathBuf::from("/a")));

        let c = cfg("-p11211 -vvv -dvp 99 stray -c 5 -- -c 6");
        assert_eq!(
            (c.port, c.verbose, c.max_conns, c.daemonize),
            (99, 4, 5, true)
        );
        // Last value wins; values may start with '-'.
        assert_eq!(cfg("-p 1 -p 2").port, 2);
        assert_eq!(cfg("-l -p").listen, ["-p"]);
    }

    #[test]
    fn c_number_conversions() {
        // atoi: leading digits only; no -m suffixes in 1.6.18.
        assert_eq!(cfg("-m 64m").max_bytes, 64 << 20);
        assert_eq!(cfg("-m 1g -I 512k").max_bytes, 1 << 20);
        assert_eq!(run(parse_words(&["-c", " 12abc"]), "-c").max_conns, 12);
        assert_eq!(cfg("-f 1.5x").growth_factor, 1.5);
        assert_eq!(cfg("-f 2e1").growth_factor, 20.0);
        assert_eq!(cfg("-a abc").unix_mask, 0);
        assert_eq!(cfg("-a 19").unix_mask, 1);
        // -p of a non-number is 0, i.e. TCP off (as memcached).
        assert_eq!(cfg("-p abc").tcp_bind_port(), None);
        assert_eq!(
            (atoi("99999999999"), atoi("-12x"), atoi("")),
            (1215752191, -12, 0)
        );
        assert_eq!((atof(".5"), atof("-"), atof("1e")), (0.5, 0.0, 1.0));
        assert!(atof("nan").is_nan());
        assert_eq!(
            (safe_strtoul("12"), safe_strtoul("12 ")),
            (Some(12), Some(12))
        );
        assert_eq!(
            (safe_strtoul("12x"), safe_strtoul("-1"), safe_strtoul("")),
            (None, None, None)
        );
        assert_eq!(safe_strtoul("4294967296"), Some(0));
        assert_eq!((safe_strtol("-7"), safe_strtol("7k")), (Some(-7), None));
    }

    #[test]
    fn item_size_suffixes() {
        let item = |v: &str| cfg(&format!("-I {v}")).item_size_max;
        assert_eq!((item("2m"), item("2M")), (2 << 20, 2 << 20));
        assert_eq!((item("512k"), item("1536K")), (512 << 10, 1536 << 10));
        assert_eq!(item("1048576"), 1 << 20);
        // Below 512k slab_chunk_max must come down too.
        assert_eq!(cfg("-I 1k -o slab_chunk_max=1024").item_size_max, 1024);
        assert_eq!(cfg("-I 1024m -m 4096").item_size_max, 1 << 30);
        // -I above 1m keeps slab_chunk_max at half a page unless it was set.
        assert_eq!(cfg("-I 2m").slab_chunk_max, 512 << 10);
        assert_eq!(cfg("-o no_modern -I 2m").slab_chunk_max, 512 << 10);
        assert_eq!(cfg("-o no_modern").slab_chunk_max, 1 << 20);
        assert_eq!(cfg("-o no_chunked_items").slab_chunk_max, 1 << 20);
        assert_eq!(
            cfg("-I 2m -o slab_chunk_max=1048576").slab_chunk_max,
            1 << 20
        );
        assert_eq!(cfg("-o slab_chunk_max=16384").slab_chunk_max, 16384);
    }

    #[test]
    fn extended_options() {
        let c = cfg(
            "-o idle_timeout=30,hashpower=16,no_maxconns_fast,no_lru_crawler,\
                     lru_crawler_sleep=50,lru_crawler_tocrawl=7,hot_lru_pct=10,warm_lru_pct=30,\
                     temporary_ttl=100 \
                     -o no_slab_reassign,slab_automove=2,track_sizes,slab_automove_ratio=0.5,\
                     slab_automove_window=10,hot_max_factor=0.3,warm_max_factor=3,\
                     tail_repair_time=20,watcher_logbuf_size=128,worker_logbuf_size=32,\
                     read_buf_mem_limit=2,hash_algorithm=xxh3,no_hashexpand,drop_privileges,\
                     modern,inline_ascii_resp,",
        );
        assert_eq!((c.idle_timeout, c.hashpower), (30, 16));
        assert!(!c.maxconns_fast && !c.lru_crawler && !c.slab_reassign && !c.hash_expand);
        assert_eq!((c.lru_crawler_sleep, c.lru_crawler_tocrawl), (50, 7));
        assert_eq!(
            (c.hot_lru_pct, c.warm_lru_pct, c.temporary_ttl),
            (10, 30, 100)
        );
        assert!(c.temp_lru && c.track_sizes && c.drop_privileges);
        assert_eq!(
            (c.slab_automove, c.slab_automove_window, c.tail_repair_time),
            (2, 10, 20)
        );
        assert_eq!(
            (c.slab_automove_ratio, c.hot_max_factor, c.warm_max_factor),
            (0.5, 0.3, 3.0)
        );
        assert_eq!(
            (c.watcher_logbuf_size, c.worker_logbuf_size),
            (128 << 10, 32 << 10)
        );
        assert_eq!((c.read_buf_mem_limit, c.hash_algorithm), (2 << 20, "xxh3"));

        assert_eq!(cfg("-o slab_automove").slab_automove, 1);
        assert_eq!(cfg("-o no_slab_automove").slab_automove, 0);
        assert_eq!(cfg("-o hot_lru_pct=1").hot_lru_pct, 1);
        assert_eq!(cfg("-o read_buf_mem_limit=4096").read_buf_mem_limit, 0); // u32 wraps
        assert_eq!(cfg("-o idle_timeout=-1").idle_timeout, u32::MAX);
        assert_eq!(
            cfg("-o lru_crawler_tocrawl=4294967296").lru_crawler_tocrawl,
            0
        );
        assert_eq!(run(parse_words(&["-o", ""]), "-o ''").hashpower, 0);
        let c = cfg("-o no_lru_maintainer");
        assert!(!c.lru_maintainer && !c.lru_segmented);
        let c = cfg("-o no_lru_maintainer,lru_maintainer,no_lru_crawler,lru_crawler");
        assert!(c.lru_maintainer && c.lru_segmented && c.lru_crawler);
        let c = cfg("-o no_modern");
        assert!(!c.slab_reassign && !c.maxconns_fast && !c.lru_segmented && !c.lru_crawler);
        assert_eq!((c.slab_automove, c.hash_algorithm), (0, "jenkins"));
        // Accepted and ignored (with a warning).
        cfg("-o resp_obj_mem_limit=1,sock_cookie_id=1,slab_automove_freeratio=0.1");
    }

    #[test]
    fn rejected() {
        // args | exit code | message excerpt (memcached's own where it has one)
        let cases = r#"
        -B http | 64 | Invalid value for binding protocol: http
        -c 0 | 1 | Maximum connections must be greater than 0
        -c -1 | 1 | Maximum connections must be greater than 0
        -t 0 | 1 | Number of threads must be greater than 0
        -t abc | 1 | Number of threads must be greater than 0
        -R 0 | 1 | Number of requests per event must be greater than 0
        -R -1 | 1 | Number of requests per event must be greater than 0
        -n 0 | 1 | Chunk size must be greater than 0
        -n -5 | 1 | Chunk size must be greater than 0
        -f 1 | 1 | Factor must be greater than 1
        -f abc | 1 | Factor must be greater than 1
        -f nan | 1 | Factor must be greater than 1
        -I 1000 | 64 | Item max size cannot be less than 1024 bytes.
        -I 2g -m 8000 | 64 | Item max size cannot be less than 1024 bytes.
        -I 2048m -m 9000 | 64 | Item max size cannot be less than 1024 bytes.
        -I 256m -m 64 | 64 | higher than 1/2 of memory max.
        -m 0 | 64 | higher than 1/2 of memory max.
        -I 1025m -m 4000 | 64 | higher than a gigabyte.
        -I 768k | 64 | -I (item_size_max: 786432) must be evenly divisible
        -I 100k | 64 | slab_chunk_max (bytes: 524288) cannot be larger than -I
        -o slab_chunk_max=1000 | 64 | must be evenly divisible by slab_chunk_max
        -I 2m -o slab_chunk_max=2097152 | 64 | must divide evenly into 1048576
        -o slab_chunk_max=0 | 64 | slab_chunk_max (bytes: 0) must be greater than 0
        -o slab_chunk_max=abc | 1 | could not parse argument to slab_chunk_max
        -o slab_chunk_max | 1 | Missing slab_chunk_max argument
        -p 70000 | 64 | ERROR: Invalid port number 70000.
        -p 1 -U 70000 | 64 | ERROR: Invalid port number 70000.
        -p -2 | 71 | failed to listen on TCP port -2
        -U -2 | 71 | failed to listen on TCP port -2
        -p 1 -U -2 | 71 | failed to listen on UDP port -2
        -x | 1 | invalid option -- 'x'
        --bogus | 1 | unrecognized option '--bogus'
        --mem=100 | 1 | '--mem
        --disable | 1 | --disable
        -p | 1 | -p
        --daemon=1 | 1 | --daemon
        -o bogus | 1 | Illegal suboption "bogus"
        -o bogus=5 | 1 | Illegal suboption "bogus=5"
        -o a,,b | 1 | Illegal suboption "a"
        -o track_sizes,,b | 1 | Illegal suboption ""
        -o lru_segmented | 1 | Illegal suboption "lru_segmented"
        -o HASHPOWER=16 | 1 | Illegal suboption
        -o hashpower | 1 | Missing numeric argument for hashpower
        -o hashpower=5 | 1 | Initial hashtable multiplier of 5 is too low
        -o hashpower=abc | 1 | Initial hashtable multiplier of 0 is too low
        -o hashpower=40 | 1 | Initial hashtable multiplier of 40 is too high
        -o slab_automove=3 | 1 | slab_automove must be between 0 and 2
        -o slab_automove_ratio=1.5 | 1 | slab_automove_ratio must be > 0 and < 1
        -o slab_automove_window=2 | 1 | slab_automove_window must be > 2
        -o tail_repair_time=5 | 1 | less than 10 seconds
        -o hash_algorithm=foo | 1 | Unknown hash_algorithm option
        -o lru_crawler_sleep=2000000 | 1 | LRU crawler sleep must be between
        -o lru_crawler_tocrawl=-1 | 1 | lru_crawler_tocrawl takes a numeric 32bit
        -o hot_lru_pct=80 | 1 | hot_lru_pct must be > 1 and < 80
        -o warm_lru_pct=0 | 1 | warm_lru_pct must be > 1 and < 80
        -o hot_lru_pct=50,warm_lru_pct=40 | 64 | cannot be more than 80% combined
        -o hot_max_factor=0 | 1 | hot_max_factor must be > 0
        -o warm_max_factor | 1 | Missing warm_max_factor argument
        -o temporary_ttl=5,no_lru_maintainer | 64 | requires lru_maintainer
        -o idle_timeout | 1 | Missing numeric argument for idle_timeout
        -o watcher_logbuf_size=abc | 1 | could not parse argument to watcher
        -o read_buf_mem_limit=x | 1 | could not parse argument to read_buf
        -o slab_sizes=64-128 | 1 | slab_sizes is not supported
        -o ext_path=/tmp/x:64m | 1 | extstore is not supported
        -o ssl_key=x | 1 | TLS is not supported
        -o proxy_config=x | 1 | Illegal suboption "proxy_config=x"
        -S | 64 | SASL (-S) is not supported
        -Z | 64 | TLS (-Z) is not supported
        -e /tmp/mem | 64 | memory_file (-e) is not supported
        -N 0 | 1 | Maximum number of NAPI IDs must be greater than 0
        -N 8 | 64 | Number of napi_ids(8) cannot be greater than number of threads(4)
        -Y /a -B auto | 64 | You cannot allow the BINARY protocol
        -Y /a -U 5 | 64 | Cannot use UDP with ascii authentication
"#;
        for case in cases.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = case.split(" | ").map(str::trim).collect();
            let e = err(f[0]);
            assert_eq!(e.exit_code.to_string(), f[1], "{case}: {}", e.message);
            assert!(e.message.contains(f[2]), "{case}: {:?}", e.message);
        }
        let e = parse_words(&["-D", ""]).unwrap_err();
        assert_eq!(
            (e.exit_code, e.message.as_str()),
            (1, "No delimiter specified")
        );
    }

    #[test]
    fn accepted_and_ignored() {
        cfg("-L -N 2 -t 65");
        // With -s no TCP/UDP socket is made, so a bad port never reaches getaddrinfo.
        cfg("-s /tmp/x -p -2");
    }

    #[test]
    fn first_error_or_exit_wins_in_order() {
        assert!(matches!(parse("-h -c 0"), Ok(Action::Help(_))));
        assert_eq!(err("-c 0 -h").exit_code, 1);
        assert!(
            matches!(parse("-V -t 0"), Ok(Action::Version(v)) if v == format!("{VERSION_TEXT}\n"))
        );
        assert!(err("-t 0 -c 0").message.contains("threads"));
        assert!(matches!(parse("-i"), Ok(Action::Help(t)) if t.contains("BSD")));
    }

    #[test]
    fn ports() {
        let c = cfg("-p 0");
        assert_eq!(
            (c.tcp_bind_port(), c.listen_addrs()),
            (None, Ok(Vec::new()))
        );
        let c = cfg("-p -1 -U -1");
        assert!(c.tcp_ephemeral && c.udp_ephemeral);
        assert_eq!((c.tcp_bind_port(), c.udp_bind_port()), (Some(0), Some(0)));
        // -U alone moves TCP to the same port; an explicit -p or -U 0 does not.
        assert_eq!((cfg("-U 5000").port, cfg("-U 5000").udp_port), (5000, 5000));
        assert_eq!((cfg("-U 5000 -p 7").port, cfg("-U 0").port), (7, 11211));
        assert!(cfg("-U -1").tcp_ephemeral);
        let v4: SocketAddr = "0.0.0.0:11211".parse().unwrap();
        let v6: SocketAddr = "[::]:40000".parse().unwrap();
        assert_eq!(port_file_line(false, v4), "TCP INET: 11211\n");
        assert_eq!(port_file_line(true, v6), "UDP INET6: 40000\n");
    }

    #[test]
    fn listen_addrs_resolution() {
        let tcp = |args: &str| addrs(cfg(args).listen_addrs());
        assert_eq!(tcp(""), ["0.0.0.0:11211", "[::]:11211"]);
        assert_eq!(tcp("-p -1"), ["0.0.0.0:0", "[::]:0"]);
        assert_eq!(tcp("-l 127.0.0.1"), ["127.0.0.1:11211"]);
        assert_eq!(
            tcp("-p 5 -l [::1]:6,127.0.0.1 -l 10.1.1.1:7;::1"),
            ["[::1]:6", "127.0.0.1:5", "10.1.1.1:7", "[::1]:5"]
        );
        assert_eq!(tcp("-l [::1]"), ["[::1]:11211"]);
        assert_eq!(tcp("-l fe80::1:80"), ["[fe80::1:80]:11211"]); // 2+ colons: no port
        assert_eq!(tcp("-l *:99"), ["0.0.0.0:99", "[::]:99"]);
        assert_eq!(tcp("-l 127.0.0.1:0"), ["127.0.0.1:0"]);
        assert_eq!(tcp("-l 127.0.0.1:-1"), ["127.0.0.1:0"]);
        assert_eq!(tcp("-l tag[ab]:127.0.0.1"), ["127.0.0.1:11211"]);
        assert_eq!(tcp("-l proto[ascii]:tag[ab]:127.0.0.1:8"), ["127.0.0.1:8"]);
        assert!(tcp("-l localhost").contains(&"127.0.0.1:11211".to_owned()));
        assert!(tcp("-s /tmp/s").is_empty());
        let c = run(parse_words(&["-l", ""]), "-l ''");
        assert_eq!(c.listen_addrs(), Ok(Vec::new()));
        // memcached drops an -l that is a substring of the earlier list.
        assert_eq!(
            cfg("-l 127.0.0.10 -l 127.0.0.1 -l ::1").listen,
            ["127.0.0.10", "::1"]
        );
        // UDP uses the same entries with -U as the default port.
        let c = cfg("-p 5 -U 6 -l 127.0.0.1,[::1]:9");
        assert_eq!(addrs(c.udp_listen_addrs()), ["127.0.0.1:6", "[::1]:9"]);
        assert_eq!(cfg("").udp_listen_addrs(), Ok(Vec::new()));
    }

    #[test]
    fn listen_addrs_errors() {
        for (l, msg) in [
            ("fooble.invalid", "getaddrinfo(): "),
            ("127.0.0.1:abc", "Invalid port number: \"abc\""),
            ("127.0.0.1:", "Invalid port number: \"\""),
            ("127.0.0.1:70000", "Invalid port number"),
            ("127.0.0.1:-2", "Servname not supported"),
            ("[::1", "Invalid IPV6 address"),
            (
                "notls:127.0.0.1",
                "'notls' option is valid only when SSL is enabled",
            ),
            (
                "proto[binary]:127.0.0.1",
                "per-listener protocol not supported",
            ),
            (
                "tag[123456789]:127.0.0.1",
                "Listener tags must be between 1 and 8 characters",
            ),
        ] {
            let e = cfg(&format!("-l {l}")).listen_addrs().unwrap_err();
            assert!(e.contains(msg), "{l}: {e}");
            assert!(
                e.ends_with(&format!("failed to listen on one of interface(s) {l}")),
                "{e}"
            );
        }
    }

    #[test]
    fn help_and_version_text() {
        let h = help_text();
        assert!(h.starts_with("memcrab 0.1.0 (memcached 1.6.18 compatible)\n"));
        for flag in [
            "--port",
            "--unix-socket",
            "--listen",
            "--extended",
            "idle_timeout",
        ] {
            assert!(h.contains(flag), "{flag}");
        }
        let lower = h.to_lowercase();
        for absent in [
            "sasl",
            "ssl",
            "tls",
            "extstore",
            "ext_",
            "memory-file",
            "napi",
        ] {
            assert!(!lower.contains(absent), "{absent}");
        }
        assert_eq!(VERSION_TEXT, "memcrab 0.1.0");
        assert!(matches!(parse("--help"), Ok(Action::Help(t)) if t == h));
        assert!(matches!(parse("--version"), Ok(Action::Version(_))));
    }

    #[test]
    fn root_check() {
        assert!(cfg("-u nobody").check_root_user().is_ok());
        // SAFETY: no preconditions.
        if nix::unistd::geteuid().is_root() {
            assert_eq!(cfg("").check_root_user().unwrap_err().exit_code, EX_USAGE);
        }
    }
}
