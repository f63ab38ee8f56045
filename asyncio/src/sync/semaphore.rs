//! `Semaphore` and `BoundedSemaphore`.
//!
//! # Invariants (asyncio's `Semaphore`)
//!
//! - `value` counts the permits nobody holds or has been handed. A release
//!   increments it and hands one permit straight to the first waiter that is
//!   not done, decrementing on its behalf: the woken waiter owns a permit
//!   before it runs.
//! - Strict FIFO: the semaphore is *locked* when `value` is 0 or some waiter
//!   is live, and `acquire` takes the fast path only when it is not locked,
//!   so a newcomer never overtakes a waiter (asyncio's
//!   `test_acquire_fifo_order_*`).
//! - A woken waiter that is cancelled (or dropped) gives its permit back;
//!   after any acquire ends, successful or not, waiters keep being woken
//!   while `value > 0` — so no permit is ever stranded.
//! - `BoundedSemaphore` never lets `value` exceed its initial value: such a
//!   release is an error value ([`ReleasedTooManyTimes`]).

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::wait_queue::WaitQueue;
use crate::cancel::error::CancelledError;

struct State {
    value: usize,
    bound: Option<usize>,
    waiters: WaitQueue,
}

impl State {
    /// asyncio's `Semaphore.locked()`.
    fn locked(&self) -> bool {
        self.value == 0 || self.waiters.has_live()
    }

    /// Hands permits to waiters while any are free.
    fn wake_more(&mut self) {
        while self.value > 0 && self.waiters.wake_next() {
            self.value -= 1;
        }
    }

    fn release(&mut self) -> Result<(), ReleasedTooManyTimes> {
        if self.bound.is_some_and(|b| self.value >= b) {
            return Err(ReleasedTooManyTimes);
        }
        self.value += 1;
        if self.waiters.wake_next() {
            self.value -= 1;
        }
        Ok(())
    }
}

/// The shared machinery of both semaphores.
struct Core {
    state: RefCell<State>,
}

impl Core {
    const fn new(value: usize, bound: Option<usize>) -> Core {
        Core {
            state: RefCell::new(State {
                value,
                bound,
                waiters: WaitQueue::new(),
            }),
        }
    }

    fn acquire(&self) -> SemaphoreAcquire<'_> {
        SemaphoreAcquire {
            core: self,
            key: None,
            done: false,
        }
    }

    fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut st = self.state.borrow_mut();
        if st.locked() {
            return None;
        }
        st.value -= 1;
        Some(SemaphorePermit { core: self })
    }

    fn locked(&self) -> bool {
        self.state.borrow().locked()
    }

    fn value(&self) -> usize {
        self.state.borrow().value
    }

    fn release(&self) -> Result<(), ReleasedTooManyTimes> {
        self.state.borrow_mut().release()
    }

    fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct(name)
            .field("value", &st.value)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// A semaphore (`asyncio.Semaphore`): a counter of permits; acquiring takes
/// one, waiting in FIFO order while none is free.
///
/// [`acquire`](Semaphore::acquire) returns a [`SemaphorePermit`] that
/// releases on drop (Python's `async with sem:`); [`release`](Semaphore::release)
/// adds a permit by hand, as Python's `release()` does — a plain semaphore
/// has no upper bound. Single-threaded like the loop: share it by reference
/// or with an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use std::cell::Cell;
/// asyncio::run(async {
///     let sem = Rc::new(asyncio::Semaphore::new(2));
///     let running = Rc::new(Cell::new(0));
///     let mut tasks = Vec::new();
///     for _ in 0..5 {
///         let (sem, running) = (sem.clone(), running.clone());
///         tasks.push(asyncio::create_task(async move {
///             let _permit = sem.acquire().await?;
///             running.set(running.get() + 1);
///             assert!(running.get() <= 2);
///             asyncio::checkpoint().await?;
///             running.set(running.get() - 1);
///             Ok::<_, asyncio::CancelledError>(())
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap().unwrap();
///     }
/// });
/// ```
pub struct Semaphore {
    core: Core,
}

impl Semaphore {
    /// A semaphore with `value` free permits (Python's default is 1).
    pub const fn new(value: usize) -> Semaphore {
        Semaphore {
            core: Core::new(value, None),
        }
    }

