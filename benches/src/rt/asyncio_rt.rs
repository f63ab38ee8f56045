//! The workloads on this project's `asyncio` crate (real time, one thread).
//!
//! A yield is `asyncio::sleep(Duration::ZERO)`, as `await asyncio.sleep(0)` in
//! Python. Task bodies that can be cancelled propagate the `CancelledError`
//! with `?`, so that a cancelled task ends cancelled. The echo workloads
//! use `asyncio::net`'s `TcpListener` and `TcpStream`.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asyncio::net::{TcpListener, TcpStream};
use asyncio::{
    create_task, sleep, wait_for, CancelledError, GetError, Lock, PutError, Queue, Runner, Sleep,
    Task,
};

use crate::harness::{RunError, RunResult};
use crate::proc_status;
use crate::workload::{
    echo_message, echo_value, echo_verify, lock_share, share, task_value, Workload, ECHO_BUF,
    ECHO_MSG, LOCK_TASKS, LONG, SLEEP, YIELDS_PER_TASK,
};

/// Runs workload `w` of size `n` on a fresh `asyncio::Runner`.
pub fn run(w: Workload, n: usize) -> Result<RunResult, RunError> {
    if let Some(conns) = w.echo_conns() {
        return block_on(echo(conns, n)).map_err(|e| RunError::Failed(e.to_string()));
    }
    Ok(match w {
        Workload::Spawn => block_on(spawn_all(n)),
        Workload::Sleepers => block_on(sleepers(n)),
        Workload::TimeoutOk => block_on(timeout_ok(n, true)),
        Workload::TimeoutBare => block_on(timeout_ok(n, false)),
        Workload::Cancel => block_on(cancel(n)),
        Workload::PingPong => block_on(pingpong(n)),
        Workload::Lock => block_on(lock(n)),
        Workload::Yield => block_on(yielders(n)),
        Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => unreachable!("run above"),
    })
}

fn block_on<F: Future + 'static>(body: F) -> F::Output {
    Runner::builder().build().run(body)
}

/// asyncio's `await asyncio.sleep(0)`: the sleep itself, not an `async fn`
/// around it (tokio's and smol's `yield_now` are their own futures too).
fn yield_now() -> Sleep {
    sleep(Duration::ZERO)
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

/// `conns` loopback connections, each served by an echo task, set up before
/// the clock starts; then one client task per connection does its share of
/// the `n` round trips.
async fn echo(conns: usize, n: usize) -> io::Result<RunResult> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut clients = Vec::with_capacity(conns);
    let mut servers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = TcpStream::connect(addr).await?;
        let (conn, _) = listener.accept().await?;
        client.set_nodelay(true)?;
        conn.set_nodelay(true)?;
        servers.push(create_task(echo_server(conn)));
        clients.push(client);
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..)
        .zip(clients)
        .map(|(c, conn)| create_task(echo_client(conn, c, conns as u64, n)))
        .collect();
    let mut sum = 0;
    let mut times = Vec::with_capacity(n);
    for t in tasks {
        let (part, part_times) = t.flatten().await?;
        sum += part;
        times.extend(part_times);
    }
    let elapsed = start.elapsed();
    for s in servers {
        s.flatten().await?; // each ends when its client's stream is dropped
    }
    Ok(RunResult::new(elapsed, sum).with_latency(times))
}

/// Writes back whatever arrives until the peer closes.
async fn echo_server(conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; ECHO_BUF];
    loop {
        let got = conn.read(&mut buf).await?;
        if got == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..got]).await?;
    }
}

/// Client `c` of `conns`: sends its requests one at a time, each after the
/// previous echo came back whole; returns its checksum and round-trip times.
async fn echo_client(conn: TcpStream, c: u64, conns: u64, n: usize) -> io::Result<(u64, Vec<u64>)> {
    let rounds = share(n, conns, c);
    let mut sum = 0;
    let mut times = Vec::with_capacity(rounds as usize);
    let mut reply = [0u8; ECHO_MSG];
    for k in 0..rounds {
        let msg = echo_message(c + conns * k);
        let sent = Instant::now();
        conn.write_all(&msg).await?;
        let mut got = 0;
        while got < ECHO_MSG {
            match conn.read(&mut reply[got..]).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                r => got += r,
            }
        }
        times.push(sent.elapsed().as_nanos() as u64);
        sum += echo_verify(&reply, &msg)?;
    }
    Ok((sum, times))
}
