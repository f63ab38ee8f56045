//! A virtual-time loop that nothing can wake any more reports a deadlock
//! instead of hanging; anything that may still wake it holds the report off.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

fn runner(limit: Duration) -> asyncio::Runner {
    asyncio::Runner::builder()
        .virtual_time(true)
        .deadlock_after(Some(limit))
        .build()
}

fn panic_text(err: Box<dyn std::any::Any + Send>) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn tasks_waiting_on_each_other_are_reported_by_name() {
    let mut r = runner(Duration::from_millis(20));
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        r.run(async {
            let a = std::rc::Rc::new(asyncio::Event::new());
            let b = std::rc::Rc::new(asyncio::Event::new());
            let (a2, b2) = (a.clone(), b.clone());
            let waiter = asyncio::Task::builder()
                .name("waits-for-b")
                .spawn(async move {
                    b2.wait().await.unwrap();
                    a2.set();
                });
            a.wait().await.unwrap();
            b.set();
            waiter.await.unwrap();
        })
    }))
    .expect_err("a deadlock must not return");
    let text = panic_text(err);
    assert!(text.contains("deadlock"), "{text}");
    assert!(text.contains("waits-for-b"), "{text}");
    assert!(text.contains("Task-"), "the main task is named too: {text}");
}

#[test]
fn a_worker_thread_in_flight_is_not_a_deadlock() {
    let mut r = runner(Duration::from_millis(20));
    let v = r.run(async {
        asyncio::to_thread(|| {
            std::thread::sleep(Duration::from_millis(100));
            7
        })
        .await
        .unwrap()
    });
    assert_eq!(v, 7);
}

#[test]
fn a_wake_from_another_thread_within_the_limit_is_not_a_deadlock() {
    let mut r = runner(Duration::from_secs(30));
    let v = r.run(async {
        // A foreign future, completed by a plain thread through its waker:
        // the loop idles with nothing of its own in flight until then.
        let slot = Arc::new(Mutex::new((None::<u32>, None::<Waker>)));
        let s2 = slot.clone();
        let t = std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(20));
            let mut s = s2.lock().unwrap();
            if let Some(w) = s.1.take() {
                s.0 = Some(5);
                w.wake();
                return;
            }
        });
        let got = std::future::poll_fn(|cx| {
            let mut s = slot.lock().unwrap();
            match s.0 {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        t.join().unwrap();
        got
    });
    assert_eq!(v, 5);
}
