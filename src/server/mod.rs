//! The network layer: listeners, worker threads, connections.
//!
//! Like memcached, one acceptor hands connections round-robin to `-t`
//! workers; each worker runs a single-threaded tokio runtime, so a
//! connection's reads, parsing, store calls and writes all stay on one core.

mod connection;
mod maintenance;
mod shared;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{Config, port_file_line};
pub use shared::Shared;

enum Conn {
    Tcp(std::net::TcpStream, String, String),
    Unix(std::os::unix::net::UnixStream, String),
}

/// Listeners bound before any thread starts, so bad addresses fail early.
pub struct Listeners {
    tcp: Vec<std::net::TcpListener>,
    unix: Option<std::os::unix::net::UnixListener>,
    udp: Vec<udp::Bound>,
    /// `curr_conns` (clients and UDP sockets) at which `-c` refuses a client.
    conn_limit: usize,
}

/// Binds every listener the configuration asks for.
pub fn bind(config: &Config) -> io::Result<Listeners> {
    let free_fds = free_descriptors_below(config.max_conns.saturating_sub(1), config.daemonize);
    let mut tcp = Vec::new();
    let mut unix = None;
    if let Some(path) = &config.unix_socket {
        let _ = std::fs::remove_file(path);
        let l = std::os::unix::net::UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.unix_mask))?;
        l.set_nonblocking(true)?;
        unix = Some(l);
    } else if config.tcp_bind_port().is_some() {
        let addrs = config.listen_addrs().map_err(io::Error::other)?;
        for addr in addrs {
            match bind_tcp(addr, config.backlog) {
                Ok(l) => tcp.push(l),
                // memcached skips an IPv6 wildcard the host cannot bind.
                Err(e) if addr.is_ipv6() && config.listen.is_empty() => warn!("{addr}: {e}"),
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("failed to listen on {addr}: {e}"),
                    ));
                }
            }
        }
    }
    // memcached binds UDP after TCP (and not at all with -s).
    let udp = udp::bind(config)?;
    let udp_fds: usize = udp.iter().map(udp::Bound::fds).sum();
    let sockets = tcp.len() + unix.is_some() as usize + udp_fds;
    let conn_limit = client_limit(config.threads, free_fds, sockets) + udp_fds;
    Ok(Listeners {
        tcp,
        unix,
        udp,
        conn_limit,
    })
}

/// memcached 1.6.18 refuses a client whose descriptor number would be
/// `-c` - 1 or more. Its own descriptors and the ones it inherited hold the
/// lowest numbers, so it admits the numbers free at start-up below `-c` - 1
/// less its own descriptors: 3, 4 per worker thread, and its listening
/// sockets (a UDP socket once per thread, as memcrab binds them too).
/// memcrab admits as many clients, whatever its own descriptors are.
fn client_limit(threads: usize, free_fds: usize, sockets: usize) -> usize {
    free_fds.saturating_sub(3 + 4 * threads + sockets).max(1)
}

/// How many descriptor numbers below `limit` are free. A daemon's 0, 1 and
/// 2 are taken (memcached daemonizes before it opens anything).
fn free_descriptors_below(limit: usize, daemonize: bool) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return limit;
    };
    let listed: Vec<usize> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own descriptor was listed too; it is closed by now.
    let is_open = |fd: &usize| {
        (daemonize && *fd <= 2) || std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok()
    };
    let mut open: Vec<usize> = listed.into_iter().filter(|&fd| fd < limit).collect();
    if daemonize {
        open.extend(0..3.min(limit));
    }
    open.sort_unstable();
    open.dedup();
    let open = open.iter().filter(|fd| is_open(fd)).count();
    limit - open
}

fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    use nix::sys::socket::{Backlog, SockType, listen};
    let fd = bound_socket(addr, SockType::Stream, |_| {})?;
    let backlog = Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog)?;
    Ok(std::net::TcpListener::from(fd))
}

/// A non-blocking socket bound to `addr` as memcached binds its listeners:
/// SO_REUSEADDR, IPv6 sockets IPv6-only; `tune` runs before `bind`.
fn bound_socket(
    addr: SocketAddr,
    kind: nix::sys::socket::SockType,
    tune: impl FnOnce(&std::os::fd::OwnedFd),
) -> io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockaddrStorage, bind, setsockopt, socket, sockopt,
    };
    let family = if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(
        family,
        kind,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    tune(&fd);
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(fd)
}

