//! Threads: `to_thread`, `run_in_executor`, and the loop's thread-safe
//! handle.

mod io_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use io_common::{ms, run};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_for_other_threads_are_send_and_sync() {
    assert_send_sync::<asyncio::LoopHandle>();
    assert_send_sync::<asyncio::ConcurrentFuture<u32>>();
    assert_send_sync::<asyncio::LoopClosed>();
}

#[test]
fn to_thread_runs_the_call_on_a_worker_thread() {
    run(async {
        let me = std::thread::current().id();
        let (v, other) = asyncio::to_thread(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(v, 42);
        assert_ne!(other, me);
    });
}

#[test]
fn the_loop_runs_other_tasks_while_a_thread_blocks() {
    run(async {
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let ticker = asyncio::create_task(async move {
            for _ in 0..5 {
                asyncio::sleep(ms(5)).await.unwrap();
                t.set(t.get() + 1);
            }
        });
        asyncio::to_thread(|| std::thread::sleep(ms(100)))
            .await
            .unwrap();
        assert_eq!(ticks.get(), 5, "the ticker ran while the thread slept");
        ticker.await.unwrap();
    });
}

#[test]
fn a_cancelled_to_thread_returns_at_once_and_the_call_finishes() {
    run(async {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let (started_tx, started_rx) = mpsc::channel();
        let mut task = asyncio::create_task(async move {
            asyncio::to_thread(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(ms(200));
                f.store(true, Ordering::SeqCst);
                "result nobody takes"
            })
            .await
        });
        // Wait (off the loop) until the call is running on its thread.
        asyncio::to_thread(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        let t0 = Instant::now();
        task.cancel();
        assert!((&mut task).await.is_err());
        assert!(task.cancelled());
        assert!(
            t0.elapsed() < ms(150),
            "the awaiter did not wait for the thread"
        );
        assert!(
            !finished.load(Ordering::SeqCst),
            "the call is still running"
        );
        // The call runs to its end on its thread, as in Python.
        let f = finished.clone();
        asyncio::to_thread(move || {
            let t0 = Instant::now();
            while !f.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(ms(5));
            }
        })
        .await
        .unwrap();
        assert!(finished.load(Ordering::SeqCst));
    });
}

