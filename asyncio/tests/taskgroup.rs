//! `TaskGroup`: children live no longer than the group, the first failure
//! aborts the rest, failures are reported together, cancellation goes both
//! ways, and the parent's `cancelling()` level is restored — ported from
//! CPython's `test_taskgroups`.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, current_task, sleep, timeout, CancelledError, ChildFailed, Failure,
    TaskGroup, TaskGroupError,
};
use common::*;

#[derive(Debug)]
enum Error {
    Cancelled(CancelledError),
    Failed(&'static str),
    /// A nested group's failures, by name.
    Group(Vec<String>),
}

impl From<CancelledError> for Error {
    fn from(e: CancelledError) -> Self {
        Error::Cancelled(e)
    }
}

type R<T> = Result<T, Error>;

/// The names of the failures, as `error:NAME` or `panic:MSG`.
fn names(e: &TaskGroupError<Error>) -> Vec<String> {
    e.failures()
        .iter()
        .map(|f| match f {
            Failure::Error(Error::Failed(n)) => format!("error:{n}"),
            Failure::Error(Error::Group(g)) => format!("group:{g:?}"),
            Failure::Error(Error::Cancelled(_)) => "cancelled".to_string(),
            Failure::Panic(_) => format!("panic:{}", f.panic_message().unwrap_or("?")),
        })
        .collect()
}

/// A nested group's error as the outer body's: its cancellation passes
/// through, its failures become one `Error::Group`.
fn group_error(e: TaskGroupError<Error>) -> Error {
    match e {
        TaskGroupError::Cancelled(e) => e,
        TaskGroupError::Failed(_) => Error::Group(names(&e)),
    }
}

/// Sleeps `s` seconds, logs, returns `v`; logs "NAME cancelled" if cancelled.
async fn child(log: Log, name: &'static str, s: u64, v: u32) -> R<u32> {
    if let Err(e) = sleep(secs(s)).await {
        push(&log, format!("{name} cancelled"));
        return Err(e.into());
    }
    push(&log, format!("{name} done"));
    Ok(v)
}

/// Sleeps `s` seconds, then fails with `name`.
async fn failer(s: u64, name: &'static str) -> R<u32> {
    sleep(secs(s)).await?;
    Err(Error::Failed(name))
}

// test_taskgroups: test_taskgroup_01 (children's results; the body's value)
#[asyncio::test(virtual_time)]
async fn every_child_finishes_before_the_group() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let (t1, t2) = TaskGroup::run(|tg| async move {
        let t1 = tg.create_task(child(l.clone(), "t1", 1, 42)).unwrap();
        let t2 = tg.create_task(child(l.clone(), "t2", 2, 11)).unwrap();
        Ok::<_, Error>((t1, t2))
    })
    .await
    .unwrap();
    assert_eq!(clock.elapsed(), secs(2));
    assert!(t1.done() && t2.done());
    assert_eq!(t1.await.unwrap().unwrap() + t2.await.unwrap().unwrap(), 53);
    assert_eq!(take(&log), ["t1 done", "t2 done"]);
}

// test_taskgroups: test_taskgroup_02 (children created after the body awaits)
#[asyncio::test(virtual_time)]
async fn children_can_be_created_after_the_body_awaits() {
    let log = log();
    let l = log.clone();
    TaskGroup::run(|tg| async move {
        sleep(secs(1)).await?;
        tg.create_task(child(l.clone(), "late", 1, 0)).unwrap();
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    assert_eq!(take(&log), ["late done"]);
}

// test_taskgroups: test_taskgroup_04 / test_cancel_children_on_child_error
// (the first failure cancels the other children and the body; the group
// waits for them)
#[asyncio::test(virtual_time)]
async fn a_failing_child_cancels_its_siblings_and_the_body() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(child(l.clone(), "sibling", 10, 1)).unwrap();
        tg.create_task(failer(2, "E1")).unwrap();
        if sleep(secs(10)).await.is_err() {
            push(&l, "body cancelled");
        }
        sleep(secs(1)).await?; // cleanup still runs
        push(&l, "body cleaned up");
        Ok::<_, Error>(())
    })
    .await;
    let e = r.unwrap_err();
    assert_eq!(names(&e), ["error:E1"]);
    assert_eq!(
        take(&log),
        ["sibling cancelled", "body cancelled", "body cleaned up"]
    );
    assert_eq!(clock.elapsed(), secs(3));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// Not in test_taskgroups: two children fail on the same tick, one of them
