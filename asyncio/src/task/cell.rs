//! What a task does: its type-independent state ([`Header`]) and the step,
//! finish, abort and take-output logic. The memory that holds it is
//! `raw.rs`'s.
//!
//! # Invariants
//!
//! - A task is only ever touched on its loop's thread (every handle is
//!   `!Send`). Other threads hold only wakers, which reach nothing but the
//!   task's registry key and wake state.
//! - The stage is the running future until it completes, panics, is
//!   aborted, or the loop closes; the future is then dropped in place on the
//!   loop's thread and never polled again.
//! - The header's `end` moves once from `Running` to a final state; waiters
//!   are woken and done-callbacks scheduled exactly then.

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::rc::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::raw::{RawTask, StageCell};
use super::{Outcome, TaskRef};
use crate::cancel::scope::CancelState;
use crate::runtime::Loop;
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

    /// A fresh header for a task of loop `lp`.
    pub(crate) fn new(lp: Weak<Loop>) -> Header {
        Header {
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
            lp,
        }
    }
}

/// What ended a task's last step.
enum Ending<T> {
    Value(T),
    Panicked(Box<dyn Any + Send>),
    /// Cancelled before its first step, or aborted.
    Cancelled,
}

fn finish<F: Future>(task: &RawTask, stage: &StageCell<F>, lp: &Loop, ending: Ending<F::Output>) {
    let h = task.header();
    // Drop the future first, on this thread.
    stage.consume();
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
                stage.set_output(v);
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
    task.mark_done();
    lp.unregister(task.key());
    let mut waiters = std::mem::take(&mut *h.waiters.borrow_mut());
    if waiters.is_empty() && !panicked {
        return;
    }
    let me = TaskRef(task.clone());
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

/// Runs one step of the task (the loop found it ready).
pub(crate) fn run<F: Future>(task: &RawTask, stage: &StageCell<F>, lp: &Loop) {
    let h = task.header();
    task.begin_step();
    if h.is_done() {
        return;
    }
    if !h.started.get() {
        if h.cancel.root_pending() {
            // Cancelled before its first step: the body never runs.
            finish(task, stage, lp, Ending::Cancelled);
            return;
        }
        h.started.set(true);
    }
    h.running.set(true);
    let res = {
        let _current = lp.current.enter(task);
        let waker = task.waker();
        let mut cx = Context::from_waker(&waker);
        stage.poll(&mut cx)
    };
    h.running.set(false);
    match res {
        Ok(Poll::Pending) => {
            if h.abort_requested.get() {
                finish(task, stage, lp, Ending::Cancelled);
            }
        }
        Ok(Poll::Ready(v)) => finish(task, stage, lp, Ending::Value(v)),
        Err(p) => finish(task, stage, lp, Ending::Panicked(p)),
    }
}

/// Drops the future now and ends the task cancelled (at the end of the
/// current step if it is running).
pub(crate) fn abort<F: Future>(task: &RawTask, stage: &StageCell<F>) {
    let h = task.header();
    if h.is_done() {
        return;
    }
    if h.running.get() {
        h.abort_requested.set(true);
        return;
    }
    if let Some(lp) = h.lp.upgrade() {
        finish(task, stage, &lp, Ending::Cancelled);
    }
}

/// Drops the future without completing the task (loop close).
pub(crate) fn drop_future<F: Future>(task: &RawTask, stage: &StageCell<F>) {
    stage.consume();
    task.header().cancel.clear();
    task.mark_done();
    let waiters = task.header().waiters.borrow_mut().take();
    drop(waiters);
}

/// Hands a finished task's outcome to an awaiter.
pub(crate) fn take_outcome<F: Future>(task: &RawTask, stage: &StageCell<F>) -> Outcome<F::Output> {
    let h = task.header();
    let mut end = h.end.borrow_mut();
    match &mut *end {
        End::Running => Outcome::Pending,
        End::Value => match stage.take_output() {
            Some(v) => Outcome::Value(v),
            None => Outcome::Taken,
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
