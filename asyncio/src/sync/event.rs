//! `Event`: a flag that tasks can wait for.
//!
//! # Invariants
//!
//! - `set()` wakes every waiter present at that moment; a later `clear()`
//!   does not un-wake them (each returns `Ok` when it runs).
//! - `wait()` on a set event returns at once, without suspending, and so
//!   takes no pending cancellation (asyncio's fast path).
//! - A waiter removes itself from the queue when it returns or is dropped;
//!   a cancelled waiter has nothing to pass on (every waiter is woken by a
//!   `set`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::wait_queue::WaitQueue;
use crate::cancel::error::CancelledError;

/// An event flag (`asyncio.Event`): tasks [`wait`](Event::wait) until
/// another task [`set`](Event::set)s it.
///
/// Single-threaded like the loop: share it between tasks by reference or
/// with an `Rc`. It can be created outside a running loop.
///
/// ```
/// use std::rc::Rc;
/// asyncio::run(async {
///     let event = Rc::new(asyncio::Event::new());
///     let e = event.clone();
///     let waiter = asyncio::create_task(async move {
///         e.wait().await?;
///         Ok::<_, asyncio::CancelledError>("went through")
///     });
///     asyncio::checkpoint().await.unwrap();
///     event.set();
///     assert_eq!(waiter.await.unwrap().unwrap(), "went through");
/// });
/// ```
pub struct Event {
    state: RefCell<State>,
}

struct State {
    value: bool,
    waiters: WaitQueue,
}

impl Event {
    /// A new event, not set.
    pub const fn new() -> Event {
        Event {
            state: RefCell::new(State {
                value: false,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.borrow().value
    }

    /// Sets the flag and wakes every task waiting for it. Tasks that call
    /// [`wait`](Event::wait) while it stays set do not suspend.
    pub fn set(&self) {
        let mut st = self.state.borrow_mut();
        if !st.value {
            st.value = true;
            st.waiters.wake_all();
        }
    }

    /// Clears the flag: later [`wait`](Event::wait)s suspend until the next
    /// `set`. Waiters already woken still return `Ok`.
    pub fn clear(&self) {
        self.state.borrow_mut().value = false;
    }

    /// Waits until the flag is set; returns at once if it already is.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let event = asyncio::Event::new();
    ///     event.set();
    ///     event.wait().await.unwrap(); // set: no suspension
    /// });
    /// ```
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` and leaves the event as it is; the
    /// waiter is gone from the queue. A cancellation delivered in the turn
    /// the event was set still wins.
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            key: None,
            done: false,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Event")
            .field("set", &st.value)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// The future of [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    key: Option<usize>,
    done: bool,
}

impl Future for EventWait<'_> {
    type Output = Result<(), CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut st = this.event.state.borrow_mut();
        let Some(key) = this.key else {
            assert!(!this.done, "EventWait polled after completion");
            if st.value {
                this.done = true;
                return Poll::Ready(Ok(()));
            }
            // A fresh waiter can only suspend: push it suspended.
            this.key = Some(st.waiters.push_waiting(cx));
            return Poll::Pending;
        };
        let r = std::task::ready!(st.waiters.poll(key, cx));
        this.key = None;
        this.done = true;
        Poll::Ready(r.map_err(|c| c.err))
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.event.state.borrow_mut().waiters.remove(key);
        }
    }
}
