//! `timeout`, `timeout_at` and `wait_for`: an inner cancel scope with a
//! deadline.
//!
//! # Lifecycle (asyncio's `Timeout`)
//!
//! `Created` → (first poll) `Active` → (deadline) `Expiring` → (inner
//! future completes) `Expired`; or `Active` → `Finished`.
//!
//! On expiry the scope counts one cancel request on its task and delivers
//! it to the await points suspended *inside the scope* only
//! ([`deliver`]). When the inner future
//! completes, the request is taken back (`uncancel`), and the scope reports
//! [`TimeoutError`] if a token carrying its own request is still live and
//! no enclosing request (an outer `cancel()`, an outer timeout) rides on
//! that token. Otherwise the inner output is returned as it is: a
//! swallowed cancellation means the inner code finished on its own terms.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::{InvalidStateError, TimeoutError};
use crate::cancel::delivery::deliver;
use crate::cancel::scope::{scope_converts, ScopeGuard, ScopeNode};
use crate::runtime::clock::{nanos, Clock};
use crate::runtime::timers::{TimerAction, TimerKey};
use crate::runtime::{context, Callback, Loop};
use crate::task::TaskRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TState {
    Created,
    Active,
    Expiring,
    Expired,
    Finished,
}

#[derive(Clone, Copy)]
enum Deadline {
    /// Computed when first polled (wait_for; timeout outside a loop).
    Lazy(Option<Duration>),
    At(Option<Instant>),
    /// A relative deadline resolved on entry: nanoseconds on the loop's
    /// clock, and that clock's nanosecond 0. Arming needs the first, and
    /// only [`TimeoutHandle::when`] turns it into an instant.
    OnClock {
        at: i64,
        base: Instant,
    },
}

/// A deadline already on the loop's clock, with the clock reading it was
/// computed from (nanoseconds, see [`Clock`]).
#[derive(Clone, Copy)]
struct Known {
    at: i64,
    now: i64,
}

enum Armed {
    Timer(TimerKey),
    Soon(Rc<Callback>),
}

/// A timeout's state, shared by its future, its handle and its timer.
pub(crate) struct Inner {
    scope: Rc<ScopeNode>,
    state: Cell<TState>,
    deadline: Cell<Deadline>,
    armed: Cell<Option<Armed>>,
    task: RefCell<Option<TaskRef>>,
    /// The id of the loop it was entered on (0: not entered): its timer is
    /// that loop's. An id, not a `Weak`: the common disarm is on the
    /// running loop, found by comparing ids, with no count to take.
    loop_id: Cell<u64>,
    /// `wait_for` with a zero timeout: cancel at once, without counting a
    /// request on the caller (asyncio cancels the awaited task instead).
    zero: Cell<bool>,
}

/// How many finished timeouts a thread keeps for reuse.
const SPARE_CAP: usize = 32;

thread_local! {
    /// Finished timeouts nobody else refers to, reset, for the next
    /// `timeout`/`wait_for` of this thread: a `wait_for` in a loop then
    /// allocates nothing (its `Inner` and its scope are two allocations).
    static SPARE: RefCell<Vec<Rc<Inner>>> = const { RefCell::new(Vec::new()) };
}

impl Inner {
    fn new(deadline: Deadline, zero: bool) -> Rc<Inner> {
        let spare = SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten();
        if let Some(inner) = spare {
            inner.deadline.set(deadline);
            inner.zero.set(zero);
            return inner;
        }
        Rc::new(Inner {
            scope: ScopeNode::new(),
            state: Cell::new(TState::Created),
            deadline: Cell::new(deadline),
            armed: Cell::new(None),
            task: RefCell::new(None),
            loop_id: Cell::new(0),
            zero: Cell::new(zero),
        })
    }

    /// Keeps a finished timeout for reuse if nothing else refers to it or
    /// to its scope (no handle, armed timer or callback, checkpoint,
    /// request or inner scope), resetting it first so that the spare holds
    /// no task or loop alive.
    fn is_armed(&self) -> bool {
        let armed = self.armed.take();
        let is = armed.is_some();
        self.armed.set(armed);
        is
    }

