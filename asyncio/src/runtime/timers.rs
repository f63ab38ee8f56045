//! The timer queue: deadline order, FIFO among equal deadlines.
//!
//! Live timers are entries of a slab; their order is kept in *nodes*
//! `(deadline, sequence, slot)`, the deadline as an offset into its
//! millisecond tick (the tick is the container's):
//! - later timers sit in millisecond buckets (`buckets`, keyed by tick),
//!   unsorted: arming is a push onto its bucket;
//! - the earliest bucket, once needed, is sorted once and becomes `front`,
//!   from which due timers are popped in exact `(deadline, sequence)` order.
//!
//! Every node in `buckets` has a tick after `front_tick`. A timer armed for
//! `front_tick` itself joins `front` in order (usually at its end); one
//! armed for an earlier tick sends `front` back to its bucket first, so
//! `front` never takes a stream of inserts in its middle.
//!
//! Disarming removes the slab entry in O(1). The node of the newest timer
//! goes with it (a `wait_for` that completes disarms the timer it just
//! armed); any other is left stale, skipped when it reaches the front (so
//! cancelled timers never advance a virtual clock), or dropped earlier by
//! a compaction once stale nodes outnumber live ones.
//!
//! A due timer is moved to the end of the ready queue but keeps its entry
//! until it runs, so it can still be disarmed by a callback that runs
//! before it in the same turn (asyncio's rule, ASYNCIO-SEMANTICS.md §1.3).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Weak;
use std::task::Waker;

use super::{Loop, TaskKey};
use crate::time::TimeoutInner;
use crate::util::slab::Slab;

/// What a timer does when it fires. Two words: a million sleeping tasks
/// keep a million of them.
pub(crate) enum TimerAction {
    /// Wake a task of this loop whose sleep was polled with the task's own
    /// waker (the common case): named by its key, so arming clones no
    /// waker and firing or disarming drops none.
    Task(TaskKey),
    /// Wake a sleep polled with another waker (a combinator's own).
    Wake(Box<Waker>),
    /// Run a callback (`call_later`): boxed twice, to stay one word.
    Callback(Box<Box<dyn FnOnce()>>),
    /// Fire a timeout, if it still exists: held weakly, and with no
    /// allocation per arming (a `wait_for` arms one timer per call).
    Fire(Weak<TimeoutInner>),
}

impl TimerAction {
    /// Drops the action, the common kinds in line: a task's key owns
    /// nothing, a timeout's `Weak` is a count to drop (a sleep or a
    /// `wait_for` disarms one per call; the drop glue was a call).
    #[inline]
    fn release(self) {
        match self {
            TimerAction::Task(_) => {}
            TimerAction::Fire(weak) => drop(weak),
            other => drop_action(other),
        }
    }

    /// The action that wakes whoever `waker` wakes: [`TimerAction::Task`]
    /// if it is the waker of a task of `lp`.
    pub(crate) fn wake(lp: &Loop, waker: &Waker) -> TimerAction {
        match lp.task_of_waker(waker) {
            Some(key) => TimerAction::Task(key),
            None => TimerAction::Wake(Box::new(waker.clone())),
        }
    }
}

/// The rare kinds of [`TimerAction::release`], out of line.
#[inline(never)]
fn drop_action(action: TimerAction) {
    drop(action);
}

/// Names one armed timer; stale keys are harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    pub(super) slot: u32,
    pub(super) seq: u64,
}

impl TimerKey {
    /// The key's two halves, for a holder that keeps them apart (a sleep
    /// keeps the slot in four bytes that would otherwise be padding).
    pub(crate) fn into_parts(self) -> (u32, u64) {
        (self.slot, self.seq)
    }

    /// The key whose halves [`TimerKey::into_parts`] gave.
    pub(crate) fn from_parts(slot: u32, seq: u64) -> TimerKey {
        TimerKey { slot, seq }
    }
}

