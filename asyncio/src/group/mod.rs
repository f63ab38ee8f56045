//! Running many tasks together: [`gather`](fn@crate::gather),
//! [`wait`](crate::wait), [`as_completed`](crate::as_completed) and
//! [`TaskGroup`].
//!
//! All four are built on the public task API — `add_done_callback`,
//! `cancel`, `done()` — plus the crate's checkpoints, so that each await
//! point follows the cancellation rules of the rest of the crate (DESIGN.md
//! §3) and resumes on the same loop turn as asyncio:
//!
//! | asyncio | here | cancelling the awaiter… |
//! |---|---|---|
//! | `gather(*aws)` | [`gather`](fn@crate::gather), [`gather!`](crate::gather!), [`try_gather`](fn@crate::try_gather) | cancels every child; the gather then ends cancelled |
//! | `wait(aws, timeout, return_when)` | [`wait`](crate::wait) | cancels nothing |
//! | `as_completed(aws, timeout)` | [`as_completed`](crate::as_completed) | cancels nothing |
//! | `async with TaskGroup() as tg:` | [`TaskGroup::run`](crate::TaskGroup::run) | cancels the body and every child |
//!
//! # What a child is
//!
//! `gather` waits for *children*: anything that names a task ([`AsTask`])
//! and can hand over its output once the task is done ([`Child`]) — a
//! [`Task<T>`], a [`TaskRef`] (output `()`), or a type of your own. Plain
//! futures are accepted too ([`IntoChild`]): like asyncio's
//! `ensure_future`, each becomes a task when `gather` is called. `wait` and
//! `as_completed` need only [`AsTask`], so they also take `&Task<T>` and
//! `&mut Task<T>` and leave the outputs in the tasks.
//!
//! # Failures
//!
//! A Rust task has no exceptions: its output is an arbitrary `T`. This
//! module takes these positions, each documented where it applies:
//!
//! - a **panic** in a child is its exception: `gather` re-raises it in the
//!   awaiter, `wait(.., FirstException)` stops at it, a `TaskGroup` reports
//!   it in its [`TaskGroupError`];
//! - a child that **ends cancelled** raises `CancelledError`, as in asyncio;
//! - an **`Err` output** is a failure only where the API asks for
//!   `Result` outputs: [`try_gather`](fn@crate::try_gather) and
//!   [`TaskGroup`] children. Elsewhere an `Err` is a value
//!   like any other (it completes the task for `wait`, it is collected by
//!   `gather`).

mod as_completed;
pub(crate) mod gather;
mod taskgroup;
mod wait;

use std::any::Any;
use std::fmt;
use std::future::Future;

use crate::cancel::error::CancelRecord;
use crate::task::{self, Task, TaskRef};

pub use as_completed::{as_completed, AsCompleted, AsCompletedError, Next};
pub use gather::{
    gather, gather_tuple, try_gather, try_gather_tuple, Children, Gather, GatherFuture,
    GatherOutcomes, TryChildren, TryGather,
};
pub use taskgroup::{ChildFailed, Failure, TaskGroup, TaskGroupError, TaskGroupRun};
pub use wait::{wait, ReturnWhen, WaitTasks};

/// Anything that names a task: [`Task<T>`], [`TaskRef`], and references to
/// them. [`wait`](crate::wait) and [`as_completed`](crate::as_completed)
/// accept any of these.
///
/// ```
/// use asyncio::AsTask;
/// asyncio::run(async {
///     let task = asyncio::create_task(async { 1 });
///     assert_eq!(task.as_task().id(), (&task).as_task().id());
///     task.await.unwrap();
/// });
/// ```
pub trait AsTask {
    /// The task.
    fn as_task(&self) -> &TaskRef;
}

impl<T> AsTask for Task<T> {
    fn as_task(&self) -> &TaskRef {
        self
    }
}

impl AsTask for TaskRef {
    fn as_task(&self) -> &TaskRef {
        self
    }
}

