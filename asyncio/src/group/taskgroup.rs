//! `TaskGroup`: structured concurrency, Python 3.13's `asyncio.TaskGroup`.
//!
//! # The Rust shape
//!
//! `async with TaskGroup() as tg: body` becomes
//! `TaskGroup::run(|tg| async move { body }).await`: the group's future owns
//! the body, so the exit — abort on failure, wait for every child, report —
//! always runs, whatever the body does (returns early with `?`, panics).
//!
//! A child's output has no notion of failure for a generic `T`, so children
//! return `Result<T, E>`: an `Err` is a failure (Python's exception), and so
//! is a panic. Both go to the group, which reports them together in
//! [`TaskGroupError::Failed`] (Python's `ExceptionGroup`), children first in
//! completion order, then the body's own error. The child's [`Task`] handle
//! then holds `Err(`[`ChildFailed`]`)`: the error itself was moved to the
//! group. A child that ends cancelled is not a failure.
//!
//! The body returns `Result<R, E>` too, with `E: From<CancelledError>` so
//! that cancellations propagate through it with `?`. An `Err` from the body
//! is a cancellation (Python's `CancelledError` leaving the `async with`)
//! when a cancellation of the parent task that started inside the body is
//! still live — the `Err` carries that `CancelledError`; otherwise it is an
//! error of the body.
//!
//! # The rules (`taskgroups.py`, 3.13)
//!
//! - The first child failure aborts the group: every unfinished child is
//!   cancelled, in creation order, and the *body* is cancelled once — a
//!   request counted on the parent task (`cancelling()` reads 1 more), but
//!   delivered only inside the group (the body and the group's own exit
//!   wait; other `join!` branches of the parent are not touched). The group
//!   takes that request back when it exits, so the parent's `cancelling()`
//!   level is what it was before (3.13), and a `CancelledError` of the body
//!   is swallowed if no other request is left.
//! - The body failing or being cancelled aborts the children too.
//! - The exit waits until every child is done; a cancellation arriving
//!   meanwhile aborts the children (it propagates afterwards unless there
//!   are failures).
//! - A cancellation of the parent from outside propagates as
//!   [`TaskGroupError::Cancelled`] if nothing failed. If something failed,
//!   the failures win and the outside request is re-delivered at the
//!   parent's next await point (3.13 re-cancels a parent whose
//!   `cancelling()` is not zero).
//! - No child can be added once the group is shutting down or finished.
//! - A panic in the body aborts the children, waits for them, and resumes.
//!
//! # Differences from asyncio
//!
//! - The group's own cancellation reaches only what runs inside the group
//!   (asyncio cancels the whole parent task; the same thing when the task
//!   runs nothing else, as in Python).
//! - A panic in the body is resumed after the group has taken back its own
//!   cancel request (asyncio re-raises a `BaseException` first, leaving the
//!   count raised).
//! - A child's `Err` or panic is moved to the group, so its task holds
//!   `Err(ChildFailed)` (asyncio's task keeps the exception too).
//!
//! # When the group processes a child's end
//!
//! asyncio's group puts its done-callback on a child when creating it, so it
//! runs before the child's awaiters. Here the child's future is a wrapper
//! whose drop — the task cell drops a finished task's future before it
//! wakes the awaiters — schedules that processing with `call_soon`: it runs
//! on the next turn, ahead of the child's awaiters, as in asyncio. A body
//! awaiting a child that fails therefore sees its own cancellation, not the
//! child's error.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::panic_str;
use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::delivery::deliver;
use crate::cancel::error::{CancelledError, Token};
use crate::cancel::scope::{ScopeGuard, ScopeNode};
use crate::task::cancelled_here;
use crate::task::{current_task, Task, TaskRef};
use crate::time::InvalidStateError;

