//! Panics in tasks: re-raised in the awaiter, reported when nobody
//! retrieves them, propagated out of `run` from the main task.

mod common;

use std::cell::RefCell;
use std::future::IntoFuture;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use futures::FutureExt;

use asyncio::{checkpoint, create_task, shield, sleep, wait_for, Task};
use common::*;

// new (DESIGN §2): awaiting a panicking task re-raises the panic in the awaiter
#[asyncio::test(virtual_time)]
async fn awaiting_a_panicking_task_reraises_the_panic() {
    let mut t = create_task(async {
        sleep(secs(1)).await.unwrap();
        panic!("boom");
    });
    let r = AssertUnwindSafe((&mut t).into_future())
        .catch_unwind()
        .await;
    assert_eq!(panic_text(&*r.unwrap_err()), "boom");
    assert!(t.done() && t.panicked() && !t.cancelled());
}

// new (DESIGN §2): the panic travels up a chain of awaiting tasks and out of run
#[test]
#[should_panic(expected = "boom in grandchild")]
fn a_panic_travels_up_the_await_chain_and_out_of_run() {
    vrunner().run(async {
        let child = create_task(async {
            let grandchild = create_task(async {
                checkpoint().await.unwrap();
                panic!("boom in grandchild");
            });
            grandchild.await.unwrap();
        });
        child.await.unwrap();
    });
}

// new (DESIGN §2): the main task's panic propagates out of Runner::run
#[test]
fn the_main_tasks_panic_propagates_out_of_run() {
    let mut runner = vrunner();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runner.run(async {
            sleep(secs(1)).await.unwrap();
            panic!("main boom {}", 7);
        })
    }));
    assert_eq!(panic_text(&*r.unwrap_err()), "main boom 7");
    // The runner is still usable.
    assert_eq!(runner.run(async { 1 }), 1);
}

// new (ASYNCIO-SEMANTICS §14): a dropped handle's panic goes to the exception handler
#[test]
fn panic_of_a_task_whose_handle_was_dropped_is_reported() {
    let (mut runner, reports) = vrunner_with_reports();
    runner.run(async {
        let t = create_task(async {
            checkpoint().await.unwrap();
            panic!("unobserved");
        });
        t.set_name("worker");
        drop(t);
        sleep(secs(1)).await.unwrap();
    });
    assert_eq!(
        take(&reports),
        ["Task exception was never retrieved: unobserved (task worker)"]
    );
    runner.close();
    assert!(take(&reports).is_empty());
}

// new (ASYNCIO-SEMANTICS §14): a handle kept past the panic reports when it is dropped
#[test]
fn panic_is_reported_when_the_handle_is_dropped_later() {
    let (mut runner, reports) = vrunner_with_reports();
    let r = reports.clone();
    runner.run(async move {
        let t = create_task(async { panic!("late") });
        t.set_name("late-task");
        sleep(secs(1)).await.unwrap();
        assert!(t.panicked());
        assert!(r.borrow().is_empty(), "not reported while the handle lives");
        drop(t);
        assert_eq!(
            take(&r),
            ["Task exception was never retrieved: late (task late-task)"]
        );
    });
}

// new (ASYNCIO-SEMANTICS §14): a panic that was re-raised in an awaiter is not reported
#[test]
fn a_retrieved_panic_is_not_reported() {
    let (mut runner, reports) = vrunner_with_reports();
    runner.run(async {
        let t = create_task(async { panic!("seen") });
        let r = AssertUnwindSafe(t.into_future()).catch_unwind().await;
        assert!(r.is_err());
    });
    runner.close();
    assert!(take(&reports).is_empty());
}

// test_tasks: test_tb_logger_not_called_after_cancel
#[test]
fn cancel_on_a_panicked_task_marks_it_retrieved() {
    let (mut runner, reports) = vrunner_with_reports();
    runner.run(async {
        let t = create_task(async { panic!("cancelled later") });
        checkpoint().await.unwrap();
        assert!(t.panicked());
        assert!(!t.cancel());
        drop(t);
    });
    runner.close();
    assert!(take(&reports).is_empty());
}