struct Timer {
    /// The arming sequence, with [`DUE`] set once the timer was moved to
    /// the ready queue.
    seq: u64,
    action: TimerAction,
}

impl Timer {
    /// Whether this entry is the timer armed with sequence `seq` (due or
    /// not): a key naming an earlier timer of the same slot is stale.
    fn is(&self, seq: u64) -> bool {
        self.seq & !DUE == seq
    }
}

/// The bit of [`Timer::seq`] that marks a due timer: the ready queue
/// names it by its slot alone ([`Timers::take_due`]). Sequences stay far
/// below it (one arming per nanosecond would take 292 years).
const DUE: u64 = 1 << 63;

/// A timer's place in the order: deadline (nanoseconds on the loop's
/// [`Clock`](super::clock::Clock)), then arming sequence. The deadline is
/// kept as its offset into the node's millisecond tick, which the node's
/// container knows (a bucket's key, `front_tick`, the hot bucket's tick):
/// 16 bytes, not 24, and a million sleeping tasks keep a million of them.
#[derive(Clone, Copy)]
struct Node {
    /// Nanoseconds past the start of its tick: below [`TICK_NS`].
    sub: u32,
    slot: u32,
    seq: u64,
}

/// A tick's length: the order's buckets are a millisecond each.
const TICK_NS: i64 = 1_000_000;

impl Node {
    fn key(&self) -> TimerKey {
        TimerKey {
            slot: self.slot,
            seq: self.seq,
        }
    }
}

pub(crate) struct Timers {
    entries: Slab<Timer>,
    seq: u64,
    /// The earliest nodes, sorted; all of tick `front_tick`.
    front: VecDeque<Node>,
    front_tick: Option<i64>,
    /// Later nodes by tick, each bucket unsorted.
    buckets: BTreeMap<i64, Vec<Node>>,
    /// The bucket being filled (timers armed in the same millisecond with
    /// the same delay land together): kept out of the map until another
    /// tick is armed or the order is read.
    hot: (i64, Vec<Node>),
    /// Nodes in the order (`front`, `buckets`, `hot`), live or stale.
    nodes: usize,
    /// Of those, the stale ones: nodes of timers disarmed before they were
    /// due. See [`Timers::compact`].
    stale: usize,
}

/// The fewest stale nodes that make [`Timers::compact`] worth a pass.
const COMPACT_MIN_STALE: usize = 64;

