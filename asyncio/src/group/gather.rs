//! `gather`: wait for several children, results in argument order.
//!
//! # How it follows asyncio (`tasks.py`, `gather` and `_GatheringFuture`)
//!
//! The gather keeps asyncio's *outer future* as shared state: every distinct
//! child gets a done-callback (run on the loop turn after the child
//! finishes, as in asyncio), and the callback decides the outer result:
//!
//! - without `return_exceptions`, the first child that ends cancelled makes
//!   the gather end with `CancelledError`, the first that panics (or, for
//!   [`try_gather`](fn@try_gather), returns `Err`) makes it fail with that — at once, the
//!   other children running on, not cancelled;
//! - when every child is done, the gather ends with the results in argument
//!   order — or with `CancelledError` if the gather itself was cancelled,
//!   even if every child swallowed that cancellation (bpo-32684).
//!
//! The awaiter is woken when the outer result is decided, so it resumes one
//! turn after the deciding callback, exactly as asyncio's task resumes after
//! the outer future completes. Children already done when the gather is
//! first polled are processed on the spot (in argument order); if that
//! decides the result, the gather completes without suspending (3.12+).
//!
//! Cancelling the awaiter is forwarded to the outer state
//! ([`CancelTarget`]): it cancels every child, once per argument (a task
//! passed twice is cancelled twice, as in asyncio), and accepts if any child
//! did. If none did (every child is done, the decision is one callback
//! away), the request is refused and the awaiter raises `CancelledError`
//! when the gather completes — asyncio's `_must_cancel`.
//!
//! A task passed several times is waited for once; each argument takes its
//! own output ([`Child::take_outcome`]), so the same `TaskRef` may appear
//! twice, a `Task<T>` cannot.
//!
//! # Differences from asyncio
//!
//! - The gather starts watching its children when it is first polled
//!   (asyncio: when `gather()` is called). Futures passed in become tasks at
//!   the call, as in asyncio; awaited at once, the two are the same.
//! - After a gather failed early, a child that panics later is reported by
//!   the loop ("Task exception was never retrieved") once the gather has
//!   dropped its handle; asyncio silently marks such late exceptions
//!   retrieved. A panic should not vanish.
//! - A child's done-callback runs after the tasks awaiting that child
//!   directly (the task cell wakes awaiters before scheduling callbacks),
//!   whereas asyncio runs both in registration order; it matters only when
//!   such an awaiter cancels the gatherer on that very turn.

use std::any::Any;
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{Child, IntoChild, Outcome};
use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::delivery::CancelTarget;
use crate::cancel::error::{CancelRecord, CancelledError};
use crate::task::cancelled_here;
use crate::task::TaskRef;

/// A finished child's outcome with its value type erased, so that tuples of
/// children of different types share one gather.
#[doc(hidden)]
pub enum Taken {
    Value(Box<dyn Any>),
    Cancelled(CancelRecord),
    Panicked(Box<dyn Any + Send>),
}

impl Taken {
    fn from_outcome<T: 'static>(o: Outcome<T>) -> Taken {
        match o {
            Outcome::Value(v) => Taken::Value(Box::new(v)),
            Outcome::Cancelled(r) => Taken::Cancelled(r),
            Outcome::Panicked(p) => Taken::Panicked(p),
        }
    }

    fn into_outcome<T: 'static>(self) -> Outcome<T> {
        match self {
            Taken::Value(v) => Outcome::Value(*v.downcast::<T>().expect("gather: value type")),
            Taken::Cancelled(r) => Outcome::Cancelled(r),
            Taken::Panicked(p) => Outcome::Panicked(p),
        }
    }

    fn into_value<T: 'static>(self) -> T {
        match self.into_outcome() {
            Outcome::Value(v) => v,
            _ => unreachable!("gather: a child without a value in the results"),
        }
    }

    fn into_ok<T: 'static, E: 'static>(self) -> T {
        match self.into_value::<Result<T, E>>() {
            Ok(v) => v,
            Err(_) => unreachable!("try_gather: an Err in the results"),
        }
    }

    fn is_err<T: 'static, E: 'static>(&self) -> bool {
        match self {
            Taken::Value(v) => v.downcast_ref::<Result<T, E>>().is_some_and(Result::is_err),
            _ => false,
        }
    }

    fn into_err<T: 'static, E: 'static>(self) -> E {
        match self.into_value::<Result<T, E>>() {
            Err(e) => e,
            Ok(_) => unreachable!("try_gather: failed on an Ok"),
        }
    }
}

