//! `Semaphore` and `BoundedSemaphore`: permits handed to waiters in strict
//! FIFO order, permits given back by cancelled waiters, the bound as an
//! error value. Bare `acquire()`/`release()` pairs of CPython's tests are
//! written as `acquire().await?.forget()` and `release()`.

mod common;

use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, get_running_loop, sleep, wait_for, BoundedSemaphore, CancelledError,
    ReleasedTooManyTimes, Semaphore, Task,
};
use common::*;

type R<T> = Result<T, CancelledError>;

/// Awaits `fut`, failing instead of hanging if a lost wake-up left it asleep.
async fn within<F: std::future::IntoFuture>(fut: F) -> F::Output {
    wait_for(fut, secs(60))
        .await
        .expect("still waiting after 60 s: a wake-up was lost")
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// A task that takes a permit for good (Python's bare `await sem.acquire()`)
/// and logs `name`.
fn taker(sem: &'static Semaphore, log: &Log, name: &'static str) -> Task<R<()>> {
    let log = log.clone();
    create_task(async move {
        sem.acquire().await?.forget();
        push(&log, name);
        Ok(())
    })
}

fn waiters(sem: &Semaphore) -> String {
    format!("{sem:?}")
}

// test_locks SemaphoreTests: test_semaphore, test_release_no_waiters
#[asyncio::test(virtual_time)]
async fn default_semaphore_has_one_permit() {
    let sem = Semaphore::default();
    assert_eq!(sem.value(), 1);
    assert!(!sem.locked());
    let permit = sem.acquire().await.unwrap();
    assert!(sem.locked());
    assert_eq!(sem.value(), 0);
    drop(permit);
    assert!(!sem.locked());
    assert_eq!(sem.value(), 1);
    sem.acquire().await.unwrap().forget();
    sem.release();
    assert_eq!(sem.value(), 1);
}

// test_locks SemaphoreTests: test_acquire
#[asyncio::test(virtual_time)]
async fn releases_hand_permits_to_waiters_in_order() {
    let sem = leak(Semaphore::new(3));
    let log = log();
    sem.acquire().await.unwrap().forget();
    sem.acquire().await.unwrap().forget();
    assert!(!sem.locked());

    let t1 = taker(sem, &log, "1");
    let t2 = taker(sem, &log, "2");
    let t3 = taker(sem, &log, "3");
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);
    assert!(sem.locked());
    assert!(waiters(sem).contains("waiters: 2"));
    assert_eq!(sem.value(), 0);

    let t4 = taker(sem, &log, "4");
    sem.release();
    sem.release();
    assert_eq!(sem.value(), 0);

    checkpoint().await.unwrap();
    assert_eq!(sem.value(), 0);
    assert_eq!(take(&log), ["2", "3"]);
    assert!(sem.locked());
    assert!(waiters(sem).contains("waiters: 1"));
    assert!(t1.done() && t2.done() && t3.done() && !t4.done());

    sem.release();
    for t in [t1, t2, t3, t4] {
        t.await.unwrap().unwrap();
    }
}

// test_locks SemaphoreTests: test_acquire_cancel
#[asyncio::test(virtual_time)]
async fn a_cancelled_acquire_leaves_the_queue() {
    let sem = leak(Semaphore::new(1));
    sem.acquire().await.unwrap().forget();
    let mut acquire = create_task(sem.acquire());
    let tr = acquire.task_ref();
    get_running_loop().unwrap().call_soon(move || {
        tr.cancel();
    });
    assert!((&mut acquire).await.is_err());
    assert!(waiters(sem).contains("waiters: 0"));
    assert_eq!(sem.value(), 0);
}

// test_locks SemaphoreTests: test_acquire_cancel_before_awoken
#[asyncio::test(virtual_time)]
async fn cancelled_waiters_are_skipped_by_a_release() {
    let sem = leak(Semaphore::new(0));
    let log = log();
    let t1 = taker(sem, &log, "1");
    let t2 = taker(sem, &log, "2");
    let t3 = taker(sem, &log, "3");
    let t4 = taker(sem, &log, "4");
    checkpoint().await.unwrap();

    t1.cancel();
    t2.cancel();
    sem.release();
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert!(t3.done() && !t4.done());
    assert_eq!(take(&log), ["3"]);
    assert!(t1.cancelled() && t2.cancelled());

    t4.cancel();
    checkpoint().await.unwrap();
    assert!(t4.cancelled());
}