/// A group of child tasks that live no longer than the group (Python
/// 3.11+'s `asyncio.TaskGroup`): start one with [`TaskGroup::run`], add
/// children with [`TaskGroup::create_task`].
///
/// The handle is cheap to clone: give a clone to a child so that it can
/// start siblings.
///
/// ```
/// use std::time::Duration;
/// use asyncio::{CancelledError, TaskGroup, TaskGroupError};
///
/// #[derive(Debug)]
/// enum Error { Cancelled(CancelledError), Down(&'static str) }
/// impl From<CancelledError> for Error {
///     fn from(e: CancelledError) -> Self { Error::Cancelled(e) }
/// }
///
/// async fn fetch(host: &'static str, secs: u64) -> Result<String, Error> {
///     asyncio::sleep(Duration::from_secs(secs)).await?;
///     if host == "down.example" { Err(Error::Down(host)) } else { Ok(format!("<{host}>")) }
/// }
///
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// // Every child succeeds: the body's value comes out.
/// let pages = TaskGroup::run(|tg| async move {
///     let a = tg.create_task(fetch("a.example", 1)).unwrap();
///     let b = tg.create_task(fetch("b.example", 2)).unwrap();
///     Ok::<_, Error>((a, b))
/// })
/// .await
/// .unwrap();
/// assert_eq!(pages.0.await.unwrap().unwrap(), "<a.example>");
///
/// // A child fails: its siblings and the body are cancelled.
/// let r = TaskGroup::run(|tg| async move {
///     tg.create_task(fetch("down.example", 1)).unwrap();
///     tg.create_task(fetch("slow.example", 10)).unwrap();
///     asyncio::sleep(Duration::from_secs(60)).await?;
///     Ok::<_, Error>(())
/// })
/// .await;
/// let Err(TaskGroupError::Failed(failures)) = r else { panic!() };
/// assert!(matches!(failures[0].error(), Some(Error::Down("down.example"))));
/// # });
/// ```
pub struct TaskGroup<E> {
    inner: Rc<Inner<E>>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<E> {
    st: RefCell<State<E>>,
    /// The group's cancel scope: the body and the exit wait run inside it.
    scope: Rc<ScopeNode>,
}

struct State<E> {
    parent: Option<TaskRef>,
    exiting: bool,
    aborting: bool,
    /// The group's future completed or was dropped.
    closed: bool,
    /// The group cancelled its body (and counted it on the parent).
    parent_cancel_requested: bool,
    /// Children whose end the group has not processed yet, in creation
    /// order.
    tasks: Vec<TaskRef>,
    errors: Vec<Failure<E>>,
    /// The exit wait, while it waits.
    exit_waker: Option<Waker>,
}

impl<E> State<E> {
    /// `_abort`: marks the group aborting and returns the children to
    /// cancel, in creation order (cancelled by the caller, outside the
    /// borrow).
    fn abort(&mut self) -> Vec<TaskRef> {
        self.aborting = true;
        self.tasks.iter().filter(|t| !t.done()).cloned().collect()
    }
}

fn cancel_all(tasks: Vec<TaskRef>) {
    for t in tasks {
        t.cancel();
    }
}

impl<E: 'static> Inner<E> {
    /// `_on_task_done`, on the turn after the child finished.
    fn on_task_done(self: &Rc<Self>, slot: &ChildSlot<E>) {
        let Some(task) = slot.task.borrow().clone() else {
            return;
        };
        let failure = slot.failure.borrow_mut().take();
        let mut st = self.st.borrow_mut();
        st.tasks.retain(|t| !t.ptr_eq(&task));
        let wake = if st.tasks.is_empty() {
            st.exit_waker.take()
        } else {
            None
        };
        let mut abort = Vec::new();
        let mut cancel_parent = None;
        if let (Some(failure), false) = (failure, task.cancelled()) {
            st.errors.push(failure);
            match st.parent.clone() {
                Some(parent) if !parent.done() && !st.aborting && !st.parent_cancel_requested => {
                    abort = st.abort();
                    st.parent_cancel_requested = true;
                    cancel_parent = Some(parent);
                }
                _ => {}
            }
        }
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
        cancel_all(abort);
        if let Some(parent) = cancel_parent {
            // `parent.cancel()`, aimed at the group's scope only.
            parent.cancel_state().add_request();
            deliver(&parent, Some(&self.scope), None);
        }
    }

    fn abort(&self) {
        let tasks = self.st.borrow_mut().abort();
        cancel_all(tasks);
    }
}

