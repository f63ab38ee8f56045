//! The timer queue: deadline order, FIFO among equal deadlines.
//!
//! A binary heap of `(deadline, sequence, slot)` over a slab of entries.
//! Arming is O(log n); disarming removes the slab entry in O(1) and leaves
//! a stale heap node that is skipped when it reaches the top, so cancelled
//! timers never advance a virtual clock. A due timer is moved to the end of
//! the ready queue but keeps its entry until it runs, so it can still be
//! disarmed by a callback that runs before it in the same turn (asyncio's
//! rule, ASYNCIO-SEMANTICS.md §1.3).
//!
//! (A hierarchical wheel with O(1) arming is the planned replacement, behind
//! this same interface.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

use crate::util::slab::Slab;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Wake a sleeping checkpoint.
    Wake(Waker),
    /// Run a callback (`call_later`, timeouts).
    Callback(Box<dyn FnOnce()>),
}

/// Names one armed timer; stale keys are harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    seq: u64,
}

struct Entry {
    seq: u64,
    action: TimerAction,
}

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    entries: Slab<Entry>,
    seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            seq: 0,
        }
    }

    pub(crate) fn arm(&mut self, deadline: Instant, action: TimerAction) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let slot = self.entries.insert(Entry { seq, action });
        self.heap.push(Reverse((deadline, seq, slot)));
        TimerKey { slot, seq }
    }

    fn live(&self, key: TimerKey) -> bool {
        self.entries.get(key.slot).is_some_and(|e| e.seq == key.seq)
    }

    /// Disarms; `false` if the timer already ran or was disarmed.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        if self.live(key) {
            self.entries.remove(key.slot);
            true
        } else {
            false
        }
    }

    /// Whether the timer is still armed or due (it has not run).
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.live(key)
    }

    /// Points a sleeping checkpoint's timer at its latest waker.
    pub(crate) fn update_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(e) = self.entries.get_mut(key.slot) {
            if e.seq == key.seq {
                if let TimerAction::Wake(w) = &mut e.action {
                    if !w.will_wake(waker) {
                        *w = waker.clone();
                    }
                }
            }
        }
    }

    /// The earliest deadline of a live timer still in the heap.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, seq, slot))) = self.heap.peek().copied() {
            if self.live(TimerKey { slot, seq }) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Moves every live timer due at `now()` out of the heap, in firing
    /// order. The clock is read only if some timer is in the heap.
    pub(crate) fn pop_due(&mut self, now: impl FnOnce() -> Instant, mut out: impl FnMut(TimerKey)) {
        if self.heap.is_empty() {
            return;
        }
        let now = now();
        while let Some(Reverse((deadline, seq, slot))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let key = TimerKey { slot, seq };
            if self.live(key) {
                out(key);
            }
        }
    }

    /// Takes a due timer's action to run it (`None` if it was disarmed).
    pub(crate) fn take(&mut self, key: TimerKey) -> Option<TimerAction> {
        if self.live(key) {
            self.entries.remove(key.slot).map(|e| e.action)
        } else {
            None
        }
    }

    /// Live timers (armed or due).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops every timer (loop close).
    pub(crate) fn clear(&mut self) -> Vec<TimerAction> {
        self.heap.clear();
        self.entries.drain().into_iter().map(|e| e.action).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cb() -> TimerAction {
        TimerAction::Callback(Box::new(|| {}))
    }

    #[test]
    fn equal_deadlines_fire_in_arming_order_and_cancelled_ones_are_skipped() {
        let mut t = Timers::new();
        let base = Instant::now();
        let late = t.arm(base + Duration::from_secs(2), cb());
        let a = t.arm(base + Duration::from_secs(1), cb());
        let b = t.arm(base + Duration::from_secs(1), cb());
        let c = t.arm(base + Duration::from_secs(1), cb());
        assert!(t.cancel(b));
        assert!(!t.cancel(b));
        assert_eq!(t.next_deadline(), Some(base + Duration::from_secs(1)));
        let mut due = Vec::new();
        t.pop_due(|| base + Duration::from_secs(1), |k| due.push(k));
        assert_eq!(due, vec![a, c]);
        assert!(t.contains(a));
        assert!(t.take(a).is_some());
        assert!(!t.contains(a));
        assert!(t.cancel(c));
        assert!(t.take(c).is_none());
        assert_eq!(t.next_deadline(), Some(base + Duration::from_secs(2)));
        assert!(t.cancel(late));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.len(), 0);
    }
}
