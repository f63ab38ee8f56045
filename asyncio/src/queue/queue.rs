//! `Queue`, `LifoQueue`, `PriorityQueue`.
//!
//! # Invariants (asyncio's `queues.py`, 3.13)
//!
//! - A put **wakes** one getter; it does not hand the item over. The woken
//!   getter re-checks when it runs: if another task took the item
//!   meanwhile, it waits again at the tail. Symmetrically a get wakes one
//!   putter. So an item is only ever in the store or returned by exactly
//!   one `get`: a getter cancelled at any point takes nothing, and a value
//!   is never lost.
//! - A woken getter (putter) that is cancelled or dropped before it runs
//!   wakes the next one if an item (a free slot) is still there: a wake-up
//!   is never swallowed (asyncio's `test_get_cancel_drop_one_pending_reader`).
//! - Getters and putters each wait in FIFO order.
//! - `unfinished` counts puts not yet matched by `task_done`; the
//!   `finished` event is set exactly when it is 0, and `join` waits for it.
//! - After `shutdown`, every put fails; gets drain what is left, then fail
//!   (at once with `immediate`, which also discards the items, counting a
//!   `task_done` for each). Every blocked getter and putter is woken to see
//!   it.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::{
    GetError, GetNowaitError, PutError, PutNowaitError, QueueEmpty, QueueFull, QueueShutDown,
    TaskDoneTooManyTimes,
};
use crate::sync::wait_queue::WaitQueue;
use crate::sync::{Event, EventWait};

/// An item of a priority queue, ordered smallest-first by the item's own
/// `Ord` (kept as a function pointer so that `Queue<T>` needs no bound).
struct Prio<T> {
    item: T,
    cmp: fn(&T, &T) -> Ordering,
}

impl<T> PartialEq for Prio<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Prio<T> {}

impl<T> PartialOrd for Prio<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Prio<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` pops its greatest, we want the smallest.
        (self.cmp)(&other.item, &self.item)
    }
}

/// Where the items are: the only difference between the three queues.
enum Store<T> {
    Fifo(VecDeque<T>),
    Lifo(Vec<T>),
    /// The heap, and the item order captured where `T: Ord`.
    Priority(BinaryHeap<Prio<T>>, fn(&T, &T) -> Ordering),
}

impl<T> Store<T> {
    fn len(&self) -> usize {
        match self {
            Store::Fifo(q) => q.len(),
            Store::Lifo(v) => v.len(),
            Store::Priority(h, _) => h.len(),
        }
    }

    fn push(&mut self, item: T) {
        match self {
            Store::Fifo(q) => q.push_back(item),
            Store::Lifo(v) => v.push(item),
            Store::Priority(h, cmp) => h.push(Prio { item, cmp: *cmp }),
        }
    }

    fn pop(&mut self) -> Option<T> {
        match self {
            Store::Fifo(q) => q.pop_front(),
            Store::Lifo(v) => v.pop(),
            Store::Priority(h, _) => h.pop().map(|p| p.item),
        }
    }
}

struct State<T> {
    store: Store<T>,
    maxsize: usize,
    getters: WaitQueue,
    putters: WaitQueue,
    unfinished: usize,
    shutdown: bool,
}

impl<T> State<T> {
    fn empty(&self) -> bool {
        self.store.len() == 0
    }

    fn full(&self) -> bool {
        self.maxsize > 0 && self.store.len() >= self.maxsize
    }
}

/// A first-in, first-out queue (`asyncio.Queue`) for passing items between
/// tasks, bounded (`maxsize > 0`) or not (`maxsize == 0`).
///
/// [`put`](Queue::put) waits while the queue is full, [`get`](Queue::get)
/// while it is empty; [`task_done`](Queue::task_done) and
/// [`join`](Queue::join) track when every item has been processed;
/// [`shutdown`](Queue::shutdown) ends it. [`LifoQueue`] and
/// [`PriorityQueue`] are the same queue with another order, and dereference
/// to `Queue` (Python's subclasses).
///
/// Single-threaded like the loop: share it between tasks by reference or
/// with an `Rc`. It can be created outside a running loop.
///
/// ```
/// use std::rc::Rc;
/// asyncio::run(async {
///     let q = Rc::new(asyncio::Queue::new(1));
///     let consumer = {
///         let q = q.clone();
///         asyncio::create_task(async move {
///             let mut got = Vec::new();
///             for _ in 0..3 {
///                 got.push(q.get().await?);
///             }
///             Ok::<_, asyncio::GetError>(got)
///         })
///     };
///     for i in 0..3 {
///         q.put(i).await.unwrap(); // waits while the queue holds an item
///     }
///     assert_eq!(consumer.await.unwrap().unwrap(), [0, 1, 2]);
/// });
/// ```
pub struct Queue<T> {
    state: RefCell<State<T>>,
    finished: Event,
}