/// The largest emptied front whose buffer the hot bucket takes over: one
/// left by a million timers due at once is freed instead of kept.
const SPARE_NODES: usize = 1024;

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            entries: Slab::new(),
            seq: 0,
            front: VecDeque::new(),
            front_tick: None,
            buckets: BTreeMap::new(),
            hot: (0, Vec::new()),
            nodes: 0,
            stale: 0,
        }
    }

    /// The millisecond tick of deadline `at`, and `at`'s offset into it
    /// (floored: a deadline before the loop's start has a negative tick).
    fn tick(at: i64) -> (i64, u32) {
        // The remainder is in 0..TICK_NS, which fits a u32. Deadlines are
        // almost never negative: unsigned division by a constant is a
        // multiply and a shift, where the floored signed one needs fixing up.
        if let Ok(at) = u64::try_from(at) {
            let tick = at / TICK_NS as u64;
            ((tick as i64), (at - tick * TICK_NS as u64) as u32)
        } else {
            (at.div_euclid(TICK_NS), at.rem_euclid(TICK_NS) as u32)
        }
    }

    /// The deadline of a node of `front`.
    fn front_at(&self, n: &Node) -> i64 {
        let tick = self.front_tick.expect("a front node has its tick");
        // Wrapping: for a tick near `i64::MIN` the product alone is out of
        // range, the sum (the deadline itself) never is.
        tick.wrapping_mul(TICK_NS).wrapping_add(i64::from(n.sub))
    }

    /// Files the hot bucket into the map.
    fn flush_hot(&mut self) {
        if self.hot.1.is_empty() {
            return;
        }
        let (tick, nodes) = std::mem::take(&mut self.hot);
        match self.buckets.entry(tick) {
            Entry::Vacant(e) => {
                e.insert(nodes);
            }
            Entry::Occupied(mut e) => e.get_mut().extend(nodes),
        }
    }

    /// Adds a node to the buckets (its tick is after `front_tick`).
    fn bucket(&mut self, tick: i64, node: Node) {
        if self.hot.0 != tick {
            self.flush_hot();
            self.hot.0 = tick;
        }
        self.hot.1.push(node);
    }

    /// Arms a timer for `at` (nanoseconds on the loop's clock).
    pub(crate) fn arm(&mut self, at: i64, action: TimerAction) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let slot = self.entries.insert(Timer { seq, action });
        let (tick, sub) = Timers::tick(at);
        let node = Node {
            sub,
            seq,
            // `u32::MAX` and `u32::MAX - 1` are no slots: the ready
            // queue's callback and skip entries.
            slot: u32::try_from(slot)
                .ok()
                .filter(|&s| s < u32::MAX - 1)
                .expect("asyncio: 2^32 - 2 timers armed at once"),
        };
        self.nodes += 1;
        match self.front_tick {
            Some(ft) if tick == ft => {
                // The newest sequence: after every equal deadline. Usually
                // after every deadline (timers armed with one delay, in
                // order): a push, no search.
                if self.front.back().is_none_or(|b| b.sub <= node.sub) {
                    self.front.push_back(node);
                } else {
                    let at = self.front.partition_point(|n| n.sub <= node.sub);
                    self.front.insert(at, node);
                }
            }
            Some(ft) if tick < ft => {
                // Earlier than the front's bucket: put the front back.
                let front = std::mem::take(&mut self.front);
                self.buckets.insert(ft, front.into());
                self.front_tick = None;
                self.bucket(tick, node);
            }
            _ => self.bucket(tick, node),
        }
        node.key()
    }

    /// The earliest live node, sorting the next bucket into `front` when
    /// `front` runs out; stale nodes met on the way are dropped.
    fn peek(&mut self) -> Option<Node> {
        loop {
            while let Some(&n) = self.front.front() {
                if self.live(n.key()) {
                    return Some(n);
                }
                self.front.pop_front();
                self.nodes -= 1;
                self.stale -= 1;
            }
            // The next bucket: the hot one if it is the earliest (taken as
            // it is, and given the front's spare buffer if that is small,
            // so a loop that arms one timer a turn allocates nothing), else
            // the map's first (with the hot one merged in if it has the
            // same tick).
            let first = self.buckets.first_key_value().map(|(&tick, _)| tick);
            let (tick, mut nodes) =
                if !self.hot.1.is_empty() && first.is_none_or(|tick| self.hot.0 < tick) {
                    let front = std::mem::take(&mut self.front);
                    let spare = if front.capacity() <= SPARE_NODES {
                        Vec::from(front)
                    } else {
                        Vec::new()
                    };
                    (self.hot.0, std::mem::replace(&mut self.hot.1, spare))
                } else {
                    if first == Some(self.hot.0) {
                        self.flush_hot();
                    }
                    self.buckets.pop_first()?
                };
            nodes.sort_unstable_by_key(|n| (n.sub, n.seq));
            self.front = nodes.into();
            self.front_tick = Some(tick);
        }
    }

    fn live(&self, key: TimerKey) -> bool {
        is_live(&self.entries, key)
    }

    /// Disarms; `false` if the timer already ran or was disarmed.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        if !self.live(key) {
            return false;
        }
        if let Some(removed) = self.entries.remove(key.slot as usize) {
            if removed.seq & DUE == 0 {
                self.drop_node(key);
            }
            removed.action.release();
        }
        true
    }

    /// Drops the node of a timer just disarmed before it was due. The
    /// newest node is popped at once (a `wait_for` that completes disarms
    /// the timer it armed last: no stale node at all); any other stays in
    /// the order, stale, until it reaches the front or a compaction drops
    /// it.
    fn drop_node(&mut self, key: TimerKey) {
        let is_it = |n: Option<&Node>| n.is_some_and(|n| n.key() == key);
        if is_it(self.hot.1.last()) {
            self.hot.1.pop();
        } else if is_it(self.front.back()) {
            self.front.pop_back();
        } else {
            self.stale += 1;
            if self.stale >= COMPACT_MIN_STALE && 2 * self.stale > self.nodes {
                self.compact();
            }
            return;
        }
        self.nodes -= 1;
    }

    /// Drops every stale node. Disarming leaves its node in place (O(1)),
    /// but a loop that arms and disarms long timers at a high rate (a
    /// `wait_for(read, 60 s)` per request) would otherwise keep a node per
    /// disarmed timer until its deadline came round: memory growing with
    /// rate times timeout. Run once stale nodes are more than half of all
    /// (asyncio rebuilds its heap on the same rule), so the pass costs O(1)
    /// per disarm, amortized, and stale nodes never outnumber live ones by
    /// more than [`COMPACT_MIN_STALE`].
    #[cold]
    fn compact(&mut self) {
        let entries = &self.entries;
        let live = |n: &Node| is_live(entries, n.key());
        let shrink = |nodes: &mut Vec<Node>| {
            nodes.retain(live);
            if worth_shrinking(nodes.len(), nodes.capacity()) {
                nodes.shrink_to(2 * nodes.len());
            }
        };
        self.front.retain(live);
        if worth_shrinking(self.front.len(), self.front.capacity()) {
            self.front.shrink_to(2 * self.front.len());
        }
        shrink(&mut self.hot.1);
        self.buckets.retain(|_, nodes| {
            shrink(nodes);
            !nodes.is_empty()
        });
        self.nodes -= self.stale;
        self.stale = 0;
        debug_assert_eq!(self.nodes, self.all_nodes().count());
    }

    /// Every node in the order, live or stale: what [`Timers::nodes`]
    /// counts.
    fn all_nodes(&self) -> impl Iterator<Item = &Node> {
        (self.front.iter())
            .chain(&self.hot.1)
            .chain(self.buckets.values().flatten())
    }

    /// Whether the timer is still armed or due (it has not run).
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.live(key)
    }

    /// Points a sleeping checkpoint's timer at its latest waker (`action`
    /// as [`TimerAction::wake`] makes it, only when it changed).
    pub(crate) fn update_waker(&mut self, key: TimerKey, lp: &Loop, waker: &Waker) {
        if let Some(e) = self.entries.get_mut(key.slot as usize) {
            if e.is(key.seq) {
                let same = match &e.action {
                    TimerAction::Task(k) => lp.task_of_waker(waker) == Some(*k),
                    TimerAction::Wake(w) => w.will_wake(waker),
                    _ => true,
                };
                if !same {
                    e.action = TimerAction::wake(lp, waker);
                }
            }
        }
    }

    /// The earliest deadline of a live timer not yet due.
    pub(crate) fn next_deadline(&mut self) -> Option<i64> {
        let n = self.peek()?;
        Some(self.front_at(&n))
    }

    /// Moves every live timer due at `now()` out of the order, in firing
    /// order, marking it due; `out` gets its slot, which
    /// [`Timers::take_due`] takes it by. The clock is read only if some
    /// timer is armed.
    #[inline]
    pub(crate) fn pop_due(&mut self, now: impl FnOnce() -> i64, out: impl FnMut(u32)) {
        // Most turns of a busy loop have no timer armed at all.
        if !self.entries.is_empty() {
            self.pop_due_armed(now, out);
        }
    }

    fn pop_due_armed(&mut self, now: impl FnOnce() -> i64, mut out: impl FnMut(u32)) {
        let now = now();
        while let Some(n) = self.peek() {
            if self.front_at(&n) > now {
                break;
            }
            self.front.pop_front();
            self.nodes -= 1;
            if let Some(e) = self.entries.get_mut(n.slot as usize) {
                e.seq |= DUE;
            }
            out(n.slot);
        }
    }

    /// Takes the action of the due timer in `slot` to run it: `None` if it
    /// was disarmed since it became due. A disarmed timer's slot may hold
    /// a newer timer by then, but not a due one: the ready queue's entries
    /// of one turn's due timers are all taken in that turn, before the next
    /// turn marks any timer due.
    pub(crate) fn take_due(&mut self, slot: u32) -> Option<TimerAction> {
        let due = self
            .entries
            .get(slot as usize)
            .is_some_and(|e| e.seq & DUE != 0);
        if due {
            self.entries.remove(slot as usize).map(|e| e.action)
        } else {
            None
        }
    }

    /// Live timers (armed or due).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nodes kept in the order, live or stale, counted one by one; checks
    /// the running counts against them.
    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        let all: Vec<&Node> = self.all_nodes().collect();
        let stale = all.iter().filter(|n| !self.live(n.key())).count();
        assert_eq!((all.len(), stale), (self.nodes, self.stale));
        all.len()
    }

    /// Drops every timer (loop close).
    pub(crate) fn clear(&mut self) -> Vec<TimerAction> {
        self.front.clear();
        self.front_tick = None;
        self.buckets.clear();
        self.hot.1.clear();
        self.nodes = 0;
        self.stale = 0;
        self.entries.drain().into_iter().map(|e| e.action).collect()
    }
}

