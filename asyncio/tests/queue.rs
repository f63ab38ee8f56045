//! `Queue`, `LifoQueue`, `PriorityQueue`: order, bounds, the nowait errors,
//! task_done/join, shutdown, and the cancellation rules — a put wakes a
//! getter without handing it the item, so a cancelled getter never loses
//! one — ending with a randomized stress test.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, get_running_loop, sleep, wait_for, CancelledError, GetError,
    GetNowaitError, LifoQueue, PriorityQueue, PutError, PutNowaitError, Queue, QueueFull,
    TaskDoneTooManyTimes, TaskRef, TimeoutError,
};
use common::*;

/// Awaits `fut`, failing instead of hanging if a lost wake-up left it asleep.
async fn within<F: std::future::IntoFuture>(fut: F) -> F::Output {
    wait_for(fut, secs(60))
        .await
        .expect("still waiting after 60 s: a wake-up was lost")
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn getters(q: &Queue<impl Sized>) -> String {
    format!("{q:?}")
}

// test_queues QueueBasicTests: test_empty, test_full
#[asyncio::test(virtual_time)]
async fn empty_and_full_follow_the_items() {
    let q = Queue::new(0);
    assert!(q.empty());
    q.put_nowait(1).unwrap();
    assert!(!q.empty());
    assert_eq!(q.get_nowait().unwrap(), 1);
    assert!(q.empty());
    assert!(!q.full());

    let q = Queue::new(1);
    assert!(!q.full());
    q.put_nowait(1).unwrap();
    assert!(q.full());
    assert_eq!(q.maxsize(), 1);
    assert_eq!(q.qsize(), 1);
}

// test_queues: QueueBasicTests.test_order, LifoQueueTests.test_order,
// PriorityQueueTests.test_order
#[asyncio::test(virtual_time)]
async fn each_kind_of_queue_has_its_order() {
    let fifo = Queue::new(0);
    let lifo = LifoQueue::new(0);
    let prio = PriorityQueue::new(0);
    for i in [1, 3, 2] {
        fifo.put(i).await.unwrap();
        lifo.put(i).await.unwrap();
        prio.put(i).await.unwrap();
    }
    let mut got = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        got.0.push(fifo.get().await.unwrap());
        got.1.push(lifo.get().await.unwrap());
        got.2.push(prio.get().await.unwrap());
    }
    assert_eq!(got.0, [1, 3, 2]);
    assert_eq!(got.1, [2, 3, 1]);
    assert_eq!(got.2, [1, 2, 3]);
}

// test_queues QueueBasicTests: test_maxsize
#[asyncio::test(virtual_time)]
async fn a_putter_blocks_at_maxsize_until_a_get() {
    let q = leak(Queue::new(2));
    assert_eq!(q.maxsize(), 2);
    let have_been_put = log();
    let h = have_been_put.clone();
    let t = create_task(async move {
        for i in 0..3 {
            q.put(i).await.map_err(|e| e.into_parts().0.unwrap())?;
            push(&h, i.to_string());
        }
        Ok::<_, CancelledError>(())
    });
    checkpoint().await.unwrap();
    checkpoint().await.unwrap();
    assert_eq!(take(&have_been_put), ["0", "1"]);
    assert_eq!(q.get().await.unwrap(), 0);
    checkpoint().await.unwrap();
    assert_eq!(take(&have_been_put), ["2"]);
    assert_eq!(q.get().await.unwrap(), 1);
    assert_eq!(q.get().await.unwrap(), 2);
    assert!(t.done());
    t.await.unwrap().unwrap();
}

// test_queues QueueGetTests: test_blocking_get_wait
#[asyncio::test(virtual_time)]
async fn a_getter_waits_for_a_put_from_a_timer() {
    let q = Rc::new(Queue::new(0));
    let qq = q.clone();
    get_running_loop().unwrap().call_later(ms(10), move || {
        qq.put_nowait(1).unwrap();
    });
    let clock = Clock::start();
    assert_eq!(q.get().await.unwrap(), 1);
    assert_eq!(clock.elapsed(), ms(10));
}