/// The children of one gather: a `Vec` of one [`Child`] type, or a tuple of
/// up to twelve children of different types ([`gather!`](crate::gather!)).
/// Implemented by the crate only.
///
/// ```
/// fn results<S: asyncio::Children>(g: asyncio::Gather<S>) -> asyncio::Gather<S> { g }
/// # asyncio::run(async {
/// let g = results(asyncio::gather!(async { 1 }, async { "a" }));
/// let (n, s): (i32, &str) = g.await.unwrap();
/// assert_eq!((n, s), (1, "a"));
/// # });
/// ```
pub trait Children: 'static {
    /// The results: `Vec<C::Output>`, or a tuple of the outputs.
    type Values;
    /// What `return_exceptions()` gives: `Vec<Outcome<C::Output>>`, or a
    /// tuple of outcomes.
    type Outcomes;

    #[doc(hidden)]
    fn count(&self) -> usize;
    #[doc(hidden)]
    fn task(&self, i: usize) -> &TaskRef;
    #[doc(hidden)]
    fn take(&mut self, i: usize) -> Taken;
    #[doc(hidden)]
    fn values(taken: Vec<Taken>) -> Self::Values;
    #[doc(hidden)]
    fn outcomes(taken: Vec<Taken>) -> Self::Outcomes;
}

/// [`Children`] whose outputs are all `Result<_, E>` with one `E`: what
/// [`try_gather`](fn@try_gather) and [`try_gather!`](crate::try_gather!) accept.
///
/// ```
/// fn error_of<S: asyncio::TryChildren<Error = E>, E>(_: &asyncio::TryGather<S>) {}
/// # asyncio::run(async {
/// let g = asyncio::try_gather!(async { Ok::<u8, asyncio::CancelledError>(1) });
/// error_of::<_, asyncio::CancelledError>(&g);
/// assert_eq!(g.await.unwrap(), (1,));
/// # });
/// ```
pub trait TryChildren: Children {
    /// The common error type.
    type Error;
    /// The `Ok` values: `Vec<T>`, or a tuple.
    type Oks;

    #[doc(hidden)]
    fn is_err(i: usize, taken: &Taken) -> bool;
    #[doc(hidden)]
    fn into_err(i: usize, taken: Taken) -> Self::Error;
    #[doc(hidden)]
    fn oks(taken: Vec<Taken>) -> Self::Oks;
}

impl<C: Child> Children for Vec<C>
where
    C::Output: 'static,
{
    type Values = Vec<C::Output>;
    type Outcomes = Vec<Outcome<C::Output>>;

    fn count(&self) -> usize {
        self.len()
    }

    fn task(&self, i: usize) -> &TaskRef {
        self[i].as_task()
    }

    fn take(&mut self, i: usize) -> Taken {
        Taken::from_outcome(self[i].take_outcome())
    }

    fn values(taken: Vec<Taken>) -> Self::Values {
        taken.into_iter().map(Taken::into_value).collect()
    }

    fn outcomes(taken: Vec<Taken>) -> Self::Outcomes {
        taken.into_iter().map(Taken::into_outcome).collect()
    }
}

impl<C, T, E> TryChildren for Vec<C>
where
    C: Child<Output = Result<T, E>>,
    T: 'static,
    E: 'static,
{
    type Error = E;
    type Oks = Vec<T>;

    fn is_err(_: usize, taken: &Taken) -> bool {
        taken.is_err::<T, E>()
    }

    fn into_err(_: usize, taken: Taken) -> E {
        taken.into_err::<T, E>()
    }

    fn oks(taken: Vec<Taken>) -> Vec<T> {
        taken.into_iter().map(Taken::into_ok::<T, E>).collect()
    }
}