// ignoring its cancellation: both failures are reported (in any order)
#[asyncio::test(virtual_time)]
async fn failures_are_collected_in_completion_order() {
    let r = TaskGroup::run(|tg| async move {
        // Both fail on the same tick after the group aborted? No: the first
        // failure cancels the second before it can fail, unless it ignores
        // the cancellation.
        tg.create_task(async {
            let _ = sleep(secs(1)).await; // ignores its cancellation
            Err::<(), _>(Error::Failed("late"))
        })
        .unwrap();
        tg.create_task(failer(1, "first")).unwrap();
        Ok::<_, Error>(())
    })
    .await;
    // Same deadline: the first child's timer fires first; it is cancelled
    // (the second failed at the same turn? no: it runs first) — whatever
    // order, both are reported.
    let mut n = names(&r.unwrap_err());
    n.sort();
    assert_eq!(n, ["error:first", "error:late"]);
}

// test_taskgroups: test_taskgroup_09 (a failure in the body cancels the
// children)
#[asyncio::test(virtual_time)]
async fn a_failing_body_cancels_the_children() {
    let log = log();
    let l = log.clone();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(child(l.clone(), "c", 10, 1)).unwrap();
        sleep(secs(1)).await?;
        Err::<(), _>(Error::Failed("body"))
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:body"]);
    assert_eq!(take(&log), ["c cancelled"]);
}

// test_taskgroups: test_taskgroup_19 (a child's error and the error the
// body raises when the group cancels it are both reported; here the
// child's first)
#[asyncio::test(virtual_time)]
async fn child_errors_come_before_the_body_error() {
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(failer(1, "child")).unwrap();
        match sleep(secs(5)).await {
            // Cancelled by the group: fail with our own error instead.
            Err(_) => Err::<(), _>(Error::Failed("body")),
            Ok(()) => Ok(()),
        }
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:child", "error:body"]);
}

// test_taskgroups: test_taskgroup_07 (in part: the parent cancelled from
// outside while the body awaits: the children are cancelled and the
// cancellation propagates; the body's own cancellation is not checked)
#[asyncio::test(virtual_time)]
async fn cancelling_the_parent_cancels_the_children() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(child(l.clone(), "a", 10, 1)).unwrap();
            tg.create_task(child(l.clone(), "b", 10, 2)).unwrap();
            sleep(secs(10)).await?;
            Ok::<_, Error>(())
        })
        .await;
        match r {
            Err(TaskGroupError::Cancelled(e)) => Err::<(), Error>(e),
            other => panic!("expected a cancellation, got {other:?}"),
        }
    });
    sleep(secs(1)).await.unwrap();
    parent.cancel();
    assert!((&mut parent).await.is_err());
    assert!(parent.cancelled());
    assert_eq!(take(&log), ["a cancelled", "b cancelled"]);
}

// test_taskgroups: test_cancellation (the parent cancelled while the exit
// waits for the children)
#[asyncio::test(virtual_time)]
async fn cancelling_the_parent_during_the_exit_wait() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(child(l.clone(), "a", 10, 1)).unwrap();
            Ok::<_, Error>(()) // the body is done at once
        })
        .await;
        assert!(r.as_ref().unwrap_err().is_cancelled());
        r.map_err(|e| match e {
            TaskGroupError::Cancelled(e) => e,
            TaskGroupError::Failed(_) => unreachable!(),
        })
    });

    sleep(secs(1)).await.unwrap();
    parent.cancel();
    assert!((&mut parent).await.is_err());
    assert_eq!(take(&log), ["a cancelled"]);
}

// Not in test_taskgroups: a child that swallows its cancellation runs to
// its end; the group waits for it
#[asyncio::test(virtual_time)]
async fn a_child_swallowing_its_cancellation_is_waited_for() {
    let clock = Clock::start();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(async move {
            let _ = sleep(secs(10)).await; // swallowed
            sleep(secs(3)).await?;
            f.set(true);
            Ok::<_, Error>(())
        })
        .unwrap();
        tg.create_task(failer(1, "E")).unwrap();
        Ok::<_, Error>(())
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:E"]);
    assert!(finished.get());
    assert_eq!(clock.elapsed(), secs(4));
}

