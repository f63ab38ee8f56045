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
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::raw::{RawTask, StageRef};
use super::{Outcome, TaskRef};
use crate::cancel::state::CancelState;
use crate::runtime::{Loop, TaskKey};
use crate::util::bits::{Bit, Bits};
use crate::util::small::{cloned, OneOrMany};

/// The next block of task ids to hand to a thread.
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);

/// How many ids a thread takes at once: one atomic operation per this many
/// spawns instead of one per spawn.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's ids: the next one, and the end of its block.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A fresh task id: unique in the process, increasing on each thread (so a
/// loop's tasks are numbered in creation order, as `all_tasks` lists them).
fn next_task_id() -> u64 {
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

/// How a task ended (or that it has not). What an ending carries (a
/// cancel message, a panic) is kept in [`Extras`]: most tasks end with a
/// value, and the header stays small.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum End {
    Running,
    Value,
    Cancelled,
    Panicked,
}

/// A callback registered with `add_done_callback`.
pub(crate) type DoneCallback = Box<dyn FnOnce(&TaskRef)>;

/// The rarely used part of a header, allocated on first use. `Cell`s taken
/// out for each use (none runs user code while a value is out): 40 bytes
/// where `RefCell`s made 104, in the box every cancelled task allocates.
#[derive(Default)]
pub(crate) struct Extras {
    name: Cell<Option<Box<str>>>,
    /// The message of the cancellation that ended the task.
    cancel_msg: Cell<Option<Arc<str>>>,
    /// The panic that ended the task.
    panic: Cell<Option<Box<PanicInfo>>>,
}

impl Extras {
    pub(crate) fn name(&self) -> Option<String> {
        let name = self.name.take();
        let out = name.as_deref().map(str::to_owned);
        self.name.set(name);
        out
    }

    pub(crate) fn set_name(&self, name: Option<String>) {
        self.name.set(name.map(String::into_boxed_str));
    }

    fn cancel_msg(&self) -> Option<Arc<str>> {
        cloned(&self.cancel_msg)
    }

    /// Runs `f` on the panic slot.
    fn with_panic<R>(&self, f: impl FnOnce(&mut Option<Box<PanicInfo>>) -> R) -> R {
        let mut panic = self.panic.take();
        let r = f(&mut panic);
        self.panic.set(panic);
        r
    }
}

/// Something to notify when the task is done. Awaiters and done-callbacks
/// share one list, notified in registration order, as asyncio schedules a
/// future's callbacks (an `await` registers a callback too).
pub(crate) enum Waiter {
    /// An await in progress by a task of this loop under its own waker: its
    /// id (to refresh or withdraw it) and the awaiting task's key.
    Task(u32, TaskKey),
    /// An await in progress under some other waker (a combinator's).
    Wake(u32, Waker),
    /// A future completed by a done-callback, which then wakes its own
    /// awaiter (asyncio's `shield`): its id (to withdraw it) and the
    /// future.
    Outer(u32, Rc<Outer>),
    Callback(DoneCallback),
}

