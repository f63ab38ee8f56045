//! `Barrier`: wait until a fixed number of tasks have arrived.
//!
//! Built, as asyncio's, on a [`Condition`], so tasks resume in the same
//! order and on the same loop turns as in asyncio.
//!
//! # States (asyncio's `_BarrierState`)
//!
//! - *filling*: arrivals wait; the `parties`-th arrival does not block, and
//!   switches to *draining*, waking the others.
//! - *draining*: the released tasks leave one by one; newcomers block until
//!   the last one has left and the state is *filling* again.
//! - *resetting* (after [`Barrier::reset`] with tasks waiting): the waiting
//!   tasks leave with [`BrokenBarrierError`]; then *filling* again.
//! - *broken* (after [`Barrier::abort`]): every current and future `wait`
//!   fails with [`BrokenBarrierError`] until `reset`.
//!
//! `count` is the number of tasks inside `wait` past the entry check; every
//! one of them decrements it when it leaves, by any path (returned, broken,
//! cancelled, dropped), and the last one out ends draining or resetting.

use std::cell::Cell;
use std::error::Error;
use std::fmt;

use super::condition::Condition;
use crate::cancel::error::CancelledError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Filling,
    Draining,
    Resetting,
    Broken,
}

/// A barrier (`asyncio.Barrier`): `parties` tasks [`wait`](Barrier::wait)
/// until all of them have arrived, then all go on.
///
/// ```
/// use std::rc::Rc;
/// asyncio::run(async {
///     let barrier = Rc::new(asyncio::Barrier::new(3));
///     let mut tasks = Vec::new();
///     for _ in 0..3 {
///         let b = barrier.clone();
///         tasks.push(asyncio::create_task(async move { b.wait().await }));
///     }
///     let mut indices: Vec<usize> = Vec::new();
///     for t in tasks {
///         indices.push(t.await.unwrap().unwrap());
///     }
///     indices.sort();
///     assert_eq!(indices, [0, 1, 2]);
/// });
/// ```
pub struct Barrier {
    cond: Condition,
    parties: usize,
    state: Cell<State>,
    count: Cell<usize>,
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Panics
    /// If `parties` is 0 (Python raises `ValueError`).
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "Barrier::new: parties must be > 0");
        Barrier {
            cond: Condition::new(),
            parties,
            state: Cell::new(State::Filling),
            count: Cell::new(0),
        }
    }

    /// Waits until `parties` tasks are waiting, then returns this task's
    /// arrival index, `0..parties` (the last arrival gets `parties - 1` and
    /// does not block).
    ///
    /// # Errors
    /// [`BarrierWaitError::Broken`] if the barrier is broken ([`abort`](Barrier::abort)),
    /// or is reset while this task waits; [`BarrierWaitError::Cancelled`] if
    /// the task is cancelled.
    ///
    /// # Cancellation
    /// A task cancelled while waiting leaves the barrier (it no longer
    /// counts as arrived) and returns `Cancelled`; the barrier is not
    /// broken. A task cancelled after the barrier tripped still leaves
    /// cleanly, and the others are released as usual.
    pub async fn wait(&self) -> Result<usize, BarrierWaitError> {
        let mut guard = self.cond.acquire().await?;
        // Block while the barrier drains or resets.
        self.cond
            .wait_for(&mut guard, || {
                !matches!(self.state.get(), State::Draining | State::Resetting)
            })
            .await?;
        if self.state.get() == State::Broken {
            return Err(BarrierWaitError::Broken(BrokenBarrierError));
        }
        let index = self.count.get();
        self.count.set(index + 1);
        let _leave = Leave(self);
        if index + 1 == self.parties {
            self.state.set(State::Draining);
            self.cond.notify_all(&guard);
        } else {
            self.cond
                .wait_for(&mut guard, || self.state.get() != State::Filling)
                .await?;
            if matches!(self.state.get(), State::Broken | State::Resetting) {
                return Err(BarrierWaitError::Broken(BrokenBarrierError));
            }
        }
        Ok(index)
    }

    /// Returns the barrier to its empty, *filling* state. Tasks waiting in
    /// it get [`BrokenBarrierError`]. Takes the barrier's internal lock,
    /// like Python's `await barrier.reset()`.
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` without resetting anything.
    pub async fn reset(&self) -> Result<(), CancelledError> {
        let guard = self.cond.acquire().await?;
        if self.count.get() > 0 {
            self.state.set(State::Resetting);
        } else {
            self.state.set(State::Filling);
        }
        self.cond.notify_all(&guard);
        Ok(())
    }

    /// Breaks the barrier: tasks waiting in it, and every later `wait` until
    /// a [`reset`](Barrier::reset), get [`BrokenBarrierError`].
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)` without breaking anything.
    pub async fn abort(&self) -> Result<(), CancelledError> {
        let guard = self.cond.acquire().await?;
        self.state.set(State::Broken);
        self.cond.notify_all(&guard);
        Ok(())
    }

    /// The number of tasks needed to trip the barrier.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of tasks waiting for the barrier to fill (0 while it
    /// drains, resets or is broken).
    pub fn n_waiting(&self) -> usize {
        if self.state.get() == State::Filling {
            self.count.get()
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.state.get() == State::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("state", &self.state.get())
            .field("waiting", &self.n_waiting())
            .field("parties", &self.parties)
            .finish()
    }
}

/// Run when a task leaves `wait` past the entry check, by any path: the
/// last one out ends draining or resetting and wakes the tasks blocked at
/// the entry.
struct Leave<'a>(&'a Barrier);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let b = self.0;
        b.count.set(b.count.get() - 1);
        if b.count.get() == 0 {
            if matches!(b.state.get(), State::Resetting | State::Draining) {
                b.state.set(State::Filling);
            }
            b.cond.notify_inner(usize::MAX);
        }
    }
}

/// The barrier was broken ([`Barrier::abort`]) or reset while waiting
/// (Python's `asyncio.BrokenBarrierError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the barrier is broken or was reset")
    }
}

impl Error for BrokenBarrierError {}

/// Why [`Barrier::wait`] failed.
#[derive(Debug)]
pub enum BarrierWaitError {
    /// The barrier is broken or was reset.
    Broken(BrokenBarrierError),
    /// The waiting task was cancelled (a live cancellation: propagate it).
    Cancelled(CancelledError),
}

impl BarrierWaitError {
    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BarrierWaitError::Cancelled(_))
    }

    /// Whether the barrier was broken or reset.
    pub fn is_broken(&self) -> bool {
        matches!(self, BarrierWaitError::Broken(_))
    }
}

impl From<CancelledError> for BarrierWaitError {
    fn from(e: CancelledError) -> Self {
        BarrierWaitError::Cancelled(e)
    }
}

impl From<BrokenBarrierError> for BarrierWaitError {
    fn from(e: BrokenBarrierError) -> Self {
        BarrierWaitError::Broken(e)
    }
}

impl fmt::Display for BarrierWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierWaitError::Broken(e) => e.fmt(f),
            BarrierWaitError::Cancelled(e) => e.fmt(f),
        }
    }
}

impl Error for BarrierWaitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BarrierWaitError::Broken(e) => Some(e),
            BarrierWaitError::Cancelled(e) => Some(e),
        }
    }
}
