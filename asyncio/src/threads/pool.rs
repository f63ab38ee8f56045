//! The loop's worker threads: a bounded pool of std threads, started on
//! demand (asyncio's default `ThreadPoolExecutor`).
//!
//! A job is queued; an idle worker takes it, or a new worker is started if
//! fewer than the bound are running. Workers live until the loop closes;
//! then each finishes the job it runs, the jobs still queued are dropped
//! (their awaiters were cancelled when the loop closed), and the workers
//! exit. Closing the loop waits for them and joins them, as `asyncio.run`
//! shuts its default executor down — for at most [`JOIN_TIMEOUT`], as
//! asyncio does; a worker still stuck in a blocking call then is reported
//! and left running. A close that happens while the thread panics (a
//! failing test, a panic out of `run`) does not wait.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long closing the loop waits for the workers (asyncio's
/// `THREAD_JOIN_TIMEOUT`).
const JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// A job for a worker. It catches its own panics.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    /// Signalled when the last worker exits after shutdown.
    exited: Condvar,
    max: usize,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool (one per loop, created on the first job).
pub(crate) struct Pool {
    shared: Arc<Shared>,
    /// The workers started, to join at shutdown.
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// The bound on worker threads: Python's `min(32, cpu_count + 4)`.
fn max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

impl Pool {
    pub(crate) fn new() -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                }),
                cond: Condvar::new(),
                exited: Condvar::new(),
                max: max_workers(),
            }),
            handles: Mutex::new(Vec::new()),
        }
    }

    /// Queues `job`; starts a worker for it if none is idle and the bound
    /// allows. A job submitted after shutdown is dropped.
    pub(crate) fn submit(&self, job: Job) {
        let mut st = lock(&self.shared);
        if st.shutdown {
            return;
        }
        st.queue.push_back(job);
        // Every idle worker (woken or about to be) takes one queued job;
        // start a new one only for jobs beyond those.
        if st.idle > 0 {
            self.shared.cond.notify_one();
        }
        if st.queue.len() > st.idle && st.threads < self.shared.max {
            st.threads += 1;
            let n = st.threads;
            drop(st);
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("asyncio-worker-{n}"))
                .spawn(move || worker(&shared));
            if let Ok(handle) = spawned {
                let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
                handles.retain(|h| !h.is_finished());
                handles.push(handle);
            } else {
                // The job waits for a running worker; with none, it is
                // dropped, and its awaiter is told so (see `ToThread`).
                let mut st = lock(&self.shared);
                st.threads -= 1;
                let orphans = if st.threads == 0 {
                    std::mem::take(&mut st.queue)
                } else {
                    VecDeque::new()
                };
                drop(st);
                drop(orphans);
            }
        }
    }

    /// Stops the workers once their current job is done, drops queued
    /// jobs, and waits for the workers to exit (see the module doc).
    /// Idempotent.
    pub(crate) fn shutdown(&self) {
        let jobs = {
            let mut st = lock(&self.shared);
            st.shutdown = true;
            std::mem::take(&mut st.queue)
        };
        self.shared.cond.notify_all();
        drop(jobs);
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        if handles.is_empty() || std::thread::panicking() {
            return;
        }
        let deadline = Instant::now() + JOIN_TIMEOUT;
        let mut st = lock(&self.shared);
        while st.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .exited
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let stuck = st.threads;
        drop(st);
        if stuck > 0 {
            eprintln!(
                "asyncio: {stuck} worker thread(s) of to_thread() still running after \
                 {JOIN_TIMEOUT:?}; the loop closes without them"
            );
        }
        for h in handles {
            if stuck == 0 || h.is_finished() {
                let _ = h.join(); // a job's panic was caught in the job
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(shared: &Shared) {
    loop {
        let job = {
            let mut st = lock(shared);
            loop {
                if st.shutdown {
                    st.threads -= 1;
                    if st.threads == 0 {
                        shared.exited.notify_all();
                    }
                    return;
                }
                if let Some(job) = st.queue.pop_front() {
                    break job;
                }
                st.idle += 1;
                st = shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
                st.idle -= 1;
            }
        };
        job();
    }
}
