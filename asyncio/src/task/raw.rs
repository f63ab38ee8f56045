//! A task's memory: one heap block holding everything about the task, its
//! reference counts, and its waker. The crate's hand-managed memory lives
//! here and nowhere else.
//!
//! # Layout
//!
//! A task is one `RawCell<F>` (`repr(C)`, so a pointer to it is a pointer to
//! its [`Head`]):
//! - [`Shared`]: what any thread may touch, through a waker: the atomic
//!   reference count and the wake state (one word), the number of local
//!   handles ([`RawTask`]), the task's registry key, the loop's [`Remote`]
//!   queue, the vtable;
//! - the type-independent [`Header`] and the [`StageCell`] (the future, then
//!   its output): the loop's thread only.
//!
//! # Two counts, two wake states
//!
//! Local handles (`TaskRef`, `Task<T>`, the loop's registry entry) are
//! `!Send`, so they are counted in `Shared::local` by the loop's thread
//! alone (relaxed loads and stores, no read-modify-write). Wakers
//! are `Send + Sync` and counted in `Shared::word` atomically; all local
//! handles together hold one unit of the count.
//!
//! - When the last local handle drops (on the loop's thread), the header
//!   and the stage are dropped in place — so a `!Send` future, output or
//!   done-callback is never dropped on another thread — and the local unit
//!   of the count is released.
//! - Whoever releases the last unit of the count (the local side, or a waker
//!   dropped on any thread) frees the block, dropping only [`Shared`], which
//!   is `Send + Sync`.
//!
//! A local handle is never made from a waker (a wake names the task by its
//! registry key), so the local count never climbs back from zero.
//!
//! The wake state is split the same way. Whether the task sits in the
//! ready queue ([`QUEUED`]) or is done ([`DONE`]) lives beside the local
//! count and is read and written by the loop's thread alone: a wake on the
//! loop's own thread (every wake by a queue, a lock, an awaited task, a
//! yield) and the start of every step are plain loads and stores, with no
//! locked instruction. A wake from another thread sets [`REMOTE`] in the
//! atomic word and, if it was clear, sends the task's key to the loop's
//! remote queue; the loop clears the bit as it takes the key and wakes the
//! task locally then ([`RawTask::take_remote_wake`]). A remote wake that
//! finds the bit set is covered by the key already on its way: the loop
//! clears the bit (acquiring the wake's writes) before the step it queues.
//!
//! # Pinning
//!
//! The future is polled in place inside the block, which never moves, and
//! is dropped in place (never moved out) — see [`StageCell`].

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::cell::{self, Flag, Flags, Header};
use super::{Outcome, TaskRef};
use crate::runtime::{Loop, Remote, TaskKey};

/// The local wake state, in the low bits of [`Shared::local`]. Neither
/// bit: idle (suspended or running). `QUEUED`: in the ready queue (woken,
/// not yet stepped). `DONE`: wakes do nothing.
const QUEUED: u32 = 1;
const DONE: u32 = 2;
const STATE: u32 = QUEUED | DONE;
/// One local handle, in the rest of [`Shared::local`].
const LOCAL: u32 = 4;

/// The low bit of [`Shared::word`]: a wake from another thread has sent
/// the task's key to the loop, which has not taken it yet.
const REMOTE: u32 = 1;
/// One reference, in the rest of the word.
const REF: u32 = 2;

/// The part of a task any thread may touch (through a waker).
struct Shared {
    /// [`REMOTE`] and, above it, the count of references: wakers, plus one
    /// for all local handles together. A waker clone past 2^30 aborts, as
    /// `Arc` does at `isize::MAX`.
    word: AtomicU32,
    /// The local wake state ([`QUEUED`], [`DONE`]) and, above it, the
    /// number of local handles. Only the loop's thread touches it: atomic
    /// only so that `Shared` stays `Sync`; its relaxed loads and stores
    /// compile to plain moves.
    local: AtomicU32,
    key: TaskKey,
    remote: Arc<Remote>,
    vtable: &'static Vtable,
}

