//! `LoopHandle`: the loop as other threads see it.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cancel::error::CancelledError;
use crate::runtime::{context, Remote};

/// A `Send + Sync` handle to an event loop, for other threads, from
/// [`EventLoop::handle`](crate::EventLoop::handle). Clone it freely.
///
/// ```
/// use std::time::Duration;
/// asyncio::run(async {
///     let handle = asyncio::get_running_loop().unwrap().handle();
///     let (tx, rx) = std::sync::mpsc::channel();
///     // A foreign thread submits work to the loop and blocks on its result.
///     let worker = std::thread::spawn(move || {
///         let fut = handle
///             .run_coroutine_threadsafe(|| async {
///                 asyncio::sleep(Duration::from_millis(1)).await.unwrap();
///                 21 * 2
///             })
///             .unwrap();
///         tx.send(fut.result().unwrap()).unwrap();
///     });
///     // Keep the loop busy while the thread waits.
///     let got = asyncio::to_thread(move || rx.recv().unwrap()).await.unwrap();
///     assert_eq!(got, 42);
///     worker.join().unwrap();
/// });
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    remote: Arc<Remote>,
}

/// The loop a [`LoopHandle`] points to is closed.
///
/// ```
/// let handle = asyncio::run(async { asyncio::get_running_loop().unwrap().handle() });
/// assert_eq!(handle.call_soon_threadsafe(|| ()), Err(asyncio::LoopClosed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopClosed;

impl fmt::Display for LoopClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop is closed")
    }
}

impl std::error::Error for LoopClosed {}

impl LoopHandle {
    pub(crate) fn new(remote: Arc<Remote>) -> LoopHandle {
        LoopHandle { remote }
    }

    /// Schedules `f` to run on the loop's thread, on its next turn
    /// (`loop.call_soon_threadsafe`), and wakes the loop if it is waiting.
    /// Callbacks from one thread run in the order they were scheduled.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// asyncio::run(async {
    ///     let handle = asyncio::get_running_loop().unwrap().handle();
    ///     let ran = Arc::new(AtomicBool::new(false));
    ///     let r = ran.clone();
    ///     asyncio::to_thread(move || {
    ///         handle.call_soon_threadsafe(move || r.store(true, Ordering::SeqCst)).unwrap();
    ///     })
    ///     .await
    ///     .unwrap();
    ///     // The callback was queued before the thread's result: it ran first.
    ///     assert!(ran.load(Ordering::SeqCst));
    /// });
    /// ```
    ///
    /// # Errors
    /// [`LoopClosed`] if the loop is closed (Python raises `RuntimeError`).
    pub fn call_soon_threadsafe(
        &self,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), LoopClosed> {
        self.remote.call_soon(Box::new(f)).map_err(|_| LoopClosed)
    }

    /// Runs the future made by `make` as a task on the loop, from any
    /// thread, and returns a [`ConcurrentFuture`] the caller can block on
    /// (`asyncio.run_coroutine_threadsafe`). `make` runs on the loop's
    /// thread, so the future itself need not be `Send`; only its output
    /// crosses threads.
    ///
    /// # Errors
    /// [`LoopClosed`] if the loop is closed. If it closes before the task
    /// finishes, the [`ConcurrentFuture`] ends cancelled.
    pub fn run_coroutine_threadsafe<F, Fut>(
        &self,
        make: F,
    ) -> Result<ConcurrentFuture<Fut::Output>, LoopClosed>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Pending),
            cond: Condvar::new(),
            cancel: AtomicBool::new(false),
            task_id: AtomicU64::new(0),
        });
        let completer = Completer(Some(shared.clone()));
        self.call_soon_threadsafe(move || start(make, completer))?;
        Ok(ConcurrentFuture {
            shared,
            handle: self.clone(),
        })
    }

    /// Whether the loop is closed.
    pub fn is_closed(&self) -> bool {
        self.remote.is_closed()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Runs on the loop: creates the task and completes the future when it
/// is done, by how it ended (asyncio chains the two futures): a task that
/// ends cancelled — its future returned a live `CancelledError`, or a value
/// with a cancel still pending — cancels the future, whatever its future
/// returned.
fn start<F, Fut>(make: F, completer: Completer<Fut::Output>)
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let shared = completer.0.clone().expect("fresh completer");
    if shared.cancel.load(Ordering::Acquire) {
        return; // the completer's drop ends it cancelled
    }
    let fut = make();
    let output = Rc::new(Cell::new(None));
    let slot = output.clone();
    let task = crate::create_task(async move {
        slot.set(Some(CatchUnwind { inner: fut }.await));
    });
    task.add_done_callback(move |task| match output.take() {
        Some(out) if !task.cancelled() => completer.complete(out),
        // Cancelled, or it never ran: the completer's drop says so.
        _ => drop(completer),
    });
    shared.task_id.store(task.id(), Ordering::Release);
    if shared.cancel.load(Ordering::Acquire) {
        task.cancel();
    }
}