// test_queues: QueueGetTests.test_nonblocking_get_exception,
// QueuePutTests.test_nonblocking_put_exception
#[asyncio::test(virtual_time)]
async fn the_nowait_errors_are_typed_and_hand_the_item_back() {
    let q = Queue::new(1);
    assert!(matches!(q.get_nowait(), Err(GetNowaitError::Empty(_))));
    q.put_nowait("a").unwrap();
    match q.put_nowait("b") {
        Err(PutNowaitError::Full(QueueFull(item))) => assert_eq!(item, "b"),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.put_nowait("c").unwrap_err().into_inner(), "c");
    assert_eq!(q.get_nowait().unwrap(), "a");
    assert_eq!(
        q.get_nowait().unwrap_err().to_string(),
        "the queue is empty"
    );
}

// test_queues QueueGetTests: test_get_cancelled_race
#[asyncio::test(virtual_time)]
async fn a_cancelled_getter_does_not_take_the_next_item() {
    let q = leak(Queue::new(0));
    let t1 = create_task(q.get());
    let mut t2 = create_task(q.get());
    checkpoint().await.unwrap();
    t1.cancel();
    checkpoint().await.unwrap();
    assert!(t1.done());
    q.put("a").await.unwrap();
    checkpoint().await.unwrap();
    assert_eq!(within(&mut t2).await.unwrap().unwrap(), "a");
}

// test_queues QueueGetTests: test_get_with_waiting_putters
#[asyncio::test(virtual_time)]
async fn gets_release_waiting_putters_in_order() {
    let q = leak(Queue::new(1));
    create_task(q.put("a"));
    create_task(q.put("b"));
    assert_eq!(q.get().await.unwrap(), "a");
    assert_eq!(q.get().await.unwrap(), "b");
}

// test_queues: QueueGetTests.test_why_are_getters_waiting (and, in part,
// QueuePutTests.test_put_cancelled: the putter is done once its item is
// taken)
#[asyncio::test(virtual_time)]
async fn a_producer_and_a_consumer_pass_every_item() {
    let q = leak(Queue::new(1));
    let producer = create_task(async move {
        for i in 0..5 {
            if q.put(i).await.is_err() {
                panic!("put failed");
            }
        }
    });
    let consumer = create_task(async move {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(q.get().await?);
        }
        Ok::<_, GetError>(got)
    });
    producer.await.unwrap();
    assert_eq!(consumer.await.unwrap().unwrap(), [0, 1, 2, 3, 4]);
}

