//! How the loop waits when nothing is ready, and how other threads wake it.
//!
//! # Waiting (step 2 of a turn)
//!
//! - Something is ready: the reactor, if the loop has one with sockets
//!   registered, is polled without blocking (asyncio polls its selector with
//!   a zero timeout on every turn), so busy tasks never starve I/O.
//! - Nothing is ready, real clock: block until the next timer's deadline,
//!   an I/O event, or a wake from another thread — in `mio::Poll::poll`
//!   once the loop has a reactor, by parking the thread before (a loop that
//!   never does I/O never opens an epoll instance).
//! - Nothing is ready, virtual clock: poll the reactor without blocking; if
//!   that made nothing ready, jump the clock to the next timer. Only with no
//!   timer at all does a virtual loop block (for I/O or another thread).
//!   Programs that wait for the network should run on the real clock: the
//!   virtual one does not wait for a peer before firing the next timer.
//!
//! # Waking from other threads ([`Remote`])
//!
//! A wake from another thread (a task's waker, `call_soon_threadsafe`) pushes
//! onto one mutex-protected queue and sets `pending`; only the push that
//! turns `pending` from false to true wakes the loop — through the
//! reactor's `mio::Waker` (an eventfd) once the reactor exists, by
//! unparking the loop's thread before. The loop checks `pending` before it
//! blocks; both wake-ups are sticky (an unpark token, an eventfd edge), so a
//! wake between that check and the block is not lost. The switch from
//! parking to the reactor happens under the `wakeup` mutex, so a wake either
//! unparks (and the loop, which checks `pending` after the switch, does not
//! block) or writes the eventfd. A wake on the loop's own thread skips all
//! of this and pushes onto the ready queue directly.

use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::{context, Callback, Loop, TaskKey};
use crate::io::reactor::Reactor;
use crate::threads::pool::Pool;

/// Work handed to the loop by another thread.
pub(crate) enum RemoteItem {
    /// A task woken through its waker.
    Task(TaskKey),
    /// `call_soon_threadsafe`.
    Call(Box<dyn FnOnce() + Send>),
}

/// How another thread gets the loop out of its idle wait.
enum Wakeup {
    Park(Thread),
    Reactor(Arc<mio::Waker>),
    Closed,
}

/// The part of a loop other threads may touch: its cross-thread queue.
pub(crate) struct Remote {
    loop_id: u64,
    queue: Mutex<Vec<RemoteItem>>,
    pub(super) pending: AtomicBool,
    closed: AtomicBool,
    wakeup: Mutex<Wakeup>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Remote {
    /// A remote for a loop that runs on the current thread (a loop is
    /// `!Send`: it runs where it was made).
    pub(super) fn new(loop_id: u64) -> Remote {
        Remote {
            loop_id,
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wakeup: Mutex::new(Wakeup::Park(std::thread::current())),
        }
    }

    /// Runs `f` with this remote's loop if this thread is running it (one
    /// thread-local lookup): the local fast path of every wake.
    #[inline]
    pub(crate) fn with_own_loop<R>(&self, f: impl FnOnce(&Loop) -> R) -> Option<R> {
        context::with_loop(|lp| (lp.id == self.loop_id).then(|| f(lp))).flatten()
    }

    /// Sends a task's key to the loop from another thread (its waker set
    /// the task's remote-wake bit), unless the loop is closed.
    #[cold]
    pub(crate) fn schedule_remote(&self, key: TaskKey) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let _ = self.push(RemoteItem::Task(key));
    }

    /// Schedules `f` on the loop, from any thread (`call_soon_threadsafe`):
    /// it runs on the loop's next turn, after what is ready now. Gives `f`
    /// back if the loop is closed.
    #[allow(clippy::type_complexity)]
    pub(crate) fn call_soon(
        &self,
        f: Box<dyn FnOnce() + Send>,
    ) -> Result<(), Box<dyn FnOnce() + Send>> {
        let mut f = Some(f);
        if self
            .with_own_loop(|lp| lp.call_soon(f.take().expect("not taken yet")))
            .is_some()
        {
            return Ok(());
        }
        let f = f.expect("not run on this thread");
        match self.push(RemoteItem::Call(f)) {
            Ok(()) => Ok(()),
            Err(RemoteItem::Call(f)) => Err(f),
            Err(RemoteItem::Task(_)) => unreachable!(),
        }
    }

