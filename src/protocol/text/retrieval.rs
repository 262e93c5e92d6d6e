//! get, gets, gat, gats: `get <key>*`, `gat <exptime> <key>*`.

use std::io::IoSlice;

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtol};
use super::{Ctx, OUT_HIGH_WATER, Step};
use crate::protocol::SendNow;
use crate::stats::bump;
use crate::storage::store::PREFETCH_KEYS;
use crate::storage::{ItemView, Lookup};

pub fn get(ctx: &mut Ctx<'_>, t: &Tokens<'_>, with_cas: bool, touch: bool) -> Step {
    let mut first = 1;
    let exptime = if touch {
        let Some(e) = strtol(t.get(1)) else {
            ctx.reply(b"CLIENT_ERROR invalid exptime argument");
            return Step::Done(0);
        };
        first = 2;
        Some(ctx.store().clock.realtime(e as i64))
    } else {
        None
    };
    let resume = ctx.sess.get_resume;
    // A key too long drops this get's replies (below): none may have gone
    // to the socket already.
    let (mut keys_left, mut send) = (0, true);
    for k in t.keys_from(first).skip(resume) {
        keys_left += 1;
        send &= k.len() <= KEY_MAX_LENGTH;
    }
    let mut keys = t.keys_from(first).skip(resume);
    let mut answered = resume;
    let mut ended = false;
    // Keys go in windows: a multi-key get loads a window's index buckets
    // and items all at once, then answers each key from cache.
    let mut window = [&b""[..]; PREFETCH_KEYS];
    loop {
        let n = window
            .iter_mut()
            .zip(keys.by_ref())
            .map(|(slot, key)| *slot = key)
            .count();
        if n == 0 {
            break;
        }
        if n > 1 {
            ctx.store().prefetch(&window[..n]);
        }
        for &key in &window[..n] {
            if key.len() > KEY_MAX_LENGTH {
                // memcached drops every reply not yet written, not only
                // this get's: those since its last get.
                ctx.out.truncate(ctx.sess.written_mark);
                ctx.sess.get_resume = 0;
                ctx.reply(b"CLIENT_ERROR bad command line format");
                return Step::Done(0);
            }
            keys_left -= 1;
            let last = keys_left == 0;
            ended = lookup(ctx, key, with_cas, exptime, send, last);
            answered += 1;
            if !last && ctx.out.len() >= OUT_HIGH_WATER {
                ctx.sess.get_resume = answered;
                return Step::Flush;
            }
        }
    }
    ctx.sess.get_resume = 0;
    if ctx.verbose {
        ctx.log('>', b"END");
    }
    if !ended {
        ctx.out.extend_from_slice(END);
    }
    ctx.sess.written_mark = ctx.out.len();
    Step::Done(0)
}

const END: &[u8] = b"END\r\n";

/// Answers one key. `last`: the get's `END` follows; a value sent from its
/// item takes it along (one `writev` for the whole reply, as memcached's
/// one `sendmsg`). Returns whether it did.
fn lookup(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    with_cas: bool,
    exptime: Option<u32>,
    send: bool,
    last: bool,
) -> bool {
    let s = ctx.stats;
    // gat/gats count as touches, not gets (memcached 1.6.18).
    bump(if exptime.is_some() {
        &s.c.cmd_touch
    } else {
        &s.c.cmd_get
    });
    let out = &mut *ctx.out;
    let sender = &mut *ctx.send;
    let mark = &mut ctx.sess.written_mark;
    let mut ended = false;
    let found = ctx.shared.store.get(key, exptime, |item| {
        if send && item.value_len() >= SEND_MIN {
            let trailer: &[u8] = if last { b"\r\nEND\r\n" } else { b"\r\n" };
            let sent = send_value(out, item, with_cas, trailer, sender);
            *mark = mark.saturating_sub(sent);
            ended = last;
        } else {
            write_value(out, item, with_cas);
        }
        item.class
    });
    ctx.shared.detail_get(key, found.is_ok());
    if ctx.verbose && found.is_ok() {
        ctx.log('>', &[b"sending key ", key].concat());
    }
    match found {
        Ok(class) if exptime.is_some() => bump(&s.class[class].touch_hits),
        Ok(class) => bump(&s.class[class].get_hits),
        Err(_) if exptime.is_some() => bump(&s.c.touch_misses),
        Err(why) => {
            bump(&s.c.get_misses);
            match why {
                Lookup::Expired => bump(&s.c.get_expired),
                Lookup::Flushed => bump(&s.c.get_flushed),
                _ => {}
            }
        }
    }
    ended
}

/// Values from this size on are written from their items (see
/// [`SendNow`]); copying smaller ones costs less than a system call.
const SEND_MIN: usize = 16 * 1024;
/// Pieces of one value sent at once (a value spans few chunks: 2 for the
/// largest at the default `-I 1m`).
const SEND_PIECES: usize = 8;

