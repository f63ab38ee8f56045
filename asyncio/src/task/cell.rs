//! The task cell: one allocation holding a task's header and its future,
//! then its output.
//!
//! # Invariants
//!
//! - A cell lives in an `Rc` and is only ever touched on its loop's thread
//!   (the `Rc` makes every handle `!Send`). Other threads hold only the
//!   task's [`WakeHandle`](super::waker::WakeHandle), which has no pointer
//!   to the cell.
//! - `stage` is `Running(future)` until the future completes, panics, is
//!   aborted, or the loop closes; the future is then dropped in place on the
//!   loop's thread and never polled again. While `Running`, the future is
//!   never moved: it is pinned inside the `Rc` allocation. That is the one
//!   `unsafe` of this module.
//! - The header's `end` moves once from `Running` to a final state; waiters
//!   are woken and done-callbacks scheduled exactly then.

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::waker::WakeHandle;
use super::{Outcome, TaskObj, TaskOutput, TaskRef};
use crate::cancel::scope::CancelState;
use crate::runtime::{Loop, TaskKey};
use crate::util::small::OneOrMany;

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// How a task ended (or that it has not).
pub(crate) enum End {
    Running,
    Value,
    Cancelled(Option<Arc<str>>),
    Panicked(Box<PanicInfo>),
}

/// A callback registered with `add_done_callback`.
pub(crate) type DoneCallback = Box<dyn FnOnce(&TaskRef)>;

/// The rarely used part of a header.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) name: RefCell<Option<String>>,
}

/// Something to notify when the task is done. Awaiters and done-callbacks
/// share one list, notified in registration order, as asyncio schedules a
/// future's callbacks (an `await` registers a callback too).
pub(crate) enum Waiter {
    /// An await in progress: its id (to refresh or withdraw it) and waker.
    Wake(u32, Waker),
    Callback(DoneCallback),
}

/// A panic that ended a task: the payload (until an awaiter re-raises it)
/// and its message.
pub(crate) struct PanicInfo {
    pub(crate) payload: Option<Box<dyn Any + Send>>,
    pub(crate) msg: String,
}

/// Everything about a task that does not depend on its future's type.
pub(crate) struct Header {
    pub(crate) id: u64,
    /// Name and done-callbacks: allocated on first use.
    extras: OnceCell<Box<Extras>>,
    pub(crate) cancel: CancelState,
    pub(crate) end: RefCell<End>,
    started: Cell<bool>,
    pub(crate) waiters: RefCell<OneOrMany<Waiter>>,
    pub(crate) next_waiter: Cell<u32>,
    pub(crate) handle_alive: Cell<bool>,
    pub(crate) retrieved: Cell<bool>,
    pub(crate) abort_requested: Cell<bool>,
    running: Cell<bool>,
    key: TaskKey,
    wake: Arc<WakeHandle>,
    waker: Waker,
    pub(crate) lp: Weak<Loop>,
}

impl Header {
    pub(crate) fn is_done(&self) -> bool {
        !matches!(*self.end.borrow(), End::Running)
    }

    pub(crate) fn extras(&self) -> &Extras {
        self.extras.get_or_init(Box::default)
    }

    /// The task's name, if one was given.
    pub(crate) fn given_name(&self) -> Option<String> {
        self.extras.get().and_then(|e| e.name.borrow().clone())
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.get()
    }

    /// Running or already woken: asyncio would record a cancel request as
    /// `_must_cancel` (withdrawable by `uncancel`) rather than cancel the
    /// awaited future.
    pub(crate) fn is_awake(&self) -> bool {
        self.running.get() || self.wake.is_queued()
    }
}

enum Stage<F: Future> {
    Running(F),
    Finished(F::Output),
    Consumed,
}

pub(crate) struct TaskCell<F: Future> {
    header: Header,
    stage: RefCell<Stage<F>>,
}

/// What ended a task's last step.
enum Ending<T> {
    Value(T),
    Panicked(Box<dyn Any + Send>),
    /// Cancelled before its first step, or aborted.
    Cancelled,
}

