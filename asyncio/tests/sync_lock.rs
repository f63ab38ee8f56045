//! `Lock`: the fast path, FIFO hand-off, no barging, and the cancellation
//! races of CPython's test_locks (a cancelled waiter never swallows a
//! release).

mod common;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, current_task, get_running_loop, sleep, wait_for, CancelledError, Lock,
    LockGuard, Task, TimeoutError,
};
use common::*;

type R<T> = Result<T, CancelledError>;

/// A lock that lives for the whole test, so that guards can travel between
/// tasks the way Python's `acquire()`/`release()` pairs do.
/// Awaits `fut`, failing instead of hanging if a lost wake-up left it asleep.
async fn within<F: std::future::IntoFuture>(fut: F) -> F::Output {
    wait_for(fut, secs(60))
        .await
        .expect("still waiting after 60 s: a wake-up was lost")
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn waiters(lock: &Lock) -> String {
    format!("{lock:?}")
}

/// A task that acquires `lock`, logs `name`, and hands its guard back.
fn locker(lock: &'static Lock, log: &Log, name: &'static str) -> Task<R<LockGuard<'static>>> {
    let log = log.clone();
    create_task(async move {
        let guard = lock.acquire().await?;
        push(&log, name);
        Ok(guard)
    })
}

/// Takes the guard out of a finished `locker` task.
async fn guard_of(t: &mut Task<R<LockGuard<'static>>>) -> LockGuard<'static> {
    assert!(t.done());
    t.await.unwrap().unwrap()
}

// test_locks LockTests: test_lock, test_release_no_waiters, test_context_manager
#[asyncio::test(virtual_time)]
async fn free_lock_is_taken_without_suspending_and_released_on_drop() {
    let lock = Lock::new();
    assert!(!lock.locked());
    let clock = Clock::start();
    {
        let _guard = lock.acquire().await.unwrap();
        assert!(lock.locked());
    }
    assert!(!lock.locked());
    assert_eq!(clock.elapsed(), secs(0));
    assert!(lock.try_acquire().is_some());
    assert!(!lock.locked());
}

// test_locks LockTests: test_acquire
#[asyncio::test(virtual_time)]
async fn waiters_get_the_lock_in_fifo_order_one_release_at_a_time() {
    let lock = leak(Lock::new());
    let log = log();
    let g0 = lock.acquire().await.unwrap();
    let mut t1 = locker(lock, &log, "1");
    let mut t2 = locker(lock, &log, "2");
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    drop(g0);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["1"]);
    checkpoint().await.unwrap();
    assert!(take(&log).is_empty());

    let mut t3 = locker(lock, &log, "3");
    drop(guard_of(&mut t1).await);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["2"]);

    drop(guard_of(&mut t2).await);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["3"]);
    drop(guard_of(&mut t3).await);
    assert!(!lock.locked());
}

// test_locks LockTests: test_acquire_cancel
#[asyncio::test(virtual_time)]
async fn a_cancelled_acquire_leaves_the_queue() {
    let lock = leak(Lock::new());
    let _g = lock.acquire().await.unwrap();
    let mut task = create_task(lock.acquire());
    let tr = task.task_ref();
    get_running_loop().unwrap().call_soon(move || {
        tr.cancel();
    });
    assert!((&mut task).await.is_err());
    assert!(task.cancelled());
    assert!(waiters(lock).contains("waiters: 0"), "{lock:?}");
}

// test_locks LockTests: test_cancel_race
#[asyncio::test(virtual_time)]
async fn release_racing_a_cancel_moves_on_to_the_next_waiter() {
    let lock = leak(Lock::new());
    let blocker = leak(asyncio::Event::new());
    let lockit = |blocked: bool| {
        create_task(async move {
            let _guard = lock.acquire().await?;
            if blocked {
                blocker.wait().await?;
            }
            Ok::<_, CancelledError>(())
        })
    };
    let ta = lockit(true);
    checkpoint().await.unwrap();
    assert!(lock.locked());
    let tb = lockit(false);
    checkpoint().await.unwrap();
    assert!(waiters(lock).contains("waiters: 1"));
    let mut tc = lockit(false);
    checkpoint().await.unwrap();
    assert!(waiters(lock).contains("waiters: 2"));

    // A is about to release; B is cancelled in the same turn.
    blocker.set();
    tb.cancel();
    checkpoint().await.unwrap();
    assert!(!lock.locked());
    assert!(ta.done());
    assert!(tb.cancelled());
    within(&mut tc).await.unwrap().unwrap();
    assert!(!lock.locked());
}

// test_locks LockTests: test_cancel_release_race
#[asyncio::test(virtual_time)]
async fn a_release_and_a_cancel_together_let_exactly_one_waiter_in() {
    let lock = leak(Lock::new());
    let lock_count = leak(Cell::new(0));
    let call_count = leak(Cell::new(0));
    let lockit = || {
        create_task(async move {
            call_count.set(call_count.get() + 1);
            let guard = lock.acquire().await?;
            lock_count.set(lock_count.get() + 1);
            std::mem::forget(guard); // keeps the lock, like a bare acquire()
            Ok::<_, CancelledError>(())
        })
    };
    let g = lock.acquire().await.unwrap();
    let mut t1 = lockit();
    let t2 = lockit();
    let t3 = lockit();
    checkpoint().await.unwrap();

    // The trigger: cancel the first waiter and release, in one turn.
    t1.cancel();
    drop(g);
    assert!((&mut t1).await.is_err());

    assert_eq!(lock_count.get(), 1);
    assert_eq!(call_count.get(), 3);
    assert!(t1.cancelled() && t2.done());

    t3.cancel();
    checkpoint().await.unwrap();
    assert!(t3.cancelled());
}

