//! The interpreter: runs a [`Program`] on the `asyncio` crate's public API, on a
//! virtual-time [`Runner`], and records the trace `ref.py` would print.
//!
//! Each construct maps to the crate the way a user would write it (`ref.py`'s Python in
//! brackets):
//!
//! | statement | Rust |
//! |---|---|
//! | `spawn` | `create_task(run_body(..))` |
//! | `await` | `task_ref.wait().await` (any number of statements may await one task) |
//! | `wait_for` | `wait_for(task_ref.wait(), d)`; `t: 0` is `Duration::ZERO`, `null` is `None` |
//! | `wait_for_body` | `wait_for(run_body(..), d)` inline; with `t: 0`, `wait_for(create_task(run_body(..)), ZERO)` (Python's `ensure_future`) |
//! | `shield_wait_for` | `wait_for(shield(&mut task), d)` |
//! | `timeout` | `timeout(d, block)`, `expired()` from its handle |
//! | `try` | a `match` on `Err(Exc::Cancelled(token))`; dropping the token swallows the cancellation |
//! | `cancel`, `state`, `uncancel`, `cancelling` | the `TaskRef` methods |
//! | `gather` | `try_gather(children)` (an `Err` is Python's exception); with `return_exceptions`, `gather(children).return_exceptions()` |
//! | `taskgroup` | `TaskGroup::run(\|tg\| ..)`, children made with `tg.create_task(run_body(..))` |
//! | `acquire`, `release`, `with` | a lock's or condition's guard kept in a table (`Held`) between the statements; a semaphore permit `forget()`-ten, given back by `release()` |
//! | `wait`, `notify`, `set`, `reset`, ... | the `Event`, `Condition` (with the table's guard), `Barrier` methods |
//! | `put`, `get`, `join`, `qshutdown`, ... | the `Queue` methods (`LifoQueue` and `PriorityQueue` through `Deref`) |
//!
//! A task's body stores what it returned or raised in its variable's slot as it ends
//! (`Slot::out`): awaiting a task through its `TaskRef` (`wait()`) says only how it ended,
//! and Python lets any number of statements read one task's result. `gather` takes its
//! children's results from the same slots (`VarChild`).
//!
//! Exceptions are [`Exc`] values carried in `Err`: a `CancelledError` is kept alive while
//! it propagates (so a task whose body ends with it ends cancelled) and dropped where
//! Python would discard the exception.
//!
//! Program end follows `FORMAT.md`: after `main`'s `end` event the unfinished tasks are
//! cancelled in creation order (`shutdown -> [...]`), then the loop runs until every task
//! is done (the runner's main future waits for them; nothing is cancelled twice). A
//! watchdog timer just past `MAX_TICKS` stops a program that hangs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use asyncio::{
    AsTask, Barrier, BarrierWaitError, BoundedSemaphore, CancelledError, Child, Condition, Failure,
    GetError, GetNowaitError, IntoChild, LifoQueue, Lock, LockGuard, Outcome, PriorityQueue,
    PutError, PutNowaitError, Queue, Runner, Semaphore, TaskGroup, TaskGroupError, TaskRef,
    TimeoutError,
};

use crate::program::{Block, Name, ObjOp, ObjType, Program, Stmt};
use crate::trace::{boolean, value, Event};

/// Ops the interpreter cannot express yet on the crate's API (see `API-GAPS.md`): programs
/// using them are reported as unsupported instead of being run.
pub const UNSUPPORTED: &[&str] = &[];

/// Virtual time of one program time unit.
pub const UNIT: Duration = Duration::from_millis(10);
/// A program still running past this many units "hangs" (`ref.py`'s `MAX_TICKS`).
pub const MAX_TICKS: u64 = 1000;
/// A program logging more events than this "hangs" (`ref.py`'s `MAX_EVENTS`).
pub const MAX_EVENTS: usize = 20_000;

/// A body's result value (`null` is `None`).
type Ret = Option<i64>;

/// An exception in flight, as `ref.py` distinguishes them.
#[derive(Clone, Debug)]
pub enum Exc {
    /// `CancelledError`: the live token (dropping it handles the cancellation).
    Cancelled(CancelledError),
    /// `TimeoutError`.
    Timeout(TimeoutError),
    /// `ProgramError(kind)`, from `raise`.
    Program(Name),
    /// `BaseExceptionGroup` (from a task group).
    Group(Vec<Exc>),
}

impl From<CancelledError> for Exc {
    fn from(e: CancelledError) -> Self {
        Exc::Cancelled(e)
    }
}

impl Exc {
    /// The outcome text: `cancelled`, `timeout`, `error:K`, `group:[...]` (members sorted).
    pub fn render(&self) -> String {
        match self {
            Exc::Cancelled(_) => "cancelled".into(),
            Exc::Timeout(_) => "timeout".into(),
            Exc::Program(k) => format!("error:{k}"),
            Exc::Group(members) => {
                let mut m: Vec<String> = members.iter().map(Exc::render).collect();
                m.sort();
                format!("group:[{}]", m.join(","))
            }
        }
    }
}

