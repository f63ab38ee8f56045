//! `Condition`: wait releases and re-takes the lock, notify(n) in FIFO
//! order, wait_for, and 3.13's rule that a cancelled wait passes its
//! notification on (no lost wake-up).

mod common;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, timeout, wait_for, CancelledError, Condition, Lock, LockGuard, Task,
    TimeoutError,
};
use common::*;

type R<T> = Result<T, CancelledError>;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// CPython's `c1`..`c3`: take the lock, wait once, log `name`, and hand
/// the guard (the lock, still held) back.
fn waiter(cond: &'static Condition, log: &Log, name: &'static str) -> Task<R<LockGuard<'static>>> {
    let log = log.clone();
    create_task(async move {
        let mut guard = cond.acquire().await?;
        cond.wait(&mut guard).await?;
        push(&log, name);
        Ok(guard)
    })
}

/// CPython's variant that releases right after logging.
fn waiter_releasing(cond: &'static Condition, log: &Log, name: &'static str) -> Task<R<()>> {
    let log = log.clone();
    create_task(async move {
        let mut guard = cond.acquire().await?;
        cond.wait(&mut guard).await?;
        push(&log, name);
        Ok(())
    })
}

// test_locks ConditionTests: test_wait
#[asyncio::test(virtual_time)]
async fn notified_waiters_return_one_at_a_time_as_the_lock_frees() {
    let cond = leak(Condition::new());
    let log = log();
    let mut t1 = waiter(cond, &log, "1");
    let mut t2 = waiter(cond, &log, "2");
    let mut t3 = waiter(cond, &log, "3");
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());
    assert!(!cond.locked());

    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());
    assert!(cond.locked());

    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);
    assert!(cond.locked());

    let g1 = (&mut t1).await.unwrap().unwrap();
    cond.notify(&g1, 2);
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());
    assert!(cond.locked());

    drop(g1);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["2"]);
    assert!(cond.locked());

    drop((&mut t2).await.unwrap().unwrap());
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["3"]);
    assert!(cond.locked());
    drop((&mut t3).await.unwrap().unwrap());
    assert!(!cond.locked());
}

// test_locks ConditionTests: test_wait_cancel
#[asyncio::test(virtual_time)]
async fn a_cancelled_wait_returns_with_the_lock_held() {
    let cond = leak(Condition::new());
    let held = leak(Cell::new(false));
    let mut wait = create_task(async move {
        let mut guard = cond.acquire().await?;
        let r = cond.wait(&mut guard).await;
        held.set(cond.locked());
        r
    });
    checkpoint().await.unwrap();
    wait.cancel();
    assert!((&mut wait).await.is_err());
    assert!(held.get());
    assert!(format!("{cond:?}").contains("waiters: 0"));
    assert!(!cond.locked());
}

// test_locks ConditionTests: test_wait_cancel_contested
#[asyncio::test(virtual_time)]
async fn a_cancel_while_reacquiring_a_contested_lock_is_raised_after_it() {
    let cond = leak(Condition::new());
    let mut wait_task = create_task(async move {
        let mut guard = cond.acquire().await?;
        let r = cond.wait(&mut guard).await;
        assert!(cond.locked());
        std::mem::forget(guard); // keep the lock, like a bare wait()
        r
    });
    checkpoint().await.unwrap();
    assert!(!cond.locked());

    // Notify, but contest the lock before cancelling.
    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    wait_task.cancel();
    drop(g);
    let _ = (&mut wait_task).await;
    assert!(cond.locked());
}

// test_locks ConditionTests: test_wait_cancel_after_notify
#[asyncio::test(virtual_time)]
async fn a_cancel_after_notify_is_raised_once_the_lock_is_back() {
    let cond = leak(Condition::new());
    let waited = leak(Cell::new(false));
    let waiter = create_task(async move {
        let mut guard = cond.acquire().await?;
        waited.set(true);
        cond.wait(&mut guard).await
    });
    checkpoint().await.unwrap(); // start waiting

    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    checkpoint().await.unwrap(); // the waiter gets to acquire()
    waiter.cancel();
    checkpoint().await.unwrap(); // the cancellation is delivered
    drop(g);
    checkpoint().await.unwrap(); // the waiter re-takes the lock and raises
    assert!(waiter.cancelled());
    assert!(waited.get());
    assert!(!cond.locked());
}

