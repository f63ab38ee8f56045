//! # asyncio for Rust
//!
//! Python's asyncio task model — an event loop, tasks, cancellation,
//! timeouts and shields — as a native Rust runtime. Its defining feature is
//! asyncio's cancellation: **a cancellation arrives as an error at an await
//! point**, so a task can clean up with more awaits, and timeouts and shields
//! behave exactly as asyncio documents them.
//!
//! ```
//! use std::time::Duration;
//! use asyncio::CancelledError;
//!
//! async fn delay(seconds: u64) -> Result<u64, CancelledError> {
//!     asyncio::sleep(Duration::from_secs(seconds)).await?; // `?` propagates a cancellation
//!     Ok(seconds)
//! }
//!
//! # asyncio::Runner::builder().virtual_time(true).build().run(async {
//! let mut task = asyncio::create_task(delay(2));
//! match asyncio::wait_for(&mut task, Duration::from_secs(1)).await {
//!     Ok(result) => println!("{}", result.unwrap().unwrap()),
//!     Err(asyncio::TimeoutError) => println!("Got a timeout! cancelled: {}", task.cancelled()),
//! }
//! assert!(task.cancelled());
//! # });
//! ```
//!
//! The loop is single-threaded, like asyncio's: futures need not be `Send`
//! (an `Rc<RefCell<_>>` inside a task is fine), and task handles are
//! `!Send`, so using one on the wrong thread is a compile error.
//!
//! # Running
//!
//! [`run`] creates a loop on the current thread, runs a future as the main
//! task, then cancels whatever tasks are left, lets them clean up, and closes
//! the loop. [`Runner`] keeps one loop across several runs, and can run on a
//! **virtual clock** — time jumps to the next timer whenever nothing is ready,
//! so tests of timeouts run in microseconds and always give the same answer.
//! `#[asyncio::main]` and `#[asyncio::test]` (with `virtual_time`) wrap an
//! `async fn` in a runner.
//!
//! ```
//! use std::time::Duration;
//! let mut runner = asyncio::Runner::builder().virtual_time(true).build();
//! let elapsed = runner.run(async {
//!     let lp = asyncio::get_running_loop().unwrap();
//!     let t0 = lp.time();
//!     asyncio::sleep(Duration::from_secs(3600)).await.unwrap(); // an hour, instantly
//!     lp.time() - t0
//! });
//! assert_eq!(elapsed, Duration::from_secs(3600));
//! ```
//!
//! # The cancellation model
//!
//! **Await points are checkpoints.** Every await point of this crate —
//! [`sleep`], awaiting a [`Task`], [`shield`], [`fn@checkpoint`], a future made
//! [`cancellable`] — returns `Err(`[`CancelledError`]`)` when the code
//! awaiting it is cancelled. Foreign futures are not checkpoints; wrap them
//! in [`cancellable`] to make them one.
//!
//! **The error is a live token.** Propagating a `CancelledError` (with `?`,
//! inside your own error type, inside `Box<dyn Error + Send + Sync>`) means
//! "still being cancelled"; dropping it means the cancellation was handled
//! — Python's `except CancelledError: pass`. A task whose future completes
//! while a token delivered to it is still alive ends *cancelled*; one that
//! dropped it ends with its output.
//!
//! ```
//! use std::time::Duration;
//! # asyncio::Runner::builder().virtual_time(true).build().run(async {
//! let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
//! let l = log.clone();
//! let mut worker = asyncio::create_task(async move {
//!     if let Err(cancelled) = asyncio::sleep(Duration::from_secs(10)).await {
//!         // Clean up with more awaits: a checkpoint reached after the
//!         // cancellation was delivered runs normally.
//!         asyncio::sleep(Duration::from_secs(1)).await.unwrap();
//!         l.borrow_mut().push("cleaned up");
//!         return Err(cancelled); // still cancelled: the task ends cancelled
//!     }
//!     Ok(())
//! });
//! asyncio::sleep(Duration::from_secs(1)).await.unwrap();
//! worker.cancel();
//! assert!((&mut worker).await.is_err());
//! assert!(worker.cancelled());
//! assert_eq!(*log.borrow(), ["cleaned up"]);
//! # });
//! ```
//!
//! **Delivery is edge-triggered**, as in asyncio: [`TaskRef::cancel`]
//! delivers one request to every await point suspended in the task right
//! now (all branches of a `join!`); if none is suspended (the task has not
//! started, or is ready to run), the next one reached takes it, yields once
//! and raises on the next turn. A task cancelled before its first step never
//! runs its body. [`TaskRef::cancelling`] counts requests and
//! [`TaskRef::uncancel`] takes one back.
//!
//! **Scopes.** [`timeout`] and [`wait_for`] open an inner scope: on expiry
//! they cancel only the await points inside them, wait for the inner code to
//! finish, and report [`TimeoutError`] if the cancellation propagated out of
//! it — or return its output if it swallowed the cancellation. A
//! cancellation from outside (a `cancel()`, an enclosing timeout) is never
//! turned into a `TimeoutError`, even when it coincides with the deadline.
//!
//! **Tasks awaiting tasks.** Awaiting a task forwards a cancellation of the
//! awaiter to it and waits for it to finish (asyncio's delegation). If it
//! swallowed the cancellation and returned a value, the awaiter gets the
//! value. [`shield`] does not forward: the awaiter is cancelled at once and
//! the task runs on.
//!
//! **Order.** The loop runs asyncio's turns: everything that was ready when
//! a turn began runs in FIFO order, then the timers due (deadline order,
//! FIFO among equal deadlines); what those schedule runs on the next turn.
//! Programs print their lines in asyncio's order, not merely the same lines
//! — the crate's conformance suite compares thousands of generated programs
//! with CPython 3.13, event by event.
//!
//! # asyncio names in this crate
//!
//! | Python asyncio | this crate |
//! |---|---|
//! | `asyncio.run(main())` | [`run`]`(main())`, `#[asyncio::main]` |
//! | `asyncio.Runner` | [`Runner`] (with [`RunnerBuilder::virtual_time`]) |
//! | `asyncio.create_task(coro, name=…)` | [`create_task`]`(fut)`, [`Task::builder`]`().name(…).spawn(fut)` |
//! | eager tasks (3.12 `eager_task_factory`) | [`Task::builder`]`().eager_start(true).spawn(fut)` |
//! | `await task` | `task.await` / `(&mut task).await` → `Result<T, CancelledError>`; [`Task::flatten`] for `Result<U, E>` tasks |
//! | several awaiters of one task | [`TaskRef::wait`] |
//! | `task.cancel(msg)` | [`TaskRef::cancel`], [`TaskRef::cancel_with`] |
//! | `task.cancelled()`, `done()`, `cancelling()`, `uncancel()` | same names on [`TaskRef`] |
//! | `task.get_name()`, `set_name()` | [`TaskRef::name`], [`TaskRef::set_name`] |
//! | `task.add_done_callback(f)` | [`TaskRef::add_done_callback`] |
//! | — (cooperative only) | [`TaskRef::abort`] drops the future at once |
//! | `asyncio.sleep(d)`, `sleep(0)` | [`sleep`]`(d)`, [`sleep`]`(Duration::ZERO)` / [`fn@checkpoint`] |
//! | `asyncio.wait_for(aw, t)` | [`wait_for`]`(fut, t)` → `Result<F::Output, TimeoutError>` |
//! | `async with asyncio.timeout(d) as cm:` | [`timeout`]`(d, fut)`, [`Timeout::handle`] → [`TimeoutHandle`] |
//! | `asyncio.timeout_at(when)` | [`timeout_at`] |
//! | `cm.reschedule(when)`, `cm.expired()`, `cm.when()` | [`TimeoutHandle`] methods |
//! | `asyncio.shield(task)` | [`shield`]`(&mut task)`, or [`shield`]`(&task_ref)` to share |
//! | `asyncio.CancelledError`, `TimeoutError` | [`CancelledError`], [`TimeoutError`] |
//! | `except CancelledError: pass` | drop the error (or [`CancelledError::handled`]) |
//! | `raise CancelledError()` | `return Err(`[`CancelledError::new`]`())` |
//! | `asyncio.current_task()`, `all_tasks()` | [`current_task`], [`all_tasks`] |
//! | `asyncio.get_running_loop()` | [`get_running_loop`] → [`EventLoop`] |
//! | `loop.time()`, `call_soon`, `call_later`, `call_at` | [`EventLoop`] methods, [`Handle`], [`TimerHandle`] |
//! | `asyncio.Event()`: `set`, `clear`, `is_set`, `await wait()` | [`Event`] |
//! | `asyncio.Lock()`, `async with lock:` | [`Lock`]: `let _guard = lock.acquire().await?;` ([`LockGuard`] releases on drop) |
//! | `asyncio.Semaphore(n)`, `BoundedSemaphore(n)` | [`Semaphore`], [`BoundedSemaphore`] ([`SemaphorePermit`] releases on drop) |
//! | `ValueError` from `BoundedSemaphore.release()` | [`ReleasedTooManyTimes`] |
//! | `asyncio.Condition(lock)`: `wait`, `wait_for`, `notify(n)`, `notify_all` | [`Condition`]: `cond.wait(&mut guard)`, `cond.notify(&guard, n)` |
//! | `asyncio.Barrier(n)`: `wait`, `reset`, `abort`, `BrokenBarrierError` | [`Barrier`], [`BarrierWaitError`], [`BrokenBarrierError`] |
//! | `asyncio.Queue(maxsize)`, `LifoQueue`, `PriorityQueue` | [`Queue`], [`LifoQueue`], [`PriorityQueue`] (`maxsize` 0: unbounded) |
//! | `put`, `get`, `put_nowait`, `get_nowait`, `task_done`, `join`, `shutdown(immediate)` | same names on [`Queue`] |
//! | `QueueEmpty`, `QueueFull`, `QueueShutDown` | [`QueueEmpty`], [`QueueFull`], [`QueueShutDown`] (in [`GetNowaitError`], [`PutNowaitError`], [`GetError`], [`PutError`]) |
//! | `asyncio.to_thread(f)`, `loop.run_in_executor(None, f)` | [`to_thread`]`(f)`, [`EventLoop::run_in_executor`] → [`ToThread`] |
//! | `loop.call_soon_threadsafe(f)` (from another thread) | [`EventLoop::handle`] → [`LoopHandle::call_soon_threadsafe`] |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` | [`LoopHandle::run_coroutine_threadsafe`]`(\|\| fut)` → [`ConcurrentFuture`] |
//! | `await asyncio.open_connection(host, port)` | [`open_connection`]`(host, port)` → ([`StreamReader`], [`StreamWriter`]) |
//! | `await asyncio.start_server(cb, host, port)` | [`start_server`]`(handler, host, port)` → [`Server`] |
//! | `server.sockets`, `close()`, `wait_closed()`, `serve_forever()`, `close_clients()` | [`Server::local_addrs`], same names on [`Server`] |
//! | `reader.read(n)`, `read()`, `readline()`, `readexactly(n)`, `readuntil(sep)`, `at_eof()` | [`StreamReader`]: same names, `read()` is `read_to_end()` |
//! | `IncompleteReadError`, `LimitOverrunError` | [`IncompleteReadError`], [`LimitOverrunError`] (inside the `io::Error`) |
//! | `writer.write(b)`, `await drain()`, `close()`, `await wait_closed()`, `write_eof()` | same names on [`StreamWriter`] |
//! | `loop.sock_connect`/`sock_recv`/`sock_sendall`, `create_datagram_endpoint` | [`net::TcpStream`], [`net::TcpListener`], [`net::UdpSocket`] |
//! | `loop.add_signal_handler(sig, cb)`, `remove_signal_handler(sig)` | [`EventLoop::add_signal_handler`], [`EventLoop::remove_signal_handler`] (Unix) |
//! | `KeyboardInterrupt` from `asyncio.run` on Ctrl-C | [`run`] exits with status 130; [`Runner::run`] panics |
//! | `await asyncio.create_subprocess_exec(prog, *args)`, `create_subprocess_shell(cmd)` | [`create_subprocess_exec`]`(prog, args)`, [`create_subprocess_shell`]`(cmd)` → [`Process`] (all three streams piped); [`Process::spawn`] for a `std::process::Command` |
//! | `proc.wait()`, `communicate(input)`, `kill()`, `terminate()`, `send_signal(sig)`, `returncode`, `pid` | same names on [`Process`] |
//! | `proc.stdin`, `proc.stdout`, `proc.stderr` | fields of [`Process`]: a [`StreamWriter`], two [`StreamReader`]s |
//! | `await asyncio.open_unix_connection(path)` | [`open_unix_connection`]`(path)` → ([`StreamReader`], [`StreamWriter`]) |
//! | `await asyncio.start_unix_server(cb, path)` | [`start_unix_server`]`(handler, path)` → [`Server`] ([`Server::path`]) |
//! | `loop.sock_*` on a Unix socket | [`net::UnixStream`], [`net::UnixListener`] |
//! | — (Rust's I/O traits) | `futures_io::AsyncRead`/`AsyncBufRead` on [`StreamReader`], `AsyncWrite` on [`StreamWriter`], both on [`net::TcpStream`] and [`net::UnixStream`] |
//! | `CancelledError` out of an I/O call | an `io::Error` wrapping it: [`io::cancelled`], [`io::into_cancelled`] |
//! | `await asyncio.gather(*aws)` | [`gather`](fn@gather)`(iter)`, [`gather!`]`(a, b, …)` → `Result<Vec<T>, CancelledError>` / a tuple |
//! | `gather(…, return_exceptions=True)` | [`Gather::return_exceptions`] → an [`Outcome`] per child |
//! | `gather` over tasks that raise | [`try_gather`](fn@try_gather), [`try_gather!`] over `Result` outputs: the first `Err` |
//! | `asyncio.wait(aws, timeout, return_when)` | [`wait`]`(tasks, timeout, `[`ReturnWhen`]`)` → `(done, pending)` |
//! | `asyncio.as_completed(aws, timeout)` | [`as_completed`]: [`AsCompleted::next`] yields each task as it finishes |
//! | `async with asyncio.TaskGroup() as tg:` | [`TaskGroup::run`]`(\|tg\| async move { … })` |
//! | `tg.create_task(coro)` | [`TaskGroup::create_task`] (children return `Result<T, E>`) |
//! | `ExceptionGroup` from a `TaskGroup` | [`TaskGroupError::Failed`]: a [`Failure`] per child error or panic |
//! | "Task exception was never retrieved" | a panic in a task nobody awaited, sent to the exception handler |
//!
//! # Differences from asyncio
//!
//! Each is deliberate, and masked by name in the conformance suite.
//!
//! - **A handled cancellation is over** (`handled-cancel-is-over`). Whether a
//!   timeout reports `TimeoutError` is decided by whether its cancellation is
//!   still propagating (token liveness), not by the `cancelling()` count. In
//!   asyncio, a `cancel()` that a task swallowed without calling `uncancel()`
//!   leaves the count raised and silently stops every later timeout in that
//!   task from converting; here later timeouts still report `TimeoutError`.
//! - **A pending cancel wins over an error output** (`pending-cancel-wins`).
//!   A task that cancels itself and then completes before reaching an await
//!   point ends cancelled whatever its output. asyncio lets a *raised*
//!   exception win over the pending cancel; a Rust task's output is an
//!   arbitrary `T`, and an `Err` is just a value to the runtime.
//! - **A cancel requested before a timeout was entered is outside it**
//!   (`earlier-cancel-is-outside`). If such a request is still pending when
//!   the timeout expires, it rides on the same token and the timeout lets
//!   `CancelledError` through. asyncio compares `cancelling()` counts: the
//!   earlier request was counted at entry, so it converts to `TimeoutError`
//!   and re-delivers its own request at the next await.
//! - **Panics are exceptions with no type**: awaiting a task that panicked
//!   panics in the awaiter with the same payload.
//! - **`wait_for(plain_future, Duration::ZERO)`** never polls the future and
//!   reports `TimeoutError` three turns later, as asyncio does for a
//!   coroutine; a cancellation of the caller during those turns is delivered
//!   at its next await point rather than out of the `wait_for`.
//! - **I/O readiness wakes a task on the same turn** as the event (asyncio
//!   runs a transport callback, which then completes a future: one turn
//!   later). A [`StreamReader`] reads from its socket only when a call needs
//!   more data, where asyncio's protocol reads eagerly. With a reactor
//!   running, real-clock timers are rounded up to whole milliseconds.
//! - **A virtual-time loop reports a deadlock** instead of waiting for ever:
//!   with no task ready, no timer armed and nothing in flight, it panics
//!   after [`RunnerBuilder::deadlock_after`] of real time (10 s by default),
//!   naming the tasks still waiting. asyncio (and a real-clock loop here)
//!   waits, since another thread might still wake it.
//! - **Closing never hangs on a task that cannot see its cancellation** (one
//!   blocked in a foreign future that is not a checkpoint): once the loop is
//!   idle, such a task is reported and dropped.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod cancel;
mod group;
pub mod io;
pub mod net;
mod queue;
mod runtime;
#[cfg(unix)]
mod signal;
mod streams;
#[cfg(unix)]
pub mod subprocess;
mod sync;
#[cfg(unix)]
mod sys;
mod task;
mod threads;
mod time;
mod util;

