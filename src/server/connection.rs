//! One client connection: read what arrived, answer every complete command,
//! write the answers in one go.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::os::fd::AsFd;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};

use super::Shared;
use crate::config::Protocol;
use crate::protocol::text::{self, OUT_HIGH_WATER};
use crate::protocol::{SendNow, binary};
use crate::stats::{ThreadStats, add};

/// Size of a fresh read or output buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers come from a per-worker pool and go back to it whenever their
/// connection has nothing in them, so an idle connection holds no buffer
/// (memcached's per-thread read buffers do the same) and a worker's busy
/// connections reuse warm memory. The pool keeps at most `POOL_BYTES` of
/// capacity; a buffer larger than `POOL_MAX_BUF` is freed on return.
const POOL_BYTES: usize = 1024 * 1024;
const POOL_MAX_BUF: usize = 512 * 1024;

struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bufs: Vec::new(), bytes: 0 }) };
}

/// A buffer from this thread's pool (or a new one).
fn take_buf() -> Vec<u8> {
    POOL.with_borrow_mut(|pool| {
        let buf = pool.bufs.pop()?;
        pool.bytes -= buf.capacity();
        Some(buf)
    })
    .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK))
}

/// Gives `buf` back to the pool if it is empty; a buffer still holding
/// bytes stays with its connection.
fn give_back(buf: &mut Vec<u8>) {
    if !buf.is_empty() || buf.capacity() == 0 {
        return;
    }
    let buf = std::mem::take(buf);
    if buf.capacity() <= POOL_MAX_BUF {
        POOL.with_borrow_mut(|pool| {
            if pool.bytes + buf.capacity() <= POOL_BYTES {
                pool.bytes += buf.capacity();
                pool.bufs.push(buf);
            }
        });
    }
}

/// Bytes read past a data block that goes straight into its item: its
/// `\r\n` and what the client sent after it, in the same `readv`.
const SPILL: usize = 4 * 1024;

pub async fn serve<S>(
    mut stream: S,
    fd: i32,
    shared: &Shared,
    stats: &ThreadStats,
    last_cmd: &AtomicU32,
) where
    S: Socket,
{
    // Both stay empty (unallocated) while the connection waits for a
    // request; see `take_buf`.
    let mut input: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    // -B ascii (and -Y) connections are ascii from the start, -B binary
    // ones binary; others are negotiated on their first byte.
    let mut guard = SessionGuard {
        shared,
        sess: match shared.config.protocol {
            Protocol::Ascii => Some(Session::text(fd)),
            Protocol::Binary => Some(Session::binary(fd)),
            Protocol::Auto => None,
        },
    };
    let sess = &mut guard.sess;
    if shared.verbosity() >= 2 {
        match shared.config.protocol {
            Protocol::Auto => eprintln!("<{fd} new auto-negotiating client connection"),
            Protocol::Ascii => eprintln!("<{fd} new ascii client connection."),
            Protocol::Binary => eprintln!("<{fd} new binary client connection."),
        }
    }
    let idle = shared.config.idle_timeout;
    // Registered once: a fresh shutdown future per read would take the
    // shared Notify's lock on every request.
    let stop = shared.stopped();
    tokio::pin!(stop);
    loop {
        // A large data block goes straight into its item; anything else
        // into the read buffer, with room for what the pending command
        // still needs, or a chunk.
        // A block's `\r\n` and what follows it come with the same read.
        let mut spill = Vec::new();
        let mut direct = None;
        let n = if let Some(Session::Text(s)) = sess.as_mut()
            && text::direct_buf(shared, s).is_some()
        {
            // (A buffer only here: zeroing it costs, and small requests
            // never need it.)
            spill = take_buf();
            spill.resize(SPILL, 0);
            let read = std::future::poll_fn(|cx| {
                let Some(buf) = text::direct_buf(shared, s) else {
                    return Poll::Ready(Ok(0));
                };
                direct = Some(buf.len());
                let mut bufs = [IoSliceMut::new(buf), IoSliceMut::new(&mut spill)];
                poll_read_vectored(&stream, cx, &mut bufs)
            });
            read_or_stop(read, idle, &mut stop, stats).await
        } else {
            let want = sess.as_ref().map_or(0, Session::want);
            let read = std::future::poll_fn(|cx| {
                // A buffer only for the attempt: one that is still empty
                // when the socket has nothing goes back to the pool.
                if input.capacity() == 0 {
                    input = take_buf();
                }
                let room = want.saturating_sub(input.len()).max(READ_CHUNK / 4);
                if input.capacity() - input.len() < room {
                    input.reserve(room.max(READ_CHUNK));
                }
                let r = pin!(stream.read_buf(&mut input)).poll(cx);
                if r.is_pending() {
                    give_back(&mut input);
                }
                r
            });
            read_or_stop(read, idle, &mut stop, stats).await
        };
        let Some(n) = n else {
            return;
        };
        // memcached's negotiation: a first byte of 0x80 means binary.
        let sess = sess.get_or_insert_with(|| {
            let s = if input.first() == Some(&binary::REQUEST) {
                Session::binary(fd)
            } else {
                Session::text(fd)
            };
            if shared.verbosity() >= 2 {
                let name = if s.is_binary() { "binary" } else { "ascii" };
                eprintln!("{fd}: Client using the {name} protocol");
            }
            s
        });
        add(&stats.c.bytes_read, n as u64);
        last_cmd.store(shared.store.clock.now(), Ordering::Relaxed);
        if out.capacity() == 0 {
            out = take_buf();
        }
        if let (Session::Text(s), Some(len)) = (&mut *sess, direct) {
            let k = n.min(len);
            text::direct_filled(shared, stats, s, k, &mut out);
            let rest = feed_direct(shared, stats, s, &spill[..n - k], &mut out);
            if !rest.is_empty() {
                if input.capacity() == 0 {
                    input = take_buf();
                }
                input.extend_from_slice(rest);
            }
            spill.clear();
            give_back(&mut spill);
        }
        let mut start = 0;
        loop {
            let mut send = Sender {
                stream: &mut stream,
                stats,
            };
            start += sess.process(shared, stats, &input[start..], &mut out, &mut send);
            let full = out.len() >= OUT_HIGH_WATER || sess.take_yielded();
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                add(&stats.c.bytes_written, out.len() as u64);
                out.clear();
            }
            if sess.closing() {
                let _ = stream.shutdown().await;
                return;
            }
            if !full {
                break;
            }
            tokio::task::yield_now().await;
        }
        input.drain(..start);
        give_back(&mut input);
        give_back(&mut out);
        if shared.is_stopping() {
            return;
        }
    }
}