pin_project_lite::pin_project! {
    /// Polls a future, catching its panic.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

enum State<T> {
    Pending,
    Done(T),
    Panicked(Box<dyn Any + Send>),
    Cancelled,
    Taken,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    cancel: AtomicBool,
    task_id: AtomicU64,
}

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completes the shared state once; dropped without completing (the task
/// never ran, was aborted, or the loop closed) it ends it cancelled.
struct Completer<T>(Option<Arc<Shared<T>>>);

impl<T> Completer<T> {
    fn complete(mut self, out: Result<T, Box<dyn Any + Send>>) {
        if let Some(shared) = self.0.take() {
            let mut st = lock(&shared);
            // Not if `ConcurrentFuture::cancel` got there first.
            if matches!(*st, State::Pending) {
                *st = match out {
                    Ok(v) => State::Done(v),
                    Err(p) => State::Panicked(p),
                };
            }
            drop(st);
            shared.cond.notify_all();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let mut st = lock(&shared);
            if matches!(*st, State::Pending) {
                *st = State::Cancelled;
            }
            drop(st);
            shared.cond.notify_all();
        }
    }
}

/// The result of [`LoopHandle::run_coroutine_threadsafe`], for a thread
/// other than the loop's to block on (Python's `concurrent.futures.Future`).
/// It is `Send + Sync`.
///
/// ```
/// use std::time::Duration;
/// asyncio::run(async {
///     let handle = asyncio::get_running_loop().unwrap().handle();
///     let outcome = asyncio::to_thread(move || {
///         let fut = handle
///             .run_coroutine_threadsafe(|| asyncio::sleep(Duration::from_secs(3600)))
///             .unwrap();
///         assert!(!fut.wait_timeout(Duration::from_millis(10)));
///         fut.cancel(); // cancels the task on the loop
///         fut.result()
///     })
///     .await
///     .unwrap();
///     // The task ended cancelled (its sleep's error propagated), so the
///     // concurrent future did too.
///     assert!(outcome.is_err());
/// });
/// ```
///
/// # Cancellation
/// [`ConcurrentFuture::cancel`] ends the future cancelled at once, as a
/// `concurrent.futures.Future`'s `cancel()` does, and cancels the task on
/// the loop (or stops it from starting); the task may still handle that
/// and run its cleanup, but its value is not reported. Otherwise the future
/// follows how the task ended: a task that ends cancelled (by another
/// cancel, or the loop closing) ends it cancelled, and
/// [`ConcurrentFuture::result`] returns `Err(CancelledError)`.
pub struct ConcurrentFuture<T> {
    shared: Arc<Shared<T>>,
    handle: LoopHandle,
}

impl<T: Send + 'static> ConcurrentFuture<T> {
    /// Whether the task has finished (or will never run).
    pub fn done(&self) -> bool {
        !matches!(*lock(&self.shared), State::Pending)
    }

    /// Blocks until the task finishes or `timeout` passes; returns whether
    /// it finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.check_thread();
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared);
        while matches!(*st, State::Pending) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Blocks until the task finishes and returns its output, or
    /// `Err(CancelledError)` if it ended cancelled, never ran, or the loop
    /// closed first.
    ///
    /// # Panics
    /// On the loop's own thread (it would wait forever), and with the
    /// task's panic if it panicked.
    pub fn result(self) -> Result<T, CancelledError> {
        self.check_thread();
        let mut st = lock(&self.shared);
        while matches!(*st, State::Pending) {
            st = self.shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        match std::mem::replace(&mut *st, State::Taken) {
            State::Done(v) => Ok(v),
            State::Cancelled => Err(CancelledError::new()),
            State::Panicked(p) => {
                drop(st);
                panic::resume_unwind(p)
            }
            State::Pending | State::Taken => unreachable!("waited for a result"),
        }
    }

    /// Ends the future cancelled and asks the loop to cancel the task
    /// (Python's `future.cancel()`): `true` if the future is now cancelled
    /// (or already was), `false` if it already finished.
    pub fn cancel(&self) -> bool {
        {
            let mut st = lock(&self.shared);
            match *st {
                State::Pending => *st = State::Cancelled,
                State::Cancelled => return true,
                State::Done(_) | State::Panicked(_) | State::Taken => return false,
            }
        }
        self.shared.cond.notify_all();
        self.shared.cancel.store(true, Ordering::Release);
        let shared = self.shared.clone();
        // A closed loop has no task left to cancel.
        let _ = self.handle.call_soon_threadsafe(move || {
            let id = shared.task_id.load(Ordering::Acquire);
            if id == 0 {
                return; // not started: `start` sees the flag
            }
            if let Some(t) = crate::all_tasks().into_iter().find(|t| t.id() == id) {
                t.cancel();
            }
        });
        true
    }

    fn check_thread(&self) {
        assert!(
            context::current_loop_id() != self.handle.remote.loop_id(),
            "ConcurrentFuture: blocking on the loop's own thread would wait forever; \
             await the work inside the loop instead"
        );
    }
}

impl<T: Send + 'static> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentFuture")
            .field("done", &self.done())
            .finish()
    }
}
