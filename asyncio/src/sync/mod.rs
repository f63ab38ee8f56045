//! Synchronisation primitives: [`Event`], [`Lock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Barrier`] — asyncio's `locks.py`,
//! correct under cancellation.
//!
//! Every primitive waits in one [`wait_queue::WaitQueue`]: FIFO waiters,
//! each owning the checkpoint of its await. That is where the rules live
//! that make them trustworthy:
//!
//! - **Every await is a checkpoint.** It returns `Err(CancelledError)` (or
//!   an error enum carrying it) when its task is cancelled; a cancellation
//!   delivered in the same turn as the wake-up wins, as in asyncio. An
//!   await that completes without suspending (a free lock, a set event)
//!   takes no pending cancellation.
//! - **A wake-up is never swallowed.** A waiter woken and then cancelled (or
//!   dropped) before it runs passes the wake-up on: the lock to the next
//!   waiter, the permit back to the semaphore, one notification to another
//!   waiter of the condition.
//! - **FIFO, no barging.** Waiters are served in arrival order, and a
//!   newcomer does not take a lock or a permit that a woken waiter is about
//!   to take, so no waiter starves.
//!
//! The primitives are `!Send` and `!Sync`, like the loop they run on: share
//! them between tasks by reference or with an `Rc`. They can be created
//! outside a loop (even in a `const`), and bind to no loop.
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! send(asyncio::Lock::new());
//! ```
//!
//! ```compile_fail
//! fn sync<T: Sync>(_: &T) {}
//! sync(&asyncio::Event::new());
//! ```

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;
pub(crate) mod wait_queue;

pub use barrier::{Barrier, BarrierWaitError, BrokenBarrierError};
pub use condition::{Condition, ConditionWait};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockGuard};
pub use semaphore::{
    BoundedSemaphore, ReleasedTooManyTimes, Semaphore, SemaphoreAcquire, SemaphorePermit,
};
