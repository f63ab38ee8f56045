//! The subset CI runs under Miri: the task's hand-managed memory
//! (`task/raw.rs`: the pinned future, the local and atomic reference
//! counts, the waker that crosses threads), the running-loop pointer of
//! `runtime/context.rs` and the in-flight table's split cell
//! (`util/split_cell.rs`, borrowed at every suspension), which every test
//! here goes through. Kept small so Miri finishes quickly; it runs as a
//! normal test too.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::vrunner;

/// A future that is `!Unpin` and `!Send`, with a self-reference across an
/// await (an async block holding a borrow of its own local).
async fn self_referential(log: Rc<RefCell<Vec<u32>>>) -> u32 {
    let local = [1u32, 2, 3];
    let r = &local;
    asyncio::sleep(Duration::ZERO).await.unwrap();
    log.borrow_mut().push(r.iter().sum());
    r[2]
}

#[test]
fn pinned_futures_complete_abort_and_drop_at_close() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut runner = vrunner();
    let l = log.clone();
    let out = runner.run(async move {
        let a = asyncio::create_task(self_referential(l.clone()));
        let b = asyncio::create_task(self_referential(l.clone()));
        b.abort();
        let _left_running = asyncio::create_task(async {
            asyncio::sleep(Duration::from_secs(100)).await.ok();
        });
        let v = a.await.unwrap();
        assert!(b.cancelled());
        v
    });
    assert_eq!(out, 3);
    assert_eq!(*log.borrow(), vec![6]);
    runner.close();
}

/// A future whose `Drop` follows a pointer into itself.
struct SelfRef {
    value: u32,
    ptr: *const u32,
    dropped: Rc<RefCell<Vec<u32>>>,
    _pin: std::marker::PhantomPinned,
}

impl Future for SelfRef {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: only a field is written; the future is not moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.ptr = &this.value;
        Poll::Pending
    }
}