// test_taskgroups: test_taskgroup_14 (nested groups: an inner failure
// aborts the inner group, whose error fails the outer)
#[asyncio::test(virtual_time)]
async fn nested_groups_report_the_inner_failure() {
    let log = log();
    let l = log.clone();
    let r = TaskGroup::run(|outer| async move {
        outer
            .create_task(child(l.clone(), "outer child", 10, 1))
            .unwrap();
        let l2 = l.clone();
        TaskGroup::run(|inner| async move {
            inner
                .create_task(child(l2.clone(), "inner child", 10, 2))
                .unwrap();
            inner.create_task(failer(1, "deep")).unwrap();
            sleep(secs(10)).await?;
            Ok::<_, Error>(())
        })
        .await
        .map_err(group_error)?;
        Ok::<_, Error>(())
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), [r#"group:["error:deep"]"#]);
    assert_eq!(
        take(&log),
        ["inner child cancelled", "outer child cancelled"]
    );
}

// Not in test_taskgroups: nested groups, the parent cancelled: both groups
// cancel their children and propagate the cancellation (test_taskgroup_12's
// nesting, but no child fails in its cleanup)
#[asyncio::test(virtual_time)]
async fn nested_groups_both_cancelled_from_outside() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        TaskGroup::run(|outer| async move {
            outer.create_task(child(l.clone(), "o", 10, 1)).unwrap();
            let l2 = l.clone();
            TaskGroup::run(|inner| async move {
                inner.create_task(child(l2, "i", 10, 2)).unwrap();
                sleep(secs(10)).await?;
                Ok::<_, Error>(())
            })
            .await
            .map_err(|e| match e {
                TaskGroupError::Cancelled(e) => e,
                TaskGroupError::Failed(_) => unreachable!(),
            })?;
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| match e {
            TaskGroupError::Cancelled(Error::Cancelled(c)) => c,
            other => panic!("expected a cancellation, got {other:?}"),
        })
    });
    sleep(secs(1)).await.unwrap();
    parent.cancel();
    assert!((&mut parent).await.is_err());
    assert_eq!(take(&log), ["i cancelled", "o cancelled"]);
}

// Not in test_taskgroups: a group inside a timeout: the expiry cancels body
// and children, and the timeout reports TimeoutError
#[asyncio::test(virtual_time)]
async fn a_group_inside_a_timeout() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let r = timeout(secs(2), async move {
        TaskGroup::run(|tg| async move {
            tg.create_task(child(l.clone(), "c", 10, 1)).unwrap();
            sleep(secs(10)).await?;
            Ok::<_, Error>(())
        })
        .await
    })
    .await;
    assert!(r.is_err(), "TimeoutError, the cancellation converted");
    assert_eq!(take(&log), ["c cancelled"]);
    assert_eq!(clock.elapsed(), secs(2));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// A timeout inside the group body only cancels what runs inside it.
#[asyncio::test(virtual_time)]
async fn a_timeout_inside_the_body_spares_the_children() {
    let log = log();
    let l = log.clone();
    TaskGroup::run(|tg| async move {
        tg.create_task(child(l.clone(), "c", 3, 1)).unwrap();
        let r = timeout(secs(1), sleep(secs(10))).await;
        assert!(r.is_err());
        push(&l, "timed out");
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    assert_eq!(take(&log), ["timed out", "c done"]);
}

// test_taskgroups: test_cancelling_level_preserved (the group's own cancel
// of the body is taken back)
#[asyncio::test(virtual_time)]
async fn the_cancelling_level_is_restored() {
    let me = current_task().unwrap();
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(failer(1, "E")).unwrap();
        if sleep(secs(5)).await.is_err() {
            s.set(current_task().unwrap().cancelling());
        }
        Ok::<_, Error>(())
    })
    .await;
    assert!(r.is_err());
    assert_eq!(seen.get(), 1, "the group's cancel counts while it runs");
    assert_eq!(me.cancelling(), 0);
}

// Not in test_taskgroups: the body swallows the group's cancellation and
// goes on; the group still reports the failure
#[asyncio::test(virtual_time)]
async fn the_body_swallowing_the_abort_still_fails_the_group() {
    let log = log();
    let l = log.clone();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(failer(2, "E2")).unwrap();
        if sleep(secs(5)).await.is_err() {
            push(&l, "body caught");
        }
        sleep(secs(1)).await?;
        push(&l, "body goes on");
        Ok::<_, Error>(7)
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:E2"]);
    assert_eq!(take(&log), ["body caught", "body goes on"]);
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// Not in test_taskgroups (3.13's TaskGroup.__aexit__ re-cancels a parent
// cancelled from outside when there are errors): an outside cancel
// swallowed by the body, then a failure: the group re-cancels the parent so
// that its next await raises.
#[asyncio::test(virtual_time)]
async fn an_outside_cancel_is_not_lost_when_a_child_fails() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let r = TaskGroup::run(|tg| {
            let l = l.clone();
            async move {
                tg.create_task(failer(2, "E1")).unwrap();
                if sleep(secs(5)).await.is_err() {
                    push(&l, "outer cancel swallowed");
                }
                sleep(secs(5)).await?;
                Ok::<_, Error>(())
            }
        })
        .await;
        assert_eq!(names(&r.unwrap_err()), ["error:E1"]);
        let me = current_task().unwrap();
        push(&l, format!("cancelling {}", me.cancelling()));
        if sleep(secs(1)).await.is_err() {
            push(&l, "re-cancelled");
        }
        Ok::<_, Error>(9)
    });
    sleep(secs(1)).await.unwrap();
    parent.cancel();
    assert_eq!((&mut parent).await.unwrap().unwrap(), 9);
    assert_eq!(
        take(&log),
        ["outer cancel swallowed", "cancelling 1", "re-cancelled"]
    );
}

