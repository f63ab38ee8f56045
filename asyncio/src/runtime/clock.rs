//! The loop's clock: nanoseconds since the loop started.
//!
//! Timers are kept in nanoseconds from the loop's start (an `i64`, negative
//! for instants before it), so arming one and checking what is due are
//! integer additions and comparisons. On Linux the clock is read straight
//! from `CLOCK_MONOTONIC` (what `Instant::now()` reads there, without its
//! conversions); elsewhere it is `Instant::now()` less the loop's start.
//!
//! [`Instant`]s cross the boundary both ways — `EventLoop::time()`,
//! `sleep_until`, `timeout_at` — through the start instant `base`. The raw
//! clock's origin is read just *after* `base`, so an instant maps to its
//! nanosecond count at most one clock read late: a timer armed for an
//! instant never fires before it, and the loop's `time()` trails
//! `Instant::now()` by at most that much. A virtual clock is nanoseconds
//! only, exact both ways.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The clock of one loop.
pub(crate) struct Clock {
    /// Nanosecond 0.
    base: Instant,
    kind: Kind,
}

enum Kind {
    /// Real time: the raw clock's reading at nanosecond 0 (Linux), unused
    /// elsewhere.
    Real { raw_base: i64 },
    /// Virtual time: now, moved forward by the loop when it would wait.
    Virtual(Cell<i64>),
}

impl Clock {
    pub(crate) fn new(virtual_time: bool) -> Clock {
        let base = Instant::now();
        let kind = if virtual_time {
            Kind::Virtual(Cell::new(0))
        } else {
            Kind::Real {
                raw_base: raw_now(base),
            }
        };
        Clock { base, kind }
    }

    pub(crate) fn is_virtual(&self) -> bool {
        matches!(self.kind, Kind::Virtual(_))
    }

    /// Now, in nanoseconds since the loop's start.
    #[inline]
    pub(crate) fn now_ns(&self) -> i64 {
        match &self.kind {
            Kind::Real { raw_base } => raw_now(self.base) - raw_base,
            Kind::Virtual(now) => now.get(),
        }
    }

    /// Now, as an instant.
    pub(crate) fn now(&self) -> Instant {
        self.instant(self.now_ns())
    }

    /// The nanosecond count of `t`. Exact within 292 years of the loop's
    /// start; beyond, it saturates (such deadlines then fire in arming
    /// order).
    pub(crate) fn ns(&self, t: Instant) -> i64 {
        match t.checked_duration_since(self.base) {
            Some(d) => nanos(d),
            None => nanos(self.base.duration_since(t)).saturating_neg(),
        }
    }

    /// The instant of nanosecond count `ns` (see [`Clock::ns`]).
    pub(crate) fn instant(&self, ns: i64) -> Instant {
        Clock::instant_on(self.base, ns)
    }

    /// Nanosecond 0: with [`Clock::instant_on`], turns a nanosecond count
    /// into an instant later, without the clock.
    pub(crate) fn base(&self) -> Instant {
        self.base
    }

    /// The instant of nanosecond count `ns` on a clock whose nanosecond 0
    /// is `base`.
    pub(crate) fn instant_on(base: Instant, ns: i64) -> Instant {
        let d = Duration::from_nanos(ns.unsigned_abs());
        if ns >= 0 {
            base + d
        } else {
            base - d
        }
    }

    /// Virtual time only: moves the clock forward to `ns` (never back).
    pub(crate) fn advance_to(&self, ns: i64) {
        if let Kind::Virtual(now) = &self.kind {
            if ns > now.get() {
                now.set(ns);
            }
        }
    }
}

/// `d` in nanoseconds, saturating at `i64::MAX` (292 years).
#[inline]
pub(crate) fn nanos(d: Duration) -> i64 {
    // As `Duration::as_nanos`, without the 128-bit product.
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(i64::from(d.subsec_nanos()))
}

/// The raw clock's reading now.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn raw_now(_base: Instant) -> i64 {
    crate::sys::monotonic_ns()
}

/// The raw clock's reading now: elsewhere, nanoseconds since `base`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn raw_now(base: Instant) -> i64 {
    nanos(base.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_nanoseconds_round_trip() {
        for clock in [Clock::new(false), Clock::new(true)] {
            for ns in [
                0,
                1,
                999_999_999,
                1_000_000_000,
                7_123_456_789,
                -5,
                -3_000_000_001,
            ] {
                assert_eq!(clock.ns(clock.instant(ns)), ns);
            }
        }
    }

    #[test]
    fn nanos_saturates() {
        assert_eq!(nanos(Duration::from_millis(1500)), 1_500_000_000);
        assert_eq!(nanos(Duration::MAX), i64::MAX);
    }

    #[test]
    fn the_real_clock_never_runs_ahead_of_instants() {
        let clock = Clock::new(false);
        for _ in 0..1000 {
            let before = Instant::now();
            let ns = clock.now_ns();
            let after = Instant::now();
            // `now_ns` trails `Instant::now()` by at most one clock read,
            // and never leads it.
            assert!(clock.instant(ns) <= after);
            assert!(clock.ns(before) <= ns + 1_000_000, "off by more than 1 ms");
            let t = clock.now();
            assert!(t <= Instant::now());
        }
    }

    #[test]
    fn the_virtual_clock_moves_only_forward() {
        let clock = Clock::new(true);
        assert_eq!(clock.now_ns(), 0);
        clock.advance_to(5_000);
        clock.advance_to(3_000);
        assert_eq!(clock.now_ns(), 5_000);
        assert_eq!(clock.ns(clock.now()), 5_000);
    }
}