    /// Whether the loop is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The id of the loop (see `context::current_loop_id`).
    pub(crate) fn loop_id(&self) -> u64 {
        self.loop_id
    }

    fn push(&self, item: RemoteItem) -> Result<(), RemoteItem> {
        {
            let mut q = lock(&self.queue);
            // Checked under the queue's lock: `close` drains under it too,
            // so nothing is left behind in a closed loop's queue.
            if self.closed.load(Ordering::Acquire) {
                return Err(item);
            }
            q.push(item);
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            match &*lock(&self.wakeup) {
                Wakeup::Park(t) => t.unpark(),
                Wakeup::Reactor(w) => {
                    let _ = w.wake();
                }
                Wakeup::Closed => {}
            }
        }
        Ok(())
    }

    fn use_reactor(&self, waker: Arc<mio::Waker>) {
        *lock(&self.wakeup) = Wakeup::Reactor(waker);
    }

    /// Closes the queue: later pushes are refused, and what is queued is
    /// dropped (on the loop's thread).
    fn close(&self) {
        let items = {
            let mut q = lock(&self.queue);
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut *q)
        };
        let wakeup = std::mem::replace(&mut *lock(&self.wakeup), Wakeup::Closed);
        drop(wakeup);
        drop(items);
    }
}

/// The loop's I/O services, each created on first use: the reactor and the
/// worker threads of `to_thread` / `run_in_executor`.
#[derive(Default)]
pub(crate) struct LoopIo {
    reactor: OnceCell<Rc<Reactor>>,
    pool: OnceCell<Pool>,
    /// I/O operations and worker-thread calls being awaited right now.
    busy: Rc<Cell<usize>>,
    /// Signal handlers and Ctrl-C state (`signal.rs`).
    #[cfg(unix)]
    signals: crate::signal::LoopSignals,
}