// The body awaiting a failing child sees its own cancellation first: the
// group processes the child's end before the child's awaiters (asyncio
// registers its done-callback first).
#[asyncio::test(virtual_time)]
async fn a_body_awaiting_a_failing_child_is_cancelled_by_the_group() {
    let r = TaskGroup::run(|tg| async move {
        let bad = tg.create_task(failer(1, "E")).unwrap();
        match bad.await {
            Err(_cancelled) => Err(Error::Failed("saw cancellation")),
            Ok(Err(ChildFailed)) => Err(Error::Failed("saw the failure")),
            Ok(Ok(_)) => Ok(()),
        }
    })
    .await;
    assert_eq!(
        names(&r.unwrap_err()),
        ["error:E", "error:saw cancellation"]
    );
}

// test_taskgroups: test_taskgroup_no_create_task_after_failure /
// test_taskgroup_finished (no task can be added once the group is shutting
// down or finished)
#[asyncio::test(virtual_time)]
async fn no_task_can_be_added_when_shutting_down_or_finished() {
    let kept = Rc::new(std::cell::RefCell::new(None));
    let k = kept.clone();
    let r = TaskGroup::run(|tg| async move {
        *k.borrow_mut() = Some(tg.clone());
        tg.create_task(failer(1, "E")).unwrap();
        let _ = sleep(secs(5)).await;
        assert!(tg.is_aborting());
        let e = tg.create_task(async { Ok::<_, Error>(()) }).unwrap_err();
        assert!(e.to_string().contains("shutting down"), "{e}");
        Ok::<_, Error>(())
    })
    .await;
    assert!(r.is_err());
    let tg = kept.borrow_mut().take().unwrap();
    let e = tg.create_task(async { Ok::<_, Error>(()) }).unwrap_err();
    assert!(e.to_string().contains("finished"), "{e}");
}

// test_taskgroups: test_taskgroup_24 (a child adds a sibling while the
// group waits in its exit)
#[asyncio::test(virtual_time)]
async fn a_child_can_add_a_sibling_while_the_group_exits() {
    let log = log();
    let l = log.clone();
    TaskGroup::run(|tg| async move {
        let tg2 = tg.clone();
        tg.create_task(async move {
            sleep(secs(1)).await?;
            tg2.create_task(child(l, "sibling", 1, 0)).unwrap();
            Ok::<_, Error>(())
        })
        .unwrap();
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    assert_eq!(take(&log), ["sibling done"]);
}

// test_taskgroups: test_taskgroup_21a (in part: a child's panic, like the
// child's BaseException there, is a failure reported with its payload; the
// body adds no error of its own)
#[asyncio::test(virtual_time)]
async fn a_child_panic_is_reported() {
    let r = TaskGroup::run(|tg| async move {
        let t = tg
            .create_task(async {
                sleep(secs(1)).await?;
                if current_task().is_some() {
                    panic!("kaboom");
                }
                Ok::<u8, Error>(1)
            })
            .unwrap();
        let _ = sleep(secs(5)).await;
        assert_eq!(t.await.unwrap(), Err(ChildFailed));
        Ok::<_, Error>(())
    })
    .await;
    let e = r.unwrap_err();
    assert_eq!(names(&e), ["panic:kaboom"]);
    assert!(e.failures()[0].is_panic());
}

// test_taskgroups: test_taskgroup_20 (in part: a panic in the body, like
// the KeyboardInterrupt there: the children are cancelled and waited for,
// then the panic resumes; no child fails alongside)
#[asyncio::test(virtual_time)]
async fn a_body_panic_resumes_after_the_children_are_done() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        TaskGroup::run(|tg| async move {
            tg.create_task(child(l.clone(), "c", 10, 1)).unwrap();
            sleep(secs(1)).await?;
            if current_task().is_some() {
                panic!("body broke");
            }
            Ok::<_, Error>(())
        })
        .await
        .map(drop)
        .map_err(drop)
    });
    sleep(secs(2)).await.unwrap();
    assert!(parent.panicked());
    assert_eq!(parent.panic_message().as_deref(), Some("body broke"));
    assert_eq!(take(&log), ["c cancelled"]);
    parent.cancel(); // retrieve
    let _ = &mut parent;
}