/// How a block ends normally: `Some(v)` when a `return` ran (the whole body returns `v`).
type Flow = Result<Option<Ret>, Exc>;

/// A spawned task's output: what its body returned or raised.
type Out = Result<Ret, Exc>;

/// A boxed block future (blocks nest, so the recursion needs a box).
type BlockFuture = Pin<Box<dyn Future<Output = Flow>>>;

/// A task variable's binding.
struct Slot {
    /// For inspecting, cancelling and awaiting the task.
    r: TaskRef,
    /// What the task's body returned or raised, stored by the body as it ends (Python's
    /// tasks can be awaited any number of times; the crate hands the output out once).
    /// A cancellation is not stored: the task then ends cancelled.
    out: Rc<RefCell<Option<Out>>>,
}

impl Slot {
    /// The stored output of a task that ended with a value.
    fn output(&self) -> Out {
        self.out
            .borrow()
            .clone()
            .unwrap_or_else(|| panic!("{} ended with a value but stored none", self.r.name()))
    }
}

/// A `gather` argument: the variable's task, its result taken from the slot.
struct VarChild {
    r: TaskRef,
    out: Rc<RefCell<Option<Out>>>,
}

impl AsTask for VarChild {
    fn as_task(&self) -> &TaskRef {
        &self.r
    }
}

impl Child for VarChild {
    type Output = Out;

    fn take_value(&mut self) -> Out {
        self.out
            .borrow()
            .clone()
            .unwrap_or_else(|| panic!("{} ended with a value but stored none", self.r.name()))
    }
}

impl IntoChild for VarChild {
    type Child = VarChild;

    fn into_child(self) -> VarChild {
        self
    }
}

/// A lock as the interpreter holds it: Python's `acquire()` and `release()` are separate
/// statements, possibly in different tasks, so the guard of the held lock is kept here
/// (the lock is held exactly while `guard` is `Some`). A guard borrows its lock, so the
/// lock must outlive the table: it is leaked, a few dozen bytes per lock and program
/// (see `API-GAPS.md`, section 5).
struct Held {
    lock: &'static Lock,
    guard: RefCell<Option<LockGuard<'static>>>,
}

impl Held {
    fn new(lock: &'static Lock) -> Held {
        Held {
            lock,
            guard: RefCell::new(None),
        }
    }

    /// Stores the guard of a lock just acquired.
    fn hold(&self, guard: LockGuard<'static>) {
        let old = self.guard.borrow_mut().replace(guard);
        assert!(old.is_none(), "a lock was acquired twice");
    }

    /// `release()`: `ok`, or `unlocked` (Python's `RuntimeError`).
    fn release(&self) -> &'static str {
        let guard = self.guard.borrow_mut().take();
        match guard {
            Some(g) => {
                drop(g);
                "ok"
            }
            None => "unlocked",
        }
    }
}

/// The three queues, with integer items.
enum AnyQueue {
    Fifo(Queue<i64>),
    Lifo(LifoQueue<i64>),
    Priority(PriorityQueue<i64>),
}

impl AnyQueue {
    fn q(&self) -> &Queue<i64> {
        match self {
            AnyQueue::Fifo(q) => q,
            AnyQueue::Lifo(q) => q,
            AnyQueue::Priority(q) => q,
        }
    }
}