/// Counts one I/O operation or worker-thread call being awaited, from its
/// first suspension until it completes or is dropped. While any is counted,
/// closing the loop waits for it (a cancelled task's cleanup may await a
/// socket or a thread), as asyncio's shutdown does.
pub(crate) struct BusyGuard(Rc<Cell<usize>>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Loop {
    /// The loop's reactor, created on first use.
    pub(crate) fn reactor(&self) -> io::Result<Rc<Reactor>> {
        if let Some(r) = self.io.reactor.get() {
            return Ok(r.clone());
        }
        let r = Reactor::new()?;
        self.remote.use_reactor(r.waker());
        let _ = self.io.reactor.set(r.clone());
        Ok(r)
    }

    /// The loop's worker pool, created on first use.
    pub(crate) fn pool(&self) -> &Pool {
        self.io.pool.get_or_init(Pool::new)
    }

    /// The loop's signal handlers (`signal.rs`).
    #[cfg(unix)]
    pub(crate) fn signals(&self) -> &crate::signal::LoopSignals {
        &self.io.signals
    }

    /// Counts an await of I/O or of a worker thread (see [`BusyGuard`]).
    pub(crate) fn busy_guard(&self) -> BusyGuard {
        self.io.busy.set(self.io.busy.get() + 1);
        BusyGuard(self.io.busy.clone())
    }

    /// Whether some task awaits I/O or a worker thread: the loop is not
    /// idle, something may still happen.
    pub(super) fn io_busy(&self) -> bool {
        self.io.busy.get() > 0
    }

    /// Moves work queued by other threads to the ready queue.
    #[inline]
    pub(super) fn drain_remote(&self) {
        // A plain load first: most turns have nothing from other threads,
        // and skip the locked swap and the call.
        if self.remote.pending.load(Ordering::Acquire) {
            self.drain_remote_slow();
        }
    }

    #[cold]
    fn drain_remote_slow(&self) {
        if !self.remote.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let items = std::mem::take(&mut *lock(&self.remote.queue));
        for item in items {
            match item {
                RemoteItem::Task(key) => {
                    // A task done since is gone from the registry (or its
                    // slot holds a later generation): nothing to wake.
                    if let Some(t) = self.tasks.borrow().get(key) {
                        t.0.take_remote_wake(self);
                    }
                }
                RemoteItem::Call(f) => self.push_callback(Rc::new(Callback {
                    cancelled: Cell::new(false),
                    f: RefCell::new(Some(f)),
                })),
            }
        }
    }

    fn poll_reactor(&self, reactor: &Reactor, timeout: Option<Duration>) {
        reactor.poll(timeout, |hook| {
            self.call_soon(Box::new(move || hook()));
        });
    }

    /// Step 2 of a turn (see the module doc): polls for I/O, and when
    /// nothing is ready waits for the next timer, an I/O event or a wake
    /// from another thread (or, on a virtual clock, jumps to the timer).
    #[inline]
    pub(super) fn wait_for_work(&self) {
        // A busy loop with no reactor: nothing to poll, nothing to wait for.
        if self.io.reactor.get().is_none() && !self.ready.borrow().is_empty() {
            return;
        }
        self.wait_or_poll();
    }

    fn wait_or_poll(&self) {
        if !self.ready.borrow().is_empty() {
            if let Some(r) = self.io.reactor.get().filter(|r| !r.is_empty()).cloned() {
                self.poll_reactor(&r, Some(Duration::ZERO));
                self.drain_remote();
            }
            return;
        }
        let reactor = self.io.reactor.get().cloned();
        let pending = || self.remote.pending.load(Ordering::Acquire);
        let next = self.timers.borrow_mut().next_deadline();
        match (self.clock.is_virtual(), next) {
            (true, Some(deadline)) => {
                if let Some(r) = &reactor {
                    self.poll_reactor(r, Some(Duration::ZERO));
                    self.drain_remote();
                    if !self.ready.borrow().is_empty() {
                        return;
                    }
                }
                self.clock.advance_to(deadline);
            }
            (false, Some(deadline)) => {
                let left = deadline.saturating_sub(self.clock.now_ns());
                let wait = if left > 0 && !pending() {
                    Duration::from_nanos(left.unsigned_abs())
                } else {
                    Duration::ZERO
                };
                match &reactor {
                    Some(r) => self.poll_reactor(r, Some(wait)),
                    None if !wait.is_zero() => std::thread::park_timeout(wait),
                    None => {}
                }
            }
            (_, None) => match &reactor {
                // Only I/O or another thread can make a task ready now.
                Some(r) => self.poll_reactor(r, pending().then_some(Duration::ZERO)),
                None if !pending() => self.park_idle(),
                None => {}
            },
        }
        self.drain_remote();
    }

    /// Nothing is ready, no timer is armed and there is no reactor: only
    /// another thread can wake the loop now. On a virtual clock with no
    /// worker-thread call in flight that is most likely a deadlock, reported
    /// after `deadlock_after` of real time (see
    /// [`RunnerBuilder::deadlock_after`](crate::RunnerBuilder::deadlock_after)).
    fn park_idle(&self) {
        let limit = match (self.clock.is_virtual(), self.deadlock_after) {
            (true, Some(limit)) if !self.io_busy() => limit,
            _ => return std::thread::park(),
        };
        let start = Instant::now();
        while !self.remote.pending.load(Ordering::Acquire) {
            let waited = start.elapsed();
            if waited >= limit {
                let mut waiting: Vec<String> = self.all_tasks().iter().map(|t| t.name()).collect();
                if waiting.is_empty() {
                    waiting.push("(none)".to_string());
                }
                panic!(
                    "asyncio: deadlock: the virtual-time loop has no task ready, no timer \
                     armed and no I/O or worker thread in flight, and nothing woke it for \
                     {limit:?}; tasks still waiting: {} (RunnerBuilder::deadlock_after \
                     sets the limit)",
                    waiting.join(", ")
                );
            }
            std::thread::park_timeout(limit - waited);
        }
    }

    /// Loop close: refuses further wakes from other threads, drops what
    /// they queued, drops the reactor's waiters and hooks (closing the
    /// sockets only they kept open), and stops the worker threads once they
    /// finish what they run.
    pub(super) fn close_io(&self) {
        #[cfg(unix)]
        self.io.signals.close(self);
        self.remote.close();
        if let Some(r) = self.io.reactor.get() {
            r.shutdown();
        }
        if let Some(p) = self.io.pool.get() {
            p.shutdown();
        }
    }
}