impl<E: From<CancelledError> + 'static> TaskGroup<E> {
    /// Runs `body` with a new group and returns once the body and every
    /// child are done (`async with asyncio.TaskGroup() as tg:`).
    ///
    /// The result is the body's value if nothing failed;
    /// [`TaskGroupError::Failed`] with every failure (children's `Err`s and
    /// panics in completion order, then the body's own error) if something
    /// did; [`TaskGroupError::Cancelled`] if the parent task was cancelled
    /// from outside and nothing failed. A panic in the body is raised again
    /// once the children are done.
    ///
    /// ```
    /// use std::time::Duration;
    /// use asyncio::{CancelledError, TaskGroup};
    /// # asyncio::Runner::builder().virtual_time(true).build().run(async {
    /// let total = TaskGroup::run(|tg| async move {
    ///     let tasks: Vec<_> = (1..=3u64)
    ///         .map(|i| {
    ///             tg.create_task(async move {
    ///                 asyncio::sleep(Duration::from_secs(i)).await?;
    ///                 Ok::<_, CancelledError>(i)
    ///             })
    ///             .unwrap()
    ///         })
    ///         .collect();
    ///     let mut total = 0;
    ///     for t in tasks {
    ///         total += t.await?.unwrap();
    ///     }
    ///     Ok::<_, CancelledError>(total)
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(total, 6);
    /// # });
    /// ```
    ///
    /// # Cancellation
    /// Cancelling the parent task cancels the body (at its await points)
    /// and every child; the group waits for them all, then returns
    /// `Err(TaskGroupError::Cancelled(e))` carrying the cancellation — or
    /// the failures, if any child failed meanwhile. Dropping the future
    /// before it completes cancels the children without waiting for them.
    ///
    /// # Panics
    /// When awaited outside an asyncio task.
    pub fn run<F, Fut, R>(body: F) -> TaskGroupRun<F, Fut, R, E>
    where
        F: FnOnce(TaskGroup<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        TaskGroupRun {
            group: TaskGroup {
                inner: Rc::new(Inner {
                    st: RefCell::new(State {
                        parent: None,
                        exiting: false,
                        aborting: false,
                        closed: false,
                        parent_cancel_requested: false,
                        tasks: Vec::new(),
                        errors: Vec::new(),
                        exit_waker: None,
                    }),
                    scope: ScopeNode::new(),
                }),
            },
            body_fn: Some(body),
            body: None,
            phase: Phase::Init,
            value: None,
            propagate: None,
            body_error: None,
            base: None,
            snapshot: Vec::new(),
            cp: Checkpoint::new(),
        }
    }
}

