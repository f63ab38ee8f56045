//! `get_running_loop()` and the loop's callback API.

use std::fmt;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::timers::{TimerAction, TimerKey};
use super::{context, Callback, Loop};
use crate::task::Task;

/// A handle to the event loop running on this thread (`!Send`: it belongs
/// to that thread), from [`get_running_loop`].
#[derive(Clone)]
pub struct EventLoop {
    lp: Rc<Loop>,
}

/// Returned by [`get_running_loop`] when no loop runs on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRunningLoop;

impl fmt::Display for NoRunningLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no running event loop on this thread; start one with asyncio::run(...) \
             and call this from a task",
        )
    }
}

impl std::error::Error for NoRunningLoop {}

/// The loop running on this thread, like `asyncio.get_running_loop()`.
///
/// ```
/// asyncio::run(async {
///     let lp = asyncio::get_running_loop().unwrap();
///     let t0 = lp.time();
///     assert!(lp.time() >= t0);
/// });
/// assert!(asyncio::get_running_loop().is_err());
/// ```
pub fn get_running_loop() -> Result<EventLoop, NoRunningLoop> {
    context::current_loop()
        .map(|lp| EventLoop { lp })
        .ok_or(NoRunningLoop)
}

impl EventLoop {
    /// The loop itself, for the crate's other modules.
    pub(crate) fn inner(&self) -> &Rc<Loop> {
        &self.lp
    }

    /// The loop's clock (virtual on a virtual-time runner).
    ///
    /// On real time it is the monotonic clock `Instant::now()` reads,
    /// trailing it by at most the time of one clock read: a deadline given
    /// as an `Instant` (`sleep_until`, `timeout_at`, `call_at`) never
    /// fires before that instant.
    pub fn time(&self) -> Instant {
        self.lp.now()
    }

    /// Whether the loop runs on virtual time.
    pub fn is_virtual_time(&self) -> bool {
        self.lp.is_virtual()
    }

    /// Schedules `f` to run on the next turn of the loop, after everything
    /// already ready (FIFO).
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        Handle {
            cb: self.lp.call_soon(Box::new(f)),
        }
    }

    /// Schedules `f` to run `delay` from now.
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
        self.call_at(self.lp.now() + delay, f)
    }

    /// Schedules `f` to run at `when` (the loop's clock). Timers with equal
    /// deadlines run in the order they were scheduled.
    pub fn call_at(&self, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
        let key = self
            .lp
            .arm(when, TimerAction::Callback(Box::new(Box::new(f))));
        TimerHandle {
            lp: Rc::downgrade(&self.lp),
            key,
            when,
        }
    }

    /// [`create_task`](crate::create_task) on this loop.
    pub fn create_task<F: Future + 'static>(&self, fut: F) -> Task<F::Output> {
        self.lp.spawn(fut)
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("virtual_time", &self.lp.is_virtual())
            .finish()
    }
}

/// A callback scheduled with [`EventLoop::call_soon`].
pub struct Handle {
    cb: Rc<Callback>,
}

impl Handle {
    /// Prevents the callback from running, if it has not run yet.
    pub fn cancel(&self) {
        self.cb.cancelled.set(true);
    }

    /// Whether [`Handle::cancel`] was called.
    pub fn cancelled(&self) -> bool {
        self.cb.cancelled.get()
    }
}

/// A callback scheduled with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`].
pub struct TimerHandle {
    lp: Weak<Loop>,
    key: TimerKey,
    when: Instant,
}

impl TimerHandle {
    /// Disarms the timer; `true` if it had not run yet. A timer that became
    /// due this turn but has not run is still stopped.
    pub fn cancel(&self) -> bool {
        self.lp.upgrade().is_some_and(|lp| lp.disarm(self.key))
    }

    /// When the callback is (or was) due.
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Whether the timer is still armed.
    pub fn is_armed(&self) -> bool {
        self.lp
            .upgrade()
            .is_some_and(|lp| lp.timers.borrow().contains(self.key))
    }
}
