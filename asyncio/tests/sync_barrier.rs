//! `Barrier`: filling, draining, arrival indices, a cancelled waiter
//! leaving, reset and abort with `BrokenBarrierError`.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::{checkpoint, create_task, Barrier, BarrierWaitError, CancelledError, Task};
use common::*;

const N: usize = 5;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn state(b: &Barrier) -> String {
    format!("{b:?}")
}

/// Spawns `n` tasks of `body` and returns their outputs, in spawn order.
async fn gather<T: 'static, F: std::future::Future<Output = T> + 'static>(
    n: usize,
    body: impl Fn() -> F,
) -> Vec<T> {
    let tasks: Vec<Task<T>> = (0..n).map(|_| create_task(body())).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task cancelled"));
    }
    out
}

// test_locks BarrierTests: test_barrier_parties
#[test]
#[should_panic(expected = "parties must be > 0")]
fn a_barrier_needs_at_least_one_party() {
    let _ = Barrier::new(0);
}

// test_locks BarrierTests: test_filling_one_task
#[asyncio::test(virtual_time)]
async fn one_party_passes_at_once() {
    let barrier = Barrier::new(1);
    assert_eq!(barrier.wait().await.unwrap(), 0);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
    assert_eq!(barrier.parties(), 1);
}

// test_locks BarrierTests: test_filling_one_task_twice
#[asyncio::test(virtual_time)]
async fn one_party_passes_twice() {
    let barrier = leak(Barrier::new(1));
    let t1 = create_task(barrier.wait());
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 0);
    let t2 = create_task(barrier.wait());
    checkpoint().await.unwrap();
    assert!(t1.done() && t2.done());
    assert_eq!(t1.await.unwrap().unwrap(), 0);
    assert_eq!(t2.await.unwrap().unwrap(), 0);
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_filling_task_by_task
#[asyncio::test(virtual_time)]
async fn arrivals_are_counted_until_the_barrier_trips() {
    let barrier = leak(Barrier::new(3));
    let t1 = create_task(barrier.wait());
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 1);
    assert!(state(barrier).contains("Filling"));
    let t2 = create_task(barrier.wait());
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 2);
    let t3 = create_task(barrier.wait());
    checkpoint().await.unwrap();
    let mut indices: Vec<usize> = Vec::new();
    for t in [t1, t2, t3] {
        indices.push(t.await.unwrap().unwrap());
    }
    assert_eq!(indices, [0, 1, 2]);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_filling_tasks_wait_twice,
// test_filling_tasks_check_return_value
#[asyncio::test(virtual_time)]
async fn a_barrier_can_be_passed_again_and_gives_every_index_once() {
    let barrier = leak(Barrier::new(N));
    let log = log();
    let res = gather(N, || {
        let log = log.clone();
        async move {
            barrier.wait().await?;
            push(&log, "first");
            let i = barrier.wait().await?;
            push(&log, "second");
            Ok::<_, BarrierWaitError>(i)
        }
    })
    .await;
    let mut indices: Vec<usize> = res.into_iter().map(Result::unwrap).collect();
    indices.sort();
    assert_eq!(indices, (0..N).collect::<Vec<_>>());
    let events = take(&log);
    assert_eq!(events.iter().filter(|e| *e == "first").count(), N);
    assert_eq!(events.iter().filter(|e| *e == "second").count(), N);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_draining_state
#[asyncio::test(virtual_time)]
async fn the_last_task_out_ends_draining() {
    let barrier = leak(Barrier::new(N));
    let results = gather(N, || async move {
        barrier.wait().await?;
        Ok::<_, BarrierWaitError>(state(barrier).contains("Draining"))
    })
    .await;
    let results: Vec<bool> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|d| **d).count(), N - 1);
    assert!(state(barrier).contains("Filling"));
    assert_eq!(barrier.n_waiting(), 0);
}

