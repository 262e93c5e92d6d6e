//! One client connection: read what arrived, answer every complete command,
//! write the answers in one go.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Shared;
use crate::config::Protocol;
use crate::protocol::binary;
use crate::protocol::text::{self, OUT_HIGH_WATER};
use crate::stats::{ThreadStats, add};

/// Read buffer kept per connection between requests.
const READ_CHUNK: usize = 16 * 1024;
/// A buffer grown beyond this (large values, long pipelines) is shrunk
/// back once that many batches in a row did not need it: shrinking after
/// every large request would reallocate and page-fault on every one.
const KEEP_CAPACITY: usize = 64 * 1024;
const SHRINK_AFTER: u32 = 64;

pub async fn serve<S>(
    mut stream: S,
    fd: i32,
    shared: &Shared,
    stats: &ThreadStats,
    last_cmd: &AtomicU32,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
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
    let mut small_batches = 0u32;
    loop {
        // A large data block goes straight into its item; anything else
        // into the read buffer, with room for what the pending command
        // still needs, or a chunk.
        let n = if let Some(buf) = sess.as_mut().and_then(|s| s.direct_buf(shared)) {
            read_or_stop(stream.read(buf), idle, &mut stop, stats).await
        } else {
            let want = sess.as_ref().map_or(0, Session::want);
            let room = want.saturating_sub(input.len()).max(READ_CHUNK / 4);
            if input.capacity() - input.len() < room {
                input.reserve(room.max(READ_CHUNK));
            }
            read_or_stop(stream.read_buf(&mut input), idle, &mut stop, stats).await
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
        if let Session::Text(s) = sess
            && text::direct_buf(shared, s).is_some()
        {
            text::direct_filled(shared, stats, s, n, &mut out);
        }
        let mut start = 0;
        let mut peak = input.len();
        loop {
            start += sess.process(shared, stats, &input[start..], &mut out);
            let full = out.len() >= OUT_HIGH_WATER || sess.take_yielded();
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                add(&stats.c.bytes_written, out.len() as u64);
                peak = peak.max(out.len());
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
        small_batches = if peak > KEEP_CAPACITY {
            0
        } else {
            small_batches + 1
        };
        if small_batches >= SHRINK_AFTER {
            if input.is_empty() && input.capacity() > KEEP_CAPACITY {
                input.shrink_to(READ_CHUNK);
            }
            if out.capacity() > KEEP_CAPACITY {
                out.shrink_to(READ_CHUNK);
            }
        }
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

    /// Where a large data block being read straight into its item goes.
    fn direct_buf<'s>(&'s mut self, shared: &'s Shared) -> Option<&'s mut [u8]> {
        match self {
            Session::Text(s) => text::direct_buf(shared, s),
            Session::Binary(_) => None,
        }
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
    ) -> usize {
        match self {
            Session::Text(s) => text::process(shared, stats, s, input, out),
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
    tokio::select! {
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