// Wakers reach `Shared` from any thread.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Shared>();
};

/// The type-independent start of every task block.
#[repr(C)]
pub(crate) struct Head {
    shared: Shared,
    header: ManuallyDrop<Header>,
}

#[repr(C)]
struct RawCell<F: Future> {
    head: Head,
    stage: StageCell<F>,
}

/// The operations that need the future's type.
struct Vtable {
    run: unsafe fn(&RawTask, &Loop),
    abort: unsafe fn(&RawTask),
    drop_future: unsafe fn(&RawTask),
    /// Writes an `Outcome<F::Output>` through the pointer.
    take_outcome: unsafe fn(&RawTask, *mut ()),
    /// Drops what is left in the stage, then the header, in place.
    drop_local: unsafe fn(NonNull<Head>),
    /// Frees the block (the local part is already dropped).
    dealloc: unsafe fn(NonNull<Head>),
}

/// The future, then its output, at a fixed place in its task's block.
///
/// A `StageCell` exists only inside a `RawCell`, which never moves, and it
/// has no way to move the future out: it is polled and dropped in place.
/// That is what makes its pin sound.
///
/// # Borrows
///
/// An `UnsafeCell`, not a `RefCell`: the borrow flag is one bit of the
/// task's [`Flags`] ([`Flag::StageBusy`]) instead of a word in every task.
/// Every access that can run user code while it holds a reference into the
/// stage (polling the future; dropping the future or an output in place)
/// sets the bit for its duration and clears it after, on unwind too; every
/// access checks it first and panics if it is set, as a `RefCell` would
/// (a future whose `Drop` reaches back into its own task). The cell is
/// reached only through a [`StageRef`], which pairs it with the flags of
/// the same block.
///
/// # What it holds
///
/// A union, not an enum: which of the two it holds, or neither once
/// consumed, is two more bits of the same flags ([`Flag::Finished`],
/// [`Flag::Consumed`]; neither set: the future). An enum's tag would cost
/// a word in every task: a future's own layout lends no spare bit pattern
/// to an enum around it.
pub(crate) struct StageCell<F: Future>(UnsafeCell<Stage<F>>);

/// A task's stage with its borrow flag: made only by [`stage`], from one
/// block, so that the two always belong to the same task.
pub(crate) struct StageRef<'a, F: Future> {
    cell: &'a StageCell<F>,
    flags: &'a Flags,
}

/// The future or its output; which one, the task's flags say (see
/// [`StageCell`]).
union Stage<F: Future> {
    running: ManuallyDrop<F>,
    finished: ManuallyDrop<F::Output>,
}

/// What a stage holds, as its flags say.
#[derive(Clone, Copy)]
enum Holds {
    Future,
    Output,
    Nothing,
}

/// Holds [`Flag::StageBusy`] set; clears it when dropped (on unwind too).
struct Busy<'a>(&'a Flags);

impl<'a> Busy<'a> {
    #[inline(always)]
    fn enter(flags: &'a Flags) -> Busy<'a> {
        if flags.replace(Flag::StageBusy, true) {
            reentered();
        }
        Busy(flags)
    }
}

#[cold]
#[inline(never)]
fn reentered() -> ! {
    panic!("asyncio: a task's future or output was reached from inside its own poll or drop")
}

impl Drop for Busy<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(Flag::StageBusy, false);
    }
}