macro_rules! tuple_children {
    ($( ( $( $C:ident $T:ident $i:tt ),+ ) )+) => {$(
        impl<$($C: Child),+> Children for ($($C,)+)
        where
            $($C::Output: 'static,)+
        {
            type Values = ($($C::Output,)+);
            type Outcomes = ($(Outcome<$C::Output>,)+);

            fn count(&self) -> usize {
                [$($i),+].len()
            }

            fn task(&self, i: usize) -> &TaskRef {
                match i {
                    $($i => self.$i.as_task(),)+
                    _ => unreachable!("gather: child index"),
                }
            }

            fn take(&mut self, i: usize) -> Taken {
                match i {
                    $($i => Taken::from_outcome(self.$i.take_outcome()),)+
                    _ => unreachable!("gather: child index"),
                }
            }

            fn values(taken: Vec<Taken>) -> Self::Values {
                let mut it = taken.into_iter();
                ($(it.next().expect("gather: one result per child").into_value::<$C::Output>(),)+)
            }

            fn outcomes(taken: Vec<Taken>) -> Self::Outcomes {
                let mut it = taken.into_iter();
                ($(it.next().expect("gather: one result per child").into_outcome::<$C::Output>(),)+)
            }
        }

        impl<E: 'static, $($C, $T: 'static),+> TryChildren for ($($C,)+)
        where
            $($C: Child<Output = Result<$T, E>>,)+
        {
            type Error = E;
            type Oks = ($($T,)+);

            fn is_err(i: usize, taken: &Taken) -> bool {
                match i {
                    $($i => taken.is_err::<$T, E>(),)+
                    _ => unreachable!("gather: child index"),
                }
            }

            fn into_err(i: usize, taken: Taken) -> E {
                match i {
                    $($i => taken.into_err::<$T, E>(),)+
                    _ => unreachable!("gather: child index"),
                }
            }

            fn oks(taken: Vec<Taken>) -> Self::Oks {
                let mut it = taken.into_iter();
                ($(it.next().expect("gather: one result per child").into_ok::<$T, E>(),)+)
            }
        }
    )+};
}

tuple_children! {
    (C0 T0 0)
    (C0 T0 0, C1 T1 1)
    (C0 T0 0, C1 T1 1, C2 T2 2)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6, C7 T7 7)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6, C7 T7 7, C8 T8 8)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6, C7 T7 7, C8 T8 8,
     C9 T9 9)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6, C7 T7 7, C8 T8 8,
     C9 T9 9, C10 T10 10)
    (C0 T0 0, C1 T1 1, C2 T2 2, C3 T3 3, C4 T4 4, C5 T5 5, C6 T6 6, C7 T7 7, C8 T8 8,
     C9 T9 9, C10 T10 10, C11 T11 11)
}

/// What makes the gather fail fast.
#[derive(Clone, Copy)]
enum Mode {
    /// A cancelled or panicking child.
    Plain,
    /// Nothing: every outcome is collected.
    ReturnExceptions,
    /// A cancelled or panicking child, or an `Err` output (the function
    /// tells which, by argument index).
    Try(fn(usize, &Taken) -> bool),
}

/// How the outer future was decided.
enum End {
    /// Every child is done; the results are taken on resumption.
    Values,
    /// A child ended cancelled, or the gather was cancelled.
    Cancelled(Option<Arc<str>>),
    /// The child at this argument index failed (its outcome is in `taken`).
    Failed(usize),
}

/// The outer future's state, shared with the children's done-callbacks and
/// with the awaiter's cancel forwarding.
struct Outer<S> {
    children: S,
    /// Outcomes taken by the callbacks, per argument.
    taken: Vec<Option<Taken>>,
    /// The distinct task of each argument (index into `distinct`).
    arg: Vec<usize>,
    /// Distinct tasks, with the first argument index of each.
    distinct: Vec<(TaskRef, usize)>,
    finished: usize,
    end: Option<End>,
    cancel_requested: bool,
    waker: Option<Waker>,
    mode: Mode,
}

struct Shared<S>(RefCell<Outer<S>>);

impl<S: Children> Shared<S> {
    fn new(children: S, mode: Mode) -> Rc<Shared<S>> {
        let n = children.count();
        let mut arg = Vec::with_capacity(n);
        let mut distinct: Vec<(TaskRef, usize)> = Vec::new();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for i in 0..n {
            let task = children.task(i);
            let k = *seen.entry(task.id()).or_insert_with(|| {
                distinct.push((task.clone(), i));
                distinct.len() - 1
            });
            arg.push(k);
        }
        Rc::new(Shared(RefCell::new(Outer {
            children,
            taken: (0..n).map(|_| None).collect(),
            arg,
            distinct,
            finished: 0,
            end: None,
            cancel_requested: false,
            waker: None,
            mode,
        })))
    }

