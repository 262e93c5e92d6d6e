//! The server's clock: whole seconds since start-up, as memcached keeps it,
//! and the conversion of client expiry times into that clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Expiry times up to 30 days are relative; larger ones are Unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Relative time starts here, so that 1 can mean "already expired" and 0 "never".
const START: u32 = 2;

pub struct Clock {
    started: Instant,
    /// Unix time of relative time 0.
    process_started: i64,
    now: AtomicU32,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Clock {
            started: Instant::now(),
            process_started: unix - START as i64,
            now: AtomicU32::new(START),
        }
    }

    /// Seconds since start (plus the offset); cheap, read on every command.
    pub fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// Advances the clock; the maintenance thread calls it often.
    pub fn tick(&self) {
        self.tick_to(self.due());
    }

    /// What the clock reads once it is advanced.
    pub fn due(&self) -> u32 {
        self.started.elapsed().as_secs() as u32 + START
    }

    /// Advances the clock to `secs` (from [`Clock::due`]).
    pub fn tick_to(&self, secs: u32) {
        self.now.store(secs, Ordering::Relaxed);
    }

    /// Moves the clock by hand (tests of expiry).
    #[cfg(test)]
    pub fn advance(&self, secs: u32) {
        self.now.fetch_add(secs, Ordering::Relaxed);
    }

    /// The Unix time now, by the server's clock.
    pub fn unix_now(&self) -> i64 {
        self.process_started + self.now() as i64
    }

    pub fn process_started(&self) -> i64 {
        self.process_started
    }

    /// memcached's `realtime()`: a client exptime as relative time; 0 never
    /// expires, negative or past absolute times are already expired (1).
    pub fn realtime(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            return 0;
        }
        if exptime < 0 {
            return 1;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime <= self.process_started {
                return 1;
            }
            return (exptime - self.process_started).min(u32::MAX as i64) as u32;
        }
        (exptime + self.now() as i64).min(u32::MAX as i64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_forms() {
        let c = Clock::new();
        let now = c.now();
        assert_eq!(c.realtime(0), 0);
        assert_eq!(c.realtime(-1), 1);
        assert_eq!(c.realtime(10), now + 10);
        assert_eq!(
            c.realtime(REALTIME_MAXDELTA),
            now + REALTIME_MAXDELTA as u32
        );
        assert_eq!(
            c.realtime(REALTIME_MAXDELTA + 1),
            1,
            "an absolute time in 1970"
        );
        assert_eq!(c.realtime(c.unix_now() + 100), now + 100);
    }
}