// test_taskgroups: test_taskgroup_03 (a child that ends cancelled is no
// failure: the group carries on)
#[asyncio::test(virtual_time)]
async fn a_cancelled_child_aborts_nothing() {
    let log = log();
    let l = log.clone();
    let out = TaskGroup::run(|tg| async move {
        let c = tg
            .create_task(child(l.clone(), "cancelled", 10, 1))
            .unwrap();
        tg.create_task(child(l.clone(), "other", 2, 2)).unwrap();
        checkpoint().await?;
        c.cancel();
        Ok::<_, Error>("body value")
    })
    .await
    .unwrap();
    assert_eq!(out, "body value");
    assert_eq!(take(&log), ["cancelled cancelled", "other done"]);
}

// Dropping the group's future before it completes: the children must not
// outlive it, so they are cancelled (without being waited for).
#[asyncio::test(virtual_time)]
async fn dropping_the_group_cancels_its_children() {
    let log = log();
    let l = log.clone();
    let children = Rc::new(std::cell::RefCell::new(Vec::new()));
    let ch = children.clone();
    let group = TaskGroup::run(|tg| async move {
        ch.borrow_mut()
            .push(tg.create_task(child(l, "c", 10, 1)).unwrap().task_ref());
        sleep(secs(10)).await?;
        Ok::<_, Error>(())
    });
    // A foreign select: the losing branch, the group, is dropped.
    futures::future::select(Box::pin(group), Box::pin(sleep(secs(1)))).await;
    let c = children.borrow()[0].clone();
    assert!(c.cancelling() == 1);
    c.wait().await.unwrap_err();
    assert_eq!(take(&log), ["c cancelled"]);
}

/// Sleeps `s` seconds and fails with `name`; logs "NAME cancelled" or
/// "NAME fails" on the way out.
async fn crash_after(log: Log, s: u64, name: &'static str) -> R<()> {
    if let Err(e) = sleep(secs(s)).await {
        push(&log, format!("{name} cancelled"));
        return Err(e.into());
    }
    push(&log, format!("{name} fails"));
    Err(Error::Failed(name))
}

/// Logs whether the parent's next await is interrupted, and propagates
/// the cancellation if it is.
async fn next_await(log: &Log) -> R<()> {
    match sleep(secs(1)).await {
        Ok(()) => {
            push(log, "next await ran");
            Ok(())
        }
        Err(e) => {
            push(log, "next await cancelled");
            Err(e.into())
        }
    }
}

/// Logs how a group expected to fail failed, with the parent's
/// `cancelling()` level right after.
fn push_group_failure<T: std::fmt::Debug>(log: &Log, r: Result<T, TaskGroupError<Error>>) {
    let failures = names(&r.unwrap_err());
    let cancelling = current_task().unwrap().cancelling();
    push(log, format!("group: {failures:?} cancelling={cancelling}"));
}

/// Cancels `parent` from outside 100 ms in, while it is still running,
/// and waits for it to end with an error.
async fn cancel_from_outside<T: std::fmt::Debug + 'static>(parent: &mut asyncio::Task<T>) {
    sleep(ms(100)).await.unwrap();
    assert!(!parent.done());
    parent.cancel();
    let out = parent.await;
    assert!(out.is_err(), "{out:?}");
}

// test_taskgroups: test_taskgroup_08 (the parent is cancelled from outside
// and every child fails in its cleanup: the failures win over the
// cancellation, which is delivered again at the parent's next await)
#[asyncio::test(virtual_time)]
async fn children_failing_in_their_cleanup_outweigh_an_outside_cancel() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let r = TaskGroup::run(|tg| async move {
            for name in ["a", "b", "c"] {
                tg.create_task(async move {
                    let _ = sleep(secs(10)).await; // cancelled: fail in cleanup
                    Err::<(), _>(Error::Failed(name))
                })
                .unwrap();
            }
            sleep(secs(10)).await?;
            Ok::<_, Error>(())
        })
        .await;
        let mut failures = names(&r.unwrap_err());
        failures.sort();
        push(&l, failures.join(" "));
        push(
            &l,
            format!("cancelling {}", current_task().unwrap().cancelling()),
        );
        next_await(&l).await
    });
    cancel_from_outside(&mut parent).await;
    assert!(parent.cancelled());
    assert_eq!(
        take(&log),
        [
            "error:a error:b error:c",
            "cancelling 1",
            "next await cancelled"
        ]
    );
}