// test_queues QueueGetTests: test_cancelled_getters_not_being_held_in_self_getters
#[asyncio::test(virtual_time)]
async fn a_timed_out_get_leaves_the_queue() {
    let q: Queue<u32> = Queue::new(5);
    let r = wait_for(q.get(), ms(100)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(getters(&q).contains("getters: 0"), "{q:?}");
}

// test_queues QueuePutTests: test_blocking_put_wait
#[asyncio::test(virtual_time)]
async fn a_putter_waits_for_a_get_from_a_timer() {
    let q = Rc::new(Queue::new(1));
    let qq = q.clone();
    get_running_loop().unwrap().call_later(ms(10), move || {
        qq.get_nowait().unwrap();
    });
    let clock = Clock::start();
    q.put(1).await.unwrap();
    q.put(2).await.unwrap();
    assert_eq!(clock.elapsed(), ms(10));
    assert_eq!(q.get_nowait().unwrap(), 2);
}

// test_queues QueuePutTests: test_get_cancel_drop_one_pending_reader
#[asyncio::test(virtual_time)]
async fn a_getter_cancelled_after_a_put_woke_it_loses_no_item() {
    let q = leak(Queue::new(0));
    let mut reader = create_task(q.get());
    checkpoint().await.unwrap();
    q.put_nowait(1).unwrap();
    q.put_nowait(2).unwrap();
    reader.cancel();
    let result = match (&mut reader).await {
        Ok(r) => r.unwrap(),
        // Try again: the item it was woken for is still there.
        Err(_cancelled) => within(create_task(q.get())).await.unwrap().unwrap(),
    };
    // 2 would mean 1 was dropped.
    assert_eq!(result, 1);
}

// test_queues QueuePutTests: test_get_cancel_drop_many_pending_readers
#[asyncio::test(virtual_time)]
async fn cancelling_one_of_many_woken_readers_loses_no_item() {
    let q = leak(Queue::new(0));
    let mut reader1 = create_task(q.get());
    let reader2 = create_task(q.get());
    let reader3 = create_task(q.get());
    checkpoint().await.unwrap();
    q.put_nowait(1).unwrap();
    q.put_nowait(2).unwrap();
    reader1.cancel();
    assert!((&mut reader1).await.is_err());
    let mut got = [
        within(reader2).await.unwrap().unwrap(),
        within(reader3).await.unwrap().unwrap(),
    ];
    got.sort();
    assert_eq!(got, [1, 2]);
}

// test_queues QueuePutTests: test_put_cancel_drop
#[asyncio::test(virtual_time)]
async fn a_putter_cancelled_after_a_get_woke_it_gets_its_item_back() {
    let q = leak(Queue::new(1));
    q.put_nowait(1).unwrap();
    let mut writer = create_task(q.put(2));
    checkpoint().await.unwrap();
    assert_eq!(q.get_nowait().unwrap(), 1);
    writer.cancel();
    if (&mut writer).await.is_err() {
        // try again
        within(create_task(q.put(2))).await.unwrap().unwrap();
    }
    assert_eq!(q.get_nowait().unwrap(), 2);
    assert_eq!(q.qsize(), 0);
}

// new: the item of a cancelled put comes back in the error
#[asyncio::test(virtual_time)]
async fn a_cancelled_put_hands_the_item_back() {
    let q = leak(Queue::new(1));
    q.put_nowait(String::from("first")).unwrap();
    let t = create_task(async move {
        match q.put(String::from("second")).await {
            Err(PutError::Cancelled(_cancelled, item)) => item,
            other => panic!("{other:?}"),
        }
    });
    checkpoint().await.unwrap();
    t.cancel();
    checkpoint().await.unwrap();
    assert_eq!(t.await.unwrap(), "second");
    assert_eq!(q.qsize(), 1);
}

// test_queues QueuePutTests: test_put_cancelled_race
#[asyncio::test(virtual_time)]
async fn a_cancelled_putter_does_not_block_the_next() {
    let q = leak(Queue::new(1));
    let put_a = create_task(q.put("a"));
    let put_b = create_task(q.put("b"));
    let put_c = create_task(q.put("X"));
    checkpoint().await.unwrap();
    assert!(put_a.done());
    assert!(!put_b.done());
    put_c.cancel();
    checkpoint().await.unwrap();
    assert!(put_c.done());
    assert_eq!(q.get_nowait().unwrap(), "a");
    checkpoint().await.unwrap();
    assert_eq!(q.get_nowait().unwrap(), "b");
    within(put_b).await.unwrap().unwrap();
}

// test_queues QueuePutTests: test_put_with_waiting_getters
#[asyncio::test(virtual_time)]
async fn a_put_wakes_a_waiting_getter() {
    let q = leak(Queue::new(0));
    let t = create_task(q.get());
    checkpoint().await.unwrap();
    q.put("a").await.unwrap();
    assert_eq!(t.await.unwrap().unwrap(), "a");
}

// test_queues QueuePutTests: test_why_are_putters_waiting
#[asyncio::test(virtual_time)]
async fn a_get_nowait_burst_wakes_as_many_putters() {
    let q = leak(Queue::new(2));
    let getter = create_task(async move {
        checkpoint().await?;
        for _ in 0..q.qsize() {
            q.get_nowait().unwrap();
        }
        Ok::<_, CancelledError>(())
    });
    let putters: Vec<_> = (0..4).map(|i| create_task(q.put(i))).collect();
    getter.await.unwrap().unwrap();
    for p in putters {
        p.await.unwrap().unwrap();
    }
    assert_eq!(q.qsize(), 2);
}

// test_queues QueuePutTests: test_cancelled_puts_not_being_held_in_self_putters,
// test_cancelled_put_silence_value_error_exception
#[asyncio::test(virtual_time)]
async fn a_cancelled_put_leaves_the_queue_whether_or_not_it_was_woken() {
    let q = leak(Queue::new(1));
    q.put_nowait(1).unwrap();
    let mut put_task = create_task(q.put(1));
    checkpoint().await.unwrap();
    assert!(getters(q).contains("putters: 1"));
    put_task.cancel();
    assert!((&mut put_task).await.is_err());
    assert!(getters(q).contains("putters: 0"));

    // Woken by a get first, then cancelled.
    let mut put_task = create_task(q.put(2));
    checkpoint().await.unwrap();
    q.get_nowait().unwrap();
    put_task.cancel();
    assert!((&mut put_task).await.is_err());
    assert!(getters(q).contains("putters: 0"));
    assert!(q.empty());
}

// new (asyncio verified): a woken getter whose item was taken meanwhile
// waits again at the tail
#[asyncio::test(virtual_time)]
async fn a_getter_robbed_of_its_item_waits_again_at_the_tail() {
    let q = leak(Queue::new(0));
    let log = log();
    let getter = |name: &'static str| {
        let log = log.clone();
        create_task(async move {
            let item = q.get().await?;
            push(&log, format!("{name}:{item}"));
            Ok::<_, GetError>(())
        })
    };
    let g1 = getter("G1");
    let g2 = getter("G2");
    checkpoint().await.unwrap();
    q.put_nowait("a").unwrap(); // wakes G1 ...
    assert_eq!(q.get_nowait().unwrap(), "a"); // ... but the item is taken
    checkpoint().await.unwrap();
    q.put_nowait("b").unwrap();
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["G2:b"]);
    q.put_nowait("c").unwrap();
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["G1:c"]);
    g1.await.unwrap().unwrap();
    g2.await.unwrap().unwrap();
}

