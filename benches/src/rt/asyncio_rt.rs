//! The workloads on this project's `asyncio` crate (real time, one thread).
//!
//! A yield is `asyncio::sleep(Duration::ZERO)`, as `await asyncio.sleep(0)` in
//! Python. Task bodies that can be cancelled propagate the `CancelledError`
//! with `?`, so that a cancelled task ends cancelled.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asyncio::{
    create_task, sleep, wait_for, CancelledError, GetError, Lock, PutError, Queue, Runner, Task,
};

use crate::harness::{RunError, RunResult};
use crate::proc_status;
use crate::workload::{
    echo_value, lock_share, task_value, Workload, LOCK_TASKS, LONG, SLEEP, YIELDS_PER_TASK,
};

/// Runs workload `w` of size `n` on a fresh `asyncio::Runner`.
pub fn run(w: Workload, n: usize) -> Result<RunResult, RunError> {
    Ok(match w {
        Workload::Spawn => block_on(spawn_all(n)),
        Workload::Sleepers => block_on(sleepers(n)),
        Workload::TimeoutOk => block_on(timeout_ok(n, true)),
        Workload::TimeoutBare => block_on(timeout_ok(n, false)),
        Workload::Cancel => block_on(cancel(n)),
        Workload::PingPong => block_on(pingpong(n)),
        Workload::Lock => block_on(lock(n)),
        Workload::Yield => block_on(yielders(n)),
    })
}

fn block_on<F: Future + 'static>(body: F) -> F::Output {
    Runner::builder().build().run(body)
}

async fn yield_now() -> Result<(), CancelledError> {
    sleep(Duration::ZERO).await
}

async fn reap(tasks: Vec<Task<Result<u64, CancelledError>>>) -> u64 {
    let mut sum = 0;
    for t in tasks {
        sum += t.await.and_then(|r| r).expect("task cancelled");
    }
    sum
}

async fn spawn_all(n: usize) -> RunResult {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(create_task(async move { Ok(task_value(i)) }));
    }
    let sum = reap(tasks).await;
    RunResult::new(start.elapsed(), sum)
}

async fn sleepers(n: usize) -> RunResult {
    let base = proc_status::rss_bytes();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(create_task(async move {
            sleep(SLEEP).await?;
            Ok(task_value(i))
        }));
    }
    let sum = reap(tasks).await;
    RunResult::new(start.elapsed(), sum).with_peak(base)
}

async fn timeout_ok(n: usize, with_timeout: bool) -> RunResult {
    let start = Instant::now();
    let mut sum = 0;
    for i in 0..n as u64 {
        let fut = async move {
            yield_now().await?;
            Ok::<_, CancelledError>(task_value(i))
        };
        let r = if with_timeout {
            wait_for(fut, LONG).await.expect("timed out")
        } else {
            fut.await
        };
        sum += r.expect("cancelled");
    }
    RunResult::new(start.elapsed(), sum)
}

async fn cancel(n: usize) -> RunResult {
    let asleep = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let asleep = asleep.clone();
        tasks.push(create_task(async move {
            asleep.set(asleep.get() + 1);
            sleep(LONG).await?;
            Ok::<_, CancelledError>(task_value(i))
        }));
    }
    while asleep.get() < n {
        yield_now().await.expect("main task cancelled");
    }
    let start = Instant::now();
    for t in &tasks {
        t.cancel();
    }
    let mut cancelled = 0;
    for t in tasks {
        // Dropping the error handles it, like `except CancelledError` in Python.
        match t.await {
            Err(_cancelled) => cancelled += 1,
            Ok(_) => panic!("task was not cancelled"),
        }
    }
    RunResult::new(start.elapsed(), cancelled)
}

/// `Queue::get`, propagating a cancellation (the queues are never shut down).
async fn get(q: &Queue<u64>) -> Result<u64, CancelledError> {
    q.get().await.map_err(|e| match e {
        GetError::Cancelled(cancelled) => cancelled,
        GetError::ShutDown(_) => unreachable!("the queue is never shut down"),
    })
}

/// `Queue::put`, propagating a cancellation.
async fn put(q: &Queue<u64>, v: u64) -> Result<(), CancelledError> {
    q.put(v).await.map_err(|e| match e {
        PutError::Cancelled(cancelled, _) => cancelled,
        PutError::ShutDown(_) => unreachable!("the queue is never shut down"),
    })
}

async fn pingpong(n: usize) -> RunResult {
    let ping = Rc::new(Queue::new(1));
    let pong = Rc::new(Queue::new(1));
    let start = Instant::now();
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        create_task(async move {
            for _ in 0..n {
                let v = get(&ping).await?;
                put(&pong, echo_value(v)).await?;
            }
            Ok(0)
        })
    };
    let pinger = create_task(async move {
        let mut sum = 0;
        for i in 0..n as u64 {
            put(&ping, i).await?;
            sum += get(&pong).await?;
        }
        Ok(sum)
    });
    let sum = reap(vec![pinger, echo]).await;
    RunResult::new(start.elapsed(), sum)
}

async fn lock(n: usize) -> RunResult {
    let lock = Rc::new(Lock::new());
    let counter = Rc::new(Cell::new(0u64));
    let sum = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..LOCK_TASKS {
        let (lock, counter, sum) = (lock.clone(), counter.clone(), sum.clone());
        tasks.push(create_task(async move {
            for _ in 0..lock_share(n, t) {
                let _guard = lock.acquire().await?;
                let i = counter.get();
                counter.set(i + 1);
                sum.set(sum.get() + task_value(i));
                yield_now().await?; // hold the lock across a suspension
            }
            Ok(0)
        }));
    }
    reap(tasks).await;
    RunResult::new(start.elapsed(), sum.get())
}

async fn yielders(n: usize) -> RunResult {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(create_task(async move {
            for _ in 0..YIELDS_PER_TASK {
                yield_now().await?;
            }
            Ok(task_value(i))
        }));
    }
    let sum = reap(tasks).await;
    RunResult::new(start.elapsed(), sum)
}
