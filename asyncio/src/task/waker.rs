//! Task wakers: a small `Arc` per task, safe to send to any thread.
//!
//! The waker holds no pointer to the task itself (whose future may be
//! `!Send`), only the task's registry key and the loop's [`Remote`]. A wake
//! on the loop's own thread pushes the key onto the ready queue directly; a
//! wake from another thread goes through the remote queue and wakes the
//! loop (unparks its thread, or wakes its reactor once it has one). The `state` flag makes a task appear at most once in the ready
//! queue, and silences wakes after the task is done.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Wake;

use crate::runtime::{Remote, TaskKey};

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const DONE: u8 = 2;

pub(crate) struct WakeHandle {
    key: TaskKey,
    state: AtomicU8,
    remote: Arc<Remote>,
}

impl WakeHandle {
    /// A handle for a task that is already queued for its first step.
    pub(crate) fn new_queued(key: TaskKey, remote: Arc<Remote>) -> WakeHandle {
        WakeHandle {
            key,
            state: AtomicU8::new(QUEUED),
            remote,
        }
    }

    /// Called as the task's step begins: wakes from now on queue it again.
    pub(crate) fn begin_step(&self) {
        let _ = self
            .state
            .compare_exchange(QUEUED, IDLE, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether the task sits in the ready queue (woken, not yet stepped).
    pub(crate) fn is_queued(&self) -> bool {
        self.state.load(Ordering::Acquire) == QUEUED
    }

    /// The task is done: later wakes do nothing.
    pub(crate) fn mark_done(&self) {
        self.state.store(DONE, Ordering::Release);
    }
}

impl Wake for WakeHandle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(IDLE, QUEUED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.remote.schedule(self.key);
        }
    }
}
