//! The workloads on smol's parts: an `async_executor::LocalExecutor` driven by
//! `async_io::block_on`, `async_io::Timer` timers, `async_channel` queues and
//! `async_lock` locks (what `smol::lock` re-exports). The echo workloads use
//! `async_io::Async<std::net::TcpStream>` (what `smol::net` wraps).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use async_executor::{LocalExecutor, Task};
use async_io::{Async, Timer};
use async_lock::Mutex;
use futures_lite::future::{self, yield_now};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{RunError, RunResult};
use crate::proc_status;
use crate::workload::{
    echo_message, echo_value, echo_verify, lock_share, share, task_value, Workload, ECHO_BUF,
    ECHO_MSG, LOCK_TASKS, LONG, SLEEP, YIELDS_PER_TASK,
};

type Exec = Rc<LocalExecutor<'static>>;

/// Runs workload `w` of size `n` on a fresh executor.
pub fn run(w: Workload, n: usize) -> Result<RunResult, RunError> {
    if let Some(conns) = w.echo_conns() {
        return block_on(|ex| echo(ex, conns, n)).map_err(|e| RunError::Failed(e.to_string()));
    }
    Ok(match w {
        Workload::Spawn => block_on(|ex| spawn_all(ex, n)),
        Workload::Sleepers => block_on(|ex| sleepers(ex, n)),
        Workload::TimeoutOk => block_on(|_| timeout_ok(n, true)),
        Workload::TimeoutBare => block_on(|_| timeout_ok(n, false)),
        Workload::Cancel => block_on(|ex| cancel(ex, n)),
        Workload::PingPong => block_on(|ex| pingpong(ex, n)),
        Workload::Lock => block_on(|ex| lock(ex, n)),
        Workload::Yield => block_on(|ex| yielders(ex, n)),
        Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => unreachable!("run above"),
    })
}

fn block_on<F: Future>(body: impl FnOnce(Exec) -> F) -> F::Output {
    let ex: Exec = Rc::new(LocalExecutor::new());
    async_io::block_on(ex.run(body(ex.clone())))
}

async fn reap(tasks: Vec<Task<u64>>) -> u64 {
    let mut sum = 0;
    for t in tasks {
        sum += t.await;
    }
    sum
}

async fn spawn_all(ex: Exec, n: usize) -> RunResult {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(ex.spawn(async move { task_value(i) }));
    }
    let sum = reap(tasks).await;
    RunResult::new(start.elapsed(), sum)
}

async fn sleepers(ex: Exec, n: usize) -> RunResult {
    let base = proc_status::rss_bytes();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(ex.spawn(async move {
            Timer::after(SLEEP).await;
            task_value(i)
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
            yield_now().await;
            task_value(i)
        };
        sum += if with_timeout {
            let deadline = async {
                Timer::after(LONG).await;
                None
            };
            future::or(async { Some(fut.await) }, deadline)
                .await
                .expect("timed out")
        } else {
            fut.await
        };
    }
    RunResult::new(start.elapsed(), sum)
}

/// Counts a task as cancelled when its future is dropped before finishing.
struct CancelProbe {
    dropped_early: Rc<Cell<u64>>,
    finished: bool,
}

impl Drop for CancelProbe {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped_early.set(self.dropped_early.get() + 1);
        }
    }
}

async fn cancel(ex: Exec, n: usize) -> RunResult {
    let asleep = Rc::new(Cell::new(0usize));
    let cancelled = Rc::new(Cell::new(0u64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let asleep = asleep.clone();
        let probe = CancelProbe {
            dropped_early: cancelled.clone(),
            finished: false,
        };
        tasks.push(ex.spawn(async move {
            let mut probe = probe; // owned whole, so dropping the future drops it
            asleep.set(asleep.get() + 1);
            Timer::after(LONG).await;
            probe.finished = true;
            task_value(i)
        }));
    }
    while asleep.get() < n {
        yield_now().await;
    }
    let start = Instant::now();
    // Dropping a `Task` cancels it: the executor drops its future on its next turn.
    drop(tasks);
    while cancelled.get() < n as u64 {
        yield_now().await;
    }
    RunResult::new(start.elapsed(), cancelled.get())
}

async fn pingpong(ex: Exec, n: usize) -> RunResult {
    let (ping_tx, ping_rx) = async_channel::bounded::<u64>(1);
    let (pong_tx, pong_rx) = async_channel::bounded::<u64>(1);
    let start = Instant::now();
    let echo = ex.spawn(async move {
        while let Ok(v) = ping_rx.recv().await {
            pong_tx.send(echo_value(v)).await.expect("pong closed");
        }
        0
    });
    let ping = ex.spawn(async move {
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

async fn lock(ex: Exec, n: usize) -> RunResult {
    // (next index, checksum), guarded by the mutex under test.
    let state = Rc::new(Mutex::new((0u64, 0u64)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..LOCK_TASKS {
        let state = state.clone();
        tasks.push(ex.spawn(async move {
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
    reap(tasks).await;
    let sum = state.lock().await.1;
    RunResult::new(start.elapsed(), sum)
}

async fn yielders(ex: Exec, n: usize) -> RunResult {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(ex.spawn(async move {
            for _ in 0..YIELDS_PER_TASK {
                yield_now().await;
            }
            task_value(i)
        }));
    }
    let sum = reap(tasks).await;
    RunResult::new(start.elapsed(), sum)
}

/// `conns` loopback connections, each served by an echo task, set up before
/// the clock starts; then one client task per connection does its share of
/// the `n` round trips.
async fn echo(ex: Exec, conns: usize, n: usize) -> io::Result<RunResult> {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    let addr = listener.get_ref().local_addr()?;
    let mut clients = Vec::with_capacity(conns);
    let mut servers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = Async::<TcpStream>::connect(addr).await?;
        let (conn, _) = listener.accept().await?;
        client.get_ref().set_nodelay(true)?;
        conn.get_ref().set_nodelay(true)?;
        servers.push(ex.spawn(echo_server(conn)));
        clients.push(client);
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..)
        .zip(clients)
        .map(|(c, conn)| ex.spawn(echo_client(conn, c, conns as u64, n)))
        .collect();
    let mut sum = 0;
    let mut times = Vec::with_capacity(n);
    for t in tasks {
        let (part, part_times) = t.await?;
        sum += part;
        times.extend(part_times);
    }
    let elapsed = start.elapsed();
    for s in servers {
        s.await?; // each ends when its client's stream is dropped
    }
    Ok(RunResult::new(elapsed, sum).with_latency(times))
}

/// Writes back whatever arrives until the peer closes.
async fn echo_server(mut conn: Async<TcpStream>) -> io::Result<()> {
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
async fn echo_client(
    mut conn: Async<TcpStream>,
    c: u64,
    conns: u64,
    n: usize,
) -> io::Result<(u64, Vec<u64>)> {
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
