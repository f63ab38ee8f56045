//! Awaiting a task: a checkpoint that forwards cancellation.

use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{cancelled_here, current_task_obj, Outcome, Task, TaskRef};
use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;

enum Handle<'a, T> {
    Owned(Task<T>),
    Borrowed(&'a mut Task<T>),
}

/// The future of `task.await` / `(&mut task).await`.
///
/// # Cancellation
/// A cancellation of the awaiting code is forwarded to the awaited task
/// (`Task::cancel`), and the await goes on until that task finishes: if it
/// ends cancelled, the await returns `Err(CancelledError)`; if it swallowed
/// the cancellation and returned a value, the await returns `Ok(value)` and
/// the awaiter is not cancelled (asyncio's delegation). If the awaited task
/// is already done when the cancellation arrives, the await returns
/// `Err(CancelledError)` and the output stays in the task.
pub struct Join<'a, T> {
    task: Handle<'a, T>,
    cp: Checkpoint,
    waiter: Option<u32>,
}

impl<T: 'static> Join<'static, T> {
    pub(crate) fn owned(task: Task<T>) -> Self {
        crate::time::mark_task_like();
        Join {
            task: Handle::Owned(task),
            cp: Checkpoint::new(),
            waiter: None,
        }
    }
}

impl<'a, T: 'static> Join<'a, T> {
    pub(crate) fn borrowed(task: &'a mut Task<T>) -> Self {
        crate::time::mark_task_like();
        Join {
            task: Handle::Borrowed(task),
            cp: Checkpoint::new(),
            waiter: None,
        }
    }
}

impl<T> Handle<'_, T> {
    fn get(&self) -> &Task<T> {
        match self {
            Handle::Owned(t) => t,
            Handle::Borrowed(t) => t,
        }
    }
}

/// Turns a finished task's outcome into the awaiter's result.
pub(crate) fn outcome_to_result<T>(
    task: &Task<T>,
    outcome: Outcome<T>,
) -> Result<T, CancelledError> {
    match outcome {
        Outcome::Value(v) => Ok(v),
        // A cancellation coming out of an awaited task counts against the
        // awaiter's own (root) scope.
        Outcome::Cancelled(msg) => Err(cancelled_here(msg)),
        Outcome::Panicked(p) => panic::resume_unwind(p),
        Outcome::Taken => panic!(
            "the output of {} was already taken by an earlier await",
            task.name()
        ),
        Outcome::Pending => unreachable!("outcome of an unfinished task"),
    }
}

/// The await-a-task protocol shared by [`Join`] and [`Wait`]: a checkpoint
/// that forwards cancellation to `task` and waits for it to finish.
pub(crate) fn poll_task<T>(
    cp: &mut Checkpoint,
    waiter: &mut Option<u32>,
    task: &TaskRef,
    cx: &mut Context<'_>,
    take: impl FnOnce() -> Result<T, CancelledError>,
) -> Poll<Result<T, CancelledError>> {
    if let Some(err) = std::task::ready!(cp.poll_cancelled(cx)) {
        task.remove_waiter(waiter);
        return Poll::Ready(Err(err));
    }
    if task.done() {
        let forwarded = cp.is_forwarded();
        if forwarded && cp.relay_once(cx) {
            return Poll::Pending;
        }
        *waiter = None;
        if forwarded && task.cancelled() {
            return Poll::Ready(Err(cp.take_cancelled().expect("delivered")));
        }
        cp.complete();
        return Poll::Ready(take());
    }
    let me = current_task_obj();
    if me.as_ref().is_some_and(|me| me.ptr_eq(task)) {
        panic!(
            "{} awaits itself: a task cannot await its own handle (it would wait forever)",
            task.name()
        );
    }
    task.add_waiter(waiter, me.as_ref(), cx.waker());
    cp.suspend(cx, Some(task));
    Poll::Pending
}

impl<T: 'static> Future for Join<'_, T> {
    type Output = Result<T, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let handle = this.task.get();
        poll_task(&mut this.cp, &mut this.waiter, handle, cx, || {
            outcome_to_result(handle, handle.take_outcome())
        })
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        self.task.get().remove_waiter(&mut self.waiter);
    }
}

