//! Task cancellation: delivery, delegation to awaited tasks, swallowing,
//! cleanup, self-cancellation, the request count, messages, abort.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{
    cancellable, checkpoint, create_task, current_task, get_running_loop, sleep, CancelledError,
};
use common::*;

type R<T> = Result<T, CancelledError>;

// test_tasks: test_cancel
#[asyncio::test(virtual_time)]
async fn cancel_from_a_callback_while_sleeping() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        sleep(secs(10)).await?;
        push(&l, "after sleep");
        Ok::<_, CancelledError>(12)
    });
    let tr = t.task_ref();
    get_running_loop().unwrap().call_soon(move || {
        assert!(tr.cancel());
    });
    assert!((&mut t).await.is_err());
    assert!(t.done() && t.cancelled());
    assert!(!t.cancel());
    assert_eq!(clock.elapsed(), secs(0));
    assert!(take(&log).is_empty());
}

// test_tasks: test_cancel_yield
#[asyncio::test(virtual_time)]
async fn cancel_a_task_between_two_bare_yields() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        push(&l, "start");
        checkpoint().await?;
        push(&l, "after first yield");
        checkpoint().await?;
        Ok::<_, CancelledError>(12)
    });
    checkpoint().await.unwrap(); // the task starts and yields
    assert!(t.cancel());
    assert!((&mut t).await.is_err());
    assert!(t.done() && t.cancelled());
    assert!(!t.cancel());
    assert_eq!(take(&log), ["start"]);
}

// test_tasks: test_cancel_with_message_before_starting_task
#[asyncio::test(virtual_time)]
async fn cancel_before_the_first_step_never_runs_the_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut t = create_task(async move {
        r.set(true);
        sleep(secs(10)).await
    });
    assert!(t.cancel_with("my message"));
    assert_eq!(t.cancelling(), 1);
    let err = (&mut t).await.unwrap_err();
    assert_eq!(err.message(), Some("my message"));
    assert!(t.cancelled());
    assert!(!ran.get());
}

// test_tasks: test_task_cancel_message_getter
#[asyncio::test(virtual_time)]
async fn cancel_message_reaches_the_awaiter_of_a_trivial_task() {
    let t = create_task(async {});
    t.cancel_with("my message");
    let err = t.await.unwrap_err();
    assert_eq!(err.message(), Some("my message"));
    assert_eq!(err.to_string(), "cancelled: my message");
}

// test_tasks: test_cancel_task_catching
#[asyncio::test(virtual_time)]
async fn a_task_that_catches_its_cancellation_returns_normally() {
    let clock = Clock::start();
    let mut t = create_task(async {
        sleep(secs(1)).await.unwrap();
        match sleep(secs(10)).await {
            Err(_) => 42,
            Ok(()) => 0,
        }
    });
    sleep(secs(2)).await.unwrap();
    assert!(t.cancel());
    assert_eq!((&mut t).await.unwrap(), 42);
    assert!(!t.cancelled());
    assert_eq!(t.cancelling(), 1, "nobody called uncancel()");
    assert_eq!(clock.elapsed(), secs(2));
}

// test_tasks: test_cancel_task_ignoring
#[asyncio::test(virtual_time)]
async fn a_task_that_ignores_its_cancellation_keeps_awaiting() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        sleep(secs(1)).await.unwrap();
        if sleep(secs(10)).await.is_err() {
            push(&l, "ignored");
        }
        sleep(secs(3)).await.unwrap();
        push(&l, "third await completed");
        42
    });
    sleep(secs(2)).await.unwrap();
    t.cancel();
    assert_eq!((&mut t).await.unwrap(), 42);
    assert!(!t.cancelled());
    assert_eq!(take(&log), ["ignored", "third await completed"]);
    assert_eq!(clock.elapsed(), secs(5));
}

// test_tasks: test_cancel_current_task
#[asyncio::test(virtual_time)]
async fn self_cancel_then_sleep_ends_at_once() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        assert!(current_task().unwrap().cancel());
        push(&l, "still running after cancel()");
        sleep(secs(100)).await?;
        push(&l, "slept");
        Ok::<_, CancelledError>(12)
    });
    assert!(!t.cancelled());
    assert!((&mut t).await.is_err());
    assert!(t.done() && t.cancelled());
    assert!(!t.cancel());
    assert_eq!(take(&log), ["still running after cancel()"]);
    assert_eq!(clock.elapsed(), secs(0));
}

