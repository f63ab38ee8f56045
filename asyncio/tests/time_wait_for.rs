//! `wait_for`: results, expiry that cancels and waits, swallowed
//! cancellations, the zero-timeout special case, no timeout, outside cancels.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use asyncio::{
    cancellable, checkpoint, create_task, current_task, get_running_loop, sleep, wait_for,
    CancelledError, Task, TaskRef, TimeoutError,
};
use common::*;

/// asyncio's `_EPSILON`: a timeout that is positive but tiny.
const EPSILON: Duration = Duration::from_micros(100);

/// test_waitfor's SlowTask: runs until `clock + 200 ms`, ignoring cancels.
async fn slow_task(exited: Rc<Cell<bool>>) {
    let exit_at = now() + ms(200);
    loop {
        let n = now();
        if n >= exit_at {
            break;
        }
        let _ = sleep(exit_at - n).await;
    }
    exited.set(true);
}

// test_waitfor: test_wait_for_blocking
#[asyncio::test(virtual_time)]
async fn no_timeout_gives_the_result() {
    let r = wait_for(async { "done" }, None).await;
    assert_eq!(r, Ok("done"));
}

// new (DESIGN §4): None means no timeout, however long the work takes
#[asyncio::test(virtual_time)]
async fn none_waits_as_long_as_it_takes() {
    let clock = Clock::start();
    let r = wait_for(sleep(secs(3600)), None).await;
    assert!(matches!(r, Ok(Ok(()))));
    assert_eq!(clock.elapsed(), secs(3600));
}

// new: the work finishes before the deadline
#[asyncio::test(virtual_time)]
async fn finishes_in_time() {
    let clock = Clock::start();
    let r = wait_for(
        async {
            sleep(secs(1)).await?;
            Ok::<_, CancelledError>(5)
        },
        secs(2),
    )
    .await;
    assert_eq!(r.unwrap().unwrap(), 5);
    assert_eq!(clock.elapsed(), secs(1));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_waitfor: test_wait_for
#[asyncio::test(virtual_time)]
async fn expiry_cancels_the_task_and_waits_for_it() {
    let running = Rc::new(Cell::new(None::<bool>));
    let r = running.clone();
    let clock = Clock::start();
    let mut fut = create_task(async move {
        r.set(Some(true));
        let res = sleep(secs(3600)).await;
        r.set(Some(false));
        res.map(|()| "done")
    });
    let res = wait_for(&mut fut, ms(100)).await;
    assert!(matches!(res, Err(TimeoutError)));
    assert!(fut.done() && fut.cancelled());
    assert_eq!(running.get(), Some(false));
    assert_eq!(clock.elapsed(), ms(100));
}

// test_waitfor: test_wait_for_race_condition
#[asyncio::test(virtual_time)]
async fn a_task_finishing_on_the_next_turn_beats_the_deadline() {
    let mut t = create_task(async { "ok" });
    let r = wait_for(&mut t, ms(200)).await;
    assert_eq!(r.unwrap().unwrap(), "ok");
    assert!(!t.cancelled());
}

// test_waitfor: test_wait_for_cancellation_race_condition
#[asyncio::test(virtual_time)]
async fn inner_swallow_returns_its_value() {
    let clock = Clock::start();
    let r = wait_for(
        async {
            assert!(sleep(secs(1)).await.is_err());
            1
        },
        ms(10),
    )
    .await;
    assert_eq!(r, Ok(1));
    assert_eq!(clock.elapsed(), ms(10));
}

// test_waitfor: test_wait_for_cancel_suppressed
#[asyncio::test(virtual_time)]
async fn inner_swallow_returns_42() {
    async fn return_42() -> Option<i32> {
        match sleep(secs(10)).await {
            Err(_) => Some(42),
            Ok(()) => None,
        }
    }
    let clock = Clock::start();
    assert_eq!(wait_for(return_42(), ms(100)).await, Ok(Some(42)));
    assert_eq!(clock.elapsed(), ms(100));
}

// new (ASYNCIO-SEMANTICS §6): a task that swallows the expiry gives its value
#[asyncio::test(virtual_time)]
async fn a_task_that_swallows_the_expiry_gives_its_value() {
    let clock = Clock::start();
    let mut t = create_task(async {
        if sleep(secs(10)).await.is_err() {
            sleep(secs(1)).await.unwrap();
            return "late but fine";
        }
        "slept"
    });
    let r = wait_for(&mut t, secs(2)).await;
    assert_eq!(r.unwrap().unwrap(), "late but fine");
    assert!(!t.cancelled());
    assert_eq!(clock.elapsed(), secs(3));
}

// test_waitfor: test_asyncio_wait_for_timeout
#[asyncio::test(virtual_time)]
async fn wait_for_a_slow_task_that_ignores_cancels() {
    let exited = Rc::new(Cell::new(false));
    let clock = Clock::start();
    let r = wait_for(slow_task(exited.clone()), ms(100)).await;
    assert_eq!(r, Ok(()), "the work swallowed the cancellation");
    assert!(exited.get());
    assert_eq!(clock.elapsed(), ms(200));
}

// test_waitfor: test_asyncio_wait_for_cancelled
#[asyncio::test(virtual_time)]
async fn cancel_the_task_running_wait_for_a_slow_task() {
    let exited = Rc::new(Cell::new(false));
    let clock = Clock::start();
    let mut waiter = create_task(wait_for(slow_task(exited.clone()), ms(400)));
    checkpoint().await.unwrap();
    waiter.cancel();
    let r = (&mut waiter).await;
    assert!(exited.get());
    assert_eq!(clock.elapsed(), ms(200));
    assert!(matches!(r, Ok(Ok(()))), "{r:?}");
    assert!(!waiter.cancelled());
    assert_eq!(waiter.cancelling(), 1);
}

// test_waitfor: test_wait_for_waits_for_task_cancellation
#[asyncio::test(virtual_time)]
async fn expiry_waits_for_the_task_to_finish_its_cleanup() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let clock = Clock::start();
    let mut inner = create_task(async move {
        let r = sleep(secs(10)).await;
        if r.is_err() {
            let _ = sleep(EPSILON).await;
        }
        d.set(true);
        r
    });
    let r = wait_for(&mut inner, EPSILON).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(done.get());
    assert!(inner.cancelled());
    assert_eq!(clock.elapsed(), EPSILON * 2);
}

