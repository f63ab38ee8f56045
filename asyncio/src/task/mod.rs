//! Tasks: `create_task`, the `Task<T>` handle, `TaskRef`, `current_task`,
//! `all_tasks`.
//!
//! A task is one heap block (`raw.rs`): header, future, then output, and
//! the reference counts of its handles and wakers. It is registered with
//! the loop until it is done. Its waker is the only way other threads can
//! reach it, and it reaches only the task's key and wake state.

pub(crate) mod cell;
pub(crate) mod join;
mod raw;

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

use crate::cancel::delivery::deliver;
use crate::cancel::error::CancelledError;
use crate::cancel::state::CancelState;
use crate::runtime::context;
use cell::{End, Flag, Header};
pub use join::{Flatten, FlattenFuture, Join, Wait, WaitFuture};
pub(crate) use raw::{task_of_waker, CurrentTask, RawTask, Typed};

/// How a finished task ended, as handed to whoever awaits it.
pub(crate) enum Outcome<T> {
    Pending,
    Value(T),
    Cancelled(Option<Arc<str>>),
    Panicked(Box<dyn Any + Send>),
    /// The value was already taken by an earlier await.
    Taken,
}

/// A type-erased, cloneable handle to a task: everything but its output.
///
/// [`current_task`] and [`all_tasks`] return these; a [`Task<T>`] derefs to
/// one. Like every task handle it is `!Send`: it belongs to its loop's
/// thread.
#[derive(Clone)]
pub struct TaskRef(pub(crate) RawTask);

impl TaskRef {
    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Running or already woken: asyncio would record a cancel request as
    /// `_must_cancel` (withdrawable by `uncancel`) rather than cancel the
    /// awaited future.
    pub(crate) fn is_awake(&self) -> bool {
        self.header().is_running() || self.0.is_queued()
    }

    pub(crate) fn cancel_state(&self) -> &CancelState {
        &self.header().cancel
    }

