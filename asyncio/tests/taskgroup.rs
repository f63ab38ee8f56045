//! `TaskGroup`: children live no longer than the group, the first failure
//! aborts the rest, failures are reported together, cancellation goes both
//! ways, and the parent's `cancelling()` level is restored — ported from
//! CPython's `test_taskgroups`.

mod common;

use std::cell::Cell;
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

// test_taskgroups: test_taskgroup_03 / test_taskgroup_04 (the first failure
// cancels the other children and the body; the group waits for them)
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

// test_taskgroups: test_taskgroup_05 (failures collected in completion order)
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

// test_taskgroups: test_taskgroup_15 (a failure in the body cancels the
// children; the body's error is reported after the children's)
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

// test_taskgroups: test_taskgroup_16 (a child's error and the body's: the
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

// test_taskgroups: test_taskgroup_06 (the parent cancelled from outside: the
// children are cancelled and the cancellation propagates)
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

// test_taskgroups: test_taskgroup_07 / test_taskgroup_08 (cancelled while
// the exit waits for the children)
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

// test_taskgroups: test_taskgroup_18 (a child that swallows its cancellation
// runs to its end; the group waits for it)
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

// test_taskgroups: test_taskgroup_11 / test_taskgroup_13 (nested groups: an
// inner failure aborts the inner group, whose error fails the outer)
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
        .map_err(|e| match e {
            TaskGroupError::Cancelled(e) => e,
            TaskGroupError::Failed(_) => Error::Group(names(&e)),
        })?;
        Ok::<_, Error>(())
    })
    .await;
    assert_eq!(names(&r.unwrap_err()), [r#"group:["error:deep"]"#]);
    assert_eq!(
        take(&log),
        ["inner child cancelled", "outer child cancelled"]
    );
}

// test_taskgroups: test_taskgroup_12 (nested groups, the parent cancelled:
// both groups cancel their children and propagate the cancellation)
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

// test_taskgroups: test_taskgroup_timeout (a group inside a timeout: the
// expiry cancels body and children, and the timeout reports TimeoutError)
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

// test_taskgroups: test_taskgroup_body_swallows_abort (the body swallows the
// group's cancellation and goes on; the group still reports the failure)
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

// 3.13 (taskgroup_external_cancel_and_error): an outside cancel swallowed by
// the body, then a failure: the group re-cancels the parent so that its next
// await raises.
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

// test_taskgroups: test_taskgroup_22 / test_taskgroup_23 (no task can be
// added once the group is shutting down or finished)
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

// test_taskgroups: test_taskgroup_children_create_siblings (a child adds a
// sibling while the group waits in its exit)
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

// test_taskgroups: test_taskgroup_20 (a child's panic is a failure, reported
// with its payload)
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

// test_taskgroups: test_taskgroup_21 (a panic in the body: the children are
// cancelled and waited for, then the panic resumes)
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

// A child that ends cancelled is no failure: the group carries on.
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