    fn recycle(self: &Rc<Self>) {
        let unshared = Rc::strong_count(self) == 1 && Rc::weak_count(self) == 0;
        if !unshared || !self.scope.unshared() || self.is_armed() {
            return;
        }
        self.state.set(TState::Created);
        self.task.borrow_mut().take();
        self.loop_id.set(0);
        self.scope.reset();
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_CAP {
                s.push(self.clone());
            }
        });
    }

    fn when(&self) -> Option<Instant> {
        match self.deadline.get() {
            Deadline::At(t) => t,
            Deadline::OnClock { at, base } => Some(Clock::instant_on(base, at)),
            Deadline::Lazy(_) => None,
        }
    }

    fn disarm(&self) {
        match self.armed.take() {
            Some(Armed::Timer(key)) => {
                // Usually on the running loop; a handle used outside `run`
                // finds the loop, if it lives.
                context::with_loop_by_id(self.loop_id.get(), |lp| lp.disarm(key));
            }
            Some(Armed::Soon(cb)) => cb.cancelled.set(true),
            None => {}
        }
    }

    /// Arms the deadline's timer: a callback on the next turn if the
    /// deadline has passed already (as asyncio's `reschedule` does).
    /// `known`: the deadline and the clock reading, if the caller has them
    /// (entering a relative timeout reads the clock once, and converts
    /// nothing).
    fn arm(self: &Rc<Self>, lp: &Loop, known: Option<Known>) {
        self.disarm();
        let Some(Known { at, now }) = known.or_else(|| {
            let at = match self.deadline.get() {
                Deadline::OnClock { at, .. } => at,
                Deadline::At(Some(when)) => lp.clock().ns(when),
                Deadline::At(None) | Deadline::Lazy(_) => return None,
            };
            Some(Known {
                at,
                now: lp.clock().now_ns(),
            })
        }) else {
            return;
        };
        let armed = if at <= now {
            let weak = Rc::downgrade(self);
            Armed::Soon(lp.call_soon(Box::new(move || {
                if let Some(me) = weak.upgrade() {
                    me.fire();
                }
            })))
        } else {
            Armed::Timer(lp.arm_ns(at, TimerAction::Fire(Rc::downgrade(self))))
        };
        self.armed.set(Some(armed));
    }
}

impl Inner {
    /// The deadline passed: the scope's own request goes out.
    pub(crate) fn fire(&self) {
        if self.state.get() != TState::Active {
            return;
        }
        drop(self.armed.take());
        self.state.set(TState::Expiring);
        self.scope.set_expiring(true);
        let task = self.task.borrow().clone();
        if let Some(task) = task {
            task.cancel_state().add_request();
            deliver(&task, Some(&self.scope), None);
        }
    }
}

impl Inner {
    fn enter(self: &Rc<Self>) {
        let entered = context::with_loop(|lp| {
            let task = lp.current_task()?;
            self.enter_on(lp, task);
            Some(())
        });
        if entered.is_none() {
            panic!("asyncio::timeout()/wait_for() must be awaited inside an asyncio task")
        }
    }

    fn enter_on(self: &Rc<Self>, lp: &Loop, task: TaskRef) {
        *self.task.borrow_mut() = Some(task);
        self.loop_id.set(lp.id);
        // A relative deadline is resolved on the loop's clock, in
        // nanoseconds: arming it needs no conversion.
        let mut known = None;
        if let Deadline::Lazy(d) = self.deadline.get() {
            self.deadline.set(match d {
                Some(d) => {
                    let clock = lp.clock();
                    let now = clock.now_ns();
                    let at = now.saturating_add(nanos(d));
                    known = Some(Known { at, now });
                    Deadline::OnClock {
                        at,
                        base: clock.base(),
                    }
                }
                None => Deadline::At(None),
            });
        }
        self.state.set(TState::Active);
        if self.zero.get() {
            self.state.set(TState::Expiring);
            self.scope.set_zero();
            self.scope.set_pending(true);
        } else {
            self.arm(lp, known);
        }
    }

    /// Leaves the scope: disarms it, drops what is pending on it and, if it
    /// expired, takes its own request back (`uncancel`). Returns whether it
    /// had expired.
    fn leave(&self) -> bool {
        self.disarm();
        self.scope.set_pending(false);
        self.scope.set_expiring(false);
        if self.state.get() != TState::Expiring {
            self.state.set(TState::Finished);
            return false;
        }
        self.state.set(TState::Expired);
        if !self.zero.get() {
            if let Some(task) = self.task.borrow().as_ref() {
                task.uncancel();
            }
        }
        true
    }

