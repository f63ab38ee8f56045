//! The crate's thread-locals: the loop running on this thread, if any, and
//! the loops made on this thread (so a task finds its loop by id).
//!
//! It is set only while [`Runner::run`](crate::Runner::run) (or `close`)
//! drives the loop, and restored when that returns or unwinds. Every
//! accessor reports "no running loop" instead of guessing.
//!
//! Two slots hold it: the owning `Rc` (for callers that keep the loop), and
//! a plain pointer to the same loop for the hot paths (every wake and every
//! await point look the loop up), which a `Cell` read serves without the
//! `RefCell` bookkeeping. The pointer's one `unsafe` dereference is below.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::Loop;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Loop>>> = const { RefCell::new(None) };
    static CURRENT_PTR: Cell<*const Loop> = const { Cell::new(std::ptr::null()) };
    /// Every live loop made on this thread, by id. A loop is `!Send`, and
    /// so is every task handle: a task is only ever touched on the thread
    /// that made its loop, which finds the loop here instead of each task
    /// holding a `Weak` to it.
    static LOOPS: RefCell<Vec<(u64, Weak<Loop>)>> = const { RefCell::new(Vec::new()) };
}

/// Records a new loop of this thread (`Loop::new`). A loop made while the
/// thread's locals are being destroyed is found only while it runs.
pub(crate) fn register_loop(lp: &Rc<Loop>) {
    let _ = LOOPS.try_with(|l| l.borrow_mut().push((lp.id, Rc::downgrade(lp))));
}

/// Forgets a loop of this thread (its drop). At thread exit the list may be
/// gone already; then there is nothing to forget.
pub(crate) fn forget_loop(id: u64) {
    let _ = LOOPS.try_with(|l| l.borrow_mut().retain(|(i, _)| *i != id));
}

/// The loop with this id, if it is alive and was made on this thread: the
/// running one at the cost of one thread-local read, any other by a scan
/// of this thread's (few) loops.
pub(crate) fn loop_by_id(id: u64) -> Option<Rc<Loop>> {
    if with_loop(|lp| lp.id == id) == Some(true) {
        return current_loop();
    }
    LOOPS
        .try_with(|l| {
            l.borrow()
                .iter()
                .find(|(i, _)| *i == id)
                .and_then(|(_, w)| w.upgrade())
        })
        .ok()
        .flatten()
}

/// Runs `f` with loop `id` if it is alive and was made on this thread: the
/// running one without taking a count of it, any other as [`loop_by_id`]
/// finds it. `None` if there is no such loop.
pub(crate) fn with_loop_by_id<R>(id: u64, f: impl FnOnce(&Loop) -> R) -> Option<R> {
    if current_loop_id() == id {
        return with_loop(f);
    }
    loop_by_id(id).map(|lp| f(&lp))
}

/// Runs `f` with the running loop, or returns `None` when there is none.
/// In line: every wake and every await point looks the loop up.
#[inline]
pub(crate) fn with_loop<R>(f: impl FnOnce(&Loop) -> R) -> Option<R> {
    let ptr = CURRENT_PTR.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the pointer is non-null only between `enter` and the drop of
    // its `Enter` guard, and it points into the `Rc` that `CURRENT` (or, while
    // a nested `enter` runs, that guard's saved `prev`) owns for that whole
    // span. The guard lives in a frame that encloses this call, so the loop
    // outlives the borrow, which ends when `f` returns.
    Some(f(unsafe { &*ptr }))
}

/// The id of the loop running on this thread (0 when none): a cheap test
/// for "is this wake local?".
pub(crate) fn current_loop_id() -> u64 {
    with_loop(|lp| lp.id).unwrap_or(0)
}

/// The running loop itself, to keep.
pub(crate) fn current_loop() -> Option<Rc<Loop>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The running loop, or a panic that says how to get one.
pub(crate) fn expect_loop(what: &str) -> Rc<Loop> {
    current_loop().unwrap_or_else(|| {
        panic!(
            "{what} needs a running asyncio event loop, and none is running on this thread; \
             start one with asyncio::run(...) or Runner::run(...) and call it from a task"
        )
    })
}

/// Marks `lp` as running on this thread until the guard drops.
pub(crate) struct Enter {
    prev: Option<Rc<Loop>>,
}

pub(crate) fn enter(lp: Rc<Loop>) -> Enter {
    CURRENT_PTR.with(|c| c.set(Rc::as_ptr(&lp)));
    let prev = CURRENT.with(|c| c.borrow_mut().replace(lp));
    Enter { prev }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let ptr = prev.as_ref().map_or(std::ptr::null(), Rc::as_ptr);
        CURRENT_PTR.with(|c| c.set(ptr));
        // The loop being left may drop here: the pointer no longer names it.
        let left = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        drop(left);
    }
}