// test_runners: test_asyncio_run_reports_hanging_tasks_errors
#[test]

fn a_panic_during_shutdown_is_reported_once() {
    let (mut runner, reports) = vrunner_with_reports();
    let keep: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let k = keep.clone();
    let out = runner.run(async move {
        let t = create_task(async {
            if sleep(secs(100)).await.is_err() {
                panic!("1/0");
            }
        });
        t.set_name("leftover");
        *k.borrow_mut() = Some(t);
        checkpoint().await.unwrap();
        123
    });
    assert_eq!(out, 123);
    assert!(take(&reports).is_empty());
    runner.close();
    let t = keep.borrow_mut().take().unwrap();
    assert!(t.done() && t.panicked());
    drop(t);
    let reports = take(&reports);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("shutdown"), "{reports:?}");
    assert!(reports[0].contains("1/0"), "{reports:?}");
    assert!(reports[0].contains("(task leftover)"), "{reports:?}");
}

// new (ASYNCIO-SEMANTICS §14): cancel() before the panic does not mark the later panic retrieved
#[test]

fn a_panic_after_cancel_is_still_reported() {
    let (mut runner, reports) = vrunner_with_reports();
    let r = reports.clone();
    runner.run(async move {
        let t = create_task(async {
            if sleep(secs(10)).await.is_err() {
                panic!("1/0 in cleanup");
            }
        });
        t.set_name("w");
        checkpoint().await.unwrap();
        t.cancel();
        sleep(secs(1)).await.unwrap();
        assert!(t.done() && t.panicked());
        drop(t);
        assert_eq!(
            take(&r),
            ["Task exception was never retrieved: 1/0 in cleanup (task w)"]
        );
    });
}

// test_waitfor: test_wait_for_reraises_exception_during_cancellation
#[test]
#[should_panic(expected = "FooException")]
fn a_panic_during_a_wait_for_cancellation_propagates() {
    vrunner().run(async {
        let mut inner = create_task(async {
            if sleep(ms(200)).await.is_err() {
                panic!("FooException");
            }
        });
        let _ = wait_for(&mut inner, ms(1)).await;
    });
}

// test_tasks: test_shield_exception
#[asyncio::test(virtual_time)]
async fn shield_reraises_the_tasks_panic() {
    let mut inner = create_task(async {
        sleep(secs(1)).await.unwrap();
        panic!("expected");
    });
    let r = AssertUnwindSafe(shield(&mut inner).into_future())
        .catch_unwind()
        .await;
    assert_eq!(panic_text(&*r.unwrap_err()), "expected");
    assert!(inner.panicked());
}

// new: done-callbacks still run for a panicked task, and see it as panicked
#[test]
fn done_callbacks_run_for_a_panicked_task() {
    let (mut runner, _reports) = vrunner_with_reports();
    let seen = log();
    let s = seen.clone();
    runner.run(async move {
        let t = create_task(async { panic!("cb") });
        t.add_done_callback(move |t| {
            push(
                &s,
                format!(
                    "done={} panicked={} cancelled={}",
                    t.done(),
                    t.panicked(),
                    t.cancelled()
                ),
            )
        });
        sleep(secs(1)).await.unwrap();
        drop(t);
    });
    assert_eq!(take(&seen), ["done=true panicked=true cancelled=false"]);
}

// new: a panic in one task does not disturb its siblings
#[asyncio::test(virtual_time)]
async fn a_panic_leaves_sibling_tasks_running() {
    let log = log();
    let l = log.clone();
    let bad = create_task(async { panic!("only me") });
    let good = create_task(async move {
        sleep(secs(1)).await.unwrap();
        push(&l, "sibling finished");
        2
    });
    let r = AssertUnwindSafe(bad.into_future()).catch_unwind().await;
    assert!(r.is_err());
    assert_eq!(good.await.unwrap(), 2);
    assert_eq!(take(&log), ["sibling finished"]);
}