// test_tasks: test_cancel_at_end
#[asyncio::test(virtual_time)]
async fn self_cancel_then_return_ends_cancelled() {
    let mut t = create_task(async {
        current_task().unwrap().cancel();
        12
    });
    assert!((&mut t).await.is_err());
    assert!(t.done() && t.cancelled());
    assert!(!t.cancel());
}

// test_tasks: test_cancel_awaited_task
#[asyncio::test(virtual_time)]
async fn self_cancel_then_await_a_task_cancels_that_task() {
    let clock = Clock::start();
    let mut t = create_task(async {
        let mut nested = create_task(async { sleep(secs(1000)).await });
        let nested_ref = nested.task_ref();
        checkpoint().await?;
        current_task().unwrap().cancel();
        let r = (&mut nested).await;
        assert!(nested_ref.cancelled());
        r?.map(|_| nested_ref)
    });
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(clock.elapsed(), secs(0));
}

// test_tasks: test_task_cancel_sleeping_task
#[asyncio::test(virtual_time)]
async fn cancel_a_sleeping_task_from_a_timer() {
    let clock = Clock::start();
    let doit = create_task(async {
        let mut sleeper = create_task(async { sleep(secs(5000)).await });
        let s = sleeper.task_ref();
        get_running_loop().unwrap().call_later(ms(100), move || {
            s.cancel();
        });
        match (&mut sleeper).await {
            Err(_) => "cancelled",
            Ok(_) => "slept in",
        }
    });
    assert_eq!(doit.await.unwrap(), "cancelled");
    assert_eq!(clock.elapsed(), ms(100));
}

// test_tasks: test_cancel_traceback_for_future_result (in part: the same
// scenario; the awaiter ends cancelled, cancelling() 0; the traceback
// checks have no counterpart)
#[asyncio::test(virtual_time)]
async fn awaiting_a_cancelled_task_cancels_the_awaiter() {
    let mut aw = create_task(async {
        let mut t2 = create_task(async { sleep(secs(10)).await });
        checkpoint().await?;
        t2.cancel_with("m");
        (&mut t2).await??;
        Ok::<_, CancelledError>("not reached")
    });
    let err = (&mut aw).await.unwrap_err();
    assert!(aw.cancelled());
    assert_eq!(
        aw.cancelling(),
        0,
        "the awaiter itself was never cancel()ed"
    );
    assert_eq!(err.message(), Some("m"));
}

// test_tasks: test_cancellation_exception_context
#[asyncio::test(virtual_time)]
async fn awaiter_turns_a_cancelled_task_into_its_own_error() {
    let mut t = create_task(async {
        let mut inner = create_task(async { sleep(secs(10)).await });
        checkpoint().await.unwrap();
        let i = inner.task_ref();
        get_running_loop().unwrap().call_soon(move || {
            i.cancel_with("msg");
        });
        match (&mut inner).await {
            Err(e) => Err(format!("ValueError from {:?}", e.message())),
            Ok(_) => Ok(()),
        }
    });
    let out = (&mut t).await.unwrap();
    assert_eq!(out, Err("ValueError from Some(\"msg\")".to_string()));
    assert!(!t.cancelled());
}

// new (ASYNCIO-SEMANTICS §4): cancelling a task that awaits another delegates; the awaited task swallows it
#[asyncio::test(virtual_time)]
async fn delegation_awaited_task_swallows_awaiter_gets_value() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut outer = create_task(async move {
        let inner = create_task(async {
            match sleep(secs(10)).await {
                Err(_) => 7,
                Ok(()) => 0,
            }
        });
        let v = inner.await?;
        let me = current_task().unwrap();
        push(&l, format!("outer got {v} cancelling={}", me.cancelling()));
        sleep(secs(1)).await?;
        push(&l, "outer slept");
        Ok::<_, CancelledError>(v)
    });
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert!(outer.cancel());
    assert_eq!((&mut outer).await.unwrap().unwrap(), 7);
    assert_eq!(take(&log), ["outer got 7 cancelling=1", "outer slept"]);
    assert_eq!(outer.cancelling(), 1);
    assert!(!outer.cancelled());
    assert_eq!(clock.elapsed(), secs(1));
}

