//! `as_completed`: tasks in completion order, the timeout, and that nothing
//! is cancelled — ported from CPython's `test_tasks` as_completed tests.

mod common;

use asyncio::{as_completed, checkpoint, create_task, sleep, CancelledError, Task, TaskRef};
use common::*;

type R<T> = Result<T, CancelledError>;

fn sleeper(s: u64) -> Task<R<u64>> {
    create_task(async move {
        sleep(secs(s)).await?;
        Ok(s)
    })
}

// test_tasks: test_as_completed
#[asyncio::test(virtual_time)]
async fn tasks_come_in_completion_order() {
    let clock = Clock::start();
    let mut it = as_completed([sleeper(3), sleeper(1), sleeper(2)], None);
    let mut seen = Vec::new();
    while let Some(t) = it.next().await.unwrap() {
        seen.push((t.await.unwrap().unwrap(), clock.elapsed()));
    }
    assert_eq!(seen, [(1, secs(1)), (2, secs(2)), (3, secs(3))]);
}

// test_tasks: test_as_completed_with_timeout (each remaining task gives a
// TimeoutError; none is cancelled)
#[asyncio::test(virtual_time)]
async fn the_timeout_replaces_every_unfinished_task() {
    let clock = Clock::start();
    let tasks = [sleeper(1), sleeper(5), sleeper(6)];
    let refs: Vec<TaskRef> = tasks.iter().map(|t| t.task_ref()).collect();
    let mut it = as_completed(refs.clone(), secs(2));
    assert_eq!(it.remaining(), 3);
    assert!(it.next().await.unwrap().unwrap() == refs[0]);
    assert!(it.next().await.unwrap_err().is_timeout());
    assert_eq!(clock.elapsed(), secs(2));
    assert!(it.next().await.unwrap_err().is_timeout());
    assert!(it.next().await.unwrap().is_none());
    assert!(!refs[1].done() && !refs[1].cancelled() && !refs[2].cancelled());
    drop(it);
    let [_, b, _] = tasks;
    assert_eq!(b.await.unwrap().unwrap(), 5);
}

// test_tasks: test_as_completed_with_unused_timeout (all done before the
// timeout: it never fires)
#[asyncio::test(virtual_time)]
async fn an_unused_timeout_is_disarmed() {
    let mut it = as_completed([sleeper(1)], secs(10));
    assert!(it.next().await.unwrap().is_some());
    assert!(it.next().await.unwrap().is_none());
    let clock = Clock::start();
    sleep(secs(20)).await.unwrap();
    assert_eq!(clock.elapsed(), secs(20));
}

// test_tasks: test_as_completed_reverse_wait (in part: whatever the
// argument order, the first yielded is the first finished; there are no
// placeholder futures here to await out of order)
#[asyncio::test(virtual_time)]
async fn order_is_by_completion_whatever_the_argument_order() {
    let a = sleeper(2);
    let b = sleeper(1);
    let mut it = as_completed([&a, &b], None);
    let first = it.next().await.unwrap().unwrap();
    assert!(first.task_ref() == b.task_ref());
    let second = it.next().await.unwrap().unwrap();
    assert!(second.task_ref() == a.task_ref());
}

// test_tasks: test_as_completed_concurrent (in part: two tasks done on one
// tick are both yielded, in the order they finished; they are awaited one
// after the other, not concurrently)
#[asyncio::test(virtual_time)]
async fn tasks_finishing_together_come_in_finish_order() {
    let clock = Clock::start();
    let mut tasks = [sleeper(1), sleeper(1)];
    let first_id = tasks[0].id();
    let mut it = as_completed(tasks.iter_mut(), None);
    let x = it.next().await.unwrap().unwrap();
    assert_eq!(x.id(), first_id);
    assert_eq!(x.await.unwrap().unwrap(), 1);
    let y = it.next().await.unwrap().unwrap();
    assert_eq!(y.await.unwrap().unwrap(), 1);
    assert_eq!(clock.elapsed(), secs(1));
}

// test_tasks: test_as_completed_duplicate_coroutines (a task given twice is
// yielded once)
#[asyncio::test(virtual_time)]
async fn a_task_given_twice_is_yielded_once() {
    let t = sleeper(1);
    let r = t.task_ref();
    let mut it = as_completed([r.clone(), r], None);
    assert_eq!(it.remaining(), 1);
    assert!(it.next().await.unwrap().is_some());
    assert!(it.next().await.unwrap().is_none());
}

// asyncio: cancelling the consumer takes nothing and cancels nothing
#[asyncio::test(virtual_time)]
async fn cancelling_the_consumer_keeps_the_next_task() {
    let a = sleeper(1);
    let ra = a.task_ref();
    let mut it = as_completed([a], None);
    let mut consumer = create_task(async move {
        let r = it.next().await;
        let cancelled = matches!(r, Err(ref e) if e.is_cancelled());
        drop(r); // swallowed: hand the iterator back
        (it, cancelled)
    });
    checkpoint().await.unwrap();
    consumer.cancel();
    let (mut it, cancelled) = (&mut consumer).await.unwrap();
    assert!(cancelled);
    assert!(!ra.done() && !ra.cancelled());
    let next = it.next().await.unwrap().unwrap();
    assert_eq!(next.await.unwrap().unwrap(), 1);
}

// asyncio: tasks already done are yielded on the next turn (their
// done-callbacks run first); later ones one turn after their callback
#[asyncio::test(virtual_time)]
async fn finished_tasks_are_yielded_after_their_callbacks() {
    let t = create_task(async { 7 });
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
    let mut it = as_completed([t], None);
    let t = it.next().await.unwrap().unwrap();
    push(&log, "yielded");
    assert_eq!(t.await.unwrap(), 7);
    ticker.await.unwrap().unwrap();
    assert_eq!(take(&log), ["tick 0", "tick 1", "yielded", "tick 2"]);
}