/// A synchronisation object declared under `"sync"`.
enum Obj {
    Lock(Held),
    /// The condition, and its lock's holding table.
    Condition(&'static Condition, Held),
    Semaphore(Semaphore),
    BoundedSemaphore(BoundedSemaphore),
    Event(asyncio::Event),
    Barrier(Barrier),
    Queue(AnyQueue),
}

impl Obj {
    fn new(t: ObjType) -> Obj {
        match t {
            ObjType::Lock => Obj::Lock(Held::new(Box::leak(Box::new(Lock::new())))),
            ObjType::Condition => {
                let cond: &'static Condition = Box::leak(Box::new(Condition::new()));
                Obj::Condition(cond, Held::new(cond.lock()))
            }
            ObjType::Semaphore(n) => Obj::Semaphore(Semaphore::new(n)),
            ObjType::BoundedSemaphore(n) => Obj::BoundedSemaphore(BoundedSemaphore::new(n)),
            ObjType::Event => Obj::Event(asyncio::Event::new()),
            ObjType::Barrier(n) => Obj::Barrier(Barrier::new(n)),
            ObjType::Queue(n) => Obj::Queue(AnyQueue::Fifo(Queue::new(n))),
            ObjType::LifoQueue(n) => Obj::Queue(AnyQueue::Lifo(LifoQueue::new(n))),
            ObjType::PriorityQueue(n) => Obj::Queue(AnyQueue::Priority(PriorityQueue::new(n))),
        }
    }
}

struct Interp {
    bodies: BTreeMap<Name, Block>,
    /// The `"sync"` objects (emptied at the end, before the runner closes).
    objs: RefCell<HashMap<Name, Rc<Obj>>>,
    vars: RefCell<HashMap<Name, Rc<Slot>>>,
    /// Every task the program created, in creation order, with its label.
    tasks: RefCell<Vec<(TaskRef, Rc<str>)>>,
    trace: RefCell<Vec<Event>>,
    start: Cell<Option<Instant>>,
    overflow: Cell<bool>,
    /// Set when the program needs something the crate cannot express (see `API-GAPS.md`).
    gap: RefCell<Option<String>>,
}

/// Why a program could not be run faithfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Runs `program` and returns its trace. A construct the crate cannot express yet is
/// logged as an `internal:unsupported ...` final event (see [`try_run`]).
pub fn run(program: &Program) -> Vec<Event> {
    match try_run(program) {
        Ok(t) => t,
        Err((mut t, Unsupported(why))) => {
            let time = t.last().map_or(0, |e| e.time);
            t.push(Event {
                time,
                label: "*".into(),
                text: format!("internal:unsupported {why}"),
            });
            t
        }
    }
}

/// Runs `program`; `Err` with the partial trace when it needed something the crate
/// cannot express (for example two tasks awaiting one task at the same time).
pub fn try_run(program: &Program) -> Result<Vec<Event>, (Vec<Event>, Unsupported)> {
    let it = Rc::new(Interp {
        bodies: program.bodies.clone(),
        objs: RefCell::new(
            program
                .objects
                .iter()
                .map(|(n, t)| (n.clone(), Rc::new(Obj::new(*t))))
                .collect(),
        ),
        vars: RefCell::new(HashMap::new()),
        tasks: RefCell::new(Vec::new()),
        trace: RefCell::new(Vec::new()),
        start: Cell::new(None),
        overflow: Cell::new(false),
        gap: RefCell::new(None),
    });
    let mut runner = Runner::builder()
        .virtual_time(true)
        .exception_handler(|_| {})
        .build();
    let (time, final_text) = runner.run(harness(it.clone()));
    let hung = final_text != "exit";
    it.trace.borrow_mut().push(Event {
        time,
        label: "*".into(),
        text: final_text.into(),
    });
    // Drop every handle before the runner so that closing it sees no stray references.
    it.vars.borrow_mut().clear();
    it.tasks.borrow_mut().clear();
    it.objs.borrow_mut().clear();
    if hung {
        // Closing would cancel the stuck tasks and wait for them, maybe for ever.
        std::mem::forget(runner);
    } else {
        runner.close();
    }
    let trace = std::mem::take(&mut *it.trace.borrow_mut());
    let gap = it.gap.borrow_mut().take();
    match gap {
        None => Ok(trace),
        Some(why) => Err((trace, Unsupported(why))),
    }
}

impl Interp {
    /// Virtual time in units since the program started.
    fn now(&self) -> u64 {
        let (Some(start), Ok(lp)) = (self.start.get(), asyncio::get_running_loop()) else {
            return 0;
        };
        let d = lp.time().saturating_duration_since(start);
        ((d.as_nanos() + UNIT.as_nanos() / 2) / UNIT.as_nanos()) as u64
    }

    fn log(&self, label: &str, text: String) {
        let mut trace = self.trace.borrow_mut();
        if trace.len() >= MAX_EVENTS {
            self.overflow.set(true);
            return;
        }
        trace.push(Event {
            time: self.now(),
            label: label.to_owned(),
            text,
        });
    }

    /// Marks the program unsupported: it met a construct the public API
    /// cannot express (none today; see API-GAPS.md).
    #[allow(dead_code)]
    fn unsupported(&self, why: String) {
        self.gap.borrow_mut().get_or_insert(why);
    }

    /// The slot bound to `task`, or logs `HEAD -> unbound`.
    fn slot(&self, task: &Name, label: &str, head: &str) -> Option<Rc<Slot>> {
        let slot = self.vars.borrow().get(task).cloned();
        if slot.is_none() {
            self.log(label, format!("{head} -> unbound"));
        }
        slot
    }

    fn register(&self, r: TaskRef, label: Rc<str>) {
        self.tasks.borrow_mut().push((r, label));
    }
}

fn timeout_of(t: Option<u32>) -> Option<Duration> {
    t.map(|u| UNIT * u)
}

/// `ref.py`'s `main_entry`: run `main`, swallow whatever it raised, then cancel every
/// unfinished task in creation order.
async fn main_entry(it: Rc<Interp>) {
    // Like `except (CancelledError, Exception): pass`: the token is dropped, main goes on.
    let _ = run_body(it.clone(), "main".into(), "main".into()).await;
    let pending: Vec<(TaskRef, Rc<str>)> = it
        .tasks
        .borrow()
        .iter()
        .filter(|(t, _)| !t.done())
        .cloned()
        .collect();
    let labels: Vec<&str> = pending.iter().map(|(_, l)| &**l).collect();
    it.log("main", format!("shutdown -> [{}]", labels.join(",")));
    for (t, _) in &pending {
        t.cancel();
    }
}

/// The runner's main future: starts the clock, creates the program's `main` task (as
/// `ref.py` does: `main` is a task of its own, not registered for the shutdown list) and
/// runs the loop until every task is done or the program hangs.
async fn harness(it: Rc<Interp>) -> (u64, &'static str) {
    let lp = asyncio::get_running_loop().expect("inside the runner");
    it.start.set(Some(lp.time()));
    let main = asyncio::create_task(main_entry(it.clone()));
    main.set_name("main");
    wait_idle(it).await
}

/// Resolves when the task is done (through a done-callback; not a checkpoint).
struct DoneWaiter {
    state: Rc<(Cell<bool>, RefCell<Option<Waker>>)>,
}

impl DoneWaiter {
    fn new(task: &TaskRef) -> DoneWaiter {
        let state = Rc::new((Cell::new(false), RefCell::new(None::<Waker>)));
        let s = state.clone();
        task.add_done_callback(move |_| {
            s.0.set(true);
            if let Some(w) = s.1.borrow_mut().take() {
                w.wake();
            }
        });
        DoneWaiter { state }
    }