/// A future that a task's done-callback completes (asyncio's `shield`
/// returns one): whoever awaits it runs a turn after the callback, two
/// after the task ends.
#[derive(Default)]
pub(crate) struct Outer {
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Outer {
    /// Whether the done-callback ran.
    pub(crate) fn done(&self) -> bool {
        self.done.get()
    }

    /// Records the awaiter's waker (`None`: nobody awaits it any more, so
    /// the callback wakes nobody).
    pub(crate) fn set_waker(&self, waker: Option<&Waker>) {
        let mut slot = self.waker.borrow_mut();
        match (&*slot, waker) {
            (Some(old), Some(new)) if old.will_wake(new) => {}
            _ => *slot = waker.cloned(),
        }
    }

    /// The done-callback: completes the future and wakes its awaiter.
    fn complete(&self) {
        self.done.set(true);
        let waker = self.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Waiter {
    /// The id of an await (`None` for a callback).
    pub(crate) fn await_id(&self) -> Option<u32> {
        match self {
            Waiter::Task(id, _) | Waiter::Wake(id, _) | Waiter::Outer(id, _) => Some(*id),
            Waiter::Callback(_) => None,
        }
    }
}

/// A task's yes/no states; they share one byte ([`Flags`]).
#[derive(Clone, Copy)]
pub(crate) enum Flag {
    /// Its first step ran.
    Started = 1,
    /// Its `Task<T>` handle is alive (a panic nobody can retrieve is
    /// reported at once).
    HandleAlive = 2,
    /// Its panic was retrieved (or its error is otherwise seen).
    Retrieved = 4,
    /// `abort()` was called during its step.
    AbortRequested = 8,
    /// Its step is running.
    Running = 16,
    /// Its future or output is being polled, dropped or moved: the borrow
    /// flag of its stage (see `StageCell` in raw.rs).
    StageBusy = 32,
    /// Its stage holds its output (see `StageCell` in raw.rs).
    Finished = 64,
    /// Its stage holds nothing: the future was dropped, and the output (if
    /// any) taken or dropped.
    Consumed = 128,
}

impl Bit for Flag {
    fn mask(self) -> u8 {
        self as u8
    }
}

/// A task's [`Flag`]s.
pub(crate) type Flags = Bits<Flag>;

/// A task's awaiters and done-callbacks, in registration order. A `Cell`
/// taken out for each edit rather than a `RefCell`: no borrow flag in every
/// header.
///
/// Boxed, the first waiter too: one word in every task header, where the
/// list in place took two (most tasks are never awaited while pending: a
/// spawned task runs before its spawner's next await, and a done-callback
/// was boxed anyway). An emptied list gives its box back; a task dropped
/// with no awaiter left, the usual case, tests one word.
pub(crate) struct Waiters(Cell<Option<Box<OneOrMany<Waiter>>>>);

impl Drop for Waiters {
    #[inline]
    fn drop(&mut self) {
        if let Some(list) = self.0.take() {
            drop_waiters(list);
        }
    }
}

/// The rare half of [`Waiters`]'s drop, out of line.
#[inline(never)]
fn drop_waiters(list: Box<OneOrMany<Waiter>>) {
    drop(list);
}

impl Waiters {
    pub(crate) const fn new() -> Waiters {
        Waiters(Cell::new(None))
    }

    /// Edits the list. Should `f` reach back into it (a foreign waker's
    /// `clone` registering another await of the task), what it added is
    /// kept, after `f`'s edits. An emptied list gives its box back.
    pub(crate) fn edit<R>(&self, f: impl FnOnce(&mut OneOrMany<Waiter>) -> R) -> R {
        let mut boxed = self.0.take();
        let mut unboxed = OneOrMany::None;
        let list = match &mut boxed {
            Some(b) => &mut **b,
            None => &mut unboxed,
        };
        let r = f(list);
        if let Some(mut added) = self.0.take() {
            added.drain_each(|w| list.push(w));
        }
        let keep = !matches!(list, OneOrMany::None);
        match boxed {
            Some(b) if keep => self.0.set(Some(b)),
            None if keep => self.0.set(Some(Box::new(unboxed))),
            _ => {}
        }
        r
    }

    /// Takes the whole list (the task is done).
    #[inline]
    pub(crate) fn take(&self) -> Option<Box<OneOrMany<Waiter>>> {
        self.0.take()
    }
}

/// A panic that ended a task: the payload (until an awaiter re-raises it)
/// and its message.
pub(crate) struct PanicInfo {
    pub(crate) payload: Option<Box<dyn Any + Send>>,
    pub(crate) msg: String,
}

/// Everything about a task that does not depend on its future's type.
///
/// Its `end` and `flags` are kept in the cancel state's last word (see
/// [`Lent`]): 56 bytes, where fields of its own would make 64.
pub(crate) struct Header {
    pub(crate) id: u64,
    pub(crate) cancel: CancelState,
    pub(crate) waiters: Waiters,
}

/// The header's two one-byte states, stored inside its [`CancelState`],
/// whose last word has room for them beside its own count and flags (a
/// struct's padding cannot be shared across a field boundary, so as fields
/// of the header they would take a word of their own).
pub(crate) struct Lent {
    end: Cell<End>,
    flags: Flags,
}

impl Lent {
    pub(crate) const fn new() -> Lent {
        Lent {
            end: Cell::new(End::Running),
            flags: Flags::new(Flag::HandleAlive as u8),
        }
    }
}

impl Header {
    pub(crate) fn is_done(&self) -> bool {
        self.end() != End::Running
    }

    /// How the task ended, or `End::Running`.
    #[inline]
    pub(crate) fn end(&self) -> End {
        self.cancel.lent().end.get()
    }

    fn set_end(&self, end: End) {
        self.cancel.lent().end.set(end);
    }

    /// The task's yes/no states.
    #[inline]
    pub(crate) fn flags(&self) -> &Flags {
        &self.cancel.lent().flags
    }

    /// The message of the cancellation that ended the task, if any.
    pub(crate) fn cancel_message(&self) -> Option<Arc<str>> {
        if self.end() != End::Cancelled {
            return None;
        }
        self.cancel.extras_if_any()?.cancel_msg()
    }

    /// The message of the panic that ended the task, if it panicked.
    pub(crate) fn panic_message(&self) -> Option<String> {
        if self.end() != End::Panicked {
            return None;
        }
        self.cancel
            .extras_if_any()?
            .with_panic(|p| p.as_ref().map(|p| p.msg.clone()))
    }

    /// The task's name and what a cancelled or panicked ending carries,
    /// allocated on first use (they share a box with the cancel books).
    pub(crate) fn extras(&self) -> &Extras {
        self.cancel.extras()
    }

    /// The task's name, if one was given.
    pub(crate) fn given_name(&self) -> Option<String> {
        self.cancel.extras_if_any().and_then(Extras::name)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.flags().get(Flag::Running)
    }

    /// A fresh header (the task finds its loop by the id in its block:
    /// [`RawTask::owning_loop`]).
    #[inline]
    pub(crate) fn new() -> Header {
        Header {
            id: next_task_id(),
            cancel: CancelState::new(),
            waiters: Waiters::new(),
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

fn finish<F: Future>(task: &RawTask, stage: StageRef<'_, F>, lp: &Loop, ending: Ending<F::Output>) {
    let h = task.header();
    // Drop the future first, on this thread.
    stage.consume();
    let (end, cancel_msg) = match ending {
        Ending::Value(v) => {
            if let Some(msg) = h.cancel.live_cancellation() {
                drop(v);
                (End::Cancelled, msg)
            } else if h.cancel.root_pending() {
                drop(v);
                (End::Cancelled, h.cancel.pending_message())
            } else {
                stage.set_output(v);
                (End::Value, None)
            }
        }
        Ending::Cancelled => (End::Cancelled, h.cancel.pending_message()),
        Ending::Panicked(p) => {
            let msg = panic_message(&*p);
            h.extras().panic.set(Some(Box::new(PanicInfo {
                payload: Some(p),
                msg,
            })));
            // A new panic is a new error to retrieve, whatever happened to
            // an earlier `cancel()` (asyncio re-arms the flag the same way).
            h.flags().set(Flag::Retrieved, false);
            (End::Panicked, None)
        }
    };
    if cancel_msg.is_some() {
        h.extras().cancel_msg.set(cancel_msg);
    }
    let panicked = end == End::Panicked;
    h.set_end(end);
    h.cancel.clear();
    task.mark_done();
    lp.unregister(task.key());
    let waiters = h.waiters.take();
    if waiters.is_none() && !panicked {
        return;
    }
    let me = TaskRef(task.clone());
    waiters
        .map(|b| *b)
        .unwrap_or_default()
        .drain_each(|w| match w {
            Waiter::Task(_, key) => lp.wake_task(key),
            Waiter::Wake(_, w) => w.wake(),
            Waiter::Outer(_, outer) => {
                lp.call_soon(Box::new(move || outer.complete()));
            }
            Waiter::Callback(cb) => {
                let t = me.clone();
                lp.call_soon(Box::new(move || cb(&t)));
            }
        });
    if panicked && !h.flags().get(Flag::HandleAlive) {
        h.flags().set(Flag::Retrieved, true);
        lp.report(
            format!(
                "Task exception was never retrieved: {}",
                h.panic_message().unwrap_or_default()
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
pub(crate) fn run<F: Future>(task: &RawTask, stage: StageRef<'_, F>, lp: &Loop) {
    let h = task.header();
    task.begin_step();
    if h.is_done() {
        return;
    }
    if !h.flags().get(Flag::Started) {
        if h.cancel.root_pending() {
            // Cancelled before its first step: the body never runs.
            finish(task, stage, lp, Ending::Cancelled);
            return;
        }
        h.flags().set(Flag::Started, true);
    }
    h.flags().set(Flag::Running, true);
    debug_assert!(
        crate::cancel::scope::in_root_scope(),
        "a cancel scope leaked into the next task step"
    );
    let res = {
        let _current = lp.current.enter(task);
        let waker = task.waker();
        let mut cx = Context::from_waker(&waker);
        stage.poll(&mut cx)
    };
    h.flags().set(Flag::Running, false);
    match res {
        Ok(Poll::Pending) => {
            if h.flags().get(Flag::AbortRequested) {
                finish(task, stage, lp, Ending::Cancelled);
            }
        }
        Ok(Poll::Ready(v)) => finish(task, stage, lp, Ending::Value(v)),
        Err(p) => finish(task, stage, lp, Ending::Panicked(p)),
    }
}

/// Drops the future now and ends the task cancelled (at the end of the
/// current step if it is running).
pub(crate) fn abort<F: Future>(task: &RawTask, stage: StageRef<'_, F>) {
    let h = task.header();
    if h.is_done() {
        return;
    }
    if h.flags().get(Flag::Running) {
        h.flags().set(Flag::AbortRequested, true);
        return;
    }
    if h.flags().get(Flag::StageBusy) {
        // Reached from the drop of its own future as the task finishes
        // (a guard aborting its task): it is ending already.
        return;
    }
    if let Some(lp) = task.owning_loop() {
        finish(task, stage, &lp, Ending::Cancelled);
    }
}

/// Drops the future without completing the task (loop close).
pub(crate) fn drop_future<F: Future>(task: &RawTask, stage: StageRef<'_, F>) {
    stage.consume();
    task.header().cancel.clear();
    task.mark_done();
    drop(task.header().waiters.take());
}

/// Hands a finished task's outcome to an awaiter.
pub(crate) fn take_outcome<F: Future>(
    task: &RawTask,
    stage: StageRef<'_, F>,
) -> Outcome<F::Output> {
    let h = task.header();
    match h.end() {
        End::Running => Outcome::Pending,
        End::Value => match stage.take_output() {
            Some(v) => Outcome::Value(v),
            None => Outcome::Taken,
        },
        End::Cancelled => Outcome::Cancelled(h.cancel_message()),
        End::Panicked => {
            h.flags().set(Flag::Retrieved, true);
            let (payload, msg) = h.extras().with_panic(|panic| {
                let info = panic.as_mut().expect("a panicked task keeps its panic");
                (info.payload.take(), info.msg.clone())
            });
            match payload {
                Some(p) => Outcome::Panicked(p),
                None => Outcome::Panicked(Box::new(format!(
                    "task {} panicked (panic already re-raised by an earlier await): {msg}",
                    h.given_name().unwrap_or_else(|| format!("Task-{}", h.id)),
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{next_task_id, ID_BLOCK};
    use std::collections::HashSet;

    /// Threads taking ids at once, each past several of its blocks: every
    /// id is unique, and each thread's ids increase.
    #[test]
    fn task_ids_are_unique_across_threads_and_increase_on_each() {
        let per_thread = 3 * ID_BLOCK as usize + 7;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| next_task_id()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = HashSet::new();
        for t in threads {
            let ids = t.join().unwrap();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "increasing on a thread"
            );
            for id in ids {
                assert!(all.insert(id), "id {id} handed out twice");
            }
        }
        assert_eq!(all.len(), 4 * per_thread);
    }
}