// new: every consumer gets its turn (no getter starves)
#[asyncio::test(virtual_time)]
async fn getters_are_served_round_robin() {
    let q = Rc::new(Queue::new(0));
    let log = log();
    let mut consumers = Vec::new();
    for name in ["a", "b", "c"] {
        let (q, log) = (q.clone(), log.clone());
        consumers.push(create_task(async move {
            loop {
                match q.get().await {
                    Ok(_) => push(&log, name),
                    Err(GetError::ShutDown(_)) => return,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    checkpoint().await.unwrap(); // every consumer is waiting
    for i in 0..9 {
        q.put(i).await.unwrap();
        sleep(ms(1)).await.unwrap();
    }
    q.shutdown(false);
    for c in consumers {
        c.await.unwrap();
    }
    assert_eq!(take(&log).concat(), "abcabcabc");
}

// test_queues _QueueJoinTestMixin: test_task_done_underflow
#[asyncio::test(virtual_time)]
async fn task_done_without_an_item_is_an_error_value() {
    assert_eq!(Queue::<()>::new(0).task_done(), Err(TaskDoneTooManyTimes));
    assert_eq!(
        LifoQueue::<()>::new(0).task_done(),
        Err(TaskDoneTooManyTimes)
    );
    assert_eq!(
        PriorityQueue::<u8>::new(0).task_done(),
        Err(TaskDoneTooManyTimes)
    );
}

// test_queues _QueueJoinTestMixin: test_task_done
async fn join_waits_for_every_task_done(q: &'static Queue<u64>) {
    for i in 0..100 {
        q.put_nowait(i).unwrap();
    }
    let accumulator = Rc::new(Cell::new(0));
    let running = Rc::new(Cell::new(true));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (acc, running) = (accumulator.clone(), running.clone());
            create_task(async move {
                while running.get() {
                    let item = q.get().await?;
                    acc.set(acc.get() + item);
                    q.task_done().unwrap();
                }
                Ok::<_, GetError>(())
            })
        })
        .collect();
    q.join().await.unwrap();
    assert_eq!(accumulator.get(), (0..100).sum());
    running.set(false);
    for _ in &workers {
        q.put_nowait(0).unwrap();
    }
    for w in workers {
        w.await.unwrap().unwrap();
    }
}

#[asyncio::test(virtual_time)]
async fn join_waits_for_every_task_done_fifo() {
    join_waits_for_every_task_done(leak(Queue::new(0))).await;
}

#[asyncio::test(virtual_time)]
async fn join_waits_for_every_task_done_lifo() {
    // A LifoQueue is a Queue (Python's subclass), through Deref.
    join_waits_for_every_task_done(leak::<LifoQueue<u64>>(LifoQueue::new(0))).await;
}

#[asyncio::test(virtual_time)]
async fn join_waits_for_every_task_done_priority() {
    join_waits_for_every_task_done(leak::<PriorityQueue<u64>>(PriorityQueue::new(0))).await;
}

// test_queues _QueueJoinTestMixin: test_join_empty_queue
#[asyncio::test(virtual_time)]
async fn join_on_an_empty_queue_returns_at_once() {
    let q: Queue<u8> = Queue::new(0);
    let clock = Clock::start();
    q.join().await.unwrap();
    q.join().await.unwrap();
    assert_eq!(clock.elapsed(), secs(0));
}

fn is_shut_down_get<T>(r: Result<T, GetError>) -> bool {
    matches!(r, Err(GetError::ShutDown(_)))
}

// test_queues _QueueShutdownTestMixin: test_shutdown_empty
#[asyncio::test(virtual_time)]
async fn shutting_down_an_empty_queue_fails_blocked_and_later_calls() {
    let q = leak(Queue::new(0));
    let get_task = create_task(q.get());
    checkpoint().await.unwrap();
    q.shutdown(false);
    assert_eq!(q.qsize(), 0);
    q.join().await.unwrap();
    checkpoint().await.unwrap();
    assert!(get_task.done());
    assert!(is_shut_down_get(get_task.await.unwrap()));

    match q.put("data").await {
        Err(PutError::ShutDown(e)) => assert_eq!(e.into_inner(), "data"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        q.put_nowait("data"),
        Err(PutNowaitError::ShutDown(_))
    ));
    assert!(is_shut_down_get(q.get().await));
    assert!(matches!(q.get_nowait(), Err(GetNowaitError::ShutDown(_))));
    assert!(q.is_shut_down());
}

// test_queues _QueueShutdownTestMixin: test_shutdown_nonempty
#[asyncio::test(virtual_time)]
async fn a_shut_down_queue_still_gives_out_what_it_holds() {
    let q = leak(Queue::new(1));
    q.put_nowait("data").unwrap();
    let join_task = create_task(q.join());
    let put_task = create_task(q.put("data2"));
    checkpoint().await.unwrap();
    assert!(!put_task.done());

    q.shutdown(false);
    assert_eq!(q.qsize(), 1);
    checkpoint().await.unwrap();
    assert!(put_task.done());
    assert!(matches!(
        put_task.await.unwrap(),
        Err(PutError::ShutDown(_))
    ));

    assert_eq!(q.get().await.unwrap(), "data");
    checkpoint().await.unwrap();
    assert!(!join_task.done());

    assert!(q.put("data").await.unwrap_err().is_shut_down());
    assert!(q.put_nowait("data").is_err());
    assert!(is_shut_down_get(q.get().await));
    assert!(q.get_nowait().is_err());

    q.task_done().unwrap();
    checkpoint().await.unwrap();
    assert!(join_task.done());
    join_task.await.unwrap().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneTooManyTimes));
}

// test_queues _QueueShutdownTestMixin: test_shutdown_immediate
#[asyncio::test(virtual_time)]
async fn an_immediate_shutdown_discards_the_items_and_releases_join() {
    for q in [
        leak(Queue::new(0)),
        &**leak(LifoQueue::new(0)),
        &**leak(PriorityQueue::new(0)),
    ] {
        q.put_nowait("data").unwrap();
        let join_task = create_task(q.join());
        q.shutdown(true);
        assert_eq!(q.qsize(), 0);
        checkpoint().await.unwrap();
        assert!(join_task.done());
        join_task.await.unwrap().unwrap();
        assert!(q.put("data").await.is_err());
        assert!(is_shut_down_get(q.get().await));
        assert_eq!(q.task_done(), Err(TaskDoneTooManyTimes));
    }
}

// test_queues _QueueShutdownTestMixin: test_shutdown_immediate_with_unfinished
#[asyncio::test(virtual_time)]
async fn an_immediate_shutdown_keeps_items_already_taken_unfinished() {
    let q = leak(Queue::new(0));
    q.put_nowait("data").unwrap();
    q.put_nowait("data").unwrap();
    let join_task = create_task(q.join());
    assert_eq!(q.get().await.unwrap(), "data");
    q.shutdown(true);
    assert_eq!(q.qsize(), 0);
    checkpoint().await.unwrap();
    assert!(!join_task.done());
    assert!(q.put("data").await.is_err());
    assert!(is_shut_down_get(q.get().await));
    q.task_done().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneTooManyTimes));
    checkpoint().await.unwrap();
    assert!(join_task.done());
}