// test_locks SemaphoreTests: test_acquire_hang
#[asyncio::test(virtual_time)]
async fn a_cancelled_head_does_not_strand_the_permit() {
    let sem = leak(Semaphore::new(0));
    let log = log();
    let t1 = taker(sem, &log, "1");
    let t2 = taker(sem, &log, "2");
    checkpoint().await.unwrap();
    t1.cancel();
    sem.release();
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert!(sem.locked());
    assert!(t2.done());
    assert_eq!(take(&log), ["2"]);
}

// test_locks SemaphoreTests: test_acquire_no_hang
#[asyncio::test(virtual_time)]
async fn a_waiter_cancelled_after_being_handed_a_permit_gives_it_back() {
    let sem = Rc::new(Semaphore::new(1));
    let t2_slot: Rc<std::cell::RefCell<Option<asyncio::TaskRef>>> = Rc::default();
    let (s, slot) = (sem.clone(), t2_slot.clone());
    let t1 = create_task(async move {
        {
            let _permit = s.acquire().await?;
            checkpoint().await?;
        } // the release hands the permit to t2 ...
        slot.borrow().as_ref().unwrap().cancel(); // ... which is cancelled
        Ok::<_, CancelledError>(())
    });
    let s = sem.clone();
    let t2 = create_task(async move {
        let _permit = s.acquire().await?;
        unreachable!("t2 is cancelled before it runs");
    });
    *t2_slot.borrow_mut() = Some(t2.task_ref());
    t1.await.unwrap().unwrap();
    let r2: R<R<()>> = t2.await;
    assert!(r2.is_err());
    assert_eq!(sem.value(), 1);
    let permit = wait_for(sem.acquire(), secs(1)).await;
    assert!(matches!(permit, Ok(Ok(_))));
}

// test_locks SemaphoreTests: test_release_not_acquired
#[asyncio::test(virtual_time)]
async fn releasing_a_bounded_semaphore_too_often_is_an_error_value() {
    let sem = BoundedSemaphore::default();
    assert_eq!(sem.release(), Err(ReleasedTooManyTimes));
    assert_eq!(sem.value(), 1);
    sem.acquire().await.unwrap().forget();
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(ReleasedTooManyTimes));
    assert_eq!(
        ReleasedTooManyTimes.to_string(),
        "BoundedSemaphore released too many times"
    );
}

// new: a permit dropped on a bounded semaphore already at its bound
// (after an extra release by hand) releases nothing
#[asyncio::test(virtual_time)]
async fn a_permit_never_pushes_a_bounded_semaphore_past_its_bound() {
    let sem = BoundedSemaphore::new(2);
    let p = sem.acquire().await.unwrap();
    assert_eq!(sem.value(), 1);
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
    drop(p);
    assert_eq!(sem.value(), 2);
}