// test_locks ConditionTests: test_wait_for
#[asyncio::test(virtual_time)]
async fn wait_for_returns_once_the_predicate_holds() {
    let cond = leak(Condition::new());
    let presult = leak(Cell::new(false));
    let log = log();
    let l = log.clone();
    let t = create_task(async move {
        let mut guard = cond.acquire().await?;
        cond.wait_for(&mut guard, || presult.get()).await?;
        push(&l, "1");
        Ok::<_, CancelledError>(())
    });
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    drop(g);
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    presult.set(true);
    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);
    assert!(t.done());
    t.await.unwrap().unwrap();
}

// test_locks ConditionTests: test_wait_for_unacquired (in part: the
// predicate holds at once: no wait; a wait without the lock cannot be
// written here, since wait_for takes the guard)
#[asyncio::test(virtual_time)]
async fn wait_for_a_true_predicate_does_not_wait() {
    let cond = Condition::new();
    let mut g = cond.acquire().await.unwrap();
    let clock = Clock::start();
    cond.wait_for(&mut g, || true).await.unwrap();
    assert_eq!(clock.elapsed(), secs(0));
    assert!(cond.locked());
}

// test_locks ConditionTests: test_notify
#[asyncio::test(virtual_time)]
async fn notify_wakes_that_many_waiters_in_order() {
    let cond = leak(Condition::new());
    let log = log();
    let t1 = waiter_releasing(cond, &log, "1");
    let t2 = waiter_releasing(cond, &log, "2");
    let t3 = waiter_releasing(cond, &log, "3");
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);

    let g = cond.acquire().await.unwrap();
    cond.notify(&g, 1);
    cond.notify(&g, 2048);
    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["2", "3"]);
    for t in [t1, t2, t3] {
        t.await.unwrap().unwrap();
    }
}

// test_locks ConditionTests: test_notify_all
#[asyncio::test(virtual_time)]
async fn notify_all_wakes_every_waiter() {
    let cond = leak(Condition::new());
    let log = log();
    let t1 = waiter_releasing(cond, &log, "1");
    let t2 = waiter_releasing(cond, &log, "2");
    checkpoint().await.unwrap();
    let g = cond.acquire().await.unwrap();
    cond.notify_all(&g);
    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1", "2"]);
    t1.await.unwrap().unwrap();
    t2.await.unwrap().unwrap();
}

// test_locks ConditionTests: test_explicit_lock
#[asyncio::test(virtual_time)]
async fn conditions_can_share_an_explicit_lock() {
    let lock = Rc::new(Lock::new());
    let a = Condition::with_lock(lock.clone());
    let b = Condition::with_lock(lock.clone());
    assert!(Rc::ptr_eq(a.lock(), &lock));
    {
        let g = a.acquire().await.unwrap();
        assert!(lock.locked() && a.locked() && b.locked());
        b.notify_all(&g); // a guard of the shared lock serves both
    }
    assert!(!lock.locked() && !a.locked());
    {
        let _g = lock.acquire().await.unwrap();
        assert!(a.locked() && b.locked());
    }
    assert!(!b.locked());
}

// test_locks ConditionTests: test_wait_unacquired, test_notify_unacquired
// (the guard proves the lock is held; a guard of another lock is refused)
#[asyncio::test(virtual_time)]
#[should_panic(expected = "not of this condition's lock")]
async fn a_guard_of_another_lock_is_refused() {
    let cond = Condition::new();
    let other = Lock::new();
    let g = other.acquire().await.unwrap();
    cond.notify(&g, 1);
}