// test_locks BarrierTests: test_blocking_tasks_while_draining
#[asyncio::test(virtual_time)]
async fn newcomers_block_while_the_barrier_drains() {
    let barrier = leak(Barrier::new(N));
    let rewait = 2;
    let barrier_nowaiting = leak(Barrier::new(N - rewait));
    let rewait_n = leak(Cell::new(rewait));
    let res = gather(N, || async move {
        barrier.wait().await?;
        if rewait_n.get() > 0 {
            rewait_n.set(rewait_n.get() - 1);
            barrier.wait().await?;
        } else {
            barrier_nowaiting.wait().await?;
            barrier.wait().await?;
        }
        Ok::<_, BarrierWaitError>(())
    })
    .await;
    assert!(res.into_iter().all(|r| r.is_ok()));
}

// test_locks BarrierTests: test_filling_tasks_cancel_one
#[asyncio::test(virtual_time)]
async fn a_cancelled_waiter_leaves_the_barrier() {
    let barrier = leak(Barrier::new(3));
    let done = leak(Cell::new(0));
    let coro = || {
        create_task(async move {
            barrier.wait().await?;
            done.set(done.get() + 1);
            Ok::<_, BarrierWaitError>(())
        })
    };
    let mut t1 = coro();
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 1);
    let t2 = coro();
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 2);

    t1.cancel();
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 1);
    assert!((&mut t1).await.is_err());
    assert!(t1.cancelled());

    let t3 = coro();
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 2);
    let t4 = coro();
    for t in [t2, t3, t4] {
        t.await.unwrap().unwrap();
    }
    assert_eq!(done.get(), 3);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_reset_barrier
#[asyncio::test(virtual_time)]
async fn resetting_an_empty_barrier_leaves_it_filling() {
    let barrier = leak(Barrier::new(1));
    create_task(barrier.reset());
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_reset_barrier_while_tasks_waiting
#[asyncio::test(virtual_time)]
async fn reset_breaks_the_current_waiters() {
    let barrier = leak(Barrier::new(N));
    let tasks: Vec<_> = (0..N - 1).map(|_| create_task(barrier.wait())).collect();
    checkpoint().await.unwrap();
    create_task(barrier.reset());
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r, Err(BarrierWaitError::Broken(_))), "{r:?}");
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!state(barrier).contains("Resetting"));
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_reset_barrier_while_tasks_waiting_and_waiting_again
#[asyncio::test(virtual_time)]
async fn tasks_broken_by_a_reset_can_wait_again() {
    let barrier = leak(Barrier::new(N));
    let broken = leak(Cell::new(0));
    let passed = leak(Cell::new(0));
    let tasks: Vec<_> = (0..N - 1)
        .map(|_| {
            create_task(async move {
                if let Err(e) = barrier.wait().await {
                    assert!(e.is_broken());
                    broken.set(broken.get() + 1);
                }
                barrier.wait().await?;
                passed.set(passed.get() + 1);
                Ok::<_, BarrierWaitError>(())
            })
        })
        .collect();
    create_task(barrier.reset());
    checkpoint().await.unwrap();
    let last = create_task(async move {
        barrier.wait().await?;
        passed.set(passed.get() + 1);
        Ok::<_, BarrierWaitError>(())
    });
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    last.await.unwrap().unwrap();
    assert!(!barrier.broken());
    assert_eq!(broken.get(), N - 1);
    assert_eq!(passed.get(), N);
    assert_eq!(barrier.n_waiting(), 0);
}

// test_locks BarrierTests: test_abort_barrier
#[asyncio::test(virtual_time)]
async fn abort_breaks_the_barrier() {
    let barrier = leak(Barrier::new(1));
    create_task(barrier.abort());
    checkpoint().await.unwrap();
    assert_eq!(barrier.n_waiting(), 0);
    assert!(barrier.broken());
    let r = barrier.wait().await;
    assert!(matches!(r, Err(BarrierWaitError::Broken(_))));
    barrier.reset().await.unwrap();
    assert!(!barrier.broken());
    assert_eq!(barrier.wait().await.unwrap(), 0);
}

