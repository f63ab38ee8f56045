//! The crate's one thread-local: the loop running on this thread, if any.
//!
//! It is set only while [`Runner::run`](crate::Runner::run) (or `close`)
//! drives the loop, and restored when that returns or unwinds. Every
//! accessor reports "no running loop" instead of guessing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::Loop;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Loop>>> = const { RefCell::new(None) };
    static CURRENT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with the running loop, or returns `None` when there is none.
pub(crate) fn with_loop<R>(f: impl FnOnce(&Rc<Loop>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// The id of the loop running on this thread (0 when none): a cheap test
/// for "is this wake local?".
pub(crate) fn current_loop_id() -> u64 {
    CURRENT_ID.with(Cell::get)
}

/// The running loop, or a panic that says how to get one.
pub(crate) fn expect_loop(what: &str) -> Rc<Loop> {
    with_loop(Rc::clone).unwrap_or_else(|| {
        panic!(
            "{what} needs a running asyncio event loop, and none is running on this thread; \
             start one with asyncio::run(...) or Runner::run(...) and call it from a task"
        )
    })
}

/// Marks `lp` as running on this thread until the guard drops.
pub(crate) struct Enter {
    prev: Option<Rc<Loop>>,
    prev_id: u64,
}

pub(crate) fn enter(lp: Rc<Loop>) -> Enter {
    let id = lp.id;
    let prev = CURRENT.with(|c| c.borrow_mut().replace(lp));
    let prev_id = CURRENT_ID.with(|c| c.replace(id));
    Enter { prev, prev_id }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
        CURRENT_ID.with(|c| c.set(self.prev_id));
    }
}
