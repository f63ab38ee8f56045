//! `Event`: set wakes every waiter, clear does not un-wake them, the
//! fast path on a set event, cancellation of a waiter.

mod common;

use std::rc::Rc;

use asyncio::{checkpoint, create_task, get_running_loop, sleep, wait_for, CancelledError, Event};
use common::*;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// A task that waits for `ev` and logs `name`.
fn waiter(
    ev: &Rc<Event>,
    log: &Log,
    name: &'static str,
) -> asyncio::Task<Result<(), CancelledError>> {
    let (ev, log) = (ev.clone(), log.clone());
    create_task(async move {
        ev.wait().await?;
        push(&log, name);
        Ok(())
    })
}

// test_locks EventTests: test_wait
#[asyncio::test(virtual_time)]
async fn set_wakes_every_waiter_in_order() {
    let ev = Rc::new(Event::new());
    assert!(!ev.is_set());
    let log = log();
    let t1 = waiter(&ev, &log, "1");
    let t2 = waiter(&ev, &log, "2");
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    // t3 has not started yet: it finds the event set and does not wait.
    let t3 = waiter(&ev, &log, "3");
    ev.set();
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["3", "1", "2"]);
    for t in [t1, t2, t3] {
        assert!(t.done());
        t.await.unwrap().unwrap();
    }
}

// test_locks EventTests: test_wait_on_set
#[asyncio::test(virtual_time)]
async fn waiting_on_a_set_event_returns_at_once() {
    let ev = Event::new();
    ev.set();
    let clock = Clock::start();
    ev.wait().await.unwrap();
    assert_eq!(clock.elapsed(), secs(0));
}

// test_locks EventTests: test_wait_cancel
#[asyncio::test(virtual_time)]
async fn a_cancelled_wait_leaves_the_queue() {
    let ev = leak(Event::new());
    let mut wait = create_task(ev.wait());
    let tr = wait.task_ref();
    get_running_loop().unwrap().call_soon(move || {
        tr.cancel();
    });
    assert!((&mut wait).await.is_err());
    assert!(wait.cancelled());
    assert!(format!("{ev:?}").contains("waiters: 0"));
}

// test_locks EventTests: test_clear
#[asyncio::test(virtual_time)]
async fn clear_resets_the_flag() {
    let ev = Event::new();
    assert!(!ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
}

// test_locks EventTests: test_clear_with_waiters
#[asyncio::test(virtual_time)]
async fn clear_does_not_unwake_a_woken_waiter() {
    let ev = Rc::new(Event::new());
    let log = log();
    let t = waiter(&ev, &log, "1");
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    ev.set();
    ev.clear();
    assert!(!ev.is_set());
    ev.set();
    ev.set();
    assert!(format!("{ev:?}").contains("waiters: 1"));

    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);
    assert!(format!("{ev:?}").contains("waiters: 0"));
    assert!(t.done());
    t.await.unwrap().unwrap();
}

// new: a cancellation delivered in the turn the event is set still wins
#[asyncio::test(virtual_time)]
async fn a_cancel_in_the_same_turn_as_set_wins() {
    let ev = Rc::new(Event::new());
    let log = log();
    let mut t = waiter(&ev, &log, "woke");
    checkpoint().await.unwrap();
    ev.set();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert!(take(&log).is_empty());
    assert!(ev.is_set());
}

// new: a waiter under a timeout times out and leaves; set still works after
#[asyncio::test(virtual_time)]
async fn a_timed_out_wait_leaves_the_queue() {
    let ev = Rc::new(Event::new());
    let clock = Clock::start();
    assert!(wait_for(ev.wait(), secs(1)).await.is_err());
    assert_eq!(clock.elapsed(), secs(1));
    assert!(format!("{ev:?}").contains("waiters: 0"));
    let e = ev.clone();
    asyncio::get_running_loop()
        .unwrap()
        .call_later(secs(1), move || e.set());
    ev.wait().await.unwrap();
    assert_eq!(clock.elapsed(), secs(2));
}

// new: an event made outside any loop, set from a timer callback
#[test]
fn an_event_made_outside_a_loop_can_be_awaited_in_one() {
    let ev = Rc::new(Event::new());
    let e = ev.clone();
    vrunner().run(async move {
        let e2 = e.clone();
        get_running_loop()
            .unwrap()
            .call_later(secs(5), move || e2.set());
        let clock = Clock::start();
        e.wait().await.unwrap();
        assert_eq!(clock.elapsed(), secs(5));
        sleep(secs(0)).await.unwrap();
    });
    assert!(ev.is_set());
}
