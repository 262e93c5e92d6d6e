//! Wire protocols: the text protocol (classic and meta commands) and the
//! binary protocol, over the same store and counters. A connection speaks
//! one of them, chosen by `-B` or by its first byte.

use std::io::IoSlice;

pub mod base64;
pub mod binary;
pub mod text;

/// Keys of the items that replies not yet written refer to. memcached
/// holds a reference to such an item (binary gets and touches, meta `mg`)
/// until the reply is written, at the end of a batch of input or at a
/// `noop`/`mn`; an incr/decr of a held item makes a new item instead of
/// rewriting the number in place, which shows in its padding.
#[derive(Default)]
pub struct Held(Vec<u64>);

impl Held {
    pub fn hold(&mut self, key: &[u8]) {
        self.0.push(key_hash(key));
    }

    pub fn holds(&self, key: &[u8]) -> bool {
        !self.0.is_empty() && self.0.contains(&key_hash(key))
    }

    /// The replies were written.
    pub fn release(&mut self) {
        self.0.clear();
    }
}

/// FNV-1a; a collision only costs a number its padding.
fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes to the client's socket now, without waiting: what a reply of a
/// large value uses to send the value straight from its item (under the
/// item's lock) instead of copying it into the output buffer, as memcached
/// sends values from items. Returns the bytes written: 0 if the socket
/// would block (or failed: the connection's next write reports that).
pub trait SendNow {
    fn send_now(&mut self, bufs: &[IoSlice<'_>]) -> usize;
}

/// For callers without a socket (tests, fuzzing): everything is copied.
pub struct NoSend;

impl SendNow for NoSend {
    fn send_now(&mut self, _: &[IoSlice<'_>]) -> usize {
        0
    }
}
