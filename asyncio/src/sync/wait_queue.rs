//! A fair wait queue: the one piece every primitive of `sync` and `queue`
//! waits in.
//!
//! # The model
//!
//! A waiter is a node in a FIFO list. It is *pending* until something wakes
//! it, then *woken*; it stays in the list until its own future removes it
//! (when it returns, or when it is dropped) — exactly like the futures in
//! asyncio's `_waiters` deques, which a waiting task removes in its
//! `finally`. Only the future that pushed a node ever removes it, so a key
//! is valid for as long as that future holds it.
//!
//! Each node owns the [`Checkpoint`] of its await, so the queue can tell a
//! *cancelled* waiter (a cancellation was delivered to it and it was not
//! woken — asyncio's `fut.cancelled()`) from a *live* one (pending and not
//! cancelled, or woken). A waiter is *done* (asyncio's `fut.done()`) once
//! it is woken or cancelled; the wake operations skip done waiters.
//!
//! # Invariants
//!
//! - Order: nodes are woken in the order they were pushed, among those
//!   each operation considers ([`WaitQueue::wake_first`] looks at the head
//!   only, as asyncio's `Lock` does).
//! - A wake-up is never swallowed: [`WaitQueue::poll`] reports a
//!   cancellation together with whether the node had been woken, and
//!   [`WaitQueue::remove`] says the same for a future dropped mid-wait. The
//!   primitive then passes the wake-up on (Lock: wake the new head if still
//!   unlocked; Semaphore: give the permit back; Queue: wake the next getter
//!   or putter; Condition: notify one). That is the whole of "a cancelled
//!   woken waiter passes its wake-up on".
//! - A delivered cancellation beats a wake-up that arrived in the same turn
//!   (`Checkpoint::poll_cancelled` runs first), as in asyncio, where the
//!   task's pending cancel is thrown in even though its future has a result.
//!
//! All of it lives on the loop's thread, inside the owning primitive's
//! `RefCell`; waking a node only schedules its task, so no call made here
//! re-enters the primitive.

use std::task::{Context, Poll};

use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;
use crate::util::slab::Slab;

const NIL: usize = usize::MAX;

struct Node {
    prev: usize,
    next: usize,
    woken: bool,
    /// Registered while the waiter is suspended; its waker wakes the waiter.
    cp: Checkpoint,
}

impl Node {
    /// asyncio's `not fut.cancelled()`.
    fn is_live(&self) -> bool {
        self.woken || !self.cp.is_delivered()
    }

    /// Wakes the waiter unless it is done (asyncio's `fut.done()`: woken,
    /// or cancelled before being woken); returns whether it woke it.
    fn wake_unless_done(&mut self) -> bool {
        if self.woken || !self.cp.wake_undelivered() {
            return false;
        }
        self.woken = true;
        true
    }
}

/// A waiter that returned because its await was cancelled.
pub(crate) struct Cancelled {
    /// The cancellation, to return to the caller.
    pub(crate) err: CancelledError,
    /// Whether the waiter had been woken first: its wake-up must be passed on.
    pub(crate) woken: bool,
}

/// FIFO waiters with O(1) push and removal (a doubly-linked list in a slab).
pub(crate) struct WaitQueue {
    nodes: Slab<Node>,
    head: usize,
    tail: usize,
    len: usize,
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// Appends a waiter, already suspended: a fresh waiter's first
    /// [`poll`](WaitQueue::poll) could only suspend (it is neither woken
    /// nor cancelled), so the waiter is registered as suspended in the
    /// current task at once, and the caller returns `Pending`. The caller
    /// keeps the key and must `poll` it until it returns, or
    /// [`remove`](WaitQueue::remove) it.
    pub(crate) fn push_waiting(&mut self, cx: &Context<'_>) -> usize {
        let mut cp = Checkpoint::new();
        cp.suspend(cx, None);
        self.link(cp)
    }

    fn link(&mut self, cp: Checkpoint) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            woken: false,
            cp,
        });
        match self.tail {
            NIL => self.head = key,
            t => self.node(t).next = key,
        }
        self.tail = key;
        self.len += 1;
        key
    }

    fn node(&mut self, key: usize) -> &mut Node {
        self.nodes
            .get_mut(key)
            .expect("a waiter's key outlived its node")
    }

    /// Unlinks a waiter and says whether it had been woken. A cancellation
    /// delivered to it and not returned is re-armed (the checkpoint drops).
    pub(crate) fn remove(&mut self, key: usize) -> bool {
        let node = self
            .nodes
            .remove(key)
            .expect("a waiter's key outlived its node");
        match node.prev {
            NIL => self.head = node.next,
            p => self.node(p).next = node.next,
        }
        match node.next {
            NIL => self.tail = node.prev,
            n => self.node(n).prev = node.prev,
        }
        self.len -= 1;
        node.woken
    }

    /// The checkpoint protocol for waiter `key`: `Err` if the await was
    /// cancelled (the node is removed), `Ok` if it was woken (removed too),
    /// `Pending` otherwise (the task's waker is registered).
    #[inline]
    pub(crate) fn poll(&mut self, key: usize, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
        let node = self.node(key);
        let woken = node.woken;
        match node.cp.poll_event(cx, woken) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                self.remove(key);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => {
                self.remove(key);
                Poll::Ready(Err(Cancelled { err, woken }))
            }
        }
    }

    /// Wakes the head waiter unless it is already done (asyncio's
    /// `Lock._wake_up_first`). Returns whether it woke one.
    pub(crate) fn wake_first(&mut self) -> bool {
        if self.head == NIL {
            return false;
        }
        let head = self.head;
        self.node(head).wake_unless_done()
    }

    /// Wakes the first waiter that is not done. Returns whether it woke one.
    #[inline]
    pub(crate) fn wake_next(&mut self) -> bool {
        // Often nobody waits (a get with no putter blocked).
        self.head != NIL && self.wake_next_from_head()
    }

    fn wake_next_from_head(&mut self) -> bool {
        let mut cur = self.head;
        while cur != NIL {
            let node = self.node(cur);
            if node.wake_unless_done() {
                return true;
            }
            cur = node.next;
        }
        false
    }

    /// Wakes up to `n` waiters that are not done, in order; returns how many.
    pub(crate) fn wake_n(&mut self, n: usize) -> usize {
        let mut woke = 0;
        let mut cur = self.head;
        while cur != NIL && woke < n {
            let node = self.node(cur);
            if node.wake_unless_done() {
                woke += 1;
            }
            cur = node.next;
        }
        woke
    }

    /// Wakes every waiter that is not done.
    pub(crate) fn wake_all(&mut self) -> usize {
        self.wake_n(usize::MAX)
    }

    /// Whether some waiter is not cancelled (pending, or woken and not yet
    /// returned): a newcomer must queue behind it.
    pub(crate) fn has_live(&self) -> bool {
        let mut cur = self.head;
        while cur != NIL {
            let node = self.nodes.get(cur).expect("linked node");
            if node.is_live() {
                return true;
            }
            cur = node.next;
        }
        false
    }

    /// How many waiters are in the queue (done ones included, until they
    /// return).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}