impl<A: AsTask + ?Sized> AsTask for &A {
    fn as_task(&self) -> &TaskRef {
        (**self).as_task()
    }
}

impl<A: AsTask + ?Sized> AsTask for &mut A {
    fn as_task(&self) -> &TaskRef {
        (**self).as_task()
    }
}

/// A task that [`gather`](fn@crate::gather) waits for, and how to take its
/// output once it is done.
///
/// Implemented by [`Task<T>`] (output `T`) and [`TaskRef`] (output `()`:
/// the value stays in the task's own handle). Implement it for a type of
/// your own to gather tasks whose outputs you keep elsewhere; implement
/// [`IntoChild`] for it too (returning itself).
///
/// ```
/// use asyncio::{AsTask, Child, IntoChild, TaskRef};
/// use std::{cell::RefCell, rc::Rc};
///
/// /// A task whose body stores its result in a shared cell.
/// struct Cached(TaskRef, Rc<RefCell<Option<u32>>>);
///
/// impl AsTask for Cached {
///     fn as_task(&self) -> &TaskRef { &self.0 }
/// }
/// impl Child for Cached {
///     type Output = u32;
///     fn take_value(&mut self) -> u32 { self.1.borrow().expect("stored by the body") }
/// }
/// impl IntoChild for Cached {
///     type Child = Self;
///     fn into_child(self) -> Self { self }
/// }
///
/// asyncio::run(async {
///     let cell = Rc::new(RefCell::new(None));
///     let c = cell.clone();
///     let task = asyncio::create_task(async move { *c.borrow_mut() = Some(5) });
///     let both = [Cached(task.task_ref(), cell.clone()), Cached(task.task_ref(), cell)];
///     assert_eq!(asyncio::gather(both).await.unwrap(), [5, 5]);
/// });
/// ```
pub trait Child: AsTask + 'static {
    /// What the child produces.
    type Output;

    /// Takes the output of the task, which has finished with a value.
    /// Called at most once, and only when the task ended neither cancelled
    /// nor panicked.
    fn take_value(&mut self) -> Self::Output;

    /// How the finished task ended. The default builds it from the task's
    /// state and [`Child::take_value`]; a panic becomes a payload holding
    /// its message. [`Task<T>`] overrides it to hand over the panic payload
    /// itself (which counts as retrieving the panic).
    fn take_outcome(&mut self) -> Outcome<Self::Output> {
        let task = self.as_task();
        assert!(
            task.done(),
            "Child::take_outcome() on {}, which is not done",
            task.name()
        );
        if task.cancelled() {
            Outcome::Cancelled(CancelRecord::new(task.cancel_message()))
        } else if let Some(msg) = task.panic_message() {
            Outcome::Panicked(Box::new(msg))
        } else {
            Outcome::Value(self.take_value())
        }
    }
}

impl<T: 'static> Child for Task<T> {
    type Output = T;

    fn take_value(&mut self) -> T {
        match self.take_outcome() {
            Outcome::Value(v) => v,
            Outcome::Cancelled(_) => panic!("{} ended cancelled, not with a value", self.name()),
            Outcome::Panicked(p) => std::panic::resume_unwind(p),
        }
    }

    fn take_outcome(&mut self) -> Outcome<T> {
        match Task::take_outcome(self) {
            task::Outcome::Value(v) => Outcome::Value(v),
            task::Outcome::Cancelled(msg) => Outcome::Cancelled(CancelRecord::new(msg)),
            task::Outcome::Panicked(p) => Outcome::Panicked(p),
            task::Outcome::Taken => panic!(
                "the output of {} was already taken by an earlier await",
                self.name()
            ),
            task::Outcome::Pending => panic!("{} is not done", self.name()),
        }
    }
}

impl Child for TaskRef {
    type Output = ();

    fn take_value(&mut self) {}
}

