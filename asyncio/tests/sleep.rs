//! `sleep` / `sleep_until`: deadlines, FIFO among equal deadlines, the
//! one-turn `sleep(0)`, and how timers interleave with ready callbacks.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{create_task, get_running_loop, sleep, sleep_until};
use common::*;

// test_tasks: test_sleep
#[asyncio::test(virtual_time)]
async fn two_half_sleeps_add_up() {
    let clock = Clock::start();
    let t = create_task(async {
        sleep(ms(50)).await.unwrap();
        sleep(ms(50)).await.unwrap();
        "yeah"
    });
    assert_eq!(t.await.unwrap(), "yeah");
    assert_eq!(clock.elapsed(), ms(100));
}

// new (DESIGN §4): sleepers wake in deadline order, each at its own time
#[asyncio::test(virtual_time)]
async fn sleepers_wake_in_deadline_order() {
    let log = log();
    let clock = Rc::new(Clock::start());
    let mut tasks = Vec::new();
    for s in [3u64, 1, 2] {
        let (l, c) = (log.clone(), clock.clone());
        tasks.push(create_task(async move {
            sleep(secs(s)).await.unwrap();
            push(&l, format!("{s}s at {:?}", c.elapsed()));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(take(&log), ["1s at 1s", "2s at 2s", "3s at 3s"]);
}

// new (ASYNCIO-SEMANTICS §1.4): equal deadlines fire FIFO, in registration order
#[asyncio::test(virtual_time)]
async fn equal_deadlines_are_fifo() {
    let log = log();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let l = log.clone();
        tasks.push(create_task(async move {
            sleep(secs(1)).await.unwrap();
            push(&l, name);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(take(&log), ["a", "b", "c", "d", "e"]);
}

// new (ASYNCIO-SEMANTICS §1.4): call_at callbacks with one deadline run in scheduling order
#[asyncio::test(virtual_time)]
async fn equal_deadline_callbacks_are_fifo() {
    let log = log();
    let lp = get_running_loop().unwrap();
    let when = now() + secs(1);
    for name in ["x", "y", "z"] {
        let l = log.clone();
        lp.call_at(when, move || push(&l, name));
    }
    let l = log.clone();
    lp.call_later(ms(500), move || push(&l, "earlier"));
    sleep(secs(2)).await.unwrap();
    assert_eq!(take(&log), ["earlier", "x", "y", "z"]);
}

// test_tasks (SleepTests): test_sleep_zero
#[asyncio::test(virtual_time)]
async fn sleep_zero_lets_ready_callbacks_run() {
    let result = Rc::new(Cell::new(0));
    let r = result.clone();
    get_running_loop()
        .unwrap()
        .call_soon(move || r.set(r.get() + 1));
    assert_eq!(result.get(), 0);
    sleep(Duration::ZERO).await.unwrap();
    assert_eq!(result.get(), 1, "inc'ed by call_soon");
}

// new (ASYNCIO-SEMANTICS §5): sleep(0) is exactly one turn: two yielding tasks interleave
#[asyncio::test(virtual_time)]
async fn sleep_zero_is_exactly_one_turn() {
    let log = log();
    let clock = Clock::start();
    let mut tasks = Vec::new();
    for name in ["a", "b"] {
        let l = log.clone();
        tasks.push(create_task(async move {
            for i in 0..3 {
                push(&l, format!("{name}{i}"));
                sleep(Duration::ZERO).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(take(&log), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

// new (DESIGN §4): sleep_until wakes exactly at the deadline
#[asyncio::test(virtual_time)]
async fn sleep_until_an_absolute_deadline() {
    let deadline = now() + ms(1234);
    sleep_until(deadline).await.unwrap();
    assert_eq!(now(), deadline);
}

// new (ASYNCIO-SEMANTICS §5): a deadline already past wakes on the next turn, after ready work
#[asyncio::test(virtual_time)]

async fn sleep_until_the_past_yields_once() {
    let log = log();
    let l = log.clone();
    let t0 = now();
    let _sib = create_task(async move {
        for i in 0..3 {
            push(&l, format!("sib{i}"));
            sleep(Duration::ZERO).await.unwrap();
        }
    });
    push(&log, "before");
    sleep_until(t0.checked_sub(secs(1)).unwrap()).await.unwrap();
    push(&log, "after");
    sleep(ms(10)).await.unwrap();
    assert_eq!(take(&log), ["before", "sib0", "after", "sib1", "sib2"]);
    assert_eq!(now() - t0, ms(10));
}

// new (sleep docs): the timer is armed when the sleep is first awaited
#[asyncio::test(virtual_time)]
async fn a_sleep_starts_counting_at_its_first_await() {
    let clock = Clock::start();
    let s = sleep(secs(2));
    sleep(secs(1)).await.unwrap();
    s.await.unwrap();
    assert_eq!(clock.elapsed(), secs(3));
}

// new (ASYNCIO-SEMANTICS §1.2c): a task woken by a timer runs one turn after the timer fired
#[asyncio::test(virtual_time)]
async fn a_timer_woken_task_runs_after_same_tick_callbacks() {
    let log = log();
    let l = log.clone();
    let _t = create_task(async move {
        sleep(secs(1)).await.unwrap();
        push(&l, "task");
    });
    sleep(Duration::ZERO).await.unwrap(); // the task arms its timer first
    let l = log.clone();
    get_running_loop()
        .unwrap()
        .call_later(secs(1), move || push(&l, "cb"));
    sleep(secs(2)).await.unwrap();
    assert_eq!(take(&log), ["cb", "task"]);
}

// new (ASYNCIO-SEMANTICS §1.2c-d): what a timer callback schedules runs before the task it woke
#[asyncio::test(virtual_time)]
async fn call_soon_from_a_timer_runs_before_the_timer_woken_task() {
    let log = log();
    let lp = get_running_loop().unwrap();
    let l = log.clone();
    let lp2 = lp.clone();
    lp.call_later(secs(1), move || {
        push(&l, "timer cb");
        let l2 = l.clone();
        lp2.call_soon(move || push(&l2, "soon"));
    });
    let l = log.clone();
    let _t = create_task(async move {
        sleep(secs(1)).await.unwrap();
        push(&l, "task");
    });
    sleep(secs(2)).await.unwrap();
    assert_eq!(take(&log), ["timer cb", "soon", "task"]);
}

// test_tasks: test_sleep_cancel (the cancelled sleep gives up its timer: the loop does not wait for it)
#[asyncio::test(virtual_time)]
async fn a_cancelled_sleep_returns_at_the_cancel_time() {
    let clock = Clock::start();
    let t = create_task(async { sleep(secs(10)).await });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    let r = t.await;
    assert!(r.is_err());
    assert_eq!(clock.elapsed(), secs(1));
    // Nothing else is scheduled: a short sleep is not held up by a stale timer.
    sleep(ms(1)).await.unwrap();
    assert_eq!(clock.elapsed(), secs(1) + ms(1));
}

/// Polls its inner future under a waker of its own, which counts its wakes
/// and passes them on to the task's waker: the inner future sees a foreign
/// waker (as under a hand-written combinator).
struct UnderForeignWaker<F> {
    inner: std::pin::Pin<Box<F>>,
    wakes: std::sync::Arc<ForwardingWaker>,
}

struct ForwardingWaker {
    count: std::sync::atomic::AtomicU32,
    to: std::sync::Mutex<Option<std::task::Waker>>,
}

impl std::task::Wake for ForwardingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(w) = self.to.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: std::future::Future> std::future::Future for UnderForeignWaker<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        *self.wakes.to.lock().unwrap() = Some(cx.waker().clone());
        let waker = std::task::Waker::from(self.wakes.clone());
        let mut inner_cx = std::task::Context::from_waker(&waker);
        self.inner.as_mut().poll(&mut inner_cx)
    }
}

// new: a sleep's timer wakes whatever waker the sleep was last polled with:
// its own task's (recorded by key), a foreign one, or — for a sleep handed
// from one task to another — the new task's
#[asyncio::test(virtual_time)]
async fn a_sleep_wakes_the_waker_it_was_last_polled_with() {
    use std::future::Future;
    let clock = Clock::start();
    let wakes = std::sync::Arc::new(ForwardingWaker {
        count: std::sync::atomic::AtomicU32::new(0),
        to: std::sync::Mutex::new(None),
    });
    let under = UnderForeignWaker {
        inner: Box::pin(sleep(ms(10))),
        wakes: wakes.clone(),
    };
    under.await.unwrap();
    assert_eq!(clock.elapsed(), ms(10));
    assert_eq!(wakes.count.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Polled once by a task that then gives it up, finished by another.
    let (tx, rx) = std::sync::mpsc::channel();
    let first = create_task(async move {
        let mut s = Box::pin(sleep(ms(10)));
        std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        tx.send(s).unwrap();
    });
    first.await.unwrap();
    let second = create_task(async move { rx.recv().unwrap().await });
    second.await.unwrap().unwrap();
    assert_eq!(clock.elapsed(), ms(20));
}

// new (runtime/clock.rs): on real time, a deadline given as an `Instant`
// never fires before that instant, nor does a relative one before its delay
// has passed (the loop's clock is read apart from `Instant::now()`: this
// guards the mapping between the two; the clock's unit tests check that the
// loop's reading never leads `Instant::now()`)
#[asyncio::test]
async fn real_time_deadlines_never_fire_early() {
    use std::time::Instant;
    for i in 0..20u64 {
        let deadline = Instant::now() + Duration::from_micros(300 + 37 * i);
        sleep_until(deadline).await.unwrap();
        assert!(Instant::now() >= deadline, "sleep_until woke early");

        let start = Instant::now();
        let delay = Duration::from_micros(250 + 41 * i);
        sleep(delay).await.unwrap();
        assert!(start.elapsed() >= delay, "sleep woke early");

        let deadline = Instant::now() + Duration::from_micros(200 + 29 * i);
        let r = asyncio::timeout_at(deadline, sleep(Duration::from_secs(5))).await;
        assert!(r.is_err(), "timeout_at did not expire");
        assert!(Instant::now() >= deadline, "timeout_at expired early");
    }
    let lp = get_running_loop().unwrap();
    assert!(lp.time() <= Instant::now(), "the loop's clock runs ahead");
}

/// Wakes the task's own waker, counting the wakes: a combinator's waker.
struct CountingWaker {
    inner: std::task::Waker,
    wakes: std::sync::atomic::AtomicUsize,
}

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

// new: a sleep polled with another waker than its task's (inside a
// combinator with a waker of its own) wakes that waker, once
#[asyncio::test(virtual_time)]
async fn a_sleep_polled_with_a_foreign_waker_wakes_it() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::task::Waker;

    let clock = Clock::start();
    let mut s = Box::pin(sleep(secs(2)));
    let mut counting: Option<Arc<CountingWaker>> = None;
    std::future::poll_fn(|cx| {
        let w = counting.get_or_insert_with(|| {
            Arc::new(CountingWaker {
                inner: cx.waker().clone(),
                wakes: Default::default(),
            })
        });
        let waker = Waker::from(w.clone());
        let mut own = std::task::Context::from_waker(&waker);
        s.as_mut().poll(&mut own).map(|r| r.expect("not cancelled"))
    })
    .await;
    assert_eq!(clock.elapsed(), secs(2));
    assert_eq!(counting.unwrap().wakes.load(SeqCst), 1);
}

// new: a sleep first polled by one task and then awaited by another wakes
// the task polling it last
#[asyncio::test(virtual_time)]
async fn a_sleep_handed_to_another_task_wakes_that_task() {
    use std::cell::RefCell;
    use std::task::Poll;

    let clock = Clock::start();
    let slot = Rc::new(RefCell::new(Some(Box::pin(sleep(secs(3))))));
    let first = {
        let slot = slot.clone();
        create_task(async move {
            // Poll once, arming the timer with this task as its waker, then
            // let go of it.
            std::future::poll_fn(|cx| {
                let mut guard = slot.borrow_mut();
                assert!(guard.as_mut().unwrap().as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        })
    };
    first.await.unwrap();
    let second = create_task(async move {
        let s = slot.borrow_mut().take().unwrap();
        s.await.unwrap();
    });
    second.await.unwrap();
    assert_eq!(clock.elapsed(), secs(3));
}

// new: a sleep keeps no handle to its loop; one armed on a loop that is gone
// says so when polled again, instead of waiting forever.
#[test]
#[should_panic(expected = "polled outside the event loop its timer is armed on")]
fn a_sleep_armed_on_a_closed_loop_panics_when_polled() {
    use std::cell::RefCell;
    use std::pin::Pin;
    use std::task::Poll;

    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    vrunner().run(async move {
        let mut armed = sleep(secs(10));
        std::future::poll_fn(|cx| {
            assert!(Pin::new(&mut armed).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        *s.borrow_mut() = Some(armed);
    });
    let armed = slot.borrow_mut().take().expect("stored above");
    vrunner().run(async move {
        let _ = armed.await;
    });
}