// new: shutdown wakes a blocked putter and a blocked getter at once
#[asyncio::test(virtual_time)]
async fn shutdown_wakes_every_blocked_caller() {
    let full = leak(Queue::new(1));
    full.put_nowait(0).unwrap();
    let empty: &'static Queue<u8> = leak(Queue::new(0));
    let putter = create_task(full.put(1));
    let getter = create_task(empty.get());
    checkpoint().await.unwrap();
    full.shutdown(false);
    empty.shutdown(false);
    assert!(putter.await.unwrap().unwrap_err().is_shut_down());
    assert!(getter.await.unwrap().unwrap_err().is_shut_down());
    assert_eq!(full.get_nowait().unwrap(), 0);
}

/// xorshift64*: a small deterministic generator for the stress test.
struct Rng(Cell<u64>);

impl Rng {
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Producers and consumers on a small queue, with puts and gets timing out
/// at random and tasks cancelled at random; every cancellation is
/// swallowed and the operation retried. Returns the items received.
async fn stress(seed: u64) -> (Vec<u64>, u64) {
    const PRODUCERS: u64 = 5;
    const ITEMS: u64 = 120;
    const CONSUMERS: usize = 4;
    let rng = Rc::new(Rng(Cell::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)));
    let q = Rc::new(Queue::new(3));
    let received = Rc::new(RefCell::new(Vec::new()));
    let cancels = Rc::new(Cell::new(0u64));
    let timed_gets = seed % 2 == 1;

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let (q, rng) = (q.clone(), rng.clone());
        producers.push(create_task(async move {
            for k in 0..ITEMS {
                let item = p * 1000 + k;
                loop {
                    let limit = ms(rng.below(6));
                    match wait_for(q.put(item), limit).await {
                        Ok(Ok(())) => break,
                        // Timed out: the put was cancelled, nothing was put.
                        Err(TimeoutError) => {}
                        // Cancelled from outside: the item comes back.
                        Ok(Err(PutError::Cancelled(_handled, back))) => assert_eq!(back, item),
                        Ok(Err(PutError::ShutDown(_))) => unreachable!(),
                    }
                }
                let _ = sleep(ms(rng.below(3))).await;
            }
        }));
    }
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (q, rng, received) = (q.clone(), rng.clone(), received.clone());
        consumers.push(create_task(async move {
            loop {
                // Half the runs time gets out at random; the other half
                // rely on cancellations alone, so a lost wake-up would
                // leave an item behind with every consumer asleep.
                let limit = timed_gets.then(|| ms(rng.below(8)));
                match wait_for(q.get(), limit).await {
                    Ok(Ok(item)) => {
                        received.borrow_mut().push(item);
                        q.task_done().unwrap();
                    }
                    Ok(Err(GetError::ShutDown(_))) => return,
                    Ok(Err(GetError::Cancelled(_))) | Err(TimeoutError) => {}
                }
                let _ = sleep(ms(rng.below(3))).await;
            }
        }));
    }
    // Chaos: cancel a random producer or consumer now and then.
    let targets: Vec<TaskRef> = producers
        .iter()
        .map(|t| t.task_ref())
        .chain(consumers.iter().map(|t| t.task_ref()))
        .collect();
    let stop = Rc::new(Cell::new(false));
    let chaos = {
        let (rng, stop, cancels) = (rng.clone(), stop.clone(), cancels.clone());
        create_task(async move {
            while !stop.get() {
                let _ = sleep(ms(1 + rng.below(4))).await;
                let t = &targets[rng.below(targets.len() as u64) as usize];
                if t.cancel() {
                    cancels.set(cancels.get() + 1);
                }
            }
        })
    };
    for p in producers {
        p.await.expect("a producer ended cancelled");
    }
    // With the chaos over, every item left must still reach a consumer.
    stop.set(true);
    chaos.await.unwrap();
    let joined = wait_for(q.join(), secs(3600)).await;
    assert!(
        joined.is_ok(),
        "seed {seed}: items left behind (a lost wake-up)"
    );
    q.shutdown(false);
    for c in consumers {
        c.await.expect("a consumer ended cancelled");
    }
    assert!(q.empty());
    let got = received.borrow().clone();
    (got, cancels.get())
}

// new: randomized stress — many producers and consumers, random timeouts
// and cancellations; every item is delivered exactly once
#[test]
fn every_item_is_delivered_exactly_once_under_random_cancellation() {
    let mut total_cancels = 0;
    for seed in 1..=20 {
        let (mut got, cancels) = vrunner().run(stress(seed));
        total_cancels += cancels;
        got.sort_unstable();
        let expected: Vec<u64> = (0..5)
            .flat_map(|p| (0..120).map(move |k| p * 1000 + k))
            .collect();
        assert_eq!(got.len(), expected.len(), "seed {seed}: lost or duplicated");
        assert_eq!(got, expected, "seed {seed}");
    }
    assert!(total_cancels > 100, "the chaos task cancelled too little");
}