    /// The inner future finished: decide between its output and a timeout.
    fn exit(&self) -> bool {
        self.leave() && {
            let task = self.task.borrow();
            scope_converts(
                task.as_ref().expect("entered scope has a task"),
                &self.scope,
            )
        }
    }
}

thread_local! {
    /// Set by the `IntoFuture` conversions of the task-like awaitables
    /// (`Task`, `&mut Task`, `shield(..)`, `TaskRef::wait()`), read by
    /// `wait_for` around its own conversion: how it tells, without polling,
    /// a task from a plain future (asyncio's coroutine).
    static TASK_LIKE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the awaitable being converted as task-like (see `TASK_LIKE`).
pub(crate) fn mark_task_like() {
    TASK_LIKE.with(|f| f.set(true));
}

/// The turns asyncio's `wait_for(coro, 0)` takes: the wrapping task is
/// cancelled at its first step, its done-callback releases a waiter, and
/// the waiter wakes the caller.
const NEVER_STARTED_TURNS: u8 = 3;

pin_project_lite::pin_project! {
    /// The future of [`timeout`], [`timeout_at`] and [`wait_for`]: the
    /// inner future's output, or [`TimeoutError`].
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        inner: Rc<Inner>,
        // `wait_for(plain_future, 0)`: the future is never polled; turns
        // left before the TimeoutError.
        never_started: Option<u8>,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped while running (a `select!` branch): leave the scope.
            if matches!(this.inner.state.get(), TState::Active | TState::Expiring) {
                this.inner.leave();
            }
            this.inner.recycle();
        }
    }
}

impl<F> Timeout<F> {
    /// A handle to read [`TimeoutHandle::expired`] or
    /// [`TimeoutHandle::reschedule`] the deadline while the future runs.
    pub fn handle(&self) -> TimeoutHandle {
        TimeoutHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(turns) = this.never_started {
            if *turns == 0 {
                return Poll::Ready(Err(TimeoutError));
            }
            *turns -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let inner = this.inner;
        match inner.state.get() {
            TState::Created => inner.enter(),
            TState::Active | TState::Expiring => {}
            TState::Expired | TState::Finished => {
                panic!("asyncio::timeout() polled after it completed")
            }
        }
        let out = {
            let _scope = ScopeGuard::enter(&inner.scope);
            this.fut.poll(cx)
        };
        match out {
            Poll::Pending => Poll::Pending,
            Poll::Ready(v) => {
                if inner.exit() {
                    drop(v);
                    Poll::Ready(Err(TimeoutError))
                } else {
                    Poll::Ready(Ok(v))
                }
            }
        }
    }
}

/// Reads and moves the deadline of a running [`Timeout`] (the object
/// Python's `async with asyncio.timeout(d) as cm` binds to `cm`).
#[derive(Clone)]
pub struct TimeoutHandle {
    inner: Rc<Inner>,
}

impl TimeoutHandle {
    /// The deadline, on the loop's clock; `None` for no deadline (or not
    /// computed yet, for a `wait_for` not yet awaited).
    pub fn when(&self) -> Option<Instant> {
        self.inner.when()
    }

    /// Whether the deadline was reached (the scope is expiring or expired),
    /// even if the inner code swallowed the cancellation.
    pub fn expired(&self) -> bool {
        matches!(self.inner.state.get(), TState::Expiring | TState::Expired)
    }

    /// Moves the deadline (`None`: no deadline). A deadline already past
    /// expires on the next turn of the loop.
    ///
    /// # Errors
    /// Only a running, not yet expired scope can be rescheduled; otherwise
    /// an [`InvalidStateError`] names the state.
    pub fn reschedule(&self, when: Option<Instant>) -> Result<(), InvalidStateError> {
        let state = self.inner.state.get();
        let name = match state {
            TState::Active => None,
            TState::Created => Some("has not been entered"),
            TState::Expiring => Some("is expiring"),
            TState::Expired => Some("has expired"),
            TState::Finished => Some("has finished"),
        };
        if let Some(what) = name {
            return Err(InvalidStateError::new(format!(
                "cannot reschedule: the timeout {what}"
            )));
        }
        self.inner.deadline.set(Deadline::At(when));
        let inner = &self.inner;
        if context::with_loop_by_id(inner.loop_id.get(), |lp| inner.arm(lp, None)).is_none() {
            inner.disarm();
        }
        Ok(())
    }
}

impl fmt::Debug for TimeoutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.inner.state.get() {
            TState::Created => "created",
            TState::Active => "active",
            TState::Expiring => "expiring",
            TState::Expired => "expired",
            TState::Finished => "finished",
        };
        write!(f, "<Timeout [{state}] when={:?}>", self.when())
    }
}