    /// Also resolves when `flag` is set (by the watchdog timer).
    fn poll_with(&self, cx: &mut Context<'_>, flag: &Cell<bool>) -> Poll<()> {
        if self.state.0.get() || flag.get() {
            Poll::Ready(())
        } else {
            *self.state.1.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Runs the loop until every task is done (`exit`) or until `MAX_TICKS` units have
/// passed with tasks still pending (a hang). Returns the final event's time and text.
async fn wait_idle(it: Rc<Interp>) -> (u64, &'static str) {
    let lp = asyncio::get_running_loop().expect("inside the runner");
    let me = asyncio::current_task().expect("inside a task");
    let fired = Rc::new((Cell::new(false), RefCell::new(None::<Waker>)));
    let f = fired.clone();
    let start = it.start.get().expect("main started");
    // Half a unit past the limit: every program timer due at or before MAX_TICKS fires first.
    let _watchdog = lp.call_at(start + UNIT * MAX_TICKS as u32 + UNIT / 2, move || {
        f.0.set(true);
        if let Some(w) = f.1.borrow_mut().take() {
            w.wake();
        }
    });
    loop {
        if it.overflow.get() {
            return (it.now(), "hang:events");
        }
        let next = asyncio::all_tasks().into_iter().find(|t| *t != me);
        let Some(task) = next else {
            return (it.now(), "exit");
        };
        let waiter = DoneWaiter::new(&task);
        std::future::poll_fn(|cx| {
            *fired.1.borrow_mut() = Some(cx.waker().clone());
            waiter.poll_with(cx, &fired.0)
        })
        .await;
        if fired.0.get() {
            // The crate gives no way to ask whether a timer is still armed, so a deadlock
            // and a timer past the limit cannot be told apart here, nor can the clock be
            // read before the jump to the watchdog (see API-GAPS.md).
            let last = it.trace.borrow().last().map_or(0, |e| e.time);
            return (last, "hang:time");
        }
    }
}

/// `run_body`: logs `start B`, runs the statements, logs `end -> OUTCOME`.
async fn run_body(it: Rc<Interp>, body: Name, label: Rc<str>) -> Out {
    it.log(&label, format!("start {body}"));
    let block = it.bodies[&body].clone();
    match exec_block(it.clone(), block, label.clone()).await {
        Ok(r) => {
            let v = r.flatten();
            it.log(&label, format!("end -> value:{}", value(v)));
            Ok(v)
        }
        Err(e) => {
            it.log(&label, format!("end -> {}", e.render()));
            Err(e)
        }
    }
}

/// A task's future: `run_body`, storing the result in the task variable's slot.
async fn run_task(
    it: Rc<Interp>,
    body: Name,
    label: Rc<str>,
    out: Rc<RefCell<Option<Out>>>,
) -> Out {
    let r = run_body(it, body, label).await;
    if !matches!(r, Err(Exc::Cancelled(_))) {
        *out.borrow_mut() = Some(r.clone());
    }
    r
}

fn exec_block(it: Rc<Interp>, block: Block, label: Rc<str>) -> BlockFuture {
    Box::pin(async move {
        for st in block.iter() {
            if let Some(r) = exec_stmt(&it, st, &label).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    })
}

/// `_outcome`: logs `HEAD -> OUTCOME`; a cancellation always propagates, other exceptions
/// only with `propagate`.
fn outcome(it: &Interp, label: &str, head: &str, r: Result<String, Exc>, propagate: bool) -> Flow {
    match r {
        Ok(text) => {
            it.log(label, format!("{head} -> {text}"));
            Ok(None)
        }
        Err(e) => {
            it.log(label, format!("{head} -> {}", e.render()));
            if propagate || matches!(e, Exc::Cancelled(_)) {
                Err(e)
            } else {
                Ok(None)
            }
        }
    }
}

/// The value text of a finished task's output, or its exception.
fn task_result(out: Out) -> Result<String, Exc> {
    out.map(|v| format!("value:{}", value(v)))
}

/// How a statement waits on a task.
enum WaitKind {
    Await,
    WaitFor(Option<Duration>),
    ShieldWaitFor(Option<Duration>),
}

/// Awaits the task in `slot` as `kind` says; the task's result, or the exception the
/// statement raises.
async fn wait_task(slot: &Slot, kind: WaitKind) -> Result<String, Exc> {
    let r: Result<Result<(), CancelledError>, TimeoutError> = match kind {
        WaitKind::Await => Ok(slot.r.wait().await),
        WaitKind::WaitFor(d) => asyncio::wait_for(slot.r.wait(), d).await,
        // `shield(done_task)` is the task itself: its result, without suspending.
        WaitKind::ShieldWaitFor(d) => asyncio::wait_for(asyncio::shield(&slot.r), d).await,
    };
    match r {
        Err(t) => Err(Exc::Timeout(t)),
        Ok(Err(c)) => Err(Exc::Cancelled(c)),
        Ok(Ok(())) => task_result(slot.output()),
    }
}

/// A `gather -> [...]` item.
fn render_item(o: Outcome<Out>) -> String {
    match o {
        Outcome::Value(Ok(v)) => format!("value:{}", value(v)),
        Outcome::Value(Err(e)) => e.render(),
        Outcome::Cancelled(_) => "cancelled".into(),
        Outcome::Panicked(_) => "internal:panic".into(),
    }
}

/// `gather`: the result list, or the exception it raises.
async fn gather_stmt(slots: Vec<Rc<Slot>>, return_exceptions: bool) -> Result<String, Exc> {
    let children: Vec<VarChild> = slots
        .iter()
        .map(|s| VarChild {
            r: s.r.clone(),
            out: s.out.clone(),
        })
        .collect();
    let items: Vec<String> = if return_exceptions {
        let outcomes = asyncio::gather(children)
            .return_exceptions()
            .await
            .map_err(Exc::Cancelled)?;
        outcomes.into_iter().map(render_item).collect()
    } else {
        let values = asyncio::try_gather(children).await?;
        values
            .into_iter()
            .map(|v| format!("value:{}", value(v)))
            .collect()
    };
    Ok(format!("[{}]", items.join(",")))
}

/// `taskgroup`: creates the children, runs the block; the block's flow, or the exception
/// the group raises.
async fn taskgroup_stmt(
    it: &Rc<Interp>,
    children: &[(Name, Name)],
    block: &Block,
    label: &Rc<str>,
) -> Result<Option<Ret>, Exc> {
    let r = TaskGroup::run(|tg: TaskGroup<Exc>| async move {
        for (var, body) in children {
            let name: Rc<str> = Rc::from(&**var);
            let out = Rc::new(RefCell::new(None));
            let t = tg
                .create_task(run_task(
                    it.clone(),
                    body.clone(),
                    name.clone(),
                    out.clone(),
                ))
                .map_err(|e| Exc::Program(format!("internal_{e}").replace(' ', "_").into()))?;
            t.set_name(&**var);
            it.register(t.task_ref(), name);
            let slot = Slot {
                r: t.task_ref(),
                out,
            };
            it.vars.borrow_mut().insert(var.clone(), Rc::new(slot));
        }
        exec_block(it.clone(), block.clone(), label.clone()).await
    })
    .await;
    match r {
        Ok(flow) => Ok(flow),
        Err(TaskGroupError::Cancelled(e)) => Err(e),
        Err(TaskGroupError::Failed(failures)) => Err(Exc::Group(
            failures
                .into_iter()
                .map(|f| match f {
                    Failure::Error(e) => e,
                    Failure::Panic(_) => Exc::Program("panic".into()),
                })
                .collect(),
        )),
    }
}

async fn exec_stmt(it: &Rc<Interp>, st: &Stmt, label: &Rc<str>) -> Flow {
    match st {
        Stmt::Log { msg } => {
            it.log(label, format!("log {msg}"));
            Ok(None)
        }
        Stmt::Sleep { t } => {
            asyncio::sleep(UNIT * *t).await.map_err(Exc::Cancelled)?;
            Ok(None)
        }
        Stmt::Spawn { task, body } => {
            let name: Rc<str> = Rc::from(&**task);
            let out = Rc::new(RefCell::new(None));
            let t = asyncio::create_task(run_task(
                it.clone(),
                body.clone(),
                name.clone(),
                out.clone(),
            ));
            t.set_name(&**task);
            it.register(t.task_ref(), name);
            let slot = Slot {
                r: t.task_ref(),
                out,
            };
            it.vars.borrow_mut().insert(task.clone(), Rc::new(slot));
            Ok(None)
        }
        Stmt::Await { task, propagate } => {
            let head = format!("await {task}");
            let Some(slot) = it.slot(task, label, &head) else {
                return Ok(None);
            };
            let r = wait_task(&slot, WaitKind::Await).await;
            outcome(it, label, &head, r, *propagate)
        }
        Stmt::Cancel { task, msg } => {
            let head = format!("cancel {task}");
            if let Some(slot) = it.slot(task, label, &head) {
                let r = match msg {
                    None => slot.r.cancel(),
                    Some(m) => slot.r.cancel_with(m.as_str()),
                };
                it.log(label, format!("{head} -> {}", boolean(r)));
            }
            Ok(None)
        }
        Stmt::State { task } => {
            let head = format!("state {task}");
            if let Some(slot) = it.slot(task, label, &head) {
                let r = &slot.r;
                it.log(
                    label,
                    format!(
                        "{head} -> done={} cancelled={} cancelling={}",
                        boolean(r.done()),
                        boolean(r.cancelled()),
                        r.cancelling()
                    ),
                );
            }
            Ok(None)
        }
        Stmt::WaitFor { task, t, propagate } => {
            let head = format!("wait_for {task}");
            let Some(slot) = it.slot(task, label, &head) else {
                return Ok(None);
            };
            let r = wait_task(&slot, WaitKind::WaitFor(timeout_of(*t))).await;
            outcome(it, label, &head, r, *propagate)
        }
        Stmt::ShieldWaitFor { task, t, propagate } => {
            let head = format!("shield_wait_for {task}");
            let Some(slot) = it.slot(task, label, &head) else {
                return Ok(None);
            };
            let r = wait_task(&slot, WaitKind::ShieldWaitFor(timeout_of(*t))).await;
            outcome(it, label, &head, r, *propagate)
        }
        Stmt::WaitForBody { body, t, propagate } => {
            let sub: Rc<str> = Rc::from(format!("{label}>{body}"));
            let fut = run_body(it.clone(), body.clone(), sub.clone());
            let r = if *t == Some(0) {
                // wait_for(coro, 0) wraps the coroutine in a task first (ensure_future).
                let task = asyncio::create_task(fut);
                it.register(task.task_ref(), sub);
                asyncio::wait_for(task, Duration::ZERO)
                    .await
                    .map(|r| r.map_err(Exc::Cancelled).and_then(|o| o))
            } else {
                asyncio::wait_for(fut, timeout_of(*t)).await
            };
            let r = match r {
                Err(te) => Err(Exc::Timeout(te)),
                Ok(out) => task_result(out),
            };
            outcome(it, label, &format!("wait_for_body {body}"), r, *propagate)
        }
        Stmt::Timeout {
            t,
            block,
            propagate,
        } => {
            let tm = asyncio::timeout(
                timeout_of(*t),
                exec_block(it.clone(), block.clone(), label.clone()),
            );
            let cm = tm.handle();
            let r = tm.await;
            let expired = boolean(cm.expired());
            let r = match r {
                Err(te) => Err(Exc::Timeout(te)),
                Ok(flow) => flow,
            };
            match r {
                Ok(ret) => {
                    it.log(label, format!("timeout -> ok expired={expired}"));
                    Ok(ret)
                }
                Err(e) => {
                    it.log(
                        label,
                        format!("timeout -> {} expired={expired}", e.render()),
                    );
                    if *propagate || matches!(e, Exc::Cancelled(_)) {
                        Err(e)
                    } else {
                        Ok(None)
                    }
                }
            }
        }
        Stmt::Try {
            block,
            on_cancel,
            reraise,
        } => match exec_block(it.clone(), block.clone(), label.clone()).await {
            Err(Exc::Cancelled(token)) => {
                it.log(label, "try -> caught".into());
                // The caught exception lives until the handler is done, as in Python.
                let r = exec_block(it.clone(), on_cancel.clone(), label.clone()).await?;
                if r.is_some() {
                    return Ok(r);
                }
                if *reraise {
                    Err(Exc::Cancelled(token))
                } else {
                    Ok(None)
                }
            }
            other => other,
        },
        Stmt::Uncancel => {
            let me = asyncio::current_task().expect("statements run in a task");
            it.log(label, format!("uncancel -> {}", me.uncancel()));
            Ok(None)
        }
        Stmt::Cancelling => {
            let me = asyncio::current_task().expect("statements run in a task");
            it.log(label, format!("cancelling -> {}", me.cancelling()));
            Ok(None)
        }
        Stmt::Gather {
            tasks,
            return_exceptions,
            propagate,
        } => {
            let slots: Option<Vec<Rc<Slot>>> = {
                let vars = it.vars.borrow();
                tasks.iter().map(|t| vars.get(t).cloned()).collect()
            };
            let Some(slots) = slots else {
                it.log(label, "gather -> unbound".into());
                return Ok(None);
            };
            let r = gather_stmt(slots, *return_exceptions).await;
            outcome(it, label, "gather", r, *propagate)
        }
        Stmt::TaskGroup {
            children,
            block,
            propagate,
        } => match taskgroup_stmt(it, children, block, label).await {
            Ok(flow) => {
                it.log(label, "taskgroup -> ok".into());
                Ok(flow)
            }
            Err(e) => outcome(it, label, "taskgroup", Err(e), *propagate),
        },
        Stmt::Raise { kind } => Err(Exc::Program(kind.clone())),
        Stmt::Return { value } => Ok(Some(*value)),
        Stmt::Obj { op, obj } => {
            let o = it.objs.borrow()[obj].clone();
            obj_stmt(it, *op, obj, &o, label).await
        }
        Stmt::With { obj, block } => {
            let o = it.objs.borrow()[obj].clone();
            let head = format!("with {obj}");
            if let Err(c) = acquire(&o).await {
                it.log(label, format!("{head} -> cancelled"));
                return Err(Exc::Cancelled(c));
            }
            it.log(label, format!("{head} -> acquired"));
            let r = exec_block(it.clone(), block.clone(), label.clone()).await;
            let released = match release(&o) {
                "ok" => "released",
                other => other,
            };
            it.log(label, format!("{head} -> {released}"));
            r
        }
    }
}

/// `await X.acquire()` on a lock, semaphore or condition; the lock's guard is kept in
/// its table and a permit is forgotten (given back by `release`).
async fn acquire(o: &Obj) -> Result<(), CancelledError> {
    match o {
        Obj::Lock(h) => h.hold(h.lock.acquire().await?),
        Obj::Condition(c, h) => h.hold(c.acquire().await?),
        Obj::Semaphore(s) => s.acquire().await?.forget(),
        Obj::BoundedSemaphore(s) => s.acquire().await?.forget(),
        _ => unreachable!("object type checked by the parser"),
    }
    Ok(())
}

/// `X.release()`: `ok`, `unlocked` (a lock not held) or `too_many` (a bounded semaphore
/// already at its initial value).
fn release(o: &Obj) -> &'static str {
    match o {
        Obj::Lock(h) | Obj::Condition(_, h) => h.release(),
        Obj::Semaphore(s) => {
            s.release();
            "ok"
        }
        Obj::BoundedSemaphore(s) => match s.release() {
            Ok(()) => "ok",
            Err(_) => "too_many",
        },
        _ => unreachable!("object type checked by the parser"),
    }
}

/// A statement on a synchronisation object: logs `OP OBJ -> RESULT`; a cancellation is
/// logged as `cancelled` and propagates, every other error is part of the result.
async fn obj_stmt(it: &Rc<Interp>, op: ObjOp, name: &Name, o: &Obj, label: &Rc<str>) -> Flow {
    let head = match op {
        ObjOp::Put(v) | ObjOp::PutNowait(v) => format!("{} {name} {v}", op.name()),
        _ => format!("{} {name}", op.name()),
    };
    let r: Result<String, CancelledError> = match (op, o) {
        (ObjOp::Acquire, _) => acquire(o).await.map(|()| "ok".into()),
        (ObjOp::Release, _) => Ok(release(o).into()),
        (ObjOp::Locked, Obj::Lock(h) | Obj::Condition(_, h)) => Ok(boolean(h.lock.locked()).into()),
        (ObjOp::Locked, Obj::Semaphore(s)) => Ok(boolean(s.locked()).into()),
        (ObjOp::Locked, Obj::BoundedSemaphore(s)) => Ok(boolean(s.locked()).into()),
        (ObjOp::Set, Obj::Event(e)) => {
            e.set();
            Ok("ok".into())
        }
        (ObjOp::Clear, Obj::Event(e)) => {
            e.clear();
            Ok("ok".into())
        }
        (ObjOp::IsSet, Obj::Event(e)) => Ok(boolean(e.is_set()).into()),
        (ObjOp::Wait, Obj::Event(e)) => e.wait().await.map(|()| "ok".into()),
        (ObjOp::Wait, Obj::Condition(c, h)) => {
            // Python checks `locked()`; the guard leaves the table while the wait has the
            // lock released, and comes back holding it again, whatever the outcome.
            let guard = h.guard.borrow_mut().take();
            match guard {
                None => Ok("unlocked".into()),
                Some(mut g) => {
                    let r = c.wait(&mut g).await;
                    h.hold(g);
                    r.map(|()| "ok".into())
                }
            }
        }
        (ObjOp::Wait, Obj::Barrier(b)) => match b.wait().await {
            Ok(i) => Ok(format!("value:{i}")),
            Err(BarrierWaitError::Broken(_)) => Ok("broken".into()),
            Err(BarrierWaitError::Cancelled(c)) => Err(c),
        },
        (ObjOp::Notify(_) | ObjOp::NotifyAll, Obj::Condition(c, h)) => match &*h.guard.borrow() {
            None => Ok("unlocked".into()),
            Some(g) => {
                match op {
                    ObjOp::Notify(n) => c.notify(g, n),
                    _ => c.notify_all(g),
                }
                Ok("ok".into())
            }
        },
        (ObjOp::Reset, Obj::Barrier(b)) => b.reset().await.map(|()| "ok".into()),
        (ObjOp::Abort, Obj::Barrier(b)) => b.abort().await.map(|()| "ok".into()),
        (ObjOp::BarrierState, Obj::Barrier(b)) => Ok(format!(
            "n_waiting={} broken={}",
            b.n_waiting(),
            boolean(b.broken())
        )),
        (ObjOp::Put(v), Obj::Queue(q)) => match q.q().put(v).await {
            Ok(()) => Ok("ok".into()),
            Err(PutError::ShutDown(_)) => Ok("shutdown".into()),
            Err(PutError::Cancelled(c, _)) => Err(c),
        },
        (ObjOp::PutNowait(v), Obj::Queue(q)) => Ok(match q.q().put_nowait(v) {
            Ok(()) => "ok",
            Err(PutNowaitError::Full(_)) => "full",
            Err(PutNowaitError::ShutDown(_)) => "shutdown",
        }
        .into()),
        (ObjOp::Get, Obj::Queue(q)) => match q.q().get().await {
            Ok(v) => Ok(format!("value:{v}")),
            Err(GetError::ShutDown(_)) => Ok("shutdown".into()),
            Err(GetError::Cancelled(c)) => Err(c),
        },
        (ObjOp::GetNowait, Obj::Queue(q)) => Ok(match q.q().get_nowait() {
            Ok(v) => format!("value:{v}"),
            Err(GetNowaitError::Empty(_)) => "empty".into(),
            Err(GetNowaitError::ShutDown(_)) => "shutdown".into(),
        }),
        (ObjOp::TaskDone, Obj::Queue(q)) => Ok(match q.q().task_done() {
            Ok(()) => "ok",
            Err(_) => "too_many",
        }
        .into()),
        (ObjOp::Join, Obj::Queue(q)) => q.q().join().await.map(|()| "ok".into()),
        (ObjOp::Qsize, Obj::Queue(q)) => Ok(q.q().qsize().to_string()),
        (ObjOp::Qshutdown { immediate }, Obj::Queue(q)) => {
            q.q().shutdown(immediate);
            Ok("ok".into())
        }
        _ => unreachable!("object type checked by the parser"),
    };
    match r {
        Ok(text) => {
            it.log(label, format!("{head} -> {text}"));
            Ok(None)
        }
        Err(c) => {
            it.log(label, format!("{head} -> cancelled"));
            Err(Exc::Cancelled(c))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(program: &str) -> Vec<String> {
        run(&Program::parse(program).unwrap())
            .iter()
            .map(Event::line)
            .collect()
    }

    #[test]
    fn groups_render_sorted() {
        let g = Exc::Group(vec![
            Exc::Program("E2".into()),
            Exc::Timeout(TimeoutError),
            Exc::Group(vec![Exc::Program("E1".into())]),
            Exc::Program("E1".into()),
        ]);
        assert_eq!(
            g.render(),
            "group:[error:E1,error:E2,group:[error:E1],timeout]"
        );
    }

    #[test]
    fn runs_the_format_md_example() {
        let t = trace(
            r#"{"bodies":{"main":[{"op":"spawn","task":"t","body":"slow"},
                {"op":"wait_for","task":"t","t":1},{"op":"state","task":"t"},
                {"op":"await","task":"t"}],
               "slow":[{"op":"sleep","t":2},{"op":"return","value":2}]}}"#,
        );
        assert_eq!(
            t,
            [
                r#"[0,"main","start main"]"#,
                r#"[0,"t","start slow"]"#,
                r#"[1,"t","end -> cancelled"]"#,
                r#"[1,"main","wait_for t -> timeout"]"#,
                r#"[1,"main","state t -> done=true cancelled=true cancelling=1"]"#,
                r#"[1,"main","await t -> cancelled"]"#,
                r#"[1,"main","end -> cancelled"]"#,
                r#"[1,"main","shutdown -> []"]"#,
                r#"[1,"*","exit"]"#,
            ]
        );
    }

    #[test]
    fn sync_objects() {
        let t = trace(
            r#"{"sync":{"L":{"type":"lock"},"Q":{"type":"queue","maxsize":1},"E":{"type":"event"}},
               "bodies":{"main":[{"op":"spawn","task":"w","body":"w"},
                {"op":"with","obj":"L","block":[{"op":"sleep","t":1},{"op":"put","obj":"Q","value":7}]},
                {"op":"put_nowait","obj":"Q","value":8},{"op":"set","obj":"E"},{"op":"await","task":"w"},
                {"op":"release","obj":"L"}],
               "w":[{"op":"acquire","obj":"L"},{"op":"get","obj":"Q"},{"op":"wait","obj":"E"},
                {"op":"release","obj":"L"}]}}"#,
        );
        assert_eq!(
            t,
            [
                r#"[0,"main","start main"]"#,
                r#"[0,"main","with L -> acquired"]"#,
                r#"[0,"w","start w"]"#,
                r#"[1,"main","put Q 7 -> ok"]"#,
                r#"[1,"main","with L -> released"]"#,
                r#"[1,"main","put_nowait Q 8 -> full"]"#,
                r#"[1,"main","set E -> ok"]"#,
                r#"[1,"w","acquire L -> ok"]"#,
                r#"[1,"w","get Q -> value:7"]"#,
                r#"[1,"w","wait E -> ok"]"#,
                r#"[1,"w","release L -> ok"]"#,
                r#"[1,"w","end -> value:null"]"#,
                r#"[1,"main","await w -> value:null"]"#,
                r#"[1,"main","release L -> unlocked"]"#,
                r#"[1,"main","end -> value:null"]"#,
                r#"[1,"main","shutdown -> []"]"#,
                r#"[1,"*","exit"]"#,
            ]
        );
    }

    #[test]
    fn unbound_variables_and_late_timers() {
        let t = trace(
            r#"{"bodies":{"main":[{"op":"await","task":"nope"},{"op":"spawn","task":"a","body":"A"},
                {"op":"sleep","t":3}],
               "A":[{"op":"try","block":[{"op":"sleep","t":5000}],"reraise":false},
                {"op":"sleep","t":2000}]}}"#,
        );
        assert_eq!(t[1], r#"[0,"main","await nope -> unbound"]"#);
        assert_eq!(t.last().unwrap(), r#"[3,"*","hang:time"]"#);
    }
}
