//! The workloads on tokio: the current-thread runtime with a `LocalSet`, and
//! the multi-thread runtime (whose benchmark body runs as a task on a worker).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Builder;
use tokio::sync::{mpsc, Mutex};
use tokio::task::{yield_now, JoinHandle, LocalSet};
use tokio::time::{sleep, timeout};

use crate::harness::{RunError, RunResult};
use crate::proc_status;
use crate::workload::{
    echo_value, lock_share, task_value, Workload, LOCK_TASKS, LONG, SLEEP, YIELDS_PER_TASK,
};

/// Which tokio runtime to use.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// `current_thread` runtime, tasks spawned with `spawn_local` on a `LocalSet`.
    Local,
    /// `multi_thread` runtime with default worker count, tasks spawned with `spawn`.
    Multi,
}

/// Runs workload `w` of size `n` on a fresh runtime of the given flavor.
pub fn run(flavor: Flavor, w: Workload, n: usize) -> Result<RunResult, RunError> {
    Ok(match w {
        Workload::Spawn => block_on(flavor, spawn_all(flavor, n)),
        Workload::Sleepers => block_on(flavor, sleepers(flavor, n)),
        Workload::TimeoutOk => block_on(flavor, timeout_ok(n, true)),
        Workload::TimeoutBare => block_on(flavor, timeout_ok(n, false)),
        Workload::Cancel => block_on(flavor, cancel(flavor, n)),
        Workload::PingPong => block_on(flavor, pingpong(flavor, n)),
        Workload::Lock => block_on(flavor, lock(flavor, n)),
        Workload::Yield => block_on(flavor, yielders(flavor, n)),
    })
}

fn block_on<F>(flavor: Flavor, body: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match flavor {
        Flavor::Local => {
            let rt = Builder::new_current_thread().enable_time().build();
            LocalSet::new().block_on(&rt.expect("tokio runtime"), body)
        }
        Flavor::Multi => {
            let rt = Builder::new_multi_thread().enable_time().build();
            let rt = rt.expect("tokio runtime");
            rt.block_on(rt.spawn(body))
                .expect("benchmark body panicked")
        }
    }
}

fn spawn<F>(flavor: Flavor, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match flavor {
        Flavor::Local => tokio::task::spawn_local(fut),
        Flavor::Multi => tokio::spawn(fut),
    }
}

async fn reap(handles: Vec<JoinHandle<u64>>) -> u64 {
    let mut sum = 0;
    for h in handles {
        sum += h.await.expect("task failed");
    }
    sum
}

async fn spawn_all(flavor: Flavor, n: usize) -> RunResult {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n as u64 {
        handles.push(spawn(flavor, async move { task_value(i) }));
    }
    let sum = reap(handles).await;
    RunResult::new(start.elapsed(), sum)
}

async fn sleepers(flavor: Flavor, n: usize) -> RunResult {
    let base = proc_status::rss_bytes();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n as u64 {
        handles.push(spawn(flavor, async move {
            sleep(SLEEP).await;
            task_value(i)
        }));
    }
    let sum = reap(handles).await;
    RunResult::new(start.elapsed(), sum).with_peak(base)
}

async fn timeout_ok(n: usize, with_timeout: bool) -> RunResult {
    let start = Instant::now();
    let mut sum = 0;
    for i in 0..n as u64 {
        let fut = async move {
            yield_now().await;
            task_value(i)
        };
        sum += if with_timeout {
            timeout(LONG, fut).await.expect("timed out")
        } else {
            fut.await
        };
    }
    RunResult::new(start.elapsed(), sum)
}

async fn cancel(flavor: Flavor, n: usize) -> RunResult {
    let asleep = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let asleep = asleep.clone();
        handles.push(spawn(flavor, async move {
            asleep.fetch_add(1, Ordering::Relaxed);
            sleep(LONG).await;
            task_value(i)
        }));
    }
    while asleep.load(Ordering::Relaxed) < n {
        yield_now().await;
    }
    let start = Instant::now();
    for h in &handles {
        h.abort();
    }
    let mut cancelled = 0;
    for h in handles {
        match h.await {
            Err(e) if e.is_cancelled() => cancelled += 1,
            _ => panic!("task was not cancelled"),
        }
    }
    RunResult::new(start.elapsed(), cancelled)
}

async fn pingpong(flavor: Flavor, n: usize) -> RunResult {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let start = Instant::now();
    let echo = spawn(flavor, async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(echo_value(v)).await.expect("pong closed");
        }
        0
    });
    let ping = spawn(flavor, async move {
        let mut sum = 0;
        for i in 0..n as u64 {
            ping_tx.send(i).await.expect("ping closed");
            sum += pong_rx.recv().await.expect("pong ended");
        }
        sum
    });
    let sum = reap(vec![ping, echo]).await;
    RunResult::new(start.elapsed(), sum)
}

async fn lock(flavor: Flavor, n: usize) -> RunResult {
    // (next index, checksum), guarded by the mutex under test.
    let state = Arc::new(Mutex::new((0u64, 0u64)));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..LOCK_TASKS {
        let state = state.clone();
        handles.push(spawn(flavor, async move {
            for _ in 0..lock_share(n, t) {
                let mut guard = state.lock().await;
                let i = guard.0;
                guard.0 += 1;
                guard.1 += task_value(i);
                yield_now().await; // hold the lock across a suspension
            }
            0
        }));
    }
    reap(handles).await;
    let sum = state.lock().await.1;
    RunResult::new(start.elapsed(), sum)
}

async fn yielders(flavor: Flavor, n: usize) -> RunResult {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n as u64 {
        handles.push(spawn(flavor, async move {
            for _ in 0..YIELDS_PER_TASK {
                yield_now().await;
            }
            task_value(i)
        }));
    }
    let sum = reap(handles).await;
    RunResult::new(start.elapsed(), sum)
}
