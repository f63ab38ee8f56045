//! The event loop: one ready queue, one timer queue, one thread.
//!
//! # One turn (asyncio's `_run_once`)
//!
//! 1. Wakes that arrived from other threads join the ready queue.
//! 2. If nothing is ready, the loop waits for the earliest timer: on a real
//!    clock it blocks until then, or until an I/O event or another thread
//!    wakes a task; on a virtual clock it jumps straight to that deadline
//!    (see `idle.rs`, which also polls I/O on busy turns).
//! 3. Every timer due now moves to the *end* of the ready queue, in
//!    deadline order, FIFO among equal deadlines.
//! 4. Exactly the entries present at that moment run, in order. Whatever
//!    they schedule (a woken task, a `call_soon`) runs on the next turn.
//!
//! A task woken by a timer therefore runs one turn after the timer fires,
//! as in asyncio, where the timer callback completes a future whose
//! done-callback then steps the task.

pub(crate) mod clock;
pub(crate) mod context;
mod handle;
mod idle;
mod registry;
mod runner;
pub(crate) mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use handle::{get_running_loop, EventLoop, Handle, NoRunningLoop, TimerHandle};
pub(crate) use idle::{BusyGuard, Remote};
pub use runner::{run, ExceptionContext, Runner, RunnerBuilder};

use crate::task::cell::Header;
use crate::task::{CurrentTask, RawTask, Task, TaskRef};
use clock::Clock;
use registry::Registry;
use timers::{TimerAction, TimerKey, Timers};

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A task's place in the loop's registry: slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    slot: u32,
    /// Never zero: a [`Ready`] entry with generation zero names a timer or
    /// a callback instead.
    gen: NonZeroU32,
}

/// A callback scheduled with `call_soon`, cancellable until it runs.
pub(crate) struct Callback {
    pub(crate) cancelled: Cell<bool>,
    f: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// An entry of the ready queue, in 8 bytes (a million-task spawn queues a
/// million at once): a task's key; a due timer's slot (the timer queue
/// marks the timer due, see `Timers::take_due`); a callback's turn (the
/// callback waits in `Loop::callbacks`, in the same order); or nothing (a
/// task step moved further back, see [`Loop::requeue`]). A task's
/// generation is never zero, so generation zero tells the others apart;
/// an enum would take 12 bytes.
#[derive(Clone, Copy)]
pub(crate) struct Ready(u64);

/// What a [`Ready`] entry names.
enum ReadyItem {
    Task(TaskKey),
    Timer(u32),
    Callback,
    Skip,
}

impl Ready {
    /// A callback's turn: generation zero, and a slot no timer has (see
    /// `Timers::arm`).
    const CALLBACK: Ready = Ready(u32::MAX as u64);
    /// A moved step's old place: generation zero, and the other slot no
    /// timer has.
    const SKIP: Ready = Ready(u32::MAX as u64 - 1);

    fn task(key: TaskKey) -> Ready {
        Ready(u64::from(key.gen.get()) << 32 | u64::from(key.slot))
    }

    fn timer(slot: u32) -> Ready {
        debug_assert!(slot < u32::MAX - 1);
        Ready(u64::from(slot))
    }

    #[inline]
    fn item(self) -> ReadyItem {
        let low = self.0 as u32;
        match NonZeroU32::new((self.0 >> 32) as u32) {
            Some(gen) => ReadyItem::Task(TaskKey { slot: low, gen }),
            None if low == u32::MAX => ReadyItem::Callback,
            None if low == u32::MAX - 1 => ReadyItem::Skip,
            None => ReadyItem::Timer(low),
        }
    }
}

pub(crate) type ExceptionHandler = Box<dyn Fn(&ExceptionContext)>;

/// The loop's state. Lives in an `Rc`, owned by a [`Runner`].
pub(crate) struct Loop {
    pub(crate) id: u64,
    ready: RefCell<VecDeque<Ready>>,
    /// The callbacks whose [`Ready::CALLBACK`] entries are in `ready`, in
    /// the same order.
    callbacks: RefCell<VecDeque<Rc<Callback>>>,
    pub(crate) timers: RefCell<Timers>,
    tasks: RefCell<Registry>,
    next_gen: Cell<u32>,
    clock: Clock,
    pub(crate) remote: Arc<Remote>,
    /// The task whose step is running.
    pub(crate) current: CurrentTask,
    /// Turns run so far (zero-timeout `wait_for` compares turns).
    turn: Cell<u64>,
    /// Virtual clock only: how long the loop may sit with nothing able to
    /// wake it before it reports a deadlock (idle.rs).
    deadlock_after: Option<Duration>,
    handler: Option<ExceptionHandler>,
    /// The reactor and the worker pool, created on first use (idle.rs).
    io: idle::LoopIo,
}

impl Drop for Loop {
    fn drop(&mut self) {
        context::forget_loop(self.id);
    }
}

impl Loop {
    pub(crate) fn new(
        virtual_time: bool,
        deadlock_after: Option<Duration>,
        handler: Option<ExceptionHandler>,
    ) -> Rc<Loop> {
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let lp = Rc::new(Loop {
            id,
            ready: RefCell::new(VecDeque::new()),
            callbacks: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::new()),
            tasks: RefCell::new(Registry::new()),
            next_gen: Cell::new(0),
            clock: Clock::new(virtual_time),
            remote: Arc::new(Remote::new(id)),
            current: CurrentTask::new(),
            turn: Cell::new(0),
            deadlock_after,
            handler,
            io: idle::LoopIo::default(),
        });
        context::register_loop(&lp);
        lp
    }

