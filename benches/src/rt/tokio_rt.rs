//! The workloads on tokio: the current-thread runtime with a `LocalSet`, and
//! the multi-thread runtime (whose benchmark body runs as a task on a worker).
//! The echo workloads run on the current-thread runtime only (one thread),
//! with `tokio::net`'s `TcpListener` and `TcpStream`.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;
use tokio::sync::{mpsc, Mutex};
use tokio::task::{yield_now, JoinHandle, LocalSet};
use tokio::time::{sleep, timeout};

use crate::harness::{RunError, RunResult};
use crate::proc_status;
use crate::workload::{
    echo_message, echo_value, echo_verify, lock_share, share, task_value, Workload, ECHO_BUF,
    ECHO_MSG, LOCK_TASKS, LONG, SLEEP, YIELDS_PER_TASK,
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
    if let Some(conns) = w.echo_conns() {
        return match flavor {
            Flavor::Local => {
                block_on_net(echo(conns, n)).map_err(|e| RunError::Failed(e.to_string()))
            }
            Flavor::Multi => Err(RunError::Unsupported(
                "the echo workloads run on one thread".into(),
            )),
        };
    }
    Ok(match w {
        Workload::Spawn => block_on(flavor, spawn_all(flavor, n)),
        Workload::Sleepers => block_on(flavor, sleepers(flavor, n)),
        Workload::TimeoutOk => block_on(flavor, timeout_ok(n, true)),
        Workload::TimeoutBare => block_on(flavor, timeout_ok(n, false)),
        Workload::Cancel => block_on(flavor, cancel(flavor, n)),
        Workload::PingPong => block_on(flavor, pingpong(flavor, n)),
        Workload::Lock => block_on(flavor, lock(flavor, n)),
        Workload::Yield => block_on(flavor, yielders(flavor, n)),
        Workload::Echo1 | Workload::Echo64 | Workload::Echo1000 => unreachable!("run above"),
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

/// [`block_on`] on the current-thread runtime, with the I/O driver enabled
/// (only the echo workloads have it, so the others run as before).
fn block_on_net<F: Future>(body: F) -> F::Output {
    let rt = Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build();
    LocalSet::new().block_on(&rt.expect("tokio runtime"), body)
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
        servers.push(tokio::task::spawn_local(echo_server(conn)));
        clients.push(client);
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..)
        .zip(clients)
        .map(|(c, conn)| tokio::task::spawn_local(echo_client(conn, c, conns as u64, n)))
        .collect();
    let mut sum = 0;
    let mut times = Vec::with_capacity(n);
    for t in tasks {
        let (part, part_times) = t.await??;
        sum += part;
        times.extend(part_times);
    }
    let elapsed = start.elapsed();
    for s in servers {
        s.await??; // each ends when its client's stream is dropped
    }
    Ok(RunResult::new(elapsed, sum).with_latency(times))
}

/// Writes back whatever arrives until the peer closes.
async fn echo_server(mut conn: TcpStream) -> io::Result<()> {
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
    mut conn: TcpStream,
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
