//! `gather`, `gather!`, `try_gather`: results in argument order, the first
//! failure, `return_exceptions`, cancellation both ways, and asyncio's turn
//! timing — ported from CPython's `test_tasks` gather tests.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, gather, sleep, try_gather, CancelledError, Outcome, TaskRef,
};
use common::*;

type R<T> = Result<T, CancelledError>;

/// A task that sleeps `s` seconds and returns `v`.
fn sleeper<T: 'static>(s: u64, v: T) -> asyncio::Task<R<T>> {
    create_task(async move {
        sleep(secs(s)).await?;
        Ok(v)
    })
}

/// Sleeps `s` seconds, then panics with `msg`.
async fn panics_after(s: u64, msg: &'static str) -> R<()> {
    sleep(secs(s)).await?;
    panic!("{msg}")
}

// test_tasks: FutureGatherTests.test_constructor_empty_sequence_use_running_loop
// (an empty gather in a running loop is done with no results)
#[asyncio::test(virtual_time)]
async fn empty_gather_is_done_at_once() {
    let none: Vec<asyncio::Task<u8>> = Vec::new();
    let out = gather(none).await.unwrap();
    assert!(out.is_empty());
}

// test_tasks: test_success (results in argument order)
#[asyncio::test(virtual_time)]
async fn results_come_in_argument_order_not_completion_order() {
    let clock = Clock::start();
    let out = gather([sleeper(3, "a"), sleeper(1, "b"), sleeper(2, "c")])
        .await
        .unwrap();
    let values: Vec<&str> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, ["a", "b", "c"]);
    assert_eq!(clock.elapsed(), secs(3));
}

// Not in test_tasks: futures become tasks when gather is called, and take
// their first step before the parent resumes
#[asyncio::test(virtual_time)]
async fn futures_become_tasks_when_gather_is_called() {
    let log = log();
    let (a, b) = (log.clone(), log.clone());
    let g = asyncio::gather!(
        async move {
            push(&a, "a runs");
            1
        },
        async move {
            push(&b, "b runs");
            "two"
        }
    );
    push(&log, "gather made");
    checkpoint().await.unwrap(); // the children take their first step
    push(&log, "parent resumes");
    let (one, two) = g.await.unwrap();
    assert_eq!((one, two), (1, "two"));
    assert_eq!(
        take(&log),
        ["gather made", "a runs", "b runs", "parent resumes"]
    );
}

// test_tasks: test_one_cancellation (a cancelled child raises CancelledError
// at once; its siblings run on)
#[asyncio::test(virtual_time)]
async fn a_cancelled_child_makes_the_gather_raise_at_once() {
    let clock = Clock::start();
    let (a, c, b) = (sleeper(1, 1), sleeper(3, 3), sleeper(5, 5));
    let (c_ref, b_ref) = (c.task_ref(), b.task_ref());
    asyncio::get_running_loop()
        .unwrap()
        .call_later(secs(2), move || assert!(c_ref.cancel()));
    let err = gather([a, c, b]).await.unwrap_err();
    assert!(err.is_live());
    drop(err); // handled: the test goes on
    assert_eq!(clock.elapsed(), secs(2));
    assert!(!b_ref.done(), "the sibling is not cancelled");
    b_ref.wait().await.unwrap();
    assert_eq!(clock.elapsed(), secs(5));
}