// test_locks ConditionTests: test_timeout_in_block
#[asyncio::test(virtual_time)]
async fn a_timed_out_wait_gives_the_lock_back_to_its_guard() {
    let cond = Condition::new();
    let mut g = cond.acquire().await.unwrap();
    let r = wait_for(cond.wait(&mut g), ms(500)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(cond.locked());
    drop(g);
    assert!(!cond.locked());
}

// test_locks ConditionTests: test_cancelled_error_wakeup
#[asyncio::test(virtual_time)]
async fn a_cancel_while_waiting_comes_out_with_its_message() {
    let cond = leak(Condition::new());
    let task = create_task(async move {
        let mut guard = cond.acquire().await?;
        cond.wait_for(&mut guard, || false).await
    });
    checkpoint().await.unwrap();
    task.cancel_with("foo");
    let err = task.await.unwrap_err();
    assert_eq!(err.message(), Some("foo"));
}

// test_locks ConditionTests: test_cancelled_error_re_aquire
#[asyncio::test(virtual_time)]
async fn a_cancel_while_reacquiring_comes_out_with_its_message() {
    let cond = leak(Condition::new());
    let wake = leak(Cell::new(false));
    let mut task = create_task(async move {
        let mut guard = cond.acquire().await?;
        cond.wait_for(&mut guard, || wake.get()).await
    });
    checkpoint().await.unwrap();
    let g = cond.acquire().await.unwrap();
    wake.set(true);
    cond.notify(&g, 1);
    checkpoint().await.unwrap();
    // The task is now trying to re-take the lock: cancel it there.
    task.cancel_with("foo");
    drop(g);
    let err = (&mut task).await.unwrap_err();
    assert_eq!(err.message(), Some("foo"));
    assert!(task.cancelled());
}

/// CPython's consumer of test_cancelled_wakeup*: waits for `state != 0`,
/// returns when it is negative, else decrements it.
fn consumer(cond: &'static Condition, state: &'static Cell<i32>) -> Task<R<()>> {
    create_task(async move {
        let mut guard = cond.acquire().await?;
        loop {
            cond.wait_for(&mut guard, || state.get() != 0).await?;
            if state.get() < 0 {
                return Ok(());
            }
            state.set(state.get() - 1);
        }
    })
}

// test_locks ConditionTests: test_cancelled_wakeup
#[asyncio::test(virtual_time)]
async fn a_waiter_cancelled_as_it_is_notified_passes_the_notification_on() {
    let cond = leak(Condition::new());
    let state = leak(Cell::new(0));
    let c0 = consumer(cond, state);
    let c1 = consumer(cond, state);
    checkpoint().await.unwrap();
    let mut g = cond.acquire().await.unwrap();
    // Produce one item and wake one consumer, then cancel it before it runs.
    state.set(state.get() + 1);
    cond.notify(&g, 1);
    c0.cancel();
    // The item must still be consumed, by the other consumer.
    let r = timeout(ms(10), cond.wait_for(&mut g, || state.get() == 0)).await;
    assert!(r.is_err(), "nobody notifies the producer");
    assert_eq!(state.get(), 0);
    state.set(-1);
    cond.notify_all(&g);
    drop(g);
    c1.await.unwrap().unwrap();
    assert!(c0.await.is_err());
}

// test_locks ConditionTests: test_cancelled_wakeup_relock
#[asyncio::test(virtual_time)]
async fn a_waiter_cancelled_while_relocking_passes_the_notification_on() {
    let cond = leak(Condition::new());
    let state = leak(Cell::new(0));
    let c0 = consumer(cond, state);
    let c1 = consumer(cond, state);
    checkpoint().await.unwrap();
    let mut g = cond.acquire().await.unwrap();
    state.set(state.get() + 1);
    cond.notify(&g, 1);
    // Let the notified consumer wake up and queue for the lock ...
    checkpoint().await.unwrap();
    // ... and cancel it there.
    c0.cancel();
    let r = timeout(ms(10), cond.wait_for(&mut g, || state.get() == 0)).await;
    assert!(r.is_err(), "nobody notifies the producer");
    assert_eq!(state.get(), 0);
    state.set(-1);
    cond.notify_all(&g);
    drop(g);
    c1.await.unwrap().unwrap();
    assert!(c0.await.is_err());
}

// new: a wait abandoned by dropping its future (not by a cancellation)
// takes the lock back when it is free, and passes the notification on
#[asyncio::test(virtual_time)]
async fn a_dropped_wait_takes_a_free_lock_back() {
    let cond = leak(Condition::new());
    let log = log();
    let other = waiter_releasing(cond, &log, "other");
    checkpoint().await.unwrap();
    let mut g = cond.acquire().await.unwrap();
    {
        let mut wait = std::pin::pin!(cond.wait(&mut g));
        // Poll it once: it releases the lock and queues.
        let polled = futures::poll!(wait.as_mut());
        assert!(polled.is_pending());
        assert!(!cond.locked());
        // The future is dropped here, with the lock free.
    }
    assert!(cond.locked(), "the guard holds the lock again");
    cond.notify(&g, 1);
    drop(g);
    other.await.unwrap().unwrap();
    assert_eq!(take(&log), ["other"]);
}