// test_locks LockTests: test_finished_waiter_cancelled
#[asyncio::test(virtual_time)]
async fn a_newcomer_takes_the_lock_when_every_waiter_is_cancelled() {
    let lock = leak(Lock::new());
    let g = lock.acquire().await.unwrap();
    let tb = create_task(lock.acquire());
    checkpoint().await.unwrap();
    assert!(waiters(lock).contains("waiters: 1"));

    // A second waiter arrives; the first is cancelled, then the lock freed.
    let mut tc = create_task(lock.acquire());
    tb.cancel();
    drop(g);
    checkpoint().await.unwrap();

    assert!(lock.locked()); // tc took it on the fast path
    assert!(tb.cancelled());
    drop((&mut tc).await.unwrap().unwrap());
    assert!(!lock.locked());
}

// new: no barging — right after a release the lock reads unlocked, yet
// newcomers (and try_acquire) queue behind the woken waiter
#[asyncio::test(virtual_time)]
async fn try_acquire_queues_behind_a_woken_waiter() {
    let lock = leak(Lock::new());
    let log = log();
    let g = lock.acquire().await.unwrap();
    let mut t = locker(lock, &log, "waiter");
    checkpoint().await.unwrap();
    drop(g);
    // Released and unlocked, but the woken waiter is live: no barging.
    assert!(!lock.locked());
    assert!(lock.try_acquire().is_none());
    let newcomer = locker(lock, &log, "newcomer");
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["waiter"]);
    drop(guard_of(&mut t).await);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["newcomer"]);
    assert!(newcomer.done());
}

// new: a waiter woken and cancelled in the same turn passes the lock on
#[asyncio::test(virtual_time)]
async fn a_woken_waiter_cancelled_before_it_runs_hands_the_lock_on() {
    let lock = leak(Lock::new());
    let log = log();
    let g = lock.acquire().await.unwrap();
    let mut t1 = locker(lock, &log, "1");
    let mut t2 = locker(lock, &log, "2");
    checkpoint().await.unwrap();
    drop(g); // wakes t1 ...
    t1.cancel(); // ... which is cancelled before it runs
    checkpoint().await.unwrap();
    assert!(t1.done() && t1.cancelled());
    assert!((&mut t1).await.is_err());
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["2"]);
    drop(guard_of(&mut t2).await);
    assert!(!lock.locked());
}

// new: aborting a woken waiter (its future is dropped) passes the lock on
#[asyncio::test(virtual_time)]
async fn dropping_a_woken_acquire_hands_the_lock_on() {
    let lock = leak(Lock::new());
    let log = log();
    let g = lock.acquire().await.unwrap();
    let t1 = locker(lock, &log, "1");
    let mut t2 = locker(lock, &log, "2");
    checkpoint().await.unwrap();
    drop(g);
    t1.abort();
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["2"]);
    drop(guard_of(&mut t2).await);
    assert!(!lock.locked());
}

// new: the fast path does not suspend, so it takes no pending cancellation
#[asyncio::test(virtual_time)]
async fn acquiring_a_free_lock_takes_no_pending_cancellation() {
    let lock = Lock::new();
    current_task().unwrap().cancel();
    let guard = lock.acquire().await;
    assert!(guard.is_ok());
    drop(guard);
    // The request is still pending: the next suspension raises it.
    assert!(checkpoint().await.is_err());
    current_task().unwrap().uncancel();
}

// Not in test_locks: an acquire timed out by wait_for leaves the queue, and
// the lock goes to the next waiter (ConditionTests.test_timeout_in_block's
// wait_for, applied to a Lock)
#[asyncio::test(virtual_time)]
async fn a_timed_out_acquire_leaves_the_lock_to_the_next_waiter() {
    let lock = leak(Lock::new());
    let log = log();
    let g = lock.acquire().await.unwrap();
    let clock = Clock::start();
    let impatient = create_task(async move {
        let r = wait_for(lock.acquire(), secs(1)).await;
        assert!(matches!(r, Err(TimeoutError)));
    });
    checkpoint().await.unwrap();
    let mut patient = locker(lock, &log, "patient");
    sleep(secs(2)).await.unwrap();
    assert!(impatient.done());
    drop(g);
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["patient"]);
    assert_eq!(clock.elapsed(), secs(2));
    drop(guard_of(&mut patient).await);
}

// new: no waiter starves — tasks looping on the lock take turns
#[asyncio::test(virtual_time)]
async fn contending_tasks_take_turns() {
    let lock = Rc::new(Lock::new());
    let log = log();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        let (lock, log) = (lock.clone(), log.clone());
        tasks.push(create_task(async move {
            for _ in 0..4 {
                let _guard = lock.acquire().await?;
                push(&log, name);
                checkpoint().await?;
            }
            Ok::<_, CancelledError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let order = take(&log).concat();
    assert_eq!(order, "abcabcabcabc");
}

// new: a lock created outside any loop works in one, and in the next
#[test]
fn a_lock_made_outside_a_loop_works_across_runs() {
    let lock = Rc::new(Lock::new());
    let mut runner = vrunner();
    for _ in 0..2 {
        let lock = lock.clone();
        runner.run(async move {
            let g = lock.acquire().await.unwrap();
            let l = lock.clone();
            let t = create_task(async move {
                let _g = l.acquire().await?;
                Ok::<_, CancelledError>(())
            });
            checkpoint().await.unwrap();
            drop(g);
            t.await.unwrap().unwrap();
        });
    }
    assert!(!lock.locked());
}