    /// What `gather()` does once the outer future exists: a done-callback on
    /// every distinct task not done yet, then the callback run at once for
    /// those already done, in argument order.
    fn start(self: &Rc<Self>) {
        let (pending, done): (Vec<_>, Vec<_>) = {
            let o = self.0.borrow();
            (0..o.distinct.len())
                .map(|k| (k, o.distinct[k].0.clone()))
                .partition(|(_, t)| !t.done())
        };
        for (k, task) in pending {
            let weak: Weak<Shared<S>> = Rc::downgrade(self);
            task.add_done_callback(move |_| {
                if let Some(me) = weak.upgrade() {
                    me.on_done(k);
                }
            });
        }
        for (k, _) in done {
            self.on_done(k);
        }
        let mut o = self.0.borrow_mut();
        if o.distinct.is_empty() {
            o.end = Some(End::Values);
        }
    }

    /// asyncio's `_done_callback`, for the distinct task `k`.
    fn on_done(&self, k: usize) {
        let mut o = self.0.borrow_mut();
        o.finished += 1;
        if o.end.is_some() {
            return;
        }
        let (task, first) = o.distinct[k].clone();
        if !matches!(o.mode, Mode::ReturnExceptions) {
            if task.cancelled() {
                o.end = Some(End::Cancelled(task.cancel_message()));
                return Self::wake(o);
            }
            let taken = o.children.take(first);
            let failed = matches!(taken, Taken::Panicked(_))
                || matches!(o.mode, Mode::Try(is_err) if is_err(first, &taken));
            o.taken[first] = Some(taken);
            if failed {
                o.end = Some(End::Failed(first));
                return Self::wake(o);
            }
        }
        if o.finished == o.distinct.len() {
            o.end = Some(if o.cancel_requested {
                End::Cancelled(task.cancel_message())
            } else {
                End::Values
            });
            Self::wake(o);
        }
    }

    fn wake(mut o: RefMut<'_, Outer<S>>) {
        let w = o.waker.take();
        drop(o);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// The outcome of every argument, in order: those the callbacks took,
    /// and the others taken now.
    fn take_all(&self) -> Vec<Taken> {
        let mut o = self.0.borrow_mut();
        let o = &mut *o;
        (0..o.taken.len())
            .map(|i| match o.taken[i].take() {
                Some(t) => t,
                None => o.children.take(i),
            })
            .collect()
    }
}

impl<S> CancelTarget for Shared<S> {
    /// `_GatheringFuture.cancel()`: refuse once decided; otherwise cancel the
    /// task of every argument (a repeated task once per argument) and accept
    /// if any of them did.
    fn cancel(&self, msg: Option<Arc<str>>) -> bool {
        let tasks: Vec<TaskRef> = {
            let o = self.0.borrow();
            if o.end.is_some() {
                return false;
            }
            o.arg.iter().map(|&k| o.distinct[k].0.clone()).collect()
        };
        let mut accepted = false;
        for t in tasks {
            if t.cancel_inner(msg.clone()) {
                accepted = true;
            }
        }
        if accepted {
            self.0.borrow_mut().cancel_requested = true;
        }
        accepted
    }
}

/// How a gather ended, before the typed conversion of its mode.
enum Resolved {
    /// Every argument's outcome, in order.
    All(Vec<Taken>),
    Cancelled(CancelledError),
    /// The failing argument's index and outcome.
    Failed(usize, Taken),
}

/// The future of a gather, whatever its mode: await a [`Gather`],
/// [`GatherOutcomes`] or [`TryGather`] to get one.
///
/// # Cancellation
/// Cancelling the awaiter cancels every child that is not done (once per
/// argument); the gather then waits for all of them and returns
/// `Err(CancelledError)`, even if every child swallowed the cancellation and
/// returned a value. If every child is already done when the cancellation
/// arrives, the children are left alone and the gather still returns
/// `Err(CancelledError)` once it completes (asyncio's refused cancel). A
/// gather dropped before it completes cancels nothing and drops the
/// children it owns (dropping a task handle does not cancel the task).
///
/// ```
/// use std::future::IntoFuture;
/// # asyncio::run(async {
/// let fut = asyncio::gather([async { 2 }]).into_future();
/// assert_eq!(fut.await.unwrap(), [2]);
/// # });
/// ```
pub struct GatherFuture<S, O> {
    shared: Rc<Shared<S>>,
    started: bool,
    cp: Checkpoint,
    finish: fn(Resolved) -> O,
}

impl<S: Children, O> Future for GatherFuture<S, O> {
    type Output = O;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        let this = self.get_mut();
        if !this.started {
            this.started = true;
            this.shared.start();
        }
        let decided = this.shared.0.borrow().end.is_some();
        if !decided {
            // Also when a cancellation was delivered but refused: asyncio's
            // task keeps waiting for the outer future, then raises.
            this.shared.0.borrow_mut().waker = Some(cx.waker().clone());
            let target: Rc<dyn CancelTarget> = this.shared.clone();
            this.cp.suspend_to(cx, &target);
            return Poll::Pending;
        }
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            return Poll::Ready((this.finish)(Resolved::Cancelled(err)));
        }
        let forwarded = this.cp.is_forwarded();
        if forwarded && this.cp.relay_once(cx) {
            return Poll::Pending;
        }
        let end = this.shared.0.borrow_mut().end.take().expect("decided");
        let resolved = match end {
            End::Cancelled(msg) => {
                let err = if forwarded {
                    this.cp.take_cancelled().expect("delivered")
                } else {
                    this.cp.complete();
                    cancelled_here(msg)
                };
                Resolved::Cancelled(err)
            }
            End::Failed(i) => {
                this.cp.complete();
                let taken = this.shared.0.borrow_mut().taken[i]
                    .take()
                    .expect("the failing outcome");
                Resolved::Failed(i, taken)
            }
            End::Values => {
                this.cp.complete();
                Resolved::All(this.shared.take_all())
            }
        };
        Poll::Ready((this.finish)(resolved))
    }
}