// test_waitfor: test_wait_for_waits_for_task_cancellation_w_timeout_0
#[asyncio::test(virtual_time)]
async fn zero_timeout_waits_for_the_task_to_finish_its_cleanup() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let clock = Clock::start();
    let foo = create_task(async move {
        let mut inner = create_task(async move {
            let r = sleep(secs(10)).await;
            if r.is_err() {
                let _ = sleep(EPSILON).await;
            }
            d.set(true);
            r
        });
        sleep(EPSILON).await.unwrap();
        wait_for(&mut inner, Duration::ZERO).await.map(|_| ())
    });
    assert!(matches!(foo.await.unwrap(), Err(TimeoutError)));
    assert!(done.get());
    assert_eq!(clock.elapsed(), EPSILON * 2);
}

// test_waitfor: test_wait_for_timeout_less_then_0_or_0_future_done
#[asyncio::test(virtual_time)]
async fn zero_timeout_on_a_done_task_gives_its_result() {
    let mut t = create_task(async { "done" });
    checkpoint().await.unwrap();
    assert!(t.done());
    let r = wait_for(&mut t, Duration::ZERO).await;
    assert_eq!(r.unwrap().unwrap(), "done");
    assert!(!t.cancelled());
}

// test_waitfor: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started (as a task)
#[asyncio::test(virtual_time)]
async fn zero_timeout_on_an_unstarted_task_never_runs_it() {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let mut t = create_task(async move { s.set(true) });
    let r = wait_for(&mut t, Duration::ZERO).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(!started.get());
    assert!(t.cancelled());
}

// test_waitfor: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started (a plain future)
#[asyncio::test(virtual_time)]

async fn zero_timeout_on_a_plain_future_never_runs_it() {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let r = wait_for(async move { s.set(true) }, Duration::ZERO).await;
    assert!(matches!(r, Err(TimeoutError)), "{r:?}");
    assert!(!started.get(), "DESIGN §4: cancelled before it runs a line");
}

