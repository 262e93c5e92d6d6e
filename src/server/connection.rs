//! One client connection: read what arrived, answer every complete command,
//! write the answers in one go.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Shared;
use crate::protocol::text::{self, OUT_HIGH_WATER, Session};
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
    let mut sess = SessionGuard {
        shared,
        sess: Session::default(),
    };
    let sess = &mut sess.sess;
    sess.fd = fd;
    sess.direct_reads = true;
    // -B ascii (and -Y) connections are ascii from the start; others are
    // negotiated on their first bytes.
    let mut negotiating = shared.config.protocol != crate::config::Protocol::Ascii;
    if shared.verbosity() >= 2 {
        if negotiating {
            eprintln!("<{fd} new auto-negotiating client connection");
        } else {
            eprintln!("<{fd} new ascii client connection.");
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
        let n = if let Some(buf) = text::direct_buf(shared, sess) {
            read_or_stop(stream.read(buf), idle, &mut stop, stats).await
        } else {
            let room = sess.want.saturating_sub(input.len()).max(READ_CHUNK / 4);
            if input.capacity() - input.len() < room {
                input.reserve(room.max(READ_CHUNK));
            }
            read_or_stop(stream.read_buf(&mut input), idle, &mut stop, stats).await
        };
        let Some(n) = n else {
            return;
        };
        if std::mem::take(&mut negotiating) && shared.verbosity() >= 2 {
            eprintln!("{fd}: Client using the ascii protocol");
        }
        add(&stats.c.bytes_read, n as u64);
        last_cmd.store(shared.store.clock.now(), Ordering::Relaxed);
        if text::direct_buf(shared, sess).is_some() {
            text::direct_filled(shared, stats, sess, n, &mut out);
        }
        let mut start = 0;
        let mut peak = input.len();
        loop {
            start += text::process(shared, stats, sess, &input[start..], &mut out);
            let full = out.len() >= OUT_HIGH_WATER || std::mem::take(&mut sess.yielded);
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                add(&stats.c.bytes_written, out.len() as u64);
                peak = peak.max(out.len());
                out.clear();
            }
            if sess.close {
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
    sess: Session,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        text::abandon(self.shared, &mut self.sess);
    }
}