/// A connection's protocol state, once its protocol is known.
enum Session {
    Text(text::Session),
    Binary(binary::Session),
}

impl Session {
    fn text(fd: i32) -> Session {
        let mut s = text::Session::default();
        s.fd = fd;
        s.direct_reads = true;
        Session::Text(s)
    }

    fn binary(fd: i32) -> Session {
        let mut s = binary::Session::default();
        s.fd = fd;
        Session::Binary(s)
    }

    fn is_binary(&self) -> bool {
        matches!(self, Session::Binary(_))
    }

    /// Runs what `input` holds; the bytes consumed.
    fn process(
        &mut self,
        shared: &Shared,
        stats: &ThreadStats,
        input: &[u8],
        out: &mut Vec<u8>,
        send: &mut dyn SendNow,
    ) -> usize {
        match self {
            Session::Text(s) => text::process_sending(shared, stats, s, input, out, send),
            Session::Binary(s) => binary::process(shared, stats, s, input, out),
        }
    }

    /// Bytes the pending request needs from its start.
    fn want(&self) -> usize {
        match self {
            Session::Text(s) => s.want,
            Session::Binary(s) => s.want,
        }
    }

    fn closing(&self) -> bool {
        match self {
            Session::Text(s) => s.close,
            Session::Binary(s) => s.close,
        }
    }

    fn take_yielded(&mut self) -> bool {
        match self {
            Session::Text(s) => std::mem::take(&mut s.yielded),
            Session::Binary(s) => std::mem::take(&mut s.yielded),
        }
    }
}

/// Bytes that arrived after the part of a data block read into its item:
/// the rest of the block (a block can span chunks) goes into the item,
/// what follows it is returned, for the read buffer.
fn feed_direct<'b>(
    shared: &Shared,
    stats: &ThreadStats,
    s: &mut text::Session,
    mut bytes: &'b [u8],
    out: &mut Vec<u8>,
) -> &'b [u8] {
    while !bytes.is_empty() {
        let Some(buf) = text::direct_buf(shared, s) else {
            break;
        };
        let k = buf.len().min(bytes.len());
        if k == 0 {
            break;
        }
        buf[..k].copy_from_slice(&bytes[..k]);
        text::direct_filled(shared, stats, s, k, out);
        bytes = &bytes[k..];
    }
    bytes
}