fn finish_values<S: Children>(r: Resolved) -> Result<S::Values, CancelledError> {
    match r {
        Resolved::All(all) => Ok(S::values(all)),
        Resolved::Cancelled(err) => Err(err),
        Resolved::Failed(_, Taken::Panicked(p)) => std::panic::resume_unwind(p),
        Resolved::Failed(..) => unreachable!("gather: failed without a panic"),
    }
}

fn finish_outcomes<S: Children>(r: Resolved) -> Result<S::Outcomes, CancelledError> {
    match r {
        Resolved::All(all) => Ok(S::outcomes(all)),
        Resolved::Cancelled(err) => Err(err),
        Resolved::Failed(..) => unreachable!("gather(return_exceptions): failed"),
    }
}

fn finish_try<S>(r: Resolved) -> Result<S::Oks, S::Error>
where
    S: TryChildren,
    S::Error: From<CancelledError>,
{
    match r {
        Resolved::All(all) => Ok(S::oks(all)),
        Resolved::Cancelled(err) => Err(S::Error::from(err)),
        Resolved::Failed(_, Taken::Panicked(p)) => std::panic::resume_unwind(p),
        Resolved::Failed(i, taken) => Err(S::into_err(i, taken)),
    }
}

fn future<S: Children, O>(
    children: S,
    mode: Mode,
    finish: fn(Resolved) -> O,
) -> GatherFuture<S, O> {
    // Task-like for `wait_for(.., 0)`: asyncio cancels a gather's outer
    // future there and waits for it, instead of never starting it.
    crate::time::mark_task_like();
    GatherFuture {
        shared: Shared::new(children, mode),
        started: false,
        cp: Checkpoint::new(),
        finish,
    }
}

/// What [`gather`](fn@gather) and [`gather!`](crate::gather!) return: await it for the
/// results in argument order, or ask for every outcome with
/// [`Gather::return_exceptions`].
///
/// ```
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let results = asyncio::gather((1..=3).map(|i| async move { i * 10 })).await.unwrap();
/// assert_eq!(results, [10, 20, 30]);
/// # });
/// ```
#[must_use = "a gather does nothing until awaited (its future children already run)"]
pub struct Gather<S> {
    children: S,
}