// test_waitfor: test_wait_for_timeout_less_then_0_or_0
#[asyncio::test(virtual_time)]
async fn zero_timeout_on_a_running_task_cancels_it() {
    let running = Rc::new(Cell::new(None::<bool>));
    let r = running.clone();
    let clock = Clock::start();
    let mut fut = create_task(async move {
        r.set(Some(true));
        let res = sleep(secs(10)).await;
        r.set(Some(false));
        res.map(|()| "done")
    });
    checkpoint().await.unwrap();
    assert_eq!(running.get(), Some(true));
    let res = wait_for(&mut fut, Duration::ZERO).await;
    assert!(matches!(res, Err(TimeoutError)));
    assert!(fut.done() && fut.cancelled());
    assert_eq!(running.get(), Some(false));
    assert_eq!(clock.elapsed(), secs(0));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

/// test_waitfor's `_test_cancel_wait_for`.
async fn cancel_wait_for(timeout: Option<Duration>) {
    let task: Task<Result<(), CancelledError>> =
        create_task(async { cancellable(std::future::pending::<()>()).await });
    let task_ref = task.task_ref();
    let mut wait = create_task(wait_for(task, timeout));
    let w = wait.task_ref();
    get_running_loop().unwrap().call_soon(move || {
        w.cancel();
    });
    assert!((&mut wait).await.is_err());
    assert!(wait.cancelled());
    // Python issue #23219: cancelling the wait must also cancel the task.
    assert!(task_ref.cancelled());
}

// test_waitfor: test_cancel_blocking_wait_for
#[asyncio::test(virtual_time)]
async fn cancelling_a_blocking_wait_for_cancels_the_task() {
    cancel_wait_for(None).await;
}

// test_waitfor: test_cancel_wait_for
#[asyncio::test(virtual_time)]
async fn cancelling_a_wait_for_cancels_the_task() {
    cancel_wait_for(Some(secs(60))).await;
}

// test_waitfor: test_wait_for_issue86296
#[asyncio::test(virtual_time)]
async fn a_done_inner_task_does_not_shield_the_caller_from_cancel() {
    let log = log();
    let inner = create_task(async { "done" });
    let inner_ref = inner.task_ref();
    let l = log.clone();
    let mut task = create_task(async move {
        let mut inner = inner;
        let v = wait_for(&mut inner, secs(100)).await.unwrap()?;
        push(&l, format!("inner gave {v}"));
        sleep(secs(1)).await?;
        push(&l, "reached end");
        Ok::<_, CancelledError>(())
    });
    assert!(!task.done());
    checkpoint().await.unwrap();
    task.cancel();
    assert!((&mut task).await.is_err());
    assert!(inner_ref.done() && !inner_ref.cancelled());
    assert_eq!(take(&log), ["inner gave done"]);
}

// new (ASYNCIO-SEMANTICS §6): the caller cancelled from outside gets CancelledError, not TimeoutError
#[asyncio::test(virtual_time)]
async fn outside_cancel_of_the_caller_is_cancelled_error() {
    let inner_slot: Rc<RefCell<Option<TaskRef>>> = Rc::default();
    let s = inner_slot.clone();
    let mut caller = create_task(async move {
        let mut inner = create_task(async { sleep(secs(10)).await });
        *s.borrow_mut() = Some(inner.task_ref());
        match wait_for(&mut inner, secs(5)).await {
            Err(TimeoutError) => Ok("timeout"),
            Ok(r) => r.map(|_| "done"),
        }
    });
    sleep(secs(1)).await.unwrap();
    caller.cancel();
    assert!((&mut caller).await.is_err());
    assert!(caller.cancelled());
    assert!(inner_slot.borrow().as_ref().unwrap().cancelled());
}

// new (ASYNCIO-SEMANTICS §6, verified on 3.13): outside cancel, the inner code swallows it: the value wins
#[asyncio::test(virtual_time)]
async fn outside_cancel_swallowed_inside_gives_the_value() {
    let log = log();
    let l = log.clone();
    let mut caller = create_task(async move {
        let l2 = l.clone();
        let v = wait_for(
            async move {
                if sleep(secs(10)).await.is_err() {
                    push(&l2, "inner swallowed");
                }
                5
            },
            secs(100),
        )
        .await
        .unwrap();
        let me = current_task().unwrap();
        push(&l, format!("caller got {v} cancelling={}", me.cancelling()));
        sleep(ms(10)).await?;
        push(&l, "caller continued");
        Ok::<_, CancelledError>(v)
    });
    checkpoint().await.unwrap();
    caller.cancel();
    assert_eq!((&mut caller).await.unwrap().unwrap(), 5);
    assert!(!caller.cancelled());
    assert_eq!(
        take(&log),
        [
            "inner swallowed",
            "caller got 5 cancelling=1",
            "caller continued"
        ]
    );
}

// new (DESIGN §4): wait_for takes its deadline at its first await, timeout() when called
#[asyncio::test(virtual_time)]
async fn deadline_is_taken_at_the_first_await() {
    let clock = Clock::start();
    let w = wait_for(sleep(secs(2)), secs(3));
    let h = w.handle();
    assert_eq!(h.when(), None, "not computed before the first await");
    sleep(secs(2)).await.unwrap();
    assert!(matches!(w.await, Ok(Ok(()))));
    assert_eq!(h.when(), Some(clock.at() + secs(5)));
    assert_eq!(clock.elapsed(), secs(4));

    let clock = Clock::start();
    let t = asyncio::timeout(secs(3), sleep(secs(2)));
    sleep(secs(2)).await.unwrap();
    assert!(matches!(t.await, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), secs(3));
}

// new (ASYNCIO-SEMANTICS §6, verified): a plain future runs inside the caller's task
#[asyncio::test(virtual_time)]
async fn a_plain_future_runs_in_the_callers_task() {
    let me = current_task().unwrap();
    let inside = wait_for(async { current_task().unwrap() }, secs(1))
        .await
        .unwrap();
    assert_eq!(inside, me);
}

// new: an inner task that finishes in time is not cancelled
#[asyncio::test(virtual_time)]
async fn a_task_finishing_in_time_is_not_cancelled() {
    let clock = Clock::start();
    let mut t = create_task(async {
        sleep(secs(1)).await?;
        Ok::<_, CancelledError>(9)
    });
    let r = wait_for(&mut t, secs(5)).await;
    assert_eq!(r.unwrap().unwrap().unwrap(), 9);
    assert!(!t.cancelled());
    assert_eq!(t.cancelling(), 0);
    assert_eq!(clock.elapsed(), secs(1));
    // The disarmed deadline does not fire later.
    sleep(secs(10)).await.unwrap();
}

// new (DESIGN §4, verified on 3.13): with a zero timeout the task is awaited without forwarding further cancels
#[asyncio::test(virtual_time)]
async fn zero_timeout_does_not_forward_a_later_cancel_of_the_caller() {
    let log = log();
    let t0 = now();
    let l = log.clone();
    let task = create_task(async move {
        let err = sleep(secs(100)).await.unwrap_err();
        match sleep(ms(500)).await {
            Ok(()) => push(&l, format!("cleanup done at {:?}", now() - t0)),
            Err(_) => push(&l, "cleanup interrupted"),
        }
        Err::<(), _>(err)
    });
    let task_ref = task.task_ref();
    let l = log.clone();
    let caller = create_task(async move {
        let mut task = task;
        sleep(ms(100)).await?;
        let r = wait_for(&mut task, Duration::ZERO).await;
        let what = match &r {
            Err(TimeoutError) => "TimeoutError",
            Ok(Err(_)) => "CancelledError",
            Ok(Ok(_)) => "value",
        };
        push(&l, format!("caller {what} at {:?}", now() - t0));
        r.unwrap_or(Ok(Ok(())))?.map(|_| ())
    });
    sleep(ms(200)).await.unwrap();
    caller.cancel();
    sleep(secs(1)).await.unwrap();
    assert_eq!(
        take(&log),
        ["caller CancelledError at 200ms", "cleanup done at 600ms"]
    );
    assert!(task_ref.cancelled());
    assert!(caller.cancelled());
}

/// Runs `wait_for(t, 0)` in a caller task on a task `t` that has not
/// started, and a sleeper beside it; in the turn in which `t` ends (the
/// cancel of its first step), cancels the two in the order `order` gives
/// (`true`: the caller first). Returns who saw its cancellation, in order.
async fn cancel_zero_wait_for_as_its_task_ends(caller_first: bool) -> Vec<String> {
    let log = log();
    let sleeper = sleeper(&log);
    let l = log.clone();
    let caller = create_task(async move {
        let t = create_task(async { 7 });
        let r = wait_for(t, Duration::ZERO).await;
        push(
            &l,
            format!(
                "caller {}",
                if matches!(r, Ok(Err(_))) {
                    "cancelled"
                } else {
                    "timed out"
                }
            ),
        );
    });
    // Turn 1 starts both (the caller cancels `t` before its first step);
    // turn 2 runs `t`'s only step, which ends it, and then this task.
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert!(!caller.done());
    cancel_in_order(caller_first, &caller, &sleeper);
    sleep(secs(3)).await.unwrap();
    take(&log)
}

// new (rules/zero_wait_for_cancelled_as_its_task_ends_resumes_next_turn,
// verified on 3.13): asyncio releases a zero-timeout caller through a private
// future a turn after the task ends; a cancel before that release cancels
// the future, and the caller resumes on the next turn, woken by the cancel.
#[asyncio::test(virtual_time)]
async fn zero_timeout_caller_cancelled_as_its_task_ends_resumes_next_turn() {
    assert_eq!(
        cancel_zero_wait_for_as_its_task_ends(true).await,
        ["caller cancelled", "sleeper cancelled"]
    );
}

// new (rules/zero_wait_for_released_late_resumes_behind_the_cancel): the
// same, cancelled after a sleeper: the caller, queued already for the
// release, resumes behind the sleeper, where the cancel woke it.
#[asyncio::test(virtual_time)]
async fn zero_timeout_caller_cancelled_as_its_task_ends_resumes_where_woken() {
    assert_eq!(
        cancel_zero_wait_for_as_its_task_ends(false).await,
        ["sleeper cancelled", "caller cancelled"]
    );
}
