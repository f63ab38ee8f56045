//! `Lock`: a FIFO-fair mutual-exclusion lock with a guard.
//!
//! # Invariants (asyncio's `Lock`)
//!
//! - Fast path: `acquire` takes the lock without suspending when it is
//!   unlocked and no waiter is live (every queued waiter, if any, is
//!   cancelled). Such an acquire takes no pending cancellation.
//! - No barging: releasing wakes the head waiter and leaves the lock
//!   unlocked until that waiter runs; meanwhile `locked()` is `false`, yet a
//!   newcomer queues behind the woken waiter, because it is live.
//! - A waiter that leaves without the lock — cancelled while queued, or
//!   after being woken, or dropped — removes itself and, if the lock is
//!   unlocked, wakes the new head. So a release is never lost and waiters
//!   are served in FIFO order (asyncio's `test_cancel_race`,
//!   `test_cancel_release_race`, `test_finished_waiter_cancelled`).
//! - The lock is held exactly while a [`LockGuard`] that holds it exists.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::wait_queue::WaitQueue;
use crate::cancel::error::CancelledError;

/// A mutual-exclusion lock (`asyncio.Lock`), fair: tasks get it in the
/// order they asked for it.
///
/// [`acquire`](Lock::acquire) returns a [`LockGuard`]; dropping the guard
/// releases the lock (Python's `async with lock:`). Single-threaded like the
/// loop: share it by reference or with an `Rc`. It guards no data of its
/// own — put the data in a `RefCell` beside it, or use it to order
/// side effects, as in Python.
///
/// ```
/// use std::rc::Rc;
/// asyncio::run(async {
///     let lock = Rc::new(asyncio::Lock::new());
///     let l = lock.clone();
///     let guard = lock.acquire().await.unwrap();
///     let other = asyncio::create_task(async move {
///         let _guard = l.acquire().await?; // waits for the release below
///         Ok::<_, asyncio::CancelledError>(())
///     });
///     asyncio::checkpoint().await.unwrap();
///     assert!(lock.locked() && !other.done());
///     drop(guard);
///     other.await.unwrap().unwrap();
///     assert!(!lock.locked());
/// });
/// ```
pub struct Lock {
    state: RefCell<State>,
}

struct State {
    locked: bool,
    waiters: WaitQueue,
}

impl Lock {
    /// A new, unlocked lock.
    pub const fn new() -> Lock {
        Lock {
            state: RefCell::new(State {
                locked: false,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Whether the lock is held. Right after a release it reads `false`
    /// even though a woken waiter is about to take it.
    pub fn locked(&self) -> bool {
        self.state.borrow().locked
    }

    /// Waits for the lock and takes it, in FIFO order with other waiters.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lock = asyncio::Lock::new();
    ///     let guard = lock.acquire().await.unwrap(); // free: no suspension
    ///     assert!(lock.locked());
    ///     drop(guard);
    ///     assert!(!lock.locked());
    /// });
    /// ```
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` **without the lock**: the waiter has
    /// left the queue, and if it had already been woken by a release, the
    /// next waiter is woken in its place. A cancellation delivered in the
    /// turn the lock was released to this waiter still wins.
    pub fn acquire(&self) -> LockAcquire<'_> {
        LockAcquire {
            lock: self,
            key: None,
            done: false,
        }
    }

    /// Takes the lock if [`acquire`](Lock::acquire) would take it without
    /// waiting (unlocked, and no live waiter ahead).
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.take_now().then(|| LockGuard::new(self))
    }

    /// The fast path: unlocked and no live waiter.
    pub(super) fn take_now(&self) -> bool {
        let mut st = self.state.borrow_mut();
        if !st.locked && !st.waiters.has_live() {
            st.locked = true;
            true
        } else {
            false
        }
    }

    pub(super) fn release(&self) {
        let mut st = self.state.borrow_mut();
        debug_assert!(st.locked, "released an unlocked lock");
        st.locked = false;
        st.waiters.wake_first();
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Lock")
            .field("locked", &st.locked)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it releases the lock and wakes the next
/// waiter.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(super) lock: &'a Lock,
    /// `false` only while a `Condition::wait` borrowing this guard has
    /// released the lock (or after such a wait was dropped mid-way and
    /// could not take it back).
    pub(super) held: bool,
}

impl<'a> LockGuard<'a> {
    fn new(lock: &'a Lock) -> LockGuard<'a> {
        LockGuard { lock, held: true }
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.lock.release();
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("held", &self.held)
            .finish()
    }
}

/// The future of [`Lock::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct LockAcquire<'a> {
    lock: &'a Lock,
    key: Option<usize>,
    done: bool,
}

impl<'a> Future for LockAcquire<'a> {
    type Output = Result<LockGuard<'a>, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock;
        let mut st = lock.state.borrow_mut();
        let Some(key) = this.key else {
            assert!(!this.done, "LockAcquire polled after completion");
            if !st.locked && !st.waiters.has_live() {
                st.locked = true;
                this.done = true;
                return Poll::Ready(Ok(LockGuard::new(lock)));
            }
            // A fresh waiter can only suspend: push it suspended.
            this.key = Some(st.waiters.push_waiting(cx));
            return Poll::Pending;
        };
        let r = std::task::ready!(st.waiters.poll(key, cx));
        this.key = None;
        this.done = true;
        match r {
            Ok(()) => {
                debug_assert!(!st.locked, "a woken waiter found the lock taken");
                st.locked = true;
                Poll::Ready(Ok(LockGuard::new(lock)))
            }
            Err(c) => {
                if !st.locked {
                    st.waiters.wake_first();
                }
                Poll::Ready(Err(c.err))
            }
        }
    }
}

impl Drop for LockAcquire<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.lock.state.borrow_mut();
            st.waiters.remove(key);
            if !st.locked {
                st.waiters.wake_first();
            }
        }
    }
}