impl<F: Future + 'static> TaskCell<F> {
    pub(crate) fn new(fut: F, key: TaskKey, lp: &Rc<Loop>) -> Rc<TaskCell<F>> {
        let wake = Arc::new(WakeHandle::new_queued(key, lp.remote.clone()));
        let waker = Waker::from(wake.clone());
        Rc::new(TaskCell {
            header: Header {
                id: NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed),
                extras: OnceCell::new(),
                cancel: CancelState::new(),
                end: RefCell::new(End::Running),
                started: Cell::new(false),
                waiters: RefCell::new(OneOrMany::None),
                next_waiter: Cell::new(0),
                handle_alive: Cell::new(true),
                retrieved: Cell::new(false),
                abort_requested: Cell::new(false),
                running: Cell::new(false),
                key,
                wake,
                waker,
                lp: Rc::downgrade(lp),
            },
            stage: RefCell::new(Stage::Running(fut)),
        })
    }

    fn poll_future(&self) -> Result<Poll<F::Output>, Box<dyn Any + Send>> {
        let mut stage = self.stage.borrow_mut();
        let Stage::Running(fut) = &mut *stage else {
            unreachable!("a finished task was polled");
        };
        // SAFETY: the future lives inside this `Rc` allocation, which never
        // moves, and it stays in `Stage::Running` until it is dropped in
        // place (`finish` replaces the stage; nothing moves it out). So it
        // is never moved after this first pin, as `Pin` requires.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let mut cx = Context::from_waker(&self.header.waker);
        panic::catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)))
    }

    /// Drops the future (or a finished output) *in place*: a pinned future
    /// must be dropped where it lies, never moved out first — its `Drop` may
    /// follow pointers into itself.
    fn drop_stage(&self) {
        // Assigning to the place drops the old value in place.
        *self.stage.borrow_mut() = Stage::Consumed;
    }

    fn finish(self: &Rc<Self>, lp: &Loop, ending: Ending<F::Output>) {
        let h = &self.header;
        // Drop the future first, on this thread.
        self.drop_stage();
        let end = match ending {
            Ending::Value(v) => {
                let live = h.cancel.live_cancellation();
                let pending = h.cancel.root_pending();
                if let Some(msg) = live {
                    drop(v);
                    End::Cancelled(msg)
                } else if pending {
                    drop(v);
                    End::Cancelled(h.cancel.pending_message())
                } else {
                    *self.stage.borrow_mut() = Stage::Finished(v);
                    End::Value
                }
            }
            Ending::Cancelled => End::Cancelled(h.cancel.pending_message()),
            Ending::Panicked(p) => {
                let msg = panic_message(&*p);
                End::Panicked(Box::new(PanicInfo {
                    payload: Some(p),
                    msg,
                }))
            }
        };
        let panicked = matches!(end, End::Panicked(..));
        if panicked {
            // A new panic is a new error to retrieve, whatever happened to
            // an earlier `cancel()` (asyncio re-arms the flag the same way).
            h.retrieved.set(false);
        }
        *h.end.borrow_mut() = end;
        h.cancel.clear();
        h.wake.mark_done();
        let me = TaskRef(self.clone());
        lp.unregister(h.key);
        let mut waiters = std::mem::take(&mut *h.waiters.borrow_mut());
        waiters.drain_each(|w| match w {
            Waiter::Wake(_, w) => w.wake(),
            Waiter::Callback(cb) => {
                let t = me.clone();
                lp.call_soon(Box::new(move || cb(&t)));
            }
        });
        if panicked && !h.handle_alive.get() {
            h.retrieved.set(true);
            lp.report(
                format!(
                    "Task exception was never retrieved: {}",
                    me.panic_message().unwrap_or_default()
                ),
                Some(&me),
            );
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl<F: Future + 'static> TaskObj for TaskCell<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(self: Rc<Self>, lp: &Loop) {
        let h = &self.header;
        h.wake.begin_step();
        if h.is_done() {
            return;
        }
        if !h.started.get() {
            if h.cancel.root_pending() {
                // Cancelled before its first step: the body never runs.
                self.finish(lp, Ending::Cancelled);
                return;
            }
            h.started.set(true);
        }
        let prev = lp.set_current(Some(TaskRef(self.clone())));
        h.running.set(true);
        let res = self.poll_future();
        h.running.set(false);
        lp.set_current(prev);
        match res {
            Ok(Poll::Pending) => {
                if h.abort_requested.get() {
                    self.finish(lp, Ending::Cancelled);
                }
            }
            Ok(Poll::Ready(v)) => self.finish(lp, Ending::Value(v)),
            Err(p) => self.finish(lp, Ending::Panicked(p)),
        }
    }

    fn abort(self: Rc<Self>) {
        let h = &self.header;
        if h.is_done() {
            return;
        }
        if h.running.get() {
            h.abort_requested.set(true);
            return;
        }
        if let Some(lp) = h.lp.upgrade() {
            self.finish(&lp, Ending::Cancelled);
        }
    }

    fn drop_future(&self, _lp: &Loop) {
        self.drop_stage();
        self.header.cancel.clear();
        self.header.wake.mark_done();
        let waiters = self.header.waiters.borrow_mut().take();
        drop(waiters);
    }
}

impl<F: Future + 'static> TaskOutput<F::Output> for TaskCell<F> {
    fn take_outcome(&self) -> Outcome<F::Output> {
        let h = &self.header;
        let mut end = h.end.borrow_mut();
        match &mut *end {
            End::Running => Outcome::Pending,
            End::Value => match std::mem::replace(&mut *self.stage.borrow_mut(), Stage::Consumed) {
                Stage::Finished(v) => Outcome::Value(v),
                _ => Outcome::Taken,
            },
            End::Cancelled(msg) => Outcome::Cancelled(msg.clone()),
            End::Panicked(info) => {
                h.retrieved.set(true);
                match info.payload.take() {
                    Some(p) => Outcome::Panicked(p),
                    None => Outcome::Panicked(Box::new(format!(
                        "task {} panicked (panic already re-raised by an earlier await): {}",
                        h.given_name().unwrap_or_else(|| format!("Task-{}", h.id)),
                        info.msg
                    ))),
                }
            }
        }
    }
}