impl<E: 'static> TaskGroup<E> {
    /// Starts `fut` as a child task of the group (`tg.create_task(coro)`).
    ///
    /// The child's `Err(e)` or panic is a failure of the group: `e` (or the
    /// panic) goes to the group's [`TaskGroupError`], the siblings and the
    /// body are cancelled, and the returned task holds
    /// `Err(`[`ChildFailed`]`)`. Its `Ok(v)` stays in the task as `Ok(v)`.
    ///
    /// ```
    /// use asyncio::{CancelledError, TaskGroup};
    /// # asyncio::Runner::builder().virtual_time(true).build().run(async {
    /// TaskGroup::run(|tg| async move {
    ///     let child = tg.create_task(async { Ok::<_, CancelledError>(2) }).unwrap();
    ///     assert_eq!(child.await?.unwrap(), 2);
    ///     Ok::<_, CancelledError>(())
    /// })
    /// .await
    /// .unwrap();
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`InvalidStateError`] if the group is shutting down (a child failed,
    /// or the body failed or was cancelled) or finished; `fut` is dropped.
    pub fn create_task<F, T>(
        &self,
        fut: F,
    ) -> Result<Task<Result<T, ChildFailed>>, InvalidStateError>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        {
            let st = self.inner.st.borrow();
            if st.parent.is_none() {
                return Err(InvalidStateError::new("the TaskGroup has not been entered"));
            }
            if st.closed || (st.exiting && st.tasks.is_empty()) {
                return Err(InvalidStateError::new("the TaskGroup is finished"));
            }
            if st.aborting {
                return Err(InvalidStateError::new("the TaskGroup is shutting down"));
            }
        }
        let slot = Rc::new(ChildSlot {
            failure: RefCell::new(None),
            task: RefCell::new(None),
        });
        let task = crate::create_task(ChildFuture {
            fut,
            slot: slot.clone(),
            group: Rc::downgrade(&self.inner),
            done: false,
        });
        *slot.task.borrow_mut() = Some(task.task_ref());
        self.inner.st.borrow_mut().tasks.push(task.task_ref());
        Ok(task)
    }

    /// [`TaskGroup::create_task`] with a name for the child
    /// (`tg.create_task(coro, name=...)`), as [`TaskRef::name`] reports it.
    ///
    /// ```
    /// use asyncio::{CancelledError, TaskGroup};
    /// # asyncio::run(async {
    /// TaskGroup::run(|tg| async move {
    ///     let child = tg
    ///         .create_task_named("fetcher", async { Ok::<_, CancelledError>(()) })
    ///         .unwrap();
    ///     assert_eq!(child.name(), "fetcher");
    ///     Ok::<_, CancelledError>(())
    /// })
    /// .await
    /// .unwrap();
    /// # });
    /// ```
    ///
    /// # Errors
    /// As [`TaskGroup::create_task`].
    ///
    /// [`TaskRef::name`]: crate::TaskRef::name
    pub fn create_task_named<F, T>(
        &self,
        name: impl Into<String>,
        fut: F,
    ) -> Result<Task<Result<T, ChildFailed>>, InvalidStateError>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        // The child takes no step before this returns: naming it now is
        // naming it at creation.
        let task = self.create_task(fut)?;
        task.set_name(name);
        Ok(task)
    }

    /// Whether the group is shutting down: a child or the body failed, or
    /// the body was cancelled; no child can be added any more.
    ///
    /// ```
    /// use asyncio::{CancelledError, TaskGroup};
    /// # asyncio::run(async {
    /// TaskGroup::run(|tg| async move {
    ///     assert!(!tg.is_aborting());
    ///     Ok::<_, CancelledError>(())
    /// })
    /// .await
    /// .unwrap();
    /// # });
    /// ```
    pub fn is_aborting(&self) -> bool {
        self.inner.st.borrow().aborting
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.st.borrow();
        let state = if st.closed {
            "finished"
        } else if st.aborting {
            "aborting"
        } else if st.exiting {
            "exiting"
        } else if st.parent.is_some() {
            "entered"
        } else {
            "created"
        };
        write!(f, "<TaskGroup tasks={} {state}>", st.tasks.len())
    }
}

/// Where a child leaves its failure for the group.
struct ChildSlot<E> {
    failure: RefCell<Option<Failure<E>>>,
    task: RefCell<Option<TaskRef>>,
}

pin_project_lite::pin_project! {
    /// A child's future: records an `Err` or a panic for the group, and
    /// when dropped (the task is done) schedules the group's processing.
    struct ChildFuture<F, E: 'static> {
        #[pin]
        fut: F,
        slot: Rc<ChildSlot<E>>,
        group: Weak<Inner<E>>,
        done: bool,
    }

    impl<F, E: 'static> PinnedDrop for ChildFuture<F, E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if std::thread::panicking() {
                return;
            }
            let Ok(lp) = crate::get_running_loop() else {
                return;
            };
            // The slot may hold the child's live `CancelledError`: it must
            // outlive this drop, which comes before the task's end is
            // decided, even when the group itself is gone.
            let slot = this.slot.clone();
            let group = this.group.clone();
            lp.call_soon(move || {
                if let Some(group) = group.upgrade() {
                    group.on_task_done(&slot);
                }
            });
        }
    }
}

impl<F, T, E> Future for ChildFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
    E: 'static,
{
    type Output = Result<T, ChildFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            !*this.done,
            "a TaskGroup child was polled after it completed"
        );
        let fut = this.fut;
        let failure = match panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(v))) => {
                *this.done = true;
                return Poll::Ready(Ok(v));
            }
            Ok(Poll::Ready(Err(e))) => Failure::Error(e),
            Err(p) => Failure::Panic(p),
        };
        *this.done = true;
        *this.slot.failure.borrow_mut() = Some(failure);
        Poll::Ready(Err(ChildFailed))
    }
}