impl Listeners {
    /// The ports actually bound (ephemeral ports resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Writes `MEMCACHED_PORT_FILENAME` as memcached does: to `<file>.lck`,
    /// then renamed into place; TCP lines first, then UDP.
    pub fn write_port_file(&self, path: &str) -> io::Result<()> {
        let tmp = format!("{path}.lck");
        let tcp = self.local_addrs().into_iter().map(|a| (false, a));
        let udp = udp::local_addrs(&self.udp).into_iter().map(|a| (true, a));
        let text: String = tcp
            .chain(udp)
            .map(|(is_udp, a)| port_file_line(is_udp, a))
            .collect();
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Runs the server until SIGINT, SIGTERM or `shutdown`.
pub fn run(shared: Arc<Shared>, mut listeners: Listeners) -> io::Result<()> {
    for l in &listeners.tcp {
        if let Ok(addr) = l.local_addr() {
            shared.listener_open(l.as_raw_fd(), format!("tcp:{addr}"));
        }
    }
    if let (Some(l), Some(path)) = (&listeners.unix, &shared.config.unix_socket) {
        shared.listener_open(l.as_raw_fd(), format!("unix:{}", path.display()));
    }
    let count = listeners.tcp.len() + listeners.unix.is_some() as usize;
    shared.listeners.store(count as u32, Ordering::Relaxed);
    // memcached counts its listening sockets as connections made.
    shared.count_listeners(count as u64);
    let maintenance = maintenance::spawn(shared.clone());
    // After the listeners: memcached's UDP connections come next in `stats conns`.
    let udp = udp::spawn(shared.clone(), std::mem::take(&mut listeners.udp))?;
    let mut workers = Vec::new();
    let mut senders = Vec::new();
    for id in 0..shared.config.threads {
        let (tx, rx) = mpsc::unbounded_channel::<Conn>();
        senders.push(tx);
        let shared = shared.clone();
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker(id, shared, rx))?,
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(accept_loop(shared.clone(), listeners, senders))?;
    shared.request_shutdown();
    for w in workers {
        let _ = w.join();
    }
    if let Some(u) = udp {
        let _ = u.join();
    }
    maintenance.stop();
    if let Some(path) = &shared.config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn accept_loop(
    shared: Arc<Shared>,
    listeners: Listeners,
    senders: Vec<mpsc::UnboundedSender<Conn>>,
) -> io::Result<()> {
    let conn_limit = listeners.conn_limit;
    let (tx, mut rx) = mpsc::unbounded_channel::<io::Result<Conn>>();
    for l in listeners.tcp {
        let l = TcpListener::from_std(l)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let r = l.accept().await.and_then(|(s, peer)| {
                    let local = s.local_addr()?;
                    Ok(Conn::Tcp(
                        s.into_std()?,
                        format!("tcp:{peer}"),
                        format!("tcp:{local}"),
                    ))
                });
                if tx.send(r).is_err() {
                    return;
                }
            }
        });
    }
    if let Some(l) = listeners.unix {
        let l = UnixListener::from_std(l)?;
        let path = shared
            .config
            .unix_socket
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let r = l
                    .accept()
                    .await
                    .and_then(|(s, _)| Ok(Conn::Unix(s.into_std()?, format!("unix:{path}"))));
                if tx.send(r).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // SIGHUP reloads the auth file (ignored in daemon mode), never stops.
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut next = 0;
    // Without TCP or unix listeners (-p 0: UDP only, or nothing) memcached
    // keeps running until it is stopped.
    let mut listening = true;
    loop {
        let conn = tokio::select! {
            c = rx.recv(), if listening => match c {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    warn!("accept: {e}");
                    // Out of descriptors: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
                None => {
                    listening = false;
                    continue;
                }
            },
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); return Ok(()); }
            _ = sigint.recv() => { info!("SIGINT: stopping"); return Ok(()); }
            _ = sighup.recv() => {
                if !shared.config.daemonize {
                    shared.reload_credentials();
                }
                continue;
            }
            _ = shared.stopped() => return Ok(()),
        };
        if shared.curr_conns.load(Ordering::Relaxed) as usize >= conn_limit {
            shared.conn_rejected();
            reject(conn).await;
            continue;
        }
        let worker = next % senders.len();
        next += 1;
        let _ = senders[worker].send(conn);
    }
}

async fn reject(conn: Conn) {
    const MSG: &[u8] = b"ERROR Too many open connections\r\n";
    match conn {
        Conn::Tcp(s, ..) => {
            if let Ok(mut s) = TcpStream::from_std(s) {
                let _ = s.write_all(MSG).await;
            }
        }
        Conn::Unix(s, _) => {
            if let Ok(mut s) = UnixStream::from_std(s) {
                let _ = s.write_all(MSG).await;
            }
        }
    }
}

