//! `wait`: wait until some or all of several tasks are done, and split them
//! into done and pending. It never cancels anything and never raises what
//! the tasks raised.
//!
//! # How it follows asyncio (`tasks.py`, `_wait`)
//!
//! When first polled, the wait puts a done-callback on every distinct task
//! (one already done gets its callback on the next turn, as in asyncio) and
//! arms the timeout. A callback counts the task down and releases the
//! waiter when the condition holds; the awaiter then resumes on the next
//! turn and partitions the tasks by `done()` — so the done list may hold
//! tasks that finished after the one that released it
//! (`test_wait_really_done`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::AsTask;
use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;
use crate::runtime::TimerHandle;
use crate::task::TaskRef;

/// When [`wait`] returns (asyncio's `return_when`).
///
/// ```
/// use asyncio::ReturnWhen;
/// assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task is done (`FIRST_COMPLETED`).
    FirstCompleted,
    /// As soon as any task **panics** — a panic is a Rust task's exception —
    /// or when all are done (`FIRST_EXCEPTION`). A task that ends cancelled
    /// does not count, as in asyncio; nor does one whose output is an
    /// `Err`: to the runtime that is a value like any other, so for tasks
    /// returning `Result` use [`try_gather`](fn@crate::try_gather) or a
    /// [`TaskGroup`](crate::TaskGroup) to stop at the first error, or
    /// [`as_completed`](crate::as_completed) to look at each result as it
    /// comes.
    FirstException,
    /// When every task is done (`ALL_COMPLETED`, the default).
    #[default]
    AllCompleted,
}

/// Waits until the tasks are done as `return_when` says, or until
/// `timeout` passes, and returns `(done, pending)`: the tasks given, split
/// in their original order (`asyncio.wait`). Nothing is cancelled — not on
/// timeout, not when the waiting task is cancelled — and what the tasks
/// returned, raised or panicked stays in them.
///
/// Pass the tasks themselves to get them back, or references (`&task`,
/// `&mut task`, `TaskRef`s) to keep them where they are. A task given twice
/// appears twice. An empty list returns `(vec![], vec![])` at once (asyncio
/// raises `ValueError`).
///
/// ```
/// use std::time::Duration;
/// use asyncio::ReturnWhen;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let tasks: Vec<_> = [3, 1, 2]
///     .into_iter()
///     .map(|s| asyncio::create_task(async move {
///         asyncio::sleep(Duration::from_secs(s)).await.unwrap();
///         s
///     }))
///     .collect();
/// let (done, pending) = asyncio::wait(&tasks, None, ReturnWhen::FirstCompleted).await.unwrap();
/// assert_eq!((done.len(), pending.len()), (1, 2));
/// assert!(done[0].done());
/// let (done, pending) = asyncio::wait(tasks, Duration::from_secs(5), ReturnWhen::AllCompleted)
///     .await
///     .unwrap();
/// assert_eq!((done.len(), pending.len()), (3, 0));
/// # });
/// ```
///
/// # Cancellation
/// Returns `Err(CancelledError)`; the tasks are not touched (owned handles
/// passed in are dropped, which does not cancel them).
pub fn wait<I>(
    tasks: I,
    timeout: impl Into<Option<Duration>>,
    return_when: ReturnWhen,
) -> WaitTasks<I::Item>
where
    I: IntoIterator,
    I::Item: AsTask,
{
    WaitTasks {
        tasks: Some(tasks.into_iter().collect()),
        timeout: timeout.into(),
        return_when,
        waiter: None,
        cp: Checkpoint::new(),
    }
}

/// The waiter shared with the done-callbacks and the timer.
struct Waiter {
    released: Cell<bool>,
    counter: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    timer: RefCell<Option<TimerHandle>>,
}

impl Waiter {
    fn release(&self) {
        if self.released.replace(true) {
            return;
        }
        if let Some(t) = self.timer.borrow_mut().take() {
            t.cancel();
        }
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// `_on_completion`.
    fn on_completion(&self, task: &TaskRef, return_when: ReturnWhen) {
        let left = self.counter.get().saturating_sub(1);
        self.counter.set(left);
        let release = left == 0
            || return_when == ReturnWhen::FirstCompleted
            || (return_when == ReturnWhen::FirstException && task.panicked());
        if release {
            self.release();
        }
    }
}

/// The future of [`wait`]: `(done, pending)`.
///
/// ```
/// use asyncio::{ReturnWhen, WaitTasks};
/// # asyncio::run(async {
/// let task = asyncio::create_task(async {});
/// let w: WaitTasks<_> = asyncio::wait([task], None, ReturnWhen::AllCompleted);
/// let (done, pending) = w.await.unwrap();
/// assert_eq!((done.len(), pending.len()), (1, 0));
/// # });
/// ```
///
/// # Cancellation
/// Returns `Err(CancelledError)` and leaves every task alone.
pub struct WaitTasks<C> {
    tasks: Option<Vec<C>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
    waiter: Option<Rc<Waiter>>,
    cp: Checkpoint,
}

impl<C> WaitTasks<C> {
    fn disarm(&self) {
        if let Some(w) = &self.waiter {
            if let Some(t) = w.timer.borrow_mut().take() {
                t.cancel();
            }
        }
    }
}

impl<C: AsTask> WaitTasks<C> {
    fn start(&mut self) -> Rc<Waiter> {
        let tasks = self.tasks.as_ref().expect("wait polled after completion");
        let mut distinct: Vec<TaskRef> = Vec::new();
        for t in tasks {
            let t = t.as_task();
            if !distinct.iter().any(|d| d.ptr_eq(t)) {
                distinct.push(t.clone());
            }
        }
        let waiter = Rc::new(Waiter {
            released: Cell::new(false),
            counter: Cell::new(distinct.len()),
            waker: RefCell::new(None),
            timer: RefCell::new(None),
        });
        if let Some(d) = self.timeout {
            let weak: Weak<Waiter> = Rc::downgrade(&waiter);
            let lp = crate::get_running_loop()
                .unwrap_or_else(|e| panic!("asyncio::wait() with a timeout: {e}"));
            let timer = lp.call_later(d, move || {
                if let Some(w) = weak.upgrade() {
                    w.release();
                }
            });
            *waiter.timer.borrow_mut() = Some(timer);
        }
        let when = self.return_when;
        for t in distinct {
            let weak: Weak<Waiter> = Rc::downgrade(&waiter);
            t.add_done_callback(move |t| {
                if let Some(w) = weak.upgrade() {
                    w.on_completion(t, when);
                }
            });
        }
        waiter
    }
}

// The tasks are only moved, never pinned.
impl<C> Unpin for WaitTasks<C> {}

impl<C: AsTask> Future for WaitTasks<C> {
    type Output = Result<(Vec<C>, Vec<C>), CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.waiter.is_none() {
            if this.tasks.as_ref().is_some_and(Vec::is_empty) {
                return Poll::Ready(Ok((Vec::new(), Vec::new())));
            }
            this.waiter = Some(this.start());
        }
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.disarm();
            return Poll::Ready(Err(err));
        }
        let waiter = this.waiter.clone().expect("started");
        if !waiter.released.get() {
            *waiter.waker.borrow_mut() = Some(cx.waker().clone());
            this.cp.suspend(cx, None);
            return Poll::Pending;
        }
        this.cp.complete();
        this.disarm();
        let tasks = this.tasks.take().expect("wait polled after completion");
        Poll::Ready(Ok(tasks.into_iter().partition(|t| t.as_task().done())))
    }
}

impl<C> Drop for WaitTasks<C> {
    fn drop(&mut self) {
        self.disarm();
    }
}