// new (ASYNCIO-SEMANTICS §4): delegation where the awaited task propagates: both end cancelled
#[asyncio::test(virtual_time)]
async fn delegation_awaited_task_propagates_both_cancelled() {
    let log = log();
    let l = log.clone();
    let inner_slot: Rc<std::cell::RefCell<Option<asyncio::TaskRef>>> = Rc::default();
    let s = inner_slot.clone();
    let mut outer = create_task(async move {
        let l2 = l.clone();
        let inner = create_task(async move {
            let r = sleep(secs(10)).await;
            push(&l2, format!("inner cancelled={}", r.is_err()));
            r
        });
        *s.borrow_mut() = Some(inner.task_ref());
        let r = inner.await;
        push(&l, format!("outer sees err={}", r.is_err()));
        r?
    });
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    outer.cancel_with("bye");
    let err = (&mut outer).await.unwrap_err();
    assert_eq!(err.message(), Some("bye"));
    assert!(outer.cancelled());
    let inner = inner_slot.borrow().clone().unwrap();
    assert!(inner.cancelled());
    assert_eq!(take(&log), ["inner cancelled=true", "outer sees err=true"]);
}

// test_tasks: test_yield_future_passes_cancel
#[asyncio::test(virtual_time)]
async fn cancel_passes_through_nested_async_fns() {
    let proof = Rc::new(Cell::new(0));
    let p = proof.clone();
    let mut f = create_task(async move {
        let pi = p.clone();
        let inner = async move {
            match sleep(secs(10)).await {
                Err(e) => {
                    pi.set(pi.get() + 1);
                    Err(e)
                }
                Ok(()) => panic!("got past sleep() in inner()"),
            }
        };
        match inner.await {
            Err(_) => p.set(p.get() + 100),
            Ok(()) => p.set(p.get() + 10),
        }
    });
    checkpoint().await.unwrap();
    f.cancel();
    (&mut f).await.unwrap();
    assert_eq!(proof.get(), 101);
    assert!(!f.cancelled());
}

// new (ASYNCIO-SEMANTICS §4): a second cancel() interrupts the cleanup's await
#[asyncio::test(virtual_time)]
async fn a_second_cancel_interrupts_cleanup() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        if let Err(e) = sleep(secs(10)).await {
            push(&l, "cleanup start");
            match sleep(secs(5)).await {
                Ok(()) => push(&l, "cleanup done"),
                Err(_) => push(&l, "cleanup interrupted"),
            }
            return Err(e);
        }
        Ok(())
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["cleanup start", "cleanup interrupted"]);
    assert_eq!(clock.elapsed(), secs(2));
    assert_eq!(t.cancelling(), 2);
}

// new (DESIGN §3): a request is delivered once: cleanup awaits run normally
#[asyncio::test(virtual_time)]
async fn cleanup_awaits_run_unless_cancelled_again() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        if let Err(e) = sleep(secs(10)).await {
            push(&l, "cleanup start");
            sleep(secs(5)).await.unwrap();
            push(&l, "cleanup done");
            return Err(e);
        }
        Ok(())
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(
        t.cancelled(),
        "the original error was propagated after cleanup"
    );
    assert_eq!(take(&log), ["cleanup start", "cleanup done"]);
    assert_eq!(clock.elapsed(), secs(6));
}

// test_tasks: test_cancelling
#[asyncio::test(virtual_time)]
async fn cancelling_counts_every_request() {
    let mut t = create_task(async { sleep(secs(10)).await });
    assert_eq!(t.cancelling(), 0);
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!(t.cancel(), "repeated cancel() calls return true");
    assert_eq!(t.cancelling(), 2);
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
}

// test_tasks: test_uncancel_basic
#[asyncio::test(virtual_time)]
async fn uncancel_lets_the_task_carry_on() {
    let mut t = create_task(async {
        if sleep(secs(10)).await.is_err() {
            current_task().unwrap().uncancel();
            sleep(secs(10)).await?;
        }
        Ok::<_, CancelledError>(())
    });
    sleep(ms(10)).await.unwrap();
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!(!t.cancelled());
    sleep(ms(10)).await.unwrap();
    assert_eq!(t.cancelling(), 0, "after uncancel()");
    assert!(!t.done());
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!((&mut t).await.is_err());
    assert!(t.done() && t.cancelled());
    t.uncancel();
    assert!(
        t.done() && t.cancelled(),
        "uncancel() does not undo an ending"
    );
}