impl<F: Future> StageRef<'_, F> {
    fn holds(&self) -> Holds {
        if self.flags.get(Flag::Consumed) {
            Holds::Nothing
        } else if self.flags.get(Flag::Finished) {
            Holds::Output
        } else {
            Holds::Future
        }
    }

    /// Records what the stage holds from now on.
    fn set_holds(&self, holds: Holds) {
        self.flags
            .set(Flag::Finished, matches!(holds, Holds::Output));
        self.flags
            .set(Flag::Consumed, matches!(holds, Holds::Nothing));
    }

    /// Runs `f` on the stage with the busy bit set.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        let _busy = Busy::enter(self.flags);
        // SAFETY: `flags` are this stage's own (see `StageRef`). The bit
        // was clear, so no other reference into the stage exists (every
        // access holds the bit while it holds one), and while this one
        // lives the bit makes any nested access panic before it touches
        // the stage.
        f(unsafe { &mut *self.cell.0.get() })
    }

    /// Polls the future once, catching a panic.
    ///
    /// # Panics
    /// If the future already completed (a loop bug).
    pub(crate) fn poll(
        &self,
        cx: &mut Context<'_>,
    ) -> Result<Poll<F::Output>, Box<dyn Any + Send>> {
        self.with(|stage| {
            let Holds::Future = self.holds() else {
                unreachable!("a finished task was polled");
            };
            // SAFETY: the flags say the stage holds the future (it was
            // written at allocation, and only `consume` ends it, recording
            // that first). A `StageCell` lives only inside its task's heap
            // block, which is freed only after the stage was consumed, and
            // nothing moves the future out: it is dropped in place. So it
            // never moves after this pin.
            let fut = unsafe { Pin::new_unchecked(&mut *stage.running) };
            panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
        })
    }

    /// Drops the future (or an output nobody took) in place.
    #[inline]
    pub(crate) fn consume(&self) {
        if let Holds::Nothing = self.holds() {
            return;
        }
        self.with(|stage| {
            let holds = self.holds();
            // Recorded first: should the drop panic, the stage is not
            // dropped again.
            self.set_holds(Holds::Nothing);
            match holds {
                // SAFETY: the flags said the stage held the future, and
                // now say it holds nothing: it is dropped exactly once.
                Holds::Future => unsafe { ManuallyDrop::drop(&mut stage.running) },
                // SAFETY: as above, for the output.
                Holds::Output => unsafe { ManuallyDrop::drop(&mut stage.finished) },
                Holds::Nothing => {}
            }
        });
    }

    /// Stores the output for the task's handle to take (dropping the
    /// future first if it is still there).
    pub(crate) fn set_output(&self, v: F::Output) {
        self.consume();
        self.with(|stage| {
            stage.finished = ManuallyDrop::new(v);
            self.set_holds(Holds::Output);
        });
    }

    /// Takes the output, if it is there.
    pub(crate) fn take_output(&self) -> Option<F::Output> {
        let Holds::Output = self.holds() else {
            return None;
        };
        self.with(|stage| {
            self.set_holds(Holds::Nothing);
            // SAFETY: the flags said the stage held the output, and now
            // say it holds nothing: it is moved out exactly once.
            Some(unsafe { ManuallyDrop::take(&mut stage.finished) })
        })
    }
}

/// A local (loop-thread) handle to a task block.
pub(crate) struct RawTask {
    ptr: NonNull<Head>,
}

/// A local handle that knows the task's output type.
pub(crate) struct Typed<T> {
    task: TaskRef,
    _output: PhantomData<fn() -> T>,
}

impl<T> Typed<T> {
    /// The type-erased handle.
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// Takes the task's outcome (the value at most once).
    pub(crate) fn take_outcome(&self) -> Outcome<T> {
        let raw = &self.task.0;
        let mut out = Outcome::Pending;
        // SAFETY: a `Typed<T>` is made only by `RawTask::allocate::<F>` with
        // `F::Output = T`, and the vtable writes an `Outcome<F::Output>`.
        unsafe { (raw.shared().vtable.take_outcome)(raw, (&mut out as *mut Outcome<T>).cast()) };
        out
    }
}