    /// Waits for a permit and takes it.
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` **without a permit**. If a release had
    /// already handed this waiter a permit, the permit goes back to the
    /// semaphore and on to the next waiter.
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        self.core.acquire()
    }

    /// Takes a permit if [`acquire`](Semaphore::acquire) would take one
    /// without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core.try_acquire()
    }

    /// Adds a permit, handing it to the first waiter if there is one.
    pub fn release(&self) {
        let _ = self.core.release();
    }

    /// Whether an `acquire` would have to wait: no free permit, or waiters
    /// ahead (FIFO).
    pub fn locked(&self) -> bool {
        self.core.locked()
    }

    /// The number of free permits.
    pub fn value(&self) -> usize {
        self.core.value()
    }
}

impl Default for Semaphore {
    /// A semaphore with one permit, as in Python.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt("Semaphore", f)
    }
}

/// A semaphore that refuses to be released above its initial value
/// (`asyncio.BoundedSemaphore`).
///
/// ```
/// asyncio::run(async {
///     let sem = asyncio::BoundedSemaphore::new(1);
///     let permit = sem.acquire().await.unwrap();
///     drop(permit); // back to 1
///     assert_eq!(sem.release(), Err(asyncio::ReleasedTooManyTimes));
/// });
/// ```
pub struct BoundedSemaphore {
    core: Core,
}

impl BoundedSemaphore {
    /// A semaphore with `value` free permits, and `value` as its bound.
    pub const fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            core: Core::new(value, Some(value)),
        }
    }

    /// Waits for a permit and takes it.
    ///
    /// # Cancellation
    /// As [`Semaphore::acquire`]: no permit is taken, and one already handed
    /// to this waiter goes on to the next.
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        self.core.acquire()
    }

    /// Takes a permit if [`acquire`](BoundedSemaphore::acquire) would take
    /// one without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core.try_acquire()
    }

    /// Adds a permit by hand; an error if every permit is already free.
    pub fn release(&self) -> Result<(), ReleasedTooManyTimes> {
        self.core.release()
    }

    /// Whether an `acquire` would have to wait.
    pub fn locked(&self) -> bool {
        self.core.locked()
    }

    /// The number of free permits.
    pub fn value(&self) -> usize {
        self.core.value()
    }
}

impl Default for BoundedSemaphore {
    /// A bounded semaphore with one permit, as in Python.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt("BoundedSemaphore", f)
    }
}

/// [`BoundedSemaphore::release`] would raise the count above the initial
/// value (Python's `ValueError: BoundedSemaphore released too many times`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleasedTooManyTimes;

impl fmt::Display for ReleasedTooManyTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedSemaphore released too many times")
    }
}

impl Error for ReleasedTooManyTimes {}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it
/// releases the permit.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    core: &'a Core,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken without a guard (Python's bare `acquire()`):
    /// give it back later with `release()`.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    /// Releases the permit. On a [`BoundedSemaphore`] already at its bound
    /// (because of an extra `release()` by hand) this releases nothing.
    fn drop(&mut self) {
        let _ = self.core.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// The future of [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct SemaphoreAcquire<'a> {
    core: &'a Core,
    key: Option<usize>,
    done: bool,
}

impl<'a> Future for SemaphoreAcquire<'a> {
    type Output = Result<SemaphorePermit<'a>, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let core = this.core;
        let mut st = core.state.borrow_mut();
        let Some(key) = this.key else {
            assert!(!this.done, "SemaphoreAcquire polled after completion");
            if !st.locked() {
                st.value -= 1;
                this.done = true;
                return Poll::Ready(Ok(SemaphorePermit { core }));
            }
            // A fresh waiter can only suspend: push it suspended.
            this.key = Some(st.waiters.push_waiting(cx));
            return Poll::Pending;
        };
        let r = std::task::ready!(st.waiters.poll(key, cx));
        this.key = None;
        this.done = true;
        let r = match r {
            // The permit was handed over by the release that woke us.
            Ok(()) => Ok(SemaphorePermit { core }),
            Err(c) => {
                if c.woken {
                    st.value += 1;
                }
                Err(c.err)
            }
        };
        st.wake_more();
        Poll::Ready(r)
    }
}

impl Drop for SemaphoreAcquire<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.core.state.borrow_mut();
            if st.waiters.remove(key) {
                st.value += 1;
            }
            st.wake_more();
        }
    }
}