// test_tasks: test_uncancel_structured_blocks
#[asyncio::test(virtual_time)]
async fn uncancel_structured_block_pattern() {
    async fn request_with_timeout(sleep_for: u64, timeout_ms: u64) -> R<(bool, bool, bool)> {
        let task = current_task().unwrap();
        let timed_out = Rc::new(Cell::new(false));
        let (flag, me) = (timed_out.clone(), task.clone());
        let handle = get_running_loop()
            .unwrap()
            .call_later(ms(timeout_ms), move || {
                flag.set(true);
                me.cancel();
            });
        let mut block_finished = false;
        let result = sleep(ms(sleep_for)).await;
        handle.cancel();
        match result {
            Ok(()) => block_finished = true,
            Err(e) => {
                if timed_out.get() && task.uncancel() == 0 {
                    drop(e); // our own cancellation: becomes a timeout, handled here
                } else {
                    return Err(e);
                }
            }
        }
        let outer_code_reached = true;
        checkpoint().await?;
        Ok((timed_out.get(), block_finished, outer_code_reached))
    }
    let t1 = create_task(request_with_timeout(10_000, 100));
    let t1r = t1.task_ref();
    assert_eq!(t1.await.unwrap().unwrap(), (true, false, true));
    assert_eq!(t1r.cancelling(), 0);
    let t2 = create_task(request_with_timeout(0, 10_000));
    let t2r = t2.task_ref();
    assert_eq!(t2.await.unwrap().unwrap(), (false, true, true));
    assert_eq!(t2r.cancelling(), 0);
}

// test_tasks: test_uncancel_resets_must_cancel (the wake-up is already queued)
#[asyncio::test(virtual_time)]

async fn uncancel_to_zero_withdraws_an_undelivered_request() {
    let log = log();
    let mut t = create_task(async {
        sleep(secs(1)).await?;
        Ok::<_, CancelledError>(42)
    });
    checkpoint().await.unwrap(); // the task arms its timer first
    let (tr, l) = (t.task_ref(), log.clone());
    get_running_loop().unwrap().call_later(secs(1), move || {
        // The task's timer fired this turn: its wake-up is queued.
        tr.cancel();
        push(&l, format!("uncancel->{}", tr.uncancel()));
    });
    assert_eq!((&mut t).await.unwrap().unwrap(), 42);
    assert!(!t.cancelled());
    assert_eq!(take(&log), ["uncancel->0"]);
}

// test_tasks: test_uncancel_resets_must_cancel (a variant: the task is
// runnable for its first step, not for a wake-up)
#[asyncio::test(virtual_time)]
async fn uncancel_to_zero_before_the_first_step_lets_the_body_run() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        push(&l, "body ran");
        checkpoint().await?;
        Ok::<_, CancelledError>(42)
    });
    t.cancel();
    assert_eq!(t.uncancel(), 0);
    assert_eq!((&mut t).await.unwrap().unwrap(), 42);
    assert_eq!(take(&log), ["body ran"]);
}

// new (ASYNCIO-SEMANTICS §4): uncancel() not reaching zero keeps the pending request
#[asyncio::test(virtual_time)]
async fn uncancel_above_zero_keeps_the_pending_request() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut t = create_task(async move {
        r.set(true);
        checkpoint().await
    });
    t.cancel();
    t.cancel();
    assert_eq!(t.uncancel(), 1);
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert!(!ran.get());
    assert_eq!(t.cancelling(), 1);
}

// new (ASYNCIO-SEMANTICS §4): self-cancel, uncancel, then an await completes normally
#[asyncio::test(virtual_time)]
async fn self_cancel_then_uncancel_then_sleep_sleeps() {
    let clock = Clock::start();
    let me = current_task().unwrap();
    me.cancel();
    assert_eq!(me.uncancel(), 0);
    sleep(ms(10)).await.unwrap();
    assert_eq!(clock.elapsed(), ms(10));
}

// new (ASYNCIO-SEMANTICS §4 "first message wins"): two cancels while waiting
#[asyncio::test(virtual_time)]
async fn first_cancel_message_wins() {
    let mut t = create_task(async { sleep(secs(10)).await });
    checkpoint().await.unwrap();
    t.cancel_with("first");
    t.cancel_with("second");
    let err = (&mut t).await.unwrap_err();
    assert_eq!(err.message(), Some("first"));
    assert_eq!(t.cancelling(), 2);
}