impl Drop for SelfRef {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` was set while pinned and the future was never
            // moved since (the runtime drops pinned futures in place); under
            // Miri a move would make this read dangle.
            let v = unsafe { *self.ptr };
            self.dropped.borrow_mut().push(v);
        }
    }
}

#[test]
fn pinned_futures_are_dropped_in_place_on_abort_and_at_close() {
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let d = dropped.clone();
    let mut runner = vrunner();
    runner.run(async move {
        let make = |value| SelfRef {
            value,
            ptr: std::ptr::null(),
            dropped: d.clone(),
            _pin: std::marker::PhantomPinned,
        };
        let aborted = asyncio::create_task(make(1));
        let _left = asyncio::create_task(make(2));
        asyncio::sleep(Duration::ZERO).await.unwrap();
        aborted.abort();
    });
    runner.close();
    assert_eq!(*dropped.borrow(), vec![1, 2]);
}

/// A foreign future completed by another thread through the task's waker.
struct FromThread {
    slot: Arc<Mutex<(Option<u32>, Option<Waker>)>>,
}

impl Future for FromThread {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut s = self.slot.lock().unwrap();
        match s.0 {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_waker_woken_from_another_thread_resumes_the_task() {
    let out = asyncio::run(async {
        let slot = Arc::new(Mutex::new((None, None::<Waker>)));
        let s2 = slot.clone();
        let t = asyncio::create_task(FromThread { slot: slot.clone() });
        asyncio::sleep(Duration::ZERO).await.unwrap();
        let helper = std::thread::spawn(move || {
            let waker = {
                let mut s = s2.lock().unwrap();
                s.0 = Some(7);
                s.1.take()
            };
            waker.expect("the task registered its waker").wake();
        });
        let v = t.await.unwrap();
        helper.join().unwrap();
        v
    });
    assert_eq!(out, 7);
}

#[test]
fn a_waker_outliving_its_loop_is_harmless() {
    let kept = Arc::new(Mutex::new(None::<Waker>));
    let k = kept.clone();
    asyncio::run(async move {
        let k2 = k.clone();
        let _t = asyncio::create_task(std::future::poll_fn(move |cx| {
            *k2.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        asyncio::sleep(Duration::ZERO).await.unwrap();
        asyncio::sleep(Duration::ZERO).await.unwrap();
    });
    let w = kept.lock().unwrap().take().expect("waker kept");
    std::thread::spawn(move || w.wake()).join().unwrap();
}

/// A `!Send` value that logs its drop.
struct DropLog(Rc<RefCell<Vec<u32>>>);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.borrow_mut().push(0);
    }
}

/// The task's memory is shared by loop-thread handles and wakers on any
/// thread: whichever goes last frees it, and a `!Send` output is dropped by
/// the last loop-thread handle, never by a waker on another thread.
#[test]
fn handles_and_wakers_release_the_task_in_any_order() {
    let kept = Arc::new(Mutex::new(Vec::<Waker>::new()));
    let k = kept.clone();
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let d = dropped.clone();
    let mut runner = vrunner();
    let handle = runner.run(async move {
        let k2 = k.clone();
        let t = asyncio::create_task(async move {
            std::future::poll_fn(|cx| {
                k2.lock().unwrap().push(cx.waker().clone());
                k2.lock().unwrap().push(cx.waker().clone());
                Poll::Ready(())
            })
            .await;
            DropLog(d)
        });
        asyncio::sleep(Duration::ZERO).await.unwrap();
        assert!(t.done());
        t
    });
    runner.close();
    // One waker goes on another thread while the handle still holds the
    // (`!Send`) output; the handle drops it here; the last waker frees.
    let first = kept.lock().unwrap().pop().unwrap();
    std::thread::spawn(move || first.wake()).join().unwrap();
    assert!(dropped.borrow().is_empty());
    drop(handle);
    assert_eq!(*dropped.borrow(), vec![0]);
    let last = kept.lock().unwrap().pop().unwrap();
    std::thread::spawn(move || drop(last)).join().unwrap();
}

/// A wake from another thread sets a bit in the atomic word that also
/// counts the wakers, and sends the task's key to the loop, which clears
/// the bit as it takes the key. Threads wake the task while the loop steps it, a spare waker is
/// cloned, woken and dropped on another thread the whole time, and the
/// task ends while wakes still arrive: no wake may be lost (the task would
/// never finish) and the block is freed once, by whoever goes last. Under
/// Miri a few rounds; natively enough to make the races happen.
#[test]
fn concurrent_wakes_are_never_lost() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    const ROUNDS: u32 = if cfg!(miri) { 20 } else { 20_000 };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // (rounds released, the waker of the task's current wait)
        let slot = Arc::new(Mutex::new((0u32, None::<Waker>)));
        let stop = Arc::new(AtomicBool::new(false));
        let waker_thread = {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let mut s = slot.lock().unwrap();
                    if let Some(w) = s.1.take() {
                        s.0 += 1;
                        drop(s);
                        w.wake();
                    } else {
                        drop(s);
                        std::thread::yield_now();
                    }
                }
            })
        };
        let spammer = {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut spare: Option<Waker> = None;
                while !stop.load(Ordering::Acquire) {
                    if spare.is_none() {
                        spare = slot.lock().unwrap().1.clone();
                    }
                    if let Some(w) = &spare {
                        let c = w.clone();
                        c.wake_by_ref();
                        drop(c);
                        w.wake_by_ref();
                    }
                    std::thread::yield_now();
                }
                // Likely the last reference: frees the block here.
                drop(spare);
            })
        };
        let done = asyncio::run(async move {
            let mut steps = 0u32;
            for round in 1..=ROUNDS {
                std::future::poll_fn(|cx| {
                    steps += 1;
                    let mut s = slot.lock().unwrap();
                    if s.0 >= round {
                        Poll::Ready(())
                    } else {
                        s.1 = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
                .await;
            }
            assert!(steps >= ROUNDS);
            ROUNDS
        });
        stop.store(true, Ordering::Release);
        waker_thread.join().unwrap();
        spammer.join().unwrap();
        tx.send(done).unwrap();
    });
    let timeout = Duration::from_secs(if cfg!(miri) { 3600 } else { 120 });
    let done = rx
        .recv_timeout(timeout)
        .expect("a wake was lost: the task never finished its rounds");
    assert_eq!(done, ROUNDS);
}

/// Aborts a task when dropped.
struct AbortOnDrop(Rc<RefCell<Option<asyncio::TaskRef>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.borrow().as_ref() {
            t.abort();
        }
    }
}

/// A future dropped in place as its task ends may reach back into its own
/// task (here: a guard that aborts it again). The stage is busy then: the
/// second abort is a no-op on a task that is ending, and nothing touches
/// the future twice.
#[test]
fn a_future_aborting_its_own_task_from_its_drop_is_harmless() {
    asyncio::run(async {
        let me = Rc::new(RefCell::new(None));
        let guard = AbortOnDrop(me.clone());
        let t = asyncio::create_task(async move {
            let _guard = guard;
            asyncio::sleep(Duration::from_secs(3600)).await.unwrap();
        });
        *me.borrow_mut() = Some(t.task_ref());
        asyncio::sleep(Duration::ZERO).await.unwrap();
        t.task_ref().abort();
        assert!(t.task_ref().cancelled());
        me.borrow_mut().take();
    });
}

/// A bare yield looks at its task through a lent handle that holds no
/// count: a cancel arriving during the turn comes out of that yield (the
/// lent handle builds the error), and the task is released in order after.
#[test]
fn a_cancel_during_a_bare_yield_comes_out_of_it() {
    vrunner().run(async {
        let t = asyncio::create_task(async {
            let first = asyncio::sleep(Duration::ZERO).await;
            assert!(first.is_err(), "the cancel comes out of the yield");
            drop(first); // handled, like `except CancelledError`
            asyncio::sleep(Duration::ZERO).await
        });
        asyncio::sleep(Duration::ZERO).await.unwrap(); // t starts and yields
        assert!(t.cancel());
        let out = t.await;
        // The first yield's error was handled; the second yield completed.
        assert!(matches!(out, Ok(Ok(()))), "{out:?}");
    });
}

/// Two checkpoints in flight at once in one task (the in-flight table in
/// its boxed form, borrowed through `util/split_cell.rs`) both receive one
/// cancel, and both return it.
#[test]
fn a_cancel_reaches_two_checkpoints_in_flight_in_one_task() {
    vrunner().run(async {
        let t = asyncio::create_task(async {
            let (a, b) = futures::join!(
                asyncio::sleep(Duration::from_secs(10)),
                asyncio::sleep(Duration::from_secs(20)),
            );
            (a.is_err(), b.is_err())
        });
        asyncio::sleep(Duration::ZERO).await.unwrap(); // both suspend
        assert!(t.cancel());
        let out = t.await;
        // Both errors were dropped inside the task: it returned a value.
        assert!(matches!(out, Ok((true, true))), "{out:?}");
    });
}

/// A timer names its sleeping task by key when the sleep is polled with
/// the task's own waker, read from the waker's data pointer: fired, moved
/// to a foreign waker, and dropped at close.
#[test]
fn sleep_timers_find_their_task_from_its_waker() {
    let mut runner = vrunner();
    runner.run(async {
        asyncio::sleep(Duration::from_secs(1)).await.unwrap();
        // Polled with a foreign waker (no task's): kept as a waker.
        let mut s = Box::pin(asyncio::sleep(Duration::from_secs(1)));
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(s.as_mut().poll(&mut cx).is_pending());
        // Then awaited by the task: the timer switches to the task.
        s.await.unwrap();
        // Left armed at close.
        let _parked = asyncio::create_task(asyncio::sleep(Duration::from_secs(60)));
        asyncio::sleep(Duration::ZERO).await.unwrap();
    });
}

/// A task's first root token is kept in its header's cold word
/// (`util/arc_or_box.rs`); a second cancellation boxes the task's books,
/// and the box takes the token over; naming a task boxes its extras.
/// Everything is freed with the task, or at close for a task left asleep.
#[test]
fn a_cancelled_tasks_token_moves_into_its_cold_box() {
    vrunner().run(async {
        let t = asyncio::create_task(async {
            let first = asyncio::sleep(Duration::from_secs(10)).await.is_err();
            let me = asyncio::current_task().unwrap();
            assert_eq!(me.uncancel(), 0);
            let second = asyncio::sleep(Duration::from_secs(10)).await.is_err();
            (first, second)
        });
        asyncio::sleep(Duration::ZERO).await.unwrap();
        assert!(t.cancel()); // token in the cold word
        asyncio::sleep(Duration::ZERO).await.unwrap();
        assert!(t.cancel_with("again")); // books boxed, token moved in
        assert!(matches!(t.await, Ok((true, true))));
        // Cancelled once and dropped cancelled: the token in the word.
        let once = asyncio::create_task(asyncio::sleep(Duration::from_secs(10)));
        asyncio::sleep(Duration::ZERO).await.unwrap();
        assert!(once.cancel());
        assert!(once.await.is_err());
        // Named, cancelled and left asleep at close.
        let left = asyncio::create_task(async {
            let _ = asyncio::sleep(Duration::from_secs(10)).await;
            asyncio::sleep(Duration::from_secs(60)).await
        });
        left.set_name("left");
        asyncio::sleep(Duration::ZERO).await.unwrap();
        assert!(left.cancel());
    });
}

/// A task's stage holds its future, then its output, with which one in the
/// header's flags (task/raw.rs): an output nobody takes is dropped with
/// the task, one taken is moved out once, and a future never finished is
/// dropped at close.
#[test]
fn outputs_taken_or_left_are_dropped_once() {
    let mut runner = vrunner();
    runner.run(async {
        // Left: the handle goes first, the task finishes later.
        drop(asyncio::create_task(async { String::from("left") }));
        // Taken.
        let t = asyncio::create_task(async { vec![String::from("taken")] });
        assert_eq!(t.await.unwrap(), ["taken"]);
        // Never finished: its future (holding a heap value) is dropped at
        // close.
        let held = String::from("held");
        let _pending = asyncio::create_task(async move {
            asyncio::sleep(Duration::from_secs(60)).await.ok();
            held
        });
        asyncio::sleep(Duration::ZERO).await.unwrap();
    });
}