pub use asyncio_macros::{main, test};
pub use cancel::{
    cancellable, checkpoint, shield, CancelRecord, Cancellable, CancelledError, Shield,
    ShieldFuture, ShieldTarget,
};
pub use group::{
    as_completed, gather, gather_tuple, try_gather, try_gather_tuple, wait, AsCompleted,
    AsCompletedError, AsTask, Child, ChildFailed, Children, Failure, Gather, GatherFuture,
    GatherOutcomes, IntoChild, Next, Outcome, ReturnWhen, TaskGroup, TaskGroupError, TaskGroupRun,
    TryChildren, TryGather, WaitTasks,
};
pub use queue::{
    GetError, GetNowaitError, LifoQueue, PriorityQueue, PutError, PutNowaitError, Queue,
    QueueEmpty, QueueFull, QueueGet, QueueJoin, QueuePut, QueueShutDown, TaskDoneTooManyTimes,
};
pub use runtime::{
    get_running_loop, run, EventLoop, ExceptionContext, Handle, NoRunningLoop, Runner,
    RunnerBuilder, TimerHandle,
};
pub use streams::{
    open_connection, start_server, IncompleteReadError, LimitOverrunError, Server, StreamReader,
    StreamWriter,
};
#[cfg(unix)]
pub use streams::{open_unix_connection, start_unix_server};
#[cfg(unix)]
pub use subprocess::{create_subprocess_exec, create_subprocess_shell, Process};
pub use sync::{
    Barrier, BarrierWaitError, BoundedSemaphore, BrokenBarrierError, Condition, ConditionWait,
    Event, EventWait, Lock, LockAcquire, LockGuard, ReleasedTooManyTimes, Semaphore,
    SemaphoreAcquire, SemaphorePermit,
};
pub use task::{
    all_tasks, create_task, current_task, Flatten, FlattenFuture, Join, Task, TaskBuilder, TaskRef,
    Wait, WaitFuture,
};
pub use threads::{to_thread, ConcurrentFuture, LoopClosed, LoopHandle, ToThread};
pub use time::{
    sleep, sleep_until, timeout, timeout_at, wait_for, InvalidStateError, Sleep, Timeout,
    TimeoutError, TimeoutHandle,
};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