// test_tasks: test_return_exceptions /
// FutureGatherTests.test_result_exception_one_cancellation (values,
// failures and cancellations all come back as outcomes, in argument order)
#[asyncio::test(virtual_time)]
async fn return_exceptions_collects_every_outcome() {
    let ok = sleeper(1, ());
    let cancelled = sleeper(2, ());
    let panics = create_task(panics_after(1, "boom"));
    cancelled.cancel_with("stop");
    let out = gather([ok, cancelled, panics])
        .return_exceptions()
        .await
        .unwrap();
    assert!(matches!(out[0], Outcome::Value(Ok(()))));
    assert!(out[1].is_cancelled());
    match &out[1] {
        Outcome::Cancelled(rec) => assert_eq!(rec.message(), Some("stop")),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert_eq!(out[2].panic_message(), Some("boom"));
}

// test_tasks: test_exception_marking / test_one_exception (a panic is the
// child's exception: re-raised in the awaiter, the siblings run on)
#[asyncio::test(virtual_time)]
async fn a_panicking_child_is_reported_through_the_awaiter() {
    let slow = sleeper(10, ());
    let slow_ref = slow.task_ref();
    let bad = create_task(panics_after(1, "child failed"));
    let awaiter = create_task(async move {
        let _ = gather([slow, bad]).await;
    });
    sleep(secs(2)).await.unwrap();
    assert!(awaiter.panicked());
    assert_eq!(awaiter.panic_message().as_deref(), Some("child failed"));
    assert!(!slow_ref.done() && !slow_ref.cancelled());
    awaiter.cancel(); // marks the panic retrieved, as in asyncio
}

// test_tasks: test_cancellation_broadcast
#[asyncio::test(virtual_time)]
async fn cancelling_the_awaiter_cancels_every_child() {
    let proof = Rc::new(Cell::new(0));
    let child = |p: Rc<Cell<u32>>| {
        create_task(async move {
            sleep(secs(10)).await?;
            p.set(p.get() + 1);
            Ok::<_, CancelledError>(())
        })
    };
    let c1 = child(proof.clone());
    let c2 = child(proof.clone());
    let (r1, r2) = (c1.task_ref(), c2.task_ref());
    let p = proof.clone();
    let mut outer = create_task(async move {
        gather([c1, c2]).await?;
        p.set(p.get() + 100);
        Ok::<_, CancelledError>(())
    });
    checkpoint().await.unwrap();
    assert!(outer.cancel());
    assert!((&mut outer).await.is_err());
    assert!(outer.cancelled());
    assert!(r1.cancelled() && r2.cancelled());
    assert_eq!(proof.get(), 0);
}

// test_tasks: test_cancel_gather_2 / bpo-32684: children that swallow the
// cancellation still make the gather end cancelled.
#[asyncio::test(virtual_time)]
async fn children_swallowing_the_cancellation_still_end_the_gather_cancelled() {
    let swallow = || {
        create_task(async {
            match sleep(secs(10)).await {
                Ok(()) => "slept",
                Err(_) => "swallowed",
            }
        })
    };
    let (a, b) = (swallow(), swallow());
    let (ra, rb) = (a.task_ref(), b.task_ref());
    let mut outer = create_task(async move { gather([a, b]).return_exceptions().await.map(drop) });
    checkpoint().await.unwrap();
    outer.cancel_with("halt");
    let err = (&mut outer).await.unwrap_err();
    assert_eq!(err.message(), Some("halt"));
    assert!(outer.cancelled());
    assert!(ra.done() && !ra.cancelled() && rb.done() && !rb.cancelled());
}

// test_tasks: test_cancel_gather_1 (in part: all children done but the
// gather not yet completed: the gather refuses the cancel and leaves the
// children alone; here a task awaits the gather, and that task raises when
// the gather completes — asyncio's _must_cancel — where CPython awaits the
// gather itself and gets its result)
#[asyncio::test(virtual_time)]
async fn cancel_refused_when_every_child_is_done() {
    let child = create_task(async {
        checkpoint().await?;
        Ok::<_, CancelledError>(42)
    });
    let child_ref = child.task_ref();
    let mut outer = create_task(async move { gather([child]).await });
    checkpoint().await.unwrap(); // the child yields, the outer starts gathering
    checkpoint().await.unwrap(); // the child finishes; its callback is pending
    assert!(child_ref.done() && !outer.done());
    assert!(outer.cancel());
    assert_eq!(
        child_ref.cancelling(),
        0,
        "the done child was not cancelled"
    );
    let r = (&mut outer).await;
    assert!(r.is_err());
    assert!(outer.cancelled());
}

// 3.12+: "all children done → no yield"
#[asyncio::test(virtual_time)]
async fn gather_over_finished_tasks_does_not_yield() {
    let a = create_task(async { 1 });
    let b = create_task(async { 2 });
    checkpoint().await.unwrap();
    assert!(a.done() && b.done());
    let log = log();
    let l = log.clone();
    get_running_loop_call_soon(move || push(&l, "callback"));
    let out = gather([a, b]).await.unwrap();
    push(&log, "after gather");
    assert_eq!(out, [1, 2]);
    assert_eq!(take(&log), ["after gather"]);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["callback"]);
}

fn get_running_loop_call_soon(f: impl FnOnce() + 'static) {
    asyncio::get_running_loop().unwrap().call_soon(f);
}

// asyncio: the awaiter resumes two turns after the last child finishes
// (the child's done-callback completes the outer future, whose callback
// wakes the awaiter), one turn later than awaiting the task directly.
#[asyncio::test(virtual_time)]
async fn the_awaiter_resumes_two_turns_after_the_last_child() {
    let log = log();
    let l = log.clone();
    let child = create_task(async move {
        push(&l, "child done");
    });
    let l = log.clone();
    let ticker = create_task(async move {
        for i in 0..4 {
            push(&l, format!("tick {i}"));
            checkpoint().await?;
        }
        Ok::<_, CancelledError>(())
    });
    gather([child]).await.unwrap();
    push(&log, "gather done");
    ticker.await.unwrap().unwrap();
    assert_eq!(
        take(&log),
        [
            "child done",
            "tick 0",
            "tick 1",
            "gather done",
            "tick 2",
            "tick 3"
        ]
    );
}