/// [`write_value`], but sends what `out` holds, the reply and its value
/// straight from the item's memory, and `trailer` (`\r\n`, and the get's
/// `END` when it is the last key) in one `writev`; only what the socket
/// did not take is copied into `out`.
/// Returns how many bytes it took from the front of `out`.
fn send_value(
    out: &mut Vec<u8>,
    item: &ItemView<'_>,
    with_cas: bool,
    trailer: &[u8],
    send: &mut dyn SendNow,
) -> usize {
    write_header(out, item, with_cas, 0);
    let mut pieces = [&b""[..]; SEND_PIECES + 1];
    let mut n = 0;
    item.value(|piece| {
        if let Some(slot) = pieces.get_mut(n) {
            *slot = piece;
        }
        n += 1;
    });
    if n > SEND_PIECES {
        item.value(|piece| out.extend_from_slice(piece));
        out.extend_from_slice(trailer);
        return 0;
    }
    pieces[n] = trailer;
    let pieces = &pieces[..=n];
    let mut iov = [IoSlice::new(&[]); SEND_PIECES + 2];
    iov[0] = IoSlice::new(out);
    for (slot, piece) in iov[1..].iter_mut().zip(pieces) {
        *slot = IoSlice::new(piece);
    }
    let mut sent = send.send_now(&iov[..=pieces.len()]);
    // Keep the rest, in order, for the connection to write.
    let from_out = sent.min(out.len());
    out.drain(..from_out);
    sent -= from_out;
    for piece in pieces {
        let skip = sent.min(piece.len());
        sent -= skip;
        out.extend_from_slice(&piece[skip..]);
    }
    from_out
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`
pub fn write_value(out: &mut Vec<u8>, item: &ItemView<'_>, with_cas: bool) {
    write_header(out, item, with_cas, item.value_len());
    item.value(|part| out.extend_from_slice(part));
    out.extend_from_slice(b"\r\n");
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`, with room for `extra` more.
fn write_header(out: &mut Vec<u8>, item: &ItemView<'_>, with_cas: bool, extra: usize) {
    let mut num = itoa::Buffer::new();
    out.reserve(item.key.len() + extra + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(item.key);
    out.push(b' ');
    out.extend_from_slice(num.format(item.flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(num.format(item.value_len()).as_bytes());
    if with_cas {
        out.push(b' ');
        out.extend_from_slice(num.format(item.cas).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use super::super::{Session, process, process_sending};
    use crate::config::Config;
    use crate::protocol::SendNow;
    use crate::server::Shared;
    use crate::stats::ThreadStats;

    /// A socket that takes at most `room` bytes per call.
    struct Socket {
        room: usize,
        got: Vec<u8>,
        calls: usize,
    }

    impl SendNow for Socket {
        fn send_now(&mut self, bufs: &[IoSlice<'_>]) -> usize {
            self.calls += 1;
            let before = self.got.len();
            for b in bufs {
                let n = b.len().min(self.room - (self.got.len() - before));
                self.got.extend_from_slice(&b[..n]);
            }
            self.got.len() - before
        }
    }

    /// Whatever the socket takes, what it got followed by what is left in
    /// the output buffer is the reply, byte for byte.
    #[test]
    fn large_values_sent_from_items_in_any_split() {
        let shared = Shared::new(Config::default(), Vec::new());
        let stats = ThreadStats::default();
        let value: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut sess = Session::default();
        let mut out = Vec::new();
        let set = [
            format!("set big 3 0 {}\r\n", value.len()).as_bytes(),
            &value,
            b"\r\n",
        ]
        .concat();
        let n = process(&shared, &stats, &mut sess, &set, &mut out);
        assert_eq!((n, &out[..]), (set.len(), &b"STORED\r\n"[..]));
        let request = b"get small\r\nget big big\r\n";
        let mut expected = b"END\r\n".to_vec();
        for _ in 0..2 {
            expected.extend_from_slice(format!("VALUE big 3 {}\r\n", value.len()).as_bytes());
            expected.extend_from_slice(&value);
            expected.extend_from_slice(b"\r\n");
        }
        expected.extend_from_slice(b"END\r\n");
        for room in [0, 1, 5, 17, 4096, 299_999, 300_020, 600_000, usize::MAX / 2] {
            let mut socket = Socket {
                room,
                got: Vec::new(),
                calls: 0,
            };
            let mut out = Vec::new();
            let n = process_sending(&shared, &stats, &mut sess, request, &mut out, &mut socket);
            assert_eq!(n, request.len());
            assert_eq!(
                socket.got.is_empty(),
                room == 0,
                "values went to the socket"
            );
            socket.got.extend_from_slice(&out);
            assert!(socket.got == expected, "socket room {room}");
        }
    }

    /// memcached answers `get <key>` with one `sendmsg`: so does memcrab
    /// for a value sent from its item, `END` included, unless a key after
    /// it still has to be answered.
    #[test]
    fn a_large_value_and_its_end_go_in_one_writev() {
        let shared = Shared::new(Config::default(), Vec::new());
        let stats = ThreadStats::default();
        let value = vec![b'v'; 20_000];
        let mut sess = Session::default();
        let mut out = Vec::new();
        let set = [&b"set big 0 0 20000\r\n"[..], &value, b"\r\n"].concat();
        process(&shared, &stats, &mut sess, &set, &mut out);
        assert_eq!(out, b"STORED\r\n");
        let reply = [&b"VALUE big 0 20000\r\n"[..], &value, b"\r\n"].concat();
        for (request, sent, left) in [
            (&b"get big\r\n"[..], 1, &b""[..]),
            (b"get big big\r\n", 2, b""),
            (b"get big nope\r\n", 1, b"END\r\n"),
        ] {
            let mut socket = Socket {
                room: usize::MAX / 2,
                got: Vec::new(),
                calls: 0,
            };
            let mut out = Vec::new();
            process_sending(&shared, &stats, &mut sess, request, &mut out, &mut socket);
            let values = reply.repeat(sent);
            let end = if left.is_empty() {
                &b"END\r\n"[..]
            } else {
                b""
            };
            assert_eq!(socket.calls, sent, "{request:?}");
            assert!(socket.got == [&values[..], end].concat(), "{request:?}");
            assert_eq!(out, left, "{request:?}");
        }
    }
}