impl<T> Queue<T> {
    fn with_store(maxsize: usize, store: Store<T>) -> Self {
        let finished = Event::new();
        finished.set();
        Queue {
            state: RefCell::new(State {
                store,
                maxsize,
                getters: WaitQueue::new(),
                putters: WaitQueue::new(),
                unfinished: 0,
                shutdown: false,
            }),
            finished,
        }
    }

    /// A FIFO queue holding at most `maxsize` items; `0` means unbounded,
    /// as in Python.
    pub fn new(maxsize: usize) -> Queue<T> {
        Queue::with_store(maxsize, Store::Fifo(VecDeque::new()))
    }

    /// An unbounded FIFO queue (`Queue::new(0)`).
    pub fn unbounded() -> Queue<T> {
        Queue::new(0)
    }

    /// The number of items in the queue.
    pub fn qsize(&self) -> usize {
        self.state.borrow().store.len()
    }

    /// The most items the queue holds (`0`: unbounded).
    pub fn maxsize(&self) -> usize {
        self.state.borrow().maxsize
    }

    /// Whether the queue holds no item.
    pub fn empty(&self) -> bool {
        self.state.borrow().empty()
    }

    /// Whether the queue holds `maxsize` items (never, if unbounded).
    pub fn full(&self) -> bool {
        self.state.borrow().full()
    }

