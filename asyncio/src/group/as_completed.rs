//! `as_completed`: the tasks in the order they finish.
//!
//! # How it follows asyncio (3.13's `_AsCompletedIterator`)
//!
//! Construction puts a done-callback on every distinct task and starts the
//! timeout clock. A callback (run on the turn after the task finished)
//! moves the task to a queue of finished ones and wakes the consumer, which
//! resumes on the next turn; when the timeout passes, every task not yet
//! finished is replaced by a timeout marker. [`AsCompleted::next`] takes
//! from that queue without suspending while it is not empty, like
//! `Queue.get`. Nothing is ever cancelled.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::AsTask;
use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;
use crate::runtime::TimerHandle;
use crate::time::TimeoutError;

/// Yields `tasks` in the order they finish (`asyncio.as_completed`):
/// [`AsCompleted::next`] gives the next task that is done — the task
/// itself, as 3.13's `async for` does, so await it (it does not suspend) or
/// inspect it. After `timeout` (counted from this call), every task not yet
/// yielded is replaced by an `Err(AsCompletedError::Timeout)`; the tasks are
/// not cancelled.
///
/// Pass the tasks themselves, or references (`&mut task` to await it when
/// it comes, `&task` or a `TaskRef` to inspect it). A task given twice is
/// yielded once.
///
/// ```
/// use std::time::Duration;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let tasks = [3u64, 1, 2].map(|s| {
///     asyncio::create_task(async move {
///         asyncio::sleep(Duration::from_secs(s)).await.unwrap();
///         s
///     })
/// });
/// let mut order = Vec::new();
/// let mut done = asyncio::as_completed(tasks, Duration::from_secs(10));
/// while let Some(task) = done.next().await.unwrap() {
///     order.push(task.await.unwrap());
/// }
/// assert_eq!(order, [1, 2, 3]);
/// # });
/// ```
///
/// # Panics
/// With a timeout, when no loop is running on this thread.
pub fn as_completed<I>(tasks: I, timeout: impl Into<Option<Duration>>) -> AsCompleted<I::Item>
where
    I: IntoIterator,
    I::Item: AsTask,
{
    let mut children: Vec<Option<I::Item>> = Vec::new();
    for t in tasks {
        if !children
            .iter()
            .flatten()
            .any(|c| c.as_task().ptr_eq(t.as_task()))
        {
            children.push(Some(t));
        }
    }
    let shared = Rc::new(Shared {
        done: RefCell::new(VecDeque::new()),
        todo: RefCell::new(vec![true; children.len()]),
        left: Cell::new(children.len()),
        waker: RefCell::new(None),
        timer: RefCell::new(None),
    });
    if let (Some(d), false) = (timeout.into(), children.is_empty()) {
        let lp = crate::get_running_loop()
            .unwrap_or_else(|e| panic!("asyncio::as_completed() with a timeout: {e}"));
        let weak: Weak<Shared> = Rc::downgrade(&shared);
        let timer = lp.call_later(d, move || {
            if let Some(s) = weak.upgrade() {
                s.on_timeout();
            }
        });
        *shared.timer.borrow_mut() = Some(timer);
    }
    for (k, c) in children.iter().enumerate() {
        let weak: Weak<Shared> = Rc::downgrade(&shared);
        let task = c.as_ref().expect("just pushed").as_task();
        task.add_done_callback(move |_| {
            if let Some(s) = weak.upgrade() {
                s.on_completion(k);
            }
        });
    }
    AsCompleted {
        remaining: children.len(),
        children,
        shared,
    }
}

/// The state shared with the done-callbacks and the timer.
struct Shared {
    /// Finished tasks by index, in completion order; `None` marks a timeout.
    done: RefCell<VecDeque<Option<usize>>>,
    /// Tasks neither finished nor timed out.
    todo: RefCell<Vec<bool>>,
    left: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    timer: RefCell<Option<TimerHandle>>,
}