impl RawTask {
    /// Allocates a task running `fut`, already queued for its first step,
    /// with one local handle (the one returned).
    #[inline]
    pub(crate) fn allocate<F: Future + 'static>(
        fut: F,
        key: TaskKey,
        remote: Arc<Remote>,
        header: Header,
    ) -> Typed<F::Output> {
        // Allocated first and written in place: the block is built where it
        // lives, not built on the stack and copied (a `Box::new` of it
        // compiled to a `memcpy` of the whole block per spawn).
        let cell = Box::leak(Box::<RawCell<F>>::new_uninit());
        cell.write(RawCell {
            head: Head {
                shared: Shared {
                    word: AtomicU32::new(REF),
                    local: AtomicU32::new(LOCAL | QUEUED),
                    key,
                    remote,
                    vtable: vtable::<F>(),
                },
                header: ManuallyDrop::new(header),
            },
            // The flags start with neither stage bit: the future.
            stage: StageCell(UnsafeCell::new(Stage {
                running: ManuallyDrop::new(fut),
            })),
        });
        Typed {
            task: TaskRef(RawTask {
                ptr: NonNull::from(cell).cast(),
            }),
            _output: PhantomData,
        }
    }

    fn head(&self) -> &Head {
        // SAFETY: a local handle keeps the block and its local part alive.
        unsafe { self.ptr.as_ref() }
    }

    fn shared(&self) -> &Shared {
        &self.head().shared
    }

    /// The task's type-independent state.
    pub(crate) fn header(&self) -> &Header {
        &self.head().header
    }

    /// The task's loop, if it is still alive (it lives on this thread: a
    /// local handle is `!Send`).
    pub(crate) fn owning_loop(&self) -> Option<std::rc::Rc<Loop>> {
        crate::runtime::context::loop_by_id(self.loop_id())
    }

    /// The id of the task's loop.
    pub(crate) fn loop_id(&self) -> u64 {
        self.shared().remote.loop_id()
    }

    /// The task's registry key.
    pub(crate) fn key(&self) -> TaskKey {
        self.shared().key
    }

    /// Whether both tasks belong to the same loop.
    pub(crate) fn same_loop(&self, other: &RawTask) -> bool {
        Arc::ptr_eq(&self.shared().remote, &other.shared().remote)
    }

    /// Whether both handles name the same task.
    pub(crate) fn ptr_eq(&self, other: &RawTask) -> bool {
        self.ptr == other.ptr
    }

    /// The task's waker, borrowed for one poll (cloning it counts).
    pub(crate) fn waker(&self) -> WakerRef<'_> {
        // SAFETY: the raw waker follows WAKER_VTABLE's contract; this one
        // is never dropped (ManuallyDrop), so it needs no count of its own,
        // and it does not outlive `self`, which keeps the block alive.
        let waker = unsafe { Waker::from_raw(raw_waker(self.ptr)) };
        WakerRef {
            waker: ManuallyDrop::new(waker),
            _task: PhantomData,
        }
    }

    /// Whether `waker` is this task's own waker (its step's, or a clone).
    #[inline]
    pub(crate) fn is_own_waker(&self, waker: &Waker) -> bool {
        std::ptr::eq(waker.vtable(), &WAKER_VTABLE)
            && std::ptr::eq(waker.data(), self.ptr.as_ptr().cast_const().cast())
    }

    /// Wakes the task from its own loop's thread, as its waker would,
    /// without the waker's look-up of the loop.
    #[inline]
    pub(crate) fn wake_on(&self, lp: &Loop) {
        self.shared().wake_local(lp);
    }

    /// Takes a wake sent from another thread (the loop drains its remote
    /// queue): clears [`REMOTE`], so the next remote wake sends the key
    /// again, then wakes the task here. Clearing first, with acquire, is
    /// what makes a remote wake that found the bit set safe to drop: its
    /// writes are seen by the step this queues.
    pub(crate) fn take_remote_wake(&self, lp: &Loop) {
        self.shared().word.fetch_and(!REMOTE, Ordering::AcqRel);
        self.shared().wake_local(lp);
    }

    /// Called as a step begins: wakes from now on queue the task again.
    #[inline]
    pub(crate) fn begin_step(&self) {
        let local = &self.shared().local;
        local.store(local.load(Ordering::Relaxed) & !QUEUED, Ordering::Relaxed);
    }

    /// Whether the task sits in the ready queue (woken, not yet stepped).
    pub(crate) fn is_queued(&self) -> bool {
        self.shared().local.load(Ordering::Relaxed) & STATE == QUEUED
    }

    /// The task is done: later wakes do nothing.
    pub(crate) fn mark_done(&self) {
        let local = &self.shared().local;
        local.store(local.load(Ordering::Relaxed) | DONE, Ordering::Relaxed);
    }

    /// Runs one step.
    pub(crate) fn run(&self, lp: &Loop) {
        // SAFETY: the vtable belongs to this block's future type.
        unsafe { (self.shared().vtable.run)(self, lp) }
    }

    /// Drops the future now and ends the task cancelled.
    pub(crate) fn abort(&self) {
        // SAFETY: as in `run`.
        unsafe { (self.shared().vtable.abort)(self) }
    }

    /// Drops the future without completing the task (loop close).
    pub(crate) fn drop_future(&self) {
        // SAFETY: as in `run`.
        unsafe { (self.shared().vtable.drop_future)(self) }
    }
}