enum Phase {
    Init,
    Body,
    Exiting,
    Done,
}

/// The future of [`TaskGroup::run`]: the body's value, or a
/// [`TaskGroupError`].
///
/// ```
/// use asyncio::{CancelledError, TaskGroup};
/// # asyncio::run(async {
/// let run = TaskGroup::run(|_tg| async { Ok::<_, CancelledError>(5) });
/// assert_eq!(run.await.unwrap(), 5);
/// # });
/// ```
///
/// # Cancellation
/// See [`TaskGroup::run`]: a cancellation of the parent cancels the body
/// and the children, and comes out as [`TaskGroupError::Cancelled`] once
/// all are done. Dropped before completion, it cancels the children without
/// waiting for them.
pub struct TaskGroupRun<F, Fut, R, E> {
    group: TaskGroup<E>,
    body_fn: Option<F>,
    body: Option<Pin<Box<Fut>>>,
    phase: Phase,
    value: Option<R>,
    /// A cancellation leaving the body or reaching the exit wait, to
    /// propagate unless the group swallows it.
    propagate: Option<E>,
    body_error: Option<E>,
    /// A panic of the body, resumed at the end.
    base: Option<Box<dyn Any + Send>>,
    /// The parent's live cancellations when the body started.
    snapshot: Vec<Token>,
    cp: Checkpoint,
}

// Only the boxed body future is ever pinned.
impl<F, Fut, R, E> Unpin for TaskGroupRun<F, Fut, R, E> {}

impl<F, Fut, R, E> TaskGroupRun<F, Fut, R, E>
where
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    E: From<CancelledError> + 'static,
{
    fn parent(&self) -> TaskRef {
        self.group
            .inner
            .st
            .borrow()
            .parent
            .clone()
            .expect("entered group")
    }

    /// `__aenter__`: the parent is the current task.
    fn enter(&mut self) {
        let parent = current_task().unwrap_or_else(|| {
            panic!("asyncio::TaskGroup::run() must be awaited inside an asyncio task")
        });
        self.snapshot = parent.cancel_state().live_tokens();
        self.group.inner.st.borrow_mut().parent = Some(parent);
        let body = (self.body_fn.take().expect("entered once"))(self.group.clone());
        self.body = Some(Box::pin(body));
        self.phase = Phase::Body;
    }

    /// Whether a cancellation that started inside the body is still live:
    /// the body's `Err` carries it.
    fn body_cancelled(&self, parent: &TaskRef) -> bool {
        parent
            .cancel_state()
            .live_tokens()
            .iter()
            .any(|t| !self.snapshot.iter().any(|s| Arc::ptr_eq(s, t)))
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let parent = self.parent();
        let scope = self.group.inner.scope.clone();
        let res = {
            let _scope = ScopeGuard::enter(&scope);
            let body = self.body.as_mut().expect("body running");
            panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx)))
        };
        match res {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(v))) => self.value = Some(v),
            Ok(Poll::Ready(Err(e))) => {
                if self.body_cancelled(&parent) {
                    self.propagate = Some(e);
                } else {
                    self.body_error = Some(e);
                }
            }
            Err(p) => self.base = Some(p),
        }
        self.body = None;
        self.snapshot.clear();
        // `__aexit__`: an exception leaving the body aborts the children.
        let failed = self.value.is_none();
        let abort = {
            let mut st = self.group.inner.st.borrow_mut();
            st.exiting = true;
            if failed && !st.aborting {
                st.abort()
            } else {
                Vec::new()
            }
        };
        cancel_all(abort);
        self.phase = Phase::Exiting;
        Poll::Ready(())
    }

    /// `__aexit__`'s wait until no child is left.
    fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.group.inner.clone();
        loop {
            let _scope = ScopeGuard::enter(&inner.scope);
            if let Some(err) = std::task::ready!(self.cp.poll_cancelled(cx)) {
                self.cp = Checkpoint::new();
                if !inner.st.borrow().aborting {
                    // The parent is cancelled from outside while the
                    // children run on: abort, and propagate it afterwards.
                    self.propagate = Some(E::from(err));
                    inner.abort();
                }
                continue;
            }
            let mut st = inner.st.borrow_mut();
            if st.tasks.is_empty() {
                st.exit_waker = None;
                drop(st);
                self.cp.complete();
                return Poll::Ready(());
            }
            st.exit_waker = Some(cx.waker().clone());
            drop(st);
            self.cp.suspend(cx, None);
            return Poll::Pending;
        }
    }

    /// The end of `__aexit__`: the result, and the parent's `cancelling()`
    /// level restored.
    fn finish(&mut self) -> Result<R, TaskGroupError<E>> {
        self.phase = Phase::Done;
        let inner = &self.group.inner;
        inner.scope.set_pending(false);
        let parent = self.parent();
        let (own_request, mut errors) = {
            let mut st = inner.st.borrow_mut();
            st.closed = true;
            (st.parent_cancel_requested, std::mem::take(&mut st.errors))
        };
        if let Some(p) = self.base.take() {
            if own_request {
                parent.uncancel();
            }
            panic::resume_unwind(p);
        }
        let mut propagate = self.propagate.take();
        if own_request && parent.uncancel() == 0 {
            // The body's cancellation was the group's own: swallow it.
            propagate = None;
        }
        if let Some(e) = propagate {
            if errors.is_empty() {
                return Err(TaskGroupError::Cancelled(e));
            }
        }
        if let Some(e) = self.body_error.take() {
            errors.push(Failure::Error(e));
        }
        if !errors.is_empty() {
            // 3.13: keep an outside cancellation alive across the failure
            // (it is delivered at the parent's next await point).
            if parent.cancelling() > 0 {
                parent.uncancel();
                parent.cancel();
            }
            return Err(TaskGroupError::Failed(errors));
        }
        match self.value.take() {
            Some(v) => Ok(v),
            // Unreachable: the body's cancellation is swallowed only when the
            // group cancelled it, which a failure always precedes.
            None => Err(TaskGroupError::Cancelled(E::from(cancelled_here(None)))),
        }
    }
}