// test_taskgroups: test_taskgroup_10 (the body fails before its first await:
// the children are cancelled before they take a step)
#[asyncio::test(virtual_time)]
async fn a_body_failing_at_once_cancels_children_that_never_started() {
    let log = log();
    let l = log.clone();
    let kept = Rc::new(std::cell::RefCell::new(Vec::new()));
    let k = kept.clone();
    let r = TaskGroup::run(|tg| async move {
        for s in [1, 2] {
            let l = l.clone();
            let t = tg
                .create_task(async move {
                    push(&l, "child started");
                    sleep(secs(s)).await?;
                    Ok::<_, Error>(s)
                })
                .unwrap();
            k.borrow_mut().push(t.task_ref());
        }
        Err::<(), _>(Error::Failed("ZeroDivisionError"))
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:ZeroDivisionError"]);
    assert!(kept.borrow().iter().all(|t| t.done() && t.cancelled()));
    assert!(take(&log).is_empty(), "no child ran a line");
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_taskgroups: test_taskgroup_13 (an outer child fails while the body
// waits in a nested group: the nested group is cancelled, its child with
// it, and only the outer failure is reported)
#[asyncio::test(virtual_time)]
async fn an_outer_failure_cancels_a_nested_group() {
    let log = log();
    let l = log.clone();
    let mut runner = create_task(async move {
        TaskGroup::run(|outer| async move {
            outer
                .create_task(crash_after(l.clone(), 1, "outer"))
                .unwrap();
            let l2 = l.clone();
            let r = TaskGroup::run(|inner| async move {
                inner.create_task(crash_after(l2, 10, "inner")).unwrap();
                Ok::<_, Error>(())
            })
            .await;
            push(
                &l,
                format!(
                    "nested group cancelled={} cancelling={}",
                    r.as_ref().is_err_and(TaskGroupError::is_cancelled),
                    current_task().unwrap().cancelling()
                ),
            );
            r.map_err(group_error)?;
            Ok::<_, Error>(())
        })
        .await
    });
    let r = (&mut runner).await.unwrap();
    assert_eq!(names(&r.unwrap_err()), ["error:outer"]);
    assert_eq!(
        take(&log),
        [
            "outer fails",
            "inner cancelled",
            "nested group cancelled=true cancelling=1"
        ]
    );
    assert_eq!(runner.cancelling(), 0);
}

// test_taskgroups: test_taskgroup_15 (the parent cancelled from outside; the
// body's cleanup awaits, and a child fails meanwhile: the group interrupts
// the cleanup and reports the failure instead of the cancellation)
#[asyncio::test(virtual_time)]
async fn a_child_failure_during_the_bodys_cleanup_wins_over_the_cancel() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut parent = create_task(async move {
        let l2 = l.clone();
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(async {
                sleep(ms(300)).await?;
                Err::<(), _>(Error::Failed("ZeroDivisionError"))
            })
            .unwrap();
            if let Err(outside) = sleep(secs(10)).await {
                push(&l2, "body cancelled");
                match sleep(ms(500)).await {
                    Ok(()) => push(&l2, "cleanup done"),
                    Err(_) => push(&l2, "cleanup interrupted"),
                }
                return Err(outside.into());
            }
            Ok::<_, Error>(())
        })
        .await;
        push_group_failure(&l, r);
        next_await(&l).await
    });
    cancel_from_outside(&mut parent).await;
    assert_eq!(
        take(&log),
        [
            "body cancelled",
            "cleanup interrupted",
            r#"group: ["error:ZeroDivisionError"] cancelling=1"#,
            "next await cancelled"
        ]
    );
    assert_eq!(clock.elapsed(), ms(300));
}

// test_taskgroups: test_taskgroup_18 (the body turns the outside
// cancellation into an error of its own: the group reports that error)
#[asyncio::test(virtual_time)]
async fn a_body_replacing_the_outside_cancel_with_an_error_fails_the_group() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let l2 = l.clone();
        let r = TaskGroup::run(|_tg| async move {
            if sleep(secs(10)).await.is_err() {
                push(&l2, "caught");
                return Err(Error::Failed("MyExc"));
            }
            Ok::<_, Error>(())
        })
        .await;
        push_group_failure(&l, r);
        next_await(&l).await
    });
    cancel_from_outside(&mut parent).await;
    assert_eq!(
        take(&log),
        [
            "caught",
            r#"group: ["error:MyExc"] cancelling=1"#,
            "next await cancelled"
        ]
    );
}

/// test_taskgroup_25's hydra: counts itself, sleeps 10 ms, then starts two
/// more hydras in the group.
fn hydra(
    tg: TaskGroup<Error>,
    heads: Rc<Cell<u32>>,
) -> std::pin::Pin<Box<dyn Future<Output = R<()>>>> {
    Box::pin(async move {
        heads.set(heads.get() + 1);
        sleep(ms(10)).await?;
        for _ in 0..2 {
            // asyncio's create_task raises RuntimeError on a closing group.
            tg.create_task(hydra(tg.clone(), heads.clone()))
                .map_err(|_| Error::Failed("RuntimeError"))?;
        }
        Ok(())
    })
}