// test_tasks: test_duplicate_coroutines (one task passed twice is waited
// for once and gives a result for each place); the double cancel after it
// is not in CPython
#[asyncio::test(virtual_time)]
async fn a_task_passed_twice_is_waited_once_and_cancelled_twice() {
    let t = sleeper(5, 1).task_ref();
    let out = gather([t.clone(), t.clone()]).await.unwrap();
    assert_eq!(out.len(), 2);

    let u = sleeper(5, 1).task_ref();
    let (u1, u2) = (u.clone(), u.clone());
    let mut outer = create_task(async move { gather([u1, u2]).await.map(drop) });
    checkpoint().await.unwrap();
    outer.cancel();
    assert!((&mut outer).await.is_err());
    // asyncio cancels every argument: the same task twice.
    assert_eq!(u.cancelling(), 2);
}

// gather! over children of different types, with return_exceptions
#[asyncio::test(virtual_time)]
async fn gather_macro_mixes_types_and_collects_outcomes() {
    let name = create_task(async { String::from("ada") });
    let cancelled: asyncio::Task<u32> = create_task(async { 3 });
    cancelled.cancel();
    let (name, n, unit) = asyncio::gather!(name, cancelled, async {})
        .return_exceptions()
        .await
        .unwrap();
    assert_eq!(name.value().as_deref(), Some("ada"));
    assert!(n.is_cancelled());
    assert!(unit.is_value());
}

#[derive(Debug)]
enum Error {
    Cancelled(CancelledError),
    Failed(&'static str),
}

impl From<CancelledError> for Error {
    fn from(e: CancelledError) -> Self {
        Error::Cancelled(e)
    }
}

// test_tasks: test_one_exception (the first Err, at once; siblings run on)
#[asyncio::test(virtual_time)]
async fn try_gather_returns_the_first_err_without_cancelling_siblings() {
    let clock = Clock::start();
    let slow = create_task(async {
        sleep(secs(10)).await?;
        Ok::<u32, Error>(1)
    });
    let slow_ref = slow.task_ref();
    let fails = create_task(async {
        sleep(secs(1)).await?;
        Err::<u32, _>(Error::Failed("first"))
    });
    let later = create_task(async {
        sleep(secs(2)).await?;
        Err::<u32, _>(Error::Failed("second"))
    });
    let r = try_gather([slow, fails, later]).await;
    assert!(matches!(r, Err(Error::Failed("first"))));
    assert_eq!(clock.elapsed(), secs(1));
    assert!(!slow_ref.done());
}

// try_gather! over different Ok types; a cancellation comes out as E
#[asyncio::test(virtual_time)]
async fn try_gather_macro_and_cancelled_child() {
    let (a, b) = asyncio::try_gather!(async { Ok::<_, Error>(1u8) }, async { Ok::<_, Error>("b") })
        .await
        .unwrap();
    assert_eq!((a, b), (1, "b"));

    let c = create_task(async {
        sleep(secs(1)).await?;
        Ok::<u8, Error>(1)
    });
    c.cancel();
    let r = asyncio::try_gather!(c, async { Ok::<_, Error>(2u8) }).await;
    assert!(matches!(r, Err(Error::Cancelled(ref e)) if e.is_live()));
}

// A gather inside a timeout: the expiry cancels the children, and the
// timeout reports TimeoutError (asyncio: wait_for(gather(...), t)).
#[asyncio::test(virtual_time)]
async fn gather_inside_a_timeout_cancels_the_children_and_times_out() {
    let a = sleeper(5, 1);
    let b = sleeper(1, 2);
    let (ra, rb) = (a.task_ref(), b.task_ref());
    let r = asyncio::wait_for(gather([a, b]), secs(2)).await;
    assert!(r.is_err(), "TimeoutError");
    assert!(ra.cancelled());
    assert!(rb.done() && !rb.cancelled());
}

// asyncio: wait_for(gather(...), 0) cancels the gather's children (its
// outer future is a future, not a coroutine).
#[asyncio::test(virtual_time)]
async fn gather_in_a_zero_wait_for_cancels_the_children() {
    let a = sleeper(5, 1);
    let ra = a.task_ref();
    let r = asyncio::wait_for(gather([a]), std::time::Duration::ZERO).await;
    assert!(r.is_err());
    assert!(ra.cancelled());
}

// TaskRef children: the outputs stay in the tasks.
#[asyncio::test(virtual_time)]
async fn taskref_children_leave_outputs_in_their_tasks() {
    let mut a = sleeper(1, "kept");
    let refs: Vec<TaskRef> = vec![a.task_ref()];
    gather(refs).await.unwrap();
    assert_eq!((&mut a).await.unwrap().unwrap(), "kept");
}