impl Shared {
    fn wake(&self) {
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// `_handle_completion`.
    fn on_completion(&self, k: usize) {
        if !std::mem::replace(&mut self.todo.borrow_mut()[k], false) {
            return;
        }
        self.done.borrow_mut().push_back(Some(k));
        self.left.set(self.left.get() - 1);
        if self.left.get() == 0 {
            if let Some(t) = self.timer.borrow_mut().take() {
                t.cancel();
            }
        }
        self.wake();
    }

    /// `_handle_timeout`: one timeout marker per task not finished.
    fn on_timeout(&self) {
        self.timer.borrow_mut().take();
        let mut todo = self.todo.borrow_mut();
        let mut done = self.done.borrow_mut();
        for flag in todo.iter_mut().filter(|f| **f) {
            *flag = false;
            done.push_back(None);
        }
        self.left.set(0);
        drop((todo, done));
        self.wake();
    }
}

/// The tasks of [`as_completed`], in completion order.
///
/// ```
/// # asyncio::run(async {
/// let mut it = asyncio::as_completed([asyncio::create_task(async { 1 })], None);
/// assert_eq!(it.remaining(), 1);
/// while let Some(task) = it.next().await.unwrap() {
///     assert_eq!(task.await.unwrap(), 1);
/// }
/// assert_eq!(it.remaining(), 0);
/// # });
/// ```
pub struct AsCompleted<C> {
    children: Vec<Option<C>>,
    /// Items (tasks or timeouts) not yielded yet.
    remaining: usize,
    shared: Rc<Shared>,
}

impl<C: AsTask> AsCompleted<C> {
    /// The next task to finish: `Ok(Some(task))`, `Ok(None)` once every
    /// task has been yielded, or `Err(AsCompletedError::Timeout)` for each
    /// task still unfinished when the timeout passed.
    ///
    /// ```
    /// # asyncio::Runner::builder().virtual_time(true).build().run(async {
    /// let task = asyncio::create_task(async { 5 });
    /// let mut it = asyncio::as_completed([task], None);
    /// let first = it.next().await.unwrap().unwrap();
    /// assert_eq!(first.await.unwrap(), 5);
    /// assert!(it.next().await.unwrap().is_none());
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Returns `Err(AsCompletedError::Cancelled)`; nothing is taken (the
    /// next call yields the same task) and no task is cancelled.
    #[allow(clippy::should_implement_trait)] // an async `next`, as on streams
    pub fn next(&mut self) -> Next<'_, C> {
        Next {
            it: self,
            cp: Checkpoint::new(),
        }
    }

    /// How many items (tasks, or timeouts) are left to yield.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl<C> Drop for AsCompleted<C> {
    fn drop(&mut self) {
        if let Some(t) = self.shared.timer.borrow_mut().take() {
            t.cancel();
        }
    }
}

/// The future of [`AsCompleted::next`].
///
/// ```
/// # asyncio::run(async {
/// let mut it = asyncio::as_completed(Vec::<asyncio::TaskRef>::new(), None);
/// let next: asyncio::Next<'_, _> = it.next();
/// assert!(next.await.unwrap().is_none());
/// # });
/// ```
///
/// # Cancellation
/// Returns `Err(AsCompletedError::Cancelled)`; the task it would have
/// yielded stays for the next call.
pub struct Next<'a, C> {
    it: &'a mut AsCompleted<C>,
    cp: Checkpoint,
}

// The tasks are only moved, never pinned.
impl<C> Unpin for Next<'_, C> {}

impl<C: AsTask> Future for Next<'_, C> {
    type Output = Result<Option<C>, AsCompletedError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            return Poll::Ready(Err(AsCompletedError::Cancelled(err)));
        }
        let it = &mut *this.it;
        let item = it.shared.done.borrow_mut().pop_front();
        match item {
            Some(item) => {
                this.cp.complete();
                it.remaining -= 1;
                Poll::Ready(match item {
                    Some(k) => Ok(Some(it.children[k].take().expect("yielded once"))),
                    None => Err(AsCompletedError::Timeout(TimeoutError)),
                })
            }
            None if it.remaining == 0 => {
                this.cp.complete();
                Poll::Ready(Ok(None))
            }
            None => {
                *it.shared.waker.borrow_mut() = Some(cx.waker().clone());
                this.cp.suspend(cx, None);
                Poll::Pending
            }
        }
    }
}

/// Why [`AsCompleted::next`] yields no task.
///
/// ```
/// use std::time::Duration;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let slow = asyncio::create_task(asyncio::sleep(Duration::from_secs(5)));
/// let mut it = asyncio::as_completed([slow], Duration::from_secs(1));
/// let err = it.next().await.unwrap_err();
/// assert!(err.is_timeout());
/// # });
/// ```
#[derive(Debug)]
pub enum AsCompletedError {
    /// The timeout passed before this task finished (asyncio raises
    /// `TimeoutError` from each remaining awaitable).
    Timeout(TimeoutError),
    /// The code waiting for the next task was cancelled.
    Cancelled(CancelledError),
}

impl AsCompletedError {
    /// Whether this is the timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AsCompletedError::Timeout(_))
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, AsCompletedError::Cancelled(_))
    }
}

impl From<CancelledError> for AsCompletedError {
    fn from(e: CancelledError) -> Self {
        AsCompletedError::Cancelled(e)
    }
}

impl From<TimeoutError> for AsCompletedError {
    fn from(e: TimeoutError) -> Self {
        AsCompletedError::Timeout(e)
    }
}

impl fmt::Display for AsCompletedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsCompletedError::Timeout(e) => fmt::Display::fmt(e, f),
            AsCompletedError::Cancelled(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for AsCompletedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AsCompletedError::Timeout(e) => Some(e),
            AsCompletedError::Cancelled(e) => Some(e),
        }
    }
}
