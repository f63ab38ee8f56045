//! `shield`: awaiting a task without passing cancellations on to it.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{
    checkpoint, create_task, current_task, get_running_loop, shield, sleep, wait_for,
    CancelledError, TimeoutError,
};
use common::*;

// test_tasks: test_shield_result
#[asyncio::test(virtual_time)]
async fn shield_of_a_running_task_gives_its_result() {
    let clock = Clock::start();
    let mut inner = create_task(async {
        sleep(secs(1)).await.unwrap();
        42
    });
    assert_eq!(shield(&mut inner).await.unwrap(), 42);
    assert_eq!(clock.elapsed(), secs(1));
}

// test_tasks: test_shield_shortcut
#[asyncio::test(virtual_time)]
async fn shield_of_a_finished_task_does_not_suspend() {
    let log = log();
    let mut inner = create_task(async { 42 });
    checkpoint().await.unwrap();
    assert!(inner.done());
    let l = log.clone();
    let _b = create_task(async move { push(&l, "b") });
    let v = shield(&mut inner).await.unwrap();
    push(&log, format!("main got {v}"));
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["main got 42", "b"]);
}

// test_tasks: test_shield_effect
#[asyncio::test(virtual_time)]
async fn cancelling_the_awaiter_leaves_the_shielded_task_running() {
    let proof = Rc::new(Cell::new(0));
    let p = proof.clone();
    let mut outer = create_task(async move {
        let p2 = p.clone();
        let mut inner = create_task(async move {
            sleep(secs(5)).await.unwrap();
            p2.set(p2.get() + 1);
        });
        shield(&mut inner).await?;
        p.set(p.get() + 100);
        Ok::<_, CancelledError>(())
    });
    let clock = Clock::start();
    checkpoint().await.unwrap();
    outer.cancel();
    assert!((&mut outer).await.is_err());
    assert!(outer.cancelled());
    assert_eq!(
        clock.elapsed(),
        secs(0),
        "the awaiter got CancelledError at once"
    );
    assert_eq!(proof.get(), 0);
    sleep(secs(5)).await.unwrap();
    assert_eq!(proof.get(), 1);
}

// new (DESIGN §2, seed program 4): the shielded task survives and can be awaited afterwards
#[asyncio::test(virtual_time)]
async fn shielded_task_can_be_awaited_after_the_awaiter_was_cancelled() {
    let clock = Clock::start();
    let mut inner = create_task(async {
        sleep(secs(15)).await.unwrap();
        15
    });
    let me = current_task().unwrap();
    let m = me.clone();
    get_running_loop().unwrap().call_later(secs(5), move || {
        m.cancel();
    });
    let r = shield(&mut inner).await;
    assert!(r.is_err());
    assert_eq!(clock.elapsed(), secs(5));
    assert!(!inner.done() && !inner.cancelled());
    assert_eq!(me.uncancel(), 0);
    assert_eq!((&mut inner).await.unwrap(), 15);
    assert_eq!(clock.elapsed(), secs(15));
}

// test_waitfor: test_shielded_timeout
#[asyncio::test(virtual_time)]
async fn wait_for_shield_times_out_without_cancelling_the_task() {
    let clock = Clock::start();
    let mut task = create_task(async {
        sleep(ms(100)).await.unwrap();
        "done"
    });
    let r = wait_for(shield(&mut task), ms(10)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), ms(10));
    assert!(!task.done() && !task.cancelled());
    assert_eq!((&mut task).await.unwrap(), "done");
    assert_eq!(clock.elapsed(), ms(100));
}

// test_waitfor: test_zero_timeout
#[asyncio::test(virtual_time)]
async fn wait_for_shield_with_zero_timeout() {
    let mut task = create_task(async {
        sleep(ms(10)).await.unwrap();
        "done"
    });
    let r = wait_for(shield(&mut task), Duration::ZERO).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(!task.done() && !task.cancelled());
    sleep(ms(100)).await.unwrap();
    assert!(task.done() && !task.cancelled());
    assert_eq!((&mut task).await.unwrap(), "done");
}

// test_waitfor: test_none_timeout
#[asyncio::test(virtual_time)]
async fn wait_for_shield_with_no_timeout() {
    let clock = Clock::start();
    let mut task = create_task(async {
        sleep(ms(100)).await.unwrap();
        "done"
    });
    let r = wait_for(shield(&mut task), None).await;
    assert_eq!(r.unwrap().unwrap(), "done");
    assert!(task.done());
    assert_eq!(clock.elapsed(), ms(100));
}

// test_tasks: test_shield_cancel_inner
#[asyncio::test(virtual_time)]
async fn a_cancelled_inner_task_cancels_the_shield() {
    let mut inner = create_task(async { sleep(secs(10)).await });
    let i = inner.task_ref();
    get_running_loop().unwrap().call_later(secs(1), move || {
        i.cancel_with("inner");
    });
    let err = shield(&mut inner).await.unwrap_err();
    assert_eq!(err.message(), Some("inner"));
    assert!(inner.cancelled());
}

// test_tasks: test_shield_cancel_outer (the shield returns at once; nothing is left behind)
#[asyncio::test(virtual_time)]
async fn cancelling_the_shield_twice_and_awaiting_again() {
    let mut inner = create_task(async {
        sleep(secs(3)).await.unwrap();
        3
    });
    let me = current_task().unwrap();
    for _ in 0..2 {
        let m = me.clone();
        get_running_loop().unwrap().call_soon(move || {
            m.cancel();
        });
        assert!(shield(&mut inner).await.is_err());
        me.uncancel();
    }
    assert_eq!(shield(&mut inner).await.unwrap(), 3);
}