#[test]
fn a_to_thread_cancelled_before_it_starts_never_runs() {
    run(async {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let mut task = asyncio::create_task(async move {
            asyncio::to_thread(move || r.store(true, Ordering::SeqCst)).await
        });
        task.cancel(); // before its first step: the call is never submitted
        assert!((&mut task).await.is_err());
        asyncio::to_thread(|| std::thread::sleep(ms(20)))
            .await
            .unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn a_panic_in_the_thread_is_raised_in_the_awaiter() {
    run(async {
        let task = asyncio::create_task(async {
            asyncio::to_thread(|| -> u32 { panic!("boom in a worker") })
                .await
                .unwrap()
        });
        while !task.done() {
            asyncio::sleep(ms(1)).await.unwrap();
        }
        assert!(task.panicked());
        assert!(task.panic_message().unwrap().contains("boom in a worker"));
    });
}

#[test]
fn many_calls_share_a_bounded_pool() {
    run(async {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..100usize {
            let (running, peak) = (running.clone(), peak.clone());
            tasks.push(asyncio::create_task(asyncio::to_thread(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(ms(2));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })));
        }
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap().unwrap();
        }
        assert_eq!(sum, (0..100).sum::<usize>());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let bound = (cpus + 4).min(32);
        let peak = peak.load(Ordering::SeqCst);
        assert!(
            (1..=bound).contains(&peak),
            "peak {peak} over the bound {bound}"
        );
    });
}

#[test]
fn run_in_executor_starts_the_call_at_once() {
    run(async {
        let lp = asyncio::get_running_loop().unwrap();
        let (tx, rx) = mpsc::channel();
        let job = lp.run_in_executor(move || tx.send("started").unwrap());
        // Not awaited yet, and still it runs.
        let got = asyncio::to_thread(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(got, Ok("started"));
        job.await.unwrap();
    });
}

#[test]
fn to_thread_on_a_virtual_clock_waits_for_the_thread() {
    let _dog = io_common::watchdog(Duration::from_secs(20));
    let mut runner = asyncio::Runner::builder().virtual_time(true).build();
    let v = runner.run(async { asyncio::to_thread(|| 7).await.unwrap() });
    assert_eq!(v, 7);
}

#[test]
fn call_soon_threadsafe_wakes_an_idle_loop() {
    // Without any I/O the loop parks its thread; with a socket registered
    // it waits in epoll. Both must be woken by another thread.
    for with_reactor in [false, true] {
        run(async move {
            let _l = if with_reactor {
                Some(
                    asyncio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .unwrap(),
                )
            } else {
                None
            };
            let handle = asyncio::get_running_loop().unwrap().handle();
            let slot = Arc::new(Mutex::new((false, None::<Waker>)));
            let s = slot.clone();
            let thread = std::thread::spawn(move || {
                std::thread::sleep(ms(30));
                handle
                    .call_soon_threadsafe(move || {
                        // On the loop's thread: wake the waiting task.
                        let mut s = s.lock().unwrap();
                        s.0 = true;
                        if let Some(w) = s.1.take() {
                            w.wake();
                        }
                    })
                    .unwrap();
            });
            let t0 = Instant::now();
            // Nothing else to do: the loop is idle until the callback.
            std::future::poll_fn(|cx| {
                let mut s = slot.lock().unwrap();
                if s.0 {
                    Poll::Ready(())
                } else {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            assert!(t0.elapsed() < Duration::from_secs(5));
            thread.join().unwrap();
        });
    }
}

#[test]
fn call_soon_threadsafe_runs_callbacks_in_order_on_the_loop_thread() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let loop_thread = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        asyncio::to_thread(move || {
            for i in 0..10 {
                let tx = tx.clone();
                handle
                    .call_soon_threadsafe(move || {
                        assert_eq!(std::thread::current().id(), loop_thread);
                        tx.send(i).unwrap();
                    })
                    .unwrap();
            }
        })
        .await
        .unwrap();
        // The callbacks were queued before the thread's result: they ran.
        let got: Vec<i32> = rx.try_iter().collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn call_soon_threadsafe_on_a_closed_loop_is_an_error() {
    let handle = run(async { asyncio::get_running_loop().unwrap().handle() });
    assert!(handle.is_closed());
    assert_eq!(handle.call_soon_threadsafe(|| {}), Err(asyncio::LoopClosed));
    assert!(handle.run_coroutine_threadsafe(|| async {}).is_err());
}

#[test]
fn run_coroutine_threadsafe_from_a_foreign_thread() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let got = asyncio::to_thread(move || {
            let fut = handle
                .run_coroutine_threadsafe(|| async {
                    // A !Send future is fine: it is made on the loop.
                    let rc = std::rc::Rc::new(20);
                    asyncio::sleep(ms(5)).await.unwrap();
                    *rc + 1
                })
                .unwrap();
            assert!(fut.wait_timeout(Duration::from_secs(5)));
            assert!(fut.done());
            fut.result()
        })
        .await
        .unwrap();
        assert_eq!(got.unwrap(), 21);
    });
}

// test_tasks: test_run_coroutine_threadsafe_with_timeout (the wait for the
// result times out, and cancel() on the concurrent future cancels its task;
// and what concurrent.futures does: cancel() ends the future at once)
#[test]
fn a_concurrent_future_can_cancel_its_task() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let (seen_tx, seen_rx) = mpsc::channel();
        let (got, seen) = asyncio::to_thread(move || {
            let fut = handle
                .run_coroutine_threadsafe(move || async move {
                    let seen = match asyncio::sleep(Duration::from_secs(60)).await {
                        Ok(()) => "slept",
                        Err(_) => "cancelled",
                    };
                    seen_tx.send(seen).unwrap();
                    seen
                })
                .unwrap();
            assert!(!fut.wait_timeout(ms(20)));
            assert!(fut.cancel());
            assert!(fut.done());
            assert!(fut.cancel(), "cancelling again still says cancelled");
            (fut.result(), seen_rx.recv().unwrap())
        })
        .await
        .unwrap();
        // The future ended cancelled, though the task handled the
        // cancellation and returned a value.
        assert!(got.is_err(), "{got:?}");
        assert_eq!(seen, "cancelled");
    });
}

// test_tasks: test_run_coroutine_threadsafe_task_cancelled (a task that
// ends cancelled by itself cancels the future)
#[test]
fn a_task_ending_cancelled_cancels_its_concurrent_future() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let (returned, propagated) = asyncio::to_thread(move || {
            // It returns a value with its own cancel still pending.
            let returned = handle
                .run_coroutine_threadsafe(|| async {
                    asyncio::sleep(ms(5)).await.unwrap();
                    asyncio::current_task().unwrap().cancel();
                    3
                })
                .unwrap()
                .result();
            // It propagates the cancellation its next await raised.
            let propagated = handle
                .run_coroutine_threadsafe(|| async {
                    asyncio::current_task().unwrap().cancel();
                    asyncio::sleep(ms(5)).await?;
                    Ok::<_, asyncio::CancelledError>(3)
                })
                .unwrap()
                .result();
            (returned, propagated)
        })
        .await
        .unwrap();
        assert!(returned.is_err(), "{returned:?}");
        assert!(propagated.is_err(), "{propagated:?}");
    });
}

// Not in test_tasks: test_run_coroutine_threadsafe_task_cancelled the other
// way: a task that handles a cancel and returns normally completes it
#[test]
fn a_task_that_handles_its_cancel_completes_its_concurrent_future() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let got = asyncio::to_thread(move || {
            handle
                .run_coroutine_threadsafe(|| async {
                    let me = asyncio::current_task().unwrap();
                    me.cancel();
                    let r = asyncio::sleep(ms(5)).await;
                    assert!(r.is_err());
                    me.uncancel();
                    7
                })
                .unwrap()
                .result()
        })
        .await
        .unwrap();
        assert_eq!(got.unwrap(), 7);
    });
}