impl<S: Children> Gather<S> {
    /// Collects how each child ended ([`Outcome`]: value, cancelled,
    /// panicked) instead of failing at the first cancelled or panicking
    /// child — asyncio's `return_exceptions=True`. The gather itself still
    /// ends with `Err(CancelledError)` if it is cancelled.
    ///
    /// ```
    /// # asyncio::Runner::builder().virtual_time(true).build().run(async {
    /// let a = asyncio::create_task(async { 1 });
    /// let b = asyncio::create_task(async { 2 });
    /// b.cancel();
    /// let out = asyncio::gather([a, b]).return_exceptions().await.unwrap();
    /// assert_eq!(out[0].is_value(), true);
    /// assert_eq!(out[1].is_cancelled(), true);
    /// # });
    /// ```
    pub fn return_exceptions(self) -> GatherOutcomes<S> {
        GatherOutcomes {
            children: self.children,
        }
    }
}

impl<S: Children> IntoFuture for Gather<S> {
    type Output = Result<S::Values, CancelledError>;
    type IntoFuture = GatherFuture<S, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        future(self.children, Mode::Plain, finish_values::<S>)
    }
}

/// A gather that collects every child's [`Outcome`], from
/// [`Gather::return_exceptions`].
///
/// ```
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let out = asyncio::gather([asyncio::create_task(async { 7 })])
///     .return_exceptions()
///     .await
///     .unwrap();
/// assert_eq!(out.into_iter().next().unwrap().value(), Some(7));
/// # });
/// ```
#[must_use = "a gather does nothing until awaited (its future children already run)"]
pub struct GatherOutcomes<S> {
    children: S,
}

impl<S: Children> IntoFuture for GatherOutcomes<S> {
    type Output = Result<S::Outcomes, CancelledError>;
    type IntoFuture = GatherFuture<S, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        future(self.children, Mode::ReturnExceptions, finish_outcomes::<S>)
    }
}

/// What [`try_gather`](fn@try_gather) and [`try_gather!`](crate::try_gather!) return: await
/// it for the `Ok` values in argument order, or the first failure.
///
/// ```
/// use asyncio::CancelledError;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let oks = asyncio::try_gather([
///     asyncio::create_task(async { Ok::<_, CancelledError>(1) }),
///     asyncio::create_task(async { Ok(2) }),
/// ])
/// .await
/// .unwrap();
/// assert_eq!(oks, [1, 2]);
/// # });
/// ```
#[must_use = "a gather does nothing until awaited (its future children already run)"]
pub struct TryGather<S> {
    children: S,
}

impl<S> IntoFuture for TryGather<S>
where
    S: TryChildren,
    S::Error: From<CancelledError>,
{
    type Output = Result<S::Oks, S::Error>;
    type IntoFuture = GatherFuture<S, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        future(self.children, Mode::Try(S::is_err), finish_try::<S>)
    }
}

/// Waits for every child and returns their outputs in argument order
/// (`asyncio.gather`).
///
/// The children are [`Task`](crate::Task)s, [`TaskRef`]s (output `()`), or
/// futures, each spawned as a task right here (asyncio's `ensure_future`);
/// for children of different types, use [`gather!`](crate::gather!).
///
/// - A child that ends **cancelled** makes the gather return
///   `Err(CancelledError)` as soon as that is known; a child that
///   **panics** makes the awaiter panic with the same payload. The other
///   children are not cancelled and run on.
/// - An `Err` output is a value here; [`try_gather`](fn@try_gather) stops at the first
///   one.
/// - [`Gather::return_exceptions`] collects every [`Outcome`] instead.
/// - If every child is already done, the gather completes without
///   suspending.
///
/// ```
/// use std::time::Duration;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// async fn factorial(n: u64) -> u64 {
///     let mut f = 1;
///     for i in 2..=n {
///         asyncio::sleep(Duration::from_secs(1)).await.unwrap();
///         f *= i;
///     }
///     f
/// }
/// let results = asyncio::gather([factorial(2), factorial(3), factorial(4)]).await.unwrap();
/// assert_eq!(results, [2, 6, 24]);
/// # });
/// ```
///
/// # Cancellation
/// See [`GatherFuture`]: cancelling the awaiter cancels every child not yet
/// done, waits for them, and returns `Err(CancelledError)`.
///
/// # Panics
/// When a future is passed and no loop is running on this thread.
pub fn gather<I>(children: I) -> Gather<Vec<<I::Item as IntoChild>::Child>>
where
    I: IntoIterator,
    I::Item: IntoChild,
    <<I::Item as IntoChild>::Child as Child>::Output: 'static,
{
    Gather {
        children: children.into_iter().map(IntoChild::into_child).collect(),
    }
}