impl Shared {
    /// Counts one more local handle (on the loop's thread).
    fn add_local(&self) {
        let n = self.local.load(Ordering::Relaxed);
        if n >= u32::MAX - LOCAL {
            // As `Rc` does: never wrap (a billion handles to one task).
            std::process::abort();
        }
        self.local.store(n + LOCAL, Ordering::Relaxed);
    }

    /// Queues the task on `lp`, its own loop, unless it is queued or done.
    /// The caller is on the loop's thread: `lp` runs there.
    #[inline]
    fn wake_local(&self, lp: &Loop) {
        let w = self.local.load(Ordering::Relaxed);
        if w & STATE == 0 {
            self.local.store(w | QUEUED, Ordering::Relaxed);
            lp.push_ready(self.key);
        }
    }
}

impl Clone for RawTask {
    fn clone(&self) -> RawTask {
        self.shared().add_local();
        RawTask { ptr: self.ptr }
    }
}

impl Drop for RawTask {
    fn drop(&mut self) {
        let local = &self.shared().local;
        let left = local.load(Ordering::Relaxed) - LOCAL;
        local.store(left, Ordering::Relaxed);
        if left < LOCAL {
            let ptr = self.ptr;
            // SAFETY: this was the last local handle: nothing can reach the
            // local part any more, and we are on the loop's thread.
            unsafe { (self.shared().vtable.drop_local)(ptr) };
            // SAFETY: the local side's unit of the count is released once.
            unsafe { release(ptr) };
        }
    }
}

/// The task whose step is running, held by address only (no count): the
/// step holds a local handle to it from [`CurrentTask::enter`] until the
/// returned guard drops.
pub(crate) struct CurrentTask(Cell<Option<NonNull<Head>>>);

impl CurrentTask {
    pub(crate) const fn new() -> CurrentTask {
        CurrentTask(Cell::new(None))
    }

    /// Makes `task` current until the guard drops, which restores the
    /// previous one (an eager first step runs inside its spawner's step).
    pub(crate) fn enter<'a>(&'a self, task: &'a RawTask) -> CurrentGuard<'a> {
        let prev = self.0.replace(Some(task.ptr));
        CurrentGuard {
            slot: self,
            prev,
            _task: PhantomData,
        }
    }

    /// A local handle to the current task.
    pub(crate) fn get(&self) -> Option<RawTask> {
        let ptr = self.0.get()?;
        // SAFETY: the slot holds an address only while a `CurrentGuard`
        // borrowing a local handle to that task lives (or, nested, the
        // guard that will restore it does): the block and its local part
        // are alive, and this is the loop's thread.
        let head = unsafe { ptr.as_ref() };
        head.shared.add_local();
        Some(RawTask { ptr })
    }

    /// Runs `f` with the current task, lent: no count is taken or given
    /// back (await points ask this on every suspension and resumption).
    /// `f` may clone the handle to keep it.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&TaskRef) -> R) -> Option<R> {
        let ptr = self.0.get()?;
        // No `unsafe` needed to build it, but the handle holds no count of
        // its own: it is valid because, as in `get`, a guard borrowing a
        // counted local handle lives in a frame enclosing this call (the
        // task's step); `ManuallyDrop` keeps it from giving back a count it
        // never took, and `f` sees it only by reference, for the call.
        let task = ManuallyDrop::new(TaskRef(RawTask { ptr }));
        Some(f(&task))
    }
}