impl<F, Fut, R, E> Future for TaskGroupRun<F, Fut, R, E>
where
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    E: From<CancelledError> + 'static,
{
    type Output = Result<R, TaskGroupError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Init => this.enter(),
                Phase::Body => std::task::ready!(this.poll_body(cx)),
                Phase::Exiting => {
                    std::task::ready!(this.poll_exit(cx));
                    return Poll::Ready(this.finish());
                }
                Phase::Done => panic!("asyncio::TaskGroup::run() polled after it completed"),
            }
        }
    }
}

impl<F, Fut, R, E> Drop for TaskGroupRun<F, Fut, R, E> {
    fn drop(&mut self) {
        if !matches!(self.phase, Phase::Body | Phase::Exiting) {
            return;
        }
        // Dropped before the end: the children must not outlive the group.
        let inner = &self.group.inner;
        let Ok(mut st) = inner.st.try_borrow_mut() else {
            return;
        };
        st.closed = true;
        let tasks = st.abort();
        let own_request = std::mem::take(&mut st.parent_cancel_requested);
        let parent = st.parent.clone();
        drop(st);
        cancel_all(tasks);
        inner.scope.set_pending(false);
        if let (true, Some(parent)) = (own_request, parent) {
            parent.uncancel();
        }
    }
}

/// What a failed [`TaskGroup`] child or body gave: its `Err`, or a panic.
///
/// ```
/// use asyncio::{Failure, TaskGroup, TaskGroupError};
/// type BoxError = Box<dyn std::error::Error + Send + Sync>; // holds a CancelledError too
/// # asyncio::run(async {
/// let r = TaskGroup::run(|tg| async move {
///     tg.create_task(async { Err::<(), BoxError>("bad input".into()) }).unwrap();
///     tg.create_task::<_, ()>(async { panic!("oops") }).unwrap();
///     Ok::<_, BoxError>(())
/// })
/// .await;
/// let Err(TaskGroupError::Failed(failures)) = r else { panic!() };
/// assert_eq!(failures[0].error().unwrap().to_string(), "bad input");
/// assert_eq!(failures[1].panic_message(), Some("oops"));
/// # });
/// ```
pub enum Failure<E> {
    /// The `Err` it returned.
    Error(E),
    /// The payload it panicked with.
    Panic(Box<dyn Any + Send>),
}