// test_locks BarrierTests: test_abort_barrier_when_tasks_half_draining_half_blocking
#[asyncio::test(virtual_time)]
async fn abort_while_draining_breaks_waiting_and_blocked_tasks() {
    let barrier = leak(Barrier::new(N));
    let blocking_tasks = N / 2;
    let count = leak(Cell::new(0));
    let results1 = leak(Cell::new(0));
    let results2 = leak(Cell::new(0));
    gather(N, || async move {
        match barrier.wait().await {
            Err(e) => {
                assert!(e.is_broken());
                results1.set(results1.get() + 1);
            }
            Ok(_) => {
                count.set(count.get() + 1);
                if count.get() > blocking_tasks {
                    barrier.abort().await?;
                } else if let Err(e) = barrier.wait().await {
                    assert!(e.is_broken());
                    results2.set(results2.get() + 1);
                }
            }
        }
        Ok::<_, CancelledError>(())
    })
    .await;
    assert!(barrier.broken());
    // Tasks still leaving their first wait, and tasks blocked at the entry
    // of their second, all see the barrier broken.
    assert_eq!(results1.get(), blocking_tasks);
    assert_eq!(results2.get(), N - blocking_tasks - 1);
    assert_eq!(barrier.n_waiting(), 0);
}

// test_locks BarrierTests: test_abort_barrier_when_exception
#[asyncio::test(virtual_time)]
async fn a_task_failing_inside_the_barrier_aborts_it_for_the_others() {
    let barrier = leak(Barrier::new(N));
    let results1 = Rc::new(RefCell::new(0));
    let results2 = Rc::new(RefCell::new(0));
    let (r1, r2) = (results1.clone(), results2.clone());
    gather(N, move || {
        let (r1, r2) = (r1.clone(), r2.clone());
        async move {
            let i = match barrier.wait().await {
                Ok(i) => i,
                Err(e) => {
                    assert!(e.is_broken());
                    *r2.borrow_mut() += 1;
                    return Ok(());
                }
            };
            if i == N / 2 {
                // "raise RuntimeError" inside the barrier: abort it.
                barrier.abort().await?;
                return Ok(());
            }
            match barrier.wait().await {
                Ok(_) => *r1.borrow_mut() += 1,
                Err(e) => {
                    assert!(e.is_broken());
                    *r2.borrow_mut() += 1;
                }
            }
            Ok::<_, CancelledError>(())
        }
    })
    .await;
    assert!(barrier.broken());
    assert_eq!(*results1.borrow(), 0);
    assert_eq!(*results2.borrow(), N - 1);
    assert_eq!(barrier.n_waiting(), 0);
}

// new: the error enum carries a live cancellation; `?` converts both ways
#[asyncio::test(virtual_time)]
async fn a_cancelled_wait_is_a_cancellation_error() {
    let barrier = leak(Barrier::new(2));
    let mut t = create_task(async move { barrier.wait().await });
    checkpoint().await.unwrap();
    t.cancel();
    let r = (&mut t).await;
    assert!(r.is_err(), "the task ended cancelled: the error propagated");
    assert!(t.cancelled());
    assert_eq!(barrier.n_waiting(), 0);
    let e = BarrierWaitError::from(asyncio::BrokenBarrierError);
    assert!(e.is_broken() && !e.is_cancelled());
}

// test_locks BarrierTests: test_reset_barrier_when_tasks_half_draining (a
// reset while the released tasks drain out: those not yet resumed leave
// with BrokenBarrierError, and the barrier is usable again)
#[asyncio::test(virtual_time)]
async fn a_reset_during_draining_breaks_the_tasks_not_yet_out() {
    let barrier = leak(Barrier::new(N));
    let rest_of_tasks = N / 2;
    let out = leak(Cell::new(0));
    let broken = leak(Cell::new(0));
    let res = gather(N, || async move {
        match barrier.wait().await {
            Err(BarrierWaitError::Broken(_)) => broken.set(broken.get() + 1),
            Err(e) => return Err(e),
            Ok(_) => {
                out.set(out.get() + 1);
                // asyncio compares `barrier._count`: the tasks still inside.
                if N - out.get() == rest_of_tasks {
                    barrier.reset().await?;
                }
            }
        }
        Ok::<_, BarrierWaitError>(())
    })
    .await;
    assert!(res.into_iter().all(|r| r.is_ok()));
    assert_eq!(broken.get(), rest_of_tasks);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!state(barrier).contains("Resetting"));
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_reset_barrier_when_tasks_half_draining_half_blocking
// (the reset breaks the tasks still draining; the tasks already waiting
// again at the entry are not broken, and everyone passes a second time)
#[asyncio::test(virtual_time)]
async fn a_reset_breaks_draining_tasks_but_not_those_blocked_at_the_entry() {
    let barrier = leak(Barrier::new(N));
    let blocking_tasks = N / 2;
    let count = leak(Cell::new(0));
    let results1 = leak(Cell::new(0));
    let results2 = leak(Cell::new(0));
    let res = gather(N, || async move {
        match barrier.wait().await {
            Err(BarrierWaitError::Broken(_)) => {
                results1.set(results1.get() + 1);
                barrier.wait().await?;
            }
            Err(e) => return Err(e),
            Ok(_) => {
                count.set(count.get() + 1);
                if count.get() > blocking_tasks {
                    barrier.reset().await?;
                    barrier.wait().await?;
                } else if let Err(e) = barrier.wait().await {
                    if !e.is_broken() {
                        return Err(e);
                    }
                    results2.set(results2.get() + 1);
                }
            }
        }
        Ok::<_, BarrierWaitError>(())
    })
    .await;
    assert!(res.into_iter().all(|r| r.is_ok()));
    assert_eq!(results1.get(), blocking_tasks);
    assert_eq!(results2.get(), 0);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!state(barrier).contains("Resetting"));
    assert!(!barrier.broken());
}

