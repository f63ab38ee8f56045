//! `Condition`: wait for a notification while holding a [`Lock`].
//!
//! # Invariants (asyncio 3.13's `Condition`)
//!
//! - `wait` requires the lock (a [`LockGuard`] of this condition's lock),
//!   releases it, waits for a notification, then takes the lock back — also
//!   when the wait is cancelled: cancellations that arrive while taking it
//!   back are retried through, and the *last* one is returned once the lock
//!   is held again. So whenever `wait` returns, `Ok` or `Err`, the guard
//!   holds the lock.
//! - A wait that ends with an error passes one notification on
//!   (`notify(1)` after re-acquiring), so a notification racing with a
//!   cancellation is never lost; at worst another waiter wakes spuriously,
//!   which the condition-variable protocol allows.
//! - `notify(n)` wakes up to `n` waiters not yet woken, in FIFO order.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::lock::{Lock, LockAcquire, LockGuard};
use super::wait_queue::WaitQueue;
use crate::cancel::error::CancelledError;

/// A condition variable (`asyncio.Condition`) over a [`Lock`].
///
/// Tasks take the lock with [`acquire`](Condition::acquire), then
/// [`wait`](Condition::wait) with the guard (which lets the lock go while
/// waiting and takes it back before returning), and
/// [`notify`](Condition::notify) others with the guard as proof that they
/// hold the lock. Several conditions may share one lock
/// ([`Condition::with_lock`]).
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// asyncio::run(async {
///     let cond = Rc::new(asyncio::Condition::new());
///     let ready = Rc::new(Cell::new(false));
///     let (c, r) = (cond.clone(), ready.clone());
///     let consumer = asyncio::create_task(async move {
///         let mut guard = c.acquire().await?;
///         c.wait_for(&mut guard, || r.get()).await?;
///         Ok::<_, asyncio::CancelledError>("ready")
///     });
///     asyncio::checkpoint().await.unwrap();
///     {
///         let guard = cond.acquire().await.unwrap();
///         ready.set(true);
///         cond.notify_all(&guard);
///     }
///     assert_eq!(consumer.await.unwrap().unwrap(), "ready");
/// });
/// ```
pub struct Condition {
    lock: Rc<Lock>,
    waiters: RefCell<WaitQueue>,
}

impl Condition {
    /// A condition with a lock of its own.
    pub fn new() -> Condition {
        Condition::with_lock(Rc::new(Lock::new()))
    }

