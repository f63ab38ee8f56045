//! `shield`: await a task without passing cancellations on to it.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::checkpoint::Checkpoint;
use super::error::CancelledError;
use crate::task::cell::Outer;
use crate::task::{join::outcome_to_result, join::shared_outcome, Task, TaskRef};

/// What [`shield`] can protect: a task through its typed handle (the
/// shield then gives its output) or through a shared [`TaskRef`] (the
/// shield then gives `()`, and any number of shields may wait at once).
pub trait ShieldTarget: Unpin {
    /// What awaiting the shield gives when the task finished with a value.
    type Output;
    #[doc(hidden)]
    fn task_ref(&self) -> &TaskRef;
    #[doc(hidden)]
    fn take(&mut self) -> Result<Self::Output, CancelledError>;
}

impl<T: 'static> ShieldTarget for &mut Task<T> {
    type Output = T;

    fn task_ref(&self) -> &TaskRef {
        self
    }

    fn take(&mut self) -> Result<T, CancelledError> {
        let outcome = self.take_outcome();
        outcome_to_result(self, outcome)
    }
}

impl ShieldTarget for &TaskRef {
    type Output = ();

    fn task_ref(&self) -> &TaskRef {
        self
    }

    fn take(&mut self) -> Result<(), CancelledError> {
        shared_outcome(self)
    }
}

/// Awaits a task without forwarding cancellation to it (`asyncio.shield`).
///
/// If the awaiting code is cancelled (or its `wait_for` times out), the
/// shield returns `Err(CancelledError)` at once and the task runs on; await
/// the task again later to get its output. Pass `&mut task` to get the
/// output through the shield, or `&task_ref` to wait through a shared
/// handle. For a plain future, shield a task made from it:
/// `shield(&mut create_task(fut))`.
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
pub fn shield<S: ShieldTarget>(target: S) -> Shield<S> {
    Shield { target }
}

/// What [`shield`] returns: await it (it is `IntoFuture`), or pass it to
/// [`wait_for`](crate::wait_for), which then applies asyncio's rules for a
/// task to it (a zero timeout on a finished task gives its output). Call
/// `.into_future()` for a [`ShieldFuture`] where a `Future` is required
/// (`join!`, `select!`).
pub struct Shield<S> {
    target: S,
}

impl<S: ShieldTarget> std::future::IntoFuture for Shield<S> {
    type Output = Result<S::Output, CancelledError>;
    type IntoFuture = ShieldFuture<S>;

    fn into_future(self) -> ShieldFuture<S> {
        crate::time::mark_task_like();
        ShieldFuture {
            target: self.target,
            cp: Checkpoint::new(),
            outer: None,
            id: None,
        }
    }
}

/// The future of a [`Shield`].
///
/// Like asyncio's, a shield that finds its task running waits on an outer
/// future, which the task's done-callback completes a turn after the task
/// ends; the awaiter runs on the turn after that. A cancellation before
/// then cancels the outer future: the awaiter resumes on the next turn,
/// woken by the cancellation.
pub struct ShieldFuture<S: ShieldTarget> {
    target: S,
    cp: Checkpoint,
    /// The outer future, once the shield waits.
    outer: Option<Rc<Outer>>,
    /// Its registration with the task.
    id: Option<u32>,
}

impl<S: ShieldTarget> ShieldFuture<S> {
    /// Stops waiting: the done-callback, if still to come, wakes nobody.
    fn stop(&mut self) {
        self.target.task_ref().remove_waiter(&mut self.id);
        if let Some(outer) = self.outer.take() {
            outer.set_waker(None);
        }
    }
}

impl<S: ShieldTarget> Drop for ShieldFuture<S> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<S: ShieldTarget> Future for ShieldFuture<S> {
    type Output = Result<S::Output, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.stop();
            return Poll::Ready(Err(err));
        }
        let outer = match &this.outer {
            Some(outer) => outer,
            None if this.target.task_ref().done() => {
                this.cp.complete();
                return Poll::Ready(this.target.take());
            }
            None => {
                let outer = Rc::new(Outer::default());
                this.target.task_ref().add_outer(&mut this.id, &outer);
                this.outer.insert(outer)
            }
        };
        if outer.done() {
            this.id = None;
            this.outer = None;
            this.cp.complete();
            return Poll::Ready(this.target.take());
        }
        outer.set_waker(Some(cx.waker()));
        this.cp.suspend(cx, None);
        Poll::Pending
    }
}
