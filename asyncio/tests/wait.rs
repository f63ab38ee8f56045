//! `wait`: `(done, pending)` by `ReturnWhen`, timeouts, and that nothing is
//! ever cancelled — ported from CPython's `test_tasks` wait tests.

mod common;

use asyncio::{checkpoint, create_task, sleep, wait, CancelledError, ReturnWhen, Task, TaskRef};
use common::*;

type R<T> = Result<T, CancelledError>;

fn sleeper(s: u64) -> Task<R<u64>> {
    create_task(async move {
        sleep(secs(s)).await?;
        Ok(s)
    })
}

// test_tasks: test_wait
#[asyncio::test(virtual_time)]
async fn all_completed_waits_for_every_task() {
    let clock = Clock::start();
    let tasks = vec![sleeper(1), sleeper(3)];
    let (done, pending) = wait(tasks, None, ReturnWhen::AllCompleted).await.unwrap();
    assert_eq!(done.len(), 2);
    assert!(pending.is_empty());
    assert_eq!(clock.elapsed(), secs(3));
    let mut total = 0;
    for t in done {
        total += t.await.unwrap().unwrap();
    }
    assert_eq!(total, 4);
}

// test_tasks: test_wait_first_completed
#[asyncio::test(virtual_time)]
async fn first_completed_returns_after_the_first() {
    let clock = Clock::start();
    let tasks = [sleeper(10), sleeper(1)];
    let (done, pending) = wait(&tasks, None, ReturnWhen::FirstCompleted)
        .await
        .unwrap();
    assert_eq!(clock.elapsed(), secs(1));
    assert_eq!((done.len(), pending.len()), (1, 1));
    assert!(done[0].task_ref() == tasks[1].task_ref());
    assert!(!pending[0].cancelled(), "wait cancels nothing");
}

// test_tasks: test_wait_really_done (the partition is made when the waiter
// resumes: a task that finished meanwhile is in `done` too)
#[asyncio::test(virtual_time)]
async fn tasks_finishing_before_the_waiter_resumes_are_done_too() {
    let a = create_task(async {
        checkpoint().await?;
        Ok::<_, CancelledError>(())
    });
    let b = create_task(async {
        checkpoint().await?;
        checkpoint().await?;
        Ok::<_, CancelledError>(())
    });
    let (done, pending) = wait([&a, &b], None, ReturnWhen::FirstCompleted)
        .await
        .unwrap();
    assert_eq!((done.len(), pending.len()), (2, 0));
}

// test_tasks: test_wait_first_exception_in_wait (a panic during the wait
// is a task's exception)
#[asyncio::test(virtual_time)]
async fn first_exception_stops_at_a_panic() {
    let clock = Clock::start();
    let slow = sleeper(10);
    let bad = create_task(async {
        sleep(secs(2)).await.unwrap();
        panic!("bad");
    });
    let (done, pending) = wait(
        [slow.task_ref(), bad.task_ref()],
        None,
        ReturnWhen::FirstException,
    )
    .await
    .unwrap();
    assert_eq!(clock.elapsed(), secs(2));
    assert_eq!((done.len(), pending.len()), (1, 1));
    assert!(done[0].panicked());
    bad.cancel(); // retrieve the panic: wait never raises it
}

// test_tasks: test_wait_first_exception (the task already failed when the
// wait starts: it returns at once)
#[asyncio::test(virtual_time)]
async fn first_exception_returns_at_once_for_a_task_that_already_failed() {
    let clock = Clock::start();
    let slow = sleeper(10);
    let bad: Task<()> = create_task(async { panic!("err") });
    checkpoint().await.unwrap(); // both take their first step; `bad` panics
    assert!(bad.panicked());
    let (done, pending) = wait(
        [bad.task_ref(), slow.task_ref()],
        None,
        ReturnWhen::FirstException,
    )
    .await
    .unwrap();
    assert_eq!(clock.elapsed(), secs(0));
    assert_eq!((done.len(), pending.len()), (1, 1));
    assert!(done[0] == bad.task_ref());
    assert!(pending[0] == slow.task_ref() && !slow.done());
    bad.cancel(); // retrieve the panic: wait never raises it
}

// Not in test_tasks: for FIRST_EXCEPTION, an Err output and a cancelled
// task are not exceptions: wait goes on to the end
#[asyncio::test(virtual_time)]
async fn first_exception_ignores_err_outputs_and_cancellations() {
    let clock = Clock::start();
    let err = create_task(async {
        sleep(secs(1)).await.unwrap();
        Err::<u64, &str>("not an exception")
    });
    let cancelled = sleeper(10);
    cancelled.cancel();
    let last = sleeper(3);
    let refs = [err.task_ref(), cancelled.task_ref(), last.task_ref()];
    let (done, pending) = wait(refs, None, ReturnWhen::FirstException).await.unwrap();
    assert_eq!((done.len(), pending.len()), (3, 0));
    assert_eq!(clock.elapsed(), secs(3));
    assert!(err.await.unwrap().is_err());
}