    /// The loop's clock, as an instant.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The loop's clock (see [`Clock`]).
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn is_virtual(&self) -> bool {
        self.clock.is_virtual()
    }

    // ----- tasks -----

    /// Registers a new task and schedules its first step.
    pub(crate) fn spawn<F>(self: &Rc<Self>, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
    {
        self.spawn_with(fut, None, false)
    }

    /// [`Loop::spawn`] with a name, and optionally an eager first step: run
    /// synchronously now, up to the task's first suspension (3.12's eager
    /// tasks); the caller is the current task again afterwards.
    pub(crate) fn spawn_with<F>(
        self: &Rc<Self>,
        fut: F,
        name: Option<String>,
        eager: bool,
    ) -> Task<F::Output>
    where
        F: Future + 'static,
    {
        let gen = NonZeroU32::new(self.next_gen.get().wrapping_add(1)).unwrap_or(NonZeroU32::MIN);
        self.next_gen.set(gen.get());
        let key = TaskKey {
            slot: self.tasks.borrow().next_slot(),
            gen,
        };
        let typed = RawTask::allocate(fut, key, self.remote.clone(), Header::new());
        let task = typed.task();
        if name.is_some() {
            task.header().extras().set_name(name);
        }
        self.tasks.borrow_mut().insert(task.clone());
        if eager {
            // The spawner's timeouts do not reach into the new task.
            let _own_scope = crate::cancel::scope::StepScope::enter();
            task.0.run(self);
        } else {
            self.push_ready(key);
        }
        Task::new(typed)
    }

    /// Wakes the task `key` names, if it is still registered (a task of
    /// this loop awaiting another is woken this way: no waker is cloned
    /// to register the await, nor dropped to end it).
    pub(crate) fn wake_task(&self, key: TaskKey) {
        if let Some(t) = self.tasks.borrow().get(key) {
            t.0.wake_on(self);
        }
    }

    /// The key of the task of this loop that `waker` wakes, if it is one.
    pub(crate) fn task_of_waker(&self, waker: &std::task::Waker) -> Option<TaskKey> {
        crate::task::task_of_waker(waker, self.id)
    }

    /// Queues the task `key` names for a step on the next turn.
    #[inline]
    pub(crate) fn push_ready(&self, key: TaskKey) {
        self.ready.borrow_mut().push_back(Ready::task(key));
    }

    /// Moves the queued step of the task `key` names to the back of the
    /// ready queue, as if it were woken now; nothing if it is not queued.
    /// A rare path (a zero-timeout `wait_for` cancelled while its private
    /// future's release is on its way): it scans the queue.
    pub(crate) fn requeue(&self, key: TaskKey) {
        let entry = Ready::task(key);
        let mut ready = self.ready.borrow_mut();
        if let Some(i) = ready.iter().rposition(|r| r.0 == entry.0) {
            ready[i] = Ready::SKIP;
            ready.push_back(entry);
        }
    }

    pub(crate) fn unregister(&self, key: TaskKey) {
        let removed = self.tasks.borrow_mut().remove(key);
        drop(removed);
    }

    /// Tasks not done, in creation order.
    pub(crate) fn all_tasks(&self) -> Vec<TaskRef> {
        let mut v: Vec<TaskRef> = self.tasks.borrow().iter().cloned().collect();
        v.sort_by_key(|t| t.id());
        v
    }

    pub(crate) fn current_task(&self) -> Option<TaskRef> {
        self.current.get().map(TaskRef)
    }

    // ----- callbacks and timers -----

    pub(crate) fn call_soon(&self, f: Box<dyn FnOnce()>) -> Rc<Callback> {
        let cb = Rc::new(Callback {
            cancelled: Cell::new(false),
            f: RefCell::new(Some(f)),
        });
        self.push_callback(cb.clone());
        cb
    }

    /// Queues `cb` to run in its turn.
    pub(crate) fn push_callback(&self, cb: Rc<Callback>) {
        self.callbacks.borrow_mut().push_back(cb);
        self.ready.borrow_mut().push_back(Ready::CALLBACK);
    }

    /// Arms a timer for `deadline`.
    pub(crate) fn arm(&self, deadline: Instant, action: TimerAction) -> TimerKey {
        self.arm_ns(self.clock.ns(deadline), action)
    }

    /// Arms a timer for nanosecond `at` of the loop's clock.
    pub(crate) fn arm_ns(&self, at: i64, action: TimerAction) -> TimerKey {
        self.timers.borrow_mut().arm(at, action)
    }

    pub(crate) fn disarm(&self, key: TimerKey) -> bool {
        self.timers.borrow_mut().cancel(key)
    }

    // ----- errors -----

    /// Hands an error nobody retrieved to the exception handler.
    pub(crate) fn report(&self, message: String, task: Option<&TaskRef>) {
        let ctx = ExceptionContext {
            message,
            task_name: task.map(|t| t.name()),
        };
        match &self.handler {
            Some(h) => h(&ctx),
            None => eprintln!("asyncio: {ctx}"),
        }
    }

    // ----- running -----

    /// The number of the turn running now (or the last one run).
    pub(crate) fn turn(&self) -> u64 {
        self.turn.get()
    }

    /// Runs one turn (see the module doc).
    pub(crate) fn run_once(&self) {
        self.turn.set(self.turn.get() + 1);
        self.drain_remote();
        self.wait_for_work();
        self.timers.borrow_mut().pop_due(
            || self.clock.now_ns(),
            |slot| self.ready.borrow_mut().push_back(Ready::timer(slot)),
        );
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let Some(item) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            match item.item() {
                ReadyItem::Task(key) => {
                    let task = self.tasks.borrow().get(key).map(|t| t.0.clone());
                    if let Some(task) = task {
                        task.run(self);
                    }
                }
                ReadyItem::Timer(slot) => {
                    let action = self.timers.borrow_mut().take_due(slot);
                    match action {
                        Some(TimerAction::Task(key)) => self.wake_task(key),
                        Some(TimerAction::Wake(w)) => w.wake(),
                        Some(TimerAction::Callback(f)) => f(),
                        Some(TimerAction::Fire(t)) => {
                            if let Some(t) = t.upgrade() {
                                t.fire();
                            }
                        }
                        None => {}
                    }
                }
                ReadyItem::Skip => {}
                ReadyItem::Callback => {
                    let cb = self.callbacks.borrow_mut().pop_front();
                    let cb = cb.expect("a callback for each callback entry");
                    if !cb.cancelled.get() {
                        let f = cb.f.borrow_mut().take();
                        if let Some(f) = f {
                            f();
                        }
                    }
                }
            }
        }
    }