// test_taskgroups: test_taskgroup_25 (children keep adding children until a
// sibling fails: the failure stops the whole growing group)
#[asyncio::test(virtual_time)]
async fn a_failure_stops_children_that_keep_adding_children() {
    let heads = Rc::new(Cell::new(0));
    let h = heads.clone();
    let r = TaskGroup::run(|tg| async move {
        tg.create_task(hydra(tg.clone(), h.clone())).unwrap();
        tg.create_task(async move {
            while h.get() < 10 {
                sleep(ms(15)).await?;
            }
            Err::<(), _>(Error::Failed("ZeroDivisionError"))
        })
        .unwrap();
        Ok::<_, Error>(())
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:ZeroDivisionError"]);
    assert!(heads.get() >= 10, "{}", heads.get());
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_taskgroups: test_nested_groups_both_cancelled (children of a nested
// group and of the outer group fail on the same turn: each group reports
// its own failure, and the cancelling() level is 1 between the two exits
// and 0 after the outer one)
#[asyncio::test(virtual_time)]
async fn nested_groups_failing_together_keep_the_cancelling_level() {
    let log = log();
    let l = log.clone();
    let r = TaskGroup::run(|outer| async move {
        let inner_r = TaskGroup::run(|inner| async move {
            inner
                .create_task(async {
                    sleep(secs(0)).await?;
                    Err::<(), _>(Error::Failed("RuntimeError"))
                })
                .unwrap();
            outer
                .create_task(async {
                    sleep(secs(0)).await?;
                    Err::<(), _>(Error::Failed("ValueError"))
                })
                .unwrap();
            Ok::<_, Error>(())
        })
        .await;
        push(&l, format!("inner: {:?}", names(&inner_r.unwrap_err())));
        push(
            &l,
            format!("cancelling {}", current_task().unwrap().cancelling()),
        );
        // Checked on CPython 3.13: the outer group's request, consumed by
        // the nested group's exit, is delivered again at the next await.
        next_await(&l).await?;
        Ok::<_, Error>(())
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), ["error:ValueError"]);
    assert_eq!(
        take(&log),
        [
            r#"inner: ["error:RuntimeError"]"#,
            "cancelling 1",
            "next await cancelled"
        ]
    );
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_taskgroups: test_error_and_cancel (an outside cancel arrives in the
// turn a child fails: the group reports the failure, the request stays
// counted and interrupts the parent's next await)
#[asyncio::test(virtual_time)]
async fn an_outside_cancel_in_the_turn_of_a_child_failure() {
    let log = log();
    let event = Rc::new(asyncio::Event::new());
    let (l, ev) = (log.clone(), event.clone());
    let mut t = create_task(async move {
        let l2 = l.clone();
        let r = TaskGroup::run(|tg| async move {
            let l3 = l2.clone();
            tg.create_task(async move {
                ev.set();
                sleep(secs(0)).await?;
                push(&l3, "child fails");
                Err::<(), _>(Error::Failed("RuntimeError"))
            })
            .unwrap();
            if let Err(e) = sleep(secs(1)).await {
                push(&l2, "body cancelled");
                return Err::<(), _>(Error::from(e));
            }
            panic!("the sleep in the group should have been cancelled");
        })
        .await;
        push_group_failure(&l, r);
        next_await(&l).await
    });
    event.wait().await.unwrap();
    assert_eq!(t.cancelling(), 0);
    t.cancel();
    assert_eq!(t.cancelling(), 1);
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(
        take(&log),
        [
            "child fails",
            "body cancelled",
            r#"group: ["error:RuntimeError"] cancelling=1"#,
            "next await cancelled"
        ]
    );
}

// test_taskgroups: test_taskgroup_12 (the parent cancelled from outside
// while the body waits in a nested group whose children fail in their
// cleanup: the nested group's failure fails the outer group, which cancels
// its own child; the outside request stays counted and is delivered again
// later). test_taskgroup_11 is the same without the outer group's child.
#[asyncio::test(virtual_time)]
async fn a_nested_groups_cleanup_failures_outweigh_an_outside_cancel() {
    let log = log();
    let l = log.clone();
    let mut parent = create_task(async move {
        let l2 = l.clone();
        let r = TaskGroup::run(|outer| async move {
            outer
                .create_task(child(l2.clone(), "outer child", 10, 1))
                .unwrap();
            let l3 = l2.clone();
            let inner_r = TaskGroup::run(|inner| async move {
                for name in ["a", "b"] {
                    inner
                        .create_task(async move {
                            let _ = sleep(secs(10)).await; // cancelled: fail in cleanup
                            Err::<(), _>(Error::Failed(name))
                        })
                        .unwrap();
                }
                sleep(secs(10)).await?;
                Ok::<_, Error>(())
            })
            .await;
            push(
                &l3,
                format!(
                    "nested group failed={} cancelling={}",
                    inner_r.as_ref().is_err_and(|e| !e.is_cancelled()),
                    current_task().unwrap().cancelling()
                ),
            );
            inner_r.map_err(|e| match e {
                TaskGroupError::Cancelled(e) => e,
                TaskGroupError::Failed(_) => {
                    let mut n = names(&e);
                    n.sort();
                    Error::Group(n)
                }
            })?;
            Ok::<_, Error>(())
        })
        .await;
        push_group_failure(&l, r);
        next_await(&l).await
    });
    cancel_from_outside(&mut parent).await;
    assert!(parent.cancelled());
    assert_eq!(
        take(&log),
        [
            "nested group failed=true cancelling=1",
            "outer child cancelled",
            r#"group: ["group:[\"error:a\", \"error:b\"]"] cancelling=1"#,
            "next await cancelled"
        ]
    );
}

// test_taskgroups: test_taskgroup_without_parent_task (a group needs a
// parent task: awaited outside one, it is an error, and the body never runs)
#[test]
fn a_group_awaited_outside_a_task_panics() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(TaskGroup::run(|_tg| async move {
            r.set(true);
            Ok::<_, Error>(())
        }))
    }));
    let msg = panic_text(&*outcome.unwrap_err());
    assert!(msg.contains("inside an asyncio task"), "{msg}");
    assert!(!ran.get());
}

// test_taskgroups: test_taskgroup_16 (test_taskgroup_15 with the cancel
// forwarded by a task awaiting the parent; the body handles the
// cancellation with more awaits, during which a child fails: the group
// reports the failure, not the body's re-raised cancellation, and
// the outside cancellation stays counted. asyncio re-arms it as a pending
// cancel that loses to the ExceptionGroup the task raises; a Rust task's
// `Err` is a value, so here it is delivered at the next await, as in
// test_taskgroup_08's port: DESIGN.md §3, "pending-cancel-wins")
#[asyncio::test(virtual_time)]
async fn a_child_failing_while_the_body_cleans_up_an_outside_cancel_is_reported() {
    let log = log();
    let l = log.clone();
    let nested_runner = async move {
        let r = TaskGroup::run(|g| async move {
            g.create_task(async {
                sleep(ms(300)).await?;
                Err::<(), _>(Error::Failed("zero division"))
            })
            .unwrap();
            match sleep(secs(10)).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Cleanup that awaits, then re-raise.
                    sleep(ms(500)).await?;
                    Err(Error::Cancelled(e))
                }
            }
        })
        .await;
        push_group_failure(&l, r);
        next_await(&l).await
    };
    let mut r = create_task(async move { create_task(nested_runner).await });
    cancel_from_outside(&mut r).await;
    assert!(r.cancelled());
    assert_eq!(
        take(&log),
        [
            r#"group: ["error:zero division"] cancelling=1"#,
            "next await cancelled"
        ]
    );
}