    pub(crate) fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.0.ptr_eq(&other.0)
    }

    /// The task's id: unique in the process, increasing in creation order
    /// on each thread (so among one loop's tasks).
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// The task's name: `Task-N` unless set with [`TaskRef::set_name`].
    pub fn name(&self) -> String {
        let h = self.header();
        h.given_name().unwrap_or_else(|| format!("Task-{}", h.id))
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().extras().set_name(Some(name.into()));
    }

    /// Whether the task has finished: with a value, cancelled, or panicked.
    pub fn done(&self) -> bool {
        self.header().is_done()
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.header().end() == End::Cancelled
    }

    /// Whether the task ended with a panic.
    pub fn panicked(&self) -> bool {
        self.header().end() == End::Panicked
    }

    /// The number of cancel requests made and not taken back with
    /// [`TaskRef::uncancel`] (Python's `Task.cancelling()`). An expiring
    /// timeout counts as one request until it exits.
    pub fn cancelling(&self) -> u32 {
        self.cancel_state().cancelling()
    }

    /// Requests cancellation (Python's `Task.cancel()`).
    ///
    /// Returns `false` if the task is already done. Otherwise the request
    /// is counted and delivered once: every await point of the task that is
    /// suspended right now returns [`CancelledError`];
    /// if none is, the next one the task reaches does. A task cancelled
    /// before its first step never runs its body.
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// [`TaskRef::cancel`] with a message, carried by the `CancelledError`.
    pub fn cancel_with(&self, msg: impl Into<String>) -> bool {
        self.cancel_inner(Some(Arc::from(msg.into())))
    }

    pub(crate) fn cancel_inner(&self, msg: Option<Arc<str>>) -> bool {
        let h = self.header();
        h.flags().set(Flag::Retrieved, true);
        if h.is_done() {
            return false;
        }
        h.cancel.add_request();
        deliver(self, None, msg);
        true
    }

    /// Takes back one cancel request and returns the new count (Python
    /// 3.13's `Task.uncancel()`): reaching zero also withdraws a request
    /// that was not delivered yet.
    pub fn uncancel(&self) -> u32 {
        let n = self.cancel_state().uncancel();
        if n == 0 {
            crate::cancel::delivery::withdraw_soft(self);
        }
        n
    }

    /// Drops the task's future at once and ends it cancelled, for code that
    /// never reaches an await point. [`TaskRef::cancel`] is the normal,
    /// cooperative way. Aborting the running task takes effect when its
    /// current step returns.
    pub fn abort(&self) {
        self.0.abort();
    }

    /// Calls `f` on the loop once the task is done (on a later turn, never
    /// synchronously; at once-scheduled if it is already done).
    pub fn add_done_callback(&self, f: impl FnOnce(&TaskRef) + 'static) {
        let h = self.header();
        if h.is_done() {
            if let Some(lp) = self.0.owning_loop() {
                let me = self.clone();
                lp.call_soon(Box::new(move || f(&me)));
            }
        } else {
            h.waiters
                .edit(|list| list.push(cell::Waiter::Callback(Box::new(f))));
        }
    }

    /// Waits for the task to finish, through this shared handle: `Ok(())`
    /// if it ended with a value (take the value from its [`Task`]),
    /// `Err(CancelledError)` if it ended cancelled. Any number of awaiters
    /// may wait for one task. A cancellation of the waiter is forwarded to
    /// the task, as when awaiting the `Task` itself.
    ///
    /// # Panics
    /// If the task panicked (the panic message is repeated).
    pub fn wait(&self) -> Wait {
        Wait::new(self.clone())
    }

    /// The message of the cancellation that ended the task, if it ended
    /// cancelled with a message.
    pub fn cancel_message(&self) -> Option<Arc<str>> {
        self.header().cancel_message()
    }

    /// The panic message, if the task panicked.
    pub fn panic_message(&self) -> Option<String> {
        self.header().panic_message()
    }

    /// The panic message if nobody retrieved the panic yet; marks it
    /// retrieved (it is being reported).
    pub(crate) fn take_unretrieved_panic(&self) -> Option<String> {
        if self.header().flags().replace(Flag::Retrieved, true) {
            None
        } else {
            self.panic_message()
        }
    }

    /// Registers an await of this task (at the end of the list, as asyncio
    /// adds a done-callback per await) or refreshes its waker; returns its
    /// id. Withdraw it with [`TaskRef::remove_waiter`] when the await ends.
    /// `me` is the task polling the await, if any: under its own waker the
    /// await is recorded by its key (see [`cell::Waiter`]).
    pub(crate) fn add_waiter(
        &self,
        id: &mut Option<u32>,
        me: Option<&TaskRef>,
        waker: &std::task::Waker,
    ) {
        let h = self.header();
        // The awaiting task's key, if the await can be recorded by it.
        let by_key = me
            .filter(|me| me.0.same_loop(&self.0) && me.0.is_own_waker(waker))
            .map(|me| me.0.key());
        let waiter = |id| match by_key {
            Some(key) => cell::Waiter::Task(id, key),
            None => cell::Waiter::Wake(id, waker.clone()),
        };
        h.waiters.edit(|waiters| {
            if let Some(id) = *id {
                if let Some(w) = waiters.iter_mut().find(|w| w.await_id() == Some(id)) {
                    let same = match (&*w, by_key) {
                        (cell::Waiter::Task(_, key), Some(new)) => *key == new,
                        (cell::Waiter::Wake(_, w), None) => w.will_wake(waker),
                        _ => false,
                    };
                    if !same {
                        *w = waiter(id);
                    }
                    return;
                }
            }
            let new = next_await_id();
            waiters.push(waiter(new));
            *id = Some(new);
        })
    }

    /// Registers `outer` to be completed by a done-callback of this task
    /// (at the end of the list, as asyncio's `shield` adds its callback);
    /// `id` receives its id. Withdraw it with [`TaskRef::remove_waiter`].
    /// The task must not be done.
    pub(crate) fn add_outer(&self, id: &mut Option<u32>, outer: &Rc<cell::Outer>) {
        debug_assert!(id.is_none() && !self.done());
        let new = next_await_id();
        self.header()
            .waiters
            .edit(|waiters| waiters.push(cell::Waiter::Outer(new, outer.clone())));
        *id = Some(new);
    }

    /// Withdraws an await registered with [`TaskRef::add_waiter`] or
    /// [`TaskRef::add_outer`].
    #[inline]
    pub(crate) fn remove_waiter(&self, id: &mut Option<u32>) {
        if let Some(id) = id.take() {
            self.remove_waiter_id(id);
        }
    }

    fn remove_waiter_id(&self, id: u32) {
        self.header()
            .waiters
            .edit(|waiters| waiters.retain(|w| w.await_id() != Some(id)));
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.header().end() {
            End::Running if self.header().is_running() => "running",
            End::Running => "pending",
            End::Value => "finished",
            End::Cancelled => "cancelled",
            End::Panicked => "panicked",
        };
        write!(f, "<Task {} {state}>", self.name())
    }
}