// test_tasks: test_wait_with_timeout (nothing is cancelled on timeout)
#[asyncio::test(virtual_time)]
async fn timeout_returns_the_pending_tasks_uncancelled() {
    let clock = Clock::start();
    let tasks = vec![sleeper(1), sleeper(5)];
    let (done, pending) = wait(tasks, secs(2), ReturnWhen::AllCompleted)
        .await
        .unwrap();
    assert_eq!(clock.elapsed(), secs(2));
    assert_eq!((done.len(), pending.len()), (1, 1));
    let p = pending.into_iter().next().unwrap();
    assert!(!p.cancelled());
    assert_eq!(p.await.unwrap().unwrap(), 5);
    assert_eq!(clock.elapsed(), secs(5));
}

// test_tasks: test_wait_concurrent_complete (timeout and completion on the
// same tick)
#[asyncio::test(virtual_time)]
async fn completion_and_timeout_on_the_same_tick() {
    let tasks = vec![sleeper(1), sleeper(2)];
    checkpoint().await.unwrap(); // the sleepers arm their timers first

    let (done, pending) = wait(tasks, secs(1), ReturnWhen::AllCompleted)
        .await
        .unwrap();
    assert_eq!((done.len(), pending.len()), (1, 1));
}

// test_tasks: test_wait_duplicate_coroutines (one task listed twice)
#[asyncio::test(virtual_time)]
async fn a_task_listed_twice_counts_once() {
    let t = sleeper(1);
    let r = t.task_ref();
    let (done, pending) = wait([r.clone(), r.clone()], None, ReturnWhen::AllCompleted)
        .await
        .unwrap();
    assert_eq!((done.len(), pending.len()), (2, 0));
}

// test_tasks: test_wait_errors (asyncio raises ValueError for an empty set;
// here it is trivially complete)
#[asyncio::test(virtual_time)]
async fn empty_wait_returns_at_once() {
    let none: Vec<TaskRef> = Vec::new();
    let (done, pending) = wait(none, None, ReturnWhen::FirstCompleted).await.unwrap();
    assert!(done.is_empty() && pending.is_empty());
}

// asyncio: cancelling the waiting task leaves the tasks alone
#[asyncio::test(virtual_time)]
async fn cancelling_the_waiter_cancels_nothing() {
    let a = sleeper(5);
    let ra = a.task_ref();
    let mut waiter = create_task(async move {
        let (done, _) = wait([ra], None, ReturnWhen::AllCompleted).await?;
        Ok::<_, CancelledError>(done.len())
    });
    sleep(secs(1)).await.unwrap();
    waiter.cancel();
    assert!((&mut waiter).await.is_err());
    assert!(!a.done() && !a.cancelled() && a.cancelling() == 0);
    assert_eq!(a.await.unwrap().unwrap(), 5);
}

// asyncio: even finished tasks cost a callback turn plus the waiter's wakeup
#[asyncio::test(virtual_time)]
async fn waiting_for_finished_tasks_takes_two_turns() {
    let t = create_task(async {});
    checkpoint().await.unwrap();
    assert!(t.done());
    let log = log();
    let l = log.clone();
    let ticker = create_task(async move {
        for i in 0..3 {
            push(&l, format!("tick {i}"));
            checkpoint().await?;
        }
        Ok::<_, CancelledError>(())
    });
    let (done, _) = wait([&t], None, ReturnWhen::AllCompleted).await.unwrap();
    push(&log, "wait done");
    assert_eq!(done.len(), 1);
    ticker.await.unwrap().unwrap();
    assert_eq!(take(&log), ["tick 0", "tick 1", "wait done", "tick 2"]);
}

// test_tasks: test_wait_with_exception (ALL_COMPLETED with a task that
// panics: both are done, nothing is raised; waiting again returns at once)
#[asyncio::test(virtual_time)]
async fn all_completed_with_a_panicking_task_raises_nothing() {
    let clock = Clock::start();
    let a = create_task(sleep(ms(100)));
    let b = create_task(async {
        sleep(ms(150)).await.unwrap();
        panic!("really");
    });
    for _ in 0..2 {
        let (done, pending) = wait([b.task_ref(), a.task_ref()], None, ReturnWhen::AllCompleted)
            .await
            .unwrap();
        assert_eq!((done.len(), pending.len()), (2, 0));
        assert_eq!(done.iter().filter(|t| t.panicked()).count(), 1);
        assert_eq!(clock.elapsed(), ms(150));
    }
    b.cancel(); // retrieve the panic: wait never raises it
}
