//! The loop's worker threads: a bounded pool of std threads, started on
//! demand (asyncio's default `ThreadPoolExecutor`).
//!
//! A job is queued; an idle worker takes it, or a new worker is started if
//! fewer than the bound are running. Workers live until the loop closes;
//! then each finishes the job it runs, the jobs still queued are dropped
//! (their awaiters were cancelled when the loop closed), and the workers
//! exit. Closing the loop does not wait for them (asyncio.run waits for its
//! default executor; here a thread stuck in a blocking call cannot hang the
//! close).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    max: usize,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool (one per loop, created on the first job).
pub(crate) struct Pool {
    shared: Arc<Shared>,
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
                max: max_workers(),
            }),
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
            if spawned.is_err() {
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

    /// Stops the workers once their current job is done; drops queued jobs.
    pub(crate) fn shutdown(&self) {
        let jobs = {
            let mut st = lock(&self.shared);
            st.shutdown = true;
            std::mem::take(&mut st.queue)
        };
        self.shared.cond.notify_all();
        drop(jobs);
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
