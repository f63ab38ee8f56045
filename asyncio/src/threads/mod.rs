//! Threads: `to_thread`, `EventLoop::run_in_executor`, and the loop's
//! thread-safe handle (`call_soon_threadsafe`, `run_coroutine_threadsafe`).

mod handle;
pub(crate) mod pool;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

pub use handle::{ConcurrentFuture, LoopClosed, LoopHandle};

use crate::cancel::checkpoint::Checkpoint;
use crate::cancel::error::CancelledError;
use crate::runtime::{context, BusyGuard, EventLoop, Loop};

/// Runs `f` on one of the loop's worker threads and waits for its result
/// (`asyncio.to_thread`). Use it for blocking calls — file I/O, a blocking
/// library, a long computation — so the loop keeps running other tasks.
///
/// The call is submitted when the future is first awaited. The workers are
/// the loop's own: a bounded pool (at most `min(32, cpus + 4)` threads, as
/// Python's default executor), started on demand and stopped when the loop
/// closes. As `asyncio.run` does, closing the loop lets the calls still
/// running finish, drops the calls still queued, and waits for the worker
/// threads to exit (for at most 300 seconds, as asyncio; a worker still
/// stuck then is reported and left running). The result reaches the loop
/// through the same queue as
/// [`LoopHandle::call_soon_threadsafe`], so callbacks the call scheduled run
/// before the awaiter resumes.
///
/// ```
/// asyncio::run(async {
///     let sum = asyncio::to_thread(|| (1..=100u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 5050);
/// });
/// ```
///
/// # Cancellation
/// Returns `Err(CancelledError)` at once, as in Python; a call that has
/// started runs to its end on its thread and its result is dropped, a call
/// still queued never runs.
///
/// # Panics
/// When awaited outside a task of a running loop. A panic in `f` is raised
/// again in the awaiter, as an exception raised in the thread would be.
pub fn to_thread<F, T>(f: F) -> ToThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    ToThread {
        state: Stage::Init(Some(Box::new(f))),
        cp: Checkpoint::new(),
        busy: None,
    }
}

impl EventLoop {
    /// Submits `f` to the loop's worker threads now and returns a future of
    /// its result (`loop.run_in_executor(None, f)`). Unlike [`to_thread`],
    /// which submits when first awaited, the call starts even if the future
    /// is never awaited.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lp = asyncio::get_running_loop().unwrap();
    ///     let job = lp.run_in_executor(|| std::thread::current().name().map(String::from));
    ///     let name = job.await.unwrap().unwrap();
    ///     assert!(name.starts_with("asyncio-worker-"));
    /// });
    /// ```
    ///
    /// # Cancellation
    /// As [`to_thread`].
    pub fn run_in_executor<F, T>(&self, f: F) -> ToThread<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job = submit(self.inner(), Box::new(f));
        ToThread {
            state: Stage::Submitted(job),
            cp: Checkpoint::new(),
            busy: None,
        }
    }

    /// A handle to this loop that other threads can use (see
    /// [`LoopHandle`]).
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.inner().remote.clone())
    }
}

type Call<T> = Box<dyn FnOnce() -> T + Send>;

enum JobState<T> {
    Queued,
    Running,
    Done(Result<T, Box<dyn Any + Send>>),
    /// The awaiter went away (cancelled or dropped): do not run, or drop
    /// the result.
    Abandoned,
    /// The job was dropped without running (the loop closed, or no worker
    /// thread could be started).
    Lost,
}

struct Job<T> {
    state: JobState<T>,
    waker: Option<Waker>,
}

type JobRef<T> = Arc<Mutex<Job<T>>>;

fn lock<T>(job: &Mutex<Job<T>>) -> MutexGuard<'_, Job<T>> {
    job.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks a job lost if it is dropped before it ran.
struct RunGuard<T>(Option<JobRef<T>>);