    /// Whether [`shutdown`](Queue::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.state.borrow().shutdown
    }

    /// Puts `item` in the queue, waiting for a free slot while it is full.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let q = asyncio::Queue::new(0);
    ///     q.put("hello").await.unwrap(); // room: no suspension
    ///     assert_eq!(q.get_nowait().unwrap(), "hello");
    /// });
    /// ```
    ///
    /// # Errors
    /// [`PutError::ShutDown`] if the queue is shut down (before the call or
    /// while waiting); [`PutError::Cancelled`] if the task is cancelled.
    /// Both hand the item back.
    ///
    /// # Cancellation
    /// Returns `PutError::Cancelled` with the item: it was **not** put. If a
    /// get had already woken this putter for a free slot, the next putter
    /// is woken in its place.
    pub fn put(&self, item: T) -> QueuePut<'_, T> {
        QueuePut {
            queue: self,
            item: Some(item),
            key: None,
        }
    }

    /// Puts `item` in the queue if there is room, without waiting.
    ///
    /// ```
    /// let q = asyncio::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// match q.put_nowait(2) {
    ///     Err(asyncio::PutNowaitError::Full(full)) => assert_eq!(full.into_inner(), 2),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
        let mut st = self.state.borrow_mut();
        if st.shutdown {
            return Err(QueueShutDown(item).into());
        }
        if st.full() {
            return Err(QueueFull(item).into());
        }
        self.put_now(&mut st, item);
        Ok(())
    }

    /// A put dropped while it waited: it leaves the line, and passes on a
    /// wake-up it was given (a free slot) to the next putter.
    #[cold]
    fn withdraw_putter(&self, key: usize) {
        let mut st = self.state.borrow_mut();
        if st.putters.remove(key) && !st.full() {
            st.putters.wake_next();
        }
    }

    /// A get dropped while it waited: it leaves the line, and passes on a
    /// wake-up it was given (an item) to the next getter.
    #[cold]
    fn withdraw_getter(&self, key: usize) {
        let mut st = self.state.borrow_mut();
        if st.getters.remove(key) && !st.empty() {
            st.getters.wake_next();
        }
    }

    fn put_now(&self, st: &mut State<T>, item: T) {
        st.store.push(item);
        st.unfinished += 1;
        self.finished.clear();
        st.getters.wake_next();
    }

    /// Removes and returns an item, waiting while the queue is empty.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let q = asyncio::Queue::new(0);
    ///     q.put_nowait(7).unwrap();
    ///     assert_eq!(q.get().await.unwrap(), 7);
    /// });
    /// ```
    ///
    /// # Errors
    /// [`GetError::ShutDown`] once the queue is shut down and empty (or at
    /// once after an immediate shutdown); [`GetError::Cancelled`] if the
    /// task is cancelled.
    ///
    /// # Cancellation
    /// Returns `GetError::Cancelled` having taken **no** item: a getter is
    /// woken by a put, it is not handed the item, so the item stays in the
    /// queue; if this getter had been woken, the next getter is woken in
    /// its place.
    pub fn get(&self) -> QueueGet<'_, T> {
        QueueGet {
            queue: self,
            key: None,
            done: false,
        }
    }

    /// Removes and returns an item if there is one, without waiting.
    ///
    /// ```
    /// let q: asyncio::Queue<u8> = asyncio::Queue::new(0);
    /// assert!(matches!(q.get_nowait(), Err(asyncio::GetNowaitError::Empty(_))));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetNowaitError> {
        let mut st = self.state.borrow_mut();
        match st.store.pop() {
            Some(item) => {
                st.putters.wake_next();
                Ok(item)
            }
            None if st.shutdown => Err(QueueShutDown(()).into()),
            None => Err(QueueEmpty.into()),
        }
    }

    /// Marks one item taken with `get` as processed; when every item put
    /// has been, [`join`](Queue::join) returns.
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.put_nowait(()).unwrap();
    /// q.get_nowait().unwrap();
    /// assert_eq!(q.task_done(), Ok(()));
    /// assert_eq!(q.task_done(), Err(asyncio::TaskDoneTooManyTimes));
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneTooManyTimes> {
        let mut st = self.state.borrow_mut();
        if st.unfinished == 0 {
            return Err(TaskDoneTooManyTimes);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            self.finished.set();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](Queue::task_done); returns at once if none is pending.
    ///
    /// # Cancellation
    /// Returns `Err(CancelledError)`; the queue is unchanged.
    pub fn join(&self) -> QueueJoin<'_> {
        QueueJoin {
            wait: self.finished.wait(),
        }
    }

    /// Shuts the queue down: from now on puts fail with
    /// [`QueueShutDown`], and gets fail once the queue is empty. With
    /// `immediate`, the items left are discarded (each counted as
    /// `task_done`, which may release [`join`](Queue::join)) and gets fail
    /// at once. Every blocked `put` and `get` is woken to see it.
    pub fn shutdown(&self, immediate: bool) {
        let mut st = self.state.borrow_mut();
        st.shutdown = true;
        if immediate {
            let mut discarded = Vec::new();
            while let Some(item) = st.store.pop() {
                discarded.push(item);
                st.unfinished = st.unfinished.saturating_sub(1);
            }
            if st.unfinished == 0 {
                self.finished.set();
            }
            st.getters.wake_all();
            st.putters.wake_all();
            // Items are dropped outside the borrow: their destructors may
            // use the queue.
            drop(st);
            drop(discarded);
            return;
        }
        st.getters.wake_all();
        st.putters.wake_all();
    }
}

impl<T> Default for Queue<T> {
    /// An unbounded queue.
    fn default() -> Self {
        Queue::new(0)
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Queue")
            .field("maxsize", &st.maxsize)
            .field("qsize", &st.store.len())
            .field("getters", &st.getters.len())
            .field("putters", &st.putters.len())
            .field("unfinished", &st.unfinished)
            .field("shutdown", &st.shutdown)
            .finish()
    }
}

/// A last-in, first-out queue (`asyncio.LifoQueue`): a [`Queue`] whose
/// `get` returns the newest item. Every method is [`Queue`]'s, through
/// `Deref`.
///
/// ```
/// let q = asyncio::LifoQueue::new(0);
/// for i in 0..3 {
///     q.put_nowait(i).unwrap();
/// }
/// assert_eq!(q.get_nowait().unwrap(), 2);
/// ```
pub struct LifoQueue<T>(Queue<T>);

impl<T> LifoQueue<T> {
    /// A LIFO queue holding at most `maxsize` items; `0` means unbounded.
    pub fn new(maxsize: usize) -> LifoQueue<T> {
        LifoQueue(Queue::with_store(maxsize, Store::Lifo(Vec::new())))
    }
}

impl<T> Deref for LifoQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T> Default for LifoQueue<T> {
    /// An unbounded LIFO queue.
    fn default() -> Self {
        LifoQueue::new(0)
    }
}

impl<T> fmt::Debug for LifoQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LifoQueue").field(&self.0).finish()
    }
}