// test_locks SemaphoreTests: test_acquire_fifo_order
#[asyncio::test(virtual_time)]
async fn waiters_take_turns_in_fifo_order() {
    let sem = Rc::new(Semaphore::new(1));
    let log = log();
    let mut tasks = Vec::new();
    for tag in ["c1", "c2", "c3"] {
        let (sem, log) = (sem.clone(), log.clone());
        tasks.push(create_task(async move {
            for round in 1..=2 {
                let _permit = sem.acquire().await?;
                push(&log, format!("{tag}_{round}"));
                sleep(ms(10)).await?;
            }
            Ok::<_, CancelledError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(take(&log), ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]);
}

// test_locks SemaphoreTests: test_acquire_fifo_order_2
#[asyncio::test(virtual_time)]
async fn a_task_that_releases_and_reacquires_queues_behind_the_others() {
    let sem = leak(Semaphore::new(1));
    let log = log();
    let t1 = taker(sem, &log, "1");
    let l = log.clone();
    let t2 = create_task(async move {
        sem.acquire().await?.forget();
        push(&l, "2");
        sem.release();
        sem.acquire().await?.forget();
        push(&l, "4");
        Ok::<_, CancelledError>(())
    });
    let t3 = taker(sem, &log, "3");
    checkpoint().await.unwrap();
    sem.release();
    sem.release();
    for t in [t1, t2, t3] {
        t.await.unwrap().unwrap();
    }
    assert_eq!(take(&log), ["1", "2", "3", "4"]);
}

// test_locks SemaphoreTests: test_acquire_fifo_order_3
#[asyncio::test(virtual_time)]
async fn a_cancelled_waiter_keeps_the_others_in_order() {
    let sem = leak(Semaphore::new(0));
    let log = log();
    let t1 = taker(sem, &log, "1");
    let t2 = taker(sem, &log, "2");
    let t3 = taker(sem, &log, "3");
    checkpoint().await.unwrap();
    t1.cancel();
    checkpoint().await.unwrap();
    sem.release();
    sem.release();
    assert!(t1.await.is_err());
    within(t2).await.unwrap().unwrap();
    within(t3).await.unwrap().unwrap();
    assert_eq!(take(&log), ["2", "3"]);
}

// test_locks SemaphoreTests: test_acquire_fifo_order_4
#[asyncio::test(virtual_time)]
async fn a_successful_acquire_wakes_the_waiters_its_fifo_rule_held_back() {
    let sem = leak(Semaphore::new(0));
    let log = log();
    let t4_slot: Rc<std::cell::RefCell<Option<Task<()>>>> = Rc::default();
    let (l, slot) = (log.clone(), t4_slot.clone());
    let t1 = create_task(async move {
        assert_eq!(sem.value(), 0);
        sem.acquire().await?.forget();
        // Every waiter has been woken by now.
        assert_eq!(sem.value(), 0);
        // A fourth task: it runs after t3, not after t2.
        let l4 = l.clone();
        *slot.borrow_mut() = Some(create_task(async move { push(&l4, "4") }));
        push(&l, "1");
        Ok::<_, CancelledError>(())
    });
    let l = log.clone();
    let t2 = create_task(async move {
        sem.release();
        sem.release();
        sem.release();
        assert_eq!(sem.value(), 2);
        // Locked: t1 was handed a permit but has not run yet.
        assert!(sem.locked());
        sem.acquire().await?.forget();
        push(&l, "2");
        Ok::<_, CancelledError>(())
    });
    let l = log.clone();
    let t3 = create_task(async move {
        sem.acquire().await?.forget();
        assert!(sem.locked());
        push(&l, "3");
        Ok::<_, CancelledError>(())
    });
    checkpoint().await.unwrap();
    // Three waiters, the first handed a permit but not yet run.
    assert_eq!(sem.value(), 2);
    assert!(waiters(sem).contains("waiters: 3"));
    checkpoint().await.unwrap();
    for t in [t1, t2, t3] {
        t.await.unwrap().unwrap();
    }
    let t4 = t4_slot.borrow_mut().take().unwrap();
    t4.await.unwrap();
    assert_eq!(take(&log), ["1", "2", "3", "4"]);
}

// new: a waiter handed a permit and cancelled in the same turn gives the
// permit to the next waiter
#[asyncio::test(virtual_time)]
async fn a_woken_waiter_cancelled_before_it_runs_passes_the_permit_on() {
    let sem = leak(Semaphore::new(0));
    let log = log();
    let mut t1 = taker(sem, &log, "1");
    let t2 = taker(sem, &log, "2");
    checkpoint().await.unwrap();
    sem.release(); // hands the permit to t1 ...
    t1.cancel(); // ... cancelled before it runs
    assert!((&mut t1).await.is_err());
    within(t2).await.unwrap().unwrap();
    assert_eq!(take(&log), ["2"]);
    assert_eq!(sem.value(), 0);
}

// new: no permit is lost or duplicated under random cancellations
#[asyncio::test(virtual_time)]
async fn permits_are_conserved_under_cancellations() {
    let sem = Rc::new(Semaphore::new(3));
    let inside = Rc::new(std::cell::Cell::new(0usize));
    let mut tasks = Vec::new();
    for i in 0..30u64 {
        let (sem, inside) = (sem.clone(), inside.clone());
        tasks.push(create_task(async move {
            let _permit = sem.acquire().await?;
            inside.set(inside.get() + 1);
            assert!(inside.get() <= 3);
            let r = sleep(ms(1 + i % 4)).await;
            inside.set(inside.get() - 1);
            r
        }));
    }
    for (i, t) in tasks.iter().enumerate() {
        if i % 3 == 1 {
            t.cancel();
        }
        if i % 5 == 0 {
            checkpoint().await.unwrap();
        }
    }
    let mut ok = 0;
    for t in tasks {
        if let Ok(Ok(())) = t.await {
            ok += 1;
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(sem.value(), 3);
    assert!(!sem.locked());
}