impl<T> Drop for RunGuard<T> {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            let waker = {
                let mut j = lock(&job);
                if matches!(j.state, JobState::Queued) {
                    j.state = JobState::Lost;
                }
                j.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

fn submit<T: Send + 'static>(lp: &Loop, f: Call<T>) -> JobRef<T> {
    let job: JobRef<T> = Arc::new(Mutex::new(Job {
        state: JobState::Queued,
        waker: None,
    }));
    let mut guard = RunGuard(Some(job.clone()));
    let remote = lp.remote.clone();
    lp.pool().submit(Box::new(move || {
        let job = guard.0.take().expect("a job runs once");
        {
            let mut j = lock(&job);
            if !matches!(j.state, JobState::Queued) {
                return;
            }
            j.state = JobState::Running;
        }
        let out = panic::catch_unwind(AssertUnwindSafe(f));
        // The result is delivered by a callback on the loop, as asyncio's
        // `wrap_future` does: it runs after every `call_soon_threadsafe`
        // the call made, and the awaiter resumes on the next turn. (If the
        // loop is closed, the result is dropped here.)
        let _ = remote.call_soon(Box::new(move || {
            let waker = {
                let mut j = lock(&job);
                if matches!(j.state, JobState::Abandoned) {
                    None
                } else {
                    j.state = JobState::Done(out);
                    j.waker.take()
                }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }));
    }));
    job
}

enum Stage<T> {
    Init(Option<Call<T>>),
    Submitted(JobRef<T>),
    Finished,
}

/// The future of [`to_thread`] and [`EventLoop::run_in_executor`]:
/// `Result<T, CancelledError>`.
///
/// ```
/// asyncio::run(async {
///     let job: asyncio::ToThread<usize> = asyncio::to_thread(|| "four".len());
///     assert_eq!(job.await.unwrap(), 4);
/// });
/// ```
///
/// # Cancellation
/// See [`to_thread`]: the awaiter returns at once; a running call finishes
/// on its thread, a queued one never runs. Dropping the future has the same
/// effect.
pub struct ToThread<T> {
    state: Stage<T>,
    cp: Checkpoint,
    /// Counts the await while suspended (see `BusyGuard`).
    busy: Option<BusyGuard>,
}

impl<T> ToThread<T> {
    fn abandon(&mut self) {
        self.busy = None;
        if let Stage::Submitted(job) = std::mem::replace(&mut self.state, Stage::Finished) {
            let mut j = lock(&job);
            if matches!(j.state, JobState::Queued | JobState::Running) {
                j.state = JobState::Abandoned;
            }
            j.waker = None;
        }
    }
}

impl<T: Send + 'static> Future for ToThread<T> {
    type Output = Result<T, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.abandon();
            return Poll::Ready(Err(err));
        }
        if let Stage::Init(f) = &mut this.state {
            let f = f.take().expect("polled once in Init");
            let lp = context::expect_loop("asyncio::to_thread()");
            this.state = Stage::Submitted(submit(&lp, f));
        }
        let Stage::Submitted(job) = &this.state else {
            panic!("asyncio::to_thread() polled after it completed");
        };
        let out = {
            let mut j = lock(job);
            match std::mem::replace(&mut j.state, JobState::Abandoned) {
                JobState::Done(out) => Some(out),
                JobState::Lost => {
                    drop(j);
                    this.state = Stage::Finished;
                    this.busy = None;
                    this.cp.complete();
                    panic!(
                        "asyncio::to_thread(): the call was dropped before it ran \
                         (the loop closed, or no worker thread could be started)"
                    );
                }
                other => {
                    j.state = other;
                    match &j.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => j.waker = Some(cx.waker().clone()),
                    }
                    None
                }
            }
        };
        match out {
            Some(out) => {
                this.state = Stage::Finished;
                this.busy = None;
                this.cp.complete();
                match out {
                    Ok(v) => Poll::Ready(Ok(v)),
                    Err(p) => panic::resume_unwind(p),
                }
            }
            None => {
                this.cp.suspend(cx, None);
                if this.busy.is_none() {
                    this.busy = context::with_loop(|lp| lp.busy_guard());
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for ToThread<T> {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl<T> fmt::Debug for ToThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            Stage::Init(_) => "not started",
            Stage::Submitted(_) => "submitted",
            Stage::Finished => "finished",
        };
        f.debug_struct("ToThread").field("state", &state).finish()
    }
}