impl<E> Failure<E> {
    /// The error, unless this is a panic.
    pub fn error(&self) -> Option<&E> {
        match self {
            Failure::Error(e) => Some(e),
            Failure::Panic(_) => None,
        }
    }

    /// The error, unless this is a panic.
    pub fn into_error(self) -> Option<E> {
        match self {
            Failure::Error(e) => Some(e),
            Failure::Panic(_) => None,
        }
    }

    /// Whether this is a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self, Failure::Panic(_))
    }

    /// The panic message, for a panic with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Failure::Panic(p) => panic_str(&**p),
            Failure::Error(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Failure::Panic(p) => f
                .debug_tuple("Panic")
                .field(&panic_str(&**p).unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => fmt::Display::fmt(e, f),
            Failure::Panic(p) => write!(
                f,
                "panicked: {}",
                panic_str(&**p).unwrap_or("<non-string payload>")
            ),
        }
    }
}

/// Why [`TaskGroup::run`] did not return the body's value.
///
/// ```
/// use asyncio::{CancelledError, TaskGroup, TaskGroupError};
/// #[derive(Debug)]
/// enum E { Cancelled(CancelledError), Bad }
/// impl From<CancelledError> for E {
///     fn from(e: CancelledError) -> Self { E::Cancelled(e) }
/// }
/// # asyncio::run(async {
/// let r = TaskGroup::run(|tg| async move {
///     tg.create_task(async { Err::<(), _>(E::Bad) }).unwrap();
///     Ok::<_, E>(())
/// })
/// .await;
/// let err: TaskGroupError<E> = r.unwrap_err();
/// assert!(!err.is_cancelled());
/// assert!(matches!(err.failures()[0].error(), Some(E::Bad)));
/// # });
/// ```
pub enum TaskGroupError<E> {
    /// The parent task was cancelled from outside and nothing failed: the
    /// cancellation, as the body's error (or converted from the
    /// `CancelledError` that reached the group's exit). Propagate it.
    Cancelled(E),
    /// Children failed (in the order they finished), and then possibly the
    /// body — Python's `ExceptionGroup("unhandled errors in a TaskGroup")`.
    Failed(Vec<Failure<E>>),
}

impl<E> TaskGroupError<E> {
    /// Whether the group was cancelled (nothing failed).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskGroupError::Cancelled(_))
    }

    /// The failures (empty when cancelled).
    pub fn failures(&self) -> &[Failure<E>] {
        match self {
            TaskGroupError::Failed(f) => f,
            TaskGroupError::Cancelled(_) => &[],
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Cancelled(e) => f.debug_tuple("Cancelled").field(e).finish(),
            TaskGroupError::Failed(v) => f.debug_tuple("Failed").field(v).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Cancelled(e) => write!(f, "task group cancelled: {e}"),
            TaskGroupError::Failed(v) => {
                write!(f, "unhandled errors in a TaskGroup ({}):", v.len())?;
                for (i, e) in v.iter().enumerate() {
                    write!(f, "{} {e}", if i == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}

/// What a [`TaskGroup`] child's task holds when the child failed: its error
/// or panic went to the group's [`TaskGroupError`].
///
/// ```
/// use asyncio::{ChildFailed, TaskGroup};
/// type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// # asyncio::run(async {
/// let kept = std::rc::Rc::new(std::cell::RefCell::new(None));
/// let k = kept.clone();
/// let r = TaskGroup::run(|tg| async move {
///     let child = tg.create_task(async { Err::<u8, BoxError>("bad".into()) }).unwrap();
///     *k.borrow_mut() = Some(child);
///     Ok::<_, BoxError>(())
/// })
/// .await;
/// assert!(r.is_err()); // the group has the error
/// let child = kept.borrow_mut().take().unwrap();
/// assert_eq!(child.await.unwrap(), Err(ChildFailed)); // the task, a marker
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildFailed;

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task failed; its error was reported to its TaskGroup")
    }
}

impl std::error::Error for ChildFailed {}