// test_taskgroups: test_taskgroup_17 (the body handles the outside cancel
// and re-raises: the parent ends cancelled)
#[asyncio::test(virtual_time)]
async fn a_body_reraising_an_outside_cancel_ends_the_parent_cancelled() {
    let num = Rc::new(Cell::new(0));
    let n = num.clone();
    let mut r = create_task(async move {
        TaskGroup::run(|_g| async move {
            if let Err(e) = sleep(secs(10)).await {
                n.set(n.get() + 10);
                return Err(Error::Cancelled(e));
            }
            Ok(())
        })
        .await
    });
    cancel_from_outside(&mut r).await;
    assert!(r.cancelled());
    assert_eq!(num.get(), 10);
}

// test_taskgroups: test_taskgroup_22 (an outside cancel of a group waiting
// for healthy children cancels them all; the parent ends cancelled)
#[asyncio::test(virtual_time)]
async fn an_outside_cancel_of_a_waiting_group_ends_the_parent_cancelled() {
    let log = log();
    let l = log.clone();
    let mut r = create_task(async move {
        TaskGroup::run(|g| async move {
            g.create_task(child(l.clone(), "foo1", 1, 42)).unwrap();
            g.create_task(child(l.clone(), "foo2", 2, 11)).unwrap();
            Ok::<_, Error>(())
        })
        .await
    });
    sleep(ms(50)).await.unwrap();
    r.cancel();
    let out = (&mut r).await;
    assert!(out.is_err(), "{out:?}");
    assert!(r.cancelled());
    assert_eq!(take(&log), ["foo1 cancelled", "foo2 cancelled"]);
}

// test_taskgroups: test_taskgroup_task_name
#[asyncio::test(virtual_time)]
async fn a_child_can_be_named() {
    TaskGroup::run(|g| async move {
        let t = g
            .create_task_named("yolo", async {
                checkpoint().await?;
                Ok::<_, Error>(())
            })
            .unwrap();
        assert_eq!(t.name(), "yolo");
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
}
