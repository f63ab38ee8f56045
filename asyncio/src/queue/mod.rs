//! Queues for passing items between tasks: [`Queue`] (FIFO),
//! [`LifoQueue`], [`PriorityQueue`] — asyncio's `queues.py` (3.13, with
//! `shutdown`), correct under cancellation: an item put is never lost when
//! a getter is cancelled, and a cancelled waiter never swallows a wake-up.
//!
//! Like the primitives of `sync`, queues are `!Send` and `!Sync`; share them
//! between tasks by reference or with an `Rc`.
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! send(asyncio::Queue::<u32>::new(0));
//! ```

mod error;
#[allow(clippy::module_inception)]
mod queue;

pub use error::{
    GetError, GetNowaitError, PutError, PutNowaitError, QueueEmpty, QueueFull, QueueShutDown,
    TaskDoneTooManyTimes,
};
pub use queue::{LifoQueue, PriorityQueue, Queue, QueueGet, QueueJoin, QueuePut};