#[test]
fn a_concurrent_future_of_a_closed_loop_ends_cancelled() {
    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let thread = std::thread::spawn(move || {
        let handle: asyncio::LoopHandle = rx.recv().unwrap();
        let fut = handle
            .run_coroutine_threadsafe(|| async {
                asyncio::sleep(Duration::from_secs(60)).await?;
                Ok::<_, asyncio::CancelledError>(())
            })
            .unwrap();
        b.wait(); // the task is submitted: let the loop close
        fut.result()
    });
    run(async move {
        let handle = asyncio::get_running_loop().unwrap().handle();
        tx.send(handle).unwrap();
        asyncio::to_thread(move || barrier.wait()).await.unwrap();
        asyncio::sleep(ms(10)).await.unwrap();
    });
    // The loop closed with the task pending and cancelled it: the task
    // ended cancelled, so the foreign thread's future is cancelled too (as
    // asyncio's chained future is), and the thread is not left blocked.
    let out = thread.join().unwrap();
    assert!(out.is_err(), "{out:?}");
}

#[test]
fn closing_the_loop_waits_for_a_cleanup_that_awaits_a_thread() {
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let d = done.clone();
    run(async move {
        let _worker = asyncio::create_task(async move {
            if asyncio::sleep(Duration::from_secs(3600)).await.is_err() {
                // Cleanup after the cancellation: a checkpoint reached after
                // the delivery runs normally, even while the loop closes.
                let v = asyncio::to_thread(|| {
                    std::thread::sleep(ms(30));
                    1
                })
                .await
                .unwrap();
                d.set(v == 1);
            }
        });
        asyncio::sleep(ms(5)).await.unwrap();
        // Return with the worker still sleeping: the loop's close cancels it.
    });
    assert!(
        done.get(),
        "the cleanup's call finished before the loop closed"
    );
}

/// Sets its flag when the thread that owns it exits (a thread-local's
/// destructor runs as the thread ends).
struct OnExit(Arc<AtomicBool>);

impl Drop for OnExit {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn closing_the_loop_joins_the_worker_threads() {
    let finished = Arc::new(AtomicBool::new(false));
    let exited = Arc::new(AtomicBool::new(false));
    let (f, e) = (finished.clone(), exited.clone());
    run(async move {
        let (started_tx, started_rx) = mpsc::channel();
        let mut task = asyncio::create_task(asyncio::to_thread(move || {
            ON_EXIT.with(|x| *x.borrow_mut() = Some(OnExit(e)));
            started_tx.send(()).unwrap();
            std::thread::sleep(ms(50));
            f.store(true, Ordering::SeqCst);
        }));
        asyncio::to_thread(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        task.cancel();
        assert!((&mut task).await.is_err(), "the awaiter returned at once");
        // Return while the call still runs on its thread.
    });
    // As asyncio.run shuts its default executor down: the call finished and
    // its thread exited before the loop's close returned.
    assert!(finished.load(Ordering::SeqCst), "the call finished");
    assert!(
        exited.load(Ordering::SeqCst),
        "the worker thread was joined"
    );
}

#[test]
fn close_drops_stuck_tasks_before_it_joins_the_workers() {
    // A worker waits for a channel whose sender only a stuck task holds (it
    // awaits a foreign future, which no cancellation reaches). Closing must
    // drop that task's future first, or the join would wait for ever.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        run(async {
            let (tx, rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = mpsc::channel();
            let _worker = asyncio::create_task(asyncio::to_thread(move || {
                started_tx.send(()).unwrap();
                // Returns once every sender is gone.
                let _ = rx.recv();
            }));
            let _stuck = asyncio::create_task(async move {
                let _keep = tx;
                std::future::pending::<()>().await;
            });
            asyncio::to_thread(move || started_rx.recv().unwrap())
                .await
                .unwrap();
        });
        done_tx.send(()).unwrap();
    });
    // A hang guard, not a timing assertion: without the fix, close waits
    // for its full join limit (minutes).
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("closing the loop returned once the stuck task was dropped");
}

// test_tasks: test_run_coroutine_threadsafe_with_exception (the task's
// panic is raised again in the thread that asks for the result)
#[test]
fn run_coroutine_threadsafe_raises_the_tasks_panic_in_the_caller() {
    run(async {
        let handle = asyncio::get_running_loop().unwrap().handle();
        let msg = asyncio::to_thread(move || {
            let fut = handle
                .run_coroutine_threadsafe(|| async {
                    asyncio::sleep(ms(5)).await.unwrap();
                    if asyncio::current_task().is_some() {
                        panic!("Fail!");
                    }
                    3
                })
                .unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.result()));
            let payload = r.expect_err("the task's panic is raised again");
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        })
        .await
        .unwrap();
        assert_eq!(msg, "Fail!");
    });
}