/// Conversion into a [`Child`]: what [`gather`](fn@crate::gather) and
/// [`gather!`](crate::gather!) accept. A future becomes a task at once
/// (asyncio's `ensure_future`); a [`Task<T>`] or [`TaskRef`] is used as it
/// is.
///
/// ```
/// use asyncio::IntoChild;
/// asyncio::run(async {
///     let task = async { 3 }.into_child(); // now a Task<i32>
///     assert_eq!(task.await.unwrap(), 3);
/// });
/// ```
pub trait IntoChild {
    /// The child it becomes.
    type Child: Child;

    /// Converts; a future is spawned as a task on the running loop.
    ///
    /// # Panics
    /// For a future, when no loop is running on this thread.
    fn into_child(self) -> Self::Child;
}

impl<F> IntoChild for F
where
    F: Future + 'static,
    F::Output: 'static,
{
    type Child = Task<F::Output>;

    fn into_child(self) -> Task<F::Output> {
        crate::create_task(self)
    }
}

impl<T: 'static> IntoChild for Task<T> {
    type Child = Task<T>;

    fn into_child(self) -> Task<T> {
        self
    }
}

impl IntoChild for TaskRef {
    type Child = TaskRef;

    fn into_child(self) -> TaskRef {
        self
    }
}

/// How a finished child ended: what
/// [`gather(..).return_exceptions()`](crate::Gather::return_exceptions)
/// collects for each child (asyncio puts the exception object in the list).
///
/// ```
/// use asyncio::Outcome;
/// asyncio::run(async {
///     let ok = asyncio::create_task(async { 1 });
///     let cancelled = asyncio::create_task(async { 2 });
///     cancelled.cancel();
///     let outcomes = asyncio::gather([ok, cancelled]).return_exceptions().await.unwrap();
///     assert!(matches!(outcomes[0], Outcome::Value(1)));
///     assert!(outcomes[1].is_cancelled());
/// });
/// ```
pub enum Outcome<T> {
    /// The task finished with this output.
    Value(T),
    /// The task ended cancelled; the record cancels nobody.
    Cancelled(CancelRecord),
    /// The task panicked; the payload, as `catch_unwind` gives it.
    Panicked(Box<dyn Any + Send>),
}

impl<T> Outcome<T> {
    /// Whether the task finished with a value.
    pub fn is_value(&self) -> bool {
        matches!(self, Outcome::Value(_))
    }

    /// Whether the task ended cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Outcome::Cancelled(_))
    }

    /// Whether the task panicked.
    pub fn is_panicked(&self) -> bool {
        matches!(self, Outcome::Panicked(_))
    }

    /// The value, if the task finished with one.
    pub fn value(self) -> Option<T> {
        match self {
            Outcome::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The panic message, if the task panicked with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Outcome::Panicked(p) => panic_str(&**p),
            _ => None,
        }
    }

    /// Maps the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Value(v) => Outcome::Value(f(v)),
            Outcome::Cancelled(r) => Outcome::Cancelled(r),
            Outcome::Panicked(p) => Outcome::Panicked(p),
        }
    }

    /// The value; a panic is raised again here, and a cancellation becomes a
    /// panic naming it.
    ///
    /// # Panics
    /// If the task did not finish with a value.
    pub fn unwrap(self) -> T {
        match self {
            Outcome::Value(v) => v,
            Outcome::Cancelled(r) => panic!("called Outcome::unwrap() on a cancelled task: {r}"),
            Outcome::Panicked(p) => std::panic::resume_unwind(p),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Outcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Outcome::Cancelled(r) => f.debug_tuple("Cancelled").field(r).finish(),
            Outcome::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_str(&**p).unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

/// The text of a panic payload, if it is a string.
pub(crate) fn panic_str(p: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = p.downcast_ref::<&str>() {
        Some(s)
    } else {
        p.downcast_ref::<String>().map(String::as_str)
    }
}