/// A handle to a task producing `T`, from [`create_task`].
///
/// Awaiting it (or `&mut` it, to keep the handle) gives
/// `Result<T, CancelledError>`: `Ok` with the output, or `Err` if the task
/// ended cancelled. If the task panicked, the panic is raised again in the
/// awaiter. While awaiting, a cancellation of the awaiter is forwarded to
/// the task, as in asyncio; if the task swallows it and returns a value, the
/// awaiter gets the value. Dropping the handle does not cancel the task.
///
/// `Task<T>` derefs to [`TaskRef`] for `done()`, `cancel()`, `name()`, ….
///
/// A task belongs to its loop's thread: its handles are `!Send`, so moving
/// one to another thread is a compile error.
///
/// ```compile_fail
/// asyncio::run(async {
///     let task = asyncio::create_task(async { 1 });
///     std::thread::spawn(move || task.cancel()); // error: `Task` is not `Send`
/// });
/// ```
///
/// ```compile_fail
/// asyncio::run(async {
///     let task = asyncio::current_task().unwrap();
///     std::thread::spawn(move || task.name()); // error: `TaskRef` is not `Send`
/// });
/// ```
pub struct Task<T> {
    obj: Typed<T>,
}

impl<T: 'static> Task<T> {
    pub(crate) fn new(obj: Typed<T>) -> Task<T> {
        Task { obj }
    }

    pub(crate) fn take_outcome(&self) -> Outcome<T> {
        self.obj.take_outcome()
    }

    /// A type-erased handle to the same task.
    pub fn task_ref(&self) -> TaskRef {
        self.obj.task().clone()
    }
}

impl<T> Deref for Task<T> {
    type Target = TaskRef;

    fn deref(&self) -> &TaskRef {
        self.obj.task()
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let task = self.obj.task();
        let h = task.header();
        h.flags().set(Flag::HandleAlive, false);
        if h.end() == End::Panicked && !h.flags().get(Flag::Retrieved) {
            // The loop is looked up only when there is a panic to report.
            let report = task
                .panic_message()
                .and_then(|m| Some((m, task.0.owning_loop()?)));
            if let Some((msg, lp)) = report {
                h.flags().set(Flag::Retrieved, true);
                lp.report(
                    format!("Task exception was never retrieved: {msg}"),
                    Some(task),
                );
            }
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.obj.task(), f)
    }
}

impl<T: 'static> IntoFuture for Task<T> {
    type Output = Result<T, crate::CancelledError>;
    type IntoFuture = Join<'static, T>;

    fn into_future(self) -> Join<'static, T> {
        Join::owned(self)
    }
}

impl<'a, T: 'static> IntoFuture for &'a mut Task<T> {
    type Output = Result<T, crate::CancelledError>;
    type IntoFuture = Join<'a, T>;

    fn into_future(self) -> Join<'a, T> {
        Join::borrowed(self)
    }
}