/// Two tasks finish in the same turn, `it1` first; X awaits `it1` (through a
/// shield or directly), Y awaits `it2` directly. Returns the log.
async fn race_shield_against_direct(use_shield: bool) -> Vec<String> {
    let log = log();
    let mut it1 = create_task(async {
        sleep(ms(10)).await.unwrap();
        1
    });
    let mut it2 = create_task(async {
        sleep(ms(10)).await.unwrap();
        2
    });
    let l = log.clone();
    let _x = create_task(async move {
        let v = if use_shield {
            shield(&mut it1).await.unwrap()
        } else {
            (&mut it1).await.unwrap()
        };
        push(&l, format!("X got {v}"));
    });
    let l = log.clone();
    let _y = create_task(async move {
        let v = (&mut it2).await.unwrap();
        push(&l, format!("Y got {v}"));
    });
    sleep(ms(50)).await.unwrap();
    take(&log)
}

// new (DESIGN §3 "turn for turn"): a shield's awaiter resumes one turn after a direct awaiter
#[asyncio::test(virtual_time)]
async fn shield_awaiter_resumes_one_turn_after_a_direct_awaiter() {
    assert_eq!(
        race_shield_against_direct(true).await,
        ["Y got 2", "X got 1"]
    );
    assert_eq!(
        race_shield_against_direct(false).await,
        ["X got 1", "Y got 2"]
    );
}

// test_tasks: test_shield_gather (a shield around a gather: cancelling the
// shield's awaiter leaves the gather and its children running to the end)
#[asyncio::test(virtual_time)]
async fn a_shielded_gather_runs_on_when_its_awaiter_is_cancelled() {
    let child = |s: u64, v: u32| {
        create_task(async move {
            sleep(secs(s)).await?;
            Ok::<_, CancelledError>(v)
        })
    };
    let (c1, c2) = (child(1, 1), child(2, 2));
    let (r1, r2) = (c1.task_ref(), c2.task_ref());
    let mut parent = create_task(async move { asyncio::gather([c1, c2]).await });
    let pr = parent.task_ref();
    let mut outer = create_task(async move { shield(&pr).await });
    checkpoint().await.unwrap();
    outer.cancel();
    assert!((&mut outer).await.is_err());
    assert!(outer.cancelled());
    assert!(!parent.done() && !r1.cancelled() && !r2.cancelled());
    let values: Vec<u32> = (&mut parent)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values, [1, 2]);
}

// test_tasks: test_gather_shield (a gather of shields: cancelling it cancels
// the shields, not the tasks behind them)
#[asyncio::test(virtual_time)]
async fn cancelling_a_gather_of_shields_spares_the_shielded_tasks() {
    let child = |s: u64, v: u32| {
        create_task(async move {
            sleep(secs(s)).await?;
            Ok::<_, CancelledError>(v)
        })
    };
    let (mut c1, mut c2) = (child(1, 1), child(2, 2));
    let (r1, r2) = (c1.task_ref(), c2.task_ref());
    let mut parent = create_task(async move {
        asyncio::gather!(async move { shield(&r1).await }, async move {
            shield(&r2).await
        })
        .await
    });
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    parent.cancel();
    assert!(
        (&mut parent).await.is_err(),
        "the gather raised CancelledError"
    );
    assert!(parent.cancelled());
    assert!(!c1.done() && !c2.done());
    assert_eq!((&mut c1).await.unwrap().unwrap(), 1);
    assert_eq!((&mut c2).await.unwrap().unwrap(), 2);
    assert!(!c1.cancelled() && !c2.cancelled());
}

/// A caller awaits `shield(&mut t)` while `t` runs; `t` ends at its first
/// step, and later in that turn a sleeper and the caller are cancelled, in
/// the order `caller_first` gives. Returns who saw its cancellation, in
/// order, then `t`'s output.
async fn cancel_shield_awaiter_after_its_task_ends(caller_first: bool) -> Vec<String> {
    let log = log();
    let t = Rc::new(std::cell::RefCell::new(None));
    let (l, tc) = (log.clone(), t.clone());
    let caller = create_task(async move {
        let mut task = tc.borrow_mut().take().expect("t is made before this runs");
        match shield(&mut task).await {
            Ok(v) => push(&l, format!("caller got {v}")),
            Err(_) => push(&l, "caller cancelled"),
        }
        task
    });
    *t.borrow_mut() = Some(create_task(async { 7 }));
    let sleeper = sleeper(&log);
    // This turn: the caller starts waiting, `t` ends, the sleeper sleeps,
    // then this task runs on.
    checkpoint().await.unwrap();
    assert!(!caller.done());
    cancel_in_order(caller_first, &caller, &sleeper);
    sleep(secs(3)).await.unwrap();
    let mut t = caller.await.unwrap();
    push(&log, format!("t {}", (&mut t).await.unwrap()));
    take(&log)
}

// new (rules/zero_wait_for_on_shield_cancelled_before_release, verified on
// 3.13): asyncio's shield completes its outer future from the task's
// done-callback, a turn after the task ends; a cancel before that cancels
// the outer future, and the awaiter resumes on the next turn where the
// cancel woke it.
#[asyncio::test(virtual_time)]
async fn shield_awaiter_cancelled_after_its_task_ends_resumes_where_woken() {
    assert_eq!(
        cancel_shield_awaiter_after_its_task_ends(true).await,
        ["caller cancelled", "sleeper cancelled", "t 7"]
    );
    assert_eq!(
        cancel_shield_awaiter_after_its_task_ends(false).await,
        ["sleeper cancelled", "caller cancelled", "t 7"]
    );
}