/// [`gather`](fn@gather) for children whose outputs are `Result<T, E>`: returns the
/// `Ok` values in argument order, or the first `Err` as soon as a child
/// returns it (asyncio raises the first exception). A cancelled child or a
/// cancelled gather gives `Err(E::from(CancelledError))`; a panic is raised
/// again in the awaiter. The other children are not cancelled.
///
/// ```
/// use std::time::Duration;
/// #[derive(Debug)]
/// enum Error { Cancelled(asyncio::CancelledError), NotFound(u32) }
/// impl From<asyncio::CancelledError> for Error {
///     fn from(e: asyncio::CancelledError) -> Self { Error::Cancelled(e) }
/// }
/// async fn fetch(id: u32) -> Result<String, Error> {
///     asyncio::sleep(Duration::from_secs(id.into())).await?;
///     if id == 2 { Err(Error::NotFound(id)) } else { Ok(format!("page {id}")) }
/// }
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let r = asyncio::try_gather([fetch(1), fetch(2), fetch(3)]).await;
/// assert!(matches!(r, Err(Error::NotFound(2))));
/// # });
/// ```
///
/// # Cancellation
/// As [`gather`](fn@gather): cancelling the awaiter cancels the children and returns
/// `Err(E::from(CancelledError))` once they are done.
///
/// # Panics
/// When a future is passed and no loop is running on this thread.
pub fn try_gather<I>(children: I) -> TryGather<Vec<<I::Item as IntoChild>::Child>>
where
    I: IntoIterator,
    I::Item: IntoChild,
    Vec<<I::Item as IntoChild>::Child>: TryChildren,
{
    TryGather {
        children: children.into_iter().map(IntoChild::into_child).collect(),
    }
}

/// The function behind [`gather!`](crate::gather!): a gather over a tuple of
/// children.
#[doc(hidden)]
pub fn gather_tuple<S: Children>(children: S) -> Gather<S> {
    Gather { children }
}

/// The function behind [`try_gather!`](crate::try_gather!).
#[doc(hidden)]
pub fn try_gather_tuple<S: TryChildren>(children: S) -> TryGather<S> {
    TryGather { children }
}

/// [`gather`](fn@gather) over children of different types: `gather!(a, b, c)` waits
/// for all three and gives a tuple of their outputs. Each argument is a
/// task, a `TaskRef` or a future (spawned as a task at once), up to twelve.
/// The result is a [`Gather`]: `.await` it, or call
/// [`return_exceptions`](Gather::return_exceptions) first.
///
/// ```
/// use std::time::Duration;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let name = asyncio::create_task(async { "ada".to_string() });
/// let (name, age) = asyncio::gather!(name, async {
///     asyncio::sleep(Duration::from_secs(1)).await.unwrap();
///     36
/// })
/// .await
/// .unwrap();
/// assert_eq!((name.as_str(), age), ("ada", 36));
/// # });
/// ```
///
/// # Cancellation
/// As [`gather`](fn@gather).
#[macro_export]
macro_rules! gather {
    ($($child:expr),+ $(,)?) => {
        $crate::gather_tuple(($($crate::IntoChild::into_child($child),)+))
    };
}

/// [`try_gather`](fn@try_gather) over children of different types whose outputs are
/// `Result<_, E>` with one `E`: a tuple of the `Ok` values, or the first
/// `Err`.
///
/// ```
/// use asyncio::CancelledError;
/// # asyncio::Runner::builder().virtual_time(true).build().run(async {
/// let (a, b) = asyncio::try_gather!(
///     async { Ok::<_, CancelledError>(1u8) },
///     async { Ok::<_, CancelledError>("two") },
/// )
/// .await
/// .unwrap();
/// assert_eq!((a, b), (1, "two"));
/// # });
/// ```
///
/// # Cancellation
/// As [`try_gather`](fn@try_gather).
#[macro_export]
macro_rules! try_gather {
    ($($child:expr),+ $(,)?) => {
        $crate::try_gather_tuple(($($crate::IntoChild::into_child($child),)+))
    };
}