/// Restores the previous current task when a step ends (or unwinds).
pub(crate) struct CurrentGuard<'a> {
    slot: &'a CurrentTask,
    prev: Option<NonNull<Head>>,
    _task: PhantomData<&'a RawTask>,
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        self.slot.0.set(self.prev);
    }
}

/// A task's waker lent for one poll.
pub(crate) struct WakerRef<'a> {
    waker: ManuallyDrop<Waker>,
    _task: PhantomData<&'a RawTask>,
}

impl Deref for WakerRef<'_> {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// Releases one unit of the count, freeing the block after the last.
///
/// # Safety
/// The caller owns one unit of the count and does not use it afterwards.
unsafe fn release(ptr: NonNull<Head>) {
    // SAFETY: the unit the caller owns keeps `Shared` alive until here;
    // it is the block's first field, so the block's address is its own
    // (no reference to the rest of the block, which may be dropped already).
    let shared = unsafe { &*ptr.cast::<Shared>().as_ptr() };
    if shared.word.fetch_sub(REF, Ordering::Release) < 2 * REF {
        // Every other release happened before this free.
        fence(Ordering::Acquire);
        let dealloc = shared.vtable.dealloc;
        // SAFETY: that was the last unit: nobody else can reach the block.
        unsafe { dealloc(ptr) };
    }
}

fn vtable<F: Future + 'static>() -> &'static Vtable {
    &Vtable {
        run: run::<F>,
        abort: abort::<F>,
        drop_future: drop_future::<F>,
        take_outcome: take_outcome::<F>,
        drop_local: drop_local::<F>,
        dealloc: dealloc::<F>,
    }
}

/// The stage of a task whose future type is `F`, with that task's flags.
///
/// # Safety
/// The task must have been made by `RawTask::allocate::<F>` and its local part
/// must still be alive (the caller holds a local handle).
unsafe fn stage<F: Future>(task: &RawTask) -> StageRef<'_, F> {
    StageRef {
        // SAFETY: as the caller guarantees, the block is a `RawCell<F>`.
        cell: unsafe { &task.ptr.cast::<RawCell<F>>().as_ref().stage },
        flags: task.header().flags(),
    }
}

unsafe fn run<F: Future + 'static>(task: &RawTask, lp: &Loop) {
    // SAFETY: this function is in `F`'s vtable, and `task` is local.
    cell::run(task, unsafe { stage::<F>(task) }, lp)
}

unsafe fn abort<F: Future + 'static>(task: &RawTask) {
    // SAFETY: as in `run`.
    cell::abort(task, unsafe { stage::<F>(task) })
}

unsafe fn drop_future<F: Future + 'static>(task: &RawTask) {
    // SAFETY: as in `run`.
    cell::drop_future(task, unsafe { stage::<F>(task) })
}

unsafe fn take_outcome<F: Future + 'static>(task: &RawTask, out: *mut ()) {
    // SAFETY: as in `run`.
    let outcome = cell::take_outcome(task, unsafe { stage::<F>(task) });
    // SAFETY: the caller passes a valid `*mut Outcome<F::Output>`.
    unsafe { *out.cast::<Outcome<F::Output>>() = outcome };
}

unsafe fn drop_local<F: Future>(ptr: NonNull<Head>) {
    let cell = ptr.cast::<RawCell<F>>().as_ptr();
    // SAFETY: called once, by the last local handle, on the loop's thread:
    // nothing else references the local part. What is left in the stage is
    // dropped in place first, while the header's flags, which say what it
    // holds, are still alive; then the header.
    unsafe {
        StageRef {
            cell: &(*cell).stage,
            flags: (*cell).head.header.flags(),
        }
        .consume();
        ManuallyDrop::drop(&mut (*cell).head.header);
    }
}

