//! `shield`: await a task without passing cancellations on to it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::CancelledError;
use super::scope::Checkpoint;
use crate::task::{join::outcome_to_result, Task};

/// Awaits `task` without forwarding cancellation to it (`asyncio.shield`).
///
/// If the awaiting code is cancelled (or its `wait_for` times out), the
/// shield returns `Err(CancelledError)` at once and the task runs on; await
/// the task again later to get its output. For a plain future, shield a
/// task made from it: `shield(&mut create_task(fut))`.
///
/// ```
/// use std::time::Duration;
/// asyncio::Runner::builder().virtual_time(true).build().run(async {
///     let mut task = asyncio::create_task(async {
///         asyncio::sleep(Duration::from_secs(15)).await.unwrap();
///         15
///     });
///     let r = asyncio::wait_for(asyncio::shield(&mut task), Duration::from_secs(5)).await;
///     assert!(r.is_err()); // timed out; the task was not cancelled
///     assert!(!task.cancelled());
///     assert_eq!(task.await.unwrap(), 15);
/// });
/// ```
///
/// # Cancellation
/// Cancelling the shield leaves the task untouched and its output in it.
pub fn shield<T: 'static>(task: &mut Task<T>) -> Shield<'_, T> {
    Shield { task }
}

/// What [`shield`] returns: await it (it is `IntoFuture`), or pass it to
/// [`wait_for`](crate::wait_for), which then applies asyncio's rules for a
/// task to it (a zero timeout on a finished task gives its output). Call
/// `.into_future()` for a [`ShieldFuture`] where a `Future` is required
/// (`join!`, `select!`).
pub struct Shield<'a, T> {
    task: &'a mut Task<T>,
}

impl<'a, T: 'static> std::future::IntoFuture for Shield<'a, T> {
    type Output = Result<T, CancelledError>;
    type IntoFuture = ShieldFuture<'a, T>;

    fn into_future(self) -> ShieldFuture<'a, T> {
        crate::time::mark_task_like();
        ShieldFuture {
            task: self.task,
            cp: Checkpoint::new(),
            waiter: None,
            waited: false,
            relayed: false,
        }
    }
}

/// The future of a [`Shield`].
pub struct ShieldFuture<'a, T> {
    task: &'a mut Task<T>,
    cp: Checkpoint,
    /// Its registration as an awaiter of the task.
    waiter: Option<u32>,
    /// The task was not done at the first poll.
    waited: bool,
    /// The extra turn asyncio's outer future costs has been spent.
    relayed: bool,
}

impl<T> Drop for ShieldFuture<'_, T> {
    fn drop(&mut self) {
        self.task.remove_waiter(&mut self.waiter);
    }
}

impl<T: 'static> Future for ShieldFuture<'_, T> {
    type Output = Result<T, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.task.remove_waiter(&mut this.waiter);
            return Poll::Ready(Err(err));
        }
        if this.task.done() {
            this.waiter = None;
            if this.waited && !this.relayed {
                // asyncio completes the shield's outer future from the
                // task's done-callback, one turn before the awaiter runs.
                this.relayed = true;
                this.cp.suspend(cx, None);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.cp.complete();
            let outcome = this.task.take_outcome();
            return Poll::Ready(outcome_to_result(this.task, outcome));
        }
        this.waited = true;
        this.task.add_waiter(&mut this.waiter, cx.waker());
        this.cp.suspend(cx, None);
        Poll::Pending
    }
}