// test_locks BarrierTests: test_reset_barrier_while_tasks_draining (the last
// task out resets the barrier: nobody is broken, and all pass it twice more)
#[asyncio::test(virtual_time)]
async fn a_reset_by_the_last_task_out_breaks_nobody() {
    let barrier = leak(Barrier::new(N));
    let count = leak(Cell::new(0));
    let results1 = leak(Cell::new(0));
    let results2 = leak(Cell::new(0));
    let results3 = leak(Cell::new(0));
    let res = gather(N, || async move {
        barrier.wait().await?;
        count.set(count.get() + 1);
        if count.get() == N {
            barrier.reset().await?;
            barrier.wait().await?;
        } else {
            match barrier.wait().await {
                Ok(_) => results1.set(results1.get() + 1),
                Err(BarrierWaitError::Broken(_)) => results2.set(results2.get() + 1),
                Err(e) => return Err(e),
            }
        }
        barrier.wait().await?;
        results3.set(results3.get() + 1);
        Ok::<_, BarrierWaitError>(())
    })
    .await;
    assert!(res.into_iter().all(|r| r.is_ok()));
    assert!(!barrier.broken());
    assert_eq!(results1.get(), N - 1);
    assert_eq!(results2.get(), 0);
    assert_eq!(results3.get(), N);
    assert_eq!(barrier.n_waiting(), 0);
}

// test_locks BarrierTests: test_abort_barrier_when_exception_then_resetting
// (one task fails inside the barrier and aborts it; after a second barrier
// synchronises everyone, one reset makes the first barrier usable again)
#[asyncio::test(virtual_time)]
async fn an_aborted_barrier_is_usable_again_after_a_reset() {
    let barrier1 = leak(Barrier::new(N));
    let barrier2 = leak(Barrier::new(N));
    let results1 = leak(Cell::new(0));
    let results2 = leak(Cell::new(0));
    let results3 = leak(Cell::new(0));
    let res = gather(N, || async move {
        match barrier1.wait().await {
            // "raise RuntimeError" inside the barrier: abort it.
            Ok(i) if i == N / 2 => barrier1.abort().await?,
            Ok(_) => match barrier1.wait().await {
                Ok(_) => results1.set(results1.get() + 1),
                Err(BarrierWaitError::Broken(_)) => results2.set(results2.get() + 1),
                Err(e) => return Err(e),
            },
            Err(BarrierWaitError::Broken(_)) => results2.set(results2.get() + 1),
            Err(e) => return Err(e),
        }
        // Everyone has left barrier1 before the reset, and no one enters it
        // again before the reset.
        if barrier2.wait().await? == N / 2 {
            barrier1.reset().await?;
        }
        barrier2.wait().await?;
        barrier1.wait().await?;
        results3.set(results3.get() + 1);
        Ok::<_, BarrierWaitError>(())
    })
    .await;
    assert!(res.into_iter().all(|r| r.is_ok()));
    assert!(!barrier1.broken());
    assert_eq!(results1.get(), 0);
    assert_eq!(results2.get(), N - 1);
    assert_eq!(results3.get(), N);
}