/// Runs `fut` with a deadline `delay` from now (`async with
/// asyncio.timeout(delay)`); `None` means no deadline.
///
/// The deadline is computed when `timeout` is called (when a loop is
/// running; otherwise at the first poll). A zero delay expires on the next
/// turn of the loop. When it expires, only the await points inside `fut` are
/// cancelled; if the cancellation propagates out of `fut`, the result is
/// `Err(TimeoutError)`; if `fut` swallowed it, its output is returned.
///
/// ```
/// use std::time::Duration;
/// asyncio::Runner::builder().virtual_time(true).build().run(async {
///     let r = asyncio::timeout(Duration::from_secs(1), async {
///         asyncio::sleep(Duration::from_secs(10)).await?;
///         Ok::<_, asyncio::CancelledError>("done")
///     })
///     .await;
///     assert!(r.is_err());
/// });
/// ```
///
/// # Cancellation
/// A cancellation from outside (`Task::cancel`, an enclosing timeout) is
/// never turned into `TimeoutError`, even when it coincides with the
/// deadline: the inner output, carrying the `CancelledError`, is returned.
pub fn timeout<F: Future>(delay: impl Into<Option<Duration>>, fut: F) -> Timeout<F> {
    let delay = delay.into();
    let deadline = match context::with_loop(|lp| lp.now()) {
        Some(now) => Deadline::At(delay.map(|d| now + d)),
        None => Deadline::Lazy(delay),
    };
    Timeout {
        fut,
        inner: Inner::new(deadline, false),
        never_started: None,
    }
}

/// [`timeout`] with an absolute deadline on the loop's clock.
pub fn timeout_at<F: Future>(deadline: impl Into<Option<Instant>>, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        inner: Inner::new(Deadline::At(deadline.into()), false),
        never_started: None,
    }
}

/// Waits for `fut` with a time limit (`asyncio.wait_for`, Python 3.12+).
///
/// The deadline is computed when the `wait_for` is first awaited. On expiry
/// the work inside is cancelled and *waited for*: the result is
/// `Err(TimeoutError)` if the cancellation propagated out of it, and its
/// output if it swallowed the cancellation. Awaiting a task inside
/// (`wait_for(&mut task, d)`) forwards the cancellation to that task.
///
/// A zero timeout is asyncio's special case. For a task (`task`,
/// `&mut task`, [`shield`](crate::shield)`(..)`, [`TaskRef::wait`]
/// (crate::TaskRef::wait)): one that is already done gives its output;
/// otherwise it is cancelled and awaited, and `Err(TimeoutError)` is
/// returned if it ended cancelled. A plain future is, like a coroutine in
/// asyncio, cancelled before it runs a line: it is never polled, and the
/// result is `Err(TimeoutError)`.
///
/// ```
/// use std::time::Duration;
/// asyncio::Runner::builder().virtual_time(true).build().run(async {
///     let mut task = asyncio::create_task(async {
///         asyncio::sleep(Duration::from_secs(2)).await?;
///         Ok::<_, asyncio::CancelledError>(2)
///     });
///     let r = asyncio::wait_for(&mut task, Duration::from_secs(1)).await;
///     assert!(r.is_err());
///     assert!(task.cancelled());
/// });
/// ```
pub fn wait_for<F: std::future::IntoFuture>(
    fut: F,
    timeout: impl Into<Option<Duration>>,
) -> Timeout<F::IntoFuture> {
    let timeout = timeout.into();
    let zero = timeout.is_some_and(|d| d.is_zero());
    TASK_LIKE.with(|f| f.set(false));
    let fut = fut.into_future();
    let task_like = TASK_LIKE.with(|f| f.replace(false));
    Timeout {
        fut,
        inner: Inner::new(Deadline::Lazy(timeout), zero),
        never_started: (zero && !task_like).then_some(NEVER_STARTED_TURNS),
    }
}