/// What [`TaskRef::wait`] returns: await it (it is `IntoFuture`), or pass
/// it to [`wait_for`](crate::wait_for), which then applies asyncio's rules
/// for a task. Any number of awaiters can wait for one task this way.
pub struct Wait {
    task: TaskRef,
}

impl Wait {
    pub(crate) fn new(task: TaskRef) -> Wait {
        Wait { task }
    }
}

impl std::future::IntoFuture for Wait {
    type Output = Result<(), CancelledError>;
    type IntoFuture = WaitFuture;

    fn into_future(self) -> WaitFuture {
        crate::time::mark_task_like();
        WaitFuture {
            task: self.task,
            cp: Checkpoint::new(),
            waiter: None,
        }
    }
}

/// The future of a [`Wait`].
///
/// # Cancellation
/// As [`Join`]: a cancellation of the waiter is forwarded to the task.
pub struct WaitFuture {
    task: TaskRef,
    cp: Checkpoint,
    waiter: Option<u32>,
}

impl Drop for WaitFuture {
    fn drop(&mut self) {
        self.task.remove_waiter(&mut self.waiter);
    }
}

impl Future for WaitFuture {
    type Output = Result<(), CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let task = this.task.clone();
        poll_task(&mut this.cp, &mut this.waiter, &task, cx, || {
            shared_outcome(&task)
        })
    }
}

/// A finished task's outcome through a shared handle: `Ok(())` for a value
/// (left in the task), `Err` if it ended cancelled; its panic is repeated.
pub(crate) fn shared_outcome(task: &TaskRef) -> Result<(), CancelledError> {
    if let Some(msg) = task.panic_message() {
        panic!("awaited task {} panicked: {msg}", task.name());
    }
    if task.cancelled() {
        Err(cancelled_here(task.cancel_message()))
    } else {
        Ok(())
    }
}

/// What [`Task::flatten`] returns: await it for `Result<U, E>`, with a
/// cancellation of the task folded into `E` (`E: From<CancelledError>`).
/// Like the task itself, it is `IntoFuture` and task-like for
/// [`wait_for`](crate::wait_for).
pub struct Flatten<'a, U, E> {
    task: Handle<'a, Result<U, E>>,
}

impl<'a, U: 'static, E: From<CancelledError> + 'static> std::future::IntoFuture
    for Flatten<'a, U, E>
{
    type Output = Result<U, E>;
    type IntoFuture = FlattenFuture<'a, U, E>;

    fn into_future(self) -> FlattenFuture<'a, U, E> {
        let join = match self.task {
            Handle::Owned(t) => Join::owned(t),
            Handle::Borrowed(t) => Join::borrowed(t),
        };
        FlattenFuture { join }
    }
}

/// The future of a [`Flatten`].
pub struct FlattenFuture<'a, U, E> {
    join: Join<'a, Result<U, E>>,
}

impl<U: 'static, E: From<CancelledError> + 'static> Future for FlattenFuture<'_, U, E> {
    type Output = Result<U, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.join)
            .poll(cx)
            .map(|r| r.map_err(E::from).and_then(|inner| inner))
    }
}

impl<U: 'static, E: From<CancelledError> + 'static> Task<Result<U, E>> {
    /// Awaits the task in one step: `Result<U, E>` instead of
    /// `Result<Result<U, E>, CancelledError>`, for error types that can hold
    /// a cancellation.
    ///
    /// ```
    /// use asyncio::CancelledError;
    /// async fn work() -> Result<u32, CancelledError> {
    ///     asyncio::checkpoint().await?;
    ///     Ok(7)
    /// }
    /// asyncio::run(async {
    ///     let task = asyncio::create_task(work());
    ///     let v: u32 = task.flatten().await?;
    ///     assert_eq!(v, 7);
    ///     Ok::<_, CancelledError>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn flatten(self) -> Flatten<'static, U, E> {
        Flatten {
            task: Handle::Owned(self),
        }
    }

    /// [`Task::flatten`], keeping the handle.
    pub fn flatten_mut(&mut self) -> Flatten<'_, U, E> {
        Flatten {
            task: Handle::Borrowed(self),
        }
    }
}