    /// A condition over `lock`, which other conditions (or plain users of
    /// the lock) may share.
    pub fn with_lock(lock: Rc<Lock>) -> Condition {
        Condition {
            lock,
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Rc<Lock> {
        &self.lock
    }

    /// Whether the underlying lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Takes the underlying lock ([`Lock::acquire`]).
    ///
    /// # Cancellation
    /// As [`Lock::acquire`]: `Err(CancelledError)` without the lock.
    pub fn acquire(&self) -> LockAcquire<'_> {
        self.lock.acquire()
    }

    /// Releases the lock held by `guard`, waits until notified, and takes
    /// the lock back. May return without a notification (a spurious
    /// wake-up passed on by a cancelled waiter): re-check the state, or use
    /// [`wait_for`](Condition::wait_for).
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` **with the lock held again**: the wait
    /// first re-acquires the lock (retrying if cancelled again meanwhile)
    /// and only then returns the latest cancellation. It also passes one
    /// notification on to another waiter, so a notification it may have
    /// received is not lost.
    ///
    /// Dropping the future before it completes (the losing branch of a
    /// `select!`, rather than a cancellation) cannot wait for the lock: the
    /// lock is taken back only if it is free with nobody queued; otherwise
    /// the guard no longer holds it and releases nothing when dropped.
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock, or no longer
    /// holds it.
    pub fn wait<'a, 'l>(&'a self, guard: &'a mut LockGuard<'l>) -> ConditionWait<'a, 'l> {
        self.check(guard, "wait");
        ConditionWait {
            cond: self,
            guard,
            state: WaitState::Start,
        }
    }

    /// Waits until `predicate` returns `true`: checks it first (and returns
    /// at once if it holds), then [`wait`](Condition::wait)s and re-checks,
    /// the lock held at every check.
    ///
    /// # Cancellation
    /// As [`wait`](Condition::wait): `Err(CancelledError)` with the lock
    /// held.
    ///
    /// # Panics
    /// As [`wait`](Condition::wait).
    pub async fn wait_for(
        &self,
        guard: &mut LockGuard<'_>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(), CancelledError> {
        while !predicate() {
            self.wait(guard).await?;
        }
        Ok(())
    }

    /// Wakes up to `n` waiting tasks, in FIFO order. Each returns from
    /// `wait` once it gets the lock, which `guard`'s holder still has.
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock, or no longer
    /// holds it.
    pub fn notify(&self, guard: &LockGuard<'_>, n: usize) {
        self.check(guard, "notify");
        self.notify_inner(n);
    }

    /// Wakes every waiting task.
    ///
    /// # Panics
    /// As [`notify`](Condition::notify).
    pub fn notify_all(&self, guard: &LockGuard<'_>) {
        self.check(guard, "notify_all");
        self.notify_inner(usize::MAX);
    }

    pub(super) fn notify_inner(&self, n: usize) {
        self.waiters.borrow_mut().wake_n(n);
    }

    fn check(&self, guard: &LockGuard<'_>, what: &str) {
        assert!(
            std::ptr::eq(guard.lock, &*self.lock),
            "Condition::{what}: the guard is not of this condition's lock"
        );
        assert!(
            guard.held,
            "Condition::{what}: the guard no longer holds the lock"
        );
    }
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters.borrow().len())
            .finish()
    }
}

enum WaitState<'l> {
    Start,
    Waiting(usize),
    Reacquire(LockAcquire<'l>, Option<CancelledError>),
    Done,
}

/// The future of [`Condition::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct ConditionWait<'a, 'l> {
    cond: &'a Condition,
    guard: &'a mut LockGuard<'l>,
    state: WaitState<'l>,
}

impl Future for ConditionWait<'_, '_> {
    type Output = Result<(), CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                WaitState::Start => {
                    this.guard.held = false;
                    this.guard.lock.release();
                    // A fresh waiter can only suspend: push it suspended
                    // (after the release, so a pending cancellation it
                    // takes wakes this task after the lock's next waiter,
                    // as asyncio orders them).
                    let key = this.cond.waiters.borrow_mut().push_waiting(cx);
                    this.state = WaitState::Waiting(key);
                    return Poll::Pending;
                }
                WaitState::Waiting(key) => {
                    let r = std::task::ready!(this.cond.waiters.borrow_mut().poll(*key, cx));
                    let err = r.err().map(|c| c.err);
                    this.state = WaitState::Reacquire(this.guard.lock.acquire(), err);
                }
                WaitState::Reacquire(acquire, err) => {
                    match std::task::ready!(Pin::new(&mut *acquire).poll(cx)) {
                        Ok(g) => {
                            // The caller's guard holds the lock from now on.
                            std::mem::forget(g);
                            this.guard.held = true;
                            let err = err.take();
                            this.state = WaitState::Done;
                            return Poll::Ready(match err {
                                None => Ok(()),
                                Some(err) => {
                                    this.cond.notify_inner(1);
                                    Err(err)
                                }
                            });
                        }
                        // Cancelled while taking the lock back: keep the
                        // latest cancellation and try again.
                        Err(e) => {
                            *err = Some(e);
                            *acquire = this.guard.lock.acquire();
                        }
                    }
                }
                WaitState::Done => panic!("ConditionWait polled after completion"),
            }
        }
    }
}

impl Drop for ConditionWait<'_, '_> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, WaitState::Done) {
            WaitState::Start | WaitState::Done => return,
            WaitState::Waiting(key) => {
                self.cond.waiters.borrow_mut().remove(key);
            }
            WaitState::Reacquire(acquire, _) => drop(acquire),
        }
        // Abandoned mid-way: take the lock back if that needs no waiting,
        // and pass a notification on, as an error leaving `wait` would.
        self.guard.held = self.guard.lock.take_now();
        self.cond.notify_inner(1);
    }
}