/// The sockets a connection runs on.
pub trait Socket: AsyncRead + AsyncWrite + AsFd + Unpin {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

impl Socket for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        TcpStream::try_io(self, interest, f)
    }
}

impl Socket for UnixStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        UnixStream::try_io(self, interest, f)
    }
}

/// `readv` into `bufs` once the socket is readable. A read shorter than
/// asked for emptied the socket: its readiness is cleared then, so the
/// next read waits for an event instead of trying first (tokio's own
/// reads do the same).
fn poll_read_vectored<S: Socket>(
    s: &S,
    cx: &mut Context<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> Poll<io::Result<usize>> {
    let asked: usize = bufs.iter().map(|b| b.len()).sum();
    loop {
        match s.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        let mut got = None;
        let r = s.try_io(Interest::READABLE, || {
            let n = nix::sys::uio::readv(s.as_fd(), bufs).map_err(io::Error::from)?;
            got = Some(n);
            if n > 0 && n < asked {
                // Not an error: tells tokio to clear the readiness.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match (r, got) {
            (_, Some(n)) => return Poll::Ready(Ok(n)),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (r, None) => return Poll::Ready(r),
        }
    }
}

/// Writes to the socket without waiting (see [`SendNow`]).
struct Sender<'a, S> {
    stream: &'a mut S,
    stats: &'a ThreadStats,
}

impl<S: AsyncWrite + Unpin> SendNow for Sender<'_, S> {
    fn send_now(&mut self, bufs: &[io::IoSlice<'_>]) -> usize {
        // One non-blocking attempt: with no waker to wake, a socket that
        // would block just takes nothing now; the connection's next
        // `write_all` registers the real waker.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *self.stream).poll_write_vectored(&mut cx, bufs) {
            Poll::Ready(Ok(n)) => {
                add(&self.stats.c.bytes_written, n as u64);
                n
            }
            _ => 0,
        }
    }
}

/// Waits for `read` unless the client idles past `-o idle_timeout` or the
/// server stops. `None`: close the connection (also on EOF or an error).
async fn read_or_stop(
    read: impl Future<Output = io::Result<usize>>,
    idle: u32,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
    stats: &ThreadStats,
) -> Option<usize> {
    let read = async {
        if idle > 0 {
            let limit = std::time::Duration::from_secs(u64::from(idle));
            tokio::time::timeout(limit, read).await.ok()
        } else {
            Some(read.await)
        }
    };
    // The read first: a ready read costs no look at the shutdown signal
    // (which stays registered and wins as soon as the read waits).
    tokio::select! {
        biased;
        r = read => match r {
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => None, // closed or failed
            None => {
                crate::stats::bump(&stats.c.idle_kicks);
                None
            }
        },
        _ = stop.as_mut() => None,
    }
}

/// The connection's protocol state; a data block still being read into
/// its item when the connection ends gives its memory back.
struct SessionGuard<'a> {
    shared: &'a Shared,
    sess: Option<Session>,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if let Some(Session::Text(s)) = &mut self.sess {
            text::abandon(self.shared, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled() -> (usize, usize) {
        POOL.with_borrow(|p| (p.bufs.len(), p.bytes))
    }

    #[test]
    fn buffers_return_to_the_pool_only_when_empty_and_within_budget() {
        // Each test runs on its own thread: its pool starts empty.
        assert_eq!(pooled(), (0, 0));
        let mut a = take_buf();
        assert_eq!(a.capacity(), READ_CHUNK);
        a.extend_from_slice(b"partial command");
        give_back(&mut a);
        assert_eq!(pooled(), (0, 0), "a buffer holding bytes stays");
        assert!(!a.is_empty());
        a.clear();
        give_back(&mut a);
        assert_eq!(a.capacity(), 0, "the connection keeps nothing");
        assert_eq!(pooled(), (1, READ_CHUNK));
        // Reuse: the same allocation comes back.
        let mut b = take_buf();
        assert_eq!(pooled(), (0, 0));
        assert_eq!(b.capacity(), READ_CHUNK);
        // Too large for the pool: freed.
        b.reserve(POOL_MAX_BUF + 1);
        give_back(&mut b);
        assert_eq!(pooled(), (0, 0));
        // The byte budget holds.
        let mut bufs: Vec<Vec<u8>> = (0..(POOL_BYTES / READ_CHUNK + 8))
            .map(|_| take_buf())
            .collect();
        for buf in &mut bufs {
            give_back(buf);
        }
        assert_eq!(pooled(), (POOL_BYTES / READ_CHUNK, POOL_BYTES));
    }
}