unsafe fn dealloc<F: Future>(ptr: NonNull<Head>) {
    // SAFETY: the block came from `Box::new` in `RawTask::allocate::<F>`; its
    // local part was dropped already (ManuallyDrop: not dropped again), so
    // this drops `Shared` and frees the memory, on whatever thread.
    drop(unsafe { Box::from_raw(ptr.cast::<RawCell<F>>().as_ptr()) });
}

// ----- the waker -----

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// The registry key of the task `waker` wakes, if it is the waker of a
/// task of the loop `loop_id`.
pub(crate) fn task_of_waker(waker: &Waker, loop_id: u64) -> Option<TaskKey> {
    if !std::ptr::eq(waker.vtable(), &WAKER_VTABLE) {
        return None;
    }
    // SAFETY: only `raw_waker` and `waker_clone` make wakers with this
    // vtable, from a task block's address; the waker we borrow holds a unit
    // of its count (or borrows a task handle that does), so the block's
    // `Shared` is alive while we read it.
    let shared = unsafe { shared_of(waker.data()) };
    (shared.remote.loop_id() == loop_id).then_some(shared.key)
}

fn raw_waker(ptr: NonNull<Head>) -> RawWaker {
    RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE)
}

/// # Safety
/// `data` comes from `raw_waker` and its waker holds a unit of the count (or
/// is a borrowed `WakerRef`, whose task handle holds one).
unsafe fn shared_of<'a>(data: *const ()) -> &'a Shared {
    // SAFETY: as the caller guarantees; `Shared` is the block's first field
    // (`repr(C)`), and it is `Sync`.
    unsafe { &*data.cast::<Shared>() }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: a live waker's data (see `shared_of`).
    let shared = unsafe { shared_of(data) };
    if shared.word.fetch_add(REF, Ordering::Relaxed) > u32::MAX / 2 {
        // As `Arc` does: a count this high means leaked clones; never wrap
        // (half a billion more clones would have to race past this check).
        std::process::abort();
    }
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: a live, owned waker: wake, then give its unit back.
    unsafe {
        waker_wake_by_ref(data);
        waker_drop(data);
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: a live waker's data.
    let shared = unsafe { shared_of(data) };
    // On the loop's own thread, `local` is ours to touch (see `Shared`).
    if shared
        .remote
        .with_own_loop(|lp| shared.wake_local(lp))
        .is_none()
        && shared.word.fetch_or(REMOTE, Ordering::AcqRel) & REMOTE == 0
    {
        shared.remote.schedule_remote(shared.key);
    }
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: an owned waker gives back its unit of the count once.
    unsafe { release(NonNull::new_unchecked(data.cast_mut().cast::<Head>())) }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::{Head, StageCell};
    use std::future::{Future, Ready};
    use std::mem::size_of;

    /// The stage's borrow flag and what it holds are bits of the header's
    /// flags: the cell is no larger than the larger of future and output.
    #[test]
    fn a_stage_cell_is_no_larger_than_its_future_or_output() {
        fn stage_size<F: Future>(_: &F) -> usize {
            size_of::<StageCell<F>>()
        }
        assert_eq!(size_of::<StageCell<Ready<u64>>>(), size_of::<Ready<u64>>());
        // A future without a spare bit pattern (an async block's): an
        // enum would add a word.
        let n = 7u64;
        let fut = async move {
            std::future::ready(()).await;
            n
        };
        assert_eq!(stage_size(&fut), size_of_val(&fut));
        // An output larger than the future.
        let big = async { [0u64; 8] };
        assert_eq!(stage_size(&big), 64);
    }

    /// Every task carries a `Head`, so its size is the runtime's memory per
    /// task (a million sleeping tasks cost a million of them). 88 bytes
    /// today; growing it needs a reason. (malloc rounds a block up to 16
    /// bytes with an 8-byte prefix: a spawned trivial task's block, 104
    /// bytes, is a 112-byte chunk, within glibc's fast bins, which free
    /// without coalescing; a plain sleeping task's, 144, a 160-byte one.)
    #[test]
    fn a_task_head_stays_at_88_bytes() {
        assert!(
            size_of::<Head>() <= 88,
            "Head is {} bytes",
            size_of::<Head>()
        );
    }
}