// new (ASYNCIO-SEMANTICS §4): the message arrives in the task as well
#[asyncio::test(virtual_time)]
async fn cancel_message_is_seen_inside_the_task() {
    let log = log();
    let l = log.clone();
    let t = create_task(async move {
        if let Err(e) = sleep(secs(10)).await {
            push(&l, format!("{e}"));
            return Err(e);
        }
        Ok(())
    });
    checkpoint().await.unwrap();
    t.cancel_with("shutting down");
    let _ = t.await;
    assert_eq!(take(&log), ["cancelled: shutting down"]);
}

// new (ASYNCIO-SEMANTICS §4): cancel() on a done task returns false and counts nothing
#[asyncio::test(virtual_time)]
async fn cancel_on_a_done_task_returns_false() {
    let mut t = create_task(async { 1 });
    assert_eq!((&mut t).await.unwrap(), 1);
    assert!(!t.cancel());
    assert!(!t.cancel_with("late"));
    assert_eq!(t.cancelling(), 0);
    assert!(!t.cancelled());
}

// new (ASYNCIO-SEMANTICS §4): a cancel that arrives in the turn the timer fired still wins
#[asyncio::test(virtual_time)]
async fn cancel_in_the_turn_the_timer_fired_wins() {
    let mut t = create_task(async {
        match sleep(secs(1)).await {
            Ok(()) => "slept",
            Err(_) => "cancelled",
        }
    });
    checkpoint().await.unwrap();
    let tr = t.task_ref();
    get_running_loop().unwrap().call_later(secs(1), move || {
        tr.cancel();
    });
    assert_eq!((&mut t).await.unwrap(), "cancelled");
}

// new (DESIGN §2): abort() drops the future at once, without running cleanup
#[asyncio::test(virtual_time)]
async fn abort_drops_the_future_at_once() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        let _guard = DropGuard(l.clone(), "future dropped");
        if sleep(secs(100)).await.is_err() {
            push(&l, "cleanup ran");
        }
    });
    checkpoint().await.unwrap();
    t.abort();
    assert!(t.done() && t.cancelled());
    assert_eq!(take(&log), ["future dropped"]);
    assert!((&mut t).await.is_err());
    assert_eq!(clock.elapsed(), secs(0));
}

// new (DESIGN §2): abort() stops a task that cancel() cannot reach (a foreign await)
#[asyncio::test(virtual_time)]
async fn abort_stops_a_task_parked_on_a_foreign_future() {
    let mut t = create_task(async { std::future::pending::<()>().await });
    checkpoint().await.unwrap();
    assert!(t.cancel());
    sleep(secs(1)).await.unwrap();
    assert!(!t.done(), "a foreign future is not a checkpoint");
    t.abort();
    assert!(t.done() && t.cancelled());
    assert!((&mut t).await.is_err());
}

// new (DESIGN §2): abort() before the first step: the body never runs
#[asyncio::test(virtual_time)]
async fn abort_before_the_first_step() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut t = create_task(async move { r.set(true) });
    t.abort();
    assert!(t.done() && t.cancelled());
    checkpoint().await.unwrap();
    assert!((&mut t).await.is_err());
    assert!(!ran.get());
}

// new (DESIGN §2): a task aborting itself ends when its current step returns
#[asyncio::test(virtual_time)]
async fn self_abort_takes_effect_at_the_end_of_the_step() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        current_task().unwrap().abort();
        push(&l, "rest of the step runs");
        let _ = cancellable(std::future::pending::<()>()).await;
        push(&l, "never");
    });
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["rest of the step runs"]);
}

// new (DESIGN §3): a CancelledError raised by hand inside a task ends it cancelled
#[asyncio::test(virtual_time)]
async fn a_hand_raised_cancelled_error_ends_the_task_cancelled() {
    let mut t = create_task(async {
        checkpoint().await?;
        Err::<(), _>(CancelledError::with_message("by hand"))
    });
    let err = (&mut t).await.unwrap_err();
    assert!(t.cancelled());
    assert_eq!(err.message(), Some("by hand"));
    // Turned into a record, it cancels nobody.
    let mut u = create_task(async {
        let rec = CancelledError::new().handled();
        checkpoint().await.unwrap();
        rec
    });
    assert!((&mut u).await.is_ok());
    assert!(!u.cancelled());
}