/// A priority queue (`asyncio.PriorityQueue`): a [`Queue`] whose `get`
/// returns the smallest item first (put `(priority, data)` tuples, as in
/// Python). Every method is [`Queue`]'s, through `Deref`.
///
/// ```
/// let q = asyncio::PriorityQueue::new(0);
/// for item in [(3, "c"), (1, "a"), (2, "b")] {
///     q.put_nowait(item).unwrap();
/// }
/// assert_eq!(q.get_nowait().unwrap(), (1, "a"));
/// ```
pub struct PriorityQueue<T>(Queue<T>);

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue holding at most `maxsize` items; `0` means
    /// unbounded.
    pub fn new(maxsize: usize) -> PriorityQueue<T> {
        PriorityQueue(Queue::with_store(
            maxsize,
            Store::Priority(BinaryHeap::new(), T::cmp),
        ))
    }
}

impl<T> Deref for PriorityQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T: Ord> Default for PriorityQueue<T> {
    /// An unbounded priority queue.
    fn default() -> Self {
        PriorityQueue::new(0)
    }
}

impl<T> fmt::Debug for PriorityQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PriorityQueue").field(&self.0).finish()
    }
}

/// The future of [`Queue::put`].
#[must_use = "futures do nothing unless awaited"]
pub struct QueuePut<'a, T> {
    queue: &'a Queue<T>,
    item: Option<T>,
    key: Option<usize>,
}

// The item is moved, never pinned.
impl<T> Unpin for QueuePut<'_, T> {}

impl<T> Future for QueuePut<'_, T> {
    type Output = Result<(), PutError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let queue = this.queue;
        let mut st = queue.state.borrow_mut();
        if let Some(key) = this.key {
            let r = std::task::ready!(st.putters.poll(key, cx));
            this.key = None;
            if let Err(c) = r {
                if c.woken && !st.full() {
                    st.putters.wake_next();
                }
                let item = this.item.take().expect("QueuePut polled after completion");
                return Poll::Ready(Err(PutError::Cancelled(c.err, item)));
            }
        }
        let item = this.item.take().expect("QueuePut polled after completion");
        if st.shutdown {
            return Poll::Ready(Err(QueueShutDown(item).into()));
        }
        if !st.full() {
            queue.put_now(&mut st, item);
            return Poll::Ready(Ok(()));
        }
        // Full: wait for a get to wake us (again, at the tail, if a slot we
        // were woken for was taken meanwhile).
        this.item = Some(item);
        this.key = Some(st.putters.push_waiting(cx));
        Poll::Pending
    }
}

impl<T> Drop for QueuePut<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Most puts return before they drop: nothing to withdraw.
        if let Some(key) = self.key.take() {
            self.queue.withdraw_putter(key);
        }
    }
}

/// The future of [`Queue::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct QueueGet<'a, T> {
    queue: &'a Queue<T>,
    key: Option<usize>,
    done: bool,
}

impl<T> Unpin for QueueGet<'_, T> {}

impl<T> Future for QueueGet<'_, T> {
    type Output = Result<T, GetError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "QueueGet polled after completion");
        let mut st = this.queue.state.borrow_mut();
        if let Some(key) = this.key {
            let r = std::task::ready!(st.getters.poll(key, cx));
            this.key = None;
            if let Err(c) = r {
                if c.woken && !st.empty() {
                    st.getters.wake_next();
                }
                this.done = true;
                return Poll::Ready(Err(GetError::Cancelled(c.err)));
            }
        }
        if let Some(item) = st.store.pop() {
            st.putters.wake_next();
            this.done = true;
            return Poll::Ready(Ok(item));
        }
        if st.shutdown {
            this.done = true;
            return Poll::Ready(Err(QueueShutDown(()).into()));
        }
        // Empty: wait for a put to wake us (again, at the tail, if the item
        // we were woken for was taken meanwhile).
        this.key = Some(st.getters.push_waiting(cx));
        Poll::Pending
    }
}

impl<T> Drop for QueueGet<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Most gets return before they drop: nothing to withdraw.
        if let Some(key) = self.key.take() {
            self.queue.withdraw_getter(key);
        }
    }
}

/// The future of [`Queue::join`].
#[must_use = "futures do nothing unless awaited"]
pub struct QueueJoin<'a> {
    wait: EventWait<'a>,
}

impl Future for QueueJoin<'_> {
    type Output = Result<(), crate::CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().wait).poll(cx)
    }
}