/// Schedules `fut` as a new task on the running loop (asyncio's
/// `create_task`). Its first step runs on a later turn of the loop, in FIFO
/// order with everything else that is ready.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(async { "hello" });
///     assert!(!task.done());
///     assert_eq!(task.await.unwrap(), "hello");
/// });
/// ```
///
/// # Panics
/// When no loop is running on this thread (use
/// [`get_running_loop`](crate::get_running_loop) to check).
pub fn create_task<F>(fut: F) -> Task<F::Output>
where
    F: Future + 'static,
{
    context::expect_loop("asyncio::create_task()").spawn(fut)
}

/// Options for a new task: a name and eager start. From [`Task::builder`].
///
/// ```
/// asyncio::run(async {
///     let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
///     let l = log.clone();
///     let task = asyncio::Task::builder()
///         .name("worker")
///         .eager_start(true)
///         .spawn(async move {
///             l.borrow_mut().push("child runs first");
///             asyncio::sleep(std::time::Duration::ZERO).await.unwrap();
///             l.borrow_mut().push("child resumes");
///         });
///     log.borrow_mut().push("parent");
///     assert_eq!(task.name(), "worker");
///     task.await.unwrap();
///     assert_eq!(*log.borrow(), ["child runs first", "parent", "child resumes"]);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct TaskBuilder {
    name: Option<String>,
    eager: bool,
}

impl TaskBuilder {
    /// The task's name (instead of `Task-N`), like `create_task(coro, name=...)`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs the task's first step synchronously inside [`TaskBuilder::spawn`],
    /// up to its first suspension, as Python 3.12's eager tasks do: code
    /// before the first await runs before the caller's next statement, and
    /// a task that finishes without suspending is done when `spawn` returns
    /// (it is never scheduled).
    pub fn eager_start(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }

    /// Creates the task on the running loop.
    ///
    /// # Panics
    /// When no loop is running on this thread.
    pub fn spawn<F>(self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
    {
        let lp = context::expect_loop("asyncio::Task::builder().spawn()");
        lp.spawn_with(fut, self.name, self.eager)
    }
}

impl Task<()> {
    /// Options for a new task: name, eager start.
    pub fn builder() -> TaskBuilder {
        TaskBuilder::default()
    }
}

/// The task running right now, or `None` outside a task (in a plain
/// callback, or with no running loop).
pub fn current_task() -> Option<TaskRef> {
    current_task_obj()
}

#[inline]
pub(crate) fn current_task_obj() -> Option<TaskRef> {
    context::with_loop(|lp| lp.current_task()).flatten()
}

/// Runs `f` with the task running right now, lent rather than counted
/// (`None` outside a task): for questions an await point asks on every
/// suspension.
#[inline]
pub(crate) fn with_current_task<R>(f: impl FnOnce(&TaskRef) -> R) -> Option<R> {
    context::with_loop(|lp| lp.current.with(f)).flatten()
}

/// Every task of the running loop that is not done, in creation order
/// (empty with no running loop).
pub fn all_tasks() -> Vec<TaskRef> {
    context::with_loop(|lp| lp.all_tasks()).unwrap_or_default()
}

/// A `CancelledError` counted against the current task's root scope: a
/// cancellation that comes out of an awaited task or child (DESIGN.md §3).
/// Outside a task, an inert error.
pub(crate) fn cancelled_here(msg: Option<Arc<str>>) -> CancelledError {
    with_current_task(|t| t.cancel_state().root_error(msg)).unwrap_or_else(CancelledError::new)
}

/// A `CancelledError` raised by hand in the current task.
pub(crate) fn current_raised_error(msg: Option<Arc<str>>) -> Option<CancelledError> {
    with_current_task(|t| t.cancel_state().raised_error(msg))
}

/// A fresh id for an await of a task (how its waiter entry is found again
/// to refresh or withdraw it). One counter per thread: ids need only tell
/// apart the awaits registered on one task at a time, and a wrapped
/// counter meets an id still in use only after four billion awaits while
/// that one waits.
fn next_await_id() -> u32 {
    thread_local! {
        static NEXT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    NEXT.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    })
}