// test_tasks: test_cancel_both_task_and_inner_future (the inner awaitable is a task)
#[asyncio::test(virtual_time)]
async fn cancel_both_the_awaited_task_and_its_awaiter() {
    let mut b = create_task(async { sleep(secs(10)).await });
    let br = b.task_ref();
    let mut a = create_task(async move { (&mut b).await? });
    checkpoint().await.unwrap();
    br.cancel();
    a.cancel();
    assert!((&mut a).await.is_err());
    assert!(a.cancelled() && br.cancelled());
    assert_eq!(a.cancelling(), 1);
    assert_eq!(
        br.cancelling(),
        2,
        "the awaiter's cancel was delegated to it"
    );
}

// new (ASYNCIO-SEMANTICS §4): a delegated cancel counts once on each task
#[asyncio::test(virtual_time)]
async fn delegation_counts_one_request_on_each_task() {
    let mut b = create_task(async { sleep(secs(10)).await });
    let br = b.task_ref();
    let mut a = create_task(async move { (&mut b).await? });
    checkpoint().await.unwrap();
    a.cancel();
    assert!((&mut a).await.is_err());
    assert_eq!((a.cancelling(), br.cancelling()), (1, 1));
    assert!(br.cancelled());
}

// new (ASYNCIO-SEMANTICS §4, verified on 3.13): cancel while the awaited task is done but the awaiter has not resumed
#[asyncio::test(virtual_time)]
async fn cancel_after_the_awaited_task_finished_but_before_the_awaiter_resumed() {
    let slot: Rc<std::cell::RefCell<Option<asyncio::Task<i32>>>> = Rc::default();
    *slot.borrow_mut() = Some(create_task(async {
        checkpoint().await.unwrap();
        5
    }));
    let s = slot.clone();
    let mut a = create_task(async move {
        let mut b = s.borrow_mut().take().unwrap();
        let r = (&mut b).await;
        *s.borrow_mut() = Some(b);
        match r {
            Ok(v) => v.to_string(),
            Err(_) => "cancelled".to_string(),
        }
    });
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert!(!a.done());
    assert!(a.cancel());
    assert_eq!((&mut a).await.unwrap(), "cancelled");
    assert_eq!(a.cancelling(), 1);
    let mut b = slot.borrow_mut().take().unwrap();
    assert!(b.done() && !b.cancelled());
    assert_eq!((&mut b).await.unwrap(), 5, "the output stays in the task");
}

// new (DESIGN §3): a kept clone of the error keeps the cancellation in flight
#[asyncio::test(virtual_time)]
async fn a_kept_clone_keeps_the_task_cancelled() {
    let store: Rc<std::cell::RefCell<Vec<CancelledError>>> = Rc::default();
    let s = store.clone();
    let mut t = create_task(async move {
        let err = sleep(secs(10)).await.unwrap_err();
        s.borrow_mut().push(err.clone());
        drop(err);
        0
    });
    checkpoint().await.unwrap();
    t.cancel_with("kept");
    let err = (&mut t).await.unwrap_err();
    assert!(t.cancelled());
    assert_eq!(err.message(), Some("kept"));
    assert!(store.borrow()[0].is_live());
}

// new (DESIGN §3): the error boxed in a `dyn Error` still cancels the task
#[asyncio::test(virtual_time)]
async fn a_boxed_error_still_cancels_the_task() {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let mut t = create_task(async {
        let r: Result<(), BoxError> = async {
            sleep(secs(10)).await?;
            Ok(())
        }
        .await;
        let msg = r
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<CancelledError>())
            .and_then(|c| c.message().map(str::to_string));
        (r, msg)
    });
    checkpoint().await.unwrap();
    t.cancel_with("why");
    let err = (&mut t).await.unwrap_err();
    assert!(t.cancelled());
    assert_eq!(err.message(), Some("why"));
}

// new (DESIGN §3): handled() keeps a record and ends the cancellation
#[asyncio::test(virtual_time)]
async fn a_handled_record_does_not_cancel() {
    let mut t = create_task(async {
        let err = sleep(secs(10)).await.unwrap_err();
        err.handled()
    });
    checkpoint().await.unwrap();
    t.cancel_with("noted");
    let rec = (&mut t).await.unwrap();
    assert_eq!(rec.message(), Some("noted"));
    assert!(!t.cancelled());
}