/// Whether `key` names a timer still armed or due in `entries`:
/// [`Timers::live`], and what a compaction keeps while it edits the order
/// (with `entries` borrowed apart from the node lists).
fn is_live(entries: &Slab<Timer>, key: TimerKey) -> bool {
    entries
        .get(key.slot as usize)
        .is_some_and(|e| e.is(key.seq))
}

/// Whether a node list left this short by a compaction should give back
/// memory (a bucket once filled by a burst of timers keeps its capacity).
fn worth_shrinking(len: usize, capacity: usize) -> bool {
    capacity > 64 && len < capacity / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `d` as a deadline in nanoseconds.
    fn ns_at(d: Duration) -> i64 {
        crate::runtime::clock::nanos(d)
    }

    /// A million sleeping tasks keep a million nodes, and a million queued
    /// tasks a million ready entries: their sizes are memory per task.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_node_and_a_ready_entry_stay_small() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(std::mem::size_of::<Timer>(), 24);
        assert_eq!(std::mem::size_of::<crate::runtime::Ready>(), 8);
    }

    fn cb() -> TimerAction {
        TimerAction::Callback(Box::new(Box::new(|| {})))
    }

    /// A node keeps its deadline as an offset into its tick: deadlines
    /// on either side of a tick's edge, and before the loop's start
    /// (negative), come back exact and fire in deadline order.
    #[test]
    fn deadlines_round_trip_through_their_ticks() {
        let mut t = Timers::new();
        let ats = [
            2 * TICK_NS,
            -3,
            TICK_NS - 1,
            -5 * TICK_NS - 1,
            0,
            TICK_NS,
            -TICK_NS,
            i64::MAX,
            i64::MIN,
        ];
        let keys: Vec<TimerKey> = ats.iter().map(|&at| t.arm(at, cb())).collect();
        let mut order: Vec<usize> = (0..ats.len()).collect();
        order.sort_by_key(|&i| ats[i]);
        for &i in &order {
            assert_eq!(t.next_deadline(), Some(ats[i]));
            let mut due = Vec::new();
            t.pop_due(|| ats[i], |slot| due.push(slot));
            assert_eq!(due, vec![keys[i].slot], "deadline {}", ats[i]);
            assert!(t.take_due(keys[i].slot).is_some());
        }
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn equal_deadlines_fire_in_arming_order_and_cancelled_ones_are_skipped() {
        let mut t = Timers::new();
        let late = t.arm(ns_at(Duration::from_secs(2)), cb());
        let a = t.arm(ns_at(Duration::from_secs(1)), cb());
        let b = t.arm(ns_at(Duration::from_secs(1)), cb());
        let c = t.arm(ns_at(Duration::from_secs(1)), cb());
        assert!(t.cancel(b));
        assert!(!t.cancel(b));
        assert_eq!(t.next_deadline(), Some(ns_at(Duration::from_secs(1))));
        let mut due = Vec::new();
        t.pop_due(|| ns_at(Duration::from_secs(1)), |slot| due.push(slot));
        assert_eq!(due, vec![a.slot, c.slot]);
        assert!(t.contains(a));
        assert!(t.take_due(a.slot).is_some());
        assert!(!t.contains(a));
        assert!(t.cancel(c), "a due timer can still be disarmed");
        assert!(t.take_due(c.slot).is_none());
        // A newer timer in a disarmed due timer's slot is not due.
        let d = t.arm(ns_at(Duration::from_secs(1)), cb());
        assert_eq!(d.slot, c.slot);
        assert!(t.take_due(c.slot).is_none());
        assert!(t.contains(d));
        assert!(t.cancel(d));
        assert_eq!(t.next_deadline(), Some(ns_at(Duration::from_secs(2))));
        assert!(t.cancel(late));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.len(), 0);
    }

    /// Arms, disarms and pops at random against a sorted list of
    /// `(deadline, arming order)`: the order must be exactly that, whatever
    /// buckets the timers landed in.
    /// A `wait_for` per request with a long timeout arms a timer and
    /// disarms it long before its deadline. With an earlier timer live
    /// (a periodic task's sleep), the disarmed ones never reach the front;
    /// disarmed out of order (requests overlap), they are not the newest
    /// either. The stale nodes are dropped once they outnumber the live
    /// ones, so memory follows the live timers, not rate times timeout.
    #[test]
    fn disarmed_timers_do_not_pile_up() {
        let mut t = Timers::new();
        let mut live: Vec<TimerKey> = vec![t.arm(ns_at(Duration::from_secs(1)), cb())];
        live.extend((0..100).map(|i| t.arm(ns_at(Duration::from_secs(3600 + i)), cb())));
        let mut pending = std::collections::VecDeque::new();
        for i in 0..100_000u64 {
            // Ten seconds ahead of a clock that creeps forward; eight
            // requests in flight, each finishing in turn.
            pending.push_back(t.arm(ns_at(Duration::from_micros(10_000_000 + i * 3)), cb()));
            if pending.len() > 8 {
                assert!(t.cancel(pending.pop_front().unwrap()));
            }
            assert_eq!(t.next_deadline(), Some(ns_at(Duration::from_secs(1))));
            assert!(
                t.nodes <= 2 * (live.len() + pending.len()) + COMPACT_MIN_STALE,
                "{} nodes kept for {} live timers after {i} disarms",
                t.nodes,
                live.len() + pending.len()
            );
            if i % 1000 == 0 {
                t.count_nodes();
            }
        }
        for k in pending {
            assert!(t.cancel(k));
        }
        assert_eq!(t.len(), live.len());
        // The live timers still fire, in order, and nothing else does.
        let mut due = Vec::new();
        t.pop_due(|| ns_at(Duration::from_secs(7200)), |slot| due.push(slot));
        assert_eq!(due, live.iter().map(|k| k.slot).collect::<Vec<_>>());
    }

    /// A timer disarmed right after it was armed (a `wait_for` whose
    /// future finished at once) leaves no node behind.
    #[test]
    fn the_newest_timer_disarmed_leaves_no_node() {
        let mut t = Timers::new();
        let early = t.arm(ns_at(Duration::from_secs(1)), cb());
        for i in 0..1000 {
            let k = t.arm(ns_at(Duration::from_secs(10 + i)), cb());
            assert!(t.cancel(k));
            assert_eq!((t.count_nodes(), t.stale), (1, 0));
        }
        // Also when it joined the front (same tick as the earliest).
        let k = t.arm(
            ns_at(Duration::from_millis(1000) + Duration::from_micros(5)),
            cb(),
        );
        assert_eq!(t.next_deadline(), Some(ns_at(Duration::from_secs(1))));
        assert!(t.cancel(k));
        assert_eq!((t.count_nodes(), t.stale), (1, 0));
        assert!(t.cancel(early));
        assert_eq!(t.next_deadline(), None);
    }

    /// Disarming a due timer (its node already left the order) leaves no
    /// stale node to count: the count that triggers compaction stays exact.
    #[test]
    fn disarming_a_due_timer_leaves_no_stale_node() {
        let mut t = Timers::new();
        let keys: Vec<TimerKey> = (0..200)
            .map(|_| t.arm(ns_at(Duration::from_secs(1)), cb()))
            .collect();
        let mut due = Vec::new();
        t.pop_due(|| ns_at(Duration::from_secs(1)), |slot| due.push(slot));
        assert_eq!(due.len(), 200);
        for k in &keys {
            assert!(t.cancel(*k));
        }
        assert_eq!((t.nodes, t.stale), (0, 0));
        let k = t.arm(ns_at(Duration::from_secs(2)), cb());
        assert_eq!(t.next_deadline(), Some(ns_at(Duration::from_secs(2))));
        assert!(t.cancel(k));
        assert_eq!(t.next_deadline(), None);
        assert_eq!((t.nodes, t.stale), (0, 0));
    }

    #[test]
    fn firing_order_matches_a_sorted_reference() {
        let mut next = crate::util::test_rng(0x2545_f491_4f6c_dd1d_u64);
        for round in 0..20 {
            // Odd rounds disarm about half of what they arm, so stale nodes
            // pile up and compactions run between pops.
            let churn = round % 2 == 1;
            let mut t = Timers::new();
            let mut reference: Vec<(Duration, u64, TimerKey)> = Vec::new();
            let mut now = Duration::ZERO;
            let mut n = 0u64;
            for _step in 0..if churn { 3000 } else { 400 } {
                match next(10) {
                    0..=5 => {
                        // Deadlines close together, some equal, some earlier
                        // than timers already pulled to the front.
                        let at = now + Duration::from_micros(next(4) * 700 + next(3) * 1000);
                        n += 1;
                        let k = t.arm(ns_at(at), cb());
                        reference.push((at, n, k));
                        if churn && next(2) == 0 {
                            let i = next(reference.len() as u64) as usize;
                            let (_, _, k) = reference.remove(i);
                            assert!(t.cancel(k));
                        }
                    }
                    6 if !reference.is_empty() => {
                        let i = next(reference.len() as u64) as usize;
                        let (_, _, k) = reference.remove(i);
                        assert!(t.cancel(k));
                    }
                    _ => {
                        now += Duration::from_micros(next(1500));
                        reference.sort_by_key(|&(at, n, _)| (at, n));
                        let split = reference.partition_point(|&(at, _, _)| at <= now);
                        let want: Vec<u32> =
                            reference.drain(..split).map(|(_, _, k)| k.slot).collect();
                        let mut got = Vec::new();
                        t.pop_due(|| ns_at(now), |slot| got.push(slot));
                        assert_eq!(got, want);
                        for slot in got {
                            assert!(t.take_due(slot).is_some());
                        }
                        reference.sort_by_key(|&(at, n, _)| (at, n));
                        t.count_nodes();
                        assert_eq!(
                            t.next_deadline(),
                            reference.first().map(|&(d, _, _)| ns_at(d))
                        );
                    }
                }
            }
        }
    }
}