    /// Runs turns until `done()` holds.
    pub(crate) fn run_until(&self, done: impl Fn() -> bool) {
        while !done() {
            self.run_once();
        }
    }

    /// Runs turns until `done()` holds or nothing can happen any more
    /// without another thread: nothing ready, no timer armed, no wake from
    /// another thread waiting, no task awaiting I/O or a worker thread.
    /// Returns whether `done()` holds.
    pub(crate) fn run_until_or_idle(&self, done: impl Fn() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            let idle = self.ready.borrow().is_empty()
                && self.timers.borrow_mut().next_deadline().is_none()
                && !self.remote.pending.load(Ordering::Acquire)
                && !self.io_busy();
            if idle {
                return false;
            }
            self.run_once();
        }
    }

    /// Drops every task's future and every timer and callback (loop close).
    pub(crate) fn shutdown(&self) {
        // Futures first: one may hold what a worker thread waits for (a
        // channel's sender), and closing the I/O joins the workers.
        let tasks = self.tasks.borrow_mut().drain();
        for t in &tasks {
            t.0.drop_future();
        }
        drop(tasks);
        self.close_io();
        let timers = self.timers.borrow_mut().clear();
        drop(timers);
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        drop(ready);
        let callbacks = std::mem::take(&mut *self.callbacks.borrow_mut());
        drop(callbacks);
    }
}

#[cfg(test)]
mod ready_tests {
    use super::{Ready, ReadyItem, TaskKey};
    use std::num::NonZeroU32;

    /// Every kind of entry decodes to what was queued, at the edges of
    /// each field.
    #[test]
    fn ready_entries_round_trip() {
        for (slot, gen) in [(0, 1), (7, 3), (u32::MAX, u32::MAX), (0, u32::MAX)] {
            let key = TaskKey {
                slot,
                gen: NonZeroU32::new(gen).unwrap(),
            };
            assert!(matches!(Ready::task(key).item(), ReadyItem::Task(k) if k == key));
        }
        for slot in [0, 1, u32::MAX - 2] {
            assert!(matches!(Ready::timer(slot).item(), ReadyItem::Timer(s) if s == slot));
        }
        assert!(matches!(Ready::CALLBACK.item(), ReadyItem::Callback));
        assert!(matches!(Ready::SKIP.item(), ReadyItem::Skip));
        assert_eq!(std::mem::size_of::<Ready>(), 8);
    }
}