fn worker(id: usize, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Conn>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("worker {id}: {e}");
            return;
        }
    };
    // Connection tasks are spawned on this thread's runtime itself (no
    // LocalSet in between: one scheduling hop less per wake-up).
    rt.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                conn = rx.recv() => match conn {
                    Some(conn) => { tasks.spawn(handle(id, shared.clone(), conn)); }
                    None => break,
                },
                _ = shared.stopped() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done
                        && e.is_panic()
                    {
                        warn!("worker {id}: a connection panicked and was closed: {e}");
                    }
                }
            }
        }
        // Let connections finish what they have in flight.
        let grace = tokio::time::sleep(std::time::Duration::from_secs(2));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                r = tasks.join_next() => if r.is_none() { break },
                _ = &mut grace => break,
            }
        }
    });
}

async fn handle(id: usize, shared: Arc<Shared>, conn: Conn) {
    match conn {
        Conn::Tcp(s, peer, local) => {
            let fd = s.as_raw_fd();
            let _ = s.set_nodelay(true);
            if let Ok(s) = TcpStream::from_std(s) {
                serve_registered(id, &shared, s, fd, peer, Some(local)).await;
            }
        }
        Conn::Unix(s, path) => {
            let fd = s.as_raw_fd();
            if let Ok(s) = UnixStream::from_std(s) {
                serve_registered(id, &shared, s, fd, path, None).await;
            }
        }
    }
}

/// Serves a connection, listed in `stats conns` for exactly as long: the
/// guard deregisters it even if serving panics (the worker logs that and
/// goes on with its other connections).
async fn serve_registered<S>(
    id: usize,
    shared: &Shared,
    s: S,
    fd: i32,
    addr: String,
    listen: Option<String>,
) where
    S: connection::Socket,
{
    struct Registered<'a> {
        shared: &'a Shared,
        cid: u64,
        fd: i32,
    }
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.shared.conn_close(self.cid);
            if self.shared.verbosity() >= 2 {
                eprintln!("<{} connection closed.", self.fd);
            }
        }
    }
    let (cid, last) = shared.conn_open(fd, addr, listen);
    let _registered = Registered { shared, cid, fd };
    connection::serve(s, fd, shared, &shared.threads[id], &last).await;
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::{Action, parse_args};

    /// The log, as the server writes it.
    #[derive(Clone, Default)]
    struct Log(Arc<parking_lot::Mutex<Vec<u8>>>);

    impl Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn converse(c: &mut TcpStream, request: &[u8], reply_len: usize) -> Vec<u8> {
        c.write_all(request).unwrap();
        let mut reply = vec![0; reply_len];
        c.read_exact(&mut reply).unwrap();
        reply
    }

    /// A panic while serving one connection closes that connection and is
    /// logged; the worker's other connections and new ones are served.
    #[test]
    fn a_panic_closes_only_its_connection() {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);

        // (-p 0 means no TCP port, as in memcached: take a free one.)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
            .to_string();
        let args = [
            "memcrab",
            "-l",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "0",
            "-t",
            "1",
        ];
        let Ok(Action::Run(config)) = parse_args(args) else {
            panic!("arguments rejected");
        };
        let listeners = super::bind(&config).unwrap();
        let addr = listeners.local_addrs()[0];
        let shared = Arc::new(super::Shared::new(config, Vec::new()));
        let server = {
            let shared = shared.clone();
            std::thread::spawn(move || super::run(shared, listeners))
        };
        let connect = || {
            let c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c
        };
        let mut other = connect();
        assert_eq!(
            converse(&mut other, b"set k 0 0 1\r\nv\r\n", 8),
            b"STORED\r\n"
        );

        let mut victim = connect();
        victim.write_all(b"debug_panic now\r\n").unwrap();
        let mut rest = Vec::new();
        let closed = victim.read_to_end(&mut rest);
        assert!(
            matches!(closed, Ok(0)) || closed.is_err(),
            "the panicking connection is closed without a reply: {closed:?} {rest:?}"
        );

        // Same worker thread (-t 1): the other connection and a new one.
        assert_eq!(
            converse(&mut other, b"get k\r\n", 18),
            b"VALUE k 0 1\r\nv\r\nEND"[..18].to_vec()
        );
        let mut fresh = connect();
        assert_eq!(converse(&mut fresh, b"version\r\n", 9), b"VERSION 1");
        let logged = String::from_utf8_lossy(&log.0.lock()).into_owned();
        assert!(
            logged.contains("a connection panicked and was closed"),
            "logged: {logged}"
        );

        shared.request_shutdown();
        drop((other, fresh));
        server.join().unwrap().unwrap();
    }
}