/// A task cancelled while it sits in the ready queue after a bare yield
/// (`checkpoint()`, `sleep(0)`) raises at that yield, with the message;
/// if `uncancel()` brings the count back to zero before it resumes, the
/// request is withdrawn (Python 3.13's `_must_cancel`) and the yield
/// returns normally.
#[asyncio::test(virtual_time)]
async fn a_cancel_during_a_bare_yield_raises_there_unless_withdrawn() {
    /// A task that records how far it got around one bare yield, once it
    /// sits in the ready queue after that yield.
    async fn at_its_yield() -> (asyncio::Task<R<()>>, Rc<Cell<u8>>) {
        let reached = Rc::new(Cell::new(0));
        let r = reached.clone();
        let t = create_task(async move {
            r.set(1);
            checkpoint().await?;
            r.set(2);
            Ok(())
        });
        while reached.get() == 0 {
            sleep(secs(0)).await.unwrap();
        }
        (t, reached)
    }

    let (t, reached) = at_its_yield().await;
    assert!(t.cancel_with("stop"));
    let err = t.await.expect_err("raised at the yield");
    assert_eq!(err.message(), Some("stop"));
    assert_eq!(reached.get(), 1, "nothing ran past the yield");

    let (t, reached) = at_its_yield().await;
    assert!(t.cancel());
    assert_eq!(t.uncancel(), 0);
    assert!(
        matches!(t.await, Ok(Ok(()))),
        "the withdrawn request is not raised"
    );
    assert_eq!(reached.get(), 2);
}

/// A cancel of a task suspended at one await of its own scope - the common
/// case, delivered without an allocation - behaves as any delivery: it is
/// raised at that await even if `uncancel()` ran before the task resumed
/// (the await was already cancelled, as asyncio's awaited future is); a
/// second cancel before it resumes joins it (one error, `cancelling()`
/// 2); and an await dropped before it raised passes the request on to the
/// task's next await.
#[asyncio::test(virtual_time)]
async fn a_cancel_of_a_suspended_task_is_raised_at_its_await() {
    let t = create_task(async { sleep(secs(10)).await.is_err() });
    sleep(secs(0)).await.unwrap();
    assert!(t.cancel());
    assert_eq!(t.uncancel(), 0);
    assert!(matches!(t.await, Ok(true)), "raised despite uncancel()");

    let t = create_task(async {
        let raised = sleep(secs(10)).await.is_err();
        let n = current_task().unwrap().cancelling();
        let next_ok = sleep(secs(1)).await.is_ok();
        (raised, n, next_ok)
    });
    sleep(secs(0)).await.unwrap();
    assert!(t.cancel());
    assert!(t.cancel());
    assert!(matches!(t.await, Ok((true, 2, true))));

    let t = create_task(async {
        let mut first = Some(Box::pin(sleep(secs(10))));
        let mut polled = false;
        std::future::poll_fn(|cx| {
            if !polled {
                polled = true;
                let pending =
                    std::future::Future::poll(first.as_mut().unwrap().as_mut(), cx).is_pending();
                assert!(pending);
                return std::task::Poll::Pending;
            }
            first = None; // dropped without being polled again
            std::task::Poll::Ready(())
        })
        .await;
        sleep(secs(1)).await.is_err()
    });
    sleep(secs(0)).await.unwrap();
    assert!(t.cancel());
    assert!(matches!(t.await, Ok(true)), "the next await raised it");
}

// new (checked against CPython 3.13): a task that handles one cancellation
// and propagates the next ends cancelled with the second one's message;
// the first token is kept in the task's header, the second in its books
#[asyncio::test(virtual_time)]
async fn a_handled_cancel_then_a_propagated_one_with_a_message() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        if let Err(e) = sleep(secs(10)).await {
            push(&l, format!("first {:?}", e.message()));
            drop(e);
            current_task().unwrap().uncancel();
        }
        if let Err(e) = sleep(secs(10)).await {
            push(&l, format!("second {:?}", e.message()));
            return Err(e);
        }
        Ok::<_, CancelledError>(())
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    sleep(secs(1)).await.unwrap();
    t.cancel_with("second");
    let err = (&mut t).await.unwrap_err();
    assert_eq!(err.message(), Some("second"));
    assert!(t.cancelled());
    assert_eq!(t.cancelling(), 1);
    assert_eq!(take(&log), ["first None", "second Some(\"second\")"]);
}
